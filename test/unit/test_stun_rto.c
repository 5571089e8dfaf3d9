/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the pure parts of the STUN client and responder: the
 * RFC 8489 retransmission schedule (lib/nat/stun_rto.c) driven with a fake
 * clock, and the token buckets and bounded per-source table
 * (lib/nat/ratelimit.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "nat/ratelimit.h"
#include "nat/stun_rto.h"

#define MS 1000000ull /* ns */

/* run drives |s| from |t0| by waking exactly when asked; it records the
 * transmission times (ms after t0) and returns the failure time. */
static uint64_t run(qpeer__stun_rto *s, uint64_t t0, uint64_t *sends,
                    size_t *nsends, size_t max) {
  uint64_t now = t0, wake = 0;
  *nsends = 0;
  for (;;) {
    int r = qpeer__stun_rto_poll(s, now, &wake);
    if (r == QPEER__STUN_RTO_FAIL)
      return (now - t0) / MS;
    if (r == QPEER__STUN_RTO_SEND) {
      assert_true(*nsends < max);
      sends[(*nsends)++] = (now - t0) / MS;
    }
    assert_true(wake > now || r == QPEER__STUN_RTO_SEND);
    if (wake > now)
      now = wake;
  }
}

static void test_rto_rfc_defaults(void **state) {
  /* RFC 8489 §6.2.1: 0, 500, 1500, 3500, 7500, 15500, 31500; fail 39500. */
  static const uint64_t want[] = {0, 500, 1500, 3500, 7500, 15500, 31500};
  qpeer__stun_rto s;
  uint64_t sends[16];
  size_t n, i;
  (void)state;
  qpeer__stun_rto_init(&s, 1000 * MS, 0, 0, 0, 0);
  assert_int_equal(run(&s, 1000 * MS, sends, &n, 16), 39500);
  assert_int_equal(n, 7);
  for (i = 0; i < n; i++)
    assert_int_equal(sends[i], want[i]);
  assert_int_equal(qpeer__stun_rto_natural_end_ms(0, 0, 0), 39500);
  assert_int_equal(qpeer__stun_rto_natural_end_ms(500, 7, 16), 39500);
}

static void test_rto_timeout_cap(void **state) {
  qpeer__stun_rto s;
  uint64_t sends[16];
  size_t n;
  (void)state;
  /* A 2 s cap: transmissions at 0, 500 and 1500, failure at 2000. */
  qpeer__stun_rto_init(&s, 0, 500, 7, 16, 2000);
  assert_int_equal(run(&s, 0, sends, &n, 16), 2000);
  assert_int_equal(n, 3);
  assert_int_equal(sends[2], 1500);
  /* A cap beyond the natural end changes nothing. */
  qpeer__stun_rto_init(&s, 0, 500, 7, 16, 100000);
  assert_int_equal(run(&s, 0, sends, &n, 16), 39500);
  assert_int_equal(n, 7);
  /* A cap exactly at a transmission time: the failure wins. */
  qpeer__stun_rto_init(&s, 0, 500, 7, 16, 1500);
  assert_int_equal(run(&s, 0, sends, &n, 16), 1500);
  assert_int_equal(n, 2);
}

static void test_rto_small_params(void **state) {
  qpeer__stun_rto s;
  uint64_t sends[16];
  size_t n;
  (void)state;
  /* RTO 20, Rc 3, Rm 4: sends at 0, 20, 60; fails at 60 + 80 = 140. */
  qpeer__stun_rto_init(&s, 5 * MS, 20, 3, 4, 0);
  assert_int_equal(run(&s, 5 * MS, sends, &n, 16), 140);
  assert_int_equal(n, 3);
  assert_int_equal(sends[0], 0);
  assert_int_equal(sends[1], 20);
  assert_int_equal(sends[2], 60);
  /* Rc 1: one transmission, then Rm x RTO. */
  qpeer__stun_rto_init(&s, 0, 100, 1, 2, 0);
  assert_int_equal(run(&s, 0, sends, &n, 16), 200);
  assert_int_equal(n, 1);
}

static void test_rto_clamps(void **state) {
  qpeer__stun_rto s;
  uint64_t wake;
  (void)state;
  /* Out-of-range parameters are clamped: no overflow, finite times. */
  qpeer__stun_rto_init(&s, 0, 1000000, 1000, 1000, 0);
  assert_int_equal(s.rc, QPEER__STUN_RC_MAX);
  assert_int_equal(qpeer__stun_rto_natural_end_ms(1000000, 1000, 1000),
                   (uint64_t)QPEER__STUN_RTO_MAX_MS *
                       ((1u << (QPEER__STUN_RC_MAX - 1)) - 1 +
                        QPEER__STUN_RM_MAX));
  assert_int_equal(qpeer__stun_rto_poll(&s, 0, &wake), QPEER__STUN_RTO_SEND);
  assert_int_equal(wake, (uint64_t)QPEER__STUN_RTO_MAX_MS * MS);
}

static void test_rto_late_caller(void **state) {
  qpeer__stun_rto s;
  uint64_t wake;
  (void)state;
  qpeer__stun_rto_init(&s, 0, 500, 7, 16, 0);
  assert_int_equal(qpeer__stun_rto_poll(&s, 0, &wake), QPEER__STUN_RTO_SEND);
  assert_int_equal(wake, 500 * MS);
  /* Polled early: nothing to do, same wake-up. */
  assert_int_equal(qpeer__stun_rto_poll(&s, 499 * MS, &wake),
                   QPEER__STUN_RTO_WAIT);
  assert_int_equal(wake, 500 * MS);
  /* Polled 4 s late: one transmission, not a burst; the next one comes a
   * whole interval (1 s) later. */
  assert_int_equal(qpeer__stun_rto_poll(&s, 4500 * MS, &wake),
                   QPEER__STUN_RTO_SEND);
  assert_int_equal(wake, 5500 * MS);
  assert_int_equal(qpeer__stun_rto_poll(&s, 4500 * MS, &wake),
                   QPEER__STUN_RTO_WAIT);
  assert_int_equal(s.sent, 2);
  /* The deadline stays where the schedule put it. */
  assert_int_equal(qpeer__stun_rto_poll(&s, 39500 * MS, &wake),
                   QPEER__STUN_RTO_FAIL);
}

static void test_bucket(void **state) {
  qpeer__bucket b;
  uint64_t t = 1000 * MS;
  int i, got = 0;
  (void)state;
  qpeer__bucket_init(&b, 10, 5, t);
  for (i = 0; i < 100; i++)
    got += qpeer__bucket_take(&b, t);
  assert_int_equal(got, 5); /* the burst */
  /* 10/s: one token per 100 ms. */
  assert_int_equal(qpeer__bucket_take(&b, t + 99 * MS), 0);
  assert_int_equal(qpeer__bucket_take(&b, t + 100 * MS), 1);
  assert_int_equal(qpeer__bucket_take(&b, t + 100 * MS), 0);
  /* A long pause refills to the burst, not beyond. */
  got = 0;
  for (i = 0; i < 100; i++)
    got += qpeer__bucket_take(&b, t + 3600000 * MS);
  assert_int_equal(got, 5);
  /* The clock going back refills nothing. */
  assert_int_equal(qpeer__bucket_take(&b, t), 0);
  /* Over a simulated second of steady demand: burst + rate. */
  qpeer__bucket_init(&b, 10, 5, 0);
  got = 0;
  for (i = 0; i <= 1000; i++)
    got += qpeer__bucket_take(&b, (uint64_t)i * MS);
  assert_int_equal(got, 5 + 10);
  /* Rate 0: never refills. */
  qpeer__bucket_init(&b, 0, 2, 0);
  assert_int_equal(qpeer__bucket_take(&b, 0), 1);
  assert_int_equal(qpeer__bucket_take(&b, 0), 1);
  assert_int_equal(qpeer__bucket_take(&b, 1000000 * MS), 0);
  /* Huge values do not overflow. */
  qpeer__bucket_init(&b, UINT32_MAX, UINT32_MAX, 0);
  assert_int_equal(qpeer__bucket_take(&b, UINT64_MAX / 2), 1);
}

static void test_ratelimit_per_source(void **state) {
  qpeer__ratelimit rl;
  uint8_t a[4] = {192, 0, 2, 1}, b[4] = {192, 0, 2, 2};
  int i, ga = 0, gb = 0;
  (void)state;
  assert_int_equal(qpeer__ratelimit_init(&rl, 16, 10, 3, 42), 0);
  for (i = 0; i < 50; i++) {
    ga += qpeer__ratelimit_take(&rl, a, 4, 0);
    gb += qpeer__ratelimit_take(&rl, b, 4, 0);
  }
  assert_int_equal(ga, 3);
  assert_int_equal(gb, 3);
  /* Refill is per source. */
  assert_int_equal(qpeer__ratelimit_take(&rl, a, 4, 100 * MS), 1);
  assert_int_equal(qpeer__ratelimit_take(&rl, a, 4, 100 * MS), 0);
  assert_int_equal(rl.n, 2);
  assert_int_equal(rl.evictions, 0);
  /* Keys of different lengths are different keys. */
  assert_int_equal(qpeer__ratelimit_take(&rl, a, 3, 100 * MS), 1);
  assert_int_equal(rl.n, 3);
  qpeer__ratelimit_free(&rl);
  qpeer__ratelimit_free(&rl); /* idempotent */
}

static void test_ratelimit_lru(void **state) {
  qpeer__ratelimit rl;
  uint8_t k[4] = {10, 0, 0, 0};
  uint32_t i;
  int got;
  (void)state;
  assert_int_equal(qpeer__ratelimit_init(&rl, 4, 1, 1, 7), 0);
  /* Sources 0..3 use their single token. */
  for (i = 0; i < 4; i++) {
    k[3] = (uint8_t)i;
    assert_int_equal(qpeer__ratelimit_take(&rl, k, 4, 0), 1);
    assert_int_equal(qpeer__ratelimit_take(&rl, k, 4, 0), 0);
  }
  /* Touch source 0 so that 1 is the least recently used. */
  k[3] = 0;
  assert_int_equal(qpeer__ratelimit_take(&rl, k, 4, 0), 0);
  /* A fifth source evicts source 1. */
  k[3] = 4;
  assert_int_equal(qpeer__ratelimit_take(&rl, k, 4, 0), 1);
  assert_int_equal(rl.evictions, 1);
  assert_int_equal(rl.n, 4);
  /* Source 0 is still limited (kept), source 1 starts afresh (evicted). */
  k[3] = 0;
  assert_int_equal(qpeer__ratelimit_take(&rl, k, 4, 0), 0);
  k[3] = 1;
  assert_int_equal(qpeer__ratelimit_take(&rl, k, 4, 0), 1);
  assert_int_equal(rl.evictions, 2);
  /* Many sources churning through a small table stay bounded. */
  got = 0;
  for (i = 0; i < 100000; i++) {
    memcpy(k, &i, 4);
    got += qpeer__ratelimit_take(&rl, k, 4, 0);
  }
  assert_int_equal(rl.n, 4);
  assert_true(got > 0);
  qpeer__ratelimit_free(&rl);
  /* Bad sizes. */
  assert_int_equal(qpeer__ratelimit_init(&rl, (1u << 24) + 1, 1, 1, 0),
                   UV_EINVAL);
  assert_int_equal(qpeer__ratelimit_init(&rl, 0, 1, 1, 0), 0);
  assert_int_equal(rl.cap, 1);
  qpeer__ratelimit_free(&rl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rto_rfc_defaults),
      cmocka_unit_test(test_rto_timeout_cap),
      cmocka_unit_test(test_rto_small_params),
      cmocka_unit_test(test_rto_clamps),
      cmocka_unit_test(test_rto_late_caller),
      cmocka_unit_test(test_bucket),
      cmocka_unit_test(test_ratelimit_per_source),
      cmocka_unit_test(test_ratelimit_lru),
  };
  return cmocka_run_group_tests_name("stun_rto", tests, NULL, NULL);
}
