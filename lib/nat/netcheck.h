/* SPDX-License-Identifier: MIT */
/*
 * netcheck internals: the pure classifiers that turn observations into
 * the report's verdicts (netcheck_classify.c, unit-tested on their own),
 * used by the I/O shell in netcheck.c.
 */
#ifndef QPEER_NAT_NETCHECK_H
#define QPEER_NAT_NETCHECK_H

#include <stddef.h>
#include <sys/socket.h>

#include "qpeer/netcheck.h"

/* One answered Binding request: the server, and our address as it saw
 * it. */
typedef struct {
  struct sockaddr_storage server; /* the server's address */
  struct sockaddr_storage mapped; /* the reflexive address it reported */
} qpeer__nc_obs;

/* qpeer__netcheck_classify_mapping derives the mapping behaviour from |n|
 * observations of one address family. |no_nat| says the caller found the
 * reflexive address to be one of the host's own (address and port): no
 * NAT. Otherwise: equal mappings towards two or more server IPs is
 * endpoint-independent; a mapping that differs between two ports of one
 * server IP is address-and-port-dependent; one that differs only across
 * IPs, while the ports of one IP agree, is address-dependent; differing
 * mappings with no same-IP pair to compare is "endpoint-dependent"; too
 * little data (one server IP) is unknown. Observations towards the very
 * same server address are not compared with each other. */
qpeer_nat_mapping qpeer__netcheck_classify_mapping(const qpeer__nc_obs *obs,
                                                   size_t n, int no_nat);

/* Outcome of one RFC 5780 filtering test. */
enum {
  QPEER__NC_TEST_NOT_RUN = 0,     /* not run (no RFC 5780 server) */
  QPEER__NC_TEST_NO_RESPONSE = 1, /* the changed response never came */
  QPEER__NC_TEST_RESPONSE = 2,    /* it came, from the expected address */
  QPEER__NC_TEST_UNUSABLE = 3     /* the server cannot (or did not) make
                                     that change, or refused the request */
};

/* qpeer__netcheck_classify_filtering applies RFC 5780 §4.4 to the
 * outcomes of test II (change IP and port) and test III (change port):
 * a response to II is endpoint-independent filtering; none to II but one
 * to III is address-dependent; none to either is
 * address-and-port-dependent. If the server cannot change its IP (II
 * unusable), no response to III still proves address-and-port-dependent
 * filtering; anything else is unknown. */
qpeer_nat_filtering qpeer__netcheck_classify_filtering(int change_both,
                                                       int change_port);

/* qpeer__netcheck_filter_outcome judges one filtering test: |status| of
 * the STUN request, the server it went to, the source of the response,
 * and which changes were asked for (QPEER_STUN_CHANGE_*) and possible
 * (|other|: the server's OTHER-ADDRESS). */
int qpeer__netcheck_filter_outcome(int status, const struct sockaddr *server,
                                   const struct sockaddr *other,
                                   const struct sockaddr *source,
                                   unsigned int change);

/* Address classes for the double-NAT rules. */
enum {
  QPEER__NC_ADDR_PUBLIC = 0,  /* anything else (documentation ranges too) */
  QPEER__NC_ADDR_PRIVATE = 1, /* RFC 1918, loopback, link-local, ULA,
                                 unspecified */
  QPEER__NC_ADDR_SHARED = 2   /* 100.64.0.0/10 (RFC 6598, CGNAT) */
};
int qpeer__netcheck_addr_class(const struct sockaddr *sa);

/* qpeer__netcheck_classify_double_nat recomputes double_nat, cgnat and
 * double_nat_evidence of |r| from its IPv4 mapping and reflexive address,
 * its port-mapping fields and its path (see the public setters). */
void qpeer__netcheck_classify_double_nat(qpeer_netcheck_report_t *r);

/* qpeer__netcheck_report_init empties |r| (unknowns, no path, port
 * mapping not tried). */
void qpeer__netcheck_report_init(qpeer_netcheck_report_t *r);

#endif /* QPEER_NAT_NETCHECK_H */
