/* SPDX-License-Identifier: MIT */
/*
 * Candidates, internally (see doc/internals/candidate.md): priorities
 * (RFC 8445 §5.1.2, with qpeer's type and local preferences), foundations,
 * the bounded candidate set that merges duplicates, the compact versioned
 * binary form with a CRC-32C, and client-side pairing into a checklist
 * ordered by RFC 8445 §6.1.2.3 pair priority. Pure: no I/O, no clock, no
 * allocation.
 */
#ifndef QPEER_NAT_CANDIDATE_H
#define QPEER_NAT_CANDIDATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "qpeer/candidate.h"

/* Type preferences (RFC 8445 §5.1.2.2 recommends host 126, prflx 110,
 * srflx 100, relay 0; MAPPED is qpeer's: below prflx, above srflx, because
 * a gateway mapping accepts inbound packets from anyone). */
#define QPEER__CAND_PREF_HOST 126
#define QPEER__CAND_PREF_PRFLX 110
#define QPEER__CAND_PREF_MAPPED 105
#define QPEER__CAND_PREF_SRFLX 100
#define QPEER__CAND_PREF_RELAY 0

/* Address classes: the top 4 bits of the local preference (higher is
 * preferred; RFC 6724's policy table, with IPv6 global first, RFC 8421). */
enum {
  QPEER__CAND_CLASS_LOOPBACK = 1,   /* 127.0.0.0/8, ::1 */
  QPEER__CAND_CLASS_LINK_LOCAL = 3, /* 169.254.0.0/16, fe80::/10 */
  QPEER__CAND_CLASS_TEREDO = 5,     /* 2001::/32 */
  QPEER__CAND_CLASS_ULA = 7,        /* fc00::/7 */
  QPEER__CAND_CLASS_6TO4 = 9,       /* 2002::/16 */
  QPEER__CAND_CLASS_IPV4 = 11,      /* every other IPv4 address */
  QPEER__CAND_CLASS_IPV6 = 13       /* every other IPv6 address */
};

/* Largest interface order that still changes the local preference. */
#define QPEER__CAND_IF_ORDER_MAX 0xfff

/* qpeer__cand_type_pref returns the type preference of |type| (0..126), or
 * -1 for an unknown type. */
int qpeer__cand_type_pref(qpeer_candidate_type type);

/* qpeer__cand_addr_class returns the QPEER__CAND_CLASS_* of |sa| (AF_INET
 * or AF_INET6; IPv4-mapped IPv6 is classed as IPv4), or 0 for another
 * family. */
int qpeer__cand_addr_class(const struct sockaddr *sa);

/* qpeer__cand_local_pref returns the local preference of a candidate at
 * |sa| on the interface listed |if_order|-th (0 = first, preferred):
 * class << 12 | (0xfff - min(if_order, 0xfff)). */
uint16_t qpeer__cand_local_pref(const struct sockaddr *sa, unsigned if_order);

/* qpeer__cand_priority returns 2^24 * type_pref + 2^8 * local_pref +
 * (256 - component) (RFC 8445 §5.1.2.1), or 0 for an unknown |type| or a
 * component outside 1..256. */
uint32_t qpeer__cand_priority(qpeer_candidate_type type, uint16_t local_pref,
                              unsigned component);

/* qpeer__cand_foundation returns the foundation of a candidate of |type|
 * with base |base| learned from |server| (NULL or AF_UNSPEC for none): a
 * 32-bit FNV-1a hash of the type, the base IP and the server IP. */
uint32_t qpeer__cand_foundation(qpeer_candidate_type type,
                                const struct sockaddr *base,
                                const struct sockaddr *server);

/* qpeer__cand_init fills |*c| for a local candidate: |addr| and |base|
 * (NULL: |addr|) are normalized (IPv4-mapped IPv6 to IPv4), |server| (may
 * be NULL) is copied, priority and foundation are computed from |type|,
 * |addr|'s class and |if_order|, component is 1. Returns 0, or UV_EINVAL
 * (and |*c| is zeroed) if the result breaks qpeer__cand_check. */
int qpeer__cand_init(qpeer_candidate_t *c, qpeer_candidate_type type,
                     const struct sockaddr *addr, const struct sockaddr *base,
                     const struct sockaddr *server, uint32_t sources,
                     unsigned if_order);

/* qpeer__cand_remote fills |*c| for the peer's candidate at |addr| (from
 * ADD_ADDRESS): sources QPEER_CANDIDATE_SRC_PEER, base = |addr|, no
 * server, component 1. |type| and |priority| come from the peer's
 * ADDRESS_INFO; when there was none, or they are out of range (type not
 * 1..5, priority not 1..2^31 - 1), pass or get the fallback: HOST for a
 * private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback or link-local
 * address, SRFLX otherwise, with the priority of such a local candidate on
 * interface 0. Returns 0, or UV_EINVAL (|addr| unusable; |*c| zeroed). */
int qpeer__cand_remote(qpeer_candidate_t *c, const struct sockaddr *addr,
                       unsigned type, uint32_t priority);

/* qpeer__cand_check returns 0 if |c| is usable, or UV_EINVAL: unknown type;
 * |addr| not AF_INET/AF_INET6, IPv4-mapped, wildcard, multicast, broadcast,
 * in 0.0.0.0/8, or port 0; |base| not AF_INET/AF_INET6 or IPv4-mapped, or
 * of another family than |addr| (allowed for relay candidates only), or
 * port 0; priority 0 or above 2^31 - 1; component not 1. */
int qpeer__cand_check(const qpeer_candidate_t *c);

/* qpeer__cand_addr_usable returns nonzero if |sa| may be a candidate's
 * transport address (the |addr| rules of qpeer__cand_check). */
int qpeer__cand_addr_usable(const struct sockaddr *sa);

/* ---- The candidate set. ---- */

/* Most candidates in one set (and in one serialized list). */
#define QPEER__CANDSET_MAX 32

/* One entry of a set. */
typedef struct {
  qpeer_candidate_t cand; /* the candidate */
  /* Its sequence number: assigned by the set for local candidates (the
   * ADD_ADDRESS Sequence Number), or the peer's for remote ones. */
  uint64_t seq;
} qpeer__candset_entry;

/* A bounded set of candidates with distinct addresses, kept sorted by
 * priority (highest first; equal priorities by sequence number). */
typedef struct {
  size_t n;          /* entries used */
  uint64_t next_seq; /* sequence number of the next local candidate */
  qpeer__candset_entry e[QPEER__CANDSET_MAX]; /* the entries, sorted */
} qpeer__candset;

/* Results of qpeer__candset_add (nonnegative). */
enum {
  /* A new entry was added. */
  QPEER__CANDSET_ADDED = 0,
  /* A new entry was added and the lowest-priority entry was dropped to
   * make room (copied to *pevicted). */
  QPEER__CANDSET_EVICTED = 1,
  /* The address was present with an equal or higher priority: only the
   * source bits were merged. */
  QPEER__CANDSET_MERGED = 2,
  /* The address was present with a lower priority: the entry took the new
   * type, priority, base, server and foundation (and keeps its sequence
   * number); source bits were merged. */
  QPEER__CANDSET_UPGRADED = 3
};

/* qpeer__candset_init empties |s|; local sequence numbers start at 0. */
void qpeer__candset_init(qpeer__candset *s);

/* qpeer__candset_add adds the local candidate |c| (copied) with the next
 * sequence number. The same address (family, IP, port, scope) merges into
 * the existing entry, keeping the higher priority and both sources. A full
 * set drops its lowest-priority entry for a candidate of strictly higher
 * priority. Returns a QPEER__CANDSET_* result, or UV_EINVAL (|c| fails
 * qpeer__cand_check) or UV_ENOSPC (full, and |c| does not outrank the
 * lowest entry). |pevicted| may be NULL. */
int qpeer__candset_add(qpeer__candset *s, const qpeer_candidate_t *c,
                       qpeer__candset_entry *pevicted);

/* qpeer__candset_add_seq is qpeer__candset_add with the sequence number
 * |seq| chosen by the peer (a remote candidate from ADD_ADDRESS). A merge
 * keeps the existing entry's number. Also returns UV_EEXIST if another
 * address already has |seq|, and UV_EINVAL if |seq| exceeds 2^62 - 1. */
int qpeer__candset_add_seq(qpeer__candset *s, const qpeer_candidate_t *c,
                           uint64_t seq, qpeer__candset_entry *pevicted);

/* qpeer__candset_find returns the entry with address |addr|, or NULL. */
const qpeer__candset_entry *qpeer__candset_find(const qpeer__candset *s,
                                                const struct sockaddr *addr);

/* qpeer__candset_find_seq returns the entry numbered |seq|, or NULL. */
const qpeer__candset_entry *qpeer__candset_find_seq(const qpeer__candset *s,
                                                    uint64_t seq);

/* qpeer__candset_remove removes the entry numbered |seq|. Returns 0 or
 * UV_ENOENT. */
int qpeer__candset_remove(qpeer__candset *s, uint64_t seq);

/* ---- The serialized form (doc/internals/candidate.md). ---- */

/* Version byte of the serialized form. */
#define QPEER__CANDLIST_VERSION 1
/* Longest CAND record: type, length, flags, type, seq (8), priority,
 * foundation, IPv6 + port, related IPv6 + port. */
#define QPEER__CANDLIST_REC_MAX (1 + 1 + 1 + 1 + 8 + 4 + 4 + 18 + 18)
/* Longest form the encoder writes (1797 bytes). */
#define QPEER__CANDLIST_ENC_MAX                                                \
  (1 + QPEER__CANDSET_MAX * QPEER__CANDLIST_REC_MAX + 4)
/* Longest form the decoder accepts (room for later ignorable records). */
#define QPEER__CANDLIST_DEC_MAX 4096

/* Flags of qpeer__candlist_encode. */
enum {
  /* Also write each candidate's base as its related address when it
   * differs from the address (off by default: it reveals local addresses
   * behind a NAT and the peer does not need it). */
  QPEER__CANDLIST_RELATED = 0x01
};

/* qpeer__candlist_encode writes the set |s| (in its order) into |buf|
 * (room |buflen|; QPEER__CANDLIST_ENC_MAX always suffices). Written: type,
 * address, sequence number, priority, foundation, and with
 * QPEER__CANDLIST_RELATED the base. Returns the length, UV_EINVAL (an
 * entry fails qpeer__cand_check, unknown |flags|) or UV_ENOBUFS. */
int qpeer__candlist_encode(const qpeer__candset *s, unsigned flags,
                           uint8_t *buf, size_t buflen);

/* qpeer__candlist_decode reads the |len| bytes at |buf| into |*s| (written
 * only on success) as remote candidates: sources QPEER_CANDIDATE_SRC_PEER,
 * base = related address or the address, no server, the sender's sequence
 * numbers. Returns 0 or: QPEER_ETRUNCATED (shorter than 5 bytes),
 * UV_EMSGSIZE (longer than QPEER__CANDLIST_DEC_MAX), QPEER_ECHECKSUM
 * (CRC-32C mismatch), QPEER_EUNSUPPORTED (another version, intact),
 * QPEER_EMALFORMED (a bad record, an invalid candidate, a duplicate address
 * or sequence number, more than QPEER__CANDSET_MAX candidates, an unknown
 * even record type). */
int qpeer__candlist_decode(qpeer__candset *s, const uint8_t *buf, size_t len);

/* ---- Pairing (client side). ---- */

/* Local candidate addresses one pair carries for PUNCH_ME_NOW. */
#define QPEER__PAIR_MAX_TARGETS 4
/* Most pairs one checklist holds. */
#define QPEER__PAIRS_MAX 64
/* Default checklist length. */
#define QPEER__PAIRS_DEFAULT 16

/* One checklist entry: a path to validate (local base -> remote address)
 * and the local candidate addresses the peer should punch towards. Pairs
 * with the same local base and remote address are redundant for path
 * validation; they are folded into one entry whose |targets| lists their
 * local candidate addresses, best first (RFC 8445 §6.1.2.4 pruning,
 * without losing the addresses PUNCH_ME_NOW must carry). */
typedef struct {
  struct sockaddr_storage base;   /* local base: the path's local address */
  struct sockaddr_storage remote; /* the remote candidate's address */
  /* Local candidate addresses to put in PUNCH_ME_NOW, best first. */
  struct sockaddr_storage targets[QPEER__PAIR_MAX_TARGETS];
  size_t ntargets;      /* entries used in |targets| (0 for prflx pairs) */
  uint64_t remote_seq;  /* the remote candidate's sequence number */
  uint64_t priority;    /* RFC 8445 §6.1.2.3 pair priority (client is
                           controlling) of the best folded pair */
  uint32_t local_prio;  /* priority of the best local candidate */
  uint32_t remote_prio; /* priority of the remote candidate */
  qpeer_candidate_type local_type;  /* type of the best local candidate */
  qpeer_candidate_type remote_type; /* type of the remote candidate */
} qpeer__cand_pair;

/* qpeer__cand_pair_priority returns the RFC 8445 §6.1.2.3 priority of a
 * pair whose controlling side's candidate has priority |g| and controlled
 * side's |d|: 2^32 * min(g, d) + 2 * max(g, d) + (g > d ? 1 : 0). */
uint64_t qpeer__cand_pair_priority(uint32_t g, uint32_t d);

/* qpeer__cand_pairs_build forms the client's checklist from |local| and
 * |remote| into |pairs| (room |max_pairs|, at most QPEER__PAIRS_MAX):
 * relay candidates are skipped; a local and a remote candidate pair only if
 * they have the same family and the same scope (both loopback, both
 * link-local, or both neither); pairs sharing local base and remote
 * address are folded; entries are ordered by priority (highest first),
 * then remote sequence number, then local set order. A link-local remote
 * IPv6 address takes the scope ID of the local base. Returns the number of
 * pairs written (the best |max_pairs|). */
size_t qpeer__cand_pairs_build(const qpeer__candset *local,
                               const qpeer__candset *remote,
                               qpeer__cand_pair *pairs, size_t max_pairs);

#endif /* QPEER_NAT_CANDIDATE_H */
