/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/h3/datagram.c: HTTP/3 Datagram vectors (Quarter Stream
 * ID and Context ID), stream ID and bound checks, every truncation, the
 * Quarter Stream ID limit, and the bind draft's uncompressed-context payload
 * for IPv4 and IPv6, decoded without copying.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/addr.h"
#include "core/varint.h"
#include "h3/datagram.h"
#include "internal.h"

static void make_v4(struct sockaddr_storage *ss, const char *ip,
                    uint16_t port) {
  struct sockaddr_in *a = (void *)ss;
  memset(ss, 0, sizeof(*ss));
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
}

static void make_v6(struct sockaddr_storage *ss, const char *ip,
                    uint16_t port) {
  struct sockaddr_in6 *a = (void *)ss;
  memset(ss, 0, sizeof(*ss));
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
}

static void test_h3_datagram_vectors(void **state) {
  uint8_t buf[64];
  static const uint8_t v0[] = {0x00, 0x00, 'h', 'i'};
  static const uint8_t v1[] = {0x01, 0x02};
  static const uint8_t v64[] = {0x40, 0x40, 0x80, 0x00, 0x40, 0x00};
  static const uint8_t vmax[] = {0xcf, 0xff, 0xff, 0xff, 0xff,
                                 0xff, 0xff, 0xff, 0x00};
  (void)state;
  assert_int_equal(qpeer__h3_datagram_encode(buf, sizeof(buf), 0, 0,
                                             (const uint8_t *)"hi", 2),
                   sizeof(v0));
  assert_memory_equal(buf, v0, sizeof(v0));
  assert_int_equal(qpeer__h3_datagram_encode(buf, sizeof(buf), 4, 2, NULL, 0),
                   sizeof(v1));
  assert_memory_equal(buf, v1, sizeof(v1));
  assert_int_equal(
      qpeer__h3_datagram_write_header(buf, sizeof(buf), 256, 16384),
      sizeof(v64));
  assert_memory_equal(buf, v64, sizeof(v64));
  assert_int_equal(qpeer__h3_datagram_write_header(
                       buf, sizeof(buf), (int64_t)(QPEER__H3_QSID_MAX * 4), 0),
                   sizeof(vmax));
  assert_memory_equal(buf, vmax, sizeof(vmax));
}

static void test_h3_datagram_encode_errors(void **state) {
  uint8_t buf[64];
  static const int64_t bad[] = {-4, -1, 1, 2, 3, 5, 6, 7, 4097};
  size_t i;
  (void)state;
  for (i = 0; i < QPEER__ARRAY_SIZE(bad); i++)
    assert_int_equal(
        qpeer__h3_datagram_encode(buf, sizeof(buf), bad[i], 0, NULL, 0),
        UV_EINVAL);
  assert_int_equal(
      qpeer__h3_datagram_write_header(
          buf, sizeof(buf), (int64_t)((QPEER__H3_QSID_MAX + 1) * 4), 0),
      UV_EINVAL);
  assert_int_equal(qpeer__h3_datagram_write_header(buf, sizeof(buf), 0,
                                                   QPEER__VARINT_MAX + 1),
                   UV_EINVAL);
  /* Every short destination. */
  for (i = 0; i < 5; i++)
    assert_int_equal(
        qpeer__h3_datagram_encode(buf, i, 64, 0, (const uint8_t *)"abc", 3),
        UV_ENOBUFS);
  assert_int_equal(
      qpeer__h3_datagram_encode(buf, 5, 64, 0, (const uint8_t *)"abc", 3), 5);
}

static void test_h3_datagram_decode(void **state) {
  uint8_t buf[64];
  const uint8_t *payload;
  size_t payloadlen;
  int64_t sid;
  uint64_t ctx;
  ssize_t n;
  (void)state;
  n = qpeer__h3_datagram_encode(buf, sizeof(buf), 1000, 70000,
                                (const uint8_t *)"payload", 7);
  assert_int_equal(n, 2 + 4 + 7);
  assert_int_equal(qpeer__h3_datagram_decode(buf, (size_t)n, &sid, &ctx,
                                             &payload, &payloadlen),
                   0);
  assert_int_equal(sid, 1000);
  assert_int_equal(ctx, 70000);
  assert_ptr_equal(payload, buf + 6); /* no copy */
  assert_int_equal(payloadlen, 7);
  /* Empty payload. */
  assert_int_equal(
      qpeer__h3_datagram_decode(buf, 6, &sid, &ctx, &payload, &payloadlen), 0);
  assert_int_equal(payloadlen, 0);
  /* Largest QSID. */
  n = qpeer__h3_datagram_write_header(buf, sizeof(buf),
                                      (int64_t)(QPEER__H3_QSID_MAX * 4), 0);
  assert_int_equal(qpeer__h3_datagram_decode(buf, (size_t)n, &sid, &ctx,
                                             &payload, &payloadlen),
                   0);
  assert_int_equal(sid, (int64_t)(QPEER__H3_QSID_MAX * 4));
}

static void test_h3_datagram_decode_truncated(void **state) {
  static const uint8_t in[] = {0x80, 0x00, 0x01, 0x00, /* QSID 256 */
                               0x40, 0x05};            /* ctx 5 */
  const uint8_t *payload;
  size_t payloadlen, i;
  int64_t sid;
  uint64_t ctx;
  (void)state;
  assert_int_equal(
      qpeer__h3_datagram_decode(NULL, 0, &sid, &ctx, &payload, &payloadlen),
      QPEER_ETRUNCATED);
  for (i = 0; i < sizeof(in); i++) {
    sid = -1;
    assert_int_equal(
        qpeer__h3_datagram_decode(in, i, &sid, &ctx, &payload, &payloadlen),
        QPEER_ETRUNCATED);
    /* Once the QSID is in, the stream is known even if ctx is not. */
    assert_int_equal(sid, i >= 4 ? 256 * 4 : -1);
  }
  assert_int_equal(qpeer__h3_datagram_decode(in, sizeof(in), &sid, &ctx,
                                             &payload, &payloadlen),
                   0);
  assert_int_equal(ctx, 5);
}

static void test_h3_datagram_decode_qsid_too_big(void **state) {
  /* 2^60 and 2^62-1 as 8-byte varints. */
  static const uint8_t big1[] = {0xd0, 0, 0, 0, 0, 0, 0, 0, 0x00};
  static const uint8_t big2[] = {0xff, 0xff, 0xff, 0xff, 0xff,
                                 0xff, 0xff, 0xff, 0x00};
  const uint8_t *payload;
  size_t payloadlen;
  int64_t sid;
  uint64_t ctx;
  (void)state;
  assert_int_equal(qpeer__h3_datagram_decode(big1, sizeof(big1), &sid, &ctx,
                                             &payload, &payloadlen),
                   QPEER_EMALFORMED);
  assert_int_equal(qpeer__h3_datagram_decode(big2, sizeof(big2), &sid, &ctx,
                                             &payload, &payloadlen),
                   QPEER_EMALFORMED);
}

static void test_h3_datagram_uncompressed_v4(void **state) {
  static const uint8_t vec[] = {0x04, 192, 0,   2,   45, 0xd4,
                                0x31, 'p', 'i', 'n', 'g'};
  struct sockaddr_storage ss, out;
  uint8_t buf[64];
  const uint8_t *payload;
  size_t payloadlen, i;
  (void)state;
  make_v4(&ss, "192.0.2.45", 54321);
  assert_int_equal(
      qpeer__h3_datagram_encode_uncompressed(
          buf, sizeof(buf), (struct sockaddr *)&ss, (const uint8_t *)"ping", 4),
      sizeof(vec));
  assert_memory_equal(buf, vec, sizeof(vec));
  assert_int_equal(qpeer__h3_datagram_decode_uncompressed(
                       vec, sizeof(vec), &out, &payload, &payloadlen),
                   0);
  assert_true(
      qpeer__addr_equal((struct sockaddr *)&out, (struct sockaddr *)&ss));
  assert_ptr_equal(payload, vec + 7);
  assert_int_equal(payloadlen, 4);
  for (i = 0; i < QPEER__H3_UNCOMPRESSED_V4_LEN; i++)
    assert_int_equal(qpeer__h3_datagram_decode_uncompressed(
                         vec, i, &out, &payload, &payloadlen),
                     QPEER_ETRUNCATED);
  /* An empty UDP payload is allowed. */
  assert_int_equal(qpeer__h3_datagram_decode_uncompressed(
                       vec, 7, &out, &payload, &payloadlen),
                   0);
  assert_int_equal(payloadlen, 0);
}

static void test_h3_datagram_uncompressed_v6(void **state) {
  static const uint8_t vec[] = {0x06, 0x20, 0x01, 0x0d, 0xb8, 0,   0,
                                0,    0,    0,    0,    0,    0,   0,
                                0,    0x12, 0x34, 0x01, 0xbb, 0xaa};
  struct sockaddr_storage ss, out;
  uint8_t buf[64];
  const uint8_t *payload;
  size_t payloadlen, i;
  (void)state;
  make_v6(&ss, "2001:db8::1234", 443);
  assert_int_equal(
      qpeer__h3_datagram_encode_uncompressed(
          buf, sizeof(buf), (struct sockaddr *)&ss, (const uint8_t *)"\xaa", 1),
      sizeof(vec));
  assert_memory_equal(buf, vec, sizeof(vec));
  assert_int_equal(qpeer__h3_datagram_decode_uncompressed(
                       vec, sizeof(vec), &out, &payload, &payloadlen),
                   0);
  assert_true(
      qpeer__addr_equal((struct sockaddr *)&out, (struct sockaddr *)&ss));
  assert_ptr_equal(payload, vec + 19);
  assert_int_equal(payloadlen, 1);
  for (i = 0; i < QPEER__H3_UNCOMPRESSED_V6_LEN; i++)
    assert_int_equal(qpeer__h3_datagram_decode_uncompressed(
                         vec, i, &out, &payload, &payloadlen),
                     QPEER_ETRUNCATED);
}

static void test_h3_datagram_uncompressed_errors(void **state) {
  struct sockaddr_storage ss, out;
  uint8_t buf[64];
  const uint8_t *payload;
  size_t payloadlen, i;
  int v;
  (void)state;
  memset(buf, 0, sizeof(buf));
  for (v = 0; v < 256; v++) {
    if (v == 4 || v == 6)
      continue;
    buf[0] = (uint8_t)v;
    assert_int_equal(qpeer__h3_datagram_decode_uncompressed(
                         buf, sizeof(buf), &out, &payload, &payloadlen),
                     QPEER_EMALFORMED);
  }
  memset(&ss, 0, sizeof(ss));
  ss.ss_family = AF_UNIX;
  assert_int_equal(
      qpeer__h3_datagram_write_addr(buf, sizeof(buf), (struct sockaddr *)&ss),
      UV_EINVAL);
  make_v4(&ss, "10.0.0.1", 1);
  for (i = 0; i < QPEER__H3_UNCOMPRESSED_V4_LEN; i++)
    assert_int_equal(
        qpeer__h3_datagram_write_addr(buf, i, (struct sockaddr *)&ss),
        UV_ENOBUFS);
  assert_int_equal(
      qpeer__h3_datagram_encode_uncompressed(buf, 8, (struct sockaddr *)&ss,
                                             (const uint8_t *)"ab", 2),
      UV_ENOBUFS);
  make_v6(&ss, "::1", 1);
  for (i = 0; i < QPEER__H3_UNCOMPRESSED_V6_LEN; i++)
    assert_int_equal(
        qpeer__h3_datagram_write_addr(buf, i, (struct sockaddr *)&ss),
        UV_ENOBUFS);
}

/* A whole bind-mode datagram: header, address, payload, taken apart. */
static void test_h3_datagram_bind_roundtrip(void **state) {
  struct sockaddr_storage ss, out;
  uint8_t buf[QPEER__H3_DATAGRAM_OVERHEAD_MAX + 16];
  const uint8_t *p, *udp;
  size_t plen, udplen;
  int64_t sid;
  uint64_t ctx;
  ssize_t h, a;
  (void)state;
  make_v6(&ss, "2001:db8:ffff::9", 65535);
  h = qpeer__h3_datagram_write_header(
      buf, sizeof(buf), (int64_t)(QPEER__H3_QSID_MAX * 4), QPEER__VARINT_MAX);
  assert_int_equal(h, 16);
  a = qpeer__h3_datagram_write_addr(buf + h, sizeof(buf) - (size_t)h,
                                    (struct sockaddr *)&ss);
  assert_int_equal(a, QPEER__H3_UNCOMPRESSED_V6_LEN);
  assert_int_equal(h + a, QPEER__H3_DATAGRAM_OVERHEAD_MAX);
  memcpy(buf + h + a, "0123456789abcdef", 16);
  assert_int_equal(
      qpeer__h3_datagram_decode(buf, sizeof(buf), &sid, &ctx, &p, &plen), 0);
  assert_int_equal(ctx, QPEER__VARINT_MAX);
  assert_int_equal(
      qpeer__h3_datagram_decode_uncompressed(p, plen, &out, &udp, &udplen), 0);
  assert_true(
      qpeer__addr_equal((struct sockaddr *)&out, (struct sockaddr *)&ss));
  assert_int_equal(udplen, 16);
  assert_memory_equal(udp, "0123456789abcdef", 16);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_h3_datagram_vectors),
      cmocka_unit_test(test_h3_datagram_encode_errors),
      cmocka_unit_test(test_h3_datagram_decode),
      cmocka_unit_test(test_h3_datagram_decode_truncated),
      cmocka_unit_test(test_h3_datagram_decode_qsid_too_big),
      cmocka_unit_test(test_h3_datagram_uncompressed_v4),
      cmocka_unit_test(test_h3_datagram_uncompressed_v6),
      cmocka_unit_test(test_h3_datagram_uncompressed_errors),
      cmocka_unit_test(test_h3_datagram_bind_roundtrip),
  };
  return cmocka_run_group_tests_name("h3_datagram", tests, NULL, NULL);
}
