/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the ticket codec. Each input is tried three ways: as a
 * binary ticket, as text (a NUL-terminated copy), and as binary with a
 * correct CRC-32C appended so that mutations reach the record parser
 * instead of dying at the checksum. Whatever decodes must re-encode, and
 * the re-encoding must be a fixed point in both forms.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qpeer.h"
#include "qpeer/ticket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* crc32c is a bitwise CRC-32C, independent of the library's. */
static uint32_t crc32c(const uint8_t *p, size_t len) {
  uint32_t c = 0xffffffffu;
  int k;
  while (len-- > 0) {
    c ^= *p++;
    for (k = 0; k < 8; k++)
      c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
  }
  return c ^ 0xffffffffu;
}

/* check_decoded aborts unless |t| re-encodes to a fixed point. */
static void check_decoded(const qpeer_ticket_t *t) {
  static uint8_t bin[QPEER_TICKET_BIN_MAX], bin2[QPEER_TICKET_BIN_MAX];
  static char text[QPEER_TICKET_STRLEN_MAX], text2[QPEER_TICKET_STRLEN_MAX];
  qpeer_ticket_t back;
  int n, n2, m, m2;

  n = qpeer_ticket_encode_binary(t, bin, sizeof(bin));
  if (n <= 0)
    abort();
  if (qpeer_ticket_decode_binary(&back, bin, (size_t)n) != 0)
    abort();
  n2 = qpeer_ticket_encode_binary(&back, bin2, sizeof(bin2));
  if (n2 != n || memcmp(bin, bin2, (size_t)n) != 0)
    abort();
  m = qpeer_ticket_format(t, text, sizeof(text));
  if (m <= 0 || (size_t)m != strlen(text))
    abort();
  if (qpeer_ticket_parse(&back, text) != 0)
    abort();
  m2 = qpeer_ticket_format(&back, text2, sizeof(text2));
  if (m2 != m || strcmp(text, text2) != 0)
    abort();
}

/* check_result aborts on a return code the API does not document. */
static void check_result(int r, const qpeer_ticket_t *t) {
  if (r == 0)
    check_decoded(t);
  else if (r != QPEER_ETICKET && r != QPEER_EUNSUPPORTED)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  qpeer_ticket_t t;
  uint8_t *buf;
  uint32_t c;

  check_result(qpeer_ticket_decode_binary(&t, data, size), &t);

  buf = malloc(size + 4);
  if (!buf)
    return 0;
  if (size > 0)
    memcpy(buf, data, size);
  buf[size] = '\0';
  check_result(qpeer_ticket_parse(&t, (const char *)buf), &t);

  c = crc32c(data, size);
  buf[size] = (uint8_t)(c >> 24);
  buf[size + 1] = (uint8_t)(c >> 16);
  buf[size + 2] = (uint8_t)(c >> 8);
  buf[size + 3] = (uint8_t)c;
  check_result(qpeer_ticket_decode_binary(&t, buf, size + 4), &t);
  free(buf);
  return 0;
}
