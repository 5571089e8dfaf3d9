/* SPDX-License-Identifier: MIT */
/*
 * Target address policy of qpeer-relay (pure): which destinations a
 * CONNECT-UDP tunnel or a bound address may send to. Loopback, private,
 * link-local, multicast, broadcast, reserved and the relay's own
 * addresses are denied by default; CIDR allow and deny lists refine that.
 *
 * Decision, for a target address A (IPv4-mapped and NAT64 64:ff9b::/96
 * addresses are judged as the IPv4 address they carry):
 *   1. Port 0 and unspecified addresses are always denied.
 *   2. The longest matching allow or deny rule wins; on a tie, deny.
 *   3. A winning allow rule lifts a default-deny class only if the rule
 *      lies inside that class's block (allow 10.1.0.0/16 lifts "private";
 *      allow 0.0.0.0/0 does not), and lifts "own address" only if it is a
 *      host rule (/32 or /128).
 *   4. Otherwise the class decides; public addresses are allowed unless
 *      the policy's default is deny.
 */
#ifndef QPEER_RELAYD_POLICY_H
#define QPEER_RELAYD_POLICY_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Most allow rules, deny rules and own addresses. */
#define RELAYD_POLICY_MAX_RULES 256
#define RELAYD_POLICY_MAX_OWN 64
/* Longest CIDR text ("ffff:...:ffff/128"), plus NUL. */
#define RELAYD_CIDR_STRLEN 64

/* Address classes. */
typedef enum {
  RELAYD_ADDR_PUBLIC = 0,  /* globally routable unicast */
  RELAYD_ADDR_UNSPECIFIED, /* 0.0.0.0/8, ::/128 */
  RELAYD_ADDR_LOOPBACK,    /* 127/8, ::1 */
  RELAYD_ADDR_PRIVATE,     /* RFC 1918, 100.64/10, fc00::/7, fec0::/10,
                              64:ff9b:1::/48 */
  RELAYD_ADDR_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
  RELAYD_ADDR_MULTICAST,   /* 224/4, ff00::/8 */
  RELAYD_ADDR_BROADCAST,   /* 255.255.255.255 */
  RELAYD_ADDR_RESERVED     /* 240/4, 192.0.0/24, 198.18/15, 100::/64,
                              ::/96 (IPv4-compatible) */
} relayd_addr_class;

/* Verdicts: XX(enum suffix, name). Names go into Proxy-Status details
 * and metric labels. */
#define RELAYD_POLICY_VERDICT_MAP(XX)                                          \
  XX(ALLOW, "allowed")                                                         \
  XX(DENY_RULE, "denied_by_rule")                                              \
  XX(DENY_DEFAULT, "denied_by_default")                                        \
  XX(DENY_PORT, "denied_port_zero")                                            \
  XX(DENY_FAMILY, "denied_family")                                             \
  XX(DENY_UNSPECIFIED, "denied_unspecified")                                   \
  XX(DENY_LOOPBACK, "denied_loopback")                                         \
  XX(DENY_PRIVATE, "denied_private")                                           \
  XX(DENY_LINK_LOCAL, "denied_link_local")                                     \
  XX(DENY_MULTICAST, "denied_multicast")                                       \
  XX(DENY_BROADCAST, "denied_broadcast")                                       \
  XX(DENY_RESERVED, "denied_reserved")                                         \
  XX(DENY_OWN, "denied_own_address")

/* clang-format off */
typedef enum {
#define RELAYD_POLICY_VERDICT_ENUM(e, n) RELAYD_POLICY_##e,
  RELAYD_POLICY_VERDICT_MAP(RELAYD_POLICY_VERDICT_ENUM)
#undef RELAYD_POLICY_VERDICT_ENUM
  RELAYD_POLICY__COUNT
} relayd_policy_verdict;
/* clang-format on */

/* An IPv4 or IPv6 prefix. */
typedef struct relayd_cidr_s {
  int family;       /* AF_INET or AF_INET6 */
  unsigned prefix;  /* prefix length, 0..32 or 0..128 */
  uint8_t addr[16]; /* network address (4 or 16 bytes used) */
} relayd_cidr_t;

/* A target policy. Fill it with relayd_policy_init and the _add calls;
 * relayd_policy_check only reads it. */
typedef struct relayd_policy_s {
  relayd_cidr_t allow[RELAYD_POLICY_MAX_RULES]; /* allow rules */
  size_t nallow;                                /* how many */
  relayd_cidr_t deny[RELAYD_POLICY_MAX_RULES];  /* deny rules */
  size_t ndeny;                                 /* how many */
  relayd_cidr_t own[RELAYD_POLICY_MAX_OWN];     /* the relay's addresses,
                                                   as host prefixes */
  size_t nown;                                  /* how many */
  int default_deny; /* nonzero: public targets need an allow rule */
} relayd_policy_t;

/* relayd_cidr_parse parses "ADDR/LEN" or a bare address (a host prefix).
 * Host bits beyond the prefix must be zero (10.0.0.1/8 is an error).
 * Returns 0 or -1. */
int relayd_cidr_parse(const char *text, relayd_cidr_t *cidr);

/* relayd_cidr_format writes |cidr| as text into |buf| (at least
 * RELAYD_CIDR_STRLEN bytes). Returns |buf|. */
char *relayd_cidr_format(const relayd_cidr_t *cidr, char *buf, size_t len);

/* relayd_cidr_contains says whether |sa| (normalized as above) lies in
 * |cidr|. */
int relayd_cidr_contains(const relayd_cidr_t *cidr, const struct sockaddr *sa);

/* relayd_addr_classify returns the class of |sa| (AF_INET or AF_INET6;
 * anything else is UNSPECIFIED) and, if |pblock| is not NULL, the prefix
 * length of the class block it falls in (0 for public). */
relayd_addr_class relayd_addr_classify(const struct sockaddr *sa,
                                       unsigned *pblock);

/* relayd_policy_init empties |p|: no rules, no own addresses, public
 * targets allowed. */
void relayd_policy_init(relayd_policy_t *p);

/* relayd_policy_add_allow / _add_deny append a rule. relayd_policy_add_own
 * records one of the relay's own addresses (the port is ignored). Return
 * 0, or -1 when the list is full or the address family is unknown. */
int relayd_policy_add_allow(relayd_policy_t *p, const relayd_cidr_t *cidr);
int relayd_policy_add_deny(relayd_policy_t *p, const relayd_cidr_t *cidr);
int relayd_policy_add_own(relayd_policy_t *p, const struct sockaddr *sa);

/* relayd_policy_check judges the target |sa| (address and port). */
relayd_policy_verdict relayd_policy_check(const relayd_policy_t *p,
                                          const struct sockaddr *sa);

/* relayd_policy_verdict_name returns the verdict's name, e.g.
 * "denied_loopback". */
const char *relayd_policy_verdict_name(relayd_policy_verdict v);

#endif /* QPEER_RELAYD_POLICY_H */
