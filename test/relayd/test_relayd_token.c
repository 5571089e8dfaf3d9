/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for tools/relayd/token.c: valid HS256, ES256 and RS256 tokens;
 * expired and not-yet-valid ones (with leeway); wrong audience, issuer and
 * scope (bind versus connect); bad signatures; alg none; algorithm
 * mismatch and the HS256-with-the-public-key confusion attack; malformed
 * tokens; key checks; minting and the `token` subcommand.
 */
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <jwt.h>
#include <time.h>

#include "relayd_test.h"
#include "token.h"

#define NOW 1700000000
#define AUD "relay.example"
#define SECRET "0123456789abcdef0123456789abcdef-test-secret"

typedef struct {
  char priv[8192]; /* PEM private key */
  char pub[4096];  /* PEM public key */
} keypair;

static keypair ec_key, ec_key2, rsa_key;

static void make_keypair(keypair *kp, gnutls_pk_algorithm_t pk, unsigned bits) {
  gnutls_x509_privkey_t x;
  gnutls_privkey_t priv;
  gnutls_pubkey_t pub;
  size_t n;
  assert_int_equal(gnutls_x509_privkey_init(&x), 0);
  assert_int_equal(gnutls_x509_privkey_generate(x, pk, bits, 0), 0);
  n = sizeof(kp->priv);
  assert_int_equal(gnutls_x509_privkey_export_pkcs8(x, GNUTLS_X509_FMT_PEM,
                                                    NULL, GNUTLS_PKCS_PLAIN,
                                                    kp->priv, &n),
                   0);
  kp->priv[n] = '\0';
  assert_int_equal(gnutls_privkey_init(&priv), 0);
  assert_int_equal(gnutls_privkey_import_x509(priv, x, 0), 0);
  assert_int_equal(gnutls_pubkey_init(&pub), 0);
  assert_int_equal(gnutls_pubkey_import_privkey(pub, priv, 0, 0), 0);
  n = sizeof(kp->pub);
  assert_int_equal(gnutls_pubkey_export(pub, GNUTLS_X509_FMT_PEM, kp->pub, &n),
                   0);
  kp->pub[n] = '\0';
  gnutls_pubkey_deinit(pub);
  gnutls_privkey_deinit(priv);
  gnutls_x509_privkey_deinit(x);
}

static int setup_keys(void **state) {
  (void)state;
  make_keypair(&ec_key, GNUTLS_PK_ECDSA,
               GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
  make_keypair(&ec_key2, GNUTLS_PK_ECDSA,
               GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
  make_keypair(&rsa_key, GNUTLS_PK_RSA, 2048);
  return 0;
}

/* ---- token crafting ------------------------------------------------------ */

static void b64url(const void *in, size_t n, char *out, size_t cap) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const unsigned char *p = in;
  size_t i, o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (i = 0; i < n; i++) {
    acc = (acc << 8) | p[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      assert_true(o + 1 < cap);
      out[o++] = tab[(acc >> bits) & 63];
    }
  }
  if (bits > 0) {
    assert_true(o + 1 < cap);
    out[o++] = tab[(acc << (6 - bits)) & 63];
  }
  out[o] = '\0';
}

/* craft builds header.payload.signature by hand: |sigalg| "HS256" signs
 * with |key|, "" leaves the signature empty, anything else appends it
 * literally. */
static char *craft(const char *header, const char *payload, const char *sigalg,
                   const char *key) {
  static char tok[16384];
  char h[4096], p[8192];
  unsigned char mac[32];
  b64url(header, strlen(header), h, sizeof(h));
  b64url(payload, strlen(payload), p, sizeof(p));
  snprintf(tok, sizeof(tok), "%s.%s.", h, p);
  if (!strcmp(sigalg, "HS256")) {
    assert_int_equal(gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, strlen(key), tok,
                                      strlen(tok) - 1, mac),
                     0);
    b64url(mac, sizeof(mac), tok + strlen(tok), sizeof(tok) - strlen(tok));
  } else {
    strncat(tok, sigalg, sizeof(tok) - strlen(tok) - 1);
  }
  return tok;
}

/* hs builds an HS256 token with SECRET over |payload|. */
static char *hs(const char *payload) {
  return craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, "HS256", SECRET);
}

static char *claims(const char *extra) {
  static char buf[2048];
  snprintf(buf, sizeof(buf),
           "{\"aud\":\"" AUD "\",\"exp\":%d,\"scope\":\"connect bind\"%s%s}",
           NOW + 600, *extra ? "," : "", extra);
  return buf;
}

static void hs_verifier(relayd_token_verifier_t *v, const char *issuer) {
  char err[256];
  assert_int_equal(relayd_token_verifier_init(
                       v, RELAYD_ALG_HS256, (const unsigned char *)SECRET,
                       strlen(SECRET), AUD, issuer, 30, err, sizeof(err)),
                   0);
}

static relayd_token_err verify(const relayd_token_verifier_t *v,
                               const char *tok, unsigned need) {
  relayd_token_claims_t c;
  relayd_token_err e = relayd_token_verify(v, tok, NOW, need, &c);
  if (e != RELAYD_TOKEN_OK)
    assert_non_null(c.detail);
  return e;
}

static char *mint(relayd_token_alg alg, const char *key, const char *aud,
                  unsigned scopes, const char *sub) {
  relayd_token_mint_t m;
  char err[256], *tok = NULL;
  memset(&m, 0, sizeof(m));
  m.alg = alg;
  m.key = (const unsigned char *)key;
  m.keylen = strlen(key);
  m.audience = aud;
  m.subject = sub;
  m.scopes = scopes;
  m.now = NOW;
  m.ttl_s = 600;
  if (relayd_token_mint(&m, &tok, err, sizeof(err)) != 0)
    fail_msg("mint: %s", err);
  return tok;
}

/* ---- tests --------------------------------------------------------------- */

static void test_token_valid_hs256(void **state) {
  relayd_token_verifier_t v;
  relayd_token_claims_t c;
  char *tok;
  (void)state;
  hs_verifier(&v, NULL);
  tok = mint(RELAYD_ALG_HS256, SECRET, AUD, RELAYD_SCOPE_CONNECT, "camera-1");
  assert_int_equal(relayd_token_verify(&v, tok, NOW, RELAYD_SCOPE_CONNECT, &c),
                   RELAYD_TOKEN_OK);
  assert_string_equal(c.sub, "camera-1");
  assert_int_equal(c.scopes, RELAYD_SCOPE_CONNECT);
  assert_int_equal(c.exp, NOW + 600);
  assert_null(c.detail);
  free(tok);
  /* Hand-made, with aud as an array and extra unknown scopes. */
  assert_int_equal(verify(&v,
                          hs("{\"aud\":[\"x\",\"" AUD "\"],\"exp\":1700000100,"
                             "\"scope\":\"openid bind\"}"),
                          RELAYD_SCOPE_BIND),
                   RELAYD_TOKEN_OK);
  /* No typ header is fine too; exp as a real number is a NumericDate. */
  assert_int_equal(verify(&v,
                          craft("{\"alg\":\"HS256\"}",
                                "{\"aud\":\"" AUD "\",\"exp\":1700000100.5,"
                                "\"scope\":\"connect\"}",
                                "HS256", SECRET),
                          RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_OK);
  relayd_token_verifier_free(&v);
}

static void test_token_valid_es256_rs256(void **state) {
  relayd_token_verifier_t v;
  char err[256], *tok;
  (void)state;
  assert_int_equal(relayd_token_verifier_init(
                       &v, RELAYD_ALG_ES256, (unsigned char *)ec_key.pub,
                       strlen(ec_key.pub), AUD, NULL, 0, err, sizeof(err)),
                   0);
  tok = mint(RELAYD_ALG_ES256, ec_key.priv, AUD, RELAYD_SCOPE_BIND, NULL);
  assert_int_equal(verify(&v, tok, RELAYD_SCOPE_BIND), RELAYD_TOKEN_OK);
  free(tok);
  /* Signed by another EC key: bad signature. */
  tok = mint(RELAYD_ALG_ES256, ec_key2.priv, AUD, RELAYD_SCOPE_BIND, NULL);
  assert_int_equal(verify(&v, tok, RELAYD_SCOPE_BIND),
                   RELAYD_TOKEN_BAD_SIGNATURE);
  free(tok);
  relayd_token_verifier_free(&v);

  assert_int_equal(relayd_token_verifier_init(
                       &v, RELAYD_ALG_RS256, (unsigned char *)rsa_key.pub,
                       strlen(rsa_key.pub), AUD, NULL, 0, err, sizeof(err)),
                   0);
  tok = mint(RELAYD_ALG_RS256, rsa_key.priv, AUD,
             RELAYD_SCOPE_BIND | RELAYD_SCOPE_CONNECT, "x");
  assert_int_equal(verify(&v, tok, RELAYD_SCOPE_BIND | RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_OK);
  free(tok);
  relayd_token_verifier_free(&v);
}

static void test_token_expired(void **state) {
  relayd_token_verifier_t v;
  char p[256];
  (void)state;
  hs_verifier(&v, NULL);
  snprintf(p, sizeof(p),
           "{\"aud\":\"" AUD "\",\"exp\":%d,\"scope\":\"connect\"}", NOW - 100);
  assert_int_equal(verify(&v, hs(p), RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_EXPIRED);
  /* Within the 30 s leeway. */
  snprintf(p, sizeof(p),
           "{\"aud\":\"" AUD "\",\"exp\":%d,\"scope\":\"connect\"}", NOW - 10);
  assert_int_equal(verify(&v, hs(p), RELAYD_SCOPE_CONNECT), RELAYD_TOKEN_OK);
  /* Exactly at the edge: exp + leeway == now is expired. */
  snprintf(p, sizeof(p),
           "{\"aud\":\"" AUD "\",\"exp\":%d,\"scope\":\"connect\"}", NOW - 30);
  assert_int_equal(verify(&v, hs(p), RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_EXPIRED);
  /* Expiry is checked before audience and scope. */
  snprintf(p, sizeof(p), "{\"aud\":\"nope\",\"exp\":%d}", NOW - 100);
  assert_int_equal(verify(&v, hs(p), RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_EXPIRED);
  assert_int_equal(relayd_token_err_status(RELAYD_TOKEN_EXPIRED), 401);
  relayd_token_verifier_free(&v);
}

static void test_token_not_yet_valid(void **state) {
  relayd_token_verifier_t v;
  char x[64];
  (void)state;
  hs_verifier(&v, NULL);
  snprintf(x, sizeof(x), "\"nbf\":%d", NOW + 100);
  assert_int_equal(verify(&v, hs(claims(x)), RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_NOT_YET_VALID);
  snprintf(x, sizeof(x), "\"nbf\":%d", NOW + 10);
  assert_int_equal(verify(&v, hs(claims(x)), RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_OK);
  assert_int_equal(
      verify(&v, hs(claims("\"nbf\":\"soon\"")), RELAYD_SCOPE_CONNECT),
      RELAYD_TOKEN_MALFORMED);
  relayd_token_verifier_free(&v);
}

static void test_token_wrong_audience(void **state) {
  relayd_token_verifier_t v;
  (void)state;
  hs_verifier(&v, NULL);
  assert_int_equal(verify(&v,
                          hs("{\"aud\":\"other-relay\",\"exp\":1700000100,"
                             "\"scope\":\"connect\"}"),
                          RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_WRONG_AUDIENCE);
  assert_int_equal(verify(&v,
                          hs("{\"aud\":[\"a\",\"b\"],\"exp\":1700000100,"
                             "\"scope\":\"connect\"}"),
                          RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_WRONG_AUDIENCE);
  assert_int_equal(verify(&v, hs("{\"exp\":1700000100,\"scope\":\"connect\"}"),
                          RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_WRONG_AUDIENCE);
  /* A prefix is not a match. */
  assert_int_equal(verify(&v,
                          hs("{\"aud\":\"relay.examplex\",\"exp\":1700000100,"
                             "\"scope\":\"connect\"}"),
                          RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_WRONG_AUDIENCE);
  assert_string_equal(relayd_token_err_name(RELAYD_TOKEN_WRONG_AUDIENCE),
                      "token_wrong_audience");
  relayd_token_verifier_free(&v);
}

static void test_token_wrong_issuer(void **state) {
  relayd_token_verifier_t v;
  (void)state;
  hs_verifier(&v, "https://as.example");
  assert_int_equal(verify(&v, hs(claims("")), RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_WRONG_ISSUER);
  assert_int_equal(verify(&v, hs(claims("\"iss\":\"https://evil.example\"")),
                          RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_WRONG_ISSUER);
  assert_int_equal(verify(&v, hs(claims("\"iss\":\"https://as.example\"")),
                          RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_OK);
  relayd_token_verifier_free(&v);
}

static void test_token_wrong_scope(void **state) {
  relayd_token_verifier_t v;
  char *tok;
  (void)state;
  hs_verifier(&v, NULL);
  /* A connect token cannot bind, and a bind token cannot connect. */
  tok = mint(RELAYD_ALG_HS256, SECRET, AUD, RELAYD_SCOPE_CONNECT, NULL);
  assert_int_equal(verify(&v, tok, RELAYD_SCOPE_BIND),
                   RELAYD_TOKEN_WRONG_SCOPE);
  assert_int_equal(verify(&v, tok, RELAYD_SCOPE_CONNECT), RELAYD_TOKEN_OK);
  free(tok);
  tok = mint(RELAYD_ALG_HS256, SECRET, AUD, RELAYD_SCOPE_BIND, NULL);
  assert_int_equal(verify(&v, tok, RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_WRONG_SCOPE);
  assert_int_equal(verify(&v, tok, RELAYD_SCOPE_BIND), RELAYD_TOKEN_OK);
  free(tok);
  /* Words, not substrings; no scope at all; scope of the wrong type. */
  assert_int_equal(verify(&v,
                          hs("{\"aud\":\"" AUD "\",\"exp\":1700000100,"
                             "\"scope\":\"binding connector\"}"),
                          RELAYD_SCOPE_BIND),
                   RELAYD_TOKEN_WRONG_SCOPE);
  assert_int_equal(verify(&v, hs("{\"aud\":\"" AUD "\",\"exp\":1700000100}"),
                          RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_WRONG_SCOPE);
  assert_int_equal(verify(&v,
                          hs("{\"aud\":\"" AUD "\",\"exp\":1700000100,"
                             "\"scope\":[\"bind\"]}"),
                          RELAYD_SCOPE_BIND),
                   RELAYD_TOKEN_MALFORMED);
  assert_int_equal(relayd_token_err_status(RELAYD_TOKEN_WRONG_SCOPE), 403);
  relayd_token_verifier_free(&v);
}

static void test_token_bad_signature(void **state) {
  relayd_token_verifier_t v;
  char *tok, *last;
  (void)state;
  hs_verifier(&v, NULL);
  tok = mint(RELAYD_ALG_HS256, SECRET, AUD, RELAYD_SCOPE_CONNECT, NULL);
  last = tok + strlen(tok) - 2;
  *last = *last == 'A' ? 'B' : 'A';
  assert_int_equal(verify(&v, tok, RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_BAD_SIGNATURE);
  free(tok);
  /* Another secret. */
  assert_int_equal(
      verify(&v,
             craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims(""), "HS256",
                   "another-secret-another-secret-another-secret"),
             RELAYD_SCOPE_CONNECT),
      RELAYD_TOKEN_BAD_SIGNATURE);
  /* Claims changed after signing. */
  tok = mint(RELAYD_ALG_HS256, SECRET, "someone-else", RELAYD_SCOPE_CONNECT,
             NULL);
  {
    char forged[4096], p[512];
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    b64url(claims(""), strlen(claims("")), p, sizeof(p));
    snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(d1 - tok), tok, p, d2);
    assert_int_equal(verify(&v, forged, RELAYD_SCOPE_CONNECT),
                     RELAYD_TOKEN_BAD_SIGNATURE);
  }
  free(tok);
  /* Empty signature, and characters outside base64url in it. */
  assert_int_equal(verify(&v,
                          craft("{\"alg\":\"HS256\"}", claims(""), "", NULL),
                          RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_BAD_SIGNATURE);
  assert_int_equal(
      verify(&v, craft("{\"alg\":\"HS256\"}", claims(""), "ab+/cd==", NULL),
             RELAYD_SCOPE_CONNECT),
      RELAYD_TOKEN_BAD_SIGNATURE);
  relayd_token_verifier_free(&v);
}

static void test_token_alg_none(void **state) {
  relayd_token_verifier_t v, ve;
  char err[256];
  (void)state;
  hs_verifier(&v, NULL);
  assert_int_equal(
      verify(&v,
             craft("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims(""), "", NULL),
             RELAYD_SCOPE_CONNECT),
      RELAYD_TOKEN_ALG_NONE);
  assert_int_equal(verify(&v, craft("{\"alg\":\"None\"}", claims(""), "", NULL),
                          RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_ALG_NONE);
  /* alg none with a (valid HS256) signature attached is still none. */
  assert_int_equal(
      verify(&v, craft("{\"alg\":\"NONE\"}", claims(""), "HS256", SECRET),
             RELAYD_SCOPE_CONNECT),
      RELAYD_TOKEN_ALG_NONE);
  assert_string_equal(relayd_token_err_name(RELAYD_TOKEN_ALG_NONE),
                      "token_alg_none");
  /* Same with a public-key verifier. */
  assert_int_equal(relayd_token_verifier_init(
                       &ve, RELAYD_ALG_ES256, (unsigned char *)ec_key.pub,
                       strlen(ec_key.pub), AUD, NULL, 0, err, sizeof(err)),
                   0);
  assert_int_equal(verify(&ve,
                          craft("{\"alg\":\"none\"}", claims(""), "", NULL),
                          RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_ALG_NONE);
  relayd_token_verifier_free(&ve);
  relayd_token_verifier_free(&v);
}

static void test_token_alg_mismatch(void **state) {
  relayd_token_verifier_t v, vr;
  char err[256], *tok;
  jwt_t *jwt = NULL;
  (void)state;
  /* The confusion attack: an ES256 relay, and a token "signed" with HS256
   * using the relay's public key as the HMAC secret. libjwt alone would
   * accept it (the key is just bytes to HMAC); the header check refuses. */
  assert_int_equal(relayd_token_verifier_init(
                       &v, RELAYD_ALG_ES256, (unsigned char *)ec_key.pub,
                       strlen(ec_key.pub), AUD, NULL, 0, err, sizeof(err)),
                   0);
  tok = craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims(""), "HS256",
              ec_key.pub);
  assert_int_equal(jwt_decode(&jwt, tok, (unsigned char *)ec_key.pub,
                              (int)strlen(ec_key.pub)),
                   0); /* what we guard against */
  jwt_free(jwt);
  assert_int_equal(verify(&v, tok, RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_ALG_MISMATCH);
  /* Same attack against RS256. */
  assert_int_equal(relayd_token_verifier_init(
                       &vr, RELAYD_ALG_RS256, (unsigned char *)rsa_key.pub,
                       strlen(rsa_key.pub), AUD, NULL, 0, err, sizeof(err)),
                   0);
  assert_int_equal(
      verify(&vr,
             craft("{\"alg\":\"HS256\"}", claims(""), "HS256", rsa_key.pub),
             RELAYD_SCOPE_CONNECT),
      RELAYD_TOKEN_ALG_MISMATCH);
  /* A genuine token of another public-key algorithm. */
  tok = mint(RELAYD_ALG_RS256, rsa_key.priv, AUD, RELAYD_SCOPE_CONNECT, NULL);
  assert_int_equal(verify(&v, tok, RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_ALG_MISMATCH);
  free(tok);
  relayd_token_verifier_free(&vr);
  relayd_token_verifier_free(&v);
  /* HS256 relay: HS512, ES256, unknown and non-string algs. */
  hs_verifier(&v, NULL);
  assert_int_equal(
      verify(&v, craft("{\"alg\":\"HS512\"}", claims(""), "HS256", SECRET),
             RELAYD_SCOPE_CONNECT),
      RELAYD_TOKEN_ALG_MISMATCH);
  tok = mint(RELAYD_ALG_ES256, ec_key.priv, AUD, RELAYD_SCOPE_CONNECT, NULL);
  assert_int_equal(verify(&v, tok, RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_ALG_MISMATCH);
  free(tok);
  assert_int_equal(
      verify(&v, craft("{\"alg\":\"hs256\"}", claims(""), "HS256", SECRET),
             RELAYD_SCOPE_CONNECT),
      RELAYD_TOKEN_ALG_MISMATCH);
  assert_int_equal(
      verify(&v, craft("{\"alg\":\"EdDSA\"}", claims(""), "HS256", SECRET),
             RELAYD_SCOPE_CONNECT),
      RELAYD_TOKEN_ALG_MISMATCH);
  assert_int_equal(verify(&v,
                          craft("{\"alg\":256}", claims(""), "HS256", SECRET),
                          RELAYD_SCOPE_CONNECT),
                   RELAYD_TOKEN_MALFORMED);
  relayd_token_verifier_free(&v);
}

static void test_token_malformed(void **state) {
  relayd_token_verifier_t v;
  relayd_token_claims_t c;
  char *big;
  (void)state;
  hs_verifier(&v, NULL);
  assert_int_equal(relayd_token_verify(&v, "", NOW, 1, &c),
                   RELAYD_TOKEN_MISSING);
  assert_int_equal(relayd_token_verify(&v, NULL, NOW, 1, &c),
                   RELAYD_TOKEN_MISSING);
  assert_int_equal(verify(&v, "abc", 1), RELAYD_TOKEN_MALFORMED);
  assert_int_equal(verify(&v, "a.b", 1), RELAYD_TOKEN_MALFORMED);
  assert_int_equal(verify(&v, "a.b.c.d", 1), RELAYD_TOKEN_MALFORMED);
  assert_int_equal(verify(&v, "..", 1), RELAYD_TOKEN_MALFORMED);
  assert_int_equal(verify(&v, "e30$.e30.abc", 1), RELAYD_TOKEN_MALFORMED);
  /* Header not JSON; not an object; payload an array; duplicate keys. */
  assert_int_equal(
      verify(&v, craft("not json", claims(""), "HS256", SECRET), 1),
      RELAYD_TOKEN_MALFORMED);
  assert_int_equal(verify(&v, craft("[1]", claims(""), "HS256", SECRET), 1),
                   RELAYD_TOKEN_MALFORMED);
  assert_int_equal(verify(&v, hs("[\"aud\"]"), 1), RELAYD_TOKEN_MALFORMED);
  assert_int_equal(
      verify(&v, hs("{\"aud\":\"" AUD "\",\"aud\":\"x\",\"exp\":1700000100}"),
             1),
      RELAYD_TOKEN_MALFORMED);
  assert_int_equal(verify(&v,
                          craft("{\"alg\":\"HS256\",\"alg\":\"none\"}",
                                claims(""), "HS256", SECRET),
                          1),
                   RELAYD_TOKEN_MALFORMED);
  /* exp missing or not a number; sub with control characters. */
  assert_int_equal(
      verify(&v, hs("{\"aud\":\"" AUD "\",\"scope\":\"connect\"}"), 1),
      RELAYD_TOKEN_MALFORMED);
  assert_int_equal(verify(&v,
                          hs("{\"aud\":\"" AUD "\",\"exp\":\"1700000100\","
                             "\"scope\":\"connect\"}"),
                          1),
                   RELAYD_TOKEN_MALFORMED);
  assert_int_equal(verify(&v, hs(claims("\"sub\":\"a\\nb\"")), 1),
                   RELAYD_TOKEN_MALFORMED);
  /* typ other than JWT (libjwt 1.10 cannot verify those) and crit. */
  assert_int_equal(verify(&v,
                          craft("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}",
                                claims(""), "HS256", SECRET),
                          1),
                   RELAYD_TOKEN_MALFORMED);
  assert_int_equal(verify(&v,
                          craft("{\"alg\":\"HS256\",\"crit\":[\"x\"],\"x\":1}",
                                claims(""), "HS256", SECRET),
                          1),
                   RELAYD_TOKEN_MALFORMED);
  /* Too long. */
  big = malloc(RELAYD_TOKEN_MAX_LEN + 100);
  assert_non_null(big);
  memset(big, 'A', RELAYD_TOKEN_MAX_LEN + 99);
  big[RELAYD_TOKEN_MAX_LEN + 99] = '\0';
  big[10] = '.';
  big[20] = '.';
  assert_int_equal(verify(&v, big, 1), RELAYD_TOKEN_MALFORMED);
  free(big);
  relayd_token_verifier_free(&v);
}

static void test_token_names(void **state) {
  int i, j;
  (void)state;
  for (i = 0; i < RELAYD_TOKEN__COUNT; i++) {
    const char *n = relayd_token_err_name((relayd_token_err)i);
    int st = relayd_token_err_status((relayd_token_err)i);
    assert_non_null(n);
    assert_true(strlen(relayd_token_strerror((relayd_token_err)i)) > 0);
    if (i > 0)
      assert_true(st == 401 || st == 403);
    /* Usable as an sf-token in Proxy-Status details and as a label. */
    assert_true(strspn(n, "abcdefghijklmnopqrstuvwxyz_") == strlen(n));
    for (j = 0; j < i; j++)
      assert_string_not_equal(n, relayd_token_err_name((relayd_token_err)j));
  }
  assert_string_equal(relayd_token_err_name(RELAYD_TOKEN_EXPIRED),
                      "token_expired");
  assert_string_equal(relayd_token_err_name((relayd_token_err)999),
                      "token_unknown_error");
}

static void test_token_key_checks(void **state) {
  char err[256], dir[256], path[512];
  unsigned char *key;
  size_t len;
  relayd_token_alg alg;
  relayd_token_verifier_t v;
  (void)state;
  /* Secrets: length per hash; a PEM key is no secret. */
  assert_int_equal(relayd_token_key_check(RELAYD_ALG_HS256, RELAYD_KEY_VERIFY,
                                          (unsigned char *)"short", 5, err,
                                          sizeof(err)),
                   -1);
  assert_int_equal(relayd_token_key_check(RELAYD_ALG_HS512, RELAYD_KEY_VERIFY,
                                          (unsigned char *)SECRET,
                                          strlen(SECRET), err, sizeof(err)),
                   -1);
  assert_int_equal(relayd_token_key_check(RELAYD_ALG_HS256, RELAYD_KEY_VERIFY,
                                          (unsigned char *)ec_key.pub,
                                          strlen(ec_key.pub), err, sizeof(err)),
                   -1);
  /* Public-key algorithms: public key to verify, of the right type. */
  assert_int_equal(relayd_token_key_check(RELAYD_ALG_ES256, RELAYD_KEY_VERIFY,
                                          (unsigned char *)ec_key.priv,
                                          strlen(ec_key.priv), err,
                                          sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "private key"));
  assert_int_equal(relayd_token_key_check(RELAYD_ALG_ES256, RELAYD_KEY_VERIFY,
                                          (unsigned char *)rsa_key.pub,
                                          strlen(rsa_key.pub), err,
                                          sizeof(err)),
                   -1);
  assert_int_equal(relayd_token_key_check(RELAYD_ALG_ES384, RELAYD_KEY_VERIFY,
                                          (unsigned char *)ec_key.pub,
                                          strlen(ec_key.pub), err, sizeof(err)),
                   -1);
  assert_int_equal(relayd_token_key_check(RELAYD_ALG_RS256, RELAYD_KEY_VERIFY,
                                          (unsigned char *)rsa_key.pub,
                                          strlen(rsa_key.pub), err,
                                          sizeof(err)),
                   0);
  assert_int_equal(relayd_token_key_check(RELAYD_ALG_RS256, RELAYD_KEY_SIGN,
                                          (unsigned char *)rsa_key.pub,
                                          strlen(rsa_key.pub), err,
                                          sizeof(err)),
                   -1);
  assert_int_equal(relayd_token_verifier_init(
                       &v, RELAYD_ALG_HS256, (const unsigned char *)SECRET,
                       strlen(SECRET), "", NULL, 0, err, sizeof(err)),
                   -1);
  assert_int_equal(relayd_token_alg_for_key((unsigned char *)ec_key.priv,
                                            strlen(ec_key.priv), &alg),
                   0);
  assert_int_equal(alg, RELAYD_ALG_ES256);
  assert_int_equal(relayd_token_alg_for_key((unsigned char *)rsa_key.priv,
                                            strlen(rsa_key.priv), &alg),
                   0);
  assert_int_equal(alg, RELAYD_ALG_RS256);
  assert_int_equal(relayd_token_alg_parse("none", &alg), -1);
  assert_int_equal(relayd_token_alg_parse("EdDSA", &alg), -1);
  /* Files: secrets must be private; trailing newline is trimmed. */
  rt_tmpdir(dir, sizeof(dir));
  rt_write_file(dir, "secret", SECRET "\n", strlen(SECRET) + 1, 0644, path,
                sizeof(path));
  assert_int_equal(relayd_token_key_load(path, RELAYD_ALG_HS256,
                                         RELAYD_KEY_VERIFY, &key, &len, err,
                                         sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "chmod 600"));
  assert_int_equal(chmod(path, 0600), 0);
  assert_int_equal(relayd_token_key_load(path, RELAYD_ALG_HS256,
                                         RELAYD_KEY_VERIFY, &key, &len, err,
                                         sizeof(err)),
                   0);
  assert_int_equal(len, strlen(SECRET));
  assert_memory_equal(key, SECRET, len);
  free(key);
  rt_write_file(dir, "pub.pem", ec_key.pub, strlen(ec_key.pub), 0644, path,
                sizeof(path));
  assert_int_equal(relayd_token_key_load(path, RELAYD_ALG_ES256,
                                         RELAYD_KEY_VERIFY, &key, &len, err,
                                         sizeof(err)),
                   0);
  free(key);
  assert_int_equal(relayd_token_key_load("/nonexistent/key", RELAYD_ALG_ES256,
                                         RELAYD_KEY_VERIFY, &key, &len, err,
                                         sizeof(err)),
                   -1);
  rt_rmdir(dir);
}

static void test_token_mint_and_scopes(void **state) {
  relayd_token_mint_t m;
  unsigned s = 0;
  char err[256], *tok = NULL;
  (void)state;
  assert_int_equal(relayd_token_scopes_parse("bind", &s), 0);
  assert_int_equal(s, RELAYD_SCOPE_BIND);
  assert_int_equal(relayd_token_scopes_parse("connect", &s), 0);
  assert_int_equal(s, RELAYD_SCOPE_CONNECT);
  assert_int_equal(relayd_token_scopes_parse("bind,connect", &s), 0);
  assert_int_equal(s, RELAYD_SCOPE_BIND | RELAYD_SCOPE_CONNECT);
  assert_int_equal(relayd_token_scopes_parse("connect bind", &s), 0);
  assert_int_equal(relayd_token_scopes_parse("", &s), -1);
  assert_int_equal(relayd_token_scopes_parse("bind,admin", &s), -1);
  memset(&m, 0, sizeof(m));
  m.alg = RELAYD_ALG_HS256;
  m.key = (const unsigned char *)SECRET;
  m.keylen = strlen(SECRET);
  m.scopes = RELAYD_SCOPE_BIND;
  m.ttl_s = 10;
  m.now = NOW;
  assert_int_equal(relayd_token_mint(&m, &tok, err, sizeof(err)), -1);
  m.audience = AUD;
  m.ttl_s = 0;
  assert_int_equal(relayd_token_mint(&m, &tok, err, sizeof(err)), -1);
  m.ttl_s = 10;
  m.subject = "bad\x01sub";
  assert_int_equal(relayd_token_mint(&m, &tok, err, sizeof(err)), -1);
  m.subject = NULL;
  m.key = (const unsigned char *)ec_key.priv;
  m.keylen = strlen(ec_key.priv);
  assert_int_equal(relayd_token_mint(&m, &tok, err, sizeof(err)), -1);
  assert_null(tok);
}

/* run_cmd runs the token subcommand with stdout captured into |out|. */
static int run_cmd(char **argv, int argc, char *out, size_t cap) {
  char dir[256], path[512];
  int saved, fd, rv;
  ssize_t n;
  rt_tmpdir(dir, sizeof(dir));
  snprintf(path, sizeof(path), "%s/out", dir);
  fflush(stdout);
  saved = dup(1);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0 && saved >= 0);
  dup2(fd, 1);
  close(fd);
  rv = relayd_token_cmd(argc, argv, NULL);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  fd = open(path, O_RDONLY);
  n = read(fd, out, cap - 1);
  close(fd);
  out[n > 0 ? n : 0] = '\0';
  rt_rmdir(dir);
  return rv;
}

static void test_token_cmd(void **state) {
  relayd_token_verifier_t v;
  char dir[256], secret[512], keyfile[512], out[4096];
  char *argv[16];
  (void)state;
  rt_tmpdir(dir, sizeof(dir));
  rt_write_file(dir, "s", SECRET, strlen(SECRET), 0600, secret, sizeof(secret));
  rt_write_file(dir, "k.pem", ec_key.priv, strlen(ec_key.priv), 0600, keyfile,
                sizeof(keyfile));
  argv[0] = "token";
  argv[1] = "--scope";
  argv[2] = "bind,connect";
  argv[3] = "--aud";
  argv[4] = AUD;
  argv[5] = "--ttl";
  argv[6] = "600";
  argv[7] = "--secret-file";
  argv[8] = secret;
  argv[9] = "--sub";
  argv[10] = "cam";
  argv[11] = NULL;
  assert_int_equal(run_cmd(argv, 11, out, sizeof(out)), 0);
  out[strcspn(out, "\n")] = '\0';
  hs_verifier(&v, NULL);
  assert_int_equal(relayd_token_verify(&v, out, (int64_t)time(NULL),
                                       RELAYD_SCOPE_BIND, NULL),
                   RELAYD_TOKEN_OK);
  relayd_token_verifier_free(&v);
  /* With a private key, the algorithm follows the key. */
  argv[7] = "--key";
  argv[8] = keyfile;
  assert_int_equal(run_cmd(argv, 11, out, sizeof(out)), 0);
  assert_non_null(strstr(out, "eyJhbGciOiJFUzI1NiI")); /* {"alg":"ES256" */
  /* Bad scope, bad ttl, missing key, both keys. */
  argv[2] = "admin";
  assert_int_equal(run_cmd(argv, 11, out, sizeof(out)), 2);
  argv[2] = "bind";
  argv[6] = "0";
  assert_int_equal(run_cmd(argv, 11, out, sizeof(out)), 2);
  argv[6] = "600";
  assert_int_equal(run_cmd(argv, 7, out, sizeof(out)), 2);
  argv[11] = "--secret-file";
  argv[12] = secret;
  assert_int_equal(run_cmd(argv, 13, out, sizeof(out)), 2);
  rt_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_token_valid_hs256),
      cmocka_unit_test(test_token_valid_es256_rs256),
      cmocka_unit_test(test_token_expired),
      cmocka_unit_test(test_token_not_yet_valid),
      cmocka_unit_test(test_token_wrong_audience),
      cmocka_unit_test(test_token_wrong_issuer),
      cmocka_unit_test(test_token_wrong_scope),
      cmocka_unit_test(test_token_bad_signature),
      cmocka_unit_test(test_token_alg_none),
      cmocka_unit_test(test_token_alg_mismatch),
      cmocka_unit_test(test_token_malformed),
      cmocka_unit_test(test_token_names),
      cmocka_unit_test(test_token_key_checks),
      cmocka_unit_test(test_token_mint_and_scopes),
      cmocka_unit_test(test_token_cmd),
  };
  return cmocka_run_group_tests_name("relayd_token", tests, setup_keys, NULL);
}
