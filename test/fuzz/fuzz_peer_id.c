/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for qpeer_peer_id_parse. Any accepted text must format back
 * to itself in lower case, and that canonical text must parse to the same
 * key. Inputs are NUL-terminated copies, so embedded NULs are exercised.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qpeer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text, out[QPEER_PEER_ID_STRLEN];
  qpeer_peer_id_t a, b;
  size_t i;
  int r;

  text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  r = qpeer_peer_id_parse(&a, text);
  if (r != 0 && r != QPEER_EBADPEERID && r != QPEER_EPEERIDCHECK)
    abort();
  if (r == 0) {
    if (strlen(text) != QPEER_PEER_ID_TEXT_LEN)
      abort();
    if (qpeer_peer_id_format(&a, out, sizeof(out)) != QPEER_PEER_ID_TEXT_LEN)
      abort();
    for (i = 0; i < QPEER_PEER_ID_TEXT_LEN; i++) {
      char c = text[i];
      if (c >= 'A' && c <= 'Z')
        c = (char)(c - 'A' + 'a');
      if (c != out[i])
        abort();
    }
    if (qpeer_peer_id_parse(&b, out) != 0 || !qpeer_peer_id_equal(&a, &b))
      abort();
  }
  free(text);
  return 0;
}
