/* SPDX-License-Identifier: MIT */
/*
 * Interface watch (see netwatch.h): a poll of uv_interface_addresses (or a
 * test source) compared with the last set by lib/peer/netset.c.
 */
#include <string.h>

#include "peer/netwatch.h"

uint64_t qpeer__netwatch_clamp(uint64_t ms) {
  if (ms == 0)
    return QPEER__NETWATCH_DEFAULT_MS;
  if (ms < QPEER__NETWATCH_MIN_MS)
    return QPEER__NETWATCH_MIN_MS;
  return ms > QPEER__NETWATCH_MAX_MS ? QPEER__NETWATCH_MAX_MS : ms;
}

static int os_source(qpeer__netwatch *nw, struct sockaddr_storage *out,
                     size_t max, size_t *pn) {
  uv_interface_address_t *ifs;
  int n, i, r;
  size_t k = 0;
  (void)nw;
  if ((r = uv_interface_addresses(&ifs, &n)) != 0)
    return r;
  for (i = 0; i < n && k < max; i++) {
    int fam = ifs[i].address.address4.sin_family;
    memset(&out[k], 0, sizeof(out[k]));
    if (fam == AF_INET)
      memcpy(&out[k++], &ifs[i].address.address4, sizeof(struct sockaddr_in));
    else if (fam == AF_INET6)
      memcpy(&out[k++], &ifs[i].address.address6, sizeof(struct sockaddr_in6));
  }
  uv_free_interface_addresses(ifs, n);
  *pn = k;
  return 0;
}

/* read_set reads the current set into |set|/|*pn|. Returns 0 or an error. */
static int read_set(qpeer__netwatch *nw, struct sockaddr_storage *set,
                    size_t *pn) {
  qpeer__netwatch_source src = nw->source ? nw->source : os_source;
  size_t n = 0;
  int r = src(nw, set, QPEER__NETSET_MAX, &n);
  if (r != 0)
    return r;
  *pn = qpeer__netset_norm(set, n > QPEER__NETSET_MAX ? QPEER__NETSET_MAX : n);
  return 0;
}

static void on_poll(uv_timer_t *t) {
  qpeer__netwatch *nw = t->data;
  struct sockaddr_storage set[QPEER__NETSET_MAX];
  size_t n;
  nw->polls++;
  if (read_set(nw, set, &n) != 0)
    return;
  if (nw->have && qpeer__netset_equal(nw->set, nw->n, set, n))
    return;
  memcpy(nw->set, set, n * sizeof(set[0]));
  nw->n = n;
  if (!nw->have) {
    nw->have = 1;
    return;
  }
  nw->changes++;
  if (nw->changed)
    nw->changed(nw);
}

int qpeer__netwatch_init(uv_loop_t *loop, qpeer__netwatch *nw,
                         uint64_t interval_ms,
                         void (*changed)(qpeer__netwatch *nw), void *ctx) {
  int r;
  memset(nw, 0, sizeof(*nw));
  if ((r = uv_timer_init(loop, &nw->timer)) != 0)
    return r;
  nw->open = 1;
  nw->timer.data = nw;
  nw->interval_ms = qpeer__netwatch_clamp(interval_ms);
  nw->changed = changed;
  nw->ctx = ctx;
  nw->have = read_set(nw, nw->set, &nw->n) == 0;
  uv_timer_start(&nw->timer, on_poll, nw->interval_ms, nw->interval_ms);
  uv_unref((uv_handle_t *)&nw->timer);
  return 0;
}

void qpeer__netwatch_set_source(qpeer__netwatch *nw,
                                qpeer__netwatch_source source, void *ctx) {
  nw->source = source;
  nw->source_ctx = ctx;
  nw->have = read_set(nw, nw->set, &nw->n) == 0;
}

void qpeer__netwatch_poll_soon(qpeer__netwatch *nw) {
  if (nw->open)
    uv_timer_start(&nw->timer, on_poll, 0, nw->interval_ms);
}

static void on_closed(uv_handle_t *h) {
  qpeer__netwatch *nw = h->data;
  if (nw->closed)
    nw->closed(nw);
}

void qpeer__netwatch_close(qpeer__netwatch *nw,
                           void (*closed)(qpeer__netwatch *nw)) {
  if (!nw->open)
    return;
  nw->open = 0;
  nw->closed = closed;
  uv_close((uv_handle_t *)&nw->timer, on_closed);
}
