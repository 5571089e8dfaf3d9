/* SPDX-License-Identifier: MIT */
/* NAT traversal inside a connection: the libuv glue around the pure punch
 * scheduler and responder (punch_sched.h), fed by the control stream. */
#ifndef QPEER_PEER_TRAVERSAL_H
#define QPEER_PEER_TRAVERSAL_H

#include "peer/traversal_msg.h"

struct qpeer__conn;

/* Raw punch probes: magic, then an 8-byte token both ends derive from the
 * TLS session (exporter), so only the peer can make one we act on. */
#define QPEER__PROBE_MAGIC "qpeerPN1"
#define QPEER__PROBE_LEN 32

/* A traversal message arrived on the control stream. Returns 0 or a
 * QPEER_E* code (a protocol violation). */
int qpeer__trav_on_message(struct qpeer__conn *c, const qpeer__trav_msg *m);
/* Releases the traversal state (its timer closes asynchronously). */
void qpeer__trav_free(struct qpeer__conn *c);
/* The connection ended: cancel what runs (the request completes). */
void qpeer__trav_conn_ended(struct qpeer__conn *c);

#endif
