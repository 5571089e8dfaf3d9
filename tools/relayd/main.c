/* SPDX-License-Identifier: MIT */
/*
 * qpeer-relay: the MASQUE relay daemon. `serve` (the default) wires the
 * relayd modules into the library's relay (include/qpeer/masque.h): one
 * QUIC endpoint per listen address (ALPN h3, STUN responder on), the
 * access hook (tokens and peer IDs), the target hook (policy.c), the
 * per-packet and client-gone hooks (quota.c), and the metrics server.
 * `token` mints access tokens (token_cmd.c). SIGTERM and SIGINT shut down
 * cleanly: the relay closes its sessions, then the endpoints.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "config.h"
#include "metrics.h"
#include "policy.h"
#include "qpeer.h"
#include "quota.h"
#include "token.h"

/* How long a shutdown may take before the loop is stopped anyway. */
#define SHUTDOWN_GRACE_MS 5000
/* How long open tunnels and bindings may drain after the GOAWAY before
 * the relay closes them, and how often that is checked. */
#define SHUTDOWN_DRAIN_MS 2000
#define SHUTDOWN_DRAIN_CHECK_MS 50
/* How often admitted but silent clients are swept. */
#define SWEEP_MS 10000
/* Lifetime of the token printed when the secret is first generated. */
#define FIRST_TOKEN_TTL_S (30u * 24 * 3600)
/* Largest QUIC DATAGRAM frame accepted: a 1200-byte inner QUIC Initial
 * plus the HTTP Datagram framing fits with room to spare. */
#define RELAY_DATAGRAM_FRAME 1500
/* Identity file inside the state directory. */
#define IDENTITY_FILE "relay-identity.pem"

/* The daemon's state: one per process. */
typedef struct {
  uv_loop_t *loop;                         /* the default loop */
  relayd_config_t cfg;                     /* merged, validated configuration */
  relayd_token_verifier_t verifier;        /* when tokens are checked */
  relayd_policy_t policy;                  /* cfg.policy plus own addresses */
  relayd_quota_t quota;                    /* client records and buckets */
  relayd_metrics_t metrics;                /* the registry served */
  relayd_metrics_std_t std;                /* pointers into it */
  relayd_metrics_server_t msrv;            /* HTTP server, if enabled */
  uint64_t capacity_rejects;               /* our 503s, which the relay counts
                                              as quota refusals too */
  qpeer_identity_t *identity;              /* stable across restarts */
  qpeer_endpoint_t eps[RELAYD_MAX_LISTEN]; /* one per listen address */
  size_t neps;                             /* endpoints initialised */
  qpeer_relay_t relay;                     /* the library relay */
  int relay_up;                            /* relay initialised, not closed */
  int metrics_up;                          /* msrv started */
  uv_signal_t sig[3];                      /* SIGTERM, SIGINT, SIGHUP */
  uv_timer_t sweep;                        /* quota sweep */
  uv_timer_t grace;                        /* shutdown deadline */
  uv_timer_t drain;                        /* drain checks after GOAWAY */
  uint64_t drain_start;                    /* uv_now at the GOAWAY */
  int stopping;                            /* shutdown begun */
  int relay_closing;                       /* qpeer_relay_close called */
  int exit_code;                           /* process status */
} relayd;

static relayd D;

/* ---- logging ------------------------------------------------------------- */

static void logmsg(relayd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void logmsg(relayd_log_level level, const char *fmt, ...) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  char ts[32], msg[1024];
  struct tm tm;
  time_t now = time(NULL);
  va_list ap;
  if (level > D.cfg.log_level)
    return;
  gmtime_r(&now, &tm);
  strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s qpeer-relay %s: %s\n", ts, names[level], msg);
}

static void on_qpeer_log(void *arg, qpeer_log_level level, const char *msg) {
  (void)arg;
  logmsg((relayd_log_level)level, "%s", msg);
}

static const char *addr_text(const struct sockaddr *sa, char *buf, size_t len) {
  if (!sa)
    return "?";
  return relayd_format_hostport(sa, buf, len);
}

/* ---- access control ------------------------------------------------------ */

static void refuse(const qpeer_relay_request_t *req, qpeer_relay_verdict_t *v,
                   int status, const char *reason) {
  char who[64];
  v->status = status;
  v->error = "http_request_denied";
  v->details = reason;
  (*D.std.rejections[relayd_reject_by_name(reason)])++;
  logmsg(RELAYD_LOG_DEBUG, "refused %s from %s: %d %s",
         req->kind == QPEER_RELAY_BIND ? "bind" : "connect-udp",
         addr_text(req->client_addr, who, sizeof(who)), status, reason);
}

/* client_key picks the quota key: the token's subject, else the peer ID,
 * else the client's IP address (without port). */
static void client_key(const qpeer_relay_request_t *req,
                       const relayd_token_claims_t *claims, int jwt_ok,
                       char *key, size_t len) {
  char text[QPEER_PEER_ID_STRLEN];
  struct sockaddr_storage ip;
  if (jwt_ok && claims->sub[0]) {
    snprintf(key, len, "jwt:%s", claims->sub);
  } else if (req->client_id &&
             qpeer_peer_id_format(req->client_id, text, sizeof(text)) > 0) {
    snprintf(key, len, "peer:%s", text);
  } else if (req->client_addr) {
    char a[64], *colon;
    memset(&ip, 0, sizeof(ip));
    memcpy(&ip, req->client_addr,
           req->client_addr->sa_family == AF_INET6
               ? sizeof(struct sockaddr_in6)
               : sizeof(struct sockaddr_in));
    relayd_format_hostport((struct sockaddr *)&ip, a, sizeof(a));
    colon = strrchr(a, ':');
    if (colon)
      *colon = '\0';
    snprintf(key, len, "addr:%s", a);
  } else {
    snprintf(key, len, "anonymous");
  }
}

static void on_access(qpeer_relay_t *relay, const qpeer_relay_request_t *req,
                      qpeer_relay_verdict_t *v) {
  static char key[RELAYD_QUOTA_KEY_MAX];
  relayd_token_claims_t claims;
  relayd_token_err te = RELAYD_TOKEN_MISSING;
  unsigned need =
      req->kind == QPEER_RELAY_BIND ? RELAYD_SCOPE_BIND : RELAYD_SCOPE_CONNECT;
  relayd_peer_check peer = RELAYD_PEER_MISSING;
  const char *reason;
  int jwt_ok = 0, status = 0;
  relayd_quota_err qe;
  (void)relay;
  memset(&claims, 0, sizeof(claims));
  if (relayd_config_uses_jwt(&D.cfg)) {
    te = relayd_token_verify(&D.verifier, req->bearer_token,
                             (int64_t)time(NULL), need, &claims);
    jwt_ok = te == RELAYD_TOKEN_OK;
  }
  if (relayd_config_uses_peerid(&D.cfg))
    peer = relayd_peer_check_id(req->client_id, D.cfg.allow_peer,
                                D.cfg.nallow_peer);
  reason = relayd_access_decide(D.cfg.auth, te, req->bearer_token != NULL, peer,
                                &status);
  if (reason) {
    refuse(req, v, status, reason);
    return;
  }
  client_key(req, &claims, jwt_ok, key, sizeof(key));
  qe = relayd_quota_admit(&D.quota, key, uv_now(D.loop), NULL);
  if (qe != RELAYD_QUOTA_OK) {
    if (relayd_quota_err_status(qe) == 503)
      D.capacity_rejects++;
    refuse(req, v, relayd_quota_err_status(qe), relayd_quota_err_name(qe));
    return;
  }
  v->client_key = key;
  logmsg(RELAYD_LOG_DEBUG, "admitted %s for %s",
         req->kind == QPEER_RELAY_BIND ? "bind" : "connect-udp", key);
}

static int on_target(qpeer_relay_t *relay, const qpeer_relay_request_t *req,
                     const struct sockaddr *target) {
  relayd_policy_verdict pv = relayd_policy_check(&D.policy, target);
  char a[64];
  (void)relay;
  (void)req;
  if (pv == RELAYD_POLICY_ALLOW)
    return 0;
  logmsg(RELAYD_LOG_DEBUG, "target %s refused: %s",
         addr_text(target, a, sizeof(a)), relayd_policy_verdict_name(pv));
  return 1;
}

/* ---- quotas -------------------------------------------------------------- */

static int on_packet(qpeer_relay_t *relay, qpeer_relay_client_t *client,
                     int to_client, size_t bytes) {
  relayd_quota_client_t *qc = relayd_quota_find(&D.quota, client->key);
  uint64_t now = uv_now(D.loop);
  (void)relay;
  (void)to_client;
  /* A record evicted or never made (the relay's own key): admit it now;
   * if even that fails the session was admitted already, so pass. */
  if (!qc &&
      relayd_quota_admit(&D.quota, client->key, now, &qc) != RELAYD_QUOTA_OK)
    return 0;
  return relayd_quota_packet(&D.quota, qc, bytes, now);
}

static void on_client_gone(qpeer_relay_t *relay, qpeer_relay_client_t *client) {
  (void)relay;
  relayd_quota_release(&D.quota, relayd_quota_find(&D.quota, client->key));
}

static void on_sweep(uv_timer_t *t) {
  size_t n = relayd_quota_sweep(&D.quota, uv_now(t->loop));
  if (n)
    logmsg(RELAYD_LOG_DEBUG, "released %zu silent clients", n);
}

/* ---- metrics ------------------------------------------------------------- */

static void on_metrics_refresh(relayd_metrics_server_t *srv) {
  relayd_metrics_std_t *m = &D.std;
  qpeer_relay_stats_t st;
  (void)srv;
  if (!D.relay_up || qpeer_relay_get_stats(&D.relay, &st) != 0)
    return;
  *m->connections_total = st.connections;
  *m->connections_active = st.connections_active;
  *m->tunnels_total = st.tunnels;
  *m->tunnels_active = st.tunnels_active;
  *m->binds_total = st.binds;
  *m->binds_active = st.binds_active;
  *m->packets[RELAYD_DIR_TO_CLIENT] = st.packets_in;
  *m->bytes[RELAYD_DIR_TO_CLIENT] = st.bytes_in;
  *m->packets[RELAYD_DIR_FROM_CLIENT] = st.packets_out;
  *m->bytes[RELAYD_DIR_FROM_CLIENT] = st.bytes_out;
  *m->dropped[RELAYD_DROP_QUOTA] = st.dropped_quota;
  *m->dropped[RELAYD_DROP_POLICY] = st.dropped_policy;
  *m->dropped[RELAYD_DROP_OTHER] = st.dropped_other;
  *m->idle_closed = st.idle_closed;
  /* 401 and 403 from the access hook are counted by reason in on_access;
   * the relay's own refusals are copied here. */
  *m->rejections[RELAYD_REJECT_TARGET_DENIED] = st.rejected_target;
  *m->rejections[RELAYD_REJECT_QUOTA] =
      st.rejected_quota > D.capacity_rejects
          ? st.rejected_quota - D.capacity_rejects
          : 0;
  *m->rejections[RELAYD_REJECT_MALFORMED_REQUEST] = st.rejected_malformed;
  *m->rejections[RELAYD_REJECT_NOT_FOUND] = st.rejected_not_found;
  *m->rejections[RELAYD_REJECT_DNS_ERROR] = st.rejected_dns;
  *m->rejections[RELAYD_REJECT_OTHER] = st.rejected_other;
  *m->clients_active = D.quota.stats.clients_active;
  *m->client_evictions = D.quota.stats.evictions;
}

/* ---- shutdown ------------------------------------------------------------ */

static void on_endpoint_closed(qpeer_handle_t *h) { (void)h; }

static void close_endpoints(void) {
  size_t i;
  for (i = 0; i < D.neps; i++)
    if (!qpeer_is_closing((qpeer_handle_t *)&D.eps[i]))
      qpeer_close((qpeer_handle_t *)&D.eps[i], on_endpoint_closed);
}

static void on_relay_closed(qpeer_handle_t *h) {
  (void)h;
  D.relay_up = 0;
  close_endpoints();
}

static void on_grace(uv_timer_t *t) {
  logmsg(RELAYD_LOG_WARN, "shutdown took over %d ms; stopping now",
         SHUTDOWN_GRACE_MS);
  uv_stop(t->loop);
}

/* Ends every tunnel and binding still open and closes the relay. */
static void close_relay(void) {
  int i;
  if (D.relay_closing)
    return;
  D.relay_closing = 1;
  uv_timer_stop(&D.drain);
  for (i = 0; i < 3; i++)
    uv_signal_stop(&D.sig[i]);
  if (D.relay_up)
    qpeer_relay_close(&D.relay, on_relay_closed);
  else
    close_endpoints();
}

/* During the drain: close once nothing is open any more, or when the
 * drain time is up. */
static void on_drain(uv_timer_t *t) {
  qpeer_relay_stats_t st;
  uint64_t open = 0;
  if (qpeer_relay_get_stats(&D.relay, &st) == 0)
    open = st.tunnels_active + st.binds_active;
  if (open == 0) {
    logmsg(RELAYD_LOG_INFO, "drained after %llu ms",
           (unsigned long long)(uv_now(t->loop) - D.drain_start));
  } else if (uv_now(t->loop) - D.drain_start >= SHUTDOWN_DRAIN_MS) {
    logmsg(RELAYD_LOG_INFO, "drain time over; ending %llu tunnels and "
                            "bindings", (unsigned long long)open);
  } else {
    return;
  }
  close_relay();
}

/* Graceful shutdown: GOAWAY to every client (no new requests; bound
 * clients bind again elsewhere), a short drain, then the relay closes
 * what is left (FIN, H3_NO_ERROR) and the endpoints. A second signal
 * skips the drain. */
static void shutdown_daemon(const char *why) {
  if (D.stopping) {
    logmsg(RELAYD_LOG_INFO, "%s again: closing now", why);
    close_relay();
    return;
  }
  D.stopping = 1;
  logmsg(RELAYD_LOG_INFO, "shutting down (%s)", why);
  uv_timer_start(&D.grace, on_grace, SHUTDOWN_GRACE_MS, 0);
  uv_unref((uv_handle_t *)&D.grace);
  uv_timer_stop(&D.sweep);
  if (D.metrics_up) {
    relayd_metrics_server_close(&D.msrv, NULL);
    D.metrics_up = 0;
  }
  if (D.relay_up && qpeer_relay_shutdown(&D.relay) == 0) {
    logmsg(RELAYD_LOG_INFO, "sent GOAWAY; draining for up to %d ms",
           SHUTDOWN_DRAIN_MS);
    D.drain_start = uv_now(D.loop);
    uv_timer_start(&D.drain, on_drain, 0, SHUTDOWN_DRAIN_CHECK_MS);
    return;
  }
  close_relay();
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)s;
  if (signum == SIGHUP) {
    logmsg(RELAYD_LOG_WARN, "SIGHUP: reloading is not supported; restart "
                            "the relay to apply a new configuration");
    return;
  }
  shutdown_daemon(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_loose_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* ---- start-up ------------------------------------------------------------ */

static int load_verifier(void) {
  unsigned char *key = NULL;
  size_t keylen = 0;
  char err[512];
  const char *path = relayd_token_alg_is_hmac(D.cfg.jwt_alg)
                         ? D.cfg.jwt_secret_file
                         : D.cfg.jwt_key;
  if (relayd_token_key_load(path, D.cfg.jwt_alg, RELAYD_KEY_VERIFY, &key,
                            &keylen, err, sizeof(err)) != 0 ||
      relayd_token_verifier_init(&D.verifier, D.cfg.jwt_alg, key, keylen,
                                 D.cfg.audience, D.cfg.issuer,
                                 D.cfg.jwt_leeway_s, err, sizeof(err)) != 0) {
    logmsg(RELAYD_LOG_ERROR, "token key: %s", err);
    if (key)
      explicit_bzero(key, keylen);
    free(key);
    return -1;
  }
  explicit_bzero(key, keylen);
  free(key);
  logmsg(RELAYD_LOG_INFO, "tokens: %s, audience \"%s\"%s%s",
         relayd_token_alg_name(D.cfg.jwt_alg), D.cfg.audience,
         D.cfg.issuer[0] ? ", issuer " : "", D.cfg.issuer);
  return 0;
}

static void print_first_token(void) {
  relayd_token_mint_t m;
  char err[256], *tok = NULL;
  memset(&m, 0, sizeof(m));
  m.alg = D.cfg.jwt_alg;
  m.key = D.verifier.key;
  m.keylen = D.verifier.keylen;
  m.audience = D.cfg.audience;
  m.issuer = D.cfg.issuer[0] ? D.cfg.issuer : NULL;
  m.subject = "operator";
  m.scopes = RELAYD_SCOPE_BIND | RELAYD_SCOPE_CONNECT;
  m.now = (int64_t)time(NULL);
  m.ttl_s = FIRST_TOKEN_TTL_S;
  if (relayd_token_mint(&m, &tok, err, sizeof(err)) != 0) {
    logmsg(RELAYD_LOG_WARN, "could not mint the first token: %s", err);
    return;
  }
  logmsg(RELAYD_LOG_INFO, "generated the token secret %s (mode 0600)",
         D.cfg.jwt_secret_file);
  printf("qpeer-relay: access token (scope \"connect bind\", audience "
         "\"%s\", valid %u days):\n%s\n"
         "qpeer-relay: mint more with: qpeer-relay token --secret-file %s "
         "--aud %s --scope bind,connect --ttl SECONDS\n",
         D.cfg.audience, FIRST_TOKEN_TTL_S / 86400, tok, D.cfg.jwt_secret_file,
         D.cfg.audience);
  fflush(stdout);
  free(tok);
}

static int load_identity(void) {
  relayd_config_errors_t errs;
  char path[RELAYD_PATH_MAX + 32], pid[QPEER_PEER_ID_STRLEN];
  int rv;
  memset(&errs, 0, sizeof(errs));
  if (relayd_config_make_state_dir(&D.cfg, &errs) != 0) {
    relayd_config_errors_print(&errs, stderr);
    return -1;
  }
  snprintf(path, sizeof(path), "%s/%s", D.cfg.state_dir, IDENTITY_FILE);
  rv = qpeer_identity_load(&D.identity, path);
  if (rv == UV_ENOENT) {
    rv = qpeer_identity_generate(&D.identity);
    if (rv == 0)
      rv = qpeer_identity_save(D.identity, path);
    if (rv == 0)
      logmsg(RELAYD_LOG_INFO, "generated the relay identity %s", path);
  }
  if (rv != 0) {
    logmsg(RELAYD_LOG_ERROR, "identity %s: %s", path, qpeer_strerror(rv));
    return -1;
  }
  qpeer_peer_id_format(qpeer_identity_get_peer_id(D.identity), pid,
                       sizeof(pid));
  logmsg(RELAYD_LOG_INFO, "relay peer ID (pin it in clients%s): %s",
         D.cfg.cert[0] ? "; TLS uses the configured certificate" : "", pid);
  return 0;
}

static int is_unspecified(const struct sockaddr *sa) {
  return relayd_addr_classify(sa, NULL) == RELAYD_ADDR_UNSPECIFIED;
}

/* setup_policy copies the configured rules and adds the relay's own
 * addresses: its listen and public addresses and every interface
 * address of the host. */
static void setup_policy(void) {
  uv_interface_address_t *ifs = NULL;
  int nifs = 0, i, full = 0;
  size_t k;
  D.policy = D.cfg.policy;
  for (k = 0; k < D.cfg.nlisten; k++)
    if (!is_unspecified((struct sockaddr *)&D.cfg.listen[k]))
      full |=
          relayd_policy_add_own(&D.policy, (struct sockaddr *)&D.cfg.listen[k]);
  for (k = 0; k < D.cfg.npublic_addr; k++)
    full |= relayd_policy_add_own(&D.policy,
                                  (struct sockaddr *)&D.cfg.public_addr[k]);
  if (uv_interface_addresses(&ifs, &nifs) == 0) {
    for (i = 0; i < nifs; i++)
      full |=
          relayd_policy_add_own(&D.policy, (struct sockaddr *)&ifs[i].address);
    uv_free_interface_addresses(ifs, nifs);
  }
  if (full)
    logmsg(RELAYD_LOG_WARN,
           "more than %d own addresses; the rest are only "
           "covered by the default classes",
           RELAYD_POLICY_MAX_OWN);
}

static void on_connection(qpeer_endpoint_t *ep, int status) {
  if (status < 0) {
    logmsg(RELAYD_LOG_WARN, "accept: %s", qpeer_strerror(status));
    return;
  }
  while (D.relay_up && qpeer_relay_accept(&D.relay, ep) == 0)
    ;
}

static int has_v4_on_port(const struct sockaddr_storage *v6) {
  size_t k;
  uint16_t port = ((const struct sockaddr_in6 *)v6)->sin6_port;
  for (k = 0; k < D.cfg.nlisten; k++)
    if (D.cfg.listen[k].ss_family == AF_INET &&
        ((struct sockaddr_in *)&D.cfg.listen[k])->sin_port == port)
      return 1;
  return 0;
}

static int start_endpoints(void) {
  static const char *const alpn[] = {QPEER_MASQUE_ALPN};
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  struct sockaddr_storage bound;
  char a[64];
  size_t k;
  int rv;
  for (k = 0; k < D.cfg.nlisten; k++) {
    qpeer_endpoint_options_default(&eo);
    eo.bind_addr = (struct sockaddr *)&D.cfg.listen[k];
    eo.ipv6_only = D.cfg.listen[k].ss_family == AF_INET6 &&
                   has_v4_on_port(&D.cfg.listen[k]);
    eo.identity = D.identity;
    eo.cert_file = D.cfg.cert[0] ? D.cfg.cert : NULL;
    eo.key_file = D.cfg.key[0] ? D.cfg.key : NULL;
    eo.max_datagram_frame_size = RELAY_DATAGRAM_FRAME;
    rv = qpeer_endpoint_init(D.loop, &D.eps[k], &eo);
    if (rv != 0) {
      logmsg(RELAYD_LOG_ERROR, "listen %s: %s",
             addr_text((struct sockaddr *)&D.cfg.listen[k], a, sizeof(a)),
             qpeer_strerror(rv));
      return -1;
    }
    D.neps++;
    qpeer_listen_options_default(&lo);
    lo.alpn = alpn;
    lo.nalpn = 1;
    /* No allow list here: client identities are requested but optional,
     * and the access hook answers 401/403 with a reason instead of
     * failing the handshake. */
    rv = qpeer_endpoint_listen(&D.eps[k], &lo, on_connection);
    if (rv == 0)
      rv = qpeer_endpoint_set_stun_responder(&D.eps[k], 1, NULL);
    if (rv == 0)
      rv = qpeer_endpoint_get_local_addr(&D.eps[k], &bound);
    if (rv != 0) {
      logmsg(RELAYD_LOG_ERROR, "listen: %s", qpeer_strerror(rv));
      return -1;
    }
    logmsg(RELAYD_LOG_INFO, "serving HTTP/3 MASQUE and STUN on udp %s",
           addr_text((struct sockaddr *)&bound, a, sizeof(a)));
  }
  return 0;
}

static int start_relay(void) {
  qpeer_relay_options_t ro;
  const struct sockaddr *pubs[RELAYD_MAX_PUBLIC];
  size_t k;
  int rv;
  qpeer_relay_options_default(&ro);
  for (k = 0; k < D.cfg.npublic_addr; k++)
    pubs[k] = (const struct sockaddr *)&D.cfg.public_addr[k];
  ro.public_addrs = D.cfg.npublic_addr ? pubs : NULL;
  ro.npublic_addrs = D.cfg.npublic_addr;
  ro.access_cb = on_access;
  ro.allow_anonymous = 0;
  ro.target_cb = on_target;
  ro.max_tunnels_per_client = D.cfg.quota.max_tunnels_per_client;
  ro.max_binds_per_client = D.cfg.quota.max_binds_per_client;
  ro.max_tunnels = D.cfg.quota.max_tunnels;
  ro.max_binds = D.cfg.quota.max_binds;
  ro.idle_timeout_ms = (uint64_t)D.cfg.idle_timeout_s * 1000;
  ro.on_packet = on_packet;
  ro.on_client_gone = on_client_gone;
  ro.proxy_name = D.cfg.proxy_name;
  rv = qpeer_relay_init(D.loop, &D.relay, &ro);
  if (rv != 0) {
    logmsg(RELAYD_LOG_ERROR, "relay: %s", qpeer_strerror(rv));
    return -1;
  }
  D.relay_up = 1;
  return 0;
}

static int start_metrics(void) {
  char a[64];
  struct sockaddr_storage bound;
  int rv;
  relayd_metrics_init(&D.metrics);
  if (relayd_metrics_std_init(&D.metrics, &D.std) != 0)
    return -1;
  *D.std.start_time = (uint64_t)time(NULL);
  if (!D.cfg.metrics_enabled)
    return 0;
  rv = relayd_metrics_server_start(&D.msrv, D.loop,
                                   (struct sockaddr *)&D.cfg.metrics_addr,
                                   &D.metrics, on_metrics_refresh);
  if (rv != 0) {
    logmsg(RELAYD_LOG_ERROR, "metrics %s: %s",
           addr_text((struct sockaddr *)&D.cfg.metrics_addr, a, sizeof(a)),
           uv_strerror(rv));
    return -1;
  }
  D.metrics_up = 1;
  relayd_metrics_server_get_addr(&D.msrv, &bound);
  logmsg(RELAYD_LOG_INFO, "metrics on http://%s/metrics",
         addr_text((struct sockaddr *)&bound, a, sizeof(a)));
  return 0;
}

static int setup(void) {
  relayd_config_errors_t errs;
  uint64_t seed = 0;
  memset(&errs, 0, sizeof(errs));
  if (D.cfg.auth == RELAYD_AUTH_NONE)
    logmsg(RELAYD_LOG_WARN,
           "auth = " RELAYD_AUTH_NONE_NAME ": ANYONE can relay through this "
           "host. The target policy still applies.");
  if (relayd_config_ensure_secret(&D.cfg, &errs) != 0) {
    relayd_config_errors_print(&errs, stderr);
    return -1;
  }
  if (relayd_config_uses_jwt(&D.cfg) && load_verifier() != 0)
    return -1;
  if (D.cfg.secret_generated)
    print_first_token();
  if (load_identity() != 0)
    return -1;
  if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
    seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
  D.cfg.quota.seed = seed;
  if (relayd_quota_init(&D.quota, &D.cfg.quota) != 0) {
    logmsg(RELAYD_LOG_ERROR, "quota table: out of memory");
    return -1;
  }
  setup_policy();
  logmsg(RELAYD_LOG_INFO,
         "auth=%s, %zu allowed peers, %zu allow and %zu "
         "deny rules, %zu own addresses",
         relayd_config_auth_name(D.cfg.auth), D.cfg.nallow_peer,
         D.policy.nallow, D.policy.ndeny, D.policy.nown);
  return 0;
}

static int serve(int argc, char **argv) {
  static relayd_config_errors_t errs;
  static const int signums[3] = {SIGTERM, SIGINT, SIGHUP};
  int help = 0, i;
  relayd_config_defaults(&D.cfg);
  if (relayd_config_parse_args(&D.cfg, argc, argv, &errs, &help) != 0 ||
      (!help && relayd_config_validate(&D.cfg, &errs) != 0)) {
    relayd_config_errors_print(&errs, stderr);
    fprintf(stderr, "qpeer-relay: configuration refused (see --help and "
                    "doc/relay.md)\n");
    return 2;
  }
  if (help) {
    relayd_config_usage(stdout);
    return 0;
  }
  qpeer_set_log(on_qpeer_log, NULL, (qpeer_log_level)D.cfg.log_level);
  D.loop = uv_default_loop();
  D.exit_code = 1;
  if (setup() != 0)
    goto out;
  uv_timer_init(D.loop, &D.sweep);
  uv_timer_init(D.loop, &D.grace);
  uv_timer_init(D.loop, &D.drain);
  for (i = 0; i < 3; i++) {
    uv_signal_init(D.loop, &D.sig[i]);
    uv_signal_start(&D.sig[i], on_signal, signums[i]);
  }
  if (start_metrics() != 0 || start_relay() != 0 || start_endpoints() != 0) {
    D.exit_code = 1;
    shutdown_daemon("start-up failed");
    uv_run(D.loop, UV_RUN_DEFAULT);
    goto out;
  }
  uv_timer_start(&D.sweep, on_sweep, SWEEP_MS, SWEEP_MS);
  uv_unref((uv_handle_t *)&D.sweep);
  logmsg(RELAYD_LOG_INFO, "qpeer-relay %s ready", qpeer_version_string());
  D.exit_code = 0;
  uv_run(D.loop, UV_RUN_DEFAULT);
  if (!D.stopping)
    D.exit_code = 1; /* the loop ran dry without a shutdown */
out:
  uv_walk(D.loop, on_loose_handle, NULL);
  uv_run(D.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(D.loop) != 0)
    logmsg(RELAYD_LOG_WARN, "handles left open at exit");
  relayd_quota_free(&D.quota);
  relayd_token_verifier_free(&D.verifier);
  if (D.identity)
    qpeer_identity_unref(D.identity);
  logmsg(RELAYD_LOG_INFO, "stopped");
  return D.exit_code;
}

/* ---- token subcommand ---------------------------------------------------- */

static int token_main(int argc, char **argv) {
  static relayd_config_t cfg;
  static relayd_config_errors_t errs;
  relayd_token_cmd_defaults_t d;
  char secret[RELAYD_PATH_MAX + 32];
  int i;
  memset(&d, 0, sizeof(d));
  for (i = 1; i < argc; i++) {
    const char *path = NULL;
    if (!strcmp(argv[i], "--config") && i + 1 < argc)
      path = argv[i + 1];
    else if (!strncmp(argv[i], "--config=", 9))
      path = argv[i] + 9;
    if (!path)
      continue;
    relayd_config_defaults(&cfg);
    if (relayd_config_parse_file(&cfg, path, &errs) != 0) {
      relayd_config_errors_print(&errs, stderr);
      return 2;
    }
    d.audience = cfg.audience;
    d.issuer = cfg.issuer[0] ? cfg.issuer : NULL;
    d.alg = cfg.jwt_alg;
    if (relayd_token_alg_is_hmac(cfg.jwt_alg)) {
      if (cfg.jwt_secret_file[0])
        snprintf(secret, sizeof(secret), "%s", cfg.jwt_secret_file);
      else
        snprintf(secret, sizeof(secret), "%s/%s", cfg.state_dir,
                 RELAYD_SECRET_FILE_NAME);
      d.secret_file = secret;
    }
  }
  return relayd_token_cmd(argc, argv, &d);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 2 && !strcmp(argv[1], "token"))
    return token_main(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "serve"))
    return serve(argc - 1, argv + 1);
  if (argc >= 2 &&
      (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version"))) {
    printf("qpeer-relay %s\n", qpeer_version_string());
    return 0;
  }
  if (argc >= 2 && (!strcmp(argv[1], "help") || !strcmp(argv[1], "-h"))) {
    relayd_config_usage(stdout);
    return 0;
  }
  if (argc >= 2 && argv[1][0] != '-') {
    fprintf(stderr, "qpeer-relay: unknown command '%s'\n", argv[1]);
    relayd_config_usage(stderr);
    return 2;
  }
  return serve(argc, argv);
}
