/* SPDX-License-Identifier: MIT */
/*
 * ngtcp2 callback adapters. They only record state and queue user events;
 * user callbacks run after ngtcp2 returns (qpeer__conn_dispatch), except
 * stream data and datagrams, which are lent to the user's callback for the
 * duration of the ngtcp2 callback to avoid a copy.
 */
#include <string.h>

#include "peer/control.h"
#include "quic/handles.h"

static qpeer__conn *conn_of(void *user_data) { return user_data; }

static void cb_rand(uint8_t *dest, size_t destlen,
                    const ngtcp2_rand_ctx *rand_ctx) {
  (void)rand_ctx;
  qpeer__rand(dest, destlen);
}

static int cb_handshake_completed(ngtcp2_conn *qc, void *user_data) {
  qpeer__conn *c = conn_of(user_data);
  (void)qc;
  c->handshake_done = 1;
  qpeer__tls_on_handshake(c);
  if (c->server && c->verify_err)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  /* A client learns that the server accepted its identity only when the
   * handshake is confirmed (HANDSHAKE_DONE), so it reports then. */
  if (c->server)
    c->events |= QPEER__EV_HANDSHAKE;
  return 0;
}

static int cb_handshake_confirmed(ngtcp2_conn *qc, void *user_data) {
  qpeer__conn *c = conn_of(user_data);
  (void)qc;
  c->handshake_confirmed = 1;
  if (!c->server)
    c->events |= QPEER__EV_HANDSHAKE;
  return 0;
}

static int cb_recv_stream_data(ngtcp2_conn *qc, uint32_t flags,
                               int64_t stream_id, uint64_t offset,
                               const uint8_t *data, size_t datalen,
                               void *user_data, void *stream_user_data) {
  qpeer__stream *st = stream_user_data;
  (void)qc;
  (void)offset;
  (void)user_data;
  (void)stream_id;
  if (!st)
    return 0;
  return qpeer__stream_on_data(st, flags, data, datalen);
}

static int cb_acked_stream_data_offset(ngtcp2_conn *qc, int64_t stream_id,
                                       uint64_t offset, uint64_t datalen,
                                       void *user_data,
                                       void *stream_user_data) {
  (void)qc;
  (void)stream_id;
  (void)user_data;
  if (stream_user_data)
    qpeer__stream_on_acked(stream_user_data, offset, datalen);
  return 0;
}

static int cb_stream_open(ngtcp2_conn *qc, int64_t stream_id,
                          void *user_data) {
  qpeer__conn *c = conn_of(user_data);
  qpeer__stream *st = qpeer__stream_new(c, stream_id, 0);
  if (!st)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  ngtcp2_conn_set_stream_user_data(qc, stream_id, st);
  if ((stream_id & 2) && qpeer__ctrl_is_peer_stream(c, stream_id)) {
    /* The peer's control stream: the library's, never the application's. */
    if (qpeer__ctrl_adopt_peer_stream(c, st) != 0)
      return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
  }
  qpeer__list_insert_tail(&c->stream_accept_q, &st->accept_link);
  c->stats.streams_opened++;
  c->events |= QPEER__EV_STREAMS;
  return 0;
}

static int cb_stream_close(ngtcp2_conn *qc, uint32_t flags, int64_t stream_id,
                           uint64_t app_error_code, void *user_data,
                           void *stream_user_data) {
  (void)qc;
  (void)stream_id;
  (void)user_data;
  if (stream_user_data)
    qpeer__stream_on_closed(
        stream_user_data, app_error_code,
        (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) != 0);
  return 0;
}

static int cb_stream_reset(ngtcp2_conn *qc, int64_t stream_id,
                           uint64_t final_size, uint64_t app_error_code,
                           void *user_data, void *stream_user_data) {
  (void)qc;
  (void)stream_id;
  (void)final_size;
  (void)user_data;
  if (stream_user_data)
    qpeer__stream_on_reset(stream_user_data, app_error_code);
  return 0;
}

static int cb_extend_max_stream_data(ngtcp2_conn *qc, int64_t stream_id,
                                     uint64_t max_data, void *user_data,
                                     void *stream_user_data) {
  qpeer__conn *c = conn_of(user_data);
  qpeer__stream *st = stream_user_data;
  (void)qc;
  (void)stream_id;
  (void)max_data;
  if (st && qpeer__stream_has_pending(st) &&
      !qpeer__list_linked(&st->send_link))
    qpeer__list_insert_tail(&c->sendable, &st->send_link);
  return 0;
}

static int cb_recv_stateless_reset(ngtcp2_conn *qc,
                                   const ngtcp2_pkt_stateless_reset *sr,
                                   void *user_data) {
  qpeer__conn *c = conn_of(user_data);
  (void)qc;
  (void)sr;
  c->close_info.kind = QPEER_CLOSE_STATELESS_RESET;
  return 0;
}

static int cb_get_new_connection_id(ngtcp2_conn *qc, ngtcp2_cid *cid,
                                    uint8_t *token, size_t cidlen,
                                    void *user_data) {
  qpeer__conn *c = conn_of(user_data);
  qpeer__ep *ep = c->ep;
  int tries;
  (void)qc;
  for (tries = 0; tries < 8; tries++) {
    cid->datalen = cidlen;
    if (qpeer__rand(cid->data, cidlen) != 0)
      return NGTCP2_ERR_CALLBACK_FAILURE;
    if (qpeer__cidmap_insert(&ep->cids, cid->data, cidlen, c) == 0)
      break;
  }
  if (tries == 8)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (ngtcp2_crypto_generate_stateless_reset_token(
          token, ep->static_secret, sizeof(ep->static_secret), cid) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int cb_remove_connection_id(ngtcp2_conn *qc, const ngtcp2_cid *cid,
                                   void *user_data) {
  qpeer__conn *c = conn_of(user_data);
  (void)qc;
  qpeer__cidmap_remove(&c->ep->cids, cid->data, cid->datalen);
  return 0;
}

static int cb_path_validation(ngtcp2_conn *qc, uint32_t flags,
                              const ngtcp2_path *path,
                              ngtcp2_path_validation_result res,
                              void *user_data) {
  qpeer__conn *c = conn_of(user_data);
  (void)flags;
  /* The peer's move validated: ngtcp2 now probes the previous path; keep
   * those probes off a relay tunnel (quiet_path in handles.h). */
  if (c->server && res == NGTCP2_PATH_VALIDATION_RESULT_SUCCESS &&
      c->has_rx_prev_path &&
      ngtcp2_path_eq(path, ngtcp2_conn_get_path(qc)) &&
      !ngtcp2_path_eq(path, &c->rx_prev_path.path) &&
      qpeer__ep_is_tunnel(c->ep,
                          (const struct sockaddr *)c->rx_prev_path.path.local.addr)) {
    qpeer__path_store(&c->quiet_path, &c->rx_prev_path.path);
    c->has_quiet_path = 1;
  }
  if (!c->server && c->migrate_req && !c->migrate_done &&
      path->remote.addrlen <= sizeof(struct sockaddr_storage) &&
      !memcmp(path->remote.addr, &c->migrate_req->path.remote,
              path->remote.addrlen) &&
      !memcmp(path->local.addr, &c->migrate_req->path.local,
              path->local.addrlen)) {
    c->migrate_done = 1;
    c->migrate_status =
        res == NGTCP2_PATH_VALIDATION_RESULT_SUCCESS ? 0 : QPEER_ENOPATH;
  }
  c->events |= QPEER__EV_PATH;
  return 0;
}

static int cb_recv_datagram(ngtcp2_conn *qc, uint32_t flags,
                            const uint8_t *data, size_t datalen,
                            void *user_data) {
  qpeer__conn *c = conn_of(user_data);
  (void)qc;
  (void)flags;
  c->stats.datagrams_received++;
  if (c->handle && !c->handle_closing && c->cbs.on_datagram &&
      c->rxq_len == 0) {
    c->cbs.on_datagram(c->handle, data, datalen);
  } else if (c->rxq_len < QPEER__MAX_RX_DGRAM_HELD && !c->handle_closing) {
    size_t i = (c->rxq_head + c->rxq_len) % QPEER__MAX_RX_DGRAM_HELD;
    c->rxq[i].data = qpeer__malloc(datalen);
    if (!c->rxq[i].data) {
      c->stats.datagrams_dropped++;
      return 0;
    }
    memcpy(c->rxq[i].data, data, datalen);
    c->rxq[i].len = datalen;
    c->rxq_len++;
    if (c->handle && c->cbs.on_datagram)
      c->events |= QPEER__EV_DGRAMS;
  } else {
    c->stats.datagrams_dropped++;
  }
  return 0;
}

static int cb_lost_datagram(ngtcp2_conn *qc, uint64_t dgram_id,
                            void *user_data) {
  qpeer__conn *c = conn_of(user_data);
  (void)qc;
  (void)dgram_id;
  c->stats.datagrams_dropped++;
  return 0;
}

void qpeer__conn_callbacks(ngtcp2_callbacks *cb, int server) {
  memset(cb, 0, sizeof(*cb));
  if (server) {
    cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  } else {
    cb->client_initial = ngtcp2_crypto_client_initial_cb;
    cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
  }
  cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb->encrypt = ngtcp2_crypto_encrypt_cb;
  cb->decrypt = ngtcp2_crypto_decrypt_cb;
  cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb->update_key = ngtcp2_crypto_update_key_cb;
  cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb->handshake_completed = cb_handshake_completed;
  cb->handshake_confirmed = cb_handshake_confirmed;
  cb->recv_stream_data = cb_recv_stream_data;
  cb->acked_stream_data_offset = cb_acked_stream_data_offset;
  cb->stream_open = cb_stream_open;
  cb->stream_close = cb_stream_close;
  cb->stream_reset = cb_stream_reset;
  cb->extend_max_stream_data = cb_extend_max_stream_data;
  cb->recv_stateless_reset = cb_recv_stateless_reset;
  cb->rand = cb_rand;
  cb->get_new_connection_id = cb_get_new_connection_id;
  cb->remove_connection_id = cb_remove_connection_id;
  cb->path_validation = cb_path_validation;
  cb->recv_datagram = cb_recv_datagram;
  cb->lost_datagram = cb_lost_datagram;
}
