/* SPDX-License-Identifier: MIT */
/*
 * The private state behind the public handles (handle->impl): endpoint,
 * connection and stream, and the functions that the quic/ and net/ files
 * share. Ownership: the endpoint owns its connections' state, a connection
 * owns its streams' state; a user handle only points at that state. State
 * is freed on the endpoint's defer queue, never inside an ngtcp2 callback.
 */
#ifndef QPEER_QUIC_HANDLES_H
#define QPEER_QUIC_HANDLES_H

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <stdio.h>

#include "internal.h"
#include "net/cidmap.h"
#include "net/udp.h"
#include "quic/dgring.h"

#define QPEER__SCID_LEN 16
#define QPEER__MAX_PKT 1452 /* largest UDP payload we send */
#define QPEER__STATIC_SECRET_LEN 32
#define QPEER__MAX_DGRAM_QUEUE 1024 /* queued outgoing datagrams per conn */
#define QPEER__MAX_DGRAM_QUEUE_BYTES (512 * 1024) /* and their bytes */
#define QPEER__DGQ_KEEP_NS 1000000000ull /* an empty ring's storage lives */
#define QPEER__MAX_RX_DGRAM_HELD 32 /* held incoming datagrams per conn */
#define QPEER__MAX_CLOSE_REASON 1024 /* reason bytes kept from a close */

typedef struct qpeer__ep qpeer__ep;
typedef struct qpeer__conn qpeer__conn;

/* Told once, when a connection's state is released (whatever the cause),
 * so modules that keep work attached to it can let go. */
typedef struct qpeer__conn_observer {
  qpeer__list link;                                 /* in conn->observers */
  void (*ended)(struct qpeer__conn_observer *obs);  /* the notification */
  /* Optional (NULL: none): the peer reported a new observed address for
   * us (c->observed), run from the connection's event dispatch. */
  void (*observed)(struct qpeer__conn_observer *obs);
} qpeer__conn_observer;
typedef struct qpeer__stream qpeer__stream;

/* A deferred task run on a later loop iteration (never re-entrantly). */
typedef struct qpeer__defer {
  qpeer__list link;                    /* in ep->defer_q while queued */
  void (*run)(struct qpeer__defer *d); /* what to do */
} qpeer__defer;

/* A virtual interface: a synthetic local address whose packets travel
 * through something other than the socket (a relay tunnel). */
typedef struct qpeer__vif {
  qpeer__list link;                /* in ep->vifs */
  struct sockaddr_storage local;   /* the synthetic local address */
  /* Sends one packet to |remote| through the tunnel (copies it); NULL for
   * a socket alias, whose packets use the endpoint's socket. */
  int (*send)(struct qpeer__vif *vif, const struct sockaddr *remote,
              const uint8_t *data, size_t len);
  void *ctx;                       /* owner's context */
  /* Socket alias: datagrams from |alias_remote| that arrive on the socket
   * are presented as arriving on |local|, so a path to that remote (e.g.
   * a relay's public address) differs in its local address from the
   * direct paths, as ngtcp2 0.12 requires for migrating between them. */
  int socket_alias;                /* nonzero: an alias of the socket */
  struct sockaddr_storage alias_remote; /* the remote it applies to */
} qpeer__vif;

/* An internal consumer of STUN or raw packets (the STUN client and
 * responder, hole punching). Handlers run in order before the user's hook;
 * one that returns nonzero consumed the packet. */
typedef struct qpeer__pkt_handler {
  qpeer__list link; /* in ep->stun_handlers or ep->raw_handlers */
  int (*fn)(struct qpeer__pkt_handler *h, const uint8_t *data, size_t len,
            const struct sockaddr *from, const struct sockaddr *local);
  void *ctx;        /* owner's context */
} qpeer__pkt_handler;

struct qpeer__ep {
  qpeer_endpoint_t *handle;        /* the user's handle */
  uv_loop_t *loop;                 /* the loop */
  qpeer__udp udp;                  /* socket and batched I/O */
  uv_idle_t defer_idle;            /* runs the defer queue */
  qpeer__list defer_q;             /* queued qpeer__defer tasks */
  qpeer__list conns;               /* every qpeer__conn */
  qpeer__list accept_q;            /* handshaken, waiting for accept */
  qpeer__list dirty;               /* conns that want a write pass */
  qpeer__list vifs;                /* virtual interfaces */
  qpeer__list stun_handlers;       /* internal STUN consumers */
  qpeer__list raw_handlers;        /* internal raw-packet consumers */
  size_t nconns;                   /* length of conns */
  size_t naccept;                  /* length of accept_q */
  qpeer__cidmap cids;              /* our CIDs -> conn */
  qpeer_endpoint_options_t opts;   /* copy of the options */
  char *qlog_dir;                  /* owned copy, or NULL */
  qpeer_identity_t *identity;      /* referenced */
  gnutls_certificate_credentials_t server_cred; /* cert_file creds or NULL */
  gnutls_certificate_credentials_t webpki_cred; /* lazily made */
  uint8_t static_secret[QPEER__STATIC_SECRET_LEN]; /* tokens, resets */
  /* listening */
  int listening;                   /* qpeer_endpoint_listen was called */
  qpeer_connection_cb on_connection; /* accept notification */
  qpeer_listen_options_t lopts;    /* copy (arrays owned below) */
  gnutls_datum_t *alpn;            /* server ALPN list (owned) */
  size_t nalpn;                    /* entries in alpn */
  qpeer_peer_id_t *allow;          /* allowlist copy */
  size_t nallow;                   /* entries in allow */
  void *peer_listener;             /* lib/peer/listen.c state, or NULL */
  /* Retry-on-load rate window. */
  uint64_t rate_window_start;      /* ns */
  uint32_t rate_count;             /* unvalidated Initials in window */
  /* Stateless reset rate limit (token bucket). */
  uint64_t reset_tokens_ts;        /* ns of last refill */
  uint32_t reset_tokens;           /* resets left */
  qpeer_packet_hook stun_hook;     /* STUN messages */
  qpeer_packet_hook raw_hook;      /* everything else */
  qpeer_endpoint_stats_t stats;    /* counters */
  int closing;                     /* qpeer_close was called */
  int pending_closes;              /* child closes still outstanding */
  int idle_closing;                /* defer_idle is closing: no pushes */
  qpeer__defer close_task;         /* finishes closing */
  /* Work that packets of the current socket receive batch produced and
   * that must not run inside the connection that received them (tunnel
   * input): run at the batch's end, before the write pass, so that it
   * joins the same batch instead of waiting for a loop iteration. */
  int in_batch;                    /* inside a socket receive batch */
  qpeer__list post_batch;          /* qpeer__defer tasks for its end */
  uint8_t *txbuf;                  /* TX_BATCH * MAX_PKT send buffer */
};

/* An event for the user, queued while inside ngtcp2 and fired after. */
enum {
  QPEER__EV_HANDSHAKE = 1, /* handshake completed */
  QPEER__EV_CLOSED = 2,    /* connection ended */
  QPEER__EV_STREAMS = 4,   /* streams wait in accept queue */
  QPEER__EV_PATH = 8,      /* path changed */
  QPEER__EV_DGRAMS = 16,   /* held datagrams can be delivered */
  QPEER__EV_OBSERVED = 32  /* the peer reported our address */
};

struct qpeer__conn {
  qpeer__list link;                /* in ep->conns */
  qpeer__list accept_link;         /* in ep->accept_q */
  qpeer__list dirty_link;          /* in ep->dirty */
  qpeer__ep *ep;                   /* owning endpoint */
  qpeer_conn_t *handle;            /* user handle, or NULL before accept */
  ngtcp2_conn *qc;                 /* the QUIC state machine */
  ngtcp2_crypto_conn_ref conn_ref; /* for ngtcp2's GnuTLS glue */
  gnutls_session_t tls;            /* TLS session */
  gnutls_certificate_credentials_t own_cred; /* per-conn CA creds or NULL */
  int server;                      /* accepted (server) side */
  qpeer_auth_mode auth;            /* authentication mode */
  int have_expected;               /* expected_id is set (client) */
  qpeer_peer_id_t expected_id;     /* pinned server peer ID (client) */
  int have_peer_id;                /* peer_id is known */
  qpeer_peer_id_t peer_id;         /* authenticated peer ID */
  int verify_err;                  /* why our verify callback refused */
  char *alpn;                      /* negotiated ALPN (owned) */
  char *verify_host;               /* host name to verify (owned) */
  uv_timer_t timer;                /* ngtcp2 expiry timer */
  int timer_open;                  /* timer initialised, not closed */
  ngtcp2_path_storage ps;          /* current path storage */
  qpeer_connect_t *connect_req;    /* pending connect request */
  qpeer_migrate_t *migrate_req;    /* pending migration */
  int migrate_status;              /* its result, once known */
  int migrate_done;                /* result known, not yet delivered */
  qpeer_path_t last_path;          /* path last reported to the user */
  /* Server: after the peer moved and the new path validated, ngtcp2 0.12
   * probes the old path (PATH_CHALLENGE, "don't care" result) for a few
   * PTOs. A client ignores a challenge on a path that is neither current
   * nor being validated, so when the old path is a relay tunnel these
   * probes only cost relay traffic: they are not sent (quiet_path) until
   * the peer uses that path again or it becomes current. */
  ngtcp2_path_storage rx_prev_path; /* current path before the last move */
  ngtcp2_path_storage quiet_path;   /* old tunnel path not to probe */
  int has_rx_prev_path, has_quiet_path;
  uint64_t quiet_dropped;           /* probes not sent (for tests/debug) */
  int handshake_confirmed;         /* HANDSHAKE_DONE seen (client) */
  struct qpeer__ctrl *ctrl;        /* control-stream state, or NULL */
  struct qpeer__trav *trav;        /* NAT-traversal state, or NULL */
  uint64_t last_rx;                /* when a packet last read cleanly (ns) */
  qpeer__list observers;           /* qpeer__conn_observer list */
  int ctrl_offered;                /* our hello carried the extension */
  int ctrl_peer;                   /* the peer's hello carried it */
  int ctrl_started;                /* qpeer__ctrl_start ran */
  int have_observed;               /* observed is valid */
  struct sockaddr_storage observed; /* our address as the peer sees it */
  qpeer_conn_callbacks_t cbs;      /* user's event callbacks */
  qpeer__list streams;             /* every qpeer__stream */
  qpeer__list stream_accept_q;     /* peer streams waiting for accept */
  qpeer__list sendable;            /* streams with data or FIN to send */
  unsigned int events;             /* QPEER__EV_* pending dispatch */
  int handshake_done;              /* handshake completed */
  int rx_ok;                       /* a packet was read successfully */
  int closed;                      /* connection ended (terminal) */
  int close_status;                /* status for on_closed */
  qpeer_close_info_t close_info;   /* wire close reason */
  char *close_reason;              /* close_info's reason bytes (owned) */
  int shutdown_requested;          /* qpeer_conn_shutdown called */
  uint64_t shutdown_code;          /* its application code */
  char *shutdown_reason;           /* its reason (owned) */
  int close_sent;                  /* CONNECTION_CLOSE was sent */
  uint8_t *close_pkt;              /* the CONNECTION_CLOSE packet */
  size_t close_pktlen;             /* its length */
  int draining;                    /* peer closed; just wait */
  int handle_closing;              /* qpeer_close on the handle */
  int freeing;                     /* state is being released */
  qpeer__defer free_task;          /* releases the state */
  qpeer__defer flush_task;         /* deferred write pass */
  int flush_queued;                /* flush_task is queued */
  /* Outgoing datagrams: copies in a bounded byte ring (allocated while
   * datagrams flow, released after a write pass that found it empty). */
  qpeer__dgring dgq;
  uint64_t dgq_last_push;          /* when a datagram was last queued (ns) */
  /* DATAGRAM loss watchdog (conn_write.c): ngtcp2 0.12 does not count a
   * packet that carries only DATAGRAM frames as PTO-eliciting, so when a
   * whole flight of them is lost nothing ever declares it lost and, once
   * it fills the congestion window, the connection can send no
   * ack-eliciting packet again. A datagram is written only while the
   * window keeps room after it, and a flight that sees no acknowledgement
   * for a PTO gets a PING
   * (through ngtcp2's keep-alive), whose ACK lets loss detection run. */
  int dg_sent;                     /* a datagram was ever sent */
  int dg_watch;                    /* a stall is being timed */
  uint64_t dg_inflight;            /* bytes in flight at the last check */
  uint64_t dg_progress_ts;         /* last time they fell or were 0 (ns) */
  uint32_t dg_pings;               /* PINGs since the last progress */
  uint64_t keepalive_ns;           /* the keep-alive the user asked for */
  /* Received datagrams held until the user installs on_datagram (before
   * accept, or before qpeer_conn_set_callbacks): a bounded ring. */
  struct {
    uint8_t *data;                 /* payload copy */
    size_t len;                    /* payload length */
  } rxq[QPEER__MAX_RX_DGRAM_HELD];
  size_t rxq_head;                 /* first held datagram */
  size_t rxq_len;                  /* held datagrams */
  FILE *qlog;                      /* qlog output or NULL */
  uint64_t dcid_tok_seq;           /* unused; reserved */
  qpeer_conn_stats_t stats;        /* counters kept by us */
  ngtcp2_cid odcid;                /* original DCID (server: client's) */
  ngtcp2_cid initial_dcid;         /* client's initial DCID (server map) */
  int initial_dcid_mapped;         /* initial_dcid is in the CID map */
};

struct qpeer__stream {
  qpeer__list link;                /* in conn->streams */
  qpeer__list accept_link;         /* in conn->stream_accept_q */
  qpeer__list send_link;           /* in conn->sendable */
  qpeer__conn *conn;               /* owning connection */
  qpeer_stream_t *handle;          /* user handle or NULL */
  int64_t id;                      /* stream ID */
  int local;                       /* opened by us */
  int uni;                         /* unidirectional */
  /* receive side */
  qpeer_read_cb read_cb;           /* set while reading */
  uint8_t *rbuf;                   /* buffered bytes while not reading */
  size_t rbuf_len;                 /* bytes in rbuf */
  size_t rbuf_cap;                 /* capacity of rbuf */
  uint64_t unconsumed;             /* bytes received, window not extended */
  int fin_received;                /* FIN seen */
  int eof_delivered;               /* UV_EOF delivered */
  int read_error;                  /* terminal read status, or 0 */
  int read_error_delivered;        /* read_error went to the user */
  qpeer__defer read_task;          /* deferred buffered delivery */
  int read_task_queued;            /* read_task queued */
  /* send side */
  qpeer__list writes;              /* qpeer_write_t queue (link[]) */
  qpeer_write_t *cur;              /* write holding the next unsent byte */
  unsigned int cur_buf;            /* buffer index in cur */
  size_t cur_off;                  /* offset in that buffer */
  uint64_t queued_off;             /* bytes ever queued */
  uint64_t sent_off;               /* bytes handed to ngtcp2 */
  uint64_t acked_off;              /* bytes acknowledged */
  qpeer_shutdown_t *shutdown_req;  /* pending shutdown request */
  int fin_queued;                  /* FIN requested */
  int fin_sent;                    /* FIN handed to ngtcp2 */
  int fin_with_data;               /* FIN went out with the last bytes */
  int write_error;                 /* terminal write status, or 0 */
  int reset_pending;               /* RESET_STREAM to send */
  int local_reset;                 /* we reset (or abandoned) sending */
  uint64_t reset_code;             /* its code */
  int stop_pending;                /* STOP_SENDING to send */
  uint64_t stop_code;              /* its code */
  uint64_t peer_error_code;        /* code from the peer's reset/stop */
  int closed;                      /* ngtcp2 closed the stream */
  int handle_closing;              /* qpeer_close on the handle */
  qpeer__defer close_task;         /* completes the handle close */
};

/* defer.c */
void qpeer__defer_init(qpeer__defer *d, void (*run)(qpeer__defer *d));
void qpeer__defer_push(qpeer__ep *ep, qpeer__defer *d);
void qpeer__defer_cancel(qpeer__defer *d);
int qpeer__defer_start(qpeer__ep *ep);

/* endpoint.c */
int qpeer__endpoint_close(qpeer_endpoint_t *ep);
qpeer__ep *qpeer__ep_of(qpeer_endpoint_t *h);
void qpeer__ep_add_handler(qpeer__list *list, qpeer__pkt_handler *h);
void qpeer__ep_remove_handler(qpeer__pkt_handler *h);
/* Sends one datagram from the socket (or the virtual interface whose
 * synthetic address is |local|, when not NULL). Returns 0 or UV_E*. */
int qpeer__ep_send_datagram(qpeer__ep *ep, const struct sockaddr *local,
                            const uint8_t *data, size_t len,
                            const struct sockaddr *to);
/* Virtual interfaces (relay tunnels): register a synthetic local address,
 * feed packets received through it, and remove it. */
int qpeer__ep_add_vif(qpeer__ep *ep, qpeer__vif *vif);
/* Copies |src|'s addresses into |dst| (ngtcp2 0.12 has no
 * ngtcp2_path_storage_init2). */
static inline void qpeer__path_store(ngtcp2_path_storage *dst,
                                     const ngtcp2_path *src) {
  ngtcp2_path_storage_init(dst, src->local.addr, src->local.addrlen,
                           src->remote.addr, src->remote.addrlen, NULL);
}
/* Nonzero when |local| is a virtual interface that sends through a tunnel
 * (not the socket, not a socket alias). */
int qpeer__ep_is_tunnel(qpeer__ep *ep, const struct sockaddr *local);
/* qpeer_conn_migrate() that moves at once (the path is validated in the
 * background; |cb| gets its result). For going back to a path validated
 * before: the peer switches as soon as our packets arrive there, which
 * also resets its congestion state, so a peer whose window is full of
 * packets lost on a dead path can answer at once (ngtcp2 0.12 writes no
 * PATH_RESPONSE while the window is full). */
int qpeer__conn_migrate_immediate(qpeer_migrate_t *req, qpeer_conn_t *h,
                                  const struct sockaddr *local,
                                  const struct sockaddr *remote,
                                  qpeer_migrate_cb cb);
/* Sets the keep-alive interval (0: off) and remembers it (the DATAGRAM
 * watchdog borrows ngtcp2's keep-alive for a moment). */
void qpeer__conn_set_keepalive(qpeer__conn *c, uint64_t ns);
/* The DATAGRAM watchdog's next deadline (ns), or UINT64_MAX. */
uint64_t qpeer__conn_dg_expiry(qpeer__conn *c);
void qpeer__ep_remove_vif(qpeer__ep *ep, qpeer__vif *vif);
/* Feeds one packet received through |vif|; the write pass that follows
 * is the caller's (qpeer__ep_flush), once per batch of packets, so that
 * one ACK answers the batch. */
void qpeer__ep_vif_input(qpeer__ep *ep, qpeer__vif *vif, const uint8_t *data,
                         size_t len, const struct sockaddr *from);
/* qpeer_conn_send_datagram() of the concatenation of |bufs| (one copy,
 * straight into the queue). */
int qpeer__conn_send_datagramv(qpeer_conn_t *h, const uv_buf_t *bufs,
                               size_t nbufs);
/* The largest DATAGRAM payload that fits the current path (0: none). */
size_t qpeer__conn_max_datagram(qpeer__conn *c);
/* Runs the write pass of every connection that has something to send. */
void qpeer__ep_flush(qpeer__ep *ep);
/* Runs |d| at the end of the socket receive batch in progress (before
 * its write pass), or on the defer queue when no batch is in progress. */
void qpeer__ep_after_batch(qpeer__ep *ep, qpeer__defer *d);
void qpeer__ep_send_packets(qpeer__ep *ep, const ngtcp2_path *path,
                            const uint8_t *data, size_t len, size_t segsize,
                            int *pblocked);
void qpeer__ep_conn_gone(qpeer__ep *ep, qpeer__conn *c);
/* Stops listening (the listen options are dropped; connections waiting
 * for accept are closed), so that qpeer_endpoint_listen works again. */
void qpeer__ep_unlisten(qpeer__ep *ep);
void qpeer__ep_mark_dirty(qpeer__ep *ep, qpeer__conn *c);
uint64_t qpeer__now(void);
/* One clock reading for a batch of received packets: qpeer__rx_now()
 * returns it until qpeer__now() is called on this thread (then it reads
 * the clock), so ngtcp2's timestamps never go back. */
void qpeer__clock_stamp(void);
uint64_t qpeer__rx_now(void);

/* conn.c */
int qpeer__conn_close(qpeer_conn_t *conn);
qpeer__conn *qpeer__conn_new(qpeer__ep *ep, int server);
int qpeer__conn_server_init(qpeer__conn *c, const ngtcp2_pkt_hd *hd,
                            const ngtcp2_path *path,
                            const ngtcp2_cid *odcid, const uint8_t *token,
                            size_t tokenlen);
void qpeer__conn_terminate(qpeer__conn *c, int status);
void qpeer__conn_dispatch(qpeer__conn *c);
void qpeer__conn_schedule_free(qpeer__conn *c);
void qpeer__conn_update_timer(qpeer__conn *c);
void qpeer__conn_schedule_flush(qpeer__conn *c);
void qpeer__conn_observe(qpeer__conn *c, qpeer__conn_observer *obs);
void qpeer__conn_unobserve(qpeer__conn_observer *obs);

/* conn_read.c */
int qpeer__conn_read(qpeer__conn *c, const ngtcp2_path *path,
                     const uint8_t *pkt, size_t len);

/* conn_write.c */
int qpeer__conn_write(qpeer__conn *c);
void qpeer__conn_send_close(qpeer__conn *c);
void qpeer__conn_send_close_ccerr(qpeer__conn *c,
                                  const ngtcp2_connection_close_error *e);

/* conn_cb.c */
void qpeer__conn_callbacks(ngtcp2_callbacks *cb, int server);

/* tls_gnutls.c */
int qpeer__tls_client_init(qpeer__conn *c, const qpeer_connect_options_t *o);
int qpeer__tls_server_init(qpeer__conn *c);
void qpeer__tls_on_handshake(qpeer__conn *c);
int qpeer__tls_error_status(qpeer__conn *c, int liberr);

/* stream.c */
qpeer__stream *qpeer__stream_new(qpeer__conn *c, int64_t id, int local);
void qpeer__stream_bind(qpeer__stream *st, qpeer_stream_t *s);
int qpeer__stream_open_internal(qpeer__conn *c, qpeer_stream_t *s, int uni);
int qpeer__stream_close(qpeer_stream_t *s);
void qpeer__stream_free(qpeer__stream *st);
int qpeer__stream_on_data(qpeer__stream *st, uint32_t flags,
                          const uint8_t *data, size_t len);
void qpeer__stream_on_acked(qpeer__stream *st, uint64_t offset,
                            uint64_t len);
void qpeer__stream_on_closed(qpeer__stream *st, uint64_t app_code, int reset);
void qpeer__stream_on_peer_stopped(qpeer__stream *st, uint64_t code);
void qpeer__stream_on_reset(qpeer__stream *st, uint64_t code);
void qpeer__stream_conn_ended(qpeer__stream *st, int status);
size_t qpeer__stream_fill_vecs(qpeer__stream *st, ngtcp2_vec *v, size_t n);
void qpeer__stream_advance(qpeer__stream *st, size_t n);
int qpeer__stream_has_pending(const qpeer__stream *st);

#endif /* QPEER_QUIC_HANDLES_H */
