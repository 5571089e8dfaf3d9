/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for tools/relayd/metrics.c: the registry and its exact text
 * exposition (HELP/TYPE once per family, labels, escaping, overflow), the
 * relay's standard set, the request-head parser, and the HTTP server on
 * 127.0.0.1 port 0 fetched by a raw TCP client on another thread: GET and
 * HEAD /metrics, 404, 405, 400, 431, and the connection limit.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "metrics.h"
#include "relayd_test.h"

static void test_metrics_render(void **state) {
  relayd_metrics_t m;
  char buf[2048];
  uint64_t *a, *b, *g, *l1, *l2;
  int i;
  (void)state;
  relayd_metrics_init(&m);
  a = relayd_metrics_add(&m, "x_requests_total", "Requests.", RELAYD_COUNTER,
                         NULL, NULL);
  l1 = relayd_metrics_add(&m, "x_rejections_total", "Refusals.", RELAYD_COUNTER,
                          "reason", "token_expired");
  g = relayd_metrics_add(&m, "x_open", "Open now.\nSecond line \\ too.",
                         RELAYD_GAUGE, NULL, NULL);
  l2 = relayd_metrics_add(&m, "x_rejections_total", "Refusals.", RELAYD_COUNTER,
                          "reason", "odd\"value\\");
  assert_non_null(a);
  assert_non_null(l1);
  assert_non_null(g);
  assert_non_null(l2);
  /* Registering again returns the same series. */
  b = relayd_metrics_add(&m, "x_requests_total", "Requests.", RELAYD_COUNTER,
                         NULL, NULL);
  assert_ptr_equal(a, b);
  assert_ptr_equal(
      relayd_metrics_get(&m, "x_rejections_total", "token_expired"), l1);
  assert_null(relayd_metrics_get(&m, "x_rejections_total", "nope"));
  *a = 7;
  *l1 = 2;
  *l2 = 18446744073709551615ull;
  *g = 3;
  i = relayd_metrics_render(&m, buf, sizeof(buf));
  assert_int_equal(i, (int)strlen(buf));
  assert_string_equal(buf, "# HELP x_requests_total Requests.\n"
                           "# TYPE x_requests_total counter\n"
                           "x_requests_total 7\n"
                           "# HELP x_rejections_total Refusals.\n"
                           "# TYPE x_rejections_total counter\n"
                           "x_rejections_total{reason=\"token_expired\"} 2\n"
                           "x_rejections_total{reason=\"odd\\\"value\\\\\"} "
                           "18446744073709551615\n"
                           "# HELP x_open Open now.\\nSecond line \\\\ too.\n"
                           "# TYPE x_open gauge\n"
                           "x_open 3\n");
  /* Too small a buffer. */
  assert_int_equal(relayd_metrics_render(&m, buf, 40), -1);
  assert_int_equal(relayd_metrics_render(&m, buf, 0), -1);
}

static void test_metrics_registry_checks(void **state) {
  relayd_metrics_t m;
  char names[RELAYD_METRICS_MAX_SERIES + 1][16];
  int i;
  (void)state;
  relayd_metrics_init(&m);
  assert_null(relayd_metrics_add(&m, "9bad", "", RELAYD_COUNTER, NULL, NULL));
  assert_null(
      relayd_metrics_add(&m, "bad-name", "", RELAYD_COUNTER, NULL, NULL));
  assert_null(relayd_metrics_add(&m, "", "", RELAYD_COUNTER, NULL, NULL));
  assert_null(relayd_metrics_add(&m, "ok", "", RELAYD_COUNTER, "__x", "v"));
  assert_null(relayd_metrics_add(&m, "ok", "", RELAYD_COUNTER, "a:b", "v"));
  assert_null(relayd_metrics_add(&m, "ok", "", RELAYD_COUNTER, "l", NULL));
  assert_non_null(
      relayd_metrics_add(&m, "ns:ok", "", RELAYD_COUNTER, NULL, NULL));
  /* A family keeps its type and label name. */
  assert_non_null(relayd_metrics_add(&m, "fam", "", RELAYD_COUNTER, "l", "a"));
  assert_null(relayd_metrics_add(&m, "fam", "", RELAYD_GAUGE, "l", "b"));
  assert_null(relayd_metrics_add(&m, "fam", "", RELAYD_COUNTER, "k", "b"));
  /* Bounded. */
  relayd_metrics_init(&m);
  for (i = 0; i < RELAYD_METRICS_MAX_SERIES; i++) {
    snprintf(names[i], sizeof(names[i]), "m%d", i);
    assert_non_null(
        relayd_metrics_add(&m, names[i], "", RELAYD_GAUGE, NULL, NULL));
  }
  assert_null(relayd_metrics_add(&m, "one_more", "", RELAYD_GAUGE, NULL, NULL));
}

static void test_metrics_std(void **state) {
  static relayd_metrics_t m;
  relayd_metrics_std_t s;
  static char buf[RELAYD_METRICS_MAX_BODY];
  int i;
  (void)state;
  relayd_metrics_init(&m);
  assert_int_equal(relayd_metrics_std_init(&m, &s), 0);
  *s.tunnels_total = 5;
  *s.binds_active = 2;
  *s.bytes[RELAYD_DIR_TO_CLIENT] = 1200;
  *s.packets[RELAYD_DIR_FROM_CLIENT] = 9;
  *s.rejections[relayd_reject_by_name("token_wrong_scope")] += 1;
  *s.dropped[RELAYD_DROP_QUOTA] = 4;
  assert_true(relayd_metrics_render(&m, buf, sizeof(buf)) > 0);
  assert_non_null(strstr(buf, "\nqpeer_relay_tunnels_total 5\n"));
  assert_non_null(strstr(buf, "# TYPE qpeer_relay_tunnels_active gauge\n"));
  assert_non_null(strstr(buf, "\nqpeer_relay_binds_active 2\n"));
  assert_non_null(
      strstr(buf, "\nqpeer_relay_bytes_total{direction=\"to_client\"} 1200\n"));
  assert_non_null(strstr(
      buf, "\nqpeer_relay_packets_total{direction=\"from_client\"} 9\n"));
  assert_non_null(strstr(
      buf, "\nqpeer_relay_rejections_total{reason=\"token_wrong_scope\"} 1\n"));
  assert_non_null(
      strstr(buf, "\nqpeer_relay_dropped_packets_total{reason=\"quota\"} 4\n"));
  /* Each family's HELP appears once. */
  assert_null(strstr(strstr(buf, "# HELP qpeer_relay_rejections_total") + 1,
                     "# HELP qpeer_relay_rejections_total"));
  for (i = 0; i < RELAYD_REJECT__COUNT; i++)
    assert_int_equal(
        relayd_reject_by_name(relayd_reject_name((relayd_reject_reason)i)), i);
  assert_int_equal(relayd_reject_by_name("whatever"), RELAYD_REJECT_OTHER);
  assert_int_equal(relayd_reject_by_name(NULL), RELAYD_REJECT_OTHER);
}

static int parse(const char *req, int *head) {
  return relayd_metrics_http_parse(req, strlen(req), head);
}

static void test_metrics_http_parse(void **state) {
  char big[RELAYD_METRICS_MAX_REQUEST];
  int head;
  (void)state;
  assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &head),
                   200);
  assert_false(head);
  assert_int_equal(parse("GET /metrics?x=1 HTTP/1.0\r\n\r\n", &head), 200);
  assert_int_equal(parse("HEAD /metrics HTTP/1.1\r\n\r\n", &head), 200);
  assert_true(head);
  assert_int_equal(parse("GET /metrics HTTP/1.1\n\n", &head), 200);
  assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", &head), 0);
  assert_int_equal(parse("", &head), 0);
  assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n", &head), 404);
  assert_int_equal(parse("GET /metricsx HTTP/1.1\r\n\r\n", &head), 404);
  assert_int_equal(parse("GET /metrics/ HTTP/1.1\r\n\r\n", &head), 404);
  assert_int_equal(parse("POST /metrics HTTP/1.1\r\n\r\n", &head), 405);
  assert_int_equal(parse("GET http://x/metrics HTTP/1.1\r\n\r\n", &head), 400);
  assert_int_equal(parse("GET /metrics HTTP/2.0\r\n\r\n", &head), 400);
  assert_int_equal(parse("GET /metrics\r\n\r\n", &head), 400);
  assert_int_equal(parse("GET  /metrics HTTP/1.1\r\n\r\n", &head), 400);
  assert_int_equal(parse("\r\n\r\n", &head), 400);
  memset(big, 'a', sizeof(big));
  assert_int_equal(relayd_metrics_http_parse(big, sizeof(big), &head), 431);
  assert_int_equal(relayd_metrics_http_parse(big, sizeof(big) - 1, &head), 0);
}

/* ---- the server, fetched over loopback ----------------------------------- */

typedef struct {
  uint16_t port;   /* the server's port */
  uv_async_t done; /* client finished */
  int refreshes;   /* refresh_cb calls */
  int closed;      /* close_cb calls */
  relayd_metrics_server_t srv;
  relayd_metrics_t m;
  relayd_metrics_std_t s;
  char resp[6][RELAYD_METRICS_MAX_BODY]; /* responses by test step */
  int limit_closed;       /* idle sockets the server closed at once */
  int after_limit_status; /* status of a GET after the limit test */
} fixture;

static int connect_local(uint16_t port) {
  struct sockaddr_in a;
  struct timeval tv = {5, 0};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* fetch sends |req| raw and reads until the server closes. */
static void fetch(uint16_t port, const char *req, size_t reqlen, char *out,
                  size_t cap) {
  size_t n = 0;
  ssize_t r;
  int fd = connect_local(port);
  out[0] = '\0';
  if (fd < 0)
    return;
  if (send(fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen) {
    close(fd);
    return;
  }
  while (n + 1 < cap && (r = recv(fd, out + n, cap - 1 - n, 0)) > 0)
    n += (size_t)r;
  out[n] = '\0';
  close(fd);
}

static void *client_thread(void *arg) {
  fixture *f = arg;
  static char big[RELAYD_METRICS_MAX_REQUEST + 10];
  int idle[RELAYD_METRICS_MAX_CONNS + 4], i, tries;
  const char *get = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  fetch(f->port, get, strlen(get), f->resp[0], sizeof(f->resp[0]));
  fetch(f->port, "GET /nope HTTP/1.1\r\n\r\n", 22, f->resp[1],
        sizeof(f->resp[1]));
  fetch(f->port, "HEAD /metrics HTTP/1.1\r\n\r\n", 26, f->resp[2],
        sizeof(f->resp[2]));
  fetch(f->port, "DELETE /metrics HTTP/1.1\r\n\r\n", 28, f->resp[3],
        sizeof(f->resp[3]));
  memset(big, 'x', sizeof(big));
  memcpy(big, "GET /metrics HTTP/1.1\r\nX-Pad: ", 30);
  fetch(f->port, big, sizeof(big), f->resp[4], sizeof(f->resp[4]));
  /* Hold more idle connections than allowed: the extra ones are closed
   * at once; once the idle ones go away, service resumes. */
  for (i = 0; i < RELAYD_METRICS_MAX_CONNS + 4; i++)
    idle[i] = connect_local(f->port);
  for (i = 0; i < RELAYD_METRICS_MAX_CONNS + 4; i++) {
    char c;
    struct timeval tv = {0, 100000};
    setsockopt(idle[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (idle[i] >= 0 && recv(idle[i], &c, 1, 0) == 0)
      f->limit_closed++;
  }
  for (i = 0; i < RELAYD_METRICS_MAX_CONNS + 4; i++)
    if (idle[i] >= 0)
      close(idle[i]);
  for (tries = 0; tries < 100; tries++) {
    fetch(f->port, get, strlen(get), f->resp[5], sizeof(f->resp[5]));
    if (!strncmp(f->resp[5], "HTTP/1.1 200 ", 13))
      break;
    usleep(20000);
  }
  uv_async_send(&f->done);
  return NULL;
}

static void on_refresh(relayd_metrics_server_t *srv) {
  fixture *f = srv->data;
  f->refreshes++;
  *f->s.tunnels_active = (uint64_t)f->refreshes;
}

static void on_server_closed(relayd_metrics_server_t *srv) {
  fixture *f = srv->data;
  f->closed++;
}

static void on_done(uv_async_t *a) {
  fixture *f = a->data;
  relayd_metrics_server_close(&f->srv, on_server_closed);
  uv_close((uv_handle_t *)a, NULL);
}

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  fail_msg("metrics server test timed out");
}

/* body_of returns the body of an HTTP response, or NULL. */
static const char *body_of(const char *resp) {
  const char *p = strstr(resp, "\r\n\r\n");
  return p ? p + 4 : NULL;
}

static void test_metrics_server(void **state) {
  static fixture f;
  uv_loop_t loop;
  uv_timer_t watchdog;
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  pthread_t th;
  const char *body;
  char want[64];
  (void)state;
  memset(&f, 0, sizeof(f));
  assert_int_equal(uv_loop_init(&loop), 0);
  relayd_metrics_init(&f.m);
  assert_int_equal(relayd_metrics_std_init(&f.m, &f.s), 0);
  *f.s.tunnels_total = 42;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  f.srv.data = &f;
  assert_int_equal(relayd_metrics_server_start(&f.srv, &loop,
                                               (struct sockaddr *)&addr, &f.m,
                                               on_refresh),
                   0);
  assert_ptr_equal(f.srv.data, &f);
  assert_int_equal(relayd_metrics_server_get_addr(&f.srv, &bound), 0);
  f.port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
  assert_true(f.port != 0);
  assert_int_equal(uv_async_init(&loop, &f.done, on_done), 0);
  f.done.data = &f;
  uv_timer_init(&loop, &watchdog);
  uv_timer_start(&watchdog, on_watchdog, 30000, 0);
  uv_unref((uv_handle_t *)&watchdog);
  assert_int_equal(pthread_create(&th, NULL, client_thread, &f), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  pthread_join(th, NULL);
  assert_int_equal(f.closed, 1);

  /* GET /metrics */
  assert_memory_equal(f.resp[0], "HTTP/1.1 200 OK\r\n", 17);
  assert_non_null(strstr(f.resp[0], "\r\nContent-Type: text/plain; "
                                    "version=0.0.4; charset=utf-8\r\n"));
  assert_non_null(strstr(f.resp[0], "\r\nConnection: close\r\n"));
  body = body_of(f.resp[0]);
  assert_non_null(body);
  snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", strlen(body));
  assert_non_null(strstr(f.resp[0], want));
  assert_non_null(strstr(body, "# TYPE qpeer_relay_tunnels_total counter\n"
                               "qpeer_relay_tunnels_total 42\n"));
  assert_non_null(strstr(body, "\nqpeer_relay_tunnels_active 1\n"));
  /* 404 */
  assert_memory_equal(f.resp[1], "HTTP/1.1 404 Not Found\r\n", 24);
  /* HEAD: headers only, with the GET length. */
  assert_memory_equal(f.resp[2], "HTTP/1.1 200 OK\r\n", 17);
  assert_string_equal(body_of(f.resp[2]), "");
  /* 405 with Allow. */
  assert_memory_equal(f.resp[3], "HTTP/1.1 405 Method Not Allowed\r\n", 33);
  assert_non_null(strstr(f.resp[3], "\r\nAllow: GET, HEAD\r\n"));
  /* 431 for an endless head. */
  assert_memory_equal(f.resp[4], "HTTP/1.1 431 ", 13);
  /* The connection limit. */
  assert_true(f.limit_closed >= 4);
  assert_memory_equal(f.resp[5], "HTTP/1.1 200 OK\r\n", 17);
  assert_int_equal(f.srv.requests, (uint64_t)f.refreshes + 3);

  uv_close((uv_handle_t *)&watchdog, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void on_nothing(relayd_metrics_server_t *srv) { (void)srv; }

static void test_metrics_server_bind_error(void **state) {
  relayd_metrics_server_t a, b;
  relayd_metrics_t m;
  uv_loop_t loop;
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  (void)state;
  relayd_metrics_init(&m);
  assert_int_equal(uv_loop_init(&loop), 0);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  memset(&a, 0, sizeof(a));
  memset(&b, 0, sizeof(b));
  assert_int_equal(relayd_metrics_server_start(
                       &a, &loop, (struct sockaddr *)&addr, &m, NULL),
                   0);
  assert_int_equal(relayd_metrics_server_get_addr(&a, &bound), 0);
  /* The same port again fails, and leaves nothing behind. */
  assert_true(relayd_metrics_server_start(&b, &loop, (struct sockaddr *)&bound,
                                          &m, NULL) < 0);
  relayd_metrics_server_close(&b, on_nothing);
  relayd_metrics_server_close(&a, NULL);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metrics_render),
      cmocka_unit_test(test_metrics_registry_checks),
      cmocka_unit_test(test_metrics_std),
      cmocka_unit_test(test_metrics_http_parse),
      cmocka_unit_test(test_metrics_server),
      cmocka_unit_test(test_metrics_server_bind_error),
  };
  return cmocka_run_group_tests_name("relayd_metrics", tests, NULL, NULL);
}
