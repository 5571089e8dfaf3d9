/* SPDX-License-Identifier: MIT */
/*
 * qpeer_portmap_t: obtains a UDP port mapping from the gateway and keeps
 * it. Divisions, in order: state and helpers; reporting; backends (create
 * and drop); the attempt (PCP, NAT-PMP and UPnP in parallel, chosen in
 * that order of preference); the mapped phase (renewal, lost-mapping
 * checks, re-creation); stop and close (deleting the mapping); the public
 * API. doc/portmap.md explains the timers and the choice of protocol.
 */
#include <arpa/inet.h>
#include <string.h>

#include "core/addr.h"
#include "internal.h"
#include "nat/gateway.h"
#include "nat/natpmp.h"
#include "nat/pcp.h"
#include "nat/portmap.h"
#include "nat/upnp.h"

enum { IDX_PCP = 0, IDX_NATPMP = 1, IDX_UPNP = 2, NPROTO = 3 };

/* Where one protocol stands within an attempt. */
enum {
  P_OFF = 0, /* not tried */
  P_WAITING, /* UPnP: to be started if PCP and NAT-PMP do not answer */
  P_PENDING, /* probing (PCP: its MAP request is the probe) */
  P_USABLE,  /* the gateway answered the probe; a mapping can be asked */
  P_MAPPING, /* the mapping request is in flight */
  P_FAILED   /* out of this attempt */
};

/* The handle's state. */
enum {
  S_IDLE = 0, /* initialised or stopped */
  S_ATTEMPT,  /* obtaining a mapping */
  S_MAPPED,   /* holding a mapping */
  S_FAILED,   /* no mapping; waiting to retry (or for renew()) */
  S_STOPPING  /* deleting the mapping, closing the backends */
};

/* What the mapped phase is doing. */
enum {
  OP_NONE = 0,
  OP_RENEW, /* renewal (or a forced renewal) */
  OP_CHECK, /* periodic check for a gateway that lost the mapping */
  OP_DELETE /* stop/close: deleting */
};

static const unsigned int proto_bits[NPROTO] = {
    QPEER_PORTMAP_PCP, QPEER_PORTMAP_NATPMP, QPEER_PORTMAP_UPNP};

typedef struct qpeer__pm {
  qpeer_portmap_t *handle; /* the user's handle */
  uv_loop_t *loop;         /* the loop */
  /* Options (copied). */
  unsigned int protocols;         /* QPEER_PORTMAP_* mask */
  uint32_t lifetime;              /* requested lifetime (s) */
  uint16_t internal_port;         /* the port mapped */
  uint16_t suggest_port;          /* external port suggested */
  uint64_t timeout_ms;            /* attempt deadline */
  uint64_t check_ms;              /* check interval (0: off) */
  uint64_t retry_min_ms;          /* first back-off */
  uint64_t retry_max_ms;          /* back-off cap (0: no retries) */
  uint64_t close_ms;              /* delete bound */
  int have_gw_opt;                /* gw_opt was given */
  struct sockaddr_storage gw_opt; /* the gateway option */
  struct sockaddr_storage local;  /* endpoint's bound address, or any */
  char *root_url;                 /* UPnP root description URL or NULL */
  char *desc;                     /* UPnP description */
  /* Timers. */
  uv_timer_t t_attempt; /* grace, deadline, retry back-off */
  uv_timer_t t_renew;   /* renewal at half the lifetime */
  uv_timer_t t_check;   /* periodic lost-mapping check */
  uv_timer_t t_notify;  /* deferred CHANGED report */
  int ntimers;          /* timers not yet closed */
  /* State. */
  int state;           /* S_* */
  int closing;         /* qpeer_close was called */
  qpeer_portmap_cb cb; /* the user's callback */
  /* The attempt. */
  struct sockaddr_storage gateway; /* gateway asked (port: PCP server) */
  uint64_t attempt_start;          /* loop ms */
  uint64_t deadline;               /* loop ms */
  int ps[NPROTO];                  /* P_* per protocol */
  unsigned int tried;              /* protocols tried */
  unsigned int answered;           /* protocols whose gateway answered */
  int refused;                     /* some gateway refused */
  int result_code;                 /* its result or error code */
  struct sockaddr_in natpmp_ext;   /* NAT-PMP public address */
  uint64_t backoff_ms;             /* next retry delay */
  int fail_reported;               /* the last report was this failure */
  /* Backends (allocated; freed by their close callbacks). */
  qpeer__pcp *pcp;       /* PCP client or NULL */
  qpeer__natpmp *natpmp; /* NAT-PMP client or NULL */
  qpeer__upnp *upnp;     /* UPnP client or NULL */
  int nbackends;         /* backends not yet freed */
  /* The mapping. */
  int mapped;                      /* info holds a mapping */
  qpeer_portmap_info_t info;       /* the mapping */
  uint64_t expires_at;             /* loop ms; 0 permanent */
  int op;                          /* OP_* in the mapped phase */
  int op_recreate;                 /* the gateway had lost it */
  int pcp_no_announce;             /* the server refuses ANNOUNCE */
  int igd_state;                   /* UPNP_GetValidIGD()'s answer */
  uint16_t upnp_delete_port;       /* UPnP entry to delete on stop */
  int have_new_ext;                /* new_ext came with this operation */
  struct sockaddr_storage new_ext; /* external IP reported meanwhile */
  /* The STUN-observed address. */
  int have_observed;                /* observed is set */
  struct sockaddr_storage observed; /* its IP */
} qpeer__pm;

static void on_pcp(qpeer__pcp *p, const qpeer__pcp_result *r);
static void on_natpmp(qpeer__natpmp *np, const qpeer__natpmp_result *r);
static void on_upnp(qpeer__upnp *up, const qpeer__upnp_result *r);
static void attempt_begin(qpeer__pm *pm);
static void maybe_stop_done(qpeer__pm *pm);

/* ---------------------------------------------------------------- helpers */

static uint64_t now_ms(const qpeer__pm *pm) { return uv_now(pm->loop); }

static uint64_t jitter(uint64_t ms) {
  uint16_t r = 0;
  if (qpeer__rand(&r, sizeof(r)) != 0)
    return ms;
  return ms * (900 + (uint64_t)(r % 201)) / 1000;
}

/* same_ip compares the IP addresses of |a| and |b| (IPv4-mapped IPv6
 * equals IPv4), not the ports. */
static int same_ip(const struct sockaddr_storage *a,
                   const struct sockaddr_storage *b) {
  struct sockaddr_storage na, nb;
  qpeer__addr_normalize(&na, (const struct sockaddr *)a);
  qpeer__addr_normalize(&nb, (const struct sockaddr *)b);
  qpeer__addr_set_port((struct sockaddr *)&na, 0);
  qpeer__addr_set_port((struct sockaddr *)&nb, 0);
  return qpeer__addr_equal((const struct sockaddr *)&na,
                           (const struct sockaddr *)&nb);
}

static unsigned int compute_flags(const qpeer__pm *pm) {
  const qpeer_portmap_info_t *in = &pm->info;
  unsigned int f = 0, c;
  c = qpeer__gateway_classify((const struct sockaddr *)&in->external);
  if (c & QPEER__ADDR_PRIVATE)
    f |= QPEER_PORTMAP_EXT_PRIVATE;
  if (c & QPEER__ADDR_CGNAT)
    f |= QPEER_PORTMAP_EXT_CGNAT;
  if (c & QPEER__ADDR_RESERVED)
    f |= QPEER_PORTMAP_EXT_RESERVED;
  if (pm->have_observed && !same_ip(&pm->observed, &in->external))
    f |= QPEER_PORTMAP_STUN_MISMATCH;
  if (in->protocol == QPEER_PORTMAP_UPNP) {
    if (pm->igd_state == 2)
      f |= QPEER_PORTMAP_IGD_RESERVED;
    if (in->lifetime == 0)
      f |= QPEER_PORTMAP_PERMANENT;
  }
  return f;
}

static void set_addr4(struct sockaddr_storage *ss, const struct in_addr *ip,
                      uint16_t port) {
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  memset(ss, 0, sizeof(*ss));
  s4->sin_family = AF_INET;
  s4->sin_addr = *ip;
  s4->sin_port = htons(port);
}

/* read_gateway finds the default route's gateway in /proc/net/route. */
static int read_gateway(struct sockaddr_storage *gw) {
  char text[8192];
  uv_fs_t req;
  uv_buf_t b;
  ssize_t n;
  uv_file fd;
  uint32_t ip;
  int rv;
  fd = uv_fs_open(NULL, &req, QPEER__ROUTE_FILE, O_RDONLY, 0, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0)
    return QPEER_ENOGATEWAY;
  b = uv_buf_init(text, sizeof(text) - 1);
  n = uv_fs_read(NULL, &req, fd, &b, 1, 0, NULL);
  uv_fs_req_cleanup(&req);
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  if (n <= 0)
    return QPEER_ENOGATEWAY;
  if ((rv = qpeer__gateway_parse_route(text, (size_t)n, &ip)) != 0)
    return rv;
  {
    struct in_addr a;
    a.s_addr = ip;
    set_addr4(gw, &a, QPEER__PCP_SERVER_PORT);
  }
  return 0;
}

/* resolve_gateway picks the gateway of this attempt: the option, else the
 * default route. */
static int resolve_gateway(qpeer__pm *pm) {
  if (pm->have_gw_opt) {
    memcpy(&pm->gateway, &pm->gw_opt, sizeof(pm->gateway));
    if (qpeer__addr_port((const struct sockaddr *)&pm->gateway) == 0)
      qpeer__addr_set_port((struct sockaddr *)&pm->gateway,
                           QPEER__PCP_SERVER_PORT);
    return 0;
  }
  return read_gateway(&pm->gateway);
}

/* -------------------------------------------------------------- reporting */

/* report calls the user's callback. It must be the last thing a code path
 * does: the callback may stop or close the handle. */
static void report(qpeer__pm *pm, int status, qpeer_portmap_event ev) {
  qpeer_portmap_info_t info;
  if (!pm->cb || pm->closing || pm->state == S_STOPPING || pm->state == S_IDLE)
    return;
  if (pm->mapped) {
    info = pm->info;
  } else {
    memset(&info, 0, sizeof(info));
    memcpy(&info.gateway, &pm->gateway, sizeof(info.gateway));
    qpeer__addr_set_port((struct sockaddr *)&info.gateway, 0);
  }
  info.event = ev;
  info.tried = pm->tried;
  info.answered = pm->answered;
  info.result_code = pm->result_code;
  pm->cb(pm->handle, status, &info);
}

/* report_failure reports |status| once per run of failures. */
static void report_failure(qpeer__pm *pm, int status) {
  if (pm->fail_reported == status)
    return;
  pm->fail_reported = status;
  report(pm, status, QPEER_PORTMAP_EV_FAILED);
}

/* --------------------------------------------------------------- backends */

static void pcp_freed(qpeer__pcp *p) {
  qpeer__pm *pm = p->data;
  qpeer__free(p);
  pm->nbackends--;
  maybe_stop_done(pm);
}

static void natpmp_freed(qpeer__natpmp *np) {
  qpeer__pm *pm = np->data;
  qpeer__free(np);
  pm->nbackends--;
  maybe_stop_done(pm);
}

static void upnp_freed(qpeer__upnp *up) {
  qpeer__pm *pm = up->data;
  qpeer__free(up);
  pm->nbackends--;
  maybe_stop_done(pm);
}

/* drop_* detach a backend and close it. PCP can first send a delete with
 * the mapping's nonce, for a request that may have been granted. */
static void drop_pcp(qpeer__pm *pm, int send_delete) {
  qpeer__pcp *p = pm->pcp;
  if (!p)
    return;
  pm->pcp = NULL;
  if (send_delete)
    qpeer__pcp_send_delete(p);
  qpeer__pcp_close(p, pcp_freed);
}

static void drop_natpmp(qpeer__pm *pm) {
  qpeer__natpmp *np = pm->natpmp;
  if (!np)
    return;
  pm->natpmp = NULL;
  qpeer__natpmp_close(np, natpmp_freed);
}

static void drop_upnp(qpeer__pm *pm) {
  qpeer__upnp *up = pm->upnp;
  if (!up)
    return;
  pm->upnp = NULL;
  qpeer__upnp_close(up, upnp_freed);
}

static int start_pcp(qpeer__pm *pm) {
  const struct sockaddr *bind_ip = NULL;
  int rv;
  pm->pcp = qpeer__malloc(sizeof(*pm->pcp));
  if (!pm->pcp)
    return UV_ENOMEM;
  pm->nbackends++;
  if (!qpeer__addr_is_any((const struct sockaddr *)&pm->local))
    bind_ip = (const struct sockaddr *)&pm->local;
  rv = qpeer__pcp_init(pm->loop, pm->pcp, (const struct sockaddr *)&pm->gateway,
                       bind_ip, pm->internal_port);
  pm->pcp->data = pm;
  if (rv == 0)
    rv = qpeer__pcp_map(pm->pcp, pm->lifetime, pm->suggest_port, NULL,
                        pm->timeout_ms, on_pcp);
  if (rv != 0) {
    QPEER__LOG_DEBUG("portmap: pcp start failed: %s", qpeer_err_name(rv));
    drop_pcp(pm, 0);
  }
  return rv;
}

static int start_natpmp(qpeer__pm *pm) {
  int rv;
  if (pm->gateway.ss_family != AF_INET ||
      qpeer__addr_port((const struct sockaddr *)&pm->gateway) !=
          QPEER__PCP_SERVER_PORT)
    return UV_EAFNOSUPPORT; /* libnatpmp: IPv4, port 5351 only */
  pm->natpmp = qpeer__malloc(sizeof(*pm->natpmp));
  if (!pm->natpmp)
    return UV_ENOMEM;
  pm->nbackends++;
  qpeer__natpmp_init(pm->loop, pm->natpmp,
                     (const struct sockaddr_in *)&pm->gateway,
                     pm->internal_port);
  pm->natpmp->data = pm;
  rv = qpeer__natpmp_public_addr(pm->natpmp, pm->timeout_ms, on_natpmp);
  if (rv != 0) {
    QPEER__LOG_DEBUG("portmap: nat-pmp start failed: %s", qpeer_err_name(rv));
    drop_natpmp(pm);
  }
  return rv;
}

static int start_upnp(qpeer__pm *pm) {
  int rv;
  uint64_t delay =
      QPEER__MIN((uint64_t)QPEER__PORTMAP_SSDP_MS, pm->timeout_ms / 2);
  if (pm->gateway.ss_family != AF_INET && !pm->root_url)
    return UV_EAFNOSUPPORT;
  pm->upnp = qpeer__malloc(sizeof(*pm->upnp));
  if (!pm->upnp)
    return UV_ENOMEM;
  pm->nbackends++;
  qpeer__upnp_init(pm->loop, pm->upnp, pm->root_url, pm->desc,
                   pm->internal_port);
  pm->upnp->data = pm;
  rv = qpeer__upnp_discover(pm->upnp, (int)QPEER__MAX(delay, 100), on_upnp);
  if (rv != 0) {
    QPEER__LOG_DEBUG("portmap: upnp start failed: %s", qpeer_err_name(rv));
    drop_upnp(pm);
  }
  return rv;
}

/* ---------------------------------------------------------------- attempt */

static void on_attempt_timer(uv_timer_t *t);

static uint64_t grace_ms(const qpeer__pm *pm) {
  return QPEER__MIN((uint64_t)QPEER__PORTMAP_GRACE_MS, pm->timeout_ms / 4);
}

/* upnp_at is when UPnP discovery starts unless PCP or NAT-PMP answered
 * first (SSDP is multicast, and a discovery in the thread pool cannot be
 * stopped: the handle's close would wait for it). */
static uint64_t upnp_at(const qpeer__pm *pm) {
  return pm->attempt_start +
         QPEER__MIN((uint64_t)QPEER__PORTMAP_UPNP_DELAY_MS, grace_ms(pm));
}

static int all_failed(const qpeer__pm *pm) {
  int i;
  for (i = 0; i < NPROTO; i++)
    if (pm->ps[i] != P_OFF && pm->ps[i] != P_FAILED)
      return 0;
  return 1;
}

/* arm_attempt sets the attempt timer: at once when everything failed,
 * else at the end of the grace period (while it runs), else the deadline. */
static void arm_attempt(qpeer__pm *pm) {
  uint64_t now = now_ms(pm), at = pm->deadline;
  if (all_failed(pm))
    at = now;
  else if (now < pm->attempt_start + grace_ms(pm))
    at = QPEER__MIN(at, pm->attempt_start + grace_ms(pm));
  if (pm->ps[IDX_UPNP] == P_WAITING && now < upnp_at(pm))
    at = QPEER__MIN(at, upnp_at(pm));
  uv_timer_start(&pm->t_attempt, on_attempt_timer, at > now ? at - now : 0, 0);
}

/* commit makes the result of protocol |idx| the mapping. */
static void commit(qpeer__pm *pm, int idx, const struct sockaddr_storage *ext,
                   uint16_t ext_port, uint32_t lifetime, uint32_t epoch,
                   const struct sockaddr_storage *internal_ip);

/* abandon_above gives up on the protocols preferred to |idx| that have
 * not answered (a PCP request may have been granted: delete it). */
static void abandon_above(qpeer__pm *pm, int idx) {
  if (idx > IDX_PCP && pm->ps[IDX_PCP] == P_PENDING) {
    pm->ps[IDX_PCP] = P_FAILED;
    drop_pcp(pm, 1);
  }
  if (idx > IDX_NATPMP && pm->ps[IDX_NATPMP] == P_PENDING) {
    pm->ps[IDX_NATPMP] = P_FAILED;
    drop_natpmp(pm);
  }
}

static void attempt_end(qpeer__pm *pm);

static int alive(int ps) { return ps != P_OFF && ps != P_FAILED; }

/* maybe_start_upnp starts the deferred UPnP discovery once its delay has
 * passed with neither PCP nor NAT-PMP usable, or at once when both are
 * out. */
static void maybe_start_upnp(qpeer__pm *pm) {
  int pcp = pm->ps[IDX_PCP], pmp = pm->ps[IDX_NATPMP];
  if (pm->ps[IDX_UPNP] != P_WAITING)
    return;
  if (alive(pcp) || alive(pmp)) {
    if (now_ms(pm) < upnp_at(pm) || pcp == P_USABLE || pcp == P_MAPPING ||
        pmp == P_USABLE || pmp == P_MAPPING)
      return;
  }
  pm->tried |= QPEER_PORTMAP_UPNP;
  pm->ps[IDX_UPNP] = start_upnp(pm) == 0 ? P_PENDING : P_FAILED;
}

/* maybe_advance moves the attempt on: the most preferred usable protocol
 * asks for the mapping once every protocol preferred to it has failed or
 * has had the grace period to answer. */
static void maybe_advance(qpeer__pm *pm) {
  int grace_over;
  int i, rv;
  if (pm->state != S_ATTEMPT)
    return;
  maybe_start_upnp(pm);
  for (i = 0; i < NPROTO; i++)
    if (pm->ps[i] == P_MAPPING)
      return;
  grace_over = now_ms(pm) >= pm->attempt_start + grace_ms(pm);
  if (pm->ps[IDX_PCP] == P_PENDING && !grace_over)
    return;
  if (pm->ps[IDX_NATPMP] == P_USABLE) {
    abandon_above(pm, IDX_NATPMP);
    rv = qpeer__natpmp_map(pm->natpmp, pm->suggest_port, pm->lifetime,
                           pm->deadline - QPEER__MIN(pm->deadline, now_ms(pm)),
                           on_natpmp);
    if (rv == 0) {
      pm->ps[IDX_NATPMP] = P_MAPPING;
      return;
    }
    pm->ps[IDX_NATPMP] = P_FAILED;
    drop_natpmp(pm);
  }
  if (pm->ps[IDX_NATPMP] == P_PENDING && !grace_over)
    return;
  if (pm->ps[IDX_UPNP] == P_USABLE) {
    abandon_above(pm, IDX_UPNP);
    rv = qpeer__upnp_add(pm->upnp, pm->suggest_port, pm->lifetime, on_upnp);
    if (rv == 0) {
      pm->ps[IDX_UPNP] = P_MAPPING;
      return;
    }
    pm->ps[IDX_UPNP] = P_FAILED;
    drop_upnp(pm);
  }
  if (all_failed(pm))
    arm_attempt(pm); /* ends the attempt from the timer */
}

static void on_retry_timer(uv_timer_t *t) {
  qpeer__pm *pm = t->data;
  if (pm->state == S_FAILED)
    attempt_begin(pm);
}

/* schedule_retry arms the back-off after a failure (none if disabled). */
static void schedule_retry(qpeer__pm *pm) {
  uint64_t d;
  if (pm->retry_max_ms == 0)
    return;
  if (pm->backoff_ms == 0)
    pm->backoff_ms = pm->retry_min_ms;
  d = jitter(pm->backoff_ms);
  pm->backoff_ms = QPEER__MIN(pm->backoff_ms * 2, pm->retry_max_ms);
  uv_timer_start(&pm->t_attempt, on_retry_timer, d, 0);
}

/* attempt_end fails the attempt (deadline, or every protocol failed). */
static void attempt_end(qpeer__pm *pm) {
  int status = pm->refused ? QPEER_EMAPREFUSED : QPEER_ENOMAPPING;
  uv_timer_stop(&pm->t_attempt);
  drop_pcp(pm, pm->ps[IDX_PCP] == P_PENDING);
  drop_natpmp(pm);
  /* A UPnP AddPortMapping that already runs cannot be stopped: keep the
   * client, and take the mapping if it succeeds after all. */
  if (pm->ps[IDX_UPNP] != P_MAPPING)
    drop_upnp(pm);
  QPEER__LOG_DEBUG("portmap: no mapping (%s; tried %u, answered %u)",
                   qpeer_err_name(status), pm->tried, pm->answered);
  pm->state = S_FAILED;
  schedule_retry(pm);
  report_failure(pm, status);
}

static void on_attempt_timer(uv_timer_t *t) {
  qpeer__pm *pm = t->data;
  if (pm->state != S_ATTEMPT)
    return;
  if (all_failed(pm) || now_ms(pm) >= pm->deadline) {
    attempt_end(pm);
    return;
  }
  arm_attempt(pm);
  maybe_advance(pm);
}

static void attempt_begin(qpeer__pm *pm) {
  int i;
  uv_timer_stop(&pm->t_attempt);
  pm->state = S_ATTEMPT;
  pm->attempt_start = now_ms(pm);
  pm->deadline = pm->attempt_start + pm->timeout_ms;
  for (i = 0; i < NPROTO; i++)
    pm->ps[i] = P_OFF;
  pm->tried = pm->answered = 0;
  pm->refused = 0;
  pm->result_code = 0;
  memset(&pm->natpmp_ext, 0, sizeof(pm->natpmp_ext));
  if (resolve_gateway(pm) == 0) {
    for (i = 0; i < NPROTO; i++) {
      int rv;
      if (!(pm->protocols & proto_bits[i]))
        continue;
      if (i == IDX_UPNP && pm->upnp) {
        /* A late AddPortMapping of the last attempt still runs. */
        pm->tried |= proto_bits[i];
        pm->ps[i] = P_MAPPING;
        continue;
      }
      if (i == IDX_UPNP &&
          (alive(pm->ps[IDX_PCP]) || alive(pm->ps[IDX_NATPMP]))) {
        pm->ps[i] = P_WAITING; /* see maybe_start_upnp() */
        continue;
      }
      pm->tried |= proto_bits[i];
      if (i == IDX_PCP)
        rv = start_pcp(pm);
      else if (i == IDX_NATPMP)
        rv = start_natpmp(pm);
      else
        rv = start_upnp(pm);
      pm->ps[i] = rv == 0 ? P_PENDING : P_FAILED;
      if (rv != 0)
        pm->tried &= ~proto_bits[i];
    }
  } else {
    memset(&pm->gateway, 0, sizeof(pm->gateway));
  }
  arm_attempt(pm);
}

/* -------------------------------------------------------- mapped phase */

static void on_renew_timer(uv_timer_t *t);
static void on_check_timer(uv_timer_t *t);

/* arm_renewal schedules the renewal at half the granted lifetime and the
 * periodic check. */
static void arm_renewal(qpeer__pm *pm) {
  uint64_t now = now_ms(pm);
  uv_timer_stop(&pm->t_renew);
  if (pm->info.lifetime > 0) {
    uint64_t life = (uint64_t)pm->info.lifetime * 1000;
    pm->expires_at = now + life;
    uv_timer_start(&pm->t_renew, on_renew_timer, QPEER__MAX(life / 2, 1000), 0);
  } else {
    pm->expires_at = 0;
  }
  uv_timer_stop(&pm->t_check);
  if (pm->check_ms > 0)
    uv_timer_start(&pm->t_check, on_check_timer, pm->check_ms, pm->check_ms);
}

static void commit(qpeer__pm *pm, int idx, const struct sockaddr_storage *ext,
                   uint16_t ext_port, uint32_t lifetime, uint32_t epoch,
                   const struct sockaddr_storage *internal_ip) {
  qpeer_portmap_info_t *in = &pm->info;
  int i;
  uv_timer_stop(&pm->t_attempt);
  for (i = 0; i < NPROTO; i++)
    if (i != idx)
      pm->ps[i] = P_FAILED;
  if (idx != IDX_PCP)
    drop_pcp(pm, 0);
  if (idx != IDX_NATPMP)
    drop_natpmp(pm);
  if (idx != IDX_UPNP)
    drop_upnp(pm);
  memset(in, 0, sizeof(*in));
  in->protocol = (qpeer_portmap_proto)proto_bits[idx];
  qpeer__addr_normalize(&in->external, (const struct sockaddr *)ext);
  qpeer__addr_set_port((struct sockaddr *)&in->external, ext_port);
  qpeer__addr_normalize(&in->internal, (const struct sockaddr *)internal_ip);
  qpeer__addr_set_port((struct sockaddr *)&in->internal, pm->internal_port);
  memcpy(&in->gateway, &pm->gateway, sizeof(in->gateway));
  qpeer__addr_set_port((struct sockaddr *)&in->gateway, 0);
  in->lifetime = lifetime;
  in->epoch = epoch;
  pm->mapped = 1;
  pm->state = S_MAPPED;
  pm->op = OP_NONE;
  in->flags = compute_flags(pm);
  in->double_nat = (in->flags & QPEER_PORTMAP_DOUBLE_NAT) != 0;
  pm->backoff_ms = 0;
  pm->fail_reported = 0;
  arm_renewal(pm);
  {
    char e[QPEER_ADDR_STRLEN];
    qpeer_addr_format((const struct sockaddr *)&in->external, e, sizeof(e));
    qpeer__log(QPEER_LOG_INFO, "portmap: %s mapping %s (lifetime %u s)",
               qpeer_portmap_proto_name(in->protocol), e, (unsigned)lifetime);
  }
  report(pm, 0, QPEER_PORTMAP_EV_MAPPED);
}

/* mapping_lost gives the mapping up and retries after the back-off. */
static void mapping_lost(qpeer__pm *pm, int status) {
  uv_timer_stop(&pm->t_renew);
  uv_timer_stop(&pm->t_check);
  drop_pcp(pm, 0);
  drop_natpmp(pm);
  drop_upnp(pm);
  pm->mapped = 0;
  pm->op = OP_NONE;
  pm->state = S_FAILED;
  qpeer__log(QPEER_LOG_INFO, "portmap: mapping lost (%s)",
             qpeer_err_name(status));
  schedule_retry(pm);
  report_failure(pm, status);
}

/* op_ext is the external address an operation ends with: a new one the
 * gateway reported on the way, else the mapping's. */
static const struct sockaddr_storage *op_ext(const qpeer__pm *pm) {
  return pm->have_new_ext ? &pm->new_ext : &pm->info.external;
}

static uint16_t cur_ext_port(const qpeer__pm *pm) {
  return qpeer__addr_port((const struct sockaddr *)&pm->info.external);
}

/* renew_done applies a successful renewal, check or re-creation. */
static void renew_done(qpeer__pm *pm, const struct sockaddr_storage *ext,
                       uint16_t ext_port, uint32_t lifetime, uint32_t epoch,
                       int recreated) {
  qpeer_portmap_info_t *in = &pm->info;
  struct sockaddr_storage ne;
  unsigned int old_flags = in->flags;
  int changed, op = pm->op;
  qpeer_portmap_event ev;
  qpeer__addr_normalize(&ne, (const struct sockaddr *)ext);
  qpeer__addr_set_port((struct sockaddr *)&ne, ext_port);
  changed = !qpeer__addr_equal((const struct sockaddr *)&ne,
                               (const struct sockaddr *)&in->external);
  memcpy(&in->external, &ne, sizeof(ne));
  in->lifetime = lifetime;
  in->epoch = epoch;
  in->flags = compute_flags(pm);
  in->double_nat = (in->flags & QPEER_PORTMAP_DOUBLE_NAT) != 0;
  changed = changed || in->flags != old_flags;
  pm->op = OP_NONE;
  pm->op_recreate = 0;
  if (op == OP_RENEW || recreated)
    arm_renewal(pm);
  if (recreated)
    ev = QPEER_PORTMAP_EV_RECREATED;
  else if (changed)
    ev = QPEER_PORTMAP_EV_CHANGED;
  else if (op == OP_RENEW)
    ev = QPEER_PORTMAP_EV_RENEWED;
  else
    return; /* a check that found everything in order */
  QPEER__LOG_DEBUG("portmap: %s", qpeer_portmap_event_name(ev));
  report(pm, 0, ev);
}

/* renew_failed handles a failed renewal: retry at half the remaining
 * lifetime while that is worth it, else the mapping is lost. A failed
 * check only waits for the next one. */
static void renew_failed(qpeer__pm *pm, int status) {
  uint64_t now = now_ms(pm);
  int op = pm->op;
  pm->op = OP_NONE;
  if (op == OP_CHECK && !pm->op_recreate) {
    QPEER__LOG_DEBUG("portmap: check failed: %s", qpeer_err_name(status));
    return;
  }
  pm->op_recreate = 0;
  if (status != QPEER_EMAPREFUSED && pm->expires_at > now + 2000) {
    uv_timer_start(&pm->t_renew, on_renew_timer, (pm->expires_at - now) / 2, 0);
    return;
  }
  mapping_lost(pm, status == QPEER_EMAPREFUSED ? QPEER_EMAPREFUSED
                                               : QPEER_ENOMAPPING);
}

/* op_timeout is the deadline of a renewal (until the mapping expires) or
 * of a check / re-creation. */
static uint64_t op_timeout(const qpeer__pm *pm) {
  uint64_t now = now_ms(pm);
  if (pm->op_recreate)
    return pm->timeout_ms;
  if (pm->op == OP_RENEW && pm->expires_at)
    return pm->expires_at > now + 1000 ? pm->expires_at - now : 1000;
  return QPEER__PORTMAP_CHECK_TIMEOUT_MS;
}

/* pcp_remap sends a MAP for the current mapping (renewal, re-creation). */
static int pcp_remap(qpeer__pm *pm) {
  uint16_t port = qpeer__addr_port((const struct sockaddr *)&pm->info.external);
  return qpeer__pcp_map(pm->pcp, pm->lifetime, port,
                        (const struct sockaddr *)&pm->info.external,
                        op_timeout(pm), on_pcp);
}

static int natpmp_remap(qpeer__pm *pm) {
  uint16_t port = qpeer__addr_port((const struct sockaddr *)&pm->info.external);
  return qpeer__natpmp_map(pm->natpmp, port, pm->lifetime, op_timeout(pm),
                           on_natpmp);
}

static int upnp_remap(qpeer__pm *pm) {
  uint16_t port = qpeer__addr_port((const struct sockaddr *)&pm->info.external);
  return qpeer__upnp_add(pm->upnp, port, pm->lifetime, on_upnp);
}

/* op_start begins a renewal or a check with the mapping's protocol. */
static void op_start(qpeer__pm *pm, int op) {
  uint16_t port = qpeer__addr_port((const struct sockaddr *)&pm->info.external);
  int rv;
  pm->op = op;
  pm->op_recreate = 0;
  pm->have_new_ext = 0;
  switch (pm->info.protocol) {
  case QPEER_PORTMAP_PCP:
    if (op == OP_RENEW || pm->pcp_no_announce)
      rv = pcp_remap(pm);
    else
      rv = qpeer__pcp_announce(pm->pcp, op_timeout(pm), on_pcp);
    break;
  case QPEER_PORTMAP_NATPMP:
    rv = qpeer__natpmp_public_addr(pm->natpmp, op_timeout(pm), on_natpmp);
    break;
  default:
    rv = qpeer__upnp_check(pm->upnp, port, on_upnp);
    break;
  }
  if (rv != 0) {
    /* Could not even send: try again in a second (bounded by expiry). */
    QPEER__LOG_DEBUG("portmap: renewal start failed: %s", qpeer_err_name(rv));
    pm->op = OP_NONE;
    if (op == OP_RENEW)
      uv_timer_start(&pm->t_renew, on_renew_timer, 1000, 0);
  }
}

static void on_renew_timer(uv_timer_t *t) {
  qpeer__pm *pm = t->data;
  if (pm->state != S_MAPPED)
    return;
  if (pm->expires_at && now_ms(pm) >= pm->expires_at && pm->op == OP_NONE) {
    mapping_lost(pm, QPEER_ENOMAPPING);
    return;
  }
  if (pm->op != OP_NONE) { /* a check is running: renew after it */
    uv_timer_start(&pm->t_renew, on_renew_timer, 1000, 0);
    return;
  }
  op_start(pm, OP_RENEW);
}

static void on_check_timer(uv_timer_t *t) {
  qpeer__pm *pm = t->data;
  if (pm->state == S_MAPPED && pm->op == OP_NONE)
    op_start(pm, OP_CHECK);
}

static void on_notify_timer(uv_timer_t *t) {
  qpeer__pm *pm = t->data;
  if (pm->state == S_MAPPED)
    report(pm, 0, QPEER_PORTMAP_EV_CHANGED);
}

/* ------------------------------------------------------- backend results */

static void pcp_mapped_result(qpeer__pm *pm, const qpeer__pcp_result *r) {
  if (r->status != 0) {
    if (r->opcode == QPEER__PCP_OP_ANNOUNCE && r->have_res &&
        r->res.result == QPEER__PCP_UNSUPP_OPCODE) {
      pm->pcp_no_announce = 1; /* check by renewing from now on */
    }
    if (r->status == QPEER_EMAPREFUSED)
      pm->result_code = r->res.result;
    renew_failed(pm, r->status);
    return;
  }
  if (r->opcode == QPEER__PCP_OP_ANNOUNCE) {
    if (!r->epoch_lost) {
      pm->info.epoch = r->res.epoch;
      pm->op = OP_NONE;
      return;
    }
    /* The server rebooted: make the mapping again, same nonce. */
    qpeer__log(QPEER_LOG_INFO, "portmap: pcp server lost its state");
    pm->op_recreate = 1;
    if (pcp_remap(pm) != 0)
      renew_failed(pm, UV_EIO);
    return;
  }
  renew_done(pm, &r->res.external, r->res.external_port, r->res.lifetime,
             r->res.epoch, pm->op_recreate || r->epoch_lost);
}

static void on_pcp(qpeer__pcp *p, const qpeer__pcp_result *r) {
  qpeer__pm *pm = p->data;
  if (r->have_res && r->res.version == QPEER__PCP_VERSION)
    pm->answered |= QPEER_PORTMAP_PCP;
  if (pm->state == S_STOPPING) {
    QPEER__LOG_DEBUG("portmap: pcp delete: %s", qpeer_err_name(r->status));
    drop_pcp(pm, 0);
    maybe_stop_done(pm);
    return;
  }
  if (pm->state == S_MAPPED) {
    pcp_mapped_result(pm, r);
    return;
  }
  if (pm->state != S_ATTEMPT || pm->ps[IDX_PCP] != P_PENDING)
    return;
  if (r->status == 0) {
    commit(pm, IDX_PCP, &r->res.external, r->res.external_port, r->res.lifetime,
           r->res.epoch, &p->client);
    return;
  }
  QPEER__LOG_DEBUG("portmap: pcp failed: %s%s%s", qpeer_err_name(r->status),
                   r->status == QPEER_EMAPREFUSED ? " " : "",
                   r->status == QPEER_EMAPREFUSED
                       ? qpeer__pcp_result_name(r->res.result)
                       : "");
  if (r->status == QPEER_EMAPREFUSED) {
    pm->refused = 1;
    pm->result_code = r->res.result;
  }
  pm->ps[IDX_PCP] = P_FAILED;
  /* Unanswered: a reply may have been lost after the gateway granted the
   * request, so delete (same nonce) rather than leave a mapping behind. */
  drop_pcp(pm, r->status == UV_ETIMEDOUT);
  maybe_advance(pm);
}

static void natpmp_mapped_result(qpeer__pm *pm, const qpeer__natpmp_result *r) {
  struct sockaddr_storage ext;
  if (r->status != 0) {
    if (r->status == QPEER_EMAPREFUSED)
      pm->result_code = r->result;
    renew_failed(pm, r->status);
    return;
  }
  if (r->op == QPEER__NATPMP_OP_PUBLIC_ADDR) {
    set_addr4(&ext, &r->public_addr, 0);
    if (!same_ip(&ext, &pm->info.external)) {
      memcpy(&pm->new_ext, &ext, sizeof(ext));
      pm->have_new_ext = 1;
    }
    if (r->epoch_lost) {
      qpeer__log(QPEER_LOG_INFO, "portmap: nat-pmp gateway lost its state");
      pm->op_recreate = 1;
    }
    if (pm->op == OP_RENEW || pm->op_recreate) {
      if (natpmp_remap(pm) != 0)
        renew_failed(pm, UV_EIO);
      return;
    }
    renew_done(pm, op_ext(pm), cur_ext_port(pm), pm->info.lifetime, r->epoch,
               0);
    return;
  }
  renew_done(pm, op_ext(pm), r->external_port, r->lifetime, r->epoch,
             pm->op_recreate || r->epoch_lost);
}

static void on_natpmp(qpeer__natpmp *np, const qpeer__natpmp_result *r) {
  qpeer__pm *pm = np->data;
  struct sockaddr_storage ext, local;
  if (r->have_epoch)
    pm->answered |= QPEER_PORTMAP_NATPMP;
  if (pm->state == S_STOPPING) {
    QPEER__LOG_DEBUG("portmap: nat-pmp delete: %s", qpeer_err_name(r->status));
    drop_natpmp(pm);
    maybe_stop_done(pm);
    return;
  }
  if (pm->state == S_MAPPED) {
    natpmp_mapped_result(pm, r);
    return;
  }
  if (pm->state != S_ATTEMPT)
    return;
  if (r->status != 0) {
    QPEER__LOG_DEBUG("portmap: nat-pmp failed: %s (result %u)",
                     qpeer_err_name(r->status), (unsigned)r->result);
    if (r->status == QPEER_EMAPREFUSED) {
      pm->refused = 1;
      pm->result_code = r->result;
    }
    pm->ps[IDX_NATPMP] = P_FAILED;
    drop_natpmp(pm);
    maybe_advance(pm);
    return;
  }
  if (r->op == QPEER__NATPMP_OP_PUBLIC_ADDR) {
    pm->natpmp_ext.sin_family = AF_INET;
    pm->natpmp_ext.sin_addr = r->public_addr;
    pm->ps[IDX_NATPMP] = P_USABLE;
    maybe_advance(pm);
    return;
  }
  set_addr4(&ext, &pm->natpmp_ext.sin_addr, 0);
  set_addr4(&local, &np->local.sin_addr, 0);
  commit(pm, IDX_NATPMP, &ext, r->external_port, r->lifetime, r->epoch, &local);
}

static void upnp_mapped_result(qpeer__pm *pm, const qpeer__upnp_result *r) {
  struct sockaddr_storage ext;
  if (r->status != 0) {
    if (r->status == QPEER_EMAPREFUSED)
      pm->result_code = r->upnp_error;
    renew_failed(pm, r->status);
    return;
  }
  if (r->have_external) {
    memset(&ext, 0, sizeof(ext));
    memcpy(&ext, &r->external, sizeof(r->external));
    if (!same_ip(&ext, &pm->info.external)) {
      memcpy(&pm->new_ext, &ext, sizeof(ext));
      pm->have_new_ext = 1;
    }
  }
  if (r->op == QPEER__UPNP_CHECK) {
    if (!r->exists) {
      qpeer__log(QPEER_LOG_INFO, "portmap: upnp gateway lost the mapping");
      pm->op_recreate = 1;
    }
    if (pm->op_recreate || (pm->op == OP_RENEW && pm->info.lifetime > 0)) {
      if (upnp_remap(pm) != 0)
        renew_failed(pm, UV_EIO);
      return;
    }
    renew_done(pm, op_ext(pm), cur_ext_port(pm), pm->info.lifetime, 0, 0);
    return;
  }
  renew_done(pm, op_ext(pm), r->external_port, r->lease, 0, pm->op_recreate);
}

static void on_upnp(qpeer__upnp *up, const qpeer__upnp_result *r) {
  qpeer__pm *pm = up->data;
  struct sockaddr_storage ext, lan;
  if (r->op == QPEER__UPNP_DISCOVER && r->status == 0)
    pm->answered |= QPEER_PORTMAP_UPNP;
  if (r->op == QPEER__UPNP_ADD && r->status == 0)
    pm->upnp_delete_port = r->external_port;
  if (pm->state == S_STOPPING) {
    /* A mapping added while stopping, or the one we held: delete it. */
    if (pm->upnp_delete_port && r->op != QPEER__UPNP_DELETE &&
        qpeer__upnp_delete(up, pm->upnp_delete_port, on_upnp) == 0)
      return;
    QPEER__LOG_DEBUG("portmap: upnp delete: %s", qpeer_err_name(r->status));
    pm->upnp_delete_port = 0;
    drop_upnp(pm);
    maybe_stop_done(pm);
    return;
  }
  if (pm->state == S_MAPPED) {
    upnp_mapped_result(pm, r);
    return;
  }
  if (r->op == QPEER__UPNP_ADD && pm->state == S_FAILED && r->status == 0) {
    /* A late success after the deadline: take it. */
    pm->state = S_ATTEMPT;
  }
  if (pm->state != S_ATTEMPT) {
    drop_upnp(pm);
    return;
  }
  if (r->status != 0) {
    if (r->status == QPEER_EMAPREFUSED) {
      pm->refused = 1;
      pm->result_code = r->upnp_error;
    }
    pm->ps[IDX_UPNP] = P_FAILED;
    drop_upnp(pm);
    maybe_advance(pm);
    return;
  }
  if (r->op == QPEER__UPNP_DISCOVER) {
    pm->igd_state = r->igd_state;
    pm->ps[IDX_UPNP] = P_USABLE;
    maybe_advance(pm);
    return;
  }
  memset(&ext, 0, sizeof(ext));
  memset(&lan, 0, sizeof(lan));
  if (r->have_external)
    memcpy(&ext, &r->external, sizeof(r->external));
  else
    ext.ss_family = AF_INET; /* 0.0.0.0: the IGD did not say */
  /* Our LAN address as miniupnpc found it (while discovering). */
  lan.ss_family = AF_INET;
  (void)inet_pton(AF_INET, up->lanaddr,
                  &((struct sockaddr_in *)&lan)->sin_addr);
  commit(pm, IDX_UPNP, &ext, r->external_port, r->lease, 0, &lan);
}

/* ---------------------------------------------------------- stop, close */

static void on_timer_closed(uv_handle_t *h) {
  qpeer__pm *pm = h->data;
  qpeer_portmap_t *handle;
  qpeer_close_cb cb;
  if (--pm->ntimers > 0)
    return;
  handle = pm->handle;
  cb = handle->close_cb;
  qpeer__free(pm->root_url);
  qpeer__free(pm->desc);
  qpeer__free(pm);
  handle->impl = NULL;
  handle->flags &= ~(unsigned)QPEER__HANDLE_CLOSING;
  handle->flags |= QPEER__HANDLE_CLOSED;
  if (cb)
    cb((qpeer_handle_t *)handle);
}

/* maybe_stop_done finishes a stop once every backend is freed; on close it
 * then closes the timers, whose last callback calls the close callback. */
static void maybe_stop_done(qpeer__pm *pm) {
  if (pm->state != S_STOPPING || pm->pcp || pm->natpmp || pm->upnp ||
      pm->nbackends > 0)
    return;
  pm->state = S_IDLE;
  if (!pm->closing || pm->ntimers != 4)
    return;
  uv_close((uv_handle_t *)&pm->t_attempt, on_timer_closed);
  uv_close((uv_handle_t *)&pm->t_renew, on_timer_closed);
  uv_close((uv_handle_t *)&pm->t_check, on_timer_closed);
  uv_close((uv_handle_t *)&pm->t_notify, on_timer_closed);
}

/* stop_begin stops the timers and deletes the mapping (or abandons the
 * attempt), each backend closing when its delete completes. */
static void stop_begin(qpeer__pm *pm) {
  int was_mapped = pm->mapped && pm->state == S_MAPPED;
  int rv;
  uv_timer_stop(&pm->t_attempt);
  uv_timer_stop(&pm->t_renew);
  uv_timer_stop(&pm->t_check);
  uv_timer_stop(&pm->t_notify);
  pm->state = S_STOPPING;
  pm->cb = NULL;
  pm->mapped = 0;
  pm->op = OP_DELETE;
  if (pm->pcp) {
    qpeer__pcp_cancel(pm->pcp);
    rv = UV_ECANCELED;
    if (was_mapped)
      rv = qpeer__pcp_map(pm->pcp, 0, 0, NULL, pm->close_ms, on_pcp);
    if (rv != 0)
      drop_pcp(pm, pm->ps[IDX_PCP] == P_PENDING);
  }
  if (pm->natpmp) {
    qpeer__natpmp_cancel(pm->natpmp);
    rv = UV_ECANCELED;
    if (was_mapped)
      rv = qpeer__natpmp_map(pm->natpmp, 0, 0, pm->close_ms, on_natpmp);
    if (rv != 0)
      drop_natpmp(pm);
  }
  if (pm->upnp) {
    if (!was_mapped)
      pm->upnp_delete_port = 0; /* unless an add in flight succeeds */
    if (!pm->upnp->busy) {
      rv = UV_ECANCELED;
      if (pm->upnp_delete_port)
        rv = qpeer__upnp_delete(pm->upnp, pm->upnp_delete_port, on_upnp);
      if (rv != 0)
        drop_upnp(pm);
    } else if (pm->upnp->op == QPEER__UPNP_DISCOVER) {
      drop_upnp(pm); /* cancels, or waits for it, and frees */
    }
    /* else: on_upnp deletes what the running operation leaves. */
  }
  maybe_stop_done(pm);
}

int qpeer__portmap_close(qpeer_portmap_t *handle) {
  qpeer__pm *pm = handle->impl;
  pm->closing = 1;
  if (pm->state != S_STOPPING)
    stop_begin(pm);
  else
    maybe_stop_done(pm);
  return 0;
}

/* --------------------------------------------------------------- the API */

void qpeer_portmap_options_default_versioned(int options_version,
                                             qpeer_portmap_options_t *o) {
  (void)options_version;
  memset(o, 0, sizeof(*o));
  o->protocols = QPEER_PORTMAP_ANY;
  o->lifetime = QPEER__PORTMAP_LIFETIME;
  o->timeout_ms = QPEER__PORTMAP_TIMEOUT_MS;
  o->check_interval_ms = QPEER__PORTMAP_CHECK_MS;
  o->retry_min_ms = QPEER__PORTMAP_RETRY_MIN_MS;
  o->retry_max_ms = QPEER__PORTMAP_RETRY_MAX_MS;
  o->close_timeout_ms = QPEER__PORTMAP_CLOSE_MS;
}

static int copy_options(qpeer__pm *pm, const qpeer_portmap_options_t *o) {
  pm->protocols = o->protocols & QPEER_PORTMAP_ANY;
  pm->lifetime = o->lifetime ? o->lifetime : QPEER__PORTMAP_LIFETIME;
  pm->timeout_ms = o->timeout_ms ? o->timeout_ms : QPEER__PORTMAP_TIMEOUT_MS;
  pm->check_ms = o->check_interval_ms;
  pm->retry_min_ms = o->retry_min_ms ? o->retry_min_ms : 1000;
  pm->retry_max_ms = o->retry_max_ms;
  if (pm->retry_max_ms && pm->retry_max_ms < pm->retry_min_ms)
    pm->retry_max_ms = pm->retry_min_ms;
  pm->close_ms =
      o->close_timeout_ms ? o->close_timeout_ms : QPEER__PORTMAP_CLOSE_MS;
  if (pm->protocols == 0)
    return UV_EINVAL;
  pm->local.ss_family = AF_INET;
  if (o->endpoint) {
    int rv = qpeer_endpoint_get_local_addr(o->endpoint, &pm->local);
    if (rv != 0)
      return rv;
    pm->internal_port = qpeer__addr_port((const struct sockaddr *)&pm->local);
    qpeer__addr_normalize(&pm->local, (const struct sockaddr *)&pm->local);
  } else {
    pm->internal_port = o->internal_port;
  }
  if (pm->internal_port == 0)
    return UV_EINVAL;
  pm->suggest_port = o->external_port ? o->external_port : pm->internal_port;
  if (o->gateway) {
    if (o->gateway->sa_family != AF_INET && o->gateway->sa_family != AF_INET6)
      return UV_EINVAL;
    qpeer__addr_normalize(&pm->gw_opt, o->gateway);
    pm->have_gw_opt = 1;
  }
  if (o->upnp_root_url && !(pm->root_url = qpeer__strdup(o->upnp_root_url)))
    return UV_ENOMEM;
  if (!(pm->desc = qpeer__strdup(o->description ? o->description : "qpeer")))
    return UV_ENOMEM;
  return 0;
}

int qpeer_portmap_init_versioned(uv_loop_t *loop, qpeer_portmap_t *handle,
                                 int options_version,
                                 const qpeer_portmap_options_t *opts) {
  qpeer_portmap_options_t defaults;
  qpeer__pm *pm;
  int rv;
  if (!loop || !handle || options_version < 1)
    return UV_EINVAL;
  if (!opts) {
    qpeer_portmap_options_default(&defaults);
    opts = &defaults;
  }
  pm = qpeer__calloc(1, sizeof(*pm));
  if (!pm)
    return UV_ENOMEM;
  pm->loop = loop;
  if ((rv = copy_options(pm, opts)) != 0) {
    qpeer__free(pm->root_url);
    qpeer__free(pm->desc);
    qpeer__free(pm);
    return rv;
  }
  qpeer__handle_init((qpeer_handle_t *)handle, loop, QPEER_PORTMAP);
  pm->handle = handle;
  handle->impl = pm;
  uv_timer_init(loop, &pm->t_attempt);
  uv_timer_init(loop, &pm->t_renew);
  uv_timer_init(loop, &pm->t_check);
  uv_timer_init(loop, &pm->t_notify);
  pm->t_attempt.data = pm->t_renew.data = pm->t_check.data = pm;
  pm->t_notify.data = pm;
  pm->ntimers = 4;
  return 0;
}

static qpeer__pm *impl_of(const qpeer_portmap_t *handle) {
  if (!handle || handle->type != QPEER_PORTMAP ||
      !(handle->flags & QPEER__HANDLE_INIT) ||
      qpeer_is_closing((const qpeer_handle_t *)handle))
    return NULL;
  return handle->impl;
}

int qpeer_portmap_start(qpeer_portmap_t *handle, qpeer_portmap_cb cb) {
  qpeer__pm *pm = impl_of(handle);
  if (!pm || !cb)
    return UV_EINVAL;
  if (pm->state == S_STOPPING)
    return UV_EBUSY;
  if (pm->state != S_IDLE)
    return UV_EALREADY;
  if (!pm->have_gw_opt) {
    struct sockaddr_storage gw;
    int rv = read_gateway(&gw);
    if (rv != 0)
      return rv;
  }
  pm->cb = cb;
  pm->backoff_ms = 0;
  pm->fail_reported = 0;
  attempt_begin(pm);
  return 0;
}

int qpeer_portmap_stop(qpeer_portmap_t *handle) {
  qpeer__pm *pm = impl_of(handle);
  if (!pm)
    return UV_EINVAL;
  if (pm->state != S_IDLE && pm->state != S_STOPPING)
    stop_begin(pm);
  return 0;
}

int qpeer_portmap_renew(qpeer_portmap_t *handle) {
  qpeer__pm *pm = impl_of(handle);
  if (!pm)
    return UV_EINVAL;
  switch (pm->state) {
  case S_MAPPED:
    if (pm->op != OP_NONE)
      return UV_EALREADY;
    op_start(pm, OP_RENEW);
    return 0;
  case S_FAILED:
    if (pm->upnp && pm->upnp->busy)
      return UV_EALREADY;  /* a late UPnP add is still running */
    pm->fail_reported = 0; /* report this attempt's outcome too */
    attempt_begin(pm);
    return 0;
  case S_ATTEMPT:
    return UV_EALREADY;
  default:
    return UV_ENOTCONN;
  }
}

int qpeer_portmap_set_observed_addr(qpeer_portmap_t *handle,
                                    const struct sockaddr *addr) {
  qpeer__pm *pm = impl_of(handle);
  unsigned int flags;
  if (!pm)
    return UV_EINVAL;
  if (addr) {
    if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
      return UV_EINVAL;
    qpeer__addr_normalize(&pm->observed, addr);
    pm->have_observed = 1;
  } else {
    pm->have_observed = 0;
  }
  if (pm->state != S_MAPPED)
    return 0;
  flags = compute_flags(pm);
  if (flags != pm->info.flags) {
    pm->info.flags = flags;
    pm->info.double_nat = (flags & QPEER_PORTMAP_DOUBLE_NAT) != 0;
    uv_timer_start(&pm->t_notify, on_notify_timer, 0, 0);
  }
  return 0;
}

int qpeer_portmap_get_info(const qpeer_portmap_t *handle,
                           qpeer_portmap_info_t *info) {
  const qpeer__pm *pm = impl_of(handle);
  if (!pm || !info)
    return UV_EINVAL;
  if (!pm->mapped || pm->state != S_MAPPED)
    return UV_ENOTCONN;
  *info = pm->info;
  info->event = QPEER_PORTMAP_EV_MAPPED;
  info->tried = pm->tried;
  info->answered = pm->answered;
  return 0;
}

const char *qpeer_portmap_proto_name(unsigned int proto) {
  switch (proto) {
  case QPEER_PORTMAP_PCP:
    return "pcp";
  case QPEER_PORTMAP_NATPMP:
    return "nat-pmp";
  case QPEER_PORTMAP_UPNP:
    return "upnp";
  default:
    return "none";
  }
}

const char *qpeer_portmap_event_name(qpeer_portmap_event ev) {
  switch (ev) {
  case QPEER_PORTMAP_EV_MAPPED:
    return "mapped";
  case QPEER_PORTMAP_EV_RENEWED:
    return "renewed";
  case QPEER_PORTMAP_EV_CHANGED:
    return "changed";
  case QPEER_PORTMAP_EV_RECREATED:
    return "recreated";
  case QPEER_PORTMAP_EV_FAILED:
    return "failed";
  default:
    return "unknown";
  }
}
