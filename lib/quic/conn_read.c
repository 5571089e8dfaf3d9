/* SPDX-License-Identifier: MIT */
/*
 * Feeding received packets to ngtcp2 and turning its verdicts into
 * connection outcomes: remote closes, TLS failures (with qpeer's identity
 * errors), protocol errors.
 */
#include <string.h>

#include "quic/handles.h"

/* TLS alerts as they appear in CRYPTO_ERROR (0x100 + alert). */
#define ALERT_BAD_CERTIFICATE 42
#define ALERT_UNSUPPORTED_CERTIFICATE 43
#define ALERT_CERTIFICATE_REVOKED 44
#define ALERT_CERTIFICATE_EXPIRED 45
#define ALERT_CERTIFICATE_UNKNOWN 46
#define ALERT_UNKNOWN_CA 48
#define ALERT_ACCESS_DENIED 49
#define ALERT_CERTIFICATE_REQUIRED 116

/* Status for a close the peer sent us. */
static int remote_close_status(qpeer__conn *c,
                               const ngtcp2_connection_close_error *e) {
  if (c->close_info.kind == QPEER_CLOSE_STATELESS_RESET)
    return QPEER_ESTATELESSRESET;
  switch (e->type) {
  case NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION:
    c->close_info.kind = QPEER_CLOSE_APPLICATION;
    return e->error_code == 0 ? QPEER_EPEERCLOSED : QPEER_EAPPCLOSE;
  case NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT:
    c->close_info.kind = QPEER_CLOSE_TRANSPORT;
    if (e->error_code == NGTCP2_NO_ERROR)
      return QPEER_EPEERCLOSED;
    if (e->error_code == NGTCP2_CONNECTION_REFUSED)
      return UV_ECONNREFUSED;
    if (e->error_code >= 0x100 && e->error_code <= 0x1ff) {
      switch (e->error_code - 0x100) {
      case ALERT_ACCESS_DENIED:
      case ALERT_CERTIFICATE_REQUIRED:
        return QPEER_EREFUSED;
      case ALERT_BAD_CERTIFICATE:
      case ALERT_UNSUPPORTED_CERTIFICATE:
      case ALERT_CERTIFICATE_REVOKED:
      case ALERT_CERTIFICATE_EXPIRED:
      case ALERT_CERTIFICATE_UNKNOWN:
      case ALERT_UNKNOWN_CA:
        return c->server ? QPEER_ECERT : QPEER_EREFUSED;
      default:
        return QPEER_EHANDSHAKE;
      }
    }
    return QPEER_EPROTO;
  default:
    return QPEER_EPROTO;
  }
}

static void record_close_info(qpeer__conn *c,
                              const ngtcp2_connection_close_error *e,
                              int remote) {
  size_t n = e->reason ? QPEER__MIN(e->reasonlen, QPEER__MAX_CLOSE_REASON) : 0;
  c->close_info.remote = remote;
  c->close_info.code = e->error_code;
  c->close_info.frame_type = e->frame_type;
  /* Kept on the heap, to size, only once a connection closes (an open
   * connection should not carry a reason buffer). Without memory the
   * reason is dropped; the code still tells what happened. */
  qpeer__free(c->close_reason);
  c->close_reason = n ? qpeer__malloc(n) : NULL;
  if (!c->close_reason)
    n = 0;
  if (n)
    memcpy(c->close_reason, e->reason, n);
  c->close_info.reason = c->close_reason ? c->close_reason : "";
  c->close_info.reasonlen = n;
}

static void resend_close(qpeer__conn *c, const ngtcp2_path *path) {
  int blocked = 0;
  /* Answer at most every other packet in the closing period, so the peer
   * cannot make us amplify (RFC 9000 §10.2.1). */
  if (!c->close_pkt || (++c->stats.packets_received & 1))
    return;
  qpeer__ep_send_packets(c->ep, path, c->close_pkt, c->close_pktlen,
                         c->close_pktlen, &blocked);
}

/* Server side of quiet_path (handles.h): remembers the path that was
 * current before a packet moved the connection, and stops quieting a path
 * the peer sends on again. Returns nonzero when |before| was filled. */
static int note_path_before(qpeer__conn *c, const ngtcp2_path *path,
                            ngtcp2_path_storage *before) {
  const ngtcp2_path *cur = ngtcp2_conn_get_path(c->qc);
  if (c->has_quiet_path && ngtcp2_path_eq(path, &c->quiet_path.path))
    c->has_quiet_path = 0;
  if (ngtcp2_path_eq(path, cur))
    return 0;
  qpeer__path_store(before, cur);
  return 1;
}

static void note_path_after(qpeer__conn *c, const ngtcp2_path_storage *before) {
  const ngtcp2_path *cur;
  if (!c->qc)
    return;
  cur = ngtcp2_conn_get_path(c->qc);
  if (ngtcp2_path_eq(cur, &before->path))
    return;
  qpeer__path_store(&c->rx_prev_path, &before->path);
  c->has_rx_prev_path = 1;
  if (c->has_quiet_path && ngtcp2_path_eq(cur, &c->quiet_path.path))
    c->has_quiet_path = 0;
}

int qpeer__conn_read(qpeer__conn *c, const ngtcp2_path *path,
                     const uint8_t *pkt, size_t len) {
  ngtcp2_pkt_info pi;
  ngtcp2_connection_close_error ccerr;
  ngtcp2_path_storage before;
  uint64_t now;
  int r, status, moved;

  if (c->closed || !c->qc) {
    resend_close(c, path);
    return UV_ENOTCONN;
  }
  memset(&pi, 0, sizeof(pi));
  c->stats.packets_received++;
  c->stats.bytes_received += len;
  moved = c->server && note_path_before(c, path, &before);
  now = qpeer__rx_now();
  r = ngtcp2_conn_read_pkt(c->qc, path, &pi, pkt, len, now);
  if (moved)
    note_path_after(c, &before);
  if (r == 0) {
    c->rx_ok = 1;
    c->last_rx = now;
    return 0;
  }
  /* Any verdict but a discard means the packet decrypted: keys exist. */
  if (r != NGTCP2_ERR_DISCARD_PKT && r != NGTCP2_ERR_DROP_CONN)
    c->rx_ok = 1;
  switch (r) {
  case NGTCP2_ERR_DRAINING:
    c->draining = 1;
    ngtcp2_conn_get_connection_close_error(c->qc, &ccerr);
    record_close_info(c, &ccerr, 1);
    qpeer__conn_terminate(c, remote_close_status(c, &ccerr));
    return r;
  case NGTCP2_ERR_DROP_CONN:
    qpeer__conn_terminate(c, QPEER_EPROTO);
    return r;
  case NGTCP2_ERR_DISCARD_PKT:
    return c->rx_ok ? 0 : r;
  case NGTCP2_ERR_CRYPTO:
  case NGTCP2_ERR_CALLBACK_FAILURE:
    status = qpeer__tls_error_status(c, r);
    ngtcp2_connection_close_error_default(&ccerr);
    if (status == QPEER_EREFUSED && c->server)
      ngtcp2_connection_close_error_set_transport_error_tls_alert(
          &ccerr, ALERT_ACCESS_DENIED, NULL, 0);
    else if (status == QPEER_EPEERID || status == QPEER_ECERT)
      ngtcp2_connection_close_error_set_transport_error_tls_alert(
          &ccerr, ALERT_BAD_CERTIFICATE, NULL, 0);
    else
      ngtcp2_connection_close_error_set_transport_error_tls_alert(
          &ccerr, ngtcp2_conn_get_tls_alert(c->qc), NULL, 0);
    record_close_info(c, &ccerr, 0);
    c->close_info.kind = QPEER_CLOSE_TRANSPORT;
    qpeer__conn_send_close_ccerr(c, &ccerr);
    qpeer__conn_terminate(c, status);
    return r;
  default:
    ngtcp2_connection_close_error_default(&ccerr);
    ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, r, NULL,
                                                             0);
    record_close_info(c, &ccerr, 0);
    c->close_info.kind = QPEER_CLOSE_TRANSPORT;
    qpeer__conn_send_close_ccerr(c, &ccerr);
    qpeer__conn_terminate(c, qpeer__err_from_ngtcp2(r));
    return r;
  }
}
