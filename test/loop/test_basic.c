/* SPDX-License-Identifier: MIT */
/* Loopback: handshake in pinned-peer-ID mode, one stream echo, datagram,
 * graceful close; every callback counted, loop closes cleanly. */
#include <string.h>

#include "util.h"
#include "qpeer.h"

static uv_loop_t loop;
static qpeer_endpoint_t srv_ep, cli_ep;
static qpeer_conn_t srv_conn, cli_conn;
static qpeer_stream_t srv_st, cli_st;
static qpeer_connect_t creq;
static qpeer_write_t wreq, ereq;
static qpeer_shutdown_t sreq, ssreq;
static int connect_cb_called, connection_cb_called, srv_stream_cb_called;
static int cli_read_eof, srv_read_eof, write_cb_called, close_cb_called;
static int dgram_cb_called, shutdown_cb_called;
static char srv_got[64], cli_got[64];
static size_t srv_got_len, cli_got_len;
static const char *alpn[] = {"qpeer-test"};

static void on_close(qpeer_handle_t *h) {
  (void)h;
  close_cb_called++;
}

static int cli_shut_done;

/* The client closes once it has the echo and its own FIN is acknowledged:
 * closing earlier could cancel its own unacknowledged write. */
static void cli_maybe_close(void) {
  if (cli_read_eof && cli_shut_done)
    assert_int_equal(qpeer_conn_shutdown(&cli_conn, 7, "done"), 0);
}

static void on_shutdown(qpeer_shutdown_t *req, int status) {
  assert_int_equal(status, 0);
  (void)req;
  shutdown_cb_called++;
  cli_shut_done = 1;
  cli_maybe_close();
}

static void on_write(qpeer_write_t *req, int status) {
  assert_int_equal(status, 0);
  (void)req;
  write_cb_called++;
}

/* The client closes the connection as soon as it has the echo, so the
 * server may never see the acknowledgement of its last bytes: its requests
 * complete with 0 or with the client's close. Either way exactly once. */
static void srv_on_shutdown(qpeer_shutdown_t *req, int status) {
  assert_true(status == 0 || status == QPEER_EAPPCLOSE);
  (void)req;
  shutdown_cb_called++;
}

static void srv_on_write(qpeer_write_t *req, int status) {
  assert_true(status == 0 || status == QPEER_EAPPCLOSE);
  (void)req;
  write_cb_called++;
}

static void srv_read(qpeer_stream_t *s, ssize_t n, const uint8_t *data) {
  if (n == UV_EOF) {
    uv_buf_t b = uv_buf_init(srv_got, (unsigned)srv_got_len);
    srv_read_eof++;
    assert_int_equal(qpeer_stream_write(&ereq, s, &b, 1, srv_on_write), 0);
    assert_int_equal(qpeer_stream_shutdown(&ssreq, s, srv_on_shutdown), 0);
    return;
  }
  assert_true(n > 0);
  memcpy(srv_got + srv_got_len, data, (size_t)n);
  srv_got_len += (size_t)n;
}

static void cli_read(qpeer_stream_t *s, ssize_t n, const uint8_t *data) {
  (void)s;
  if (n == UV_EOF) {
    cli_read_eof++;
    cli_maybe_close();
    return;
  }
  assert_true(n > 0);
  memcpy(cli_got + cli_got_len, data, (size_t)n);
  cli_got_len += (size_t)n;
}

static void srv_on_stream(qpeer_conn_t *c, int status) {
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_conn_accept_stream(c, &srv_st), 0);
  assert_int_equal(qpeer_stream_read_start(&srv_st, srv_read), 0);
  srv_stream_cb_called++;
}

static void srv_on_dgram(qpeer_conn_t *c, const uint8_t *d, size_t n) {
  (void)c;
  assert_int_equal(n, 5);
  assert_memory_equal(d, "hello", 5);
  dgram_cb_called++;
}

static void srv_on_closed(qpeer_conn_t *c, int status,
                          const qpeer_close_info_t *info) {
  assert_int_equal(status, QPEER_EAPPCLOSE);
  assert_int_equal(info->kind, QPEER_CLOSE_APPLICATION);
  assert_true(info->remote);
  assert_true(info->code == 7);
  assert_int_equal(info->reasonlen, 4);
  assert_memory_equal(info->reason, "done", 4);
  qpeer_close((qpeer_handle_t *)&srv_st, on_close);
  qpeer_close((qpeer_handle_t *)c, on_close);
  qpeer_close((qpeer_handle_t *)&srv_ep, on_close);
}

static void cli_on_closed(qpeer_conn_t *c, int status,
                          const qpeer_close_info_t *info) {
  assert_int_equal(status, 0);
  assert_int_equal(info->kind, QPEER_CLOSE_LOCAL);
  qpeer_close((qpeer_handle_t *)&cli_st, on_close);
  qpeer_close((qpeer_handle_t *)c, on_close);
  qpeer_close((qpeer_handle_t *)&cli_ep, on_close);
}

static void on_connection(qpeer_endpoint_t *ep, int status) {
  qpeer_conn_callbacks_t cbs;
  qpeer_peer_id_t pid;
  assert_int_equal(status, 0);
  assert_int_equal(qpeer_endpoint_accept(ep, &srv_conn), 0);
  assert_int_equal(qpeer_endpoint_accept(ep, &srv_conn), UV_EAGAIN);
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_stream = srv_on_stream;
  cbs.on_datagram = srv_on_dgram;
  cbs.on_closed = srv_on_closed;
  assert_int_equal(qpeer_conn_set_callbacks(&srv_conn, &cbs), 0);
  assert_int_equal(qpeer_conn_get_peer_id(&srv_conn, &pid), 0);
  assert_true(qpeer_peer_id_equal(
      &pid, qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&cli_ep))));
  assert_string_equal(qpeer_conn_get_alpn(&srv_conn), "qpeer-test");
  connection_cb_called++;
}

static void on_connect(qpeer_connect_t *req, int status) {
  qpeer_conn_callbacks_t cbs;
  uv_buf_t b = uv_buf_init((char *)"ping pong", 9);
  assert_int_equal(status, 0);
  assert_ptr_equal(req->conn, &cli_conn);
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_closed = cli_on_closed;
  assert_int_equal(qpeer_conn_set_callbacks(&cli_conn, &cbs), 0);
  assert_true(qpeer_conn_get_max_datagram_size(&cli_conn) >= 1000);
  assert_int_equal(
      qpeer_conn_send_datagram(&cli_conn, (const uint8_t *)"hello", 5), 0);
  assert_int_equal(qpeer_stream_open(&cli_conn, &cli_st, QPEER_STREAM_BIDI),
                   0);
  assert_int_equal(qpeer_stream_read_start(&cli_st, cli_read), 0);
  assert_int_equal(qpeer_stream_write(&wreq, &cli_st, &b, 1, on_write), 0);
  assert_int_equal(qpeer_stream_shutdown(&sreq, &cli_st, on_shutdown), 0);
  connect_cb_called++;
}

static void test_basic_echo(void **state) {
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_connect_options_t co;
  struct sockaddr_storage addr, bind4;
  uv_timer_t wd;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &wd, 20000);
  qpeer_endpoint_options_default(&eo);
  qpeer_addr_parse(&bind4, "127.0.0.1:0");
  eo.bind_addr = (struct sockaddr *)&bind4;
  assert_int_equal(qpeer_endpoint_init(&loop, &srv_ep, &eo), 0);
  assert_int_equal(qpeer_endpoint_init(&loop, &cli_ep, &eo), 0);
  qpeer_listen_options_default(&lo);
  lo.alpn = alpn;
  lo.nalpn = 1;
  assert_int_equal(qpeer_endpoint_listen(&srv_ep, &lo, on_connection), 0);
  assert_int_equal(qpeer_endpoint_get_local_addr(&srv_ep, &addr), 0);
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)&addr;
  co.alpn = alpn;
  co.nalpn = 1;
  co.peer_id = qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&srv_ep));
  assert_int_equal(qpeer_connect(&creq, &cli_ep, &cli_conn, &co, on_connect),
                   0);
  assert_int_equal(connect_cb_called, 0); /* never re-entrant */
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(connect_cb_called, 1);
  assert_int_equal(connection_cb_called, 1);
  assert_int_equal(srv_stream_cb_called, 1);
  assert_int_equal(dgram_cb_called, 1);
  assert_int_equal(srv_read_eof, 1);
  assert_int_equal(cli_read_eof, 1);
  assert_int_equal(write_cb_called, 2);
  assert_int_equal(shutdown_cb_called, 2);
  assert_int_equal(close_cb_called, 6);
  assert_int_equal(srv_got_len, 9);
  assert_memory_equal(srv_got, "ping pong", 9);
  assert_int_equal(cli_got_len, 9);
  qpt_loop_teardown(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic_echo),
  };
  return cmocka_run_group_tests_name("basic", tests, NULL, NULL);
}
