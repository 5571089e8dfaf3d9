/* SPDX-License-Identifier: MIT */
/*
 * SHA-256 of a byte stream, printed as hex: the camera hashes what it
 * writes, the phone what it reads, and the NAT-lab test compares the two.
 */
#ifndef QPEER_EXAMPLES_DIGEST_H
#define QPEER_EXAMPLES_DIGEST_H

#include <stddef.h>

#include <gnutls/crypto.h>

#define DIGEST_HEX_LEN 65 /* 64 hex digits and a NUL */

typedef struct digest {
  gnutls_hash_hd_t h; /* NULL until digest_init succeeded */
} digest;

/* Starts a SHA-256. Returns 0, or -1 if GnuTLS cannot. */
int digest_init(digest *d);
/* Adds |len| bytes. */
void digest_add(digest *d, const void *data, size_t len);
/* Writes the digest of everything added so far as hex. */
void digest_hex(digest *d, char out[DIGEST_HEX_LEN]);
/* Releases it (a no-op for one never started). */
void digest_free(digest *d);

#endif
