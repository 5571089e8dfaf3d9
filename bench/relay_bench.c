/* SPDX-License-Identifier: MIT */
/*
 * qpeer-relay-bench: the MASQUE relay figures of issue 4, measured in one
 * run on loopback (doc/relay.md, "Lab and benchmark results").
 *   bulk   BYTES over one stream from a client to a "camera" endpoint,
 *          first directly, then through a qpeer_relay_t binding (client ->
 *          relay's bound public address -> camera over HTTP/3 DATAGRAMs);
 *          prints both, their ratio, and the relay's CPU seconds per GiB
 *          relayed (getrusage of the relay process).
 *   idle   relay RSS growth over N idle bound clients (each its own
 *          endpoint and relay connection), measured by the relay itself.
 * The relay runs in a forked process with its own loop; camera and client
 * each run on their own thread/loop in the parent.
 * Usage: qpeer-relay-bench [--bytes N] [--rounds N] [--binds N]
 *                          [--only bulk|idle]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <netinet/in.h>
#include <unistd.h>

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
  fprintf(stderr, "qpeer-relay-bench: %s: %s\n", what, qpeer_strerror(r));
  exit(1);
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}


/* ---- relay process ------------------------------------------------------ */

/* What the relay process reports on request. */
typedef struct report {
  double cpu_s; /* user + system CPU seconds so far */
  long rss_kib; /* VmRSS */
  qpeer_relay_stats_t st; /* relay counters (read unlocked: approximate) */
} report;

static struct {
  uv_loop_t loop;
  qpeer_endpoint_t ep;
  qpeer_relay_t relay;
  int cmd_fd, out_fd;
} R;

static void r_on_connection(qpeer_endpoint_t *ep, int status) {
  if (status != 0)
    return;
  while (qpeer_relay_accept(&R.relay, ep) == 0) {
  }
}

/* Answers 'r' (report) on the command pipe; EOF or 'q' ends the process. */
static void *r_cmd_thread(void *arg) {
  char c;
  (void)arg;
  while (read(R.cmd_fd, &c, 1) == 1 && c == 'r') {
    struct rusage ru;
    report rep;
    getrusage(RUSAGE_SELF, &ru);
    rep.cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    rep.rss_kib = rss_kib();
    qpeer_relay_get_stats(&R.relay, &rep.st);
    if (write(R.out_fd, &rep, sizeof(rep)) != sizeof(rep))
      break;
  }
  _exit(0);
  return NULL;
}

static void relay_main(int cmd_fd, int out_fd) {
  static const char *const h3[] = {QPEER_MASQUE_ALPN};
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_relay_options_t ro;
  struct sockaddr_storage b, local, bindaddr;
  const struct sockaddr *bas[1];
  pthread_t th;
  int r;
  raise_nofile();
  R.cmd_fd = cmd_fd;
  R.out_fd = out_fd;
  uv_loop_init(&R.loop);
  qpeer_endpoint_options_default(&eo);
  qpeer_addr_parse(&b, "127.0.0.1:0");
  eo.bind_addr = (struct sockaddr *)&b;
  eo.retry_mode = QPEER_RETRY_NEVER;
  eo.max_connections = 100000;
  eo.max_datagram_frame_size = 1500;
  eo.idle_timeout_ms = 120000;
  if ((r = qpeer_endpoint_init(&R.loop, &R.ep, &eo)) != 0)
    die("relay endpoint", r);
  qpeer_relay_options_default(&ro);
  qpeer_addr_parse(&bindaddr, "127.0.0.1:0");
  bas[0] = (struct sockaddr *)&bindaddr;
  ro.bind_addrs = bas;
  ro.nbind_addrs = 1;
  ro.allow_anonymous = 1;
  ro.allow_targets = QPEER_RELAY_ALLOW_LOOPBACK | QPEER_RELAY_ALLOW_OWN;
  ro.max_binds_per_client = 100000;
  ro.max_binds = 100000;
  ro.max_tunnels_per_client = 100000;
  ro.max_tunnels = 100000;
  if ((r = qpeer_relay_init(&R.loop, &R.relay, &ro)) != 0)
    die("relay init", r);
  qpeer_listen_options_default(&lo);
  lo.alpn = h3;
  lo.nalpn = 1;
  lo.backlog = 4096;
  if ((r = qpeer_endpoint_listen(&R.ep, &lo, r_on_connection)) != 0)
    die("relay listen", r);
  qpeer_endpoint_get_local_addr(&R.ep, &local);
  if (write(out_fd, &local, sizeof(local)) != sizeof(local) ||
      write(out_fd, qpeer_identity_get_peer_id(
                        qpeer_endpoint_get_identity(&R.ep)),
            sizeof(qpeer_peer_id_t)) != sizeof(qpeer_peer_id_t))
    _exit(1);
  pthread_create(&th, NULL, r_cmd_thread, NULL);
  uv_run(&R.loop, UV_RUN_DEFAULT);
  _exit(0);
}

typedef struct relay_proc {
  pid_t pid;
  int cmd, out;
  struct sockaddr_storage addr;
  qpeer_peer_id_t rpid;
} relay_proc;

static void relay_spawn(relay_proc *rp) {
  int a[2], o[2];
  if (pipe(a) != 0 || pipe(o) != 0)
    die("pipe", UV_EIO);
  rp->pid = fork();
  if (rp->pid == 0) {
    close(a[1]);
    close(o[0]);
    relay_main(a[0], o[1]);
  }
  close(a[0]);
  close(o[1]);
  rp->cmd = a[1];
  rp->out = o[0];
  if (read(rp->out, &rp->addr, sizeof(rp->addr)) != sizeof(rp->addr) ||
      read(rp->out, &rp->rpid, sizeof(rp->rpid)) != sizeof(rp->rpid))
    die("relay process", UV_EIO);
}

static report relay_report(relay_proc *rp) {
  report rep;
  memset(&rep, 0, sizeof(rep));
  if (write(rp->cmd, "r", 1) != 1 ||
      read(rp->out, &rep, sizeof(rep)) != sizeof(rep))
    die("relay report", UV_EIO);
  return rep;
}

static void relay_end(relay_proc *rp) {
  if (write(rp->cmd, "q", 1) != 1) {
  }
  close(rp->cmd);
  close(rp->out);
  waitpid(rp->pid, NULL, 0);
}

static void masque_opts(qpeer_masque_options_t *mo, relay_proc *rp) {
  qpeer_masque_options_default(mo);
  mo->proxy = (struct sockaddr *)&rp->addr;
  mo->auth = QPEER_AUTH_PEER_ID;
  mo->peer_id = &rp->rpid;
}

/* ---- camera thread: listens directly and through its relay binding ----- */

typedef struct camera {
  uv_loop_t loop;
  qpeer_endpoint_t ep;
  qpeer_relay_bind_t bind;
  uv_async_t stop;
  struct sockaddr_storage direct; /* its socket address */
  struct sockaddr_storage pub;    /* its public address at the relay */
  qpeer_peer_id_t pid;
  relay_proc *rp;
  uint64_t received;
  pthread_t thread;
  uv_sem_t ready;
  int status;
} camera;

static void c_on_connection(qpeer_endpoint_t *ep, int status) {
  camera *cam = ep->data;
  if (status == 0)
    bench_sink_accept(ep, &cam->received);
}

static void c_bound(qpeer_relay_bind_t *b, int status,
                    const struct sockaddr_storage *addrs, size_t n) {
  camera *cam = b->data;
  if (cam->status != 1)
    return;
  if (status != 0 || n == 0) {
    cam->status = status ? status : UV_EIO;
  } else {
    cam->pub = addrs[0];
    cam->status = 0;
  }
  uv_sem_post(&cam->ready);
}

static void c_stop(uv_async_t *a) {
  camera *cam = a->data;
  qpeer_relay_bind_close(&cam->bind, NULL);
  qpeer_close((qpeer_handle_t *)&cam->ep, NULL);
  uv_close((uv_handle_t *)a, NULL);
}

static void *camera_main(void *arg) {
  camera *cam = arg;
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_masque_options_t mo;
  struct sockaddr_storage b;
  int r;
  uv_loop_init(&cam->loop);
  qpeer_endpoint_options_default(&eo);
  qpeer_addr_parse(&b, "127.0.0.1:0");
  eo.bind_addr = (struct sockaddr *)&b;
  eo.retry_mode = QPEER_RETRY_NEVER;
  eo.stream_window = 16u << 20;
  eo.conn_window = 64u << 20;
  eo.max_datagram_frame_size = 1500;
  if ((r = qpeer_endpoint_init(&cam->loop, &cam->ep, &eo)) != 0)
    die("camera endpoint", r);
  cam->ep.data = cam;
  qpeer_listen_options_default(&lo);
  lo.alpn = alpn;
  lo.nalpn = 1;
  if ((r = qpeer_endpoint_listen(&cam->ep, &lo, c_on_connection)) != 0)
    die("camera listen", r);
  qpeer_endpoint_get_local_addr(&cam->ep, &cam->direct);
  cam->pid = *qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&cam->ep));
  masque_opts(&mo, cam->rp);
  cam->status = 1;
  if ((r = qpeer_relay_bind_init(&cam->ep, &cam->bind, &mo)) != 0)
    die("camera bind", r);
  cam->bind.data = cam; /* after init, which clears the handle */
  if ((r = qpeer_relay_bind_start(&cam->bind, c_bound)) != 0)
    die("camera bind", r);
  uv_async_init(&cam->loop, &cam->stop, c_stop);
  cam->stop.data = cam;
  uv_run(&cam->loop, UV_RUN_DEFAULT);
  uv_loop_close(&cam->loop);
  return NULL;
}

/* ---- client bulk --------------------------------------------------------- */

/* CPU seconds used so far by thread |th| (the calling thread: pthread_self()). */
static double thread_cpu_s(pthread_t th) {
  clockid_t cid;
  struct timespec ts;
  if (pthread_getcpuclockid(th, &cid) != 0 || clock_gettime(cid, &ts) != 0)
    return 0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds each party used during one bulk run. */
typedef struct cpu_use {
  double client, camera, relay;
  qpeer_conn_stats_t stats; /* the client connection's, at the end */
} cpu_use;

static double bulk(uint64_t bytes, const struct sockaddr_storage *to,
                   const qpeer_peer_id_t *pid, camera *cam, cpu_use *cpu) {
  uint64_t start = cam->received;
  double deadline, t0, t1, cl0, ca0, re0;
  cl0 = thread_cpu_s(pthread_self());
  ca0 = thread_cpu_s(cam->thread);
  re0 = relay_report(cam->rp).cpu_s;
  bench_bulk_send(bytes, (const struct sockaddr *)to, pid, alpn[0], &t0, &t1);
  cpu->client = thread_cpu_s(pthread_self()) - cl0;
  cpu->camera = thread_cpu_s(cam->thread) - ca0;
  cpu->relay = relay_report(cam->rp).cpu_s - re0;
  cpu->stats = bench_bulk_last_stats;
  /* The FIN is acknowledged, so the camera has it all; allow a moment for
   * its thread to count the last bytes. */
  deadline = now_s() + 5;
  while (__atomic_load_n(&cam->received, __ATOMIC_RELAXED) - start < bytes &&
         now_s() < deadline)
    usleep(1000);
  if (cam->received - start < bytes)
    fprintf(stderr, "qpeer-relay-bench: camera got %llu of %llu bytes\n",
            (unsigned long long)(cam->received - start),
            (unsigned long long)bytes);
  return (double)bytes * 8 / (t1 - t0) / 1e9;
}

/* ---- idle bindings --------------------------------------------------------- */

typedef struct idler {
  qpeer_endpoint_t ep;
  qpeer_relay_bind_t bind;
  int done;
} idler;

static struct {
  uv_loop_t loop;
  int n, up, failed;
} I;

static void i_bound(qpeer_relay_bind_t *b, int status,
                    const struct sockaddr_storage *addrs, size_t n) {
  idler *d = b->data;
  (void)addrs;
  (void)n;
  if (d->done)
    return;
  d->done = 1;
  if (status != 0)
    I.failed++;
  else
    I.up++;
  if (I.up + I.failed == I.n)
    uv_stop(&I.loop);
}

static double bench_idle(int n, int *pfailed) {
  relay_proc rp;
  report before, after;
  idler *d;
  int i, r;
  raise_nofile();
  relay_spawn(&rp);
  usleep(200000);
  before = relay_report(&rp);
  memset(&I, 0, sizeof(I));
  I.n = n;
  d = calloc((size_t)n, sizeof(*d));
  uv_loop_init(&I.loop);
  for (i = 0; i < n; i++) {
    qpeer_endpoint_options_t eo;
    qpeer_masque_options_t mo;
    struct sockaddr_storage b;
    qpeer_endpoint_options_default(&eo);
    qpeer_addr_parse(&b, "127.0.0.1:0");
    eo.bind_addr = (struct sockaddr *)&b;
    eo.max_datagram_frame_size = 1500;
    eo.idle_timeout_ms = 120000;
    if ((r = qpeer_endpoint_init(&I.loop, &d[i].ep, &eo)) != 0)
      die("idle endpoint", r);
    masque_opts(&mo, &rp);
    mo.request_timeout_ms = 60000;
    mo.handshake_timeout_ms = 60000;
    if ((r = qpeer_relay_bind_init(&d[i].ep, &d[i].bind, &mo)) != 0)
      die("idle bind", r);
    d[i].bind.data = &d[i];
    if ((r = qpeer_relay_bind_start(&d[i].bind, i_bound)) != 0)
      die("idle bind", r);
  }
  uv_run(&I.loop, UV_RUN_DEFAULT);
  usleep(300000); /* let the relay settle */
  after = relay_report(&rp);
  relay_end(&rp);
  for (i = 0; i < n; i++) {
    qpeer_relay_bind_close(&d[i].bind, NULL);
    qpeer_close((qpeer_handle_t *)&d[i].ep, NULL);
  }
  uv_run(&I.loop, UV_RUN_DEFAULT);
  uv_loop_close(&I.loop);
  free(d);
  *pfailed = I.failed;
  return I.up ? (double)(after.rss_kib - before.rss_kib) * 1024 / I.up : -1;
}

/* ---- bulk: direct and relayed, interleaved ------------------------------ */

static double median(double *v, int n) {
  int i, j;
  for (i = 1; i < n; i++)
    for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* |rounds| rounds of one direct and one relayed run of |bytes| each (the
 * order alternates, so a drift of the machine's speed during the run
 * weighs on both); each round's ratio, their median, and the CPU that
 * each party spent per GiB over all rounds. */
static void bench_bulk(uint64_t bytes, int rounds) {
  enum { MAXR = 32 };
  relay_proc rp;
  camera cam;
  report r0, r1;
  cpu_use cd, cr, sd, sr;
  double direct[MAXR], relayed[MAXR], ratio[MAXR];
  double gib = (double)bytes / (1 << 30), wd, wr, td = 0, tr = 0;
  int i;
  if (rounds > MAXR)
    rounds = MAXR;
  memset(&sd, 0, sizeof(sd));
  memset(&sr, 0, sizeof(sr));
  relay_spawn(&rp);
  memset(&cam, 0, sizeof(cam));
  cam.rp = &rp;
  uv_sem_init(&cam.ready, 0);
  pthread_create(&cam.thread, NULL, camera_main, &cam);
  uv_sem_wait(&cam.ready);
  if (cam.status != 0)
    die("camera binding", cam.status);
  r0 = relay_report(&rp);
  for (i = 0; i < rounds; i++) {
    if (i % 2 == 0) {
      direct[i] = bulk(bytes, &cam.direct, &cam.pid, &cam, &cd);
      relayed[i] = bulk(bytes, &cam.pub, &cam.pid, &cam, &cr);
    } else {
      relayed[i] = bulk(bytes, &cam.pub, &cam.pid, &cam, &cr);
      direct[i] = bulk(bytes, &cam.direct, &cam.pid, &cam, &cd);
    }
    ratio[i] = relayed[i] / direct[i];
    td += 8.0 * (double)bytes / 1e9 / direct[i];
    tr += 8.0 * (double)bytes / 1e9 / relayed[i];
    sd.client += cd.client;
    sd.camera += cd.camera;
    sr.client += cr.client;
    sr.camera += cr.camera;
    sr.relay += cr.relay;
    printf("round %d: direct %.3f Gbit/s, relayed %.3f Gbit/s, ratio %.3f\n",
           i + 1, direct[i], relayed[i], ratio[i]);
    fflush(stdout);
  }
  r1 = relay_report(&rp);
  uv_async_send(&cam.stop);
  pthread_join(cam.thread, NULL);
  relay_end(&rp);
  printf("ratio relayed/direct: median %.3f over %d rounds of %.2f GiB each "
         "(target >= 0.5)\n",
         median(ratio, rounds), rounds, gib);
  printf("direct median %.3f Gbit/s, relayed median %.3f Gbit/s\n",
         median(direct, rounds), median(relayed, rounds));
  printf("client connection at the end: direct %llu-byte packets, window "
         "%llu B, srtt %llu us; relayed %llu-byte packets, window %llu B, "
         "srtt %llu us\n",
         (unsigned long long)cd.stats.max_udp_payload,
         (unsigned long long)cd.stats.cwnd,
         (unsigned long long)cd.stats.smoothed_rtt_us,
         (unsigned long long)cr.stats.max_udp_payload,
         (unsigned long long)cr.stats.cwnd,
         (unsigned long long)cr.stats.smoothed_rtt_us);
  /* The work each byte costs, whoever does it: where the runs are
   * CPU-bound on the same cores, throughput follows it. */
  gib *= rounds;
  wd = (sd.client + sd.camera) / gib;
  wr = (sr.client + sr.camera + sr.relay) / gib;
  printf("CPU s per GiB, direct:  client %.2f + camera %.2f = %.2f "
         "(%.2f cores busy)\n",
         sd.client / gib, sd.camera / gib, wd, wd * gib / td);
  printf("CPU s per GiB, relayed: client %.2f + camera %.2f + relay %.2f = "
         "%.2f (%.2f cores busy)\n",
         sr.client / gib, sr.camera / gib, sr.relay / gib, wr, wr * gib / tr);
  printf("work ratio direct/relayed (CPU per GiB): %.3f (%ld cores here, "
         "shared by every party)\n",
         wd / wr, sysconf(_SC_NPROCESSORS_ONLN));
  printf("relay: %.2f CPU s per GiB relayed; %llu packets to the camera "
         "(%llu as QUIC DATAGRAM frames, %llu as capsules), %llu from it; "
         "dropped: %llu other, %llu quota, %llu policy\n",
         sr.relay / gib,
         (unsigned long long)(r1.st.packets_in - r0.st.packets_in),
         (unsigned long long)(r1.st.tx_quic_datagrams -
                              r0.st.tx_quic_datagrams),
         (unsigned long long)(r1.st.tx_capsules - r0.st.tx_capsules),
         (unsigned long long)(r1.st.packets_out - r0.st.packets_out),
         (unsigned long long)(r1.st.dropped_other - r0.st.dropped_other),
         (unsigned long long)(r1.st.dropped_quota - r0.st.dropped_quota),
         (unsigned long long)(r1.st.dropped_policy - r0.st.dropped_policy));
  fflush(stdout);
}

int main(int argc, char **argv) {
  uint64_t bytes = 256ull << 20;
  int binds = 1000, rounds = 3, i;
  const char *only = NULL;
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--bytes") && i + 1 < argc)
      bytes = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--binds") && i + 1 < argc)
      binds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
    else {
      fprintf(stderr, "usage: qpeer-relay-bench [--bytes N] [--rounds N] "
                      "[--binds N] [--only bulk|idle]\n");
      return !strcmp(argv[i], "--help") ? 0 : 2;
    }
  }
  bytes = (bytes + (1 << 20) - 1) / (1 << 20) * (1 << 20); /* whole MiB */
  if (binds < 1)
    binds = 1;
  if (rounds < 1)
    rounds = 1;
  printf("qpeer-relay-bench %s\n", qpeer_version_string());
  fflush(stdout);
  if (!only || !strcmp(only, "bulk"))
    bench_bulk(bytes, rounds);
  if (!only || !strcmp(only, "idle")) {
    int failed = 0;
    double per = bench_idle(binds, &failed);
    printf("idle: %.1f KiB relay RSS per idle bound client (%d binds, %d "
           "failed; target <= 64 KiB)\n",
           per / 1024, binds - failed, failed);
  }
  return 0;
}
