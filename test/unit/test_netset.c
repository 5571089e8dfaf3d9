/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/peer/netset.c: the interface-address set
 * (normalization: mapped IPv4, ports, order, duplicates, foreign families;
 * comparison) and the candidate-set difference the listener announces
 * (added, removed, retyped; bounds).
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
#include "nat/candidate.h"
#include "peer/netset.h"

static struct sockaddr_storage sa(const char *text) {
  struct sockaddr_storage a;
  assert_int_equal(qpeer_addr_parse(&a, text), 0);
  return a;
}

static struct sockaddr_storage mapped(const char *v4, uint16_t port) {
  struct sockaddr_storage a;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a;
  memset(&a, 0, sizeof(a));
  s6->sin6_family = AF_INET6;
  s6->sin6_port = htons(port);
  s6->sin6_addr.s6_addr[10] = 0xff;
  s6->sin6_addr.s6_addr[11] = 0xff;
  assert_int_equal(inet_pton(AF_INET, v4, &s6->sin6_addr.s6_addr[12]), 1);
  return a;
}

static void test_netset_norm(void **state) {
  struct sockaddr_storage set[6], want[3];
  size_t n;
  (void)state;
  set[0] = sa("[2001:db8::1]:443");
  set[1] = sa("192.0.2.7:1000");
  set[2] = mapped("192.0.2.7", 5); /* the same as [1] once normalized */
  set[3] = sa("10.0.0.1:9");
  memset(&set[4], 0, sizeof(set[4])); /* AF_UNSPEC: dropped */
  set[5] = sa("10.0.0.1:0");          /* a duplicate without port */
  n = qpeer__netset_norm(set, 6);
  assert_int_equal(n, 3);
  want[0] = sa("10.0.0.1:0");
  want[1] = sa("192.0.2.7:0");
  want[2] = sa("[2001:db8::1]:0");
  assert_true(qpeer__netset_equal(set, n, want, 3));
  assert_int_equal(set[0].ss_family, AF_INET);
  assert_int_equal(qpeer__addr_port((struct sockaddr *)&set[2]), 0);
  /* Idempotent. */
  assert_int_equal(qpeer__netset_norm(set, n), 3);
  assert_true(qpeer__netset_equal(set, 3, want, 3));
  assert_int_equal(qpeer__netset_norm(set, 0), 0);
}

static void test_netset_equal(void **state) {
  struct sockaddr_storage a[3], b[3];
  size_t na, nb;
  (void)state;
  a[0] = sa("192.0.2.1:0");
  a[1] = sa("[fe80::1]:0");
  a[2] = sa("198.51.100.2:0");
  b[0] = sa("198.51.100.2:7");
  b[1] = sa("192.0.2.1:8");
  b[2] = sa("[fe80::1]:9");
  na = qpeer__netset_norm(a, 3);
  nb = qpeer__netset_norm(b, 3);
  assert_true(qpeer__netset_equal(a, na, b, nb)); /* order, ports */
  /* The same link-local address on another interface is another address. */
  ((struct sockaddr_in6 *)&b[2])->sin6_scope_id = 3;
  assert_false(qpeer__netset_equal(a, na, b, nb));
  /* A lost address. */
  assert_false(qpeer__netset_equal(a, na, b, nb - 1));
  assert_true(qpeer__netset_equal(a, 0, b, 0));
}

static qpeer_candidate_t cand(const char *text, qpeer_candidate_type type) {
  qpeer_candidate_t c;
  struct sockaddr_storage a = sa(text);
  assert_int_equal(qpeer__cand_init(&c, type, (struct sockaddr *)&a, NULL, NULL,
                                    QPEER_CANDIDATE_SRC_INTERFACE, 0),
                   0);
  return c;
}

static void test_canddiff(void **state) {
  qpeer_candidate_t old[3], cur[3];
  qpeer__canddiff d;
  (void)state;
  old[0] = cand("192.0.2.1:4000", QPEER_CANDIDATE_HOST);
  old[1] = cand("198.51.100.9:4000", QPEER_CANDIDATE_SRFLX);
  old[2] = cand("203.0.113.5:4000", QPEER_CANDIDATE_MAPPED);
  /* Equal sets in another order: no difference. */
  cur[0] = old[2];
  cur[1] = old[0];
  cur[2] = old[1];
  assert_false(qpeer__canddiff_compute(&d, old, 3, cur, 3));
  assert_int_equal(d.nadded + d.nremoved + d.nretyped, 0);
  /* One gone, one new, one retyped. */
  cur[0] = cand("192.0.2.1:4000", QPEER_CANDIDATE_HOST);
  cur[1] = cand("198.51.100.9:4000", QPEER_CANDIDATE_MAPPED);
  cur[2] = cand("198.51.100.10:4001", QPEER_CANDIDATE_SRFLX);
  assert_true(qpeer__canddiff_compute(&d, old, 3, cur, 3));
  assert_int_equal(d.nadded, 1);
  assert_int_equal(d.added[0], 2);
  assert_int_equal(d.nremoved, 1);
  assert_int_equal(d.removed[0], 2);
  assert_int_equal(d.nretyped, 1);
  assert_int_equal(d.retyped[0], 1);
  /* The port counts: same IP, other port is another address. */
  cur[0] = cand("192.0.2.1:4001", QPEER_CANDIDATE_HOST);
  assert_true(qpeer__canddiff_compute(&d, old, 1, cur, 1));
  assert_int_equal(d.nadded, 1);
  assert_int_equal(d.nremoved, 1);
  /* From and to the empty set. */
  assert_true(qpeer__canddiff_compute(&d, NULL, 0, old, 3));
  assert_int_equal(d.nadded, 3);
  assert_true(qpeer__canddiff_compute(&d, old, 3, NULL, 0));
  assert_int_equal(d.nremoved, 3);
  assert_false(qpeer__canddiff_compute(&d, NULL, 0, NULL, 0));
}

static void test_canddiff_bound(void **state) {
  qpeer_candidate_t big[QPEER__CANDDIFF_MAX + 4];
  qpeer__canddiff d;
  char text[64];
  size_t i;
  (void)state;
  for (i = 0; i < QPEER__ARRAY_SIZE(big); i++) {
    snprintf(text, sizeof(text), "192.0.2.%u:%u", (unsigned)(i + 1),
             (unsigned)(5000 + i));
    big[i] = cand(text, QPEER_CANDIDATE_HOST);
  }
  /* Only QPEER__CANDDIFF_MAX entries of each side are looked at. */
  assert_true(
      qpeer__canddiff_compute(&d, NULL, 0, big, QPEER__ARRAY_SIZE(big)));
  assert_int_equal(d.nadded, QPEER__CANDDIFF_MAX);
  assert_false(qpeer__canddiff_compute(&d, big, QPEER__ARRAY_SIZE(big), big,
                                       QPEER__ARRAY_SIZE(big)));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_netset_norm),
      cmocka_unit_test(test_netset_equal),
      cmocka_unit_test(test_canddiff),
      cmocka_unit_test(test_canddiff_bound),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
