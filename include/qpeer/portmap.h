/* SPDX-License-Identifier: MIT */
/*
 * qpeer_portmap_t: asks the local gateway to forward a UDP port (normally
 * the port of a qpeer_endpoint_t) from its external address, by PCP
 * (RFC 6887), NAT-PMP (RFC 6886) or UPnP IGD, keeps that mapping alive,
 * notices a gateway that lost it and deletes it on close. See
 * doc/portmap.md for the protocols, the timers and the double-NAT checks.
 */
#ifndef QPEER_PORTMAP_H
#define QPEER_PORTMAP_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "qpeer/core.h"
#include "qpeer/endpoint.h"

typedef struct qpeer_portmap_s qpeer_portmap_t;

struct qpeer_portmap_s {
  QPEER_HANDLE_FIELDS
};

/** The mapping protocols, usable as a bit mask in the options. */
typedef enum {
  QPEER_PORTMAP_PCP = 1,    /* Port Control Protocol, RFC 6887 */
  QPEER_PORTMAP_NATPMP = 2, /* NAT Port Mapping Protocol, RFC 6886 */
  QPEER_PORTMAP_UPNP = 4,   /* UPnP Internet Gateway Device */
  QPEER_PORTMAP_ANY = 7     /* all of them (the default) */
} qpeer_portmap_proto;

/* Flags in qpeer_portmap_info_t.flags. */
/** The external address is private (RFC 1918, loopback, link-local, ULA,
 * unspecified): the gateway itself sits behind another NAT. */
#define QPEER_PORTMAP_EXT_PRIVATE 0x01u
/** The external address is shared address space, 100.64.0.0/10 (CGNAT). */
#define QPEER_PORTMAP_EXT_CGNAT 0x02u
/** The external address is another special-purpose (non-global) address,
 * such as the documentation ranges. Informational: not double NAT. */
#define QPEER_PORTMAP_EXT_RESERVED 0x04u
/** The external address differs from the address a STUN server observed
 * (qpeer_portmap_set_observed_addr()): another NAT lies beyond the
 * gateway, so the mapping is not reachable from the internet. */
#define QPEER_PORTMAP_STUN_MISMATCH 0x08u
/** UPnP only: the IGD was found but miniupnpc judged it "not connected or
 * with a reserved external address" (UPNP_GetValidIGD() returned 2). The
 * mapping is used anyway; a double-NAT signal. */
#define QPEER_PORTMAP_IGD_RESERVED 0x10u
/** UPnP only: the gateway grants permanent leases only; the mapping is
 * checked periodically instead of renewed, and deleted on close. */
#define QPEER_PORTMAP_PERMANENT 0x20u
/** The flags that mean "double NAT / CGNAT": the mapping alone does not
 * make the port reachable from the internet. */
#define QPEER_PORTMAP_DOUBLE_NAT                                               \
  (QPEER_PORTMAP_EXT_PRIVATE | QPEER_PORTMAP_EXT_CGNAT |                       \
   QPEER_PORTMAP_STUN_MISMATCH)

/** What a callback reports. */
typedef enum {
  QPEER_PORTMAP_EV_MAPPED = 1,    /* a mapping was obtained */
  QPEER_PORTMAP_EV_RENEWED = 2,   /* renewed; nothing changed */
  QPEER_PORTMAP_EV_CHANGED = 3,   /* external address, port or flags changed */
  QPEER_PORTMAP_EV_RECREATED = 4, /* the gateway had lost the mapping (it
                                     rebooted); it was made again */
  QPEER_PORTMAP_EV_FAILED = 5     /* no mapping (status says why) */
} qpeer_portmap_event;

/** A report on the mapping, lent to the callback. */
typedef struct qpeer_portmap_info_s {
  qpeer_portmap_event event;        /* why the callback runs */
  qpeer_portmap_proto protocol;     /* protocol holding the mapping, or 0 */
  struct sockaddr_storage external; /* external address and port */
  struct sockaddr_storage internal; /* our address and the mapped port */
  struct sockaddr_storage gateway;  /* the gateway that was asked */
  uint32_t lifetime;                /* granted seconds; 0 = permanent */
  uint32_t epoch;                   /* PCP/NAT-PMP server epoch (seconds) */
  unsigned int flags;               /* QPEER_PORTMAP_EXT_* etc. */
  int double_nat;                   /* flags & QPEER_PORTMAP_DOUBLE_NAT */
  unsigned int tried;               /* protocols tried in the last attempt */
  unsigned int answered;            /* ... and those whose gateway answered */
  int result_code;                  /* on refusal: the PCP or NAT-PMP result
                                       code, or the UPnP error code */
} qpeer_portmap_info_t;

/**
 * `qpeer_portmap_cb` runs for every change of the mapping: with |status| 0
 * and |info->event| MAPPED, RENEWED, CHANGED or RECREATED, or with a
 * negative |status| and event FAILED when no mapping could be obtained
 * within the deadline (QPEER_ENOMAPPING: nothing answered, or
 * QPEER_EMAPREFUSED: a gateway answered but refused) or when a mapping
 * was lost (renewal failed until it expired). |info| is valid only during
 * the call.
 */
typedef void (*qpeer_portmap_cb)(qpeer_portmap_t *pm, int status,
                                 const qpeer_portmap_info_t *info);

#define QPEER_PORTMAP_OPTIONS_V1 1
#define QPEER_PORTMAP_OPTIONS_VERSION QPEER_PORTMAP_OPTIONS_V1

/** Port-mapping options; fields are only ever appended. */
typedef struct qpeer_portmap_options_s {
  /* Map the UDP port of this endpoint (read at init; the endpoint is not
   * referenced afterwards). NULL: map |internal_port|. */
  qpeer_endpoint_t *endpoint;
  /* Port to map when |endpoint| is NULL. */
  uint16_t internal_port;
  /* External port to suggest; 0 (default) suggests the internal port. The
   * gateway may assign another; the one assigned is reported. */
  uint16_t external_port;
  /* Gateway to ask (copied); port 0 means 5351. NULL (default): the
   * gateway of the default IPv4 route (/proc/net/route), looked up again
   * at every attempt. An IPv6 gateway allows PCP only. */
  const struct sockaddr *gateway;
  /* QPEER_PORTMAP_* protocols to try (default QPEER_PORTMAP_ANY). */
  unsigned int protocols;
  /* Requested lifetime in seconds (default 7200). Gateways may grant
   * another; renewal happens at half the granted lifetime. */
  uint32_t lifetime;
  /* Deadline of one attempt to obtain a mapping, in ms (default 10000). */
  uint64_t timeout_ms;
  /* How often the gateway is checked for a lost mapping (PCP ANNOUNCE,
   * NAT-PMP epoch, UPnP entry lookup), in ms (default 120000; 0: only at
   * renewals). */
  uint64_t check_interval_ms;
  /* Back-off after a failed attempt or a lost mapping: the first retry
   * waits |retry_min_ms| (default 30000), each next one twice as long up
   * to |retry_max_ms| (default 1800000). |retry_max_ms| 0 disables
   * retries: after a failure the handle waits for qpeer_portmap_renew()
   * or a new start. */
  uint64_t retry_min_ms;
  uint64_t retry_max_ms;
  /* Bound on deleting the mapping at stop/close, in ms (default 2000).
   * UPnP calls that are already running are waited for (miniupnpc's own
   * timeouts bound them). */
  uint64_t close_timeout_ms;
  /* UPnP: root description URL of the IGD, which skips SSDP discovery
   * (copied); NULL (default) discovers. */
  const char *upnp_root_url;
  /* UPnP: mapping description (copied; default "qpeer"). */
  const char *description;
} qpeer_portmap_options_t;

QPEER_EXTERN void
qpeer_portmap_options_default_versioned(int options_version,
                                        qpeer_portmap_options_t *opts);

/** `qpeer_portmap_options_default` fills |opts| with the defaults. */
#define qpeer_portmap_options_default(OPTS)                                    \
  qpeer_portmap_options_default_versioned(QPEER_PORTMAP_OPTIONS_VERSION, (OPTS))

QPEER_EXTERN int
qpeer_portmap_init_versioned(uv_loop_t *loop, qpeer_portmap_t *pm,
                             int options_version,
                             const qpeer_portmap_options_t *opts);

/**
 * `qpeer_portmap_init` initialises |pm| on |loop| without any I/O. |opts|
 * is copied (strings too). Returns 0, UV_EINVAL (no endpoint and no
 * internal port, an empty protocol mask, a gateway that is neither IPv4
 * nor IPv6) or UV_ENOMEM. The handle must be closed with qpeer_close();
 * closing deletes the mapping (bounded by |close_timeout_ms|) before the
 * close callback runs.
 */
#define qpeer_portmap_init(LOOP, PM, OPTS)                                     \
  qpeer_portmap_init_versioned((LOOP), (PM), QPEER_PORTMAP_OPTIONS_VERSION,    \
                               (OPTS))

/**
 * `qpeer_portmap_start` starts obtaining the mapping and keeping it. |cb|
 * runs on later loop iterations, never inside this call: once with the
 * first mapping or the first failure, then for every renewal, change, loss
 * and re-creation, until qpeer_portmap_stop() or qpeer_close(). Returns 0,
 * UV_EINVAL, UV_EALREADY when started, UV_EBUSY while a stop is still
 * deleting the previous mapping, or QPEER_ENOGATEWAY when no gateway was
 * given and the host has no default IPv4 route.
 */
QPEER_EXTERN int qpeer_portmap_start(qpeer_portmap_t *pm, qpeer_portmap_cb cb);

/**
 * `qpeer_portmap_stop` stops: no callback runs afterwards, and the mapping
 * (if any) is deleted in the background. Returns 0 or UV_EINVAL.
 */
QPEER_EXTERN int qpeer_portmap_stop(qpeer_portmap_t *pm);

/**
 * `qpeer_portmap_renew` renews the mapping now (including the check for a
 * gateway that lost it) or, after a failure, starts a new attempt at once.
 * The outcome is reported to the callback. Returns 0, UV_EINVAL,
 * UV_ENOTCONN when not started, or UV_EALREADY while an attempt or a
 * renewal is already running.
 */
QPEER_EXTERN int qpeer_portmap_renew(qpeer_portmap_t *pm);

/**
 * `qpeer_portmap_set_observed_addr` tells the handle the public address a
 * STUN server (or a peer) observed for this host; NULL forgets it. When a
 * mapping's external address differs, QPEER_PORTMAP_STUN_MISMATCH is set;
 * if that changes the flags of a current mapping, the callback reports
 * QPEER_PORTMAP_EV_CHANGED on a later loop iteration. Only the IP address
 * is compared (the port of a STUN binding need not be the mapped port).
 * Returns 0 or UV_EINVAL.
 */
QPEER_EXTERN int qpeer_portmap_set_observed_addr(qpeer_portmap_t *pm,
                                                 const struct sockaddr *addr);

/**
 * `qpeer_portmap_get_info` copies the current mapping into |info| (event
 * QPEER_PORTMAP_EV_MAPPED). Returns 0, UV_EINVAL, or UV_ENOTCONN when
 * there is no mapping.
 */
QPEER_EXTERN int qpeer_portmap_get_info(const qpeer_portmap_t *pm,
                                        qpeer_portmap_info_t *info);

/** `qpeer_portmap_proto_name` names a protocol ("pcp", "nat-pmp", "upnp"),
 * or returns "none". */
QPEER_EXTERN const char *qpeer_portmap_proto_name(unsigned int proto);

/** `qpeer_portmap_event_name` names an event ("mapped", "renewed", ...). */
QPEER_EXTERN const char *qpeer_portmap_event_name(qpeer_portmap_event ev);

#endif /* QPEER_PORTMAP_H */
