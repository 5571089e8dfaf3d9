/* SPDX-License-Identifier: MIT */
#include "digest.h"

#include <stdint.h>
#include <stdio.h>

int digest_init(digest *d) {
  d->h = NULL;
  return gnutls_hash_init(&d->h, GNUTLS_DIG_SHA256) == 0 ? 0 : -1;
}

void digest_add(digest *d, const void *data, size_t len) {
  gnutls_hash(d->h, data, len);
}

void digest_hex(digest *d, char out[DIGEST_HEX_LEN]) {
  uint8_t md[32];
  int i;
  /* gnutls_hash_output resets the state: the digest is taken once. */
  gnutls_hash_output(d->h, md);
  for (i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void digest_free(digest *d) {
  if (d->h)
    gnutls_hash_deinit(d->h, NULL);
  d->h = NULL;
}
