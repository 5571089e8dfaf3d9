/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/nat/gateway.c: the default route from
 * /proc/net/route text (lowest metric, only up gateway routes, robust to
 * junk), and the classes of external addresses behind the double-NAT
 * flags.
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
#include "nat/gateway.h"

static const char header[] = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse"
                             "\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";

/* hex writes an address the way the kernel prints it (%08X of s_addr). */
static void hex(char *buf, size_t len, const char *ip) {
  struct in_addr a;
  assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
  snprintf(buf, len, "%08X", (unsigned)a.s_addr);
}

static uint32_t ip4(const char *ip) {
  struct in_addr a;
  assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
  return a.s_addr;
}

static void test_gateway_route(void **state) {
  char text[2048], g1[16], g2[16], net[16];
  uint32_t gw = 0;
  (void)state;
  hex(g1, sizeof(g1), "10.0.1.1");
  hex(g2, sizeof(g2), "192.168.7.254");
  hex(net, sizeof(net), "10.0.1.0");
  snprintf(text, sizeof(text),
           "%s"
           "eth0\t%s\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
           "eth0\t00000000\t%s\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
           "wlan0\t00000000\t%s\t0003\t0\t0\t50\t00000000\t0\t0\t0\n",
           header, net, g1, g2);
  assert_int_equal(qpeer__gateway_parse_route(text, strlen(text), &gw), 0);
  assert_int_equal(gw, ip4("192.168.7.254")); /* metric 50 wins */
  /* Without the trailing newline, and with only one default route. */
  snprintf(text, sizeof(text),
           "%seth0\t00000000\t%s\t0003\t0\t0\t0\t00000000\t0\t0\t0", header,
           g1);
  assert_int_equal(qpeer__gateway_parse_route(text, strlen(text), &gw), 0);
  assert_int_equal(gw, ip4("10.0.1.1"));
}

static void test_gateway_route_none(void **state) {
  char text[2048], g1[16];
  uint32_t gw = 0;
  (void)state;
  hex(g1, sizeof(g1), "10.0.1.1");
  /* Header only; empty text. */
  assert_int_equal(qpeer__gateway_parse_route(header, strlen(header), &gw),
                   QPEER_ENOGATEWAY);
  assert_int_equal(qpeer__gateway_parse_route("", 0, &gw), QPEER_ENOGATEWAY);
  /* A default route that is down (flags 0002), one without the gateway
   * flag, one with a mask: none counts. */
  snprintf(text, sizeof(text),
           "%s"
           "eth0\t00000000\t%s\t0002\t0\t0\t0\t00000000\t0\t0\t0\n"
           "eth0\t00000000\t%s\t0001\t0\t0\t0\t00000000\t0\t0\t0\n"
           "eth0\t00000000\t%s\t0003\t0\t0\t0\t000000FF\t0\t0\t0\n",
           header, g1, g1, g1);
  assert_int_equal(qpeer__gateway_parse_route(text, strlen(text), &gw),
                   QPEER_ENOGATEWAY);
  /* Junk lines: short, non-hex, over-long fields. */
  snprintf(text, sizeof(text),
           "%s"
           "eth0\n"
           "eth0\t00000000\tZZZZZZZZ\t0003\t0\t0\t0\t00000000\n"
           "eth0\t00000000\t%s\t0003\t0\t0\t0\n"
           "eth0\t0000000000000000000000000\t%s\t0003\t0\t0\t0\t00000000\n",
           header, g1, g1);
  assert_int_equal(qpeer__gateway_parse_route(text, strlen(text), &gw),
                   QPEER_ENOGATEWAY);
  /* The parser never reads past |len|. */
  snprintf(text, sizeof(text),
           "%seth0\t00000000\t%s\t0003\t0\t0\t0\t00000000\t0\t0\t0\n", header,
           g1);
  assert_int_equal(qpeer__gateway_parse_route(text, strlen(header) + 10, &gw),
                   QPEER_ENOGATEWAY);
}

static unsigned int cls(const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
  }
  return qpeer__gateway_classify((const struct sockaddr *)&ss);
}

static void test_gateway_classify(void **state) {
  (void)state;
  assert_int_equal(cls("10.1.2.3"), QPEER__ADDR_PRIVATE);
  assert_int_equal(cls("172.16.0.1"), QPEER__ADDR_PRIVATE);
  assert_int_equal(cls("172.31.255.255"), QPEER__ADDR_PRIVATE);
  assert_int_equal(cls("172.32.0.1"), 0);
  assert_int_equal(cls("192.168.1.1"), QPEER__ADDR_PRIVATE);
  assert_int_equal(cls("127.0.0.1"), QPEER__ADDR_PRIVATE);
  assert_int_equal(cls("169.254.1.1"), QPEER__ADDR_PRIVATE);
  assert_int_equal(cls("0.0.0.0"), QPEER__ADDR_PRIVATE);
  assert_int_equal(cls("100.64.0.1"), QPEER__ADDR_CGNAT);
  assert_int_equal(cls("100.127.255.255"), QPEER__ADDR_CGNAT);
  assert_int_equal(cls("100.63.255.255"), 0);
  assert_int_equal(cls("100.128.0.1"), 0);
  assert_int_equal(cls("203.0.113.2"), QPEER__ADDR_RESERVED);
  assert_int_equal(cls("198.51.100.1"), QPEER__ADDR_RESERVED);
  assert_int_equal(cls("192.0.2.1"), QPEER__ADDR_RESERVED);
  assert_int_equal(cls("198.18.0.1"), QPEER__ADDR_RESERVED);
  assert_int_equal(cls("224.0.0.1"), QPEER__ADDR_RESERVED);
  assert_int_equal(cls("255.255.255.255"), QPEER__ADDR_RESERVED);
  assert_int_equal(cls("8.8.8.8"), 0);
  assert_int_equal(cls("81.2.69.160"), 0);
  /* IPv4-mapped IPv6 is classified as IPv4. */
  assert_int_equal(cls("::ffff:100.64.1.2"), QPEER__ADDR_CGNAT);
  assert_int_equal(cls("::ffff:10.0.0.1"), QPEER__ADDR_PRIVATE);
  assert_int_equal(cls("::ffff:8.8.8.8"), 0);
  assert_int_equal(cls("fd00::1"), QPEER__ADDR_PRIVATE);
  assert_int_equal(cls("fe80::1"), QPEER__ADDR_PRIVATE);
  assert_int_equal(cls("::1"), QPEER__ADDR_PRIVATE);
  assert_int_equal(cls("::"), QPEER__ADDR_PRIVATE);
  assert_int_equal(cls("2001:db8::1"), QPEER__ADDR_RESERVED);
  assert_int_equal(cls("ff02::1"), QPEER__ADDR_RESERVED);
  assert_int_equal(cls("2606:4700::1111"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gateway_route),
      cmocka_unit_test(test_gateway_route_none),
      cmocka_unit_test(test_gateway_classify),
  };
  return cmocka_run_group_tests_name("gateway", tests, NULL, NULL);
}
