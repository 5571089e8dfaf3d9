/* SPDX-License-Identifier: MIT */
/* The connection-ID map (see cidmap.h). */
#include <string.h>

#include "internal.h"
#include "net/cidmap.h"

static uint64_t cid_hash(uint64_t seed, const uint8_t *cid, size_t len) {
  /* FNV-1a keyed by a random seed, then mixed (splitmix64 finaliser). */
  uint64_t h = 1469598103934665603ULL ^ seed;
  size_t i;
  for (i = 0; i < len; i++)
    h = (h ^ cid[i]) * 1099511628211ULL;
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

int qpeer__cidmap_init(qpeer__cidmap *m, uint64_t seed) {
  m->nbuckets = 64;
  m->count = 0;
  m->seed = seed;
  m->recent[0] = m->recent[1] = NULL;
  m->buckets = qpeer__calloc(m->nbuckets, sizeof(*m->buckets));
  return m->buckets ? 0 : UV_ENOMEM;
}

void qpeer__cidmap_free(qpeer__cidmap *m) {
  size_t i;
  qpeer__cidmap_node *n, *next;
  if (!m->buckets)
    return;
  for (i = 0; i < m->nbuckets; i++) {
    for (n = m->buckets[i]; n; n = next) {
      next = n->next;
      qpeer__free(n);
    }
  }
  qpeer__free(m->buckets);
  m->buckets = NULL;
  m->count = 0;
  m->recent[0] = m->recent[1] = NULL;
}

static void grow(qpeer__cidmap *m) {
  size_t nb = m->nbuckets * 2, i;
  qpeer__cidmap_node **b = qpeer__calloc(nb, sizeof(*b)), *n, *next;
  if (!b)
    return; /* Keep the longer chains; still correct. */
  for (i = 0; i < m->nbuckets; i++) {
    for (n = m->buckets[i]; n; n = next) {
      next = n->next;
      n->next = b[n->hash & (nb - 1)];
      b[n->hash & (nb - 1)] = n;
    }
  }
  qpeer__free(m->buckets);
  m->buckets = b;
  m->nbuckets = nb;
}

int qpeer__cidmap_insert(qpeer__cidmap *m, const uint8_t *cid, size_t len,
                         void *value) {
  qpeer__cidmap_node *n;
  uint64_t h;
  if (len == 0 || len > QPEER__CID_MAX)
    return UV_EINVAL;
  if (qpeer__cidmap_find(m, cid, len))
    return UV_EEXIST;
  n = qpeer__malloc(sizeof(*n));
  if (!n)
    return UV_ENOMEM;
  h = cid_hash(m->seed, cid, len);
  n->hash = h;
  n->len = (uint8_t)len;
  memcpy(n->cid, cid, len);
  n->value = value;
  n->next = m->buckets[h & (m->nbuckets - 1)];
  m->buckets[h & (m->nbuckets - 1)] = n;
  m->count++;
  if (m->count > m->nbuckets)
    grow(m);
  return 0;
}

static int node_is(const qpeer__cidmap_node *n, const uint8_t *cid,
                   size_t len) {
  return n && n->len == len && !memcmp(n->cid, cid, len);
}

void *qpeer__cidmap_find(qpeer__cidmap *m, const uint8_t *cid, size_t len) {
  qpeer__cidmap_node *n;
  uint64_t h;
  if (len == 0 || len > QPEER__CID_MAX)
    return NULL;
  if (node_is(m->recent[0], cid, len))
    return m->recent[0]->value;
  if (node_is(m->recent[1], cid, len)) {
    n = m->recent[1];
    m->recent[1] = m->recent[0];
    m->recent[0] = n;
    return n->value;
  }
  h = cid_hash(m->seed, cid, len);
  for (n = m->buckets[h & (m->nbuckets - 1)]; n; n = n->next)
    if (n->hash == h && n->len == len && !memcmp(n->cid, cid, len)) {
      m->recent[1] = m->recent[0];
      m->recent[0] = n;
      return n->value;
    }
  return NULL;
}

int qpeer__cidmap_remove(qpeer__cidmap *m, const uint8_t *cid, size_t len) {
  qpeer__cidmap_node **pp, *n;
  uint64_t h;
  if (len == 0 || len > QPEER__CID_MAX)
    return UV_ENOENT;
  h = cid_hash(m->seed, cid, len);
  for (pp = &m->buckets[h & (m->nbuckets - 1)]; (n = *pp); pp = &n->next) {
    if (n->hash == h && n->len == len && !memcmp(n->cid, cid, len)) {
      *pp = n->next;
      if (m->recent[1] == n)
        m->recent[1] = NULL;
      if (m->recent[0] == n) {
        m->recent[0] = m->recent[1];
        m->recent[1] = NULL;
      }
      qpeer__free(n);
      m->count--;
      return 0;
    }
  }
  return UV_ENOENT;
}
