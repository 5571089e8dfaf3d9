/* SPDX-License-Identifier: MIT */
/*
 * Metrics: the registry and its text exposition (pure), the relay's
 * standard metric set, the request-head parser (pure), and the HTTP/1.1
 * server glue on libuv. Every buffer is bounded: request heads by
 * RELAYD_METRICS_MAX_REQUEST, bodies by RELAYD_METRICS_MAX_BODY,
 * connections by RELAYD_METRICS_MAX_CONNS, their life by a timer.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- registry ------------------------------------------------------------ */

void relayd_metrics_init(relayd_metrics_t *m) { memset(m, 0, sizeof(*m)); }

static int valid_name(const char *s, int colon) {
  const char *p;
  if (!s || !*s || (*s >= '0' && *s <= '9'))
    return 0;
  for (p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '_' || (colon && *p == ':')))
      return 0;
  return 1;
}

static int streq(const char *a, const char *b) {
  return a == b || (a && b && !strcmp(a, b));
}

uint64_t *relayd_metrics_get(relayd_metrics_t *m, const char *name,
                             const char *label_value) {
  size_t i;
  for (i = 0; i < m->n; i++)
    if (!strcmp(m->series[i].name, name) &&
        streq(m->series[i].label_value, label_value))
      return &m->series[i].value;
  return NULL;
}

uint64_t *relayd_metrics_add(relayd_metrics_t *m, const char *name,
                             const char *help, relayd_metric_type type,
                             const char *label, const char *label_value) {
  relayd_metric_t *s;
  size_t i;
  if (!valid_name(name, 1) || (!label != !label_value) ||
      (label && (!valid_name(label, 0) || !strncmp(label, "__", 2))) ||
      (type != RELAYD_COUNTER && type != RELAYD_GAUGE))
    return NULL;
  for (i = 0; i < m->n; i++) {
    s = &m->series[i];
    if (strcmp(s->name, name) != 0)
      continue;
    if (s->type != type || !streq(s->label, label))
      return NULL;
    if (streq(s->label_value, label_value))
      return &s->value;
  }
  if (m->n >= RELAYD_METRICS_MAX_SERIES)
    return NULL;
  s = &m->series[m->n++];
  s->name = name;
  s->help = help ? help : "";
  s->type = type;
  s->label = label;
  s->label_value = label_value;
  s->value = 0;
  return &s->value;
}

/* out is a bounded string builder. */
typedef struct {
  char *buf;  /* destination */
  size_t cap; /* its size */
  size_t len; /* used, without the NUL */
  int full;   /* something did not fit */
} out;

static void put(out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(out *o, const char *fmt, ...) {
  va_list ap;
  int n;
  if (o->full)
    return;
  va_start(ap, fmt);
  n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= o->cap - o->len) {
    o->full = 1;
    return;
  }
  o->len += (size_t)n;
}

/* put_escaped writes |s| escaping backslash and newline, and also double
 * quotes in label values. */
static void put_escaped(out *o, const char *s, int quotes) {
  for (; *s && !o->full; s++) {
    if (*s == '\\')
      put(o, "\\\\");
    else if (*s == '\n')
      put(o, "\\n");
    else if (quotes && *s == '"')
      put(o, "\\\"");
    else
      put(o, "%c", *s);
  }
}

int relayd_metrics_render(const relayd_metrics_t *m, char *buf, size_t cap) {
  out o = {buf, cap, 0, 0};
  size_t i, j, k;
  if (!buf || cap == 0)
    return -1;
  buf[0] = '\0';
  for (i = 0; i < m->n; i++) {
    const relayd_metric_t *f = &m->series[i];
    for (j = 0; j < i; j++)
      if (!strcmp(m->series[j].name, f->name))
        break;
    if (j < i)
      continue; /* family already written */
    put(&o, "# HELP %s ", f->name);
    put_escaped(&o, f->help, 0);
    put(&o, "\n# TYPE %s %s\n", f->name,
        f->type == RELAYD_COUNTER ? "counter" : "gauge");
    for (k = i; k < m->n; k++) {
      const relayd_metric_t *s = &m->series[k];
      if (strcmp(s->name, f->name) != 0)
        continue;
      put(&o, "%s", s->name);
      if (s->label) {
        put(&o, "{%s=\"", s->label);
        put_escaped(&o, s->label_value, 1);
        put(&o, "\"}");
      }
      put(&o, " %llu\n", (unsigned long long)s->value);
    }
  }
  return o.full ? -1 : (int)o.len;
}

/* ---- the relay's metric set ---------------------------------------------- */

static const char *const reject_names[] = {
#define RELAYD_REJECT_NAME(e, n) n,
    RELAYD_REJECT_MAP(RELAYD_REJECT_NAME)
#undef RELAYD_REJECT_NAME
};

const char *relayd_reject_name(relayd_reject_reason r) {
  return (unsigned)r < RELAYD_REJECT__COUNT ? reject_names[r] : "other";
}

relayd_reject_reason relayd_reject_by_name(const char *name) {
  unsigned i;
  for (i = 0; name && i < RELAYD_REJECT__COUNT; i++)
    if (!strcmp(reject_names[i], name))
      return (relayd_reject_reason)i;
  return RELAYD_REJECT_OTHER;
}

#define P "qpeer_relay_"

int relayd_metrics_std_init(relayd_metrics_t *m, relayd_metrics_std_t *s) {
  static const char *const dirs[2] = {"to_client", "from_client"};
  static const char *const drops[RELAYD_DROP__COUNT] = {"quota", "policy",
                                                        "other"};
  int i, bad = 0;
  memset(s, 0, sizeof(*s));
#define ADD(field, name, help, type, l, v)                                     \
  do {                                                                         \
    field = relayd_metrics_add(m, P name, help, type, l, v);                   \
    bad |= field == NULL;                                                      \
  } while (0)
  ADD(s->connections_total, "connections_total", "HTTP/3 connections served.",
      RELAYD_COUNTER, NULL, NULL);
  ADD(s->connections_active, "connections_active",
      "HTTP/3 connections open now.", RELAYD_GAUGE, NULL, NULL);
  ADD(s->tunnels_total, "tunnels_total", "CONNECT-UDP tunnels opened.",
      RELAYD_COUNTER, NULL, NULL);
  ADD(s->tunnels_active, "tunnels_active", "CONNECT-UDP tunnels open now.",
      RELAYD_GAUGE, NULL, NULL);
  ADD(s->binds_total, "binds_total", "UDP bindings opened.", RELAYD_COUNTER,
      NULL, NULL);
  ADD(s->binds_active, "binds_active", "UDP bindings open now.", RELAYD_GAUGE,
      NULL, NULL);
  for (i = 0; i < 2; i++) {
    ADD(s->packets[i], "packets_total", "UDP payloads relayed.", RELAYD_COUNTER,
        "direction", dirs[i]);
  }
  for (i = 0; i < 2; i++) {
    ADD(s->bytes[i], "bytes_total", "UDP payload bytes relayed.",
        RELAYD_COUNTER, "direction", dirs[i]);
  }
  for (i = 0; i < RELAYD_DROP__COUNT; i++) {
    ADD(s->dropped[i], "dropped_packets_total",
        "UDP payloads not relayed, by reason.", RELAYD_COUNTER, "reason",
        drops[i]);
  }
  ADD(s->idle_closed, "idle_closed_total",
      "Tunnels and bindings closed by the idle timeout.", RELAYD_COUNTER, NULL,
      NULL);
  for (i = 0; i < RELAYD_REJECT__COUNT; i++) {
    ADD(s->rejections[i], "rejections_total", "Requests refused, by reason.",
        RELAYD_COUNTER, "reason", reject_names[i]);
  }
  ADD(s->clients_active, "clients_active",
      "Clients with an admitted request or an open session.", RELAYD_GAUGE,
      NULL, NULL);
  ADD(s->client_evictions, "client_evictions_total",
      "Idle client records evicted to make room.", RELAYD_COUNTER, NULL, NULL);
  ADD(s->start_time, "start_time_seconds",
      "Start time of the process since the Unix epoch.", RELAYD_GAUGE, NULL,
      NULL);
#undef ADD
  return bad ? -1 : 0;
}

/* ---- request heads ------------------------------------------------------- */

static const char *find_head_end(const char *buf, size_t len) {
  size_t i;
  for (i = 0; i + 1 < len; i++) {
    if (buf[i] == '\n' && buf[i + 1] == '\n')
      return buf + i;
    if (i + 3 < len && !memcmp(buf + i, "\r\n\r\n", 4))
      return buf + i;
  }
  return NULL;
}

int relayd_metrics_http_parse(const char *buf, size_t len, int *phead) {
  const char *end, *sp1, *sp2, *eol, *q;
  size_t mlen, plen;
  if (phead)
    *phead = 0;
  end = find_head_end(buf, len);
  if (!end)
    return len >= RELAYD_METRICS_MAX_REQUEST ? 431 : 0;
  eol = memchr(buf, '\n', len);
  if (!eol)
    return 400;
  if (eol > buf && eol[-1] == '\r')
    eol--;
  sp1 = memchr(buf, ' ', (size_t)(eol - buf));
  sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
  if (!sp1 || !sp2 || sp1 == buf || sp2 == sp1 + 1 || sp1[1] != '/')
    return 400;
  if ((size_t)(eol - sp2 - 1) != 8 ||
      (memcmp(sp2 + 1, "HTTP/1.1", 8) && memcmp(sp2 + 1, "HTTP/1.0", 8)))
    return 400;
  mlen = (size_t)(sp1 - buf);
  q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
  plen = (size_t)((q ? q : sp2) - sp1 - 1);
  if (plen != 8 || memcmp(sp1 + 1, "/metrics", 8) != 0)
    return 404;
  if (mlen == 3 && !memcmp(buf, "GET", 3))
    return 200;
  if (mlen == 4 && !memcmp(buf, "HEAD", 4)) {
    if (phead)
      *phead = 1;
    return 200;
  }
  return 405;
}

/* ---- server -------------------------------------------------------------- */

typedef struct mconn {
  uv_tcp_t tcp;                         /* the connection */
  uv_timer_t timer;                     /* its deadline */
  uv_write_t wr;                        /* the response write */
  uv_shutdown_t sh;                     /* then the FIN */
  relayd_metrics_server_t *srv;         /* owner */
  struct mconn *prev, *next;            /* server's list */
  char req[RELAYD_METRICS_MAX_REQUEST]; /* request head so far */
  size_t len;                           /* its length */
  char *resp;                           /* response being written */
  int nopen;                            /* handles not yet closed */
  int closing;                          /* conn_close was called */
  int responding;                       /* a response was started */
} mconn;

static void maybe_finish(relayd_metrics_server_t *srv) {
  if (srv->closing && !srv->listener_open && srv->nconns == 0 &&
      srv->close_cb) {
    relayd_metrics_close_cb cb = srv->close_cb;
    srv->close_cb = NULL;
    cb(srv);
  }
}

static void on_conn_handle_closed(uv_handle_t *h) {
  mconn *c = h->data;
  relayd_metrics_server_t *srv = c->srv;
  if (--c->nopen > 0)
    return;
  free(c->resp);
  free(c);
  srv->nconns--;
  maybe_finish(srv);
}

static void conn_close(mconn *c) {
  relayd_metrics_server_t *srv = c->srv;
  if (c->closing)
    return;
  c->closing = 1;
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timeout(uv_timer_t *t) { conn_close(t->data); }

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  conn_close(req->data);
}

static void on_written(uv_write_t *req, int status) {
  mconn *c = req->data;
  if (status < 0 || c->closing ||
      uv_shutdown(&c->sh, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
    conn_close(c);
}

static const char *reason_phrase(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 431:
    return "Request Header Fields Too Large";
  default:
    return "Internal Server Error";
  }
}

static void respond(mconn *c, int status, int head) {
  relayd_metrics_server_t *srv = c->srv;
  size_t hcap = 512, cap = hcap + RELAYD_METRICS_MAX_BODY;
  char *body;
  int blen = 0, hlen;
  uv_buf_t b;
  c->responding = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->resp = malloc(cap);
  if (!c->resp) {
    conn_close(c);
    return;
  }
  body = c->resp + hcap;
  if (status == 200) {
    if (srv->refresh)
      srv->refresh(srv);
    blen = relayd_metrics_render(srv->metrics, body, RELAYD_METRICS_MAX_BODY);
    if (blen < 0)
      status = 500;
  }
  if (status != 200)
    blen =
        snprintf(body, RELAYD_METRICS_MAX_BODY, "%s\n", reason_phrase(status));
  srv->requests++;
  hlen = snprintf(c->resp, hcap,
                  "HTTP/1.1 %d %s\r\n"
                  "Content-Type: %s\r\n"
                  "Content-Length: %d\r\n"
                  "%s"
                  "Cache-Control: no-store\r\n"
                  "Connection: close\r\n\r\n",
                  status, reason_phrase(status),
                  status == 200 ? RELAYD_METRICS_CONTENT_TYPE
                                : "text/plain; charset=utf-8",
                  blen, status == 405 ? "Allow: GET, HEAD\r\n" : "");
  /* Move the head right before the body so one buffer goes out. */
  memmove(body - hlen, c->resp, (size_t)hlen);
  b = uv_buf_init(body - hlen, (unsigned)(hlen + (head ? 0 : blen)));
  c->wr.data = c;
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
    conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  mconn *c = h->data;
  (void)suggested;
  *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - c->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  mconn *c = s->data;
  int status, head = 0;
  (void)buf;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  if (nread == 0 || c->responding)
    return;
  c->len += (size_t)nread;
  status = relayd_metrics_http_parse(c->req, c->len, &head);
  if (status != 0)
    respond(c, status, head);
}

static void on_connection(uv_stream_t *server, int status) {
  relayd_metrics_server_t *srv = server->data;
  mconn *c;
  if (status < 0 || srv->closing)
    return;
  c = calloc(1, sizeof(*c));
  if (!c)
    return; /* the pending connection is accepted on a later event */
  c->srv = srv;
  uv_tcp_init(srv->loop, &c->tcp);
  uv_timer_init(srv->loop, &c->timer);
  c->tcp.data = c->timer.data = c->sh.data = c;
  c->nopen = 2;
  srv->nconns++;
  c->next = srv->conns;
  if (c->next)
    ((mconn *)srv->conns)->prev = c;
  srv->conns = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
      srv->nconns > RELAYD_METRICS_MAX_CONNS ||
      uv_timer_start(&c->timer, on_timeout, RELAYD_METRICS_TIMEOUT_MS, 0) !=
          0 ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    conn_close(c);
}

static void on_listener_closed(uv_handle_t *h) {
  relayd_metrics_server_t *srv = h->data;
  srv->listener_open = 0;
  maybe_finish(srv);
}

int relayd_metrics_server_start(relayd_metrics_server_t *srv, uv_loop_t *loop,
                                const struct sockaddr *addr,
                                relayd_metrics_t *m,
                                relayd_metrics_refresh_cb refresh) {
  int rv;
  void *data = srv->data;
  memset(srv, 0, sizeof(*srv));
  srv->data = data;
  srv->loop = loop;
  srv->metrics = m;
  srv->refresh = refresh;
  rv = uv_tcp_init(loop, &srv->tcp);
  if (rv != 0)
    return rv;
  srv->tcp.data = srv;
  srv->listener_open = 1;
  rv = uv_tcp_bind(&srv->tcp, addr, 0);
  if (rv == 0)
    rv = uv_listen((uv_stream_t *)&srv->tcp, 64, on_connection);
  if (rv != 0) {
    /* Close the handle; the caller runs the loop as usual and frees |srv|
     * after that. */
    srv->closing = 1;
    uv_close((uv_handle_t *)&srv->tcp, on_listener_closed);
  }
  return rv;
}

int relayd_metrics_server_get_addr(const relayd_metrics_server_t *srv,
                                   struct sockaddr_storage *addr) {
  int len = (int)sizeof(*addr);
  return uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)addr, &len);
}

void relayd_metrics_server_close(relayd_metrics_server_t *srv,
                                 relayd_metrics_close_cb cb) {
  srv->close_cb = cb;
  if (!srv->closing) {
    srv->closing = 1;
    uv_close((uv_handle_t *)&srv->tcp, on_listener_closed);
    while (srv->conns)
      conn_close(srv->conns);
  }
  maybe_finish(srv);
}
