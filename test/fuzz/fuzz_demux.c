/* SPDX-License-Identifier: MIT */
/* Fuzz target: the packet classifier must accept any bytes, and its STUN
 * verdict must agree with the standalone STUN check. */
#include <stdint.h>
#include <stdlib.h>

#include "net/demux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  qpeer__pkt_class k = qpeer__demux_classify(data, size, 16);
  if ((k == QPEER__PKT_STUN) != (qpeer__demux_is_stun(data, size) != 0))
    abort();
  if (size > 0 && (data[0] & 0x80) && k != QPEER__PKT_QUIC_LONG)
    abort();
  return 0;
}
