/* SPDX-License-Identifier: MIT */
/* The bulk sender shared by the benchmarks: one QUIC stream, 1 MiB writes,
 * 8 in flight, on its own loop. */
#ifndef QPEER_BENCH_BULK_H
#define QPEER_BENCH_BULK_H

#include "qpeer.h"

/* Connects to |to| (ALPN |alpn|, peer ID |pid| pinned), sends |bytes| on one
 * stream and returns once the FIN is acknowledged. *pt0 / *pt1 get the time
 * of the first write and of the acknowledged FIN (seconds). Exits the
 * process with a message on any error. */
void bench_bulk_send(uint64_t bytes, const struct sockaddr *to,
                     const qpeer_peer_id_t *pid, const char *alpn,
                     double *pt0, double *pt1);

/* The sending connection's statistics when the last bench_bulk_send()
 * ended (e.g. its path's packet size and congestion window). */
extern qpeer_conn_stats_t bench_bulk_last_stats;

/* The receiving side: accepts the connection waiting on |ep| and adds
 * every byte its streams deliver to |*received|. The connection frees
 * itself when it ends. Returns 0 or an error. */
int bench_sink_accept(qpeer_endpoint_t *ep, uint64_t *received);

#endif
