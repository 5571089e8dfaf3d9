/* SPDX-License-Identifier: MIT */
/* The outgoing DATAGRAM ring (see dgring.h). A record is a 2-byte
 * big-endian length and the payload, never split across the end of the
 * buffer: when it does not fit there, the ring marks the end (wrap) and
 * continues at offset 0. */
#include <string.h>

#include "internal.h"
#include "quic/dgring.h"

#define HDR 2

void qpeer__dgring_init(qpeer__dgring *r, size_t max_n, size_t max_bytes) {
  memset(r, 0, sizeof(*r));
  r->max_n = max_n;
  r->max_bytes = max_bytes;
}

static size_t rec_len(const qpeer__dgring *r, size_t off) {
  return ((size_t)r->buf[off] << 8 | r->buf[off + 1]) + HDR;
}

/* Moves the records, in order, to the start of a new buffer of |cap|
 * bytes (at least r->bytes). */
static int relayout(qpeer__dgring *r, size_t cap) {
  uint8_t *nb = qpeer__malloc(cap);
  size_t off = r->head, out = 0, i;
  if (!nb)
    return UV_ENOMEM;
  for (i = 0; i < r->n; i++) {
    size_t l;
    if (off == r->wrap)
      off = 0;
    l = rec_len(r, off);
    memcpy(nb + out, r->buf + off, l);
    out += l;
    off += l;
  }
  qpeer__free(r->buf);
  r->buf = nb;
  r->cap = cap;
  r->head = 0;
  r->tail = out;
  r->wrap = cap;
  return 0;
}

/* Where a record of |need| bytes can go without moving anything, or
 * SIZE_MAX. Sets *wrap_now when it goes to offset 0 behind the data. */
static size_t place(const qpeer__dgring *r, size_t need, int *wrap_now) {
  *wrap_now = 0;
  if (r->n == 0)
    return need <= r->cap ? 0 : SIZE_MAX;
  if (r->tail > r->head) { /* one run: [head, tail) */
    if (r->cap - r->tail >= need)
      return r->tail;
    if (r->head >= need) {
      *wrap_now = 1;
      return 0;
    }
    return SIZE_MAX;
  }
  /* Wrapped ([head, wrap) then [0, tail)), or full (tail == head). */
  return r->head - r->tail >= need ? r->tail : SIZE_MAX;
}

uint8_t *qpeer__dgring_push(qpeer__dgring *r, size_t len, int *err) {
  size_t need = len + HDR, at;
  int wrap_now;
  if (len > QPEER__DGRING_REC_MAX) {
    *err = UV_EMSGSIZE;
    return NULL;
  }
  if (r->n >= r->max_n || r->bytes + need > r->max_bytes) {
    *err = UV_ENOBUFS;
    return NULL;
  }
  if (r->n == 0) {
    r->head = r->tail = 0;
    r->wrap = r->cap;
  }
  at = r->buf ? place(r, need, &wrap_now) : SIZE_MAX;
  if (at == SIZE_MAX) {
    /* Grow (doubling) until the records and this one fit in a row, or
     * lay them out again at the same size when they already would. */
    size_t cap = r->cap ? r->cap : QPEER__DGRING_INITIAL;
    while (cap < r->bytes + need)
      cap *= 2;
    if (r->buf && cap == r->cap && r->cap < r->max_bytes)
      cap *= 2;
    if ((*err = relayout(r, cap)) != 0)
      return NULL;
    at = r->tail;
    wrap_now = 0;
  }
  if (wrap_now)
    r->wrap = r->tail;
  r->buf[at] = (uint8_t)(len >> 8);
  r->buf[at + 1] = (uint8_t)len;
  r->tail = at + need;
  r->n++;
  r->bytes += need;
  return r->buf + at + HDR;
}

int qpeer__dgring_front(const qpeer__dgring *r, const uint8_t **data,
                        size_t *len) {
  if (r->n == 0)
    return 0;
  *data = r->buf + r->head + HDR;
  *len = rec_len(r, r->head) - HDR;
  return 1;
}

void qpeer__dgring_pop(qpeer__dgring *r) {
  size_t l;
  if (r->n == 0)
    return;
  l = rec_len(r, r->head);
  r->head += l;
  r->bytes -= l;
  r->n--;
  if (r->n == 0) {
    r->head = r->tail = 0;
    r->wrap = r->cap;
  } else if (r->head == r->wrap) {
    r->head = 0;
    r->wrap = r->cap;
  }
}

void qpeer__dgring_release(qpeer__dgring *r) {
  if (r->n != 0)
    return;
  qpeer__free(r->buf);
  r->buf = NULL;
  r->cap = r->head = r->tail = r->wrap = r->bytes = 0;
}

void qpeer__dgring_free(qpeer__dgring *r) {
  r->n = 0;
  qpeer__dgring_release(r);
}
