/* SPDX-License-Identifier: MIT */
/*
 * qpeer_close() on the three MASQUE handles (tunnel, binding, relay):
 * each is closed through the generic entry point while idle, while its
 * request is in flight and while it is up; the close callback runs once,
 * never from inside qpeer_close(), a second close answers UV_EALREADY, and
 * the handle's functions refuse it afterwards. Loopback only, port 0.
 */
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "qpeer.h"
#include "util.h"

static const char *h3_alpn[] = {QPEER_MASQUE_ALPN};
static uv_loop_t loop;
static uv_timer_t wd;

static qpeer_endpoint_t relay_ep, cli_ep;
static qpeer_relay_t relay;
static struct sockaddr_storage relay_addr;
static int in_close;      /* set while a qpeer_close() call runs */
static int closes;        /* close callbacks of the MASQUE handles */
static int other_closes;  /* close callbacks of the endpoints */
static qpeer_handle_t *closed_last;

static void on_close(qpeer_handle_t *h) {
  assert_false(in_close); /* never re-entrant */
  assert_true(qpeer_is_closing(h));
  closes++;
  closed_last = h;
}

static void on_other_close(qpeer_handle_t *h) {
  (void)h;
  other_closes++;
}

/* qpeer_close() with the re-entrancy guard and the second-close check. */
static void close_generic(qpeer_handle_t *h) {
  in_close = 1;
  assert_int_equal(qpeer_close(h, on_close), 0);
  in_close = 0;
  assert_true(qpeer_is_closing(h));
  assert_int_equal(qpeer_close(h, on_close), UV_EALREADY);
}

static void on_relay_conn(qpeer_endpoint_t *ep, int status) {
  assert_int_equal(status, 0);
  while (qpeer_relay_accept(&relay, ep) == 0)
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

static void setup(void) {
  qpeer_listen_options_t lo;
  qpeer_relay_options_t ro;
  struct sockaddr_storage pub;
  const struct sockaddr *binds[1];
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &wd, 60000);
  closes = other_closes = 0;
  closed_last = NULL;
  endpoint_init(&relay_ep);
  qpeer_listen_options_default(&lo);
  lo.alpn = h3_alpn;
  lo.nalpn = 1;
  assert_int_equal(qpeer_endpoint_listen(&relay_ep, &lo, on_relay_conn), 0);
  assert_int_equal(qpeer_endpoint_get_local_addr(&relay_ep, &relay_addr), 0);
  qpeer_relay_options_default(&ro);
  ro.allow_anonymous = 1;
  ro.allow_targets = QPEER_RELAY_ALLOW_LOOPBACK;
  assert_int_equal(qpeer_addr_parse(&pub, "127.0.0.1:0"), 0);
  binds[0] = (const struct sockaddr *)&pub;
  ro.bind_addrs = binds;
  ro.nbind_addrs = 1;
  assert_int_equal(qpeer_relay_init(&loop, &relay, &ro), 0);
  assert_int_equal(relay.type, QPEER_RELAY);
  endpoint_init(&cli_ep);
}

static void masque_opts(qpeer_masque_options_t *o) {
  qpeer_masque_options_default(o);
  o->proxy = (const struct sockaddr *)&relay_addr;
  o->auth = QPEER_AUTH_PEER_ID;
  o->peer_id =
      qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&relay_ep));
  o->retry_min_ms = 20;
  o->retry_max_ms = 100;
  o->request_timeout_ms = 3000;
}

static void close_endpoints(void) {
  assert_int_equal(qpeer_close((qpeer_handle_t *)&cli_ep, on_other_close), 0);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&relay_ep, on_other_close),
                   0);
}

static void teardown(void) {
  assert_int_equal(other_closes, 2);
  qpt_loop_teardown(&loop);
}

/* ---- handle types ------------------------------------------------------- */

static void test_close_types(void **state) {
  (void)state;
  assert_string_equal(qpeer_handle_type_name(QPEER_TUNNEL), "tunnel");
  assert_string_equal(qpeer_handle_type_name(QPEER_BINDING), "relay_bind");
  assert_string_equal(qpeer_handle_type_name(QPEER_RELAY), "relay");
  assert_true(QPEER_TUNNEL > QPEER_PORTMAP);
  assert_true(QPEER_RELAY < QPEER_HANDLE_TYPE_MAX);
}

/* ---- never started ------------------------------------------------------ */

static void test_close_idle(void **state) {
  qpeer_masque_options_t o;
  qpeer_tunnel_t t;
  qpeer_relay_bind_t b;
  (void)state;
  setup();
  masque_opts(&o);
  o.target_host = "127.0.0.1";
  o.target_port = 9;
  assert_int_equal(qpeer_tunnel_init(&cli_ep, &t, &o), 0);
  assert_int_equal(t.type, QPEER_TUNNEL);
  o.target_host = NULL;
  o.target_port = 0;
  assert_int_equal(qpeer_relay_bind_init(&cli_ep, &b, &o), 0);
  assert_int_equal(b.type, QPEER_BINDING);
  close_generic((qpeer_handle_t *)&t);
  close_generic((qpeer_handle_t *)&b);
  close_generic((qpeer_handle_t *)&relay);
  /* Closed handles are refused by their own functions too. */
  assert_int_equal(qpeer_tunnel_send(&t, (const uint8_t *)"x", 1), UV_EINVAL);
  assert_int_equal(qpeer_relay_bind_start(&b, NULL), UV_EINVAL);
  assert_int_equal(qpeer_tunnel_close(&t, on_close), UV_EALREADY);
  assert_int_equal(qpeer_relay_bind_close(&b, on_close), UV_EALREADY);
  assert_int_equal(qpeer_relay_close(&relay, on_close), UV_EALREADY);
  assert_int_equal(closes, 0); /* nothing synchronous */
  close_endpoints();
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(closes, 3);
  teardown();
}

/* ---- a tunnel: closed while the request is in flight, and while up ------ */

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

static qpeer_tunnel_t tun;
static int tun_events, tun_last, tun_echoes;

static void finish_tunnel(void) {
  close_generic((qpeer_handle_t *)&tun);
  close_generic((qpeer_handle_t *)&relay);
  close_endpoints();
  uv_close((uv_handle_t *)&echo, NULL);
}

static void on_tun_recv(qpeer_tunnel_t *t, const uint8_t *data, size_t len) {
  (void)t;
  assert_int_equal(len, 5);
  assert_memory_equal(data, "hello", 5);
  if (++tun_echoes == 1)
    finish_tunnel(); /* from inside a tunnel callback */
}

static void on_tun(qpeer_tunnel_t *t, int status) {
  tun_events++;
  tun_last = status;
  if (status != 0)
    return;
  assert_int_equal(qpeer_tunnel_recv_start(t, on_tun_recv), 0);
  assert_int_equal(qpeer_tunnel_send(t, (const uint8_t *)"hello", 5), 0);
}

static void test_close_tunnel_up(void **state) {
  qpeer_masque_options_t o;
  qpeer_relay_stats_t rs;
  (void)state;
  setup();
  echo_start();
  masque_opts(&o);
  o.target_host = "127.0.0.1";
  o.target_port = qpeer__addr_port((struct sockaddr *)&echo_addr);
  assert_int_equal(qpeer_tunnel_init(&cli_ep, &tun, &o), 0);
  tun_events = tun_echoes = 0;
  assert_int_equal(qpeer_tunnel_start(&tun, on_tun), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(tun_echoes, 1);
  /* Closing a tunnel ends it without a further tunnel callback. */
  assert_int_equal(tun_events, 1);
  assert_int_equal(tun_last, 0);
  assert_int_equal(closes, 2);
  assert_int_equal(qpeer_relay_get_stats(&relay, &rs), UV_EINVAL);
  teardown();
}

static void on_tun_never(qpeer_tunnel_t *t, int status) {
  (void)t;
  (void)status;
  fail_msg("a tunnel closed before its answer must not call back");
}

static void test_close_tunnel_pending(void **state) {
  qpeer_masque_options_t o;
  (void)state;
  setup();
  masque_opts(&o);
  o.target_host = "127.0.0.1";
  o.target_port = 9;
  assert_int_equal(qpeer_tunnel_init(&cli_ep, &tun, &o), 0);
  assert_int_equal(qpeer_tunnel_start(&tun, on_tun_never), 0);
  /* The handshake has not even started: close at once. */
  close_generic((qpeer_handle_t *)&tun);
  close_generic((qpeer_handle_t *)&relay);
  close_endpoints();
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(closes, 2);
  teardown();
}

/* ---- a binding: closed while up, and after the relay was closed ---------- */

static qpeer_relay_bind_t bnd;
static int bind_ups, bind_downs;
static int close_relay_first;

static void on_relay_gone_closed(qpeer_handle_t *h) {
  on_close(h);
}

static void on_bound(qpeer_relay_bind_t *b, int status,
                     const struct sockaddr_storage *addrs, size_t n) {
  (void)addrs;
  if (status != 0) {
    /* The relay went away (second test): the binding reports it once
     * and retries; close it from its own callback. */
    bind_downs++;
    assert_true(close_relay_first);
    if (bind_downs == 1) {
      close_generic((qpeer_handle_t *)b);
      close_endpoints();
    }
    return;
  }
  bind_ups++;
  assert_true(n >= 1);
  if (close_relay_first) {
    in_close = 1;
    assert_int_equal(qpeer_close((qpeer_handle_t *)&relay,
                                 on_relay_gone_closed), 0);
    in_close = 0;
    return;
  }
  close_generic((qpeer_handle_t *)b);
  close_generic((qpeer_handle_t *)&relay);
  close_endpoints();
}

static void run_bind(int relay_first) {
  qpeer_masque_options_t o;
  setup();
  masque_opts(&o);
  assert_int_equal(qpeer_relay_bind_init(&cli_ep, &bnd, &o), 0);
  bind_ups = bind_downs = 0;
  close_relay_first = relay_first;
  assert_int_equal(qpeer_relay_bind_start(&bnd, on_bound), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(bind_ups, 1);
  assert_int_equal(bind_downs, relay_first ? 1 : 0);
  assert_int_equal(closes, 2);
  assert_non_null(closed_last);
  teardown();
}

static void test_close_bind_up(void **state) {
  (void)state;
  run_bind(0);
}

static void test_close_relay_under_bind(void **state) {
  (void)state;
  run_bind(1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_close_types),
      cmocka_unit_test(test_close_idle),
      cmocka_unit_test(test_close_tunnel_pending),
      cmocka_unit_test(test_close_tunnel_up),
      cmocka_unit_test(test_close_bind_up),
      cmocka_unit_test(test_close_relay_under_bind),
  };
  return cmocka_run_group_tests_name("masque_close", tests, NULL, NULL);
}
