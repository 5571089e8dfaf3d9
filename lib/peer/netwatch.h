/* SPDX-License-Identifier: MIT */
/*
 * Interface watch: polls the local interface-address set at a bounded
 * interval and reports when it changed (addresses gained or lost). Used by
 * the dialer (re-probe for a direct path) and the listener (re-gather).
 * The address source is replaceable so tests can inject a change.
 */
#ifndef QPEER_PEER_NETWATCH_H
#define QPEER_PEER_NETWATCH_H

#include <uv.h>

#include "peer/netset.h"

/* Bounds and default of the poll interval, in ms. */
#define QPEER__NETWATCH_MIN_MS 100
#define QPEER__NETWATCH_MAX_MS 3600000
#define QPEER__NETWATCH_DEFAULT_MS 5000

typedef struct qpeer__netwatch qpeer__netwatch;

/* Writes up to |max| interface addresses into |out| and their count into
 * |*pn|. Returns 0 or a UV_E* code (the poll is then skipped). */
typedef int (*qpeer__netwatch_source)(qpeer__netwatch *nw,
                                      struct sockaddr_storage *out, size_t max,
                                      size_t *pn);

struct qpeer__netwatch {
  uv_timer_t timer;                     /* the poll timer */
  uint64_t interval_ms;                 /* poll interval */
  void (*changed)(qpeer__netwatch *nw); /* the set changed */
  void (*closed)(qpeer__netwatch *nw);  /* after qpeer__netwatch_close */
  qpeer__netwatch_source source;        /* NULL: the OS interfaces */
  void *source_ctx;                     /* the source's context */
  void *ctx;                            /* the owner's context */
  struct sockaddr_storage set[QPEER__NETSET_MAX]; /* the last set seen */
  size_t n;                                       /* its size */
  int have;                                       /* |set| was read once */
  int open;                                       /* timer initialised */
  uint64_t polls;                                 /* statistics: polls */
  uint64_t changes;                               /* statistics: changes seen */
};

/* qpeer__netwatch_init reads the current set (no callback for it) and
 * polls every |interval_ms| (clamped to the bounds; 0: the default) from
 * an unreferenced timer; |changed| runs from the timer, never inside a
 * qpeer__netwatch_* call. Returns 0 or the error of uv_timer_init. */
int qpeer__netwatch_init(uv_loop_t *loop, qpeer__netwatch *nw,
                         uint64_t interval_ms,
                         void (*changed)(qpeer__netwatch *nw), void *ctx);

/* qpeer__netwatch_set_source replaces the address source (tests) and
 * re-reads the set from it without reporting a change. */
void qpeer__netwatch_set_source(qpeer__netwatch *nw,
                                qpeer__netwatch_source source, void *ctx);

/* qpeer__netwatch_poll_soon polls on the next loop iteration. */
void qpeer__netwatch_poll_soon(qpeer__netwatch *nw);

/* qpeer__netwatch_close stops polling; |closed| runs once the timer has
 * closed (then |nw| may be freed). */
void qpeer__netwatch_close(qpeer__netwatch *nw,
                           void (*closed)(qpeer__netwatch *nw));

/* qpeer__netwatch_clamp returns |ms| within the bounds (0: default). */
uint64_t qpeer__netwatch_clamp(uint64_t ms);

#endif /* QPEER_PEER_NETWATCH_H */
