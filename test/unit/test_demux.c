/* SPDX-License-Identifier: MIT */
/* Unit tests for the packet classifier (STUN vs QUIC with a greased QUIC
 * bit vs anything else). */
#include <string.h>

#include "util.h"
#include "net/demux.h"

static void test_demux_classes(void **state) {
  uint8_t p[64];
  (void)state;
  memset(p, 0, sizeof(p));
  assert_int_equal(qpeer__demux_classify(p, 0, 16), QPEER__PKT_EMPTY);
  /* A STUN Binding request with no attributes. */
  p[0] = 0x00;
  p[1] = 0x01;
  p[4] = 0x21;
  p[5] = 0x12;
  p[6] = 0xa4;
  p[7] = 0x42;
  assert_int_equal(qpeer__demux_classify(p, 20, 16), QPEER__PKT_STUN);
  /* Wrong length field: not STUN; long enough for a short header. */
  p[3] = 4;
  assert_int_equal(qpeer__demux_classify(p, 20, 16), QPEER__PKT_QUIC_SHORT);
  p[3] = 8;
  assert_int_equal(qpeer__demux_classify(p, 28, 16), QPEER__PKT_STUN);
  /* Length not a multiple of 4. */
  p[3] = 6;
  assert_int_equal(qpeer__demux_classify(p, 26, 16), QPEER__PKT_QUIC_SHORT);
  /* Cookie off by one bit: a greased short header. */
  p[3] = 8;
  p[7] = 0x43;
  assert_int_equal(qpeer__demux_classify(p, 28, 16), QPEER__PKT_QUIC_SHORT);
  p[7] = 0x42;
  /* Top bits set: not STUN even with the cookie. */
  p[0] = 0x40;
  assert_int_equal(qpeer__demux_classify(p, 28, 16), QPEER__PKT_QUIC_SHORT);
  p[0] = 0xc0;
  assert_int_equal(qpeer__demux_classify(p, 28, 16), QPEER__PKT_QUIC_LONG);
  p[0] = 0x80; /* Version Negotiation sets only the top bit. */
  assert_int_equal(qpeer__demux_classify(p, 28, 16), QPEER__PKT_QUIC_LONG);
  /* Too short for a short header with 16-byte CIDs. */
  p[0] = 0x41;
  assert_int_equal(qpeer__demux_classify(p, 16, 16), QPEER__PKT_SHORT);
  assert_int_equal(qpeer__demux_classify(p, 17, 16), QPEER__PKT_QUIC_SHORT);
  assert_false(qpeer__demux_is_stun(p, 19));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_demux_classes),
  };
  return cmocka_run_group_tests_name("demux", tests, NULL, NULL);
}
