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

/* The two most recent entries are remembered: a removed one must never
 * be found again through them, whichever slot it was in. */
static void test_cidmap_recent(void **state) {
  qpeer__cidmap m;
  uint8_t a[16], b[16], c[16];
  int va, vb, vc;
  (void)state;
  memset(a, 1, sizeof(a));
  memset(b, 2, sizeof(b));
  memset(c, 3, sizeof(c));
  assert_int_equal(qpeer__cidmap_init(&m, 7), 0);
  assert_int_equal(qpeer__cidmap_insert(&m, a, 16, &va), 0);
  assert_int_equal(qpeer__cidmap_insert(&m, b, 16, &vb), 0);
  assert_int_equal(qpeer__cidmap_insert(&m, c, 16, &vc), 0);
  /* a in the second slot, b in the first: remove a */
  assert_ptr_equal(qpeer__cidmap_find(&m, a, 16), &va);
  assert_ptr_equal(qpeer__cidmap_find(&m, b, 16), &vb);
  assert_int_equal(qpeer__cidmap_remove(&m, a, 16), 0);
  assert_null(qpeer__cidmap_find(&m, a, 16));
  assert_ptr_equal(qpeer__cidmap_find(&m, b, 16), &vb);
  /* b first, c second: remove b (first slot), then c stays findable */
  assert_ptr_equal(qpeer__cidmap_find(&m, c, 16), &vc);
  assert_ptr_equal(qpeer__cidmap_find(&m, b, 16), &vb);
  assert_int_equal(qpeer__cidmap_remove(&m, b, 16), 0);
  assert_null(qpeer__cidmap_find(&m, b, 16));
  assert_ptr_equal(qpeer__cidmap_find(&m, c, 16), &vc);
  /* same bytes, other length: not the remembered entry */
  assert_null(qpeer__cidmap_find(&m, c, 15));
  /* a CID re-inserted after removal maps to its new value */
  assert_int_equal(qpeer__cidmap_insert(&m, a, 16, &vb), 0);
  assert_ptr_equal(qpeer__cidmap_find(&m, a, 16), &vb);
  assert_int_equal(qpeer__cidmap_remove(&m, c, 16), 0);
  assert_null(qpeer__cidmap_find(&m, c, 16));
  assert_ptr_equal(qpeer__cidmap_find(&m, a, 16), &vb);
  qpeer__cidmap_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cidmap_basic),
      cmocka_unit_test(test_cidmap_recent),
  };
  return cmocka_run_group_tests_name("cidmap", tests, NULL, NULL);
}
