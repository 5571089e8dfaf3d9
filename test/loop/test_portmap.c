/* SPDX-License-Identifier: MIT */
/*
 * Loop tests of qpeer_portmap_t with PCP against an in-process PCP server
 * on 127.0.0.1 (the gateway option points at it; only PCP is enabled, so
 * nothing leaves loopback: no NAT-PMP, no SSDP). The server can grant,
 * refuse, stay silent, answer like a NAT-PMP-only gateway, and "reboot"
 * (reset its epoch and forget the mapping). Covers: the mapping and its
 * report (CGNAT and private external addresses), forced renewal, the
 * observed-address flag, deletion with the creating nonce on close, epoch
 * based re-creation, refusal, the deadline, the PCP-to-NAT-PMP version
 * answer, loss at expiry and recovery after the back-off, closing during
 * an attempt, and the API's error returns. Callbacks must never run
 * inside an API call.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "nat/pcp_msg.h"
#include "util.h"

enum { SRV_OK, SRV_REFUSE, SRV_SILENT, SRV_NATPMP_ONLY };

typedef struct {
  uv_udp_t udp;                 /* the server socket on 127.0.0.1 */
  struct sockaddr_in addr;      /* its address */
  uv_loop_t *loop;              /* the loop */
  int mode;                     /* SRV_* */
  uint32_t epoch_base;          /* epoch at |start| */
  uint64_t start;               /* loop ms of the last (re)boot */
  uint32_t grant;               /* lifetime granted (0: as requested) */
  const char *ext_ip;           /* external address handed out */
  uint16_t ext_port;            /* external port handed out */
  int nmap, nannounce, ndelete; /* requests seen */
  int nonce_mismatch;           /* a renewal or delete with another nonce */
  int have_nonce;               /* a mapping exists */
  uint8_t nonce[QPEER__PCP_NONCE_LEN]; /* its nonce */
} fake_pcp;

static fake_pcp srv;
static uv_loop_t loop;
static uv_timer_t watchdog;
static qpeer_portmap_t pm;
static int in_api;     /* set around API calls */
static int nevents;    /* callbacks seen */
static int events[16]; /* their events (status < 0: the status) */
static qpeer_portmap_info_t last;
static int closed;
static uint64_t t_start;

/* ------------------------------------------------------------- server */

static void srv_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  static char buf[1200];
  (void)h;
  (void)s;
  *b = uv_buf_init(buf, sizeof(buf));
}

static void srv_send(const uint8_t *p, size_t n, const struct sockaddr *to) {
  uv_buf_t b = uv_buf_init((char *)p, (unsigned int)n);
  assert_true(uv_udp_try_send(&srv.udp, &b, 1, to) == (int)n);
}

static void srv_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                     const struct sockaddr *from, unsigned flags) {
  qpeer__pcp_request req;
  qpeer__pcp_response res;
  uint8_t out[128];
  int n;
  (void)u;
  (void)flags;
  if (nread <= 0 || !from)
    return;
  assert_int_equal(qpeer__pcp_decode_request(&req, (const uint8_t *)buf->base,
                                             (size_t)nread),
                   0);
  /* The client writes its own (source) address into the request. */
  assert_int_equal(req.client.ss_family, AF_INET);
  assert_memory_equal(&((struct sockaddr_in *)&req.client)->sin_addr,
                      &((const struct sockaddr_in *)from)->sin_addr, 4);
  if (req.opcode == QPEER__PCP_OP_ANNOUNCE)
    srv.nannounce++;
  else if (req.lifetime == 0)
    srv.ndelete++;
  else
    srv.nmap++;
  if (srv.mode == SRV_SILENT)
    return;
  if (srv.mode == SRV_NATPMP_ONLY) {
    static const uint8_t unsupp[] = {0, 0x81, 0, 1, 0, 0, 0, 9};
    srv_send(unsupp, sizeof(unsupp), from);
    return;
  }
  memset(&res, 0, sizeof(res));
  res.version = 2;
  res.opcode = req.opcode;
  res.epoch =
      srv.epoch_base + (uint32_t)((uv_now(srv.loop) - srv.start) / 1000);
  if (req.opcode == QPEER__PCP_OP_MAP) {
    struct sockaddr_in *e = (struct sockaddr_in *)&res.external;
    memcpy(res.nonce, req.nonce, QPEER__PCP_NONCE_LEN);
    res.protocol = req.protocol;
    res.internal_port = req.internal_port;
    res.external_port = srv.ext_port;
    e->sin_family = AF_INET;
    inet_pton(AF_INET, srv.ext_ip, &e->sin_addr);
    if (srv.have_nonce && memcmp(req.nonce, srv.nonce, 12) != 0)
      srv.nonce_mismatch++;
    if (srv.mode == SRV_REFUSE) {
      res.result = QPEER__PCP_NOT_AUTHORIZED;
    } else if (req.lifetime == 0) {
      srv.have_nonce = 0;
    } else {
      memcpy(srv.nonce, req.nonce, 12);
      srv.have_nonce = 1;
      res.lifetime = srv.grant ? srv.grant : req.lifetime;
    }
  }
  n = qpeer__pcp_encode_response(out, sizeof(out), &res);
  assert_true(n > 0);
  srv_send(out, (size_t)n, from);
}

static void srv_reboot(void) {
  srv.epoch_base = 0;
  srv.start = uv_now(srv.loop);
  srv.have_nonce = 0;
}

static void setup_common(int mode) {
  int len = sizeof(srv.addr);
  memset(&srv, 0, sizeof(srv));
  memset(&pm, 0, sizeof(pm));
  memset(&last, 0, sizeof(last));
  nevents = 0;
  closed = 0;
  assert_int_equal(uv_loop_init(&loop), 0);
  qpt_watchdog_start(&loop, &watchdog, 20000);
  srv.loop = &loop;
  srv.mode = mode;
  srv.epoch_base = 1000;
  srv.start = uv_now(&loop);
  srv.ext_ip = "100.64.0.7";
  srv.ext_port = 50000;
  uv_ip4_addr("127.0.0.1", 0, &srv.addr);
  assert_int_equal(uv_udp_init(&loop, &srv.udp), 0);
  assert_int_equal(uv_udp_bind(&srv.udp, (const struct sockaddr *)&srv.addr, 0),
                   0);
  assert_int_equal(
      uv_udp_getsockname(&srv.udp, (struct sockaddr *)&srv.addr, &len), 0);
  assert_int_equal(uv_udp_recv_start(&srv.udp, srv_alloc, srv_recv), 0);
  /* The loop runs as long as the handle under test keeps it alive. */
  uv_unref((uv_handle_t *)&srv.udp);
  t_start = uv_now(&loop);
}

/* drain_server lets the (unreferenced) server read what is still queued
 * for it, such as a delete sent just before the handle closed. */
static void drain_server(void) {
  int i;
  for (i = 0; i < 20; i++) {
    uv_sleep(5);
    uv_run(&loop, UV_RUN_NOWAIT);
  }
}

static void teardown_common(void) {
  uv_close((uv_handle_t *)&srv.udp, NULL);
  uv_close((uv_handle_t *)&watchdog, NULL);
  qpt_loop_teardown(&loop);
}

static void default_opts(qpeer_portmap_options_t *o) {
  qpeer_portmap_options_default(o);
  o->gateway = (const struct sockaddr *)&srv.addr;
  o->protocols = QPEER_PORTMAP_PCP; /* loopback only */
  o->internal_port = 40000;
  o->lifetime = 60;
  o->timeout_ms = 2000;
  o->check_interval_ms = 0;
  o->retry_max_ms = 0;
  o->close_timeout_ms = 500;
}

static void on_closed(qpeer_handle_t *h) {
  assert_ptr_equal(h, &pm);
  assert_false(in_api);
  closed++;
}

static void do_close(void) {
  in_api = 1;
  assert_int_equal(qpeer_close((qpeer_handle_t *)&pm, on_closed), 0);
  assert_int_equal(qpeer_close((qpeer_handle_t *)&pm, on_closed), UV_EALREADY);
  in_api = 0;
}

static void record(int status, const qpeer_portmap_info_t *info) {
  assert_false(in_api); /* never inside the API call that caused it */
  assert_true(nevents < 16);
  events[nevents++] = status < 0 ? status : (int)info->event;
  last = *info;
}

static void assert_ext(const char *want) {
  char buf[QPEER_ADDR_STRLEN];
  qpeer_addr_format((const struct sockaddr *)&last.external, buf, sizeof(buf));
  assert_string_equal(buf, want);
}

/* ------------------------------------------ map, renew, observe, close */

static void cb_basic(qpeer_portmap_t *h, int status,
                     const qpeer_portmap_info_t *info) {
  struct sockaddr_in obs;
  char buf[QPEER_ADDR_STRLEN];
  assert_ptr_equal(h, &pm);
  record(status, info);
  assert_int_equal(status, 0);
  switch (nevents) {
  case 1:
    assert_int_equal(info->event, QPEER_PORTMAP_EV_MAPPED);
    assert_int_equal(info->protocol, QPEER_PORTMAP_PCP);
    assert_ext("100.64.0.7:50000");
    qpeer_addr_format((const struct sockaddr *)&info->internal, buf,
                      sizeof(buf));
    assert_string_equal(buf, "127.0.0.1:40000");
    assert_int_equal(info->lifetime, 60);
    assert_int_equal(info->epoch, 1000);
    assert_true(info->flags & QPEER_PORTMAP_EXT_CGNAT);
    assert_true(info->double_nat);
    assert_true(info->answered & QPEER_PORTMAP_PCP);
    in_api = 1;
    assert_int_equal(qpeer_portmap_renew(&pm), 0);
    assert_int_equal(qpeer_portmap_renew(&pm), UV_EALREADY);
    in_api = 0;
    break;
  case 2:
    assert_int_equal(info->event, QPEER_PORTMAP_EV_RENEWED);
    assert_ext("100.64.0.7:50000");
    /* The observed address agrees: nothing changes, no callback. */
    uv_ip4_addr("100.64.0.7", 1234, &obs);
    in_api = 1;
    assert_int_equal(
        qpeer_portmap_set_observed_addr(&pm, (const struct sockaddr *)&obs), 0);
    /* ... then it differs: CHANGED, later. */
    uv_ip4_addr("198.51.100.1", 1234, &obs);
    assert_int_equal(
        qpeer_portmap_set_observed_addr(&pm, (const struct sockaddr *)&obs), 0);
    in_api = 0;
    break;
  case 3:
    assert_int_equal(info->event, QPEER_PORTMAP_EV_CHANGED);
    assert_true(info->flags & QPEER_PORTMAP_STUN_MISMATCH);
    {
      qpeer_portmap_info_t cur;
      assert_int_equal(qpeer_portmap_get_info(&pm, &cur), 0);
      assert_true(cur.flags & QPEER_PORTMAP_STUN_MISMATCH);
    }
    do_close();
    break;
  default:
    fail();
  }
}

static void test_portmap_basic(void **state) {
  qpeer_portmap_options_t o;
  (void)state;
  setup_common(SRV_OK);
  default_opts(&o);
  assert_int_equal(qpeer_portmap_init(&loop, &pm, &o), 0);
  assert_int_equal(pm.type, QPEER_PORTMAP);
  assert_string_equal(qpeer_handle_type_name(QPEER_PORTMAP), "portmap");
  in_api = 1;
  assert_int_equal(qpeer_portmap_start(&pm, cb_basic), 0);
  in_api = 0;
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(nevents, 3);
  assert_int_equal(closed, 1);
  assert_int_equal(srv.nmap, 2);
  assert_int_equal(srv.ndelete, 1);        /* deleted on close ... */
  assert_int_equal(srv.nonce_mismatch, 0); /* ... with the same nonce */
  assert_false(srv.have_nonce);
  teardown_common();
}

/* ------------------------------------------------------- gateway reboot */

static void on_reboot_timer(uv_timer_t *t) {
  srv_reboot();
  uv_close((uv_handle_t *)t, NULL);
}

static uv_timer_t reboot_timer;

static void cb_reboot(qpeer_portmap_t *h, int status,
                      const qpeer_portmap_info_t *info) {
  (void)h;
  record(status, info);
  assert_int_equal(status, 0);
  if (nevents == 1) {
    assert_int_equal(info->event, QPEER_PORTMAP_EV_MAPPED);
    uv_timer_init(&loop, &reboot_timer);
    uv_timer_start(&reboot_timer, on_reboot_timer, 300, 0);
    return;
  }
  assert_int_equal(info->event, QPEER_PORTMAP_EV_RECREATED);
  assert_true(info->epoch < 5);
  assert_true(srv.have_nonce); /* the server has it again */
  do_close();
}

static void test_portmap_reboot(void **state) {
  qpeer_portmap_options_t o;
  (void)state;
  setup_common(SRV_OK);
  default_opts(&o);
  o.check_interval_ms = 200;
  assert_int_equal(qpeer_portmap_init(&loop, &pm, &o), 0);
  assert_int_equal(qpeer_portmap_start(&pm, cb_reboot), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(nevents, 2);
  assert_int_equal(closed, 1);
  assert_true(srv.nannounce >= 2);
  assert_int_equal(srv.nmap, 2); /* the mapping, its re-creation */
  assert_int_equal(srv.nonce_mismatch, 0);
  assert_int_equal(srv.ndelete, 1);
  teardown_common();
}

/* ------------------------------------- refusal, silence, NAT-PMP only */

static void cb_fail(qpeer_portmap_t *h, int status,
                    const qpeer_portmap_info_t *info) {
  (void)h;
  record(status, info);
  assert_true(status < 0);
  assert_int_equal(info->event, QPEER_PORTMAP_EV_FAILED);
  assert_int_equal(info->protocol, 0);
  assert_int_equal(info->tried, QPEER_PORTMAP_PCP);
  in_api = 1;
  assert_int_equal(qpeer_portmap_get_info(&pm, NULL), UV_EINVAL);
  in_api = 0;
  do_close();
}

static uint64_t run_failing(int mode, uint64_t timeout_ms) {
  qpeer_portmap_options_t o;
  uint64_t ms;
  setup_common(mode);
  default_opts(&o);
  o.timeout_ms = timeout_ms;
  assert_int_equal(qpeer_portmap_init(&loop, &pm, &o), 0);
  assert_int_equal(qpeer_portmap_start(&pm, cb_fail), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  ms = uv_now(&loop) - t_start;
  assert_int_equal(nevents, 1);
  assert_int_equal(closed, 1);
  drain_server();
  return ms;
}

static void test_portmap_refused(void **state) {
  uint64_t ms;
  (void)state;
  ms = run_failing(SRV_REFUSE, 2000);
  assert_int_equal(events[0], QPEER_EMAPREFUSED);
  assert_int_equal(last.result_code, QPEER__PCP_NOT_AUTHORIZED);
  assert_true(last.answered & QPEER_PORTMAP_PCP);
  assert_true(ms < 1000);
  assert_int_equal(srv.nmap, 1); /* no retry storm */
  teardown_common();
}

static void test_portmap_silent(void **state) {
  uint64_t ms;
  (void)state;
  ms = run_failing(SRV_SILENT, 800);
  assert_int_equal(events[0], QPEER_ENOMAPPING);
  assert_int_equal(last.answered, 0);
  assert_true(ms >= 790 && ms < 1500);
  assert_int_equal(srv.nmap, 1);    /* IRT 3 s: one request in 0.8 s */
  assert_int_equal(srv.ndelete, 1); /* and a delete when giving up */
  teardown_common();
}

static void test_portmap_natpmp_only(void **state) {
  uint64_t ms;
  (void)state;
  /* NAT-PMP itself is not tried: it needs port 5351 (libnatpmp). */
  ms = run_failing(SRV_NATPMP_ONLY, 2000);
  assert_int_equal(events[0], QPEER_ENOMAPPING);
  assert_int_equal(last.answered, 0);
  assert_true(ms < 1000);
  teardown_common();
}

/* ------------------------------------------ loss at expiry, recovery */

static void cb_loss(qpeer_portmap_t *h, int status,
                    const qpeer_portmap_info_t *info) {
  (void)h;
  record(status, info);
  switch (nevents) {
  case 1: /* mapped for 2 s; the server then goes quiet */
    assert_int_equal(status, 0);
    assert_int_equal(info->lifetime, 2);
    srv.mode = SRV_SILENT;
    break;
  case 2: /* lost at expiry; the server comes back */
    assert_int_equal(status, QPEER_ENOMAPPING);
    assert_int_equal(info->event, QPEER_PORTMAP_EV_FAILED);
    srv.mode = SRV_OK;
    srv.ext_ip = "10.9.8.7";
    break;
  case 3: /* a later retry succeeds */
    assert_int_equal(status, 0);
    assert_int_equal(info->event, QPEER_PORTMAP_EV_MAPPED);
    assert_ext("10.9.8.7:50000");
    assert_true(info->flags & QPEER_PORTMAP_EXT_PRIVATE);
    assert_true(info->double_nat);
    do_close();
    break;
  default:
    fail();
  }
}

static void test_portmap_loss(void **state) {
  qpeer_portmap_options_t o;
  uint64_t ms;
  (void)state;
  setup_common(SRV_OK);
  srv.grant = 2;
  default_opts(&o);
  o.retry_min_ms = 300;
  o.retry_max_ms = 600;
  assert_int_equal(qpeer_portmap_init(&loop, &pm, &o), 0);
  assert_int_equal(qpeer_portmap_start(&pm, cb_loss), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  ms = uv_now(&loop) - t_start;
  assert_int_equal(nevents, 3);
  fprintf(stderr, "loss and recovery took %llu ms\n", (unsigned long long)ms);
  assert_int_equal(closed, 1);
  assert_true(ms >= 2000 && ms < 6000);
  teardown_common();
}

/* ------------------------------------------------ closing and the API */

static void cb_never(qpeer_portmap_t *h, int status,
                     const qpeer_portmap_info_t *info) {
  (void)h;
  (void)status;
  (void)info;
  fail();
}

static void test_portmap_close_early(void **state) {
  qpeer_portmap_options_t o;
  (void)state;
  setup_common(SRV_SILENT);
  default_opts(&o);
  assert_int_equal(qpeer_portmap_init(&loop, &pm, &o), 0);
  assert_int_equal(qpeer_portmap_start(&pm, cb_never), 0);
  do_close();
  assert_int_equal(closed, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(closed, 1);
  assert_int_equal(nevents, 0);
  teardown_common();
}

static void cb_restart(qpeer_portmap_t *h, int status,
                       const qpeer_portmap_info_t *info) {
  (void)h;
  record(status, info);
  assert_int_equal(status, 0);
  in_api = 1;
  if (nevents == 1) {
    /* stop deletes in the background; start again once it is done. */
    assert_int_equal(qpeer_portmap_stop(&pm), 0);
    assert_int_equal(qpeer_portmap_start(&pm, cb_restart), UV_EBUSY);
    assert_int_equal(qpeer_portmap_renew(&pm), UV_ENOTCONN);
  } else {
    do_close();
  }
  in_api = 0;
}

static void on_restart_timer(uv_timer_t *t) {
  assert_int_equal(srv.ndelete, 1);
  assert_int_equal(qpeer_portmap_start(&pm, cb_restart), 0);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_portmap_api(void **state) {
  qpeer_portmap_options_t o;
  qpeer_portmap_info_t info;
  struct sockaddr bad;
  uv_timer_t t;
  (void)state;
  memset(&bad, 0, sizeof(bad));
  bad.sa_family = AF_UNIX;
  setup_common(SRV_OK);
  default_opts(&o);
  o.internal_port = 0;
  assert_int_equal(qpeer_portmap_init(&loop, &pm, &o), UV_EINVAL);
  default_opts(&o);
  o.protocols = 0;
  assert_int_equal(qpeer_portmap_init(&loop, &pm, &o), UV_EINVAL);
  default_opts(&o);
  o.gateway = (const struct sockaddr *)&bad;
  assert_int_equal(qpeer_portmap_init(&loop, &pm, &o), UV_EINVAL);
  assert_int_equal(qpeer_portmap_init(NULL, &pm, &o), UV_EINVAL);
  assert_int_equal(qpeer_portmap_start(&pm, cb_never), UV_EINVAL);
  default_opts(&o);
  assert_int_equal(qpeer_portmap_init(&loop, &pm, &o), 0);
  assert_int_equal(qpeer_portmap_start(&pm, NULL), UV_EINVAL);
  assert_int_equal(qpeer_portmap_renew(&pm), UV_ENOTCONN);
  assert_int_equal(qpeer_portmap_get_info(&pm, &info), UV_ENOTCONN);
  assert_int_equal(
      qpeer_portmap_set_observed_addr(&pm, (const struct sockaddr *)&bad),
      UV_EINVAL);
  assert_int_equal(qpeer_portmap_set_observed_addr(&pm, NULL), 0);
  assert_int_equal(qpeer_portmap_stop(&pm), 0); /* not started: no-op */
  in_api = 1;
  assert_int_equal(qpeer_portmap_start(&pm, cb_restart), 0);
  assert_int_equal(qpeer_portmap_start(&pm, cb_restart), UV_EALREADY);
  assert_int_equal(qpeer_portmap_renew(&pm), UV_EALREADY);
  in_api = 0;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, on_restart_timer, 500, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(nevents, 2);
  assert_int_equal(closed, 1);
  assert_int_equal(srv.ndelete, 2);
  assert_int_equal(qpeer_portmap_start(&pm, cb_never), UV_EINVAL);
  assert_string_equal(qpeer_portmap_proto_name(QPEER_PORTMAP_NATPMP),
                      "nat-pmp");
  assert_string_equal(qpeer_portmap_proto_name(0), "none");
  assert_string_equal(qpeer_portmap_event_name(QPEER_PORTMAP_EV_RECREATED),
                      "recreated");
  assert_string_equal(qpeer_err_name(QPEER_EMAPREFUSED), "EMAPREFUSED");
  assert_string_equal(qpeer_err_name(QPEER_ENOGATEWAY), "ENOGATEWAY");
  teardown_common();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_portmap_basic),
      cmocka_unit_test(test_portmap_reboot),
      cmocka_unit_test(test_portmap_refused),
      cmocka_unit_test(test_portmap_silent),
      cmocka_unit_test(test_portmap_natpmp_only),
      cmocka_unit_test(test_portmap_loss),
      cmocka_unit_test(test_portmap_close_early),
      cmocka_unit_test(test_portmap_api),
  };
  return cmocka_run_group_tests_name("loop_portmap", tests, NULL, NULL);
}
