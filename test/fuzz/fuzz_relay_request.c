/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the relay's request-header handling (lib/h3/relay.c,
 * handle_request). That function is not pure (it answers on the stream), so
 * this target replays its decisions on the pure pieces it calls, in the same
 * order: :method must be CONNECT (405), :protocol connect-udp with a :path
 * (501), qpeer__connect_udp_parse_path (400 under our prefix, else 404),
 * connect-udp-bind as an SF Boolean where a repeated field counts as absent,
 * a wildcard target without it (400), the bearer token of authorization,
 * and the Proxy-Status value of a refusal (qpeer__proxy_status_format).
 *
 * Input: a header block, one field a line, "name value" (split at the first
 * space; a name may start with ':'). Each value is copied into a buffer of
 * exactly its length, so any read past it is caught by ASan.
 *
 * Checks (abort on inconsistency): the parse is deterministic and equal with
 * the default and the explicit prefix; an accepted target is well-formed
 * (bind <=> "*" and port 0; a literal's address has the target's family
 * and port; a name is dot-separated labels of 1..63 letters, digits, '-'
 * and '_', one optional final dot); no strict prefix and no one-byte extension of an accepted
 * :path is accepted; a refusal has a reason that formats into a printable
 * Proxy-Status; the bearer token lies inside the authorization value.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h3/connect_udp.h"
#include "h3/proxy_status.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
  if (!cond)
    abort();
}

#define MAXF 32

typedef struct field {
  const char *name;
  size_t namelen;
  const char *value;
  size_t valuelen;
} field;

/* The value of |name| and how many fields carry it (as
 * qpeer__h3req_header reports repetition). */
static const field *find(const field *f, size_t n, const char *name,
                         int *prep) {
  const field *first = NULL;
  size_t i, len = strlen(name);
  int count = 0;
  for (i = 0; i < n; i++)
    if (f[i].namelen == len && !memcmp(f[i].name, name, len)) {
      if (!first)
        first = &f[i];
      count++;
    }
  if (prep)
    *prep = count > 1;
  return first;
}

static int str_is(const field *v, const char *s) {
  return v && v->valuelen == strlen(s) && !memcmp(v->value, s, v->valuelen);
}

/* relay.c's bearer_of (static there), on a NUL-terminated copy. */
static const char *bearer_of(const char *auth) {
  if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
    return NULL;
  auth += 7;
  while (*auth == ' ')
    auth++;
  return *auth ? auth : NULL;
}

static int name_ok(const char *h) {
  size_t label = 0, n = strlen(h), i;
  if (n > 0 && h[n - 1] == '.') /* one optional final dot */
    n--;
  if (n == 0)
    return 0;
  for (i = 0; i < n; i++) {
    char c = h[i];
    if (c == '.') {
      if (label == 0)
        return 0;
      label = 0;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return 0;
    if (++label > 63)
      return 0;
  }
  return label > 0; /* no empty last label ("a..") */
}

static void check_target(const qpeer__connect_udp_target *t) {
  check(strlen(t->host) <= QPEER__CONNECT_UDP_HOST_MAX);
  switch (t->kind) {
  case QPEER__CONNECT_UDP_BIND:
    check(t->port == 0 && !strcmp(t->host, "*"));
    break;
  case QPEER__CONNECT_UDP_IPV4: {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&t->addr;
    char txt[INET_ADDRSTRLEN];
    check(a->sin_family == AF_INET && ntohs(a->sin_port) == t->port);
    check(t->port != 0);
    check(inet_ntop(AF_INET, &a->sin_addr, txt, sizeof(txt)) != NULL);
    break;
  }
  case QPEER__CONNECT_UDP_IPV6: {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&t->addr;
    check(a->sin6_family == AF_INET6 && ntohs(a->sin6_port) == t->port);
    check(t->port != 0 && strchr(t->host, ':') != NULL);
    break;
  }
  case QPEER__CONNECT_UDP_NAME:
    check(t->port != 0 && name_ok(t->host));
    break;
  default:
    check(0);
  }
}

static int parse(const char *p, size_t n, qpeer__connect_udp_target *t) {
  char *copy = malloc(n ? n : 1);
  const char *why = NULL;
  int rv;
  check(copy != NULL);
  if (n)
    memcpy(copy, p, n);
  rv = qpeer__connect_udp_parse_path(NULL, copy, n, t, &why);
  check(rv == 0 ? why == NULL : rv == QPEER_EMALFORMED && why != NULL);
  free(copy);
  return rv;
}

/* The Proxy-Status value relay.c's respond_error sends. */
static void refusal(const char *error, const char *details) {
  char buf[1024];
  ssize_t m = qpeer__proxy_status_format(buf, sizeof(buf), NULL, error,
                                         details);
  size_t i;
  check(m > 0 && (size_t)m == strlen(buf));
  for (i = 0; i < (size_t)m; i++)
    check(buf[i] >= 0x20 && buf[i] <= 0x7e);
  check(!strncmp(buf, QPEER__PROXY_STATUS_NAME, strlen(QPEER__PROXY_STATUS_NAME)));
}

/* Returns the status handle_request would answer before access control:
 * 0 to go on, or 4xx/5xx. */
static int decide(const field *f, size_t n) {
  const field *m = find(f, n, ":method", NULL);
  const field *proto = find(f, n, ":protocol", NULL);
  const field *path = find(f, n, ":path", NULL);
  const field *bindv, *auth;
  qpeer__connect_udp_target t, t2;
  const char *why = NULL, *why2 = NULL;
  char *pathbuf;
  int rv, rv2, rep = 0, bind, isbind;

  if (!str_is(m, "CONNECT")) {
    refusal(QPEER__PROXY_ERR_REQUEST_ERROR, "only Extended CONNECT");
    return 405;
  }
  if (!str_is(proto, QPEER__CONNECT_UDP_PROTOCOL) || !path) {
    refusal(QPEER__PROXY_ERR_REQUEST_ERROR, "only connect-udp");
    return 501;
  }
  pathbuf = malloc(path->valuelen ? path->valuelen : 1);
  check(pathbuf != NULL);
  if (path->valuelen)
    memcpy(pathbuf, path->value, path->valuelen);
  rv = qpeer__connect_udp_parse_path(NULL, pathbuf, path->valuelen, &t, &why);
  rv2 = qpeer__connect_udp_parse_path(QPEER__CONNECT_UDP_PATH_PREFIX, pathbuf,
                                      path->valuelen, &t2, &why2);
  check(rv == rv2 && why == why2);
  if (rv != 0) {
    size_t pl = strlen(QPEER__CONNECT_UDP_PATH_PREFIX);
    int ours = path->valuelen >= pl &&
               !memcmp(pathbuf, QPEER__CONNECT_UDP_PATH_PREFIX, pl);
    check(rv == QPEER_EMALFORMED && why != NULL);
    refusal(QPEER__PROXY_ERR_REQUEST_ERROR, why);
    free(pathbuf);
    return ours ? 400 : 404;
  }
  check(why == NULL);
  check(t.kind == t2.kind && t.port == t2.port && !strcmp(t.host, t2.host));
  check_target(&t);
  /* Exactly prefix, host, '/', port, '/': nothing shorter or longer. */
  {
    size_t k, step = path->valuelen > 64 ? path->valuelen / 32 : 1;
    char *ext = malloc(path->valuelen + 1);
    qpeer__connect_udp_target t3;
    check(ext != NULL);
    for (k = 0; k < path->valuelen; k += step)
      check(parse(pathbuf, k, &t3) != 0);
    check(parse(pathbuf, path->valuelen - 1, &t3) != 0);
    memcpy(ext, pathbuf, path->valuelen);
    ext[path->valuelen] = 'x';
    check(parse(ext, path->valuelen + 1, &t3) != 0);
    ext[path->valuelen] = '/';
    check(parse(ext, path->valuelen + 1, &t3) != 0);
    free(ext);
  }
  free(pathbuf);

  bindv = find(f, n, QPEER__HDR_CONNECT_UDP_BIND, &rep);
  bind = !rep && bindv &&
         qpeer__sf_boolean_is_true(bindv->value, bindv->valuelen);
  if (bindv) {
    int b = qpeer__sf_boolean_is_true(bindv->value, bindv->valuelen);
    check(b == 0 || b == 1);
    if (b) { /* "?1" must be in there */
      check(bindv->valuelen >= 2);
      size_t k;
      int seen = 0;
      for (k = 0; k + 1 < bindv->valuelen; k++)
        seen |= bindv->value[k] == '?' && bindv->value[k + 1] == '1';
      check(seen);
    }
  }
  isbind = t.kind == QPEER__CONNECT_UDP_BIND;
  if (isbind && !bind) {
    refusal(QPEER__PROXY_ERR_REQUEST_ERROR,
            "wildcard target without connect-udp-bind");
    return 400;
  }
  {
    const field *cp = find(f, n, QPEER__HDR_CAPSULE_PROTOCOL, NULL);
    if (cp) {
      int b = qpeer__sf_boolean_is_true(cp->value, cp->valuelen);
      check(b == 0 || b == 1);
    }
  }
  auth = find(f, n, "authorization", NULL);
  if (auth) {
    char *a = malloc(auth->valuelen + 1);
    const char *tok;
    check(a != NULL);
    memcpy(a, auth->value, auth->valuelen);
    a[auth->valuelen] = '\0';
    tok = bearer_of(a);
    if (tok) {
      check(tok >= a + 7 && tok < a + strlen(a) && *tok != ' ');
      check(!strncasecmp(a, "bearer ", 7));
    }
    free(a);
  }
  /* Access denied and target refusals send these. */
  refusal(QPEER__PROXY_ERR_REQUEST_DENIED, "token_missing");
  refusal(QPEER__PROXY_ERR_IP_PROHIBITED, "target address not allowed");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  field f[MAXF];
  size_t n = 0, i = 0;
  const char *s = (const char *)data;
  int st, st2;
  while (i < size && n < MAXF) {
    size_t end = i, sp;
    while (end < size && s[end] != '\n')
      end++;
    for (sp = i; sp < end && s[sp] != ' '; sp++) {
    }
    f[n].name = s + i;
    f[n].namelen = sp - i;
    f[n].value = sp < end ? s + sp + 1 : s + end;
    f[n].valuelen = sp < end ? end - sp - 1 : 0;
    if (f[n].valuelen && f[n].value[f[n].valuelen - 1] == '\r')
      f[n].valuelen--;
    n++;
    i = end + 1;
  }
  st = decide(f, n);
  st2 = decide(f, n);
  check(st == st2);
  check(st == 0 || st == 400 || st == 404 || st == 405 || st == 501);
  return 0;
}
