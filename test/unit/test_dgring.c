/* SPDX-License-Identifier: MIT */
/* Unit tests for the outgoing DATAGRAM ring (lib/quic/dgring.c): order,
 * limits, growth, wrap-around, release; checked against a model queue
 * with pseudo-random lengths. */
#include <string.h>

#include "util.h"
#include "internal.h"
#include "quic/dgring.h"

static void fill(uint8_t *p, size_t len, uint32_t tag) {
  size_t i;
  for (i = 0; i < len; i++)
    p[i] = (uint8_t)(tag * 131u + i * 7u);
}

static int check(const uint8_t *p, size_t len, uint32_t tag) {
  size_t i;
  for (i = 0; i < len; i++)
    if (p[i] != (uint8_t)(tag * 131u + i * 7u))
      return 0;
  return 1;
}

static void test_dgring_limits(void **state) {
  qpeer__dgring r;
  const uint8_t *d;
  size_t len;
  int err = 0, i;
  uint8_t *p;
  (void)state;
  qpeer__dgring_init(&r, 4, 1000);
  assert_int_equal(qpeer__dgring_front(&r, &d, &len), 0);
  assert_null(r.buf); /* nothing allocated before the first record */
  assert_null(qpeer__dgring_push(&r, QPEER__DGRING_REC_MAX + 1, &err));
  assert_int_equal(err, UV_EMSGSIZE);
  for (i = 0; i < 4; i++) {
    p = qpeer__dgring_push(&r, 10, &err);
    assert_non_null(p);
    fill(p, 10, (uint32_t)i);
  }
  assert_null(qpeer__dgring_push(&r, 10, &err)); /* record limit */
  assert_int_equal(err, UV_ENOBUFS);
  assert_int_equal(r.n, 4);
  qpeer__dgring_pop(&r);
  assert_null(qpeer__dgring_push(&r, 1000, &err)); /* byte limit */
  assert_int_equal(err, UV_ENOBUFS);
  assert_non_null(p = qpeer__dgring_push(&r, 0, &err)); /* empty record */
  for (i = 1; i < 4; i++) {
    assert_int_equal(qpeer__dgring_front(&r, &d, &len), 1);
    assert_int_equal(len, 10);
    assert_true(check(d, 10, (uint32_t)i));
    qpeer__dgring_pop(&r);
  }
  assert_int_equal(qpeer__dgring_front(&r, &d, &len), 1);
  assert_int_equal(len, 0);
  qpeer__dgring_release(&r); /* not empty: kept */
  assert_non_null(r.buf);
  qpeer__dgring_pop(&r);
  qpeer__dgring_pop(&r); /* empty: no-op */
  assert_int_equal(r.n, 0);
  assert_int_equal(r.bytes, 0);
  qpeer__dgring_release(&r);
  assert_null(r.buf);
  qpeer__dgring_free(&r);
}

/* Random pushes and pops against a model FIFO: every record comes back
 * whole and in order, through wrap-arounds, growth and relayouts. */
static void test_dgring_model(void **state) {
  enum { MAXN = 300 };
  qpeer__dgring r;
  size_t mlen[MAXN];
  uint32_t mtag[MAXN];
  size_t mhead = 0, mn = 0, maxcap = 0;
  uint32_t seed = 12345, tag = 0;
  int step, err;
  (void)state;
  qpeer__dgring_init(&r, MAXN, 256 * 1024);
  for (step = 0; step < 200000; step++) {
    seed = seed * 1103515245u + 12345u;
    if ((seed >> 16) % 100 < (step / 20000 % 2 ? 40u : 60u)) {
      size_t len = (seed >> 8) % 1500;
      uint8_t *p = qpeer__dgring_push(&r, len, &err);
      if (p) {
        fill(p, len, tag);
        mlen[(mhead + mn) % MAXN] = len;
        mtag[(mhead + mn) % MAXN] = tag++;
        mn++;
      } else {
        assert_int_equal(err, UV_ENOBUFS);
        assert_true(mn == MAXN || r.bytes + len + 2 > 256 * 1024);
      }
    } else {
      const uint8_t *d;
      size_t len;
      int have = qpeer__dgring_front(&r, &d, &len);
      assert_int_equal(have, mn > 0);
      if (have) {
        assert_int_equal(len, mlen[mhead]);
        assert_true(check(d, len, mtag[mhead]));
        qpeer__dgring_pop(&r);
        mhead = (mhead + 1) % MAXN;
        mn--;
      }
    }
    assert_int_equal(r.n, mn);
    if (r.cap > maxcap)
      maxcap = r.cap;
  }
  assert_true(maxcap <= 2 * 256 * 1024); /* bounded storage */
  assert_true(tag > 10000);
  qpeer__dgring_free(&r);
  assert_null(r.buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dgring_limits),
      cmocka_unit_test(test_dgring_model),
  };
  return cmocka_run_group_tests_name("dgring", tests, NULL, NULL);
}
