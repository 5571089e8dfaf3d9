/* SPDX-License-Identifier: MIT */
/*
 * The connection-ID map: our connection IDs (up to 20 bytes) to the
 * connection that owns them. Separate chaining, doubling when the load
 * passes 1; each entry is one small allocation made when a CID is issued,
 * never per packet. Pure: no I/O.
 */
#ifndef QPEER_NET_CIDMAP_H
#define QPEER_NET_CIDMAP_H

#include <stddef.h>
#include <stdint.h>

#define QPEER__CID_MAX 20

typedef struct qpeer__cidmap_node {
  struct qpeer__cidmap_node *next; /* next in bucket */
  uint64_t hash;                   /* hash of the CID */
  uint8_t len;                     /* CID length */
  uint8_t cid[QPEER__CID_MAX];     /* CID bytes */
  void *value;                     /* the owner */
} qpeer__cidmap_node;

typedef struct qpeer__cidmap {
  qpeer__cidmap_node **buckets; /* nbuckets chains */
  size_t nbuckets;              /* a power of two */
  size_t count;                 /* entries */
  uint64_t seed;                /* per-map hash seed (flooding defence) */
  /* The two entries found last (most recent first): packets come in runs
   * for the same connection, so most lookups skip the hash. */
  qpeer__cidmap_node *recent[2];
} qpeer__cidmap;

int qpeer__cidmap_init(qpeer__cidmap *m, uint64_t seed);
void qpeer__cidmap_free(qpeer__cidmap *m);
/* Returns 0, UV_EEXIST, UV_EINVAL (length 0 or > 20) or UV_ENOMEM. */
int qpeer__cidmap_insert(qpeer__cidmap *m, const uint8_t *cid, size_t len,
                         void *value);
/* Returns the value or NULL (remembers the entry for the next lookup). */
void *qpeer__cidmap_find(qpeer__cidmap *m, const uint8_t *cid, size_t len);
/* Returns 0 or UV_ENOENT. */
int qpeer__cidmap_remove(qpeer__cidmap *m, const uint8_t *cid, size_t len);

#endif /* QPEER_NET_CIDMAP_H */
