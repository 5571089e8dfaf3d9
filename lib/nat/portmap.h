/* SPDX-License-Identifier: MIT */
/*
 * The port-mapping handle (qpeer_portmap_t) internals shared with the
 * handle base: qpeer_close() dispatches here.
 */
#ifndef QPEER_NAT_PORTMAP_H
#define QPEER_NAT_PORTMAP_H

#include "qpeer/portmap.h"

/* Defaults of qpeer_portmap_options_t. */
#define QPEER__PORTMAP_LIFETIME 7200u        /* s (RFC 6886/6887 advice) */
#define QPEER__PORTMAP_TIMEOUT_MS 10000u     /* one attempt */
#define QPEER__PORTMAP_CHECK_MS 120000u      /* lost-mapping checks */
#define QPEER__PORTMAP_RETRY_MIN_MS 30000u   /* first retry */
#define QPEER__PORTMAP_RETRY_MAX_MS 1800000u /* back-off cap */
#define QPEER__PORTMAP_CLOSE_MS 2000u        /* delete on close */

/* How long a lower-priority protocol waits for a higher one that has not
 * answered yet (capped at a quarter of the attempt's deadline). */
#define QPEER__PORTMAP_GRACE_MS 2000u
/* UPnP discovery starts this long after PCP and NAT-PMP unless one of
 * them answered (or at once when both failed); capped at the grace. */
#define QPEER__PORTMAP_UPNP_DELAY_MS 250u
/* Longest SSDP wait (capped at half the attempt's deadline). */
#define QPEER__PORTMAP_SSDP_MS 2000u
/* Deadline of one periodic check. */
#define QPEER__PORTMAP_CHECK_TIMEOUT_MS 5000u

/* qpeer__portmap_close starts closing (from qpeer_close()). */
int qpeer__portmap_close(qpeer_portmap_t *pm);

#endif /* QPEER_NAT_PORTMAP_H */
