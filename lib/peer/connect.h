/* SPDX-License-Identifier: MIT */
/* Peer connect (include/qpeer/peer.h): the path race, the background
 * relay-to-direct upgrade and the listener's advertisement helper. The
 * relay path's socket aliases are shared per (endpoint, relay address). */
#ifndef QPEER_PEER_CONNECT_H
#define QPEER_PEER_CONNECT_H

/* Synthetic local addresses of relay aliases: [100::c0:N]:1 (RFC 6666
 * discard-only prefix), N counting up per alias. */
#define QPEER__PC_ALIAS_PORT 1

/* Limits of the copied options. */
#define QPEER__PC_MAX_ALPN 8
#define QPEER__PC_MAX_ATTEMPTS (1 + QPEER_TICKET_MAX_ADDRS)

struct qpeer_peer_connect_s;
struct qpeer__netwatch;

/* Test hooks: the upgrade's interface watch (NULL when there is none), and
 * how many network changes it acted on. */
struct qpeer__netwatch *
qpeer__peer_connect_netwatch(struct qpeer_peer_connect_s *req);
uint64_t qpeer__peer_connect_net_changes(const struct qpeer_peer_connect_s *req);

#endif
