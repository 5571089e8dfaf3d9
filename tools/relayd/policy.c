/* SPDX-License-Identifier: MIT */
/*
 * Target address policy (pure): address normalization and classes, CIDR
 * parsing and matching, and the allow/deny decision described in
 * policy.h. No I/O, no allocation.
 */
#include "policy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An address reduced to what the policy compares: IPv4 for IPv4-mapped
 * and NAT64 addresses. */
typedef struct {
  int family;       /* AF_INET or AF_INET6; 0 if unknown */
  uint8_t addr[16]; /* 4 or 16 bytes */
  uint16_t port;    /* host order */
} naddr;

static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0,    0,
                                          0, 0, 0, 0, 0xff, 0xff};
static const uint8_t nat64_prefix[12] = {0, 0x64, 0xff, 0x9b, 0, 0,
                                         0, 0,    0,    0,    0, 0};

static void normalize(const struct sockaddr *sa, naddr *n) {
  memset(n, 0, sizeof(*n));
  if (!sa)
    return;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    n->family = AF_INET;
    memcpy(n->addr, &s4->sin_addr, 4);
    n->port = ntohs(s4->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    const uint8_t *b = s6->sin6_addr.s6_addr;
    n->port = ntohs(s6->sin6_port);
    if (!memcmp(b, mapped_prefix, 12) || !memcmp(b, nat64_prefix, 12)) {
      n->family = AF_INET;
      memcpy(n->addr, b + 12, 4);
    } else {
      n->family = AF_INET6;
      memcpy(n->addr, b, 16);
    }
  }
}

static unsigned addr_bits(int family) { return family == AF_INET ? 32 : 128; }

/* prefix_match says whether the first |bits| bits of |a| and |b| agree. */
static int prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits) {
  unsigned whole = bits / 8, rest = bits % 8;
  uint8_t mask;
  if (memcmp(a, b, whole) != 0)
    return 0;
  if (rest == 0)
    return 1;
  mask = (uint8_t)(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

static int cidr_match(const relayd_cidr_t *c, const naddr *n) {
  return c->family == n->family && prefix_match(c->addr, n->addr, c->prefix);
}

/* ---- classes ------------------------------------------------------------- */

typedef struct {
  int family;            /* AF_INET or AF_INET6 */
  unsigned prefix;       /* block length */
  uint8_t addr[16];      /* block address */
  relayd_addr_class cls; /* its class */
} class_block;

#define V4(a, b, c, d)                                                         \
  { a, b, c, d }
static const class_block blocks[] = {
    {AF_INET, 8, V4(0, 0, 0, 0), RELAYD_ADDR_UNSPECIFIED},
    {AF_INET, 8, V4(10, 0, 0, 0), RELAYD_ADDR_PRIVATE},
    {AF_INET, 10, V4(100, 64, 0, 0), RELAYD_ADDR_PRIVATE},
    {AF_INET, 8, V4(127, 0, 0, 0), RELAYD_ADDR_LOOPBACK},
    {AF_INET, 16, V4(169, 254, 0, 0), RELAYD_ADDR_LINK_LOCAL},
    {AF_INET, 12, V4(172, 16, 0, 0), RELAYD_ADDR_PRIVATE},
    {AF_INET, 24, V4(192, 0, 0, 0), RELAYD_ADDR_RESERVED},
    {AF_INET, 16, V4(192, 168, 0, 0), RELAYD_ADDR_PRIVATE},
    {AF_INET, 15, V4(198, 18, 0, 0), RELAYD_ADDR_RESERVED},
    {AF_INET, 4, V4(224, 0, 0, 0), RELAYD_ADDR_MULTICAST},
    {AF_INET, 4, V4(240, 0, 0, 0), RELAYD_ADDR_RESERVED},
    {AF_INET, 32, V4(255, 255, 255, 255), RELAYD_ADDR_BROADCAST},
    {AF_INET6, 128, {0}, RELAYD_ADDR_UNSPECIFIED},
    {AF_INET6,
     128,
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
     RELAYD_ADDR_LOOPBACK},
    {AF_INET6, 96, {0}, RELAYD_ADDR_RESERVED},
    {AF_INET6, 48, {0, 0x64, 0xff, 0x9b, 0, 1}, RELAYD_ADDR_PRIVATE},
    {AF_INET6, 64, {0x01, 0x00}, RELAYD_ADDR_RESERVED},
    {AF_INET6, 7, {0xfc}, RELAYD_ADDR_PRIVATE},
    {AF_INET6, 10, {0xfe, 0x80}, RELAYD_ADDR_LINK_LOCAL},
    {AF_INET6, 10, {0xfe, 0xc0}, RELAYD_ADDR_PRIVATE},
    {AF_INET6, 8, {0xff}, RELAYD_ADDR_MULTICAST},
};
#undef V4

/* classify_n finds the most specific class block holding |n|. */
static relayd_addr_class classify_n(const naddr *n, unsigned *pblock) {
  const class_block *best = NULL;
  size_t i;
  if (pblock)
    *pblock = 0;
  if (n->family != AF_INET && n->family != AF_INET6)
    return RELAYD_ADDR_UNSPECIFIED;
  for (i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
    const class_block *b = &blocks[i];
    if (b->family == n->family && prefix_match(b->addr, n->addr, b->prefix) &&
        (!best || b->prefix > best->prefix))
      best = b;
  }
  if (!best)
    return RELAYD_ADDR_PUBLIC;
  if (pblock)
    *pblock = best->prefix;
  return best->cls;
}

relayd_addr_class relayd_addr_classify(const struct sockaddr *sa,
                                       unsigned *pblock) {
  naddr n;
  normalize(sa, &n);
  return classify_n(&n, pblock);
}

/* ---- CIDR ---------------------------------------------------------------- */

int relayd_cidr_parse(const char *text, relayd_cidr_t *cidr) {
  char buf[RELAYD_CIDR_STRLEN];
  char *slash, *end;
  unsigned long len;
  unsigned max, i;
  relayd_cidr_t c;
  if (!text || strlen(text) >= sizeof(buf))
    return -1;
  memset(&c, 0, sizeof(c));
  snprintf(buf, sizeof(buf), "%s", text);
  slash = strchr(buf, '/');
  if (slash)
    *slash = '\0';
  if (inet_pton(AF_INET, buf, c.addr) == 1)
    c.family = AF_INET;
  else if (inet_pton(AF_INET6, buf, c.addr) == 1)
    c.family = AF_INET6;
  else
    return -1;
  max = addr_bits(c.family);
  if (slash) {
    if (slash[1] < '0' || slash[1] > '9')
      return -1;
    len = strtoul(slash + 1, &end, 10);
    if (*end || len > max || (slash[1] == '0' && slash[2] != '\0'))
      return -1;
    c.prefix = (unsigned)len;
  } else {
    c.prefix = max;
  }
  /* Host bits must be zero: "10.0.0.1/8" is almost always a typo. */
  for (i = c.prefix; i < max; i++)
    if (c.addr[i / 8] & (0x80 >> (i % 8)))
      return -1;
  /* An IPv4-mapped prefix is the IPv4 prefix, so rules match what
   * normalize() produces. */
  if (c.family == AF_INET6 && c.prefix >= 96 &&
      !memcmp(c.addr, mapped_prefix, 12)) {
    memmove(c.addr, c.addr + 12, 4);
    memset(c.addr + 4, 0, 12);
    c.family = AF_INET;
    c.prefix -= 96;
  }
  *cidr = c;
  return 0;
}

char *relayd_cidr_format(const relayd_cidr_t *cidr, char *buf, size_t len) {
  char a[INET6_ADDRSTRLEN];
  if (!inet_ntop(cidr->family, cidr->addr, a, sizeof(a)))
    snprintf(a, sizeof(a), "?");
  snprintf(buf, len, "%s/%u", a, cidr->prefix);
  return buf;
}

int relayd_cidr_contains(const relayd_cidr_t *cidr, const struct sockaddr *sa) {
  naddr n;
  normalize(sa, &n);
  return cidr_match(cidr, &n);
}

/* ---- policy -------------------------------------------------------------- */

void relayd_policy_init(relayd_policy_t *p) { memset(p, 0, sizeof(*p)); }

static int valid_cidr(const relayd_cidr_t *c) {
  return c && (c->family == AF_INET || c->family == AF_INET6) &&
         c->prefix <= addr_bits(c->family);
}

int relayd_policy_add_allow(relayd_policy_t *p, const relayd_cidr_t *cidr) {
  if (!valid_cidr(cidr) || p->nallow >= RELAYD_POLICY_MAX_RULES)
    return -1;
  p->allow[p->nallow++] = *cidr;
  return 0;
}

int relayd_policy_add_deny(relayd_policy_t *p, const relayd_cidr_t *cidr) {
  if (!valid_cidr(cidr) || p->ndeny >= RELAYD_POLICY_MAX_RULES)
    return -1;
  p->deny[p->ndeny++] = *cidr;
  return 0;
}

int relayd_policy_add_own(relayd_policy_t *p, const struct sockaddr *sa) {
  naddr n;
  relayd_cidr_t *c;
  normalize(sa, &n);
  if (n.family == 0 || p->nown >= RELAYD_POLICY_MAX_OWN)
    return -1;
  c = &p->own[p->nown++];
  memset(c, 0, sizeof(*c));
  c->family = n.family;
  c->prefix = addr_bits(n.family);
  memcpy(c->addr, n.addr, sizeof(c->addr));
  return 0;
}

/* longest returns the longest prefix in |rules| matching |n|, or -1. */
static int longest(const relayd_cidr_t *rules, size_t nrules, const naddr *n) {
  int best = -1;
  size_t i;
  for (i = 0; i < nrules; i++)
    if (cidr_match(&rules[i], n) && (int)rules[i].prefix > best)
      best = (int)rules[i].prefix;
  return best;
}

static relayd_policy_verdict class_verdict(relayd_addr_class c) {
  switch (c) {
  case RELAYD_ADDR_UNSPECIFIED:
    return RELAYD_POLICY_DENY_UNSPECIFIED;
  case RELAYD_ADDR_LOOPBACK:
    return RELAYD_POLICY_DENY_LOOPBACK;
  case RELAYD_ADDR_PRIVATE:
    return RELAYD_POLICY_DENY_PRIVATE;
  case RELAYD_ADDR_LINK_LOCAL:
    return RELAYD_POLICY_DENY_LINK_LOCAL;
  case RELAYD_ADDR_MULTICAST:
    return RELAYD_POLICY_DENY_MULTICAST;
  case RELAYD_ADDR_BROADCAST:
    return RELAYD_POLICY_DENY_BROADCAST;
  case RELAYD_ADDR_RESERVED:
    return RELAYD_POLICY_DENY_RESERVED;
  case RELAYD_ADDR_PUBLIC:
    break;
  }
  return RELAYD_POLICY_ALLOW;
}

relayd_policy_verdict relayd_policy_check(const relayd_policy_t *p,
                                          const struct sockaddr *sa) {
  naddr n;
  relayd_addr_class cls;
  unsigned block;
  int allow, deny, own;
  normalize(sa, &n);
  if (n.family == 0)
    return RELAYD_POLICY_DENY_FAMILY;
  if (n.port == 0)
    return RELAYD_POLICY_DENY_PORT;
  cls = classify_n(&n, &block);
  if (cls == RELAYD_ADDR_UNSPECIFIED)
    return RELAYD_POLICY_DENY_UNSPECIFIED;
  allow = longest(p->allow, p->nallow, &n);
  deny = longest(p->deny, p->ndeny, &n);
  if (deny >= 0 && deny >= allow)
    return RELAYD_POLICY_DENY_RULE;
  own = longest(p->own, p->nown, &n) >= 0;
  if (allow >= 0) {
    if (cls != RELAYD_ADDR_PUBLIC && (unsigned)allow < block)
      return class_verdict(cls);
    if (own && (unsigned)allow < addr_bits(n.family))
      return RELAYD_POLICY_DENY_OWN;
    return RELAYD_POLICY_ALLOW;
  }
  if (cls != RELAYD_ADDR_PUBLIC)
    return class_verdict(cls);
  if (own)
    return RELAYD_POLICY_DENY_OWN;
  return p->default_deny ? RELAYD_POLICY_DENY_DEFAULT : RELAYD_POLICY_ALLOW;
}

const char *relayd_policy_verdict_name(relayd_policy_verdict v) {
  static const char *const names[] = {
#define RELAYD_POLICY_VERDICT_NAME(e, n) n,
      RELAYD_POLICY_VERDICT_MAP(RELAYD_POLICY_VERDICT_NAME)
#undef RELAYD_POLICY_VERDICT_NAME
  };
  if ((unsigned)v >= RELAYD_POLICY__COUNT)
    return "denied_unknown";
  return names[v];
}
