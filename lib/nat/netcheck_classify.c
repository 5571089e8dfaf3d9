/* SPDX-License-Identifier: MIT */
/*
 * netcheck's pure classifiers (see netcheck.h) and the report helpers
 * that use them: mapping (RFC 4787 §4.1 from pairs of observations),
 * filtering (RFC 5780 §4.4), address classes, and double NAT.
 */
#include <arpa/inet.h>
#include <string.h>

#include "core/addr.h"
#include "internal.h"
#include "nat/netcheck.h"
#include "qpeer/stun.h"

/* same_ip compares the addresses of |a| and |b|, ignoring the ports. */
static int same_ip(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET)
    return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
  if (a->sa_family == AF_INET6)
    return !memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
                   &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
                   16);
  return 0;
}

qpeer_nat_mapping qpeer__netcheck_classify_mapping(const qpeer__nc_obs *obs,
                                                   size_t n, int no_nat) {
  size_t i, j;
  int differ = 0, two_ips = 0, same_ip_pair = 0, port_dep = 0;
  if (n == 0)
    return QPEER_NAT_MAPPING_UNKNOWN;
  if (no_nat)
    return QPEER_NAT_MAPPING_NONE;
  for (i = 0; i < n; i++) {
    for (j = i + 1; j < n; j++) {
      const struct sockaddr *si = (const void *)&obs[i].server;
      const struct sockaddr *sj = (const void *)&obs[j].server;
      int eq = qpeer__addr_equal((const void *)&obs[i].mapped,
                                 (const void *)&obs[j].mapped);
      if (qpeer__addr_equal(si, sj))
        continue; /* the same server twice says nothing */
      if (same_ip(si, sj)) {
        same_ip_pair = 1;
        if (!eq)
          port_dep = 1;
      } else {
        two_ips = 1;
      }
      if (!eq)
        differ = 1;
    }
  }
  if (!differ)
    return two_ips ? QPEER_NAT_MAPPING_ENDPOINT_INDEPENDENT
                   : QPEER_NAT_MAPPING_UNKNOWN;
  if (port_dep)
    return QPEER_NAT_MAPPING_ADDRESS_AND_PORT_DEPENDENT;
  if (same_ip_pair)
    return QPEER_NAT_MAPPING_ADDRESS_DEPENDENT;
  return QPEER_NAT_MAPPING_ENDPOINT_DEPENDENT;
}

qpeer_nat_filtering qpeer__netcheck_classify_filtering(int change_both,
                                                       int change_port) {
  if (change_both == QPEER__NC_TEST_RESPONSE)
    return QPEER_NAT_FILTERING_ENDPOINT_INDEPENDENT;
  if (change_both == QPEER__NC_TEST_NO_RESPONSE) {
    if (change_port == QPEER__NC_TEST_RESPONSE)
      return QPEER_NAT_FILTERING_ADDRESS_DEPENDENT;
    if (change_port == QPEER__NC_TEST_NO_RESPONSE)
      return QPEER_NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT;
    return QPEER_NAT_FILTERING_UNKNOWN;
  }
  if (change_both == QPEER__NC_TEST_UNUSABLE &&
      change_port == QPEER__NC_TEST_NO_RESPONSE)
    return QPEER_NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT;
  return QPEER_NAT_FILTERING_UNKNOWN;
}

int qpeer__netcheck_filter_outcome(int status, const struct sockaddr *server,
                                   const struct sockaddr *other,
                                   const struct sockaddr *source,
                                   unsigned int change) {
  int want_ip = (change & QPEER_STUN_CHANGE_IP) != 0;
  int want_port = (change & QPEER_STUN_CHANGE_PORT) != 0;
  /* A change the server's alternate address cannot show is unusable. */
  if (!other || other->sa_family != server->sa_family)
    return QPEER__NC_TEST_UNUSABLE;
  if (want_ip && same_ip(other, server))
    return QPEER__NC_TEST_UNUSABLE;
  if (want_port && qpeer__addr_port(other) == qpeer__addr_port(server))
    return QPEER__NC_TEST_UNUSABLE;
  if (status == UV_ETIMEDOUT)
    return QPEER__NC_TEST_NO_RESPONSE;
  if (status == UV_ECANCELED || status == 1)
    return QPEER__NC_TEST_NOT_RUN;
  if (status != 0)
    return QPEER__NC_TEST_UNUSABLE;
  /* The response must come from where the change puts it; a server that
   * ignored CHANGE-REQUEST answers from its own address. */
  if (!source || source->sa_family != server->sa_family)
    return QPEER__NC_TEST_UNUSABLE;
  if (want_ip == same_ip(source, server))
    return QPEER__NC_TEST_UNUSABLE;
  if (want_port ==
      (qpeer__addr_port(source) == qpeer__addr_port(server)))
    return QPEER__NC_TEST_UNUSABLE;
  return QPEER__NC_TEST_RESPONSE;
}

int qpeer__netcheck_addr_class(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    uint32_t a = ntohl(
        ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);
    if ((a & 0xffc00000u) == 0x64400000u) /* 100.64.0.0/10 */
      return QPEER__NC_ADDR_SHARED;
    if ((a & 0xff000000u) == 0x0a000000u ||  /* 10/8 */
        (a & 0xfff00000u) == 0xac100000u ||  /* 172.16/12 */
        (a & 0xffff0000u) == 0xc0a80000u ||  /* 192.168/16 */
        (a & 0xffff0000u) == 0xa9fe0000u ||  /* 169.254/16 */
        (a & 0xff000000u) == 0x7f000000u ||  /* 127/8 */
        a == 0)
      return QPEER__NC_ADDR_PRIVATE;
    return QPEER__NC_ADDR_PUBLIC;
  }
  if (sa->sa_family == AF_INET6) {
    const uint8_t *b =
        ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    const struct in6_addr *a6 =
        &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if ((b[0] & 0xfe) == 0xfc ||                    /* ULA fc00::/7 */
        (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) ||  /* fe80::/10 */
        IN6_IS_ADDR_LOOPBACK(a6) || IN6_IS_ADDR_UNSPECIFIED(a6))
      return QPEER__NC_ADDR_PRIVATE;
    return QPEER__NC_ADDR_PUBLIC;
  }
  return QPEER__NC_ADDR_PRIVATE;
}

void qpeer__netcheck_classify_double_nat(qpeer_netcheck_report_t *r) {
  const struct sockaddr *ext = (const void *)&r->portmap_external;
  const struct sockaddr *refl = (const void *)&r->ipv4.reflexive;
  unsigned int ev = 0;
  int path_single = 0, portmap_single = 0;
  if (r->portmap_status == 0 && ext->sa_family == AF_INET) {
    switch (qpeer__netcheck_addr_class(ext)) {
    case QPEER__NC_ADDR_PRIVATE:
      ev |= QPEER_NETCHECK_DNAT_PORTMAP_PRIVATE;
      break;
    case QPEER__NC_ADDR_SHARED:
      ev |= QPEER_NETCHECK_DNAT_PORTMAP_CGNAT;
      break;
    default:
      if (r->ipv4.works && refl->sa_family == AF_INET) {
        if (same_ip(ext, refl))
          portmap_single = 1;
        else
          ev |= QPEER_NETCHECK_DNAT_PORTMAP_MISMATCH;
      }
      break;
    }
  }
  /* The path: the first hop is our router. If its address is private,
   * the next hop is on its outside: a private or shared one there means
   * that outside is not the public internet. */
  if (r->nhops >= 2 && r->hops[0].kind == QPEER_NETCHECK_HOP_ROUTER &&
      r->hops[0].addr.ss_family == AF_INET &&
      qpeer__netcheck_addr_class((const void *)&r->hops[0].addr) !=
          QPEER__NC_ADDR_PUBLIC) {
    const qpeer_netcheck_hop_t *h2 = &r->hops[1];
    if (h2->kind == QPEER_NETCHECK_HOP_DESTINATION) {
      path_single = 1;
    } else if (h2->kind == QPEER_NETCHECK_HOP_ROUTER &&
               h2->addr.ss_family == AF_INET) {
      switch (qpeer__netcheck_addr_class((const void *)&h2->addr)) {
      case QPEER__NC_ADDR_SHARED:
        ev |= QPEER_NETCHECK_DNAT_PATH_CGNAT;
        break;
      case QPEER__NC_ADDR_PRIVATE:
        ev |= QPEER_NETCHECK_DNAT_PATH_PRIVATE;
        break;
      default:
        path_single = 1;
        break;
      }
    }
  }
  r->double_nat_evidence = ev;
  if (ev)
    r->double_nat = QPEER_NETCHECK_YES;
  else if (r->ipv4.mapping == QPEER_NAT_MAPPING_NONE || portmap_single ||
           path_single)
    r->double_nat = QPEER_NETCHECK_NO;
  else
    r->double_nat = QPEER_NETCHECK_UNKNOWN;
  if (ev & (QPEER_NETCHECK_DNAT_PORTMAP_CGNAT | QPEER_NETCHECK_DNAT_PATH_CGNAT))
    r->cgnat = QPEER_NETCHECK_YES;
  else if (r->double_nat == QPEER_NETCHECK_NO)
    r->cgnat = QPEER_NETCHECK_NO;
  else
    r->cgnat = QPEER_NETCHECK_UNKNOWN;
}

void qpeer__netcheck_report_init(qpeer_netcheck_report_t *r) {
  memset(r, 0, sizeof(*r));
  r->portmap_status = 1;
}

/* ---- public helpers ------------------------------------------------------ */

void qpeer_netcheck_report_set_portmap(qpeer_netcheck_report_t *r, int status,
                                       unsigned int protocol,
                                       unsigned int answered,
                                       const struct sockaddr *external) {
  if (!r)
    return;
  r->portmap_status = status;
  r->portmap_protocol = status == 0 ? protocol : 0;
  r->portmap_answered = answered;
  memset(&r->portmap_external, 0, sizeof(r->portmap_external));
  if (status == 0 && external &&
      (external->sa_family == AF_INET || external->sa_family == AF_INET6))
    qpeer__addr_normalize(&r->portmap_external, external);
  qpeer__netcheck_classify_double_nat(r);
}

void qpeer_netcheck_report_set_path(qpeer_netcheck_report_t *r,
                                    const qpeer_netcheck_hop_t *hops,
                                    size_t nhops) {
  size_t i;
  if (!r)
    return;
  if (!hops)
    nhops = 0;
  if (nhops > QPEER_NETCHECK_MAX_HOPS)
    nhops = QPEER_NETCHECK_MAX_HOPS;
  memset(r->hops, 0, sizeof(r->hops));
  for (i = 0; i < nhops; i++) {
    r->hops[i].kind = hops[i].kind;
    if (hops[i].addr.ss_family == AF_INET ||
        hops[i].addr.ss_family == AF_INET6)
      qpeer__addr_normalize(&r->hops[i].addr, (const void *)&hops[i].addr);
  }
  r->nhops = nhops;
  qpeer__netcheck_classify_double_nat(r);
}

const char *qpeer_nat_mapping_name(qpeer_nat_mapping m) {
  switch (m) {
  case QPEER_NAT_MAPPING_NONE:
    return "none";
  case QPEER_NAT_MAPPING_ENDPOINT_INDEPENDENT:
    return "endpoint-independent";
  case QPEER_NAT_MAPPING_ADDRESS_DEPENDENT:
    return "address-dependent";
  case QPEER_NAT_MAPPING_ADDRESS_AND_PORT_DEPENDENT:
    return "address-and-port-dependent";
  case QPEER_NAT_MAPPING_ENDPOINT_DEPENDENT:
    return "endpoint-dependent";
  default:
    return "unknown";
  }
}

const char *qpeer_nat_filtering_name(qpeer_nat_filtering f) {
  switch (f) {
  case QPEER_NAT_FILTERING_ENDPOINT_INDEPENDENT:
    return "endpoint-independent";
  case QPEER_NAT_FILTERING_ADDRESS_DEPENDENT:
    return "address-dependent";
  case QPEER_NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT:
    return "address-and-port-dependent";
  default:
    return "unknown";
  }
}
