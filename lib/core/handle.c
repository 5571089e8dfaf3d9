/* SPDX-License-Identifier: MIT */
/*
 * The handle base: initialisation, qpeer_close() dispatch to the concrete
 * handle types, and type names.
 */
#include <string.h>

#include "internal.h"
#include "h3/relay.h"
#include "h3/tunnel.h"
#include "nat/portmap.h"
#include "peer/listen.h"
#include "quic/handles.h"

void qpeer__handle_init(qpeer_handle_t *h, uv_loop_t *loop,
                        qpeer_handle_type type) {
  memset(h, 0, sizeof(*h));
  h->loop = loop;
  h->type = type;
  h->flags = QPEER__HANDLE_INIT;
}

int qpeer_close(qpeer_handle_t *h, qpeer_close_cb cb) {
  if (!h || !(h->flags & QPEER__HANDLE_INIT))
    return UV_EINVAL;
  if (h->flags & (QPEER__HANDLE_CLOSING | QPEER__HANDLE_CLOSED))
    return UV_EALREADY;
  h->flags |= QPEER__HANDLE_CLOSING;
  h->close_cb = cb;
  switch (h->type) {
  case QPEER_ENDPOINT:
    return qpeer__endpoint_close((qpeer_endpoint_t *)h);
  case QPEER_CONN:
    return qpeer__conn_close((qpeer_conn_t *)h);
  case QPEER_STREAM:
    return qpeer__stream_close((qpeer_stream_t *)h);
  case QPEER_PORTMAP:
    return qpeer__portmap_close((qpeer_portmap_t *)h);
  case QPEER_TUNNEL:
    return qpeer__tunnel_close((qpeer_tunnel_t *)h);
  case QPEER_BINDING:
    return qpeer__relay_bind_close((qpeer_relay_bind_t *)h);
  case QPEER_RELAY:
    return qpeer__relay_close((qpeer_relay_t *)h);
  case QPEER_PEER_LISTENER:
    return qpeer__peer_listener_close((qpeer_peer_listener_t *)h);
  default:
    h->flags &= ~(unsigned)QPEER__HANDLE_CLOSING;
    return UV_EINVAL;
  }
}

int qpeer_is_closing(const qpeer_handle_t *h) {
  return h && (h->flags & (QPEER__HANDLE_CLOSING | QPEER__HANDLE_CLOSED));
}

const char *qpeer_handle_type_name(qpeer_handle_type type) {
  switch (type) {
  case QPEER_ENDPOINT:
    return "endpoint";
  case QPEER_CONN:
    return "conn";
  case QPEER_STREAM:
    return "stream";
  case QPEER_PORTMAP:
    return "portmap";
  case QPEER_TUNNEL:
    return "tunnel";
  case QPEER_BINDING:
    return "relay_bind";
  case QPEER_RELAY:
    return "relay";
  case QPEER_PEER_LISTENER:
    return "peer_listener";
  default:
    return "unknown";
  }
}
