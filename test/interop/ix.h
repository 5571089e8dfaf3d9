/* SPDX-License-Identifier: MIT */
/*
 * ix: an independent HTTP/3 MASQUE (CONNECT-UDP) engine for interop tests.
 * It is a second reading of RFC 9114 (HTTP/3), RFC 9220 (Extended CONNECT),
 * RFC 9297 (HTTP Datagrams, Capsules) and RFC 9298 (CONNECT-UDP), written
 * directly on ngtcp2 0.12 + ngtcp2_crypto_gnutls, nghttp3 0.8 (HEADERS and
 * QPACK only), GnuTLS and POSIX sockets. It does not use libqpeer.
 * Split: codecs (varints, capsules, SETTINGS, datagram framing, URI paths,
 * peer IDs) first, then the connection glue (ix_conn_t, ix_req_t).
 */
#ifndef IX_H
#define IX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

/* ---- logging and time -------------------------------------------------- */

extern const char *ix_prog; /* program name in log lines */
extern int ix_verbose;      /* 0 quiet, 1 info, 2 debug */
void ix_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ix_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t ix_now(void); /* CLOCK_MONOTONIC in ns (ngtcp2_tstamp) */

/* ---- codecs (pure) ----------------------------------------------------- */

#define IX_VARINT_MAX ((uint64_t)0x3fffffffffffffffULL)
size_t ix_varint_len(uint64_t v);
/* Writes |v| in its shortest form; returns the bytes written. */
size_t ix_varint_put(uint8_t *p, uint64_t v);
/* Reads a varint from |p|/|len|: returns its length, 0 if incomplete. */
size_t ix_varint_get(const uint8_t *p, size_t len, uint64_t *v);

/* HTTP/3 codepoints (RFC 9114 §7.2, §8.1; RFC 9220; RFC 9297). */
#define IX_H3_STREAM_CONTROL 0x00
#define IX_H3_FRAME_SETTINGS 0x04
#define IX_H3_SETTING_QPACK_MAX_TABLE_CAPACITY 0x01
#define IX_H3_SETTING_MAX_FIELD_SECTION_SIZE 0x06
#define IX_H3_SETTING_QPACK_BLOCKED_STREAMS 0x07
#define IX_H3_SETTING_ENABLE_CONNECT_PROTOCOL 0x08
#define IX_H3_SETTING_H3_DATAGRAM 0x33
#define IX_H3_NO_ERROR 0x100
#define IX_H3_GENERAL_PROTOCOL_ERROR 0x101
#define IX_H3_INTERNAL_ERROR 0x102
#define IX_H3_FRAME_UNEXPECTED 0x105
#define IX_H3_ID_ERROR 0x108
#define IX_H3_SETTINGS_ERROR 0x109
#define IX_H3_MISSING_SETTINGS 0x10a
#define IX_H3_REQUEST_CANCELLED 0x10c
#define IX_H3_MESSAGE_ERROR 0x10e
#define IX_H3_DATAGRAM_ERROR 0x33
#define IX_CAPSULE_DATAGRAM 0x00

/* Our control stream: stream type, SETTINGS {ENABLE_CONNECT_PROTOCOL=1 if
 * |server|, H3_DATAGRAM=1 if |h3_datagram|, a reserved (GREASE) setting
 * if |grease|}, then a reserved frame type if |grease|. Returns the length
 * (at most 64). */
size_t ix_control_preamble(uint8_t *out, int server, int h3_datagram,
                           int grease);

/* What the peer's SETTINGS frame said (only what MASQUE needs). */
typedef struct ix_peer_settings_s {
  int received;           /* the SETTINGS frame has been parsed */
  int connect_protocol;   /* ENABLE_CONNECT_PROTOCOL value (0 absent) */
  int h3_datagram;        /* H3_DATAGRAM value (0 absent) */
  int saw_connect_proto;  /* the identifier appeared */
  int saw_h3_datagram;    /* the identifier appeared */
  unsigned nsettings;     /* number of identifier/value pairs */
  unsigned nunknown;      /* identifiers we do not know (GREASE included) */
} ix_peer_settings_t;

/* Parses the payload of a SETTINGS frame. Returns 0, or an HTTP/3 error
 * code (H3_SETTINGS_ERROR for a bad value or a repeated identifier,
 * H3_FRAME_ERROR-ish malformed → H3_SETTINGS_ERROR too). */
uint64_t ix_settings_parse(const uint8_t *p, size_t len,
                           ix_peer_settings_t *s);

/* HTTP/3 Datagram (RFC 9297 §2.1) carrying a CONNECT-UDP payload (RFC 9298
 * §5): Quarter Stream ID | Context ID | payload. Returns the length
 * written (|out| must hold len + 16). */
size_t ix_dgram_encode(uint8_t *out, int64_t stream_id, uint64_t context,
                       const uint8_t *payload, size_t len);
/* Decodes one: 0 ok; IX_H3_DATAGRAM_ERROR if the Quarter Stream ID does
 * not parse or exceeds 2^60-1; -1 if the Context ID does not parse (the
 * datagram is dropped). */
long ix_dgram_decode(const uint8_t *p, size_t len, int64_t *stream_id,
                     uint64_t *context, const uint8_t **payload,
                     size_t *plen);

/* Capsule encoder: DATAGRAM capsule with Context ID |context|. Returns
 * the length written (|out| must hold len + 24). */
size_t ix_capsule_datagram(uint8_t *out, uint64_t context,
                           const uint8_t *payload, size_t len);

/* Incremental capsule parser (RFC 9297 §3.2). */
typedef struct ix_capsule_parser_s {
  uint8_t *buf;  /* buffered bytes not yet parsed */
  size_t len;    /* their number */
  size_t cap;    /* allocated */
  size_t limit;  /* the most bytes one capsule may take */
} ix_capsule_parser_t;
typedef void (*ix_capsule_cb)(void *arg, uint64_t type, const uint8_t *value,
                              size_t len);
void ix_capsule_parser_init(ix_capsule_parser_t *cp, size_t limit);
void ix_capsule_parser_free(ix_capsule_parser_t *cp);
/* Feeds bytes; calls |cb| per complete capsule. Returns 0, or -1 when a
 * capsule exceeds the limit (malformed for our purposes). */
int ix_capsule_parser_feed(ix_capsule_parser_t *cp, const uint8_t *p,
                           size_t len, ix_capsule_cb cb, void *arg);
/* Nonzero when bytes of an incomplete capsule are buffered. */
int ix_capsule_parser_partial(const ix_capsule_parser_t *cp);

/* RFC 9298 default template path
 * /.well-known/masque/udp/{target_host}/{target_port}/ with RFC 6570
 * simple-string expansion (IPv6 colons become %3A). Returns 0 or -1. */
int ix_masque_path(char *out, size_t outlen, const char *host,
                   unsigned port);
/* Parses such a path back: percent-decodes the host. Returns 0, 404 (not
 * the template) or 400 (bad host or port). */
int ix_masque_parse_path(const char *path, char *host, size_t hostlen,
                         unsigned *port);

/* qpeer peer ID text (version 'p', base32 of key || 2-byte check): only
 * used to pin qpeer-relay's self-signed certificate. */
int ix_peer_id_parse(const char *text, uint8_t key[32]);
void ix_peer_id_format(const uint8_t key[32], char out[57]);

/* ---- connection glue --------------------------------------------------- */

typedef struct ix_conn_s ix_conn_t;
typedef struct ix_req_s ix_req_t;

#define IX_REQ_OUTBUF (256 * 1024)
#define IX_MAX_HEADERS 32

/* One request stream (a CONNECT-UDP tunnel). */
struct ix_req_s {
  ix_conn_t *conn;          /* owner */
  int64_t stream_id;        /* QUIC stream ID */
  uint8_t *out;             /* capsule bytes lent to nghttp3 */
  size_t out_end;           /* bytes queued */
  size_t out_read;          /* bytes handed to nghttp3 */
  size_t out_acked;         /* bytes acknowledged */
  int out_eof;              /* finish the data stream after the queue */
  int data_reader;          /* nghttp3 has our data reader */
  ix_capsule_parser_t in;   /* capsule parser of received DATA */
  int status;               /* :status (client) */
  char hdr_name[IX_MAX_HEADERS][64];   /* received header fields */
  char hdr_value[IX_MAX_HEADERS][512]; /* their values */
  int nhdr;                 /* their number */
  int headers_done;         /* end_headers seen */
  int fin_received;         /* the peer ended its side */
  int closed;               /* the stream is gone */
  int capsule_error;        /* malformed capsule stream */
  uint64_t rx_frames, rx_capsules, tx_frames, tx_capsules; /* counters */
  uint64_t rx_unknown_capsules; /* capsules of other types, skipped */
  uint64_t rx_bad_context;  /* datagrams with a nonzero context, dropped */
  void *data;               /* the application's */
  ix_req_t *next;           /* list in the connection */
};

/* Application hooks. */
typedef struct ix_hooks_s {
  /* Server: a request's header section is complete (reply from here). */
  void (*on_request)(ix_conn_t *c, ix_req_t *r);
  /* Client: the response's header section is complete. */
  void (*on_response)(ix_conn_t *c, ix_req_t *r);
  /* A UDP payload (context 0) arrived; |frame| = QUIC DATAGRAM frame. */
  void (*on_payload)(ix_conn_t *c, ix_req_t *r, const uint8_t *p, size_t len,
                     int frame);
  /* The peer ended the request's data stream (FIN) or it was reset. */
  void (*on_req_end)(ix_conn_t *c, ix_req_t *r);
  /* The HTTP/3 layer is ready (handshake done, our streams open). */
  void (*on_ready)(ix_conn_t *c);
  /* The peer's SETTINGS were parsed. */
  void (*on_settings)(ix_conn_t *c);
} ix_hooks_t;

typedef struct ix_conn_opts_s {
  int server;              /* role */
  int h3_datagram;         /* announce SETTINGS_H3_DATAGRAM = 1 */
  int datagram_tp;         /* send max_datagram_frame_size (65535) */
  int grease;              /* reserved setting and frame on our control */
  int omit_capsule_protocol; /* client: leave out capsule-protocol: ?1 */
  const uint8_t *pin;      /* client: expected Ed25519 key, or NULL */
  int insecure;            /* client: accept any certificate */
  const char *sni;         /* client: server name, or NULL */
  gnutls_certificate_credentials_t cred; /* server: certificate */
} ix_conn_opts_t;

struct ix_conn_s {
  ix_conn_opts_t o;               /* options (copied) */
  ix_hooks_t hooks;               /* application hooks */
  int fd;                         /* UDP socket (not owned) */
  struct sockaddr_storage local;  /* local address */
  socklen_t locallen;             /* its length */
  struct sockaddr_storage remote; /* peer address */
  socklen_t remotelen;            /* its length */
  ngtcp2_crypto_conn_ref ref;     /* for ngtcp2_crypto */
  ngtcp2_conn *q;                 /* QUIC */
  gnutls_session_t tls;           /* TLS */
  gnutls_certificate_credentials_t own_cred; /* client: ours, freed */
  nghttp3_conn *h3;               /* HEADERS/QPACK */
  ngtcp2_cid scids[8];            /* our connection IDs (routing) */
  size_t nscids;                  /* their number */
  ngtcp2_cid odcid;               /* server: client's original DCID */
  int64_t ctrl_id;                /* our control stream */
  uint8_t ctrl[64];               /* its bytes (written by us) */
  size_t ctrl_len, ctrl_sent;     /* length and bytes handed to ngtcp2 */
  int64_t peer_ctrl_id;           /* the peer's control stream or -1 */
  uint8_t peer_ctrl[1024];        /* its first bytes (SETTINGS) */
  size_t peer_ctrl_len;           /* buffered */
  int64_t uni_ids[8];             /* peer uni streams whose type is known */
  uint64_t uni_types[8];          /* and their types */
  size_t nuni;                    /* number */
  ix_peer_settings_t peer;        /* peer SETTINGS */
  int ready;                      /* HTTP/3 set up */
  int closing;                    /* CONNECTION_CLOSE sent or received */
  int dead;                       /* nothing more to do; free it */
  int pin_failed;                 /* the certificate did not match */
  char close_reason[256];         /* why it ended (for reports) */
  ngtcp2_connection_close_error ccerr; /* what we send on close */
  /* Queued datagrams (QUIC DATAGRAM frame payloads, encoded). */
  uint8_t *dq[256];
  size_t dqlen[256];
  size_t dq_head, dq_n;
  uint64_t rx_dgram_unannounced;  /* frames received before we allowed */
  uint64_t rx_dgram_unknown;      /* frames for no open request */
  ix_req_t *reqs;                 /* open requests */
  void *data;                     /* the application's */
};

/* Client: creates a connection on |fd| (connected UDP socket) towards
 * |remote|. Returns 0 or -1 (message logged). */
int ix_conn_client(ix_conn_t *c, const ix_conn_opts_t *o,
                   const ix_hooks_t *h, int fd,
                   const struct sockaddr *remote, socklen_t remotelen);
/* Server: accepts the Initial |pkt| that arrived on |fd| from |remote|.
 * Returns 0 or -1. */
int ix_conn_server(ix_conn_t *c, const ix_conn_opts_t *o,
                   const ix_hooks_t *h, int fd, const struct sockaddr *local,
                   socklen_t locallen, const struct sockaddr *remote,
                   socklen_t remotelen, const uint8_t *pkt, size_t len);
/* Does |pkt| belong to |c| (by Destination Connection ID)? */
int ix_conn_owns(const ix_conn_t *c, const uint8_t *pkt, size_t len);
/* Feeds one received packet; then writes. Returns 0 or -1 (closed). */
int ix_conn_read(ix_conn_t *c, const uint8_t *pkt, size_t len);
/* Writes whatever is pending. Returns 0 or -1. */
int ix_conn_write(ix_conn_t *c);
/* Timer: the next expiry (ns, ix_now() scale) and its handler. */
uint64_t ix_conn_expiry(ix_conn_t *c);
int ix_conn_handle_expiry(ix_conn_t *c);
/* Closes with an HTTP/3 application error code (sends CONNECTION_CLOSE). */
void ix_conn_close(ix_conn_t *c, uint64_t h3_error, const char *reason);
void ix_conn_free(ix_conn_t *c);

/* Client: sends the extended CONNECT for connect-udp. |authority| is
 * host:port, |path| the expanded template, |bearer| may be NULL. Returns
 * the request or NULL. */
ix_req_t *ix_connect_udp(ix_conn_t *c, const char *authority,
                         const char *path, const char *bearer);
/* Server: answers |r|. |status| 2xx opens the tunnel (capsule-protocol
 * ?1); otherwise the stream ends after the headers. |proxy_status| may be
 * NULL. Returns 0 or -1. */
int ix_respond(ix_conn_t *c, ix_req_t *r, int status,
               const char *proxy_status, const char *extra_name,
               const char *extra_value);
/* Looks up a received header field (lower-case name) or NULL. */
const char *ix_req_header(const ix_req_t *r, const char *name);
/* Sends one UDP payload on |r| as a QUIC DATAGRAM frame when both sides
 * enabled HTTP/3 datagrams and it fits, else as a DATAGRAM capsule (or
 * always as a capsule if |force_capsule|). Returns 0 or -1 (dropped). */
int ix_send_payload(ix_conn_t *c, ix_req_t *r, const uint8_t *p, size_t len,
                    int force_capsule);
/* Nonzero when QUIC DATAGRAM frames may carry HTTP Datagrams (RFC 9297
 * §2.1.1: sent and received H3_DATAGRAM = 1, and the QUIC extension). */
int ix_datagrams_usable(ix_conn_t *c);
/* Ends our side of the request (FIN after queued capsules). */
void ix_req_finish(ix_conn_t *c, ix_req_t *r);

/* TLS credentials for the proxy: a fresh Ed25519 key and a self-signed
 * certificate; |key_out| receives the raw public key. Returns 0 or -1. */
int ix_make_server_cred(gnutls_certificate_credentials_t *cred,
                        uint8_t key_out[32], const char *cert_pem_path);

#endif
