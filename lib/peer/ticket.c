/* SPDX-License-Identifier: MIT */
/*
 * The ticket codec (see doc/ticket.md). Divisions, in order: CRC-32C and
 * base32; the checks shared by the builders, the encoder and the decoder
 * (addresses, relay URLs, duplicates); the builders (init, add_*); the
 * binary encoder and decoder; the text form. Pure: no I/O, no libuv calls,
 * no allocation.
 */
#include <string.h>

#include "core/addr.h"
#include "core/base32.h"
#include "core/varint.h"
#include "internal.h"
#include "qpeer/ticket.h"

/* TLV record types. Odd types may be skipped by a decoder that does not
 * know them; an unknown even type makes the ticket unreadable. */
#define REC_CREATED 0x01 /* uint64 creation time (ignorable) */
#define REC_PEER_ID 0x02 /* the 32-byte peer ID, exactly once */
#define REC_ADDR 0x04    /* one direct address */
#define REC_RELAY 0x06   /* one relay */
#define REC_FLAGS 0x08   /* uint32 flags, at most once */

/* Value lengths of the fixed-size records. */
#define ADDR4_VLEN (1 + 4 + 2)  /* type, IPv4 address, port */
#define ADDR6_VLEN (1 + 16 + 2) /* type, IPv6 address, port */
#define FLAGS_VLEN 4
#define CREATED_VLEN 8

/* Bytes of the trailing checksum. */
#define CRC_LEN 4

/* The only scheme a relay URL may have (compared ignoring case). */
#define URL_SCHEME "https://"
#define URL_SCHEME_LEN (sizeof(URL_SCHEME) - 1)

/* The prefix of the text form (compared ignoring case). */
#define TEXT_PREFIX "qpt1"
#define TEXT_PREFIX_LEN (sizeof(TEXT_PREFIX) - 1)

/* Base32 characters needed for |n| bytes, without padding. */
#define B32_LEN(n) (((n)*8 + 4) / 5)

_Static_assert(QPEER_TICKET_BIN_MAX == 1387, "see doc/ticket.md");
_Static_assert(QPEER_TICKET_TEXT_MAX ==
                   TEXT_PREFIX_LEN + B32_LEN(QPEER_TICKET_BIN_MAX),
               "text form is the prefix plus base32");
_Static_assert(QPEER_TICKET_BIN_MAX <= QPEER_TICKET_DECODE_MAX,
               "the decoder accepts everything the encoder writes");


/* CRC-32C (Castagnoli, reflected polynomial 0x82f63b78) of each nibble. */
static const uint32_t crc32c_nibble[16] = {
    0x00000000u, 0x105ec76fu, 0x20bd8edeu, 0x30e349b1u,
    0x417b1dbcu, 0x5125dad3u, 0x61c69362u, 0x7198540du,
    0x82f63b78u, 0x92a8fc17u, 0xa24bb5a6u, 0xb21572c9u,
    0xc38d26c4u, 0xd3d3e1abu, 0xe330a81au, 0xf36e6f75u};

/* crc32c returns the CRC-32C of |len| bytes at |p| (init and final XOR
 * 0xffffffff; "123456789" gives 0xe3069283). */
static uint32_t crc32c(const uint8_t *p, size_t len) {
  uint32_t crc = 0xffffffffu;
  while (len-- > 0) {
    crc ^= *p++;
    crc = (crc >> 4) ^ crc32c_nibble[crc & 15];
    crc = (crc >> 4) ^ crc32c_nibble[crc & 15];
  }
  return crc ^ 0xffffffffu;
}


/* ascii_lower folds an ASCII upper-case letter to lower case. */
static char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* prefix_equal_nocase returns nonzero when the |n| bytes at |s| equal the
 * lower-case |lower| ignoring ASCII case. */
static int prefix_equal_nocase(const char *s, const char *lower, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (ascii_lower(s[i]) != lower[i])
      return 0;
  return 1;
}

/* is_space returns nonzero for the white space trimmed around text. */
static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

/* addr_bytes points |*pip| at the address bytes of |sa| and returns their
 * length (4 or 16), or sets it to NULL and returns 0 for another family. */
static size_t addr_bytes(const struct sockaddr *sa, const uint8_t **pip) {
  *pip = NULL;
  if (sa->sa_family == AF_INET) {
    *pip = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)
               ->sin_addr;
    return 4;
  }
  if (sa->sa_family == AF_INET6) {
    *pip = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    return 16;
  }
  return 0;
}

/* addr_valid returns nonzero when |sa| may be stored in a ticket as is:
 * IPv4 or IPv6 (not IPv4-mapped), not the wildcard, port nonzero. */
static int addr_valid(const struct sockaddr *sa) {
  const uint8_t *ip;
  size_t n = addr_bytes(sa, &ip);
  if (n == 0 || qpeer__addr_port(sa) == 0 || qpeer__addr_is_any(sa))
    return 0;
  if (n == 16 &&
      IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)ip))
    return 0;
  return 1;
}

/* addr_same returns nonzero when |a| and |b| have the same family, address
 * and port (scope ID and flow info are not part of a ticket). */
static int addr_same(const struct sockaddr *a, const struct sockaddr *b) {
  const uint8_t *ia, *ib;
  size_t na = addr_bytes(a, &ia), nb = addr_bytes(b, &ib);
  return na == nb && na != 0 && memcmp(ia, ib, na) == 0 &&
         qpeer__addr_port(a) == qpeer__addr_port(b);
}

/* addr_make fills |*out| (zeroed first) from raw address bytes (4 or 16)
 * and a port, the way a ticket stores an address. */
static void addr_make(struct sockaddr_storage *out, const uint8_t *ip,
                      size_t iplen, uint16_t port) {
  memset(out, 0, sizeof(*out));
  if (iplen == 4) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)out;
    s4->sin_family = AF_INET;
    memcpy(&s4->sin_addr, ip, 4);
  } else {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)out;
    s6->sin6_family = AF_INET6;
    memcpy(s6->sin6_addr.s6_addr, ip, 16);
  }
  qpeer__addr_set_port((struct sockaddr *)out, port);
}

/* url_port_valid returns nonzero when the |n| bytes at |p| are a decimal
 * port 1..65535 (1 to 5 digits). */
static int url_port_valid(const char *p, size_t n) {
  uint32_t v = 0;
  size_t i;
  if (n == 0 || n > 5)
    return 0;
  for (i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return 0;
    v = v * 10 + (uint32_t)(p[i] - '0');
  }
  return v >= 1 && v <= 65535;
}

/* url_valid returns nonzero when the |len| bytes at |url| are a relay URL:
 * 1..255 printable ASCII bytes, "https://" in any case, an authority
 * without user info whose host (a name or a bracketed IPv6 literal) is not
 * empty, an optional ":port", then anything starting with '/', '?' or '#'.
 */
static int url_valid(const char *url, size_t len) {
  size_t i, auth_end, host_end;
  if (len <= URL_SCHEME_LEN || len >= QPEER_TICKET_URL_MAX)
    return 0;
  for (i = 0; i < len; i++)
    if ((unsigned char)url[i] < 0x21 || (unsigned char)url[i] > 0x7e)
      return 0;
  if (!prefix_equal_nocase(url, URL_SCHEME, URL_SCHEME_LEN))
    return 0;
  for (auth_end = URL_SCHEME_LEN; auth_end < len; auth_end++)
    if (url[auth_end] == '/' || url[auth_end] == '?' || url[auth_end] == '#')
      break;
  i = URL_SCHEME_LEN;
  if (url[i] == '[') {
    /* An IPv6 literal: hex digits, ':' and '.' up to the ']'. */
    for (host_end = i + 1; host_end < auth_end && url[host_end] != ']';
         host_end++) {
      char c = ascii_lower(url[host_end]);
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' ||
            c == '.'))
        return 0;
    }
    if (host_end == auth_end || host_end == i + 1)
      return 0;
    i = host_end + 1;
  } else {
    for (host_end = i; host_end < auth_end && url[host_end] != ':'; host_end++)
      if (url[host_end] == '@' || url[host_end] == '[' || url[host_end] == ']')
        return 0;
    if (host_end == i)
      return 0;
    i = host_end;
  }
  if (i == auth_end)
    return 1;
  return url[i] == ':' && url_port_valid(url + i + 1, auth_end - i - 1);
}

/* relay_same returns nonzero when |a| and |b| name the same relay the same
 * way: equal URL bytes, mode, and the key that mode uses. */
static int relay_same(const qpeer_ticket_relay_t *a,
                      const qpeer_ticket_relay_t *b) {
  if (a->auth != b->auth || strcmp(a->url, b->url) != 0)
    return 0;
  if (a->auth == QPEER_TICKET_AUTH_PIN)
    return qpeer_peer_id_equal(&a->pin, &b->pin);
  if (a->auth == QPEER_TICKET_AUTH_CA)
    return memcmp(a->ca_sha256, b->ca_sha256, QPEER_TICKET_CA_FP_LEN) == 0;
  return 1;
}

/* relay_valid returns nonzero when |r| has a known mode and a NUL-terminated
 * valid URL. */
static int relay_valid(const qpeer_ticket_relay_t *r) {
  size_t n = strnlen(r->url, QPEER_TICKET_URL_MAX);
  if (r->auth != QPEER_TICKET_AUTH_PIN && r->auth != QPEER_TICKET_AUTH_WEBPKI &&
      r->auth != QPEER_TICKET_AUTH_CA)
    return 0;
  return n < QPEER_TICKET_URL_MAX && url_valid(r->url, n);
}

/* ticket_check returns 0 when the encoder may write |t|: counts within the
 * limits, every entry valid, no duplicates. Otherwise UV_EINVAL. */
static int ticket_check(const qpeer_ticket_t *t) {
  size_t i, j;
  if (t->naddrs > QPEER_TICKET_MAX_ADDRS ||
      t->nrelays > QPEER_TICKET_MAX_RELAYS)
    return UV_EINVAL;
  for (i = 0; i < t->naddrs; i++) {
    const struct sockaddr *sa = (const struct sockaddr *)&t->addrs[i].addr;
    if (!addr_valid(sa) ||
        (unsigned)t->addrs[i].type > QPEER_TICKET_ADDR_TYPE_MAX)
      return UV_EINVAL;
    for (j = 0; j < i; j++)
      if (addr_same(sa, (const struct sockaddr *)&t->addrs[j].addr))
        return UV_EINVAL;
  }
  for (i = 0; i < t->nrelays; i++) {
    if (!relay_valid(&t->relays[i]))
      return UV_EINVAL;
    for (j = 0; j < i; j++)
      if (relay_same(&t->relays[i], &t->relays[j]))
        return UV_EINVAL;
  }
  return 0;
}

int qpeer_ticket_init(qpeer_ticket_t *t) {
  if (!t)
    return UV_EINVAL;
  memset(t, 0, sizeof(*t));
  return 0;
}

int qpeer_ticket_add_addr(qpeer_ticket_t *t, const struct sockaddr *addr) {
  return qpeer_ticket_add_typed_addr(t, addr, QPEER_TICKET_ADDR_UNTYPED);
}

int qpeer_ticket_add_typed_addr(qpeer_ticket_t *t, const struct sockaddr *addr,
                                qpeer_ticket_addr_type type) {
  struct sockaddr_storage norm, canon;
  const uint8_t *ip;
  size_t i, n;

  if (!t || !addr || (unsigned)type > QPEER_TICKET_ADDR_TYPE_MAX)
    return UV_EINVAL;
  if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
    return UV_EINVAL;
  qpeer__addr_normalize(&norm, addr);
  n = addr_bytes((const struct sockaddr *)&norm, &ip);
  addr_make(&canon, ip, n, qpeer__addr_port((const struct sockaddr *)&norm));
  if (!addr_valid((const struct sockaddr *)&canon))
    return UV_EINVAL;
  for (i = 0; i < t->naddrs && i < QPEER_TICKET_MAX_ADDRS; i++)
    if (addr_same((const struct sockaddr *)&canon,
                  (const struct sockaddr *)&t->addrs[i].addr))
      return 0;
  if (t->naddrs >= QPEER_TICKET_MAX_ADDRS)
    return UV_ENOSPC;
  t->addrs[t->naddrs].addr = canon;
  t->addrs[t->naddrs].type = type;
  t->naddrs++;
  return 0;
}

/* relay_add appends |r| to |t| unless an identical relay is present.
 * Returns 0, UV_EINVAL or UV_ENOSPC. */
static int relay_add(qpeer_ticket_t *t, const qpeer_ticket_relay_t *r) {
  size_t i;
  if (!relay_valid(r))
    return UV_EINVAL;
  for (i = 0; i < t->nrelays && i < QPEER_TICKET_MAX_RELAYS; i++)
    if (relay_same(r, &t->relays[i]))
      return 0;
  if (t->nrelays >= QPEER_TICKET_MAX_RELAYS)
    return UV_ENOSPC;
  t->relays[t->nrelays++] = *r;
  return 0;
}

/* relay_set_url copies |url| into |r| if it fits. Returns 0 or UV_EINVAL. */
static int relay_set_url(qpeer_ticket_relay_t *r, const char *url) {
  size_t n = strnlen(url, QPEER_TICKET_URL_MAX);
  if (n >= QPEER_TICKET_URL_MAX)
    return UV_EINVAL;
  memcpy(r->url, url, n + 1);
  return 0;
}

int qpeer_ticket_add_relay(qpeer_ticket_t *t, const char *url,
                           qpeer_ticket_auth auth, const qpeer_peer_id_t *pin) {
  qpeer_ticket_relay_t r;

  if (!t || !url)
    return UV_EINVAL;
  memset(&r, 0, sizeof(r));
  if (auth == QPEER_TICKET_AUTH_PIN && pin)
    r.pin = *pin;
  else if (auth != QPEER_TICKET_AUTH_WEBPKI || pin)
    return UV_EINVAL;
  r.auth = auth;
  if (relay_set_url(&r, url) != 0)
    return UV_EINVAL;
  return relay_add(t, &r);
}

int qpeer_ticket_add_relay_ca(qpeer_ticket_t *t, const char *url,
                              const uint8_t *ca_sha256) {
  qpeer_ticket_relay_t r;

  if (!t || !url || !ca_sha256)
    return UV_EINVAL;
  memset(&r, 0, sizeof(r));
  r.auth = QPEER_TICKET_AUTH_CA;
  memcpy(r.ca_sha256, ca_sha256, QPEER_TICKET_CA_FP_LEN);
  if (relay_set_url(&r, url) != 0)
    return UV_EINVAL;
  return relay_add(t, &r);
}

/* put_record writes a record header (type, length) and |vlen| value bytes
 * from |v|. Returns 0 or UV_ENOBUFS. */
static int put_record(qpeer__wbuf *w, uint64_t type, const void *v,
                      size_t vlen) {
  if (qpeer__wbuf_varint(w, type) != 0 || qpeer__wbuf_varint(w, vlen) != 0 ||
      qpeer__wbuf_bytes(w, v, vlen) != 0)
    return UV_ENOBUFS;
  return 0;
}

/* put_addr writes the REC_ADDR record of |a|. Returns 0 or UV_ENOBUFS. */
static int put_addr(qpeer__wbuf *w, const qpeer_ticket_addr_t *a) {
  const struct sockaddr *sa = (const struct sockaddr *)&a->addr;
  uint8_t v[ADDR6_VLEN];
  const uint8_t *ip;
  size_t n = addr_bytes(sa, &ip);

  v[0] = (uint8_t)a->type;
  memcpy(v + 1, ip, n);
  qpeer__put_u16(v + 1 + n, qpeer__addr_port(sa));
  return put_record(w, REC_ADDR, v, 1 + n + 2);
}

/* put_relay writes the REC_RELAY record of |r|: mode, key (PIN and CA
 * only), URL. Returns 0 or UV_ENOBUFS. */
static int put_relay(qpeer__wbuf *w, const qpeer_ticket_relay_t *r) {
  size_t urllen = strlen(r->url), keylen = 0;
  const uint8_t *key = NULL;

  if (r->auth == QPEER_TICKET_AUTH_PIN) {
    key = r->pin.key;
    keylen = QPEER_PEER_ID_LEN;
  } else if (r->auth == QPEER_TICKET_AUTH_CA) {
    key = r->ca_sha256;
    keylen = QPEER_TICKET_CA_FP_LEN;
  }
  if (qpeer__wbuf_varint(w, REC_RELAY) != 0 ||
      qpeer__wbuf_varint(w, 1 + keylen + urllen) != 0 ||
      qpeer__wbuf_u8(w, (uint8_t)r->auth) != 0 ||
      qpeer__wbuf_bytes(w, key, keylen) != 0 ||
      qpeer__wbuf_bytes(w, r->url, urllen) != 0)
    return UV_ENOBUFS;
  return 0;
}

int qpeer_ticket_encode_binary(const qpeer_ticket_t *t, uint8_t *buf,
                               size_t buflen) {
  qpeer__wbuf w;
  uint8_t v[CREATED_VLEN];
  size_t i, n;
  int r;

  if (!t || !buf)
    return UV_EINVAL;
  r = ticket_check(t);
  if (r != 0)
    return r;
  qpeer__wbuf_init(&w, buf, buflen);
  if (qpeer__wbuf_u8(&w, QPEER_TICKET_VERSION) != 0 ||
      put_record(&w, REC_PEER_ID, t->peer_id.key, QPEER_PEER_ID_LEN) != 0)
    return UV_ENOBUFS;
  for (i = 0; i < t->naddrs; i++)
    if (put_addr(&w, &t->addrs[i]) != 0)
      return UV_ENOBUFS;
  for (i = 0; i < t->nrelays; i++)
    if (put_relay(&w, &t->relays[i]) != 0)
      return UV_ENOBUFS;
  if (t->flags != 0) {
    qpeer__put_u32(v, t->flags);
    if (put_record(&w, REC_FLAGS, v, FLAGS_VLEN) != 0)
      return UV_ENOBUFS;
  }
  if (t->created != 0) {
    qpeer__put_u32(v, (uint32_t)(t->created >> 32));
    qpeer__put_u32(v + 4, (uint32_t)t->created);
    if (put_record(&w, REC_CREATED, v, CREATED_VLEN) != 0)
      return UV_ENOBUFS;
  }
  n = (size_t)(w.p - buf);
  if (qpeer__wbuf_u32(&w, crc32c(buf, n)) != 0)
    return UV_ENOBUFS;
  return (int)(n + CRC_LEN);
}

/* get_varint reads a varint that must use its shortest encoding, so that
 * record headers have one form. Returns 0 or QPEER_ETICKET. */
static int get_varint(qpeer__rbuf *b, uint64_t *pv) {
  const uint8_t *start = b->p;
  if (qpeer__rbuf_varint(b, pv) != 0 ||
      (size_t)(b->p - start) != qpeer__varint_len(*pv))
    return QPEER_ETICKET;
  return 0;
}

/* get_addr decodes a REC_ADDR value of |vlen| bytes at |v| and appends it
 * to |t|. Returns 0 or QPEER_ETICKET. */
static int get_addr(qpeer_ticket_t *t, const uint8_t *v, size_t vlen) {
  qpeer_ticket_addr_t a;
  size_t i, iplen;

  if (vlen != ADDR4_VLEN && vlen != ADDR6_VLEN)
    return QPEER_ETICKET;
  if (v[0] > QPEER_TICKET_ADDR_TYPE_MAX || t->naddrs >= QPEER_TICKET_MAX_ADDRS)
    return QPEER_ETICKET;
  iplen = vlen - 3;
  a.type = (qpeer_ticket_addr_type)v[0];
  addr_make(&a.addr, v + 1, iplen, qpeer__get_u16(v + 1 + iplen));
  if (!addr_valid((const struct sockaddr *)&a.addr))
    return QPEER_ETICKET;
  for (i = 0; i < t->naddrs; i++)
    if (addr_same((const struct sockaddr *)&a.addr,
                  (const struct sockaddr *)&t->addrs[i].addr))
      return QPEER_ETICKET;
  t->addrs[t->naddrs++] = a;
  return 0;
}

/* get_relay decodes a REC_RELAY value of |vlen| bytes at |v| and appends
 * it to |t|. Returns 0 or QPEER_ETICKET. */
static int get_relay(qpeer_ticket_t *t, const uint8_t *v, size_t vlen) {
  qpeer_ticket_relay_t r;
  size_t i, keylen = 0, urllen;

  if (vlen < 1 || t->nrelays >= QPEER_TICKET_MAX_RELAYS)
    return QPEER_ETICKET;
  memset(&r, 0, sizeof(r));
  r.auth = (qpeer_ticket_auth)v[0];
  if (v[0] == QPEER_TICKET_AUTH_PIN)
    keylen = QPEER_PEER_ID_LEN;
  else if (v[0] == QPEER_TICKET_AUTH_CA)
    keylen = QPEER_TICKET_CA_FP_LEN;
  else if (v[0] != QPEER_TICKET_AUTH_WEBPKI)
    return QPEER_ETICKET;
  if (vlen - 1 < keylen)
    return QPEER_ETICKET;
  if (v[0] == QPEER_TICKET_AUTH_PIN)
    memcpy(r.pin.key, v + 1, keylen);
  else if (keylen)
    memcpy(r.ca_sha256, v + 1, keylen);
  urllen = vlen - 1 - keylen;
  if (!url_valid((const char *)v + 1 + keylen, urllen))
    return QPEER_ETICKET;
  memcpy(r.url, v + 1 + keylen, urllen);
  r.url[urllen] = '\0';
  for (i = 0; i < t->nrelays; i++)
    if (relay_same(&r, &t->relays[i]))
      return QPEER_ETICKET;
  t->relays[t->nrelays++] = r;
  return 0;
}

/* Bits of decode_records' |seen| set for the records allowed only once. */
enum { SEEN_PEER_ID = 1, SEEN_FLAGS = 2, SEEN_CREATED = 4 };

/* get_record decodes one record of type |type| (value |v|, |vlen| bytes)
 * into |t|, tracking single records in |*seen|. Returns 0 or
 * QPEER_ETICKET. */
static int get_record(qpeer_ticket_t *t, unsigned *seen, uint64_t type,
                      const uint8_t *v, size_t vlen) {
  switch (type) {
  case REC_PEER_ID:
    if ((*seen & SEEN_PEER_ID) || vlen != QPEER_PEER_ID_LEN)
      return QPEER_ETICKET;
    *seen |= SEEN_PEER_ID;
    memcpy(t->peer_id.key, v, QPEER_PEER_ID_LEN);
    return 0;
  case REC_ADDR:
    return get_addr(t, v, vlen);
  case REC_RELAY:
    return get_relay(t, v, vlen);
  case REC_FLAGS:
    if ((*seen & SEEN_FLAGS) || vlen != FLAGS_VLEN)
      return QPEER_ETICKET;
    *seen |= SEEN_FLAGS;
    t->flags = qpeer__get_u32(v);
    return 0;
  case REC_CREATED:
    if ((*seen & SEEN_CREATED) || vlen != CREATED_VLEN)
      return QPEER_ETICKET;
    *seen |= SEEN_CREATED;
    t->created = ((uint64_t)qpeer__get_u32(v) << 32) | qpeer__get_u32(v + 4);
    return 0;
  default:
    /* Odd types are ignorable by definition; even ones are critical. */
    return (type & 1) ? 0 : QPEER_ETICKET;
  }
}

int qpeer_ticket_decode_binary(qpeer_ticket_t *t, const uint8_t *buf,
                               size_t len) {
  qpeer_ticket_t tmp;
  qpeer__rbuf rb;
  unsigned seen = 0;
  uint64_t type, vlen;
  const uint8_t *v;
  int r;

  if (!t || (!buf && len > 0))
    return UV_EINVAL;
  if (len < 1 + CRC_LEN || len > QPEER_TICKET_DECODE_MAX)
    return QPEER_ETICKET;
  len -= CRC_LEN;
  if (crc32c(buf, len) != qpeer__get_u32(buf + len))
    return QPEER_ETICKET;
  if (buf[0] != QPEER_TICKET_VERSION)
    return QPEER_EUNSUPPORTED;

  memset(&tmp, 0, sizeof(tmp));
  qpeer__rbuf_init(&rb, buf + 1, len - 1);
  while (qpeer__rbuf_left(&rb) > 0) {
    if (get_varint(&rb, &type) != 0 || get_varint(&rb, &vlen) != 0 ||
        vlen > qpeer__rbuf_left(&rb))
      return QPEER_ETICKET;
    (void)qpeer__rbuf_bytes(&rb, &v, (size_t)vlen);
    r = get_record(&tmp, &seen, type, v, (size_t)vlen);
    if (r != 0)
      return r;
  }
  if (!(seen & SEEN_PEER_ID))
    return QPEER_ETICKET;
  *t = tmp;
  return 0;
}

int qpeer_ticket_format(const qpeer_ticket_t *t, char *buf, size_t buflen) {
  uint8_t bin[QPEER_TICKET_BIN_MAX];
  size_t n;
  int binlen;

  if (!t || !buf)
    return UV_EINVAL;
  binlen = qpeer_ticket_encode_binary(t, bin, sizeof(bin));
  if (binlen < 0)
    return binlen;
  if (buflen < TEXT_PREFIX_LEN + B32_LEN((size_t)binlen) + 1) {
    if (buflen > 0)
      buf[0] = '\0';
    return UV_ENOBUFS;
  }
  memcpy(buf, TEXT_PREFIX, TEXT_PREFIX_LEN);
  n = TEXT_PREFIX_LEN +
      qpeer__base32_encode(buf + TEXT_PREFIX_LEN, bin, (size_t)binlen);
  buf[n] = '\0';
  return (int)n;
}

int qpeer_ticket_parse(qpeer_ticket_t *t, const char *text) {
  uint8_t bin[QPEER_TICKET_DECODE_MAX];
  size_t len;
  long n;

  if (!t || !text)
    return UV_EINVAL;
  while (is_space(*text))
    text++;
  len = strlen(text);
  while (len > 0 && is_space(text[len - 1]))
    len--;
  if (len < TEXT_PREFIX_LEN ||
      !prefix_equal_nocase(text, TEXT_PREFIX, TEXT_PREFIX_LEN) ||
      len - TEXT_PREFIX_LEN > B32_LEN((size_t)QPEER_TICKET_DECODE_MAX))
    return QPEER_ETICKET;
  n = qpeer__base32_decode(bin, sizeof(bin), text + TEXT_PREFIX_LEN,
                           len - TEXT_PREFIX_LEN);
  if (n < 0)
    return QPEER_ETICKET;
  return qpeer_ticket_decode_binary(t, bin, (size_t)n);
}
