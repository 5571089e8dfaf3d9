/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/peer/punch_sched.c, on a fake clock: the round
 * timeline (PUNCH_ME_NOW, probes half an RTT later, validation), ordering
 * by priority, the concurrency limit, one validation at a time, timeouts,
 * passes and backoff, success short-circuit, probe bounds per address,
 * peer-reflexive pairs, removal, restart, determinism; and the server
 * responder's limits.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/addr.h"
#include "internal.h"
#include "peer/punch_sched.h"

#define MS QPEER__PUNCH_MS

/* Deterministic xorshift64 so failures reproduce. */
static uint64_t rng_state = 0xda3e39cb94b95bdbULL;

static uint64_t rng_next(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void sa(struct sockaddr_storage *ss, const char *ip, uint16_t port) {
  memset(ss, 0, sizeof(*ss));
  if (strchr(ip, ':') != NULL) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    s6->sin6_port = htons(port);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    s4->sin_port = htons(port);
  }
}

static const struct sockaddr *sp(const struct sockaddr_storage *ss) {
  return (const struct sockaddr *)ss;
}

/* mkpair makes a pair base -> remote with |nt| targets and |prio|. */
static qpeer__cand_pair mkpair(const char *base, const char *remote,
                               uint16_t rport, uint64_t seq, size_t nt,
                               uint64_t prio) {
  qpeer__cand_pair p;
  size_t i;
  char ip[32];
  memset(&p, 0, sizeof(p));
  sa(&p.base, base, 4000);
  sa(&p.remote, remote, rport);
  for (i = 0; i < nt; i++) {
    snprintf(ip, sizeof(ip), "198.51.100.%zu", i + 1);
    sa(&p.targets[i], ip, (uint16_t)(5000 + i));
  }
  p.ntargets = nt;
  p.remote_seq = seq;
  p.priority = prio;
  return p;
}

/* A recorded action with the time it was produced. */
typedef struct {
  uint64_t t;            /* fake-clock time */
  qpeer__punch_action a; /* the action */
} rec_t;

/* trace_t collects the actions of one run. */
typedef struct {
  rec_t r[4096]; /* the actions */
  size_t n;      /* entries used */
} trace_t;

/* drain calls next_action at |now| until WAIT, IDLE or DONE, recording
 * everything; returns the last action's kind (with *plast set). */
static qpeer__punch_action_kind drain(qpeer__punch_sched *s, uint64_t now,
                                      trace_t *tr, qpeer__punch_action *plast) {
  qpeer__punch_action a;
  int guard = 0;
  for (;;) {
    qpeer__punch_sched_next_action(s, now, &a);
    assert_true(++guard < 1000);
    if (tr != NULL) {
      assert_true(tr->n < QPEER__ARRAY_SIZE(tr->r));
      tr->r[tr->n].t = now;
      tr->r[tr->n].a = a;
      tr->n++;
    }
    if (a.kind == QPEER__PUNCH_WAIT || a.kind == QPEER__PUNCH_IDLE ||
        a.kind == QPEER__PUNCH_DONE) {
      if (plast != NULL)
        *plast = a;
      return a.kind;
    }
  }
}

/* run_until_done drives |s| from |now| without any validation result
 * (every pair fails by timeout), jumping the clock to each WAIT. Returns
 * the end time. */
static uint64_t run_until_done(qpeer__punch_sched *s, uint64_t now, trace_t *tr,
                               qpeer__punch_action *plast) {
  qpeer__punch_action a;
  int guard = 0;
  for (;;) {
    qpeer__punch_action_kind k = drain(s, now, tr, &a);
    assert_true(++guard < 10000);
    if (k != QPEER__PUNCH_WAIT)
      break;
    assert_true(a.at > now); /* time always moves forward */
    now = a.at;
  }
  if (plast != NULL)
    *plast = a;
  return now;
}

static qpeer__punch_opts opts(uint32_t conc, uint64_t rtt) {
  qpeer__punch_opts o;
  memset(&o, 0, sizeof(o));
  o.concurrency = conc;
  o.rtt = rtt;
  return o;
}

static void test_punch_sched_defaults(void **state) {
  qpeer__punch_sched s;
  qpeer__punch_opts o;
  qpeer__punch_action a;
  (void)state;
  qpeer__punch_opts_default(&o);
  assert_int_equal(o.concurrency, 4);
  assert_int_equal(o.max_passes, 3);
  assert_int_equal(o.probes_per_round, 3);
  assert_true(o.probe_interval == 50 * MS);
  assert_int_equal(o.max_probes_per_addr, 9);
  assert_true(o.rtt == 333 * MS);
  qpeer__punch_sched_init(&s, NULL);
  assert_int_equal(memcmp(&s.o, &o, sizeof(o)), 0);
  /* clamp(3 RTT + 2 interval, 300 ms, 3 s). */
  assert_true(qpeer__punch_sched_timeout(&s) == 1099 * MS);
  qpeer__punch_sched_set_rtt(&s, 20 * MS);
  assert_true(qpeer__punch_sched_timeout(&s) == 300 * MS);
  qpeer__punch_sched_set_rtt(&s, 0); /* ignored */
  assert_true(qpeer__punch_sched_timeout(&s) == 300 * MS);
  qpeer__punch_sched_set_rtt(&s, 2000 * MS);
  assert_true(qpeer__punch_sched_timeout(&s) == 3000 * MS);
  /* Concurrency is clamped. */
  o = opts(1000, 0);
  qpeer__punch_sched_init(&s, &o);
  assert_int_equal(s.o.concurrency, QPEER__PUNCH_MAX_CONCURRENCY);
  /* No pairs: idle. */
  assert_int_equal(qpeer__punch_sched_next_action(&s, 0, &a),
                   QPEER__PUNCH_IDLE);
  assert_int_equal(a.pair, -1);
  assert_int_equal(qpeer__punch_sched_validating(&s), -1);
}

static void test_punch_sched_add_pair_rules(void **state) {
  qpeer__punch_sched s;
  qpeer__punch_opts o;
  qpeer__cand_pair p;
  char ip[32];
  int i;
  (void)state;
  qpeer__punch_sched_init(&s, NULL);
  p = mkpair("192.168.1.2", "203.0.113.7", 5000, 0, 1, 10);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), 0);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), UV_EEXIST);
  /* Target policy on the remote: loopback, link-local, low ports,
   * multicast, family mismatch. */
  p = mkpair("192.168.1.2", "127.0.0.1", 5000, 1, 1, 10);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), UV_EINVAL);
  p = mkpair("192.168.1.2", "169.254.1.1", 5000, 1, 1, 10);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), UV_EINVAL);
  p = mkpair("192.168.1.2", "203.0.113.7", 53, 1, 1, 10);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), UV_EINVAL);
  p = mkpair("192.168.1.2", "224.0.0.251", 5353, 1, 1, 10);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), UV_EINVAL);
  p = mkpair("192.168.1.2", "2001:db8::7", 5000, 1, 1, 10);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), UV_EINVAL);
  p = mkpair("192.168.1.2", "203.0.113.8", 5000, 1, 1, 10);
  p.ntargets = QPEER__PAIR_MAX_TARGETS + 1;
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), UV_EINVAL);
  p.ntargets = 1;
  p.targets[0].ss_family = AF_UNSPEC;
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), UV_EINVAL);
  /* ... unless allowed. */
  o = opts(0, 0);
  o.allow = QPEER__PUNCH_ALLOW_LOOPBACK | QPEER__PUNCH_ALLOW_LOW_PORTS |
            QPEER__PUNCH_ALLOW_LINK_LOCAL;
  qpeer__punch_sched_init(&s, &o);
  p = mkpair("127.0.0.1", "127.0.0.1", 53, 1, 1, 10);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), 0);
  p = mkpair("fe80::1", "fe80::2", 5000, 2, 1, 10);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), 1);
  /* Room for QPEER__PUNCH_MAX_PAIRS. */
  qpeer__punch_sched_init(&s, NULL);
  for (i = 0; i < QPEER__PUNCH_MAX_PAIRS; i++) {
    snprintf(ip, sizeof(ip), "203.0.113.%d", i + 1);
    p = mkpair("192.168.1.2", ip, 5000, (uint64_t)i, 1, 10);
    assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), i);
  }
  p = mkpair("192.168.1.2", "203.0.113.200", 5000, 99, 1, 10);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), UV_ENOSPC);
}

static void test_punch_sched_round_timeline(void **state) {
  qpeer__punch_sched s;
  qpeer__punch_opts o = opts(2, 100 * MS);
  qpeer__cand_pair p;
  qpeer__punch_action a;
  static trace_t tr;
  size_t i;
  (void)state;
  qpeer__punch_sched_init(&s, &o);
  /* Pair 0: two targets, low priority; pair 1: one target, top. */
  p = mkpair("192.168.1.2", "203.0.113.7", 5000, 7, 2, 100);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), 0);
  p = mkpair("192.168.1.2", "203.0.113.8", 5000, 8, 1, 200);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), 1);

  /* t = 0: PUNCH_ME_NOW for the best pair, then as much of the next as
   * fits the concurrency limit of 2 (pair 0 needs 2: it waits). */
  tr.n = 0;
  assert_int_equal(drain(&s, 0, &tr, &a), QPEER__PUNCH_WAIT);
  assert_int_equal(tr.n, 2);
  assert_int_equal(tr.r[0].a.kind, QPEER__PUNCH_SEND_PUNCH_ME_NOW);
  assert_int_equal(tr.r[0].a.pair, 1);
  assert_true(tr.r[0].a.round == 1);
  assert_true(tr.r[0].a.remote_seq == 8);
  assert_true(qpeer__addr_equal(sp(&tr.r[0].a.local), sp(&p.targets[0])));
  /* Fire half an RTT later. */
  assert_true(a.at == 50 * MS);
  /* Before the time: the same WAIT again, nothing done. */
  tr.n = 0;
  assert_int_equal(drain(&s, 49 * MS, &tr, &a), QPEER__PUNCH_WAIT);
  assert_int_equal(tr.n, 1);
  assert_true(a.at == 50 * MS);
  /* t = 50 ms: a probe, then the validation. */
  tr.n = 0;
  assert_int_equal(drain(&s, 50 * MS, &tr, &a), QPEER__PUNCH_WAIT);
  assert_int_equal(tr.n, 3);
  assert_int_equal(tr.r[0].a.kind, QPEER__PUNCH_SEND_PROBE);
  assert_int_equal(tr.r[0].a.pair, 1);
  assert_true(qpeer__addr_equal(sp(&tr.r[0].a.local), sp(&p.base)));
  assert_true(qpeer__addr_equal(sp(&tr.r[0].a.remote), sp(&p.remote)));
  assert_int_equal(tr.r[1].a.kind, QPEER__PUNCH_START_VALIDATION);
  assert_int_equal(tr.r[1].a.pair, 1);
  assert_int_equal(qpeer__punch_sched_validating(&s), 1);
  assert_true(a.at == 100 * MS); /* next probe */
  /* Probes at 100 and 150 ms, then only the timeout is left:
   * 50 + clamp(300 + 100, ...) = 450 ms. */
  tr.n = 0;
  drain(&s, 100 * MS, &tr, &a);
  assert_int_equal(tr.r[0].a.kind, QPEER__PUNCH_SEND_PROBE);
  assert_true(a.at == 150 * MS);
  tr.n = 0;
  drain(&s, 150 * MS, &tr, &a);
  assert_int_equal(tr.r[0].a.kind, QPEER__PUNCH_SEND_PROBE);
  assert_true(a.at == 450 * MS);
  /* Timeout: the round is over (one pair); round 2 asks for pair 0 with
   * both its targets, and fires 50 ms later. */
  tr.n = 0;
  assert_int_equal(drain(&s, 450 * MS, &tr, &a), QPEER__PUNCH_WAIT);
  assert_int_equal(tr.n, 3);
  for (i = 0; i < 2; i++) {
    assert_int_equal(tr.r[i].a.kind, QPEER__PUNCH_SEND_PUNCH_ME_NOW);
    assert_int_equal(tr.r[i].a.pair, 0);
    assert_true(tr.r[i].a.round == 2);
    assert_true(tr.r[i].a.remote_seq == 7);
  }
  assert_true(
      qpeer__addr_equal(sp(&tr.r[0].a.local), sp(&s.pairs[0].pair.targets[0])));
  assert_true(
      qpeer__addr_equal(sp(&tr.r[1].a.local), sp(&s.pairs[0].pair.targets[1])));
  assert_true(a.at == 500 * MS);
  assert_int_equal(qpeer__punch_sched_validating(&s), -1);
  /* Success of pair 0: DONE, for good. */
  tr.n = 0;
  drain(&s, 500 * MS, &tr, &a);
  assert_int_equal(tr.r[1].a.kind, QPEER__PUNCH_START_VALIDATION);
  assert_int_equal(qpeer__punch_sched_on_validation_result(&s, 0, 1, 520 * MS),
                   0);
  tr.n = 0;
  assert_int_equal(drain(&s, 520 * MS, &tr, &a), QPEER__PUNCH_DONE);
  assert_int_equal(tr.n, 1);
  assert_true(a.ok);
  assert_int_equal(a.pair, 0);
  assert_true(qpeer__addr_equal(sp(&a.local), sp(&s.pairs[0].pair.base)));
  assert_true(qpeer__addr_equal(sp(&a.remote), sp(&s.pairs[0].pair.remote)));
  assert_int_equal(drain(&s, 10000 * MS, NULL, &a), QPEER__PUNCH_DONE);
  assert_true(a.ok);
  assert_int_equal(qpeer__punch_sched_on_validation_result(&s, 5, 1, 0),
                   UV_EINVAL);
  assert_int_equal(qpeer__punch_sched_on_validation_result(&s, -1, 1, 0),
                   UV_EINVAL);
}

/* add_random adds |n| pairs with random distinct priorities and 1..4
 * targets; returns nothing. */
static void add_random(qpeer__punch_sched *s, size_t n) {
  char ip[32];
  size_t i;
  for (i = 0; i < n; i++) {
    qpeer__cand_pair p;
    snprintf(ip, sizeof(ip), "203.0.113.%zu", i + 1);
    p = mkpair(i % 3 ? "192.168.1.2" : "10.0.0.2", ip, 5000, i,
               1 + rng_next() % QPEER__PAIR_MAX_TARGETS,
               (rng_next() % 1000000) * 64 + i);
    assert_int_equal(qpeer__punch_sched_add_pair(s, &p), (int)i);
  }
}

static void test_punch_sched_order_and_limits(void **state) {
  static trace_t tr;
  qpeer__punch_sched s;
  qpeer__punch_opts o;
  qpeer__punch_action a;
  uint32_t conc;
  (void)state;
  for (conc = 1; conc <= 6; conc++) {
    uint64_t round = 0, per_round = 0, last_prio = UINT64_MAX, end;
    int validated[QPEER__PUNCH_MAX_PAIRS];
    size_t i, nvalid = 0, pass_validations = 0;
    o = opts(conc, 80 * MS);
    qpeer__punch_sched_init(&s, &o);
    add_random(&s, 12);
    tr.n = 0;
    end = run_until_done(&s, 0, &tr, &a);
    assert_int_equal(a.kind, QPEER__PUNCH_DONE);
    assert_false(a.ok);
    assert_true(a.at == end + 30000 * MS);
    memset(validated, 0, sizeof(validated));
    for (i = 0; i < tr.n; i++) {
      const qpeer__punch_action *x = &tr.r[i].a;
      if (x->kind == QPEER__PUNCH_SEND_PUNCH_ME_NOW) {
        /* Rounds are numbered 1, 2, 3, ... with at most |conc| requests
         * each. */
        if (x->round != round) {
          assert_true(x->round == round + 1);
          round = x->round;
          per_round = 0;
        }
        assert_true(++per_round <= conc);
      }
      if (x->kind == QPEER__PUNCH_START_VALIDATION) {
        /* Within a pass, pairs are validated by decreasing priority, each
         * once. */
        uint64_t pr = s.pairs[x->pair].pair.priority;
        if (pass_validations == 12) {
          pass_validations = 0;
          last_prio = UINT64_MAX;
          memset(validated, 0, sizeof(validated));
        }
        assert_true(pr < last_prio);
        assert_int_equal(validated[x->pair], 0);
        validated[x->pair] = 1;
        last_prio = pr;
        pass_validations++;
        nvalid++;
      }
    }
    /* Every pair in every pass: 3 x 12 validations. */
    assert_int_equal(nvalid, 36);
    assert_true(s.validations == 36);
    assert_true(s.punches_sent > 0);
  }
}

static void test_punch_sched_one_validation(void **state) {
  static trace_t tr;
  qpeer__punch_sched s;
  qpeer__punch_opts o;
  qpeer__punch_action a;
  int iter;
  (void)state;
  /* Random results, probes and removals: a new validation never starts
   * while the previous one is still running (no result, no timeout, not
   * removed). */
  for (iter = 0; iter < 300; iter++) {
    uint64_t now = 0, last_start = 0, timeout;
    int outstanding = -1, steps;
    o = opts((uint32_t)(1 + rng_next() % 5),
             (uint64_t)(10 + rng_next() % 300) * MS);
    qpeer__punch_sched_init(&s, &o);
    timeout = qpeer__punch_sched_timeout(&s);
    add_random(&s, 1 + rng_next() % 10);
    for (steps = 0; steps < 400; steps++) {
      size_t i;
      tr.n = 0;
      drain(&s, now, &tr, &a);
      for (i = 0; i < tr.n; i++) {
        if (tr.r[i].a.kind != QPEER__PUNCH_START_VALIDATION)
          continue;
        if (outstanding >= 0)
          assert_true(now - last_start >= timeout ||
                      !s.pairs[outstanding].live);
        outstanding = tr.r[i].a.pair;
        last_start = now;
      }
      if (a.kind == QPEER__PUNCH_DONE || a.kind == QPEER__PUNCH_IDLE)
        break;
      /* Perturb. */
      switch (rng_next() % 8) {
      case 0:
        if (outstanding >= 0) {
          qpeer__punch_sched_on_validation_result(&s, outstanding, 0, now);
          outstanding = -1;
        }
        break;
      case 1:
        if (outstanding >= 0 && rng_next() % 4 == 0) {
          qpeer__punch_sched_on_validation_result(&s, outstanding, 1, now);
          outstanding = -1;
        }
        break;
      case 2: {
        struct sockaddr_storage l, f;
        char ip[32];
        snprintf(ip, sizeof(ip), "203.0.113.%u",
                 (unsigned)(1 + rng_next() % 40));
        sa(&l, "192.168.1.2", 4000);
        sa(&f, ip, (uint16_t)(rng_next() % 2 ? 5000 : 7000));
        qpeer__punch_sched_on_probe_received(&s, sp(&l), sp(&f), now);
        break;
      }
      case 3:
        if (rng_next() % 8 == 0)
          qpeer__punch_sched_remove_remote(&s, rng_next() % 10);
        break;
      default:
        break;
      }
      if (qpeer__punch_sched_validating(&s) < 0)
        outstanding = -1;
      /* Jump to the wake-up time or a bit before it. */
      if (a.kind == QPEER__PUNCH_WAIT) {
        uint64_t d = a.at - now;
        now += rng_next() % 3 == 0 ? d / 2 + 1 : d;
      }
    }
  }
}

static void test_punch_sched_passes_backoff(void **state) {
  static trace_t tr;
  qpeer__punch_sched s;
  qpeer__punch_opts o = opts(4, 100 * MS);
  qpeer__punch_action a;
  qpeer__cand_pair p;
  uint64_t t_first[3] = {0}, end;
  size_t i, pass = 0, seen = 0;
  (void)state;
  o.max_passes = 3;
  o.backoff = 1000 * MS;
  qpeer__punch_sched_init(&s, &o);
  p = mkpair("192.168.1.2", "203.0.113.7", 5000, 0, 1, 5);
  qpeer__punch_sched_add_pair(&s, &p);
  tr.n = 0;
  end = run_until_done(&s, 0, &tr, &a);
  /* One pair: each pass is one round: request at t0, fire t0 + 50 ms,
   * timeout 400 ms later; pass 2 starts 1 s after pass 1 ends, pass 3
   * 2 s after pass 2 ends. */
  for (i = 0; i < tr.n; i++) {
    if (tr.r[i].a.kind == QPEER__PUNCH_SEND_PUNCH_ME_NOW) {
      assert_true(pass < 3);
      assert_true(tr.r[i].a.round == pass + 1);
      t_first[pass++] = tr.r[i].t;
    }
    if (tr.r[i].a.kind == QPEER__PUNCH_START_VALIDATION)
      seen++;
  }
  assert_int_equal(pass, 3);
  assert_int_equal(seen, 3);
  assert_true(t_first[0] == 0);
  assert_true(t_first[1] == 450 * MS + 1000 * MS);
  assert_true(t_first[2] == t_first[1] + 450 * MS + 2000 * MS);
  assert_true(end == t_first[2] + 450 * MS);
  assert_int_equal(a.kind, QPEER__PUNCH_DONE);
  assert_false(a.ok);
  assert_true(a.at == end + 30000 * MS);
  /* DONE stays until a restart; a restart goes on with round 4. */
  assert_int_equal(drain(&s, end + 5 * MS, NULL, &a), QPEER__PUNCH_DONE);
  p = mkpair("192.168.1.2", "203.0.113.9", 5000, 1, 1, 6);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), 1);
  assert_int_equal(drain(&s, end + 6 * MS, NULL, &a), QPEER__PUNCH_DONE);
  qpeer__punch_sched_restart(&s, a.at);
  tr.n = 0;
  drain(&s, a.at, &tr, &a);
  assert_int_equal(tr.r[0].a.kind, QPEER__PUNCH_SEND_PUNCH_ME_NOW);
  assert_true(tr.r[0].a.round == 4);
  assert_int_equal(tr.r[0].a.pair, 1); /* the new, higher pair first */
}

static void test_punch_sched_probe_bounds(void **state) {
  static trace_t tr;
  qpeer__punch_sched s;
  qpeer__punch_opts o = opts(3, 60 * MS);
  qpeer__punch_action a;
  qpeer__cand_pair p;
  struct sockaddr_storage remotes[4];
  uint32_t count[4] = {0};
  size_t i, k;
  (void)state;
  o.max_passes = 5;
  qpeer__punch_sched_init(&s, &o);
  /* Three bases towards the same remote (shared budget), plus others. */
  p = mkpair("192.168.1.2", "203.0.113.7", 5000, 0, 1, 50);
  qpeer__punch_sched_add_pair(&s, &p);
  p = mkpair("10.0.0.2", "203.0.113.7", 5000, 0, 1, 49);
  qpeer__punch_sched_add_pair(&s, &p);
  p = mkpair("172.16.0.2", "203.0.113.7", 5000, 0, 1, 48);
  qpeer__punch_sched_add_pair(&s, &p);
  p = mkpair("192.168.1.2", "203.0.113.8", 5000, 1, 1, 40);
  qpeer__punch_sched_add_pair(&s, &p);
  p = mkpair("192.168.1.2", "203.0.113.9", 5000, 2, 1, 30);
  qpeer__punch_sched_add_pair(&s, &p);
  sa(&remotes[0], "203.0.113.7", 5000);
  sa(&remotes[1], "203.0.113.8", 5000);
  sa(&remotes[2], "203.0.113.9", 5000);
  tr.n = 0;
  run_until_done(&s, 0, &tr, &a);
  for (i = 0; i < tr.n; i++) {
    if (tr.r[i].a.kind != QPEER__PUNCH_SEND_PROBE)
      continue;
    for (k = 0; k < 3; k++)
      if (qpeer__addr_equal(sp(&tr.r[i].a.remote), sp(&remotes[k])))
        count[k]++;
  }
  /* Never more than max_probes_per_addr (9) to an unvalidated address
   * per attempt, however many pairs and passes. */
  for (k = 0; k < 3; k++) {
    assert_true(count[k] > 0);
    assert_true(count[k] <= 9);
  }
  assert_int_equal(count[0], 9);
  /* A restart gives a fresh budget. */
  qpeer__punch_sched_restart(&s, 100000 * MS);
  tr.n = 0;
  run_until_done(&s, 100000 * MS, &tr, &a);
  count[0] = 0;
  for (i = 0; i < tr.n; i++)
    if (tr.r[i].a.kind == QPEER__PUNCH_SEND_PROBE &&
        qpeer__addr_equal(sp(&tr.r[i].a.remote), sp(&remotes[0])))
      count[0]++;
  assert_int_equal(count[0], 9);
  /* Per round, at most probes_per_round per pair, probe_interval apart. */
  {
    uint64_t last[QPEER__PUNCH_MAX_PAIRS];
    uint64_t rounds[QPEER__PUNCH_MAX_PAIRS];
    uint32_t n[QPEER__PUNCH_MAX_PAIRS];
    uint64_t round = 0;
    memset(n, 0, sizeof(n));
    memset(rounds, 0, sizeof(rounds));
    for (i = 0; i < tr.n; i++) {
      const qpeer__punch_action *x = &tr.r[i].a;
      if (x->kind == QPEER__PUNCH_SEND_PUNCH_ME_NOW)
        round = x->round;
      if (x->kind != QPEER__PUNCH_SEND_PROBE)
        continue;
      if (rounds[x->pair] != round) {
        rounds[x->pair] = round;
        n[x->pair] = 0;
      } else {
        assert_true(tr.r[i].t - last[x->pair] >= 50 * MS);
      }
      assert_true(++n[x->pair] <= 3);
      last[x->pair] = tr.r[i].t;
    }
  }
}

static void test_punch_sched_heard_and_prflx(void **state) {
  static trace_t tr;
  qpeer__punch_sched s;
  qpeer__punch_opts o = opts(1, 100 * MS);
  qpeer__punch_action a;
  qpeer__cand_pair p;
  struct sockaddr_storage l, f;
  int id;
  (void)state;
  qpeer__punch_sched_init(&s, &o);
  p = mkpair("192.168.1.2", "203.0.113.7", 5000, 0, 1, 50);
  qpeer__punch_sched_add_pair(&s, &p);
  p = mkpair("192.168.1.2", "203.0.113.8", 5000, 1, 1, 40);
  qpeer__punch_sched_add_pair(&s, &p);
  p = mkpair("192.168.1.2", "203.0.113.9", 5000, 2, 1, 30);
  qpeer__punch_sched_add_pair(&s, &p);
  /* Round 1 asks for pair 0 and validates it from 50 ms. */
  drain(&s, 0, NULL, &a);
  tr.n = 0;
  drain(&s, 50 * MS, &tr, &a);
  assert_int_equal(qpeer__punch_sched_validating(&s), 0);
  /* A punch arrives from pair 2's remote: it is next, ahead of pair 1. */
  sa(&l, "192.168.1.2", 4000);
  sa(&f, "203.0.113.9", 5000);
  assert_int_equal(
      qpeer__punch_sched_on_probe_received(&s, sp(&l), sp(&f), 60 * MS), 2);
  assert_int_equal(qpeer__punch_sched_on_validation_result(&s, 0, 0, 70 * MS),
                   0);
  tr.n = 0;
  drain(&s, 70 * MS, &tr, &a);
  assert_int_equal(tr.r[0].a.kind, QPEER__PUNCH_START_VALIDATION);
  assert_int_equal(tr.r[0].a.pair, 2);
  /* A failure of a pair that is not being validated is ignored. */
  assert_int_equal(qpeer__punch_sched_on_validation_result(&s, 1, 0, 71 * MS),
                   0);
  assert_int_equal(qpeer__punch_sched_validating(&s), 2);
  qpeer__punch_sched_on_validation_result(&s, 2, 0, 80 * MS);
  /* An unknown source becomes a peer-reflexive pair, validated at once,
   * without PUNCH_ME_NOW. */
  sa(&f, "203.0.113.99", 61234);
  id = qpeer__punch_sched_on_probe_received(&s, sp(&l), sp(&f), 90 * MS);
  assert_int_equal(id, 3);
  assert_int_equal(s.pairs[3].pair.ntargets, 0);
  assert_true(s.pairs[3].pair.priority > s.pairs[0].pair.priority);
  assert_int_equal(s.pairs[3].pair.remote_type, QPEER_CANDIDATE_PRFLX);
  tr.n = 0;
  drain(&s, 90 * MS, &tr, &a);
  assert_int_equal(tr.r[0].a.kind, QPEER__PUNCH_START_VALIDATION);
  assert_int_equal(tr.r[0].a.pair, 3);
  assert_true(qpeer__addr_equal(sp(&tr.r[0].a.remote), sp(&f)));
  /* Policy, family, and the per-attempt cap on prflx pairs. */
  sa(&f, "127.0.0.1", 61234);
  assert_int_equal(
      qpeer__punch_sched_on_probe_received(&s, sp(&l), sp(&f), 91 * MS), -1);
  sa(&f, "2001:db8::5", 61234);
  assert_int_equal(
      qpeer__punch_sched_on_probe_received(&s, sp(&l), sp(&f), 91 * MS), -1);
  assert_int_equal(
      qpeer__punch_sched_on_probe_received(&s, NULL, sp(&f), 91 * MS), -1);
  {
    int k;
    char ip[32];
    for (k = 0; k < 10; k++) {
      snprintf(ip, sizeof(ip), "198.51.100.%d", k + 1);
      sa(&f, ip, 40000);
      id = qpeer__punch_sched_on_probe_received(&s, sp(&l), sp(&f), 92 * MS);
      assert_int_equal(id, k < QPEER__PUNCH_MAX_PRFLX - 1 ? 4 + k : -1);
    }
  }
  /* Success of the prflx pair. */
  qpeer__punch_sched_on_validation_result(&s, 3, 1, 100 * MS);
  assert_int_equal(drain(&s, 100 * MS, NULL, &a), QPEER__PUNCH_DONE);
  assert_true(a.ok);
  assert_int_equal(a.pair, 3);
  /* After success probes are ignored. */
  assert_int_equal(
      qpeer__punch_sched_on_probe_received(&s, sp(&l), sp(&f), 101 * MS), -1);
}

static void test_punch_sched_remove(void **state) {
  static trace_t tr;
  qpeer__punch_sched s;
  qpeer__punch_opts o = opts(2, 100 * MS);
  qpeer__punch_action a;
  qpeer__cand_pair p;
  (void)state;
  qpeer__punch_sched_init(&s, &o);
  p = mkpair("192.168.1.2", "203.0.113.7", 5000, 0, 1, 50);
  qpeer__punch_sched_add_pair(&s, &p);
  p = mkpair("10.0.0.2", "203.0.113.7", 5000, 0, 1, 45);
  qpeer__punch_sched_add_pair(&s, &p);
  p = mkpair("192.168.1.2", "203.0.113.8", 5000, 1, 1, 40);
  qpeer__punch_sched_add_pair(&s, &p);
  drain(&s, 0, NULL, &a);
  drain(&s, 50 * MS, NULL, &a);
  assert_int_equal(qpeer__punch_sched_validating(&s), 0);
  /* REMOVE_ADDRESS seq 0: both pairs towards it go, the validation is
   * forgotten, and the next round goes on with pair 2 at once. */
  assert_int_equal(qpeer__punch_sched_remove_remote(&s, 0), 2);
  assert_int_equal(qpeer__punch_sched_remove_remote(&s, 0), 0);
  assert_int_equal(qpeer__punch_sched_validating(&s), -1);
  tr.n = 0;
  drain(&s, 60 * MS, &tr, &a);
  assert_int_equal(tr.r[0].a.kind, QPEER__PUNCH_SEND_PUNCH_ME_NOW);
  assert_int_equal(tr.r[0].a.pair, 2);
  assert_true(tr.r[0].a.round == 2);
  /* A late result for a retired pair's failure is ignored. */
  assert_int_equal(qpeer__punch_sched_on_validation_result(&s, 0, 0, 61 * MS),
                   0);
  /* Removing everything: idle; adding the pair again revives its slot. */
  assert_int_equal(qpeer__punch_sched_remove_remote(&s, 1), 1);
  assert_int_equal(drain(&s, 70 * MS, NULL, &a), QPEER__PUNCH_IDLE);
  p = mkpair("192.168.1.2", "203.0.113.7", 5000, 0, 1, 50);
  assert_int_equal(qpeer__punch_sched_add_pair(&s, &p), 0);
  tr.n = 0;
  drain(&s, 80 * MS, &tr, &a);
  assert_int_equal(tr.r[0].a.kind, QPEER__PUNCH_SEND_PUNCH_ME_NOW);
  assert_int_equal(tr.r[0].a.pair, 0);
  assert_true(tr.r[0].a.round == 3);
}

/* scenario runs a fixed randomized scenario and records its trace. */
static void scenario(trace_t *tr, uint64_t seed) {
  qpeer__punch_sched s;
  qpeer__punch_opts o = opts(3, 70 * MS);
  qpeer__punch_action a;
  uint64_t now = 0;
  int steps;
  rng_state = seed;
  qpeer__punch_sched_init(&s, &o);
  add_random(&s, 9);
  tr->n = 0;
  for (steps = 0; steps < 100; steps++) {
    drain(&s, now, tr, &a);
    if (a.kind != QPEER__PUNCH_WAIT)
      break;
    if (steps == 20 && qpeer__punch_sched_validating(&s) >= 0)
      qpeer__punch_sched_on_validation_result(
          &s, qpeer__punch_sched_validating(&s), 0, now);
    now = a.at;
  }
}

static void test_punch_sched_deterministic(void **state) {
  static trace_t t1, t2;
  (void)state;
  scenario(&t1, 0x1234567);
  scenario(&t2, 0x1234567);
  assert_int_equal(t1.n, t2.n);
  assert_true(t1.n > 20);
  assert_memory_equal(t1.r, t2.r, t1.n * sizeof(t1.r[0]));
}

/* ---- The server responder. ---- */

static void test_punch_resp_basic(void **state) {
  qpeer__punch_resp r;
  qpeer__punch_resp_opts o;
  qpeer__punch_action a;
  struct sockaddr_storage l, t1, t2, t3;
  (void)state;
  qpeer__punch_resp_opts_default(&o);
  assert_int_equal(o.punches, 3);
  assert_true(o.interval == 50 * MS);
  o.concurrency = 2;
  qpeer__punch_resp_init(&r, &o);
  sa(&l, "10.9.0.5", 5000);
  sa(&t1, "198.51.100.2", 61000);
  sa(&t2, "198.51.100.3", 61000);
  sa(&t3, "198.51.100.4", 61000);
  assert_int_equal(qpeer__punch_resp_next_action(&r, 0, &a), QPEER__PUNCH_IDLE);
  assert_int_equal(qpeer__punch_resp_on_request(&r, 1, sp(&l), sp(&t1), 0),
                   QPEER__PUNCH_ACCEPTED);
  /* The same target again in the round: ignored. */
  assert_int_equal(qpeer__punch_resp_on_request(&r, 1, sp(&l), sp(&t1), 0),
                   QPEER__PUNCH_IGNORED);
  assert_int_equal(qpeer__punch_resp_on_request(&r, 1, sp(&l), sp(&t2), 0),
                   QPEER__PUNCH_ACCEPTED);
  /* Over the concurrency limit. */
  assert_int_equal(qpeer__punch_resp_on_request(&r, 1, sp(&l), sp(&t3), 0),
                   QPEER__PUNCH_IGNORED);
  /* Punches at 0, 50, 100 ms to each target, from the candidate socket. */
  assert_int_equal(qpeer__punch_resp_next_action(&r, 0, &a),
                   QPEER__PUNCH_SEND_PROBE);
  assert_true(qpeer__addr_equal(sp(&a.local), sp(&l)));
  assert_true(qpeer__addr_equal(sp(&a.remote), sp(&t1)));
  assert_true(a.round == 1);
  assert_int_equal(qpeer__punch_resp_next_action(&r, 0, &a),
                   QPEER__PUNCH_SEND_PROBE);
  assert_true(qpeer__addr_equal(sp(&a.remote), sp(&t2)));
  assert_int_equal(qpeer__punch_resp_next_action(&r, 0, &a), QPEER__PUNCH_WAIT);
  assert_true(a.at == 50 * MS);
  assert_int_equal(qpeer__punch_resp_next_action(&r, 50 * MS, &a),
                   QPEER__PUNCH_SEND_PROBE);
  assert_int_equal(qpeer__punch_resp_next_action(&r, 50 * MS, &a),
                   QPEER__PUNCH_SEND_PROBE);
  /* A higher round cancels the rest of round 1. */
  assert_int_equal(
      qpeer__punch_resp_on_request(&r, 2, sp(&l), sp(&t3), 60 * MS),
      QPEER__PUNCH_ACCEPTED);
  assert_int_equal(qpeer__punch_resp_next_action(&r, 60 * MS, &a),
                   QPEER__PUNCH_SEND_PROBE);
  assert_true(qpeer__addr_equal(sp(&a.remote), sp(&t3)));
  assert_int_equal(qpeer__punch_resp_next_action(&r, 60 * MS, &a),
                   QPEER__PUNCH_WAIT);
  assert_true(a.at == 110 * MS);
  /* An older round: ignored. */
  assert_int_equal(
      qpeer__punch_resp_on_request(&r, 1, sp(&l), sp(&t1), 61 * MS),
      QPEER__PUNCH_IGNORED);
  assert_int_equal(qpeer__punch_resp_next_action(&r, 110 * MS, &a),
                   QPEER__PUNCH_SEND_PROBE);
  assert_int_equal(qpeer__punch_resp_next_action(&r, 160 * MS, &a),
                   QPEER__PUNCH_SEND_PROBE);
  assert_int_equal(qpeer__punch_resp_next_action(&r, 160 * MS, &a),
                   QPEER__PUNCH_IDLE);
  assert_true(r.sent == 7);
  /* Cancel drops everything. */
  assert_int_equal(
      qpeer__punch_resp_on_request(&r, 3, sp(&l), sp(&t1), 200 * MS),
      QPEER__PUNCH_ACCEPTED);
  qpeer__punch_resp_cancel(&r);
  assert_int_equal(qpeer__punch_resp_next_action(&r, 200 * MS, &a),
                   QPEER__PUNCH_IDLE);
}

static void test_punch_resp_policy_and_budget(void **state) {
  qpeer__punch_resp r;
  qpeer__punch_resp_opts o;
  qpeer__punch_action a;
  struct sockaddr_storage l, t;
  static const char *bad[] = {
      "127.0.0.1", "169.254.1.1", "224.0.0.1", "255.255.255.255", "0.0.0.0",
      "0.1.2.3",   "::1",         "fe80::1",   "ff02::1",         "::"};
  uint64_t round, now = 0, sent = 0;
  size_t i;
  (void)state;
  qpeer__punch_resp_init(&r, NULL);
  sa(&l, "10.9.0.5", 5000);
  /* Forbidden targets. */
  for (i = 0; i < QPEER__ARRAY_SIZE(bad); i++) {
    sa(&t, bad[i], 40000);
    assert_int_equal(qpeer__punch_resp_on_request(&r, 1, sp(&l), sp(&t), 0),
                     UV_EINVAL);
  }
  sa(&t, "198.51.100.2", 80);
  assert_int_equal(qpeer__punch_resp_on_request(&r, 1, sp(&l), sp(&t), 0),
                   UV_EINVAL);
  sa(&t, "198.51.100.2", 0);
  assert_int_equal(qpeer__punch_resp_on_request(&r, 1, sp(&l), sp(&t), 0),
                   UV_EINVAL);
  assert_int_equal(qpeer__punch_resp_on_request(&r, 1, NULL, sp(&t), 0),
                   UV_EINVAL);
  /* Allowed with the flags (a LAN test). */
  o.concurrency = 0;
  qpeer__punch_resp_opts_default(&o);
  o.allow = QPEER__PUNCH_ALLOW_LOOPBACK | QPEER__PUNCH_ALLOW_LOW_PORTS;
  qpeer__punch_resp_init(&r, &o);
  sa(&t, "127.0.0.1", 80);
  assert_int_equal(qpeer__punch_resp_on_request(&r, 1, sp(&l), sp(&t), 0),
                   QPEER__PUNCH_ACCEPTED);
  /* The per-target budget (12 per 30 s) holds across rounds: a client
   * asking again and again gets at most 12 datagrams sent to one address
   * in a window, then nothing until the window passes. */
  qpeer__punch_resp_init(&r, NULL);
  sa(&t, "198.51.100.2", 61000);
  for (round = 1; round <= 20; round++) {
    int rv = qpeer__punch_resp_on_request(&r, round, sp(&l), sp(&t), now);
    assert_true(rv == QPEER__PUNCH_ACCEPTED || rv == QPEER__PUNCH_IGNORED);
    while (qpeer__punch_resp_next_action(&r, now, &a) != QPEER__PUNCH_IDLE) {
      if (a.kind == QPEER__PUNCH_SEND_PROBE)
        sent++;
      else
        now = a.at;
    }
    now += 10 * MS;
  }
  assert_true(sent == 12);
  assert_true(now < 30000 * MS);
  /* After the window the target may be punched again. */
  now = 30001 * MS;
  assert_int_equal(qpeer__punch_resp_on_request(&r, 21, sp(&l), sp(&t), now),
                   QPEER__PUNCH_ACCEPTED);
  assert_int_equal(qpeer__punch_resp_next_action(&r, now, &a),
                   QPEER__PUNCH_SEND_PROBE);
  /* An IPv4-mapped target is the same target as its IPv4 form. */
  sa(&t, "::ffff:198.51.100.2", 61000);
  assert_int_equal(qpeer__punch_resp_on_request(&r, 21, sp(&l), sp(&t), now),
                   QPEER__PUNCH_IGNORED);
}

static void test_punch_resp_many_targets(void **state) {
  qpeer__punch_resp r;
  qpeer__punch_resp_opts o;
  qpeer__punch_action a;
  struct sockaddr_storage l, t;
  char ip[32];
  uint64_t round;
  int rv, accepted = 0;
  (void)state;
  qpeer__punch_resp_opts_default(&o);
  o.concurrency = 1;
  qpeer__punch_resp_init(&r, &o);
  sa(&l, "10.9.0.5", 5000);
  /* More distinct targets than budget slots within one window: the table
   * is bounded, extra targets are refused until a slot's window ends. */
  for (round = 1; round <= QPEER__PUNCH_RESP_MAX_TARGETS + 8; round++) {
    snprintf(ip, sizeof(ip), "198.51.100.%u", (unsigned)round);
    sa(&t, ip, 61000);
    rv = qpeer__punch_resp_on_request(&r, round, sp(&l), sp(&t), round * MS);
    if (rv == QPEER__PUNCH_ACCEPTED)
      accepted++;
    while (qpeer__punch_resp_next_action(&r, round * MS, &a) ==
           QPEER__PUNCH_SEND_PROBE)
      ;
  }
  assert_int_equal(accepted, QPEER__PUNCH_RESP_MAX_TARGETS);
  assert_int_equal(r.nbudget, QPEER__PUNCH_RESP_MAX_TARGETS);
  sa(&t, "203.0.113.1", 61000);
  assert_int_equal(
      qpeer__punch_resp_on_request(&r, 100, sp(&l), sp(&t), 40000 * MS),
      QPEER__PUNCH_ACCEPTED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_punch_sched_defaults),
      cmocka_unit_test(test_punch_sched_add_pair_rules),
      cmocka_unit_test(test_punch_sched_round_timeline),
      cmocka_unit_test(test_punch_sched_order_and_limits),
      cmocka_unit_test(test_punch_sched_one_validation),
      cmocka_unit_test(test_punch_sched_passes_backoff),
      cmocka_unit_test(test_punch_sched_probe_bounds),
      cmocka_unit_test(test_punch_sched_heard_and_prflx),
      cmocka_unit_test(test_punch_sched_remove),
      cmocka_unit_test(test_punch_sched_deterministic),
      cmocka_unit_test(test_punch_resp_basic),
      cmocka_unit_test(test_punch_resp_policy_and_budget),
      cmocka_unit_test(test_punch_resp_many_targets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
