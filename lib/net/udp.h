/* SPDX-License-Identifier: MIT */
/*
 * The endpoint's UDP socket: a non-blocking datagram socket driven by a
 * uv_poll_t, with batched receive (recvmmsg) and batched send (UDP GSO via
 * UDP_SEGMENT where the kernel accepts it, else sendmmsg).
 */
#ifndef QPEER_NET_UDP_H
#define QPEER_NET_UDP_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define QPEER__UDP_RX_BATCH 64    /* datagrams per recvmmsg */
#define QPEER__UDP_RX_SIZE 2048   /* bytes per receive slot */
#define QPEER__UDP_GRO_BATCH 16   /* slots per recvmmsg with UDP GRO */
#define QPEER__UDP_GRO_SIZE 65536 /* bytes per slot with UDP GRO */
#define QPEER__UDP_TX_BATCH 64    /* segments per send call */
#define QPEER__UDP_GSO_MAX_BYTES 65507 /* bytes in one GSO send */

typedef struct qpeer__udp qpeer__udp;

/* Called for each received datagram; |truncated| when it did not fit. */
typedef void (*qpeer__udp_recv_fn)(qpeer__udp *u, const uint8_t *data,
                                   size_t len, const struct sockaddr *from,
                                   int truncated);
/* Called after a receive batch was dispatched. */
typedef void (*qpeer__udp_batch_fn)(qpeer__udp *u);
/* Called when the socket became writable after UV_EAGAIN. */
typedef void (*qpeer__udp_writable_fn)(qpeer__udp *u);

/* Receive storage (buffers and recvmmsg headers) that several sockets on
 * one loop may share: a socket uses it only inside its own receive
 * callback, and sockets are read one at a time. */
typedef struct qpeer__udp_rx {
  int gro;                        /* sized for UDP GRO trains */
  int nslots;                     /* receive slots */
  size_t slot_size;               /* bytes per slot */
  uint8_t *buf;                   /* nslots * slot_size bytes */
  struct mmsghdr *msgs;           /* nslots headers */
  struct iovec *iovs;             /* nslots iovecs */
  struct sockaddr_storage *addrs; /* nslots source addresses */
  char *cmsgs;                    /* nslots control buffers */
} qpeer__udp_rx;

struct qpeer__udp {
  uv_poll_t poll;                   /* readiness of fd */
  int fd;                           /* the socket */
  int family;                       /* AF_INET or AF_INET6 */
  int v4mapped;                     /* IPv6 socket that carries IPv4 */
  struct sockaddr_storage local;    /* bound address with real port */
  int gso;                          /* UDP_SEGMENT usable */
  int gro;                          /* UDP_GRO enabled: slots hold trains */
  int nslots;                       /* receive slots */
  size_t slot_size;                 /* bytes per receive slot */
  char *cmsgs;                      /* per-slot control buffers */
  int events;                       /* current poll events */
  qpeer__udp_recv_fn on_recv;       /* per-datagram callback */
  qpeer__udp_batch_fn on_batch_end; /* end-of-batch callback */
  qpeer__udp_writable_fn on_writable; /* writable callback */
  uint8_t *rxbuf;                   /* RX_BATCH * RX_SIZE bytes */
  struct mmsghdr *msgs;             /* RX_BATCH headers */
  struct iovec *iovs;               /* RX_BATCH iovecs */
  struct sockaddr_storage *addrs;   /* RX_BATCH source addresses */
  uint64_t syscalls;                /* send system calls made */
  int shared_rx;                    /* the rx storage is borrowed */
  int closing_fd;                   /* fd to close once poll closed */
  uv_close_cb close_cb;             /* user's close callback */
};

/* qpeer__udp_open creates and binds the socket and starts reading.
 * Returns 0 or a UV_E* code. */
int qpeer__udp_open(qpeer__udp *u, uv_loop_t *loop,
                    const struct sockaddr *bind_addr, int v6only,
                    int disable_gso);

/* qpeer__udp_rx_init allocates shared receive storage, for UDP GRO
 * trains when |gro| (16 slots of 64 KiB) or else 64 slots of 2 KiB.
 * Returns 0 or UV_ENOMEM. qpeer__udp_rx_free releases it (after every
 * socket using it is closed). */
int qpeer__udp_rx_init(qpeer__udp_rx *rx, int gro);
void qpeer__udp_rx_free(qpeer__udp_rx *rx);

/* qpeer__udp_open_shared is qpeer__udp_open (GSO where possible, IPv6
 * sockets IPv6-only when |v6only|) reading into |rx|, which must outlive
 * the socket; UDP GRO is enabled only when |rx| is sized for it. */
int qpeer__udp_open_shared(qpeer__udp *u, uv_loop_t *loop,
                           const struct sockaddr *bind_addr, int v6only,
                           qpeer__udp_rx *rx);

/* qpeer__udp_send sends |len| bytes to |to|: one datagram, or with
 * |segsize| < |len| a train of |segsize|-byte datagrams (the last may be
 * shorter). Returns 0, UV_EAGAIN (nothing sent; wait for on_writable),
 * or another UV_E* code (the packets are dropped, as UDP may). */
int qpeer__udp_send(qpeer__udp *u, const struct sockaddr *to,
                    const uint8_t *data, size_t len, size_t segsize);

/* qpeer__udp_want_writable turns writable notifications on or off. */
void qpeer__udp_want_writable(qpeer__udp *u, int on);

/* qpeer__udp_close stops I/O and closes the socket; |cb| gets the poll
 * handle once it is closed. */
void qpeer__udp_close(qpeer__udp *u, uv_close_cb cb);

#endif /* QPEER_NET_UDP_H */
