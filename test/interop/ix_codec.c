/* SPDX-License-Identifier: MIT */
/*
 * ix codecs: QUIC varints (RFC 9000 §16), our HTTP/3 control stream and
 * the peer's SETTINGS (RFC 9114 §7.2.4, RFC 9220 §3, RFC 9297 §2.1.1),
 * HTTP/3 Datagrams (RFC 9297 §2.1) with the CONNECT-UDP payload format
 * (RFC 9298 §5), capsules (RFC 9297 §3.2), the RFC 9298 default URI
 * template path, and the qpeer peer-ID text used to pin qpeer-relay.
 * Written from the RFC text for the interop tests; no libqpeer code.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>

#include "ix.h"

const char *ix_prog = "ix";
int ix_verbose = 1;

static void vlog(const char *fmt, va_list ap) {
  fprintf(stderr, "%s: ", ix_prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

void ix_log(const char *fmt, ...) {
  va_list ap;
  if (ix_verbose < 1)
    return;
  va_start(ap, fmt);
  vlog(fmt, ap);
  va_end(ap);
}

void ix_debug(const char *fmt, ...) {
  va_list ap;
  if (ix_verbose < 2)
    return;
  va_start(ap, fmt);
  vlog(fmt, ap);
  va_end(ap);
}

uint64_t ix_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- varints ----------------------------------------------------------- */

size_t ix_varint_len(uint64_t v) {
  return v < 64 ? 1 : v < 16384 ? 2 : v < 1073741824 ? 4 : 8;
}

size_t ix_varint_put(uint8_t *p, uint64_t v) {
  size_t n = ix_varint_len(v), i;
  for (i = 0; i < n; i++)
    p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  p[0] |= (uint8_t)((n == 1 ? 0 : n == 2 ? 1 : n == 4 ? 2 : 3) << 6);
  return n;
}

size_t ix_varint_get(const uint8_t *p, size_t len, uint64_t *v) {
  size_t n, i;
  uint64_t x;
  if (len == 0)
    return 0;
  n = (size_t)1 << (p[0] >> 6);
  if (len < n)
    return 0;
  x = p[0] & 0x3f;
  for (i = 1; i < n; i++)
    x = (x << 8) | p[i];
  *v = x;
  return n;
}

/* ---- control stream and SETTINGS ---------------------------------------- */

size_t ix_control_preamble(uint8_t *out, int server, int h3_datagram,
                           int grease) {
  uint8_t body[48];
  size_t b = 0, n = 0;
  if (server) {
    b += ix_varint_put(body + b, IX_H3_SETTING_ENABLE_CONNECT_PROTOCOL);
    b += ix_varint_put(body + b, 1);
  }
  if (h3_datagram) {
    b += ix_varint_put(body + b, IX_H3_SETTING_H3_DATAGRAM);
    b += ix_varint_put(body + b, 1);
  }
  if (grease) {
    /* A reserved identifier 0x1f * N + 0x21 (RFC 9114 §7.2.4.1), N = 7. */
    b += ix_varint_put(body + b, 0x1fULL * 7 + 0x21);
    b += ix_varint_put(body + b, 0x2a);
  }
  n += ix_varint_put(out + n, IX_H3_STREAM_CONTROL);
  n += ix_varint_put(out + n, IX_H3_FRAME_SETTINGS);
  n += ix_varint_put(out + n, b);
  memcpy(out + n, body, b);
  n += b;
  if (grease) {
    /* A reserved frame type (RFC 9114 §7.2.8) after SETTINGS, which every
     * receiver must ignore: type 0x1f * 3 + 0x21, 3 bytes of payload. */
    n += ix_varint_put(out + n, 0x1fULL * 3 + 0x21);
    n += ix_varint_put(out + n, 3);
    memcpy(out + n, "ixg", 3);
    n += 3;
  }
  return n;
}

uint64_t ix_settings_parse(const uint8_t *p, size_t len,
                           ix_peer_settings_t *s) {
  size_t off = 0, k;
  uint64_t id, val;
  memset(s, 0, sizeof(*s));
  while (off < len) {
    if (!(k = ix_varint_get(p + off, len - off, &id)))
      return IX_H3_SETTINGS_ERROR;
    off += k;
    if (!(k = ix_varint_get(p + off, len - off, &val)))
      return IX_H3_SETTINGS_ERROR;
    off += k;
    s->nsettings++;
    switch (id) {
    case IX_H3_SETTING_ENABLE_CONNECT_PROTOCOL:
      /* RFC 9220 §3: 0 or 1; RFC 9114 §7.2.4: no repeated identifier. */
      if (s->saw_connect_proto || val > 1)
        return IX_H3_SETTINGS_ERROR;
      s->saw_connect_proto = 1;
      s->connect_protocol = (int)val;
      break;
    case IX_H3_SETTING_H3_DATAGRAM:
      /* RFC 9297 §2.1.1: a value other than 0 or 1 is H3_SETTINGS_ERROR. */
      if (s->saw_h3_datagram || val > 1)
        return IX_H3_SETTINGS_ERROR;
      s->saw_h3_datagram = 1;
      s->h3_datagram = (int)val;
      break;
    case 0x02: case 0x03: case 0x04: case 0x05:
      /* HTTP/2 settings reserved in HTTP/3 (RFC 9114 §7.2.4.1). */
      return IX_H3_SETTINGS_ERROR;
    case IX_H3_SETTING_QPACK_MAX_TABLE_CAPACITY:
    case IX_H3_SETTING_MAX_FIELD_SECTION_SIZE:
    case IX_H3_SETTING_QPACK_BLOCKED_STREAMS:
      break;
    default:
      s->nunknown++;
      break;
    }
  }
  s->received = 1;
  return 0;
}

/* ---- HTTP Datagrams and capsules ------------------------------------------ */

size_t ix_dgram_encode(uint8_t *out, int64_t stream_id, uint64_t context,
                       const uint8_t *payload, size_t len) {
  size_t n = 0;
  /* RFC 9297 §2.1: the client-initiated bidirectional stream ID / 4. */
  n += ix_varint_put(out + n, (uint64_t)stream_id / 4);
  n += ix_varint_put(out + n, context);
  if (len)
    memcpy(out + n, payload, len);
  return n + len;
}

long ix_dgram_decode(const uint8_t *p, size_t len, int64_t *stream_id,
                     uint64_t *context, const uint8_t **payload,
                     size_t *plen) {
  uint64_t q;
  size_t k = ix_varint_get(p, len, &q), k2;
  if (!k || q > ((1ULL << 60) - 1))
    return IX_H3_DATAGRAM_ERROR;
  *stream_id = (int64_t)(q * 4);
  if (!(k2 = ix_varint_get(p + k, len - k, context)))
    return -1;
  *payload = p + k + k2;
  *plen = len - k - k2;
  return 0;
}

size_t ix_capsule_datagram(uint8_t *out, uint64_t context,
                           const uint8_t *payload, size_t len) {
  size_t n = 0;
  n += ix_varint_put(out + n, IX_CAPSULE_DATAGRAM);
  n += ix_varint_put(out + n, ix_varint_len(context) + len);
  n += ix_varint_put(out + n, context);
  if (len)
    memcpy(out + n, payload, len);
  return n + len;
}

void ix_capsule_parser_init(ix_capsule_parser_t *cp, size_t limit) {
  memset(cp, 0, sizeof(*cp));
  cp->limit = limit;
}

void ix_capsule_parser_free(ix_capsule_parser_t *cp) {
  free(cp->buf);
  memset(cp, 0, sizeof(*cp));
}

int ix_capsule_parser_partial(const ix_capsule_parser_t *cp) {
  return cp->len > 0;
}

int ix_capsule_parser_feed(ix_capsule_parser_t *cp, const uint8_t *p,
                           size_t len, ix_capsule_cb cb, void *arg) {
  size_t off = 0;
  if (cp->len + len > cp->cap) {
    size_t ncap = cp->cap ? cp->cap : 4096;
    uint8_t *nb;
    while (ncap < cp->len + len)
      ncap *= 2;
    if (!(nb = realloc(cp->buf, ncap)))
      return -1;
    cp->buf = nb;
    cp->cap = ncap;
  }
  memcpy(cp->buf + cp->len, p, len);
  cp->len += len;
  for (;;) {
    uint64_t type, clen;
    size_t k1, k2;
    if (!(k1 = ix_varint_get(cp->buf + off, cp->len - off, &type)))
      break;
    if (!(k2 = ix_varint_get(cp->buf + off + k1, cp->len - off - k1, &clen)))
      break;
    if (clen > cp->limit)
      return -1;
    if (cp->len - off - k1 - k2 < clen)
      break;
    cb(arg, type, cp->buf + off + k1 + k2, (size_t)clen);
    off += k1 + k2 + (size_t)clen;
  }
  memmove(cp->buf, cp->buf + off, cp->len - off);
  cp->len -= off;
  return 0;
}

/* ---- the RFC 9298 default URI template ------------------------------------ */

#define IX_PREFIX "/.well-known/masque/udp/"

static int unreserved(int ch) {
  return isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

int ix_masque_path(char *out, size_t outlen, const char *host,
                   unsigned port) {
  size_t n = 0;
  const char *h;
  int r = snprintf(out, outlen, "%s", IX_PREFIX);
  if (r < 0 || (size_t)r >= outlen || !*host || port == 0 || port > 65535)
    return -1;
  n = (size_t)r;
  /* RFC 6570 simple string expansion: anything but unreserved is
   * percent-encoded (so an IPv6 literal's colons become %3A, as RFC 9298
   * §2 requires). */
  for (h = host; *h; h++) {
    if (n + 4 >= outlen)
      return -1;
    if (unreserved((unsigned char)*h))
      out[n++] = *h;
    else
      n += (size_t)snprintf(out + n, outlen - n, "%%%02X",
                            (unsigned char)*h);
  }
  r = snprintf(out + n, outlen - n, "/%u/", port);
  return r < 0 || (size_t)r >= outlen - n ? -1 : 0;
}

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  ch = tolower(ch);
  return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

int ix_masque_parse_path(const char *path, char *host, size_t hostlen,
                         unsigned *port) {
  const char *p = path, *slash;
  size_t n = 0;
  unsigned long v = 0;
  unsigned char a[16];
  if (strncmp(p, IX_PREFIX, strlen(IX_PREFIX)) != 0)
    return 404;
  p += strlen(IX_PREFIX);
  if (!(slash = strchr(p, '/')))
    return 404;
  for (; p < slash; p++) {
    int ch = (unsigned char)*p;
    if (ch == '%') {
      int hi, lo;
      if (p + 2 >= slash || (hi = hexval(p[1])) < 0 || (lo = hexval(p[2])) < 0)
        return 400;
      ch = hi * 16 + lo;
      p += 2;
    }
    if (n + 1 >= hostlen || ch == 0)
      return 400;
    host[n++] = (char)ch;
  }
  host[n] = '\0';
  if (n == 0)
    return 400;
  p = slash + 1;
  if (!(slash = strchr(p, '/')) || strcmp(slash, "/") != 0)
    return 404;
  if (p == slash)
    return 400;
  for (; p < slash; p++) {
    if (!isdigit((unsigned char)*p) || v > 65535)
      return 400;
    v = v * 10 + (unsigned long)(*p - '0');
  }
  if (v == 0 || v > 65535)
    return 400;
  *port = (unsigned)v;
  /* target_host = IPv6address / IPv4address / reg-name (RFC 9298 §2). */
  if (inet_pton(AF_INET6, host, a) == 1 || inet_pton(AF_INET, host, a) == 1)
    return 0;
  for (p = host; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
      return 400;
  return 0;
}

/* ---- qpeer peer IDs ------------------------------------------------------- */

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

static void peer_check(const uint8_t key[32], uint8_t check[2]) {
  uint8_t in[16 + 32], h[32];
  memcpy(in, "qpeer peer id v1", 16);
  memcpy(in + 16, key, 32);
  gnutls_hash_fast(GNUTLS_DIG_SHA256, in, sizeof(in), h);
  check[0] = h[0];
  check[1] = h[1];
}

void ix_peer_id_format(const uint8_t key[32], char out[57]) {
  uint8_t raw[34];
  unsigned bits = 0, acc = 0;
  size_t i, n = 0;
  memcpy(raw, key, 32);
  peer_check(key, raw + 32);
  out[n++] = 'p';
  for (i = 0; i < sizeof(raw); i++) {
    acc = (acc << 8) | raw[i];
    bits += 8;
    while (bits >= 5) {
      out[n++] = b32[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits)
    out[n++] = b32[(acc << (5 - bits)) & 31];
  out[n] = '\0';
}

int ix_peer_id_parse(const char *text, uint8_t key[32]) {
  uint8_t raw[35], check[2];
  unsigned bits = 0, acc = 0;
  size_t i, n = 0;
  if (strlen(text) != 56 || (text[0] != 'p' && text[0] != 'P'))
    return -1;
  for (i = 1; i < 56; i++) {
    const char *pos = strchr(b32, tolower((unsigned char)text[i]));
    if (!pos || !*pos)
      return -1;
    acc = (acc << 5) | (unsigned)(pos - b32);
    bits += 5;
    if (bits >= 8) {
      raw[n++] = (uint8_t)(acc >> (bits - 8));
      bits -= 8;
    }
  }
  if (n != 34 || (acc & ((1u << bits) - 1)) != 0)
    return -1;
  peer_check(raw, check);
  if (memcmp(check, raw + 32, 2) != 0)
    return -1;
  memcpy(key, raw, 32);
  return 0;
}
