/* SPDX-License-Identifier: MIT */
/*
 * The MASQUE relay (relay.h). Divisions: options and the target policy;
 * client records (quota keys); sessions (one tunnel or binding: sockets,
 * name resolution, closing); the data path in both directions; the bind
 * draft's contexts; requests (checks, access control, responses);
 * connections; the sweep timer; the public qpeer_relay_* functions.
 */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "core/addr.h"
#include "h3/capsule.h"
#include "h3/connect_udp.h"
#include "h3/datagram.h"
#include "h3/h3conn.h"
#include "h3/proxy_status.h"
#include "h3/relay.h"
#include "net/udp.h"
#include "quic/handles.h"

/* Session states. */
enum { RS_RESOLVING = 1, RS_OPEN, RS_CLOSED };

/* How a session's request is finished when the session closes. */
enum { END_NONE = 0, END_FIN, END_ABORT };

typedef struct rclient {
  qpeer_relay_client_t pub; /* what the hooks see */
  qpeer__list link;         /* in relay->clients */
  char *key;                /* owned copy of the key */
  size_t refs;              /* sessions holding it */
} rclient;

typedef struct relay {
  qpeer_relay_t *handle;               /* the user's handle */
  uv_loop_t *loop;                     /* the loop */
  qpeer_relay_options_t o;             /* copied options (arrays below) */
  struct sockaddr_storage *bind_addrs; /* owned copies */
  size_t nbind;                        /* their number */
  struct sockaddr_storage *pub_addrs;  /* owned copies */
  size_t npub;                         /* their number */
  struct sockaddr_storage *own;        /* the host's addresses */
  size_t nown;                         /* their number */
  char *proxy_name;                    /* Proxy-Status name (owned) */
  qpeer__list conns;                   /* every rconn */
  qpeer__list clients;                 /* every rclient */
  size_t nconns;                       /* rconns not yet freed */
  size_t nsess;                        /* sessions not yet freed */
  uv_timer_t sweep;                    /* idle sweep */
  int sweep_closed;                    /* its close callback ran */
  /* Packets to peers are gathered per (socket, destination) into one
   * GSO train (equal segments, the last may be shorter) and sent when the
   * next packet does not fit it, or after the poll phase (txflush). */
  uv_check_t txflush;                  /* sends the pending train */
  int txflush_closed;                  /* its close callback ran */
  struct rudp *tx_sock;                /* socket of the pending train */
  struct sockaddr_storage tx_to;       /* its destination */
  size_t tx_seg, tx_len, tx_n;         /* segment size, bytes, segments */
  uint8_t *txbuf;                      /* QPEER__UDP_GSO_MAX_BYTES, lazily */
  qpeer_relay_stats_t stats;           /* counters */
  qpeer__h3_dgram_stats acc;           /* datagram counters of freed conns */
  int closing;                         /* qpeer_relay_close was called */
  int draining;                        /* qpeer_relay_shutdown was called */
  uint8_t rxbuf[65536];                /* receive buffer of tunnel sockets */
  qpeer__udp_rx brx;                   /* receive storage of every binding
                                          socket (recvmmsg, UDP GRO);
                                          allocated with the first one */
} relay;

typedef struct rconn {
  qpeer__list link;               /* in relay->conns */
  relay *r;                       /* the relay */
  qpeer_conn_t conn;              /* the client's connection */
  qpeer__h3conn *h3;              /* its HTTP/3 session */
  qpeer__list sessions;           /* its open sessions */
  int have_peer_id;               /* peer_id is set */
  qpeer_peer_id_t peer_id;        /* the client's peer ID */
  struct sockaddr_storage remote; /* the client's address */
  struct sockaddr_storage local;  /* where it reached us */
  char key[40];                   /* quota key when nothing better */
} rconn;

/* A compression context the client registered. */
typedef struct {
  uint64_t id;                  /* even, client-allocated */
  struct sockaddr_storage addr; /* its tuple */
} rctx;

typedef struct rsess {
  qpeer__list link;               /* in rc->sessions while open */
  relay *r;                       /* the relay */
  rconn *rc;                      /* its connection (NULL once gone) */
  qpeer__h3req *rq;               /* its request (NULL once ended) */
  qpeer_relay_request_kind kind;  /* tunnel or binding */
  rclient *client;                /* quota record */
  int state;                      /* RS_* */
  uint64_t last;                  /* last packet either way (uv_now) */
  uv_getaddrinfo_t gai;           /* name resolution */
  int gai_pending;                /* gai is running */
  uv_udp_t udp[2];                /* tunnel: its socket (udp[0]) */
  struct rudp *budp[2];           /* binding: its sockets */
  int nudp;                       /* initialised sockets */
  int nudp_open;                  /* not yet closed */
  struct sockaddr_storage target; /* tunnel: the target */
  uint16_t target_port;           /* tunnel: its port */
  uint64_t uncomp_id;             /* bind: uncompressed context (0: none) */
  rctx *ctx;                      /* bind: compressed contexts */
  size_t nctx;                    /* their number */
} rsess;

/* A binding's socket: batched receive (recvmmsg + UDP GRO) into the
 * relay's shared storage, sends with sendmsg. */
typedef struct rudp {
  qpeer__udp u;  /* the socket */
  struct rsess *s; /* its session */
} rudp;

static void close_session(rsess *s, int how, uint64_t code);
static void tx_flush(relay *r);
static void maybe_finish(relay *r);

/* ---- the target policy ------------------------------------------------------
 */

int qpeer__relay_addr_class(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET6) {
    const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t zero[16];
    if (!memcmp(b, mapped, 12)) {
      struct sockaddr_in v4;
      memset(&v4, 0, sizeof(v4));
      v4.sin_family = AF_INET;
      memcpy(&v4.sin_addr, b + 12, 4);
      return qpeer__relay_addr_class((const struct sockaddr *)&v4);
    }
    if (!memcmp(b, zero, 16))
      return QPEER__ADDR_UNSPECIFIED;
    if (!memcmp(b, zero, 15) && b[15] == 1)
      return QPEER__ADDR_LOOPBACK;
    if (b[0] == 0xff)
      return QPEER__ADDR_MULTICAST;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
      return QPEER__ADDR_LINK_LOCAL;
    if ((b[0] & 0xfe) == 0xfc)
      return QPEER__ADDR_PRIVATE;
    if (b[0] == 0x01 && !memcmp(b + 1, zero, 7))
      return QPEER__ADDR_DISCARD;
    if (!memcmp(b, zero, 12))
      return QPEER__ADDR_UNSPECIFIED; /* IPv4-compatible: deprecated */
    return QPEER__ADDR_PUBLIC;
  }
  if (sa->sa_family == AF_INET) {
    uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
    if ((a >> 24) == 0)
      return QPEER__ADDR_UNSPECIFIED;
    if ((a >> 24) == 127)
      return QPEER__ADDR_LOOPBACK;
    if ((a >> 24) == 10 || (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8 ||
        (a >> 22) == (100u << 2 | 1))
      return QPEER__ADDR_PRIVATE;
    if ((a >> 16) == 0xa9fe)
      return QPEER__ADDR_LINK_LOCAL;
    if ((a >> 28) == 0xe)
      return QPEER__ADDR_MULTICAST;
    if ((a >> 28) == 0xf)
      return QPEER__ADDR_BROADCAST;
    return QPEER__ADDR_PUBLIC;
  }
  return QPEER__ADDR_UNSPECIFIED;
}

static int same_ip(const struct sockaddr *a, const struct sockaddr *b) {
  struct sockaddr_storage x, y;
  qpeer__addr_normalize(&x, a);
  qpeer__addr_normalize(&y, b);
  if (x.ss_family != y.ss_family)
    return 0;
  if (x.ss_family == AF_INET)
    return ((struct sockaddr_in *)&x)->sin_addr.s_addr ==
           ((struct sockaddr_in *)&y)->sin_addr.s_addr;
  if (x.ss_family == AF_INET6)
    return !memcmp(&((struct sockaddr_in6 *)&x)->sin6_addr,
                   &((struct sockaddr_in6 *)&y)->sin6_addr, 16);
  return 0;
}

int qpeer_relay_target_allowed(const qpeer_relay_t *h, const struct sockaddr *t,
                               unsigned int allow) {
  const relay *r = h ? h->impl : NULL;
  size_t i;
  if (!t)
    return 0;
  switch (qpeer__relay_addr_class(t)) {
  case QPEER__ADDR_LOOPBACK:
    return (allow & QPEER_RELAY_ALLOW_LOOPBACK) != 0;
  case QPEER__ADDR_PRIVATE:
    if (!(allow & QPEER_RELAY_ALLOW_PRIVATE))
      return 0;
    break;
  case QPEER__ADDR_LINK_LOCAL:
    if (!(allow & QPEER_RELAY_ALLOW_LINK_LOCAL))
      return 0;
    break;
  case QPEER__ADDR_PUBLIC:
    break;
  default:
    return 0; /* unspecified, multicast, broadcast, reserved, discard */
  }
  if (qpeer__addr_port(t) == 0)
    return 0;
  if (r && !(allow & QPEER_RELAY_ALLOW_OWN)) {
    for (i = 0; i < r->nown; i++)
      if (same_ip(t, (const struct sockaddr *)&r->own[i]))
        return 0;
    for (i = 0; i < r->npub; i++)
      if (same_ip(t, (const struct sockaddr *)&r->pub_addrs[i]))
        return 0;
  }
  return 1;
}

static int target_ok(relay *r, const qpeer_relay_request_t *req,
                     const struct sockaddr *t) {
  if (r->o.target_cb)
    return r->o.target_cb(r->handle, req, t) == 0;
  return qpeer_relay_target_allowed(r->handle, t, r->o.allow_targets);
}

/* ---- client records
 * ------------------------------------------------------------ */

static rclient *client_find(relay *r, const char *key) {
  qpeer__list *e;
  for (e = r->clients.next; e != &r->clients; e = e->next) {
    rclient *c = QPEER__CONTAINER_OF(e, rclient, link);
    if (!strcmp(c->key, key))
      return c;
  }
  return NULL;
}

static rclient *client_get(relay *r, const char *key) {
  rclient *c = client_find(r, key);
  if (c)
    return c;
  c = qpeer__calloc(1, sizeof(*c));
  if (!c || !(c->key = qpeer__strdup(key))) {
    qpeer__free(c);
    return NULL;
  }
  c->pub.key = c->key;
  qpeer__list_insert_tail(&r->clients, &c->link);
  return c;
}

static void client_release(relay *r, rclient *c) {
  qpeer__list_remove(&c->link);
  if (r->o.on_client_gone)
    r->o.on_client_gone(r->handle, &c->pub);
  qpeer__free(c->key);
  qpeer__free(c);
}

static void client_unref(relay *r, rclient *c) {
  /* While closing, records go in maybe_finish(): on_client_gone must not
   * run inside qpeer_relay_close(). */
  if (--c->refs > 0 || r->closing)
    return;
  client_release(r, c);
}

/* ---- sessions
 * ------------------------------------------------------------------ */

static void maybe_free_session(rsess *s) {
  relay *r = s->r;
  if (s->state != RS_CLOSED || s->gai_pending || s->nudp_open)
    return;
  qpeer__free(s->ctx);
  qpeer__free(s);
  r->nsess--;
  maybe_finish(r);
}

static void on_udp_closed(uv_handle_t *h) {
  rsess *s = h->data;
  s->nudp_open--;
  maybe_free_session(s);
}

static void on_budp_closed(uv_handle_t *h) {
  rudp *b = QPEER__CONTAINER_OF((qpeer__udp *)h->data, rudp, u);
  rsess *s = b->s;
  int i;
  for (i = 0; i < s->nudp; i++)
    if (s->budp[i] == b)
      s->budp[i] = NULL;
  qpeer__free(b);
  s->nudp_open--;
  maybe_free_session(s);
}

static void close_session(rsess *s, int how, uint64_t code) {
  relay *r = s->r;
  int i;
  if (s->state == RS_CLOSED)
    return;
  s->state = RS_CLOSED;
  if (s->rq) {
    s->rq->data = NULL;
    if (how == END_FIN)
      qpeer__h3req_end(s->rq);
    else if (how == END_ABORT)
      qpeer__h3req_abort(s->rq, code);
    s->rq = NULL;
  }
  if (qpeer__list_linked(&s->link))
    qpeer__list_remove(&s->link);
  if (s->kind == QPEER_RELAY_BIND) {
    s->client->pub.binds--;
    r->stats.binds_active--;
  } else {
    s->client->pub.tunnels--;
    r->stats.tunnels_active--;
  }
  client_unref(r, s->client);
  s->client = NULL;
  if (s->gai_pending)
    uv_cancel((uv_req_t *)&s->gai);
  for (i = 0; i < s->nudp; i++) {
    if (s->kind == QPEER_RELAY_BIND && s->budp[i] == r->tx_sock)
      tx_flush(r);
    if (s->kind == QPEER_RELAY_BIND)
      qpeer__udp_close(&s->budp[i]->u, on_budp_closed);
    else
      uv_close((uv_handle_t *)&s->udp[i], on_udp_closed);
  }
  maybe_free_session(s);
}

/* ---- the data path
 * ----------------------------------------------------------- */

static int quota_pass(rsess *s, int to_client, size_t n) {
  relay *r = s->r;
  if (r->o.on_packet &&
      r->o.on_packet(r->handle, &s->client->pub, to_client, n)) {
    r->stats.dropped_quota++;
    return 0;
  }
  return 1;
}

static void count_in(rsess *s, size_t n) {
  s->r->stats.packets_in++;
  s->r->stats.bytes_in += n;
  s->client->pub.packets_in++;
  s->client->pub.bytes_in += n;
}

static void count_out(rsess *s, size_t n) {
  s->r->stats.packets_out++;
  s->r->stats.bytes_out += n;
  s->client->pub.packets_out++;
  s->client->pub.bytes_out += n;
}

static rctx *ctx_by_addr(rsess *s, const struct sockaddr *a) {
  size_t i;
  for (i = 0; i < s->nctx; i++)
    if (qpeer__addr_equal((const struct sockaddr *)&s->ctx[i].addr, a))
      return &s->ctx[i];
  return NULL;
}

static rctx *ctx_by_id(rsess *s, uint64_t id) {
  size_t i;
  for (i = 0; i < s->nctx; i++)
    if (s->ctx[i].id == id)
      return &s->ctx[i];
  return NULL;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  rsess *s = h->data;
  (void)suggested;
  *buf = uv_buf_init((char *)s->r->rxbuf, sizeof(s->r->rxbuf));
}

static void relay_in(rsess *s, const uint8_t *p, size_t n,
                     const struct sockaddr *addr);

/* A packet from the target of a tunnel. */
static void on_udp_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags) {
  rsess *s = u->data;
  relay *r = s->r;
  const uint8_t *p = (const uint8_t *)buf->base;
  size_t n = (size_t)nread;
  if (s->state != RS_OPEN || !s->rq)
    return;
  if (nread < 0) {
    /* RFC 9298 §5: an ICMP error from the target ends the tunnel. */
    if (s->kind == QPEER_RELAY_CONNECT_UDP && nread == UV_ECONNREFUSED)
      close_session(s, END_FIN, 0);
    return;
  }
  if (!addr || (flags & UV_UDP_PARTIAL)) {
    if (flags & UV_UDP_PARTIAL)
      r->stats.dropped_other++;
    return;
  }
  relay_in(s, p, n, addr);
}

/* A packet from the target (tunnel) or from a peer (binding) |addr| goes
 * to the client as an HTTP Datagram. */
static void relay_in(rsess *s, const uint8_t *p, size_t n,
                     const struct sockaddr *addr) {
  relay *r = s->r;
  int rv;
  s->last = uv_now(r->loop);
  if (!quota_pass(s, 1, n))
    return;
  if (s->kind == QPEER_RELAY_CONNECT_UDP) {
    rv = qpeer__h3req_send_datagram(s->rq, 0, NULL, 0, p, n);
  } else {
    struct sockaddr_storage from;
    rctx *c;
    qpeer__addr_normalize(&from, addr);
    c = ctx_by_addr(s, (const struct sockaddr *)&from);
    if (c) {
      rv = qpeer__h3req_send_datagram(s->rq, c->id, NULL, 0, p, n);
    } else if (s->uncomp_id) {
      uint8_t hdr[QPEER__H3_UNCOMPRESSED_V6_LEN];
      ssize_t hl = qpeer__h3_datagram_write_addr(
          hdr, sizeof(hdr), (const struct sockaddr *)&from);
      rv = hl < 0 ? (int)hl
                  : qpeer__h3req_send_datagram(s->rq, s->uncomp_id, hdr,
                                               (size_t)hl, p, n);
    } else {
      rv = UV_ENOENT; /* draft §4.3: no context for it: drop */
    }
  }
  if (rv == 0)
    count_in(s, n);
  else
    r->stats.dropped_other++;
}

/* A packet (or one datagram of a GRO train) at a binding's socket. */
static void on_budp_recv(qpeer__udp *u, const uint8_t *data, size_t len,
                         const struct sockaddr *from, int truncated) {
  rsess *s = QPEER__CONTAINER_OF(u, rudp, u)->s;
  if (s->state != RS_OPEN || !s->rq)
    return;
  if (truncated) {
    s->r->stats.dropped_other++;
    return;
  }
  relay_in(s, data, len, from);
  /* Keep the client's connection's datagram queue from overflowing
   * within one large receive batch: send what it holds now. */
  if (s->state == RS_OPEN && s->rc && s->rc->h3)
    qpeer__h3conn_flush_datagrams(s->rc->h3, 0);
}

/* After each receive batch: send the queued datagrams at once, as GSO
 * trains, instead of waiting for the end of the loop iteration. */
static void on_budp_batch(qpeer__udp *u) {
  rsess *s = QPEER__CONTAINER_OF(u, rudp, u)->s;
  if (s->state == RS_OPEN && s->rc && s->rc->h3)
    qpeer__h3conn_flush_datagrams(s->rc->h3, 1);
}

static qpeer__udp *socket_for(rsess *s, int family) {
  int i;
  for (i = 0; i < s->nudp; i++)
    if (s->budp[i] && s->budp[i]->u.fd >= 0 && s->budp[i]->u.family == family)
      return &s->budp[i]->u;
  return NULL;
}

/* Sends the pending train (UDP may lose it: errors are not reported). */
static void tx_flush(relay *r) {
  rudp *b = r->tx_sock;
  if (!b)
    return;
  r->tx_sock = NULL;
  if (b->u.fd >= 0 &&
      qpeer__udp_send(&b->u, (const struct sockaddr *)&r->tx_to, r->txbuf,
                      r->tx_len, r->tx_seg) != 0)
    r->stats.dropped_other += r->tx_n;
  r->tx_len = r->tx_n = 0;
  uv_check_stop(&r->txflush);
}

static void on_txflush(uv_check_t *c) { tx_flush(c->data); }

/* Sends a client's payload out of the binding to |to|: appended to the
 * pending train when it continues it, else after sending that. */
static int bind_send(rsess *s, const struct sockaddr *to, const uint8_t *p,
                     size_t n) {
  relay *r = s->r;
  qpeer__udp *u = socket_for(s, to->sa_family);
  rudp *b;
  if (!u)
    return UV_EAFNOSUPPORT;
  b = QPEER__CONTAINER_OF(u, rudp, u);
  if (n == 0 || n > QPEER__UDP_GSO_MAX_BYTES)
    return qpeer__udp_send(u, to, p, n, n);
  if (!r->txbuf && !(r->txbuf = qpeer__malloc(QPEER__UDP_GSO_MAX_BYTES)))
    return qpeer__udp_send(u, to, p, n, n);
  if (r->tx_sock &&
      (r->tx_sock != b || n > r->tx_seg ||
       r->tx_len + n > QPEER__UDP_GSO_MAX_BYTES ||
       r->tx_n >= QPEER__UDP_TX_BATCH ||
       !qpeer__addr_equal((const struct sockaddr *)&r->tx_to, to)))
    tx_flush(r);
  if (!r->tx_sock) {
    r->tx_sock = b;
    qpeer__addr_normalize(&r->tx_to, to);
    r->tx_seg = n;
    uv_check_start(&r->txflush, on_txflush);
  }
  memcpy(r->txbuf + r->tx_len, p, n);
  r->tx_len += n;
  r->tx_n++;
  if (n < r->tx_seg) /* a shorter segment ends a train */
    tx_flush(r);
  return 0;
}

static void h3_on_datagram(qpeer__h3req *rq, uint64_t ctx, const uint8_t *data,
                           size_t len, int capsule) {
  rsess *s = rq->data;
  relay *r;
  int rv;
  (void)capsule;
  if (!s || s->state != RS_OPEN) {
    if (s)
      s->r->stats.dropped_other++;
    return;
  }
  r = s->r;
  s->last = uv_now(r->loop);
  if (!quota_pass(s, 0, len))
    return;
  if (s->kind == QPEER_RELAY_CONNECT_UDP) {
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)data, (unsigned int)len);
    if (ctx != 0) {
      r->stats.dropped_other++; /* RFC 9298 §4: unknown context: drop */
      return;
    }
    rv = uv_udp_try_send(&s->udp[0], &b, 1, NULL);
    rv = rv < 0 ? rv : 0;
  } else if (ctx == 0) {
    /* draft §4.3: context 0 is not used with a "*" target. */
    close_session(s, END_ABORT, QPEER__H3_MESSAGE_ERROR);
    r->stats.dropped_other++;
    return;
  } else if (ctx == s->uncomp_id) {
    struct sockaddr_storage to;
    const uint8_t *p;
    size_t n;
    if (qpeer__h3_datagram_decode_uncompressed(data, len, &to, &p, &n) != 0) {
      r->stats.dropped_other++;
      return;
    }
    /* draft §7: every uncompressed destination passes the policy. */
    if (!target_ok(r, NULL, (const struct sockaddr *)&to)) {
      r->stats.dropped_policy++;
      return;
    }
    rv = bind_send(s, (const struct sockaddr *)&to, p, n);
    len = n;
  } else {
    rctx *c = ctx_by_id(s, ctx);
    if (!c) {
      r->stats.dropped_other++;
      return;
    }
    rv = bind_send(s, (const struct sockaddr *)&c->addr, data, len);
  }
  if (rv == 0)
    count_out(s, len);
  else
    r->stats.dropped_other++;
}

/* ---- the bind draft's contexts
 * -------------------------------------------------- */

static void send_ctx_capsule(rsess *s, int ack, uint64_t id) {
  uint8_t buf[32];
  ssize_t n =
      ack ? qpeer__capsule_write_compression_ack(buf, sizeof(buf), id)
          : qpeer__capsule_write_compression_close(buf, sizeof(buf), id);
  if (n > 0 && s->rq)
    qpeer__h3req_send_encoded(s->rq, buf, (size_t)n);
}

static void h3_on_capsule(qpeer__h3req *rq, uint64_t type, const uint8_t *v,
                          size_t len) {
  rsess *s = rq->data;
  relay *r;
  uint64_t id;
  if (!s || s->state != RS_OPEN || s->kind != QPEER_RELAY_BIND)
    return;
  r = s->r;
  if (type == QPEER__CAPSULE_COMPRESSION_ASSIGN) {
    qpeer__compression_assign a;
    if (qpeer__capsule_decode_compression_assign(v, len, &a) != 0 ||
        (a.context_id & 1) || a.context_id == s->uncomp_id ||
        ctx_by_id(s, a.context_id))
      goto malformed; /* odd (ours), or a repeated ID */
    if (a.ip_version == 0) {
      if (s->uncomp_id)
        goto malformed; /* only one uncompressed context at a time */
      s->uncomp_id = a.context_id;
      send_ctx_capsule(s, 1, a.context_id);
      return;
    }
    {
      struct sockaddr_storage t;
      qpeer__addr_normalize(&t, (const struct sockaddr *)&a.addr);
      if (ctx_by_addr(s, (const struct sockaddr *)&t))
        goto malformed; /* one context per tuple */
      if (!target_ok(r, NULL, (const struct sockaddr *)&t) ||
          s->nctx >= r->o.max_contexts) {
        if (!target_ok(r, NULL, (const struct sockaddr *)&t))
          r->stats.dropped_policy++;
        send_ctx_capsule(s, 0, a.context_id);
        return;
      }
      if (!s->ctx &&
          !(s->ctx = qpeer__calloc(r->o.max_contexts, sizeof(*s->ctx)))) {
        send_ctx_capsule(s, 0, a.context_id);
        return;
      }
      s->ctx[s->nctx].id = a.context_id;
      s->ctx[s->nctx].addr = t;
      s->nctx++;
      send_ctx_capsule(s, 1, a.context_id);
    }
    return;
  }
  if (type == QPEER__CAPSULE_COMPRESSION_ACK)
    goto malformed; /* we assign no contexts, so nothing can be ACKed */
  if (type == QPEER__CAPSULE_COMPRESSION_CLOSE) {
    rctx *c;
    if (qpeer__capsule_decode_compression_close(v, len, &id) != 0)
      goto malformed;
    if (id == s->uncomp_id)
      s->uncomp_id = 0;
    else if ((c = ctx_by_id(s, id)) != NULL)
      *c = s->ctx[--s->nctx];
  }
  return;
malformed:
  close_session(s, END_ABORT, QPEER__H3_MESSAGE_ERROR);
}

/* ---- requests
 * ------------------------------------------------------------------ */

static void count_rejection(relay *r, int status, const char *error) {
  if (status == 401)
    r->stats.rejected_unauthorized++;
  else if (status == 403 && error &&
           !strcmp(error, QPEER__PROXY_ERR_IP_PROHIBITED))
    r->stats.rejected_target++;
  else if (status == 403)
    r->stats.rejected_forbidden++;
  else if (status == 429 || status == 503)
    r->stats.rejected_quota++;
  else if (status == 400 || status == 431)
    r->stats.rejected_malformed++;
  else if (status == 404 || status == 405 || status == 501)
    r->stats.rejected_not_found++;
  else if (status == 502 && error && !strcmp(error, QPEER__PROXY_ERR_DNS_ERROR))
    r->stats.rejected_dns++;
  else
    r->stats.rejected_other++;
}

static void respond_error(relay *r, qpeer__h3req *rq, int status,
                          const char *error, const char *details) {
  nghttp3_nv nv[4];
  char st[8], ps[512];
  size_t n = 0;
  if (status < 400 || status > 599)
    status = 500;
  if (!error)
    error = status >= 500 ? QPEER__PROXY_ERR_INTERNAL
                          : QPEER__PROXY_ERR_REQUEST_DENIED;
  count_rejection(r, status, error);
  snprintf(st, sizeof(st), "%d", status);
  nv[n++] = qpeer__h3_nv(":status", st, 0);
  if (qpeer__proxy_status_format(ps, sizeof(ps), r->proxy_name, error,
                                 details) > 0)
    nv[n++] = qpeer__h3_nv(QPEER__HDR_PROXY_STATUS, ps, 0);
  if (status == 401)
    nv[n++] = qpeer__h3_nv("www-authenticate", "Bearer", 0);
  rq->data = NULL;
  qpeer__h3req_respond(rq, nv, n, 0);
}

static void set_df(uv_udp_t *u, int family) {
  uv_os_fd_t fd;
  int on = 1;
  if (uv_fileno((const uv_handle_t *)u, &fd) != 0)
    return;
#if defined(IP_MTU_DISCOVER) && defined(IP_PMTUDISC_PROBE)
  if (family == AF_INET) {
    int v = IP_PMTUDISC_PROBE; /* DF set, no path MTU cache */
    setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof(v));
  }
#endif
#ifdef IPV6_DONTFRAG
  if (family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, &on, sizeof(on));
#endif
  (void)on;
  (void)family;
}

/* Opens one socket of |s| bound to |local|. */
static int open_socket(rsess *s, const struct sockaddr *local) {
  uv_udp_t *u = &s->udp[s->nudp];
  unsigned int flags = local->sa_family == AF_INET6 ? UV_UDP_IPV6ONLY : 0;
  int r = uv_udp_init_ex(s->r->loop, u, local->sa_family);
  if (r != 0)
    return r;
  u->data = s;
  s->nudp++;
  s->nudp_open++;
  if ((r = uv_udp_bind(u, local, flags)) != 0)
    return r;
  set_df(u, local->sa_family);
  return 0;
}

/* Opens one socket of binding |s| bound to |local| (IPv6 only for an
 * IPv6 address; DF set). */
static int open_bind_socket(rsess *s, const struct sockaddr *local) {
  relay *r = s->r;
  rudp *b;
  int rv;
  if (!r->brx.buf && (rv = qpeer__udp_rx_init(&r->brx, 1)) != 0)
    return rv;
  if (!(b = qpeer__calloc(1, sizeof(*b))))
    return UV_ENOMEM;
  b->s = s;
  rv = qpeer__udp_open_shared(&b->u, r->loop, local,
                              local->sa_family == AF_INET6, &r->brx);
  if (rv != 0 && b->u.fd < 0) {
    qpeer__free(b); /* no socket, no handle */
    return rv;
  }
  /* The poll handle exists (even if starting it failed): closed with the
   * session. */
  b->u.on_recv = on_budp_recv;
  b->u.on_batch_end = on_budp_batch;
  s->budp[s->nudp++] = b;
  s->nudp_open++;
  return rv;
}

static void wildcard(struct sockaddr_storage *ss, int family) {
  memset(ss, 0, sizeof(*ss));
  ss->ss_family = (sa_family_t)family;
}

static const char *const ok_status = "200";

static void respond_ok(rsess *s, const char *ppa) {
  nghttp3_nv nv[4];
  size_t n = 0;
  nv[n++] = qpeer__h3_nv(":status", ok_status, 0);
  nv[n++] = qpeer__h3_nv(QPEER__HDR_CAPSULE_PROTOCOL, "?1", 0);
  if (ppa) {
    nv[n++] = qpeer__h3_nv(QPEER__HDR_CONNECT_UDP_BIND, "?1", 0);
    nv[n++] = qpeer__h3_nv(QPEER__HDR_PROXY_PUBLIC_ADDRESS, ppa, 0);
  }
  qpeer__h3req_respond(s->rq, nv, n, 1);
}

/* Opens the tunnel's socket to s->target and answers. */
static void open_tunnel(rsess *s) {
  relay *r = s->r;
  struct sockaddr_storage local;
  size_t i;
  int rv;
  wildcard(&local, s->target.ss_family);
  for (i = 0; i < r->nbind; i++)
    if (r->bind_addrs[i].ss_family == s->target.ss_family) {
      local = r->bind_addrs[i];
      qpeer__addr_set_port((struct sockaddr *)&local, 0);
      break;
    }
  if ((rv = open_socket(s, (const struct sockaddr *)&local)) != 0 ||
      (rv = uv_udp_connect(&s->udp[0], (const struct sockaddr *)&s->target)) !=
          0 ||
      (rv = uv_udp_recv_start(&s->udp[0], on_alloc, on_udp_recv)) != 0) {
    qpeer__log(QPEER_LOG_WARN, "relay: tunnel socket: %s", uv_strerror(rv));
    if (s->rq) {
      respond_error(r, s->rq, 502, QPEER__PROXY_ERR_DEST_UNAVAILABLE,
                    uv_strerror(rv));
      s->rq = NULL;
    }
    close_session(s, END_NONE, 0);
    return;
  }
  s->state = RS_OPEN;
  s->last = uv_now(r->loop);
  respond_ok(s, NULL);
}

/* Opens the binding's sockets and answers with their public addresses. */
static void open_bind(rsess *s) {
  relay *r = s->r;
  struct sockaddr_storage locals[2], pubs[2];
  char ppa[256];
  size_t nl = 0, np = 0, i, j;
  int rv = 0;
  if (r->nbind) {
    for (i = 0; i < r->nbind && nl < 2; i++)
      locals[nl++] = r->bind_addrs[i];
  } else {
    wildcard(&locals[nl++], s->rc->remote.ss_family);
  }
  for (i = 0; i < nl; i++) {
    struct sockaddr_storage got;
    if ((rv = open_bind_socket(s, (const struct sockaddr *)&locals[i])) != 0)
      break;
    got = s->budp[s->nudp - 1]->u.local;
    qpeer__addr_normalize(&pubs[np], (const struct sockaddr *)&got);
    if (qpeer__addr_is_any((const struct sockaddr *)&pubs[np])) {
      /* A wildcard socket: advertise a configured public address of its
       * family, else the address the client reached us on. */
      const struct sockaddr_storage *pick = NULL;
      for (j = 0; j < r->npub && !pick; j++)
        if (r->pub_addrs[j].ss_family == pubs[np].ss_family)
          pick = &r->pub_addrs[j];
      if (!pick && s->rc->local.ss_family == pubs[np].ss_family &&
          !qpeer__addr_is_any((const struct sockaddr *)&s->rc->local))
        pick = &s->rc->local;
      if (!pick)
        continue;
      {
        uint16_t port = qpeer__addr_port((const struct sockaddr *)&got);
        pubs[np] = *pick;
        qpeer__addr_set_port((struct sockaddr *)&pubs[np], port);
      }
    }
    np++;
  }
  if (rv != 0 || np == 0 ||
      qpeer__proxy_public_address_format(ppa, sizeof(ppa), pubs, np) < 0) {
    qpeer__log(QPEER_LOG_WARN, "relay: cannot bind a public address: %s",
               rv ? uv_strerror(rv) : "no usable address");
    if (s->rq) {
      respond_error(r, s->rq, 500, QPEER__PROXY_ERR_INTERNAL,
                    "no public address");
      s->rq = NULL;
    }
    close_session(s, END_NONE, 0);
    return;
  }
  s->state = RS_OPEN;
  s->last = uv_now(r->loop);
  respond_ok(s, ppa);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  rsess *s = req->data;
  relay *r = s->r;
  struct addrinfo *ai;
  s->gai_pending = 0;
  if (s->state != RS_RESOLVING) {
    uv_freeaddrinfo(res);
    maybe_free_session(s);
    return;
  }
  for (ai = status == 0 ? res : NULL; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
      break;
  if (!ai) {
    uv_freeaddrinfo(res);
    respond_error(r, s->rq, 502, QPEER__PROXY_ERR_DNS_ERROR,
                  status ? uv_strerror(status) : "no address");
    s->rq = NULL;
    close_session(s, END_NONE, 0);
    return;
  }
  qpeer__addr_normalize(&s->target, ai->ai_addr);
  qpeer__addr_set_port((struct sockaddr *)&s->target, s->target_port);
  uv_freeaddrinfo(res);
  if (!target_ok(r, NULL, (const struct sockaddr *)&s->target)) {
    respond_error(r, s->rq, 403, QPEER__PROXY_ERR_IP_PROHIBITED,
                  "target address not allowed");
    s->rq = NULL;
    close_session(s, END_NONE, 0);
    return;
  }
  open_tunnel(s);
}

/* Copies a header value into a NUL-terminated string (or NULL). */
static char *hdr_dup(qpeer__h3req *rq, const char *name) {
  size_t len = 0;
  const char *v = qpeer__h3req_header(rq, name, &len, NULL);
  return v ? qpeer__strndup(v, len) : NULL;
}

static int str_is(const char *v, size_t len, const char *s) {
  return v && len == strlen(s) && !memcmp(v, s, len);
}

static const char *bearer_of(const char *auth) {
  if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
    return NULL;
  auth += 7;
  while (*auth == ' ')
    auth++;
  return *auth ? auth : NULL;
}

static void handle_request(rconn *rc, qpeer__h3req *rq) {
  relay *r = rc->r;
  qpeer__connect_udp_target t;
  qpeer_relay_request_t req;
  qpeer_relay_verdict_t v;
  const char *m, *proto, *path, *why = NULL, *key;
  char *authority = NULL, *pathz = NULL, *authz = NULL, idtext[64];
  size_t mlen = 0, plen = 0, pathlen = 0, blen = 0;
  const char *bindv;
  rclient *client;
  rsess *s;
  int bind, isbind;

  rq->data = NULL;
  if (r->closing) {
    respond_error(r, rq, 503, QPEER__PROXY_ERR_INTERNAL, "shutting down");
    return;
  }
  m = qpeer__h3req_header(rq, ":method", &mlen, NULL);
  proto = qpeer__h3req_header(rq, ":protocol", &plen, NULL);
  path = qpeer__h3req_header(rq, ":path", &pathlen, NULL);
  if (!str_is(m, mlen, "CONNECT")) {
    respond_error(r, rq, 405, QPEER__PROXY_ERR_REQUEST_ERROR,
                  "only Extended CONNECT");
    return;
  }
  if (!str_is(proto, plen, QPEER__CONNECT_UDP_PROTOCOL) || !path) {
    respond_error(r, rq, 501, QPEER__PROXY_ERR_REQUEST_ERROR,
                  "only connect-udp");
    return;
  }
  if (qpeer__connect_udp_parse_path(NULL, path, pathlen, &t, &why) != 0) {
    size_t pl = strlen(QPEER__CONNECT_UDP_PATH_PREFIX);
    int ours =
        pathlen >= pl && !memcmp(path, QPEER__CONNECT_UDP_PATH_PREFIX, pl);
    respond_error(r, rq, ours ? 400 : 404, QPEER__PROXY_ERR_REQUEST_ERROR, why);
    return;
  }
  bindv = qpeer__h3req_header(rq, QPEER__HDR_CONNECT_UDP_BIND, &blen, NULL);
  {
    int rep = 0;
    qpeer__h3req_header(rq, QPEER__HDR_CONNECT_UDP_BIND, NULL, &rep);
    bind = !rep && bindv && qpeer__sf_boolean_is_true(bindv, blen);
  }
  isbind = t.kind == QPEER__CONNECT_UDP_BIND;
  if (isbind && !bind) {
    respond_error(r, rq, 400, QPEER__PROXY_ERR_REQUEST_ERROR,
                  "wildcard target without connect-udp-bind");
    return;
  }
  /* A bind request with a real target ("mixed mode") is served as plain
   * CONNECT-UDP without echoing connect-udp-bind, which the draft defines
   * as the answer of a proxy without bind support. */
  authority = hdr_dup(rq, ":authority");
  pathz = qpeer__strndup(path, pathlen);
  authz = hdr_dup(rq, "authorization");
  if (!pathz) {
    respond_error(r, rq, 500, NULL, "out of memory");
    goto done;
  }
  memset(&req, 0, sizeof(req));
  req.kind = isbind ? QPEER_RELAY_BIND : QPEER_RELAY_CONNECT_UDP;
  req.client_id = rc->have_peer_id ? &rc->peer_id : NULL;
  req.client_addr = (const struct sockaddr *)&rc->remote;
  req.authority = authority ? authority : "";
  req.path = pathz;
  req.authorization = authz;
  req.bearer_token = bearer_of(authz);
  req.target_host = isbind ? NULL : t.host;
  req.target_port = isbind ? 0 : t.port;
  req.headers = rq->hdrs;
  req.nheaders = rq->nhdrs;

  /* Access control. */
  memset(&v, 0, sizeof(v));
  if (r->o.access_cb)
    r->o.access_cb(r->handle, &req, &v);
  else if (!r->o.allow_anonymous)
    v.status = 401;
  if (v.status >= 300) {
    respond_error(r, rq, v.status, v.error,
                  v.details ? v.details : "access denied");
    goto done;
  }
  key = v.client_key;
  if (!key && rc->have_peer_id &&
      qpeer_peer_id_format(&rc->peer_id, idtext, sizeof(idtext)) >= 0)
    key = idtext;
  if (!key)
    key = rc->key;

  /* Quotas. */
  client = client_find(r, key);
  if ((isbind && client && client->pub.binds >= r->o.max_binds_per_client) ||
      (!isbind && client &&
       client->pub.tunnels >= r->o.max_tunnels_per_client)) {
    respond_error(r, rq, 429, QPEER__PROXY_ERR_REQUEST_DENIED,
                  "too many tunnels or bindings for this client");
    goto done;
  }
  if ((isbind && r->stats.binds_active >= r->o.max_binds) ||
      (!isbind && r->stats.tunnels_active >= r->o.max_tunnels)) {
    respond_error(r, rq, 503, QPEER__PROXY_ERR_REQUEST_DENIED,
                  "relay is at capacity");
    goto done;
  }

  /* Target policy for literal targets (names after resolution). */
  if (!isbind && t.kind != QPEER__CONNECT_UDP_NAME &&
      !target_ok(r, &req, (const struct sockaddr *)&t.addr)) {
    respond_error(r, rq, 403, QPEER__PROXY_ERR_IP_PROHIBITED,
                  "target address not allowed");
    goto done;
  }

  s = qpeer__calloc(1, sizeof(*s));
  if (!s || !(client = client_get(r, key))) {
    qpeer__free(s);
    respond_error(r, rq, 500, NULL, "out of memory");
    goto done;
  }
  s->r = r;
  s->rc = rc;
  s->rq = rq;
  s->kind = req.kind;
  s->client = client;
  client->refs++;
  s->gai.data = s;
  s->target_port = t.port;
  qpeer__list_insert_tail(&rc->sessions, &s->link);
  r->nsess++;
  rq->data = s;
  if (isbind) {
    client->pub.binds++;
    r->stats.binds++;
    r->stats.binds_active++;
    open_bind(s);
  } else {
    client->pub.tunnels++;
    r->stats.tunnels++;
    r->stats.tunnels_active++;
    if (t.kind == QPEER__CONNECT_UDP_NAME) {
      struct addrinfo hints;
      int rv;
      memset(&hints, 0, sizeof(hints));
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_DGRAM;
      s->state = RS_RESOLVING;
      rv = uv_getaddrinfo(r->loop, &s->gai, on_resolved, t.host, NULL, &hints);
      if (rv != 0) {
        respond_error(r, rq, 502, QPEER__PROXY_ERR_DNS_ERROR, uv_strerror(rv));
        s->rq = NULL;
        close_session(s, END_NONE, 0);
      } else {
        s->gai_pending = 1;
      }
    } else {
      qpeer__addr_normalize(&s->target, (const struct sockaddr *)&t.addr);
      open_tunnel(s);
    }
  }
done:
  qpeer__free(authority);
  qpeer__free(pathz);
  qpeer__free(authz);
}

/* ---- connections
 * ------------------------------------------------------------------ */

static void h3_on_request(qpeer__h3conn *h, qpeer__h3req *rq) {
  handle_request(qpeer__h3conn_data(h), rq);
}

static void h3_on_req_closed(qpeer__h3req *rq, int status) {
  rsess *s = rq->data;
  (void)status;
  if (!s)
    return;
  s->rq = NULL;
  close_session(s, END_NONE, 0);
}

static void close_conn_sessions(rconn *rc, int how) {
  qpeer__list *e;
  while ((e = qpeer__list_head(&rc->sessions)) != NULL) {
    rsess *s = QPEER__CONTAINER_OF(e, rsess, link);
    close_session(s, how, 0);
    s->rc = NULL;
  }
}

static void h3_on_closed(qpeer__h3conn *h, int status) {
  rconn *rc = qpeer__h3conn_data(h);
  (void)status;
  close_conn_sessions(rc, END_NONE);
}

static void rconn_free(rconn *rc) {
  relay *r = rc->r;
  qpeer__list_remove(&rc->link);
  qpeer__free(rc);
  r->nconns--;
  r->stats.connections_active--;
  maybe_finish(r);
}

static void h3_on_freed(qpeer__h3conn *h) {
  rconn *rc = qpeer__h3conn_data(h);
  const qpeer__h3_dgram_stats *d = qpeer__h3conn_dgram_stats(h);
  relay *r = rc->r;
  r->acc.tx_quic += d->tx_quic;
  r->acc.tx_capsule += d->tx_capsule;
  r->acc.rx_quic += d->rx_quic;
  r->acc.rx_capsule += d->rx_capsule;
  r->acc.tx_dropped += d->tx_dropped;
  r->acc.rx_dropped += d->rx_dropped;
  rconn_free(rc);
}

static const qpeer__h3conn_callbacks h3cbs = {
    .on_request = h3_on_request,
    .on_datagram = h3_on_datagram,
    .on_capsule = h3_on_capsule,
    .on_req_closed = h3_on_req_closed,
    .on_closed = h3_on_closed,
    .on_freed = h3_on_freed};

static void on_rc_conn_closed(qpeer_handle_t *h) {
  rconn_free(QPEER__CONTAINER_OF((qpeer_conn_t *)h, rconn, conn));
}

int qpeer_relay_accept(qpeer_relay_t *h, qpeer_endpoint_t *ep) {
  relay *r;
  rconn *rc;
  qpeer__h3conn_settings hs;
  qpeer_path_t path;
  qpeer__ep *e;
  int rv;
  if (!h || !(r = h->impl) || !ep || !(e = qpeer__ep_of(ep)))
    return UV_EINVAL;
  if (r->closing)
    return UV_EBUSY;
  rc = qpeer__calloc(1, sizeof(*rc));
  if (!rc)
    return UV_ENOMEM;
  rv = qpeer_endpoint_accept(ep, &rc->conn);
  if (rv != 0) {
    qpeer__free(rc);
    return rv;
  }
  rc->r = r;
  qpeer__list_init(&rc->sessions);
  qpeer__list_insert_tail(&r->conns, &rc->link);
  r->nconns++;
  r->stats.connections++;
  r->stats.connections_active++;
  rc->have_peer_id = qpeer_conn_get_peer_id(&rc->conn, &rc->peer_id) == 0;
  if (qpeer_conn_get_path(&rc->conn, &path) == 0) {
    rc->remote = path.remote;
    rc->local = path.local;
  }
  snprintf(rc->key, sizeof(rc->key), "conn:%llx",
           (unsigned long long)(uintptr_t)rc);
  if (e->opts.max_datagram_frame_size < QPEER__MASQUE_MIN_DATAGRAM_FRAME)
    qpeer__log(QPEER_LOG_WARN,
               "relay endpoint: max_datagram_frame_size %u is too small for "
               "full-size relayed packets (want >= %u); capsules will be used",
               (unsigned)e->opts.max_datagram_frame_size,
               (unsigned)QPEER__MASQUE_MIN_DATAGRAM_FRAME);
  memset(&hs, 0, sizeof(hs));
  hs.server = 1;
  hs.local_datagrams = e->opts.max_datagram_frame_size > 0;
  rv = qpeer__h3conn_new(&rc->h3, &rc->conn, &hs, &h3cbs, rc);
  if (rv != 0) {
    rc->h3 = NULL;
    qpeer_close((qpeer_handle_t *)&rc->conn, on_rc_conn_closed);
    return rv;
  }
  /* Shutting down: the client learns at once that it must go elsewhere
   * (GOAWAY 0: no request on this connection will be processed). */
  if (r->draining)
    qpeer__h3conn_goaway(rc->h3);
  return 0;
}

int qpeer_relay_shutdown(qpeer_relay_t *h) {
  relay *r;
  qpeer__list *e;
  if (!h || !(h->flags & QPEER__HANDLE_INIT) || !(r = h->impl) ||
      (h->flags & (QPEER__HANDLE_CLOSING | QPEER__HANDLE_CLOSED)))
    return UV_EINVAL;
  if (r->draining)
    return 0;
  r->draining = 1;
  for (e = r->conns.next; e != &r->conns; e = e->next) {
    rconn *rc = QPEER__CONTAINER_OF(e, rconn, link);
    if (rc->h3)
      qpeer__h3conn_goaway(rc->h3);
  }
  return 0;
}

/* ---- the sweep timer
 * --------------------------------------------------------------- */

static void on_sweep(uv_timer_t *t) {
  relay *r = t->data;
  uint64_t now = uv_now(r->loop);
  qpeer__list *e, *f, *fn;
  for (e = r->conns.next; e != &r->conns; e = e->next) {
    rconn *rc = QPEER__CONTAINER_OF(e, rconn, link);
    for (f = rc->sessions.next; f != &rc->sessions; f = fn) {
      rsess *s = QPEER__CONTAINER_OF(f, rsess, link);
      fn = f->next;
      if (s->state == RS_OPEN && now - s->last >= r->o.idle_timeout_ms) {
        r->stats.idle_closed++;
        close_session(s, END_FIN, 0);
      }
    }
  }
}

/* ---- the public functions
 * ------------------------------------------------------------ */

void qpeer_relay_options_default_versioned(int version,
                                           qpeer_relay_options_t *o) {
  (void)version;
  memset(o, 0, sizeof(*o));
  o->max_tunnels_per_client = 16;
  o->max_binds_per_client = 4;
  o->max_tunnels = 10000;
  o->max_binds = 10000;
  o->idle_timeout_ms = QPEER__RELAY_IDLE_MS_DEFAULT;
  o->max_contexts = 64;
}

static void relay_free(relay *r) {
  qpeer__free(r->txbuf);
  if (r->brx.buf)
    qpeer__udp_rx_free(&r->brx);
  qpeer__free(r->bind_addrs);
  qpeer__free(r->pub_addrs);
  qpeer__free(r->own);
  qpeer__free(r->proxy_name);
  qpeer__free(r);
}

static int copy_addrs(const struct sockaddr *const *in, size_t n,
                      struct sockaddr_storage **pout, size_t *pn) {
  size_t i;
  *pn = 0;
  *pout = NULL;
  if (!n)
    return 0;
  if (!in)
    return UV_EINVAL;
  *pout = qpeer__calloc(n, sizeof(**pout));
  if (!*pout)
    return UV_ENOMEM;
  for (i = 0; i < n; i++) {
    if (!in[i] || !qpeer__addr_len(in[i]))
      return UV_EINVAL;
    qpeer__addr_normalize(&(*pout)[i], in[i]);
  }
  *pn = n;
  return 0;
}

static void load_own_addrs(relay *r) {
  uv_interface_address_t *ifs;
  int n, i;
  if (uv_interface_addresses(&ifs, &n) != 0)
    return;
  r->own = qpeer__calloc((size_t)(n ? n : 1), sizeof(*r->own));
  if (r->own) {
    for (i = 0; i < n; i++)
      qpeer__addr_normalize(&r->own[r->nown++],
                            (const struct sockaddr *)&ifs[i].address);
  }
  uv_free_interface_addresses(ifs, n);
}

int qpeer_relay_init_versioned(uv_loop_t *loop, qpeer_relay_t *h, int version,
                               const qpeer_relay_options_t *o) {
  relay *r;
  qpeer_relay_options_t def;
  int rv;
  if (!loop || !h || version < 1 || version > QPEER_RELAY_OPTIONS_VERSION)
    return UV_EINVAL;
  if (!o) {
    qpeer_relay_options_default(&def);
    o = &def;
  }
  r = qpeer__calloc(1, sizeof(*r));
  if (!r)
    return UV_ENOMEM;
  r->o = *o;
  r->loop = loop;
  r->handle = h;
  qpeer__list_init(&r->conns);
  qpeer__list_init(&r->clients);
  if ((rv = copy_addrs(o->bind_addrs, o->nbind_addrs, &r->bind_addrs,
                       &r->nbind)) != 0 ||
      (rv = copy_addrs(o->public_addrs, o->npublic_addrs, &r->pub_addrs,
                       &r->npub)) != 0)
    goto fail;
  rv = UV_ENOMEM;
  if (!(r->proxy_name = qpeer__strdup(
            o->proxy_name ? o->proxy_name : QPEER__PROXY_STATUS_NAME)))
    goto fail;
  r->o.bind_addrs = r->o.public_addrs = NULL;
  r->o.proxy_name = NULL;
  if (!r->o.max_contexts)
    r->o.max_contexts = 64;
  if (!r->o.idle_timeout_ms)
    r->o.idle_timeout_ms = QPEER__RELAY_IDLE_MS_DEFAULT;
  load_own_addrs(r);
  if ((rv = uv_timer_init(loop, &r->sweep)) != 0)
    goto fail;
  uv_check_init(loop, &r->txflush); /* cannot fail */
  r->txflush.data = r;
  uv_unref((uv_handle_t *)&r->txflush);
  r->sweep.data = r;
  uv_timer_start(&r->sweep, on_sweep, QPEER__RELAY_SWEEP_MS,
                 QPEER__RELAY_SWEEP_MS);
  uv_unref((uv_handle_t *)&r->sweep);
  qpeer__handle_init((qpeer_handle_t *)h, loop, QPEER_RELAY);
  h->impl = r;
  return 0;
fail:
  relay_free(r);
  return rv;
}

int qpeer_relay_get_stats(const qpeer_relay_t *h, qpeer_relay_stats_t *st) {
  const relay *r = h ? h->impl : NULL;
  qpeer__h3_dgram_stats d;
  qpeer__list *e;
  if (!r || !st)
    return UV_EINVAL;
  d = r->acc;
  for (e = r->conns.next; e != &r->conns; e = e->next) {
    const rconn *rc = QPEER__CONTAINER_OF(e, rconn, link);
    if (rc->h3) {
      const qpeer__h3_dgram_stats *c = qpeer__h3conn_dgram_stats(rc->h3);
      d.tx_quic += c->tx_quic;
      d.tx_capsule += c->tx_capsule;
      d.rx_quic += c->rx_quic;
      d.rx_capsule += c->rx_capsule;
      d.tx_dropped += c->tx_dropped;
      d.rx_dropped += c->rx_dropped;
    }
  }
  *st = r->stats;
  st->tx_quic_datagrams = d.tx_quic;
  st->tx_capsules = d.tx_capsule;
  st->rx_quic_datagrams = d.rx_quic;
  st->rx_capsules = d.rx_capsule;
  st->dropped_other += d.tx_dropped + d.rx_dropped;
  return 0;
}

static void maybe_finish(relay *r) {
  qpeer_relay_t *h = r->handle;
  qpeer__list *e;
  if (!r->closing || !r->sweep_closed || !r->txflush_closed || r->nconns ||
      r->nsess)
    return;
  while ((e = qpeer__list_head(&r->clients)) != NULL)
    client_release(r, QPEER__CONTAINER_OF(e, rclient, link));
  h->impl = NULL;
  h->flags |= QPEER__HANDLE_CLOSED;
  relay_free(r);
  if (h->close_cb)
    h->close_cb((qpeer_handle_t *)h);
}

static void on_txflush_closed(uv_handle_t *t) {
  relay *r = t->data;
  r->txflush_closed = 1;
  maybe_finish(r);
}

static void on_sweep_closed(uv_handle_t *t) {
  relay *r = t->data;
  r->sweep_closed = 1;
  maybe_finish(r);
}

int qpeer__relay_close(qpeer_relay_t *h) {
  relay *r = h->impl;
  qpeer__list *e, *next;
  if (!r) {
    h->flags |= QPEER__HANDLE_CLOSED;
    return 0;
  }
  r->closing = 1;
  for (e = r->conns.next; e != &r->conns; e = next) {
    rconn *rc = QPEER__CONTAINER_OF(e, rconn, link);
    next = e->next;
    close_conn_sessions(rc, END_FIN);
    if (rc->h3)
      qpeer__h3conn_close(rc->h3, QPEER__H3_NO_ERROR, "relay shutting down");
  }
  uv_close((uv_handle_t *)&r->sweep, on_sweep_closed);
  uv_close((uv_handle_t *)&r->txflush, on_txflush_closed);
  return 0;
}

int qpeer_relay_close(qpeer_relay_t *h, qpeer_close_cb cb) {
  if (!h || !(h->flags & QPEER__HANDLE_INIT) || !h->impl)
    return UV_EINVAL;
  if (h->flags & (QPEER__HANDLE_CLOSING | QPEER__HANDLE_CLOSED))
    return UV_EALREADY;
  h->flags |= QPEER__HANDLE_CLOSING;
  h->close_cb = cb;
  return qpeer__relay_close(h);
}
