/* SPDX-License-Identifier: MIT */
/*
 * The packet classifier for the endpoint's one socket (RFC 7983/9443 with
 * the STUN magic-cookie check, because ngtcp2 greases the QUIC bit). Pure.
 */
#ifndef QPEER_NET_DEMUX_H
#define QPEER_NET_DEMUX_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  QPEER__PKT_EMPTY = 0,   /* zero-length datagram */
  QPEER__PKT_QUIC_LONG,   /* long header (incl. Version Negotiation) */
  QPEER__PKT_QUIC_SHORT,  /* could be a short header: route by DCID */
  QPEER__PKT_STUN,        /* a STUN message (cookie and length check) */
  QPEER__PKT_SHORT        /* too short for a short header with our CIDs */
} qpeer__pkt_class;

/* qpeer__demux_classify classifies one datagram. |short_dcidlen| is the
 * length of the connection IDs this endpoint issues. */
qpeer__pkt_class qpeer__demux_classify(const uint8_t *pkt, size_t len,
                                       size_t short_dcidlen);

/* qpeer__demux_is_stun applies the STUN check alone. */
int qpeer__demux_is_stun(const uint8_t *pkt, size_t len);

#endif /* QPEER_NET_DEMUX_H */
