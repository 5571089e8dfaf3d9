/* SPDX-License-Identifier: MIT */
/*
 * Peer connect (see include/qpeer/peer.h and doc/peer-connect.md). Divided
 * into: relay aliases (shared socket-alias virtual interfaces), the race
 * (one library-owned connection per path; the winner's state is moved into
 * the caller's handle), the background upgrade (gather, punch, fallback,
 * re-probe with backoff) and the listener's advertisement helper.
 */
#include <string.h>

#include "core/addr.h"
#include "peer/connect.h"
#include "peer/netwatch.h"
#include "qpeer/peer.h"
#include "quic/handles.h"

/* ---- relay aliases ------------------------------------------------------ */

typedef struct pc_alias {
  qpeer__ep *ep;    /* the endpoint it is registered with */
  qpeer__vif vif;   /* the socket alias (vif.ctx marks it as ours) */
  unsigned refs;    /* users */
} pc_alias;

/* Marks the socket aliases this file made (vif.ctx), so they are found in
 * the endpoint's own interface list: no global state, and an alias never
 * outlives its endpoint's list. */
static const char alias_tag = 0;
static uint32_t alias_seq; /* address counter (atomic) */

static pc_alias *alias_acquire(qpeer__ep *ep, const struct sockaddr *relay) {
  qpeer__list *e;
  pc_alias *a;
  struct sockaddr_in6 *s6;
  int tries;
  for (e = ep->vifs.next; e != &ep->vifs; e = e->next) {
    qpeer__vif *v = QPEER__CONTAINER_OF(e, qpeer__vif, link);
    if (v->ctx == &alias_tag &&
        qpeer__addr_equal((struct sockaddr *)&v->alias_remote, relay)) {
      a = QPEER__CONTAINER_OF(v, pc_alias, vif);
      a->refs++;
      return a;
    }
  }
  if (!(a = qpeer__calloc(1, sizeof(*a))))
    return NULL;
  a->ep = ep;
  a->refs = 1;
  a->vif.socket_alias = 1;
  a->vif.ctx = (void *)&alias_tag;
  qpeer__list_init(&a->vif.link);
  qpeer__addr_normalize(&a->vif.alias_remote, relay);
  s6 = (struct sockaddr_in6 *)&a->vif.local;
  for (tries = 0; tries < 16; tries++) {
    uint32_t n = __atomic_add_fetch(&alias_seq, 1, __ATOMIC_RELAXED);
    memset(s6, 0, sizeof(*s6));
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(QPEER__PC_ALIAS_PORT);
    s6->sin6_addr.s6_addr[0] = 0x01; /* 100::/64 */
    s6->sin6_addr.s6_addr[11] = 0xc0;
    s6->sin6_addr.s6_addr[12] = (uint8_t)(n >> 24);
    s6->sin6_addr.s6_addr[13] = (uint8_t)(n >> 16);
    s6->sin6_addr.s6_addr[14] = (uint8_t)(n >> 8);
    s6->sin6_addr.s6_addr[15] = (uint8_t)n;
    if (qpeer__ep_add_vif(ep, &a->vif) == 0)
      return a;
  }
  qpeer__free(a);
  return NULL;
}

static void alias_release(pc_alias *a) {
  if (!a || --a->refs > 0)
    return;
  /* Unlinks it, unless the endpoint already did when it was freed. */
  qpeer__ep_remove_vif(a->ep, &a->vif);
  qpeer__free(a);
}

/* ---- state -------------------------------------------------------------- */

struct pc_state;

typedef struct pc_attempt {
  qpeer_conn_t h;                 /* library-owned connection handle */
  qpeer_connect_t req;            /* its connect request */
  struct sockaddr_storage remote; /* where it dials */
  int relay;                      /* the relay attempt */
  int running;                    /* connect request pending */
  int live;                       /* handle initialised, close not asked */
  int closing;                    /* close asked, close_cb pending */
  struct pc_state *s;             /* owner */
} pc_attempt;

typedef struct pc_state {
  qpeer_peer_connect_t *req;      /* the request (NULL once detached) */
  qpeer_endpoint_t *ep;           /* the endpoint */
  uv_loop_t *loop;                /* its loop */
  qpeer_conn_t *user;             /* the caller's handle */
  qpeer_peer_connect_options_t o; /* options (arrays below) */
  qpeer_peer_id_t peer_id;        /* pinned peer ID */
  char *alpn[QPEER__PC_MAX_ALPN]; /* ALPN copies */
  struct sockaddr_storage stun[QPEER_GATHER_MAX_STUN]; /* STUN copies */
  const struct sockaddr *stunp[QPEER_GATHER_MAX_STUN]; /* pointers */
  pc_attempt att[QPEER__PC_MAX_ATTEMPTS]; /* relay first, then direct */
  size_t natt;                            /* attempts planned */
  size_t next;                            /* next attempt to start */
  size_t nrunning;                        /* connect requests pending */
  size_t nclosing;                        /* attempt handles closing */
  int last_err;                           /* last attempt error */
  pc_alias *alias;                        /* the relay alias, or NULL */
  struct sockaddr_storage relay;          /* the relay address */
  uv_timer_t timer;                       /* stagger, then re-probe backoff */
  int timer_open;                         /* timer initialised, not closed */
  int completed;                          /* user cb ran (or runs) */
  int stopped;                            /* stop asked, or failed */
  int in_cb;                              /* inside the user's callback */
  int via_relay;                          /* the relay attempt won */
  /* upgrade */
  qpeer_gather_t gather; /* candidate gathering */
  int gathering;         /* gather pending */
  qpeer_punch_t punch;   /* punch request */
  int punching;          /* punch pending */
  uint32_t reprobes;     /* re-probes since the last upgrade */
  qpeer__conn_observer obs; /* told when the connection's state goes */
  /* network changes */
  qpeer__netwatch nw;    /* interface watch (while upgrading) */
  int nchild;            /* timer / watch closes pending */
  int reprobe_pending;   /* a change arrived while gathering or punching */
  int have_obs;          /* obs_addr is set */
  struct sockaddr_storage obs_addr; /* the address the peer last observed */
  uint64_t moved_ms;     /* uv_now of our last path change */
  qpeer_path_t punch_from; /* the path when the running punch started */
  uint64_t net_changes;  /* network changes acted on */
} pc_state;


static void timer_closed(uv_handle_t *h);
static void nw_closed(qpeer__netwatch *nw);

static void maybe_free(pc_state *s) {
  size_t i;
  if (!s->stopped || !s->completed || s->in_cb || s->nrunning || s->nclosing ||
      s->gathering || s->punching)
    return;
  if (s->timer_open) {
    s->timer_open = 0;
    s->nchild++;
    uv_close((uv_handle_t *)&s->timer, timer_closed);
  }
  if (s->nw.open) {
    s->nchild++;
    qpeer__netwatch_close(&s->nw, nw_closed);
  }
  if (s->nchild)
    return;
  qpeer__conn_unobserve(&s->obs);
  alias_release(s->alias);
  s->alias = NULL;
  if (s->req)
    s->req->impl = NULL;
  for (i = 0; i < QPEER__PC_MAX_ALPN; i++)
    qpeer__free(s->alpn[i]);
  qpeer__free(s);
}

static void timer_closed(uv_handle_t *h) {
  pc_state *s = h->data;
  s->nchild--;
  maybe_free(s);
}

static void nw_closed(qpeer__netwatch *nw) {
  pc_state *s = nw->ctx;
  s->nchild--;
  maybe_free(s);
}

/* ---- the race ----------------------------------------------------------- */

static void on_attempt(qpeer_connect_t *r, int status);
static void start_upgrade(pc_state *s);
static void on_conn_observed(qpeer__conn_observer *obs);

static void attempt_closed(qpeer_handle_t *h) {
  pc_attempt *a = QPEER__CONTAINER_OF((qpeer_conn_t *)h, pc_attempt, h);
  pc_state *s = a->s;
  a->closing = 0;
  s->nclosing--;
  if (a->relay && !(s->completed && s->via_relay) && s->alias) {
    alias_release(s->alias);
    s->alias = NULL;
  }
  maybe_free(s);
}

static void attempt_close(pc_attempt *a) {
  if (!a->live)
    return;
  a->live = 0;
  a->closing = 1;
  a->s->nclosing++;
  qpeer_close((qpeer_handle_t *)&a->h, attempt_closed);
}

static int attempt_start(pc_state *s, pc_attempt *a) {
  qpeer_connect_options_t co;
  int r;
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)&a->remote;
  co.local = a->relay ? (struct sockaddr *)&s->alias->vif.local : NULL;
  co.alpn = (const char *const *)s->alpn;
  co.nalpn = s->o.nalpn;
  co.auth = QPEER_AUTH_PEER_ID;
  co.peer_id = &s->peer_id;
  co.handshake_timeout_ms = s->o.handshake_timeout_ms;
  a->s = s;
  a->req.data = a;
  r = qpeer_connect(&a->req, s->ep, &a->h, &co, on_attempt);
  if (r != 0) {
    s->last_err = r;
    return r;
  }
  a->running = a->live = 1;
  s->nrunning++;
  if (s->req)
    s->req->attempts++;
  return 0;
}

static void complete(pc_state *s, int status) {
  qpeer_peer_connect_t *req = s->req;
  s->completed = 1;
  s->moved_ms = uv_now(s->loop);
  if (status != 0)
    s->stopped = 1; /* nothing to upgrade: release on our own */
  if (s->timer_open)
    uv_timer_stop(&s->timer);
  s->in_cb = 1;
  if (req)
    req->cb(req, status);
  s->in_cb = 0;
  if (status == 0 && s->via_relay && !s->stopped &&
      s->o.policy == QPEER_PREFER_DIRECT)
    start_upgrade(s);
  maybe_free(s);
}

/* Completes the race when nothing runs and nothing remains. */
static void race_check(pc_state *s) {
  if (!s->completed && s->nrunning == 0 && (s->stopped || s->next >= s->natt))
    complete(s, s->stopped ? UV_ECANCELED
                           : (s->last_err ? s->last_err : QPEER_ENOPATH));
}

static void on_stagger(uv_timer_t *t) {
  pc_state *s = t->data;
  if (s->completed || s->stopped)
    return;
  if (s->next < s->natt)
    attempt_start(s, &s->att[s->next++]);
  if (s->next < s->natt)
    uv_timer_start(&s->timer, on_stagger, s->o.stagger_ms, 0);
  else
    race_check(s);
}

/* Moves the winner's connection state into the caller's handle, exactly
 * as qpeer_endpoint_accept() binds an accepted one. */
/* The connection's state is going (closed by the user or the endpoint):
 * stop the background upgrade; pending gather/punch callbacks free it. */
static void on_conn_ended(qpeer__conn_observer *obs) {
  pc_state *s = QPEER__CONTAINER_OF(obs, pc_state, obs);
  s->stopped = 1;
  if (s->req) {
    s->req->impl = NULL;
    s->req = NULL;
  }
  if (s->timer_open)
    uv_timer_stop(&s->timer);
  if (s->gathering)
    qpeer_gather_cancel(&s->gather);
  maybe_free(s);
}

static void adopt(pc_state *s, pc_attempt *a) {
  qpeer__conn *c = a->h.impl;
  void *data = s->user->data;
  qpeer__handle_init((qpeer_handle_t *)s->user, s->loop, QPEER_CONN);
  s->user->data = data;
  s->user->impl = c;
  c->handle = s->user;
  a->h.impl = NULL;
  a->h.flags = 0;
  a->live = 0;
  qpeer__list_init(&s->obs.link);
  s->obs.ended = on_conn_ended;
  s->obs.observed = on_conn_observed;
  qpeer__conn_observe(c, &s->obs);
}

static void on_attempt(qpeer_connect_t *r, int status) {
  pc_attempt *a = r->data;
  pc_state *s = a->s;
  size_t i;
  a->running = 0;
  s->nrunning--;
  if (status == 0 && !s->completed && !s->stopped) {
    adopt(s, a);
    s->via_relay = a->relay;
    for (i = 0; i < s->natt; i++)
      attempt_close(&s->att[i]);
    s->next = s->natt;
    if (s->req) {
      s->req->conn = s->user;
      s->req->via_relay = a->relay;
      if (!a->relay)
        memset(&s->req->relay_path, 0, sizeof(s->req->relay_path));
    }
    if (!a->relay && s->alias && !s->att[0].closing && !s->att[0].live) {
      alias_release(s->alias);
      s->alias = NULL;
    }
    complete(s, 0);
    return;
  }
  if (status != 0 && status != UV_ECANCELED)
    s->last_err = status;
  attempt_close(a);
  if (!s->completed) {
    if (s->nrunning == 0 && s->next < s->natt && !s->stopped) {
      /* Nothing left in flight: do not wait for the stagger. */
      attempt_start(s, &s->att[s->next++]);
      if (s->next < s->natt)
        uv_timer_start(&s->timer, on_stagger, s->o.stagger_ms, 0);
    }
    race_check(s);
  }
  maybe_free(s);
}

/* ---- the background upgrade --------------------------------------------- */

static void start_gather(pc_state *s);

static unsigned punch_flags(const pc_state *s) {
  unsigned f = 0;
  if (s->o.flags & QPEER_PEER_ALLOW_LOOPBACK)
    f |= QPEER_PUNCH_ALLOW_LOOPBACK;
  if (s->o.flags & QPEER_PEER_ALLOW_LINK_LOCAL)
    f |= QPEER_PUNCH_ALLOW_LINK_LOCAL;
  return f;
}

static void on_reprobe(uv_timer_t *t) {
  pc_state *s = t->data;
  if (!s->stopped && !s->gathering && !s->punching)
    start_gather(s);
}

/* A network change: probe for a direct path at once, backoff reset; one
 * that arrives while gathering or punching runs after it. */
static void network_change(pc_state *s, const char *why) {
  if (s->stopped || !s->timer_open)
    return;
  QPEER__LOG_DEBUG("peer connect: %s: re-probing", why);
  s->net_changes++;
  s->reprobes = 0;
  if (s->gathering || s->punching) {
    s->reprobe_pending = 1;
    return;
  }
  uv_timer_start(&s->timer, on_reprobe, 0, 0);
}

/* Runs a re-probe that a network change left pending. Returns nonzero if
 * one was pending. */
static int run_pending(pc_state *s) {
  if (!s->reprobe_pending || s->stopped || !s->timer_open)
    return 0;
  s->reprobe_pending = 0;
  s->reprobes = 0;
  uv_timer_start(&s->timer, on_reprobe, 0, 0);
  return 1;
}

static void on_network(qpeer__netwatch *nw) {
  network_change(nw->ctx, "interface set changed");
}

static int path_equal(const qpeer_path_t *a, const qpeer_path_t *b) {
  return qpeer__addr_equal((const struct sockaddr *)&a->local,
                           (const struct sockaddr *)&b->local) &&
         qpeer__addr_equal((const struct sockaddr *)&a->remote,
                           (const struct sockaddr *)&b->remote);
}

/* How long after our own path change a new observed address is taken as
 * the peer seeing the new path rather than a NAT rebinding. */
#define PC_OBS_SETTLE_MS 1000

/* The peer reported the address it sees for us. A new address while our
 * path has been stable is a NAT rebinding (our mapping changed); the
 * first report, and one that follows our own migration, are only
 * recorded. */
static void on_conn_observed(qpeer__conn_observer *obs) {
  pc_state *s = QPEER__CONTAINER_OF(obs, pc_state, obs);
  qpeer__conn *c = s->user->impl;
  int rebinding;
  if (s->stopped || !c || !c->have_observed)
    return;
  rebinding = s->have_obs &&
              uv_now(s->loop) - s->moved_ms >= PC_OBS_SETTLE_MS &&
              !qpeer__addr_equal((struct sockaddr *)&c->observed,
                                 (struct sockaddr *)&s->obs_addr);
  s->have_obs = 1;
  s->obs_addr = c->observed;
  if (rebinding)
    network_change(s, "observed address changed");
}

static void schedule_reprobe(pc_state *s) {
  uint64_t d;
  if (s->stopped || s->reprobes >= s->o.max_reprobes || !s->timer_open)
    return;
  d = s->o.reprobe_min_ms << QPEER__MIN(s->reprobes, 20u);
  if (d > s->o.reprobe_max_ms)
    d = s->o.reprobe_max_ms;
  s->reprobes++;
  uv_timer_start(&s->timer, on_reprobe, d, 0);
}

static void on_conn_ended(qpeer__conn_observer *obs);

/* The upgrade attached to |conn|: found through the connection's observer
 * list (each upgrade observes its connection). */
static pc_state *state_of_conn(const qpeer_conn_t *conn) {
  qpeer__conn *c = conn ? conn->impl : NULL;
  qpeer__list *e;
  if (!c)
    return NULL;
  for (e = c->observers.next; e != &c->observers; e = e->next) {
    qpeer__conn_observer *o = QPEER__CONTAINER_OF(e, qpeer__conn_observer, link);
    if (o->ended == on_conn_ended)
      return QPEER__CONTAINER_OF(o, pc_state, obs);
  }
  return NULL;
}

static void on_fallback(qpeer_conn_t *conn, int status) {
  pc_state *s = state_of_conn(conn);
  if (!s || s->stopped)
    return;
  s->moved_ms = uv_now(s->loop);
  if (status == 0 && s->req)
    s->req->fallbacks++;
  schedule_reprobe(s);
}

static void on_punched(qpeer_punch_t *p, int status) {
  pc_state *s = p->data;
  s->punching = 0;
  if (s->stopped) {
    maybe_free(s);
    return;
  }
  if (status == 0) {
    qpeer_path_t now;
    if (s->req)
      s->req->upgrades++;
    s->reprobes = 0;
    if (qpeer_conn_get_path(s->user, &now) == 0 &&
        !path_equal(&now, &s->punch_from))
      s->moved_ms = uv_now(s->loop);
    qpeer_conn_set_fallback(s->user, (struct sockaddr *)&s->alias->vif.local,
                            (struct sockaddr *)&s->relay,
                            s->o.fallback_timeout_ms, on_fallback);
    run_pending(s);
    return;
  }
  if (status == UV_ECANCELED)
    return; /* the connection ended */
  if (!run_pending(s))
    schedule_reprobe(s);
}

static void start_punch(pc_state *s) {
  int r;
  s->punch.data = s;
  qpeer_conn_get_path(s->user, &s->punch_from);
  r = qpeer_punch(&s->punch, s->user, s->gather.cands, s->gather.ncands,
                  punch_flags(s), on_punched);
  if (r == 0) {
    s->punching = 1;
    if (s->req) {
      s->req->punches++;
      s->req->punch_started_ms = uv_now(s->loop);
    }
    return;
  }
  QPEER__LOG_DEBUG("peer connect: punch not started: %s", qpeer_err_name(r));
  if (!run_pending(s) && r == UV_EBUSY)
    schedule_reprobe(s);
}

static void on_gathered(qpeer_gather_t *g, int status,
                        const qpeer_candidate_t *c) {
  pc_state *s = g->data;
  (void)c;
  if (status == 0)
    return;
  s->gathering = 0;
  if (s->stopped || status != UV_EOF) {
    if (!s->stopped && !run_pending(s))
      schedule_reprobe(s);
    maybe_free(s);
    return;
  }
  start_punch(s);
}

static void start_gather(pc_state *s) {
  qpeer_gather_options_t go;
  qpeer_conn_t *conns[1];
  int r;
  qpeer_gather_options_default(&go);
  conns[0] = s->user;
  go.conns = conns;
  go.nconns = 1;
  go.stun_servers = s->stunp;
  go.nstun = s->o.nstun;
  go.include_loopback = !!(s->o.flags & QPEER_PEER_ALLOW_LOOPBACK);
  go.include_link_local = !!(s->o.flags & QPEER_PEER_ALLOW_LINK_LOCAL);
  go.deadline_ms = s->o.gather_deadline_ms;
  s->gather.data = s;
  r = qpeer_gather(&s->gather, s->ep, &go, on_gathered);
  if (r == 0)
    s->gathering = 1;
  else
    schedule_reprobe(s);
}

static void start_upgrade(pc_state *s) {
  int r = qpeer__netwatch_init(s->loop, &s->nw, s->o.netwatch_interval_ms,
                               on_network, s);
  if (r != 0)
    QPEER__LOG_DEBUG("peer connect: no interface watch: %s",
                     qpeer_err_name(r));
  start_gather(s);
}

/* ---- public API --------------------------------------------------------- */

/* The size of the options struct of |version|. */
static size_t options_size(int version) {
  return version >= QPEER_PEER_CONNECT_OPTIONS_V2
             ? sizeof(qpeer_peer_connect_options_t)
             : offsetof(qpeer_peer_connect_options_t, netwatch_interval_ms);
}

void qpeer_peer_connect_options_default_versioned(
    int version, qpeer_peer_connect_options_t *o) {
  memset(o, 0, options_size(version));
  o->policy = QPEER_PREFER_DIRECT;
  o->stagger_ms = 50;
  o->fallback_timeout_ms = 3000;
  o->gather_deadline_ms = 2000;
  o->max_reprobes = 5;
  o->reprobe_min_ms = 1000;
  o->reprobe_max_ms = 30000;
  if (version >= QPEER_PEER_CONNECT_OPTIONS_V2)
    o->netwatch_interval_ms = QPEER__NETWATCH_DEFAULT_MS;
}

static int family_usable(qpeer__ep *ep, const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return ep->udp.family == AF_INET || ep->udp.v4mapped;
  return sa->sa_family == AF_INET6 && ep->udp.family == AF_INET6;
}

static int plan(pc_state *s, qpeer__ep *ep, const qpeer_ticket_t *t) {
  size_t i;
  int have_relay = 0;
  for (i = 0; i < t->naddrs && i < QPEER_TICKET_MAX_ADDRS; i++) {
    const qpeer_ticket_addr_t *ta = &t->addrs[i];
    if (ta->type == QPEER_TICKET_ADDR_RELAY && !have_relay &&
        s->o.policy != QPEER_DIRECT_ONLY &&
        family_usable(ep, (const struct sockaddr *)&ta->addr)) {
      have_relay = 1;
      qpeer__addr_normalize(&s->relay, (const struct sockaddr *)&ta->addr);
    }
  }
  if (have_relay) {
    pc_attempt *a = &s->att[s->natt++];
    a->relay = 1;
    memcpy(&a->remote, &s->relay, sizeof(a->remote));
  }
  if (s->o.policy != QPEER_RELAY_ONLY) {
    for (i = 0; i < t->naddrs && i < QPEER_TICKET_MAX_ADDRS; i++) {
      const qpeer_ticket_addr_t *ta = &t->addrs[i];
      if (ta->type == QPEER_TICKET_ADDR_RELAY ||
          !family_usable(ep, (const struct sockaddr *)&ta->addr))
        continue;
      qpeer__addr_normalize(&s->att[s->natt++].remote,
                            (const struct sockaddr *)&ta->addr);
    }
  }
  return have_relay;
}

int qpeer_peer_connect_versioned(qpeer_peer_connect_t *req,
                                 qpeer_endpoint_t *eh, qpeer_conn_t *conn,
                                 const qpeer_ticket_t *t, int version,
                                 const qpeer_peer_connect_options_t *o,
                                 qpeer_peer_connect_cb cb) {
  static const qpeer_peer_id_t zero;
  qpeer__ep *ep;
  pc_state *s;
  size_t i;
  int r;
  void *data;
  if (!req || !eh || !(ep = qpeer__ep_of(eh)) || !conn || !t || !o || !cb ||
      version < 1 || version > QPEER_PEER_CONNECT_OPTIONS_VERSION || !o->alpn ||
      o->nalpn == 0 || o->nalpn > QPEER__PC_MAX_ALPN ||
      o->nstun > QPEER_GATHER_MAX_STUN || (o->nstun && !o->stun_servers) ||
      o->policy > QPEER_RELAY_ONLY || !memcmp(&t->peer_id, &zero, sizeof(zero)))
    return UV_EINVAL;
  if (!(s = qpeer__calloc(1, sizeof(*s))))
    return UV_ENOMEM;
  memcpy(&s->o, o, options_size(version));
  s->o.netwatch_interval_ms = qpeer__netwatch_clamp(
      version >= QPEER_PEER_CONNECT_OPTIONS_V2 ? o->netwatch_interval_ms : 0);
  if (!s->o.stagger_ms)
    s->o.stagger_ms = 50;
  if (!s->o.fallback_timeout_ms)
    s->o.fallback_timeout_ms = 3000;
  if (!s->o.gather_deadline_ms)
    s->o.gather_deadline_ms = 2000;
  if (!s->o.reprobe_min_ms)
    s->o.reprobe_min_ms = 1000;
  if (s->o.reprobe_max_ms < s->o.reprobe_min_ms)
    s->o.reprobe_max_ms = QPEER__MAX(s->o.reprobe_min_ms, 30000);
  s->ep = eh;
  s->loop = eh->loop;
  s->user = conn;
  s->peer_id = t->peer_id;
  s->req = req;
  for (i = 0; i < o->nalpn; i++)
    if (!o->alpn[i] || !(s->alpn[i] = qpeer__strdup(o->alpn[i]))) {
      r = o->alpn[i] ? UV_ENOMEM : UV_EINVAL;
      goto fail;
    }
  for (i = 0; i < o->nstun; i++) {
    if (!o->stun_servers[i]) {
      r = UV_EINVAL;
      goto fail;
    }
    qpeer__addr_normalize(&s->stun[i], o->stun_servers[i]);
    s->stunp[i] = (const struct sockaddr *)&s->stun[i];
  }
  s->o.alpn = NULL;
  s->o.stun_servers = NULL;
  plan(s, ep, t);
  if (s->natt == 0) {
    r = QPEER_ENOPATH;
    goto fail;
  }
  if (s->att[0].relay &&
      !(s->alias = alias_acquire(ep, (struct sockaddr *)&s->relay))) {
    r = UV_ENOMEM;
    goto fail;
  }
  data = req->data;
  memset(req, 0, sizeof(*req));
  req->data = data;
  req->type = QPEER_CONNECT;
  req->handle = eh;
  req->cb = cb;
  req->impl = s;
  if (s->alias) {
    memcpy(&req->relay_path.local, &s->alias->vif.local,
           sizeof(req->relay_path.local));
    memcpy(&req->relay_path.remote, &s->relay, sizeof(s->relay));
  }
  /* The relay attempt and the first direct one start at once. */
  for (i = 0; i < s->natt && i < (s->att[0].relay ? 2u : 1u); i++)
    attempt_start(s, &s->att[s->next++]);
  while (s->nrunning == 0 && s->next < s->natt)
    attempt_start(s, &s->att[s->next++]);
  if (s->nrunning == 0) {
    r = s->last_err ? s->last_err : QPEER_ENOPATH;
    req->impl = NULL;
    goto fail;
  }
  uv_timer_init(s->loop, &s->timer);
  s->timer.data = s;
  s->timer_open = 1;
  if (s->next < s->natt)
    uv_timer_start(&s->timer, on_stagger, s->o.stagger_ms, 0);
  return 0;
fail:
  alias_release(s->alias);
  for (i = 0; i < QPEER__PC_MAX_ALPN; i++)
    qpeer__free(s->alpn[i]);
  qpeer__free(s);
  return r;
}

int qpeer_peer_connect_stop(qpeer_peer_connect_t *req) {
  pc_state *s;
  size_t i;
  if (!req || !(s = req->impl) || s->stopped)
    return UV_EINVAL;
  s->stopped = 1;
  if (!s->completed) {
    /* Cancel the race; the last attempt's callback completes it. */
    if (s->timer_open)
      uv_timer_stop(&s->timer);
    for (i = 0; i < s->natt; i++)
      if (s->att[i].running)
        attempt_close(&s->att[i]);
    return 0;
  }
  s->req = NULL;
  req->impl = NULL;
  qpeer__conn_unobserve(&s->obs);
  if (s->gathering)
    qpeer_gather_cancel(&s->gather);
  if (s->via_relay && s->user->impl)
    qpeer_conn_set_fallback(s->user, NULL, NULL, 0, NULL);
  maybe_free(s);
  return 0;
}

/* ---- listen side -------------------------------------------------------- */

static void on_adv_gathered(qpeer_gather_t *g, int status,
                            const qpeer_candidate_t *c) {
  qpeer_peer_advertise_t *req = g->data;
  unsigned f = 0;
  int r;
  (void)c;
  if (status == 0)
    return;
  if (status == UV_EOF) {
    if (req->flags & QPEER_PEER_ALLOW_LOOPBACK)
      f |= QPEER_PUNCH_ALLOW_LOOPBACK;
    if (req->flags & QPEER_PEER_ALLOW_LINK_LOCAL)
      f |= QPEER_PUNCH_ALLOW_LINK_LOCAL;
    req->ncands = g->ncands;
    r = qpeer_conn_advertise(req->conn, g->cands, g->ncands, f);
  } else {
    r = status;
  }
  req->cb(req, r);
}

int qpeer_peer_advertise(qpeer_peer_advertise_t *req, qpeer_conn_t *conn,
                         const struct sockaddr *const *stun, size_t nstun,
                         unsigned int flags, qpeer_peer_advertise_cb cb) {
  qpeer_gather_options_t go;
  void *data;
  int r;
  if (!req || !conn || !conn->impl || !cb || (nstun && !stun) ||
      nstun > QPEER_GATHER_MAX_STUN)
    return UV_EINVAL;
  if (!qpeer_conn_is_server(conn))
    return UV_ENOTSUP;
  data = req->data;
  memset(req, 0, sizeof(*req));
  req->data = data;
  req->type = QPEER_GATHER;
  req->handle = conn;
  req->cb = cb;
  req->conn = conn;
  req->flags = flags;
  qpeer_gather_options_default(&go);
  go.stun_servers = stun;
  go.nstun = nstun;
  go.include_loopback = !!(flags & QPEER_PEER_ALLOW_LOOPBACK);
  go.include_link_local = !!(flags & QPEER_PEER_ALLOW_LINK_LOCAL);
  req->gather.data = req;
  r = qpeer_gather(&req->gather, qpeer_conn_get_endpoint(conn), &go,
                   on_adv_gathered);
  return r;
}

qpeer__netwatch *qpeer__peer_connect_netwatch(qpeer_peer_connect_t *req) {
  pc_state *s = req ? req->impl : NULL;
  return s && s->nw.open ? &s->nw : NULL;
}

uint64_t qpeer__peer_connect_net_changes(const qpeer_peer_connect_t *req) {
  const pc_state *s = req ? req->impl : NULL;
  return s ? s->net_changes : 0;
}
