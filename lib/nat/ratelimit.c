/* SPDX-License-Identifier: MIT */
/* Token buckets and the bounded per-source table (see ratelimit.h). */
#include <string.h>

#include "internal.h"
#include "nat/ratelimit.h"

#define NIL UINT32_MAX
#define UNIT 1000000000ull /* one token, in stored units */

void qpeer__bucket_init(qpeer__bucket *b, uint32_t rate, uint32_t burst,
                        uint64_t now) {
  if (burst == 0)
    burst = 1;
  b->rate = rate;
  b->burst = burst;
  b->tokens = (uint64_t)burst * UNIT;
  b->last = now;
}

int qpeer__bucket_take(qpeer__bucket *b, uint64_t now) {
  uint64_t cap = (uint64_t)b->burst * UNIT;
  if (now > b->last) {
    uint64_t dt = now - b->last;
    if (b->rate > 0) {
      /* Clamp the interval to what fills the bucket, so the product
       * below cannot overflow. */
      uint64_t fill = cap / b->rate + 1;
      if (dt > fill)
        dt = fill;
      b->tokens += dt * b->rate;
      if (b->tokens > cap)
        b->tokens = cap;
    }
    b->last = now;
  }
  if (b->tokens < UNIT)
    return 0;
  b->tokens -= UNIT;
  return 1;
}

/* SipHash would be stronger; a seeded 64-bit mix is enough to keep a
 * remote party from predicting chains of a table this small. */
static uint32_t hash_key(const qpeer__ratelimit *rl, const uint8_t *key,
                         size_t keylen) {
  uint64_t h = rl->seed ^ (0x9e3779b97f4a7c15ull * (keylen + 1));
  size_t i;
  for (i = 0; i < keylen; i++) {
    h ^= key[i];
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  }
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93ull;
  h ^= h >> 32;
  return (uint32_t)h & (rl->nheads - 1);
}

int qpeer__ratelimit_init(qpeer__ratelimit *rl, uint32_t cap, uint32_t rate,
                          uint32_t burst, uint64_t seed) {
  uint32_t i;
  memset(rl, 0, sizeof(*rl));
  if (cap == 0)
    cap = 1;
  if (cap > (1u << 24))
    return UV_EINVAL;
  rl->nheads = 1;
  while (rl->nheads < cap)
    rl->nheads <<= 1;
  rl->entries = qpeer__calloc(cap, sizeof(*rl->entries));
  rl->heads = qpeer__malloc(rl->nheads * sizeof(*rl->heads));
  if (!rl->entries || !rl->heads) {
    qpeer__ratelimit_free(rl);
    return UV_ENOMEM;
  }
  for (i = 0; i < rl->nheads; i++)
    rl->heads[i] = NIL;
  rl->cap = cap;
  rl->rate = rate;
  rl->burst = burst;
  rl->seed = seed;
  rl->lru_head = rl->lru_tail = NIL;
  return 0;
}

void qpeer__ratelimit_free(qpeer__ratelimit *rl) {
  qpeer__free(rl->entries);
  qpeer__free(rl->heads);
  rl->entries = NULL;
  rl->heads = NULL;
  rl->cap = rl->n = 0;
}

static void lru_unlink(qpeer__ratelimit *rl, uint32_t i) {
  qpeer__rl_entry *e = &rl->entries[i];
  if (e->lru_prev != NIL)
    rl->entries[e->lru_prev].lru_next = e->lru_next;
  else
    rl->lru_head = e->lru_next;
  if (e->lru_next != NIL)
    rl->entries[e->lru_next].lru_prev = e->lru_prev;
  else
    rl->lru_tail = e->lru_prev;
  e->lru_prev = e->lru_next = NIL;
}

static void lru_push_front(qpeer__ratelimit *rl, uint32_t i) {
  qpeer__rl_entry *e = &rl->entries[i];
  e->lru_prev = NIL;
  e->lru_next = rl->lru_head;
  if (rl->lru_head != NIL)
    rl->entries[rl->lru_head].lru_prev = i;
  rl->lru_head = i;
  if (rl->lru_tail == NIL)
    rl->lru_tail = i;
}

static void chain_unlink(qpeer__ratelimit *rl, uint32_t i) {
  qpeer__rl_entry *e = &rl->entries[i];
  uint32_t *p = &rl->heads[hash_key(rl, e->key, e->keylen)];
  while (*p != NIL) {
    if (*p == i) {
      *p = e->hnext;
      return;
    }
    p = &rl->entries[*p].hnext;
  }
}

int qpeer__ratelimit_take(qpeer__ratelimit *rl, const uint8_t *key,
                          size_t keylen, uint64_t now) {
  uint32_t h, i;
  qpeer__rl_entry *e;
  if (keylen > QPEER__RL_KEY_MAX)
    keylen = QPEER__RL_KEY_MAX;
  h = hash_key(rl, key, keylen);
  for (i = rl->heads[h]; i != NIL; i = rl->entries[i].hnext) {
    e = &rl->entries[i];
    if (e->keylen == keylen && !memcmp(e->key, key, keylen)) {
      lru_unlink(rl, i);
      lru_push_front(rl, i);
      return qpeer__bucket_take(&e->bucket, now);
    }
  }
  if (rl->n < rl->cap) {
    i = rl->n++;
  } else {
    /* Full: reuse the least recently used entry. */
    i = rl->lru_tail;
    lru_unlink(rl, i);
    chain_unlink(rl, i);
    rl->evictions++;
  }
  e = &rl->entries[i];
  memset(e->key, 0, sizeof(e->key));
  memcpy(e->key, key, keylen);
  e->keylen = (uint8_t)keylen;
  e->hnext = rl->heads[h];
  rl->heads[h] = i;
  lru_push_front(rl, i);
  qpeer__bucket_init(&e->bucket, rl->rate, rl->burst, now);
  return qpeer__bucket_take(&e->bucket, now);
}
