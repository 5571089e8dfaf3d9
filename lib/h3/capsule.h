/* SPDX-License-Identifier: MIT */
/*
 * The RFC 9297 Capsule Protocol codec: an incremental parser that turns the
 * byte stream of an HTTP/3 CONNECT data stream into whole capsules, plus
 * writers and decoders for the capsules qpeer uses (DATAGRAM, and the
 * connect-udp-listen draft's COMPRESSION_ASSIGN / _ACK / _CLOSE). Pure: no
 * I/O, no clock; allocation only through qpeer__malloc.
 */
#ifndef QPEER_H3_CAPSULE_H
#define QPEER_H3_CAPSULE_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Capsule types (RFC 9297 §3.5; draft-ietf-masque-connect-udp-listen-09+). */
#define QPEER__CAPSULE_DATAGRAM 0x00
#define QPEER__CAPSULE_COMPRESSION_ASSIGN 0x11
#define QPEER__CAPSULE_COMPRESSION_ACK 0x12
#define QPEER__CAPSULE_COMPRESSION_CLOSE 0x13

/* The largest capsule value the parser buffers unless told otherwise: a
 * full 65535-byte UDP datagram plus its Context ID and the bind draft's
 * uncompressed address header (8 + 1 + 16 + 2 bytes), rounded up. */
#define QPEER__CAPSULE_MAX_VALUE_DEFAULT (65535 + 32)

/* The longest capsule header: two 8-byte varints. */
#define QPEER__CAPSULE_HEADER_MAX 16

/* One complete capsule as returned by the parser. |value| is borrowed: it
 * points into the caller's input or the parser's buffer and is valid until
 * the next call on the parser. */
typedef struct {
  uint64_t type;        /* Capsule Type */
  const uint8_t *value; /* Capsule Value (never NULL, even when len is 0) */
  size_t len;           /* Capsule Length */
} qpeer__capsule;

/* The incremental parser. Known capsule types (the four above) are
 * delivered whole, up to |max_value| bytes of value; anything longer is a
 * QPEER_EMALFORMED error. Unknown types are skipped as they stream past,
 * whatever their length, and never buffered. */
typedef struct {
  uint8_t *buf;     /* value reassembly buffer (qpeer__malloc'd or NULL) */
  size_t bufcap;    /* allocated size of |buf|, never above max_value */
  size_t max_value; /* largest value accepted for a known type */
  uint8_t hdr[QPEER__CAPSULE_HEADER_MAX]; /* header bytes seen so far */
  size_t hdrlen;                          /* bytes in |hdr| */
  uint64_t type;                          /* type of the capsule being read */
  uint64_t len;      /* value length of the capsule being read */
  uint64_t have;     /* value bytes buffered or skipped so far */
  uint64_t nskipped; /* number of unknown capsules skipped (statistics) */
  int state;         /* a parser state (capsule.c) */
  int err;           /* sticky error once state is the error state */
} qpeer__capsule_parser;

/* qpeer__capsule_parser_init prepares |p| to accept capsule values of up to
 * |max_value| bytes (0 selects QPEER__CAPSULE_MAX_VALUE_DEFAULT). Nothing is
 * allocated until a capsule has to be reassembled. Returns 0. */
int qpeer__capsule_parser_init(qpeer__capsule_parser *p, size_t max_value);

/* qpeer__capsule_parser_free releases the reassembly buffer. */
void qpeer__capsule_parser_free(qpeer__capsule_parser *p);

/* qpeer__capsule_parser_feed consumes bytes from |data| (|len| available)
 * until one capsule is complete or the input is used up, and stores the
 * number of bytes consumed in |*pnread|. It returns 1 when |*pcap| holds a
 * complete capsule of a known type, 0 when all input was consumed without
 * completing one, or a negative code: QPEER_EMALFORMED for a known capsule
 * longer than max_value, UV_ENOMEM. Errors are sticky. When the whole
 * capsule lies in |data| its value points there (no copy). Call it in a
 * loop, advancing |data| by |*pnread|, until it returns 0. */
int qpeer__capsule_parser_feed(qpeer__capsule_parser *p, const uint8_t *data,
                               size_t len, size_t *pnread,
                               qpeer__capsule *pcap);

/* qpeer__capsule_parser_end tells the parser the stream ended (FIN). It
 * returns 0 at a capsule boundary or QPEER_ETRUNCATED if the stream ended
 * inside a capsule, which RFC 9297 §3.3 makes a malformed message. */
int qpeer__capsule_parser_end(const qpeer__capsule_parser *p);

/* qpeer__capsule_is_known is nonzero for the types the parser delivers. */
int qpeer__capsule_is_known(uint64_t type);

/* qpeer__capsule_write_header writes Type and Length for a value of |len|
 * bytes, so the caller can append the value itself. Returns the bytes
 * written, UV_ENOBUFS, or UV_EINVAL if either exceeds 2^62-1. */
ssize_t qpeer__capsule_write_header(uint8_t *dest, size_t destlen,
                                    uint64_t type, uint64_t len);

/* qpeer__capsule_write writes a whole capsule of any type. Returns the bytes
 * written, UV_ENOBUFS or UV_EINVAL. */
ssize_t qpeer__capsule_write(uint8_t *dest, size_t destlen, uint64_t type,
                             const uint8_t *value, size_t len);

/* qpeer__capsule_write_datagram writes a DATAGRAM capsule whose HTTP
 * Datagram Payload is Context ID (i) followed by |datalen| bytes of |data|
 * (|data| may be NULL when |datalen| is 0). Returns the bytes written,
 * UV_ENOBUFS, or UV_EINVAL if |context_id| exceeds 2^62-1. */
ssize_t qpeer__capsule_write_datagram(uint8_t *dest, size_t destlen,
                                      uint64_t context_id, const uint8_t *data,
                                      size_t datalen);

/* qpeer__capsule_write_datagram_header writes the DATAGRAM capsule header
 * and Context ID for a payload of |datalen| bytes that the caller sends
 * right after (scatter-gather). Returns the bytes written or an error as
 * above. */
ssize_t qpeer__capsule_write_datagram_header(uint8_t *dest, size_t destlen,
                                             uint64_t context_id,
                                             size_t datalen);

/* qpeer__capsule_write_compression_assign writes COMPRESSION_ASSIGN. A NULL
 * |addr| registers the uncompressed context (IP Version 0); an AF_INET or
 * AF_INET6 |addr| registers a compressed context for that address and port
 * (sent as is: an IPv4-mapped IPv6 address stays IPv6). Returns the bytes
 * written, UV_ENOBUFS, or UV_EINVAL for context 0, a context above 2^62-1
 * or another address family. */
ssize_t qpeer__capsule_write_compression_assign(uint8_t *dest, size_t destlen,
                                                uint64_t context_id,
                                                const struct sockaddr *addr);

/* qpeer__capsule_write_compression_ack and _close write COMPRESSION_ACK and
 * COMPRESSION_CLOSE for |context_id|. Return the bytes written, UV_ENOBUFS,
 * or UV_EINVAL for context 0 or a context above 2^62-1. */
ssize_t qpeer__capsule_write_compression_ack(uint8_t *dest, size_t destlen,
                                             uint64_t context_id);
ssize_t qpeer__capsule_write_compression_close(uint8_t *dest, size_t destlen,
                                               uint64_t context_id);

/* A decoded COMPRESSION_ASSIGN. */
typedef struct {
  uint64_t context_id;          /* the context being registered (never 0) */
  uint8_t ip_version;           /* 0 (uncompressed), 4 or 6 */
  struct sockaddr_storage addr; /* address and port; AF_UNSPEC for 0 */
} qpeer__compression_assign;

/* The decoders below take one capsule value (as returned by the parser).
 * They return 0, QPEER_ETRUNCATED if the value is shorter than its fields,
 * or QPEER_EMALFORMED if it is longer or a field is invalid. RFC 9297 §3.3
 * treats both errors as a malformed message. */

/* qpeer__capsule_decode_datagram splits a DATAGRAM value into its Context
 * ID and the rest, which |*pdata| points into (no copy). */
int qpeer__capsule_decode_datagram(const uint8_t *value, size_t len,
                                   uint64_t *pcontext_id, const uint8_t **pdata,
                                   size_t *pdatalen);

/* qpeer__capsule_decode_compression_assign decodes COMPRESSION_ASSIGN.
 * Context ID 0 and IP versions other than 0, 4 and 6 are malformed. */
int qpeer__capsule_decode_compression_assign(const uint8_t *value, size_t len,
                                             qpeer__compression_assign *pa);

/* qpeer__capsule_decode_compression_ack and _close decode the Context ID.
 * Context 0 is malformed: it can never have been assigned. */
int qpeer__capsule_decode_compression_ack(const uint8_t *value, size_t len,
                                          uint64_t *pcontext_id);
int qpeer__capsule_decode_compression_close(const uint8_t *value, size_t len,
                                            uint64_t *pcontext_id);

#endif /* QPEER_H3_CAPSULE_H */
