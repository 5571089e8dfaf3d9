/* SPDX-License-Identifier: MIT */
/*
 * QUIC address discovery over the qpeer control stream: each side learns
 * the address the other observes for it; after a simulated NAT rebinding
 * (the forwarder changes its upstream port) the server reports again; a
 * peer without the control stream is unaffected; the control streams
 * never reach the application; an HTTP/3 (MASQUE) connection does not
 * negotiate them.
 */
#include <string.h>

#include "udpfw.h"
#include "util.h"
#include "core/addr.h"
#include "qpeer.h"

static const char *qpeer_alpn[] = {"qpeer-test"};
static const char *h3_alpn[] = {QPEER_MASQUE_ALPN};
static const char **alpn = qpeer_alpn;
static int expect_no_ctrl; /* finish once the app stream arrived */
static uv_loop_t loop;
static qpeer_endpoint_t srv_ep, cli_ep;
static qpeer_conn_t srv_conn, cli_conn;
static qpeer_connect_t creq;
static qpeer_stream_t cli_uni, srv_uni;
static qpeer_write_t wreq;
static qpt_udpfw fw;
static int use_fw, rebound, cli_obs, srv_obs, streams_seen, closes;
static int64_t srv_stream_id = -1;
static struct sockaddr_storage cli_local, first_obs, last_obs;
static int finished;
static uv_timer_t nudge;

static void on_close(qpeer_handle_t *h) {
  (void)h;
  closes++;
}

static void finish(void) {
  if (finished++)
    return;
  qpeer_close((qpeer_handle_t *)&cli_uni, on_close);
  if (streams_seen)
    qpeer_close((qpeer_handle_t *)&srv_uni, on_close);
  qpeer_close((qpeer_handle_t *)&srv_ep, on_close);
  qpeer_close((qpeer_handle_t *)&cli_ep, on_close);
  uv_close((uv_handle_t *)&nudge, NULL);
  if (use_fw)
    qpt_udpfw_stop(&fw);
}

static void on_write(qpeer_write_t *req, int status) {
  (void)req;
  (void)status;
}

/* Keeps the client talking so the server notices the rebinding. */
static void on_nudge(uv_timer_t *t) {
  uv_buf_t b = uv_buf_init((char *)"x", 1);
  (void)t;
  qpeer_conn_send_datagram(&cli_conn, (const uint8_t *)b.base, 1);
}

static void cli_observed(qpeer_conn_t *c, const struct sockaddr *a) {
  (void)c;
  cli_obs++;
  if (cli_obs == 1) {
    memcpy(&first_obs, a, qpeer__addr_len(a));
    if (!use_fw) {
      /* Direct: the server sees exactly our socket. */
      assert_true(qpeer__addr_equal(a, (struct sockaddr *)&cli_local));
    } else {
      /* Behind the forwarder: its upstream socket, not us. */
      assert_false(qpeer__addr_equal(a, (struct sockaddr *)&cli_local));
      assert_int_equal(qpt_udpfw_rebind(&fw), 0);
      rebound = 1;
      uv_timer_start(&nudge, on_nudge, 20, 20);
    }
  } else {
    memcpy(&last_obs, a, qpeer__addr_len(a));
  }
  if (!use_fw && srv_obs && streams_seen)
    finish();
  if (use_fw && cli_obs == 2)
    finish();
}

static void srv_observed(qpeer_conn_t *c, const struct sockaddr *a) {
  struct sockaddr_storage srv_addr;
  (void)c;
  /* The client sees the server at its socket, or at the forwarder. */
  if (use_fw)
    qpt_udpfw_addr(&fw, &srv_addr);
  else
    qpeer_endpoint_get_local_addr(&srv_ep, &srv_addr);
  assert_true(qpeer__addr_equal(a, (struct sockaddr *)&srv_addr));
  srv_obs++;
  if (!use_fw && cli_obs && streams_seen)
    finish();
}

static void srv_read(qpeer_stream_t *s, ssize_t n, const uint8_t *d) {
  (void)s;
  (void)d;
  (void)n;
}

static void srv_on_stream(qpeer_conn_t *c, int status) {
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_conn_accept_stream(c, &srv_uni), 0);
  srv_stream_id = qpeer_stream_get_id(&srv_uni);
  streams_seen++;
  qpeer_stream_read_start(&srv_uni, srv_read);
  if (!use_fw && ((cli_obs && srv_obs) || expect_no_ctrl))
    finish();
}

static void on_connection(qpeer_endpoint_t *ep, int status) {
  qpeer_conn_callbacks_t cbs;
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_endpoint_accept(ep, &srv_conn), 0);
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_observed_address = srv_observed;
  cbs.on_stream = srv_on_stream;
  qpeer_conn_set_callbacks(&srv_conn, &cbs);
}

static void on_connect(qpeer_connect_t *req, int status) {
  qpeer_conn_callbacks_t cbs;
  uv_buf_t b = uv_buf_init((char *)"hello", 5);
  (void)req;
  assert_int_equal(status, 0);
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_observed_address = cli_observed;
  qpeer_conn_set_callbacks(&cli_conn, &cbs);
  /* An application uni stream next to the hidden control stream. */
  assert_int_equal(qpeer_stream_open(&cli_conn, &cli_uni, QPEER_STREAM_UNI),
                   0);
  assert_int_equal(qpeer_stream_write(&wreq, &cli_uni, &b, 1, on_write), 0);
}

static void run(int fwd, int srv_no_ctrl) {
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_connect_options_t co;
  struct sockaddr_storage b4, srv_addr;
  static uv_timer_t wd;
  use_fw = fwd;
  rebound = cli_obs = srv_obs = streams_seen = closes = finished = 0;
  srv_stream_id = -1;
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &wd, 20000);
  uv_timer_init(&loop, &nudge);
  qpeer_addr_parse(&b4, "127.0.0.1:0");
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&b4;
  eo.disable_control_stream = srv_no_ctrl;
  assert_int_equal(qpeer_endpoint_init(&loop, &srv_ep, &eo), 0);
  eo.disable_control_stream = 0;
  assert_int_equal(qpeer_endpoint_init(&loop, &cli_ep, &eo), 0);
  qpeer_endpoint_get_local_addr(&srv_ep, &srv_addr);
  qpeer_endpoint_get_local_addr(&cli_ep, &cli_local);
  qpeer_listen_options_default(&lo);
  lo.alpn = alpn;
  lo.nalpn = 1;
  assert_int_equal(qpeer_endpoint_listen(&srv_ep, &lo, on_connection), 0);
  if (fwd) {
    assert_int_equal(qpt_udpfw_start(&fw, &loop, (struct sockaddr *)&b4,
                                     (struct sockaddr *)&srv_addr, 0, 0, 1),
                     0);
    qpt_udpfw_addr(&fw, &srv_addr);
  }
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)&srv_addr;
  co.alpn = alpn;
  co.nalpn = 1;
  co.peer_id = qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&srv_ep));
  assert_int_equal(qpeer_connect(&creq, &cli_ep, &cli_conn, &co, on_connect),
                   0);
  if (srv_no_ctrl) {
    /* No observations will come: stop once the app stream arrived. */
    uv_run(&loop, UV_RUN_ONCE);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_addrdisc_direct(void **state) {
  (void)state;
  run(0, 0);
  assert_int_equal(cli_obs, 1);
  assert_int_equal(srv_obs, 1);
  assert_int_equal(streams_seen, 1);
  /* The control streams took IDs 2 and 3: the app's is the next one. */
  assert_true(srv_stream_id == 6);
  assert_int_equal(closes, 4);
  qpt_loop_teardown(&loop);
}

static void test_addrdisc_rebinding(void **state) {
  (void)state;
  run(1, 0);
  assert_true(rebound);
  assert_int_equal(cli_obs, 2);
  /* The second report names the forwarder's new upstream port. */
  assert_false(qpeer__addr_equal((struct sockaddr *)&first_obs,
                                 (struct sockaddr *)&last_obs));
  qpt_loop_teardown(&loop);
}

/* With ALPN h3 the server does not answer the extension (a MASQUE relay
 * connection: its HTTP/3 session has no use for the control stream, and
 * every idle relay client would pay for it), so neither side opens one:
 * the client's first unidirectional stream is the application's (ID 2)
 * and no observed address is reported. */
static void test_addrdisc_not_on_h3(void **state) {
  (void)state;
  alpn = h3_alpn;
  expect_no_ctrl = 1;
  run(0, 0);
  alpn = qpeer_alpn;
  expect_no_ctrl = 0;
  assert_int_equal(streams_seen, 1);
  assert_true(srv_stream_id == 2);
  assert_int_equal(cli_obs, 0);
  assert_int_equal(srv_obs, 0);
  assert_int_equal(closes, 4);
  qpt_loop_teardown(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_addrdisc_direct),
      cmocka_unit_test(test_addrdisc_rebinding),
      cmocka_unit_test(test_addrdisc_not_on_h3),
  };
  return cmocka_run_group_tests_name("addrdisc", tests, NULL, NULL);
}
