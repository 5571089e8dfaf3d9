/* SPDX-License-Identifier: MIT */
/*
 * The qpeer control stream (see control.h and doc/protocol.md). Divisions:
 * the TLS extension that negotiates it, opening and adopting the two
 * library-owned streams, sending (owned copies, bounded queue), receiving
 * and dispatching messages, and address discovery (OBSERVED_ADDRESS).
 */
#include <string.h>

#include "core/addr.h"
#include "peer/control.h"
#include "peer/traversal.h"
#include "quic/handles.h"

typedef struct qpeer__ctrl {
  qpeer__conn *c;                 /* the connection */
  qpeer_stream_t tx;              /* our control stream (library-owned) */
  int tx_open;                    /* tx is bound to a stream */
  qpeer_stream_t rx;              /* the peer's control stream */
  int rx_open;                    /* rx is bound */
  qpeer__trav_parser parser;      /* incremental message parser */
  qpeer__trav_hello ours;         /* the HELLO we sent */
  qpeer__trav_hello theirs;       /* the peer's HELLO */
  int peer_hello;                 /* theirs is valid */
  uint64_t obs_seq;               /* next OBSERVED_ADDRESS sequence */
  struct sockaddr_storage obs_sent; /* last address we reported */
  int obs_sent_valid;             /* obs_sent is set */
  uint64_t obs_rx_seq;            /* highest sequence received */
  int obs_rx_any;                 /* one was received */
  size_t nqueued;                 /* messages queued, not yet acked */
} qpeer__ctrl;

typedef struct ctrl_msg {
  qpeer_write_t req;                   /* the stream write */
  qpeer__ctrl *ctrl;                   /* owner */
  uint8_t data[QPEER__TRAV_ENC_MAX];   /* the encoded message */
} ctrl_msg;

/* ---- the TLS extension ---------------------------------------------------- */

static qpeer__conn *conn_of_session(gnutls_session_t s) {
  ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(s);
  return QPEER__CONTAINER_OF(ref, qpeer__conn, conn_ref);
}

static int ext_recv(gnutls_session_t s, const unsigned char *data,
                    size_t len) {
  qpeer__conn *c = conn_of_session(s);
  /* A version we do not know means "no control stream", not an error. */
  if (len >= 1 && data[0] == QPEER__CTRL_VERSION)
    c->ctrl_peer = 1;
  return 0;
}

/* Nonzero when the ALPN the server selected is HTTP/3: a MASQUE relay's
 * connection, which its HTTP/3 session owns. Nothing consumes the control
 * stream's features there (no NAT traversal; the session hides the
 * connection, so no observed address reaches anyone), and each idle
 * relay client would pay for two streams and their state. */
static int selected_h3(gnutls_session_t s) {
  static const char h3[] = QPEER_MASQUE_ALPN;
  gnutls_datum_t d;
  return gnutls_alpn_get_selected_protocol(s, &d) == 0 &&
         d.size == sizeof(h3) - 1 && memcmp(d.data, h3, d.size) == 0;
}

static int ext_send(gnutls_session_t s, gnutls_buffer_t buf) {
  qpeer__conn *c = conn_of_session(s);
  uint8_t v = QPEER__CTRL_VERSION;
  /* The server answers only a client that offered it, and not on HTTP/3
   * connections. */
  if (c->server && (!c->ctrl_peer || selected_h3(s)))
    return 0;
  if (gnutls_buffer_append_data(buf, &v, 1) < 0)
    return GNUTLS_E_MEMORY_ERROR;
  c->ctrl_offered = 1;
  return 1;
}

int qpeer__ctrl_tls_register(qpeer__conn *c, gnutls_session_t s) {
  int r;
  if (c->ep->opts.disable_control_stream)
    return 0;
  r = gnutls_session_ext_register(
      s, "qpeer_ctrl", QPEER__CTRL_TLS_EXT, GNUTLS_EXT_TLS, ext_recv, ext_send,
      NULL, NULL, NULL, GNUTLS_EXT_FLAG_CLIENT_HELLO | GNUTLS_EXT_FLAG_EE);
  return r < 0 ? qpeer__err_from_gnutls(r) : 0;
}

/* ---- sending ---------------------------------------------------------------- */

static void on_msg_written(qpeer_write_t *req, int status) {
  ctrl_msg *m = QPEER__CONTAINER_OF(req, ctrl_msg, req);
  (void)status;
  m->ctrl->nqueued--;
  qpeer__free(m);
}

int qpeer__ctrl_send(qpeer__conn *c, const qpeer__trav_msg *msg) {
  qpeer__ctrl *ctrl = c->ctrl;
  ctrl_msg *m;
  uv_buf_t b;
  int n, r;
  if (!ctrl || !ctrl->tx_open || c->closed)
    return UV_ENOTCONN;
  if (ctrl->nqueued >= QPEER__CTRL_MAX_QUEUED)
    return UV_ENOBUFS;
  m = qpeer__malloc(sizeof(*m));
  if (!m)
    return UV_ENOMEM;
  n = qpeer__trav_msg_encode(msg, m->data, sizeof(m->data));
  if (n < 0) {
    qpeer__free(m);
    return n;
  }
  m->ctrl = ctrl;
  m->req.data = NULL;
  b = uv_buf_init((char *)m->data, (unsigned)n);
  r = qpeer_stream_write(&m->req, &ctrl->tx, &b, 1, on_msg_written);
  if (r != 0) {
    qpeer__free(m);
    return r;
  }
  ctrl->nqueued++;
  return 0;
}

/* ---- address discovery ------------------------------------------------------- */

static void report_observed(qpeer__ctrl *ctrl) {
  qpeer__conn *c = ctrl->c;
  const ngtcp2_path *p;
  qpeer__trav_msg m;
  struct sockaddr_storage remote;
  if (!ctrl->peer_hello || !c->qc || c->closed ||
      !qpeer__trav_observed_allowed(&ctrl->ours, &ctrl->theirs))
    return;
  p = ngtcp2_conn_get_path(c->qc);
  qpeer__addr_normalize(&remote, (const struct sockaddr *)p->remote.addr);
  if (ctrl->obs_sent_valid &&
      qpeer__addr_equal((struct sockaddr *)&remote,
                        (struct sockaddr *)&ctrl->obs_sent))
    return;
  memset(&m, 0, sizeof(m));
  m.kind = QPEER__TRAV_OBSERVED_ADDRESS;
  m.seq = ctrl->obs_seq;
  memcpy(&m.addr, &remote, sizeof(remote));
  if (qpeer__ctrl_send(c, &m) != 0)
    return;
  ctrl->obs_seq++;
  ctrl->obs_sent = remote;
  ctrl->obs_sent_valid = 1;
  qpeer__conn_schedule_flush(c);
}

void qpeer__ctrl_on_path(qpeer__conn *c) {
  if (c->ctrl)
    report_observed(c->ctrl);
}

/* ---- receiving ------------------------------------------------------------------ */

static void ctrl_violation(qpeer__conn *c, int err) {
  ngtcp2_connection_close_error ccerr;
  qpeer__log(QPEER_LOG_WARN, "control stream: %s", qpeer_err_name(err));
  ngtcp2_connection_close_error_default(&ccerr);
  ngtcp2_connection_close_error_set_transport_error(
      &ccerr, NGTCP2_PROTOCOL_VIOLATION, (const uint8_t *)"qpeer control", 13);
  c->close_info.kind = QPEER_CLOSE_TRANSPORT;
  qpeer__conn_send_close_ccerr(c, &ccerr);
  qpeer__conn_terminate(c, QPEER_EPROTO);
  qpeer__conn_schedule_flush(c);
}

static int on_message(qpeer__ctrl *ctrl, const qpeer__trav_msg *m) {
  qpeer__conn *c = ctrl->c;
  int r = qpeer__trav_msg_direction_ok(m->kind, c->server);
  if (r != 0)
    return r;
  switch (m->kind) {
  case QPEER__TRAV_HELLO:
    if ((r = qpeer__trav_hello_check(&m->hello, !c->server)) != 0)
      return r;
    ctrl->theirs = m->hello;
    ctrl->peer_hello = 1;
    report_observed(ctrl);
    return 0;
  case QPEER__TRAV_OBSERVED_ADDRESS:
    if (!qpeer__trav_observed_allowed(&ctrl->theirs, &ctrl->ours))
      return QPEER_EPROTO; /* We did not ask for it. */
    if (ctrl->obs_rx_any && m->seq <= ctrl->obs_rx_seq)
      return 0; /* Stale or reordered: ignore. */
    ctrl->obs_rx_any = 1;
    ctrl->obs_rx_seq = m->seq;
    qpeer__addr_normalize(&c->observed, (const struct sockaddr *)&m->addr);
    c->have_observed = 1;
    c->events |= QPEER__EV_OBSERVED;
    qpeer__conn_schedule_flush(c);
    return 0;
  default:
    /* ADD_ADDRESS, ADDRESS_INFO, REMOVE_ADDRESS, PUNCH_ME_NOW. */
    return qpeer__trav_on_message(c, m);
  }
}

static void on_ctrl_read(qpeer_stream_t *s, ssize_t n, const uint8_t *data) {
  qpeer__ctrl *ctrl = s->data;
  size_t off = 0, used;
  qpeer__trav_msg m;
  int r, rounds = 0;
  if (n < 0) {
    /* The peer must keep its control stream open for the connection's
     * life; a FIN or reset before the connection ends is a violation. */
    if (!ctrl->c->closed && n != UV_ECANCELED)
      ctrl_violation(ctrl->c, QPEER_EPROTO);
    return;
  }
  while (off < (size_t)n && rounds++ < 4096) {
    r = qpeer__trav_parser_feed(&ctrl->parser, data + off, (size_t)n - off,
                                &used, &m);
    off += used;
    if (r < 0) {
      ctrl_violation(ctrl->c, r);
      return;
    }
    if (r == 1 && (r = on_message(ctrl, &m)) != 0) {
      ctrl_violation(ctrl->c, r);
      return;
    }
  }
}

/* ---- life cycle ------------------------------------------------------------------- */

static qpeer__ctrl *ctrl_ensure(qpeer__conn *c) {
  if (!c->ctrl) {
    c->ctrl = qpeer__calloc(1, sizeof(qpeer__ctrl));
    if (!c->ctrl)
      return NULL;
    c->ctrl->c = c;
    qpeer__trav_parser_init(&c->ctrl->parser);
  }
  return c->ctrl;
}

int qpeer__ctrl_is_peer_stream(qpeer__conn *c, int64_t id) {
  /* The peer opens its control stream first thing, so it is its first
   * unidirectional stream: 2 from a client, 3 from a server. */
  return c->ctrl_peer && c->ctrl_offered && id == (c->server ? 2 : 3);
}

int qpeer__ctrl_adopt_peer_stream(qpeer__conn *c, qpeer__stream *st) {
  qpeer__ctrl *ctrl = ctrl_ensure(c);
  if (!ctrl)
    return UV_ENOMEM;
  qpeer__stream_bind(st, &ctrl->rx);
  ctrl->rx.data = ctrl;
  ctrl->rx_open = 1;
  return qpeer_stream_read_start(&ctrl->rx, on_ctrl_read);
}

int qpeer__ctrl_start(qpeer__conn *c) {
  qpeer__ctrl *ctrl;
  qpeer__trav_msg m;
  int r;
  if (!c->ctrl_peer || !c->ctrl_offered)
    return 0;
  if (!(ctrl = ctrl_ensure(c)))
    return UV_ENOMEM;
  if (ctrl->tx_open)
    return 0;
  if ((r = qpeer__stream_open_internal(c, &ctrl->tx, 1)) != 0)
    return r;
  ctrl->tx_open = 1;
  memset(&ctrl->ours, 0, sizeof(ctrl->ours));
  ctrl->ours.version = QPEER__TRAV_VERSION;
  if (c->ep->opts.address_discovery != QPEER_ADDRDISC_OFF) {
    ctrl->ours.has_address_discovery = 1;
    ctrl->ours.address_discovery = (uint8_t)c->ep->opts.address_discovery;
  }
  ctrl->ours.has_nat_traversal = 1;
  ctrl->ours.nat_traversal = c->server ? 4 : 0;
  ctrl->ours.has_max_addresses = 1;
  ctrl->ours.max_addresses = 16;
  memset(&m, 0, sizeof(m));
  m.kind = QPEER__TRAV_HELLO;
  m.hello = ctrl->ours;
  if ((r = qpeer__ctrl_send(c, &m)) != 0)
    return r;
  report_observed(ctrl);
  qpeer__conn_schedule_flush(c);
  return 0;
}

void qpeer__ctrl_free(qpeer__conn *c) {
  qpeer__free(c->ctrl);
  c->ctrl = NULL;
}
