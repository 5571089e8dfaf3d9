/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for tools/relayd/quota.c with a fake clock: token bucket
 * burst, drops and refill (including long gaps and fractional rates),
 * per-client and global caps for tunnels and bindings, max_clients,
 * LRU eviction of idle records (never of active ones), the idle sweep,
 * and bad keys.
 */
#include "quota.h"
#include "relayd_test.h"

static relayd_quota_config_t base_cfg(void) {
  relayd_quota_config_t c;
  memset(&c, 0, sizeof(c));
  c.table_size = 8;
  c.seed = 42;
  return c;
}

static void test_quota_bucket(void **state) {
  relayd_quota_t q;
  relayd_quota_config_t cfg = base_cfg();
  relayd_quota_client_t *c;
  uint64_t now = 1000;
  int i;
  (void)state;
  cfg.rate = 10000; /* 10 kB/s */
  cfg.burst = 5000; /* 5 kB */
  assert_int_equal(relayd_quota_init(&q, &cfg), 0);
  assert_int_equal(relayd_quota_admit(&q, "a", now, &c), RELAYD_QUOTA_OK);
  /* A full bucket passes the burst, then drops. */
  for (i = 0; i < 5; i++)
    assert_int_equal(relayd_quota_packet(&q, c, 1000, now), 0);
  assert_int_equal(relayd_quota_packet(&q, c, 1, now), 1);
  assert_int_equal(c->dropped_packets, 1);
  assert_int_equal(q.stats.dropped_bytes, 1);
  /* 100 ms refill 1000 bytes. */
  now += 100;
  assert_int_equal(relayd_quota_packet(&q, c, 1000, now), 0);
  assert_int_equal(relayd_quota_packet(&q, c, 1, now), 1);
  /* 1 ms refills 10 bytes exactly: no rounding loss over many steps. */
  for (i = 0; i < 100; i++) {
    now += 1;
    assert_int_equal(relayd_quota_packet(&q, c, 10, now), 0);
  }
  assert_int_equal(relayd_quota_packet(&q, c, 1, now), 1);
  /* A long gap fills to the burst, not beyond. */
  now += 3600 * 1000;
  assert_int_equal(relayd_quota_packet(&q, c, 5000, now), 0);
  assert_int_equal(relayd_quota_packet(&q, c, 1, now), 1);
  /* Time going backwards adds nothing. */
  assert_int_equal(relayd_quota_packet(&q, c, 1, now - 500), 1);
  assert_int_equal(c->packets, 107);
  assert_int_equal(c->bytes, 5 * 1000 + 1000 + 100 * 10 + 5000);
  relayd_quota_free(&q);
}

static void test_quota_bucket_slow_rate(void **state) {
  relayd_quota_t q;
  relayd_quota_config_t cfg = base_cfg();
  relayd_quota_client_t *c;
  uint64_t now = 0;
  int i, passed = 0;
  (void)state;
  cfg.rate = 3; /* 3 bytes/s: 0.003 bytes per ms */
  cfg.burst = 4096;
  assert_int_equal(relayd_quota_init(&q, &cfg), 0);
  assert_int_equal(relayd_quota_admit(&q, "slow", now, &c), RELAYD_QUOTA_OK);
  assert_int_equal(relayd_quota_packet(&q, c, 4096, now), 0);
  /* Over 10 s in 1 ms steps: exactly 30 bytes become available. */
  for (i = 0; i < 10000; i++) {
    now++;
    if (relayd_quota_packet(&q, c, 1, now) == 0)
      passed++;
  }
  assert_int_equal(passed, 30);
  relayd_quota_free(&q);
}

static void test_quota_unlimited_rate(void **state) {
  relayd_quota_t q;
  relayd_quota_config_t cfg = base_cfg();
  relayd_quota_client_t *c;
  int i;
  (void)state;
  assert_int_equal(relayd_quota_init(&q, &cfg), 0);
  assert_int_equal(relayd_quota_admit(&q, "u", 0, &c), RELAYD_QUOTA_OK);
  for (i = 0; i < 1000; i++)
    assert_int_equal(relayd_quota_packet(&q, c, 65000, 0), 0);
  relayd_quota_free(&q);
}

static void test_quota_caps(void **state) {
  relayd_quota_t q;
  relayd_quota_config_t cfg = base_cfg();
  relayd_quota_client_t *a, *b;
  (void)state;
  cfg.max_tunnels_per_client = 2;
  cfg.max_binds_per_client = 1;
  cfg.max_tunnels = 3;
  cfg.max_binds = 1;
  assert_int_equal(relayd_quota_init(&q, &cfg), 0);
  assert_int_equal(relayd_quota_admit(&q, "a", 0, &a), RELAYD_QUOTA_OK);
  assert_int_equal(relayd_quota_admit(&q, "b", 0, &b), RELAYD_QUOTA_OK);
  assert_int_equal(relayd_quota_open(&q, a, RELAYD_QUOTA_TUNNEL, 1),
                   RELAYD_QUOTA_OK);
  assert_int_equal(relayd_quota_open(&q, a, RELAYD_QUOTA_TUNNEL, 1),
                   RELAYD_QUOTA_OK);
  assert_int_equal(relayd_quota_open(&q, a, RELAYD_QUOTA_TUNNEL, 1),
                   RELAYD_QUOTA_CLIENT_TUNNELS);
  assert_int_equal(relayd_quota_open(&q, b, RELAYD_QUOTA_TUNNEL, 1),
                   RELAYD_QUOTA_OK);
  /* Global cap of 3 tunnels reached. */
  assert_int_equal(relayd_quota_open(&q, b, RELAYD_QUOTA_TUNNEL, 1),
                   RELAYD_QUOTA_TUNNELS);
  assert_int_equal(relayd_quota_open(&q, a, RELAYD_QUOTA_BIND, 1),
                   RELAYD_QUOTA_OK);
  assert_int_equal(relayd_quota_open(&q, a, RELAYD_QUOTA_BIND, 1),
                   RELAYD_QUOTA_CLIENT_BINDS);
  assert_int_equal(relayd_quota_open(&q, b, RELAYD_QUOTA_BIND, 1),
                   RELAYD_QUOTA_BINDS);
  assert_int_equal(q.stats.tunnels, 3);
  assert_int_equal(q.stats.binds, 1);
  /* Closing frees room. */
  relayd_quota_close(&q, a, RELAYD_QUOTA_TUNNEL, 2);
  assert_int_equal(relayd_quota_open(&q, b, RELAYD_QUOTA_TUNNEL, 2),
                   RELAYD_QUOTA_OK);
  relayd_quota_close(&q, a, RELAYD_QUOTA_BIND, 2);
  relayd_quota_close(&q, a, RELAYD_QUOTA_BIND, 2); /* extra close: no-op */
  assert_int_equal(q.stats.binds, 0);
  assert_int_equal(relayd_quota_open(&q, b, RELAYD_QUOTA_BIND, 2),
                   RELAYD_QUOTA_OK);
  assert_int_equal(q.stats.rejected[RELAYD_QUOTA_CLIENT_TUNNELS], 1);
  assert_int_equal(q.stats.rejected[RELAYD_QUOTA_TUNNELS], 1);
  assert_int_equal(relayd_quota_err_status(RELAYD_QUOTA_CLIENT_BINDS), 429);
  assert_int_equal(relayd_quota_err_status(RELAYD_QUOTA_BINDS), 503);
  assert_string_equal(relayd_quota_err_name(RELAYD_QUOTA_CLIENTS),
                      "capacity_clients");
  relayd_quota_free(&q);
}

static void test_quota_max_clients(void **state) {
  relayd_quota_t q;
  relayd_quota_config_t cfg = base_cfg();
  relayd_quota_client_t *a, *c;
  (void)state;
  cfg.max_clients = 2;
  assert_int_equal(relayd_quota_init(&q, &cfg), 0);
  assert_int_equal(relayd_quota_admit(&q, "a", 0, &a), RELAYD_QUOTA_OK);
  assert_int_equal(relayd_quota_admit(&q, "b", 0, NULL), RELAYD_QUOTA_OK);
  assert_int_equal(relayd_quota_admit(&q, "c", 0, &c), RELAYD_QUOTA_CLIENTS);
  assert_null(c);
  /* A known active client is always let back in. */
  assert_int_equal(relayd_quota_admit(&q, "a", 1, NULL), RELAYD_QUOTA_OK);
  assert_int_equal(q.stats.clients_active, 2);
  relayd_quota_release(&q, a);
  assert_int_equal(q.stats.clients_active, 1);
  assert_int_equal(relayd_quota_admit(&q, "c", 2, NULL), RELAYD_QUOTA_OK);
  /* Bad keys. */
  assert_int_equal(relayd_quota_admit(&q, "", 2, NULL), RELAYD_QUOTA_BAD_KEY);
  {
    char big[RELAYD_QUOTA_KEY_MAX + 1];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(relayd_quota_admit(&q, big, 2, NULL),
                     RELAYD_QUOTA_BAD_KEY);
  }
  relayd_quota_free(&q);
}

static void test_quota_eviction(void **state) {
  relayd_quota_t q;
  relayd_quota_config_t cfg = base_cfg();
  relayd_quota_client_t *c;
  char key[16];
  int i;
  (void)state;
  cfg.table_size = 4;
  assert_int_equal(relayd_quota_init(&q, &cfg), 0);
  /* k0 stays active (a bind); k1..k3 come and go, k1 least recently. */
  assert_int_equal(relayd_quota_admit(&q, "k0", 0, &c), RELAYD_QUOTA_OK);
  assert_int_equal(relayd_quota_open(&q, c, RELAYD_QUOTA_BIND, 0),
                   RELAYD_QUOTA_OK);
  relayd_quota_release(&q, c);
  for (i = 1; i <= 3; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    assert_int_equal(relayd_quota_admit(&q, key, (uint64_t)i, &c),
                     RELAYD_QUOTA_OK);
    relayd_quota_release(&q, c);
  }
  /* Touch k1 so k2 becomes the least recently used. */
  c = relayd_quota_find(&q, "k1");
  assert_non_null(c);
  assert_int_equal(relayd_quota_packet(&q, c, 10, 10), 0);
  assert_int_equal(q.stats.clients, 4);
  assert_int_equal(relayd_quota_admit(&q, "k4", 11, NULL), RELAYD_QUOTA_OK);
  assert_null(relayd_quota_find(&q, "k2"));
  assert_non_null(relayd_quota_find(&q, "k0"));
  assert_non_null(relayd_quota_find(&q, "k1"));
  assert_int_equal(q.stats.evictions, 1);
  assert_int_equal(relayd_quota_admit(&q, "k5", 12, NULL), RELAYD_QUOTA_OK);
  assert_null(relayd_quota_find(&q, "k3"));
  /* Now k0 (bind), k4, k5 are active (admitted) and k1 idle. */
  assert_int_equal(relayd_quota_admit(&q, "k6", 13, NULL), RELAYD_QUOTA_OK);
  assert_null(relayd_quota_find(&q, "k1"));
  /* Every record active: new clients are refused, none evicted. */
  assert_int_equal(relayd_quota_admit(&q, "k7", 14, NULL),
                   RELAYD_QUOTA_CLIENTS);
  assert_non_null(relayd_quota_find(&q, "k0"));
  assert_int_equal(q.stats.clients_active, 4);
  /* An evicted client comes back with a fresh record. */
  relayd_quota_release(&q, relayd_quota_find(&q, "k6"));
  assert_int_equal(relayd_quota_admit(&q, "k2", 15, &c), RELAYD_QUOTA_OK);
  assert_int_equal(c->packets, 0);
  relayd_quota_free(&q);
}

static void test_quota_many_clients(void **state) {
  relayd_quota_t q;
  relayd_quota_config_t cfg = base_cfg();
  relayd_quota_client_t *c;
  char key[32];
  int i;
  (void)state;
  cfg.table_size = 64;
  assert_int_equal(relayd_quota_init(&q, &cfg), 0);
  /* Churn far more keys than slots: the table stays consistent. */
  for (i = 0; i < 5000; i++) {
    snprintf(key, sizeof(key), "client-%d", i);
    assert_int_equal(relayd_quota_admit(&q, key, (uint64_t)i, &c),
                     RELAYD_QUOTA_OK);
    assert_ptr_equal(relayd_quota_find(&q, key), c);
    relayd_quota_release(&q, c);
  }
  assert_int_equal(q.stats.clients, 64);
  assert_int_equal(q.stats.evictions, 5000 - 64);
  for (i = 5000 - 64; i < 5000; i++) {
    snprintf(key, sizeof(key), "client-%d", i);
    assert_non_null(relayd_quota_find(&q, key));
  }
  relayd_quota_free(&q);
}

static void test_quota_idle_sweep(void **state) {
  relayd_quota_t q;
  relayd_quota_config_t cfg = base_cfg();
  relayd_quota_client_t *a, *b, *c;
  (void)state;
  cfg.idle_ms = 1000;
  assert_int_equal(relayd_quota_init(&q, &cfg), 0);
  assert_int_equal(relayd_quota_admit(&q, "a", 0, &a), RELAYD_QUOTA_OK);
  assert_int_equal(relayd_quota_admit(&q, "b", 0, &b), RELAYD_QUOTA_OK);
  assert_int_equal(relayd_quota_admit(&q, "c", 0, &c), RELAYD_QUOTA_OK);
  assert_int_equal(relayd_quota_open(&q, c, RELAYD_QUOTA_TUNNEL, 0),
                   RELAYD_QUOTA_OK);
  assert_int_equal(relayd_quota_packet(&q, b, 100, 900), 0);
  assert_int_equal(relayd_quota_idle_ms(a, 999), 999);
  assert_int_equal(relayd_quota_sweep(&q, 999), 0);
  /* a is silent for 1 s: detached; b spoke at 900; c has a session. */
  assert_int_equal(relayd_quota_sweep(&q, 1000), 1);
  assert_false(a->attached);
  assert_true(b->attached);
  assert_true(c->attached);
  assert_int_equal(q.stats.clients_active, 2);
  assert_int_equal(relayd_quota_sweep(&q, 1900), 1);
  assert_false(b->attached);
  assert_int_equal(q.stats.clients_active, 1);
  relayd_quota_close(&q, c, RELAYD_QUOTA_TUNNEL, 2000);
  assert_int_equal(relayd_quota_sweep(&q, 3000), 1);
  assert_int_equal(q.stats.clients_active, 0);
  relayd_quota_free(&q);
}

static void test_quota_bad_config(void **state) {
  relayd_quota_t q;
  relayd_quota_config_t cfg = base_cfg();
  (void)state;
  cfg.table_size = 0;
  assert_int_equal(relayd_quota_init(&q, &cfg), -1);
  cfg.table_size = RELAYD_QUOTA_MAX_TABLE + 1;
  assert_int_equal(relayd_quota_init(&q, &cfg), -1);
  cfg.table_size = 4;
  cfg.rate = RELAYD_QUOTA_MAX_BYTES + 1;
  assert_int_equal(relayd_quota_init(&q, &cfg), -1);
  assert_int_equal(relayd_quota_init(&q, NULL), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quota_bucket),
      cmocka_unit_test(test_quota_bucket_slow_rate),
      cmocka_unit_test(test_quota_unlimited_rate),
      cmocka_unit_test(test_quota_caps),
      cmocka_unit_test(test_quota_max_clients),
      cmocka_unit_test(test_quota_eviction),
      cmocka_unit_test(test_quota_many_clients),
      cmocka_unit_test(test_quota_idle_sweep),
      cmocka_unit_test(test_quota_bad_config),
  };
  return cmocka_run_group_tests_name("relayd_quota", tests, NULL, NULL);
}
