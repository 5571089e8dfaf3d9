/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/peer/ticket.c: the ticket codec. A fixed vector was
 * computed independently (Python: struct, base64.b32encode and a bitwise
 * CRC-32C); raw tickets are assembled here record by record with this
 * file's own CRC-32C, so the decoder's rules are checked one by one. The
 * rest checks round trips, truncation, corruption and the builders.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "qpeer/ticket.h"

/* The fixed vector: see make_vector_ticket for its content. */
static const char vector_hex[] =
    "010220000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "040701c0000201115104130220010db800000000000000000000000101bb063a01aaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa6874747073"
    "3a2f2f72656c61792e6578616d706c652e6e657406190268747470733a2f2f72322e65"
    "78616d706c653a383434332f0637035555555555555555555555555555555555555555"
    "55555555555555555555555568747470733a2f2f5b323030313a6462383a3a325d2f08"
    "04800000010108000000006553f100f7c78b6f";

static const char vector_text[] =
    "qpt1aebcaaabaibqibiga4eascqlbqgq4dyqcejbgfavcylrqgi2dmob2hq7aqdqdqaaai"
    "arcuiecmbcaainxaaaaaaaaaaaaaaaaaaacan3ay5adkvkvkvkvkvkvkvkvkvkvkvkvkvk"
    "vkvkvkvkvkvkvkvkvkvkvkvknb2hi4dthixs64tfnrqxsltfpbqw24dmmuxg4zluaymqe2"
    "duoryhgorpf5zdeltfpbqw24dmmu5dqnbugmxqmnydkvkvkvkvkvkvkvkvkvkvkvkvkvkv"
    "kvkvkvkvkvkvkvkvkvkvkvkwq5duobztulzplmzdambrhjsgeob2hizf2lyiasaaaaabae"
    "eaaaaaabsvh4ia67dyw3y";

/* Deterministic xorshift64 so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* crc32c is an independent bitwise CRC-32C (Castagnoli). */
static uint32_t crc32c(const uint8_t *p, size_t len) {
  uint32_t c = 0xffffffffu;
  int k;
  while (len-- > 0) {
    c ^= *p++;
    for (k = 0; k < 8; k++)
      c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
  }
  return c ^ 0xffffffffu;
}

/* A raw ticket under construction. */
typedef struct {
  uint8_t b[8192]; /* bytes so far */
  size_t n;        /* bytes used */
} raw_t;

static void raw_bytes(raw_t *r, const void *p, size_t n) {
  assert_true(r->n + n <= sizeof(r->b));
  if (n > 0)
    memcpy(r->b + r->n, p, n);
  r->n += n;
}

/* raw_varint appends |v| as a QUIC varint of exactly |len| bytes. */
static void raw_varint_len(raw_t *r, uint64_t v, size_t len) {
  static const uint8_t prefix[9] = {0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0};
  size_t i;
  for (i = 0; i < len; i++)
    r->b[r->n + len - 1 - i] = (uint8_t)(v >> (8 * i));
  r->b[r->n] |= prefix[len];
  r->n += len;
}

static void raw_varint(raw_t *r, uint64_t v) {
  raw_varint_len(r, v, v < 64 ? 1 : v < 16384 ? 2 : v < 1073741824 ? 4 : 8);
}

static void raw_record(raw_t *r, uint64_t type, const void *v, size_t vlen) {
  raw_varint(r, type);
  raw_varint(r, vlen);
  raw_bytes(r, v, vlen);
}

/* raw_start begins a ticket with |version| and, if |pid|, a peer ID. */
static void raw_start(raw_t *r, uint8_t version, int pid) {
  uint8_t key[QPEER_PEER_ID_LEN];
  memset(key, 0x11, sizeof(key));
  r->n = 0;
  raw_bytes(r, &version, 1);
  if (pid)
    raw_record(r, 0x02, key, sizeof(key));
}

/* raw_finish appends the CRC-32C of everything so far. */
static void raw_finish(raw_t *r) {
  uint32_t c = crc32c(r->b, r->n);
  uint8_t be[4] = {(uint8_t)(c >> 24), (uint8_t)(c >> 16), (uint8_t)(c >> 8),
                   (uint8_t)c};
  raw_bytes(r, be, 4);
}

/* raw_addr4 appends an IPv4 address record. */
static void raw_addr4(raw_t *r, uint8_t type, const char *ip, uint16_t port) {
  uint8_t v[7];
  v[0] = type;
  assert_int_equal(inet_pton(AF_INET, ip, v + 1), 1);
  v[5] = (uint8_t)(port >> 8);
  v[6] = (uint8_t)port;
  raw_record(r, 0x04, v, sizeof(v));
}

/* raw_addr6 appends an IPv6 address record. */
static void raw_addr6(raw_t *r, uint8_t type, const char *ip, uint16_t port) {
  uint8_t v[19];
  v[0] = type;
  assert_int_equal(inet_pton(AF_INET6, ip, v + 1), 1);
  v[17] = (uint8_t)(port >> 8);
  v[18] = (uint8_t)port;
  raw_record(r, 0x04, v, sizeof(v));
}

/* raw_relay appends a relay record: |auth|, |keylen| bytes of 0x22, URL. */
static void raw_relay(raw_t *r, uint8_t auth, size_t keylen, const char *url) {
  uint8_t v[600];
  size_t ulen = strlen(url);
  assert_true(1 + keylen + ulen <= sizeof(v));
  v[0] = auth;
  memset(v + 1, 0x22, keylen);
  memcpy(v + 1 + keylen, url, ulen);
  raw_record(r, 0x06, v, 1 + keylen + ulen);
}

/* raw_text writes "qpt1" and the base32 of the finished |r| (an encoder
 * independent of the library's, bit by bit). */
static void raw_text(const raw_t *r, char *out) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  size_t bit, n = 0, nbits = r->n * 8;
  memcpy(out, "qpt1", 4);
  n = 4;
  for (bit = 0; bit < nbits; bit += 5) {
    unsigned v = 0, j;
    for (j = 0; j < 5; j++) {
      size_t b = bit + j;
      v = (v << 1) | (b < nbits ? (r->b[b / 8] >> (7 - b % 8)) & 1u : 0u);
    }
    out[n++] = alphabet[v];
  }
  out[n] = '\0';
}

/* decode_raw finishes |r| and decodes it. */
static int decode_raw(raw_t *r, qpeer_ticket_t *t) {
  raw_finish(r);
  return qpeer_ticket_decode_binary(t, r->b, r->n);
}

static size_t hex_decode(uint8_t *out, size_t outlen, const char *hex) {
  size_t i, n = strlen(hex) / 2;
  assert_true(n <= outlen);
  for (i = 0; i < n; i++) {
    unsigned v;
    assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
    out[i] = (uint8_t)v;
  }
  return n;
}

static void set_addr(struct sockaddr_storage *ss, const char *ip,
                     uint16_t port) {
  memset(ss, 0, sizeof(*ss));
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
  }
}

static int add(qpeer_ticket_t *t, const char *ip, uint16_t port,
               qpeer_ticket_addr_type type) {
  struct sockaddr_storage ss;
  set_addr(&ss, ip, port);
  return qpeer_ticket_add_typed_addr(t, (struct sockaddr *)&ss, type);
}

/* make_vector_ticket builds the ticket of vector_hex / vector_text. */
static void make_vector_ticket(qpeer_ticket_t *t) {
  qpeer_peer_id_t pin;
  uint8_t fp[QPEER_TICKET_CA_FP_LEN];
  size_t i;
  assert_int_equal(qpeer_ticket_init(t), 0);
  for (i = 0; i < QPEER_PEER_ID_LEN; i++)
    t->peer_id.key[i] = (uint8_t)i;
  assert_int_equal(add(t, "192.0.2.1", 4433, QPEER_TICKET_ADDR_HOST), 0);
  assert_int_equal(add(t, "2001:db8::1", 443, QPEER_TICKET_ADDR_SRFLX), 0);
  memset(pin.key, 0xaa, sizeof(pin.key));
  assert_int_equal(qpeer_ticket_add_relay(t, "https://relay.example.net",
                                          QPEER_TICKET_AUTH_PIN, &pin),
                   0);
  assert_int_equal(qpeer_ticket_add_relay(t, "https://r2.example:8443/",
                                          QPEER_TICKET_AUTH_WEBPKI, NULL),
                   0);
  memset(fp, 0x55, sizeof(fp));
  assert_int_equal(qpeer_ticket_add_relay_ca(t, "https://[2001:db8::2]/", fp),
                   0);
  t->flags = 0x80000001u;
  t->created = 1700000000;
}

/* assert_ticket_equal compares two tickets field by field. */
static void assert_ticket_equal(const qpeer_ticket_t *a,
                                const qpeer_ticket_t *b) {
  size_t i;
  assert_memory_equal(a->peer_id.key, b->peer_id.key, QPEER_PEER_ID_LEN);
  assert_int_equal(a->naddrs, b->naddrs);
  assert_int_equal(a->nrelays, b->nrelays);
  assert_int_equal(a->flags, b->flags);
  assert_true(a->created == b->created);
  for (i = 0; i < a->naddrs; i++) {
    assert_int_equal(a->addrs[i].type, b->addrs[i].type);
    assert_memory_equal(&a->addrs[i].addr, &b->addrs[i].addr,
                        sizeof(struct sockaddr_storage));
  }
  for (i = 0; i < a->nrelays; i++) {
    assert_string_equal(a->relays[i].url, b->relays[i].url);
    assert_int_equal(a->relays[i].auth, b->relays[i].auth);
    assert_memory_equal(a->relays[i].pin.key, b->relays[i].pin.key,
                        QPEER_PEER_ID_LEN);
    assert_memory_equal(a->relays[i].ca_sha256, b->relays[i].ca_sha256,
                        QPEER_TICKET_CA_FP_LEN);
  }
}

/* roundtrip encodes |t| both ways, checks both decode back to |t|. */
static void roundtrip(const qpeer_ticket_t *t) {
  uint8_t bin[QPEER_TICKET_BIN_MAX];
  char text[QPEER_TICKET_STRLEN_MAX];
  qpeer_ticket_t back;
  int n, m;

  n = qpeer_ticket_encode_binary(t, bin, sizeof(bin));
  assert_true(n > 0);
  memset(&back, 0xee, sizeof(back));
  assert_int_equal(qpeer_ticket_decode_binary(&back, bin, (size_t)n), 0);
  assert_ticket_equal(t, &back);
  m = qpeer_ticket_format(t, text, sizeof(text));
  assert_int_equal(m, 4 + ((size_t)n * 8 + 4) / 5);
  assert_int_equal(strlen(text), (size_t)m);
  memset(&back, 0xee, sizeof(back));
  assert_int_equal(qpeer_ticket_parse(&back, text), 0);
  assert_ticket_equal(t, &back);
}

static void test_ticket_vector(void **state) {
  uint8_t want[512], bin[QPEER_TICKET_BIN_MAX];
  char text[QPEER_TICKET_STRLEN_MAX];
  qpeer_ticket_t t, back;
  size_t wantlen;
  (void)state;
  wantlen = hex_decode(want, sizeof(want), vector_hex);
  make_vector_ticket(&t);
  assert_int_equal(qpeer_ticket_encode_binary(&t, bin, sizeof(bin)),
                   (int)wantlen);
  assert_memory_equal(bin, want, wantlen);
  assert_int_equal(qpeer_ticket_format(&t, text, sizeof(text)),
                   (int)strlen(vector_text));
  assert_string_equal(text, vector_text);
  assert_int_equal(qpeer_ticket_parse(&back, vector_text), 0);
  assert_ticket_equal(&t, &back);
  assert_int_equal(qpeer_ticket_decode_binary(&back, want, wantlen), 0);
  assert_ticket_equal(&t, &back);
}

static void test_ticket_roundtrip_addrs(void **state) {
  static const char *ips[] = {"192.0.2.1",   "2001:db8::1", "198.51.100.7",
                              "2001:db8::2", "203.0.113.9", "::1",
                              "10.0.0.1",    "fe80::1"};
  qpeer_ticket_t t;
  size_t n, i;
  (void)state;
  for (n = 0; n <= QPEER_TICKET_MAX_ADDRS; n++) {
    qpeer_ticket_init(&t);
    memset(t.peer_id.key, (int)n, QPEER_PEER_ID_LEN);
    for (i = 0; i < n; i++)
      assert_int_equal(add(&t, ips[i], (uint16_t)(1000 + i),
                           (qpeer_ticket_addr_type)(i % 4)),
                       0);
    assert_int_equal(t.naddrs, n);
    roundtrip(&t);
    if (n % 2) {
      t.created = (uint64_t)1 << 40;
      t.flags = 1;
      roundtrip(&t);
    }
  }
}

static void test_ticket_roundtrip_relays(void **state) {
  qpeer_ticket_t t;
  qpeer_peer_id_t pin;
  uint8_t fp[QPEER_TICKET_CA_FP_LEN];
  char url[64];
  size_t n, i;
  (void)state;
  memset(pin.key, 0x42, sizeof(pin.key));
  memset(fp, 0x24, sizeof(fp));
  for (n = 0; n <= QPEER_TICKET_MAX_RELAYS; n++) {
    qpeer_ticket_init(&t);
    add(&t, "192.0.2.33", 9, QPEER_TICKET_ADDR_MAPPED);
    for (i = 0; i < n; i++) {
      snprintf(url, sizeof(url), "https://relay%zu.example:%zu/x?y", i,
               443 + i);
      if (i % 3 == 0)
        assert_int_equal(
            qpeer_ticket_add_relay(&t, url, QPEER_TICKET_AUTH_PIN, &pin), 0);
      else if (i % 3 == 1)
        assert_int_equal(
            qpeer_ticket_add_relay(&t, url, QPEER_TICKET_AUTH_WEBPKI, NULL), 0);
      else
        assert_int_equal(qpeer_ticket_add_relay_ca(&t, url, fp), 0);
    }
    assert_int_equal(t.nrelays, n);
    roundtrip(&t);
  }
}

/* make_max_ticket fills every slot with the largest entries. */
static void make_max_ticket(qpeer_ticket_t *t) {
  char url[QPEER_TICKET_URL_MAX], ip[64];
  qpeer_peer_id_t pin;
  size_t i;
  qpeer_ticket_init(t);
  memset(pin.key, 0x77, sizeof(pin.key));
  for (i = 0; i < QPEER_TICKET_MAX_ADDRS; i++) {
    snprintf(ip, sizeof(ip), "2001:db8::%zu", i + 1);
    assert_int_equal(add(t, ip, 65535, QPEER_TICKET_ADDR_HOST), 0);
  }
  for (i = 0; i < QPEER_TICKET_MAX_RELAYS; i++) {
    memset(url, 'a', sizeof(url));
    memcpy(url, "https://", 8);
    url[8] = (char)('0' + i);
    url[QPEER_TICKET_URL_MAX - 1] = '\0';
    assert_int_equal(
        qpeer_ticket_add_relay(t, url, QPEER_TICKET_AUTH_PIN, &pin), 0);
  }
  t->created = UINT64_MAX;
  t->flags = UINT32_MAX;
}

static void test_ticket_max_size(void **state) {
  uint8_t bin[QPEER_TICKET_BIN_MAX];
  char text[QPEER_TICKET_STRLEN_MAX];
  qpeer_ticket_t t;
  (void)state;
  make_max_ticket(&t);
  assert_int_equal(qpeer_ticket_encode_binary(&t, bin, sizeof(bin)),
                   QPEER_TICKET_BIN_MAX);
  assert_int_equal(qpeer_ticket_format(&t, text, sizeof(text)),
                   QPEER_TICKET_TEXT_MAX);
  roundtrip(&t);
}

static void test_ticket_small_buffers(void **state) {
  uint8_t bin[QPEER_TICKET_BIN_MAX];
  char text[QPEER_TICKET_STRLEN_MAX];
  qpeer_ticket_t t;
  int n, m;
  size_t i;
  (void)state;
  make_vector_ticket(&t);
  n = qpeer_ticket_encode_binary(&t, bin, sizeof(bin));
  m = qpeer_ticket_format(&t, text, sizeof(text));
  for (i = 0; i < (size_t)n; i++)
    assert_int_equal(qpeer_ticket_encode_binary(&t, bin, i), UV_ENOBUFS);
  assert_int_equal(qpeer_ticket_encode_binary(&t, bin, (size_t)n), n);
  for (i = 0; i <= (size_t)m; i++) {
    memset(text, 'x', sizeof(text));
    assert_int_equal(qpeer_ticket_format(&t, text, i), UV_ENOBUFS);
    if (i > 0)
      assert_int_equal(text[0], '\0');
  }
  assert_int_equal(qpeer_ticket_format(&t, text, (size_t)m + 1), m);
  assert_string_equal(text, vector_text);
}

static void test_ticket_truncation(void **state) {
  uint8_t bin[QPEER_TICKET_BIN_MAX];
  char text[QPEER_TICKET_STRLEN_MAX];
  qpeer_ticket_t t, out;
  int n, m;
  size_t i;
  (void)state;
  make_max_ticket(&t);
  n = qpeer_ticket_encode_binary(&t, bin, sizeof(bin));
  for (i = 0; i < (size_t)n; i++)
    assert_int_equal(qpeer_ticket_decode_binary(&out, bin, i), QPEER_ETICKET);
  make_vector_ticket(&t);
  m = qpeer_ticket_format(&t, text, sizeof(text));
  for (i = (size_t)m; i-- > 0;) {
    text[i] = '\0';
    assert_int_equal(qpeer_ticket_parse(&out, text), QPEER_ETICKET);
  }
}

static void test_ticket_corruption(void **state) {
  uint8_t bin[QPEER_TICKET_BIN_MAX];
  qpeer_ticket_t t, out;
  int n;
  size_t i;
  unsigned x;
  (void)state;
  make_vector_ticket(&t);
  n = qpeer_ticket_encode_binary(&t, bin, sizeof(bin));
  /* CRC-32C detects every burst of up to 32 bits, so every single-byte
   * change anywhere (version, records or checksum) is rejected. */
  for (i = 0; i < (size_t)n; i++) {
    for (x = 1; x < 256; x++) {
      bin[i] ^= (uint8_t)x;
      assert_int_equal(qpeer_ticket_decode_binary(&out, bin, (size_t)n),
                       QPEER_ETICKET);
      bin[i] ^= (uint8_t)x;
    }
  }
  assert_int_equal(qpeer_ticket_decode_binary(&out, bin, (size_t)n), 0);
}

static void test_ticket_text_corruption(void **state) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  char text[QPEER_TICKET_STRLEN_MAX];
  qpeer_ticket_t t, out;
  size_t i, j, len;
  (void)state;
  make_vector_ticket(&t);
  len = (size_t)qpeer_ticket_format(&t, text, sizeof(text));
  /* A base32 character carries 5 bits within 2 bytes: every substitution
   * is caught by the checksum, the padding rule or the prefix check. */
  for (i = 0; i < len; i++) {
    char orig = text[i];
    for (j = 0; j < 32; j++) {
      if (alphabet[j] == orig)
        continue;
      text[i] = alphabet[j];
      assert_int_equal(qpeer_ticket_parse(&out, text), QPEER_ETICKET);
    }
    text[i] = orig;
  }
  /* Two adjacent characters swapped. */
  for (i = 0; i + 1 < len; i++) {
    char a = text[i], b = text[i + 1];
    if (a == b)
      continue;
    text[i] = b;
    text[i + 1] = a;
    assert_int_equal(qpeer_ticket_parse(&out, text), QPEER_ETICKET);
    text[i] = a;
    text[i + 1] = b;
  }
  assert_int_equal(qpeer_ticket_parse(&out, text), 0);
}

static void test_ticket_version(void **state) {
  char text[QPEER_TICKET_STRLEN_MAX];
  uint8_t bin[QPEER_TICKET_BIN_MAX];
  qpeer_ticket_t t, out;
  raw_t r;
  int n;
  (void)state;
  raw_start(&r, 2, 1);
  assert_int_equal(decode_raw(&r, &out), QPEER_EUNSUPPORTED);
  raw_text(&r, text);
  assert_int_equal(qpeer_ticket_parse(&out, text), QPEER_EUNSUPPORTED);
  raw_start(&r, 0, 1);
  assert_int_equal(decode_raw(&r, &out), QPEER_EUNSUPPORTED);
  raw_start(&r, 0xff, 0);
  assert_int_equal(decode_raw(&r, &out), QPEER_EUNSUPPORTED);
  raw_start(&r, 1, 1);
  assert_int_equal(decode_raw(&r, &out), 0);
  raw_text(&r, text);
  assert_int_equal(qpeer_ticket_parse(&out, text), 0);

  /* A version byte changed without fixing the checksum is corruption. */
  make_vector_ticket(&t);
  n = qpeer_ticket_encode_binary(&t, bin, sizeof(bin));
  bin[0] = 2;
  assert_int_equal(qpeer_ticket_decode_binary(&out, bin, (size_t)n),
                   QPEER_ETICKET);
}

static void test_ticket_unknown_records(void **state) {
  static const uint8_t junk[5] = {9, 8, 7, 6, 5};
  uint8_t key[QPEER_PEER_ID_LEN];
  qpeer_ticket_t out;
  raw_t r;
  (void)state;
  memset(key, 0x11, sizeof(key));
  /* Odd (ignorable) types are skipped wherever they are, any size. */
  raw_start(&r, 1, 0);
  raw_record(&r, 0x0b, junk, sizeof(junk));
  raw_record(&r, 0x3fff, junk, 3);
  raw_record(&r, 0x12345, NULL, 0);
  raw_record(&r, 0x02, key, sizeof(key));
  raw_addr4(&r, 1, "192.0.2.1", 1);
  raw_record(&r, 0x07, junk, sizeof(junk));
  assert_int_equal(decode_raw(&r, &out), 0);
  assert_int_equal(out.naddrs, 1);
  assert_int_equal(out.peer_id.key[0], 0x11);

  /* Even (critical) unknown types make the ticket unreadable. */
  raw_start(&r, 1, 1);
  raw_record(&r, 0x0a, junk, sizeof(junk));
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_record(&r, 0x00, junk, 0);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_record(&r, 0x1000, junk, 1);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
}

static void test_ticket_record_rules(void **state) {
  uint8_t key[QPEER_PEER_ID_LEN], v[16];
  qpeer_ticket_t out;
  raw_t r;
  (void)state;
  memset(key, 0x11, sizeof(key));
  memset(v, 0, sizeof(v));

  /* Peer ID: required, exactly once, exactly 32 bytes. */
  raw_start(&r, 1, 0);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 0);
  raw_addr4(&r, 0, "192.0.2.1", 1);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_record(&r, 0x02, key, sizeof(key));
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 0);
  raw_record(&r, 0x02, key, 31);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 0);
  raw_record(&r, 0x02, v, 0);
  raw_bytes(&r, key, 32); /* the length says 0: the key is a bad record */
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);

  /* Flags and creation time: at most once, fixed sizes. */
  raw_start(&r, 1, 1);
  raw_record(&r, 0x08, v, 4);
  raw_record(&r, 0x08, v, 4);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_record(&r, 0x08, v, 3);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_record(&r, 0x01, v, 8);
  raw_record(&r, 0x01, v, 8);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_record(&r, 0x01, v, 9);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_record(&r, 0x08, "\x00\x00\x00\x05", 4);
  raw_record(&r, 0x01, "\x00\x00\x00\x00\x00\x00\x01\x00", 8);
  assert_int_equal(decode_raw(&r, &out), 0);
  assert_int_equal(out.flags, 5);
  assert_true(out.created == 256);

  /* Record headers: shortest varints only; length within the ticket. */
  raw_start(&r, 1, 0);
  raw_varint_len(&r, 0x02, 2);
  raw_varint(&r, 32);
  raw_bytes(&r, key, 32);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 0);
  raw_varint(&r, 0x02);
  raw_varint_len(&r, 32, 2);
  raw_bytes(&r, key, 32);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_varint(&r, 0x07);
  raw_varint(&r, 5);
  raw_bytes(&r, key, 4);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_varint(&r, 0x07);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_bytes(&r, "\x40", 1); /* a 2-byte varint cut short */
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);

  /* Whole-ticket size limits. */
  assert_int_equal(qpeer_ticket_decode_binary(&out, r.b, 4), QPEER_ETICKET);
  assert_int_equal(qpeer_ticket_decode_binary(&out, NULL, 0), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  {
    uint8_t pad[QPEER_TICKET_DECODE_MAX];
    memset(pad, 0, sizeof(pad));
    raw_record(&r, 0x03, pad, QPEER_TICKET_DECODE_MAX - 4 - r.n - 3);
    assert_int_equal(r.n, QPEER_TICKET_DECODE_MAX - 4);
    assert_int_equal(decode_raw(&r, &out), 0);
    raw_start(&r, 1, 1);
    raw_record(&r, 0x03, pad, QPEER_TICKET_DECODE_MAX - 4 - r.n - 2);
    assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  }
}

static void test_ticket_addr_rules(void **state) {
  uint8_t v[20];
  qpeer_ticket_t out;
  raw_t r;
  size_t i;
  (void)state;
  memset(v, 0, sizeof(v));

  /* Up to 8 addresses; the 9th is rejected. */
  raw_start(&r, 1, 1);
  for (i = 0; i < QPEER_TICKET_MAX_ADDRS; i++)
    raw_addr4(&r, 0, "192.0.2.1", (uint16_t)(i + 1));
  assert_int_equal(decode_raw(&r, &out), 0);
  assert_int_equal(out.naddrs, QPEER_TICKET_MAX_ADDRS);
  r.n -= 4;
  raw_addr6(&r, 0, "2001:db8::9", 9);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);

  raw_start(&r, 1, 1);
  raw_addr4(&r, 0, "192.0.2.1", 0);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_addr6(&r, 0, "2001:db8::1", 0);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_addr4(&r, 0, "0.0.0.0", 1);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_addr6(&r, 0, "::", 1);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_addr6(&r, 0, "::ffff:192.0.2.1", 1);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_addr4(&r, 5, "192.0.2.1", 1);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_addr4(&r, 4, "192.0.2.1", 1); /* relay */
  assert_int_equal(decode_raw(&r, &out), 0);
  raw_start(&r, 1, 1);
  raw_addr4(&r, 3, "192.0.2.1", 1);
  assert_int_equal(decode_raw(&r, &out), 0);
  assert_int_equal(out.addrs[0].type, QPEER_TICKET_ADDR_MAPPED);

  /* Duplicates (same address and port, whatever the type). */
  raw_start(&r, 1, 1);
  raw_addr4(&r, 0, "192.0.2.1", 7);
  raw_addr4(&r, 1, "192.0.2.1", 7);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_addr4(&r, 0, "192.0.2.1", 7);
  raw_addr4(&r, 1, "192.0.2.1", 8);
  raw_addr6(&r, 1, "2001:db8::1", 7);
  assert_int_equal(decode_raw(&r, &out), 0);
  assert_int_equal(out.naddrs, 3);

  /* Only the IPv4 and IPv6 value lengths exist. */
  for (i = 0; i <= sizeof(v); i++) {
    if (i == 7 || i == 19)
      continue;
    raw_start(&r, 1, 1);
    memset(v, 1, sizeof(v));
    v[0] = 0;
    raw_record(&r, 0x04, v, i);
    assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  }
}

static void test_ticket_relay_rules(void **state) {
  static const char *bad[] = {
      "http://relay.example",
      "https://",
      "https:///path",
      "https://:443",
      "https://user@host",
      "https://host:0",
      "https://host:65536",
      "https://host:",
      "https://host:44a",
      "https://host:123456",
      "https://[]/",
      "https://[2001:db8::1",
      "https://[2001:db8::1]x",
      "https://[g::1]",
      "https://ho st",
      "https://host/\x7f",
      "https://host/\xc3\xa9",
      "masque://relay.example",
      "https//relay.example",
      "https://ho]st",
  };
  static const char *good[] = {
      "https://relay.example",
      "HTTPS://Relay.Example:443",
      "https://[2001:db8::1]:4433/",
      "https://192.0.2.1/.well-known/masque/udp/{target_host}/{target_port}/",
      "https://h?x",
      "https://h#f",
  };
  char url[QPEER_TICKET_URL_MAX + 1];
  qpeer_ticket_t out;
  raw_t r;
  size_t i;
  (void)state;

  for (i = 0; i < QPEER__ARRAY_SIZE(good); i++) {
    raw_start(&r, 1, 1);
    raw_relay(&r, 2, 0, good[i]);
    assert_int_equal(decode_raw(&r, &out), 0);
    assert_string_equal(out.relays[0].url, good[i]);
  }
  for (i = 0; i < QPEER__ARRAY_SIZE(bad); i++) {
    raw_start(&r, 1, 1);
    raw_relay(&r, 2, 0, bad[i]);
    assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  }

  /* URL length: 255 bytes fit, 256 do not. */
  memset(url, 'a', sizeof(url));
  memcpy(url, "https://", 8);
  url[QPEER_TICKET_URL_MAX - 1] = '\0';
  raw_start(&r, 1, 1);
  raw_relay(&r, 1, 32, url);
  assert_int_equal(decode_raw(&r, &out), 0);
  assert_int_equal(strlen(out.relays[0].url), QPEER_TICKET_URL_MAX - 1);
  assert_int_equal(out.relays[0].pin.key[0], 0x22);
  url[QPEER_TICKET_URL_MAX - 1] = 'a';
  url[QPEER_TICKET_URL_MAX] = '\0';
  raw_start(&r, 1, 1);
  raw_relay(&r, 1, 32, url);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);

  /* Modes: unknown values, short keys, empty record. */
  raw_start(&r, 1, 1);
  raw_relay(&r, 0, 0, "https://h");
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_relay(&r, 4, 0, "https://h");
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_relay(&r, 1, 31, "");
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_relay(&r, 3, 32, "");
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_record(&r, 0x06, "", 0);
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_relay(&r, 3, 32, "https://ca.example");
  assert_int_equal(decode_raw(&r, &out), 0);
  assert_int_equal(out.relays[0].auth, QPEER_TICKET_AUTH_CA);
  assert_int_equal(out.relays[0].ca_sha256[31], 0x22);
  assert_int_equal(out.relays[0].pin.key[0], 0);

  /* Count limit and duplicates. */
  raw_start(&r, 1, 1);
  for (i = 0; i < QPEER_TICKET_MAX_RELAYS; i++) {
    snprintf(url, sizeof(url), "https://r%zu", i);
    raw_relay(&r, 2, 0, url);
  }
  assert_int_equal(decode_raw(&r, &out), 0);
  assert_int_equal(out.nrelays, QPEER_TICKET_MAX_RELAYS);
  r.n -= 4;
  raw_relay(&r, 2, 0, "https://r9");
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_relay(&r, 2, 0, "https://r");
  raw_relay(&r, 2, 0, "https://r");
  assert_int_equal(decode_raw(&r, &out), QPEER_ETICKET);
  raw_start(&r, 1, 1);
  raw_relay(&r, 2, 0, "https://r");
  raw_relay(&r, 1, 32, "https://r");
  assert_int_equal(decode_raw(&r, &out), 0);
}

static void test_ticket_text_rules(void **state) {
  char text[QPEER_TICKET_STRLEN_MAX + 16], upper[QPEER_TICKET_STRLEN_MAX];
  qpeer_ticket_t t, out;
  size_t i, len;
  (void)state;
  make_vector_ticket(&t);
  len = (size_t)qpeer_ticket_format(&t, upper, sizeof(upper));

  /* Upper and mixed case. */
  for (i = 0; i < len; i++)
    if (upper[i] >= 'a' && upper[i] <= 'z')
      upper[i] = (char)(upper[i] - 'a' + 'A');
  assert_int_equal(qpeer_ticket_parse(&out, upper), 0);
  assert_ticket_equal(&t, &out);
  for (i = 0; i < len; i += 2)
    upper[i] = vector_text[i];
  assert_int_equal(qpeer_ticket_parse(&out, upper), 0);
  assert_ticket_equal(&t, &out);

  /* Leading and trailing white space is trimmed. */
  snprintf(text, sizeof(text), " \t\r\n%s\r\n \f\v", vector_text);
  assert_int_equal(qpeer_ticket_parse(&out, text), 0);
  assert_ticket_equal(&t, &out);
  snprintf(text, sizeof(text), "%s\n", vector_text);
  assert_int_equal(qpeer_ticket_parse(&out, text), 0);

  /* Nothing else: white space or other characters inside. */
  {
    static const char inserts[] = " \n-=01890_.:/+\x80\xff";
    for (i = 0; i < sizeof(inserts) - 1; i++) {
      snprintf(text, sizeof(text), "%.20s%c%s", vector_text, inserts[i],
               vector_text + 20);
      assert_int_equal(qpeer_ticket_parse(&out, text), QPEER_ETICKET);
      snprintf(text, sizeof(text), "%.4s%c%s", vector_text, inserts[i],
               vector_text + 4);
      assert_int_equal(qpeer_ticket_parse(&out, text), QPEER_ETICKET);
    }
  }
  snprintf(text, sizeof(text), "%s=", vector_text);
  assert_int_equal(qpeer_ticket_parse(&out, text), QPEER_ETICKET);
  snprintf(text, sizeof(text), "%sa", vector_text);
  assert_int_equal(qpeer_ticket_parse(&out, text), QPEER_ETICKET);
  snprintf(text, sizeof(text), "%saa", vector_text);
  assert_int_equal(qpeer_ticket_parse(&out, text), QPEER_ETICKET);

  /* The prefix. */
  assert_int_equal(qpeer_ticket_parse(&out, vector_text + 4), QPEER_ETICKET);
  snprintf(text, sizeof(text), "qpx1%s", vector_text + 4);
  assert_int_equal(qpeer_ticket_parse(&out, text), QPEER_ETICKET);
  snprintf(text, sizeof(text), "qpt2%s", vector_text + 4);
  assert_int_equal(qpeer_ticket_parse(&out, text), QPEER_ETICKET);
  snprintf(text, sizeof(text), "QpT1%s", vector_text + 4);
  assert_int_equal(qpeer_ticket_parse(&out, text), 0);
  assert_int_equal(qpeer_ticket_parse(&out, ""), QPEER_ETICKET);
  assert_int_equal(qpeer_ticket_parse(&out, "  \n"), QPEER_ETICKET);
  assert_int_equal(qpeer_ticket_parse(&out, "qpt1"), QPEER_ETICKET);
  assert_int_equal(qpeer_ticket_parse(&out, "qpt"), QPEER_ETICKET);

  /* Nonzero padding bits in the last character. The vector has 229 bytes:
   * 367 characters carry 1835 bits, the last 3 of them padding. */
  assert_int_equal((229 * 8) % 5, 2);
  snprintf(text, sizeof(text), "%s", vector_text);
  len = strlen(text);
  assert_int_equal(text[len - 1], 'y'); /* 24 = 11000: padding 000 */
  text[len - 1] = 'z';                  /* 25 = 11001 */
  assert_int_equal(qpeer_ticket_parse(&out, text), QPEER_ETICKET);
}

static void test_ticket_builders(void **state) {
  struct sockaddr_storage ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  qpeer_ticket_t t;
  qpeer_peer_id_t pin;
  uint8_t fp[QPEER_TICKET_CA_FP_LEN];
  char url[QPEER_TICKET_URL_MAX + 1];
  size_t i;
  (void)state;
  memset(pin.key, 1, sizeof(pin.key));
  memset(fp, 2, sizeof(fp));
  assert_int_equal(qpeer_ticket_init(NULL), UV_EINVAL);
  memset(&t, 0xcc, sizeof(t));
  assert_int_equal(qpeer_ticket_init(&t), 0);
  assert_int_equal(t.naddrs, 0);
  assert_int_equal(t.nrelays, 0);

  /* Addresses: validation, normalisation, dedupe, capacity. */
  set_addr(&ss, "192.0.2.1", 0);
  assert_int_equal(qpeer_ticket_add_addr(&t, (struct sockaddr *)&ss),
                   UV_EINVAL);
  set_addr(&ss, "0.0.0.0", 1);
  assert_int_equal(qpeer_ticket_add_addr(&t, (struct sockaddr *)&ss),
                   UV_EINVAL);
  set_addr(&ss, "::", 1);
  assert_int_equal(qpeer_ticket_add_addr(&t, (struct sockaddr *)&ss),
                   UV_EINVAL);
  set_addr(&ss, "::1", 1);
  ss.ss_family = AF_UNIX;
  assert_int_equal(qpeer_ticket_add_addr(&t, (struct sockaddr *)&ss),
                   UV_EINVAL);
  assert_int_equal(qpeer_ticket_add_addr(&t, NULL), UV_EINVAL);
  assert_int_equal(qpeer_ticket_add_addr(NULL, (struct sockaddr *)&ss),
                   UV_EINVAL);
  assert_int_equal(add(&t, "192.0.2.1", 1, (qpeer_ticket_addr_type)5),
                   UV_EINVAL);
  assert_int_equal(t.naddrs, 0);

  set_addr(&ss, "::ffff:192.0.2.1", 5);
  assert_int_equal(qpeer_ticket_add_typed_addr(&t, (struct sockaddr *)&ss,
                                               QPEER_TICKET_ADDR_SRFLX),
                   0);
  assert_int_equal(t.addrs[0].addr.ss_family, AF_INET);
  assert_int_equal(add(&t, "192.0.2.1", 5, QPEER_TICKET_ADDR_HOST), 0);
  assert_int_equal(t.naddrs, 1);
  assert_int_equal(t.addrs[0].type, QPEER_TICKET_ADDR_SRFLX);
  set_addr(&ss, "fe80::1", 5);
  s6->sin6_scope_id = 3;
  s6->sin6_flowinfo = 7;
  assert_int_equal(qpeer_ticket_add_addr(&t, (struct sockaddr *)&ss), 0);
  assert_int_equal(((struct sockaddr_in6 *)&t.addrs[1].addr)->sin6_scope_id, 0);
  assert_int_equal(((struct sockaddr_in6 *)&t.addrs[1].addr)->sin6_flowinfo, 0);
  s6->sin6_scope_id = 4;
  assert_int_equal(qpeer_ticket_add_addr(&t, (struct sockaddr *)&ss), 0);
  assert_int_equal(t.naddrs, 2);
  for (i = 2; i < QPEER_TICKET_MAX_ADDRS; i++)
    assert_int_equal(add(&t, "198.51.100.1", (uint16_t)i, 0), 0);
  assert_int_equal(add(&t, "198.51.100.1", 99, 0), UV_ENOSPC);
  assert_int_equal(add(&t, "198.51.100.1", 2, 0), 0);
  assert_int_equal(add(&t, "198.51.100.1", 0, 0), UV_EINVAL);
  assert_int_equal(t.naddrs, QPEER_TICKET_MAX_ADDRS);

  /* Relays: argument rules, URL rules, dedupe, capacity. */
  assert_int_equal(
      qpeer_ticket_add_relay(&t, "https://a", QPEER_TICKET_AUTH_PIN, NULL),
      UV_EINVAL);
  assert_int_equal(
      qpeer_ticket_add_relay(&t, "https://a", QPEER_TICKET_AUTH_WEBPKI, &pin),
      UV_EINVAL);
  assert_int_equal(
      qpeer_ticket_add_relay(&t, "https://a", QPEER_TICKET_AUTH_CA, &pin),
      UV_EINVAL);
  assert_int_equal(
      qpeer_ticket_add_relay(&t, "https://a", (qpeer_ticket_auth)0, NULL),
      UV_EINVAL);
  assert_int_equal(
      qpeer_ticket_add_relay(&t, NULL, QPEER_TICKET_AUTH_WEBPKI, NULL),
      UV_EINVAL);
  assert_int_equal(
      qpeer_ticket_add_relay(NULL, "https://a", QPEER_TICKET_AUTH_WEBPKI, NULL),
      UV_EINVAL);
  assert_int_equal(qpeer_ticket_add_relay_ca(&t, "https://a", NULL), UV_EINVAL);
  assert_int_equal(
      qpeer_ticket_add_relay(&t, "http://a", QPEER_TICKET_AUTH_WEBPKI, NULL),
      UV_EINVAL);
  assert_int_equal(
      qpeer_ticket_add_relay(&t, "https://a b", QPEER_TICKET_AUTH_WEBPKI, NULL),
      UV_EINVAL);
  memset(url, 'a', sizeof(url));
  memcpy(url, "https://", 8);
  url[QPEER_TICKET_URL_MAX] = '\0';
  assert_int_equal(
      qpeer_ticket_add_relay(&t, url, QPEER_TICKET_AUTH_WEBPKI, NULL),
      UV_EINVAL);
  url[QPEER_TICKET_URL_MAX - 1] = '\0';
  assert_int_equal(
      qpeer_ticket_add_relay(&t, url, QPEER_TICKET_AUTH_WEBPKI, NULL), 0);
  assert_int_equal(t.nrelays, 1);
  assert_int_equal(
      qpeer_ticket_add_relay(&t, url, QPEER_TICKET_AUTH_WEBPKI, NULL), 0);
  assert_int_equal(t.nrelays, 1);
  assert_int_equal(
      qpeer_ticket_add_relay(&t, "https://a", QPEER_TICKET_AUTH_PIN, &pin), 0);
  pin.key[0] = 9;
  assert_int_equal(
      qpeer_ticket_add_relay(&t, "https://a", QPEER_TICKET_AUTH_PIN, &pin), 0);
  assert_int_equal(qpeer_ticket_add_relay_ca(&t, "https://a", fp), 0);
  assert_int_equal(qpeer_ticket_add_relay_ca(&t, "https://a", fp), 0);
  assert_int_equal(t.nrelays, QPEER_TICKET_MAX_RELAYS);
  assert_int_equal(
      qpeer_ticket_add_relay(&t, "https://b", QPEER_TICKET_AUTH_WEBPKI, NULL),
      UV_ENOSPC);
  assert_int_equal(t.relays[2].pin.key[0], 9);
  assert_int_equal(t.relays[3].ca_sha256[0], 2);
  roundtrip(&t);
}

static void test_ticket_encoder_checks(void **state) {
  uint8_t bin[QPEER_TICKET_BIN_MAX];
  char text[QPEER_TICKET_STRLEN_MAX];
  qpeer_ticket_t t, bad;
  (void)state;
  make_vector_ticket(&t);
  assert_int_equal(qpeer_ticket_encode_binary(NULL, bin, sizeof(bin)),
                   UV_EINVAL);
  assert_int_equal(qpeer_ticket_encode_binary(&t, NULL, sizeof(bin)),
                   UV_EINVAL);
  assert_int_equal(qpeer_ticket_format(NULL, text, sizeof(text)), UV_EINVAL);
  assert_int_equal(qpeer_ticket_format(&t, NULL, sizeof(text)), UV_EINVAL);

  bad = t;
  bad.naddrs = QPEER_TICKET_MAX_ADDRS + 1;
  assert_int_equal(qpeer_ticket_encode_binary(&bad, bin, sizeof(bin)),
                   UV_EINVAL);
  bad = t;
  bad.nrelays = QPEER_TICKET_MAX_RELAYS + 1;
  assert_int_equal(qpeer_ticket_format(&bad, text, sizeof(text)), UV_EINVAL);
  bad = t;
  bad.addrs[1] = bad.addrs[0];
  assert_int_equal(qpeer_ticket_encode_binary(&bad, bin, sizeof(bin)),
                   UV_EINVAL);
  bad = t;
  bad.addrs[0].type = (qpeer_ticket_addr_type)9;
  assert_int_equal(qpeer_ticket_encode_binary(&bad, bin, sizeof(bin)),
                   UV_EINVAL);
  bad = t;
  ((struct sockaddr_in *)&bad.addrs[0].addr)->sin_port = 0;
  assert_int_equal(qpeer_ticket_encode_binary(&bad, bin, sizeof(bin)),
                   UV_EINVAL);
  bad = t;
  bad.addrs[0].addr.ss_family = AF_UNIX;
  assert_int_equal(qpeer_ticket_encode_binary(&bad, bin, sizeof(bin)),
                   UV_EINVAL);
  bad = t;
  bad.relays[1] = bad.relays[0];
  assert_int_equal(qpeer_ticket_encode_binary(&bad, bin, sizeof(bin)),
                   UV_EINVAL);
  bad = t;
  bad.relays[0].auth = (qpeer_ticket_auth)7;
  assert_int_equal(qpeer_ticket_encode_binary(&bad, bin, sizeof(bin)),
                   UV_EINVAL);
  bad = t;
  memset(bad.relays[0].url, 'a', QPEER_TICKET_URL_MAX);
  assert_int_equal(qpeer_ticket_encode_binary(&bad, bin, sizeof(bin)),
                   UV_EINVAL);
  bad = t;
  memcpy(bad.relays[0].url, "ftp://x", 8);
  assert_int_equal(qpeer_ticket_encode_binary(&bad, bin, sizeof(bin)),
                   UV_EINVAL);

  /* Unused key fields are ignored by the encoder and zero after decode. */
  bad = t;
  memset(bad.relays[1].pin.key, 0x99, QPEER_PEER_ID_LEN);
  assert_int_equal(qpeer_ticket_encode_binary(&bad, bin, sizeof(bin)),
                   qpeer_ticket_encode_binary(&t, bin, sizeof(bin)));
}

static void test_ticket_decode_args(void **state) {
  uint8_t bin[QPEER_TICKET_BIN_MAX], zero[sizeof(qpeer_ticket_t)];
  qpeer_ticket_t t, out;
  int n;
  (void)state;
  make_vector_ticket(&t);
  n = qpeer_ticket_encode_binary(&t, bin, sizeof(bin));
  assert_int_equal(qpeer_ticket_decode_binary(NULL, bin, (size_t)n), UV_EINVAL);
  assert_int_equal(qpeer_ticket_decode_binary(&out, NULL, 5), UV_EINVAL);
  assert_int_equal(qpeer_ticket_parse(NULL, vector_text), UV_EINVAL);
  assert_int_equal(qpeer_ticket_parse(&out, NULL), UV_EINVAL);

  /* The output is written only on success. */
  memset(&out, 0x5a, sizeof(out));
  memset(zero, 0x5a, sizeof(zero));
  bin[n - 1] ^= 1;
  assert_int_equal(qpeer_ticket_decode_binary(&out, bin, (size_t)n),
                   QPEER_ETICKET);
  assert_memory_equal(&out, zero, sizeof(out));
  assert_int_equal(qpeer_ticket_parse(&out, "qpt1zz"), QPEER_ETICKET);
  assert_memory_equal(&out, zero, sizeof(out));
}

static void test_ticket_random_roundtrip(void **state) {
  qpeer_ticket_t t;
  char ip[64], url[QPEER_TICKET_URL_MAX];
  qpeer_peer_id_t pin;
  size_t iter, i, n;
  (void)state;
  for (iter = 0; iter < 300; iter++) {
    qpeer_ticket_init(&t);
    for (i = 0; i < QPEER_PEER_ID_LEN; i++)
      t.peer_id.key[i] = (uint8_t)rng_next();
    n = rng_next() % (QPEER_TICKET_MAX_ADDRS + 1);
    for (i = 0; i < n; i++) {
      uint64_t x = rng_next();
      if (x & 1)
        snprintf(ip, sizeof(ip), "%u.%u.%u.%u", (unsigned)(1 + (x >> 8) % 223),
                 (unsigned)((x >> 16) & 255), (unsigned)((x >> 24) & 255),
                 (unsigned)((x >> 32) & 255));
      else
        snprintf(ip, sizeof(ip), "2001:db8:%x::%x", (unsigned)(x >> 8) & 0xffff,
                 (unsigned)(x >> 24) & 0xffff);
      add(&t, ip, (uint16_t)(1 + (x >> 40) % 65535),
          (qpeer_ticket_addr_type)((x >> 60) & 3));
    }
    n = rng_next() % (QPEER_TICKET_MAX_RELAYS + 1);
    for (i = 0; i < n; i++) {
      size_t pathlen = rng_next() % 200;
      memset(pin.key, (int)i, sizeof(pin.key));
      snprintf(url, sizeof(url), "https://r%zu.example/", i);
      memset(url + strlen(url), 'p', pathlen);
      url[21 + pathlen] = '\0';
      assert_int_equal(
          qpeer_ticket_add_relay(&t, url, QPEER_TICKET_AUTH_PIN, &pin), 0);
    }
    t.created = rng_next() % 2 ? rng_next() : 0;
    t.flags = rng_next() % 2 ? (uint32_t)rng_next() : 0;
    roundtrip(&t);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ticket_vector),
      cmocka_unit_test(test_ticket_roundtrip_addrs),
      cmocka_unit_test(test_ticket_roundtrip_relays),
      cmocka_unit_test(test_ticket_max_size),
      cmocka_unit_test(test_ticket_small_buffers),
      cmocka_unit_test(test_ticket_truncation),
      cmocka_unit_test(test_ticket_corruption),
      cmocka_unit_test(test_ticket_text_corruption),
      cmocka_unit_test(test_ticket_version),
      cmocka_unit_test(test_ticket_unknown_records),
      cmocka_unit_test(test_ticket_record_rules),
      cmocka_unit_test(test_ticket_addr_rules),
      cmocka_unit_test(test_ticket_relay_rules),
      cmocka_unit_test(test_ticket_text_rules),
      cmocka_unit_test(test_ticket_builders),
      cmocka_unit_test(test_ticket_encoder_checks),
      cmocka_unit_test(test_ticket_decode_args),
      cmocka_unit_test(test_ticket_random_roundtrip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
