/* SPDX-License-Identifier: MIT */
/*
 * Candidate gathering (see include/qpeer/gather.h). Host candidates are
 * known at once; STUN transactions run in parallel; observations from
 * live connections, the port mapping and the relay address are read when
 * the gathering starts. Everything goes through one bounded candidate set
 * (duplicates merged, the better type kept) and is reported when new or
 * upgraded. A deadline timer bounds the whole; every callback runs from
 * the loop, never inside qpeer_gather().
 */
#include <string.h>

#include "core/addr.h"
#include "nat/candidate.h"
#include "quic/handles.h"
#include "qpeer/gather.h"

typedef struct gather_impl {
  qpeer_gather_t *g;                      /* the request */
  qpeer_endpoint_t *ep;                   /* its endpoint */
  qpeer_candidate_cb cb;                  /* user callback */
  qpeer_gather_options_t o;               /* options (arrays below) */
  struct sockaddr_storage stun_addrs[QPEER_GATHER_MAX_STUN]; /* copies */
  qpeer_stun_t stun[QPEER_GATHER_MAX_STUN]; /* STUN transactions */
  qpeer_conn_t *conns[QPEER_GATHER_MAX_CONNS]; /* copies of o->conns */
  int stun_live[QPEER_GATHER_MAX_STUN];   /* transaction pending */
  size_t pending;                         /* STUN transactions pending */
  qpeer__candset set;                     /* what was found */
  uv_timer_t timer;                       /* start tick and deadline */
  int started;                            /* the immediate part ran */
  int ending;                             /* final call queued or made */
  int final_status;                       /* UV_EOF or UV_ECANCELED */
} gather_impl;

void qpeer_gather_options_default_versioned(int version,
                                            qpeer_gather_options_t *o) {
  (void)version;
  memset(o, 0, sizeof(*o));
  o->deadline_ms = 5000;
}

static void timer_closed(uv_handle_t *h) { qpeer__free(h->data); }

static void finish(gather_impl *gi) {
  qpeer_gather_t *g = gi->g;
  size_t i;
  for (i = 0; i < gi->o.nstun; i++)
    if (gi->stun_live[i])
      return; /* The cancelled transactions report first. */
  uv_timer_stop(&gi->timer);
  g->impl = NULL;
  uv_close((uv_handle_t *)&gi->timer, timer_closed);
  gi->cb(g, gi->final_status, NULL);
}

static void publish(gather_impl *gi, const qpeer_candidate_t *c) {
  qpeer__candset_entry evicted;
  qpeer_gather_t *g = gi->g;
  size_t i;
  int r = qpeer__candset_add(&gi->set, c, &evicted);
  if (r < 0)
    return;
  g->ncands = gi->set.n;
  for (i = 0; i < gi->set.n; i++)
    g->cands[i] = gi->set.e[i].cand;
  if (r == QPEER__CANDSET_MERGED)
    return; /* Known address, no better type: only sources merged. */
  for (i = 0; i < gi->set.n; i++) {
    if (qpeer__addr_equal((const struct sockaddr *)&gi->set.e[i].cand.addr,
                          (const struct sockaddr *)&c->addr)) {
      gi->cb(g, 0, &gi->set.e[i].cand);
      return;
    }
  }
}

/* ---- host candidates ---------------------------------------------------------- */

static void gather_host(gather_impl *gi) {
  struct sockaddr_storage local;
  uv_interface_address_t *ifs;
  int n, i, fam;
  uint16_t port;
  qpeer__ep *ep = qpeer__ep_of(gi->ep);
  memcpy(&local, &ep->udp.local, sizeof(local));
  port = qpeer__addr_port((struct sockaddr *)&local);
  if (!qpeer__addr_is_any((struct sockaddr *)&local)) {
    qpeer_candidate_t c;
    if (qpeer__cand_init(&c, QPEER_CANDIDATE_HOST, (struct sockaddr *)&local,
                         NULL, NULL, QPEER_CANDIDATE_SRC_INTERFACE, 0) == 0)
      publish(gi, &c);
    return;
  }
  if (uv_interface_addresses(&ifs, &n) != 0)
    return;
  for (i = 0; i < n; i++) {
    struct sockaddr_storage a;
    qpeer_candidate_t c;
    fam = ifs[i].address.address4.sin_family;
    memset(&a, 0, sizeof(a));
    if (fam == AF_INET && (ep->udp.family == AF_INET || ep->udp.v4mapped))
      memcpy(&a, &ifs[i].address.address4, sizeof(struct sockaddr_in));
    else if (fam == AF_INET6 && ep->udp.family == AF_INET6)
      memcpy(&a, &ifs[i].address.address6, sizeof(struct sockaddr_in6));
    else
      continue;
    if (ifs[i].is_internal && !gi->o.include_loopback)
      continue;
    if (fam == AF_INET6 &&
        IN6_IS_ADDR_LINKLOCAL(&((struct sockaddr_in6 *)&a)->sin6_addr) &&
        !gi->o.include_link_local)
      continue;
    if (fam == AF_INET &&
        (ntohl(((struct sockaddr_in *)&a)->sin_addr.s_addr) >> 16) ==
            0xa9fe &&
        !gi->o.include_link_local)
      continue;
    qpeer__addr_set_port((struct sockaddr *)&a, port);
    if (qpeer__cand_init(&c, QPEER_CANDIDATE_HOST, (struct sockaddr *)&a,
                         NULL, NULL, QPEER_CANDIDATE_SRC_INTERFACE,
                         (unsigned)i) == 0)
      publish(gi, &c);
  }
  uv_free_interface_addresses(ifs, n);
}

/* ---- reflexive, mapped and relay candidates ---------------------------------------- */

static void on_timer(uv_timer_t *t);

static void on_stun(qpeer_stun_t *req, int status) {
  gather_impl *gi = req->data;
  size_t i = (size_t)(req - gi->stun);
  gi->stun_live[i] = 0;
  gi->pending--;
  if (status == 0 && !gi->ending) {
    qpeer_candidate_t c;
    qpeer__ep *ep = qpeer__ep_of(gi->ep);
    if (qpeer__cand_init(&c, QPEER_CANDIDATE_SRFLX,
                         (struct sockaddr *)&req->mapped,
                         (struct sockaddr *)&ep->udp.local,
                         (struct sockaddr *)&req->server,
                         QPEER_CANDIDATE_SRC_STUN, 0) == 0)
      publish(gi, &c);
  }
  /* Before the first tick the host candidates are not in yet: the tick
   * finishes then. */
  if (gi->started && (gi->ending || gi->pending == 0)) {
    gi->ending = 1;
    if (!gi->final_status)
      gi->final_status = UV_EOF;
    finish(gi);
  } else if (gi->ending && gi->pending == 0) {
    uv_timer_start(&gi->timer, on_timer, 0, 0);
  }
}

static void gather_known(gather_impl *gi) {
  qpeer__ep *ep = qpeer__ep_of(gi->ep);
  qpeer_candidate_t c;
  size_t i;
  for (i = 0; i < gi->o.nconns; i++) {
    struct sockaddr_storage obs, srv;
    qpeer_path_t p;
    if (qpeer_conn_get_observed_address(gi->o.conns[i], &obs) != 0)
      continue;
    memset(&srv, 0, sizeof(srv));
    if (qpeer_conn_get_path(gi->o.conns[i], &p) == 0)
      srv = p.remote;
    if (qpeer__cand_init(&c, QPEER_CANDIDATE_SRFLX, (struct sockaddr *)&obs,
                         (struct sockaddr *)&ep->udp.local,
                         srv.ss_family ? (struct sockaddr *)&srv : NULL,
                         QPEER_CANDIDATE_SRC_OBSERVED, 0) == 0)
      publish(gi, &c);
  }
  if (gi->o.portmap) {
    qpeer_portmap_info_t info;
    if (qpeer_portmap_get_info(gi->o.portmap, &info) == 0 &&
        qpeer__cand_init(&c, QPEER_CANDIDATE_MAPPED,
                         (struct sockaddr *)&info.external,
                         (struct sockaddr *)&ep->udp.local,
                         (struct sockaddr *)&info.gateway,
                         info.protocol == QPEER_PORTMAP_PCP
                             ? QPEER_CANDIDATE_SRC_PCP
                             : info.protocol == QPEER_PORTMAP_NATPMP
                                   ? QPEER_CANDIDATE_SRC_NATPMP
                                   : QPEER_CANDIDATE_SRC_UPNP,
                         0) == 0)
      publish(gi, &c);
  }
  if (gi->o.relay &&
      qpeer__cand_init(&c, QPEER_CANDIDATE_RELAY, gi->o.relay, gi->o.relay,
                       gi->o.relay, QPEER_CANDIDATE_SRC_RELAY, 0) == 0)
    publish(gi, &c);
}

static void on_timer(uv_timer_t *t) {
  gather_impl *gi = t->data;
  size_t i;
  if (gi->ending) {
    if (gi->pending == 0)
      finish(gi);
    return;
  }
  if (!gi->started) {
    gi->started = 1;
    gather_host(gi);
    gather_known(gi);
    if (gi->pending == 0) {
      gi->ending = 1;
      gi->final_status = UV_EOF;
      finish(gi);
      return;
    }
    uv_timer_start(&gi->timer, on_timer,
                   gi->o.deadline_ms ? gi->o.deadline_ms : 5000, 0);
    return;
  }
  /* Deadline: stop what still runs; the last one reports the end. */
  gi->ending = 1;
  gi->final_status = UV_EOF;
  for (i = 0; i < gi->o.nstun; i++)
    if (gi->stun_live[i])
      qpeer_stun_cancel(&gi->stun[i]);
}

int qpeer_gather_versioned(qpeer_gather_t *g, qpeer_endpoint_t *ep,
                           int version, const qpeer_gather_options_t *o,
                           qpeer_candidate_cb cb) {
  gather_impl *gi;
  qpeer_stun_options_t so;
  size_t i;
  int r;
  if (!g || !ep || !ep->impl || !o || !cb || version < 1 ||
      version > QPEER_GATHER_OPTIONS_VERSION ||
      o->nstun > QPEER_GATHER_MAX_STUN ||
      o->nconns > QPEER_GATHER_MAX_CONNS || (o->nstun && !o->stun_servers) ||
      (o->nconns && !o->conns))
    return UV_EINVAL;
  gi = qpeer__calloc(1, sizeof(*gi));
  if (!gi)
    return UV_ENOMEM;
  gi->g = g;
  gi->ep = ep;
  gi->cb = cb;
  gi->o = *o;
  qpeer__candset_init(&gi->set);
  if ((r = uv_timer_init(ep->loop, &gi->timer)) != 0) {
    qpeer__free(gi);
    return r;
  }
  gi->timer.data = gi;
  {
    void *data = g->data; /* The user's field survives. */
    memset(g, 0, sizeof(*g));
    g->data = data;
  }
  g->type = QPEER_GATHER;
  g->handle = ep;
  g->impl = gi;
  qpeer_stun_options_default(&so);
  so.timeout_ms = o->stun_timeout_ms ? o->stun_timeout_ms : 3000;
  if (o->stun_rto_ms)
    so.rto_ms = o->stun_rto_ms;
  for (i = 0; i < o->nstun; i++) {
    memcpy(&gi->stun_addrs[i], o->stun_servers[i],
           qpeer__addr_len(o->stun_servers[i]));
    gi->stun[i].data = gi;
    if (qpeer_stun_send(&gi->stun[i], ep,
                        (struct sockaddr *)&gi->stun_addrs[i], &so,
                        on_stun) == 0) {
      gi->stun_live[i] = 1;
      gi->pending++;
    }
  }
  gi->o.stun_servers = NULL;
  /* The caller's array may be gone by the first tick: keep a copy. */
  for (i = 0; i < o->nconns; i++)
    gi->conns[i] = o->conns[i];
  gi->o.conns = gi->conns;
  /* The host part runs on the next loop iteration, not inside this call. */
  uv_timer_start(&gi->timer, on_timer, 0, 0);
  return 0;
}

int qpeer_gather_cancel(qpeer_gather_t *g) {
  gather_impl *gi = g ? g->impl : NULL;
  size_t i;
  if (!gi || gi->ending)
    return UV_EINVAL;
  gi->ending = 1;
  gi->final_status = UV_ECANCELED;
  for (i = 0; i < gi->o.nstun; i++)
    if (gi->stun_live[i])
      qpeer_stun_cancel(&gi->stun[i]);
  /* With nothing pending, the end is delivered on the next iteration,
   * never inside this call; otherwise the last cancelled transaction
   * delivers it. */
  if (gi->pending == 0)
    uv_timer_start(&gi->timer, on_timer, 0, 0);
  return 0;
}
