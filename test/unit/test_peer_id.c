/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/peer/peer_id.c: the text form of peer IDs. Fixed
 * vectors were computed independently (Python base64.b32encode and
 * hashlib); the rest checks round trips and that every malformed or
 * mistyped text is rejected with the right code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "internal.h"

/* A key and its expected text form. */
typedef struct {
  uint8_t key[QPEER_PEER_ID_LEN]; /* raw key */
  const char *text;               /* expected text form */
} vector_t;

static vector_t vectors[3] = {
    {{0}, "paaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaadlfq"},
    {{0}, "paaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypulyy"},
    {{0}, "p7777777777777777777777777777777777777777777777777777r6i"},
};

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

/* Deterministic xorshift64 so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void rng_fill(uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    p[i] = (uint8_t)(rng_next() >> 56);
}

static int setup_vectors(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < QPEER_PEER_ID_LEN; i++) {
    vectors[0].key[i] = 0;
    vectors[1].key[i] = (uint8_t)i;
    vectors[2].key[i] = 0xff;
  }
  return 0;
}

/* b32_index returns the value of a lower-case base32 character, or -1. */
static int b32_index(char c) {
  const char *p = c ? strchr(alphabet, c) : NULL;
  return p ? (int)(p - alphabet) : -1;
}

/* encode_raw is an independent encoder for tests: 'p' plus the unpadded
 * base32 of any 34 bytes (so a wrong checksum can be encoded). */
static void encode_raw(char out[QPEER_PEER_ID_STRLEN], const uint8_t raw[34]) {
  size_t bit, n = 0;
  out[n++] = 'p';
  for (bit = 0; bit < 34 * 8; bit += 5) {
    unsigned v = 0, j;
    for (j = 0; j < 5; j++) {
      size_t b = bit + j;
      unsigned set = b < 34 * 8 ? (raw[b / 8] >> (7 - b % 8)) & 1 : 0;
      v = (v << 1) | set;
    }
    out[n++] = alphabet[v];
  }
  out[n] = '\0';
  assert_int_equal(n, QPEER_PEER_ID_TEXT_LEN);
}

static void test_vectors(void **state) {
  char buf[QPEER_PEER_ID_STRLEN];
  qpeer_peer_id_t pid;
  size_t i;
  (void)state;
  for (i = 0; i < QPEER__ARRAY_SIZE(vectors); i++) {
    memcpy(pid.key, vectors[i].key, QPEER_PEER_ID_LEN);
    assert_int_equal(qpeer_peer_id_format(&pid, buf, sizeof(buf)),
                     QPEER_PEER_ID_TEXT_LEN);
    assert_string_equal(buf, vectors[i].text);
    memset(&pid, 0xa5, sizeof(pid));
    assert_int_equal(qpeer_peer_id_parse(&pid, vectors[i].text), 0);
    assert_memory_equal(pid.key, vectors[i].key, QPEER_PEER_ID_LEN);
  }
}

static void test_round_trip_random(void **state) {
  char buf[QPEER_PEER_ID_STRLEN];
  qpeer_peer_id_t a, b;
  int i;
  size_t j;
  (void)state;
  for (i = 0; i < 2000; i++) {
    rng_fill(a.key, sizeof(a.key));
    assert_int_equal(qpeer_peer_id_format(&a, buf, sizeof(buf)),
                     QPEER_PEER_ID_TEXT_LEN);
    assert_int_equal(strlen(buf), QPEER_PEER_ID_TEXT_LEN);
    assert_int_equal(buf[0], 'p');
    for (j = 1; j < QPEER_PEER_ID_TEXT_LEN; j++)
      assert_true(b32_index(buf[j]) >= 0);
    /* The three unused bits of the last character are zero. */
    assert_int_equal(b32_index(buf[QPEER_PEER_ID_TEXT_LEN - 1]) & 7, 0);
    assert_int_equal(qpeer_peer_id_parse(&b, buf), 0);
    assert_true(qpeer_peer_id_equal(&a, &b));
  }
}

/* Also checks the test's own encoder against the library. */
static void test_independent_encoder(void **state) {
  uint8_t raw[34], digest[32];
  uint8_t msg[16 + QPEER_PEER_ID_LEN];
  char mine[QPEER_PEER_ID_STRLEN], lib[QPEER_PEER_ID_STRLEN];
  qpeer_peer_id_t pid;
  int i;
  (void)state;
  for (i = 0; i < 200; i++) {
    rng_fill(pid.key, sizeof(pid.key));
    memcpy(msg, "qpeer peer id v1", 16);
    memcpy(msg + 16, pid.key, QPEER_PEER_ID_LEN);
    assert_int_equal(
        gnutls_hash_fast(GNUTLS_DIG_SHA256, msg, sizeof(msg), digest), 0);
    memcpy(raw, pid.key, 32);
    memcpy(raw + 32, digest, 2);
    encode_raw(mine, raw);
    assert_int_equal(qpeer_peer_id_format(&pid, lib, sizeof(lib)),
                     QPEER_PEER_ID_TEXT_LEN);
    assert_string_equal(mine, lib);
  }
}

static void test_case_insensitive(void **state) {
  char upper[QPEER_PEER_ID_STRLEN], mixed[QPEER_PEER_ID_STRLEN];
  qpeer_peer_id_t pid;
  size_t i, v;
  (void)state;
  for (v = 0; v < QPEER__ARRAY_SIZE(vectors); v++) {
    const char *t = vectors[v].text;
    for (i = 0; i <= QPEER_PEER_ID_TEXT_LEN; i++) {
      char c = t[i];
      upper[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
      mixed[i] = (i % 2 && c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    assert_int_equal(upper[0], 'P');
    assert_int_equal(qpeer_peer_id_parse(&pid, upper), 0);
    assert_memory_equal(pid.key, vectors[v].key, QPEER_PEER_ID_LEN);
    assert_int_equal(qpeer_peer_id_parse(&pid, mixed), 0);
    assert_memory_equal(pid.key, vectors[v].key, QPEER_PEER_ID_LEN);
  }
}

/* Every one-character change of a valid ID is rejected, at every position,
 * with every other byte value; the code says which check caught it. */
static void test_single_substitution(void **state) {
  char buf[QPEER_PEER_ID_STRLEN];
  qpeer_peer_id_t pid, orig;
  size_t v, pos;
  int c, r, val;
  (void)state;
  for (v = 0; v < QPEER__ARRAY_SIZE(vectors); v++) {
    const char *t = vectors[v].text;
    for (pos = 0; pos < QPEER_PEER_ID_TEXT_LEN; pos++) {
      for (c = 1; c < 256; c++) {
        char lc = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
        if (lc == t[pos])
          continue; /* same character, other case: still valid */
        memcpy(buf, t, sizeof(buf));
        buf[pos] = (char)c;
        memset(&pid, 0x5a, sizeof(pid));
        orig = pid;
        r = qpeer_peer_id_parse(&pid, buf);
        val = b32_index(lc);
        if (pos == 0 || val < 0)
          assert_int_equal(r, QPEER_EBADPEERID);
        else if (pos == QPEER_PEER_ID_TEXT_LEN - 1 && (val & 7) != 0)
          assert_int_equal(r, QPEER_EBADPEERID);
        else
          assert_int_equal(r, QPEER_EPEERIDCHECK);
        /* A failed parse leaves the output alone. */
        assert_memory_equal(&pid, &orig, sizeof(pid));
      }
    }
  }
}

static void test_wrong_checksum(void **state) {
  uint8_t raw[34];
  char buf[QPEER_PEER_ID_STRLEN];
  qpeer_peer_id_t pid;
  int i;
  (void)state;
  /* Vector 0 has checksum 0x3596; try every other top byte. */
  memset(raw, 0, sizeof(raw));
  raw[33] = 0x96;
  for (i = 0; i < 256; i++) {
    raw[32] = (uint8_t)i;
    encode_raw(buf, raw);
    assert_int_equal(qpeer_peer_id_parse(&pid, buf),
                     i == 0x35 ? 0 : QPEER_EPEERIDCHECK);
  }
}

static void test_wrong_length(void **state) {
  char buf[200];
  qpeer_peer_id_t pid;
  const char *t = vectors[1].text;
  (void)state;
  assert_int_equal(qpeer_peer_id_parse(&pid, ""), QPEER_EBADPEERID);
  assert_int_equal(qpeer_peer_id_parse(&pid, "p"), QPEER_EBADPEERID);
  /* 55: the last character dropped. */
  memcpy(buf, t, 55);
  buf[55] = '\0';
  assert_int_equal(qpeer_peer_id_parse(&pid, buf), QPEER_EBADPEERID);
  /* 55: the version character dropped. */
  assert_int_equal(qpeer_peer_id_parse(&pid, t + 1), QPEER_EBADPEERID);
  /* 57: one extra character, valid or not. */
  memcpy(buf, t, 56);
  buf[56] = 'a';
  buf[57] = '\0';
  assert_int_equal(qpeer_peer_id_parse(&pid, buf), QPEER_EBADPEERID);
  buf[56] = '\n';
  assert_int_equal(qpeer_peer_id_parse(&pid, buf), QPEER_EBADPEERID);
  /* Much too long. */
  memset(buf, 'a', sizeof(buf) - 1);
  buf[sizeof(buf) - 1] = '\0';
  assert_int_equal(qpeer_peer_id_parse(&pid, buf), QPEER_EBADPEERID);
  /* Base32 padding in RFC 4648 style. */
  memcpy(buf, t + 1, 55);
  buf[55] = '=';
  buf[56] = '\0';
  assert_int_equal(qpeer_peer_id_parse(&pid, buf), QPEER_EBADPEERID);
}

static void test_bad_chars(void **state) {
  static const char bad[] = {' ', '-', '0', '1',  '8',  '9',
                             '=', '_', '.', '\t', '\n', (char)0xc3};
  char buf[QPEER_PEER_ID_STRLEN];
  qpeer_peer_id_t pid;
  size_t i;
  static const size_t positions[] = {1, 2, 17, 30, 54, 55};
  size_t p;
  (void)state;
  for (i = 0; i < sizeof(bad); i++) {
    for (p = 0; p < QPEER__ARRAY_SIZE(positions); p++) {
      memcpy(buf, vectors[1].text, sizeof(buf));
      buf[positions[p]] = bad[i];
      assert_int_equal(qpeer_peer_id_parse(&pid, buf), QPEER_EBADPEERID);
    }
  }
  /* Embedded NUL: the string ends early. */
  memcpy(buf, vectors[1].text, sizeof(buf));
  buf[20] = '\0';
  assert_int_equal(qpeer_peer_id_parse(&pid, buf), QPEER_EBADPEERID);
  /* Leading and trailing space. */
  buf[0] = ' ';
  memcpy(buf + 1, vectors[1].text, 55);
  buf[56] = '\0';
  assert_int_equal(qpeer_peer_id_parse(&pid, buf), QPEER_EBADPEERID);
}

static void test_bad_version(void **state) {
  char buf[QPEER_PEER_ID_STRLEN];
  qpeer_peer_id_t pid;
  const char *v = "aqQ2a7";
  size_t i;
  (void)state;
  for (i = 0; v[i]; i++) {
    memcpy(buf, vectors[0].text, sizeof(buf));
    buf[0] = v[i];
    assert_int_equal(qpeer_peer_id_parse(&pid, buf), QPEER_EBADPEERID);
  }
}

static void test_padding_bits(void **state) {
  char buf[QPEER_PEER_ID_STRLEN];
  qpeer_peer_id_t pid;
  size_t v;
  int val, pad;
  (void)state;
  for (v = 0; v < QPEER__ARRAY_SIZE(vectors); v++) {
    memcpy(buf, vectors[v].text, sizeof(buf));
    val = b32_index(buf[QPEER_PEER_ID_TEXT_LEN - 1]);
    assert_int_equal(val & 7, 0);
    for (pad = 1; pad < 8; pad++) {
      buf[QPEER_PEER_ID_TEXT_LEN - 1] = alphabet[val | pad];
      assert_int_equal(qpeer_peer_id_parse(&pid, buf), QPEER_EBADPEERID);
    }
  }
}

static void test_format_buffer(void **state) {
  char buf[QPEER_PEER_ID_STRLEN + 8];
  qpeer_peer_id_t pid;
  size_t len;
  (void)state;
  memcpy(pid.key, vectors[1].key, QPEER_PEER_ID_LEN);
  for (len = 0; len < QPEER_PEER_ID_STRLEN; len++) {
    memset(buf, '#', sizeof(buf));
    assert_int_equal(qpeer_peer_id_format(&pid, buf, len), UV_ENOBUFS);
    assert_int_equal(buf[0], '#'); /* nothing written */
  }
  memset(buf, '#', sizeof(buf));
  assert_int_equal(qpeer_peer_id_format(&pid, buf, QPEER_PEER_ID_STRLEN),
                   QPEER_PEER_ID_TEXT_LEN);
  assert_string_equal(buf, vectors[1].text);
  assert_int_equal(buf[QPEER_PEER_ID_STRLEN], '#'); /* no overrun */
}

static void test_null_args(void **state) {
  char buf[QPEER_PEER_ID_STRLEN];
  qpeer_peer_id_t pid;
  (void)state;
  memset(&pid, 0, sizeof(pid));
  assert_int_equal(qpeer_peer_id_parse(NULL, vectors[0].text), UV_EINVAL);
  assert_int_equal(qpeer_peer_id_parse(&pid, NULL), UV_EINVAL);
  assert_int_equal(qpeer_peer_id_format(NULL, buf, sizeof(buf)), UV_EINVAL);
  assert_int_equal(qpeer_peer_id_format(&pid, NULL, sizeof(buf)), UV_EINVAL);
  assert_false(qpeer_peer_id_equal(NULL, &pid));
  assert_false(qpeer_peer_id_equal(&pid, NULL));
}

static void test_equal(void **state) {
  qpeer_peer_id_t a, b;
  (void)state;
  memcpy(a.key, vectors[1].key, QPEER_PEER_ID_LEN);
  b = a;
  assert_true(qpeer_peer_id_equal(&a, &b));
  assert_true(qpeer_peer_id_equal(&a, &a));
  b.key[QPEER_PEER_ID_LEN - 1] ^= 1;
  assert_false(qpeer_peer_id_equal(&a, &b));
  b = a;
  b.key[0] ^= 0x80;
  assert_false(qpeer_peer_id_equal(&a, &b));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vectors),
      cmocka_unit_test(test_round_trip_random),
      cmocka_unit_test(test_independent_encoder),
      cmocka_unit_test(test_case_insensitive),
      cmocka_unit_test(test_single_substitution),
      cmocka_unit_test(test_wrong_checksum),
      cmocka_unit_test(test_wrong_length),
      cmocka_unit_test(test_bad_chars),
      cmocka_unit_test(test_bad_version),
      cmocka_unit_test(test_padding_bits),
      cmocka_unit_test(test_format_buffer),
      cmocka_unit_test(test_null_args),
      cmocka_unit_test(test_equal),
  };
  return cmocka_run_group_tests_name("peer_id", tests, setup_vectors, NULL);
}
