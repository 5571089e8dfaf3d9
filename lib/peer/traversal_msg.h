/* SPDX-License-Identifier: MIT */
/*
 * The qpeer control-stream message codec (doc/protocol.md). ngtcp2 0.12
 * cannot carry extension frames, so the frames of QUIC address discovery
 * (OBSERVED_ADDRESS) and of draft-seemann-quic-nat-traversal-02
 * (ADD_ADDRESS, PUNCH_ME_NOW, REMOVE_ADDRESS) travel as messages on a
 * library-owned stream: Type (i) + Length (i) + the frame's body exactly
 * as the draft lays it out after its type, plus two private messages
 * (HELLO, ADDRESS_INFO). This file holds the message struct, a one-shot
 * decoder, the encoder and an incremental stream parser. Pure: no I/O, no
 * clock, no allocation.
 */
#ifndef QPEER_PEER_TRAVERSAL_MSG_H
#define QPEER_PEER_TRAVERSAL_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Message types on the wire: the drafts' frame types, and qpeer's. */
#define QPEER__TRAV_T_OBSERVED_V4 0x9f81a6ULL /* address-discovery-04/ietf */
#define QPEER__TRAV_T_OBSERVED_V6 0x9f81a7ULL
#define QPEER__TRAV_T_ADD_V4 0x3d7e90ULL /* nat-traversal-02 */
#define QPEER__TRAV_T_ADD_V6 0x3d7e91ULL
#define QPEER__TRAV_T_PUNCH_V4 0x3d7e92ULL
#define QPEER__TRAV_T_PUNCH_V6 0x3d7e93ULL
#define QPEER__TRAV_T_REMOVE 0x3d7e94ULL
#define QPEER__TRAV_T_HELLO 0x71700000ULL        /* qpeer private */
#define QPEER__TRAV_T_ADDRESS_INFO 0x71700001ULL /* qpeer private */

/* HELLO setting identifiers: the transport parameter IDs whose values
 * they carry, and qpeer's own. */
#define QPEER__TRAV_SET_ADDRESS_DISCOVERY 0x9f81a176ULL
#define QPEER__TRAV_SET_NAT_TRAVERSAL 0x3d7e9f0bca12fea6ULL
#define QPEER__TRAV_SET_MAX_ADDRESSES 0x71700100ULL

/* The control-stream protocol version this library speaks. */
#define QPEER__TRAV_VERSION 1

/* Largest message body (the Length field) accepted, of any type. */
#define QPEER__TRAV_MAX_BODY 1024
/* Largest message the encoder writes (a HELLO with every setting). */
#define QPEER__TRAV_ENC_MAX 64
/* Longest message header: an 8-byte type and an 8-byte length. */
#define QPEER__TRAV_HDR_MAX 16

/* What a message is. */
typedef enum {
  QPEER__TRAV_HELLO = 1,        /* versions and settings; first, once */
  QPEER__TRAV_OBSERVED_ADDRESS, /* the address the sender sees for us */
  QPEER__TRAV_ADD_ADDRESS,      /* server candidate advertised */
  QPEER__TRAV_PUNCH_ME_NOW,     /* client asks for punches */
  QPEER__TRAV_REMOVE_ADDRESS,   /* server candidate withdrawn */
  QPEER__TRAV_ADDRESS_INFO      /* type and priority of a server candidate */
} qpeer__trav_kind;

/* HELLO content. A setting that was absent has its has_ flag zero. */
typedef struct {
  uint64_t version;              /* control-stream version (>= 1) */
  uint8_t has_address_discovery; /* the address_discovery setting is sent */
  /* 0: provides observations, 1: wants them, 2: both (address-discovery
   * §1.2 of protocols.md). */
  uint8_t address_discovery;
  uint8_t has_nat_traversal; /* the nat_traversal setting is sent */
  /* Server: concurrency limit (> 0, PUNCH_ME_NOW per round). Client: 0 (the
   * transport parameter's empty value). */
  uint64_t nat_traversal;
  uint8_t has_max_addresses; /* the max_addresses setting is sent */
  uint64_t max_addresses;    /* most ADD_ADDRESS the sender accepts (> 0) */
} qpeer__trav_hello;

/* One decoded message; fields not used by |kind| are zero. */
typedef struct {
  qpeer__trav_kind kind; /* which message */
  /* OBSERVED_ADDRESS, ADD_ADDRESS, REMOVE_ADDRESS, ADDRESS_INFO: Sequence
   * Number. PUNCH_ME_NOW: Paired With Sequence Number. */
  uint64_t seq;
  uint64_t round; /* PUNCH_ME_NOW: Round */
  /* OBSERVED_ADDRESS: the observed address; ADD_ADDRESS: the server's
   * candidate; PUNCH_ME_NOW: the client's candidate. AF_INET or AF_INET6;
   * the message type's low bit gives the family. */
  struct sockaddr_storage addr;
  uint8_t cand_type;       /* ADDRESS_INFO: qpeer_candidate_type value */
  uint32_t priority;       /* ADDRESS_INFO: candidate priority */
  qpeer__trav_hello hello; /* HELLO */
} qpeer__trav_msg;

/* qpeer__trav_msg_encode writes |m| (Type, Length, body) into |buf| (room
 * |buflen|; QPEER__TRAV_ENC_MAX always suffices). An IPv4-mapped IPv6
 * address is written as IPv4 (with the IPv4 type). Returns the length, or
 * UV_ENOBUFS, or UV_EINVAL: unknown kind, a number above 2^62 - 1, an
 * address family other than AF_INET/AF_INET6, a HELLO version of 0, an
 * address_discovery value above 2, a max_addresses of 0. */
int qpeer__trav_msg_encode(const qpeer__trav_msg *m, uint8_t *buf,
                           size_t buflen);

/* qpeer__trav_msg_decode decodes one message from the start of the |len|
 * bytes at |buf|. On success returns 0 and sets |*pconsumed| to the
 * message's size. Otherwise:
 *  - QPEER_ETRUNCATED: |buf| ends inside the message (more bytes needed);
 *  - QPEER_EUNSUPPORTED: an unknown type; |*pconsumed| is its size, so the
 *    caller may skip it (the whole message need not be in |buf|);
 *  - UV_EMSGSIZE: Length above QPEER__TRAV_MAX_BODY;
 *  - QPEER_EMALFORMED: a Type or Length not in its shortest encoding, or a
 *    body that does not match its layout exactly (see
 *    qpeer__trav_msg_decode_body). */
int qpeer__trav_msg_decode(qpeer__trav_msg *m, const uint8_t *buf, size_t len,
                           size_t *pconsumed);

/* qpeer__trav_msg_decode_body decodes the body (|len| bytes at |body|) of a
 * message of wire type |type| into |*m|. Returns 0, QPEER_EUNSUPPORTED for
 * an unknown type, or QPEER_EMALFORMED: the body is shorter or longer
 * than the layout; a HELLO with version 0, a repeated setting, an
 * address_discovery value above 2, or a max_addresses of 0. */
int qpeer__trav_msg_decode_body(qpeer__trav_msg *m, uint64_t type,
                                const uint8_t *body, size_t len);

/* qpeer__trav_msg_direction_ok returns 0 if a message of |kind| may be
 * received by a server (|receiver_is_server| nonzero) or a client, or
 * QPEER_EPROTO: ADD_ADDRESS, REMOVE_ADDRESS and ADDRESS_INFO go server to
 * client, PUNCH_ME_NOW client to server; HELLO and OBSERVED_ADDRESS go
 * both ways (the latter only as negotiated, see
 * qpeer__trav_observed_allowed). */
int qpeer__trav_msg_direction_ok(qpeer__trav_kind kind, int receiver_is_server);

/* qpeer__trav_hello_check returns 0 if the HELLO |h| suits a sender in its
 * role, or QPEER_EPROTO: a server's nat_traversal must be above 0, a
 * client's must be 0. */
int qpeer__trav_hello_check(const qpeer__trav_hello *h, int sender_is_server);

/* qpeer__trav_observed_allowed returns nonzero if the side that sent HELLO
 * |from| may send OBSERVED_ADDRESS to the side that sent |to|: |from|
 * offers observations (0 or 2) and |to| wants them (1 or 2). */
int qpeer__trav_observed_allowed(const qpeer__trav_hello *from,
                                 const qpeer__trav_hello *to);

/* ---- The incremental stream parser. ---- */

/* State of one control stream's receive side. */
typedef struct {
  uint8_t hdr[QPEER__TRAV_HDR_MAX]; /* header bytes gathered so far */
  size_t hdrlen;                    /* bytes used in |hdr| */
  uint8_t in_body;    /* the header is complete; reading or skipping body */
  uint64_t type;      /* the current message's type */
  uint64_t len;       /* the current message's Length */
  uint64_t got;       /* body bytes received (or skipped) so far */
  uint8_t known;      /* the current type is known: the body is buffered */
  uint8_t hello_seen; /* the first message (HELLO) has been parsed */
  int err;            /* sticky error: 0 or the first error returned */
  uint64_t nmsgs;     /* known messages returned so far */
  uint64_t nskipped;  /* unknown messages skipped so far */
  uint8_t body[QPEER__TRAV_MAX_BODY]; /* the current known body */
} qpeer__trav_parser;

/* qpeer__trav_parser_init prepares |p| for a new stream. */
void qpeer__trav_parser_init(qpeer__trav_parser *p);

/* qpeer__trav_parser_feed consumes bytes from the |len| bytes at |data|
 * and sets |*pconsumed| to how many. Returns 1 when a whole known message
 * was parsed into |*m| (call again with the rest), 0 when every byte was
 * consumed without completing one, or a negative error, which is sticky:
 * every error of qpeer__trav_msg_decode except QPEER_ETRUNCATED and
 * QPEER_EUNSUPPORTED (unknown types are skipped by their Length, without
 * buffering), and QPEER_EPROTO when the first message is not HELLO or a
 * second HELLO arrives. */
int qpeer__trav_parser_feed(qpeer__trav_parser *p, const uint8_t *data,
                            size_t len, size_t *pconsumed, qpeer__trav_msg *m);

/* qpeer__trav_parser_finish checks the end of the stream (FIN): returns 0
 * at a message boundary, QPEER_ETRUNCATED inside a message, or the sticky
 * error. */
int qpeer__trav_parser_finish(const qpeer__trav_parser *p);

#endif /* QPEER_PEER_TRAVERSAL_MSG_H */
