/* SPDX-License-Identifier: MIT */
/*
 * The MASQUE client (tunnel.h). Divisions: options and the request URI;
 * sessions (connect, HTTP/3, request, response); the bind draft's
 * contexts; the data path (virtual interface send, receive queue);
 * failure, backoff and re-binding; the public qpeer_tunnel_* and
 * qpeer_relay_bind_* functions; closing.
 */
#include <arpa/inet.h>
#include <string.h>

#include "core/addr.h"
#include "h3/capsule.h"
#include "h3/connect_udp.h"
#include "h3/datagram.h"
#include "h3/h3conn.h"
#include "h3/proxy_status.h"
#include "h3/tunnel.h"
#include "quic/handles.h"

enum { MC_TUNNEL = 1, MC_BIND = 2 };

/* Client states. */
enum {
  MC_IDLE = 0,   /* not started, or stopped */
  MC_CONNECTING, /* QUIC handshake with the proxy */
  MC_SETTINGS,   /* waiting for the proxy's SETTINGS */
  MC_REQUESTED,  /* request sent, waiting for the response */
  MC_ASSIGNING,  /* bind: uncompressed context sent, waiting for ACK */
  MC_UP,         /* tunnel or binding usable */
  MC_BACKOFF,    /* bind: waiting to try again */
  MC_DONE        /* tunnel ended / binding stopped for good */
};

/* A context the proxy assigned to one (address, port). */
typedef struct {
  uint64_t id;                  /* odd, proxy-allocated */
  struct sockaddr_storage addr; /* its tuple */
} pctx;

struct mclient;

/* One attempt: connection, HTTP/3 session, request. */
typedef struct msess {
  struct mclient *mc;   /* owner (valid until the session is freed) */
  qpeer_conn_t conn;    /* connection to the proxy */
  qpeer_connect_t creq; /* its connect request */
  qpeer__h3conn *h3;    /* HTTP/3 session, once connected */
  qpeer__h3req *rq;     /* the CONNECT request */
  int detached;         /* neither current nor draining: closing */
  int goaway;           /* the proxy sent GOAWAY on this connection */
  uint64_t uncomp_id;   /* bind: our uncompressed context (0: none) */
  pctx ctxs[QPEER__BIND_MAX_PROXY_CONTEXTS]; /* bind: proxy contexts */
  size_t nctx;                               /* number of them */
} msess;

/* A received packet waiting for the endpoint. */
typedef struct rxpkt {
  struct rxpkt *next;           /* next in queue */
  struct sockaddr_storage from; /* its source */
  size_t len;                   /* payload length */
  uint8_t data[];               /* payload */
} rxpkt;

typedef struct mclient {
  int kind;               /* MC_TUNNEL or MC_BIND */
  qpeer_handle_t *handle; /* the user's handle */
  qpeer_endpoint_t *eph;  /* endpoint handle */
  qpeer__ep *ep;          /* its state */
  /* copied options */
  struct sockaddr_storage proxy;            /* proxy address */
  qpeer_auth_mode auth;                     /* authentication of the proxy */
  qpeer_peer_id_t peer_id;                  /* pinned proxy peer ID */
  int have_peer_id;                         /* peer_id is set */
  char *server_name;                        /* SNI / host name, or NULL */
  char *ca_file;                            /* CA file, or NULL */
  char *bearer;                             /* "Bearer <token>", or NULL */
  char *scheme;                             /* :scheme */
  char *authority;                          /* :authority */
  char *path;                               /* :path */
  struct sockaddr_storage target_addr;      /* tunnel: stands for the target */
  struct sockaddr_storage vif_req;          /* requested vif address */
  int have_vif_req;                         /* vif_req is set */
  uint64_t idle_ms, ka_ms, hs_ms;           /* QUIC settings */
  uint64_t req_ms;                          /* request timeout */
  uint64_t retry_min, retry_max, retry_cur; /* backoff */
  /* state */
  int state;                  /* MC_* */
  msess *sess;                /* current session, or NULL */
  msess *drain;               /* bind: the previous binding, still carrying
                                 traffic after the relay's GOAWAY until the
                                 re-bind answers, or NULL */
  size_t nsess;               /* sessions not yet freed */
  qpeer__vif vif;             /* the virtual interface */
  int vif_added;              /* vif is registered */
  uv_timer_t timer;           /* request timeout and backoff */
  int timer_closed;           /* timer close callback ran */
  qpeer_tunnel_cb tcb;        /* tunnel event callback */
  qpeer_tunnel_recv_cb rcb;   /* tunnel raw receive callback */
  qpeer_relay_bind_cb bcb;    /* binding event callback */
  qpeer_masque_stats_t stats; /* counters */
  qpeer__h3_dgram_stats acc;  /* datagram counters of past sessions */
  struct sockaddr_storage addrs[QPEER_MASQUE_MAX_ADDRS]; /* public */
  size_t naddrs;              /* number of public addresses */
  rxpkt *rxq_head, *rxq_tail; /* packets for the endpoint */
  size_t rxq_len;             /* their number */
  qpeer__defer rx_task;       /* delivers them */
  int closing;                /* close was called */
} mclient;

static void attempt_failed(mclient *mc, int status);
static void sess_detach(mclient *mc, uint64_t code);
static void drain_end(mclient *mc, int status);
static void schedule_retry(mclient *mc);
static void maybe_finish_close(mclient *mc);

/* ---- options and the request URI ---------------------------------------- */

void qpeer_masque_options_default_versioned(int version,
                                            qpeer_masque_options_t *o) {
  (void)version;
  memset(o, 0, sizeof(*o));
  o->auth = QPEER_AUTH_PEER_ID;
  o->keepalive_ms = QPEER__MASQUE_KEEPALIVE_MS;
  o->request_timeout_ms = 10000;
  o->retry_min_ms = 250;
  o->retry_max_ms = 30000;
}

void qpeer__masque_synthetic_addr(struct sockaddr_storage *ss, uint64_t id,
                                  uint16_t port) {
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
  int i;
  memset(ss, 0, sizeof(*ss));
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  a->sin6_addr.s6_addr[0] = 0x01; /* 100::/64 */
  for (i = 0; i < 8; i++)
    a->sin6_addr.s6_addr[8 + i] = (uint8_t)(id >> (56 - 8 * i));
}

/* Splits "host:port", "[v6]:port", "host" or "[v6]" into |host| and
 * |*pport| (left alone when absent). */
static int split_authority(const char *a, char *host, size_t hostlen,
                           uint16_t *pport) {
  const char *end, *colon = NULL;
  size_t n;
  if (a[0] == '[') {
    end = strchr(a, ']');
    if (!end)
      return UV_EINVAL;
    n = (size_t)(end - a - 1);
    if (n >= hostlen)
      return UV_EINVAL;
    memcpy(host, a + 1, n);
    host[n] = '\0';
    if (end[1] == ':')
      colon = end + 1;
    else if (end[1] != '\0')
      return UV_EINVAL;
  } else {
    colon = strrchr(a, ':');
    if (colon && strchr(a, ':') != colon)
      return UV_EINVAL; /* unbracketed IPv6 */
    n = colon ? (size_t)(colon - a) : strlen(a);
    if (n == 0 || n >= hostlen)
      return UV_EINVAL;
    memcpy(host, a, n);
    host[n] = '\0';
  }
  if (colon) {
    unsigned long p = 0;
    const char *q;
    for (q = colon + 1; *q; q++) {
      if (*q < '0' || *q > '9' || p > 65535)
        return UV_EINVAL;
      p = p * 10 + (unsigned long)(*q - '0');
    }
    if (p == 0 || p > 65535)
      return UV_EINVAL;
    *pport = (uint16_t)p;
  }
  return 0;
}

static int build_request_uri(mclient *mc, const qpeer_masque_options_t *o) {
  char host[256], uri[4096];
  uint16_t port = qpeer__addr_port((const struct sockaddr *)&mc->proxy);
  qpeer__connect_udp_vars v;
  qpeer__connect_udp_uri u;
  ssize_t n;
  if (o->authority) {
    if (split_authority(o->authority, host, sizeof(host), &port) != 0)
      return UV_EINVAL;
  } else if (o->server_name) {
    if (strlen(o->server_name) >= sizeof(host))
      return UV_EINVAL;
    memcpy(host, o->server_name, strlen(o->server_name) + 1);
  } else {
    const struct sockaddr *sa = (const struct sockaddr *)&mc->proxy;
    const void *ap =
        sa->sa_family == AF_INET
            ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
            : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (!inet_ntop(sa->sa_family, ap, host, sizeof(host)))
      return UV_EINVAL;
  }
  memset(&v, 0, sizeof(v));
  v.proxy_host = host;
  v.proxy_port = port;
  v.target_host = mc->kind == MC_TUNNEL ? o->target_host : NULL;
  v.target_port = o->target_port;
  n = qpeer__connect_udp_expand(uri, sizeof(uri), o->uri_template, &v);
  if (n < 0)
    return (int)n;
  if (qpeer__connect_udp_split_uri(uri, (size_t)n, &u) != 0)
    return UV_EINVAL;
  mc->scheme = qpeer__strndup(u.scheme, u.schemelen);
  mc->authority = qpeer__strndup(u.authority, u.authoritylen);
  mc->path = qpeer__strndup(u.path, u.pathlen);
  if (!mc->scheme || !mc->authority || !mc->path)
    return UV_ENOMEM;
  return 0;
}

static void mc_free(mclient *mc) {
  qpeer__free(mc->server_name);
  qpeer__free(mc->ca_file);
  qpeer__free(mc->bearer);
  qpeer__free(mc->scheme);
  qpeer__free(mc->authority);
  qpeer__free(mc->path);
  qpeer__free(mc);
}

static int vif_send(qpeer__vif *vif, const struct sockaddr *remote,
                    const uint8_t *data, size_t len);
static void rx_task_run(qpeer__defer *d);

static int mc_init(qpeer_endpoint_t *eph, qpeer_handle_t *h, int kind,
                   int version, const qpeer_masque_options_t *o) {
  mclient *mc;
  int r;
  if (!eph || !h || !o || version < 1 ||
      version > QPEER_MASQUE_OPTIONS_VERSION || !o->proxy ||
      !qpeer__addr_len(o->proxy) || !qpeer__ep_of(eph))
    return UV_EINVAL;
  if (kind == MC_TUNNEL &&
      (!o->target_host || !*o->target_host || o->target_port == 0))
    return UV_EINVAL;
  if (o->auth == QPEER_AUTH_PEER_ID && !o->peer_id)
    return UV_EINVAL;
  mc = qpeer__calloc(1, sizeof(*mc));
  if (!mc)
    return UV_ENOMEM;
  mc->kind = kind;
  mc->handle = h;
  mc->eph = eph;
  mc->ep = qpeer__ep_of(eph);
  qpeer__addr_normalize(&mc->proxy, o->proxy);
  mc->auth = o->auth;
  if (o->peer_id) {
    mc->peer_id = *o->peer_id;
    mc->have_peer_id = 1;
  }
  r = UV_ENOMEM;
  if ((o->server_name && !(mc->server_name = qpeer__strdup(o->server_name))) ||
      (o->ca_file && !(mc->ca_file = qpeer__strdup(o->ca_file))))
    goto fail;
  if (o->bearer_token) {
    size_t n = strlen(o->bearer_token);
    if (!(mc->bearer = qpeer__malloc(n + 8)))
      goto fail;
    memcpy(mc->bearer, "Bearer ", 7);
    memcpy(mc->bearer + 7, o->bearer_token, n + 1);
  }
  if ((r = build_request_uri(mc, o)) != 0)
    goto fail;
  if (kind == MC_TUNNEL) {
    struct sockaddr_storage ss;
    char lit[QPEER_ADDR_STRLEN];
    int ok = 0;
    if (strlen(o->target_host) < sizeof(lit) - 10) {
      const char *fmt = strchr(o->target_host, ':') ? "[%s]:%u" : "%s:%u";
      snprintf(lit, sizeof(lit), fmt, o->target_host, (unsigned)o->target_port);
      ok = qpeer_addr_parse(&ss, lit) == 0;
    }
    if (ok)
      qpeer__addr_normalize(&mc->target_addr, (const struct sockaddr *)&ss);
    else
      qpeer__masque_synthetic_addr(&mc->target_addr, 1, o->target_port);
  }
  if (o->vif_addr) {
    if (!qpeer__addr_len(o->vif_addr)) {
      r = UV_EINVAL;
      goto fail;
    }
    qpeer__addr_normalize(&mc->vif_req, o->vif_addr);
    mc->have_vif_req = 1;
  }
  mc->idle_ms = o->idle_timeout_ms;
  mc->ka_ms = o->keepalive_ms;
  mc->hs_ms = o->handshake_timeout_ms;
  mc->req_ms = o->request_timeout_ms ? o->request_timeout_ms : 10000;
  mc->retry_min = o->retry_min_ms ? o->retry_min_ms : 250;
  mc->retry_max = QPEER__MAX(o->retry_max_ms, mc->retry_min);
  mc->retry_cur = mc->retry_min;
  mc->vif.send = vif_send;
  mc->vif.ctx = mc;
  qpeer__list_init(&mc->vif.link);
  qpeer__defer_init(&mc->rx_task, rx_task_run);
  if ((r = uv_timer_init(mc->ep->loop, &mc->timer)) != 0)
    goto fail;
  mc->timer.data = mc;
  if (mc->ep->opts.max_datagram_frame_size < QPEER__MASQUE_MIN_DATAGRAM_FRAME)
    qpeer__log(QPEER_LOG_WARN,
               "masque: endpoint max_datagram_frame_size %u is too small for "
               "full-size relayed packets (want >= %u); capsules will be used",
               (unsigned)mc->ep->opts.max_datagram_frame_size,
               (unsigned)QPEER__MASQUE_MIN_DATAGRAM_FRAME);
  qpeer__handle_init(h, mc->ep->loop,
                     kind == MC_TUNNEL ? QPEER_TUNNEL : QPEER_BINDING);
  h->impl = mc;
  return 0;
fail:
  mc_free(mc);
  return r;
}

/* ---- the virtual interface and the receive queue ------------------------ */

static void rxq_clear(mclient *mc) {
  rxpkt *p;
  while ((p = mc->rxq_head) != NULL) {
    mc->rxq_head = p->next;
    qpeer__free(p);
  }
  mc->rxq_tail = NULL;
  mc->rxq_len = 0;
  qpeer__defer_cancel(&mc->rx_task);
}

static void vif_remove(mclient *mc) {
  if (!mc->vif_added)
    return;
  qpeer__ep_remove_vif(mc->ep, &mc->vif);
  mc->vif_added = 0;
  rxq_clear(mc);
}

static int vif_add(mclient *mc) {
  const struct sockaddr *want = NULL;
  int r;
  if (mc->vif_added)
    return 0;
  if (mc->have_vif_req)
    want = (const struct sockaddr *)&mc->vif_req;
  else if (mc->kind == MC_BIND && mc->naddrs)
    want = (const struct sockaddr *)&mc->addrs[0];
  if (want) {
    qpeer__addr_normalize(&mc->vif.local, want);
    r = qpeer__ep_add_vif(mc->ep, &mc->vif);
    if (r == 0 || mc->have_vif_req) {
      mc->vif_added = r == 0;
      return r;
    }
  }
  /* No address asked for, or the public address is taken (by the socket
   * or another interface): a synthetic one that cannot collide. */
  qpeer__masque_synthetic_addr(&mc->vif.local, (uint64_t)(uintptr_t)mc, 1);
  r = qpeer__ep_add_vif(mc->ep, &mc->vif);
  mc->vif_added = r == 0;
  return r;
}

static void deliver(mclient *mc, const struct sockaddr *from,
                    const uint8_t *data, size_t len) {
  rxpkt *p;
  mc->stats.rx_packets++;
  mc->stats.rx_bytes += len;
  if (mc->kind == MC_TUNNEL && mc->rcb) {
    mc->rcb((qpeer_tunnel_t *)mc->handle, data, len);
    return;
  }
  /* Not from here: this runs inside the proxy connection's receive path,
   * and the endpoint must not write that connection re-entrantly. */
  if (!mc->vif_added || mc->rxq_len >= QPEER__TUNNEL_RXQ_MAX ||
      !(p = qpeer__malloc(sizeof(*p) + len))) {
    mc->stats.dropped++;
    return;
  }
  p->next = NULL;
  qpeer__addr_normalize(&p->from, from);
  p->len = len;
  memcpy(p->data, data, len);
  if (mc->rxq_tail)
    mc->rxq_tail->next = p;
  else
    mc->rxq_head = p;
  mc->rxq_tail = p;
  mc->rxq_len++;
  qpeer__ep_after_batch(mc->ep, &mc->rx_task);
}

static void rx_task_run(qpeer__defer *d) {
  mclient *mc = QPEER__CONTAINER_OF(d, mclient, rx_task);
  rxpkt *p;
  qpeer__clock_stamp(); /* one clock read for the batch */
  while (!mc->closing && mc->vif_added && (p = mc->rxq_head) != NULL) {
    mc->rxq_head = p->next;
    if (!mc->rxq_head)
      mc->rxq_tail = NULL;
    mc->rxq_len--;
    qpeer__ep_vif_input(mc->ep, &mc->vif, p->data, p->len,
                        (const struct sockaddr *)&p->from);
    qpeer__free(p);
  }
  /* One write pass for the whole batch (one ACK answers it). */
  qpeer__ep_flush(mc->ep);
  if (mc->closing || !mc->vif_added)
    rxq_clear(mc);
}

static pctx *find_ctx_addr(msess *s, const struct sockaddr *a) {
  size_t i;
  for (i = 0; i < s->nctx; i++)
    if (qpeer__addr_equal((const struct sockaddr *)&s->ctxs[i].addr, a))
      return &s->ctxs[i];
  return NULL;
}

static pctx *find_ctx_id(msess *s, uint64_t id) {
  size_t i;
  for (i = 0; i < s->nctx; i++)
    if (s->ctxs[i].id == id)
      return &s->ctxs[i];
  return NULL;
}

static int family_listed(const mclient *mc, int family) {
  size_t i;
  for (i = 0; i < mc->naddrs; i++)
    if (mc->addrs[i].ss_family == family)
      return 1;
  return 0;
}

/* Sends one UDP payload through the current session. */
static int mc_send(mclient *mc, const struct sockaddr *remote,
                   const uint8_t *data, size_t len) {
  msess *s = mc->sess;
  int r;
  if (!s || (mc->state != MC_UP && mc->state != MC_ASSIGNING))
    s = mc->drain; /* the re-bind is not answered yet: the old binding */
  if (!s || !s->rq)
    return UV_ENOTCONN;
  if (mc->kind == MC_TUNNEL) {
    if (len > QPEER__UDP_PAYLOAD_MAX)
      return UV_EMSGSIZE;
    r = qpeer__h3req_send_datagram(s->rq, 0, NULL, 0, data, len);
  } else {
    struct sockaddr_storage to;
    uint8_t hdr[QPEER__H3_UNCOMPRESSED_V6_LEN];
    ssize_t hl;
    pctx *c;
    qpeer__addr_normalize(&to, remote);
    c = find_ctx_addr(s, (const struct sockaddr *)&to);
    if (c) {
      r = qpeer__h3req_send_datagram(s->rq, c->id, NULL, 0, data, len);
    } else if (!family_listed(mc, to.ss_family)) {
      r = UV_EAFNOSUPPORT; /* draft §4: not a family the relay bound */
    } else {
      hl = qpeer__h3_datagram_write_addr(hdr, sizeof(hdr),
                                         (const struct sockaddr *)&to);
      if (hl < 0)
        return (int)hl;
      r = qpeer__h3req_send_datagram(s->rq, s->uncomp_id, hdr, (size_t)hl, data,
                                     len);
    }
  }
  if (r == 0) {
    mc->stats.tx_packets++;
    mc->stats.tx_bytes += len;
  } else {
    mc->stats.dropped++;
  }
  return r;
}

static int vif_send(qpeer__vif *vif, const struct sockaddr *remote,
                    const uint8_t *data, size_t len) {
  return mc_send(vif->ctx, remote, data, len);
}

/* ---- the bind draft's contexts ------------------------------------------- */

/* Session |s| of |mc| failed: the current attempt or the draining one. */
static void sess_failed(mclient *mc, msess *s, int status) {
  if (s == mc->drain)
    drain_end(mc, status);
  else if (s == mc->sess)
    attempt_failed(mc, status);
}

static void on_compression_capsule(mclient *mc, msess *s, uint64_t type,
                                   const uint8_t *v, size_t len) {
  uint8_t buf[32];
  ssize_t n;
  uint64_t id;
  if (type == QPEER__CAPSULE_COMPRESSION_ACK) {
    if (qpeer__capsule_decode_compression_ack(v, len, &id) != 0 ||
        id != s->uncomp_id) {
      sess_failed(mc, s, QPEER_EMALFORMED); /* ACK for nothing we sent */
      return;
    }
    if (s == mc->sess && mc->state == MC_ASSIGNING) {
      mc->state = MC_UP;
      uv_timer_stop(&mc->timer);
      mc->retry_cur = mc->retry_min;
      mc->stats.connects++;
      if (mc->bcb)
        mc->bcb((qpeer_relay_bind_t *)mc->handle, 0, mc->addrs, mc->naddrs);
    }
    return;
  }
  if (type == QPEER__CAPSULE_COMPRESSION_CLOSE) {
    pctx *c;
    if (qpeer__capsule_decode_compression_close(v, len, &id) != 0) {
      sess_failed(mc, s, QPEER_EMALFORMED);
      return;
    }
    if (id == s->uncomp_id) {
      /* The relay stopped forwarding from unknown peers: bind again. */
      sess_failed(mc, s, QPEER_ERELAY);
      return;
    }
    if ((c = find_ctx_id(s, id)) != NULL)
      *c = s->ctxs[--s->nctx];
    return;
  }
  if (type == QPEER__CAPSULE_COMPRESSION_ASSIGN) {
    qpeer__compression_assign a;
    if (qpeer__capsule_decode_compression_assign(v, len, &a) != 0 ||
        (a.context_id & 1) == 0 || a.ip_version == 0 ||
        find_ctx_id(s, a.context_id) ||
        find_ctx_addr(s, (const struct sockaddr *)&a.addr)) {
      /* Even (ours), uncompressed (only clients register it), duplicate
       * ID or duplicate tuple: malformed (draft §5). */
      sess_failed(mc, s, QPEER_EMALFORMED);
      return;
    }
    if (s->nctx == QPEER__BIND_MAX_PROXY_CONTEXTS) {
      n = qpeer__capsule_write_compression_close(buf, sizeof(buf),
                                                 a.context_id);
      if (n > 0)
        qpeer__h3req_send_encoded(s->rq, buf, (size_t)n);
      return;
    }
    s->ctxs[s->nctx].id = a.context_id;
    qpeer__addr_normalize(&s->ctxs[s->nctx].addr,
                          (const struct sockaddr *)&a.addr);
    s->nctx++;
    n = qpeer__capsule_write_compression_ack(buf, sizeof(buf), a.context_id);
    if (n > 0)
      qpeer__h3req_send_encoded(s->rq, buf, (size_t)n);
  }
}

/* ---- sessions: HTTP/3 callbacks ------------------------------------------ */

static msess *sess_of_h3(qpeer__h3conn *h) {
  return QPEER__CONTAINER_OF(qpeer__h3conn_conn(h), msess, conn);
}

/* Whether |s| carries traffic now: the draining binding, or the current
 * session once the proxy answered. */
static int sess_carries(const mclient *mc, const msess *s) {
  if (s->detached)
    return 0;
  if (s == mc->drain)
    return 1;
  return s == mc->sess && (mc->state == MC_UP || mc->state == MC_ASSIGNING);
}

/* The session of |h| if it is its owner's current attempt. */
static msess *current(qpeer__h3conn *h) {
  msess *s = sess_of_h3(h);
  return !s->detached && s == s->mc->sess ? s : NULL;
}

static void submit_request(mclient *mc, msess *s) {
  nghttp3_nv nv[8];
  size_t n = 0;
  int r;
  nv[n++] = qpeer__h3_nv(":method", "CONNECT", 0);
  nv[n++] = qpeer__h3_nv(":protocol", QPEER__CONNECT_UDP_PROTOCOL, 0);
  nv[n++] = qpeer__h3_nv(":scheme", mc->scheme, 0);
  nv[n++] = qpeer__h3_nv(":authority", mc->authority, 0);
  nv[n++] = qpeer__h3_nv(":path", mc->path, 0);
  nv[n++] = qpeer__h3_nv(QPEER__HDR_CAPSULE_PROTOCOL, "?1", 0);
  if (mc->kind == MC_BIND)
    nv[n++] = qpeer__h3_nv(QPEER__HDR_CONNECT_UDP_BIND, "?1", 0);
  if (mc->bearer)
    nv[n++] =
        qpeer__h3_nv("authorization", mc->bearer, NGHTTP3_NV_FLAG_NEVER_INDEX);
  r = qpeer__h3conn_submit_request(s->h3, nv, n, s, &s->rq);
  if (r != 0) {
    attempt_failed(mc, r);
    return;
  }
  mc->state = MC_REQUESTED;
}

static void h3_on_settings(qpeer__h3conn *h) {
  msess *s = current(h);
  mclient *mc = s ? s->mc : NULL;
  if (!s || mc->state != MC_SETTINGS)
    return;
  mc->stats.peer_h3_datagram = qpeer__h3conn_peer_h3_datagram(h);
  /* RFC 9220 §3: no Extended CONNECT before the server enabled it. */
  if (!qpeer__h3conn_peer_connect_protocol(h)) {
    qpeer__log(QPEER_LOG_WARN, "proxy does not support Extended CONNECT");
    attempt_failed(mc, QPEER_EH3);
    return;
  }
  submit_request(mc, s);
}

/* The status for a refusal: credentials refused (401, 407, or 403 for a
 * reason other than the target) or any other relay error. */
static int status_error(const mclient *mc, int status) {
  if (status == 401 || status == 407)
    return QPEER_EREFUSED;
  if (status == 403 && !strstr(mc->stats.proxy_status, "error=destination"))
    return QPEER_EREFUSED;
  return QPEER_ERELAY;
}

static void h3_on_response(qpeer__h3req *rq) {
  msess *s = rq->data;
  mclient *mc = s->mc;
  const char *v;
  size_t len = 0;
  if (s->detached || s != mc->sess || mc->state != MC_REQUESTED)
    return;
  mc->stats.http_status = rq->status;
  mc->stats.proxy_status[0] = '\0';
  v = qpeer__h3req_header(rq, QPEER__HDR_PROXY_STATUS, &len, NULL);
  if (v) {
    len = QPEER__MIN(len, sizeof(mc->stats.proxy_status) - 1);
    memcpy(mc->stats.proxy_status, v, len);
    mc->stats.proxy_status[len] = '\0';
  }
  if (rq->status < 200 || rq->status > 299) {
    qpeer__log(QPEER_LOG_WARN, "proxy refused the request: %d %s", rq->status,
               mc->stats.proxy_status);
    attempt_failed(mc, status_error(mc, rq->status));
    return;
  }
  if (mc->kind == MC_TUNNEL) {
    if (vif_add(mc) != 0) {
      attempt_failed(mc, UV_EEXIST);
      return;
    }
    mc->state = MC_UP;
    uv_timer_stop(&mc->timer);
    mc->stats.connects++;
    if (mc->tcb)
      mc->tcb((qpeer_tunnel_t *)mc->handle, 0);
    return;
  }
  /* Bind: the relay must echo connect-udp-bind and name its addresses. */
  v = qpeer__h3req_header(rq, QPEER__HDR_CONNECT_UDP_BIND, &len, NULL);
  if (!v || !qpeer__sf_boolean_is_true(v, len)) {
    qpeer__log(QPEER_LOG_WARN, "relay does not support connect-udp-bind");
    attempt_failed(mc, QPEER_EUNSUPPORTED);
    return;
  }
  v = qpeer__h3req_header(rq, QPEER__HDR_PROXY_PUBLIC_ADDRESS, &len, NULL);
  {
    int n = v ? qpeer__proxy_public_address_parse(v, len, mc->addrs,
                                                  QPEER_MASQUE_MAX_ADDRS)
              : QPEER_EMALFORMED;
    if (n <= 0) {
      qpeer__log(QPEER_LOG_WARN, "relay sent no usable Proxy-Public-Address");
      attempt_failed(mc, QPEER_ERELAY);
      return;
    }
    mc->naddrs = (size_t)n;
  }
  if (mc->drain) {
    /* Re-bound after a GOAWAY: the new binding takes over now; the old
     * one (and its public address on the interface) goes. */
    drain_end(mc, 0);
    vif_remove(mc);
  }
  {
    uint8_t buf[32];
    ssize_t n;
    s->uncomp_id = QPEER__BIND_UNCOMPRESSED_CTX;
    n = qpeer__capsule_write_compression_assign(buf, sizeof(buf), s->uncomp_id,
                                                NULL);
    if (n < 0 || qpeer__h3req_send_encoded(rq, buf, (size_t)n) != 0) {
      attempt_failed(mc, QPEER_EH3);
      return;
    }
  }
  if (vif_add(mc) != 0) {
    attempt_failed(mc, UV_EEXIST);
    return;
  }
  mc->state = MC_ASSIGNING;
}

static void h3_on_datagram(qpeer__h3req *rq, uint64_t ctx, const uint8_t *data,
                           size_t len, int capsule) {
  msess *s = rq->data;
  mclient *mc = s->mc;
  struct sockaddr_storage from;
  const uint8_t *p;
  size_t n;
  pctx *c;
  (void)capsule;
  if (!sess_carries(mc, s)) {
    mc->stats.dropped++;
    return;
  }
  if (mc->kind == MC_TUNNEL) {
    if (ctx != 0) {
      mc->stats.dropped++; /* an extension context we never registered */
      return;
    }
    deliver(mc, (const struct sockaddr *)&mc->target_addr, data, len);
    return;
  }
  if (ctx == 0) {
    sess_failed(mc, s, QPEER_EMALFORMED); /* draft §4: no context 0 */
    return;
  }
  if (ctx == s->uncomp_id) {
    if (qpeer__h3_datagram_decode_uncompressed(data, len, &from, &p, &n) != 0) {
      mc->stats.dropped++;
      return;
    }
    deliver(mc, (const struct sockaddr *)&from, p, n);
    return;
  }
  if ((c = find_ctx_id(s, ctx)) != NULL) {
    deliver(mc, (const struct sockaddr *)&c->addr, data, len);
    return;
  }
  mc->stats.dropped++; /* closed or unknown context: drop silently */
}

static void h3_on_capsule(qpeer__h3req *rq, uint64_t type, const uint8_t *v,
                          size_t len) {
  msess *s = rq->data;
  mclient *mc = s->mc;
  if (mc->kind != MC_BIND || !sess_carries(mc, s))
    return;
  on_compression_capsule(mc, s, type, v, len);
}

static void h3_on_req_closed(qpeer__h3req *rq, int status) {
  msess *s = rq->data;
  if (s->detached)
    return;
  s->rq = NULL;
  /* A clean end by the proxy still ends the tunnel. */
  sess_failed(s->mc, s, status == 0 ? UV_EOF : status);
}

static void h3_on_closed(qpeer__h3conn *h, int status) {
  msess *s = sess_of_h3(h);
  if (s->detached)
    return;
  sess_failed(s->mc, s, status ? status : QPEER_EPEERCLOSED);
}

/* The proxy is shutting down gracefully (RFC 9114 §5.2). A request it
 * will still process carries on: a tunnel runs until the proxy ends it, a
 * binding keeps carrying traffic while it binds again on a new connection
 * (after the usual backoff delay) and is replaced when that answers. A
 * request it will not process, or one not sent yet, fails at once (a
 * binding then retries with backoff). */
static void h3_on_goaway(qpeer__h3conn *h, int64_t id) {
  msess *s = sess_of_h3(h);
  mclient *mc = s->mc;
  int processed;
  if (s->detached || s->goaway)
    return;
  s->goaway = 1;
  if (s == mc->drain)
    return;
  QPEER__LOG_DEBUG("masque %s: proxy sent GOAWAY (stream %lld)",
                   mc->kind == MC_BIND ? "bind" : "tunnel", (long long)id);
  processed = s->rq && s->rq->stream_id < id &&
              (mc->state == MC_UP || mc->state == MC_ASSIGNING ||
               mc->state == MC_REQUESTED);
  if (!processed) {
    qpeer__log(QPEER_LOG_INFO, "masque: the proxy is going away (GOAWAY) "
                               "before answering; %s",
               mc->kind == MC_BIND ? "binding again later" : "tunnel failed");
    attempt_failed(mc, QPEER_ERELAY);
    return;
  }
  if (mc->kind != MC_BIND)
    return; /* the tunnel runs until the proxy ends it */
  if (mc->state != MC_UP) {
    /* Answered or about to be, on a connection that is going away: give
     * it up and bind again on a new one. */
    attempt_failed(mc, QPEER_ERELAY);
    return;
  }
  /* Up: keep it as the draining binding and bind again. */
  if (mc->drain)
    drain_end(mc, 0);
  mc->drain = s;
  mc->sess = NULL;
  uv_timer_stop(&mc->timer);
  schedule_retry(mc);
}

static void sess_free(msess *s) {
  mclient *mc = s->mc;
  qpeer__free(s);
  mc->nsess--;
  maybe_finish_close(mc);
}

static void h3_on_freed(qpeer__h3conn *h) { sess_free(sess_of_h3(h)); }

static const qpeer__h3conn_callbacks h3cbs = {
    .on_settings = h3_on_settings,
    .on_response = h3_on_response,
    .on_datagram = h3_on_datagram,
    .on_capsule = h3_on_capsule,
    .on_req_closed = h3_on_req_closed,
    .on_closed = h3_on_closed,
    .on_freed = h3_on_freed,
    .on_goaway = h3_on_goaway};

/* ---- sessions: connecting
 * ---------------------------------------------------- */

static void on_sess_conn_closed(qpeer_handle_t *hd) {
  sess_free(QPEER__CONTAINER_OF((qpeer_conn_t *)hd, msess, conn));
}

static void on_connect(qpeer_connect_t *req, int status) {
  msess *s = QPEER__CONTAINER_OF(req, msess, creq);
  mclient *mc = s->mc;
  qpeer__h3conn_settings hs;
  int r;
  if (s->detached)
    return; /* Its close is already under way. */
  if (status != 0) {
    attempt_failed(mc, status);
    return;
  }
  memset(&hs, 0, sizeof(hs));
  hs.server = 0;
  hs.local_datagrams = mc->ep->opts.max_datagram_frame_size > 0;
  r = qpeer__h3conn_new(&s->h3, &s->conn, &hs, &h3cbs, s);
  if (r != 0) {
    s->h3 = NULL;
    attempt_failed(mc, r);
    return;
  }
  mc->state = MC_SETTINGS;
}

static void on_timer(uv_timer_t *t);

/* Starts one attempt. Returns 0 or the error of qpeer_connect. */
static int attempt(mclient *mc) {
  static const char *const alpn[] = {QPEER_MASQUE_ALPN};
  qpeer_connect_options_t co;
  msess *s;
  int r;
  s = qpeer__calloc(1, sizeof(*s));
  if (!s)
    return UV_ENOMEM;
  s->mc = mc;
  qpeer_connect_options_default(&co);
  co.remote = (const struct sockaddr *)&mc->proxy;
  co.alpn = alpn;
  co.nalpn = 1;
  co.auth = mc->auth;
  co.peer_id = mc->have_peer_id ? &mc->peer_id : NULL;
  co.server_name = mc->server_name;
  co.ca_file = mc->ca_file;
  co.idle_timeout_ms = mc->idle_ms;
  co.keepalive_ms = mc->ka_ms;
  co.handshake_timeout_ms = mc->hs_ms;
  r = qpeer_connect(&s->creq, mc->eph, &s->conn, &co, on_connect);
  if (r != 0) {
    qpeer__free(s);
    return r;
  }
  mc->sess = s;
  mc->nsess++;
  mc->state = MC_CONNECTING;
  mc->stats.http_status = 0; /* describes this attempt's answer only */
  mc->stats.proxy_status[0] = '\0';
  uv_timer_start(&mc->timer, on_timer, mc->req_ms, 0);
  return 0;
}

/* ---- failure, backoff, re-binding ---------------------------------------- */

static void acc_stats(mclient *mc, msess *s) {
  const qpeer__h3_dgram_stats *d;
  if (!s->h3)
    return;
  d = qpeer__h3conn_dgram_stats(s->h3);
  mc->acc.tx_quic += d->tx_quic;
  mc->acc.tx_capsule += d->tx_capsule;
  mc->acc.rx_quic += d->rx_quic;
  mc->acc.rx_capsule += d->rx_capsule;
  mc->acc.tx_dropped += d->tx_dropped;
  mc->acc.rx_dropped += d->rx_dropped;
}

/* Closes session |s|, which is no longer referenced (no callbacks). */
static void sess_end(mclient *mc, msess *s, uint64_t code) {
  s->detached = 1;
  acc_stats(mc, s);
  if (s->h3) {
    qpeer__h3conn_close(s->h3, code, NULL);
  } else if (qpeer_close((qpeer_handle_t *)&s->conn, on_sess_conn_closed) !=
             0) {
    sess_free(s);
  }
}

/* Lets go of the current session (no callbacks) and closes it. */
static void sess_detach(mclient *mc, uint64_t code) {
  msess *s = mc->sess;
  if (!s)
    return;
  mc->sess = NULL;
  sess_end(mc, s, code);
}

/* Ends the draining binding: |status| 0 when the re-bind replaced it,
 * else it was lost before that (reported, and the interface goes unless
 * the re-bind is already up). */
static void drain_end(mclient *mc, int status) {
  msess *s = mc->drain;
  if (!s)
    return;
  mc->drain = NULL;
  sess_end(mc, s,
           status == QPEER_EMALFORMED ? QPEER__H3_MESSAGE_ERROR
                                      : QPEER__H3_NO_ERROR);
  if (status == 0 || mc->closing)
    return;
  QPEER__LOG_DEBUG("masque bind: draining binding lost (%s)",
                   qpeer_err_name(status));
  if (mc->state != MC_UP && mc->state != MC_ASSIGNING)
    vif_remove(mc);
  mc->stats.failures++;
  if (mc->bcb)
    mc->bcb((qpeer_relay_bind_t *)mc->handle, status, NULL, 0);
}

static int permanent(const mclient *mc, int status) {
  int http = mc->stats.http_status;
  /* Refused credentials, a relay that cannot bind, or a relay that is not
   * the one we pinned: trying again cannot help. */
  if (status == QPEER_EREFUSED || status == QPEER_EUNSUPPORTED ||
      status == QPEER_EPEERID || status == QPEER_ECERT)
    return 1;
  return status == QPEER_ERELAY && http >= 400 && http < 500 && http != 408 &&
         http != 429;
}

static void schedule_retry(mclient *mc) {
  uint64_t d = mc->retry_cur;
  uint32_t rnd = 0;
  qpeer__rand(&rnd, sizeof(rnd));
  /* Full delay +-25% so that many clients do not come back together. */
  d = d * 3 / 4 + (d / 2 ? rnd % (d / 2 + 1) : 0);
  mc->retry_cur = QPEER__MIN(mc->retry_cur * 2, mc->retry_max);
  mc->state = MC_BACKOFF;
  uv_timer_start(&mc->timer, on_timer, d, 0);
}

/* The current attempt failed, or the tunnel or binding was lost. */
static void attempt_failed(mclient *mc, int status) {
  int was_up = mc->state == MC_UP;
  if (!mc->sess || mc->closing)
    return;
  QPEER__LOG_DEBUG("masque %s: %s (%s)",
                   mc->kind == MC_BIND ? "bind" : "tunnel",
                   was_up ? "lost" : "attempt failed", qpeer_err_name(status));
  sess_detach(mc, status == QPEER_EMALFORMED ? QPEER__H3_MESSAGE_ERROR
                                             : QPEER__H3_NO_ERROR);
  if (!mc->drain)
    vif_remove(mc); /* else the old binding still carries the traffic */
  uv_timer_stop(&mc->timer);
  mc->stats.failures++;
  if (mc->kind == MC_TUNNEL) {
    mc->state = MC_DONE;
    if (mc->tcb)
      mc->tcb((qpeer_tunnel_t *)mc->handle, status);
    return;
  }
  if (permanent(mc, status))
    mc->state = MC_DONE;
  else
    schedule_retry(mc);
  if (mc->bcb)
    mc->bcb((qpeer_relay_bind_t *)mc->handle, status, NULL, 0);
}

static void on_timer(uv_timer_t *t) {
  mclient *mc = t->data;
  int r;
  if (mc->closing)
    return;
  if (mc->state == MC_BACKOFF) {
    r = attempt(mc);
    if (r != 0) {
      mc->stats.failures++;
      schedule_retry(mc);
      if (mc->bcb)
        mc->bcb((qpeer_relay_bind_t *)mc->handle, r, NULL, 0);
    }
    return;
  }
  if (mc->sess && mc->state != MC_UP)
    attempt_failed(mc, UV_ETIMEDOUT);
}

/* ---- closing
 * ----------------------------------------------------------------- */

static void maybe_finish_close(mclient *mc) {
  qpeer_handle_t *h = mc->handle;
  if (!mc->closing || !mc->timer_closed || mc->nsess)
    return;
  h->impl = NULL;
  h->flags |= QPEER__HANDLE_CLOSED;
  mc_free(mc);
  if (h->close_cb)
    h->close_cb(h);
}

static void on_timer_closed(uv_handle_t *t) {
  mclient *mc = t->data;
  mc->timer_closed = 1;
  maybe_finish_close(mc);
}

/* Closes a tunnel or binding whose CLOSING flag and close_cb are set. */
static int mc_close_flagged(qpeer_handle_t *h) {
  mclient *mc = h->impl;
  if (!mc) {
    h->flags |= QPEER__HANDLE_CLOSED;
    return 0;
  }
  mc->closing = 1;
  sess_detach(mc, QPEER__H3_NO_ERROR);
  drain_end(mc, 0);
  vif_remove(mc);
  rxq_clear(mc);
  mc->state = MC_DONE;
  uv_close((uv_handle_t *)&mc->timer, on_timer_closed);
  return 0;
}

static int mc_close(qpeer_handle_t *h, int kind, qpeer_close_cb cb) {
  mclient *mc;
  if (!h || !(h->flags & QPEER__HANDLE_INIT) || !(mc = h->impl) ||
      mc->kind != kind)
    return UV_EINVAL;
  if (h->flags & (QPEER__HANDLE_CLOSING | QPEER__HANDLE_CLOSED))
    return UV_EALREADY;
  h->flags |= QPEER__HANDLE_CLOSING;
  h->close_cb = cb;
  return mc_close_flagged(h);
}

int qpeer__tunnel_close(qpeer_tunnel_t *t) {
  return mc_close_flagged((qpeer_handle_t *)t);
}

int qpeer__relay_bind_close(qpeer_relay_bind_t *b) {
  return mc_close_flagged((qpeer_handle_t *)b);
}

static mclient *mc_of(const void *h, int kind) {
  const qpeer_handle_t *hd = h;
  mclient *mc;
  if (!hd || !(hd->flags & QPEER__HANDLE_INIT) ||
      (hd->flags & (QPEER__HANDLE_CLOSING | QPEER__HANDLE_CLOSED)) ||
      !(mc = hd->impl) || mc->kind != kind)
    return NULL;
  return mc;
}

static void fill_stats(const mclient *mc, qpeer_masque_stats_t *st) {
  qpeer__h3_dgram_stats d = mc->acc;
  const msess *live[2];
  size_t i;
  *st = mc->stats;
  live[0] = mc->sess;
  live[1] = mc->drain;
  for (i = 0; i < 2; i++) {
    const qpeer__h3_dgram_stats *c;
    if (!live[i] || !live[i]->h3)
      continue;
    c = qpeer__h3conn_dgram_stats(live[i]->h3);
    d.tx_quic += c->tx_quic;
    d.tx_capsule += c->tx_capsule;
    d.rx_quic += c->rx_quic;
    d.rx_capsule += c->rx_capsule;
    d.tx_dropped += c->tx_dropped;
    d.rx_dropped += c->rx_dropped;
  }
  st->tx_quic_datagrams = d.tx_quic;
  st->tx_capsules = d.tx_capsule;
  st->rx_quic_datagrams = d.rx_quic;
  st->rx_capsules = d.rx_capsule;
  st->dropped += d.rx_dropped;
}

int qpeer__masque_client_goaway(const qpeer_handle_t *h) {
  const mclient *mc = h ? h->impl : NULL;
  if (!mc)
    return 0;
  if (mc->drain)
    return mc->drain->goaway;
  return mc->sess ? mc->sess->goaway : 0;
}

qpeer_conn_t *qpeer__masque_client_conn(const qpeer_handle_t *h) {
  const mclient *mc = h ? h->impl : NULL;
  return mc && mc->sess && mc->state == MC_UP ? &mc->sess->conn : NULL;
}

/* ---- qpeer_tunnel_* ---------------------------------------------------------
 */

int qpeer_tunnel_init_versioned(qpeer_endpoint_t *ep, qpeer_tunnel_t *t,
                                int version, const qpeer_masque_options_t *o) {
  return mc_init(ep, (qpeer_handle_t *)t, MC_TUNNEL, version, o);
}

int qpeer_tunnel_start(qpeer_tunnel_t *t, qpeer_tunnel_cb cb) {
  mclient *mc = mc_of(t, MC_TUNNEL);
  if (!mc || !cb)
    return UV_EINVAL;
  if (mc->state != MC_IDLE)
    return UV_EALREADY;
  mc->tcb = cb;
  return attempt(mc);
}

int qpeer_tunnel_recv_start(qpeer_tunnel_t *t, qpeer_tunnel_recv_cb cb) {
  mclient *mc = mc_of(t, MC_TUNNEL);
  if (!mc || !cb)
    return UV_EINVAL;
  mc->rcb = cb;
  return 0;
}

int qpeer_tunnel_recv_stop(qpeer_tunnel_t *t) {
  mclient *mc = mc_of(t, MC_TUNNEL);
  if (!mc)
    return UV_EINVAL;
  mc->rcb = NULL;
  return 0;
}

int qpeer_tunnel_send(qpeer_tunnel_t *t, const uint8_t *data, size_t len) {
  mclient *mc = mc_of(t, MC_TUNNEL);
  if (!mc || (!data && len))
    return UV_EINVAL;
  return mc_send(mc, (const struct sockaddr *)&mc->target_addr, data, len);
}

int qpeer_tunnel_get_local_addr(const qpeer_tunnel_t *t,
                                struct sockaddr_storage *addr) {
  mclient *mc = mc_of(t, MC_TUNNEL);
  if (!mc || !addr)
    return UV_EINVAL;
  if (!mc->vif_added)
    return UV_ENOTCONN;
  *addr = mc->vif.local;
  return 0;
}

int qpeer_tunnel_get_remote_addr(const qpeer_tunnel_t *t,
                                 struct sockaddr_storage *addr) {
  mclient *mc = mc_of(t, MC_TUNNEL);
  if (!mc || !addr)
    return UV_EINVAL;
  *addr = mc->target_addr;
  return 0;
}

int qpeer_tunnel_get_stats(const qpeer_tunnel_t *t, qpeer_masque_stats_t *st) {
  mclient *mc = mc_of(t, MC_TUNNEL);
  if (!mc || !st)
    return UV_EINVAL;
  fill_stats(mc, st);
  return 0;
}

int qpeer_tunnel_close(qpeer_tunnel_t *t, qpeer_close_cb cb) {
  return mc_close((qpeer_handle_t *)t, MC_TUNNEL, cb);
}

/* ---- qpeer_relay_bind_*
 * ------------------------------------------------------ */

int qpeer_relay_bind_init_versioned(qpeer_endpoint_t *ep, qpeer_relay_bind_t *b,
                                    int version,
                                    const qpeer_masque_options_t *o) {
  return mc_init(ep, (qpeer_handle_t *)b, MC_BIND, version, o);
}

int qpeer_relay_bind_start(qpeer_relay_bind_t *b, qpeer_relay_bind_cb cb) {
  mclient *mc = mc_of(b, MC_BIND);
  if (!mc || !cb)
    return UV_EINVAL;
  if (mc->state != MC_IDLE && mc->state != MC_DONE)
    return UV_EALREADY;
  mc->bcb = cb;
  mc->retry_cur = mc->retry_min;
  mc->stats.http_status = 0;
  return attempt(mc);
}

int qpeer_relay_bind_stop(qpeer_relay_bind_t *b) {
  mclient *mc = mc_of(b, MC_BIND);
  if (!mc)
    return UV_EINVAL;
  sess_detach(mc, QPEER__H3_NO_ERROR);
  drain_end(mc, 0);
  vif_remove(mc);
  uv_timer_stop(&mc->timer);
  mc->state = MC_IDLE;
  return 0;
}

int qpeer_relay_bind_get_local_addr(const qpeer_relay_bind_t *b,
                                    struct sockaddr_storage *addr) {
  mclient *mc = mc_of(b, MC_BIND);
  if (!mc || !addr)
    return UV_EINVAL;
  if (!mc->vif_added || (mc->state != MC_UP && !mc->drain))
    return UV_ENOTCONN;
  *addr = mc->vif.local;
  return 0;
}

int qpeer_relay_bind_get_stats(const qpeer_relay_bind_t *b,
                               qpeer_masque_stats_t *st) {
  mclient *mc = mc_of(b, MC_BIND);
  if (!mc || !st)
    return UV_EINVAL;
  fill_stats(mc, st);
  return 0;
}

int qpeer_relay_bind_close(qpeer_relay_bind_t *b, qpeer_close_cb cb) {
  return mc_close((qpeer_handle_t *)b, MC_BIND, cb);
}
