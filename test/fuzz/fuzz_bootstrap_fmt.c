/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the bootstrap cache file codec. Each input is tried
 * twice: as a whole file, and with a correct CRC-32C appended so that
 * mutations get past the checksum to the header and record parsers.
 * Whatever decodes must re-encode to exactly the same bytes (the format
 * is canonical), and nothing may be delivered from a file that fails.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peer/bootstrap_fmt.h"
#include "qpeer.h"

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

/* Entries of the input being checked. */
static qpeer_bootstrap_entry_t entries[QPEER_BOOTSTRAP_MAX_ENTRIES];
static size_t nentries;

static int collect(void *arg, const qpeer_bootstrap_entry_t *e) {
  (void)arg;
  if (nentries >= QPEER_BOOTSTRAP_MAX_ENTRIES)
    abort();
  entries[nentries++] = *e;
  return 0;
}

/* check decodes |len| bytes at |buf| and aborts on any broken promise. */
static void check(const uint8_t *buf, size_t len) {
  static uint8_t
      again[QPEER__BOOTSTRAP_FMT_MAX_LEN(QPEER_BOOTSTRAP_MAX_ENTRIES)];
  qpeer__bootstrap_enc enc;
  size_t i;
  int r;

  nentries = 0;
  r = qpeer__bootstrap_fmt_decode(buf, len, collect, NULL);
  if (r != 0) {
    if ((r != QPEER_EBOOTSTRAP && r != QPEER_EUNSUPPORTED) || nentries != 0)
      abort();
    return;
  }
  qpeer__bootstrap_enc_init(&enc, again, sizeof(again));
  for (i = 0; i < nentries; i++)
    if (qpeer__bootstrap_enc_add(&enc, &entries[i]) != 0)
      abort();
  r = qpeer__bootstrap_enc_finish(&enc);
  if (r < 0 || (size_t)r != len || memcmp(again, buf, len) != 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *buf;
  uint32_t c;

  if (size > QPEER_BOOTSTRAP_FILE_MAX)
    return 0;
  check(data, size);

  buf = malloc(size + 4);
  if (!buf)
    return 0;
  if (size > 0)
    memcpy(buf, data, size);
  c = crc32c(data, size);
  buf[size] = (uint8_t)(c >> 24);
  buf[size + 1] = (uint8_t)(c >> 16);
  buf[size + 2] = (uint8_t)(c >> 8);
  buf[size + 3] = (uint8_t)c;
  check(buf, size + 4);
  free(buf);
  return 0;
}
