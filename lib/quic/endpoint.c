/* SPDX-License-Identifier: MIT */
/*
 * The endpoint: options, the socket's receive path and demultiplexing,
 * stateless responses (Version Negotiation, Retry, stateless reset,
 * CONNECTION_CLOSE refusals), listening and accepting, virtual interfaces,
 * and closing.
 */
#include <string.h>

#include "core/addr.h"
#include "net/demux.h"
#include "peer/identity.h"
#include "quic/handles.h"

#define RETRY_TOKEN_TIMEOUT (10 * NGTCP2_SECONDS)
#define RESET_RATE 100 /* stateless resets per second at most */

/* The clock. A receive batch stamps one reading that the packets it reads
 * reuse (qpeer__rx_now) until anything reads the clock again on this
 * thread, so the timestamps given to ngtcp2 never go back. */
static _Thread_local uint64_t rx_ts;
static _Thread_local int rx_stamped;

uint64_t qpeer__now(void) {
  rx_stamped = 0;
  return uv_hrtime();
}

void qpeer__clock_stamp(void) {
  rx_ts = uv_hrtime();
  rx_stamped = 1;
}

uint64_t qpeer__rx_now(void) { return rx_stamped ? rx_ts : qpeer__now(); }

static qpeer__ep *ep_of(const qpeer_endpoint_t *h) { return h->impl; }

qpeer__ep *qpeer__ep_of(qpeer_endpoint_t *h) { return h ? h->impl : NULL; }

void qpeer__ep_add_handler(qpeer__list *list, qpeer__pkt_handler *h) {
  qpeer__list_insert_tail(list, &h->link);
}

void qpeer__ep_remove_handler(qpeer__pkt_handler *h) {
  if (qpeer__list_linked(&h->link))
    qpeer__list_remove(&h->link);
}

/* Offers a packet to the internal handlers in |list|; nonzero if taken. */
static int run_handlers(qpeer__list *list, const uint8_t *data, size_t len,
                        const struct sockaddr *from,
                        const struct sockaddr *local) {
  qpeer__list *e, *next;
  for (e = list->next; e != list; e = next) {
    qpeer__pkt_handler *h = QPEER__CONTAINER_OF(e, qpeer__pkt_handler, link);
    next = e->next;
    if (h->fn(h, data, len, from, local))
      return 1;
  }
  return 0;
}

void qpeer_endpoint_options_default_versioned(int version,
                                              qpeer_endpoint_options_t *o) {
  (void)version;
  memset(o, 0, sizeof(*o));
  o->idle_timeout_ms = 30000;
  o->handshake_timeout_ms = 10000;
  o->retry_mode = QPEER_RETRY_ON_LOAD;
  o->retry_rate = 200;
  o->max_connections = 4096;
  o->stream_window = 1024 * 1024;
  o->conn_window = 16 * 1024 * 1024;
  o->max_stream_send_queue = 64ull * 1024 * 1024;
  /* Room for a full-size inner QUIC packet inside a DATAGRAM (MASQUE). */
  o->max_datagram_frame_size = 1452;
  o->address_discovery = QPEER_ADDRDISC_BOTH;
}

void qpeer_listen_options_default_versioned(int version,
                                            qpeer_listen_options_t *o) {
  (void)version;
  memset(o, 0, sizeof(*o));
  o->backlog = 128;
}

static void on_udp_recv(qpeer__udp *u, const uint8_t *data, size_t len,
                        const struct sockaddr *from, int truncated);
static void on_batch_end(qpeer__udp *u);
static void on_writable(qpeer__udp *u);
static void finish_close(qpeer__defer *d);

static int load_server_cred(qpeer__ep *ep) {
  int r;
  if (!ep->opts.cert_file && !ep->opts.key_file)
    return 0;
  if (!ep->opts.cert_file || !ep->opts.key_file)
    return UV_EINVAL;
  r = gnutls_certificate_allocate_credentials(&ep->server_cred);
  if (r < 0)
    return qpeer__err_from_gnutls(r);
  r = gnutls_certificate_set_x509_key_file(ep->server_cred, ep->opts.cert_file,
                                           ep->opts.key_file,
                                           GNUTLS_X509_FMT_PEM);
  if (r < 0) {
    qpeer__log(QPEER_LOG_ERROR, "cannot load %s / %s: %s", ep->opts.cert_file,
               ep->opts.key_file, gnutls_strerror(r));
    gnutls_certificate_free_credentials(ep->server_cred);
    ep->server_cred = NULL;
    return QPEER_EKEYFILE;
  }
  return 0;
}

/* Leaves every element of |l| unlinked (they belong to their owners). */
static void unlink_all(qpeer__list *l) {
  qpeer__list *e;
  if (!l->next)
    return;
  while ((e = qpeer__list_head(l)) != NULL)
    qpeer__list_remove(e);
}

static void ep_free(qpeer__ep *ep) {
  size_t i;
  unlink_all(&ep->vifs);
  unlink_all(&ep->stun_handlers);
  unlink_all(&ep->raw_handlers);
  qpeer__cidmap_free(&ep->cids);
  if (ep->server_cred)
    gnutls_certificate_free_credentials(ep->server_cred);
  if (ep->webpki_cred)
    gnutls_certificate_free_credentials(ep->webpki_cred);
  if (ep->identity)
    qpeer_identity_unref(ep->identity);
  for (i = 0; i < ep->nalpn; i++)
    qpeer__free(ep->alpn[i].data);
  qpeer__free(ep->alpn);
  qpeer__free(ep->allow);
  qpeer__free(ep->qlog_dir);
  qpeer__free(ep->txbuf);
  qpeer__free(ep);
}

static void free_after_failed_init(uv_handle_t *h) { ep_free(h->data); }

int qpeer_endpoint_init_versioned(uv_loop_t *loop, qpeer_endpoint_t *h,
                                  int version,
                                  const qpeer_endpoint_options_t *opts) {
  qpeer__ep *ep;
  uint64_t seed;
  const char *qd;
  int r;

  if (!loop || !h || version < 1 || version > QPEER_ENDPOINT_OPTIONS_VERSION)
    return UV_EINVAL;
  ep = qpeer__calloc(1, sizeof(*ep));
  if (!ep)
    return UV_ENOMEM;
  qpeer__handle_init((qpeer_handle_t *)h, loop, QPEER_ENDPOINT);
  h->flags = 0; /* Not usable until the end of init. */
  ep->handle = h;
  ep->loop = loop;
  if (opts)
    ep->opts = *opts;
  else
    qpeer_endpoint_options_default(&ep->opts);
  if (ep->opts.stream_window == 0 || ep->opts.stream_window > (16u << 20) ||
      ep->opts.conn_window == 0 || ep->opts.max_connections == 0 ||
      ep->opts.max_datagram_frame_size > 65535) {
    qpeer__free(ep);
    return UV_EINVAL;
  }
  qpeer__list_init(&ep->conns);
  qpeer__list_init(&ep->accept_q);
  qpeer__list_init(&ep->dirty);
  qpeer__list_init(&ep->vifs);
  qpeer__list_init(&ep->stun_handlers);
  qpeer__list_init(&ep->raw_handlers);
  qpeer__list_init(&ep->defer_q);
  qpeer__list_init(&ep->post_batch);
  qpeer__defer_init(&ep->close_task, finish_close);
  ep->opts.bind_addr = NULL;
  ep->opts.cert_file = opts ? opts->cert_file : NULL;
  ep->opts.key_file = opts ? opts->key_file : NULL;
  qd = ep->opts.qlog_dir ? ep->opts.qlog_dir : getenv("QPEER_QLOG_DIR");
  ep->opts.qlog_dir = NULL;
  if (qd && *qd && !(ep->qlog_dir = qpeer__strdup(qd))) {
    r = UV_ENOMEM;
    goto fail;
  }
  ep->txbuf = qpeer__malloc((size_t)QPEER__UDP_TX_BATCH * QPEER__MAX_PKT);
  if (!ep->txbuf) {
    r = UV_ENOMEM;
    goto fail;
  }
  if ((r = qpeer__rand(ep->static_secret, sizeof(ep->static_secret))) != 0 ||
      (r = qpeer__rand(&seed, sizeof(seed))) != 0)
    goto fail;
  if ((r = qpeer__cidmap_init(&ep->cids, seed)) != 0)
    goto fail;
  if (opts && opts->identity)
    ep->identity = qpeer_identity_ref(opts->identity);
  else if ((r = qpeer_identity_generate(&ep->identity)) != 0)
    goto fail;
  ep->opts.identity = NULL;
  if ((r = load_server_cred(ep)) != 0)
    goto fail;
  ep->opts.cert_file = ep->opts.key_file = NULL;
  if ((r = qpeer__defer_start(ep)) != 0)
    goto fail;
  r = qpeer__udp_open(&ep->udp, loop, opts ? opts->bind_addr : NULL,
                      opts ? opts->ipv6_only : 0,
                      opts ? opts->disable_gso : 0);
  if (r != 0) {
    /* The idle handle exists: the state is freed once it has closed, on a
     * later loop iteration (never a nested uv_run). */
    ep->defer_idle.data = ep;
    ep->idle_closing = 1;
    uv_close((uv_handle_t *)&ep->defer_idle, free_after_failed_init);
    h->impl = NULL;
    return r;
  }
  ep->udp.on_recv = on_udp_recv;
  ep->udp.on_batch_end = on_batch_end;
  ep->udp.on_writable = on_writable;
  ep->udp.poll.data = &ep->udp;
  ep->reset_tokens = RESET_RATE;
  ep->reset_tokens_ts = qpeer__now();
  h->impl = ep;
  h->flags = QPEER__HANDLE_INIT;
  return 0;
fail:
  ep_free(ep);
  h->impl = NULL;
  return r;
}

/* ---- sending ------------------------------------------------------------ */

static qpeer__vif *find_vif(qpeer__ep *ep, const struct sockaddr *local) {
  qpeer__list *e;
  for (e = ep->vifs.next; e != &ep->vifs; e = e->next) {
    qpeer__vif *v = QPEER__CONTAINER_OF(e, qpeer__vif, link);
    if (qpeer__addr_equal((const struct sockaddr *)&v->local, local))
      return v;
  }
  return NULL;
}

void qpeer__ep_send_packets(qpeer__ep *ep, const ngtcp2_path *path,
                            const uint8_t *data, size_t len, size_t segsize,
                            int *pblocked) {
  qpeer__vif *vif = NULL;
  int r;
  if (!qpeer__list_empty(&ep->vifs))
    vif = find_vif(ep, (const struct sockaddr *)path->local.addr);
  if (vif && !vif->socket_alias) {
    size_t off = 0;
    while (off < len) {
      size_t l = QPEER__MIN(segsize, len - off);
      vif->send(vif, (const struct sockaddr *)path->remote.addr, data + off, l);
      ep->stats.tx_datagrams++;
      ep->stats.tx_bytes += l;
      off += l;
    }
    return;
  }
  if (!vif && !qpeer__addr_equal((const struct sockaddr *)path->local.addr,
                                 (const struct sockaddr *)&ep->udp.local)) {
    /* A synthetic local address whose interface is gone (a tunnel that
     * closed): those packets have no way out. */
    return;
  }
  r = qpeer__udp_send(&ep->udp, (const struct sockaddr *)path->remote.addr,
                      data, len, segsize);
  ep->stats.tx_syscalls = ep->udp.syscalls;
  if (r == UV_EAGAIN) {
    /* The packets are lost like any UDP loss; stop producing more until the
     * socket drains. */
    *pblocked = 1;
    qpeer__udp_want_writable(&ep->udp, 1);
    return;
  }
  if (r != 0) {
    QPEER__LOG_DEBUG("send failed: %s", uv_strerror(r));
    return;
  }
  ep->stats.tx_datagrams += (len + segsize - 1) / segsize;
  ep->stats.tx_bytes += len;
}

/* Stateless replies leave from the arrival path's local address: the
 * socket, or the tunnel the packet came through. */
static void send_raw_to(qpeer__ep *ep, const struct sockaddr *local,
                        const struct sockaddr *to, const uint8_t *data,
                        size_t len) {
  qpeer__ep_send_datagram(ep, local, data, len, to);
}

int qpeer__ep_send_datagram(qpeer__ep *ep, const struct sockaddr *local,
                            const uint8_t *data, size_t len,
                            const struct sockaddr *to) {
  qpeer__vif *vif = local ? find_vif(ep, local) : NULL;
  int r;
  if (ep->closing)
    return UV_EBUSY;
  if (len == 0 || len > QPEER__MAX_PKT)
    return UV_EMSGSIZE;
  if (vif && !vif->socket_alias)
    r = vif->send(vif, to, data, len);
  else
    r = qpeer__udp_send(&ep->udp, to, data, len, len);
  if (r == 0) {
    ep->stats.tx_datagrams++;
    ep->stats.tx_bytes += len;
  }
  return r;
}

int qpeer__ep_is_tunnel(qpeer__ep *ep, const struct sockaddr *local) {
  qpeer__vif *vif = find_vif(ep, local);
  return vif && vif->send && !vif->socket_alias;
}

int qpeer__ep_add_vif(qpeer__ep *ep, qpeer__vif *vif) {
  if (find_vif(ep, (const struct sockaddr *)&vif->local) ||
      qpeer__addr_equal((const struct sockaddr *)&vif->local,
                        (const struct sockaddr *)&ep->udp.local))
    return UV_EEXIST;
  qpeer__list_insert_tail(&ep->vifs, &vif->link);
  return 0;
}

void qpeer__ep_remove_vif(qpeer__ep *ep, qpeer__vif *vif) {
  (void)ep;
  if (qpeer__list_linked(&vif->link))
    qpeer__list_remove(&vif->link);
}

int qpeer_endpoint_send_raw(qpeer_endpoint_t *h, const uint8_t *data,
                            size_t len, const struct sockaddr *to) {
  qpeer__ep *ep;
  int r;
  if (!h || !(ep = ep_of(h)) || !data || !to || len == 0)
    return UV_EINVAL;
  if (ep->closing)
    return UV_EBUSY;
  if (len > QPEER__MAX_PKT)
    return UV_EMSGSIZE;
  r = qpeer__udp_send(&ep->udp, to, data, len, len);
  if (r == 0) {
    ep->stats.tx_datagrams++;
    ep->stats.tx_bytes += len;
  }
  return r;
}

/* ---- receiving ---------------------------------------------------------- */

void qpeer__ep_mark_dirty(qpeer__ep *ep, qpeer__conn *c) {
  if (!qpeer__list_linked(&c->dirty_link))
    qpeer__list_insert_tail(&ep->dirty, &c->dirty_link);
}

static void flush_dirty(qpeer__ep *ep) {
  qpeer__list *e;
  while ((e = qpeer__list_head(&ep->dirty)) != NULL) {
    qpeer__conn *c = QPEER__CONTAINER_OF(e, qpeer__conn, dirty_link);
    qpeer__list_remove(e);
    if (!c->freeing) {
      qpeer__conn_write(c);
      qpeer__conn_dispatch(c);
    }
  }
}

void qpeer__ep_flush(qpeer__ep *ep) { flush_dirty(ep); }

void qpeer__ep_after_batch(qpeer__ep *ep, qpeer__defer *d) {
  if (qpeer__list_linked(&d->link))
    return;
  if (ep->in_batch && !ep->closing)
    qpeer__list_insert_tail(&ep->post_batch, &d->link);
  else
    qpeer__defer_push(ep, d);
}

/* Tasks queued for a batch's end that will not see one (the socket
 * closed within the batch) go to the defer queue. */
static void post_batch_to_defer(qpeer__ep *ep) {
  qpeer__list *e;
  ep->in_batch = 0;
  while ((e = qpeer__list_head(&ep->post_batch)) != NULL) {
    qpeer__list_remove(e);
    qpeer__defer_push(ep, QPEER__CONTAINER_OF(e, qpeer__defer, link));
  }
}

static void on_batch_end(qpeer__udp *u) {
  qpeer__ep *ep = QPEER__CONTAINER_OF(u, qpeer__ep, udp);
  qpeer__list *e;
  /* The connections that received the batch write first (their ACKs
   * leave before the tunnel input is processed, so that work does not
   * count in their RTT), then the tasks run and the write pass repeats.
   * Bounded: a task queued while these run goes to the defer queue
   * (in_batch is off). */
  ep->in_batch = 0;
  flush_dirty(ep);
  if (qpeer__list_empty(&ep->post_batch))
    return;
  while ((e = qpeer__list_head(&ep->post_batch)) != NULL) {
    qpeer__defer *d = QPEER__CONTAINER_OF(e, qpeer__defer, link);
    qpeer__list_remove(e);
    d->run(d);
  }
  flush_dirty(ep);
}

static void on_writable(qpeer__udp *u) {
  qpeer__ep *ep = QPEER__CONTAINER_OF(u, qpeer__ep, udp);
  qpeer__list *e;
  qpeer__udp_want_writable(u, 0);
  for (e = ep->conns.next; e != &ep->conns; e = e->next)
    qpeer__ep_mark_dirty(ep, QPEER__CONTAINER_OF(e, qpeer__conn, link));
  flush_dirty(ep);
}

/* Offers a packet to the raw handlers and hook; nonzero if anyone took
 * it (then no stateless reset answers it). */
static int to_raw(qpeer__ep *ep, const uint8_t *data, size_t len,
                  const struct sockaddr *from, const struct sockaddr *local) {
  ep->stats.rx_raw++;
  if (run_handlers(&ep->raw_handlers, data, len, from, local))
    return 1;
  if (ep->raw_hook) {
    ep->raw_hook(ep->handle, data, len, from);
    return 1;
  }
  return 0;
}

static void send_version_negotiation(qpeer__ep *ep, const ngtcp2_version_cid *vc,
                                     const struct sockaddr *local,
                                     const struct sockaddr *from) {
  /* Room for two 255-byte CIDs and the version list. */
  uint8_t buf[1 + 4 + 2 * (1 + 255) + 8], rnd;
  uint32_t sv[] = {NGTCP2_PROTO_VER_V1, NGTCP2_PROTO_VER_V2_DRAFT};
  ngtcp2_ssize n;
  qpeer__rand(&rnd, 1);
  n = ngtcp2_pkt_write_version_negotiation(buf, sizeof(buf), rnd, vc->scid,
                                           vc->scidlen, vc->dcid, vc->dcidlen,
                                           sv, QPEER__ARRAY_SIZE(sv));
  if (n > 0) {
    send_raw_to(ep, local, from, buf, (size_t)n);
    ep->stats.tx_version_negotiation++;
  }
}

static void send_refusal(qpeer__ep *ep, const ngtcp2_pkt_hd *hd,
                         const struct sockaddr *local,
                         const struct sockaddr *from, uint64_t code) {
  uint8_t buf[QPEER__MAX_PKT];
  ngtcp2_cid scid;
  ngtcp2_ssize n;
  scid.datalen = QPEER__SCID_LEN;
  qpeer__rand(scid.data, scid.datalen);
  /* The client derives Initial keys from the DCID it chose, so that is our
   * SCID here. */
  n = ngtcp2_crypto_write_connection_close(buf, sizeof(buf), hd->version,
                                           &hd->scid, &hd->dcid, code, NULL,
                                           0);
  if (n > 0)
    send_raw_to(ep, local, from, buf, (size_t)n);
  ep->stats.conns_refused++;
}

static void send_retry(qpeer__ep *ep, const ngtcp2_pkt_hd *hd,
                       const struct sockaddr *local,
                       const struct sockaddr *from) {
  uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN], buf[QPEER__MAX_PKT];
  ngtcp2_cid scid;
  ngtcp2_ssize tlen, n;
  scid.datalen = QPEER__SCID_LEN;
  if (qpeer__rand(scid.data, scid.datalen) != 0)
    return;
  tlen = ngtcp2_crypto_generate_retry_token(
      token, ep->static_secret, sizeof(ep->static_secret), hd->version,
      (const ngtcp2_sockaddr *)from, qpeer__addr_len(from), &scid, &hd->dcid,
      qpeer__now());
  if (tlen < 0)
    return;
  n = ngtcp2_crypto_write_retry(buf, sizeof(buf), hd->version, &hd->scid,
                                &scid, &hd->dcid, token, (size_t)tlen);
  if (n > 0) {
    send_raw_to(ep, local, from, buf, (size_t)n);
    ep->stats.tx_retry++;
  }
}

static int retry_needed(qpeer__ep *ep) {
  uint64_t now = qpeer__now();
  switch (ep->opts.retry_mode) {
  case QPEER_RETRY_ALWAYS:
    return 1;
  case QPEER_RETRY_NEVER:
    return 0;
  default:
    if (now - ep->rate_window_start >= NGTCP2_SECONDS) {
      ep->rate_window_start = now;
      ep->rate_count = 0;
    }
    return ++ep->rate_count > ep->opts.retry_rate;
  }
}

static void accept_initial(qpeer__ep *ep, const uint8_t *data, size_t len,
                           const ngtcp2_path *path) {
  const struct sockaddr *from = (const struct sockaddr *)path->remote.addr;
  const struct sockaddr *local = (const struct sockaddr *)path->local.addr;
  ngtcp2_pkt_hd hd;
  ngtcp2_cid odcid, *podcid = NULL;
  qpeer__conn *c;
  int r;

  if (ngtcp2_accept(&hd, data, len) != 0) {
    ep->stats.rx_garbage++;
    return;
  }
  if (ep->nconns >= ep->opts.max_connections) {
    send_refusal(ep, &hd, local, from, NGTCP2_CONNECTION_REFUSED);
    return;
  }
  if (hd.token.len > 0 && hd.token.base[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
    if (ngtcp2_crypto_verify_retry_token(
            &odcid, hd.token.base, hd.token.len, ep->static_secret,
            sizeof(ep->static_secret), hd.version,
            (const ngtcp2_sockaddr *)from, qpeer__addr_len(from), &hd.dcid,
            RETRY_TOKEN_TIMEOUT, qpeer__now()) != 0) {
      ep->stats.bad_tokens++;
      send_refusal(ep, &hd, local, from, NGTCP2_INVALID_TOKEN);
      return;
    }
    podcid = &odcid;
  } else if (retry_needed(ep)) {
    send_retry(ep, &hd, local, from);
    return;
  }
  c = qpeer__conn_new(ep, 1);
  if (!c)
    return;
  r = qpeer__conn_server_init(c, &hd, path, podcid, NULL, 0);
  if (r != 0) {
    qpeer__log(QPEER_LOG_WARN, "cannot create server connection: %s",
               qpeer_strerror(r));
    qpeer__conn_schedule_free(c);
    return;
  }
  if (qpeer__conn_read(c, path, data, len) == 0) {
    qpeer__ep_mark_dirty(ep, c);
    return;
  }
  /* The first packet did not even decrypt: keep no state for it. */
  if (!c->rx_ok) {
    ep->stats.rx_garbage++;
    c->closed = 1;
    qpeer__conn_schedule_free(c);
  } else {
    qpeer__ep_mark_dirty(ep, c);
  }
}

static void maybe_stateless_reset(qpeer__ep *ep, const uint8_t *data,
                                  size_t len, const struct sockaddr *local,
                                  const struct sockaddr *from) {
  uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[64], buf[64];
  ngtcp2_cid cid;
  uint64_t now = qpeer__now();
  size_t reslen, randlen;
  ngtcp2_ssize n;
  /* Only in answer to something that looks like a short header with one of
   * our CID lengths, never larger than what came in, and rate-limited so
   * that resets cannot be used to amplify or loop. */
  if (!(data[0] & 0x40) || len < 1 + QPEER__SCID_LEN + 22)
    return;
  if (now - ep->reset_tokens_ts >= NGTCP2_SECONDS) {
    ep->reset_tokens = RESET_RATE;
    ep->reset_tokens_ts = now;
  }
  if (ep->reset_tokens == 0)
    return;
  ep->reset_tokens--;
  ngtcp2_cid_init(&cid, data + 1, QPEER__SCID_LEN);
  if (ngtcp2_crypto_generate_stateless_reset_token(
          token, ep->static_secret, sizeof(ep->static_secret), &cid) != 0)
    return;
  reslen = QPEER__MIN(len - 1, 41);
  randlen = reslen - 1 - NGTCP2_STATELESS_RESET_TOKENLEN;
  if (qpeer__rand(rnd, randlen) != 0)
    return;
  n = ngtcp2_pkt_write_stateless_reset(buf, sizeof(buf), token, rnd, randlen);
  if (n > 0) {
    send_raw_to(ep, local, from, buf, (size_t)n);
    ep->stats.tx_stateless_reset++;
  }
}

static void route_quic(qpeer__ep *ep, const uint8_t *data, size_t len,
                       const ngtcp2_path *path, int long_header) {
  const struct sockaddr *from = (const struct sockaddr *)path->remote.addr;
  const struct sockaddr *local = (const struct sockaddr *)path->local.addr;
  ngtcp2_version_cid vc;
  qpeer__conn *c;
  int r;

  r = ngtcp2_pkt_decode_version_cid(&vc, data, len, QPEER__SCID_LEN);
  if (r == NGTCP2_ERR_VERSION_NEGOTIATION) {
    if (ep->listening && !ep->closing)
      send_version_negotiation(ep, &vc, local, from);
    return;
  }
  if (r != 0) {
    if (long_header)
      ep->stats.rx_garbage++;
    else
      to_raw(ep, data, len, from, (const struct sockaddr *)path->local.addr);
    return;
  }
  c = qpeer__cidmap_find(&ep->cids, vc.dcid, vc.dcidlen);
  if (c) {
    ep->stats.rx_quic++;
    if (c->freeing)
      return;
    if (qpeer__conn_read(c, path, data, len) == 0 || c->closed)
      qpeer__ep_mark_dirty(ep, c);
    return;
  }
  if (!long_header) {
    if (!to_raw(ep, data, len, from,
                (const struct sockaddr *)path->local.addr))
      maybe_stateless_reset(ep, data, len, local, from);
    return;
  }
  if (ep->listening && !ep->closing &&
      (data[0] & 0x30) == 0 /* Initial (v1) */) {
    ep->stats.rx_quic++;
    accept_initial(ep, data, len, path);
    return;
  }
  ep->stats.rx_garbage++;
}

/* qpeer__ep_input handles one datagram that arrived on |local| (the socket
 * address, or a virtual interface's synthetic address) from |from|. */
static void ep_input(qpeer__ep *ep, const struct sockaddr *local,
                     const uint8_t *data, size_t len,
                     const struct sockaddr *from) {
  ngtcp2_path path;
  path.local.addr = (ngtcp2_sockaddr *)local;
  path.local.addrlen = qpeer__addr_len(local);
  path.remote.addr = (ngtcp2_sockaddr *)from;
  path.remote.addrlen = qpeer__addr_len(from);
  path.user_data = NULL;
  switch (qpeer__demux_classify(data, len, QPEER__SCID_LEN)) {
  case QPEER__PKT_STUN:
    ep->stats.rx_stun++;
    if (run_handlers(&ep->stun_handlers, data, len, from, local))
      return;
    if (ep->stun_hook)
      ep->stun_hook(ep->handle, data, len, from);
    return;
  case QPEER__PKT_QUIC_LONG:
    route_quic(ep, data, len, &path, 1);
    return;
  case QPEER__PKT_QUIC_SHORT:
    route_quic(ep, data, len, &path, 0);
    return;
  case QPEER__PKT_EMPTY:
  case QPEER__PKT_SHORT:
  default:
    to_raw(ep, data, len, from, local);
    return;
  }
}

void qpeer__ep_vif_input(qpeer__ep *ep, qpeer__vif *vif, const uint8_t *data,
                         size_t len, const struct sockaddr *from) {
  ep->stats.rx_datagrams++;
  ep->stats.rx_bytes += len;
  ep_input(ep, (const struct sockaddr *)&vif->local, data, len, from);
}

/* The local address a socket datagram from |from| is presented with: the
 * socket's, or a socket alias registered for that remote. */
static const struct sockaddr *socket_local_for(qpeer__ep *ep,
                                               const struct sockaddr *from) {
  qpeer__list *e;
  for (e = ep->vifs.next; e != &ep->vifs; e = e->next) {
    qpeer__vif *v = QPEER__CONTAINER_OF(e, qpeer__vif, link);
    if (v->socket_alias &&
        qpeer__addr_equal((const struct sockaddr *)&v->alias_remote, from))
      return (const struct sockaddr *)&v->local;
  }
  return (const struct sockaddr *)&ep->udp.local;
}

static void on_udp_recv(qpeer__udp *u, const uint8_t *data, size_t len,
                        const struct sockaddr *from, int truncated) {
  qpeer__ep *ep = QPEER__CONTAINER_OF(u, qpeer__ep, udp);
  ep->stats.rx_datagrams++;
  ep->stats.rx_bytes += len;
  if (!ep->in_batch) {
    ep->in_batch = 1;
    qpeer__clock_stamp();
  }
  if (truncated) {
    ep->stats.rx_garbage++;
    return;
  }
  ep_input(ep,
           qpeer__list_empty(&ep->vifs)
               ? (const struct sockaddr *)&u->local
               : socket_local_for(ep, from),
           data, len, from);
}

/* ---- listening and accepting -------------------------------------------- */

int qpeer_endpoint_listen_versioned(qpeer_endpoint_t *h, int version,
                                    const qpeer_listen_options_t *o,
                                    qpeer_connection_cb cb) {
  qpeer__ep *ep;
  size_t i;
  if (!h || !(ep = ep_of(h)) || !o || !cb || version < 1 ||
      version > QPEER_LISTEN_OPTIONS_VERSION || o->nalpn == 0 || !o->alpn ||
      (o->nallow && !o->allow))
    return UV_EINVAL;
  if (ep->closing)
    return UV_EBUSY;
  if (ep->listening)
    return UV_EALREADY;
  for (i = 0; i < o->nalpn; i++)
    if (!o->alpn[i] || !*o->alpn[i] || strlen(o->alpn[i]) > 255)
      return UV_EINVAL;
  ep->alpn = qpeer__calloc(o->nalpn, sizeof(*ep->alpn));
  if (!ep->alpn)
    return UV_ENOMEM;
  ep->nalpn = o->nalpn;
  for (i = 0; i < o->nalpn; i++) {
    ep->alpn[i].data = (unsigned char *)qpeer__strdup(o->alpn[i]);
    if (!ep->alpn[i].data)
      return UV_ENOMEM; /* freed with the endpoint */
    ep->alpn[i].size = (unsigned)strlen(o->alpn[i]);
  }
  if (o->nallow) {
    ep->allow = qpeer__malloc(o->nallow * sizeof(*ep->allow));
    if (!ep->allow)
      return UV_ENOMEM;
    memcpy(ep->allow, o->allow, o->nallow * sizeof(*ep->allow));
    ep->nallow = o->nallow;
  }
  ep->lopts = *o;
  ep->lopts.alpn = NULL;
  ep->lopts.allow = NULL;
  if (ep->lopts.backlog == 0)
    ep->lopts.backlog = 128;
  ep->on_connection = cb;
  ep->listening = 1;
  return 0;
}

void qpeer__ep_unlisten(qpeer__ep *ep) {
  qpeer__list *e;
  size_t i;
  while ((e = qpeer__list_head(&ep->accept_q)) != NULL) {
    qpeer__conn *c = QPEER__CONTAINER_OF(e, qpeer__conn, accept_link);
    qpeer__list_remove(e);
    ep->naccept--;
    qpeer__conn_send_close(c);
    qpeer__conn_schedule_free(c);
  }
  for (i = 0; i < ep->nalpn; i++)
    qpeer__free(ep->alpn[i].data);
  qpeer__free(ep->alpn);
  qpeer__free(ep->allow);
  ep->alpn = NULL;
  ep->nalpn = 0;
  ep->allow = NULL;
  ep->nallow = 0;
  memset(&ep->lopts, 0, sizeof(ep->lopts));
  ep->on_connection = NULL;
  ep->listening = 0;
}

int qpeer_endpoint_accept(qpeer_endpoint_t *h, qpeer_conn_t *conn) {
  qpeer__ep *ep;
  qpeer__list *e;
  qpeer__conn *c;
  if (!h || !(ep = ep_of(h)) || !conn)
    return UV_EINVAL;
  e = qpeer__list_head(&ep->accept_q);
  if (!e)
    return UV_EAGAIN;
  c = QPEER__CONTAINER_OF(e, qpeer__conn, accept_link);
  qpeer__list_remove(e);
  ep->naccept--;
  qpeer__handle_init((qpeer_handle_t *)conn, ep->loop, QPEER_CONN);
  conn->impl = c;
  c->handle = conn;
  /* Streams may have arrived before the accept. */
  if (!qpeer__list_empty(&c->stream_accept_q))
    c->events |= QPEER__EV_STREAMS;
  if (c->closed)
    c->events |= QPEER__EV_CLOSED;
  if (c->events)
    qpeer__conn_schedule_flush(c);
  return 0;
}

int qpeer_endpoint_set_stun_hook(qpeer_endpoint_t *h, qpeer_packet_hook hook) {
  qpeer__ep *ep;
  if (!h || !(ep = ep_of(h)))
    return UV_EINVAL;
  ep->stun_hook = hook;
  return 0;
}

int qpeer_endpoint_set_raw_hook(qpeer_endpoint_t *h, qpeer_packet_hook hook) {
  qpeer__ep *ep;
  if (!h || !(ep = ep_of(h)))
    return UV_EINVAL;
  ep->raw_hook = hook;
  return 0;
}

int qpeer_endpoint_get_local_addr(const qpeer_endpoint_t *h,
                                  struct sockaddr_storage *addr) {
  qpeer__ep *ep;
  if (!h || !(ep = ep_of(h)) || !addr)
    return UV_EINVAL;
  memcpy(addr, &ep->udp.local, sizeof(*addr));
  return 0;
}

qpeer_identity_t *qpeer_endpoint_get_identity(const qpeer_endpoint_t *h) {
  qpeer__ep *ep;
  if (!h || !(ep = ep_of(h)))
    return NULL;
  return ep->identity;
}

int qpeer_endpoint_get_stats(const qpeer_endpoint_t *h,
                             qpeer_endpoint_stats_t *stats) {
  qpeer__ep *ep;
  if (!h || !(ep = ep_of(h)) || !stats)
    return UV_EINVAL;
  *stats = ep->stats;
  stats->tx_syscalls = ep->udp.syscalls;
  return 0;
}

/* ---- closing -------------------------------------------------------------- */

void qpeer__ep_conn_gone(qpeer__ep *ep, qpeer__conn *c) {
  qpeer__list_remove(&c->link);
  ep->nconns--;
  if (ep->closing && ep->nconns == 0)
    qpeer__defer_push(ep, &ep->close_task);
}

static void part_closed(qpeer__ep *ep) {
  qpeer_endpoint_t *handle = ep->handle;
  if (--ep->pending_closes > 0)
    return;
  ep_free(ep);
  handle->impl = NULL;
  handle->flags |= QPEER__HANDLE_CLOSED;
  if (handle->close_cb)
    handle->close_cb((qpeer_handle_t *)handle);
}

static void on_idle_closed(uv_handle_t *h) { part_closed(h->data); }

static void on_udp_closed(uv_handle_t *h) {
  qpeer__udp *u = h->data;
  part_closed(QPEER__CONTAINER_OF(u, qpeer__ep, udp));
}

static void finish_close(qpeer__defer *d) {
  qpeer__ep *ep = QPEER__CONTAINER_OF(d, qpeer__ep, close_task);
  if (ep->nconns > 0)
    return; /* The last connection re-queues this task. */
  ep->pending_closes = 2;
  ep->idle_closing = 1;
  ep->defer_idle.data = ep;
  qpeer__udp_close(&ep->udp, on_udp_closed);
  uv_close((uv_handle_t *)&ep->defer_idle, on_idle_closed);
}

int qpeer__endpoint_close(qpeer_endpoint_t *h) {
  qpeer__ep *ep = ep_of(h);
  qpeer__list *e, *next;
  ep->closing = 1;
  ep->listening = 0;
  post_batch_to_defer(ep);
  for (e = ep->conns.next; e != &ep->conns; e = next) {
    qpeer__conn *c = QPEER__CONTAINER_OF(e, qpeer__conn, link);
    next = e->next;
    if (c->handle && !c->handle_closing)
      qpeer_close((qpeer_handle_t *)c->handle, NULL);
    else if (!c->handle && !c->freeing) {
      qpeer__conn_send_close(c);
      qpeer__conn_schedule_free(c);
    }
  }
  qpeer__defer_push(ep, &ep->close_task);
  return 0;
}
