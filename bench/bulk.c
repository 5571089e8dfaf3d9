/* SPDX-License-Identifier: MIT */
/* The shared bulk sender (see bulk.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulk.h"

#define WCHUNK (1 << 20)
#define WDEPTH 8

static struct {
  uv_loop_t loop;            /* client loop */
  qpeer_endpoint_t ep;       /* client endpoint */
  qpeer_conn_t conn;         /* client connection */
  qpeer_connect_t req;       /* connect request */
  qpeer_stream_t st;         /* bulk stream */
  qpeer_write_t w[WDEPTH];   /* writes in flight */
  qpeer_shutdown_t sh;       /* FIN */
  uint8_t *buf;              /* the data (reused) */
  uint64_t total, queued;    /* target and progress */
  double t0, t1;             /* start and end */
} B;

static double now_s(void) { return (double)uv_hrtime() / 1e9; }

static void die(const char *what, int r) {
  fprintf(stderr, "bench: %s: %s (%s)\n", what, qpeer_err_name(r),
          qpeer_strerror(r));
  exit(1);
}

static void pump(void);

static void on_written(qpeer_write_t *w, int status) {
  w->data = NULL;
  if (status != 0)
    die("write", status);
  pump();
}

qpeer_conn_stats_t bench_bulk_last_stats;

static void on_shut(qpeer_shutdown_t *r, int status) {
  (void)r;
  if (status != 0)
    die("shutdown", status);
  B.t1 = now_s();
  qpeer_conn_get_stats(&B.conn, &bench_bulk_last_stats);
  qpeer_close((qpeer_handle_t *)&B.st, NULL);
  qpeer_close((qpeer_handle_t *)&B.conn, NULL);
  qpeer_close((qpeer_handle_t *)&B.ep, NULL);
}

static void pump(void) {
  int i, r;
  for (i = 0; i < WDEPTH && B.queued < B.total; i++) {
    uv_buf_t b;
    if (B.w[i].data)
      continue;
    b = uv_buf_init((char *)B.buf, WCHUNK);
    B.w[i].data = &B;
    if ((r = qpeer_stream_write(&B.w[i], &B.st, &b, 1, on_written)) != 0)
      die("write", r);
    B.queued += WCHUNK;
  }
  if (B.queued >= B.total && !B.sh.data) {
    B.sh.data = &B;
    if ((r = qpeer_stream_shutdown(&B.sh, &B.st, on_shut)) != 0)
      die("shutdown", r);
  }
}

static void on_connected(qpeer_connect_t *req, int status) {
  int r;
  (void)req;
  if (status != 0)
    die("connect", status);
  if ((r = qpeer_stream_open(&B.conn, &B.st, QPEER_STREAM_BIDI)) != 0)
    die("stream", r);
  B.t0 = now_s();
  pump();
}

void bench_bulk_send(uint64_t bytes, const struct sockaddr *to,
                     const qpeer_peer_id_t *pid, const char *alpn,
                     double *pt0, double *pt1) {
  qpeer_endpoint_options_t eo;
  qpeer_connect_options_t co;
  struct sockaddr_storage b;
  const char *alpns[1];
  int r;
  memset(&B, 0, sizeof(B));
  B.total = (bytes + WCHUNK - 1) / WCHUNK * WCHUNK;
  B.buf = malloc(WCHUNK);
  if (!B.buf)
    die("malloc", UV_ENOMEM);
  memset(B.buf, 0x5a, WCHUNK);
  uv_loop_init(&B.loop);
  qpeer_endpoint_options_default(&eo);
  qpeer_addr_parse(&b, "127.0.0.1:0");
  eo.bind_addr = (struct sockaddr *)&b;
  eo.stream_window = 16u << 20;
  eo.conn_window = 64u << 20;
  if ((r = qpeer_endpoint_init(&B.loop, &B.ep, &eo)) != 0)
    die("client endpoint", r);
  alpns[0] = alpn;
  qpeer_connect_options_default(&co);
  co.remote = to;
  co.alpn = alpns;
  co.nalpn = 1;
  co.peer_id = pid;
  if ((r = qpeer_connect(&B.req, &B.ep, &B.conn, &co, on_connected)) != 0)
    die("connect", r);
  uv_run(&B.loop, UV_RUN_DEFAULT);
  uv_loop_close(&B.loop);
  free(B.buf);
  *pt0 = B.t0;
  *pt1 = B.t1;
}

/* ---- the receiving side --------------------------------------------------- */

typedef struct sink {
  qpeer_conn_t c;     /* accepted connection */
  qpeer_stream_t s;   /* its stream */
  uint64_t *received; /* where bytes are counted */
} sink;

static void sink_free(qpeer_handle_t *h) { free(h->data); }

static void sink_read(qpeer_stream_t *s, ssize_t n, const uint8_t *d) {
  sink *k = s->data;
  (void)d;
  if (n > 0)
    *k->received += (uint64_t)n;
}

static void sink_on_stream(qpeer_conn_t *c, int status) {
  sink *k = c->data;
  if (status == 0 && qpeer_conn_accept_stream(c, &k->s) == 0) {
    k->s.data = k;
    qpeer_stream_read_start(&k->s, sink_read);
  }
}

static void sink_on_closed(qpeer_conn_t *c, int status,
                           const qpeer_close_info_t *i) {
  (void)status;
  (void)i;
  qpeer_close((qpeer_handle_t *)c, sink_free);
}

int bench_sink_accept(qpeer_endpoint_t *ep, uint64_t *received) {
  sink *k = calloc(1, sizeof(*k));
  qpeer_conn_callbacks_t cbs;
  int r;
  if (!k)
    return UV_ENOMEM;
  if ((r = qpeer_endpoint_accept(ep, &k->c)) != 0) {
    free(k);
    return r;
  }
  k->received = received;
  k->c.data = k;
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_stream = sink_on_stream;
  cbs.on_closed = sink_on_closed;
  return qpeer_conn_set_callbacks(&k->c, &cbs);
}
