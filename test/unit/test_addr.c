/* SPDX-License-Identifier: MIT */
/* Unit tests for address parsing, formatting and normalisation. */
#include <arpa/inet.h>
#include <string.h>

#include "util.h"
#include "core/addr.h"
#include "internal.h"

static void test_addr_parse_format(void **state) {
  static const char *good[] = {"127.0.0.1:0", "203.0.113.7:65535",
                               "[::1]:443", "[2001:db8::1]:4433"};
  static const char *bad[] = {"",           "127.0.0.1",  "127.0.0.1:",
                              ":80",        "1.2.3.4:65536", "1.2.3:80",
                              "[::1]",      "[::1]:",     "::1:80",
                              "[::1]x:80",  "1.2.3.4:-1", "1.2.3.4:8 0",
                              "[]:80",      "host:80",    "1.2.3.4:000001"};
  struct sockaddr_storage ss;
  char buf[QPEER_ADDR_STRLEN];
  size_t i;
  (void)state;
  for (i = 0; i < QPEER__ARRAY_SIZE(good); i++) {
    assert_int_equal(qpeer_addr_parse(&ss, good[i]), 0);
    assert_true(qpeer_addr_format((struct sockaddr *)&ss, buf, sizeof(buf)) >
                0);
    assert_string_equal(buf, good[i]);
  }
  for (i = 0; i < QPEER__ARRAY_SIZE(bad); i++)
    assert_int_equal(qpeer_addr_parse(&ss, bad[i]), UV_EINVAL);
  assert_int_equal(qpeer_addr_parse(NULL, "1.2.3.4:5"), UV_EINVAL);
  qpeer_addr_parse(&ss, "[2001:db8::1]:4433");
  assert_int_equal(qpeer_addr_format((struct sockaddr *)&ss, buf, 8),
                   UV_ENOBUFS);
}

static void test_addr_normalize(void **state) {
  struct sockaddr_storage a, b, c;
  (void)state;
  qpeer_addr_parse(&a, "192.0.2.1:1234");
  qpeer__addr_to_v6mapped(&b, (struct sockaddr *)&a);
  assert_int_equal(b.ss_family, AF_INET6);
  assert_false(qpeer__addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
  qpeer__addr_normalize(&c, (struct sockaddr *)&b);
  assert_true(qpeer__addr_equal((struct sockaddr *)&a, (struct sockaddr *)&c));
  assert_int_equal(qpeer__addr_port((struct sockaddr *)&c), 1234);
  qpeer__addr_set_port((struct sockaddr *)&c, 99);
  assert_int_equal(qpeer__addr_port((struct sockaddr *)&c), 99);
  assert_true(qpeer__addr_hash((struct sockaddr *)&a) !=
              qpeer__addr_hash((struct sockaddr *)&c));
  qpeer_addr_parse(&a, "0.0.0.0:1");
  assert_true(qpeer__addr_is_any((struct sockaddr *)&a));
  qpeer_addr_parse(&a, "[::]:1");
  assert_true(qpeer__addr_is_any((struct sockaddr *)&a));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_addr_parse_format),
      cmocka_unit_test(test_addr_normalize),
  };
  return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
