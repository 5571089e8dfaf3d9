/* SPDX-License-Identifier: MIT */
/*
 * Access tokens: the algorithm and reason tables, key loading and checks
 * (GnuTLS tells the key's type and size), verification (our own strict
 * parse of the header and claims with jansson; the signature by libjwt,
 * preceded for HMAC by a constant-time check of our own), and minting
 * with libjwt. The `token` subcommand is token_cmd.c.
 */
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <jwt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- tables -------------------------------------------------------------- */

typedef struct {
  relayd_token_alg alg; /* ours */
  const char *name;     /* JWA name */
  jwt_alg_t jwt;        /* libjwt's */
  unsigned bits;        /* hash size: minimum secret, or curve size */
} alg_info;

static const alg_info algs[] = {
    {RELAYD_ALG_HS256, "HS256", JWT_ALG_HS256, 256},
    {RELAYD_ALG_HS384, "HS384", JWT_ALG_HS384, 384},
    {RELAYD_ALG_HS512, "HS512", JWT_ALG_HS512, 512},
    {RELAYD_ALG_RS256, "RS256", JWT_ALG_RS256, 256},
    {RELAYD_ALG_RS384, "RS384", JWT_ALG_RS384, 384},
    {RELAYD_ALG_RS512, "RS512", JWT_ALG_RS512, 512},
    {RELAYD_ALG_ES256, "ES256", JWT_ALG_ES256, 256},
    {RELAYD_ALG_ES384, "ES384", JWT_ALG_ES384, 384},
    {RELAYD_ALG_ES512, "ES512", JWT_ALG_ES512, 521},
};

static const alg_info *alg_find(relayd_token_alg alg) {
  size_t i;
  for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
    if (algs[i].alg == alg)
      return &algs[i];
  return NULL;
}

int relayd_token_alg_parse(const char *name, relayd_token_alg *palg) {
  size_t i;
  for (i = 0; name && i < sizeof(algs) / sizeof(algs[0]); i++) {
    if (!strcmp(algs[i].name, name)) {
      *palg = algs[i].alg;
      return 0;
    }
  }
  return -1;
}

const char *relayd_token_alg_name(relayd_token_alg alg) {
  const alg_info *a = alg_find(alg);
  return a ? a->name : "?";
}

int relayd_token_alg_is_hmac(relayd_token_alg alg) {
  return alg == RELAYD_ALG_HS256 || alg == RELAYD_ALG_HS384 ||
         alg == RELAYD_ALG_HS512;
}

static int alg_is_ec(relayd_token_alg alg) {
  return alg == RELAYD_ALG_ES256 || alg == RELAYD_ALG_ES384 ||
         alg == RELAYD_ALG_ES512;
}

static const struct {
  const char *name; /* reason name */
  int status;       /* HTTP status */
  const char *text; /* description */
} errs[] = {
#define RELAYD_TOKEN_ERR_ROW(e, n, s, d) {n, s, d},
    RELAYD_TOKEN_ERR_MAP(RELAYD_TOKEN_ERR_ROW)
#undef RELAYD_TOKEN_ERR_ROW
};

const char *relayd_token_err_name(relayd_token_err err) {
  if ((unsigned)err >= RELAYD_TOKEN__COUNT)
    return "token_unknown_error";
  return errs[err].name;
}

const char *relayd_token_strerror(relayd_token_err err) {
  if ((unsigned)err >= RELAYD_TOKEN__COUNT)
    return "unknown token error";
  return errs[err].text;
}

int relayd_token_err_status(relayd_token_err err) {
  if ((unsigned)err >= RELAYD_TOKEN__COUNT)
    return 401;
  return errs[err].status;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err && errlen) {
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* ---- keys ---------------------------------------------------------------- */

static int has_text(const unsigned char *key, size_t keylen, const char *s) {
  return memmem(key, keylen, s, strlen(s)) != NULL;
}

/* check_pk_type tells whether a GnuTLS key of |pk|/|bits| fits |alg|. */
static int check_pk_type(const alg_info *a, int pk, unsigned bits, char *err,
                         size_t errlen) {
  if (alg_is_ec(a->alg)) {
    if (pk != GNUTLS_PK_ECDSA)
      return fail(err, errlen, "%s needs an EC key, this is %s", a->name,
                  gnutls_pk_get_name(pk));
    if (bits != a->bits)
      return fail(err, errlen, "%s needs a P-%u key, this one has %u bits",
                  a->name, a->bits, bits);
    return 0;
  }
  if (pk != GNUTLS_PK_RSA)
    return fail(err, errlen, "%s needs an RSA key, this is %s", a->name,
                gnutls_pk_get_name(pk));
  if (bits < 2048)
    return fail(err, errlen, "RSA key of %u bits is too small (2048 at least)",
                bits);
  return 0;
}

static int check_pem_key(const alg_info *a, relayd_token_key_role role,
                         const unsigned char *key, size_t keylen, char *err,
                         size_t errlen) {
  gnutls_datum_t d;
  unsigned bits = 0;
  int pk, rv;
  d.data = (unsigned char *)key;
  d.size = (unsigned)keylen;
  if (role == RELAYD_KEY_VERIFY) {
    gnutls_pubkey_t pub;
    if (has_text(key, keylen, "PRIVATE KEY"))
      return fail(err, errlen,
                  "a private key was given where the public key belongs; "
                  "the relay only needs the public key");
    if (!has_text(key, keylen, "-----BEGIN PUBLIC KEY-----"))
      return fail(err, errlen, "%s needs a PEM public key (BEGIN PUBLIC KEY)",
                  a->name);
    if (gnutls_pubkey_init(&pub) < 0)
      return fail(err, errlen, "out of memory");
    rv = gnutls_pubkey_import(pub, &d, GNUTLS_X509_FMT_PEM);
    pk = rv < 0 ? rv : gnutls_pubkey_get_pk_algorithm(pub, &bits);
    gnutls_pubkey_deinit(pub);
  } else {
    gnutls_privkey_t priv;
    if (!has_text(key, keylen, "PRIVATE KEY"))
      return fail(err, errlen, "%s needs a PEM private key to sign", a->name);
    if (gnutls_privkey_init(&priv) < 0)
      return fail(err, errlen, "out of memory");
    rv = gnutls_privkey_import_x509_raw(priv, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
    pk = rv < 0 ? rv : gnutls_privkey_get_pk_algorithm(priv, &bits);
    gnutls_privkey_deinit(priv);
  }
  if (rv < 0 || pk < 0)
    return fail(err, errlen, "cannot read the key: %s",
                gnutls_strerror(rv < 0 ? rv : pk));
  return check_pk_type(a, pk, bits, err, errlen);
}

int relayd_token_key_check(relayd_token_alg alg, relayd_token_key_role role,
                           const unsigned char *key, size_t keylen, char *err,
                           size_t errlen) {
  const alg_info *a = alg_find(alg);
  if (!a)
    return fail(err, errlen, "unsupported algorithm");
  if (!key || keylen == 0)
    return fail(err, errlen, "empty key");
  if (keylen > RELAYD_TOKEN_KEY_MAX)
    return fail(err, errlen, "key longer than %d bytes", RELAYD_TOKEN_KEY_MAX);
  if (relayd_token_alg_is_hmac(alg)) {
    /* A PEM key used as an HMAC secret is the classic algorithm
     * confusion; refuse it outright. */
    if (has_text(key, keylen, "-----BEGIN"))
      return fail(err, errlen,
                  "%s needs a shared secret, not a PEM key (use RS* or ES* "
                  "with a public key)",
                  a->name);
    if (keylen < a->bits / 8)
      return fail(err, errlen, "%s secret must have at least %u bytes, has %zu",
                  a->name, a->bits / 8, keylen);
    return 0;
  }
  return check_pem_key(a, role, key, keylen, err, errlen);
}

int relayd_token_key_load(const char *path, relayd_token_alg alg,
                          relayd_token_key_role role, unsigned char **pkey,
                          size_t *pkeylen, char *err, size_t errlen) {
  struct stat st;
  unsigned char *buf;
  size_t n = 0;
  ssize_t r;
  int fd, secret;
  *pkey = NULL;
  *pkeylen = 0;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(err, errlen, "%s: %s", path, strerror(errno));
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return fail(err, errlen, "%s: not a regular file", path);
  }
  if (st.st_size <= 0 || st.st_size > RELAYD_TOKEN_KEY_MAX) {
    close(fd);
    return fail(err, errlen, "%s: size must be 1..%d bytes", path,
                RELAYD_TOKEN_KEY_MAX);
  }
  secret = relayd_token_alg_is_hmac(alg) || role == RELAYD_KEY_SIGN;
  if (secret && (st.st_mode & 077)) {
    close(fd);
    return fail(err, errlen,
                "%s: secret readable by group or others (mode %03o); "
                "chmod 600 it",
                path, (unsigned)(st.st_mode & 0777));
  }
  buf = malloc((size_t)st.st_size + 1);
  if (!buf) {
    close(fd);
    return fail(err, errlen, "out of memory");
  }
  while (n < (size_t)st.st_size) {
    r = read(fd, buf + n, (size_t)st.st_size - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  if (relayd_token_alg_is_hmac(alg))
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
                     buf[n - 1] == ' ' || buf[n - 1] == '\t'))
      n--;
  buf[n] = '\0';
  if (alg != RELAYD_ALG_INVALID &&
      relayd_token_key_check(alg, role, buf, n, err, errlen) != 0) {
    char inner[200];
    snprintf(inner, sizeof(inner), "%s", err ? err : "");
    fail(err, errlen, "%s: %s", path, inner);
    explicit_bzero(buf, n);
    free(buf);
    return -1;
  }
  *pkey = buf;
  *pkeylen = n;
  return 0;
}

int relayd_token_alg_for_key(const unsigned char *key, size_t keylen,
                             relayd_token_alg *palg) {
  gnutls_privkey_t priv;
  gnutls_datum_t d;
  unsigned bits = 0;
  int pk = -1;
  if (!has_text(key, keylen, "PRIVATE KEY") || gnutls_privkey_init(&priv) < 0)
    return -1;
  d.data = (unsigned char *)key;
  d.size = (unsigned)keylen;
  if (gnutls_privkey_import_x509_raw(priv, &d, GNUTLS_X509_FMT_PEM, NULL, 0) ==
      0)
    pk = gnutls_privkey_get_pk_algorithm(priv, &bits);
  gnutls_privkey_deinit(priv);
  if (pk == GNUTLS_PK_RSA)
    *palg = RELAYD_ALG_RS256;
  else if (pk == GNUTLS_PK_ECDSA && bits == 256)
    *palg = RELAYD_ALG_ES256;
  else if (pk == GNUTLS_PK_ECDSA && bits == 384)
    *palg = RELAYD_ALG_ES384;
  else if (pk == GNUTLS_PK_ECDSA && bits == 521)
    *palg = RELAYD_ALG_ES512;
  else
    return -1;
  return 0;
}

/* ---- verifier ------------------------------------------------------------ */

int relayd_token_verifier_init(relayd_token_verifier_t *v, relayd_token_alg alg,
                               const unsigned char *key, size_t keylen,
                               const char *audience, const char *issuer,
                               uint32_t leeway_s, char *err, size_t errlen) {
  memset(v, 0, sizeof(*v));
  if (relayd_token_key_check(alg, RELAYD_KEY_VERIFY, key, keylen, err,
                             errlen) != 0)
    return -1;
  if (!audience || !*audience)
    return fail(err, errlen, "an audience is required");
  if (strlen(audience) >= sizeof(v->audience))
    return fail(err, errlen, "audience too long");
  if (issuer && strlen(issuer) >= sizeof(v->issuer))
    return fail(err, errlen, "issuer too long");
  v->key = malloc(keylen + 1);
  if (!v->key)
    return fail(err, errlen, "out of memory");
  memcpy(v->key, key, keylen);
  v->key[keylen] = '\0';
  v->keylen = keylen;
  v->alg = alg;
  snprintf(v->audience, sizeof(v->audience), "%s", audience);
  snprintf(v->issuer, sizeof(v->issuer), "%s", issuer ? issuer : "");
  v->leeway_s = leeway_s;
  return 0;
}

void relayd_token_verifier_free(relayd_token_verifier_t *v) {
  if (v->key) {
    explicit_bzero(v->key, v->keylen);
    free(v->key);
  }
  v->key = NULL;
  v->keylen = 0;
}

/* b64url_decode decodes unpadded base64url |in| (|n| chars) into |out|
 * (|cap| bytes). Returns the length, or -1 on a bad character, a bad
 * length or no room. */
static ssize_t b64url_decode(const char *in, size_t n, unsigned char *out,
                             size_t cap) {
  uint32_t acc = 0;
  size_t i, o = 0;
  int bits = 0, v;
  if (n % 4 == 1)
    return -1;
  for (i = 0; i < n; i++) {
    char c = in[i];
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-')
      v = 62;
    else if (c == '_')
      v = 63;
    else
      return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o >= cap)
        return -1;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  return (ssize_t)o;
}

/* b64url_valid says whether |s| (|n| chars) is non-empty unpadded
 * base64url. */
static int b64url_valid(const char *s, size_t n) {
  size_t i;
  if (n == 0 || n % 4 == 1)
    return 0;
  for (i = 0; i < n; i++)
    if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
      return 0;
  return 1;
}

/* decode_json decodes a base64url segment into a JSON object. */
static json_t *decode_json(const char *seg, size_t n) {
  unsigned char buf[RELAYD_TOKEN_MAX_LEN];
  ssize_t len = b64url_decode(seg, n, buf, sizeof(buf));
  json_t *j;
  if (len <= 0)
    return NULL;
  j = json_loadb((const char *)buf, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
  if (j && !json_is_object(j)) {
    json_decref(j);
    j = NULL;
  }
  return j;
}

static relayd_token_err refuse(relayd_token_claims_t *c, relayd_token_err e,
                               const char *detail) {
  if (c)
    c->detail = detail;
  return e;
}

/* check_header: the algorithm must be the configured one; typ is JWT or
 * absent (libjwt 1.10 refuses others); no crit extensions. */
static relayd_token_err check_header(const relayd_token_verifier_t *v,
                                     json_t *h, relayd_token_claims_t *c) {
  json_t *alg = json_object_get(h, "alg"), *typ = json_object_get(h, "typ");
  relayd_token_alg got;
  if (!json_is_string(alg))
    return refuse(c, RELAYD_TOKEN_MALFORMED, "header has no alg");
  if (!strcasecmp(json_string_value(alg), "none"))
    return refuse(c, RELAYD_TOKEN_ALG_NONE, "alg none");
  if (relayd_token_alg_parse(json_string_value(alg), &got) != 0 ||
      got != v->alg)
    return refuse(c, RELAYD_TOKEN_ALG_MISMATCH, "unexpected alg");
  if (typ &&
      (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
    return refuse(c, RELAYD_TOKEN_MALFORMED, "typ is not JWT");
  if (json_object_get(h, "crit"))
    return refuse(c, RELAYD_TOKEN_MALFORMED, "crit is not supported");
  return RELAYD_TOKEN_OK;
}

/* numeric_date reads a NumericDate claim. Returns 1 if present and
 * valid, 0 if absent, -1 if not a sane number. */
static int numeric_date(json_t *claims, const char *name, int64_t *pt) {
  json_t *j = json_object_get(claims, name);
  double d;
  if (!j)
    return 0;
  if (json_is_integer(j)) {
    *pt = (int64_t)json_integer_value(j);
  } else if (json_is_real(j)) {
    d = json_real_value(j);
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0))
      return -1;
    *pt = (int64_t)d;
  } else {
    return -1;
  }
  return *pt >= 0 && *pt <= ((int64_t)1 << 53) ? 1 : -1;
}

static int audience_matches(json_t *aud, const char *want) {
  size_t i;
  json_t *e;
  if (json_is_string(aud))
    return !strcmp(json_string_value(aud), want);
  if (!json_is_array(aud))
    return 0;
  json_array_foreach(aud, i, e) {
    if (json_is_string(e) && !strcmp(json_string_value(e), want))
      return 1;
  }
  return 0;
}

/* scope_bits reads the space-separated `scope`; unknown words are
 * ignored (the token may carry scopes for other services). */
static unsigned scope_bits(const char *s) {
  unsigned bits = 0;
  size_t n;
  while (*s) {
    while (*s == ' ')
      s++;
    n = strcspn(s, " ");
    if (n == 7 && !strncmp(s, "connect", 7))
      bits |= RELAYD_SCOPE_CONNECT;
    else if (n == 4 && !strncmp(s, "bind", 4))
      bits |= RELAYD_SCOPE_BIND;
    s += n;
  }
  return bits;
}

static int printable(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
      return 0;
  return 1;
}

static relayd_token_err check_claims(const relayd_token_verifier_t *v,
                                     json_t *p, int64_t now, unsigned need,
                                     relayd_token_claims_t *c) {
  json_t *iss = json_object_get(p, "iss"), *sub = json_object_get(p, "sub");
  json_t *scope = json_object_get(p, "scope");
  int64_t exp = 0, nbf = 0, leeway = (int64_t)v->leeway_s;
  int rv;
  unsigned bits;
  rv = numeric_date(p, "exp", &exp);
  if (rv < 0)
    return refuse(c, RELAYD_TOKEN_MALFORMED, "exp is not a NumericDate");
  if (rv == 0)
    return refuse(c, RELAYD_TOKEN_MALFORMED, "exp is required");
  if (now >= exp + leeway)
    return refuse(c, RELAYD_TOKEN_EXPIRED, "exp is in the past");
  rv = numeric_date(p, "nbf", &nbf);
  if (rv < 0)
    return refuse(c, RELAYD_TOKEN_MALFORMED, "nbf is not a NumericDate");
  if (rv > 0 && now + leeway < nbf)
    return refuse(c, RELAYD_TOKEN_NOT_YET_VALID, "nbf is in the future");
  if (v->issuer[0] &&
      (!json_is_string(iss) || strcmp(json_string_value(iss), v->issuer)))
    return refuse(c, RELAYD_TOKEN_WRONG_ISSUER, "iss does not match");
  if (!audience_matches(json_object_get(p, "aud"), v->audience))
    return refuse(c, RELAYD_TOKEN_WRONG_AUDIENCE, "aud does not match");
  if (sub && (!json_is_string(sub) ||
              strlen(json_string_value(sub)) >= RELAYD_TOKEN_SUB_MAX ||
              !printable(json_string_value(sub))))
    return refuse(c, RELAYD_TOKEN_MALFORMED, "sub is not a short string");
  if (scope && !json_is_string(scope))
    return refuse(c, RELAYD_TOKEN_MALFORMED, "scope is not a string");
  bits = scope ? scope_bits(json_string_value(scope)) : 0;
  if ((need & bits) != need)
    return refuse(c, RELAYD_TOKEN_WRONG_SCOPE,
                  (need & RELAYD_SCOPE_BIND) ? "scope lacks bind"
                                             : "scope lacks connect");
  if (c) {
    snprintf(c->sub, sizeof(c->sub), "%s", sub ? json_string_value(sub) : "");
    c->scopes = bits;
    c->exp = exp;
    c->detail = NULL;
  }
  return RELAYD_TOKEN_OK;
}

/* hmac_ok recomputes an HS* signature over the signing input (the first
 * |inlen| bytes of |token|) and compares it in constant time with the
 * decoded signature |sig|. libjwt 1.10 compares HMACs with strcmp(),
 * which leaks timing; with this check in front, libjwt only ever sees
 * signatures that are already known to be right. */
static int hmac_ok(const relayd_token_verifier_t *v, const char *token,
                   size_t inlen, const char *sig) {
  unsigned char want[64], got[64 + 3];
  gnutls_mac_algorithm_t mac = v->alg == RELAYD_ALG_HS256   ? GNUTLS_MAC_SHA256
                               : v->alg == RELAYD_ALG_HS384 ? GNUTLS_MAC_SHA384
                                                            : GNUTLS_MAC_SHA512;
  size_t n = gnutls_hmac_get_len(mac), i;
  ssize_t glen = b64url_decode(sig, strlen(sig), got, sizeof(got));
  unsigned char diff = 0;
  if (glen < 0 || (size_t)glen != n ||
      gnutls_hmac_fast(mac, v->key, v->keylen, token, inlen, want) != 0)
    return 0;
  for (i = 0; i < n; i++)
    diff |= (unsigned char)(want[i] ^ got[i]);
  return diff == 0;
}

/* check_signature verifies the signature, now that the header names the
 * configured algorithm (so the key is used as intended): HS* first in
 * constant time (hmac_ok), then libjwt over the whole token. */
static relayd_token_err check_signature(const relayd_token_verifier_t *v,
                                        const char *token, size_t inlen,
                                        relayd_token_claims_t *c) {
  const alg_info *a = alg_find(v->alg);
  jwt_t *jwt = NULL;
  relayd_token_err e = RELAYD_TOKEN_OK;
  int rv;
  if (relayd_token_alg_is_hmac(v->alg) &&
      !hmac_ok(v, token, inlen, token + inlen + 1))
    return refuse(c, RELAYD_TOKEN_BAD_SIGNATURE, "signature does not verify");
  rv = jwt_decode(&jwt, token, v->key, (int)v->keylen);
  if (rv != 0 || !jwt)
    e = refuse(c, RELAYD_TOKEN_BAD_SIGNATURE, "signature does not verify");
  else if (!a || jwt_get_alg(jwt) != a->jwt)
    e = refuse(c, RELAYD_TOKEN_ALG_MISMATCH, "unexpected alg");
  if (jwt)
    jwt_free(jwt);
  return e;
}

relayd_token_err relayd_token_verify(const relayd_token_verifier_t *v,
                                     const char *token, int64_t now,
                                     unsigned need,
                                     relayd_token_claims_t *claims) {
  const char *d1, *d2;
  size_t len;
  json_t *h = NULL, *p = NULL;
  relayd_token_err e;
  if (claims)
    memset(claims, 0, sizeof(*claims));
  if (!token || !*token)
    return refuse(claims, RELAYD_TOKEN_MISSING, "no token");
  if (!v || !v->key)
    return refuse(claims, RELAYD_TOKEN_BAD_SIGNATURE, "no key configured");
  len = strnlen(token, RELAYD_TOKEN_MAX_LEN + 1);
  if (len > RELAYD_TOKEN_MAX_LEN)
    return refuse(claims, RELAYD_TOKEN_MALFORMED, "token too long");
  d1 = strchr(token, '.');
  d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  if (!d1 || !d2 || strchr(d2 + 1, '.'))
    return refuse(claims, RELAYD_TOKEN_MALFORMED, "not three segments");
  h = decode_json(token, (size_t)(d1 - token));
  if (!h)
    return refuse(claims, RELAYD_TOKEN_MALFORMED, "bad header");
  e = check_header(v, h, claims);
  json_decref(h);
  if (e != RELAYD_TOKEN_OK)
    return e;
  p = decode_json(d1 + 1, (size_t)(d2 - d1 - 1));
  if (!p)
    return refuse(claims, RELAYD_TOKEN_MALFORMED, "bad payload");
  if (!b64url_valid(d2 + 1, strlen(d2 + 1))) {
    json_decref(p);
    return refuse(claims, RELAYD_TOKEN_BAD_SIGNATURE, "bad signature field");
  }
  e = check_signature(v, token, (size_t)(d2 - token), claims);
  if (e == RELAYD_TOKEN_OK)
    e = check_claims(v, p, now, need, claims);
  json_decref(p);
  return e;
}

/* ---- minting ------------------------------------------------------------- */

int relayd_token_scopes_parse(const char *text, unsigned *pscopes) {
  unsigned bits = 0;
  size_t n;
  const char *s = text;
  if (!s)
    return -1;
  while (*s) {
    while (*s == ',' || *s == ' ')
      s++;
    if (!*s)
      break;
    n = strcspn(s, ", ");
    if (n == 7 && !strncmp(s, "connect", 7))
      bits |= RELAYD_SCOPE_CONNECT;
    else if (n == 4 && !strncmp(s, "bind", 4))
      bits |= RELAYD_SCOPE_BIND;
    else
      return -1;
    s += n;
  }
  if (!bits)
    return -1;
  *pscopes = bits;
  return 0;
}

int relayd_token_mint(const relayd_token_mint_t *m, char **ptoken, char *err,
                      size_t errlen) {
  const alg_info *a = alg_find(m->alg);
  unsigned char rnd[16];
  char jti[33], scope[16];
  jwt_t *jwt = NULL;
  size_t i;
  int rv = 0;
  *ptoken = NULL;
  if (!a)
    return fail(err, errlen, "unsupported algorithm");
  if (!m->audience || !*m->audience)
    return fail(err, errlen, "an audience is required");
  if (!(m->scopes & (RELAYD_SCOPE_BIND | RELAYD_SCOPE_CONNECT)))
    return fail(err, errlen, "at least one scope is required");
  if (m->ttl_s == 0)
    return fail(err, errlen, "ttl must be at least 1 second");
  if (m->subject &&
      (strlen(m->subject) >= RELAYD_TOKEN_SUB_MAX || !printable(m->subject)))
    return fail(err, errlen, "subject must be printable and shorter than %d",
                RELAYD_TOKEN_SUB_MAX);
  if (relayd_token_key_check(m->alg, RELAYD_KEY_SIGN, m->key, m->keylen, err,
                             errlen) != 0)
    return -1;
  if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
    return fail(err, errlen, "no randomness: %s", strerror(errno));
  for (i = 0; i < sizeof(rnd); i++)
    snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
  snprintf(scope, sizeof(scope), "%s%s%s",
           (m->scopes & RELAYD_SCOPE_CONNECT) ? "connect" : "",
           (m->scopes & RELAYD_SCOPE_CONNECT) && (m->scopes & RELAYD_SCOPE_BIND)
               ? " "
               : "",
           (m->scopes & RELAYD_SCOPE_BIND) ? "bind" : "");
  if (jwt_new(&jwt) != 0)
    return fail(err, errlen, "out of memory");
  rv |= jwt_add_grant(jwt, "aud", m->audience);
  if (m->issuer && *m->issuer)
    rv |= jwt_add_grant(jwt, "iss", m->issuer);
  if (m->subject && *m->subject)
    rv |= jwt_add_grant(jwt, "sub", m->subject);
  rv |= jwt_add_grant(jwt, "scope", scope);
  rv |= jwt_add_grant(jwt, "jti", jti);
  rv |= jwt_add_grant_int(jwt, "iat", (long)m->now);
  rv |= jwt_add_grant_int(jwt, "nbf", (long)m->now);
  rv |= jwt_add_grant_int(jwt, "exp", (long)(m->now + (int64_t)m->ttl_s));
  rv |= jwt_set_alg(jwt, a->jwt, m->key, (int)m->keylen);
  if (rv == 0)
    *ptoken = jwt_encode_str(jwt);
  jwt_free(jwt);
  if (!*ptoken)
    return fail(err, errlen, "signing failed (%s)",
                rv ? "bad claims or key" : strerror(errno));
  return 0;
}
