/* SPDX-License-Identifier: MIT */
/* Shared helpers for qpeer tests (see util.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "test watchdog expired: the test did not finish in time\n");
  abort();
}

void qpt_watchdog_start(uv_loop_t *loop, uv_timer_t *timer, uint64_t ms) {
  const char *m = getenv("QPEER_TEST_TIMEOUT_MULTIPLIER");
  uint64_t mult = m ? strtoull(m, NULL, 10) : 1;
  if (mult == 0)
    mult = 1;
  assert_int_equal(uv_timer_init(loop, timer), 0);
  assert_int_equal(uv_timer_start(timer, on_watchdog, ms * mult, 0), 0);
  uv_unref((uv_handle_t *)timer);
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

void qpt_loop_teardown(uv_loop_t *loop) {
  uv_walk(loop, close_walk, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
}

void qpt_tmpdir(char *buf, size_t buflen) {
  const char *base = getenv("TMPDIR");
  snprintf(buf, buflen, "%s/qpeer-test-XXXXXX", base ? base : "/tmp");
  assert_non_null(mkdtemp(buf));
}

void qpt_rmtree(const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  char p[4096];
  if (!d)
    return;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(path);
}
