/* SPDX-License-Identifier: MIT */
/*
 * portmap_probe: drives one qpeer_portmap_t for the NAT lab test
 * (test/nat/test_portmap.sh) and by hand. Maps a UDP port (given, or the
 * port of a qpeer endpoint it creates), prints one line per event, and
 * takes commands on stdin, one per line:
 *
 *   renew            force a renewal (qpeer_portmap_renew)
 *   observed IP      set the STUN-observed address ("observed -" clears)
 *   info             print the current mapping
 *   close            close the handle (deletes the mapping), then exit
 *
 * End of input also closes. Output lines (each flushed):
 *   MAPPED|RENEWED|CHANGED|RECREATED proto=P external=IP:PORT
 *       internal=IP:PORT gateway=IP lifetime=S epoch=E flags=F
 *       double_nat=0|1 ms=T
 *   FAILED status=NAME tried=P,.. answered=P,.. result=N ms=T
 *   GOT from IP:PORT len=N          (--endpoint: a raw datagram arrived)
 *   CLOSING ms=T                    (qpeer_close called)
 *   CLOSED ms=T                     (its callback ran)
 * where ms counts from the start. Usage: portmap_probe --help.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "qpeer.h"

static uv_loop_t *loop;
static qpeer_portmap_t pm;
static qpeer_endpoint_t ep;
static int have_ep;
static uv_pipe_t in_pipe;
static int have_in;
static uv_timer_t hold_timer;
static int closing;
static int exit_on_fail;
static uint64_t t0;
static char linebuf[512];
static size_t linelen;

static uint64_t elapsed(void) { return uv_now(loop) - t0; }

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

static void protos(char *buf, size_t len, unsigned int mask) {
  static const unsigned int bits[] = {QPEER_PORTMAP_PCP, QPEER_PORTMAP_NATPMP,
                                      QPEER_PORTMAP_UPNP};
  size_t i, n = 0;
  buf[0] = '\0';
  for (i = 0; i < 3; i++)
    if (mask & bits[i])
      n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "",
                            qpeer_portmap_proto_name(bits[i]));
  if (n == 0)
    snprintf(buf, len, "-");
}

static void flag_names(char *buf, size_t len, unsigned int f) {
  static const struct {
    unsigned int bit;
    const char *name;
  } names[] = {{QPEER_PORTMAP_EXT_PRIVATE, "private"},
               {QPEER_PORTMAP_EXT_CGNAT, "cgnat"},
               {QPEER_PORTMAP_EXT_RESERVED, "reserved"},
               {QPEER_PORTMAP_STUN_MISMATCH, "stun_mismatch"},
               {QPEER_PORTMAP_IGD_RESERVED, "igd_reserved"},
               {QPEER_PORTMAP_PERMANENT, "permanent"}};
  size_t i, n = 0;
  buf[0] = '\0';
  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (f & names[i].bit)
      n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "",
                            names[i].name);
  if (n == 0)
    snprintf(buf, len, "-");
}

static void print_info(const char *what, const qpeer_portmap_info_t *in) {
  char e[QPEER_ADDR_STRLEN], i[QPEER_ADDR_STRLEN], g[QPEER_ADDR_STRLEN];
  char fl[128];
  qpeer_addr_format((const struct sockaddr *)&in->external, e, sizeof(e));
  qpeer_addr_format((const struct sockaddr *)&in->internal, i, sizeof(i));
  qpeer_addr_format((const struct sockaddr *)&in->gateway, g, sizeof(g));
  if (strlen(g) > 2 && !strcmp(g + strlen(g) - 2, ":0"))
    g[strlen(g) - 2] = '\0';
  flag_names(fl, sizeof(fl), in->flags);
  out("%s proto=%s external=%s internal=%s gateway=%s lifetime=%u epoch=%u "
      "flags=%s double_nat=%d ms=%llu\n",
      what, qpeer_portmap_proto_name(in->protocol), e, i, g,
      (unsigned)in->lifetime, (unsigned)in->epoch, fl, in->double_nat,
      (unsigned long long)elapsed());
}

static void on_closed(qpeer_handle_t *h) {
  (void)h;
  out("CLOSED ms=%llu\n", (unsigned long long)elapsed());
  if (have_ep)
    qpeer_close((qpeer_handle_t *)&ep, NULL);
  if (have_in && !uv_is_closing((uv_handle_t *)&in_pipe))
    uv_close((uv_handle_t *)&in_pipe, NULL);
  uv_close((uv_handle_t *)&hold_timer, NULL);
}

static void do_close(void) {
  if (closing)
    return;
  closing = 1;
  out("CLOSING ms=%llu\n", (unsigned long long)elapsed());
  uv_timer_stop(&hold_timer);
  if (have_in)
    uv_read_stop((uv_stream_t *)&in_pipe);
  qpeer_close((qpeer_handle_t *)&pm, on_closed);
}

static void on_portmap(qpeer_portmap_t *h, int status,
                       const qpeer_portmap_info_t *in) {
  (void)h;
  if (status < 0) {
    char t[64], a[64];
    protos(t, sizeof(t), in->tried);
    protos(a, sizeof(a), in->answered);
    out("FAILED status=%s tried=%s answered=%s result=%d ms=%llu\n",
        qpeer_err_name(status), t, a, in->result_code,
        (unsigned long long)elapsed());
    if (exit_on_fail)
      do_close();
    return;
  }
  switch (in->event) {
  case QPEER_PORTMAP_EV_MAPPED:
    print_info("MAPPED", in);
    break;
  case QPEER_PORTMAP_EV_RENEWED:
    print_info("RENEWED", in);
    break;
  case QPEER_PORTMAP_EV_CHANGED:
    print_info("CHANGED", in);
    break;
  case QPEER_PORTMAP_EV_RECREATED:
    print_info("RECREATED", in);
    break;
  default:
    print_info("EVENT", in);
    break;
  }
}

static void on_raw(qpeer_endpoint_t *e, const uint8_t *data, size_t len,
                   const struct sockaddr *from) {
  char f[QPEER_ADDR_STRLEN];
  (void)e;
  (void)data;
  qpeer_addr_format(from, f, sizeof(f));
  out("GOT from %s len=%zu\n", f, len);
}

static void command(char *line) {
  int rv;
  if (!strcmp(line, "renew")) {
    rv = qpeer_portmap_renew(&pm);
    if (rv != 0)
      out("RENEW error=%s\n", qpeer_err_name(rv));
  } else if (!strncmp(line, "observed ", 9)) {
    struct sockaddr_storage ss;
    char text[80];
    if (strlen(line + 9) > 60) {
      rv = UV_EINVAL;
    } else if (!strcmp(line + 9, "-")) {
      rv = qpeer_portmap_set_observed_addr(&pm, NULL);
    } else {
      snprintf(text, sizeof(text), "%.60s:0", line + 9);
      rv = qpeer_addr_parse(&ss, text);
      if (rv == 0)
        rv = qpeer_portmap_set_observed_addr(&pm, (const struct sockaddr *)&ss);
    }
    if (rv != 0)
      out("OBSERVED error=%s\n", qpeer_err_name(rv));
  } else if (!strcmp(line, "info")) {
    qpeer_portmap_info_t in;
    rv = qpeer_portmap_get_info(&pm, &in);
    if (rv == 0)
      print_info("INFO", &in);
    else
      out("INFO error=%s\n", qpeer_err_name(rv));
  } else if (!strcmp(line, "close")) {
    do_close();
  } else if (line[0]) {
    out("UNKNOWN command %s\n", line);
  }
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  static char buf[256];
  (void)h;
  (void)s;
  *b = uv_buf_init(buf, sizeof(buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  ssize_t i;
  (void)s;
  if (n < 0) {
    do_close(); /* end of input */
    return;
  }
  for (i = 0; i < n; i++) {
    char c = b->base[i];
    if (c == '\n' || linelen == sizeof(linebuf) - 1) {
      linebuf[linelen] = '\0';
      linelen = 0;
      if (!closing)
        command(linebuf);
    } else if (c != '\r') {
      linebuf[linelen++] = c;
    }
  }
}

static void on_hold(uv_timer_t *t) {
  (void)t;
  do_close();
}

static void usage(void) {
  fprintf(stderr, "usage: portmap_probe (--port N | --endpoint PORT) [--proto "
                  "pcp|natpmp|upnp|any]\n"
                  "  [--gateway IP[:PORT]] [--lifetime S] [--timeout MS] "
                  "[--check-interval MS]\n"
                  "  [--retry-min MS] [--retry-max MS] [--close-timeout MS] "
                  "[--observed IP]\n"
                  "  [--root-url URL] [--hold MS] [--exit-on-fail]\n");
  exit(2);
}

int main(int argc, char **argv) {
  qpeer_portmap_options_t o;
  struct sockaddr_storage gw, obs;
  uint64_t hold = 0;
  int endpoint_port = -1, i, rv;
  const char *observed = NULL;
  loop = uv_default_loop();
  qpeer_portmap_options_default(&o);
  o.retry_max_ms = 0;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--exit-on-fail")) {
      exit_on_fail = 1;
      continue;
    }
    if (!v)
      usage();
    i++;
    if (!strcmp(a, "--port")) {
      o.internal_port = (uint16_t)strtoul(v, NULL, 10);
    } else if (!strcmp(a, "--endpoint")) {
      endpoint_port = (int)strtoul(v, NULL, 10);
    } else if (!strcmp(a, "--proto")) {
      if (!strcmp(v, "pcp"))
        o.protocols = QPEER_PORTMAP_PCP;
      else if (!strcmp(v, "natpmp"))
        o.protocols = QPEER_PORTMAP_NATPMP;
      else if (!strcmp(v, "upnp"))
        o.protocols = QPEER_PORTMAP_UPNP;
      else if (!strcmp(v, "any"))
        o.protocols = QPEER_PORTMAP_ANY;
      else
        usage();
    } else if (!strcmp(a, "--gateway")) {
      char text[80];
      snprintf(text, sizeof(text), strchr(v, ':') ? "%.60s" : "%.60s:0", v);
      if (qpeer_addr_parse(&gw, text) != 0)
        usage();
      o.gateway = (const struct sockaddr *)&gw;
    } else if (!strcmp(a, "--lifetime")) {
      o.lifetime = (uint32_t)strtoul(v, NULL, 10);
    } else if (!strcmp(a, "--timeout")) {
      o.timeout_ms = strtoull(v, NULL, 10);
    } else if (!strcmp(a, "--check-interval")) {
      o.check_interval_ms = strtoull(v, NULL, 10);
    } else if (!strcmp(a, "--retry-min")) {
      o.retry_min_ms = strtoull(v, NULL, 10);
    } else if (!strcmp(a, "--retry-max")) {
      o.retry_max_ms = strtoull(v, NULL, 10);
    } else if (!strcmp(a, "--close-timeout")) {
      o.close_timeout_ms = strtoull(v, NULL, 10);
    } else if (!strcmp(a, "--observed")) {
      observed = v;
    } else if (!strcmp(a, "--root-url")) {
      o.upnp_root_url = v;
    } else if (!strcmp(a, "--hold")) {
      hold = strtoull(v, NULL, 10);
    } else {
      usage();
    }
  }
  if (endpoint_port >= 0) {
    qpeer_endpoint_options_t eo;
    struct sockaddr_in bind4;
    memset(&bind4, 0, sizeof(bind4));
    bind4.sin_family = AF_INET;
    bind4.sin_port = htons((uint16_t)endpoint_port);
    qpeer_endpoint_options_default(&eo);
    eo.bind_addr = (const struct sockaddr *)&bind4;
    if ((rv = qpeer_endpoint_init(loop, &ep, &eo)) != 0) {
      fprintf(stderr, "endpoint: %s\n", qpeer_strerror(rv));
      return 1;
    }
    have_ep = 1;
    qpeer_endpoint_set_raw_hook(&ep, on_raw);
    o.endpoint = &ep;
  } else if (o.internal_port == 0) {
    usage();
  }
  t0 = uv_now(loop);
  if ((rv = qpeer_portmap_init(loop, &pm, &o)) != 0) {
    fprintf(stderr, "portmap_init: %s\n", qpeer_err_name(rv));
    return 1;
  }
  if (observed) {
    char text[80];
    snprintf(text, sizeof(text), "%.60s:0", observed);
    if (qpeer_addr_parse(&obs, text) != 0)
      usage();
    qpeer_portmap_set_observed_addr(&pm, (const struct sockaddr *)&obs);
  }
  uv_timer_init(loop, &hold_timer);
  if (hold)
    uv_timer_start(&hold_timer, on_hold, hold, 0);
  /* Commands come from a pipe or FIFO; anything else (/dev/null, a file)
   * cannot be polled: then only --hold ends the run. */
  if (uv_guess_handle(0) == UV_NAMED_PIPE &&
      uv_pipe_init(loop, &in_pipe, 0) == 0) {
    if (uv_pipe_open(&in_pipe, 0) == 0 &&
        uv_read_start((uv_stream_t *)&in_pipe, on_alloc, on_read) == 0)
      have_in = 1;
    else
      uv_close((uv_handle_t *)&in_pipe, NULL);
  }
  rv = qpeer_portmap_start(&pm, on_portmap);
  if (rv != 0) {
    out("FAILED status=%s tried=- answered=- result=0 ms=0\n",
        qpeer_err_name(rv));
    do_close();
  } else {
    out("START port=%u\n", (unsigned)(o.endpoint ? 0 : o.internal_port));
  }
  uv_run(loop, UV_RUN_DEFAULT);
  rv = uv_loop_close(loop);
  if (rv != 0)
    fprintf(stderr, "loop_close: %s\n", uv_strerror(rv));
  return rv == 0 ? 0 : 1;
}
