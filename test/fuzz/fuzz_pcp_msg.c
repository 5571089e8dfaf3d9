/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the PCP codec (lib/nat/pcp_msg.c), which also parses the
 * NAT-PMP replies a gateway may send to the PCP port. Decodes the input as
 * a response and as a request; whatever decodes as PCP version 2 is
 * re-encoded (options other than PREFER_FAILURE are dropped), decoded
 * again and compared field by field. The epoch rules get numbers taken
 * from the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "core/varint.h"
#include "internal.h"
#include "nat/pcp_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
  if (!cond)
    abort();
}

static void check_addr(const struct sockaddr_storage *a,
                       const struct sockaddr_storage *b) {
  check(a->ss_family == b->ss_family);
  if (a->ss_family != AF_UNSPEC)
    check(qpeer__addr_equal((const struct sockaddr *)a,
                            (const struct sockaddr *)b));
}

static void fuzz_response(const uint8_t *data, size_t size) {
  uint8_t out[QPEER__PCP_MAX_LEN];
  qpeer__pcp_response r, r2;
  int n;
  if (qpeer__pcp_decode_response(&r, data, size) != 0)
    return;
  check(r.version == 0 || r.version == 2);
  (void)qpeer__pcp_result_name(r.result);
  (void)qpeer__pcp_result_is_transient(r.result);
  if (r.version != 2)
    return;
  check(r.result <= 0xff);
  check(r.opcode == QPEER__PCP_OP_MAP || r.opcode == QPEER__PCP_OP_ANNOUNCE);
  if (r.opcode == QPEER__PCP_OP_MAP && !r.has_map)
    return; /* an error without payload: the encoder always writes one */
  n = qpeer__pcp_encode_response(out, sizeof(out), &r);
  check(n > 0 && (size_t)n <= size);
  check(qpeer__pcp_decode_response(&r2, out, (size_t)n) == 0);
  check(r2.version == r.version && r2.opcode == r.opcode &&
        r2.result == r.result && r2.lifetime == r.lifetime &&
        r2.epoch == r.epoch && r2.has_map == r.has_map);
  /* PREFER_FAILURE belongs to MAP; the encoder writes it only there. */
  check(r.opcode != QPEER__PCP_OP_MAP || r2.prefer_failure == r.prefer_failure);
  if (r.has_map) {
    check(memcmp(r2.nonce, r.nonce, QPEER__PCP_NONCE_LEN) == 0);
    check(r2.protocol == r.protocol && r2.internal_port == r.internal_port &&
          r2.external_port == r.external_port);
    check_addr(&r.external, &r2.external);
  }
}

static void fuzz_request(const uint8_t *data, size_t size) {
  uint8_t out[QPEER__PCP_MAX_LEN];
  qpeer__pcp_request q, q2;
  int n;
  if (qpeer__pcp_decode_request(&q, data, size) != 0)
    return;
  n = qpeer__pcp_encode_request(out, sizeof(out), &q);
  if (q.opcode == QPEER__PCP_OP_MAP && q.external.ss_family != AF_UNSPEC &&
      q.external.ss_family != q.client.ss_family) {
    check(n == UV_EINVAL); /* mixed families cannot be re-encoded */
    return;
  }
  check(n > 0 && (size_t)n <= size);
  check(qpeer__pcp_decode_request(&q2, out, (size_t)n) == 0);
  check(q2.opcode == q.opcode && q2.lifetime == q.lifetime);
  check(q.opcode != QPEER__PCP_OP_MAP || q2.prefer_failure == q.prefer_failure);
  check_addr(&q.client, &q2.client);
  if (q.opcode == QPEER__PCP_OP_MAP) {
    check(memcmp(q2.nonce, q.nonce, QPEER__PCP_NONCE_LEN) == 0);
    check(q2.protocol == q.protocol && q2.internal_port == q.internal_port &&
          q2.external_port == q.external_port);
    check_addr(&q.external, &q2.external);
  }
}

static void fuzz_epochs(const uint8_t *data, size_t size) {
  qpeer__epoch pcp, pmp;
  uint64_t now = 0;
  size_t i;
  memset(&pcp, 0, sizeof(pcp));
  memset(&pmp, 0, sizeof(pmp));
  for (i = 0; i + 8 <= size && i < 64; i += 8) {
    uint32_t epoch = qpeer__get_u32(data + i);
    now += qpeer__get_u32(data + i + 4);
    (void)qpeer__pcp_epoch_update(&pcp, epoch, now);
    (void)qpeer__natpmp_epoch_update(&pmp, epoch, now);
    check(pcp.valid && pcp.epoch == epoch && pcp.at_ms == now);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_response(data, size);
  fuzz_request(data, size);
  fuzz_epochs(data, size);
  return 0;
}
