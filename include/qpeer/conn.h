/* SPDX-License-Identifier: MIT */
/*
 * qpeer_conn_t: one QUIC connection. A client connection is made by
 * qpeer_connect(); a server one is bound to the caller's handle by
 * qpeer_endpoint_accept(). Either way the handle must be closed with
 * qpeer_close(), which also closes its remaining streams first.
 */
#ifndef QPEER_CONN_H
#define QPEER_CONN_H

#include "qpeer/endpoint.h"

typedef struct qpeer_stream_s qpeer_stream_t;
typedef struct qpeer_connect_s qpeer_connect_t;

struct qpeer_conn_s {
  QPEER_HANDLE_FIELDS
};

/** Called once when the handshake completes (status 0, req->conn set) or
 * fails. After a failure the conn handle must still be closed. */
typedef void (*qpeer_connect_cb)(qpeer_connect_t *req, int status);

struct qpeer_connect_s {
  QPEER_REQ_FIELDS
  /* read-only: the connection (set by qpeer_connect) */
  qpeer_conn_t *conn;
  /* private */
  qpeer_connect_cb cb;
};

/** A network path: the (local, remote) address pair. A local address may
 * be synthetic (a relay tunnel), not the socket's own address. */
typedef struct qpeer_path_s {
  struct sockaddr_storage local;  /* local address of the path */
  struct sockaddr_storage remote; /* remote address of the path */
} qpeer_path_t;

#define QPEER_CONNECT_OPTIONS_V1 1
#define QPEER_CONNECT_OPTIONS_VERSION QPEER_CONNECT_OPTIONS_V1

/** Options for qpeer_connect(); strings and arrays are copied. */
typedef struct qpeer_connect_options_s {
  /* Address of the server (required). */
  const struct sockaddr *remote;
  /* ALPN protocols offered, in order of preference (at least one). */
  const char *const *alpn;
  size_t nalpn;
  /* Authentication mode (default QPEER_AUTH_PEER_ID). */
  qpeer_auth_mode auth;
  /* QPEER_AUTH_PEER_ID: the peer ID the server must have. */
  const qpeer_peer_id_t *peer_id;
  /* TLS server name (SNI); also the host name checked in WebPKI and CA
   * modes (required there). */
  const char *server_name;
  /* QPEER_AUTH_CA_FILE: PEM file of trusted CA certificates. */
  const char *ca_file;
  /* Overrides of the endpoint's settings (0 = use the endpoint's). */
  uint64_t idle_timeout_ms;
  uint64_t keepalive_ms;
  uint64_t handshake_timeout_ms;
  /* Local address of the first path: NULL for the endpoint's socket, or a
   * virtual interface's synthetic address (e.g. a relay tunnel). */
  const struct sockaddr *local;
} qpeer_connect_options_t;

QPEER_EXTERN void
qpeer_connect_options_default_versioned(int options_version,
                                        qpeer_connect_options_t *opts);
#define qpeer_connect_options_default(OPTS)                                   \
  qpeer_connect_options_default_versioned(QPEER_CONNECT_OPTIONS_VERSION,      \
                                          (OPTS))

QPEER_EXTERN int qpeer_connect_versioned(qpeer_connect_t *req,
                                         qpeer_endpoint_t *ep,
                                         qpeer_conn_t *conn,
                                         int options_version,
                                         const qpeer_connect_options_t *opts,
                                         qpeer_connect_cb cb);

/**
 * `qpeer_connect` starts a QUIC handshake from |ep| and initialises |conn|.
 * |cb| fires exactly once: status 0 once the handshake completed and the
 * peer was authenticated, or an error: QPEER_EPEERID (wrong peer ID),
 * QPEER_ECERT (certificate not trusted), QPEER_EREFUSED (the server refused
 * our identity), QPEER_EHANDSHAKE, UV_ETIMEDOUT, QPEER_EVERSION,
 * UV_ECANCELED (closed before completion). Returns 0 (then |conn| must be
 * closed with qpeer_close), UV_EINVAL, UV_ENOMEM, UV_EBUSY when the
 * endpoint is closing, or QPEER_ETLS / QPEER_ECERT for an unusable CA file.
 */
#define qpeer_connect(REQ, EP, CONN, OPTS, CB)                                \
  qpeer_connect_versioned((REQ), (EP), (CONN), QPEER_CONNECT_OPTIONS_VERSION, \
                          (OPTS), (CB))

/** What ended a connection. */
typedef enum {
  QPEER_CLOSE_NONE = 0,        /* still open */
  QPEER_CLOSE_LOCAL,           /* we closed it */
  QPEER_CLOSE_TRANSPORT,       /* transport error (either side) */
  QPEER_CLOSE_APPLICATION,     /* application error code (either side) */
  QPEER_CLOSE_IDLE,            /* idle timeout */
  QPEER_CLOSE_STATELESS_RESET, /* peer sent a stateless reset */
  QPEER_CLOSE_HANDSHAKE_TIMEOUT /* handshake did not finish in time */
} qpeer_close_kind;

/** The close reason as it went over the wire (like ngtcp2_ccerr). */
typedef struct qpeer_close_info_s {
  qpeer_close_kind kind; /* what ended the connection */
  int remote;            /* nonzero if the peer sent the close */
  uint64_t code;         /* transport or application error code */
  uint64_t frame_type;   /* frame that caused a transport error */
  const char *reason;    /* reason phrase (not NUL-terminated; borrowed) */
  size_t reasonlen;      /* length of |reason| */
} qpeer_close_info_t;

/** Why a connection's path changed. */
typedef enum {
  QPEER_PATH_MIGRATED = 0, /* validated and migrated (client) */
  QPEER_PATH_PEER_MOVED,   /* the peer migrated or was rebound (server) */
  QPEER_PATH_FAILED        /* a path validation failed */
} qpeer_path_reason;

/** Connection event callbacks (copied by qpeer_conn_set_callbacks). */
typedef struct qpeer_conn_callbacks_s {
  /* A peer-initiated stream is waiting: call qpeer_conn_accept_stream(). */
  void (*on_stream)(qpeer_conn_t *conn, int status);
  /* An unreliable datagram arrived; |data| is valid during the call. */
  void (*on_datagram)(qpeer_conn_t *conn, const uint8_t *data, size_t len);
  /* The connection ended (once); |info| is valid during the call. The
   * handle stays valid until closed with qpeer_close(). */
  void (*on_closed)(qpeer_conn_t *conn, int status,
                    const qpeer_close_info_t *info);
  /* The current path changed, or a validation failed. */
  void (*on_path)(qpeer_conn_t *conn, qpeer_path_reason reason,
                  const qpeer_path_t *old_path, const qpeer_path_t *new_path);
  /* The peer reported the address it observes for us on the current path
   * (QUIC address discovery); again whenever it changes. |addr| is valid
   * during the call. */
  void (*on_observed_address)(qpeer_conn_t *conn,
                              const struct sockaddr *addr);
} qpeer_conn_callbacks_t;

/** `qpeer_conn_set_callbacks` installs |cbs| (copied; NULL members are
 * ignored events). Events that happened before are delivered afterwards
 * (streams wait in the accept queue). Returns 0 or UV_EINVAL. */
QPEER_EXTERN int qpeer_conn_set_callbacks(qpeer_conn_t *conn,
                                          const qpeer_conn_callbacks_t *cbs);

/**
 * `qpeer_conn_shutdown` closes the connection gracefully: it sends a
 * CONNECTION_CLOSE with application error |code| and |reason| (copied, up
 * to 1024 bytes). on_closed then fires with QPEER_CLOSE_LOCAL. Returns 0,
 * UV_ENOTCONN if already closed, or UV_EINVAL.
 */
QPEER_EXTERN int qpeer_conn_shutdown(qpeer_conn_t *conn, uint64_t code,
                                     const char *reason);

/**
 * `qpeer_conn_send_datagram` queues an unreliable datagram (RFC 9221); the
 * payload is copied. Returns 0, UV_EMSGSIZE if |len| exceeds
 * qpeer_conn_get_max_datagram_size(), UV_ENOBUFS when the bounded queue is
 * full (1024 datagrams or 512 KiB queued and not yet sent; the datagram
 * counts in stats.datagrams_dropped), UV_ENOTSUP when the peer does not
 * accept datagrams, UV_ENOMEM, or UV_ENOTCONN.
 */
QPEER_EXTERN int qpeer_conn_send_datagram(qpeer_conn_t *conn,
                                          const uint8_t *data, size_t len);

/** `qpeer_conn_get_max_datagram_size` returns the largest payload
 * qpeer_conn_send_datagram() accepts now (0 when datagrams are off). */
QPEER_EXTERN size_t qpeer_conn_get_max_datagram_size(const qpeer_conn_t *conn);

/** `qpeer_conn_get_peer_id` writes the peer's ID once the handshake
 * finished. Returns 0, UV_ENOTCONN before that, or UV_ENOENT when the peer
 * presented no Ed25519 identity (WebPKI server, anonymous client). */
QPEER_EXTERN int qpeer_conn_get_peer_id(const qpeer_conn_t *conn,
                                        qpeer_peer_id_t *pid);

/** `qpeer_conn_get_observed_address` writes the address the peer last
 * reported for us (QUIC address discovery). Returns 0, UV_ENOENT when none
 * was reported (yet, or the peer does not offer it), or UV_EINVAL. */
QPEER_EXTERN int qpeer_conn_get_observed_address(const qpeer_conn_t *conn,
                                                 struct sockaddr_storage *a);

/** `qpeer_conn_get_alpn` returns the negotiated ALPN (borrowed) or NULL. */
QPEER_EXTERN const char *qpeer_conn_get_alpn(const qpeer_conn_t *conn);

/** `qpeer_conn_get_path` writes the current path. */
QPEER_EXTERN int qpeer_conn_get_path(const qpeer_conn_t *conn,
                                     qpeer_path_t *path);

/** Per-connection statistics. */
typedef struct qpeer_conn_stats_s {
  uint64_t smoothed_rtt_us; /* smoothed RTT */
  uint64_t min_rtt_us;      /* minimum RTT */
  uint64_t rttvar_us;       /* RTT variation */
  uint64_t cwnd;            /* congestion window, bytes */
  uint64_t bytes_in_flight; /* unacknowledged bytes in flight */
  uint64_t bytes_sent;      /* UDP payload bytes sent */
  uint64_t bytes_received;  /* UDP payload bytes received */
  uint64_t packets_sent;    /* QUIC packets sent */
  uint64_t packets_received; /* QUIC packets received */
  uint64_t packets_lost;    /* packets declared lost; counted only while
                               qlog is on for the connection (ngtcp2 0.12
                               exposes losses nowhere else), else 0 */
  uint64_t pto_count;       /* probe timeouts in a row */
  uint64_t max_udp_payload; /* current path's max UDP payload */
  uint64_t streams_opened;  /* streams opened by either side */
  uint64_t datagrams_sent;  /* DATAGRAM frames sent */
  uint64_t datagrams_received; /* DATAGRAM frames received */
  uint64_t datagrams_dropped;  /* datagrams dropped (queue, size, lost) */
  qpeer_path_t path;        /* current path */
} qpeer_conn_stats_t;

/** `qpeer_conn_get_stats` fills |stats|. Returns 0 or UV_EINVAL. */
QPEER_EXTERN int qpeer_conn_get_stats(const qpeer_conn_t *conn,
                                      qpeer_conn_stats_t *stats);

typedef struct qpeer_migrate_s qpeer_migrate_t;

/** Called once when a migration finished: status 0 when the new path was
 * validated and the connection moved to it, QPEER_ENOPATH when validation
 * failed (the connection stays on its old path), UV_ECANCELED on close. */
typedef void (*qpeer_migrate_cb)(qpeer_migrate_t *req, int status);

struct qpeer_migrate_s {
  QPEER_REQ_FIELDS
  /* read-only: the path the request asked for */
  qpeer_path_t path;
  /* private */
  qpeer_migrate_cb cb;
};

/**
 * `qpeer_conn_migrate` validates the path (|local|, |remote|) and moves the
 * connection to it (client side only: QUIC servers follow their client).
 * |local| NULL means the endpoint socket's address; a virtual interface's
 * synthetic address sends through that interface (a relay tunnel). Only
 * one migration runs at a time (ngtcp2 0.12 validates one path at a time).
 * |cb| fires exactly once. Returns 0, UV_EINVAL, UV_ENOTSUP on a server
 * connection, UV_ENOTCONN before the handshake is confirmed or after the
 * connection ended, UV_EBUSY while another migration runs, UV_EALREADY when
 * the connection is already on that path, QPEER_EFLOWCONTROL when the peer
 * has issued no spare connection ID yet, or QPEER_EPROTO when the peer
 * disabled migration.
 */
QPEER_EXTERN int qpeer_conn_migrate(qpeer_migrate_t *req, qpeer_conn_t *conn,
                                    const struct sockaddr *local,
                                    const struct sockaddr *remote,
                                    qpeer_migrate_cb cb);

/** `qpeer_conn_get_endpoint` returns the endpoint of |conn|. */
QPEER_EXTERN qpeer_endpoint_t *qpeer_conn_get_endpoint(const qpeer_conn_t *c);

/** `qpeer_conn_is_server` returns nonzero for an accepted connection. */
QPEER_EXTERN int qpeer_conn_is_server(const qpeer_conn_t *conn);

#endif /* QPEER_CONN_H */
