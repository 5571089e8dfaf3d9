/* SPDX-License-Identifier: MIT */
/*
 * UPnP IGD client on miniupnpc 2.2.4 (API 17). Every miniupnpc call blocks
 * (SSDP wait, HTTP, SOAP), so each operation runs on the libuv thread pool
 * (uv_queue_work) and completes on the loop thread. One operation at a
 * time; the thread touches only this struct's miniupnpc state and the
 * operation's inputs and outputs, never the loop, the log or qpeer's
 * allocator.
 */
#ifndef QPEER_NAT_UPNP_H
#define QPEER_NAT_UPNP_H

#include <miniupnpc/miniupnpc.h>
#include <netinet/in.h>
#include <uv.h>

typedef struct qpeer__upnp qpeer__upnp;

enum {
  QPEER__UPNP_DISCOVER = 1, /* find the IGD, its WAN service, our LAN IP */
  QPEER__UPNP_ADD,          /* AddPortMapping (with fallbacks), verify */
  QPEER__UPNP_CHECK,        /* is our mapping still there? + external IP */
  QPEER__UPNP_DELETE        /* DeletePortMapping */
};

/* The outcome of an operation. */
typedef struct {
  /* 0; QPEER_ENOMAPPING (no IGD found); QPEER_EMAPREFUSED (a UPnP error,
   * see |upnp_error|); UV_ENOMEM; UV_EIO (miniupnpc failed: HTTP or
   * parse error, |upnp_error| < 0); UV_ECANCELED (cancelled while
   * queued). */
  int status;
  int op;                      /* QPEER__UPNP_* */
  int igd_state;               /* DISCOVER: UPNP_GetValidIGD()'s answer */
  int upnp_error;              /* UPnP error code or UPNPCOMMAND_* */
  int exists;                  /* CHECK: our entry is present */
  int have_external;           /* |external| holds the WAN address */
  struct sockaddr_in external; /* GetExternalIPAddress (port 0) */
  struct sockaddr_in lan;      /* our LAN address as the IGD sees it */
  uint16_t external_port;      /* ADD/CHECK: the mapped external port */
  uint32_t lease;              /* ADD/CHECK: lease seconds; 0 permanent */
} qpeer__upnp_result;

typedef void (*qpeer__upnp_cb)(qpeer__upnp *up, const qpeer__upnp_result *r);
typedef void (*qpeer__upnp_close_cb)(qpeer__upnp *up);

struct qpeer__upnp {
  uv_loop_t *loop;               /* the loop */
  uv_work_t work;                /* the operation in the pool */
  int busy;                      /* an operation is queued or running */
  int closing;                   /* qpeer__upnp_close was called */
  qpeer__upnp_close_cb close_cb; /* runs when closed */
  qpeer__upnp_cb cb;             /* completion of the operation */
  void *data;                    /* owner's context */
  /* Inputs of the operation (set on the loop thread before queueing). */
  int op;                 /* QPEER__UPNP_* */
  char root_url[256];     /* DISCOVER: skip SSDP if not empty */
  int delay_ms;           /* DISCOVER: SSDP wait */
  char desc[64];          /* ADD: description */
  uint16_t internal_port; /* ADD/CHECK: our port */
  uint16_t want_port;     /* ADD/CHECK/DELETE: external port */
  uint32_t lease;         /* ADD: lease seconds */
  uint32_t seed;          /* ADD: for alternative ports */
  /* miniupnpc state: owned by the thread while |busy|. */
  int have_igd;         /* urls/data are valid */
  struct UPNPUrls urls; /* control URLs (miniupnpc-allocated) */
  struct IGDdatas igd;  /* parsed description */
  char lanaddr[64];     /* our LAN address (text) */
  int igd_state;        /* UPNP_GetValidIGD()'s answer */
  /* Output of the operation. */
  qpeer__upnp_result out;
};

/* qpeer__upnp_init prepares |up| (no I/O). |root_url| (may be NULL) skips
 * SSDP discovery; |desc| names the mappings. */
void qpeer__upnp_init(uv_loop_t *loop, qpeer__upnp *up, const char *root_url,
                      const char *desc, uint16_t internal_port);

/* qpeer__upnp_discover finds the IGD, waiting up to |delay_ms| for SSDP
 * answers. UPNP_GetValidIGD() 1 (connected IGD) and 2 (IGD not connected
 * or with a reserved external address: usable, and reported) succeed. */
int qpeer__upnp_discover(qpeer__upnp *up, int delay_ms, qpeer__upnp_cb cb);

/* qpeer__upnp_add maps |ext_port| (0: the internal port) to our LAN
 * address for |lease| seconds. Handles 718 (conflict: tries other ports),
 * 724 (same port required) and 725 (permanent leases only: lease 0). */
int qpeer__upnp_add(qpeer__upnp *up, uint16_t ext_port, uint32_t lease,
                    qpeer__upnp_cb cb);

/* qpeer__upnp_check looks up the entry for |ext_port| and the external
 * address. */
int qpeer__upnp_check(qpeer__upnp *up, uint16_t ext_port, qpeer__upnp_cb cb);

/* qpeer__upnp_delete deletes the entry for |ext_port|. */
int qpeer__upnp_delete(qpeer__upnp *up, uint16_t ext_port, qpeer__upnp_cb cb);

/* qpeer__upnp_close cancels a queued operation (its callback does not
 * run) or waits for a running one, frees miniupnpc's state, and calls
 * |cb| (at once when nothing runs). */
void qpeer__upnp_close(qpeer__upnp *up, qpeer__upnp_close_cb cb);

#endif /* QPEER_NAT_UPNP_H */
