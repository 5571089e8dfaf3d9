/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the qpeer-relay unit tests (test/relayd/): a
 * private temporary directory and files in it. Header-only so that the
 * tests need nothing from test/helpers, which is built after tools/.
 */
#ifndef QPEER_RELAYD_TEST_H
#define QPEER_RELAYD_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* rt_tmpdir makes a fresh 0700 directory and writes its path. */
static inline void rt_tmpdir(char *buf, size_t len) {
  const char *base = getenv("TMPDIR");
  snprintf(buf, len, "%s/qpeer-relayd-XXXXXX", base && *base ? base : "/tmp");
  assert_non_null(mkdtemp(buf));
}

/* rt_write_file writes |len| bytes of |data| to DIR/NAME with |mode| and
 * stores the path in |path|. */
static inline void rt_write_file(const char *dir, const char *name,
                                 const void *data, size_t len, mode_t mode,
                                 char *path, size_t pathlen) {
  FILE *f;
  snprintf(path, pathlen, "%s/%s", dir, name);
  unlink(path);
  f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(chmod(path, mode), 0);
}

/* rt_rmdir removes |dir| and the plain files in it. */
static inline void rt_rmdir(const char *dir) {
  char cmd[1200];
  snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

#endif /* QPEER_RELAYD_TEST_H */
