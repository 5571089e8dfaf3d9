/* SPDX-License-Identifier: MIT */
/*
 * qpeer pipe: netcat over QUIC. "listen" prints a ticket and pipes
 * stdin/stdout with the first peer that connects; "connect TICKET" dials
 * every address in the ticket at once, keeps the first that completes its
 * handshake (with the ticket's peer ID pinned) and pipes. Standard input
 * and output go through uv_fs requests, so files, pipes and terminals all
 * work; both directions apply back-pressure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define NBUF 8
#define CHUNK (256 * 1024)
#define WRITEV_MAX 64 /* stdout buffers per write */
#define OUT_HIGH (8 * 1024 * 1024) /* stop reading the stream above this */
#define ALPN "qpeer-pipe"

typedef struct outbuf {
  struct outbuf *next; /* next in the stdout queue */
  size_t len;          /* bytes */
  char data[];         /* payload */
} outbuf;

typedef struct attempt {
  qpeer_connect_t req; /* connect request */
  qpeer_conn_t conn;   /* its connection */
  int live;            /* handle initialised, not yet closed */
} attempt;

static struct {
  uv_loop_t *loop;                 /* the loop */
  qpeer_endpoint_t ep;             /* our endpoint */
  qpeer_identity_t *id;            /* our identity */
  int listening;                   /* listen mode */
  qpeer_conn_t conn;               /* accepted connection (listen mode) */
  qpeer_conn_t *active;            /* the connection in use */
  attempt att[QPEER_TICKET_MAX_ADDRS]; /* dial attempts */
  int natt, npending;              /* attempts made / still running */
  int last_err;                    /* last dial error */
  qpeer_stream_t st;               /* the piped stream */
  int have_stream;                 /* st is live */
  uv_fs_t rreq;                    /* stdin read */
  char in[NBUF][CHUNK];            /* stdin buffers */
  int busy[NBUF];                  /* buffer held by a write */
  qpeer_write_t w[NBUF];           /* stream writes */
  int reading, in_eof;             /* stdin state */
  qpeer_shutdown_t sh;             /* FIN */
  int sh_done;                     /* FIN acknowledged */
  uv_fs_t wreq;                    /* stdout write */
  outbuf *oq_head, *oq_tail;       /* stdout queue */
  size_t oq_bytes;                 /* bytes queued for stdout */
  int writing, rx_eof, rx_paused;  /* stdout state */
  uint64_t tx_bytes, rx_bytes;     /* payload counters */
  uint64_t t_start;                /* when the stream started (ns) */
  int stats, quiet, done, exit_code; /* flags and result */
  const char *ticket_file;         /* where to write the ticket */
  /* relay (listen --relay) and peer connect (connect with a relay) */
  int use_relay;                   /* listen: bound at a relay */
  qpeer_relay_bind_t rbind;        /* the binding */
  int bound;                       /* bound at least once */
  struct sockaddr_storage relay_addr; /* the relay's address */
  struct sockaddr_storage bound_addr; /* our public address there */
  qpeer_peer_id_t relay_pin;       /* the relay's peer ID */
  qpeer_ticket_t t;                /* listen: the ticket printed */
  int peer_connect;                /* connect: via qpeer_peer_connect */
  qpeer_peer_connect_t preq;       /* its request */
  qpeer_conn_t pconn;              /* its connection */
  qpeer_peer_advertise_t areq;     /* listen: advertisement */
  unsigned peer_flags;             /* QPEER_PEER_ALLOW_* */
} P;

static void finish(int code);
static void read_stdin(void);

static void on_handle_closed(qpeer_handle_t *h) { (void)h; }

static void print_stats(void) {
  qpeer_conn_stats_t s;
  char l[QPEER_ADDR_STRLEN], r[QPEER_ADDR_STRLEN];
  double secs = (double)(uv_hrtime() - P.t_start) / 1e9;
  if (!P.active || qpeer_conn_get_stats(P.active, &s) != 0)
    return;
  qpeer_addr_format((struct sockaddr *)&s.path.local, l, sizeof(l));
  qpeer_addr_format((struct sockaddr *)&s.path.remote, r, sizeof(r));
  fprintf(stderr,
          "qpeer: sent %llu B, received %llu B in %.3f s (%.1f Mbit/s)\n"
          "qpeer: path %s -> %s, rtt %.2f ms (min %.2f), cwnd %llu B\n"
          "qpeer: packets sent %llu, received %llu, lost %llu; udp bytes "
          "sent %llu, received %llu\n",
          (unsigned long long)P.tx_bytes, (unsigned long long)P.rx_bytes,
          secs,
          secs > 0 ? (double)(P.tx_bytes + P.rx_bytes) * 8 / secs / 1e6 : 0.0,
          l, r, s.smoothed_rtt_us / 1000.0, s.min_rtt_us / 1000.0,
          (unsigned long long)s.cwnd, (unsigned long long)s.packets_sent,
          (unsigned long long)s.packets_received,
          (unsigned long long)s.packets_lost,
          (unsigned long long)s.bytes_sent,
          (unsigned long long)s.bytes_received);
}

static void maybe_done(void) {
  if (P.done || !P.rx_eof || P.writing || P.oq_head || !P.sh_done)
    return;
  finish(0);
}

/* ---- stdout ---------------------------------------------------------------- */

static void write_next(void);

static void on_stdout(uv_fs_t *req) {
  ssize_t r = req->result;
  size_t left;
  uv_fs_req_cleanup(req);
  P.writing = 0;
  if (r < 0) {
    cli_fail("stdout", (int)r);
    finish(1);
    return;
  }
  /* Drop what was written (possibly part of the last buffer). */
  left = (size_t)r;
  while (left > 0 && P.oq_head) {
    outbuf *b = P.oq_head;
    if (left < b->len) {
      memmove(b->data, b->data + left, b->len - left);
      b->len -= left;
      P.oq_bytes -= left;
      break;
    }
    left -= b->len;
    P.oq_bytes -= b->len;
    P.oq_head = b->next;
    if (!P.oq_head)
      P.oq_tail = NULL;
    free(b);
  }
  if (P.rx_paused && P.oq_bytes < OUT_HIGH / 2 && P.have_stream) {
    P.rx_paused = 0;
    extern void pipe_resume_read(void);
    pipe_resume_read();
  }
  write_next();
  maybe_done();
}

static void write_next(void) {
  uv_buf_t b[WRITEV_MAX];
  outbuf *o;
  unsigned n = 0;
  if (P.writing || !P.oq_head || P.done)
    return;
  /* Gather queued buffers into one writev. */
  for (o = P.oq_head; o && n < WRITEV_MAX; o = o->next)
    b[n++] = uv_buf_init(o->data, (unsigned)o->len);
  P.writing = 1;
  if (uv_fs_write(P.loop, &P.wreq, 1, b, n, -1, on_stdout) != 0) {
    P.writing = 0;
    finish(1);
  }
}

static void on_stream_read(qpeer_stream_t *s, ssize_t n, const uint8_t *d) {
  outbuf *b;
  if (n == UV_EOF) {
    P.rx_eof = 1;
    maybe_done();
    return;
  }
  if (n < 0) {
    cli_fail("receive", (int)n);
    finish(1);
    return;
  }
  b = malloc(sizeof(*b) + (size_t)n);
  if (!b) {
    finish(1);
    return;
  }
  b->next = NULL;
  b->len = (size_t)n;
  memcpy(b->data, d, (size_t)n);
  if (P.oq_tail)
    P.oq_tail->next = b;
  else
    P.oq_head = b;
  P.oq_tail = b;
  P.oq_bytes += (size_t)n;
  P.rx_bytes += (uint64_t)n;
  if (P.oq_bytes > OUT_HIGH) {
    qpeer_stream_read_stop(s);
    P.rx_paused = 1;
  }
  write_next();
}

void pipe_resume_read(void);
void pipe_resume_read(void) { qpeer_stream_read_start(&P.st, on_stream_read); }

/* ---- stdin ----------------------------------------------------------------- */

static void on_shutdown(qpeer_shutdown_t *req, int status) {
  (void)req;
  if (status != 0 && !P.done) {
    cli_fail("send", status);
    finish(1);
    return;
  }
  P.sh_done = 1;
  maybe_done();
}

static void on_written(qpeer_write_t *req, int status) {
  int i = (int)(req - P.w);
  P.busy[i] = 0;
  if (status != 0) {
    if (!P.done) {
      cli_fail("send", status);
      finish(1);
    }
    return;
  }
  read_stdin();
}

static int free_buf(void) {
  int i;
  for (i = 0; i < NBUF; i++)
    if (!P.busy[i])
      return i;
  return -1;
}

static void on_stdin(uv_fs_t *req) {
  ssize_t n = req->result;
  int i = (int)(intptr_t)req->data, r;
  uv_fs_req_cleanup(req);
  P.reading = 0;
  if (P.done)
    return;
  if (n < 0) {
    cli_fail("stdin", (int)n);
    finish(1);
    return;
  }
  if (n == 0) {
    P.in_eof = 1;
    P.busy[i] = 0;
    if ((r = qpeer_stream_shutdown(&P.sh, &P.st, on_shutdown)) != 0) {
      cli_fail("shutdown", r);
      finish(1);
    }
    return;
  }
  {
    uv_buf_t b = uv_buf_init(P.in[i], (unsigned)n);
    r = qpeer_stream_write(&P.w[i], &P.st, &b, 1, on_written);
  }
  if (r != 0) {
    P.busy[i] = 0;
    cli_fail("send", r);
    finish(1);
    return;
  }
  P.tx_bytes += (uint64_t)n;
  read_stdin();
}

static void read_stdin(void) {
  int i;
  uv_buf_t b;
  if (P.reading || P.in_eof || P.done || (i = free_buf()) < 0)
    return;
  P.busy[i] = 1;
  P.reading = 1;
  P.rreq.data = (void *)(intptr_t)i;
  b = uv_buf_init(P.in[i], CHUNK);
  if (uv_fs_read(P.loop, &P.rreq, 0, &b, 1, -1, on_stdin) != 0) {
    P.reading = 0;
    finish(1);
  }
}

/* ---- connection ------------------------------------------------------------ */

static void start_piping(void) {
  P.have_stream = 1;
  P.t_start = uv_hrtime();
  qpeer_stream_read_start(&P.st, on_stream_read);
  read_stdin();
}

static void on_closed(qpeer_conn_t *c, int status,
                      const qpeer_close_info_t *info) {
  (void)c;
  (void)info;
  if (P.done)
    return;
  /* The peer closes once it has all our data and sent all of its own. */
  if ((status == QPEER_EPEERCLOSED || status == 0) && P.rx_eof && P.in_eof &&
      !P.writing && !P.oq_head) {
    finish(0);
    return;
  }
  if (P.rx_eof && P.in_eof && (status == QPEER_EPEERCLOSED || status == 0)) {
    P.sh_done = 1; /* Everything was delivered; flush stdout, then exit. */
    maybe_done();
    return;
  }
  cli_fail("connection", status);
  finish(1);
}

static void on_stream(qpeer_conn_t *c, int status) {
  if (status != 0 || P.have_stream) {
    qpeer_stream_t *extra = malloc(sizeof(*extra));
    if (extra && qpeer_conn_accept_stream(c, extra) == 0)
      qpeer_close((qpeer_handle_t *)extra, (qpeer_close_cb)free);
    else
      free(extra);
    return;
  }
  if (qpeer_conn_accept_stream(c, &P.st) == 0)
    start_piping();
}

static int addr_eq(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
  }
  return 0;
}

/* Whether |p| goes through the relay: its remote is the relay address we
 * dial (connect) or its local is our bound address (listen). */
static int path_is_relay(const qpeer_path_t *p) {
  if (P.peer_connect && P.preq.relay_path.remote.ss_family != AF_UNSPEC)
    return addr_eq((const struct sockaddr *)&p->remote,
                            (const struct sockaddr *)&P.preq.relay_path.remote);
  if (P.use_relay && P.bound)
    return addr_eq((const struct sockaddr *)&p->local,
                            (const struct sockaddr *)&P.bound_addr);
  return 0;
}

static void on_path(qpeer_conn_t *c, qpeer_path_reason reason,
                    const qpeer_path_t *old_path,
                    const qpeer_path_t *new_path) {
  char a[QPEER_ADDR_STRLEN];
  int was = path_is_relay(old_path), is = path_is_relay(new_path);
  (void)c;
  qpeer_addr_format((const struct sockaddr *)&new_path->remote, a, sizeof(a));
  if (reason == QPEER_PATH_FAILED) {
    fprintf(stderr, "path: %s -> %s %s failed validation\n",
            was ? "relay" : "direct", is ? "relay" : "direct", a);
    return;
  }
  if (P.peer_connect && reason == QPEER_PATH_MIGRATED && !is &&
      P.preq.punch_started_ms)
    fprintf(stderr, "path: %s -> direct %s (validated in %llu ms)\n",
            was ? "relay" : "direct", a,
            (unsigned long long)(uv_now(P.loop) - P.preq.punch_started_ms));
  else
    fprintf(stderr, "path: %s -> %s %s (%s)\n", was ? "relay" : "direct",
            is ? "relay" : "direct", a,
            reason == QPEER_PATH_PEER_MOVED ? "peer moved" : "migrated");
}

static void on_advertised(qpeer_peer_advertise_t *req, int status) {
  if (!P.quiet && status == 0)
    fprintf(stderr, "qpeer: advertised %zu candidates\n", req->ncands);
  else if (status != 0 && status != UV_ECANCELED)
    cli_fail("advertise", status);
}

static void set_conn_callbacks(qpeer_conn_t *c) {
  qpeer_conn_callbacks_t cbs;
  memset(&cbs, 0, sizeof(cbs));
  cbs.on_closed = on_closed;
  cbs.on_stream = on_stream;
  cbs.on_path = on_path;
  qpeer_conn_set_callbacks(c, &cbs);
}

static void report_peer(qpeer_conn_t *c, const char *verb) {
  qpeer_peer_id_t pid;
  qpeer_path_t path;
  char id[QPEER_PEER_ID_STRLEN] = "(anonymous)", a[QPEER_ADDR_STRLEN] = "";
  if (P.quiet)
    return;
  if (qpeer_conn_get_peer_id(c, &pid) == 0)
    qpeer_peer_id_format(&pid, id, sizeof(id));
  if (qpeer_conn_get_path(c, &path) == 0)
    qpeer_addr_format((struct sockaddr *)&path.remote, a, sizeof(a));
  fprintf(stderr, "qpeer: %s %s at %s\n", verb, id, a);
}

static void on_connection(qpeer_endpoint_t *ep, int status) {
  if (status != 0)
    return;
  if (P.active) {
    qpeer_conn_t *extra = malloc(sizeof(*extra));
    if (extra && qpeer_endpoint_accept(ep, extra) == 0) {
      qpeer_conn_shutdown(extra, 1, "busy");
      qpeer_close((qpeer_handle_t *)extra, (qpeer_close_cb)free);
    } else {
      free(extra);
    }
    return;
  }
  if (qpeer_endpoint_accept(ep, &P.conn) != 0)
    return;
  P.active = &P.conn;
  set_conn_callbacks(&P.conn);
  report_peer(&P.conn, "connected by");
  if (P.use_relay) {
    int r = qpeer_peer_advertise(&P.areq, &P.conn, NULL, 0, P.peer_flags,
                                 on_advertised);
    if (r != 0)
      cli_fail("advertise", r);
  }
}

static void on_peer_connect(qpeer_peer_connect_t *req, int status) {
  int r;
  if (status != 0) {
    cli_fail("connect", status);
    finish(1);
    return;
  }
  P.active = req->conn;
  set_conn_callbacks(req->conn);
  report_peer(req->conn, req->via_relay ? "connected (via relay) to"
                                        : "connected to");
  if (!P.quiet)
    fprintf(stderr, "path: %s\n", req->via_relay ? "relay" : "direct");
  if ((r = qpeer_stream_open(req->conn, &P.st, QPEER_STREAM_BIDI)) != 0) {
    cli_fail("stream", r);
    finish(1);
    return;
  }
  start_piping();
}

static void on_connect(qpeer_connect_t *req, int status) {
  attempt *a = (attempt *)req;
  int i, r;
  P.npending--;
  if (status != 0) {
    P.last_err = status;
    a->live = 0;
    qpeer_close((qpeer_handle_t *)&a->conn, on_handle_closed);
    if (P.npending == 0 && !P.active) {
      cli_fail("connect", status);
      finish(1);
    }
    return;
  }
  if (P.active) { /* Lost the race: a faster path already won. */
    a->live = 0;
    qpeer_close((qpeer_handle_t *)&a->conn, on_handle_closed);
    return;
  }
  P.active = &a->conn;
  for (i = 0; i < P.natt; i++) {
    if (&P.att[i] != a && P.att[i].live) {
      P.att[i].live = 0;
      qpeer_close((qpeer_handle_t *)&P.att[i].conn, on_handle_closed);
    }
  }
  set_conn_callbacks(&a->conn);
  report_peer(&a->conn, "connected to");
  if ((r = qpeer_stream_open(&a->conn, &P.st, QPEER_STREAM_BIDI)) != 0) {
    cli_fail("stream", r);
    finish(1);
    return;
  }
  start_piping();
}

static void finish(int code) {
  int i;
  if (P.done)
    return;
  P.done = 1;
  P.exit_code = code;
  if (P.stats)
    print_stats();
  if (P.have_stream)
    qpeer_close((qpeer_handle_t *)&P.st, on_handle_closed);
  if (P.peer_connect)
    qpeer_peer_connect_stop(&P.preq);
  if (P.use_relay)
    qpeer_relay_bind_close(&P.rbind, on_handle_closed);
  if (P.active) {
    if (code == 0)
      qpeer_conn_shutdown(P.active, 0, "done");
    qpeer_close((qpeer_handle_t *)P.active, on_handle_closed);
  }
  for (i = 0; i < P.natt; i++)
    if (P.att[i].live && &P.att[i].conn != P.active)
      qpeer_close((qpeer_handle_t *)&P.att[i].conn, on_handle_closed);
  qpeer_close((qpeer_handle_t *)&P.ep, on_handle_closed);
}

/* ---- set-up ---------------------------------------------------------------- */

static int addr_is_any(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr == 0;
  return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

static int add_interface_addrs(qpeer_ticket_t *t, uint16_t port, int family) {
  uv_interface_address_t *ifs;
  int n, i;
  if (uv_interface_addresses(&ifs, &n) != 0)
    return 0;
  /* Non-loopback addresses first, then loopback (same-host peers). */
  for (int pass = 0; pass < 2; pass++) {
    for (i = 0; i < n; i++) {
      struct sockaddr_storage a;
      int fam = ifs[i].address.address4.sin_family;
      if ((pass == 0) == (ifs[i].is_internal != 0))
        continue;
      if (family != AF_UNSPEC && fam != family)
        continue;
      memset(&a, 0, sizeof(a));
      if (fam == AF_INET) {
        memcpy(&a, &ifs[i].address.address4, sizeof(struct sockaddr_in));
        ((struct sockaddr_in *)&a)->sin_port = htons(port);
      } else if (fam == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a;
        memcpy(&a, &ifs[i].address.address6, sizeof(struct sockaddr_in6));
        if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
          continue;
        s6->sin6_port = htons(port);
        s6->sin6_scope_id = 0;
      } else {
        continue;
      }
      qpeer_ticket_add_typed_addr(t, (struct sockaddr *)&a,
                                  QPEER_TICKET_ADDR_HOST);
    }
  }
  uv_free_interface_addresses(ifs, n);
  return 0;
}

static int is_loopback(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) ==
           127;
  return a->ss_family == AF_INET6 &&
         IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

static int print_ticket(void) {
  static char text[QPEER_TICKET_STRLEN_MAX];
  int r;
  if ((r = qpeer_ticket_format(&P.t, text, sizeof(text))) < 0)
    return cli_fail("ticket", r);
  if (!P.quiet)
    fprintf(stderr, "qpeer: listening; give this ticket to the peer:\n");
  fprintf(stderr, "%s\n", text);
  if (P.ticket_file) {
    FILE *f = fopen(P.ticket_file, "w");
    if (!f || fprintf(f, "%s\n", text) < 0 || fclose(f) != 0)
      return cli_fail(P.ticket_file, UV_EIO);
  }
  return 0;
}

/* Copies the value of parameter |key| (a Token or a quoted String, with
 * \" and \\ unescaped) of the Proxy-Status field |ps| into |out|.
 * Returns 1 if found. Quoted strings are skipped while searching, so a key
 * inside details text is never matched. */
static int proxy_status_param(const char *ps, const char *key, char *out,
                              size_t outlen) {
  size_t klen = strlen(key), o = 0;
  const char *p = ps;
  while (*p) {
    if (*p == '"') { /* skip a String */
      for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
          p++;
      if (*p)
        p++;
      continue;
    }
    if (*p == ';') {
      p++;
      while (*p == ' ')
        p++;
      if (!strncmp(p, key, klen) && p[klen] == '=')
        break;
      continue;
    }
    p++;
  }
  if (!*p || outlen == 0)
    return 0;
  p += klen + 1;
  if (*p == '"') {
    for (p++; *p && *p != '"' && o + 1 < outlen; p++) {
      if (*p == '\\' && p[1])
        p++;
      out[o++] = *p;
    }
  } else {
    for (; *p && *p != ';' && *p != ',' && *p != ' ' && o + 1 < outlen; p++)
      out[o++] = *p;
  }
  out[o] = '\0';
  return o > 0;
}

/* Prints why the relay did not give us a binding, in one line that does
 * not need QPEER_LOG: the HTTP status and the Proxy-Status reason when the
 * relay answered, else the error. */
static void report_bind_failure(int status) {
  qpeer_masque_stats_t st;
  char why[192];
  if ((status == QPEER_EREFUSED || status == QPEER_ERELAY) &&
      qpeer_relay_bind_get_stats(&P.rbind, &st) == 0 && st.http_status != 0 &&
      (st.http_status < 200 || st.http_status > 299)) {
    if (proxy_status_param(st.proxy_status, "details", why, sizeof(why)) ||
        proxy_status_param(st.proxy_status, "error", why, sizeof(why)))
      fprintf(stderr, "relay refused bind: %d (%s)\n", st.http_status, why);
    else
      fprintf(stderr, "relay refused bind: %d\n", st.http_status);
    return;
  }
  cli_fail("relay binding", status);
}

/* The relay binding came up (again) or was lost. The first success puts
 * the public address in the ticket and prints it. */
static void on_bound(qpeer_relay_bind_t *b, int status,
                     const struct sockaddr_storage *addrs, size_t n) {
  char a[QPEER_ADDR_STRLEN];
  (void)b;
  if (status != 0) {
    report_bind_failure(status);
    if (!P.bound && (status == QPEER_EREFUSED || status == QPEER_EPEERID ||
                     status == QPEER_ECERT || status == QPEER_EUNSUPPORTED ||
                     status == QPEER_ERELAY))
      finish(1);
    return;
  }
  if (n == 0)
    return;
  qpeer_addr_format((const struct sockaddr *)&addrs[0], a, sizeof(a));
  if (P.bound) {
    if (!P.quiet)
      fprintf(stderr, "qpeer: relay address now %s\n", a);
    P.bound_addr = addrs[0];
    return;
  }
  P.bound = 1;
  P.bound_addr = addrs[0];
  if (!P.quiet)
    fprintf(stderr, "qpeer: bound at relay as %s\n", a);
  if (qpeer_ticket_add_typed_addr(&P.t, (const struct sockaddr *)&addrs[0],
                                  QPEER_TICKET_ADDR_RELAY) != 0 ||
      print_ticket() != 0)
    finish(1);
}

static void usage_pipe(FILE *f) {
  fprintf(f,
          "usage: qpeer pipe listen [--bind ADDR:PORT] [--allow PEERID]... "
          "[--ticket-file FILE]\n"
          "         [--relay ADDR:PORT --relay-pin PEERID "
          "[--relay-token TOKEN] [--no-direct]]\n"
          "       qpeer pipe connect TICKET [--bind ADDR:PORT]\n"
          "common options: --key FILE  --stats  --quiet\n"
          "listen prints a ticket on stderr (and to --ticket-file), waits "
          "for\nthe first allowed peer, then copies stdin to it and its data "
          "to stdout.\nconnect dials the ticket's addresses, checks the "
          "peer ID, and does the same.\n"
          "With --relay the listener binds at a qpeer-relay, puts its public "
          "address\nthere in the ticket (--no-direct: only that one) and "
          "advertises its\ncandidates to each peer; connect then races the "
          "relay and direct paths,\nupgrades to direct by hole punching and "
          "prints every path change.\n");
}

int cmd_pipe(int argc, char **argv) {
  qpeer_endpoint_options_t eo;
  qpeer_peer_id_t allow[16];
  size_t nallow = 0;
  struct sockaddr_storage bind_addr;
  const char *key = cli_default_key(), *ticket_text = NULL;
  const char *alpn[] = {ALPN};
  int have_bind = 0, have_pin = 0, no_direct = 0, i, r;
  const char *relay_text = NULL, *relay_token = NULL;
  uv_loop_t *loop = uv_default_loop();

  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage_pipe(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  memset(&P, 0, sizeof(P));
  P.loop = loop;
  P.listening = !strcmp(argv[1], "listen");
  if (!P.listening && strcmp(argv[1], "connect")) {
    fprintf(stderr, "qpeer: pipe: unknown mode '%s'\n", argv[1]);
    return 2;
  }
  i = 2;
  if (!P.listening) {
    if (argc < 3 || argv[2][0] == '-') {
      fprintf(stderr, "qpeer: pipe connect: missing TICKET\n");
      return 2;
    }
    ticket_text = argv[2];
    i = 3;
  }
  for (; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage_pipe(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--key") && i + 1 < argc) {
      key = argv[++i];
    } else if (!strcmp(argv[i], "--bind") && i + 1 < argc) {
      if ((r = qpeer_addr_parse(&bind_addr, argv[++i])) != 0)
        return cli_fail("--bind", r);
      have_bind = 1;
    } else if (!strcmp(argv[i], "--allow") && i + 1 < argc && P.listening) {
      if (nallow == 16) {
        fprintf(stderr, "qpeer: pipe: at most 16 --allow\n");
        return 2;
      }
      if ((r = qpeer_peer_id_parse(&allow[nallow++], argv[++i])) != 0)
        return cli_fail("--allow", r);
    } else if (!strcmp(argv[i], "--relay") && i + 1 < argc && P.listening) {
      relay_text = argv[++i];
      if ((r = qpeer_addr_parse(&P.relay_addr, relay_text)) != 0)
        return cli_fail("--relay (ADDR:PORT)", r);
      P.use_relay = 1;
    } else if (!strcmp(argv[i], "--relay-pin") && i + 1 < argc) {
      if ((r = qpeer_peer_id_parse(&P.relay_pin, argv[++i])) != 0)
        return cli_fail("--relay-pin", r);
      have_pin = 1;
    } else if (!strcmp(argv[i], "--no-direct") && P.listening) {
      no_direct = 1;
    } else if (!strcmp(argv[i], "--relay-token") && i + 1 < argc) {
      relay_token = argv[++i];
    } else if (!strcmp(argv[i], "--ticket-file") && i + 1 < argc) {
      P.ticket_file = argv[++i];
    } else if (!strcmp(argv[i], "--stats")) {
      P.stats = 1;
    } else if (!strcmp(argv[i], "--quiet")) {
      P.quiet = 1;
    } else {
      fprintf(stderr, "qpeer: pipe: unexpected argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (P.use_relay && !have_pin) {
    fprintf(stderr, "qpeer: pipe: --relay needs --relay-pin PEERID\n");
    return 2;
  }
  if ((r = cli_load_identity(key, 1, &P.id)) != 0)
    return cli_fail(key, r);
  qpeer_endpoint_options_default(&eo);
  eo.identity = P.id;
  eo.bind_addr = have_bind ? (struct sockaddr *)&bind_addr : NULL;
  eo.keepalive_ms = 10000;
  eo.idle_timeout_ms = 60000;
  if ((r = qpeer_endpoint_init(loop, &P.ep, &eo)) != 0)
    return cli_fail("endpoint", r);

  if (P.listening) {
    qpeer_listen_options_t lo;
    struct sockaddr_storage local;
    qpeer_listen_options_default(&lo);
    lo.alpn = alpn;
    lo.nalpn = 1;
    lo.allow = nallow ? allow : NULL;
    lo.nallow = nallow;
    if ((r = qpeer_endpoint_listen(&P.ep, &lo, on_connection)) != 0)
      return cli_fail("listen", r);
    qpeer_endpoint_get_local_addr(&P.ep, &local);
    qpeer_ticket_init(&P.t);
    P.t.peer_id = *qpeer_identity_get_peer_id(P.id);
    if (no_direct && !P.use_relay) {
      fprintf(stderr, "qpeer: pipe: --no-direct needs --relay\n");
      return 2;
    }
    if (no_direct)
      ; /* host addresses only reach the peer in-connection (advertised) */
    else if (!addr_is_any(&local))
      qpeer_ticket_add_typed_addr(&P.t, (struct sockaddr *)&local,
                                  QPEER_TICKET_ADDR_HOST);
    else
      add_interface_addrs(&P.t,
                          ntohs(local.ss_family == AF_INET
                                    ? ((struct sockaddr_in *)&local)->sin_port
                                    : ((struct sockaddr_in6 *)&local)
                                          ->sin6_port),
                          local.ss_family == AF_INET ? AF_INET : AF_UNSPEC);
    if (is_loopback(&local))
      P.peer_flags |= QPEER_PEER_ALLOW_LOOPBACK;
    if (P.use_relay) {
      qpeer_masque_options_t mo;
      char url[QPEER_TICKET_URL_MAX];
      snprintf(url, sizeof(url), "https://%s", relay_text);
      if ((r = qpeer_ticket_add_relay(&P.t, url, QPEER_TICKET_AUTH_PIN,
                                      &P.relay_pin)) != 0)
        return cli_fail("--relay (ticket URL)", r);
      qpeer_masque_options_default(&mo);
      mo.proxy = (struct sockaddr *)&P.relay_addr;
      mo.auth = QPEER_AUTH_PEER_ID;
      mo.peer_id = &P.relay_pin;
      mo.bearer_token = relay_token;
      if ((r = qpeer_relay_bind_init(&P.ep, &P.rbind, &mo)) != 0 ||
          (r = qpeer_relay_bind_start(&P.rbind, on_bound)) != 0)
        return cli_fail("relay bind", r);
    } else if ((r = print_ticket()) != 0) {
      return r;
    }
  } else {
    qpeer_ticket_t t;
    qpeer_connect_options_t co;
    size_t k;
    if ((r = qpeer_ticket_parse(&t, ticket_text)) != 0)
      return cli_fail("ticket", r);
    for (k = 0; k < t.naddrs; k++)
      if (t.addrs[k].type == QPEER_TICKET_ADDR_RELAY)
        P.peer_connect = 1;
    if (P.peer_connect) {
      qpeer_peer_connect_options_t po;
      qpeer_peer_connect_options_default(&po);
      po.alpn = alpn;
      po.nalpn = 1;
      for (k = 0; k < t.naddrs; k++)
        if (is_loopback(&t.addrs[k].addr))
          po.flags |= QPEER_PEER_ALLOW_LOOPBACK;
      if ((r = qpeer_peer_connect(&P.preq, &P.ep, &P.pconn, &t, &po,
                                  on_peer_connect)) != 0) {
        P.peer_connect = 0;
        qpeer_close((qpeer_handle_t *)&P.ep, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        qpeer_identity_unref(P.id);
        return cli_fail("connect", r);
      }
      goto run;
    }
    if (t.naddrs == 0) {
      fprintf(stderr, "qpeer: ticket has no direct address (relays come "
                      "with peer connect)\n");
      return 1;
    }
    qpeer_connect_options_default(&co);
    co.alpn = alpn;
    co.nalpn = 1;
    co.auth = QPEER_AUTH_PEER_ID;
    co.peer_id = &t.peer_id;
    for (k = 0; k < t.naddrs; k++) {
      attempt *a = &P.att[P.natt];
      co.remote = (struct sockaddr *)&t.addrs[k].addr;
      r = qpeer_connect(&a->req, &P.ep, &a->conn, &co, on_connect);
      if (r != 0) {
        P.last_err = r;
        continue;
      }
      a->live = 1;
      P.natt++;
      P.npending++;
    }
    if (P.npending == 0) {
      qpeer_close((qpeer_handle_t *)&P.ep, NULL);
      uv_run(loop, UV_RUN_DEFAULT);
      qpeer_identity_unref(P.id);
      return cli_fail("connect", P.last_err);
    }
  }
run:
  uv_run(loop, UV_RUN_DEFAULT);
  while (P.oq_head) {
    outbuf *b = P.oq_head;
    P.oq_head = b->next;
    free(b);
  }
  qpeer_identity_unref(P.id);
  uv_loop_close(loop);
  return P.exit_code;
}
