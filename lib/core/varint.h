/* SPDX-License-Identifier: MIT */
/*
 * QUIC variable-length integers (RFC 9000 §16) and big-endian fixed-width
 * helpers, with bounds-checked readers and writers. Pure: no I/O.
 */
#ifndef QPEER_CORE_VARINT_H
#define QPEER_CORE_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define QPEER__VARINT_MAX ((uint64_t)0x3fffffffffffffffULL)

/* qpeer__varint_len returns the shortest encoding length of |v| (1, 2, 4 or
 * 8), or 0 if |v| exceeds QPEER__VARINT_MAX. */
size_t qpeer__varint_len(uint64_t v);

/* qpeer__varint_encode writes |v| in its shortest form into |dest| (with
 * room |destlen|). Returns the bytes written, UV_ENOBUFS if it does not
 * fit, or UV_EINVAL if |v| is too large. */
int qpeer__varint_encode(uint8_t *dest, size_t destlen, uint64_t v);

/* qpeer__varint_decode reads one varint from |src| (|srclen| bytes
 * available) into |*pv|. Returns the bytes consumed or QPEER_ETRUNCATED.
 * Non-minimal encodings are accepted (RFC 9000 allows them for values). */
int qpeer__varint_decode(uint64_t *pv, const uint8_t *src, size_t srclen);

/* A cursor over a byte buffer for decoders: reads never go past |end|. */
typedef struct {
  const uint8_t *p;   /* next byte to read */
  const uint8_t *end; /* one past the last byte */
} qpeer__rbuf;

static inline void qpeer__rbuf_init(qpeer__rbuf *b, const uint8_t *p,
                                    size_t len) {
  b->p = p;
  b->end = p + len;
}
static inline size_t qpeer__rbuf_left(const qpeer__rbuf *b) {
  return (size_t)(b->end - b->p);
}
int qpeer__rbuf_varint(qpeer__rbuf *b, uint64_t *pv);
int qpeer__rbuf_u8(qpeer__rbuf *b, uint8_t *pv);
int qpeer__rbuf_u16(qpeer__rbuf *b, uint16_t *pv);
int qpeer__rbuf_u32(qpeer__rbuf *b, uint32_t *pv);
int qpeer__rbuf_bytes(qpeer__rbuf *b, const uint8_t **pp, size_t n);

/* A bounded writer: writes fail with UV_ENOBUFS instead of overflowing. */
typedef struct {
  uint8_t *p;   /* next byte to write */
  uint8_t *end; /* one past the writable area */
} qpeer__wbuf;

static inline void qpeer__wbuf_init(qpeer__wbuf *b, uint8_t *p, size_t len) {
  b->p = p;
  b->end = p + len;
}
int qpeer__wbuf_varint(qpeer__wbuf *b, uint64_t v);
int qpeer__wbuf_u8(qpeer__wbuf *b, uint8_t v);
int qpeer__wbuf_u16(qpeer__wbuf *b, uint16_t v);
int qpeer__wbuf_u32(qpeer__wbuf *b, uint32_t v);
int qpeer__wbuf_bytes(qpeer__wbuf *b, const void *src, size_t n);

static inline uint16_t qpeer__get_u16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t qpeer__get_u32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | p[3];
}
static inline void qpeer__put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void qpeer__put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

#endif /* QPEER_CORE_VARINT_H */
