/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for tools/relayd/config.c: a complete good file; one
 * line-numbered error for every bad line (syntax, sections, keys, values,
 * repeats, long lines); whole-configuration validation; flags merged over
 * the file; the defaults and the generated secret.
 */
#include <arpa/inet.h>

#include "config.h"
#include "qpeer/identity.h"
#include "relayd_test.h"

static char peer_a[QPEER_PEER_ID_STRLEN], peer_b[QPEER_PEER_ID_STRLEN];

static int setup(void **state) {
  qpeer_peer_id_t p;
  (void)state;
  memset(&p, 7, sizeof(p));
  assert_true(qpeer_peer_id_format(&p, peer_a, sizeof(peer_a)) > 0);
  memset(&p, 9, sizeof(p));
  assert_true(qpeer_peer_id_format(&p, peer_b, sizeof(peer_b)) > 0);
  return 0;
}

static uint16_t port_of(const struct sockaddr_storage *ss) {
  return ntohs(ss->ss_family == AF_INET
                   ? ((const struct sockaddr_in *)ss)->sin_port
                   : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* has_error says whether some error starts with |prefix|. */
static int has_error(const relayd_config_errors_t *e, const char *prefix) {
  size_t i;
  for (i = 0; i < e->n; i++)
    if (!strncmp(e->msg[i], prefix, strlen(prefix)))
      return 1;
  return 0;
}

static void dump(const relayd_config_errors_t *e) {
  size_t i;
  for (i = 0; i < e->n; i++)
    print_message("  %s\n", e->msg[i]);
}

static void test_config_good_file(void **state) {
  relayd_config_t c;
  relayd_config_errors_t e;
  char text[4096];
  struct sockaddr_in6 t;
  (void)state;
  snprintf(text, sizeof(text),
           "; qpeer-relay test configuration\n"
           "# comments both ways\n"
           "[relay]\n"
           "listen = 0.0.0.0:4433\n"
           "  listen = [::]:4433   ; indented is fine\n"
           "public_addr = 198.51.100.1\n"
           "cert = /etc/qpeer-relay/cert.pem\n"
           "key = /etc/qpeer-relay/key.pem\n"
           "state_dir = /tmp/qpeer-relay-state\n"
           "auth = either\n"
           "jwt_alg = ES256\n"
           "jwt_key = /etc/qpeer-relay/issuer.pub.pem\n"
           "audience = relay.example\n"
           "issuer = https://as.example\n"
           "jwt_leeway_s = 10\n"
           "allow_peer = %s\n"
           "allow_peer = %s\n"
           "proxy_name = relay-1.example\n"
           "log_level = debug\n"
           "\n"
           "[policy]\n"
           "allow = 10.1.0.0/16\n"
           "deny = 203.0.113.0/24\n"
           "deny = 2001:db8:bad::/48\n"
           "default = allow\n"
           "[quota]\n"
           "bandwidth = 10M\n"
           "burst = 1Mi\n"
           "max_tunnels_per_client = 8\n"
           "max_binds_per_client = 2\n"
           "idle_timeout_s = 300\n"
           "max_clients = 500\n"
           "max_tunnels = 5000\n"
           "max_binds = 1000\n"
           "[metrics]\n"
           "listen = 127.0.0.1:9464\r\n",
           peer_a, peer_b);
  relayd_config_defaults(&c);
  memset(&e, 0, sizeof(e));
  if (relayd_config_parse_string(&c, text, "good.ini", &e) != 0)
    dump(&e);
  assert_int_equal(e.n, 0);
  assert_int_equal(relayd_config_validate(&c, &e), 0);
  assert_int_equal(c.nlisten, 2);
  assert_int_equal(c.listen[0].ss_family, AF_INET);
  assert_int_equal(port_of(&c.listen[0]), 4433);
  assert_int_equal(c.listen[1].ss_family, AF_INET6);
  assert_int_equal(c.npublic_addr, 1);
  assert_string_equal(c.cert, "/etc/qpeer-relay/cert.pem");
  assert_string_equal(c.state_dir, "/tmp/qpeer-relay-state");
  assert_int_equal(c.auth, RELAYD_AUTH_EITHER);
  assert_true(relayd_config_uses_jwt(&c));
  assert_true(relayd_config_uses_peerid(&c));
  assert_int_equal(c.jwt_alg, RELAYD_ALG_ES256);
  assert_string_equal(c.audience, "relay.example");
  assert_string_equal(c.issuer, "https://as.example");
  assert_int_equal(c.jwt_leeway_s, 10);
  assert_int_equal(c.nallow_peer, 2);
  assert_string_equal(c.proxy_name, "relay-1.example");
  assert_int_equal(c.log_level, RELAYD_LOG_DEBUG);
  assert_int_equal(c.policy.nallow, 1);
  assert_int_equal(c.policy.ndeny, 2);
  assert_int_equal(c.quota.rate, 10000000);
  assert_int_equal(c.quota.burst, 1048576);
  assert_int_equal(c.quota.max_tunnels_per_client, 8);
  assert_int_equal(c.quota.max_binds_per_client, 2);
  assert_int_equal(c.idle_timeout_s, 300);
  assert_int_equal(c.quota.idle_ms, 600000);
  assert_int_equal(c.quota.max_clients, 500);
  assert_int_equal(c.quota.table_size, 1000);
  assert_int_equal(c.quota.max_tunnels, 5000);
  assert_int_equal(c.quota.max_binds, 1000);
  assert_true(c.metrics_enabled);
  assert_int_equal(port_of(&c.metrics_addr), 9464);
  assert_int_equal(c.lines[RELAYD_K_AUTH], 10);
  /* The policy parsed here is the one the relay checks. */
  memset(&t, 0, sizeof(t));
  t.sin6_family = AF_INET6;
  t.sin6_port = htons(443);
  inet_pton(AF_INET6, "2001:db8:bad::1", &t.sin6_addr);
  assert_int_equal(relayd_policy_check(&c.policy, (struct sockaddr *)&t),
                   RELAYD_POLICY_DENY_RULE);
}

static void test_config_every_bad_line(void **state) {
  static const struct {
    int line;         /* the bad line */
    const char *text; /* expected in the message */
  } want[] = {
      {2, "key outside any section"},
      {4, "section header without ']'"},
      {6, "unknown section"},
      {9, "expected 'key = value'"},
      {10, "listen needs"},
      {11, "unknown key in [relay]"},
      {12, "auth must be"},
      {14, "auth already set on line 13"},
      {15, "jwt_alg must be"},
      {16, "allow_peer needs a peer ID"},
      {17, "jwt_leeway_s must be 0..300"},
      {18, "empty value"},
      {19, "public_addr needs"},
      {20, "proxy_name must be a token"},
      {21, "log_level must be"},
      {23, "needs ADDRESS/PREFIX"},
      {24, "needs ADDRESS/PREFIX"},
      {25, "default must be allow or deny"},
      {27, "needs a byte count"},
      {28, "max_clients must be 1..1000000"},
      {29, "idle_timeout_s must be 30..86400"},
      {30, "max_binds must be 1..10000000"},
      {31, "unknown key in [quota]"},
      {32, "needs a byte count"},
      {34, "listen needs"},
      {35, "allow_remote must be yes or no"},
      {36, "line too long"},
      {37, "text after section header"},
      {39, "missing key before '='"},
      {40, "expected 'key = value'"},
  };
  relayd_config_t c;
  relayd_config_errors_t e;
  char text[8192], longline[400], prefix[64];
  size_t i;
  (void)state;
  memset(longline, 'x', sizeof(longline) - 1);
  longline[sizeof(longline) - 1] = '\0';
  memcpy(longline, "cert=/", 6);
  snprintf(text, sizeof(text),
           "; line 1 is fine\n"                 /* 1 */
           "listen = 0.0.0.0:1\n"               /* 2 */
           "[relay]\n"                          /* 3 */
           "[relay\n"                           /* 4 */
           "[relay]\n"                          /* 5 */
           "[bogus]\n"                          /* 6 */
           "ignored = because the section is\n" /* 7 */
           "[relay]\n"                          /* 8 */
           "just some words\n"                  /* 9 */
           "listen = 0.0.0.0\n"                 /* 10 */
           "lisen = 0.0.0.0:1\n"                /* 11 */
           "auth = maybe\n"                     /* 12 */
           "auth = jwt\n"                       /* 13 */
           "auth = both\n"                      /* 14 */
           "jwt_alg = none\n"                   /* 15 */
           "allow_peer = pnotapeerid\n"         /* 16 */
           "jwt_leeway_s = 301\n"               /* 17 */
           "audience =\n"                       /* 18 */
           "public_addr = 198.51.100.1:443\n"   /* 19 */
           "proxy_name = has space\n"           /* 20 */
           "log_level = loud\n"                 /* 21 */
           "[policy]\n"                         /* 22 */
           "allow = 10.0.0.1/8\n"               /* 23 */
           "deny = example.com\n"               /* 24 */
           "default = maybe\n"                  /* 25 */
           "[quota]\n"                          /* 26 */
           "bandwidth = 10 MB\n"                /* 27 */
           "max_clients = 0\n"                  /* 28 */
           "idle_timeout_s = 5\n"               /* 29 */
           "max_binds = -1\n"                   /* 30 */
           "rate = 5\n"                         /* 31 */
           "burst = 99999999999999999999\n"     /* 32 */
           "[metrics]\n"                        /* 33 */
           "listen = localhost:9464\n"          /* 34 */
           "allow_remote = perhaps\n"           /* 35 */
           "%s\n"                               /* 36 */
           "[relay] junk\n"                     /* 37 */
           "[relay]\n"                          /* 38 */
           "= value\n"                          /* 39 */
           "key: value\n",                      /* 40 */
           longline);
  relayd_config_defaults(&c);
  memset(&e, 0, sizeof(e));
  assert_int_equal(relayd_config_parse_string(&c, text, "bad.ini", &e), -1);
  for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    size_t k;
    int found = 0;
    snprintf(prefix, sizeof(prefix), "bad.ini:%d: ", want[i].line);
    for (k = 0; k < e.n; k++)
      if (!strncmp(e.msg[k], prefix, strlen(prefix)) &&
          strstr(e.msg[k], want[i].text))
        found = 1;
    if (!found) {
      dump(&e);
      fail_msg("no error '%s' on line %d", want[i].text, want[i].line);
    }
  }
  /* Exactly one error per bad line: nothing for good lines or for keys
   * under a refused section header (line 7). */
  if (e.n != sizeof(want) / sizeof(want[0]))
    dump(&e);
  assert_int_equal(e.n, sizeof(want) / sizeof(want[0]));
  assert_false(has_error(&e, "bad.ini:7:"));
}

static void test_config_validate(void **state) {
  relayd_config_t c;
  relayd_config_errors_t e;
  char text[1024];
  (void)state;
  /* HS256 with a public key file; cert without key. */
  relayd_config_defaults(&c);
  memset(&e, 0, sizeof(e));
  assert_int_equal(relayd_config_parse_string(&c,
                                              "[relay]\n"
                                              "jwt_alg = HS256\n"
                                              "jwt_key = /k.pem\n"
                                              "cert = /c.pem\n",
                                              "v1.ini", &e),
                   0);
  assert_int_equal(relayd_config_validate(&c, &e), -1);
  assert_true(has_error(&e, "v1.ini:3: jwt_key is for RS* and ES*"));
  assert_true(has_error(&e, "v1.ini:4: cert and key go together"));
  /* ES256 without a key; peerid without allowlist. */
  relayd_config_defaults(&c);
  memset(&e, 0, sizeof(e));
  assert_int_equal(relayd_config_parse_string(&c,
                                              "[relay]\n"
                                              "auth = both\n"
                                              "jwt_alg = ES256\n",
                                              "v2.ini", &e),
                   0);
  assert_int_equal(relayd_config_validate(&c, &e), -1);
  assert_true(has_error(&e, "v2.ini:3: jwt_alg ES256 needs jwt_key"));
  assert_true(has_error(&e, "v2.ini:2: auth=both needs at least one"));
  /* allow_peer without peer auth; jwt settings without jwt auth. */
  relayd_config_defaults(&c);
  memset(&e, 0, sizeof(e));
  snprintf(text, sizeof(text),
           "[relay]\nallow_peer = %s\nauth = peerid\n[quota]\n"
           "max_tunnels = 4\nmax_tunnels_per_client = 8\n",
           peer_a);
  assert_int_equal(relayd_config_parse_string(&c, text, "v3.ini", &e), 0);
  assert_int_equal(relayd_config_validate(&c, &e), 0 - 1);
  assert_true(
      has_error(&e, "v3.ini:6: max_tunnels_per_client exceeds max_tunnels"));
  memset(&e, 0, sizeof(e));
  c.quota.max_tunnels = 100;
  assert_int_equal(relayd_config_validate(&c, &e), 0);
  c.jwt_secret_file[0] = 'x';
  assert_int_equal(relayd_config_validate(&c, &e), -1);
  assert_true(has_error(&e, "v3.ini:3: jwt settings given"));
  relayd_config_defaults(&c);
  memset(&e, 0, sizeof(e));
  snprintf(text, sizeof(text), "[relay]\nallow_peer = %s\n", peer_b);
  assert_int_equal(relayd_config_parse_string(&c, text, "v4.ini", &e), 0);
  assert_int_equal(relayd_config_validate(&c, &e), -1);
  assert_true(has_error(&e, "v4.ini:2: allow_peer is only used"));
  /* Metrics off loopback need allow_remote; small burst; duplicates. */
  relayd_config_defaults(&c);
  memset(&e, 0, sizeof(e));
  assert_int_equal(relayd_config_parse_string(&c,
                                              "[relay]\n"
                                              "listen = 0.0.0.0:1\n"
                                              "listen = 0.0.0.0:1\n"
                                              "[metrics]\n"
                                              "listen = 0.0.0.0:9464\n"
                                              "[quota]\n"
                                              "bandwidth = 100k\n"
                                              "burst = 1000\n",
                                              "v5.ini", &e),
                   0);
  assert_int_equal(relayd_config_validate(&c, &e), -1);
  assert_true(has_error(&e, "v5.ini:5: metrics listen address is not"));
  assert_true(has_error(&e, "v5.ini:8: burst must be at least 4096"));
  assert_true(has_error(&e, "v5.ini:2: listen 0.0.0.0:1 given twice"));
  relayd_config_defaults(&c);
  memset(&e, 0, sizeof(e));
  assert_int_equal(relayd_config_parse_string(&c,
                                              "[metrics]\n"
                                              "listen = [::1]:9464\n"
                                              "[quota]\n"
                                              "bandwidth = 1Mi\n",
                                              "v6.ini", &e),
                   0);
  assert_int_equal(relayd_config_validate(&c, &e), 0);
  assert_int_equal(c.quota.burst, 1048576); /* burst defaults to rate */
  /* The loudly named open relay is accepted when asked for. */
  relayd_config_defaults(&c);
  memset(&e, 0, sizeof(e));
  assert_int_equal(
      relayd_config_parse_string(
          &c, "[relay]\nauth = " RELAYD_AUTH_NONE_NAME "\n", "v7.ini", &e),
      0);
  assert_int_equal(relayd_config_validate(&c, &e), 0);
  assert_int_equal(c.auth, RELAYD_AUTH_NONE);
  assert_false(relayd_config_uses_jwt(&c));
  assert_int_equal(
      relayd_config_parse_string(&c, "[relay]\nauth = none\n", "v8.ini", &e),
      -1);
}

static void test_config_args(void **state) {
  relayd_config_t c;
  relayd_config_errors_t e;
  char dir[256], path[512];
  int help;
  char *argv[12];
  (void)state;
  rt_tmpdir(dir, sizeof(dir));
  rt_write_file(dir, "r.ini",
                "[relay]\nlisten = 0.0.0.0:1000\nlisten = [::]:1000\n"
                "state_dir = /from/file\n",
                strlen("[relay]\nlisten = 0.0.0.0:1000\nlisten = [::]:1000\n"
                       "state_dir = /from/file\n"),
                0644, path, sizeof(path));
  /* --listen before --config still replaces the file's list. */
  argv[0] = "serve";
  argv[1] = "--listen";
  argv[2] = "127.0.0.1:0";
  argv[3] = "--config";
  argv[4] = path;
  argv[5] = "--listen=[::1]:0";
  argv[6] = "--metrics";
  argv[7] = "127.0.0.1:0";
  argv[8] = "--state-dir";
  argv[9] = "/from/flag";
  argv[10] = NULL;
  relayd_config_defaults(&c);
  memset(&e, 0, sizeof(e));
  assert_int_equal(relayd_config_parse_args(&c, 10, argv, &e, &help), 0);
  assert_false(help);
  assert_int_equal(c.nlisten, 2);
  assert_int_equal(c.listen[0].ss_family, AF_INET);
  assert_int_equal(c.listen[1].ss_family, AF_INET6);
  assert_true(c.metrics_enabled);
  assert_string_equal(c.state_dir, "/from/flag");
  assert_string_equal(c.config_path, path);
  /* Only the file: its two listens. */
  {
    char *only[] = {"serve", "--config", path, NULL};
    relayd_config_defaults(&c);
    memset(&e, 0, sizeof(e));
    assert_int_equal(relayd_config_parse_args(&c, 3, only, &e, &help), 0);
    assert_int_equal(c.nlisten, 2);
    assert_int_equal(port_of(&c.listen[0]), 1000);
    assert_string_equal(c.state_dir, "/from/file");
  }
  /* A stray argument. */
  {
    char *stray[] = {"serve", "extra", NULL};
    memset(&e, 0, sizeof(e));
    assert_int_equal(relayd_config_parse_args(&c, 2, stray, &e, &help), -1);
    assert_true(has_error(&e, "command line: unexpected argument 'extra'"));
  }
  /* --help, bad values, unknown options, missing file. */
  argv[1] = "--help";
  assert_int_equal(relayd_config_parse_args(&c, 2, argv, &e, &help), 0);
  assert_true(help);
  memset(&e, 0, sizeof(e));
  argv[1] = "--listen";
  argv[2] = "nohost";
  assert_int_equal(relayd_config_parse_args(&c, 3, argv, &e, &help), -1);
  assert_true(has_error(&e, "--listen nohost"));
  memset(&e, 0, sizeof(e));
  argv[1] = "--frobnicate";
  assert_int_equal(relayd_config_parse_args(&c, 2, argv, &e, &help), -1);
  memset(&e, 0, sizeof(e));
  argv[1] = "--config";
  argv[2] = "/nonexistent/relay.ini";
  assert_int_equal(relayd_config_parse_args(&c, 3, argv, &e, &help), -1);
  assert_true(has_error(&e, "/nonexistent/relay.ini: "));
  rt_rmdir(dir);
}

static void test_config_defaults_and_secret(void **state) {
  relayd_config_t c;
  relayd_config_errors_t e;
  char dir[256], state_dir[512];
  unsigned char *key;
  size_t len;
  struct stat st;
  char err[256];
  (void)state;
  rt_tmpdir(dir, sizeof(dir));
  snprintf(state_dir, sizeof(state_dir), "%s/state/sub", dir);
  relayd_config_defaults(&c);
  snprintf(c.state_dir, sizeof(c.state_dir), "%s", state_dir);
  memset(&e, 0, sizeof(e));
  /* The defaults: authentication on, HS256, dual-stack port 443. */
  assert_int_equal(c.auth, RELAYD_AUTH_JWT);
  assert_int_equal(c.jwt_alg, RELAYD_ALG_HS256);
  assert_int_equal(c.nlisten, 1);
  assert_int_equal(c.listen[0].ss_family, AF_INET6);
  assert_int_equal(port_of(&c.listen[0]), 443);
  assert_string_equal(c.audience, RELAYD_DEFAULT_AUDIENCE);
  assert_int_equal(relayd_config_validate(&c, &e), 0);
  assert_int_equal(relayd_config_ensure_secret(&c, &e), 0);
  assert_true(c.secret_generated);
  assert_int_equal(stat(c.jwt_secret_file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(relayd_token_key_load(c.jwt_secret_file, RELAYD_ALG_HS256,
                                         RELAYD_KEY_VERIFY, &key, &len, err,
                                         sizeof(err)),
                   0);
  assert_int_equal(len, 64);
  free(key);
  /* Second start: the same file is reused. */
  relayd_config_defaults(&c);
  snprintf(c.state_dir, sizeof(c.state_dir), "%s", state_dir);
  assert_int_equal(relayd_config_ensure_secret(&c, &e), 0);
  assert_false(c.secret_generated);
  assert_non_null(strstr(c.jwt_secret_file, RELAYD_SECRET_FILE_NAME));
  /* Nothing to do with a configured secret or without jwt. */
  c.jwt_secret_file[0] = '\0';
  c.auth = RELAYD_AUTH_NONE;
  assert_int_equal(relayd_config_ensure_secret(&c, &e), 0);
  assert_string_equal(c.jwt_secret_file, "");
  /* An unusable state directory is an error. */
  relayd_config_defaults(&c);
  snprintf(c.state_dir, sizeof(c.state_dir), "/proc/nonexistent/qpeer");
  assert_int_equal(relayd_config_ensure_secret(&c, &e), -1);
  rt_rmdir(dir);
}

static void test_config_hostport(void **state) {
  struct sockaddr_storage ss;
  char buf[64];
  (void)state;
  assert_int_equal(relayd_parse_hostport("192.0.2.1:443", &ss), 0);
  assert_string_equal(
      relayd_format_hostport((struct sockaddr *)&ss, buf, sizeof(buf)),
      "192.0.2.1:443");
  assert_int_equal(relayd_parse_hostport("[2001:db8::1]:0", &ss), 0);
  assert_string_equal(
      relayd_format_hostport((struct sockaddr *)&ss, buf, sizeof(buf)),
      "[2001:db8::1]:0");
  assert_int_equal(relayd_parse_hostport("2001:db8::1:443", &ss), -1);
  assert_int_equal(relayd_parse_hostport("192.0.2.1", &ss), -1);
  assert_int_equal(relayd_parse_hostport("192.0.2.1:65536", &ss), -1);
  assert_int_equal(relayd_parse_hostport("192.0.2.1:-1", &ss), -1);
  assert_int_equal(relayd_parse_hostport("192.0.2.1:44x", &ss), -1);
  assert_int_equal(relayd_parse_hostport("[::1]443", &ss), -1);
  assert_int_equal(relayd_parse_hostport("[]:443", &ss), -1);
  assert_int_equal(relayd_parse_hostport("host:443", &ss), -1);
  assert_int_equal(relayd_parse_hostport(":443", &ss), -1);
  assert_string_equal(relayd_config_auth_name(RELAYD_AUTH_NONE),
                      RELAYD_AUTH_NONE_NAME);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_good_file),
      cmocka_unit_test(test_config_every_bad_line),
      cmocka_unit_test(test_config_validate),
      cmocka_unit_test(test_config_args),
      cmocka_unit_test(test_config_defaults_and_secret),
      cmocka_unit_test(test_config_hostport),
  };
  return cmocka_run_group_tests_name("relayd_config", tests, setup, NULL);
}
