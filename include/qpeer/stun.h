/* SPDX-License-Identifier: MIT */
/*
 * STUN (RFC 8489) on an endpoint's own UDP socket, so that what it learns
 * is true of the socket that carries QUIC:
 *
 * - qpeer_stun_t, a request that sends Binding requests to one STUN server
 *   with the RFC retransmission schedule and reports the endpoint's
 *   server-reflexive address (XOR-MAPPED-ADDRESS), the round-trip time and
 *   the RFC 5780 attributes. Any number may run at once, to any servers,
 *   IPv4 and IPv6 (a dual-stack endpoint reaches both).
 * - the STUN responder, an opt-in per endpoint: it answers Binding
 *   requests on the QUIC port, rate-limited per source and never larger
 *   than a small bound over the request (no amplification).
 *
 * Plain STUN is unauthenticated: anyone on the path can forge the mapped
 * address. Ask several servers, or use QUIC address discovery, for trust.
 */
#ifndef QPEER_STUN_H
#define QPEER_STUN_H

#include "qpeer/endpoint.h"

typedef struct qpeer_stun_s qpeer_stun_t;

/**
 * `qpeer_stun_cb` is called exactly once per successful qpeer_stun_send():
 * |status| 0 with the results in |req|; UV_ETIMEDOUT when no response
 * arrived before the schedule or the timeout ended (a hard socket error on
 * every transmission is reported instead, e.g. UV_ENETUNREACH);
 * QPEER_ESTUN for an error response (its code in req->error_code);
 * QPEER_EMALFORMED for a success response without a mapped address;
 * UV_ECANCELED after qpeer_stun_cancel() or when the endpoint closes. The
 * request's memory may be reused or freed from the callback on.
 */
typedef void (*qpeer_stun_cb)(qpeer_stun_t *req, int status);

/* What a response carried (req->result_flags). */
enum {
  QPEER_STUN_HAS_XOR_MAPPED = 0x01,      /* XOR-MAPPED-ADDRESS */
  QPEER_STUN_HAS_MAPPED = 0x02,          /* MAPPED-ADDRESS (legacy) */
  QPEER_STUN_HAS_FINGERPRINT = 0x04,     /* a FINGERPRINT, verified */
  QPEER_STUN_HAS_RESPONSE_ORIGIN = 0x08, /* RESPONSE-ORIGIN (RFC 5780) */
  QPEER_STUN_HAS_OTHER_ADDRESS = 0x10    /* OTHER-ADDRESS (RFC 5780) */
};

/* CHANGE-REQUEST flags (RFC 5780 §7.2) for qpeer_stun_options_t. */
enum { QPEER_STUN_CHANGE_PORT = 0x02, QPEER_STUN_CHANGE_IP = 0x04 };

struct qpeer_stun_s {
  QPEER_REQ_FIELDS
  /* read-only: set by qpeer_stun_send() */
  struct sockaddr_storage server;          /* where the requests go */
  /* read-only: results, valid in and after the callback */
  struct sockaddr_storage mapped;          /* our reflexive address (status
                                              0): XOR-MAPPED-ADDRESS, else
                                              MAPPED-ADDRESS */
  struct sockaddr_storage response_source; /* the response's source address */
  struct sockaddr_storage response_origin; /* RESPONSE-ORIGIN, or AF_UNSPEC */
  struct sockaddr_storage other_address;   /* OTHER-ADDRESS, or AF_UNSPEC */
  uint64_t rtt_us;            /* from the latest transmission to the
                                 response (ambiguous once retransmitted) */
  unsigned int transmissions; /* requests sent, retransmissions included */
  unsigned int result_flags;  /* QPEER_STUN_HAS_* */
  int error_code;             /* STUN ERROR-CODE (300..699), QPEER_ESTUN */
  /* private */
  qpeer_stun_cb cb;
  void *impl;
};

#define QPEER_STUN_OPTIONS_V1 1
#define QPEER_STUN_OPTIONS_VERSION QPEER_STUN_OPTIONS_V1

/** Options of one STUN request; fields are only ever appended. */
typedef struct qpeer_stun_options_s {
  /* Overall deadline in ms from the call; 0 (default) leaves only the
   * RFC schedule's own end (39.5 s with the defaults). */
  uint64_t timeout_ms;
  /* Initial retransmission timeout in ms (default 500; RFC 8489 asks for
   * at least 500 on the Internet; smaller values are for loopback tests).
   * It doubles after each transmission. At most 60000. */
  uint32_t rto_ms;
  /* Transmissions in total, Rc (default 7, at most 16). */
  uint32_t max_transmissions;
  /* After the last transmission, wait this many initial RTOs, Rm
   * (default 16, at most 64). */
  uint32_t last_wait_rtos;
  /* RFC 5780 CHANGE-REQUEST: QPEER_STUN_CHANGE_IP and/or _PORT, or 0.
   * With flags set, the response is expected from another address and is
   * accepted from any source (see req->response_source); without, only
   * from |server| itself. */
  uint32_t change_request;
  /* Nonzero: send no FINGERPRINT (default: every request carries one). */
  int no_fingerprint;
  /* Local address to send from: NULL (default) for the endpoint's socket,
   * or a virtual interface's synthetic address (a relay tunnel). */
  const struct sockaddr *local;
} qpeer_stun_options_t;

QPEER_EXTERN void
qpeer_stun_options_default_versioned(int options_version,
                                     qpeer_stun_options_t *opts);

/** `qpeer_stun_options_default` fills |opts| with the defaults. */
#define qpeer_stun_options_default(OPTS)                                      \
  qpeer_stun_options_default_versioned(QPEER_STUN_OPTIONS_VERSION, (OPTS))

QPEER_EXTERN int qpeer_stun_send_versioned(qpeer_stun_t *req,
                                           qpeer_endpoint_t *ep,
                                           const struct sockaddr *server,
                                           int options_version,
                                           const qpeer_stun_options_t *opts,
                                           qpeer_stun_cb cb);

/**
 * `qpeer_stun_send` starts a Binding transaction from |ep|'s socket to
 * |server| (IPv4 or IPv6; copied). |opts| may be NULL for the defaults.
 * The first request is sent before it returns; the callback comes later,
 * never from inside this call. Responses are matched by transaction ID
 * and checked: source address (unless CHANGE-REQUEST), method and class,
 * and FINGERPRINT when present (a bad one is ignored, like a lost
 * packet).
 *
 * Returns 0, or (and then |cb| is never called): UV_EINVAL for a NULL
 * argument or a bad option, UV_EBUSY when |ep| is closing,
 * UV_EAFNOSUPPORT when the socket cannot reach |server|'s family (IPv6
 * server on an IPv4 socket, IPv4 server on an IPv6-only one), UV_ENOMEM,
 * or the socket's error for the first transmission (UV_ENETUNREACH, ...).
 */
#define qpeer_stun_send(REQ, EP, SERVER, OPTS, CB)                            \
  qpeer_stun_send_versioned((REQ), (EP), (SERVER),                            \
                            QPEER_STUN_OPTIONS_VERSION, (OPTS), (CB))

/**
 * `qpeer_stun_cancel` stops a pending request: its callback runs with
 * UV_ECANCELED on a later loop iteration. Returns 0, or UV_EINVAL when
 * |req| is not pending (never started, or already completing).
 */
QPEER_EXTERN int qpeer_stun_cancel(qpeer_stun_t *req);

/* ---- the responder --------------------------------------------------- */

/* Responses are never larger than this many times the request, nor more
 * than QPEER_STUN_RESPONDER_MAX_EXTRA bytes larger; a response that would
 * be is not sent (counted in dropped_size). */
#define QPEER_STUN_RESPONDER_MAX_FACTOR 3
#define QPEER_STUN_RESPONDER_MAX_EXTRA 64

#define QPEER_STUN_RESPONDER_OPTIONS_V1 1
#define QPEER_STUN_RESPONDER_OPTIONS_VERSION QPEER_STUN_RESPONDER_OPTIONS_V1

/** Responder options; fields are only ever appended. */
typedef struct qpeer_stun_responder_options_s {
  /* Per source (IPv4 address, IPv6 /64): responses per second (default
   * 10) and bucket depth (default 20). */
  uint32_t rate;
  uint32_t burst;
  /* All sources together: responses per second (default 1000) and bucket
   * depth (default 2000). */
  uint32_t global_rate;
  uint32_t global_burst;
  /* Sources tracked at once (default 4096); the least recently seen is
   * forgotten to make room. */
  uint32_t max_sources;
  /* Nonzero: answer without FINGERPRINT (default: with). */
  int no_fingerprint;
} qpeer_stun_responder_options_t;

QPEER_EXTERN void qpeer_stun_responder_options_default_versioned(
    int options_version, qpeer_stun_responder_options_t *opts);
#define qpeer_stun_responder_options_default(OPTS)                            \
  qpeer_stun_responder_options_default_versioned(                             \
      QPEER_STUN_RESPONDER_OPTIONS_VERSION, (OPTS))

QPEER_EXTERN int qpeer_endpoint_set_stun_responder_versioned(
    qpeer_endpoint_t *ep, int enabled, int options_version,
    const qpeer_stun_responder_options_t *opts);

/**
 * `qpeer_endpoint_set_stun_responder` turns the STUN responder of |ep| on
 * (|enabled| nonzero; |opts| may be NULL for the defaults, and is copied)
 * or off. While on, Binding requests that carry no USERNAME or
 * MESSAGE-INTEGRITY (those are ICE checks, left to the STUN hook) are
 * answered with XOR-MAPPED-ADDRESS (+ FINGERPRINT) from the socket they
 * arrived on; requests with comprehension-required attributes it does not
 * implement (CHANGE-REQUEST, RESPONSE-PORT, PADDING, unknown ones) get a
 * 420 error. Answered and dropped requests are consumed: the STUN hook
 * does not see them. Turning it on again replaces the options and resets
 * the rate state. Counters survive off/on.
 *
 * Returns 0, UV_EINVAL, UV_EBUSY when |ep| is closing, or UV_ENOMEM.
 */
#define qpeer_endpoint_set_stun_responder(EP, ENABLED, OPTS)                  \
  qpeer_endpoint_set_stun_responder_versioned(                                \
      (EP), (ENABLED), QPEER_STUN_RESPONDER_OPTIONS_VERSION, (OPTS))

/** Responder counters (monotonically increasing while the endpoint is
 * open). requests = answered + errors + every dropped_* counter. */
typedef struct qpeer_stun_responder_stats_s {
  uint64_t requests;          /* Binding requests the responder took */
  uint64_t answered;          /* success responses sent */
  uint64_t errors;            /* error responses sent (420) */
  uint64_t dropped_rate;      /* over the per-source or global rate */
  uint64_t dropped_size;      /* response would have amplified */
  uint64_t dropped_malformed; /* undecodable, or bad FINGERPRINT */
  uint64_t dropped_send;      /* the socket refused the response */
  uint64_t evictions;         /* sources forgotten to make room */
} qpeer_stun_responder_stats_t;

/**
 * `qpeer_endpoint_get_stun_responder_stats` copies the counters (zeros if
 * the responder was never enabled). Returns 0 or UV_EINVAL.
 */
QPEER_EXTERN int
qpeer_endpoint_get_stun_responder_stats(qpeer_endpoint_t *ep,
                                        qpeer_stun_responder_stats_t *stats);

#endif /* QPEER_STUN_H */
