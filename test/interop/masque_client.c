/* SPDX-License-Identifier: MIT */
/*
 * masque_client: an independent RFC 9298 CONNECT-UDP client (ix engine,
 * no libqpeer). It connects to a proxy over HTTP/3, opens a connect-udp
 * tunnel to a target, sends N numbered UDP payloads as HTTP Datagrams
 * (QUIC DATAGRAM frames, context 0, or DATAGRAM capsules) and checks that
 * the target's echoes come back byte-exact. A refusal is reported with its
 * status and Proxy-Status. Bounded by --timeout.
 * Exit: 0 pass (or the refusal --expect-status asked for), 1 fail,
 * 2 usage, 3 refused unexpectedly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ix.h"

#define MAX_PAYLOADS 1000
#define RESEND_NS (300ULL * 1000000ULL)
#define MAX_TRIES 5

static struct {
  const char *proxy, *pin, *target, *authority, *token, *token_file;
  int insecure, capsules, no_h3_datagram, no_datagram_tp, no_grease;
  int no_capsule_protocol;
  int count, expect_status;
  size_t sizes[32];
  int nsizes;
  uint64_t timeout_ms;
} opt;

static struct {
  ix_conn_t conn;
  ix_req_t *req;
  char target_host[256];
  unsigned target_port;
  int responded, tunnel_up, finished, failed;
  uint64_t sent_at[MAX_PAYLOADS];
  int tries[MAX_PAYLOADS];
  int echoed[MAX_PAYLOADS];
  int nechoed, dup, bad, frames, capsules;
  char token[8192];
} S;

static void usage(void) {
  fprintf(stderr,
          "usage: masque_client --proxy ADDR:PORT (--pin PEERID | --insecure)\n"
          "         --target HOST:PORT [--authority HOST:PORT]\n"
          "         [--token TOKEN | --token-file FILE] [--count N]\n"
          "         [--sizes N,N,...] [--capsules] [--no-h3-datagram]\n"
          "         [--no-datagram-tp] [--no-grease] [--no-capsule-protocol]\n"
          "         [--expect-status CODE]\n"
          "         [--timeout MS] [-v] [-q]\n");
  exit(2);
}

static int parse_hostport(const char *s, char *host, size_t hostlen,
                          unsigned *port) {
  const char *colon;
  size_t n;
  char *end;
  unsigned long p;
  if (s[0] == '[') {
    const char *rb = strchr(s, ']');
    if (!rb || rb[1] != ':')
      return -1;
    n = (size_t)(rb - s - 1);
    if (n + 1 > hostlen)
      return -1;
    memcpy(host, s + 1, n);
    host[n] = '\0';
    colon = rb + 1;
  } else {
    if (!(colon = strrchr(s, ':')))
      return -1;
    n = (size_t)(colon - s);
    if (n == 0 || n + 1 > hostlen)
      return -1;
    memcpy(host, s, n);
    host[n] = '\0';
  }
  p = strtoul(colon + 1, &end, 10);
  if (*end || p == 0 || p > 65535)
    return -1;
  *port = (unsigned)p;
  return 0;
}

static size_t payload_size(int i) {
  size_t s = opt.sizes[i % opt.nsizes];
  return s;
}

/* Payload i: 4-byte index (when it fits), then a pattern. */
static void make_payload(int i, uint8_t *p, size_t n) {
  size_t j;
  for (j = 0; j < n; j++)
    p[j] = (uint8_t)(i * 31 + j * 7 + 1);
  if (n >= 4) {
    p[0] = (uint8_t)(i >> 24);
    p[1] = (uint8_t)(i >> 16);
    p[2] = (uint8_t)(i >> 8);
    p[3] = (uint8_t)i;
  }
}

static void send_payload(int i) {
  static uint8_t buf[65536];
  size_t n = payload_size(i);
  make_payload(i, buf, n);
  if (ix_send_payload(&S.conn, S.req, buf, n, opt.capsules) != 0)
    ix_log("payload %d (%zu bytes) could not be queued", i, n);
  S.sent_at[i] = ix_now();
  S.tries[i]++;
}

static void on_payload(ix_conn_t *c, ix_req_t *r, const uint8_t *p,
                       size_t len, int frame) {
  static uint8_t want[65536];
  int i, match = -1;
  (void)c;
  (void)r;
  /* Which payload is this? By index if it carries one, else by size. */
  for (i = 0; i < opt.count; i++) {
    size_t n = payload_size(i);
    if (n != len)
      continue;
    if (n >= 4 && ((int)p[0] << 24 | (int)p[1] << 16 | (int)p[2] << 8 |
                   (int)p[3]) != i)
      continue;
    make_payload(i, want, n);
    if (memcmp(want, p, n) == 0) {
      if (!S.echoed[i]) {
        match = i;
        break;
      }
      match = -2;
    }
  }
  if (match == -2) {
    S.dup++;
    return;
  }
  if (match < 0) {
    S.bad++;
    ix_log("received %zu bytes that match no payload sent", len);
    return;
  }
  S.echoed[match] = 1;
  S.nechoed++;
  if (frame)
    S.frames++;
  else
    S.capsules++;
  ix_debug("echo %d: %zu bytes (%s)", match, len,
           frame ? "DATAGRAM frame" : "capsule");
}

static void on_response(ix_conn_t *c, ix_req_t *r) {
  const char *ps = ix_req_header(r, "proxy-status");
  const char *cp = ix_req_header(r, "capsule-protocol");
  const char *wa = ix_req_header(r, "www-authenticate");
  int i;
  (void)c;
  S.responded = 1;
  printf("response: :status %d\n", r->status);
  for (i = 0; i < r->nhdr; i++)
    if (r->hdr_name[i][0] != ':')
      printf("response header: %s: %s\n", r->hdr_name[i], r->hdr_value[i]);
  if (r->status >= 200 && r->status < 300) {
    /* RFC 9298 §3.5: a 2xx that starts the Capsule Protocol. */
    if (!cp || strncmp(cp, "?1", 2) != 0)
      printf("note: the 2xx response has no \"capsule-protocol: ?1\"\n");
    S.tunnel_up = 1;
    for (i = 0; i < opt.count; i++)
      send_payload(i);
    return;
  }
  printf("refused: %d%s%s%s%s\n", r->status, ps ? ", proxy-status: " : "",
         ps ? ps : "", wa ? ", www-authenticate: " : "", wa ? wa : "");
  S.finished = 1;
  if (r->status != opt.expect_status)
    S.failed = 3;
}

static void on_req_end(ix_conn_t *c, ix_req_t *r) {
  (void)c;
  if (!S.finished) {
    ix_log("the proxy ended the tunnel (stream %lld)%s",
           (long long)r->stream_id,
           r->capsule_error ? " with a malformed capsule stream" : "");
    if (!S.responded || S.nechoed < opt.count) {
      S.failed = 1;
      S.finished = 1;
    }
  }
}

static void on_settings(ix_conn_t *c) {
  printf("proxy SETTINGS: ENABLE_CONNECT_PROTOCOL=%d H3_DATAGRAM=%d "
         "(%u pairs, %u unknown)\n",
         c->peer.connect_protocol, c->peer.h3_datagram, c->peer.nsettings,
         c->peer.nunknown);
}

static void maybe_request(void) {
  char path[1024], authority[300];
  ix_conn_t *c = &S.conn;
  if (S.req || !c->ready || !c->peer.received)
    return;
  if (!c->peer.connect_protocol) {
    /* RFC 9220 §3: no :protocol unless the server allowed it. */
    ix_log("the proxy did not send SETTINGS_ENABLE_CONNECT_PROTOCOL = 1");
    S.failed = 1;
    S.finished = 1;
    return;
  }
  if (ix_masque_path(path, sizeof(path), S.target_host, S.target_port) != 0) {
    ix_log("cannot expand the URI template for %s", opt.target);
    S.failed = 1;
    S.finished = 1;
    return;
  }
  snprintf(authority, sizeof(authority), "%s", opt.authority);
  printf("request: CONNECT connect-udp https://%s%s\n", authority, path);
  S.req = ix_connect_udp(c, authority, path, S.token[0] ? S.token : NULL);
  if (!S.req) {
    S.failed = 1;
    S.finished = 1;
  }
}

static void resend(uint64_t now) {
  int i;
  if (!S.tunnel_up || S.finished)
    return;
  for (i = 0; i < opt.count; i++)
    if (!S.echoed[i] && S.tries[i] < MAX_TRIES &&
        now - S.sent_at[i] >= RESEND_NS)
      send_payload(i);
}

static void parse_args(int argc, char **argv) {
  int i;
  opt.count = 10;
  opt.timeout_ms = 10000;
  opt.sizes[0] = 1;
  opt.sizes[1] = 16;
  opt.sizes[2] = 100;
  opt.sizes[3] = 500;
  opt.sizes[4] = 1000;
  opt.sizes[5] = 1200;
  opt.nsizes = 6;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
#define ARG() (i + 1 < argc ? argv[++i] : (usage(), ""))
    if (!strcmp(a, "--proxy"))
      opt.proxy = ARG();
    else if (!strcmp(a, "--pin"))
      opt.pin = ARG();
    else if (!strcmp(a, "--insecure"))
      opt.insecure = 1;
    else if (!strcmp(a, "--target"))
      opt.target = ARG();
    else if (!strcmp(a, "--authority"))
      opt.authority = ARG();
    else if (!strcmp(a, "--token"))
      opt.token = ARG();
    else if (!strcmp(a, "--token-file"))
      opt.token_file = ARG();
    else if (!strcmp(a, "--count"))
      opt.count = atoi(ARG());
    else if (!strcmp(a, "--sizes")) {
      char *s = strdup(ARG()), *tok, *save = NULL;
      opt.nsizes = 0;
      for (tok = strtok_r(s, ",", &save); tok && opt.nsizes < 32;
           tok = strtok_r(NULL, ",", &save))
        opt.sizes[opt.nsizes++] = (size_t)strtoul(tok, NULL, 10);
      free(s);
    } else if (!strcmp(a, "--capsules"))
      opt.capsules = 1;
    else if (!strcmp(a, "--no-h3-datagram"))
      opt.no_h3_datagram = 1;
    else if (!strcmp(a, "--no-datagram-tp"))
      opt.no_datagram_tp = 1;
    else if (!strcmp(a, "--no-grease"))
      opt.no_grease = 1;
    else if (!strcmp(a, "--no-capsule-protocol"))
      opt.no_capsule_protocol = 1;
    else if (!strcmp(a, "--expect-status"))
      opt.expect_status = atoi(ARG());
    else if (!strcmp(a, "--timeout"))
      opt.timeout_ms = strtoull(ARG(), NULL, 10);
    else if (!strcmp(a, "-v"))
      ix_verbose = 2;
    else if (!strcmp(a, "-q"))
      ix_verbose = 0;
    else
      usage();
#undef ARG
  }
  if (!opt.proxy || !opt.target || (!opt.pin && !opt.insecure) ||
      opt.count < 0 || opt.count > MAX_PAYLOADS || opt.nsizes == 0)
    usage();
  for (i = 0; i < opt.nsizes; i++)
    if (opt.sizes[i] > 65527) {
      fprintf(stderr, "masque_client: a UDP payload is at most 65527 bytes\n");
      exit(2);
    }
}

static int read_token(void) {
  FILE *f;
  size_t n;
  if (opt.token) {
    snprintf(S.token, sizeof(S.token), "%s", opt.token);
    return 0;
  }
  if (!opt.token_file)
    return 0;
  if (!(f = fopen(opt.token_file, "r"))) {
    fprintf(stderr, "masque_client: %s: %s\n", opt.token_file,
            strerror(errno));
    return -1;
  }
  n = fread(S.token, 1, sizeof(S.token) - 1, f);
  fclose(f);
  while (n && (S.token[n - 1] == '\n' || S.token[n - 1] == '\r' ||
               S.token[n - 1] == ' '))
    n--;
  S.token[n] = '\0';
  return 0;
}

int main(int argc, char **argv) {
  struct sockaddr_storage pa;
  socklen_t palen;
  char phost[256];
  unsigned pport;
  uint8_t pin[32];
  ix_conn_opts_t co;
  ix_hooks_t hooks;
  int fd, rc = 0;
  uint64_t deadline;
  static uint8_t buf[65536];
  ix_prog = "masque_client";
  parse_args(argc, argv);
  if (read_token() != 0)
    return 2;
  if (parse_hostport(opt.proxy, phost, sizeof(phost), &pport) != 0 ||
      parse_hostport(opt.target, S.target_host, sizeof(S.target_host),
                     &S.target_port) != 0) {
    fprintf(stderr, "masque_client: addresses are HOST:PORT or [V6]:PORT\n");
    return 2;
  }
  memset(&pa, 0, sizeof(pa));
  if (inet_pton(AF_INET, phost, &((struct sockaddr_in *)&pa)->sin_addr) == 1) {
    pa.ss_family = AF_INET;
    ((struct sockaddr_in *)&pa)->sin_port = htons((uint16_t)pport);
    palen = sizeof(struct sockaddr_in);
  } else if (inet_pton(AF_INET6, phost,
                       &((struct sockaddr_in6 *)&pa)->sin6_addr) == 1) {
    pa.ss_family = AF_INET6;
    ((struct sockaddr_in6 *)&pa)->sin6_port = htons((uint16_t)pport);
    palen = sizeof(struct sockaddr_in6);
  } else {
    fprintf(stderr, "masque_client: --proxy must be an IP address\n");
    return 2;
  }
  if (opt.pin && ix_peer_id_parse(opt.pin, pin) != 0) {
    fprintf(stderr, "masque_client: --pin %s is not a valid peer ID\n",
            opt.pin);
    return 2;
  }
  if (!opt.authority)
    opt.authority = opt.proxy;
  fd = socket(pa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&pa, palen) != 0) {
    fprintf(stderr, "masque_client: socket: %s\n", strerror(errno));
    return 1;
  }
  memset(&co, 0, sizeof(co));
  co.server = 0;
  co.h3_datagram = !opt.no_h3_datagram;
  co.datagram_tp = !opt.no_datagram_tp;
  co.grease = !opt.no_grease;
  co.omit_capsule_protocol = opt.no_capsule_protocol;
  co.pin = opt.pin ? pin : NULL;
  co.insecure = opt.insecure;
  memset(&hooks, 0, sizeof(hooks));
  hooks.on_response = on_response;
  hooks.on_payload = on_payload;
  hooks.on_req_end = on_req_end;
  hooks.on_settings = on_settings;
  if (ix_conn_client(&S.conn, &co, &hooks, fd, (struct sockaddr *)&pa,
                     palen) != 0 ||
      ix_conn_write(&S.conn) != 0) {
    fprintf(stderr, "masque_client: cannot start the QUIC connection\n");
    return 1;
  }
  deadline = ix_now() + opt.timeout_ms * 1000000ULL;
  while (!S.finished) {
    uint64_t now = ix_now(), exp = ix_conn_expiry(&S.conn), wake = deadline;
    struct pollfd pfd;
    int ms;
    if (now >= deadline) {
      ix_log("timed out after %llu ms (%s)", (unsigned long long)opt.timeout_ms,
             !S.conn.ready     ? "no QUIC/TLS handshake"
             : !S.conn.peer.received ? "no SETTINGS from the proxy"
             : !S.responded    ? "no response to CONNECT"
                               : "echoes missing");
      S.failed = 1;
      break;
    }
    if (exp < wake)
      wake = exp;
    if (S.tunnel_up && now + RESEND_NS / 3 < wake)
      wake = now + RESEND_NS / 3;
    ms = wake > now ? (int)((wake - now + 999999) / 1000000) : 0;
    pfd.fd = fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, ms) < 0 && errno != EINTR) {
      ix_log("poll: %s", strerror(errno));
      S.failed = 1;
      break;
    }
    if (pfd.revents & POLLIN) {
      for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0)
          break;
        if (ix_conn_read(&S.conn, buf, (size_t)n) != 0)
          break;
      }
    }
    if (S.conn.closing) {
      if (!S.finished) {
        ix_log("connection ended: %s", S.conn.close_reason);
        S.failed = 1;
      }
      break;
    }
    if (ix_now() >= ix_conn_expiry(&S.conn) &&
        ix_conn_handle_expiry(&S.conn) != 0) {
      ix_log("connection ended: %s", S.conn.close_reason);
      S.failed = 1;
      break;
    }
    maybe_request();
    resend(ix_now());
    if (S.tunnel_up && S.nechoed == opt.count)
      S.finished = 1;
    if (!S.conn.closing)
      ix_conn_write(&S.conn);
  }
  if (S.tunnel_up) {
    printf("sent %d payloads, %d echoed byte-exact (%d as QUIC DATAGRAM "
           "frames, %d as DATAGRAM capsules), %d duplicates, %d unmatched\n",
           opt.count, S.nechoed, S.frames, S.capsules, S.dup, S.bad);
    printf("datagrams usable: %s; sent %llu frames, %llu capsules\n",
           ix_datagrams_usable(&S.conn) ? "yes" : "no",
           (unsigned long long)S.req->tx_frames,
           (unsigned long long)S.req->tx_capsules);
    if (S.conn.rx_dgram_unannounced)
      printf("violation: %llu QUIC DATAGRAM frames received although we did "
             "not announce SETTINGS_H3_DATAGRAM\n",
             (unsigned long long)S.conn.rx_dgram_unannounced);
    if (S.nechoed != opt.count || S.bad || S.conn.rx_dgram_unannounced)
      S.failed = 1;
  }
  if (!S.conn.closing) {
    if (S.req)
      ix_req_finish(&S.conn, S.req);
    ix_conn_write(&S.conn);
    ix_conn_close(&S.conn, IX_H3_NO_ERROR, "done");
  }
  if (opt.expect_status && (!S.req || S.req->status != opt.expect_status) &&
      !S.failed) {
    ix_log("expected :status %d", opt.expect_status);
    S.failed = 1;
  }
  rc = S.failed;
  printf("result: %s\n", rc == 0 ? "PASS" : rc == 3 ? "REFUSED" : "FAIL");
  ix_conn_free(&S.conn);
  close(fd);
  return rc;
}
