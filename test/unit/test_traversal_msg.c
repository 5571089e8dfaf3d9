/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/peer/traversal_msg.c: the control-stream messages.
 * Vectors for every message were computed independently (Python: struct
 * and ipaddress); then round trips, every truncation, each body rule,
 * non-shortest headers, the size bound, the HELLO rules, and the stream
 * parser fed byte by byte and in random chunks with unknown messages
 * interleaved.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/addr.h"
#include "internal.h"
#include "peer/traversal_msg.h"

/* Deterministic xorshift64 so failures reproduce. */
static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint64_t rng_next(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* sa parses an IPv4 or IPv6 literal with |port| into |ss|. */
static void sa(struct sockaddr_storage *ss, const char *ip, uint16_t port) {
  memset(ss, 0, sizeof(*ss));
  if (strchr(ip, ':') != NULL) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    s6->sin6_port = htons(port);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    s4->sin_port = htons(port);
  }
}

static size_t hex_decode(const char *hex, uint8_t *out, size_t cap) {
  size_t n = strlen(hex) / 2, i;
  unsigned v;
  assert_true(n <= cap);
  for (i = 0; i < n; i++) {
    assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
    out[i] = (uint8_t)v;
  }
  return n;
}

/* msg_equal asserts that two decoded messages are equal. */
static void msg_equal(const qpeer__trav_msg *a, const qpeer__trav_msg *b) {
  assert_int_equal(a->kind, b->kind);
  assert_true(a->seq == b->seq);
  assert_true(a->round == b->round);
  assert_int_equal(a->addr.ss_family, b->addr.ss_family);
  if (a->addr.ss_family != AF_UNSPEC)
    assert_true(qpeer__addr_equal((const struct sockaddr *)&a->addr,
                                  (const struct sockaddr *)&b->addr));
  assert_int_equal(a->cand_type, b->cand_type);
  assert_int_equal(a->priority, b->priority);
  assert_memory_equal(&a->hello, &b->hello, sizeof(a->hello));
}

/* The vectors: one message each, in wire order below. */
typedef struct {
  const char *hex;   /* the encoded message */
  qpeer__trav_msg m; /* its content (filled by make_vectors) */
} vector_t;

static vector_t vectors[10];

static void make_vectors(void) {
  qpeer__trav_msg *m;
  memset(vectors, 0, sizeof(vectors));
  /* OBSERVED_ADDRESS v4, seq 5, 192.0.2.7:40000 (protocols.md §1.3). */
  vectors[0].hex = "809f81a60705c00002079c40";
  m = &vectors[0].m;
  m->kind = QPEER__TRAV_OBSERVED_ADDRESS;
  m->seq = 5;
  sa(&m->addr, "192.0.2.7", 40000);
  /* OBSERVED_ADDRESS v6, seq 300, [2001:db8::7]:443. */
  vectors[1].hex = "809f81a714412c20010db800000000000000000000000701bb";
  m = &vectors[1].m;
  m->kind = QPEER__TRAV_OBSERVED_ADDRESS;
  m->seq = 300;
  sa(&m->addr, "2001:db8::7", 443);
  /* ADD_ADDRESS v4, seq 0, 203.0.113.5:4433. */
  vectors[2].hex = "803d7e900700cb0071051151";
  m = &vectors[2].m;
  m->kind = QPEER__TRAV_ADD_ADDRESS;
  sa(&m->addr, "203.0.113.5", 4433);
  /* ADD_ADDRESS v6, seq 1, [2001:db8::5]:4433. */
  vectors[3].hex = "803d7e91130120010db80000000000000000000000051151";
  m = &vectors[3].m;
  m->kind = QPEER__TRAV_ADD_ADDRESS;
  m->seq = 1;
  sa(&m->addr, "2001:db8::5", 4433);
  /* PUNCH_ME_NOW v4, round 1, paired with 0, 198.51.100.2:61000. */
  vectors[4].hex = "803d7e92080100c6336402ee48";
  m = &vectors[4].m;
  m->kind = QPEER__TRAV_PUNCH_ME_NOW;
  m->round = 1;
  sa(&m->addr, "198.51.100.2", 61000);
  /* PUNCH_ME_NOW v6, round 70, paired with 3, [2001:db8:1::2]:4000. */
  vectors[5].hex = "803d7e931540460320010db80001000000000000000000020fa0";
  m = &vectors[5].m;
  m->kind = QPEER__TRAV_PUNCH_ME_NOW;
  m->round = 70;
  m->seq = 3;
  sa(&m->addr, "2001:db8:1::2", 4000);
  /* REMOVE_ADDRESS seq 2. */
  vectors[6].hex = "803d7e940102";
  m = &vectors[6].m;
  m->kind = QPEER__TRAV_REMOVE_ADDRESS;
  m->seq = 2;
  /* HELLO from a server: version 1, address_discovery 2, concurrency 4. */
  vectors[7].hex = "c0000000717000001301c00000009f81a17602fd7e9f0bca12fea604";
  m = &vectors[7].m;
  m->kind = QPEER__TRAV_HELLO;
  m->hello.version = 1;
  m->hello.has_address_discovery = 1;
  m->hello.address_discovery = 2;
  m->hello.has_nat_traversal = 1;
  m->hello.nat_traversal = 4;
  /* HELLO from a client: nat_traversal 0, max_addresses 16. */
  vectors[8].hex = "c0000000717000001c01c00000009f81a17602fd7e9f0bca12fea600"
                   "c00000007170010010";
  m = &vectors[8].m;
  m->kind = QPEER__TRAV_HELLO;
  m->hello.version = 1;
  m->hello.has_address_discovery = 1;
  m->hello.address_discovery = 2;
  m->hello.has_nat_traversal = 1;
  m->hello.nat_traversal = 0;
  m->hello.has_max_addresses = 1;
  m->hello.max_addresses = 16;
  /* ADDRESS_INFO seq 1: srflx, priority 0x64bfffff. */
  vectors[9].hex = "c00000007170000106010264bfffff";
  m = &vectors[9].m;
  m->kind = QPEER__TRAV_ADDRESS_INFO;
  m->seq = 1;
  m->cand_type = 2;
  m->priority = 0x64bfffffu;
}

static void test_traversal_msg_vectors(void **state) {
  uint8_t want[64], buf[QPEER__TRAV_ENC_MAX];
  qpeer__trav_msg d;
  size_t i, wn, used;
  int n;
  (void)state;
  make_vectors();
  for (i = 0; i < QPEER__ARRAY_SIZE(vectors); i++) {
    wn = hex_decode(vectors[i].hex, want, sizeof(want));
    n = qpeer__trav_msg_encode(&vectors[i].m, buf, sizeof(buf));
    assert_int_equal(n, (int)wn);
    assert_memory_equal(buf, want, wn);
    assert_int_equal(qpeer__trav_msg_decode(&d, want, wn, &used), 0);
    assert_int_equal(used, wn);
    msg_equal(&d, &vectors[i].m);
    /* Every smaller buffer: ENOBUFS. */
    for (used = 0; used < wn; used++)
      assert_int_equal(qpeer__trav_msg_encode(&vectors[i].m, buf, used),
                       UV_ENOBUFS);
  }
}

/* random_msg fills |m| with a random valid message. */
static void random_msg(qpeer__trav_msg *m) {
  static const uint64_t big[] = {
      0, 1, 63, 64, 16383, 16384, 1073741823, 1073741824, (1ULL << 62) - 1};
  char ip[64];
  memset(m, 0, sizeof(*m));
  m->kind = (qpeer__trav_kind)(1 + rng_next() % 6);
  m->seq = big[rng_next() % QPEER__ARRAY_SIZE(big)];
  if (m->kind == QPEER__TRAV_PUNCH_ME_NOW)
    m->round = big[rng_next() % QPEER__ARRAY_SIZE(big)];
  if (m->kind == QPEER__TRAV_OBSERVED_ADDRESS ||
      m->kind == QPEER__TRAV_ADD_ADDRESS ||
      m->kind == QPEER__TRAV_PUNCH_ME_NOW) {
    if (rng_next() % 2)
      snprintf(ip, sizeof(ip), "2001:db8::%x", (unsigned)(rng_next() % 65535));
    else
      snprintf(ip, sizeof(ip), "%u.%u.%u.%u", (unsigned)(rng_next() % 256),
               (unsigned)(rng_next() % 256), (unsigned)(rng_next() % 256),
               (unsigned)(rng_next() % 256));
    sa(&m->addr, ip, (uint16_t)rng_next());
  }
  if (m->kind == QPEER__TRAV_ADDRESS_INFO) {
    m->cand_type = (uint8_t)rng_next();
    m->priority = (uint32_t)rng_next();
  }
  if (m->kind == QPEER__TRAV_HELLO) {
    m->seq = 0;
    m->hello.version = 1 + big[rng_next() % QPEER__ARRAY_SIZE(big)] / 2;
    if (rng_next() % 2) {
      m->hello.has_address_discovery = 1;
      m->hello.address_discovery = (uint8_t)(rng_next() % 3);
    }
    if (rng_next() % 2) {
      m->hello.has_nat_traversal = 1;
      m->hello.nat_traversal = big[rng_next() % QPEER__ARRAY_SIZE(big)];
    }
    if (rng_next() % 2) {
      m->hello.has_max_addresses = 1;
      m->hello.max_addresses = 1 + big[rng_next() % QPEER__ARRAY_SIZE(big)] / 2;
    }
  }
}

static void test_traversal_msg_roundtrip(void **state) {
  uint8_t buf[QPEER__TRAV_ENC_MAX];
  qpeer__trav_msg m, d;
  size_t used;
  int i, n;
  (void)state;
  for (i = 0; i < 5000; i++) {
    random_msg(&m);
    n = qpeer__trav_msg_encode(&m, buf, sizeof(buf));
    assert_true(n > 0 && n <= QPEER__TRAV_ENC_MAX);
    assert_int_equal(qpeer__trav_msg_decode(&d, buf, (size_t)n, &used), 0);
    assert_int_equal(used, (size_t)n);
    msg_equal(&d, &m);
  }
}

static void test_traversal_msg_truncation(void **state) {
  uint8_t buf[64];
  qpeer__trav_msg d;
  size_t i, k, wn, used;
  int rv;
  (void)state;
  make_vectors();
  for (i = 0; i < QPEER__ARRAY_SIZE(vectors); i++) {
    wn = hex_decode(vectors[i].hex, buf, sizeof(buf));
    for (k = 0; k < wn; k++) {
      used = 99;
      assert_int_equal(qpeer__trav_msg_decode(&d, buf, k, &used),
                       QPEER_ETRUNCATED);
      assert_int_equal(used, 0);
    }
    /* Every shorter Length (the body then ends early): malformed; one more
     * byte of body: malformed too. */
    for (k = 0; k < wn; k++) {
      uint8_t t[64];
      size_t tl = vectors[i].hex[0] == 'c' ? 8 : 4, blen = wn - tl - 1;
      if (k >= blen)
        break;
      memcpy(t, buf, tl);
      t[tl] = (uint8_t)k;
      memcpy(t + tl + 1, buf + tl + 1, k);
      rv = qpeer__trav_msg_decode(&d, t, tl + 1 + k, &used);
      /* A HELLO cut between settings is a shorter valid HELLO. */
      if (vectors[i].m.kind == QPEER__TRAV_HELLO && rv == 0)
        assert_int_equal(d.kind, QPEER__TRAV_HELLO);
      else
        assert_int_equal(rv, QPEER_EMALFORMED);
    }
    {
      uint8_t t[64];
      size_t tl = vectors[i].hex[0] == 'c' ? 8 : 4;
      memcpy(t, buf, wn);
      t[tl] = (uint8_t)(t[tl] + 1);
      t[wn] = 0;
      /* A HELLO then reads one more setting byte (an incomplete pair). */
      assert_int_equal(qpeer__trav_msg_decode(&d, t, wn + 1, &used),
                       QPEER_EMALFORMED);
    }
  }
}

static void test_traversal_msg_header_rules(void **state) {
  uint8_t b[2048];
  qpeer__trav_msg d;
  size_t used;
  (void)state;
  /* A non-shortest Type (REMOVE_ADDRESS as 8 bytes), a non-shortest
   * Length. */
  hex_decode("c0000000003d7e940102", b, sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, 10, &used), QPEER_EMALFORMED);
  hex_decode("803d7e94400102", b, sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, 7, &used), QPEER_EMALFORMED);
  /* A non-minimal varint inside a body is a valid value (RFC 9000). */
  hex_decode("803d7e94024002", b, sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, 7, &used), 0);
  assert_int_equal(d.kind, QPEER__TRAV_REMOVE_ADDRESS);
  assert_true(d.seq == 2);
  /* A varint running past the body: malformed. */
  hex_decode("803d7e940140", b, sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, 6, &used), QPEER_EMALFORMED);
  /* Unknown types: the size to skip is reported even when the body is not
   * all there. */
  hex_decode("21036162", b, sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, 4, &used), QPEER_EUNSUPPORTED);
  assert_int_equal(used, 5);
  /* Size bound: 1024 is fine, 1025 is not, for any type. */
  hex_decode("214400", b, sizeof(b)); /* Length 1024 (varint 44 00) */
  assert_int_equal(qpeer__trav_msg_decode(&d, b, 3, &used), QPEER_EUNSUPPORTED);
  assert_int_equal(used, 3 + 1024);
  hex_decode("214401", b, sizeof(b)); /* Length 1025 */
  assert_int_equal(qpeer__trav_msg_decode(&d, b, 3, &used), UV_EMSGSIZE);
  hex_decode("803d7e94440101", b, sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, 7, &used), UV_EMSGSIZE);
  /* decode_body on an unknown type. */
  assert_int_equal(qpeer__trav_msg_decode_body(&d, 0x21, b, 0),
                   QPEER_EUNSUPPORTED);
}

static void test_traversal_msg_hello_rules(void **state) {
  uint8_t b[128];
  qpeer__trav_msg d, m;
  size_t n, used;
  (void)state;
  /* Version 0. */
  n = hex_decode("c0000000717000000100", b, sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, n, &used), QPEER_EMALFORMED);
  /* Empty body: no version. */
  n = hex_decode("c00000007170000000", b, sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, n, &used), QPEER_EMALFORMED);
  /* A later version with unknown settings: decoded, unknowns ignored. */
  n = hex_decode("c000000071700000080705013f00402a07", b, sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, n, &used), 0);
  assert_true(d.hello.version == 7);
  assert_int_equal(d.hello.has_address_discovery, 0);
  assert_int_equal(d.hello.has_nat_traversal, 0);
  /* An identifier without a value. */
  n = hex_decode("c000000071700000020105", b, sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, n, &used), QPEER_EMALFORMED);
  /* address_discovery 3. */
  n = hex_decode("c0000000717000000a01c00000009f81a17603", b, sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, n, &used), QPEER_EMALFORMED);
  /* A repeated known setting. */
  n = hex_decode("c0000000717000001301c00000009f81a17601c00000009f81a17601", b,
                 sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, n, &used), QPEER_EMALFORMED);
  n = hex_decode("c0000000717000001301fd7e9f0bca12fea601fd7e9f0bca12fea601", b,
                 sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, n, &used), QPEER_EMALFORMED);
  n = hex_decode("c0000000717000001301c00000007170010001c00000007170010001", b,
                 sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, n, &used), QPEER_EMALFORMED);
  /* max_addresses 0. */
  n = hex_decode("c0000000717000000a01c00000007170010000", b, sizeof(b));
  assert_int_equal(qpeer__trav_msg_decode(&d, b, n, &used), QPEER_EMALFORMED);
  /* The encoder refuses what the decoder refuses. */
  memset(&m, 0, sizeof(m));
  m.kind = QPEER__TRAV_HELLO;
  assert_int_equal(qpeer__trav_msg_encode(&m, b, sizeof(b)), UV_EINVAL);
  m.hello.version = 1;
  m.hello.has_address_discovery = 1;
  m.hello.address_discovery = 3;
  assert_int_equal(qpeer__trav_msg_encode(&m, b, sizeof(b)), UV_EINVAL);
  m.hello.address_discovery = 0;
  m.hello.has_max_addresses = 1;
  assert_int_equal(qpeer__trav_msg_encode(&m, b, sizeof(b)), UV_EINVAL);
  m.hello.max_addresses = 1;
  m.hello.has_nat_traversal = 1;
  m.hello.nat_traversal = 1ULL << 62;
  assert_int_equal(qpeer__trav_msg_encode(&m, b, sizeof(b)), UV_EINVAL);
  m.hello.nat_traversal = 3;
  assert_true(qpeer__trav_msg_encode(&m, b, sizeof(b)) > 0);
}

static void test_traversal_msg_encoder_rules(void **state) {
  uint8_t b[64];
  qpeer__trav_msg m, d;
  size_t used;
  int n;
  (void)state;
  memset(&m, 0, sizeof(m));
  /* An IPv4-mapped address is written as IPv4, with the IPv4 type. */
  m.kind = QPEER__TRAV_OBSERVED_ADDRESS;
  m.seq = 5;
  sa(&m.addr, "::ffff:192.0.2.7", 40000);
  n = qpeer__trav_msg_encode(&m, b, sizeof(b));
  assert_int_equal(n, 12);
  assert_int_equal(b[3], 0xa6);
  assert_int_equal(qpeer__trav_msg_decode(&d, b, (size_t)n, &used), 0);
  assert_int_equal(d.addr.ss_family, AF_INET);
  /* Bad values. */
  m.addr.ss_family = AF_UNIX;
  assert_int_equal(qpeer__trav_msg_encode(&m, b, sizeof(b)), UV_EINVAL);
  m.addr.ss_family = AF_UNSPEC;
  assert_int_equal(qpeer__trav_msg_encode(&m, b, sizeof(b)), UV_EINVAL);
  sa(&m.addr, "192.0.2.7", 1);
  m.seq = 1ULL << 62;
  assert_int_equal(qpeer__trav_msg_encode(&m, b, sizeof(b)), UV_EINVAL);
  m.seq = 0;
  m.kind = QPEER__TRAV_PUNCH_ME_NOW;
  m.round = 1ULL << 62;
  assert_int_equal(qpeer__trav_msg_encode(&m, b, sizeof(b)), UV_EINVAL);
  m.kind = (qpeer__trav_kind)0;
  m.round = 0;
  assert_int_equal(qpeer__trav_msg_encode(&m, b, sizeof(b)), UV_EINVAL);
  m.kind = (qpeer__trav_kind)7;
  assert_int_equal(qpeer__trav_msg_encode(&m, b, sizeof(b)), UV_EINVAL);
  assert_int_equal(qpeer__trav_msg_encode(NULL, b, sizeof(b)), UV_EINVAL);
  /* A message without an address ignores the field. */
  m.kind = QPEER__TRAV_REMOVE_ADDRESS;
  m.addr.ss_family = AF_UNIX;
  assert_int_equal(qpeer__trav_msg_encode(&m, b, sizeof(b)), 6);
}

static void test_traversal_msg_roles(void **state) {
  qpeer__trav_hello s, c;
  (void)state;
  assert_int_equal(qpeer__trav_msg_direction_ok(QPEER__TRAV_HELLO, 0), 0);
  assert_int_equal(qpeer__trav_msg_direction_ok(QPEER__TRAV_HELLO, 1), 0);
  assert_int_equal(
      qpeer__trav_msg_direction_ok(QPEER__TRAV_OBSERVED_ADDRESS, 0), 0);
  assert_int_equal(
      qpeer__trav_msg_direction_ok(QPEER__TRAV_OBSERVED_ADDRESS, 1), 0);
  assert_int_equal(qpeer__trav_msg_direction_ok(QPEER__TRAV_ADD_ADDRESS, 0), 0);
  assert_int_equal(qpeer__trav_msg_direction_ok(QPEER__TRAV_ADD_ADDRESS, 1),
                   QPEER_EPROTO);
  assert_int_equal(qpeer__trav_msg_direction_ok(QPEER__TRAV_REMOVE_ADDRESS, 1),
                   QPEER_EPROTO);
  assert_int_equal(qpeer__trav_msg_direction_ok(QPEER__TRAV_ADDRESS_INFO, 1),
                   QPEER_EPROTO);
  assert_int_equal(qpeer__trav_msg_direction_ok(QPEER__TRAV_PUNCH_ME_NOW, 1),
                   0);
  assert_int_equal(qpeer__trav_msg_direction_ok(QPEER__TRAV_PUNCH_ME_NOW, 0),
                   QPEER_EPROTO);
  assert_int_equal(qpeer__trav_msg_direction_ok((qpeer__trav_kind)0, 0),
                   QPEER_EPROTO);

  memset(&s, 0, sizeof(s));
  memset(&c, 0, sizeof(c));
  assert_int_equal(qpeer__trav_hello_check(&s, 1), 0); /* not offered */
  s.has_nat_traversal = 1;
  assert_int_equal(qpeer__trav_hello_check(&s, 1), QPEER_EPROTO);
  s.nat_traversal = 4;
  assert_int_equal(qpeer__trav_hello_check(&s, 1), 0);
  assert_int_equal(qpeer__trav_hello_check(&s, 0), QPEER_EPROTO);
  c.has_nat_traversal = 1;
  assert_int_equal(qpeer__trav_hello_check(&c, 0), 0);

  /* OBSERVED_ADDRESS: the sender offers (0/2), the receiver wants (1/2). */
  assert_false(qpeer__trav_observed_allowed(&s, &c));
  s.has_address_discovery = c.has_address_discovery = 1;
  s.address_discovery = 0;
  c.address_discovery = 1;
  assert_true(qpeer__trav_observed_allowed(&s, &c));
  assert_false(qpeer__trav_observed_allowed(&c, &s));
  s.address_discovery = 2;
  c.address_discovery = 2;
  assert_true(qpeer__trav_observed_allowed(&s, &c));
  assert_true(qpeer__trav_observed_allowed(&c, &s));
  s.address_discovery = 1;
  assert_false(qpeer__trav_observed_allowed(&s, &c));
  c.address_discovery = 0;
  assert_false(qpeer__trav_observed_allowed(&s, &c));
}

/* ---- The stream parser. ---- */

/* A stream: HELLO, then every vector with unknown messages between. */
typedef struct {
  uint8_t b[4096];          /* the bytes */
  size_t n;                 /* bytes used */
  qpeer__trav_msg want[32]; /* the known messages, in order */
  size_t nwant;             /* entries used in |want| */
  size_t nunknown;          /* unknown messages inside */
} stream_t;

static void stream_add_hex(stream_t *s, const char *hex) {
  s->n += hex_decode(hex, s->b + s->n, sizeof(s->b) - s->n);
}

static void make_stream(stream_t *s) {
  size_t i;
  uint8_t big[3 + 1024];
  make_vectors();
  memset(s, 0, sizeof(*s));
  stream_add_hex(s, vectors[7].hex);
  s->want[s->nwant++] = vectors[7].m;
  for (i = 0; i < QPEER__ARRAY_SIZE(vectors); i++) {
    if (i == 7 || i == 8)
      continue;
    stream_add_hex(s, vectors[i].hex);
    s->want[s->nwant++] = vectors[i].m;
    /* An unknown (GREASE-like) message: empty, then with a body. */
    stream_add_hex(s, i % 2 ? "2100" : "4abc05aabbccddee");
    s->nunknown++;
  }
  /* The largest unknown message, skipped without buffering. */
  big[0] = 0x21;
  big[1] = 0x44;
  big[2] = 0x00;
  memset(big + 3, 0x5a, 1024);
  memcpy(s->b + s->n, big, sizeof(big));
  s->n += sizeof(big);
  s->nunknown++;
  stream_add_hex(s, vectors[6].hex);
  s->want[s->nwant++] = vectors[6].m;
}

/* feed_all feeds |s| in chunks chosen by |chunk| (0 = random 1..40) and
 * checks the messages. */
static void feed_all(const stream_t *s, size_t chunk) {
  qpeer__trav_parser p;
  qpeer__trav_msg m;
  size_t off = 0, got = 0, used;
  int rv;
  qpeer__trav_parser_init(&p);
  while (off < s->n) {
    size_t len = chunk ? chunk : 1 + rng_next() % 40;
    if (len > s->n - off)
      len = s->n - off;
    while (len > 0) {
      rv = qpeer__trav_parser_feed(&p, s->b + off, len, &used, &m);
      assert_true(rv == 0 || rv == 1);
      assert_true(used <= len);
      off += used;
      len -= used;
      if (rv == 1) {
        assert_true(got < s->nwant);
        msg_equal(&m, &s->want[got]);
        got++;
      } else {
        assert_int_equal(len, 0);
      }
    }
  }
  /* A message may complete on an empty feed only if it was complete. */
  assert_int_equal(qpeer__trav_parser_feed(&p, s->b, 0, &used, &m), 0);
  assert_int_equal(got, s->nwant);
  assert_true(p.nmsgs == s->nwant);
  assert_true(p.nskipped == s->nunknown);
  assert_int_equal(qpeer__trav_parser_finish(&p), 0);
}

static void test_traversal_msg_parser_chunks(void **state) {
  static stream_t s;
  int i;
  (void)state;
  make_stream(&s);
  feed_all(&s, 1); /* byte at a time */
  feed_all(&s, 2);
  feed_all(&s, 3);
  feed_all(&s, 7);
  feed_all(&s, s.n); /* all at once */
  for (i = 0; i < 200; i++)
    feed_all(&s, 0);
}

static void test_traversal_msg_parser_finish(void **state) {
  static stream_t s;
  qpeer__trav_parser p;
  qpeer__trav_msg m;
  size_t k, off, used;
  int rv;
  (void)state;
  make_stream(&s);
  /* Cut the stream at every byte: FIN there is a clean end exactly at
   * message boundaries. */
  for (k = 0; k <= s.n; k++) {
    int boundary = 0;
    qpeer__trav_parser_init(&p);
    off = 0;
    while (off < k) {
      rv = qpeer__trav_parser_feed(&p, s.b + off, k - off, &used, &m);
      assert_true(rv >= 0);
      off += used;
      if (rv == 0)
        break;
    }
    boundary = p.hdrlen == 0 && !p.in_body;
    rv = qpeer__trav_parser_finish(&p);
    assert_int_equal(rv, boundary ? 0 : QPEER_ETRUNCATED);
  }
  /* An empty stream ends cleanly. */
  qpeer__trav_parser_init(&p);
  assert_int_equal(qpeer__trav_parser_finish(&p), 0);
}

/* feed_hex feeds |hex| to a fresh parser byte by byte and returns the
 * first error (or the count of messages if none). */
static int feed_hex(const char *hex) {
  uint8_t b[2048];
  qpeer__trav_parser p;
  qpeer__trav_msg m;
  size_t n = hex_decode(hex, b, sizeof(b)), i, used;
  int rv, count = 0;
  qpeer__trav_parser_init(&p);
  for (i = 0; i < n; i++) {
    rv = qpeer__trav_parser_feed(&p, b + i, 1, &used, &m);
    if (rv < 0) {
      /* Sticky: every later call fails the same way, consuming nothing. */
      assert_int_equal(qpeer__trav_parser_feed(&p, b, n, &used, &m), rv);
      assert_int_equal(used, 0);
      assert_int_equal(qpeer__trav_parser_finish(&p), rv);
      return rv;
    }
    assert_int_equal(used, 1);
    count += rv;
  }
  return count;
}

static void test_traversal_msg_parser_errors(void **state) {
  static char hex[8192];
  size_t i;
  (void)state;
  make_vectors();
  /* HELLO must come first: a known message, an unknown one. */
  assert_int_equal(feed_hex("803d7e940102"), QPEER_EPROTO);
  assert_int_equal(feed_hex("2100"), QPEER_EPROTO);
  /* A second HELLO. */
  snprintf(hex, sizeof(hex), "%s%s", vectors[7].hex, vectors[8].hex);
  assert_int_equal(feed_hex(hex), QPEER_EPROTO);
  /* A good start, then each kind of error. */
  snprintf(hex, sizeof(hex), "%s%s", vectors[7].hex, vectors[0].hex);
  assert_int_equal(feed_hex(hex), 2);
  snprintf(hex, sizeof(hex), "%s214401", vectors[7].hex);
  assert_int_equal(feed_hex(hex), UV_EMSGSIZE);
  snprintf(hex, sizeof(hex), "%sc0000000003d7e940102", vectors[7].hex);
  assert_int_equal(feed_hex(hex), QPEER_EMALFORMED);
  snprintf(hex, sizeof(hex), "%s803d7e94400102", vectors[7].hex);
  assert_int_equal(feed_hex(hex), QPEER_EMALFORMED);
  snprintf(hex, sizeof(hex), "%s803d7e940201020000", vectors[7].hex);
  assert_int_equal(feed_hex(hex), QPEER_EMALFORMED);
  snprintf(hex, sizeof(hex), "%s803d7e9206010203040506", vectors[7].hex);
  assert_int_equal(feed_hex(hex), QPEER_EMALFORMED);
  /* A malformed HELLO. */
  assert_int_equal(feed_hex("c0000000717000000100"), QPEER_EMALFORMED);
  /* Oversize known type, detected from its header alone. */
  snprintf(hex, sizeof(hex), "%s803d7e9444ff", vectors[7].hex);
  assert_int_equal(feed_hex(hex), UV_EMSGSIZE);
  /* Exactly 1024 bytes of unknown body is fine. */
  i = (size_t)snprintf(hex, sizeof(hex), "%s214400", vectors[7].hex);
  memset(hex + i, '0', 2048);
  hex[i + 2048] = '\0';
  assert_int_equal(feed_hex(hex), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_traversal_msg_vectors),
      cmocka_unit_test(test_traversal_msg_roundtrip),
      cmocka_unit_test(test_traversal_msg_truncation),
      cmocka_unit_test(test_traversal_msg_header_rules),
      cmocka_unit_test(test_traversal_msg_hello_rules),
      cmocka_unit_test(test_traversal_msg_encoder_rules),
      cmocka_unit_test(test_traversal_msg_roles),
      cmocka_unit_test(test_traversal_msg_parser_chunks),
      cmocka_unit_test(test_traversal_msg_parser_finish),
      cmocka_unit_test(test_traversal_msg_parser_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
