/* SPDX-License-Identifier: MIT */
/*
 * Loopback transfers checked end to end with SHA-256: 64 MiB over one
 * stream (direct, and through a forwarder that drops 5% and reorders),
 * many small streams, datagrams, and 200 concurrent connections on one
 * server endpoint.
 */
#include <gnutls/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "udpfw.h"
#include "util.h"
#include "qpeer.h"

#define CHUNK (256 * 1024)
#define MAX_OUTSTANDING 16
#define MAX_STREAMS 64
#define MAX_CONNS 200
#define QPEER_TEST_MIN(a, b) ((a) < (b) ? (a) : (b))

static const char *alpn[] = {"qpeer-test"};
static uv_loop_t loop;
static qpeer_endpoint_t srv_ep, cli_ep;
static qpt_udpfw fw;
static int use_fw;
static const char *qlog_dir; /* qlog for the client, or NULL */
static uint64_t last_lost;   /* client's packets_lost at the end */

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

/* One logical transfer: a client stream that sends |total| bytes and a
 * server stream that receives and hashes them. */
typedef struct xfer {
  qpeer_stream_t cs;               /* client stream */
  qpeer_stream_t ss;               /* server stream */
  qpeer_write_t w[MAX_OUTSTANDING]; /* write requests */
  uint8_t *bufs[MAX_OUTSTANDING];  /* their buffers */
  int busy[MAX_OUTSTANDING];       /* request in flight */
  qpeer_shutdown_t sh;             /* FIN */
  uint64_t total;                  /* bytes to send */
  uint64_t queued;                 /* bytes queued so far */
  uint64_t received;               /* bytes received by the server */
  uint64_t rng;                    /* data generator */
  gnutls_hash_hd_t tx_hash, rx_hash; /* SHA-256 both ends */
  int done;                        /* EOF seen by the server */
  int shut;                        /* shutdown completed */
  uint8_t hdr[4];                  /* transfer index header */
  qpeer_write_t hw;                /* its write request */
} xfer;

/* Server side of one stream: the first 4 bytes name the transfer. */
typedef struct sstream {
  qpeer_stream_t s;                /* server stream handle */
  uint8_t hdr[4];                  /* transfer index, big endian */
  size_t hdrlen;                   /* header bytes received */
  xfer *x;                         /* the transfer, once known */
} sstream;

static sstream *sstreams;
static size_t nsstreams;
static xfer *xfers;
static size_t nxfers, xfers_done, shuts_done, closes;
static qpeer_conn_t *srv_conns, *cli_conns;
static qpeer_connect_t *creqs;
static size_t nconns, nconns_up, naccepted;

static void on_close(qpeer_handle_t *h) {
  (void)h;
  closes++;
}

static void pump(xfer *x);
static void maybe_finish(void);

static void on_write(qpeer_write_t *req, int status) {
  xfer *x = req->data;
  size_t i = (size_t)(req - x->w);
  assert_int_equal(status, 0);
  x->busy[i] = 0;
  pump(x);
}

static void on_hdr(qpeer_write_t *req, int status) {
  (void)req;
  assert_int_equal(status, 0);
}

static void on_shut(qpeer_shutdown_t *req, int status) {
  xfer *x = req->data;
  assert_int_equal(status, 0);
  x->shut = 1;
  shuts_done++;
  maybe_finish();
}

static void pump(xfer *x) {
  size_t i;
  for (i = 0; i < MAX_OUTSTANDING && x->queued < x->total; i++) {
    size_t n;
    uv_buf_t b;
    if (x->busy[i])
      continue;
    n = (size_t)QPEER_TEST_MIN(CHUNK, x->total - x->queued);
    fill(x->bufs[i], n, &x->rng);
    gnutls_hash(x->tx_hash, x->bufs[i], n);
    b = uv_buf_init((char *)x->bufs[i], (unsigned)n);
    x->w[i].data = x;
    assert_int_equal(qpeer_stream_write(&x->w[i], &x->cs, &b, 1, on_write),
                     0);
    x->busy[i] = 1;
    x->queued += n;
  }
  if (x->queued == x->total && !x->sh.data) {
    x->sh.data = x;
    assert_int_equal(qpeer_stream_shutdown(&x->sh, &x->cs, on_shut), 0);
  }
}

static void maybe_finish(void);

static void srv_read(qpeer_stream_t *s, ssize_t n, const uint8_t *data) {
  sstream *ss = s->data;
  xfer *x = ss->x;
  if (n > 0 && ss->hdrlen < 4) {
    size_t k = QPEER_TEST_MIN(4 - ss->hdrlen, (size_t)n);
    memcpy(ss->hdr + ss->hdrlen, data, k);
    ss->hdrlen += k;
    data += k;
    n -= (ssize_t)k;
    if (ss->hdrlen == 4) {
      uint32_t idx = ((uint32_t)ss->hdr[0] << 24) | (ss->hdr[1] << 16) |
                     (ss->hdr[2] << 8) | ss->hdr[3];
      assert_true(idx < nxfers);
      x = ss->x = &xfers[idx];
    }
    if (n == 0)
      return;
  }
  assert_non_null(x);
  if (n == UV_EOF) {
    uint8_t a[32], b[32];
    gnutls_hash_output(x->tx_hash, a);
    gnutls_hash_output(x->rx_hash, b);
    assert_true(x->received == x->total);
    assert_memory_equal(a, b, 32);
    x->done = 1;
    xfers_done++;
    maybe_finish();
    return;
  }
  assert_true(n > 0);
  gnutls_hash(x->rx_hash, data, (size_t)n);
  x->received += (uint64_t)n;
}

static void srv_on_stream(qpeer_conn_t *c, int status) {
  sstream *ss;
  assert_int_equal(status, 0);
  assert_true(nsstreams < nxfers);
  ss = &sstreams[nsstreams++];
  assert_int_equal(qpeer_conn_accept_stream(c, &ss->s), 0);
  ss->s.data = ss;
  assert_int_equal(qpeer_stream_read_start(&ss->s, srv_read), 0);
}

static void maybe_finish(void) {
  size_t i;
  qpeer_conn_stats_t st;
  if (xfers_done < nxfers || shuts_done < nxfers)
    return;
  assert_int_equal(qpeer_conn_get_stats(&cli_conns[0], &st), 0);
  last_lost = st.packets_lost;
  assert_true(st.bytes_sent > 0 && st.packets_sent > 0);
  assert_true(st.smoothed_rtt_us > 0);
  for (i = 0; i < nxfers; i++) {
    qpeer_close((qpeer_handle_t *)&xfers[i].cs, on_close);
    qpeer_close((qpeer_handle_t *)&sstreams[i].s, on_close);
  }
  qpeer_close((qpeer_handle_t *)&srv_ep, on_close);
  qpeer_close((qpeer_handle_t *)&cli_ep, on_close);
  if (use_fw)
    qpt_udpfw_stop(&fw);
}

static void on_connection(qpeer_endpoint_t *ep, int status) {
  qpeer_conn_callbacks_t cbs;
  assert_int_equal(status, 0);
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_stream = srv_on_stream;
  assert_int_equal(qpeer_endpoint_accept(ep, &srv_conns[naccepted]), 0);
  assert_int_equal(qpeer_conn_set_callbacks(&srv_conns[naccepted], &cbs), 0);
  naccepted++;
}

static void on_connect(qpeer_connect_t *req, int status) {
  size_t i;
  assert_int_equal(status, 0);
  nconns_up++;
  /* Each connection carries nxfers / nconns transfers. */
  for (i = 0; i < nxfers; i++) {
    xfer *x = &xfers[i];
    if (&cli_conns[i % nconns] != req->conn)
      continue;
    assert_int_equal(qpeer_stream_open(req->conn, &x->cs, QPEER_STREAM_BIDI),
                     0);
    x->hdr[0] = (uint8_t)(i >> 24);
    x->hdr[1] = (uint8_t)(i >> 16);
    x->hdr[2] = (uint8_t)(i >> 8);
    x->hdr[3] = (uint8_t)i;
    {
      uv_buf_t b = uv_buf_init((char *)x->hdr, 4);
      x->hw.data = x;
      assert_int_equal(qpeer_stream_write(&x->hw, &x->cs, &b, 1, on_hdr), 0);
    }
    pump(x);
  }
}

static void run_transfers(size_t n_conns, size_t n_xfers, uint64_t each,
                          unsigned drop, unsigned reorder) {
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_connect_options_t co;
  struct sockaddr_storage addr, bind4;
  uv_timer_t wd;
  size_t i, j;

  closes = xfers_done = shuts_done = nconns_up = naccepted = 0;
  nconns = n_conns;
  nxfers = n_xfers;
  use_fw = drop || reorder;
  xfers = calloc(n_xfers, sizeof(*xfers));
  sstreams = calloc(n_xfers, sizeof(*sstreams));
  nsstreams = 0;
  srv_conns = calloc(n_conns, sizeof(*srv_conns));
  cli_conns = calloc(n_conns, sizeof(*cli_conns));
  creqs = calloc(n_conns, sizeof(*creqs));
  assert_non_null(xfers);
  for (i = 0; i < n_xfers; i++) {
    xfers[i].total = each;
    xfers[i].rng = 0x9e3779b97f4a7c15ULL + i;
    for (j = 0; j < MAX_OUTSTANDING; j++)
      xfers[i].bufs[j] = malloc(CHUNK);
    gnutls_hash_init(&xfers[i].tx_hash, GNUTLS_DIG_SHA256);
    gnutls_hash_init(&xfers[i].rx_hash, GNUTLS_DIG_SHA256);
  }
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &wd, 240000);
  qpeer_endpoint_options_default(&eo);
  qpeer_addr_parse(&bind4, "127.0.0.1:0");
  eo.bind_addr = (struct sockaddr *)&bind4;
  eo.retry_mode = QPEER_RETRY_NEVER;
  assert_int_equal(qpeer_endpoint_init(&loop, &srv_ep, &eo), 0);
  eo.qlog_dir = qlog_dir;
  assert_int_equal(qpeer_endpoint_init(&loop, &cli_ep, &eo), 0);
  eo.qlog_dir = NULL;
  qpeer_listen_options_default(&lo);
  lo.alpn = alpn;
  lo.nalpn = 1;
  lo.backlog = MAX_CONNS;
  assert_int_equal(qpeer_endpoint_listen(&srv_ep, &lo, on_connection), 0);
  assert_int_equal(qpeer_endpoint_get_local_addr(&srv_ep, &addr), 0);
  if (use_fw) {
    assert_int_equal(qpt_udpfw_start(&fw, &loop, (struct sockaddr *)&bind4,
                                     (struct sockaddr *)&addr, drop, reorder,
                                     12345),
                     0);
    qpt_udpfw_addr(&fw, &addr);
  }
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)&addr;
  co.alpn = alpn;
  co.nalpn = 1;
  co.peer_id = qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&srv_ep));
  for (i = 0; i < n_conns; i++)
    assert_int_equal(
        qpeer_connect(&creqs[i], &cli_ep, &cli_conns[i], &co, on_connect), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(nconns_up, n_conns);
  assert_int_equal(naccepted, n_conns);
  assert_int_equal(xfers_done, n_xfers);
  assert_int_equal(closes, 2 * n_xfers + 2);
  for (i = 0; i < n_xfers; i++) {
    assert_true(xfers[i].shut);
    for (j = 0; j < MAX_OUTSTANDING; j++)
      free(xfers[i].bufs[j]);
    gnutls_hash_deinit(xfers[i].tx_hash, NULL);
    gnutls_hash_deinit(xfers[i].rx_hash, NULL);
  }
  if (use_fw)
    assert_true(fw.dropped > 0);
  qpt_loop_teardown(&loop);
  free(xfers);
  free(sstreams);
  free(srv_conns);
  free(cli_conns);
  free(creqs);
}

static void test_transfer_64mib(void **state) {
  (void)state;
  run_transfers(1, 1, 64ull << 20, 0, 0);
}

static void test_transfer_64mib_lossy(void **state) {
  (void)state;
  run_transfers(1, 1, 64ull << 20, 50, 20);
}

static void test_transfer_many_streams(void **state) {
  (void)state;
  run_transfers(1, MAX_STREAMS * 4, 4096 + 17, 0, 0);
}

static void test_transfer_many_streams_lossy(void **state) {
  char dir[256];
  (void)state;
  /* With qlog on, losses are counted: 5% drop must show up. */
  qpt_tmpdir(dir, sizeof(dir));
  qlog_dir = dir;
  run_transfers(1, MAX_STREAMS * 4, 3000, 50, 20);
  qlog_dir = NULL;
  assert_true(last_lost > 0);
  qpt_rmtree(dir);
}

static void test_transfer_200_conns(void **state) {
  (void)state;
  run_transfers(MAX_CONNS, MAX_CONNS, 10000, 0, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_transfer_64mib),
      cmocka_unit_test(test_transfer_many_streams),
      cmocka_unit_test(test_transfer_200_conns),
      cmocka_unit_test(test_transfer_many_streams_lossy),
      cmocka_unit_test(test_transfer_64mib_lossy),
  };
  return cmocka_run_group_tests_name("transfer", tests, NULL, NULL);
}
