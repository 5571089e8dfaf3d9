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
#include "qpeer/masque.h"
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
#define QPEER_PEER_CONNECT_OPTIONS_V2 2
#define QPEER_PEER_CONNECT_OPTIONS_VERSION QPEER_PEER_CONNECT_OPTIONS_V2

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
  /* Added in QPEER_PEER_CONNECT_OPTIONS_V2. */
  /* How often the local interface set is polled while a relayed
   * connection is upgraded (default 5000 ms, within [100, 3600000]); a
   * change, like a change of the address the peer observes for us (NAT
   * rebinding), starts a new punch at once with the backoff reset. */
  uint64_t netwatch_interval_ms;
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
 * Network changes re-probe at once (backoff reset): a new address
 * observed by the peer on an unchanged path (NAT rebinding) and a change
 * of the local interface set (polled every netwatch_interval_ms).
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

/* ---- listener: a long-lived listening peer ------------------------------ */

/** Most peer IDs in a listener's allowlist. */
#define QPEER_PEER_LISTENER_MAX_ALLOW 256
/** Largest max_conns of a listener. */
#define QPEER_PEER_LISTENER_MAX_CONNS 4096
/** Most addresses added with qpeer_peer_listener_add_address(). */
#define QPEER_PEER_LISTENER_MAX_STATIC 8

typedef struct qpeer_peer_listener_s qpeer_peer_listener_t;

/** A listening peer: keeps its relay binding, port mapping and candidate
 * set fresh, lets only allowed peers in and tells every connected peer
 * when its candidates change. Close with qpeer_close(). */
struct qpeer_peer_listener_s {
  QPEER_HANDLE_FIELDS
};

/** Return nonzero to let the peer |peer| in. Runs during the handshake
 * (from the receive path) for peer IDs that are not in the allowlist; it
 * must not close the listener or its endpoint. */
typedef int (*qpeer_peer_allow_cb)(qpeer_peer_listener_t *l,
                                   const qpeer_peer_id_t *peer);

/** What a listener callback reports. */
typedef enum {
  /* A connection from an allowed peer waits: call
   * qpeer_peer_listener_accept() (status 0). */
  QPEER_LISTENER_EV_CONNECTION = 1,
  /* A peer was refused during its handshake and closed (it sees
   * QPEER_EREFUSED): status QPEER_ENOTALLOWED (not allowed) or UV_ENOSPC
   * (max_conns connections are tracked); |peer_id| says who. */
  QPEER_LISTENER_EV_REFUSED = 2,
  /* The candidate set changed (status 0): |cands| is the new set,
   * |added|/|removed| count the addresses gained and lost. Every tracked
   * connection has been sent ADD_ADDRESS / REMOVE_ADDRESS. */
  QPEER_LISTENER_EV_CANDIDATES = 3,
  /* The relay binding: status 0 when bound (|relay| is the public
   * address), negative when it was lost or an attempt failed (the binding
   * is retried with backoff unless the error is final, see
   * qpeer_relay_bind_cb). */
  QPEER_LISTENER_EV_RELAY = 4,
  /* The port mapping changed: status and |portmap| as qpeer_portmap_cb. */
  QPEER_LISTENER_EV_PORTMAP = 5,
  /* The local interface set changed (status 0); a re-gathering follows. */
  QPEER_LISTENER_EV_NETWORK = 6
} qpeer_peer_listener_event;

/** The details of a listener event, lent to the callback (valid during
 * the call only). Fields that do not apply to the event are NULL or 0. */
typedef struct qpeer_peer_listener_info_s {
  qpeer_peer_listener_event event;     /* why the callback runs */
  const qpeer_peer_id_t *peer_id;      /* REFUSED: the peer */
  const qpeer_candidate_t *cands;      /* CANDIDATES: the new set */
  size_t ncands;                       /* its size */
  size_t added;                        /* CANDIDATES: addresses gained */
  size_t removed;                      /* CANDIDATES: addresses lost */
  const struct sockaddr *relay;        /* RELAY, status 0: public address */
  const qpeer_portmap_info_t *portmap; /* PORTMAP: the report */
} qpeer_peer_listener_info_t;

/** Listener events: never inside a qpeer_peer_listener_* call, never after
 * qpeer_close() on the listener. */
typedef void (*qpeer_peer_listener_cb)(qpeer_peer_listener_t *l, int status,
                                       const qpeer_peer_listener_info_t *info);

#define QPEER_PEER_LISTENER_OPTIONS_V1 1
#define QPEER_PEER_LISTENER_OPTIONS_VERSION QPEER_PEER_LISTENER_OPTIONS_V1

/** Listener options (copied, with everything they point to); fields are
 * only appended. */
typedef struct qpeer_peer_listener_options_s {
  /* ALPN protocols accepted (at least one). */
  const char *const *alpn;
  size_t nalpn;
  /* Peer IDs let in (up to QPEER_PEER_LISTENER_MAX_ALLOW). */
  const qpeer_peer_id_t *allow;
  size_t nallow;
  /* Asked for every other peer ID. With neither an allowlist nor
   * |allow_cb| every peer is refused. */
  qpeer_peer_allow_cb allow_cb;
  /* Keep a binding at this relay (qpeer_relay_bind_t, re-bound on loss);
   * NULL: no relay. */
  const qpeer_masque_options_t *relay;
  /* Keep a port mapping of the endpoint's port (its endpoint field may
   * be NULL: the listener's endpoint is used); NULL: no mapping. */
  const qpeer_portmap_options_t *portmap;
  /* STUN servers for server-reflexive candidates (up to
   * QPEER_GATHER_MAX_STUN). */
  const struct sockaddr *const *stun_servers;
  size_t nstun;
  /* Periodic re-gathering (default 60000 ms, within [100, 86400000]). */
  uint64_t refresh_interval_ms;
  /* Interface-set poll (default 5000 ms, within [100, 3600000]). */
  uint64_t netwatch_interval_ms;
  /* Deadline of one gathering (default 2000 ms). */
  uint64_t gather_deadline_ms;
  /* Connections tracked at once (default 64, at most
   * QPEER_PEER_LISTENER_MAX_CONNS); more are refused with UV_ENOSPC. */
  uint32_t max_conns;
  /* Candidates kept and advertised (default and at most
   * QPEER_GATHER_MAX_CANDS), best first. */
  uint32_t max_cands;
  unsigned int flags; /* QPEER_PEER_ALLOW_* */
} qpeer_peer_listener_options_t;

/** Listener counters (monotonic). */
typedef struct qpeer_peer_listener_stats_s {
  uint64_t accepted;        /* connections accepted */
  uint64_t refused;         /* peers refused (not allowed or full) */
  uint64_t gathers;         /* gatherings completed */
  uint64_t changes;         /* candidate-set changes */
  uint64_t adds_sent;       /* addresses announced (per connection) */
  uint64_t removes_sent;    /* addresses withdrawn (per connection) */
  uint64_t network_changes; /* interface-set and observed-address changes */
  uint64_t relay_binds;     /* relay bindings obtained (first and again) */
  uint64_t conns;           /* connections tracked now */
} qpeer_peer_listener_stats_t;

QPEER_EXTERN void qpeer_peer_listener_options_default_versioned(
    int options_version, qpeer_peer_listener_options_t *opts);
#define qpeer_peer_listener_options_default(O)                                 \
  qpeer_peer_listener_options_default_versioned(                               \
      QPEER_PEER_LISTENER_OPTIONS_VERSION, (O))

QPEER_EXTERN int qpeer_peer_listener_init_versioned(
    qpeer_endpoint_t *ep, qpeer_peer_listener_t *l, int options_version,
    const qpeer_peer_listener_options_t *opts);

/**
 * `qpeer_peer_listener_init` prepares listener |l| on |ep| under |opts|
 * (copied, including the relay and port-mapping options). No I/O happens
 * until qpeer_peer_listener_start(). Close |l| with qpeer_close() before
 * |ep|; closing stops listening, releases the relay binding and deletes the
 * port mapping (bounded), while connections already accepted stay the
 * caller's. Returns 0 or one of: UV_EINVAL (NULL argument, no ALPN, more
 * than QPEER_PEER_LISTENER_MAX_ALLOW peer IDs, STUN servers, max_conns or
 * max_cands over their bounds, bad relay or port-mapping options),
 * UV_ENOMEM.
 *
 * Added in 0.1.
 */
#define qpeer_peer_listener_init(EP, L, O)                                     \
  qpeer_peer_listener_init_versioned((EP), (L),                                \
                                     QPEER_PEER_LISTENER_OPTIONS_VERSION, (O))

/**
 * `qpeer_peer_listener_start` makes the endpoint listen (the listener owns
 * its listening: the endpoint must not be listening yet), starts the relay
 * binding and the port mapping, gathers candidates and from then on keeps
 * them fresh: every refresh_interval_ms, when the relay address or the
 * mapping changes, when the interface set changes and when a connected
 * peer observes a new address for us. |cb| reports events (see
 * qpeer_peer_listener_event) on later loop iterations until qpeer_close().
 * Returns 0, UV_EINVAL, UV_EALREADY (started, or the endpoint already
 * listens), or the error of qpeer_endpoint_listen() or
 * qpeer_relay_bind_start(); then |cb| is never called.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_peer_listener_start(qpeer_peer_listener_t *l,
                                           qpeer_peer_listener_cb cb);

/**
 * `qpeer_peer_listener_accept` binds the oldest waiting connection to the
 * caller's |conn| (then close it with qpeer_close()), tracks it and
 * advertises the current candidates to it (at once, or after the first
 * gathering); later changes reach it as ADD_ADDRESS / REMOVE_ADDRESS. A
 * tracked connection is forgotten when it closes. Returns 0, UV_EINVAL,
 * UV_EAGAIN when nothing waits, or UV_ENOSPC (max_conns tracked).
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_peer_listener_accept(qpeer_peer_listener_t *l,
                                            qpeer_conn_t *conn);

/**
 * `qpeer_peer_listener_refresh` re-gathers candidates now (after one that
 * runs, if any); a change is reported as QPEER_LISTENER_EV_CANDIDATES.
 * Returns 0, UV_EINVAL, or UV_ENOTCONN before start.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_peer_listener_refresh(qpeer_peer_listener_t *l);

/**
 * `qpeer_peer_listener_add_address` adds |addr| (copied) as a candidate of
 * |type| (QPEER_CANDIDATE_HOST, _SRFLX or _MAPPED), e.g. a public address
 * with a manually forwarded port; `qpeer_peer_listener_remove_address`
 * takes one away. Either re-gathers at once (a change is reported and
 * sent to every connection). Return 0, UV_EINVAL (bad address or type),
 * UV_EEXIST / UV_ENOENT (already there / not there), or UV_ENOSPC (more
 * than QPEER_PEER_LISTENER_MAX_STATIC).
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_peer_listener_add_address(qpeer_peer_listener_t *l,
                                                 const struct sockaddr *addr,
                                                 qpeer_candidate_type type);
QPEER_EXTERN int
qpeer_peer_listener_remove_address(qpeer_peer_listener_t *l,
                                   const struct sockaddr *addr);

/**
 * `qpeer_peer_listener_get_ticket` fills |t| with a fresh ticket for the
 * current state: the endpoint's peer ID, the relay's public address (type
 * QPEER_TICKET_ADDR_RELAY, first) with the relay entry (URL from the relay
 * options' authority, server name or address; pinned when the relay is
 * authenticated by peer ID, WebPKI when by certificate), then the host,
 * server-reflexive and mapped candidates, best first, up to
 * QPEER_TICKET_MAX_ADDRS addresses. Returns 0, UV_EINVAL, or UV_EAGAIN
 * when no address is known yet (before the first gathering or binding).
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_peer_listener_get_ticket(const qpeer_peer_listener_t *l,
                                                qpeer_ticket_t *t);

/**
 * `qpeer_peer_listener_get_candidates` copies up to |max| candidates of the
 * current set into |out| and their total into |*pn|. Returns 0 or
 * UV_EINVAL.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int
qpeer_peer_listener_get_candidates(const qpeer_peer_listener_t *l,
                                   qpeer_candidate_t *out, size_t max,
                                   size_t *pn);

/** `qpeer_peer_listener_get_stats` copies the counters. Returns 0 or
 * UV_EINVAL. Added in 0.1. */
QPEER_EXTERN int
qpeer_peer_listener_get_stats(const qpeer_peer_listener_t *l,
                              qpeer_peer_listener_stats_t *stats);

/** `qpeer_peer_listener_event_name` names an event ("connection",
 * "refused", "candidates", "relay", "portmap", "network"), or "unknown".
 * Added in 0.1. */
QPEER_EXTERN const char *
qpeer_peer_listener_event_name(qpeer_peer_listener_event ev);

/**
 * `qpeer_conn_get_remote_candidates` (client side) copies up to |max| of
 * the candidates the server advertised on |conn| (ADD_ADDRESS, minus
 * REMOVE_ADDRESS) into |out| and their number into |*pn|. Returns 0,
 * UV_EINVAL, or UV_ENOTSUP on a server connection.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_conn_get_remote_candidates(const qpeer_conn_t *conn,
                                                  qpeer_candidate_t *out,
                                                  size_t max, size_t *pn);

#endif /* QPEER_PEER_H */
