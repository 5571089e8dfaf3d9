/* SPDX-License-Identifier: MIT */
/*
 * The qpeer control stream: negotiated by a private TLS extension, then one
 * library-owned unidirectional stream per side, hidden from the
 * application, carrying the traversal messages (lib/peer/traversal_msg.h):
 * HELLO first, then OBSERVED_ADDRESS (address discovery) and, for the NAT
 * traversal work, ADD_ADDRESS / PUNCH_ME_NOW / REMOVE_ADDRESS.
 */
#ifndef QPEER_PEER_CONTROL_H
#define QPEER_PEER_CONTROL_H

#include <gnutls/gnutls.h>

#include "peer/traversal_msg.h"

struct qpeer__conn;
struct qpeer__stream;

/* The private TLS extension (doc/protocol.md §1): a 0xFF00-0xFFFF
 * "private use" code point whose value is the control-stream version. */
#define QPEER__CTRL_TLS_EXT 0xFF71
#define QPEER__CTRL_VERSION 1
/* Most control messages queued for sending at once. */
#define QPEER__CTRL_MAX_QUEUED 64

/* Registers the extension on a fresh TLS session of |c|. */
int qpeer__ctrl_tls_register(struct qpeer__conn *c, gnutls_session_t s);

/* After the handshake: opens our control stream and sends HELLO, if both
 * sides offered the extension. Returns 0 or a UV_E* / QPEER_E* code. */
int qpeer__ctrl_start(struct qpeer__conn *c);

/* Nonzero if the peer's stream |id| is its control stream. */
int qpeer__ctrl_is_peer_stream(struct qpeer__conn *c, int64_t id);

/* Takes over the peer's control stream |st|. Returns 0 or UV_ENOMEM. */
int qpeer__ctrl_adopt_peer_stream(struct qpeer__conn *c,
                                  struct qpeer__stream *st);

/* The current path changed: report the new observation if due. */
void qpeer__ctrl_on_path(struct qpeer__conn *c);

/* Sends one message (queued, copied). Returns 0, UV_ENOTCONN when there
 * is no control stream, UV_ENOBUFS when too many are queued. */
int qpeer__ctrl_send(struct qpeer__conn *c, const qpeer__trav_msg *m);

/* Releases the control state (the streams are freed with the conn). */
void qpeer__ctrl_free(struct qpeer__conn *c);

#endif /* QPEER_PEER_CONTROL_H */
