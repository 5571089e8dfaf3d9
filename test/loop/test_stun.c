/* SPDX-License-Identifier: MIT */
/*
 * Loopback: the STUN client (qpeer_stun_t) and the STUN responder.
 * - against coturn (started here on 127.0.0.1, 127.0.0.2 and ::1, a random
 *   free port; skipped with a message when turnserver is not installed):
 *   IPv4 and IPv6, several requests at once, RFC 5780 attributes and
 *   CHANGE-REQUEST;
 * - against qpeer's own responder: mapped address, FINGERPRINT, 420 for
 *   CHANGE-REQUEST, the STUN hook still seeing what is not for us;
 * - timeouts: a server that never answers gives UV_ETIMEDOUT within the
 *   deadline after the expected number of transmissions;
 * - cancellation and endpoint close (UV_ECANCELED, never re-entrant);
 * - the responder under a flood from one source (stays within its rate,
 *   never amplifies) and from many sources (global rate, LRU table).
 * Every wait is bounded by the watchdog.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coturn.h"
#include "qpeer.h"
#include "util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NREQ 12

typedef struct {
  qpeer_stun_t req;
  int called;
  int status;
  uint64_t t_start, t_done; /* ns */
} sreq;

static struct {
  uv_loop_t loop;
  uv_timer_t wd;
  int in_api;        /* inside a qpeer call: callbacks must not run */
  int pending;       /* STUN requests not yet completed */
  int closes;        /* endpoint close callbacks */
  int order;         /* completion order counter */
  int close_order;   /* order value when the close callback ran */
  void (*all_done)(void);
  sreq s[NREQ];
  qpeer_endpoint_t ep[4];
  int nep;
  /* a silent UDP server (never answers) */
  uv_udp_t silent;
  int silent_rx;
  /* the hook */
  int hook_calls;
} G;

static struct sockaddr_storage A(const char *text) {
  struct sockaddr_storage ss;
  assert_int_equal(qpeer_addr_parse(&ss, text), 0);
  return ss;
}

static int same(const struct sockaddr_storage *a, const char *text) {
  char buf[QPEER_ADDR_STRLEN];
  if (qpeer_addr_format((const struct sockaddr *)a, buf, sizeof(buf)) < 0)
    return 0;
  if (strcmp(buf, text) != 0) {
    fprintf(stderr, "address %s, expected %s\n", buf, text);
    return 0;
  }
  return 1;
}

static uint16_t port_of(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
  return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static uint16_t ep_port(qpeer_endpoint_t *ep) {
  struct sockaddr_storage ss;
  assert_int_equal(qpeer_endpoint_get_local_addr(ep, &ss), 0);
  return port_of(&ss);
}

static void loop_begin(uint64_t wd_ms) {
  memset(&G, 0, sizeof(G));
  assert_int_equal(uv_loop_init(&G.loop), 0);
  qpt_watchdog_start(&G.loop, &G.wd, wd_ms);
}

static void loop_end(void) {
  uv_close((uv_handle_t *)&G.wd, NULL);
  qpt_loop_teardown(&G.loop);
}

static qpeer_endpoint_t *ep_open(const char *bind, int v6only) {
  qpeer_endpoint_options_t o;
  struct sockaddr_storage ss = A(bind);
  qpeer_endpoint_t *ep = &G.ep[G.nep++];
  qpeer_endpoint_options_default(&o);
  o.bind_addr = (struct sockaddr *)&ss;
  o.ipv6_only = v6only;
  assert_int_equal(qpeer_endpoint_init(&G.loop, ep, &o), 0);
  return ep;
}

static void on_ep_closed(qpeer_handle_t *h) {
  (void)h;
  G.closes++;
  G.close_order = ++G.order;
}

static void close_all(void) {
  int i;
  for (i = 0; i < G.nep; i++)
    if (!qpeer_is_closing((qpeer_handle_t *)&G.ep[i]))
      assert_int_equal(qpeer_close((qpeer_handle_t *)&G.ep[i], on_ep_closed),
                       0);
  if (G.silent.type == UV_UDP && !uv_is_closing((uv_handle_t *)&G.silent))
    uv_close((uv_handle_t *)&G.silent, NULL);
}

static void on_stun(qpeer_stun_t *req, int status) {
  sreq *s = (sreq *)req; /* req is the first member */
  assert_false(G.in_api);
  assert_int_equal(s->called, 0);
  s->called = 1;
  s->status = status;
  s->t_done = uv_hrtime();
  G.order++;
  if (--G.pending == 0 && G.all_done)
    G.all_done();
}

/* send starts request |i|; returns the synchronous status. */
static int send_req(int i, qpeer_endpoint_t *ep, const char *server,
                    const qpeer_stun_options_t *o) {
  struct sockaddr_storage ss = A(server);
  int r;
  G.s[i].t_start = uv_hrtime();
  G.in_api = 1;
  r = qpeer_stun_send(&G.s[i].req, ep, (struct sockaddr *)&ss, o, on_stun);
  G.in_api = 0;
  if (r == 0)
    G.pending++;
  return r;
}

static void silent_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  static char mem[2048];
  (void)h;
  (void)sz;
  *buf = uv_buf_init(mem, sizeof(mem));
}

static void silent_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf,
                        const struct sockaddr *from, unsigned flags) {
  (void)u;
  (void)buf;
  (void)flags;
  if (n > 0 && from)
    G.silent_rx++;
}

/* silent_open starts a UDP server on 127.0.0.1 that never answers and
 * returns its "ip:port". */
static const char *silent_open(void) {
  static char text[64];
  struct sockaddr_storage ss = A("127.0.0.1:0");
  int len = sizeof(ss);
  assert_int_equal(uv_udp_init(&G.loop, &G.silent), 0);
  assert_int_equal(uv_udp_bind(&G.silent, (struct sockaddr *)&ss, 0), 0);
  assert_int_equal(
      uv_udp_getsockname(&G.silent, (struct sockaddr *)&ss, &len), 0);
  assert_int_equal(uv_udp_recv_start(&G.silent, silent_alloc, silent_recv),
                   0);
  snprintf(text, sizeof(text), "127.0.0.1:%u", port_of(&ss));
  return text;
}

/* ---- coturn ------------------------------------------------------------- */

/* The server outlives a failed assertion otherwise: cmocka runs this
 * teardown whatever the test's outcome. */
static coturn_t c;
static int coturn_teardown(void **state) {
  (void)state;
  coturn_stop(&c);
  return 0;
}

static void test_coturn(void **state) {
  qpeer_endpoint_t *dual, *e4, *e6;
  qpeer_stun_options_t o;
  char srv4[64], srv4b[64], srv6[64], exp[80];
  int r, i, P;
  uint16_t pd, p4, p6;
  (void)state;
  r = coturn_start(&c);
  if (r == -1) {
    print_message("SKIP: turnserver (Debian package coturn) is not "
                  "installed; the coturn interop test does not run\n");
    skip();
  }
  assert_int_equal(r, 0);
  P = c.port;
  snprintf(srv4, sizeof(srv4), "127.0.0.1:%d", P);
  snprintf(srv4b, sizeof(srv4b), "127.0.0.2:%d", P);
  snprintf(srv6, sizeof(srv6), "[::1]:%d", P);
  loop_begin(20000);
  dual = ep_open("[::]:0", 0);
  e4 = ep_open("127.0.0.1:0", 0);
  e6 = ep_open("[::1]:0", 1);
  pd = ep_port(dual);
  p4 = ep_port(e4);
  p6 = ep_port(e6);
  G.all_done = close_all;

  /* Several requests at once, to several servers, both families. */
  assert_int_equal(send_req(0, dual, srv4, NULL), 0);
  assert_int_equal(send_req(1, dual, srv4b, NULL), 0);
  assert_int_equal(send_req(2, dual, srv6, NULL), 0);
  qpeer_stun_options_default(&o);
  o.change_request = QPEER_STUN_CHANGE_IP | QPEER_STUN_CHANGE_PORT;
  assert_int_equal(send_req(3, dual, srv4, &o), 0);
  o.change_request = QPEER_STUN_CHANGE_PORT;
  assert_int_equal(send_req(4, dual, srv4, &o), 0);
  qpeer_stun_options_default(&o);
  o.no_fingerprint = 1;
  assert_int_equal(send_req(5, e4, srv4, &o), 0);
  assert_int_equal(send_req(6, e6, srv6, NULL), 0);
  /* Families the socket cannot reach fail at once, without a callback. */
  assert_int_equal(send_req(7, e4, srv6, NULL), UV_EAFNOSUPPORT);
  assert_int_equal(send_req(8, e6, srv4, NULL), UV_EAFNOSUPPORT);
  for (i = 0; i < 7; i++)
    assert_int_equal(G.s[i].called, 0);

  uv_run(&G.loop, UV_RUN_DEFAULT);
  assert_int_equal(G.closes, 3);
  for (i = 0; i < 7; i++) {
    qpeer_stun_t *q = &G.s[i].req;
    assert_int_equal(G.s[i].called, 1);
    assert_int_equal(G.s[i].status, 0);
    assert_true(q->result_flags & QPEER_STUN_HAS_XOR_MAPPED);
    assert_true(q->transmissions >= 1);
    assert_true(q->rtt_us < 1000000);
    assert_int_equal(q->type, QPEER_STUN);
  }
  assert_int_equal(G.s[7].called, 0);
  assert_int_equal(G.s[8].called, 0);
  /* Mapped addresses: on loopback, our own socket address. */
  snprintf(exp, sizeof(exp), "127.0.0.1:%u", pd);
  assert_true(same(&G.s[0].req.mapped, exp));
  assert_true(same(&G.s[1].req.mapped, exp));
  assert_true(same(&G.s[3].req.mapped, exp));
  assert_true(same(&G.s[4].req.mapped, exp));
  snprintf(exp, sizeof(exp), "[::1]:%u", pd);
  assert_true(same(&G.s[2].req.mapped, exp));
  snprintf(exp, sizeof(exp), "127.0.0.1:%u", p4);
  assert_true(same(&G.s[5].req.mapped, exp));
  snprintf(exp, sizeof(exp), "[::1]:%u", p6);
  assert_true(same(&G.s[6].req.mapped, exp));
  /* RFC 5780: OTHER-ADDRESS and RESPONSE-ORIGIN. */
  assert_true(G.s[0].req.result_flags & QPEER_STUN_HAS_OTHER_ADDRESS);
  snprintf(exp, sizeof(exp), "127.0.0.2:%d", P + 1);
  assert_true(same(&G.s[0].req.other_address, exp));
  /* (coturn names its second address's alternate on that address.) */
  assert_true(G.s[1].req.result_flags & QPEER_STUN_HAS_OTHER_ADDRESS);
  snprintf(exp, sizeof(exp), "[::1]:%d", P + 1);
  assert_true(same(&G.s[2].req.other_address, exp));
  assert_true(G.s[0].req.result_flags & QPEER_STUN_HAS_RESPONSE_ORIGIN);
  assert_true(same(&G.s[0].req.response_origin, srv4));
  assert_true(same(&G.s[0].req.response_source, srv4));
  /* CHANGE-REQUEST: the answer comes from the other IP and/or port. */
  snprintf(exp, sizeof(exp), "127.0.0.2:%d", P + 1);
  assert_true(same(&G.s[3].req.response_source, exp));
  snprintf(exp, sizeof(exp), "127.0.0.1:%d", P + 1);
  assert_true(same(&G.s[4].req.response_source, exp));
  loop_end();
  coturn_stop(&c);
}

/* ---- own responder ------------------------------------------------------- */

static void on_hook(qpeer_endpoint_t *ep, const uint8_t *data, size_t len,
                    const struct sockaddr *from) {
  (void)ep;
  (void)data;
  (void)len;
  (void)from;
  G.hook_calls++;
}

static void test_responder(void **state) {
  qpeer_endpoint_t *a, *a6, *b, *b6;
  qpeer_stun_options_t o;
  char srv[64], srv6[64], exp[80];
  uint16_t pb, pb6;
  (void)state;
  loop_begin(20000);
  a = ep_open("127.0.0.1:0", 0);
  a6 = ep_open("[::1]:0", 1);
  b = ep_open("127.0.0.1:0", 0);
  b6 = ep_open("[::1]:0", 1);
  assert_int_equal(qpeer_endpoint_set_stun_responder(a, 1, NULL), 0);
  assert_int_equal(qpeer_endpoint_set_stun_responder(a6, 1, NULL), 0);
  assert_int_equal(qpeer_endpoint_set_stun_hook(a, on_hook), 0);
  snprintf(srv, sizeof(srv), "127.0.0.1:%u", ep_port(a));
  snprintf(srv6, sizeof(srv6), "[::1]:%u", ep_port(a6));
  G.all_done = close_all;
  assert_int_equal(send_req(0, b, srv, NULL), 0);
  qpeer_stun_options_default(&o);
  o.no_fingerprint = 1;
  assert_int_equal(send_req(1, b, srv, &o), 0);
  assert_int_equal(send_req(2, b6, srv6, NULL), 0);
  qpeer_stun_options_default(&o);
  o.change_request = QPEER_STUN_CHANGE_PORT;
  o.timeout_ms = 3000;
  assert_int_equal(send_req(3, b, srv, &o), 0);
  pb = ep_port(b);
  pb6 = ep_port(b6);
  uv_run(&G.loop, UV_RUN_DEFAULT);

  snprintf(exp, sizeof(exp), "127.0.0.1:%u", pb);
  assert_int_equal(G.s[0].status, 0);
  assert_true(same(&G.s[0].req.mapped, exp));
  assert_true(G.s[0].req.result_flags & QPEER_STUN_HAS_FINGERPRINT);
  assert_true(G.s[0].req.result_flags & QPEER_STUN_HAS_XOR_MAPPED);
  assert_false(G.s[0].req.result_flags & QPEER_STUN_HAS_OTHER_ADDRESS);
  assert_int_equal(G.s[0].req.other_address.ss_family, AF_UNSPEC);
  assert_int_equal(G.s[1].status, 0);
  assert_true(same(&G.s[1].req.mapped, exp));
  snprintf(exp, sizeof(exp), "[::1]:%u", pb6);
  assert_int_equal(G.s[2].status, 0);
  assert_true(same(&G.s[2].req.mapped, exp));
  /* CHANGE-REQUEST is not implemented by our responder: 420. */
  assert_int_equal(G.s[3].status, QPEER_ESTUN);
  assert_int_equal(G.s[3].req.error_code, 420);
  /* Everything was consumed by the responder, the hook saw nothing. */
  assert_int_equal(G.hook_calls, 0);
  loop_end();
}

static void test_responder_stats_and_hook(void **state) {
  qpeer_endpoint_t *a, *b;
  qpeer_stun_options_t o;
  qpeer_stun_responder_stats_t st;
  qpeer_stun_responder_options_t ro;
  uv_udp_t raw;
  uv_buf_t buf;
  struct sockaddr_storage dst;
  char srv[64];
  /* A Binding request with USERNAME (an ICE check): not the responder's. */
  uint8_t ice[32] = {0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42,
                     9,    9,    9,    9,    9,    9,    9,    9,
                     9,    9,    9,    9,    0x00, 0x06, 0x00, 0x05,
                     'a',  'b',  ':',  'c',  'd',  0,    0,    0};
  (void)state;
  loop_begin(20000);
  a = ep_open("127.0.0.1:0", 0);
  b = ep_open("127.0.0.1:0", 0);
  assert_int_equal(qpeer_endpoint_set_stun_hook(a, on_hook), 0);
  snprintf(srv, sizeof(srv), "127.0.0.1:%u", ep_port(a));
  /* Responder off: the request reaches the hook and is never answered. */
  assert_int_equal(qpeer_endpoint_get_stun_responder_stats(a, &st), 0);
  assert_int_equal(st.requests, 0);
  qpeer_stun_options_default(&o);
  o.rto_ms = 50;
  o.timeout_ms = 300;
  assert_int_equal(send_req(0, b, srv, &o), 0);
  while (!G.s[0].called)
    uv_run(&G.loop, UV_RUN_ONCE);
  assert_int_equal(G.s[0].status, UV_ETIMEDOUT);
  assert_true(G.hook_calls >= 1);
  /* Responder on (no FINGERPRINT): answered, the hook sees nothing. */
  G.hook_calls = 0;
  qpeer_stun_responder_options_default(&ro);
  ro.no_fingerprint = 1;
  assert_int_equal(qpeer_endpoint_set_stun_responder(a, 1, &ro), 0);
  assert_int_equal(send_req(1, b, srv, NULL), 0);
  while (!G.s[1].called)
    uv_run(&G.loop, UV_RUN_ONCE);
  assert_int_equal(G.s[1].status, 0);
  assert_false(G.s[1].req.result_flags & QPEER_STUN_HAS_FINGERPRINT);
  assert_int_equal(G.hook_calls, 0);
  /* The ICE check passes through to the hook. */
  assert_int_equal(uv_udp_init(&G.loop, &raw), 0);
  dst = A(srv);
  buf = uv_buf_init((char *)ice, sizeof(ice));
  assert_int_equal(uv_udp_try_send(&raw, &buf, 1, (struct sockaddr *)&dst),
                   (int)sizeof(ice));
  while (G.hook_calls == 0)
    uv_run(&G.loop, UV_RUN_ONCE);
  assert_int_equal(G.hook_calls, 1);
  uv_close((uv_handle_t *)&raw, NULL);
  assert_int_equal(qpeer_endpoint_get_stun_responder_stats(a, &st), 0);
  assert_int_equal(st.requests, 1);
  assert_int_equal(st.answered, 1);
  /* Off again: counters kept. Bad options refused. */
  assert_int_equal(qpeer_endpoint_set_stun_responder(a, 0, NULL), 0);
  assert_int_equal(qpeer_endpoint_get_stun_responder_stats(a, &st), 0);
  assert_int_equal(st.answered, 1);
  ro.rate = 0;
  assert_int_equal(qpeer_endpoint_set_stun_responder(a, 1, &ro), UV_EINVAL);
  assert_int_equal(qpeer_endpoint_set_stun_responder(NULL, 1, NULL),
                   UV_EINVAL);
  assert_int_equal(qpeer_endpoint_get_stun_responder_stats(a, NULL),
                   UV_EINVAL);
  close_all();
  uv_run(&G.loop, UV_RUN_DEFAULT);
  assert_int_equal(G.closes, 2);
  loop_end();
}

/* ---- timeouts -------------------------------------------------------------- */

static void test_timeout(void **state) {
  qpeer_endpoint_t *b;
  qpeer_stun_options_t o;
  const char *srv;
  uint64_t e0, e1;
  (void)state;
  loop_begin(20000);
  srv = silent_open();
  b = ep_open("127.0.0.1:0", 0);
  G.all_done = close_all;
  /* Capped: RTO 50 ms, Rc 7, Rm 16, 1 s overall: transmissions at 0, 50,
   * 150, 350, 750 ms, failure at 1000 ms. */
  qpeer_stun_options_default(&o);
  o.rto_ms = 50;
  o.timeout_ms = 1000;
  assert_int_equal(send_req(0, b, srv, &o), 0);
  /* The schedule's own end: RTO 20, Rc 3, Rm 4: 0, 20, 60; fail at 140. */
  qpeer_stun_options_default(&o);
  o.rto_ms = 20;
  o.max_transmissions = 3;
  o.last_wait_rtos = 4;
  assert_int_equal(send_req(1, b, srv, &o), 0);
  uv_run(&G.loop, UV_RUN_DEFAULT);
  assert_int_equal(G.s[0].status, UV_ETIMEDOUT);
  assert_int_equal(G.s[1].status, UV_ETIMEDOUT);
  /* 5 and 3 on time; a timer delayed by a loaded machine may lose the
   * last transmission before the deadline, never add one. */
  fprintf(stderr, "transmissions %u and %u, received %d\n",
          G.s[0].req.transmissions, G.s[1].req.transmissions, G.silent_rx);
  assert_true(G.s[0].req.transmissions >= 4 &&
              G.s[0].req.transmissions <= 5);
  assert_true(G.s[1].req.transmissions >= 2 &&
              G.s[1].req.transmissions <= 3);
  assert_int_equal(G.silent_rx,
                   (int)(G.s[0].req.transmissions + G.s[1].req.transmissions));
  e0 = (G.s[0].t_done - G.s[0].t_start) / 1000000;
  e1 = (G.s[1].t_done - G.s[1].t_start) / 1000000;
  fprintf(stderr, "timeouts after %llu ms and %llu ms\n",
          (unsigned long long)e0, (unsigned long long)e1);
  /* Never early; late only by scheduling delay (generous for loaded CI). */
  assert_true(e0 >= 1000 && e0 < 2000);
  assert_true(e1 >= 140 && e1 < 1000);
  /* The second failed first: each request has its own schedule. */
  assert_true(G.s[1].t_done < G.s[0].t_done);
  loop_end();
}

/* ---- cancellation and close ------------------------------------------------ */

static const char *g_silent;
static int g_restarted;

static void on_cancelled_restart(qpeer_stun_t *req, int status) {
  qpeer_stun_options_t o;
  on_stun(req, status);
  /* A callback may start a new request on the same endpoint. */
  qpeer_stun_options_default(&o);
  o.rto_ms = 50;
  o.timeout_ms = 100;
  assert_int_equal(send_req(5, &G.ep[0], g_silent, &o), 0);
  g_restarted = 1;
}

static void close_timer_cb(uv_timer_t *t) {
  G.in_api = 1;
  assert_int_equal(qpeer_close((qpeer_handle_t *)&G.ep[0], on_ep_closed), 0);
  G.in_api = 0;
  uv_close((uv_handle_t *)t, NULL);
  uv_close((uv_handle_t *)&G.silent, NULL);
}

static void test_cancel_and_close(void **state) {
  qpeer_endpoint_t *b;
  qpeer_stun_options_t o;
  struct sockaddr_storage ss;
  uv_timer_t t;
  int i;
  (void)state;
  loop_begin(20000);
  g_silent = silent_open();
  b = ep_open("127.0.0.1:0", 0);
  /* Argument checks. */
  ss = A(g_silent);
  assert_int_equal(qpeer_stun_send(NULL, b, (struct sockaddr *)&ss, NULL,
                                   on_stun),
                   UV_EINVAL);
  assert_int_equal(qpeer_stun_send(&G.s[9].req, b, NULL, NULL, on_stun),
                   UV_EINVAL);
  assert_int_equal(qpeer_stun_send(&G.s[9].req, b, (struct sockaddr *)&ss,
                                   NULL, NULL),
                   UV_EINVAL);
  qpeer_stun_options_default(&o);
  o.change_request = 0x01;
  assert_int_equal(send_req(9, b, g_silent, &o), UV_EINVAL);
  qpeer_stun_options_default(&o);
  o.max_transmissions = 17;
  assert_int_equal(send_req(9, b, g_silent, &o), UV_EINVAL);
  assert_int_equal(send_req(9, b, "127.0.0.1:0", NULL), UV_EINVAL);
  assert_int_equal(qpeer_stun_cancel(NULL), UV_EINVAL);

  /* Cancel: the callback comes later, with UV_ECANCELED. */
  qpeer_stun_options_default(&o);
  o.rto_ms = 50;
  o.timeout_ms = 10000;
  assert_int_equal(qpeer_stun_send(&G.s[0].req, b, (struct sockaddr *)&ss, &o,
                                   on_cancelled_restart),
                   0);
  G.pending++;
  G.in_api = 1;
  assert_int_equal(qpeer_stun_cancel(&G.s[0].req), 0);
  assert_int_equal(qpeer_stun_cancel(&G.s[0].req), UV_EINVAL);
  G.in_api = 0;
  assert_int_equal(G.s[0].called, 0);
  /* Three more, pending when the endpoint closes. */
  for (i = 1; i <= 3; i++)
    assert_int_equal(send_req(i, b, g_silent, &o), 0);
  assert_int_equal(uv_timer_init(&G.loop, &t), 0);
  assert_int_equal(uv_timer_start(&t, close_timer_cb, 300, 0), 0);
  uv_run(&G.loop, UV_RUN_DEFAULT);

  assert_int_equal(G.s[0].status, UV_ECANCELED);
  assert_true(g_restarted);
  assert_int_equal(G.s[5].called, 1);
  assert_int_equal(G.s[5].status, UV_ETIMEDOUT);
  for (i = 1; i <= 3; i++) {
    assert_int_equal(G.s[i].called, 1);
    assert_int_equal(G.s[i].status, UV_ECANCELED);
    assert_true(G.s[i].req.transmissions >= 3);
  }
  /* Pending requests completed before the endpoint's close callback. */
  assert_int_equal(G.closes, 1);
  assert_int_equal(G.close_order, G.order);
  assert_int_equal(G.pending, 0);
  /* A closed endpoint refuses new requests. */
  assert_int_equal(send_req(6, b, g_silent, NULL), UV_EINVAL);
  loop_end();
}

/* Closing the endpoint from inside a STUN callback, and starting a request
 * while it closes. */
static void on_stun_close_ep(qpeer_stun_t *req, int status) {
  on_stun(req, status);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&G.ep[0], on_ep_closed), 0);
  assert_int_equal(send_req(7, &G.ep[0], g_silent, NULL), UV_EBUSY);
  assert_int_equal(qpeer_endpoint_set_stun_responder(&G.ep[0], 1, NULL),
                   UV_EBUSY);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&G.ep[1], on_ep_closed), 0);
  uv_close((uv_handle_t *)&G.silent, NULL);
}

static void test_close_in_callback(void **state) {
  qpeer_endpoint_t *a, *b;
  struct sockaddr_storage srv;
  char text[64];
  (void)state;
  loop_begin(20000);
  g_silent = silent_open();
  b = ep_open("127.0.0.1:0", 0);
  a = ep_open("127.0.0.1:0", 0);
  assert_int_equal(qpeer_endpoint_set_stun_responder(a, 1, NULL), 0);
  snprintf(text, sizeof(text), "127.0.0.1:%u", ep_port(a));
  srv = A(text);
  assert_int_equal(qpeer_stun_send(&G.s[0].req, b, (struct sockaddr *)&srv,
                                   NULL, on_stun_close_ep),
                   0);
  G.pending++;
  /* A second request to the silent server, cancelled by the close. */
  assert_int_equal(send_req(1, b, g_silent, NULL), 0);
  uv_run(&G.loop, UV_RUN_DEFAULT);
  assert_int_equal(G.closes, 2);
  assert_int_equal(G.s[0].status, 0);
  assert_int_equal(G.s[1].status, UV_ECANCELED);
  assert_int_equal(G.s[7].called, 0);
  loop_end();
}

/* ---- flood ----------------------------------------------------------------- */

#define FLOOD_N 4000
#define FLOOD_PER_TICK 200
#define NSRC 40

static struct {
  uv_udp_t src[NSRC];
  int nsrc;
  struct sockaddr_storage dst;
  uv_timer_t tick;
  int sent;
  int target;
  size_t req_len[FLOOD_N];
  int responses;
  int bad_size;
  int errors;
  size_t bytes_in, bytes_out;
  uint64_t t_first, t_last_sent;
  int phase_done;
} FL;

/* build_req writes request |i| (its index in the transaction ID) and
 * returns its length: plain, with FINGERPRINT, with CHANGE-REQUEST (a 420
 * answer), or with a long SOFTWARE attribute. */
static size_t build_req(int i, uint8_t *p) {
  size_t n = 20;
  memset(p, 0, 160);
  p[1] = 0x01;
  p[4] = 0x21;
  p[5] = 0x12;
  p[6] = 0xa4;
  p[7] = 0x42;
  memcpy(p + 8, &i, sizeof(i));
  memcpy(p + 12, "floodtxi", 8);
  switch (i % 4) {
  case 1: /* SOFTWARE, 8 bytes */
    p[n] = 0x80;
    p[n + 1] = 0x22;
    p[n + 3] = 8;
    memcpy(p + n + 4, "flooder!", 8);
    n += 12;
    break;
  case 2: /* CHANGE-REQUEST change-port */
    p[n + 1] = 0x03;
    p[n + 3] = 4;
    p[n + 7] = 0x02;
    n += 8;
    break;
  case 3: /* SOFTWARE, 100 bytes */
    p[n] = 0x80;
    p[n + 1] = 0x22;
    p[n + 3] = 100;
    memset(p + n + 4, 'x', 100);
    n += 104;
    break;
  default:
    break;
  }
  p[2] = (uint8_t)((n - 20) >> 8);
  p[3] = (uint8_t)(n - 20);
  return n;
}

static void flood_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  static char mem[65536];
  (void)h;
  (void)sz;
  *buf = uv_buf_init(mem, sizeof(mem));
}

static void flood_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf,
                       const struct sockaddr *from, unsigned flags) {
  const uint8_t *p = (const uint8_t *)buf->base;
  int i;
  size_t rl, limit;
  (void)u;
  (void)flags;
  if (n <= 0 || !from)
    return;
  assert_true(n >= 20);
  memcpy(&i, p + 8, sizeof(i));
  assert_true(i >= 0 && i < FLOOD_N);
  rl = FL.req_len[i];
  limit = rl * 3 < rl + 64 ? rl * 3 : rl + 64;
  if ((size_t)n > limit)
    FL.bad_size++;
  if (p[0] == 0x01 && p[1] == 0x11)
    FL.errors++;
  FL.responses++;
  FL.bytes_in += (size_t)n;
}

static void flood_tick(uv_timer_t *t) {
  uint8_t pkt[160];
  int k;
  (void)t;
  for (k = 0; k < FLOOD_PER_TICK && FL.sent < FL.target; k++) {
    int i = FL.sent;
    uv_udp_t *s = &FL.src[i % FL.nsrc];
    size_t n = build_req(i, pkt);
    uv_buf_t b = uv_buf_init((char *)pkt, (unsigned)n);
    int r = uv_udp_try_send(s, &b, 1, (struct sockaddr *)&FL.dst);
    if (r == UV_EAGAIN)
      break; /* socket buffer full: try again next tick */
    assert_int_equal(r, (int)n);
    FL.req_len[i] = n;
    FL.bytes_out += n;
    FL.sent++;
  }
  if (FL.sent == FL.target) {
    FL.t_last_sent = uv_hrtime();
    uv_timer_stop(&FL.tick);
  }
}

static void flood_run(int nsrc, int target) {
  struct sockaddr_storage any = A("127.0.0.1:0");
  int i;
  FL.nsrc = nsrc;
  FL.target = target;
  FL.sent = 0;
  FL.responses = 0;
  FL.bad_size = 0;
  FL.errors = 0;
  FL.bytes_in = FL.bytes_out = 0;
  for (i = 0; i < nsrc; i++) {
    char ip[32];
    /* Several sources: distinct addresses (all of 127/8 is loopback). */
    if (nsrc > 1) {
      snprintf(ip, sizeof(ip), "127.0.1.%d:0", i + 1);
      any = A(ip);
    }
    assert_int_equal(uv_udp_init(&G.loop, &FL.src[i]), 0);
    assert_int_equal(uv_udp_bind(&FL.src[i], (struct sockaddr *)&any, 0), 0);
    assert_int_equal(uv_udp_recv_start(&FL.src[i], flood_alloc, flood_recv),
                     0);
  }
  assert_int_equal(uv_timer_init(&G.loop, &FL.tick), 0);
  FL.t_first = uv_hrtime();
  assert_int_equal(uv_timer_start(&FL.tick, flood_tick, 0, 1), 0);
  while (FL.sent < FL.target)
    uv_run(&G.loop, UV_RUN_ONCE);
  /* Let the last answers arrive. */
  while (uv_hrtime() - FL.t_last_sent < 300000000ull)
    uv_run(&G.loop, UV_RUN_NOWAIT);
  uv_close((uv_handle_t *)&FL.tick, NULL);
  for (i = 0; i < nsrc; i++)
    uv_close((uv_handle_t *)&FL.src[i], NULL);
  uv_run(&G.loop, UV_RUN_NOWAIT); /* finish the closes before reuse */
}

static void test_responder_flood(void **state) {
  qpeer_endpoint_t *a;
  qpeer_stun_responder_options_t ro;
  qpeer_stun_responder_stats_t st;
  char srv[64];
  double secs, allowed;
  uint64_t took;
  (void)state;
  loop_begin(60000);
  memset(&FL, 0, sizeof(FL));
  a = ep_open("127.0.0.1:0", 0);
  qpeer_stun_responder_options_default(&ro);
  ro.rate = 50;
  ro.burst = 20;
  assert_int_equal(qpeer_endpoint_set_stun_responder(a, 1, &ro), 0);
  snprintf(srv, sizeof(srv), "127.0.0.1:%u", ep_port(a));
  FL.dst = A(srv);

  /* One source, thousands of requests. */
  flood_run(1, FLOOD_N);
  took = uv_hrtime() - FL.t_first;
  secs = (double)took / 1e9;
  allowed = ro.burst + ro.rate * secs + 1;
  assert_int_equal(qpeer_endpoint_get_stun_responder_stats(a, &st), 0);
  fprintf(stderr,
          "flood (1 source): sent %d in %.3f s; responder took %llu, "
          "answered %llu, errors %llu, dropped rate %llu size %llu "
          "malformed %llu send %llu; %d responses (allowed %.0f), "
          "%zu bytes in for %zu out\n",
          FL.sent, secs, (unsigned long long)st.requests,
          (unsigned long long)st.answered, (unsigned long long)st.errors,
          (unsigned long long)st.dropped_rate,
          (unsigned long long)st.dropped_size,
          (unsigned long long)st.dropped_malformed,
          (unsigned long long)st.dropped_send, FL.responses, allowed,
          FL.bytes_in, FL.bytes_out);
  assert_true(st.requests <= (uint64_t)FL.sent);
  assert_true(st.requests >= 100); /* the kernel may drop some, not most */
  assert_int_equal(st.requests, st.answered + st.errors + st.dropped_rate +
                                    st.dropped_size + st.dropped_malformed +
                                    st.dropped_send);
  assert_true((double)(st.answered + st.errors) <= allowed);
  assert_true(st.answered + st.errors >= 10);
  assert_int_equal((uint64_t)FL.responses, st.answered + st.errors);
  assert_true(FL.errors > 0); /* the CHANGE-REQUEST ones got 420 */
  assert_int_equal(FL.bad_size, 0);
  assert_true(FL.bytes_in <= FL.bytes_out);
  assert_int_equal(st.dropped_size, 0);

  /* Many sources: the global limit holds, the table stays bounded. */
  ro.rate = 1000;
  ro.burst = 1000;
  ro.global_rate = 20;
  ro.global_burst = 30;
  ro.max_sources = 8;
  assert_int_equal(qpeer_endpoint_set_stun_responder(a, 1, &ro), 0);
  flood_run(NSRC, NSRC * 10);
  took = uv_hrtime() - FL.t_first;
  secs = (double)took / 1e9;
  allowed = ro.global_burst + ro.global_rate * secs + 1;
  {
    qpeer_stun_responder_stats_t st2;
    assert_int_equal(qpeer_endpoint_get_stun_responder_stats(a, &st2), 0);
    fprintf(stderr,
            "flood (%d sources): %d responses in %.3f s (allowed %.0f), "
            "evictions %llu\n",
            NSRC, FL.responses, secs, allowed,
            (unsigned long long)st2.evictions);
    assert_true(FL.responses <= allowed);
    assert_true(FL.responses >= 10);
    assert_true(st2.evictions > 0);
    assert_int_equal(FL.bad_size, 0);
  }
  close_all();
  uv_run(&G.loop, UV_RUN_DEFAULT);
  loop_end();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_coturn, coturn_teardown),
      cmocka_unit_test(test_responder),
      cmocka_unit_test(test_responder_stats_and_hook),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_cancel_and_close),
      cmocka_unit_test(test_close_in_callback),
      cmocka_unit_test(test_responder_flood),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests_name("stun", tests, NULL, NULL);
}
