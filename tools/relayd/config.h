/* SPDX-License-Identifier: MIT */
/*
 * Configuration of qpeer-relay: an INI file (read with libinih) merged
 * with command-line flags, strictly validated with line-numbered errors,
 * and safe defaults (authentication on, a generated HS256 secret) when
 * nothing is configured. Sections and keys are listed in doc/relay.md
 * and by relayd_config_usage().
 */
#ifndef QPEER_RELAYD_CONFIG_H
#define QPEER_RELAYD_CONFIG_H

#include <stdio.h>
#include <sys/socket.h>

#include "policy.h"
#include "qpeer/identity.h"
#include "quota.h"
#include "token.h"

/* Bounds. */
#define RELAYD_MAX_LISTEN 8
#define RELAYD_MAX_PUBLIC 8
#define RELAYD_MAX_PEERS 256
#define RELAYD_PATH_MAX 1024
#define RELAYD_MAX_ERRORS 32
#define RELAYD_ERROR_LEN 320
/* Largest configuration file read. */
#define RELAYD_CONFIG_MAX_SIZE (1024 * 1024)

/* Default UDP port, audience and state directory. */
#define RELAYD_DEFAULT_PORT 443
#define RELAYD_DEFAULT_AUDIENCE "qpeer-relay"
#define RELAYD_DEFAULT_STATE_DIR "/var/lib/qpeer-relay"
/* Name of the generated secret inside the state directory. */
#define RELAYD_SECRET_FILE_NAME "jwt-hs256.secret"

/* The value of auth= that turns access control off. It is long and loud
 * on purpose: an open relay is refused unless asked for in these words. */
#define RELAYD_AUTH_NONE_NAME "none-INSECURE-open-relay"

/* How clients are authenticated. */
typedef enum {
  RELAYD_AUTH_JWT = 1,    /* a bearer token */
  RELAYD_AUTH_PEERID = 2, /* a client peer ID on the allowlist (mTLS) */
  RELAYD_AUTH_BOTH = 3,   /* both of them */
  RELAYD_AUTH_EITHER = 4, /* one of them */
  RELAYD_AUTH_NONE = 5    /* nobody: an open relay */
} relayd_auth_mode;

/* Log levels. */
typedef enum {
  RELAYD_LOG_ERROR = 0,
  RELAYD_LOG_WARN = 1,
  RELAYD_LOG_INFO = 2,
  RELAYD_LOG_DEBUG = 3
} relayd_log_level;

/* Keys whose line is remembered, for duplicate and cross-field errors. */
typedef enum {
  RELAYD_K_CERT = 0,
  RELAYD_K_KEY,
  RELAYD_K_STATE_DIR,
  RELAYD_K_AUTH,
  RELAYD_K_JWT_ALG,
  RELAYD_K_JWT_KEY,
  RELAYD_K_JWT_SECRET_FILE,
  RELAYD_K_AUDIENCE,
  RELAYD_K_ISSUER,
  RELAYD_K_JWT_LEEWAY,
  RELAYD_K_PROXY_NAME,
  RELAYD_K_LOG_LEVEL,
  RELAYD_K_POLICY_DEFAULT,
  RELAYD_K_BANDWIDTH,
  RELAYD_K_BURST,
  RELAYD_K_MAX_TUNNELS_PER_CLIENT,
  RELAYD_K_MAX_BINDS_PER_CLIENT,
  RELAYD_K_IDLE_TIMEOUT,
  RELAYD_K_MAX_CLIENTS,
  RELAYD_K_MAX_TUNNELS,
  RELAYD_K_MAX_BINDS,
  RELAYD_K_METRICS_LISTEN,
  RELAYD_K_METRICS_ALLOW_REMOTE,
  RELAYD_K_LISTEN,      /* repeatable: line of the first */
  RELAYD_K_PUBLIC_ADDR, /* repeatable */
  RELAYD_K_ALLOW_PEER,  /* repeatable */
  RELAYD_K__COUNT
} relayd_config_key;

typedef struct relayd_config_s {
  /* [relay] */
  struct sockaddr_storage listen[RELAYD_MAX_LISTEN];      /* UDP addresses */
  size_t nlisten;                                         /* how many */
  struct sockaddr_storage public_addr[RELAYD_MAX_PUBLIC]; /* advertised */
  size_t npublic_addr;                                    /* how many */
  char cert[RELAYD_PATH_MAX];            /* PEM chain, or "" (self-signed) */
  char key[RELAYD_PATH_MAX];             /* its PEM key */
  char state_dir[RELAYD_PATH_MAX];       /* generated secret and identity */
  relayd_auth_mode auth;                 /* client authentication */
  relayd_token_alg jwt_alg;              /* token algorithm */
  char jwt_key[RELAYD_PATH_MAX];         /* PEM public key (RS*, ES*) */
  char jwt_secret_file[RELAYD_PATH_MAX]; /* shared secret (HS*) */
  char audience[RELAYD_TOKEN_NAME_MAX];  /* required in `aud` */
  char issuer[RELAYD_TOKEN_NAME_MAX];    /* required `iss`, or "" */
  uint32_t jwt_leeway_s;                 /* clock skew tolerated */
  qpeer_peer_id_t allow_peer[RELAYD_MAX_PEERS]; /* client allowlist */
  size_t nallow_peer;                           /* how many */
  char proxy_name[64];                          /* name in Proxy-Status */
  relayd_log_level log_level;                   /* verbosity */
  /* [policy] */
  relayd_policy_t policy; /* target rules (own addresses added later) */
  /* [quota] */
  relayd_quota_config_t quota; /* limits; table_size from max_clients */
  uint32_t idle_timeout_s;     /* tunnels and bindings */
  /* [metrics] */
  int metrics_enabled;                  /* listen= given */
  struct sockaddr_storage metrics_addr; /* TCP address */
  int metrics_allow_remote;             /* non-loopback allowed */
  /* Provenance. */
  char config_path[RELAYD_PATH_MAX]; /* file read, or "" */
  int lines[RELAYD_K__COUNT];        /* line each key was set on, or 0 */
  int listen_from_flags;             /* --listen replaced the file's */
  int secret_generated;              /* relayd_config_ensure_secret made it */
} relayd_config_t;

/* Errors collected while reading and validating. */
typedef struct relayd_config_errors_s {
  char msg[RELAYD_MAX_ERRORS][RELAYD_ERROR_LEN]; /* "FILE:LINE: text" */
  size_t n;                                      /* kept */
  size_t dropped;                                /* beyond the bound */
} relayd_config_errors_t;

/* relayd_config_defaults fills |c| with the defaults: listen [::]:443
 * (dual-stack), auth=jwt with HS256 and a secret to be generated in the
 * state directory, audience "qpeer-relay", the default-deny target
 * classes, and the default quotas. */
void relayd_config_defaults(relayd_config_t *c);

/*
 * relayd_config_parse_string reads INI |text| into |c|, naming it |name|
 * in errors. Every bad line yields one "NAME:LINE: ..." error in |errs|:
 * syntax errors, unknown sections or keys, bad values, repeated keys that
 * may appear once. Returns 0, or -1 if any error was found.
 */
int relayd_config_parse_string(relayd_config_t *c, const char *text,
                               const char *name, relayd_config_errors_t *errs);

/* relayd_config_parse_file reads |path| (at most RELAYD_CONFIG_MAX_SIZE
 * bytes) like relayd_config_parse_string. Returns 0 or -1. */
int relayd_config_parse_file(relayd_config_t *c, const char *path,
                             relayd_config_errors_t *errs);

/*
 * relayd_config_parse_args applies the command line of `qpeer-relay
 * serve` (argv[0] is the command): --config FILE is read first, wherever
 * it appears; then --listen ADDR:PORT (repeatable; replaces the file's
 * list), --metrics ADDR:PORT, --state-dir DIR, --cert FILE, --key FILE,
 * --log-level LEVEL. *phelp is set for --help (nothing else is done).
 * Returns 0, or -1 with errors in |errs|.
 */
int relayd_config_parse_args(relayd_config_t *c, int argc, char **argv,
                             relayd_config_errors_t *errs, int *phelp);

/*
 * relayd_config_validate checks the configuration as a whole (keys and
 * algorithms that belong together, allowlists, metrics on loopback,
 * quota ranges) and fills in derived values (burst, table size). Errors
 * cite the line of the key involved where there is one. Returns 0 or -1.
 */
int relayd_config_validate(relayd_config_t *c, relayd_config_errors_t *errs);

/*
 * relayd_config_ensure_secret makes sure a configuration that uses HS*
 * tokens without a jwt_secret_file has one: STATE_DIR/jwt-hs256.secret,
 * created (with the directory, mode 0700) holding 64 random hex digits,
 * mode 0600, unless it exists. Sets c->secret_generated when it created
 * the file. Returns 0 or -1.
 */
int relayd_config_ensure_secret(relayd_config_t *c,
                                relayd_config_errors_t *errs);

/* relayd_config_make_state_dir creates the state directory (and its
 * parents, mode 0700) if missing. Returns 0 or -1. */
int relayd_config_make_state_dir(const relayd_config_t *c,
                                 relayd_config_errors_t *errs);

/* relayd_config_auth_name returns the config word of |auth|. */
const char *relayd_config_auth_name(relayd_auth_mode auth);

/* relayd_config_uses_jwt / _uses_peerid say whether |c| checks tokens or
 * peer IDs at all. */
int relayd_config_uses_jwt(const relayd_config_t *c);
int relayd_config_uses_peerid(const relayd_config_t *c);

/* relayd_parse_hostport parses "IPv4:PORT" or "[IPv6]:PORT" (port 0..65535;
 * 0 picks one). Returns 0 or -1. */
int relayd_parse_hostport(const char *text, struct sockaddr_storage *ss);

/* relayd_format_hostport writes |sa| as "IPv4:PORT" or "[IPv6]:PORT". */
char *relayd_format_hostport(const struct sockaddr *sa, char *buf, size_t len);

/* relayd_config_errors_print writes every error to |f|, one a line. */
void relayd_config_errors_print(const relayd_config_errors_t *errs, FILE *f);

/* relayd_config_usage writes the `serve` usage and the config keys. */
void relayd_config_usage(FILE *f);

#endif /* QPEER_RELAYD_CONFIG_H */
