/* SPDX-License-Identifier: MIT */
/*
 * The text form of a peer ID: the version character 'p' followed by the
 * unpadded RFC 4648 base32 encoding of the 32-byte key and a 2-byte
 * checksum (see doc/identity.md). Pure: no libuv, no I/O; the only
 * dependency is GnuTLS's SHA-256 for the checksum.
 */
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "core/base32.h"
#include "internal.h"

/* The version character that opens every v1 text form. */
#define PEER_ID_VERSION_CHAR 'p'

/* The checksum covers this tag followed by the key (no NUL). */
#define PEER_ID_CHECK_TAG "qpeer peer id v1"
#define PEER_ID_CHECK_TAG_LEN (sizeof(PEER_ID_CHECK_TAG) - 1)

/* Bytes of checksum appended to the key before encoding. */
#define PEER_ID_CHECK_LEN 2

/* Bytes encoded in base32: the key and its checksum (34). */
#define PEER_ID_RAW_LEN (QPEER_PEER_ID_LEN + PEER_ID_CHECK_LEN)

/* Base32 characters after the version character: ceil(34 * 8 / 5). */
#define PEER_ID_B32_LEN ((PEER_ID_RAW_LEN * 8 + 4) / 5)

/* Unused low bits of the last base32 character, which must be zero. */
#define PEER_ID_PAD_BITS (PEER_ID_B32_LEN * 5 - PEER_ID_RAW_LEN * 8)

_Static_assert(1 + PEER_ID_B32_LEN == QPEER_PEER_ID_TEXT_LEN,
               "text form is the version character plus base32");
_Static_assert(PEER_ID_PAD_BITS == 3, "34 bytes leave 3 padding bits");



/* peer_id_checksum writes the first PEER_ID_CHECK_LEN bytes of
 * SHA-256(PEER_ID_CHECK_TAG || key) into |out|. Returns 0 or QPEER_ETLS. */
static int peer_id_checksum(uint8_t out[PEER_ID_CHECK_LEN],
                            const uint8_t key[QPEER_PEER_ID_LEN]) {
  uint8_t msg[PEER_ID_CHECK_TAG_LEN + QPEER_PEER_ID_LEN];
  uint8_t digest[32];
  int r;

  memcpy(msg, PEER_ID_CHECK_TAG, PEER_ID_CHECK_TAG_LEN);
  memcpy(msg + PEER_ID_CHECK_TAG_LEN, key, QPEER_PEER_ID_LEN);
  r = gnutls_hash_fast(GNUTLS_DIG_SHA256, msg, sizeof(msg), digest);
  if (r < 0)
    return qpeer__err_from_gnutls(r);
  memcpy(out, digest, PEER_ID_CHECK_LEN);
  return 0;
}

int qpeer_peer_id_parse(qpeer_peer_id_t *ppid, const char *text) {
  uint8_t raw[PEER_ID_RAW_LEN];
  uint8_t check[PEER_ID_CHECK_LEN];
  int r;

  if (!ppid || !text)
    return UV_EINVAL;
  if (strnlen(text, QPEER_PEER_ID_TEXT_LEN + 1) != QPEER_PEER_ID_TEXT_LEN)
    return QPEER_EBADPEERID;
  if (text[0] != PEER_ID_VERSION_CHAR &&
      text[0] != PEER_ID_VERSION_CHAR - 'a' + 'A')
    return QPEER_EBADPEERID;

  /* Exactly the padding bits are left over, and they must be zero so that
   * every peer ID has a single text form (modulo case). */
  if (qpeer__base32_decode(raw, sizeof(raw), text + 1,
                           QPEER_PEER_ID_TEXT_LEN - 1) != PEER_ID_RAW_LEN)
    return QPEER_EBADPEERID;

  r = peer_id_checksum(check, raw);
  if (r != 0)
    return r;
  if (memcmp(check, raw + QPEER_PEER_ID_LEN, PEER_ID_CHECK_LEN) != 0)
    return QPEER_EPEERIDCHECK;

  memcpy(ppid->key, raw, QPEER_PEER_ID_LEN);
  return 0;
}

int qpeer_peer_id_format(const qpeer_peer_id_t *pid, char *buf, size_t buflen) {
  uint8_t raw[PEER_ID_RAW_LEN];
  size_t n = 0;
  int r;

  if (!pid || !buf)
    return UV_EINVAL;
  if (buflen < QPEER_PEER_ID_STRLEN)
    return UV_ENOBUFS;

  memcpy(raw, pid->key, QPEER_PEER_ID_LEN);
  r = peer_id_checksum(raw + QPEER_PEER_ID_LEN, pid->key);
  if (r != 0)
    return r;

  buf[n++] = PEER_ID_VERSION_CHAR;
  n += qpeer__base32_encode(buf + n, raw, PEER_ID_RAW_LEN);
  buf[n] = '\0';
  return (int)n;
}

int qpeer_peer_id_equal(const qpeer_peer_id_t *a, const qpeer_peer_id_t *b) {
  if (!a || !b)
    return 0;
  return memcmp(a->key, b->key, QPEER_PEER_ID_LEN) == 0;
}
