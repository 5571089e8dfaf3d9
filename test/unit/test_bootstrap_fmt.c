/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/peer/bootstrap_fmt.c: the bootstrap cache file codec.
 * A fixed vector was computed independently (Python: struct, ipaddress and
 * a bitwise CRC-32C) from the layout in doc/bootstrap.md. Raw files are
 * patched here and re-sealed with this file's own CRC-32C, so that each
 * structural rule is reached behind the checksum. The rest checks round
 * trips, every truncation, every single-byte corruption, the limits, the
 * version check and the encoder's own checks.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "peer/bootstrap_fmt.h"

/* The fixed vector: make_vector_entries gives its two entries. */
static const char vector_hex[] =
    "515042430001000200d8000102030405060708090a0b0c0d0e0f101112131415161718"
    "191a1b1c1d1e1f000000006553f1000100000003020204c00002011151010620010db8"
    "00000000000000000000000101bb03011968747470733a2f2f72656c61792e6578616d"
    "706c652e6e6574aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaa021868747470733a2f2f72322e6578616d706c653a383434332f0316687474"
    "70733a2f2f5b323030313a6462383a3a325d2f55555555555555555555555555555555"
    "55555555555555555555555555555555002fffffffffffffffffffffffffffffffffff"
    "ffffffffffffffffffffffffffffff00000000000000000000000000000096b86f98";

/* Offsets into a file (see doc/bootstrap.md). */
#define OFF_VERSION 4
#define OFF_COUNT 6
#define OFF_REC0 8

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

/* reseal rewrites the trailer of the |len|-byte file at |b|. */
static void reseal(uint8_t *b, size_t len) {
  uint32_t c = crc32c(b, len - 4);
  b[len - 4] = (uint8_t)(c >> 24);
  b[len - 3] = (uint8_t)(c >> 16);
  b[len - 2] = (uint8_t)(c >> 8);
  b[len - 1] = (uint8_t)c;
}

static size_t unhex(uint8_t *out, size_t outlen, const char *hex) {
  size_t n = strlen(hex) / 2, i;
  assert_true(n <= outlen);
  for (i = 0; i < n; i++) {
    unsigned int v;
    assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
    out[i] = (uint8_t)v;
  }
  return n;
}

static void add_addr(qpeer_ticket_t *t, const char *text,
                     qpeer_ticket_addr_type type) {
  struct sockaddr_storage ss;
  assert_int_equal(qpeer_addr_parse(&ss, text), 0);
  assert_int_equal(
      qpeer_ticket_add_typed_addr(t, (const struct sockaddr *)&ss, type), 0);
}

/* entry_from_ticket copies the peer, addresses and relays of |t|. */
static void entry_from_ticket(qpeer_bootstrap_entry_t *e,
                              const qpeer_ticket_t *t) {
  memset(e, 0, sizeof(*e));
  e->peer_id = t->peer_id;
  e->naddrs = t->naddrs;
  memcpy(e->addrs, t->addrs, sizeof(e->addrs));
  e->nrelays = t->nrelays;
  memcpy(e->relays, t->relays, sizeof(e->relays));
}

static void make_vector_entries(qpeer_bootstrap_entry_t e[2]) {
  qpeer_ticket_t t;
  qpeer_peer_id_t pin;
  uint8_t ca[32];
  int i;

  qpeer_ticket_init(&t);
  for (i = 0; i < 32; i++)
    t.peer_id.key[i] = (uint8_t)i;
  add_addr(&t, "192.0.2.1:4433", QPEER_TICKET_ADDR_SRFLX);
  add_addr(&t, "[2001:db8::1]:443", QPEER_TICKET_ADDR_HOST);
  memset(pin.key, 0xaa, sizeof(pin.key));
  memset(ca, 0x55, sizeof(ca));
  assert_int_equal(qpeer_ticket_add_relay(&t, "https://relay.example.net",
                                          QPEER_TICKET_AUTH_PIN, &pin),
                   0);
  assert_int_equal(qpeer_ticket_add_relay(&t, "https://r2.example:8443/",
                                          QPEER_TICKET_AUTH_WEBPKI, NULL),
                   0);
  assert_int_equal(qpeer_ticket_add_relay_ca(&t, "https://[2001:db8::2]/", ca),
                   0);
  entry_from_ticket(&e[0], &t);
  e[0].last_seen = 1700000000;
  e[0].last_path = QPEER_BOOTSTRAP_PATH_DIRECT;
  e[0].successes = 3;
  memset(&e[1], 0, sizeof(e[1]));
  memset(e[1].peer_id.key, 0xff, sizeof(e[1].peer_id.key));
}

/* make_max_entry fills the largest record: 8 IPv6 addresses and 4 relays
 * with 255-byte URLs and keys; |seed| makes the peer ID and URLs unique. */
static void make_max_entry(qpeer_bootstrap_entry_t *e, unsigned seed) {
  qpeer_ticket_t t;
  char url[QPEER_TICKET_URL_MAX], text[64];
  uint8_t key[32];
  int i;

  qpeer_ticket_init(&t);
  memset(t.peer_id.key, 0x11, sizeof(t.peer_id.key));
  t.peer_id.key[0] = (uint8_t)seed;
  t.peer_id.key[1] = (uint8_t)(seed >> 8);
  for (i = 0; i < QPEER_BOOTSTRAP_MAX_ADDRS; i++) {
    snprintf(text, sizeof(text), "[2001:db8::%x:%x]:%d", seed, i + 1,
             40000 + i);
    add_addr(&t, text, (qpeer_ticket_addr_type)(i % 4));
  }
  for (i = 0; i < QPEER_BOOTSTRAP_MAX_RELAYS; i++) {
    int n = snprintf(url, sizeof(url), "https://r%d-%u.example/", i, seed);
    memset(url + n, 'a', sizeof(url) - 1 - (size_t)n);
    url[sizeof(url) - 1] = '\0';
    memset(key, 0x30 + i, sizeof(key));
    if (i % 2 == 0) {
      qpeer_peer_id_t pin;
      memcpy(pin.key, key, sizeof(key));
      assert_int_equal(
          qpeer_ticket_add_relay(&t, url, QPEER_TICKET_AUTH_PIN, &pin), 0);
    } else {
      assert_int_equal(qpeer_ticket_add_relay_ca(&t, url, key), 0);
    }
  }
  entry_from_ticket(e, &t);
  e->last_seen = UINT64_MAX - seed;
  e->last_path = QPEER_BOOTSTRAP_PATH_RELAY;
  e->successes = UINT32_MAX;
}

static void assert_entry_equal(const qpeer_bootstrap_entry_t *a,
                               const qpeer_bootstrap_entry_t *b) {
  size_t i;
  assert_memory_equal(a->peer_id.key, b->peer_id.key, QPEER_PEER_ID_LEN);
  assert_int_equal(a->naddrs, b->naddrs);
  for (i = 0; i < a->naddrs; i++) {
    assert_int_equal(a->addrs[i].type, b->addrs[i].type);
    assert_memory_equal(&a->addrs[i].addr, &b->addrs[i].addr,
                        sizeof(a->addrs[i].addr));
  }
  assert_int_equal(a->nrelays, b->nrelays);
  for (i = 0; i < a->nrelays; i++)
    assert_memory_equal(&a->relays[i], &b->relays[i], sizeof(a->relays[i]));
  assert_true(a->last_seen == b->last_seen);
  assert_int_equal(a->last_path, b->last_path);
  assert_int_equal(a->successes, b->successes);
}

/* Collects decoded entries. */
typedef struct {
  qpeer_bootstrap_entry_t *e; /* room for |cap| entries */
  size_t cap;                 /* room at |e| */
  size_t n;                   /* entries received */
  int fail_at;                /* return UV_ECANCELED on this call, or -1 */
} collect_t;

static int collect(void *arg, const qpeer_bootstrap_entry_t *e) {
  collect_t *c = arg;
  if ((int)c->n == c->fail_at)
    return UV_ECANCELED;
  assert_true(c->n < c->cap);
  c->e[c->n++] = *e;
  return 0;
}

/* encode_all encodes |n| entries into |buf| and returns the length. */
static size_t encode_all(uint8_t *buf, size_t buflen,
                         const qpeer_bootstrap_entry_t *e, size_t n) {
  qpeer__bootstrap_enc enc;
  size_t i;
  int r;
  qpeer__bootstrap_enc_init(&enc, buf, buflen);
  for (i = 0; i < n; i++)
    assert_int_equal(qpeer__bootstrap_enc_add(&enc, &e[i]), 0);
  r = qpeer__bootstrap_enc_finish(&enc);
  assert_true(r > 0);
  return (size_t)r;
}

static void test_crc32c(void **state) {
  (void)state;
  assert_int_equal(qpeer__bootstrap_crc32c((const uint8_t *)"123456789", 9),
                   0xe3069283u);
  assert_int_equal(qpeer__bootstrap_crc32c(NULL, 0), 0);
}

static void test_vector(void **state) {
  qpeer_bootstrap_entry_t e[2], out[2];
  uint8_t want[512], buf[1024];
  collect_t c = {out, 2, 0, -1};
  size_t n, len;
  (void)state;

  make_vector_entries(e);
  n = unhex(want, sizeof(want), vector_hex);
  len = encode_all(buf, sizeof(buf), e, 2);
  assert_int_equal(len, n);
  assert_memory_equal(buf, want, n);
  assert_int_equal(qpeer__bootstrap_fmt_decode(want, n, collect, &c), 0);
  assert_int_equal(c.n, 2);
  assert_entry_equal(&out[0], &e[0]);
  assert_entry_equal(&out[1], &e[1]);
}

static void test_empty_file(void **state) {
  uint8_t buf[QPEER__BOOTSTRAP_FMT_MIN_LEN];
  size_t len;
  (void)state;
  len = encode_all(buf, sizeof(buf), NULL, 0);
  assert_int_equal(len, 12);
  assert_memory_equal(buf, "QPBC\0\1\0\0", 8);
  assert_int_equal(qpeer__bootstrap_fmt_decode(buf, len, NULL, NULL), 0);
}

static void test_round_trip_max(void **state) {
  size_t cap = QPEER__BOOTSTRAP_FMT_MAX_LEN(QPEER_BOOTSTRAP_MAX_ENTRIES);
  qpeer_bootstrap_entry_t *e, *out;
  collect_t c;
  uint8_t *buf;
  size_t len, i;
  (void)state;

  assert_int_equal(cap, 273012);
  e = calloc(QPEER_BOOTSTRAP_MAX_ENTRIES, sizeof(*e));
  out = calloc(QPEER_BOOTSTRAP_MAX_ENTRIES, sizeof(*out));
  buf = malloc(cap);
  assert_non_null(e);
  assert_non_null(out);
  assert_non_null(buf);
  for (i = 0; i < QPEER_BOOTSTRAP_MAX_ENTRIES; i++)
    make_max_entry(&e[i], (unsigned)i);
  /* The largest file fills the bound exactly. */
  len = encode_all(buf, cap, e, QPEER_BOOTSTRAP_MAX_ENTRIES);
  assert_int_equal(len, cap);
  c.e = out;
  c.cap = QPEER_BOOTSTRAP_MAX_ENTRIES;
  c.n = 0;
  c.fail_at = -1;
  assert_int_equal(qpeer__bootstrap_fmt_decode(buf, len, collect, &c), 0);
  assert_int_equal(c.n, QPEER_BOOTSTRAP_MAX_ENTRIES);
  for (i = 0; i < c.n; i++)
    assert_entry_equal(&out[i], &e[i]);
  free(buf);
  free(out);
  free(e);
}

static void test_every_truncation(void **state) {
  qpeer_bootstrap_entry_t e[3];
  uint8_t buf[4096], cut[4096];
  size_t len, i;
  (void)state;

  make_vector_entries(e);
  make_max_entry(&e[2], 7);
  len = encode_all(buf, sizeof(buf), e, 3);
  for (i = 0; i < len; i++)
    assert_int_equal(qpeer__bootstrap_fmt_decode(buf, i, NULL, NULL),
                     QPEER_EBOOTSTRAP);
  /* Every cut of the records, re-sealed so the structure is what fails. */
  for (i = OFF_REC0; i + 4 < len; i++) {
    memcpy(cut, buf, i);
    reseal(cut, i + 4);
    assert_int_equal(qpeer__bootstrap_fmt_decode(cut, i + 4, NULL, NULL),
                     QPEER_EBOOTSTRAP);
  }
}

/* check_resealed decodes a mutated, re-sealed file: it must be refused
 * with a documented code, or decode to entries that re-encode to exactly
 * the same bytes (the format is canonical). */
static void check_resealed(const uint8_t *b, size_t len) {
  qpeer_bootstrap_entry_t out[3];
  collect_t c = {out, 3, 0, -1};
  uint8_t again[4096];
  size_t n;
  int r;

  r = qpeer__bootstrap_fmt_decode(b, len, collect, &c);
  if (r != 0) {
    assert_true(r == QPEER_EBOOTSTRAP || r == QPEER_EUNSUPPORTED);
    assert_int_equal(c.n, 0); /* nothing delivered from a bad file */
    return;
  }
  n = encode_all(again, sizeof(again), out, c.n);
  assert_int_equal(n, len);
  assert_memory_equal(again, b, len);
}

static void test_every_byte_corruption(void **state) {
  static const uint8_t flips[] = {0x01, 0x02, 0x10, 0x80, 0xff};
  qpeer_bootstrap_entry_t e[3];
  uint8_t buf[4096], bad[4096];
  size_t len, i, k;
  (void)state;

  make_vector_entries(e);
  make_max_entry(&e[2], 9);
  len = encode_all(buf, sizeof(buf), e, 3);
  for (i = 0; i < len; i++) {
    for (k = 0; k < sizeof(flips); k++) {
      memcpy(bad, buf, len);
      bad[i] ^= flips[k];
      /* The checksum catches every single-byte error. */
      assert_int_equal(qpeer__bootstrap_fmt_decode(bad, len, NULL, NULL),
                       QPEER_EBOOTSTRAP);
      if (i + 4 < len) {
        reseal(bad, len);
        check_resealed(bad, len);
      }
    }
  }
}

static void test_version(void **state) {
  qpeer_bootstrap_entry_t e[2];
  uint8_t buf[1024];
  size_t len;
  (void)state;

  make_vector_entries(e);
  len = encode_all(buf, sizeof(buf), e, 2);
  /* Another version with a good checksum: a file from a later release. */
  buf[OFF_VERSION + 1] = 2;
  reseal(buf, len);
  assert_int_equal(qpeer__bootstrap_fmt_decode(buf, len, NULL, NULL),
                   QPEER_EUNSUPPORTED);
  buf[OFF_VERSION + 1] = 0;
  reseal(buf, len);
  assert_int_equal(qpeer__bootstrap_fmt_decode(buf, len, NULL, NULL),
                   QPEER_EUNSUPPORTED);
  buf[OFF_VERSION] = 1;
  buf[OFF_VERSION + 1] = 1;
  reseal(buf, len);
  assert_int_equal(qpeer__bootstrap_fmt_decode(buf, len, NULL, NULL),
                   QPEER_EUNSUPPORTED);
  /* A damaged version without a matching checksum is corruption. */
  buf[OFF_VERSION] = 0;
  assert_int_equal(qpeer__bootstrap_fmt_decode(buf, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  /* The wrong magic is never a version question. */
  len = encode_all(buf, sizeof(buf), e, 2);
  buf[0] = 'X';
  reseal(buf, len);
  assert_int_equal(qpeer__bootstrap_fmt_decode(buf, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
}

/* A minimal record (no addresses, no relays) for peer |id|. */
static size_t put_min_record(uint8_t *p, uint8_t id) {
  p[0] = 0;
  p[1] = QPEER__BOOTSTRAP_FMT_RECORD_MIN;
  memset(p + 2, 0, QPEER__BOOTSTRAP_FMT_RECORD_MIN);
  p[2] = id;
  return 2 + QPEER__BOOTSTRAP_FMT_RECORD_MIN;
}

/* raw_file builds a sealed file of |nrec| minimal records (peers 0, 1, ...)
 * with header count |count|. Returns its length. */
static size_t raw_file(uint8_t *b, size_t nrec, unsigned count) {
  size_t len = OFF_REC0, i;
  memcpy(b, "QPBC\0\1", 6);
  b[OFF_COUNT] = (uint8_t)(count >> 8);
  b[OFF_COUNT + 1] = (uint8_t)count;
  for (i = 0; i < nrec; i++)
    len += put_min_record(b + len, (uint8_t)i);
  reseal(b, len + 4);
  return len + 4;
}

static void test_limits(void **state) {
  static uint8_t b[QPEER_BOOTSTRAP_FILE_MAX + 16];
  qpeer_bootstrap_entry_t out[1];
  collect_t c = {out, 1, 0, -1};
  size_t len;
  (void)state;

  /* 200 records decode; 201 (count and records agreeing) do not. */
  len = raw_file(b, 200, 200);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL), 0);
  len = raw_file(b, 201, 201);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  len = raw_file(b, 0, 0xffff);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  /* Count and records must agree both ways. */
  len = raw_file(b, 3, 2);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  len = raw_file(b, 2, 3);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  /* Record lengths out of bounds. */
  len = raw_file(b, 1, 1);
  b[OFF_REC0 + 1] = QPEER__BOOTSTRAP_FMT_RECORD_MIN - 1;
  reseal(b, len);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  memset(b, 0, 16);
  memcpy(b, "QPBC\0\1\0\1", 8);
  b[OFF_REC0] = (QPEER__BOOTSTRAP_FMT_RECORD_MAX + 1) >> 8;
  b[OFF_REC0 + 1] = (QPEER__BOOTSTRAP_FMT_RECORD_MAX + 1) & 0xff;
  len = OFF_REC0 + 2 + QPEER__BOOTSTRAP_FMT_RECORD_MAX + 1 + 4;
  memset(b + OFF_REC0 + 2, 0, len - OFF_REC0 - 2);
  reseal(b, len);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  /* Nine addresses, five relays, an unknown path kind: each refused. */
  len = raw_file(b, 1, 1);
  b[OFF_REC0 + 2 + 45] = 9;
  reseal(b, len);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  len = raw_file(b, 1, 1);
  b[OFF_REC0 + 2 + 46] = 5;
  reseal(b, len);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  len = raw_file(b, 1, 1);
  b[OFF_REC0 + 2 + 40] = 3;
  reseal(b, len);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  /* The same peer twice. */
  len = raw_file(b, 2, 2);
  b[OFF_REC0 + 2 + QPEER__BOOTSTRAP_FMT_RECORD_MIN + 2] = 0;
  reseal(b, len);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, collect, &c),
                   QPEER_EBOOTSTRAP);
  assert_int_equal(c.n, 0);
  /* Too long, whatever it holds; too short to have a trailer. */
  memset(b, 0, sizeof(b));
  len = raw_file(b, 1, 1);
  assert_int_equal(
      qpeer__bootstrap_fmt_decode(b, QPEER_BOOTSTRAP_FILE_MAX + 1, NULL, NULL),
      QPEER_EBOOTSTRAP);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, 11, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  assert_int_equal(qpeer__bootstrap_fmt_decode(NULL, 0, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  assert_int_equal(qpeer__bootstrap_fmt_decode(NULL, 5, NULL, NULL), UV_EINVAL);
}

/* A record with one address or relay whose bytes the test sets. */
static size_t one_item_file(uint8_t *b, const uint8_t *item, size_t n,
                            int relay) {
  size_t body = QPEER__BOOTSTRAP_FMT_RECORD_MIN + n, len;
  memcpy(b, "QPBC\0\1\0\1", 8);
  b[OFF_REC0] = (uint8_t)(body >> 8);
  b[OFF_REC0 + 1] = (uint8_t)body;
  memset(b + OFF_REC0 + 2, 0, body);
  if (relay) {
    b[OFF_REC0 + 2 + 46] = 1;
    memcpy(b + OFF_REC0 + 2 + 47, item, n);
  } else {
    b[OFF_REC0 + 2 + 45] = 1;
    memcpy(b + OFF_REC0 + 2 + 46, item, n);
  }
  len = OFF_REC0 + 2 + body + 4;
  reseal(b, len);
  return len;
}

static void test_bad_items(void **state) {
  static const uint8_t good4[] = {1, 4, 192, 0, 2, 1, 0x11, 0x51};
  static const uint8_t port0[] = {1, 4, 192, 0, 2, 1, 0, 0};
  static const uint8_t any4[] = {1, 4, 0, 0, 0, 0, 0x11, 0x51};
  static const uint8_t fam5[] = {1, 5, 192, 0, 2, 1, 0x11, 0x51};
  static const uint8_t type9[] = {9, 4, 192, 0, 2, 1, 0x11, 0x51};
  static const uint8_t mapped[] = {1, 6, 0,    0,    0,   0, 0, 0, 0,    0,
                                   0, 0, 0xff, 0xff, 192, 0, 2, 1, 0x11, 0x51};
  uint8_t b[1024], item[300];
  size_t len, n;
  (void)state;

  len = one_item_file(b, good4, sizeof(good4), 0);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL), 0);
  len = one_item_file(b, port0, sizeof(port0), 0);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  len = one_item_file(b, any4, sizeof(any4), 0);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  len = one_item_file(b, fam5, sizeof(fam5), 0);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  len = one_item_file(b, type9, sizeof(type9), 0);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  len = one_item_file(b, mapped, sizeof(mapped), 0);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);

  /* Relays: a good WebPKI one, then broken variants. */
  n = 0;
  item[n++] = QPEER_TICKET_AUTH_WEBPKI;
  item[n++] = 17;
  memcpy(item + n, "https://r.example", 17);
  n += 17;
  len = one_item_file(b, item, n, 1);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL), 0);
  item[0] = 7; /* unknown auth */
  len = one_item_file(b, item, n, 1);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  item[0] = QPEER_TICKET_AUTH_WEBPKI;
  item[2 + 10] = '\0'; /* embedded NUL */
  len = one_item_file(b, item, n, 1);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  memcpy(item + 2, "http://r.example!", 17); /* not https */
  len = one_item_file(b, item, n, 1);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
  item[1] = 0; /* empty URL */
  len = one_item_file(b, item, 2, 1);
  assert_int_equal(qpeer__bootstrap_fmt_decode(b, len, NULL, NULL),
                   QPEER_EBOOTSTRAP);
}

static void test_decode_all_or_nothing(void **state) {
  qpeer_bootstrap_entry_t e[2], out[2];
  collect_t c = {out, 2, 0, -1};
  uint8_t buf[1024];
  size_t len;
  (void)state;

  make_vector_entries(e);
  len = encode_all(buf, sizeof(buf), e, 2);
  /* Break the second record's path kind: the first is never delivered. */
  buf[len - 4 - QPEER__BOOTSTRAP_FMT_RECORD_MIN + 40] = 7;
  reseal(buf, len);
  assert_int_equal(qpeer__bootstrap_fmt_decode(buf, len, collect, &c),
                   QPEER_EBOOTSTRAP);
  assert_int_equal(c.n, 0);
  /* A callback error stops the decoder and is returned. */
  len = encode_all(buf, sizeof(buf), e, 2);
  c.fail_at = 1;
  assert_int_equal(qpeer__bootstrap_fmt_decode(buf, len, collect, &c),
                   UV_ECANCELED);
  assert_int_equal(c.n, 1);
  /* Extra bytes between the last record and the trailer. */
  len = encode_all(buf, sizeof(buf), e, 2);
  memmove(buf + len - 3, buf + len - 4, 4);
  buf[len - 4] = 0;
  reseal(buf, len + 1);
  assert_int_equal(qpeer__bootstrap_fmt_decode(buf, len + 1, NULL, NULL),
                   QPEER_EBOOTSTRAP);
}

static void test_encoder_checks(void **state) {
  qpeer_bootstrap_entry_t e[2], bad;
  qpeer__bootstrap_enc enc;
  struct sockaddr_in6 *s6;
  uint8_t buf[1024];
  size_t good, n;
  int r;
  (void)state;

  make_vector_entries(e);
  qpeer__bootstrap_enc_init(&enc, buf, sizeof(buf));
  bad = e[0];
  bad.naddrs = QPEER_BOOTSTRAP_MAX_ADDRS + 1;
  assert_int_equal(qpeer__bootstrap_enc_add(&enc, &bad), UV_EINVAL);
  bad = e[0];
  bad.nrelays = QPEER_BOOTSTRAP_MAX_RELAYS + 1;
  assert_int_equal(qpeer__bootstrap_enc_add(&enc, &bad), UV_EINVAL);
  bad = e[0];
  bad.last_path = (qpeer_bootstrap_path)3;
  assert_int_equal(qpeer__bootstrap_enc_add(&enc, &bad), UV_EINVAL);
  bad = e[0];
  bad.addrs[1] = bad.addrs[0]; /* duplicate */
  assert_int_equal(qpeer__bootstrap_enc_add(&enc, &bad), UV_EINVAL);
  bad = e[0];
  s6 = (struct sockaddr_in6 *)&bad.addrs[1].addr;
  assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.9", &s6->sin6_addr), 1);
  assert_int_equal(qpeer__bootstrap_enc_add(&enc, &bad), UV_EINVAL);
  bad = e[0];
  s6 = (struct sockaddr_in6 *)&bad.addrs[1].addr;
  s6->sin6_port = 0;
  assert_int_equal(qpeer__bootstrap_enc_add(&enc, &bad), UV_EINVAL);
  bad = e[0];
  bad.relays[0].auth = (qpeer_ticket_auth)0;
  assert_int_equal(qpeer__bootstrap_enc_add(&enc, &bad), UV_EINVAL);
  bad = e[0];
  memset(bad.relays[1].url, 'a', sizeof(bad.relays[1].url)); /* no NUL */
  assert_int_equal(qpeer__bootstrap_enc_add(&enc, &bad), UV_EINVAL);
  bad = e[0];
  bad.relays[2] = bad.relays[0];
  assert_int_equal(qpeer__bootstrap_enc_add(&enc, &bad), UV_EINVAL);
  assert_int_equal(qpeer__bootstrap_enc_add(&enc, NULL), UV_EINVAL);
  /* Refusals left the encoder usable: the output is the vector. */
  assert_int_equal(qpeer__bootstrap_enc_add(&enc, &e[0]), 0);
  assert_int_equal(qpeer__bootstrap_enc_add(&enc, &e[1]), 0);
  r = qpeer__bootstrap_enc_finish(&enc);
  assert_int_equal(r, (int)strlen(vector_hex) / 2);
  good = (size_t)r;

  /* Every buffer shorter than the file fails with UV_ENOBUFS. */
  for (n = 0; n < good; n++) {
    qpeer__bootstrap_enc_init(&enc, n ? buf : NULL, n);
    r = qpeer__bootstrap_enc_add(&enc, &e[0]);
    if (r == 0)
      r = qpeer__bootstrap_enc_add(&enc, &e[1]);
    if (r == 0)
      r = qpeer__bootstrap_enc_finish(&enc);
    assert_int_equal(r, UV_ENOBUFS);
    assert_int_equal(qpeer__bootstrap_enc_finish(&enc), UV_ENOBUFS);
  }
}

static void test_encoder_count_limit(void **state) {
  size_t cap = QPEER__BOOTSTRAP_FMT_MAX_LEN(QPEER_BOOTSTRAP_MAX_ENTRIES + 1);
  qpeer_bootstrap_entry_t e;
  qpeer__bootstrap_enc enc;
  uint8_t *buf = malloc(cap);
  size_t i;
  (void)state;

  assert_non_null(buf);
  qpeer__bootstrap_enc_init(&enc, buf, cap);
  memset(&e, 0, sizeof(e));
  for (i = 0; i < QPEER_BOOTSTRAP_MAX_ENTRIES; i++) {
    e.peer_id.key[0] = (uint8_t)i;
    e.peer_id.key[1] = (uint8_t)(i >> 8);
    assert_int_equal(qpeer__bootstrap_enc_add(&enc, &e), 0);
  }
  e.peer_id.key[2] = 1;
  assert_int_equal(qpeer__bootstrap_enc_add(&enc, &e), UV_EINVAL);
  assert_true(qpeer__bootstrap_enc_finish(&enc) > 0);
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32c),
      cmocka_unit_test(test_vector),
      cmocka_unit_test(test_empty_file),
      cmocka_unit_test(test_round_trip_max),
      cmocka_unit_test(test_every_truncation),
      cmocka_unit_test(test_every_byte_corruption),
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_bad_items),
      cmocka_unit_test(test_decode_all_or_nothing),
      cmocka_unit_test(test_encoder_checks),
      cmocka_unit_test(test_encoder_count_limit),
  };
  return cmocka_run_group_tests_name("bootstrap_fmt", tests, NULL, NULL);
}
