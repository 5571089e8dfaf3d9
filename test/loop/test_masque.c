/* SPDX-License-Identifier: MIT */
/*
 * MASQUE on loopback: a camera binds at a relay and a plain qpeer client
 * moves 64 MiB (SHA-256 checked) to it through the bound public address;
 * CONNECT-UDP to a UDP echo target and a QUIC connection through a
 * tunnel; a denied target (403 + Proxy-Status); access control refusing
 * (401, 403); HTTP Datagrams as QUIC DATAGRAM frames when both sides
 * announce H3_DATAGRAM and as capsules when one does not; and a relay
 * restart after which the binding comes back and is reachable again.
 */
#include <gnutls/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "h3/h3conn.h"
#include "h3/tunnel.h"
#include "qpeer.h"
#include "util.h"

#define CHUNK (256 * 1024)
#define MAX_OUTSTANDING 16
#define QPEER_TEST_V4HDR 7 /* uncompressed-context header for IPv4 */
#define TEST_MIN(a, b) ((a) < (b) ? (a) : (b))

static const char *h3_alpn[] = {QPEER_MASQUE_ALPN};
static const char *app_alpn[] = {"qpeer-test"};
static uv_loop_t loop;
static uv_timer_t wd;

/* ---- the relay side ----------------------------------------------------- */

static qpeer_endpoint_t relay_ep;
static qpeer_identity_t *relay_id; /* kept across restarts */
static qpeer_relay_t relay;
static struct sockaddr_storage relay_addr; /* where clients reach it */
static int relay_up;
static int relay_closes;
static unsigned relay_allow;       /* QPEER_RELAY_ALLOW_* */
static int access_mode;            /* 0 open, 1 token required */
static uint32_t relay_max_tunnels; /* per client; 0: default */
static uint64_t relay_idle_ms;     /* 0: default */
static uint64_t hook_in, hook_out; /* packets seen by the quota hook */
static int clients_gone;           /* on_client_gone calls */
static int access_calls;
static qpeer_relay_request_t last_req; /* copy of scalar fields */
static char last_token[64];
static int last_had_client_id;
static qpeer_relay_stats_t relay_final; /* stats at close */

static void on_relay_access(qpeer_relay_t *r, const qpeer_relay_request_t *req,
                            qpeer_relay_verdict_t *v) {
  (void)r;
  access_calls++;
  last_req = *req;
  last_had_client_id = req->client_id != NULL;
  last_token[0] = '\0';
  if (req->bearer_token)
    snprintf(last_token, sizeof(last_token), "%s", req->bearer_token);
  if (access_mode == 0)
    return;
  if (!req->bearer_token) {
    v->status = 401;
    v->details = "bearer token required";
  } else if (strcmp(req->bearer_token, "good-token") != 0) {
    v->status = 403;
    v->details = "token not valid for this relay";
  } else {
    v->client_key = "tester";
  }
}

static int on_relay_packet(qpeer_relay_t *r, qpeer_relay_client_t *c,
                           int to_client, size_t bytes) {
  (void)r;
  assert_non_null(c->key);
  assert_true(bytes > 0);
  if (to_client)
    hook_in++;
  else
    hook_out++;
  return 0;
}

static void on_relay_client_gone(qpeer_relay_t *r, qpeer_relay_client_t *c) {
  (void)r;
  assert_int_equal(c->tunnels + c->binds, 0);
  clients_gone++;
}

static void on_relay_conn(qpeer_endpoint_t *ep, int status) {
  assert_int_equal(status, 0);
  while (qpeer_relay_accept(&relay, ep) == 0)
    ;
}

static void relay_start(uint16_t port) {
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_relay_options_t ro;
  struct sockaddr_storage bind4, pub;
  const struct sockaddr *binds[1];
  char text[64];
  snprintf(text, sizeof(text), "127.0.0.1:%u", (unsigned)port);
  assert_int_equal(qpeer_addr_parse(&bind4, text), 0);
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&bind4;
  eo.retry_mode = QPEER_RETRY_NEVER;
  eo.max_datagram_frame_size = 1500;
  if (!relay_id)
    assert_int_equal(qpeer_identity_generate(&relay_id), 0);
  eo.identity = relay_id;
  assert_int_equal(qpeer_endpoint_init(&loop, &relay_ep, &eo), 0);
  qpeer_listen_options_default(&lo);
  lo.alpn = h3_alpn;
  lo.nalpn = 1;
  assert_int_equal(qpeer_endpoint_listen(&relay_ep, &lo, on_relay_conn), 0);
  assert_int_equal(qpeer_endpoint_get_local_addr(&relay_ep, &relay_addr), 0);
  qpeer_relay_options_default(&ro);
  assert_int_equal(qpeer_addr_parse(&pub, "127.0.0.1:0"), 0);
  binds[0] = (const struct sockaddr *)&pub;
  ro.bind_addrs = binds;
  ro.nbind_addrs = 1;
  ro.access_cb = on_relay_access;
  ro.allow_targets = relay_allow;
  if (relay_max_tunnels)
    ro.max_tunnels_per_client = relay_max_tunnels;
  if (relay_idle_ms)
    ro.idle_timeout_ms = relay_idle_ms;
  ro.on_packet = on_relay_packet;
  ro.on_client_gone = on_relay_client_gone;
  assert_int_equal(qpeer_relay_init(&loop, &relay, &ro), 0);
  relay_up = 1;
}

static uint16_t restart_port; /* restart the relay on this port, or 0 */
static void relay_start(uint16_t port);

static void on_relay_part_closed(qpeer_handle_t *h) {
  (void)h;
  if (++relay_closes % 2 == 0 && restart_port) {
    uint16_t port = restart_port;
    restart_port = 0;
    relay_start(port);
  }
}

static void relay_stop(void) {
  if (!relay_up)
    return;
  relay_up = 0;
  qpeer_relay_get_stats(&relay, &relay_final);
  assert_int_equal(qpeer_relay_close(&relay, on_relay_part_closed), 0);
  assert_int_equal(
      qpeer_close((qpeer_handle_t *)&relay_ep, on_relay_part_closed), 0);
}

/* ---- the client side ------------------------------------------------------
 */

static qpeer_endpoint_t cam_ep;   /* camera: binds, listens through it */
static qpeer_endpoint_t phone_ep; /* phone: a plain qpeer client */
static int closes;

static void on_close(qpeer_handle_t *h) {
  (void)h;
  closes++;
}

static void endpoint_init(qpeer_endpoint_t *ep) {
  qpeer_endpoint_options_t eo;
  struct sockaddr_storage bind4;
  assert_int_equal(qpeer_addr_parse(&bind4, "127.0.0.1:0"), 0);
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&bind4;
  eo.retry_mode = QPEER_RETRY_NEVER;
  eo.max_datagram_frame_size = 1500;
  assert_int_equal(qpeer_endpoint_init(&loop, ep, &eo), 0);
}

static void masque_opts(qpeer_masque_options_t *o) {
  qpeer_masque_options_default(o);
  o->proxy = (const struct sockaddr *)&relay_addr;
  o->auth = QPEER_AUTH_PEER_ID;
  o->peer_id =
      qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&relay_ep));
  o->retry_min_ms = 50;
  o->retry_max_ms = 400;
  o->request_timeout_ms = 3000;
}

static void loop_setup(void) {
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &wd, 240000);
  closes = relay_closes = access_calls = clients_gone = 0;
  hook_in = hook_out = 0;
  relay_idle_ms = 0;
  access_mode = 0;
  relay_allow = 0;
  qpeer__h3_test_no_h3_datagram = 0;
}

/* ---- a stream transfer: phone -> camera
 * -------------------------------------- */

/* Deterministic pseudo-random bytes. */
static void fill(uint8_t *p, size_t n, uint64_t *state) {
  size_t i;
  for (i = 0; i < n; i++) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    p[i] = (uint8_t)x;
  }
}

typedef struct xfer {
  qpeer_conn_t pconn;                /* phone's connection */
  qpeer_connect_t creq;              /* its connect request */
  qpeer_stream_t ps;                 /* phone's stream */
  qpeer_write_t w[MAX_OUTSTANDING];  /* write requests */
  uint8_t *bufs[MAX_OUTSTANDING];    /* their buffers */
  int busy[MAX_OUTSTANDING];         /* request in flight */
  qpeer_shutdown_t sh;               /* FIN */
  int shut;                          /* FIN acknowledged */
  uint64_t total, queued, received;  /* byte counts */
  uint64_t rng;                      /* data generator */
  gnutls_hash_hd_t tx_hash, rx_hash; /* SHA-256 at both ends */
  qpeer_conn_t cconn;                /* camera's accepted connection */
  qpeer_stream_t cs;                 /* camera's stream */
  int accepted;                      /* camera accepted the connection */
  int done;                          /* camera saw EOF */
  qpeer_path_t cam_path;             /* camera's path for the connection */
  void (*on_done)(struct xfer *x);   /* called once both ends finished */
} xfer;

static xfer *cur_xfer;

static void xfer_pump(xfer *x);

static void xfer_maybe_done(xfer *x) {
  if (x->done && x->shut && x->on_done) {
    void (*cb)(xfer *) = x->on_done;
    x->on_done = NULL;
    cb(x);
  }
}

static void on_xfer_write(qpeer_write_t *req, int status) {
  xfer *x = req->data;
  assert_int_equal(status, 0);
  x->busy[req - x->w] = 0;
  xfer_pump(x);
}

static void on_xfer_shut(qpeer_shutdown_t *req, int status) {
  xfer *x = req->data;
  assert_int_equal(status, 0);
  x->shut = 1;
  xfer_maybe_done(x);
}

static void xfer_pump(xfer *x) {
  size_t i;
  for (i = 0; i < MAX_OUTSTANDING && x->queued < x->total; i++) {
    size_t n;
    uv_buf_t b;
    if (x->busy[i])
      continue;
    n = (size_t)TEST_MIN((uint64_t)CHUNK, x->total - x->queued);
    fill(x->bufs[i], n, &x->rng);
    gnutls_hash(x->tx_hash, x->bufs[i], n);
    b = uv_buf_init((char *)x->bufs[i], (unsigned)n);
    x->w[i].data = x;
    assert_int_equal(qpeer_stream_write(&x->w[i], &x->ps, &b, 1, on_xfer_write),
                     0);
    x->busy[i] = 1;
    x->queued += n;
  }
  if (x->queued == x->total && !x->sh.data) {
    x->sh.data = x;
    assert_int_equal(qpeer_stream_shutdown(&x->sh, &x->ps, on_xfer_shut), 0);
  }
}

static void cam_read(qpeer_stream_t *s, ssize_t n, const uint8_t *data) {
  xfer *x = s->data;
  if (n == UV_EOF) {
    uint8_t a[32], b[32];
    gnutls_hash_output(x->tx_hash, a);
    gnutls_hash_output(x->rx_hash, b);
    assert_true(x->received == x->total);
    assert_memory_equal(a, b, 32);
    x->done = 1;
    xfer_maybe_done(x);
    return;
  }
  assert_true(n > 0);
  gnutls_hash(x->rx_hash, data, (size_t)n);
  x->received += (uint64_t)n;
}

static void cam_on_stream(qpeer_conn_t *c, int status) {
  xfer *x = c->data;
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_conn_accept_stream(c, &x->cs), 0);
  x->cs.data = x;
  assert_int_equal(qpeer_stream_read_start(&x->cs, cam_read), 0);
}

static void on_cam_connection(qpeer_endpoint_t *ep, int status) {
  qpeer_conn_callbacks_t cbs;
  xfer *x = cur_xfer;
  assert_int_equal(status, 0);
  assert_non_null(x);
  assert_int_equal(qpeer_endpoint_accept(ep, &x->cconn), 0);
  x->cconn.data = x;
  x->accepted = 1;
  assert_int_equal(qpeer_conn_get_path(&x->cconn, &x->cam_path), 0);
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_stream = cam_on_stream;
  assert_int_equal(qpeer_conn_set_callbacks(&x->cconn, &cbs), 0);
}

static void on_phone_connect(qpeer_connect_t *req, int status) {
  xfer *x = req->data;
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_stream_open(&x->pconn, &x->ps, QPEER_STREAM_BIDI), 0);
  xfer_pump(x);
}

static void xfer_start(xfer *x, uint64_t total, const struct sockaddr *to,
                       const struct sockaddr *local, qpeer_endpoint_t *from) {
  qpeer_connect_options_t co;
  size_t i;
  memset(x, 0, sizeof(*x));
  x->total = total;
  x->rng = 0x9e3779b97f4a7c15ULL ^ total;
  for (i = 0; i < MAX_OUTSTANDING; i++)
    assert_non_null(x->bufs[i] = malloc(CHUNK));
  gnutls_hash_init(&x->tx_hash, GNUTLS_DIG_SHA256);
  gnutls_hash_init(&x->rx_hash, GNUTLS_DIG_SHA256);
  cur_xfer = x;
  qpeer_connect_options_default(&co);
  co.remote = to;
  co.local = local;
  co.alpn = app_alpn;
  co.nalpn = 1;
  co.peer_id = qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&cam_ep));
  x->creq.data = x;
  assert_int_equal(
      qpeer_connect(&x->creq, from, &x->pconn, &co, on_phone_connect), 0);
}

static void xfer_close(xfer *x) {
  size_t i;
  qpeer_close((qpeer_handle_t *)&x->ps, on_close);
  qpeer_close((qpeer_handle_t *)&x->pconn, on_close);
  if (x->accepted) {
    qpeer_close((qpeer_handle_t *)&x->cs, on_close);
    qpeer_close((qpeer_handle_t *)&x->cconn, on_close);
  }
  for (i = 0; i < MAX_OUTSTANDING; i++)
    free(x->bufs[i]);
  gnutls_hash_deinit(x->tx_hash, NULL);
  gnutls_hash_deinit(x->rx_hash, NULL);
}

static void cam_listen(void) {
  qpeer_listen_options_t lo;
  qpeer_listen_options_default(&lo);
  lo.alpn = app_alpn;
  lo.nalpn = 1;
  assert_int_equal(qpeer_endpoint_listen(&cam_ep, &lo, on_cam_connection), 0);
}

/* ---- bind + 64 MiB
 * ----------------------------------------------------------------- */

static qpeer_relay_bind_t rbind;
static int bound_events;
static struct sockaddr_storage bound_addr;
static xfer big;
static qpeer_masque_stats_t bind_final;
static qpeer_conn_stats_t outer_final;
static size_t outer_dgram_max;

static void big_done(xfer *x) {
  qpeer_conn_t *outer = qpeer__masque_client_conn((qpeer_handle_t *)&rbind);
  struct sockaddr_storage vif;
  assert_non_null(outer);
  assert_int_equal(qpeer_conn_get_stats(outer, &outer_final), 0);
  outer_dgram_max = qpeer_conn_get_max_datagram_size(outer);
  assert_int_equal(qpeer_relay_bind_get_stats(&rbind, &bind_final), 0);
  /* The camera's side of the inner connection runs on the virtual
   * interface: its local address is the relay's public address. */
  assert_int_equal(qpeer_relay_bind_get_local_addr(&rbind, &vif), 0);
  assert_true(qpeer__addr_equal((struct sockaddr *)&x->cam_path.local,
                                (struct sockaddr *)&vif));
  xfer_close(x);
  qpeer_relay_bind_close(&rbind, on_close);
  relay_stop();
  qpeer_close((qpeer_handle_t *)&cam_ep, on_close);
  qpeer_close((qpeer_handle_t *)&phone_ep, on_close);
}

static void on_bound_big(qpeer_relay_bind_t *b, int status,
                         const struct sockaddr_storage *addrs, size_t n) {
  (void)b;
  assert_int_equal(status, 0);
  assert_true(n >= 1);
  bound_events++;
  bound_addr = addrs[0];
  big.on_done = NULL;
  xfer_start(&big, 64ull << 20, (const struct sockaddr *)&addrs[0], NULL,
             &phone_ep);
  big.on_done = big_done;
}

static void test_masque_bind_64mib(void **state) {
  qpeer_masque_options_t o;
  (void)state;
  loop_setup();
  /* The peers are on loopback, which the default policy refuses as a
   * destination of bound traffic. */
  relay_allow = QPEER_RELAY_ALLOW_LOOPBACK;
  relay_start(0);
  endpoint_init(&cam_ep);
  endpoint_init(&phone_ep);
  cam_listen();
  masque_opts(&o);
  assert_int_equal(qpeer_relay_bind_init(&cam_ep, &rbind, &o), 0);
  bound_events = 0;
  assert_int_equal(qpeer_relay_bind_start(&rbind, on_bound_big), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(bound_events, 1);
  assert_true(big.done && big.shut);
  assert_int_equal(closes, 4 + 3);
  assert_int_equal(relay_closes, 2);
  print_message("bind: %llu pkts in, %llu out; QUIC datagrams tx %llu rx %llu; "
                "capsules tx %llu rx %llu; dropped %llu; proxy path "
                "datagram max %zu\n",
                (unsigned long long)bind_final.rx_packets,
                (unsigned long long)bind_final.tx_packets,
                (unsigned long long)bind_final.tx_quic_datagrams,
                (unsigned long long)bind_final.rx_quic_datagrams,
                (unsigned long long)bind_final.tx_capsules,
                (unsigned long long)bind_final.rx_capsules,
                (unsigned long long)bind_final.dropped, outer_dgram_max);
  assert_true(bind_final.rx_bytes > (64ull << 20));
  assert_true(relay_final.binds == 1);
  assert_true(relay_final.bytes_in > (64ull << 20));
  assert_true(relay_final.bytes_out > 0);
  /* The camera's packets (ACKs) always fit QUIC DATAGRAM frames, and the
   * connection counted each of them as a DATAGRAM frame on the wire. */
  assert_true(bind_final.tx_quic_datagrams > 1000);
  /* Datagrams still queued when the connection closed (or dropped by a
   * full queue under load) are neither sent nor relayed: allow a few. */
  assert_true(outer_final.datagrams_sent + outer_final.datagrams_dropped +
                  256 >=
              bind_final.tx_quic_datagrams);
  assert_true(outer_final.datagrams_received >= bind_final.rx_quic_datagrams);
  assert_true(bind_final.rx_quic_datagrams + bind_final.rx_capsules >=
              bind_final.rx_packets);
  if (outer_dgram_max >= 1200 + 2 + 1 + QPEER_TEST_V4HDR) {
    /* The proxy path grew past 1200 bytes (PMTUD): full-size inner
     * packets travel as QUIC DATAGRAM frames. */
    assert_true(bind_final.rx_quic_datagrams > bind_final.rx_packets / 2);
  } else {
    /* It did not (see doc/masque.md, "Outer MTU"): the inner packets of
     * 1200 bytes that QUIC requires any path to carry went as DATAGRAM
     * capsules instead, and nothing of that size was lost. */
    assert_true(bind_final.rx_capsules > 1000);
  }
  qpt_loop_teardown(&loop);
}

/* ---- CONNECT-UDP: echo target, QUIC through a tunnel
 * ------------------------------ */

static uv_udp_t echo;
static struct sockaddr_storage echo_addr;
static int echo_closed;

static void echo_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  static char buf[65536];
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
  echo_closed = 0;
}

static void on_echo_closed(uv_handle_t *h) {
  (void)h;
  echo_closed = 1;
}

#define ECHO_MSGS 20

static qpeer_tunnel_t tun;
static int tun_events, tun_status, echoes;
static qpeer_masque_stats_t tun_final;
static qpeer_conn_stats_t tun_outer;
static int tun_outer_valid;

static void tunnel_teardown(void) {
  qpeer_conn_t *outer = qpeer__masque_client_conn((qpeer_handle_t *)&tun);
  tun_outer_valid = outer && qpeer_conn_get_stats(outer, &tun_outer) == 0;
  assert_int_equal(qpeer_tunnel_get_stats(&tun, &tun_final), 0);
  assert_int_equal(qpeer_tunnel_close(&tun, on_close), 0);
  relay_stop();
  qpeer_close((qpeer_handle_t *)&cam_ep, on_close);
  if (!uv_is_closing((uv_handle_t *)&echo))
    uv_close((uv_handle_t *)&echo, on_echo_closed);
}

static void on_tun_recv(qpeer_tunnel_t *t, const uint8_t *data, size_t len) {
  size_t i;
  (void)t;
  assert_true(len >= 1);
  for (i = 0; i < len; i++)
    assert_int_equal(data[i], (uint8_t)(len + i));
  if (++echoes == ECHO_MSGS)
    tunnel_teardown();
}

static void on_tun_echo(qpeer_tunnel_t *t, int status) {
  struct sockaddr_storage local, remote;
  uint8_t buf[1100];
  int i;
  size_t j;
  tun_events++;
  tun_status = status;
  if (status != 0) {
    tunnel_teardown();
    return;
  }
  assert_int_equal(qpeer_tunnel_get_local_addr(t, &local), 0);
  assert_int_equal(qpeer_tunnel_get_remote_addr(t, &remote), 0);
  assert_true(qpeer__addr_equal((struct sockaddr *)&remote,
                                (struct sockaddr *)&echo_addr));
  assert_int_equal(qpeer_tunnel_recv_start(t, on_tun_recv), 0);
  for (i = 0; i < ECHO_MSGS; i++) {
    size_t len = 1 + (size_t)i * 53;
    for (j = 0; j < len; j++)
      buf[j] = (uint8_t)(len + j);
    assert_int_equal(qpeer_tunnel_send(t, buf, len), 0);
  }
}

/* Opens a tunnel from cam_ep to |host|:|port| with |token|. */
static void tunnel_open(const char *host, uint16_t port, const char *token,
                        qpeer_tunnel_cb cb) {
  qpeer_masque_options_t o;
  masque_opts(&o);
  o.target_host = host;
  o.target_port = port;
  o.bearer_token = token;
  assert_int_equal(qpeer_tunnel_init(&cam_ep, &tun, &o), 0);
  assert_int_equal(qpeer_tunnel_start(&tun, cb), 0);
}

/* Runs the echo exchange; |knob| is qpeer__h3_test_no_h3_datagram. */
static void run_echo(int knob) {
  qpeer_relay_stats_t rs;
  loop_setup();
  qpeer__h3_test_no_h3_datagram = knob;
  relay_allow = QPEER_RELAY_ALLOW_LOOPBACK;
  access_mode = 1;
  relay_start(0);
  endpoint_init(&cam_ep);
  echo_start();
  tun_events = echoes = 0;
  tunnel_open("127.0.0.1", qpeer__addr_port((struct sockaddr *)&echo_addr),
              "good-token", on_tun_echo);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(tun_events, 1);
  assert_int_equal(tun_status, 0);
  assert_int_equal(echoes, ECHO_MSGS);
  assert_int_equal(closes, 2);
  assert_true(echo_closed);
  /* The access hook saw the request and its token. */
  assert_int_equal(access_calls, 1);
  assert_int_equal(last_req.kind, QPEER_RELAY_CONNECT_UDP);
  assert_int_equal(last_req.target_port,
                   qpeer__addr_port((struct sockaddr *)&echo_addr));
  assert_string_equal(last_token, "good-token");
  assert_true(last_had_client_id);
  rs = relay_final;
  assert_int_equal(rs.tunnels, 1);
  assert_int_equal(rs.packets_out, ECHO_MSGS);
  assert_int_equal(rs.packets_in, ECHO_MSGS);
  assert_int_equal(hook_in, ECHO_MSGS);
  assert_int_equal(hook_out, ECHO_MSGS);
  assert_int_equal(clients_gone, 1);
  assert_int_equal(tun_final.tx_packets, ECHO_MSGS);
  assert_int_equal(tun_final.rx_packets, ECHO_MSGS);
  assert_int_equal(tun_final.http_status, 200);
  assert_true(tun_outer_valid);
  if (knob == 0) {
    /* Both announced H3_DATAGRAM: QUIC DATAGRAM frames only. */
    assert_int_equal(tun_final.peer_h3_datagram, 1);
    assert_int_equal(tun_final.tx_quic_datagrams, ECHO_MSGS);
    assert_int_equal(tun_final.rx_quic_datagrams, ECHO_MSGS);
    assert_int_equal(tun_final.tx_capsules + tun_final.rx_capsules, 0);
    assert_int_equal(rs.rx_quic_datagrams, ECHO_MSGS);
    assert_int_equal(rs.tx_quic_datagrams, ECHO_MSGS);
    assert_int_equal(rs.tx_capsules + rs.rx_capsules, 0);
    assert_true(tun_outer.datagrams_sent >= ECHO_MSGS);
    assert_true(tun_outer.datagrams_received >= ECHO_MSGS);
  } else {
    /* One side did not announce it: DATAGRAM capsules, no QUIC DATAGRAM
     * frame on the proxy connection at all. */
    assert_int_equal(tun_final.peer_h3_datagram, knob == 2 ? 0 : 1);
    assert_int_equal(tun_final.tx_quic_datagrams + tun_final.rx_quic_datagrams,
                     0);
    assert_int_equal(tun_final.tx_capsules, ECHO_MSGS);
    assert_int_equal(tun_final.rx_capsules, ECHO_MSGS);
    assert_int_equal(rs.rx_capsules, ECHO_MSGS);
    assert_int_equal(rs.tx_capsules, ECHO_MSGS);
    assert_int_equal(rs.tx_quic_datagrams + rs.rx_quic_datagrams, 0);
    assert_int_equal(tun_outer.datagrams_sent, 0);
    assert_int_equal(tun_outer.datagrams_received, 0);
  }
  qpeer__h3_test_no_h3_datagram = 0;
  qpt_loop_teardown(&loop);
}

static void test_masque_connect_udp_echo(void **state) {
  (void)state;
  run_echo(0);
}

static void test_masque_capsules_client_no_h3_datagram(void **state) {
  (void)state;
  run_echo(1);
}

static void test_masque_capsules_relay_no_h3_datagram(void **state) {
  (void)state;
  run_echo(2);
}

/* A QUIC connection through a CONNECT-UDP tunnel: phone_ep tunnels to
 * cam_ep (a QUIC server) and moves 4 MiB. */
static xfer small;

static void quic_tunnel_done(xfer *x) {
  xfer_close(x);
  assert_int_equal(qpeer_tunnel_get_stats(&tun, &tun_final), 0);
  qpeer_tunnel_close(&tun, on_close);
  relay_stop();
  qpeer_close((qpeer_handle_t *)&cam_ep, on_close);
  qpeer_close((qpeer_handle_t *)&phone_ep, on_close);
}

static void on_tun_quic(qpeer_tunnel_t *t, int status) {
  struct sockaddr_storage local, remote;
  assert_int_equal(status, 0);
  tun_events++;
  assert_int_equal(qpeer_tunnel_get_local_addr(t, &local), 0);
  assert_int_equal(qpeer_tunnel_get_remote_addr(t, &remote), 0);
  xfer_start(&small, 4u << 20, (struct sockaddr *)&remote,
             (struct sockaddr *)&local, &phone_ep);
  small.on_done = quic_tunnel_done;
}

static void test_masque_connect_udp_quic(void **state) {
  qpeer_masque_options_t o;
  struct sockaddr_storage cam_addr;
  (void)state;
  loop_setup();
  relay_allow = QPEER_RELAY_ALLOW_LOOPBACK;
  relay_start(0);
  endpoint_init(&cam_ep);
  endpoint_init(&phone_ep);
  cam_listen();
  assert_int_equal(qpeer_endpoint_get_local_addr(&cam_ep, &cam_addr), 0);
  masque_opts(&o);
  o.target_host = "127.0.0.1";
  o.target_port = qpeer__addr_port((struct sockaddr *)&cam_addr);
  assert_int_equal(qpeer_tunnel_init(&phone_ep, &tun, &o), 0);
  tun_events = 0;
  assert_int_equal(qpeer_tunnel_start(&tun, on_tun_quic), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(tun_events, 1);
  assert_true(small.done && small.shut);
  /* The camera saw the connection come from the relay's tunnel socket,
   * not from the phone's own socket. */
  assert_true(tun_final.tx_packets > 100 && tun_final.rx_packets > 100);
  assert_int_equal(closes, 4 + 3);
  qpt_loop_teardown(&loop);
}

/* ---- refusals: denied targets, access control, quotas
 * ------------------------------ */

static void expect_refusal(const char *host, uint16_t port, const char *token,
                           int status, int http, const char *ps_error) {
  tun_events = 0;
  tunnel_open(host, port, token, on_tun_echo);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(tun_events, 1);
  assert_int_equal(tun_status, status);
  assert_int_equal(tun_final.http_status, http);
  if (ps_error) {
    char want[128];
    snprintf(want, sizeof(want), "error=%s", ps_error);
    assert_non_null(strstr(tun_final.proxy_status, want));
    assert_non_null(strstr(tun_final.proxy_status, "qpeer-relay"));
  }
}

/* One refused tunnel in a fresh loop. */
static void refused_tunnel(unsigned allow, int mode, const char *host,
                           uint16_t port, const char *token, int status,
                           int http, const char *ps_error) {
  loop_setup();
  relay_allow = allow;
  access_mode = mode;
  relay_start(0);
  endpoint_init(&cam_ep);
  echo_start();
  expect_refusal(host, port, token, status, http, ps_error);
  assert_true(echo_closed);
  qpt_loop_teardown(&loop);
}

static void test_masque_denied_target(void **state) {
  (void)state;
  /* Loopback is refused by default, as are multicast and a name that
   * resolves to loopback (checked after resolution). */
  refused_tunnel(0, 0, "127.0.0.1", 4242, NULL, QPEER_ERELAY, 403,
                 "destination_ip_prohibited");
  assert_int_equal(relay_final.rejected_target, 1);
  assert_int_equal(relay_final.tunnels, 0);
  refused_tunnel(QPEER_RELAY_ALLOW_LOOPBACK, 0, "224.0.0.1", 4242, NULL,
                 QPEER_ERELAY, 403, "destination_ip_prohibited");
  refused_tunnel(0, 0, "::1", 4242, NULL, QPEER_ERELAY, 403,
                 "destination_ip_prohibited");
  refused_tunnel(0, 0, "localhost", 4242, NULL, QPEER_ERELAY, 403,
                 "destination_ip_prohibited");
  assert_int_equal(relay_final.rejected_target, 1);
}

static void test_masque_access_refused(void **state) {
  (void)state;
  /* No token: 401; a wrong token: 403 (http_request_denied). */
  refused_tunnel(QPEER_RELAY_ALLOW_LOOPBACK, 1, "127.0.0.1", 4242, NULL,
                 QPEER_EREFUSED, 401, "http_request_denied");
  assert_int_equal(relay_final.rejected_unauthorized, 1);
  assert_int_equal(access_calls, 1);
  refused_tunnel(QPEER_RELAY_ALLOW_LOOPBACK, 1, "127.0.0.1", 4242, "bad",
                 QPEER_EREFUSED, 403, "http_request_denied");
  assert_int_equal(relay_final.rejected_forbidden, 1);
  assert_string_equal(last_token, "bad");
}

/* A refused binding stops for good: no retry hammers the relay. */
static int bind_events_seen, bind_last_status;
static uv_timer_t settle;

static void on_settled(uv_timer_t *t) {
  (void)t;
  uv_close((uv_handle_t *)&settle, NULL);
  qpeer_relay_bind_close(&rbind, on_close);
  relay_stop();
  qpeer_close((qpeer_handle_t *)&cam_ep, on_close);
}

static void on_bound_refused(qpeer_relay_bind_t *b, int status,
                             const struct sockaddr_storage *addrs, size_t n) {
  (void)b;
  (void)addrs;
  (void)n;
  bind_events_seen++;
  bind_last_status = status;
  if (bind_events_seen == 1) {
    /* Wait well beyond the retry delay to see that nothing follows. */
    assert_int_equal(uv_timer_init(&loop, &settle), 0);
    assert_int_equal(uv_timer_start(&settle, on_settled, 500, 0), 0);
  }
}

static void test_masque_bind_refused(void **state) {
  qpeer_masque_options_t o;
  qpeer_masque_stats_t st;
  (void)state;
  loop_setup();
  access_mode = 1;
  relay_start(0);
  endpoint_init(&cam_ep);
  masque_opts(&o);
  assert_int_equal(qpeer_relay_bind_init(&cam_ep, &rbind, &o), 0);
  bind_events_seen = 0;
  assert_int_equal(qpeer_relay_bind_start(&rbind, on_bound_refused), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(bind_events_seen, 1);
  assert_int_equal(bind_last_status, QPEER_EREFUSED);
  assert_int_equal(access_calls, 1);
  assert_int_equal(last_req.kind, QPEER_RELAY_BIND);
  assert_null(last_req.target_host);
  assert_int_equal(relay_final.rejected_unauthorized, 1);
  (void)st;
  qpt_loop_teardown(&loop);
}

static qpeer_tunnel_t tun2;
static qpeer_masque_stats_t tun2_final;

static void on_tun2(qpeer_tunnel_t *t, int status) {
  tun_status = status;
  assert_int_equal(qpeer_tunnel_get_stats(t, &tun2_final), 0);
  assert_int_equal(qpeer_tunnel_close(t, on_close), 0);
  tunnel_teardown();
}

static void on_tun_first(qpeer_tunnel_t *t, int status) {
  qpeer_masque_options_t o;
  (void)t;
  assert_int_equal(status, 0);
  masque_opts(&o);
  o.target_host = "127.0.0.1";
  o.target_port = qpeer__addr_port((struct sockaddr *)&echo_addr);
  assert_int_equal(qpeer_tunnel_init(&cam_ep, &tun2, &o), 0);
  assert_int_equal(qpeer_tunnel_start(&tun2, on_tun2), 0);
}

static void test_masque_quota(void **state) {
  (void)state;
  /* One tunnel per client (the client's peer ID is the quota key): the
   * second, on another connection, gets 429. */
  loop_setup();
  relay_allow = QPEER_RELAY_ALLOW_LOOPBACK;
  relay_max_tunnels = 1;
  relay_start(0);
  endpoint_init(&cam_ep);
  echo_start();
  tunnel_open("127.0.0.1", qpeer__addr_port((struct sockaddr *)&echo_addr),
              NULL, on_tun_first);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(tun_status, QPEER_ERELAY);
  assert_int_equal(tun2_final.http_status, 429);
  assert_non_null(strstr(tun2_final.proxy_status, "http_request_denied"));
  assert_int_equal(relay_final.rejected_quota, 1);
  assert_int_equal(relay_final.tunnels, 1);
  assert_int_equal(closes, 3);
  relay_max_tunnels = 0;
  qpt_loop_teardown(&loop);
}

/* ---- idle timeout
 * ------------------------------------------------------------ */

static void on_tun_idle(qpeer_tunnel_t *t, int status) {
  tun_events++;
  tun_status = status;
  if (status == 0)
    return; /* up: now stay silent */
  (void)t;
  tunnel_teardown();
}

static void test_masque_idle_timeout(void **state) {
  (void)state;
  /* A silent tunnel is closed by the relay (FIN): the client sees UV_EOF. */
  loop_setup();
  relay_allow = QPEER_RELAY_ALLOW_LOOPBACK;
  relay_idle_ms = 300;
  relay_start(0);
  endpoint_init(&cam_ep);
  echo_start();
  tun_events = 0;
  tunnel_open("127.0.0.1", qpeer__addr_port((struct sockaddr *)&echo_addr),
              NULL, on_tun_idle);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(tun_events, 2);
  assert_int_equal(tun_status, UV_EOF);
  assert_int_equal(relay_final.idle_closed, 1);
  assert_int_equal(relay_final.tunnels_active, 0);
  qpt_loop_teardown(&loop);
}

/* ---- relay restart: the binding comes back
 * -------------------------------------- */

static xfer r1, r2;
static int rebind_failures;
static struct sockaddr_storage bound1, bound2;

static void restart_done(xfer *x) {
  struct sockaddr_storage vif;
  /* The camera's path now runs over the new binding. */
  assert_int_equal(qpeer_relay_bind_get_local_addr(&rbind, &vif), 0);
  assert_true(
      qpeer__addr_equal((struct sockaddr *)&vif, (struct sockaddr *)&bound2));
  assert_true(qpeer__addr_equal((struct sockaddr *)&x->cam_path.local,
                                (struct sockaddr *)&bound2));
  assert_int_equal(qpeer_relay_bind_get_stats(&rbind, &bind_final), 0);
  xfer_close(x);
  qpeer_relay_bind_close(&rbind, on_close);
  relay_stop();
  qpeer_close((qpeer_handle_t *)&cam_ep, on_close);
  qpeer_close((qpeer_handle_t *)&phone_ep, on_close);
}

static void restart_relay(xfer *x) {
  xfer_close(x);
  /* Stop the relay (its connections close) and start a new one on the
   * same port once the old one is gone. */
  restart_port = qpeer__addr_port((struct sockaddr *)&relay_addr);
  relay_stop();
}

static void on_bound_restart(qpeer_relay_bind_t *b, int status,
                             const struct sockaddr_storage *addrs, size_t n) {
  (void)b;
  if (status != 0) {
    /* The relay went away: reported, and retried with backoff. */
    assert_int_equal(bound_events, 1);
    rebind_failures++;
    return;
  }
  assert_true(n >= 1);
  bound_events++;
  if (bound_events == 1) {
    bound1 = addrs[0];
    xfer_start(&r1, 1u << 20, (const struct sockaddr *)&addrs[0], NULL,
               &phone_ep);
    r1.on_done = restart_relay;
  } else {
    assert_int_equal(bound_events, 2);
    bound2 = addrs[0];
    xfer_start(&r2, 1u << 20, (const struct sockaddr *)&addrs[0], NULL,
               &phone_ep);
    r2.on_done = restart_done;
  }
}

static void test_masque_relay_restart(void **state) {
  qpeer_masque_options_t o;
  (void)state;
  loop_setup();
  relay_allow = QPEER_RELAY_ALLOW_LOOPBACK;
  relay_start(0);
  endpoint_init(&cam_ep);
  endpoint_init(&phone_ep);
  cam_listen();
  masque_opts(&o);
  assert_int_equal(qpeer_relay_bind_init(&cam_ep, &rbind, &o), 0);
  bound_events = rebind_failures = 0;
  assert_int_equal(qpeer_relay_bind_start(&rbind, on_bound_restart), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(bound_events, 2);
  assert_true(rebind_failures >= 1);
  assert_true(r1.done && r2.done);
  assert_int_equal(bind_final.connects, 2);
  assert_true(bind_final.failures >= 1);
  assert_int_equal(relay_closes, 4);
  assert_int_equal(closes, 4 + 4 + 3);
  print_message("re-bound after %d failed attempt(s): %s -> new port %u\n",
                rebind_failures, "relay restarted",
                (unsigned)qpeer__addr_port((struct sockaddr *)&bound2));
  qpt_loop_teardown(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_masque_bind_64mib),
      cmocka_unit_test(test_masque_connect_udp_echo),
      cmocka_unit_test(test_masque_connect_udp_quic),
      cmocka_unit_test(test_masque_capsules_client_no_h3_datagram),
      cmocka_unit_test(test_masque_capsules_relay_no_h3_datagram),
      cmocka_unit_test(test_masque_denied_target),
      cmocka_unit_test(test_masque_access_refused),
      cmocka_unit_test(test_masque_bind_refused),
      cmocka_unit_test(test_masque_quota),
      cmocka_unit_test(test_masque_idle_timeout),
      cmocka_unit_test(test_masque_relay_restart),
  };
  int r = cmocka_run_group_tests_name("masque", tests, NULL, NULL);
  if (relay_id)
    qpeer_identity_unref(relay_id);
  return r;
}
