/* SPDX-License-Identifier: MIT */
/*
 * PCP client (RFC 6887) for one mapping: a UDP socket connected to the
 * server (gateway port 5351), one transaction at a time (MAP or ANNOUNCE)
 * retransmitted on RFC 6887 §8.1.1's schedule (IRT 3 s ±10 %, doubling,
 * MRT 1024 s) until the caller's deadline, the mapping nonce (random per
 * client object: renewals and the delete reuse it) and the server-epoch
 * check. Callbacks run from libuv callbacks, never inside these calls.
 */
#ifndef QPEER_NAT_PCP_H
#define QPEER_NAT_PCP_H

#include <uv.h>

#include "nat/pcp_msg.h"

#define QPEER__PCP_IRT_MS 3000u    /* initial retransmission time */
#define QPEER__PCP_MRT_MS 1024000u /* maximum retransmission time */

typedef struct qpeer__pcp qpeer__pcp;

/* The outcome of a transaction. */
typedef struct {
  /* 0 on success; UV_ETIMEDOUT at the deadline; a socket error such as
   * UV_ECONNREFUSED (ICMP: nothing listens on 5351); QPEER_EUNSUPPORTED
   * when the server does not speak PCP version 2 (a NAT-PMP-only gateway
   * answers with a version-0 reply); QPEER_EMAPREFUSED for an error
   * result (|res.result|, |res.lifetime| = how long it lasts). */
  int status;
  uint8_t opcode;          /* QPEER__PCP_OP_MAP or _ANNOUNCE */
  uint32_t req_lifetime;   /* requested lifetime (0: a delete) */
  int have_res;            /* |res| holds the response */
  qpeer__pcp_response res; /* the response */
  int epoch_lost;          /* the epoch check says the server lost state */
} qpeer__pcp_result;

typedef void (*qpeer__pcp_cb)(qpeer__pcp *p, const qpeer__pcp_result *r);
typedef void (*qpeer__pcp_close_cb)(qpeer__pcp *p);

struct qpeer__pcp {
  uv_loop_t *loop;                     /* the loop */
  uv_udp_t udp;                        /* socket connected to the server */
  uv_timer_t timer;                    /* retransmission and deadline */
  int nopen;                           /* uv handles not yet closed */
  int closing;                         /* qpeer__pcp_close was called */
  qpeer__pcp_close_cb close_cb;        /* runs once everything is closed */
  struct sockaddr_storage server;      /* server address and port */
  struct sockaddr_storage client;      /* our source address (getsockname) */
  uint8_t nonce[QPEER__PCP_NONCE_LEN]; /* mapping nonce */
  uint16_t internal_port;              /* the port mapped */
  qpeer__epoch epoch;                  /* server epoch tracking */
  /* The transaction in progress. */
  int busy;               /* a transaction is running */
  qpeer__pcp_request req; /* the request */
  uint8_t pkt[64];        /* its encoding */
  size_t pktlen;          /* its length */
  uint64_t deadline;      /* loop time (ms) to give up */
  uint64_t rt;            /* current retransmission timeout */
  uint64_t next_tx;       /* loop time of the next retransmission */
  unsigned int tx;        /* transmissions so far */
  int err;                /* error to report from the timer */
  qpeer__pcp_cb cb;       /* completion */
  uint8_t rbuf[QPEER__PCP_MAX_LEN + 4]; /* receive buffer */
  void *data;                           /* owner's context */
};

/* qpeer__pcp_init opens the socket, binds it to |bind_ip| (any address of
 * the server's family when NULL; its port is ignored) and connects it to
 * |server|. Draws a fresh nonce. Returns 0 or a UV_E* error; either way
 * the caller must close |p| with qpeer__pcp_close(). */
int qpeer__pcp_init(uv_loop_t *loop, qpeer__pcp *p,
                    const struct sockaddr *server,
                    const struct sockaddr *bind_ip, uint16_t internal_port);

/* qpeer__pcp_map sends a MAP request for UDP: |lifetime| seconds (0
 * deletes), suggesting |ext_port| and |ext_ip| (NULL: no preference). |cb|
 * runs once, with the result or at |timeout_ms|. Returns 0, UV_EBUSY or
 * UV_EINVAL. */
int qpeer__pcp_map(qpeer__pcp *p, uint32_t lifetime, uint16_t ext_port,
                   const struct sockaddr *ext_ip, uint64_t timeout_ms,
                   qpeer__pcp_cb cb);

/* qpeer__pcp_announce sends an ANNOUNCE request (reads the epoch without
 * changing anything). Same contract as qpeer__pcp_map. */
int qpeer__pcp_announce(qpeer__pcp *p, uint64_t timeout_ms, qpeer__pcp_cb cb);

/* qpeer__pcp_cancel ends the current transaction without its callback. */
void qpeer__pcp_cancel(qpeer__pcp *p);

/* qpeer__pcp_send_delete sends one MAP delete (lifetime 0, same nonce)
 * without waiting for an answer: cleanup of a request that may have been
 * granted. Best effort. */
void qpeer__pcp_send_delete(qpeer__pcp *p);

/* qpeer__pcp_close cancels any transaction and closes the socket and the
 * timer; |cb| runs when both are closed (then |p| may be freed): from a
 * libuv close callback, or at once if init opened nothing. */
void qpeer__pcp_close(qpeer__pcp *p, qpeer__pcp_close_cb cb);

#endif /* QPEER_NAT_PCP_H */
