/* SPDX-License-Identifier: MIT */
/*
 * Candidates: the transport addresses at which a peer may be reachable
 * directly (ICE terminology, RFC 8445 §5.1): host addresses of local
 * interfaces, server-reflexive addresses seen by STUN servers or QUIC
 * address discovery, port mappings obtained from the gateway, peer-reflexive
 * addresses learned from incoming probes, and relay addresses. This header
 * holds the public value type; priorities, the candidate set, the compact
 * serialized form and pairing are described in doc/internals/candidate.md.
 */
#ifndef QPEER_CANDIDATE_H
#define QPEER_CANDIDATE_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "qpeer/core.h"

/** The kind of a candidate. HOST, SRFLX, MAPPED and RELAY have the values
 * of the ticket's address types (qpeer_ticket_addr_type). */
typedef enum {
  /* An address of a local interface; its base is itself. */
  QPEER_CANDIDATE_HOST = 1,
  /* Server-reflexive: a NAT's public mapping as seen by a STUN server or
   * by a QUIC peer (address discovery). */
  QPEER_CANDIDATE_SRFLX = 2,
  /* A port mapping obtained from the gateway (PCP, NAT-PMP, UPnP IGD). */
  QPEER_CANDIDATE_MAPPED = 3,
  /* An address on a relay (MASQUE CONNECT-UDP bind). */
  QPEER_CANDIDATE_RELAY = 4,
  /* Peer-reflexive: the source address of a probe received from the peer
   * (never put in tickets). */
  QPEER_CANDIDATE_PRFLX = 5
} qpeer_candidate_type;

/** Bits of qpeer_candidate_t.sources: every way a candidate was learned.
 * Several bits are set when two sources reported the same address. */
enum {
  QPEER_CANDIDATE_SRC_INTERFACE = 0x0001, /* local interface enumeration */
  QPEER_CANDIDATE_SRC_STUN = 0x0002,      /* a STUN Binding response */
  QPEER_CANDIDATE_SRC_OBSERVED = 0x0004,  /* QUIC OBSERVED_ADDRESS */
  QPEER_CANDIDATE_SRC_PCP = 0x0008,       /* a PCP MAP response */
  QPEER_CANDIDATE_SRC_NATPMP = 0x0010,    /* a NAT-PMP mapping response */
  QPEER_CANDIDATE_SRC_UPNP = 0x0020,      /* a UPnP IGD port mapping */
  QPEER_CANDIDATE_SRC_PROBE = 0x0040,     /* source of an incoming probe */
  QPEER_CANDIDATE_SRC_RELAY = 0x0080,     /* a relay binding */
  QPEER_CANDIDATE_SRC_PEER = 0x0100       /* sent by the peer (ticket or
                                             control stream) */
};

/** A candidate, by value. Filled by the library; freely copyable. */
typedef struct qpeer_candidate_s {
  /* The transport address: AF_INET or AF_INET6 (never IPv4-mapped), a
   * nonzero port. */
  struct sockaddr_storage addr;
  /* The base: the local address packets to this candidate leave from
   * (RFC 8445 §5.1.1). Equal to |addr| for host candidates; may be the
   * wildcard address with the socket's port when the interface is not
   * known. For remote candidates, the related address the peer sent, or
   * |addr|. */
  struct sockaddr_storage base;
  /* Who reported the address: the STUN server, the QUIC peer, the gateway
   * or the relay, for the kept type. AF_UNSPEC when none (host, remote). */
  struct sockaddr_storage server;
  qpeer_candidate_type type; /* the kind of candidate */
  /* RFC 8445 §5.1.2 priority, 1 .. 2^31 - 1; higher is preferred. */
  uint32_t priority;
  /* Candidates with equal foundations share type, base IP and server IP
   * (RFC 8445 §5.1.1.3). Opaque. */
  uint32_t foundation;
  uint32_t sources;     /* QPEER_CANDIDATE_SRC_* bits */
  uint16_t component;   /* always 1: QUIC needs a single component */
  uint16_t reserved16;  /* zero */
  uint32_t reserved[4]; /* zero; room for later fields */
} qpeer_candidate_t;

/**
 * `qpeer_candidate_type_name` returns the short lower-case name of |type|:
 * "host", "srflx", "mapped", "prflx" or "relay" (the names ICE uses), or
 * "unknown" for any other value. The string is static.
 *
 * Added in 0.1.
 */
QPEER_EXTERN const char *qpeer_candidate_type_name(qpeer_candidate_type type);

#endif /* QPEER_CANDIDATE_H */
