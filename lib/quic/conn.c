/* SPDX-License-Identifier: MIT */
/*
 * Connection life cycle: creation (client connect, server accept), the
 * expiry timer, event dispatch to the user, termination and freeing, and
 * the small public accessors. Reading and writing packets live in
 * conn_read.c and conn_write.c; ngtcp2 callbacks in conn_cb.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/addr.h"
#include "core/varint.h"
#include "peer/control.h"
#include "peer/identity.h"
#include "peer/traversal.h"
#include "quic/handles.h"

static qpeer__conn *conn_of(const qpeer_conn_t *h) {
  return h ? h->impl : NULL;
}

/* ---- the allocator shim for ngtcp2 -------------------------------------- */

static void *mem_malloc(size_t size, void *ud) {
  (void)ud;
  return qpeer__malloc(size);
}
static void mem_free(void *ptr, void *ud) {
  (void)ud;
  qpeer__free(ptr);
}
static void *mem_calloc(size_t n, size_t size, void *ud) {
  (void)ud;
  return qpeer__calloc(n, size);
}
static void *mem_realloc(void *ptr, size_t size, void *ud) {
  (void)ud;
  return qpeer__realloc(ptr, size);
}
static const ngtcp2_mem qpeer_ngtcp2_mem = {NULL, mem_malloc, mem_free,
                                            mem_calloc, mem_realloc};

/* ---- creation ----------------------------------------------------------- */

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref) {
  qpeer__conn *c = QPEER__CONTAINER_OF(ref, qpeer__conn, conn_ref);
  return c->qc;
}

static void on_timer(uv_timer_t *t);
static void flush_task_run(qpeer__defer *d);
static void free_task_run(qpeer__defer *d);

qpeer__conn *qpeer__conn_new(qpeer__ep *ep, int server) {
  qpeer__conn *c = qpeer__calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  c->ep = ep;
  c->server = server;
  c->conn_ref.get_conn = get_conn;
  c->conn_ref.user_data = c;
  qpeer__list_init(&c->accept_link);
  qpeer__list_init(&c->dirty_link);
  qpeer__list_init(&c->streams);
  qpeer__list_init(&c->stream_accept_q);
  qpeer__list_init(&c->sendable);
  qpeer__list_init(&c->observers);
  qpeer__dgring_init(&c->dgq, QPEER__MAX_DGRAM_QUEUE,
                     QPEER__MAX_DGRAM_QUEUE_BYTES);
  qpeer__defer_init(&c->free_task, free_task_run);
  qpeer__defer_init(&c->flush_task, flush_task_run);
  if (uv_timer_init(ep->loop, &c->timer) != 0) {
    qpeer__free(c);
    return NULL;
  }
  c->timer.data = c;
  c->timer_open = 1;
  qpeer__list_insert_tail(&ep->conns, &c->link);
  ep->nconns++;
  return c;
}

static void qlog_write(void *user_data, uint32_t flags, const void *data,
                       size_t datalen) {
  qpeer__conn *c = user_data;
  const char *p = data, *end = p + datalen;
  (void)flags;
  /* ngtcp2 0.12 has no loss counter; its qlog events are the only record
   * of declared losses, so count them while qlog is on. */
  while (p < end &&
         (p = memmem(p, (size_t)(end - p), "packet_lost", 11)) != NULL) {
    c->stats.packets_lost++;
    p += 11;
  }
  if (c->qlog && fwrite(data, 1, datalen, c->qlog) != datalen) {
    fclose(c->qlog);
    c->qlog = NULL;
  }
}

static void open_qlog(qpeer__conn *c, const ngtcp2_cid *odcid,
                      ngtcp2_settings *s) {
  char path[4096];
  size_t i, n;
  if (!c->ep->qlog_dir)
    return;
  n = (size_t)snprintf(path, sizeof(path), "%s/", c->ep->qlog_dir);
  for (i = 0; i < odcid->datalen && n + 3 < sizeof(path); i++)
    n += (size_t)snprintf(path + n, sizeof(path) - n, "%02x", odcid->data[i]);
  snprintf(path + n, sizeof(path) - n, "%s",
           c->server ? ".server.sqlog" : ".client.sqlog");
  c->qlog = fopen(path, "we");
  if (!c->qlog) {
    qpeer__log(QPEER_LOG_WARN, "cannot open qlog %s: %s", path,
               strerror(errno));
    return;
  }
  s->qlog.odcid = *odcid;
  s->qlog.write = qlog_write;
}

static void base_settings(qpeer__conn *c, ngtcp2_settings *s,
                          ngtcp2_transport_params *p, uint64_t idle_ms,
                          uint64_t hs_ms) {
  const qpeer_endpoint_options_t *o = &c->ep->opts;
  ngtcp2_settings_default(s);
  s->initial_ts = qpeer__now();
  s->cc_algo = NGTCP2_CC_ALGO_CUBIC;
  s->max_tx_udp_payload_size = QPEER__MAX_PKT;
  s->max_window = (uint64_t)o->conn_window;
  s->max_stream_window = (uint64_t)o->stream_window;
  s->handshake_timeout = hs_ms * NGTCP2_MILLISECONDS;
  ngtcp2_transport_params_default(p);
  p->initial_max_stream_data_bidi_local = o->stream_window;
  p->initial_max_stream_data_bidi_remote = o->stream_window;
  p->initial_max_stream_data_uni = o->stream_window;
  p->initial_max_data = o->conn_window;
  p->initial_max_streams_bidi = 1000;
  p->initial_max_streams_uni = 100;
  p->max_idle_timeout = idle_ms * NGTCP2_MILLISECONDS;
  p->active_connection_id_limit = 8;
  p->max_datagram_frame_size = o->max_datagram_frame_size;
}

int qpeer__conn_server_init(qpeer__conn *c, const ngtcp2_pkt_hd *hd,
                            const ngtcp2_path *path, const ngtcp2_cid *odcid,
                            const uint8_t *token, size_t tokenlen) {
  qpeer__ep *ep = c->ep;
  ngtcp2_settings s;
  ngtcp2_transport_params p;
  ngtcp2_callbacks cb;
  ngtcp2_cid scid;
  int r;
  (void)token;
  (void)tokenlen;
  base_settings(c, &s, &p, ep->opts.idle_timeout_ms,
                ep->opts.handshake_timeout_ms);
  p.original_dcid = odcid ? *odcid : hd->dcid;
  if (odcid) {
    p.retry_scid = hd->dcid;
    p.retry_scid_present = 1;
  }
  scid.datalen = QPEER__SCID_LEN;
  if ((r = qpeer__rand(scid.data, scid.datalen)) != 0)
    return r;
  if (ngtcp2_crypto_generate_stateless_reset_token(
          p.stateless_reset_token, ep->static_secret,
          sizeof(ep->static_secret), &scid) != 0)
    return QPEER_EQUIC;
  p.stateless_reset_token_present = 1;
  c->odcid = p.original_dcid;
  open_qlog(c, &c->odcid, &s);
  qpeer__conn_callbacks(&cb, 1);
  r = ngtcp2_conn_server_new(&c->qc, &hd->scid, &scid, path, hd->version, &cb,
                             &s, &p, &qpeer_ngtcp2_mem, c);
  if (r != 0)
    return qpeer__err_from_ngtcp2(r);
  if ((r = qpeer__tls_server_init(c)) != 0)
    return r;
  ngtcp2_conn_set_tls_native_handle(c->qc, c->tls);
  if (ep->opts.keepalive_ms)
    qpeer__conn_set_keepalive(c, ep->opts.keepalive_ms * NGTCP2_MILLISECONDS);
  if ((r = qpeer__cidmap_insert(&ep->cids, scid.data, scid.datalen, c)) != 0)
    return r;
  /* The client keeps using its chosen DCID until it hears from us. */
  c->initial_dcid = hd->dcid;
  if (qpeer__cidmap_insert(&ep->cids, hd->dcid.data, hd->dcid.datalen, c) ==
      0)
    c->initial_dcid_mapped = 1;
  return 0;
}

void qpeer_connect_options_default_versioned(int version,
                                             qpeer_connect_options_t *o) {
  (void)version;
  memset(o, 0, sizeof(*o));
  o->auth = QPEER_AUTH_PEER_ID;
}

static int check_connect_opts(const qpeer_connect_options_t *o) {
  size_t i;
  if (!o->remote || !qpeer__addr_len(o->remote) || o->nalpn == 0 || !o->alpn ||
      (o->local && !qpeer__addr_len(o->local)))
    return UV_EINVAL;
  for (i = 0; i < o->nalpn; i++)
    if (!o->alpn[i] || !*o->alpn[i] || strlen(o->alpn[i]) > 255)
      return UV_EINVAL;
  switch (o->auth) {
  case QPEER_AUTH_PEER_ID:
    return o->peer_id ? 0 : UV_EINVAL;
  case QPEER_AUTH_WEBPKI:
    return o->server_name && *o->server_name ? 0 : UV_EINVAL;
  case QPEER_AUTH_CA_FILE:
    return o->server_name && *o->server_name && o->ca_file ? 0 : UV_EINVAL;
  case QPEER_AUTH_INSECURE_NO_AUTHENTICATION:
    return 0;
  default:
    return UV_EINVAL;
  }
}

int qpeer_connect_versioned(qpeer_connect_t *req, qpeer_endpoint_t *eh,
                            qpeer_conn_t *conn, int version,
                            const qpeer_connect_options_t *o,
                            qpeer_connect_cb cb) {
  qpeer__ep *ep;
  qpeer__conn *c;
  ngtcp2_settings s;
  ngtcp2_transport_params p;
  ngtcp2_callbacks cbs;
  ngtcp2_cid dcid, scid;
  struct sockaddr_storage remote, local;
  ngtcp2_path path;
  int r;

  if (!req || !eh || !(ep = eh->impl) || !conn || !o || !cb || version < 1 ||
      version > QPEER_CONNECT_OPTIONS_VERSION)
    return UV_EINVAL;
  if ((r = check_connect_opts(o)) != 0)
    return r;
  if (ep->closing)
    return UV_EBUSY;
  if (ep->nconns >= ep->opts.max_connections)
    return UV_EMFILE;
  c = qpeer__conn_new(ep, 0);
  if (!c)
    return UV_ENOMEM;
  base_settings(c, &s, &p,
                o->idle_timeout_ms ? o->idle_timeout_ms
                                   : ep->opts.idle_timeout_ms,
                o->handshake_timeout_ms ? o->handshake_timeout_ms
                                        : ep->opts.handshake_timeout_ms);
  dcid.datalen = QPEER__SCID_LEN;
  scid.datalen = QPEER__SCID_LEN;
  if ((r = qpeer__rand(dcid.data, dcid.datalen)) != 0 ||
      (r = qpeer__rand(scid.data, scid.datalen)) != 0)
    goto fail;
  qpeer__addr_normalize(&remote, o->remote);
  if (o->local)
    qpeer__addr_normalize(&local, o->local);
  else
    memcpy(&local, &ep->udp.local, sizeof(local));
  path.local.addr = (ngtcp2_sockaddr *)&local;
  path.local.addrlen = qpeer__addr_len((struct sockaddr *)&local);
  path.remote.addr = (ngtcp2_sockaddr *)&remote;
  path.remote.addrlen = qpeer__addr_len((struct sockaddr *)&remote);
  path.user_data = NULL;
  c->odcid = dcid;
  open_qlog(c, &dcid, &s);
  qpeer__conn_callbacks(&cbs, 0);
  r = ngtcp2_conn_client_new(&c->qc, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1,
                             &cbs, &s, &p, &qpeer_ngtcp2_mem, c);
  if (r != 0) {
    r = qpeer__err_from_ngtcp2(r);
    goto fail;
  }
  c->auth = o->auth;
  if (o->auth == QPEER_AUTH_PEER_ID) {
    c->expected_id = *o->peer_id;
    c->have_expected = 1;
  }
  if ((r = qpeer__tls_client_init(c, o)) != 0)
    goto fail;
  ngtcp2_conn_set_tls_native_handle(c->qc, c->tls);
  {
    uint64_t ka = o->keepalive_ms ? o->keepalive_ms : ep->opts.keepalive_ms;
    if (ka)
      qpeer__conn_set_keepalive(c, ka * NGTCP2_MILLISECONDS);
  }
  if ((r = qpeer__cidmap_insert(&ep->cids, scid.data, scid.datalen, c)) != 0)
    goto fail;
  qpeer__handle_init((qpeer_handle_t *)conn, ep->loop, QPEER_CONN);
  conn->impl = c;
  c->handle = conn;
  {
    void *data = req->data; /* The user's field survives. */
    memset(req, 0, sizeof(*req));
    req->data = data;
  }
  req->type = QPEER_CONNECT;
  req->handle = conn;
  req->conn = conn;
  req->cb = cb;
  c->connect_req = req;
  qpeer__conn_schedule_flush(c);
  return 0;
fail:
  /* Nothing user-visible exists yet: release the state quietly. */
  qpeer__conn_schedule_free(c);
  return r;
}

/* ---- timer, flushing, dispatch ------------------------------------------ */

void qpeer__conn_update_timer(qpeer__conn *c) {
  ngtcp2_tstamp expiry, now;
  uint64_t ms;
  if (!c->timer_open || c->freeing || !c->qc || c->closed) {
    if (c->timer_open)
      uv_timer_stop(&c->timer);
    return;
  }
  expiry = ngtcp2_conn_get_expiry(c->qc);
  expiry = QPEER__MIN(expiry, qpeer__conn_dg_expiry(c));
  if (expiry == UINT64_MAX) {
    uv_timer_stop(&c->timer);
    return;
  }
  now = qpeer__now();
  ms = expiry > now ? (expiry - now + NGTCP2_MILLISECONDS - 1) /
                          NGTCP2_MILLISECONDS
                    : 0;
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t) {
  qpeer__conn *c = t->data;
  int r;
  if (c->freeing || !c->qc || c->closed)
    return;
  r = ngtcp2_conn_handle_expiry(c->qc, qpeer__now());
  if (r != 0) {
    if (r == NGTCP2_ERR_IDLE_CLOSE) {
      c->close_info.kind = QPEER_CLOSE_IDLE;
      qpeer__conn_terminate(c, QPEER_EIDLE);
    } else if (r == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
      c->close_info.kind = QPEER_CLOSE_HANDSHAKE_TIMEOUT;
      qpeer__conn_terminate(c, UV_ETIMEDOUT);
    } else {
      qpeer__conn_terminate(c, qpeer__err_from_ngtcp2(r));
    }
    qpeer__conn_dispatch(c);
    return;
  }
  qpeer__conn_write(c);
  qpeer__conn_dispatch(c);
}

static void flush_task_run(qpeer__defer *d) {
  qpeer__conn *c = QPEER__CONTAINER_OF(d, qpeer__conn, flush_task);
  c->flush_queued = 0;
  if (c->freeing)
    return;
  qpeer__conn_write(c);
  qpeer__conn_dispatch(c);
}

void qpeer__conn_schedule_flush(qpeer__conn *c) {
  if (c->freeing || c->flush_queued)
    return;
  c->flush_queued = 1;
  qpeer__defer_push(c->ep, &c->flush_task);
}

void qpeer__conn_terminate(qpeer__conn *c, int status) {
  if (c->closed)
    return;
  c->closed = 1;
  c->close_status = status;
  if (c->close_info.kind == QPEER_CLOSE_NONE)
    c->close_info.kind = QPEER_CLOSE_LOCAL;
  c->events |= QPEER__EV_CLOSED;
  if (c->timer_open)
    uv_timer_stop(&c->timer);
  qpeer__trav_conn_ended(c);
  QPEER__LOG_DEBUG("%s connection ended: %s", c->server ? "server" : "client",
                   qpeer_err_name(status));
}

static void refuse_backlog(qpeer__conn *c) {
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_default(&ccerr);
  ngtcp2_connection_close_error_set_transport_error(
      &ccerr, NGTCP2_CONNECTION_REFUSED, (const uint8_t *)"backlog", 7);
  c->ep->stats.conns_refused++;
  qpeer__conn_send_close_ccerr(c, &ccerr);
  qpeer__conn_terminate(c, UV_ECONNREFUSED);
}

static void dispatch_handshake(qpeer__conn *c) {
  qpeer__ep *ep = c->ep;
  if (!c->server) {
    qpeer_connect_t *req = c->connect_req;
    c->connect_req = NULL;
    if (req)
      req->cb(req, 0);
    return;
  }
  if (c->handle || c->closed)
    return;
  if (ep->closing || !ep->listening || ep->naccept >= ep->lopts.backlog) {
    refuse_backlog(c);
    return;
  }
  qpeer__list_insert_tail(&ep->accept_q, &c->accept_link);
  ep->naccept++;
  ep->stats.conns_accepted++;
  ep->on_connection(ep->handle, 0);
}

static void fill_path(qpeer_path_t *out, const ngtcp2_path *p);

static int path_equal(const qpeer_path_t *a, const qpeer_path_t *b) {
  return qpeer__addr_equal((const struct sockaddr *)&a->local,
                           (const struct sockaddr *)&b->local) &&
         qpeer__addr_equal((const struct sockaddr *)&a->remote,
                           (const struct sockaddr *)&b->remote);
}

static void dispatch_path(qpeer__conn *c) {
  qpeer_path_t now, old = c->last_path;
  if (!c->qc)
    return;
  fill_path(&now, ngtcp2_conn_get_path(c->qc));
  qpeer__ctrl_on_path(c);
  if (c->migrate_done) {
    qpeer_migrate_t *req = c->migrate_req;
    int status = c->migrate_status;
    c->migrate_req = NULL;
    c->migrate_done = 0;
    c->last_path = now;
    if (c->handle && !c->handle_closing && c->cbs.on_path)
      c->cbs.on_path(c->handle,
                     status == 0 ? QPEER_PATH_MIGRATED : QPEER_PATH_FAILED,
                     &old, status == 0 ? &now : &req->path);
    if (req)
      req->cb(req, status);
    return;
  }
  if (!path_equal(&now, &old)) {
    c->last_path = now;
    if (c->handle && !c->handle_closing && c->cbs.on_path)
      c->cbs.on_path(c->handle,
                     c->server ? QPEER_PATH_PEER_MOVED : QPEER_PATH_MIGRATED,
                     &old, &now);
  }
}

static void dispatch_closed(qpeer__conn *c) {
  qpeer__list *e, *next;
  int status = c->close_status;
  /* Streams first: their pending requests fail with the connection. */
  for (e = c->streams.next; e != &c->streams; e = next) {
    next = e->next;
    qpeer__stream_conn_ended(QPEER__CONTAINER_OF(e, qpeer__stream, link),
                             status);
  }
  if (c->connect_req) {
    qpeer_connect_t *req = c->connect_req;
    c->connect_req = NULL;
    req->cb(req, status == 0 ? QPEER_EPEERCLOSED : status);
    return;
  }
  if (!c->handle) {
    /* Never accepted: nobody will close it, so release it now. */
    if (qpeer__list_linked(&c->accept_link)) {
      qpeer__list_remove(&c->accept_link);
      c->ep->naccept--;
    }
    qpeer__conn_schedule_free(c);
    return;
  }
  if (!c->handle_closing && c->cbs.on_closed)
    c->cbs.on_closed(c->handle, status, &c->close_info);
}

static void dispatch_datagrams(qpeer__conn *c) {
  while (c->rxq_len > 0 && c->handle && !c->handle_closing &&
         c->cbs.on_datagram) {
    size_t i = c->rxq_head;
    uint8_t *d = c->rxq[i].data;
    c->rxq_head = (c->rxq_head + 1) % QPEER__MAX_RX_DGRAM_HELD;
    c->rxq_len--;
    c->cbs.on_datagram(c->handle, d, c->rxq[i].len);
    qpeer__free(d);
  }
}

void qpeer__conn_dispatch(qpeer__conn *c) {
  unsigned int ev;
  int rounds;
  /* Bounded: callbacks may raise new events; at most 8 rounds per call,
   * the rest waits for the next flush. */
  if (c->handshake_done && !c->ctrl_started && !c->closed && !c->freeing) {
    int r;
    c->ctrl_started = 1;
    if ((r = qpeer__ctrl_start(c)) != 0)
      qpeer__log(QPEER_LOG_WARN, "control stream: %s", qpeer_err_name(r));
  }
  for (rounds = 0; rounds < 8 && c->events && !c->freeing; rounds++) {
    ev = c->events;
    c->events = 0;
    if (ev & QPEER__EV_HANDSHAKE) {
      fill_path(&c->last_path, ngtcp2_conn_get_path(c->qc));
      dispatch_handshake(c);
    }
    if (ev & QPEER__EV_PATH)
      dispatch_path(c);
    if ((ev & QPEER__EV_STREAMS) && c->handle && !c->handle_closing &&
        c->cbs.on_stream) {
      size_t n = 0;
      while (!qpeer__list_empty(&c->stream_accept_q) && n++ < 1024 &&
             !c->handle_closing) {
        qpeer__list *head = c->stream_accept_q.next;
        c->cbs.on_stream(c->handle, 0);
        if (c->stream_accept_q.next == head)
          break; /* The user did not accept; keep it queued. */
      }
    }
    if (ev & QPEER__EV_DGRAMS)
      dispatch_datagrams(c);
    if ((ev & QPEER__EV_OBSERVED) && c->have_observed) {
      qpeer__list *e, *next;
      for (e = c->observers.next; e != &c->observers; e = next) {
        qpeer__conn_observer *obs =
            QPEER__CONTAINER_OF(e, qpeer__conn_observer, link);
        next = e->next;
        if (obs->observed)
          obs->observed(obs);
      }
    }
    if ((ev & QPEER__EV_OBSERVED) && c->handle && !c->handle_closing &&
        c->cbs.on_observed_address && c->have_observed)
      c->cbs.on_observed_address(c->handle,
                                 (const struct sockaddr *)&c->observed);
    if (ev & QPEER__EV_CLOSED)
      dispatch_closed(c);
  }
  if (c->events && !c->freeing)
    qpeer__conn_schedule_flush(c);
}

/* ---- freeing -------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h) {
  qpeer__conn *c = h->data;
  qpeer__ep *ep = c->ep;
  qpeer_conn_t *handle = c->handle;
  qpeer__ep_conn_gone(ep, c);
  qpeer__free(c);
  if (handle) {
    handle->impl = NULL;
    handle->flags |= QPEER__HANDLE_CLOSED;
    if (handle->close_cb)
      handle->close_cb((qpeer_handle_t *)handle);
  }
}

static void free_task_run(qpeer__defer *d) {
  qpeer__conn *c = QPEER__CONTAINER_OF(d, qpeer__conn, free_task);
  qpeer__list *e;
  size_t i;
  qpeer__defer_cancel(&c->flush_task);
  while ((e = qpeer__list_head(&c->observers)) != NULL) {
    qpeer__conn_observer *obs =
        QPEER__CONTAINER_OF(e, qpeer__conn_observer, link);
    qpeer__list_remove(e);
    obs->ended(obs);
  }
  if (c->connect_req) {
    qpeer_connect_t *req = c->connect_req;
    c->connect_req = NULL;
    req->cb(req, UV_ECANCELED);
  }
  if (c->migrate_req) {
    qpeer_migrate_t *req = c->migrate_req;
    c->migrate_req = NULL;
    req->cb(req, UV_ECANCELED);
  }
  qpeer__trav_free(c);
  while ((e = qpeer__list_head(&c->streams)) != NULL)
    qpeer__stream_free(QPEER__CONTAINER_OF(e, qpeer__stream, link));
  qpeer__ctrl_free(c);
  if (c->qc) {
    ngtcp2_cid scids[16];
    size_t n = ngtcp2_conn_get_num_scid(c->qc);
    if (n <= QPEER__ARRAY_SIZE(scids)) {
      n = ngtcp2_conn_get_scid(c->qc, scids);
      for (i = 0; i < n; i++)
        qpeer__cidmap_remove(&c->ep->cids, scids[i].data, scids[i].datalen);
    }
    ngtcp2_conn_del(c->qc);
    c->qc = NULL;
  }
  if (c->initial_dcid_mapped &&
      qpeer__cidmap_find(&c->ep->cids, c->initial_dcid.data,
                         c->initial_dcid.datalen) == c)
    qpeer__cidmap_remove(&c->ep->cids, c->initial_dcid.data,
                         c->initial_dcid.datalen);
  if (c->tls)
    gnutls_deinit(c->tls);
  if (c->own_cred)
    gnutls_certificate_free_credentials(c->own_cred);
  if (c->qlog)
    fclose(c->qlog);
  qpeer__dgring_free(&c->dgq);
  for (i = 0; i < c->rxq_len; i++)
    qpeer__free(c->rxq[(c->rxq_head + i) % QPEER__MAX_RX_DGRAM_HELD].data);
  qpeer__free(c->alpn);
  qpeer__free(c->verify_host);
  qpeer__free(c->shutdown_reason);
  qpeer__free(c->close_pkt);
  qpeer__free(c->close_reason);
  if (qpeer__list_linked(&c->dirty_link))
    qpeer__list_remove(&c->dirty_link);
  if (qpeer__list_linked(&c->accept_link)) {
    qpeer__list_remove(&c->accept_link);
    c->ep->naccept--;
  }
  c->timer_open = 0;
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void qpeer__conn_observe(qpeer__conn *c, qpeer__conn_observer *obs) {
  if (!qpeer__list_linked(&obs->link))
    qpeer__list_insert_tail(&c->observers, &obs->link);
}

void qpeer__conn_unobserve(qpeer__conn_observer *obs) {
  if (qpeer__list_linked(&obs->link))
    qpeer__list_remove(&obs->link);
}

void qpeer__conn_schedule_free(qpeer__conn *c) {
  if (c->freeing)
    return;
  c->freeing = 1;
  if (c->timer_open)
    uv_timer_stop(&c->timer);
  qpeer__defer_push(c->ep, &c->free_task);
}

int qpeer__conn_close(qpeer_conn_t *h) {
  qpeer__conn *c = conn_of(h);
  qpeer__list *e, *next;
  if (!c) {
    /* Already released (the endpoint closed under it). */
    h->flags |= QPEER__HANDLE_CLOSED;
    return 0;
  }
  c->handle_closing = 1;
  /* Children first: close the streams the user left open. */
  for (e = c->streams.next; e != &c->streams; e = next) {
    qpeer__stream *st = QPEER__CONTAINER_OF(e, qpeer__stream, link);
    next = e->next;
    if (st->handle && !st->handle_closing)
      qpeer_close((qpeer_handle_t *)st->handle, NULL);
    qpeer__stream_conn_ended(st, UV_ECANCELED);
  }
  /* A pending connect request completes with UV_ECANCELED in the free
   * task, on a later loop iteration and before the close callback. */
  if (!c->closed) {
    qpeer__conn_send_close(c);
    qpeer__conn_terminate(c, UV_ECANCELED);
  }
  c->events = 0;
  qpeer__conn_schedule_free(c);
  return 0;
}

/* ---- public accessors and operations -------------------------------------- */

int qpeer_conn_set_callbacks(qpeer_conn_t *h,
                             const qpeer_conn_callbacks_t *cbs) {
  qpeer__conn *c = conn_of(h);
  if (!c || !cbs)
    return UV_EINVAL;
  c->cbs = *cbs;
  if (!qpeer__list_empty(&c->stream_accept_q))
    c->events |= QPEER__EV_STREAMS;
  if (c->rxq_len)
    c->events |= QPEER__EV_DGRAMS;
  if (c->events)
    qpeer__conn_schedule_flush(c);
  return 0;
}

int qpeer_conn_shutdown(qpeer_conn_t *h, uint64_t code, const char *reason) {
  qpeer__conn *c = conn_of(h);
  if (!c || c->handle_closing)
    return UV_EINVAL;
  if (c->closed || c->shutdown_requested)
    return UV_ENOTCONN;
  c->shutdown_requested = 1;
  c->shutdown_code = code;
  if (reason && !(c->shutdown_reason = qpeer__strndup(reason, 1024)))
    return UV_ENOMEM;
  qpeer__conn_schedule_flush(c);
  return 0;
}

int qpeer__conn_send_datagramv(qpeer_conn_t *h, const uv_buf_t *bufs,
                               size_t nbufs) {
  qpeer__conn *c = conn_of(h);
  size_t len = 0, i, max;
  uint8_t *dst;
  int err;
  if (!c || (!bufs && nbufs))
    return UV_EINVAL;
  for (i = 0; i < nbufs; i++) {
    if (!bufs[i].base && bufs[i].len)
      return UV_EINVAL;
    len += bufs[i].len;
  }
  if (c->closed || c->handle_closing || !c->handshake_done)
    return UV_ENOTCONN;
  if ((max = qpeer__conn_max_datagram(c)) == 0)
    return UV_ENOTSUP;
  if (len > max)
    return UV_EMSGSIZE;
  if (!(dst = qpeer__dgring_push(&c->dgq, len, &err))) {
    if (err == UV_ENOBUFS)
      c->stats.datagrams_dropped++;
    return err;
  }
  for (i = 0; i < nbufs; i++) {
    if (bufs[i].len)
      memcpy(dst, bufs[i].base, bufs[i].len);
    dst += bufs[i].len;
  }
  /* The loop's cached clock (ms): no clock read per datagram. */
  c->dgq_last_push = uv_now(c->ep->loop) * NGTCP2_MILLISECONDS;
  qpeer__conn_schedule_flush(c);
  return 0;
}

int qpeer_conn_send_datagram(qpeer_conn_t *h, const uint8_t *data,
                             size_t len) {
  uv_buf_t b = uv_buf_init((char *)(uintptr_t)data, (unsigned int)len);
  if (!data && len)
    return UV_EINVAL;
  if (len > UINT32_MAX)
    return UV_EMSGSIZE;
  return qpeer__conn_send_datagramv(h, &b, 1);
}

size_t qpeer_conn_get_max_datagram_size(const qpeer_conn_t *h) {
  return qpeer__conn_max_datagram(conn_of(h));
}

size_t qpeer__conn_max_datagram(qpeer__conn *c) {
  const ngtcp2_transport_params *rp;
  size_t limit, pmax, hdr;
  if (!c || !c->qc || !c->handshake_done)
    return 0;
  rp = ngtcp2_conn_get_remote_transport_params(c->qc);
  if (!rp || rp->max_datagram_frame_size == 0)
    return 0;
  /* A DATAGRAM frame (type 1 + length varint + payload) must fit in one
   * short-header packet whatever its header: flags 1, a DCID of up to 20
   * (the peer may hand us longer ones later), packet number up to 4, AEAD
   * tag 16; and within the peer's max_datagram_frame_size (which counts
   * the whole frame). */
  pmax = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->qc);
  hdr = 1 + NGTCP2_MAX_CIDLEN + 4 + 16 + 1 + qpeer__varint_len(pmax);
  limit = pmax > hdr ? pmax - hdr : 0;
  hdr = 1 + qpeer__varint_len(rp->max_datagram_frame_size);
  if (rp->max_datagram_frame_size <= hdr)
    return 0;
  return QPEER__MIN(limit, (size_t)rp->max_datagram_frame_size - hdr);
}

int qpeer_conn_get_peer_id(const qpeer_conn_t *h, qpeer_peer_id_t *pid) {
  qpeer__conn *c = conn_of(h);
  if (!c || !pid)
    return UV_EINVAL;
  if (!c->handshake_done)
    return UV_ENOTCONN;
  if (!c->have_peer_id)
    return UV_ENOENT;
  *pid = c->peer_id;
  return 0;
}

int qpeer_conn_get_observed_address(const qpeer_conn_t *h,
                                    struct sockaddr_storage *a) {
  qpeer__conn *c = conn_of(h);
  if (!c || !a)
    return UV_EINVAL;
  if (!c->have_observed)
    return UV_ENOENT;
  memcpy(a, &c->observed, sizeof(*a));
  return 0;
}

const char *qpeer_conn_get_alpn(const qpeer_conn_t *h) {
  qpeer__conn *c = conn_of(h);
  return c ? c->alpn : NULL;
}

static void fill_path(qpeer_path_t *out, const ngtcp2_path *p) {
  memset(out, 0, sizeof(*out));
  memcpy(&out->local, p->local.addr, p->local.addrlen);
  memcpy(&out->remote, p->remote.addr, p->remote.addrlen);
}

int qpeer_conn_get_path(const qpeer_conn_t *h, qpeer_path_t *path) {
  qpeer__conn *c = conn_of(h);
  if (!c || !c->qc || !path)
    return UV_EINVAL;
  fill_path(path, ngtcp2_conn_get_path(c->qc));
  return 0;
}

int qpeer_conn_get_stats(const qpeer_conn_t *h, qpeer_conn_stats_t *st) {
  qpeer__conn *c = conn_of(h);
  ngtcp2_conn_stat cs;
  if (!c || !st)
    return UV_EINVAL;
  *st = c->stats;
  if (!c->qc)
    return 0;
  ngtcp2_conn_get_conn_stat(c->qc, &cs);
  st->smoothed_rtt_us = cs.smoothed_rtt / NGTCP2_MICROSECONDS;
  st->min_rtt_us = cs.min_rtt == UINT64_MAX ? 0
                                            : cs.min_rtt / NGTCP2_MICROSECONDS;
  st->rttvar_us = cs.rttvar / NGTCP2_MICROSECONDS;
  st->cwnd = cs.cwnd;
  st->bytes_in_flight = cs.bytes_in_flight;
  st->pto_count = cs.pto_count;
  st->max_udp_payload = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->qc);
  fill_path(&st->path, ngtcp2_conn_get_path(c->qc));
  return 0;
}

static int conn_migrate(qpeer_migrate_t *req, qpeer_conn_t *h,
                        const struct sockaddr *local,
                        const struct sockaddr *remote, qpeer_migrate_cb cb,
                        int immediate);

int qpeer_conn_migrate(qpeer_migrate_t *req, qpeer_conn_t *h,
                       const struct sockaddr *local,
                       const struct sockaddr *remote, qpeer_migrate_cb cb) {
  return conn_migrate(req, h, local, remote, cb, 0);
}

int qpeer__conn_migrate_immediate(qpeer_migrate_t *req, qpeer_conn_t *h,
                                  const struct sockaddr *local,
                                  const struct sockaddr *remote,
                                  qpeer_migrate_cb cb) {
  return conn_migrate(req, h, local, remote, cb, 1);
}

static int conn_migrate(qpeer_migrate_t *req, qpeer_conn_t *h,
                        const struct sockaddr *local,
                        const struct sockaddr *remote, qpeer_migrate_cb cb,
                        int immediate) {
  qpeer__conn *c = conn_of(h);
  ngtcp2_path path;
  qpeer_path_t want, cur;
  const ngtcp2_transport_params *rp;
  int r;
  if (!c || !req || !remote || !cb || !qpeer__addr_len(remote) ||
      (local && !qpeer__addr_len(local)) || c->handle_closing)
    return UV_EINVAL;
  if (c->server)
    return UV_ENOTSUP;
  if (!c->handshake_confirmed || c->closed || !c->qc)
    return UV_ENOTCONN;
  if (c->migrate_req)
    return UV_EBUSY;
  rp = ngtcp2_conn_get_remote_transport_params(c->qc);
  if (rp && rp->disable_active_migration)
    return QPEER_EPROTO;
  memset(&want, 0, sizeof(want));
  if (local)
    qpeer__addr_normalize(&want.local, local);
  else
    memcpy(&want.local, &c->ep->udp.local, sizeof(want.local));
  qpeer__addr_normalize(&want.remote, remote);
  fill_path(&cur, ngtcp2_conn_get_path(c->qc));
  if (path_equal(&want, &cur))
    return UV_EALREADY;
  path.local.addr = (ngtcp2_sockaddr *)&want.local;
  path.local.addrlen = qpeer__addr_len((struct sockaddr *)&want.local);
  path.remote.addr = (ngtcp2_sockaddr *)&want.remote;
  path.remote.addrlen = qpeer__addr_len((struct sockaddr *)&want.remote);
  path.user_data = NULL;
  {
    void *data = req->data; /* The user's field survives. */
    memset(req, 0, sizeof(*req));
    req->data = data;
  }
  req->type = QPEER_MIGRATE;
  req->handle = h;
  req->path = want;
  req->cb = cb;
  c->migrate_req = req;
  c->migrate_done = 0;
  r = immediate
          ? ngtcp2_conn_initiate_immediate_migration(c->qc, &path, qpeer__now())
          : ngtcp2_conn_initiate_migration(c->qc, &path, qpeer__now());
  if (r != 0) {
    c->migrate_req = NULL;
    if (r == NGTCP2_ERR_CONN_ID_BLOCKED)
      return QPEER_EFLOWCONTROL;
    if (r == NGTCP2_ERR_INVALID_STATE)
      return QPEER_EPROTO;
    return qpeer__err_from_ngtcp2(r);
  }
  qpeer__conn_schedule_flush(c);
  return 0;
}

qpeer_endpoint_t *qpeer_conn_get_endpoint(const qpeer_conn_t *h) {
  qpeer__conn *c = conn_of(h);
  return c ? c->ep->handle : NULL;
}

int qpeer_conn_is_server(const qpeer_conn_t *h) {
  qpeer__conn *c = conn_of(h);
  return c ? c->server : 0;
}
