/* SPDX-License-Identifier: MIT */
/*
 * An in-process UDP forwarder with impairments, for loopback tests (after
 * quicly's t/udpfw.c): clients send to the forwarder's address, which
 * relays to the server and back, dropping a configurable fraction of
 * packets (seeded, so runs repeat) and reordering by holding one packet
 * back. It can also rebind its upstream socket to simulate a NAT rebinding.
 */
#ifndef QPEER_TEST_UDPFW_H
#define QPEER_TEST_UDPFW_H

#include <stdint.h>
#include <uv.h>

typedef struct qpt_udpfw {
  uv_loop_t *loop;               /* loop */
  uv_udp_t front;                /* clients talk to this socket */
  uv_udp_t *back;                /* talks to the server (heap) */
  uv_timer_t flush;              /* releases a held packet */
  struct sockaddr_storage server;  /* where to forward */
  struct sockaddr_storage client;  /* last client address seen */
  int have_client;               /* client is known */
  unsigned drop_permille;        /* drop probability in 1/1000 */
  unsigned reorder_permille;     /* hold-back probability in 1/1000 */
  uint64_t rng;                  /* xorshift state */
  struct {
    char buf[2048];              /* held packet */
    size_t len;                  /* its length (0 = none) */
    int to_server;               /* direction */
  } held;
  uint64_t forwarded, dropped, reordered; /* counters */
} qpt_udpfw;

/* Starts a forwarder to |server|; |bind| is the front address (port 0). */
int qpt_udpfw_start(qpt_udpfw *fw, uv_loop_t *loop,
                    const struct sockaddr *bind, const struct sockaddr *server,
                    unsigned drop_permille, unsigned reorder_permille,
                    uint64_t seed);
/* Writes the front socket's address. */
void qpt_udpfw_addr(qpt_udpfw *fw, struct sockaddr_storage *out);
/* Replaces the upstream socket (new source port toward the server). */
int qpt_udpfw_rebind(qpt_udpfw *fw);
/* Closes the sockets and the timer. */
void qpt_udpfw_stop(qpt_udpfw *fw);

#endif
