/* SPDX-License-Identifier: MIT */
/*
 * Loopback: qpeer_netcheck_t end to end (the NAT lab test covers real
 * NATs). Against coturn on 127.0.0.1/127.0.0.2/::1 (skipped when it is not
 * installed): no NAT, endpoint-independent filtering through RFC 5780
 * CHANGE-REQUEST, hairpinning, IPv4 and IPv6 from one dual-stack endpoint.
 * Against qpeer's own responder (no RFC 5780: filtering unknown). A server
 * that never answers: "UDP blocked" within the probe timeout. The overall
 * deadline, cancellation, and the endpoint closing under a survey.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coturn.h"
#include "qpeer.h"
#include "util.h"

static struct {
  uv_loop_t loop;
  uv_timer_t wd;
  qpeer_endpoint_t ep, srv;
  int srv_open;
  qpeer_netcheck_t req;
  int called, status, in_api, closes, order, close_order, cb_order;
  qpeer_netcheck_report_t rep;
  uint64_t t0, took_ms;
  uv_udp_t silent;
  int silent_open;
  int close_ep_in_cb; /* close the endpoint when the survey ends */
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

static uint16_t ep_port(qpeer_endpoint_t *ep) {
  struct sockaddr_storage ss;
  assert_int_equal(qpeer_endpoint_get_local_addr(ep, &ss), 0);
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void on_closed(qpeer_handle_t *h) {
  G.closes++;
  if (h == (qpeer_handle_t *)&G.ep)
    G.close_order = ++G.order;
}

static void close_rest(void) {
  if (!qpeer_is_closing((qpeer_handle_t *)&G.ep))
    qpeer_close((qpeer_handle_t *)&G.ep, on_closed);
  if (G.srv_open && !qpeer_is_closing((qpeer_handle_t *)&G.srv))
    qpeer_close((qpeer_handle_t *)&G.srv, on_closed);
  if (G.silent_open && !uv_is_closing((uv_handle_t *)&G.silent))
    uv_close((uv_handle_t *)&G.silent, NULL);
}

static void on_report(qpeer_netcheck_t *req, int status,
                      const qpeer_netcheck_report_t *r) {
  assert_ptr_equal(req, &G.req);
  assert_false(G.in_api);
  assert_int_equal(G.called, 0);
  G.called = 1;
  G.status = status;
  G.rep = *r;
  G.took_ms = (uv_hrtime() - G.t0) / 1000000;
  G.cb_order = ++G.order;
  close_rest();
}

static void begin(const char *bind, int v6only) {
  qpeer_endpoint_options_t o;
  struct sockaddr_storage ss = A(bind);
  memset(&G, 0, sizeof(G));
  assert_int_equal(uv_loop_init(&G.loop), 0);
  qpt_watchdog_start(&G.loop, &G.wd, 30000);
  qpeer_endpoint_options_default(&o);
  o.bind_addr = (struct sockaddr *)&ss;
  o.ipv6_only = v6only;
  assert_int_equal(qpeer_endpoint_init(&G.loop, &G.ep, &o), 0);
}

static void end(void) {
  uv_close((uv_handle_t *)&G.wd, NULL);
  qpt_loop_teardown(&G.loop);
}

static int start(const struct sockaddr_storage *servers, size_t n,
                 qpeer_netcheck_options_t *o) {
  qpeer_netcheck_options_t d;
  int r;
  if (!o) {
    qpeer_netcheck_options_default(&d);
    o = &d;
  }
  o->servers = servers;
  o->nservers = n;
  G.t0 = uv_hrtime();
  G.in_api = 1;
  r = qpeer_netcheck_start(&G.req, &G.ep, o, on_report);
  G.in_api = 0;
  return r;
}

static void print_report(const qpeer_netcheck_report_t *r) {
  char a[QPEER_ADDR_STRLEN], b[QPEER_ADDR_STRLEN];
  size_t i;
  fprintf(stderr,
          "report: udp %d partial %d %llu ms; v4 tested %d works %d mapping "
          "%s filtering %s hairpin %d; v6 tested %d works %d mapping %s "
          "filtering %s hairpin %d; double %d\n",
          r->udp, r->partial, (unsigned long long)r->duration_ms,
          r->ipv4.tested, r->ipv4.works,
          qpeer_nat_mapping_name(r->ipv4.mapping),
          qpeer_nat_filtering_name(r->ipv4.filtering), r->ipv4.hairpin,
          r->ipv6.tested, r->ipv6.works,
          qpeer_nat_mapping_name(r->ipv6.mapping),
          qpeer_nat_filtering_name(r->ipv6.filtering), r->ipv6.hairpin,
          r->double_nat);
  for (i = 0; i < r->nprobes; i++) {
    qpeer_addr_format((const void *)&r->probes[i].server, a, sizeof(a));
    b[0] = '\0';
    if (r->probes[i].status == 0)
      qpeer_addr_format((const void *)&r->probes[i].reflexive, b, sizeof(b));
    fprintf(stderr, "  probe %s status %d flags %u reflexive %s rtt %llu\n", a,
            r->probes[i].status, r->probes[i].flags, b,
            (unsigned long long)r->probes[i].rtt_us);
  }
}

/* ---- against coturn -------------------------------------------------------- */

/* The server outlives a failed assertion otherwise: cmocka runs this
 * teardown whatever the test's outcome. */
static coturn_t c;
static int coturn_teardown(void **state) {
  (void)state;
  coturn_stop(&c);
  return 0;
}

static void test_coturn(void **state) {
  struct sockaddr_storage servers[2];
  char text[80];
  int r, P;
  uint16_t port;
  (void)state;
  r = coturn_start(&c);
  if (r == -1) {
    print_message("SKIP: turnserver (Debian package coturn) is not "
                  "installed; the coturn netcheck test does not run\n");
    skip();
  }
  assert_int_equal(r, 0);
  P = c.port;

  /* IPv4 only, bound to 127.0.0.1. */
  begin("127.0.0.1:0", 0);
  port = ep_port(&G.ep);
  snprintf(text, sizeof(text), "127.0.0.1:%d", P);
  servers[0] = A(text);
  assert_int_equal(start(servers, 1, NULL), 0);
  assert_int_equal(G.called, 0);
  uv_run(&G.loop, UV_RUN_DEFAULT);
  print_report(&G.rep);
  assert_int_equal(G.status, 0);
  assert_int_equal(G.rep.udp, 1);
  assert_int_equal(G.rep.partial, 0);
  assert_int_equal(G.rep.ipv4.tested, 1);
  assert_int_equal(G.rep.ipv4.works, 1);
  assert_int_equal(G.rep.ipv6.tested, 0);
  snprintf(text, sizeof(text), "127.0.0.1:%u", port);
  assert_true(same(&G.rep.ipv4.reflexive, text));
  assert_int_equal(G.rep.ipv4.mapping, QPEER_NAT_MAPPING_NONE);
  assert_int_equal(G.rep.ipv4.filtering,
                   QPEER_NAT_FILTERING_ENDPOINT_INDEPENDENT);
  assert_int_equal(G.rep.ipv4.hairpin, QPEER_NETCHECK_YES);
  assert_int_equal(G.rep.double_nat, QPEER_NETCHECK_NO);
  snprintf(text, sizeof(text), "127.0.0.1:%d", P);
  assert_true(same(&G.rep.ipv4.rfc5780_server, text));
  /* The server, then its two alternates (RFC 5780 tests II and III). */
  assert_int_equal(G.rep.nprobes, 3);
  assert_int_equal(G.rep.probes[0].flags, QPEER_NETCHECK_PROBE_USER);
  assert_int_equal(G.rep.probes[1].flags, QPEER_NETCHECK_PROBE_ALTERNATE);
  snprintf(text, sizeof(text), "127.0.0.2:%d", P);
  assert_true(same(&G.rep.probes[1].server, text));
  snprintf(text, sizeof(text), "127.0.0.2:%d", P + 1);
  assert_true(same(&G.rep.probes[2].server, text));
  assert_int_equal(G.rep.probes[2].status, 0);
  assert_true(G.rep.probes[0].rtt_us < 1000000);
  assert_true(same(&G.rep.probes[0].other_address, text));
  assert_int_equal(G.rep.portmap_status, 1);
  assert_int_equal(G.closes, 1);
  assert_true(G.took_ms < 5000);
  end();

  /* Dual stack: one IPv4 and one IPv6 server. */
  begin("[::]:0", 0);
  port = ep_port(&G.ep);
  snprintf(text, sizeof(text), "127.0.0.1:%d", P);
  servers[0] = A(text);
  snprintf(text, sizeof(text), "[::1]:%d", P);
  servers[1] = A(text);
  assert_int_equal(start(servers, 2, NULL), 0);
  uv_run(&G.loop, UV_RUN_DEFAULT);
  print_report(&G.rep);
  assert_int_equal(G.status, 0);
  assert_int_equal(G.rep.ipv4.works, 1);
  assert_int_equal(G.rep.ipv6.tested, 1);
  assert_int_equal(G.rep.ipv6.works, 1);
  snprintf(text, sizeof(text), "[::1]:%u", port);
  assert_true(same(&G.rep.ipv6.reflexive, text));
  assert_int_equal(G.rep.ipv4.mapping, QPEER_NAT_MAPPING_NONE);
  assert_int_equal(G.rep.ipv6.mapping, QPEER_NAT_MAPPING_NONE);
  assert_int_equal(G.rep.ipv4.filtering,
                   QPEER_NAT_FILTERING_ENDPOINT_INDEPENDENT);
  /* coturn has one IPv6 address: the change-IP test cannot run, and a
   * port-change answer alone proves nothing. */
  assert_int_equal(G.rep.ipv6.filtering, QPEER_NAT_FILTERING_UNKNOWN);
  assert_int_equal(G.rep.ipv6.hairpin, QPEER_NETCHECK_YES);
  end();
  coturn_stop(&c);
}

/* ---- against our own responder, and against silence ------------------------ */

static void open_srv(void) {
  qpeer_endpoint_options_t o;
  struct sockaddr_storage ss = A("127.0.0.1:0");
  qpeer_endpoint_options_default(&o);
  o.bind_addr = (struct sockaddr *)&ss;
  assert_int_equal(qpeer_endpoint_init(&G.loop, &G.srv, &o), 0);
  G.srv_open = 1;
  assert_int_equal(qpeer_endpoint_set_stun_responder(&G.srv, 1, NULL), 0);
}

static struct sockaddr_storage open_silent(void) {
  struct sockaddr_storage ss = A("127.0.0.1:0");
  int len = sizeof(ss);
  assert_int_equal(uv_udp_init(&G.loop, &G.silent), 0);
  assert_int_equal(uv_udp_bind(&G.silent, (struct sockaddr *)&ss, 0), 0);
  assert_int_equal(
      uv_udp_getsockname(&G.silent, (struct sockaddr *)&ss, &len), 0);
  G.silent_open = 1;
  return ss;
}

static void test_own_responder(void **state) {
  struct sockaddr_storage servers[2];
  char text[64];
  (void)state;
  begin("127.0.0.1:0", 0);
  open_srv();
  snprintf(text, sizeof(text), "127.0.0.1:%u", ep_port(&G.srv));
  servers[0] = A(text);
  servers[1] = open_silent(); /* a dead server next to a live one */
  assert_int_equal(start(servers, 2, NULL), 0);
  uv_run(&G.loop, UV_RUN_DEFAULT);
  print_report(&G.rep);
  assert_int_equal(G.status, 0);
  assert_int_equal(G.rep.udp, 1);
  assert_int_equal(G.rep.ipv4.mapping, QPEER_NAT_MAPPING_NONE);
  assert_int_equal(G.rep.ipv4.filtering, QPEER_NAT_FILTERING_UNKNOWN);
  assert_int_equal(G.rep.ipv4.rfc5780_server.ss_family, AF_UNSPEC);
  assert_int_equal(G.rep.ipv4.hairpin, QPEER_NETCHECK_YES);
  assert_int_equal(G.rep.nprobes, 2);
  assert_int_equal(G.rep.probes[0].status, 0);
  assert_int_equal(G.rep.probes[1].status, UV_ETIMEDOUT);
  assert_int_equal(G.closes, 2);
  end();
}

static void test_udp_blocked(void **state) {
  struct sockaddr_storage servers[1];
  qpeer_netcheck_options_t o;
  (void)state;
  begin("127.0.0.1:0", 0);
  servers[0] = open_silent();
  qpeer_netcheck_options_default(&o);
  o.probe_timeout_ms = 400;
  o.rto_ms = 100;
  assert_int_equal(start(servers, 1, &o), 0);
  uv_run(&G.loop, UV_RUN_DEFAULT);
  print_report(&G.rep);
  assert_int_equal(G.status, 0);
  assert_int_equal(G.rep.udp, 0);
  assert_int_equal(G.rep.partial, 0);
  assert_int_equal(G.rep.ipv4.tested, 1);
  assert_int_equal(G.rep.ipv4.works, 0);
  assert_int_equal(G.rep.ipv4.mapping, QPEER_NAT_MAPPING_UNKNOWN);
  assert_int_equal(G.rep.ipv4.hairpin, QPEER_NETCHECK_UNKNOWN);
  assert_int_equal(G.rep.probes[0].status, UV_ETIMEDOUT);
  /* 0, 100 and 300 ms (a heavily loaded machine may miss the last). */
  assert_true(G.rep.probes[0].transmissions >= 2 &&
              G.rep.probes[0].transmissions <= 3);
  assert_true(G.took_ms >= 400 && G.took_ms < 3000);
  end();
}

static void test_deadline_cancel_close(void **state) {
  struct sockaddr_storage servers[2];
  qpeer_netcheck_options_t o;
  (void)state;
  /* The overall deadline cuts a slow survey short: partial, status 0. */
  begin("127.0.0.1:0", 0);
  servers[0] = open_silent();
  qpeer_netcheck_options_default(&o);
  o.timeout_ms = 300;
  assert_int_equal(start(servers, 1, &o), 0);
  uv_run(&G.loop, UV_RUN_DEFAULT);
  assert_int_equal(G.status, 0);
  assert_int_equal(G.rep.partial, 1);
  assert_int_equal(G.rep.udp, 0);
  assert_int_equal(G.rep.probes[0].status, UV_ECANCELED);
  assert_true(G.took_ms >= 300 && G.took_ms < 3000);
  end();

  /* Cancel: the callback comes later, with UV_ECANCELED. */
  begin("127.0.0.1:0", 0);
  servers[0] = open_silent();
  assert_int_equal(start(servers, 1, NULL), 0);
  G.in_api = 1;
  assert_int_equal(qpeer_netcheck_cancel(&G.req), 0);
  assert_int_equal(qpeer_netcheck_cancel(&G.req), UV_EINVAL);
  G.in_api = 0;
  assert_int_equal(G.called, 0);
  uv_run(&G.loop, UV_RUN_DEFAULT);
  assert_int_equal(G.called, 1);
  assert_int_equal(G.status, UV_ECANCELED);
  end();

  /* The endpoint closes under the survey: UV_ECANCELED, before the
   * endpoint's close callback. */
  begin("127.0.0.1:0", 0);
  open_srv();
  {
    char text[64];
    snprintf(text, sizeof(text), "127.0.0.1:%u", ep_port(&G.srv));
    servers[0] = A(text);
  }
  servers[1] = open_silent();
  assert_int_equal(start(servers, 2, NULL), 0);
  /* Phase 1 is still waiting for the silent server. */
  while (uv_hrtime() - G.t0 < 100000000ull)
    uv_run(&G.loop, UV_RUN_ONCE);
  assert_int_equal(G.called, 0);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&G.ep, on_closed), 0);
  uv_run(&G.loop, UV_RUN_DEFAULT);
  assert_int_equal(G.called, 1);
  assert_int_equal(G.status, UV_ECANCELED);
  assert_true(G.cb_order < G.close_order);
  assert_int_equal(G.closes, 2);
  end();

  /* Bad arguments: no callback, nothing to clean. */
  begin("127.0.0.1:0", 0);
  qpeer_netcheck_options_default(&o);
  assert_int_equal(start(servers, 0, &o), UV_EINVAL);
  assert_int_equal(start(servers, QPEER_NETCHECK_MAX_SERVERS + 1, &o),
                   UV_EINVAL);
  servers[0] = A("127.0.0.1:0");
  assert_int_equal(start(servers, 1, &o), UV_EINVAL);
  assert_int_equal(qpeer_netcheck_start(&G.req, &G.ep, NULL, on_report),
                   UV_EINVAL);
  assert_int_equal(qpeer_netcheck_cancel(NULL), UV_EINVAL);
  close_rest();
  uv_run(&G.loop, UV_RUN_DEFAULT);
  assert_int_equal(G.called, 0);
  end();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_coturn, coturn_teardown),
      cmocka_unit_test(test_own_responder),
      cmocka_unit_test(test_udp_blocked),
      cmocka_unit_test(test_deadline_cancel_close),
  };
  return cmocka_run_group_tests_name("netcheck", tests, NULL, NULL);
}
