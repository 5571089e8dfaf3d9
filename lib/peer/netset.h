/* SPDX-License-Identifier: MIT */
/*
 * Sets the listener and the dialer compare to notice network changes
 * (pure): the local interface-address set (normalized, sorted, without
 * ports) and the difference between two candidate sets.
 */
#ifndef QPEER_PEER_NETSET_H
#define QPEER_PEER_NETSET_H

#include <stddef.h>

#include "qpeer/candidate.h"

/* Most interface addresses a set keeps (the rest are ignored). */
#define QPEER__NETSET_MAX 64
/* Most candidates a difference covers. */
#define QPEER__CANDDIFF_MAX 32

/* qpeer__netset_norm normalizes |set| (|n| entries) in place: IPv4-mapped
 * IPv6 becomes IPv4, ports and IPv6 flow info are cleared, entries that
 * are neither AF_INET nor AF_INET6 are dropped, the rest is sorted and
 * duplicates removed. Returns the new count. */
size_t qpeer__netset_norm(struct sockaddr_storage *set, size_t n);

/* qpeer__netset_equal returns nonzero if the normalized sets |a| (|na|)
 * and |b| (|nb|) hold the same addresses. */
int qpeer__netset_equal(const struct sockaddr_storage *a, size_t na,
                        const struct sockaddr_storage *b, size_t nb);

/* The difference from an old to a new candidate set, by transport
 * address: indexes into the new set (|added|, |retyped|: same address,
 * other type or priority) and into the old one (|removed|). */
typedef struct {
  size_t nadded;                       /* entries in |added| */
  size_t added[QPEER__CANDDIFF_MAX];   /* new-set indexes */
  size_t nremoved;                     /* entries in |removed| */
  size_t removed[QPEER__CANDDIFF_MAX]; /* old-set indexes */
  size_t nretyped;                     /* entries in |retyped| */
  size_t retyped[QPEER__CANDDIFF_MAX]; /* new-set indexes */
} qpeer__canddiff;

/* qpeer__canddiff_compute fills |d| with the difference from |old|
 * (|nold|) to |cur| (|ncur|); at most QPEER__CANDDIFF_MAX entries of each
 * set are looked at. Returns nonzero if anything differs. */
int qpeer__canddiff_compute(qpeer__canddiff *d, const qpeer_candidate_t *old,
                            size_t nold, const qpeer_candidate_t *cur,
                            size_t ncur);

#endif /* QPEER_PEER_NETSET_H */
