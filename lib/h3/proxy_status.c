/* SPDX-License-Identifier: MIT */
/*
 * Structured Field values for connect-udp (see proxy_status.h). Divisions:
 * a minimal RFC 8941 reader (enough to walk Lists, Items and Parameters);
 * Proxy-Public-Address parsing and formatting; Proxy-Status formatting; the
 * Boolean check. Pure: no I/O, no allocation.
 */
#include <arpa/inet.h>
#include <string.h>

#include "h3/proxy_status.h"
#include "internal.h"

/* The RFC 8941 reader. */

/* A cursor over a field value. */
typedef struct {
  const char *p;   /* next character */
  const char *end; /* one past the last character */
} sf_t;

static int sf_peek(const sf_t *s) {
  return s->p < s->end ? (unsigned char)*s->p : -1;
}

static int is_alpha(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int is_lcalpha(int c) { return c >= 'a' && c <= 'z'; }

static int is_tchar(int c) {
  return is_alpha(c) || is_digit(c) || (c > 0 && strchr("!#$%&'*+-.^_`|~", c));
}

static void sf_skip_sp(sf_t *s) {
  while (sf_peek(s) == ' ')
    s->p++;
}

static void sf_skip_ows(sf_t *s) {
  while (sf_peek(s) == ' ' || sf_peek(s) == '\t')
    s->p++;
}

/* Reads an sf-string. If |out| is not NULL the unescaped text (at most
 * |cap| bytes, then NUL) is stored there and an overlong string fails. */
static int sf_string(sf_t *s, char *out, size_t cap, size_t *plen) {
  size_t n = 0;
  if (sf_peek(s) != '"')
    return -1;
  s->p++;
  for (;;) {
    int c = sf_peek(s);
    if (c < 0)
      return -1;
    s->p++;
    if (c == '"')
      break;
    if (c == '\\') {
      c = sf_peek(s);
      if (c != '"' && c != '\\')
        return -1;
      s->p++;
    } else if (c < 0x20 || c > 0x7e) {
      return -1;
    }
    if (out) {
      if (n == cap)
        return -1;
      out[n] = (char)c;
    }
    n++;
  }
  if (out)
    out[n] = '\0';
  if (plen)
    *plen = n;
  return 0;
}

/* Reads an sf-integer or sf-decimal. */
static int sf_number(sf_t *s) {
  size_t digits = 0, frac = 0;
  int dot = 0;
  if (sf_peek(s) == '-')
    s->p++;
  if (!is_digit(sf_peek(s)))
    return -1;
  for (;;) {
    int c = sf_peek(s);
    if (is_digit(c)) {
      if (dot)
        frac++;
      else
        digits++;
    } else if (c == '.' && !dot) {
      if (digits > 12)
        return -1;
      dot = 1;
    } else {
      break;
    }
    s->p++;
    if ((!dot && digits > 15) || frac > 3)
      return -1;
  }
  return dot && frac == 0 ? -1 : 0;
}

/* Reads any bare item; returns its first character or -1. */
static int sf_bare_item(sf_t *s) {
  int c = sf_peek(s);
  if (c == '-' || is_digit(c))
    return sf_number(s) < 0 ? -1 : c;
  if (c == '"')
    return sf_string(s, NULL, 0, NULL) < 0 ? -1 : c;
  if (is_alpha(c) || c == '*') {
    while (is_tchar(sf_peek(s)) || sf_peek(s) == ':' || sf_peek(s) == '/')
      s->p++;
    return c;
  }
  if (c == ':') {
    s->p++;
    while (is_alpha(sf_peek(s)) || is_digit(sf_peek(s)) || sf_peek(s) == '+' ||
           sf_peek(s) == '/' || sf_peek(s) == '=')
      s->p++;
    if (sf_peek(s) != ':')
      return -1;
    s->p++;
    return c;
  }
  if (c == '?') {
    s->p++;
    c = sf_peek(s);
    if (c != '0' && c != '1')
      return -1;
    s->p++;
    return '?';
  }
  return -1;
}

/* Skips parameters: *( ";" *SP key [ "=" bare-item ] ). */
static int sf_params(sf_t *s) {
  while (sf_peek(s) == ';') {
    s->p++;
    sf_skip_sp(s);
    if (!is_lcalpha(sf_peek(s)) && sf_peek(s) != '*')
      return -1;
    while (is_lcalpha(sf_peek(s)) || is_digit(sf_peek(s)) ||
           (sf_peek(s) > 0 && strchr("_-.*", sf_peek(s))))
      s->p++;
    if (sf_peek(s) == '=') {
      s->p++;
      if (sf_bare_item(s) < 0)
        return -1;
    }
  }
  return 0;
}

/* Trims SP and HTAB from both ends (HTTP field value OWS). */
static void sf_init(sf_t *s, const char *value, size_t len) {
  if (!value) {
    value = "";
    len = 0;
  }
  s->p = value;
  s->end = value + len;
  sf_skip_ows(s);
  while (s->end > s->p && (s->end[-1] == ' ' || s->end[-1] == '\t'))
    s->end--;
}

/* Proxy-Public-Address. */

/* Parses one "ip:port" / "[ipv6]:port" text of length |n|. */
static int parse_addr_port(const char *t, size_t n,
                           struct sockaddr_storage *ss) {
  char host[INET6_ADDRSTRLEN];
  const char *h, *colon;
  size_t hlen, i;
  uint32_t port = 0;

  memset(ss, 0, sizeof(*ss));
  if (n > 0 && t[0] == '[') {
    const char *rb = memchr(t, ']', n);
    if (!rb || rb + 1 == t + n || rb[1] != ':')
      return -1;
    h = t + 1;
    hlen = (size_t)(rb - h);
    colon = rb + 1;
  } else {
    colon = memchr(t, ':', n);
    if (!colon || memchr(colon + 1, ':', (size_t)(t + n - colon - 1)))
      return -1;
    h = t;
    hlen = (size_t)(colon - t);
  }
  if (hlen == 0 || hlen >= sizeof(host))
    return -1;
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  n = (size_t)(t + n - colon - 1);
  if (n == 0 || n > 5)
    return -1;
  for (i = 0; i < n; i++) {
    if (!is_digit((unsigned char)colon[1 + i]))
      return -1;
    port = port * 10 + (uint32_t)(colon[1 + i] - '0');
  }
  if (port == 0 || port > 65535)
    return -1;
  if (t[0] == '[') {
    struct sockaddr_in6 *a6 = (void *)ss;
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
      return -1;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
  } else {
    struct sockaddr_in *a4 = (void *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
      return -1;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
  }
  return 0;
}

int qpeer__proxy_public_address_parse(const char *value, size_t len,
                                      struct sockaddr_storage *addrs,
                                      size_t maxaddrs) {
  sf_t s;
  char text[64];
  size_t textlen;
  int count = 0;

  sf_init(&s, value, len);
  if (s.p == s.end)
    return 0;
  for (;;) {
    struct sockaddr_storage ss;
    if (sf_string(&s, text, sizeof(text) - 1, &textlen) < 0 ||
        sf_params(&s) < 0 || parse_addr_port(text, textlen, &ss) < 0)
      return QPEER_EMALFORMED;
    if ((size_t)count < maxaddrs)
      addrs[count++] = ss;
    sf_skip_ows(&s);
    if (s.p == s.end)
      return count;
    if (sf_peek(&s) != ',')
      return QPEER_EMALFORMED;
    s.p++;
    sf_skip_ows(&s);
    if (s.p == s.end)
      return QPEER_EMALFORMED; /* trailing comma */
  }
}

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

static void out_str(out_t *o, const char *s) {
  while (*s)
    out_char(o, *s++);
}

static ssize_t out_finish(out_t *o, char *buf) {
  *o->p = '\0';
  if (o->overflow)
    return UV_ENOBUFS;
  return (ssize_t)(o->p - buf);
}

ssize_t qpeer__proxy_public_address_format(char *buf, size_t buflen,
                                           const struct sockaddr_storage *addrs,
                                           size_t n) {
  out_t o;
  size_t i;
  if (buflen == 0)
    return UV_ENOBUFS;
  o.p = buf;
  o.end = buf + buflen - 1;
  o.overflow = 0;
  for (i = 0; i < n; i++) {
    char text[INET6_ADDRSTRLEN], num[6];
    uint16_t port;
    int k = 5;
    const void *ip;
    if (addrs[i].ss_family == AF_INET) {
      const struct sockaddr_in *a = (const void *)&addrs[i];
      ip = &a->sin_addr;
      port = ntohs(a->sin_port);
    } else if (addrs[i].ss_family == AF_INET6) {
      const struct sockaddr_in6 *a = (const void *)&addrs[i];
      ip = &a->sin6_addr;
      port = ntohs(a->sin6_port);
    } else {
      return UV_EINVAL;
    }
    if (port == 0 || !inet_ntop(addrs[i].ss_family, ip, text, sizeof(text)))
      return UV_EINVAL;
    num[k] = '\0';
    while (port) {
      num[--k] = (char)('0' + port % 10);
      port /= 10;
    }
    if (i > 0)
      out_str(&o, ", ");
    out_char(&o, '"');
    if (addrs[i].ss_family == AF_INET6)
      out_char(&o, '[');
    out_str(&o, text);
    if (addrs[i].ss_family == AF_INET6)
      out_char(&o, ']');
    out_char(&o, ':');
    out_str(&o, num + k);
    out_char(&o, '"');
  }
  return out_finish(&o, buf);
}

/* Proxy-Status. */

static int is_token(const char *t) {
  if (!is_alpha((unsigned char)t[0]) && t[0] != '*')
    return 0;
  for (t++; *t; t++)
    if (!is_tchar((unsigned char)*t) && *t != ':' && *t != '/')
      return 0;
  return 1;
}

/* Writes |s| as an sf-string; bytes outside 0x20..0x7E become '?'. */
static void out_sf_string(out_t *o, const char *s) {
  out_char(o, '"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      out_char(o, '\\');
    out_char(o, c < 0x20 || c > 0x7e ? '?' : (char)c);
  }
  out_char(o, '"');
}

ssize_t qpeer__proxy_status_format(char *buf, size_t buflen,
                                   const char *proxy_name, const char *error,
                                   const char *details) {
  out_t o;
  const char *c;
  if (!proxy_name)
    proxy_name = QPEER__PROXY_STATUS_NAME;
  if (!proxy_name[0] || (error && !is_token(error)))
    return UV_EINVAL;
  for (c = proxy_name; *c; c++)
    if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
      return UV_EINVAL;
  if (buflen == 0)
    return UV_ENOBUFS;
  o.p = buf;
  o.end = buf + buflen - 1;
  o.overflow = 0;
  if (is_token(proxy_name))
    out_str(&o, proxy_name);
  else
    out_sf_string(&o, proxy_name);
  if (error) {
    out_str(&o, "; error=");
    out_str(&o, error);
  }
  if (details) {
    out_str(&o, "; details=");
    out_sf_string(&o, details);
  }
  return out_finish(&o, buf);
}

/* Booleans. */

int qpeer__sf_boolean_is_true(const char *value, size_t len) {
  sf_t s;
  sf_init(&s, value, len);
  if (sf_peek(&s) != '?' || sf_bare_item(&s) < 0)
    return 0;
  if (s.p[-1] != '1' || sf_params(&s) < 0)
    return 0;
  return s.p == s.end;
}
