/* SPDX-License-Identifier: MIT */
/*
 * qpeer core: the handle and request base types, closing, the allocator,
 * error names and the log hook. Handles are long-lived objects (endpoint,
 * connection, stream); requests are one-shot operations (connect, write,
 * shutdown). Both are allocated by the caller, are not movable, and may be
 * freed only in or after their close callback (handles) or completion
 * callback (requests).
 */
#ifndef QPEER_CORE_H
#define QPEER_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "qpeer/errno.h"

#ifndef QPEER_EXTERN
#define QPEER_EXTERN __attribute__((visibility("default")))
#endif

typedef enum {
  QPEER_UNKNOWN_HANDLE = 0,
  QPEER_ENDPOINT,
  QPEER_CONN,
  QPEER_STREAM,
  QPEER_PORTMAP,
  QPEER_TUNNEL,  /* qpeer_tunnel_t (include/qpeer/masque.h) */
  QPEER_BINDING, /* qpeer_relay_bind_t */
  QPEER_RELAY,   /* qpeer_relay_t */
  QPEER_PEER_LISTENER, /* qpeer_peer_listener_t (include/qpeer/peer.h) */
  QPEER_HANDLE_TYPE_MAX
} qpeer_handle_type;

typedef enum {
  QPEER_UNKNOWN_REQ = 0,
  QPEER_CONNECT,
  QPEER_WRITE,
  QPEER_SHUTDOWN,
  QPEER_MIGRATE,
  QPEER_STUN,
  QPEER_NETCHECK,
  QPEER_PUNCH,
  QPEER_GATHER,
  QPEER_REQ_TYPE_MAX
} qpeer_req_type;

typedef struct qpeer_handle_s qpeer_handle_t;
typedef struct qpeer_req_s qpeer_req_t;

/**
 * `qpeer_close_cb` is called once a handle is fully closed; the handle's
 * memory may be freed from here on.
 */
typedef void (*qpeer_close_cb)(qpeer_handle_t *handle);

/* Fields shared by every handle. Only |data| is for the user to write. */
#define QPEER_HANDLE_FIELDS                                                   \
  /* public */                                                                \
  void *data;                                                                 \
  /* read-only */                                                             \
  uv_loop_t *loop;                                                            \
  qpeer_handle_type type;                                                     \
  /* private */                                                               \
  qpeer_close_cb close_cb;                                                    \
  unsigned int flags;                                                         \
  void *impl;                                                                 \
  void *reserved[4];

/* Fields shared by every request. Only |data| is for the user to write. */
#define QPEER_REQ_FIELDS                                                      \
  /* public */                                                                \
  void *data;                                                                 \
  /* read-only */                                                             \
  qpeer_req_type type;                                                        \
  void *handle;                                                               \
  /* private */                                                               \
  void *reserved[4];

struct qpeer_handle_s {
  QPEER_HANDLE_FIELDS
};

struct qpeer_req_s {
  QPEER_REQ_FIELDS
};

/**
 * `qpeer_close` starts closing |handle|. It is always asynchronous: |cb|
 * (which may be NULL) runs on a later loop iteration, after every pending
 * request of the handle has completed with UV_ECANCELED and, for a
 * connection or endpoint, after its child handles have closed. Returns 0,
 * UV_EINVAL for a NULL or uninitialised handle, or UV_EALREADY when the
 * handle is already closing.
 */
QPEER_EXTERN int qpeer_close(qpeer_handle_t *handle, qpeer_close_cb cb);

/** `qpeer_is_closing` returns nonzero once qpeer_close() was called. */
QPEER_EXTERN int qpeer_is_closing(const qpeer_handle_t *handle);

/** `qpeer_handle_type_name` names a handle type ("endpoint", ...). */
QPEER_EXTERN const char *qpeer_handle_type_name(qpeer_handle_type type);

typedef void *(*qpeer_malloc_func)(size_t size);
typedef void *(*qpeer_realloc_func)(void *ptr, size_t size);
typedef void *(*qpeer_calloc_func)(size_t count, size_t size);
typedef void (*qpeer_free_func)(void *ptr);

/**
 * `qpeer_replace_allocator` routes every allocation of qpeer (and of the
 * ngtcp2 and nghttp3 objects it creates) through these functions. Call it
 * before any other qpeer function. Returns 0 or UV_EINVAL if any is NULL.
 */
QPEER_EXTERN int qpeer_replace_allocator(qpeer_malloc_func malloc_func,
                                         qpeer_realloc_func realloc_func,
                                         qpeer_calloc_func calloc_func,
                                         qpeer_free_func free_func);

/**
 * `qpeer_err_name` returns the symbolic name of an error code ("EPEERID",
 * "ECONNREFUSED", ...). libuv codes are named by libuv.
 */
QPEER_EXTERN const char *qpeer_err_name(int err);

/** `qpeer_strerror` returns a one-line English description of |err|. */
QPEER_EXTERN const char *qpeer_strerror(int err);

typedef enum {
  QPEER_LOG_ERROR = 0,
  QPEER_LOG_WARN = 1,
  QPEER_LOG_INFO = 2,
  QPEER_LOG_DEBUG = 3
} qpeer_log_level;

typedef void (*qpeer_log_func)(void *arg, qpeer_log_level level,
                               const char *msg);

/**
 * `qpeer_set_log` installs a global log hook that receives every message at
 * |max_level| or more severe. NULL |func| turns logging off (the default,
 * unless the environment variable QPEER_LOG=debug|info|warn|error is set,
 * which logs to stderr).
 */
QPEER_EXTERN void qpeer_set_log(qpeer_log_func func, void *arg,
                                qpeer_log_level max_level);

/** `qpeer_version` returns QPEER_VERSION_HEX of the running library. */
QPEER_EXTERN unsigned int qpeer_version(void);

/** `qpeer_version_string` returns "MAJOR.MINOR.PATCH". */
QPEER_EXTERN const char *qpeer_version_string(void);

#endif /* QPEER_CORE_H */
