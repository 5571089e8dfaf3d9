/* SPDX-License-Identifier: MIT */
/*
 * The PCP message codec (RFC 6887): MAP and ANNOUNCE requests and
 * responses with their options, IPv4 addresses written as IPv4-mapped
 * IPv6, and the NAT-PMP (RFC 6886, PCP's version 0) responses that a
 * NAT-PMP-only gateway sends back to a PCP request. Also the server-epoch
 * rules of both protocols, which tell that a gateway lost its mappings.
 * Pure: no I/O, no clock (time is passed in), no allocation.
 */
#ifndef QPEER_NAT_PCP_MSG_H
#define QPEER_NAT_PCP_MSG_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define QPEER__PCP_VERSION 2
#define QPEER__PCP_SERVER_PORT 5351   /* requests go here */
#define QPEER__PCP_ANNOUNCE_PORT 5350 /* unsolicited ANNOUNCEs arrive here */
#define QPEER__PCP_HEADER_LEN 24      /* common request/response header */
#define QPEER__PCP_MAP_LEN 36         /* MAP opcode payload */
#define QPEER__PCP_MAX_LEN 1100       /* largest PCP message */
#define QPEER__PCP_NONCE_LEN 12       /* mapping nonce */
#define QPEER__PCP_R_BIT 0x80         /* response bit of the opcode byte */

/* NAT-PMP (version 0) sizes. */
#define QPEER__NATPMP_VERSION 0
#define QPEER__NATPMP_HEADER_LEN 8     /* version, opcode, result, epoch */
#define QPEER__NATPMP_ADDR_RESP_LEN 12 /* public address response */
#define QPEER__NATPMP_MAP_RESP_LEN 16  /* mapping response */

/* Opcodes (without the R bit). */
enum {
  QPEER__PCP_OP_ANNOUNCE = 0,
  QPEER__PCP_OP_MAP = 1,
  QPEER__PCP_OP_PEER = 2
};

/* NAT-PMP opcodes (without the response bit 0x80). */
enum {
  QPEER__NATPMP_OP_PUBLIC_ADDR = 0,
  QPEER__NATPMP_OP_MAP_UDP = 1,
  QPEER__NATPMP_OP_MAP_TCP = 2
};

/* PCP result codes (RFC 6887 §7.4). */
enum {
  QPEER__PCP_SUCCESS = 0,
  QPEER__PCP_UNSUPP_VERSION = 1,
  QPEER__PCP_NOT_AUTHORIZED = 2,
  QPEER__PCP_MALFORMED_REQUEST = 3,
  QPEER__PCP_UNSUPP_OPCODE = 4,
  QPEER__PCP_UNSUPP_OPTION = 5,
  QPEER__PCP_MALFORMED_OPTION = 6,
  QPEER__PCP_NETWORK_FAILURE = 7,
  QPEER__PCP_NO_RESOURCES = 8,
  QPEER__PCP_UNSUPP_PROTOCOL = 9,
  QPEER__PCP_USER_EX_QUOTA = 10,
  QPEER__PCP_CANNOT_PROVIDE_EXTERNAL = 11,
  QPEER__PCP_ADDRESS_MISMATCH = 12,
  QPEER__PCP_EXCESSIVE_REMOTE_PEERS = 13
};

/* Option codes (RFC 6887 §13). Codes 0-127 are mandatory to process. */
enum {
  QPEER__PCP_OPT_THIRD_PARTY = 1,
  QPEER__PCP_OPT_PREFER_FAILURE = 2,
  QPEER__PCP_OPT_FILTER = 3
};

/* A request, as the client fills it (and as the decoder returns it). */
typedef struct {
  uint8_t opcode;                 /* QPEER__PCP_OP_ANNOUNCE or _MAP */
  uint32_t lifetime;              /* requested seconds; 0 deletes */
  struct sockaddr_storage client; /* client IP (AF_INET or AF_INET6) */
  /* MAP only: */
  uint8_t nonce[QPEER__PCP_NONCE_LEN]; /* mapping nonce */
  uint8_t protocol;                    /* IANA protocol, 17 = UDP */
  uint16_t internal_port;              /* port to map */
  uint16_t external_port;              /* suggested; 0 = no preference */
  /* Suggested external address; AF_UNSPEC = no preference (written as
   * the client family's all-zeros address). */
  struct sockaddr_storage external;
  int prefer_failure; /* add the PREFER_FAILURE option */
} qpeer__pcp_request;

/* A decoded response. For a NAT-PMP reply (version 0) only version,
 * opcode, result and epoch are set, plus external (public address
 * response) or the ports and lifetime (mapping response) when the reply
 * is a success long enough to carry them. */
typedef struct {
  uint8_t version;                     /* 2, or 0 for a NAT-PMP reply */
  uint8_t opcode;                      /* without the R bit */
  uint16_t result;                     /* result code (NAT-PMP's is 16 bits) */
  uint32_t lifetime;                   /* granted, or how long an error lasts */
  uint32_t epoch;                      /* server epoch time (seconds) */
  int has_map;                         /* the MAP payload is present */
  uint8_t nonce[QPEER__PCP_NONCE_LEN]; /* echoed nonce */
  uint8_t protocol;                    /* echoed protocol */
  uint16_t internal_port;              /* echoed internal port */
  uint16_t external_port;              /* assigned external port */
  /* Assigned external address: AF_INET for IPv4-mapped, else AF_INET6
   * (port 0). AF_UNSPEC when absent. */
  struct sockaddr_storage external;
  unsigned int options; /* count of options present */
  int prefer_failure;   /* PREFER_FAILURE option present */
} qpeer__pcp_response;

/* qpeer__pcp_encode_request writes |req| into |buf| (|buflen| bytes).
 * Returns the message length (24 for ANNOUNCE, 60 for MAP, 64 with
 * PREFER_FAILURE), UV_ENOBUFS, or UV_EINVAL for an unknown opcode or a
 * client address that is neither IPv4 nor IPv6. */
int qpeer__pcp_encode_request(uint8_t *buf, size_t buflen,
                              const qpeer__pcp_request *req);

/* qpeer__pcp_decode_request parses a request (for tests and servers).
 * Returns 0, QPEER_ETRUNCATED, QPEER_EMALFORMED (bad length, R bit set,
 * bad option) or QPEER_EUNSUPPORTED (version or opcode). */
int qpeer__pcp_decode_request(qpeer__pcp_request *req, const uint8_t *buf,
                              size_t len);

/* qpeer__pcp_encode_response writes a response (for tests and servers):
 * |res->version| must be 2. Returns the length, UV_ENOBUFS or UV_EINVAL. */
int qpeer__pcp_encode_response(uint8_t *buf, size_t buflen,
                               const qpeer__pcp_response *res);

/* qpeer__pcp_decode_response parses a datagram from the server port: a
 * PCP version 2 response, or a NAT-PMP (version 0) response. Returns 0,
 * QPEER_ETRUNCATED, QPEER_EMALFORMED (length not a multiple of 4, over
 * 1100 bytes, R bit clear, bad option, a successful MAP without its
 * payload) or QPEER_EUNSUPPORTED (another version). */
int qpeer__pcp_decode_response(qpeer__pcp_response *res, const uint8_t *buf,
                               size_t len);

/* qpeer__pcp_result_name names a PCP result code ("NOT_AUTHORIZED"). */
const char *qpeer__pcp_result_name(unsigned int result);

/* qpeer__pcp_result_is_transient says whether an error result is worth
 * retrying soon (NETWORK_FAILURE, NO_RESOURCES, USER_EX_QUOTA). */
int qpeer__pcp_result_is_transient(unsigned int result);

/* Server-epoch tracking: the epoch and the client's clock (ms) when the
 * last response was received. */
typedef struct {
  int valid;      /* a response has been seen */
  uint32_t epoch; /* its epoch (seconds) */
  uint64_t at_ms; /* client time it arrived */
} qpeer__epoch;

/* qpeer__pcp_epoch_update applies RFC 6887 §8.5 to a response with
 * |epoch| received at |now_ms| and records it. Returns 1 if the server
 * lost its state (epoch went back by more than 1 s, or client and server
 * clocks advanced inconsistently beyond 2 s + 1/16), else 0. */
int qpeer__pcp_epoch_update(qpeer__epoch *e, uint32_t epoch, uint64_t now_ms);

/* qpeer__natpmp_epoch_update applies RFC 6886 §3.6: state was lost if the
 * new epoch is more than 2 s below the previous one plus 7/8 of the
 * client time elapsed since. Records the response; returns 1 or 0. */
int qpeer__natpmp_epoch_update(qpeer__epoch *e, uint32_t epoch,
                               uint64_t now_ms);

#endif /* QPEER_NAT_PCP_MSG_H */
