/* SPDX-License-Identifier: MIT */
/* Loopback: a connection that carries only DATAGRAM frames survives a
 * blackout that loses a whole flight of them. ngtcp2 0.12 does not count a
 * DATAGRAM-only packet as PTO-eliciting, so such a flight is never declared
 * lost by itself and, once it fills the congestion window, no ack-eliciting
 * packet could leave again (the relay's outer connections carry exactly
 * this traffic). The library keeps a packet of window free for datagrams
 * and sends a PING when a flight goes unacknowledged for a PTO; this test
 * checks that datagrams flow again after the blackout. The blackout lasts
 * a number of pump ticks (any length past a PTO shows the stall); the test
 * ends once the server received enough datagrams after it. */
#include <string.h>

#include "qpeer.h"
#include "udpfw.h"
#include "util.h"

#define DGRAM_LEN 1000
#define BLACKOUT_TICKS 60   /* pump ticks (5 ms) with everything dropped */
#define AFTER_DGRAMS 50     /* needed afterwards */

static uv_loop_t loop;
static qpeer_endpoint_t srv_ep, cli_ep;
static qpeer_conn_t srv_conn, cli_conn;
static qpeer_connect_t creq;
static qpt_udpfw fw;
static uv_timer_t pump;
static int connected, blackout, done, closed_cbs;
static uint64_t blackout_ticks, rx_total, rx_after;
static const char *alpn[] = {"qpeer-test"};

static void on_close(qpeer_handle_t *h) {
  (void)h;
  closed_cbs++;
}

static void finish(void) {
  if (done)
    return;
  done = 1;
  uv_timer_stop(&pump);
  uv_close((uv_handle_t *)&pump, NULL);
  qpeer_close((qpeer_handle_t *)&cli_conn, on_close);
  qpeer_close((qpeer_handle_t *)&srv_conn, on_close);
  qpeer_close((qpeer_handle_t *)&cli_ep, on_close);
  qpeer_close((qpeer_handle_t *)&srv_ep, on_close);
  qpt_udpfw_stop(&fw);
}

static void srv_on_dgram(qpeer_conn_t *c, const uint8_t *d, size_t n) {
  (void)c;
  (void)d;
  assert_int_equal(n, DGRAM_LEN);
  rx_total++;
  if (blackout == 2 && ++rx_after >= AFTER_DGRAMS)
    finish();
}

/* Offers datagrams every tick (the connection's queue is bounded: a full
 * queue refuses with UV_ENOBUFS, which is fine here). */
static void on_pump(uv_timer_t *t) {
  uint8_t buf[DGRAM_LEN];
  int i;
  (void)t;
  if (!connected || done)
    return;
  memset(buf, 0xab, sizeof(buf));
  for (i = 0; i < 20; i++) {
    int r = qpeer_conn_send_datagram(&cli_conn, buf, sizeof(buf));
    if (r != 0 && r != UV_ENOBUFS)
      fail_msg("send_datagram: %s", qpeer_err_name(r));
  }
  if (blackout == 1)
    blackout_ticks++;
  if (blackout == 0 && rx_total >= 20) {
    /* Flowing: now lose everything for a while. */
    blackout = 1;
    fw.drop_permille = 1000;
  } else if (blackout == 1 && blackout_ticks >= BLACKOUT_TICKS) {
    blackout = 2;
    fw.drop_permille = 0;
  }
}

static void on_connection(qpeer_endpoint_t *ep, int status) {
  qpeer_conn_callbacks_t cbs;
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_endpoint_accept(ep, &srv_conn), 0);
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_datagram = srv_on_dgram;
  assert_int_equal(qpeer_conn_set_callbacks(&srv_conn, &cbs), 0);
}

static void on_connect(qpeer_connect_t *req, int status) {
  (void)req;
  assert_int_equal(status, 0);
  connected = 1;
}

static void test_dgram_blackout(void **state) {
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_connect_options_t co;
  struct sockaddr_storage srv_addr, fw_addr, bind4;
  uv_timer_t wd;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &wd, 60000);
  qpeer_endpoint_options_default(&eo);
  qpeer_addr_parse(&bind4, "127.0.0.1:0");
  eo.bind_addr = (struct sockaddr *)&bind4;
  assert_int_equal(qpeer_endpoint_init(&loop, &srv_ep, &eo), 0);
  assert_int_equal(qpeer_endpoint_init(&loop, &cli_ep, &eo), 0);
  qpeer_listen_options_default(&lo);
  lo.alpn = alpn;
  lo.nalpn = 1;
  assert_int_equal(qpeer_endpoint_listen(&srv_ep, &lo, on_connection), 0);
  assert_int_equal(qpeer_endpoint_get_local_addr(&srv_ep, &srv_addr), 0);
  assert_int_equal(qpt_udpfw_start(&fw, &loop, (struct sockaddr *)&bind4,
                                   (struct sockaddr *)&srv_addr, 0, 0, 7),
                   0);
  qpt_udpfw_addr(&fw, &fw_addr);
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)&fw_addr;
  co.alpn = alpn;
  co.nalpn = 1;
  co.peer_id = qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&srv_ep));
  assert_int_equal(qpeer_connect(&creq, &cli_ep, &cli_conn, &co, on_connect),
                   0);
  uv_timer_init(&loop, &pump);
  uv_timer_start(&pump, on_pump, 5, 5);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(blackout, 2);
  assert_true(fw.dropped > 0);
  assert_true(rx_after >= AFTER_DGRAMS);
  assert_int_equal(closed_cbs, 4);
  qpt_loop_teardown(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dgram_blackout),
  };
  return cmocka_run_group_tests_name("dgram_loss", tests, NULL, NULL);
}
