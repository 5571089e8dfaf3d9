/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for tools/relayd/policy.c: every default-deny class in IPv4
 * and IPv6, IPv4-mapped and NAT64 addresses judged as IPv4, CIDR parsing,
 * longest-prefix allow/deny, allow overrides limited to the class block,
 * the relay's own addresses, port 0, and default=deny.
 */
#include <arpa/inet.h>

#include "policy.h"
#include "relayd_test.h"

static struct sockaddr_storage ss;

/* A parses "IP" or "IP port" into a sockaddr (port 443 by default). */
static const struct sockaddr *A(const char *ip) {
  char buf[64];
  const char *sp = strchr(ip, ' ');
  unsigned port = 443;
  memset(&ss, 0, sizeof(ss));
  snprintf(buf, sizeof(buf), "%.*s", sp ? (int)(sp - ip) : (int)strlen(ip), ip);
  if (sp)
    port = (unsigned)atoi(sp + 1);
  if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
    ss.ss_family = AF_INET;
    ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
  } else {
    assert_int_equal(
        inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
    ss.ss_family = AF_INET6;
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
  }
  return (const struct sockaddr *)&ss;
}

static relayd_policy_verdict check(const relayd_policy_t *p, const char *ip) {
  return relayd_policy_check(p, A(ip));
}

static void add(relayd_policy_t *p, int allow, const char *cidr) {
  relayd_cidr_t c;
  assert_int_equal(relayd_cidr_parse(cidr, &c), 0);
  assert_int_equal(allow ? relayd_policy_add_allow(p, &c)
                         : relayd_policy_add_deny(p, &c),
                   0);
}

static void test_policy_default_classes_v4(void **state) {
  relayd_policy_t p;
  (void)state;
  relayd_policy_init(&p);
  assert_int_equal(check(&p, "0.0.0.0"), RELAYD_POLICY_DENY_UNSPECIFIED);
  assert_int_equal(check(&p, "0.1.2.3"), RELAYD_POLICY_DENY_UNSPECIFIED);
  assert_int_equal(check(&p, "127.0.0.1"), RELAYD_POLICY_DENY_LOOPBACK);
  assert_int_equal(check(&p, "127.255.255.254"), RELAYD_POLICY_DENY_LOOPBACK);
  assert_int_equal(check(&p, "10.1.2.3"), RELAYD_POLICY_DENY_PRIVATE);
  assert_int_equal(check(&p, "172.16.0.1"), RELAYD_POLICY_DENY_PRIVATE);
  assert_int_equal(check(&p, "172.31.255.255"), RELAYD_POLICY_DENY_PRIVATE);
  assert_int_equal(check(&p, "172.32.0.1"), RELAYD_POLICY_ALLOW);
  assert_int_equal(check(&p, "192.168.1.1"), RELAYD_POLICY_DENY_PRIVATE);
  assert_int_equal(check(&p, "100.64.0.1"), RELAYD_POLICY_DENY_PRIVATE);
  assert_int_equal(check(&p, "100.128.0.1"), RELAYD_POLICY_ALLOW);
  assert_int_equal(check(&p, "169.254.169.254"), RELAYD_POLICY_DENY_LINK_LOCAL);
  assert_int_equal(check(&p, "224.0.0.251"), RELAYD_POLICY_DENY_MULTICAST);
  assert_int_equal(check(&p, "239.255.255.250"), RELAYD_POLICY_DENY_MULTICAST);
  assert_int_equal(check(&p, "255.255.255.255"), RELAYD_POLICY_DENY_BROADCAST);
  assert_int_equal(check(&p, "240.0.0.1"), RELAYD_POLICY_DENY_RESERVED);
  assert_int_equal(check(&p, "198.18.0.1"), RELAYD_POLICY_DENY_RESERVED);
  assert_int_equal(check(&p, "192.0.0.170"), RELAYD_POLICY_DENY_RESERVED);
  /* Public, including the documentation ranges the NAT lab uses. */
  assert_int_equal(check(&p, "8.8.8.8"), RELAYD_POLICY_ALLOW);
  assert_int_equal(check(&p, "203.0.113.10"), RELAYD_POLICY_ALLOW);
  assert_int_equal(check(&p, "198.51.100.1"), RELAYD_POLICY_ALLOW);
  /* Port 0 is never a target. */
  assert_int_equal(check(&p, "8.8.8.8 0"), RELAYD_POLICY_DENY_PORT);
}

static void test_policy_default_classes_v6(void **state) {
  relayd_policy_t p;
  (void)state;
  relayd_policy_init(&p);
  assert_int_equal(check(&p, "::"), RELAYD_POLICY_DENY_UNSPECIFIED);
  assert_int_equal(check(&p, "::1"), RELAYD_POLICY_DENY_LOOPBACK);
  assert_int_equal(check(&p, "fc00::1"), RELAYD_POLICY_DENY_PRIVATE);
  assert_int_equal(check(&p, "fd12:3456::1"), RELAYD_POLICY_DENY_PRIVATE);
  assert_int_equal(check(&p, "fec0::1"), RELAYD_POLICY_DENY_PRIVATE);
  assert_int_equal(check(&p, "fe80::1"), RELAYD_POLICY_DENY_LINK_LOCAL);
  assert_int_equal(check(&p, "febf::1"), RELAYD_POLICY_DENY_LINK_LOCAL);
  assert_int_equal(check(&p, "ff02::1"), RELAYD_POLICY_DENY_MULTICAST);
  assert_int_equal(check(&p, "100::1"), RELAYD_POLICY_DENY_RESERVED);
  assert_int_equal(check(&p, "::10.0.0.1"), RELAYD_POLICY_DENY_RESERVED);
  assert_int_equal(check(&p, "64:ff9b:1::1"), RELAYD_POLICY_DENY_PRIVATE);
  assert_int_equal(check(&p, "2606:4700::1111"), RELAYD_POLICY_ALLOW);
  assert_int_equal(check(&p, "2001:db8::1"), RELAYD_POLICY_ALLOW);
  /* IPv4 in disguise: mapped and NAT64 addresses are judged as IPv4. */
  assert_int_equal(check(&p, "::ffff:127.0.0.1"), RELAYD_POLICY_DENY_LOOPBACK);
  assert_int_equal(check(&p, "::ffff:10.0.0.1"), RELAYD_POLICY_DENY_PRIVATE);
  assert_int_equal(check(&p, "::ffff:0.0.0.0"), RELAYD_POLICY_DENY_UNSPECIFIED);
  assert_int_equal(check(&p, "64:ff9b::192.168.0.1"),
                   RELAYD_POLICY_DENY_PRIVATE);
  assert_int_equal(check(&p, "64:ff9b::169.254.169.254"),
                   RELAYD_POLICY_DENY_LINK_LOCAL);
  assert_int_equal(check(&p, "::ffff:8.8.8.8"), RELAYD_POLICY_ALLOW);
  assert_int_equal(check(&p, "2606:4700::1111 0"), RELAYD_POLICY_DENY_PORT);
  assert_int_equal(relayd_addr_classify(A("fe80::1"), NULL),
                   RELAYD_ADDR_LINK_LOCAL);
}

static void test_policy_allow_override(void **state) {
  relayd_policy_t p;
  (void)state;
  relayd_policy_init(&p);
  /* An allow inside a class block lifts it for that range only. */
  add(&p, 1, "10.1.0.0/16");
  add(&p, 1, "127.0.0.1");
  add(&p, 1, "fd00:1::/32");
  assert_int_equal(check(&p, "10.1.2.3"), RELAYD_POLICY_ALLOW);
  assert_int_equal(check(&p, "10.2.0.1"), RELAYD_POLICY_DENY_PRIVATE);
  assert_int_equal(check(&p, "127.0.0.1"), RELAYD_POLICY_ALLOW);
  assert_int_equal(check(&p, "127.0.0.2"), RELAYD_POLICY_DENY_LOOPBACK);
  assert_int_equal(check(&p, "::ffff:10.1.0.9"), RELAYD_POLICY_ALLOW);
  assert_int_equal(check(&p, "fd00:1::5"), RELAYD_POLICY_ALLOW);
  assert_int_equal(check(&p, "fd00:2::5"), RELAYD_POLICY_DENY_PRIVATE);
  /* A broad allow does not lift the classes. */
  relayd_policy_init(&p);
  add(&p, 1, "0.0.0.0/0");
  add(&p, 1, "::/0");
  assert_int_equal(check(&p, "10.1.2.3"), RELAYD_POLICY_DENY_PRIVATE);
  assert_int_equal(check(&p, "127.0.0.1"), RELAYD_POLICY_DENY_LOOPBACK);
  assert_int_equal(check(&p, "::1"), RELAYD_POLICY_DENY_LOOPBACK);
  assert_int_equal(check(&p, "8.8.8.8"), RELAYD_POLICY_ALLOW);
  /* Unspecified and port 0 cannot be allowed. */
  add(&p, 1, "0.0.0.0/8");
  assert_int_equal(check(&p, "0.0.0.0"), RELAYD_POLICY_DENY_UNSPECIFIED);
}

static void test_policy_deny_rules(void **state) {
  relayd_policy_t p;
  (void)state;
  relayd_policy_init(&p);
  add(&p, 0, "203.0.113.0/24");
  add(&p, 1, "203.0.113.8/29");
  add(&p, 0, "203.0.113.9");
  add(&p, 0, "2001:db8::/32");
  assert_int_equal(check(&p, "203.0.113.1"), RELAYD_POLICY_DENY_RULE);
  assert_int_equal(check(&p, "203.0.113.8"), RELAYD_POLICY_ALLOW);
  assert_int_equal(check(&p, "203.0.113.9"), RELAYD_POLICY_DENY_RULE);
  assert_int_equal(check(&p, "203.0.114.1"), RELAYD_POLICY_ALLOW);
  assert_int_equal(check(&p, "2001:db8:1::1"), RELAYD_POLICY_DENY_RULE);
  assert_int_equal(check(&p, "::ffff:203.0.113.1"), RELAYD_POLICY_DENY_RULE);
  /* Equal prefixes: deny wins. */
  add(&p, 1, "198.51.100.0/24");
  add(&p, 0, "198.51.100.0/24");
  assert_int_equal(check(&p, "198.51.100.7"), RELAYD_POLICY_DENY_RULE);
  /* default = deny: public targets need an allow rule. */
  relayd_policy_init(&p);
  p.default_deny = 1;
  add(&p, 1, "192.0.2.0/24");
  assert_int_equal(check(&p, "192.0.2.1"), RELAYD_POLICY_ALLOW);
  assert_int_equal(check(&p, "8.8.8.8"), RELAYD_POLICY_DENY_DEFAULT);
  assert_int_equal(check(&p, "127.0.0.1"), RELAYD_POLICY_DENY_LOOPBACK);
}

static void test_policy_own_addresses(void **state) {
  relayd_policy_t p;
  (void)state;
  relayd_policy_init(&p);
  assert_int_equal(relayd_policy_add_own(&p, A("198.51.100.1 443")), 0);
  assert_int_equal(relayd_policy_add_own(&p, A("2001:db8::7")), 0);
  assert_int_equal(relayd_policy_add_own(&p, A("::ffff:192.0.2.5")), 0);
  /* Any port of the relay's address. */
  assert_int_equal(check(&p, "198.51.100.1 40000"), RELAYD_POLICY_DENY_OWN);
  assert_int_equal(check(&p, "::ffff:198.51.100.1"), RELAYD_POLICY_DENY_OWN);
  assert_int_equal(check(&p, "2001:db8::7"), RELAYD_POLICY_DENY_OWN);
  assert_int_equal(check(&p, "192.0.2.5"), RELAYD_POLICY_DENY_OWN);
  assert_int_equal(check(&p, "198.51.100.2"), RELAYD_POLICY_ALLOW);
  /* A subnet allow does not lift "own"; a host allow does. */
  add(&p, 1, "198.51.100.0/24");
  assert_int_equal(check(&p, "198.51.100.1"), RELAYD_POLICY_DENY_OWN);
  add(&p, 1, "198.51.100.1/32");
  assert_int_equal(check(&p, "198.51.100.1"), RELAYD_POLICY_ALLOW);
  /* Bounded. */
  while (p.nown < RELAYD_POLICY_MAX_OWN)
    assert_int_equal(relayd_policy_add_own(&p, A("192.0.2.9")), 0);
  assert_int_equal(relayd_policy_add_own(&p, A("192.0.2.9")), -1);
}

static void test_policy_cidr_parse(void **state) {
  relayd_cidr_t c;
  char buf[RELAYD_CIDR_STRLEN];
  relayd_policy_t p;
  int i;
  (void)state;
  assert_int_equal(relayd_cidr_parse("10.0.0.0/8", &c), 0);
  assert_int_equal(c.family, AF_INET);
  assert_int_equal(c.prefix, 8);
  assert_string_equal(relayd_cidr_format(&c, buf, sizeof(buf)), "10.0.0.0/8");
  assert_int_equal(relayd_cidr_parse("192.0.2.1", &c), 0);
  assert_int_equal(c.prefix, 32);
  assert_int_equal(relayd_cidr_parse("2001:db8::/32", &c), 0);
  assert_int_equal(c.family, AF_INET6);
  assert_string_equal(relayd_cidr_format(&c, buf, sizeof(buf)),
                      "2001:db8::/32");
  assert_int_equal(relayd_cidr_parse("::/0", &c), 0);
  assert_int_equal(relayd_cidr_parse("::ffff:10.0.0.0/104", &c), 0);
  assert_int_equal(c.family, AF_INET);
  assert_int_equal(c.prefix, 8);
  assert_true(relayd_cidr_contains(&c, A("10.9.9.9")));
  assert_false(relayd_cidr_contains(&c, A("11.0.0.1")));
  /* Host bits, bad lengths, junk. */
  assert_int_equal(relayd_cidr_parse("10.0.0.1/8", &c), -1);
  assert_int_equal(relayd_cidr_parse("10.0.0.0/33", &c), -1);
  assert_int_equal(relayd_cidr_parse("10.0.0.0/", &c), -1);
  assert_int_equal(relayd_cidr_parse("10.0.0.0/08", &c), -1);
  assert_int_equal(relayd_cidr_parse("10.0.0.0/8x", &c), -1);
  assert_int_equal(relayd_cidr_parse("10.0.0.0/-1", &c), -1);
  assert_int_equal(relayd_cidr_parse("2001:db8::1/32", &c), -1);
  assert_int_equal(relayd_cidr_parse("::/129", &c), -1);
  assert_int_equal(relayd_cidr_parse("example.com/8", &c), -1);
  assert_int_equal(relayd_cidr_parse("", &c), -1);
  assert_int_equal(relayd_cidr_parse(NULL, &c), -1);
  /* Lists are bounded. */
  relayd_policy_init(&p);
  assert_int_equal(relayd_cidr_parse("192.0.2.0/24", &c), 0);
  for (i = 0; i < RELAYD_POLICY_MAX_RULES; i++)
    assert_int_equal(relayd_policy_add_deny(&p, &c), 0);
  assert_int_equal(relayd_policy_add_deny(&p, &c), -1);
}

static void test_policy_names(void **state) {
  int i;
  (void)state;
  for (i = 0; i < RELAYD_POLICY__COUNT; i++) {
    const char *n = relayd_policy_verdict_name((relayd_policy_verdict)i);
    assert_true(strspn(n, "abcdefghijklmnopqrstuvwxyz_") == strlen(n));
  }
  assert_string_equal(relayd_policy_verdict_name(RELAYD_POLICY_DENY_LOOPBACK),
                      "denied_loopback");
  {
    struct fake_un {
      sa_family_t f;
    } un = {AF_UNIX};
    relayd_policy_t p;
    relayd_policy_init(&p);
    assert_int_equal(relayd_policy_check(&p, (struct sockaddr *)&un),
                     RELAYD_POLICY_DENY_FAMILY);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_policy_default_classes_v4),
      cmocka_unit_test(test_policy_default_classes_v6),
      cmocka_unit_test(test_policy_allow_override),
      cmocka_unit_test(test_policy_deny_rules),
      cmocka_unit_test(test_policy_own_addresses),
      cmocka_unit_test(test_policy_cidr_parse),
      cmocka_unit_test(test_policy_names),
  };
  return cmocka_run_group_tests_name("relayd_policy", tests, NULL, NULL);
}
