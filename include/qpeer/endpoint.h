/* SPDX-License-Identifier: MIT */
/*
 * qpeer_endpoint_t: one UDP socket on a uv_loop_t. It carries every QUIC
 * connection of the endpoint (client and server side, routed by connection
 * ID), hands STUN messages (recognised by the magic cookie) to a STUN hook
 * and everything else that is not QUIC for one of its connections to a
 * counted raw-packet hook.
 */
#ifndef QPEER_ENDPOINT_H
#define QPEER_ENDPOINT_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "qpeer/core.h"
#include "qpeer/identity.h"

typedef struct qpeer_endpoint_s qpeer_endpoint_t;
typedef struct qpeer_conn_s qpeer_conn_t;

struct qpeer_endpoint_s {
  QPEER_HANDLE_FIELDS
};

/** When the server side demands address validation with a Retry. */
typedef enum {
  QPEER_RETRY_NEVER = 0,   /* never send Retry */
  QPEER_RETRY_ALWAYS = 1,  /* every new client must echo a Retry token */
  QPEER_RETRY_ON_LOAD = 2  /* only above retry_rate unvalidated Initials/s */
} qpeer_retry_mode;

/** How a connection authenticates the peer (see doc/identity.md). */
typedef enum {
  /* Mutual: each side presents its identity; the dialer pins the peer ID
   * it expects, the listener sees the client's peer ID (P2P default). */
  QPEER_AUTH_PEER_ID = 0,
  /* Server certificate checked against the system trust store and the
   * host name (for relays with real certificates). */
  QPEER_AUTH_WEBPKI = 1,
  /* Server certificate checked against a private CA file. */
  QPEER_AUTH_CA_FILE = 2,
  /* Encryption without any authentication: the peer is not verified at
   * all. Only for tests and debugging. */
  QPEER_AUTH_INSECURE_NO_AUTHENTICATION = 3
} qpeer_auth_mode;

/** Address-discovery roles (draft-ietf-quic-address-discovery values). */
typedef enum {
  QPEER_ADDRDISC_PROVIDE = 0, /* report observed addresses, want none */
  QPEER_ADDRDISC_RECEIVE = 1, /* want reports, provide none */
  QPEER_ADDRDISC_BOTH = 2,    /* both (the P2P default) */
  QPEER_ADDRDISC_OFF = 3      /* neither */
} qpeer_addrdisc_mode;

#define QPEER_ENDPOINT_OPTIONS_V1 1
#define QPEER_ENDPOINT_OPTIONS_VERSION QPEER_ENDPOINT_OPTIONS_V1

/** Endpoint options; fields are only ever appended. */
typedef struct qpeer_endpoint_options_s {
  /* Address to bind; NULL means [::]:0 dual-stack. Copied. */
  const struct sockaddr *bind_addr;
  /* With an IPv6 bind address: nonzero disables IPv4-mapped traffic. */
  int ipv6_only;
  /* Identity presented in QPEER_AUTH_PEER_ID mode (referenced, not copied);
   * NULL makes the endpoint generate a fresh one. */
  qpeer_identity_t *identity;
  /* PEM certificate chain and key for the server side (WebPKI / CA modes);
   * NULL serves the identity's self-signed certificate. */
  const char *cert_file;
  const char *key_file;
  /* Idle timeout of each connection in ms (default 30000). */
  uint64_t idle_timeout_ms;
  /* Keep-alive interval in ms; 0 (default) sends none. */
  uint64_t keepalive_ms;
  /* Handshake timeout in ms (default 10000). */
  uint64_t handshake_timeout_ms;
  /* Retry policy for new clients (default QPEER_RETRY_ON_LOAD). */
  qpeer_retry_mode retry_mode;
  /* Unvalidated Initials per second above which QPEER_RETRY_ON_LOAD
   * demands Retry (default 200). */
  uint32_t retry_rate;
  /* Directory for one qlog file per connection; NULL uses the environment
   * variable QPEER_QLOG_DIR if set, else no qlog. Copied. */
  const char *qlog_dir;
  /* Most connections the endpoint holds at once (default 4096). */
  uint32_t max_connections;
  /* Per-stream receive window in bytes (default 1 MiB; max 16 MiB). */
  uint32_t stream_window;
  /* Per-connection receive window in bytes (default 16 MiB). */
  uint32_t conn_window;
  /* Most unacknowledged bytes queued for sending per stream before
   * qpeer_stream_write() returns UV_ENOBUFS (default 64 MiB). */
  uint64_t max_stream_send_queue;
  /* Largest DATAGRAM frame accepted (default 1452, enough to relay a
   * full-size inner QUIC packet; 0 disables datagrams). */
  uint32_t max_datagram_frame_size;
  /* Disable UDP GSO (and GRO) even where the kernel supports them. */
  int disable_gso;
  /* QUIC address discovery on the qpeer control stream (doc/protocol.md):
   * whether this endpoint reports the addresses it observes for its peers
   * and whether it wants to hear its own (default QPEER_ADDRDISC_BOTH). */
  qpeer_addrdisc_mode address_discovery;
  /* Do not offer the qpeer control stream at all (plain QUIC peer). */
  int disable_control_stream;
} qpeer_endpoint_options_t;

QPEER_EXTERN void
qpeer_endpoint_options_default_versioned(int options_version,
                                         qpeer_endpoint_options_t *opts);

/** `qpeer_endpoint_options_default` fills |opts| with the defaults. */
#define qpeer_endpoint_options_default(OPTS)                                  \
  qpeer_endpoint_options_default_versioned(QPEER_ENDPOINT_OPTIONS_VERSION,    \
                                           (OPTS))

QPEER_EXTERN int qpeer_endpoint_init_versioned(
    uv_loop_t *loop, qpeer_endpoint_t *ep, int options_version,
    const qpeer_endpoint_options_t *opts);

/**
 * `qpeer_endpoint_init` creates the endpoint's socket, binds it and starts
 * receiving. |opts| may be NULL for the defaults; it is copied. Returns 0,
 * UV_EINVAL, UV_ENOMEM, a socket or bind error (UV_EADDRINUSE, ...),
 * QPEER_EKEYFILE for an unusable cert_file/key_file, or QPEER_ETLS.
 * The endpoint must be closed with qpeer_close().
 */
#define qpeer_endpoint_init(LOOP, EP, OPTS)                                   \
  qpeer_endpoint_init_versioned((LOOP), (EP), QPEER_ENDPOINT_OPTIONS_VERSION, \
                                (OPTS))

/** Called when a new connection has completed its handshake and waits in
 * the accept queue; call qpeer_endpoint_accept() from here. A negative
 * |status| reports an endpoint error. */
typedef void (*qpeer_connection_cb)(qpeer_endpoint_t *ep, int status);

/** Return nonzero to let the client with peer ID |client| in. */
typedef int (*qpeer_allow_cb)(qpeer_endpoint_t *ep,
                              const qpeer_peer_id_t *client);

#define QPEER_LISTEN_OPTIONS_V1 1
#define QPEER_LISTEN_OPTIONS_VERSION QPEER_LISTEN_OPTIONS_V1

/** Listen options; fields are only ever appended. */
typedef struct qpeer_listen_options_s {
  /* ALPN protocols in order of preference (copied); at least one. */
  const char *const *alpn;
  size_t nalpn;
  /* Client peer IDs allowed in (copied). With neither |allow| nor
   * |allow_cb|, any client is accepted. */
  const qpeer_peer_id_t *allow;
  size_t nallow;
  /* Called during the handshake for each client peer ID not in |allow|. */
  qpeer_allow_cb allow_cb;
  /* Require every client to present an identity even if no allow policy
   * is set (default: required whenever a policy is set). */
  int require_client_identity;
  /* Most handshaken connections waiting for qpeer_endpoint_accept()
   * (default 128); more are refused with CONNECTION_REFUSED. */
  uint32_t backlog;
} qpeer_listen_options_t;

QPEER_EXTERN void
qpeer_listen_options_default_versioned(int options_version,
                                       qpeer_listen_options_t *opts);
#define qpeer_listen_options_default(OPTS)                                    \
  qpeer_listen_options_default_versioned(QPEER_LISTEN_OPTIONS_VERSION, (OPTS))

QPEER_EXTERN int qpeer_endpoint_listen_versioned(
    qpeer_endpoint_t *ep, int options_version,
    const qpeer_listen_options_t *opts, qpeer_connection_cb cb);

/**
 * `qpeer_endpoint_listen` makes |ep| accept QUIC connections. |opts| is
 * copied. |cb| runs once per connection that completed its handshake and
 * passed the allow policy. Returns 0, UV_EINVAL, UV_EALREADY when already
 * listening, or UV_ENOMEM.
 */
#define qpeer_endpoint_listen(EP, OPTS, CB)                                   \
  qpeer_endpoint_listen_versioned((EP), QPEER_LISTEN_OPTIONS_VERSION, (OPTS), \
                                  (CB))

/**
 * `qpeer_endpoint_accept` binds the oldest waiting connection to the
 * caller's |conn| handle, which must then be closed with qpeer_close().
 * Returns 0, UV_EAGAIN when nothing waits, or UV_EINVAL.
 */
QPEER_EXTERN int qpeer_endpoint_accept(qpeer_endpoint_t *ep,
                                       qpeer_conn_t *conn);

/**
 * Packet hooks. |data| and |from| are valid only during the call.
 * STUN: messages that pass the magic-cookie check. Raw: every other packet
 * that is not QUIC for a connection of this endpoint.
 */
typedef void (*qpeer_packet_hook)(qpeer_endpoint_t *ep, const uint8_t *data,
                                  size_t len, const struct sockaddr *from);

/** `qpeer_endpoint_set_stun_hook` sets (or with NULL clears) the hook. */
QPEER_EXTERN int qpeer_endpoint_set_stun_hook(qpeer_endpoint_t *ep,
                                              qpeer_packet_hook hook);

/** `qpeer_endpoint_set_raw_hook` sets (or with NULL clears) the hook. */
QPEER_EXTERN int qpeer_endpoint_set_raw_hook(qpeer_endpoint_t *ep,
                                             qpeer_packet_hook hook);

/**
 * `qpeer_endpoint_send_raw` sends one datagram (copied) from the endpoint's
 * socket, for STUN and hole-punch probes. Best effort, like UDP. Returns 0,
 * UV_EINVAL, UV_EMSGSIZE (over 1452 bytes), UV_EAGAIN when the socket
 * buffer is full, or a socket error.
 */
QPEER_EXTERN int qpeer_endpoint_send_raw(qpeer_endpoint_t *ep,
                                         const uint8_t *data, size_t len,
                                         const struct sockaddr *to);

/** `qpeer_endpoint_get_local_addr` writes the bound address (with the
 * actual port when bound to port 0). */
QPEER_EXTERN int qpeer_endpoint_get_local_addr(const qpeer_endpoint_t *ep,
                                               struct sockaddr_storage *addr);

/** `qpeer_endpoint_get_identity` returns the endpoint's identity
 * (borrowed). */
QPEER_EXTERN qpeer_identity_t *
qpeer_endpoint_get_identity(const qpeer_endpoint_t *ep);

/** Endpoint counters (all monotonically increasing). */
typedef struct qpeer_endpoint_stats_s {
  uint64_t rx_datagrams;       /* datagrams received */
  uint64_t rx_bytes;           /* bytes received */
  uint64_t tx_datagrams;       /* datagrams sent */
  uint64_t tx_bytes;           /* bytes sent */
  uint64_t tx_syscalls;        /* send system calls (GSO batches count 1) */
  uint64_t rx_quic;            /* QUIC packets routed to a connection */
  uint64_t rx_stun;            /* STUN messages */
  uint64_t rx_raw;             /* packets given to the raw hook (or none) */
  uint64_t rx_garbage;         /* malformed, truncated or undecodable */
  uint64_t tx_version_negotiation; /* Version Negotiation packets sent */
  uint64_t tx_retry;           /* Retry packets sent */
  uint64_t tx_stateless_reset; /* stateless resets sent */
  uint64_t conns_accepted;     /* connections handed to accept */
  uint64_t conns_refused;      /* refused: policy, backlog, limits */
  uint64_t bad_tokens;         /* Initials with invalid Retry tokens */
} qpeer_endpoint_stats_t;

/** `qpeer_endpoint_get_stats` copies the counters into |stats|. */
QPEER_EXTERN int qpeer_endpoint_get_stats(const qpeer_endpoint_t *ep,
                                          qpeer_endpoint_stats_t *stats);

#endif /* QPEER_ENDPOINT_H */
