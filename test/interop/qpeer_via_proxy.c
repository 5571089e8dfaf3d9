/* SPDX-License-Identifier: MIT */
/*
 * qpeer_via_proxy: drives qpeer's own CONNECT-UDP client (qpeer_tunnel_t,
 * public API only) through a third-party proxy (in the tests: the
 * independent masque_proxy). Modes:
 *   default   raw UDP through the tunnel: N payloads to an echo target,
 *             every echo checked byte-exact;
 *   --quic    a full QUIC connection through the tunnel: an in-process
 *             qpeer listener on 127.0.0.1 is the target, the client
 *             connects over the tunnel's virtual interface (peer ID
 *             pinned), N inner QUIC DATAGRAMs are echoed by the server;
 *   --expect-status CODE  the proxy must refuse with CODE; the status and
 *             Proxy-Status qpeer read are printed.
 * Prints qpeer's tunnel counters; exit 0 pass, 1 fail, 2 usage.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qpeer.h"

static struct {
  const char *proxy, *pin, *target, *token;
  int quic, count, expect_status;
  uint64_t timeout_ms;
} opt;

static uv_loop_t loop;
static uv_timer_t watchdog;
static qpeer_endpoint_t ep, srv_ep;
static qpeer_tunnel_t tun;
static qpeer_conn_t cli, srv;
static qpeer_connect_t creq;
static qpeer_peer_id_t proxy_id;
static int have_srv, srv_accepted, cli_started;
static int echoed[1000], nechoed, bad, failed = 1, finished;
static int tunnel_status = 1, http_status;
static char proxy_status[256];
static qpeer_masque_stats_t final;

static void usage(void) {
  fprintf(stderr,
          "usage: qpeer_via_proxy --proxy ADDR:PORT --pin PEERID\n"
          "         (--target HOST:PORT | --quic) [--token TOKEN]\n"
          "         [--count N] [--expect-status CODE] [--timeout MS]\n");
  exit(2);
}

static void on_closed_handle(qpeer_handle_t *h) { (void)h; }

static void finish(int ok) {
  if (finished)
    return;
  finished = 1;
  failed = !ok;
  qpeer_tunnel_get_stats(&tun, &final);
  uv_timer_stop(&watchdog);
  uv_close((uv_handle_t *)&watchdog, NULL);
  if (cli_started)
    qpeer_close((qpeer_handle_t *)&cli, on_closed_handle);
  if (srv_accepted)
    qpeer_close((qpeer_handle_t *)&srv, on_closed_handle);
  qpeer_tunnel_close(&tun, on_closed_handle);
  qpeer_close((qpeer_handle_t *)&ep, on_closed_handle);
  if (have_srv)
    qpeer_close((qpeer_handle_t *)&srv_ep, on_closed_handle);
}

static void make_payload(int i, uint8_t *p, size_t n) {
  size_t j;
  for (j = 0; j < n; j++)
    p[j] = (uint8_t)(i * 13 + j * 5 + 3);
  p[0] = (uint8_t)i;
  p[1] = (uint8_t)(i >> 8);
}

static size_t payload_len(int i) { return (size_t)(20 + (i * 97) % 1100); }

static void check_echo(const uint8_t *data, size_t len) {
  static uint8_t want[2048];
  int i;
  if (len < 2) {
    bad++;
    return;
  }
  i = data[0] | data[1] << 8;
  if (i >= opt.count || payload_len(i) != len) {
    bad++;
    return;
  }
  make_payload(i, want, len);
  if (memcmp(want, data, len) != 0) {
    bad++;
    return;
  }
  if (!echoed[i]++)
    nechoed++;
  if (nechoed == opt.count)
    finish(bad == 0);
}

/* ---- raw UDP through the tunnel ------------------------------------------ */

static void on_tun_recv(qpeer_tunnel_t *t, const uint8_t *data, size_t len) {
  (void)t;
  check_echo(data, len);
}

static void send_raw(void) {
  static uint8_t buf[2048];
  int i, rv;
  for (i = 0; i < opt.count; i++) {
    make_payload(i, buf, payload_len(i));
    if ((rv = qpeer_tunnel_send(&tun, buf, payload_len(i))) != 0)
      fprintf(stderr, "qpeer_tunnel_send: %s\n", qpeer_strerror(rv));
  }
}

/* ---- a QUIC connection through the tunnel -------------------------------- */

static void srv_on_datagram(qpeer_conn_t *c, const uint8_t *d, size_t len) {
  qpeer_conn_send_datagram(c, d, len); /* echo */
}

static void cli_on_datagram(qpeer_conn_t *c, const uint8_t *d, size_t len) {
  (void)c;
  check_echo(d, len);
}

static void on_srv_connection(qpeer_endpoint_t *e, int status) {
  qpeer_conn_callbacks_t cb;
  if (status != 0 || srv_accepted || qpeer_endpoint_accept(e, &srv) != 0)
    return;
  srv_accepted = 1;
  memset(&cb, 0, sizeof(cb));
  cb.on_datagram = srv_on_datagram;
  qpeer_conn_set_callbacks(&srv, &cb);
  printf("inner QUIC: the server accepted a connection through the tunnel\n");
}

static void on_connect(qpeer_connect_t *req, int status) {
  static uint8_t buf[2048];
  qpeer_conn_callbacks_t cb;
  int i, rv;
  (void)req;
  if (status != 0) {
    fprintf(stderr, "inner QUIC connect through the tunnel: %s\n",
            qpeer_strerror(status));
    finish(0);
    return;
  }
  printf("inner QUIC: handshake through the tunnel done (max datagram %zu)\n",
         qpeer_conn_get_max_datagram_size(&cli));
  memset(&cb, 0, sizeof(cb));
  cb.on_datagram = cli_on_datagram;
  qpeer_conn_set_callbacks(&cli, &cb);
  for (i = 0; i < opt.count; i++) {
    make_payload(i, buf, payload_len(i));
    if ((rv = qpeer_conn_send_datagram(&cli, buf, payload_len(i))) != 0)
      fprintf(stderr, "inner datagram %d (%zu bytes): %s\n", i,
              payload_len(i), qpeer_strerror(rv));
  }
}

static void start_quic(void) {
  static const char *alpn[] = {"ixq"};
  struct sockaddr_storage local, remote;
  qpeer_connect_options_t co;
  int rv;
  qpeer_tunnel_get_local_addr(&tun, &local);
  qpeer_tunnel_get_remote_addr(&tun, &remote);
  qpeer_connect_options_default(&co);
  co.remote = (struct sockaddr *)&remote;
  co.local = (struct sockaddr *)&local;
  co.alpn = alpn;
  co.nalpn = 1;
  co.auth = QPEER_AUTH_PEER_ID;
  co.peer_id = qpeer_identity_get_peer_id(qpeer_endpoint_get_identity(&srv_ep));
  if ((rv = qpeer_connect(&creq, &ep, &cli, &co, on_connect)) != 0) {
    fprintf(stderr, "qpeer_connect: %s\n", qpeer_strerror(rv));
    finish(0);
    return;
  }
  cli_started = 1;
}

/* ---- the tunnel ---------------------------------------------------------- */

static void on_tunnel(qpeer_tunnel_t *t, int status) {
  qpeer_masque_stats_t s;
  qpeer_tunnel_get_stats(t, &s);
  http_status = s.http_status;
  snprintf(proxy_status, sizeof(proxy_status), "%s", s.proxy_status);
  tunnel_status = status;
  if (status != 0) {
    printf("tunnel: %s (:status %d%s%s)\n", qpeer_strerror(status),
           s.http_status, s.proxy_status[0] ? ", proxy-status: " : "",
           s.proxy_status);
    finish(opt.expect_status && s.http_status == opt.expect_status);
    return;
  }
  printf("tunnel: up (:status %d, proxy announced H3_DATAGRAM: %s)\n",
         s.http_status, s.peer_h3_datagram ? "yes" : "no");
  if (opt.expect_status) {
    fprintf(stderr, "expected a refusal with %d\n", opt.expect_status);
    finish(0);
    return;
  }
  if (opt.quic) {
    start_quic();
  } else {
    qpeer_tunnel_recv_start(t, on_tun_recv);
    send_raw();
  }
}

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  fprintf(stderr,
          "qpeer_via_proxy: timed out after %llu ms (tunnel status %d, "
          "%d of %d echoed)\n",
          (unsigned long long)opt.timeout_ms, tunnel_status, nechoed,
          opt.count);
  finish(0);
}

int main(int argc, char **argv) {
  qpeer_endpoint_options_t eo;
  qpeer_masque_options_t mo;
  struct sockaddr_storage bind4, proxy, target;
  char thost[128];
  unsigned tport = 0;
  int i, rv;
  opt.count = 20;
  opt.timeout_ms = 10000;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
#define ARG() (i + 1 < argc ? argv[++i] : (usage(), ""))
    if (!strcmp(a, "--proxy"))
      opt.proxy = ARG();
    else if (!strcmp(a, "--pin"))
      opt.pin = ARG();
    else if (!strcmp(a, "--target"))
      opt.target = ARG();
    else if (!strcmp(a, "--token"))
      opt.token = ARG();
    else if (!strcmp(a, "--quic"))
      opt.quic = 1;
    else if (!strcmp(a, "--count"))
      opt.count = atoi(ARG());
    else if (!strcmp(a, "--expect-status"))
      opt.expect_status = atoi(ARG());
    else if (!strcmp(a, "--timeout"))
      opt.timeout_ms = strtoull(ARG(), NULL, 10);
    else
      usage();
#undef ARG
  }
  if (!opt.proxy || !opt.pin || (!opt.target && !opt.quic) ||
      opt.count < 1 || opt.count > 1000)
    usage();
  if (qpeer_addr_parse(&proxy, opt.proxy) != 0 ||
      qpeer_peer_id_parse(&proxy_id, opt.pin) != 0) {
    fprintf(stderr, "qpeer_via_proxy: bad --proxy or --pin\n");
    return 2;
  }
  uv_loop_init(&loop);
  uv_timer_init(&loop, &watchdog);
  uv_timer_start(&watchdog, on_watchdog, opt.timeout_ms, 0);
  qpeer_endpoint_options_default(&eo);
  qpeer_addr_parse(&bind4, "127.0.0.1:0");
  eo.bind_addr = (struct sockaddr *)&bind4;
  eo.max_datagram_frame_size = 1500;
  if ((rv = qpeer_endpoint_init(&loop, &ep, &eo)) != 0) {
    fprintf(stderr, "qpeer_endpoint_init: %s\n", qpeer_strerror(rv));
    return 1;
  }
  if (opt.quic) {
    static const char *alpn[] = {"ixq"};
    qpeer_listen_options_t lo;
    if ((rv = qpeer_endpoint_init(&loop, &srv_ep, &eo)) != 0) {
      fprintf(stderr, "qpeer_endpoint_init: %s\n", qpeer_strerror(rv));
      return 1;
    }
    have_srv = 1;
    qpeer_listen_options_default(&lo);
    lo.alpn = alpn;
    lo.nalpn = 1;
    if ((rv = qpeer_endpoint_listen(&srv_ep, &lo, on_srv_connection)) != 0) {
      fprintf(stderr, "qpeer_endpoint_listen: %s\n", qpeer_strerror(rv));
      return 1;
    }
    qpeer_endpoint_get_local_addr(&srv_ep, &target);
    snprintf(thost, sizeof(thost), "127.0.0.1");
    tport = ntohs(((struct sockaddr_in *)&target)->sin_port);
  } else {
    const char *colon = strrchr(opt.target, ':');
    size_t n = colon ? (size_t)(colon - opt.target) : 0;
    if (!colon || n == 0 || n >= sizeof(thost))
      usage();
    memcpy(thost, opt.target, n);
    thost[n] = '\0';
    if (thost[0] == '[' && thost[n - 1] == ']') {
      memmove(thost, thost + 1, n - 2);
      thost[n - 2] = '\0';
    }
    tport = (unsigned)atoi(colon + 1);
  }
  qpeer_masque_options_default(&mo);
  mo.proxy = (struct sockaddr *)&proxy;
  mo.auth = QPEER_AUTH_PEER_ID;
  mo.peer_id = &proxy_id;
  mo.target_host = thost;
  mo.target_port = (uint16_t)tport;
  mo.bearer_token = opt.token;
  mo.request_timeout_ms = opt.timeout_ms;
  if ((rv = qpeer_tunnel_init(&ep, &tun, &mo)) != 0 ||
      (rv = qpeer_tunnel_start(&tun, on_tunnel)) != 0) {
    fprintf(stderr, "qpeer tunnel: %s\n", qpeer_strerror(rv));
    return 1;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  printf("qpeer tunnel stats: tx_packets=%llu rx_packets=%llu "
         "tx_quic_datagrams=%llu tx_capsules=%llu rx_quic_datagrams=%llu "
         "rx_capsules=%llu dropped=%llu http_status=%d "
         "peer_h3_datagram=%d\n",
         (unsigned long long)final.tx_packets,
         (unsigned long long)final.rx_packets,
         (unsigned long long)final.tx_quic_datagrams,
         (unsigned long long)final.tx_capsules,
         (unsigned long long)final.rx_quic_datagrams,
         (unsigned long long)final.rx_capsules,
         (unsigned long long)final.dropped, final.http_status,
         final.peer_h3_datagram);
  printf("echoed %d of %d byte-exact, %d unmatched\n", nechoed, opt.count,
         bad);
  if (uv_loop_close(&loop) != 0)
    fprintf(stderr, "qpeer_via_proxy: the loop did not close cleanly\n");
  printf("result: %s\n", failed ? "FAIL" : "PASS");
  return failed ? 1 : 0;
}
