/* SPDX-License-Identifier: MIT */
/*
 * NAT traversal inside a connection (see include/qpeer/punch.h). Server:
 * advertises candidates and answers PUNCH_ME_NOW with raw probes from its
 * socket (punch responder). Client: pairs candidates, follows the punch
 * scheduler's actions (PUNCH_ME_NOW, probes, one validation at a time via
 * qpeer_conn_migrate) and completes the request. One uv_timer drives the
 * scheduler's waits; raw probes are recognised by a session token.
 */
#include <string.h>

#include "core/addr.h"
#include "nat/candidate.h"
#include "peer/control.h"
#include "peer/punch_sched.h"
#include "peer/traversal.h"
#include "quic/handles.h"
#include "qpeer/punch.h"

typedef struct qpeer__trav {
  qpeer__conn *c;                /* the connection */
  uv_timer_t timer;              /* wakes the scheduler / responder */
  int timer_open;                /* timer initialised */
  qpeer__pkt_handler raw;        /* receives probes (client) */
  int raw_added;                 /* raw is registered */
  uint8_t token[8];              /* probe token (TLS exporter) */
  int have_token;                /* token derived */
  unsigned flags;                /* QPEER_PUNCH_ALLOW_* */
  /* server */
  qpeer__candset adv;            /* what we advertised */
  qpeer__punch_resp resp;        /* the punch responder */
  int resp_init;                 /* resp initialised */
  /* client */
  qpeer__candset local;          /* our candidates */
  qpeer__candset remote;         /* the server's candidates */
  qpeer__punch_sched sched;      /* the scheduler */
  qpeer_punch_t *req;            /* the running request, or NULL */
  qpeer_migrate_t mreq;          /* the validation in flight */
  int mpair;                     /* its pair id, or -1 */
  int done_status;               /* result waiting for delivery */
  int done;                      /* result known */
  uint64_t started;              /* when the request started */
  /* fallback (client) */
  uv_timer_t fb_timer;           /* checks the silence budget */
  int fb_open;                   /* fb_timer initialised */
  uint64_t fb_timeout;           /* silence budget (ns); 0: off */
  qpeer_path_t fb_path;          /* the standby path */
  qpeer_fallback_cb fb_cb;       /* user notification */
  qpeer_migrate_t fb_mreq;       /* the fallback migration */
  int fb_running;                /* fb_mreq in flight */
  qpeer__defer done_task;        /* delivers the result */
} qpeer__trav;

/* How long a punch waits for the server's first candidate. */
#define QPEER__PUNCH_NO_PAIRS_NS (5ULL * 1000000000ULL)

static void drive(qpeer__trav *t);

static uint64_t now_ns(void) { return qpeer__now(); }

static unsigned sched_allow(unsigned flags) {
  unsigned a = 0;
  if (flags & QPEER_PUNCH_ALLOW_LOOPBACK)
    a |= QPEER__PUNCH_ALLOW_LOOPBACK;
  if (flags & QPEER_PUNCH_ALLOW_LINK_LOCAL)
    a |= QPEER__PUNCH_ALLOW_LINK_LOCAL;
  return a;
}

/* ---- probes ------------------------------------------------------------------ */

static int derive_token(qpeer__trav *t) {
  static const char label[] = "EXPORTER-qpeer-punch-token";
  if (t->have_token)
    return 0;
  if (gnutls_prf_rfc5705(t->c->tls, sizeof(label) - 1, label, 0, NULL,
                         sizeof(t->token), (char *)t->token) < 0)
    return QPEER_ETLS;
  t->have_token = 1;
  return 0;
}

static void send_probe(qpeer__trav *t, const struct sockaddr *to) {
  uint8_t p[QPEER__PROBE_LEN];
  memset(p, 0, sizeof(p));
  memcpy(p, QPEER__PROBE_MAGIC, 8);
  memcpy(p + 8, t->token, 8);
  p[16] = t->c->server ? 1 : 0;
  qpeer__ep_send_datagram(t->c->ep, NULL, p, sizeof(p), to);
}

static int on_raw(qpeer__pkt_handler *h, const uint8_t *data, size_t len,
                  const struct sockaddr *from, const struct sockaddr *local) {
  qpeer__trav *t = h->ctx;
  if (len != QPEER__PROBE_LEN || memcmp(data, QPEER__PROBE_MAGIC, 8) ||
      !t->have_token || memcmp(data + 8, t->token, 8))
    return 0;
  /* Our own probes never come back to us; a probe from the server
   * (flag 1) tells the client that this remote can reach it. */
  if (!t->c->server && data[16] == 1 && t->req) {
    qpeer__punch_sched_on_probe_received(&t->sched, local, from, now_ns());
    drive(t);
  }
  return 1;
}

/* ---- the timer and the action loop ------------------------------------------------ */

static void on_timer(uv_timer_t *tm) { drive(tm->data); }

static void arm(qpeer__trav *t, uint64_t at) {
  uint64_t now = now_ns();
  uint64_t ms = at > now ? (at - now + 999999) / 1000000 : 0;
  uv_timer_start(&t->timer, on_timer, ms, 0);
}

static void on_validated(qpeer_migrate_t *req, int status);

static void deliver(qpeer__defer *d) {
  qpeer__trav *t = QPEER__CONTAINER_OF(d, qpeer__trav, done_task);
  qpeer_punch_t *req = t->req;
  if (!req || !t->done)
    return;
  t->req = NULL;
  req->punch_requests = t->sched.punches_sent;
  req->probes = t->sched.probes_sent;
  req->validations = t->sched.validations;
  req->cb(req, t->done_status);
}

static void finish(qpeer__trav *t, int status) {
  if (!t->req || t->done)
    return;
  t->done = 1;
  t->done_status = status;
  if (status == 0)
    qpeer_conn_get_path(t->c->handle, &t->req->path);
  uv_timer_stop(&t->timer);
  qpeer__defer_push(t->c->ep, &t->done_task);
}

static void client_step(qpeer__trav *t) {
  qpeer__punch_action a;
  qpeer__trav_msg m;
  int rounds, r;
  ngtcp2_conn_stat cs;
  if (!t->req || t->done || t->c->closed)
    return;
  ngtcp2_conn_get_conn_stat(t->c->qc, &cs);
  if (cs.smoothed_rtt)
    qpeer__punch_sched_set_rtt(&t->sched, cs.smoothed_rtt);
  /* Bounded: the scheduler emits at most a round's worth of actions
   * before it asks to wait. */
  for (rounds = 0; rounds < 256; rounds++) {
    switch (qpeer__punch_sched_next_action(&t->sched, now_ns(), &a)) {
    case QPEER__PUNCH_SEND_PUNCH_ME_NOW:
      if (qpeer__log_enabled(QPEER_LOG_DEBUG)) {
        char la[QPEER_ADDR_STRLEN] = "?";
        qpeer_addr_format((const struct sockaddr *)&a.local, la, sizeof(la));
        qpeer__log(QPEER_LOG_DEBUG,
                   "punch: PUNCH_ME_NOW pair %d round %llu target %s", a.pair,
                   (unsigned long long)a.round, la);
      }
      memset(&m, 0, sizeof(m));
      m.kind = QPEER__TRAV_PUNCH_ME_NOW;
      m.seq = a.remote_seq;
      m.round = a.round;
      memcpy(&m.addr, &a.local, sizeof(a.local));
      qpeer__ctrl_send(t->c, &m);
      qpeer__conn_schedule_flush(t->c);
      continue;
    case QPEER__PUNCH_SEND_PROBE:
      send_probe(t, (const struct sockaddr *)&a.remote);
      continue;
    case QPEER__PUNCH_START_VALIDATION:
      if (qpeer__log_enabled(QPEER_LOG_DEBUG)) {
        char ra[QPEER_ADDR_STRLEN] = "?";
        qpeer_addr_format((const struct sockaddr *)&a.remote, ra, sizeof(ra));
        qpeer__log(QPEER_LOG_DEBUG, "punch: validating pair %d to %s", a.pair,
                   ra);
      }
      /* Direct paths leave from the socket; the scheduler's "local" is
       * the candidate base, which the socket serves. */
      /* The scheduler's validation deadline can pass while ngtcp2 still
       * probes the previous pair: the scheduler has written that pair off,
       * so replace it (ngtcp2 aborts the running validation). */
      if (t->c->migrate_req == &t->mreq) {
        t->c->migrate_req = NULL;
        t->c->migrate_done = 0;
      }
      t->mpair = a.pair;
      t->mreq.data = t;
      r = qpeer_conn_migrate(&t->mreq, t->c->handle, NULL,
                             (const struct sockaddr *)&a.remote,
                             on_validated);
      if (r == UV_EALREADY) {
        t->mpair = -1;
        qpeer__punch_sched_on_validation_result(&t->sched, a.pair, 1,
                                                now_ns());
      } else if (r != 0) {
        QPEER__LOG_DEBUG("punch: validation of pair %d not started: %s",
                         a.pair, qpeer_err_name(r));
        t->mpair = -1;
        qpeer__punch_sched_on_validation_result(&t->sched, a.pair, 0,
                                                now_ns());
      }
      continue;
    case QPEER__PUNCH_WAIT:
      arm(t, a.at);
      return;
    case QPEER__PUNCH_DONE:
      QPEER__LOG_DEBUG("punch: done, %s", a.ok ? "validated" : "failed");
      finish(t, a.ok ? 0 : QPEER_ENOPATH);
      return;
    case QPEER__PUNCH_IDLE:
    default:
      /* No pairs yet: the server's candidates may still be on their way;
       * give up after a bound. */
      if (now_ns() - t->started > QPEER__PUNCH_NO_PAIRS_NS)
        finish(t, QPEER_ENOPATH);
      else
        arm(t, now_ns() + 100 * 1000000ULL);
      return;
    }
  }
  arm(t, now_ns() + 1000000);
}

static void server_step(qpeer__trav *t) {
  qpeer__punch_action a;
  int rounds;
  if (!t->resp_init || t->c->closed)
    return;
  for (rounds = 0; rounds < 256; rounds++) {
    switch (qpeer__punch_resp_next_action(&t->resp, now_ns(), &a)) {
    case QPEER__PUNCH_SEND_PROBE:
      send_probe(t, (const struct sockaddr *)&a.remote);
      continue;
    case QPEER__PUNCH_WAIT:
      arm(t, a.at);
      return;
    default:
      return;
    }
  }
  arm(t, now_ns() + 1000000);
}

static void drive(qpeer__trav *t) {
  if (t->c->server)
    server_step(t);
  else
    client_step(t);
}

static void on_validated(qpeer_migrate_t *req, int status) {
  qpeer__trav *t = req->data;
  int pair = t->mpair;
  t->mpair = -1;
  if (pair < 0 || !t->req)
    return;
  if (status == UV_ECANCELED) {
    finish(t, UV_ECANCELED);
    return;
  }
  qpeer__punch_sched_on_validation_result(&t->sched, pair, status == 0,
                                          now_ns());
  drive(t);
}

/* ---- state ---------------------------------------------------------------------- */

/* The trav is freed once both of its timers have closed. */
static void timer_closed(uv_handle_t *h) {
  qpeer__trav *t = h->data;
  if (--t->timer_open == 0)
    qpeer__free(t);
}

static qpeer__trav *trav_get(qpeer__conn *c) {
  qpeer__trav *t = c->trav;
  if (t)
    return t;
  t = qpeer__calloc(1, sizeof(*t));
  if (!t)
    return NULL;
  t->c = c;
  t->mpair = -1;
  qpeer__candset_init(&t->adv);
  qpeer__candset_init(&t->local);
  qpeer__candset_init(&t->remote);
  qpeer__defer_init(&t->done_task, deliver);
  if (uv_timer_init(c->ep->loop, &t->timer) != 0) {
    qpeer__free(t);
    return NULL;
  }
  t->timer.data = t;
  t->timer_open = 1;
  if (uv_timer_init(c->ep->loop, &t->fb_timer) == 0) {
    t->fb_timer.data = t;
    t->timer_open++;
    t->fb_open = 1;
  }
  t->raw.fn = on_raw;
  t->raw.ctx = t;
  qpeer__ep_add_handler(&c->ep->raw_handlers, &t->raw);
  t->raw_added = 1;
  c->trav = t;
  return t;
}

void qpeer__trav_conn_ended(qpeer__conn *c) {
  qpeer__trav *t = c->trav;
  if (!t)
    return;
  if (t->resp_init)
    qpeer__punch_resp_cancel(&t->resp);
  finish(t, UV_ECANCELED);
}

void qpeer__trav_free(qpeer__conn *c) {
  qpeer__trav *t = c->trav;
  if (!t)
    return;
  c->trav = NULL;
  if (t->req) {
    qpeer_punch_t *req = t->req;
    t->req = NULL;
    req->cb(req, UV_ECANCELED);
  }
  qpeer__defer_cancel(&t->done_task);
  if (t->raw_added)
    qpeer__ep_remove_handler(&t->raw);
  uv_timer_stop(&t->timer);
  uv_close((uv_handle_t *)&t->timer, timer_closed);
  if (t->fb_open) {
    uv_timer_stop(&t->fb_timer);
    uv_close((uv_handle_t *)&t->fb_timer, timer_closed);
  }
}

/* ---- messages ------------------------------------------------------------------- */

int qpeer__trav_on_message(qpeer__conn *c, const qpeer__trav_msg *m) {
  qpeer__trav *t;
  qpeer_candidate_t cand;
  const qpeer__candset_entry *e;
  if (!(t = trav_get(c)))
    return UV_ENOMEM;
  switch (m->kind) {
  case QPEER__TRAV_ADD_ADDRESS:
    if (qpeer__cand_remote(&cand, (const struct sockaddr *)&m->addr, 0, 0))
      return 0; /* An unusable address is ignored, not fatal. */
    if (qpeer__candset_add_seq(&t->remote, &cand, m->seq, NULL) == UV_EEXIST)
      return QPEER_EPROTO;
    break;
  case QPEER__TRAV_ADDRESS_INFO:
    e = qpeer__candset_find_seq(&t->remote, m->seq);
    if (e && qpeer__cand_remote(&cand, (const struct sockaddr *)&e->cand.addr,
                                m->cand_type, m->priority) == 0) {
      qpeer__candset_remove(&t->remote, m->seq);
      qpeer__candset_add_seq(&t->remote, &cand, m->seq, NULL);
    }
    break;
  case QPEER__TRAV_REMOVE_ADDRESS:
    qpeer__candset_remove(&t->remote, m->seq);
    if (t->req)
      qpeer__punch_sched_remove_remote(&t->sched, m->seq);
    return 0;
  case QPEER__TRAV_PUNCH_ME_NOW:
    if (!t->resp_init)
      return 0; /* We advertised nothing: nothing to punch from. */
    e = qpeer__candset_find_seq(&t->adv, m->seq);
    if (!e)
      return 0;
    {
      int r = qpeer__punch_resp_on_request(
          &t->resp, m->round, (const struct sockaddr *)&e->cand.base,
          (const struct sockaddr *)&m->addr, now_ns());
      if (qpeer__log_enabled(QPEER_LOG_DEBUG)) {
        char a[QPEER_ADDR_STRLEN] = "?";
        qpeer_addr_format((const struct sockaddr *)&m->addr, a, sizeof(a));
        qpeer__log(QPEER_LOG_DEBUG, "punch: PUNCH_ME_NOW round %llu to %s: %s",
                   (unsigned long long)m->round, a,
                   r == QPEER__PUNCH_ACCEPTED ? "accepted"
                   : r == QPEER__PUNCH_IGNORED ? "ignored"
                                               : qpeer_err_name(r));
      }
      if (r == QPEER__PUNCH_ACCEPTED)
        drive(t);
    }
    return 0;
  default:
    return 0;
  }
  /* A new or updated server candidate while punching: pair it too. */
  if (t->req && !t->done) {
    qpeer__cand_pair pairs[16];
    size_t i, n = qpeer__cand_pairs_build(&t->local, &t->remote, pairs, 16);
    for (i = 0; i < n; i++)
      qpeer__punch_sched_add_pair(&t->sched, &pairs[i]);
    drive(t);
  }
  return 0;
}

/* ---- fallback ------------------------------------------------------------------- */

static void on_fallback_done(qpeer_migrate_t *req, int status) {
  qpeer__trav *t = req->data;
  t->fb_running = 0;
  if (status == UV_ECANCELED)
    return;
  if (t->fb_cb && t->c->handle && !t->c->handle_closing)
    t->fb_cb(t->c->handle, status);
}

static void on_fb_tick(uv_timer_t *tm) {
  qpeer__trav *t = tm->data;
  qpeer__conn *c = t->c;
  qpeer_path_t cur;
  int r;
  if (!t->fb_timeout || c->closed || !c->qc || t->fb_running)
    return;
  qpeer_conn_get_path(c->handle, &cur);
  if (qpeer__addr_equal((struct sockaddr *)&cur.local,
                        (struct sockaddr *)&t->fb_path.local) &&
      qpeer__addr_equal((struct sockaddr *)&cur.remote,
                        (struct sockaddr *)&t->fb_path.remote))
    return; /* Already on the standby path. */
  if (now_ns() - c->last_rx < t->fb_timeout)
    return;
  /* The current path went silent: abandon punching, go back. A running
   * validation (ours or the user's) is replaced by this one. */
  if (t->req && !t->done)
    finish(t, QPEER_ENOPATH);
  t->fb_mreq.data = t;
  if (c->migrate_req && c->migrate_req != &t->fb_mreq) {
    qpeer_migrate_t *old = c->migrate_req;
    c->migrate_req = NULL;
    old->cb(old, QPEER_ENOPATH);
  }
  /* At once, not after a validation: the standby path worked before, and
   * the peer, whose window is likely full of packets lost on the dead
   * path, can only answer once our packets move it (handles.h). */
  r = qpeer__conn_migrate_immediate(&t->fb_mreq, c->handle,
                                    (struct sockaddr *)&t->fb_path.local,
                                    (struct sockaddr *)&t->fb_path.remote,
                                    on_fallback_done);
  if (r == 0)
    t->fb_running = 1;
  else if (t->fb_cb)
    t->fb_cb(c->handle, r);
}

int qpeer_conn_set_fallback(qpeer_conn_t *conn, const struct sockaddr *local,
                            const struct sockaddr *remote,
                            uint64_t timeout_ms, qpeer_fallback_cb cb) {
  qpeer__conn *c = conn ? conn->impl : NULL;
  qpeer__trav *t;
  uint64_t tick;
  if (!c || (timeout_ms && !remote))
    return UV_EINVAL;
  if (c->server)
    return UV_ENOTSUP;
  if (c->closed || !c->qc)
    return UV_ENOTCONN;
  if (!(t = trav_get(c)) || !t->fb_open)
    return UV_ENOMEM;
  t->fb_timeout = timeout_ms * 1000000ULL;
  t->fb_cb = cb;
  if (!timeout_ms) {
    uv_timer_stop(&t->fb_timer);
    return 0;
  }
  memset(&t->fb_path, 0, sizeof(t->fb_path));
  if (local)
    qpeer__addr_normalize(&t->fb_path.local, local);
  else
    memcpy(&t->fb_path.local, &c->ep->udp.local, sizeof(t->fb_path.local));
  qpeer__addr_normalize(&t->fb_path.remote, remote);
  /* Keep-alives well inside the budget, so silence means a dead path. */
  qpeer__conn_set_keepalive(c, timeout_ms / 3 * NGTCP2_MILLISECONDS);
  tick = timeout_ms / 4 ? timeout_ms / 4 : 1;
  if (!c->last_rx)
    c->last_rx = now_ns();
  uv_timer_start(&t->fb_timer, on_fb_tick, tick, tick);
  uv_unref((uv_handle_t *)&t->fb_timer);
  return 0;
}

/* ---- public API ------------------------------------------------------------------ */

int qpeer_conn_advertise(qpeer_conn_t *conn, const qpeer_candidate_t *cands,
                         size_t n, unsigned int flags) {
  qpeer__conn *c = conn ? conn->impl : NULL;
  qpeer__trav *t;
  qpeer__candset next;
  qpeer__trav_msg m;
  size_t i;
  int r;
  if (!c || (n && !cands))
    return UV_EINVAL;
  if (!c->server || !c->ctrl)
    return UV_ENOTSUP;
  if (c->closed)
    return UV_ENOTCONN;
  if (n > QPEER__CANDSET_MAX)
    return UV_ENOSPC;
  if (!(t = trav_get(c)))
    return UV_ENOMEM;
  if ((r = derive_token(t)) != 0)
    return r;
  t->flags = flags;
  if (!t->resp_init) {
    qpeer__punch_resp_opts o;
    qpeer__punch_resp_opts_default(&o);
    o.allow = sched_allow(flags);
    qpeer__punch_resp_init(&t->resp, &o);
    t->resp_init = 1;
  }
  /* Build the new set, keeping the numbers of addresses already sent. */
  qpeer__candset_init(&next);
  next.next_seq = t->adv.next_seq;
  for (i = 0; i < n; i++) {
    const qpeer__candset_entry *old;
    if (cands[i].type == QPEER_CANDIDATE_RELAY)
      continue;
    old = qpeer__candset_find(&t->adv,
                              (const struct sockaddr *)&cands[i].addr);
    if (old)
      r = qpeer__candset_add_seq(&next, &cands[i], old->seq, NULL);
    else
      r = qpeer__candset_add(&next, &cands[i], NULL);
    if (r < 0 && r != UV_ENOSPC)
      return r;
  }
  /* Withdraw what is gone, announce what is new. */
  for (i = 0; i < t->adv.n; i++) {
    if (!qpeer__candset_find_seq(&next, t->adv.e[i].seq)) {
      memset(&m, 0, sizeof(m));
      m.kind = QPEER__TRAV_REMOVE_ADDRESS;
      m.seq = t->adv.e[i].seq;
      qpeer__ctrl_send(c, &m);
    }
  }
  for (i = 0; i < next.n; i++) {
    if (qpeer__candset_find_seq(&t->adv, next.e[i].seq))
      continue;
    memset(&m, 0, sizeof(m));
    m.kind = QPEER__TRAV_ADD_ADDRESS;
    m.seq = next.e[i].seq;
    memcpy(&m.addr, &next.e[i].cand.addr, sizeof(m.addr));
    if ((r = qpeer__ctrl_send(c, &m)) != 0)
      return r;
    m.kind = QPEER__TRAV_ADDRESS_INFO;
    m.cand_type = (uint8_t)next.e[i].cand.type;
    m.priority = next.e[i].cand.priority;
    qpeer__ctrl_send(c, &m);
  }
  t->adv = next;
  qpeer__conn_schedule_flush(c);
  return 0;
}

int qpeer_punch(qpeer_punch_t *req, qpeer_conn_t *conn,
                const qpeer_candidate_t *local, size_t n, unsigned int flags,
                qpeer_punch_cb cb) {
  qpeer__conn *c = conn ? conn->impl : NULL;
  qpeer__trav *t;
  qpeer__punch_opts o;
  qpeer__cand_pair pairs[16];
  size_t i, np;
  int r;
  if (!c || !req || !cb || (n && !local) || c->handle_closing)
    return UV_EINVAL;
  if (c->server || !c->ctrl)
    return UV_ENOTSUP;
  if (c->closed || !c->handshake_confirmed)
    return UV_ENOTCONN;
  if (!(t = trav_get(c)))
    return UV_ENOMEM;
  if (t->req || c->migrate_req)
    return UV_EBUSY;
  if ((r = derive_token(t)) != 0)
    return r;
  qpeer__candset_init(&t->local);
  for (i = 0; i < n; i++) {
    if (local[i].type == QPEER_CANDIDATE_RELAY)
      continue;
    r = qpeer__candset_add(&t->local, &local[i], NULL);
    if (r < 0 && r != UV_ENOSPC)
      return r;
  }
  qpeer__punch_opts_default(&o);
  o.allow = sched_allow(flags);
  qpeer__punch_sched_init(&t->sched, &o);
  np = qpeer__cand_pairs_build(&t->local, &t->remote, pairs, 16);
  for (i = 0; i < np; i++)
    qpeer__punch_sched_add_pair(&t->sched, &pairs[i]);
  {
    void *data = req->data; /* The user's field survives. */
    memset(req, 0, sizeof(*req));
    req->data = data;
  }
  req->type = QPEER_PUNCH;
  req->handle = conn;
  req->cb = cb;
  t->req = req;
  t->done = 0;
  t->flags = flags;
  t->started = now_ns();
  /* The first actions run on the next loop iteration, never inside this
   * call. */
  uv_timer_start(&t->timer, on_timer, 0, 0);
  return 0;
}

int qpeer_conn_get_remote_candidates(const qpeer_conn_t *conn,
                                     qpeer_candidate_t *out, size_t max,
                                     size_t *pn) {
  const qpeer__conn *c = conn ? conn->impl : NULL;
  const qpeer__trav *t;
  size_t i, n;
  if (!c || !pn || (max && !out))
    return UV_EINVAL;
  if (c->server)
    return UV_ENOTSUP;
  t = c->trav;
  n = t ? t->remote.n : 0;
  for (i = 0; i < n && i < max; i++)
    out[i] = t->remote.e[i].cand;
  *pn = n;
  return 0;
}
