/* SPDX-License-Identifier: MIT */
/*
 * qpeer netcheck: what does the network do to this host's UDP? Runs a
 * qpeer_netcheck_t survey from a fresh endpoint (doc/netcheck.md) and,
 * next to it, a small traceroute towards the first IPv4 STUN server: STUN
 * requests with TTL 1, 2, ... on a plain socket with IP_RECVERR, whose
 * ICMP "time exceeded" answers name the routers on the way. A private
 * router behind a private first hop means double NAT (a 100.64.0.0/10 one
 * means CGNAT); qpeer_netcheck_report_set_path() draws that conclusion.
 * The path probe lives here, not in the library, because reading a
 * socket's error queue needs recvmsg(MSG_ERRQUEUE), which lib/ keeps to
 * lib/net/udp.c.
 *
 * With --portmap, a qpeer_portmap_t asks the gateway (PCP, NAT-PMP, UPnP)
 * for a mapping of the same socket at the same time; its outcome goes into
 * the report with qpeer_netcheck_report_set_portmap() (double-NAT evidence)
 * and the mapping is deleted again when the handle closes. It is opt-in:
 * it talks to the default gateway.
 *
 * Output: a human-readable summary, or with --json one JSON object.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"

#define PATH_MAX_TTL 8          /* hops probed */
#define PATH_ROUNDS 3           /* transmissions per TTL */
#define PATH_ROUND_MS 300       /* between rounds */
#define PATH_TIMEOUT_MS 1500    /* whole path probe */
#define PATH_POLL_MS 10         /* error-queue polling interval */

typedef struct {
  int fd;                          /* probe socket, or -1 */
  uv_timer_t timer;                /* polls the socket, resends */
  int timer_open;                  /* timer initialised */
  uint64_t start;                  /* first round (ns) */
  int rounds;                      /* rounds sent */
  uint8_t tag[8];                  /* random prefix of our transaction IDs */
  int answered[PATH_MAX_TTL + 1];  /* TTL answered */
  int dest_ttl;                    /* smallest TTL that reached the server */
  qpeer_netcheck_hop_t hops[PATH_MAX_TTL];
  int done;                        /* finished (or never started) */
} pathprobe;

static struct {
  uv_loop_t *loop;
  qpeer_endpoint_t ep;
  int ep_open;
  qpeer_netcheck_t req;
  int nc_done;
  int status;
  qpeer_netcheck_report_t rep;
  pathprobe path;
  qpeer_portmap_t pm;              /* --portmap: the gateway's mapping */
  int pm_open;                     /* pm initialised, not closed */
  int pm_done;                     /* first outcome seen (or not tried) */
  int pm_status;                   /* its status */
  qpeer_portmap_info_t pm_info;    /* and what it reported */
  int json;
  int exit_code;
} N;

/* ---- helpers ---------------------------------------------------------------- */

static const char *fmt_addr(const struct sockaddr_storage *ss, char *buf,
                            size_t len) {
  if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
    return NULL;
  if (qpeer_addr_format((const struct sockaddr *)ss, buf, len) < 0)
    return NULL;
  return buf;
}

/* fmt_ip writes the address of |ss| without the port. */
static const char *fmt_ip(const struct sockaddr_storage *ss, char *buf,
                          size_t len) {
  const void *a;
  if (ss->ss_family == AF_INET)
    a = &((const struct sockaddr_in *)ss)->sin_addr;
  else if (ss->ss_family == AF_INET6)
    a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
  else
    return NULL;
  return inet_ntop(ss->ss_family, a, buf, (socklen_t)len);
}

/* resolve turns "HOST:PORT" or "[V6]:PORT" into an address (numeric
 * addresses directly, names through getaddrinfo). */
static int resolve(uv_loop_t *loop, const char *text,
                   struct sockaddr_storage *out) {
  char host[256];
  const char *port, *colon;
  uv_getaddrinfo_t gai;
  struct addrinfo hints;
  size_t hl;
  int r;
  if (qpeer_addr_parse(out, text) == 0)
    return 0;
  if (text[0] == '[') {
    const char *close_b = strchr(text, ']');
    if (!close_b || close_b[1] != ':')
      return UV_EINVAL;
    hl = (size_t)(close_b - text - 1);
    if (hl >= sizeof(host))
      return UV_EINVAL;
    memcpy(host, text + 1, hl);
    port = close_b + 2;
  } else {
    colon = strrchr(text, ':');
    if (!colon)
      return UV_EINVAL;
    hl = (size_t)(colon - text);
    if (hl == 0 || hl >= sizeof(host))
      return UV_EINVAL;
    memcpy(host, text, hl);
    port = colon + 1;
  }
  host[hl] = '\0';
  if (!*port)
    return UV_EINVAL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV;
  r = uv_getaddrinfo(loop, &gai, NULL, host, port, &hints);
  if (r != 0)
    return r;
  memset(out, 0, sizeof(*out));
  memcpy(out, gai.addrinfo->ai_addr, gai.addrinfo->ai_addrlen);
  uv_freeaddrinfo(gai.addrinfo);
  return 0;
}

/* ---- the path probe ------------------------------------------------------- */

static void path_finish(void);

static void path_send_round(pathprobe *p) {
  uint8_t req[20];
  int ttl;
  for (ttl = 1; ttl <= PATH_MAX_TTL; ttl++) {
    if (p->answered[ttl] || (p->dest_ttl && ttl > p->dest_ttl))
      continue;
    /* A Binding request; the TTL rides in the last transaction-ID byte. */
    memset(req, 0, sizeof(req));
    req[1] = 0x01;
    req[4] = 0x21;
    req[5] = 0x12;
    req[6] = 0xa4;
    req[7] = 0x42;
    memcpy(req + 8, p->tag, sizeof(p->tag));
    req[19] = (uint8_t)ttl;
    if (setsockopt(p->fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)) != 0)
      continue;
    (void)send(p->fd, req, sizeof(req), 0);
  }
  p->rounds++;
}

/* ttl_of finds our transaction ID in |buf| and returns its TTL, or 0. */
static int ttl_of(const pathprobe *p, const uint8_t *buf, size_t len) {
  size_t i;
  for (i = 0; i + 12 <= len; i++)
    if (!memcmp(buf + i, p->tag, sizeof(p->tag)) && buf[i + 11] >= 1 &&
        buf[i + 11] <= PATH_MAX_TTL)
      return buf[i + 11];
  return 0;
}

static void path_record(pathprobe *p, int ttl, qpeer_netcheck_hop_kind kind,
                        const struct sockaddr *from) {
  if (ttl < 1 || ttl > PATH_MAX_TTL || p->answered[ttl])
    return;
  p->answered[ttl] = 1;
  p->hops[ttl - 1].kind = kind;
  memset(&p->hops[ttl - 1].addr, 0, sizeof(p->hops[ttl - 1].addr));
  if (from && from->sa_family == AF_INET)
    memcpy(&p->hops[ttl - 1].addr, from, sizeof(struct sockaddr_in));
  if (kind == QPEER_NETCHECK_HOP_DESTINATION &&
      (p->dest_ttl == 0 || ttl < p->dest_ttl))
    p->dest_ttl = ttl;
}

static void path_read(pathprobe *p, const struct sockaddr_in *dst) {
  uint8_t buf[1500], ctrl[512];
  struct iovec iov;
  struct msghdr msg;
  struct cmsghdr *c;
  ssize_t n;
  /* ICMP errors: the error queue holds the payload we sent. */
  for (;;) {
    memset(&msg, 0, sizeof(msg));
    iov.iov_base = buf;
    iov.iov_len = sizeof(buf);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof(ctrl);
    n = recvmsg(p->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (n < 0)
      break;
    for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      struct sock_extended_err *ee;
      if (c->cmsg_level != IPPROTO_IP || c->cmsg_type != IP_RECVERR)
        continue;
      ee = (struct sock_extended_err *)CMSG_DATA(c);
      if (ee->ee_origin != SO_EE_ORIGIN_ICMP)
        continue;
      if (ee->ee_type == 11) /* time exceeded */
        path_record(p, ttl_of(p, buf, (size_t)n), QPEER_NETCHECK_HOP_ROUTER,
                    SO_EE_OFFENDER(ee));
      else if (ee->ee_type == 3 && ee->ee_code == 3) /* port unreachable */
        path_record(p, ttl_of(p, buf, (size_t)n),
                    QPEER_NETCHECK_HOP_DESTINATION, SO_EE_OFFENDER(ee));
      else if (ee->ee_type == 3) /* unreachable, said by a router */
        path_record(p, ttl_of(p, buf, (size_t)n), QPEER_NETCHECK_HOP_ROUTER,
                    SO_EE_OFFENDER(ee));
    }
  }
  /* STUN responses: the server itself. */
  for (;;) {
    n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      continue; /* a pending socket error, reported once: go on */
    }
    if (n >= 20)
      path_record(p, ttl_of(p, buf, (size_t)n),
                  QPEER_NETCHECK_HOP_DESTINATION,
                  (const struct sockaddr *)dst);
  }
}

static struct sockaddr_in path_dst;

static void path_tick(uv_timer_t *t) {
  pathprobe *p = &N.path;
  uint64_t ms = (uv_hrtime() - p->start) / 1000000;
  int ttl, complete;
  (void)t;
  path_read(p, &path_dst);
  complete = p->dest_ttl != 0;
  for (ttl = 1; complete && ttl < p->dest_ttl; ttl++)
    if (!p->answered[ttl])
      complete = 0;
  if (complete || ms >= PATH_TIMEOUT_MS) {
    path_finish();
    return;
  }
  if (p->rounds < PATH_ROUNDS && ms >= (uint64_t)p->rounds * PATH_ROUND_MS)
    path_send_round(p);
}

static void path_closed(uv_handle_t *h) { (void)h; }

static void report_done(void);

static void path_finish(void) {
  pathprobe *p = &N.path;
  if (p->done)
    return;
  p->done = 1;
  if (p->timer_open) {
    uv_close((uv_handle_t *)&p->timer, path_closed);
    p->timer_open = 0;
  }
  if (p->fd >= 0) {
    close(p->fd);
    p->fd = -1;
  }
  report_done();
}

/* path_start probes the path to |dst| (IPv4) from |bind| (its IP, if
 * specific). Anything that fails just leaves the path unknown. */
static void path_start(const struct sockaddr_storage *dst,
                       const struct sockaddr_storage *src) {
  pathprobe *p = &N.path;
  int on = 1;
  memset(p, 0, sizeof(*p));
  p->fd = -1;
  p->done = 1;
  if (dst->ss_family != AF_INET)
    return;
  memcpy(&path_dst, dst, sizeof(path_dst));
  p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (p->fd < 0)
    return;
  if (setsockopt(p->fd, IPPROTO_IP, IP_RECVERR, &on, sizeof(on)) != 0)
    goto fail;
  if (src && src->ss_family == AF_INET) {
    struct sockaddr_in b;
    memcpy(&b, src, sizeof(b));
    b.sin_port = 0;
    if (b.sin_addr.s_addr != htonl(INADDR_ANY) &&
        bind(p->fd, (const struct sockaddr *)&b, sizeof(b)) != 0)
      goto fail;
  }
  if (connect(p->fd, (const struct sockaddr *)&path_dst,
              sizeof(path_dst)) != 0)
    goto fail;
  if (uv_random(NULL, NULL, p->tag, sizeof(p->tag), 0, NULL) != 0)
    goto fail;
  if (uv_timer_init(N.loop, &p->timer) != 0)
    goto fail;
  p->timer_open = 1;
  p->done = 0;
  p->start = uv_hrtime();
  path_send_round(p);
  uv_timer_start(&p->timer, path_tick, PATH_POLL_MS, PATH_POLL_MS);
  return;
fail:
  close(p->fd);
  p->fd = -1;
}

/* ---- output ------------------------------------------------------------------ */

static const char *tri_text(qpeer_netcheck_tri t) {
  return t == QPEER_NETCHECK_YES ? "yes"
                                 : t == QPEER_NETCHECK_NO ? "no" : "unknown";
}

static const char *tri_json(qpeer_netcheck_tri t) {
  return t == QPEER_NETCHECK_YES ? "true"
                                 : t == QPEER_NETCHECK_NO ? "false" : "null";
}

static void json_addr(const char *key, const struct sockaddr_storage *ss,
                      int comma) {
  char b[QPEER_ADDR_STRLEN];
  if (fmt_addr(ss, b, sizeof(b)))
    printf("\"%s\": \"%s\"%s", key, b, comma ? ", " : "");
  else
    printf("\"%s\": null%s", key, comma ? ", " : "");
}

static void json_family(const char *name, const qpeer_netcheck_family_t *f) {
  printf("  \"%s\": {\"tested\": %s, \"works\": %s, ", name,
         f->tested ? "true" : "false", f->works ? "true" : "false");
  json_addr("reflexive", &f->reflexive, 1);
  printf("\"mapping\": \"%s\", \"filtering\": \"%s\", \"hairpin\": %s, ",
         qpeer_nat_mapping_name(f->mapping),
         qpeer_nat_filtering_name(f->filtering), tri_json(f->hairpin));
  json_addr("rfc5780_server", &f->rfc5780_server, 0);
  printf("},\n");
}

static const char *proto_name(unsigned p) {
  switch (p) {
  case 1:
    return "pcp";
  case 2:
    return "nat-pmp";
  case 4:
    return "upnp";
  default:
    return "none";
  }
}

static void print_json(const qpeer_netcheck_report_t *r, int status) {
  static const char *ev[] = {"portmap-private", "portmap-cgnat",
                             "portmap-mismatch", "path-private",
                             "path-cgnat"};
  char b[QPEER_ADDR_STRLEN];
  size_t i;
  int first = 1;
  printf("{\n  \"status\": \"%s\",\n", status ? qpeer_err_name(status) : "ok");
  printf("  \"udp\": %s,\n  \"partial\": %s,\n  \"duration_ms\": %llu,\n",
         r->udp ? "true" : "false", r->partial ? "true" : "false",
         (unsigned long long)r->duration_ms);
  printf("  ");
  json_addr("local", &r->local, 0);
  printf(",\n");
  json_family("ipv4", &r->ipv4);
  json_family("ipv6", &r->ipv6);
  printf("  \"mapping_varies_by_dest\": %s,\n",
         r->ipv4.mapping >= QPEER_NAT_MAPPING_ADDRESS_DEPENDENT ? "true"
         : r->ipv4.mapping == QPEER_NAT_MAPPING_ENDPOINT_INDEPENDENT ||
                 r->ipv4.mapping == QPEER_NAT_MAPPING_NONE
             ? "false"
             : "null");
  printf("  \"double_nat\": %s,\n  \"cgnat\": %s,\n  \"double_nat_evidence\": [",
         tri_json(r->double_nat), tri_json(r->cgnat));
  for (i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
    if (r->double_nat_evidence & (1u << i)) {
      printf("%s\"%s\"", first ? "" : ", ", ev[i]);
      first = 0;
    }
  }
  printf("],\n  \"path\": [");
  for (i = 0; i < r->nhops; i++) {
    const qpeer_netcheck_hop_t *h = &r->hops[i];
    const char *kind = h->kind == QPEER_NETCHECK_HOP_ROUTER ? "router"
                       : h->kind == QPEER_NETCHECK_HOP_DESTINATION
                           ? "destination"
                           : "silent";
    if (fmt_ip(&h->addr, b, sizeof(b)))
      printf("%s{\"ttl\": %zu, \"kind\": \"%s\", \"addr\": \"%s\"}",
             i ? ", " : "", i + 1, kind, b);
    else
      printf("%s{\"ttl\": %zu, \"kind\": \"%s\", \"addr\": null}",
             i ? ", " : "", i + 1, kind);
  }
  printf("],\n  \"portmap\": {\"tried\": %s, ",
         r->portmap_status == 1 ? "false" : "true");
  if (r->portmap_status == 1 || r->portmap_status == 0)
    printf("\"error\": null, ");
  else
    printf("\"error\": \"%s\", ", qpeer_err_name(r->portmap_status));
  printf("\"protocol\": \"%s\", \"answered\": [", proto_name(r->portmap_protocol));
  for (i = 0, first = 1; i < 3; i++) {
    if (r->portmap_answered & (1u << i)) {
      printf("%s\"%s\"", first ? "" : ", ", proto_name(1u << i));
      first = 0;
    }
  }
  printf("], ");
  json_addr("external", &r->portmap_external, 0);
  printf("},\n  \"servers\": [\n");
  for (i = 0; i < r->nprobes; i++) {
    const qpeer_netcheck_probe_t *p = &r->probes[i];
    printf("    {");
    json_addr("server", &p->server, 1);
    printf("\"role\": \"%s\", ",
           p->flags & QPEER_NETCHECK_PROBE_ALTERNATE ? "rfc5780-alternate"
                                                     : "server");
    if (p->status == 0)
      printf("\"ok\": true, \"error\": null, ");
    else if (p->status == 1)
      printf("\"ok\": false, \"error\": \"not-run\", ");
    else
      printf("\"ok\": false, \"error\": \"%s\", ", qpeer_err_name(p->status));
    json_addr("reflexive", &p->reflexive, 1);
    if (p->status == 0)
      printf("\"rtt_ms\": %.3f, ", (double)p->rtt_us / 1000.0);
    else
      printf("\"rtt_ms\": null, ");
    printf("\"transmissions\": %u, \"rfc5780\": %s, ", p->transmissions,
           p->other_address.ss_family ? "true" : "false");
    json_addr("other_address", &p->other_address, 0);
    printf("}%s\n", i + 1 < r->nprobes ? "," : "");
  }
  printf("  ]\n}\n");
}

static void print_family(const char *name, const qpeer_netcheck_family_t *f) {
  char b[QPEER_ADDR_STRLEN];
  if (!f->tested)
    printf("  %-14s not tested (no %s STUN server given)\n", name, name);
  else if (!f->works)
    printf("  %-14s no answer\n", name);
  else
    printf("  %-14s yes, seen as %s\n", name,
           fmt_addr(&f->reflexive, b, sizeof(b)) ? b : "?");
}

static void print_human(const qpeer_netcheck_report_t *r, int status) {
  char b[QPEER_ADDR_STRLEN], c[QPEER_ADDR_STRLEN];
  const qpeer_netcheck_family_t *fams[2] = {&r->ipv4, &r->ipv6};
  const char *names[2] = {"IPv4", "IPv6"};
  size_t i;
  int f;
  printf("qpeer netcheck (%llu ms, local %s)%s%s\n",
         (unsigned long long)r->duration_ms,
         fmt_addr(&r->local, b, sizeof(b)) ? b : "?",
         r->partial ? " [deadline reached: partial]" : "",
         status ? " [cancelled]" : "");
  printf("  %-14s %s\n", "UDP", r->udp ? "yes" : "no (nothing answered)");
  print_family("IPv4", &r->ipv4);
  print_family("IPv6", &r->ipv6);
  for (f = 0; f < 2; f++) {
    const qpeer_netcheck_family_t *x = fams[f];
    if (!x->works)
      continue;
    printf("  %-14s %s (%s)\n", "mapping", qpeer_nat_mapping_name(x->mapping),
           names[f]);
    if (fmt_addr(&x->rfc5780_server, b, sizeof(b)))
      printf("  %-14s %s (%s, RFC 5780 via %s)\n", "filtering",
             qpeer_nat_filtering_name(x->filtering), names[f], b);
    else
      printf("  %-14s %s (%s, no RFC 5780 server)\n", "filtering",
             qpeer_nat_filtering_name(x->filtering), names[f]);
    printf("  %-14s %s (%s)\n", "hairpinning", tri_text(x->hairpin),
           names[f]);
  }
  printf("  %-14s %s", "double NAT", tri_text(r->double_nat));
  if (r->nhops > 0) {
    printf(" (path:");
    for (i = 0; i < r->nhops; i++)
      printf(" %s", fmt_ip(&r->hops[i].addr, b, sizeof(b)) ? b : "*");
    printf(")");
  }
  printf("\n  %-14s %s\n", "CGNAT", tri_text(r->cgnat));
  if (r->portmap_status == 1)
    printf("  %-14s not tried\n", "port mapping");
  else if (r->portmap_status == 0)
    printf("  %-14s %s, external %s", "port mapping",
           proto_name(r->portmap_protocol),
           fmt_addr(&r->portmap_external, b, sizeof(b)) ? b : "?");
  else
    printf("  %-14s failed (%s)", "port mapping",
           qpeer_err_name(r->portmap_status));
  if (r->portmap_status != 1) {
    printf(" (answered:");
    for (i = 0, f = 0; i < 3; i++) {
      if (r->portmap_answered & (1u << i)) {
        printf(" %s", proto_name(1u << i));
        f = 1;
      }
    }
    printf("%s)\n", f ? "" : " none");
  }
  printf("  servers:\n");
  for (i = 0; i < r->nprobes; i++) {
    const qpeer_netcheck_probe_t *p = &r->probes[i];
    const char *role =
        p->flags & QPEER_NETCHECK_PROBE_ALTERNATE ? " (RFC 5780 alternate)" : "";
    fmt_addr(&p->server, b, sizeof(b));
    if (p->status == 0) {
      printf("    %-24s %-24s %8.2f ms", b,
             fmt_addr(&p->reflexive, c, sizeof(c)) ? c : "?",
             (double)p->rtt_us / 1000.0);
      if (!role[0] && fmt_addr(&p->other_address, c, sizeof(c)))
        printf("  RFC 5780 (other %s)", c);
      printf("%s\n", role);
    } else {
      printf("    %-24s %s%s\n", b,
             p->status == 1 ? "not run" : qpeer_err_name(p->status), role);
    }
  }
}

/* ---- flow ---------------------------------------------------------------------- */

static void on_ep_closed(qpeer_handle_t *h) { (void)h; }

static void report_done(void) {
  if (!N.nc_done || !N.path.done || !N.pm_done)
    return;
  if (N.pm_status != 1)
    qpeer_netcheck_report_set_portmap(
        &N.rep, N.pm_status, N.pm_info.protocol, N.pm_info.answered,
        N.pm_status == 0 ? (const struct sockaddr *)&N.pm_info.external
                         : NULL);
  if (N.path.dest_ttl || N.path.answered[1]) {
    size_t n = N.path.dest_ttl;
    int ttl;
    if (n == 0) {
      /* Not reached: up to the last hop that answered, plus one. */
      for (ttl = PATH_MAX_TTL; ttl >= 1 && !N.path.answered[ttl]; ttl--)
        ;
      n = (size_t)ttl + 1 > PATH_MAX_TTL ? PATH_MAX_TTL : (size_t)ttl + 1;
    }
    qpeer_netcheck_report_set_path(&N.rep, N.path.hops, n);
  }
  if (N.json)
    print_json(&N.rep, N.status);
  else
    print_human(&N.rep, N.status);
  fflush(stdout);
  N.exit_code = N.status ? 1 : 0;
  if (N.ep_open) {
    N.ep_open = 0;
    qpeer_close((qpeer_handle_t *)&N.ep, on_ep_closed);
  }
}

/* --portmap: the first outcome (a mapping, or the failure) is all a survey
 * needs; closing the handle deletes the mapping again. */
static void on_portmap(qpeer_portmap_t *pm, int status,
                       const qpeer_portmap_info_t *info) {
  if (N.pm_done)
    return;
  N.pm_done = 1;
  N.pm_status = status;
  N.pm_info = *info;
  if (N.pm_open) {
    N.pm_open = 0;
    qpeer_close((qpeer_handle_t *)pm, NULL);
  }
  report_done();
}

static void portmap_start(uint64_t timeout_ms) {
  qpeer_portmap_options_t o;
  int r;
  qpeer_portmap_options_default(&o);
  o.endpoint = &N.ep;
  o.timeout_ms = timeout_ms;
  o.retry_max_ms = 0; /* one attempt */
  r = qpeer_portmap_init(N.loop, &N.pm, &o);
  if (r == 0) {
    N.pm_open = 1;
    r = qpeer_portmap_start(&N.pm, on_portmap);
  }
  if (r != 0) {
    if (N.pm_open) {
      N.pm_open = 0;
      qpeer_close((qpeer_handle_t *)&N.pm, NULL);
    }
    memset(&N.pm_info, 0, sizeof(N.pm_info));
    N.pm_status = r;
    N.pm_done = 1;
  }
}

static void on_report(qpeer_netcheck_t *req, int status,
                      const qpeer_netcheck_report_t *r) {
  (void)req;
  N.rep = *r;
  N.status = status;
  N.nc_done = 1;
  report_done();
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: qpeer netcheck --stun HOST:PORT [--stun HOST:PORT]... "
          "[--json]\n"
          "                      [--bind ADDR:PORT] [--timeout MS] "
          "[--no-path]\n"
          "Reports whether UDP works (IPv4, IPv6), the address each STUN "
          "server sees,\n"
          "the NAT's mapping and filtering behaviour (RFC 5780 where a "
          "server supports\n"
          "it), hairpinning, double NAT / CGNAT (from the path to the first "
          "IPv4\n"
          "server) and the latency to each server. Give two servers with "
          "different IP\n"
          "addresses, or one RFC 5780 server, for the mapping behaviour.\n"
          "  --stun HOST:PORT  a STUN server (repeatable, at most %d)\n"
          "  --json            print one JSON object instead of text\n"
          "  --bind ADDR:PORT  local address of the socket surveyed "
          "(default: any, port 0)\n"
          "  --timeout MS      overall deadline (default 10000)\n"
          "  --no-path         skip the TTL path probe (double-NAT "
          "evidence)\n"
          "  --portmap         also ask the gateway for a port mapping "
          "(PCP, NAT-PMP,\n"
          "                    UPnP; deleted again at exit) and report it\n"
          "See doc/netcheck.md for what each field means.\n",
          QPEER_NETCHECK_MAX_SERVERS);
}

int cmd_netcheck(int argc, char **argv) {
  struct sockaddr_storage servers[QPEER_NETCHECK_MAX_SERVERS], local;
  qpeer_endpoint_options_t eo;
  qpeer_netcheck_options_t o;
  uv_loop_t loop;
  size_t nservers = 0, i;
  int have_bind = 0, no_path = 0, portmap = 0, r, v4 = 0, v6 = 0;
  uint64_t timeout = 10000;
  memset(&N, 0, sizeof(N));
  N.path.fd = -1;
  N.path.done = 1;
  N.pm_done = 1;
  N.pm_status = 1; /* not tried */
  if (uv_loop_init(&loop) != 0)
    return cli_fail("netcheck", UV_ENOMEM);
  N.loop = &loop;
  for (i = 1; i < (size_t)argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      uv_loop_close(&loop);
      return 0;
    } else if (!strcmp(a, "--stun") && i + 1 < (size_t)argc) {
      if (nservers == QPEER_NETCHECK_MAX_SERVERS) {
        fprintf(stderr, "qpeer: netcheck: at most %d STUN servers\n",
                QPEER_NETCHECK_MAX_SERVERS);
        uv_loop_close(&loop);
        return 2;
      }
      if ((r = resolve(&loop, argv[++i], &servers[nservers])) != 0) {
        fprintf(stderr, "qpeer: netcheck: bad STUN server '%s': %s\n",
                argv[i], qpeer_strerror(r));
        uv_loop_close(&loop);
        return 2;
      }
      if (servers[nservers].ss_family == AF_INET6)
        v6 = 1;
      else
        v4 = 1;
      nservers++;
    } else if (!strcmp(a, "--json")) {
      N.json = 1;
    } else if (!strcmp(a, "--no-path")) {
      no_path = 1;
    } else if (!strcmp(a, "--portmap")) {
      portmap = 1;
    } else if (!strcmp(a, "--bind") && i + 1 < (size_t)argc) {
      if (qpeer_addr_parse(&local, argv[++i]) != 0) {
        fprintf(stderr, "qpeer: netcheck: bad --bind address '%s'\n",
                argv[i]);
        uv_loop_close(&loop);
        return 2;
      }
      have_bind = 1;
    } else if (!strcmp(a, "--timeout") && i + 1 < (size_t)argc) {
      char *end;
      timeout = strtoull(argv[++i], &end, 10);
      if (*end || timeout == 0) {
        fprintf(stderr, "qpeer: netcheck: bad --timeout '%s'\n", argv[i]);
        uv_loop_close(&loop);
        return 2;
      }
    } else {
      fprintf(stderr, "qpeer: netcheck: unexpected argument '%s'\n", a);
      usage(stderr);
      uv_loop_close(&loop);
      return 2;
    }
  }
  if (nservers == 0) {
    fprintf(stderr, "qpeer: netcheck: no STUN server (--stun HOST:PORT)\n");
    usage(stderr);
    uv_loop_close(&loop);
    return 2;
  }
  /* Default socket: IPv4 only, IPv6 only, or dual-stack as needed. */
  qpeer_endpoint_options_default(&eo);
  if (!have_bind) {
    qpeer_addr_parse(&local, v6 ? "[::]:0" : "0.0.0.0:0");
    eo.ipv6_only = v6 && !v4;
  }
  eo.bind_addr = (const struct sockaddr *)&local;
  if ((r = qpeer_endpoint_init(&loop, &N.ep, &eo)) != 0) {
    uv_loop_close(&loop);
    return cli_fail("netcheck: endpoint", r);
  }
  N.ep_open = 1;
  qpeer_netcheck_options_default(&o);
  o.servers = servers;
  o.nservers = nservers;
  o.timeout_ms = timeout;
  if ((r = qpeer_netcheck_start(&N.req, &N.ep, &o, on_report)) != 0) {
    N.ep_open = 0;
    qpeer_close((qpeer_handle_t *)&N.ep, on_ep_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return cli_fail("netcheck", r);
  }
  if (portmap) {
    N.pm_done = 0;
    portmap_start(timeout < 5000 ? timeout : 5000);
  }
  if (!no_path) {
    for (i = 0; i < nservers; i++) {
      if (servers[i].ss_family == AF_INET) {
        path_start(&servers[i], have_bind ? &local : NULL);
        break;
      }
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return N.exit_code;
}
