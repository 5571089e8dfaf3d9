/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for HTTP/3 Datagram framing (lib/h3/datagram.c). The input is
 * decoded as a QUIC DATAGRAM payload; what decodes is re-encoded (shortest
 * varints, so never longer) and decoded again. The payload, and the input
 * itself, are decoded as the bind draft's uncompressed-context format,
 * whose fixed-size fields must re-encode byte for byte. Any difference
 * aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "h3/datagram.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
  if (!cond)
    abort();
}

static void uncompressed(const uint8_t *p, size_t n) {
  struct sockaddr_storage ss, ss2;
  const uint8_t *udp, *udp2;
  size_t udplen, udp2len;
  uint8_t *buf;
  ssize_t m;
  int rv = qpeer__h3_datagram_decode_uncompressed(p, n, &ss, &udp, &udplen);
  if (rv < 0) {
    check(rv == QPEER_ETRUNCATED || rv == QPEER_EMALFORMED);
    return;
  }
  check(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
  check(udp >= p && udp + udplen == p + n);
  buf = malloc(n + 1);
  check(buf != NULL);
  m = qpeer__h3_datagram_encode_uncompressed(
      buf, n, (const struct sockaddr *)&ss, udp, udplen);
  check(m == (ssize_t)n && memcmp(buf, p, n) == 0);
  check(qpeer__h3_datagram_decode_uncompressed(buf, n, &ss2, &udp2, &udp2len) ==
        0);
  check(qpeer__addr_equal((const struct sockaddr *)&ss,
                          (const struct sockaddr *)&ss2));
  check(udp2len == udplen);
  /* One byte short of room fails cleanly. */
  check(qpeer__h3_datagram_encode_uncompressed(buf, n - 1,
                                               (const struct sockaddr *)&ss,
                                               udp, udplen) == UV_ENOBUFS);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *payload, *payload2;
  size_t payloadlen, payload2len;
  int64_t sid, sid2;
  uint64_t ctx, ctx2;
  uint8_t *buf;
  ssize_t n;
  int rv;

  uncompressed(data, size);
  rv = qpeer__h3_datagram_decode(data, size, &sid, &ctx, &payload, &payloadlen);
  if (rv < 0) {
    check(rv == QPEER_ETRUNCATED || rv == QPEER_EMALFORMED);
    return 0;
  }
  check(sid >= 0 && sid % 4 == 0 && (uint64_t)sid / 4 <= QPEER__H3_QSID_MAX);
  check(payload >= data && payload + payloadlen == data + size);
  buf = malloc(size + 1);
  check(buf != NULL);
  n = qpeer__h3_datagram_encode(buf, size, sid, ctx, payload, payloadlen);
  check(n > 0 && (size_t)n <= size);
  rv = qpeer__h3_datagram_decode(buf, (size_t)n, &sid2, &ctx2, &payload2,
                                 &payload2len);
  check(rv == 0 && sid2 == sid && ctx2 == ctx && payload2len == payloadlen);
  check(payloadlen == 0 || memcmp(payload, payload2, payloadlen) == 0);
  check(qpeer__h3_datagram_encode(buf, (size_t)n - 1, sid, ctx, payload,
                                  payloadlen) == UV_ENOBUFS);
  free(buf);
  uncompressed(payload, payloadlen);
  return 0;
}
