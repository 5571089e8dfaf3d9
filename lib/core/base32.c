/* SPDX-License-Identifier: MIT */
/* Base32 (see base32.h). */
#include "core/base32.h"

static const char alphabet[32] = "abcdefghijklmnopqrstuvwxyz234567";

/* The 5-bit value of |c| in either case, or -1. Locale-independent. */
static int value(unsigned char c) {
  if (c >= 'a' && c <= 'z')
    return c - 'a';
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= '2' && c <= '7')
    return 26 + (c - '2');
  return -1;
}

size_t qpeer__base32_encode(char *out, const uint8_t *in, size_t n) {
  uint32_t acc = 0; /* bit accumulator, at most 12 bits in use */
  unsigned int nbits = 0;
  size_t i, k = 0;
  for (i = 0; i < n; i++) {
    acc = (acc << 8) | in[i];
    nbits += 8;
    while (nbits >= 5) {
      nbits -= 5;
      out[k++] = alphabet[(acc >> nbits) & 31];
    }
    acc &= (1u << nbits) - 1;
  }
  /* The last character carries the remaining bits followed by zeros. */
  if (nbits > 0)
    out[k++] = alphabet[(acc << (5 - nbits)) & 31];
  return k;
}

long qpeer__base32_decode(uint8_t *out, size_t outlen, const char *in,
                          size_t len) {
  uint32_t acc = 0; /* bit accumulator, at most 12 bits in use */
  unsigned int nbits = 0;
  size_t i, k = 0;
  int v;
  for (i = 0; i < len; i++) {
    if ((v = value((unsigned char)in[i])) < 0)
      return -1;
    acc = (acc << 5) | (uint32_t)v;
    nbits += 5;
    if (nbits >= 8) {
      nbits -= 8;
      if (k == outlen)
        return -1;
      out[k++] = (uint8_t)(acc >> nbits);
      acc &= (1u << nbits) - 1;
    }
  }
  /* A whole character of leftover bits means a length no encoder makes;
   * leftover bits must be zero so each value has one text form. */
  if (nbits >= 5 || acc != 0)
    return -1;
  return (long)k;
}
