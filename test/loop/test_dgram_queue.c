/* SPDX-License-Identifier: MIT */
/* Loopback: the outgoing DATAGRAM queue (lib/quic/dgring.c in a
 * connection). (1) It holds 1024 datagrams and refuses the next with
 * UV_ENOBUFS, then sends every queued one. (2) It holds at most 512 KiB
 * (payload + 2 per datagram). (3) Datagrams queued for a larger path are
 * dropped and counted when the connection moves to a path with a smaller
 * packet size (a fresh path starts at 1200 bytes), instead of holding up
 * the queue: later datagrams still arrive. (4) The queue's storage is
 * released a second after the last datagram. */
#include <string.h>

#include "qpeer.h"
#include "udpfw.h"
#include "util.h"
#include "quic/handles.h"

static uv_loop_t loop;
static qpeer_endpoint_t srv_ep, cli_ep;
static qpeer_conn_t srv_conn, cli_conn;
static qpeer_connect_t creq;
static qpeer_migrate_t mreq;
static qpt_udpfw fw;
static qpeer__vif vif;
static struct sockaddr_storage syn_addr, fw_addr;
static uv_timer_t poll;
static int connected, phase, migrated, closes, polls_idle;
static uint64_t srv_rx, srv_rx_small, sent_before, dropped_before;
static size_t big;
static const char *alpn[] = {"qpeer-test"};

static qpeer__conn *cli(void) { return cli_conn.impl; }

static void on_close(qpeer_handle_t *h) {
  (void)h;
  closes++;
}

static void finish(void) {
  uv_timer_stop(&poll);
  uv_close((uv_handle_t *)&poll, NULL);
  qpeer_close((qpeer_handle_t *)&cli_conn, on_close);
  qpeer_close((qpeer_handle_t *)&srv_conn, on_close);
  qpeer_close((qpeer_handle_t *)&cli_ep, on_close);
  qpeer_close((qpeer_handle_t *)&srv_ep, on_close);
  qpt_udpfw_stop(&fw);
}

static void srv_on_dgram(qpeer_conn_t *c, const uint8_t *d, size_t n) {
  (void)c;
  assert_true(n > 0);
  assert_int_equal(d[0], (uint8_t)n); /* whole and unchanged */
  srv_rx++;
  if (n == 100)
    srv_rx_small++;
}

static int send_len(size_t n) {
  uint8_t buf[1500];
  memset(buf, (uint8_t)n, n);
  return qpeer_conn_send_datagram(&cli_conn, buf, n);
}

static void on_migrated(qpeer_migrate_t *req, int status) {
  (void)req;
  assert_int_equal(status, 0);
  migrated = 1;
}

static void on_poll(uv_timer_t *t) {
  qpeer_conn_stats_t st;
  int i, r, n;
  (void)t;
  if (!connected)
    return;
  assert_int_equal(qpeer_conn_get_stats(&cli_conn, &st), 0);
  switch (phase) {
  case 0: /* (1) the record limit, all in one loop iteration */
    for (i = 0; i < 1100; i++) {
      r = send_len(100);
      if (i < 1024)
        assert_int_equal(r, 0);
      else
        assert_int_equal(r, UV_ENOBUFS);
    }
    assert_int_equal(cli()->dgq.n, 1024);
    sent_before = st.datagrams_sent;
    phase = 1;
    break;
  case 1: /* every queued datagram leaves */
    if (st.datagrams_sent - sent_before < 1024 || cli()->dgq.n != 0)
      return;
    assert_true(srv_rx > 0);
    phase = 2;
    break;
  case 2: /* (2) the byte limit, once the path allows large datagrams */
    big = qpeer_conn_get_max_datagram_size(&cli_conn);
    if (big < 1300)
      return; /* PMTU discovery has not raised the path yet */
    for (n = 0; (r = send_len(big)) == 0; n++)
      assert_true(n < 1024);
    assert_int_equal(r, UV_ENOBUFS);
    assert_true((size_t)n * (big + 2) <= 512 * 1024);
    assert_true((size_t)(n + 1) * (big + 2) > 512 * 1024);
    phase = 3;
    break;
  case 3: /* (3) large ones queued, then a path with 1200-byte packets */
    if (cli()->dgq.n != 0)
      return;
    big = qpeer_conn_get_max_datagram_size(&cli_conn);
    assert_true(big >= 1300);
    for (i = 0; i < 5; i++)
      assert_int_equal(send_len(big), 0);
    dropped_before = st.datagrams_dropped;
    assert_int_equal(qpeer__conn_migrate_immediate(
                         &mreq, &cli_conn, (struct sockaddr *)&syn_addr,
                         (struct sockaddr *)&fw_addr, on_migrated),
                     0);
    phase = 4;
    break;
  case 4:
    if (cli()->dgq.n != 0)
      return;
    /* None of the five fitted the new path's packets (PMTU discovery may
     * have raised that path again since). */
    assert_int_equal(st.datagrams_dropped - dropped_before, 5);
    srv_rx_small = 0;
    for (i = 0; i < 3; i++)
      assert_int_equal(send_len(100), 0);
    phase = 5;
    break;
  case 5: /* later datagrams are not held up */
    if (srv_rx_small < 3 || !migrated)
      return;
    polls_idle = 0;
    phase = 6;
    break;
  case 6: /* (4) storage released about a second after the last one */
    polls_idle++;
    if (cli()->dgq.buf) {
      assert_true(polls_idle < 300); /* 3 s at 10 ms */
      return;
    }
    assert_true(polls_idle >= 50); /* not before ~0.5 s either */
    finish();
    break;
  default:
    break;
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

static void test_dgram_queue(void **state) {
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_connect_options_t co;
  struct sockaddr_storage srv_addr, bind4;
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
  /* The second path: through a forwarder, with its own (synthetic) local
   * address on the client (a socket alias), as ngtcp2 0.12 requires. */
  assert_int_equal(qpt_udpfw_start(&fw, &loop, (struct sockaddr *)&bind4,
                                   (struct sockaddr *)&srv_addr, 0, 0, 7),
                   0);
  qpt_udpfw_addr(&fw, &fw_addr);
  qpeer_addr_parse(&syn_addr, "[100::2]:1");
  memset(&vif, 0, sizeof(vif));
  memcpy(&vif.local, &syn_addr, sizeof(syn_addr));
  vif.socket_alias = 1;
  memcpy(&vif.alias_remote, &fw_addr, sizeof(fw_addr));
  assert_int_equal(qpeer__ep_add_vif(qpeer__ep_of(&cli_ep), &vif), 0);
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)&srv_addr;
  co.alpn = alpn;
  co.nalpn = 1;
  co.peer_id = qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&srv_ep));
  assert_int_equal(qpeer_connect(&creq, &cli_ep, &cli_conn, &co, on_connect),
                   0);
  assert_int_equal(uv_timer_init(&loop, &poll), 0);
  assert_int_equal(uv_timer_start(&poll, on_poll, 10, 10), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(phase, 6);
  assert_int_equal(closes, 4);
  qpt_loop_teardown(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dgram_queue),
  };
  return cmocka_run_group_tests_name("dgram_queue", tests, NULL, NULL);
}
