/* SPDX-License-Identifier: MIT */
/*
 * HTTP/3 GOAWAY between the relay and qpeer's MASQUE clients, on loopback
 * (port 0). One listening endpoint hands its connections to relay A, or,
 * once A shuts down, to relay B (a second instance behind the same
 * address, as during a rolling restart):
 *
 *  - a tunnel and a binding are up on A; A shuts down (GOAWAY). The tunnel
 *    keeps working on A after the GOAWAY arrived; the binding binds again
 *    on a new connection (landing on B) without ever reporting a loss, the
 *    old binding keeps its address until then and is released afterwards;
 *  - a draining relay refuses what arrives on new connections: a tunnel
 *    fails with QPEER_ERELAY, a binding reports QPEER_ERELAY and retries;
 *  - a draining binding whose re-binds fail stays usable until the relay
 *    closes; then its loss is reported once and its interface goes.
 */
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "h3/tunnel.h"
#include "qpeer.h"
#include "util.h"

static const char *h3_alpn[] = {QPEER_MASQUE_ALPN};
static uv_loop_t loop;
static uv_timer_t wd;

static qpeer_endpoint_t relay_ep, cli_ep;
static qpeer_relay_t relay_a, relay_b;
static qpeer_relay_t *cur_relay; /* where new connections go */
static int relay_b_up;
static struct sockaddr_storage relay_addr;
static int closes;

static void on_close(qpeer_handle_t *h) {
  (void)h;
  closes++;
}

static void on_relay_conn(qpeer_endpoint_t *ep, int status) {
  assert_int_equal(status, 0);
  while (qpeer_relay_accept(cur_relay, ep) == 0)
    ;
}

static void endpoint_init(qpeer_endpoint_t *ep) {
  qpeer_endpoint_options_t eo;
  struct sockaddr_storage a;
  assert_int_equal(qpeer_addr_parse(&a, "127.0.0.1:0"), 0);
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&a;
  eo.retry_mode = QPEER_RETRY_NEVER;
  eo.max_datagram_frame_size = 1500;
  assert_int_equal(qpeer_endpoint_init(&loop, ep, &eo), 0);
}

static void relay_init(qpeer_relay_t *r) {
  qpeer_relay_options_t ro;
  struct sockaddr_storage pub;
  const struct sockaddr *binds[1];
  qpeer_relay_options_default(&ro);
  ro.allow_anonymous = 1;
  ro.allow_targets = QPEER_RELAY_ALLOW_LOOPBACK;
  assert_int_equal(qpeer_addr_parse(&pub, "127.0.0.1:0"), 0);
  binds[0] = (const struct sockaddr *)&pub;
  ro.bind_addrs = binds;
  ro.nbind_addrs = 1;
  assert_int_equal(qpeer_relay_init(&loop, r, &ro), 0);
}

static void setup(int with_b) {
  qpeer_listen_options_t lo;
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &wd, 60000);
  closes = 0;
  endpoint_init(&relay_ep);
  qpeer_listen_options_default(&lo);
  lo.alpn = h3_alpn;
  lo.nalpn = 1;
  assert_int_equal(qpeer_endpoint_listen(&relay_ep, &lo, on_relay_conn), 0);
  assert_int_equal(qpeer_endpoint_get_local_addr(&relay_ep, &relay_addr), 0);
  relay_init(&relay_a);
  relay_b_up = with_b;
  if (with_b)
    relay_init(&relay_b);
  cur_relay = &relay_a;
  endpoint_init(&cli_ep);
}

static void masque_opts(qpeer_masque_options_t *o) {
  qpeer_masque_options_default(o);
  o->proxy = (const struct sockaddr *)&relay_addr;
  o->auth = QPEER_AUTH_PEER_ID;
  o->peer_id =
      qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&relay_ep));
  o->retry_min_ms = 40;
  o->retry_max_ms = 200;
  o->request_timeout_ms = 3000;
}

/* Closes the relays (those not closed yet) and both endpoints. */
static void close_rest(void) {
  if (!qpeer_is_closing((qpeer_handle_t *)&relay_a))
    assert_int_equal(qpeer_close((qpeer_handle_t *)&relay_a, on_close), 0);
  if (relay_b_up)
    assert_int_equal(qpeer_close((qpeer_handle_t *)&relay_b, on_close), 0);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&cli_ep, on_close), 0);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&relay_ep, on_close), 0);
}

/* ---- the UDP echo target ------------------------------------------------- */

static uv_udp_t echo;
static struct sockaddr_storage echo_addr;

static void echo_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  static char buf[2048];
  (void)h;
  (void)sz;
  *b = uv_buf_init(buf, sizeof(buf));
}

static void echo_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *b,
                      const struct sockaddr *from, unsigned flags) {
  uv_buf_t out;
  (void)flags;
  if (n <= 0 || !from)
    return;
  out = uv_buf_init(b->base, (unsigned)n);
  uv_udp_try_send(u, &out, 1, from);
}

static void echo_start(void) {
  struct sockaddr_storage a;
  int len = sizeof(echo_addr);
  assert_int_equal(qpeer_addr_parse(&a, "127.0.0.1:0"), 0);
  assert_int_equal(uv_udp_init(&loop, &echo), 0);
  assert_int_equal(uv_udp_bind(&echo, (struct sockaddr *)&a, 0), 0);
  assert_int_equal(
      uv_udp_getsockname(&echo, (struct sockaddr *)&echo_addr, &len), 0);
  assert_int_equal(uv_udp_recv_start(&echo, echo_alloc, echo_recv), 0);
}

/* ---- 1: a tunnel and a binding on a relay that shuts down ---------------- */

#define MAX_PINGS 500 /* echoes sent until the GOAWAY is seen, at most */

static qpeer_tunnel_t tun;
static qpeer_relay_bind_t bnd;
static int tun_events, tun_status;
static int bind_ups, bind_errors;
static struct sockaddr_storage addr1, addr2;
static int pings, echoes_after_goaway, shut_down;
static uv_timer_t poll_timer;
static int polls;
static qpeer_relay_stats_t a_final, b_final;

static void ping(void) {
  pings++;
  assert_true(pings <= MAX_PINGS);
  assert_int_equal(qpeer_tunnel_send(&tun, (const uint8_t *)"ping", 4), 0);
}

static void maybe_shut_down(void) {
  if (shut_down || tun_events != 1 || bind_ups != 1)
    return;
  shut_down = 1;
  cur_relay = &relay_b; /* a new instance takes new connections */
  assert_int_equal(qpeer_relay_shutdown(&relay_a), 0);
  assert_int_equal(qpeer_relay_shutdown(&relay_a), 0); /* idempotent */
  ping();
}

/* Once the old binding is released at A, check and close everything. */
static void on_poll(uv_timer_t *t) {
  qpeer_relay_stats_t sa;
  assert_int_equal(qpeer_relay_get_stats(&relay_a, &sa), 0);
  assert_true(++polls < 500);
  if (sa.binds_active != 0)
    return;
  uv_timer_stop(t);
  uv_close((uv_handle_t *)t, NULL);
  /* The tunnel is still open at A, the binding moved to B. */
  assert_int_equal(sa.tunnels_active, 1);
  a_final = sa;
  assert_int_equal(qpeer_relay_get_stats(&relay_b, &b_final), 0);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&tun, on_close), 0);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&bnd, on_close), 0);
  uv_close((uv_handle_t *)&echo, NULL);
  close_rest();
}

static void maybe_finish(void) {
  if (bind_ups != 2 || !echoes_after_goaway)
    return;
  assert_int_equal(uv_timer_init(&loop, &poll_timer), 0);
  assert_int_equal(uv_timer_start(&poll_timer, on_poll, 0, 10), 0);
}

static void on_tun_recv(qpeer_tunnel_t *t, const uint8_t *data, size_t len) {
  assert_int_equal(len, 4);
  assert_memory_equal(data, "ping", 4);
  if (echoes_after_goaway)
    return;
  if (!qpeer__masque_client_goaway((const qpeer_handle_t *)t)) {
    ping(); /* the GOAWAY has not arrived yet: again */
    return;
  }
  /* This echo crossed the tunnel after the relay's GOAWAY reached us. */
  echoes_after_goaway = 1;
  maybe_finish();
}

static void on_tun(qpeer_tunnel_t *t, int status) {
  tun_events++;
  tun_status = status;
  assert_int_equal(status, 0); /* up, and never ended by the GOAWAY */
  assert_int_equal(qpeer_tunnel_recv_start(t, on_tun_recv), 0);
  maybe_shut_down();
}

static void on_bound_move(qpeer_relay_bind_t *b, int status,
                          const struct sockaddr_storage *addrs, size_t n) {
  struct sockaddr_storage vif;
  if (status != 0) {
    bind_errors++; /* must not happen: the re-bind lands on B */
    return;
  }
  assert_true(n >= 1);
  bind_ups++;
  assert_int_equal(qpeer_relay_bind_get_local_addr(b, &vif), 0);
  if (bind_ups == 1) {
    addr1 = addrs[0];
    maybe_shut_down();
    return;
  }
  assert_int_equal(bind_ups, 2);
  addr2 = addrs[0];
  /* The new binding is B's: another port, and the interface moved. */
  assert_false(qpeer__addr_equal((struct sockaddr *)&addr1,
                                 (struct sockaddr *)&addr2));
  assert_true(
      qpeer__addr_equal((struct sockaddr *)&vif, (struct sockaddr *)&addr2));
  assert_false(qpeer__masque_client_goaway((const qpeer_handle_t *)b));
  maybe_finish();
}

static void test_goaway_bind_moves(void **state) {
  qpeer_masque_options_t o;
  (void)state;
  setup(1);
  echo_start();
  tun_events = bind_ups = bind_errors = 0;
  pings = echoes_after_goaway = shut_down = polls = 0;
  masque_opts(&o);
  o.target_host = "127.0.0.1";
  o.target_port = qpeer__addr_port((struct sockaddr *)&echo_addr);
  assert_int_equal(qpeer_tunnel_init(&cli_ep, &tun, &o), 0);
  assert_int_equal(qpeer_tunnel_start(&tun, on_tun), 0);
  masque_opts(&o);
  assert_int_equal(qpeer_relay_bind_init(&cli_ep, &bnd, &o), 0);
  assert_int_equal(qpeer_relay_bind_start(&bnd, on_bound_move), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(tun_events, 1);
  assert_int_equal(bind_ups, 2);
  assert_int_equal(bind_errors, 0);
  assert_true(echoes_after_goaway);
  assert_int_equal(closes, 2 + 4);
  assert_int_equal(a_final.binds, 1);
  assert_int_equal(a_final.tunnels, 1);
  assert_int_equal(b_final.binds, 1);
  assert_int_equal(b_final.binds_active, 1);
  assert_int_equal(b_final.tunnels, 0);
  print_message("GOAWAY: %d echo(es) until it arrived; binding moved to port "
                "%u\n",
                pings, (unsigned)qpeer__addr_port((struct sockaddr *)&addr2));
  qpt_loop_teardown(&loop);
}

/* ---- 2: a draining relay refuses new connections' requests --------------- */

static int bind_refusals;

static void on_tun_refused(qpeer_tunnel_t *t, int status) {
  tun_events++;
  tun_status = status;
  assert_int_equal(qpeer_close((qpeer_handle_t *)t, on_close), 0);
  if (bind_refusals >= 2)
    close_rest();
}

static void on_bound_refused(qpeer_relay_bind_t *b, int status,
                             const struct sockaddr_storage *addrs, size_t n) {
  (void)addrs;
  (void)n;
  assert_int_equal(status, QPEER_ERELAY);
  /* Not permanent: it tries again (with backoff); stop after two. */
  if (++bind_refusals == 2) {
    assert_int_equal(qpeer_close((qpeer_handle_t *)b, on_close), 0);
    if (tun_events)
      close_rest();
  }
}

static void test_goaway_refuses_new(void **state) {
  qpeer_masque_options_t o;
  qpeer_relay_stats_t st;
  (void)state;
  setup(0);
  assert_int_equal(qpeer_relay_shutdown(&relay_a), 0);
  tun_events = bind_refusals = 0;
  tun_status = 0;
  masque_opts(&o);
  o.target_host = "127.0.0.1";
  o.target_port = 9;
  assert_int_equal(qpeer_tunnel_init(&cli_ep, &tun, &o), 0);
  assert_int_equal(qpeer_tunnel_start(&tun, on_tun_refused), 0);
  masque_opts(&o);
  assert_int_equal(qpeer_relay_bind_init(&cli_ep, &bnd, &o), 0);
  assert_int_equal(qpeer_relay_bind_start(&bnd, on_bound_refused), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(tun_events, 1);
  assert_int_equal(tun_status, QPEER_ERELAY);
  assert_int_equal(bind_refusals, 2);
  assert_int_equal(closes, 2 + 3);
  (void)st;
  qpt_loop_teardown(&loop);
}

/* ---- 3: the draining binding is lost when the relay closes --------------- */

static int lost;

static void on_bound_drain(qpeer_relay_bind_t *b, int status,
                           const struct sockaddr_storage *addrs, size_t n) {
  struct sockaddr_storage vif;
  (void)addrs;
  (void)n;
  if (status == 0) {
    bind_ups++;
    assert_int_equal(bind_ups, 1);
    addr1 = addrs[0];
    assert_int_equal(qpeer_relay_shutdown(&relay_a), 0);
    return;
  }
  if (!qpeer_is_closing((qpeer_handle_t *)&relay_a)) {
    /* A re-bind was refused by the draining relay: the old binding is
     * still there. Now the relay goes for good. */
    assert_int_equal(status, QPEER_ERELAY);
    bind_errors++;
    assert_int_equal(qpeer_relay_bind_get_local_addr(b, &vif), 0);
    assert_true(
        qpeer__addr_equal((struct sockaddr *)&vif, (struct sockaddr *)&addr1));
    assert_int_equal(qpeer_close((qpeer_handle_t *)&relay_a, on_close), 0);
    return;
  }
  /* The relay is closing: a re-bind in flight may fail first; once the
   * draining binding is lost the interface is gone. */
  if (qpeer_relay_bind_get_local_addr(b, &vif) == UV_ENOTCONN) {
    assert_false(lost);
    lost = 1;
    assert_int_equal(qpeer_close((qpeer_handle_t *)b, on_close), 0);
    close_rest();
  }
}

static void test_goaway_drain_lost(void **state) {
  qpeer_masque_options_t o;
  (void)state;
  setup(0);
  bind_ups = bind_errors = lost = 0;
  masque_opts(&o);
  assert_int_equal(qpeer_relay_bind_init(&cli_ep, &bnd, &o), 0);
  assert_int_equal(qpeer_relay_bind_start(&bnd, on_bound_drain), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(bind_ups, 1);
  assert_true(bind_errors >= 1);
  assert_true(lost);
  assert_int_equal(closes, 1 + 3);
  qpt_loop_teardown(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_goaway_bind_moves),
      cmocka_unit_test(test_goaway_refuses_new),
      cmocka_unit_test(test_goaway_drain_lost),
  };
  return cmocka_run_group_tests_name("masque_goaway", tests, NULL, NULL);
}
