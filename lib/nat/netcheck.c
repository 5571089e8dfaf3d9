/* SPDX-License-Identifier: MIT */
/*
 * qpeer_netcheck_t, the I/O shell around the classifiers of
 * netcheck_classify.c. Phases:
 *
 * 1. A Binding request from the endpoint's socket to every server at once:
 *    UDP works, IPv4/IPv6, reflexive addresses, latency, which servers
 *    advertise RFC 5780 (OTHER-ADDRESS).
 * 2. In parallel, for each family that answered:
 *    - mapping: Binding requests from the endpoint's socket to the RFC 5780
 *      server's alternate addresses (other IP / other IP and port);
 *    - filtering: from a temporary second endpoint (a fresh mapping, so
 *      that phase 1 and the mapping probes cannot have opened the
 *      filter), CHANGE-REQUEST "IP and port" and "port" to that server;
 *    - hairpinning: from the second endpoint, a Binding request to our
 *      own reflexive address, caught by a watch on the endpoint.
 * 3. Finishing: every request is cancelled, timers and the second
 *    endpoint are closed, and once all of that has completed the verdicts
 *    are computed and the callback runs.
 *
 * A watch with a transaction ID nobody uses is armed on the endpoint for
 * the whole survey: the STUN agent cancels it when the endpoint closes,
 * which is how the survey learns of it (and never touches the endpoint
 * afterwards).
 */
#include <string.h>

#include "core/addr.h"
#include "nat/netcheck.h"
#include "nat/stun.h"
#include "qpeer/netcheck.h"
#include "qpeer/stun.h"

#define NS_PER_MS 1000000ull
#define HAIRPIN_SENDS 3         /* hairpin probes */
#define HAIRPIN_INTERVAL_MS 200 /* between them */

enum { KIND_MAIN = 0, KIND_FILTER = 1 };
enum { FAM_V4 = 0, FAM_V6 = 1, NFAM = 2 };
enum { TEST_BOTH = 0, TEST_PORT = 1 }; /* filtering tests II and III */

typedef struct nc nc;

typedef struct probe {
  qpeer_stun_t req; /* the STUN request */
  nc *owner;        /* the survey */
  int kind;         /* KIND_* */
  int index;        /* KIND_MAIN: report entry; KIND_FILTER: fam * 2 + test */
  int active;       /* request in flight */
} probe;

typedef struct hairpin {
  qpeer__stun_watch watch;        /* catches the probe on the endpoint */
  int armed;                      /* watch running */
  struct sockaddr_storage target; /* our reflexive address */
  uint8_t pkt[48];                /* the probe (a Binding request) */
  size_t pktlen;                  /* its length */
} hairpin;

struct nc {
  qpeer_netcheck_t *req;           /* the user's request */
  qpeer_endpoint_t *ep;            /* the endpoint surveyed */
  qpeer__ep *qep;                  /* its state (until ep_gone) */
  uv_loop_t *loop;                 /* the loop */
  qpeer_netcheck_options_t opts;   /* options (servers copied below) */
  struct sockaddr_storage servers[QPEER_NETCHECK_MAX_SERVERS];
  qpeer_netcheck_report_t report;  /* what is learned */
  uint64_t t0;                     /* start (ns) */
  uv_timer_t deadline;             /* overall deadline */
  uv_timer_t tick;                 /* hairpin probes, and the first kick */
  int phase;                       /* 1, 2, or 3 (finishing) */
  int active;                      /* STUN requests in flight */
  probe main[QPEER_NETCHECK_MAX_PROBES];   /* from the endpoint */
  probe filt[NFAM][2];                     /* from the second endpoint */
  int filt_outcome[NFAM][2];               /* QPEER__NC_TEST_* */
  int have_5780[NFAM];                     /* a server for the tests */
  struct sockaddr_storage s5780[NFAM];     /* that server */
  struct sockaddr_storage o5780[NFAM];     /* its OTHER-ADDRESS */
  qpeer_endpoint_t aux;            /* the second endpoint */
  int aux_open;                    /* initialised, not closed */
  hairpin hp[NFAM];                /* hairpin tests */
  int hp_running;                  /* hairpin tests in progress */
  int hp_sends;                    /* probes sent per family */
  uint64_t hp_start;               /* first probe (ns) */
  qpeer__stun_watch life;          /* notices the endpoint closing */
  int ep_gone;                     /* the endpoint closed under us */
  int finishing;                   /* finish() ran */
  int status;                      /* for the callback */
  int closes;                      /* handle closes outstanding */
};

static void advance(nc *n);
static void finish(nc *n, int status);

static int fam_of(const struct sockaddr_storage *ss) {
  return ss->ss_family == AF_INET6 ? FAM_V6 : FAM_V4;
}

static qpeer_netcheck_family_t *fam_report(nc *n, int f) {
  return f == FAM_V6 ? &n->report.ipv6 : &n->report.ipv4;
}

static int same_ip(const struct sockaddr *a, const struct sockaddr *b) {
  struct sockaddr_storage x, y;
  qpeer__addr_normalize(&x, a);
  qpeer__addr_normalize(&y, b);
  qpeer__addr_set_port((struct sockaddr *)&x, 0);
  qpeer__addr_set_port((struct sockaddr *)&y, 0);
  return qpeer__addr_equal((struct sockaddr *)&x, (struct sockaddr *)&y);
}

/* ---- finishing ----------------------------------------------------------- */

/* is_own_address says whether |a| is this host's socket address: the
 * socket's port, and its bound IP or (bound to a wildcard) the IP of one
 * of the host's interfaces. */
static int is_own_address(const nc *n, const struct sockaddr *a) {
  const struct sockaddr *local = (const void *)&n->report.local;
  uv_interface_address_t *ifs;
  int i, count, found = 0;
  if (qpeer__addr_port(a) != qpeer__addr_port(local))
    return 0;
  if (!qpeer__addr_is_any(local))
    return same_ip(a, local);
  if (uv_interface_addresses(&ifs, &count) != 0)
    return 0;
  for (i = 0; i < count && !found; i++) {
    const struct sockaddr *ia = (const void *)&ifs[i].address;
    if (ia->sa_family == a->sa_family && same_ip(ia, a))
      found = 1;
  }
  uv_free_interface_addresses(ifs, count);
  return found;
}

/* classify fills the report's verdicts from everything recorded. */
static void classify(nc *n) {
  qpeer_netcheck_report_t *r = &n->report;
  int f;
  size_t i;
  for (f = 0; f < NFAM; f++) {
    qpeer_netcheck_family_t *fr = fam_report(n, f);
    qpeer__nc_obs obs[QPEER_NETCHECK_MAX_PROBES];
    size_t nobs = 0;
    fr->tested = 0;
    fr->works = 0;
    for (i = 0; i < r->nprobes; i++) {
      const qpeer_netcheck_probe_t *p = &r->probes[i];
      if (fam_of(&p->server) != f)
        continue;
      if (p->flags & QPEER_NETCHECK_PROBE_USER)
        fr->tested = 1;
      if (p->status != 0)
        continue;
      if (!fr->works)
        fr->reflexive = p->reflexive;
      fr->works = 1;
      obs[nobs].server = p->server;
      obs[nobs].mapped = p->reflexive;
      nobs++;
    }
    fr->mapping = qpeer__netcheck_classify_mapping(
        obs, nobs,
        fr->works && is_own_address(n, (const void *)&fr->reflexive));
    fr->filtering =
        n->have_5780[f]
            ? qpeer__netcheck_classify_filtering(n->filt_outcome[f][TEST_BOTH],
                                                 n->filt_outcome[f][TEST_PORT])
            : QPEER_NAT_FILTERING_UNKNOWN;
  }
  r->udp = r->ipv4.works || r->ipv6.works;
  qpeer__netcheck_classify_double_nat(r);
}

static void maybe_done(nc *n) {
  qpeer_netcheck_t *req = n->req;
  if (!n->finishing || n->active > 0 || n->closes > 0)
    return;
  classify(n);
  n->report.duration_ms = (qpeer__now() - n->t0) / NS_PER_MS;
  req->impl = NULL;
  req->cb(req, n->status, &n->report);
  qpeer__free(n);
}

static void on_handle_closed(uv_handle_t *h) {
  nc *n = h->data;
  n->closes--;
  maybe_done(n);
}

static void on_aux_closed(qpeer_handle_t *h) {
  nc *n = h->data;
  n->closes--;
  maybe_done(n);
}

static void stop_hairpin(nc *n) {
  int f;
  for (f = 0; f < NFAM; f++) {
    if (n->hp[f].armed)
      qpeer__stun_watch_stop(&n->hp[f].watch);
    n->hp[f].armed = 0;
  }
  n->hp_running = 0;
}

static void finish(nc *n, int status) {
  int i, f;
  if (n->finishing)
    return;
  n->finishing = 1;
  n->phase = 3;
  n->status = status;
  for (i = 0; i < QPEER_NETCHECK_MAX_PROBES; i++)
    if (n->main[i].active)
      qpeer_stun_cancel(&n->main[i].req);
  for (f = 0; f < NFAM; f++)
    for (i = 0; i < 2; i++)
      if (n->filt[f][i].active)
        qpeer_stun_cancel(&n->filt[f][i].req);
  stop_hairpin(n);
  qpeer__stun_watch_stop(&n->life);
  n->closes += 2;
  uv_close((uv_handle_t *)&n->deadline, on_handle_closed);
  uv_close((uv_handle_t *)&n->tick, on_handle_closed);
  if (n->aux_open) {
    n->aux_open = 0;
    n->closes++;
    n->aux.data = n;
    qpeer_close((qpeer_handle_t *)&n->aux, on_aux_closed);
  }
}

static void on_deadline(uv_timer_t *t) {
  nc *n = t->data;
  n->report.partial = 1;
  finish(n, 0);
  maybe_done(n);
}

static void on_life_cancel(qpeer__stun_watch *w) {
  nc *n = w->ctx;
  n->ep_gone = 1;
  n->qep = NULL;
  finish(n, UV_ECANCELED);
  maybe_done(n);
}

/* ---- probes -------------------------------------------------------------- */

static void on_main(qpeer_stun_t *req, int status) {
  probe *p = QPEER__CONTAINER_OF(req, probe, req);
  nc *n = p->owner;
  qpeer_netcheck_probe_t *rp = &n->report.probes[p->index];
  p->active = 0;
  n->active--;
  rp->status = status;
  rp->transmissions = req->transmissions;
  if (status == 0) {
    rp->reflexive = req->mapped;
    rp->rtt_us = req->rtt_us;
  } else if (status == QPEER_ESTUN) {
    rp->error_code = req->error_code;
  }
  if (req->result_flags & QPEER_STUN_HAS_OTHER_ADDRESS)
    rp->other_address = req->other_address;
  /* Only finish() cancels our requests: anything else cancelling one is
   * the endpoint closing. */
  if (status == UV_ECANCELED && !n->finishing)
    finish(n, UV_ECANCELED);
  advance(n);
  maybe_done(n);
}

static void on_filter(qpeer_stun_t *req, int status) {
  probe *p = QPEER__CONTAINER_OF(req, probe, req);
  nc *n = p->owner;
  int f = p->index / 2, test = p->index % 2;
  p->active = 0;
  n->active--;
  n->filt_outcome[f][test] = qpeer__netcheck_filter_outcome(
      status, (const void *)&n->s5780[f], (const void *)&n->o5780[f],
      status == 0 ? (const void *)&req->response_source : NULL,
      test == TEST_BOTH ? QPEER_STUN_CHANGE_IP | QPEER_STUN_CHANGE_PORT
                        : QPEER_STUN_CHANGE_PORT);
  advance(n);
  maybe_done(n);
}

static void stun_opts(const nc *n, qpeer_stun_options_t *o,
                      uint32_t change) {
  qpeer_stun_options_default(o);
  o->timeout_ms = n->opts.probe_timeout_ms;
  o->rto_ms = n->opts.rto_ms;
  o->change_request = change;
}

static void start_main(nc *n, size_t idx) {
  probe *p = &n->main[idx];
  qpeer_stun_options_t o;
  int r;
  stun_opts(n, &o, 0);
  p->owner = n;
  p->kind = KIND_MAIN;
  p->index = (int)idx;
  r = qpeer_stun_send(&p->req, n->ep, (const void *)&n->report.probes[idx]
                                          .server,
                      &o, on_main);
  if (r != 0) {
    n->report.probes[idx].status = r;
    return;
  }
  p->active = 1;
  n->active++;
}

static void start_filter(nc *n, int f, int test) {
  probe *p = &n->filt[f][test];
  qpeer_stun_options_t o;
  int r;
  stun_opts(n, &o,
            test == TEST_BOTH ? QPEER_STUN_CHANGE_IP | QPEER_STUN_CHANGE_PORT
                              : QPEER_STUN_CHANGE_PORT);
  p->owner = n;
  p->kind = KIND_FILTER;
  p->index = f * 2 + test;
  r = qpeer_stun_send(&p->req, &n->aux, (const void *)&n->s5780[f], &o,
                      on_filter);
  if (r != 0) {
    n->filt_outcome[f][test] = QPEER__NC_TEST_UNUSABLE;
    return;
  }
  p->active = 1;
  n->active++;
}

/* add_probe appends a report entry for |server| unless it is there. */
static int add_probe(nc *n, const struct sockaddr *server, unsigned flags) {
  qpeer_netcheck_report_t *r = &n->report;
  size_t i;
  for (i = 0; i < r->nprobes; i++)
    if (qpeer__addr_equal((const void *)&r->probes[i].server, server))
      return -1;
  if (r->nprobes == QPEER_NETCHECK_MAX_PROBES)
    return -1;
  i = r->nprobes++;
  memset(&r->probes[i], 0, sizeof(r->probes[i]));
  qpeer__addr_normalize(&r->probes[i].server, server);
  r->probes[i].status = 1;
  r->probes[i].flags = flags;
  return (int)i;
}

/* ---- phase 2 ------------------------------------------------------------- */

static int open_aux(nc *n) {
  qpeer_endpoint_options_t o;
  struct sockaddr_storage bind;
  int r;
  qpeer_endpoint_options_default(&o);
  bind = n->report.local;
  qpeer__addr_set_port((struct sockaddr *)&bind, 0);
  o.bind_addr = (const struct sockaddr *)&bind;
  o.ipv6_only = n->qep->opts.ipv6_only;
  o.identity = qpeer_endpoint_get_identity(n->ep);
  o.disable_gso = 1;
  r = qpeer_endpoint_init(n->loop, &n->aux, &o);
  if (r == 0)
    n->aux_open = 1;
  return r;
}

static void hairpin_send(nc *n) {
  qpeer__ep *aux = qpeer__ep_of(&n->aux);
  int f;
  for (f = 0; f < NFAM; f++)
    if (n->hp[f].armed && n->hp[f].watch.hits == 0)
      qpeer__ep_send_datagram(aux, NULL, n->hp[f].pkt, n->hp[f].pktlen,
                              (const void *)&n->hp[f].target);
  n->hp_sends++;
}

static void on_tick(uv_timer_t *t) {
  nc *n = t->data;
  uint64_t elapsed;
  int f, all_hit = 1;
  if (n->finishing)
    return;
  if (!n->hp_running) {
    advance(n); /* the kick after a start where nothing could be sent */
    maybe_done(n);
    return;
  }
  elapsed = (qpeer__now() - n->hp_start) / NS_PER_MS;
  for (f = 0; f < NFAM; f++)
    if (n->hp[f].armed && n->hp[f].watch.hits == 0)
      all_hit = 0;
  if (!all_hit && n->hp_sends < HAIRPIN_SENDS &&
      elapsed >= (uint64_t)n->hp_sends * HAIRPIN_INTERVAL_MS)
    hairpin_send(n);
  if (!all_hit && elapsed < n->opts.hairpin_timeout_ms)
    return;
  for (f = 0; f < NFAM; f++)
    if (n->hp[f].armed)
      fam_report(n, f)->hairpin =
          n->hp[f].watch.hits ? QPEER_NETCHECK_YES : QPEER_NETCHECK_NO;
  stop_hairpin(n);
  uv_timer_stop(&n->tick);
  advance(n);
  maybe_done(n);
}

static void start_hairpin(nc *n, int f) {
  hairpin *h = &n->hp[f];
  qpeer_netcheck_family_t *fr = fam_report(n, f);
  int len;
  if (!fr->works)
    return;
  h->target = fr->reflexive;
  memset(&h->watch, 0, sizeof(h->watch));
  if (qpeer__stun_new_txid(h->watch.txid) != 0)
    return;
  len = qpeer__stun_build_binding_request(h->pkt, sizeof(h->pkt),
                                          h->watch.txid, 0, 1);
  if (len < 0)
    return;
  h->pktlen = (size_t)len;
  h->watch.ctx = n;
  if (qpeer__stun_watch_start(n->qep, &h->watch) != 0)
    return;
  h->armed = 1;
  n->hp_running = 1;
}

static void phase2(nc *n) {
  qpeer_netcheck_report_t *r = &n->report;
  size_t i, nuser = r->nprobes;
  int f, want_aux = 0;
  n->phase = 2;
  classify(n);
  if (n->ep_gone || n->qep->closing) {
    finish(n, UV_ECANCELED);
    return;
  }
  if (!r->udp) {
    finish(n, 0);
    return;
  }
  /* The first server of each family that answered with a usable
   * OTHER-ADDRESS does the RFC 5780 work. */
  for (i = 0; i < nuser; i++) {
    const qpeer_netcheck_probe_t *p = &r->probes[i];
    f = fam_of(&p->server);
    if (n->have_5780[f] || p->status != 0 ||
        p->other_address.ss_family != p->server.ss_family ||
        qpeer__addr_equal((const void *)&p->other_address,
                          (const void *)&p->server))
      continue;
    n->have_5780[f] = 1;
    n->s5780[f] = p->server;
    n->o5780[f] = p->other_address;
    fam_report(n, f)->rfc5780_server = p->server;
  }
  if (!(n->opts.skip & QPEER_NETCHECK_SKIP_ALTERNATE)) {
    for (f = 0; f < NFAM; f++) {
      struct sockaddr_storage alt;
      int idx;
      if (!n->have_5780[f])
        continue;
      /* Test II: the other IP, the primary port; test III: the other
       * IP and port (RFC 5780 §4.3). */
      alt = n->o5780[f];
      qpeer__addr_set_port((struct sockaddr *)&alt,
                           qpeer__addr_port((const void *)&n->s5780[f]));
      if (!same_ip((const void *)&alt, (const void *)&n->s5780[f]) &&
          (idx = add_probe(n, (const void *)&alt,
                           QPEER_NETCHECK_PROBE_ALTERNATE)) >= 0)
        start_main(n, (size_t)idx);
      if ((idx = add_probe(n, (const void *)&n->o5780[f],
                           QPEER_NETCHECK_PROBE_ALTERNATE)) >= 0)
        start_main(n, (size_t)idx);
    }
  }
  for (f = 0; f < NFAM; f++) {
    if (n->have_5780[f] && !(n->opts.skip & QPEER_NETCHECK_SKIP_FILTERING))
      want_aux = 1;
    if (fam_report(n, f)->works &&
        !(n->opts.skip & QPEER_NETCHECK_SKIP_HAIRPIN))
      want_aux = 1;
  }
  if (want_aux && open_aux(n) == 0) {
    for (f = 0; f < NFAM; f++) {
      if (!n->have_5780[f] || (n->opts.skip & QPEER_NETCHECK_SKIP_FILTERING))
        continue;
      start_filter(n, f, TEST_BOTH);
      start_filter(n, f, TEST_PORT);
    }
    if (!(n->opts.skip & QPEER_NETCHECK_SKIP_HAIRPIN)) {
      for (f = 0; f < NFAM; f++)
        start_hairpin(n, f);
      if (n->hp_running) {
        n->hp_start = qpeer__now();
        n->hp_sends = 0;
        hairpin_send(n);
        uv_timer_start(&n->tick, on_tick, HAIRPIN_INTERVAL_MS / 4,
                       HAIRPIN_INTERVAL_MS / 4);
      }
    }
  }
  if (n->active == 0 && !n->hp_running)
    finish(n, 0);
}

static void advance(nc *n) {
  if (n->finishing)
    return;
  if (n->phase == 1 && n->active == 0)
    phase2(n);
  else if (n->phase == 2 && n->active == 0 && !n->hp_running)
    finish(n, 0);
}

/* ---- public -------------------------------------------------------------- */

void qpeer_netcheck_options_default_versioned(int version,
                                              qpeer_netcheck_options_t *o) {
  (void)version;
  memset(o, 0, sizeof(*o));
  o->timeout_ms = 10000;
  o->probe_timeout_ms = 3000;
  o->rto_ms = 500;
  o->hairpin_timeout_ms = 1000;
}

int qpeer_netcheck_start_versioned(qpeer_netcheck_t *req, qpeer_endpoint_t *ep,
                                   int version,
                                   const qpeer_netcheck_options_t *opts,
                                   qpeer_netcheck_cb cb) {
  qpeer__ep *qep;
  nc *n;
  size_t i;
  int r;
  (void)version;
  if (!req || !ep || !opts || !cb || !(qep = qpeer__ep_of(ep)))
    return UV_EINVAL;
  if (!opts->servers || opts->nservers == 0 ||
      opts->nservers > QPEER_NETCHECK_MAX_SERVERS)
    return UV_EINVAL;
  for (i = 0; i < opts->nservers; i++) {
    const struct sockaddr *s = (const void *)&opts->servers[i];
    if ((s->sa_family != AF_INET && s->sa_family != AF_INET6) ||
        qpeer__addr_port(s) == 0)
      return UV_EINVAL;
  }
  if (qep->closing)
    return UV_EBUSY;
  if (!(n = qpeer__calloc(1, sizeof(*n))))
    return UV_ENOMEM;
  n->req = req;
  n->ep = ep;
  n->qep = qep;
  n->loop = qep->loop;
  n->opts = *opts;
  if (n->opts.timeout_ms == 0)
    n->opts.timeout_ms = 10000;
  if (n->opts.probe_timeout_ms == 0)
    n->opts.probe_timeout_ms = 3000;
  if (n->opts.rto_ms == 0)
    n->opts.rto_ms = 500;
  if (n->opts.hairpin_timeout_ms == 0)
    n->opts.hairpin_timeout_ms = 1000;
  for (i = 0; i < opts->nservers; i++)
    n->servers[i] = opts->servers[i];
  n->opts.servers = n->servers;
  qpeer__netcheck_report_init(&n->report);
  qpeer__addr_normalize(&n->report.local, (const void *)&qep->udp.local);
  /* The lifeline: never matched, cancelled when the endpoint closes. */
  n->life.ctx = n;
  n->life.on_cancel = on_life_cancel;
  if ((r = qpeer__stun_new_txid(n->life.txid)) != 0 ||
      (r = qpeer__stun_watch_start(qep, &n->life)) != 0) {
    qpeer__free(n);
    return r;
  }
  req->type = QPEER_NETCHECK;
  req->handle = ep;
  req->cb = cb;
  req->impl = n;
  n->t0 = qpeer__now();
  n->phase = 1;
  uv_timer_init(n->loop, &n->deadline);
  uv_timer_init(n->loop, &n->tick);
  n->deadline.data = n;
  n->tick.data = n;
  /* Count from now, not from the loop's cached time. */
  {
    uint64_t now_ms = n->t0 / NS_PER_MS, loop_ms = uv_now(n->loop);
    uv_timer_start(&n->deadline, on_deadline,
                   n->opts.timeout_ms +
                       (now_ms > loop_ms ? now_ms - loop_ms : 0),
                   0);
  }
  for (i = 0; i < opts->nservers; i++) {
    add_probe(n, (const void *)&n->servers[i], QPEER_NETCHECK_PROBE_USER);
  }
  for (i = 0; i < n->report.nprobes; i++)
    start_main(n, i);
  if (n->active == 0)
    uv_timer_start(&n->tick, on_tick, 0, 0);
  return 0;
}

int qpeer_netcheck_cancel(qpeer_netcheck_t *req) {
  nc *n;
  if (!req || req->type != QPEER_NETCHECK || !(n = req->impl) ||
      n->finishing)
    return UV_EINVAL;
  finish(n, UV_ECANCELED);
  return 0;
}
