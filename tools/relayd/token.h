/* SPDX-License-Identifier: MIT */
/*
 * OAuth 2.0 bearer access tokens for qpeer-relay: JWTs (RFC 7519, claims
 * in the spirit of RFC 9068) verified locally with libjwt, and minted for
 * small deployments. Verification is pure apart from the key material: the
 * caller passes `now`. Every refusal has a named reason that is usable as
 * a Proxy-Status `details` value (RFC 9209) and as a metrics label.
 *
 * libjwt 1.10 (Debian 12) offers HS256/384/512, RS256/384/512 and
 * ES256/384/512; it has no EdDSA and refuses any `typ` other than "JWT".
 */
#ifndef QPEER_RELAYD_TOKEN_H
#define QPEER_RELAYD_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* Longest token accepted, in characters. */
#define RELAYD_TOKEN_MAX_LEN 8192
/* Longest audience or issuer the relay is configured with, plus NUL. */
#define RELAYD_TOKEN_NAME_MAX 256
/* Longest `sub` claim kept, plus NUL (longer ones are malformed). */
#define RELAYD_TOKEN_SUB_MAX 128
/* Longest key file read (PEM or shared secret). */
#define RELAYD_TOKEN_KEY_MAX 16384

/* Signature algorithms (JWA names). */
typedef enum {
  RELAYD_ALG_INVALID = 0,
  RELAYD_ALG_HS256,
  RELAYD_ALG_HS384,
  RELAYD_ALG_HS512,
  RELAYD_ALG_RS256,
  RELAYD_ALG_RS384,
  RELAYD_ALG_RS512,
  RELAYD_ALG_ES256,
  RELAYD_ALG_ES384,
  RELAYD_ALG_ES512
} relayd_token_alg;

/* Scopes, as bits; in the `scope` claim they are the words "connect"
 * (CONNECT-UDP tunnels) and "bind" (bound public addresses). */
enum { RELAYD_SCOPE_CONNECT = 1, RELAYD_SCOPE_BIND = 2 };

/* Verification results: XX(enum suffix, name, HTTP status, description).
 * The name goes into Proxy-Status `details` and metric labels. */
#define RELAYD_TOKEN_ERR_MAP(XX)                                               \
  XX(OK, "ok", 200, "token is valid")                                          \
  XX(MISSING, "token_missing", 401, "no bearer token")                         \
  XX(MALFORMED, "token_malformed", 401, "token is not a well-formed JWT")      \
  XX(ALG_NONE, "token_alg_none", 401, "unsigned token (alg none) refused")     \
  XX(ALG_MISMATCH, "token_alg_mismatch", 401,                                  \
     "token algorithm differs from the configured one")                        \
  XX(BAD_SIGNATURE, "token_bad_signature", 401, "signature does not verify")   \
  XX(EXPIRED, "token_expired", 401, "token has expired")                       \
  XX(NOT_YET_VALID, "token_not_yet_valid", 401, "token is not valid yet")      \
  XX(WRONG_AUDIENCE, "token_wrong_audience", 401,                              \
     "token is not meant for this relay (aud)")                                \
  XX(WRONG_ISSUER, "token_wrong_issuer", 401,                                  \
     "token comes from another issuer (iss)")                                  \
  XX(WRONG_SCOPE, "token_wrong_scope", 403,                                    \
     "token scope does not cover this request")

/* clang-format off */
typedef enum {
#define RELAYD_TOKEN_ERR_ENUM(e, n, s, d) RELAYD_TOKEN_##e,
  RELAYD_TOKEN_ERR_MAP(RELAYD_TOKEN_ERR_ENUM)
#undef RELAYD_TOKEN_ERR_ENUM
  RELAYD_TOKEN__COUNT
} relayd_token_err;
/* clang-format on */

/* The verifier: the configured algorithm, key and expected claims. */
typedef struct relayd_token_verifier_s {
  relayd_token_alg alg;                 /* the only algorithm accepted */
  unsigned char *key;                   /* secret or PEM public key (own) */
  size_t keylen;                        /* its length */
  char audience[RELAYD_TOKEN_NAME_MAX]; /* must be in `aud` */
  char issuer[RELAYD_TOKEN_NAME_MAX];   /* must equal `iss`; "" = any */
  uint32_t leeway_s;                    /* clock skew allowed, seconds */
} relayd_token_verifier_t;

/* What a valid token grants. */
typedef struct relayd_token_claims_s {
  char sub[RELAYD_TOKEN_SUB_MAX]; /* `sub`, or "" */
  unsigned scopes;                /* RELAYD_SCOPE_* bits */
  int64_t exp;                    /* `exp`, seconds since the epoch */
  const char *detail;             /* static text on refusal, or NULL */
} relayd_token_claims_t;

/* relayd_token_alg_parse maps a JWA name ("HS256", ...) to |*palg|.
 * Returns 0, or -1 for an unknown or unsupported name (EdDSA, none). */
int relayd_token_alg_parse(const char *name, relayd_token_alg *palg);

/* relayd_token_alg_name returns the JWA name of |alg| ("?" if invalid). */
const char *relayd_token_alg_name(relayd_token_alg alg);

/* relayd_token_alg_is_hmac says whether |alg| uses a shared secret. */
int relayd_token_alg_is_hmac(relayd_token_alg alg);

/* relayd_token_err_name returns the reason's name, e.g. "token_expired". */
const char *relayd_token_err_name(relayd_token_err err);

/* relayd_token_strerror returns a one-line description of |err|. */
const char *relayd_token_strerror(relayd_token_err err);

/* relayd_token_err_status returns the HTTP status for |err|: 401 for
 * missing or invalid tokens, 403 for a valid token without the scope. */
int relayd_token_err_status(relayd_token_err err);

/* Key roles for relayd_token_key_load. */
typedef enum {
  RELAYD_KEY_VERIFY = 1, /* secret, or PEM public key (SPKI) */
  RELAYD_KEY_SIGN = 2    /* secret, or PEM private key */
} relayd_token_key_role;

/*
 * relayd_token_key_load reads the key for |alg| from |path| into a new
 * buffer (*pkey, *pkeylen; free() it). Shared secrets are the file's
 * contents without trailing white space and must be at least as long as
 * the hash (32, 48 or 64 bytes). Secrets and private keys must not be
 * accessible to group or others. A verify key for RS and ES must be a PEM
 * public key, never a private one. With RELAYD_ALG_INVALID the contents
 * are read as they are and not checked (private keys whose type is to
 * choose the algorithm). Returns 0, or -1 with a message in |err|
 * (|errlen| bytes).
 */
int relayd_token_key_load(const char *path, relayd_token_alg alg,
                          relayd_token_key_role role, unsigned char **pkey,
                          size_t *pkeylen, char *err, size_t errlen);

/*
 * relayd_token_key_check checks |key| for |alg| and |role| as
 * relayd_token_key_load does, minus the file. Returns 0, or -1 with a
 * message in |err|.
 */
int relayd_token_key_check(relayd_token_alg alg, relayd_token_key_role role,
                           const unsigned char *key, size_t keylen, char *err,
                           size_t errlen);

/* relayd_token_alg_for_key picks the algorithm for a PEM private key:
 * RS256 for RSA, ES256/384/512 for P-256/384/521. Returns 0 or -1. */
int relayd_token_alg_for_key(const unsigned char *key, size_t keylen,
                             relayd_token_alg *palg);

/*
 * relayd_token_verifier_init prepares |v| to accept tokens signed with
 * |alg| and |key| (copied), whose `aud` contains |audience| and, if
 * |issuer| is not NULL or "", whose `iss` equals it; `exp` and `nbf` are
 * checked with |leeway_s| seconds of tolerance. Returns 0, or -1 with a
 * message in |err| (bad key, empty audience, names too long, no memory).
 */
int relayd_token_verifier_init(relayd_token_verifier_t *v, relayd_token_alg alg,
                               const unsigned char *key, size_t keylen,
                               const char *audience, const char *issuer,
                               uint32_t leeway_s, char *err, size_t errlen);

/* relayd_token_verifier_free releases the key of |v| (wiped first). */
void relayd_token_verifier_free(relayd_token_verifier_t *v);

/*
 * relayd_token_verify checks |token| (NUL-terminated, without "Bearer ")
 * at time |now| (seconds since the epoch) and requires every scope bit in
 * |need|. The header is checked before the signature: `alg` must be the
 * configured one ("none" and any other are refused), and `crit` is not
 * supported. Then the signature, `exp` (required), `nbf`, `iss`, `aud`
 * and `scope`, in that order. |claims| (may be NULL) receives the grant
 * on success and a detail text on failure. Returns RELAYD_TOKEN_OK or the
 * first failed check.
 */
relayd_token_err relayd_token_verify(const relayd_token_verifier_t *v,
                                     const char *token, int64_t now,
                                     unsigned need,
                                     relayd_token_claims_t *claims);

/* What to put in a minted token. */
typedef struct relayd_token_mint_s {
  relayd_token_alg alg;     /* signature algorithm */
  const unsigned char *key; /* secret or PEM private key */
  size_t keylen;            /* its length */
  const char *audience;     /* `aud` (required) */
  const char *issuer;       /* `iss`, or NULL */
  const char *subject;      /* `sub`, or NULL */
  unsigned scopes;          /* RELAYD_SCOPE_* bits (at least one) */
  int64_t now;              /* `iat` and `nbf` */
  uint32_t ttl_s;           /* `exp` = now + ttl_s (at least 1) */
} relayd_token_mint_t;

/*
 * relayd_token_mint signs a new token as described by |m|, with a random
 * `jti`, into *ptoken (free() it). Returns 0, or -1 with a message in
 * |err|.
 */
int relayd_token_mint(const relayd_token_mint_t *m, char **ptoken, char *err,
                      size_t errlen);

/* relayd_token_scopes_parse maps "bind", "connect", "bind,connect" (also
 * space-separated) to scope bits. Returns 0, or -1 if a word is unknown
 * or none is given. */
int relayd_token_scopes_parse(const char *text, unsigned *pscopes);

/* Defaults of the token subcommand, taken from the relay's configuration
 * (all may be NULL). */
typedef struct relayd_token_cmd_defaults_s {
  const char *audience;    /* --aud */
  const char *issuer;      /* --iss */
  const char *secret_file; /* --secret-file */
  relayd_token_alg alg;    /* --alg (RELAYD_ALG_INVALID: none) */
} relayd_token_cmd_defaults_t;

/*
 * relayd_token_cmd implements `qpeer-relay token` (argv[0] is "token"):
 * --scope bind|connect|bind,connect, --aud AUD, --ttl SECONDS, --key FILE
 * (a PEM private key) or --secret-file FILE, and optionally --alg, --iss
 * and --sub. It prints the token on stdout. |defaults| (may be NULL) fill
 * what the command line leaves out. Returns the process exit status.
 */
int relayd_token_cmd(int argc, char **argv,
                     const relayd_token_cmd_defaults_t *defaults);

#endif /* QPEER_RELAYD_TOKEN_H */
