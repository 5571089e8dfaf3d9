/* SPDX-License-Identifier: MIT */
/*
 * The bootstrap cache: a persistent, bounded list of peers that were
 * reachable, most recently seen first, with the direct addresses and relays
 * that worked. An application records every successful connection and, after
 * a restart, turns a cached entry back into a ticket to reconnect without a
 * fresh one. The file is loaded and saved asynchronously on the loop (uv_fs);
 * saves are atomic and coalesce. See doc/bootstrap.md.
 */
#ifndef QPEER_BOOTSTRAP_H
#define QPEER_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>

#include "qpeer/core.h"
#include "qpeer/identity.h"
#include "qpeer/ticket.h"

/** Most entries the cache keeps; the least recently seen are evicted. */
#define QPEER_BOOTSTRAP_MAX_ENTRIES 200
/** Most direct addresses remembered per peer. */
#define QPEER_BOOTSTRAP_MAX_ADDRS QPEER_TICKET_MAX_ADDRS
/** Most relays remembered per peer. */
#define QPEER_BOOTSTRAP_MAX_RELAYS QPEER_TICKET_MAX_RELAYS
/** Largest cache file that is read (1 MiB); a larger one is corrupted. */
#define QPEER_BOOTSTRAP_FILE_MAX (1024 * 1024)

/** The kind of path the last successful connection used. */
typedef enum {
  QPEER_BOOTSTRAP_PATH_UNKNOWN = 0, /* not recorded */
  QPEER_BOOTSTRAP_PATH_DIRECT = 1,  /* a direct (hole-punched) path */
  QPEER_BOOTSTRAP_PATH_RELAY = 2    /* through a relay */
} qpeer_bootstrap_path;

/** One cached peer, by value. Entries are owned by the cache; the API hands
 * out borrowed const pointers (see qpeer_bootstrap_lookup). */
typedef struct qpeer_bootstrap_entry_s {
  qpeer_peer_id_t peer_id; /* the peer; unique within a cache */
  size_t naddrs;           /* entries used in |addrs| */
  /* Last known direct addresses, most recently confirmed first. */
  qpeer_ticket_addr_t addrs[QPEER_BOOTSTRAP_MAX_ADDRS];
  size_t nrelays; /* entries used in |relays| */
  /* Relays the peer was reachable through, most recently confirmed first. */
  qpeer_ticket_relay_t relays[QPEER_BOOTSTRAP_MAX_RELAYS];
  uint64_t last_seen;             /* Unix time (seconds) of the last success */
  qpeer_bootstrap_path last_path; /* path kind of the last success */
  uint32_t successes; /* successful connections recorded (saturating) */
} qpeer_bootstrap_entry_t;

typedef struct qpeer_bootstrap_s qpeer_bootstrap_t;
typedef struct qpeer_bootstrap_load_s qpeer_bootstrap_load_t;
typedef struct qpeer_bootstrap_save_s qpeer_bootstrap_save_t;

/**
 * `qpeer_bootstrap_load_cb` is called exactly once per accepted
 * qpeer_bootstrap_load(), on a later loop iteration. |status| is 0 when the
 * file was read (or did not exist: |req|->missing is set), otherwise as
 * listed at qpeer_bootstrap_load. Whatever |status|, the cache is usable
 * when this runs.
 */
typedef void (*qpeer_bootstrap_load_cb)(qpeer_bootstrap_load_t *req,
                                        int status);

/**
 * `qpeer_bootstrap_save_cb` is called exactly once per accepted
 * qpeer_bootstrap_save(), on a later loop iteration, once a file holding
 * every change made before the request was renamed into place (|status| 0)
 * or the write failed.
 */
typedef void (*qpeer_bootstrap_save_cb)(qpeer_bootstrap_save_t *req,
                                        int status);

/** A bootstrap cache. Allocated by the caller, not movable; initialise it
 * with qpeer_bootstrap_init and release it with qpeer_bootstrap_free. */
struct qpeer_bootstrap_s {
  /* public */
  void *data; /* for the user */
  /* read-only */
  uv_loop_t *loop; /* loop that runs the file I/O */
  /* private */
  void *impl;        /* entries, file path and I/O state */
  void *reserved[4]; /* for later versions */
};

/** A load request. Allocated by the caller; keep it alive until its
 * callback has run. |handle| points at the cache. */
struct qpeer_bootstrap_load_s {
  QPEER_REQ_FIELDS
  /* read-only, set when the callback runs */
  int missing;    /* nonzero: there was no cache file (status 0) */
  int corrupt;    /* nonzero: the file was corrupted and was ignored */
  size_t nloaded; /* entries taken from the file */
  /* private */
  qpeer_bootstrap_load_cb cb; /* completion callback */
};

/** A save request. Allocated by the caller; keep it alive until its
 * callback has run. |handle| points at the cache. */
struct qpeer_bootstrap_save_s {
  QPEER_REQ_FIELDS
  /* private */
  qpeer_bootstrap_save_cb cb;          /* completion callback */
  struct qpeer_bootstrap_save_s *next; /* queue of coalesced requests */
};

/**
 * `qpeer_bootstrap_init` initialises the empty cache |bc| backed by the file
 * at |path| (copied), whose I/O will run on |loop|. Nothing is read until
 * qpeer_bootstrap_load (or _load_sync). The temporary files of saves are
 * "<path>.tmp.XXXXXX" in the same directory. |bc|->data is left as it is.
 * Returns 0 or one of:
 *  - UV_EINVAL: NULL argument or empty |path|;
 *  - UV_ENOMEM.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_bootstrap_init(uv_loop_t *loop, qpeer_bootstrap_t *bc,
                                      const char *path);

/**
 * `qpeer_bootstrap_free` releases everything |bc| holds. It refuses while a
 * load or save is in flight: run the loop until their callbacks have run.
 * Unsaved changes are dropped. Returns 0, UV_EINVAL (NULL or uninitialised
 * |bc|) or UV_EBUSY (nothing released).
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_bootstrap_free(qpeer_bootstrap_t *bc);

/**
 * `qpeer_bootstrap_load` reads the cache file asynchronously and calls |cb|
 * exactly once, never from inside this call. The entries read are merged
 * behind those already in memory (which are more recent; for a peer in
 * both, the in-memory entry wins), up to QPEER_BOOTSTRAP_MAX_ENTRIES. Saves
 * requested while the load runs wait for it, so they never overwrite the
 * file before it was read. The status given to |cb| is 0 (also for a
 * missing file, with |req|->missing set), or one of:
 *  - QPEER_EBOOTSTRAP or QPEER_EUNSUPPORTED (a file of another format
 *    version): the file is corrupted; |req|->corrupt is set, the file is
 *    ignored (the cache keeps only what it held), and the next save
 *    rewrites it;
 *  - a file-system error (UV_EACCES, UV_EISDIR, UV_EIO, ...) or UV_ENOMEM:
 *    the file is ignored as well.
 * Returns 0 (|cb| will run) or one of (|cb| will not run):
 *  - UV_EINVAL: NULL argument or uninitialised |bc|;
 *  - UV_EBUSY: a load is already in flight;
 *  - a libuv error from starting the first file operation.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_bootstrap_load(qpeer_bootstrap_t *bc,
                                      qpeer_bootstrap_load_t *req,
                                      qpeer_bootstrap_load_cb cb);

/**
 * `qpeer_bootstrap_save` writes the cache to its file asynchronously and
 * atomically: a temporary file in the same directory, mode 0600, written in
 * full, fsync, rename over the file, then fsync of the directory (best
 * effort). Readers see the old file or the new one, never a mix. One write
 * is in flight at a time: a request made meanwhile waits, and every request
 * waiting is served by the same next write, which holds every change made
 * before it started (requests coalesce). |cb| runs exactly once, never from
 * inside this call, with 0 or a file-system error or UV_ENOMEM (the old file
 * is then untouched and no temporary file is left). Returns 0 (|cb| will
 * run) or one of (|cb| will not run):
 *  - UV_EINVAL: NULL argument or uninitialised |bc|;
 *  - UV_ENOMEM, or a libuv error from starting the first file operation.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_bootstrap_save(qpeer_bootstrap_t *bc,
                                      qpeer_bootstrap_save_t *req,
                                      qpeer_bootstrap_save_cb cb);

/**
 * `qpeer_bootstrap_load_sync` is the blocking form of qpeer_bootstrap_load,
 * for command-line tools and start-up code; it must not be used while an
 * asynchronous load or save of |bc| is in flight. |*pcorrupt| (if not NULL)
 * is set to nonzero when the file was corrupted and ignored. Returns 0 (a
 * missing file included), UV_EINVAL, UV_EBUSY, or an error as listed for
 * the load callback.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_bootstrap_load_sync(qpeer_bootstrap_t *bc,
                                           int *pcorrupt);

/**
 * `qpeer_bootstrap_save_sync` is the blocking form of qpeer_bootstrap_save,
 * with the same atomic write; it must not be used while an asynchronous
 * load or save of |bc| is in flight. Returns 0, UV_EINVAL, UV_EBUSY,
 * UV_ENOMEM or a file-system error.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_bootstrap_save_sync(qpeer_bootstrap_t *bc);

/**
 * `qpeer_bootstrap_update` records a successful connection to the peer
 * |seen|->peer_id over a path of kind |path|, at |now| (Unix seconds; 0
 * means the current time). The peer's entry is created if needed and moved
 * to the front. Its addresses become those of |seen| (in order; put the one
 * that worked first), followed by the ones it had that |seen| lacks, up to
 * QPEER_BOOTSTRAP_MAX_ADDRS; relays merge the same way. Its success count
 * goes up by one (saturating), |last_seen| becomes |now| and |last_path|
 * becomes |path|. A 201st peer evicts the least recently seen one. Only
 * memory changes; call qpeer_bootstrap_save to persist. Borrowed entry
 * pointers are invalidated. Returns 0 or one of:
 *  - UV_EINVAL: NULL argument, uninitialised |bc|, an unknown |path|, or
 *    |seen| holds an entry the ticket helpers would refuse (see
 *    qpeer_ticket_add_typed_addr and qpeer_ticket_add_relay);
 *  - UV_ENOMEM.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_bootstrap_update(qpeer_bootstrap_t *bc,
                                        const qpeer_ticket_t *seen,
                                        qpeer_bootstrap_path path,
                                        uint64_t now);

/**
 * `qpeer_bootstrap_remove` forgets the peer |pid| (memory only). Borrowed
 * entry pointers are invalidated. Returns 0, UV_EINVAL or UV_ENOENT.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_bootstrap_remove(qpeer_bootstrap_t *bc,
                                        const qpeer_peer_id_t *pid);

/**
 * `qpeer_bootstrap_lookup` returns the entry of peer |pid|, or NULL when
 * there is none (or an argument is NULL). The order is not changed. The
 * entry is borrowed: valid until the next qpeer_bootstrap_update, _remove,
 * _free, or load completion on |bc|.
 *
 * Added in 0.1.
 */
QPEER_EXTERN const qpeer_bootstrap_entry_t *
qpeer_bootstrap_lookup(const qpeer_bootstrap_t *bc, const qpeer_peer_id_t *pid);

/**
 * `qpeer_bootstrap_to_ticket` fills |*t| with a ticket for peer |pid| from
 * its cached entry: peer ID, addresses, relays, and |last_seen| as the
 * creation time. |*t| is written only on success. Returns 0, UV_EINVAL, or
 * UV_ENOENT when |pid| is not cached.
 *
 * Added in 0.1.
 */
QPEER_EXTERN int qpeer_bootstrap_to_ticket(const qpeer_bootstrap_t *bc,
                                           const qpeer_peer_id_t *pid,
                                           qpeer_ticket_t *t);

/**
 * `qpeer_bootstrap_next` iterates over the entries, most recently seen
 * first: NULL |prev| gives the first entry, an entry gives the one after
 * it; NULL marks the end. |prev| must be an entry of |bc| obtained since
 * the last change (see qpeer_bootstrap_lookup for lifetimes).
 *
 * Added in 0.1.
 */
QPEER_EXTERN const qpeer_bootstrap_entry_t *
qpeer_bootstrap_next(const qpeer_bootstrap_t *bc,
                     const qpeer_bootstrap_entry_t *prev);

/** `qpeer_bootstrap_count` returns the number of entries (0 for NULL).
 *
 * Added in 0.1.
 */
QPEER_EXTERN size_t qpeer_bootstrap_count(const qpeer_bootstrap_t *bc);

#endif /* QPEER_BOOTSTRAP_H */
