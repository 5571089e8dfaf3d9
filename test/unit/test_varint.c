/* SPDX-License-Identifier: MIT */
/* Unit tests for QUIC varints and bounded readers/writers (RFC 9000 §16,
 * including the Appendix A.1 examples). */
#include "util.h"
#include "core/varint.h"
#include "internal.h"

static void test_varint_rfc_examples(void **state) {
  static const struct {
    uint8_t bytes[8];
    size_t len;
    uint64_t value;
  } v[] = {
      {{0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c}, 8,
       151288809941952652ULL},
      {{0x9d, 0x7f, 0x3e, 0x7d}, 4, 494878333},
      {{0x7b, 0xbd}, 2, 15293},
      {{0x25}, 1, 37},
  };
  size_t i;
  (void)state;
  for (i = 0; i < QPEER__ARRAY_SIZE(v); i++) {
    uint64_t out;
    uint8_t buf[8];
    assert_int_equal(qpeer__varint_decode(&out, v[i].bytes, v[i].len),
                     (int)v[i].len);
    assert_true(out == v[i].value);
    assert_int_equal(qpeer__varint_encode(buf, sizeof(buf), v[i].value),
                     (int)v[i].len);
    assert_memory_equal(buf, v[i].bytes, v[i].len);
  }
  /* 0x4025 is a non-minimal 37: accepted on decode. */
  {
    const uint8_t b[] = {0x40, 0x25};
    uint64_t out;
    assert_int_equal(qpeer__varint_decode(&out, b, 2), 2);
    assert_true(out == 37);
  }
}

static void test_varint_bounds(void **state) {
  uint8_t buf[8];
  uint64_t out;
  const uint8_t b4[] = {0x80, 0x00, 0x01};
  (void)state;
  assert_int_equal(qpeer__varint_len(63), 1);
  assert_int_equal(qpeer__varint_len(64), 2);
  assert_int_equal(qpeer__varint_len(16383), 2);
  assert_int_equal(qpeer__varint_len(16384), 4);
  assert_int_equal(qpeer__varint_len(1073741823), 4);
  assert_int_equal(qpeer__varint_len(1073741824), 8);
  assert_int_equal(qpeer__varint_len(QPEER__VARINT_MAX), 8);
  assert_int_equal(qpeer__varint_len(QPEER__VARINT_MAX + 1), 0);
  assert_int_equal(qpeer__varint_encode(buf, 8, QPEER__VARINT_MAX + 1),
                   UV_EINVAL);
  assert_int_equal(qpeer__varint_encode(buf, 1, 64), UV_ENOBUFS);
  assert_int_equal(qpeer__varint_decode(&out, b4, 3), QPEER_ETRUNCATED);
  assert_int_equal(qpeer__varint_decode(&out, b4, 0), QPEER_ETRUNCATED);
}

static void test_rbuf_wbuf(void **state) {
  uint8_t buf[16];
  qpeer__wbuf w;
  qpeer__rbuf r;
  uint64_t v;
  uint16_t v16;
  uint32_t v32;
  uint8_t v8;
  const uint8_t *p;
  (void)state;
  qpeer__wbuf_init(&w, buf, sizeof(buf));
  assert_int_equal(qpeer__wbuf_varint(&w, 300), 0);
  assert_int_equal(qpeer__wbuf_u8(&w, 7), 0);
  assert_int_equal(qpeer__wbuf_u16(&w, 0xbeef), 0);
  assert_int_equal(qpeer__wbuf_u32(&w, 0xdeadbeef), 0);
  assert_int_equal(qpeer__wbuf_bytes(&w, "abcdefg", 7), 0);
  assert_int_equal(qpeer__wbuf_u8(&w, 1), UV_ENOBUFS);
  qpeer__rbuf_init(&r, buf, sizeof(buf));
  assert_int_equal(qpeer__rbuf_varint(&r, &v), 0);
  assert_true(v == 300);
  assert_int_equal(qpeer__rbuf_u8(&r, &v8), 0);
  assert_int_equal(v8, 7);
  assert_int_equal(qpeer__rbuf_u16(&r, &v16), 0);
  assert_int_equal(v16, 0xbeef);
  assert_int_equal(qpeer__rbuf_u32(&r, &v32), 0);
  assert_true(v32 == 0xdeadbeef);
  assert_int_equal(qpeer__rbuf_bytes(&r, &p, 7), 0);
  assert_memory_equal(p, "abcdefg", 7);
  assert_int_equal(qpeer__rbuf_left(&r), 0);
  assert_int_equal(qpeer__rbuf_u8(&r, &v8), QPEER_ETRUNCATED);
  assert_int_equal(qpeer__rbuf_u16(&r, &v16), QPEER_ETRUNCATED);
  assert_int_equal(qpeer__rbuf_u32(&r, &v32), QPEER_ETRUNCATED);
  assert_int_equal(qpeer__rbuf_bytes(&r, &p, 1), QPEER_ETRUNCATED);
  assert_int_equal(qpeer__rbuf_varint(&r, &v), QPEER_ETRUNCATED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_varint_rfc_examples),
      cmocka_unit_test(test_varint_bounds),
      cmocka_unit_test(test_rbuf_wbuf),
  };
  return cmocka_run_group_tests_name("varint", tests, NULL, NULL);
}
