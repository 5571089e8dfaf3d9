/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/peer/bootstrap.c: the bootstrap cache object, on a
 * real uv loop with a private temporary directory. Covered: loading a
 * missing file, the 200-entry bound and most-recent-first order, merging
 * on update, save and load round trips, corrupted files (reported,
 * ignored, rewritten), the file mode, coalescing saves, saves that wait
 * for a load, failures, and the blocking variants. Every test counts its
 * callbacks and ends with uv_loop_close() == 0.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/varint.h"
#include "internal.h"
#include "peer/bootstrap.h"
#include "peer/bootstrap_fmt.h"
#include "util.h"

/* Per-test state: a loop, a watchdog and a private directory. */
typedef struct {
  uv_loop_t loop;                /* the test's loop */
  uv_timer_t watchdog;           /* fails the test if the loop hangs */
  char dir[256];                 /* from qpt_tmpdir */
  char path[300];                /* the cache file inside |dir| */
  int load_calls;                /* load callbacks run */
  int load_status;               /* status of the last one */
  int save_calls;                /* save callbacks run */
  int save_status[8];            /* status of each (index mod 8) */
  int save_order[8];             /* request index of each, in callback order */
  qpeer_bootstrap_t *free_in_cb; /* freed from the save callback if set */
} fixture_t;

static fixture_t *fx; /* the running test's fixture, for the callbacks */

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  qpt_watchdog_start(&f->loop, &f->watchdog, 20000);
  qpt_tmpdir(f->dir, sizeof(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/bootstrap.bin", f->dir);
  fx = f;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  qpt_loop_teardown(&f->loop);
  qpt_rmtree(f->dir);
  free(f);
  fx = NULL;
  return 0;
}

/* ---- Helpers ---------------------------------------------------------- */

static void make_pid(qpeer_peer_id_t *pid, unsigned i) {
  memset(pid->key, 0x5a, sizeof(pid->key));
  pid->key[0] = (uint8_t)i;
  pid->key[1] = (uint8_t)(i >> 8);
}

static void add_addr(qpeer_ticket_t *t, const char *text) {
  struct sockaddr_storage ss;
  assert_int_equal(qpeer_addr_parse(&ss, text), 0);
  assert_int_equal(qpeer_ticket_add_typed_addr(t, (struct sockaddr *)&ss,
                                               QPEER_TICKET_ADDR_SRFLX),
                   0);
}

/* make_seen builds the ticket of a success with peer |i|: one address
 * 198.51.100.<i%250>:<10000+i> and one WebPKI relay. */
static void make_seen(qpeer_ticket_t *t, unsigned i) {
  char text[64], url[64];
  qpeer_ticket_init(t);
  make_pid(&t->peer_id, i);
  snprintf(text, sizeof(text), "198.51.100.%u:%u", 1 + i % 250, 10000 + i);
  add_addr(t, text);
  snprintf(url, sizeof(url), "https://relay%u.example", i % 3);
  assert_int_equal(
      qpeer_ticket_add_relay(t, url, QPEER_TICKET_AUTH_WEBPKI, NULL), 0);
}

static void fill(qpeer_bootstrap_t *bc, unsigned first, unsigned n) {
  qpeer_ticket_t t;
  unsigned i;
  for (i = first; i < first + n; i++) {
    make_seen(&t, i);
    assert_int_equal(
        qpeer_bootstrap_update(bc, &t, QPEER_BOOTSTRAP_PATH_RELAY, 1000 + i),
        0);
  }
}

static const char *addr_text(const qpeer_ticket_addr_t *a, char *buf) {
  assert_true(qpeer_addr_format((const struct sockaddr *)&a->addr, buf,
                                QPEER_ADDR_STRLEN) > 0);
  return buf;
}

static void on_load(qpeer_bootstrap_load_t *req, int status) {
  (void)req;
  fx->load_calls++;
  fx->load_status = status;
}

static void on_save(qpeer_bootstrap_save_t *req, int status) {
  int k = fx->save_calls++ % 8; /* the last 8 are kept */
  fx->save_status[k] = status;
  fx->save_order[k] = (int)(intptr_t)req->data;
  if (fx->free_in_cb) {
    assert_int_equal(qpeer_bootstrap_free(fx->free_in_cb), 0);
    fx->free_in_cb = NULL;
  }
}

/* load_async runs one load to completion and returns its status. */
static int load_async(fixture_t *f, qpeer_bootstrap_t *bc,
                      qpeer_bootstrap_load_t *req) {
  int before = f->load_calls;
  assert_int_equal(qpeer_bootstrap_load(bc, req, on_load), 0);
  assert_int_equal(f->load_calls, before); /* never from inside the call */
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(f->load_calls, before + 1);
  return f->load_status;
}

static int save_async(fixture_t *f, qpeer_bootstrap_t *bc) {
  qpeer_bootstrap_save_t req;
  int before = f->save_calls;
  req.data = NULL;
  assert_int_equal(qpeer_bootstrap_save(bc, &req, on_save), 0);
  assert_int_equal(f->save_calls, before);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(f->save_calls, before + 1);
  return f->save_status[before % 8];
}

static void write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap) {
  int fd = open(path, O_RDONLY);
  ssize_t n;
  assert_true(fd >= 0);
  n = read(fd, buf, cap);
  close(fd);
  assert_true(n >= 0 && (size_t)n < cap);
  return (size_t)n;
}

/* dir_entries counts the files in |dir| (temporary files included). */
static int dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  assert_non_null(d);
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

/* file_entries decodes the cache file and returns its entry count, or the
 * decoder's error. */
static int file_entries(const char *path) {
  static uint8_t buf[QPEER_BOOTSTRAP_FILE_MAX + 1];
  size_t len = read_file(path, buf, sizeof(buf));
  int r = qpeer__bootstrap_fmt_decode(buf, len, NULL, NULL);
  return r != 0 ? r : (int)((buf[6] << 8) | buf[7]);
}

/* ---- Tests ------------------------------------------------------------ */

static void test_load_missing(void **state) {
  fixture_t *f = *state;
  qpeer_bootstrap_load_t req;
  qpeer_bootstrap_t bc;

  bc.data = f;
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  assert_ptr_equal(bc.data, f);
  assert_ptr_equal(bc.loop, &f->loop);
  req.corrupt = 7;
  assert_int_equal(load_async(f, &bc, &req), 0);
  assert_true(req.missing);
  assert_false(req.corrupt);
  assert_int_equal(req.nloaded, 0);
  assert_ptr_equal(req.handle, &bc);
  assert_int_equal(qpeer_bootstrap_count(&bc), 0);
  assert_null(qpeer_bootstrap_next(&bc, NULL));
  assert_int_equal(dir_entries(f->dir), 0); /* loading creates nothing */
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
}

static void test_bound_and_order(void **state) {
  fixture_t *f = *state;
  const qpeer_bootstrap_entry_t *e;
  qpeer_peer_id_t pid;
  qpeer_bootstrap_t bc;
  unsigned i, want;
  (void)f;

  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  fill(&bc, 0, 250);
  assert_int_equal(qpeer_bootstrap_count(&bc), QPEER_BOOTSTRAP_MAX_ENTRIES);
  /* Most recent first: 249 down to 50; 0..49 were evicted. */
  want = 249;
  for (e = qpeer_bootstrap_next(&bc, NULL); e;
       e = qpeer_bootstrap_next(&bc, e)) {
    make_pid(&pid, want);
    assert_true(qpeer_peer_id_equal(&e->peer_id, &pid));
    assert_true(e->last_seen == 1000 + want);
    assert_int_equal(e->successes, 1);
    assert_int_equal(e->last_path, QPEER_BOOTSTRAP_PATH_RELAY);
    want--;
  }
  assert_int_equal(want, 49);
  for (i = 0; i < 250; i++) {
    make_pid(&pid, i);
    if (i < 50)
      assert_null(qpeer_bootstrap_lookup(&bc, &pid));
    else
      assert_non_null(qpeer_bootstrap_lookup(&bc, &pid));
  }
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
}

static void test_update_merges(void **state) {
  fixture_t *f = *state;
  const qpeer_bootstrap_entry_t *e;
  char buf[QPEER_ADDR_STRLEN];
  qpeer_bootstrap_t bc;
  qpeer_ticket_t t;
  qpeer_peer_id_t pin;
  int i;

  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  fill(&bc, 0, 5);
  /* Peer 2 again, seen directly at a new address plus one it had. */
  qpeer_ticket_init(&t);
  make_pid(&t.peer_id, 2);
  add_addr(&t, "[2001:db8::7]:5000");
  add_addr(&t, "198.51.100.3:10002");
  memset(pin.key, 0x77, sizeof(pin.key));
  assert_int_equal(qpeer_ticket_add_relay(&t, "https://new.example",
                                          QPEER_TICKET_AUTH_PIN, &pin),
                   0);
  assert_int_equal(
      qpeer_bootstrap_update(&bc, &t, QPEER_BOOTSTRAP_PATH_DIRECT, 5000), 0);
  e = qpeer_bootstrap_next(&bc, NULL);
  assert_true(qpeer_peer_id_equal(&e->peer_id, &t.peer_id));
  assert_int_equal(qpeer_bootstrap_count(&bc), 5);
  assert_int_equal(e->successes, 2);
  assert_true(e->last_seen == 5000);
  assert_int_equal(e->last_path, QPEER_BOOTSTRAP_PATH_DIRECT);
  assert_int_equal(e->naddrs, 2);
  assert_string_equal(addr_text(&e->addrs[0], buf), "[2001:db8::7]:5000");
  assert_string_equal(addr_text(&e->addrs[1], buf), "198.51.100.3:10002");
  assert_int_equal(e->nrelays, 2);
  assert_string_equal(e->relays[0].url, "https://new.example");
  assert_string_equal(e->relays[1].url, "https://relay2.example");
  /* The order of the others is unchanged behind it. */
  e = qpeer_bootstrap_next(&bc, e);
  assert_int_equal(e->peer_id.key[0], 4);
  e = qpeer_bootstrap_next(&bc, e);
  assert_int_equal(e->peer_id.key[0], 3);
  e = qpeer_bootstrap_next(&bc, e);
  assert_int_equal(e->peer_id.key[0], 1);

  /* Ten updates with one new address each: the 8 newest are kept. */
  for (i = 0; i < 10; i++) {
    char text[64];
    qpeer_ticket_init(&t);
    make_pid(&t.peer_id, 1);
    snprintf(text, sizeof(text), "203.0.113.%d:7000", i + 1);
    add_addr(&t, text);
    assert_int_equal(
        qpeer_bootstrap_update(&bc, &t, QPEER_BOOTSTRAP_PATH_DIRECT, 0), 0);
  }
  e = qpeer_bootstrap_lookup(&bc, &t.peer_id);
  assert_ptr_equal(e, qpeer_bootstrap_next(&bc, NULL));
  assert_int_equal(e->naddrs, QPEER_BOOTSTRAP_MAX_ADDRS);
  assert_string_equal(addr_text(&e->addrs[0], buf), "203.0.113.10:7000");
  assert_string_equal(addr_text(&e->addrs[7], buf), "203.0.113.3:7000");
  assert_int_equal(e->nrelays, 1); /* kept from the first success */
  assert_int_equal(e->successes, 11);
  assert_true(e->last_seen > 1600000000); /* 0 meant "now" */

  /* Bad input changes nothing. */
  make_seen(&t, 0);
  assert_int_equal(qpeer_bootstrap_update(&bc, &t, (qpeer_bootstrap_path)3, 1),
                   UV_EINVAL);
  ((struct sockaddr_in *)&t.addrs[0].addr)->sin_port = 0;
  assert_int_equal(
      qpeer_bootstrap_update(&bc, &t, QPEER_BOOTSTRAP_PATH_RELAY, 1),
      UV_EINVAL);
  make_seen(&t, 0);
  t.naddrs = QPEER_TICKET_MAX_ADDRS + 1;
  assert_int_equal(
      qpeer_bootstrap_update(&bc, &t, QPEER_BOOTSTRAP_PATH_RELAY, 1),
      UV_EINVAL);
  assert_int_equal(qpeer_bootstrap_update(&bc, NULL, 0, 1), UV_EINVAL);
  assert_int_equal(qpeer_bootstrap_count(&bc), 5);
  assert_ptr_equal(qpeer_bootstrap_next(&bc, NULL), e);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
}

static void test_remove_and_ticket(void **state) {
  fixture_t *f = *state;
  qpeer_bootstrap_t bc;
  qpeer_ticket_t t, seen;
  qpeer_peer_id_t pid;
  uint8_t bin[QPEER_TICKET_BIN_MAX];

  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  fill(&bc, 0, 3);
  make_pid(&pid, 1);
  assert_int_equal(qpeer_bootstrap_to_ticket(&bc, &pid, &t), 0);
  make_seen(&seen, 1);
  assert_true(qpeer_peer_id_equal(&t.peer_id, &pid));
  assert_int_equal(t.naddrs, 1);
  assert_memory_equal(&t.addrs[0], &seen.addrs[0], sizeof(t.addrs[0]));
  assert_int_equal(t.nrelays, 1);
  assert_string_equal(t.relays[0].url, seen.relays[0].url);
  assert_true(t.created == 1001);
  assert_true(qpeer_ticket_encode_binary(&t, bin, sizeof(bin)) > 0);

  assert_int_equal(qpeer_bootstrap_remove(&bc, &pid), 0);
  assert_int_equal(qpeer_bootstrap_remove(&bc, &pid), UV_ENOENT);
  assert_int_equal(qpeer_bootstrap_to_ticket(&bc, &pid, &t), UV_ENOENT);
  assert_null(qpeer_bootstrap_lookup(&bc, &pid));
  assert_int_equal(qpeer_bootstrap_count(&bc), 2);
  assert_int_equal(qpeer_bootstrap_to_ticket(&bc, NULL, &t), UV_EINVAL);
  assert_int_equal(qpeer_bootstrap_remove(NULL, &pid), UV_EINVAL);
  assert_null(qpeer_bootstrap_lookup(&bc, NULL));
  assert_int_equal(qpeer_bootstrap_count(NULL), 0);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
  assert_int_equal(qpeer_bootstrap_free(&bc), UV_EINVAL);
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, ""), UV_EINVAL);
  assert_int_equal(qpeer_bootstrap_init(NULL, &bc, f->path), UV_EINVAL);
}

static void test_save_load_round_trip(void **state) {
  fixture_t *f = *state;
  const qpeer_bootstrap_entry_t *a, *b;
  qpeer_bootstrap_load_t req;
  qpeer_bootstrap_t bc, bc2;
  struct stat st;
  mode_t old_mask;

  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  fill(&bc, 0, 250);
  /* Whatever the umask, the file is private. */
  old_mask = umask(0);
  assert_int_equal(save_async(f, &bc), 0);
  umask(old_mask);
  assert_int_equal(stat(f->path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(dir_entries(f->dir), 1); /* no temporary file left */
  assert_int_equal(file_entries(f->path), QPEER_BOOTSTRAP_MAX_ENTRIES);

  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc2, f->path), 0);
  assert_int_equal(load_async(f, &bc2, &req), 0);
  assert_false(req.missing);
  assert_false(req.corrupt);
  assert_int_equal(req.nloaded, QPEER_BOOTSTRAP_MAX_ENTRIES);
  assert_int_equal(qpeer_bootstrap_count(&bc2), QPEER_BOOTSTRAP_MAX_ENTRIES);
  for (a = qpeer_bootstrap_next(&bc, NULL),
      b = qpeer_bootstrap_next(&bc2, NULL);
       a || b;
       a = qpeer_bootstrap_next(&bc, a), b = qpeer_bootstrap_next(&bc2, b)) {
    assert_non_null(a);
    assert_non_null(b);
    assert_memory_equal(&a->peer_id, &b->peer_id, sizeof(a->peer_id));
    assert_int_equal(a->naddrs, b->naddrs);
    assert_memory_equal(a->addrs, b->addrs, sizeof(a->addrs));
    assert_int_equal(a->nrelays, b->nrelays);
    assert_memory_equal(a->relays, b->relays, sizeof(a->relays));
    assert_true(a->last_seen == b->last_seen);
    assert_int_equal(a->last_path, b->last_path);
    assert_int_equal(a->successes, b->successes);
  }
  assert_int_equal(qpeer_bootstrap_free(&bc2), 0);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
}

static void test_load_merges_behind_memory(void **state) {
  fixture_t *f = *state;
  const qpeer_bootstrap_entry_t *e;
  qpeer_bootstrap_load_t req;
  qpeer_bootstrap_t bc;
  qpeer_ticket_t t;
  int i;

  /* A file with peers 0..199. */
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  fill(&bc, 0, 200);
  assert_int_equal(qpeer_bootstrap_save_sync(&bc), 0);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);

  /* Memory already knows peer 5 (newer) and peers 300..309. */
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  fill(&bc, 300, 10);
  make_seen(&t, 5);
  assert_int_equal(
      qpeer_bootstrap_update(&bc, &t, QPEER_BOOTSTRAP_PATH_DIRECT, 9999), 0);
  assert_int_equal(load_async(f, &bc, &req), 0);
  assert_int_equal(req.nloaded, 189);
  assert_int_equal(qpeer_bootstrap_count(&bc), QPEER_BOOTSTRAP_MAX_ENTRIES);
  e = qpeer_bootstrap_next(&bc, NULL);
  assert_int_equal(e->peer_id.key[0], 5);
  assert_int_equal(e->last_path, QPEER_BOOTSTRAP_PATH_DIRECT);
  assert_int_equal(e->successes, 1); /* the memory entry, not the file's */
  /* Then the rest of memory (309 down to 300), then the file's entries
   * in the file's order (199 down, without 5). */
  for (i = 309; i >= 300; i--) {
    e = qpeer_bootstrap_next(&bc, e);
    assert_int_equal(e->peer_id.key[0] | (e->peer_id.key[1] << 8), i);
  }
  e = qpeer_bootstrap_next(&bc, e);
  assert_int_equal(e->peer_id.key[0], 199);
  assert_true(e->last_seen == 1199);
  e = qpeer_bootstrap_lookup(&bc, &t.peer_id);
  assert_true(e->last_seen == 9999);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
}

static void test_corrupted_file(void **state) {
  static const char garbage[] = "this is not a bootstrap cache";
  fixture_t *f = *state;
  qpeer_bootstrap_load_t req;
  qpeer_bootstrap_t bc;
  uint8_t buf[8192];
  size_t len;

  /* A valid file of 3 peers, then one byte changed. */
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  fill(&bc, 0, 3);
  assert_int_equal(qpeer_bootstrap_save_sync(&bc), 0);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
  len = read_file(f->path, buf, sizeof(buf));
  buf[len / 2] ^= 0x20;
  write_file(f->path, buf, len);

  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  assert_int_equal(load_async(f, &bc, &req), QPEER_EBOOTSTRAP);
  assert_true(req.corrupt);
  assert_false(req.missing);
  assert_int_equal(req.nloaded, 0);
  assert_int_equal(qpeer_bootstrap_count(&bc), 0);
  /* The next save rewrites it, even with nothing to say. */
  assert_int_equal(save_async(f, &bc), 0);
  assert_int_equal(file_entries(f->path), 0);
  fill(&bc, 10, 2);
  assert_int_equal(save_async(f, &bc), 0);
  assert_int_equal(file_entries(f->path), 2);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);

  /* Garbage, an empty file, and a truncated one. */
  write_file(f->path, garbage, sizeof(garbage));
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  assert_int_equal(load_async(f, &bc, &req), QPEER_EBOOTSTRAP);
  assert_true(req.corrupt);
  write_file(f->path, "", 0);
  assert_int_equal(load_async(f, &bc, &req), QPEER_EBOOTSTRAP);
  assert_true(req.corrupt);
  fill(&bc, 0, 3);
  assert_int_equal(qpeer_bootstrap_save_sync(&bc), 0);
  len = read_file(f->path, buf, sizeof(buf));
  write_file(f->path, buf, len - 1);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  assert_int_equal(load_async(f, &bc, &req), QPEER_EBOOTSTRAP);
  assert_true(req.corrupt);
  assert_int_equal(qpeer_bootstrap_count(&bc), 0);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
}

static void test_other_version(void **state) {
  fixture_t *f = *state;
  qpeer_bootstrap_load_t req;
  qpeer_bootstrap_t bc;
  uint8_t buf[64];
  size_t len;
  uint32_t c;
  int corrupt = 0;

  /* An empty file of version 2 with a correct checksum. */
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  assert_int_equal(qpeer_bootstrap_save_sync(&bc), 0);
  len = read_file(f->path, buf, sizeof(buf));
  assert_int_equal(len, QPEER__BOOTSTRAP_FMT_MIN_LEN);
  buf[5] = 2;
  c = qpeer__bootstrap_crc32c(buf, len - 4);
  qpeer__put_u32(buf + len - 4, c);
  write_file(f->path, buf, len);
  assert_int_equal(load_async(f, &bc, &req), QPEER_EUNSUPPORTED);
  assert_true(req.corrupt);
  assert_int_equal(qpeer_bootstrap_load_sync(&bc, &corrupt),
                   QPEER_EUNSUPPORTED);
  assert_true(corrupt);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
}

static void test_coalesce(void **state) {
  fixture_t *f = *state;
  qpeer_bootstrap_save_t reqs[5];
  qpeer_bootstrap_t bc;
  qpeer_ticket_t t;
  int i;

  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  fill(&bc, 0, 10);
  for (i = 0; i < 5; i++) {
    reqs[i].data = (void *)(intptr_t)i;
    assert_int_equal(qpeer_bootstrap_save(&bc, &reqs[i], on_save), 0);
    if (i == 0) {
      /* A change after the first write started goes into the second. */
      make_seen(&t, 77);
      assert_int_equal(
          qpeer_bootstrap_update(&bc, &t, QPEER_BOOTSTRAP_PATH_RELAY, 1), 0);
    }
  }
  assert_int_equal(f->save_calls, 0);
  assert_int_equal(qpeer_bootstrap_free(&bc), UV_EBUSY);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  /* Five callbacks, in request order, from two writes. */
  assert_int_equal(f->save_calls, 5);
  for (i = 0; i < 5; i++) {
    assert_int_equal(f->save_status[i], 0);
    assert_int_equal(f->save_order[i], i);
  }
  assert_int_equal(qpeer__bootstrap_write_count(&bc), 2);
  assert_int_equal(file_entries(f->path), 11);
  assert_int_equal(dir_entries(f->dir), 1);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
}

static void test_save_waits_for_load(void **state) {
  fixture_t *f = *state;
  qpeer_bootstrap_load_t lreq, lreq2;
  qpeer_bootstrap_save_t sreq;
  qpeer_bootstrap_t bc;

  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  fill(&bc, 0, 3);
  assert_int_equal(qpeer_bootstrap_save_sync(&bc), 0);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);

  /* Load and save at once: the save must not clobber the unread file. */
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  assert_int_equal(qpeer_bootstrap_load(&bc, &lreq, on_load), 0);
  assert_int_equal(qpeer_bootstrap_load(&bc, &lreq2, on_load), UV_EBUSY);
  sreq.data = NULL;
  assert_int_equal(qpeer_bootstrap_save(&bc, &sreq, on_save), 0);
  assert_int_equal(qpeer_bootstrap_save_sync(&bc), UV_EBUSY);
  assert_int_equal(qpeer_bootstrap_load_sync(&bc, NULL), UV_EBUSY);
  assert_int_equal(qpeer_bootstrap_free(&bc), UV_EBUSY);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(f->load_calls, 1);
  assert_int_equal(f->load_status, 0);
  assert_int_equal(f->save_calls, 1);
  assert_int_equal(f->save_status[0], 0);
  assert_int_equal(lreq.nloaded, 3);
  assert_int_equal(file_entries(f->path), 3);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
}

static void test_free_in_callback(void **state) {
  fixture_t *f = *state;
  qpeer_bootstrap_save_t req;
  qpeer_bootstrap_t bc;

  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  fill(&bc, 0, 4);
  f->free_in_cb = &bc;
  req.data = NULL;
  assert_int_equal(qpeer_bootstrap_save(&bc, &req, on_save), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(f->save_calls, 1);
  assert_null(f->free_in_cb);
  assert_int_equal(file_entries(f->path), 4);
}

static void test_failures(void **state) {
  fixture_t *f = *state;
  qpeer_bootstrap_load_t lreq;
  qpeer_bootstrap_save_t sreq;
  qpeer_bootstrap_t bc;
  char path[400];

  /* A save into a missing directory fails in its callback. */
  snprintf(path, sizeof(path), "%s/nodir/bootstrap.bin", f->dir);
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, path), 0);
  fill(&bc, 0, 2);
  assert_int_equal(save_async(f, &bc), UV_ENOENT);
  assert_int_equal(qpeer_bootstrap_save_sync(&bc), UV_ENOENT);
  assert_int_equal(qpeer__bootstrap_write_count(&bc), 2);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);

  /* A directory where the file should be: not corruption, an I/O error. */
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->dir), 0);
  assert_int_equal(load_async(f, &bc, &lreq), UV_EISDIR);
  assert_false(lreq.corrupt);
  assert_int_equal(qpeer_bootstrap_load_sync(&bc, NULL), UV_EISDIR);
  /* Renaming over a directory fails; nothing is left behind. */
  assert_true(save_async(f, &bc) < 0);
  assert_int_equal(dir_entries(f->dir), 0);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);

  /* Arguments. */
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  assert_int_equal(qpeer_bootstrap_save(&bc, NULL, on_save), UV_EINVAL);
  assert_int_equal(qpeer_bootstrap_save(&bc, &sreq, NULL), UV_EINVAL);
  assert_int_equal(qpeer_bootstrap_load(&bc, &lreq, NULL), UV_EINVAL);
  assert_int_equal(qpeer_bootstrap_load(NULL, &lreq, on_load), UV_EINVAL);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
  assert_int_equal(qpeer_bootstrap_free(NULL), UV_EINVAL);
  assert_int_equal(f->load_calls, 1);
  assert_int_equal(f->save_calls, 2);
}

static void test_sync_round_trip(void **state) {
  fixture_t *f = *state;
  qpeer_bootstrap_t bc;
  qpeer_peer_id_t pid;
  struct stat st;
  int corrupt = 1;

  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  assert_int_equal(qpeer_bootstrap_load_sync(&bc, &corrupt), 0);
  assert_false(corrupt);
  fill(&bc, 0, 20);
  assert_int_equal(qpeer_bootstrap_save_sync(&bc), 0);
  assert_int_equal(stat(f->path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);

  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  assert_int_equal(qpeer_bootstrap_load_sync(&bc, &corrupt), 0);
  assert_false(corrupt);
  assert_int_equal(qpeer_bootstrap_count(&bc), 20);
  make_pid(&pid, 19);
  assert_ptr_equal(qpeer_bootstrap_lookup(&bc, &pid),
                   qpeer_bootstrap_next(&bc, NULL));
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);

  write_file(f->path, "QPBC", 4);
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  assert_int_equal(qpeer_bootstrap_load_sync(&bc, &corrupt), QPEER_EBOOTSTRAP);
  assert_true(corrupt);
  assert_int_equal(qpeer_bootstrap_count(&bc), 0);
  assert_int_equal(qpeer_bootstrap_save_sync(&bc), 0);
  assert_int_equal(file_entries(f->path), 0);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);
}

/* An allocator that fails once |oom_left| allocations have succeeded
 * (never while it is negative). */
static int oom_left = -1;

static int oom_now(void) {
  if (oom_left < 0)
    return 0;
  if (oom_left == 0)
    return 1;
  oom_left--;
  return 0;
}

static void *oom_malloc(size_t n) { return oom_now() ? NULL : malloc(n); }
static void *oom_realloc(void *p, size_t n) {
  return oom_now() ? NULL : realloc(p, n);
}
static void *oom_calloc(size_t c, size_t n) {
  return oom_now() ? NULL : calloc(c, n);
}

static void test_out_of_memory(void **state) {
  fixture_t *f = *state;
  qpeer_bootstrap_load_t lreq;
  qpeer_bootstrap_save_t sreq;
  qpeer_bootstrap_t bc;
  qpeer_ticket_t t;
  int k, r, saw_ok = 0;

  /* A file of 5 peers to load. */
  assert_int_equal(qpeer_bootstrap_init(&f->loop, &bc, f->path), 0);
  fill(&bc, 0, 5);
  assert_int_equal(qpeer_bootstrap_save_sync(&bc), 0);
  assert_int_equal(qpeer_bootstrap_free(&bc), 0);

  assert_int_equal(
      qpeer_replace_allocator(oom_malloc, oom_realloc, oom_calloc, free), 0);
  for (k = 0; k < 40; k++) {
    oom_left = k;
    r = qpeer_bootstrap_init(&f->loop, &bc, f->path);
    if (r != 0) {
      assert_int_equal(r, UV_ENOMEM);
      continue;
    }
    r = qpeer_bootstrap_load_sync(&bc, NULL);
    assert_true(r == 0 || r == UV_ENOMEM);
    /* All or nothing: a failed load leaves the cache empty. The file
     * holds 5 peers, or 6 once a save below has added peer 42. */
    if (r == 0)
      assert_true(qpeer_bootstrap_count(&bc) >= 5);
    else
      assert_int_equal(qpeer_bootstrap_count(&bc), 0);
    make_seen(&t, 42);
    r = qpeer_bootstrap_update(&bc, &t, QPEER_BOOTSTRAP_PATH_RELAY, 1);
    assert_true(r == 0 || r == UV_ENOMEM);
    sreq.data = NULL;
    r = qpeer_bootstrap_save(&bc, &sreq, on_save);
    assert_true(r == 0 || r == UV_ENOMEM);
    if (r == 0)
      assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    r = qpeer_bootstrap_load(&bc, &lreq, on_load);
    assert_int_equal(r, 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_true(f->load_status == 0 || f->load_status == UV_ENOMEM);
    saw_ok |= k > 0 && f->load_status == 0;
    assert_int_equal(qpeer_bootstrap_free(&bc), 0);
  }
  oom_left = -1;
  assert_int_equal(qpeer_replace_allocator(malloc, realloc, calloc, free), 0);
  assert_true(saw_ok);
  /* Whatever failed, the file on disk is always a valid one. */
  r = file_entries(f->path);
  assert_true(r == 5 || r == 6);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_load_missing),
      T(test_bound_and_order),
      T(test_update_merges),
      T(test_remove_and_ticket),
      T(test_save_load_round_trip),
      T(test_load_merges_behind_memory),
      T(test_corrupted_file),
      T(test_other_version),
      T(test_coalesce),
      T(test_save_waits_for_load),
      T(test_free_in_callback),
      T(test_failures),
      T(test_sync_round_trip),
      T(test_out_of_memory),
  };
#undef T
  return cmocka_run_group_tests_name("bootstrap", tests, NULL, NULL);
}
