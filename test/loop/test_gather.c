/* SPDX-License-Identifier: MIT */
/*
 * Candidate gathering on loopback: host candidates, a server-reflexive one
 * from qpeer's own STUN responder (merged into the host candidate: same
 * address), one from QUIC address discovery behind a forwarder (a distinct
 * reflexive address), a relay address, a STUN server that never answers
 * (bounded by the deadline), and cancellation.
 */
#include <string.h>

#include "udpfw.h"
#include "util.h"
#include "core/addr.h"
#include "qpeer.h"

static const char *alpn[] = {"qpeer-test"};
static uv_loop_t loop;
static qpeer_endpoint_t ep, stun_ep, srv_ep;
static qpeer_conn_t srv_conn, cli_conn;
static qpeer_connect_t creq;
static qpeer_gather_t g;
static qpt_udpfw fw;
static struct sockaddr_storage ep_addr, stun_addr, dead_addr, relay_addr,
    srv_addr;
static int ncalls, eofs, cancels, saw_host, saw_srflx_stun, saw_observed,
    saw_relay, closes;
static uint64_t t0;

static void on_close(qpeer_handle_t *h) {
  (void)h;
  closes++;
}

static void on_cand(qpeer_gather_t *req, int status,
                    const qpeer_candidate_t *c) {
  ncalls++;
  if (status == UV_EOF || status == UV_ECANCELED) {
    assert_null(c);
    if (status == UV_EOF)
      eofs++;
    else
      cancels++;
    {
      /* STUN saw exactly the host address: merged into the host
       * candidate (not reported again), with the STUN source bit. */
      size_t i;
      for (i = 0; i < req->ncands; i++)
        if (qpeer__addr_equal((struct sockaddr *)&req->cands[i].addr,
                              (struct sockaddr *)&ep_addr) &&
            req->cands[i].type == QPEER_CANDIDATE_HOST &&
            (req->cands[i].sources & QPEER_CANDIDATE_SRC_STUN))
          saw_srflx_stun = 1;
    }
    /* The dead STUN server cost at most its deadline. */
    assert_true(uv_now(&loop) - t0 < 3000);
    qpeer_close((qpeer_handle_t *)&ep, on_close);
    qpeer_close((qpeer_handle_t *)&stun_ep, on_close);
    qpeer_close((qpeer_handle_t *)&srv_ep, on_close);
    qpt_udpfw_stop(&fw);
    return;
  }
  assert_int_equal(status, 0);
  assert_non_null(c);
  assert_true(req->ncands >= 1);
  if (c->type == QPEER_CANDIDATE_HOST &&
      qpeer__addr_equal((struct sockaddr *)&c->addr,
                        (struct sockaddr *)&ep_addr)) {
    saw_host = 1;
  }
  if (c->type == QPEER_CANDIDATE_SRFLX &&
      (c->sources & QPEER_CANDIDATE_SRC_OBSERVED))
    saw_observed = 1;
  if (c->type == QPEER_CANDIDATE_RELAY)
    saw_relay = 1;
}

static void start_gather(void) {
  qpeer_gather_options_t o;
  const struct sockaddr *stuns[2];
  qpeer_conn_t *conns[1];
  qpeer_gather_options_default(&o);
  stuns[0] = (struct sockaddr *)&stun_addr;
  stuns[1] = (struct sockaddr *)&dead_addr;
  conns[0] = &cli_conn;
  o.stun_servers = stuns;
  o.nstun = 2;
  o.stun_timeout_ms = 600;
  o.stun_rto_ms = 100;
  o.conns = conns;
  o.nconns = 1;
  o.relay = (struct sockaddr *)&relay_addr;
  o.include_loopback = 1;
  o.deadline_ms = 2000;
  t0 = uv_now(&loop);
  assert_int_equal(qpeer_gather(&g, &ep, &o, on_cand), 0);
  assert_int_equal(ncalls, 0); /* never inside the call */
}

static void on_observed(qpeer_conn_t *c, const struct sockaddr *a) {
  (void)c;
  (void)a;
  if (!g.impl && !ncalls)
    start_gather();
}

static void on_connection(qpeer_endpoint_t *e, int status) {
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_endpoint_accept(e, &srv_conn), 0);
}

static void on_connect(qpeer_connect_t *req, int status) {
  qpeer_conn_callbacks_t cbs;
  (void)req;
  assert_int_equal(status, 0);
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_observed_address = on_observed;
  qpeer_conn_set_callbacks(&cli_conn, &cbs);
}

static void test_gather_all_sources(void **state) {
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_connect_options_t co;
  struct sockaddr_storage b4, fw_addr;
  static uv_timer_t wd;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &wd, 20000);
  qpeer_addr_parse(&b4, "127.0.0.1:0");
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&b4;
  assert_int_equal(qpeer_endpoint_init(&loop, &ep, &eo), 0);
  assert_int_equal(qpeer_endpoint_init(&loop, &stun_ep, &eo), 0);
  assert_int_equal(qpeer_endpoint_init(&loop, &srv_ep, &eo), 0);
  assert_int_equal(qpeer_endpoint_set_stun_responder(&stun_ep, 1, NULL), 0);
  qpeer_endpoint_get_local_addr(&ep, &ep_addr);
  qpeer_endpoint_get_local_addr(&stun_ep, &stun_addr);
  qpeer_endpoint_get_local_addr(&srv_ep, &srv_addr);
  qpeer_addr_parse(&dead_addr, "127.0.0.1:9");
  qpeer_addr_parse(&relay_addr, "198.51.100.1:40000");
  /* A QUIC server behind a forwarder reports our address as it sees it:
   * the forwarder's upstream socket, a reflexive address of its own. */
  qpeer_listen_options_default(&lo);
  lo.alpn = alpn;
  lo.nalpn = 1;
  assert_int_equal(qpeer_endpoint_listen(&srv_ep, &lo, on_connection), 0);
  assert_int_equal(qpt_udpfw_start(&fw, &loop, (struct sockaddr *)&b4,
                                   (struct sockaddr *)&srv_addr, 0, 0, 9),
                   0);
  qpt_udpfw_addr(&fw, &fw_addr);
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)&fw_addr;
  co.alpn = alpn;
  co.nalpn = 1;
  co.peer_id = qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&srv_ep));
  assert_int_equal(qpeer_connect(&creq, &ep, &cli_conn, &co, on_connect), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(eofs, 1);
  assert_int_equal(cancels, 0);
  assert_true(saw_host);
  assert_true(saw_srflx_stun);
  assert_true(saw_observed);
  assert_true(saw_relay);
  assert_true(g.ncands >= 3);
  assert_int_equal(closes, 3);
  qpt_loop_teardown(&loop);
}

static void cancel_cb(qpeer_gather_t *req, int status,
                      const qpeer_candidate_t *c) {
  (void)req;
  (void)c;
  if (status == UV_ECANCELED) {
    cancels++;
    qpeer_close((qpeer_handle_t *)&ep, NULL);
  }
}

static void test_gather_cancel(void **state) {
  qpeer_endpoint_options_t eo;
  qpeer_gather_options_t o;
  struct sockaddr_storage b4;
  const struct sockaddr *stuns[1];
  (void)state;
  cancels = 0;
  assert_int_equal(uv_loop_init(&loop), 0);
  qpeer_addr_parse(&b4, "127.0.0.1:0");
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&b4;
  assert_int_equal(qpeer_endpoint_init(&loop, &ep, &eo), 0);
  qpeer_addr_parse(&dead_addr, "127.0.0.1:9");
  stuns[0] = (struct sockaddr *)&dead_addr;
  qpeer_gather_options_default(&o);
  o.stun_servers = stuns;
  o.nstun = 1;
  assert_int_equal(qpeer_gather(&g, &ep, &o, cancel_cb), 0);
  assert_int_equal(qpeer_gather_cancel(&g), 0);
  assert_int_equal(qpeer_gather_cancel(&g), UV_EINVAL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(cancels, 1);
  qpt_loop_teardown(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gather_all_sources),
      cmocka_unit_test(test_gather_cancel),
  };
  return cmocka_run_group_tests_name("gather", tests, NULL, NULL);
}
