/* SPDX-License-Identifier: MIT */
/*
 * NAT-PMP glue over libnatpmp: a transaction (natpmp_t + uv_poll_t +
 * uv_timer_t) per request, reading replies, translating libnatpmp's codes,
 * the epoch check, and closing (the poll handle is closed before
 * closenatpmp() closes the descriptor it watches).
 */
#define ENABLE_STRNATPMPERR 1 /* declares strnatpmperr() */
#include <natpmp.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"
#include "nat/natpmp.h"

struct qpeer__natpmp_tx {
  qpeer__natpmp *owner;  /* the client */
  natpmp_t nat;          /* libnatpmp state and socket */
  int nat_open;          /* nat holds an open socket */
  uv_poll_t poll;        /* watches nat.s */
  uv_timer_t timer;      /* libnatpmp retries and the deadline */
  int nopen;             /* uv handles not yet closed */
  int op;                /* QPEER__NATPMP_OP_* */
  uint32_t req_lifetime; /* requested lifetime */
  uint16_t ext_port;     /* suggested external port */
  uint64_t deadline;     /* loop time (ms) to give up */
  int err;               /* error to report from the timer */
  qpeer__natpmp_cb cb;   /* completion */
};

const char *qpeer__natpmp_strerror(int code) { return strnatpmperr(code); }

/* tx_free closes the descriptor (after the poll handle is closed) and
 * releases |tx|. */
static void tx_free(qpeer__natpmp_tx *tx) {
  qpeer__natpmp *np = tx->owner;
  if (tx->nat_open)
    closenatpmp(&tx->nat);
  qpeer__free(tx);
  if (--np->ntx == 0 && np->closing && np->close_cb)
    np->close_cb(np);
}

static void tx_closed(uv_handle_t *h) {
  qpeer__natpmp_tx *tx = h->data;
  if (--tx->nopen == 0)
    tx_free(tx);
}

/* tx_close detaches |tx| from its owner and closes it. */
static void tx_close(qpeer__natpmp_tx *tx) {
  qpeer__natpmp *np = tx->owner;
  if (np->tx == tx)
    np->tx = NULL;
  tx->cb = NULL;
  tx->poll.data = tx;
  tx->timer.data = tx;
  if (tx->nopen == 0) { /* nothing to wait for */
    tx_free(tx);
    return;
  }
  uv_close((uv_handle_t *)&tx->poll, tx_closed);
  if (tx->nopen >= 2)
    uv_close((uv_handle_t *)&tx->timer, tx_closed);
}

static void finish(qpeer__natpmp_tx *tx, qpeer__natpmp_result *r) {
  qpeer__natpmp_cb cb = tx->cb;
  qpeer__natpmp *np = tx->owner;
  r->op = tx->op;
  r->req_lifetime = tx->req_lifetime;
  if (r->have_epoch)
    r->epoch_lost =
        qpeer__natpmp_epoch_update(&np->epoch, r->epoch, uv_now(np->loop));
  tx_close(tx);
  if (cb)
    cb(np, r);
}

static void finish_status(qpeer__natpmp_tx *tx, int status) {
  qpeer__natpmp_result r;
  memset(&r, 0, sizeof(r));
  r.status = status;
  finish(tx, &r);
}

/* send_request (re)sends the transaction's request; libnatpmp restarts its
 * retry schedule. Returns 0 or a libnatpmp error. */
static int send_request(qpeer__natpmp_tx *tx) {
  int rv;
  if (tx->op == QPEER__NATPMP_OP_PUBLIC_ADDR)
    rv = sendpublicaddressrequest(&tx->nat);
  else
    rv = sendnewportmappingrequest(&tx->nat, NATPMP_PROTOCOL_UDP,
                                   tx->owner->internal_port, tx->ext_port,
                                   tx->req_lifetime);
  return rv < 0 ? rv : 0;
}

static void on_timer(uv_timer_t *t);

/* arm sets the timer to libnatpmp's next retry time or the deadline. */
static void arm(qpeer__natpmp_tx *tx) {
  uint64_t now = uv_now(tx->owner->loop), at = tx->deadline;
  struct timeval tv;
  if (getnatpmprequesttimeout(&tx->nat, &tv) == 0) {
    int64_t ms = (int64_t)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
    uint64_t retry = now + (uint64_t)(ms > 0 ? ms : 0);
    at = QPEER__MIN(at, retry);
  }
  uv_timer_start(&tx->timer, on_timer, at > now ? at - now : 0, 0);
}

/* on_response checks a successful reply against the request. Returns 1 if
 * it finished the transaction, 0 if it was stale (then it re-sends). */
static int on_response(qpeer__natpmp_tx *tx, const natpmpresp_t *resp) {
  qpeer__natpmp_result r;
  int want = tx->op == QPEER__NATPMP_OP_PUBLIC_ADDR
                 ? NATPMP_RESPTYPE_PUBLICADDRESS
                 : NATPMP_RESPTYPE_UDPPORTMAPPING;
  if (resp->type != want ||
      (want == NATPMP_RESPTYPE_UDPPORTMAPPING &&
       resp->pnu.newportmapping.privateport != tx->owner->internal_port)) {
    QPEER__LOG_DEBUG("nat-pmp: stale reply (type %u); re-sending",
                     (unsigned)resp->type);
    if (send_request(tx) != 0)
      tx->err = UV_EIO;
    return 0;
  }
  memset(&r, 0, sizeof(r));
  r.have_epoch = 1;
  r.epoch = resp->epoch;
  if (want == NATPMP_RESPTYPE_PUBLICADDRESS) {
    r.public_addr = resp->pnu.publicaddress.addr;
  } else {
    r.internal_port = resp->pnu.newportmapping.privateport;
    r.external_port = resp->pnu.newportmapping.mappedpublicport;
    r.lifetime = resp->pnu.newportmapping.lifetime;
  }
  finish(tx, &r);
  return 1;
}

/* drain reads every reply waiting (and lets libnatpmp retransmit when its
 * retry time has come). Returns 1 if the transaction finished. */
static int drain(qpeer__natpmp_tx *tx) {
  natpmpresp_t resp;
  qpeer__natpmp_result r;
  int i, rv;
  for (i = 0; i < 16; i++) {
    memset(&resp, 0, sizeof(resp));
    rv = readnatpmpresponseorretry(&tx->nat, &resp);
    switch (rv) {
    case 0:
      if (on_response(tx, &resp))
        return 1;
      continue;
    case NATPMP_TRYAGAIN:
    case NATPMP_ERR_NOPENDINGREQ:
      return 0;
    case NATPMP_ERR_WRONGPACKETSOURCE:
      continue;
    case NATPMP_ERR_NOGATEWAYSUPPORT:
    case NATPMP_ERR_UNSUPPORTEDVERSION:
      QPEER__LOG_DEBUG("nat-pmp: %s", strnatpmperr(rv));
      finish_status(tx, QPEER_EUNSUPPORTED);
      return 1;
    case NATPMP_ERR_UNSUPPORTEDOPCODE:
    case NATPMP_ERR_UNDEFINEDERROR:
    case NATPMP_ERR_NOTAUTHORIZED:
    case NATPMP_ERR_NETWORKFAILURE:
    case NATPMP_ERR_OUTOFRESOURCES:
      QPEER__LOG_DEBUG("nat-pmp: refused: %s (result %u)", strnatpmperr(rv),
                       (unsigned)resp.resultcode);
      memset(&r, 0, sizeof(r));
      r.status = QPEER_EMAPREFUSED;
      r.result = resp.resultcode;
      r.have_epoch = 1;
      r.epoch = resp.epoch;
      finish(tx, &r);
      return 1;
    default:
      QPEER__LOG_DEBUG("nat-pmp: %s (%d)", strnatpmperr(rv), rv);
      finish_status(tx, UV_EIO);
      return 1;
    }
  }
  return 0;
}

static void on_poll(uv_poll_t *p, int status, int events) {
  qpeer__natpmp_tx *tx = QPEER__CONTAINER_OF(p, qpeer__natpmp_tx, poll);
  (void)events;
  if (!tx->cb)
    return;
  if (status < 0) {
    /* libuv reports POLLERR as UV_EBADF and stops polling: the error is
     * pending on the socket (ICMP port unreachable: no NAT-PMP), and
     * reading it tells libnatpmp. */
    if (!drain(tx))
      finish_status(tx, status == UV_EBADF ? QPEER_EUNSUPPORTED : status);
    return;
  }
  if (!drain(tx))
    arm(tx);
}

static void on_timer(uv_timer_t *t) {
  qpeer__natpmp_tx *tx = QPEER__CONTAINER_OF(t, qpeer__natpmp_tx, timer);
  if (!tx->cb)
    return;
  if (tx->err) {
    finish_status(tx, tx->err);
    return;
  }
  if (uv_now(tx->owner->loop) >= tx->deadline) {
    finish_status(tx, UV_ETIMEDOUT);
    return;
  }
  if (!drain(tx))
    arm(tx);
}

static int tx_start(qpeer__natpmp *np, int op, uint16_t ext_port,
                    uint32_t lifetime, uint64_t timeout_ms,
                    qpeer__natpmp_cb cb) {
  qpeer__natpmp_tx *tx;
  int rv;
  if (np->tx)
    return UV_EBUSY;
  if (np->closing)
    return UV_EINVAL;
  tx = qpeer__calloc(1, sizeof(*tx));
  if (!tx)
    return UV_ENOMEM;
  tx->owner = np;
  tx->op = op;
  tx->ext_port = ext_port;
  tx->req_lifetime = lifetime;
  tx->deadline = uv_now(np->loop) + timeout_ms;
  np->ntx++;
  rv = initnatpmp(&tx->nat, 1, np->gateway);
  if (rv < 0) {
    QPEER__LOG_DEBUG("nat-pmp: init: %s", strnatpmperr(rv));
    if (rv != NATPMP_ERR_SOCKETERROR && rv != NATPMP_ERR_INVALIDARGS)
      tx->nat_open = 1;
    tx_close(tx);
    return UV_EIO;
  }
  tx->nat_open = 1;
  {
    struct sockaddr_in local;
    socklen_t len = sizeof(local);
    if (getsockname(tx->nat.s, (struct sockaddr *)&local, &len) == 0 &&
        local.sin_family == AF_INET)
      np->local = local;
  }
  if ((rv = uv_poll_init(np->loop, &tx->poll, tx->nat.s)) != 0) {
    tx_close(tx);
    return rv;
  }
  tx->nopen = 1;
  if ((rv = uv_timer_init(np->loop, &tx->timer)) != 0) {
    tx_close(tx);
    return rv;
  }
  tx->nopen = 2;
  if ((rv = uv_poll_start(&tx->poll, UV_READABLE, on_poll)) != 0) {
    tx_close(tx);
    return rv;
  }
  np->tx = tx;
  tx->cb = cb;
  if (send_request(tx) != 0)
    tx->err = UV_EIO; /* reported from the timer */
  if (tx->err)
    uv_timer_start(&tx->timer, on_timer, 0, 0);
  else
    arm(tx);
  return 0;
}

void qpeer__natpmp_init(uv_loop_t *loop, qpeer__natpmp *np,
                        const struct sockaddr_in *gateway,
                        uint16_t internal_port) {
  memset(np, 0, sizeof(*np));
  np->loop = loop;
  np->gateway = gateway->sin_addr.s_addr;
  np->internal_port = internal_port;
}

int qpeer__natpmp_public_addr(qpeer__natpmp *np, uint64_t timeout_ms,
                              qpeer__natpmp_cb cb) {
  return tx_start(np, QPEER__NATPMP_OP_PUBLIC_ADDR, 0, 0, timeout_ms, cb);
}

int qpeer__natpmp_map(qpeer__natpmp *np, uint16_t ext_port, uint32_t lifetime,
                      uint64_t timeout_ms, qpeer__natpmp_cb cb) {
  return tx_start(np, QPEER__NATPMP_OP_MAP_UDP, ext_port, lifetime, timeout_ms,
                  cb);
}

void qpeer__natpmp_cancel(qpeer__natpmp *np) {
  if (np->tx)
    tx_close(np->tx);
}

void qpeer__natpmp_close(qpeer__natpmp *np, qpeer__natpmp_close_cb cb) {
  np->closing = 1;
  np->close_cb = cb;
  if (np->ntx == 0) {
    if (cb)
      cb(np);
    return;
  }
  qpeer__natpmp_cancel(np); /* the last tx_free calls |cb| */
}
