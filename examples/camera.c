/* SPDX-License-Identifier: MIT */
/*
 * examples/camera: a "camera" behind NAT. It binds at a qpeer-relay, prints
 * its ticket (relay address + relay URL and pin), accepts phones (allowlist
 * optional), advertises its candidates so that the phone can punch a direct
 * path, and streams synthetic video frames (examples/common/frames.h) on a
 * unidirectional stream at a fixed bitrate and frame rate, paced by a
 * uv_timer, for --seconds or until the phone leaves.
 *
 *   camera --relay ADDR:PORT --relay-pin PEERID [--relay-token TOKEN]
 *          [--key FILE] [--bind ADDR:PORT] [--ticket-file FILE]
 *          [--allow PEERID]... [--bitrate BPS] [--fps N] [--seconds S]
 *          [--ticket-host]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "frames.h"
#include "qpeer.h"

#define ALPN "qpeer-camera"
#define MAX_ALLOW 16

typedef struct frame_buf {
  qpeer_write_t req; /* the stream write */
  size_t len;        /* frame bytes */
  uint8_t data[];    /* the frame */
} frame_buf;

static struct {
  uv_loop_t *loop;
  qpeer_endpoint_t ep;
  qpeer_identity_t *id;
  qpeer_relay_bind_t rbind;
  int bound;
  struct sockaddr_storage relay_addr, bound_addr;
  struct sockaddr_storage stun_addr[4];
  size_t nstun;
  qpeer_peer_id_t relay_pin;
  qpeer_ticket_t t;
  const char *ticket_file;
  int ticket_host;
  qpeer_conn_t conn;
  int have_conn;
  qpeer_peer_advertise_t areq;
  int advertising;
  qpeer_stream_t st;
  int have_stream, shutting;
  qpeer_shutdown_t sh;
  uv_timer_t tick, stat_timer, stop_timer;
  uint64_t bitrate;
  unsigned fps;
  double seconds;
  uint64_t seq, bytes, skipped;
  uint64_t t0; /* uv_now at stream start */
  int done, exit_code;
  digest sha;            /* SHA-256 of every byte written to the stream */
  int acked;             /* every frame acknowledged (the FIN too) */
} C;

static void finish(int code);
static void on_stop_timer(uv_timer_t *t);

static int fail(const char *what, int err) {
  fprintf(stderr, "camera: %s: %s (%s)\n", what, qpeer_err_name(err),
          qpeer_strerror(err));
  return 1;
}

static void on_handle_closed(qpeer_handle_t *h) { (void)h; }
static void on_uv_closed(uv_handle_t *h) { (void)h; }

static int load_identity(const char *path, qpeer_identity_t **pid) {
  int r;
  if (!path)
    return qpeer_identity_generate(pid);
  r = qpeer_identity_load(pid, path);
  if (r == UV_ENOENT) {
    if ((r = qpeer_identity_generate(pid)) != 0)
      return r;
    r = qpeer_identity_save(*pid, path);
  }
  return r;
}

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

/* ---- streaming ------------------------------------------------------------- */

static size_t frame_size(void) {
  uint64_t sz = C.bitrate / 8 / C.fps;
  if (sz < FRAME_HDR + 4 + 1)
    sz = FRAME_HDR + 4 + 1;
  if (sz > FRAME_HDR + 4 + FRAME_MAX_PAYLOAD)
    sz = FRAME_HDR + 4 + FRAME_MAX_PAYLOAD;
  return (size_t)sz;
}

static void on_frame_written(qpeer_write_t *req, int status) {
  frame_buf *f = (frame_buf *)req;
  free(f);
  if (status != 0 && !C.done && status != UV_ECANCELED) {
    fail("send", status);
    finish(1);
  }
}

static void on_shutdown(qpeer_shutdown_t *req, int status) {
  (void)req;
  if (C.done)
    return;
  if (status != 0) {
    fail("shutdown", status);
    finish(1);
    return;
  }
  C.acked = 1;
  fprintf(stderr, "camera: all %llu frames acknowledged\n",
          (unsigned long long)C.seq);
  /* The phone closes once it has read the end; should its
   * CONNECTION_CLOSE be lost, end a little later anyway. */
  uv_timer_start(&C.stop_timer, on_stop_timer, 5000, 0);
  /* The phone closes the connection once it has read the end. */
}

static void stop_streaming(void) {
  int r;
  if (C.shutting || !C.have_stream)
    return;
  C.shutting = 1;
  uv_timer_stop(&C.tick);
  {
    char hex[DIGEST_HEX_LEN];
    digest_hex(&C.sha, hex);
    fprintf(stderr, "camera: stream ends after %llu frames (%llu bytes, "
                    "sha256 %s)\n",
            (unsigned long long)C.seq, (unsigned long long)C.bytes, hex);
  }
  if ((r = qpeer_stream_shutdown(&C.sh, &C.st, on_shutdown)) != 0) {
    fail("shutdown", r);
    finish(1);
  }
}

static void on_tick(uv_timer_t *t) {
  size_t len = frame_size();
  frame_buf *f;
  uv_buf_t b;
  int r;
  uint64_t now = uv_now(C.loop);
  (void)t;
  if (C.done || C.shutting)
    return;
  if (C.seconds > 0 && (double)(now - C.t0) >= C.seconds * 1000) {
    stop_streaming();
    return;
  }
  /* Back-pressure: more than ~2 s of video unacknowledged, skip a tick. */
  if (qpeer_stream_get_write_queue_size(&C.st) > 2 * C.bitrate / 8) {
    C.skipped++;
    return;
  }
  f = malloc(sizeof(*f) + len);
  if (!f) {
    finish(1);
    return;
  }
  f->len = frame_write(f->data, len, C.seq, (now - C.t0) * 1000,
                       (uint32_t)(len - FRAME_HDR - 4));
  if (f->len == 0) {
    free(f);
    fprintf(stderr, "camera: frame does not fit\n");
    finish(1);
    return;
  }
  b = uv_buf_init((char *)f->data, (unsigned)f->len);
  r = qpeer_stream_write(&f->req, &C.st, &b, 1, on_frame_written);
  if (r == UV_ENOBUFS) {
    free(f);
    C.skipped++;
    return;
  }
  if (r != 0) {
    free(f);
    fail("send", r);
    finish(1);
    return;
  }
  digest_add(&C.sha, f->data, f->len);
  C.seq++;
  C.bytes += f->len;
}

static void on_stat(uv_timer_t *t) {
  qpeer_conn_stats_t s;
  char a[QPEER_ADDR_STRLEN] = "?";
  double secs = (double)(uv_now(C.loop) - C.t0) / 1000.0;
  (void)t;
  if (!C.have_conn || qpeer_conn_get_stats(&C.conn, &s) != 0)
    return;
  qpeer_addr_format((struct sockaddr *)&s.path.remote, a, sizeof(a));
  fprintf(stderr,
          "camera: t=%5.1fs sent %llu frames (%.0f kbit/s), skipped %llu, "
          "path %s %s, rtt %.1f ms\n",
          secs, (unsigned long long)C.seq,
          secs > 0 ? (double)C.bytes * 8 / secs / 1000 : 0.0,
          (unsigned long long)C.skipped,
          addr_eq(&s.path.local, &C.bound_addr) ? "relay" : "direct", a,
          s.smoothed_rtt_us / 1000.0);
}

static void start_streaming(void) {
  int r;
  if ((r = qpeer_stream_open(&C.conn, &C.st, QPEER_STREAM_UNI)) != 0) {
    fail("stream", r);
    finish(1);
    return;
  }
  if (digest_init(&C.sha) != 0) {
    fprintf(stderr, "camera: cannot start SHA-256\n");
    qpeer_close((qpeer_handle_t *)&C.st, on_handle_closed);
    finish(1);
    return;
  }
  C.have_stream = 1;
  C.t0 = uv_now(C.loop);
  fprintf(stderr,
          "camera: streaming %u fps, %llu bit/s (%zu-byte frames)%s\n",
          C.fps, (unsigned long long)C.bitrate, frame_size(),
          C.seconds > 0 ? "" : " until the phone leaves");
  uv_timer_start(&C.tick, on_tick, 0, 1000 / C.fps ? 1000 / C.fps : 1);
  uv_timer_start(&C.stat_timer, on_stat, 1000, 1000);
}

/* ---- connection ------------------------------------------------------------ */

static void on_closed(qpeer_conn_t *c, int status,
                      const qpeer_close_info_t *info) {
  (void)c;
  (void)info;
  if (C.done)
    return;
  if (status == 0 || status == QPEER_EPEERCLOSED) {
    fprintf(stderr, "camera: phone left after %llu frames\n",
            (unsigned long long)C.seq);
    finish(0);
    return;
  }
  if (C.acked) {
    /* Every frame and the end of the stream were acknowledged: the phone
     * has them all. Its CONNECTION_CLOSE can be lost on a lossy link;
     * the connection then ends by its idle timeout, which is no failure. */
    fprintf(stderr, "camera: connection ended after the stream was "
                    "acknowledged (%s)\n", qpeer_err_name(status));
    finish(0);
    return;
  }
  fail("connection", status);
  finish(1);
}

static void on_path(qpeer_conn_t *c, qpeer_path_reason reason,
                    const qpeer_path_t *old_path,
                    const qpeer_path_t *new_path) {
  char a[QPEER_ADDR_STRLEN];
  int was = addr_eq(&old_path->local, &C.bound_addr);
  int is = addr_eq(&new_path->local, &C.bound_addr);
  (void)c;
  qpeer_addr_format((const struct sockaddr *)&new_path->remote, a, sizeof(a));
  fprintf(stderr, "path: %s -> %s %s (%s)\n", was ? "relay" : "direct",
          is ? "relay" : "direct", a,
          reason == QPEER_PATH_FAILED ? "failed validation"
          : reason == QPEER_PATH_PEER_MOVED ? "peer moved"
                                            : "migrated");
}

static void on_stream(qpeer_conn_t *c, int status) {
  /* The phone opens no streams; refuse any. */
  qpeer_stream_t *extra = malloc(sizeof(*extra));
  (void)status;
  if (extra && qpeer_conn_accept_stream(c, extra) == 0)
    qpeer_close((qpeer_handle_t *)extra, (qpeer_close_cb)free);
  else
    free(extra);
}

static void on_advertised(qpeer_peer_advertise_t *req, int status) {
  size_t i;
  C.advertising = 0;
  if (status == 0) {
    fprintf(stderr, "camera: advertised %zu candidates:", req->ncands);
    for (i = 0; i < req->gather.ncands; i++) {
      char a[QPEER_ADDR_STRLEN];
      qpeer_addr_format((const struct sockaddr *)&req->gather.cands[i].addr,
                        a, sizeof(a));
      fprintf(stderr, " %s %s", qpeer_candidate_type_name(
                                    req->gather.cands[i].type), a);
    }
    fprintf(stderr, "\n");
  } else if (status != UV_ECANCELED)
    fail("advertise", status);
}

static void on_connection(qpeer_endpoint_t *ep, int status) {
  qpeer_conn_callbacks_t cbs;
  qpeer_peer_id_t pid;
  qpeer_path_t path;
  char id[QPEER_PEER_ID_STRLEN] = "?", a[QPEER_ADDR_STRLEN] = "?";
  const struct sockaddr *stun[4];
  size_t i, n;
  int r;
  if (status != 0)
    return;
  if (C.have_conn) { /* One phone at a time. */
    qpeer_conn_t *extra = malloc(sizeof(*extra));
    if (extra && qpeer_endpoint_accept(ep, extra) == 0) {
      qpeer_conn_shutdown(extra, 1, "busy");
      qpeer_close((qpeer_handle_t *)extra, (qpeer_close_cb)free);
    } else {
      free(extra);
    }
    return;
  }
  if (qpeer_endpoint_accept(ep, &C.conn) != 0)
    return;
  C.have_conn = 1;
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_closed = on_closed;
  cbs.on_stream = on_stream;
  cbs.on_path = on_path;
  qpeer_conn_set_callbacks(&C.conn, &cbs);
  if (qpeer_conn_get_peer_id(&C.conn, &pid) == 0)
    qpeer_peer_id_format(&pid, id, sizeof(id));
  if (qpeer_conn_get_path(&C.conn, &path) == 0)
    qpeer_addr_format((struct sockaddr *)&path.remote, a, sizeof(a));
  fprintf(stderr, "camera: phone %s connected at %s (via %s)\n", id, a,
          addr_eq(&path.local, &C.bound_addr) ? "relay" : "direct");
  /* The relay also answers STUN on its port: our server-reflexive
   * candidate (the NAT's mapping of our socket) comes from there. */
  n = C.nstun ? C.nstun : 1;
  for (i = 0; i < n; i++)
    stun[i] = (const struct sockaddr *)(C.nstun ? &C.stun_addr[i]
                                                : &C.relay_addr);
  r = qpeer_peer_advertise(&C.areq, &C.conn, stun, n, 0, on_advertised);
  if (r != 0)
    fail("advertise", r);
  else
    C.advertising = 1;
  start_streaming();
}

static void finish(int code) {
  if (C.done)
    return;
  C.done = 1;
  C.exit_code = code;
  uv_timer_stop(&C.tick);
  uv_timer_stop(&C.stat_timer);
  uv_close((uv_handle_t *)&C.tick, on_uv_closed);
  uv_close((uv_handle_t *)&C.stat_timer, on_uv_closed);
  uv_close((uv_handle_t *)&C.stop_timer, on_uv_closed);
  if (C.have_stream)
    qpeer_close((qpeer_handle_t *)&C.st, on_handle_closed);
  qpeer_relay_bind_close(&C.rbind, on_handle_closed);
  if (C.have_conn) {
    if (code == 0)
      qpeer_conn_shutdown(&C.conn, 0, "done");
    qpeer_close((qpeer_handle_t *)&C.conn, on_handle_closed);
  }
  qpeer_close((qpeer_handle_t *)&C.ep, on_handle_closed);
}

/* Without a phone for this long (--seconds + 60 s, when --seconds is set),
 * give up so that scripts always end. */
static void on_stop_timer(uv_timer_t *t) {
  (void)t;
  if (!C.have_conn) {
    fprintf(stderr, "camera: no phone came; giving up\n");
    finish(1);
  } else if (!C.done) {
    fprintf(stderr, "camera: the phone did not close; ending\n");
    finish(C.shutting ? 0 : 1);
  }
}

/* ---- ticket ---------------------------------------------------------------- */

static int write_ticket(void) {
  static char text[QPEER_TICKET_STRLEN_MAX];
  int r;
  if ((r = qpeer_ticket_format(&C.t, text, sizeof(text))) < 0)
    return fail("ticket", r);
  fprintf(stderr, "camera: ticket: %s\n", text);
  if (C.ticket_file) {
    char tmp[4096];
    FILE *f;
    snprintf(tmp, sizeof(tmp), "%s.tmp", C.ticket_file);
    f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", text) < 0 || fclose(f) != 0 ||
        rename(tmp, C.ticket_file) != 0)
      return fail(C.ticket_file, UV_EIO);
  }
  return 0;
}

static void on_bound(qpeer_relay_bind_t *b, int status,
                     const struct sockaddr_storage *addrs, size_t n) {
  char a[QPEER_ADDR_STRLEN];
  (void)b;
  if (status != 0) {
    fail("relay binding", status);
    if (!C.bound && (status == QPEER_EREFUSED || status == QPEER_EPEERID ||
                     status == QPEER_ECERT || status == QPEER_EUNSUPPORTED ||
                     status == QPEER_ERELAY))
      finish(1);
    return;
  }
  if (n == 0)
    return;
  qpeer_addr_format((const struct sockaddr *)&addrs[0], a, sizeof(a));
  C.bound_addr = addrs[0];
  if (C.bound) {
    fprintf(stderr, "camera: relay address now %s\n", a);
    return;
  }
  C.bound = 1;
  fprintf(stderr, "camera: bound at the relay as %s\n", a);
  if (qpeer_ticket_add_typed_addr(&C.t, (const struct sockaddr *)&addrs[0],
                                  QPEER_TICKET_ADDR_RELAY) != 0 ||
      write_ticket() != 0)
    finish(1);
}

/* ---- main ------------------------------------------------------------------ */

static int parse_rate(const char *s, uint64_t *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || v <= 0)
    return -1;
  if (*end == 'k' || *end == 'K')
    v *= 1e3, end++;
  else if (*end == 'm' || *end == 'M')
    v *= 1e6, end++;
  if (*end != '\0' || v > 1e9)
    return -1;
  *out = (uint64_t)v;
  return 0;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: camera --relay ADDR:PORT --relay-pin PEERID "
          "[--relay-token TOKEN]\n"
          "              [--key FILE] [--bind ADDR:PORT (default 0.0.0.0:0)] [--ticket-file "
          "FILE]\n"
          "              [--allow PEERID]... [--bitrate BPS] [--fps N] "
          "[--seconds S]\n"
          "              [--stun ADDR:PORT]... [--ticket-host]\n"
          "Binds at the relay, prints a ticket (and writes it to "
          "--ticket-file), accepts\none phone and streams synthetic frames "
          "to it on a unidirectional stream at\n--bitrate (default 2M bit/s; "
          "k and M suffixes) and --fps (default 25), for\n--seconds "
          "(default: until the phone leaves). --ticket-host also puts the\n"
          "socket's address in the ticket (otherwise candidates reach the "
          "phone only\nin-connection). --stun servers (default: the relay, which\nanswers STUN on its "
          "port) give the candidates behind NAT.\n");
}

int main(int argc, char **argv) {
  qpeer_endpoint_options_t eo;
  qpeer_listen_options_t lo;
  qpeer_masque_options_t mo;
  qpeer_peer_id_t allow[MAX_ALLOW];
  size_t nallow = 0;
  struct sockaddr_storage bind_addr;
  const char *key = NULL, *token = NULL, *relay_text = NULL;
  const char *alpn[] = {ALPN};
  char url[QPEER_TICKET_URL_MAX];
  int have_bind = 0, have_pin = 0, i, r;

  memset(&C, 0, sizeof(C));
  C.loop = uv_default_loop();
  C.bitrate = 2000000;
  C.fps = 25;
  for (i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(o, "--ticket-host")) {
      C.ticket_host = 1;
      continue;
    } else if (!v) {
      usage(stderr);
      return 2;
    }
    i++;
    if (!strcmp(o, "--key")) {
      key = v;
    } else if (!strcmp(o, "--relay")) {
      relay_text = v;
      if ((r = qpeer_addr_parse(&C.relay_addr, v)) != 0)
        return fail("--relay (ADDR:PORT)", r);
    } else if (!strcmp(o, "--relay-pin")) {
      if ((r = qpeer_peer_id_parse(&C.relay_pin, v)) != 0)
        return fail("--relay-pin", r);
      have_pin = 1;
    } else if (!strcmp(o, "--stun")) {
      if (C.nstun == 4) {
        fprintf(stderr, "camera: at most 4 --stun\n");
        return 2;
      }
      if ((r = qpeer_addr_parse(&C.stun_addr[C.nstun++], v)) != 0)
        return fail("--stun", r);
    } else if (!strcmp(o, "--relay-token")) {
      token = v;
    } else if (!strcmp(o, "--bind")) {
      if ((r = qpeer_addr_parse(&bind_addr, v)) != 0)
        return fail("--bind", r);
      have_bind = 1;
    } else if (!strcmp(o, "--ticket-file")) {
      C.ticket_file = v;
    } else if (!strcmp(o, "--allow")) {
      if (nallow == MAX_ALLOW) {
        fprintf(stderr, "camera: at most %d --allow\n", MAX_ALLOW);
        return 2;
      }
      if ((r = qpeer_peer_id_parse(&allow[nallow++], v)) != 0)
        return fail("--allow", r);
    } else if (!strcmp(o, "--bitrate")) {
      if (parse_rate(v, &C.bitrate) != 0) {
        fprintf(stderr, "camera: bad --bitrate '%s'\n", v);
        return 2;
      }
    } else if (!strcmp(o, "--fps")) {
      C.fps = (unsigned)atoi(v);
      if (C.fps < 1 || C.fps > 1000) {
        fprintf(stderr, "camera: --fps must be 1..1000\n");
        return 2;
      }
    } else if (!strcmp(o, "--seconds")) {
      C.seconds = atof(v);
    } else {
      fprintf(stderr, "camera: unexpected argument '%s'\n", o);
      usage(stderr);
      return 2;
    }
  }
  if (!relay_text || !have_pin) {
    fprintf(stderr, "camera: --relay and --relay-pin are required\n");
    usage(stderr);
    return 2;
  }
  if ((r = load_identity(key, &C.id)) != 0)
    return fail(key ? key : "identity", r);
  {
    char pid[QPEER_PEER_ID_STRLEN];
    qpeer_peer_id_format(qpeer_identity_get_peer_id(C.id), pid, sizeof(pid));
    fprintf(stderr, "camera: peer ID %s\n", pid);
  }

  qpeer_endpoint_options_default(&eo);
  eo.identity = C.id;
  /* IPv4 by default: STUN (server-reflexive candidates) fails on the
   * dual-stack socket's v4-mapped path here (see the report). */
  if (!have_bind)
    qpeer_addr_parse(&bind_addr, "0.0.0.0:0");
  eo.bind_addr = (struct sockaddr *)&bind_addr;
  eo.keepalive_ms = 5000;
  eo.idle_timeout_ms = 30000;
  if ((r = qpeer_endpoint_init(C.loop, &C.ep, &eo)) != 0)
    return fail("endpoint", r);
  qpeer_listen_options_default(&lo);
  lo.alpn = alpn;
  lo.nalpn = 1;
  lo.allow = nallow ? allow : NULL;
  lo.nallow = nallow;
  if ((r = qpeer_endpoint_listen(&C.ep, &lo, on_connection)) != 0)
    return fail("listen", r);

  qpeer_ticket_init(&C.t);
  C.t.peer_id = *qpeer_identity_get_peer_id(C.id);
  if (C.ticket_host) {
    struct sockaddr_storage local;
    if (qpeer_endpoint_get_local_addr(&C.ep, &local) == 0)
      qpeer_ticket_add_typed_addr(&C.t, (struct sockaddr *)&local,
                                  QPEER_TICKET_ADDR_HOST);
  }
  snprintf(url, sizeof(url), "https://%s", relay_text);
  if ((r = qpeer_ticket_add_relay(&C.t, url, QPEER_TICKET_AUTH_PIN,
                                  &C.relay_pin)) != 0)
    return fail("--relay (ticket URL)", r);

  uv_timer_init(C.loop, &C.tick);
  uv_timer_init(C.loop, &C.stat_timer);
  uv_timer_init(C.loop, &C.stop_timer);
  if (C.seconds > 0)
    uv_timer_start(&C.stop_timer, on_stop_timer,
                   (uint64_t)(C.seconds * 1000) + 60000, 0);

  qpeer_masque_options_default(&mo);
  mo.proxy = (struct sockaddr *)&C.relay_addr;
  mo.auth = QPEER_AUTH_PEER_ID;
  mo.peer_id = &C.relay_pin;
  mo.bearer_token = token;
  if ((r = qpeer_relay_bind_init(&C.ep, &C.rbind, &mo)) != 0 ||
      (r = qpeer_relay_bind_start(&C.rbind, on_bound)) != 0)
    return fail("relay bind", r);

  uv_run(C.loop, UV_RUN_DEFAULT);
  digest_free(&C.sha);
  qpeer_identity_unref(C.id);
  uv_loop_close(C.loop);
  return C.exit_code;
}
