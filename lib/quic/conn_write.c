/* SPDX-License-Identifier: MIT */
/*
 * The write pass: asks ngtcp2 for packets (stream data round-robin,
 * datagrams, control frames), packs same-sized packets on one path into a
 * GSO train in the endpoint's send buffer, and honours pacing by stopping
 * when ngtcp2 has nothing more to send now. Also CONNECTION_CLOSE.
 */
#include <string.h>

#include "quic/handles.h"

#define MAX_VECS 16

static size_t vecs_len(const ngtcp2_vec *v, size_t n) {
  size_t i, total = 0;
  for (i = 0; i < n; i++)
    total += v[i].len;
  return total;
}

/* Bytes a 1-RTT packet adds around one DATAGRAM frame's payload, at most:
 * header (1 + 20-byte CID + 4-byte packet number), 16-byte AEAD tag,
 * frame type and length varint. */
#define DGRAM_PKT_OVERHEAD 64

static int same_path(const ngtcp2_path *a, const ngtcp2_path *b) {
  return a->local.addrlen == b->local.addrlen &&
         a->remote.addrlen == b->remote.addrlen &&
         !memcmp(a->local.addr, b->local.addr, a->local.addrlen) &&
         !memcmp(a->remote.addr, b->remote.addr, a->remote.addrlen);
}

/* Apply stream operations requested through the API (they are never
 * called into ngtcp2 from inside the user's call). */
static void apply_stream_ops(qpeer__conn *c) {
  qpeer__list *e;
  for (e = c->streams.next; e != &c->streams; e = e->next) {
    qpeer__stream *st = QPEER__CONTAINER_OF(e, qpeer__stream, link);
    if (st->reset_pending) {
      st->reset_pending = 0;
      ngtcp2_conn_shutdown_stream_write(c->qc, st->id, st->reset_code);
    }
    if (st->stop_pending) {
      st->stop_pending = 0;
      ngtcp2_conn_shutdown_stream_read(c->qc, st->id, st->stop_code);
    }
    if (st->unconsumed && st->read_cb) {
      ngtcp2_conn_extend_max_stream_offset(c->qc, st->id, st->unconsumed);
      ngtcp2_conn_extend_max_offset(c->qc, st->unconsumed);
      st->unconsumed = 0;
    }
  }
}

typedef struct {
  qpeer__conn *c;      /* connection */
  uint8_t *buf;        /* batch start (endpoint send buffer) */
  size_t off;          /* bytes in the batch */
  size_t gso;          /* segment size of the batch */
  size_t npkts;        /* packets in the batch */
  ngtcp2_path_storage path; /* path of the batch */
  int blocked;         /* socket said EAGAIN */
} batch_t;

static void batch_flush(batch_t *b) {
  if (b->off == 0)
    return;
  qpeer__ep_send_packets(b->c->ep, &b->path.path, b->buf, b->off, b->gso,
                         &b->blocked);
  b->off = 0;
  b->npkts = 0;
}

/* Adds the packet just written at b->buf + b->off. Returns nonzero when the
 * batch must be flushed before the next packet. */
static void batch_add(batch_t *b, const ngtcp2_path *path, size_t n) {
  qpeer__conn *c = b->c;
  c->stats.packets_sent++;
  c->stats.bytes_sent += n;
  if (b->npkts > 0 && (!same_path(path, &b->path.path) || n > b->gso)) {
    /* Move the new packet out of the way, flush the old train, restart. */
    uint8_t tmp[QPEER__MAX_PKT];
    memcpy(tmp, b->buf + b->off, n);
    batch_flush(b);
    memcpy(b->buf, tmp, n);
  }
  if (b->npkts == 0) {
    ngtcp2_path_storage_init(&b->path, path->local.addr, path->local.addrlen,
                             path->remote.addr, path->remote.addrlen, NULL);
    b->gso = n;
  }
  b->off += n;
  b->npkts++;
  /* A GSO train is one UDP send: at most 64 segments and 65507 bytes. */
  if (n < b->gso || b->npkts >= QPEER__UDP_TX_BATCH ||
      b->off + b->gso > QPEER__UDP_GSO_MAX_BYTES)
    batch_flush(b);
}

static qpeer__stream *next_stream(qpeer__conn *c) {
  qpeer__list *e = qpeer__list_head(&c->sendable);
  return e ? QPEER__CONTAINER_OF(e, qpeer__stream, send_link) : NULL;
}

/* ---- DATAGRAM loss watchdog (handles.h) ---------------------------------- */

void qpeer__conn_set_keepalive(qpeer__conn *c, uint64_t ns) {
  c->keepalive_ns = ns;
  if (c->qc)
    ngtcp2_conn_set_keep_alive_timeout(c->qc, ns);
}

/* How long a flight may go unacknowledged before a PING: a PTO, doubled
 * per PING already sent, at most 16 PTOs. */
static uint64_t dg_wait(qpeer__conn *c) {
  return ngtcp2_conn_get_pto(c->qc) << QPEER__MIN(c->dg_pings, 4u);
}

uint64_t qpeer__conn_dg_expiry(qpeer__conn *c) {
  uint64_t t = UINT64_MAX;
  if (!c->qc)
    return t;
  if (c->dg_watch)
    t = c->dg_progress_ts + dg_wait(c);
  if (c->dgq.buf && c->dgq.n == 0) /* the idle ring's release */
    t = QPEER__MIN(t, c->dgq_last_push + QPEER__DGQ_KEEP_NS);
  return t;
}

/* The stall ngtcp2 0.12 cannot leave: bytes in flight and no loss
 * detection timer (only DATAGRAM-only packets outstanding). Progress is
 * the flight shrinking between checks. Returns nonzero when a PING is
 * due. */
static int dg_check(qpeer__conn *c, ngtcp2_tstamp now) {
  ngtcp2_conn_stat cs;
  if (!c->dg_sent)
    return 0;
  ngtcp2_conn_get_conn_stat(c->qc, &cs);
  if (!cs.bytes_in_flight || cs.loss_detection_timer != UINT64_MAX) {
    c->dg_watch = 0;
    c->dg_pings = 0;
    c->dg_inflight = cs.bytes_in_flight;
    return 0;
  }
  if (!c->dg_watch || cs.bytes_in_flight < c->dg_inflight) {
    c->dg_watch = 1;
    c->dg_progress_ts = now;
    c->dg_pings = 0;
  }
  c->dg_inflight = cs.bytes_in_flight;
  return now >= c->dg_progress_ts + dg_wait(c);
}

/* Records the flight after a write, so the next check sees only what
 * acknowledgements removed. */
static void dg_note_flight(qpeer__conn *c) {
  ngtcp2_conn_stat cs;
  if (!c->dg_sent)
    return;
  ngtcp2_conn_get_conn_stat(c->qc, &cs);
  c->dg_inflight = cs.bytes_in_flight;
}

/* Writes one packet with a PING: ngtcp2 0.12 has no call for it, but it
 * adds one when the keep-alive has expired, so the keep-alive is made
 * expire for this one write. */
static ngtcp2_ssize dg_ping(qpeer__conn *c, ngtcp2_path *path,
                            ngtcp2_pkt_info *pi, uint8_t *dest, size_t len,
                            ngtcp2_tstamp now) {
  ngtcp2_ssize n;
  ngtcp2_conn_set_keep_alive_timeout(c->qc, 1);
  n = ngtcp2_conn_writev_stream(c->qc, path, pi, dest, len, NULL,
                                NGTCP2_WRITE_STREAM_FLAG_NONE, -1, NULL, 0,
                                now);
  ngtcp2_conn_set_keep_alive_timeout(c->qc, c->keepalive_ns);
  c->dg_pings++;
  c->dg_progress_ts = now;
  return n;
}

int qpeer__conn_write(qpeer__conn *c) {
  batch_t b;
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  ngtcp2_vec vecs[MAX_VECS];
  ngtcp2_tstamp now;
  size_t maxpkt, maxpkts, quantum, rounds = 0, dgmax;
  int r = 0;

  if (c->freeing || !c->qc || c->closed)
    return 0;
  if (c->shutdown_requested && !c->close_sent) {
    qpeer__conn_send_close(c);
    c->close_info.kind = QPEER_CLOSE_LOCAL;
    qpeer__conn_terminate(c, 0);
    return 0;
  }
  apply_stream_ops(c);
  now = qpeer__now();
  memset(&b, 0, sizeof(b));
  b.c = c;
  b.buf = c->ep->txbuf;
  /* The buffer may hold a PMTUD probe (ngtcp2 skips probes larger than
   * the buffer); ordinary packets stay within the path's size. */
  maxpkt = ngtcp2_conn_get_max_tx_udp_payload_size(c->qc);
  quantum = ngtcp2_conn_get_send_quantum(c->qc);
  maxpkts = QPEER__MAX(
      1, QPEER__MIN(QPEER__UDP_TX_BATCH,
                    quantum /
                        ngtcp2_conn_get_path_max_tx_udp_payload_size(c->qc)));
  /* The path does not change within a write pass. */
  dgmax = c->dgq.n ? qpeer__conn_max_datagram(c) : 0;
  ngtcp2_path_storage_zero(&ps);
  memset(&pi, 0, sizeof(pi));

  if (dg_check(c, now)) {
    ngtcp2_ssize n = dg_ping(c, &ps.path, &pi, b.buf, maxpkt, now);
    if (n > 0)
      batch_add(&b, &ps.path, (size_t)n);
  }

  /* Bounded by the send quantum; stream/datagram bookkeeping iterations
   * that write no packet are bounded by the extra counter. */
  while (b.npkts < maxpkts && rounds++ < 4 * QPEER__UDP_TX_BATCH + 256 &&
         !b.blocked) {
    ngtcp2_ssize n, ndatalen = -1;
    uint8_t *dest = b.buf + b.off;
    qpeer__stream *st = NULL;
    int accepted = 0;
    const uint8_t *dgd;
    size_t dgl;

    /* A datagram is written only if the window still has room after it
     * (ngtcp2 writes while any is left), so a PING can always follow
     * (handles.h). Even the minimum window (two packets) passes one. */
    if (qpeer__dgring_front(&c->dgq, &dgd, &dgl) && dgl > dgmax) {
      /* Queued for a larger path than the current one (a migration, or
       * a smaller PMTU): it can never go out and would hold up the
       * queue. */
      c->stats.datagrams_dropped++;
      qpeer__dgring_pop(&c->dgq);
      continue;
    }
    if (qpeer__dgring_front(&c->dgq, &dgd, &dgl) &&
        ngtcp2_conn_get_cwnd_left(c->qc) > dgl + DGRAM_PKT_OVERHEAD) {
      ngtcp2_vec dv;
      dv.base = (uint8_t *)(uintptr_t)dgd;
      dv.len = dgl;
      n = ngtcp2_conn_writev_datagram(c->qc, &ps.path, &pi, dest, maxpkt,
                                      &accepted,
                                      NGTCP2_WRITE_DATAGRAM_FLAG_MORE, 0, &dv,
                                      1, now);
      if (accepted || n == NGTCP2_ERR_INVALID_ARGUMENT) {
        if (accepted) {
          c->stats.datagrams_sent++;
          c->dg_sent = 1;
        }
        else
          c->stats.datagrams_dropped++;
        qpeer__dgring_pop(&c->dgq);
        if (n == NGTCP2_ERR_INVALID_ARGUMENT)
          continue;
      }
      if (n == NGTCP2_ERR_WRITE_MORE)
        continue;
    } else {
      int64_t sid = -1;
      size_t nv = 0;
      uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
      st = next_stream(c);
      if (st) {
        sid = st->id;
        nv = qpeer__stream_fill_vecs(st, vecs, MAX_VECS);
        if (st->fin_queued && !st->fin_sent &&
            st->sent_off + vecs_len(vecs, nv) == st->queued_off)
          flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
      }
      n = ngtcp2_conn_writev_stream(c->qc, &ps.path, &pi, dest, maxpkt,
                                    &ndatalen, flags, sid, vecs, nv, now);
      if (st && ndatalen >= 0) {
        qpeer__stream_advance(st, (size_t)ndatalen);
        if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) &&
            st->sent_off == st->queued_off) {
          st->fin_sent = 1;
          st->fin_with_data = ndatalen > 0;
        }
      }
      if (st && n == NGTCP2_ERR_STREAM_SHUT_WR)
        qpeer__stream_on_peer_stopped(st, 0);
      if (st && (n == NGTCP2_ERR_STREAM_DATA_BLOCKED ||
                 n == NGTCP2_ERR_STREAM_SHUT_WR ||
                 n == NGTCP2_ERR_STREAM_NOT_FOUND)) {
        /* Blocked by flow control (re-added by extend_max_stream_data) or
         * gone: take it off the list. */
        qpeer__list_remove(&st->send_link);
        continue;
      }
      if (st && !qpeer__stream_has_pending(st))
        qpeer__list_remove(&st->send_link);
      else if (st && ndatalen > 0) {
        /* Round-robin: the next packet serves the next stream. */
        qpeer__list_remove(&st->send_link);
        qpeer__list_insert_tail(&c->sendable, &st->send_link);
      }
      if (n == NGTCP2_ERR_WRITE_MORE)
        continue;
    }
    if (n < 0) {
      ngtcp2_connection_close_error ccerr;
      ngtcp2_connection_close_error_default(&ccerr);
      ngtcp2_connection_close_error_set_transport_error_liberr(
          &ccerr, (int)n, NULL, 0);
      batch_flush(&b);
      qpeer__conn_send_close_ccerr(c, &ccerr);
      qpeer__conn_terminate(c, qpeer__err_from_ngtcp2((int)n));
      return (int)n;
    }
    if (n == 0) {
      /* Nothing more now (congestion, pacing or idle). A stream that could
       * not be written keeps its place. */
      break;
    }
    if (c->has_quiet_path && ngtcp2_path_eq(&ps.path, &c->quiet_path.path) &&
        !ngtcp2_path_eq(&ps.path, ngtcp2_conn_get_path(c->qc))) {
      /* A probe of the old relay path nobody answers (handles.h). */
      c->quiet_dropped++;
      continue;
    }
    batch_add(&b, &ps.path, (size_t)n);
  }
  batch_flush(&b);
  /* The datagram ring's storage goes once nothing was queued for
   * QPEER__DGQ_KEEP_NS (a flowing queue keeps it; an idle connection
   * holds none; the connection's timer covers that moment). */
  if (c->dgq.n == 0 && c->dgq.buf &&
      now - c->dgq_last_push >= QPEER__DGQ_KEEP_NS)
    qpeer__dgring_release(&c->dgq);
  ngtcp2_conn_update_pkt_tx_time(c->qc, now);
  dg_note_flight(c);
  qpeer__conn_update_timer(c);
  return r;
}

void qpeer__conn_send_close_ccerr(qpeer__conn *c,
                                  const ngtcp2_connection_close_error *e) {
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  uint8_t buf[QPEER__MAX_PKT];
  ngtcp2_ssize n;
  int blocked = 0;
  /* A server connection that never read a packet has no keys to close
   * with; it just goes away. */
  if (c->close_sent || !c->qc || c->draining || (c->server && !c->rx_ok) ||
      ngtcp2_conn_is_in_closing_period(c->qc) ||
      ngtcp2_conn_is_in_draining_period(c->qc))
    return;
  c->close_sent = 1;
  ngtcp2_path_storage_zero(&ps);
  memset(&pi, 0, sizeof(pi));
  n = ngtcp2_conn_write_connection_close(c->qc, &ps.path, &pi, buf,
                                         sizeof(buf), e, qpeer__now());
  if (n <= 0)
    return;
  c->close_pkt = qpeer__malloc((size_t)n);
  if (c->close_pkt) {
    memcpy(c->close_pkt, buf, (size_t)n);
    c->close_pktlen = (size_t)n;
  }
  c->stats.packets_sent++;
  c->stats.bytes_sent += (uint64_t)n;
  qpeer__ep_send_packets(c->ep, &ps.path, buf, (size_t)n, (size_t)n,
                         &blocked);
}

void qpeer__conn_send_close(qpeer__conn *c) {
  ngtcp2_connection_close_error ccerr;
  const char *reason = c->shutdown_reason;
  ngtcp2_connection_close_error_default(&ccerr);
  ngtcp2_connection_close_error_set_application_error(
      &ccerr, c->shutdown_requested ? c->shutdown_code : 0,
      (const uint8_t *)reason, reason ? strlen(reason) : 0);
  qpeer__conn_send_close_ccerr(c, &ccerr);
}
