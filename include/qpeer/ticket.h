/* SPDX-License-Identifier: MIT */
/*
 * Tickets: everything a peer needs to reach another one. A ticket holds the
 * target's peer ID, its relay URLs with how each relay is authenticated,
 * and direct candidate addresses. The binary form is a version byte, TLV
 * records and a CRC-32C; the text form is "qpt1" followed by its unpadded
 * lower-case base32. Pure value type and codec (see doc/ticket.md).
 */
#ifndef QPEER_TICKET_H
#define QPEER_TICKET_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "qpeer/core.h"
#include "qpeer/identity.h"

/** Version byte of the binary form written by this library. */
#define QPEER_TICKET_VERSION 1
/** Most direct addresses in one ticket. */
#define QPEER_TICKET_MAX_ADDRS 8
/** Most relays in one ticket. */
#define QPEER_TICKET_MAX_RELAYS 4
/** Size of a relay URL buffer; URLs hold at most 255 bytes plus the NUL. */
#define QPEER_TICKET_URL_MAX 256
/** Length of a CA fingerprint (SHA-256 of the DER CA certificate). */
#define QPEER_TICKET_CA_FP_LEN 32

/** Largest binary form the encoder can produce (1387 bytes): version,
 * peer ID, 8 IPv6 addresses, 4 relays with the longest URL and a pin,
 * flags, creation time and checksum. */
#define QPEER_TICKET_BIN_MAX                                                   \
  (1 + 34 + QPEER_TICKET_MAX_ADDRS * 21 +                                      \
   QPEER_TICKET_MAX_RELAYS * (3 + 1 + 32 + QPEER_TICKET_URL_MAX - 1) + 6 +     \
   10 + 4)
/** Largest binary form the decoder accepts; more than the encoder writes,
 * so that tickets from later versions with extra records still decode. */
#define QPEER_TICKET_DECODE_MAX 4096
/** Longest text form the formatter can produce, without the NUL. */
#define QPEER_TICKET_TEXT_MAX (4 + (QPEER_TICKET_BIN_MAX * 8 + 4) / 5)
/** A buffer of this size always holds qpeer_ticket_format's output. */
#define QPEER_TICKET_STRLEN_MAX (QPEER_TICKET_TEXT_MAX + 1)

/** How a direct address was learned (carried so candidate-typed data can
 * be used later; UNTYPED when unknown). */
typedef enum {
  QPEER_TICKET_ADDR_UNTYPED = 0, /* no type given */
  QPEER_TICKET_ADDR_HOST = 1,    /* a local interface address */
  QPEER_TICKET_ADDR_SRFLX = 2,   /* server-reflexive (STUN) */
  QPEER_TICKET_ADDR_MAPPED = 3,  /* a port mapping (UPnP, NAT-PMP, PCP) */
  /* The public address a MASQUE relay allocated for the peer (bind); the
   * matching relay entry says how to authenticate that relay. */
  QPEER_TICKET_ADDR_RELAY = 4,
  QPEER_TICKET_ADDR_TYPE_MAX = QPEER_TICKET_ADDR_RELAY
} qpeer_ticket_addr_type;

/** How the dialer authenticates a relay. */
typedef enum {
  /* The relay's certificate key is the peer ID in |pin|. */
  QPEER_TICKET_AUTH_PIN = 1,
  /* The relay's certificate chains to the system trust store and matches
   * the URL's host name. */
  QPEER_TICKET_AUTH_WEBPKI = 2,
  /* The relay's certificate chains to the CA certificate whose SHA-256
   * (over its DER form) is |ca_sha256|. */
  QPEER_TICKET_AUTH_CA = 3
} qpeer_ticket_auth;

/** A direct candidate address. */
typedef struct qpeer_ticket_addr_s {
  /* AF_INET or AF_INET6 with a nonzero port; never the wildcard address
   * nor IPv4-mapped IPv6. Scope ID and flow info are not carried. */
  struct sockaddr_storage addr;
  qpeer_ticket_addr_type type; /* how it was learned */
} qpeer_ticket_addr_t;

/** A relay through which the peer is reachable. */
typedef struct qpeer_ticket_relay_s {
  /* "https://host[:port][/path]": printable ASCII, NUL-terminated. */
  char url[QPEER_TICKET_URL_MAX];
  qpeer_ticket_auth auth; /* how the relay is authenticated */
  qpeer_peer_id_t pin;    /* relay's peer ID (auth == PIN, else zero) */
  /* SHA-256 of the DER CA certificate (auth == CA, else zero). */
  uint8_t ca_sha256[QPEER_TICKET_CA_FP_LEN];
} qpeer_ticket_relay_t;

/** A ticket, by value. Fill it with qpeer_ticket_init and the add helpers;
 * the encoder checks every field again. */
typedef struct qpeer_ticket_s {
  qpeer_peer_id_t peer_id; /* the peer this ticket reaches */
  size_t naddrs;           /* entries used in |addrs| */
  qpeer_ticket_addr_t addrs[QPEER_TICKET_MAX_ADDRS]; /* direct candidates */
  size_t nrelays; /* entries used in |relays| */
  qpeer_ticket_relay_t relays[QPEER_TICKET_MAX_RELAYS]; /* relays, in order */
  uint64_t created; /* creation time, seconds since the Unix epoch; 0: none */
  uint32_t flags;   /* opaque flag bits carried as is; none defined yet */
} qpeer_ticket_t;

/**
 * `qpeer_ticket_init` clears |t|: all-zero peer ID, no addresses, no
 * relays, no creation time, no flags. Set |t|->peer_id afterwards. Returns
 * 0 or UV_EINVAL if |t| is NULL.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_ticket_init(qpeer_ticket_t *t);

/**
 * `qpeer_ticket_add_addr` appends the direct address |addr| (copied) with
 * type QPEER_TICKET_ADDR_UNTYPED; see qpeer_ticket_add_typed_addr.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_ticket_add_addr(qpeer_ticket_t *t,
                                       const struct sockaddr *addr);

/**
 * `qpeer_ticket_add_typed_addr` appends the direct address |addr| (copied)
 * with candidate type |type|. An IPv4-mapped IPv6 address is stored as
 * IPv4; the IPv6 scope ID and flow info are dropped. If the same address
 * and port is already present nothing changes (its type is kept) and 0 is
 * returned. Returns 0 or one of:
 *  - UV_EINVAL: NULL argument, family other than AF_INET/AF_INET6, port 0,
 *    wildcard address (0.0.0.0 or ::), or an unknown |type|;
 *  - UV_ENOSPC: QPEER_TICKET_MAX_ADDRS addresses are already present.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_ticket_add_typed_addr(qpeer_ticket_t *t,
                                             const struct sockaddr *addr,
                                             qpeer_ticket_addr_type type);

/**
 * `qpeer_ticket_add_relay` appends a relay reached at |url| (copied)
 * authenticated by |auth|, which is QPEER_TICKET_AUTH_PIN (then |pin| is the
 * relay's peer ID, copied) or QPEER_TICKET_AUTH_WEBPKI (then |pin| must be
 * NULL); for QPEER_TICKET_AUTH_CA use qpeer_ticket_add_relay_ca. The URL
 * must be "https://" (any case) followed by an authority with a non-empty
 * host and an optional port 1..65535, no user info, then an optional
 * path/query; 255 bytes at most, every byte printable ASCII (0x21-0x7e). An
 * identical relay already present is not added again (returns 0). Returns 0
 * or one of:
 *  - UV_EINVAL: NULL |t| or |url|, invalid URL, unknown |auth|, or |pin|
 *    missing (PIN) or given (WEBPKI);
 *  - UV_ENOSPC: QPEER_TICKET_MAX_RELAYS relays are already present.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_ticket_add_relay(qpeer_ticket_t *t, const char *url,
                                        qpeer_ticket_auth auth,
                                        const qpeer_peer_id_t *pin);

/**
 * `qpeer_ticket_add_relay_ca` appends a relay reached at |url| (copied)
 * authenticated by QPEER_TICKET_AUTH_CA with the CA fingerprint |ca_sha256|
 * (QPEER_TICKET_CA_FP_LEN bytes, copied). URL rules, duplicates and return
 * codes are those of qpeer_ticket_add_relay.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_ticket_add_relay_ca(qpeer_ticket_t *t, const char *url,
                                           const uint8_t *ca_sha256);

/**
 * `qpeer_ticket_encode_binary` writes the binary form of |t| into |buf|
 * (room |buflen|; QPEER_TICKET_BIN_MAX always suffices). The encoder
 * checks |t| exactly as the decoder would, so its output always decodes.
 * Returns the length written, or one of:
 *  - UV_EINVAL: NULL argument, or |t| breaks a rule (counts over the
 *    limits, an invalid address or URL, duplicate addresses or relays, an
 *    unknown enum value);
 *  - UV_ENOBUFS: |buflen| is too small (|buf| contents undefined).
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_ticket_encode_binary(const qpeer_ticket_t *t,
                                            uint8_t *buf, size_t buflen);

/**
 * `qpeer_ticket_decode_binary` decodes the |len| bytes at |buf| into |*t|,
 * which is written only on success. Records of unknown odd types are
 * skipped. Returns 0 or one of:
 *  - UV_EINVAL: NULL |t|, or NULL |buf| with a nonzero |len|;
 *  - QPEER_ETICKET: too short or longer than QPEER_TICKET_DECODE_MAX,
 *    checksum mismatch, or a malformed, duplicate, unknown even-typed or
 *    over-limit record, or no peer-ID record;
 *  - QPEER_EUNSUPPORTED: the checksum is right but the version byte is not
 *    QPEER_TICKET_VERSION (a ticket from a later version).
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_ticket_decode_binary(qpeer_ticket_t *t,
                                            const uint8_t *buf, size_t len);

/**
 * `qpeer_ticket_format` writes the text form of |t| ("qpt1" and the
 * lower-case unpadded base32 of the binary form) and a NUL into |buf|.
 * QPEER_TICKET_STRLEN_MAX bytes always suffice. Returns the length without
 * the NUL, UV_EINVAL (as for qpeer_ticket_encode_binary), or UV_ENOBUFS
 * when |buflen| is too small (then |buf| holds an empty string if |buflen|
 * is nonzero).
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_ticket_format(const qpeer_ticket_t *t, char *buf,
                                     size_t buflen);

/**
 * `qpeer_ticket_parse` parses the text form |text| (NUL-terminated) into
 * |*t|, which is written only on success. Leading and trailing white space
 * (space, tab, CR, LF, VT, FF) is ignored; inside, only the prefix "qpt1"
 * and base32 characters are accepted, in any case. Returns 0, UV_EINVAL
 * for NULL arguments, QPEER_ETICKET for a wrong prefix, any other
 * character, a length no base32 encoding has, nonzero padding bits, or any
 * error of qpeer_ticket_decode_binary (QPEER_EUNSUPPORTED included).
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_ticket_parse(qpeer_ticket_t *t, const char *text);

#endif /* QPEER_TICKET_H */
