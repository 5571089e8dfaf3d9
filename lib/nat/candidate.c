/* SPDX-License-Identifier: MIT */
/*
 * Candidates (see candidate.h and doc/internals/candidate.md). Divisions,
 * in order: address helpers; priorities and foundations; the candidate
 * value (init, check, names); the bounded set; the serialized form
 * (CRC-32C, encoder, decoder); pairing. Pure: no I/O, no libuv calls, no
 * clock, no allocation.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "core/varint.h"
#include "internal.h"
#include "nat/candidate.h"

/* Record types of the serialized form. Odd types may be skipped by a
 * decoder that does not know them; an unknown even type is an error. */
#define REC_CAND 0x02

/* Bits of a CAND record's flags byte. */
#define CF_ADDR6 0x01    /* the address is IPv6 (else IPv4) */
#define CF_RELATED 0x02  /* a related (base) address follows */
#define CF_RELATED6 0x04 /* the related address is IPv6 */
#define CF_ALL (CF_ADDR6 | CF_RELATED | CF_RELATED6)

/* Bytes of the trailing checksum. */
#define CRC_LEN 4

/* Highest valid candidate priority (RFC 8445 §5.1.2.1). */
#define PRIO_MAX 0x7fffffffu

_Static_assert(QPEER__CANDLIST_ENC_MAX == 1797, "see candidate.md");
_Static_assert(QPEER__CANDLIST_ENC_MAX <= QPEER__CANDLIST_DEC_MAX,
               "the decoder accepts everything the encoder writes");
_Static_assert(QPEER__PAIRS_DEFAULT <= QPEER__PAIRS_MAX, "default in range");

/* ---- Address helpers. ---- */

/* ip_bytes points |*pip| at the address bytes of |sa| and returns their
 * length (4 or 16), or 0 for another family. */
static size_t ip_bytes(const struct sockaddr *sa, const uint8_t **pip) {
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

/* The address bytes are always read through unsigned char pointers:
 * sockaddrs here live in sockaddr_storage objects that are copied whole,
 * and typed loads (s_addr, glibc's IN6_IS_ADDR_* macros) through
 * sockaddr_in/sockaddr_in6 would break strict aliasing under gcc -O2. */

/* v6_is returns nonzero if the first |n| bytes of |p| equal |q|. */
static int v6_is(const uint8_t *p, const uint8_t *q, size_t n) {
  return memcmp(p, q, n) == 0;
}

/* is_v4mapped6 returns nonzero for the bytes of ::ffff:0:0/96. */
static int is_v4mapped6(const uint8_t *p) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return v6_is(p, prefix, 12);
}

/* is_v4mapped returns nonzero for an IPv4-mapped IPv6 address. */
static int is_v4mapped(const struct sockaddr *sa) {
  const uint8_t *ip;
  return ip_bytes(sa, &ip) == 16 && is_v4mapped6(ip);
}

/* v4_of returns the IPv4 address of |sa| in host order (|sa| is AF_INET). */
static uint32_t v4_of(const struct sockaddr *sa) {
  const uint8_t *ip;
  (void)ip_bytes(sa, &ip);
  return qpeer__get_u32(ip);
}

/* sa_of views a sockaddr_storage as a sockaddr. */
static const struct sockaddr *sa_of(const struct sockaddr_storage *ss) {
  return (const struct sockaddr *)(const void *)ss;
}

/* scope_kind sorts addresses into the three scopes pairing keeps apart:
 * 0 = neither loopback nor link-local, 1 = link-local, 2 = loopback. */
static int scope_kind(const struct sockaddr *sa) {
  int cls = qpeer__cand_addr_class(sa);
  if (cls == QPEER__CAND_CLASS_LOOPBACK)
    return 2;
  if (cls == QPEER__CAND_CLASS_LINK_LOCAL)
    return 1;
  return 0;
}

int qpeer__cand_addr_usable(const struct sockaddr *sa) {
  if (sa == NULL)
    return 0;
  if (sa->sa_family == AF_INET) {
    uint32_t a = v4_of(sa);
    if ((a >> 24) == 0 || (a >> 28) == 0xe || a == 0xffffffffu)
      return 0; /* 0.0.0.0/8, multicast 224.0.0.0/4, broadcast */
  } else if (sa->sa_family == AF_INET6) {
    static const uint8_t zero[16];
    const uint8_t *ip;
    (void)ip_bytes(sa, &ip);
    if (v6_is(ip, zero, 16) || ip[0] == 0xff || is_v4mapped6(ip))
      return 0; /* ::, multicast ff00::/8, IPv4-mapped */
  } else {
    return 0;
  }
  return qpeer__addr_port(sa) != 0;
}

/* ---- Priorities and foundations. ---- */

int qpeer__cand_type_pref(qpeer_candidate_type type) {
  switch (type) {
  case QPEER_CANDIDATE_HOST:
    return QPEER__CAND_PREF_HOST;
  case QPEER_CANDIDATE_PRFLX:
    return QPEER__CAND_PREF_PRFLX;
  case QPEER_CANDIDATE_MAPPED:
    return QPEER__CAND_PREF_MAPPED;
  case QPEER_CANDIDATE_SRFLX:
    return QPEER__CAND_PREF_SRFLX;
  case QPEER_CANDIDATE_RELAY:
    return QPEER__CAND_PREF_RELAY;
  }
  return -1;
}

int qpeer__cand_addr_class(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET || is_v4mapped(sa)) {
    uint32_t a;
    if (sa->sa_family == AF_INET) {
      a = v4_of(sa);
    } else {
      const uint8_t *p;
      (void)ip_bytes(sa, &p);
      a = qpeer__get_u32(p + 12);
    }
    if ((a >> 24) == 127)
      return QPEER__CAND_CLASS_LOOPBACK;
    if ((a >> 16) == 0xa9fe)
      return QPEER__CAND_CLASS_LINK_LOCAL;
    return QPEER__CAND_CLASS_IPV4;
  }
  if (sa->sa_family == AF_INET6) {
    static const uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0, 0, 1};
    const uint8_t *p;
    (void)ip_bytes(sa, &p);
    if (v6_is(p, loopback, 16))
      return QPEER__CAND_CLASS_LOOPBACK;
    if (p[0] == 0xfe && (p[1] & 0xc0) == 0x80)
      return QPEER__CAND_CLASS_LINK_LOCAL;
    if ((p[0] & 0xfe) == 0xfc)
      return QPEER__CAND_CLASS_ULA;
    if (p[0] == 0x20 && p[1] == 0x01 && p[2] == 0 && p[3] == 0)
      return QPEER__CAND_CLASS_TEREDO;
    if (p[0] == 0x20 && p[1] == 0x02)
      return QPEER__CAND_CLASS_6TO4;
    return QPEER__CAND_CLASS_IPV6;
  }
  return 0;
}

uint16_t qpeer__cand_local_pref(const struct sockaddr *sa, unsigned if_order) {
  unsigned cls = (unsigned)qpeer__cand_addr_class(sa);
  unsigned order =
      if_order > QPEER__CAND_IF_ORDER_MAX ? QPEER__CAND_IF_ORDER_MAX : if_order;
  return (uint16_t)((cls << 12) | (QPEER__CAND_IF_ORDER_MAX - order));
}

uint32_t qpeer__cand_priority(qpeer_candidate_type type, uint16_t local_pref,
                              unsigned component) {
  int tp = qpeer__cand_type_pref(type);
  if (tp < 0 || component < 1 || component > 256)
    return 0;
  return ((uint32_t)tp << 24) + ((uint32_t)local_pref << 8) +
         (256u - component);
}

/* fnv1a folds |n| bytes at |p| into the 32-bit FNV-1a hash |h|. */
static uint32_t fnv1a(uint32_t h, const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ p[i]) * 16777619u;
  return h;
}

uint32_t qpeer__cand_foundation(qpeer_candidate_type type,
                                const struct sockaddr *base,
                                const struct sockaddr *server) {
  uint32_t h = 2166136261u;
  uint8_t t = (uint8_t)type, fam;
  const uint8_t *ip;
  size_t n;
  h = fnv1a(h, &t, 1);
  n = base != NULL ? ip_bytes(base, &ip) : 0;
  fam = (uint8_t)n;
  h = fnv1a(h, &fam, 1);
  if (n > 0)
    h = fnv1a(h, ip, n);
  n = server != NULL ? ip_bytes(server, &ip) : 0;
  fam = (uint8_t)n;
  h = fnv1a(h, &fam, 1);
  if (n > 0)
    h = fnv1a(h, ip, n);
  return h;
}

/* ---- The candidate value. ---- */

const char *qpeer_candidate_type_name(qpeer_candidate_type type) {
  switch (type) {
  case QPEER_CANDIDATE_HOST:
    return "host";
  case QPEER_CANDIDATE_SRFLX:
    return "srflx";
  case QPEER_CANDIDATE_MAPPED:
    return "mapped";
  case QPEER_CANDIDATE_PRFLX:
    return "prflx";
  case QPEER_CANDIDATE_RELAY:
    return "relay";
  }
  return "unknown";
}

int qpeer__cand_check(const qpeer_candidate_t *c) {
  const struct sockaddr *a = sa_of(&c->addr), *b = sa_of(&c->base);
  if (qpeer__cand_type_pref(c->type) < 0 || !qpeer__cand_addr_usable(a))
    return UV_EINVAL;
  if ((b->sa_family != AF_INET && b->sa_family != AF_INET6) || is_v4mapped(b) ||
      qpeer__addr_port(b) == 0)
    return UV_EINVAL;
  if (b->sa_family != a->sa_family && c->type != QPEER_CANDIDATE_RELAY)
    return UV_EINVAL;
  if (c->priority == 0 || c->priority > PRIO_MAX || c->component != 1)
    return UV_EINVAL;
  return 0;
}

int qpeer__cand_init(qpeer_candidate_t *c, qpeer_candidate_type type,
                     const struct sockaddr *addr, const struct sockaddr *base,
                     const struct sockaddr *server, uint32_t sources,
                     unsigned if_order) {
  memset(c, 0, sizeof(*c));
  if (addr == NULL || qpeer__cand_type_pref(type) < 0)
    return UV_EINVAL;
  qpeer__addr_normalize(&c->addr, addr);
  qpeer__addr_normalize(&c->base, base != NULL ? base : addr);
  if (server != NULL)
    qpeer__addr_normalize(&c->server, server);
  c->type = type;
  c->component = 1;
  c->sources = sources;
  c->priority = qpeer__cand_priority(
      type, qpeer__cand_local_pref(sa_of(&c->addr), if_order), 1);
  c->foundation = qpeer__cand_foundation(
      type, sa_of(&c->base), server != NULL ? sa_of(&c->server) : NULL);
  if (qpeer__cand_check(c) != 0) {
    memset(c, 0, sizeof(*c));
    return UV_EINVAL;
  }
  return 0;
}

/* is_private returns nonzero for RFC 1918 IPv4 and ULA IPv6 addresses. */
static int is_private(const struct sockaddr *sa) {
  const uint8_t *ip;
  size_t n = ip_bytes(sa, &ip);
  if (n == 4)
    return ip[0] == 10 || (ip[0] == 172 && (ip[1] & 0xf0) == 16) ||
           (ip[0] == 192 && ip[1] == 168);
  return n == 16 && (ip[0] & 0xfe) == 0xfc;
}

int qpeer__cand_remote(qpeer_candidate_t *c, const struct sockaddr *addr,
                       unsigned type, uint32_t priority) {
  qpeer_candidate_type t;
  int cls, rv;
  if (addr == NULL) {
    memset(c, 0, sizeof(*c));
    return UV_EINVAL;
  }
  if (type < QPEER_CANDIDATE_HOST || type > QPEER_CANDIDATE_PRFLX ||
      priority == 0 || priority > PRIO_MAX) {
    cls = qpeer__cand_addr_class(addr);
    t = (is_private(addr) || cls == QPEER__CAND_CLASS_LOOPBACK ||
         cls == QPEER__CAND_CLASS_LINK_LOCAL)
            ? QPEER_CANDIDATE_HOST
            : QPEER_CANDIDATE_SRFLX;
    rv = qpeer__cand_init(c, t, addr, NULL, NULL, QPEER_CANDIDATE_SRC_PEER, 0);
    return rv;
  }
  rv = qpeer__cand_init(c, (qpeer_candidate_type)type, addr, NULL, NULL,
                        QPEER_CANDIDATE_SRC_PEER, 0);
  if (rv != 0)
    return rv;
  c->priority = priority;
  return 0;
}

/* ---- The bounded set. ---- */

void qpeer__candset_init(qpeer__candset *s) { memset(s, 0, sizeof(*s)); }

/* entry_before returns nonzero if entry |a| sorts before |b|: higher
 * priority first, then lower sequence number. */
static int entry_before(const qpeer__candset_entry *a,
                        const qpeer__candset_entry *b) {
  if (a->cand.priority != b->cand.priority)
    return a->cand.priority > b->cand.priority;
  return a->seq < b->seq;
}

/* settle moves entry |i| of |s| to its sorted place. */
static void settle(qpeer__candset *s, size_t i) {
  qpeer__candset_entry tmp = s->e[i];
  while (i > 0 && entry_before(&tmp, &s->e[i - 1])) {
    s->e[i] = s->e[i - 1];
    i--;
  }
  while (i + 1 < s->n && entry_before(&s->e[i + 1], &tmp)) {
    s->e[i] = s->e[i + 1];
    i++;
  }
  s->e[i] = tmp;
}

/* find_index returns the index of the entry with address |addr|, or -1. */
static int find_index(const qpeer__candset *s, const struct sockaddr *addr) {
  size_t i;
  for (i = 0; i < s->n; i++)
    if (qpeer__addr_equal(sa_of(&s->e[i].cand.addr), addr))
      return (int)i;
  return -1;
}

const qpeer__candset_entry *qpeer__candset_find(const qpeer__candset *s,
                                                const struct sockaddr *addr) {
  struct sockaddr_storage norm;
  int i;
  qpeer__addr_normalize(&norm, addr);
  i = find_index(s, sa_of(&norm));
  return i < 0 ? NULL : &s->e[i];
}

const qpeer__candset_entry *qpeer__candset_find_seq(const qpeer__candset *s,
                                                    uint64_t seq) {
  size_t i;
  for (i = 0; i < s->n; i++)
    if (s->e[i].seq == seq)
      return &s->e[i];
  return NULL;
}

int qpeer__candset_remove(qpeer__candset *s, uint64_t seq) {
  size_t i;
  for (i = 0; i < s->n; i++) {
    if (s->e[i].seq == seq) {
      memmove(&s->e[i], &s->e[i + 1], (s->n - i - 1) * sizeof(s->e[0]));
      s->n--;
      memset(&s->e[s->n], 0, sizeof(s->e[0]));
      return 0;
    }
  }
  return UV_ENOENT;
}

/* add_entry implements both add functions; |seq| is the new entry's
 * number. */
static int add_entry(qpeer__candset *s, const qpeer_candidate_t *c,
                     uint64_t seq, qpeer__candset_entry *pevicted) {
  qpeer__candset_entry *e;
  int i, rv = QPEER__CANDSET_ADDED;

  if (qpeer__cand_check(c) != 0)
    return UV_EINVAL;
  i = find_index(s, sa_of(&c->addr));
  if (i >= 0) {
    e = &s->e[i];
    e->cand.sources |= c->sources;
    if (c->priority <= e->cand.priority)
      return QPEER__CANDSET_MERGED;
    {
      uint32_t sources = e->cand.sources;
      e->cand = *c;
      e->cand.sources = sources;
    }
    settle(s, (size_t)i);
    return QPEER__CANDSET_UPGRADED;
  }
  if (s->n == QPEER__CANDSET_MAX) {
    /* The last entry has the lowest priority. */
    if (c->priority <= s->e[s->n - 1].cand.priority)
      return UV_ENOSPC;
    if (pevicted != NULL)
      *pevicted = s->e[s->n - 1];
    s->n--;
    rv = QPEER__CANDSET_EVICTED;
  }
  e = &s->e[s->n];
  e->cand = *c;
  e->seq = seq;
  s->n++;
  settle(s, s->n - 1);
  return rv;
}

int qpeer__candset_add(qpeer__candset *s, const qpeer_candidate_t *c,
                       qpeer__candset_entry *pevicted) {
  int rv;
  if (s->next_seq > QPEER__VARINT_MAX)
    return UV_ENOSPC;
  rv = add_entry(s, c, s->next_seq, pevicted);
  if (rv == QPEER__CANDSET_ADDED || rv == QPEER__CANDSET_EVICTED)
    s->next_seq++;
  return rv;
}

int qpeer__candset_add_seq(qpeer__candset *s, const qpeer_candidate_t *c,
                           uint64_t seq, qpeer__candset_entry *pevicted) {
  const qpeer__candset_entry *other;
  int rv;
  if (seq > QPEER__VARINT_MAX)
    return UV_EINVAL;
  other = qpeer__candset_find_seq(s, seq);
  if (other != NULL &&
      !qpeer__addr_equal(sa_of(&other->cand.addr), sa_of(&c->addr)))
    return UV_EEXIST;
  rv = add_entry(s, c, seq, pevicted);
  if (rv >= 0 && seq >= s->next_seq)
    s->next_seq = seq + 1;
  return rv;
}

/* ---- The serialized form. ---- */

/* CRC-32C (Castagnoli, reflected polynomial 0x82f63b78) of each nibble. */
static const uint32_t crc32c_nibble[16] = {
    0x00000000u, 0x105ec76fu, 0x20bd8edeu, 0x30e349b1u,
    0x417b1dbcu, 0x5125dad3u, 0x61c69362u, 0x7198540du,
    0x82f63b78u, 0x92a8fc17u, 0xa24bb5a6u, 0xb21572c9u,
    0xc38d26c4u, 0xd3d3e1abu, 0xe330a81au, 0xf36e6f75u};

/* crc32c returns the CRC-32C of |len| bytes at |p| (the ticket's). */
static uint32_t crc32c(const uint8_t *p, size_t len) {
  uint32_t crc = 0xffffffffu;
  while (len-- > 0) {
    crc ^= *p++;
    crc = (crc >> 4) ^ crc32c_nibble[crc & 15];
    crc = (crc >> 4) ^ crc32c_nibble[crc & 15];
  }
  return crc ^ 0xffffffffu;
}

/* put_addr writes the IP bytes and port of |sa|. */
static int put_addr(qpeer__wbuf *w, const struct sockaddr *sa) {
  const uint8_t *ip;
  size_t n = ip_bytes(sa, &ip);
  int rv = qpeer__wbuf_bytes(w, ip, n);
  if (rv != 0)
    return rv;
  return qpeer__wbuf_u16(w, qpeer__addr_port(sa));
}

/* encode_cand appends the CAND record of entry |e|. */
static int encode_cand(qpeer__wbuf *w, const qpeer__candset_entry *e,
                       unsigned flags) {
  const qpeer_candidate_t *c = &e->cand;
  const struct sockaddr *a = sa_of(&c->addr), *b = sa_of(&c->base);
  int related = (flags & QPEER__CANDLIST_RELATED) && !qpeer__addr_equal(a, b);
  uint8_t cf = 0;
  size_t vlen;
  int rv;

  if (a->sa_family == AF_INET6)
    cf |= CF_ADDR6;
  if (related) {
    cf |= CF_RELATED;
    if (b->sa_family == AF_INET6)
      cf |= CF_RELATED6;
  }
  vlen = 2 + qpeer__varint_len(e->seq) + 8 +
         (a->sa_family == AF_INET6 ? 18 : 6) +
         (related ? (b->sa_family == AF_INET6 ? 18 : 6) : 0);
  if ((rv = qpeer__wbuf_varint(w, REC_CAND)) != 0 ||
      (rv = qpeer__wbuf_varint(w, vlen)) != 0 ||
      (rv = qpeer__wbuf_u8(w, cf)) != 0 ||
      (rv = qpeer__wbuf_u8(w, (uint8_t)c->type)) != 0 ||
      (rv = qpeer__wbuf_varint(w, e->seq)) != 0 ||
      (rv = qpeer__wbuf_u32(w, c->priority)) != 0 ||
      (rv = qpeer__wbuf_u32(w, c->foundation)) != 0 ||
      (rv = put_addr(w, a)) != 0)
    return rv;
  if (related)
    return put_addr(w, b);
  return 0;
}

int qpeer__candlist_encode(const qpeer__candset *s, unsigned flags,
                           uint8_t *buf, size_t buflen) {
  qpeer__wbuf w;
  size_t i, j, n;
  int rv;

  if (s == NULL || buf == NULL || (flags & ~(unsigned)QPEER__CANDLIST_RELATED))
    return UV_EINVAL;
  if (s->n > QPEER__CANDSET_MAX)
    return UV_EINVAL;
  for (i = 0; i < s->n; i++) {
    if (qpeer__cand_check(&s->e[i].cand) != 0 ||
        s->e[i].seq > QPEER__VARINT_MAX)
      return UV_EINVAL;
    for (j = 0; j < i; j++)
      if (s->e[j].seq == s->e[i].seq ||
          qpeer__addr_equal(sa_of(&s->e[j].cand.addr),
                            sa_of(&s->e[i].cand.addr)))
        return UV_EINVAL;
  }
  qpeer__wbuf_init(&w, buf, buflen);
  if ((rv = qpeer__wbuf_u8(&w, QPEER__CANDLIST_VERSION)) != 0)
    return rv;
  for (i = 0; i < s->n; i++)
    if ((rv = encode_cand(&w, &s->e[i], flags)) != 0)
      return rv;
  n = (size_t)(w.p - buf);
  if ((rv = qpeer__wbuf_u32(&w, crc32c(buf, n))) != 0)
    return rv;
  return (int)(n + CRC_LEN);
}

/* get_addr reads an IPv4 (|v6| zero) or IPv6 address and a port into
 * |*ss|. */
static int get_addr(qpeer__rbuf *r, int v6, struct sockaddr_storage *ss) {
  const uint8_t *ip;
  uint16_t port;
  int rv;
  memset(ss, 0, sizeof(*ss));
  if ((rv = qpeer__rbuf_bytes(r, &ip, v6 ? 16 : 4)) != 0 ||
      (rv = qpeer__rbuf_u16(r, &port)) != 0)
    return rv;
  if (v6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ss;
    s6->sin6_family = AF_INET6;
    memcpy(s6->sin6_addr.s6_addr, ip, 16);
    s6->sin6_port = htons(port);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ss;
    s4->sin_family = AF_INET;
    memcpy(&s4->sin_addr, ip, 4);
    s4->sin_port = htons(port);
  }
  return 0;
}

/* decode_cand reads one CAND record value (|vlen| bytes at |v|) into |s|. */
static int decode_cand(qpeer__candset *s, const uint8_t *v, size_t vlen) {
  qpeer__candset_entry e;
  qpeer__rbuf r;
  uint8_t cf, type;
  int rv;

  memset(&e, 0, sizeof(e));
  qpeer__rbuf_init(&r, v, vlen);
  if (qpeer__rbuf_u8(&r, &cf) != 0 || qpeer__rbuf_u8(&r, &type) != 0 ||
      qpeer__rbuf_varint(&r, &e.seq) != 0 ||
      qpeer__rbuf_u32(&r, &e.cand.priority) != 0 ||
      qpeer__rbuf_u32(&r, &e.cand.foundation) != 0)
    return QPEER_EMALFORMED;
  if ((cf & ~CF_ALL) != 0 || ((cf & CF_RELATED6) && !(cf & CF_RELATED)))
    return QPEER_EMALFORMED;
  if (get_addr(&r, cf & CF_ADDR6, &e.cand.addr) != 0)
    return QPEER_EMALFORMED;
  if (cf & CF_RELATED) {
    if (get_addr(&r, cf & CF_RELATED6, &e.cand.base) != 0 ||
        qpeer__addr_equal(sa_of(&e.cand.addr), sa_of(&e.cand.base)))
      return QPEER_EMALFORMED;
  } else {
    e.cand.base = e.cand.addr;
  }
  if (qpeer__rbuf_left(&r) != 0)
    return QPEER_EMALFORMED;
  e.cand.type = (qpeer_candidate_type)type;
  e.cand.component = 1;
  e.cand.sources = QPEER_CANDIDATE_SRC_PEER;
  if (qpeer__cand_check(&e.cand) != 0)
    return QPEER_EMALFORMED;
  if (s->n == QPEER__CANDSET_MAX || qpeer__candset_find_seq(s, e.seq) ||
      find_index(s, sa_of(&e.cand.addr)) >= 0)
    return QPEER_EMALFORMED;
  rv = qpeer__candset_add_seq(s, &e.cand, e.seq, NULL);
  return rv == QPEER__CANDSET_ADDED ? 0 : QPEER_EMALFORMED;
}

/* is_shortest returns nonzero if the varint at |p| (|n| bytes long) holds
 * |v| in its shortest form. */
static int is_shortest(uint64_t v, size_t n) {
  return qpeer__varint_len(v) == n;
}

int qpeer__candlist_decode(qpeer__candset *s, const uint8_t *buf, size_t len) {
  qpeer__candset out;
  qpeer__rbuf r;
  int rv;

  if (s == NULL || (buf == NULL && len > 0))
    return UV_EINVAL;
  if (len < 1 + CRC_LEN)
    return QPEER_ETRUNCATED;
  if (len > QPEER__CANDLIST_DEC_MAX)
    return UV_EMSGSIZE;
  if (crc32c(buf, len - CRC_LEN) != qpeer__get_u32(buf + len - CRC_LEN))
    return QPEER_ECHECKSUM;
  if (buf[0] != QPEER__CANDLIST_VERSION)
    return QPEER_EUNSUPPORTED;
  qpeer__candset_init(&out);
  qpeer__rbuf_init(&r, buf + 1, len - 1 - CRC_LEN);
  while (qpeer__rbuf_left(&r) > 0) {
    const uint8_t *start = r.p, *v;
    uint64_t type, vlen;
    size_t tlen;
    if (qpeer__rbuf_varint(&r, &type) != 0)
      return QPEER_EMALFORMED;
    tlen = (size_t)(r.p - start);
    start = r.p;
    if (qpeer__rbuf_varint(&r, &vlen) != 0)
      return QPEER_EMALFORMED;
    if (!is_shortest(type, tlen) || !is_shortest(vlen, (size_t)(r.p - start)))
      return QPEER_EMALFORMED;
    if (vlen > qpeer__rbuf_left(&r) ||
        qpeer__rbuf_bytes(&r, &v, (size_t)vlen) != 0)
      return QPEER_EMALFORMED;
    if (type == REC_CAND) {
      if ((rv = decode_cand(&out, v, (size_t)vlen)) != 0)
        return rv;
    } else if ((type & 1) == 0) {
      return QPEER_EMALFORMED; /* an unknown critical record */
    }
  }
  *s = out;
  return 0;
}

/* ---- Pairing. ---- */

uint64_t qpeer__cand_pair_priority(uint32_t g, uint32_t d) {
  uint64_t lo = g < d ? g : d, hi = g < d ? d : g;
  return (lo << 32) + 2 * hi + (g > d ? 1 : 0);
}

/* A pair under construction: indices into the two sets. */
typedef struct {
  uint64_t prio;                            /* pair priority */
  uint64_t rseq;                            /* remote sequence number */
  uint8_t base;                             /* local index of the base */
  uint8_t remote;                           /* remote index */
  uint8_t ntargets;                         /* entries used in |targets| */
  uint8_t targets[QPEER__PAIR_MAX_TARGETS]; /* local indices, best first */
} proto_pair;

/* cmp_proto orders proto pairs: priority (descending), remote sequence
 * number, local base index, remote index. A total order, so qsort's
 * result is deterministic. */
static int cmp_proto(const void *pa, const void *pb) {
  const proto_pair *a = pa, *b = pb;
  if (a->prio != b->prio)
    return a->prio > b->prio ? -1 : 1;
  if (a->rseq != b->rseq)
    return a->rseq < b->rseq ? -1 : 1;
  if (a->base != b->base)
    return a->base < b->base ? -1 : 1;
  return a->remote < b->remote ? -1 : (a->remote > b->remote);
}

/* pairable returns nonzero if local candidate |l| may pair with remote
 * candidate |r|. */
static int pairable(const qpeer_candidate_t *l, const qpeer_candidate_t *r) {
  if (l->type == QPEER_CANDIDATE_RELAY || r->type == QPEER_CANDIDATE_RELAY)
    return 0;
  if (l->addr.ss_family != r->addr.ss_family ||
      l->base.ss_family != r->addr.ss_family)
    return 0;
  return scope_kind(sa_of(&l->addr)) == scope_kind(sa_of(&r->addr)) &&
         scope_kind(sa_of(&l->base)) == scope_kind(sa_of(&r->addr));
}

/* fill_pair writes checklist entry |out| for proto pair |p|. */
static void fill_pair(qpeer__cand_pair *out, const proto_pair *p,
                      const qpeer__candset *local,
                      const qpeer__candset *remote) {
  const qpeer_candidate_t *l = &local->e[p->targets[0]].cand;
  const qpeer__candset_entry *r = &remote->e[p->remote];
  size_t k;

  memset(out, 0, sizeof(*out));
  out->base = local->e[p->base].cand.base;
  out->remote = r->cand.addr;
  if (out->remote.ss_family == AF_INET6 &&
      scope_kind(sa_of(&out->remote)) == 1) {
    /* Copied bytewise: the field sits inside sockaddr_storage objects, and
     * a typed access through sockaddr_in6 would break strict aliasing. */
    size_t off = offsetof(struct sockaddr_in6, sin6_scope_id);
    uint32_t scope;
    memcpy(&scope, (const uint8_t *)&out->base + off, sizeof(scope));
    memcpy((uint8_t *)&out->remote + off, &scope, sizeof(scope));
  }
  for (k = 0; k < p->ntargets; k++)
    out->targets[k] = local->e[p->targets[k]].cand.addr;
  out->ntargets = p->ntargets;
  out->remote_seq = r->seq;
  out->priority = p->prio;
  out->local_prio = l->priority;
  out->remote_prio = r->cand.priority;
  out->local_type = l->type;
  out->remote_type = r->cand.type;
}

size_t qpeer__cand_pairs_build(const qpeer__candset *local,
                               const qpeer__candset *remote,
                               qpeer__cand_pair *pairs, size_t max_pairs) {
  proto_pair pp[QPEER__CANDSET_MAX * QPEER__CANDSET_MAX];
  uint8_t base_of[QPEER__CANDSET_MAX];
  size_t np = 0, i, j, k;

  if (max_pairs > QPEER__PAIRS_MAX)
    max_pairs = QPEER__PAIRS_MAX;
  /* base_of[i] is the first local index whose base equals i's base. */
  for (i = 0; i < local->n; i++) {
    base_of[i] = (uint8_t)i;
    for (j = 0; j < i; j++) {
      if (qpeer__addr_equal(sa_of(&local->e[j].cand.base),
                            sa_of(&local->e[i].cand.base))) {
        base_of[i] = base_of[j];
        break;
      }
    }
  }
  /* Locals come in priority order, so the first local of a (base, remote)
   * group gives the group its priority; later ones become extra targets. */
  for (i = 0; i < local->n; i++) {
    const qpeer_candidate_t *l = &local->e[i].cand;
    for (j = 0; j < remote->n; j++) {
      const qpeer_candidate_t *r = &remote->e[j].cand;
      proto_pair *p = NULL;
      if (!pairable(l, r))
        continue;
      for (k = 0; k < np; k++) {
        if (pp[k].base == base_of[i] && pp[k].remote == j) {
          p = &pp[k];
          break;
        }
      }
      if (p == NULL) {
        p = &pp[np++];
        memset(p, 0, sizeof(*p));
        p->prio = qpeer__cand_pair_priority(l->priority, r->priority);
        p->rseq = remote->e[j].seq;
        p->base = base_of[i];
        p->remote = (uint8_t)j;
      }
      if (p->ntargets < QPEER__PAIR_MAX_TARGETS)
        p->targets[p->ntargets++] = (uint8_t)i;
    }
  }
  qsort(pp, np, sizeof(pp[0]), cmp_proto);
  if (np > max_pairs)
    np = max_pairs;
  for (k = 0; k < np; k++)
    fill_pair(&pairs[k], &pp[k], local, remote);
  return np;
}
