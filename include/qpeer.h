/* SPDX-License-Identifier: MIT */
/*
 * qpeer: peer-to-peer QUIC across NATs, for libuv applications.
 * This umbrella header includes every public qpeer header.
 */
#ifndef QPEER_H
#define QPEER_H

#ifdef __cplusplus
extern "C" {
#endif

#include "qpeer/core.h"
#include "qpeer/errno.h"
#include "qpeer/version.h"
#include "qpeer/addr.h"
#include "qpeer/identity.h"
#include "qpeer/endpoint.h"
#include "qpeer/conn.h"
#include "qpeer/stream.h"
#include "qpeer/ticket.h"
#include "qpeer/candidate.h"
#include "qpeer/punch.h"
#include "qpeer/gather.h"
#include "qpeer/masque.h"
#include "qpeer/portmap.h"
#include "qpeer/stun.h"
#include "qpeer/netcheck.h"
#include "qpeer/bootstrap.h"
#include "qpeer/peer.h"

#ifdef __cplusplus
}
#endif

#endif /* QPEER_H */
