/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/nat/pcp_msg.c: PCP (RFC 6887) MAP and ANNOUNCE
 * requests byte for byte, responses as miniupnpd sends them, IPv4-mapped
 * and IPv6 addresses, options, the NAT-PMP (RFC 6886) replies a PCP client
 * must recognise, malformed and truncated input, and the PCP and NAT-PMP
 * epoch rules.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "nat/pcp_msg.h"

static const uint8_t nonce[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

/* clang-format off */
/* MAP request: UDP 41001 for 7200 s from 10.0.1.2, suggesting 41001 and no
 * external address (RFC 6887 §11.1). */
static const uint8_t map_req_vec[] = {
    0x02, 0x01, 0x00, 0x00,                         /* v2, MAP, reserved */
    0x00, 0x00, 0x1c, 0x20,                         /* lifetime 7200 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,       /* client ::ffff: */
    10, 0, 1, 2,                                    /* 10.0.1.2 */
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,          /* nonce */
    0x11, 0x00, 0x00, 0x00,                         /* UDP, reserved */
    0xa0, 0x29, 0xa0, 0x29,                         /* 41001 -> 41001 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,       /* ::ffff:0.0.0.0 */
    0, 0, 0, 0};

/* The success response miniupnpd gives: lifetime 120 (its minimum),
 * epoch 5, 203.0.113.2:41001. */
static const uint8_t map_resp_vec[] = {
    0x02, 0x81, 0x00, 0x00,                         /* v2, R|MAP, SUCCESS */
    0x00, 0x00, 0x00, 0x78,                         /* lifetime 120 */
    0x00, 0x00, 0x00, 0x05,                         /* epoch 5 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,             /* reserved */
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,          /* nonce */
    0x11, 0x00, 0x00, 0x00,
    0xa0, 0x29, 0xa0, 0x29,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
    203, 0, 113, 2};

/* NAT-PMP public address response: epoch 42, 203.0.113.2 (RFC 6886 §3.2). */
static const uint8_t natpmp_addr_vec[] = {
    0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, 203, 0, 113, 2};

/* NAT-PMP UDP mapping response: 41001 -> 41001 for 7200 s (§3.3). */
static const uint8_t natpmp_map_vec[] = {
    0x00, 0x81, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,
    0xa0, 0x29, 0xa0, 0x29, 0x00, 0x00, 0x1c, 0x20};

/* A NAT-PMP-only gateway's answer to a PCP request: version 0,
 * "Unsupported Version" (RFC 6886 §3.5, RFC 6887 §9). */
static const uint8_t natpmp_unsupp_vec[] = {
    0x00, 0x81, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2a};
/* clang-format on */

static void set4(struct sockaddr_storage *ss, const char *ip) {
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  memset(ss, 0, sizeof(*ss));
  s4->sin_family = AF_INET;
  assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
}

static void set6(struct sockaddr_storage *ss, const char *ip) {
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  memset(ss, 0, sizeof(*ss));
  s6->sin6_family = AF_INET6;
  assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
}

static void assert_ip4(const struct sockaddr_storage *ss, const char *ip) {
  char buf[64];
  assert_int_equal(ss->ss_family, AF_INET);
  inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf,
            sizeof(buf));
  assert_string_equal(buf, ip);
}

static void make_map_req(qpeer__pcp_request *r) {
  memset(r, 0, sizeof(*r));
  r->opcode = QPEER__PCP_OP_MAP;
  r->lifetime = 7200;
  set4(&r->client, "10.0.1.2");
  memcpy(r->nonce, nonce, sizeof(nonce));
  r->protocol = 17;
  r->internal_port = 41001;
  r->external_port = 41001;
}

static void test_pcp_msg_encode_map(void **state) {
  qpeer__pcp_request r, d;
  uint8_t buf[128];
  (void)state;
  make_map_req(&r);
  assert_int_equal(qpeer__pcp_encode_request(buf, sizeof(buf), &r), 60);
  assert_memory_equal(buf, map_req_vec, sizeof(map_req_vec));
  /* It decodes back to the same request. */
  assert_int_equal(qpeer__pcp_decode_request(&d, buf, 60), 0);
  assert_int_equal(d.opcode, QPEER__PCP_OP_MAP);
  assert_int_equal(d.lifetime, 7200);
  assert_ip4(&d.client, "10.0.1.2");
  assert_memory_equal(d.nonce, nonce, 12);
  assert_int_equal(d.protocol, 17);
  assert_int_equal(d.internal_port, 41001);
  assert_int_equal(d.external_port, 41001);
  assert_ip4(&d.external, "0.0.0.0");
  assert_int_equal(d.prefer_failure, 0);
  /* Too small a buffer. */
  assert_int_equal(qpeer__pcp_encode_request(buf, 59, &r), UV_ENOBUFS);
}

static void test_pcp_msg_encode_variants(void **state) {
  qpeer__pcp_request r, d;
  uint8_t buf[128];
  (void)state;
  /* A delete: lifetime 0, same nonce, suggesting nothing. */
  make_map_req(&r);
  r.lifetime = 0;
  r.external_port = 0;
  assert_int_equal(qpeer__pcp_encode_request(buf, sizeof(buf), &r), 60);
  assert_int_equal(qpeer__pcp_decode_request(&d, buf, 60), 0);
  assert_int_equal(d.lifetime, 0);
  assert_memory_equal(d.nonce, nonce, 12);
  /* A suggested external address and PREFER_FAILURE (64 bytes). */
  make_map_req(&r);
  set4(&r.external, "203.0.113.2");
  r.prefer_failure = 1;
  assert_int_equal(qpeer__pcp_encode_request(buf, sizeof(buf), &r), 64);
  assert_int_equal(buf[60], QPEER__PCP_OPT_PREFER_FAILURE);
  assert_int_equal(qpeer__pcp_decode_request(&d, buf, 64), 0);
  assert_int_equal(d.prefer_failure, 1);
  assert_ip4(&d.external, "203.0.113.2");
  /* An IPv6 client: no preference is "::", not IPv4-mapped. */
  make_map_req(&r);
  set6(&r.client, "2001:db8::2");
  assert_int_equal(qpeer__pcp_encode_request(buf, sizeof(buf), &r), 60);
  assert_int_equal(buf[8], 0x20);
  {
    static const uint8_t zero[16] = {0};
    assert_memory_equal(buf + 24 + 20, zero, 16);
  }
  assert_int_equal(qpeer__pcp_decode_request(&d, buf, 60), 0);
  assert_int_equal(d.client.ss_family, AF_INET6);
  assert_int_equal(d.external.ss_family, AF_INET6);
  /* A suggested address of the other family is refused. */
  set4(&r.external, "203.0.113.2");
  assert_int_equal(qpeer__pcp_encode_request(buf, sizeof(buf), &r), UV_EINVAL);
  /* ANNOUNCE: the 24-byte header alone, lifetime 0. */
  memset(&r, 0, sizeof(r));
  r.opcode = QPEER__PCP_OP_ANNOUNCE;
  set4(&r.client, "10.0.1.2");
  assert_int_equal(qpeer__pcp_encode_request(buf, sizeof(buf), &r), 24);
  assert_int_equal(buf[0], 2);
  assert_int_equal(buf[1], 0);
  assert_int_equal(qpeer__pcp_decode_request(&d, buf, 24), 0);
  assert_int_equal(d.opcode, QPEER__PCP_OP_ANNOUNCE);
  /* Unknown opcode, unknown family. */
  r.opcode = QPEER__PCP_OP_PEER;
  assert_int_equal(qpeer__pcp_encode_request(buf, sizeof(buf), &r), UV_EINVAL);
  r.opcode = QPEER__PCP_OP_ANNOUNCE;
  r.client.ss_family = AF_UNIX;
  assert_int_equal(qpeer__pcp_encode_request(buf, sizeof(buf), &r), UV_EINVAL);
}

static void test_pcp_msg_decode_map_response(void **state) {
  qpeer__pcp_response res;
  uint8_t buf[128];
  int n;
  (void)state;
  assert_int_equal(
      qpeer__pcp_decode_response(&res, map_resp_vec, sizeof(map_resp_vec)), 0);
  assert_int_equal(res.version, 2);
  assert_int_equal(res.opcode, QPEER__PCP_OP_MAP);
  assert_int_equal(res.result, QPEER__PCP_SUCCESS);
  assert_int_equal(res.lifetime, 120);
  assert_int_equal(res.epoch, 5);
  assert_true(res.has_map);
  assert_memory_equal(res.nonce, nonce, 12);
  assert_int_equal(res.protocol, 17);
  assert_int_equal(res.internal_port, 41001);
  assert_int_equal(res.external_port, 41001);
  assert_ip4(&res.external, "203.0.113.2");
  assert_int_equal(res.options, 0);
  /* The encoder produces the same bytes. */
  n = qpeer__pcp_encode_response(buf, sizeof(buf), &res);
  assert_int_equal(n, (int)sizeof(map_resp_vec));
  assert_memory_equal(buf, map_resp_vec, sizeof(map_resp_vec));
}

static void test_pcp_msg_error_responses(void **state) {
  qpeer__pcp_response res;
  uint8_t buf[128];
  (void)state;
  /* NOT_AUTHORIZED (a delete with another nonce), payload echoed. */
  memcpy(buf, map_resp_vec, sizeof(map_resp_vec));
  buf[3] = QPEER__PCP_NOT_AUTHORIZED;
  memset(buf + 4, 0, 4);
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, sizeof(map_resp_vec)),
                   0);
  assert_int_equal(res.result, QPEER__PCP_NOT_AUTHORIZED);
  assert_true(res.has_map);
  assert_string_equal(qpeer__pcp_result_name(res.result), "NOT_AUTHORIZED");
  assert_false(qpeer__pcp_result_is_transient(res.result));
  /* An error may come without the MAP payload; a success may not. */
  buf[3] = QPEER__PCP_NO_RESOURCES;
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, 24), 0);
  assert_false(res.has_map);
  assert_true(qpeer__pcp_result_is_transient(res.result));
  buf[3] = QPEER__PCP_SUCCESS;
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, 24), QPEER_EMALFORMED);
  /* ANNOUNCE response: header only. */
  memset(buf, 0, 24);
  buf[0] = 2;
  buf[1] = 0x80;
  buf[11] = 9;
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, 24), 0);
  assert_int_equal(res.opcode, QPEER__PCP_OP_ANNOUNCE);
  assert_int_equal(res.epoch, 9);
  assert_string_equal(qpeer__pcp_result_name(13), "EXCESSIVE_REMOTE_PEERS");
  assert_string_equal(qpeer__pcp_result_name(200), "UNKNOWN");
}

static void test_pcp_msg_options(void **state) {
  qpeer__pcp_response res;
  uint8_t buf[160];
  size_t n = sizeof(map_resp_vec);
  (void)state;
  memcpy(buf, map_resp_vec, n);
  /* PREFER_FAILURE (length 0) then an unknown optional option of 5 bytes
   * (padded to 8). */
  memcpy(buf + n, "\x02\x00\x00\x00", 4);
  memcpy(buf + n + 4,
         "\x80\x00\x00\x05"
         "abcde\0\0\0",
         12);
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, n + 16), 0);
  assert_int_equal(res.options, 2);
  assert_true(res.prefer_failure);
  /* An option running past the end. */
  buf[n + 4 + 3] = 9;
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, n + 16),
                   QPEER_EMALFORMED);
  /* PREFER_FAILURE with data, THIRD_PARTY with the wrong length. */
  memcpy(buf + n,
         "\x02\x00\x00\x04"
         "abcd",
         8);
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, n + 8),
                   QPEER_EMALFORMED);
  memcpy(buf + n,
         "\x01\x00\x00\x04"
         "abcd",
         8);
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, n + 8),
                   QPEER_EMALFORMED);
  /* FILTER with its 20 bytes is fine. */
  memset(buf + n, 0, 24);
  buf[n] = QPEER__PCP_OPT_FILTER;
  buf[n + 3] = 20;
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, n + 24), 0);
  assert_int_equal(res.options, 1);
}

static void test_pcp_msg_malformed(void **state) {
  qpeer__pcp_response res;
  qpeer__pcp_request req;
  uint8_t buf[1200];
  (void)state;
  memset(buf, 0, sizeof(buf));
  memcpy(buf, map_resp_vec, sizeof(map_resp_vec));
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, 0), QPEER_ETRUNCATED);
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, 20), QPEER_ETRUNCATED);
  /* Not a multiple of 4; over 1100 bytes. */
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, 61), QPEER_EMALFORMED);
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, 1104),
                   QPEER_EMALFORMED);
  /* A request (R bit clear) is not a response, and vice versa. */
  buf[1] = QPEER__PCP_OP_MAP;
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, 60), QPEER_EMALFORMED);
  assert_int_equal(qpeer__pcp_decode_request(&req, map_resp_vec, 60),
                   QPEER_EMALFORMED);
  /* PCP version 1 and unknown opcodes are unsupported. */
  buf[1] = 0x81;
  buf[0] = 1;
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, 60),
                   QPEER_EUNSUPPORTED);
  buf[0] = 2;
  buf[1] = 0x82; /* PEER */
  assert_int_equal(qpeer__pcp_decode_response(&res, buf, 60),
                   QPEER_EUNSUPPORTED);
  /* A MAP request cut short. */
  assert_int_equal(qpeer__pcp_decode_request(&req, map_req_vec, 56),
                   QPEER_ETRUNCATED);
  /* Every truncation of the valid response fails cleanly. */
  {
    size_t i;
    for (i = 0; i < sizeof(map_resp_vec); i++)
      assert_int_not_equal(qpeer__pcp_decode_response(&res, map_resp_vec, i),
                           0);
  }
}

static void test_pcp_msg_natpmp_replies(void **state) {
  qpeer__pcp_response res;
  (void)state;
  /* Public address. */
  assert_int_equal(qpeer__pcp_decode_response(&res, natpmp_addr_vec,
                                              sizeof(natpmp_addr_vec)),
                   0);
  assert_int_equal(res.version, 0);
  assert_int_equal(res.opcode, QPEER__NATPMP_OP_PUBLIC_ADDR);
  assert_int_equal(res.result, 0);
  assert_int_equal(res.epoch, 42);
  assert_ip4(&res.external, "203.0.113.2");
  /* UDP mapping. */
  assert_int_equal(
      qpeer__pcp_decode_response(&res, natpmp_map_vec, sizeof(natpmp_map_vec)),
      0);
  assert_int_equal(res.opcode, QPEER__NATPMP_OP_MAP_UDP);
  assert_true(res.has_map);
  assert_int_equal(res.protocol, 17);
  assert_int_equal(res.internal_port, 41001);
  assert_int_equal(res.external_port, 41001);
  assert_int_equal(res.lifetime, 7200);
  /* The "Unsupported Version" answer to a PCP request. */
  assert_int_equal(qpeer__pcp_decode_response(&res, natpmp_unsupp_vec,
                                              sizeof(natpmp_unsupp_vec)),
                   0);
  assert_int_equal(res.version, 0);
  assert_int_equal(res.result, 1);
  assert_false(res.has_map);
  /* Truncated NAT-PMP replies; a request (no response bit). */
  assert_int_equal(qpeer__pcp_decode_response(&res, natpmp_addr_vec, 7),
                   QPEER_ETRUNCATED);
  assert_int_equal(qpeer__pcp_decode_response(&res, natpmp_addr_vec, 11),
                   QPEER_ETRUNCATED);
  assert_int_equal(qpeer__pcp_decode_response(&res, natpmp_map_vec, 15),
                   QPEER_ETRUNCATED);
  {
    static const uint8_t req[] = {0,    1,    0, 0, 0xc3, 0x50,
                                  0xc3, 0x50, 0, 0, 0x1c, 0x20};
    assert_int_equal(qpeer__pcp_decode_response(&res, req, sizeof(req)),
                     QPEER_EMALFORMED);
  }
  /* An unknown NAT-PMP opcode. */
  {
    uint8_t b[16];
    memcpy(b, natpmp_map_vec, 16);
    b[1] = 0x85;
    assert_int_equal(qpeer__pcp_decode_response(&res, b, 16),
                     QPEER_EUNSUPPORTED);
  }
}

static void test_pcp_msg_ipv6_response(void **state) {
  qpeer__pcp_response res, d;
  uint8_t buf[128];
  int n;
  (void)state;
  memset(&res, 0, sizeof(res));
  res.version = 2;
  res.opcode = QPEER__PCP_OP_MAP;
  res.lifetime = 600;
  res.epoch = 77;
  memcpy(res.nonce, nonce, 12);
  res.protocol = 17;
  res.internal_port = 5000;
  res.external_port = 5000;
  set6(&res.external, "2001:db8::5");
  res.prefer_failure = 1;
  n = qpeer__pcp_encode_response(buf, sizeof(buf), &res);
  assert_int_equal(n, 64);
  assert_int_equal(qpeer__pcp_decode_response(&d, buf, (size_t)n), 0);
  assert_int_equal(d.external.ss_family, AF_INET6);
  assert_memory_equal(&((struct sockaddr_in6 *)&d.external)->sin6_addr,
                      &((struct sockaddr_in6 *)&res.external)->sin6_addr, 16);
  assert_true(d.prefer_failure);
  /* Encoder refuses what it cannot express. */
  res.version = 0;
  assert_int_equal(qpeer__pcp_encode_response(buf, sizeof(buf), &res),
                   UV_EINVAL);
  res.version = 2;
  res.result = 300;
  assert_int_equal(qpeer__pcp_encode_response(buf, sizeof(buf), &res),
                   UV_EINVAL);
  res.result = 0;
  assert_int_equal(qpeer__pcp_encode_response(buf, 63, &res), UV_ENOBUFS);
}

static void test_pcp_msg_epoch_pcp(void **state) {
  qpeer__epoch e;
  (void)state;
  memset(&e, 0, sizeof(e));
  assert_int_equal(qpeer__pcp_epoch_update(&e, 100, 0), 0); /* first */
  /* Both clocks advanced a minute. */
  assert_int_equal(qpeer__pcp_epoch_update(&e, 160, 60000), 0);
  /* A second back is tolerated; two are not. */
  assert_int_equal(qpeer__pcp_epoch_update(&e, 159, 61000), 0);
  assert_int_equal(qpeer__pcp_epoch_update(&e, 157, 62000), 1);
  /* After a reboot: epoch near zero. */
  memset(&e, 0, sizeof(e));
  qpeer__pcp_epoch_update(&e, 100, 0);
  assert_int_equal(qpeer__pcp_epoch_update(&e, 10, 60000), 1);
  /* The server's clock advanced far less than ours (rebooted in between
   * and already counted up to about the old value). */
  memset(&e, 0, sizeof(e));
  qpeer__pcp_epoch_update(&e, 100, 0);
  assert_int_equal(qpeer__pcp_epoch_update(&e, 101, 60000), 1);
  /* ... or far more. */
  memset(&e, 0, sizeof(e));
  qpeer__pcp_epoch_update(&e, 100, 0);
  assert_int_equal(qpeer__pcp_epoch_update(&e, 200, 1000), 1);
  /* Within 2 s + 1/16 either way is fine. */
  memset(&e, 0, sizeof(e));
  qpeer__pcp_epoch_update(&e, 100, 0);
  assert_int_equal(qpeer__pcp_epoch_update(&e, 163, 60000), 0);
  assert_int_equal(qpeer__pcp_epoch_update(&e, 220, 120000), 0);
  /* The new response becomes the reference. */
  assert_int_equal(e.epoch, 220);
  assert_int_equal(e.at_ms, 120000);
}

static void test_pcp_msg_epoch_natpmp(void **state) {
  qpeer__epoch e;
  (void)state;
  memset(&e, 0, sizeof(e));
  assert_int_equal(qpeer__natpmp_epoch_update(&e, 100, 0), 0);
  /* Expected at least 100 + 7/8 * 60 = 152.5, minus 2 s of slack. */
  assert_int_equal(qpeer__natpmp_epoch_update(&e, 153, 60000), 0);
  memset(&e, 0, sizeof(e));
  qpeer__natpmp_epoch_update(&e, 100, 0);
  assert_int_equal(qpeer__natpmp_epoch_update(&e, 150, 60000), 1);
  /* A reboot. */
  memset(&e, 0, sizeof(e));
  qpeer__natpmp_epoch_update(&e, 5000, 0);
  assert_int_equal(qpeer__natpmp_epoch_update(&e, 3, 10000), 1);
  /* Quick successive replies. */
  memset(&e, 0, sizeof(e));
  qpeer__natpmp_epoch_update(&e, 7, 0);
  assert_int_equal(qpeer__natpmp_epoch_update(&e, 7, 300), 0);
  assert_int_equal(qpeer__natpmp_epoch_update(&e, 9, 2000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pcp_msg_encode_map),
      cmocka_unit_test(test_pcp_msg_encode_variants),
      cmocka_unit_test(test_pcp_msg_decode_map_response),
      cmocka_unit_test(test_pcp_msg_error_responses),
      cmocka_unit_test(test_pcp_msg_options),
      cmocka_unit_test(test_pcp_msg_malformed),
      cmocka_unit_test(test_pcp_msg_natpmp_replies),
      cmocka_unit_test(test_pcp_msg_ipv6_response),
      cmocka_unit_test(test_pcp_msg_epoch_pcp),
      cmocka_unit_test(test_pcp_msg_epoch_natpmp),
  };
  return cmocka_run_group_tests_name("pcp_msg", tests, NULL, NULL);
}
