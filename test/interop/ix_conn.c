/* SPDX-License-Identifier: MIT */
/*
 * ix connection glue: one QUIC connection (ngtcp2 0.12 + GnuTLS) carrying
 * HTTP/3, where nghttp3 0.8 does HEADERS/QPACK and request streams, and
 * this file does everything MASQUE needs that nghttp3 0.8 cannot: our
 * control stream (written by us; nghttp3's own SETTINGS bytes are
 * swallowed), reading the peer's SETTINGS, HTTP/3 Datagrams in QUIC
 * DATAGRAM frames, and capsules on the request streams.
 * Order: TLS, ngtcp2 callbacks, nghttp3 callbacks, setup, I/O, requests.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "ix.h"

#define SCID_LEN 18
#define MAX_UDP 1452
#define MAX_CAPSULE (65535 + 64)

static const char priority[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
    "+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
    "+GROUP-SECP384R1:%DISABLE_TLS13_COMPAT_MODE";

static void set_app_error(ix_conn_t *c, uint64_t code, const char *why) {
  if (c->close_reason[0] == '\0')
    snprintf(c->close_reason, sizeof(c->close_reason), "%s (0x%llx)", why,
             (unsigned long long)code);
  ngtcp2_connection_close_error_set_application_error(&c->ccerr, code, NULL,
                                                      0);
}

static ix_req_t *find_req(ix_conn_t *c, int64_t sid) {
  ix_req_t *r;
  for (r = c->reqs; r; r = r->next)
    if (r->stream_id == sid)
      return r;
  return NULL;
}

/* ---- TLS --------------------------------------------------------------- */

static int verify_server(gnutls_session_t s) {
  ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(s);
  ix_conn_t *c = ref->user_data;
  const gnutls_datum_t *certs;
  unsigned n = 0;
  gnutls_pubkey_t pk;
  gnutls_ecc_curve_t curve;
  gnutls_datum_t x = {NULL, 0}, y = {NULL, 0};
  int ok = 0;
  if (c->o.insecure)
    return 0;
  certs = gnutls_certificate_get_peers(s, &n);
  if (!certs || n == 0) {
    ix_log("TLS: the proxy sent no certificate");
    c->pin_failed = 1;
    return -1;
  }
  if (gnutls_pubkey_init(&pk) < 0)
    return -1;
  if (gnutls_pubkey_import_x509_raw(pk, &certs[0], GNUTLS_X509_FMT_DER, 0) ==
          0 &&
      gnutls_pubkey_export_ecc_raw(pk, &curve, &x, &y) == 0 &&
      curve == GNUTLS_ECC_CURVE_ED25519 && x.size == 32 &&
      memcmp(x.data, c->o.pin, 32) == 0)
    ok = 1;
  if (!ok) {
    char got[57] = "(not an Ed25519 key)";
    if (x.size == 32)
      ix_peer_id_format(x.data, got);
    ix_log("TLS: the proxy's certificate key does not match the pin (got %s)",
           got);
    c->pin_failed = 1;
  }
  gnutls_free(x.data);
  gnutls_free(y.data);
  gnutls_pubkey_deinit(pk);
  return ok ? 0 : -1;
}

static int tls_init(ix_conn_t *c, gnutls_certificate_credentials_t cred) {
  static const gnutls_datum_t alpn = {(unsigned char *)"h3", 2};
  unsigned flags = c->o.server ? GNUTLS_SERVER : GNUTLS_CLIENT;
  int r;
  if ((r = gnutls_init(&c->tls, flags | GNUTLS_NO_END_OF_EARLY_DATA)) < 0) {
    ix_log("gnutls_init: %s", gnutls_strerror(r));
    return -1;
  }
  r = c->o.server ? ngtcp2_crypto_gnutls_configure_server_session(c->tls)
                  : ngtcp2_crypto_gnutls_configure_client_session(c->tls);
  if (r != 0) {
    ix_log("ngtcp2_crypto_gnutls_configure_*_session failed");
    return -1;
  }
  if ((r = gnutls_priority_set_direct(c->tls, priority, NULL)) < 0 ||
      (r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, cred)) < 0 ||
      (r = gnutls_alpn_set_protocols(c->tls, &alpn, 1,
                                     GNUTLS_ALPN_MANDATORY)) < 0) {
    ix_log("TLS setup: %s", gnutls_strerror(r));
    return -1;
  }
  gnutls_session_set_ptr(c->tls, &c->ref);
  if (!c->o.server) {
    const char *sni = c->o.sni ? c->o.sni : "localhost";
    gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, sni, strlen(sni));
    gnutls_session_set_verify_function(c->tls, verify_server);
  }
  return 0;
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref) {
  return ((ix_conn_t *)ref->user_data)->q;
}

int ix_make_server_cred(gnutls_certificate_credentials_t *cred,
                        uint8_t key_out[32], const char *cert_pem_path) {
  gnutls_x509_privkey_t key = NULL;
  gnutls_x509_crt_t crt = NULL;
  gnutls_ecc_curve_t curve;
  gnutls_datum_t x = {NULL, 0}, y = {NULL, 0}, k = {NULL, 0};
  unsigned char serial[16];
  time_t now = time(NULL);
  int r, ok = -1;
  const char *step = "key";
  if ((r = gnutls_x509_privkey_init(&key)) < 0 ||
      (r = gnutls_x509_privkey_generate(key, GNUTLS_PK_EDDSA_ED25519, 0,
                                        0)) < 0)
    goto out;
  step = "certificate";
  gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
  serial[0] = (serial[0] & 0x7f) | 0x40;
  if ((r = gnutls_x509_crt_init(&crt)) < 0 ||
      (r = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
      (r = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
      (r = gnutls_x509_crt_set_dn(crt, "CN=ix-masque-proxy", NULL)) < 0 ||
      (r = gnutls_x509_crt_set_activation_time(crt, now - 86400)) < 0 ||
      (r = gnutls_x509_crt_set_expiration_time(crt, now + 86400 * 30)) < 0 ||
      (r = gnutls_x509_crt_set_key(crt, key)) < 0 ||
      (r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
      (r = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) <
          0 ||
      (r = gnutls_x509_crt_set_subject_alt_name(
           crt, GNUTLS_SAN_DNSNAME, "localhost", 9, GNUTLS_FSAN_SET)) < 0 ||
      (r = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA512, 0)) < 0)
    goto out;
  step = "public key";
  if ((r = gnutls_x509_privkey_export_ecc_raw(key, &curve, &x, &y, &k)) < 0)
    goto out;
  if (x.size != 32) {
    r = GNUTLS_E_INTERNAL_ERROR;
    goto out;
  }
  memcpy(key_out, x.data, 32);
  step = "credentials";
  if ((r = gnutls_certificate_allocate_credentials(cred)) < 0 ||
      (r = gnutls_certificate_set_x509_key(*cred, &crt, 1, key)) < 0)
    goto out;
  if (cert_pem_path) {
    gnutls_datum_t pem;
    FILE *f;
    step = "writing the certificate";
    if ((r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem)) < 0)
      goto out;
    f = fopen(cert_pem_path, "w");
    if (!f || fwrite(pem.data, 1, pem.size, f) != pem.size) {
      ix_log("%s: %s", cert_pem_path, strerror(errno));
      if (f)
        fclose(f);
      gnutls_free(pem.data);
      goto out_quiet;
    }
    fclose(f);
    gnutls_free(pem.data);
  }
  ok = 0;
out:
  if (ok != 0)
    ix_log("making the proxy's %s: %s", step, gnutls_strerror(r));
out_quiet:
  gnutls_free(x.data);
  gnutls_free(y.data);
  if (k.data) {
    gnutls_memset(k.data, 0, k.size);
    gnutls_free(k.data);
  }
  if (crt)
    gnutls_x509_crt_deinit(crt);
  if (key)
    gnutls_x509_privkey_deinit(key);
  return ok;
}

/* ---- the peer's unidirectional streams (SETTINGS) ------------------------- */

static int is_peer_uni(const ix_conn_t *c, int64_t sid) {
  return (sid & 3) == (c->o.server ? 2 : 3);
}

/* Watches the start of every peer uni stream to find the control stream
 * and parse its first frame, which must be SETTINGS. Returns 0 or an
 * HTTP/3 error code. The bytes still go to nghttp3 unchanged. */
static uint64_t snoop_uni(ix_conn_t *c, int64_t sid, const uint8_t *data,
                          size_t len) {
  size_t i, k1, k2, off;
  uint64_t type, ftype, flen, err;
  if (c->peer.received)
    return 0;
  if (c->peer_ctrl_id < 0) {
    for (i = 0; i < c->nuni; i++)
      if (c->uni_ids[i] == sid)
        return 0; /* a known stream of another type */
    /* The stream type of a control stream (0x00) is one byte; a stream
     * type split across packets is rare enough to parse only here. */
    if (!(k1 = ix_varint_get(data, len, &type)))
      return 0;
    if (c->nuni < 8) {
      c->uni_ids[c->nuni] = sid;
      c->uni_types[c->nuni++] = type;
    }
    if (type != IX_H3_STREAM_CONTROL)
      return 0;
    c->peer_ctrl_id = sid;
    data += k1;
    len -= k1;
  } else if (sid != c->peer_ctrl_id) {
    return 0;
  }
  if (len > sizeof(c->peer_ctrl) - c->peer_ctrl_len)
    len = sizeof(c->peer_ctrl) - c->peer_ctrl_len;
  memcpy(c->peer_ctrl + c->peer_ctrl_len, data, len);
  c->peer_ctrl_len += len;
  if (!(k1 = ix_varint_get(c->peer_ctrl, c->peer_ctrl_len, &ftype)) ||
      !(k2 = ix_varint_get(c->peer_ctrl + k1, c->peer_ctrl_len - k1, &flen)))
    return 0;
  if (ftype != IX_H3_FRAME_SETTINGS)
    return IX_H3_MISSING_SETTINGS; /* RFC 9114 §6.2.1 */
  off = k1 + k2;
  if (flen > sizeof(c->peer_ctrl) - off)
    return IX_H3_SETTINGS_ERROR; /* far larger than anyone sends */
  if (c->peer_ctrl_len - off < flen)
    return 0;
  if ((err = ix_settings_parse(c->peer_ctrl + off, (size_t)flen, &c->peer)))
    return err;
  ix_debug("peer SETTINGS: %u pairs, ENABLE_CONNECT_PROTOCOL=%d, "
           "H3_DATAGRAM=%d, %u unknown",
           c->peer.nsettings, c->peer.connect_protocol, c->peer.h3_datagram,
           c->peer.nunknown);
  if (c->peer.h3_datagram &&
      ngtcp2_conn_get_remote_transport_params(c->q)->max_datagram_frame_size ==
          0)
    return IX_H3_SETTINGS_ERROR; /* H3_DATAGRAM without the QUIC extension */
  if (c->hooks.on_settings)
    c->hooks.on_settings(c);
  return 0;
}

/* ---- ngtcp2 callbacks ------------------------------------------------------ */

static void rand_cb(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx) {
  (void)ctx;
  gnutls_rnd(GNUTLS_RND_RANDOM, dest, len);
}

static int new_cid_cb(ngtcp2_conn *q, ngtcp2_cid *cid, uint8_t *token,
                      size_t cidlen, void *user) {
  ix_conn_t *c = user;
  (void)q;
  if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) != 0 ||
      gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN) !=
          0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  cid->datalen = cidlen;
  if (c->nscids < sizeof(c->scids) / sizeof(c->scids[0]))
    c->scids[c->nscids++] = *cid;
  return 0;
}

static int recv_stream_data_cb(ngtcp2_conn *q, uint32_t flags, int64_t sid,
                               uint64_t offset, const uint8_t *data,
                               size_t len, void *user, void *sud) {
  ix_conn_t *c = user;
  nghttp3_ssize n;
  uint64_t err;
  (void)offset;
  (void)sud;
  if (is_peer_uni(c, sid) && (err = snoop_uni(c, sid, data, len)) != 0) {
    set_app_error(c, err, "peer SETTINGS rejected");
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  n = nghttp3_conn_read_stream(c->h3, sid, data, len,
                               flags & NGTCP2_STREAM_DATA_FLAG_FIN);
  if (n < 0) {
    ix_log("nghttp3_conn_read_stream(stream %lld): %s", (long long)sid,
           nghttp3_strerror((int)n));
    set_app_error(c, nghttp3_err_infer_quic_app_error_code((int)n),
                  "HTTP/3 error from the peer's data");
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  ngtcp2_conn_extend_max_stream_offset(q, sid, (uint64_t)n);
  ngtcp2_conn_extend_max_offset(q, (uint64_t)n);
  return 0;
}

static int acked_cb(ngtcp2_conn *q, int64_t sid, uint64_t offset,
                    uint64_t len, void *user, void *sud) {
  ix_conn_t *c = user;
  (void)q;
  (void)offset;
  (void)sud;
  if (sid == c->ctrl_id)
    return 0; /* our own bytes, static */
  if (nghttp3_conn_add_ack_offset(c->h3, sid, len) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int stream_close_cb(ngtcp2_conn *q, uint32_t flags, int64_t sid,
                           uint64_t code, void *user, void *sud) {
  ix_conn_t *c = user;
  ix_req_t *r = find_req(c, sid);
  int rv;
  (void)q;
  (void)sud;
  if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET))
    code = IX_H3_NO_ERROR;
  rv = nghttp3_conn_close_stream(c->h3, sid, code);
  if (rv != 0 && rv != NGHTTP3_ERR_STREAM_NOT_FOUND) {
    set_app_error(c, nghttp3_err_infer_quic_app_error_code(rv),
                  "closing a stream");
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  if (r && !r->closed) {
    r->closed = 1;
    if (!r->fin_received && c->hooks.on_req_end) {
      r->fin_received = 1;
      c->hooks.on_req_end(c, r);
    }
  }
  return 0;
}

static int stream_reset_cb(ngtcp2_conn *q, int64_t sid, uint64_t final_size,
                           uint64_t code, void *user, void *sud) {
  ix_conn_t *c = user;
  (void)q;
  (void)final_size;
  (void)code;
  (void)sud;
  if (nghttp3_conn_shutdown_stream_read(c->h3, sid) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int stop_sending_cb(ngtcp2_conn *q, int64_t sid, uint64_t code,
                           void *user, void *sud) {
  ix_conn_t *c = user;
  (void)q;
  (void)code;
  (void)sud;
  if (nghttp3_conn_shutdown_stream_read(c->h3, sid) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int extend_max_stream_data_cb(ngtcp2_conn *q, int64_t sid,
                                     uint64_t max, void *user, void *sud) {
  ix_conn_t *c = user;
  (void)q;
  (void)max;
  (void)sud;
  if (sid != c->ctrl_id && nghttp3_conn_unblock_stream(c->h3, sid) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int recv_datagram_cb(ngtcp2_conn *q, uint32_t flags,
                            const uint8_t *data, size_t len, void *user) {
  ix_conn_t *c = user;
  int64_t sid;
  uint64_t ctx;
  const uint8_t *p;
  size_t plen;
  long rv;
  ix_req_t *r;
  (void)q;
  (void)flags;
  if (!c->o.h3_datagram) {
    /* RFC 9297 §2.1.1: no QUIC DATAGRAM frames until H3_DATAGRAM = 1 was
     * both sent and received; we never sent it. */
    c->rx_dgram_unannounced++;
    ix_log("received a QUIC DATAGRAM frame although we did not announce "
           "SETTINGS_H3_DATAGRAM");
    return 0;
  }
  rv = ix_dgram_decode(data, len, &sid, &ctx, &p, &plen);
  if (rv == IX_H3_DATAGRAM_ERROR) {
    set_app_error(c, IX_H3_DATAGRAM_ERROR, "bad Quarter Stream ID");
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  r = find_req(c, sid);
  if (!r || r->closed || rv != 0) {
    c->rx_dgram_unknown++;
    ix_debug("dropped a datagram for stream %lld", (long long)sid);
    return 0;
  }
  if (ctx != 0) {
    r->rx_bad_context++;
    return 0; /* RFC 9298 §5: unknown context, drop */
  }
  r->rx_frames++;
  if (c->hooks.on_payload)
    c->hooks.on_payload(c, r, p, plen, 1);
  return 0;
}

static int handshake_completed_cb(ngtcp2_conn *q, void *user) {
  (void)q;
  (void)user;
  return 0;
}

static const ngtcp2_callbacks *callbacks(int server) {
  static ngtcp2_callbacks cb[2];
  static int init;
  if (!init) {
    int i;
    for (i = 0; i < 2; i++) {
      ngtcp2_callbacks *k = &cb[i];
      memset(k, 0, sizeof(*k));
      if (i)
        k->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
      else {
        k->client_initial = ngtcp2_crypto_client_initial_cb;
        k->recv_retry = ngtcp2_crypto_recv_retry_cb;
      }
      k->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
      k->handshake_completed = handshake_completed_cb;
      k->encrypt = ngtcp2_crypto_encrypt_cb;
      k->decrypt = ngtcp2_crypto_decrypt_cb;
      k->hp_mask = ngtcp2_crypto_hp_mask_cb;
      k->recv_stream_data = recv_stream_data_cb;
      k->acked_stream_data_offset = acked_cb;
      k->stream_close = stream_close_cb;
      k->rand = rand_cb;
      k->get_new_connection_id = new_cid_cb;
      k->update_key = ngtcp2_crypto_update_key_cb;
      k->stream_reset = stream_reset_cb;
      k->extend_max_stream_data = extend_max_stream_data_cb;
      k->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
      k->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
      k->recv_datagram = recv_datagram_cb;
      k->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
      k->stream_stop_sending = stop_sending_cb;
      k->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
    }
    init = 1;
  }
  return &cb[server ? 1 : 0];
}

/* ---- nghttp3 callbacks ------------------------------------------------------ */

static void on_capsule(void *arg, uint64_t type, const uint8_t *v,
                       size_t len) {
  ix_req_t *r = arg;
  uint64_t ctx;
  size_t k;
  if (type != IX_CAPSULE_DATAGRAM) {
    r->rx_unknown_capsules++; /* RFC 9297 §3.2: skip unknown types */
    return;
  }
  if (!(k = ix_varint_get(v, len, &ctx))) {
    r->capsule_error = 1; /* malformed DATAGRAM capsule */
    return;
  }
  if (ctx != 0) {
    r->rx_bad_context++;
    return;
  }
  if (len - k > 65527) {
    r->capsule_error = 1; /* RFC 9298 §5: abort the stream */
    return;
  }
  r->rx_capsules++;
  if (r->conn->hooks.on_payload)
    r->conn->hooks.on_payload(r->conn, r, v + k, len - k, 0);
}

static void abort_req(ix_conn_t *c, ix_req_t *r, uint64_t code,
                      const char *why) {
  ix_log("stream %lld: %s; resetting it with 0x%llx", (long long)r->stream_id,
         why, (unsigned long long)code);
  ngtcp2_conn_shutdown_stream(c->q, r->stream_id, code);
}

static int h3_recv_data(nghttp3_conn *h, int64_t sid, const uint8_t *data,
                        size_t len, void *cud, void *sud) {
  ix_conn_t *c = cud;
  ix_req_t *r = sud;
  (void)h;
  ngtcp2_conn_extend_max_stream_offset(c->q, sid, len);
  ngtcp2_conn_extend_max_offset(c->q, len);
  if (!r || r->capsule_error)
    return 0;
  if (ix_capsule_parser_feed(&r->in, data, len, on_capsule, r) != 0)
    r->capsule_error = 1;
  if (r->capsule_error)
    abort_req(c, r, IX_H3_MESSAGE_ERROR, "malformed capsule");
  return 0;
}

static int h3_deferred_consume(nghttp3_conn *h, int64_t sid, size_t n,
                               void *cud, void *sud) {
  ix_conn_t *c = cud;
  (void)h;
  (void)sud;
  ngtcp2_conn_extend_max_stream_offset(c->q, sid, n);
  ngtcp2_conn_extend_max_offset(c->q, n);
  return 0;
}

static ix_req_t *new_req(ix_conn_t *c, int64_t sid) {
  ix_req_t *r = calloc(1, sizeof(*r));
  if (!r || !(r->out = malloc(IX_REQ_OUTBUF))) {
    free(r);
    return NULL;
  }
  r->conn = c;
  r->stream_id = sid;
  ix_capsule_parser_init(&r->in, MAX_CAPSULE);
  r->next = c->reqs;
  c->reqs = r;
  return r;
}

static int h3_begin_headers(nghttp3_conn *h, int64_t sid, void *cud,
                            void *sud) {
  ix_conn_t *c = cud;
  ix_req_t *r = sud;
  if (!r && c->o.server) {
    if (!(r = new_req(c, sid)))
      return NGHTTP3_ERR_CALLBACK_FAILURE;
    nghttp3_conn_set_stream_user_data(h, sid, r);
  }
  if (r)
    r->nhdr = 0;
  return 0;
}

static int h3_recv_header(nghttp3_conn *h, int64_t sid, int32_t token,
                          nghttp3_rcbuf *name, nghttp3_rcbuf *value,
                          uint8_t flags, void *cud, void *sud) {
  ix_req_t *r = sud;
  nghttp3_vec n = nghttp3_rcbuf_get_buf(name);
  nghttp3_vec v = nghttp3_rcbuf_get_buf(value);
  (void)h;
  (void)sid;
  (void)token;
  (void)flags;
  (void)cud;
  if (!r || r->nhdr >= IX_MAX_HEADERS)
    return 0;
  snprintf(r->hdr_name[r->nhdr], sizeof(r->hdr_name[0]), "%.*s",
           (int)n.len, (const char *)n.base);
  snprintf(r->hdr_value[r->nhdr], sizeof(r->hdr_value[0]), "%.*s",
           (int)v.len, (const char *)v.base);
  r->nhdr++;
  return 0;
}

static int h3_end_headers(nghttp3_conn *h, int64_t sid, int fin, void *cud,
                          void *sud) {
  ix_conn_t *c = cud;
  ix_req_t *r = sud;
  (void)h;
  (void)sid;
  (void)fin;
  if (!r)
    return 0;
  r->headers_done = 1;
  if (c->o.server) {
    if (c->hooks.on_request)
      c->hooks.on_request(c, r);
  } else {
    const char *st = ix_req_header(r, ":status");
    r->status = st ? atoi(st) : 0;
    /* Interim (1xx) responses are not final; wait for the next one. */
    if (r->status >= 200 && c->hooks.on_response)
      c->hooks.on_response(c, r);
  }
  return 0;
}

static int h3_end_stream(nghttp3_conn *h, int64_t sid, void *cud, void *sud) {
  ix_conn_t *c = cud;
  ix_req_t *r = sud;
  (void)h;
  (void)sid;
  if (!r || r->fin_received)
    return 0;
  r->fin_received = 1;
  if (ix_capsule_parser_partial(&r->in))
    /* RFC 9297 §3.3: a truncated capsule at FIN is a malformed message. */
    r->capsule_error = 1;
  if (c->hooks.on_req_end)
    c->hooks.on_req_end(c, r);
  return 0;
}

static int h3_acked(nghttp3_conn *h, int64_t sid, uint64_t n, void *cud,
                    void *sud) {
  ix_req_t *r = sud;
  (void)h;
  (void)sid;
  (void)cud;
  if (!r)
    return 0;
  r->out_acked += (size_t)n;
  if (r->out_acked == r->out_end && r->out_read == r->out_end)
    r->out_acked = r->out_read = r->out_end = 0; /* all back; reuse */
  return 0;
}

static int h3_stream_close(nghttp3_conn *h, int64_t sid, uint64_t code,
                           void *cud, void *sud) {
  ix_req_t *r = sud;
  (void)h;
  (void)sid;
  (void)code;
  (void)cud;
  if (r)
    r->closed = 1;
  return 0;
}

static int h3_stop_sending(nghttp3_conn *h, int64_t sid, uint64_t code,
                           void *cud, void *sud) {
  ix_conn_t *c = cud;
  (void)h;
  (void)sud;
  ngtcp2_conn_shutdown_stream_read(c->q, sid, code);
  return 0;
}

static int h3_reset_stream(nghttp3_conn *h, int64_t sid, uint64_t code,
                           void *cud, void *sud) {
  ix_conn_t *c = cud;
  (void)h;
  (void)sud;
  ngtcp2_conn_shutdown_stream_write(c->q, sid, code);
  return 0;
}

static nghttp3_ssize read_data(nghttp3_conn *h, int64_t sid,
                               nghttp3_vec *vec, size_t veccnt,
                               uint32_t *pflags, void *cud, void *sud) {
  ix_req_t *r = sud;
  (void)h;
  (void)sid;
  (void)cud;
  if (veccnt == 0)
    return NGHTTP3_ERR_WOULDBLOCK;
  if (r->out_read < r->out_end) {
    vec[0].base = r->out + r->out_read;
    vec[0].len = r->out_end - r->out_read;
    r->out_read = r->out_end;
    return 1;
  }
  if (r->out_eof) {
    *pflags |= NGHTTP3_DATA_FLAG_EOF;
    return 0;
  }
  return NGHTTP3_ERR_WOULDBLOCK;
}

static int h3_new(ix_conn_t *c) {
  nghttp3_callbacks cb;
  nghttp3_settings s;
  int rv;
  memset(&cb, 0, sizeof(cb));
  cb.acked_stream_data = h3_acked;
  cb.stream_close = h3_stream_close;
  cb.recv_data = h3_recv_data;
  cb.deferred_consume = h3_deferred_consume;
  cb.begin_headers = h3_begin_headers;
  cb.recv_header = h3_recv_header;
  cb.end_headers = h3_end_headers;
  cb.stop_sending = h3_stop_sending;
  cb.end_stream = h3_end_stream;
  cb.reset_stream = h3_reset_stream;
  nghttp3_settings_default(&s);
  /* What nghttp3 enforces must match what our own SETTINGS say: no
   * dynamic QPACK table (the identifiers are omitted, default 0). */
  s.qpack_max_dtable_capacity = 0;
  s.qpack_blocked_streams = 0;
  s.enable_connect_protocol = c->o.server;
  rv = c->o.server ? nghttp3_conn_server_new(&c->h3, &cb, &s, NULL, c)
                   : nghttp3_conn_client_new(&c->h3, &cb, &s, NULL, c);
  if (rv != 0) {
    ix_log("nghttp3_conn_*_new: %s", nghttp3_strerror(rv));
    return -1;
  }
  return 0;
}

/* Once the handshake is done: our three unidirectional streams. */
static int h3_setup(ix_conn_t *c) {
  int64_t qenc, qdec;
  int rv;
  gnutls_datum_t alpn;
  if (gnutls_alpn_get_selected_protocol(c->tls, &alpn) != 0 ||
      alpn.size != 2 || memcmp(alpn.data, "h3", 2) != 0) {
    ix_log("the peer did not select ALPN h3");
    set_app_error(c, IX_H3_GENERAL_PROTOCOL_ERROR, "no ALPN h3");
    return -1;
  }
  if ((rv = ngtcp2_conn_open_uni_stream(c->q, &c->ctrl_id, NULL)) != 0 ||
      (rv = ngtcp2_conn_open_uni_stream(c->q, &qenc, NULL)) != 0 ||
      (rv = ngtcp2_conn_open_uni_stream(c->q, &qdec, NULL)) != 0) {
    ix_log("opening the HTTP/3 unidirectional streams: %s",
           ngtcp2_strerror(rv));
    return -1;
  }
  c->ctrl_len = ix_control_preamble(c->ctrl, c->o.server, c->o.h3_datagram,
                                    c->o.grease);
  c->ctrl_sent = 0;
  /* nghttp3 is bound to the same control stream, but what it writes there
   * (its own SETTINGS without H3_DATAGRAM) is swallowed in
   * ix_conn_write: the control stream carries only our bytes. */
  if ((rv = nghttp3_conn_bind_control_stream(c->h3, c->ctrl_id)) != 0 ||
      (rv = nghttp3_conn_bind_qpack_streams(c->h3, qenc, qdec)) != 0) {
    ix_log("nghttp3 bind: %s", nghttp3_strerror(rv));
    return -1;
  }
  c->ready = 1;
  if (c->hooks.on_ready)
    c->hooks.on_ready(c);
  return 0;
}

/* ---- creation ---------------------------------------------------------------- */

static void common_init(ix_conn_t *c, const ix_conn_opts_t *o,
                        const ix_hooks_t *h, int fd) {
  memset(c, 0, sizeof(*c));
  c->o = *o;
  c->hooks = *h;
  c->fd = fd;
  c->ctrl_id = -1;
  c->peer_ctrl_id = -1;
  c->ref.get_conn = get_conn;
  c->ref.user_data = c;
  ngtcp2_connection_close_error_default(&c->ccerr);
}

static void params_init(ix_conn_t *c, ngtcp2_settings *s,
                        ngtcp2_transport_params *p) {
  ngtcp2_settings_default(s);
  s->initial_ts = ix_now();
  s->max_tx_udp_payload_size = MAX_UDP;
  s->handshake_timeout = 5ULL * NGTCP2_SECONDS;
  ngtcp2_transport_params_default(p);
  p->initial_max_data = 8 * 1024 * 1024;
  p->initial_max_stream_data_bidi_local = 1024 * 1024;
  p->initial_max_stream_data_bidi_remote = 1024 * 1024;
  p->initial_max_stream_data_uni = 1024 * 1024;
  p->initial_max_streams_bidi = c->o.server ? 16 : 0;
  p->initial_max_streams_uni = 8;
  p->max_idle_timeout = 30ULL * NGTCP2_SECONDS;
  p->max_datagram_frame_size = c->o.datagram_tp ? 65535 : 0;
}

int ix_conn_client(ix_conn_t *c, const ix_conn_opts_t *o,
                   const ix_hooks_t *h, int fd,
                   const struct sockaddr *remote, socklen_t remotelen) {
  ngtcp2_cid dcid, scid;
  ngtcp2_settings s;
  ngtcp2_transport_params p;
  ngtcp2_path path;
  gnutls_certificate_credentials_t cred;
  int rv;
  common_init(c, o, h, fd);
  memcpy(&c->remote, remote, remotelen);
  c->remotelen = remotelen;
  c->locallen = sizeof(c->local);
  if (getsockname(fd, (struct sockaddr *)&c->local, &c->locallen) != 0) {
    ix_log("getsockname: %s", strerror(errno));
    return -1;
  }
  if (gnutls_certificate_allocate_credentials(&cred) < 0)
    return -1;
  c->own_cred = cred;
  rv = tls_init(c, cred);
  if (rv != 0)
    return -1;
  dcid.datalen = 16;
  scid.datalen = SCID_LEN;
  gnutls_rnd(GNUTLS_RND_RANDOM, dcid.data, dcid.datalen);
  gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen);
  c->scids[c->nscids++] = scid;
  params_init(c, &s, &p);
  path.local.addr = (ngtcp2_sockaddr *)&c->local;
  path.local.addrlen = c->locallen;
  path.remote.addr = (ngtcp2_sockaddr *)&c->remote;
  path.remote.addrlen = c->remotelen;
  path.user_data = NULL;
  rv = ngtcp2_conn_client_new(&c->q, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1,
                              callbacks(0), &s, &p, NULL, c);
  if (rv != 0) {
    ix_log("ngtcp2_conn_client_new: %s", ngtcp2_strerror(rv));
    return -1;
  }
  ngtcp2_conn_set_tls_native_handle(c->q, c->tls);
  return h3_new(c);
}

int ix_conn_server(ix_conn_t *c, const ix_conn_opts_t *o,
                   const ix_hooks_t *h, int fd, const struct sockaddr *local,
                   socklen_t locallen, const struct sockaddr *remote,
                   socklen_t remotelen, const uint8_t *pkt, size_t len) {
  ngtcp2_pkt_hd hd;
  ngtcp2_cid scid;
  ngtcp2_settings s;
  ngtcp2_transport_params p;
  ngtcp2_path path;
  int rv;
  common_init(c, o, h, fd);
  if (ngtcp2_accept(&hd, pkt, len) != 0)
    return -1;
  memcpy(&c->local, local, locallen);
  c->locallen = locallen;
  memcpy(&c->remote, remote, remotelen);
  c->remotelen = remotelen;
  if (tls_init(c, o->cred) != 0)
    return -1;
  scid.datalen = SCID_LEN;
  gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen);
  c->scids[c->nscids++] = scid;
  c->odcid = hd.dcid;
  params_init(c, &s, &p);
  p.original_dcid = hd.dcid;
  path.local.addr = (ngtcp2_sockaddr *)&c->local;
  path.local.addrlen = c->locallen;
  path.remote.addr = (ngtcp2_sockaddr *)&c->remote;
  path.remote.addrlen = c->remotelen;
  path.user_data = NULL;
  rv = ngtcp2_conn_server_new(&c->q, &hd.scid, &scid, &path, hd.version,
                              callbacks(1), &s, &p, NULL, c);
  if (rv != 0) {
    ix_log("ngtcp2_conn_server_new: %s", ngtcp2_strerror(rv));
    return -1;
  }
  ngtcp2_conn_set_tls_native_handle(c->q, c->tls);
  if (h3_new(c) != 0)
    return -1;
  nghttp3_conn_set_max_client_streams_bidi(c->h3, p.initial_max_streams_bidi);
  return 0;
}

int ix_conn_owns(const ix_conn_t *c, const uint8_t *pkt, size_t len) {
  ngtcp2_version_cid vc;
  size_t i;
  int rv = ngtcp2_pkt_decode_version_cid(&vc, pkt, len, SCID_LEN);
  if (rv != 0)
    return 0;
  if (vc.dcidlen == c->odcid.datalen &&
      memcmp(vc.dcid, c->odcid.data, vc.dcidlen) == 0)
    return 1;
  for (i = 0; i < c->nscids; i++)
    if (vc.dcidlen == c->scids[i].datalen &&
        memcmp(vc.dcid, c->scids[i].data, vc.dcidlen) == 0)
      return 1;
  return 0;
}

void ix_conn_free(ix_conn_t *c) {
  ix_req_t *r, *n;
  size_t i;
  for (r = c->reqs; r; r = n) {
    n = r->next;
    ix_capsule_parser_free(&r->in);
    free(r->out);
    free(r);
  }
  c->reqs = NULL;
  for (i = 0; i < c->dq_n; i++)
    free(c->dq[(c->dq_head + i) % 256]);
  c->dq_n = 0;
  if (c->h3)
    nghttp3_conn_del(c->h3);
  if (c->q)
    ngtcp2_conn_del(c->q);
  if (c->tls)
    gnutls_deinit(c->tls);
  if (c->own_cred)
    gnutls_certificate_free_credentials(c->own_cred);
  c->own_cred = NULL;
  c->h3 = NULL;
  c->q = NULL;
  c->tls = NULL;
}

/* ---- I/O --------------------------------------------------------------------- */

static int send_pkt(ix_conn_t *c, const ngtcp2_path *path, const uint8_t *b,
                    size_t n) {
  ssize_t w;
  do
    w = sendto(c->fd, b, n, 0, (const struct sockaddr *)path->remote.addr,
               path->remote.addrlen);
  while (w < 0 && errno == EINTR);
  if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    ix_log("sendto: %s", strerror(errno));
    return -1;
  }
  return 0;
}

static void fatal(ix_conn_t *c, int lib, const char *what) {
  ix_log("%s: %s", what, ngtcp2_strerror(lib));
  if (c->ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT &&
      c->ccerr.error_code == 0) {
    if (lib == NGTCP2_ERR_CRYPTO)
      ngtcp2_connection_close_error_set_transport_error_tls_alert(
          &c->ccerr, ngtcp2_conn_get_tls_alert(c->q), NULL, 0);
    else
      ngtcp2_connection_close_error_set_transport_error_liberr(&c->ccerr, lib,
                                                               NULL, 0);
  }
  if (c->close_reason[0] == '\0')
    snprintf(c->close_reason, sizeof(c->close_reason), "%s: %s", what,
             ngtcp2_strerror(lib));
}

static void write_close(ix_conn_t *c) {
  uint8_t buf[MAX_UDP];
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  ngtcp2_ssize n;
  if (c->closing || !c->q)
    return;
  c->closing = 1;
  if (ngtcp2_conn_is_in_closing_period(c->q) ||
      ngtcp2_conn_is_in_draining_period(c->q))
    return;
  ngtcp2_path_storage_zero(&ps);
  n = ngtcp2_conn_write_connection_close(c->q, &ps.path, &pi, buf,
                                         sizeof(buf), &c->ccerr, ix_now());
  if (n > 0)
    send_pkt(c, &ps.path, buf, (size_t)n);
}

void ix_conn_close(ix_conn_t *c, uint64_t h3_error, const char *reason) {
  if (c->closing)
    return;
  set_app_error(c, h3_error, reason);
  write_close(c);
}

int ix_conn_write(ix_conn_t *c) {
  uint8_t buf[MAX_UDP];
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  uint64_t ts = ix_now();
  if (c->closing)
    return -1;
  ngtcp2_path_storage_zero(&ps);
  for (;;) {
    int64_t sid = -1;
    int fin = 0, is_ctrl = 0;
    nghttp3_vec vec[16];
    ngtcp2_vec own;
    const ngtcp2_vec *v = NULL;
    size_t vcnt = 0;
    ngtcp2_ssize nwrite, ndata = -1;
    uint32_t flags;
    if (c->ctrl_id >= 0 && c->ctrl_sent < c->ctrl_len) {
      sid = c->ctrl_id;
      own.base = c->ctrl + c->ctrl_sent;
      own.len = c->ctrl_len - c->ctrl_sent;
      v = &own;
      vcnt = 1;
      is_ctrl = 1;
    } else if (c->ready && ngtcp2_conn_get_max_data_left(c->q)) {
      nghttp3_ssize nv =
          nghttp3_conn_writev_stream(c->h3, &sid, &fin, vec, 16);
      if (nv < 0) {
        ix_log("nghttp3_conn_writev_stream: %s", nghttp3_strerror((int)nv));
        set_app_error(c, nghttp3_err_infer_quic_app_error_code((int)nv),
                      "HTTP/3 write error");
        write_close(c);
        return -1;
      }
      if (sid >= 0 && sid == c->ctrl_id) {
        /* nghttp3's control stream bytes: never sent (see h3_setup). */
        size_t i, tot = 0;
        for (i = 0; i < (size_t)nv; i++)
          tot += vec[i].len;
        if (nghttp3_conn_add_write_offset(c->h3, sid, tot) != 0 ||
            nghttp3_conn_add_ack_offset(c->h3, sid, tot) != 0)
          return -1;
        continue;
      }
      v = (const ngtcp2_vec *)vec;
      vcnt = (size_t)nv;
    }
    if (sid < 0 && c->dq_n > 0) {
      size_t h = c->dq_head;
      int accepted = 0;
      ngtcp2_vec dv;
      dv.base = c->dq[h];
      dv.len = c->dqlen[h];
      nwrite = ngtcp2_conn_writev_datagram(c->q, &ps.path, &pi, buf,
                                           sizeof(buf), &accepted, 0, 0, &dv,
                                           1, ts);
      if (nwrite < 0 && nwrite != NGTCP2_ERR_INVALID_ARGUMENT &&
          nwrite != NGTCP2_ERR_INVALID_STATE) {
        fatal(c, (int)nwrite, "ngtcp2_conn_writev_datagram");
        write_close(c);
        return -1;
      }
      if (accepted || nwrite < 0) {
        if (nwrite < 0)
          ix_log("a datagram of %zu bytes was refused by ngtcp2 (%s)",
                 dv.len, ngtcp2_strerror((int)nwrite));
        free(c->dq[h]);
        c->dq_head = (h + 1) % 256;
        c->dq_n--;
      }
      if (nwrite < 0)
        continue;
      if (nwrite == 0)
        break;
      if (send_pkt(c, &ps.path, buf, (size_t)nwrite) != 0)
        return -1;
      continue;
    }
    flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
    if (fin)
      flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
    nwrite = ngtcp2_conn_writev_stream(c->q, &ps.path, &pi, buf, sizeof(buf),
                                       &ndata, flags, sid, v, vcnt, ts);
    if (nwrite < 0) {
      switch (nwrite) {
      case NGTCP2_ERR_STREAM_DATA_BLOCKED:
        if (is_ctrl)
          goto done;
        nghttp3_conn_block_stream(c->h3, sid);
        continue;
      case NGTCP2_ERR_STREAM_SHUT_WR:
        if (is_ctrl)
          goto done;
        nghttp3_conn_shutdown_stream_write(c->h3, sid);
        continue;
      case NGTCP2_ERR_WRITE_MORE:
        if (is_ctrl)
          c->ctrl_sent += (size_t)ndata;
        else if (nghttp3_conn_add_write_offset(c->h3, sid, (size_t)ndata))
          return -1;
        continue;
      default:
        fatal(c, (int)nwrite, "ngtcp2_conn_writev_stream");
        write_close(c);
        return -1;
      }
    }
    if (ndata >= 0) {
      if (is_ctrl)
        c->ctrl_sent += (size_t)ndata;
      else if (nghttp3_conn_add_write_offset(c->h3, sid, (size_t)ndata))
        return -1;
    }
    if (nwrite == 0)
      break;
    if (send_pkt(c, &ps.path, buf, (size_t)nwrite) != 0)
      return -1;
  }
done:
  return 0;
}

int ix_conn_read(ix_conn_t *c, const uint8_t *pkt, size_t len) {
  ngtcp2_path path;
  ngtcp2_pkt_info pi;
  int rv;
  if (c->closing)
    return -1;
  memset(&pi, 0, sizeof(pi));
  path.local.addr = (ngtcp2_sockaddr *)&c->local;
  path.local.addrlen = c->locallen;
  path.remote.addr = (ngtcp2_sockaddr *)&c->remote;
  path.remote.addrlen = c->remotelen;
  path.user_data = NULL;
  rv = ngtcp2_conn_read_pkt(c->q, &path, &pi, pkt, len, ix_now());
  if (rv != 0) {
    if (rv == NGTCP2_ERR_DRAINING || rv == NGTCP2_ERR_CLOSING) {
      const ngtcp2_connection_close_error *e;
      ngtcp2_connection_close_error pe;
      ngtcp2_conn_get_connection_close_error(c->q, &pe);
      e = &pe;
      if (c->close_reason[0] == '\0')
        snprintf(c->close_reason, sizeof(c->close_reason),
                 "the peer closed the connection (%s 0x%llx)",
                 e->type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION
                     ? "application"
                     : "transport",
                 (unsigned long long)e->error_code);
      c->closing = 1;
      return -1;
    }
    if (c->pin_failed)
      snprintf(c->close_reason, sizeof(c->close_reason),
               "the proxy's certificate does not match the pin");
    fatal(c, rv, "ngtcp2_conn_read_pkt");
    write_close(c);
    return -1;
  }
  if (!c->ready && ngtcp2_conn_get_handshake_completed(c->q) &&
      h3_setup(c) != 0) {
    write_close(c);
    return -1;
  }
  return ix_conn_write(c);
}

uint64_t ix_conn_expiry(ix_conn_t *c) {
  return ngtcp2_conn_get_expiry(c->q);
}

int ix_conn_handle_expiry(ix_conn_t *c) {
  int rv;
  if (c->closing)
    return -1;
  rv = ngtcp2_conn_handle_expiry(c->q, ix_now());
  if (rv != 0) {
    if (rv == NGTCP2_ERR_IDLE_CLOSE)
      snprintf(c->close_reason, sizeof(c->close_reason),
               "idle timeout (no answer from the peer)");
    else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT)
      snprintf(c->close_reason, sizeof(c->close_reason),
               "QUIC handshake timed out");
    fatal(c, rv, "ngtcp2_conn_handle_expiry");
    c->closing = 1;
    return -1;
  }
  return ix_conn_write(c);
}

/* ---- requests ----------------------------------------------------------------- */

const char *ix_req_header(const ix_req_t *r, const char *name) {
  int i;
  for (i = 0; i < r->nhdr; i++)
    if (strcmp(r->hdr_name[i], name) == 0)
      return r->hdr_value[i];
  return NULL;
}

static nghttp3_nv nv(const char *n, const char *v, uint8_t flags) {
  nghttp3_nv x;
  x.name = (uint8_t *)(uintptr_t)n;
  x.value = (uint8_t *)(uintptr_t)v;
  x.namelen = strlen(n);
  x.valuelen = strlen(v);
  x.flags = flags;
  return x;
}

ix_req_t *ix_connect_udp(ix_conn_t *c, const char *authority,
                         const char *path, const char *bearer) {
  static const nghttp3_data_reader dr = {read_data};
  nghttp3_nv h[8];
  size_t n = 0;
  char auth[4096];
  int64_t sid;
  ix_req_t *r;
  int rv;
  if ((rv = ngtcp2_conn_open_bidi_stream(c->q, &sid, NULL)) != 0) {
    ix_log("opening the request stream: %s", ngtcp2_strerror(rv));
    return NULL;
  }
  if (!(r = new_req(c, sid)))
    return NULL;
  h[n++] = nv(":method", "CONNECT", 0);
  h[n++] = nv(":protocol", "connect-udp", 0);
  h[n++] = nv(":scheme", "https", 0);
  h[n++] = nv(":authority", authority, 0);
  h[n++] = nv(":path", path, 0);
  if (!c->o.omit_capsule_protocol)
    h[n++] = nv("capsule-protocol", "?1", 0);
  h[n++] = nv("user-agent", "ix-masque-client", 0);
  if (bearer) {
    snprintf(auth, sizeof(auth), "Bearer %s", bearer);
    h[n++] = nv("authorization", auth, NGHTTP3_NV_FLAG_NEVER_INDEX);
  }
  r->data_reader = 1;
  if ((rv = nghttp3_conn_submit_request(c->h3, sid, h, n, &dr, r)) != 0) {
    ix_log("nghttp3_conn_submit_request: %s", nghttp3_strerror(rv));
    return NULL;
  }
  return r;
}

int ix_respond(ix_conn_t *c, ix_req_t *r, int status,
               const char *proxy_status, const char *extra_name,
               const char *extra_value) {
  static const nghttp3_data_reader dr = {read_data};
  nghttp3_nv h[6];
  size_t n = 0;
  char st[8];
  int rv, ok = status >= 200 && status < 300;
  snprintf(st, sizeof(st), "%d", status);
  h[n++] = nv(":status", st, 0);
  if (ok)
    h[n++] = nv("capsule-protocol", "?1", 0);
  if (proxy_status)
    h[n++] = nv("proxy-status", proxy_status, 0);
  if (extra_name && extra_value)
    h[n++] = nv(extra_name, extra_value, 0);
  r->data_reader = ok;
  rv = nghttp3_conn_submit_response(c->h3, r->stream_id, h, n,
                                    ok ? &dr : NULL);
  if (rv != 0) {
    ix_log("nghttp3_conn_submit_response: %s", nghttp3_strerror(rv));
    return -1;
  }
  if (!ok)
    /* No tunnel: we do not read the rest of the request either. */
    ngtcp2_conn_shutdown_stream_read(c->q, r->stream_id, IX_H3_NO_ERROR);
  return 0;
}

int ix_datagrams_usable(ix_conn_t *c) {
  return c->o.h3_datagram && c->o.datagram_tp && c->peer.h3_datagram == 1 &&
         ngtcp2_conn_get_remote_transport_params(c->q)
                 ->max_datagram_frame_size > 0;
}

int ix_send_payload(ix_conn_t *c, ix_req_t *r, const uint8_t *p, size_t len,
                    int force_capsule) {
  uint8_t *b;
  size_t n;
  if (r->closed || r->out_eof || c->closing)
    return -1;
  if (!force_capsule && ix_datagrams_usable(c)) {
    uint64_t maxf = ngtcp2_conn_get_remote_transport_params(c->q)
                        ->max_datagram_frame_size;
    size_t path_max = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->q);
    size_t flen = ix_varint_len((uint64_t)r->stream_id / 4) + 1 + len;
    /* Frame type + length (3) and the short header, packet number and
     * AEAD tag (at most 1 + 20 + 4 + 16). */
    if (flen + 3 <= maxf && flen + 3 + 41 <= path_max) {
      if (c->dq_n == 256)
        return -1; /* congested: drop, as UDP would */
      if (!(b = malloc(flen)))
        return -1;
      n = ix_dgram_encode(b, r->stream_id, 0, p, len);
      c->dq[(c->dq_head + c->dq_n) % 256] = b;
      c->dqlen[(c->dq_head + c->dq_n) % 256] = n;
      c->dq_n++;
      r->tx_frames++;
      return 0;
    }
  }
  if (!r->data_reader)
    return -1;
  if (r->out_end + len + 24 > IX_REQ_OUTBUF) {
    if (r->out_acked == r->out_end && r->out_read == r->out_end)
      r->out_acked = r->out_read = r->out_end = 0;
    else
      return -1; /* too much unacknowledged: drop this datagram */
  }
  r->out_end += ix_capsule_datagram(r->out + r->out_end, 0, p, len);
  r->tx_capsules++;
  nghttp3_conn_resume_stream(c->h3, r->stream_id);
  return 0;
}

void ix_req_finish(ix_conn_t *c, ix_req_t *r) {
  if (r->out_eof || r->closed)
    return;
  r->out_eof = 1;
  if (r->data_reader)
    nghttp3_conn_resume_stream(c->h3, r->stream_id);
}
