/* SPDX-License-Identifier: MIT */
/* RFC 4648 base32 without padding, lower case out, any case in (the text
 * forms of peer IDs and tickets). Pure. */
#ifndef QPEER_CORE_BASE32_H
#define QPEER_CORE_BASE32_H

#include <stddef.h>
#include <stdint.h>

/* Characters needed for |n| bytes. */
#define QPEER__BASE32_LEN(n) (((n)*8 + 4) / 5)

/* Writes the base32 of |in| (|n| bytes) to |out| (room for
 * QPEER__BASE32_LEN(n) characters; no NUL). Returns the characters written. */
size_t qpeer__base32_encode(char *out, const uint8_t *in, size_t n);

/* Decodes |len| characters into |out| (room |outlen|). Returns the bytes
 * written, or -1 for a character outside the alphabet, a length no encoder
 * makes, nonzero padding bits, or too little room. */
long qpeer__base32_decode(uint8_t *out, size_t outlen, const char *in,
                          size_t len);

#endif /* QPEER_CORE_BASE32_H */
