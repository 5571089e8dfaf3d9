/* SPDX-License-Identifier: MIT */
/* Unit tests for the synthetic frame format: round trip at any chunking,
 * and every kind of damage detected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "frames.h"

static size_t make(uint8_t *buf, size_t cap, int n, uint32_t size) {
  size_t off = 0;
  int i;
  for (i = 0; i < n; i++)
    off += frame_write(buf + off, cap - off, (uint64_t)i, 1000u * i,
                       size + (uint32_t)i);
  return off;
}

static void test_frames_chunked(void **state) {
  static uint8_t buf[200000];
  size_t len = make(buf, sizeof(buf), 40, 3000), chunk;
  (void)state;
  for (chunk = 1; chunk <= 4099; chunk = chunk * 3 + 1) {
    frame_reader r;
    size_t off;
    int total = 0, n;
    frame_reader_init(&r);
    for (off = 0; off < len; off += chunk) {
      size_t k = len - off < chunk ? len - off : chunk;
      n = frame_reader_feed(&r, buf + off, k);
      assert_true(n >= 0);
      total += n;
    }
    assert_int_equal(total, 40);
    assert_int_equal(r.frames, 40);
  }
}

static void test_frames_damage(void **state) {
  static uint8_t buf[20000], bad[20000];
  size_t len = make(buf, sizeof(buf), 3, 1000), i;
  frame_reader r;
  (void)state;
  for (i = 0; i < len; i += 7) {
    memcpy(bad, buf, len);
    bad[i] ^= 0x40;
    frame_reader_init(&r);
    assert_int_equal(frame_reader_feed(&r, bad, len), -1);
    assert_true(r.err != 0);
  }
  /* A missing frame is a sequence error. */
  frame_reader_init(&r);
  assert_int_equal(frame_reader_feed(&r, buf + (FRAME_HDR + 1000 + 4),
                                     len - (FRAME_HDR + 1000 + 4)),
                   -1);
  assert_int_equal(r.err, FRAME_ESEQ);
  assert_int_equal(frame_write(buf, 10, 0, 0, 100), 0);
  assert_string_equal(frame_strerror(FRAME_ECRC),
                      "frame content or checksum mismatch");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frames_chunked),
      cmocka_unit_test(test_frames_damage),
  };
  return cmocka_run_group_tests_name("frames", tests, NULL, NULL);
}
