/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the serialized candidate list (lib/nat/candidate.c).
 * Each input is decoded as is, and again with a correct CRC-32C appended
 * so that mutations reach the record parser. Errors are limited to the
 * documented codes. A decoded list must re-encode (with related
 * addresses) to a fixed point, survive a second decode unchanged, and
 * pair with a fixed local set into a sorted, well-formed checklist.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "internal.h"
#include "nat/candidate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
  if (!cond)
    abort();
}

/* crc32c is a bitwise CRC-32C, independent of the library's. */
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

/* local_set builds a small local set: IPv4 and IPv6 hosts, a srflx. */
static void local_set(qpeer__candset *s) {
  struct sockaddr_in a4, b4;
  struct sockaddr_in6 a6;
  qpeer_candidate_t c;
  qpeer__candset_init(s);
  memset(&a4, 0, sizeof(a4));
  a4.sin_family = AF_INET;
  a4.sin_port = htons(4000);
  a4.sin_addr.s_addr = htonl(0xc0a80102); /* 192.168.1.2 */
  b4 = a4;
  if (qpeer__cand_init(&c, QPEER_CANDIDATE_HOST, (struct sockaddr *)&a4, NULL,
                       NULL, 1, 0) == 0)
    (void)qpeer__candset_add(s, &c, NULL);
  a4.sin_addr.s_addr = htonl(0xc6336402); /* 198.51.100.2 */
  a4.sin_port = htons(61000);
  if (qpeer__cand_init(&c, QPEER_CANDIDATE_SRFLX, (struct sockaddr *)&a4,
                       (struct sockaddr *)&b4, NULL, 2, 0) == 0)
    (void)qpeer__candset_add(s, &c, NULL);
  memset(&a6, 0, sizeof(a6));
  a6.sin6_family = AF_INET6;
  a6.sin6_port = htons(4000);
  a6.sin6_addr.s6_addr[0] = 0x20;
  a6.sin6_addr.s6_addr[1] = 0x01;
  a6.sin6_addr.s6_addr[2] = 0x0d;
  a6.sin6_addr.s6_addr[3] = 0xb8;
  a6.sin6_addr.s6_addr[15] = 2;
  if (qpeer__cand_init(&c, QPEER_CANDIDATE_HOST, (struct sockaddr *)&a6, NULL,
                       NULL, 1, 1) == 0)
    (void)qpeer__candset_add(s, &c, NULL);
}

/* same_set aborts unless two decoded sets are equal. */
static void same_set(const qpeer__candset *a, const qpeer__candset *b) {
  size_t i;
  check(a->n == b->n);
  for (i = 0; i < a->n; i++) {
    const qpeer_candidate_t *x = &a->e[i].cand, *y = &b->e[i].cand;
    check(a->e[i].seq == b->e[i].seq);
    check(qpeer__addr_equal((const struct sockaddr *)&x->addr,
                            (const struct sockaddr *)&y->addr));
    check(qpeer__addr_equal((const struct sockaddr *)&x->base,
                            (const struct sockaddr *)&y->base));
    check(x->type == y->type && x->priority == y->priority &&
          x->foundation == y->foundation && x->sources == y->sources &&
          x->component == 1 && y->component == 1);
  }
}

/* check_decoded runs the invariants on a decoded set. */
static void check_decoded(const qpeer__candset *s) {
  static uint8_t b1[QPEER__CANDLIST_ENC_MAX], b2[QPEER__CANDLIST_ENC_MAX];
  static qpeer__cand_pair pairs[QPEER__PAIRS_MAX];
  qpeer__candset back, local;
  size_t i, n;
  int n1, n2;

  check(s->n <= QPEER__CANDSET_MAX);
  for (i = 0; i < s->n; i++) {
    check(qpeer__cand_check(&s->e[i].cand) == 0);
    if (i > 0)
      check(s->e[i - 1].cand.priority >= s->e[i].cand.priority);
  }
  n1 = qpeer__candlist_encode(s, QPEER__CANDLIST_RELATED, b1, sizeof(b1));
  check(n1 >= 5);
  check(qpeer__candlist_decode(&back, b1, (size_t)n1) == 0);
  same_set(s, &back);
  n2 = qpeer__candlist_encode(&back, QPEER__CANDLIST_RELATED, b2, sizeof(b2));
  check(n2 == n1 && memcmp(b1, b2, (size_t)n1) == 0);

  local_set(&local);
  n = qpeer__cand_pairs_build(&local, s, pairs, QPEER__PAIRS_MAX);
  check(n <= QPEER__PAIRS_MAX);
  for (i = 0; i < n; i++) {
    check(pairs[i].ntargets >= 1 &&
          pairs[i].ntargets <= QPEER__PAIR_MAX_TARGETS);
    check(pairs[i].base.ss_family == pairs[i].remote.ss_family);
    check(pairs[i].remote_type != QPEER_CANDIDATE_RELAY);
    check(qpeer__candset_find_seq(s, pairs[i].remote_seq) != NULL);
    if (i > 0)
      check(pairs[i - 1].priority >= pairs[i].priority);
  }
}

static void try_decode(const uint8_t *p, size_t n) {
  qpeer__candset s;
  int rv = qpeer__candlist_decode(&s, p, n);
  check(rv == 0 || rv == QPEER_ETRUNCATED || rv == UV_EMSGSIZE ||
        rv == QPEER_ECHECKSUM || rv == QPEER_EUNSUPPORTED ||
        rv == QPEER_EMALFORMED);
  if (rv == 0)
    check_decoded(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t buf[QPEER__CANDLIST_DEC_MAX + 8];
  uint32_t c;

  try_decode(data, size);
  if (size + 4 > sizeof(buf))
    return 0;
  memcpy(buf, data, size);
  c = crc32c(buf, size);
  buf[size] = (uint8_t)(c >> 24);
  buf[size + 1] = (uint8_t)(c >> 16);
  buf[size + 2] = (uint8_t)(c >> 8);
  buf[size + 3] = (uint8_t)c;
  try_decode(buf, size + 4);
  return 0;
}
