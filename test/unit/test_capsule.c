/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/h3/capsule.c: byte-exact writer vectors for DATAGRAM
 * and the bind draft's COMPRESSION_* capsules, decoder round trips, every
 * truncation and overlong value, the incremental parser fed whole, a byte at
 * a time and at every split, unknown-type skipping, the size bound, the end
 * of stream check, and allocation failure.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/addr.h"
#include "core/varint.h"
#include "h3/capsule.h"
#include "internal.h"

/* One delivered capsule, copied out of the parser. */
typedef struct {
  uint64_t type;     /* capsule type */
  size_t len;        /* value length */
  uint8_t value[64]; /* the first bytes of the value */
} rec_t;

/* A stream of five capsules: DATAGRAM(ctx 0, "abc"), a GREASE capsule of
 * type 0x40 (0x29 + 0x17, two-byte varint) with 5 bytes, ASSIGN(2,
 * uncompressed), ACK(2), and CLOSE(2). */
static const uint8_t stream_vec[] = {
    0x00, 0x04, 0x00, 'a',  'b', 'c',       /* DATAGRAM */
    0x40, 0x40, 0x05, 1,    2,   3,   4, 5, /* GREASE 0x40, skipped */
    0x11, 0x02, 0x02, 0x00,                 /* COMPRESSION_ASSIGN */
    0x12, 0x01, 0x02,                       /* COMPRESSION_ACK */
    0x13, 0x01, 0x02};                      /* COMPRESSION_CLOSE */

static void make_v4(struct sockaddr_storage *ss, const char *ip,
                    uint16_t port) {
  struct sockaddr_in *a = (void *)ss;
  memset(ss, 0, sizeof(*ss));
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
}

static void make_v6(struct sockaddr_storage *ss, const char *ip,
                    uint16_t port) {
  struct sockaddr_in6 *a = (void *)ss;
  memset(ss, 0, sizeof(*ss));
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
}

/* Feeds |data| to |p| in chunks whose sizes come from |cuts| (a chunk
 * boundary after each listed offset) and records what comes out. */
static int feed_chunks(qpeer__capsule_parser *p, const uint8_t *data,
                       size_t len, const size_t *cuts, size_t ncuts, rec_t *out,
                       size_t maxout, size_t *pnout) {
  size_t start = 0, c, nout = 0;
  for (c = 0; c <= ncuts; c++) {
    size_t stop = c < ncuts ? cuts[c] : len;
    const uint8_t *chunk = data + start;
    size_t left = stop - start;
    while (left > 0) {
      qpeer__capsule cap;
      size_t nread;
      int rv = qpeer__capsule_parser_feed(p, chunk, left, &nread, &cap);
      if (rv < 0)
        return rv;
      assert_true(nread <= left);
      chunk += nread;
      left -= nread;
      if (rv == 1) {
        assert_true(nout < maxout);
        assert_non_null(cap.value);
        out[nout].type = cap.type;
        out[nout].len = cap.len;
        memcpy(out[nout].value, cap.value, QPEER__MIN(cap.len, 64));
        nout++;
      } else {
        assert_int_equal(left, 0);
      }
    }
    start = stop;
  }
  *pnout = nout;
  return 0;
}

static void check_stream_recs(const rec_t *r, size_t n) {
  assert_int_equal(n, 4);
  assert_int_equal(r[0].type, QPEER__CAPSULE_DATAGRAM);
  assert_int_equal(r[0].len, 4);
  assert_memory_equal(r[0].value, "\0abc", 4);
  assert_int_equal(r[1].type, QPEER__CAPSULE_COMPRESSION_ASSIGN);
  assert_int_equal(r[1].len, 2);
  assert_int_equal(r[2].type, QPEER__CAPSULE_COMPRESSION_ACK);
  assert_int_equal(r[3].type, QPEER__CAPSULE_COMPRESSION_CLOSE);
}

static void test_capsule_write_vectors(void **state) {
  uint8_t buf[64];
  struct sockaddr_storage ss;
  static const uint8_t dg[] = {0x00, 0x04, 0x00, 'a', 'b', 'c'};
  static const uint8_t assign0[] = {0x11, 0x02, 0x02, 0x00};
  static const uint8_t assign4[] = {0x11, 0x08, 0x03, 0x04, 192,
                                    0,    2,    1,    0x01, 0xbb};
  static const uint8_t assign6[] = {
      0x11, 0x14, 0x05, 0x06, 0x20, 0x01, 0x0d, 0xb8, 0,    0,    0,
      0,    0,    0,    0,    0,    0,    0,    0x12, 0x34, 0xd4, 0x31};
  static const uint8_t ack[] = {0x12, 0x01, 0x02};
  static const uint8_t close_big[] = {0x13, 0x04, 0x80, 0x01, 0x00, 0x00};
  static const uint8_t hdr_big[] = {0x80, 0x0f, 0xff, 0xff, 0x7f, 0xff};
  (void)state;

  assert_int_equal(qpeer__capsule_write_datagram(buf, sizeof(buf), 0,
                                                 (const uint8_t *)"abc", 3),
                   sizeof(dg));
  assert_memory_equal(buf, dg, sizeof(dg));
  assert_int_equal(
      qpeer__capsule_write_compression_assign(buf, sizeof(buf), 2, NULL),
      sizeof(assign0));
  assert_memory_equal(buf, assign0, sizeof(assign0));
  make_v4(&ss, "192.0.2.1", 443);
  assert_int_equal(qpeer__capsule_write_compression_assign(
                       buf, sizeof(buf), 3, (struct sockaddr *)&ss),
                   sizeof(assign4));
  assert_memory_equal(buf, assign4, sizeof(assign4));
  make_v6(&ss, "2001:db8::1234", 54321);
  assert_int_equal(qpeer__capsule_write_compression_assign(
                       buf, sizeof(buf), 5, (struct sockaddr *)&ss),
                   sizeof(assign6));
  assert_memory_equal(buf, assign6, sizeof(assign6));
  assert_int_equal(qpeer__capsule_write_compression_ack(buf, sizeof(buf), 2),
                   sizeof(ack));
  assert_memory_equal(buf, ack, sizeof(ack));
  assert_int_equal(
      qpeer__capsule_write_compression_close(buf, sizeof(buf), 65536),
      sizeof(close_big));
  assert_memory_equal(buf, close_big, sizeof(close_big));
  assert_int_equal(
      qpeer__capsule_write_header(buf, sizeof(buf), 0xfffff, 0x3fff),
      sizeof(hdr_big));
  assert_memory_equal(buf, hdr_big, sizeof(hdr_big));
  /* Generic writer with an empty value. */
  assert_int_equal(qpeer__capsule_write(buf, sizeof(buf), 0x17, NULL, 0), 2);
  assert_int_equal(buf[0], 0x17);
  assert_int_equal(buf[1], 0x00);
  /* Scatter-gather header: type, length (ctx + payload), ctx. */
  assert_int_equal(
      qpeer__capsule_write_datagram_header(buf, sizeof(buf), 4, 1000), 4);
  assert_int_equal(buf[0], 0x00);
  assert_int_equal(buf[1], 0x40 | (1001 >> 8));
  assert_int_equal(buf[2], 1001 & 0xff);
  assert_int_equal(buf[3], 0x04);
}

static void test_capsule_write_errors(void **state) {
  uint8_t buf[64];
  struct sockaddr_storage ss;
  size_t n;
  (void)state;
  memset(&ss, 0, sizeof(ss));
  ss.ss_family = AF_UNIX;
  assert_int_equal(
      qpeer__capsule_write_compression_assign(buf, sizeof(buf), 0, NULL),
      UV_EINVAL);
  assert_int_equal(qpeer__capsule_write_compression_assign(
                       buf, sizeof(buf), 2, (struct sockaddr *)&ss),
                   UV_EINVAL);
  assert_int_equal(qpeer__capsule_write_compression_assign(
                       buf, sizeof(buf), QPEER__VARINT_MAX + 1, NULL),
                   UV_EINVAL);
  assert_int_equal(qpeer__capsule_write_compression_ack(buf, sizeof(buf), 0),
                   UV_EINVAL);
  assert_int_equal(qpeer__capsule_write_compression_close(buf, sizeof(buf), 0),
                   UV_EINVAL);
  assert_int_equal(qpeer__capsule_write_compression_close(
                       buf, sizeof(buf), QPEER__VARINT_MAX + 1),
                   UV_EINVAL);
  assert_int_equal(qpeer__capsule_write_datagram(
                       buf, sizeof(buf), QPEER__VARINT_MAX + 1, NULL, 0),
                   UV_EINVAL);
  assert_int_equal(
      qpeer__capsule_write_header(buf, sizeof(buf), QPEER__VARINT_MAX + 1, 0),
      UV_EINVAL);
  assert_int_equal(
      qpeer__capsule_write_header(buf, sizeof(buf), 0, QPEER__VARINT_MAX + 1),
      UV_EINVAL);
  /* Every short destination fails cleanly. */
  make_v6(&ss, "2001:db8::1", 1);
  for (n = 0; n < 22; n++)
    assert_int_equal(qpeer__capsule_write_compression_assign(
                         buf, n, 9, (struct sockaddr *)&ss),
                     UV_ENOBUFS);
  for (n = 0; n < 6; n++)
    assert_int_equal(
        qpeer__capsule_write_datagram(buf, n, 0, (const uint8_t *)"abc", 3),
        UV_ENOBUFS);
  for (n = 0; n < 3; n++)
    assert_int_equal(qpeer__capsule_write_compression_ack(buf, n, 2),
                     UV_ENOBUFS);
}

static void test_capsule_decode_roundtrip(void **state) {
  uint8_t buf[64];
  struct sockaddr_storage ss;
  qpeer__compression_assign a;
  const uint8_t *data;
  size_t datalen;
  uint64_t ctx;
  ssize_t n;
  (void)state;

  n = qpeer__capsule_write_datagram(buf, sizeof(buf), 1234,
                                    (const uint8_t *)"hello", 5);
  assert_true(n > 0);
  assert_int_equal(qpeer__capsule_decode_datagram(buf + 2, (size_t)n - 2, &ctx,
                                                  &data, &datalen),
                   0);
  assert_int_equal(ctx, 1234);
  assert_int_equal(datalen, 5);
  assert_ptr_equal(data, buf + 4); /* no copy */
  assert_memory_equal(data, "hello", 5);

  make_v4(&ss, "198.51.100.7", 9);
  n = qpeer__capsule_write_compression_assign(buf, sizeof(buf), 7,
                                              (struct sockaddr *)&ss);
  assert_int_equal(
      qpeer__capsule_decode_compression_assign(buf + 2, (size_t)n - 2, &a), 0);
  assert_int_equal(a.context_id, 7);
  assert_int_equal(a.ip_version, 4);
  assert_true(
      qpeer__addr_equal((struct sockaddr *)&a.addr, (struct sockaddr *)&ss));

  make_v6(&ss, "::ffff:192.0.2.1", 65535);
  n = qpeer__capsule_write_compression_assign(buf, sizeof(buf), 1ull << 40,
                                              (struct sockaddr *)&ss);
  assert_int_equal(
      qpeer__capsule_decode_compression_assign(buf + 2, (size_t)n - 2, &a), 0);
  assert_int_equal(a.context_id, 1ull << 40);
  assert_int_equal(a.ip_version, 6); /* mapped addresses stay IPv6 */
  assert_true(
      qpeer__addr_equal((struct sockaddr *)&a.addr, (struct sockaddr *)&ss));

  n = qpeer__capsule_write_compression_assign(buf, sizeof(buf), 2, NULL);
  assert_int_equal(
      qpeer__capsule_decode_compression_assign(buf + 2, (size_t)n - 2, &a), 0);
  assert_int_equal(a.ip_version, 0);
  assert_int_equal(a.addr.ss_family, AF_UNSPEC);

  n = qpeer__capsule_write_compression_ack(buf, sizeof(buf), 63);
  assert_int_equal(
      qpeer__capsule_decode_compression_ack(buf + 2, (size_t)n - 2, &ctx), 0);
  assert_int_equal(ctx, 63);
  n = qpeer__capsule_write_compression_close(buf, sizeof(buf),
                                             QPEER__VARINT_MAX);
  assert_int_equal(
      qpeer__capsule_decode_compression_close(buf + 2, (size_t)n - 2, &ctx), 0);
  assert_int_equal(ctx, QPEER__VARINT_MAX);
}

static void test_capsule_decode_truncation(void **state) {
  static const uint8_t assign4[] = {0x03, 0x04, 192, 0, 2, 1, 0x01, 0xbb};
  static const uint8_t assign6[] = {0x45, 0x00, 0x06, 0x20, 0x01, 0x0d, 0xb8,
                                    0,    0,    0,    0,    0,    0,    0,
                                    0,    0,    0,    0x12, 0x34, 0xd4};
  static const uint8_t ctx4[] = {0x80, 0x01, 0x00, 0x00};
  uint8_t longer[32];
  qpeer__compression_assign a;
  const uint8_t *data;
  size_t datalen, i;
  uint64_t ctx;
  (void)state;

  for (i = 0; i < sizeof(assign4); i++)
    assert_int_equal(qpeer__capsule_decode_compression_assign(assign4, i, &a),
                     QPEER_ETRUNCATED);
  assert_int_equal(
      qpeer__capsule_decode_compression_assign(assign4, sizeof(assign4), &a),
      0);
  /* assign6 lacks the last port byte, and every prefix is short too. */
  for (i = 0; i <= sizeof(assign6); i++)
    assert_int_equal(qpeer__capsule_decode_compression_assign(assign6, i, &a),
                     QPEER_ETRUNCATED);
  for (i = 0; i < sizeof(ctx4); i++) {
    assert_int_equal(qpeer__capsule_decode_compression_ack(ctx4, i, &ctx),
                     QPEER_ETRUNCATED);
    assert_int_equal(qpeer__capsule_decode_compression_close(ctx4, i, &ctx),
                     QPEER_ETRUNCATED);
    assert_int_equal(
        qpeer__capsule_decode_datagram(ctx4, i, &ctx, &data, &datalen),
        QPEER_ETRUNCATED);
  }
  assert_int_equal(
      qpeer__capsule_decode_datagram(NULL, 0, &ctx, &data, &datalen),
      QPEER_ETRUNCATED);
  /* A DATAGRAM with a context and nothing else is fine. */
  assert_int_equal(
      qpeer__capsule_decode_datagram(ctx4, 4, &ctx, &data, &datalen), 0);
  assert_int_equal(ctx, 65536);
  assert_int_equal(datalen, 0);

  /* Longer than the defined fields: malformed. */
  memcpy(longer, assign4, sizeof(assign4));
  longer[sizeof(assign4)] = 0;
  assert_int_equal(
      qpeer__capsule_decode_compression_assign(longer, sizeof(assign4) + 1, &a),
      QPEER_EMALFORMED);
  memcpy(longer, "\x02\x00\x00", 3);
  assert_int_equal(qpeer__capsule_decode_compression_assign(longer, 3, &a),
                   QPEER_EMALFORMED);
  assert_int_equal(qpeer__capsule_decode_compression_ack(longer, 2, &ctx),
                   QPEER_EMALFORMED);
  assert_int_equal(qpeer__capsule_decode_compression_close(longer, 2, &ctx),
                   QPEER_EMALFORMED);
}

static void test_capsule_decode_malformed(void **state) {
  uint8_t v[32];
  qpeer__compression_assign a;
  uint64_t ctx;
  int ver;
  (void)state;
  /* Context 0 in ASSIGN, ACK and CLOSE. */
  memcpy(v, "\x00\x00", 2);
  assert_int_equal(qpeer__capsule_decode_compression_assign(v, 2, &a),
                   QPEER_EMALFORMED);
  assert_int_equal(qpeer__capsule_decode_compression_ack(v, 1, &ctx),
                   QPEER_EMALFORMED);
  assert_int_equal(qpeer__capsule_decode_compression_close(v, 1, &ctx),
                   QPEER_EMALFORMED);
  /* A non-minimal zero is still zero. */
  memcpy(v, "\x40\x00", 2);
  assert_int_equal(qpeer__capsule_decode_compression_close(v, 2, &ctx),
                   QPEER_EMALFORMED);
  /* Every IP version other than 0, 4, 6. */
  for (ver = 0; ver < 256; ver++) {
    memset(v, 0, sizeof(v));
    v[0] = 0x02;
    v[1] = (uint8_t)ver;
    if (ver == 0 || ver == 4 || ver == 6)
      continue;
    assert_int_equal(qpeer__capsule_decode_compression_assign(v, 19, &a),
                     QPEER_EMALFORMED);
  }
}

static void test_capsule_parse_whole(void **state) {
  qpeer__capsule_parser p;
  qpeer__capsule cap;
  size_t nread;
  rec_t recs[8];
  size_t n;
  (void)state;
  qpeer__capsule_parser_init(&p, 0);
  assert_int_equal(p.max_value, QPEER__CAPSULE_MAX_VALUE_DEFAULT);
  /* The first capsule comes back pointing into the input. */
  assert_int_equal(qpeer__capsule_parser_feed(&p, stream_vec,
                                              sizeof(stream_vec), &nread, &cap),
                   1);
  assert_int_equal(nread, 6);
  assert_ptr_equal(cap.value, stream_vec + 2);
  qpeer__capsule_parser_free(&p);

  qpeer__capsule_parser_init(&p, 0);
  assert_int_equal(
      feed_chunks(&p, stream_vec, sizeof(stream_vec), NULL, 0, recs, 8, &n), 0);
  check_stream_recs(recs, n);
  assert_int_equal(p.nskipped, 1);
  assert_null(p.buf); /* nothing needed reassembly */
  assert_int_equal(qpeer__capsule_parser_end(&p), 0);
  qpeer__capsule_parser_free(&p);
}

static void test_capsule_parse_byte_at_a_time(void **state) {
  qpeer__capsule_parser p;
  size_t cuts[sizeof(stream_vec)];
  rec_t recs[8];
  size_t n, i;
  (void)state;
  for (i = 0; i < sizeof(stream_vec) - 1; i++)
    cuts[i] = i + 1;
  qpeer__capsule_parser_init(&p, 0);
  assert_int_equal(feed_chunks(&p, stream_vec, sizeof(stream_vec), cuts,
                               sizeof(stream_vec) - 1, recs, 8, &n),
                   0);
  check_stream_recs(recs, n);
  assert_int_equal(qpeer__capsule_parser_end(&p), 0);
  qpeer__capsule_parser_free(&p);
}

static void test_capsule_parse_every_split(void **state) {
  size_t i, j;
  (void)state;
  for (i = 0; i <= sizeof(stream_vec); i++) {
    for (j = i; j <= sizeof(stream_vec); j++) {
      qpeer__capsule_parser p;
      size_t cuts[2] = {i, j};
      rec_t recs[8];
      size_t n;
      qpeer__capsule_parser_init(&p, 0);
      assert_int_equal(
          feed_chunks(&p, stream_vec, sizeof(stream_vec), cuts, 2, recs, 8, &n),
          0);
      check_stream_recs(recs, n);
      qpeer__capsule_parser_free(&p);
    }
  }
}

static void test_capsule_parse_end_truncated(void **state) {
  /* Capsule boundaries in stream_vec. */
  static const size_t bounds[] = {0, 6, 14, 18, 21, 24};
  size_t i, k;
  (void)state;
  for (i = 0; i <= sizeof(stream_vec); i++) {
    qpeer__capsule_parser p;
    rec_t recs[8];
    size_t n;
    int at_bound = 0;
    for (k = 0; k < QPEER__ARRAY_SIZE(bounds); k++)
      at_bound |= bounds[k] == i;
    qpeer__capsule_parser_init(&p, 0);
    assert_int_equal(feed_chunks(&p, stream_vec, i, NULL, 0, recs, 8, &n), 0);
    assert_int_equal(qpeer__capsule_parser_end(&p),
                     at_bound ? 0 : QPEER_ETRUNCATED);
    qpeer__capsule_parser_free(&p);
  }
}

static void test_capsule_parse_oversize(void **state) {
  qpeer__capsule_parser p;
  qpeer__capsule cap;
  uint8_t buf[256];
  size_t nread;
  ssize_t n;
  uint8_t payload[200];
  (void)state;
  memset(payload, 'x', sizeof(payload));

  /* Exactly at the bound: accepted, even fed byte by byte. */
  n = qpeer__capsule_write_datagram(buf, sizeof(buf), 0, payload, 99);
  qpeer__capsule_parser_init(&p, 100);
  {
    size_t i;
    int got = 0;
    for (i = 0; i < (size_t)n; i++) {
      int rv = qpeer__capsule_parser_feed(&p, buf + i, 1, &nread, &cap);
      assert_true(rv >= 0);
      assert_int_equal(nread, 1);
      if (rv == 1) {
        got = 1;
        assert_int_equal(cap.len, 100);
        assert_ptr_equal(cap.value, p.buf); /* reassembled */
      }
    }
    assert_true(got);
  }
  assert_true(p.bufcap <= 100);
  qpeer__capsule_parser_free(&p);

  /* One byte over: malformed as soon as the header is read, before any
   * value byte arrives, and the error sticks. */
  n = qpeer__capsule_write_datagram(buf, sizeof(buf), 0, payload, 100);
  qpeer__capsule_parser_init(&p, 100);
  assert_int_equal(qpeer__capsule_parser_feed(&p, buf, 3, &nread, &cap),
                   QPEER_EMALFORMED);
  assert_int_equal(qpeer__capsule_parser_feed(&p, buf, (size_t)n, &nread, &cap),
                   QPEER_EMALFORMED);
  assert_int_equal(nread, 0);
  assert_int_equal(qpeer__capsule_parser_end(&p), QPEER_EMALFORMED);
  assert_null(p.buf);
  qpeer__capsule_parser_free(&p);

  /* A huge length on a known type. */
  {
    static const uint8_t huge[] = {0x11, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff};
    qpeer__capsule_parser_init(&p, 0);
    assert_int_equal(
        qpeer__capsule_parser_feed(&p, huge, sizeof(huge), &nread, &cap),
        QPEER_EMALFORMED);
    qpeer__capsule_parser_free(&p);
  }
}

static void test_capsule_parse_skip_huge_unknown(void **state) {
  qpeer__capsule_parser p;
  qpeer__capsule cap;
  uint8_t chunk[4096];
  size_t nread, total = 0;
  /* Unknown type 0x29*3+0x17 = 0x92 (2-byte varint), length 1 MiB. */
  static const uint8_t hdr[] = {0x40, 0x92, 0x80, 0x10, 0x00, 0x00};
  static const uint8_t after[] = {0x12, 0x01, 0x04};
  (void)state;
  memset(chunk, 0xee, sizeof(chunk));
  qpeer__capsule_parser_init(&p, 100);
  assert_int_equal(
      qpeer__capsule_parser_feed(&p, hdr, sizeof(hdr), &nread, &cap), 0);
  assert_int_equal(nread, sizeof(hdr));
  while (total < (1u << 20)) {
    assert_int_equal(
        qpeer__capsule_parser_feed(&p, chunk, sizeof(chunk), &nread, &cap), 0);
    assert_int_equal(nread, sizeof(chunk));
    total += sizeof(chunk);
  }
  assert_null(p.buf); /* never buffered */
  assert_int_equal(p.nskipped, 1);
  assert_int_equal(qpeer__capsule_parser_end(&p), 0);
  assert_int_equal(
      qpeer__capsule_parser_feed(&p, after, sizeof(after), &nread, &cap), 1);
  assert_int_equal(cap.type, QPEER__CAPSULE_COMPRESSION_ACK);
  assert_int_equal(cap.len, 1);
  assert_int_equal(cap.value[0], 4);
  qpeer__capsule_parser_free(&p);
}

static void test_capsule_parse_empty_and_nonminimal(void **state) {
  qpeer__capsule_parser p;
  qpeer__capsule cap;
  size_t nread;
  const uint8_t *data;
  size_t datalen;
  uint64_t ctx;
  /* DATAGRAM with an empty value, then ACK(5) with 8-byte varints. */
  static const uint8_t in[] = {0x00, 0x00, 0xc0, 0, 0, 0, 0,   0,
                               0,    0x12, 0x80, 0, 0, 1, 0x05};
  (void)state;
  qpeer__capsule_parser_init(&p, 0);
  assert_int_equal(qpeer__capsule_parser_feed(&p, in, sizeof(in), &nread, &cap),
                   1);
  assert_int_equal(nread, 2);
  assert_int_equal(cap.type, 0);
  assert_int_equal(cap.len, 0);
  assert_non_null(cap.value);
  assert_int_equal(
      qpeer__capsule_decode_datagram(cap.value, cap.len, &ctx, &data, &datalen),
      QPEER_ETRUNCATED);
  assert_int_equal(
      qpeer__capsule_parser_feed(&p, in + 2, sizeof(in) - 2, &nread, &cap), 1);
  assert_int_equal(cap.type, QPEER__CAPSULE_COMPRESSION_ACK);
  assert_int_equal(
      qpeer__capsule_decode_compression_ack(cap.value, cap.len, &ctx), 0);
  assert_int_equal(ctx, 5);
  assert_int_equal(qpeer__capsule_parser_feed(&p, in, 0, &nread, &cap), 0);
  assert_int_equal(nread, 0);
  qpeer__capsule_parser_free(&p);
}

/* Allocator that fails every request, to test UV_ENOMEM. */
static void *fail_malloc(size_t n) {
  (void)n;
  return NULL;
}

static void test_capsule_parse_enomem(void **state) {
  qpeer__capsule_parser p;
  qpeer__capsule cap;
  size_t nread;
  /* The value (4 bytes) is not all there, so it must be reassembled. */
  static const uint8_t in[] = {0x00, 0x04, 0x00, 'a', 'b'};
  (void)state;
  qpeer__capsule_parser_init(&p, 0);
  assert_int_equal(qpeer_replace_allocator(fail_malloc, realloc, calloc, free),
                   0);
  assert_int_equal(qpeer__capsule_parser_feed(&p, in, sizeof(in), &nread, &cap),
                   UV_ENOMEM);
  assert_int_equal(qpeer_replace_allocator(malloc, realloc, calloc, free), 0);
  assert_int_equal(qpeer__capsule_parser_feed(&p, in, sizeof(in), &nread, &cap),
                   UV_ENOMEM); /* sticky */
  qpeer__capsule_parser_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_capsule_write_vectors),
      cmocka_unit_test(test_capsule_write_errors),
      cmocka_unit_test(test_capsule_decode_roundtrip),
      cmocka_unit_test(test_capsule_decode_truncation),
      cmocka_unit_test(test_capsule_decode_malformed),
      cmocka_unit_test(test_capsule_parse_whole),
      cmocka_unit_test(test_capsule_parse_byte_at_a_time),
      cmocka_unit_test(test_capsule_parse_every_split),
      cmocka_unit_test(test_capsule_parse_end_truncated),
      cmocka_unit_test(test_capsule_parse_oversize),
      cmocka_unit_test(test_capsule_parse_skip_huge_unknown),
      cmocka_unit_test(test_capsule_parse_empty_and_nonminimal),
      cmocka_unit_test(test_capsule_parse_enomem),
  };
  return cmocka_run_group_tests_name("capsule", tests, NULL, NULL);
}
