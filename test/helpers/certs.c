/* SPDX-License-Identifier: MIT */
/* Run-time test certificates (see certs.h). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "certs.h"
#include "util.h"

/* GnuTLS calls return 0 (GNUTLS_E_SUCCESS) or a negative code. */
#define CHK(expr)                                                             \
  do {                                                                        \
    int chk_r_ = (expr);                                                      \
    if (chk_r_ < 0)                                                           \
      fail_msg("%s: %s", #expr, gnutls_strerror(chk_r_));                     \
  } while (0)

static void write_file(const char *path, const gnutls_datum_t *d1,
                       const gnutls_datum_t *d2, int mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, d1->data, d1->size), (ssize_t)d1->size);
  if (d2)
    assert_int_equal(write(fd, d2->data, d2->size), (ssize_t)d2->size);
  assert_int_equal(close(fd), 0);
}

static gnutls_x509_privkey_t new_key(void) {
  gnutls_x509_privkey_t key;
  CHK(gnutls_x509_privkey_init(&key));
  CHK(gnutls_x509_privkey_generate(
      key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
      0));
  return key;
}

/* Fields shared by every certificate: version, serial, validity, subject
 * and public key. */
static gnutls_x509_crt_t new_crt(gnutls_x509_privkey_t key, const char *cn) {
  static unsigned int counter;
  gnutls_x509_crt_t crt;
  uint8_t serial[9];
  uint8_t kid[64];
  size_t kidlen = sizeof(kid);
  time_t now = time(NULL);
  uint64_t v = ((uint64_t)now << 16) | (++counter & 0xffff);
  int i;
  serial[0] = 0x01; /* positive, nonzero leading byte */
  for (i = 0; i < 8; i++)
    serial[1 + i] = (uint8_t)(v >> (56 - 8 * i));
  CHK(gnutls_x509_crt_init(&crt));
  CHK(gnutls_x509_crt_set_version(crt, 3));
  CHK(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)));
  CHK(gnutls_x509_crt_set_activation_time(crt, now - 3600));
  CHK(gnutls_x509_crt_set_expiration_time(crt, now + 86400));
  CHK(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                    (unsigned)strlen(cn)));
  CHK(gnutls_x509_crt_set_key(crt, key));
  CHK(gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA1, kid,
                                     &kidlen));
  CHK(gnutls_x509_crt_set_subject_key_id(crt, kid, kidlen));
  return crt;
}

static gnutls_x509_crt_t new_ca(gnutls_x509_privkey_t key, const char *cn) {
  gnutls_x509_crt_t crt = new_crt(key, cn);
  CHK(gnutls_x509_crt_set_basic_constraints(crt, 1, -1));
  CHK(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN |
                                             GNUTLS_KEY_CRL_SIGN |
                                             GNUTLS_KEY_DIGITAL_SIGNATURE));
  CHK(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0));
  return crt;
}

static void export_crt(gnutls_x509_crt_t crt, gnutls_datum_t *out) {
  CHK(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, out));
}

void qpt_certs_make(qpt_certs_t *c) {
  gnutls_x509_privkey_t ca_key, other_key, srv_key;
  gnutls_x509_crt_t ca, other, srv;
  gnutls_datum_t ca_pem, other_pem, srv_pem, key_pem;
  uint8_t ca_kid[64];
  size_t ca_kidlen = sizeof(ca_kid);
  unsigned char ip4[4] = {127, 0, 0, 1};

  memset(c, 0, sizeof(*c));
  qpt_tmpdir(c->dir, sizeof(c->dir));
  snprintf(c->ca_file, sizeof(c->ca_file), "%s/ca.pem", c->dir);
  snprintf(c->cert_file, sizeof(c->cert_file), "%s/server.pem", c->dir);
  snprintf(c->key_file, sizeof(c->key_file), "%s/server.key", c->dir);
  snprintf(c->chain_file, sizeof(c->chain_file), "%s/chain.pem", c->dir);
  snprintf(c->other_ca_file, sizeof(c->other_ca_file), "%s/other-ca.pem",
           c->dir);

  /* The private CA and an unrelated one. */
  ca_key = new_key();
  ca = new_ca(ca_key, "qpeer test CA");
  other_key = new_key();
  other = new_ca(other_key, "qpeer unrelated test CA");

  /* The server certificate, issued by the private CA. */
  srv_key = new_key();
  srv = new_crt(srv_key, QPT_CERTS_DNS_NAME);
  CHK(gnutls_x509_crt_set_basic_constraints(srv, 0, -1));
  CHK(gnutls_x509_crt_set_key_usage(srv, GNUTLS_KEY_DIGITAL_SIGNATURE));
  CHK(gnutls_x509_crt_set_key_purpose_oid(srv, GNUTLS_KP_TLS_WWW_SERVER, 0));
  CHK(gnutls_x509_crt_set_subject_alt_name(
      srv, GNUTLS_SAN_DNSNAME, QPT_CERTS_DNS_NAME,
      (unsigned)strlen(QPT_CERTS_DNS_NAME), GNUTLS_FSAN_APPEND));
  CHK(gnutls_x509_crt_set_subject_alt_name(srv, GNUTLS_SAN_IPADDRESS, ip4,
                                           sizeof(ip4), GNUTLS_FSAN_APPEND));
  CHK(gnutls_x509_crt_get_subject_key_id(ca, ca_kid, &ca_kidlen, NULL));
  CHK(gnutls_x509_crt_set_authority_key_id(srv, ca_kid, ca_kidlen));
  CHK(gnutls_x509_crt_sign2(srv, ca, ca_key, GNUTLS_DIG_SHA256, 0));

  export_crt(ca, &ca_pem);
  export_crt(other, &other_pem);
  export_crt(srv, &srv_pem);
  CHK(gnutls_x509_privkey_export2_pkcs8(srv_key, GNUTLS_X509_FMT_PEM, NULL,
                                        GNUTLS_PKCS_PLAIN, &key_pem));
  write_file(c->ca_file, &ca_pem, NULL, 0644);
  write_file(c->other_ca_file, &other_pem, NULL, 0644);
  write_file(c->cert_file, &srv_pem, NULL, 0644);
  write_file(c->chain_file, &srv_pem, &ca_pem, 0644);
  write_file(c->key_file, &key_pem, NULL, 0600);

  gnutls_free(ca_pem.data);
  gnutls_free(other_pem.data);
  gnutls_free(srv_pem.data);
  gnutls_memset(key_pem.data, 0, key_pem.size);
  gnutls_free(key_pem.data);
  gnutls_x509_crt_deinit(ca);
  gnutls_x509_crt_deinit(other);
  gnutls_x509_crt_deinit(srv);
  gnutls_x509_privkey_deinit(ca_key);
  gnutls_x509_privkey_deinit(other_key);
  gnutls_x509_privkey_deinit(srv_key);
}

void qpt_certs_remove(qpt_certs_t *c) {
  if (c->dir[0])
    qpt_rmtree(c->dir);
  memset(c, 0, sizeof(*c));
}
