/* SPDX-License-Identifier: MIT */
/*
 * The bootstrap cache file format, version 1 (doc/bootstrap.md): a header
 * (magic "QPBC", version, record count), length-prefixed records, one per
 * peer, most recent first, and a CRC-32C trailer over everything before it.
 * Pure: no I/O, no clock, no allocation. The encoder is incremental so that
 * the cache can feed it from its list; the decoder checks the whole file
 * before it hands out the first entry.
 */
#ifndef QPEER_PEER_BOOTSTRAP_FMT_H
#define QPEER_PEER_BOOTSTRAP_FMT_H

#include <stddef.h>
#include <stdint.h>

#include "qpeer/bootstrap.h"
#include "qpeer/ticket.h"

/* The format version this library writes and reads. */
#define QPEER__BOOTSTRAP_FMT_VERSION 1
/* Magic, version (u16) and count (u16). */
#define QPEER__BOOTSTRAP_FMT_HEADER_LEN 8
/* The CRC-32C trailer. */
#define QPEER__BOOTSTRAP_FMT_TRAILER_LEN 4
/* Each record starts with its body length (u16). */
#define QPEER__BOOTSTRAP_FMT_RECLEN_LEN 2
/* Smallest record body: peer ID, last seen (u64), path kind (u8),
 * successes (u32), address count (u8), relay count (u8). */
#define QPEER__BOOTSTRAP_FMT_RECORD_MIN (32 + 8 + 1 + 4 + 1 + 1)
/* Largest record body: 8 IPv6 addresses (type, family, 16 bytes, port)
 * and 4 relays (auth, URL length, 255-byte URL, 32-byte key). */
#define QPEER__BOOTSTRAP_FMT_RECORD_MAX                                        \
  (QPEER__BOOTSTRAP_FMT_RECORD_MIN + QPEER_BOOTSTRAP_MAX_ADDRS * 20 +          \
   QPEER_BOOTSTRAP_MAX_RELAYS * (2 + (QPEER_TICKET_URL_MAX - 1) + 32))
/* Smallest file: header and trailer, no records. */
#define QPEER__BOOTSTRAP_FMT_MIN_LEN                                           \
  (QPEER__BOOTSTRAP_FMT_HEADER_LEN + QPEER__BOOTSTRAP_FMT_TRAILER_LEN)
/* Longest file the encoder writes for |n| records. */
#define QPEER__BOOTSTRAP_FMT_MAX_LEN(n)                                        \
  (QPEER__BOOTSTRAP_FMT_MIN_LEN +                                              \
   (size_t)(n) *                                                               \
       (QPEER__BOOTSTRAP_FMT_RECLEN_LEN + QPEER__BOOTSTRAP_FMT_RECORD_MAX))

/* An incremental encoder over a caller's buffer. */
typedef struct {
  uint8_t *buf;  /* start of the output */
  size_t buflen; /* room at |buf| */
  size_t len;    /* bytes written so far */
  size_t count;  /* records added so far */
  int err;       /* first error met; sticky */
} qpeer__bootstrap_enc;

/* qpeer__bootstrap_enc_init starts a file in |buf| (room |buflen|). Errors
 * (UV_ENOBUFS) are sticky and reported by _add and _finish. */
void qpeer__bootstrap_enc_init(qpeer__bootstrap_enc *enc, uint8_t *buf,
                               size_t buflen);

/* qpeer__bootstrap_enc_add appends the record of |e|. Returns 0 or one of:
 * UV_EINVAL when |e| breaks a rule the decoder checks (counts over the
 * limits, an invalid or duplicate address or relay, an unknown enum value,
 * an IPv4-mapped IPv6 address) or QPEER_BOOTSTRAP_MAX_ENTRIES records were
 * already added; UV_ENOBUFS. A UV_EINVAL leaves the encoder usable (the
 * record is not written); UV_ENOBUFS does not. */
int qpeer__bootstrap_enc_add(qpeer__bootstrap_enc *enc,
                             const qpeer_bootstrap_entry_t *e);

/* qpeer__bootstrap_enc_finish writes the count and the trailer. Returns the
 * file length or UV_ENOBUFS. */
int qpeer__bootstrap_enc_finish(qpeer__bootstrap_enc *enc);

/* qpeer__bootstrap_fmt_entry_cb receives one decoded entry (borrowed for
 * the call). A nonzero return stops the decoder, which returns it. */
typedef int (*qpeer__bootstrap_fmt_entry_cb)(void *arg,
                                             const qpeer_bootstrap_entry_t *e);

/* qpeer__bootstrap_fmt_decode checks the |len| bytes at |buf| as a whole
 * and only then calls |cb| (which may be NULL: check only) for each record
 * in file order. Returns 0, the first nonzero return of |cb|, or one of:
 *  - QPEER_EBOOTSTRAP: shorter than the empty file, longer than
 *    QPEER_BOOTSTRAP_FILE_MAX, wrong magic, CRC-32C mismatch, a count over
 *    QPEER_BOOTSTRAP_MAX_ENTRIES or not matching the records, a record
 *    length out of bounds, a malformed record (bad enum, address or URL,
 *    duplicate address or relay, bytes left over), a duplicate peer ID, or
 *    bytes between the last record and the trailer;
 *  - QPEER_EUNSUPPORTED: the CRC matches but the version is not
 *    QPEER__BOOTSTRAP_FMT_VERSION. */
int qpeer__bootstrap_fmt_decode(const uint8_t *buf, size_t len,
                                qpeer__bootstrap_fmt_entry_cb cb, void *arg);

/* qpeer__bootstrap_add_relay appends a copy of |r| to |t| with the ticket
 * helper its |auth| calls for. Returns as qpeer_ticket_add_relay (UV_EINVAL
 * also for an unknown |auth| or a URL without its NUL). */
int qpeer__bootstrap_add_relay(qpeer_ticket_t *t,
                               const qpeer_ticket_relay_t *r);

/* qpeer__bootstrap_crc32c returns the CRC-32C (Castagnoli) of |len| bytes
 * at |p|. */
uint32_t qpeer__bootstrap_crc32c(const uint8_t *p, size_t len);

#endif /* QPEER_PEER_BOOTSTRAP_FMT_H */
