/* SPDX-License-Identifier: MIT */
/* Library version queries and random bytes. */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "internal.h"
#include "qpeer/version.h"

unsigned int qpeer_version(void) { return QPEER_VERSION_HEX; }

const char *qpeer_version_string(void) { return QPEER_VERSION_STR; }

int qpeer__rand(void *dest, size_t len) {
  if (gnutls_rnd(GNUTLS_RND_NONCE, dest, len) != 0)
    return QPEER_ETLS;
  return 0;
}
