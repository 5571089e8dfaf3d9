/* SPDX-License-Identifier: MIT */
/*
 * The peer listener on loopback: (a) admission: a peer in the allowlist
 * and one the callback allows get in, one the callback refuses gets
 * QPEER_EREFUSED and the listener reports QPEER_ENOTALLOWED with its peer
 * ID, and one over max_conns is refused with UV_ENOSPC; (b) candidate
 * refresh: an added and a removed address reach a connected client as
 * ADD_ADDRESS / REMOVE_ADDRESS and its remote candidate set follows; an
 * injected interface-set change re-gathers; tickets; (c) the relay
 * binding is kept up across a relay restart (re-bound, new address in
 * the ticket) and a dialer connects by ticket before and after.
 */
#include <string.h>

#include "core/addr.h"
#include "peer/listen.h"
#include "qpeer.h"
#include "util.h"

static const char *h3_alpn[] = {QPEER_MASQUE_ALPN};
static const char *app_alpn[] = {"qpeer-test"};
static uv_loop_t loop;
static uv_timer_t wd, step_timer;
static qpeer_endpoint_t cam_ep;
static qpeer_peer_listener_t lst;
static int closes, step, ev_count[8], last_status[8];
static qpeer_peer_id_t last_refused;
static struct sockaddr_storage cam_addr;

static void on_close(qpeer_handle_t *h) {
  (void)h;
  closes++;
}

static void endpoint_init(qpeer_endpoint_t *ep, qpeer_identity_t *id) {
  qpeer_endpoint_options_t eo;
  struct sockaddr_storage b4;
  assert_int_equal(qpeer_addr_parse(&b4, "127.0.0.1:0"), 0);
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&b4;
  eo.retry_mode = QPEER_RETRY_NEVER;
  eo.max_datagram_frame_size = 1500;
  eo.identity = id;
  assert_int_equal(qpeer_endpoint_init(&loop, ep, &eo), 0);
}

static const qpeer_peer_id_t *peer_id_of(qpeer_endpoint_t *ep) {
  return qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(ep));
}

static void loop_setup(void) {
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &wd, 30000);
  uv_timer_init(&loop, &step_timer);
  closes = step = 0;
  memset(ev_count, 0, sizeof(ev_count));
  memset(last_status, 0, sizeof(last_status));
}

/* A client: an endpoint with its own identity, one connection. */
typedef struct client {
  qpeer_endpoint_t ep;
  qpeer_conn_t conn;
  qpeer_connect_t req;
  int done;   /* connect callback ran */
  int status; /* its status */
} client;

static void on_client(qpeer_connect_t *r, int status) {
  client *c = r->data;
  c->done = 1;
  c->status = status;
}

static void client_connect(client *c) {
  qpeer_connect_options_t co;
  memset(c, 0, sizeof(*c));
  endpoint_init(&c->ep, NULL);
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)&cam_addr;
  co.alpn = app_alpn;
  co.nalpn = 1;
  co.auth = QPEER_AUTH_PEER_ID;
  co.peer_id = peer_id_of(&cam_ep);
  c->req.data = c;
  assert_int_equal(qpeer_connect(&c->req, &c->ep, &c->conn, &co, on_client), 0);
}

static void client_close(client *c) {
  qpeer_close((qpeer_handle_t *)&c->conn, on_close);
  qpeer_close((qpeer_handle_t *)&c->ep, on_close);
}

/* ---- (a) admission --------------------------------------------------------
 */

static client ca, cb_, cc, cd;
static qpeer_conn_t acc[4];
static int naccepted, allow_calls;

static int allow_hook(qpeer_peer_listener_t *l, const qpeer_peer_id_t *id) {
  assert_ptr_equal(l, &lst);
  allow_calls++;
  /* The allowlist (A) is never asked about; B and D are allowed. */
  assert_false(qpeer_peer_id_equal(id, peer_id_of(&ca.ep)));
  return qpeer_peer_id_equal(id, peer_id_of(&cb_.ep)) ||
         qpeer_peer_id_equal(id, peer_id_of(&cd.ep));
}

static void on_listener(qpeer_peer_listener_t *l, int status,
                        const qpeer_peer_listener_info_t *info) {
  assert_ptr_equal(l, &lst);
  assert_true(info->event >= 1 && info->event <= 6);
  ev_count[info->event]++;
  last_status[info->event] = status;
  switch (info->event) {
  case QPEER_LISTENER_EV_CONNECTION:
    assert_int_equal(status, 0);
    assert_true(naccepted < 4);
    assert_int_equal(qpeer_peer_listener_accept(l, &acc[naccepted]), 0);
    naccepted++;
    break;
  case QPEER_LISTENER_EV_REFUSED:
    assert_non_null(info->peer_id);
    last_refused = *info->peer_id;
    break;
  default:
    break;
  }
}

static void listener_opts(qpeer_peer_listener_options_t *o) {
  qpeer_peer_listener_options_default(o);
  o->alpn = app_alpn;
  o->nalpn = 1;
  o->flags = QPEER_PEER_ALLOW_LOOPBACK;
  o->gather_deadline_ms = 300;
}

static void admission_end(void) {
  int i;
  uv_close((uv_handle_t *)&step_timer, NULL);
  for (i = 0; i < naccepted; i++)
    qpeer_close((qpeer_handle_t *)&acc[i], on_close);
  client_close(&ca);
  client_close(&cb_);
  client_close(&cc);
  client_close(&cd);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&lst, on_close), 0);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&lst, on_close), UV_EALREADY);
  qpeer_close((qpeer_handle_t *)&cam_ep, on_close);
}

/* Steps: each waits for a condition, checked every 5 ms. */
static void admission_step(uv_timer_t *t) {
  qpeer_peer_listener_stats_t st;
  (void)t;
  switch (step) {
  case 0: /* A (allowlist) and B (callback) connect. */
    if (!ca.done || !cb_.done || naccepted < 2)
      return;
    assert_int_equal(ca.status, 0);
    assert_int_equal(cb_.status, 0);
    client_connect(&cc);
    step++;
    return;
  case 1: /* C: refused by the callback. */
    if (!cc.done || ev_count[QPEER_LISTENER_EV_REFUSED] < 1)
      return;
    assert_int_equal(cc.status, QPEER_EREFUSED);
    assert_int_equal(last_status[QPEER_LISTENER_EV_REFUSED], QPEER_ENOTALLOWED);
    assert_true(qpeer_peer_id_equal(&last_refused, peer_id_of(&cc.ep)));
    client_connect(&cd);
    step++;
    return;
  case 2: /* D: allowed, but max_conns (2) are tracked. */
    if (!cd.done || ev_count[QPEER_LISTENER_EV_REFUSED] < 2)
      return;
    assert_int_equal(cd.status, QPEER_EREFUSED);
    assert_int_equal(last_status[QPEER_LISTENER_EV_REFUSED], UV_ENOSPC);
    assert_true(qpeer_peer_id_equal(&last_refused, peer_id_of(&cd.ep)));
    assert_int_equal(qpeer_peer_listener_get_stats(&lst, &st), 0);
    assert_int_equal(st.accepted, 2);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.conns, 2);
    step++;
    admission_end();
    return;
  default:
    return;
  }
}

static void test_listen_admission(void **state) {
  qpeer_peer_listener_options_t o;
  qpeer_peer_id_t allow[1];
  (void)state;
  loop_setup();
  naccepted = allow_calls = 0;
  endpoint_init(&cam_ep, NULL);
  qpeer_endpoint_get_local_addr(&cam_ep, &cam_addr);
  /* Bad options are named. */
  listener_opts(&o);
  o.nalpn = 0;
  assert_int_equal(qpeer_peer_listener_init(&cam_ep, &lst, &o), UV_EINVAL);
  listener_opts(&o);
  o.max_conns = QPEER_PEER_LISTENER_MAX_CONNS + 1;
  assert_int_equal(qpeer_peer_listener_init(&cam_ep, &lst, &o), UV_EINVAL);
  listener_opts(&o);
  o.nallow = 1; /* without the array */
  assert_int_equal(qpeer_peer_listener_init(&cam_ep, &lst, &o), UV_EINVAL);
  assert_int_equal(qpeer_peer_listener_start(NULL, on_listener), UV_EINVAL);
  /* Clients A and B exist first so their peer IDs are known. */
  client_connect(&ca);
  client_connect(&cb_);
  listener_opts(&o);
  allow[0] = *peer_id_of(&ca.ep);
  o.allow = allow;
  o.nallow = 1;
  o.allow_cb = allow_hook;
  o.max_conns = 2;
  assert_int_equal(qpeer_peer_listener_init(&cam_ep, &lst, &o), 0);
  memset(allow, 0, sizeof(allow)); /* copied */
  assert_int_equal(qpeer_peer_listener_start(&lst, on_listener), 0);
  assert_int_equal(qpeer_peer_listener_start(&lst, on_listener), UV_EALREADY);
  uv_timer_start(&step_timer, admission_step, 5, 5);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(step, 3);
  assert_int_equal(naccepted, 2);
  assert_int_equal(ev_count[QPEER_LISTENER_EV_CONNECTION], 2);
  assert_int_equal(ev_count[QPEER_LISTENER_EV_REFUSED], 2);
  /* B, C and D were asked (A is in the allowlist). */
  assert_int_equal(allow_calls, 3);
  /* 2 accepted + 4 clients x 2 + listener + endpoint. */
  assert_int_equal(closes, 2 + 8 + 1 + 1);
  qpt_loop_teardown(&loop);
}

/* ---- (b) candidate refresh ------------------------------------------------
 */

static client cr;
static struct sockaddr_storage extra;
static size_t fake_n;
static struct sockaddr_storage fake_set[2];

static int fake_source(qpeer__netwatch *nw, struct sockaddr_storage *out,
                       size_t max, size_t *pn) {
  size_t i;
  (void)nw;
  for (i = 0; i < fake_n && i < max; i++)
    out[i] = fake_set[i];
  *pn = i;
  return 0;
}

/* Whether |a| is among the client's remote candidates. */
static int client_has(const struct sockaddr_storage *a) {
  qpeer_candidate_t c[QPEER_GATHER_MAX_CANDS];
  size_t n, i;
  assert_int_equal(
      qpeer_conn_get_remote_candidates(&cr.conn, c, QPEER_GATHER_MAX_CANDS, &n),
      0);
  for (i = 0; i < n && i < QPEER_GATHER_MAX_CANDS; i++)
    if (qpeer__addr_equal((struct sockaddr *)&c[i].addr,
                          (const struct sockaddr *)a))
      return 1;
  return 0;
}

static void refresh_end(void) {
  uv_close((uv_handle_t *)&step_timer, NULL);
  qpeer_close((qpeer_handle_t *)&acc[0], on_close);
  client_close(&cr);
  qpeer_close((qpeer_handle_t *)&lst, on_close);
  qpeer_close((qpeer_handle_t *)&cam_ep, on_close);
}

static uint64_t gathers_at;

static void refresh_step(uv_timer_t *t) {
  qpeer_peer_listener_stats_t st;
  qpeer_ticket_t tk;
  qpeer__netwatch *nw;
  size_t i;
  (void)t;
  assert_int_equal(qpeer_peer_listener_get_stats(&lst, &st), 0);
  switch (step) {
  case 0: /* Connected; the first advertisement arrived. */
    if (!cr.done || naccepted < 1 || !client_has(&cam_addr))
      return;
    assert_int_equal(cr.status, 0);
    assert_true(st.adds_sent >= 1);
    /* A ticket: the peer ID and the host candidate. */
    assert_int_equal(qpeer_peer_listener_get_ticket(&lst, &tk), 0);
    assert_true(qpeer_peer_id_equal(&tk.peer_id, peer_id_of(&cam_ep)));
    for (i = 0; i < tk.naddrs; i++)
      if (qpeer__addr_equal((struct sockaddr *)&tk.addrs[i].addr,
                            (struct sockaddr *)&cam_addr))
        break;
    assert_true(i < tk.naddrs);
    assert_int_equal(tk.addrs[i].type, QPEER_TICKET_ADDR_HOST);
    /* A new address (a manual port forward): ADD_ADDRESS. */
    assert_int_equal(qpeer_addr_parse(&extra, "192.0.2.44:5555"), 0);
    assert_int_equal(qpeer_peer_listener_add_address(&lst,
                                                     (struct sockaddr *)&extra,
                                                     QPEER_CANDIDATE_SRFLX),
                     0);
    assert_int_equal(qpeer_peer_listener_add_address(&lst,
                                                     (struct sockaddr *)&extra,
                                                     QPEER_CANDIDATE_SRFLX),
                     UV_EEXIST);
    assert_int_equal(qpeer_peer_listener_add_address(&lst,
                                                     (struct sockaddr *)&extra,
                                                     QPEER_CANDIDATE_PRFLX),
                     UV_EINVAL);
    step++;
    return;
  case 1:
    if (!client_has(&extra))
      return;
    assert_true(ev_count[QPEER_LISTENER_EV_CANDIDATES] >= 2);
    assert_true(st.adds_sent >= 2);
    assert_int_equal(
        qpeer_peer_listener_remove_address(&lst, (struct sockaddr *)&extra), 0);
    assert_int_equal(
        qpeer_peer_listener_remove_address(&lst, (struct sockaddr *)&extra),
        UV_ENOENT);
    step++;
    return;
  case 2: /* REMOVE_ADDRESS: the client's set lost it, kept the rest. */
    if (client_has(&extra))
      return;
    assert_true(client_has(&cam_addr));
    assert_int_equal(st.removes_sent, 1);
    /* An interface-set change (injected): a network event, a gathering. */
    nw = qpeer__peer_listener_netwatch(&lst);
    assert_non_null(nw);
    assert_int_equal(qpeer_addr_parse(&fake_set[0], "10.9.8.7:0"), 0);
    fake_n = 1;
    qpeer__netwatch_set_source(nw, fake_source, NULL);
    assert_int_equal(qpeer_addr_parse(&fake_set[1], "10.9.8.8:0"), 0);
    fake_n = 2;
    gathers_at = st.gathers;
    qpeer__netwatch_poll_soon(nw);
    step++;
    return;
  case 3:
    if (ev_count[QPEER_LISTENER_EV_NETWORK] < 1 || st.gathers <= gathers_at)
      return;
    assert_int_equal(st.network_changes, 1);
    step++;
    refresh_end();
    return;
  default:
    return;
  }
}

static void test_listen_refresh(void **state) {
  qpeer_peer_listener_options_t o;
  (void)state;
  loop_setup();
  naccepted = 0;
  fake_n = 0;
  endpoint_init(&cam_ep, NULL);
  qpeer_endpoint_get_local_addr(&cam_ep, &cam_addr);
  client_connect(&cr);
  listener_opts(&o);
  o.allow = peer_id_of(&cr.ep);
  o.nallow = 1;
  assert_int_equal(qpeer_peer_listener_init(&cam_ep, &lst, &o), 0);
  assert_int_equal(qpeer_peer_listener_refresh(&lst), UV_ENOTCONN);
  assert_int_equal(qpeer_peer_listener_start(&lst, on_listener), 0);
  uv_timer_start(&step_timer, refresh_step, 5, 5);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(step, 4);
  assert_int_equal(closes, 1 + 2 + 1 + 1);
  qpt_loop_teardown(&loop);
}

/* ---- (c) the relay binding, kept up ---------------------------------------
 */

static qpeer_endpoint_t relay_ep, phone_ep;
static qpeer_relay_t relay;
static qpeer_identity_t *relay_id;
static struct sockaddr_storage relay_addr, bound[2];
static qpeer_conn_t phone_conn[2];
static qpeer_peer_connect_t preq[2];
static int relay_up, restart, relay_closes, phone_done[2], phone_status[2];
static uint16_t relay_port;

static void on_relay_conn(qpeer_endpoint_t *ep, int status) {
  assert_int_equal(status, 0);
  while (qpeer_relay_accept(&relay, ep) == 0)
    ;
}

static void relay_start(uint16_t port) {
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_relay_options_t ro;
  struct sockaddr_storage b4, pub;
  const struct sockaddr *binds[1];
  char text[64];
  snprintf(text, sizeof(text), "127.0.0.1:%u", (unsigned)port);
  assert_int_equal(qpeer_addr_parse(&b4, text), 0);
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&b4;
  eo.retry_mode = QPEER_RETRY_NEVER;
  eo.max_datagram_frame_size = 1500;
  eo.identity = relay_id;
  assert_int_equal(qpeer_endpoint_init(&loop, &relay_ep, &eo), 0);
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
  relay_up = 1;
}

static void on_relay_closed(qpeer_handle_t *h) {
  (void)h;
  if (++relay_closes % 2 == 0 && restart) {
    restart = 0;
    relay_start(relay_port);
  }
}

static void relay_stop(void) {
  if (!relay_up)
    return;
  relay_up = 0;
  qpeer_relay_close(&relay, on_relay_closed);
  qpeer_close((qpeer_handle_t *)&relay_ep, on_relay_closed);
}

static void on_phone(qpeer_peer_connect_t *r, int status) {
  int i = (int)(r - preq);
  phone_done[i] = 1;
  phone_status[i] = status;
}

/* Dial the listener by a fresh ticket, through the relay only. */
static void phone_dial(int i) {
  qpeer_ticket_t tk;
  qpeer_peer_connect_options_t o;
  assert_int_equal(qpeer_peer_listener_get_ticket(&lst, &tk), 0);
  /* The relay's public address comes first, with the pinned relay. */
  assert_int_equal(tk.addrs[0].type, QPEER_TICKET_ADDR_RELAY);
  assert_true(qpeer__addr_equal((struct sockaddr *)&tk.addrs[0].addr,
                                (struct sockaddr *)&bound[i]));
  assert_int_equal(tk.nrelays, 1);
  assert_int_equal(tk.relays[0].auth, QPEER_TICKET_AUTH_PIN);
  assert_true(qpeer_peer_id_equal(&tk.relays[0].pin,
                                  qpeer_identity_get_peer_id(relay_id)));
  qpeer_peer_connect_options_default(&o);
  o.alpn = app_alpn;
  o.nalpn = 1;
  o.policy = QPEER_RELAY_ONLY;
  o.flags = QPEER_PEER_ALLOW_LOOPBACK;
  assert_int_equal(qpeer_peer_connect(&preq[i], &phone_ep, &phone_conn[i], &tk,
                                      &o, on_phone),
                   0);
}

static int nbound;

static void on_relay_listener(qpeer_peer_listener_t *l, int status,
                              const qpeer_peer_listener_info_t *info) {
  if (info->event == QPEER_LISTENER_EV_RELAY) {
    ev_count[QPEER_LISTENER_EV_RELAY]++;
    if (status != 0) {
      /* Lost while the relay restarts; the binding is retried. */
      assert_int_equal(nbound, 1);
      last_status[QPEER_LISTENER_EV_RELAY] = status;
      return;
    }
    assert_non_null(info->relay);
    assert_true(nbound < 2);
    qpeer__addr_normalize(&bound[nbound], info->relay);
    nbound++;
    return;
  }
  on_listener(l, status, info);
}

static void relay_test_end(void) {
  int i;
  uv_close((uv_handle_t *)&step_timer, NULL);
  for (i = 0; i < 2; i++)
    qpeer_close((qpeer_handle_t *)&phone_conn[i], on_close);
  for (i = 0; i < naccepted; i++)
    qpeer_close((qpeer_handle_t *)&acc[i], on_close);
  qpeer_close((qpeer_handle_t *)&lst, on_close);
  relay_stop();
  qpeer_close((qpeer_handle_t *)&phone_ep, on_close);
  qpeer_close((qpeer_handle_t *)&cam_ep, on_close);
}

static void relay_step(uv_timer_t *t) {
  qpeer_peer_listener_stats_t st;
  (void)t;
  assert_int_equal(qpeer_peer_listener_get_stats(&lst, &st), 0);
  switch (step) {
  case 0: /* Bound: dial by ticket through the relay. */
    if (nbound < 1)
      return;
    phone_dial(0);
    step++;
    return;
  case 1:
    if (!phone_done[0] || naccepted < 1)
      return;
    assert_int_equal(phone_status[0], 0);
    assert_true(preq[0].via_relay);
    /* Restart the relay on its port: the listener binds again. */
    relay_port = qpeer__addr_port((struct sockaddr *)&relay_addr);
    restart = 1;
    relay_stop();
    step++;
    return;
  case 2:
    if (nbound < 2)
      return;
    assert_true(last_status[QPEER_LISTENER_EV_RELAY] < 0);
    assert_int_equal(st.relay_binds, 2);
    phone_dial(1);
    step++;
    return;
  case 3:
    if (!phone_done[1] || naccepted < 2)
      return;
    assert_int_equal(phone_status[1], 0);
    assert_true(preq[1].via_relay);
    step++;
    relay_test_end();
    return;
  default:
    return;
  }
}

static void test_listen_relay(void **state) {
  qpeer_peer_listener_options_t o;
  qpeer_masque_options_t mo;
  (void)state;
  loop_setup();
  naccepted = nbound = relay_closes = restart = 0;
  memset(phone_done, 0, sizeof(phone_done));
  if (!relay_id)
    assert_int_equal(qpeer_identity_generate(&relay_id), 0);
  relay_start(0);
  endpoint_init(&cam_ep, NULL);
  endpoint_init(&phone_ep, NULL);
  qpeer_masque_options_default(&mo);
  mo.proxy = (const struct sockaddr *)&relay_addr;
  mo.auth = QPEER_AUTH_PEER_ID;
  mo.peer_id = qpeer_identity_get_peer_id(relay_id);
  mo.retry_min_ms = 50;
  mo.retry_max_ms = 400;
  listener_opts(&o);
  o.allow = peer_id_of(&phone_ep);
  o.nallow = 1;
  o.relay = &mo;
  assert_int_equal(qpeer_peer_listener_init(&cam_ep, &lst, &o), 0);
  memset(&mo, 0, sizeof(mo)); /* copied */
  assert_int_equal(qpeer_peer_listener_start(&lst, on_relay_listener), 0);
  uv_timer_start(&step_timer, relay_step, 5, 5);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(step, 4);
  assert_int_equal(nbound, 2);
  assert_false(qpeer__addr_equal((struct sockaddr *)&bound[0],
                                 (struct sockaddr *)&bound[1]));
  /* 2 phone conns + 2 accepted + listener + 2 endpoints. */
  assert_int_equal(closes, 2 + 2 + 1 + 2);
  assert_int_equal(relay_closes, 4);
  qpt_loop_teardown(&loop);
  qpeer_identity_unref(relay_id);
  relay_id = NULL;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_listen_admission),
      cmocka_unit_test(test_listen_refresh),
      cmocka_unit_test(test_listen_relay),
  };
  return cmocka_run_group_tests_name("listen", tests, NULL, NULL);
}
