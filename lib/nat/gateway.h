/* SPDX-License-Identifier: MIT */
/*
 * Where the gateway is, and what kind of address it calls external. Pure:
 * the default-route parser takes the text of /proc/net/route (the caller
 * reads the file), and the classifier looks only at the address bytes.
 */
#ifndef QPEER_NAT_GATEWAY_H
#define QPEER_NAT_GATEWAY_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The Linux routing table as text; read this file to find the gateway. */
#define QPEER__ROUTE_FILE "/proc/net/route"

/* qpeer__gateway_parse_route finds the default IPv4 route with the lowest
 * metric in |text| (|len| bytes of /proc/net/route: a header line, then
 * "Iface Destination Gateway Flags RefCnt Use Metric Mask ..." with
 * addresses as host-order hex). Only routes that are up, go through a
 * gateway and have destination and mask 0 count. On success writes the
 * gateway (network byte order) to |*pgw| and returns 0; returns
 * QPEER_ENOGATEWAY when there is none. */
int qpeer__gateway_parse_route(const char *text, size_t len, uint32_t *pgw);

/* Address classes (bits; an address may have several). */
enum {
  QPEER__ADDR_PRIVATE = 0x01, /* RFC 1918, loopback, link-local, ULA,
                                 unspecified */
  QPEER__ADDR_CGNAT = 0x02,   /* 100.64.0.0/10 */
  QPEER__ADDR_RESERVED = 0x04 /* any other non-global special-purpose
                                 range (documentation, benchmarking,
                                 multicast, 240/4, 0/8, ...) */
};

/* qpeer__gateway_classify returns the QPEER__ADDR_* bits of |sa| (IPv4,
 * IPv6 or IPv4-mapped IPv6); 0 means a global unicast address. */
unsigned int qpeer__gateway_classify(const struct sockaddr *sa);

#endif /* QPEER_NAT_GATEWAY_H */
