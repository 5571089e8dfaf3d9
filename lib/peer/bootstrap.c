/* SPDX-License-Identifier: MIT */
/*
 * The bootstrap cache object (include/qpeer/bootstrap.h). Divisions, in
 * order: the in-memory list (nodes, most recently seen first, at most
 * QPEER_BOOTSTRAP_MAX_ENTRIES); init, free and the entry API; applying a
 * file's bytes to the list; the asynchronous load (uv_fs open, fstat, read,
 * close); the asynchronous save (encode a snapshot, then uv_fs mkstemp,
 * fchmod, write, fsync, close, rename, fsync of the directory), with its
 * queue of coalescing requests; the blocking variants. The file format is
 * in bootstrap_fmt.c.
 */
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "peer/bootstrap.h"
#include "peer/bootstrap_fmt.h"

/* Suffix of the temporary file of a save (uv_fs_mkstemp template). */
#define TMP_SUFFIX ".tmp.XXXXXX"

/* A cached peer: its entry and its place in the list. */
typedef struct {
  qpeer__list link;              /* in bootstrap_impl.entries */
  qpeer_bootstrap_entry_t entry; /* the peer; handed out borrowed */
} bootstrap_node;

/* Everything behind qpeer_bootstrap_t.impl. */
typedef struct {
  qpeer_bootstrap_t *bc; /* the public object, for its loop */
  qpeer__list entries;   /* bootstrap_node, most recently seen first */
  size_t count;          /* nodes in |entries| */
  char *path;            /* the cache file */
  char *tmpl;            /* "<path>.tmp.XXXXXX" */
  char *dir;             /* directory of |path|, synced after a rename */
  unsigned long writes;  /* file writes finished (see the internal API) */

  qpeer_bootstrap_load_t *load_req; /* the load in flight, or NULL */
  uv_fs_t load_fs;                  /* current step of that load */
  uv_file load_fd;                  /* the open cache file, or -1 */
  uint8_t *load_buf;                /* file contents read so far */
  size_t load_len;                  /* bytes in |load_buf| */
  size_t load_cap;                  /* size of |load_buf| */
  int load_status;                  /* outcome, once the file is closed */

  qpeer_bootstrap_save_t *save_active; /* requests the running write serves */
  qpeer_bootstrap_save_t *save_wait;   /* requests for the next write */
  qpeer_bootstrap_save_t **save_tail;  /* where the next waiter links */
  uv_fs_t save_fs;                     /* current step of the write */
  uv_file save_fd;                     /* the temporary file, or -1 */
  uv_file dir_fd;                      /* the directory, or -1 */
  char *save_tmp;                      /* temporary file name */
  int save_tmp_live;                   /* |save_tmp| exists on disk */
  uint8_t *save_buf;                   /* encoded snapshot */
  size_t save_len;                     /* bytes in |save_buf| */
  size_t save_off;                     /* bytes written so far */
  int save_status;                     /* first error of the write */
} bootstrap_impl;

/* ---- The list --------------------------------------------------------- */

static bootstrap_impl *impl_of(const qpeer_bootstrap_t *bc) {
  bootstrap_impl *im = bc ? bc->impl : NULL;
  return im && im->bc == bc ? im : NULL;
}

static bootstrap_node *node_of(qpeer__list *l) {
  return QPEER__CONTAINER_OF(l, bootstrap_node, link);
}

/* find returns the node of |pid|, or NULL. A linear scan: at most 200
 * entries, and lookups happen per connection, not per packet. */
static bootstrap_node *find(const bootstrap_impl *im,
                            const qpeer_peer_id_t *pid) {
  qpeer__list *l;
  for (l = im->entries.next; l != &im->entries; l = l->next)
    if (qpeer_peer_id_equal(&node_of(l)->entry.peer_id, pid))
      return node_of(l);
  return NULL;
}

/* push_front links |n| (unlinked) as the most recent entry. */
static void push_front(bootstrap_impl *im, bootstrap_node *n) {
  qpeer__list_insert_tail(im->entries.next, &n->link);
}

/* evict drops the least recent entries beyond the limit. */
static void evict(bootstrap_impl *im) {
  while (im->count > QPEER_BOOTSTRAP_MAX_ENTRIES) {
    bootstrap_node *n = node_of(im->entries.prev);
    qpeer__list_remove(&n->link);
    qpeer__free(n);
    im->count--;
  }
}

static void free_list(qpeer__list *head) {
  while (!qpeer__list_empty(head)) {
    bootstrap_node *n = node_of(head->next);
    qpeer__list_remove(&n->link);
    qpeer__free(n);
  }
}

static int busy(const bootstrap_impl *im) {
  return im->load_req || im->save_active || im->save_wait;
}

/* ---- Init, free and the entry API ------------------------------------- */

/* dir_of returns a copy of the directory part of |path| ("." if none). */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    return qpeer__strdup(".");
  return qpeer__strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

int qpeer_bootstrap_init(uv_loop_t *loop, qpeer_bootstrap_t *bc,
                         const char *path) {
  bootstrap_impl *im;
  size_t plen;
  void *data;

  if (!loop || !bc || !path || !*path)
    return UV_EINVAL;
  data = bc->data; /* the user's, possibly set before init */
  memset(bc, 0, sizeof(*bc));
  bc->data = data;
  im = qpeer__calloc(1, sizeof(*im));
  if (!im)
    return UV_ENOMEM;
  plen = strlen(path);
  im->path = qpeer__strdup(path);
  im->tmpl = qpeer__malloc(plen + sizeof(TMP_SUFFIX));
  im->dir = dir_of(path);
  if (!im->path || !im->tmpl || !im->dir) {
    qpeer__free(im->path);
    qpeer__free(im->tmpl);
    qpeer__free(im->dir);
    qpeer__free(im);
    return UV_ENOMEM;
  }
  memcpy(im->tmpl, path, plen);
  memcpy(im->tmpl + plen, TMP_SUFFIX, sizeof(TMP_SUFFIX));
  qpeer__list_init(&im->entries);
  im->bc = bc;
  im->load_fd = -1;
  im->save_fd = -1;
  im->dir_fd = -1;
  im->save_tail = &im->save_wait;
  bc->loop = loop;
  bc->impl = im;
  return 0;
}

int qpeer_bootstrap_free(qpeer_bootstrap_t *bc) {
  bootstrap_impl *im = impl_of(bc);

  if (!im)
    return UV_EINVAL;
  if (busy(im))
    return UV_EBUSY;
  free_list(&im->entries);
  qpeer__free(im->path);
  qpeer__free(im->tmpl);
  qpeer__free(im->dir);
  qpeer__free(im);
  bc->impl = NULL;
  return 0;
}

/* merge_entry builds in |*t| the addresses and relays of |seen| followed by
 * those of |old| (may be NULL) that |seen| lacks, up to the limits.
 * Returns 0 or UV_EINVAL when |seen| holds something invalid. */
static int merge_entry(qpeer_ticket_t *t, const qpeer_ticket_t *seen,
                       const qpeer_bootstrap_entry_t *old) {
  size_t i;

  qpeer_ticket_init(t);
  if (seen->naddrs > QPEER_BOOTSTRAP_MAX_ADDRS ||
      seen->nrelays > QPEER_BOOTSTRAP_MAX_RELAYS)
    return UV_EINVAL;
  for (i = 0; i < seen->naddrs; i++)
    if (qpeer_ticket_add_typed_addr(
            t, (const struct sockaddr *)&seen->addrs[i].addr,
            seen->addrs[i].type) != 0)
      return UV_EINVAL;
  for (i = 0; i < seen->nrelays; i++)
    if (qpeer__bootstrap_add_relay(t, &seen->relays[i]) != 0)
      return UV_EINVAL;
  /* Older entries were valid when stored; UV_ENOSPC just means full. */
  for (i = 0; old && i < old->naddrs; i++)
    (void)qpeer_ticket_add_typed_addr(
        t, (const struct sockaddr *)&old->addrs[i].addr, old->addrs[i].type);
  for (i = 0; old && i < old->nrelays; i++)
    (void)qpeer__bootstrap_add_relay(t, &old->relays[i]);
  return 0;
}

int qpeer_bootstrap_update(qpeer_bootstrap_t *bc, const qpeer_ticket_t *seen,
                           qpeer_bootstrap_path path, uint64_t now) {
  bootstrap_impl *im = impl_of(bc);
  bootstrap_node *n;
  qpeer_ticket_t merged;
  uv_timeval64_t tv;
  int r;

  if (!im || !seen || (unsigned)path > QPEER_BOOTSTRAP_PATH_RELAY)
    return UV_EINVAL;
  n = find(im, &seen->peer_id);
  r = merge_entry(&merged, seen, n ? &n->entry : NULL);
  if (r != 0)
    return r;
  if (now == 0) {
    r = uv_gettimeofday(&tv);
    if (r != 0)
      return r;
    now = tv.tv_sec > 0 ? (uint64_t)tv.tv_sec : 0;
  }
  if (n) {
    qpeer__list_remove(&n->link);
  } else {
    n = qpeer__calloc(1, sizeof(*n));
    if (!n)
      return UV_ENOMEM;
    n->entry.peer_id = seen->peer_id;
    im->count++;
  }
  n->entry.naddrs = merged.naddrs;
  memcpy(n->entry.addrs, merged.addrs, sizeof(n->entry.addrs));
  n->entry.nrelays = merged.nrelays;
  memcpy(n->entry.relays, merged.relays, sizeof(n->entry.relays));
  n->entry.last_seen = now;
  n->entry.last_path = path;
  if (n->entry.successes < UINT32_MAX)
    n->entry.successes++;
  push_front(im, n);
  evict(im);
  return 0;
}

int qpeer_bootstrap_remove(qpeer_bootstrap_t *bc, const qpeer_peer_id_t *pid) {
  bootstrap_impl *im = impl_of(bc);
  bootstrap_node *n;

  if (!im || !pid)
    return UV_EINVAL;
  n = find(im, pid);
  if (!n)
    return UV_ENOENT;
  qpeer__list_remove(&n->link);
  qpeer__free(n);
  im->count--;
  return 0;
}

const qpeer_bootstrap_entry_t *
qpeer_bootstrap_lookup(const qpeer_bootstrap_t *bc,
                       const qpeer_peer_id_t *pid) {
  bootstrap_impl *im = impl_of(bc);
  bootstrap_node *n;

  if (!im || !pid)
    return NULL;
  n = find(im, pid);
  return n ? &n->entry : NULL;
}

int qpeer_bootstrap_to_ticket(const qpeer_bootstrap_t *bc,
                              const qpeer_peer_id_t *pid, qpeer_ticket_t *t) {
  const qpeer_bootstrap_entry_t *e;

  if (!impl_of(bc) || !pid || !t)
    return UV_EINVAL;
  e = qpeer_bootstrap_lookup(bc, pid);
  if (!e)
    return UV_ENOENT;
  qpeer_ticket_init(t);
  t->peer_id = e->peer_id;
  t->naddrs = e->naddrs;
  memcpy(t->addrs, e->addrs, sizeof(t->addrs));
  t->nrelays = e->nrelays;
  memcpy(t->relays, e->relays, sizeof(t->relays));
  t->created = e->last_seen;
  return 0;
}

const qpeer_bootstrap_entry_t *
qpeer_bootstrap_next(const qpeer_bootstrap_t *bc,
                     const qpeer_bootstrap_entry_t *prev) {
  bootstrap_impl *im = impl_of(bc);
  qpeer__list *l;

  if (!im)
    return NULL;
  if (!prev) {
    l = im->entries.next;
  } else {
    const bootstrap_node *n =
        (const bootstrap_node *)((const char *)prev -
                                 offsetof(bootstrap_node, entry));
    l = n->link.next;
  }
  return l == &im->entries ? NULL : &node_of(l)->entry;
}

size_t qpeer_bootstrap_count(const qpeer_bootstrap_t *bc) {
  bootstrap_impl *im = impl_of(bc);
  return im ? im->count : 0;
}

unsigned long qpeer__bootstrap_write_count(const qpeer_bootstrap_t *bc) {
  bootstrap_impl *im = impl_of(bc);
  return im ? im->writes : 0;
}

/* ---- Applying a file -------------------------------------------------- */

/* State of one merge of decoded entries. */
typedef struct {
  bootstrap_impl *im; /* the cache */
  qpeer__list fresh;  /* nodes made from the file, in file order */
  size_t n;           /* nodes in |fresh| */
} merge_ctx;

/* merge_one takes a decoded entry unless memory already holds that peer
 * (memory is more recent) or the cache would overflow. */
static int merge_one(void *arg, const qpeer_bootstrap_entry_t *e) {
  merge_ctx *m = arg;
  bootstrap_node *n;

  if (m->im->count + m->n >= QPEER_BOOTSTRAP_MAX_ENTRIES ||
      find(m->im, &e->peer_id))
    return 0;
  n = qpeer__malloc(sizeof(*n));
  if (!n)
    return UV_ENOMEM;
  n->entry = *e;
  qpeer__list_insert_tail(&m->fresh, &n->link);
  m->n++;
  return 0;
}

/* apply_file merges the |len| bytes at |buf| behind the entries in memory,
 * all or nothing, and sets |*pn| to the number taken. Returns 0, UV_ENOMEM
 * or a decoder error (QPEER_EBOOTSTRAP, QPEER_EUNSUPPORTED). */
static int apply_file(bootstrap_impl *im, const uint8_t *buf, size_t len,
                      size_t *pn) {
  merge_ctx m;
  int r;

  m.im = im;
  m.n = 0;
  qpeer__list_init(&m.fresh);
  r = qpeer__bootstrap_fmt_decode(buf, len, merge_one, &m);
  if (r != 0) {
    free_list(&m.fresh);
    return r;
  }
  while (!qpeer__list_empty(&m.fresh)) {
    qpeer__list *l = m.fresh.next;
    qpeer__list_remove(l);
    qpeer__list_insert_tail(&im->entries, l);
  }
  im->count += m.n;
  *pn = m.n;
  return 0;
}

/* check_stat returns 0 when the opened cache file may be read: a regular
 * file no larger than QPEER_BOOTSTRAP_FILE_MAX. */
static int check_stat(const uv_stat_t *st) {
  if (S_ISDIR(st->st_mode))
    return UV_EISDIR;
  if (!S_ISREG(st->st_mode) || st->st_size > QPEER_BOOTSTRAP_FILE_MAX)
    return QPEER_EBOOTSTRAP;
  return 0;
}

/* is_corrupt says whether a load ended on a corrupted file, and logs it. */
static int is_corrupt(const bootstrap_impl *im, int status) {
  if (status != QPEER_EBOOTSTRAP && status != QPEER_EUNSUPPORTED)
    return 0;
  qpeer__log(QPEER_LOG_WARN,
             "bootstrap cache %s is corrupted (%s); ignoring it, the next "
             "save rewrites it",
             im->path, qpeer_err_name(status));
  return 1;
}

/* ---- Asynchronous save ------------------------------------------------ */

static void on_save_mkstemp(uv_fs_t *fs);

/* encode_snapshot encodes every entry into a fresh buffer. Returns 0,
 * UV_ENOMEM, or (a bug) an encoder error. */
static int encode_snapshot(bootstrap_impl *im, uint8_t **pbuf, size_t *plen) {
  qpeer__bootstrap_enc enc;
  size_t cap = QPEER__BOOTSTRAP_FMT_MAX_LEN(im->count);
  qpeer__list *l;
  uint8_t *buf;
  int r = 0;

  buf = qpeer__malloc(cap);
  if (!buf)
    return UV_ENOMEM;
  qpeer__bootstrap_enc_init(&enc, buf, cap);
  for (l = im->entries.next; l != &im->entries && r == 0; l = l->next)
    r = qpeer__bootstrap_enc_add(&enc, &node_of(l)->entry);
  if (r == 0)
    r = qpeer__bootstrap_enc_finish(&enc);
  if (r < 0) {
    qpeer__free(buf);
    return r;
  }
  *pbuf = buf;
  *plen = (size_t)r;
  return 0;
}

/* save_begin encodes a snapshot and starts the write. Returns 0 or the
 * error that kept it from starting (nothing is left behind). */
static int save_begin(bootstrap_impl *im) {
  int r;

  im->save_off = 0;
  im->save_status = 0;
  im->save_tmp_live = 0;
  im->save_tmp = qpeer__strdup(im->tmpl);
  if (!im->save_tmp)
    return UV_ENOMEM;
  r = encode_snapshot(im, &im->save_buf, &im->save_len);
  if (r == 0)
    r = uv_fs_mkstemp(im->bc->loop, &im->save_fs, im->tmpl, on_save_mkstemp);
  if (r != 0) {
    qpeer__free(im->save_buf);
    qpeer__free(im->save_tmp);
    im->save_buf = NULL;
    im->save_tmp = NULL;
  }
  return r;
}

/* save_kick starts the next write when requests wait and neither a write
 * nor a load runs. If it cannot start, it returns the requests it took
 * (to be completed with |*perr|); otherwise NULL. */
static qpeer_bootstrap_save_t *save_kick(bootstrap_impl *im, int *perr) {
  qpeer_bootstrap_save_t *failed;
  int r;

  if (im->save_active || !im->save_wait || im->load_req)
    return NULL;
  im->save_active = im->save_wait;
  im->save_wait = NULL;
  im->save_tail = &im->save_wait;
  r = save_begin(im);
  if (r == 0)
    return NULL;
  failed = im->save_active;
  im->save_active = NULL;
  *perr = r;
  return failed;
}

/* save_deliver completes every request of |list| with |status|. It touches
 * only the requests: a callback may free the cache. */
static void save_deliver(qpeer_bootstrap_save_t *list, int status) {
  while (list) {
    qpeer_bootstrap_save_t *next = list->next;
    list->next = NULL;
    list->cb(list, status);
    list = next;
  }
}

/* save_finish ends the running write with |status|, starts the next one
 * if requests wait, then runs the callbacks. */
static void save_finish(bootstrap_impl *im, int status) {
  qpeer_bootstrap_save_t *done = im->save_active, *failed;
  int err = 0;

  qpeer__free(im->save_buf);
  qpeer__free(im->save_tmp);
  im->save_buf = NULL;
  im->save_tmp = NULL;
  im->save_active = NULL;
  im->writes++;
  if (status != 0)
    qpeer__log(QPEER_LOG_WARN, "bootstrap cache %s: save failed: %s", im->path,
               qpeer_err_name(status));
  failed = save_kick(im, &err);
  save_deliver(done, status);
  save_deliver(failed, err);
}

static bootstrap_impl *save_impl(uv_fs_t *fs) {
  return QPEER__CONTAINER_OF(fs, bootstrap_impl, save_fs);
}

static void on_save_abort_step(uv_fs_t *fs);

/* save_abort cleans up after a failed step, one operation at a time: close
 * the temporary file, unlink it, then finish with the first error. */
static void save_abort(bootstrap_impl *im, int err) {
  uv_file fd;

  if (im->save_status == 0)
    im->save_status = err;
  if (im->save_fd >= 0) {
    fd = im->save_fd;
    im->save_fd = -1;
    if (uv_fs_close(im->bc->loop, &im->save_fs, fd, on_save_abort_step) == 0)
      return;
  }
  if (im->save_tmp_live) {
    im->save_tmp_live = 0;
    if (uv_fs_unlink(im->bc->loop, &im->save_fs, im->save_tmp,
                     on_save_abort_step) == 0)
      return;
  }
  save_finish(im, im->save_status);
}

static void on_save_abort_step(uv_fs_t *fs) {
  uv_fs_req_cleanup(fs);
  save_abort(save_impl(fs), 0);
}

static void on_save_dir_close(uv_fs_t *fs) {
  bootstrap_impl *im = save_impl(fs);
  uv_fs_req_cleanup(fs);
  save_finish(im, 0);
}

/* The directory steps are best effort: the file is in place already. */
static void on_save_dir_fsync(uv_fs_t *fs) {
  bootstrap_impl *im = save_impl(fs);
  uv_file fd = im->dir_fd;

  uv_fs_req_cleanup(fs);
  im->dir_fd = -1;
  if (uv_fs_close(im->bc->loop, &im->save_fs, fd, on_save_dir_close) != 0)
    save_finish(im, 0);
}

static void on_save_dir_open(uv_fs_t *fs) {
  bootstrap_impl *im = save_impl(fs);
  ssize_t r = fs->result;

  uv_fs_req_cleanup(fs);
  if (r < 0) {
    save_finish(im, 0);
    return;
  }
  im->dir_fd = (uv_file)r;
  if (uv_fs_fsync(im->bc->loop, &im->save_fs, im->dir_fd, on_save_dir_fsync) !=
      0)
    on_save_dir_fsync(&im->save_fs);
}

static void on_save_rename(uv_fs_t *fs) {
  bootstrap_impl *im = save_impl(fs);
  int r = (int)fs->result;

  uv_fs_req_cleanup(fs);
  if (r < 0) {
    save_abort(im, r);
    return;
  }
  im->save_tmp_live = 0;
  if (uv_fs_open(im->bc->loop, &im->save_fs, im->dir,
                 UV_FS_O_RDONLY | UV_FS_O_DIRECTORY, 0, on_save_dir_open) != 0)
    save_finish(im, 0);
}

static void on_save_close(uv_fs_t *fs) {
  bootstrap_impl *im = save_impl(fs);
  int r = (int)fs->result;

  uv_fs_req_cleanup(fs);
  if (r == 0)
    r = uv_fs_rename(im->bc->loop, &im->save_fs, im->save_tmp, im->path,
                     on_save_rename);
  if (r != 0)
    save_abort(im, r);
}

static void on_save_fsync(uv_fs_t *fs) {
  bootstrap_impl *im = save_impl(fs);
  int r = (int)fs->result;
  uv_file fd = im->save_fd;

  uv_fs_req_cleanup(fs);
  if (r == 0) {
    im->save_fd = -1;
    r = uv_fs_close(im->bc->loop, &im->save_fs, fd, on_save_close);
    if (r == 0)
      return;
    im->save_fd = fd;
  }
  save_abort(im, r);
}

static void on_save_write(uv_fs_t *fs);

/* save_write writes what is left of the snapshot. */
static int save_write(bootstrap_impl *im) {
  uv_buf_t b = uv_buf_init((char *)im->save_buf + im->save_off,
                           (unsigned int)(im->save_len - im->save_off));
  return uv_fs_write(im->bc->loop, &im->save_fs, im->save_fd, &b, 1,
                     (int64_t)im->save_off, on_save_write);
}

static void on_save_write(uv_fs_t *fs) {
  bootstrap_impl *im = save_impl(fs);
  ssize_t n = fs->result;
  int r;

  uv_fs_req_cleanup(fs);
  if (n <= 0) {
    save_abort(im, n < 0 ? (int)n : UV_EIO);
    return;
  }
  im->save_off += (size_t)n;
  if (im->save_off < im->save_len)
    r = save_write(im);
  else
    r = uv_fs_fsync(im->bc->loop, &im->save_fs, im->save_fd, on_save_fsync);
  if (r != 0)
    save_abort(im, r);
}

static void on_save_fchmod(uv_fs_t *fs) {
  bootstrap_impl *im = save_impl(fs);
  int r = (int)fs->result;

  uv_fs_req_cleanup(fs);
  if (r == 0)
    r = save_write(im);
  if (r != 0)
    save_abort(im, r);
}

static void on_save_mkstemp(uv_fs_t *fs) {
  bootstrap_impl *im = save_impl(fs);
  ssize_t r = fs->result;

  /* uv_fs_mkstemp filled in the template's X's in fs->path; same length. */
  if (r >= 0)
    memcpy(im->save_tmp, fs->path, strlen(im->save_tmp));
  uv_fs_req_cleanup(fs);
  if (r < 0) {
    save_abort(im, (int)r);
    return;
  }
  im->save_fd = (uv_file)r;
  im->save_tmp_live = 1;
  /* mkstemp uses 0600 already; make it explicit whatever the platform. */
  r = uv_fs_fchmod(im->bc->loop, &im->save_fs, im->save_fd, S_IRUSR | S_IWUSR,
                   on_save_fchmod);
  if (r != 0)
    save_abort(im, (int)r);
}

int qpeer_bootstrap_save(qpeer_bootstrap_t *bc, qpeer_bootstrap_save_t *req,
                         qpeer_bootstrap_save_cb cb) {
  bootstrap_impl *im = impl_of(bc);
  qpeer_bootstrap_save_t *failed;
  int err = 0;

  if (!im || !req || !cb)
    return UV_EINVAL;
  /* The request type enum has no bootstrap entry yet. */
  req->type = QPEER_UNKNOWN_REQ;
  req->handle = bc;
  req->cb = cb;
  req->next = NULL;
  *im->save_tail = req;
  im->save_tail = &req->next;
  /* With nothing in flight this request waits alone and starts now; a
   * failure to start is returned, and the callback will not run. */
  failed = save_kick(im, &err);
  if (failed) {
    req->next = NULL;
    return err;
  }
  return 0;
}

/* ---- Asynchronous load ------------------------------------------------ */

static bootstrap_impl *load_impl(uv_fs_t *fs) {
  return QPEER__CONTAINER_OF(fs, bootstrap_impl, load_fs);
}

/* load_finish completes the load with |status|, lets waiting saves start,
 * then runs the callbacks. */
static void load_finish(bootstrap_impl *im, int status) {
  qpeer_bootstrap_load_t *req = im->load_req;
  qpeer_bootstrap_save_t *failed;
  int err = 0;

  qpeer__free(im->load_buf);
  im->load_buf = NULL;
  im->load_req = NULL;
  req->corrupt = is_corrupt(im, status);
  failed = save_kick(im, &err);
  req->cb(req, status);
  save_deliver(failed, err);
}

static void on_load_close(uv_fs_t *fs) {
  bootstrap_impl *im = load_impl(fs);
  int status = im->load_status;

  uv_fs_req_cleanup(fs);
  if (status == 0)
    status = apply_file(im, im->load_buf, im->load_len, &im->load_req->nloaded);
  load_finish(im, status);
}

/* load_close closes the file, then finishes with |status| (or with the
 * outcome of decoding, if |status| is 0). */
static void load_close(bootstrap_impl *im, int status) {
  uv_file fd = im->load_fd;

  im->load_status = status;
  im->load_fd = -1;
  if (uv_fs_close(im->bc->loop, &im->load_fs, fd, on_load_close) != 0) {
    /* The descriptor is gone either way; the data read is still good. */
    on_load_close(&im->load_fs);
  }
}

static void on_load_read(uv_fs_t *fs);

static int load_read(bootstrap_impl *im) {
  uv_buf_t b = uv_buf_init((char *)im->load_buf + im->load_len,
                           (unsigned int)(im->load_cap - im->load_len));
  return uv_fs_read(im->bc->loop, &im->load_fs, im->load_fd, &b, 1,
                    (int64_t)im->load_len, on_load_read);
}

static void on_load_read(uv_fs_t *fs) {
  bootstrap_impl *im = load_impl(fs);
  ssize_t n = fs->result;
  int r;

  uv_fs_req_cleanup(fs);
  if (n <= 0) {
    load_close(im, (int)n); /* 0: end of file */
    return;
  }
  im->load_len += (size_t)n;
  /* The buffer has one byte more than fstat said: if that byte is read,
   * the file is being written in place, which no qpeer writer does. */
  if (im->load_len == im->load_cap) {
    load_close(im, QPEER_EBOOTSTRAP);
    return;
  }
  r = load_read(im);
  if (r != 0)
    load_close(im, r);
}

static void on_load_fstat(uv_fs_t *fs) {
  bootstrap_impl *im = load_impl(fs);
  int r = (int)fs->result;
  uv_stat_t st = fs->statbuf;

  uv_fs_req_cleanup(fs);
  if (r == 0)
    r = check_stat(&st);
  if (r == 0) {
    im->load_cap = (size_t)st.st_size + 1;
    im->load_len = 0;
    im->load_buf = qpeer__malloc(im->load_cap);
    r = im->load_buf ? load_read(im) : UV_ENOMEM;
  }
  if (r != 0)
    load_close(im, r);
}

static void on_load_open(uv_fs_t *fs) {
  bootstrap_impl *im = load_impl(fs);
  ssize_t r = fs->result;

  uv_fs_req_cleanup(fs);
  if (r == UV_ENOENT) {
    im->load_req->missing = 1;
    load_finish(im, 0);
    return;
  }
  if (r < 0) {
    load_finish(im, (int)r);
    return;
  }
  im->load_fd = (uv_file)r;
  r = uv_fs_fstat(im->bc->loop, &im->load_fs, im->load_fd, on_load_fstat);
  if (r != 0)
    load_close(im, (int)r);
}

/* Flags for opening the cache file: O_NONBLOCK keeps a FIFO at the path
 * from blocking a thread-pool thread. */
#define LOAD_OPEN_FLAGS (UV_FS_O_RDONLY | UV_FS_O_NONBLOCK)

int qpeer_bootstrap_load(qpeer_bootstrap_t *bc, qpeer_bootstrap_load_t *req,
                         qpeer_bootstrap_load_cb cb) {
  bootstrap_impl *im = impl_of(bc);
  int r;

  if (!im || !req || !cb)
    return UV_EINVAL;
  if (im->load_req)
    return UV_EBUSY;
  req->type = QPEER_UNKNOWN_REQ; /* no bootstrap entry in the enum yet */
  req->handle = bc;
  req->cb = cb;
  req->missing = 0;
  req->corrupt = 0;
  req->nloaded = 0;
  im->load_req = req;
  im->load_fd = -1;
  im->load_status = 0;
  r = uv_fs_open(bc->loop, &im->load_fs, im->path, LOAD_OPEN_FLAGS, 0,
                 on_load_open);
  if (r != 0)
    im->load_req = NULL;
  return r;
}

/* ---- Blocking variants ------------------------------------------------ */

/* read_sync reads the cache file into a fresh buffer. Returns 0 (|*pbuf|
 * NULL for a missing file), a file-system error, QPEER_EBOOTSTRAP or
 * UV_ENOMEM. */
static int read_sync(bootstrap_impl *im, uint8_t **pbuf, size_t *plen) {
  uv_loop_t *loop = im->bc->loop;
  uv_fs_t fs;
  uv_stat_t st;
  uv_file fd;
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0;
  int r;

  *pbuf = NULL;
  r = uv_fs_open(loop, &fs, im->path, LOAD_OPEN_FLAGS, 0, NULL);
  uv_fs_req_cleanup(&fs);
  if (r == UV_ENOENT)
    return 0;
  if (r < 0)
    return r;
  fd = r;
  r = uv_fs_fstat(loop, &fs, fd, NULL);
  st = fs.statbuf;
  uv_fs_req_cleanup(&fs);
  if (r == 0)
    r = check_stat(&st);
  if (r == 0) {
    cap = (size_t)st.st_size + 1;
    buf = qpeer__malloc(cap);
    r = buf ? 0 : UV_ENOMEM;
  }
  while (r == 0) {
    uv_buf_t b = uv_buf_init((char *)buf + len, (unsigned int)(cap - len));
    int n = uv_fs_read(loop, &fs, fd, &b, 1, (int64_t)len, NULL);
    uv_fs_req_cleanup(&fs);
    if (n <= 0) {
      r = n;
      break;
    }
    len += (size_t)n;
    if (len == cap)
      r = QPEER_EBOOTSTRAP; /* grew since fstat; see on_load_read */
  }
  (void)uv_fs_close(loop, &fs, fd, NULL);
  uv_fs_req_cleanup(&fs);
  if (r != 0) {
    qpeer__free(buf);
    return r;
  }
  *pbuf = buf;
  *plen = len;
  return 0;
}

int qpeer_bootstrap_load_sync(qpeer_bootstrap_t *bc, int *pcorrupt) {
  bootstrap_impl *im = impl_of(bc);
  uint8_t *buf;
  size_t len = 0, n = 0;
  int r, corrupt;

  if (pcorrupt)
    *pcorrupt = 0;
  if (!im)
    return UV_EINVAL;
  if (busy(im))
    return UV_EBUSY;
  r = read_sync(im, &buf, &len);
  if (r == 0 && buf)
    r = apply_file(im, buf, len, &n);
  qpeer__free(buf);
  corrupt = is_corrupt(im, r);
  if (pcorrupt)
    *pcorrupt = corrupt;
  return r;
}

/* write_sync writes |len| bytes of |buf| to a temporary file and renames
 * it over the cache file. Returns 0 or a file-system error. */
static int write_sync(bootstrap_impl *im, const uint8_t *buf, size_t len,
                      char *tmp) {
  uv_loop_t *loop = im->bc->loop;
  uv_fs_t fs;
  uv_file fd;
  size_t off = 0;
  int r, live = 0;

  r = uv_fs_mkstemp(loop, &fs, im->tmpl, NULL);
  if (r >= 0)
    memcpy(tmp, fs.path, strlen(tmp));
  uv_fs_req_cleanup(&fs);
  if (r < 0)
    return r;
  fd = r;
  live = 1;
  r = uv_fs_fchmod(loop, &fs, fd, S_IRUSR | S_IWUSR, NULL);
  uv_fs_req_cleanup(&fs);
  while (r == 0 && off < len) {
    uv_buf_t b = uv_buf_init((char *)buf + off, (unsigned int)(len - off));
    int n = uv_fs_write(loop, &fs, fd, &b, 1, (int64_t)off, NULL);
    uv_fs_req_cleanup(&fs);
    if (n <= 0)
      r = n < 0 ? n : UV_EIO;
    else
      off += (size_t)n;
  }
  if (r == 0) {
    r = uv_fs_fsync(loop, &fs, fd, NULL);
    uv_fs_req_cleanup(&fs);
  }
  {
    int c = uv_fs_close(loop, &fs, fd, NULL);
    uv_fs_req_cleanup(&fs);
    if (r == 0)
      r = c;
  }
  if (r == 0) {
    r = uv_fs_rename(loop, &fs, tmp, im->path, NULL);
    uv_fs_req_cleanup(&fs);
    live = r != 0;
  }
  if (live) {
    (void)uv_fs_unlink(loop, &fs, tmp, NULL);
    uv_fs_req_cleanup(&fs);
  }
  return r;
}

/* sync_dir flushes the directory entry after a rename (best effort). */
static void sync_dir(bootstrap_impl *im) {
  uv_loop_t *loop = im->bc->loop;
  uv_fs_t fs;
  int fd;

  fd = uv_fs_open(loop, &fs, im->dir, UV_FS_O_RDONLY | UV_FS_O_DIRECTORY, 0,
                  NULL);
  uv_fs_req_cleanup(&fs);
  if (fd < 0)
    return;
  (void)uv_fs_fsync(loop, &fs, fd, NULL);
  uv_fs_req_cleanup(&fs);
  (void)uv_fs_close(loop, &fs, fd, NULL);
  uv_fs_req_cleanup(&fs);
}

int qpeer_bootstrap_save_sync(qpeer_bootstrap_t *bc) {
  bootstrap_impl *im = impl_of(bc);
  uint8_t *buf;
  size_t len;
  char *tmp;
  int r;

  if (!im)
    return UV_EINVAL;
  if (busy(im))
    return UV_EBUSY;
  tmp = qpeer__strdup(im->tmpl);
  if (!tmp)
    return UV_ENOMEM;
  r = encode_snapshot(im, &buf, &len);
  if (r == 0) {
    r = write_sync(im, buf, len, tmp);
    qpeer__free(buf);
    im->writes++;
    if (r == 0)
      sync_dir(im);
  }
  qpeer__free(tmp);
  return r;
}
