/* SPDX-License-Identifier: MIT */
/*
 * examples/phone: watches a camera (examples/camera) by ticket. It connects
 * with qpeer_peer_connect (relay and direct raced; after a relay win the
 * library punches and migrates to a direct path in the background), reads
 * the camera's unidirectional frame stream and verifies every frame
 * (sequence and checksum, examples/common/frames.h). It prints one status
 * line per second, one line per path change, and at the end a timeline:
 * when it connected via the relay, when the direct path was validated, how
 * many bytes the relay still carried after the migration (from the relay's
 * Prometheus /metrics with --metrics, else the phone's own counters), and
 * frames ok / errors.
 *
 * Exit status 0 only if every frame verified, the camera ended the stream
 * cleanly, and the path expectation (--expect) held.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "digest.h"
#include "frames.h"
#include "qpeer.h"

#define ALPN "qpeer-camera"

enum { EXPECT_ANY, EXPECT_DIRECT, EXPECT_RELAY };

static struct {
  uv_loop_t *loop;
  qpeer_endpoint_t ep;
  qpeer_identity_t *id;
  qpeer_peer_connect_t preq;
  qpeer_conn_t conn;
  int connecting, connected;
  qpeer_stream_t st;
  int have_stream, eof;
  frame_reader fr;
  digest sha;              /* SHA-256 of every byte read from the stream */
  uint64_t stream_bytes;   /* ... and their count */
  uv_timer_t stat_timer, deadline;
  uint64_t t0;             /* uv_now at start */
  uint64_t t_connected;    /* ms after t0 */
  int via_relay;
  uint64_t t_direct;       /* first direct path validated (ms after t0) */
  uint64_t validate_ms;    /* its validation time */
  char direct_addr[QPEER_ADDR_STRLEN];
  int on_relay;            /* current path is the relay one */
  int ever_direct;
  unsigned fallbacks, migrations;
  uint64_t last_frames, last_bytes, last_tick;
  /* relay bytes after the first migration */
  struct sockaddr_storage metrics_addr;
  int have_metrics;
  int64_t metrics_base;    /* relay inner bytes at migration, -1: unknown */
  int64_t metrics_settled; /* ... one settle period later, -1: unknown */
  uv_timer_t settle_timer;
  uv_timer_t linger;       /* after our close, before the endpoint goes */
  uint64_t own_relay_bytes; /* phone's bytes on the relay path since then */
  uint64_t last_conn_bytes;
  int expect;
  int done, exit_code, fatal;
  /* --cache: the bootstrap cache (peers reachable before, for --peer) */
  qpeer_bootstrap_t cache;
  int have_cache;
  qpeer_ticket_t ticket;   /* the ticket in use */
} F;

static void finish(int code);

static int fail(const char *what, int err) {
  fprintf(stderr, "phone: %s: %s (%s)\n", what, qpeer_err_name(err),
          qpeer_strerror(err));
  return 1;
}

static void on_handle_closed(qpeer_handle_t *h) { (void)h; }
static void on_uv_closed(uv_handle_t *h) { (void)h; }

static uint64_t now_ms(void) { return uv_now(F.loop) - F.t0; }

static int addr_eq(const struct sockaddr_storage *a,
                   const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family)
    return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
  }
  return 0;
}

static int path_is_relay(const qpeer_path_t *p) {
  return F.preq.relay_path.remote.ss_family != AF_UNSPEC &&
         addr_eq(&p->remote, &F.preq.relay_path.remote);
}

/* ---- relay metrics (Prometheus text over HTTP/1.1) ---------------------------
 * A tiny blocking client with a short timeout: the relay is one hop away in
 * the lab, and this runs twice (at migration and at the end). Returns the
 * sum of qpeer_relay_bytes_total over both directions, or -1. */
static int64_t relay_inner_bytes(void) {
  char buf[65536];
  size_t len = 0;
  int fd, flags;
  struct pollfd pfd;
  const char *req = "GET /metrics HTTP/1.1\r\nHost: relay\r\n"
                    "Connection: close\r\n\r\n";
  int64_t sum = -1;
  char *p;
  socklen_t alen;
  if (!F.have_metrics)
    return -1;
  fd = socket(F.metrics_addr.ss_family, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  alen = F.metrics_addr.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                             : sizeof(struct sockaddr_in6);
  if (connect(fd, (struct sockaddr *)&F.metrics_addr, alen) != 0 &&
      errno != EINPROGRESS)
    goto out;
  pfd.fd = fd;
  pfd.events = POLLOUT;
  if (poll(&pfd, 1, 500) != 1)
    goto out;
  {
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0)
      goto out;
  }
  if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
    goto out;
  for (;;) {
    ssize_t n;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, 500) != 1)
      break;
    n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
    if (n <= 0)
      break;
    len += (size_t)n;
    if (len == sizeof(buf) - 1)
      break;
  }
  buf[len] = '\0';
  for (p = strstr(buf, "\nqpeer_relay_bytes_total{"); p;
       p = strstr(p + 1, "\nqpeer_relay_bytes_total{")) {
    char *sp = strchr(p + 1, '}');
    if (!sp)
      break;
    if (sum < 0)
      sum = 0;
    sum += (int64_t)strtoull(sp + 1, NULL, 10);
  }
out:
  close(fd);
  return sum;
}

/* ---- frames ---------------------------------------------------------------- */

static void on_read(qpeer_stream_t *s, ssize_t n, const uint8_t *d) {
  (void)s;
  if (F.done)
    return;
  if (n == UV_EOF) {
    F.eof = 1;
    fprintf(stderr, "phone: the camera ended the stream\n");
    finish(0);
    return;
  }
  if (n < 0) {
    fail("receive", (int)n);
    F.fatal = 1;
    finish(1);
    return;
  }
  digest_add(&F.sha, d, (size_t)n);
  F.stream_bytes += (uint64_t)n;
  if (frame_reader_feed(&F.fr, d, (size_t)n) < 0) {
    fprintf(stderr, "phone: frame %llu: %s\n",
            (unsigned long long)F.fr.next_seq, frame_strerror(F.fr.err));
    F.fatal = 1;
    finish(1);
  }
}

static void on_stream(qpeer_conn_t *c, int status) {
  if (status != 0)
    return;
  if (F.have_stream) {
    qpeer_stream_t *extra = malloc(sizeof(*extra));
    if (extra && qpeer_conn_accept_stream(c, extra) == 0)
      qpeer_close((qpeer_handle_t *)extra, (qpeer_close_cb)free);
    else
      free(extra);
    return;
  }
  if (qpeer_conn_accept_stream(c, &F.st) == 0) {
    F.have_stream = 1;
    qpeer_stream_read_start(&F.st, on_read);
  }
}

/* ---- status and paths ------------------------------------------------------ */

static void account_relay_bytes(void) {
  qpeer_conn_stats_t s;
  uint64_t total;
  if (!F.connected || qpeer_conn_get_stats(&F.conn, &s) != 0)
    return;
  total = s.bytes_sent + s.bytes_received;
  if (F.ever_direct && F.on_relay)
    F.own_relay_bytes += total - F.last_conn_bytes;
  F.last_conn_bytes = total;
}

static void on_stat(uv_timer_t *t) {
  qpeer_conn_stats_t s;
  char a[QPEER_ADDR_STRLEN] = "?";
  uint64_t now = now_ms();
  double dt = (double)(now - F.last_tick) / 1000.0;
  (void)t;
  if (!F.connected || qpeer_conn_get_stats(&F.conn, &s) != 0)
    return;
  account_relay_bytes();
  qpeer_addr_format((struct sockaddr *)&s.path.remote, a, sizeof(a));
  printf("t=%5.1fs frames %6llu (+%3llu) %6.0f kbit/s  path %-6s %s  "
         "rtt %.1f ms\n",
         (double)now / 1000.0, (unsigned long long)F.fr.frames,
         (unsigned long long)(F.fr.frames - F.last_frames),
         dt > 0 ? (double)(F.fr.bytes - F.last_bytes) * 8 / dt / 1000 : 0.0,
         path_is_relay(&s.path) ? "relay" : "direct", a,
         s.smoothed_rtt_us / 1000.0);
  fflush(stdout);
  F.last_frames = F.fr.frames;
  F.last_bytes = F.fr.bytes;
  F.last_tick = now;
}

/* Packets already in flight on the relay path when the connection moved
 * still cross the relay; one settle period later nothing should. */
#define SETTLE_MS 1000

static void on_settled(uv_timer_t *t) {
  (void)t;
  F.metrics_settled = relay_inner_bytes();
}

static void first_direct(const char *addr) {
  F.ever_direct = 1;
  F.t_direct = now_ms();
  snprintf(F.direct_addr, sizeof(F.direct_addr), "%s", addr);
  F.metrics_base = relay_inner_bytes();
  if (F.have_metrics)
    uv_timer_start(&F.settle_timer, on_settled, SETTLE_MS, 0);
}

static void on_path(qpeer_conn_t *c, qpeer_path_reason reason,
                    const qpeer_path_t *old_path,
                    const qpeer_path_t *new_path) {
  char a[QPEER_ADDR_STRLEN];
  int was = path_is_relay(old_path), is = path_is_relay(new_path);
  (void)c;
  account_relay_bytes();
  qpeer_addr_format((const struct sockaddr *)&new_path->remote, a, sizeof(a));
  if (reason == QPEER_PATH_FAILED) {
    printf("path: %s -> %s %s failed validation\n", was ? "relay" : "direct",
           is ? "relay" : "direct", a);
    fflush(stdout);
    return;
  }
  F.on_relay = is;
  F.migrations++;
  if (!is && F.preq.punch_started_ms) {
    uint64_t v = uv_now(F.loop) - F.preq.punch_started_ms;
    printf("path: %s -> direct %s (validated in %llu ms)\n",
           was ? "relay" : "direct", a, (unsigned long long)v);
    if (!F.ever_direct) {
      F.validate_ms = v;
      first_direct(a);
    }
  } else {
    if (is && !was)
      F.fallbacks++;
    printf("path: %s -> %s %s (%s)\n", was ? "relay" : "direct",
           is ? "relay" : "direct", a,
           reason == QPEER_PATH_PEER_MOVED ? "peer moved" : "migrated");
    if (!is && !F.ever_direct)
      first_direct(a);
  }
  fflush(stdout);
}

static void on_closed(qpeer_conn_t *c, int status,
                      const qpeer_close_info_t *info) {
  (void)c;
  (void)info;
  if (F.done)
    return;
  if (status != 0 && status != QPEER_EPEERCLOSED)
    fail("connection", status);
  else
    fprintf(stderr, "phone: the camera closed the connection\n");
  finish(1);
}

static void on_peer_connect(qpeer_peer_connect_t *req, int status) {
  qpeer_conn_callbacks_t cbs;
  qpeer_path_t path;
  char a[QPEER_ADDR_STRLEN] = "?";
  if (F.done)
    return;
  if (status != 0) {
    fail("connect", status);
    F.fatal = 1;
    finish(1);
    return;
  }
  F.connected = 1;
  F.t_connected = now_ms();
  if (F.have_cache) {
    /* Reachable: remember the peer for the next start (--peer). */
    int r = qpeer_bootstrap_update(&F.cache, &F.ticket,
                                   req->via_relay ? QPEER_BOOTSTRAP_PATH_RELAY
                                                  : QPEER_BOOTSTRAP_PATH_DIRECT,
                                   0);
    if (r == 0)
      r = qpeer_bootstrap_save_sync(&F.cache);
    if (r != 0)
      fail("bootstrap cache", r);
  }
  F.via_relay = req->via_relay;
  F.on_relay = req->via_relay;
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_closed = on_closed;
  cbs.on_stream = on_stream;
  cbs.on_path = on_path;
  qpeer_conn_set_callbacks(req->conn, &cbs);
  if (qpeer_conn_get_path(req->conn, &path) == 0)
    qpeer_addr_format((struct sockaddr *)&path.remote, a, sizeof(a));
  printf("phone: connected via %s %s at %llu ms\n",
         req->via_relay ? "relay" : "direct", a,
         (unsigned long long)F.t_connected);
  printf("path: %s\n", req->via_relay ? "relay" : "direct");
  fflush(stdout);
  if (!req->via_relay) {
    F.ever_direct = 1;
    F.t_direct = F.t_connected;
    snprintf(F.direct_addr, sizeof(F.direct_addr), "%s", a);
  }
  F.last_tick = now_ms();
  uv_timer_start(&F.stat_timer, on_stat, 1000, 1000);
}

static void on_deadline(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "phone: --timeout reached\n");
  finish(1);
}

/* ---- the end --------------------------------------------------------------- */

static void print_timeline(void) {
  int64_t relay_now;
  printf("\n== timeline ==\n");
  if (F.connected)
    printf("  connected via %s at %llu ms\n", F.via_relay ? "relay" : "direct",
           (unsigned long long)F.t_connected);
  else
    printf("  never connected\n");
  if (F.ever_direct && F.via_relay)
    printf("  direct path validated at %llu ms (%s, %llu ms after the punch "
           "started)\n",
           (unsigned long long)F.t_direct, F.direct_addr,
           (unsigned long long)F.validate_ms);
  else if (F.ever_direct)
    printf("  direct from the start (%s)\n", F.direct_addr);
  else if (F.connected)
    printf("  stayed on the relay (no direct path; %u punch(es))\n",
           F.preq.punches);
  if (F.ever_direct && F.via_relay) {
    relay_now = relay_inner_bytes();
    if (F.metrics_base >= 0 && relay_now >= 0) {
      printf("  relay bytes since migration: %lld (relay /metrics)\n",
             (long long)(relay_now - F.metrics_base));
      if (F.metrics_settled >= 0 && F.fallbacks == 0)
        printf("  relay bytes from %d ms after migration to the end: %lld\n",
               SETTLE_MS, (long long)(relay_now - F.metrics_settled));
    }
    else
      printf("  relay bytes since migration: %llu (phone's counters)\n",
             (unsigned long long)F.own_relay_bytes);
  }
  if (F.fallbacks)
    printf("  fallbacks to the relay: %u\n", F.fallbacks);
  printf("  final path: %s\n", !F.connected ? "none"
                               : F.on_relay ? "relay"
                                            : "direct");
  {
    char hex[DIGEST_HEX_LEN];
    digest_hex(&F.sha, hex);
    printf("  stream: %llu bytes, sha256 %s\n",
           (unsigned long long)F.stream_bytes, hex);
  }
  printf("  frames: %llu ok, %d errors (%llu bytes)%s\n",
         (unsigned long long)F.fr.frames, F.fr.err ? 1 : 0,
         (unsigned long long)F.fr.bytes,
         F.eof ? "" : ", stream not finished");
}

static void on_linger(uv_timer_t *t) {
  uv_close((uv_handle_t *)t, on_uv_closed);
  qpeer_close((qpeer_handle_t *)&F.conn, on_handle_closed);
  qpeer_close((qpeer_handle_t *)&F.ep, on_handle_closed);
}

static void finish(int code) {
  if (F.done)
    return;
  F.done = 1;
  account_relay_bytes();
  print_timeline();
  if (code == 0) {
    if (F.fr.err || F.fr.frames == 0 || !F.eof || F.fr.hdrlen)
      code = 1;
    if (F.expect == EXPECT_DIRECT && !F.ever_direct)
      code = 1;
    if (F.expect == EXPECT_RELAY && F.ever_direct)
      code = 1;
  }
  printf("result: %s\n", code == 0 ? "OK" : "FAILED");
  fflush(stdout);
  F.exit_code = code;
  uv_timer_stop(&F.stat_timer);
  uv_timer_stop(&F.deadline);
  uv_timer_stop(&F.settle_timer);
  uv_close((uv_handle_t *)&F.stat_timer, on_uv_closed);
  uv_close((uv_handle_t *)&F.deadline, on_uv_closed);
  uv_close((uv_handle_t *)&F.settle_timer, on_uv_closed);
  if (F.have_stream)
    qpeer_close((qpeer_handle_t *)&F.st, on_handle_closed);
  if (F.connecting)
    qpeer_peer_connect_stop(&F.preq);
  if (F.connected) {
    /* Linger a few round trips: should our CONNECTION_CLOSE (or the ACK of
     * the camera's last packet) be lost, the camera retransmits and the
     * closed connection answers with its close again, so the camera
     * learns we are gone instead of waiting for its idle timeout. */
    qpeer_conn_stats_t cs;
    uint64_t ms = 300;
    if (qpeer_conn_get_stats(&F.conn, &cs) == 0)
      ms = cs.smoothed_rtt_us * 6 / 1000;
    ms = ms < 300 ? 300 : ms > 3000 ? 3000 : ms;
    qpeer_conn_shutdown(&F.conn, 0, "bye");
    uv_timer_start(&F.linger, on_linger, ms, 0);
    return;
  }
  uv_close((uv_handle_t *)&F.linger, on_uv_closed);
  qpeer_close((qpeer_handle_t *)&F.ep, on_handle_closed);
}

/* ---- main ------------------------------------------------------------------ */

static void usage(FILE *f) {
  fprintf(f,
          "usage: phone (TICKET | --ticket-file FILE | --peer PEERID) "
          "[--cache FILE]\n"
          "             [--key FILE] [--bind ADDR:PORT]\n"
          "             [--policy prefer_direct|direct_only|relay_only]\n"
          "             [--expect direct|relay|any] [--stun ADDR:PORT]\n"
          "             [--metrics ADDR:PORT] [--timeout SECONDS]\n"
          "Connects to the camera of TICKET, verifies every frame, prints "
          "one status\nline per second, every path change and a timeline. "
          "--stun defaults to the\nticket's relay (qpeer-relay answers STUN "
          "on its port); --metrics is the\nrelay's Prometheus address, for "
          "'relay bytes since migration'.\n--cache FILE keeps the peers "
          "reached (a bootstrap cache, 200 at most); --peer PEERID\n"
          "connects to a cached peer without a ticket.\n");
}

/* "https://198.51.100.1:4433" -> the address, when the host is a literal. */
static int relay_url_addr(const char *url, struct sockaddr_storage *out) {
  char hp[QPEER_TICKET_URL_MAX];
  char *slash;
  size_t n;
  if (strncasecmp(url, "https://", 8) != 0)
    return -1;
  n = strnlen(url + 8, sizeof(hp) - 1);
  memcpy(hp, url + 8, n);
  hp[n] = '\0';
  if ((slash = strchr(hp, '/')) != NULL)
    *slash = '\0';
  return qpeer_addr_parse(out, hp) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  qpeer_endpoint_options_t eo;
  qpeer_peer_connect_options_t po;
  qpeer_ticket_t t;
  struct sockaddr_storage bind_addr, stun_addr;
  const struct sockaddr *stun[1];
  const char *key = NULL, *ticket_text = NULL, *ticket_file = NULL;
  const char *cache_file = NULL, *peer_text = NULL;
  const char *alpn[] = {ALPN};
  static char tbuf[QPEER_TICKET_STRLEN_MAX + 16];
  int have_bind = 0, have_stun = 0, i, r;
  double timeout_s = 120;
  qpeer_peer_policy policy = QPEER_PREFER_DIRECT;

  memset(&F, 0, sizeof(F));
  F.loop = uv_default_loop();
  F.metrics_base = -1;
  F.metrics_settled = -1;
  frame_reader_init(&F.fr);
  for (i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      usage(stdout);
      return 0;
    }
    if (o[0] != '-') {
      ticket_text = o;
      continue;
    }
    if (!v) {
      usage(stderr);
      return 2;
    }
    i++;
    if (!strcmp(o, "--key")) {
      key = v;
    } else if (!strcmp(o, "--ticket-file")) {
      ticket_file = v;
    } else if (!strcmp(o, "--cache")) {
      cache_file = v;
    } else if (!strcmp(o, "--peer")) {
      peer_text = v;
    } else if (!strcmp(o, "--bind")) {
      if ((r = qpeer_addr_parse(&bind_addr, v)) != 0)
        return fail("--bind", r);
      have_bind = 1;
    } else if (!strcmp(o, "--stun")) {
      if ((r = qpeer_addr_parse(&stun_addr, v)) != 0)
        return fail("--stun", r);
      have_stun = 1;
    } else if (!strcmp(o, "--metrics")) {
      if ((r = qpeer_addr_parse(&F.metrics_addr, v)) != 0)
        return fail("--metrics", r);
      F.have_metrics = 1;
    } else if (!strcmp(o, "--timeout")) {
      timeout_s = atof(v);
    } else if (!strcmp(o, "--policy")) {
      if (!strcmp(v, "prefer_direct"))
        policy = QPEER_PREFER_DIRECT;
      else if (!strcmp(v, "direct_only"))
        policy = QPEER_DIRECT_ONLY;
      else if (!strcmp(v, "relay_only"))
        policy = QPEER_RELAY_ONLY;
      else {
        fprintf(stderr, "phone: unknown --policy '%s'\n", v);
        return 2;
      }
    } else if (!strcmp(o, "--expect")) {
      if (!strcmp(v, "direct"))
        F.expect = EXPECT_DIRECT;
      else if (!strcmp(v, "relay"))
        F.expect = EXPECT_RELAY;
      else if (!strcmp(v, "any"))
        F.expect = EXPECT_ANY;
      else {
        fprintf(stderr, "phone: unknown --expect '%s'\n", v);
        return 2;
      }
    } else {
      fprintf(stderr, "phone: unexpected argument '%s'\n", o);
      usage(stderr);
      return 2;
    }
  }
  if (ticket_file) {
    FILE *f = fopen(ticket_file, "r");
    if (!f || !fgets(tbuf, sizeof(tbuf), f)) {
      if (f)
        fclose(f);
      fprintf(stderr, "phone: cannot read %s\n", ticket_file);
      return 1;
    }
    fclose(f);
    ticket_text = tbuf;
  }
  if (!ticket_text && !peer_text) {
    usage(stderr);
    return 2;
  }
  if (peer_text && !cache_file) {
    fprintf(stderr, "phone: --peer needs --cache\n");
    return 2;
  }
  if (cache_file) {
    int corrupt = 0;
    if ((r = qpeer_bootstrap_init(F.loop, &F.cache, cache_file)) != 0)
      return fail("--cache", r);
    F.have_cache = 1;
    r = qpeer_bootstrap_load_sync(&F.cache, &corrupt);
    if (r == UV_ENOENT)
      r = 0; /* no cache yet */
    if (r != 0) {
      qpeer_bootstrap_free(&F.cache);
      return fail(cache_file, r);
    }
    if (corrupt)
      fprintf(stderr, "phone: %s was corrupted; ignored, it will be "
                      "rewritten\n", cache_file);
    fprintf(stderr, "phone: bootstrap cache %s: %zu peers\n", cache_file,
            qpeer_bootstrap_count(&F.cache));
  }
  if (ticket_text) {
    if ((r = qpeer_ticket_parse(&t, ticket_text)) != 0)
      return fail("ticket", r);
  } else {
    qpeer_peer_id_t pid;
    if ((r = qpeer_peer_id_parse(&pid, peer_text)) != 0)
      return fail("--peer", r);
    if ((r = qpeer_bootstrap_to_ticket(&F.cache, &pid, &t)) != 0) {
      fprintf(stderr, "phone: %s is not in the bootstrap cache\n",
              peer_text);
      return fail("--peer", r);
    }
    fprintf(stderr, "phone: ticket from the bootstrap cache (%zu "
                    "addresses, %zu relays)\n", t.naddrs, t.nrelays);
  }
  F.ticket = t;
  if (!have_stun && t.nrelays > 0 &&
      relay_url_addr(t.relays[0].url, &stun_addr) == 0)
    have_stun = 1;

  if (key) {
    r = qpeer_identity_load(&F.id, key);
    if (r == UV_ENOENT && (r = qpeer_identity_generate(&F.id)) == 0)
      r = qpeer_identity_save(F.id, key);
  } else {
    r = qpeer_identity_generate(&F.id);
  }
  if (r != 0)
    return fail(key ? key : "identity", r);
  {
    char pid[QPEER_PEER_ID_STRLEN];
    qpeer_peer_id_format(qpeer_identity_get_peer_id(F.id), pid, sizeof(pid));
    fprintf(stderr, "phone: peer ID %s\n", pid);
  }

  qpeer_endpoint_options_default(&eo);
  eo.identity = F.id;
  /* IPv4 by default: STUN (server-reflexive candidates) fails on the
   * dual-stack socket's v4-mapped path here (see the report). */
  if (!have_bind)
    qpeer_addr_parse(&bind_addr, "0.0.0.0:0");
  eo.bind_addr = (struct sockaddr *)&bind_addr;
  eo.keepalive_ms = 5000;
  eo.idle_timeout_ms = 30000;
  if ((r = qpeer_endpoint_init(F.loop, &F.ep, &eo)) != 0)
    return fail("endpoint", r);
  uv_timer_init(F.loop, &F.stat_timer);
  uv_timer_init(F.loop, &F.deadline);
  uv_timer_init(F.loop, &F.settle_timer);
  uv_timer_init(F.loop, &F.linger);
  F.t0 = uv_now(F.loop);

  qpeer_peer_connect_options_default(&po);
  po.policy = policy;
  po.alpn = alpn;
  po.nalpn = 1;
  if (have_stun) {
    stun[0] = (const struct sockaddr *)&stun_addr;
    po.stun_servers = stun;
    po.nstun = 1;
  }
  if (digest_init(&F.sha) != 0)
    r = UV_ENOMEM;
  else
    r = qpeer_peer_connect(&F.preq, &F.ep, &F.conn, &t, &po, on_peer_connect);
  if (r != 0) {
    qpeer_close((qpeer_handle_t *)&F.ep, NULL);
    uv_close((uv_handle_t *)&F.stat_timer, NULL);
    uv_close((uv_handle_t *)&F.deadline, NULL);
    uv_close((uv_handle_t *)&F.settle_timer, NULL);
    uv_close((uv_handle_t *)&F.linger, NULL);
    uv_run(F.loop, UV_RUN_DEFAULT);
    digest_free(&F.sha);
    if (F.have_cache)
      qpeer_bootstrap_free(&F.cache);
    qpeer_identity_unref(F.id);
    return fail("connect", r);
  }
  F.connecting = 1;
  if (timeout_s > 0)
    uv_timer_start(&F.deadline, on_deadline, (uint64_t)(timeout_s * 1000), 0);
  uv_run(F.loop, UV_RUN_DEFAULT);
  digest_free(&F.sha);
  if (F.have_cache)
    qpeer_bootstrap_free(&F.cache);
  qpeer_identity_unref(F.id);
  uv_loop_close(F.loop);
  return F.exit_code;
}
