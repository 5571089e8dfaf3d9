/* SPDX-License-Identifier: MIT */
/*
 * The hole-punch schedulers (doc/internals/punch_sched.md), sans-I/O: they
 * decide what to send and when, and the libuv glue does it. Times are
 * nanoseconds on the caller's monotonic clock (the ngtcp2 timestamps).
 *
 * The client scheduler (qpeer__punch_sched) runs draft-seemann-quic-nat-
 * traversal-02 rounds over a checklist of candidate pairs: per round it
 * asks the server for punches (PUNCH_ME_NOW) for at most the server's
 * concurrency limit of pairs, fires its own raw probes half an RTT later,
 * when the server's punches leave, and validates the pairs one at a time
 * (ngtcp2 0.12 has a single path validation). The server responder
 * (qpeer__punch_resp) turns accepted PUNCH_ME_NOW messages into a bounded
 * number of raw punch datagrams per target.
 */
#ifndef QPEER_PEER_PUNCH_SCHED_H
#define QPEER_PEER_PUNCH_SCHED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "nat/candidate.h"

/* Nanoseconds per millisecond, for option values. */
#define QPEER__PUNCH_MS 1000000ULL

/* Most pairs one client scheduler holds (checklist plus peer-reflexive). */
#define QPEER__PUNCH_MAX_PAIRS 32
/* Highest concurrency limit used (larger advertised values are clamped). */
#define QPEER__PUNCH_MAX_CONCURRENCY 16
/* Most peer-reflexive pairs added per attempt. */
#define QPEER__PUNCH_MAX_PRFLX 4
/* Most punch jobs (one per accepted PUNCH_ME_NOW) a responder runs. */
#define QPEER__PUNCH_RESP_MAX_JOBS QPEER__PUNCH_MAX_CONCURRENCY
/* Most target addresses a responder keeps a packet budget for. */
#define QPEER__PUNCH_RESP_MAX_TARGETS 32

/* What the glue must do next. */
typedef enum {
  /* Nothing until new input (pairs, restart). */
  QPEER__PUNCH_IDLE = 0,
  /* Nothing before |at|; call again then, or on new input. */
  QPEER__PUNCH_WAIT,
  /* Send PUNCH_ME_NOW {Round |round|, Paired With |remote_seq|, |local|}
   * on the control stream (|local| is the client candidate to punch to). */
  QPEER__PUNCH_SEND_PUNCH_ME_NOW,
  /* Send one raw punch datagram (e.g. a STUN Binding request) from the
   * socket at |local| to |remote|. */
  QPEER__PUNCH_SEND_PROBE,
  /* Start path validation and migration on path |local| -> |remote|
   * (ngtcp2_conn_initiate_migration; it aborts any validation running). */
  QPEER__PUNCH_START_VALIDATION,
  /* Finished: |ok| and pair |pair| (|local|, |remote|) validated, or all
   * failed and a new attempt is worth it at |at| (restart). */
  QPEER__PUNCH_DONE
} qpeer__punch_action_kind;

/* One action; fields not used by |kind| are zero. */
typedef struct {
  qpeer__punch_action_kind kind; /* what to do */
  int pair;                      /* pair id (-1 when none) */
  uint64_t round;                /* SEND_PUNCH_ME_NOW: the round */
  uint64_t remote_seq;           /* SEND_PUNCH_ME_NOW: paired-with seq */
  /* SEND_PUNCH_ME_NOW: the client candidate address; SEND_PROBE,
   * START_VALIDATION, DONE: the local base (path local address). */
  struct sockaddr_storage local;
  struct sockaddr_storage remote; /* SEND_PROBE, START_VALIDATION, DONE */
  uint64_t at; /* WAIT: wake-up time; DONE without |ok|: retry time */
  int ok;      /* DONE: nonzero when a pair validated */
} qpeer__punch_action;

/* Bits of the target policies (qpeer__punch_target_ok). */
enum {
  QPEER__PUNCH_ALLOW_LOOPBACK = 0x01,   /* 127.0.0.0/8, ::1 */
  QPEER__PUNCH_ALLOW_LINK_LOCAL = 0x02, /* 169.254.0.0/16, fe80::/10 */
  QPEER__PUNCH_ALLOW_LOW_PORTS = 0x04   /* ports below 1024 */
};

/* qpeer__punch_target_ok returns nonzero if raw punches may go to |sa|
 * (protocols.md §2.6): AF_INET or AF_INET6, not IPv4-mapped, a nonzero
 * port, not the wildcard, multicast, broadcast or 0.0.0.0/8 address, and
 * unless |allow| says so, not loopback, link-local, or a port below 1024. */
int qpeer__punch_target_ok(const struct sockaddr *sa, unsigned allow);

/* ---- The client scheduler. ---- */

/* Client options; a zero field takes its default. */
typedef struct {
  /* PUNCH_ME_NOW per round: the server's nat_traversal value (default 4,
   * clamped to QPEER__PUNCH_MAX_CONCURRENCY). */
  uint32_t concurrency;
  uint32_t max_passes; /* sweeps over the checklist per attempt (3) */
  /* Raw probes per pair and round (3), at |probe_interval| (50 ms). */
  uint32_t probes_per_round;
  uint64_t probe_interval;
  /* Raw probes to one unvalidated remote address per attempt (9). */
  uint32_t max_probes_per_addr;
  /* Validation timeout: clamp(3 RTT + 2 probe_interval, min, max) with
   * min 300 ms and max 3 s. */
  uint64_t min_timeout;
  uint64_t max_timeout;
  uint64_t backoff; /* pause before pass 2 (1 s), doubled per pass */
  uint64_t reprobe; /* after a failed attempt, retry time (30 s) */
  uint64_t rtt;     /* initial smoothed RTT of the relayed path (333 ms) */
  unsigned allow;   /* QPEER__PUNCH_ALLOW_* for remote addresses */
} qpeer__punch_opts;

/* Per-pair state. */
typedef struct {
  qpeer__cand_pair pair; /* the pair (by value) */
  uint8_t live;          /* not removed */
  uint8_t tried;         /* validated and failed in the current pass */
  uint8_t heard;         /* a probe came from its remote; not yet tried */
  uint8_t in_round;      /* part of the current round */
  uint8_t prflx;         /* added from an incoming probe */
  uint32_t probes_left;  /* raw probes still due this round */
  uint64_t next_probe;   /* when the next raw probe is due */
} qpeer__punch_pair_state;

/* Raw probes sent to one remote address in the current attempt. */
typedef struct {
  struct sockaddr_storage addr; /* the remote address */
  uint32_t sent;                /* probes sent to it */
} qpeer__punch_budget;

/* Scheduler states (internal). */
typedef enum {
  QPEER__PS_IDLE = 0, /* no attempt running (no pairs yet) */
  QPEER__PS_ROUND,    /* about to start a round at |round_at| */
  QPEER__PS_PUNCH,    /* emitting the round's PUNCH_ME_NOW */
  QPEER__PS_FIRE,     /* probing and validating the round's pairs */
  QPEER__PS_SUCCESS,  /* a pair validated */
  QPEER__PS_FAILED    /* every pass failed; waiting for a restart */
} qpeer__punch_state;

/* The client scheduler. Plain memory: copy or embed freely. */
typedef struct {
  qpeer__punch_opts o;      /* options, defaults applied */
  qpeer__punch_state state; /* where the attempt is */
  uint64_t rtt;             /* smoothed RTT used for timing */
  uint64_t round;           /* last round number used (rounds start at 1) */
  uint32_t pass;            /* current pass (0-based) */
  uint64_t round_at;        /* ROUND: when the round may start */
  uint64_t fire_at;         /* FIRE: when probes and validation start */
  int validating;           /* pair being validated, or -1 */
  uint64_t deadline;        /* timeout of the running validation */
  int success;              /* SUCCESS: the validated pair */
  uint64_t retry_at;        /* FAILED: when a restart is worth it */
  size_t npunch;            /* PUNCH: entries used in |punch_q| */
  size_t punch_next;        /* PUNCH: next entry of |punch_q| to emit */
  struct {
    uint8_t pair;                          /* pair id */
    uint8_t target;                        /* index into the pair's targets */
  } punch_q[QPEER__PUNCH_MAX_CONCURRENCY]; /* the round's PUNCH_ME_NOW */
  uint32_t nprflx; /* peer-reflexive pairs this attempt */
  size_t npairs;   /* entries used in |pairs| */
  qpeer__punch_pair_state pairs[QPEER__PUNCH_MAX_PAIRS]; /* by id */
  size_t nbudget; /* entries used in |budget| */
  qpeer__punch_budget budget[QPEER__PUNCH_MAX_PAIRS]; /* per remote address */
  uint64_t punches_sent; /* statistics: PUNCH_ME_NOW emitted */
  uint64_t probes_sent;  /* statistics: raw probes emitted */
  uint64_t validations;  /* statistics: validations started */
} qpeer__punch_sched;

/* qpeer__punch_opts_default fills |o| with the defaults. */
void qpeer__punch_opts_default(qpeer__punch_opts *o);

/* qpeer__punch_sched_init prepares |s| with options |o| (copied; NULL:
 * defaults; zero fields take defaults). */
void qpeer__punch_sched_init(qpeer__punch_sched *s, const qpeer__punch_opts *o);

/* qpeer__punch_sched_set_rtt updates the smoothed RTT of the relayed path
 * (0 is ignored); it times rounds started afterwards. */
void qpeer__punch_sched_set_rtt(qpeer__punch_sched *s, uint64_t rtt);

/* qpeer__punch_sched_add_pair adds checklist entry |p| (copied). It joins
 * the running attempt in priority order. Returns the pair id (>= 0), or
 * UV_EEXIST (same base and remote already present), UV_EINVAL (base or
 * remote not AF_INET/AF_INET6, or the remote fails the target policy), or
 * UV_ENOSPC (QPEER__PUNCH_MAX_PAIRS pairs). */
int qpeer__punch_sched_add_pair(qpeer__punch_sched *s,
                                const qpeer__cand_pair *p);

/* qpeer__punch_sched_remove_remote retires every pair whose remote
 * candidate has sequence number |seq| (REMOVE_ADDRESS). A validation of
 * such a pair is forgotten (its result will be ignored). Returns how many
 * pairs were retired. */
size_t qpeer__punch_sched_remove_remote(qpeer__punch_sched *s, uint64_t seq);

/* qpeer__punch_sched_next_action sets |*a| to the next thing to do at
 * |now| and advances as if it was done. Call it until it returns WAIT,
 * IDLE or DONE. Returns |a|->kind. */
qpeer__punch_action_kind qpeer__punch_sched_next_action(qpeer__punch_sched *s,
                                                        uint64_t now,
                                                        qpeer__punch_action *a);

/* qpeer__punch_sched_on_validation_result reports the end of the
 * validation of pair |pair|. Success of any known pair ends the attempt
 * (DONE with |ok|). Failure counts only for the pair being validated;
 * others are ignored. Returns 0 or UV_EINVAL (unknown pair id). */
int qpeer__punch_sched_on_validation_result(qpeer__punch_sched *s, int pair,
                                            int ok, uint64_t now);

/* qpeer__punch_sched_on_probe_received reports a raw punch from |from|
 * that arrived on the socket at |local|. A pair with that remote address
 * is marked heard and validated next; an unknown source becomes a
 * peer-reflexive pair (at most QPEER__PUNCH_MAX_PRFLX per attempt) of the
 * highest priority. Returns the pair id, or -1 if ignored (no room, the
 * policy, the attempt is over). */
int qpeer__punch_sched_on_probe_received(qpeer__punch_sched *s,
                                         const struct sockaddr *local,
                                         const struct sockaddr *from,
                                         uint64_t now);

/* qpeer__punch_sched_restart starts a new attempt at |now| (after DONE, a
 * dead direct path, or a network change): passes, per-address budgets and
 * tried flags are reset; round numbers keep increasing, so the server
 * cancels stale punches. Peer-reflexive pairs are kept. */
void qpeer__punch_sched_restart(qpeer__punch_sched *s, uint64_t now);

/* qpeer__punch_sched_validating returns the pair being validated, or -1. */
int qpeer__punch_sched_validating(const qpeer__punch_sched *s);

/* qpeer__punch_sched_timeout returns the validation timeout in use. */
uint64_t qpeer__punch_sched_timeout(const qpeer__punch_sched *s);

/* ---- The server responder. ---- */

/* Responder options; a zero field takes its default. */
typedef struct {
  /* PUNCH_ME_NOW acted on per round: the nat_traversal value the server
   * advertised (4, clamped to QPEER__PUNCH_MAX_CONCURRENCY). */
  uint32_t concurrency;
  uint32_t punches;  /* raw datagrams per accepted request (3) */
  uint64_t interval; /* between them (50 ms) */
  /* Datagrams to one address per |window| (12 per 30 s), across rounds. */
  uint32_t max_per_target;
  uint64_t window;
  unsigned allow; /* QPEER__PUNCH_ALLOW_* for targets */
} qpeer__punch_resp_opts;

/* One accepted request being served. */
typedef struct {
  struct sockaddr_storage local;  /* the server candidate's socket address */
  struct sockaddr_storage target; /* the client candidate punched to */
  uint32_t left;                  /* datagrams still to send */
  uint64_t next;                  /* when the next one is due */
} qpeer__punch_job;

/* A per-target packet budget. */
typedef struct {
  struct sockaddr_storage addr; /* the target */
  uint64_t since;               /* start of its current window */
  uint32_t sent;                /* datagrams sent in that window */
} qpeer__punch_resp_budget;

/* The server responder. Plain memory: copy or embed freely. */
typedef struct {
  qpeer__punch_resp_opts o; /* options, defaults applied */
  uint64_t round;           /* highest round seen (0: none yet) */
  uint32_t accepted;        /* requests accepted in |round| */
  size_t njobs;             /* entries used in |jobs| */
  qpeer__punch_job jobs[QPEER__PUNCH_RESP_MAX_JOBS]; /* running jobs */
  size_t nbudget; /* entries used in |budget| */
  qpeer__punch_resp_budget budget[QPEER__PUNCH_RESP_MAX_TARGETS];
  uint64_t sent; /* statistics: datagrams emitted */
} qpeer__punch_resp;

/* Results of qpeer__punch_resp_on_request (nonnegative). */
enum {
  QPEER__PUNCH_ACCEPTED = 0, /* punches scheduled */
  QPEER__PUNCH_IGNORED = 1   /* stale round, duplicate, or over a limit */
};

/* qpeer__punch_resp_opts_default fills |o| with the defaults. */
void qpeer__punch_resp_opts_default(qpeer__punch_resp_opts *o);

/* qpeer__punch_resp_init prepares |r| with options |o| (copied; NULL:
 * defaults; zero fields take defaults). */
void qpeer__punch_resp_init(qpeer__punch_resp *r,
                            const qpeer__punch_resp_opts *o);

/* qpeer__punch_resp_on_request handles PUNCH_ME_NOW {Round |round|, client
 * candidate |target|} whose paired server candidate's socket is at
 * |local|. A higher round cancels every job of older rounds. Returns
 * QPEER__PUNCH_ACCEPTED, QPEER__PUNCH_IGNORED (an older round; the same
 * target again in this round; the round's concurrency limit reached; the
 * target's budget spent), or UV_EINVAL (|target| fails the policy). */
int qpeer__punch_resp_on_request(qpeer__punch_resp *r, uint64_t round,
                                 const struct sockaddr *local,
                                 const struct sockaddr *target, uint64_t now);

/* qpeer__punch_resp_next_action sets |*a| to SEND_PROBE (|local| to
 * |remote|), WAIT (until |at|) or IDLE, and advances as if it was done.
 * Returns |a|->kind. */
qpeer__punch_action_kind qpeer__punch_resp_next_action(qpeer__punch_resp *r,
                                                       uint64_t now,
                                                       qpeer__punch_action *a);

/* qpeer__punch_resp_cancel drops every job (the client migrated, or the
 * connection is closing). Budgets are kept. */
void qpeer__punch_resp_cancel(qpeer__punch_resp *r);

#endif /* QPEER_PEER_PUNCH_SCHED_H */
