/* SPDX-License-Identifier: MIT */
/*
 * NAT traversal inside a live connection on loopback: the client reaches
 * the server through a stand-in relay (a forwarder reached through a
 * socket alias), the server advertises its host candidate, the client
 * punches and migrates to the direct path while a stream keeps flowing;
 * every byte is checked and the relay carries nothing after the move.
 */
#include <gnutls/crypto.h>
#include <string.h>

#include "udpfw.h"
#include "util.h"
#include "core/addr.h"
#include "nat/candidate.h"
#include "qpeer.h"
#include "quic/handles.h"

#define TOTAL (16ull << 20)
#define CHUNK (64 * 1024)

static const char *alpn[] = {"qpeer-test"};
static uv_loop_t loop;
static qpeer_endpoint_t srv_ep, cli_ep;
static qpeer_conn_t srv_conn, cli_conn;
static qpeer_stream_t cs, ss;
static qpeer_connect_t creq;
static qpeer_punch_t preq;
static qpeer_write_t w;
static qpeer_shutdown_t sh;
static uint8_t buf[CHUNK];
static uint64_t queued, received, rng = 99, relay_at_punch;
static gnutls_hash_hd_t txh, rxh;
static struct sockaddr_storage srv_addr, cli_addr, relay_addr, syn_addr;
static qpeer__vif vif;
static qpt_udpfw fw;
static uv_timer_t tick;
static int punched, punch_status = 1, stream_done, shut_done, closes;
/* Fallback scenario: the direct path goes through a second forwarder that
 * the test cuts, then restores. */
static int fb_mode, fb_phase, fallbacks, upgrades;
static qpt_udpfw dfw;
static struct sockaddr_storage direct_addr, nowhere;
static qpeer_punch_t preq2;
static uv_timer_t phase_timer;

static void fill(uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    p[i] = (uint8_t)rng;
  }
}

static void on_close(qpeer_handle_t *h) {
  (void)h;
  closes++;
}

static void maybe_end(void) {
  if (!stream_done || !shut_done)
    return;
  uv_close((uv_handle_t *)&tick, NULL);
  qpeer_close((qpeer_handle_t *)&cs, on_close);
  qpeer_close((qpeer_handle_t *)&ss, on_close);
  qpeer_close((qpeer_handle_t *)&srv_ep, on_close);
  qpeer_close((qpeer_handle_t *)&cli_ep, on_close);
  qpt_udpfw_stop(&fw);
  if (fb_mode) {
    qpt_udpfw_stop(&dfw);
    uv_close((uv_handle_t *)&phase_timer, NULL);
  }
}

static void on_shut(qpeer_shutdown_t *r, int status) {
  (void)r;
  assert_int_equal(status, 0);
  shut_done = 1;
  maybe_end();
}

static void on_written(qpeer_write_t *r, int status);

/* One chunk every 5 ms until the punch is over, then the rest at once. */
static void send_next(void) {
  uv_buf_t b;
  if (w.data || queued >= TOTAL)
    return;
  fill(buf, CHUNK);
  gnutls_hash(txh, buf, CHUNK);
  b = uv_buf_init((char *)buf, CHUNK);
  w.data = &w;
  assert_int_equal(qpeer_stream_write(&w, &cs, &b, 1, on_written), 0);
  queued += CHUNK;
  if (queued == TOTAL) {
    sh.data = &sh;
    assert_int_equal(qpeer_stream_shutdown(&sh, &cs, on_shut), 0);
  }
}

static void on_written(qpeer_write_t *r, int status) {
  assert_int_equal(status, 0);
  r->data = NULL;
  if (punched)
    send_next();
}

static void on_tick(uv_timer_t *t) {
  (void)t;
  if (queued < TOTAL - 4 * CHUNK || punched)
    send_next();
}

static void on_fallback(qpeer_conn_t *c, int status);
static void on_repunched(qpeer_punch_t *req, int status);

static void on_punched(qpeer_punch_t *req, int status) {
  punch_status = status;
  relay_at_punch = fw.forwarded;
  assert_int_equal(status, 0);
  assert_true(qpeer__addr_equal(
      (struct sockaddr *)&req->path.remote,
      (struct sockaddr *)(fb_mode ? &direct_addr : &srv_addr)));
  if (fb_mode) {
    /* Direct now: name the relay path as standby, then cut the direct
     * path and expect a fallback within the budget. */
    assert_int_equal(qpeer_conn_set_fallback(&cli_conn,
                                             (struct sockaddr *)&syn_addr,
                                             (struct sockaddr *)&relay_addr,
                                             600, on_fallback),
                     0);
    dfw.drop_permille = 1000;
    fb_phase = 1;
    return;
  }
  punched = 1;
  assert_true(req->punch_requests >= 1);
  assert_true(req->validations >= 1);
  send_next();
}

static void on_fallback(qpeer_conn_t *c, int status) {
  qpeer_path_t p;
  qpeer_candidate_t host;
  assert_int_equal(status, 0);
  assert_int_equal(fb_phase, 1);
  fallbacks++;
  qpeer_conn_get_path(c, &p);
  assert_true(qpeer__addr_equal((struct sockaddr *)&p.remote,
                                (struct sockaddr *)&relay_addr));
  /* Restore the direct path and upgrade again. */
  dfw.drop_permille = 0;
  fb_phase = 2;
  assert_int_equal(qpeer__cand_init(&host, QPEER_CANDIDATE_HOST,
                                    (struct sockaddr *)&nowhere, NULL, NULL,
                                    QPEER_CANDIDATE_SRC_INTERFACE, 0),
                   0);
  assert_int_equal(qpeer_punch(&preq2, &cli_conn, &host, 1,
                               QPEER_PUNCH_ALLOW_LOOPBACK, on_repunched),
                   0);
}

static void on_repunched(qpeer_punch_t *req, int status) {
  assert_int_equal(status, 0);
  assert_true(qpeer__addr_equal((struct sockaddr *)&req->path.remote,
                                (struct sockaddr *)&direct_addr));
  upgrades++;
  fb_phase = 3;
  qpeer_conn_set_fallback(&cli_conn, NULL, NULL, 0, NULL);
  punched = 1;
  relay_at_punch = fw.forwarded;
  send_next();
}

static void srv_read(qpeer_stream_t *s, ssize_t n, const uint8_t *d) {
  (void)s;
  if (n == UV_EOF) {
    uint8_t a[32], b[32];
    gnutls_hash_output(txh, a);
    gnutls_hash_output(rxh, b);
    assert_true(received == TOTAL);
    assert_memory_equal(a, b, 32);
    stream_done = 1;
    maybe_end();
    return;
  }
  assert_true(n > 0);
  gnutls_hash(rxh, d, (size_t)n);
  received += (uint64_t)n;
}

static void srv_on_stream(qpeer_conn_t *c, int status) {
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_conn_accept_stream(c, &ss), 0);
  qpeer_stream_read_start(&ss, srv_read);
}

static void on_connection(qpeer_endpoint_t *ep, int status) {
  qpeer_conn_callbacks_t cbs;
  qpeer_candidate_t host;
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_endpoint_accept(ep, &srv_conn), 0);
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_stream = srv_on_stream;
  qpeer_conn_set_callbacks(&srv_conn, &cbs);
  /* In the fallback scenario the server's "host" address is the direct
   * forwarder, which the test can cut. */
  assert_int_equal(qpeer__cand_init(&host, QPEER_CANDIDATE_HOST,
                                    (struct sockaddr *)(fb_mode ? &direct_addr
                                                                : &srv_addr),
                                    NULL, NULL,
                                    QPEER_CANDIDATE_SRC_INTERFACE, 0),
                   0);
  assert_int_equal(qpeer_conn_advertise(&srv_conn, &host, 1,
                                        QPEER_PUNCH_ALLOW_LOOPBACK),
                   0);
}

static void on_connect(qpeer_connect_t *r, int status) {
  qpeer_candidate_t host;
  qpeer_path_t p;
  (void)r;
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_conn_get_path(&cli_conn, &p), 0);
  assert_true(qpeer__addr_equal((struct sockaddr *)&p.remote,
                                (struct sockaddr *)&relay_addr));
  assert_int_equal(qpeer_stream_open(&cli_conn, &cs, QPEER_STREAM_BIDI), 0);
  uv_timer_start(&tick, on_tick, 5, 5);
  /* In the fallback scenario the server's punches must not reach us
   * straight (loopback would let them, making a peer-reflexive path that
   * bypasses the forwarder the test cuts): name an address nobody uses. */
  assert_int_equal(qpeer__cand_init(&host, QPEER_CANDIDATE_HOST,
                                    (struct sockaddr *)(fb_mode ? &nowhere
                                                                : &cli_addr),
                                    NULL, NULL,
                                    QPEER_CANDIDATE_SRC_INTERFACE, 0),
                   0);
  assert_int_equal(qpeer_punch(&preq, &cli_conn, &host, 1,
                               QPEER_PUNCH_ALLOW_LOOPBACK, on_punched),
                   0);
  assert_int_equal(qpeer_punch(&preq, &cli_conn, &host, 1, 0, on_punched),
                   UV_EBUSY);
}

static void run_punch(int mode) {
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_connect_options_t co;
  struct sockaddr_storage b4;
  static uv_timer_t wd;
  fb_mode = mode;
  fb_phase = fallbacks = upgrades = 0;
  punched = stream_done = shut_done = closes = 0;
  punch_status = 1;
  queued = received = 0;
  memset(&w, 0, sizeof(w));
  memset(&sh, 0, sizeof(sh));
  gnutls_hash_init(&txh, GNUTLS_DIG_SHA256);
  gnutls_hash_init(&rxh, GNUTLS_DIG_SHA256);
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &wd, 60000);
  uv_timer_init(&loop, &tick);
  qpeer_addr_parse(&b4, "127.0.0.1:0");
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&b4;
  assert_int_equal(qpeer_endpoint_init(&loop, &srv_ep, &eo), 0);
  assert_int_equal(qpeer_endpoint_init(&loop, &cli_ep, &eo), 0);
  qpeer_endpoint_get_local_addr(&srv_ep, &srv_addr);
  qpeer_endpoint_get_local_addr(&cli_ep, &cli_addr);
  assert_int_equal(qpt_udpfw_start(&fw, &loop, (struct sockaddr *)&b4,
                                   (struct sockaddr *)&srv_addr, 0, 0, 3),
                   0);
  qpt_udpfw_addr(&fw, &relay_addr);
  if (fb_mode) {
    assert_int_equal(qpt_udpfw_start(&dfw, &loop, (struct sockaddr *)&b4,
                                     (struct sockaddr *)&srv_addr, 0, 0, 5),
                     0);
    qpt_udpfw_addr(&dfw, &direct_addr);
    qpeer_addr_parse(&nowhere, "127.0.0.3:9");
    uv_timer_init(&loop, &phase_timer);
  }
  qpeer_addr_parse(&syn_addr, "[100::7]:1");
  memset(&vif, 0, sizeof(vif));
  memcpy(&vif.local, &syn_addr, sizeof(syn_addr));
  vif.socket_alias = 1;
  memcpy(&vif.alias_remote, &relay_addr, sizeof(relay_addr));
  assert_int_equal(qpeer__ep_add_vif(qpeer__ep_of(&cli_ep), &vif), 0);
  qpeer_listen_options_default(&lo);
  lo.alpn = alpn;
  lo.nalpn = 1;
  assert_int_equal(qpeer_endpoint_listen(&srv_ep, &lo, on_connection), 0);
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)&relay_addr;
  co.local = (struct sockaddr *)&syn_addr;
  co.alpn = alpn;
  co.nalpn = 1;
  co.peer_id = qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&srv_ep));
  assert_int_equal(qpeer_connect(&creq, &cli_ep, &cli_conn, &co, on_connect),
                   0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(punch_status, 0);
  assert_true(stream_done && shut_done);
  /* After the move the relay carried at most a few stragglers. */
  assert_true(fw.forwarded - relay_at_punch <= 8);
  assert_int_equal(closes, 4);
  if (fb_mode) {
    assert_int_equal(fallbacks, 1);
    assert_int_equal(upgrades, 1);
  }
  gnutls_hash_deinit(txh, NULL);
  gnutls_hash_deinit(rxh, NULL);
  qpt_loop_teardown(&loop);
  qpeer__ep_remove_vif(NULL, &vif);
}

static void test_punch_relay_to_direct(void **state) {
  (void)state;
  run_punch(0);
}

/* Cut the direct path: back to the relay within the silence budget, then
 * up again once restored; the stream never notices. */
static void test_punch_fallback_and_reupgrade(void **state) {
  (void)state;
  run_punch(1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_punch_relay_to_direct),
      cmocka_unit_test(test_punch_fallback_and_reupgrade),
  };
  return cmocka_run_group_tests_name("punch", tests, NULL, NULL);
}
