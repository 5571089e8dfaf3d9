/* SPDX-License-Identifier: MIT */
/*
 * Packet classification (see demux.h). A datagram is STUN only if the top
 * two bits are zero, it holds a 20-byte header whose length field equals
 * the rest of the datagram (a multiple of 4), and bytes 4..7 are the magic
 * cookie 0x2112A442. Everything with the top bit set is a QUIC long header;
 * everything else may be a QUIC short header, whose fixed bit an ngtcp2
 * peer may have greased, so it is routed by DCID, not by its first byte.
 */
#include "net/demux.h"

int qpeer__demux_is_stun(const uint8_t *p, size_t len) {
  size_t mlen;
  if (len < 20 || (p[0] & 0xc0) != 0)
    return 0;
  if (p[4] != 0x21 || p[5] != 0x12 || p[6] != 0xa4 || p[7] != 0x42)
    return 0;
  mlen = ((size_t)p[2] << 8) | p[3];
  return mlen == len - 20 && (mlen & 3) == 0;
}

qpeer__pkt_class qpeer__demux_classify(const uint8_t *pkt, size_t len,
                                       size_t short_dcidlen) {
  if (len == 0)
    return QPEER__PKT_EMPTY;
  if (pkt[0] & 0x80)
    return QPEER__PKT_QUIC_LONG;
  if (qpeer__demux_is_stun(pkt, len))
    return QPEER__PKT_STUN;
  if (len < 1 + short_dcidlen)
    return QPEER__PKT_SHORT;
  return QPEER__PKT_QUIC_SHORT;
}
