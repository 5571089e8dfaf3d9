/* SPDX-License-Identifier: MIT */
/*
 * Loopback test of the qpeer-relay executable: it is started with a
 * config file (token auth, a loopback echo target allowed by policy,
 * metrics on), and qpeer's CONNECT-UDP client then tries, in turn: no
 * token (401 token_missing), a bind-only token (403 token_wrong_scope), a
 * token for another audience (401 token_wrong_audience), a good token to
 * a denied loopback address (403), and a good token to the echo target
 * (payloads come back). The metrics endpoint must count all of that.
 * Then SIGTERM with a tunnel open: the daemon sends GOAWAY, the tunnel
 * keeps carrying packets after the GOAWAY went out, the drain ends it
 * cleanly, and the daemon exits with status 0. Usage:
 * test_relayd_daemon PATH-TO-qpeer-relay.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "config.h"
#include "qpeer.h"
#include "relayd_test.h"
#include "token.h"

#define SECRET "daemon-test-secret-daemon-test-secret-0123456789"
#define AUD "relay.test"

static const char *relay_exe;
static uv_loop_t loop;
static char dir[256];

/* The daemon process and what its log told us. */
static uv_process_t proc;
static uv_pipe_t errpipe;
static char log_buf[16384];
static size_t log_len;
static uint16_t relay_port, metrics_port;
static int proc_exited;
static int64_t proc_status;
static int proc_signal;

/* The client side. */
static qpeer_endpoint_t ep;
static qpeer_peer_id_t relay_id;
static struct sockaddr_storage relay_addr;
static uv_udp_t echo;
static uint16_t echo_port;
static qpeer_tunnel_t tun[5];
static int step;
static int results[5];
static int reported[5];
static int http_status[5];
static char proxy_status[5][256];
static int echoed;
static qpeer_tunnel_t drain_tun;     /* open across SIGTERM */
static int drain_events, drain_status; /* its callbacks */
static int drain_pings, drain_echo_after_goaway;
static char metrics[65536];
static uv_timer_t watchdog;

static void next_step(void);

static char *token(unsigned scopes, const char *aud) {
  relayd_token_mint_t m;
  char err[256], *tok = NULL;
  memset(&m, 0, sizeof(m));
  m.alg = RELAYD_ALG_HS256;
  m.key = (const unsigned char *)SECRET;
  m.keylen = strlen(SECRET);
  m.audience = aud;
  m.subject = "tester";
  m.scopes = scopes;
  m.now = (int64_t)time(NULL);
  m.ttl_s = 300;
  if (relayd_token_mint(&m, &tok, err, sizeof(err)) != 0)
    fail_msg("mint: %s", err);
  return tok;
}

/* ---- the daemon ---------------------------------------------------------- */

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  proc_exited = 1;
  proc_status = status;
  proc_signal = sig;
  uv_close((uv_handle_t *)p, NULL);
}

static void on_log_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  static char buf[4096];
  (void)h;
  (void)sz;
  *b = uv_buf_init(buf, sizeof(buf));
}

static uint16_t port_after(const char *marker) {
  const char *p = strstr(log_buf, marker);
  return p ? (uint16_t)atoi(p + strlen(marker)) : 0;
}

static void on_log(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  if (n < 0) {
    uv_close((uv_handle_t *)s, NULL);
    return;
  }
  if ((size_t)n > sizeof(log_buf) - 1 - log_len)
    n = (ssize_t)(sizeof(log_buf) - 1 - log_len);
  memcpy(log_buf + log_len, b->base, (size_t)n);
  log_len += (size_t)n;
  log_buf[log_len] = '\0';
  if (!relay_port) {
    relay_port = port_after("STUN on udp 127.0.0.1:");
    metrics_port = port_after("metrics on http://127.0.0.1:");
    if (relay_port && metrics_port && strstr(log_buf, " ready")) {
      char text[64];
      snprintf(text, sizeof(text), "127.0.0.1:%u", relay_port);
      assert_int_equal(qpeer_addr_parse(&relay_addr, text), 0);
      next_step();
    } else {
      relay_port = 0;
    }
  }
}

static void start_daemon(const char *config) {
  uv_process_options_t po;
  uv_stdio_container_t io[3];
  char *args[4];
  args[0] = (char *)relay_exe;
  args[1] = "--config";
  args[2] = (char *)config;
  args[3] = NULL;
  assert_int_equal(uv_pipe_init(&loop, &errpipe, 0), 0);
  memset(&po, 0, sizeof(po));
  io[0].flags = UV_IGNORE;
  io[1].flags = UV_IGNORE;
  io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  io[2].data.stream = (uv_stream_t *)&errpipe;
  po.file = relay_exe;
  po.args = args;
  po.exit_cb = on_exit_cb;
  po.stdio = io;
  po.stdio_count = 3;
  assert_int_equal(uv_spawn(&loop, &proc, &po), 0);
  assert_int_equal(uv_read_start((uv_stream_t *)&errpipe, on_log_alloc, on_log),
                   0);
}

/* ---- the echo target ----------------------------------------------------- */

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
  int len = sizeof(a);
  assert_int_equal(qpeer_addr_parse(&a, "127.0.0.1:0"), 0);
  assert_int_equal(uv_udp_init(&loop, &echo), 0);
  assert_int_equal(uv_udp_bind(&echo, (struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_udp_getsockname(&echo, (struct sockaddr *)&a, &len), 0);
  echo_port = ntohs(((struct sockaddr_in *)&a)->sin_port);
  assert_int_equal(uv_udp_recv_start(&echo, echo_alloc, echo_recv), 0);
}

/* ---- metrics over raw TCP ------------------------------------------------ */

static void fetch_metrics(void) {
  const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  struct sockaddr_in a;
  struct timeval tv = {5, 0};
  size_t n = 0;
  ssize_t r;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons(metrics_port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), strlen(req));
  while (n + 1 < sizeof(metrics) &&
         (r = recv(fd, metrics + n, sizeof(metrics) - 1 - n, 0)) > 0)
    n += (size_t)r;
  metrics[n] = '\0';
  close(fd);
}

/* ---- the steps ----------------------------------------------------------- */

static void on_tun_closed(qpeer_handle_t *h) { (void)h; }

static void drain_ping(void) {
  assert_true(++drain_pings < 1000);
  assert_int_equal(
      qpeer_tunnel_send(&drain_tun, (const uint8_t *)"drain", 5), 0);
}

static void on_drain_recv(qpeer_tunnel_t *t, const uint8_t *data,
                          size_t len) {
  if (len != 5 || memcmp(data, "drain", 5) || drain_echo_after_goaway)
    return;
  (void)t;
  if (!strstr(log_buf, "sent GOAWAY")) {
    drain_ping(); /* the daemon has not logged its GOAWAY yet */
    return;
  }
  drain_echo_after_goaway = 1;
}

/* The tunnel open across SIGTERM: up, then ended by the drain. */
static void on_drain_tunnel(qpeer_tunnel_t *t, int status) {
  drain_events++;
  drain_status = status;
  if (drain_events == 1) {
    assert_int_equal(status, 0);
    assert_int_equal(qpeer_tunnel_recv_start(t, on_drain_recv), 0);
    uv_process_kill(&proc, SIGTERM);
    drain_ping();
    return;
  }
  qpeer_tunnel_close(t, on_tun_closed);
  qpeer_close((qpeer_handle_t *)&ep, on_tun_closed);
  uv_close((uv_handle_t *)&echo, NULL);
}

static void finish(void) {
  char *tok = token(RELAYD_SCOPE_CONNECT, AUD);
  qpeer_masque_options_t o;
  fetch_metrics();
  qpeer_masque_options_default(&o);
  o.proxy = (const struct sockaddr *)&relay_addr;
  o.auth = QPEER_AUTH_PEER_ID;
  o.peer_id = &relay_id;
  o.target_host = "127.0.0.1";
  o.target_port = echo_port;
  o.bearer_token = tok;
  o.request_timeout_ms = 5000;
  assert_int_equal(qpeer_tunnel_init(&ep, &drain_tun, &o), 0);
  assert_int_equal(qpeer_tunnel_start(&drain_tun, on_drain_tunnel), 0);
  free(tok);
}

static void on_recv(qpeer_tunnel_t *t, const uint8_t *data, size_t len) {
  (void)t;
  if (len == 5 && !memcmp(data, "hello", 5) && !echoed++) {
    qpeer_tunnel_close(&tun[step - 1], on_tun_closed);
    next_step();
  }
}

static void on_tunnel(qpeer_tunnel_t *t, int status) {
  qpeer_masque_stats_t st;
  int i = (int)(t - tun);
  if (reported[i]++)
    return; /* only the first event of each tunnel matters here */
  results[i] = status;
  assert_int_equal(qpeer_tunnel_get_stats(t, &st), 0);
  http_status[i] = st.http_status;
  snprintf(proxy_status[i], sizeof(proxy_status[i]), "%s", st.proxy_status);
  if (status == 0) {
    assert_int_equal(qpeer_tunnel_recv_start(t, on_recv), 0);
    assert_int_equal(qpeer_tunnel_send(t, (const uint8_t *)"hello", 5), 0);
    return;
  }
  qpeer_tunnel_close(t, on_tun_closed);
  if (i == step - 1)
    next_step();
}

static void open_tunnel(int i, const char *host, uint16_t port,
                        const char *tok) {
  qpeer_masque_options_t o;
  qpeer_masque_options_default(&o);
  o.proxy = (const struct sockaddr *)&relay_addr;
  o.auth = QPEER_AUTH_PEER_ID;
  o.peer_id = &relay_id;
  o.target_host = host;
  o.target_port = port;
  o.bearer_token = tok;
  o.request_timeout_ms = 5000;
  assert_int_equal(qpeer_tunnel_init(&ep, &tun[i], &o), 0);
  assert_int_equal(qpeer_tunnel_start(&tun[i], on_tunnel), 0);
}

static void next_step(void) {
  char *tok = NULL;
  int i = step++;
  switch (i) {
  case 0:
    open_tunnel(0, "127.0.0.1", echo_port, NULL);
    break;
  case 1:
    tok = token(RELAYD_SCOPE_BIND, AUD);
    open_tunnel(1, "127.0.0.1", echo_port, tok);
    break;
  case 2:
    tok = token(RELAYD_SCOPE_CONNECT, "elsewhere");
    open_tunnel(2, "127.0.0.1", echo_port, tok);
    break;
  case 3:
    tok = token(RELAYD_SCOPE_CONNECT, AUD);
    open_tunnel(3, "127.0.0.2", echo_port, tok);
    break;
  case 4:
    tok = token(RELAYD_SCOPE_CONNECT | RELAYD_SCOPE_BIND, AUD);
    open_tunnel(4, "127.0.0.1", echo_port, tok);
    break;
  default:
    finish();
    break;
  }
  free(tok);
}

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "daemon log so far:\n%s\n", log_buf);
  if (!proc_exited)
    uv_process_kill(&proc, SIGKILL);
  fail_msg("daemon test timed out at step %d", step);
}

static int metric(const char *line) {
  char want[256];
  snprintf(want, sizeof(want), "\n%s\n", line);
  if (!strstr(metrics, want)) {
    print_message("missing metric line: %s\n", line);
    return 0;
  }
  return 1;
}

static void test_daemon(void **state) {
  char config[4096], cfgpath[512], secret[512], idpath[512];
  qpeer_endpoint_options_t eo;
  struct sockaddr_storage bind4;
  qpeer_identity_t *id;
  (void)state;
  rt_tmpdir(dir, sizeof(dir));
  rt_write_file(dir, "secret", SECRET "\n", strlen(SECRET) + 1, 0600, secret,
                sizeof(secret));
  snprintf(config, sizeof(config),
           "[relay]\n"
           "listen = 127.0.0.1:0\n"
           "state_dir = %s/state\n"
           "auth = jwt\n"
           "jwt_alg = HS256\n"
           "jwt_secret_file = %s\n"
           "audience = " AUD "\n"
           "log_level = debug\n"
           "[policy]\n"
           "allow = 127.0.0.1\n"
           "[quota]\n"
           "max_tunnels_per_client = 4\n"
           "[metrics]\n"
           "listen = 127.0.0.1:0\n",
           dir, secret);
  rt_write_file(dir, "relay.ini", config, strlen(config), 0644, cfgpath,
                sizeof(cfgpath));
  assert_int_equal(uv_loop_init(&loop), 0);
  uv_timer_init(&loop, &watchdog);
  uv_timer_start(&watchdog, on_watchdog, 60000, 0);
  uv_unref((uv_handle_t *)&watchdog);
  echo_start();
  qpeer_endpoint_options_default(&eo);
  assert_int_equal(qpeer_addr_parse(&bind4, "127.0.0.1:0"), 0);
  eo.bind_addr = (struct sockaddr *)&bind4;
  eo.max_datagram_frame_size = 1500;
  assert_int_equal(qpeer_endpoint_init(&loop, &ep, &eo), 0);
  start_daemon(cfgpath);
  /* The relay's identity appears in its state directory before it
   * listens; next_step() runs once the log says "ready". */
  snprintf(idpath, sizeof(idpath), "%s/state/relay-identity.pem", dir);
  {
    int tries = 0;
    while (access(idpath, R_OK) != 0 && tries++ < 200)
      usleep(10000);
  }
  assert_int_equal(qpeer_identity_load(&id, idpath), 0);
  relay_id = *qpeer_identity_get_peer_id(id);
  qpeer_identity_unref(id);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&watchdog, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);

  if (!proc_exited || proc_status != 0 || proc_signal != 0)
    print_message("daemon log:\n%s\n", log_buf);
  assert_int_equal(step, 6);
  /* 1: no token. */
  assert_int_equal(results[0], QPEER_EREFUSED);
  assert_int_equal(http_status[0], 401);
  assert_non_null(strstr(proxy_status[0], "token_missing"));
  /* 2: a bind token cannot connect. */
  assert_int_equal(results[1], QPEER_EREFUSED);
  assert_int_equal(http_status[1], 403);
  assert_non_null(strstr(proxy_status[1], "token_wrong_scope"));
  /* 3: another relay's token. */
  assert_int_equal(http_status[2], 401);
  assert_non_null(strstr(proxy_status[2], "token_wrong_audience"));
  /* 4: a loopback address the policy does not allow. */
  assert_int_equal(http_status[3], 403);
  assert_non_null(strstr(proxy_status[3], "destination_ip_prohibited"));
  /* 5: the echo. */
  assert_int_equal(results[4], 0);
  assert_int_equal(echoed, 1);
  /* Metrics saw all of it. */
  assert_memory_equal(metrics, "HTTP/1.1 200 OK\r\n", 17);
  assert_true(metric("qpeer_relay_tunnels_total 1"));
  assert_true(
      metric("qpeer_relay_rejections_total{reason=\"token_missing\"} 1"));
  assert_true(
      metric("qpeer_relay_rejections_total{reason=\"token_wrong_scope\"} 1"));
  assert_true(metric(
      "qpeer_relay_rejections_total{reason=\"token_wrong_audience\"} 1"));
  assert_true(
      metric("qpeer_relay_rejections_total{reason=\"target_denied\"} 1"));
  assert_true(metric("qpeer_relay_packets_total{direction=\"from_client\"} 1"));
  assert_true(metric("qpeer_relay_packets_total{direction=\"to_client\"} 1"));
  assert_true(metric("qpeer_relay_bytes_total{direction=\"to_client\"} 5"));
  /* SIGTERM with a tunnel open: GOAWAY, the tunnel still works, the
   * drain ends it with a FIN, clean exit. */
  assert_int_equal(drain_events, 2);
  /* The relay ends the request (FIN) and closes the connection with
   * H3_NO_ERROR at once; whichever the client reads first. */
  assert_true(drain_status == UV_EOF || drain_status == QPEER_EPEERCLOSED);
  assert_true(drain_echo_after_goaway);
  assert_non_null(strstr(log_buf, "sent GOAWAY"));
  assert_non_null(strstr(log_buf, "drain time over; ending 1 tunnels"));
  assert_true(proc_exited);
  assert_int_equal(proc_signal, 0);
  assert_int_equal(proc_status, 0);
  assert_non_null(strstr(log_buf, "shutting down (SIGTERM)"));
  assert_non_null(strstr(log_buf, "stopped"));
  rt_rmdir(dir);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_daemon),
  };
  if (argc < 2) {
    fprintf(stderr, "usage: %s PATH-TO-qpeer-relay\n", argv[0]);
    return 2;
  }
  relay_exe = argv[1];
  return cmocka_run_group_tests_name("relayd_daemon", tests, NULL, NULL);
}
