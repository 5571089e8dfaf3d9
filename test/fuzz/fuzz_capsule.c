/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the capsule codec (lib/h3/capsule.c). The first input
 * byte picks a chunk size and a value bound; the rest is a capsule stream.
 * The stream is parsed whole, in chunks and a byte at a time, and the three
 * runs must deliver the same capsules and end the same way. Every capsule
 * that decodes is re-encoded, re-parsed and decoded again; any difference
 * aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "h3/capsule.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
  if (!cond)
    abort();
}

/* What one parse run produced. */
typedef struct {
  size_t count;  /* capsules delivered */
  uint64_t hash; /* FNV-1a over types, lengths and values */
  int err;       /* first negative feed result, or 0 */
  int end;       /* qpeer__capsule_parser_end result */
} run_t;

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

/* Parses |cap| back out of |buf| (|n| bytes) with a fresh parser. */
static void reparse(const uint8_t *buf, size_t n, uint64_t type,
                    qpeer__capsule *out) {
  qpeer__capsule_parser p;
  size_t nread;
  qpeer__capsule_parser_init(&p, 0);
  check(qpeer__capsule_parser_feed(&p, buf, n, &nread, out) == 1);
  check(nread == n && out->type == type);
  check(qpeer__capsule_parser_end(&p) == 0);
  qpeer__capsule_parser_free(&p);
}

static void roundtrip_datagram(const qpeer__capsule *c) {
  const uint8_t *d, *d2;
  size_t dlen, d2len;
  uint64_t ctx, ctx2;
  uint8_t *buf;
  ssize_t n;
  qpeer__capsule c2;
  if (qpeer__capsule_decode_datagram(c->value, c->len, &ctx, &d, &dlen) < 0)
    return;
  check(d >= c->value && d + dlen == c->value + c->len);
  buf = malloc(c->len + QPEER__CAPSULE_HEADER_MAX + 8);
  check(buf != NULL);
  n = qpeer__capsule_write_datagram(buf, c->len + QPEER__CAPSULE_HEADER_MAX + 8,
                                    ctx, d, dlen);
  check(n > 0);
  reparse(buf, (size_t)n, QPEER__CAPSULE_DATAGRAM, &c2);
  check(c2.len <= c->len);
  check(qpeer__capsule_decode_datagram(c2.value, c2.len, &ctx2, &d2, &d2len) ==
        0);
  check(ctx2 == ctx && d2len == dlen && !memcmp(d, d2, dlen));
  free(buf);
}

static void roundtrip_assign(const qpeer__capsule *c) {
  qpeer__compression_assign a, a2;
  qpeer__capsule c2;
  uint8_t buf[64];
  ssize_t n;
  if (qpeer__capsule_decode_compression_assign(c->value, c->len, &a) < 0)
    return;
  check(a.context_id != 0);
  check(a.ip_version == 0 || a.ip_version == 4 || a.ip_version == 6);
  n = qpeer__capsule_write_compression_assign(
      buf, sizeof(buf), a.context_id,
      a.ip_version ? (const struct sockaddr *)&a.addr : NULL);
  check(n > 0);
  reparse(buf, (size_t)n, QPEER__CAPSULE_COMPRESSION_ASSIGN, &c2);
  check(qpeer__capsule_decode_compression_assign(c2.value, c2.len, &a2) == 0);
  check(a2.context_id == a.context_id && a2.ip_version == a.ip_version);
  if (a.ip_version)
    check(qpeer__addr_equal((const struct sockaddr *)&a.addr,
                            (const struct sockaddr *)&a2.addr));
  else
    check(a2.addr.ss_family == AF_UNSPEC);
}

static void roundtrip_ctx(const qpeer__capsule *c) {
  qpeer__capsule c2;
  uint8_t buf[32];
  uint64_t ctx, ctx2;
  ssize_t n;
  int is_ack = c->type == QPEER__CAPSULE_COMPRESSION_ACK;
  int rv =
      is_ack ? qpeer__capsule_decode_compression_ack(c->value, c->len, &ctx)
             : qpeer__capsule_decode_compression_close(c->value, c->len, &ctx);
  if (rv < 0)
    return;
  check(ctx != 0);
  n = is_ack ? qpeer__capsule_write_compression_ack(buf, sizeof(buf), ctx)
             : qpeer__capsule_write_compression_close(buf, sizeof(buf), ctx);
  check(n > 0);
  reparse(buf, (size_t)n, c->type, &c2);
  rv = is_ack
           ? qpeer__capsule_decode_compression_ack(c2.value, c2.len, &ctx2)
           : qpeer__capsule_decode_compression_close(c2.value, c2.len, &ctx2);
  check(rv == 0 && ctx2 == ctx);
}

static void on_capsule(const qpeer__capsule *c, int roundtrip) {
  check(qpeer__capsule_is_known(c->type));
  if (!roundtrip)
    return;
  switch (c->type) {
  case QPEER__CAPSULE_DATAGRAM:
    roundtrip_datagram(c);
    break;
  case QPEER__CAPSULE_COMPRESSION_ASSIGN:
    roundtrip_assign(c);
    break;
  default:
    roundtrip_ctx(c);
    break;
  }
}

/* Parses |len| bytes in chunks of |step| (0: all at once). */
static void run(const uint8_t *in, size_t len, size_t step, size_t max,
                run_t *r, int roundtrip) {
  qpeer__capsule_parser p;
  size_t off = 0;
  memset(r, 0, sizeof(*r));
  r->hash = 1469598103934665603ULL;
  qpeer__capsule_parser_init(&p, max);
  while (off < len && r->err == 0) {
    size_t chunk = step ? QPEER__MIN(step, len - off) : len - off;
    const uint8_t *q = in + off;
    size_t left = chunk;
    while (left > 0) {
      qpeer__capsule c;
      size_t nread;
      int rv = qpeer__capsule_parser_feed(&p, q, left, &nread, &c);
      if (rv < 0) {
        r->err = rv;
        break;
      }
      check(nread <= left);
      q += nread;
      left -= nread;
      if (rv == 0) {
        check(left == 0);
        break;
      }
      check(c.value != NULL && c.len <= p.max_value);
      r->count++;
      r->hash = fnv(r->hash, (const uint8_t *)&c.type, sizeof(c.type));
      r->hash = fnv(r->hash, (const uint8_t *)&c.len, sizeof(c.len));
      r->hash = fnv(r->hash, c.value, c.len);
      on_capsule(&c, roundtrip);
    }
    off += chunk;
  }
  check(p.bufcap <= p.max_value);
  r->end = qpeer__capsule_parser_end(&p);
  if (r->err)
    check(r->end == r->err);
  qpeer__capsule_parser_free(&p);
}

static void same(const run_t *a, const run_t *b) {
  check(a->count == b->count && a->hash == b->hash && a->err == b->err &&
        a->end == b->end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  run_t whole, chunked, bytes;
  size_t step, max;
  if (size < 1)
    return 0;
  step = (size_t)(data[0] >> 1) + 1;
  max = (data[0] & 1) ? 64 : 0;
  data++;
  size--;
  run(data, size, 0, max, &whole, 1);
  run(data, size, step, max, &chunked, 0);
  same(&whole, &chunked);
  if (size <= 65536) {
    run(data, size, 1, max, &bytes, 0);
    same(&whole, &bytes);
  }
  return 0;
}
