/* SPDX-License-Identifier: MIT */
/*
 * MASQUE relaying over HTTP/3 (doc/masque.md): the client side
 * (qpeer_tunnel_t, a CONNECT-UDP tunnel to one target, RFC 9298;
 * qpeer_relay_bind_t, a public UDP address on a relay that any peer can
 * send to, draft-ietf-masque-connect-udp-listen) and the relay side
 * (qpeer_relay_t).
 * A tunnel or binding is a virtual interface of its endpoint: a synthetic
 * local address whose packets travel through the relay, so the endpoint's
 * QUIC connections use it exactly like the socket.
 *
 * Endpoints that carry MASQUE (both ends) should set
 * max_datagram_frame_size to at least 1280 (1400 recommended) so that a
 * full-size inner packet fits one QUIC DATAGRAM frame.
 */
#ifndef QPEER_MASQUE_H
#define QPEER_MASQUE_H

#include "qpeer/conn.h"

/** The ALPN of HTTP/3, which MASQUE runs on. */
#define QPEER_MASQUE_ALPN "h3"

/** The most public addresses a binding reports. */
#define QPEER_MASQUE_MAX_ADDRS 4

typedef struct qpeer_tunnel_s qpeer_tunnel_t;
typedef struct qpeer_relay_bind_s qpeer_relay_bind_t;
typedef struct qpeer_relay_s qpeer_relay_t;

/** A CONNECT-UDP tunnel to one target through a proxy. */
struct qpeer_tunnel_s {
  QPEER_HANDLE_FIELDS
};

/** A UDP binding on a relay: a public address that forwards to us. */
struct qpeer_relay_bind_s {
  QPEER_HANDLE_FIELDS
};

/** The relay (proxy) side: serves CONNECT-UDP and bind requests. */
struct qpeer_relay_s {
  QPEER_HANDLE_FIELDS
};

/** One HTTP header field (borrowed; not NUL-terminated). */
typedef struct qpeer_masque_header_s {
  const char *name;  /* lower-case field name */
  size_t namelen;    /* its length */
  const char *value; /* field value */
  size_t valuelen;   /* its length */
} qpeer_masque_header_t;

/* ---- client side ------------------------------------------------------ */

#define QPEER_MASQUE_OPTIONS_V1 1
#define QPEER_MASQUE_OPTIONS_VERSION QPEER_MASQUE_OPTIONS_V1

/** Options of a tunnel or binding; strings are copied. Fields are only
 * ever appended. */
typedef struct qpeer_masque_options_s {
  /* The proxy's (relay's) UDP address (required). */
  const struct sockaddr *proxy;
  /* How the proxy is authenticated (see qpeer_connect_options_t): mode,
   * pinned peer ID, TLS server name, CA file. */
  qpeer_auth_mode auth;
  const qpeer_peer_id_t *peer_id;
  const char *server_name;
  const char *ca_file;
  /* :authority of the request; NULL uses server_name (if set) or the
   * proxy's address, with the proxy's port. */
  const char *authority;
  /* RFC 9298 URI template; NULL uses
   * https://{host}:{port}/.well-known/masque/udp/{target_host}/{target_port}/
   * where {host} and {port} come from the authority. */
  const char *uri_template;
  /* An OAuth 2.0 bearer token, sent as "authorization: Bearer <token>";
   * NULL sends none. */
  const char *bearer_token;
  /* qpeer_tunnel_t: the target, a host name or an IP literal, and port. */
  const char *target_host;
  uint16_t target_port;
  /* The virtual interface's synthetic local address; NULL chooses one: a
   * binding uses its first public address, a tunnel an address in the
   * discard-only prefix 100::/64 (RFC 6666). */
  const struct sockaddr *vif_addr;
  /* QUIC settings of the connection to the proxy (0: the endpoint's;
   * the defaults set a 10000 ms keep-alive so that a dead relay is
   * noticed). */
  uint64_t idle_timeout_ms;
  uint64_t keepalive_ms;
  uint64_t handshake_timeout_ms;
  /* Time from start until the proxy answered (default 10000 ms). */
  uint64_t request_timeout_ms;
  /* qpeer_relay_bind_t: first and largest delay before binding again
   * after the relay connection dropped or an attempt failed (defaults 250
   * and 30000 ms; the delay doubles, with jitter). */
  uint64_t retry_min_ms;
  uint64_t retry_max_ms;
} qpeer_masque_options_t;

QPEER_EXTERN void
qpeer_masque_options_default_versioned(int options_version,
                                       qpeer_masque_options_t *opts);
/** `qpeer_masque_options_default` fills |opts| with the defaults. */
#define qpeer_masque_options_default(OPTS)                                     \
  qpeer_masque_options_default_versioned(QPEER_MASQUE_OPTIONS_VERSION, (OPTS))

/** Counters of a tunnel or binding (monotonic). */
typedef struct qpeer_masque_stats_s {
  uint64_t tx_packets;        /* UDP payloads sent through the relay */
  uint64_t tx_bytes;          /* their bytes */
  uint64_t rx_packets;        /* UDP payloads received through it */
  uint64_t rx_bytes;          /* their bytes */
  uint64_t tx_quic_datagrams; /* sent as QUIC DATAGRAM frames */
  uint64_t tx_capsules;       /* sent as DATAGRAM capsules */
  uint64_t rx_quic_datagrams; /* received as QUIC DATAGRAM frames */
  uint64_t rx_capsules;       /* received as DATAGRAM capsules */
  uint64_t dropped;           /* not sent or not delivered */
  uint64_t connects;          /* successful requests (binds and re-binds) */
  uint64_t failures;          /* failed attempts and lost bindings */
  int http_status;            /* :status of the last response (0: none) */
  int peer_h3_datagram;       /* the proxy announced SETTINGS_H3_DATAGRAM */
  char proxy_status[256];     /* Proxy-Status of the last response, or "" */
} qpeer_masque_stats_t;

/** Tunnel event: 0 once the proxy accepted the tunnel; a negative code
 * once when it failed or ended (no callback follows that one). */
typedef void (*qpeer_tunnel_cb)(qpeer_tunnel_t *tunnel, int status);

/** Received UDP payload; |data| is valid during the call. */
typedef void (*qpeer_tunnel_recv_cb)(qpeer_tunnel_t *tunnel,
                                     const uint8_t *data, size_t len);

QPEER_EXTERN int qpeer_tunnel_init_versioned(qpeer_endpoint_t *ep,
                                             qpeer_tunnel_t *tunnel,
                                             int options_version,
                                             const qpeer_masque_options_t *o);

/**
 * `qpeer_tunnel_init` prepares a CONNECT-UDP tunnel from |ep| through the
 * proxy in |opts| to opts->target_host:target_port. No I/O happens until
 * qpeer_tunnel_start(). |opts| is copied. The tunnel must be closed with
 * qpeer_tunnel_close() before |ep| is closed. Returns 0, UV_EINVAL (no
 * proxy or target, bad template) or UV_ENOMEM.
 */
#define qpeer_tunnel_init(EP, T, OPTS)                                         \
  qpeer_tunnel_init_versioned((EP), (T), QPEER_MASQUE_OPTIONS_VERSION, (OPTS))

/**
 * `qpeer_tunnel_start` connects to the proxy (QUIC, ALPN "h3") and sends
 * the CONNECT-UDP request. |cb| runs with 0 once the proxy answered 2xx;
 * from then on the virtual interface (qpeer_tunnel_get_local_addr) carries
 * the endpoint's packets to the target, and qpeer_tunnel_send() works. It
 * runs once more, with a negative status, when the tunnel fails or ends:
 * QPEER_EREFUSED (401, 407, or 403 for a reason other than the target:
 * credentials refused), QPEER_ERELAY (another HTTP error, such as 403
 * destination_ip_prohibited or 429; the status and Proxy-Status are in
 * qpeer_tunnel_get_stats), QPEER_EH3 (HTTP/3 error, or a proxy without
 * Extended CONNECT), UV_ETIMEDOUT (no answer in request_timeout_ms),
 * UV_EOF (the proxy ended the tunnel), or the connection's error
 * (QPEER_EPEERID, QPEER_EIDLE, ...). No callback runs after
 * qpeer_tunnel_close(). Returns 0, UV_EINVAL or UV_EALREADY (started
 * before), or the error of qpeer_connect(); then |cb| is never called.
 */
QPEER_EXTERN int qpeer_tunnel_start(qpeer_tunnel_t *tunnel, qpeer_tunnel_cb cb);

/**
 * `qpeer_tunnel_recv_start` delivers received payloads to |cb| instead of
 * the endpoint (raw UDP use of the tunnel). `qpeer_tunnel_recv_stop`
 * delivers them to the endpoint again. Return 0 or UV_EINVAL.
 */
QPEER_EXTERN int qpeer_tunnel_recv_start(qpeer_tunnel_t *tunnel,
                                         qpeer_tunnel_recv_cb cb);
QPEER_EXTERN int qpeer_tunnel_recv_stop(qpeer_tunnel_t *tunnel);

/**
 * `qpeer_tunnel_send` sends one UDP payload (copied) to the target. Best
 * effort, like UDP. Returns 0, UV_ENOTCONN before the tunnel is up,
 * UV_EMSGSIZE, UV_ENOBUFS or UV_EINVAL.
 */
QPEER_EXTERN int qpeer_tunnel_send(qpeer_tunnel_t *tunnel, const uint8_t *data,
                                   size_t len);

/** `qpeer_tunnel_get_local_addr` writes the virtual interface's address:
 * use it as qpeer_connect_options_t.local to connect through the tunnel.
 * Returns 0, UV_EINVAL or UV_ENOTCONN before the tunnel is up. */
QPEER_EXTERN int qpeer_tunnel_get_local_addr(const qpeer_tunnel_t *tunnel,
                                             struct sockaddr_storage *addr);

/** `qpeer_tunnel_get_remote_addr` writes the address that stands for the
 * target: the target itself for an IP literal, else a synthetic address
 * in 100::/64 with the target port. Use it as the remote of connections
 * through the tunnel. Returns 0 or UV_EINVAL. */
QPEER_EXTERN int qpeer_tunnel_get_remote_addr(const qpeer_tunnel_t *tunnel,
                                              struct sockaddr_storage *addr);

/** `qpeer_tunnel_get_stats` copies the counters. Returns 0 or UV_EINVAL. */
QPEER_EXTERN int qpeer_tunnel_get_stats(const qpeer_tunnel_t *tunnel,
                                        qpeer_masque_stats_t *stats);

/**
 * `qpeer_tunnel_close` closes the tunnel like qpeer_close() (which does
 * not dispatch the MASQUE handle types yet): the request
 * and the connection to the proxy end, connections using the virtual
 * interface lose their path, and |cb| runs on a later loop iteration.
 * Returns 0, UV_EINVAL or UV_EALREADY.
 */
QPEER_EXTERN int qpeer_tunnel_close(qpeer_tunnel_t *tunnel, qpeer_close_cb cb);

/** Binding event. Status 0: bound (again); |addrs| (borrowed) are the
 * relay's public addresses for us (Proxy-Public-Address), and the virtual
 * interface is ready. Negative: the binding was lost or an attempt failed;
 * another attempt follows after a backoff, except after errors that a
 * retry cannot fix, which stop the binding: QPEER_EREFUSED (credentials
 * refused), QPEER_EUNSUPPORTED (the relay does not support bind),
 * QPEER_EPEERID or QPEER_ECERT (not the relay we pinned), QPEER_ERELAY
 * with a 4xx status other than 408 and 429. */
typedef void (*qpeer_relay_bind_cb)(qpeer_relay_bind_t *bind, int status,
                                    const struct sockaddr_storage *addrs,
                                    size_t naddrs);

QPEER_EXTERN int
qpeer_relay_bind_init_versioned(qpeer_endpoint_t *ep, qpeer_relay_bind_t *bind,
                                int options_version,
                                const qpeer_masque_options_t *opts);

/**
 * `qpeer_relay_bind_init` prepares a binding of |ep| at the relay in
 * |opts| (the target fields are ignored). |opts| is copied; no I/O yet.
 * The endpoint's QUIC listener then accepts connections that arrive at
 * the public address exactly as from its socket. Close the binding with
 * qpeer_relay_bind_close() before |ep|. Returns 0, UV_EINVAL, UV_ENOMEM.
 */
#define qpeer_relay_bind_init(EP, B, OPTS)                                     \
  qpeer_relay_bind_init_versioned((EP), (B), QPEER_MASQUE_OPTIONS_VERSION,     \
                                  (OPTS))

/**
 * `qpeer_relay_bind_start` connects to the relay, sends the bind request
 * (connect-udp-bind: ?1, target "*"), registers the uncompressed context
 * and reports the public addresses through |cb| (see qpeer_relay_bind_cb).
 * When the relay connection drops it binds again with backoff. No
 * callback runs after qpeer_relay_bind_stop() or _close(). Returns 0,
 * UV_EINVAL, UV_EALREADY, or the error of qpeer_connect() (then |cb| is
 * never called).
 */
QPEER_EXTERN int qpeer_relay_bind_start(qpeer_relay_bind_t *bind,
                                        qpeer_relay_bind_cb cb);

/** `qpeer_relay_bind_stop` releases the binding (no more callbacks); start
 * may be called again. Returns 0 or UV_EINVAL. */
QPEER_EXTERN int qpeer_relay_bind_stop(qpeer_relay_bind_t *bind);

/** `qpeer_relay_bind_get_local_addr` writes the virtual interface's address
 * while bound. Returns 0, UV_EINVAL or UV_ENOTCONN. */
QPEER_EXTERN int qpeer_relay_bind_get_local_addr(const qpeer_relay_bind_t *bind,
                                                 struct sockaddr_storage *addr);

/** `qpeer_relay_bind_get_stats` copies the counters. */
QPEER_EXTERN int qpeer_relay_bind_get_stats(const qpeer_relay_bind_t *bind,
                                            qpeer_masque_stats_t *stats);

/** `qpeer_relay_bind_close` closes the binding like qpeer_close(). Returns
 * 0, UV_EINVAL or UV_EALREADY. */
QPEER_EXTERN int qpeer_relay_bind_close(qpeer_relay_bind_t *bind,
                                        qpeer_close_cb cb);

/* ---- relay side ------------------------------------------------------- */

/** What a request asks for. */
typedef enum {
  QPEER_RELAY_CONNECT_UDP = 1, /* a tunnel to one target (RFC 9298) */
  QPEER_RELAY_BIND = 2         /* a bound public address (bind draft) */
} qpeer_relay_request_kind;

/** A request as the access and target hooks see it (all borrowed, valid
 * during the call; strings NUL-terminated). */
typedef struct qpeer_relay_request_s {
  qpeer_relay_request_kind kind;        /* tunnel or bind */
  const qpeer_peer_id_t *client_id;     /* the client's peer ID (mutual TLS)
                                           or NULL */
  const struct sockaddr *client_addr;   /* the client's address */
  const char *authority;                /* :authority */
  const char *path;                     /* :path */
  const char *authorization;            /* authorization field, or NULL */
  const char *bearer_token;             /* its token if "Bearer", or NULL */
  const char *target_host;              /* tunnel: target host; bind: NULL */
  uint16_t target_port;                 /* tunnel: target port */
  const qpeer_masque_header_t *headers; /* every request field */
  size_t nheaders;                      /* number of them */
} qpeer_relay_request_t;

/** The access hook's answer. The relay zeroes it before the call. */
typedef struct qpeer_relay_verdict_s {
  /* 0 (or any 2xx) allows; 401 (missing or invalid credentials), 403
   * (not allowed) or another 4xx/5xx refuses with that status. */
  int status;
  /* Proxy-Status error token (RFC 9209), e.g. "http_request_denied";
   * NULL picks one from the status. Must be a static string. */
  const char *error;
  /* Proxy-Status details (copied), or NULL. */
  const char *details;
  /* Quota key (copied): requests with the same key share the per-client
   * limits and counters. NULL uses the peer ID when there is one, else
   * the connection. */
  const char *client_key;
} qpeer_relay_verdict_t;

/** A client as quotas see it: created by the relay on a client's first
 * request and released after its last session (on_client_gone). */
typedef struct qpeer_relay_client_s {
  void *data;           /* the user's */
  const char *key;      /* read-only: the quota key */
  uint32_t tunnels;     /* read-only: open tunnels */
  uint32_t binds;       /* read-only: open bindings */
  uint64_t packets_in;  /* read-only: packets relayed to the client */
  uint64_t bytes_in;    /* read-only: their bytes */
  uint64_t packets_out; /* read-only: packets relayed from the client */
  uint64_t bytes_out;   /* read-only: their bytes */
} qpeer_relay_client_t;

/** Access control: fill |verdict| (see qpeer_relay_verdict_t). */
typedef void (*qpeer_relay_access_cb)(qpeer_relay_t *relay,
                                      const qpeer_relay_request_t *req,
                                      qpeer_relay_verdict_t *verdict);

/** Target policy for tunnels and for bind destinations: return 0 to allow
 * |target|, nonzero to refuse it (a tunnel gets 403
 * destination_ip_prohibited; a bound datagram is dropped; a compression
 * context is closed). |req| is NULL for the per-datagram checks of bound
 * traffic and for names checked after resolution.
 * qpeer_relay_target_allowed() is the default policy. */
typedef int (*qpeer_relay_target_cb)(qpeer_relay_t *relay,
                                     const qpeer_relay_request_t *req,
                                     const struct sockaddr *target);

/** Per-packet quota hook: |to_client| is nonzero for packets going to the
 * client. Return 0 to relay the packet, nonzero to drop it (counted). */
typedef int (*qpeer_relay_packet_cb)(qpeer_relay_t *relay,
                                     qpeer_relay_client_t *client,
                                     int to_client, size_t bytes);

/** Called when a client record is released. */
typedef void (*qpeer_relay_client_cb)(qpeer_relay_t *relay,
                                      qpeer_relay_client_t *client);

/** Exceptions to the default target policy (qpeer_relay_options_t). */
enum {
  QPEER_RELAY_ALLOW_LOOPBACK = 1,   /* 127.0.0.0/8, ::1 */
  QPEER_RELAY_ALLOW_PRIVATE = 2,    /* RFC 1918, fc00::/7, 100.64/10 */
  QPEER_RELAY_ALLOW_LINK_LOCAL = 4, /* 169.254/16, fe80::/10 */
  QPEER_RELAY_ALLOW_OWN = 8         /* the relay host's own addresses */
};

#define QPEER_RELAY_OPTIONS_V1 1
#define QPEER_RELAY_OPTIONS_VERSION QPEER_RELAY_OPTIONS_V1

/** Relay options (copied; fields only ever appended). */
typedef struct qpeer_relay_options_s {
  /* Local addresses for bound sockets: one socket per entry and binding,
   * at most two entries (normally one IPv4 and one IPv6; port normally 0).
   * Tunnels use the entry of the target's family (port 0) as their
   * source. NULL: the wildcard address of the family the client connected
   * with. */
  const struct sockaddr *const *bind_addrs;
  size_t nbind_addrs;
  /* Addresses to report in Proxy-Public-Address instead of a wildcard
   * bound address (the port is the bound one); matched by family. NULL:
   * the address the client reached the relay on. */
  const struct sockaddr *const *public_addrs;
  size_t npublic_addrs;
  /* Access control; NULL allows nothing (401) unless allow_anonymous. */
  qpeer_relay_access_cb access_cb;
  int allow_anonymous;
  /* Target policy; NULL applies qpeer_relay_target_allowed(). */
  qpeer_relay_target_cb target_cb;
  /* QPEER_RELAY_ALLOW_* exceptions to the default policy. */
  unsigned int allow_targets;
  /* Per-client limits (defaults 16 tunnels, 4 bindings) and global ones
   * (defaults 10000 each); beyond them: 429. */
  uint32_t max_tunnels_per_client;
  uint32_t max_binds_per_client;
  uint32_t max_tunnels;
  uint32_t max_binds;
  /* A tunnel or binding with no packet either way for this long is
   * closed (default 120000 ms; RFC 9298 asks for at least 2 minutes). */
  uint64_t idle_timeout_ms;
  /* Most compression contexts per binding (default 64). */
  uint32_t max_contexts;
  /* Quota hooks (may be NULL). */
  qpeer_relay_packet_cb on_packet;
  qpeer_relay_client_cb on_client_gone;
  /* Name in Proxy-Status (default "qpeer-relay"); copied. */
  const char *proxy_name;
} qpeer_relay_options_t;

QPEER_EXTERN void
qpeer_relay_options_default_versioned(int options_version,
                                      qpeer_relay_options_t *opts);
#define qpeer_relay_options_default(OPTS)                                      \
  qpeer_relay_options_default_versioned(QPEER_RELAY_OPTIONS_VERSION, (OPTS))

QPEER_EXTERN int qpeer_relay_init_versioned(uv_loop_t *loop,
                                            qpeer_relay_t *relay,
                                            int options_version,
                                            const qpeer_relay_options_t *o);

/**
 * `qpeer_relay_init` prepares a relay. Connections are given to it with
 * qpeer_relay_accept() from the listening endpoint's connection callback
 * (listen with ALPN QPEER_MASQUE_ALPN). |opts| is copied. Close it with
 * qpeer_relay_close() before its endpoints. Returns 0, UV_EINVAL,
 * UV_ENOMEM.
 */
#define qpeer_relay_init(LOOP, R, OPTS)                                        \
  qpeer_relay_init_versioned((LOOP), (R), QPEER_RELAY_OPTIONS_VERSION, (OPTS))

/**
 * `qpeer_relay_accept` accepts the oldest waiting connection of |ep| (as
 * qpeer_endpoint_accept()) and serves HTTP/3 MASQUE on it. Returns 0,
 * UV_EAGAIN when none waits, UV_EINVAL, UV_EBUSY when closing, or
 * UV_ENOMEM (the connection is then closed).
 */
QPEER_EXTERN int qpeer_relay_accept(qpeer_relay_t *relay, qpeer_endpoint_t *ep);

/** `qpeer_relay_target_allowed` is the default target policy: it returns
 * 1 unless |target| is unspecified, loopback, private (RFC 1918, unique
 * local, shared 100.64/10), link-local, multicast, broadcast, or one of
 * the host's addresses, minus the exceptions in |allow| (QPEER_RELAY_ALLOW_*),
 * and 0 otherwise. */
QPEER_EXTERN int qpeer_relay_target_allowed(const qpeer_relay_t *relay,
                                            const struct sockaddr *target,
                                            unsigned int allow);

/** Relay counters. */
typedef struct qpeer_relay_stats_s {
  uint64_t connections;           /* HTTP/3 connections served */
  uint64_t connections_active;    /* open now */
  uint64_t tunnels;               /* tunnels opened */
  uint64_t tunnels_active;        /* open now */
  uint64_t binds;                 /* bindings opened */
  uint64_t binds_active;          /* open now */
  uint64_t packets_in;            /* packets relayed to clients */
  uint64_t bytes_in;              /* their bytes */
  uint64_t packets_out;           /* packets relayed from clients */
  uint64_t bytes_out;             /* their bytes */
  uint64_t tx_quic_datagrams;     /* to clients as QUIC DATAGRAM frames */
  uint64_t tx_capsules;           /* to clients as DATAGRAM capsules */
  uint64_t rx_quic_datagrams;     /* from clients as QUIC DATAGRAM frames */
  uint64_t rx_capsules;           /* from clients as DATAGRAM capsules */
  uint64_t dropped_quota;         /* packets the quota hook dropped */
  uint64_t dropped_policy;        /* bind destinations the policy refused */
  uint64_t dropped_other;         /* no context, too large, queue full */
  uint64_t idle_closed;           /* sessions closed by the idle timeout */
  uint64_t rejected_unauthorized; /* 401 */
  uint64_t rejected_forbidden;    /* 403 from the access hook */
  uint64_t rejected_target;       /* 403 from the target policy */
  uint64_t rejected_quota;        /* 429 */
  uint64_t rejected_malformed;    /* 400 */
  uint64_t rejected_not_found;    /* 404, 405, 501 */
  uint64_t rejected_dns;          /* 502 with dns_error */
  uint64_t rejected_other;        /* other refusals (5xx) */
} qpeer_relay_stats_t;

/** `qpeer_relay_get_stats` copies the counters. Returns 0 or UV_EINVAL. */
QPEER_EXTERN int qpeer_relay_get_stats(const qpeer_relay_t *relay,
                                       qpeer_relay_stats_t *stats);

/**
 * `qpeer_relay_shutdown` starts a graceful shutdown: every connection, and
 * every connection accepted from now on, gets an HTTP/3 GOAWAY (RFC 9114
 * §5.2). Requests the relay already received carry on; later ones are
 * refused with H3_REQUEST_REJECTED. qpeer clients react by sending no new
 * request on the connection: a tunnel runs until the relay ends it, a
 * binding binds again on a new connection (with its backoff) and keeps
 * the old one until the new one answers. Call qpeer_relay_close() when
 * the drain is over (qpeer_relay_get_stats() shows what is still open).
 * Idempotent. Returns 0, or UV_EINVAL for a closing or uninitialised
 * relay.
 */
QPEER_EXTERN int qpeer_relay_shutdown(qpeer_relay_t *relay);

/**
 * `qpeer_relay_close` closes every connection (HTTP/3 NO_ERROR), tunnel
 * and binding, then runs |cb| on a later loop iteration, like qpeer_close.
 * Returns 0, UV_EINVAL or UV_EALREADY.
 */
QPEER_EXTERN int qpeer_relay_close(qpeer_relay_t *relay, qpeer_close_cb cb);

#endif /* QPEER_MASQUE_H */
