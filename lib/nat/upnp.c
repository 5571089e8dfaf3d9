/* SPDX-License-Identifier: MIT */
/*
 * UPnP IGD glue: the operations that run on the thread pool (discover,
 * add, check, delete: plain miniupnpc calls on this struct's state), the
 * completion on the loop thread, and closing. Numbers go to miniupnpc as
 * decimal strings and the protocol is always "UDP".
 */
#include <arpa/inet.h>
#include <miniupnpc/upnpcommands.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nat/upnp.h"

/* UPnP error codes handled specially (UPnP IGD WANIPConnection). */
#define UPNP_ERR_NO_SUCH_INDEX 713
#define UPNP_ERR_NO_SUCH_ENTRY 714
#define UPNP_ERR_CONFLICT 718
#define UPNP_ERR_SAME_PORT_REQUIRED 724
#define UPNP_ERR_PERMANENT_ONLY 725

/* ---------------------------------------------------- thread-pool side */

/* next_rand steps a xorshift32 generator (alternative ports on 718). */
static uint32_t next_rand(uint32_t *s) {
  uint32_t x = *s ? *s : 0x9e3779b9u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *s = x;
  return x;
}

static void get_external(qpeer__upnp *up) {
  char ext[64];
  memset(ext, 0, sizeof(ext));
  if (UPNP_GetExternalIPAddress(up->urls.controlURL, up->igd.first.servicetype,
                                ext) != 0)
    return;
  ext[sizeof(ext) - 1] = '\0';
  if (inet_pton(AF_INET, ext, &up->out.external.sin_addr) == 1) {
    up->out.external.sin_family = AF_INET;
    up->out.have_external = 1;
  }
}

static void free_igd(qpeer__upnp *up) {
  if (up->have_igd)
    FreeUPNPUrls(&up->urls);
  up->have_igd = 0;
  memset(&up->urls, 0, sizeof(up->urls));
}

static void do_discover(qpeer__upnp *up) {
  int state, err = 0;
  free_igd(up);
  memset(&up->igd, 0, sizeof(up->igd));
  memset(up->lanaddr, 0, sizeof(up->lanaddr));
  if (up->root_url[0]) {
    state = UPNP_GetIGDFromUrl(up->root_url, &up->urls, &up->igd, up->lanaddr,
                               sizeof(up->lanaddr));
  } else {
    /* Every search target is sent at once and answers are collected for
     * one |delay_ms| (searchalltypes = 1; upnpDiscover() would wait that
     * long for each target in turn). "" disables the minissdpd socket:
     * ask the network, not a daemon of the host, which may not share this
     * network namespace. */
    static const char *const types[] = {
        "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
        "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
        "urn:schemas-upnp-org:service:WANIPConnection:1",
        "urn:schemas-upnp-org:service:WANIPConnection:2",
        "urn:schemas-upnp-org:service:WANPPPConnection:1",
        NULL};
    struct UPNPDev *devs = upnpDiscoverDevices(
        types, up->delay_ms, NULL, "", UPNP_LOCAL_PORT_ANY, 0, 2, &err, 1);
    if (!devs) {
      up->out.status =
          err == UPNPDISCOVER_MEMORY_ERROR ? UV_ENOMEM : QPEER_ENOMAPPING;
      up->out.upnp_error = err;
      return;
    }
    state = UPNP_GetValidIGD(devs, &up->urls, &up->igd, up->lanaddr,
                             sizeof(up->lanaddr));
    freeUPNPDevlist(devs);
  }
  up->lanaddr[sizeof(up->lanaddr) - 1] = '\0';
  up->out.igd_state = state;
  if (state != 1 && state != 2) {
    FreeUPNPUrls(&up->urls);
    memset(&up->urls, 0, sizeof(up->urls));
    up->out.status = state < 0 ? UV_ENOMEM : QPEER_ENOMAPPING;
    return;
  }
  up->have_igd = 1;
  up->igd_state = state;
  if (inet_pton(AF_INET, up->lanaddr, &up->out.lan.sin_addr) == 1)
    up->out.lan.sin_family = AF_INET;
  get_external(up);
}

/* lookup reads our entry for |port|. Returns miniupnpc's result; on 0
 * sets exists (entry points at us) and the lease. */
static int lookup(qpeer__upnp *up, uint16_t port) {
  char ext[8], ic[64], ip[16], desc[96], en[16], lease[32];
  int r;
  snprintf(ext, sizeof(ext), "%u", (unsigned)port);
  memset(ic, 0, sizeof(ic));
  memset(ip, 0, sizeof(ip));
  memset(lease, 0, sizeof(lease));
  r = UPNP_GetSpecificPortMappingEntry(up->urls.controlURL,
                                       up->igd.first.servicetype, ext, "UDP",
                                       NULL, ic, ip, desc, en, lease);
  if (r != 0)
    return r;
  ic[sizeof(ic) - 1] = ip[sizeof(ip) - 1] = lease[sizeof(lease) - 1] = '\0';
  up->out.exists = strcmp(ic, up->lanaddr) == 0 &&
                   strtoul(ip, NULL, 10) == up->internal_port;
  up->out.external_port = port;
  up->out.lease = (uint32_t)strtoul(lease, NULL, 10);
  return 0;
}

static void do_add(qpeer__upnp *up) {
  char ext[8], in[8], lease[16];
  uint16_t port = up->want_port ? up->want_port : up->internal_port;
  uint32_t secs = up->lease;
  int r = 0, tries;
  snprintf(in, sizeof(in), "%u", (unsigned)up->internal_port);
  for (tries = 0; tries < 6; tries++) {
    snprintf(ext, sizeof(ext), "%u", (unsigned)port);
    snprintf(lease, sizeof(lease), "%u", (unsigned)secs);
    r = UPNP_AddPortMapping(up->urls.controlURL, up->igd.first.servicetype, ext,
                            in, up->lanaddr, up->desc, "UDP", NULL, lease);
    if (r == 0)
      break;
    if (r == UPNP_ERR_CONFLICT)
      port = (uint16_t)(1024 + next_rand(&up->seed) % (65536 - 1024));
    else if (r == UPNP_ERR_PERMANENT_ONLY && secs != 0)
      secs = 0;
    else if (r == UPNP_ERR_SAME_PORT_REQUIRED && port != up->internal_port)
      port = up->internal_port;
    else
      break;
  }
  up->out.upnp_error = r;
  if (r != 0) {
    up->out.status = r > 0 ? QPEER_EMAPREFUSED : UV_EIO;
    return;
  }
  up->out.external_port = port;
  up->out.lease = secs;
  /* Read back what the IGD recorded (the lease it granted). */
  if (lookup(up, port) == 0 && !up->out.exists) {
    up->out.status = QPEER_EMAPREFUSED; /* someone else's entry */
    return;
  }
  up->out.exists = 1;
  get_external(up);
}

static void do_check(qpeer__upnp *up) {
  int r = lookup(up, up->want_port);
  up->out.upnp_error = r;
  if (r == UPNP_ERR_NO_SUCH_ENTRY || r == UPNP_ERR_NO_SUCH_INDEX) {
    up->out.exists = 0; /* the IGD forgot it */
  } else if (r != 0) {
    up->out.status = r > 0 ? QPEER_EMAPREFUSED : UV_EIO;
    return;
  }
  get_external(up);
}

static void do_delete(qpeer__upnp *up) {
  char ext[8];
  int r;
  snprintf(ext, sizeof(ext), "%u", (unsigned)up->want_port);
  r = UPNP_DeletePortMapping(up->urls.controlURL, up->igd.first.servicetype,
                             ext, "UDP", NULL);
  up->out.upnp_error = r;
  if (r != 0 && r != UPNP_ERR_NO_SUCH_ENTRY)
    up->out.status = r > 0 ? QPEER_EMAPREFUSED : UV_EIO;
}

static void work_cb(uv_work_t *w) {
  qpeer__upnp *up = QPEER__CONTAINER_OF(w, qpeer__upnp, work);
  memset(&up->out, 0, sizeof(up->out));
  up->out.op = up->op;
  up->out.igd_state = up->igd_state;
  if (up->op != QPEER__UPNP_DISCOVER && !up->have_igd) {
    up->out.status = QPEER_ENOMAPPING;
    return;
  }
  switch (up->op) {
  case QPEER__UPNP_DISCOVER:
    do_discover(up);
    break;
  case QPEER__UPNP_ADD:
    do_add(up);
    break;
  case QPEER__UPNP_CHECK:
    do_check(up);
    break;
  default:
    do_delete(up);
    break;
  }
}

/* ------------------------------------------------------ loop-thread side */

static void finish_close(qpeer__upnp *up) {
  qpeer__upnp_close_cb cb = up->close_cb;
  free_igd(up);
  if (cb)
    cb(up);
}

static void after_work_cb(uv_work_t *w, int status) {
  qpeer__upnp *up = QPEER__CONTAINER_OF(w, qpeer__upnp, work);
  qpeer__upnp_cb cb = up->cb;
  up->busy = 0;
  up->cb = NULL;
  if (up->closing) {
    finish_close(up);
    return;
  }
  if (status == UV_ECANCELED) {
    memset(&up->out, 0, sizeof(up->out));
    up->out.op = up->op;
    up->out.status = UV_ECANCELED;
  }
  if (up->out.status != 0)
    QPEER__LOG_DEBUG("upnp: op %d failed: %s (upnp %d, igd %d)", up->op,
                     qpeer_err_name(up->out.status), up->out.upnp_error,
                     up->out.igd_state);
  if (cb)
    cb(up, &up->out);
}

static int queue(qpeer__upnp *up, int op, qpeer__upnp_cb cb) {
  int rv;
  if (up->busy)
    return UV_EBUSY;
  if (up->closing)
    return UV_EINVAL;
  up->op = op;
  up->cb = cb;
  if ((rv = uv_queue_work(up->loop, &up->work, work_cb, after_work_cb)) != 0)
    return rv;
  up->busy = 1;
  return 0;
}

void qpeer__upnp_init(uv_loop_t *loop, qpeer__upnp *up, const char *root_url,
                      const char *desc, uint16_t internal_port) {
  memset(up, 0, sizeof(*up));
  up->loop = loop;
  up->internal_port = internal_port;
  if (root_url)
    snprintf(up->root_url, sizeof(up->root_url), "%s", root_url);
  snprintf(up->desc, sizeof(up->desc), "%s", desc ? desc : "qpeer");
  (void)qpeer__rand(&up->seed, sizeof(up->seed));
}

int qpeer__upnp_discover(qpeer__upnp *up, int delay_ms, qpeer__upnp_cb cb) {
  up->delay_ms = delay_ms > 0 ? delay_ms : 2000;
  return queue(up, QPEER__UPNP_DISCOVER, cb);
}

int qpeer__upnp_add(qpeer__upnp *up, uint16_t ext_port, uint32_t lease,
                    qpeer__upnp_cb cb) {
  up->want_port = ext_port;
  up->lease = lease;
  return queue(up, QPEER__UPNP_ADD, cb);
}

int qpeer__upnp_check(qpeer__upnp *up, uint16_t ext_port, qpeer__upnp_cb cb) {
  up->want_port = ext_port;
  return queue(up, QPEER__UPNP_CHECK, cb);
}

int qpeer__upnp_delete(qpeer__upnp *up, uint16_t ext_port, qpeer__upnp_cb cb) {
  up->want_port = ext_port;
  return queue(up, QPEER__UPNP_DELETE, cb);
}

void qpeer__upnp_close(qpeer__upnp *up, qpeer__upnp_close_cb cb) {
  up->closing = 1;
  up->close_cb = cb;
  if (up->busy) {
    /* Cancel if still queued; either way after_work_cb finishes. */
    (void)uv_cancel((uv_req_t *)&up->work);
    return;
  }
  finish_close(up);
}
