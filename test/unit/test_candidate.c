/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/nat/candidate.c: priorities (RFC 8445 §5.1.2 with
 * qpeer's preferences), foundations, the bounded set and its merge rules,
 * the serialized form (a vector computed independently in Python, round
 * trips, every truncation, every single-byte corruption, each decoder
 * rule with a valid CRC), and pairing (order, folding, limits, scopes).
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
#include "nat/candidate.h"

/* Deterministic xorshift64 so failures reproduce. */
static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

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

/* sa parses "a.b.c.d" or an IPv6 literal with |port| into |ss|. */
static const struct sockaddr *sa(struct sockaddr_storage *ss, const char *ip,
                                 uint16_t port) {
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
  return (const struct sockaddr *)ss;
}

/* mk fills |c| with a local candidate; asserts success. */
static void mk(qpeer_candidate_t *c, qpeer_candidate_type type, const char *ip,
               uint16_t port, const char *base_ip, uint16_t base_port,
               unsigned if_order, uint32_t src) {
  struct sockaddr_storage a, b;
  sa(&a, ip, port);
  if (base_ip != NULL)
    sa(&b, base_ip, base_port);
  assert_int_equal(qpeer__cand_init(c, type, (struct sockaddr *)&a,
                                    base_ip ? (struct sockaddr *)&b : NULL,
                                    NULL, src, if_order),
                   0);
}

/* hex_decode decodes |hex| into |out|; returns the length. */
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

/* ---- Priorities. ---- */

static void test_candidate_priority_values(void **state) {
  struct sockaddr_storage a;
  (void)state;
  /* Type preferences. */
  assert_int_equal(qpeer__cand_type_pref(QPEER_CANDIDATE_HOST), 126);
  assert_int_equal(qpeer__cand_type_pref(QPEER_CANDIDATE_PRFLX), 110);
  assert_int_equal(qpeer__cand_type_pref(QPEER_CANDIDATE_MAPPED), 105);
  assert_int_equal(qpeer__cand_type_pref(QPEER_CANDIDATE_SRFLX), 100);
  assert_int_equal(qpeer__cand_type_pref(QPEER_CANDIDATE_RELAY), 0);
  assert_int_equal(qpeer__cand_type_pref((qpeer_candidate_type)0), -1);
  assert_int_equal(qpeer__cand_type_pref((qpeer_candidate_type)6), -1);

  /* Address classes. */
  assert_int_equal(qpeer__cand_addr_class(sa(&a, "192.0.2.1", 1)),
                   QPEER__CAND_CLASS_IPV4);
  assert_int_equal(qpeer__cand_addr_class(sa(&a, "10.1.2.3", 1)),
                   QPEER__CAND_CLASS_IPV4);
  assert_int_equal(qpeer__cand_addr_class(sa(&a, "127.0.0.1", 1)),
                   QPEER__CAND_CLASS_LOOPBACK);
  assert_int_equal(qpeer__cand_addr_class(sa(&a, "169.254.7.7", 1)),
                   QPEER__CAND_CLASS_LINK_LOCAL);
  assert_int_equal(qpeer__cand_addr_class(sa(&a, "2001:db8::1", 1)),
                   QPEER__CAND_CLASS_IPV6);
  assert_int_equal(qpeer__cand_addr_class(sa(&a, "::1", 1)),
                   QPEER__CAND_CLASS_LOOPBACK);
  assert_int_equal(qpeer__cand_addr_class(sa(&a, "fe80::1", 1)),
                   QPEER__CAND_CLASS_LINK_LOCAL);
  assert_int_equal(qpeer__cand_addr_class(sa(&a, "fd00::1", 1)),
                   QPEER__CAND_CLASS_ULA);
  assert_int_equal(qpeer__cand_addr_class(sa(&a, "2001:0:1::1", 1)),
                   QPEER__CAND_CLASS_TEREDO);
  assert_int_equal(qpeer__cand_addr_class(sa(&a, "2002:c000:201::1", 1)),
                   QPEER__CAND_CLASS_6TO4);
  assert_int_equal(qpeer__cand_addr_class(sa(&a, "::ffff:192.0.2.1", 1)),
                   QPEER__CAND_CLASS_IPV4);
  assert_int_equal(qpeer__cand_addr_class(sa(&a, "::ffff:127.0.0.1", 1)),
                   QPEER__CAND_CLASS_LOOPBACK);

  /* Local preference: class << 12 | (0xfff - order), order clamped. */
  assert_int_equal(qpeer__cand_local_pref(sa(&a, "192.0.2.1", 1), 0), 0xbfff);
  assert_int_equal(qpeer__cand_local_pref(sa(&a, "192.0.2.1", 1), 5), 0xbffa);
  assert_int_equal(qpeer__cand_local_pref(sa(&a, "2001:db8::1", 1), 0), 0xdfff);
  assert_int_equal(qpeer__cand_local_pref(sa(&a, "192.0.2.1", 1), 0xfff),
                   0xb000);
  assert_int_equal(qpeer__cand_local_pref(sa(&a, "192.0.2.1", 1), 100000),
                   0xb000);

  /* RFC 8445 §5.1.2.1: 2^24 type + 2^8 local + (256 - component). */
  assert_int_equal(qpeer__cand_priority(QPEER_CANDIDATE_HOST, 0xbfff, 1),
                   2126512127u); /* 0x7ebfffff */
  assert_int_equal(qpeer__cand_priority(QPEER_CANDIDATE_HOST, 0xdffe, 1),
                   0x7edffeffu);
  assert_int_equal(qpeer__cand_priority(QPEER_CANDIDATE_SRFLX, 0xbfff, 1),
                   1690304511u); /* 0x64bfffff */
  assert_int_equal(qpeer__cand_priority(QPEER_CANDIDATE_RELAY, 0, 1), 255u);
  assert_int_equal(qpeer__cand_priority(QPEER_CANDIDATE_RELAY, 0, 256), 0u);
  assert_int_equal(qpeer__cand_priority(QPEER_CANDIDATE_HOST, 0xffff, 1),
                   0x7effffffu);
  assert_int_equal(qpeer__cand_priority(QPEER_CANDIDATE_HOST, 1, 2),
                   (126u << 24) + 256u + 254u);
  assert_int_equal(qpeer__cand_priority(QPEER_CANDIDATE_HOST, 1, 0), 0u);
  assert_int_equal(qpeer__cand_priority(QPEER_CANDIDATE_HOST, 1, 257), 0u);
  assert_int_equal(qpeer__cand_priority((qpeer_candidate_type)9, 1, 1), 0u);
}

static void test_candidate_priority_order(void **state) {
  qpeer_candidate_t host4, host6, host4b, prflx, mapped, srflx, relay, ll, lo;
  (void)state;
  mk(&host4, QPEER_CANDIDATE_HOST, "192.168.1.2", 4000, NULL, 0, 0, 1);
  mk(&host4b, QPEER_CANDIDATE_HOST, "10.0.0.2", 4000, NULL, 0, 1, 1);
  mk(&host6, QPEER_CANDIDATE_HOST, "2001:db8::2", 4000, NULL, 0, 3, 1);
  mk(&ll, QPEER_CANDIDATE_HOST, "fe80::2", 4000, NULL, 0, 0, 1);
  mk(&lo, QPEER_CANDIDATE_HOST, "127.0.0.1", 4000, NULL, 0, 0, 1);
  mk(&prflx, QPEER_CANDIDATE_PRFLX, "203.0.113.9", 5000, "192.168.1.2", 4000, 0,
     0);
  mk(&mapped, QPEER_CANDIDATE_MAPPED, "203.0.113.9", 4000, "192.168.1.2", 4000,
     0, 0);
  mk(&srflx, QPEER_CANDIDATE_SRFLX, "203.0.113.9", 6000, "192.168.1.2", 4000, 0,
     0);
  mk(&relay, QPEER_CANDIDATE_RELAY, "198.51.100.7", 443, "2001:db8::2", 4000, 0,
     0);
  /* host > prflx > mapped > srflx > relay, whatever the address. */
  assert_true(host4.priority > prflx.priority);
  assert_true(ll.priority > prflx.priority);
  assert_true(prflx.priority > mapped.priority);
  assert_true(mapped.priority > srflx.priority);
  assert_true(srflx.priority > relay.priority);
  assert_true(relay.priority > 0);
  /* Within a type: IPv6 global > IPv4 > link-local > loopback; earlier
   * interfaces first. */
  assert_true(host6.priority > host4.priority);
  assert_true(host4.priority > host4b.priority);
  assert_true(host4b.priority > ll.priority);
  assert_true(ll.priority > lo.priority);
  assert_int_equal(host4.component, 1);
  assert_string_equal(qpeer_candidate_type_name(QPEER_CANDIDATE_HOST), "host");
  assert_string_equal(qpeer_candidate_type_name(QPEER_CANDIDATE_SRFLX),
                      "srflx");
  assert_string_equal(qpeer_candidate_type_name(QPEER_CANDIDATE_MAPPED),
                      "mapped");
  assert_string_equal(qpeer_candidate_type_name(QPEER_CANDIDATE_PRFLX),
                      "prflx");
  assert_string_equal(qpeer_candidate_type_name(QPEER_CANDIDATE_RELAY),
                      "relay");
  assert_string_equal(qpeer_candidate_type_name((qpeer_candidate_type)0),
                      "unknown");
}

static void test_candidate_foundation(void **state) {
  struct sockaddr_storage b1, b2, b3, s1, s2;
  uint32_t f;
  (void)state;
  sa(&b1, "192.168.1.2", 4000);
  sa(&b2, "192.168.1.2", 4001); /* same IP, other port */
  sa(&b3, "192.168.1.3", 4000);
  sa(&s1, "198.51.100.1", 3478);
  sa(&s2, "198.51.100.2", 3478);
  f = qpeer__cand_foundation(QPEER_CANDIDATE_SRFLX, (struct sockaddr *)&b1,
                             (struct sockaddr *)&s1);
  assert_int_equal(f, qpeer__cand_foundation(QPEER_CANDIDATE_SRFLX,
                                             (struct sockaddr *)&b2,
                                             (struct sockaddr *)&s1));
  assert_int_not_equal(f, qpeer__cand_foundation(QPEER_CANDIDATE_SRFLX,
                                                 (struct sockaddr *)&b3,
                                                 (struct sockaddr *)&s1));
  assert_int_not_equal(f, qpeer__cand_foundation(QPEER_CANDIDATE_SRFLX,
                                                 (struct sockaddr *)&b1,
                                                 (struct sockaddr *)&s2));
  assert_int_not_equal(f, qpeer__cand_foundation(QPEER_CANDIDATE_MAPPED,
                                                 (struct sockaddr *)&b1,
                                                 (struct sockaddr *)&s1));
  assert_int_not_equal(f, qpeer__cand_foundation(QPEER_CANDIDATE_SRFLX,
                                                 (struct sockaddr *)&b1, NULL));
}

static void test_candidate_init_rules(void **state) {
  struct sockaddr_storage a, b;
  qpeer_candidate_t c;
  static const char *bad[] = {
      "0.0.0.0",         "0.1.2.3", "224.0.0.1", "239.1.1.1",
      "255.255.255.255", "::",      "ff02::1"};
  size_t i;
  (void)state;
  /* An IPv4-mapped address and base are stored as IPv4. */
  assert_int_equal(qpeer__cand_init(&c, QPEER_CANDIDATE_HOST,
                                    sa(&a, "::ffff:192.0.2.1", 80), NULL, NULL,
                                    1, 0),
                   0);
  assert_int_equal(c.addr.ss_family, AF_INET);
  assert_int_equal(c.base.ss_family, AF_INET);
  assert_true(
      qpeer__addr_equal((struct sockaddr *)&c.addr, sa(&b, "192.0.2.1", 80)));
  assert_int_equal(c.server.ss_family, AF_UNSPEC);
  assert_int_equal(c.sources, 1);
  /* Server recorded. */
  assert_int_equal(qpeer__cand_init(&c, QPEER_CANDIDATE_SRFLX,
                                    sa(&a, "203.0.113.1", 9), NULL,
                                    sa(&b, "198.51.100.1", 3478),
                                    QPEER_CANDIDATE_SRC_STUN, 0),
                   0);
  assert_int_equal(c.server.ss_family, AF_INET);
  /* Unusable addresses. */
  for (i = 0; i < QPEER__ARRAY_SIZE(bad); i++) {
    assert_int_equal(qpeer__cand_init(&c, QPEER_CANDIDATE_HOST,
                                      sa(&a, bad[i], 80), NULL, NULL, 1, 0),
                     UV_EINVAL);
    assert_int_equal(c.type, 0); /* zeroed on failure */
  }
  assert_int_equal(qpeer__cand_init(&c, QPEER_CANDIDATE_HOST,
                                    sa(&a, "192.0.2.1", 0), NULL, NULL, 1, 0),
                   UV_EINVAL);
  assert_int_equal(qpeer__cand_init(&c, (qpeer_candidate_type)7,
                                    sa(&a, "192.0.2.1", 1), NULL, NULL, 1, 0),
                   UV_EINVAL);
  assert_int_equal(
      qpeer__cand_init(&c, QPEER_CANDIDATE_HOST, NULL, NULL, NULL, 1, 0),
      UV_EINVAL);
  /* The base: same family (except relay), nonzero port; wildcard allowed. */
  assert_int_equal(qpeer__cand_init(&c, QPEER_CANDIDATE_SRFLX,
                                    sa(&a, "203.0.113.1", 9),
                                    sa(&b, "2001:db8::1", 9), NULL, 0, 0),
                   UV_EINVAL);
  assert_int_equal(qpeer__cand_init(&c, QPEER_CANDIDATE_RELAY,
                                    sa(&a, "203.0.113.1", 9),
                                    sa(&b, "2001:db8::1", 9), NULL, 0, 0),
                   0);
  assert_int_equal(qpeer__cand_init(&c, QPEER_CANDIDATE_SRFLX,
                                    sa(&a, "203.0.113.1", 9),
                                    sa(&b, "192.168.0.1", 0), NULL, 0, 0),
                   UV_EINVAL);
  assert_int_equal(qpeer__cand_init(&c, QPEER_CANDIDATE_SRFLX,
                                    sa(&a, "203.0.113.1", 9),
                                    sa(&b, "0.0.0.0", 5000), NULL, 0, 0),
                   0);
  /* qpeer__cand_check catches hand-made mistakes. */
  mk(&c, QPEER_CANDIDATE_HOST, "192.0.2.1", 1, NULL, 0, 0, 0);
  assert_int_equal(qpeer__cand_check(&c), 0);
  c.priority = 0;
  assert_int_equal(qpeer__cand_check(&c), UV_EINVAL);
  c.priority = 0x80000000u;
  assert_int_equal(qpeer__cand_check(&c), UV_EINVAL);
  c.priority = 0x7fffffffu;
  assert_int_equal(qpeer__cand_check(&c), 0);
  c.component = 2;
  assert_int_equal(qpeer__cand_check(&c), UV_EINVAL);
  c.component = 1;
  c.base.ss_family = AF_UNSPEC;
  assert_int_equal(qpeer__cand_check(&c), UV_EINVAL);
  sa(&c.base, "::ffff:192.0.2.1", 1);
  assert_int_equal(qpeer__cand_check(&c), UV_EINVAL);
  sa(&c.base, "192.0.2.1", 1);
  sa(&c.addr, "::ffff:192.0.2.1", 1);
  assert_int_equal(qpeer__cand_check(&c), UV_EINVAL);
}

static void test_candidate_remote(void **state) {
  struct sockaddr_storage a;
  qpeer_candidate_t c;
  static const struct {
    const char *ip;            /* the ADD_ADDRESS address */
    qpeer_candidate_type want; /* the fallback type */
  } guess[] = {
      {"10.1.2.3", QPEER_CANDIDATE_HOST},
      {"172.16.0.1", QPEER_CANDIDATE_HOST},
      {"172.31.255.1", QPEER_CANDIDATE_HOST},
      {"172.32.0.1", QPEER_CANDIDATE_SRFLX},
      {"192.168.7.7", QPEER_CANDIDATE_HOST},
      {"169.254.1.1", QPEER_CANDIDATE_HOST},
      {"127.0.0.1", QPEER_CANDIDATE_HOST},
      {"100.64.1.1", QPEER_CANDIDATE_SRFLX}, /* CGNAT: outside a home NAT */
      {"203.0.113.9", QPEER_CANDIDATE_SRFLX},
      {"fd12::1", QPEER_CANDIDATE_HOST},
      {"fe80::1", QPEER_CANDIDATE_HOST},
      {"2001:db8::1", QPEER_CANDIDATE_SRFLX},
  };
  size_t i;
  (void)state;
  for (i = 0; i < QPEER__ARRAY_SIZE(guess); i++) {
    assert_int_equal(qpeer__cand_remote(&c, sa(&a, guess[i].ip, 4433), 0, 0),
                     0);
    assert_int_equal(c.type, guess[i].want);
    assert_int_equal(c.priority,
                     qpeer__cand_priority(
                         guess[i].want,
                         qpeer__cand_local_pref((struct sockaddr *)&a, 0), 1));
    assert_int_equal(c.sources, QPEER_CANDIDATE_SRC_PEER);
    assert_true(
        qpeer__addr_equal((struct sockaddr *)&c.base, (struct sockaddr *)&a));
  }
  /* ADDRESS_INFO values are taken when in range. */
  assert_int_equal(qpeer__cand_remote(&c, sa(&a, "10.1.2.3", 4433),
                                      QPEER_CANDIDATE_MAPPED, 12345),
                   0);
  assert_int_equal(c.type, QPEER_CANDIDATE_MAPPED);
  assert_int_equal(c.priority, 12345);
  /* Out of range: the fallback. */
  assert_int_equal(qpeer__cand_remote(&c, sa(&a, "10.1.2.3", 4433), 9, 12345),
                   0);
  assert_int_equal(c.type, QPEER_CANDIDATE_HOST);
  assert_int_equal(qpeer__cand_remote(&c, sa(&a, "203.0.113.9", 4433),
                                      QPEER_CANDIDATE_HOST, 0x80000000u),
                   0);
  assert_int_equal(c.type, QPEER_CANDIDATE_SRFLX);
  /* Unusable addresses. */
  assert_int_equal(qpeer__cand_remote(&c, sa(&a, "224.0.0.1", 4433), 0, 0),
                   UV_EINVAL);
  assert_int_equal(qpeer__cand_remote(&c, sa(&a, "203.0.113.9", 0), 1, 9),
                   UV_EINVAL);
  assert_int_equal(qpeer__cand_remote(&c, NULL, 0, 0), UV_EINVAL);
}

/* ---- The set. ---- */

static void test_candidate_set_merge(void **state) {
  qpeer__candset s;
  qpeer_candidate_t host, srflx, stun2, mapped;
  const qpeer__candset_entry *e;
  struct sockaddr_storage a;
  (void)state;
  qpeer__candset_init(&s);
  /* A public host address that STUN also reports: the host type wins and
   * both sources are recorded. */
  mk(&host, QPEER_CANDIDATE_HOST, "203.0.113.4", 4000, NULL, 0, 0,
     QPEER_CANDIDATE_SRC_INTERFACE);
  mk(&srflx, QPEER_CANDIDATE_SRFLX, "203.0.113.4", 4000, "203.0.113.4", 4000, 0,
     QPEER_CANDIDATE_SRC_STUN);
  assert_int_equal(qpeer__candset_add(&s, &host, NULL), QPEER__CANDSET_ADDED);
  assert_int_equal(qpeer__candset_add(&s, &srflx, NULL), QPEER__CANDSET_MERGED);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.e[0].cand.type, QPEER_CANDIDATE_HOST);
  assert_int_equal(s.e[0].cand.sources,
                   QPEER_CANDIDATE_SRC_INTERFACE | QPEER_CANDIDATE_SRC_STUN);
  assert_int_equal(s.e[0].seq, 0);
  assert_int_equal(s.next_seq, 1);

  /* The other way round: srflx first, then a mapping of the same address
   * (higher type) upgrades it in place, keeping its sequence number. */
  mk(&stun2, QPEER_CANDIDATE_SRFLX, "198.51.100.9", 7000, "192.168.1.2", 4000,
     0, QPEER_CANDIDATE_SRC_OBSERVED);
  mk(&mapped, QPEER_CANDIDATE_MAPPED, "198.51.100.9", 7000, "192.168.1.2", 4000,
     0, QPEER_CANDIDATE_SRC_PCP);
  assert_int_equal(qpeer__candset_add(&s, &stun2, NULL), QPEER__CANDSET_ADDED);
  assert_int_equal(s.e[1].seq, 1);
  assert_int_equal(qpeer__candset_add(&s, &mapped, NULL),
                   QPEER__CANDSET_UPGRADED);
  assert_int_equal(s.n, 2);
  e = qpeer__candset_find(&s, sa(&a, "198.51.100.9", 7000));
  assert_non_null(e);
  assert_int_equal(e->seq, 1);
  assert_int_equal(e->cand.type, QPEER_CANDIDATE_MAPPED);
  assert_int_equal(e->cand.priority, mapped.priority);
  assert_int_equal(e->cand.foundation, mapped.foundation);
  assert_int_equal(e->cand.sources,
                   QPEER_CANDIDATE_SRC_OBSERVED | QPEER_CANDIDATE_SRC_PCP);
  /* Adding the lower type again only merges. */
  assert_int_equal(qpeer__candset_add(&s, &stun2, NULL), QPEER__CANDSET_MERGED);
  assert_int_equal(e->cand.type, QPEER_CANDIDATE_MAPPED);
  assert_int_equal(s.next_seq, 2);
  /* Found through an IPv4-mapped spelling too; by sequence number. */
  assert_non_null(qpeer__candset_find(&s, sa(&a, "::ffff:198.51.100.9", 7000)));
  assert_null(qpeer__candset_find(&s, sa(&a, "198.51.100.9", 7001)));
  assert_ptr_equal(qpeer__candset_find_seq(&s, 1), e);
  assert_null(qpeer__candset_find_seq(&s, 7));
  /* Invalid candidates are refused and use no number. */
  srflx.priority = 0;
  assert_int_equal(qpeer__candset_add(&s, &srflx, NULL), UV_EINVAL);
  assert_int_equal(s.next_seq, 2);
  /* Removal. */
  assert_int_equal(qpeer__candset_remove(&s, 0), 0);
  assert_int_equal(qpeer__candset_remove(&s, 0), UV_ENOENT);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.e[0].seq, 1);
}

static void test_candidate_set_order_and_bound(void **state) {
  qpeer__candset s;
  qpeer__candset_entry ev;
  qpeer_candidate_t c, relay, host;
  char ip[32];
  size_t i;
  (void)state;
  qpeer__candset_init(&s);
  /* 32 srflx candidates with decreasing interface order (increasing
   * priority): the set stays sorted. */
  for (i = 0; i < QPEER__CANDSET_MAX; i++) {
    snprintf(ip, sizeof(ip), "198.51.100.%zu", i + 1);
    mk(&c, QPEER_CANDIDATE_SRFLX, ip, 5000, "10.0.0.1", 5000,
       (unsigned)(QPEER__CANDSET_MAX - i), 0);
    assert_int_equal(qpeer__candset_add(&s, &c, NULL), QPEER__CANDSET_ADDED);
  }
  assert_int_equal(s.n, QPEER__CANDSET_MAX);
  for (i = 1; i < s.n; i++)
    assert_true(s.e[i - 1].cand.priority > s.e[i].cand.priority);
  assert_int_equal(s.e[0].seq, QPEER__CANDSET_MAX - 1);
  /* Full: a lower or equal priority is refused, a higher one evicts the
   * lowest entry (reported). */
  mk(&relay, QPEER_CANDIDATE_RELAY, "203.0.113.50", 443, "10.0.0.1", 5000, 0,
     0);
  assert_int_equal(qpeer__candset_add(&s, &relay, &ev), UV_ENOSPC);
  mk(&c, QPEER_CANDIDATE_SRFLX, "198.51.100.200", 5000, "10.0.0.1", 5000,
     QPEER__CANDSET_MAX, 0); /* ties with the lowest */
  assert_int_equal(qpeer__candset_add(&s, &c, &ev), UV_ENOSPC);
  mk(&host, QPEER_CANDIDATE_HOST, "10.0.0.1", 5000, NULL, 0, 0, 0);
  memset(&ev, 0, sizeof(ev));
  assert_int_equal(qpeer__candset_add(&s, &host, &ev), QPEER__CANDSET_EVICTED);
  assert_int_equal(ev.seq, 0);
  assert_int_equal(s.n, QPEER__CANDSET_MAX);
  assert_int_equal(s.e[0].cand.type, QPEER_CANDIDATE_HOST);
  assert_int_equal(s.e[0].seq, QPEER__CANDSET_MAX);
  /* Merging still works when full. */
  assert_int_equal(qpeer__candset_add(&s, &host, NULL), QPEER__CANDSET_MERGED);
  /* Without an eviction slot the eviction still happens. */
  mk(&c, QPEER_CANDIDATE_HOST, "10.0.0.2", 5000, NULL, 0, 1, 0);
  assert_int_equal(qpeer__candset_add(&s, &c, NULL), QPEER__CANDSET_EVICTED);
  assert_null(qpeer__candset_find_seq(&s, 1));
}

static void test_candidate_set_remote_seq(void **state) {
  qpeer__candset s;
  qpeer_candidate_t a, b;
  (void)state;
  qpeer__candset_init(&s);
  mk(&a, QPEER_CANDIDATE_HOST, "192.0.2.10", 4433, NULL, 0, 0, 0);
  mk(&b, QPEER_CANDIDATE_SRFLX, "203.0.113.10", 4433, "192.0.2.10", 4433, 0, 0);
  assert_int_equal(qpeer__candset_add_seq(&s, &a, 7, NULL),
                   QPEER__CANDSET_ADDED);
  assert_int_equal(s.next_seq, 8);
  /* A retransmitted ADD_ADDRESS merges. */
  assert_int_equal(qpeer__candset_add_seq(&s, &a, 7, NULL),
                   QPEER__CANDSET_MERGED);
  /* The same number for another address is a peer error. */
  assert_int_equal(qpeer__candset_add_seq(&s, &b, 7, NULL), UV_EEXIST);
  assert_int_equal(qpeer__candset_add_seq(&s, &b, 3, NULL),
                   QPEER__CANDSET_ADDED);
  assert_int_equal(s.next_seq, 8);
  assert_int_equal(qpeer__candset_add_seq(&s, &b, 1ULL << 62, NULL), UV_EINVAL);
  assert_int_equal(s.e[0].seq, 7);
  assert_int_equal(s.e[1].seq, 3);
}

/* ---- The serialized form. ---- */

static const char vec_plain[] =
    "01021d0101027edffeff0337715f20010db8000000000000000000000001115102110001"
    "007ebfffffc1c2f287c00002011151021100020164bfffffbdfd04aacb0071059c40b554"
    "1ebc";
static const char vec_related[] =
    "01021d0101027edffeff0337715f20010db8000000000000000000000001115102110001"
    "007ebfffffc1c2f287c00002011151021702020164bfffffbdfd04aacb0071059c40c000"
    "02011151e185481e";

/* vector_set builds the set of the fixed vector (same as the Python). */
static void vector_set(qpeer__candset *s) {
  struct sockaddr_storage a, b, srv;
  qpeer_candidate_t c;
  qpeer__candset_init(s);
  assert_int_equal(qpeer__cand_init(&c, QPEER_CANDIDATE_HOST,
                                    sa(&a, "192.0.2.1", 4433), NULL, NULL,
                                    QPEER_CANDIDATE_SRC_INTERFACE, 0),
                   0);
  assert_int_equal(qpeer__candset_add(s, &c, NULL), 0);
  assert_int_equal(qpeer__cand_init(&c, QPEER_CANDIDATE_SRFLX,
                                    sa(&a, "203.0.113.5", 40000),
                                    sa(&b, "192.0.2.1", 4433),
                                    sa(&srv, "198.51.100.1", 3478),
                                    QPEER_CANDIDATE_SRC_STUN, 0),
                   0);
  assert_int_equal(qpeer__candset_add(s, &c, NULL), 0);
  assert_int_equal(qpeer__cand_init(&c, QPEER_CANDIDATE_HOST,
                                    sa(&a, "2001:db8::1", 4433), NULL, NULL,
                                    QPEER_CANDIDATE_SRC_INTERFACE, 1),
                   0);
  assert_int_equal(qpeer__candset_add(s, &c, NULL), 0);
}

/* same_remote checks that decoded |d| matches local |s| as a peer sees
 * it: addresses, types, priorities, foundations, numbers, order. */
static void same_remote(const qpeer__candset *s, const qpeer__candset *d,
                        int related) {
  size_t i;
  assert_int_equal(d->n, s->n);
  for (i = 0; i < s->n; i++) {
    const qpeer_candidate_t *x = &s->e[i].cand, *y = &d->e[i].cand;
    assert_true(qpeer__addr_equal((const struct sockaddr *)&x->addr,
                                  (const struct sockaddr *)&y->addr));
    assert_true(qpeer__addr_equal(
        (const struct sockaddr *)(related ? &x->base : &x->addr),
        (const struct sockaddr *)&y->base));
    assert_int_equal(x->type, y->type);
    assert_int_equal(x->priority, y->priority);
    assert_int_equal(x->foundation, y->foundation);
    assert_int_equal(y->component, 1);
    assert_int_equal(y->sources, QPEER_CANDIDATE_SRC_PEER);
    assert_int_equal(y->server.ss_family, AF_UNSPEC);
    assert_int_equal(s->e[i].seq, d->e[i].seq);
  }
}

static void test_candidate_list_vector(void **state) {
  uint8_t want[256], buf[QPEER__CANDLIST_ENC_MAX];
  qpeer__candset s, d;
  size_t wn;
  int n;
  (void)state;
  vector_set(&s);
  wn = hex_decode(vec_plain, want, sizeof(want));
  n = qpeer__candlist_encode(&s, 0, buf, sizeof(buf));
  assert_int_equal(n, (int)wn);
  assert_memory_equal(buf, want, wn);
  assert_int_equal(qpeer__candlist_decode(&d, buf, (size_t)n), 0);
  same_remote(&s, &d, 0);
  assert_int_equal(d.next_seq, 3);

  wn = hex_decode(vec_related, want, sizeof(want));
  n = qpeer__candlist_encode(&s, QPEER__CANDLIST_RELATED, buf, sizeof(buf));
  assert_int_equal(n, (int)wn);
  assert_memory_equal(buf, want, wn);
  assert_int_equal(qpeer__candlist_decode(&d, buf, (size_t)n), 0);
  same_remote(&s, &d, 1);

  /* Small buffers. */
  for (wn = 0; wn < (size_t)n; wn++)
    assert_int_equal(
        qpeer__candlist_encode(&s, QPEER__CANDLIST_RELATED, buf, wn),
        UV_ENOBUFS);
  assert_int_equal(qpeer__candlist_encode(&s, 0x80, buf, sizeof(buf)),
                   UV_EINVAL);
  /* An empty list is 5 bytes. */
  qpeer__candset_init(&s);
  n = qpeer__candlist_encode(&s, 0, buf, sizeof(buf));
  assert_int_equal(n, 5);
  assert_int_equal(qpeer__candlist_decode(&d, buf, 5), 0);
  assert_int_equal(d.n, 0);
}

/* random_set fills |s| with up to 32 random valid local candidates. */
static void random_set(qpeer__candset *s) {
  struct sockaddr_storage a, b, srv;
  qpeer_candidate_t c;
  size_t want = rng_next() % (QPEER__CANDSET_MAX + 1), tries = 0;
  qpeer__candset_init(s);
  s->next_seq = rng_next() % 4 == 0 ? (1ULL << 40) : 0;
  while (s->n < want && tries++ < 1000) {
    static const qpeer_candidate_type types[] = {
        QPEER_CANDIDATE_HOST, QPEER_CANDIDATE_SRFLX, QPEER_CANDIDATE_MAPPED,
        QPEER_CANDIDATE_PRFLX, QPEER_CANDIDATE_RELAY};
    qpeer_candidate_type t = types[rng_next() % 5];
    char ip[64];
    int v6 = (int)(rng_next() % 2), bv6 = v6;
    if (t == QPEER_CANDIDATE_RELAY && rng_next() % 2)
      bv6 = !v6;
    if (v6)
      snprintf(ip, sizeof(ip), "2001:db8::%x",
               (unsigned)(rng_next() % 60000) + 1);
    else
      snprintf(ip, sizeof(ip), "198.51.100.%u",
               (unsigned)(rng_next() % 250) + 1);
    sa(&a, ip, (uint16_t)(rng_next() % 65535 + 1));
    if (bv6)
      snprintf(ip, sizeof(ip), "fd00::%x", (unsigned)(rng_next() % 60000) + 1);
    else
      snprintf(ip, sizeof(ip), "10.0.0.%u", (unsigned)(rng_next() % 250) + 1);
    sa(&b, ip, (uint16_t)(rng_next() % 65535 + 1));
    sa(&srv, "203.0.113.1", 3478);
    if (qpeer__cand_init(
            &c, t, (struct sockaddr *)&a,
            t == QPEER_CANDIDATE_HOST ? NULL : (struct sockaddr *)&b,
            (struct sockaddr *)&srv, 1, (unsigned)(rng_next() % 5000)) != 0)
      continue;
    (void)qpeer__candset_add(s, &c, NULL);
  }
}

static void test_candidate_list_roundtrip(void **state) {
  uint8_t buf[QPEER__CANDLIST_ENC_MAX], buf2[QPEER__CANDLIST_ENC_MAX];
  qpeer__candset s, d;
  int i, n, n2;
  unsigned flags;
  (void)state;
  for (i = 0; i < 400; i++) {
    random_set(&s);
    flags = (unsigned)(rng_next() % 2);
    n = qpeer__candlist_encode(&s, flags, buf, sizeof(buf));
    assert_true(n >= 5 && n <= QPEER__CANDLIST_ENC_MAX);
    assert_int_equal(qpeer__candlist_decode(&d, buf, (size_t)n), 0);
    same_remote(&s, &d, (int)flags);
    /* The decoded set re-encodes to the same bytes. */
    n2 = qpeer__candlist_encode(&d, flags, buf2, sizeof(buf2));
    assert_int_equal(n2, n);
    assert_memory_equal(buf, buf2, (size_t)n);
  }
}

static void test_candidate_list_max(void **state) {
  uint8_t buf[QPEER__CANDLIST_ENC_MAX];
  struct sockaddr_storage a, b;
  qpeer__candset s, d;
  qpeer_candidate_t c;
  char ip[64];
  size_t i;
  int n;
  (void)state;
  /* 32 IPv6 srflx candidates with IPv6 bases and 8-byte sequence numbers:
   * the largest form. */
  qpeer__candset_init(&s);
  for (i = 0; i < QPEER__CANDSET_MAX; i++) {
    snprintf(ip, sizeof(ip), "2001:db8::%zx", i + 1);
    sa(&a, ip, 1000);
    sa(&b, "fd00::1", 1000);
    assert_int_equal(
        qpeer__cand_init(&c, QPEER_CANDIDATE_SRFLX, (struct sockaddr *)&a,
                         (struct sockaddr *)&b, NULL, 0, (unsigned)i),
        0);
    assert_int_equal(qpeer__candset_add_seq(&s, &c, (1ULL << 62) - 1 - i, NULL),
                     0);
  }
  n = qpeer__candlist_encode(&s, QPEER__CANDLIST_RELATED, buf, sizeof(buf));
  assert_int_equal(n, QPEER__CANDLIST_ENC_MAX);
  assert_int_equal(qpeer__candlist_decode(&d, buf, (size_t)n), 0);
  same_remote(&s, &d, 1);
}

static void test_candidate_list_truncation(void **state) {
  uint8_t buf[QPEER__CANDLIST_ENC_MAX];
  qpeer__candset s, d;
  size_t k;
  int n, rv;
  (void)state;
  vector_set(&s);
  n = qpeer__candlist_encode(&s, QPEER__CANDLIST_RELATED, buf, sizeof(buf));
  d.n = 99;
  for (k = 0; k < (size_t)n; k++) {
    rv = qpeer__candlist_decode(&d, buf, k);
    if (k < 5)
      assert_int_equal(rv, QPEER_ETRUNCATED);
    else
      assert_int_equal(rv, QPEER_ECHECKSUM);
    assert_int_equal(d.n, 99); /* untouched on failure */
  }
  /* Truncation with the CRC fixed up: every record boundary inside a
   * record is malformed; at a boundary it decodes fewer candidates. */
  for (k = 1; k < (size_t)n - 4; k++) {
    uint8_t t[QPEER__CANDLIST_ENC_MAX + 4];
    uint32_t c;
    memcpy(t, buf, k);
    c = crc32c(t, k);
    t[k] = (uint8_t)(c >> 24);
    t[k + 1] = (uint8_t)(c >> 16);
    t[k + 2] = (uint8_t)(c >> 8);
    t[k + 3] = (uint8_t)c;
    rv = qpeer__candlist_decode(&d, t, k + 4);
    assert_true(rv == 0 || rv == QPEER_EMALFORMED);
    if (rv == 0)
      assert_true(d.n < s.n);
  }
  assert_int_equal(qpeer__candlist_decode(NULL, buf, (size_t)n), UV_EINVAL);
  assert_int_equal(qpeer__candlist_decode(&d, NULL, 3), UV_EINVAL);
}

static void test_candidate_list_corruption(void **state) {
  uint8_t buf[QPEER__CANDLIST_ENC_MAX], t[QPEER__CANDLIST_ENC_MAX];
  qpeer__candset s, d;
  size_t k;
  unsigned v;
  int n, rv;
  (void)state;
  vector_set(&s);
  n = qpeer__candlist_encode(&s, QPEER__CANDLIST_RELATED, buf, sizeof(buf));
  /* Every value at every position is caught (CRC-32C catches every
   * single-byte error). */
  for (k = 0; k < (size_t)n; k++) {
    for (v = 0; v < 256; v++) {
      if (v == buf[k])
        continue;
      memcpy(t, buf, (size_t)n);
      t[k] = (uint8_t)v;
      rv = qpeer__candlist_decode(&d, t, (size_t)n);
      assert_true(rv == QPEER_ECHECKSUM);
    }
  }
}

/* A raw list under construction. */
typedef struct {
  uint8_t b[8192]; /* bytes so far */
  size_t n;        /* bytes used */
} raw_t;

static void raw_bytes(raw_t *r, const void *p, size_t n) {
  assert_true(r->n + n <= sizeof(r->b));
  memcpy(r->b + r->n, p, n);
  r->n += n;
}

static void raw_u8(raw_t *r, uint8_t v) { raw_bytes(r, &v, 1); }

static void raw_u32(raw_t *r, uint32_t v) {
  uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                   (uint8_t)v};
  raw_bytes(r, be, 4);
}

/* raw_varint_len appends |v| as a QUIC varint of exactly |len| bytes. */
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

/* raw_cand4 appends a CAND record value for an IPv4 address into |v|. */
static void raw_cand(raw_t *r, uint8_t flags, uint8_t type, uint64_t seq,
                     uint32_t prio, const char *ip, uint16_t port,
                     const char *rel, uint16_t rport) {
  raw_t v;
  uint8_t a[16];
  v.n = 0;
  raw_u8(&v, flags);
  raw_u8(&v, type);
  raw_varint(&v, seq);
  raw_u32(&v, prio);
  raw_u32(&v, 0x12345678u);
  if (strchr(ip, ':')) {
    assert_int_equal(inet_pton(AF_INET6, ip, a), 1);
    raw_bytes(&v, a, 16);
  } else {
    assert_int_equal(inet_pton(AF_INET, ip, a), 1);
    raw_bytes(&v, a, 4);
  }
  raw_u8(&v, (uint8_t)(port >> 8));
  raw_u8(&v, (uint8_t)port);
  if (rel != NULL) {
    if (strchr(rel, ':')) {
      assert_int_equal(inet_pton(AF_INET6, rel, a), 1);
      raw_bytes(&v, a, 16);
    } else {
      assert_int_equal(inet_pton(AF_INET, rel, a), 1);
      raw_bytes(&v, a, 4);
    }
    raw_u8(&v, (uint8_t)(rport >> 8));
    raw_u8(&v, (uint8_t)rport);
  }
  raw_varint(r, 0x02);
  raw_varint(r, v.n);
  raw_bytes(r, v.b, v.n);
}

/* raw_finish appends the CRC-32C and decodes; returns the result. */
static int raw_decode(raw_t *r, qpeer__candset *d) {
  raw_u32(r, crc32c(r->b, r->n));
  return qpeer__candlist_decode(d, r->b, r->n);
}

#define PRIO 0x64bfffffu

static void test_candidate_list_rules(void **state) {
  qpeer__candset d;
  raw_t r;
  int i;
  (void)state;

  /* A well-formed base case. */
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0, 2, 5, PRIO, "203.0.113.1", 9, NULL, 0);
  raw_cand(&r, 1, 1, 6, PRIO + 1, "2001:db8::1", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), 0);
  assert_int_equal(d.n, 2);
  assert_int_equal(d.e[0].seq, 6);
  assert_int_equal(d.next_seq, 7);
  /* A relay candidate with a related address of the other family. */
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0x06, 4, 0, 255, "203.0.113.1", 443, "2001:db8::9", 4000);
  assert_int_equal(raw_decode(&r, &d), 0);
  assert_int_equal(d.e[0].cand.base.ss_family, AF_INET6);
  /* ... but not for another type. */
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0x06, 2, 0, 255, "203.0.113.1", 443, "2001:db8::9", 4000);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  /* Unknown odd records are skipped, unknown even ones rejected. */
  r.n = 0;
  raw_u8(&r, 1);
  raw_varint(&r, 0x0f);
  raw_varint(&r, 3);
  raw_bytes(&r, "abc", 3);
  raw_cand(&r, 0, 2, 5, PRIO, "203.0.113.1", 9, NULL, 0);
  raw_varint(&r, 0x3fff);
  raw_varint(&r, 0);
  assert_int_equal(raw_decode(&r, &d), 0);
  assert_int_equal(d.n, 1);
  r.n = 0;
  raw_u8(&r, 1);
  raw_varint(&r, 0x04);
  raw_varint(&r, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_varint(&r, 0x00);
  raw_varint(&r, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  /* Non-shortest record type or length. */
  r.n = 0;
  raw_u8(&r, 1);
  raw_varint_len(&r, 0x0f, 2);
  raw_varint(&r, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_varint(&r, 0x0f);
  raw_varint_len(&r, 0, 4);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  /* A length past the end; a header cut in two. */
  r.n = 0;
  raw_u8(&r, 1);
  raw_varint(&r, 0x0f);
  raw_varint(&r, 5);
  raw_bytes(&r, "ab", 2);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_u8(&r, 0x40);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  /* Bad flags: unknown bits, RELATED6 without RELATED. */
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0x08, 2, 5, PRIO, "203.0.113.1", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0x04, 2, 5, PRIO, "203.0.113.1", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  /* The flags say IPv6 but the value holds IPv4 (too short), and the
   * reverse (bytes left over). */
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0x01, 2, 5, PRIO, "203.0.113.1", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0x00, 2, 5, PRIO, "2001:db8::1", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  /* Related equal to the address. */
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0x02, 2, 5, PRIO, "203.0.113.1", 9, "203.0.113.1", 9);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  /* Invalid candidates: type, priority, port, address. */
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0, 0, 5, PRIO, "203.0.113.1", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0, 6, 5, PRIO, "203.0.113.1", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0, 2, 5, 0, "203.0.113.1", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0, 2, 5, 0x80000000u, "203.0.113.1", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0, 2, 5, PRIO, "203.0.113.1", 0, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0, 2, 5, PRIO, "224.0.0.9", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 1, 2, 5, PRIO, "::ffff:203.0.113.1", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 2, 2, 5, PRIO, "203.0.113.1", 9, "10.0.0.1", 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  /* Duplicate address (whatever the type), duplicate number. */
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0, 2, 5, PRIO, "203.0.113.1", 9, NULL, 0);
  raw_cand(&r, 0, 1, 6, PRIO + 9, "203.0.113.1", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_cand(&r, 0, 2, 5, PRIO, "203.0.113.1", 9, NULL, 0);
  raw_cand(&r, 0, 2, 5, PRIO, "203.0.113.2", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  /* A number above 2^62 - 1 cannot be written; 33 candidates. */
  r.n = 0;
  raw_u8(&r, 1);
  for (i = 0; i < QPEER__CANDSET_MAX; i++) {
    char ip[32];
    snprintf(ip, sizeof(ip), "203.0.113.%d", i + 1);
    raw_cand(&r, 0, 2, (uint64_t)i, PRIO, ip, 9, NULL, 0);
  }
  {
    raw_t ok = r;
    assert_int_equal(raw_decode(&ok, &d), 0);
    assert_int_equal(d.n, QPEER__CANDSET_MAX);
  }
  raw_cand(&r, 0, 2, 99, PRIO, "203.0.113.99", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EMALFORMED);
  /* Another version, intact: unsupported; oversize. */
  r.n = 0;
  raw_u8(&r, 2);
  raw_cand(&r, 0, 2, 5, PRIO, "203.0.113.1", 9, NULL, 0);
  assert_int_equal(raw_decode(&r, &d), QPEER_EUNSUPPORTED);
  r.n = 0;
  raw_u8(&r, 1);
  raw_varint(&r, 0x0f);
  raw_varint(&r, QPEER__CANDLIST_DEC_MAX);
  for (i = 0; i < QPEER__CANDLIST_DEC_MAX; i++)
    raw_u8(&r, 0);
  assert_int_equal(raw_decode(&r, &d), UV_EMSGSIZE);
  /* Exactly the largest accepted size decodes. */
  r.n = 0;
  raw_u8(&r, 1);
  raw_varint(&r, 0x0f);
  raw_varint(&r, QPEER__CANDLIST_DEC_MAX - 1 - 3 - 4);
  for (i = 0; i < QPEER__CANDLIST_DEC_MAX - 1 - 3 - 4; i++)
    raw_u8(&r, 0);
  assert_int_equal(raw_decode(&r, &d), 0);
  assert_int_equal(r.n, QPEER__CANDLIST_DEC_MAX);
}

static void test_candidate_list_encoder_checks(void **state) {
  uint8_t buf[QPEER__CANDLIST_ENC_MAX];
  qpeer__candset s;
  (void)state;
  vector_set(&s);
  s.e[1].cand.priority = 0;
  assert_int_equal(qpeer__candlist_encode(&s, 0, buf, sizeof(buf)), UV_EINVAL);
  vector_set(&s);
  s.e[1].seq = s.e[0].seq;
  assert_int_equal(qpeer__candlist_encode(&s, 0, buf, sizeof(buf)), UV_EINVAL);
  vector_set(&s);
  s.e[1].cand.addr = s.e[0].cand.addr;
  assert_int_equal(qpeer__candlist_encode(&s, 0, buf, sizeof(buf)), UV_EINVAL);
  vector_set(&s);
  s.e[2].seq = 1ULL << 62;
  assert_int_equal(qpeer__candlist_encode(&s, 0, buf, sizeof(buf)), UV_EINVAL);
  vector_set(&s);
  s.n = QPEER__CANDSET_MAX + 1;
  assert_int_equal(qpeer__candlist_encode(&s, 0, buf, sizeof(buf)), UV_EINVAL);
  assert_int_equal(qpeer__candlist_encode(NULL, 0, buf, sizeof(buf)),
                   UV_EINVAL);
}

/* ---- Pairing. ---- */

static void test_candidate_pair_priority(void **state) {
  (void)state;
  /* 2^32 min + 2 max + (G > D). */
  assert_true(qpeer__cand_pair_priority(10, 20) == (10ULL << 32) + 40);
  assert_true(qpeer__cand_pair_priority(20, 10) == (10ULL << 32) + 41);
  assert_true(qpeer__cand_pair_priority(7, 7) == (7ULL << 32) + 14);
  assert_true(qpeer__cand_pair_priority(0x7fffffffu, 0x7fffffffu) ==
              (0x7fffffffULL << 32) + 0xfffffffeULL);
  /* The controlling side's higher candidate breaks the tie. */
  assert_true(qpeer__cand_pair_priority(20, 10) >
              qpeer__cand_pair_priority(10, 20));
}

/* add_remote adds a remote candidate with number |seq|. */
static void add_remote(qpeer__candset *s, qpeer_candidate_type t,
                       const char *ip, uint16_t port, uint64_t seq) {
  qpeer_candidate_t c;
  mk(&c, t, ip, port, NULL, 0, 0, QPEER_CANDIDATE_SRC_PEER);
  if (t != QPEER_CANDIDATE_HOST) {
    c.base = c.addr;
  }
  assert_true(qpeer__candset_add_seq(s, &c, seq, NULL) >= 0);
}

static void test_candidate_pairs_fold(void **state) {
  qpeer__candset l, r;
  qpeer_candidate_t c;
  qpeer__cand_pair p[QPEER__PAIRS_MAX];
  struct sockaddr_storage a;
  size_t n, i;
  (void)state;
  qpeer__candset_init(&l);
  qpeer__candset_init(&r);
  /* Client: a host address behind NAT, its STUN mapping and a port
   * mapping, all with base 192.168.1.2:4000. */
  mk(&c, QPEER_CANDIDATE_HOST, "192.168.1.2", 4000, NULL, 0, 0, 1);
  qpeer__candset_add(&l, &c, NULL);
  mk(&c, QPEER_CANDIDATE_SRFLX, "198.51.100.2", 61000, "192.168.1.2", 4000, 0,
     2);
  qpeer__candset_add(&l, &c, NULL);
  mk(&c, QPEER_CANDIDATE_MAPPED, "198.51.100.2", 4000, "192.168.1.2", 4000, 0,
     8);
  qpeer__candset_add(&l, &c, NULL);
  /* Server: a private host address and a public mapping. */
  add_remote(&r, QPEER_CANDIDATE_HOST, "10.9.0.5", 5000, 0);
  add_remote(&r, QPEER_CANDIDATE_SRFLX, "203.0.113.7", 5000, 1);

  n = qpeer__cand_pairs_build(&l, &r, p, QPEER__PAIRS_MAX);
  /* One base, two remotes: two checklist entries, each carrying the three
   * local addresses as punch targets, best first. */
  assert_int_equal(n, 2);
  for (i = 0; i < n; i++) {
    assert_true(qpeer__addr_equal((struct sockaddr *)&p[i].base,
                                  sa(&a, "192.168.1.2", 4000)));
    assert_int_equal(p[i].ntargets, 3);
    assert_true(qpeer__addr_equal((struct sockaddr *)&p[i].targets[0],
                                  sa(&a, "192.168.1.2", 4000)));
    assert_true(qpeer__addr_equal((struct sockaddr *)&p[i].targets[1],
                                  sa(&a, "198.51.100.2", 4000)));
    assert_true(qpeer__addr_equal((struct sockaddr *)&p[i].targets[2],
                                  sa(&a, "198.51.100.2", 61000)));
    assert_int_equal(p[i].local_type, QPEER_CANDIDATE_HOST);
    assert_int_equal(p[i].local_prio, l.e[0].cand.priority);
  }
  /* The host remote has the higher priority. */
  assert_int_equal(p[0].remote_seq, 0);
  assert_int_equal(p[0].remote_type, QPEER_CANDIDATE_HOST);
  assert_true(qpeer__addr_equal((struct sockaddr *)&p[0].remote,
                                sa(&a, "10.9.0.5", 5000)));
  assert_int_equal(p[1].remote_seq, 1);
  assert_true(p[0].priority > p[1].priority);
  assert_true(p[0].priority == qpeer__cand_pair_priority(l.e[0].cand.priority,
                                                         r.e[0].cand.priority));
  assert_int_equal(p[1].remote_prio, r.e[1].cand.priority);
}

static void test_candidate_pairs_rules(void **state) {
  qpeer__candset l, r;
  qpeer_candidate_t c;
  qpeer__cand_pair p[QPEER__PAIRS_MAX];
  struct sockaddr_storage a;
  struct sockaddr_in6 *ll;
  size_t n, i;
  (void)state;
  qpeer__candset_init(&l);
  qpeer__candset_init(&r);
  mk(&c, QPEER_CANDIDATE_HOST, "192.168.1.2", 4000, NULL, 0, 0, 1);
  qpeer__candset_add(&l, &c, NULL);
  mk(&c, QPEER_CANDIDATE_HOST, "2001:db8:1::2", 4000, NULL, 0, 0, 1);
  qpeer__candset_add(&l, &c, NULL);
  sa(&a, "fe80::2", 4000);
  ll = (struct sockaddr_in6 *)&a;
  ll->sin6_scope_id = 3;
  assert_int_equal(qpeer__cand_init(&c, QPEER_CANDIDATE_HOST,
                                    (struct sockaddr *)&a, NULL, NULL, 1, 0),
                   0);
  qpeer__candset_add(&l, &c, NULL);
  mk(&c, QPEER_CANDIDATE_HOST, "127.0.0.1", 4000, NULL, 0, 0, 1);
  qpeer__candset_add(&l, &c, NULL);
  mk(&c, QPEER_CANDIDATE_RELAY, "198.51.100.80", 443, "192.168.1.2", 4000, 0,
     0x80);
  qpeer__candset_add(&l, &c, NULL);

  add_remote(&r, QPEER_CANDIDATE_HOST, "203.0.113.7", 5000, 0);
  add_remote(&r, QPEER_CANDIDATE_HOST, "2001:db8:2::7", 5000, 1);
  add_remote(&r, QPEER_CANDIDATE_HOST, "fe80::7", 5000, 2);
  add_remote(&r, QPEER_CANDIDATE_HOST, "127.0.0.1", 5000, 3);
  add_remote(&r, QPEER_CANDIDATE_RELAY, "198.51.100.81", 443, 4);
  add_remote(&r, QPEER_CANDIDATE_HOST, "169.254.3.3", 5000, 5);

  n = qpeer__cand_pairs_build(&l, &r, p, QPEER__PAIRS_MAX);
  /* v4 global <-> v4 global, v6 global <-> v6 global, link-local <->
   * link-local, loopback <-> loopback; no relay, no 169.254 peer (the
   * client has no IPv4 link-local address). */
  assert_int_equal(n, 4);
  for (i = 0; i < n; i++) {
    int lk = qpeer__cand_addr_class((struct sockaddr *)&p[i].base);
    int rk = qpeer__cand_addr_class((struct sockaddr *)&p[i].remote);
    assert_int_equal(p[i].base.ss_family, p[i].remote.ss_family);
    assert_true(lk == rk || (lk > QPEER__CAND_CLASS_LINK_LOCAL &&
                             rk > QPEER__CAND_CLASS_LINK_LOCAL));
    assert_true(p[i].local_type != QPEER_CANDIDATE_RELAY);
    assert_true(p[i].remote_type != QPEER_CANDIDATE_RELAY);
    if (i > 0)
      assert_true(p[i - 1].priority >= p[i].priority);
    if (lk == QPEER__CAND_CLASS_LINK_LOCAL &&
        p[i].remote.ss_family == AF_INET6) {
      uint32_t scope;
      memcpy(&scope,
             (const uint8_t *)&p[i].remote +
                 offsetof(struct sockaddr_in6, sin6_scope_id),
             sizeof(scope));
      assert_int_equal(scope, 3);
    }
  }
  /* Highest first: the IPv6 pair. */
  assert_int_equal(p[0].remote_seq, 1);
  /* The limit keeps the best. */
  assert_int_equal(qpeer__cand_pairs_build(&l, &r, p, 2), 2);
  assert_int_equal(p[0].remote_seq, 1);
  assert_int_equal(p[1].remote_seq, 0);
  assert_int_equal(qpeer__cand_pairs_build(&l, &r, p, 0), 0);
  /* Empty sets pair to nothing. */
  qpeer__candset_init(&r);
  assert_int_equal(qpeer__cand_pairs_build(&l, &r, p, QPEER__PAIRS_MAX), 0);
}

static void test_candidate_pairs_limit_order(void **state) {
  static qpeer__candset l, r;
  static qpeer__cand_pair p[QPEER__PAIRS_MAX], q[QPEER__PAIRS_MAX];
  qpeer_candidate_t c;
  char ip[64];
  size_t n, i, k;
  (void)state;
  qpeer__candset_init(&l);
  qpeer__candset_init(&r);
  /* 32 x 32 candidates with distinct bases: 1024 possible pairs. */
  for (i = 0; i < QPEER__CANDSET_MAX; i++) {
    snprintf(ip, sizeof(ip), "10.0.%zu.1", i);
    mk(&c, QPEER_CANDIDATE_HOST, ip, 4000, NULL, 0, (unsigned)i, 1);
    assert_int_equal(qpeer__candset_add(&l, &c, NULL), 0);
    snprintf(ip, sizeof(ip), "203.0.113.%zu", i + 1);
    mk(&c, i % 2 ? QPEER_CANDIDATE_SRFLX : QPEER_CANDIDATE_HOST, ip, 5000, NULL,
       0, (unsigned)(31 - i), 1);
    c.base = c.addr;
    assert_int_equal(qpeer__candset_add_seq(&r, &c, 100 + i, NULL), 0);
  }
  n = qpeer__cand_pairs_build(&l, &r, p, 1000);
  assert_int_equal(n, QPEER__PAIRS_MAX); /* capped */
  for (i = 1; i < n; i++) {
    assert_true(p[i - 1].priority >= p[i].priority);
    if (p[i - 1].priority == p[i].priority)
      assert_true(p[i - 1].remote_seq <= p[i].remote_seq);
  }
  /* Every pair is the best possible: nothing left out beats the last. */
  for (i = 0; i < l.n; i++)
    for (k = 0; k < r.n; k++) {
      uint64_t pr =
          qpeer__cand_pair_priority(l.e[i].cand.priority, r.e[k].cand.priority);
      size_t j;
      int found = 0;
      for (j = 0; j < n; j++)
        if (qpeer__addr_equal((struct sockaddr *)&p[j].base,
                              (struct sockaddr *)&l.e[i].cand.base) &&
            p[j].remote_seq == r.e[k].seq)
          found = 1;
      if (!found)
        assert_true(pr <= p[n - 1].priority);
    }
  /* Deterministic; a smaller limit is a prefix. */
  assert_int_equal(qpeer__cand_pairs_build(&l, &r, q, 10), 10);
  for (i = 0; i < 10; i++)
    assert_memory_equal(&p[i], &q[i], sizeof(p[i]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_candidate_priority_values),
      cmocka_unit_test(test_candidate_priority_order),
      cmocka_unit_test(test_candidate_foundation),
      cmocka_unit_test(test_candidate_init_rules),
      cmocka_unit_test(test_candidate_remote),
      cmocka_unit_test(test_candidate_set_merge),
      cmocka_unit_test(test_candidate_set_order_and_bound),
      cmocka_unit_test(test_candidate_set_remote_seq),
      cmocka_unit_test(test_candidate_list_vector),
      cmocka_unit_test(test_candidate_list_roundtrip),
      cmocka_unit_test(test_candidate_list_max),
      cmocka_unit_test(test_candidate_list_truncation),
      cmocka_unit_test(test_candidate_list_corruption),
      cmocka_unit_test(test_candidate_list_rules),
      cmocka_unit_test(test_candidate_list_encoder_checks),
      cmocka_unit_test(test_candidate_pair_priority),
      cmocka_unit_test(test_candidate_pairs_fold),
      cmocka_unit_test(test_candidate_pairs_rules),
      cmocka_unit_test(test_candidate_pairs_limit_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
