/* SPDX-License-Identifier: MIT */
/*
 * Candidate gathering: host candidates (interface addresses with the
 * endpoint's port), server-reflexive ones (STUN servers, and addresses the
 * peers of live connections observed: QUIC address discovery), a port
 * mapping, and a relay address. Candidates stream to a callback as they
 * arrive, merged and typed; a final call with UV_EOF ends the gathering,
 * at the deadline at the latest.
 */
#ifndef QPEER_GATHER_H
#define QPEER_GATHER_H

#include "qpeer/candidate.h"
#include "qpeer/conn.h"
#include "qpeer/portmap.h"
#include "qpeer/stun.h"

#define QPEER_GATHER_MAX_STUN 8   /* STUN servers per gathering */
#define QPEER_GATHER_MAX_CONNS 8  /* connections whose observations count */
#define QPEER_GATHER_MAX_CANDS 32 /* candidates kept */

typedef struct qpeer_gather_s qpeer_gather_t;

/** Called for each new or upgraded candidate (status 0, |c| borrowed for
 * the call), then exactly once with UV_EOF (|c| NULL) when gathering is
 * complete, or with UV_ECANCELED after qpeer_gather_cancel(). */
typedef void (*qpeer_candidate_cb)(qpeer_gather_t *g, int status,
                                   const qpeer_candidate_t *c);

#define QPEER_GATHER_OPTIONS_V1 1
#define QPEER_GATHER_OPTIONS_VERSION QPEER_GATHER_OPTIONS_V1

/** Gathering options (copied). */
typedef struct qpeer_gather_options_s {
  /* STUN servers to ask (up to QPEER_GATHER_MAX_STUN). */
  const struct sockaddr *const *stun_servers;
  size_t nstun;
  /* Per-server STUN deadline and initial RTO in ms (0: 3000 / 500). */
  uint64_t stun_timeout_ms;
  uint32_t stun_rto_ms;
  /* Connections whose peers report our address (QUIC address discovery);
   * each reported address becomes a server-reflexive candidate. */
  qpeer_conn_t *const *conns;
  size_t nconns;
  /* A running port mapping whose external address becomes a mapped
   * candidate (optional). */
  const qpeer_portmap_t *portmap;
  /* The public address a relay bound for us (optional). */
  const struct sockaddr *relay;
  /* Include loopback (and link-local) interface addresses. */
  int include_loopback;
  int include_link_local;
  /* Overall deadline in ms (0: 5000). */
  uint64_t deadline_ms;
} qpeer_gather_options_t;

struct qpeer_gather_s {
  QPEER_REQ_FIELDS
  /* read-only: every candidate gathered so far, best first */
  size_t ncands;
  qpeer_candidate_t cands[QPEER_GATHER_MAX_CANDS];
  /* private */
  void *impl;
};

QPEER_EXTERN void
qpeer_gather_options_default_versioned(int version,
                                       qpeer_gather_options_t *o);
#define qpeer_gather_options_default(O)                                       \
  qpeer_gather_options_default_versioned(QPEER_GATHER_OPTIONS_VERSION, (O))

QPEER_EXTERN int qpeer_gather_versioned(qpeer_gather_t *g,
                                        qpeer_endpoint_t *ep, int version,
                                        const qpeer_gather_options_t *o,
                                        qpeer_candidate_cb cb);

/**
 * `qpeer_gather` starts gathering for |ep|'s socket. Returns 0 (then |cb|
 * ends with exactly one UV_EOF or UV_ECANCELED call), UV_EINVAL, or
 * UV_ENOMEM. The endpoint must stay open until the final call.
 */
#define qpeer_gather(G, EP, O, CB)                                            \
  qpeer_gather_versioned((G), (EP), QPEER_GATHER_OPTIONS_VERSION, (O), (CB))

/** `qpeer_gather_cancel` ends a gathering early (final call UV_ECANCELED).
 * Returns 0 or UV_EINVAL when it is not running. */
QPEER_EXTERN int qpeer_gather_cancel(qpeer_gather_t *g);

#endif /* QPEER_GATHER_H */
