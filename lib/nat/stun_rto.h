/* SPDX-License-Identifier: MIT */
/*
 * The STUN retransmission schedule over UDP (RFC 8489 §6.2.1), pure and
 * sans-I/O: the caller passes the time in, the schedule says whether to
 * transmit now, when to wake up next, or that the transaction has failed.
 *
 * With the RFC defaults (RTO 500 ms, Rc = 7, Rm = 16) requests go out at
 * 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s (the RTO doubles each time) and
 * the transaction fails at 39.5 s, Rm times the initial RTO after the last
 * request. An optional overall timeout ends it earlier.
 */
#ifndef QPEER_NAT_STUN_RTO_H
#define QPEER_NAT_STUN_RTO_H

#include <stdint.h>

#define QPEER__STUN_RTO_DEFAULT_MS 500 /* initial RTO */
#define QPEER__STUN_RC_DEFAULT 7       /* transmissions in total */
#define QPEER__STUN_RM_DEFAULT 16      /* last wait, in initial RTOs */
#define QPEER__STUN_RC_MAX 16          /* bound on Rc (keeps times finite) */
#define QPEER__STUN_RM_MAX 64          /* bound on Rm */
#define QPEER__STUN_RTO_MAX_MS 60000   /* bound on the initial RTO */

/* What qpeer__stun_rto_poll asks the caller to do. */
enum {
  QPEER__STUN_RTO_WAIT = 0, /* nothing now; wake up at *pwake */
  QPEER__STUN_RTO_SEND = 1, /* transmit the request now */
  QPEER__STUN_RTO_FAIL = 2  /* the transaction timed out */
};

typedef struct {
  uint64_t start;    /* first transmission is due (ns) */
  uint64_t deadline; /* when the transaction fails (ns) */
  uint64_t next;     /* next transmission is due (ns); UINT64_MAX: none */
  uint64_t rto;      /* interval before the transmission after next (ns) */
  uint32_t sent;     /* transmissions so far */
  uint32_t rc;       /* transmissions allowed */
} qpeer__stun_rto;

/* qpeer__stun_rto_init starts a schedule at |now| (ns): the first
 * transmission is due at once. |rto_ms|, |rc| and |rm| of 0 take the RFC
 * defaults; larger values are clamped to the bounds above. |timeout_ms| of
 * 0 means no overall cap (the schedule's own end, Rm x RTO after the last
 * transmission); otherwise the transaction fails at |now| + |timeout_ms|
 * or at the schedule's end, whichever is first. */
void qpeer__stun_rto_init(qpeer__stun_rto *s, uint64_t now, uint32_t rto_ms,
                          uint32_t rc, uint32_t rm, uint64_t timeout_ms);

/* qpeer__stun_rto_poll advances the schedule to |now| and returns
 * QPEER__STUN_RTO_SEND (the caller transmits once; the next transmission
 * is scheduled), QPEER__STUN_RTO_FAIL once the deadline has passed, or
 * QPEER__STUN_RTO_WAIT. Unless it fails it sets |*pwake| to the time it
 * next needs polling. A caller that was late gets one transmission, not a
 * burst: the next one is then due a full interval later. */
int qpeer__stun_rto_poll(qpeer__stun_rto *s, uint64_t now, uint64_t *pwake);

/* qpeer__stun_rto_natural_end_ms is the time from the first transmission
 * to failure without an overall cap: RTO * (2^(Rc-1) - 1 + Rm), after the
 * same defaults and clamping as init (39500 for the RFC defaults). */
uint64_t qpeer__stun_rto_natural_end_ms(uint32_t rto_ms, uint32_t rc,
                                        uint32_t rm);

#endif /* QPEER_NAT_STUN_RTO_H */
