/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the STUN codec (lib/nat/stun_msg.c). Decodes the input;
 * if that succeeds, re-encodes every attribute the decoder understood
 * (adding MESSAGE-INTEGRITY and FINGERPRINT where the input had them),
 * decodes the result again and aborts on any inconsistency.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "internal.h"
#include "nat/stun_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key[] = "fuzz-key";

static void check(int cond) {
  if (!cond)
    abort();
}

static void check_addr(uint8_t has1, const struct sockaddr_storage *a,
                       uint8_t has2, const struct sockaddr_storage *b) {
  struct sockaddr_storage na, nb;
  check(has1 == has2);
  if (!has1)
    return;
  /* The writer sends IPv4-mapped IPv6 addresses as IPv4. */
  qpeer__addr_normalize(&na, (const struct sockaddr *)a);
  qpeer__addr_normalize(&nb, (const struct sockaddr *)b);
  check(qpeer__addr_equal((const struct sockaddr *)&na,
                          (const struct sockaddr *)&nb));
}

static void check_bytes(uint8_t has1, const uint8_t *p1, size_t n1,
                        uint8_t has2, const uint8_t *p2, size_t n2) {
  check(has1 == has2);
  if (has1)
    check(n1 == n2 && (n1 == 0 || memcmp(p1, p2, n1) == 0));
}

/* reencode writes the understood part of |m| into |out|. */
static int reencode(const qpeer__stun_msg *m, uint8_t *out, size_t outlen) {
  qpeer__stun_writer w;
  qpeer__stun_writer_init(&w, out, outlen, m->type, m->txid);
  if (m->has_xor_mapped)
    qpeer__stun_add_xor_addr(&w, QPEER__STUN_ATTR_XOR_MAPPED_ADDRESS,
                             (const struct sockaddr *)&m->xor_mapped);
  if (m->has_mapped)
    qpeer__stun_add_addr(&w, QPEER__STUN_ATTR_MAPPED_ADDRESS,
                         (const struct sockaddr *)&m->mapped);
  if (m->has_response_origin)
    qpeer__stun_add_addr(&w, QPEER__STUN_ATTR_RESPONSE_ORIGIN,
                         (const struct sockaddr *)&m->response_origin);
  if (m->has_other_address)
    qpeer__stun_add_addr(&w, QPEER__STUN_ATTR_OTHER_ADDRESS,
                         (const struct sockaddr *)&m->other_address);
  if (m->has_change_request)
    qpeer__stun_add_change_request(&w, m->change_flags);
  if (m->has_response_port)
    qpeer__stun_add_response_port(&w, m->response_port);
  if (m->has_error)
    qpeer__stun_add_error_code(&w, m->error_code, (const char *)m->error_reason,
                               m->error_reason_len);
  if (m->has_software)
    qpeer__stun_add_software(&w, (const char *)m->software, m->software_len);
  if (m->has_username)
    qpeer__stun_add_attr(&w, QPEER__STUN_ATTR_USERNAME, m->username,
                         m->username_len);
  if (m->has_padding)
    qpeer__stun_add_padding(&w, m->padding_len);
  if (m->has_integrity)
    qpeer__stun_add_integrity(&w, fuzz_key, sizeof(fuzz_key) - 1);
  return qpeer__stun_writer_finish(&w, m->has_fingerprint);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t out[QPEER__STUN_MAX_MSG_LEN];
  qpeer__stun_msg m, m2;
  const uint8_t *v;
  size_t vlen;
  int rv, n;

  rv = qpeer__stun_decode(&m, data, size);
  /* Whatever decodes (or only fails its FINGERPRINT) must classify. */
  if (rv == 0 || rv == QPEER_ECHECKSUM)
    check(qpeer__stun_is_stun(data, size));
  if (rv != 0)
    return 0;
  check(!m.has_fingerprint || m.fingerprint_ok);
  (void)qpeer__stun_find_attr(data, size, QPEER__STUN_ATTR_SOFTWARE, &v, &vlen);
  if (m.has_integrity)
    (void)qpeer__stun_verify_integrity(&m, data, size, fuzz_key,
                                       sizeof(fuzz_key) - 1);

  /* Re-encoding only drops attributes, so it always fits. */
  n = reencode(&m, out, sizeof(out));
  check(n > 0 && (size_t)n <= size);
  check(qpeer__stun_is_stun(out, (size_t)n));
  check(qpeer__stun_decode(&m2, out, (size_t)n) == 0);

  check(m2.type == m.type);
  check(memcmp(m2.txid, m.txid, QPEER__STUN_TXID_LEN) == 0);
  check_addr(m.has_xor_mapped, &m.xor_mapped, m2.has_xor_mapped,
             &m2.xor_mapped);
  check_addr(m.has_mapped, &m.mapped, m2.has_mapped, &m2.mapped);
  check_addr(m.has_response_origin, &m.response_origin, m2.has_response_origin,
             &m2.response_origin);
  check_addr(m.has_other_address, &m.other_address, m2.has_other_address,
             &m2.other_address);
  check(m2.has_change_request == m.has_change_request &&
        m2.change_flags == m.change_flags);
  check(m2.has_response_port == m.has_response_port &&
        m2.response_port == m.response_port);
  check(m2.error_code == m.error_code);
  check_bytes(m.has_error, m.error_reason, m.error_reason_len, m2.has_error,
              m2.error_reason, m2.error_reason_len);
  check_bytes(m.has_software, m.software, m.software_len, m2.has_software,
              m2.software, m2.software_len);
  check_bytes(m.has_username, m.username, m.username_len, m2.has_username,
              m2.username, m2.username_len);
  check(m2.has_padding == m.has_padding && m2.padding_len == m.padding_len);
  check(m2.unknown_count == 0);
  check(m2.has_fingerprint == m.has_fingerprint &&
        m2.fingerprint_ok == m.fingerprint_ok);
  check(m2.has_integrity == m.has_integrity);
  if (m2.has_integrity)
    check(qpeer__stun_verify_integrity(&m2, out, (size_t)n, fuzz_key,
                                       sizeof(fuzz_key) - 1) == 0);
  return 0;
}
