/* SPDX-License-Identifier: MIT */
/*
 * The peer listener (see include/qpeer/peer.h and doc/peer-connect.md).
 * Divided into: admission (the endpoint's allow hook, refusals delivered
 * from the defer queue), tracked connections (observers), the candidate
 * set (gathering, the static addresses, advertisement of changes), the
 * relay binding and port mapping that feed it, tickets, and the handle's
 * life cycle (init, start, close).
 */
#include <stdio.h>
#include <string.h>

#include "core/addr.h"
#include "nat/candidate.h"
#include "peer/listen.h"
#include "peer/netset.h"
#include "quic/handles.h"

/* Bounds of the refresh interval, in ms. */
#define PL_REFRESH_MIN_MS 100
#define PL_REFRESH_MAX_MS 86400000ULL

struct pl_state;

/* A connection the listener advertises to. */
typedef struct pl_conn {
  qpeer__conn_observer obs; /* ended: forget it; observed: re-gather */
  struct pl_state *s;       /* owner */
  qpeer_conn_t *conn;       /* the caller's handle; NULL: slot free */
  int advertised;           /* an advertisement was sent (or refused) */
} pl_conn;

/* A refusal waiting for delivery. */
typedef struct pl_refusal {
  qpeer_peer_id_t id; /* who */
  int status;         /* QPEER_ENOTALLOWED or UV_ENOSPC */
} pl_refusal;

/* An address added by the caller. */
typedef struct pl_static {
  struct sockaddr_storage addr; /* the address */
  qpeer_candidate_type type;    /* its candidate type */
} pl_static;

typedef struct pl_state {
  qpeer_peer_listener_t *h;        /* the handle */
  qpeer_endpoint_t *ep;            /* the endpoint */
  uv_loop_t *loop;                 /* its loop */
  qpeer_peer_listener_cb cb;       /* events */
  qpeer_peer_listener_options_t o; /* options (arrays below) */
  char *alpn[QPEER__PL_MAX_ALPN];  /* ALPN copies */
  qpeer_peer_id_t *allow;          /* allowlist copy */
  struct sockaddr_storage stun[QPEER_GATHER_MAX_STUN]; /* STUN copies */
  const struct sockaddr *stunp[QPEER_GATHER_MAX_STUN]; /* pointers */
  /* relay */
  int relay_init;                       /* bind is initialised */
  qpeer_relay_bind_t bind;              /* the binding */
  int bound;                            /* relay_addr is valid */
  struct sockaddr_storage relay_addr;   /* the public address */
  int relay_ticket;                     /* relay_url/auth go into tickets */
  char relay_url[QPEER_TICKET_URL_MAX]; /* "https://..." */
  qpeer_ticket_auth relay_auth;         /* how the dialer checks the relay */
  qpeer_peer_id_t relay_pin;            /* its pin (auth PIN) */
  /* port mapping */
  int pm_init;        /* pm is initialised */
  qpeer_portmap_t pm; /* the mapping */
  /* candidates */
  qpeer_gather_t g; /* the gathering */
  int gathering;    /* g is running */
  int regather;     /* gather again when it ends */
  int have_set;     /* one gathering completed */
  qpeer_candidate_t cands[QPEER_GATHER_MAX_CANDS];   /* the set, best first */
  size_t ncands;                                     /* its size */
  pl_static statics[QPEER_PEER_LISTENER_MAX_STATIC]; /* added addresses */
  size_t nstatic;                                    /* their number */
  uv_timer_t refresh; /* periodic and triggered re-gathering */
  qpeer__netwatch nw; /* interface watch (after start) */
  /* connections */
  pl_conn *conns;  /* max_conns slots */
  size_t ntracked; /* slots in use */
  /* refusals */
  pl_refusal refusals[QPEER__PL_MAX_REFUSALS]; /* waiting for delivery */
  size_t nrefusals;                            /* entries used */
  qpeer__defer refusal_task;                   /* delivers them */
  qpeer_peer_listener_stats_t stats;           /* counters */
  int started; /* qpeer_peer_listener_start succeeded */
  int closing; /* qpeer_close was called */
  int pending; /* child handles still closing */
} pl_state;

static pl_state *state_of(const qpeer_peer_listener_t *l) {
  return l && l->type == QPEER_PEER_LISTENER ? l->impl : NULL;
}

static unsigned adv_flags(const pl_state *s) {
  unsigned f = 0;
  if (s->o.flags & QPEER_PEER_ALLOW_LOOPBACK)
    f |= QPEER_PUNCH_ALLOW_LOOPBACK;
  if (s->o.flags & QPEER_PEER_ALLOW_LINK_LOCAL)
    f |= QPEER_PUNCH_ALLOW_LINK_LOCAL;
  return f;
}

/* emit reports an event unless the listener is closing. */
static void emit(pl_state *s, int status, qpeer_peer_listener_info_t *info) {
  if (!s->closing && s->cb)
    s->cb(s->h, status, info);
}

static void trigger(pl_state *s);

/* ---- admission ---------------------------------------------------------- */

static void deliver_refusals(qpeer__defer *d) {
  pl_state *s = QPEER__CONTAINER_OF(d, pl_state, refusal_task);
  pl_refusal batch[QPEER__PL_MAX_REFUSALS];
  size_t i, n = s->nrefusals;
  memcpy(batch, s->refusals, n * sizeof(batch[0]));
  s->nrefusals = 0;
  for (i = 0; i < n && !s->closing; i++) {
    qpeer_peer_listener_info_t info;
    memset(&info, 0, sizeof(info));
    info.event = QPEER_LISTENER_EV_REFUSED;
    info.peer_id = &batch[i].id;
    emit(s, batch[i].status, &info);
  }
}

static void refuse(pl_state *s, const qpeer_peer_id_t *id, int status) {
  s->stats.refused++;
  if (qpeer__log_enabled(QPEER_LOG_DEBUG)) {
    char txt[QPEER_PEER_ID_STRLEN] = "?";
    qpeer_peer_id_format(id, txt, sizeof(txt));
    qpeer__log(QPEER_LOG_DEBUG, "listener: refused %s: %s", txt,
               qpeer_err_name(status));
  }
  if (s->nrefusals >= QPEER__PL_MAX_REFUSALS)
    return; /* Counted; the event is dropped (bounded). */
  s->refusals[s->nrefusals].id = *id;
  s->refusals[s->nrefusals].status = status;
  s->nrefusals++;
  qpeer__defer_push(qpeer__ep_of(s->ep), &s->refusal_task);
}

static int allowed(const pl_state *s, const qpeer_peer_id_t *id) {
  size_t i;
  for (i = 0; i < s->o.nallow; i++)
    if (qpeer_peer_id_equal(&s->allow[i], id))
      return 1;
  return s->o.allow_cb && s->o.allow_cb(s->h, id) != 0;
}

/* The endpoint's allow hook: runs in the TLS handshake for every client. */
static int on_allow(qpeer_endpoint_t *eh, const qpeer_peer_id_t *id) {
  qpeer__ep *ep = qpeer__ep_of(eh);
  pl_state *s = ep ? ep->peer_listener : NULL;
  if (!s || s->closing)
    return 0;
  if (!allowed(s, id)) {
    refuse(s, id, QPEER_ENOTALLOWED);
    return 0;
  }
  if (s->ntracked + ep->naccept >= s->o.max_conns) {
    refuse(s, id, UV_ENOSPC);
    return 0;
  }
  return 1;
}

static void overflow_closed(qpeer_handle_t *h) { qpeer__free(h); }

/* The endpoint's connection callback: a connection passed the hook. */
static void on_connection(qpeer_endpoint_t *eh, int status) {
  qpeer__ep *ep = qpeer__ep_of(eh);
  pl_state *s = ep ? ep->peer_listener : NULL;
  qpeer_peer_listener_info_t info;
  if (!s || s->closing)
    return;
  if (status == 0 && s->ntracked + ep->naccept > s->o.max_conns) {
    /* Several handshakes passed the hook at once: over the bound, this one
     * is closed here. */
    qpeer_conn_t *tmp = qpeer__calloc(1, sizeof(*tmp));
    qpeer_peer_id_t id;
    if (tmp && qpeer_endpoint_accept(eh, tmp) == 0) {
      memset(&id, 0, sizeof(id));
      qpeer_conn_get_peer_id(tmp, &id);
      qpeer_close((qpeer_handle_t *)tmp, overflow_closed);
      refuse(s, &id, UV_ENOSPC);
      return;
    }
    qpeer__free(tmp);
  }
  memset(&info, 0, sizeof(info));
  info.event = QPEER_LISTENER_EV_CONNECTION;
  emit(s, status, &info);
}

/* ---- tracked connections ------------------------------------------------ */

static void count_sent(pl_state *s, const qpeer__canddiff *d,
                       const qpeer_candidate_t *old) {
  size_t i;
  for (i = 0; i < d->nadded; i++)
    if (s->cands[d->added[i]].type != QPEER_CANDIDATE_RELAY)
      s->stats.adds_sent++;
  for (i = 0; i < d->nremoved; i++)
    if (old[d->removed[i]].type != QPEER_CANDIDATE_RELAY)
      s->stats.removes_sent++;
}

/* advertise sends the current set to |pc| (the traversal layer announces
 * what is new to it and withdraws what is gone). */
static void advertise(pl_state *s, pl_conn *pc) {
  int r = qpeer_conn_advertise(pc->conn, s->cands, s->ncands, adv_flags(s));
  if (r != 0)
    QPEER__LOG_DEBUG("listener: advertisement not sent: %s", qpeer_err_name(r));
  if (r == 0 && !pc->advertised) {
    size_t i;
    for (i = 0; i < s->ncands; i++)
      if (s->cands[i].type != QPEER_CANDIDATE_RELAY)
        s->stats.adds_sent++;
  }
  pc->advertised = 1;
}

static void on_conn_ended(qpeer__conn_observer *obs) {
  pl_conn *pc = QPEER__CONTAINER_OF(obs, pl_conn, obs);
  pc->conn = NULL;
  pc->s->ntracked--;
  pc->s->stats.conns = pc->s->ntracked;
}

/* A connected peer reports a new address for us: if it is not a known
 * candidate, our NAT mapping changed (or is new): re-gather. */
static void on_conn_observed(qpeer__conn_observer *obs) {
  pl_conn *pc = QPEER__CONTAINER_OF(obs, pl_conn, obs);
  pl_state *s = pc->s;
  qpeer__conn *c = pc->conn ? pc->conn->impl : NULL;
  size_t i;
  if (!c || !c->have_observed || s->closing)
    return;
  for (i = 0; i < s->ncands; i++)
    if (qpeer__addr_equal((struct sockaddr *)&s->cands[i].addr,
                          (struct sockaddr *)&c->observed))
      return;
  s->stats.network_changes++;
  trigger(s);
}

/* ---- the candidate set -------------------------------------------------- */

static void start_gather(pl_state *s);
static void close_step(pl_state *s);

static uint64_t refresh_ms(const pl_state *s) {
  return s->o.refresh_interval_ms;
}

static void on_refresh(uv_timer_t *t) {
  pl_state *s = t->data;
  if (s->closing || !s->started)
    return;
  if (s->gathering) {
    s->regather = 1;
    return;
  }
  start_gather(s);
}

/* trigger re-gathers as soon as possible (coalesced with one that runs). */
static void trigger(pl_state *s) {
  if (s->closing || !s->started)
    return;
  if (s->gathering) {
    s->regather = 1;
    return;
  }
  uv_timer_start(&s->refresh, on_refresh, 0, 0);
}

/* build_set merges the gathered candidates and the static addresses into
 * |out| (best first, at most max_cands). Returns the count. */
static size_t build_set(pl_state *s, qpeer_candidate_t *out) {
  qpeer__candset set;
  qpeer__ep *ep = qpeer__ep_of(s->ep);
  size_t i, n;
  qpeer__candset_init(&set);
  for (i = 0; i < s->g.ncands && i < QPEER_GATHER_MAX_CANDS; i++)
    qpeer__candset_add(&set, &s->g.cands[i], NULL);
  for (i = 0; i < s->nstatic; i++) {
    qpeer_candidate_t c;
    if (qpeer__cand_init(&c, s->statics[i].type,
                         (struct sockaddr *)&s->statics[i].addr,
                         (struct sockaddr *)&ep->udp.local, NULL, 0, 0) == 0)
      qpeer__candset_add(&set, &c, NULL);
  }
  n = QPEER__MIN(set.n, (size_t)s->o.max_cands);
  for (i = 0; i < n; i++)
    out[i] = set.e[i].cand;
  return n;
}

/* Tell the port mapping what a STUN server saw, for its double-NAT check. */
static void feed_portmap(pl_state *s) {
  size_t i;
  if (!s->pm_init)
    return;
  for (i = 0; i < s->ncands; i++)
    if (s->cands[i].type == QPEER_CANDIDATE_SRFLX &&
        (s->cands[i].sources & QPEER_CANDIDATE_SRC_STUN) &&
        s->cands[i].addr.ss_family == AF_INET) {
      qpeer_portmap_set_observed_addr(&s->pm,
                                      (struct sockaddr *)&s->cands[i].addr);
      return;
    }
}

static void set_changed(pl_state *s) {
  qpeer_candidate_t old[QPEER_GATHER_MAX_CANDS], cur[QPEER_GATHER_MAX_CANDS];
  qpeer__canddiff d;
  qpeer_peer_listener_info_t info;
  size_t i, nold = s->ncands, ncur = build_set(s, cur);
  int first = !s->have_set, changed;
  memcpy(old, s->cands, nold * sizeof(old[0]));
  changed = qpeer__canddiff_compute(&d, old, nold, cur, ncur);
  s->have_set = 1;
  memcpy(s->cands, cur, ncur * sizeof(cur[0]));
  s->ncands = ncur;
  /* Connections accepted before the first set get it now; the others
   * hear about the difference. */
  for (i = 0; i < s->o.max_conns; i++) {
    pl_conn *pc = &s->conns[i];
    if (!pc->conn)
      continue;
    if (!pc->advertised) {
      advertise(s, pc);
    } else if (changed) {
      count_sent(s, &d, old);
      advertise(s, pc);
    }
  }
  feed_portmap(s);
  if (!changed && !first)
    return;
  if (changed)
    s->stats.changes++;
  if (!changed)
    return;
  memset(&info, 0, sizeof(info));
  info.event = QPEER_LISTENER_EV_CANDIDATES;
  info.cands = s->cands;
  info.ncands = s->ncands;
  info.added = d.nadded;
  info.removed = d.nremoved;
  emit(s, 0, &info);
}

static void on_gathered(qpeer_gather_t *g, int status,
                        const qpeer_candidate_t *c) {
  pl_state *s = g->data;
  (void)c;
  if (status == 0)
    return;
  s->gathering = 0;
  if (s->closing) {
    s->pending--;
    close_step(s);
    return;
  }
  if (status == UV_EOF) {
    s->stats.gathers++;
    set_changed(s);
  }
  if (s->closing)
    return;
  if (s->regather) {
    s->regather = 0;
    uv_timer_start(&s->refresh, on_refresh, 0, 0);
  } else {
    uv_timer_start(&s->refresh, on_refresh, refresh_ms(s), 0);
  }
}

static void start_gather(pl_state *s) {
  qpeer_gather_options_t go;
  qpeer_conn_t *conns[QPEER_GATHER_MAX_CONNS];
  size_t i, n = 0;
  int r;
  qpeer_gather_options_default(&go);
  for (i = 0; i < s->o.max_conns && n < QPEER_GATHER_MAX_CONNS; i++)
    if (s->conns[i].conn)
      conns[n++] = s->conns[i].conn;
  go.conns = conns;
  go.nconns = n;
  go.stun_servers = s->stunp;
  go.nstun = s->o.nstun;
  go.portmap = s->pm_init ? &s->pm : NULL;
  go.relay = s->bound ? (const struct sockaddr *)&s->relay_addr : NULL;
  go.include_loopback = !!(s->o.flags & QPEER_PEER_ALLOW_LOOPBACK);
  go.include_link_local = !!(s->o.flags & QPEER_PEER_ALLOW_LINK_LOCAL);
  go.deadline_ms = s->o.gather_deadline_ms;
  s->g.data = s;
  r = qpeer_gather(&s->g, s->ep, &go, on_gathered);
  if (r == 0) {
    s->gathering = 1;
    return;
  }
  QPEER__LOG_DEBUG("listener: gathering not started: %s", qpeer_err_name(r));
  uv_timer_start(&s->refresh, on_refresh, refresh_ms(s), 0);
}

/* ---- relay, port mapping, interfaces ------------------------------------ */

static void on_bound(qpeer_relay_bind_t *b, int status,
                     const struct sockaddr_storage *addrs, size_t n) {
  pl_state *s = QPEER__CONTAINER_OF(b, pl_state, bind);
  qpeer_peer_listener_info_t info;
  if (s->closing)
    return;
  memset(&info, 0, sizeof(info));
  info.event = QPEER_LISTENER_EV_RELAY;
  if (status == 0 && n >= 1) {
    s->bound = 1;
    qpeer__addr_normalize(&s->relay_addr, (const struct sockaddr *)&addrs[0]);
    s->stats.relay_binds++;
    info.relay = (const struct sockaddr *)&s->relay_addr;
  } else {
    s->bound = 0;
    if (status == 0)
      status = QPEER_ERELAY; /* Bound without a public address. */
  }
  trigger(s);
  emit(s, status, &info);
}

static void on_portmap(qpeer_portmap_t *pm, int status,
                       const qpeer_portmap_info_t *pinfo) {
  pl_state *s = QPEER__CONTAINER_OF(pm, pl_state, pm);
  qpeer_peer_listener_info_t info;
  if (s->closing)
    return;
  if (!pinfo || pinfo->event != QPEER_PORTMAP_EV_RENEWED)
    trigger(s);
  memset(&info, 0, sizeof(info));
  info.event = QPEER_LISTENER_EV_PORTMAP;
  info.portmap = pinfo;
  emit(s, status, &info);
}

static void on_network(qpeer__netwatch *nw) {
  pl_state *s = nw->ctx;
  qpeer_peer_listener_info_t info;
  if (s->closing)
    return;
  s->stats.network_changes++;
  trigger(s);
  memset(&info, 0, sizeof(info));
  info.event = QPEER_LISTENER_EV_NETWORK;
  emit(s, 0, &info);
}

/* relay_ticket_init derives the relay entry tickets carry from the relay
 * options: the URL from the authority, server name or address, the pin
 * from a peer-ID authenticated relay. */
static void relay_ticket_init(pl_state *s, const qpeer_masque_options_t *mo) {
  qpeer_ticket_t scratch;
  char a[QPEER_ADDR_STRLEN];
  int n = -1;
  if (mo->authority)
    n = snprintf(s->relay_url, sizeof(s->relay_url), "https://%s",
                 mo->authority);
  else if (mo->server_name)
    n = snprintf(s->relay_url, sizeof(s->relay_url), "https://%s:%u",
                 mo->server_name, (unsigned)qpeer__addr_port(mo->proxy));
  else if (qpeer_addr_format(mo->proxy, a, sizeof(a)) > 0)
    n = snprintf(s->relay_url, sizeof(s->relay_url), "https://%s", a);
  if (n <= 0 || (size_t)n >= sizeof(s->relay_url))
    return;
  if (mo->auth == QPEER_AUTH_PEER_ID && mo->peer_id) {
    s->relay_auth = QPEER_TICKET_AUTH_PIN;
    s->relay_pin = *mo->peer_id;
  } else if (mo->auth == QPEER_AUTH_WEBPKI) {
    s->relay_auth = QPEER_TICKET_AUTH_WEBPKI;
  } else {
    return; /* A private CA or no authentication: not for tickets. */
  }
  qpeer_ticket_init(&scratch);
  s->relay_ticket =
      qpeer_ticket_add_relay(
          &scratch, s->relay_url, s->relay_auth,
          s->relay_auth == QPEER_TICKET_AUTH_PIN ? &s->relay_pin : NULL) == 0;
}

/* ---- life cycle -----------------------------------------------------------
 */

void qpeer_peer_listener_options_default_versioned(
    int version, qpeer_peer_listener_options_t *o) {
  (void)version;
  memset(o, 0, sizeof(*o));
  o->refresh_interval_ms = 60000;
  o->netwatch_interval_ms = QPEER__NETWATCH_DEFAULT_MS;
  o->gather_deadline_ms = 2000;
  o->max_conns = 64;
  o->max_cands = QPEER_GATHER_MAX_CANDS;
}

static int check_options(const qpeer_peer_listener_options_t *o) {
  size_t i;
  if (!o->alpn || o->nalpn == 0 || o->nalpn > QPEER__PL_MAX_ALPN ||
      (o->nallow && !o->allow) || o->nallow > QPEER_PEER_LISTENER_MAX_ALLOW ||
      o->nstun > QPEER_GATHER_MAX_STUN || (o->nstun && !o->stun_servers) ||
      o->max_conns > QPEER_PEER_LISTENER_MAX_CONNS ||
      o->max_cands > QPEER_GATHER_MAX_CANDS ||
      (o->flags &
       ~(unsigned)(QPEER_PEER_ALLOW_LOOPBACK | QPEER_PEER_ALLOW_LINK_LOCAL)))
    return UV_EINVAL;
  for (i = 0; i < o->nalpn; i++)
    if (!o->alpn[i] || !*o->alpn[i] || strlen(o->alpn[i]) > 255)
      return UV_EINVAL;
  for (i = 0; i < o->nstun; i++)
    if (!o->stun_servers[i] || !qpeer__addr_len(o->stun_servers[i]))
      return UV_EINVAL;
  if (o->relay && !o->relay->proxy)
    return UV_EINVAL;
  return 0;
}

static void free_state(pl_state *s) {
  size_t i;
  for (i = 0; i < QPEER__PL_MAX_ALPN; i++)
    qpeer__free(s->alpn[i]);
  qpeer__free(s->allow);
  qpeer__free(s->conns);
  qpeer__free(s);
}

/* copy_options copies |o| and its arrays into |s|, applying defaults and
 * bounds. Returns 0 or UV_ENOMEM. */
static int copy_options(pl_state *s, const qpeer_peer_listener_options_t *o) {
  size_t i;
  s->o = *o;
  for (i = 0; i < o->nalpn; i++)
    if (!(s->alpn[i] = qpeer__strdup(o->alpn[i])))
      return UV_ENOMEM;
  if (o->nallow) {
    if (!(s->allow = qpeer__malloc(o->nallow * sizeof(*s->allow))))
      return UV_ENOMEM;
    memcpy(s->allow, o->allow, o->nallow * sizeof(*s->allow));
  }
  for (i = 0; i < o->nstun; i++) {
    qpeer__addr_normalize(&s->stun[i], o->stun_servers[i]);
    s->stunp[i] = (const struct sockaddr *)&s->stun[i];
  }
  s->o.alpn = NULL;
  s->o.allow = NULL;
  s->o.stun_servers = NULL;
  s->o.relay = NULL;
  s->o.portmap = NULL;
  if (!s->o.refresh_interval_ms)
    s->o.refresh_interval_ms = 60000;
  s->o.refresh_interval_ms =
      QPEER__MIN(QPEER__MAX(s->o.refresh_interval_ms, PL_REFRESH_MIN_MS),
                 PL_REFRESH_MAX_MS);
  s->o.netwatch_interval_ms = qpeer__netwatch_clamp(s->o.netwatch_interval_ms);
  if (!s->o.gather_deadline_ms)
    s->o.gather_deadline_ms = 2000;
  if (!s->o.max_conns)
    s->o.max_conns = 64;
  if (!s->o.max_cands)
    s->o.max_cands = QPEER_GATHER_MAX_CANDS;
  s->conns = qpeer__calloc(s->o.max_conns, sizeof(*s->conns));
  return s->conns ? 0 : UV_ENOMEM;
}

/* init_children prepares the relay binding and the port mapping (no I/O).
 * Returns 0 or their error. */
static int init_children(pl_state *s, qpeer_endpoint_t *ep,
                         const qpeer_peer_listener_options_t *o) {
  int r;
  if (o->relay) {
    if ((r = qpeer_relay_bind_init(ep, &s->bind, o->relay)) != 0)
      return r;
    s->relay_init = 1;
    relay_ticket_init(s, o->relay);
  }
  if (o->portmap) {
    qpeer_portmap_options_t po = *o->portmap;
    if (!po.endpoint && !po.internal_port)
      po.endpoint = ep;
    if ((r = qpeer_portmap_init(ep->loop, &s->pm, &po)) != 0)
      return r;
    s->pm_init = 1;
  }
  return 0;
}

static void init_failed_child(qpeer_handle_t *h) {
  pl_state *s = h->data;
  if (--s->pending == 0)
    free_state(s);
}

static void init_failed_timer(uv_handle_t *h) {
  pl_state *s = h->data;
  if (--s->pending == 0)
    free_state(s);
}

/* init_abort undoes a failed init: what was initialised closes
 * asynchronously, then the state is freed. */
static void init_abort(pl_state *s) {
  s->pending = 1;
  if (s->relay_init) {
    s->pending++;
    s->bind.data = s;
    qpeer_close((qpeer_handle_t *)&s->bind, init_failed_child);
  }
  if (s->pm_init) {
    s->pending++;
    s->pm.data = s;
    qpeer_close((qpeer_handle_t *)&s->pm, init_failed_child);
  }
  uv_close((uv_handle_t *)&s->refresh, init_failed_timer);
}

int qpeer_peer_listener_init_versioned(qpeer_endpoint_t *ep,
                                       qpeer_peer_listener_t *l, int version,
                                       const qpeer_peer_listener_options_t *o) {
  pl_state *s;
  int r;
  if (!ep || !qpeer__ep_of(ep) || !l || !o || version < 1 ||
      version > QPEER_PEER_LISTENER_OPTIONS_VERSION)
    return UV_EINVAL;
  if ((r = check_options(o)) != 0)
    return r;
  if (!(s = qpeer__calloc(1, sizeof(*s))))
    return UV_ENOMEM;
  if ((r = copy_options(s, o)) != 0) {
    free_state(s);
    return r;
  }
  s->ep = ep;
  s->loop = ep->loop;
  if ((r = uv_timer_init(s->loop, &s->refresh)) != 0) {
    free_state(s);
    return r;
  }
  s->refresh.data = s;
  uv_unref((uv_handle_t *)&s->refresh);
  if ((r = init_children(s, ep, o)) != 0) {
    init_abort(s);
    return r;
  }
  qpeer__defer_init(&s->refusal_task, deliver_refusals);
  qpeer__handle_init((qpeer_handle_t *)l, s->loop, QPEER_PEER_LISTENER);
  l->impl = s;
  s->h = l;
  return 0;
}

int qpeer_peer_listener_start(qpeer_peer_listener_t *l,
                              qpeer_peer_listener_cb cb) {
  pl_state *s = state_of(l);
  qpeer__ep *ep;
  qpeer_listen_options_t lo;
  int r;
  if (!s || !cb || s->closing)
    return UV_EINVAL;
  if (!(ep = qpeer__ep_of(s->ep)))
    return UV_EINVAL;
  if (s->started || ep->listening)
    return UV_EALREADY;
  qpeer_listen_options_default(&lo);
  lo.alpn = (const char *const *)s->alpn;
  lo.nalpn = s->o.nalpn;
  lo.allow_cb = on_allow;
  lo.require_client_identity = 1;
  if ((r = qpeer_endpoint_listen(s->ep, &lo, on_connection)) != 0) {
    if (ep->listening)
      qpeer__ep_unlisten(ep);
    return r;
  }
  ep->peer_listener = s;
  s->cb = cb;
  if (s->relay_init && (r = qpeer_relay_bind_start(&s->bind, on_bound)) != 0)
    goto fail;
  if (s->pm_init && (r = qpeer_portmap_start(&s->pm, on_portmap)) != 0)
    /* No gateway now is not fatal: the mapping is simply absent. */
    QPEER__LOG_DEBUG("listener: port mapping not started: %s",
                     qpeer_err_name(r));
  if ((r = qpeer__netwatch_init(s->loop, &s->nw, s->o.netwatch_interval_ms,
                                on_network, s)) != 0)
    goto fail;
  s->started = 1;
  /* The first gathering starts on the next loop iteration. */
  uv_timer_start(&s->refresh, on_refresh, 0, 0);
  return 0;
fail:
  if (s->relay_init)
    qpeer_relay_bind_stop(&s->bind);
  if (s->pm_init)
    qpeer_portmap_stop(&s->pm);
  ep->peer_listener = NULL;
  qpeer__ep_unlisten(ep);
  s->cb = NULL;
  return r;
}

/* close_step finishes the close once every child has closed. */
static void close_step(pl_state *s) {
  qpeer_peer_listener_t *h = s->h;
  qpeer_close_cb cb;
  if (s->pending > 0)
    return;
  free_state(s);
  h->impl = NULL;
  h->flags |= QPEER__HANDLE_CLOSED;
  cb = h->close_cb;
  if (cb)
    cb((qpeer_handle_t *)h);
}

static void child_closed(qpeer_handle_t *h) {
  pl_state *s = h->data;
  s->pending--;
  close_step(s);
}

static void refresh_closed(uv_handle_t *h) {
  pl_state *s = h->data;
  s->pending--;
  close_step(s);
}

static void nw_closed(qpeer__netwatch *nw) {
  pl_state *s = nw->ctx;
  s->pending--;
  close_step(s);
}

int qpeer__peer_listener_close(qpeer_peer_listener_t *l) {
  pl_state *s = l->impl;
  qpeer__ep *ep = qpeer__ep_of(s->ep);
  size_t i;
  s->closing = 1;
  if (ep && ep->peer_listener == s) {
    ep->peer_listener = NULL;
    qpeer__ep_unlisten(ep);
  }
  qpeer__defer_cancel(&s->refusal_task);
  for (i = 0; i < s->o.max_conns; i++)
    if (s->conns[i].conn) {
      qpeer__conn_unobserve(&s->conns[i].obs);
      s->conns[i].conn = NULL;
    }
  s->ntracked = 0;
  /* Every child counts until its close callback; the gathering's final
   * callback counts too. */
  s->pending = 1; /* the refresh timer */
  if (s->gathering) {
    s->pending++;
    qpeer_gather_cancel(&s->g);
  }
  if (s->relay_init) {
    s->pending++;
    s->bind.data = s;
    qpeer_close((qpeer_handle_t *)&s->bind, child_closed);
  }
  if (s->pm_init) {
    s->pending++;
    s->pm.data = s;
    qpeer_close((qpeer_handle_t *)&s->pm, child_closed);
  }
  if (s->nw.open) {
    s->pending++;
    qpeer__netwatch_close(&s->nw, nw_closed);
  }
  uv_close((uv_handle_t *)&s->refresh, refresh_closed);
  return 0;
}

/* ---- public calls -----------------------------------------------------------
 */

int qpeer_peer_listener_accept(qpeer_peer_listener_t *l, qpeer_conn_t *conn) {
  pl_state *s = state_of(l);
  pl_conn *pc = NULL;
  size_t i;
  int r;
  if (!s || !conn || s->closing || !s->started)
    return UV_EINVAL;
  for (i = 0; i < s->o.max_conns && !pc; i++)
    if (!s->conns[i].conn)
      pc = &s->conns[i];
  if (!pc)
    return UV_ENOSPC;
  if ((r = qpeer_endpoint_accept(s->ep, conn)) != 0)
    return r;
  memset(pc, 0, sizeof(*pc));
  pc->s = s;
  pc->conn = conn;
  qpeer__list_init(&pc->obs.link);
  pc->obs.ended = on_conn_ended;
  pc->obs.observed = on_conn_observed;
  qpeer__conn_observe(conn->impl, &pc->obs);
  s->ntracked++;
  s->stats.conns = s->ntracked;
  s->stats.accepted++;
  if (s->have_set)
    advertise(s, pc);
  return 0;
}

int qpeer_peer_listener_refresh(qpeer_peer_listener_t *l) {
  pl_state *s = state_of(l);
  if (!s || s->closing)
    return UV_EINVAL;
  if (!s->started)
    return UV_ENOTCONN;
  trigger(s);
  return 0;
}

int qpeer_peer_listener_add_address(qpeer_peer_listener_t *l,
                                    const struct sockaddr *addr,
                                    qpeer_candidate_type type) {
  pl_state *s = state_of(l);
  qpeer_candidate_t c;
  size_t i;
  if (!s || s->closing || !addr ||
      (type != QPEER_CANDIDATE_HOST && type != QPEER_CANDIDATE_SRFLX &&
       type != QPEER_CANDIDATE_MAPPED) ||
      qpeer__cand_init(&c, type, addr, NULL, NULL, 0, 0) != 0)
    return UV_EINVAL;
  for (i = 0; i < s->nstatic; i++)
    if (qpeer__addr_equal((struct sockaddr *)&s->statics[i].addr,
                          (struct sockaddr *)&c.addr))
      return UV_EEXIST;
  if (s->nstatic >= QPEER_PEER_LISTENER_MAX_STATIC)
    return UV_ENOSPC;
  s->statics[s->nstatic].addr = c.addr;
  s->statics[s->nstatic].type = type;
  s->nstatic++;
  trigger(s);
  return 0;
}

int qpeer_peer_listener_remove_address(qpeer_peer_listener_t *l,
                                       const struct sockaddr *addr) {
  pl_state *s = state_of(l);
  struct sockaddr_storage a;
  size_t i;
  if (!s || s->closing || !addr || !qpeer__addr_len(addr))
    return UV_EINVAL;
  qpeer__addr_normalize(&a, addr);
  for (i = 0; i < s->nstatic; i++) {
    if (!qpeer__addr_equal((struct sockaddr *)&s->statics[i].addr,
                           (struct sockaddr *)&a))
      continue;
    s->statics[i] = s->statics[--s->nstatic];
    trigger(s);
    return 0;
  }
  return UV_ENOENT;
}

static qpeer_ticket_addr_type ticket_type(qpeer_candidate_type t) {
  switch (t) {
  case QPEER_CANDIDATE_HOST:
    return QPEER_TICKET_ADDR_HOST;
  case QPEER_CANDIDATE_SRFLX:
    return QPEER_TICKET_ADDR_SRFLX;
  case QPEER_CANDIDATE_MAPPED:
    return QPEER_TICKET_ADDR_MAPPED;
  default:
    return QPEER_TICKET_ADDR_UNTYPED;
  }
}

int qpeer_peer_listener_get_ticket(const qpeer_peer_listener_t *l,
                                   qpeer_ticket_t *t) {
  pl_state *s = state_of(l);
  qpeer_identity_t *id;
  size_t i;
  if (!s || !t || !(id = qpeer_endpoint_get_identity(s->ep)))
    return UV_EINVAL;
  qpeer_ticket_init(t);
  t->peer_id = *qpeer_identity_get_peer_id(id);
  if (s->bound) {
    qpeer_ticket_add_typed_addr(t, (struct sockaddr *)&s->relay_addr,
                                QPEER_TICKET_ADDR_RELAY);
    if (s->relay_ticket)
      qpeer_ticket_add_relay(
          t, s->relay_url, s->relay_auth,
          s->relay_auth == QPEER_TICKET_AUTH_PIN ? &s->relay_pin : NULL);
  }
  for (i = 0; i < s->ncands && t->naddrs < QPEER_TICKET_MAX_ADDRS; i++) {
    qpeer_ticket_addr_type ty = ticket_type(s->cands[i].type);
    if (ty != QPEER_TICKET_ADDR_UNTYPED)
      qpeer_ticket_add_typed_addr(t, (struct sockaddr *)&s->cands[i].addr, ty);
  }
  return t->naddrs ? 0 : UV_EAGAIN;
}

int qpeer_peer_listener_get_candidates(const qpeer_peer_listener_t *l,
                                       qpeer_candidate_t *out, size_t max,
                                       size_t *pn) {
  const pl_state *s = state_of(l);
  if (!s || !pn || (max && !out))
    return UV_EINVAL;
  memcpy(out, s->cands, QPEER__MIN(max, s->ncands) * sizeof(*out));
  *pn = s->ncands;
  return 0;
}

int qpeer_peer_listener_get_stats(const qpeer_peer_listener_t *l,
                                  qpeer_peer_listener_stats_t *stats) {
  const pl_state *s = state_of(l);
  if (!s || !stats)
    return UV_EINVAL;
  *stats = s->stats;
  return 0;
}

const char *qpeer_peer_listener_event_name(qpeer_peer_listener_event ev) {
  switch (ev) {
  case QPEER_LISTENER_EV_CONNECTION:
    return "connection";
  case QPEER_LISTENER_EV_REFUSED:
    return "refused";
  case QPEER_LISTENER_EV_CANDIDATES:
    return "candidates";
  case QPEER_LISTENER_EV_RELAY:
    return "relay";
  case QPEER_LISTENER_EV_PORTMAP:
    return "portmap";
  case QPEER_LISTENER_EV_NETWORK:
    return "network";
  default:
    return "unknown";
  }
}

qpeer__netwatch *qpeer__peer_listener_netwatch(qpeer_peer_listener_t *l) {
  pl_state *s = state_of(l);
  return s && s->nw.open ? &s->nw : NULL;
}
