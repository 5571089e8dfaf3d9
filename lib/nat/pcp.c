/* SPDX-License-Identifier: MIT */
/*
 * PCP client glue: socket set-up, the transaction (send, retransmit with
 * jitter, deadline), receiving and matching responses, epoch tracking,
 * and closing. The wire format is lib/nat/pcp_msg.c.
 */
#include <string.h>

#include "core/addr.h"
#include "internal.h"
#include "nat/pcp.h"

/* jitter returns |ms| scaled by a random factor in [0.9, 1.1] (RFC 6887
 * §8.1.1's RAND). */
static uint64_t jitter(uint64_t ms) {
  uint16_t r = 0;
  if (qpeer__rand(&r, sizeof(r)) != 0)
    return ms;
  return ms * (900 + (uint64_t)(r % 201)) / 1000;
}

static void finish(qpeer__pcp *p, qpeer__pcp_result *r) {
  qpeer__pcp_cb cb = p->cb;
  p->busy = 0;
  p->cb = NULL;
  uv_timer_stop(&p->timer);
  if (cb)
    cb(p, r);
}

static void finish_status(qpeer__pcp *p, int status) {
  qpeer__pcp_result r;
  memset(&r, 0, sizeof(r));
  r.status = status;
  r.opcode = p->req.opcode;
  r.req_lifetime = p->req.lifetime;
  finish(p, &r);
}

/* transmit sends the request once. A send error is final only for
 * "connection refused" (ICMP from an earlier datagram). */
static int transmit(qpeer__pcp *p) {
  uv_buf_t b = uv_buf_init((char *)p->pkt, (unsigned int)p->pktlen);
  int rv = uv_udp_try_send(&p->udp, &b, 1, NULL);
  p->tx++;
  if (rv == UV_ECONNREFUSED)
    return rv;
  if (rv < 0)
    QPEER__LOG_DEBUG("pcp: send failed: %s", uv_strerror(rv));
  return 0;
}

static void on_timer(uv_timer_t *t);

static void arm_timer(qpeer__pcp *p) {
  uint64_t now = uv_now(p->loop);
  uint64_t at = QPEER__MIN(p->next_tx, p->deadline);
  uv_timer_start(&p->timer, on_timer, at > now ? at - now : 0, 0);
}

static void on_timer(uv_timer_t *t) {
  qpeer__pcp *p = QPEER__CONTAINER_OF(t, qpeer__pcp, timer);
  uint64_t now = uv_now(p->loop);
  int rv;
  if (!p->busy)
    return;
  if (p->err) {
    finish_status(p, p->err);
    return;
  }
  if (now >= p->deadline) {
    finish_status(p, UV_ETIMEDOUT);
    return;
  }
  if (now >= p->next_tx) {
    p->rt = jitter(QPEER__MIN(2 * p->rt, (uint64_t)QPEER__PCP_MRT_MS));
    p->next_tx = now + p->rt;
    if ((rv = transmit(p)) != 0) {
      finish_status(p, rv);
      return;
    }
  }
  arm_timer(p);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  qpeer__pcp *p = QPEER__CONTAINER_OF(h, qpeer__pcp, udp);
  (void)suggested;
  *buf = uv_buf_init((char *)p->rbuf, sizeof(p->rbuf));
}

/* matches says whether response |res| answers the request in progress. */
static int matches(const qpeer__pcp *p, const qpeer__pcp_response *res) {
  if (res->version != QPEER__PCP_VERSION)
    return 1; /* a version-0 reply answers whatever we sent */
  if (res->opcode != p->req.opcode)
    return 0;
  if (res->opcode != QPEER__PCP_OP_MAP || !res->has_map)
    return 1;
  return memcmp(res->nonce, p->req.nonce, QPEER__PCP_NONCE_LEN) == 0 &&
         res->protocol == p->req.protocol &&
         res->internal_port == p->req.internal_port;
}

static void on_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *from, unsigned flags) {
  qpeer__pcp *p = QPEER__CONTAINER_OF(u, qpeer__pcp, udp);
  qpeer__pcp_result r;
  int rv;
  (void)from;
  if (nread == 0 || p->closing)
    return;
  if (nread < 0) {
    /* On a connected UDP socket an ICMP error shows up here. */
    QPEER__LOG_DEBUG("pcp: receive error: %s", uv_strerror((int)nread));
    if (p->busy && nread == UV_ECONNREFUSED)
      finish_status(p, UV_ECONNREFUSED);
    return;
  }
  if (!p->busy || (flags & UV_UDP_PARTIAL))
    return;
  memset(&r, 0, sizeof(r));
  rv = qpeer__pcp_decode_response(&r.res, (const uint8_t *)buf->base,
                                  (size_t)nread);
  if (rv != 0) {
    QPEER__LOG_DEBUG("pcp: undecodable response (%s)", qpeer_err_name(rv));
    return;
  }
  if (!matches(p, &r.res)) {
    QPEER__LOG_DEBUG("pcp: response does not match the request; ignored");
    return;
  }
  r.have_res = 1;
  r.opcode = p->req.opcode;
  r.req_lifetime = p->req.lifetime;
  if (r.res.version != QPEER__PCP_VERSION) {
    r.status = QPEER_EUNSUPPORTED;
  } else {
    r.epoch_lost =
        qpeer__pcp_epoch_update(&p->epoch, r.res.epoch, uv_now(p->loop));
    if (r.res.result == QPEER__PCP_UNSUPP_VERSION)
      r.status = QPEER_EUNSUPPORTED;
    else if (r.res.result != QPEER__PCP_SUCCESS)
      r.status = QPEER_EMAPREFUSED;
  }
  finish(p, &r);
}

int qpeer__pcp_init(uv_loop_t *loop, qpeer__pcp *p,
                    const struct sockaddr *server,
                    const struct sockaddr *bind_ip, uint16_t internal_port) {
  struct sockaddr_storage local;
  int namelen = sizeof(local);
  int rv;
  memset(p, 0, sizeof(*p));
  p->loop = loop;
  p->internal_port = internal_port;
  if (server->sa_family != AF_INET && server->sa_family != AF_INET6)
    return UV_EINVAL;
  memcpy(&p->server, server, qpeer__addr_len(server));
  if ((rv = qpeer__rand(p->nonce, sizeof(p->nonce))) != 0)
    return rv;
  memset(&local, 0, sizeof(local));
  if (bind_ip && bind_ip->sa_family == server->sa_family) {
    memcpy(&local, bind_ip, qpeer__addr_len(bind_ip));
  } else {
    local.ss_family = server->sa_family;
  }
  qpeer__addr_set_port((struct sockaddr *)&local, 0);
  if ((rv = uv_udp_init_ex(loop, &p->udp, server->sa_family)) != 0)
    return rv;
  p->nopen = 1;
  if ((rv = uv_timer_init(loop, &p->timer)) != 0)
    goto fail;
  p->nopen = 2;
  if ((rv = uv_udp_bind(&p->udp, (const struct sockaddr *)&local, 0)) != 0 ||
      (rv = uv_udp_connect(&p->udp, server)) != 0 ||
      (rv = uv_udp_getsockname(&p->udp, (struct sockaddr *)&p->client,
                               &namelen)) != 0 ||
      (rv = uv_udp_recv_start(&p->udp, on_alloc, on_recv)) != 0)
    goto fail;
  return 0;
fail:
  /* The caller closes |p| (qpeer__pcp_close) whatever init returned. */
  return rv;
}

static int start(qpeer__pcp *p, uint64_t timeout_ms, qpeer__pcp_cb cb) {
  int n;
  uint64_t now = uv_now(p->loop);
  n = qpeer__pcp_encode_request(p->pkt, sizeof(p->pkt), &p->req);
  if (n < 0)
    return n;
  p->pktlen = (size_t)n;
  p->busy = 1;
  p->cb = cb;
  p->tx = 0;
  p->deadline = now + timeout_ms;
  p->rt = jitter(QPEER__PCP_IRT_MS);
  p->next_tx = now + p->rt;
  p->err = transmit(p);
  if (p->err != 0)
    p->next_tx = now; /* report it from the timer, not from this call */
  arm_timer(p);
  return 0;
}

static void fill_request(qpeer__pcp *p, uint8_t opcode, uint32_t lifetime) {
  memset(&p->req, 0, sizeof(p->req));
  p->req.opcode = opcode;
  p->req.lifetime = lifetime;
  memcpy(&p->req.client, &p->client, sizeof(p->client));
  qpeer__addr_set_port((struct sockaddr *)&p->req.client, 0);
  memcpy(p->req.nonce, p->nonce, QPEER__PCP_NONCE_LEN);
  p->req.protocol = 17; /* UDP */
  p->req.internal_port = p->internal_port;
}

int qpeer__pcp_map(qpeer__pcp *p, uint32_t lifetime, uint16_t ext_port,
                   const struct sockaddr *ext_ip, uint64_t timeout_ms,
                   qpeer__pcp_cb cb) {
  if (p->busy)
    return UV_EBUSY;
  if (p->closing)
    return UV_EINVAL;
  fill_request(p, QPEER__PCP_OP_MAP, lifetime);
  p->req.external_port = ext_port;
  if (ext_ip && ext_ip->sa_family == p->client.ss_family)
    memcpy(&p->req.external, ext_ip, qpeer__addr_len(ext_ip));
  return start(p, timeout_ms, cb);
}

int qpeer__pcp_announce(qpeer__pcp *p, uint64_t timeout_ms, qpeer__pcp_cb cb) {
  if (p->busy)
    return UV_EBUSY;
  if (p->closing)
    return UV_EINVAL;
  fill_request(p, QPEER__PCP_OP_ANNOUNCE, 0);
  return start(p, timeout_ms, cb);
}

void qpeer__pcp_cancel(qpeer__pcp *p) {
  p->busy = 0;
  p->cb = NULL;
  if (p->nopen == 2 && !p->closing)
    uv_timer_stop(&p->timer);
}

void qpeer__pcp_send_delete(qpeer__pcp *p) {
  uint8_t pkt[64];
  qpeer__pcp_request saved = p->req;
  uv_buf_t b;
  int n;
  if (p->closing || p->nopen < 2)
    return;
  fill_request(p, QPEER__PCP_OP_MAP, 0);
  n = qpeer__pcp_encode_request(pkt, sizeof(pkt), &p->req);
  p->req = saved;
  if (n < 0)
    return;
  b = uv_buf_init((char *)pkt, (unsigned int)n);
  (void)uv_udp_try_send(&p->udp, &b, 1, NULL);
}

static void on_closed(uv_handle_t *h) {
  qpeer__pcp *p = h->data;
  if (--p->nopen == 0 && p->close_cb)
    p->close_cb(p);
}

void qpeer__pcp_close(qpeer__pcp *p, qpeer__pcp_close_cb cb) {
  int n = p->nopen;
  qpeer__pcp_cancel(p);
  p->closing = 1;
  p->close_cb = cb;
  p->udp.data = p;
  p->timer.data = p;
  if (n == 0) {
    if (cb)
      cb(p);
    return;
  }
  uv_close((uv_handle_t *)&p->udp, on_closed);
  if (n >= 2)
    uv_close((uv_handle_t *)&p->timer, on_closed);
}
