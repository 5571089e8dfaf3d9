/* SPDX-License-Identifier: MIT */
/*
 * Configuration: defaults, the INI reader (libinih, fed line by line by
 * our own reader so that every line is numbered and checked), the key
 * handlers, command-line flags, whole-configuration validation, and the
 * generated shared secret.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- errors -------------------------------------------------------------- */

static void add_err(relayd_config_errors_t *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_err(relayd_config_errors_t *e, const char *fmt, ...) {
  va_list ap;
  if (!e)
    return;
  if (e->n >= RELAYD_MAX_ERRORS) {
    e->dropped++;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(e->msg[e->n++], RELAYD_ERROR_LEN, fmt, ap);
  va_end(ap);
}

void relayd_config_errors_print(const relayd_config_errors_t *errs, FILE *f) {
  size_t i;
  for (i = 0; i < errs->n; i++)
    fprintf(f, "%s\n", errs->msg[i]);
  if (errs->dropped)
    fprintf(f, "(%zu more errors not shown)\n", errs->dropped);
}

/* ---- small parsers ------------------------------------------------------- */

int relayd_parse_hostport(const char *text, struct sockaddr_storage *ss) {
  char host[INET6_ADDRSTRLEN + 2];
  const char *colon, *port;
  char *end;
  unsigned long p;
  size_t hlen;
  memset(ss, 0, sizeof(*ss));
  if (!text)
    return -1;
  if (text[0] == '[') {
    const char *rb = strchr(text, ']');
    if (!rb || rb[1] != ':')
      return -1;
    hlen = (size_t)(rb - text - 1);
    port = rb + 2;
    if (hlen == 0 || hlen >= sizeof(host))
      return -1;
    memcpy(host, text + 1, hlen);
    host[hlen] = '\0';
  } else {
    colon = strrchr(text, ':');
    if (!colon || strchr(text, ':') != colon)
      return -1; /* IPv6 needs brackets */
    hlen = (size_t)(colon - text);
    port = colon + 1;
    if (hlen == 0 || hlen >= sizeof(host))
      return -1;
    memcpy(host, text, hlen);
    host[hlen] = '\0';
  }
  if (*port < '0' || *port > '9')
    return -1;
  errno = 0;
  p = strtoul(port, &end, 10);
  if (*end || errno || p > 65535 || strlen(port) > 5)
    return -1;
  if (text[0] == '[') {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
      return -1;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)p);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
      return -1;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)p);
  }
  return 0;
}

char *relayd_format_hostport(const struct sockaddr *sa, char *buf, size_t len) {
  char a[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
    snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
  } else if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
    snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
  } else {
    snprintf(buf, len, "?");
  }
  return buf;
}

static int parse_ip(const char *text, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  if (inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
    ss->ss_family = AF_INET;
    return 0;
  }
  if (inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
    ss->ss_family = AF_INET6;
    return 0;
  }
  return -1;
}

/* parse_u64 reads a decimal number with an optional multiplier suffix when
 * |bytes| is set: k, M, G (powers of 1000) or Ki, Mi, Gi (of 1024). */
static int parse_u64(const char *s, int bytes, uint64_t max, uint64_t *pv) {
  unsigned long long v;
  uint64_t mul = 1;
  char *end;
  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno)
    return -1;
  if (*end && bytes) {
    static const struct {
      const char *sfx; /* suffix */
      uint64_t mul;    /* its multiplier */
    } sfx[] = {{"k", 1000ull},  {"M", 1000000ull},  {"G", 1000000000ull},
               {"Ki", 1024ull}, {"Mi", 1048576ull}, {"Gi", 1073741824ull}};
    size_t i;
    for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++)
      if (!strcmp(end, sfx[i].sfx))
        break;
    if (i == sizeof(sfx) / sizeof(sfx[0]))
      return -1;
    mul = sfx[i].mul;
    end += strlen(end);
  }
  if (*end || v > max / mul)
    return -1;
  *pv = (uint64_t)v * mul;
  return 0;
}

static int parse_u32_range(const char *s, uint32_t lo, uint32_t hi,
                           uint32_t *pv) {
  uint64_t v;
  if (parse_u64(s, 0, hi, &v) != 0 || v < lo)
    return -1;
  *pv = (uint32_t)v;
  return 0;
}

static int parse_bool(const char *s, int *pv) {
  if (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcmp(s, "1") ||
      !strcasecmp(s, "on"))
    *pv = 1;
  else if (!strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcmp(s, "0") ||
           !strcasecmp(s, "off"))
    *pv = 0;
  else
    return -1;
  return 0;
}

static const char *const auth_names[] = {
    NULL, "jwt", "peerid", "both", "either", RELAYD_AUTH_NONE_NAME};

const char *relayd_config_auth_name(relayd_auth_mode auth) {
  return auth >= RELAYD_AUTH_JWT && auth <= RELAYD_AUTH_NONE ? auth_names[auth]
                                                             : "?";
}

static int parse_auth(const char *s, relayd_auth_mode *pa) {
  int i;
  for (i = RELAYD_AUTH_JWT; i <= RELAYD_AUTH_NONE; i++) {
    if (!strcmp(s, auth_names[i])) {
      *pa = (relayd_auth_mode)i;
      return 0;
    }
  }
  return -1;
}

static int parse_log_level(const char *s, relayd_log_level *pl) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  int i;
  for (i = 0; i < 4; i++) {
    if (!strcmp(s, names[i])) {
      *pl = (relayd_log_level)i;
      return 0;
    }
  }
  return -1;
}

int relayd_config_uses_jwt(const relayd_config_t *c) {
  return c->auth == RELAYD_AUTH_JWT || c->auth == RELAYD_AUTH_BOTH ||
         c->auth == RELAYD_AUTH_EITHER;
}

int relayd_config_uses_peerid(const relayd_config_t *c) {
  return c->auth == RELAYD_AUTH_PEERID || c->auth == RELAYD_AUTH_BOTH ||
         c->auth == RELAYD_AUTH_EITHER;
}

/* ---- defaults ------------------------------------------------------------ */

void relayd_config_defaults(relayd_config_t *c) {
  struct sockaddr_in6 *s6;
  memset(c, 0, sizeof(*c));
  s6 = (struct sockaddr_in6 *)&c->listen[0];
  s6->sin6_family = AF_INET6;
  s6->sin6_addr = in6addr_any;
  s6->sin6_port = htons(RELAYD_DEFAULT_PORT);
  c->nlisten = 1;
  snprintf(c->state_dir, sizeof(c->state_dir), "%s", RELAYD_DEFAULT_STATE_DIR);
  c->auth = RELAYD_AUTH_JWT;
  c->jwt_alg = RELAYD_ALG_HS256;
  snprintf(c->audience, sizeof(c->audience), "%s", RELAYD_DEFAULT_AUDIENCE);
  c->jwt_leeway_s = 30;
  snprintf(c->proxy_name, sizeof(c->proxy_name), "qpeer-relay");
  c->log_level = RELAYD_LOG_INFO;
  relayd_policy_init(&c->policy);
  c->quota.max_tunnels_per_client = 16;
  c->quota.max_binds_per_client = 4;
  c->quota.max_clients = 1000;
  c->quota.max_tunnels = 10000;
  c->quota.max_binds = 10000;
  c->idle_timeout_s = 120;
}

/* ---- the INI reader ------------------------------------------------------ */

typedef struct {
  relayd_config_t *c;           /* being filled */
  relayd_config_errors_t *errs; /* collected errors */
  const char *name;             /* file name for messages */
  const char *p, *end;          /* rest of the text */
  int lineno;                   /* current line */
  int bad_section;              /* keys follow a refused [section] */
  int listen_seen;              /* a listen= line was read */
  char msg[128];                /* room for a formatted error */
  int pending;                  /* key whose line to record, or -1 */
} reader;

static const char *const sections[] = {"relay", "policy", "quota", "metrics"};

static int known_section(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
    if (strlen(sections[i]) == n && !memcmp(sections[i], s, n))
      return 1;
  return 0;
}

/* check_line checks the syntax of one line (leading white space gone,
 * no newline); returns NULL or an error text. */
static const char *check_line(reader *r, const char *s, size_t n) {
  const char *rb, *t;
  size_t k;
  if (n == 0 || *s == ';' || *s == '#')
    return NULL;
  if (*s == '[') {
    rb = memchr(s, ']', n);
    r->bad_section = 1;
    if (!rb)
      return "section header without ']'";
    for (t = rb + 1; t < s + n && (*t == ' ' || *t == '\t' || *t == '\r'); t++)
      ;
    if (t < s + n && *t != ';' && *t != '#')
      return "text after section header";
    if (!known_section(s + 1, (size_t)(rb - s - 1)))
      return "unknown section (expected [relay], [policy], [quota] or "
             "[metrics])";
    r->bad_section = 0;
    return NULL;
  }
  k = strcspn(s, "=:");
  if (k >= n || s[k] != '=')
    return "expected 'key = value' or '[section]'";
  if (k == 0)
    return "missing key before '='";
  return NULL;
}

/* read_line is libinih's reader: it hands over one line at a time,
 * without leading white space (so inih never sees a continuation line),
 * and blanks out lines that are too long or malformed after reporting
 * them, so inih's own error paths are never taken. */
static char *read_line(char *str, int num, void *stream) {
  reader *r = stream;
  const char *nl, *s;
  const char *why;
  size_t n;
  if (r->p >= r->end)
    return NULL;
  nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
  s = r->p;
  n = nl ? (size_t)(nl - s) : (size_t)(r->end - s);
  r->p = nl ? nl + 1 : r->end;
  r->lineno++;
  while (n > 0 && (*s == ' ' || *s == '\t')) {
    s++;
    n--;
  }
  while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
    n--;
  why = NULL;
  if (memchr(s, '\0', n))
    why = "NUL byte in line";
  else if (n + 2 > (size_t)num)
    why = "line too long";
  else
    why = check_line(r, s, n);
  if (why) {
    add_err(r->errs, "%s:%d: %s", r->name, r->lineno, why);
    n = 0;
  }
  memcpy(str, s, n);
  str[n] = '\n';
  str[n + 1] = '\0';
  return str;
}

/* ---- key handlers -------------------------------------------------------- */

static int set_path(char *dst, size_t cap, const char *v) {
  if (!*v || strlen(v) >= cap)
    return -1;
  snprintf(dst, cap, "%s", v);
  return 0;
}

/* once reports a key given twice; returns -1 then. Otherwise the key's
 * line is recorded once its value has been accepted (on_key). */
static int once(reader *r, relayd_config_key k, const char *key) {
  if (r->c->lines[k]) {
    add_err(r->errs, "%s:%d: %s already set on line %d", r->name, r->lineno,
            key, r->c->lines[k]);
    return -1;
  }
  r->pending = (int)k;
  return 0;
}

/* string_key stores the value of a key that takes a path or a name. */
static const char *string_key(reader *r, relayd_config_key k, const char *key,
                              const char *v, char *dst, size_t cap) {
  if (once(r, k, key))
    return "";
  if (set_path(dst, cap, v) != 0) {
    snprintf(r->msg, sizeof(r->msg), "%s must be 1..%zu characters", key,
             cap - 1);
    return r->msg;
  }
  return NULL;
}

static const char *relay_key(reader *r, const char *key, const char *v) {
  relayd_config_t *c = r->c;
  struct sockaddr_storage ss;
  if (!strcmp(key, "listen")) {
    if (relayd_parse_hostport(v, &ss) != 0)
      return "listen needs IPv4:PORT or [IPv6]:PORT";
    if (!r->listen_seen) {
      c->nlisten = 0; /* the file replaces the default */
      r->listen_seen = 1;
      c->lines[RELAYD_K_LISTEN] = r->lineno;
    }
    if (c->nlisten >= RELAYD_MAX_LISTEN)
      return "too many listen addresses (at most 8)";
    c->listen[c->nlisten++] = ss;
    return NULL;
  }
  if (!strcmp(key, "public_addr")) {
    if (parse_ip(v, &ss) != 0)
      return "public_addr needs an IPv4 or IPv6 address (no port)";
    if (c->npublic_addr >= RELAYD_MAX_PUBLIC)
      return "too many public addresses (at most 8)";
    if (!c->lines[RELAYD_K_PUBLIC_ADDR])
      c->lines[RELAYD_K_PUBLIC_ADDR] = r->lineno;
    c->public_addr[c->npublic_addr++] = ss;
    return NULL;
  }
  if (!strcmp(key, "allow_peer")) {
    qpeer_peer_id_t pid;
    if (qpeer_peer_id_parse(&pid, v) != 0)
      return "allow_peer needs a peer ID (as printed by 'qpeer id show')";
    if (c->nallow_peer >= RELAYD_MAX_PEERS)
      return "too many allow_peer entries (at most 256)";
    if (!c->lines[RELAYD_K_ALLOW_PEER])
      c->lines[RELAYD_K_ALLOW_PEER] = r->lineno;
    c->allow_peer[c->nallow_peer++] = pid;
    return NULL;
  }
  if (!strcmp(key, "cert"))
    return string_key(r, RELAYD_K_CERT, key, v, c->cert, sizeof(c->cert));
  if (!strcmp(key, "key"))
    return string_key(r, RELAYD_K_KEY, key, v, c->key, sizeof(c->key));
  if (!strcmp(key, "state_dir"))
    return string_key(r, RELAYD_K_STATE_DIR, key, v, c->state_dir,
                      sizeof(c->state_dir));
  if (!strcmp(key, "jwt_key"))
    return string_key(r, RELAYD_K_JWT_KEY, key, v, c->jwt_key,
                      sizeof(c->jwt_key));
  if (!strcmp(key, "jwt_secret_file"))
    return string_key(r, RELAYD_K_JWT_SECRET_FILE, key, v, c->jwt_secret_file,
                      sizeof(c->jwt_secret_file));
  if (!strcmp(key, "auth")) {
    if (once(r, RELAYD_K_AUTH, key))
      return "";
    return parse_auth(v, &c->auth) ? "auth must be jwt, peerid, both, either "
                                     "or " RELAYD_AUTH_NONE_NAME
                                   : NULL;
  }
  if (!strcmp(key, "jwt_alg")) {
    if (once(r, RELAYD_K_JWT_ALG, key))
      return "";
    return relayd_token_alg_parse(v, &c->jwt_alg)
               ? "jwt_alg must be HS256, HS384, HS512, RS256, RS384, RS512, "
                 "ES256, ES384 or ES512 (libjwt 1.10 has no EdDSA)"
               : NULL;
  }
  if (!strcmp(key, "audience"))
    return string_key(r, RELAYD_K_AUDIENCE, key, v, c->audience,
                      sizeof(c->audience));
  if (!strcmp(key, "issuer"))
    return string_key(r, RELAYD_K_ISSUER, key, v, c->issuer, sizeof(c->issuer));
  if (!strcmp(key, "jwt_leeway_s")) {
    if (once(r, RELAYD_K_JWT_LEEWAY, key))
      return "";
    if (parse_u32_range(v, 0, 300, &c->jwt_leeway_s) != 0)
      return "jwt_leeway_s must be 0..300";
    return NULL;
  }
  if (!strcmp(key, "proxy_name")) {
    const char *p;
    if (once(r, RELAYD_K_PROXY_NAME, key))
      return "";
    for (p = v; *p; p++)
      if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("-._", *p)))
        return "proxy_name must be a token (letters, digits, - . _)";
    return set_path(c->proxy_name, sizeof(c->proxy_name), v)
               ? "proxy_name must be 1..63 characters"
               : NULL;
  }
  if (!strcmp(key, "log_level")) {
    if (once(r, RELAYD_K_LOG_LEVEL, key))
      return "";
    if (parse_log_level(v, &c->log_level) != 0)
      return "log_level must be error, warn, info or debug";
    return NULL;
  }
  return "unknown key in [relay]";
}

static const char *policy_key(reader *r, const char *key, const char *v) {
  relayd_config_t *c = r->c;
  relayd_cidr_t cidr;
  if (!strcmp(key, "allow") || !strcmp(key, "deny")) {
    if (relayd_cidr_parse(v, &cidr) != 0)
      return "needs ADDRESS/PREFIX with no host bits set, or an address";
    if ((key[0] == 'a' ? relayd_policy_add_allow(&c->policy, &cidr)
                       : relayd_policy_add_deny(&c->policy, &cidr)) != 0)
      return "too many rules (at most 256 of each)";
    return NULL;
  }
  if (!strcmp(key, "default")) {
    if (once(r, RELAYD_K_POLICY_DEFAULT, key))
      return "";
    if (!strcmp(v, "allow"))
      c->policy.default_deny = 0;
    else if (!strcmp(v, "deny"))
      c->policy.default_deny = 1;
    else
      return "default must be allow or deny";
    return NULL;
  }
  return "unknown key in [policy]";
}

static const char *quota_key(reader *r, const char *key, const char *v) {
  static const struct {
    const char *name;     /* key */
    relayd_config_key id; /* for once() */
    uint32_t lo, hi;      /* range */
  } u32s[] = {
      {"max_tunnels_per_client", RELAYD_K_MAX_TUNNELS_PER_CLIENT, 1, 100000},
      {"max_binds_per_client", RELAYD_K_MAX_BINDS_PER_CLIENT, 1, 100000},
      {"max_clients", RELAYD_K_MAX_CLIENTS, 1, 1000000},
      {"max_tunnels", RELAYD_K_MAX_TUNNELS, 1, 10000000},
      {"max_binds", RELAYD_K_MAX_BINDS, 1, 10000000},
      {"idle_timeout_s", RELAYD_K_IDLE_TIMEOUT, 30, 86400},
  };
  relayd_config_t *c = r->c;
  uint32_t *dst[] = {&c->quota.max_tunnels_per_client,
                     &c->quota.max_binds_per_client,
                     &c->quota.max_clients,
                     &c->quota.max_tunnels,
                     &c->quota.max_binds,
                     &c->idle_timeout_s};
  size_t i;
  if (!strcmp(key, "bandwidth") || !strcmp(key, "burst")) {
    int bw = key[0] == 'b' && key[1] == 'a';
    if (once(r, bw ? RELAYD_K_BANDWIDTH : RELAYD_K_BURST, key))
      return "";
    if (parse_u64(v, 1, RELAYD_QUOTA_MAX_BYTES,
                  bw ? &c->quota.rate : &c->quota.burst) != 0)
      return "needs a byte count up to 2^40, optionally with a suffix k, M, "
             "G (powers of 1000) or Ki, Mi, Gi (powers of 1024)";
    return NULL;
  }
  for (i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++) {
    if (strcmp(key, u32s[i].name) != 0)
      continue;
    if (once(r, u32s[i].id, key))
      return "";
    if (parse_u32_range(v, u32s[i].lo, u32s[i].hi, dst[i]) != 0) {
      snprintf(r->msg, sizeof(r->msg), "%s must be %u..%u", key, u32s[i].lo,
               u32s[i].hi);
      return r->msg;
    }
    return NULL;
  }
  return "unknown key in [quota]";
}

static const char *metrics_key(reader *r, const char *key, const char *v) {
  relayd_config_t *c = r->c;
  if (!strcmp(key, "listen")) {
    if (once(r, RELAYD_K_METRICS_LISTEN, key))
      return "";
    if (relayd_parse_hostport(v, &c->metrics_addr) != 0)
      return "listen needs IPv4:PORT or [IPv6]:PORT";
    c->metrics_enabled = 1;
    return NULL;
  }
  if (!strcmp(key, "allow_remote")) {
    if (once(r, RELAYD_K_METRICS_ALLOW_REMOTE, key))
      return "";
    return parse_bool(v, &c->metrics_allow_remote) ? "allow_remote must be "
                                                     "yes or no"
                                                   : NULL;
  }
  return "unknown key in [metrics]";
}

static int on_key(void *user, const char *section, const char *key,
                  const char *value) {
  reader *r = user;
  const char *why;
  if (r->bad_section)
    return 1; /* the section header was reported */
  r->pending = -1;
  if (!*section)
    why = "key outside any section";
  else if (!*value)
    why = "empty value";
  else if (!strcmp(section, "relay"))
    why = relay_key(r, key, value);
  else if (!strcmp(section, "policy"))
    why = policy_key(r, key, value);
  else if (!strcmp(section, "quota"))
    why = quota_key(r, key, value);
  else
    why = metrics_key(r, key, value);
  if (why && *why)
    add_err(r->errs, "%s:%d: %s: %s", r->name, r->lineno, key, why);
  else if (!why && r->pending >= 0)
    r->c->lines[r->pending] = r->lineno;
  return 1; /* keep going: every bad line gets its error */
}

int relayd_config_parse_string(relayd_config_t *c, const char *text,
                               const char *name, relayd_config_errors_t *errs) {
  reader r;
  size_t before = errs ? errs->n + errs->dropped : 0;
  int rv;
  memset(&r, 0, sizeof(r));
  r.c = c;
  r.errs = errs;
  r.name = name ? name : "config";
  r.p = text;
  r.end = text + strlen(text);
  r.pending = -1;
  if (r.name != c->config_path)
    snprintf(c->config_path, sizeof(c->config_path), "%s", r.name);
  rv = ini_parse_stream(read_line, &r, on_key, &r);
  if (rv < 0)
    add_err(errs, "%s: cannot parse (error %d)", r.name, rv);
  else if (rv > 0 && (!errs || errs->n + errs->dropped == before))
    add_err(errs, "%s:%d: syntax error", r.name, rv);
  return errs && errs->n + errs->dropped > before ? -1 : (rv ? -1 : 0);
}

int relayd_config_parse_file(relayd_config_t *c, const char *path,
                             relayd_config_errors_t *errs) {
  struct stat st;
  char *text;
  size_t n = 0;
  ssize_t got;
  int fd, rv;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    add_err(errs, "%s: %s", path, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size > RELAYD_CONFIG_MAX_SIZE) {
    add_err(errs, "%s: not a regular file of at most %d bytes", path,
            RELAYD_CONFIG_MAX_SIZE);
    close(fd);
    return -1;
  }
  text = malloc((size_t)st.st_size + 1);
  if (!text) {
    close(fd);
    add_err(errs, "%s: out of memory", path);
    return -1;
  }
  while (n < (size_t)st.st_size) {
    got = read(fd, text + n, (size_t)st.st_size - n);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      break;
    n += (size_t)got;
  }
  close(fd);
  text[n] = '\0';
  if (strlen(text) != n) {
    free(text);
    add_err(errs, "%s: contains NUL bytes", path);
    return -1;
  }
  rv = relayd_config_parse_string(c, text, path, errs);
  free(text);
  return rv;
}

/* ---- command line -------------------------------------------------------- */

void relayd_config_usage(FILE *f) {
  fprintf(f,
          "usage: qpeer-relay [serve] [options]   run the relay\n"
          "       qpeer-relay token --help        mint access tokens\n"
          "       qpeer-relay version\n"
          "\n"
          "options:\n"
          "  --config FILE        INI configuration (see doc/relay.md)\n"
          "  --listen ADDR:PORT   UDP address to serve on; repeatable, and\n"
          "                       replaces the file's (default [::]:443)\n"
          "  --metrics ADDR:PORT  serve Prometheus metrics on this local\n"
          "                       TCP address\n"
          "  --state-dir DIR      where generated secrets live (default\n"
          "                       " RELAYD_DEFAULT_STATE_DIR ")\n"
          "  --cert FILE --key FILE  TLS certificate chain and key (PEM);\n"
          "                       default: a self-signed certificate\n"
          "  --log-level LEVEL    error, warn, info or debug\n"
          "  --help               this text\n"
          "\n"
          "config sections and keys:\n"
          "  [relay]   listen= (repeatable) public_addr= (repeatable) cert=\n"
          "            key= state_dir= "
          "auth=jwt|peerid|both|either|" RELAYD_AUTH_NONE_NAME "\n"
          "            jwt_alg= jwt_key= jwt_secret_file= audience= issuer=\n"
          "            jwt_leeway_s= allow_peer= (repeatable) proxy_name=\n"
          "            log_level=\n"
          "  [policy]  allow=CIDR deny=CIDR (repeatable) default=allow|deny\n"
          "  [quota]   bandwidth= burst= max_tunnels_per_client=\n"
          "            max_binds_per_client= idle_timeout_s= max_clients=\n"
          "            max_tunnels= max_binds=\n"
          "  [metrics] listen=ADDR:PORT allow_remote=yes|no\n");
}

int relayd_config_parse_args(relayd_config_t *c, int argc, char **argv,
                             relayd_config_errors_t *errs, int *phelp) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"listen", required_argument, NULL, 'l'},
      {"metrics", required_argument, NULL, 'm'},
      {"state-dir", required_argument, NULL, 's'},
      {"cert", required_argument, NULL, 'C'},
      {"key", required_argument, NULL, 'K'},
      {"log-level", required_argument, NULL, 'L'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  size_t before = errs->n + errs->dropped;
  const char *config = NULL;
  struct sockaddr_storage ss;
  int o;
  *phelp = 0;
  /* First pass: --help and --config, so the file comes before the flags
   * whatever the order. */
  opterr = 0;
  optind = 1;
  while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (o == 'h') {
      *phelp = 1;
      return 0;
    }
    if (o == 'c')
      config = optarg;
    else if (o == '?')
      add_err(errs, "command line: unknown option or missing value: %s",
              argv[optind - 1]);
  }
  if (optind < argc)
    add_err(errs, "command line: unexpected argument '%s'", argv[optind]);
  if (errs->n + errs->dropped > before)
    return -1;
  if (config && relayd_config_parse_file(c, config, errs) != 0)
    return -1;
  optind = 1;
  while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (o) {
    case 'l':
      if (relayd_parse_hostport(optarg, &ss) != 0) {
        add_err(errs, "--listen %s: needs IPv4:PORT or [IPv6]:PORT", optarg);
        break;
      }
      if (!c->listen_from_flags) {
        c->nlisten = 0;
        c->listen_from_flags = 1;
      }
      if (c->nlisten >= RELAYD_MAX_LISTEN)
        add_err(errs, "--listen: at most %d addresses", RELAYD_MAX_LISTEN);
      else
        c->listen[c->nlisten++] = ss;
      break;
    case 'm':
      if (relayd_parse_hostport(optarg, &c->metrics_addr) != 0)
        add_err(errs, "--metrics %s: needs IPv4:PORT or [IPv6]:PORT", optarg);
      else
        c->metrics_enabled = 1;
      break;
    case 's':
      if (set_path(c->state_dir, sizeof(c->state_dir), optarg))
        add_err(errs, "--state-dir: bad path");
      break;
    case 'C':
      if (set_path(c->cert, sizeof(c->cert), optarg))
        add_err(errs, "--cert: bad path");
      break;
    case 'K':
      if (set_path(c->key, sizeof(c->key), optarg))
        add_err(errs, "--key: bad path");
      break;
    case 'L':
      if (parse_log_level(optarg, &c->log_level))
        add_err(errs, "--log-level must be error, warn, info or debug");
      break;
    default:
      break;
    }
  }
  return errs->n + errs->dropped > before ? -1 : 0;
}

/* ---- validation ---------------------------------------------------------- */

/* at formats where key |k| was set, for messages. */
static const char *at(const relayd_config_t *c, relayd_config_key k, char *buf,
                      size_t len) {
  if (c->lines[k] && c->config_path[0])
    snprintf(buf, len, "%s:%d: ", c->config_path, c->lines[k]);
  else if (c->lines[k])
    snprintf(buf, len, "line %d: ", c->lines[k]);
  else
    buf[0] = '\0';
  return buf;
}

static int is_loopback(const struct sockaddr *sa) {
  return relayd_addr_classify(sa, NULL) == RELAYD_ADDR_LOOPBACK;
}

static void validate_auth(relayd_config_t *c, relayd_config_errors_t *errs) {
  char w[RELAYD_PATH_MAX + 32];
  int hmac = relayd_token_alg_is_hmac(c->jwt_alg);
  if (relayd_config_uses_jwt(c)) {
    if (hmac && c->jwt_key[0])
      add_err(errs,
              "%sjwt_key is for RS* and ES* algorithms; %s uses "
              "jwt_secret_file",
              at(c, RELAYD_K_JWT_KEY, w, sizeof(w)),
              relayd_token_alg_name(c->jwt_alg));
    if (!hmac && c->jwt_secret_file[0])
      add_err(errs,
              "%sjwt_secret_file is for HS* algorithms; %s needs "
              "jwt_key (a PEM public key)",
              at(c, RELAYD_K_JWT_SECRET_FILE, w, sizeof(w)),
              relayd_token_alg_name(c->jwt_alg));
    if (!hmac && !c->jwt_key[0])
      add_err(errs, "%sjwt_alg %s needs jwt_key (a PEM public key)",
              at(c, RELAYD_K_JWT_ALG, w, sizeof(w)),
              relayd_token_alg_name(c->jwt_alg));
  } else if (c->lines[RELAYD_K_JWT_ALG] || c->jwt_key[0] ||
             c->jwt_secret_file[0] || c->lines[RELAYD_K_ISSUER]) {
    add_err(errs, "%sjwt settings given but auth=%s does not check tokens",
            at(c, RELAYD_K_AUTH, w, sizeof(w)),
            relayd_config_auth_name(c->auth));
  }
  if (relayd_config_uses_peerid(c) && c->nallow_peer == 0)
    add_err(errs, "%sauth=%s needs at least one allow_peer",
            at(c, RELAYD_K_AUTH, w, sizeof(w)),
            relayd_config_auth_name(c->auth));
  if (!relayd_config_uses_peerid(c) && c->nallow_peer > 0)
    add_err(errs,
            "%sallow_peer is only used with auth=peerid, both or "
            "either",
            at(c, RELAYD_K_ALLOW_PEER, w, sizeof(w)));
}

int relayd_config_validate(relayd_config_t *c, relayd_config_errors_t *errs) {
  size_t before = errs->n + errs->dropped, i;
  char w[RELAYD_PATH_MAX + 32];
  uint64_t table;
  validate_auth(c, errs);
  if (!c->cert[0] != !c->key[0])
    add_err(errs,
            "%scert and key go together (or neither, for a "
            "self-signed certificate)",
            at(c, c->cert[0] ? RELAYD_K_CERT : RELAYD_K_KEY, w, sizeof(w)));
  if (c->nlisten == 0)
    add_err(errs, "no listen address");
  for (i = 0; i < c->nlisten; i++) {
    char a[64];
    size_t j;
    for (j = 0; j < i; j++)
      if (!memcmp(&c->listen[i], &c->listen[j], sizeof(c->listen[i])))
        add_err(errs, "%slisten %s given twice",
                at(c, RELAYD_K_LISTEN, w, sizeof(w)),
                relayd_format_hostport((struct sockaddr *)&c->listen[i], a,
                                       sizeof(a)));
  }
  if (c->metrics_enabled && !c->metrics_allow_remote &&
      !is_loopback((struct sockaddr *)&c->metrics_addr))
    add_err(errs,
            "%smetrics listen address is not loopback; metrics are "
            "for a local scraper (set allow_remote = yes to override)",
            at(c, RELAYD_K_METRICS_LISTEN, w, sizeof(w)));
  if (c->quota.rate && c->quota.burst == 0)
    c->quota.burst = c->quota.rate > 65536 ? c->quota.rate : 65536;
  if (c->quota.burst && c->quota.burst < 4096)
    add_err(errs,
            "%sburst must be at least 4096 bytes (a packet larger "
            "than the burst could never pass)",
            at(c, RELAYD_K_BURST, w, sizeof(w)));
  if (c->quota.burst && !c->quota.rate)
    add_err(errs, "%sburst without bandwidth has no effect",
            at(c, RELAYD_K_BURST, w, sizeof(w)));
  if (c->quota.max_tunnels_per_client > c->quota.max_tunnels)
    add_err(errs, "%smax_tunnels_per_client exceeds max_tunnels",
            at(c, RELAYD_K_MAX_TUNNELS_PER_CLIENT, w, sizeof(w)));
  if (c->quota.max_binds_per_client > c->quota.max_binds)
    add_err(errs, "%smax_binds_per_client exceeds max_binds",
            at(c, RELAYD_K_MAX_BINDS_PER_CLIENT, w, sizeof(w)));
  table = (uint64_t)c->quota.max_clients * 2;
  if (table < 64)
    table = 64;
  if (table > RELAYD_QUOTA_MAX_TABLE)
    table = RELAYD_QUOTA_MAX_TABLE;
  c->quota.table_size = (uint32_t)table;
  /* Admitted clients that went silent for two idle timeouts are
   * released by the sweep, in case a release was lost. */
  c->quota.idle_ms = (uint64_t)c->idle_timeout_s * 2000;
  return errs->n + errs->dropped > before ? -1 : 0;
}

/* ---- generated secret ---------------------------------------------------- */

static int mkdirs(const char *path, relayd_config_errors_t *errs) {
  char dir[RELAYD_PATH_MAX];
  char *p;
  snprintf(dir, sizeof(dir), "%s", path);
  for (p = dir + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char saved = *p;
      *p = '\0';
      if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        add_err(errs, "state_dir %s: cannot create %s: %s (use --state-dir)",
                path, dir, strerror(errno));
        return -1;
      }
      *p = saved;
      if (!saved)
        break;
    }
  }
  return 0;
}

int relayd_config_make_state_dir(const relayd_config_t *c,
                                 relayd_config_errors_t *errs) {
  return mkdirs(c->state_dir, errs);
}

int relayd_config_ensure_secret(relayd_config_t *c,
                                relayd_config_errors_t *errs) {
  char path[RELAYD_PATH_MAX], hex[65];
  unsigned char rnd[32];
  size_t i;
  ssize_t w;
  int fd;
  if (!relayd_config_uses_jwt(c) || !relayd_token_alg_is_hmac(c->jwt_alg) ||
      c->jwt_secret_file[0])
    return 0;
  if (strlen(c->state_dir) + 1 + strlen(RELAYD_SECRET_FILE_NAME) >=
      sizeof(path)) {
    add_err(errs, "state_dir path too long");
    return -1;
  }
  memcpy(path, c->state_dir, strlen(c->state_dir));
  path[strlen(c->state_dir)] = '/';
  memcpy(path + strlen(c->state_dir) + 1, RELAYD_SECRET_FILE_NAME,
         sizeof(RELAYD_SECRET_FILE_NAME));
  if (access(path, F_OK) == 0) {
    memcpy(c->jwt_secret_file, path, strlen(path) + 1);
    return 0;
  }
  if (mkdirs(c->state_dir, errs) != 0)
    return -1;
  if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
    add_err(errs, "no randomness: %s", strerror(errno));
    return -1;
  }
  for (i = 0; i < sizeof(rnd); i++)
    snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
  explicit_bzero(rnd, sizeof(rnd));
  hex[64] = '\n';
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    add_err(errs, "%s: %s", path, strerror(errno));
    explicit_bzero(hex, sizeof(hex));
    return -1;
  }
  w = write(fd, hex, sizeof(hex));
  explicit_bzero(hex, sizeof(hex));
  if (w != (ssize_t)sizeof(hex) || fsync(fd) != 0) {
    add_err(errs, "%s: cannot write: %s", path, strerror(errno));
    close(fd);
    unlink(path);
    return -1;
  }
  close(fd);
  memcpy(c->jwt_secret_file, path, strlen(path) + 1);
  c->secret_generated = 1;
  return 0;
}
