/* SPDX-License-Identifier: MIT */
/* The STUN retransmission schedule (see stun_rto.h). */
#include "nat/stun_rto.h"

#define NS_PER_MS 1000000ull

static void defaults(uint32_t *rto_ms, uint32_t *rc, uint32_t *rm) {
  if (*rto_ms == 0)
    *rto_ms = QPEER__STUN_RTO_DEFAULT_MS;
  if (*rto_ms > QPEER__STUN_RTO_MAX_MS)
    *rto_ms = QPEER__STUN_RTO_MAX_MS;
  if (*rc == 0)
    *rc = QPEER__STUN_RC_DEFAULT;
  if (*rc > QPEER__STUN_RC_MAX)
    *rc = QPEER__STUN_RC_MAX;
  if (*rm == 0)
    *rm = QPEER__STUN_RM_DEFAULT;
  if (*rm > QPEER__STUN_RM_MAX)
    *rm = QPEER__STUN_RM_MAX;
}

uint64_t qpeer__stun_rto_natural_end_ms(uint32_t rto_ms, uint32_t rc,
                                        uint32_t rm) {
  defaults(&rto_ms, &rc, &rm);
  /* The bounds keep this below 60000 * (2^15 + 64) ms: no overflow. */
  return (uint64_t)rto_ms * (((uint64_t)1 << (rc - 1)) - 1 + rm);
}

void qpeer__stun_rto_init(qpeer__stun_rto *s, uint64_t now, uint32_t rto_ms,
                          uint32_t rc, uint32_t rm, uint64_t timeout_ms) {
  uint64_t end;
  defaults(&rto_ms, &rc, &rm);
  end = qpeer__stun_rto_natural_end_ms(rto_ms, rc, rm);
  if (timeout_ms != 0 && timeout_ms < end)
    end = timeout_ms;
  s->start = now;
  s->deadline = now + end * NS_PER_MS;
  s->next = now;
  s->rto = (uint64_t)rto_ms * NS_PER_MS;
  s->sent = 0;
  s->rc = rc;
}

int qpeer__stun_rto_poll(qpeer__stun_rto *s, uint64_t now, uint64_t *pwake) {
  if (now >= s->deadline)
    return QPEER__STUN_RTO_FAIL;
  if (s->sent < s->rc && now >= s->next) {
    s->sent++;
    if (s->sent < s->rc) {
      /* Anchored on the schedule, so a slightly late timer does not drift;
       * a caller late by a whole interval gets no burst. */
      s->next += s->rto;
      if (s->next <= now)
        s->next = now + s->rto;
      s->rto *= 2;
    } else {
      s->next = UINT64_MAX;
    }
    *pwake = s->next < s->deadline ? s->next : s->deadline;
    return QPEER__STUN_RTO_SEND;
  }
  *pwake = s->next < s->deadline ? s->next : s->deadline;
  return QPEER__STUN_RTO_WAIT;
}
