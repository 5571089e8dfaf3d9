/* SPDX-License-Identifier: MIT */
/*
 * The replaceable allocator. qpeer_replace_allocator() swaps the four
 * functions; qpeer__* wrappers are what the rest of lib/ calls. ngtcp2 and
 * nghttp3 receive the same allocator through their mem structs (quic/).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static struct {
  qpeer_malloc_func malloc_f;   /* malloc replacement */
  qpeer_realloc_func realloc_f; /* realloc replacement */
  qpeer_calloc_func calloc_f;   /* calloc replacement */
  qpeer_free_func free_f;       /* free replacement */
} allocator = {malloc, realloc, calloc, free};

int qpeer_replace_allocator(qpeer_malloc_func malloc_func,
                            qpeer_realloc_func realloc_func,
                            qpeer_calloc_func calloc_func,
                            qpeer_free_func free_func) {
  if (!malloc_func || !realloc_func || !calloc_func || !free_func)
    return UV_EINVAL;
  allocator.malloc_f = malloc_func;
  allocator.realloc_f = realloc_func;
  allocator.calloc_f = calloc_func;
  allocator.free_f = free_func;
  return 0;
}

void *qpeer__malloc(size_t size) {
  return allocator.malloc_f(size ? size : 1);
}

void *qpeer__calloc(size_t count, size_t size) {
  return allocator.calloc_f(count ? count : 1, size ? size : 1);
}

void *qpeer__realloc(void *ptr, size_t size) {
  return allocator.realloc_f(ptr, size ? size : 1);
}

void qpeer__free(void *ptr) {
  if (ptr)
    allocator.free_f(ptr);
}

char *qpeer__strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *p = qpeer__malloc(len + 1);
  if (!p)
    return NULL;
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

char *qpeer__strdup(const char *s) { return qpeer__strndup(s, SIZE_MAX); }
