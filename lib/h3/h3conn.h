/* SPDX-License-Identifier: MIT */
/*
 * An HTTP/3 session on a qpeer_conn_t, for MASQUE: nghttp3 0.8 glued to the
 * public stream and datagram API. It opens and binds the three local
 * unidirectional streams, feeds every peer stream to nghttp3, writes what
 * nghttp3 produces, rewrites the local SETTINGS frame to announce
 * SETTINGS_H3_DATAGRAM (nghttp3 0.8 cannot), parses the peer's SETTINGS
 * itself, and carries HTTP Datagrams as QUIC DATAGRAM frames or, as the
 * fallback, as DATAGRAM capsules on the request stream. Request streams
 * carry Extended CONNECT requests and then the Capsule Protocol.
 */
#ifndef QPEER_H3_H3CONN_H
#define QPEER_H3_H3CONN_H

#include <nghttp3/nghttp3.h>
#include <string.h>

#include "internal.h"
#include "qpeer/masque.h"

/* HTTP/3 SETTINGS identifiers qpeer reads and writes. */
#define QPEER__H3_SETTINGS_ENABLE_CONNECT_PROTOCOL 0x08 /* RFC 9220 */
#define QPEER__H3_SETTINGS_H3_DATAGRAM 0x33             /* RFC 9297 */

/* HTTP/3 error codes (RFC 9114 §8.1, RFC 9297 §2.1). */
#define QPEER__H3_NO_ERROR 0x100
#define QPEER__H3_GENERAL_PROTOCOL_ERROR 0x101
#define QPEER__H3_INTERNAL_ERROR 0x102
#define QPEER__H3_STREAM_CREATION_ERROR 0x103
#define QPEER__H3_SETTINGS_ERROR 0x109
#define QPEER__H3_REQUEST_REJECTED 0x10b
#define QPEER__H3_REQUEST_CANCELLED 0x10c
#define QPEER__H3_MESSAGE_ERROR 0x10e
#define QPEER__H3_CONNECT_ERROR 0x10f
#define QPEER__H3_DATAGRAM_ERROR 0x33

/* The largest UDP payload that is always delivered: one that does not fit
 * a QUIC DATAGRAM frame (the outer path has not grown past 1200 bytes yet)
 * travels as a DATAGRAM capsule instead, so that a tunnel carries at least
 * what QUIC requires of any path (RFC 9000 §14). Larger ones that do not
 * fit are dropped, which is what the inner DPLPMTUD expects. */
#define QPEER__H3_RELIABLE_PAYLOAD_MAX 1200

/* The smallest QUIC max_datagram_frame_size with which a 1200-byte inner
 * packet plus its HTTP Datagram and bind headers fits one DATAGRAM frame
 * (1200 + 8 + 8 + 19, rounded up). Endpoints that run MASQUE should
 * announce at least this; the library logs a warning otherwise. */
#define QPEER__MASQUE_MIN_DATAGRAM_FRAME 1280

/* Most unacknowledged capsule bytes queued per request stream; datagram
 * capsules beyond it are dropped (other capsules are always queued). */
#define QPEER__H3_CAPSULE_QUEUE_MAX (1024 * 1024)

/* Most bytes of request or response header fields kept per stream. */
#define QPEER__H3_HEADERS_MAX 16384

/* Test knob: new client sessions (bit 1) or server sessions (bit 2) do
 * not announce H3_DATAGRAM, so datagrams fall back to capsules. Only for
 * tests. */
extern int qpeer__h3_test_no_h3_datagram;

/* qpeer__h3_nv makes a header field for nghttp3 from NUL-terminated
 * strings (nghttp3 copies them). */
static inline nghttp3_nv qpeer__h3_nv(const char *name, const char *value,
                                      uint8_t flags) {
  nghttp3_nv nv;
  nv.name = (uint8_t *)(uintptr_t)name;
  nv.value = (uint8_t *)(uintptr_t)value;
  nv.namelen = strlen(name);
  nv.valuelen = strlen(value);
  nv.flags = flags;
  return nv;
}

typedef struct qpeer__h3conn qpeer__h3conn;
typedef struct qpeer__h3req qpeer__h3req;

/* Callbacks from the session to its owner. None runs inside nghttp3 in a
 * way that forbids calling back into this API: every function below may be
 * called from any of them. */
typedef struct {
  /* The peer's SETTINGS frame arrived (see qpeer__h3conn_peer_*). */
  void (*on_settings)(qpeer__h3conn *h);
  /* Server: a request's header section is complete. Answer it with
   * qpeer__h3req_respond() (now or later) or qpeer__h3req_abort(). */
  void (*on_request)(qpeer__h3conn *h, qpeer__h3req *rq);
  /* Client: the final response header section arrived (rq->status). */
  void (*on_response)(qpeer__h3req *rq);
  /* An HTTP Datagram (Context ID and payload) for |rq|. |capsule| is
   * nonzero when it came as a DATAGRAM capsule. */
  void (*on_datagram)(qpeer__h3req *rq, uint64_t context_id,
                      const uint8_t *data, size_t len, int capsule);
  /* Another known capsule (COMPRESSION_ASSIGN/ACK/CLOSE) for |rq|. */
  void (*on_capsule)(qpeer__h3req *rq, uint64_t type, const uint8_t *value,
                     size_t len);
  /* The request ended: the peer finished (status 0), reset it, sent a
   * malformed capsule (QPEER_EMALFORMED), or the connection ended. Called
   * once, unless the owner ended it first with _end or _abort. */
  void (*on_req_closed)(qpeer__h3req *rq, int status);
  /* The connection ended (once). Every open request got on_req_closed
   * before. The session is then torn down; on_freed follows. */
  void (*on_closed)(qpeer__h3conn *h, int status);
  /* Every handle is closed and the session's memory is released; the
   * qpeer_conn_t given to _new may be freed now. */
  void (*on_freed)(qpeer__h3conn *h);
  /* The peer sent GOAWAY (RFC 9114 §5.2). Client: |id| is the first
   * request stream ID the server will not process; requests below it
   * continue, no new request may be sent (_submit_request fails). May run
   * again with a smaller |id|. May be NULL. */
  void (*on_goaway)(qpeer__h3conn *h, int64_t id);
} qpeer__h3conn_callbacks;

/* Datagram counters of a session (added to by both directions). */
typedef struct {
  uint64_t tx_quic;    /* HTTP Datagrams sent as QUIC DATAGRAM frames */
  uint64_t tx_capsule; /* ... sent as DATAGRAM capsules */
  uint64_t rx_quic;    /* ... received as QUIC DATAGRAM frames */
  uint64_t rx_capsule; /* ... received as DATAGRAM capsules */
  uint64_t tx_dropped; /* not sent: too large, queue full */
  uint64_t rx_dropped; /* received for no known request, or unexpected */
} qpeer__h3_dgram_stats;

/* A request stream (client: our request; server: the peer's). */
struct qpeer__h3req {
  void *data;                        /* the owner's */
  qpeer__h3conn *h;                  /* the session */
  int64_t stream_id;                 /* QUIC stream ID */
  int status;                        /* client: response :status (0 yet) */
  const qpeer_masque_header_t *hdrs; /* received fields (borrowed) */
  size_t nhdrs;                      /* number of them */
};

/* Settings for a new session. */
typedef struct {
  int server;          /* server (relay) or client role */
  int local_datagrams; /* our QUIC max_datagram_frame_size is nonzero */
} qpeer__h3conn_settings;

/* qpeer__h3conn_new starts an HTTP/3 session on |conn|, whose handshake
 * has completed. It takes over conn's callbacks and |conn->data|, opens
 * the local control and QPACK streams and queues SETTINGS. |conn| must
 * stay valid until on_freed; the session closes it. |cbs| is copied.
 * Returns 0, UV_ENOMEM, UV_ENOTCONN or QPEER_EH3. */
int qpeer__h3conn_new(qpeer__h3conn **ph, qpeer_conn_t *conn,
                      const qpeer__h3conn_settings *s,
                      const qpeer__h3conn_callbacks *cbs, void *data);

/* qpeer__h3conn_close ends the session: the connection is closed with
 * the HTTP/3 application error |code| and |reason| (may be NULL), every
 * request ends (no on_req_closed), and on_freed follows on a later loop
 * iteration. No other callback runs after this call. Idempotent. */
void qpeer__h3conn_close(qpeer__h3conn *h, uint64_t code, const char *reason);

/* qpeer__h3conn_goaway starts a graceful shutdown (RFC 9114 §5.2): the
 * server sends GOAWAY with the first request stream ID it has not seen, so
 * that requests already received complete and later ones are rejected
 * (H3_REQUEST_REJECTED, by nghttp3). The connection stays open; close it
 * with _close when its requests are done. Idempotent. Returns 0,
 * UV_EINVAL on a client session, UV_ENOTCONN once the session ends, or
 * QPEER_EH3. */
int qpeer__h3conn_goaway(qpeer__h3conn *h);

/* Nonzero once we sent GOAWAY (_goaway). */
int qpeer__h3conn_goaway_sent(const qpeer__h3conn *h);

/* Nonzero once the peer's GOAWAY arrived; |*pid| (may be NULL) is its
 * smallest stream ID. */
int qpeer__h3conn_goaway_received(const qpeer__h3conn *h, int64_t *pid);

/* The owner's pointer given to _new. */
void *qpeer__h3conn_data(const qpeer__h3conn *h);
/* The QUIC connection. */
qpeer_conn_t *qpeer__h3conn_conn(const qpeer__h3conn *h);
/* Nonzero once the peer's SETTINGS arrived. */
int qpeer__h3conn_peer_settings_received(const qpeer__h3conn *h);
/* Nonzero if the peer sent SETTINGS_ENABLE_CONNECT_PROTOCOL = 1. */
int qpeer__h3conn_peer_connect_protocol(const qpeer__h3conn *h);
/* Nonzero if the peer sent SETTINGS_H3_DATAGRAM = 1. */
int qpeer__h3conn_peer_h3_datagram(const qpeer__h3conn *h);
/* Nonzero if HTTP Datagrams may travel as QUIC DATAGRAM frames now: both
 * sides announced H3_DATAGRAM and the QUIC extension is negotiated. */
int qpeer__h3conn_datagrams_enabled(const qpeer__h3conn *h);
/* The datagram counters. */
const qpeer__h3_dgram_stats *qpeer__h3conn_dgram_stats(const qpeer__h3conn *h);

/* qpeer__h3conn_submit_request opens a request stream (client) and sends
 * the header fields |nva| (copied by nghttp3). The request stays open for
 * capsules. Returns 0 with |*prq| set, UV_EINVAL on a server session,
 * QPEER_EFLOWCONTROL when no stream can be opened, UV_ENOTCONN,
 * UV_ESHUTDOWN after the server's GOAWAY, or QPEER_EH3. */
int qpeer__h3conn_submit_request(qpeer__h3conn *h, const nghttp3_nv *nva,
                                 size_t nvlen, void *data, qpeer__h3req **prq);

/* qpeer__h3req_header finds the received field |name| (lower case) and
 * returns its value and length, or NULL when absent. A repeated field
 * returns its first occurrence and sets |*prepeated| when not NULL. */
const char *qpeer__h3req_header(const qpeer__h3req *rq, const char *name,
                                size_t *plen, int *prepeated);

/* qpeer__h3req_respond sends the response header fields (server). With
 * |keep_open| the stream stays open for capsules; otherwise it ends after
 * the header section. Returns 0, UV_EALREADY, UV_EPIPE or QPEER_EH3. */
int qpeer__h3req_respond(qpeer__h3req *rq, const nghttp3_nv *nva, size_t nvlen,
                         int keep_open);

/* qpeer__h3req_send_datagram sends one HTTP Datagram whose payload is
 * Context ID, |hdr| (may be empty) and |data|: as a QUIC DATAGRAM frame
 * when enabled and it fits, else as a DATAGRAM capsule when datagrams are
 * not enabled or len <= QPEER__H3_RELIABLE_PAYLOAD_MAX, else it is
 * dropped. Everything is copied. Returns 0, UV_EMSGSIZE (dropped, too
 * large), UV_ENOBUFS (queue full, dropped), UV_EPIPE (request ended). */
int qpeer__h3req_send_datagram(qpeer__h3req *rq, uint64_t context_id,
                               const uint8_t *hdr, size_t hdrlen,
                               const uint8_t *data, size_t len);

/* qpeer__h3conn_flush_datagrams writes the QUIC connection's queued
 * datagrams now (as far as congestion control and pacing allow) instead
 * of at the end of the loop iteration: always with |force|, else only
 * once QPEER__UDP_TX_BATCH datagrams are queued. For callers outside the
 * connection's own receive path (a relay's sockets); does nothing inside
 * it. */
void qpeer__h3conn_flush_datagrams(qpeer__h3conn *h, int force);

/* qpeer__h3req_send_capsule queues one capsule (copied) on the request
 * stream. Returns 0, UV_ENOMEM or UV_EPIPE. */
int qpeer__h3req_send_capsule(qpeer__h3req *rq, uint64_t type,
                              const uint8_t *value, size_t len);

/* qpeer__h3req_send_encoded queues |len| bytes that already form whole
 * capsules (copied). Returns 0, UV_ENOMEM or UV_EPIPE. */
int qpeer__h3req_send_encoded(qpeer__h3req *rq, const uint8_t *capsules,
                              size_t len);

/* qpeer__h3req_end finishes the request stream cleanly (FIN after what is
 * queued). No callback for |rq| runs afterwards; its memory is released
 * once the stream is done. */
void qpeer__h3req_end(qpeer__h3req *rq);

/* qpeer__h3req_abort resets the request stream in both directions with
 * |code|. No callback for |rq| runs afterwards. */
void qpeer__h3req_abort(qpeer__h3req *rq, uint64_t code);

#endif /* QPEER_H3_H3CONN_H */
