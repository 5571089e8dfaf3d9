/* SPDX-License-Identifier: MIT */
/*
 * NAT-PMP client (RFC 6886) on libnatpmp. libnatpmp is non-blocking: it
 * owns a UDP socket connected to gateway:5351 (natpmp_t.s), sends and
 * retransmits (250 ms doubling, 9 tries) when asked, and parses replies.
 * Here a uv_poll_t watches that socket and a uv_timer_t calls it back at
 * its retransmission times and at the caller's deadline. Each transaction
 * gets a fresh natpmp_t (so a stale reply to an earlier request can never
 * be taken for the answer; libnatpmp 20150609 does not match replies to
 * requests). The server-epoch check is done here (libnatpmp only reports
 * the epoch).
 */
#ifndef QPEER_NAT_NATPMP_H
#define QPEER_NAT_NATPMP_H

#include <netinet/in.h>
#include <uv.h>

#include "nat/pcp_msg.h"

typedef struct qpeer__natpmp qpeer__natpmp;
typedef struct qpeer__natpmp_tx qpeer__natpmp_tx;

/* The outcome of a transaction. */
typedef struct {
  /* 0; UV_ETIMEDOUT at the deadline; QPEER_EUNSUPPORTED when the gateway
   * does not speak NAT-PMP (ICMP port unreachable, an unsupported-version
   * reply, or libnatpmp gave up after its 9 tries); QPEER_EMAPREFUSED for
   * an error result (|result|); another UV_E* for a local error. */
  int status;
  int op;                     /* QPEER__NATPMP_OP_PUBLIC_ADDR or _MAP_UDP */
  uint32_t req_lifetime;      /* requested lifetime (0: a delete) */
  uint16_t result;            /* NAT-PMP result code */
  int have_epoch;             /* |epoch| comes from a reply */
  uint32_t epoch;             /* seconds since start of epoch */
  int epoch_lost;             /* the epoch check says the state was lost */
  struct in_addr public_addr; /* public address response */
  uint16_t internal_port;     /* mapping response */
  uint16_t external_port;     /* mapping response: the port to use */
  uint32_t lifetime;          /* mapping response: granted seconds */
} qpeer__natpmp_result;

typedef void (*qpeer__natpmp_cb)(qpeer__natpmp *np,
                                 const qpeer__natpmp_result *r);
typedef void (*qpeer__natpmp_close_cb)(qpeer__natpmp *np);

struct qpeer__natpmp {
  uv_loop_t *loop;                 /* the loop */
  uint32_t gateway;                /* gateway IPv4 (network order) */
  uint16_t internal_port;          /* the port mapped */
  struct sockaddr_in local;        /* our source address (last socket) */
  qpeer__epoch epoch;              /* server epoch tracking */
  qpeer__natpmp_tx *tx;            /* transaction in progress, or NULL */
  int ntx;                         /* transactions not yet closed */
  int closing;                     /* qpeer__natpmp_close was called */
  qpeer__natpmp_close_cb close_cb; /* runs once all are closed */
  void *data;                      /* owner's context */
};

/* qpeer__natpmp_init prepares |np| (no I/O yet). */
void qpeer__natpmp_init(uv_loop_t *loop, qpeer__natpmp *np,
                        const struct sockaddr_in *gateway,
                        uint16_t internal_port);

/* qpeer__natpmp_public_addr asks for the external address (and epoch).
 * |cb| runs once, from a libuv callback. Returns 0, UV_EBUSY, UV_ENOMEM
 * or another UV_E* when the socket cannot be made (no callback then). */
int qpeer__natpmp_public_addr(qpeer__natpmp *np, uint64_t timeout_ms,
                              qpeer__natpmp_cb cb);

/* qpeer__natpmp_map requests a UDP mapping of the internal port for
 * |lifetime| seconds suggesting |ext_port| (lifetime 0 and port 0
 * delete). Same contract as qpeer__natpmp_public_addr. */
int qpeer__natpmp_map(qpeer__natpmp *np, uint16_t ext_port, uint32_t lifetime,
                      uint64_t timeout_ms, qpeer__natpmp_cb cb);

/* qpeer__natpmp_cancel ends the transaction in progress without its
 * callback. */
void qpeer__natpmp_cancel(qpeer__natpmp *np);

/* qpeer__natpmp_close cancels and closes everything; |cb| runs when the
 * last socket is closed (at once if none is open). */
void qpeer__natpmp_close(qpeer__natpmp *np, qpeer__natpmp_close_cb cb);

/* qpeer__natpmp_strerror names a libnatpmp return code. */
const char *qpeer__natpmp_strerror(int code);

#endif /* QPEER_NAT_NATPMP_H */
