/* SPDX-License-Identifier: MIT */
/* The impairing UDP forwarder for loopback tests (see udpfw.h). */
#include <stdlib.h>
#include <string.h>

#include "udpfw.h"

static uint64_t next_rand(qpt_udpfw *fw) {
  uint64_t x = fw->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  fw->rng = x;
  return x;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char slab[65536];
  (void)h;
  (void)suggested;
  buf->base = slab;
  buf->len = sizeof(slab);
}

static void send_now(qpt_udpfw *fw, int to_server, const char *data,
                     size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  if (to_server)
    uv_udp_try_send(fw->back, &b, 1, (struct sockaddr *)&fw->server);
  else if (fw->have_client)
    uv_udp_try_send(&fw->front, &b, 1, (struct sockaddr *)&fw->client);
  fw->forwarded++;
}

static void release_held(qpt_udpfw *fw) {
  if (fw->held.len) {
    size_t len = fw->held.len;
    fw->held.len = 0;
    send_now(fw, fw->held.to_server, fw->held.buf, len);
  }
}

static void on_flush(uv_timer_t *t) { release_held(t->data); }

static void forward(qpt_udpfw *fw, int to_server, const char *data,
                    size_t len) {
  if (fw->drop_permille && next_rand(fw) % 1000 < fw->drop_permille) {
    fw->dropped++;
    return;
  }
  if (!fw->held.len && len <= sizeof(fw->held.buf) && fw->reorder_permille &&
      next_rand(fw) % 1000 < fw->reorder_permille) {
    memcpy(fw->held.buf, data, len);
    fw->held.len = len;
    fw->held.to_server = to_server;
    fw->reordered++;
    uv_timer_start(&fw->flush, on_flush, 5, 0);
    return;
  }
  send_now(fw, to_server, data, len);
  release_held(fw); /* The held packet goes out after a later one. */
}

static void on_front(uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
                     const struct sockaddr *addr, unsigned flags) {
  qpt_udpfw *fw = h->data;
  (void)flags;
  if (n <= 0 || !addr)
    return;
  memcpy(&fw->client, addr,
         addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in));
  fw->have_client = 1;
  forward(fw, 1, buf->base, (size_t)n);
}

static void on_back(uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags) {
  qpt_udpfw *fw = h->data;
  (void)flags;
  if (n <= 0 || !addr)
    return;
  forward(fw, 0, buf->base, (size_t)n);
}

static int open_back(qpt_udpfw *fw) {
  struct sockaddr_storage any;
  int r;
  memset(&any, 0, sizeof(any));
  any.ss_family = fw->server.ss_family;
  fw->back = malloc(sizeof(*fw->back));
  if (!fw->back)
    return UV_ENOMEM;
  if ((r = uv_udp_init(fw->loop, fw->back)) != 0)
    return r;
  fw->back->data = fw;
  if ((r = uv_udp_bind(fw->back, (struct sockaddr *)&any, 0)) != 0)
    return r;
  return uv_udp_recv_start(fw->back, on_alloc, on_back);
}

int qpt_udpfw_start(qpt_udpfw *fw, uv_loop_t *loop,
                    const struct sockaddr *bind, const struct sockaddr *server,
                    unsigned drop_permille, unsigned reorder_permille,
                    uint64_t seed) {
  int r;
  memset(fw, 0, sizeof(*fw));
  fw->loop = loop;
  fw->drop_permille = drop_permille;
  fw->reorder_permille = reorder_permille;
  fw->rng = seed ? seed : 88172645463325252ULL;
  memcpy(&fw->server, server,
         server->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in));
  if ((r = uv_udp_init(loop, &fw->front)) != 0)
    return r;
  fw->front.data = fw;
  if ((r = uv_udp_bind(&fw->front, bind, 0)) != 0)
    return r;
  if ((r = uv_udp_recv_start(&fw->front, on_alloc, on_front)) != 0)
    return r;
  if ((r = uv_timer_init(loop, &fw->flush)) != 0)
    return r;
  fw->flush.data = fw;
  return open_back(fw);
}

void qpt_udpfw_addr(qpt_udpfw *fw, struct sockaddr_storage *out) {
  int len = sizeof(*out);
  uv_udp_getsockname(&fw->front, (struct sockaddr *)out, &len);
}

static void free_handle(uv_handle_t *h) { free(h); }

int qpt_udpfw_rebind(qpt_udpfw *fw) {
  uv_close((uv_handle_t *)fw->back, free_handle);
  return open_back(fw);
}

void qpt_udpfw_stop(qpt_udpfw *fw) {
  uv_close((uv_handle_t *)&fw->front, NULL);
  uv_close((uv_handle_t *)fw->back, free_handle);
  uv_close((uv_handle_t *)&fw->flush, NULL);
}
