/* SPDX-License-Identifier: MIT */
/*
 * Token buckets for rate limiting, pure and sans-I/O (the caller passes
 * the time in nanoseconds): one bucket (qpeer__bucket), and a bounded
 * table of per-source buckets (qpeer__ratelimit) keyed by up to 16 bytes,
 * whose least recently used entry is evicted when the table is full. The
 * STUN responder keys it by source address (IPv4 /32, IPv6 /64).
 */
#ifndef QPEER_NAT_RATELIMIT_H
#define QPEER_NAT_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define QPEER__RL_KEY_MAX 16

/* One token bucket: |rate| tokens per second, at most |burst| stored.
 * Tokens are kept in units of 1e-9 token, so rates need no rounding. */
typedef struct {
  uint64_t tokens; /* stored tokens x 1e9 */
  uint64_t last;   /* time of the last refill (ns) */
  uint32_t rate;   /* tokens per second */
  uint32_t burst;  /* bucket depth in tokens */
} qpeer__bucket;

/* qpeer__bucket_init makes a full bucket at |now|. A |rate| of 0 never
 * refills; a |burst| of 0 is taken as 1. */
void qpeer__bucket_init(qpeer__bucket *b, uint32_t rate, uint32_t burst,
                        uint64_t now);

/* qpeer__bucket_take refills |b| up to |now| and takes one token: returns
 * 1 if there was one, 0 if the bucket is empty. A clock that goes back
 * refills nothing. */
int qpeer__bucket_take(qpeer__bucket *b, uint64_t now);

/* An entry of the per-source table. */
typedef struct {
  uint8_t key[QPEER__RL_KEY_MAX]; /* the key, zero-padded */
  uint8_t keylen;                 /* bytes of key used */
  uint32_t hnext;                 /* next index in the hash chain */
  uint32_t lru_prev, lru_next;    /* LRU neighbours (indices) */
  qpeer__bucket bucket;           /* this source's bucket */
} qpeer__rl_entry;

/* A bounded table of per-source buckets. Memory is allocated once, at
 * init; lookups are O(1) on average. */
typedef struct {
  qpeer__rl_entry *entries; /* |cap| entries */
  uint32_t *heads;          /* |nheads| hash chain heads */
  uint32_t nheads;          /* a power of two >= cap */
  uint32_t cap;             /* most entries */
  uint32_t n;               /* entries in use (indices 0..n-1) */
  uint32_t lru_head;        /* most recently used, or NIL */
  uint32_t lru_tail;        /* least recently used, or NIL */
  uint32_t rate, burst;     /* parameters of every bucket */
  uint64_t seed;            /* hash key (random per table) */
  uint64_t evictions;       /* entries evicted to make room */
} qpeer__ratelimit;

/* qpeer__ratelimit_init allocates a table for |cap| sources (at least 1)
 * whose buckets hold |burst| tokens and refill at |rate| per second.
 * |seed| keys the hash so that a remote party cannot aim at one chain.
 * Returns 0, UV_EINVAL for |cap| above 1<<24, or UV_ENOMEM. */
int qpeer__ratelimit_init(qpeer__ratelimit *rl, uint32_t cap, uint32_t rate,
                          uint32_t burst, uint64_t seed);

/* qpeer__ratelimit_free releases the table (safe on a zeroed struct). */
void qpeer__ratelimit_free(qpeer__ratelimit *rl);

/* qpeer__ratelimit_take takes one token from the bucket of |key|
 * (|keylen| <= 16 bytes), creating a full bucket for a new key (evicting
 * the least recently used one when the table is full). Returns 1 if
 * allowed, 0 if that source is over its rate. */
int qpeer__ratelimit_take(qpeer__ratelimit *rl, const uint8_t *key,
                          size_t keylen, uint64_t now);

#endif /* QPEER_NAT_RATELIMIT_H */
