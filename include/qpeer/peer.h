/* SPDX-License-Identifier: MIT */
/*
 * Peer connect: reach a peer by ticket. The dialer races the ticket's relay
 * address (the public address the peer's relay binding forwards, reached
 * from the endpoint socket through a socket alias) against its direct
 * candidates, happy-eyeballs style, with the peer ID pinned; the first
 * handshake to complete wins and is bound to the caller's connection
 * handle. A connection that came up through the relay is then upgraded to
 * a direct path in the background (gather, punch, migrate), falls back to
 * the relay when the direct path dies and re-probes with backoff. The
 * listener's half is qpeer_peer_advertise(). See doc/peer-connect.md.
 */
#ifndef QPEER_PEER_H
#define QPEER_PEER_H

#include "qpeer/conn.h"
#include "qpeer/gather.h"
#include "qpeer/punch.h"
#include "qpeer/ticket.h"

/** Which paths qpeer_peer_connect() may use. */
typedef enum {
  /* Race relay and direct candidates; after a relay win, upgrade to a
   * direct path in the background (the default). */
  QPEER_PREFER_DIRECT = 0,
  /* Direct candidates only; the relay is never used. */
  QPEER_DIRECT_ONLY = 1,
  /* The relay address only; no upgrade is attempted. */
  QPEER_RELAY_ONLY = 2
} qpeer_peer_policy;

/** Flags of qpeer_peer_connect_options_t and qpeer_peer_advertise(). */
enum {
  /* Loopback candidates count (tests and same-host peers): gathered, and
   * passed as QPEER_PUNCH_ALLOW_LOOPBACK to the punch and advertisement. */
  QPEER_PEER_ALLOW_LOOPBACK = 0x01,
  /* Link-local candidates count (likewise). */
  QPEER_PEER_ALLOW_LINK_LOCAL = 0x02
};

#define QPEER_PEER_CONNECT_OPTIONS_V1 1
#define QPEER_PEER_CONNECT_OPTIONS_VERSION QPEER_PEER_CONNECT_OPTIONS_V1

/** Options of qpeer_peer_connect() (copied); fields are only appended. */
typedef struct qpeer_peer_connect_options_s {
  qpeer_peer_policy policy; /* default QPEER_PREFER_DIRECT */
  /* ALPN protocols offered (at least one; copied). */
  const char *const *alpn;
  size_t nalpn;
  /* Delay between starting successive direct attempts (default 50 ms;
   * the relay attempt and the first direct one start at once). */
  uint64_t stagger_ms;
  /* Handshake timeout of each attempt (0: the endpoint's). */
  uint64_t handshake_timeout_ms;
  /* Silence on the direct path after which the connection falls back to
   * the relay path (default 3000 ms). */
  uint64_t fallback_timeout_ms;
  /* STUN servers asked for server-reflexive candidates before punching
   * (up to QPEER_GATHER_MAX_STUN; copied). */
  const struct sockaddr *const *stun_servers;
  size_t nstun;
  /* Gathering deadline before each punch (default 2000 ms). */
  uint64_t gather_deadline_ms;
  /* Re-probes (punches after the first) after a failed punch or a
   * fallback (default 5); the delay starts at |reprobe_min_ms| (default
   * 1000) and doubles up to |reprobe_max_ms| (default 30000). */
  uint32_t max_reprobes;
  uint64_t reprobe_min_ms;
  uint64_t reprobe_max_ms;
  unsigned int flags; /* QPEER_PEER_ALLOW_* */
} qpeer_peer_connect_options_t;

typedef struct qpeer_peer_connect_s qpeer_peer_connect_t;

/** Called exactly once: 0 when |req|->conn is connected (|req|->via_relay
 * says which path won), or an error. */
typedef void (*qpeer_peer_connect_cb)(qpeer_peer_connect_t *req, int status);

struct qpeer_peer_connect_s {
  QPEER_REQ_FIELDS
  /* read-only: the caller's connection (set on success) */
  qpeer_conn_t *conn;
  /* read-only: nonzero when the relay attempt won */
  int via_relay;
  /* read-only: the relay path (synthetic local, relay address); both
   * AF_UNSPEC when the ticket has no relay address or it is not used */
  qpeer_path_t relay_path;
  /* read-only: attempts started, and uv_now() of the latest punch start
   * (0: none yet), for reporting how long an upgrade took */
  uint32_t attempts;
  uint64_t punch_started_ms;
  /* read-only: background upgrade counters */
  uint32_t punches;   /* punches started */
  uint32_t upgrades;  /* punches that moved to a direct path */
  uint32_t fallbacks; /* fallbacks to the relay path */
  /* private */
  qpeer_peer_connect_cb cb;
  void *impl;
};

QPEER_EXTERN void qpeer_peer_connect_options_default_versioned(
    int options_version, qpeer_peer_connect_options_t *opts);
#define qpeer_peer_connect_options_default(O)                                  \
  qpeer_peer_connect_options_default_versioned(                                \
      QPEER_PEER_CONNECT_OPTIONS_VERSION, (O))

QPEER_EXTERN int qpeer_peer_connect_versioned(
    qpeer_peer_connect_t *req, qpeer_endpoint_t *ep, qpeer_conn_t *conn,
    const qpeer_ticket_t *t, int options_version,
    const qpeer_peer_connect_options_t *opts, qpeer_peer_connect_cb cb);

/**
 * `qpeer_peer_connect` connects |ep| to the peer of ticket |t| (copied)
 * under |opts| (copied; NULL for the defaults, which lack an ALPN and so
 * are refused). One QUIC attempt per path runs on library-owned handles,
 * each pinning t->peer_id: the relay address (the ticket's
 * QPEER_TICKET_ADDR_RELAY entry, reached from the socket through a socket
 * alias with a synthetic local address in 100::/64) and every other
 * address. The first attempt to complete wins: its connection is moved
 * into the caller's |conn| (the others are closed), |cb| fires with 0 and
 * |conn| must then be closed with qpeer_close(). On failure |conn| is left
 * uninitialised (nothing to close) and |cb| carries the last attempt's
 * error, or QPEER_ENOPATH when the policy left nothing to try.
 *
 * With QPEER_PREFER_DIRECT and a relay win, the library upgrades in the
 * background: it gathers local candidates (host, the address the peer
 * observed on this connection, STUN), calls qpeer_punch(), names the relay
 * path as fallback (qpeer_conn_set_fallback) and re-probes with backoff.
 * Path changes reach the application through the connection's on_path.
 * |req| stays in use until qpeer_peer_connect_stop(|req|) is called or
 * |conn| is closed (closing the connection ends the upgrade by itself;
 * after that, qpeer_peer_connect_stop returns UV_EINVAL).
 *
 * Returns 0, UV_EINVAL (NULL argument, no ALPN, zero peer ID), UV_ENOMEM,
 * or QPEER_ENOPATH (the policy and ticket leave no path); then |cb| is
 * never called.
 *
 * Added in 0.1.
 */
#define qpeer_peer_connect(REQ, EP, CONN, T, O, CB)                            \
  qpeer_peer_connect_versioned((REQ), (EP), (CONN), (T),                       \
                               QPEER_PEER_CONNECT_OPTIONS_VERSION, (O), (CB))

/**
 * `qpeer_peer_connect_stop` ends |req|: before |cb| ran, every attempt is
 * closed and |cb| fires with UV_ECANCELED on a later loop iteration (|conn|
 * stays uninitialised); afterwards it stops the background upgrade (a
 * running punch completes quietly, the fallback is turned off, the relay
 * alias is released). The caller may free |req| once |cb| has run and
 * this function has been called. Returns 0, or UV_EINVAL for an unknown
 * or already stopped request.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_peer_connect_stop(qpeer_peer_connect_t *req);

/* ---- listen side ------------------------------------------------------- */

typedef struct qpeer_peer_advertise_s qpeer_peer_advertise_t;

/** Called exactly once: 0 when the candidates were advertised
 * (|req|->ncands of them), or an error of qpeer_conn_advertise(). */
typedef void (*qpeer_peer_advertise_cb)(qpeer_peer_advertise_t *req,
                                        int status);

struct qpeer_peer_advertise_s {
  QPEER_REQ_FIELDS
  /* read-only: candidates advertised */
  size_t ncands;
  /* private */
  qpeer_peer_advertise_cb cb;
  qpeer_conn_t *conn;
  unsigned int flags;
  qpeer_gather_t gather;
};

/**
 * `qpeer_peer_advertise` (server side) gathers |conn|'s endpoint's host
 * candidates and, with |stun_servers| (|nstun|, copied), server-reflexive
 * ones, then sends them with qpeer_conn_advertise() so that the dialer can
 * punch to them. Call it from the connection callback right after
 * qpeer_endpoint_accept(). |flags| are QPEER_PEER_ALLOW_*. |req| and |conn|
 * must stay valid until |cb|, which fires exactly once (UV_ECANCELED if the
 * connection ended first). Returns 0, UV_EINVAL, UV_ENOTSUP on a client
 * connection, or the error of qpeer_gather() (then |cb| is never called).
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_peer_advertise(qpeer_peer_advertise_t *req,
                                      qpeer_conn_t *conn,
                                      const struct sockaddr *const *stun,
                                      size_t nstun, unsigned int flags,
                                      qpeer_peer_advertise_cb cb);

#endif /* QPEER_PEER_H */
