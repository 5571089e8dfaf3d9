/* SPDX-License-Identifier: MIT */
/*
 * The MASQUE client (tunnel.c): one state machine behind both public
 * handles, qpeer_tunnel_t (CONNECT-UDP, RFC 9298) and qpeer_relay_bind_t
 * (bind, draft-ietf-masque-connect-udp-listen). Each attempt is a session:
 * a QUIC connection to the proxy from the handle's endpoint, an HTTP/3
 * session on it (h3conn.c) and one Extended CONNECT request. While the
 * request is up, a virtual interface of the endpoint (qpeer__vif) maps a
 * synthetic local address to it.
 */
#ifndef QPEER_H3_TUNNEL_H
#define QPEER_H3_TUNNEL_H

#include "internal.h"
#include "qpeer/masque.h"

/* The first (and only) context ID a binding registers for uncompressed
 * datagrams: client-allocated IDs are even and 0 is reserved. */
#define QPEER__BIND_UNCOMPRESSED_CTX 2

/* Most contexts the proxy may assign to a binding of ours; more are
 * refused with COMPRESSION_CLOSE (draft §5: endpoints MUST cap them). */
#define QPEER__BIND_MAX_PROXY_CONTEXTS 64

/* Most received packets waiting for delivery to the endpoint. */
#define QPEER__TUNNEL_RXQ_MAX 512

/* Default keep-alive of the connection to the proxy, so that the binding
 * notices a dead relay within a few seconds of the idle timeout. */
#define QPEER__MASQUE_KEEPALIVE_MS 10000

/* qpeer__masque_synthetic_addr writes an address in the discard-only
 * prefix 100::/64 (RFC 6666) whose interface identifier is |id| and port
 * |port|: never routable, so it cannot collide with a real path. */
void qpeer__masque_synthetic_addr(struct sockaddr_storage *ss, uint64_t id,
                                  uint16_t port);

/* qpeer__tunnel_close and qpeer__relay_bind_close close the handle once
 * qpeer_close() (or the type's _close function) has set its CLOSING flag
 * and close_cb; they are what qpeer_close() dispatches to. */
int qpeer__tunnel_close(qpeer_tunnel_t *tunnel);
int qpeer__relay_bind_close(qpeer_relay_bind_t *bind);

/* qpeer__masque_client_conn returns the connection to the proxy of a
 * tunnel or binding that is up, else NULL (for tests and diagnostics). */
qpeer_conn_t *qpeer__masque_client_conn(const qpeer_handle_t *h);

/* Nonzero when the proxy's GOAWAY arrived on the connection that carries
 * the tunnel or binding now (its current session, or the draining one);
 * for tests. */
int qpeer__masque_client_goaway(const qpeer_handle_t *h);

#endif /* QPEER_H3_TUNNEL_H */
