/* SPDX-License-Identifier: MIT */
/*
 * qpeer-bench: figures for doc/benchmarks.md, measured in one run.
 *   bulk        BYTES over one stream on loopback (server and client each
 *               on their own thread and loop), and raw batched UDP
 *               throughput with the same datagram size on the same two
 *               threads; prints both and their ratio.
 *   handshakes  full handshakes per second (64 in flight) for SECONDS.
 *   idle        server RSS growth over N idle connections (forked server).
 * Usage: qpeer-bench [--bytes N] [--seconds S] [--conns N] [--only WHAT]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#include "bulk.h"
#include "qpeer.h"

static const char *alpn[] = {"qpeer-bench"};

static double now_s(void) { return (double)uv_hrtime() / 1e9; }

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  if (!f)
    return -1;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
      break;
  fclose(f);
  return v;
}

static void die(const char *what, int r) {
  fprintf(stderr, "qpeer-bench: %s: %s\n", what, qpeer_strerror(r));
  exit(1);
}

/* ---- server thread (shared by bulk and handshakes) ------------------------ */

typedef struct server {
  uv_loop_t loop;             /* the server's own loop */
  qpeer_endpoint_t ep;        /* listening endpoint */
  uv_async_t stop;            /* asks the loop to close */
  struct sockaddr_storage addr; /* bound address */
  qpeer_peer_id_t pid;        /* its peer ID */
  uint64_t received;          /* bulk bytes received */
  uint64_t accepted;          /* connections accepted */
  pthread_t thread;           /* the thread */
  uv_sem_t ready;             /* signalled once listening */
} server;

static void s_on_connection(qpeer_endpoint_t *ep, int status) {
  server *srv = ep->data;
  if (status == 0 && bench_sink_accept(ep, &srv->received) == 0)
    srv->accepted++;
}

static void s_stop(uv_async_t *a) {
  server *srv = a->data;
  qpeer_close((qpeer_handle_t *)&srv->ep, NULL);
  uv_close((uv_handle_t *)a, NULL);
}

static void *server_main(void *arg) {
  server *srv = arg;
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  struct sockaddr_storage b;
  int r;
  uv_loop_init(&srv->loop);
  qpeer_endpoint_options_default(&eo);
  qpeer_addr_parse(&b, "127.0.0.1:0");
  eo.bind_addr = (struct sockaddr *)&b;
  eo.retry_mode = QPEER_RETRY_NEVER;
  eo.stream_window = 16u << 20;
  eo.conn_window = 64u << 20;
  eo.max_connections = 100000;
  if ((r = qpeer_endpoint_init(&srv->loop, &srv->ep, &eo)) != 0)
    die("server endpoint", r);
  srv->ep.data = srv;
  qpeer_listen_options_default(&lo);
  lo.alpn = alpn;
  lo.nalpn = 1;
  lo.backlog = 4096;
  if ((r = qpeer_endpoint_listen(&srv->ep, &lo, s_on_connection)) != 0)
    die("listen", r);
  qpeer_endpoint_get_local_addr(&srv->ep, &srv->addr);
  srv->pid = *qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&srv->ep));
  uv_async_init(&srv->loop, &srv->stop, s_stop);
  srv->stop.data = srv;
  uv_sem_post(&srv->ready);
  uv_run(&srv->loop, UV_RUN_DEFAULT);
  uv_loop_close(&srv->loop);
  return NULL;
}

static void server_start(server *srv) {
  memset(srv, 0, sizeof(*srv));
  uv_sem_init(&srv->ready, 0);
  pthread_create(&srv->thread, NULL, server_main, srv);
  uv_sem_wait(&srv->ready);
}

static void server_stop(server *srv) {
  uv_async_send(&srv->stop);
  pthread_join(srv->thread, NULL);
  uv_sem_destroy(&srv->ready);
}

/* ---- bulk ------------------------------------------------------------------- */

static double bench_quic_bulk(uint64_t bytes, server *srv) {
  double t0, t1;
  bench_bulk_send(bytes, (struct sockaddr *)&srv->addr, &srv->pid, alpn[0],
                  &t0, &t1);
  return (double)bytes * 8 / (t1 - t0) / 1e9;
}

/* ---- raw UDP ----------------------------------------------------------------- */

#define RAW_PKT 1452
#define RAW_BATCH 64

typedef struct rawctx {
  int fd;               /* socket */
  double seconds;       /* duration */
  uint64_t bytes;       /* bytes received */
  volatile int stop;    /* receiver stop flag */
  struct sockaddr_in to; /* receiver address */
} rawctx;

static void *raw_rx(void *arg) {
  rawctx *c = arg;
  static char bufs[RAW_BATCH][2048];
  struct mmsghdr m[RAW_BATCH];
  struct iovec iov[RAW_BATCH];
  struct timeval tv = {0, 100000};
  int i, n;
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  while (!c->stop) {
    for (i = 0; i < RAW_BATCH; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof(bufs[i]);
      memset(&m[i], 0, sizeof(m[i]));
      m[i].msg_hdr.msg_iov = &iov[i];
      m[i].msg_hdr.msg_iovlen = 1;
    }
    n = recvmmsg(c->fd, m, RAW_BATCH, 0, NULL);
    for (i = 0; i < n; i++)
      c->bytes += m[i].msg_len;
  }
  return NULL;
}

static double bench_raw_udp(double seconds, int gso) {
  rawctx rx;
  int sfd = socket(AF_INET, SOCK_DGRAM, 0), i, size = 4 << 20;
  socklen_t len = sizeof(rx.to);
  static char pkt[RAW_BATCH][RAW_PKT];
  struct mmsghdr m[RAW_BATCH];
  struct iovec iov[RAW_BATCH];
  pthread_t t;
  double t0, t1;
  uint64_t start_bytes;
  memset(&rx, 0, sizeof(rx));
  rx.fd = socket(AF_INET, SOCK_DGRAM, 0);
  rx.to.sin_family = AF_INET;
  rx.to.sin_addr.s_addr = htonl(0x7f000001);
  setsockopt(rx.fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
  setsockopt(sfd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
  bind(rx.fd, (struct sockaddr *)&rx.to, sizeof(rx.to));
  getsockname(rx.fd, (struct sockaddr *)&rx.to, &len);
  pthread_create(&t, NULL, raw_rx, &rx);
  for (i = 0; i < RAW_BATCH; i++) {
    iov[i].iov_base = pkt[i];
    iov[i].iov_len = RAW_PKT;
    memset(&m[i], 0, sizeof(m[i]));
    m[i].msg_hdr.msg_iov = &iov[i];
    m[i].msg_hdr.msg_iovlen = 1;
    m[i].msg_hdr.msg_name = &rx.to;
    m[i].msg_hdr.msg_namelen = sizeof(rx.to);
  }
  t0 = now_s();
  start_bytes = rx.bytes;
  if (gso) {
    /* One 64-segment train per sendmsg, split by the kernel (UDP_SEGMENT). */
    static char train[44 * RAW_PKT]; /* under 64 KiB */
    int seg = RAW_PKT;
    struct iovec tv = {train, sizeof(train)};
    struct msghdr h;
    memset(&h, 0, sizeof(h));
    h.msg_name = &rx.to;
    h.msg_namelen = sizeof(rx.to);
    h.msg_iov = &tv;
    h.msg_iovlen = 1;
    if (setsockopt(sfd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) != 0) {
      rx.stop = 1;
      pthread_join(t, NULL);
      close(sfd);
      close(rx.fd);
      return 0;
    }
    do {
      sendmsg(sfd, &h, 0);
      t1 = now_s();
    } while (t1 - t0 < seconds);
  } else {
    do {
      sendmmsg(sfd, m, RAW_BATCH, 0);
      t1 = now_s();
    } while (t1 - t0 < seconds);
  }
  t1 = now_s();
  rx.stop = 1;
  pthread_join(t, NULL);
  close(sfd);
  close(rx.fd);
  return (double)(rx.bytes - start_bytes) * 8 / (t1 - t0) / 1e9;
}

/* ---- handshakes ------------------------------------------------------------ */

#define HS_DEPTH 64

typedef struct hs {
  qpeer_connect_t req; /* request */
  qpeer_conn_t conn;   /* connection */
} hs;

static struct {
  uv_loop_t loop;        /* client loop */
  qpeer_endpoint_t ep;   /* client endpoint */
  qpeer_connect_options_t co; /* connect options */
  uint64_t done, failed; /* completed handshakes */
  double t0, seconds;    /* window */
  int stopping;          /* window over */
  int live;              /* connections not yet closed */
} H;

static void hs_start(void);

static void hs_closed(qpeer_handle_t *h) {
  free(h->data);
  H.live--;
  if (!H.stopping)
    hs_start();
  else if (H.live == 0)
    qpeer_close((qpeer_handle_t *)&H.ep, NULL);
}

static void hs_done(qpeer_connect_t *req, int status) {
  hs *x = (hs *)req;
  if (status == 0)
    H.done++;
  else
    H.failed++;
  if (now_s() - H.t0 >= H.seconds)
    H.stopping = 1;
  x->conn.data = x;
  qpeer_close((qpeer_handle_t *)&x->conn, hs_closed);
}

static void hs_start(void) {
  hs *x = calloc(1, sizeof(*x));
  int r;
  if ((r = qpeer_connect(&x->req, &H.ep, &x->conn, &H.co, hs_done)) != 0)
    die("connect", r);
  H.live++;
}

static double bench_handshakes(server *srv, double seconds) {
  qpeer_endpoint_options_t eo;
  struct sockaddr_storage b;
  int i, r;
  memset(&H, 0, sizeof(H));
  uv_loop_init(&H.loop);
  qpeer_endpoint_options_default(&eo);
  qpeer_addr_parse(&b, "127.0.0.1:0");
  eo.bind_addr = (struct sockaddr *)&b;
  eo.max_connections = 100000;
  if ((r = qpeer_endpoint_init(&H.loop, &H.ep, &eo)) != 0)
    die("client endpoint", r);
  qpeer_connect_options_default(&H.co);
  H.co.remote = (struct sockaddr *)&srv->addr;
  H.co.alpn = alpn;
  H.co.nalpn = 1;
  H.co.peer_id = &srv->pid;
  H.seconds = seconds;
  H.t0 = now_s();
  for (i = 0; i < HS_DEPTH; i++)
    hs_start();
  uv_run(&H.loop, UV_RUN_DEFAULT);
  uv_loop_close(&H.loop);
  if (H.failed)
    fprintf(stderr, "qpeer-bench: %llu handshakes failed\n",
            (unsigned long long)H.failed);
  return (double)H.done / (now_s() - H.t0);
}

/* ---- idle memory -------------------------------------------------------------- */

static struct {
  uv_loop_t loop;       /* client loop */
  qpeer_endpoint_t ep;  /* client endpoint */
  hs *conns;            /* connections */
  int n, up;            /* wanted / established */
} I;

static void idle_up(qpeer_connect_t *req, int status) {
  (void)req;
  if (status != 0)
    die("idle connect", status);
  if (++I.up == I.n)
    uv_stop(&I.loop);
}

static double bench_idle(int n) {
  int fds[2], i, r;
  pid_t child;
  char buf[64];
  long before = 0, after = 0;
  qpeer_endpoint_options_t eo;
  qpeer_connect_options_t co;
  struct sockaddr_storage b;
  server srv;
  if (pipe(fds) != 0)
    return -1;
  /* The child is the server: it reports its address, then its RSS before
   * and after n connections, measured by itself. */
  child = fork();
  if (child == 0) {
    long base;
    close(fds[0]);
    server_start(&srv);
    base = rss_kib();
    if (write(fds[1], &srv.addr, sizeof(srv.addr)) < 0 ||
        write(fds[1], &srv.pid, sizeof(srv.pid)) < 0 ||
        write(fds[1], &base, sizeof(base)) < 0)
      _exit(1);
    while (srv.accepted < (uint64_t)n)
      usleep(20000);
    usleep(300000); /* Let the last handshakes settle. */
    base = rss_kib();
    if (write(fds[1], &base, sizeof(base)) < 0)
      _exit(1);
    if (read(fds[1], buf, 1) < 0) { /* Parent closes: exit. */
    }
    _exit(0);
  }
  close(fds[1]);
  memset(&srv, 0, sizeof(srv));
  if (read(fds[0], &srv.addr, sizeof(srv.addr)) != sizeof(srv.addr) ||
      read(fds[0], &srv.pid, sizeof(srv.pid)) != sizeof(srv.pid) ||
      read(fds[0], &before, sizeof(before)) != sizeof(before))
    die("idle child", UV_EIO);
  memset(&I, 0, sizeof(I));
  I.n = n;
  I.conns = calloc((size_t)n, sizeof(hs));
  uv_loop_init(&I.loop);
  qpeer_endpoint_options_default(&eo);
  qpeer_addr_parse(&b, "127.0.0.1:0");
  eo.bind_addr = (struct sockaddr *)&b;
  eo.max_connections = 100000;
  eo.idle_timeout_ms = 120000;
  if ((r = qpeer_endpoint_init(&I.loop, &I.ep, &eo)) != 0)
    die("idle endpoint", r);
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)&srv.addr;
  co.alpn = alpn;
  co.nalpn = 1;
  co.peer_id = &srv.pid;
  for (i = 0; i < n; i++)
    if ((r = qpeer_connect(&I.conns[i].req, &I.ep, &I.conns[i].conn, &co,
                           idle_up)) != 0)
      die("idle connect", r);
  uv_run(&I.loop, UV_RUN_DEFAULT);
  if (read(fds[0], &after, sizeof(after)) != sizeof(after))
    die("idle child", UV_EIO);
  close(fds[0]);
  waitpid(child, NULL, 0);
  qpeer_close((qpeer_handle_t *)&I.ep, NULL);
  uv_run(&I.loop, UV_RUN_DEFAULT);
  uv_loop_close(&I.loop);
  free(I.conns);
  return (double)(after - before) * 1024 / n;
}

int main(int argc, char **argv) {
  uint64_t bytes = 1ull << 30;
  double seconds = 3;
  int conns = 1000, i;
  const char *only = NULL;
  server srv;
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--bytes") && i + 1 < argc)
      bytes = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = strtod(argv[++i], NULL);
    else if (!strcmp(argv[i], "--conns") && i + 1 < argc)
      conns = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
    else {
      fprintf(stderr, "usage: qpeer-bench [--bytes N] [--seconds S] "
                      "[--conns N] [--only bulk|handshakes|idle]\n");
      return !strcmp(argv[i], "--help") ? 0 : 2;
    }
  }
  bytes = (bytes + (1 << 20) - 1) / (1 << 20) * (1 << 20); /* whole MiB */
  printf("qpeer-bench %s (ngtcp2 %s)\n", qpeer_version_string(),
         "0.12.1");
  if (!only || !strcmp(only, "bulk")) {
    double q, raw, rawg;
    server_start(&srv);
    q = bench_quic_bulk(bytes, &srv);
    server_stop(&srv);
    raw = bench_raw_udp(seconds, 0);
    rawg = bench_raw_udp(seconds, 1);
    printf("bulk: %.2f GiB over one stream: %.3f Gbit/s\n",
           (double)bytes / (1 << 30), q);
    printf("raw udp (%d-byte datagrams, sendmmsg/recvmmsg x%d): %.3f "
           "Gbit/s\n",
           RAW_PKT, RAW_BATCH, raw);
    printf("raw udp with GSO (%d x %d-byte segments per sendmsg): %.3f "
           "Gbit/s\n",
           44, RAW_PKT, rawg);
    printf("ratio quic/raw: %.3f (vs raw with GSO: %.3f)\n", q / raw,
           rawg > 0 ? q / rawg : 0.0);
  }
  if (!only || !strcmp(only, "handshakes")) {
    double h;
    server_start(&srv);
    h = bench_handshakes(&srv, seconds);
    server_stop(&srv);
    printf("handshakes: %.0f per second (client and server on 2 threads, "
           "%d in flight)\n",
           h, HS_DEPTH);
  }
  if (!only || !strcmp(only, "idle")) {
    double per = bench_idle(conns);
    printf("idle: %.1f KiB server RSS per idle connection (%d "
           "connections)\n",
           per / 1024, conns);
  }
  return 0;
}
