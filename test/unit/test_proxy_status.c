/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/h3/proxy_status.c: the bind draft's Proxy-Public-Address
 * example, parameters and whitespace, the address limit, malformed field
 * values, formatting round trips, RFC 9209 Proxy-Status formatting with
 * sf-string escaping and bounds, and the "?1" Boolean check.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/addr.h"
#include "h3/proxy_status.h"
#include "internal.h"

static void make_v4(struct sockaddr_storage *ss, const char *ip,
                    uint16_t port) {
  struct sockaddr_in *a = (void *)ss;
  memset(ss, 0, sizeof(*ss));
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
}

static void make_v6(struct sockaddr_storage *ss, const char *ip,
                    uint16_t port) {
  struct sockaddr_in6 *a = (void *)ss;
  memset(ss, 0, sizeof(*ss));
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
}

static int ppa(const char *v, struct sockaddr_storage *addrs, size_t max) {
  return qpeer__proxy_public_address_parse(v, strlen(v), addrs, max);
}

static void test_proxy_public_address_example(void **state) {
  /* The draft's example (§4, -08 and later: a List of Strings). */
  const char *v = "\"192.0.2.45:54321\", \"[2001:db8::1234]:54321\"";
  struct sockaddr_storage addrs[4], want;
  (void)state;
  assert_int_equal(ppa(v, addrs, 4), 2);
  make_v4(&want, "192.0.2.45", 54321);
  assert_true(qpeer__addr_equal((struct sockaddr *)&addrs[0],
                                (struct sockaddr *)&want));
  make_v6(&want, "2001:db8::1234", 54321);
  assert_true(qpeer__addr_equal((struct sockaddr *)&addrs[1],
                                (struct sockaddr *)&want));
  /* Only as many as asked for are stored; the rest is still checked. */
  assert_int_equal(ppa(v, addrs, 1), 1);
  assert_int_equal(ppa(v, NULL, 0), 0);
  assert_int_equal(ppa("\"192.0.2.45:54321\", \"bad\"", addrs, 1),
                   QPEER_EMALFORMED);
}

static void test_proxy_public_address_forms(void **state) {
  struct sockaddr_storage addrs[4], want;
  (void)state;
  assert_int_equal(ppa("", addrs, 4), 0);
  assert_int_equal(ppa(" \t ", addrs, 4), 0);
  assert_int_equal(ppa("\"10.0.0.1:1\"", addrs, 4), 1);
  assert_int_equal(ppa("  \"10.0.0.1:1\"\t", addrs, 4), 1);
  assert_int_equal(ppa("\"10.0.0.1:1\"\t,\t\"[::1]:65535\"", addrs, 4), 2);
  assert_int_equal(ppa("\"10.0.0.1:1\",\"[::1]:2\",\"[::2]:3\"", addrs, 4), 3);
  /* Parameters of any type are ignored. */
  assert_int_equal(ppa("\"10.0.0.1:1\";a=1;b;c=?0;d=\"x\";e=tok/en;"
                       "f=:AAE=:;g=-1.5;*h, \"[::1]:2\"; i=2",
                       addrs, 4),
                   2);
  make_v6(&want, "::1", 2);
  assert_true(qpeer__addr_equal((struct sockaddr *)&addrs[1],
                                (struct sockaddr *)&want));
  /* IPv4-mapped IPv6 stays IPv6. */
  assert_int_equal(ppa("\"[::ffff:192.0.2.1]:80\"", addrs, 4), 1);
  assert_int_equal(addrs[0].ss_family, AF_INET6);
}

static void test_proxy_public_address_malformed(void **state) {
  static const char *const bad[] = {
      "192.0.2.45:54321",                   /* -03..-07 unquoted form */
      "\"192.0.2.45:54321\",",              /* trailing comma */
      ",\"192.0.2.45:54321\"",              /* leading comma */
      "\"10.0.0.1:1\",,\"10.0.0.1:2\"",     /* empty member */
      "\"10.0.0.1:1\" \"10.0.0.1:2\"",      /* missing comma */
      "(\"10.0.0.1:1\")",                   /* inner list */
      "tok",                                /* token */
      "1",                                  /* integer */
      "?1",                                 /* boolean */
      "\"10.0.0.1\"",                       /* no port */
      "\"10.0.0.1:\"",                      /* empty port */
      "\"10.0.0.1:0\"",                     /* port 0 */
      "\"10.0.0.1:65536\"",                 /* port too big */
      "\"10.0.0.1:123456\"",                /* port too long */
      "\"10.0.0.1:8a\"",                    /* port not digits */
      "\"10.0.0.1:+80\"",                   /* sign */
      "\":80\"",                            /* no address */
      "\"2001:db8::1:80\"",                 /* IPv6 without brackets */
      "\"[10.0.0.1]:80\"",                  /* IPv4 in brackets */
      "\"[fe80::1%eth0]:80\"",              /* scoped */
      "\"[::1]\"",                          /* bracketed, no port */
      "\"[::1]80\"",                        /* no colon */
      "\"[::1:80\"",                        /* unclosed bracket */
      "\"example.com:80\"",                 /* names are not addresses */
      "\"10.0.0.256:80\"",                  /* bad IPv4 */
      "\"10.0.0.1:80",                      /* unterminated string */
      "\"10.0.0.1:8\\0\"",                  /* bad escape */
      "\"10.0.0.1:80\\\"\"",                /* escaped quote in address */
      "\"10.0.0.1:80\x01\"",                /* control character */
      "\"10.0.0.1:80\xc3\xa9\"",            /* non-ASCII */
      "\"10.0.0.1:80\";A=1",                /* uppercase key */
      "\"10.0.0.1:80\";a=",                 /* missing value */
      "\"10.0.0.1:80\";a=?2",               /* bad boolean */
      "\"10.0.0.1:80\";a=:AA",              /* unterminated bytes */
      "\"10.0.0.1:80\";a=1.",               /* decimal without fraction */
      "\"10.0.0.1:80\";a=1.2345",           /* too many fraction digits */
      "\"10.0.0.1:80\";a=1234567890123456", /* integer too long */
      /* An overlong string (64 zeros and a port). */
      ("\"0000000000000000000000000000000000000000000000000000000000000000:"
       "80\""),
  };
  struct sockaddr_storage addrs[4];
  size_t i;
  (void)state;
  for (i = 0; i < QPEER__ARRAY_SIZE(bad); i++) {
    int rv = ppa(bad[i], addrs, 4);
    if (rv != QPEER_EMALFORMED)
      fail_msg("value %zu (%s) gave %d", i, bad[i], rv);
  }
}

static void test_proxy_public_address_format(void **state) {
  struct sockaddr_storage in[3], out[3];
  char buf[128];
  ssize_t n;
  size_t i;
  (void)state;
  make_v4(&in[0], "192.0.2.45", 54321);
  make_v6(&in[1], "2001:db8::1234", 54321);
  make_v4(&in[2], "10.0.0.1", 1);
  n = qpeer__proxy_public_address_format(buf, sizeof(buf), in, 2);
  assert_string_equal(buf, "\"192.0.2.45:54321\", \"[2001:db8::1234]:54321\"");
  assert_int_equal(n, strlen(buf));
  n = qpeer__proxy_public_address_format(buf, sizeof(buf), in, 3);
  assert_true(n > 0);
  assert_int_equal(qpeer__proxy_public_address_parse(buf, (size_t)n, out, 3),
                   3);
  for (i = 0; i < 3; i++)
    assert_true(qpeer__addr_equal((struct sockaddr *)&in[i],
                                  (struct sockaddr *)&out[i]));
  /* Empty list. */
  assert_int_equal(qpeer__proxy_public_address_format(buf, 1, in, 0), 0);
  assert_string_equal(buf, "");
  /* Bounds. */
  n = qpeer__proxy_public_address_format(buf, sizeof(buf), in, 2);
  for (i = 0; i <= (size_t)n; i++)
    assert_int_equal(qpeer__proxy_public_address_format(buf, i, in, 2),
                     UV_ENOBUFS);
  /* Bad family and port 0. */
  in[2].ss_family = AF_UNIX;
  assert_int_equal(qpeer__proxy_public_address_format(buf, sizeof(buf), in, 3),
                   UV_EINVAL);
  make_v4(&in[2], "10.0.0.1", 0);
  assert_int_equal(qpeer__proxy_public_address_format(buf, sizeof(buf), in, 3),
                   UV_EINVAL);
}

static void expect_status(const char *name, const char *error,
                          const char *details, const char *want) {
  char buf[256];
  ssize_t n =
      qpeer__proxy_status_format(buf, sizeof(buf), name, error, details);
  assert_int_equal(n, strlen(want));
  assert_string_equal(buf, want);
}

static void test_proxy_status_format(void **state) {
  char buf[64];
  ssize_t n;
  size_t i;
  (void)state;
  expect_status(NULL, QPEER__PROXY_ERR_DNS_ERROR, "no such host",
                "qpeer-relay; error=dns_error; details=\"no such host\"");
  expect_status(NULL, QPEER__PROXY_ERR_IP_PROHIBITED, NULL,
                "qpeer-relay; error=destination_ip_prohibited");
  expect_status(NULL, NULL, NULL, "qpeer-relay");
  expect_status("relay.example", "http_request_error", "",
                "relay.example; error=http_request_error; details=\"\"");
  expect_status(NULL, "proxy_internal_error", "say \"hi\" \\ bye",
                "qpeer-relay; error=proxy_internal_error; "
                "details=\"say \\\"hi\\\" \\\\ bye\"");
  expect_status(NULL, "dns_error", "a\r\nb\x01\xc3\xa9",
                "qpeer-relay; error=dns_error; details=\"a??b???\"");
  /* A proxy name that is not a token is sent as a String. */
  expect_status("my relay", "dns_error", NULL, "\"my relay\"; error=dns_error");
  /* Bad error tokens and names. */
  assert_int_equal(qpeer__proxy_status_format(buf, sizeof(buf), NULL, "", NULL),
                   UV_EINVAL);
  assert_int_equal(
      qpeer__proxy_status_format(buf, sizeof(buf), NULL, "bad token", NULL),
      UV_EINVAL);
  assert_int_equal(
      qpeer__proxy_status_format(buf, sizeof(buf), NULL, "9abc", NULL),
      UV_EINVAL);
  assert_int_equal(
      qpeer__proxy_status_format(buf, sizeof(buf), NULL, "a\"b", NULL),
      UV_EINVAL);
  assert_int_equal(
      qpeer__proxy_status_format(buf, sizeof(buf), "", "dns_error", NULL),
      UV_EINVAL);
  assert_int_equal(
      qpeer__proxy_status_format(buf, sizeof(buf), "a\nb", NULL, NULL),
      UV_EINVAL);
  /* Every short buffer fails and stays NUL-terminated. */
  n = qpeer__proxy_status_format(buf, sizeof(buf), NULL, "dns_error", "x\"");
  assert_true(n > 0);
  for (i = 0; i <= (size_t)n; i++) {
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(
        qpeer__proxy_status_format(buf, i, NULL, "dns_error", "x\""),
        UV_ENOBUFS);
    if (i > 0)
      assert_int_equal(buf[i - 1], '\0');
    assert_int_equal(buf[i], 'Z');
  }
}

static void test_sf_boolean(void **state) {
  static const char *const yes[] = {
      "?1", " ?1 ", "\t?1", "?1;foo=bar", "?1; a=?0;b", "?1;*x=\"s\"",
  };
  static const char *const no[] = {
      "",    "?0",     "1",      "?1, ?1", "?2",    "?",       "?1x",
      "?1;", "\"?1\"", "?1;A=1", "true",   "?1 ;a", "?0;a=?1", "?1,",
  };
  size_t i;
  (void)state;
  for (i = 0; i < QPEER__ARRAY_SIZE(yes); i++)
    if (qpeer__sf_boolean_is_true(yes[i], strlen(yes[i])) != 1)
      fail_msg("\"%s\" should be true", yes[i]);
  for (i = 0; i < QPEER__ARRAY_SIZE(no); i++)
    if (qpeer__sf_boolean_is_true(no[i], strlen(no[i])) != 0)
      fail_msg("\"%s\" should not be true", no[i]);
  /* Only |len| bytes count. */
  assert_int_equal(qpeer__sf_boolean_is_true("?1, ?1", 2), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_proxy_public_address_example),
      cmocka_unit_test(test_proxy_public_address_forms),
      cmocka_unit_test(test_proxy_public_address_malformed),
      cmocka_unit_test(test_proxy_public_address_format),
      cmocka_unit_test(test_proxy_status_format),
      cmocka_unit_test(test_sf_boolean),
  };
  return cmocka_run_group_tests_name("proxy_status", tests, NULL, NULL);
}
