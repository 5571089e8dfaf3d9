/* SPDX-License-Identifier: MIT */
/*
 * The MASQUE relay (relay.c): HTTP/3 connections handed over by the
 * daemon's listener, each serving CONNECT-UDP tunnels (a connected UDP
 * socket per tunnel) and bindings (UDP sockets on the relay's public
 * address per binding), with access control, target policy, quotas, idle
 * timeouts and counters. The classification of target addresses is pure
 * and declared here for the unit tests.
 */
#ifndef QPEER_H3_RELAY_H
#define QPEER_H3_RELAY_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "internal.h"
#include "qpeer/masque.h"

/* Address classes of the default target policy. */
enum {
  QPEER__ADDR_PUBLIC = 0,  /* globally routable unicast */
  QPEER__ADDR_UNSPECIFIED, /* 0.0.0.0/8, :: */
  QPEER__ADDR_LOOPBACK,    /* 127/8, ::1 */
  QPEER__ADDR_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, 100.64/10,
                              fc00::/7 */
  QPEER__ADDR_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
  QPEER__ADDR_MULTICAST,   /* 224/4, ff00::/8 */
  QPEER__ADDR_BROADCAST,   /* 255.255.255.255 and 240/4 (reserved) */
  QPEER__ADDR_DISCARD      /* 100::/64 (RFC 6666) */
};

/* qpeer__relay_addr_class classifies |sa| (AF_INET or AF_INET6; an
 * IPv4-mapped IPv6 address is classified as IPv4). Unknown families are
 * QPEER__ADDR_UNSPECIFIED. */
int qpeer__relay_addr_class(const struct sockaddr *sa);

/* qpeer__relay_close closes the relay once qpeer_close() (or
 * qpeer_relay_close) has set the handle's CLOSING flag and close_cb. */
int qpeer__relay_close(qpeer_relay_t *relay);

/* Default idle timeout and sweep period of relay sessions. */
#define QPEER__RELAY_IDLE_MS_DEFAULT 120000
#define QPEER__RELAY_SWEEP_MS 1000

#endif /* QPEER_H3_RELAY_H */
