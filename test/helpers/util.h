/* SPDX-License-Identifier: MIT */
/* Shared helpers for qpeer tests: watchdog, loop teardown, temp dirs. */
#ifndef QPEER_TEST_UTIL_H
#define QPEER_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <uv.h>

/* qpt_watchdog_start arms a timer that fails the test (abort with a message)
 * if the loop is still running after |ms| milliseconds times the
 * QPEER_TEST_TIMEOUT_MULTIPLIER environment variable (default 1). The timer
 * is unreferenced so it never keeps the loop alive on its own. */
void qpt_watchdog_start(uv_loop_t *loop, uv_timer_t *timer, uint64_t ms);

/* qpt_loop_teardown closes every handle still open on |loop|, runs the loop
 * until they are closed, and asserts that uv_loop_close() returns 0. */
void qpt_loop_teardown(uv_loop_t *loop);

/* qpt_tmpdir creates a fresh private directory and writes its path. */
void qpt_tmpdir(char *buf, size_t buflen);

/* qpt_rmtree removes a directory made by qpt_tmpdir and its files. */
void qpt_rmtree(const char *path);

#endif
