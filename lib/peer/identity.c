/* SPDX-License-Identifier: MIT */
/*
 * Identities: an Ed25519 private key, the self-signed X.509 certificate
 * made from it, and the GnuTLS credentials holding both. This file has the
 * life cycle (generate, load, save, ref/unref), the certificate builder,
 * and the extraction of a peer ID from a peer's certificate. Loading and
 * saving are blocking file I/O, meant for start-up.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "internal.h"
#include "peer/identity.h"

/* Largest key file we read; a PEM Ed25519 key is about 120 bytes. */
#define KEY_FILE_MAX (64 * 1024)

/* Suffix appended to the target path for the temporary file of a save. */
#define TMP_SUFFIX ".tmp.XXXXXX"

/* Certificate validity: from one day ago (clock skew) to 100 years on. */
#define CERT_BACKDATE_SECS ((int64_t)86400)
#define CERT_LIFETIME_SECS ((int64_t)36525 * 86400)

/* Bytes of random certificate serial number. */
#define CERT_SERIAL_LEN 16

struct qpeer_identity_s {
  /* References held; atomic because endpoints on different threads (each
   * with its own loop) may share one identity. */
  atomic_uint refcount;
  qpeer_peer_id_t peer_id;                /* the Ed25519 public key */
  gnutls_x509_privkey_t key;              /* private key, kept for save */
  gnutls_certificate_credentials_t creds; /* self-signed cert plus key */
};

/* err_from_gnutls_key maps a GnuTLS error met while decoding or checking a
 * key file: memory errors stay UV_ENOMEM, anything else is a bad file. */
static int err_from_gnutls_key(int gerr) {
  if (gerr == GNUTLS_E_MEMORY_ERROR)
    return UV_ENOMEM;
  QPEER__LOG_DEBUG("key file rejected by gnutls: %s", gnutls_strerror(gerr));
  return QPEER_EKEYFILE;
}

/* key_peer_id sets |*ppid| to the public half of the Ed25519 |key|.
 * Returns 0, UV_ENOMEM or QPEER_EKEYFILE (not Ed25519). */
static int key_peer_id(qpeer_peer_id_t *ppid, gnutls_x509_privkey_t key) {
  gnutls_ecc_curve_t curve;
  gnutls_datum_t x = {NULL, 0};
  int r;

  if (gnutls_x509_privkey_get_pk_algorithm2(key, NULL) !=
      GNUTLS_PK_EDDSA_ED25519)
    return QPEER_EKEYFILE;
  /* For EdDSA the x coordinate is the raw encoded public key. */
  r = gnutls_x509_privkey_export_ecc_raw(key, &curve, &x, NULL, NULL);
  if (r < 0)
    return err_from_gnutls_key(r);
  if (curve != GNUTLS_ECC_CURVE_ED25519 || x.size != QPEER_PEER_ID_LEN) {
    gnutls_free(x.data);
    return QPEER_EKEYFILE;
  }
  memcpy(ppid->key, x.data, QPEER_PEER_ID_LEN);
  gnutls_free(x.data);
  return 0;
}

/* cert_fill sets every field of the self-signed certificate |crt| for
 * |key|, whose peer ID text is |cn|, and signs it. Returns 0, UV_ENOMEM,
 * QPEER_ETLS, or a libuv error from reading the clock. */
static int cert_fill(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key,
                     const char *cn) {
  uint8_t serial[CERT_SERIAL_LEN];
  uv_timeval64_t now;
  int r;

  r = qpeer__rand(serial, sizeof(serial));
  if (r != 0)
    return r;
  /* A positive DER INTEGER of exactly 16 bytes (RFC 5280 4.1.2.2). */
  serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);
  r = uv_gettimeofday(&now);
  if (r != 0)
    return r;

  r = gnutls_x509_crt_set_version(crt, 3);
  if (r < 0)
    goto fail;
  r = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
  if (r < 0)
    goto fail;
  r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                    (unsigned int)strlen(cn));
  if (r < 0)
    goto fail;
  r = gnutls_x509_crt_set_activation_time(
      crt, (time_t)(now.tv_sec - CERT_BACKDATE_SECS));
  if (r < 0)
    goto fail;
  r = gnutls_x509_crt_set_expiration_time(
      crt, (time_t)(now.tv_sec + CERT_LIFETIME_SECS));
  if (r < 0)
    goto fail;
  r = gnutls_x509_crt_set_key(crt, key);
  if (r < 0)
    goto fail;
  r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
  if (r < 0)
    goto fail;
  r = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
  if (r < 0)
    goto fail;
  /* Ed25519 hashes internally; GnuTLS picks its fixed digest for us. */
  r = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_UNKNOWN, 0);
  if (r < 0)
    goto fail;
  return 0;

fail:
  return qpeer__err_from_gnutls(r);
}

/* identity_make_creds builds the certificate of |id| and the credentials
 * holding it with |id->key|. Returns 0 or as cert_fill(). */
static int identity_make_creds(qpeer_identity_t *id) {
  char cn[QPEER_PEER_ID_STRLEN];
  gnutls_x509_crt_t crt = NULL;
  int r;

  r = qpeer_peer_id_format(&id->peer_id, cn, sizeof(cn));
  if (r < 0)
    return r;
  r = gnutls_x509_crt_init(&crt);
  if (r < 0)
    return qpeer__err_from_gnutls(r);
  r = cert_fill(crt, id->key, cn);
  if (r != 0)
    goto out;
  r = gnutls_certificate_allocate_credentials(&id->creds);
  if (r < 0) {
    id->creds = NULL;
    r = qpeer__err_from_gnutls(r);
    goto out;
  }
  /* This copies both the certificate and the key into the credentials. */
  r = gnutls_certificate_set_x509_key(id->creds, &crt, 1, id->key);
  r = r < 0 ? qpeer__err_from_gnutls(r) : 0;

out:
  gnutls_x509_crt_deinit(crt);
  return r;
}

/* identity_free releases everything |id| holds, then |id| itself. */
static void identity_free(qpeer_identity_t *id) {
  if (id->creds)
    gnutls_certificate_free_credentials(id->creds);
  if (id->key)
    gnutls_x509_privkey_deinit(id->key); /* zeroes the key material */
  qpeer__free(id);
}

/* identity_from_key makes an identity around |key|, taking ownership of it
 * whatever the outcome. Returns 0, QPEER_EKEYFILE when |key| is not
 * Ed25519, or as identity_make_creds(). */
static int identity_from_key(qpeer_identity_t **pid,
                             gnutls_x509_privkey_t key) {
  qpeer_identity_t *id;
  int r;

  id = qpeer__calloc(1, sizeof(*id));
  if (!id) {
    gnutls_x509_privkey_deinit(key);
    return UV_ENOMEM;
  }
  atomic_init(&id->refcount, 1);
  id->key = key;
  r = key_peer_id(&id->peer_id, key);
  if (r == 0)
    r = identity_make_creds(id);
  if (r != 0) {
    identity_free(id);
    return r;
  }
  *pid = id;
  return 0;
}

int qpeer_identity_generate(qpeer_identity_t **pid) {
  gnutls_x509_privkey_t key;
  int r;

  if (!pid)
    return UV_EINVAL;
  r = gnutls_x509_privkey_init(&key);
  if (r < 0)
    return qpeer__err_from_gnutls(r);
  r = gnutls_x509_privkey_generate(
      key, GNUTLS_PK_EDDSA_ED25519,
      GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519), 0);
  if (r < 0) {
    gnutls_x509_privkey_deinit(key);
    return qpeer__err_from_gnutls(r);
  }
  return identity_from_key(pid, key);
}

/* read_key_file reads all of |path| into |buf| (capacity KEY_FILE_MAX + 1)
 * and sets |*plen|. It refuses files that group or others may access.
 * Returns 0, -errno, QPEER_EKEYPERM or QPEER_EKEYFILE. */
static int read_key_file(const char *path, uint8_t *buf, size_t *plen) {
  struct stat st;
  size_t len = 0;
  ssize_t n;
  int fd, r = 0;

  /* O_NONBLOCK keeps a FIFO at |path| from blocking the open. */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return -errno;
  if (fstat(fd, &st) != 0) {
    r = -errno;
    goto out;
  }
  if (S_ISDIR(st.st_mode)) {
    r = UV_EISDIR;
    goto out;
  }
  if (st.st_mode & 077) {
    qpeer__log(QPEER_LOG_WARN, "key file %s has mode %03o; want 0600", path,
               (unsigned int)(st.st_mode & 0777));
    r = QPEER_EKEYPERM;
    goto out;
  }
  if (!S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX) {
    r = QPEER_EKEYFILE;
    goto out;
  }
  /* Read to end of file; the file may have grown since fstat. */
  while (len <= KEY_FILE_MAX) {
    n = read(fd, buf + len, KEY_FILE_MAX + 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      r = -errno;
      goto out;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  if (len > KEY_FILE_MAX)
    r = QPEER_EKEYFILE;
  *plen = len;

out:
  close(fd);
  return r;
}

int qpeer_identity_load(qpeer_identity_t **pid, const char *path) {
  gnutls_x509_privkey_t key = NULL;
  gnutls_datum_t pem;
  uint8_t *buf;
  size_t len = 0;
  int r;

  if (!pid || !path)
    return UV_EINVAL;
  buf = qpeer__malloc(KEY_FILE_MAX + 1);
  if (!buf)
    return UV_ENOMEM;
  r = read_key_file(path, buf, &len);
  if (r != 0)
    goto out;
  r = gnutls_x509_privkey_init(&key);
  if (r < 0) {
    key = NULL;
    r = qpeer__err_from_gnutls(r);
    goto out;
  }
  pem.data = buf;
  pem.size = (unsigned int)len;
  /* Unencrypted PKCS#8 only: "-----BEGIN PRIVATE KEY-----". */
  r = gnutls_x509_privkey_import_pkcs8(key, &pem, GNUTLS_X509_FMT_PEM, NULL,
                                       GNUTLS_PKCS_PLAIN);
  if (r < 0) {
    r = err_from_gnutls_key(r);
    goto out;
  }
  r = identity_from_key(pid, key);
  key = NULL; /* owned by identity_from_key() now */

out:
  if (key)
    gnutls_x509_privkey_deinit(key);
  gnutls_memset(buf, 0, KEY_FILE_MAX + 1);
  qpeer__free(buf);
  return r;
}

/* write_all writes |len| bytes of |data| to |fd|. Returns 0 or -errno. */
static int write_all(int fd, const uint8_t *data, size_t len) {
  ssize_t n;

  while (len > 0) {
    n = write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* sync_parent_dir flushes the directory entry of |path| after a rename.
 * Best effort: some file systems refuse fsync on a directory, and the data
 * itself is already on disk. */
static void sync_parent_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir;
  int fd;

  if (!slash)
    dir = qpeer__strdup(".");
  else
    dir = qpeer__strndup(path, slash == path ? 1 : (size_t)(slash - path));
  if (!dir)
    return;
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  qpeer__free(dir);
}

/* write_file_atomic replaces |path| with |len| bytes of |data|, mode 0600,
 * by way of a temporary file in the same directory. Readers see either the
 * old file or the complete new one. Returns 0, UV_ENOMEM or -errno. */
static int write_file_atomic(const char *path, const uint8_t *data,
                             size_t len) {
  size_t plen = strlen(path);
  char *tmp;
  int fd, r;

  tmp = qpeer__malloc(plen + sizeof(TMP_SUFFIX));
  if (!tmp)
    return UV_ENOMEM;
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, TMP_SUFFIX, sizeof(TMP_SUFFIX));

  fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    r = -errno;
    goto out;
  }
  /* mkostemp already uses 0600; make it explicit whatever the umask. */
  r = fchmod(fd, S_IRUSR | S_IWUSR) != 0 ? -errno : 0;
  if (r == 0)
    r = write_all(fd, data, len);
  if (r == 0 && fsync(fd) != 0)
    r = -errno;
  if (close(fd) != 0 && r == 0)
    r = -errno;
  if (r == 0 && rename(tmp, path) != 0)
    r = -errno;
  if (r != 0)
    (void)unlink(tmp);
  else
    sync_parent_dir(path);

out:
  qpeer__free(tmp);
  return r;
}

int qpeer_identity_save(const qpeer_identity_t *id, const char *path) {
  gnutls_datum_t pem = {NULL, 0};
  int r;

  if (!id || !path || !*path)
    return UV_EINVAL;
  r = gnutls_x509_privkey_export2_pkcs8(id->key, GNUTLS_X509_FMT_PEM, NULL,
                                        GNUTLS_PKCS_PLAIN, &pem);
  if (r < 0)
    return qpeer__err_from_gnutls(r);
  r = write_file_atomic(path, pem.data, pem.size);
  gnutls_memset(pem.data, 0, pem.size);
  gnutls_free(pem.data);
  return r;
}

const qpeer_peer_id_t *qpeer_identity_get_peer_id(const qpeer_identity_t *id) {
  return id ? &id->peer_id : NULL;
}

qpeer_identity_t *qpeer_identity_ref(qpeer_identity_t *id) {
  if (id)
    atomic_fetch_add_explicit(&id->refcount, 1, memory_order_relaxed);
  return id;
}

void qpeer_identity_unref(qpeer_identity_t *id) {
  unsigned int old;

  if (!id)
    return;
  old = atomic_fetch_sub_explicit(&id->refcount, 1, memory_order_acq_rel);
  assert(old > 0);
  if (old == 1)
    identity_free(id);
}

gnutls_certificate_credentials_t
qpeer__identity_creds(const qpeer_identity_t *id) {
  return id ? id->creds : NULL;
}

int qpeer__peer_id_from_der(qpeer_peer_id_t *ppid, const uint8_t *der,
                            size_t derlen) {
  gnutls_x509_crt_t crt;
  gnutls_datum_t in, x = {NULL, 0}, y = {NULL, 0};
  gnutls_ecc_curve_t curve;
  int r;

  if (!ppid || !der)
    return UV_EINVAL;
  if (derlen == 0 || derlen > UINT_MAX)
    return QPEER_ECERT;
  r = gnutls_x509_crt_init(&crt);
  if (r < 0)
    return qpeer__err_from_gnutls(r);
  in.data = (unsigned char *)der; /* not modified by the import */
  in.size = (unsigned int)derlen;
  r = gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_DER);
  if (r < 0)
    goto fail;
  if (gnutls_x509_crt_get_pk_algorithm(crt, NULL) != GNUTLS_PK_EDDSA_ED25519) {
    r = QPEER_ECERT;
    goto out;
  }
  r = gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, &y);
  if (r < 0)
    goto fail;
  if (curve != GNUTLS_ECC_CURVE_ED25519 || x.size != QPEER_PEER_ID_LEN) {
    r = QPEER_ECERT;
    goto out;
  }
  memcpy(ppid->key, x.data, QPEER_PEER_ID_LEN);
  r = 0;
  goto out;

fail:
  r = r == GNUTLS_E_MEMORY_ERROR ? UV_ENOMEM : QPEER_ECERT;
out:
  gnutls_free(x.data);
  gnutls_free(y.data);
  gnutls_x509_crt_deinit(crt);
  return r;
}

int qpeer__peer_id_from_session(qpeer_peer_id_t *ppid, gnutls_session_t s) {
  const gnutls_datum_t *certs;
  unsigned int n = 0;

  if (!ppid || !s)
    return UV_EINVAL;
  if (gnutls_certificate_type_get2(s, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_X509)
    return QPEER_ECERT;
  certs = gnutls_certificate_get_peers(s, &n);
  if (!certs || n == 0)
    return QPEER_ECERT;
  /* The first certificate is the peer's own (the leaf). */
  return qpeer__peer_id_from_der(ppid, certs[0].data, certs[0].size);
}
