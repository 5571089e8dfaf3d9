/* SPDX-License-Identifier: MIT */
/*
 * Internal side of the bootstrap cache (lib/peer/bootstrap.c): counters
 * that tests use to observe the I/O the public API hides.
 */
#ifndef QPEER_PEER_BOOTSTRAP_H
#define QPEER_PEER_BOOTSTRAP_H

#include "qpeer/bootstrap.h"

/* qpeer__bootstrap_write_count returns how many file writes |bc| has
 * finished (successful or not), asynchronous and synchronous alike. Save
 * requests that coalesced share one write. */
unsigned long qpeer__bootstrap_write_count(const qpeer_bootstrap_t *bc);

#endif /* QPEER_PEER_BOOTSTRAP_H */
