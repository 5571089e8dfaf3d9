/* SPDX-License-Identifier: MIT */
/*
 * The access decision of qpeer-relay (pure): how the configured auth mode
 * combines the token check (token.h) and the peer-ID check into "admit"
 * or a refusal with a status and a reason for Proxy-Status.
 */
#ifndef QPEER_RELAYD_ACCESS_H
#define QPEER_RELAYD_ACCESS_H

#include "config.h"
#include "token.h"

/* The peer-ID check's result. */
typedef enum {
  RELAYD_PEER_MISSING = 0, /* the client presented no identity: 401 */
  RELAYD_PEER_ALLOWED = 1, /* on the allowlist */
  RELAYD_PEER_DENIED = 2   /* not on it: 403 */
} relayd_peer_check;

/* relayd_peer_check_id looks |id| (may be NULL) up in |allow|. */
relayd_peer_check relayd_peer_check_id(const qpeer_peer_id_t *id,
                                       const qpeer_peer_id_t *allow,
                                       size_t nallow);

/*
 * relayd_access_decide applies |auth| to the token result |te| (whether
 * or not the client sent a token: |sent_token|) and the peer result
 * |peer|. Returns NULL to admit, or the refusal reason ("token_expired",
 * "peer_not_allowed", ...) with its HTTP status in *pstatus. With
 * RELAYD_AUTH_EITHER a refused client hears about its token if it sent
 * one or has no identity, else about its peer ID.
 */
const char *relayd_access_decide(relayd_auth_mode auth, relayd_token_err te,
                                 int sent_token, relayd_peer_check peer,
                                 int *pstatus);

#endif /* QPEER_RELAYD_ACCESS_H */
