/* SPDX-License-Identifier: MIT */
/*
 * Loopback: the handshake in every authentication mode (pinned peer ID,
 * private CA, WebPKI, none), the listener's allow policy, ALPN, and the
 * argument checks of qpeer_connect / qpeer_endpoint_listen. Each case runs
 * one client and one server endpoint on 127.0.0.1 (one on [::1]), port 0,
 * counts every callback and ends with uv_loop_close() == 0.
 */
#include <stdio.h>
#include <string.h>

#include "certs.h"
#include "util.h"
#include "qpeer.h"

/* How long a failed handshake is given to settle (the server side to fail
 * too, a late event to show up) before everything is closed. */
#define SETTLE_MS 300
/* A successful client handshake waits at most this long for the server's
 * on_connection. */
#define ACCEPT_WAIT_MS 2000

static qpt_certs_t certs;
static const char *alpn[] = {"qpeer-test"};

/* One handshake scenario. */
typedef struct {
  const char *bind;          /* "127.0.0.1:0" or "[::1]:0" */
  const char *srv_cert;      /* server cert_file (NULL: identity cert) */
  const char *srv_key;       /* server key_file */
  const char *const *srv_alpn;
  size_t srv_nalpn;
  int allow_client;          /* put the client's peer ID in the allowlist */
  int allow_other;           /* put an unrelated peer ID in the allowlist */
  qpeer_allow_cb allow_cb;   /* listener's allow callback */
  int require_client_identity;
  qpeer_connect_options_t co; /* remote, alpn are filled in if unset */
  int pin_server;            /* co.peer_id = the server's peer ID */
  int pin_other;             /* co.peer_id = an unrelated peer ID */
} scenario_t;

/* Everything the callbacks observe. */
static struct {
  uv_loop_t loop;
  uv_timer_t check, wd;
  qpeer_endpoint_t srv_ep, cli_ep;
  qpeer_conn_t srv_conn, cli_conn;
  qpeer_connect_t creq;
  qpeer_identity_t *other_id;
  int seq;                     /* event sequence counter */
  int connect_cb_called;
  int connect_status;
  int connect_seq;
  uint64_t connect_time;
  int connection_cb_called;
  int connection_status;
  int accepted;
  int allow_cb_called;
  qpeer_peer_id_t allow_cb_arg;
  int cli_closed_called, cli_closed_status;
  int srv_closed_called, srv_closed_status;
  int cli_peer_r, srv_peer_r;
  qpeer_peer_id_t cli_peer, srv_peer;
  int cli_peer_is_server;      /* client saw the server's peer ID */
  int srv_peer_is_client;      /* server saw the client's peer ID */
  char cli_alpn[64], srv_alpn[64];
  int close_cb_called;
  int cli_conn_close_seq;
  int closing;
} F;

static const qpeer_peer_id_t *pid_of(qpeer_endpoint_t *ep) {
  return qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(ep));
}

static void on_close(qpeer_handle_t *h) {
  F.close_cb_called++;
  if (h == (qpeer_handle_t *)&F.cli_conn)
    F.cli_conn_close_seq = ++F.seq;
}

static void cli_on_closed(qpeer_conn_t *c, int status,
                          const qpeer_close_info_t *info) {
  (void)c;
  (void)info;
  F.cli_closed_called++;
  F.cli_closed_status = status;
}

static void srv_on_closed(qpeer_conn_t *c, int status,
                          const qpeer_close_info_t *info) {
  (void)c;
  (void)info;
  F.srv_closed_called++;
  F.srv_closed_status = status;
}

static void on_connect(qpeer_connect_t *req, int status) {
  qpeer_conn_callbacks_t cbs;
  const char *a;
  assert_ptr_equal(req, &F.creq);
  F.connect_cb_called++;
  F.connect_status = status;
  F.connect_seq = ++F.seq;
  F.connect_time = uv_now(&F.loop);
  if (status != 0)
    return;
  assert_ptr_equal(req->conn, &F.cli_conn);
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_closed = cli_on_closed;
  assert_int_equal(qpeer_conn_set_callbacks(&F.cli_conn, &cbs), 0);
  F.cli_peer_r = qpeer_conn_get_peer_id(&F.cli_conn, &F.cli_peer);
  F.cli_peer_is_server =
      F.cli_peer_r == 0 && qpeer_peer_id_equal(&F.cli_peer, pid_of(&F.srv_ep));
  a = qpeer_conn_get_alpn(&F.cli_conn);
  if (a)
    snprintf(F.cli_alpn, sizeof(F.cli_alpn), "%s", a);
  assert_false(qpeer_conn_is_server(&F.cli_conn));
}

static void on_connection(qpeer_endpoint_t *ep, int status) {
  qpeer_conn_callbacks_t cbs;
  const char *a;
  F.connection_cb_called++;
  F.connection_status = status;
  if (status != 0)
    return;
  assert_int_equal(qpeer_endpoint_accept(ep, &F.srv_conn), 0);
  F.accepted = 1;
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_closed = srv_on_closed;
  assert_int_equal(qpeer_conn_set_callbacks(&F.srv_conn, &cbs), 0);
  F.srv_peer_r = qpeer_conn_get_peer_id(&F.srv_conn, &F.srv_peer);
  F.srv_peer_is_client =
      F.srv_peer_r == 0 && qpeer_peer_id_equal(&F.srv_peer, pid_of(&F.cli_ep));
  a = qpeer_conn_get_alpn(&F.srv_conn);
  if (a)
    snprintf(F.srv_alpn, sizeof(F.srv_alpn), "%s", a);
  assert_true(qpeer_conn_is_server(&F.srv_conn));
}

static int allow_none(qpeer_endpoint_t *ep, const qpeer_peer_id_t *client) {
  assert_ptr_equal(ep, &F.srv_ep);
  F.allow_cb_called++;
  F.allow_cb_arg = *client;
  return 0;
}

static int allow_all(qpeer_endpoint_t *ep, const qpeer_peer_id_t *client) {
  assert_ptr_equal(ep, &F.srv_ep);
  F.allow_cb_called++;
  F.allow_cb_arg = *client;
  return 1;
}

static void close_all(void) {
  F.closing = 1;
  uv_close((uv_handle_t *)&F.check, NULL);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&F.cli_conn, on_close), 0);
  if (F.accepted)
    assert_int_equal(qpeer_close((qpeer_handle_t *)&F.srv_conn, on_close),
                     0);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&F.cli_ep, on_close), 0);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&F.srv_ep, on_close), 0);
}

/* Polls until the scenario has an outcome, then closes everything. */
static void on_check(uv_timer_t *t) {
  uint64_t since;
  (void)t;
  if (F.closing || !F.connect_cb_called)
    return;
  since = uv_now(&F.loop) - F.connect_time;
  if (F.connect_status == 0 && F.accepted) {
    close_all();
    return;
  }
  if (F.connect_status != 0 && since >= SETTLE_MS) {
    close_all();
    return;
  }
  /* A client that was told "connected" and then closed, or a server that
   * never accepts: give up waiting. */
  if ((F.cli_closed_called && since >= SETTLE_MS) || since >= ACCEPT_WAIT_MS)
    close_all();
}

static void run(scenario_t *sc) {
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  struct sockaddr_storage bind, addr;
  qpeer_peer_id_t allow[2];
  size_t nallow = 0;

  memset(&F, 0, sizeof(F));
  F.cli_peer_r = F.srv_peer_r = 1; /* "not asked" */
  assert_int_equal(uv_loop_init(&F.loop), 0);
  qpt_watchdog_start(&F.loop, &F.wd, 20000);
  assert_int_equal(
      qpeer_addr_parse(&bind, sc->bind ? sc->bind : "127.0.0.1:0"), 0);

  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&bind;
  assert_int_equal(qpeer_endpoint_init(&F.loop, &F.cli_ep, &eo), 0);
  eo.cert_file = sc->srv_cert;
  eo.key_file = sc->srv_key;
  assert_int_equal(qpeer_endpoint_init(&F.loop, &F.srv_ep, &eo), 0);
  assert_int_equal(qpeer_identity_generate(&F.other_id), 0);

  qpeer_listen_options_default(&lo);
  lo.alpn = sc->srv_alpn ? sc->srv_alpn : alpn;
  lo.nalpn = sc->srv_alpn ? sc->srv_nalpn : 1;
  if (sc->allow_other)
    allow[nallow++] = *qpeer_identity_get_peer_id(F.other_id);
  if (sc->allow_client)
    allow[nallow++] = *pid_of(&F.cli_ep);
  if (nallow) {
    lo.allow = allow;
    lo.nallow = nallow;
  }
  lo.allow_cb = sc->allow_cb;
  lo.require_client_identity = sc->require_client_identity;
  assert_int_equal(qpeer_endpoint_listen(&F.srv_ep, &lo, on_connection), 0);
  memset(allow, 0, sizeof(allow)); /* The listener copied them. */

  assert_int_equal(qpeer_endpoint_get_local_addr(&F.srv_ep, &addr), 0);
  if (!sc->co.remote)
    sc->co.remote = (struct sockaddr *)&addr;
  if (!sc->co.alpn) {
    sc->co.alpn = alpn;
    sc->co.nalpn = 1;
  }
  if (sc->pin_server)
    sc->co.peer_id = pid_of(&F.srv_ep);
  if (sc->pin_other)
    sc->co.peer_id = qpeer_identity_get_peer_id(F.other_id);
  assert_int_equal(
      qpeer_connect(&F.creq, &F.cli_ep, &F.cli_conn, &sc->co, on_connect), 0);
  /* The options were copied: drop the only reference to the other ID. */
  qpeer_identity_unref(F.other_id);
  F.other_id = NULL;
  assert_int_equal(F.connect_cb_called, 0); /* never re-entrant */

  assert_int_equal(uv_timer_init(&F.loop, &F.check), 0);
  assert_int_equal(uv_timer_start(&F.check, on_check, 10, 10), 0);
  uv_run(&F.loop, UV_RUN_DEFAULT);

  /* Common to every outcome: one connect callback, before the conn's
   * close callback; every handle closed exactly once. */
  assert_int_equal(F.connect_cb_called, 1);
  assert_true(F.connect_seq < F.cli_conn_close_seq);
  assert_int_equal(F.close_cb_called, 3 + F.accepted);
}

static void scenario_init(scenario_t *sc, qpeer_auth_mode auth) {
  memset(sc, 0, sizeof(*sc));
  qpeer_connect_options_default(&sc->co);
  sc->co.auth = auth;
}

static void expect_success(void) {
  if (F.connect_status != 0)
    fprintf(stderr, "connect failed: %s (%d)\n",
            qpeer_err_name(F.connect_status), F.connect_status);
  assert_int_equal(F.connect_status, 0);
  assert_int_equal(F.connection_cb_called, 1);
  assert_int_equal(F.connection_status, 0);
  assert_int_equal(F.accepted, 1);
  assert_string_equal(F.cli_alpn, "qpeer-test");
  assert_string_equal(F.srv_alpn, "qpeer-test");
  /* Closed by us, so on_closed never ran. */
  assert_int_equal(F.cli_closed_called, 0);
  assert_int_equal(F.srv_closed_called, 0);
}

static void expect_failure(int status) {
  if (F.connect_status != status)
    fprintf(stderr, "connect status: got %s (%d), want %s (%d)%s%s\n",
            qpeer_err_name(F.connect_status), F.connect_status,
            qpeer_err_name(status), status,
            F.cli_closed_called ? "; client on_closed then got " : "",
            F.cli_closed_called ? qpeer_err_name(F.cli_closed_status) : "");
  /* The server must never hand a failed handshake to the user. */
  assert_int_equal(F.connection_cb_called, 0);
  assert_int_equal(F.accepted, 0);
  assert_int_equal(F.connect_status, status);
  assert_string_equal(qpeer_err_name(F.connect_status),
                      qpeer_err_name(status));
}

/* ---- pinned peer ID --------------------------------------------------- */

static void test_peer_id_ok(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_PEER_ID);
  sc.pin_server = 1;
  run(&sc);
  expect_success();
  /* Mutual: each side sees the other's peer ID. */
  assert_int_equal(F.cli_peer_r, 0);
  assert_int_equal(F.srv_peer_r, 0);
  assert_true(F.cli_peer_is_server);
  assert_true(F.srv_peer_is_client);
  assert_false(qpeer_peer_id_equal(&F.cli_peer, &F.srv_peer));
  qpt_loop_teardown(&F.loop);
}

static void test_peer_id_ipv6(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_PEER_ID);
  sc.bind = "[::1]:0";
  sc.pin_server = 1;
  run(&sc);
  expect_success();
  assert_true(F.cli_peer_is_server);
  assert_true(F.srv_peer_is_client);
  qpt_loop_teardown(&F.loop);
}

static void test_peer_id_wrong(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_PEER_ID);
  sc.pin_other = 1;
  run(&sc);
  expect_failure(QPEER_EPEERID);
  assert_string_equal(qpeer_err_name(F.connect_status), "EPEERID");
  assert_int_equal(F.cli_closed_called, 0);
  qpt_loop_teardown(&F.loop);
}

/* ---- the listener's allow policy ------------------------------------------ */

static void test_allowlist_excludes(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_PEER_ID);
  sc.pin_server = 1;
  sc.allow_other = 1;
  run(&sc);
  /* The server refuses the client's identity: the client must learn it
   * from its connect callback, and on_connection must never run.
   * LIBRARY BUG (reported): the client's connect callback gets 0 (its TLS
   * 1.3 handshake completes before the server checks the client's
   * certificate), and QPEER_EREFUSED only arrives later in on_closed.
   * Same in the two tests below. */
  expect_failure(QPEER_EREFUSED);
  assert_string_equal(qpeer_err_name(F.connect_status), "EREFUSED");
  qpt_loop_teardown(&F.loop);
}

static void test_allowlist_includes(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_PEER_ID);
  sc.pin_server = 1;
  sc.allow_other = 1;
  sc.allow_client = 1;
  run(&sc);
  expect_success();
  assert_int_equal(F.srv_peer_r, 0);
  qpt_loop_teardown(&F.loop);
}

static void test_allow_cb_refuses(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_PEER_ID);
  sc.pin_server = 1;
  sc.allow_cb = allow_none;
  run(&sc);
  expect_failure(QPEER_EREFUSED);
  assert_int_equal(F.allow_cb_called, 1);
  qpt_loop_teardown(&F.loop);
}

static void test_allow_cb_accepts(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_PEER_ID);
  sc.pin_server = 1;
  sc.allow_cb = allow_all;
  run(&sc);
  expect_success();
  assert_int_equal(F.allow_cb_called, 1);
  assert_int_equal(F.srv_peer_r, 0);
  assert_memory_equal(&F.allow_cb_arg, &F.srv_peer, sizeof(F.srv_peer));
  qpt_loop_teardown(&F.loop);
}

/* An anonymous client (CA mode presents no identity) against a listener
 * that requires one is refused. */
static void test_require_identity_refuses_anonymous(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_CA_FILE);
  sc.srv_cert = certs.cert_file;
  sc.srv_key = certs.key_file;
  sc.require_client_identity = 1;
  sc.co.ca_file = certs.ca_file;
  sc.co.server_name = QPT_CERTS_DNS_NAME;
  run(&sc);
  expect_failure(QPEER_EREFUSED);
  qpt_loop_teardown(&F.loop);
}

/* ---- private CA ------------------------------------------------------------ */

static void test_ca_file_ok(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_CA_FILE);
  sc.srv_cert = certs.cert_file;
  sc.srv_key = certs.key_file;
  sc.co.ca_file = certs.ca_file;
  sc.co.server_name = QPT_CERTS_DNS_NAME;
  run(&sc);
  expect_success();
  /* An ECDSA server certificate carries no peer ID, and a CA-mode client
   * presents no identity. */
  assert_int_equal(F.cli_peer_r, UV_ENOENT);
  assert_int_equal(F.srv_peer_r, UV_ENOENT);
  qpt_loop_teardown(&F.loop);
}

static void test_ca_file_chain_ok(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_CA_FILE);
  sc.srv_cert = certs.chain_file;
  sc.srv_key = certs.key_file;
  sc.co.ca_file = certs.ca_file;
  sc.co.server_name = QPT_CERTS_DNS_NAME;
  run(&sc);
  expect_success();
  qpt_loop_teardown(&F.loop);
}

static void test_ca_file_ip_name_ok(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_CA_FILE);
  sc.srv_cert = certs.cert_file;
  sc.srv_key = certs.key_file;
  sc.co.ca_file = certs.ca_file;
  sc.co.server_name = QPT_CERTS_IP_ADDR; /* matched against the IP SAN */
  run(&sc);
  expect_success();
  qpt_loop_teardown(&F.loop);
}

static void test_ca_file_unrelated_ca(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_CA_FILE);
  sc.srv_cert = certs.cert_file;
  sc.srv_key = certs.key_file;
  sc.co.ca_file = certs.other_ca_file;
  sc.co.server_name = QPT_CERTS_DNS_NAME;
  run(&sc);
  expect_failure(QPEER_ECERT);
  assert_string_equal(qpeer_err_name(F.connect_status), "ECERT");
  qpt_loop_teardown(&F.loop);
}

static void test_ca_file_wrong_name(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_CA_FILE);
  sc.srv_cert = certs.cert_file;
  sc.srv_key = certs.key_file;
  sc.co.ca_file = certs.ca_file;
  sc.co.server_name = "other.test";
  run(&sc);
  expect_failure(QPEER_ECERT);
  qpt_loop_teardown(&F.loop);
}

/* The identity's self-signed certificate is not signed by the CA. */
static void test_ca_file_against_identity_cert(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_CA_FILE);
  sc.co.ca_file = certs.ca_file;
  sc.co.server_name = QPT_CERTS_DNS_NAME;
  run(&sc);
  expect_failure(QPEER_ECERT);
  qpt_loop_teardown(&F.loop);
}

/* ---- WebPKI ---------------------------------------------------------------- */

static void test_webpki_private_ca(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_WEBPKI);
  sc.srv_cert = certs.cert_file;
  sc.srv_key = certs.key_file;
  sc.co.server_name = QPT_CERTS_DNS_NAME;
  run(&sc);
  expect_failure(QPEER_ECERT);
  qpt_loop_teardown(&F.loop);
}

/* ---- no authentication ---------------------------------------------------- */

static void test_insecure_identity_cert(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_INSECURE_NO_AUTHENTICATION);
  run(&sc);
  expect_success();
  /* The client verified nothing, yet learns the server's peer ID, and it
   * still presents its own identity. */
  assert_int_equal(F.cli_peer_r, 0);
  assert_true(F.cli_peer_is_server);
  assert_int_equal(F.srv_peer_r, 0);
  assert_true(F.srv_peer_is_client);
  qpt_loop_teardown(&F.loop);
}

static void test_insecure_ca_cert(void **state) {
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_INSECURE_NO_AUTHENTICATION);
  sc.srv_cert = certs.cert_file;
  sc.srv_key = certs.key_file;
  run(&sc);
  expect_success();
  assert_int_equal(F.cli_peer_r, UV_ENOENT);
  qpt_loop_teardown(&F.loop);
}

/* ---- ALPN ------------------------------------------------------------------- */

static void test_alpn_mismatch(void **state) {
  static const char *cli_alpn[] = {"not-qpeer"};
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_PEER_ID);
  sc.pin_server = 1;
  sc.co.alpn = cli_alpn;
  sc.co.nalpn = 1;
  run(&sc);
  fprintf(stderr, "ALPN mismatch: connect status %s (%d)\n",
          qpeer_err_name(F.connect_status), F.connect_status);
  expect_failure(QPEER_EHANDSHAKE);
  qpt_loop_teardown(&F.loop);
}

static void test_alpn_second_choice(void **state) {
  static const char *cli_alpn[] = {"h3", "qpeer-test"};
  static const char *srv_alpn[] = {"qpeer-test", "other"};
  scenario_t sc;
  (void)state;
  scenario_init(&sc, QPEER_AUTH_PEER_ID);
  sc.pin_server = 1;
  sc.co.alpn = cli_alpn;
  sc.co.nalpn = 2;
  sc.srv_alpn = srv_alpn;
  sc.srv_nalpn = 2;
  run(&sc);
  expect_success();
  qpt_loop_teardown(&F.loop);
}

/* ---- argument checks -------------------------------------------------------- */

static int bad_connect_cb_called;
static void bad_on_connect(qpeer_connect_t *req, int status) {
  (void)req;
  (void)status;
  bad_connect_cb_called++;
}

static int bad_close_cb_called;
static void bad_on_close(qpeer_handle_t *h) {
  (void)h;
  bad_close_cb_called++;
}

static void test_bad_arguments(void **state) {
  static const char *empty_alpn[] = {""};
  static const char *null_alpn[] = {NULL};
  uv_loop_t loop;
  uv_timer_t wd;
  qpeer_endpoint_t ep, ep2;
  qpeer_conn_t conn;
  qpeer_connect_t req;
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_connect_options_t co, good;
  struct sockaddr_storage bind, remote;
  (void)state;
  bad_connect_cb_called = bad_close_cb_called = 0;
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &wd, 20000);
  assert_int_equal(qpeer_addr_parse(&bind, "127.0.0.1:0"), 0);
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&bind;

  /* Endpoint: a cert without its key, and unreadable files. */
  eo.cert_file = certs.cert_file;
  assert_int_equal(qpeer_endpoint_init(&loop, &ep2, &eo), UV_EINVAL);
  eo.key_file = "/nonexistent/qpeer/key.pem";
  assert_int_equal(qpeer_endpoint_init(&loop, &ep2, &eo), QPEER_EKEYFILE);
  eo.cert_file = certs.key_file; /* a key is not a certificate */
  eo.key_file = certs.key_file;
  assert_int_equal(qpeer_endpoint_init(&loop, &ep2, &eo), QPEER_EKEYFILE);
  eo.cert_file = eo.key_file = NULL;
  assert_int_equal(qpeer_endpoint_init(&loop, &ep, &eo), 0);
  assert_int_equal(qpeer_endpoint_get_local_addr(&ep, &remote), 0);

  /* Listen. */
  qpeer_listen_options_default(&lo);
  assert_int_equal(qpeer_endpoint_listen(&ep, &lo, on_connection), UV_EINVAL);
  lo.alpn = alpn;
  lo.nalpn = 1;
  assert_int_equal(qpeer_endpoint_listen(&ep, &lo, NULL), UV_EINVAL);
  lo.nallow = 1; /* without an array */
  assert_int_equal(qpeer_endpoint_listen(&ep, &lo, on_connection), UV_EINVAL);
  lo.nallow = 0;
  lo.alpn = empty_alpn;
  assert_int_equal(qpeer_endpoint_listen(&ep, &lo, on_connection), UV_EINVAL);
  lo.alpn = alpn;
  assert_int_equal(qpeer_endpoint_listen(&ep, &lo, on_connection), 0);
  assert_int_equal(qpeer_endpoint_listen(&ep, &lo, on_connection),
                   UV_EALREADY);

  /* Connect: every call below must fail without side effects. */
  qpeer_connect_options_default(&good);
  assert_int_equal(good.auth, QPEER_AUTH_PEER_ID); /* the default */
  good.remote = (struct sockaddr *)&remote;
  good.alpn = alpn;
  good.nalpn = 1;
  good.peer_id = pid_of(&ep);

  co = good;
  co.peer_id = NULL; /* PEER_ID mode without a peer ID */
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &co, bad_on_connect),
                   UV_EINVAL);
  co = good;
  co.nalpn = 0; /* no ALPN */
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &co, bad_on_connect),
                   UV_EINVAL);
  co = good;
  co.alpn = NULL;
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &co, bad_on_connect),
                   UV_EINVAL);
  co = good;
  co.alpn = null_alpn;
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &co, bad_on_connect),
                   UV_EINVAL);
  co = good;
  co.alpn = empty_alpn;
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &co, bad_on_connect),
                   UV_EINVAL);
  co = good;
  co.remote = NULL;
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &co, bad_on_connect),
                   UV_EINVAL);
  co = good;
  co.auth = QPEER_AUTH_CA_FILE; /* no ca_file, no server_name */
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &co, bad_on_connect),
                   UV_EINVAL);
  co.ca_file = certs.ca_file; /* still no server_name */
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &co, bad_on_connect),
                   UV_EINVAL);
  co.ca_file = NULL;
  co.server_name = QPT_CERTS_DNS_NAME; /* no ca_file */
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &co, bad_on_connect),
                   UV_EINVAL);
  co = good;
  co.auth = QPEER_AUTH_WEBPKI; /* no server_name */
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &co, bad_on_connect),
                   UV_EINVAL);
  co.server_name = "";
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &co, bad_on_connect),
                   UV_EINVAL);
  co = good;
  co.auth = (qpeer_auth_mode)99;
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &co, bad_on_connect),
                   UV_EINVAL);
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &good, NULL), UV_EINVAL);
  assert_int_equal(qpeer_connect(NULL, &ep, &conn, &good, bad_on_connect),
                   UV_EINVAL);
  assert_int_equal(qpeer_connect(&req, &ep, NULL, &good, bad_on_connect),
                   UV_EINVAL);
  assert_int_equal(qpeer_connect(&req, &ep, &conn, NULL, bad_on_connect),
                   UV_EINVAL);
  assert_int_equal(qpeer_connect_versioned(&req, &ep, &conn, 0, &good,
                                           bad_on_connect),
                   UV_EINVAL);
  /* An unusable CA file is reported by the call itself. */
  co = good;
  co.auth = QPEER_AUTH_CA_FILE;
  co.server_name = QPT_CERTS_DNS_NAME;
  co.ca_file = "/nonexistent/qpeer/ca.pem";
  {
    int r = qpeer_connect(&req, &ep, &conn, &co, bad_on_connect);
    assert_true(r == QPEER_ECERT || r == QPEER_ETLS);
  }
  co.ca_file = certs.key_file; /* no certificate in it */
  {
    int r = qpeer_connect(&req, &ep, &conn, &co, bad_on_connect);
    assert_true(r == QPEER_ECERT || r == QPEER_ETLS);
  }

  assert_int_equal(qpeer_close(NULL, NULL), UV_EINVAL);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&ep, bad_on_close), 0);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&ep, bad_on_close),
                   UV_EALREADY);
  /* A closing endpoint refuses new connections. */
  assert_int_equal(qpeer_connect(&req, &ep, &conn, &good, bad_on_connect),
                   UV_EBUSY);
  uv_run(&loop, UV_RUN_DEFAULT);
  /* A failed call never calls its callback. */
  assert_int_equal(bad_connect_cb_called, 0);
  assert_int_equal(bad_close_cb_called, 1);
  qpt_loop_teardown(&loop);
}

static void test_err_names(void **state) {
  (void)state;
  assert_string_equal(qpeer_err_name(QPEER_EPEERID), "EPEERID");
  assert_string_equal(qpeer_err_name(QPEER_ECERT), "ECERT");
  assert_string_equal(qpeer_err_name(QPEER_EREFUSED), "EREFUSED");
  assert_string_equal(qpeer_err_name(QPEER_EHANDSHAKE), "EHANDSHAKE");
  assert_true(strlen(qpeer_strerror(QPEER_EPEERID)) > 0);
}

static int setup(void **state) {
  (void)state;
  qpt_certs_make(&certs);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  qpt_certs_remove(&certs);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_err_names),
      cmocka_unit_test(test_peer_id_ok),
      cmocka_unit_test(test_peer_id_ipv6),
      cmocka_unit_test(test_peer_id_wrong),
      cmocka_unit_test(test_allowlist_excludes),
      cmocka_unit_test(test_allowlist_includes),
      cmocka_unit_test(test_allow_cb_refuses),
      cmocka_unit_test(test_allow_cb_accepts),
      cmocka_unit_test(test_require_identity_refuses_anonymous),
      cmocka_unit_test(test_ca_file_ok),
      cmocka_unit_test(test_ca_file_chain_ok),
      cmocka_unit_test(test_ca_file_ip_name_ok),
      cmocka_unit_test(test_ca_file_unrelated_ca),
      cmocka_unit_test(test_ca_file_wrong_name),
      cmocka_unit_test(test_ca_file_against_identity_cert),
      cmocka_unit_test(test_webpki_private_ca),
      cmocka_unit_test(test_insecure_identity_cert),
      cmocka_unit_test(test_insecure_ca_cert),
      cmocka_unit_test(test_alpn_mismatch),
      cmocka_unit_test(test_alpn_second_choice),
      cmocka_unit_test(test_bad_arguments),
  };
  return cmocka_run_group_tests_name("auth", tests, setup, teardown);
}
