/* SPDX-License-Identifier: MIT */
/*
 * masque_proxy: an independent RFC 9298 CONNECT-UDP proxy (HTTP/3 server,
 * ix engine, no libqpeer). It accepts extended CONNECT with :protocol
 * connect-udp on the default template path, opens a connected UDP socket
 * to the target (DF set) and forwards UDP payloads both ways as HTTP
 * Datagrams: QUIC DATAGRAM frames when both sides announced
 * SETTINGS_H3_DATAGRAM and the datagram fits, DATAGRAM capsules
 * otherwise. It serves up to 16 connections with 64 tunnels, prints its
 * address and certificate pin, and exits 0 on SIGTERM/SIGINT (after
 * printing its counters) or 1 after --timeout seconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ix.h"

#define MAX_CONNS 16
#define MAX_TUNNELS 64

typedef struct tunnel_s {
  ix_conn_t *c;  /* the connection, NULL when free */
  ix_req_t *r;   /* the request stream */
  int fd;        /* connected UDP socket to the target */
} tunnel_t;

static struct {
  const char *listen, *token, *pin_file, *cert_file;
  int no_h3_datagram, no_grease;
  long timeout_s;
} opt;

static ix_conn_t *conns[MAX_CONNS];
static tunnel_t tunnels[MAX_TUNNELS];
static gnutls_certificate_credentials_t cred;
static int lfd;
static struct sockaddr_storage laddr;
static socklen_t laddrlen;
static volatile sig_atomic_t stop;

/* Counters printed at exit (the tests read them). */
static struct {
  unsigned long conns, requests, tunnels, refused, no_capsule_protocol;
  unsigned long rx_frames, rx_capsules, tx_frames, tx_capsules, udp_drops;
  unsigned long to_target, from_target, grease_settings, h3_dgram_peers;
} st;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static void usage(void) {
  fprintf(stderr,
          "usage: masque_proxy [--listen ADDR:PORT] [--token TOKEN]\n"
          "         [--pin-file FILE] [--cert-file FILE] [--no-h3-datagram]\n"
          "         [--no-grease] [--timeout S] [-v] [-q]\n");
  exit(2);
}

static tunnel_t *tunnel_of(ix_req_t *r) { return r->data; }

static void tunnel_close(tunnel_t *t) {
  if (!t->c)
    return;
  if (t->fd >= 0)
    close(t->fd);
  if (t->r)
    t->r->data = NULL;
  memset(t, 0, sizeof(*t));
  t->fd = -1;
}

static void refuse(ix_conn_t *c, ix_req_t *r, int status, const char *err,
                   const char *details) {
  char ps[512];
  snprintf(ps, sizeof(ps), "ix-masque-proxy; error=%s; details=\"%s\"", err,
           details);
  ix_log("refused stream %lld: %d %s (%s)", (long long)r->stream_id, status,
         err, details);
  st.refused++;
  ix_respond(c, r, status, ps, status == 401 ? "www-authenticate" : NULL,
             status == 401 ? "Bearer" : NULL);
}

static int open_target(const char *host, unsigned port, int *pfd,
                       const char **err) {
  struct addrinfo hints, *res = NULL;
  char ps[8];
  int fd, rv, on;
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_DGRAM;
  snprintf(ps, sizeof(ps), "%u", port);
  /* RFC 9298 §3: resolve names before answering. */
  if ((rv = getaddrinfo(host, ps, &hints, &res)) != 0 || !res) {
    *err = "dns_error";
    return 502;
  }
  fd = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    if (fd >= 0)
      close(fd);
    freeaddrinfo(res);
    *err = "destination_unavailable";
    return 502;
  }
  /* RFC 9298 §3: no IP fragmentation; set DF where possible. */
  if (res->ai_family == AF_INET) {
    on = IP_PMTUDISC_PROBE;
    setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &on, sizeof(on));
  } else {
    on = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, &on, sizeof(on));
  }
  freeaddrinfo(res);
  *pfd = fd;
  return 0;
}

static void on_request(ix_conn_t *c, ix_req_t *r) {
  const char *method = ix_req_header(r, ":method");
  const char *proto = ix_req_header(r, ":protocol");
  const char *scheme = ix_req_header(r, ":scheme");
  const char *authority = ix_req_header(r, ":authority");
  const char *path = ix_req_header(r, ":path");
  const char *cp = ix_req_header(r, "capsule-protocol");
  const char *auth = ix_req_header(r, "authorization");
  char host[256], want[4200];
  unsigned port;
  const char *err = NULL;
  int i, rv, fd = -1;
  st.requests++;
  ix_log("request on stream %lld: %s %s %s://%s%s%s%s",
         (long long)r->stream_id, method ? method : "-", proto ? proto : "-",
         scheme ? scheme : "-", authority ? authority : "-", path ? path : "-",
         cp ? " capsule-protocol: " : "", cp ? cp : "");
  if (!method || strcmp(method, "CONNECT") != 0) {
    refuse(c, r, 405, "http_request_error", "only CONNECT");
    return;
  }
  if (!proto || strcmp(proto, "connect-udp") != 0) {
    refuse(c, r, 501, "http_request_error", "only connect-udp");
    return;
  }
  /* RFC 9298 §3.4: :scheme and :path not empty, :authority the proxy's. */
  if (!scheme || strcmp(scheme, "https") != 0 || !authority || !*authority ||
      !path || !*path) {
    refuse(c, r, 400, "http_request_error", "bad pseudo-header fields");
    return;
  }
  if (!cp || strncmp(cp, "?1", 2) != 0)
    st.no_capsule_protocol++; /* RFC 9297 §3.4: SHOULD; accepted */
  if (opt.token) {
    snprintf(want, sizeof(want), "Bearer %s", opt.token);
    if (!auth || strcmp(auth, want) != 0) {
      refuse(c, r, 401, "http_request_denied",
             auth ? "bad token" : "no token");
      return;
    }
  }
  rv = ix_masque_parse_path(path, host, sizeof(host), &port);
  if (rv) {
    refuse(c, r, rv, "http_request_error",
           rv == 404 ? "not the template" : "bad target");
    return;
  }
  for (i = 0; i < MAX_TUNNELS && tunnels[i].c; i++)
    ;
  if (i == MAX_TUNNELS) {
    refuse(c, r, 503, "http_request_denied", "too many tunnels");
    return;
  }
  if ((rv = open_target(host, port, &fd, &err)) != 0) {
    refuse(c, r, rv, err, host);
    return;
  }
  if (ix_respond(c, r, 200, NULL, NULL, NULL) != 0) {
    close(fd);
    return;
  }
  tunnels[i].c = c;
  tunnels[i].r = r;
  tunnels[i].fd = fd;
  r->data = &tunnels[i];
  st.tunnels++;
  ix_log("tunnel %d: stream %lld -> %s port %u", i, (long long)r->stream_id,
         host, port);
}

static void on_payload(ix_conn_t *c, ix_req_t *r, const uint8_t *p,
                       size_t len, int frame) {
  tunnel_t *t = tunnel_of(r);
  (void)c;
  if (frame)
    st.rx_frames++;
  else
    st.rx_capsules++;
  if (!t)
    return;
  if (send(t->fd, p, len, 0) != (ssize_t)len)
    st.udp_drops++; /* too large (DF) or refused: dropped, like UDP */
  else
    st.to_target++;
}

static void on_req_end(ix_conn_t *c, ix_req_t *r) {
  tunnel_t *t = tunnel_of(r);
  /* The client ended the tunnel: close the socket and end our side. */
  ix_req_finish(c, r);
  if (t) {
    ix_log("tunnel stream %lld ended by the client", (long long)r->stream_id);
    tunnel_close(t);
  }
}

static void on_settings(ix_conn_t *c) {
  if (c->peer.nunknown)
    st.grease_settings++;
  if (c->peer.h3_datagram)
    st.h3_dgram_peers++;
}

static void conn_free(int i) {
  int k;
  ix_conn_t *c = conns[i];
  for (k = 0; k < MAX_TUNNELS; k++)
    if (tunnels[k].c == c)
      tunnel_close(&tunnels[k]);
  ix_log("connection %d ended%s%s", i, c->close_reason[0] ? ": " : "",
         c->close_reason);
  ix_conn_free(c);
  free(c);
  conns[i] = NULL;
}

static void on_packet(const uint8_t *pkt, size_t n,
                      const struct sockaddr_storage *from, socklen_t flen) {
  ix_conn_opts_t co;
  ix_hooks_t hooks;
  int i, slot = -1;
  for (i = 0; i < MAX_CONNS; i++) {
    if (conns[i] && ix_conn_owns(conns[i], pkt, n)) {
      ix_conn_read(conns[i], pkt, n);
      return;
    }
    if (!conns[i] && slot < 0)
      slot = i;
  }
  /* A new connection: only a long-header Initial may start one. */
  if (slot < 0 || n < 1200 || !(pkt[0] & 0x80))
    return;
  memset(&co, 0, sizeof(co));
  co.server = 1;
  co.h3_datagram = !opt.no_h3_datagram;
  co.datagram_tp = 1;
  co.grease = !opt.no_grease;
  co.cred = cred;
  memset(&hooks, 0, sizeof(hooks));
  hooks.on_request = on_request;
  hooks.on_payload = on_payload;
  hooks.on_req_end = on_req_end;
  hooks.on_settings = on_settings;
  if (!(conns[slot] = calloc(1, sizeof(ix_conn_t))))
    return;
  if (ix_conn_server(conns[slot], &co, &hooks, lfd,
                     (struct sockaddr *)&laddr, laddrlen,
                     (const struct sockaddr *)from, flen, pkt, n) != 0) {
    ix_conn_free(conns[slot]);
    free(conns[slot]);
    conns[slot] = NULL;
    return;
  }
  st.conns++;
  ix_log("connection %d from a new client", slot);
  ix_conn_read(conns[slot], pkt, n);
}

static void on_target(tunnel_t *t) {
  static uint8_t buf[65536];
  for (;;) {
    ssize_t n = recv(t->fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return;
      /* RFC 9298 §3: the socket is unusable (ICMP error): end the
       * request stream. */
      ix_log("tunnel stream %lld: %s; closing it",
             (long long)t->r->stream_id, strerror(errno));
      ix_req_finish(t->c, t->r);
      tunnel_close(t);
      return;
    }
    st.from_target++;
    if (ix_send_payload(t->c, t->r, buf, (size_t)n, 0) != 0)
      st.udp_drops++;
  }
}

static int parse_listen(const char *s) {
  char host[128];
  const char *colon = strrchr(s, ':');
  size_t n;
  memset(&laddr, 0, sizeof(laddr));
  if (!colon || (n = (size_t)(colon - s)) >= sizeof(host))
    return -1;
  memcpy(host, s, n);
  host[n] = '\0';
  if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
    memmove(host, host + 1, n - 2);
    host[n - 2] = '\0';
  }
  if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&laddr)->sin_addr) ==
      1) {
    laddr.ss_family = AF_INET;
    ((struct sockaddr_in *)&laddr)->sin_port = htons((uint16_t)atoi(colon + 1));
    laddrlen = sizeof(struct sockaddr_in);
    return 0;
  }
  if (inet_pton(AF_INET6, host,
                &((struct sockaddr_in6 *)&laddr)->sin6_addr) == 1) {
    laddr.ss_family = AF_INET6;
    ((struct sockaddr_in6 *)&laddr)->sin6_port =
        htons((uint16_t)atoi(colon + 1));
    laddrlen = sizeof(struct sockaddr_in6);
    return 0;
  }
  return -1;
}

static void print_stats(void) {
  int i;
  ix_req_t *r;
  /* Requests still alive carry their own frame/capsule counters. */
  for (i = 0; i < MAX_CONNS; i++)
    if (conns[i])
      for (r = conns[i]->reqs; r; r = r->next) {
        st.tx_frames += r->tx_frames;
        st.tx_capsules += r->tx_capsules;
        r->tx_frames = r->tx_capsules = 0;
      }
  printf("stats: connections=%lu requests=%lu tunnels=%lu refused=%lu "
         "rx_frames=%lu rx_capsules=%lu tx_frames=%lu tx_capsules=%lu "
         "to_target=%lu from_target=%lu udp_drops=%lu "
         "no_capsule_protocol=%lu h3_datagram_peers=%lu "
         "peers_with_unknown_settings=%lu\n",
         st.conns, st.requests, st.tunnels, st.refused, st.rx_frames,
         st.rx_capsules, st.tx_frames, st.tx_capsules, st.to_target,
         st.from_target, st.udp_drops, st.no_capsule_protocol,
         st.h3_dgram_peers, st.grease_settings);
  fflush(stdout);
}

int main(int argc, char **argv) {
  uint8_t key[32];
  char pin[57], text[INET6_ADDRSTRLEN];
  uint64_t deadline;
  int i, rc = 0;
  static uint8_t buf[65536];
  ix_prog = "masque_proxy";
  opt.listen = "127.0.0.1:0";
  opt.timeout_s = 60;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
#define ARG() (i + 1 < argc ? argv[++i] : (usage(), ""))
    if (!strcmp(a, "--listen"))
      opt.listen = ARG();
    else if (!strcmp(a, "--token"))
      opt.token = ARG();
    else if (!strcmp(a, "--pin-file"))
      opt.pin_file = ARG();
    else if (!strcmp(a, "--cert-file"))
      opt.cert_file = ARG();
    else if (!strcmp(a, "--no-h3-datagram"))
      opt.no_h3_datagram = 1;
    else if (!strcmp(a, "--no-grease"))
      opt.no_grease = 1;
    else if (!strcmp(a, "--timeout"))
      opt.timeout_s = atol(ARG());
    else if (!strcmp(a, "-v"))
      ix_verbose = 2;
    else if (!strcmp(a, "-q"))
      ix_verbose = 0;
    else
      usage();
#undef ARG
  }
  for (i = 0; i < MAX_TUNNELS; i++)
    tunnels[i].fd = -1;
  if (parse_listen(opt.listen) != 0) {
    fprintf(stderr, "masque_proxy: --listen %s is not ADDR:PORT\n",
            opt.listen);
    return 2;
  }
  if (ix_make_server_cred(&cred, key, opt.cert_file) != 0)
    return 1;
  ix_peer_id_format(key, pin);
  lfd = socket(laddr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&laddr, laddrlen) != 0 ||
      getsockname(lfd, (struct sockaddr *)&laddr, &laddrlen) != 0) {
    fprintf(stderr, "masque_proxy: %s: %s\n", opt.listen, strerror(errno));
    return 1;
  }
  if (opt.pin_file) {
    FILE *f = fopen(opt.pin_file, "w");
    if (!f || fprintf(f, "%s\n", pin) < 0 || fclose(f) != 0) {
      fprintf(stderr, "masque_proxy: %s: %s\n", opt.pin_file,
              strerror(errno));
      return 1;
    }
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);
  printf("pin: %s\n", pin);
  if (laddr.ss_family == AF_INET)
    printf("masque proxy on %s:%u\n",
           inet_ntop(AF_INET, &((struct sockaddr_in *)&laddr)->sin_addr, text,
                     sizeof(text)),
           ntohs(((struct sockaddr_in *)&laddr)->sin_port));
  else
    printf("masque proxy on [%s]:%u\n",
           inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&laddr)->sin6_addr,
                     text, sizeof(text)),
           ntohs(((struct sockaddr_in6 *)&laddr)->sin6_port));
  fflush(stdout);
  deadline = ix_now() + (uint64_t)opt.timeout_s * 1000000000ULL;
  while (!stop) {
    struct pollfd pfd[1 + MAX_TUNNELS];
    tunnel_t *pt[1 + MAX_TUNNELS];
    uint64_t now = ix_now(), wake = deadline;
    nfds_t n = 0, k;
    int ms;
    if (now >= deadline) {
      ix_log("timeout after %ld s", opt.timeout_s);
      rc = 1;
      break;
    }
    for (i = 0; i < MAX_CONNS; i++)
      if (conns[i] && ix_conn_expiry(conns[i]) < wake)
        wake = ix_conn_expiry(conns[i]);
    pfd[n].fd = lfd;
    pfd[n].events = POLLIN;
    pt[n++] = NULL;
    for (i = 0; i < MAX_TUNNELS; i++)
      if (tunnels[i].c) {
        pfd[n].fd = tunnels[i].fd;
        pfd[n].events = POLLIN;
        pt[n++] = &tunnels[i];
      }
    ms = wake > now ? (int)((wake - now + 999999) / 1000000) : 0;
    if (ms > 1000)
      ms = 1000;
    if (poll(pfd, n, ms) < 0 && errno != EINTR) {
      ix_log("poll: %s", strerror(errno));
      rc = 1;
      break;
    }
    if (pfd[0].revents & POLLIN) {
      for (;;) {
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ssize_t r = recvfrom(lfd, buf, sizeof(buf), 0,
                             (struct sockaddr *)&from, &flen);
        if (r < 0)
          break;
        on_packet(buf, (size_t)r, &from, flen);
      }
    }
    for (k = 1; k < n; k++)
      if ((pfd[k].revents & (POLLIN | POLLERR)) && pt[k]->c)
        on_target(pt[k]);
    for (i = 0; i < MAX_CONNS; i++) {
      ix_conn_t *c = conns[i];
      if (!c)
        continue;
      if (!c->closing && ix_now() >= ix_conn_expiry(c))
        ix_conn_handle_expiry(c);
      if (!c->closing)
        ix_conn_write(c);
      if (c->closing) {
        ix_req_t *r;
        for (r = c->reqs; r; r = r->next) {
          st.tx_frames += r->tx_frames;
          st.tx_capsules += r->tx_capsules;
        }
        conn_free(i);
      }
    }
  }
  for (i = 0; i < MAX_CONNS; i++)
    if (conns[i]) {
      ix_req_t *r;
      for (r = conns[i]->reqs; r; r = r->next) {
        st.tx_frames += r->tx_frames;
        st.tx_capsules += r->tx_capsules;
        r->tx_frames = r->tx_capsules = 0;
      }
      ix_conn_close(conns[i], IX_H3_NO_ERROR, "shutting down");
      conn_free(i);
    }
  print_stats();
  gnutls_certificate_free_credentials(cred);
  close(lfd);
  return rc;
}
