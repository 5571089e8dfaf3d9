/* SPDX-License-Identifier: MIT */
/*
 * ABI pins: the sizes of the public structs that callers allocate. A
 * change here is an ABI break and needs a new SONAME (doc/abi.md). The
 * file also proves that qpeer.h compiles on its own in strict C11.
 */
#include <stdio.h>

#include "qpeer.h"

#define PIN(type, size)                                                       \
  _Static_assert(sizeof(type) == (size), #type " changed size")

PIN(qpeer_handle_t, 80);
PIN(qpeer_endpoint_t, 80);
PIN(qpeer_conn_t, 80);
PIN(qpeer_stream_t, 80);
PIN(qpeer_req_t, 56);
PIN(qpeer_connect_t, 72);
PIN(qpeer_write_t, 168);
PIN(qpeer_shutdown_t, 64);
PIN(qpeer_peer_id_t, 32);
PIN(qpeer_migrate_t, 320);
PIN(qpeer_punch_t, 344);
PIN(qpeer_gather_t, 13640);
PIN(qpeer_stun_t, 736);
PIN(qpeer_netcheck_t, 72);
PIN(qpeer_tunnel_t, 80);
PIN(qpeer_relay_bind_t, 80);
PIN(qpeer_relay_t, 80);
PIN(qpeer_portmap_t, 80);
PIN(qpeer_candidate_t, 424);
PIN(qpeer_ticket_t, 2448);
PIN(qpeer_bootstrap_t, 56);
PIN(qpeer_path_t, 256);
PIN(qpeer_peer_listener_t, 80);
PIN(qpeer_peer_listener_stats_t, 72);

int main(void) {
  printf("1 passed, 0 failed\n");
  return 0;
}
