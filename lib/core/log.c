/* SPDX-License-Identifier: MIT */
/*
 * The global log hook. Messages are formatted into a bounded stack buffer
 * (truncated past 1 KiB) and handed to the user's function, or to stderr
 * when QPEER_LOG is set in the environment and no hook was installed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static struct {
  qpeer_log_func func;       /* the user's hook, or NULL */
  void *arg;                 /* passed back to func */
  int max_level;             /* least severe level passed on; -1 = off */
  int env_checked;           /* QPEER_LOG was read */
} logger = {NULL, NULL, -1, 0};

static void stderr_log(void *arg, qpeer_log_level level, const char *msg) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  (void)arg;
  fprintf(stderr, "qpeer %s: %s\n", names[level], msg);
}

static void check_env(void) {
  const char *v;
  logger.env_checked = 1;
  if (logger.func)
    return;
  v = getenv("QPEER_LOG");
  if (!v)
    return;
  logger.func = stderr_log;
  if (!strcmp(v, "debug"))
    logger.max_level = QPEER_LOG_DEBUG;
  else if (!strcmp(v, "info"))
    logger.max_level = QPEER_LOG_INFO;
  else if (!strcmp(v, "warn"))
    logger.max_level = QPEER_LOG_WARN;
  else
    logger.max_level = QPEER_LOG_ERROR;
}

void qpeer_set_log(qpeer_log_func func, void *arg, qpeer_log_level max_level) {
  logger.env_checked = 1;
  logger.func = func;
  logger.arg = arg;
  logger.max_level = func ? (int)max_level : -1;
}

int qpeer__log_enabled(qpeer_log_level level) {
  if (!logger.env_checked)
    check_env();
  return logger.func && (int)level <= logger.max_level;
}

void qpeer__log(qpeer_log_level level, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  if (!qpeer__log_enabled(level))
    return;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  logger.func(logger.arg, level, buf);
}
