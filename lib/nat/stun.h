/* SPDX-License-Identifier: MIT */
/*
 * The STUN agent: the per-endpoint state behind qpeer_stun_t and the STUN
 * responder (include/qpeer/stun.h). One agent per endpoint, created on
 * first use and found again through the endpoint's STUN handler list; it
 * owns one timer for every pending transaction's retransmissions, the
 * responder's rate-limit tables, and watches (below). It lives until the
 * endpoint closes: a uv_check_t (unreferenced, so it never keeps the loop
 * alive) notices ep->closing before the endpoint's memory goes away and
 * cancels whatever is pending.
 */
#ifndef QPEER_NAT_STUN_H
#define QPEER_NAT_STUN_H

#include "internal.h"
#include "nat/stun_msg.h"
#include "quic/handles.h"

/* A watch: the agent consumes Binding requests whose transaction ID is
 * |txid| instead of answering them, and counts them. netcheck uses one to
 * see its hairpin probe arrive. */
typedef struct qpeer__stun_watch {
  qpeer__list link;                   /* in the agent's watch list */
  uint8_t txid[QPEER__STUN_TXID_LEN]; /* transaction ID to catch */
  unsigned int hits;                  /* requests caught */
  struct sockaddr_storage from;       /* source of the last one */
  /* Called (from the loop, once) if the endpoint closes while the watch
   * is active; the watch is then already stopped. May be NULL. */
  void (*on_cancel)(struct qpeer__stun_watch *w);
  void *ctx;                          /* owner's context */
  void *agent;                        /* the agent while active */
} qpeer__stun_watch;

/* qpeer__stun_watch_start arms |w| (txid set by the caller) on |ep|.
 * Returns 0, UV_EBUSY if the endpoint is closing, or UV_ENOMEM. */
int qpeer__stun_watch_start(qpeer__ep *ep, qpeer__stun_watch *w);

/* qpeer__stun_watch_stop disarms |w| (no-op when not armed). */
void qpeer__stun_watch_stop(qpeer__stun_watch *w);

/* qpeer__stun_new_txid fills |txid| with random bytes. */
int qpeer__stun_new_txid(uint8_t txid[QPEER__STUN_TXID_LEN]);

#endif /* QPEER_NAT_STUN_H */
