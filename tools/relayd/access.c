/* SPDX-License-Identifier: MIT */
/*
 * The access decision (pure): auth modes over the token and peer-ID
 * checks. See access.h.
 */
#include "access.h"

relayd_peer_check relayd_peer_check_id(const qpeer_peer_id_t *id,
                                       const qpeer_peer_id_t *allow,
                                       size_t nallow) {
  size_t i;
  if (!id)
    return RELAYD_PEER_MISSING;
  for (i = 0; i < nallow; i++)
    if (qpeer_peer_id_equal(id, &allow[i]))
      return RELAYD_PEER_ALLOWED;
  return RELAYD_PEER_DENIED;
}

const char *relayd_access_decide(relayd_auth_mode auth, relayd_token_err te,
                                 int sent_token, relayd_peer_check peer,
                                 int *pstatus) {
  int jwt_ok = te == RELAYD_TOKEN_OK, peer_ok = peer == RELAYD_PEER_ALLOWED;
  int blame_token;
  *pstatus = 200;
  switch (auth) {
  case RELAYD_AUTH_JWT:
    if (jwt_ok)
      return NULL;
    blame_token = 1;
    break;
  case RELAYD_AUTH_PEERID:
    if (peer_ok)
      return NULL;
    blame_token = 0;
    break;
  case RELAYD_AUTH_BOTH:
    if (jwt_ok && peer_ok)
      return NULL;
    blame_token = !jwt_ok;
    break;
  case RELAYD_AUTH_EITHER:
    if (jwt_ok || peer_ok)
      return NULL;
    blame_token = sent_token || peer == RELAYD_PEER_MISSING;
    break;
  case RELAYD_AUTH_NONE:
    return NULL;
  default:
    /* An unknown mode admits nobody. */
    *pstatus = 401;
    return relayd_token_err_name(RELAYD_TOKEN_MISSING);
  }
  if (blame_token) {
    *pstatus = relayd_token_err_status(te);
    return relayd_token_err_name(te);
  }
  if (peer == RELAYD_PEER_MISSING) {
    *pstatus = 401;
    return "peer_id_missing";
  }
  *pstatus = 403;
  return "peer_not_allowed";
}
