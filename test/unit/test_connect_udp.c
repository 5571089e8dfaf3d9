/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/h3/connect_udp.c: the RFC 9298 §2/§3 template and
 * request examples, IPv6 and bind ("*") expansion, template and value
 * rejection, :path parsing of names and literals, and every malformed path
 * class with its own reason.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "h3/connect_udp.h"
#include "internal.h"

#define PFX "/.well-known/masque/udp/"

static ssize_t expand(char *buf, size_t len, const char *tmpl,
                      const char *phost, uint16_t pport, const char *thost,
                      uint16_t tport) {
  qpeer__connect_udp_vars v;
  v.proxy_host = phost;
  v.proxy_port = pport;
  v.target_host = thost;
  v.target_port = tport;
  return qpeer__connect_udp_expand(buf, len, tmpl, &v);
}

static void expect_expand(const char *tmpl, const char *phost, uint16_t pport,
                          const char *thost, uint16_t tport, const char *want) {
  char buf[512];
  ssize_t n = expand(buf, sizeof(buf), tmpl, phost, pport, thost, tport);
  if (n < 0)
    fail_msg("expand(%s) failed: %d", tmpl ? tmpl : "default", (int)n);
  assert_string_equal(buf, want);
  assert_int_equal(n, strlen(want));
}

/* RFC 9298 §2 example templates and §3.4's request for 192.0.2.6:443. */
static void test_connect_udp_rfc9298_examples(void **state) {
  char buf[256];
  qpeer__connect_udp_uri u;
  qpeer__connect_udp_target t;
  ssize_t n;
  (void)state;
  expect_expand("https://example.org/.well-known/masque/udp/{target_host}/"
                "{target_port}/",
                NULL, 0, "192.0.2.6", 443,
                "https://example.org/.well-known/masque/udp/192.0.2.6/443/");
  expect_expand("https://proxy.example.org:4443/masque?h={target_host}&p="
                "{target_port}",
                NULL, 0, "192.0.2.6", 443,
                "https://proxy.example.org:4443/masque?h=192.0.2.6&p=443");
  expect_expand("https://proxy.example.org:4443/masque{?target_host,"
                "target_port}",
                NULL, 0, "192.0.2.6", 443,
                "https://proxy.example.org:4443/masque?target_host=192.0.2.6"
                "&target_port=443");
  /* §3.4: the HTTP/3 request's :authority and :path. */
  n = expand(buf, sizeof(buf), NULL, "example.org", 443, "192.0.2.6", 443);
  assert_true(n > 0);
  assert_int_equal(qpeer__connect_udp_split_uri(buf, (size_t)n, &u), 0);
  assert_int_equal(u.schemelen, 5);
  assert_memory_equal(u.scheme, "https", 5);
  assert_int_equal(u.authoritylen, strlen("example.org:443"));
  assert_memory_equal(u.authority, "example.org:443", u.authoritylen);
  assert_int_equal(u.pathlen, strlen(PFX "192.0.2.6/443/"));
  assert_memory_equal(u.path, PFX "192.0.2.6/443/", u.pathlen);
  assert_int_equal(
      qpeer__connect_udp_parse_path(NULL, u.path, u.pathlen, &t, NULL), 0);
  assert_int_equal(t.kind, QPEER__CONNECT_UDP_IPV4);
  assert_string_equal(t.host, "192.0.2.6");
  assert_int_equal(t.port, 443);
  assert_int_equal(t.addr.ss_family, AF_INET);
  assert_int_equal(ntohs(((struct sockaddr_in *)&t.addr)->sin_port), 443);
  /* §3: an IPv6 target's colons are percent-encoded. */
  expect_expand(NULL, "example.org", 443, "2001:db8::42", 443,
                "https://example.org:443/.well-known/masque/udp/"
                "2001%3Adb8%3A%3A42/443/");
  expect_expand(NULL, "example.org", 443, "[2001:db8::42]", 443,
                "https://example.org:443/.well-known/masque/udp/"
                "2001%3Adb8%3A%3A42/443/");
}

static void test_connect_udp_expand_forms(void **state) {
  (void)state;
  /* The bind draft: both targets "*", percent-encoded. */
  expect_expand(NULL, "relay.example", 4433, NULL, 0,
                "https://relay.example:4433" PFX "%2A/%2A/");
  expect_expand(NULL, "2001:db8::1", 443, "example.com", 53,
                "https://[2001:db8::1]:443" PFX "example.com/53/");
  expect_expand(NULL, "[2001:db8::1]", 443, "example.com.", 65535,
                "https://[2001:db8::1]:443" PFX "example.com./65535/");
  expect_expand(NULL, "192.0.2.1", 1, "under_score.example", 1,
                "https://192.0.2.1:1" PFX "under_score.example/1/");
  expect_expand("https://p.example/x?a=1{&target_host,target_port}", NULL, 0,
                "h.example", 9,
                "https://p.example/x?a=1&target_host=h.example"
                "&target_port=9");
  expect_expand("https://p.example/{target_host,target_port}", NULL, 0, "::1",
                7, "https://p.example/%3A%3A1,7");
  /* Undefined variables expand to nothing. */
  expect_expand("https://p.example/{foo}{target_host}/{target_port}{?bar}",
                NULL, 0, "a", 1, "https://p.example/a/1");
  expect_expand("https://p.example/m{?x,target_host,y,target_port}", NULL, 0,
                NULL, 0, "https://p.example/m?target_host=%2A&target_port=%2A");
  /* {host} and {port} also work in the path. */
  expect_expand("https://p.example/{host}/{port}/{target_host}/{target_port}",
                "q.example", 8, "a", 1, "https://p.example/q.example/8/a/1");
}

static void test_connect_udp_expand_bad_templates(void **state) {
  static const char *const bad[] = {
      "https://p.example/{target_host}/", /* no target_port */
      "https://p.example/{target_port}/", /* no target_host */
      "https://p.example/{+target_host}/{target_port}/",
      "https://p.example/{#target_host}/{target_port}/",
      "https://p.example/{.target_host}/{target_port}/",
      "https://p.example{/target_host}/{target_port}/",
      "https://p.example/{;target_host}/{target_port}/",
      "https://p.example/{=target_host}/{target_port}/",
      "https://p.example/{target_host:3}/{target_port}/",
      "https://p.example/{target_host*}/{target_port}/",
      "https://p.example/{target_host/{target_port}/",
      "https://p.example/{target_host}}/{target_port}/",
      "https://p.example/{{target_host}}/{target_port}/",
      "https://p.example/{}/{target_host}/{target_port}/",
      "https://p.example/{target_host,}/{target_port}/",
      "https://p.example/{?}/{target_host}/{target_port}/",
      "https://p.example/a b/{target_host}/{target_port}/",
      "https://p.example/\xc3\xa9/{target_host}/{target_port}/",
      "https://p.example/\t/{target_host}/{target_port}/",
      "//p.example/{target_host}/{target_port}/",
      "1https://p.example/{target_host}/{target_port}/",
      "ht_tps://p.example/{target_host}/{target_port}/",
      "https:///{target_host}/{target_port}/",
      "https://p.example?{target_host}/{target_port}/",
      "https://{target_host}.example/{target_port}/",
      "https://p.example:{target_port}/{target_host}/",
      "https://p.example",
      "p.example/{target_host}/{target_port}/",
      "https://p.example/{target.}/{target_host}/{target_port}/",
      "https://p.example/{%zz}/{target_host}/{target_port}/",
  };
  char buf[256];
  size_t i;
  (void)state;
  for (i = 0; i < QPEER__ARRAY_SIZE(bad); i++) {
    ssize_t n = expand(buf, sizeof(buf), bad[i], "p", 1, "a", 1);
    if (n != UV_EINVAL)
      fail_msg("template %zu (%s) gave %d", i, bad[i], (int)n);
  }
  /* {host}/{port} used but not provided. */
  assert_int_equal(expand(buf, sizeof(buf), NULL, NULL, 443, "a", 1),
                   UV_EINVAL);
  assert_int_equal(expand(buf, sizeof(buf), NULL, "p", 0, "a", 1), UV_EINVAL);
}

static void test_connect_udp_expand_bad_values(void **state) {
  static const char *const bad_hosts[] = {
      "",         "[]",           "fe80::1%eth0", "bad host",    "bad!host",
      "a..b",     "a..","-a.example",   "a-.example",   "192.0.2.256", "1.2.3",
      "01.2.3.4", "2001:db8:::1", "[::1",         "\x01",        "h\xc3\xa9",
      ".",        "a/b",          "a%2Fb",
  };
  char buf[256], longhost[300];
  size_t i;
  (void)state;
  for (i = 0; i < QPEER__ARRAY_SIZE(bad_hosts); i++) {
    ssize_t n = expand(buf, sizeof(buf), NULL, "p", 1, bad_hosts[i], 1);
    if (n != UV_EINVAL)
      fail_msg("host %zu (%s) gave %d", i, bad_hosts[i], (int)n);
  }
  assert_int_equal(expand(buf, sizeof(buf), NULL, "p", 1, "a", 0), UV_EINVAL);
  assert_int_equal(expand(buf, sizeof(buf), NULL, "bad host", 1, "a", 1),
                   UV_EINVAL);
  /* 255 characters is the limit (labels of 63). */
  memset(longhost, 'a', sizeof(longhost));
  for (i = 63; i < sizeof(longhost); i += 64)
    longhost[i] = '.';
  longhost[255] = '\0';
  {
    char big[600];
    assert_true(expand(big, sizeof(big), NULL, "p", 1, longhost, 1) > 0);
    longhost[255] = 'a';
    longhost[256] = '\0';
    assert_int_equal(expand(big, sizeof(big), NULL, "p", 1, longhost, 1),
                     UV_EINVAL);
  }
}

static void test_connect_udp_expand_bounds(void **state) {
  char buf[128];
  ssize_t full, i;
  (void)state;
  full = expand(buf, sizeof(buf), NULL, "p", 1, "2001:db8::1", 1);
  assert_true(full > 0);
  for (i = 0; i <= full; i++) {
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(expand(buf, (size_t)i, NULL, "p", 1, "2001:db8::1", 1),
                     UV_ENOBUFS);
    if (i > 0) /* always NUL-terminated within the buffer */
      assert_int_equal(buf[i - 1], '\0');
    assert_int_equal(buf[i], 'Z'); /* nothing written past |i| bytes */
  }
  assert_int_equal(
      expand(buf, (size_t)full + 1, NULL, "p", 1, "2001:db8::1", 1), full);
}

static void test_connect_udp_split_uri(void **state) {
  qpeer__connect_udp_uri u;
  static const char *const bad[] = {
      "",
      "https:",
      "https://",
      "https://host",
      "https:///path",
      "://host/",
      "1x://host/",
      "https://host?q",
      "https://host#f",
  };
  const char *uri = "https://h.example:8443/p/a?q=1#frag";
  size_t i;
  (void)state;
  assert_int_equal(qpeer__connect_udp_split_uri(uri, strlen(uri), &u), 0);
  assert_int_equal(u.authoritylen, strlen("h.example:8443"));
  assert_int_equal(u.pathlen, strlen("/p/a?q=1"));
  assert_memory_equal(u.path, "/p/a?q=1", u.pathlen);
  for (i = 0; i < QPEER__ARRAY_SIZE(bad); i++)
    assert_int_equal(qpeer__connect_udp_split_uri(bad[i], strlen(bad[i]), &u),
                     UV_EINVAL);
}

static void parse_ok(const char *prefix, const char *path, int kind,
                     const char *host, uint16_t port) {
  qpeer__connect_udp_target t;
  const char *reason = "unset";
  int rv =
      qpeer__connect_udp_parse_path(prefix, path, strlen(path), &t, &reason);
  if (rv != 0)
    fail_msg("%s: %d (%s)", path, rv, reason ? reason : "?");
  assert_null(reason);
  assert_int_equal(t.kind, kind);
  assert_string_equal(t.host, host);
  assert_int_equal(t.port, port);
}

static void test_connect_udp_parse_valid(void **state) {
  qpeer__connect_udp_target t;
  char ip[INET6_ADDRSTRLEN];
  (void)state;
  parse_ok(NULL, PFX "192.0.2.6/443/", QPEER__CONNECT_UDP_IPV4, "192.0.2.6",
           443);
  parse_ok(NULL, PFX "2001%3Adb8%3A%3A42/443/", QPEER__CONNECT_UDP_IPV6,
           "2001:db8::42", 443);
  parse_ok(NULL, PFX "2001%3adb8%3a%3a42/1/", QPEER__CONNECT_UDP_IPV6,
           "2001:db8::42", 1);
  /* Raw colons are valid pchars; accepted on receipt. */
  parse_ok(NULL, PFX "::ffff:192.0.2.1/65535/", QPEER__CONNECT_UDP_IPV6,
           "::ffff:192.0.2.1", 65535);
  parse_ok(NULL, PFX "example.com/53/", QPEER__CONNECT_UDP_NAME, "example.com",
           53);
  parse_ok(NULL, PFX "Example.COM./53/", QPEER__CONNECT_UDP_NAME,
           "Example.COM.", 53);
  parse_ok(NULL, PFX "_srv.x-y.example/0053/", QPEER__CONNECT_UDP_NAME,
           "_srv.x-y.example", 53);
  parse_ok(NULL, PFX "%65xample.com/%34%34%33/", QPEER__CONNECT_UDP_NAME,
           "example.com", 443);
  parse_ok(NULL, PFX "localhost/9/", QPEER__CONNECT_UDP_NAME, "localhost", 9);
  parse_ok(NULL, PFX "1.2.3.4.example/9/", QPEER__CONNECT_UDP_NAME,
           "1.2.3.4.example", 9);
  /* The bind draft's wildcard, encoded and raw. */
  parse_ok(NULL, PFX "%2A/%2A/", QPEER__CONNECT_UDP_BIND, "*", 0);
  parse_ok(NULL, PFX "%2a/*/", QPEER__CONNECT_UDP_BIND, "*", 0);
  parse_ok(NULL, PFX "*/*/", QPEER__CONNECT_UDP_BIND, "*", 0);
  /* A custom prefix. */
  parse_ok("/masque/", "/masque/10.0.0.1/4433/", QPEER__CONNECT_UDP_IPV4,
           "10.0.0.1", 4433);
  /* The literal address is filled in with the port. */
  assert_int_equal(qpeer__connect_udp_parse_path(
                       NULL, PFX "2001%3Adb8%3A%3A42/443/",
                       strlen(PFX "2001%3Adb8%3A%3A42/443/"), &t, NULL),
                   0);
  assert_int_equal(t.addr.ss_family, AF_INET6);
  assert_non_null(inet_ntop(
      AF_INET6, &((struct sockaddr_in6 *)&t.addr)->sin6_addr, ip, sizeof(ip)));
  assert_string_equal(ip, "2001:db8::42");
  assert_int_equal(ntohs(((struct sockaddr_in6 *)&t.addr)->sin6_port), 443);
  /* Only the given length is read. */
  assert_int_equal(qpeer__connect_udp_parse_path(NULL, PFX "a/1/garbage",
                                                 strlen(PFX "a/1/"), &t, NULL),
                   0);
}

/* A malformed path and a word its reason must contain. */
typedef struct {
  const char *path;   /* the :path */
  size_t len;         /* its length (0: strlen) */
  const char *reason; /* substring of the expected reason */
} bad_path_t;

static void test_connect_udp_parse_malformed(void **state) {
  static const bad_path_t bad[] = {
      {"/", 0, "template"},
      {"/.well-known/masque/udp", 0, "template"},
      {"/.well-known/masque/tcp/a/1/", 0, "template"},
      {PFX, 0, "missing target_host"},
      {PFX "host", 0, "missing target_port"},
      {PFX "host/", 0, "missing target_port"},
      {PFX "host/443", 0, "missing trailing slash"},
      {PFX "host/443/x", 0, "extra path segments"},
      {PFX "host/443/x/", 0, "extra path segments"},
      {PFX "host/443//", 0, "extra path segments"},
      {PFX "/443/", 0, "empty target_host"},
      {PFX "host//", 0, "empty target_port"},
      {PFX "host/443/?x=1", 0, "query"},
      {PFX "host/443/#f", 0, "fragment"},
      {PFX "ho%4x/443/", 0, "bad percent-escape"},
      {PFX "ho%G1/443/", 0, "bad percent-escape"},
      {PFX "host%/443/", 0, "truncated percent-escape"},
      {PFX "host%4/443/", 0, "truncated percent-escape"},
      {PFX "host/44%3/", 0, "truncated percent-escape"},
      {PFX "host/0/", 0, "target_port out of range"},
      {PFX "host/00000/", 0, "target_port out of range"},
      {PFX "host/65536/", 0, "target_port out of range"},
      {PFX "host/99999/", 0, "target_port out of range"},
      {PFX "host/1234567/", 0, "target_port out of range"},
      {PFX "host/%30/", 0, "target_port out of range"},
      {PFX "host/-1/", 0, "not a number"},
      {PFX "host/+80/", 0, "not a number"},
      {PFX "host/8a/", 0, "not a number"},
      {PFX "host/0x50/", 0, "not a number"},
      {PFX "host/%20443/", 0, "not a number"},
      {PFX "ho\x01st/1/", 0, "control character in path"},
      {PFX "ho\x7fst/1/", 0, "control character in path"},
      {PFX "ho\0st/1/", sizeof(PFX "ho\0st/1/") - 1, "control character"},
      {PFX "ho%01st/1/", 0, "control character in target_host"},
      {PFX "ho%7Fst/1/", 0, "control character in target_host"},
      {PFX "ho%00st/1/", 0, "control character in target_host"},
      {PFX "host/1%0A/", 0, "control character in target_port"},
      {PFX "ho st/1/", 0, "invalid character"},
      {PFX "h\xc3\xa9/1/", 0, "invalid character"},
      {PFX "ho\"st/1/", 0, "invalid character"},
      {PFX "ho%C3%A9st/1/", 0, "non-ASCII target_host"},
      {PFX "host/%C3/", 0, "non-ASCII target_port"},
      {PFX "2001%3A%3A%3A1/1/", 0, "invalid IPv6"},
      {PFX "2001%3Adb8%3A%3Ag/1/", 0, "invalid IPv6"},
      {PFX "%5B2001%3Adb8%3A%3A1%5D/1/", 0, "invalid IPv6"},
      {PFX "fe80%3A%3A1%25eth0/1/", 0, "scoped IPv6"},
      {PFX "192.0.2.256/1/", 0, "invalid IPv4"},
      {PFX "1.2.3/1/", 0, "invalid IPv4"},
      {PFX "01.2.3.4/1/", 0, "invalid IPv4"},
      {PFX "1.2.3.4./1/", 0, "invalid IPv4"},
      {PFX "a..b/1/", 0, "invalid hostname"},
      {PFX ".a/1/", 0, "invalid hostname"},
      {PFX "-a.example/1/", 0, "invalid hostname"},
      {PFX "a-.example/1/", 0, "invalid hostname"},
      {PFX "bad!host/1/", 0, "invalid hostname"},
      {PFX "a%2Fb/1/", 0, "invalid hostname"},
      {PFX "%2E/1/", 0, "invalid hostname"},
      {PFX "*/443/", 0, "wildcard"},
      {PFX "host/*/", 0, "wildcard"},
      {PFX "%2A/1/", 0, "wildcard"},
      {PFX "**/1/", 0, "invalid hostname"},
      {PFX "**/**/", 0, "not a number"},
  };
  size_t i;
  (void)state;
  for (i = 0; i < QPEER__ARRAY_SIZE(bad); i++) {
    qpeer__connect_udp_target t;
    const char *reason = NULL;
    size_t len = bad[i].len ? bad[i].len : strlen(bad[i].path);
    int rv = qpeer__connect_udp_parse_path(NULL, bad[i].path, len, &t, &reason);
    if (rv != QPEER_EMALFORMED)
      fail_msg("path %zu (%s) gave %d", i, bad[i].path, rv);
    assert_non_null(reason);
    if (!strstr(reason, bad[i].reason))
      fail_msg("path %zu (%s): reason \"%s\", wanted \"%s\"", i, bad[i].path,
               reason, bad[i].reason);
    /* The reason pointer is optional. */
    assert_int_equal(
        qpeer__connect_udp_parse_path(NULL, bad[i].path, len, &t, NULL),
        QPEER_EMALFORMED);
  }
}

static void test_connect_udp_parse_host_length(void **state) {
  char path[1200], host[300];
  qpeer__connect_udp_target t;
  const char *reason;
  size_t i;
  (void)state;
  /* 255 characters in labels of 63: accepted. */
  memset(host, 'a', sizeof(host));
  for (i = 63; i < sizeof(host); i += 64)
    host[i] = '.';
  host[255] = '\0';
  snprintf(path, sizeof(path), PFX "%s/1/", host);
  assert_int_equal(
      qpeer__connect_udp_parse_path(NULL, path, strlen(path), &t, &reason), 0);
  assert_int_equal(strlen(t.host), 255);
  /* 256: too long, even when encoded. */
  host[255] = 'a';
  host[256] = '\0';
  snprintf(path, sizeof(path), PFX "%s/1/", host);
  assert_int_equal(
      qpeer__connect_udp_parse_path(NULL, path, strlen(path), &t, &reason),
      QPEER_EMALFORMED);
  assert_string_equal(reason, "target_host too long");
  memcpy(path, PFX, strlen(PFX));
  for (i = 0; i < 256; i++)
    memcpy(path + strlen(PFX) + 3 * i, "%61", 3);
  memcpy(path + strlen(PFX) + 3 * 256, "/1/", 4);
  assert_int_equal(
      qpeer__connect_udp_parse_path(NULL, path, strlen(path), &t, &reason),
      QPEER_EMALFORMED);
  assert_string_equal(reason, "target_host too long");
  /* A label of 64. */
  memset(host, 'b', 64);
  host[64] = '\0';
  snprintf(path, sizeof(path), PFX "%s/1/", host);
  assert_int_equal(
      qpeer__connect_udp_parse_path(NULL, path, strlen(path), &t, &reason),
      QPEER_EMALFORMED);
  assert_string_equal(reason, "invalid hostname in target_host");
}

/* Expansion and parsing agree for every kind of target. */
static void test_connect_udp_roundtrip(void **state) {
  static const char *const hosts[] = {
      "192.0.2.1",  "2001:db8::1",     "::", "::ffff:10.0.0.1", "example.org",
      "a.b-c.d_e.", "255.255.255.255", NULL,
  };
  static const uint16_t ports[] = {1, 80, 443, 65535};
  size_t i, j;
  (void)state;
  for (i = 0; i < QPEER__ARRAY_SIZE(hosts); i++) {
    for (j = 0; j < QPEER__ARRAY_SIZE(ports); j++) {
      char buf[512];
      qpeer__connect_udp_uri u;
      qpeer__connect_udp_target t;
      ssize_t n = expand(buf, sizeof(buf), NULL, "proxy.example", 443, hosts[i],
                         ports[j]);
      assert_true(n > 0);
      assert_int_equal(qpeer__connect_udp_split_uri(buf, (size_t)n, &u), 0);
      assert_int_equal(
          qpeer__connect_udp_parse_path(NULL, u.path, u.pathlen, &t, NULL), 0);
      if (!hosts[i]) {
        assert_int_equal(t.kind, QPEER__CONNECT_UDP_BIND);
        assert_int_equal(t.port, 0);
      } else {
        assert_string_equal(t.host, hosts[i]);
        assert_int_equal(t.port, ports[j]);
      }
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connect_udp_rfc9298_examples),
      cmocka_unit_test(test_connect_udp_expand_forms),
      cmocka_unit_test(test_connect_udp_expand_bad_templates),
      cmocka_unit_test(test_connect_udp_expand_bad_values),
      cmocka_unit_test(test_connect_udp_expand_bounds),
      cmocka_unit_test(test_connect_udp_split_uri),
      cmocka_unit_test(test_connect_udp_parse_valid),
      cmocka_unit_test(test_connect_udp_parse_malformed),
      cmocka_unit_test(test_connect_udp_parse_host_length),
      cmocka_unit_test(test_connect_udp_roundtrip),
  };
  return cmocka_run_group_tests_name("connect_udp", tests, NULL, NULL);
}
