/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/peer/identity.c: generating, saving and loading
 * identities, the key file checks, the self-signed certificate, and peer
 * ID extraction from a DER certificate and from a real TLS 1.3 handshake
 * run in memory between two identities.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "internal.h"
#include "peer/identity.h"
#include "util.h"

/* Per-test state: a private temporary directory. */
typedef struct {
  char dir[256]; /* from qpt_tmpdir */
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  qpt_tmpdir(f->dir, sizeof(f->dir));
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  qpt_rmtree(f->dir);
  free(f);
  return 0;
}

static void join(char *out, size_t outlen, const fixture_t *f,
                 const char *name) {
  int n = snprintf(out, outlen, "%s/%s", f->dir, name);
  assert_true(n > 0 && (size_t)n < outlen);
}

static void write_file(const char *path, const void *data, size_t len,
                       mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  assert_int_equal(fchmod(fd, mode), 0);
  assert_int_equal(close(fd), 0);
}

/* write_other_key writes a PKCS#8 PEM key of algorithm |pk| (mode 0600),
 * optionally encrypted with |password|. */
static void write_other_key(const char *path, gnutls_pk_algorithm_t pk,
                            unsigned int bits, const char *password) {
  gnutls_x509_privkey_t key;
  gnutls_datum_t pem;
  assert_int_equal(gnutls_x509_privkey_init(&key), 0);
  assert_int_equal(gnutls_x509_privkey_generate(key, pk, bits, 0), 0);
  assert_int_equal(gnutls_x509_privkey_export2_pkcs8(
                       key, GNUTLS_X509_FMT_PEM, password,
                       password ? GNUTLS_PKCS_PBES2_AES_256 : GNUTLS_PKCS_PLAIN,
                       &pem),
                   0);
  write_file(path, pem.data, pem.size, 0600);
  gnutls_free(pem.data);
  gnutls_x509_privkey_deinit(key);
}

/* count_entries returns the number of names in |dir| besides . and .. */
static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  assert_non_null(d);
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

static void test_generate(void **state) {
  qpeer_identity_t *a, *b;
  const qpeer_peer_id_t *pa, *pb;
  (void)state;
  assert_int_equal(qpeer_identity_generate(&a), 0);
  assert_int_equal(qpeer_identity_generate(&b), 0);
  pa = qpeer_identity_get_peer_id(a);
  pb = qpeer_identity_get_peer_id(b);
  assert_non_null(pa);
  assert_non_null(pb);
  assert_false(qpeer_peer_id_equal(pa, pb));
  assert_non_null(qpeer__identity_creds(a));
  qpeer_identity_unref(a);
  qpeer_identity_unref(b);
}

static void test_save_load(void **state) {
  fixture_t *f = *state;
  char path[512];
  char head[64];
  qpeer_identity_t *a, *b;
  struct stat st;
  FILE *fp;
  join(path, sizeof(path), f, "id.key");
  assert_int_equal(qpeer_identity_generate(&a), 0);
  assert_int_equal(qpeer_identity_save(a, path), 0);

  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_true(S_ISREG(st.st_mode));
  /* Only the key file is left: the temporary was renamed. */
  assert_int_equal(count_entries(f->dir), 1);

  fp = fopen(path, "r");
  assert_non_null(fp);
  assert_non_null(fgets(head, sizeof(head), fp));
  fclose(fp);
  assert_string_equal(head, "-----BEGIN PRIVATE KEY-----\n");

  assert_int_equal(qpeer_identity_load(&b, path), 0);
  assert_true(qpeer_peer_id_equal(qpeer_identity_get_peer_id(a),
                                  qpeer_identity_get_peer_id(b)));
  qpeer_identity_unref(a);
  qpeer_identity_unref(b);
}

static void test_save_replaces(void **state) {
  fixture_t *f = *state;
  char path[512];
  qpeer_identity_t *a, *b, *c;
  struct stat st;
  join(path, sizeof(path), f, "id.key");
  /* An existing, too-open file is replaced by a 0600 one. */
  write_file(path, "old", 3, 0644);
  assert_int_equal(qpeer_identity_generate(&a), 0);
  assert_int_equal(qpeer_identity_generate(&b), 0);
  assert_int_equal(qpeer_identity_save(a, path), 0);
  assert_int_equal(qpeer_identity_save(b, path), 0);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(count_entries(f->dir), 1);
  assert_int_equal(qpeer_identity_load(&c, path), 0);
  assert_true(qpeer_peer_id_equal(qpeer_identity_get_peer_id(b),
                                  qpeer_identity_get_peer_id(c)));
  qpeer_identity_unref(a);
  qpeer_identity_unref(b);
  qpeer_identity_unref(c);
}

static void test_save_errors(void **state) {
  fixture_t *f = *state;
  char path[512];
  qpeer_identity_t *a;
  join(path, sizeof(path), f, "missing-dir/id.key");
  assert_int_equal(qpeer_identity_generate(&a), 0);
  assert_int_equal(qpeer_identity_save(a, path), UV_ENOENT);
  assert_int_equal(qpeer_identity_save(a, ""), UV_EINVAL);
  assert_int_equal(qpeer_identity_save(a, NULL), UV_EINVAL);
  assert_int_equal(qpeer_identity_save(NULL, path), UV_EINVAL);
  /* The target is a directory: rename fails, the temporary is removed. */
  join(path, sizeof(path), f, "sub");
  assert_int_equal(mkdir(path, 0700), 0);
  assert_true(qpeer_identity_save(a, path) < 0);
  assert_int_equal(count_entries(f->dir), 1);
  assert_int_equal(rmdir(path), 0);
  qpeer_identity_unref(a);
}

static void test_load_perm(void **state) {
  fixture_t *f = *state;
  char path[512];
  qpeer_identity_t *a, *b = NULL;
  static const mode_t bad[] = {0644, 0640, 0604, 0601, 0610, 0660, 0666};
  size_t i;
  join(path, sizeof(path), f, "id.key");
  assert_int_equal(qpeer_identity_generate(&a), 0);
  assert_int_equal(qpeer_identity_save(a, path), 0);
  for (i = 0; i < QPEER__ARRAY_SIZE(bad); i++) {
    assert_int_equal(chmod(path, bad[i]), 0);
    assert_int_equal(qpeer_identity_load(&b, path), QPEER_EKEYPERM);
    assert_null(b);
  }
  /* Read-only for the owner is fine. */
  assert_int_equal(chmod(path, 0400), 0);
  assert_int_equal(qpeer_identity_load(&b, path), 0);
  assert_true(qpeer_peer_id_equal(qpeer_identity_get_peer_id(a),
                                  qpeer_identity_get_peer_id(b)));
  qpeer_identity_unref(a);
  qpeer_identity_unref(b);
}

static void test_load_missing(void **state) {
  fixture_t *f = *state;
  char path[512];
  qpeer_identity_t *b = NULL;
  join(path, sizeof(path), f, "nope.key");
  assert_int_equal(qpeer_identity_load(&b, path), UV_ENOENT);
  assert_int_equal(qpeer_identity_load(&b, ""), UV_ENOENT);
  assert_int_equal(qpeer_identity_load(&b, NULL), UV_EINVAL);
  assert_int_equal(qpeer_identity_load(NULL, path), UV_EINVAL);
  assert_int_equal(qpeer_identity_load(&b, f->dir), UV_EISDIR);
  assert_null(b);
}

static void test_load_garbage(void **state) {
  fixture_t *f = *state;
  char path[512];
  qpeer_identity_t *b = NULL;
  static const char pem_bad[] = "-----BEGIN PRIVATE KEY-----\n"
                                "bm90IGEga2V5\n"
                                "-----END PRIVATE KEY-----\n";
  uint8_t *big;
  join(path, sizeof(path), f, "bad.key");

  write_file(path, "hello, world\n", 13, 0600);
  assert_int_equal(qpeer_identity_load(&b, path), QPEER_EKEYFILE);
  write_file(path, "", 0, 0600);
  assert_int_equal(qpeer_identity_load(&b, path), QPEER_EKEYFILE);
  write_file(path, pem_bad, sizeof(pem_bad) - 1, 0600);
  assert_int_equal(qpeer_identity_load(&b, path), QPEER_EKEYFILE);

  /* More than 64 KiB is refused before parsing. */
  big = malloc(64 * 1024 + 1);
  assert_non_null(big);
  memset(big, 'A', 64 * 1024 + 1);
  write_file(path, big, 64 * 1024 + 1, 0600);
  assert_int_equal(qpeer_identity_load(&b, path), QPEER_EKEYFILE);
  free(big);

  /* A FIFO is not a key file, and opening it must not block. */
  join(path, sizeof(path), f, "fifo");
  assert_int_equal(mkfifo(path, 0600), 0);
  assert_int_equal(qpeer_identity_load(&b, path), QPEER_EKEYFILE);
  assert_null(b);
}

static void test_load_other_algorithms(void **state) {
  fixture_t *f = *state;
  char path[512];
  qpeer_identity_t *b = NULL;
  join(path, sizeof(path), f, "other.key");

  write_other_key(path, GNUTLS_PK_RSA, 2048, NULL);
  assert_int_equal(qpeer_identity_load(&b, path), QPEER_EKEYFILE);
  write_other_key(path, GNUTLS_PK_ECDSA,
                  GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), NULL);
  assert_int_equal(qpeer_identity_load(&b, path), QPEER_EKEYFILE);
  write_other_key(path, GNUTLS_PK_EDDSA_ED448,
                  GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED448), NULL);
  assert_int_equal(qpeer_identity_load(&b, path), QPEER_EKEYFILE);
  /* An Ed25519 key, but encrypted: not supported. */
  write_other_key(path, GNUTLS_PK_EDDSA_ED25519,
                  GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519), "secret");
  assert_int_equal(qpeer_identity_load(&b, path), QPEER_EKEYFILE);
  assert_null(b);
  /* The same key unencrypted loads. */
  write_other_key(path, GNUTLS_PK_EDDSA_ED25519,
                  GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519), NULL);
  assert_int_equal(qpeer_identity_load(&b, path), 0);
  qpeer_identity_unref(b);
}

/* get_cert_der copies the DER certificate held by |id|'s credentials. */
static void get_cert_der(const qpeer_identity_t *id, gnutls_datum_t *der) {
  gnutls_datum_t raw;
  assert_int_equal(
      gnutls_certificate_get_crt_raw(qpeer__identity_creds(id), 0, 0, &raw), 0);
  /* The datum is borrowed from the credentials; copy it. */
  der->data = gnutls_malloc(raw.size);
  assert_non_null(der->data);
  memcpy(der->data, raw.data, raw.size);
  der->size = raw.size;
}

static void test_cert(void **state) {
  qpeer_identity_t *a;
  gnutls_datum_t der;
  gnutls_x509_crt_t crt;
  qpeer_peer_id_t pid;
  char text[QPEER_PEER_ID_STRLEN], cn[128];
  uint8_t serial[40];
  size_t len;
  unsigned int status = 0, ku = 0, critical = 0;
  time_t now = time(NULL);
  (void)state;

  assert_int_equal(qpeer_identity_generate(&a), 0);
  get_cert_der(a, &der);
  assert_int_equal(qpeer__peer_id_from_der(&pid, der.data, der.size), 0);
  assert_true(qpeer_peer_id_equal(&pid, qpeer_identity_get_peer_id(a)));

  assert_int_equal(gnutls_x509_crt_init(&crt), 0);
  assert_int_equal(gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER), 0);
  assert_int_equal(gnutls_x509_crt_get_version(crt), 3);
  len = sizeof(serial);
  assert_int_equal(gnutls_x509_crt_get_serial(crt, serial, &len), 0);
  assert_int_equal(len, 16);
  assert_int_equal(serial[0] & 0xc0, 0x40);
  len = sizeof(cn);
  assert_int_equal(gnutls_x509_crt_get_dn_by_oid(
                       crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &len),
                   0);
  assert_int_equal(qpeer_peer_id_format(&pid, text, sizeof(text)),
                   QPEER_PEER_ID_TEXT_LEN);
  assert_string_equal(cn, text);
  assert_true(gnutls_x509_crt_get_activation_time(crt) <= now - 86000);
  assert_true(gnutls_x509_crt_get_expiration_time(crt) >
              now + (time_t)99 * 365 * 86400);
  assert_int_equal(gnutls_x509_crt_get_pk_algorithm(crt, NULL),
                   GNUTLS_PK_EDDSA_ED25519);
  assert_true(gnutls_x509_crt_get_key_usage(crt, &ku, &critical) >= 0);
  assert_int_equal(ku, GNUTLS_KEY_DIGITAL_SIGNATURE);
  assert_int_equal(gnutls_x509_crt_get_ca_status(crt, &critical), 0);
  /* Self-signed, and the signature verifies. */
  assert_true(gnutls_x509_crt_check_issuer(crt, crt));
  assert_int_equal(gnutls_x509_crt_verify(crt, &crt, 1, 0, &status), 0);
  assert_int_equal(status, 0);

  gnutls_x509_crt_deinit(crt);
  gnutls_free(der.data);
  qpeer_identity_unref(a);
}

/* A loaded identity gets its own fresh certificate with the same key. */
static void test_cert_after_load(void **state) {
  fixture_t *f = *state;
  char path[512];
  qpeer_identity_t *a, *b;
  gnutls_datum_t der;
  qpeer_peer_id_t pid;
  join(path, sizeof(path), f, "id.key");
  assert_int_equal(qpeer_identity_generate(&a), 0);
  assert_int_equal(qpeer_identity_save(a, path), 0);
  assert_int_equal(qpeer_identity_load(&b, path), 0);
  get_cert_der(b, &der);
  assert_int_equal(qpeer__peer_id_from_der(&pid, der.data, der.size), 0);
  assert_true(qpeer_peer_id_equal(&pid, qpeer_identity_get_peer_id(a)));
  gnutls_free(der.data);
  qpeer_identity_unref(a);
  qpeer_identity_unref(b);
}

static void test_from_der_errors(void **state) {
  static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
  qpeer_peer_id_t pid, orig;
  qpeer_identity_t *a;
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t crt;
  gnutls_datum_t der;
  (void)state;

  memset(&pid, 0x77, sizeof(pid));
  orig = pid;
  assert_int_equal(qpeer__peer_id_from_der(&pid, junk, sizeof(junk)),
                   QPEER_ECERT);
  assert_int_equal(qpeer__peer_id_from_der(&pid, junk, 0), QPEER_ECERT);
  assert_int_equal(qpeer__peer_id_from_der(NULL, junk, 1), UV_EINVAL);
  assert_int_equal(qpeer__peer_id_from_der(&pid, NULL, 1), UV_EINVAL);

  /* A truncated real certificate. */
  assert_int_equal(qpeer_identity_generate(&a), 0);
  get_cert_der(a, &der);
  assert_int_equal(qpeer__peer_id_from_der(&pid, der.data, der.size - 1),
                   QPEER_ECERT);
  gnutls_free(der.data);
  qpeer_identity_unref(a);

  /* A well-formed ECDSA P-256 certificate. */
  assert_int_equal(gnutls_x509_privkey_init(&key), 0);
  assert_int_equal(gnutls_x509_privkey_generate(
                       key, GNUTLS_PK_ECDSA,
                       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                   0);
  assert_int_equal(gnutls_x509_crt_init(&crt), 0);
  assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
  assert_int_equal(gnutls_x509_crt_set_serial(crt, "\x01", 1), 0);
  assert_int_equal(gnutls_x509_crt_set_activation_time(crt, time(NULL)), 0);
  assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, time(NULL) + 3600),
                   0);
  assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
  assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0),
                   0);
  assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der), 0);
  assert_int_equal(qpeer__peer_id_from_der(&pid, der.data, der.size),
                   QPEER_ECERT);
  gnutls_free(der.data);
  gnutls_x509_crt_deinit(crt);
  gnutls_x509_privkey_deinit(key);

  assert_memory_equal(&pid, &orig, sizeof(pid));
}

/* An in-memory transport: one byte queue per direction. */
typedef struct {
  uint8_t data[65536]; /* queued bytes */
  size_t len;          /* bytes queued */
} pipe_t;

/* One side of the in-memory connection. */
typedef struct {
  gnutls_session_t s; /* the TLS session */
  pipe_t *in;         /* bytes from the other side */
  pipe_t *out;        /* bytes to the other side */
} end_t;

static ssize_t mem_push(gnutls_transport_ptr_t p, const void *data,
                        size_t len) {
  end_t *e = p;
  assert_true(e->out->len + len <= sizeof(e->out->data));
  memcpy(e->out->data + e->out->len, data, len);
  e->out->len += len;
  return (ssize_t)len;
}

static ssize_t mem_pull(gnutls_transport_ptr_t p, void *data, size_t len) {
  end_t *e = p;
  size_t n = e->in->len < len ? e->in->len : len;
  if (n == 0) {
    gnutls_transport_set_errno(e->s, EAGAIN);
    return -1;
  }
  memcpy(data, e->in->data, n);
  memmove(e->in->data, e->in->data + n, e->in->len - n);
  e->in->len -= n;
  return (ssize_t)n;
}

static void end_init(end_t *e, unsigned int flags, qpeer_identity_t *id,
                     pipe_t *in, pipe_t *out) {
  e->in = in;
  e->out = out;
  assert_int_equal(gnutls_init(&e->s, flags | GNUTLS_NONBLOCK), 0);
  assert_int_equal(
      gnutls_priority_set_direct(e->s, "NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL),
      0);
  assert_int_equal(gnutls_credentials_set(e->s, GNUTLS_CRD_CERTIFICATE,
                                          qpeer__identity_creds(id)),
                   0);
  gnutls_transport_set_ptr(e->s, e);
  gnutls_transport_set_push_function(e->s, mem_push);
  gnutls_transport_set_pull_function(e->s, mem_pull);
}

/* Both ends present their identity's certificate in a TLS 1.3 handshake;
 * each then reads the other's peer ID from its session. */
static void test_from_session(void **state) {
  static pipe_t c2s, s2c;
  qpeer_identity_t *ci, *si;
  end_t c, s;
  qpeer_peer_id_t pid;
  int rc = GNUTLS_E_AGAIN, rs = GNUTLS_E_AGAIN, i;
  (void)state;

  c2s.len = s2c.len = 0;
  assert_int_equal(qpeer_identity_generate(&ci), 0);
  assert_int_equal(qpeer_identity_generate(&si), 0);
  end_init(&c, GNUTLS_CLIENT, ci, &s2c, &c2s);
  end_init(&s, GNUTLS_SERVER, si, &c2s, &s2c);
  gnutls_certificate_server_set_request(s.s, GNUTLS_CERT_REQUIRE);

  /* Before any handshake there is no peer certificate. */
  assert_int_equal(qpeer__peer_id_from_session(&pid, c.s), QPEER_ECERT);
  assert_int_equal(qpeer__peer_id_from_session(NULL, c.s), UV_EINVAL);
  assert_int_equal(qpeer__peer_id_from_session(&pid, NULL), UV_EINVAL);

  for (i = 0; i < 100 && (rc != 0 || rs != 0); i++) {
    if (rc != 0)
      rc = gnutls_handshake(c.s);
    if (rs != 0)
      rs = gnutls_handshake(s.s);
    assert_true(rc == 0 || rc == GNUTLS_E_AGAIN);
    assert_true(rs == 0 || rs == GNUTLS_E_AGAIN);
  }
  assert_int_equal(rc, 0);
  assert_int_equal(rs, 0);
  assert_int_equal(gnutls_protocol_get_version(c.s), GNUTLS_TLS1_3);

  assert_int_equal(qpeer__peer_id_from_session(&pid, c.s), 0);
  assert_true(qpeer_peer_id_equal(&pid, qpeer_identity_get_peer_id(si)));
  assert_int_equal(qpeer__peer_id_from_session(&pid, s.s), 0);
  assert_true(qpeer_peer_id_equal(&pid, qpeer_identity_get_peer_id(ci)));

  gnutls_deinit(c.s);
  gnutls_deinit(s.s);
  qpeer_identity_unref(ci);
  qpeer_identity_unref(si);
}

static void test_refcount(void **state) {
  qpeer_identity_t *a;
  const qpeer_peer_id_t *pid;
  qpeer_peer_id_t copy;
  (void)state;
  assert_int_equal(qpeer_identity_generate(&a), 0);
  pid = qpeer_identity_get_peer_id(a);
  copy = *pid;
  assert_ptr_equal(qpeer_identity_ref(a), a);
  assert_ptr_equal(qpeer_identity_ref(a), a);
  qpeer_identity_unref(a);
  qpeer_identity_unref(a);
  /* Still alive: one reference left (ASan would flag a use after free). */
  assert_true(qpeer_peer_id_equal(qpeer_identity_get_peer_id(a), &copy));
  qpeer_identity_unref(a);

  assert_null(qpeer_identity_ref(NULL));
  qpeer_identity_unref(NULL);
  assert_null(qpeer_identity_get_peer_id(NULL));
  assert_null(qpeer__identity_creds(NULL));
  assert_int_equal(qpeer_identity_generate(NULL), UV_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_generate),
      cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
      cmocka_unit_test_setup_teardown(test_save_replaces, setup, teardown),
      cmocka_unit_test_setup_teardown(test_save_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_perm, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_missing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_garbage, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_other_algorithms, setup,
                                      teardown),
      cmocka_unit_test(test_cert),
      cmocka_unit_test_setup_teardown(test_cert_after_load, setup, teardown),
      cmocka_unit_test(test_from_der_errors),
      cmocka_unit_test(test_from_session),
      cmocka_unit_test(test_refcount),
  };
  return cmocka_run_group_tests_name("identity", tests, NULL, NULL);
}
