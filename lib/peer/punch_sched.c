/* SPDX-License-Identifier: MIT */
/*
 * The hole-punch schedulers (see punch_sched.h and
 * doc/internals/punch_sched.md). Divisions, in order: the target policy;
 * client options and pairs; the client's round machinery (round start,
 * probes, validations, pass end); the client's inputs (results, probes,
 * restart); the server responder. Pure: no I/O, no libuv calls, no clock
 * (every function takes |now|), no allocation.
 */
#include <arpa/inet.h>
#include <string.h>

#include "core/addr.h"
#include "internal.h"
#include "peer/punch_sched.h"

/* Pair id used by actions that concern no pair. */
#define NO_PAIR (-1)
/* Remote sequence number of a peer-reflexive pair (never sent). */
#define PRFLX_SEQ UINT64_MAX

/* sa_of views a sockaddr_storage as a sockaddr. */
static const struct sockaddr *sa_of(const struct sockaddr_storage *ss) {
  return (const struct sockaddr *)(const void *)ss;
}

/* ---- The target policy. ---- */

int qpeer__punch_target_ok(const struct sockaddr *sa, unsigned allow) {
  int cls;
  if (sa == NULL || !qpeer__cand_addr_usable(sa))
    return 0;
  cls = qpeer__cand_addr_class(sa);
  if (cls == QPEER__CAND_CLASS_LOOPBACK &&
      !(allow & QPEER__PUNCH_ALLOW_LOOPBACK))
    return 0;
  if (cls == QPEER__CAND_CLASS_LINK_LOCAL &&
      !(allow & QPEER__PUNCH_ALLOW_LINK_LOCAL))
    return 0;
  if (qpeer__addr_port(sa) < 1024 && !(allow & QPEER__PUNCH_ALLOW_LOW_PORTS))
    return 0;
  return 1;
}

/* ---- Client options and pairs. ---- */

void qpeer__punch_opts_default(qpeer__punch_opts *o) {
  memset(o, 0, sizeof(*o));
  o->concurrency = 4;
  o->max_passes = 3;
  o->probes_per_round = 3;
  o->probe_interval = 50 * QPEER__PUNCH_MS;
  o->max_probes_per_addr = 9;
  o->min_timeout = 300 * QPEER__PUNCH_MS;
  o->max_timeout = 3000 * QPEER__PUNCH_MS;
  o->backoff = 1000 * QPEER__PUNCH_MS;
  o->reprobe = 30000 * QPEER__PUNCH_MS;
  o->rtt = 333 * QPEER__PUNCH_MS;
}

/* fill_defaults replaces the zero fields of |o| with defaults and clamps. */
static void fill_defaults(qpeer__punch_opts *o) {
  qpeer__punch_opts d;
  qpeer__punch_opts_default(&d);
#define DEF(f)                                                                 \
  if (o->f == 0)                                                               \
  o->f = d.f
  DEF(concurrency);
  DEF(max_passes);
  DEF(probes_per_round);
  DEF(probe_interval);
  DEF(max_probes_per_addr);
  DEF(min_timeout);
  DEF(max_timeout);
  DEF(backoff);
  DEF(reprobe);
  DEF(rtt);
#undef DEF
  if (o->concurrency > QPEER__PUNCH_MAX_CONCURRENCY)
    o->concurrency = QPEER__PUNCH_MAX_CONCURRENCY;
  if (o->max_timeout < o->min_timeout)
    o->max_timeout = o->min_timeout;
  if (o->max_passes > 32)
    o->max_passes = 32; /* keeps the backoff shift in range */
}

void qpeer__punch_sched_init(qpeer__punch_sched *s,
                             const qpeer__punch_opts *o) {
  memset(s, 0, sizeof(*s));
  if (o != NULL)
    s->o = *o;
  fill_defaults(&s->o);
  s->rtt = s->o.rtt;
  s->state = QPEER__PS_IDLE;
  s->validating = NO_PAIR;
  s->success = NO_PAIR;
}

void qpeer__punch_sched_set_rtt(qpeer__punch_sched *s, uint64_t rtt) {
  if (rtt > 0)
    s->rtt = rtt;
}

uint64_t qpeer__punch_sched_timeout(const qpeer__punch_sched *s) {
  uint64_t t = 3 * s->rtt + 2 * s->o.probe_interval;
  if (t < s->o.min_timeout)
    t = s->o.min_timeout;
  if (t > s->o.max_timeout)
    t = s->o.max_timeout;
  return t;
}

int qpeer__punch_sched_validating(const qpeer__punch_sched *s) {
  return s->validating;
}

/* find_pair returns the id of the pair with |base| and |remote| (live or
 * not), or NO_PAIR. */
static int find_pair(const qpeer__punch_sched *s, const struct sockaddr *base,
                     const struct sockaddr *remote) {
  size_t i;
  for (i = 0; i < s->npairs; i++)
    if (qpeer__addr_equal(sa_of(&s->pairs[i].pair.base), base) &&
        qpeer__addr_equal(sa_of(&s->pairs[i].pair.remote), remote))
      return (int)i;
  return NO_PAIR;
}

/* any_live returns nonzero if some pair is live. */
static int any_live(const qpeer__punch_sched *s) {
  size_t i;
  for (i = 0; i < s->npairs; i++)
    if (s->pairs[i].live)
      return 1;
  return 0;
}

/* insert_pair stores |p| as a live pair (reviving a retired slot with the
 * same path) and returns its id, or UV_ENOSPC. */
static int insert_pair(qpeer__punch_sched *s, const qpeer__cand_pair *p,
                       int prflx) {
  qpeer__punch_pair_state *ps;
  int id = find_pair(s, sa_of(&p->base), sa_of(&p->remote));
  if (id == NO_PAIR) {
    if (s->npairs == QPEER__PUNCH_MAX_PAIRS)
      return UV_ENOSPC;
    id = (int)s->npairs++;
  }
  ps = &s->pairs[id];
  memset(ps, 0, sizeof(*ps));
  ps->pair = *p;
  ps->live = 1;
  ps->prflx = (uint8_t)prflx;
  if (s->state == QPEER__PS_IDLE) {
    s->state = QPEER__PS_ROUND;
    s->round_at = 0;
  }
  return id;
}

int qpeer__punch_sched_add_pair(qpeer__punch_sched *s,
                                const qpeer__cand_pair *p) {
  qpeer__cand_pair copy;
  int id;
  size_t k;

  if (p->base.ss_family != AF_INET && p->base.ss_family != AF_INET6)
    return UV_EINVAL;
  if (p->remote.ss_family != p->base.ss_family ||
      !qpeer__punch_target_ok(sa_of(&p->remote), s->o.allow) ||
      p->ntargets > QPEER__PAIR_MAX_TARGETS)
    return UV_EINVAL;
  for (k = 0; k < p->ntargets; k++)
    if (p->targets[k].ss_family != AF_INET &&
        p->targets[k].ss_family != AF_INET6)
      return UV_EINVAL;
  id = find_pair(s, sa_of(&p->base), sa_of(&p->remote));
  if (id != NO_PAIR && s->pairs[id].live)
    return UV_EEXIST;
  copy = *p;
  return insert_pair(s, &copy, 0);
}

/* retire takes pair |id| out of the attempt. */
static void retire(qpeer__punch_sched *s, int id) {
  qpeer__punch_pair_state *ps = &s->pairs[id];
  ps->live = 0;
  ps->in_round = 0;
  ps->probes_left = 0;
  ps->heard = 0;
  if (s->validating == id)
    s->validating = NO_PAIR;
}

size_t qpeer__punch_sched_remove_remote(qpeer__punch_sched *s, uint64_t seq) {
  size_t i, n = 0;
  for (i = 0; i < s->npairs; i++) {
    qpeer__punch_pair_state *ps = &s->pairs[i];
    if (ps->live && !ps->prflx && ps->pair.remote_seq == seq) {
      retire(s, (int)i);
      n++;
    }
  }
  return n;
}

/* ---- The client's round machinery. ---- */

/* better returns nonzero if pair |a| should go before pair |b|: heard
 * first, then higher priority, then lower id. */
static int better(const qpeer__punch_sched *s, int a, int b) {
  const qpeer__punch_pair_state *x = &s->pairs[a], *y = &s->pairs[b];
  if (x->heard != y->heard)
    return x->heard > y->heard;
  if (x->pair.priority != y->pair.priority)
    return x->pair.priority > y->pair.priority;
  return a < b;
}

/* best_pair returns the best live, untried pair that is in the round
 * (|in_round| nonzero), heard (|heard_only|), or neither, or NO_PAIR. */
static int best_pair(const qpeer__punch_sched *s, int in_round, int heard_only,
                     int exclude_round) {
  int best = NO_PAIR;
  size_t i;
  for (i = 0; i < s->npairs; i++) {
    const qpeer__punch_pair_state *ps = &s->pairs[i];
    if (!ps->live || ps->tried || (in_round && !ps->in_round) ||
        (exclude_round && ps->in_round) || (heard_only && !ps->heard))
      continue;
    if (best == NO_PAIR || better(s, (int)i, best))
      best = (int)i;
  }
  return best;
}

/* budget_of returns the probe budget entry of |addr| (created if needed),
 * or NULL when the table is full. */
static qpeer__punch_budget *budget_of(qpeer__punch_sched *s,
                                      const struct sockaddr *addr) {
  size_t i;
  for (i = 0; i < s->nbudget; i++)
    if (qpeer__addr_equal(sa_of(&s->budget[i].addr), addr))
      return &s->budget[i];
  if (s->nbudget == QPEER__PUNCH_MAX_PAIRS)
    return NULL;
  memset(&s->budget[s->nbudget], 0, sizeof(s->budget[0]));
  qpeer__addr_normalize(&s->budget[s->nbudget].addr, addr);
  return &s->budget[s->nbudget++];
}

/* start_round picks the round's pairs and queues its PUNCH_ME_NOW.
 * Returns 0 if no untried live pair is left in this pass. */
static int start_round(qpeer__punch_sched *s, uint64_t now) {
  uint32_t budget = s->o.concurrency, npairs = 0;
  size_t i;
  int id;

  s->npunch = 0;
  s->punch_next = 0;
  while (npairs < s->o.concurrency && (id = best_pair(s, 0, 0, 1)) != NO_PAIR) {
    qpeer__punch_pair_state *ps = &s->pairs[id];
    size_t take = ps->pair.ntargets;
    if (npairs > 0 && take > budget)
      break;
    if (take > budget)
      take = budget;
    for (i = 0; i < take; i++) {
      s->punch_q[s->npunch].pair = (uint8_t)id;
      s->punch_q[s->npunch].target = (uint8_t)i;
      s->npunch++;
    }
    budget -= (uint32_t)take;
    ps->in_round = 1;
    npairs++;
  }
  if (npairs == 0)
    return 0;
  s->round++;
  s->fire_at = s->npunch > 0 ? now + s->rtt / 2 : now;
  for (i = 0; i < s->npairs; i++) {
    qpeer__punch_pair_state *ps = &s->pairs[i];
    if (ps->in_round) {
      ps->probes_left = s->o.probes_per_round;
      ps->next_probe = s->fire_at;
    }
  }
  s->state = QPEER__PS_PUNCH;
  return 1;
}

/* end_round takes every pair out of the round. */
static void end_round(qpeer__punch_sched *s, uint64_t now) {
  size_t i;
  for (i = 0; i < s->npairs; i++) {
    s->pairs[i].in_round = 0;
    s->pairs[i].probes_left = 0;
  }
  s->state = QPEER__PS_ROUND;
  s->round_at = now;
}

/* end_pass closes a sweep over the checklist. Returns 1 if another pass
 * follows (after a backoff), 0 if the attempt failed (|*a| is DONE). */
static int end_pass(qpeer__punch_sched *s, uint64_t now,
                    qpeer__punch_action *a) {
  size_t i;
  for (i = 0; i < s->npairs; i++)
    s->pairs[i].tried = 0;
  s->pass++;
  if (s->pass >= s->o.max_passes) {
    s->state = QPEER__PS_FAILED;
    s->retry_at = now + s->o.reprobe;
    a->kind = QPEER__PUNCH_DONE;
    a->at = s->retry_at;
    return 0;
  }
  s->state = QPEER__PS_ROUND;
  s->round_at = now + (s->o.backoff << (s->pass - 1));
  return 1;
}

/* start_validation emits START_VALIDATION for pair |id|. */
static qpeer__punch_action_kind start_validation(qpeer__punch_sched *s, int id,
                                                 uint64_t now,
                                                 qpeer__punch_action *a) {
  qpeer__punch_pair_state *ps = &s->pairs[id];
  s->validating = id;
  s->deadline = now + qpeer__punch_sched_timeout(s);
  s->validations++;
  ps->heard = 0;
  a->kind = QPEER__PUNCH_START_VALIDATION;
  a->pair = id;
  a->local = ps->pair.base;
  a->remote = ps->pair.remote;
  return a->kind;
}

/* emit_punch emits the next queued PUNCH_ME_NOW, skipping retired pairs.
 * Returns 0 when the queue is empty. */
static int emit_punch(qpeer__punch_sched *s, qpeer__punch_action *a) {
  while (s->punch_next < s->npunch) {
    int id = s->punch_q[s->punch_next].pair;
    size_t t = s->punch_q[s->punch_next].target;
    const qpeer__punch_pair_state *ps = &s->pairs[id];
    s->punch_next++;
    if (!ps->live || !ps->in_round)
      continue;
    a->kind = QPEER__PUNCH_SEND_PUNCH_ME_NOW;
    a->pair = id;
    a->round = s->round;
    a->remote_seq = ps->pair.remote_seq;
    a->local = ps->pair.targets[t];
    s->punches_sent++;
    return 1;
  }
  return 0;
}

/* emit_probe emits one due raw probe, if any (pairs in id order), and
 * returns 1; else 0. Probes over an address's budget are dropped. */
static int emit_probe(qpeer__punch_sched *s, uint64_t now,
                      qpeer__punch_action *a) {
  size_t i;
  for (i = 0; i < s->npairs; i++) {
    qpeer__punch_pair_state *ps = &s->pairs[i];
    qpeer__punch_budget *b;
    if (!ps->live || !ps->in_round || ps->probes_left == 0 ||
        ps->next_probe > now)
      continue;
    b = budget_of(s, sa_of(&ps->pair.remote));
    if (b == NULL || b->sent >= s->o.max_probes_per_addr) {
      ps->probes_left = 0;
      continue;
    }
    b->sent++;
    ps->probes_left--;
    ps->next_probe += s->o.probe_interval;
    s->probes_sent++;
    a->kind = QPEER__PUNCH_SEND_PROBE;
    a->pair = (int)i;
    a->local = ps->pair.base;
    a->remote = ps->pair.remote;
    return 1;
  }
  return 0;
}

/* next_wake returns the earliest time something is due in FIRE. */
static uint64_t next_wake(const qpeer__punch_sched *s, uint64_t now) {
  uint64_t t = UINT64_MAX;
  size_t i;
  if (now < s->fire_at)
    t = s->fire_at;
  if (s->validating != NO_PAIR && s->deadline < t)
    t = s->deadline;
  for (i = 0; i < s->npairs; i++) {
    const qpeer__punch_pair_state *ps = &s->pairs[i];
    if (ps->live && ps->in_round && ps->probes_left > 0 && ps->next_probe < t)
      t = ps->next_probe;
  }
  return t;
}

/* step_fire advances the FIRE state. Returns 1 with |*a| set, or 0 when
 * the round is over (the caller goes on with the next). */
static int step_fire(qpeer__punch_sched *s, uint64_t now,
                     qpeer__punch_action *a) {
  int id;
  if (s->validating != NO_PAIR && now >= s->deadline) {
    s->pairs[s->validating].tried = 1;
    s->validating = NO_PAIR;
  }
  if (now >= s->fire_at && emit_probe(s, now, a))
    return 1;
  if (s->validating == NO_PAIR && now >= s->fire_at) {
    id = best_pair(s, 1, 0, 0);
    if (id == NO_PAIR) {
      end_round(s, now);
      return 0;
    }
    start_validation(s, id, now, a);
    return 1;
  }
  a->kind = QPEER__PUNCH_WAIT;
  a->at = next_wake(s, now);
  return 1;
}

/* fill_done sets |*a| to DONE for the current outcome. */
static void fill_done(const qpeer__punch_sched *s, qpeer__punch_action *a) {
  a->kind = QPEER__PUNCH_DONE;
  if (s->state == QPEER__PS_SUCCESS) {
    const qpeer__punch_pair_state *ps = &s->pairs[s->success];
    a->ok = 1;
    a->pair = s->success;
    a->local = ps->pair.base;
    a->remote = ps->pair.remote;
  } else {
    a->at = s->retry_at;
  }
}

qpeer__punch_action_kind
qpeer__punch_sched_next_action(qpeer__punch_sched *s, uint64_t now,
                               qpeer__punch_action *a) {
  int id;

  memset(a, 0, sizeof(*a));
  a->pair = NO_PAIR;
  for (;;) {
    if (s->state == QPEER__PS_SUCCESS || s->state == QPEER__PS_FAILED) {
      fill_done(s, a);
      return a->kind;
    }
    if (!any_live(s)) {
      s->state = QPEER__PS_IDLE;
      s->validating = NO_PAIR;
      a->kind = QPEER__PUNCH_IDLE;
      return a->kind;
    }
    if (s->state == QPEER__PS_IDLE) {
      s->state = QPEER__PS_ROUND;
      s->round_at = now;
    }
    /* A pair whose remote already reached us is validated at once. */
    if (s->state != QPEER__PS_PUNCH && s->validating == NO_PAIR &&
        (id = best_pair(s, 0, 1, 0)) != NO_PAIR)
      return start_validation(s, id, now, a);
    switch (s->state) {
    case QPEER__PS_ROUND:
      /* Between rounds only a heard pair can be under validation. */
      if (s->validating != NO_PAIR && now >= s->deadline) {
        s->pairs[s->validating].tried = 1;
        s->validating = NO_PAIR;
        continue;
      }
      if (now < s->round_at) {
        a->kind = QPEER__PUNCH_WAIT;
        a->at = s->round_at;
        if (s->validating != NO_PAIR && s->deadline < a->at)
          a->at = s->deadline;
        return a->kind;
      }
      if (start_round(s, now))
        continue;
      if (s->validating != NO_PAIR) {
        a->kind = QPEER__PUNCH_WAIT;
        a->at = s->deadline;
        return a->kind;
      }
      if (!end_pass(s, now, a))
        return a->kind;
      continue;
    case QPEER__PS_PUNCH:
      if (emit_punch(s, a))
        return a->kind;
      s->state = QPEER__PS_FIRE;
      continue;
    case QPEER__PS_FIRE:
      if (step_fire(s, now, a))
        return a->kind;
      continue;
    default:
      a->kind = QPEER__PUNCH_IDLE;
      return a->kind;
    }
  }
}

/* ---- The client's inputs. ---- */

int qpeer__punch_sched_on_validation_result(qpeer__punch_sched *s, int pair,
                                            int ok, uint64_t now) {
  (void)now;
  if (pair < 0 || (size_t)pair >= s->npairs)
    return UV_EINVAL;
  if (s->state == QPEER__PS_SUCCESS)
    return 0;
  if (ok) {
    s->state = QPEER__PS_SUCCESS;
    s->success = pair;
    s->validating = NO_PAIR;
    return 0;
  }
  if (pair == s->validating) {
    s->pairs[pair].tried = 1;
    s->validating = NO_PAIR;
  }
  return 0;
}

/* top_priority returns a priority above every pair's (for prflx pairs). */
static uint64_t top_priority(const qpeer__punch_sched *s) {
  uint64_t top = 0;
  size_t i;
  for (i = 0; i < s->npairs; i++)
    if (s->pairs[i].pair.priority > top)
      top = s->pairs[i].pair.priority;
  return top == UINT64_MAX ? top : top + 1;
}

int qpeer__punch_sched_on_probe_received(qpeer__punch_sched *s,
                                         const struct sockaddr *local,
                                         const struct sockaddr *from,
                                         uint64_t now) {
  struct sockaddr_storage f, l;
  qpeer__cand_pair p;
  size_t i;
  int id = NO_PAIR;

  (void)now;
  if (s->state == QPEER__PS_SUCCESS || from == NULL)
    return NO_PAIR;
  qpeer__addr_normalize(&f, from);
  if (local != NULL)
    qpeer__addr_normalize(&l, local);
  /* Prefer the pair on the socket it came in on, then any. */
  for (i = 0; i < s->npairs && id == NO_PAIR; i++)
    if (s->pairs[i].live && local != NULL &&
        qpeer__addr_equal(sa_of(&s->pairs[i].pair.remote), sa_of(&f)) &&
        qpeer__addr_equal(sa_of(&s->pairs[i].pair.base), sa_of(&l)))
      id = (int)i;
  for (i = 0; i < s->npairs && id == NO_PAIR; i++)
    if (s->pairs[i].live &&
        qpeer__addr_equal(sa_of(&s->pairs[i].pair.remote), sa_of(&f)))
      id = (int)i;
  if (id != NO_PAIR) {
    s->pairs[id].heard = 1;
    return id;
  }
  /* A source nobody advertised: a peer-reflexive pair. */
  if (local == NULL || l.ss_family != f.ss_family ||
      !qpeer__punch_target_ok(sa_of(&f), s->o.allow) ||
      s->nprflx >= QPEER__PUNCH_MAX_PRFLX)
    return NO_PAIR;
  memset(&p, 0, sizeof(p));
  p.base = l;
  p.remote = f;
  p.remote_seq = PRFLX_SEQ;
  p.priority = top_priority(s);
  p.local_type = QPEER_CANDIDATE_HOST;
  p.remote_type = QPEER_CANDIDATE_PRFLX;
  id = insert_pair(s, &p, 1);
  if (id < 0)
    return NO_PAIR;
  s->nprflx++;
  s->pairs[id].heard = 1;
  return id;
}

void qpeer__punch_sched_restart(qpeer__punch_sched *s, uint64_t now) {
  size_t i;
  for (i = 0; i < s->npairs; i++) {
    qpeer__punch_pair_state *ps = &s->pairs[i];
    ps->tried = 0;
    ps->heard = 0;
    ps->in_round = 0;
    ps->probes_left = 0;
  }
  s->pass = 0;
  s->nbudget = 0;
  s->nprflx = 0;
  s->npunch = 0;
  s->punch_next = 0;
  s->validating = NO_PAIR;
  s->success = NO_PAIR;
  s->retry_at = 0;
  s->state = any_live(s) ? QPEER__PS_ROUND : QPEER__PS_IDLE;
  s->round_at = now;
}

/* ---- The server responder. ---- */

void qpeer__punch_resp_opts_default(qpeer__punch_resp_opts *o) {
  memset(o, 0, sizeof(*o));
  o->concurrency = 4;
  o->punches = 3;
  o->interval = 50 * QPEER__PUNCH_MS;
  o->max_per_target = 12;
  o->window = 30000 * QPEER__PUNCH_MS;
}

void qpeer__punch_resp_init(qpeer__punch_resp *r,
                            const qpeer__punch_resp_opts *o) {
  qpeer__punch_resp_opts d;
  memset(r, 0, sizeof(*r));
  if (o != NULL)
    r->o = *o;
  qpeer__punch_resp_opts_default(&d);
  if (r->o.concurrency == 0)
    r->o.concurrency = d.concurrency;
  if (r->o.concurrency > QPEER__PUNCH_MAX_CONCURRENCY)
    r->o.concurrency = QPEER__PUNCH_MAX_CONCURRENCY;
  if (r->o.punches == 0)
    r->o.punches = d.punches;
  if (r->o.interval == 0)
    r->o.interval = d.interval;
  if (r->o.max_per_target == 0)
    r->o.max_per_target = d.max_per_target;
  if (r->o.window == 0)
    r->o.window = d.window;
}

/* resp_budget returns the budget entry of |addr| with its window brought
 * up to date at |now| (created if needed, reusing an expired entry when
 * the table is full), or NULL. */
static qpeer__punch_resp_budget *
resp_budget(qpeer__punch_resp *r, const struct sockaddr *addr, uint64_t now) {
  qpeer__punch_resp_budget *b = NULL;
  size_t i;
  for (i = 0; i < r->nbudget; i++)
    if (qpeer__addr_equal(sa_of(&r->budget[i].addr), addr))
      b = &r->budget[i];
  if (b == NULL) {
    if (r->nbudget < QPEER__PUNCH_RESP_MAX_TARGETS) {
      b = &r->budget[r->nbudget++];
    } else {
      for (i = 0; i < r->nbudget && b == NULL; i++)
        if (now - r->budget[i].since >= r->o.window)
          b = &r->budget[i];
      if (b == NULL)
        return NULL;
    }
    memset(b, 0, sizeof(*b));
    qpeer__addr_normalize(&b->addr, addr);
    b->since = now;
  }
  if (now - b->since >= r->o.window) {
    b->since = now;
    b->sent = 0;
  }
  return b;
}

int qpeer__punch_resp_on_request(qpeer__punch_resp *r, uint64_t round,
                                 const struct sockaddr *local,
                                 const struct sockaddr *target, uint64_t now) {
  struct sockaddr_storage t;
  qpeer__punch_resp_budget *b;
  qpeer__punch_job *j;
  size_t i;

  if (local == NULL || target == NULL ||
      (local->sa_family != AF_INET && local->sa_family != AF_INET6))
    return UV_EINVAL;
  qpeer__addr_normalize(&t, target);
  if (!qpeer__punch_target_ok(sa_of(&t), r->o.allow))
    return UV_EINVAL;
  if (round < r->round)
    return QPEER__PUNCH_IGNORED;
  if (round > r->round) {
    r->njobs = 0; /* a new round cancels the old round's punches */
    r->round = round;
    r->accepted = 0;
  }
  if (r->accepted >= r->o.concurrency || r->njobs == QPEER__PUNCH_RESP_MAX_JOBS)
    return QPEER__PUNCH_IGNORED;
  for (i = 0; i < r->njobs; i++)
    if (qpeer__addr_equal(sa_of(&r->jobs[i].target), sa_of(&t)))
      return QPEER__PUNCH_IGNORED;
  b = resp_budget(r, sa_of(&t), now);
  if (b == NULL || b->sent >= r->o.max_per_target)
    return QPEER__PUNCH_IGNORED;
  j = &r->jobs[r->njobs++];
  memset(j, 0, sizeof(*j));
  qpeer__addr_normalize(&j->local, local);
  j->target = t;
  j->left = r->o.punches;
  j->next = now;
  r->accepted++;
  return QPEER__PUNCH_ACCEPTED;
}

/* drop_job removes job |i|, keeping the others in order. */
static void drop_job(qpeer__punch_resp *r, size_t i) {
  memmove(&r->jobs[i], &r->jobs[i + 1],
          (r->njobs - i - 1) * sizeof(r->jobs[0]));
  r->njobs--;
}

qpeer__punch_action_kind qpeer__punch_resp_next_action(qpeer__punch_resp *r,
                                                       uint64_t now,
                                                       qpeer__punch_action *a) {
  uint64_t t = UINT64_MAX;
  size_t i = 0;

  memset(a, 0, sizeof(*a));
  a->pair = NO_PAIR;
  while (i < r->njobs) {
    qpeer__punch_job *j = &r->jobs[i];
    qpeer__punch_resp_budget *b;
    if (j->next > now) {
      i++;
      continue;
    }
    b = resp_budget(r, sa_of(&j->target), now);
    if (b == NULL || b->sent >= r->o.max_per_target) {
      drop_job(r, i); /* budget spent: the rest of this job is dropped */
      continue;
    }
    b->sent++;
    r->sent++;
    a->kind = QPEER__PUNCH_SEND_PROBE;
    a->local = j->local;
    a->remote = j->target;
    a->round = r->round;
    j->left--;
    j->next += r->o.interval;
    if (j->left == 0)
      drop_job(r, i);
    return a->kind;
  }
  for (i = 0; i < r->njobs; i++)
    if (r->jobs[i].next < t)
      t = r->jobs[i].next;
  if (t == UINT64_MAX) {
    a->kind = QPEER__PUNCH_IDLE;
  } else {
    a->kind = QPEER__PUNCH_WAIT;
    a->at = t;
  }
  return a->kind;
}

void qpeer__punch_resp_cancel(qpeer__punch_resp *r) { r->njobs = 0; }
