/* SPDX-License-Identifier: MIT */
/*
 * Error names and messages (from QPEER_ERRNO_MAP, delegating libuv codes to
 * libuv), and translation of ngtcp2 and GnuTLS codes into qpeer's codes.
 * Dependency codes never leave the library untranslated.
 */
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>

#include "internal.h"

const char *qpeer_err_name(int err) {
  switch (err) {
#define XX(name, val, msg)                                                    \
  case (val):                                                                 \
    return #name;
    QPEER_ERRNO_MAP(XX)
#undef XX
  case 0:
    return "OK";
  default:
    if (err <= -9000 && err >= -9999)
      return "EUNKNOWN_QPEER";
    return uv_err_name(err);
  }
}

const char *qpeer_strerror(int err) {
  switch (err) {
#define XX(name, val, msg)                                                    \
  case (val):                                                                 \
    return msg;
    QPEER_ERRNO_MAP(XX)
#undef XX
  case 0:
    return "success";
  default:
    if (err <= -9000 && err >= -9999)
      return "unknown qpeer error";
    return uv_strerror(err);
  }
}

int qpeer__err_from_ngtcp2(int liberr) {
  int r;
  switch (liberr) {
  case 0:
    return 0;
  case NGTCP2_ERR_NOMEM:
    return UV_ENOMEM;
  case NGTCP2_ERR_INVALID_ARGUMENT:
    return UV_EINVAL;
  case NGTCP2_ERR_NOBUF:
    return UV_ENOBUFS;
  case NGTCP2_ERR_STREAM_ID_BLOCKED:
  case NGTCP2_ERR_STREAM_DATA_BLOCKED:
  case NGTCP2_ERR_FLOW_CONTROL:
  case NGTCP2_ERR_STREAM_LIMIT:
    return QPEER_EFLOWCONTROL;
  case NGTCP2_ERR_STREAM_SHUT_WR:
    return UV_EPIPE;
  case NGTCP2_ERR_STREAM_NOT_FOUND:
  case NGTCP2_ERR_STREAM_STATE:
    return UV_ENOTCONN;
  case NGTCP2_ERR_CRYPTO:
    return QPEER_EHANDSHAKE;
  case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
    return UV_ETIMEDOUT;
  case NGTCP2_ERR_IDLE_CLOSE:
    return QPEER_EIDLE;
  case NGTCP2_ERR_VERSION_NEGOTIATION_FAILURE:
  case NGTCP2_ERR_RECV_VERSION_NEGOTIATION:
    return QPEER_EVERSION;
  case NGTCP2_ERR_PROTO:
  case NGTCP2_ERR_FRAME_ENCODING:
  case NGTCP2_ERR_TRANSPORT_PARAM:
  case NGTCP2_ERR_REQUIRED_TRANSPORT_PARAM:
  case NGTCP2_ERR_MALFORMED_TRANSPORT_PARAM:
  case NGTCP2_ERR_ACK_FRAME:
  case NGTCP2_ERR_FINAL_SIZE:
    return QPEER_EPROTO;
  case NGTCP2_ERR_CLOSING:
  case NGTCP2_ERR_DRAINING:
    return QPEER_EPEERCLOSED;
  case NGTCP2_ERR_NO_VIABLE_PATH:
    return QPEER_ENOPATH;
  default:
    r = QPEER_EQUIC;
    break;
  }
  qpeer__log(QPEER_LOG_DEBUG, "ngtcp2 error %d (%s) mapped to %s", liberr,
             ngtcp2_strerror(liberr), qpeer_err_name(r));
  return r;
}

int qpeer__err_from_gnutls(int gerr) {
  if (gerr >= 0)
    return 0;
  switch (gerr) {
  case GNUTLS_E_MEMORY_ERROR:
    return UV_ENOMEM;
  case GNUTLS_E_FILE_ERROR:
    return QPEER_EKEYFILE;
  case GNUTLS_E_CERTIFICATE_ERROR:
  case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
    return QPEER_ECERT;
  default:
    qpeer__log(QPEER_LOG_DEBUG, "gnutls error %d (%s) mapped to ETLS", gerr,
               gnutls_strerror(gerr));
    return QPEER_ETLS;
  }
}
