/* SPDX-License-Identifier: MIT */
/*
 * The STUN agent (see stun.h): qpeer_stun_t Binding transactions on the
 * endpoint's socket, the opt-in responder, and watches. In order: the
 * agent's life cycle, transactions (send, retransmit, match, complete),
 * the responder, watches, and the public functions.
 *
 * Completions are delivered by deliver(): from the receive path (a
 * response arrived), from the agent's timer (timeouts, and cancellations,
 * which arm the timer at 0 so that they never run inside the
 * qpeer_stun_cancel() call), or from the check handle when the endpoint
 * closes. The endpoint's defer queue is not used on purpose: once the
 * endpoint has begun its final close, its idle handle is closing and must
 * not be started again.
 */
#include <string.h>

#include "core/addr.h"
#include "qpeer/stun.h"
#include "nat/ratelimit.h"
#include "nat/stun.h"
#include "nat/stun_rto.h"

#define MAX_REQ_LEN 64  /* our requests: 20 + CHANGE-REQUEST + FINGERPRINT */
#define MAX_RESP_LEN 160 /* responder output before the amplification cap */
#define NS_PER_MS 1000000ull

typedef struct agent {
  qpeer__pkt_handler handler; /* in ep->stun_handlers while alive */
  qpeer__ep *ep;              /* the endpoint */
  uv_timer_t timer;           /* retransmissions, deadlines, deliveries */
  uv_check_t check;           /* notices the endpoint closing */
  qpeer__list pending;        /* transactions in flight (tx.link) */
  qpeer__list done;           /* completed, callback not yet run */
  qpeer__list watches;        /* armed watches */
  int delivering;             /* inside deliver() */
  int dead;                   /* torn down; handles are closing */
  int nclosing;               /* handle closes outstanding */
  /* responder */
  int responder_on;                     /* answering requests */
  qpeer_stun_responder_options_t ropts; /* its options */
  qpeer__ratelimit rl;                  /* per-source buckets */
  qpeer__bucket global;                 /* all sources together */
  qpeer_stun_responder_stats_t rstats;  /* counters */
  uint64_t evictions_before;            /* from earlier tables */
} agent;

typedef struct tx {
  qpeer__list link;                   /* in ag->pending or ag->done */
  agent *ag;                          /* owning agent */
  qpeer_stun_t *req;                  /* the user's request */
  qpeer__stun_rto rto;                /* retransmission schedule */
  uint64_t wake;                      /* next time the schedule needs us */
  uint64_t last_send;                 /* time of the latest transmission */
  uint8_t txid[QPEER__STUN_TXID_LEN]; /* transaction ID */
  uint8_t pkt[MAX_REQ_LEN];           /* the request bytes */
  size_t pktlen;                      /* their length */
  struct sockaddr_storage server;     /* normalised server address */
  struct sockaddr_storage local;      /* local (vif) address, if any */
  int has_local;                      /* local is set */
  uint32_t change;                    /* CHANGE-REQUEST flags */
  int sent_ok;                        /* some transmission left the socket */
  int last_err;                       /* last transmission error */
  int done;                           /* completed (in ag->done) */
  int status;                         /* completion status */
} tx;

static int on_stun(qpeer__pkt_handler *h, const uint8_t *data, size_t len,
                   const struct sockaddr *from, const struct sockaddr *local);
static void on_timer(uv_timer_t *t);
static void on_check(uv_check_t *c);

/* ---- life cycle ---------------------------------------------------------- */

static agent *agent_find(qpeer__ep *ep) {
  qpeer__list *e;
  for (e = ep->stun_handlers.next; e != &ep->stun_handlers; e = e->next) {
    qpeer__pkt_handler *h = QPEER__CONTAINER_OF(e, qpeer__pkt_handler, link);
    if (h->fn == on_stun)
      return h->ctx;
  }
  return NULL;
}

static agent *agent_get(qpeer__ep *ep) {
  agent *ag = agent_find(ep);
  if (ag)
    return ag;
  ag = qpeer__calloc(1, sizeof(*ag));
  if (!ag)
    return NULL;
  ag->ep = ep;
  qpeer__list_init(&ag->pending);
  qpeer__list_init(&ag->done);
  qpeer__list_init(&ag->watches);
  /* Neither init can fail on Unix for a valid loop. */
  uv_timer_init(ep->loop, &ag->timer);
  uv_check_init(ep->loop, &ag->check);
  ag->timer.data = ag;
  ag->check.data = ag;
  uv_check_start(&ag->check, on_check);
  uv_unref((uv_handle_t *)&ag->check);
  qpeer__list_init(&ag->handler.link);
  ag->handler.fn = on_stun;
  ag->handler.ctx = ag;
  qpeer__ep_add_handler(&ep->stun_handlers, &ag->handler);
  return ag;
}

static void on_agent_handle_closed(uv_handle_t *h) {
  agent *ag = h->data;
  if (--ag->nclosing > 0)
    return;
  qpeer__ratelimit_free(&ag->rl);
  qpeer__free(ag);
}

/* ms_until is the uv timer timeout that fires at hrtime |when|: rounded
 * up, plus how far the loop's cached time lags behind (a timer counts from
 * uv_now(), which was last updated at the start of the iteration). */
static uint64_t ms_until(uv_loop_t *loop, uint64_t when, uint64_t now) {
  uint64_t ms, now_ms = now / NS_PER_MS, loop_ms = uv_now(loop);
  if (when <= now)
    return 0;
  ms = (when - now + NS_PER_MS - 1) / NS_PER_MS;
  if (now_ms > loop_ms)
    ms += now_ms - loop_ms;
  return ms;
}

/* rearm sets the timer for the earliest thing the agent must do. */
static void rearm(agent *ag) {
  qpeer__list *e;
  uint64_t wake = UINT64_MAX, now;
  if (ag->dead)
    return;
  if (!qpeer__list_empty(&ag->done)) {
    uv_timer_start(&ag->timer, on_timer, 0, 0);
    return;
  }
  for (e = ag->pending.next; e != &ag->pending; e = e->next) {
    tx *t = QPEER__CONTAINER_OF(e, tx, link);
    if (t->wake < wake)
      wake = t->wake;
  }
  if (wake == UINT64_MAX) {
    uv_timer_stop(&ag->timer);
    return;
  }
  now = qpeer__now();
  uv_timer_start(&ag->timer, on_timer, ms_until(ag->ep->loop, wake, now),
                 0);
}

static void finish(tx *t, int status) {
  qpeer__list_remove(&t->link);
  t->done = 1;
  t->status = status;
  qpeer__list_insert_tail(&t->ag->done, &t->link);
}

/* deliver runs the callbacks of completed transactions. A callback may
 * start, cancel or complete others; they join the same loop. */
static void deliver(agent *ag) {
  qpeer__list *e;
  if (ag->delivering)
    return;
  ag->delivering = 1;
  while ((e = qpeer__list_head(&ag->done)) != NULL) {
    tx *t = QPEER__CONTAINER_OF(e, tx, link);
    qpeer_stun_t *req = t->req;
    int status = t->status;
    qpeer__list_remove(e);
    req->transmissions = t->rto.sent;
    req->impl = NULL;
    qpeer__free(t);
    req->cb(req, status);
  }
  ag->delivering = 0;
}

/* teardown runs when the endpoint is closing: everything pending ends with
 * UV_ECANCELED, watches are stopped, the agent leaves the endpoint and
 * frees itself once its handles are closed. */
static void teardown(agent *ag) {
  qpeer__list *e;
  qpeer__list cancelled;
  ag->dead = 1;
  qpeer__ep_remove_handler(&ag->handler);
  while ((e = qpeer__list_head(&ag->pending)) != NULL)
    finish(QPEER__CONTAINER_OF(e, tx, link), UV_ECANCELED);
  qpeer__list_init(&cancelled);
  while ((e = qpeer__list_head(&ag->watches)) != NULL) {
    qpeer__list_remove(e);
    QPEER__CONTAINER_OF(e, qpeer__stun_watch, link)->agent = NULL;
    qpeer__list_insert_tail(&cancelled, e);
  }
  uv_timer_stop(&ag->timer);
  deliver(ag);
  while ((e = qpeer__list_head(&cancelled)) != NULL) {
    qpeer__stun_watch *w = QPEER__CONTAINER_OF(e, qpeer__stun_watch, link);
    qpeer__list_remove(e);
    if (w->on_cancel)
      w->on_cancel(w);
  }
  /* Requests started from the callbacks above were refused (closing). */
  ag->nclosing = 2;
  uv_close((uv_handle_t *)&ag->timer, on_agent_handle_closed);
  uv_close((uv_handle_t *)&ag->check, on_agent_handle_closed);
}

/* The check phase runs after the endpoint may have been told to close and
 * before the loop's closing phase, in which the endpoint's memory is
 * released: the one safe place to notice. */
static void on_check(uv_check_t *c) {
  agent *ag = c->data;
  if (!ag->dead && ag->ep->closing)
    teardown(ag);
}

/* ---- transactions -------------------------------------------------------- */

int qpeer__stun_new_txid(uint8_t txid[QPEER__STUN_TXID_LEN]) {
  return qpeer__rand(txid, QPEER__STUN_TXID_LEN);
}

static int transmit(tx *t, uint64_t now) {
  int r = qpeer__ep_send_datagram(
      t->ag->ep, t->has_local ? (const struct sockaddr *)&t->local : NULL,
      t->pkt, t->pktlen, (const struct sockaddr *)&t->server);
  t->last_send = now;
  if (r == 0)
    t->sent_ok = 1;
  else
    t->last_err = r;
  return r;
}

/* drive advances one transaction's schedule to |now|. */
static void drive(tx *t, uint64_t now) {
  uint64_t wake = UINT64_MAX;
  switch (qpeer__stun_rto_poll(&t->rto, now, &wake)) {
  case QPEER__STUN_RTO_FAIL:
    /* A socket that refused every transmission says more than a timeout. */
    finish(t, t->sent_ok || t->last_err == 0 || t->last_err == UV_EAGAIN
                  ? UV_ETIMEDOUT
                  : t->last_err);
    return;
  case QPEER__STUN_RTO_SEND:
    transmit(t, now);
    break;
  default:
    break;
  }
  t->wake = wake;
}

static void on_timer(uv_timer_t *timer) {
  agent *ag = timer->data;
  qpeer__list *e, *next;
  uint64_t now = qpeer__now();
  for (e = ag->pending.next; e != &ag->pending; e = next) {
    tx *t = QPEER__CONTAINER_OF(e, tx, link);
    next = e->next;
    if (t->wake <= now)
      drive(t, now);
  }
  deliver(ag);
  rearm(ag);
}

static void copy_or_unspec(struct sockaddr_storage *dst, int present,
                           const struct sockaddr_storage *src) {
  if (present)
    qpeer__addr_normalize(dst, (const struct sockaddr *)src);
  else
    memset(dst, 0, sizeof(*dst));
}

/* on_response matches a success or error response to a pending
 * transaction. Returns 1 if it was ours (used or dropped), 0 if not. */
static int on_response(agent *ag, const uint8_t *data, size_t len,
                       const struct sockaddr *from) {
  qpeer__list *e;
  qpeer__stun_msg m;
  qpeer_stun_t *req;
  tx *t = NULL;
  uint64_t now;
  int status;
  for (e = ag->pending.next; e != &ag->pending; e = e->next) {
    tx *x = QPEER__CONTAINER_OF(e, tx, link);
    if (!memcmp(x->txid, data + 8, QPEER__STUN_TXID_LEN)) {
      t = x;
      break;
    }
  }
  if (!t)
    return 0;
  /* Ours by transaction ID; anything wrong with it is dropped like a lost
   * packet, and the retransmissions go on. */
  if (qpeer__stun_decode(&m, data, len) != 0)
    return 1;
  if (qpeer__stun_type_method(m.type) != QPEER__STUN_METHOD_BINDING)
    return 1;
  if (!t->change && !qpeer__addr_equal(from, (struct sockaddr *)&t->server))
    return 1;
  now = qpeer__now();
  req = t->req;
  qpeer__addr_normalize(&req->response_source, from);
  copy_or_unspec(&req->response_origin, m.has_response_origin,
                 &m.response_origin);
  copy_or_unspec(&req->other_address, m.has_other_address, &m.other_address);
  req->rtt_us = (now - t->last_send) / 1000;
  req->result_flags = 0;
  if (m.has_fingerprint)
    req->result_flags |= QPEER_STUN_HAS_FINGERPRINT;
  if (m.has_response_origin)
    req->result_flags |= QPEER_STUN_HAS_RESPONSE_ORIGIN;
  if (m.has_other_address)
    req->result_flags |= QPEER_STUN_HAS_OTHER_ADDRESS;
  if (qpeer__stun_type_class(m.type) == QPEER__STUN_CLASS_ERROR) {
    req->error_code = m.has_error ? m.error_code : 0;
    status = QPEER_ESTUN;
  } else if (m.has_xor_mapped) {
    req->result_flags |= QPEER_STUN_HAS_XOR_MAPPED;
    qpeer__addr_normalize(&req->mapped, (struct sockaddr *)&m.xor_mapped);
    status = 0;
  } else if (m.has_mapped) {
    req->result_flags |= QPEER_STUN_HAS_MAPPED;
    qpeer__addr_normalize(&req->mapped, (struct sockaddr *)&m.mapped);
    status = 0;
  } else {
    status = QPEER_EMALFORMED;
  }
  QPEER__LOG_DEBUG("stun: response for transaction after %u transmissions, "
                   "status %d",
                   t->rto.sent, status);
  finish(t, status);
  deliver(ag);
  rearm(ag);
  return 1;
}

/* ---- responder ----------------------------------------------------------- */

static void responder_defaults(qpeer_stun_responder_options_t *o) {
  memset(o, 0, sizeof(*o));
  o->rate = 10;
  o->burst = 20;
  o->global_rate = 1000;
  o->global_burst = 2000;
  o->max_sources = 4096;
}

static void add_unknown(qpeer__stun_msg *m, uint16_t type) {
  size_t i;
  for (i = 0; i < m->unknown_count && i < QPEER__STUN_MAX_UNKNOWN; i++)
    if (m->unknown[i] == type)
      return;
  if (m->unknown_count < QPEER__STUN_MAX_UNKNOWN)
    m->unknown[m->unknown_count] = type;
  m->unknown_count++;
}

/* source_key is the rate-limit key of |from|: the IPv4 address, or the
 * first 64 bits of an IPv6 address (one subscriber's prefix). */
static size_t source_key(const struct sockaddr *from, uint8_t *key) {
  if (from->sa_family == AF_INET) {
    memcpy(key, &((const struct sockaddr_in *)(const void *)from)->sin_addr,
           4);
    return 4;
  }
  memcpy(key,
         ((const struct sockaddr_in6 *)(const void *)from)->sin6_addr.s6_addr,
         8);
  return 8;
}

static int respond(agent *ag, const uint8_t *data, size_t len,
                   const struct sockaddr *from, const struct sockaddr *local) {
  qpeer_stun_responder_stats_t *st = &ag->rstats;
  qpeer__stun_msg m;
  uint8_t buf[MAX_RESP_LEN], key[QPEER__RL_KEY_MAX];
  size_t keylen, limit;
  uint64_t now;
  int n, r, fp = !ag->ropts.no_fingerprint, is_error = 0;
  r = qpeer__stun_decode(&m, data, len);
  if (r == 0 && (m.has_username || m.has_integrity))
    return 0; /* an ICE connectivity check: not for us */
  st->requests++;
  if (r != 0) {
    st->dropped_malformed++;
    return 1;
  }
  if (from->sa_family != AF_INET && from->sa_family != AF_INET6) {
    st->dropped_malformed++;
    return 1;
  }
  now = qpeer__now();
  keylen = source_key(from, key);
  if (!qpeer__ratelimit_take(&ag->rl, key, keylen, now) ||
      !qpeer__bucket_take(&ag->global, now)) {
    st->dropped_rate++;
    return 1;
  }
  if (m.has_change_request && m.change_flags)
    add_unknown(&m, QPEER__STUN_ATTR_CHANGE_REQUEST);
  if (m.has_response_port)
    add_unknown(&m, QPEER__STUN_ATTR_RESPONSE_PORT);
  if (m.has_padding)
    add_unknown(&m, QPEER__STUN_ATTR_PADDING);
  if (m.unknown_count > 0) {
    is_error = 1;
    n = qpeer__stun_build_error_response(buf, sizeof(buf), &m, 420,
                                         "Unknown Attribute", fp);
  } else {
    n = qpeer__stun_build_binding_response(buf, sizeof(buf), m.txid, from,
                                           NULL, NULL, fp);
  }
  limit = QPEER__MIN(len * QPEER_STUN_RESPONDER_MAX_FACTOR,
                     len + QPEER_STUN_RESPONDER_MAX_EXTRA);
  if (n < 0 || (size_t)n > limit) {
    st->dropped_size++;
    return 1;
  }
  if (qpeer__ep_send_datagram(ag->ep, local, buf, (size_t)n, from) != 0) {
    st->dropped_send++;
    return 1;
  }
  if (is_error)
    st->errors++;
  else
    st->answered++;
  return 1;
}

/* ---- dispatch ------------------------------------------------------------ */

static int on_watch(agent *ag, const uint8_t *data,
                    const struct sockaddr *from) {
  qpeer__list *e;
  for (e = ag->watches.next; e != &ag->watches; e = e->next) {
    qpeer__stun_watch *w = QPEER__CONTAINER_OF(e, qpeer__stun_watch, link);
    if (!memcmp(w->txid, data + 8, QPEER__STUN_TXID_LEN)) {
      w->hits++;
      qpeer__addr_normalize(&w->from, from);
      return 1;
    }
  }
  return 0;
}

static int on_stun(qpeer__pkt_handler *h, const uint8_t *data, size_t len,
                   const struct sockaddr *from, const struct sockaddr *local) {
  agent *ag = h->ctx;
  uint16_t type;
  if (ag->dead || len < QPEER__STUN_HEADER_LEN)
    return 0;
  type = (uint16_t)(data[0] << 8 | data[1]);
  switch (qpeer__stun_type_class(type)) {
  case QPEER__STUN_CLASS_SUCCESS:
  case QPEER__STUN_CLASS_ERROR:
    return on_response(ag, data, len, from);
  case QPEER__STUN_CLASS_REQUEST:
    if (qpeer__stun_type_method(type) != QPEER__STUN_METHOD_BINDING)
      return 0;
    if (on_watch(ag, data, from))
      return 1;
    if (ag->responder_on)
      return respond(ag, data, len, from, local);
    return 0;
  default:
    return 0;
  }
}

/* ---- watches ------------------------------------------------------------- */

int qpeer__stun_watch_start(qpeer__ep *ep, qpeer__stun_watch *w) {
  agent *ag;
  if (ep->closing)
    return UV_EBUSY;
  if (!(ag = agent_get(ep)))
    return UV_ENOMEM;
  qpeer__stun_watch_stop(w);
  w->hits = 0;
  w->agent = ag;
  qpeer__list_insert_tail(&ag->watches, &w->link);
  return 0;
}

void qpeer__stun_watch_stop(qpeer__stun_watch *w) {
  if (!w->agent)
    return;
  qpeer__list_remove(&w->link);
  w->agent = NULL;
}

/* ---- public -------------------------------------------------------------- */

void qpeer_stun_options_default_versioned(int version,
                                          qpeer_stun_options_t *o) {
  (void)version;
  memset(o, 0, sizeof(*o));
  o->rto_ms = QPEER__STUN_RTO_DEFAULT_MS;
  o->max_transmissions = QPEER__STUN_RC_DEFAULT;
  o->last_wait_rtos = QPEER__STUN_RM_DEFAULT;
}

/* family_ok says whether |ep|'s socket can send to |server|. */
static int family_ok(const qpeer__ep *ep, const struct sockaddr *server) {
  if (server->sa_family == AF_INET6)
    return ep->udp.family == AF_INET6;
  if (server->sa_family == AF_INET)
    return ep->udp.family == AF_INET || ep->udp.v4mapped;
  return 0;
}

int qpeer_stun_send_versioned(qpeer_stun_t *req, qpeer_endpoint_t *ep,
                              const struct sockaddr *server, int version,
                              const qpeer_stun_options_t *opts,
                              qpeer_stun_cb cb) {
  qpeer_stun_options_t o;
  qpeer__ep *qep;
  agent *ag;
  tx *t;
  uint64_t now, wake = UINT64_MAX;
  int r, n;
  (void)version;
  if (!req || !ep || !server || !cb || !(qep = qpeer__ep_of(ep)))
    return UV_EINVAL;
  if (opts)
    o = *opts;
  else
    qpeer_stun_options_default(&o);
  if (o.change_request & ~(uint32_t)(QPEER_STUN_CHANGE_IP |
                                     QPEER_STUN_CHANGE_PORT))
    return UV_EINVAL;
  if (o.rto_ms > QPEER__STUN_RTO_MAX_MS ||
      o.max_transmissions > QPEER__STUN_RC_MAX ||
      o.last_wait_rtos > QPEER__STUN_RM_MAX)
    return UV_EINVAL;
  if (server->sa_family != AF_INET && server->sa_family != AF_INET6)
    return UV_EAFNOSUPPORT;
  if (qpeer__addr_port(server) == 0)
    return UV_EINVAL;
  if (qep->closing)
    return UV_EBUSY;
  if (!o.local && !family_ok(qep, server))
    return UV_EAFNOSUPPORT;
  if (!(ag = agent_get(qep)))
    return UV_ENOMEM;
  if (!(t = qpeer__calloc(1, sizeof(*t))))
    return UV_ENOMEM;
  t->ag = ag;
  t->req = req;
  t->change = o.change_request;
  qpeer__addr_normalize(&t->server, server);
  if (o.local) {
    memcpy(&t->local, o.local, qpeer__addr_len(o.local));
    t->has_local = 1;
  }
  if ((r = qpeer__stun_new_txid(t->txid)) != 0) {
    qpeer__free(t);
    return r;
  }
  n = qpeer__stun_build_binding_request(t->pkt, sizeof(t->pkt), t->txid,
                                        t->change, !o.no_fingerprint);
  if (n < 0) {
    qpeer__free(t);
    return n;
  }
  t->pktlen = (size_t)n;

  req->type = QPEER_STUN;
  req->handle = ep;
  req->server = t->server;
  memset(&req->mapped, 0, sizeof(req->mapped));
  memset(&req->response_source, 0, sizeof(req->response_source));
  memset(&req->response_origin, 0, sizeof(req->response_origin));
  memset(&req->other_address, 0, sizeof(req->other_address));
  req->rtt_us = 0;
  req->transmissions = 0;
  req->result_flags = 0;
  req->error_code = 0;
  req->cb = cb;

  now = qpeer__now();
  qpeer__stun_rto_init(&t->rto, now, o.rto_ms, o.max_transmissions,
                       o.last_wait_rtos, o.timeout_ms);
  qpeer__stun_rto_poll(&t->rto, now, &wake);
  r = transmit(t, now);
  if (r != 0 && r != UV_EAGAIN && r != UV_ENOBUFS) {
    qpeer__free(t);
    return r;
  }
  t->wake = wake;
  req->impl = t;
  qpeer__list_insert_tail(&ag->pending, &t->link);
  rearm(ag);
  return 0;
}

int qpeer_stun_cancel(qpeer_stun_t *req) {
  tx *t;
  if (!req || req->type != QPEER_STUN || !(t = req->impl) || t->done)
    return UV_EINVAL;
  finish(t, UV_ECANCELED);
  rearm(t->ag);
  return 0;
}

void qpeer_stun_responder_options_default_versioned(
    int version, qpeer_stun_responder_options_t *o) {
  (void)version;
  responder_defaults(o);
}

int qpeer_endpoint_set_stun_responder_versioned(
    qpeer_endpoint_t *ep, int enabled, int version,
    const qpeer_stun_responder_options_t *opts) {
  qpeer_stun_responder_options_t o;
  qpeer__ep *qep;
  agent *ag;
  uint64_t seed;
  int r;
  (void)version;
  if (!ep || !(qep = qpeer__ep_of(ep)))
    return UV_EINVAL;
  if (qep->closing)
    return UV_EBUSY;
  if (!enabled) {
    if ((ag = agent_find(qep)) != NULL && ag->responder_on) {
      ag->responder_on = 0;
      ag->evictions_before += ag->rl.evictions;
      qpeer__ratelimit_free(&ag->rl);
    }
    return 0;
  }
  responder_defaults(&o);
  if (opts) {
    o = *opts;
    if (o.rate == 0 || o.burst == 0 || o.global_rate == 0 ||
        o.global_burst == 0 || o.max_sources == 0 ||
        o.max_sources > (1u << 20))
      return UV_EINVAL;
  }
  if (!(ag = agent_get(qep)))
    return UV_ENOMEM;
  if ((r = qpeer__rand(&seed, sizeof(seed))) != 0)
    return r;
  if (ag->responder_on) {
    ag->evictions_before += ag->rl.evictions;
    qpeer__ratelimit_free(&ag->rl);
    ag->responder_on = 0;
  }
  if ((r = qpeer__ratelimit_init(&ag->rl, o.max_sources, o.rate, o.burst,
                                 seed)) != 0)
    return r;
  qpeer__bucket_init(&ag->global, o.global_rate, o.global_burst,
                     qpeer__now());
  ag->ropts = o;
  ag->responder_on = 1;
  return 0;
}

int qpeer_endpoint_get_stun_responder_stats(
    qpeer_endpoint_t *ep, qpeer_stun_responder_stats_t *stats) {
  qpeer__ep *qep;
  agent *ag;
  if (!ep || !stats || !(qep = qpeer__ep_of(ep)))
    return UV_EINVAL;
  memset(stats, 0, sizeof(*stats));
  if ((ag = agent_find(qep)) == NULL)
    return 0;
  *stats = ag->rstats;
  stats->evictions = ag->evictions_before + ag->rl.evictions;
  return 0;
}
