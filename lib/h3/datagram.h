/* SPDX-License-Identifier: MIT */
/*
 * HTTP/3 Datagrams (RFC 9297 §2.1) as carried in QUIC DATAGRAM frames:
 * Quarter Stream ID, then the RFC 9298 Context ID, then the payload. Also
 * the connect-udp-listen draft's uncompressed-context payload (IP Version,
 * IP Address, UDP Port, UDP Payload). Pure: no I/O, no allocation; decoders
 * return pointers into their input.
 */
#ifndef QPEER_H3_DATAGRAM_H
#define QPEER_H3_DATAGRAM_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The largest Quarter Stream ID (RFC 9297 §2.1). */
#define QPEER__H3_QSID_MAX (((uint64_t)1 << 60) - 1)

/* The largest UDP payload one context-0 datagram may carry (RFC 9298 §5). */
#define QPEER__UDP_PAYLOAD_MAX 65527

/* Size of the uncompressed-context address header (IP Version, IP Address,
 * UDP Port) for IPv4 and IPv6. */
#define QPEER__H3_UNCOMPRESSED_V4_LEN (1 + 4 + 2)
#define QPEER__H3_UNCOMPRESSED_V6_LEN (1 + 16 + 2)

/* The most bytes qpeer__h3_datagram_write_header and
 * qpeer__h3_datagram_write_addr together put before a UDP payload. */
#define QPEER__H3_DATAGRAM_OVERHEAD_MAX (8 + 8 + QPEER__H3_UNCOMPRESSED_V6_LEN)

/* qpeer__h3_datagram_write_header writes the Quarter Stream ID of
 * |stream_id| and |context_id|; the payload follows. |stream_id| must be a
 * client-initiated bidirectional stream (a multiple of 4, at most
 * 4 * QPEER__H3_QSID_MAX). Returns the bytes written, UV_ENOBUFS, or
 * UV_EINVAL for a bad stream ID or a context ID above 2^62-1. */
ssize_t qpeer__h3_datagram_write_header(uint8_t *dest, size_t destlen,
                                        int64_t stream_id, uint64_t context_id);

/* qpeer__h3_datagram_encode writes a whole HTTP/3 Datagram: the header
 * above followed by |payloadlen| bytes of |payload| (NULL if empty).
 * Returns the bytes written or an error as above. */
ssize_t qpeer__h3_datagram_encode(uint8_t *dest, size_t destlen,
                                  int64_t stream_id, uint64_t context_id,
                                  const uint8_t *payload, size_t payloadlen);

/* qpeer__h3_datagram_decode parses one QUIC DATAGRAM frame payload. It
 * stores the request stream ID (4 * Quarter Stream ID), the Context ID and
 * a pointer to the rest (no copy). Returns 0, QPEER_ETRUNCATED if either
 * varint is cut short, or QPEER_EMALFORMED if the Quarter Stream ID exceeds
 * QPEER__H3_QSID_MAX (both are H3_DATAGRAM_ERROR for the first varint).
 * |*pstream_id| is set as soon as the Quarter Stream ID parsed, so a caller
 * can find the stream even when the Context ID is missing. */
int qpeer__h3_datagram_decode(const uint8_t *data, size_t len,
                              int64_t *pstream_id, uint64_t *pcontext_id,
                              const uint8_t **ppayload, size_t *ppayloadlen);

/* qpeer__h3_datagram_write_addr writes the uncompressed-context header for
 * |addr| (AF_INET or AF_INET6): IP Version (4 or 6), IP Address, UDP Port.
 * The UDP payload follows. Returns the bytes written, UV_ENOBUFS, or
 * UV_EINVAL for another family. */
ssize_t qpeer__h3_datagram_write_addr(uint8_t *dest, size_t destlen,
                                      const struct sockaddr *addr);

/* qpeer__h3_datagram_encode_uncompressed writes the header above followed
 * by |payloadlen| bytes of |payload|. This is the HTTP Datagram Payload
 * after the Context ID. Returns the bytes written or an error as above. */
ssize_t qpeer__h3_datagram_encode_uncompressed(uint8_t *dest, size_t destlen,
                                               const struct sockaddr *addr,
                                               const uint8_t *payload,
                                               size_t payloadlen);

/* qpeer__h3_datagram_decode_uncompressed parses an uncompressed-context
 * payload (the bytes after the Context ID) into |*paddr| and a pointer to
 * the UDP payload (no copy). Returns 0, QPEER_ETRUNCATED, or
 * QPEER_EMALFORMED for an IP Version other than 4 or 6. */
int qpeer__h3_datagram_decode_uncompressed(const uint8_t *data, size_t len,
                                           struct sockaddr_storage *paddr,
                                           const uint8_t **ppayload,
                                           size_t *ppayloadlen);

#endif /* QPEER_H3_DATAGRAM_H */
