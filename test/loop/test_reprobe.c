/* SPDX-License-Identifier: MIT */
/*
 * Re-probing after network changes, on loopback with a real relay: a
 * camera (qpeer_peer_listener_t bound at the relay) and a phone that
 * connects through the relay (qpeer_peer_connect, prefer direct) and
 * upgrades to the direct path. Then (a) an injected interface-set change
 * (the dialer's interface watch reads a fake source) starts a new punch
 * with the backoff reset, and (b) an injected NAT rebinding (a new
 * address observed for the phone on an unchanged path, delivered through
 * the connection's event dispatch as a control-stream report is) starts
 * another. Re-probing is bounded: max_reprobes is 0, so no periodic
 * re-probe can start a punch behind the test's back.
 */
#include <string.h>

#include "core/addr.h"
#include "peer/connect.h"
#include "peer/netwatch.h"
#include "qpeer.h"
#include "quic/handles.h"
#include "util.h"

static const char *h3_alpn[] = {QPEER_MASQUE_ALPN};
static const char *app_alpn[] = {"qpeer-test"};
static uv_loop_t loop;
static uv_timer_t wd, step_timer;
static qpeer_endpoint_t relay_ep, cam_ep, phone_ep;
static qpeer_relay_t relay;
static qpeer_peer_listener_t lst;
static qpeer_conn_t cam_conn, phone_conn;
static qpeer_peer_connect_t preq;
static struct sockaddr_storage relay_addr, bound_addr, cam_addr;
static int closes, step, connected, accepted, bound, injections;
static uint64_t changes_at, injected_at;
static struct sockaddr_storage fake_set[2];
static size_t fake_n;

static void on_close(qpeer_handle_t *h) {
  (void)h;
  closes++;
}

static void endpoint_init(qpeer_endpoint_t *ep) {
  qpeer_endpoint_options_t eo;
  struct sockaddr_storage b4;
  assert_int_equal(qpeer_addr_parse(&b4, "127.0.0.1:0"), 0);
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&b4;
  eo.retry_mode = QPEER_RETRY_NEVER;
  eo.max_datagram_frame_size = 1500;
  assert_int_equal(qpeer_endpoint_init(&loop, ep, &eo), 0);
}

static int fake_source(qpeer__netwatch *nw, struct sockaddr_storage *out,
                       size_t max, size_t *pn) {
  size_t i;
  (void)nw;
  for (i = 0; i < fake_n && i < max; i++)
    out[i] = fake_set[i];
  *pn = i;
  return 0;
}

static void on_relay_conn(qpeer_endpoint_t *ep, int status) {
  assert_int_equal(status, 0);
  while (qpeer_relay_accept(&relay, ep) == 0)
    ;
}

static void on_peer_connect(qpeer_peer_connect_t *r, int status) {
  assert_int_equal(status, 0);
  assert_true(r->via_relay);
  connected++;
}

/* Dial by the listener's ticket, keeping only the relay address so the
 * relay wins and the upgrade runs. */
static void dial(void) {
  qpeer_ticket_t full, t;
  qpeer_peer_connect_options_t o;
  assert_int_equal(qpeer_peer_listener_get_ticket(&lst, &full), 0);
  assert_int_equal(full.addrs[0].type, QPEER_TICKET_ADDR_RELAY);
  qpeer_ticket_init(&t);
  t.peer_id = full.peer_id;
  assert_int_equal(
      qpeer_ticket_add_typed_addr(&t, (struct sockaddr *)&full.addrs[0].addr,
                                  QPEER_TICKET_ADDR_RELAY),
      0);
  qpeer_peer_connect_options_default(&o);
  assert_int_equal(o.netwatch_interval_ms, 5000);
  o.alpn = app_alpn;
  o.nalpn = 1;
  o.flags = QPEER_PEER_ALLOW_LOOPBACK;
  o.gather_deadline_ms = 300;
  o.max_reprobes = 0;
  o.netwatch_interval_ms = 1; /* clamped to the lower bound */
  assert_int_equal(qpeer_peer_connect(&preq, &phone_ep, &phone_conn, &t, &o,
                                      on_peer_connect),
                   0);
}

static void on_listener(qpeer_peer_listener_t *l, int status,
                        const qpeer_peer_listener_info_t *info) {
  switch (info->event) {
  case QPEER_LISTENER_EV_RELAY:
    assert_int_equal(status, 0);
    qpeer__addr_normalize(&bound_addr, info->relay);
    bound++;
    break;
  case QPEER_LISTENER_EV_CONNECTION:
    assert_int_equal(status, 0);
    assert_int_equal(qpeer_peer_listener_accept(l, &cam_conn), 0);
    accepted++;
    break;
  default:
    break;
  }
}

static void end_all(void) {
  uv_close((uv_handle_t *)&step_timer, NULL);
  qpeer_close((qpeer_handle_t *)&phone_conn, on_close);
  qpeer_close((qpeer_handle_t *)&cam_conn, on_close);
  qpeer_close((qpeer_handle_t *)&lst, on_close);
  qpeer_relay_close(&relay, on_close);
  qpeer_close((qpeer_handle_t *)&relay_ep, on_close);
  qpeer_close((qpeer_handle_t *)&cam_ep, on_close);
  qpeer_close((qpeer_handle_t *)&phone_ep, on_close);
}

/* Deliver a report of a new observed address for the phone, exactly as
 * the control stream does on OBSERVED_ADDRESS. */
static void inject_observed(void) {
  qpeer__conn *c = phone_conn.impl;
  char text[64];
  snprintf(text, sizeof(text), "198.51.100.77:%u",
           4000u + (unsigned)injections++);
  assert_int_equal(qpeer_addr_parse(&c->observed, text), 0);
  c->have_observed = 1;
  c->events |= QPEER__EV_OBSERVED;
  qpeer__conn_schedule_flush(c);
}

static void on_step(uv_timer_t *t) {
  qpeer__netwatch *nw;
  qpeer_path_t p;
  (void)t;
  switch (step) {
  case 0: /* The binding is up: dial. */
    if (!bound)
      return;
    dial();
    step++;
    return;
  case 1: /* Connected through the relay, upgraded by the first punch. */
    if (!connected || !accepted || preq.upgrades < 1)
      return;
    assert_int_equal(preq.punches, 1);
    assert_int_equal(qpeer_conn_get_path(&phone_conn, &p), 0);
    assert_true(qpeer__addr_equal((struct sockaddr *)&p.remote,
                                  (struct sockaddr *)&cam_addr));
    /* (a) The interface set changes. */
    nw = qpeer__peer_connect_netwatch(&preq);
    assert_non_null(nw);
    assert_int_equal(nw->interval_ms, QPEER__NETWATCH_MIN_MS);
    assert_int_equal(qpeer_addr_parse(&fake_set[0], "10.1.2.3:0"), 0);
    fake_n = 1;
    qpeer__netwatch_set_source(nw, fake_source, NULL);
    assert_int_equal(qpeer_addr_parse(&fake_set[1], "10.1.2.4:0"), 0);
    fake_n = 2; /* a new interface address */
    changes_at = qpeer__peer_connect_net_changes(&preq);
    qpeer__netwatch_poll_soon(nw);
    step++;
    return;
  case 2: /* A new punch started and completed (on the direct path). */
    if (qpeer__peer_connect_net_changes(&preq) <= changes_at ||
        preq.punches < 2 || preq.upgrades < 2)
      return;
    assert_int_equal(preq.punches, 2);
    changes_at = qpeer__peer_connect_net_changes(&preq);
    injected_at = uv_now(&loop);
    inject_observed();
    step++;
    return;
  case 3: /* (b) NAT rebinding: a new observed address on a stable path.
           * Within a second of our own migration a report is taken as the
           * peer seeing the new path, so report new addresses until the
           * dialer acts. */
    if (qpeer__peer_connect_net_changes(&preq) <= changes_at) {
      if (injections < 200 && uv_now(&loop) - injected_at >= 100) {
        injected_at = uv_now(&loop);
        inject_observed();
      }
      return;
    }
    step++;
    return;
  case 4:
    if (preq.punches < 3 || preq.upgrades < 3)
      return;
    assert_int_equal(preq.punches, 3);
    step++;
    end_all();
    return;
  default:
    return;
  }
}

static void test_reprobe_network_changes(void **state) {
  qpeer_listen_options_t lo;
  qpeer_relay_options_t ro;
  qpeer_masque_options_t mo;
  qpeer_peer_listener_options_t o;
  struct sockaddr_storage pub;
  const struct sockaddr *binds[1];
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &wd, 30000);
  uv_timer_init(&loop, &step_timer);
  /* The relay. */
  endpoint_init(&relay_ep);
  qpeer_listen_options_default(&lo);
  lo.alpn = h3_alpn;
  lo.nalpn = 1;
  assert_int_equal(qpeer_endpoint_listen(&relay_ep, &lo, on_relay_conn), 0);
  qpeer_endpoint_get_local_addr(&relay_ep, &relay_addr);
  qpeer_relay_options_default(&ro);
  qpeer_addr_parse(&pub, "127.0.0.1:0");
  binds[0] = (const struct sockaddr *)&pub;
  ro.bind_addrs = binds;
  ro.nbind_addrs = 1;
  ro.allow_anonymous = 1;
  ro.allow_targets = QPEER_RELAY_ALLOW_LOOPBACK;
  assert_int_equal(qpeer_relay_init(&loop, &relay, &ro), 0);
  /* The camera: a listener bound at the relay. */
  endpoint_init(&cam_ep);
  qpeer_endpoint_get_local_addr(&cam_ep, &cam_addr);
  endpoint_init(&phone_ep);
  qpeer_masque_options_default(&mo);
  mo.proxy = (const struct sockaddr *)&relay_addr;
  mo.auth = QPEER_AUTH_PEER_ID;
  mo.peer_id =
      qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&relay_ep));
  qpeer_peer_listener_options_default(&o);
  o.alpn = app_alpn;
  o.nalpn = 1;
  o.allow = qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&phone_ep));
  o.nallow = 1;
  o.relay = &mo;
  o.flags = QPEER_PEER_ALLOW_LOOPBACK;
  o.gather_deadline_ms = 300;
  assert_int_equal(qpeer_peer_listener_init(&cam_ep, &lst, &o), 0);
  assert_int_equal(qpeer_peer_listener_start(&lst, on_listener), 0);
  uv_timer_start(&step_timer, on_step, 1, 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(step, 5);
  assert_int_equal(connected, 1);
  assert_int_equal(preq.punches, 3);
  print_message("observed-address reports until the dialer acted: %d\n",
                injections);
  /* 2 conns, listener, relay, 3 endpoints. */
  assert_int_equal(closes, 2 + 1 + 1 + 3);
  qpt_loop_teardown(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reprobe_network_changes),
  };
  return cmocka_run_group_tests_name("reprobe", tests, NULL, NULL);
}
