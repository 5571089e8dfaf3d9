/* SPDX-License-Identifier: MIT */
/*
 * Streams: opening and accepting, the receive side (direct delivery or a
 * bounded buffer while not reading, flow-control credit returned as the
 * user consumes), the send side (a queue of borrowed write requests that
 * complete when acknowledged), FIN, reset, stop-sending and closing.
 */
#include <string.h>

#include "quic/handles.h"

#define WLINK(req) ((qpeer__list *)(void *)(req)->link)
#define WREQ(l) ((qpeer_write_t *)(void *)((char *)(l)-offsetof(qpeer_write_t, link)))

static void notify_run(qpeer__defer *d);
static void close_task_run(qpeer__defer *d);

static qpeer__stream *st_of(const qpeer_stream_t *s) {
  return s ? s->impl : NULL;
}

qpeer__stream *qpeer__stream_new(qpeer__conn *c, int64_t id, int local) {
  qpeer__stream *st = qpeer__calloc(1, sizeof(*st));
  if (!st)
    return NULL;
  st->conn = c;
  st->id = id;
  st->local = local;
  st->uni = (id & 2) != 0;
  qpeer__list_init(&st->accept_link);
  qpeer__list_init(&st->send_link);
  qpeer__list_init(&st->writes);
  qpeer__defer_init(&st->read_task, notify_run);
  qpeer__defer_init(&st->close_task, close_task_run);
  qpeer__list_insert_tail(&c->streams, &st->link);
  return st;
}

void qpeer__stream_bind(qpeer__stream *st, qpeer_stream_t *s) {
  qpeer__handle_init((qpeer_handle_t *)s, st->conn->ep->loop, QPEER_STREAM);
  s->impl = st;
  st->handle = s;
}

static int can_send(const qpeer__stream *st) {
  return !st->uni || st->local;
}

static int can_recv(const qpeer__stream *st) {
  return !st->uni || !st->local;
}

int qpeer_stream_open(qpeer_conn_t *conn, qpeer_stream_t *s,
                      unsigned int flags) {
  qpeer__conn *c = conn ? conn->impl : NULL;
  if (!c || !s || flags > QPEER_STREAM_UNI || c->handle_closing)
    return UV_EINVAL;
  return qpeer__stream_open_internal(c, s, flags == QPEER_STREAM_UNI);
}

int qpeer__stream_open_internal(qpeer__conn *c, qpeer_stream_t *s, int uni) {
  qpeer__stream *st;
  unsigned int flags = uni ? QPEER_STREAM_UNI : QPEER_STREAM_BIDI;
  int64_t id;
  int r;
  if (!c->handshake_done || c->closed || !c->qc)
    return UV_ENOTCONN;
  st = qpeer__stream_new(c, -1, 1);
  if (!st)
    return UV_ENOMEM;
  if (flags == QPEER_STREAM_UNI)
    r = ngtcp2_conn_open_uni_stream(c->qc, &id, st);
  else
    r = ngtcp2_conn_open_bidi_stream(c->qc, &id, st);
  if (r != 0) {
    qpeer__list_remove(&st->link);
    qpeer__free(st);
    return r == NGTCP2_ERR_STREAM_ID_BLOCKED ? QPEER_EFLOWCONTROL
                                             : qpeer__err_from_ngtcp2(r);
  }
  st->id = id;
  st->uni = flags == QPEER_STREAM_UNI;
  c->stats.streams_opened++;
  qpeer__stream_bind(st, s);
  return 0;
}

int qpeer_conn_accept_stream(qpeer_conn_t *conn, qpeer_stream_t *s) {
  qpeer__conn *c = conn ? conn->impl : NULL;
  qpeer__list *e;
  qpeer__stream *st;
  if (!c || !s)
    return UV_EINVAL;
  e = qpeer__list_head(&c->stream_accept_q);
  if (!e)
    return UV_EAGAIN;
  qpeer__list_remove(e);
  st = QPEER__CONTAINER_OF(e, qpeer__stream, accept_link);
  qpeer__stream_bind(st, s);
  return 0;
}

int64_t qpeer_stream_get_id(const qpeer_stream_t *s) {
  qpeer__stream *st = st_of(s);
  return st ? st->id : -1;
}

qpeer_conn_t *qpeer_stream_get_conn(const qpeer_stream_t *s) {
  qpeer__stream *st = st_of(s);
  return st ? st->conn->handle : NULL;
}

uint64_t qpeer_stream_get_error_code(const qpeer_stream_t *s) {
  qpeer__stream *st = st_of(s);
  return st ? st->peer_error_code : 0;
}

uint64_t qpeer_stream_get_write_queue_size(const qpeer_stream_t *s) {
  qpeer__stream *st = st_of(s);
  return st ? st->queued_off - st->acked_off : 0;
}

static void queue_notify(qpeer__stream *st) {
  qpeer__defer_push(st->conn->ep, &st->read_task);
}

/* ---- receive side ------------------------------------------------------- */

static void return_credit(qpeer__stream *st, size_t n) {
  qpeer__conn *c = st->conn;
  if (!c->qc || c->closed || st->closed || n == 0)
    return;
  ngtcp2_conn_extend_max_stream_offset(c->qc, st->id, n);
  ngtcp2_conn_extend_max_offset(c->qc, n);
}

int qpeer__stream_on_data(qpeer__stream *st, uint32_t flags,
                          const uint8_t *data, size_t len) {
  qpeer__conn *c = st->conn;
  if (len > 0) {
    if (st->read_cb && st->rbuf_len == 0 && st->handle &&
        !st->handle_closing) {
      st->read_cb(st->handle, (ssize_t)len, data);
      return_credit(st, len);
    } else if (!st->handle_closing) {
      /* Bounded by the stream window: the peer cannot send more than the
       * credit we gave, and credit returns only as the user consumes. */
      if (st->rbuf_len + len > st->rbuf_cap) {
        /* Sized to what is held (doubling as it grows), not to a fixed
         * minimum: most buffering is a few bytes that arrive before the
         * reader starts (an HTTP/3 stream type, SETTINGS, a HELLO), and
         * on a relay with many idle clients every byte kept counts. */
        size_t cap = QPEER__MAX(st->rbuf_cap * 2, st->rbuf_len + len);
        uint8_t *p;
        p = qpeer__realloc(st->rbuf, cap);
        if (!p)
          return NGTCP2_ERR_CALLBACK_FAILURE;
        st->rbuf = p;
        st->rbuf_cap = cap;
      }
      memcpy(st->rbuf + st->rbuf_len, data, len);
      st->rbuf_len += len;
      if (st->read_cb)
        queue_notify(st);
    } else {
      return_credit(st, len); /* Discarding: keep the peer unblocked. */
    }
  }
  if (flags & NGTCP2_STREAM_DATA_FLAG_FIN) {
    st->fin_received = 1;
    if (st->read_cb)
      queue_notify(st);
  }
  (void)c;
  return 0;
}

int qpeer_stream_read_start(qpeer_stream_t *s, qpeer_read_cb cb) {
  qpeer__stream *st = st_of(s);
  if (!st || !cb || st->handle_closing || !can_recv(st))
    return UV_EINVAL;
  if (st->read_cb)
    return UV_EALREADY;
  st->read_cb = cb;
  if (st->rbuf_len || st->fin_received || st->read_error)
    queue_notify(st);
  return 0;
}

int qpeer_stream_read_stop(qpeer_stream_t *s) {
  qpeer__stream *st = st_of(s);
  if (!st)
    return UV_EINVAL;
  st->read_cb = NULL;
  return 0;
}

/* Frees the receive buffer once it holds nothing: a drained stream keeps
 * no buffer (it is allocated again, to size, if buffering resumes). */
static void release_rbuf(qpeer__stream *st) {
  if (st->rbuf_len == 0 && st->rbuf) {
    qpeer__free(st->rbuf);
    st->rbuf = NULL;
    st->rbuf_cap = 0;
  }
}

static void deliver_reads(qpeer__stream *st) {
  if (!st->handle || st->handle_closing)
    return;
  if (st->read_cb && st->rbuf_len) {
    size_t n = st->rbuf_len;
    st->rbuf_len = 0;
    st->read_cb(st->handle, (ssize_t)n, st->rbuf);
    return_credit(st, n);
    qpeer__conn_schedule_flush(st->conn);
    if (st->rbuf_len) {
      /* The callback stopped and restarted, or data is queued again. */
      queue_notify(st);
      return;
    }
    release_rbuf(st);
  }
  if (st->read_cb && st->fin_received && !st->eof_delivered &&
      st->rbuf_len == 0) {
    st->eof_delivered = 1;
    st->read_cb(st->handle, UV_EOF, NULL);
  } else if (st->read_cb && st->read_error && !st->read_error_delivered &&
             !st->eof_delivered && st->rbuf_len == 0) {
    st->read_error_delivered = 1;
    st->read_cb(st->handle, st->read_error, NULL);
  }
}

/* ---- send side ------------------------------------------------------------ */

int qpeer__stream_has_pending(const qpeer__stream *st) {
  return st->sent_off < st->queued_off || (st->fin_queued && !st->fin_sent);
}

static void make_sendable(qpeer__stream *st) {
  if (!qpeer__list_linked(&st->send_link))
    qpeer__list_insert_tail(&st->conn->sendable, &st->send_link);
  qpeer__conn_schedule_flush(st->conn);
}

int qpeer_stream_write(qpeer_write_t *req, qpeer_stream_t *s,
                       const uv_buf_t bufs[], unsigned int nbufs,
                       qpeer_write_cb cb) {
  qpeer__stream *st = st_of(s);
  uint64_t total = 0;
  unsigned int i;
  if (!st || !req || !cb || (nbufs && !bufs) || st->handle_closing)
    return UV_EINVAL;
  if (!can_send(st))
    return UV_EINVAL;
  if (st->conn->closed)
    return UV_ENOTCONN;
  if (st->fin_queued || st->write_error || st->local_reset || st->closed)
    return UV_EPIPE;
  for (i = 0; i < nbufs; i++) {
    if (!bufs[i].base && bufs[i].len)
      return UV_EINVAL;
    total += bufs[i].len;
  }
  if (st->queued_off - st->acked_off + total >
      st->conn->ep->opts.max_stream_send_queue)
    return UV_ENOBUFS;
  {
    void *data = req->data; /* The user's field survives. */
    memset(req, 0, sizeof(*req));
    req->data = data;
  }
  req->type = QPEER_WRITE;
  req->handle = s;
  req->cb = cb;
  req->nbufs = nbufs;
  if (nbufs <= QPEER__ARRAY_SIZE(req->bufsml)) {
    req->bufs = req->bufsml;
  } else {
    req->bufs = qpeer__malloc(nbufs * sizeof(uv_buf_t));
    if (!req->bufs)
      return UV_ENOMEM;
  }
  if (nbufs)
    memcpy(req->bufs, bufs, nbufs * sizeof(uv_buf_t));
  st->queued_off += total;
  req->end_offset = st->queued_off;
  qpeer__list_init(WLINK(req));
  qpeer__list_insert_tail(&st->writes, WLINK(req));
  if (!st->cur && total) {
    st->cur = req;
    st->cur_buf = 0;
    st->cur_off = 0;
  }
  if (total == 0)
    queue_notify(st); /* Completes once earlier bytes are acknowledged. */
  make_sendable(st);
  return 0;
}

int qpeer_stream_shutdown(qpeer_shutdown_t *req, qpeer_stream_t *s,
                          qpeer_shutdown_cb cb) {
  qpeer__stream *st = st_of(s);
  if (!st || !req || !cb || st->handle_closing || !can_send(st))
    return UV_EINVAL;
  if (st->conn->closed)
    return UV_ENOTCONN;
  if (st->fin_queued || st->write_error || st->closed)
    return UV_EPIPE;
  {
    void *data = req->data; /* The user's field survives. */
    memset(req, 0, sizeof(*req));
    req->data = data;
  }
  req->type = QPEER_SHUTDOWN;
  req->handle = s;
  req->cb = cb;
  st->shutdown_req = req;
  st->fin_queued = 1;
  make_sendable(st);
  return 0;
}

size_t qpeer__stream_fill_vecs(qpeer__stream *st, ngtcp2_vec *v, size_t n) {
  qpeer__list *e;
  qpeer_write_t *w = st->cur;
  unsigned int bi = st->cur_buf;
  size_t off = st->cur_off, cnt = 0;
  if (!w)
    return 0;
  e = WLINK(w);
  while (cnt < n && e != &st->writes) {
    w = WREQ(e);
    for (; bi < w->nbufs && cnt < n; bi++, off = 0) {
      if (w->bufs[bi].len <= off)
        continue;
      v[cnt].base = (uint8_t *)w->bufs[bi].base + off;
      v[cnt].len = w->bufs[bi].len - off;
      cnt++;
    }
    e = e->next;
    bi = 0;
  }
  return cnt;
}

void qpeer__stream_advance(qpeer__stream *st, size_t n) {
  qpeer__list *e;
  st->sent_off += n;
  while (st->cur) {
    qpeer_write_t *w = st->cur;
    while (st->cur_buf < w->nbufs) {
      size_t left = w->bufs[st->cur_buf].len - st->cur_off;
      if (n < left) {
        st->cur_off += n;
        return;
      }
      n -= left;
      st->cur_buf++;
      st->cur_off = 0;
      if (n == 0 && st->cur_buf < w->nbufs)
        return;
    }
    e = WLINK(w)->next;
    st->cur = e == &st->writes ? NULL : WREQ(e);
    st->cur_buf = 0;
    st->cur_off = 0;
    if (n == 0 && st->cur && st->cur->nbufs)
      return;
  }
}

static void complete_writes(qpeer__stream *st, int status) {
  qpeer__list *e;
  /* Bounded by the queue length; each completion may queue new writes,
   * which are left for the next acknowledgement. */
  size_t n = 0, limit = 1;
  for (e = st->writes.next; e != &st->writes; e = e->next)
    limit++;
  while ((e = qpeer__list_head(&st->writes)) != NULL && n++ < limit) {
    qpeer_write_t *w = WREQ(e);
    if (status == 0 && w->end_offset > st->acked_off)
      break;
    if (status != 0 && w == st->cur)
      st->cur = NULL;
    qpeer__list_remove(e);
    if (w->bufs != w->bufsml)
      qpeer__free(w->bufs);
    w->bufs = NULL;
    w->cb(w, status);
  }
}

static void maybe_complete_shutdown(qpeer__stream *st, int status) {
  qpeer_shutdown_t *req = st->shutdown_req;
  if (!req)
    return;
  /* ngtcp2 reports no acknowledgement of a FIN sent on its own; such a FIN
   * is known to have arrived only when the stream closes. */
  if (status == 0 && !(st->fin_sent && st->acked_off == st->queued_off &&
                       (st->fin_with_data || st->closed)))
    return;
  st->shutdown_req = NULL;
  req->cb(req, status);
}

void qpeer__stream_on_acked(qpeer__stream *st, uint64_t offset,
                            uint64_t len) {
  if (offset + len > st->acked_off)
    st->acked_off = offset + len;
  complete_writes(st, 0);
  maybe_complete_shutdown(st, 0);
}

/* ---- termination events ----------------------------------------------------- */

static void notify_run(qpeer__defer *d) {
  qpeer__stream *st = QPEER__CONTAINER_OF(d, qpeer__stream, read_task);
  deliver_reads(st);
  if (st->write_error) {
    complete_writes(st, st->write_error);
    maybe_complete_shutdown(st, st->write_error);
  } else {
    complete_writes(st, 0);
    maybe_complete_shutdown(st, 0);
  }
}

void qpeer__stream_on_reset(qpeer__stream *st, uint64_t code) {
  st->peer_error_code = code;
  if (!st->fin_received && !st->read_error)
    st->read_error = QPEER_ESTREAMRESET;
  queue_notify(st);
}

/* ngtcp2 0.12 has no callback for a received STOP_SENDING: it answers
 * with RESET_STREAM itself and then refuses writes (STREAM_SHUT_WR), or
 * closes the stream with the peer's code. Both paths land here. */
void qpeer__stream_on_peer_stopped(qpeer__stream *st, uint64_t code) {
  if (st->local_reset || st->write_error)
    return;
  st->peer_error_code = code;
  st->write_error = QPEER_ESTOPSENDING;
  queue_notify(st);
}

void qpeer__stream_on_closed(qpeer__stream *st, uint64_t app_code,
                             int reset) {
  st->closed = 1;
  if (qpeer__list_linked(&st->send_link))
    qpeer__list_remove(&st->send_link);
  if (reset && !st->peer_error_code)
    st->peer_error_code = app_code;
  if (can_recv(st) && !st->fin_received && !st->read_error)
    st->read_error = QPEER_ESTREAMRESET;
  if (reset && can_send(st) &&
      (!qpeer__list_empty(&st->writes) || st->shutdown_req))
    qpeer__stream_on_peer_stopped(st, app_code);
  if (!qpeer__list_empty(&st->writes) && !st->write_error)
    st->write_error = UV_ECANCELED;
  if (st->shutdown_req && !st->write_error &&
      (st->acked_off < st->queued_off || reset))
    st->write_error = UV_ECANCELED;
  if (!st->handle) {
    /* Nobody holds it: the user closed the handle, or it was never
     * accepted (then it leaves the accept queue too). */
    if (qpeer__list_linked(&st->accept_link))
      qpeer__list_remove(&st->accept_link);
    qpeer__stream_free(st);
    return;
  }
  queue_notify(st);
}

void qpeer__stream_conn_ended(qpeer__stream *st, int status) {
  if (!status)
    status = UV_ECANCELED;
  if (can_recv(st) && !st->fin_received && !st->read_error)
    st->read_error = status;
  if (!st->write_error)
    st->write_error = status;
  queue_notify(st);
}

int qpeer_stream_reset(qpeer_stream_t *s, uint64_t code) {
  qpeer__stream *st = st_of(s);
  if (!st || st->handle_closing || !can_send(st))
    return UV_EINVAL;
  if (st->closed || st->conn->closed)
    return UV_ENOTCONN;
  st->reset_pending = 1;
  st->local_reset = 1;
  st->reset_code = code ? code : 0;
  if (!st->write_error)
    st->write_error = UV_ECANCELED;
  st->fin_queued = 1;
  st->fin_sent = 1;
  if (qpeer__list_linked(&st->send_link))
    qpeer__list_remove(&st->send_link);
  queue_notify(st);
  qpeer__conn_schedule_flush(st->conn);
  return 0;
}

int qpeer_stream_stop_sending(qpeer_stream_t *s, uint64_t code) {
  qpeer__stream *st = st_of(s);
  if (!st || st->handle_closing || !can_recv(st))
    return UV_EINVAL;
  if (st->closed || st->conn->closed)
    return UV_ENOTCONN;
  st->stop_pending = 1;
  st->stop_code = code;
  if (!st->read_error && !st->fin_received)
    st->read_error = UV_ECANCELED;
  st->rbuf_len = 0;
  queue_notify(st);
  qpeer__conn_schedule_flush(st->conn);
  return 0;
}

/* ---- closing and freeing ---------------------------------------------------- */

static void close_task_run(qpeer__defer *d) {
  qpeer__stream *st = QPEER__CONTAINER_OF(d, qpeer__stream, close_task);
  qpeer_stream_t *h = st->handle;
  qpeer__defer_cancel(&st->read_task);
  if (!st->write_error)
    st->write_error = UV_ECANCELED;
  complete_writes(st, st->write_error);
  maybe_complete_shutdown(st, st->write_error);
  st->handle = NULL;
  if (h) {
    h->impl = NULL;
    h->flags |= QPEER__HANDLE_CLOSED;
  }
  if (st->closed || !st->conn->qc || st->conn->freeing)
    qpeer__stream_free(st);
  if (h && h->close_cb)
    h->close_cb((qpeer_handle_t *)h);
}

int qpeer__stream_close(qpeer_stream_t *s) {
  qpeer__stream *st = st_of(s);
  qpeer__conn *c;
  if (!st) {
    s->flags |= QPEER__HANDLE_CLOSED;
    return 0;
  }
  c = st->conn;
  st->handle_closing = 1;
  st->read_cb = NULL;
  if (!st->closed && !c->closed && c->qc) {
    /* Abandon what is unfinished, like closing a socket. */
    if (can_send(st) && !(st->fin_sent && st->acked_off == st->queued_off) &&
        !st->local_reset) {
      st->reset_pending = 1;
      st->local_reset = 1;
      st->reset_code = 0;
    }
    if (can_recv(st) && !st->fin_received && !st->stop_pending) {
      st->stop_pending = 1;
      st->stop_code = 0;
    }
    qpeer__conn_schedule_flush(c);
  }
  if (qpeer__list_linked(&st->send_link))
    qpeer__list_remove(&st->send_link);
  qpeer__defer_push(c->ep, &st->close_task);
  return 0;
}

void qpeer__stream_free(qpeer__stream *st) {
  qpeer__defer_cancel(&st->read_task);
  qpeer__defer_cancel(&st->close_task);
  if (!st->write_error)
    st->write_error = UV_ECANCELED;
  complete_writes(st, st->write_error);
  maybe_complete_shutdown(st, st->write_error);
  if (st->handle) {
    st->handle->impl = NULL;
    st->handle->flags |= QPEER__HANDLE_CLOSED;
    if (st->handle->close_cb && st->handle_closing)
      st->handle->close_cb((qpeer_handle_t *)st->handle);
  }
  if (st->conn->qc && !st->closed)
    ngtcp2_conn_set_stream_user_data(st->conn->qc, st->id, NULL);
  qpeer__list_remove(&st->link);
  if (qpeer__list_linked(&st->accept_link))
    qpeer__list_remove(&st->accept_link);
  if (qpeer__list_linked(&st->send_link))
    qpeer__list_remove(&st->send_link);
  qpeer__free(st->rbuf);
  qpeer__free(st);
}
