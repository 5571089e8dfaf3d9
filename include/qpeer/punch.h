/* SPDX-License-Identifier: MIT */
/*
 * NAT traversal inside a connection (draft-seemann-quic-nat-traversal
 * semantics, carried on the qpeer control stream): the server advertises
 * its candidates; the client pairs them with its own, asks the server to
 * punch (PUNCH_ME_NOW) round by round, probes, validates one path at a time
 * and migrates the live connection to the first direct path that works.
 */
#ifndef QPEER_PUNCH_H
#define QPEER_PUNCH_H

#include "qpeer/candidate.h"
#include "qpeer/conn.h"

typedef struct qpeer_punch_s qpeer_punch_t;

/** Called once: 0 when the connection moved to a validated direct path
 * (req->path), QPEER_ENOPATH when every pair failed (the connection stays
 * on its path), UV_ECANCELED when the connection closed first. */
typedef void (*qpeer_punch_cb)(qpeer_punch_t *req, int status);

struct qpeer_punch_s {
  QPEER_REQ_FIELDS
  /* read-only: the direct path the connection moved to (status 0) */
  qpeer_path_t path;
  /* read-only: statistics of the attempt */
  uint64_t punch_requests; /* PUNCH_ME_NOW sent */
  uint64_t probes;         /* raw probe datagrams sent */
  uint64_t validations;    /* path validations started */
  /* private */
  qpeer_punch_cb cb;
};

/** Flags for qpeer_punch() and qpeer_conn_advertise(). */
enum {
  /* Allow loopback candidates (tests and same-host peers only). */
  QPEER_PUNCH_ALLOW_LOOPBACK = 0x01,
  /* Allow link-local candidates. */
  QPEER_PUNCH_ALLOW_LINK_LOCAL = 0x02
};

/**
 * `qpeer_conn_advertise` (server side) sends the candidates |cands| to the
 * peer (ADD_ADDRESS, with their types and priorities) and withdraws those
 * it advertised before that are no longer listed (REMOVE_ADDRESS). It also
 * arms the punch responder for this connection. |cands| is copied. Relay
 * candidates are not advertised (the client reaches the relay already).
 * Returns 0, UV_EINVAL, UV_ENOTSUP on a client connection or when the peer
 * does not speak the qpeer control stream, UV_ENOTCONN, or UV_ENOSPC (more
 * than 32 candidates).
 */
QPEER_EXTERN int qpeer_conn_advertise(qpeer_conn_t *conn,
                                      const qpeer_candidate_t *cands,
                                      size_t n, unsigned int flags);

/**
 * `qpeer_punch` (client side) starts hole punching towards the candidates
 * the server advertised, from the local candidates |local| (copied: host,
 * server-reflexive, mapped; used as punch targets and pair bases). |cb|
 * fires exactly once. While it runs, advertisements that arrive later are
 * added. Returns 0, UV_EINVAL, UV_ENOTSUP on a server connection or
 * without the control stream, UV_ENOTCONN, or UV_EBUSY while another punch
 * or a migration runs.
 */
QPEER_EXTERN int qpeer_punch(qpeer_punch_t *req, qpeer_conn_t *conn,
                             const qpeer_candidate_t *local, size_t n,
                             unsigned int flags, qpeer_punch_cb cb);

/** Called when the connection fell back to its standby path because the
 * current one went silent (status 0), or when that failed (an error). */
typedef void (*qpeer_fallback_cb)(qpeer_conn_t *conn, int status);

/**
 * `qpeer_conn_set_fallback` (client side) names a standby path (usually
 * the relay path the connection started on; |local| NULL means the
 * socket) and a silence budget: while the connection is on another path
 * and nothing arrives from the peer for |timeout_ms| (keep-alives are sent
 * at a third of it), the client migrates back to the standby path at once
 * (it validates it in the background: the peer, whose congestion window
 * may be full of packets lost on the dead path, answers only once it has
 * moved) and |cb| (may be NULL) is called with the validation's result. A
 * later qpeer_punch() may upgrade again.
 * |timeout_ms| 0 turns fallback off. Returns 0, UV_EINVAL, UV_ENOTSUP on a
 * server connection, or UV_ENOTCONN.
 */
QPEER_EXTERN int qpeer_conn_set_fallback(qpeer_conn_t *conn,
                                         const struct sockaddr *local,
                                         const struct sockaddr *remote,
                                         uint64_t timeout_ms,
                                         qpeer_fallback_cb cb);

#endif /* QPEER_PUNCH_H */
