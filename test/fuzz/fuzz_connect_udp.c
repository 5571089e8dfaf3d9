/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the connect-udp text codecs (lib/h3/connect_udp.c and
 * lib/h3/proxy_status.c). The input is tried as a request :path (what
 * parses must expand back through the default template and parse to the
 * same target), as a URI template (expansion must be deterministic and
 * bounded), as a Proxy-Public-Address value (format and re-parse must give
 * the same addresses), as a URI to split, and as an SF Boolean.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "h3/connect_udp.h"
#include "h3/proxy_status.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
  if (!cond)
    abort();
}

static void try_path(const char *s, size_t n) {
  qpeer__connect_udp_target t, t2;
  qpeer__connect_udp_vars v;
  qpeer__connect_udp_uri u;
  const char *reason = NULL;
  char uri[1024];
  ssize_t m;
  int rv = qpeer__connect_udp_parse_path(NULL, s, n, &t, &reason);
  if (rv < 0) {
    check(rv == QPEER_EMALFORMED && reason != NULL);
    return;
  }
  check(reason == NULL && strlen(t.host) <= QPEER__CONNECT_UDP_HOST_MAX);
  v.proxy_host = "proxy.example";
  v.proxy_port = 443;
  v.target_host = t.kind == QPEER__CONNECT_UDP_BIND ? NULL : t.host;
  v.target_port = t.port;
  check(t.kind == QPEER__CONNECT_UDP_BIND ? t.port == 0 : t.port != 0);
  m = qpeer__connect_udp_expand(uri, sizeof(uri), NULL, &v);
  check(m > 0 && (size_t)m == strlen(uri));
  check(qpeer__connect_udp_split_uri(uri, (size_t)m, &u) == 0);
  check(qpeer__connect_udp_parse_path(NULL, u.path, u.pathlen, &t2, NULL) == 0);
  check(t2.kind == t.kind && t2.port == t.port && strcmp(t2.host, t.host) == 0);
  if (t.kind == QPEER__CONNECT_UDP_IPV4 || t.kind == QPEER__CONNECT_UDP_IPV6)
    check(qpeer__addr_equal((const struct sockaddr *)&t.addr,
                            (const struct sockaddr *)&t2.addr));
}

static void try_template(const char *s, size_t n) {
  static const char *const hosts[] = {"2001:db8::1", "example.org", NULL};
  size_t i;
  for (i = 0; i < QPEER__ARRAY_SIZE(hosts); i++) {
    qpeer__connect_udp_vars v;
    qpeer__connect_udp_uri u;
    char *out = malloc(4 * n + 64), *out2;
    size_t cap = 4 * n + 64;
    ssize_t m, m2;
    check(out != NULL);
    v.proxy_host = "[2001:db8::2]";
    v.proxy_port = 4433;
    v.target_host = hosts[i];
    v.target_port = 65535;
    m = qpeer__connect_udp_expand(out, cap, s, &v);
    if (m < 0) {
      check(m == UV_EINVAL || m == UV_ENOBUFS);
      free(out);
      continue;
    }
    check((size_t)m == strlen(out) && (size_t)m < cap);
    out2 = malloc((size_t)m + 1);
    check(out2 != NULL);
    m2 = qpeer__connect_udp_expand(out2, (size_t)m + 1, s, &v);
    check(m2 == m && memcmp(out, out2, (size_t)m + 1) == 0);
    check(qpeer__connect_udp_expand(out2, (size_t)m, s, &v) == UV_ENOBUFS);
    if (qpeer__connect_udp_split_uri(out, (size_t)m, &u) == 0)
      check(u.path >= out && u.path + u.pathlen <= out + m);
    free(out2);
    free(out);
  }
}

static void try_public_address(const char *s, size_t n) {
  struct sockaddr_storage a[8], b[8];
  char text[8 * 64];
  ssize_t m;
  int k, k2, i;
  k = qpeer__proxy_public_address_parse(s, n, a, 8);
  if (k < 0) {
    check(k == QPEER_EMALFORMED);
    return;
  }
  k = QPEER__MIN(k, 8);
  m = qpeer__proxy_public_address_format(text, sizeof(text), a, (size_t)k);
  check(m >= 0 && (size_t)m == strlen(text));
  k2 = qpeer__proxy_public_address_parse(text, (size_t)m, b, 8);
  check(k2 == k);
  for (i = 0; i < k; i++)
    check(qpeer__addr_equal((const struct sockaddr *)&a[i],
                            (const struct sockaddr *)&b[i]));
}

static void try_split(const char *s, size_t n) {
  qpeer__connect_udp_uri u;
  if (qpeer__connect_udp_split_uri(s, n, &u) < 0)
    return;
  check(u.scheme == s && u.schemelen > 0 && u.authoritylen > 0);
  check(u.authority > s && u.authority + u.authoritylen <= s + n);
  check(u.path > s && u.path + u.pathlen <= s + n && u.path[0] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  int b;
  check(s != NULL);
  if (size)
    memcpy(s, data, size);
  s[size] = '\0';
  try_path(s, size);
  try_template(s, strlen(s));
  try_public_address(s, size);
  try_split(s, size);
  b = qpeer__sf_boolean_is_true(s, size);
  check(b == 0 || b == 1);
  free(s);
  return 0;
}
