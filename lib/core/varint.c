/* SPDX-License-Identifier: MIT */
/* QUIC varints and bounded byte readers/writers (see varint.h). */
#include <string.h>

#include "core/varint.h"
#include "internal.h"

size_t qpeer__varint_len(uint64_t v) {
  if (v < 64)
    return 1;
  if (v < 16384)
    return 2;
  if (v < 1073741824)
    return 4;
  if (v <= QPEER__VARINT_MAX)
    return 8;
  return 0;
}

int qpeer__varint_encode(uint8_t *dest, size_t destlen, uint64_t v) {
  size_t n = qpeer__varint_len(v), i;
  static const uint8_t prefix[9] = {0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0};
  if (n == 0)
    return UV_EINVAL;
  if (destlen < n)
    return UV_ENOBUFS;
  for (i = 0; i < n; i++)
    dest[n - 1 - i] = (uint8_t)(v >> (8 * i));
  dest[0] |= prefix[n];
  return (int)n;
}

int qpeer__varint_decode(uint64_t *pv, const uint8_t *src, size_t srclen) {
  size_t n, i;
  uint64_t v;
  if (srclen < 1)
    return QPEER_ETRUNCATED;
  n = (size_t)1 << (src[0] >> 6);
  if (srclen < n)
    return QPEER_ETRUNCATED;
  v = src[0] & 0x3f;
  for (i = 1; i < n; i++)
    v = (v << 8) | src[i];
  *pv = v;
  return (int)n;
}

int qpeer__rbuf_varint(qpeer__rbuf *b, uint64_t *pv) {
  int n = qpeer__varint_decode(pv, b->p, qpeer__rbuf_left(b));
  if (n < 0)
    return n;
  b->p += n;
  return 0;
}

int qpeer__rbuf_u8(qpeer__rbuf *b, uint8_t *pv) {
  if (qpeer__rbuf_left(b) < 1)
    return QPEER_ETRUNCATED;
  *pv = *b->p++;
  return 0;
}

int qpeer__rbuf_u16(qpeer__rbuf *b, uint16_t *pv) {
  if (qpeer__rbuf_left(b) < 2)
    return QPEER_ETRUNCATED;
  *pv = qpeer__get_u16(b->p);
  b->p += 2;
  return 0;
}

int qpeer__rbuf_u32(qpeer__rbuf *b, uint32_t *pv) {
  if (qpeer__rbuf_left(b) < 4)
    return QPEER_ETRUNCATED;
  *pv = qpeer__get_u32(b->p);
  b->p += 4;
  return 0;
}

int qpeer__rbuf_bytes(qpeer__rbuf *b, const uint8_t **pp, size_t n) {
  if (qpeer__rbuf_left(b) < n)
    return QPEER_ETRUNCATED;
  *pp = b->p;
  b->p += n;
  return 0;
}

int qpeer__wbuf_varint(qpeer__wbuf *b, uint64_t v) {
  int n = qpeer__varint_encode(b->p, (size_t)(b->end - b->p), v);
  if (n < 0)
    return n;
  b->p += n;
  return 0;
}

int qpeer__wbuf_u8(qpeer__wbuf *b, uint8_t v) {
  if (b->end - b->p < 1)
    return UV_ENOBUFS;
  *b->p++ = v;
  return 0;
}

int qpeer__wbuf_u16(qpeer__wbuf *b, uint16_t v) {
  if (b->end - b->p < 2)
    return UV_ENOBUFS;
  qpeer__put_u16(b->p, v);
  b->p += 2;
  return 0;
}

int qpeer__wbuf_u32(qpeer__wbuf *b, uint32_t v) {
  if (b->end - b->p < 4)
    return UV_ENOBUFS;
  qpeer__put_u32(b->p, v);
  b->p += 4;
  return 0;
}

int qpeer__wbuf_bytes(qpeer__wbuf *b, const void *src, size_t n) {
  if ((size_t)(b->end - b->p) < n)
    return UV_ENOBUFS;
  if (n)
    memcpy(b->p, src, n);
  b->p += n;
  return 0;
}
