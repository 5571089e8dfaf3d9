/* SPDX-License-Identifier: MIT */
/*
 * RFC 9298 targets (see connect_udp.h). Divisions: character classes and
 * host validation shared by both directions; :path parsing (proxy side);
 * URI template expansion and URI splitting (client side). Pure: no I/O.
 */
#include <arpa/inet.h>
#include <string.h>

#include "h3/connect_udp.h"
#include "internal.h"

/* Character classes (RFC 3986 §2). */

static int is_alpha(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int is_unreserved(int c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

static int is_sub_delim(int c) { return c && strchr("!$&'()*+,;=", c); }

/* pchar minus pct-encoded: what may appear raw in a path segment. */
static int is_pchar(int c) {
  return is_unreserved(c) || is_sub_delim(c) || c == ':' || c == '@';
}

static int hex_value(int c) {
  if (is_digit(c))
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int malformed(const char **preason, const char *reason) {
  if (preason)
    *preason = reason;
  return QPEER_EMALFORMED;
}

/* Host validation. */

/* Checks a DNS name: dot-separated labels of 1..63 letters, digits, '-' or
 * '_' (not starting or ending with '-'), with an optional final dot. */
static int check_hostname(const char *h, size_t n) {
  size_t i, label = 0;
  if (n > 0 && h[n - 1] == '.')
    n--;
  if (n == 0)
    return -1;
  for (i = 0; i < n; i++) {
    int c = (unsigned char)h[i];
    if (c == '.') {
      if (label == 0 || h[i - 1] == '-')
        return -1;
      label = 0;
    } else if (is_alpha(c) || is_digit(c) || c == '_' || c == '-') {
      if (c == '-' && label == 0)
        return -1;
      if (++label > 63)
        return -1;
    } else {
      return -1;
    }
  }
  /* "a.." leaves an empty last label once the final dot is stripped. */
  return label == 0 || h[n - 1] == '-' ? -1 : 0;
}

/* Nonzero if the last label of |h| (ignoring one final dot) is all digits,
 * which makes the whole host an IPv4 literal or nothing (WHATWG rule). */
static int last_label_numeric(const char *h, size_t n) {
  size_t i = n;
  if (i > 0 && h[i - 1] == '.')
    i--;
  if (i == 0 || !is_digit((unsigned char)h[i - 1]))
    return 0;
  while (i > 0 && h[i - 1] != '.') {
    if (!is_digit((unsigned char)h[i - 1]))
      return 0;
    i--;
  }
  return 1;
}

/* Classifies the NUL-terminated, decoded host |h| of length |n|. Returns a
 * QPEER__CONNECT_UDP_* kind and fills |addr| for literals, or
 * QPEER_EMALFORMED with a reason. */
static int classify_host(const char *h, size_t n, struct sockaddr_storage *addr,
                         const char **preason) {
  memset(addr, 0, sizeof(*addr));
  if (n == 0)
    return malformed(preason, "empty target_host");
  if (n > QPEER__CONNECT_UDP_HOST_MAX)
    return malformed(preason, "target_host too long");
  if (strlen(h) != n)
    return malformed(preason, "control character in target_host");
  if (memchr(h, ':', n)) {
    struct sockaddr_in6 *a6 = (void *)addr;
    if (memchr(h, '%', n))
      return malformed(preason, "scoped IPv6 address in target_host");
    if (inet_pton(AF_INET6, h, &a6->sin6_addr) != 1)
      return malformed(preason, "invalid IPv6 literal in target_host");
    a6->sin6_family = AF_INET6;
    return QPEER__CONNECT_UDP_IPV6;
  }
  if (last_label_numeric(h, n)) {
    struct sockaddr_in *a4 = (void *)addr;
    if (inet_pton(AF_INET, h, &a4->sin_addr) != 1)
      return malformed(preason, "invalid IPv4 literal in target_host");
    a4->sin_family = AF_INET;
    return QPEER__CONNECT_UDP_IPV4;
  }
  if (check_hostname(h, n) < 0)
    return malformed(preason, "invalid hostname in target_host");
  return QPEER__CONNECT_UDP_NAME;
}

/* :path parsing. */

/* Percent-decodes the segment [s, s+n) into |out| (room |cap|, plus a NUL),
 * rejecting raw characters outside pchar, bad escapes, control characters
 * and non-ASCII bytes. |is_host| picks the wording of the reason. */
static int decode_segment(const char *s, size_t n, char *out, size_t cap,
                          size_t *poutlen, int is_host, const char **preason) {
  size_t i, o = 0;
  for (i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      int hi, lo;
      if (n - i < 3)
        return malformed(preason, "truncated percent-escape");
      hi = hex_value((unsigned char)s[i + 1]);
      lo = hex_value((unsigned char)s[i + 2]);
      if (hi < 0 || lo < 0)
        return malformed(preason, "bad percent-escape");
      c = hi * 16 + lo;
      i += 2;
    } else if (c < 0x20 || c == 0x7f) {
      return malformed(preason, "control character in path");
    } else if (!is_pchar(c)) {
      return malformed(preason, "invalid character in path");
    }
    if (c < 0x20 || c == 0x7f)
      return malformed(preason, is_host ? "control character in target_host"
                                        : "control character in "
                                          "target_port");
    if (c >= 0x80)
      return malformed(preason, is_host ? "non-ASCII target_host"
                                        : "non-ASCII target_port");
    if (o == cap)
      return malformed(preason, is_host ? "target_host too long"
                                        : "target_port out of range");
    out[o++] = (char)c;
  }
  out[o] = '\0';
  *poutlen = o;
  return 0;
}

/* Parses a decoded port: decimal digits only (leading zeros allowed), value
 * 1..65535. */
static int parse_port(const char *s, size_t n, uint16_t *pport,
                      const char **preason) {
  uint32_t v = 0;
  size_t i;
  if (n == 0)
    return malformed(preason, "empty target_port");
  for (i = 0; i < n; i++) {
    if (!is_digit((unsigned char)s[i]))
      return malformed(preason, "target_port is not a number");
    v = v * 10 + (uint32_t)(s[i] - '0');
    if (v > 65535)
      return malformed(preason, "target_port out of range");
  }
  if (v == 0)
    return malformed(preason, "target_port out of range");
  *pport = (uint16_t)v;
  return 0;
}

int qpeer__connect_udp_parse_path(const char *prefix, const char *path,
                                  size_t pathlen, qpeer__connect_udp_target *pt,
                                  const char **preason) {
  const char *s, *e, *slash1, *slash2;
  char portbuf[8];
  size_t plen, hostlen, portlen;
  int host_wild, port_wild, rv;

  if (!prefix)
    prefix = QPEER__CONNECT_UDP_PATH_PREFIX;
  plen = strlen(prefix);
  memset(pt, 0, sizeof(*pt));
  if (preason)
    *preason = NULL;
  if (pathlen < plen || memcmp(path, prefix, plen) != 0)
    return malformed(preason, "path does not match the URI template");
  if (memchr(path, '?', pathlen) || memchr(path, '#', pathlen))
    return malformed(preason, "query or fragment in path");
  s = path + plen;
  e = path + pathlen;
  slash1 = memchr(s, '/', (size_t)(e - s));
  if (!slash1)
    return malformed(preason,
                     s == e ? "missing target_host" : "missing target_port");
  if (slash1 == s)
    return malformed(preason, "empty target_host");
  slash2 = memchr(slash1 + 1, '/', (size_t)(e - slash1 - 1));
  if (!slash2)
    return malformed(preason, slash1 + 1 == e ? "missing target_port"
                                              : "missing trailing slash");
  if (slash2 == slash1 + 1)
    return malformed(preason, "empty target_port");
  if (slash2 + 1 != e)
    return malformed(preason, "extra path segments");

  rv = decode_segment(s, (size_t)(slash1 - s), pt->host,
                      QPEER__CONNECT_UDP_HOST_MAX, &hostlen, 1, preason);
  if (rv < 0)
    return rv;
  rv = decode_segment(slash1 + 1, (size_t)(slash2 - slash1 - 1), portbuf,
                      sizeof(portbuf) - 1, &portlen, 0, preason);
  if (rv < 0)
    return rv;

  host_wild = hostlen == 1 && pt->host[0] == '*';
  port_wild = portlen == 1 && portbuf[0] == '*';
  if (host_wild != port_wild)
    return malformed(preason, "only one of target_host and target_port "
                              "is a wildcard");
  if (host_wild) {
    pt->kind = QPEER__CONNECT_UDP_BIND;
    return 0;
  }
  rv = parse_port(portbuf, portlen, &pt->port, preason);
  if (rv < 0)
    return rv;
  rv = classify_host(pt->host, hostlen, &pt->addr, preason);
  if (rv < 0)
    return rv;
  pt->kind = rv;
  if (rv == QPEER__CONNECT_UDP_IPV4)
    ((struct sockaddr_in *)(void *)&pt->addr)->sin_port = htons(pt->port);
  else if (rv == QPEER__CONNECT_UDP_IPV6)
    ((struct sockaddr_in6 *)(void *)&pt->addr)->sin6_port = htons(pt->port);
  return 0;
}

/* Template expansion. */

/* A bounded output cursor; |overflow| records a write past |end|. */
typedef struct {
  char *p;      /* next byte to write */
  char *end;    /* last writable byte (kept for the NUL) */
  int overflow; /* nonzero once something did not fit */
} out_t;

static void out_char(out_t *o, char c) {
  if (o->p < o->end)
    *o->p++ = c;
  else
    o->overflow = 1;
}

static void out_str(out_t *o, const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    out_char(o, s[i]);
}

static void out_encoded(out_t *o, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (is_unreserved(c)) {
      out_char(o, (char)c);
    } else {
      out_char(o, '%');
      out_char(o, hex[c >> 4]);
      out_char(o, hex[c & 15]);
    }
  }
}

static size_t format_port(char *buf, uint16_t port) {
  char tmp[5];
  size_t n = 0, i;
  do {
    tmp[n++] = (char)('0' + port % 10);
    port /= 10;
  } while (port);
  for (i = 0; i < n; i++)
    buf[i] = tmp[n - 1 - i];
  return n;
}

/* Which variable a name in an expression refers to. */
enum { V_UNDEF, V_TARGET_HOST, V_TARGET_PORT, V_HOST, V_PORT };

static int var_id(const char *name, size_t n) {
  if (n == 11 && !memcmp(name, "target_host", n))
    return V_TARGET_HOST;
  if (n == 11 && !memcmp(name, "target_port", n))
    return V_TARGET_PORT;
  if (n == 4 && !memcmp(name, "host", n))
    return V_HOST;
  if (n == 4 && !memcmp(name, "port", n))
    return V_PORT;
  return V_UNDEF;
}

/* Checks a varname (RFC 6570 §2.3): varchars, dots between them. */
static int check_varname(const char *s, size_t n) {
  size_t i;
  if (n == 0 || s[0] == '.' || s[n - 1] == '.')
    return -1;
  for (i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      if (i + 2 >= n || hex_value((unsigned char)s[i + 1]) < 0 ||
          hex_value((unsigned char)s[i + 2]) < 0)
        return -1;
      i += 2;
    } else if (!is_alpha(c) && !is_digit(c) && c != '_' && c != '.') {
      return -1;
    }
  }
  return 0;
}

/* The expansion state shared by the expression writer. */
typedef struct {
  const qpeer__connect_udp_vars *vars; /* the caller's values */
  const char *thost;                   /* target host without brackets */
  size_t thostlen;                     /* its length */
  const char *phost;                   /* proxy host without brackets */
  size_t phostlen;                     /* its length */
  int proxy_v6;                        /* proxy host is an IPv6 literal */
  int seen;                            /* bitmask of target vars seen */
} expand_t;

/* Writes the value of variable |id| (which must be defined). */
static void out_value(out_t *o, const expand_t *x, int id) {
  char num[5];
  switch (id) {
  case V_TARGET_HOST:
    if (x->vars->target_host)
      out_encoded(o, x->thost, x->thostlen);
    else
      out_encoded(o, "*", 1);
    break;
  case V_TARGET_PORT:
    if (x->vars->target_host)
      out_str(o, num, format_port(num, x->vars->target_port));
    else
      out_encoded(o, "*", 1);
    break;
  case V_HOST:
    if (x->proxy_v6)
      out_char(o, '[');
    out_str(o, x->phost, x->phostlen);
    if (x->proxy_v6)
      out_char(o, ']');
    break;
  case V_PORT:
    out_str(o, num, format_port(num, x->vars->proxy_port));
    break;
  }
}

/* Expands the expression body [s, s+n) (between the braces). */
static int expand_expr(out_t *o, expand_t *x, const char *s, size_t n,
                       int in_authority) {
  char op = 0;
  const char *name, *end = s + n;
  int first = 1;
  if (n > 0 && strchr("+#./;?&=,!@|", s[0])) {
    op = s[0];
    if (op != '?' && op != '&')
      return UV_EINVAL; /* forbidden by RFC 9298 or reserved */
    s++;
  }
  while (s <= end) {
    const char *comma = memchr(s, ',', (size_t)(end - s));
    size_t len;
    int id;
    name = s;
    len = comma ? (size_t)(comma - s) : (size_t)(end - s);
    s += len + 1;
    if (check_varname(name, len) < 0)
      return UV_EINVAL; /* also rejects the ':' and '*' modifiers */
    id = var_id(name, len);
    if ((id == V_TARGET_HOST || id == V_TARGET_PORT) && in_authority)
      return UV_EINVAL;
    if (id == V_TARGET_HOST)
      x->seen |= 1;
    if (id == V_TARGET_PORT)
      x->seen |= 2;
    if ((id == V_HOST && !x->vars->proxy_host) ||
        (id == V_PORT && x->vars->proxy_port == 0))
      return UV_EINVAL;
    if (id == V_UNDEF)
      continue;
    if (op)
      out_char(o, first ? op : '&');
    else if (!first)
      out_char(o, ',');
    if (op) {
      out_str(o, name, len);
      out_char(o, '=');
    }
    out_value(o, x, id);
    first = 0;
  }
  return 0;
}

/* Strips one pair of brackets from an IP literal. */
static void unbracket(const char *h, const char **ph, size_t *pn) {
  size_t n = strlen(h);
  if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
    h++;
    n -= 2;
  }
  *ph = h;
  *pn = n;
}

/* Validates the caller's values into |x|. */
static int prepare_values(expand_t *x, const qpeer__connect_udp_vars *v) {
  struct sockaddr_storage ss;
  char buf[QPEER__CONNECT_UDP_HOST_MAX + 1];
  int kind;
  memset(x, 0, sizeof(*x));
  x->vars = v;
  if (v->target_host) {
    unbracket(v->target_host, &x->thost, &x->thostlen);
    if (x->thostlen > QPEER__CONNECT_UDP_HOST_MAX || v->target_port == 0)
      return UV_EINVAL;
    memcpy(buf, x->thost, x->thostlen);
    buf[x->thostlen] = '\0';
    if (classify_host(buf, x->thostlen, &ss, NULL) < 0)
      return UV_EINVAL;
  }
  if (v->proxy_host) {
    unbracket(v->proxy_host, &x->phost, &x->phostlen);
    if (x->phostlen > QPEER__CONNECT_UDP_HOST_MAX)
      return UV_EINVAL;
    memcpy(buf, x->phost, x->phostlen);
    buf[x->phostlen] = '\0';
    kind = classify_host(buf, x->phostlen, &ss, NULL);
    if (kind < 0)
      return UV_EINVAL;
    x->proxy_v6 = kind == QPEER__CONNECT_UDP_IPV6;
  }
  return 0;
}

/* Checks the template's fixed shape: printable ASCII, a scheme, "://", a
 * non-empty authority and a path starting with '/'. Stores where the path
 * starts. */
static int check_template(const char *t, size_t *ppath) {
  const char *p = strstr(t, "://"), *c;
  size_t i;
  for (c = t; *c; c++)
    if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
      return UV_EINVAL;
  if (!p || p == t || !is_alpha((unsigned char)t[0]))
    return UV_EINVAL;
  for (i = 1; t + i < p; i++) {
    int ch = (unsigned char)t[i];
    if (!is_alpha(ch) && !is_digit(ch) && ch != '+' && ch != '-' && ch != '.')
      return UV_EINVAL;
  }
  p += 3;
  c = p + strcspn(p, "/?#");
  if (c == p || *c != '/')
    return UV_EINVAL;
  *ppath = (size_t)(c - t);
  return 0;
}

ssize_t qpeer__connect_udp_expand(char *dest, size_t destlen, const char *tmpl,
                                  const qpeer__connect_udp_vars *vars) {
  out_t o;
  expand_t x;
  size_t pathstart, i;
  int rv;

  if (!tmpl)
    tmpl = QPEER__CONNECT_UDP_TEMPLATE_DEFAULT;
  if (destlen == 0)
    return UV_ENOBUFS;
  rv = check_template(tmpl, &pathstart);
  if (rv == 0)
    rv = prepare_values(&x, vars);
  if (rv < 0)
    return rv;
  o.p = dest;
  o.end = dest + destlen - 1;
  o.overflow = 0;
  for (i = 0; tmpl[i]; i++) {
    const char *close;
    if (tmpl[i] == '}')
      return UV_EINVAL;
    if (tmpl[i] != '{') {
      out_char(&o, tmpl[i]);
      continue;
    }
    close = strchr(tmpl + i + 1, '}');
    if (!close || memchr(tmpl + i + 1, '{', (size_t)(close - tmpl - i - 1)))
      return UV_EINVAL;
    rv = expand_expr(&o, &x, tmpl + i + 1, (size_t)(close - tmpl - i - 1),
                     i < pathstart);
    if (rv < 0)
      return rv;
    i = (size_t)(close - tmpl);
  }
  *o.p = '\0';
  if (x.seen != 3)
    return UV_EINVAL;
  if (o.overflow)
    return UV_ENOBUFS;
  return (ssize_t)(o.p - dest);
}

int qpeer__connect_udp_split_uri(const char *uri, size_t len,
                                 qpeer__connect_udp_uri *pu) {
  const char *end = uri + len, *p, *a, *hash;
  size_t i;
  memset(pu, 0, sizeof(*pu));
  for (p = uri; p + 2 < end; p++)
    if (p[0] == ':' && p[1] == '/' && p[2] == '/')
      break;
  if (p + 2 >= end || p == uri)
    return UV_EINVAL;
  for (i = 0; uri + i < p; i++) {
    int c = (unsigned char)uri[i];
    if (!is_alpha(c) &&
        (i == 0 || !(is_digit(c) || c == '+' || c == '-' || c == '.')))
      return UV_EINVAL;
  }
  a = p + 3;
  for (p = a; p < end && *p != '/' && *p != '?' && *p != '#'; p++)
    ;
  if (p == a || p == end || *p != '/')
    return UV_EINVAL;
  hash = memchr(p, '#', (size_t)(end - p));
  pu->scheme = uri;
  pu->schemelen = (size_t)(a - 3 - uri);
  pu->authority = a;
  pu->authoritylen = (size_t)(p - a);
  pu->path = p;
  pu->pathlen = (size_t)((hash ? hash : end) - p);
  return 0;
}
