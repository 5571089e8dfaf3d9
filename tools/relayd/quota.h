/* SPDX-License-Identifier: MIT */
/*
 * Client quotas of qpeer-relay (pure, sans-I/O: every call takes `now` in
 * milliseconds): a token bucket per client for bandwidth, counters of
 * open tunnels and bindings per client and in total, and global caps.
 *
 * Client records live in a table of fixed size allocated once. A record
 * is active while the client is admitted (relayd_quota_admit until
 * relayd_quota_release) or has sessions open; inactive records stay for
 * their counters and are evicted least recently used first when a new
 * client needs room. Active records are never evicted: when every record
 * is active, new clients are refused (RELAYD_QUOTA_CLIENTS).
 *
 * A limit of 0 means "no limit" throughout.
 */
#ifndef QPEER_RELAYD_QUOTA_H
#define QPEER_RELAYD_QUOTA_H

#include <stddef.h>
#include <stdint.h>

/* Longest client key, plus NUL. */
#define RELAYD_QUOTA_KEY_MAX 192
/* Largest table and largest rate or burst (bytes) accepted. */
#define RELAYD_QUOTA_MAX_TABLE (1u << 22)
#define RELAYD_QUOTA_MAX_BYTES ((uint64_t)1 << 40)

/* Results: XX(enum suffix, name, HTTP status). */
#define RELAYD_QUOTA_ERR_MAP(XX)                                               \
  XX(OK, "ok", 200)                                                            \
  XX(CLIENT_TUNNELS, "quota_client_tunnels", 429)                              \
  XX(CLIENT_BINDS, "quota_client_binds", 429)                                  \
  XX(TUNNELS, "capacity_tunnels", 503)                                         \
  XX(BINDS, "capacity_binds", 503)                                             \
  XX(CLIENTS, "capacity_clients", 503)                                         \
  XX(BAD_KEY, "quota_bad_key", 400)

/* clang-format off */
typedef enum {
#define RELAYD_QUOTA_ERR_ENUM(e, n, s) RELAYD_QUOTA_##e,
  RELAYD_QUOTA_ERR_MAP(RELAYD_QUOTA_ERR_ENUM)
#undef RELAYD_QUOTA_ERR_ENUM
  RELAYD_QUOTA__COUNT
} relayd_quota_err;
/* clang-format on */

/* Session kinds. */
typedef enum {
  RELAYD_QUOTA_TUNNEL = 1,
  RELAYD_QUOTA_BIND = 2
} relayd_quota_kind;

/* Limits. */
typedef struct relayd_quota_config_s {
  uint64_t rate;                   /* bytes/s per client, both directions */
  uint64_t burst;                  /* bucket size, bytes (0: = rate) */
  uint32_t max_tunnels_per_client; /* open tunnels per client */
  uint32_t max_binds_per_client;   /* open bindings per client */
  uint32_t max_clients;            /* active clients */
  uint32_t max_tunnels;            /* open tunnels in total */
  uint32_t max_binds;              /* open bindings in total */
  uint64_t idle_ms;                /* admitted but silent this long: idle */
  uint32_t table_size;             /* records kept (required, >= 1) */
  uint64_t seed;                   /* hash seed (use a random one) */
} relayd_quota_config_t;

/* A client record. Fields are read-only for users; the pointer stays
 * valid while the record is active. */
typedef struct relayd_quota_client_s {
  char key[RELAYD_QUOTA_KEY_MAX]; /* the client's key */
  uint32_t tunnels;               /* open tunnels */
  uint32_t binds;                 /* open bindings */
  int attached;                   /* admitted and not released */
  uint64_t tokens;                /* bucket level, in 1/1000 bytes */
  uint64_t refill_ms;             /* time of the last refill */
  uint64_t last_active_ms;        /* last admit, open or packet */
  uint64_t packets;               /* packets passed */
  uint64_t bytes;                 /* their bytes */
  uint64_t dropped_packets;       /* packets over the rate */
  uint64_t dropped_bytes;         /* their bytes */
  /* private */
  uint32_t hnext;      /* next in the hash chain */
  uint32_t prev, next; /* links in the active or idle list */
  int used;            /* slot holds a record */
} relayd_quota_client_t;

/* Totals. */
typedef struct relayd_quota_stats_s {
  uint32_t clients;                       /* records in the table */
  uint32_t clients_active;                /* active records */
  uint32_t tunnels;                       /* open tunnels */
  uint32_t binds;                         /* open bindings */
  uint64_t evictions;                     /* idle records evicted */
  uint64_t dropped_packets;               /* packets over a client's rate */
  uint64_t dropped_bytes;                 /* their bytes */
  uint64_t rejected[RELAYD_QUOTA__COUNT]; /* refusals by reason */
} relayd_quota_stats_t;

typedef struct relayd_quota_s {
  relayd_quota_config_t cfg;    /* limits (copied) */
  relayd_quota_client_t *slots; /* cfg.table_size records */
  uint32_t *buckets;            /* hash heads (slot index or NIL) */
  uint32_t nbuckets;            /* a power of two */
  uint32_t free_head;           /* unused slots (chained by hnext) */
  uint32_t lists[2][2];         /* [idle, active][head, tail]: both
                                   ordered most recently used first */
  relayd_quota_stats_t stats;   /* totals */
} relayd_quota_t;

/* relayd_quota_init allocates the table for |cfg| (copied). Returns 0, or
 * -1 for a bad configuration or no memory. */
int relayd_quota_init(relayd_quota_t *q, const relayd_quota_config_t *cfg);

/* relayd_quota_free releases the table. */
void relayd_quota_free(relayd_quota_t *q);

/* relayd_quota_err_name returns the result's name ("capacity_clients"). */
const char *relayd_quota_err_name(relayd_quota_err err);

/* relayd_quota_err_status returns its HTTP status (429 per client, 503
 * for relay capacity). */
int relayd_quota_err_status(relayd_quota_err err);

/* relayd_quota_find returns the record of |key|, or NULL. */
relayd_quota_client_t *relayd_quota_find(relayd_quota_t *q, const char *key);

/*
 * relayd_quota_admit finds or creates the record of |key| and marks it
 * attached (active). A client that is not active yet is refused with
 * RELAYD_QUOTA_CLIENTS when max_clients are active or every record is.
 * On success *pclient (may be NULL) is the record. Returns RELAYD_QUOTA_OK,
 * _CLIENTS or _BAD_KEY (empty or too long).
 */
relayd_quota_err relayd_quota_admit(relayd_quota_t *q, const char *key,
                                    uint64_t now,
                                    relayd_quota_client_t **pclient);

/* relayd_quota_release detaches |c|; with no session open it becomes
 * idle and may be evicted. */
void relayd_quota_release(relayd_quota_t *q, relayd_quota_client_t *c);

/* relayd_quota_open counts a new session of |kind| for |c| if the
 * per-client and global limits allow it. Returns RELAYD_QUOTA_OK,
 * _CLIENT_TUNNELS, _CLIENT_BINDS, _TUNNELS or _BINDS. */
relayd_quota_err relayd_quota_open(relayd_quota_t *q, relayd_quota_client_t *c,
                                   relayd_quota_kind kind, uint64_t now);

/* relayd_quota_close uncounts a session opened with relayd_quota_open. */
void relayd_quota_close(relayd_quota_t *q, relayd_quota_client_t *c,
                        relayd_quota_kind kind, uint64_t now);

/* relayd_quota_packet charges |bytes| to |c|'s bucket. Returns 0 to pass
 * the packet, 1 to drop it (counted). */
int relayd_quota_packet(relayd_quota_t *q, relayd_quota_client_t *c,
                        size_t bytes, uint64_t now);

/* relayd_quota_idle_ms returns how long |c| has been silent. */
uint64_t relayd_quota_idle_ms(const relayd_quota_client_t *c, uint64_t now);

/* relayd_quota_sweep detaches attached clients that have no session open
 * and have been silent for idle_ms (a safety net for lost releases).
 * Returns how many it detached. */
size_t relayd_quota_sweep(relayd_quota_t *q, uint64_t now);

#endif /* QPEER_RELAYD_QUOTA_H */
