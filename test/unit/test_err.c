/* SPDX-License-Identifier: MIT */
/* Unit tests for error names and messages. */
#include <string.h>

#include "util.h"
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>

#include "internal.h"

static void test_err_names_unique(void **state) {
  static const int codes[] = {
#define XX(name, val, msg) val,
      QPEER_ERRNO_MAP(XX)
#undef XX
  };
  size_t i, j;
  (void)state;
  for (i = 0; i < QPEER__ARRAY_SIZE(codes); i++) {
    assert_true(codes[i] <= -9000 && codes[i] >= -9999);
    assert_true(qpeer_err_name(codes[i])[0] == 'E');
    assert_true(strlen(qpeer_strerror(codes[i])) > 5);
    for (j = i + 1; j < QPEER__ARRAY_SIZE(codes); j++) {
      assert_int_not_equal(codes[i], codes[j]);
      assert_string_not_equal(qpeer_err_name(codes[i]),
                              qpeer_err_name(codes[j]));
    }
  }
}

static void test_err_specific(void **state) {
  (void)state;
  assert_string_equal(qpeer_err_name(QPEER_EPEERID), "EPEERID");
  assert_string_equal(qpeer_err_name(QPEER_EHANDSHAKE), "EHANDSHAKE");
  assert_string_equal(qpeer_err_name(0), "OK");
  assert_string_equal(qpeer_err_name(UV_ECANCELED), "ECANCELED");
  assert_string_equal(qpeer_err_name(UV_EINVAL), "EINVAL");
  assert_string_equal(qpeer_err_name(-9999), "EUNKNOWN_QPEER");
  assert_string_equal(qpeer_strerror(UV_ETIMEDOUT), uv_strerror(UV_ETIMEDOUT));
}

static void test_err_translation(void **state) {
  (void)state;
  assert_int_equal(qpeer__err_from_ngtcp2(NGTCP2_ERR_NOMEM), UV_ENOMEM);
  assert_int_equal(qpeer__err_from_ngtcp2(NGTCP2_ERR_IDLE_CLOSE), QPEER_EIDLE);
  assert_int_equal(qpeer__err_from_ngtcp2(NGTCP2_ERR_STREAM_ID_BLOCKED),
                   QPEER_EFLOWCONTROL);
  assert_int_equal(qpeer__err_from_ngtcp2(NGTCP2_ERR_INTERNAL), QPEER_EQUIC);
  assert_int_equal(qpeer__err_from_gnutls(GNUTLS_E_MEMORY_ERROR), UV_ENOMEM);
  assert_int_equal(qpeer__err_from_gnutls(GNUTLS_E_DECRYPTION_FAILED),
                   QPEER_ETLS);
  assert_int_equal(qpeer__err_from_gnutls(0), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_err_names_unique),
      cmocka_unit_test(test_err_specific),
      cmocka_unit_test(test_err_translation),
  };
  return cmocka_run_group_tests_name("err", tests, NULL, NULL);
}
