/* SPDX-License-Identifier: MIT */
/*
 * Client quotas (pure): the record table (seeded hash, free list, and two
 * recency lists, active and idle), admission and session counting, and
 * the per-client token bucket. The table is allocated once by
 * relayd_quota_init; nothing else allocates.
 */
#include "quota.h"

#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX
#define IDLE 0
#define ACTIVE 1
#define HEAD 0
#define TAIL 1

static const struct {
  const char *name; /* result name */
  int status;       /* HTTP status */
} errs[] = {
#define RELAYD_QUOTA_ERR_ROW(e, n, s) {n, s},
    RELAYD_QUOTA_ERR_MAP(RELAYD_QUOTA_ERR_ROW)
#undef RELAYD_QUOTA_ERR_ROW
};

const char *relayd_quota_err_name(relayd_quota_err err) {
  return (unsigned)err < RELAYD_QUOTA__COUNT ? errs[err].name : "quota_unknown";
}

int relayd_quota_err_status(relayd_quota_err err) {
  return (unsigned)err < RELAYD_QUOTA__COUNT ? errs[err].status : 500;
}

/* ---- table --------------------------------------------------------------- */

static uint32_t hash_key(const relayd_quota_t *q, const char *key) {
  uint64_t h = 1469598103934665603ull ^ q->cfg.seed;
  for (; *key; key++) {
    h ^= (unsigned char)*key;
    h *= 1099511628211ull;
  }
  /* splitmix64 finalizer: spreads the seed through every bit. */
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return (uint32_t)h & (q->nbuckets - 1);
}

static uint32_t idx(const relayd_quota_t *q, const relayd_quota_client_t *c) {
  return (uint32_t)(c - q->slots);
}

static int is_active(const relayd_quota_client_t *c) {
  return c->attached || c->tunnels || c->binds;
}

static void list_unlink(relayd_quota_t *q, int which, uint32_t i) {
  relayd_quota_client_t *c = &q->slots[i];
  if (c->prev != NIL)
    q->slots[c->prev].next = c->next;
  else
    q->lists[which][HEAD] = c->next;
  if (c->next != NIL)
    q->slots[c->next].prev = c->prev;
  else
    q->lists[which][TAIL] = c->prev;
  c->prev = c->next = NIL;
}

static void list_push_head(relayd_quota_t *q, int which, uint32_t i) {
  relayd_quota_client_t *c = &q->slots[i];
  c->prev = NIL;
  c->next = q->lists[which][HEAD];
  if (c->next != NIL)
    q->slots[c->next].prev = i;
  else
    q->lists[which][TAIL] = i;
  q->lists[which][HEAD] = i;
}

static void list_push_tail(relayd_quota_t *q, int which, uint32_t i) {
  relayd_quota_client_t *c = &q->slots[i];
  c->next = NIL;
  c->prev = q->lists[which][TAIL];
  if (c->prev != NIL)
    q->slots[c->prev].next = i;
  else
    q->lists[which][HEAD] = i;
  q->lists[which][TAIL] = i;
}

/* touch records activity at |now| and files |c| in the list its state
 * calls for (|was| is the list it is in now), most recent first. */
static void touch(relayd_quota_t *q, relayd_quota_client_t *c, int was,
                  uint64_t now) {
  uint32_t i = idx(q, c);
  int want = is_active(c) ? ACTIVE : IDLE;
  if (now > c->last_active_ms)
    c->last_active_ms = now;
  list_unlink(q, was, i);
  list_push_head(q, want, i);
  if (was != want) {
    if (want == ACTIVE)
      q->stats.clients_active++;
    else
      q->stats.clients_active--;
  }
}

int relayd_quota_init(relayd_quota_t *q, const relayd_quota_config_t *cfg) {
  uint32_t i, nb = 1;
  memset(q, 0, sizeof(*q));
  if (!cfg || cfg->table_size == 0 ||
      cfg->table_size > RELAYD_QUOTA_MAX_TABLE ||
      cfg->rate > RELAYD_QUOTA_MAX_BYTES || cfg->burst > RELAYD_QUOTA_MAX_BYTES)
    return -1;
  q->cfg = *cfg;
  if (q->cfg.burst == 0)
    q->cfg.burst = q->cfg.rate;
  while (nb < cfg->table_size * 2)
    nb <<= 1;
  q->nbuckets = nb;
  q->slots = calloc(cfg->table_size, sizeof(*q->slots));
  q->buckets = malloc(nb * sizeof(*q->buckets));
  if (!q->slots || !q->buckets) {
    relayd_quota_free(q);
    return -1;
  }
  for (i = 0; i < nb; i++)
    q->buckets[i] = NIL;
  for (i = 0; i < cfg->table_size; i++) {
    q->slots[i].hnext = i + 1 < cfg->table_size ? i + 1 : NIL;
    q->slots[i].prev = q->slots[i].next = NIL;
  }
  q->free_head = 0;
  q->lists[IDLE][HEAD] = q->lists[IDLE][TAIL] = NIL;
  q->lists[ACTIVE][HEAD] = q->lists[ACTIVE][TAIL] = NIL;
  return 0;
}

void relayd_quota_free(relayd_quota_t *q) {
  free(q->slots);
  free(q->buckets);
  q->slots = NULL;
  q->buckets = NULL;
}

relayd_quota_client_t *relayd_quota_find(relayd_quota_t *q, const char *key) {
  uint32_t i;
  if (!key || !q->slots)
    return NULL;
  for (i = q->buckets[hash_key(q, key)]; i != NIL; i = q->slots[i].hnext)
    if (!strcmp(q->slots[i].key, key))
      return &q->slots[i];
  return NULL;
}

/* evict drops the least recently used idle record. Returns 0, or -1 if
 * there is none. */
static int evict(relayd_quota_t *q) {
  uint32_t i = q->lists[IDLE][TAIL], *pp;
  relayd_quota_client_t *c;
  if (i == NIL)
    return -1;
  c = &q->slots[i];
  list_unlink(q, IDLE, i);
  for (pp = &q->buckets[hash_key(q, c->key)]; *pp != i;
       pp = &q->slots[*pp].hnext)
    ;
  *pp = c->hnext;
  memset(c, 0, sizeof(*c));
  c->prev = c->next = NIL;
  c->hnext = q->free_head;
  q->free_head = i;
  q->stats.clients--;
  q->stats.evictions++;
  return 0;
}

static relayd_quota_client_t *create(relayd_quota_t *q, const char *key,
                                     uint64_t now) {
  uint32_t i, h;
  relayd_quota_client_t *c;
  if (q->free_head == NIL && evict(q) != 0)
    return NULL;
  i = q->free_head;
  c = &q->slots[i];
  q->free_head = c->hnext;
  memset(c, 0, sizeof(*c));
  memcpy(c->key, key, strlen(key) + 1);
  c->used = 1;
  c->tokens = q->cfg.burst * 1000;
  c->refill_ms = now;
  c->last_active_ms = now;
  h = hash_key(q, key);
  c->hnext = q->buckets[h];
  q->buckets[h] = i;
  c->prev = c->next = NIL;
  list_push_head(q, IDLE, i);
  q->stats.clients++;
  return c;
}

static relayd_quota_err reject(relayd_quota_t *q, relayd_quota_err e) {
  q->stats.rejected[e]++;
  return e;
}

relayd_quota_err relayd_quota_admit(relayd_quota_t *q, const char *key,
                                    uint64_t now,
                                    relayd_quota_client_t **pclient) {
  relayd_quota_client_t *c;
  int was;
  if (pclient)
    *pclient = NULL;
  if (!key || !*key || strlen(key) >= RELAYD_QUOTA_KEY_MAX)
    return reject(q, RELAYD_QUOTA_BAD_KEY);
  c = relayd_quota_find(q, key);
  if (!c || !is_active(c)) {
    if (q->cfg.max_clients && q->stats.clients_active >= q->cfg.max_clients)
      return reject(q, RELAYD_QUOTA_CLIENTS);
    if (!c && !(c = create(q, key, now)))
      return reject(q, RELAYD_QUOTA_CLIENTS);
  }
  was = is_active(c) ? ACTIVE : IDLE;
  c->attached = 1;
  touch(q, c, was, now);
  if (pclient)
    *pclient = c;
  return RELAYD_QUOTA_OK;
}

void relayd_quota_release(relayd_quota_t *q, relayd_quota_client_t *c) {
  int was;
  if (!c || !c->used || !c->attached)
    return;
  was = is_active(c) ? ACTIVE : IDLE;
  c->attached = 0;
  touch(q, c, was, c->last_active_ms);
}

relayd_quota_err relayd_quota_open(relayd_quota_t *q, relayd_quota_client_t *c,
                                   relayd_quota_kind kind, uint64_t now) {
  const relayd_quota_config_t *k = &q->cfg;
  int was = is_active(c) ? ACTIVE : IDLE;
  if (kind == RELAYD_QUOTA_BIND) {
    if (k->max_binds_per_client && c->binds >= k->max_binds_per_client)
      return reject(q, RELAYD_QUOTA_CLIENT_BINDS);
    if (k->max_binds && q->stats.binds >= k->max_binds)
      return reject(q, RELAYD_QUOTA_BINDS);
    c->binds++;
    q->stats.binds++;
  } else {
    if (k->max_tunnels_per_client && c->tunnels >= k->max_tunnels_per_client)
      return reject(q, RELAYD_QUOTA_CLIENT_TUNNELS);
    if (k->max_tunnels && q->stats.tunnels >= k->max_tunnels)
      return reject(q, RELAYD_QUOTA_TUNNELS);
    c->tunnels++;
    q->stats.tunnels++;
  }
  touch(q, c, was, now);
  return RELAYD_QUOTA_OK;
}

void relayd_quota_close(relayd_quota_t *q, relayd_quota_client_t *c,
                        relayd_quota_kind kind, uint64_t now) {
  int was = is_active(c) ? ACTIVE : IDLE;
  if (kind == RELAYD_QUOTA_BIND && c->binds > 0) {
    c->binds--;
    q->stats.binds--;
  } else if (kind == RELAYD_QUOTA_TUNNEL && c->tunnels > 0) {
    c->tunnels--;
    q->stats.tunnels--;
  }
  touch(q, c, was, now);
}

/* refill adds rate * elapsed to the bucket, up to burst. Tokens are
 * thousandths of bytes, so rate (bytes/s) times milliseconds adds up
 * exactly. */
static void refill(const relayd_quota_t *q, relayd_quota_client_t *c,
                   uint64_t now) {
  uint64_t cap = q->cfg.burst * 1000, dt;
  if (now <= c->refill_ms)
    return;
  dt = now - c->refill_ms;
  c->refill_ms = now;
  if (dt >= cap / q->cfg.rate + 1 || cap - c->tokens <= q->cfg.rate * dt)
    c->tokens = cap;
  else
    c->tokens += q->cfg.rate * dt;
}

int relayd_quota_packet(relayd_quota_t *q, relayd_quota_client_t *c,
                        size_t bytes, uint64_t now) {
  uint64_t need = (uint64_t)bytes * 1000;
  int was = is_active(c) ? ACTIVE : IDLE;
  touch(q, c, was, now);
  if (q->cfg.rate) {
    refill(q, c, now);
    if (c->tokens < need) {
      c->dropped_packets++;
      c->dropped_bytes += bytes;
      q->stats.dropped_packets++;
      q->stats.dropped_bytes += bytes;
      return 1;
    }
    c->tokens -= need;
  }
  c->packets++;
  c->bytes += bytes;
  return 0;
}

uint64_t relayd_quota_idle_ms(const relayd_quota_client_t *c, uint64_t now) {
  return now > c->last_active_ms ? now - c->last_active_ms : 0;
}

size_t relayd_quota_sweep(relayd_quota_t *q, uint64_t now) {
  uint32_t i = q->lists[ACTIVE][TAIL], prev;
  size_t n = 0;
  if (!q->cfg.idle_ms)
    return 0;
  /* The active list is most recent first: walk from the oldest and stop
   * at the first record that is not idle long enough. */
  while (i != NIL) {
    relayd_quota_client_t *c = &q->slots[i];
    prev = c->prev;
    if (relayd_quota_idle_ms(c, now) < q->cfg.idle_ms)
      break;
    if (c->attached && !c->tunnels && !c->binds) {
      c->attached = 0;
      list_unlink(q, ACTIVE, i);
      list_push_tail(q, IDLE, i); /* the oldest go first */
      q->stats.clients_active--;
      n++;
    }
    i = prev;
  }
  return n;
}
