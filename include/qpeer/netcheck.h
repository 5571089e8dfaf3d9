/* SPDX-License-Identifier: MIT */
/*
 * qpeer_netcheck_t: a one-shot survey of what the network does to an
 * endpoint's UDP socket, measured with STUN on that very socket: whether
 * UDP gets out at all, over IPv4 and IPv6, the reflexive address and
 * latency seen by each STUN server, the NAT's mapping behaviour (does the
 * public mapping depend on the destination?), its filtering behaviour
 * (RFC 5780 CHANGE-REQUEST, where a server supports it), hairpinning, and
 * double NAT / CGNAT from whatever evidence the caller adds (the path to a
 * server, a port mapping). doc/netcheck.md explains each field and how it
 * is measured.
 */
#ifndef QPEER_NETCHECK_H
#define QPEER_NETCHECK_H

#include "qpeer/endpoint.h"

typedef struct qpeer_netcheck_s qpeer_netcheck_t;

/** NAT mapping behaviour (RFC 4787 §4.1). */
typedef enum {
  QPEER_NAT_MAPPING_UNKNOWN = 0, /* not enough answers to tell */
  QPEER_NAT_MAPPING_NONE = 1,    /* no NAT: servers see our own address */
  /* Every destination sees the same public address and port. */
  QPEER_NAT_MAPPING_ENDPOINT_INDEPENDENT = 2,
  /* The mapping changes with the destination IP, not its port. */
  QPEER_NAT_MAPPING_ADDRESS_DEPENDENT = 3,
  /* The mapping changes with the destination IP and port ("symmetric"). */
  QPEER_NAT_MAPPING_ADDRESS_AND_PORT_DEPENDENT = 4,
  /* The mapping changes with the destination; whether the destination
   * port alone matters was not measured (no server pair on one IP). */
  QPEER_NAT_MAPPING_ENDPOINT_DEPENDENT = 5
} qpeer_nat_mapping;

/** NAT (or firewall) filtering behaviour (RFC 4787 §5). */
typedef enum {
  QPEER_NAT_FILTERING_UNKNOWN = 0, /* no RFC 5780 server, or inconclusive */
  /* Anyone may send to the mapping once it exists ("full cone"). */
  QPEER_NAT_FILTERING_ENDPOINT_INDEPENDENT = 1,
  /* Only IP addresses we sent to may send back, from any port. */
  QPEER_NAT_FILTERING_ADDRESS_DEPENDENT = 2,
  /* Only the exact address and port we sent to may send back. */
  QPEER_NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT = 3
} qpeer_nat_filtering;

/** A yes / no that may not have been measurable. */
typedef enum {
  QPEER_NETCHECK_UNKNOWN = 0,
  QPEER_NETCHECK_NO = 1,
  QPEER_NETCHECK_YES = 2
} qpeer_netcheck_tri;

#define QPEER_NETCHECK_MAX_SERVERS 8 /* STUN servers in the options */
#define QPEER_NETCHECK_MAX_PROBES 16 /* report entries (+ RFC 5780 ones) */
#define QPEER_NETCHECK_MAX_HOPS 8    /* path hops in the report */

/* qpeer_netcheck_probe_t.flags */
enum {
  QPEER_NETCHECK_PROBE_USER = 0x01,     /* a server from the options */
  QPEER_NETCHECK_PROBE_ALTERNATE = 0x02 /* an RFC 5780 alternate address
                                           of one (OTHER-ADDRESS) */
};

/** One STUN Binding transaction from the endpoint's socket. */
typedef struct qpeer_netcheck_probe_s {
  struct sockaddr_storage server;    /* where the request went */
  /* 0 (answered), 1 (not run: the deadline came first), or the request's
   * error: UV_ETIMEDOUT, QPEER_ESTUN, UV_EAFNOSUPPORT, UV_ENETUNREACH... */
  int status;
  int error_code;                    /* STUN ERROR-CODE when QPEER_ESTUN */
  struct sockaddr_storage reflexive; /* our address as the server saw it */
  struct sockaddr_storage other_address; /* its OTHER-ADDRESS or AF_UNSPEC */
  uint64_t rtt_us;                   /* round-trip time (status 0) */
  unsigned int transmissions;        /* requests sent */
  unsigned int flags;                /* QPEER_NETCHECK_PROBE_* */
} qpeer_netcheck_probe_t;

/** What was learned for one address family. */
typedef struct qpeer_netcheck_family_s {
  int tested;                        /* a server of this family was asked */
  int works;                         /* ... and at least one answered */
  struct sockaddr_storage reflexive; /* seen by the first server that
                                        answered (options order) */
  qpeer_nat_mapping mapping;         /* mapping behaviour */
  qpeer_nat_filtering filtering;     /* filtering behaviour */
  qpeer_netcheck_tri hairpin;        /* a packet from a second local socket
                                        to |reflexive| came back in */
  /* The server whose RFC 5780 support was used for the filtering test and
   * the extra mapping probes, or AF_UNSPEC. */
  struct sockaddr_storage rfc5780_server;
} qpeer_netcheck_family_t;

/** One hop of the path towards a STUN server (see
 * qpeer_netcheck_report_set_path()). */
typedef enum {
  QPEER_NETCHECK_HOP_SILENT = 0,     /* nothing came back for this TTL */
  QPEER_NETCHECK_HOP_ROUTER = 1,     /* ICMP time exceeded from |addr| */
  QPEER_NETCHECK_HOP_DESTINATION = 2 /* the server itself answered */
} qpeer_netcheck_hop_kind;

typedef struct qpeer_netcheck_hop_s {
  struct sockaddr_storage addr; /* who answered, or AF_UNSPEC */
  qpeer_netcheck_hop_kind kind; /* see above */
} qpeer_netcheck_hop_t;

/* qpeer_netcheck_report_t.double_nat_evidence */
enum {
  /* The port-mapping gateway's external address is private... */
  QPEER_NETCHECK_DNAT_PORTMAP_PRIVATE = 0x01,
  /* ... or shared address space, 100.64.0.0/10 (CGNAT)... */
  QPEER_NETCHECK_DNAT_PORTMAP_CGNAT = 0x02,
  /* ... or public but not the address the STUN servers saw. */
  QPEER_NETCHECK_DNAT_PORTMAP_MISMATCH = 0x04,
  /* Behind a private first hop, the second hop is private too... */
  QPEER_NETCHECK_DNAT_PATH_PRIVATE = 0x08,
  /* ... or in 100.64.0.0/10. */
  QPEER_NETCHECK_DNAT_PATH_CGNAT = 0x10
};

/** The survey. Plain data: copy it by assignment to keep it. */
typedef struct qpeer_netcheck_report_s {
  int udp;                        /* some STUN server answered */
  int partial;                    /* the deadline cut some tests short */
  uint64_t duration_ms;           /* wall time of the survey */
  struct sockaddr_storage local;  /* the endpoint's socket address */
  qpeer_netcheck_family_t ipv4;   /* IPv4 results */
  qpeer_netcheck_family_t ipv6;   /* IPv6 results */
  size_t nprobes;                 /* entries in probes */
  qpeer_netcheck_probe_t probes[QPEER_NETCHECK_MAX_PROBES];
  /* Double NAT (IPv4): derived from the mapping, the port mapping and the
   * path, whichever are known; recomputed by the setters below. */
  qpeer_netcheck_tri double_nat;
  qpeer_netcheck_tri cgnat;        /* a carrier-grade NAT is in the way */
  unsigned int double_nat_evidence; /* QPEER_NETCHECK_DNAT_* */
  /* The IPv4 path to the first IPv4 server, hop 1 first (set by
   * qpeer_netcheck_report_set_path(); empty otherwise). */
  size_t nhops;
  qpeer_netcheck_hop_t hops[QPEER_NETCHECK_MAX_HOPS];
  /* Port mapping (set by qpeer_netcheck_report_set_portmap()):
   * |portmap_status| 1 = not tried, 0 = a mapping was obtained, or the
   * error (QPEER_ENOMAPPING, ...). Protocol values are the
   * qpeer_portmap_proto bits of qpeer/portmap.h (PCP 1, NAT-PMP 2,
   * UPnP 4). */
  int portmap_status;
  unsigned int portmap_protocol;  /* protocol that holds the mapping */
  unsigned int portmap_answered;  /* protocols whose gateway answered */
  struct sockaddr_storage portmap_external; /* external address and port */
} qpeer_netcheck_report_t;

/**
 * `qpeer_netcheck_cb` runs exactly once per successful start, never from
 * inside qpeer_netcheck_start() or qpeer_netcheck_cancel(). |status| is 0
 * when the survey ran (a network where UDP is blocked is a result:
 * report->udp is 0), UV_ECANCELED after qpeer_netcheck_cancel() or when
 * the endpoint closed, or UV_ENOMEM. |report| is lent for the call (also
 * on errors, with what was measured) and everything the request used has
 * been released already; |req| may be freed or reused from here on.
 */
typedef void (*qpeer_netcheck_cb)(qpeer_netcheck_t *req, int status,
                                  const qpeer_netcheck_report_t *report);

struct qpeer_netcheck_s {
  QPEER_REQ_FIELDS
  /* private */
  qpeer_netcheck_cb cb;
  void *impl;
};

/* qpeer_netcheck_options_t.skip */
enum {
  QPEER_NETCHECK_SKIP_FILTERING = 0x01, /* no CHANGE-REQUEST tests */
  QPEER_NETCHECK_SKIP_HAIRPIN = 0x02,   /* no hairpin test */
  QPEER_NETCHECK_SKIP_ALTERNATE = 0x04  /* no probes to RFC 5780
                                           alternate addresses */
};

#define QPEER_NETCHECK_OPTIONS_V1 1
#define QPEER_NETCHECK_OPTIONS_VERSION QPEER_NETCHECK_OPTIONS_V1

/** Netcheck options; fields are only ever appended. */
typedef struct qpeer_netcheck_options_s {
  /* STUN servers (numeric addresses, copied), 1 to
   * QPEER_NETCHECK_MAX_SERVERS. Mapping behaviour needs two with
   * different IP addresses, or one with RFC 5780 support (two IPs), such
   * as coturn listening on two addresses. */
  const struct sockaddr_storage *servers;
  size_t nservers;
  /* Overall deadline in ms (default 10000). */
  uint64_t timeout_ms;
  /* Deadline of one STUN transaction in ms (default 3000). A test that
   * waits for a packet that never comes (a filtering test behind a
   * filtering NAT, a server that is down) takes this long. */
  uint64_t probe_timeout_ms;
  /* Initial retransmission timeout of the STUN requests (default 500). */
  uint32_t rto_ms;
  /* How long to wait for the hairpin probe in ms (default 1000). */
  uint64_t hairpin_timeout_ms;
  /* QPEER_NETCHECK_SKIP_* tests to leave out (default 0). */
  unsigned int skip;
} qpeer_netcheck_options_t;

QPEER_EXTERN void
qpeer_netcheck_options_default_versioned(int options_version,
                                         qpeer_netcheck_options_t *opts);

/** `qpeer_netcheck_options_default` fills |opts| with the defaults. */
#define qpeer_netcheck_options_default(OPTS)                                  \
  qpeer_netcheck_options_default_versioned(QPEER_NETCHECK_OPTIONS_VERSION,    \
                                           (OPTS))

QPEER_EXTERN int qpeer_netcheck_start_versioned(
    qpeer_netcheck_t *req, qpeer_endpoint_t *ep, int options_version,
    const qpeer_netcheck_options_t *opts, qpeer_netcheck_cb cb);

/**
 * `qpeer_netcheck_start` surveys the network from |ep|'s socket. The
 * endpoint keeps working meanwhile (QUIC and STUN traffic share the
 * socket). For the filtering and hairpin tests a second, temporary
 * endpoint is opened on the same local IP (port 0, sharing |ep|'s
 * identity), so that their packets do not disturb |ep|'s own NAT mapping.
 *
 * Returns 0, or (and |cb| is never called) UV_EINVAL (NULL argument, no
 * server or more than QPEER_NETCHECK_MAX_SERVERS, a server that is not
 * IPv4 or IPv6 with a port), UV_EBUSY when |ep| is closing, or UV_ENOMEM.
 */
#define qpeer_netcheck_start(REQ, EP, OPTS, CB)                               \
  qpeer_netcheck_start_versioned((REQ), (EP),                                 \
                                 QPEER_NETCHECK_OPTIONS_VERSION, (OPTS), (CB))

/**
 * `qpeer_netcheck_cancel` stops a running survey; its callback follows on
 * a later loop iteration with UV_ECANCELED and what was measured so far.
 * Returns 0, or UV_EINVAL if |req| is not running.
 */
QPEER_EXTERN int qpeer_netcheck_cancel(qpeer_netcheck_t *req);

/**
 * `qpeer_netcheck_report_set_portmap` adds a port-mapping outcome to
 * |report| and recomputes the double-NAT fields: |status| 0 with the
 * mapping's |protocol| and |external| address, or the error of a failed
 * attempt (then |external| may be NULL); |answered| has a bit for each
 * protocol whose gateway answered (qpeer_portmap_info_t's fields map
 * one to one). For a qpeer_portmap_t running next to the survey.
 */
QPEER_EXTERN void qpeer_netcheck_report_set_portmap(
    qpeer_netcheck_report_t *report, int status, unsigned int protocol,
    unsigned int answered, const struct sockaddr *external);

/**
 * `qpeer_netcheck_report_set_path` adds the IPv4 path towards a STUN
 * server (|hops|[0] is TTL 1; at most QPEER_NETCHECK_MAX_HOPS are kept)
 * and recomputes the double-NAT fields: behind a private first hop, a
 * second hop that is private or in 100.64.0.0/10 means the first router's
 * outside is not public (double NAT / CGNAT); a public second hop or the
 * server itself means it is.
 */
QPEER_EXTERN void
qpeer_netcheck_report_set_path(qpeer_netcheck_report_t *report,
                               const qpeer_netcheck_hop_t *hops, size_t nhops);

/** `qpeer_nat_mapping_name`: "unknown", "none", "endpoint-independent",
 * "address-dependent", "address-and-port-dependent",
 * "endpoint-dependent". */
QPEER_EXTERN const char *qpeer_nat_mapping_name(qpeer_nat_mapping m);

/** `qpeer_nat_filtering_name`: "unknown", "endpoint-independent",
 * "address-dependent", "address-and-port-dependent". */
QPEER_EXTERN const char *qpeer_nat_filtering_name(qpeer_nat_filtering f);

#endif /* QPEER_NETCHECK_H */
