/* SPDX-License-Identifier: MIT */
/*
 * Metrics of qpeer-relay: a bounded registry of counters and gauges, its
 * Prometheus text exposition (format 0.0.4; pure), the relay's standard
 * metric set, and a tiny HTTP/1.1 server on a uv_tcp_t that answers
 * GET /metrics on a local port and closes each connection after the
 * response.
 */
#ifndef QPEER_RELAYD_METRICS_H
#define QPEER_RELAYD_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Most series in a registry. */
#define RELAYD_METRICS_MAX_SERIES 128
/* Largest request head read, and largest response body. */
#define RELAYD_METRICS_MAX_REQUEST 4096
#define RELAYD_METRICS_MAX_BODY (64 * 1024)
/* Most connections served at once (more are closed at once), and how
 * long one may take. */
#define RELAYD_METRICS_MAX_CONNS 16
#define RELAYD_METRICS_TIMEOUT_MS 5000
/* Content type of the text exposition format. */
#define RELAYD_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef enum { RELAYD_COUNTER = 1, RELAYD_GAUGE = 2 } relayd_metric_type;

/* One time series. Strings are borrowed and must outlive the registry
 * (string literals in practice). */
typedef struct relayd_metric_s {
  const char *name;        /* family name */
  const char *help;        /* family help text */
  relayd_metric_type type; /* counter or gauge */
  const char *label;       /* label name, or NULL */
  const char *label_value; /* label value, or NULL */
  uint64_t value;          /* the value */
} relayd_metric_t;

typedef struct relayd_metrics_s {
  relayd_metric_t series[RELAYD_METRICS_MAX_SERIES]; /* registered series */
  size_t n;                                          /* how many */
} relayd_metrics_t;

/* relayd_metrics_init empties |m|. */
void relayd_metrics_init(relayd_metrics_t *m);

/*
 * relayd_metrics_add registers (or finds) the series |name|{|label|=
 * |label_value|} and returns a pointer to its value, stable for the life
 * of |m|. |label| and |label_value| are both NULL or both set. Returns
 * NULL when the registry is full, a name is not a valid metric or label
 * name, or the family exists with another type.
 */
uint64_t *relayd_metrics_add(relayd_metrics_t *m, const char *name,
                             const char *help, relayd_metric_type type,
                             const char *label, const char *label_value);

/* relayd_metrics_get returns the value pointer of a registered series,
 * or NULL. */
uint64_t *relayd_metrics_get(relayd_metrics_t *m, const char *name,
                             const char *label_value);

/*
 * relayd_metrics_render writes the text exposition of |m| into |buf|
 * (|cap| bytes, NUL-terminated): # HELP and # TYPE once per family, then
 * its series. Returns the length, or -1 if it does not fit.
 */
int relayd_metrics_render(const relayd_metrics_t *m, char *buf, size_t cap);

/* ---- the relay's metric set ---------------------------------------------- */

/* Refusal reasons: the token reasons (token.h), the peer-ID checks, the
 * daemon's client cap, and what the relay library refuses by itself
 * (target policy, its tunnel and binding limits, malformed or unknown
 * requests, DNS failures). */
#define RELAYD_REJECT_MAP(XX)                                                  \
  XX(TOKEN_MISSING, "token_missing")                                           \
  XX(TOKEN_MALFORMED, "token_malformed")                                       \
  XX(TOKEN_ALG_NONE, "token_alg_none")                                         \
  XX(TOKEN_ALG_MISMATCH, "token_alg_mismatch")                                 \
  XX(TOKEN_BAD_SIGNATURE, "token_bad_signature")                               \
  XX(TOKEN_EXPIRED, "token_expired")                                           \
  XX(TOKEN_NOT_YET_VALID, "token_not_yet_valid")                               \
  XX(TOKEN_WRONG_AUDIENCE, "token_wrong_audience")                             \
  XX(TOKEN_WRONG_ISSUER, "token_wrong_issuer")                                 \
  XX(TOKEN_WRONG_SCOPE, "token_wrong_scope")                                   \
  XX(PEER_ID_MISSING, "peer_id_missing")                                       \
  XX(PEER_NOT_ALLOWED, "peer_not_allowed")                                     \
  XX(TARGET_DENIED, "target_denied")                                           \
  XX(QUOTA, "quota")                                                           \
  XX(CAPACITY_CLIENTS, "capacity_clients")                                     \
  XX(MALFORMED_REQUEST, "malformed_request")                                   \
  XX(NOT_FOUND, "not_found")                                                   \
  XX(DNS_ERROR, "dns_error")                                                   \
  XX(OTHER, "other")

/* clang-format off */
typedef enum {
#define RELAYD_REJECT_ENUM(e, n) RELAYD_REJECT_##e,
  RELAYD_REJECT_MAP(RELAYD_REJECT_ENUM)
#undef RELAYD_REJECT_ENUM
  RELAYD_REJECT__COUNT
} relayd_reject_reason;
/* clang-format on */

/* Drop reasons of relayed packets. */
typedef enum {
  RELAYD_DROP_QUOTA = 0, /* over the client's rate */
  RELAYD_DROP_POLICY,    /* bind destination refused */
  RELAYD_DROP_OTHER,     /* no context, too large, queue full */
  RELAYD_DROP__COUNT
} relayd_drop_reason;

/* Directions of relayed packets. */
enum { RELAYD_DIR_TO_CLIENT = 0, RELAYD_DIR_FROM_CLIENT = 1 };

/* Pointers into a registry for the relay's metrics, all named
 * qpeer_relay_*. */
typedef struct relayd_metrics_std_s {
  uint64_t *connections_total;           /* HTTP/3 connections served */
  uint64_t *connections_active;          /* open now (gauge) */
  uint64_t *tunnels_total;               /* CONNECT-UDP tunnels opened */
  uint64_t *tunnels_active;              /* open now (gauge) */
  uint64_t *binds_total;                 /* bindings opened */
  uint64_t *binds_active;                /* open now (gauge) */
  uint64_t *packets[2];                  /* packets relayed, by direction */
  uint64_t *bytes[2];                    /* their UDP payload bytes */
  uint64_t *dropped[RELAYD_DROP__COUNT]; /* packets dropped */
  uint64_t *idle_closed;                 /* sessions closed for idleness */
  uint64_t *rejections[RELAYD_REJECT__COUNT]; /* refused requests */
  uint64_t *clients_active;   /* clients with sessions (gauge) */
  uint64_t *client_evictions; /* idle client records evicted */
  uint64_t *start_time;       /* process start, seconds (gauge) */
} relayd_metrics_std_t;

/* relayd_metrics_std_init registers the relay's metrics in |m| (which
 * must have room) and points |s| at them. Returns 0 or -1. */
int relayd_metrics_std_init(relayd_metrics_t *m, relayd_metrics_std_t *s);

/* relayd_reject_name returns the label of |r| ("other" if unknown). */
const char *relayd_reject_name(relayd_reject_reason r);

/* relayd_reject_by_name maps a label (e.g. a relayd_token_err_name) to
 * its reason; unknown names map to RELAYD_REJECT_OTHER. */
relayd_reject_reason relayd_reject_by_name(const char *name);

/* ---- HTTP exposition ----------------------------------------------------- */

/*
 * relayd_metrics_http_parse looks at the request head in |buf| (|len|
 * bytes). Returns 0 while the head is incomplete, or the HTTP status to
 * answer: 200 for GET or HEAD /metrics (query ignored; *phead set for
 * HEAD), 404 for another path, 405 for another method on /metrics, 400
 * for a malformed request line, 431 when |len| reaches
 * RELAYD_METRICS_MAX_REQUEST without a complete head.
 */
int relayd_metrics_http_parse(const char *buf, size_t len, int *phead);

typedef struct relayd_metrics_server_s relayd_metrics_server_t;

/* Called before each 200 response to bring the registry up to date. */
typedef void (*relayd_metrics_refresh_cb)(relayd_metrics_server_t *srv);
/* Called once the server has closed. */
typedef void (*relayd_metrics_close_cb)(relayd_metrics_server_t *srv);

/* The HTTP server. Caller-allocated; not movable while started. */
struct relayd_metrics_server_s {
  void *data;                /* the user's */
  uv_loop_t *loop;           /* read-only */
  relayd_metrics_t *metrics; /* read-only: the registry served */
  uint64_t requests;         /* read-only: requests answered */
  /* private */
  uv_tcp_t tcp;                      /* the listener */
  relayd_metrics_refresh_cb refresh; /* or NULL */
  relayd_metrics_close_cb close_cb;  /* set by _close */
  void *conns;                       /* open connections (list) */
  unsigned nconns;                   /* how many */
  int closing;                       /* _close was called */
  int listener_open;                 /* tcp not yet closed */
};

/*
 * relayd_metrics_server_start listens on |addr| (TCP) and serves |m|.
 * |refresh| (may be NULL) runs before each response. Returns 0 or a libuv
 * error; on error nothing is left open.
 */
int relayd_metrics_server_start(relayd_metrics_server_t *srv, uv_loop_t *loop,
                                const struct sockaddr *addr,
                                relayd_metrics_t *m,
                                relayd_metrics_refresh_cb refresh);

/* relayd_metrics_server_get_addr writes the bound address (useful with
 * port 0). Returns 0 or a libuv error. */
int relayd_metrics_server_get_addr(const relayd_metrics_server_t *srv,
                                   struct sockaddr_storage *addr);

/* relayd_metrics_server_close closes the listener and every connection;
 * |cb| (may be NULL) runs when all handles are closed. */
void relayd_metrics_server_close(relayd_metrics_server_t *srv,
                                 relayd_metrics_close_cb cb);

#endif /* QPEER_RELAYD_METRICS_H */
