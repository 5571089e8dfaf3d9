/* SPDX-License-Identifier: MIT */
/*
 * HTTP/3 Datagram framing (see datagram.h): first the Quarter Stream ID and
 * Context ID header, then the bind draft's uncompressed-context address
 * header. Pure: no I/O, no allocation.
 */
#include <string.h>

#include "core/varint.h"
#include "h3/datagram.h"
#include "internal.h"

/* A non-NULL base for empty inputs (pointer arithmetic on NULL is UB). */
static const uint8_t empty_input[1];

ssize_t qpeer__h3_datagram_write_header(uint8_t *dest, size_t destlen,
                                        int64_t stream_id,
                                        uint64_t context_id) {
  qpeer__wbuf w;
  int rv;
  if (stream_id < 0 || stream_id % 4 != 0 ||
      (uint64_t)stream_id / 4 > QPEER__H3_QSID_MAX ||
      context_id > QPEER__VARINT_MAX)
    return UV_EINVAL;
  qpeer__wbuf_init(&w, dest, destlen);
  rv = qpeer__wbuf_varint(&w, (uint64_t)stream_id / 4);
  if (rv == 0)
    rv = qpeer__wbuf_varint(&w, context_id);
  if (rv < 0)
    return rv;
  return (ssize_t)(w.p - dest);
}

ssize_t qpeer__h3_datagram_encode(uint8_t *dest, size_t destlen,
                                  int64_t stream_id, uint64_t context_id,
                                  const uint8_t *payload, size_t payloadlen) {
  ssize_t n =
      qpeer__h3_datagram_write_header(dest, destlen, stream_id, context_id);
  if (n < 0)
    return n;
  if (destlen - (size_t)n < payloadlen)
    return UV_ENOBUFS;
  if (payloadlen)
    memcpy(dest + n, payload, payloadlen);
  return n + (ssize_t)payloadlen;
}

int qpeer__h3_datagram_decode(const uint8_t *data, size_t len,
                              int64_t *pstream_id, uint64_t *pcontext_id,
                              const uint8_t **ppayload, size_t *ppayloadlen) {
  qpeer__rbuf r;
  uint64_t qsid;
  int rv;
  qpeer__rbuf_init(&r, data ? data : empty_input, len);
  rv = qpeer__rbuf_varint(&r, &qsid);
  if (rv < 0)
    return rv;
  if (qsid > QPEER__H3_QSID_MAX)
    return QPEER_EMALFORMED;
  *pstream_id = (int64_t)(qsid * 4);
  rv = qpeer__rbuf_varint(&r, pcontext_id);
  if (rv < 0)
    return rv;
  *ppayload = r.p;
  *ppayloadlen = qpeer__rbuf_left(&r);
  return 0;
}

ssize_t qpeer__h3_datagram_write_addr(uint8_t *dest, size_t destlen,
                                      const struct sockaddr *addr) {
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const void *)addr;
    if (destlen < QPEER__H3_UNCOMPRESSED_V4_LEN)
      return UV_ENOBUFS;
    dest[0] = 4;
    memcpy(dest + 1, &a->sin_addr, 4);
    memcpy(dest + 5, &a->sin_port, 2); /* both already big-endian */
    return QPEER__H3_UNCOMPRESSED_V4_LEN;
  }
  if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const void *)addr;
    if (destlen < QPEER__H3_UNCOMPRESSED_V6_LEN)
      return UV_ENOBUFS;
    dest[0] = 6;
    memcpy(dest + 1, &a->sin6_addr, 16);
    memcpy(dest + 17, &a->sin6_port, 2);
    return QPEER__H3_UNCOMPRESSED_V6_LEN;
  }
  return UV_EINVAL;
}

ssize_t qpeer__h3_datagram_encode_uncompressed(uint8_t *dest, size_t destlen,
                                               const struct sockaddr *addr,
                                               const uint8_t *payload,
                                               size_t payloadlen) {
  ssize_t n = qpeer__h3_datagram_write_addr(dest, destlen, addr);
  if (n < 0)
    return n;
  if (destlen - (size_t)n < payloadlen)
    return UV_ENOBUFS;
  if (payloadlen)
    memcpy(dest + n, payload, payloadlen);
  return n + (ssize_t)payloadlen;
}

int qpeer__h3_datagram_decode_uncompressed(const uint8_t *data, size_t len,
                                           struct sockaddr_storage *paddr,
                                           const uint8_t **ppayload,
                                           size_t *ppayloadlen) {
  size_t hlen;
  if (len < 1)
    return QPEER_ETRUNCATED;
  memset(paddr, 0, sizeof(*paddr));
  if (data[0] == 4) {
    struct sockaddr_in *a = (void *)paddr;
    hlen = QPEER__H3_UNCOMPRESSED_V4_LEN;
    if (len < hlen)
      return QPEER_ETRUNCATED;
    a->sin_family = AF_INET;
    memcpy(&a->sin_addr, data + 1, 4);
    memcpy(&a->sin_port, data + 5, 2);
  } else if (data[0] == 6) {
    struct sockaddr_in6 *a = (void *)paddr;
    hlen = QPEER__H3_UNCOMPRESSED_V6_LEN;
    if (len < hlen)
      return QPEER_ETRUNCATED;
    a->sin6_family = AF_INET6;
    memcpy(&a->sin6_addr, data + 1, 16);
    memcpy(&a->sin6_port, data + 17, 2);
  } else {
    return QPEER_EMALFORMED;
  }
  *ppayload = data + hlen;
  *ppayloadlen = len - hlen;
  return 0;
}
