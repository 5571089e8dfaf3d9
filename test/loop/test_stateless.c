/* SPDX-License-Identifier: MIT */
/*
 * Loopback: the endpoint's stateless side, driven by a plain uv_udp_t in
 * the test. Garbage and truncated datagrams never crash and are counted,
 * and a real connection still works afterwards; Version Negotiation;
 * Retry; invalid Retry tokens; the stateless refusal at max_connections;
 * stateless reset versus the raw-packet hook; STUN messages to the STUN
 * hook. Sockets are on 127.0.0.1 (one test on [::1]), port 0; every wait
 * is bounded by the watchdog. Hostile input runs in a forked child, so a
 * crash is reported as a failure instead of ending the run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"
#include "qpeer.h"

#define N_GARBAGE 2000
#define GARBAGE_BATCH 32
#define MAX_REPLIES 64
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *alpn[] = {"qpeer-test"};

static struct {
  uv_loop_t loop;
  uv_timer_t wd, timer;
  int timer_open;
  uv_udp_t sender;
  struct sockaddr_storage sender_addr;
  struct sockaddr_storage srv_addr;
  qpeer_endpoint_t srv_ep, cli_ep;
  qpeer_conn_t srv_conn, cli_conn;
  qpeer_connect_t creq;
  int cli_ep_open;
  qpeer_endpoint_stats_t base; /* stats before the test's traffic */
  /* replies the sender got */
  int nreplies;
  uint8_t reply[MAX_REPLIES][1500];
  size_t reply_len[MAX_REPLIES];
  /* hooks */
  int raw_hook_called, stun_hook_called;
  uint8_t hook_data[1500];
  size_t hook_len;
  int hook_from_ok;
  /* connection */
  int connect_cb_called, connect_status, connection_cb_called;
  int close_cb_called;
  /* step machine for the timer-driven tests */
  int step;
  size_t sent;
} F;

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rng(void) {
  /* xorshift64*: deterministic, fixed seed per test. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

static void rng_fill(uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    p[i] = (uint8_t)(rng() >> 56);
}

static int same_addr(const struct sockaddr *a, const struct sockaddr *b) {
  char x[QPEER_ADDR_STRLEN], y[QPEER_ADDR_STRLEN];
  if (qpeer_addr_format(a, x, sizeof(x)) < 0 ||
      qpeer_addr_format(b, y, sizeof(y)) < 0)
    return 0;
  return strcmp(x, y) == 0;
}

static void on_close(qpeer_handle_t *h) {
  (void)h;
  F.close_cb_called++;
}

static void get_stats(qpeer_endpoint_stats_t *st) {
  assert_int_equal(qpeer_endpoint_get_stats(&F.srv_ep, st), 0);
}

static void stop_timer(void) {
  if (F.timer_open) {
    F.timer_open = 0;
    uv_close((uv_handle_t *)&F.timer, NULL);
  }
}

static void start_timer(uv_timer_cb cb, uint64_t ms, uint64_t repeat) {
  if (!F.timer_open) {
    assert_int_equal(uv_timer_init(&F.loop, &F.timer), 0);
    F.timer_open = 1;
  }
  assert_int_equal(uv_timer_start(&F.timer, cb, ms, repeat), 0);
}

static void sender_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  static char mem[65536];
  (void)h;
  (void)sz;
  *buf = uv_buf_init(mem, sizeof(mem));
}

static void sender_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf,
                        const struct sockaddr *from, unsigned flags) {
  (void)u;
  (void)flags;
  if (n < 0 || !from)
    return;
  assert_true(same_addr(from, (struct sockaddr *)&F.srv_addr));
  if (F.nreplies < MAX_REPLIES) {
    size_t len = (size_t)n < sizeof(F.reply[0]) ? (size_t)n
                                                : sizeof(F.reply[0]);
    memcpy(F.reply[F.nreplies], buf->base, len);
    F.reply_len[F.nreplies] = (size_t)n;
  }
  F.nreplies++;
}

/* Sends one datagram from the test's socket to the endpoint. */
static int send_dgram(const uint8_t *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int r = uv_udp_try_send(&F.sender, &b, 1, (struct sockaddr *)&F.srv_addr);
  if (r == UV_EAGAIN)
    return r;
  assert_int_equal(r, (int)len);
  return 0;
}

static void on_connection(qpeer_endpoint_t *ep, int status) {
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_endpoint_accept(ep, &F.srv_conn), 0);
  F.connection_cb_called++;
}

/* Server endpoint (listening) and the raw sender, same family. */
static uint32_t begin_max_conns; /* 0: default */
static void begin(const char *bind_text, qpeer_retry_mode retry) {
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  struct sockaddr_storage bind;
  int alen = sizeof(F.sender_addr);
  memset(&F, 0, sizeof(F));
  rng_state = 0x9e3779b97f4a7c15ULL;
  assert_int_equal(uv_loop_init(&F.loop), 0);
  qpt_watchdog_start(&F.loop, &F.wd, 30000);
  assert_int_equal(qpeer_addr_parse(&bind, bind_text), 0);
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&bind;
  eo.retry_mode = retry;
  if (begin_max_conns)
    eo.max_connections = begin_max_conns;
  assert_int_equal(qpeer_endpoint_init(&F.loop, &F.srv_ep, &eo), 0);
  qpeer_listen_options_default(&lo);
  lo.alpn = alpn;
  lo.nalpn = 1;
  assert_int_equal(qpeer_endpoint_listen(&F.srv_ep, &lo, on_connection), 0);
  assert_int_equal(qpeer_endpoint_get_local_addr(&F.srv_ep, &F.srv_addr), 0);
  assert_int_equal(uv_udp_init(&F.loop, &F.sender), 0);
  assert_int_equal(uv_udp_bind(&F.sender, (struct sockaddr *)&bind, 0), 0);
  assert_int_equal(uv_udp_getsockname(&F.sender,
                                      (struct sockaddr *)&F.sender_addr,
                                      &alen),
                   0);
  assert_int_equal(uv_udp_recv_start(&F.sender, sender_alloc, sender_recv),
                   0);
  get_stats(&F.base);
}

static void close_all(void) {
  stop_timer();
  if (!uv_is_closing((uv_handle_t *)&F.sender))
    uv_close((uv_handle_t *)&F.sender, NULL);
  if (F.connection_cb_called &&
      !qpeer_is_closing((qpeer_handle_t *)&F.srv_conn))
    assert_int_equal(qpeer_close((qpeer_handle_t *)&F.srv_conn, on_close),
                     0);
  if (F.connect_cb_called &&
      !qpeer_is_closing((qpeer_handle_t *)&F.cli_conn))
    assert_int_equal(qpeer_close((qpeer_handle_t *)&F.cli_conn, on_close),
                     0);
  if (F.cli_ep_open && !qpeer_is_closing((qpeer_handle_t *)&F.cli_ep))
    assert_int_equal(qpeer_close((qpeer_handle_t *)&F.cli_ep, on_close), 0);
  if (!qpeer_is_closing((qpeer_handle_t *)&F.srv_ep))
    assert_int_equal(qpeer_close((qpeer_handle_t *)&F.srv_ep, on_close), 0);
}

/* Waits, polling every few ms, until |done| says so or WAIT_LIMIT_MS
 * passed (the test's assertions then report what is missing); then calls
 * |next|. */
#define WAIT_LIMIT_MS 3000
static int (*wait_done)(void);
static void (*wait_next)(void);
static uint64_t wait_deadline;
static void on_wait(uv_timer_t *t) {
  (void)t;
  if (wait_done() || uv_now(&F.loop) >= wait_deadline) {
    uv_timer_stop(&F.timer);
    wait_next();
  }
}
static void wait_for(int (*done)(void), void (*next)(void)) {
  wait_done = done;
  wait_next = next;
  wait_deadline = uv_now(&F.loop) + WAIT_LIMIT_MS;
  start_timer(on_wait, 2, 2);
}

static int rx_caught_up(void) {
  qpeer_endpoint_stats_t st;
  get_stats(&st);
  return st.rx_datagrams - F.base.rx_datagrams >= F.sent;
}

/* ---- a real connection, used after the junk ------------------------------------ */

static void on_connect(qpeer_connect_t *req, int status) {
  (void)req;
  F.connect_cb_called++;
  F.connect_status = status;
}

static void start_real_connection(void) {
  qpeer_endpoint_options_t eo;
  qpeer_connect_options_t co;
  struct sockaddr_storage bind;
  memcpy(&bind, &F.sender_addr, sizeof(bind));
  if (bind.ss_family == AF_INET)
    ((struct sockaddr_in *)&bind)->sin_port = 0;
  else
    ((struct sockaddr_in6 *)&bind)->sin6_port = 0;
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&bind;
  assert_int_equal(qpeer_endpoint_init(&F.loop, &F.cli_ep, &eo), 0);
  F.cli_ep_open = 1;
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)&F.srv_addr;
  co.alpn = alpn;
  co.nalpn = 1;
  co.peer_id =
      qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&F.srv_ep));
  assert_int_equal(
      qpeer_connect(&F.creq, &F.cli_ep, &F.cli_conn, &co, on_connect), 0);
}

static int connected(void) {
  return F.connect_cb_called && (F.connect_status != 0 ||
                                 F.connection_cb_called);
}

/* ---- garbage --------------------------------------------------------------------- */

/* A long header that looks valid up to where it is cut: first byte,
 * version, DCID, SCID, token length, length, packet number. */
static size_t make_long_header(uint8_t *p, uint8_t first, uint32_t version) {
  size_t n = 0;
  p[n++] = first;
  p[n++] = (uint8_t)(version >> 24);
  p[n++] = (uint8_t)(version >> 16);
  p[n++] = (uint8_t)(version >> 8);
  p[n++] = (uint8_t)version;
  p[n++] = 8;
  rng_fill(p + n, 8);
  n += 8;
  p[n++] = 8;
  rng_fill(p + n, 8);
  n += 8;
  if ((first & 0x30) == 0)
    p[n++] = 0; /* Initial: empty token */
  p[n++] = 0x44; /* length 1232, two-byte varint */
  p[n++] = 0xd0;
  rng_fill(p + n, 4);
  n += 4;
  return n;
}

/* The junk, in order: N_GARBAGE random datagrams of 0..1500 bytes, then
 * every prefix of valid-looking long headers (Initial, 0-RTT, Handshake,
 * Retry; versions 1 and unknown), then a few oddities. */
static uint8_t junk_buf[1500];
static size_t junk_len;
static size_t junk_total;

static int next_junk(size_t i) {
  static const uint8_t firsts[] = {0xc0, 0xc3, 0xd1, 0xe2, 0xf0, 0x80, 0xff};
  static const uint32_t versions[] = {0x00000001, 0x1a2a3a4a, 0x6b3343cf, 0};
  uint8_t hdr[64];
  size_t hlen, k;
  if (i < N_GARBAGE) {
    junk_len = (size_t)(rng() % 1501);
    rng_fill(junk_buf, junk_len);
    return 1;
  }
  i -= N_GARBAGE;
  /* Truncated long headers: for each (first, version), prefixes 1..hlen. */
  for (k = 0; k < ARRAY_LEN(firsts) * ARRAY_LEN(versions); k++) {
    hlen = make_long_header(hdr, firsts[k / ARRAY_LEN(versions)],
                            versions[k % ARRAY_LEN(versions)]);
    if (i < hlen) {
      junk_len = i + 1;
      memcpy(junk_buf, hdr, junk_len);
      return 1;
    }
    i -= hlen;
  }
  /* Oddities: an empty datagram, a lone 0x00, a STUN header with a bad
   * length field, a 1-byte short header. (Whole Initials with a valid
   * header and a bogus body have their own tests below.) */
  switch (i) {
  case 0:
    junk_len = 0;
    return 1;
  case 1:
    junk_len = 1;
    junk_buf[0] = 0;
    return 1;
  case 2:
    memset(junk_buf, 0, 24);
    junk_buf[1] = 1;
    junk_buf[3] = 8; /* says 8, has 4 */
    junk_buf[4] = 0x21;
    junk_buf[5] = 0x12;
    junk_buf[6] = 0xa4;
    junk_buf[7] = 0x42;
    junk_len = 24;
    return 1;
  case 3:
    junk_buf[0] = 0x41;
    junk_len = 1;
    return 1;
  default:
    return 0;
  }
}

static size_t junk_index;

static void garbage_connected(void) {
  close_all();
}

static void on_garbage_tick(uv_timer_t *t) {
  int i;
  (void)t;
  if (!rx_caught_up())
    return; /* Paced: never overrun the endpoint's socket buffer. */
  for (i = 0; i < GARBAGE_BATCH; i++) {
    if (!next_junk(junk_index)) {
      /* All junk delivered: now a real client must still get in. */
      uv_timer_stop(&F.timer);
      junk_total = junk_index;
      start_real_connection();
      wait_for(connected, garbage_connected);
      return;
    }
    if (send_dgram(junk_buf, junk_len) != 0)
      return; /* Socket full: same datagram next tick. */
    junk_index++;
    F.sent++;
  }
}

static void body_garbage(void **state) {
  (void)state;
  begin("127.0.0.1:0", QPEER_RETRY_NEVER);
  junk_index = 0;
  start_timer(on_garbage_tick, 1, 1);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  /* The endpoint survived and still accepts. */
  assert_int_equal(F.connect_cb_called, 1);
  assert_int_equal(F.connect_status, 0);
  assert_int_equal(F.connection_cb_called, 1);
  assert_int_equal(F.close_cb_called, 4);
  assert_true(junk_total > N_GARBAGE + 100);
  qpt_loop_teardown(&F.loop);
}

/* The same run, but the counters are checked before anything connects. */
static qpeer_endpoint_stats_t junk_stats;
/* Whether the endpoint must answer |p| with Version Negotiation: a long
 * header of at least 1200 bytes whose (parsable) version is neither 0 nor
 * one that ngtcp2 0.12 speaks (1, v2 draft, drafts 29..32). */
static size_t expect_vn;
static int vn_expected(const uint8_t *p, size_t len) {
  uint32_t v;
  size_t dl, sl;
  if (len < 1200 || !(p[0] & 0x80))
    return 0;
  v = ((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) |
      ((uint32_t)p[3] << 8) | p[4];
  if (v == 0 || v == 1 || v == 0x709a50c4 ||
      (v >= 0xff00001d && v <= 0xff000020))
    return 0;
  dl = p[5];
  if (7 + dl > len)
    return 0;
  sl = p[6 + dl];
  return 7 + dl + sl <= len;
}

static void garbage_counted(void) {
  get_stats(&junk_stats);
  close_all();
}

static void on_garbage_tick_count(uv_timer_t *t) {
  int i;
  (void)t;
  if (!rx_caught_up())
    return;
  for (i = 0; i < GARBAGE_BATCH; i++) {
    if (!next_junk(junk_index)) {
      uv_timer_stop(&F.timer);
      junk_total = junk_index;
      /* Let the last replies arrive, then read the counters. */
      wait_for(rx_caught_up, garbage_counted);
      return;
    }
    if (send_dgram(junk_buf, junk_len) != 0)
      return;
    if (vn_expected(junk_buf, junk_len))
      expect_vn++;
    junk_index++;
    F.sent++;
  }
}

static void body_garbage_counted(void **state) {
  qpeer_endpoint_stats_t *s = &junk_stats, *b;
  uint64_t classified;
  (void)state;
  begin("127.0.0.1:0", QPEER_RETRY_NEVER);
  b = &F.base;
  junk_index = 0;
  expect_vn = 0;
  start_timer(on_garbage_tick_count, 1, 1);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  fprintf(stderr,
          "junk: sent %zu rx %llu garbage %llu raw %llu stun %llu quic %llu "
          "vn %llu reset %llu retry %llu refused %llu accepted %llu "
          "replies %d; expected vn %zu\n",
          F.sent, (unsigned long long)(s->rx_datagrams - b->rx_datagrams),
          (unsigned long long)(s->rx_garbage - b->rx_garbage),
          (unsigned long long)(s->rx_raw - b->rx_raw),
          (unsigned long long)(s->rx_stun - b->rx_stun),
          (unsigned long long)(s->rx_quic - b->rx_quic),
          (unsigned long long)(s->tx_version_negotiation -
                               b->tx_version_negotiation),
          (unsigned long long)(s->tx_stateless_reset - b->tx_stateless_reset),
          (unsigned long long)(s->tx_retry - b->tx_retry),
          (unsigned long long)(s->conns_refused - b->conns_refused),
          (unsigned long long)(s->conns_accepted - b->conns_accepted),
          F.nreplies, expect_vn);
  /* Every datagram arrived and was counted. */
  assert_int_equal(s->rx_datagrams - b->rx_datagrams, F.sent);
  assert_true(s->rx_garbage - b->rx_garbage > 0);
  assert_true(s->rx_raw - b->rx_raw > 0);
  assert_true(s->tx_version_negotiation - b->tx_version_negotiation > 0);
  /* Every long header of 1200+ bytes with an unknown version, whatever
   * its CID lengths, is answered.
   * LIBRARY BUG (reported): send_version_negotiation() in
   * lib/quic/endpoint.c writes into a 256-byte buffer, so when the two
   * CIDs add up to more than 241 bytes nothing is sent and nothing is
   * counted (also the "classified" check below). */
  assert_int_equal(s->tx_version_negotiation - b->tx_version_negotiation,
                   expect_vn);
  /* Each one landed in at least one bucket: garbage, raw, STUN, a QUIC
   * packet routed to the listener, or a Version Negotiation answer. */
  classified = (s->rx_garbage - b->rx_garbage) + (s->rx_raw - b->rx_raw) +
               (s->rx_stun - b->rx_stun) + (s->rx_quic - b->rx_quic) +
               (s->tx_version_negotiation - b->tx_version_negotiation);
  assert_true(classified >= F.sent);
  /* None of it became a connection. */
  assert_int_equal(s->conns_accepted - b->conns_accepted, 0);
  assert_int_equal(F.connection_cb_called, 0);
  /* Stateless resets are rate-limited. */
  assert_true(s->tx_stateless_reset - b->tx_stateless_reset <= 200);
  assert_int_equal(F.close_cb_called, 1);
  qpt_loop_teardown(&F.loop);
}

/* ---- Version Negotiation ------------------------------------------------------------ */

static uint8_t vn_dcid[255], vn_scid[255];
static size_t vn_dcidlen, vn_scidlen;

static size_t make_unknown_version(uint8_t *p, size_t len) {
  size_t n = 0;
  memset(p, 0, len);
  p[n++] = 0xc0;
  p[n++] = 0x1a;
  p[n++] = 0x2a;
  p[n++] = 0x3a;
  p[n++] = 0x4a;
  p[n++] = (uint8_t)vn_dcidlen;
  memcpy(p + n, vn_dcid, vn_dcidlen);
  n += vn_dcidlen;
  p[n++] = (uint8_t)vn_scidlen;
  memcpy(p + n, vn_scid, vn_scidlen);
  n += vn_scidlen;
  rng_fill(p + n, len - n);
  return len;
}

static int got_reply(void) { return F.nreplies > 0; }

static qpeer_endpoint_stats_t vn_stats;
static void vn_done(void) {
  get_stats(&vn_stats);
  close_all();
}

static void vn_send(uv_timer_t *t) {
  uint8_t pkt[1200];
  (void)t;
  /* Too short to be answered: nothing comes back for this one. */
  make_unknown_version(pkt, 600);
  assert_int_equal(send_dgram(pkt, 600), 0);
  make_unknown_version(pkt, sizeof(pkt));
  assert_int_equal(send_dgram(pkt, sizeof(pkt)), 0);
  F.sent = 2;
  wait_for(got_reply, vn_done);
}

static void run_vn(const char *bind, size_t dcidlen, size_t scidlen) {
  const uint8_t *r;
  size_t off, i;
  int have_v1 = 0;
  begin(bind, QPEER_RETRY_NEVER);
  vn_dcidlen = dcidlen;
  vn_scidlen = scidlen;
  rng_fill(vn_dcid, vn_dcidlen);
  rng_fill(vn_scid, vn_scidlen);
  start_timer(vn_send, 1, 0);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  assert_int_equal(F.nreplies, 1);
  r = F.reply[0];
  /* Long header, version 0, CIDs swapped, then supported versions. */
  assert_true(F.reply_len[0] >= 7 + vn_dcidlen + vn_scidlen + 4);
  assert_true(r[0] & 0x80);
  assert_int_equal(r[1] | r[2] | r[3] | r[4], 0);
  assert_int_equal(r[5], vn_scidlen);
  assert_memory_equal(r + 6, vn_scid, vn_scidlen);
  off = 6 + vn_scidlen;
  assert_int_equal(r[off], vn_dcidlen);
  assert_memory_equal(r + off + 1, vn_dcid, vn_dcidlen);
  off += 1 + vn_dcidlen;
  assert_int_equal((F.reply_len[0] - off) % 4, 0);
  for (i = off; i + 4 <= F.reply_len[0]; i += 4) {
    uint32_t v = ((uint32_t)r[i] << 24) | ((uint32_t)r[i + 1] << 16) |
                 ((uint32_t)r[i + 2] << 8) | r[i + 3];
    assert_true(v != 0x1a2a3a4a);
    if (v == 1)
      have_v1 = 1;
  }
  assert_true(have_v1);
  assert_int_equal(
      vn_stats.tx_version_negotiation - F.base.tx_version_negotiation, 1);
  assert_int_equal(F.close_cb_called, 1);
  qpt_loop_teardown(&F.loop);
}

static void test_version_negotiation(void **state) {
  (void)state;
  run_vn("127.0.0.1:0", 8, 8);
}

/* Other QUIC versions may use connection IDs up to 255 bytes; a Version
 * Negotiation packet echoes them (RFC 8999 section 6, RFC 9000 section
 * 17.2.1: servers SHOULD be able to read longer CIDs to form it). */
/* LIBRARY BUG (reported): no reply, see body_garbage_counted. */
static void test_version_negotiation_long_cids(void **state) {
  (void)state;
  run_vn("127.0.0.1:0", 200, 100);
}

static void test_version_negotiation_ipv6(void **state) {
  (void)state;
  run_vn("[::1]:0", 8, 8);
}

/* ---- Retry ---------------------------------------------------------------------------- */

static qpeer_endpoint_stats_t retry_stats;
static void retry_connected_stats(void) {
  get_stats(&retry_stats);
  close_all();
}

static void test_retry_always(void **state) {
  (void)state;
  begin("127.0.0.1:0", QPEER_RETRY_ALWAYS);
  start_real_connection();
  wait_for(connected, retry_connected_stats);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  assert_int_equal(F.connect_status, 0);
  assert_int_equal(F.connection_cb_called, 1);
  assert_true(retry_stats.tx_retry - F.base.tx_retry >= 1);
  assert_int_equal(retry_stats.bad_tokens - F.base.bad_tokens, 0);
  assert_int_equal(retry_stats.conns_accepted - F.base.conns_accepted, 1);
  assert_int_equal(F.close_cb_called, 4);
  qpt_loop_teardown(&F.loop);
}

/* An Initial carrying a forged Retry token is refused and counted. */
static void bad_token_send(uv_timer_t *t) {
  uint8_t p[1200];
  size_t n = 0;
  (void)t;
  rng_fill(p, sizeof(p));
  p[n++] = 0xc3;
  p[n++] = 0;
  p[n++] = 0;
  p[n++] = 0;
  p[n++] = 1;
  p[n++] = 8;
  n += 8; /* DCID: random */
  p[n++] = 8;
  n += 8; /* SCID: random */
  p[n++] = 60; /* token length */
  p[n] = 0xb6; /* NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY */
  n += 60;
  /* Length (two-byte varint): everything after it. */
  p[n] = (uint8_t)(0x40 | ((sizeof(p) - n - 2) >> 8));
  p[n + 1] = (uint8_t)((sizeof(p) - n - 2) & 0xff);
  assert_int_equal(send_dgram(p, sizeof(p)), 0);
  F.sent = 1;
  wait_for(got_reply, retry_connected_stats);
}

static void test_bad_retry_token(void **state) {
  (void)state;
  begin("127.0.0.1:0", QPEER_RETRY_ALWAYS);
  start_timer(bad_token_send, 1, 0);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  assert_int_equal(retry_stats.bad_tokens - F.base.bad_tokens, 1);
  assert_int_equal(retry_stats.conns_refused - F.base.conns_refused, 1);
  assert_int_equal(retry_stats.tx_retry - F.base.tx_retry, 0);
  /* The refusal is a long-header packet back to the sender. */
  assert_int_equal(F.nreplies, 1);
  assert_true(F.reply[0][0] & 0x80);
  assert_int_equal(F.connection_cb_called, 0);
  qpt_loop_teardown(&F.loop);
}

/* ---- stateless reset and the raw hook ------------------------------------------------------ */

static uint8_t short_pkt[80];

static void raw_hook(qpeer_endpoint_t *ep, const uint8_t *data, size_t len,
                     const struct sockaddr *from) {
  assert_ptr_equal(ep, &F.srv_ep);
  F.raw_hook_called++;
  F.hook_len = len < sizeof(F.hook_data) ? len : sizeof(F.hook_data);
  memcpy(F.hook_data, data, F.hook_len);
  F.hook_from_ok = same_addr(from, (struct sockaddr *)&F.sender_addr);
}

static qpeer_endpoint_stats_t reset_stats1, reset_stats2;
static int replies_after_hook;

static int raw_hook_seen(void) { return F.raw_hook_called > 0; }

static void reset_quiet_check(uv_timer_t *t) {
  (void)t;
  replies_after_hook = F.nreplies - 1;
  get_stats(&reset_stats2);
  close_all();
}

static void reset_hooked(void) {
  /* Give a (wrong) reply time to arrive, then check. */
  start_timer(reset_quiet_check, 100, 0);
}

static void reset_got_reply(void) {
  get_stats(&reset_stats1);
  /* Now with a raw hook: the packet goes to the hook, no reset. */
  assert_int_equal(qpeer_endpoint_set_raw_hook(&F.srv_ep, raw_hook), 0);
  short_pkt[0] = 0x40 | (uint8_t)(rng() & 0x3f);
  rng_fill(short_pkt + 1, sizeof(short_pkt) - 1);
  assert_int_equal(send_dgram(short_pkt, sizeof(short_pkt)), 0);
  wait_for(raw_hook_seen, reset_hooked);
}

static void reset_send(uv_timer_t *t) {
  uint8_t tiny[30];
  (void)t;
  /* Too short to be answered with a reset (it could not be smaller). */
  tiny[0] = 0x40;
  rng_fill(tiny + 1, sizeof(tiny) - 1);
  assert_int_equal(send_dgram(tiny, sizeof(tiny)), 0);
  short_pkt[0] = 0x40 | (uint8_t)(rng() & 0x3f);
  rng_fill(short_pkt + 1, sizeof(short_pkt) - 1);
  assert_int_equal(send_dgram(short_pkt, sizeof(short_pkt)), 0);
  wait_for(got_reply, reset_got_reply);
}

static void test_stateless_reset_and_raw_hook(void **state) {
  const uint8_t *r;
  (void)state;
  begin("127.0.0.1:0", QPEER_RETRY_NEVER);
  start_timer(reset_send, 1, 0);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  /* Without a hook: one stateless reset for the long enough packet. */
  assert_true(F.nreplies >= 1);
  r = F.reply[0];
  assert_int_equal(r[0] & 0xc0, 0x40); /* short header form, fixed bit */
  assert_true(F.reply_len[0] >= 21);  /* 5 random bytes + 16 token */
  assert_true(F.reply_len[0] < sizeof(short_pkt));
  assert_int_equal(reset_stats1.tx_stateless_reset -
                       F.base.tx_stateless_reset,
                   1);
  assert_int_equal(reset_stats1.rx_raw - F.base.rx_raw, 2);
  /* With the hook: the hook got the packet, unchanged, and nothing was
   * sent back. */
  assert_int_equal(F.raw_hook_called, 1);
  assert_int_equal(F.hook_len, sizeof(short_pkt));
  assert_memory_equal(F.hook_data, short_pkt, sizeof(short_pkt));
  assert_true(F.hook_from_ok);
  assert_int_equal(replies_after_hook, 0);
  assert_int_equal(reset_stats2.tx_stateless_reset,
                   reset_stats1.tx_stateless_reset);
  assert_int_equal(reset_stats2.rx_raw - reset_stats1.rx_raw, 1);
  qpt_loop_teardown(&F.loop);
}

/* ---- STUN ------------------------------------------------------------------------------------ */

static uint8_t stun_req[20];
static qpeer_endpoint_stats_t stun_stats;

static void stun_hook(qpeer_endpoint_t *ep, const uint8_t *data, size_t len,
                      const struct sockaddr *from) {
  uint8_t resp[20];
  assert_ptr_equal(ep, &F.srv_ep);
  F.stun_hook_called++;
  F.hook_len = len < sizeof(F.hook_data) ? len : sizeof(F.hook_data);
  memcpy(F.hook_data, data, F.hook_len);
  F.hook_from_ok = same_addr(from, (struct sockaddr *)&F.sender_addr);
  /* Answer from the endpoint's own socket (a bare Binding success). */
  memcpy(resp, data, 20);
  resp[0] = 0x01;
  resp[1] = 0x01;
  assert_int_equal(qpeer_endpoint_send_raw(ep, resp, sizeof(resp), from), 0);
}

static void stun_done(void) {
  get_stats(&stun_stats);
  close_all();
}

static int stun_answered(void) { return F.stun_hook_called && F.nreplies; }

static void stun_send(uv_timer_t *t) {
  (void)t;
  stun_req[0] = 0x00;
  stun_req[1] = 0x01; /* Binding request */
  stun_req[2] = 0;
  stun_req[3] = 0; /* no attributes */
  stun_req[4] = 0x21;
  stun_req[5] = 0x12;
  stun_req[6] = 0xa4;
  stun_req[7] = 0x42;
  rng_fill(stun_req + 8, 12); /* transaction ID */
  assert_int_equal(send_dgram(stun_req, sizeof(stun_req)), 0);
  wait_for(stun_answered, stun_done);
}

static void test_stun_hook(void **state) {
  (void)state;
  begin("127.0.0.1:0", QPEER_RETRY_NEVER);
  assert_int_equal(qpeer_endpoint_set_stun_hook(&F.srv_ep, stun_hook), 0);
  start_timer(stun_send, 1, 0);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  assert_int_equal(F.stun_hook_called, 1);
  assert_int_equal(F.hook_len, sizeof(stun_req));
  assert_memory_equal(F.hook_data, stun_req, sizeof(stun_req));
  assert_true(F.hook_from_ok);
  assert_int_equal(stun_stats.rx_stun - F.base.rx_stun, 1);
  assert_int_equal(stun_stats.rx_raw - F.base.rx_raw, 0);
  assert_int_equal(stun_stats.rx_garbage - F.base.rx_garbage, 0);
  /* The reply sent with qpeer_endpoint_send_raw reached the sender. */
  assert_int_equal(F.nreplies, 1);
  assert_int_equal(F.reply_len[0], 20);
  assert_int_equal(F.reply[0][1], 0x01);
  assert_memory_equal(F.reply[0] + 4, stun_req + 4, 16);
  qpt_loop_teardown(&F.loop);
}

/* Without a STUN hook the message is still recognised and counted. */
static int stun_counted(void) {
  qpeer_endpoint_stats_t st;
  get_stats(&st);
  return st.rx_stun > F.base.rx_stun;
}

static void stun_nohook_send(uv_timer_t *t) {
  (void)t;
  memset(stun_req, 0, sizeof(stun_req));
  stun_req[1] = 0x01;
  stun_req[4] = 0x21;
  stun_req[5] = 0x12;
  stun_req[6] = 0xa4;
  stun_req[7] = 0x42;
  assert_int_equal(send_dgram(stun_req, sizeof(stun_req)), 0);
  wait_for(stun_counted, stun_done);
}

static void test_stun_no_hook(void **state) {
  (void)state;
  begin("127.0.0.1:0", QPEER_RETRY_NEVER);
  start_timer(stun_nohook_send, 1, 0);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  assert_int_equal(stun_stats.rx_stun - F.base.rx_stun, 1);
  assert_int_equal(stun_stats.rx_raw - F.base.rx_raw, 0);
  assert_int_equal(F.nreplies, 0);
  qpt_loop_teardown(&F.loop);
}

/* ---- an Initial with a valid header and an undecryptable payload ------------- */

/* |length_ok|: the Length field matches the datagram; otherwise it claims
 * more than there is. |wait_ms|: how long the endpoint keeps whatever the
 * packet created before it is closed (past the handshake timeout if
 * large). */
static int bogus_length_ok;
static uint64_t bogus_wait_ms;
static qpeer_endpoint_stats_t bogus_stats;

static void bogus_close(uv_timer_t *t) {
  (void)t;
  get_stats(&bogus_stats);
  close_all();
}

static void bogus_received(void) { start_timer(bogus_close, bogus_wait_ms, 0); }

static void bogus_send(uv_timer_t *t) {
  uint8_t p[1200];
  size_t n;
  (void)t;
  rng_fill(p, sizeof(p));
  n = make_long_header(p, 0xc3, 0x00000001);
  if (bogus_length_ok) {
    /* Length covers the packet number and the rest of the datagram. */
    size_t len = sizeof(p) - (n - 4);
    p[n - 6] = (uint8_t)(0x40 | (len >> 8));
    p[n - 5] = (uint8_t)(len & 0xff);
  }
  assert_int_equal(send_dgram(p, sizeof(p)), 0);
  F.sent = 1;
  wait_for(rx_caught_up, bogus_received);
}

static void run_bogus_initial(int length_ok, uint64_t wait_ms) {
  bogus_length_ok = length_ok;
  bogus_wait_ms = wait_ms;
  begin("127.0.0.1:0", QPEER_RETRY_NEVER);
  start_timer(bogus_send, 1, 0);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  assert_int_equal(bogus_stats.rx_datagrams - F.base.rx_datagrams, 1);
  assert_int_equal(bogus_stats.conns_accepted - F.base.conns_accepted, 0);
  assert_int_equal(F.connection_cb_called, 0);
  assert_int_equal(F.close_cb_called, 1);
  qpt_loop_teardown(&F.loop);
}

/* LIBRARY BUG (reported): ngtcp2 discards the packet, qpeer__conn_read
 * returns 0 for NGTCP2_ERR_DISCARD_PKT, and accept_initial keeps a server
 * conn that has no Initial keys. qpeer_close(endpoint) then calls
 * qpeer__conn_send_close -> ngtcp2_conn_write_connection_close, which
 * aborts: "ngtcp2_ppe_padding_hp_sample: Assertion
 * `cc->aead.max_overhead' failed". One datagram from anyone, then any
 * endpoint close, kills the process. */
static void body_bogus_initial_bad_length(void **state) {
  (void)state;
  run_bogus_initial(0, 50);
}

static void body_bogus_initial(void **state) {
  (void)state;
  run_bogus_initial(1, 50);
}

/* ---- refusal at max_connections -------------------------------------------------- */

/* A second client while the server endpoint holds max_connections (1) is
 * refused statelessly with CONNECTION_REFUSED; the client must be able to
 * read that refusal and fail fast with UV_ECONNREFUSED, not time out. */
static qpeer_endpoint_t ep_b;
static qpeer_conn_t conn_b;
static qpeer_connect_t req_b;
static int b_cb_called, b_status;
static qpeer_endpoint_stats_t full_stats;

static void b_on_connect(qpeer_connect_t *req, int status) {
  (void)req;
  b_cb_called++;
  b_status = status;
}

static int b_done(void) { return b_cb_called > 0; }

static void full_finish(void) {
  get_stats(&full_stats);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&conn_b, on_close), 0);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&ep_b, on_close), 0);
  close_all();
}

static void full_second_client(void) {
  qpeer_endpoint_options_t eo;
  qpeer_connect_options_t co;
  struct sockaddr_storage bind;
  assert_int_equal(F.connect_status, 0);
  assert_int_equal(qpeer_addr_parse(&bind, "127.0.0.1:0"), 0);
  qpeer_endpoint_options_default(&eo);
  eo.bind_addr = (struct sockaddr *)&bind;
  assert_int_equal(qpeer_endpoint_init(&F.loop, &ep_b, &eo), 0);
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)&F.srv_addr;
  co.alpn = alpn;
  co.nalpn = 1;
  co.peer_id =
      qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&F.srv_ep));
  co.handshake_timeout_ms = 2000; /* below WAIT_LIMIT_MS */
  assert_int_equal(qpeer_connect(&req_b, &ep_b, &conn_b, &co, b_on_connect),
                   0);
  wait_for(b_done, full_finish);
}

/* LIBRARY BUG (reported): send_refusal() in lib/quic/endpoint.c passes a
 * random CID as the |scid| of ngtcp2_crypto_write_connection_close, which
 * derives the Initial keys from it; it must be the client's DCID
 * (hd->dcid). The client cannot decrypt the refusal and times out
 * (UV_ETIMEDOUT) instead of failing with UV_ECONNREFUSED. The same
 * function answers invalid Retry tokens. */
static void test_refused_at_max_connections(void **state) {
  (void)state;
  b_cb_called = b_status = 0;
  begin_max_conns = 1;
  begin("127.0.0.1:0", QPEER_RETRY_NEVER);
  begin_max_conns = 0;
  start_real_connection();
  wait_for(connected, full_second_client);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  assert_int_equal(F.connect_status, 0);
  assert_int_equal(F.connection_cb_called, 1);
  assert_int_equal(b_cb_called, 1);
  assert_true(full_stats.conns_refused - F.base.conns_refused >= 1);
  fprintf(stderr, "second client: %s\n", qpeer_err_name(b_status));
  assert_int_equal(b_status, UV_ECONNREFUSED);
  assert_int_equal(F.close_cb_called, 6);
  qpt_loop_teardown(&F.loop);
}

/* ---- isolation: hostile input runs in a child process ------------------------- */

/* A crash (or an ngtcp2 assertion) on hostile input is exactly what these
 * tests look for; a forked child keeps it from taking the other tests
 * down and turns it into a clean failure with the signal number. */
static const struct CMUnitTest isolated_tests[] = {
    cmocka_unit_test(body_garbage),
    cmocka_unit_test(body_garbage_counted),
    cmocka_unit_test(body_bogus_initial_bad_length),
    cmocka_unit_test(body_bogus_initial),
};

static void run_isolated(const char *name) {
  pid_t pid;
  int st = 0;
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    cmocka_set_test_filter(name);
    exit(cmocka_run_group_tests_name(name, isolated_tests, NULL, NULL) ? 1
                                                                       : 0);
  }
  assert_int_equal(waitpid(pid, &st, 0), pid);
  if (WIFSIGNALED(st))
    fail_msg("%s crashed: signal %d", name, WTERMSIG(st));
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_garbage(void **state) {
  (void)state;
  run_isolated("body_garbage");
}

static void test_garbage_counted(void **state) {
  (void)state;
  run_isolated("body_garbage_counted");
}

static void test_bogus_initial_bad_length(void **state) {
  (void)state;
  run_isolated("body_bogus_initial_bad_length");
}

static void test_bogus_initial(void **state) {
  (void)state;
  run_isolated("body_bogus_initial");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_garbage_counted),
      cmocka_unit_test(test_bogus_initial_bad_length),
      cmocka_unit_test(test_bogus_initial),
      cmocka_unit_test(test_version_negotiation),
      cmocka_unit_test(test_version_negotiation_ipv6),
      cmocka_unit_test(test_version_negotiation_long_cids),
      cmocka_unit_test(test_retry_always),
      cmocka_unit_test(test_bad_retry_token),
      cmocka_unit_test(test_refused_at_max_connections),
      cmocka_unit_test(test_stateless_reset_and_raw_hook),
      cmocka_unit_test(test_stun_hook),
      cmocka_unit_test(test_stun_no_hook),
  };
  return cmocka_run_group_tests_name("stateless", tests, NULL, NULL);
}
