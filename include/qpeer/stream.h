/* SPDX-License-Identifier: MIT */
/*
 * qpeer_stream_t: a QUIC stream. Outbound bytes are borrowed until the
 * write request completes, which is when the peer has acknowledged them.
 * Inbound bytes are lent to the read callback for its duration only.
 */
#ifndef QPEER_STREAM_H
#define QPEER_STREAM_H

#include <sys/types.h>

#include "qpeer/conn.h"

typedef struct qpeer_write_s qpeer_write_t;
typedef struct qpeer_shutdown_s qpeer_shutdown_t;

struct qpeer_stream_s {
  QPEER_HANDLE_FIELDS
};

/** Read callback: nread > 0 bytes at |data|; UV_EOF once at FIN; another
 * negative code (QPEER_ESTREAMRESET, connection errors) ends reading. */
typedef void (*qpeer_read_cb)(qpeer_stream_t *stream, ssize_t nread,
                              const uint8_t *data);
typedef void (*qpeer_write_cb)(qpeer_write_t *req, int status);
typedef void (*qpeer_shutdown_cb)(qpeer_shutdown_t *req, int status);

struct qpeer_write_s {
  QPEER_REQ_FIELDS
  /* private */
  qpeer_write_cb cb;      /* completion callback */
  uv_buf_t *bufs;         /* the buffers (bufsml or allocated) */
  unsigned int nbufs;     /* number of buffers */
  uv_buf_t bufsml[4];     /* inline storage for up to 4 buffers */
  uint64_t end_offset;    /* stream offset just past this write */
  void *link[2];          /* queue linkage */
};

struct qpeer_shutdown_s {
  QPEER_REQ_FIELDS
  /* private */
  qpeer_shutdown_cb cb;   /* completion callback */
};

/** Stream open flags. */
enum { QPEER_STREAM_BIDI = 0, QPEER_STREAM_UNI = 1 };

/**
 * `qpeer_stream_open` opens a new local stream on |conn| into |stream|.
 * Returns 0, QPEER_EFLOWCONTROL when the peer's stream limit is reached
 * (retry after a stream closes), UV_ENOTCONN before the handshake or after
 * the connection ended, UV_EINVAL, or UV_ENOMEM.
 */
QPEER_EXTERN int qpeer_stream_open(qpeer_conn_t *conn, qpeer_stream_t *stream,
                                   unsigned int flags);

/** `qpeer_conn_accept_stream` binds the oldest peer-initiated stream that
 * waits to |stream|. Returns 0, UV_EAGAIN when none waits, UV_EINVAL. */
QPEER_EXTERN int qpeer_conn_accept_stream(qpeer_conn_t *conn,
                                          qpeer_stream_t *stream);

/** `qpeer_stream_get_id` returns the QUIC stream ID. */
QPEER_EXTERN int64_t qpeer_stream_get_id(const qpeer_stream_t *stream);

/** `qpeer_stream_get_conn` returns the stream's connection. */
QPEER_EXTERN qpeer_conn_t *qpeer_stream_get_conn(const qpeer_stream_t *s);

/**
 * `qpeer_stream_read_start` delivers received bytes to |cb|. Bytes that
 * arrived while not reading were buffered (at most the stream's receive
 * window) and are delivered first, on a later loop iteration. Returns 0,
 * UV_EINVAL, or UV_EALREADY when already reading.
 */
QPEER_EXTERN int qpeer_stream_read_start(qpeer_stream_t *stream,
                                         qpeer_read_cb cb);

/** `qpeer_stream_read_stop` stops delivery; flow control then holds the
 * peer back once the window is used up. */
QPEER_EXTERN int qpeer_stream_read_stop(qpeer_stream_t *stream);

/**
 * `qpeer_stream_write` queues |bufs| for sending. The buffers' memory is
 * borrowed until |cb| runs: with 0 once the peer acknowledged every byte,
 * or an error (UV_ECANCELED on close, QPEER_ESTOPSENDING, connection
 * errors). The uv_buf_t array itself is copied. Returns 0, UV_EINVAL,
 * UV_EPIPE after shutdown or reset, UV_ENOTCONN, or UV_ENOBUFS when the
 * queue would exceed the endpoint's max_stream_send_queue (back-pressure:
 * wait for earlier writes to complete).
 */
QPEER_EXTERN int qpeer_stream_write(qpeer_write_t *req, qpeer_stream_t *stream,
                                    const uv_buf_t bufs[], unsigned int nbufs,
                                    qpeer_write_cb cb);

/** `qpeer_stream_get_write_queue_size` returns the bytes queued and not
 * yet acknowledged. */
QPEER_EXTERN uint64_t
qpeer_stream_get_write_queue_size(const qpeer_stream_t *stream);

/**
 * `qpeer_stream_shutdown` sends FIN after the queued bytes; |cb| runs once
 * the peer acknowledged everything including the FIN (or with an error).
 * Returns 0, UV_EINVAL, UV_EPIPE when already shut down, UV_ENOTCONN.
 */
QPEER_EXTERN int qpeer_stream_shutdown(qpeer_shutdown_t *req,
                                       qpeer_stream_t *stream,
                                       qpeer_shutdown_cb cb);

/** `qpeer_stream_reset` abandons sending (RESET_STREAM with |code|);
 * pending writes complete with UV_ECANCELED. */
QPEER_EXTERN int qpeer_stream_reset(qpeer_stream_t *stream, uint64_t code);

/** `qpeer_stream_stop_sending` asks the peer to stop sending
 * (STOP_SENDING with |code|); reading ends with UV_ECANCELED. */
QPEER_EXTERN int qpeer_stream_stop_sending(qpeer_stream_t *stream,
                                           uint64_t code);

/** `qpeer_stream_get_error_code` returns the application error code the
 * peer sent with RESET_STREAM (known when it arrives) or STOP_SENDING
 * (known once the stream has closed: ngtcp2 0.12 does not report it
 * earlier), or 0 if none is known. */
QPEER_EXTERN uint64_t qpeer_stream_get_error_code(const qpeer_stream_t *s);

#endif /* QPEER_STREAM_H */
