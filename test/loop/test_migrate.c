/* SPDX-License-Identifier: MIT */
/*
 * Path model and migration on loopback. A stand-in relay (one UDP socket)
 * carries the client's packets for a virtual interface with a synthetic
 * local address, as a MASQUE tunnel will: the connection starts on that
 * relay path, data streams continuously, the client migrates to the direct
 * path, back to the relay path, and tries a dead path (validation fails,
 * the connection stays). Every byte is checked with SHA-256 and no stream
 * may be reset.
 */
#include <gnutls/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "udpfw.h"
#include "util.h"
#include "qpeer.h"
#include "core/addr.h"
#include "quic/handles.h"

#define TOTAL (48ull << 20)
#define CHUNK (128 * 1024)
#define DEPTH 4

static const char *alpn[] = {"qpeer-test"};
static uv_loop_t loop;
static qpeer_endpoint_t srv_ep, cli_ep;
static qpeer_conn_t srv_conn, cli_conn;
static qpeer_stream_t cs, ss;
static qpeer_connect_t creq;
static qpeer_migrate_t mreq;
static qpeer_write_t w[DEPTH];
static qpeer_shutdown_t sh;
static uint8_t bufs[DEPTH][CHUNK];
static uint64_t queued, received, rng = 12345;
static gnutls_hash_hd_t txh, rxh;
static struct sockaddr_storage srv_addr, relay_addr, syn_addr, dead_addr;
static int step, migrated_events, peer_moved_events, failed_events;
static int stream_done, shut_done, closes;
static uint64_t relay_packets_, relay_at_direct, received_at_direct;
/* Packets the stand-in relay carried (either kind of relay path). */
#define relay_packets (alias_mode ? fw.forwarded : relay_packets_)

/* ---- the stand-in relay -------------------------------------------------- */

static uv_udp_t relay;
static qpeer__vif vif;
static int alias_mode;      /* 1: the relay path is a socket alias */
static qpt_udpfw fw;        /* alias mode: the stand-in relay */

static int vif_send(qpeer__vif *v, const struct sockaddr *to,
                    const uint8_t *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  (void)v;
  relay_packets_++;
  return uv_udp_try_send(&relay, &b, 1, to) < 0 ? UV_EAGAIN : 0;
}

static void relay_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  static char slab[65536];
  (void)h;
  (void)s;
  b->base = slab;
  b->len = sizeof(slab);
}

static void relay_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b,
                       const struct sockaddr *from, unsigned flags) {
  (void)h;
  (void)flags;
  if (n <= 0 || !from)
    return;
  relay_packets_++;
  qpeer__ep_vif_input(qpeer__ep_of(&cli_ep), &vif, (const uint8_t *)b->base,
                      (size_t)n, from);
  qpeer__ep_flush(qpeer__ep_of(&cli_ep));
}

/* ---- streaming ------------------------------------------------------------- */

static void fill(uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    p[i] = (uint8_t)rng;
  }
}

static void pump(void);
static void maybe_end(void);

static void on_written(qpeer_write_t *req, int status) {
  assert_int_equal(status, 0);
  req->data = NULL;
  pump();
}

static void on_shut(qpeer_shutdown_t *req, int status) {
  (void)req;
  assert_int_equal(status, 0);
  shut_done = 1;
  maybe_end();
}

static uv_timer_t tick;
static int tokens;

/* Until every migration is done, the writer is throttled (a chunk per
 * 2 ms tick) so that the stream is still flowing during each one. */
static void on_tick(uv_timer_t *t) {
  (void)t;
  tokens = 1;
  pump();
  if (step >= 4)
    uv_timer_stop(&tick);
}

static void pump(void) {
  int i;
  for (i = 0; i < DEPTH && queued < TOTAL; i++) {
    uv_buf_t b;
    if (w[i].data)
      continue;
    if (step < 4) {
      if (!tokens || queued >= TOTAL - 8 * CHUNK)
        break;
      tokens = 0;
    }
    fill(bufs[i], CHUNK);
    gnutls_hash(txh, bufs[i], CHUNK);
    b = uv_buf_init((char *)bufs[i], CHUNK);
    w[i].data = &w[i];
    assert_int_equal(qpeer_stream_write(&w[i], &cs, &b, 1, on_written), 0);
    queued += CHUNK;
  }
  if (queued == TOTAL && !sh.data) {
    sh.data = &sh;
    assert_int_equal(qpeer_stream_shutdown(&sh, &cs, on_shut), 0);
  }
}

static void on_close(qpeer_handle_t *h) {
  (void)h;
  closes++;
}

static void maybe_end(void) {
  if (!stream_done || !shut_done)
    return;
  qpeer_close((qpeer_handle_t *)&cs, on_close);
  qpeer_close((qpeer_handle_t *)&ss, on_close);
  qpeer_close((qpeer_handle_t *)&srv_ep, on_close);
  qpeer_close((qpeer_handle_t *)&cli_ep, on_close);
  if (alias_mode)
    qpt_udpfw_stop(&fw);
  else
    uv_close((uv_handle_t *)&relay, NULL);
  uv_close((uv_handle_t *)&tick, NULL);
}

/* ---- the migration plan ---------------------------------------------------- */

static void next_step(void);

static void on_migrated(qpeer_migrate_t *req, int status) {
  qpeer_path_t p;
  (void)req;
  assert_int_equal(qpeer_conn_get_path(&cli_conn, &p), 0);
  switch (step) {
  case 1: /* relay -> direct */
    assert_int_equal(status, 0);
    assert_true(qpeer__addr_equal((struct sockaddr *)&p.remote,
                                  (struct sockaddr *)&srv_addr));
    assert_false(qpeer__addr_equal((struct sockaddr *)&p.local,
                                   (struct sockaddr *)&syn_addr));
    relay_at_direct = relay_packets;
    received_at_direct = received;
    break;
  case 2: /* dead path: validation fails, the connection stays direct */
    assert_int_equal(status, QPEER_ENOPATH);
    assert_true(qpeer__addr_equal((struct sockaddr *)&p.remote,
                                  (struct sockaddr *)&srv_addr));
    /* While direct, the relay carried only the failed probes (bounded),
     * none of the stream's traffic. */
    assert_true(relay_packets - relay_at_direct <= 64);
    assert_true(received > received_at_direct);
    break;
  case 3: /* direct -> relay again */
    assert_int_equal(status, 0);
    assert_true(qpeer__addr_equal((struct sockaddr *)&p.local,
                                  (struct sockaddr *)&syn_addr));
    break;
  }
  next_step();
}

static void next_step(void) {
  int r;
  step++;
  switch (step) {
  case 1:
    r = qpeer_conn_migrate(&mreq, &cli_conn, NULL,
                           (struct sockaddr *)&srv_addr, on_migrated);
    assert_int_equal(r, 0);
    assert_int_equal(qpeer_conn_migrate(&mreq, &cli_conn, NULL,
                                        (struct sockaddr *)&srv_addr,
                                        on_migrated),
                     UV_EBUSY);
    break;
  case 2:
    /* ngtcp2 0.12 refuses a new path with the current local address, so
     * the dead path goes out through the relay's interface. */
    assert_int_equal(qpeer_conn_migrate(&mreq, &cli_conn, NULL,
                                        (struct sockaddr *)&dead_addr,
                                        on_migrated),
                     UV_EINVAL);
    r = qpeer_conn_migrate(&mreq, &cli_conn, (struct sockaddr *)&syn_addr,
                           (struct sockaddr *)&dead_addr, on_migrated);
    assert_int_equal(r, 0);
    break;
  case 3:
    r = qpeer_conn_migrate(&mreq, &cli_conn, (struct sockaddr *)&syn_addr,
                           (struct sockaddr *)(alias_mode ? &relay_addr
                                                          : &srv_addr),
                           on_migrated);
    assert_int_equal(r, 0);
    break;
  default:
    break;
  }
}

static void srv_read(qpeer_stream_t *s, ssize_t n, const uint8_t *d) {
  (void)s;
  if (n == UV_EOF) {
    uint8_t a[32], b[32];
    assert_true(received == TOTAL);
    gnutls_hash_output(txh, a);
    gnutls_hash_output(rxh, b);
    assert_memory_equal(a, b, 32);
    assert_true(step >= 4); /* every migration happened mid-stream */
    stream_done = 1;
    maybe_end();
    return;
  }
  assert_true(n > 0); /* no reset, no error */
  gnutls_hash(rxh, d, (size_t)n);
  received += (uint64_t)n;
  if (step == 0 && received >= 2 * CHUNK)
    next_step(); /* start migrating once data flows on the relay path */
}

static void srv_on_stream(qpeer_conn_t *c, int status) {
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_conn_accept_stream(c, &ss), 0);
  assert_int_equal(qpeer_stream_read_start(&ss, srv_read), 0);
}

static void on_path(qpeer_conn_t *c, qpeer_path_reason why,
                    const qpeer_path_t *old, const qpeer_path_t *now) {
  assert_non_null(old);
  assert_non_null(now);
  if (c == &cli_conn && why == QPEER_PATH_MIGRATED)
    migrated_events++;
  else if (c == &cli_conn && why == QPEER_PATH_FAILED)
    failed_events++;
  else if (c == &srv_conn && why == QPEER_PATH_PEER_MOVED)
    peer_moved_events++;
}

static void on_connection(qpeer_endpoint_t *ep, int status) {
  qpeer_conn_callbacks_t cbs;
  qpeer_path_t p;
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_endpoint_accept(ep, &srv_conn), 0);
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_stream = srv_on_stream;
  cbs.on_path = on_path;
  qpeer_conn_set_callbacks(&srv_conn, &cbs);
  /* The server sees the client at the relay's address (the forwarder's
   * upstream socket in alias mode). */
  assert_int_equal(qpeer_conn_get_path(&srv_conn, &p), 0);
  if (!alias_mode)
    assert_true(qpeer__addr_equal((struct sockaddr *)&p.remote,
                                  (struct sockaddr *)&relay_addr));
  /* Servers do not migrate. */
  assert_int_equal(qpeer_conn_migrate(&mreq, &srv_conn, NULL,
                                      (struct sockaddr *)&relay_addr,
                                      on_migrated),
                   UV_ENOTSUP);
}

static void on_connect(qpeer_connect_t *req, int status) {
  qpeer_conn_callbacks_t cbs;
  qpeer_path_t p;
  (void)req;
  assert_int_equal(status, 0);
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_path = on_path;
  qpeer_conn_set_callbacks(&cli_conn, &cbs);
  assert_int_equal(qpeer_conn_get_path(&cli_conn, &p), 0);
  assert_true(qpeer__addr_equal((struct sockaddr *)&p.local,
                                (struct sockaddr *)&syn_addr));
  assert_int_equal(qpeer_stream_open(&cli_conn, &cs, QPEER_STREAM_BIDI), 0);
  assert_int_equal(uv_timer_init(&loop, &tick), 0);
  assert_int_equal(uv_timer_start(&tick, on_tick, 2, 2), 0);
  pump();
}

static void run_migrate(int mode) {
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_connect_options_t co;
  struct sockaddr_storage b4;
  static uv_timer_t wd;
  int len = sizeof(relay_addr);
  alias_mode = mode;
  step = migrated_events = peer_moved_events = failed_events = 0;
  stream_done = shut_done = closes = 0;
  queued = received = 0;
  relay_packets_ = relay_at_direct = received_at_direct = 0;
  memset(w, 0, sizeof(w));
  memset(&sh, 0, sizeof(sh));
  gnutls_hash_init(&txh, GNUTLS_DIG_SHA256);
  gnutls_hash_init(&rxh, GNUTLS_DIG_SHA256);
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &wd, 60000);
  qpeer_addr_parse(&b4, "127.0.0.1:0");
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&b4;
  assert_int_equal(qpeer_endpoint_init(&loop, &srv_ep, &eo), 0);
  assert_int_equal(qpeer_endpoint_init(&loop, &cli_ep, &eo), 0);
  qpeer_endpoint_get_local_addr(&srv_ep, &srv_addr);
  /* The stand-in relay and a dead address (a bound socket that never
   * answers would still be "alive" for ICMP; port 9 on 127.0.0.2 with
   * nothing bound gets ICMP unreachable, which QUIC ignores). */
  if (alias_mode) {
    assert_int_equal(qpt_udpfw_start(&fw, &loop, (struct sockaddr *)&b4,
                                     (struct sockaddr *)&srv_addr, 0, 0, 7),
                     0);
    qpt_udpfw_addr(&fw, &relay_addr);
  } else {
    assert_int_equal(uv_udp_init(&loop, &relay), 0);
    assert_int_equal(uv_udp_bind(&relay, (struct sockaddr *)&b4, 0), 0);
    uv_udp_getsockname(&relay, (struct sockaddr *)&relay_addr, &len);
    assert_int_equal(uv_udp_recv_start(&relay, relay_alloc, relay_recv), 0);
  }
  qpeer_addr_parse(&dead_addr, "127.0.0.2:9");
  /* The synthetic local address of the tunnel path (RFC 6666 discard
   * prefix, never on the wire). */
  qpeer_addr_parse(&syn_addr, "[100::1]:1");
  memset(&vif, 0, sizeof(vif));
  memcpy(&vif.local, &syn_addr, sizeof(syn_addr));
  if (alias_mode) {
    /* The relay's public address reached straight from our socket: a
     * socket alias gives that path its own local address. */
    vif.socket_alias = 1;
    memcpy(&vif.alias_remote, &relay_addr, sizeof(relay_addr));
  } else {
    vif.send = vif_send;
  }
  assert_int_equal(qpeer__ep_add_vif(qpeer__ep_of(&cli_ep), &vif), 0);
  assert_int_equal(qpeer__ep_add_vif(qpeer__ep_of(&cli_ep), &vif), UV_EEXIST);

  qpeer_listen_options_default(&lo);
  lo.alpn = alpn;
  lo.nalpn = 1;
  assert_int_equal(qpeer_endpoint_listen(&srv_ep, &lo, on_connection), 0);
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)(alias_mode ? &relay_addr : &srv_addr);
  co.local = (struct sockaddr *)&syn_addr;
  co.alpn = alpn;
  co.nalpn = 1;
  co.peer_id = qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&srv_ep));
  assert_int_equal(qpeer_connect(&creq, &cli_ep, &cli_conn, &co, on_connect),
                   0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(stream_done && shut_done);
  assert_int_equal(step, 4);
  assert_int_equal(migrated_events, 2);
  assert_int_equal(failed_events, 1);
  assert_true(peer_moved_events >= 2);
  assert_int_equal(closes, 4);
  gnutls_hash_deinit(txh, NULL);
  gnutls_hash_deinit(rxh, NULL);
  qpt_loop_teardown(&loop);
}

static void test_migrate_relay_direct_relay(void **state) {
  (void)state;
  run_migrate(0);
}

static void test_migrate_socket_alias(void **state) {
  (void)state;
  run_migrate(1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_migrate_relay_direct_relay),
      cmocka_unit_test(test_migrate_socket_alias),
  };
  return cmocka_run_group_tests_name("migrate", tests, NULL, NULL);
}
