/* SPDX-License-Identifier: MIT */
/* Unit tests for the connection-ID map. */
#include <string.h>

#include "util.h"
#include "internal.h"
#include "net/cidmap.h"

static void test_cidmap_basic(void **state) {
  qpeer__cidmap m;
  uint8_t cid[20];
  int values[5000];
  size_t i;
  (void)state;
  assert_int_equal(qpeer__cidmap_init(&m, 42), 0);
  for (i = 0; i < 5000; i++) {
    memset(cid, 0, sizeof(cid));
    memcpy(cid, &i, sizeof(i));
    assert_int_equal(qpeer__cidmap_insert(&m, cid, 16, &values[i]), 0);
  }
  assert_int_equal(m.count, 5000);
  assert_true(m.nbuckets >= 4096);
  for (i = 0; i < 5000; i++) {
    memset(cid, 0, sizeof(cid));
    memcpy(cid, &i, sizeof(i));
    assert_ptr_equal(qpeer__cidmap_find(&m, cid, 16), &values[i]);
    /* Same bytes, other length: a different CID. */
    assert_null(qpeer__cidmap_find(&m, cid, 15));
  }
  memset(cid, 0, sizeof(cid));
  assert_int_equal(qpeer__cidmap_insert(&m, cid, 16, &values[1]), UV_EEXIST);
  assert_int_equal(qpeer__cidmap_insert(&m, cid, 0, &values[1]), UV_EINVAL);
  assert_int_equal(qpeer__cidmap_insert(&m, cid, 21, &values[1]), UV_EINVAL);
  for (i = 0; i < 5000; i += 2) {
    memset(cid, 0, sizeof(cid));
    memcpy(cid, &i, sizeof(i));
    assert_int_equal(qpeer__cidmap_remove(&m, cid, 16), 0);
    assert_int_equal(qpeer__cidmap_remove(&m, cid, 16), UV_ENOENT);
  }
  assert_int_equal(m.count, 2500);
  for (i = 0; i < 5000; i++) {
    memset(cid, 0, sizeof(cid));
    memcpy(cid, &i, sizeof(i));
    if (i & 1)
      assert_ptr_equal(qpeer__cidmap_find(&m, cid, 16), &values[i]);
    else
      assert_null(qpeer__cidmap_find(&m, cid, 16));
  }
  assert_null(qpeer__cidmap_find(&m, cid, 0));
  qpeer__cidmap_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cidmap_basic),
  };
  return cmocka_run_group_tests_name("cidmap", tests, NULL, NULL);
}
