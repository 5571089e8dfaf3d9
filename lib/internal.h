/* SPDX-License-Identifier: MIT */
/*
 * Internal declarations shared by every part of libqpeer: the allocator,
 * logging, error translation and the intrusive list. Nothing here is
 * exported; internal non-static functions are named qpeer__<area>_<verb>.
 */
#ifndef QPEER_INTERNAL_H
#define QPEER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "qpeer.h"
#include "core/list.h"

#define QPEER__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define QPEER__CONTAINER_OF(ptr, type, member)                                \
  ((type *)((char *)(ptr)-offsetof(type, member)))
#define QPEER__MIN(a, b) ((a) < (b) ? (a) : (b))
#define QPEER__MAX(a, b) ((a) > (b) ? (a) : (b))

/* Allocation: every allocation in lib/ goes through these. */
void *qpeer__malloc(size_t size);
void *qpeer__calloc(size_t count, size_t size);
void *qpeer__realloc(void *ptr, size_t size);
void qpeer__free(void *ptr);
char *qpeer__strndup(const char *s, size_t n);
char *qpeer__strdup(const char *s);

/* Logging. */
void qpeer__log(qpeer_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int qpeer__log_enabled(qpeer_log_level level);
#define QPEER__LOG_DEBUG(...)                                                 \
  do {                                                                        \
    if (qpeer__log_enabled(QPEER_LOG_DEBUG))                                  \
      qpeer__log(QPEER_LOG_DEBUG, __VA_ARGS__);                               \
  } while (0)

/* Error translation from the dependencies' codes (logged when translated). */
int qpeer__err_from_ngtcp2(int liberr);
int qpeer__err_from_gnutls(int gerr);

/* Random bytes from GnuTLS's nonce generator (never fails in practice;
 * returns QPEER_ETLS if it does). */
int qpeer__rand(void *dest, size_t len);

/* Handle flags (handle->flags). */
enum {
  QPEER__HANDLE_INIT = 0x01,    /* _init succeeded */
  QPEER__HANDLE_CLOSING = 0x02, /* qpeer_close was called */
  QPEER__HANDLE_CLOSED = 0x04,  /* close_cb has run */
  QPEER__HANDLE_ACTIVE = 0x08   /* attached to a live parent */
};

void qpeer__handle_init(qpeer_handle_t *h, uv_loop_t *loop,
                        qpeer_handle_type type);

#endif /* QPEER_INTERNAL_H */
