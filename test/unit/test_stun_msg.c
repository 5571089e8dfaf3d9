/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/nat/stun_msg.c: the RFC 5769 test vectors (decode,
 * integrity, fingerprint, and byte-exact re-encoding), round trips,
 * truncation and malformation rejection, the writer's bounds, and the
 * STUN/QUIC classifier.
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
#include "internal.h"
#include "nat/stun_msg.h"

/* RFC 5769 §2: the short-term credential password and transaction ID. */
static const char password[] = "VOkJxbRl1RmTxUk/WvJxBt";
static const uint8_t tid[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

/* The vectors keep one attribute per line. */
/* clang-format off */
/* RFC 5769 §2.1: sample request. */
static const uint8_t req_vec[] = {
    0x00, 0x01, 0x00, 0x58, /* Binding request, length 88 */
    0x21, 0x12, 0xa4, 0x42, /* magic cookie */
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x10, /* SOFTWARE, 16 bytes */
    'S', 'T', 'U', 'N', ' ', 't', 'e', 's', 't', ' ', 'c', 'l', 'i', 'e', 'n',
    't',
    0x00, 0x24, 0x00, 0x04, /* PRIORITY (ICE; unknown to us) */
    0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, /* ICE-CONTROLLED (optional) */
    0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
    0x00, 0x06, 0x00, 0x09, /* USERNAME "evtj:h6vY" + 3 pad spaces */
    0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20,
    0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY */
    0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5,
    0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2,
    0x80, 0x28, 0x00, 0x04, /* FINGERPRINT */
    0xe5, 0x7a, 0x3b, 0xcf};

/* RFC 5769 §2.2: sample IPv4 response (192.0.2.1:32853). */
static const uint8_t resp4_vec[] = {
    0x01, 0x01, 0x00, 0x3c, /* Binding success, length 60 */
    0x21, 0x12, 0xa4, 0x42,
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x0b, /* SOFTWARE "test vector" + 1 pad space */
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, /* XOR-MAPPED-ADDRESS */
    0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY */
    0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, /* FINGERPRINT */
    0xc0, 0x7d, 0x4c, 0x96};

/* RFC 5769 §2.3: sample IPv6 response
 * ([2001:db8:1234:5678:11:2233:4455:6677]:32853). */
static const uint8_t resp6_vec[] = {
    0x01, 0x01, 0x00, 0x48, /* Binding success, length 72 */
    0x21, 0x12, 0xa4, 0x42,
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x0b, /* SOFTWARE "test vector" */
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x14, /* XOR-MAPPED-ADDRESS */
    0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79,
    0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY */
    0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c,
    0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
    0x80, 0x28, 0x00, 0x04, /* FINGERPRINT */
    0xc8, 0xfb, 0x0b, 0x4c};
/* clang-format on */

static const uint8_t *key = (const uint8_t *)password;
#define KEYLEN (sizeof(password) - 1)

static void make_addr(struct sockaddr_storage *ss, const char *ip,
                      uint16_t port) {
  memset(ss, 0, sizeof(*ss));
  if (strchr(ip, ':') != NULL) {
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

static void assert_addr_eq(const struct sockaddr_storage *got, const char *ip,
                           uint16_t port) {
  struct sockaddr_storage want;
  make_addr(&want, ip, port);
  assert_true(qpeer__addr_equal((const struct sockaddr *)got,
                                (const struct sockaddr *)&want));
}

static void test_stun_msg_crc32(void **state) {
  (void)state;
  /* The CRC-32/ISO-HDLC check value. */
  assert_int_equal(qpeer__stun_crc32(0, (const uint8_t *)"123456789", 9),
                   0xcbf43926u);
  /* Continuation over split input gives the same result. */
  assert_int_equal(
      qpeer__stun_crc32(qpeer__stun_crc32(0, (const uint8_t *)"1234", 4),
                        (const uint8_t *)"56789", 5),
      0xcbf43926u);
}

static void test_stun_msg_type_helpers(void **state) {
  (void)state;
  assert_int_equal(
      qpeer__stun_type(QPEER__STUN_METHOD_BINDING, QPEER__STUN_CLASS_ERROR),
      QPEER__STUN_BINDING_ERROR);
  assert_int_equal(qpeer__stun_type(QPEER__STUN_METHOD_BINDING,
                                    QPEER__STUN_CLASS_INDICATION),
                   QPEER__STUN_BINDING_INDICATION);
  assert_int_equal(qpeer__stun_type_method(QPEER__STUN_BINDING_SUCCESS), 1);
  assert_int_equal(qpeer__stun_type_class(QPEER__STUN_BINDING_SUCCESS),
                   QPEER__STUN_CLASS_SUCCESS);
  /* Every 12-bit method survives compose/extract with every class. */
  for (unsigned mth = 0; mth < 0x1000; mth++) {
    uint16_t t = qpeer__stun_type((uint16_t)mth, QPEER__STUN_CLASS_ERROR);
    assert_int_equal(t & 0xc000, 0);
    assert_int_equal(qpeer__stun_type_method(t), mth);
    assert_int_equal(qpeer__stun_type_class(t), QPEER__STUN_CLASS_ERROR);
  }
}

static void test_stun_msg_decode_rfc5769_request(void **state) {
  qpeer__stun_msg m;
  (void)state;
  assert_true(qpeer__stun_is_stun(req_vec, sizeof(req_vec)));
  assert_int_equal(qpeer__stun_decode(&m, req_vec, sizeof(req_vec)), 0);
  assert_int_equal(m.type, QPEER__STUN_BINDING_REQUEST);
  assert_int_equal(m.length, 88);
  assert_memory_equal(m.txid, tid, 12);
  assert_true(m.has_software);
  assert_int_equal(m.software_len, 16);
  assert_memory_equal(m.software, "STUN test client", 16);
  assert_true(m.has_username);
  assert_int_equal(m.username_len, 9);
  assert_memory_equal(m.username, "evtj:h6vY", 9);
  assert_true(m.has_integrity);
  assert_int_equal(m.integrity_offset, 20 + 20 + 8 + 12 + 16);
  assert_true(m.has_fingerprint);
  assert_true(m.fingerprint_ok);
  /* PRIORITY (0x0024) is comprehension-required and unknown here;
   * ICE-CONTROLLED (0x8029) is optional and silently skipped. */
  assert_int_equal(m.unknown_count, 1);
  assert_int_equal(m.unknown[0], 0x0024);
  assert_false(m.has_xor_mapped);
  assert_int_equal(
      qpeer__stun_verify_integrity(&m, req_vec, sizeof(req_vec), key, KEYLEN),
      0);
  assert_int_equal(qpeer__stun_verify_integrity(&m, req_vec, sizeof(req_vec),
                                                key, KEYLEN - 1),
                   QPEER_ECHECKSUM);
}

static void test_stun_msg_decode_rfc5769_ipv4(void **state) {
  qpeer__stun_msg m;
  (void)state;
  assert_int_equal(qpeer__stun_decode(&m, resp4_vec, sizeof(resp4_vec)), 0);
  assert_int_equal(m.type, QPEER__STUN_BINDING_SUCCESS);
  assert_memory_equal(m.txid, tid, 12);
  assert_true(m.has_xor_mapped);
  assert_addr_eq(&m.xor_mapped, "192.0.2.1", 32853);
  assert_int_equal(m.software_len, 11);
  assert_memory_equal(m.software, "test vector", 11);
  assert_true(m.fingerprint_ok);
  assert_int_equal(m.unknown_count, 0);
  assert_int_equal(qpeer__stun_verify_integrity(&m, resp4_vec,
                                                sizeof(resp4_vec), key, KEYLEN),
                   0);
  assert_int_equal(qpeer__stun_verify_integrity(&m, resp4_vec,
                                                sizeof(resp4_vec),
                                                (const uint8_t *)"wrong", 5),
                   QPEER_ECHECKSUM);
}

static void test_stun_msg_decode_rfc5769_ipv6(void **state) {
  qpeer__stun_msg m;
  (void)state;
  assert_int_equal(qpeer__stun_decode(&m, resp6_vec, sizeof(resp6_vec)), 0);
  assert_true(m.has_xor_mapped);
  assert_addr_eq(&m.xor_mapped, "2001:db8:1234:5678:11:2233:4455:6677", 32853);
  assert_true(m.fingerprint_ok);
  assert_int_equal(qpeer__stun_verify_integrity(&m, resp6_vec,
                                                sizeof(resp6_vec), key, KEYLEN),
                   0);
}

/* The writer reproduces the RFC 5769 vectors byte for byte (the vectors
 * pad with spaces, hence w.pad = 0x20). */
static void test_stun_msg_encode_rfc5769(void **state) {
  static const uint8_t prio[4] = {0x6e, 0x00, 0x01, 0xff};
  static const uint8_t ctl[8] = {0x93, 0x2f, 0xf9, 0xb1,
                                 0x51, 0x26, 0x3b, 0x36};
  struct sockaddr_storage a4, a6;
  qpeer__stun_writer w;
  uint8_t buf[256];
  (void)state;

  qpeer__stun_writer_init(&w, buf, sizeof(buf), QPEER__STUN_BINDING_REQUEST,
                          tid);
  w.pad = 0x20;
  qpeer__stun_add_software(&w, "STUN test client", 16);
  qpeer__stun_add_attr(&w, 0x0024, prio, sizeof(prio));
  qpeer__stun_add_attr(&w, 0x8029, ctl, sizeof(ctl));
  qpeer__stun_add_attr(&w, QPEER__STUN_ATTR_USERNAME, "evtj:h6vY", 9);
  qpeer__stun_add_integrity(&w, key, KEYLEN);
  assert_int_equal(qpeer__stun_writer_finish(&w, 1), sizeof(req_vec));
  assert_memory_equal(buf, req_vec, sizeof(req_vec));

  make_addr(&a4, "192.0.2.1", 32853);
  qpeer__stun_writer_init(&w, buf, sizeof(buf), QPEER__STUN_BINDING_SUCCESS,
                          tid);
  w.pad = 0x20;
  qpeer__stun_add_software(&w, "test vector", 11);
  qpeer__stun_add_xor_addr(&w, QPEER__STUN_ATTR_XOR_MAPPED_ADDRESS,
                           (struct sockaddr *)&a4);
  qpeer__stun_add_integrity(&w, key, KEYLEN);
  assert_int_equal(qpeer__stun_writer_finish(&w, 1), sizeof(resp4_vec));
  assert_memory_equal(buf, resp4_vec, sizeof(resp4_vec));

  make_addr(&a6, "2001:db8:1234:5678:11:2233:4455:6677", 32853);
  qpeer__stun_writer_init(&w, buf, sizeof(buf), QPEER__STUN_BINDING_SUCCESS,
                          tid);
  w.pad = 0x20;
  qpeer__stun_add_software(&w, "test vector", 11);
  qpeer__stun_add_xor_addr(&w, QPEER__STUN_ATTR_XOR_MAPPED_ADDRESS,
                           (struct sockaddr *)&a6);
  qpeer__stun_add_integrity(&w, key, KEYLEN);
  assert_int_equal(qpeer__stun_writer_finish(&w, 1), sizeof(resp6_vec));
  assert_memory_equal(buf, resp6_vec, sizeof(resp6_vec));
}

static void roundtrip_response(const char *mapped, const char *origin,
                               const char *other, int fp) {
  struct sockaddr_storage a, o, x;
  qpeer__stun_msg m;
  uint8_t buf[128];
  int n;
  make_addr(&a, mapped, 40000);
  make_addr(&o, origin, 3478);
  make_addr(&x, other, 3479);
  n = qpeer__stun_build_binding_response(
      buf, sizeof(buf), tid, (struct sockaddr *)&a, (struct sockaddr *)&o,
      (struct sockaddr *)&x, fp);
  assert_true(n > 0);
  assert_true(qpeer__stun_is_stun(buf, (size_t)n));
  assert_int_equal(qpeer__stun_decode(&m, buf, (size_t)n), 0);
  assert_int_equal(m.type, QPEER__STUN_BINDING_SUCCESS);
  assert_memory_equal(m.txid, tid, 12);
  assert_true(m.has_xor_mapped && m.has_response_origin && m.has_other_address);
  assert_false(m.has_mapped);
  assert_addr_eq(&m.xor_mapped, mapped, 40000);
  assert_addr_eq(&m.response_origin, origin, 3478);
  assert_addr_eq(&m.other_address, other, 3479);
  assert_int_equal(m.has_fingerprint, fp ? 1 : 0);
  assert_int_equal(m.fingerprint_ok, fp ? 1 : 0);
}

static void test_stun_msg_roundtrip(void **state) {
  struct sockaddr_storage a;
  qpeer__stun_msg m;
  qpeer__stun_writer w;
  uint8_t buf[512];
  int n;
  (void)state;
  roundtrip_response("203.0.113.9", "198.51.100.1", "198.51.100.2", 1);
  roundtrip_response("203.0.113.9", "198.51.100.1", "198.51.100.2", 0);
  roundtrip_response("2001:db8::1", "2001:db8::a", "2001:db8::b", 1);
  roundtrip_response("2001:db8::1", "198.51.100.1", "2001:db8::b", 0);

  /* An IPv4-mapped IPv6 address (dual-stack socket) is sent as IPv4. */
  make_addr(&a, "::ffff:192.0.2.77", 5000);
  n = qpeer__stun_build_binding_response(buf, sizeof(buf), tid,
                                         (struct sockaddr *)&a, NULL, NULL, 1);
  assert_int_equal(n, 20 + 12 + 8);
  assert_int_equal(qpeer__stun_decode(&m, buf, (size_t)n), 0);
  assert_addr_eq(&m.xor_mapped, "192.0.2.77", 5000);
  assert_false(m.has_response_origin);
  assert_false(m.has_other_address);

  /* Binding requests, plain and with CHANGE-REQUEST. */
  n = qpeer__stun_build_binding_request(buf, sizeof(buf), tid, 0, 0);
  assert_int_equal(n, 20);
  assert_int_equal(qpeer__stun_decode(&m, buf, (size_t)n), 0);
  assert_int_equal(m.type, QPEER__STUN_BINDING_REQUEST);
  assert_false(m.has_change_request);
  n = qpeer__stun_build_binding_request(
      buf, sizeof(buf), tid, QPEER__STUN_CHANGE_IP | QPEER__STUN_CHANGE_PORT,
      1);
  assert_int_equal(n, 20 + 8 + 8);
  assert_int_equal(qpeer__stun_decode(&m, buf, (size_t)n), 0);
  assert_true(m.has_change_request);
  assert_int_equal(m.change_flags, 0x06);
  assert_true(m.fingerprint_ok);

  /* Every other attribute the writer knows, with integrity. */
  qpeer__stun_writer_init(&w, buf, sizeof(buf), QPEER__STUN_BINDING_SUCCESS,
                          tid);
  make_addr(&a, "192.0.2.5", 1);
  qpeer__stun_add_addr(&w, QPEER__STUN_ATTR_MAPPED_ADDRESS,
                       (struct sockaddr *)&a);
  qpeer__stun_add_response_port(&w, 6000);
  qpeer__stun_add_padding(&w, 37);
  qpeer__stun_add_attr(&w, QPEER__STUN_ATTR_USERNAME, "user", 4);
  qpeer__stun_add_integrity(&w, key, KEYLEN);
  /* Nothing but FINGERPRINT may follow MESSAGE-INTEGRITY. */
  assert_int_equal(qpeer__stun_add_software(&w, "x", 1), UV_EINVAL);
  assert_int_equal(qpeer__stun_writer_finish(&w, 1), UV_EINVAL);
  qpeer__stun_writer_init(&w, buf, sizeof(buf), QPEER__STUN_BINDING_SUCCESS,
                          tid);
  qpeer__stun_add_addr(&w, QPEER__STUN_ATTR_MAPPED_ADDRESS,
                       (struct sockaddr *)&a);
  qpeer__stun_add_response_port(&w, 6000);
  qpeer__stun_add_padding(&w, 37);
  qpeer__stun_add_attr(&w, QPEER__STUN_ATTR_USERNAME, "user", 4);
  qpeer__stun_add_integrity(&w, key, KEYLEN);
  n = qpeer__stun_writer_finish(&w, 1);
  assert_int_equal(n, 20 + 12 + 8 + 44 + 8 + 24 + 8);
  assert_int_equal(qpeer__stun_decode(&m, buf, (size_t)n), 0);
  assert_true(m.has_mapped);
  assert_addr_eq(&m.mapped, "192.0.2.5", 1);
  assert_true(m.has_response_port);
  assert_int_equal(m.response_port, 6000);
  assert_true(m.has_padding);
  assert_int_equal(m.padding_len, 37);
  assert_int_equal(m.username_len, 4);
  assert_int_equal(
      qpeer__stun_verify_integrity(&m, buf, (size_t)n, key, KEYLEN), 0);
  /* A single flipped bit before MESSAGE-INTEGRITY breaks the HMAC (the
   * fingerprint is fixed up so that decoding still succeeds). */
  buf[20 + 12 + 8 + 10] ^= 1;
  qpeer__put_u32(buf + n - 4,
                 qpeer__stun_crc32(0, buf, (size_t)n - 8) ^ 0x5354554eu);
  assert_int_equal(qpeer__stun_decode(&m, buf, (size_t)n), 0);
  assert_int_equal(
      qpeer__stun_verify_integrity(&m, buf, (size_t)n, key, KEYLEN),
      QPEER_ECHECKSUM);
}

static void test_stun_msg_error_response(void **state) {
  qpeer__stun_msg req, m;
  uint8_t buf[128];
  const uint8_t *v;
  size_t vlen;
  int n;
  (void)state;
  assert_int_equal(qpeer__stun_decode(&req, req_vec, sizeof(req_vec)), 0);
  n = qpeer__stun_build_error_response(buf, sizeof(buf), &req, 420,
                                       "Unknown Attribute", 1);
  assert_true(n > 0);
  assert_int_equal(qpeer__stun_decode(&m, buf, (size_t)n), 0);
  assert_int_equal(m.type, QPEER__STUN_BINDING_ERROR);
  assert_memory_equal(m.txid, tid, 12);
  assert_true(m.has_error);
  assert_int_equal(m.error_code, 420);
  assert_int_equal(m.error_reason_len, 17);
  assert_memory_equal(m.error_reason, "Unknown Attribute", 17);
  assert_int_equal(m.unknown_count, 0); /* UNKNOWN-ATTRIBUTES is known */
  assert_int_equal(qpeer__stun_find_attr(buf, (size_t)n,
                                         QPEER__STUN_ATTR_UNKNOWN_ATTRIBUTES,
                                         &v, &vlen),
                   0);
  assert_int_equal(vlen, 2);
  assert_int_equal(qpeer__get_u16(v), 0x0024);
  assert_int_equal(qpeer__stun_find_attr(buf, (size_t)n,
                                         QPEER__STUN_ATTR_SOFTWARE, &v, &vlen),
                   UV_ENOENT);
  /* ICE PRIORITY is reachable through find_attr on the request. */
  assert_int_equal(
      qpeer__stun_find_attr(req_vec, sizeof(req_vec), 0x0024, &v, &vlen), 0);
  assert_int_equal(qpeer__get_u32(v), 0x6e0001ffu);

  n = qpeer__stun_build_error_response(buf, sizeof(buf), &req, 400, NULL, 0);
  assert_int_equal(n, 20 + 8);
  assert_int_equal(qpeer__stun_decode(&m, buf, (size_t)n), 0);
  assert_int_equal(m.error_code, 400);
  assert_int_equal(m.error_reason_len, 0);
  assert_int_equal(
      qpeer__stun_build_error_response(buf, sizeof(buf), &req, 299, "x", 0),
      UV_EINVAL);
  assert_int_equal(
      qpeer__stun_build_error_response(buf, sizeof(buf), &req, 700, "x", 0),
      UV_EINVAL);
}

/* Every strict prefix of a valid message is rejected as truncated. */
static void test_stun_msg_truncation(void **state) {
  static const uint8_t *vecs[3] = {req_vec, resp4_vec, resp6_vec};
  static const size_t lens[3] = {sizeof(req_vec), sizeof(resp4_vec),
                                 sizeof(resp6_vec)};
  qpeer__stun_msg m;
  (void)state;
  for (size_t v = 0; v < 3; v++) {
    for (size_t len = 0; len < lens[v]; len++) {
      uint8_t copy[128];
      memcpy(copy, vecs[v], len);
      assert_int_equal(qpeer__stun_decode(&m, copy, len), QPEER_ETRUNCATED);
      assert_false(qpeer__stun_is_stun(copy, len));
    }
  }
}

static void test_stun_msg_bad_fingerprint(void **state) {
  qpeer__stun_msg m;
  uint8_t buf[sizeof(resp4_vec)];
  (void)state;
  memcpy(buf, resp4_vec, sizeof(buf));
  buf[sizeof(buf) - 1] ^= 0x01;
  assert_int_equal(qpeer__stun_decode(&m, buf, sizeof(buf)), QPEER_ECHECKSUM);
  assert_true(m.has_fingerprint);
  assert_false(m.fingerprint_ok);
  assert_true(m.has_xor_mapped); /* the rest was decoded */
  /* A flipped bit in the body breaks the fingerprint too. */
  memcpy(buf, resp4_vec, sizeof(buf));
  buf[30] ^= 0x80;
  assert_int_equal(qpeer__stun_decode(&m, buf, sizeof(buf)), QPEER_ECHECKSUM);
  /* FINGERPRINT with a wrong length is malformed, not a checksum error. */
  memcpy(buf, resp4_vec, sizeof(buf));
  buf[sizeof(buf) - 5] = 0x03;
  assert_int_equal(qpeer__stun_decode(&m, buf, sizeof(buf)), QPEER_EMALFORMED);
}

static void test_stun_msg_fingerprint_not_last(void **state) {
  qpeer__stun_writer w;
  qpeer__stun_msg m;
  uint8_t buf[64];
  int n;
  (void)state;
  n = qpeer__stun_build_binding_request(buf, sizeof(buf), tid, 0, 1);
  assert_int_equal(n, 28);
  /* Append a SOFTWARE attribute after FINGERPRINT by hand. */
  qpeer__put_u16(buf + 28, QPEER__STUN_ATTR_SOFTWARE);
  qpeer__put_u16(buf + 30, 4);
  memcpy(buf + 32, "abcd", 4);
  qpeer__put_u16(buf + 2, 16);
  assert_int_equal(qpeer__stun_decode(&m, buf, 36), QPEER_EMALFORMED);
  /* The writer refuses to add anything after FINGERPRINT. */
  qpeer__stun_writer_init(&w, buf, sizeof(buf), QPEER__STUN_BINDING_REQUEST,
                          tid);
  assert_int_equal(qpeer__stun_writer_finish(&w, 1), 28);
  assert_int_equal(qpeer__stun_add_software(&w, "x", 1), UV_EINVAL);
}

/* Builds a 20-byte header plus |attrs| into |buf|; returns the length. */
static size_t build_raw(uint8_t *buf, const uint8_t *attrs, size_t alen) {
  qpeer__put_u16(buf, QPEER__STUN_BINDING_SUCCESS);
  qpeer__put_u16(buf + 2, (uint16_t)alen);
  qpeer__put_u32(buf + 4, QPEER__STUN_MAGIC_COOKIE);
  memcpy(buf + 8, tid, 12);
  memcpy(buf + 20, attrs, alen);
  return 20 + alen;
}

static void test_stun_msg_malformed(void **state) {
  static const uint8_t bad_family[] = {0x00, 0x20, 0x00, 0x08, 0x00, 0x03,
                                       0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43};
  static const uint8_t v4_long[] = {
      0x00, 0x01, 0x00, 0x0c, 0x00, 0x01, 0x00, 0x50, 1, 2, 3, 4, 0, 0, 0, 0};
  static const uint8_t v6_short[] = {0x00, 0x20, 0x00, 0x08, 0x00, 0x02,
                                     0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43};
  static const uint8_t overrun[] = {0x80, 0x22, 0x00, 0x09, 'a', 'b',
                                    'c',  'd',  'e',  'f',  'g', 'h'};
  static const uint8_t overrun2[] = {0x80, 0x22, 0x01, 0x00,
                                     'a',  'b',  'c',  'd'};
  static const uint8_t bad_err[] = {0x00, 0x09, 0x00, 0x04,
                                    0x00, 0x00, 0x07, 0x00};
  static const uint8_t bad_err2[] = {0x00, 0x09, 0x00, 0x04,
                                     0x00, 0x00, 0x04, 100};
  static const uint8_t short_err[] = {0x00, 0x09, 0x00, 0x02,
                                      0x00, 0x00, 0x00, 0x00};
  static const uint8_t bad_change[] = {0x00, 0x03, 0x00, 0x02,
                                       0x00, 0x06, 0x00, 0x00};
  static const uint8_t bad_mi[] = {0x00, 0x08, 0x00, 0x04,
                                   0x00, 0x00, 0x00, 0x00};
  static const uint8_t odd_unknown[] = {0x00, 0x0a, 0x00, 0x03,
                                        0x00, 0x24, 0x80, 0x00};
  static const struct {
    const uint8_t *a; /* attribute bytes */
    size_t n;         /* their length */
  } cases[] = {
      {bad_family, sizeof(bad_family)},   {v4_long, sizeof(v4_long)},
      {v6_short, sizeof(v6_short)},       {overrun, sizeof(overrun)},
      {overrun2, sizeof(overrun2)},       {bad_err, sizeof(bad_err)},
      {bad_err2, sizeof(bad_err2)},       {short_err, sizeof(short_err)},
      {bad_change, sizeof(bad_change)},   {bad_mi, sizeof(bad_mi)},
      {odd_unknown, sizeof(odd_unknown)},
  };
  qpeer__stun_msg m;
  uint8_t buf[128];
  size_t n;
  (void)state;
  for (size_t i = 0; i < QPEER__ARRAY_SIZE(cases); i++) {
    n = build_raw(buf, cases[i].a, cases[i].n);
    assert_true(qpeer__stun_is_stun(buf, n));
    assert_int_equal(qpeer__stun_decode(&m, buf, n), QPEER_EMALFORMED);
  }

  /* Header length not a multiple of 4 (datagram sized to match). */
  n = build_raw(buf, overrun, 6);
  assert_false(qpeer__stun_is_stun(buf, n));
  assert_int_equal(qpeer__stun_decode(&m, buf, n), QPEER_EMALFORMED);
  /* Trailing bytes after the message. */
  n = build_raw(buf, (const uint8_t *)"", 0);
  memset(buf + n, 0, 4);
  assert_false(qpeer__stun_is_stun(buf, n + 4));
  assert_int_equal(qpeer__stun_decode(&m, buf, n + 4), QPEER_EMALFORMED);
  /* Top bits of the type set. */
  n = build_raw(buf, (const uint8_t *)"", 0);
  buf[0] |= 0x40;
  assert_int_equal(qpeer__stun_decode(&m, buf, n), QPEER_EMALFORMED);
  /* No magic cookie: an RFC 3489 message. */
  n = build_raw(buf, (const uint8_t *)"", 0);
  buf[4] ^= 0xff;
  assert_int_equal(qpeer__stun_decode(&m, buf, n), QPEER_EUNSUPPORTED);
  /* A malformed duplicate is rejected even though only the first counts. */
  {
    uint8_t two[24];
    memcpy(two, resp4_vec + 36, 12);
    memcpy(two + 12, bad_family, 12);
    n = build_raw(buf, two, sizeof(two));
    assert_int_equal(qpeer__stun_decode(&m, buf, n), QPEER_EMALFORMED);
  }
}

/* Attributes after MESSAGE-INTEGRITY (other than FINGERPRINT) are not
 * interpreted: neither decoded nor counted as unknown. */
static void test_stun_msg_after_integrity(void **state) {
  struct sockaddr_storage a;
  qpeer__stun_writer w;
  qpeer__stun_msg m;
  uint8_t buf[128];
  size_t off;
  int n;
  (void)state;
  make_addr(&a, "192.0.2.1", 1000);
  qpeer__stun_writer_init(&w, buf, sizeof(buf), QPEER__STUN_BINDING_SUCCESS,
                          tid);
  qpeer__stun_add_integrity(&w, key, KEYLEN);
  n = qpeer__stun_writer_finish(&w, 0);
  assert_int_equal(n, 44);
  /* Hand-append XOR-MAPPED-ADDRESS and an unknown required attribute. */
  off = (size_t)n;
  qpeer__put_u16(buf + off, QPEER__STUN_ATTR_XOR_MAPPED_ADDRESS);
  qpeer__put_u16(buf + off + 2, 8);
  memcpy(buf + off + 4, resp4_vec + 40, 8);
  qpeer__put_u16(buf + off + 12, 0x0777);
  qpeer__put_u16(buf + off + 14, 0);
  off += 16;
  qpeer__put_u16(buf + 2, (uint16_t)(off - 20));
  assert_int_equal(qpeer__stun_decode(&m, buf, off), 0);
  assert_true(m.has_integrity);
  assert_int_equal(m.integrity_offset, 20);
  assert_false(m.has_xor_mapped);
  assert_int_equal(m.unknown_count, 0);
  /* The HMAC still verifies: it only covers up to MESSAGE-INTEGRITY. */
  assert_int_equal(qpeer__stun_verify_integrity(&m, buf, off, key, KEYLEN), 0);
}

static void test_stun_msg_unknown(void **state) {
  uint8_t attrs[4 * 12];
  qpeer__stun_msg m;
  uint8_t buf[128];
  size_t n;
  (void)state;
  /* Ten unknown required attributes and two unknown optional ones. */
  for (int i = 0; i < 12; i++) {
    qpeer__put_u16(attrs + 4 * i, (uint16_t)(i < 10 ? 0x7f00 + i : 0xc000));
    qpeer__put_u16(attrs + 4 * i + 2, 0);
  }
  n = build_raw(buf, attrs, sizeof(attrs));
  assert_int_equal(qpeer__stun_decode(&m, buf, n), 0);
  assert_int_equal(m.unknown_count, 10);
  for (int i = 0; i < QPEER__STUN_MAX_UNKNOWN; i++)
    assert_int_equal(m.unknown[i], 0x7f00 + i);
}

/* The writer never writes past the buffer and reports UV_ENOBUFS. */
static void test_stun_msg_writer_bounds(void **state) {
  struct sockaddr_storage a, o, x;
  uint8_t buf[256];
  int full;
  (void)state;
  make_addr(&a, "2001:db8::1", 1);
  make_addr(&o, "2001:db8::2", 2);
  make_addr(&x, "2001:db8::3", 3);
  full = qpeer__stun_build_binding_response(
      buf, sizeof(buf), tid, (struct sockaddr *)&a, (struct sockaddr *)&o,
      (struct sockaddr *)&x, 1);
  assert_int_equal(full, 20 + 3 * 24 + 8);
  for (int cap = 0; cap < full; cap++) {
    memset(buf, 0xa5, sizeof(buf));
    assert_int_equal(qpeer__stun_build_binding_response(
                         buf, (size_t)cap, tid, (struct sockaddr *)&a,
                         (struct sockaddr *)&o, (struct sockaddr *)&x, 1),
                     UV_ENOBUFS);
    for (size_t i = (size_t)cap; i < sizeof(buf); i++)
      assert_int_equal(buf[i], 0xa5);
  }
  for (int cap = 0; cap < 28; cap++)
    assert_int_equal(
        qpeer__stun_build_binding_request(buf, (size_t)cap, tid, 0, 1),
        UV_ENOBUFS);
  {
    qpeer__stun_writer w;
    struct sockaddr bad;
    static uint8_t big[70000];
    memset(&bad, 0, sizeof(bad));
    bad.sa_family = AF_UNIX;
    qpeer__stun_writer_init(&w, buf, sizeof(buf), QPEER__STUN_BINDING_SUCCESS,
                            tid);
    assert_int_equal(
        qpeer__stun_add_xor_addr(&w, QPEER__STUN_ATTR_XOR_MAPPED_ADDRESS, &bad),
        UV_EINVAL);
    /* Errors are sticky. */
    assert_int_equal(qpeer__stun_writer_finish(&w, 1), UV_EINVAL);
    assert_int_equal(qpeer__stun_writer_init(&w, buf, sizeof(buf), 0x4001, tid),
                     UV_EINVAL);
    /* The 16-bit length field caps the message even with a big buffer. */
    qpeer__stun_writer_init(&w, big, sizeof(big), QPEER__STUN_BINDING_SUCCESS,
                            tid);
    assert_int_equal(qpeer__stun_add_padding(&w, 0xfff8), 0);
    assert_int_equal(qpeer__stun_add_padding(&w, 0), UV_ENOBUFS);
    qpeer__stun_writer_init(&w, big, sizeof(big), QPEER__STUN_BINDING_SUCCESS,
                            tid);
    assert_int_equal(qpeer__stun_add_padding(&w, 0x10000), UV_EINVAL);
  }
}

static void test_stun_msg_classifier(void **state) {
  uint8_t pkt[1200];
  (void)state;
  assert_true(qpeer__stun_is_stun(req_vec, sizeof(req_vec)));
  assert_true(qpeer__stun_is_stun(resp4_vec, sizeof(resp4_vec)));
  assert_true(qpeer__stun_is_stun(resp6_vec, sizeof(resp6_vec)));
  assert_false(qpeer__stun_is_stun(resp6_vec, sizeof(resp6_vec) - 4));
  assert_false(qpeer__stun_is_stun(NULL, 0));

  /* QUIC short headers with a greased QUIC bit: first byte 0x00-0x3f,
   * then a DCID and protected payload. None of them is STUN. */
  for (unsigned b0 = 0; b0 < 0x40; b0++) {
    for (size_t i = 0; i < sizeof(pkt); i++)
      pkt[i] = (uint8_t)(i * 37 + b0);
    pkt[0] = (uint8_t)b0;
    assert_false(qpeer__stun_is_stun(pkt, sizeof(pkt)));
    assert_false(qpeer__stun_is_stun(pkt, 40));
    /* Even with a length field that happens to match the datagram, the
     * missing cookie keeps it out. */
    qpeer__put_u16(pkt + 2, 20);
    assert_false(qpeer__stun_is_stun(pkt, 40));
  }
  /* Long headers and ordinary short headers. */
  memcpy(pkt, resp4_vec, sizeof(resp4_vec));
  pkt[0] = 0xc1;
  assert_false(qpeer__stun_is_stun(pkt, sizeof(resp4_vec)));
  pkt[0] = 0x41;
  assert_false(qpeer__stun_is_stun(pkt, sizeof(resp4_vec)));
  pkt[0] = 0x01;
  assert_true(qpeer__stun_is_stun(pkt, sizeof(resp4_vec)));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stun_msg_crc32),
      cmocka_unit_test(test_stun_msg_type_helpers),
      cmocka_unit_test(test_stun_msg_decode_rfc5769_request),
      cmocka_unit_test(test_stun_msg_decode_rfc5769_ipv4),
      cmocka_unit_test(test_stun_msg_decode_rfc5769_ipv6),
      cmocka_unit_test(test_stun_msg_encode_rfc5769),
      cmocka_unit_test(test_stun_msg_roundtrip),
      cmocka_unit_test(test_stun_msg_error_response),
      cmocka_unit_test(test_stun_msg_truncation),
      cmocka_unit_test(test_stun_msg_bad_fingerprint),
      cmocka_unit_test(test_stun_msg_fingerprint_not_last),
      cmocka_unit_test(test_stun_msg_malformed),
      cmocka_unit_test(test_stun_msg_after_integrity),
      cmocka_unit_test(test_stun_msg_unknown),
      cmocka_unit_test(test_stun_msg_writer_bounds),
      cmocka_unit_test(test_stun_msg_classifier),
  };
  return cmocka_run_group_tests_name("stun_msg", tests, NULL, NULL);
}
