/* SPDX-License-Identifier: MIT */
/*
 * `qpeer-relay token`: mints an access token for small deployments that
 * have no OAuth authorization server. The signing key never leaves this
 * process; the token goes to stdout, diagnostics to stderr.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "token.h"

/* Longest lifetime a minted token may have: one year. */
#define TOKEN_TTL_MAX (366u * 24 * 3600)

static void usage(FILE *f) {
  fprintf(f,
          "usage: qpeer-relay token --scope SCOPES --aud AUDIENCE\n"
          "                         (--secret-file FILE | --key FILE)\n"
          "                         [--ttl SECONDS] [--sub NAME] [--iss ISSUER]"
          "\n"
          "                         [--alg ALG] [--config FILE]\n"
          "\n"
          "Prints a signed JWT access token for qpeer-relay on stdout.\n"
          "\n"
          "  --scope S        bind, connect, or bind,connect\n"
          "  --aud A          audience: the relay's configured audience\n"
          "  --ttl N          lifetime in seconds (default 3600, at most "
          "%u)\n"
          "  --secret-file F  shared secret (HS256/384/512), mode 0600\n"
          "  --key F          PEM private key (RS256, ES256/384/512)\n"
          "  --alg A          algorithm (default: HS256 with a secret, or\n"
          "                   chosen from the key)\n"
          "  --sub NAME       subject: who the token is for (quota key)\n"
          "  --iss I          issuer, if the relay checks it\n"
          "  --config FILE    take audience, issuer, algorithm and secret\n"
          "                   from the relay's configuration\n",
          TOKEN_TTL_MAX);
}

static int parse_ttl(const char *s, uint32_t *pttl) {
  char *end;
  unsigned long v;
  if (!s || !*s || *s == '-')
    return -1;
  v = strtoul(s, &end, 10);
  if (*end || v == 0 || v > TOKEN_TTL_MAX)
    return -1;
  *pttl = (uint32_t)v;
  return 0;
}

int relayd_token_cmd(int argc, char **argv,
                     const relayd_token_cmd_defaults_t *defaults) {
  static const struct option opts[] = {
      {"scope", required_argument, NULL, 's'},
      {"aud", required_argument, NULL, 'a'},
      {"ttl", required_argument, NULL, 't'},
      {"key", required_argument, NULL, 'k'},
      {"secret-file", required_argument, NULL, 'f'},
      {"alg", required_argument, NULL, 'A'},
      {"sub", required_argument, NULL, 'u'},
      {"iss", required_argument, NULL, 'i'},
      {"config", required_argument, NULL, 'c'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  relayd_token_mint_t m;
  const char *key_file = NULL, *secret_file = NULL;
  unsigned char *key = NULL;
  size_t keylen = 0;
  char err[256], *token = NULL;
  int c, rv;
  memset(&m, 0, sizeof(m));
  m.ttl_s = 3600;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 's':
      if (relayd_token_scopes_parse(optarg, &m.scopes) != 0) {
        fprintf(stderr,
                "qpeer-relay token: bad --scope '%s' (bind, connect "
                "or bind,connect)\n",
                optarg);
        return 2;
      }
      break;
    case 'a':
      m.audience = optarg;
      break;
    case 't':
      if (parse_ttl(optarg, &m.ttl_s) != 0) {
        fprintf(stderr, "qpeer-relay token: bad --ttl '%s' (1..%u)\n", optarg,
                TOKEN_TTL_MAX);
        return 2;
      }
      break;
    case 'k':
      key_file = optarg;
      break;
    case 'f':
      secret_file = optarg;
      break;
    case 'A':
      if (relayd_token_alg_parse(optarg, &m.alg) != 0) {
        fprintf(stderr, "qpeer-relay token: unsupported --alg '%s'\n", optarg);
        return 2;
      }
      break;
    case 'u':
      m.subject = optarg;
      break;
    case 'i':
      m.issuer = optarg;
      break;
    case 'c':
      break; /* read by the caller, which passes |defaults| */
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "qpeer-relay token: unexpected argument '%s'\n",
            argv[optind]);
    return 2;
  }
  if (defaults) {
    if (!m.audience)
      m.audience = defaults->audience;
    if (!m.issuer)
      m.issuer = defaults->issuer;
    if (!key_file && !secret_file)
      secret_file = defaults->secret_file;
    if (m.alg == RELAYD_ALG_INVALID && !key_file)
      m.alg = defaults->alg;
  }
  if (!m.scopes || !m.audience || (!key_file == !secret_file)) {
    fprintf(stderr, "qpeer-relay token: need --scope, --aud and exactly one "
                    "of --key or --secret-file\n");
    usage(stderr);
    return 2;
  }
  if (secret_file) {
    if (m.alg == RELAYD_ALG_INVALID)
      m.alg = RELAYD_ALG_HS256;
    if (!relayd_token_alg_is_hmac(m.alg)) {
      fprintf(stderr, "qpeer-relay token: --secret-file needs HS256, HS384 "
                      "or HS512\n");
      return 2;
    }
  }
  /* Without --alg the key is read unchecked, its type picks the
   * algorithm, and relayd_token_mint checks it. */
  rv = relayd_token_key_load(secret_file ? secret_file : key_file, m.alg,
                             RELAYD_KEY_SIGN, &key, &keylen, err, sizeof(err));
  if (rv != 0) {
    fprintf(stderr, "qpeer-relay token: %s\n", err);
    return 1;
  }
  if (m.alg == RELAYD_ALG_INVALID &&
      relayd_token_alg_for_key(key, keylen, &m.alg) != 0) {
    fprintf(stderr, "qpeer-relay token: %s: not an RSA or EC private key\n",
            key_file);
    free(key);
    return 1;
  }
  m.key = key;
  m.keylen = keylen;
  m.now = (int64_t)time(NULL);
  rv = relayd_token_mint(&m, &token, err, sizeof(err));
  free(key);
  if (rv != 0) {
    fprintf(stderr, "qpeer-relay token: %s\n", err);
    return 1;
  }
  printf("%s\n", token);
  free(token);
  return 0;
}
