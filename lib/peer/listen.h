/* SPDX-License-Identifier: MIT */
/* The peer listener (include/qpeer/peer.h, lib/peer/listen.c): closing
 * from qpeer_close(), and a hook for tests to reach its interface watch. */
#ifndef QPEER_PEER_LISTEN_H
#define QPEER_PEER_LISTEN_H

#include "peer/netwatch.h"
#include "qpeer/peer.h"

/* Limits of the copied options. */
#define QPEER__PL_MAX_ALPN 8
/* Refusals held for delivery at once (more are only counted). */
#define QPEER__PL_MAX_REFUSALS 16

/* qpeer_close() of a QPEER_PEER_LISTENER handle. */
int qpeer__peer_listener_close(qpeer_peer_listener_t *l);

/* The listener's interface watch, or NULL before start or after close
 * (tests replace its address source to inject a change). */
qpeer__netwatch *qpeer__peer_listener_netwatch(qpeer_peer_listener_t *l);

#endif /* QPEER_PEER_LISTEN_H */
