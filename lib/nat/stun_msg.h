/* SPDX-License-Identifier: MIT */
/*
 * The STUN message codec (RFC 8489, plus the RFC 5780 NAT behaviour
 * discovery attributes). Pure and sans-I/O: a classifier for the UDP
 * demultiplexer, a strict decoder into a by-value struct that borrows the
 * packet, an integrity checker, and a bounded writer that builds a message
 * in a caller buffer. Nothing here allocates, touches a socket or a clock.
 */
#ifndef QPEER_NAT_STUN_MSG_H
#define QPEER_NAT_STUN_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define QPEER__STUN_HEADER_LEN 20
#define QPEER__STUN_MAGIC_COOKIE 0x2112a442u
#define QPEER__STUN_TXID_LEN 12
#define QPEER__STUN_FINGERPRINT_XOR 0x5354554eu
/* MESSAGE-INTEGRITY carries an HMAC-SHA1: 20 bytes. */
#define QPEER__STUN_HMAC_LEN 20
/* Largest message the 16-bit length field can describe (length is a
 * multiple of 4). */
#define QPEER__STUN_MAX_MSG_LEN (QPEER__STUN_HEADER_LEN + 0xfffc)
/* How many unknown comprehension-required attribute types are recorded. */
#define QPEER__STUN_MAX_UNKNOWN 8

/* Message classes: the C1 (0x0100) and C0 (0x0010) bits of the type. */
enum {
  QPEER__STUN_CLASS_REQUEST = 0x0000,
  QPEER__STUN_CLASS_INDICATION = 0x0010,
  QPEER__STUN_CLASS_SUCCESS = 0x0100,
  QPEER__STUN_CLASS_ERROR = 0x0110,
  QPEER__STUN_CLASS_MASK = 0x0110
};

/* Methods and the complete Binding message types. */
enum {
  QPEER__STUN_METHOD_BINDING = 0x0001,
  QPEER__STUN_BINDING_REQUEST = 0x0001,
  QPEER__STUN_BINDING_INDICATION = 0x0011,
  QPEER__STUN_BINDING_SUCCESS = 0x0101,
  QPEER__STUN_BINDING_ERROR = 0x0111
};

/* Attribute types. Below 0x8000 is comprehension-required. */
enum {
  QPEER__STUN_ATTR_MAPPED_ADDRESS = 0x0001,
  QPEER__STUN_ATTR_CHANGE_REQUEST = 0x0003,
  QPEER__STUN_ATTR_USERNAME = 0x0006,
  QPEER__STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
  QPEER__STUN_ATTR_ERROR_CODE = 0x0009,
  QPEER__STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000a,
  QPEER__STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
  QPEER__STUN_ATTR_PADDING = 0x0026,
  QPEER__STUN_ATTR_RESPONSE_PORT = 0x0027,
  QPEER__STUN_ATTR_SOFTWARE = 0x8022,
  QPEER__STUN_ATTR_FINGERPRINT = 0x8028,
  QPEER__STUN_ATTR_RESPONSE_ORIGIN = 0x802b,
  QPEER__STUN_ATTR_OTHER_ADDRESS = 0x802c
};

/* CHANGE-REQUEST flags (RFC 5780 §7.2). */
enum { QPEER__STUN_CHANGE_PORT = 0x02, QPEER__STUN_CHANGE_IP = 0x04 };

/* Address families on the wire. */
enum { QPEER__STUN_FAMILY_IPV4 = 0x01, QPEER__STUN_FAMILY_IPV6 = 0x02 };

static inline uint16_t qpeer__stun_type_class(uint16_t type) {
  return (uint16_t)(type & QPEER__STUN_CLASS_MASK);
}

/* qpeer__stun_type_method extracts the 12-bit method from a message type
 * (the bits that are left once the two class bits are squeezed out). */
static inline uint16_t qpeer__stun_type_method(uint16_t type) {
  return (uint16_t)((type & 0x000f) | ((type & 0x00e0) >> 1) |
                    ((type & 0x3e00) >> 2));
}

/* qpeer__stun_type composes a message type from |method| and |cls| (one of
 * QPEER__STUN_CLASS_*). */
static inline uint16_t qpeer__stun_type(uint16_t method, uint16_t cls) {
  return (uint16_t)((method & 0x000f) | ((method & 0x0070) << 1) |
                    ((method & 0x0f80) << 2) | (cls & QPEER__STUN_CLASS_MASK));
}

/* A decoded message. Every pointer borrows from the packet passed to
 * qpeer__stun_decode and is valid only as long as that buffer. Only the
 * first occurrence of each attribute is used; attributes that follow
 * MESSAGE-INTEGRITY (other than FINGERPRINT) are ignored, per RFC 8489. */
typedef struct {
  uint16_t type;                             /* message type, class included */
  uint16_t length;                           /* header length field (bytes) */
  uint8_t txid[QPEER__STUN_TXID_LEN];        /* transaction ID */
  uint8_t has_xor_mapped;                    /* XOR-MAPPED-ADDRESS present */
  uint8_t has_mapped;                        /* MAPPED-ADDRESS present */
  uint8_t has_response_origin;               /* RESPONSE-ORIGIN present */
  uint8_t has_other_address;                 /* OTHER-ADDRESS present */
  uint8_t has_change_request;                /* CHANGE-REQUEST present */
  uint8_t has_response_port;                 /* RESPONSE-PORT present */
  uint8_t has_error;                         /* ERROR-CODE present */
  uint8_t has_software;                      /* SOFTWARE present */
  uint8_t has_username;                      /* USERNAME present */
  uint8_t has_padding;                       /* PADDING present */
  uint8_t has_integrity;                     /* MESSAGE-INTEGRITY present */
  uint8_t has_fingerprint;                   /* FINGERPRINT present (last) */
  uint8_t fingerprint_ok;                    /* FINGERPRINT matched the CRC */
  struct sockaddr_storage xor_mapped;        /* XOR-MAPPED-ADDRESS, un-XORed */
  struct sockaddr_storage mapped;            /* MAPPED-ADDRESS */
  struct sockaddr_storage response_origin;   /* RESPONSE-ORIGIN */
  struct sockaddr_storage other_address;     /* OTHER-ADDRESS */
  uint32_t change_flags;                     /* QPEER__STUN_CHANGE_* bits */
  uint16_t response_port;                    /* RESPONSE-PORT value */
  uint16_t error_code;                       /* ERROR-CODE as 300..699 */
  const uint8_t *error_reason;               /* UTF-8 reason phrase */
  size_t error_reason_len;                   /* its length in bytes */
  const uint8_t *software;                   /* SOFTWARE value (UTF-8) */
  size_t software_len;                       /* its length in bytes */
  const uint8_t *username;                   /* USERNAME value (UTF-8) */
  size_t username_len;                       /* its length in bytes */
  size_t padding_len;                        /* PADDING value length */
  size_t integrity_offset;                   /* MESSAGE-INTEGRITY attr offset */
  size_t unknown_count;                      /* unknown required attrs seen */
  uint16_t unknown[QPEER__STUN_MAX_UNKNOWN]; /* their types, first first */
} qpeer__stun_msg;

/* qpeer__stun_crc32 continues the CRC-32 (ISO-HDLC, as used by Ethernet
 * and FINGERPRINT) |crc| over |len| bytes at |p|. Start with |crc| = 0. */
uint32_t qpeer__stun_crc32(uint32_t crc, const uint8_t *p, size_t len);

/* qpeer__stun_is_stun is the demultiplexer's classifier (RFC 7983 as
 * refined in doc/internals/stun.md): nonzero if |pkt| has the two top bits
 * of byte 0 clear, is at least 20 bytes, carries the magic cookie at
 * offset 4, and its header length equals |len| - 20 and is a multiple of
 * 4. A QUIC short header whose greased first byte lands in 0x00-0x3f is
 * rejected by the cookie and length checks. */
int qpeer__stun_is_stun(const uint8_t *pkt, size_t len);

/* qpeer__stun_decode parses the |len|-byte datagram |pkt| into |m|
 * strictly: the message must fill the datagram exactly, every attribute
 * must fit inside the message, lengths are padded to 4, address families
 * must be IPv4 (8-byte value) or IPv6 (20-byte value), and FINGERPRINT,
 * if present, must be the last attribute and match. Unknown optional
 * attributes are skipped; unknown comprehension-required ones are counted
 * in |m| for the caller to answer with a 420.
 *
 * Returns 0 or one of:
 * QPEER_ETRUNCATED: the datagram is shorter than its header says.
 * QPEER_EUNSUPPORTED: no magic cookie (an RFC 3489 message, or not STUN).
 * QPEER_EMALFORMED: any other structural or attribute-value error.
 * QPEER_ECHECKSUM: FINGERPRINT mismatch; |m| is otherwise fully decoded,
 *   with has_fingerprint set and fingerprint_ok clear.
 * On the other errors the contents of |m| are unspecified. */
int qpeer__stun_decode(qpeer__stun_msg *m, const uint8_t *pkt, size_t len);

/* qpeer__stun_verify_integrity checks MESSAGE-INTEGRITY of the message |m|
 * decoded from |pkt| (|len| bytes): HMAC-SHA1 keyed with |key| over the
 * message up to the attribute, with the header length adjusted to end
 * just after it (RFC 8489 §14.5). For short-term credentials |key| is the
 * (SASLprep'd) password. Returns 0, QPEER_ECHECKSUM if the attribute is
 * absent or does not match, or QPEER_ETLS if GnuTLS fails. */
int qpeer__stun_verify_integrity(const qpeer__stun_msg *m, const uint8_t *pkt,
                                 size_t len, const uint8_t *key, size_t keylen);

/* qpeer__stun_find_attr finds the first attribute of |type| in the
 * already-decoded message |pkt| (|len| bytes) and borrows its value into
 * |*pval| and |*pvlen|. For attributes the decoder does not interpret
 * (ICE PRIORITY, REALM, ...). Returns 0 or UV_ENOENT; QPEER_EMALFORMED if
 * the message is not well formed. */
int qpeer__stun_find_attr(const uint8_t *pkt, size_t len, uint16_t type,
                          const uint8_t **pval, size_t *pvlen);

/* A bounded writer building one message in a caller buffer. Every add
 * keeps the header length current, so the buffer always holds a valid
 * message. Errors are sticky: after the first failure, later calls do
 * nothing and qpeer__stun_writer_finish returns that error. */
typedef struct {
  uint8_t *buf; /* message start (caller-owned) */
  size_t cap;   /* bytes available at buf */
  size_t len;   /* bytes written so far, header included */
  int err;      /* first error, or 0 */
  int state;    /* 0 open, 1 integrity added, 2 fingerprint added */
  uint8_t pad;  /* byte used for attribute padding (default 0) */
} qpeer__stun_writer;

/* qpeer__stun_writer_init starts a message of |type| with transaction ID
 * |txid| in |buf| (|buflen| bytes). Returns 0, UV_ENOBUFS if |buflen| is
 * below 20, or UV_EINVAL if |type| has either top bit set. */
int qpeer__stun_writer_init(qpeer__stun_writer *w, uint8_t *buf, size_t buflen,
                            uint16_t type,
                            const uint8_t txid[QPEER__STUN_TXID_LEN]);

/* qpeer__stun_add_attr appends attribute |type| with the |vlen|-byte
 * value |val| (may be NULL when |vlen| is 0), padded to 4 with w->pad.
 * All other adds go through this. Returns 0, UV_ENOBUFS when the buffer
 * (or the 16-bit length field) is full, or UV_EINVAL after
 * MESSAGE-INTEGRITY or FINGERPRINT. */
int qpeer__stun_add_attr(qpeer__stun_writer *w, uint16_t type, const void *val,
                         size_t vlen);

/* qpeer__stun_add_addr appends a plain address attribute (MAPPED-ADDRESS,
 * RESPONSE-ORIGIN, OTHER-ADDRESS) and qpeer__stun_add_xor_addr an XORed
 * one (XOR-MAPPED-ADDRESS) of |type| holding |sa|. An IPv4-mapped IPv6
 * address is written as IPv4. UV_EINVAL for other families. */
int qpeer__stun_add_addr(qpeer__stun_writer *w, uint16_t type,
                         const struct sockaddr *sa);
int qpeer__stun_add_xor_addr(qpeer__stun_writer *w, uint16_t type,
                             const struct sockaddr *sa);

/* qpeer__stun_add_change_request appends CHANGE-REQUEST with |flags|. */
int qpeer__stun_add_change_request(qpeer__stun_writer *w, uint32_t flags);

/* qpeer__stun_add_response_port appends RESPONSE-PORT (2-byte value). */
int qpeer__stun_add_response_port(qpeer__stun_writer *w, uint16_t port);

/* qpeer__stun_add_software appends SOFTWARE with |len| bytes of |sw|. */
int qpeer__stun_add_software(qpeer__stun_writer *w, const char *sw, size_t len);

/* qpeer__stun_add_error_code appends ERROR-CODE |code| (300..699, else
 * UV_EINVAL) with the |len|-byte reason phrase |reason|. */
int qpeer__stun_add_error_code(qpeer__stun_writer *w, int code,
                               const char *reason, size_t len);

/* qpeer__stun_add_padding appends a PADDING attribute of |len| zero bytes
 * (RFC 5780 §7.6; for fragmentation tests). */
int qpeer__stun_add_padding(qpeer__stun_writer *w, size_t len);

/* qpeer__stun_add_integrity appends MESSAGE-INTEGRITY keyed with |key|.
 * After it only the FINGERPRINT (via finish) may follow. Returns 0,
 * UV_ENOBUFS, UV_EINVAL or QPEER_ETLS. */
int qpeer__stun_add_integrity(qpeer__stun_writer *w, const uint8_t *key,
                              size_t keylen);

/* qpeer__stun_writer_finish appends FINGERPRINT if |with_fingerprint| and
 * returns the total message length (> 0), or the first error. */
int qpeer__stun_writer_finish(qpeer__stun_writer *w, int with_fingerprint);

/* qpeer__stun_build_binding_request writes a Binding request into |buf|:
 * CHANGE-REQUEST when |change_flags| is nonzero, then FINGERPRINT if asked.
 * Returns the message length or UV_ENOBUFS. */
int qpeer__stun_build_binding_request(uint8_t *buf, size_t buflen,
                                      const uint8_t txid[QPEER__STUN_TXID_LEN],
                                      uint32_t change_flags,
                                      int with_fingerprint);

/* qpeer__stun_build_binding_response writes a Binding success response:
 * XOR-MAPPED-ADDRESS |mapped|, RESPONSE-ORIGIN and OTHER-ADDRESS when not
 * NULL, then FINGERPRINT if asked. Returns the length or an error. */
int qpeer__stun_build_binding_response(uint8_t *buf, size_t buflen,
                                       const uint8_t txid[QPEER__STUN_TXID_LEN],
                                       const struct sockaddr *mapped,
                                       const struct sockaddr *response_origin,
                                       const struct sockaddr *other,
                                       int with_fingerprint);

/* qpeer__stun_build_error_response answers the decoded request |req| with
 * an error response of the same method: ERROR-CODE |code| and |reason|
 * (NUL-terminated), UNKNOWN-ATTRIBUTES listing req->unknown when |code| is
 * 420, then FINGERPRINT if asked. Returns the length or an error. */
int qpeer__stun_build_error_response(uint8_t *buf, size_t buflen,
                                     const qpeer__stun_msg *req, int code,
                                     const char *reason, int with_fingerprint);

#endif /* QPEER_NAT_STUN_MSG_H */
