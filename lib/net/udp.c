/* SPDX-License-Identifier: MIT */
/*
 * Socket glue for the endpoint (see udp.h). This is the only file in lib/
 * that issues socket system calls. Divisions: open/bind, receive batch,
 * send (GSO or sendmmsg), close.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/udp.h>
#include <string.h>
#include <unistd.h>

#include "core/addr.h"
#include "internal.h"
#include "net/udp.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#define CMSG_SLOT CMSG_SPACE(sizeof(int))
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

static void on_poll(uv_poll_t *p, int status, int events);

static void set_buffers(int fd) {
  int size = 4 * 1024 * 1024;
  /* FORCE works for root and ignores rmem_max; fall back to the capped
   * request otherwise. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static int probe_gso(int fd) {
  int seg = 1200;
  /* Setting the socket-level default and resetting it proves support. */
  if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) != 0)
    return 0;
  seg = 0;
  setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg));
  return 1;
}

static void rx_free(uint8_t *buf, struct mmsghdr *msgs, struct iovec *iovs,
                    struct sockaddr_storage *addrs, char *cmsgs) {
  qpeer__free(buf);
  qpeer__free(msgs);
  qpeer__free(iovs);
  qpeer__free(addrs);
  qpeer__free(cmsgs);
}

int qpeer__udp_rx_init(qpeer__udp_rx *rx, int gro) {
  int i;
  memset(rx, 0, sizeof(*rx));
  rx->gro = gro;
  rx->nslots = gro ? QPEER__UDP_GRO_BATCH : QPEER__UDP_RX_BATCH;
  rx->slot_size = gro ? QPEER__UDP_GRO_SIZE : QPEER__UDP_RX_SIZE;
  rx->buf = qpeer__malloc((size_t)rx->nslots * rx->slot_size);
  rx->msgs = qpeer__calloc((size_t)rx->nslots, sizeof(*rx->msgs));
  rx->iovs = qpeer__calloc((size_t)rx->nslots, sizeof(*rx->iovs));
  rx->addrs = qpeer__calloc((size_t)rx->nslots, sizeof(*rx->addrs));
  rx->cmsgs = qpeer__calloc((size_t)rx->nslots, CMSG_SLOT);
  if (!rx->buf || !rx->msgs || !rx->iovs || !rx->addrs || !rx->cmsgs) {
    qpeer__udp_rx_free(rx);
    return UV_ENOMEM;
  }
  for (i = 0; i < rx->nslots; i++) {
    rx->iovs[i].iov_base = rx->buf + (size_t)i * rx->slot_size;
    rx->iovs[i].iov_len = rx->slot_size;
  }
  return 0;
}

void qpeer__udp_rx_free(qpeer__udp_rx *rx) {
  rx_free(rx->buf, rx->msgs, rx->iovs, rx->addrs, rx->cmsgs);
  memset(rx, 0, sizeof(*rx));
}

static int udp_open(qpeer__udp *u, uv_loop_t *loop,
                    const struct sockaddr *bind_addr, int v6only,
                    int disable_gso, qpeer__udp_rx *rx);

int qpeer__udp_open(qpeer__udp *u, uv_loop_t *loop,
                    const struct sockaddr *bind_addr, int v6only,
                    int disable_gso) {
  return udp_open(u, loop, bind_addr, v6only, disable_gso, NULL);
}

int qpeer__udp_open_shared(qpeer__udp *u, uv_loop_t *loop,
                           const struct sockaddr *bind_addr, int v6only,
                           qpeer__udp_rx *rx) {
  if (!rx || !rx->buf)
    return UV_EINVAL;
  return udp_open(u, loop, bind_addr, v6only, 0, rx);
}

static int udp_open(qpeer__udp *u, uv_loop_t *loop,
                    const struct sockaddr *bind_addr, int v6only,
                    int disable_gso, qpeer__udp_rx *rx) {
  struct sockaddr_in6 any6;
  socklen_t alen;
  int fd, r, off = 0, on = 1, i;

  memset(u, 0, sizeof(*u));
  u->fd = -1;
  if (!bind_addr) {
    memset(&any6, 0, sizeof(any6));
    any6.sin6_family = AF_INET6;
    bind_addr = (const struct sockaddr *)&any6;
  }
  alen = qpeer__addr_len(bind_addr);
  if (alen == 0)
    return UV_EAFNOSUPPORT;
  fd = socket(bind_addr->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
              0);
  if (fd < 0)
    return -errno;
  u->family = bind_addr->sa_family;
  if (u->family == AF_INET6) {
    int v = v6only ? 1 : 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v));
    u->v4mapped = !v6only;
    (void)off;
  }
  {
    /* Set DF so that path MTU probes are honest. */
    int pmtu = IP_PMTUDISC_PROBE;
    if (u->family == AF_INET)
      setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
    else {
      pmtu = IPV6_PMTUDISC_PROBE;
      setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof(pmtu));
      if (u->v4mapped) {
        pmtu = IP_PMTUDISC_PROBE;
        setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
      }
    }
  }
  (void)on;
  set_buffers(fd);
  if (bind(fd, bind_addr, alen) != 0) {
    r = -errno;
    close(fd);
    return r;
  }
  alen = sizeof(u->local);
  if (getsockname(fd, (struct sockaddr *)&u->local, &alen) != 0) {
    r = -errno;
    close(fd);
    return r;
  }
  u->gso = disable_gso ? 0 : probe_gso(fd);
  {
    /* With GRO the kernel hands over whole trains of equal-sized
     * datagrams (the peer's GSO trains arrive unsplit on loopback), so
     * there are fewer, larger slots. */
    int one = 1;
    u->gro = !disable_gso && (!rx || rx->gro) &&
             setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
  }
  if (rx) {
    /* Borrowed storage: slots as the owner sized them. */
    u->shared_rx = 1;
    u->nslots = rx->nslots;
    u->slot_size = rx->slot_size;
    u->rxbuf = rx->buf;
    u->msgs = rx->msgs;
    u->iovs = rx->iovs;
    u->addrs = rx->addrs;
    u->cmsgs = rx->cmsgs;
    goto poll;
  }
  u->nslots = u->gro ? QPEER__UDP_GRO_BATCH : QPEER__UDP_RX_BATCH;
  u->slot_size = u->gro ? QPEER__UDP_GRO_SIZE : QPEER__UDP_RX_SIZE;
  u->rxbuf = qpeer__malloc((size_t)u->nslots * u->slot_size);
  u->msgs = qpeer__calloc((size_t)u->nslots, sizeof(*u->msgs));
  u->iovs = qpeer__calloc((size_t)u->nslots, sizeof(*u->iovs));
  u->addrs = qpeer__calloc((size_t)u->nslots, sizeof(*u->addrs));
  u->cmsgs = qpeer__calloc((size_t)u->nslots, CMSG_SLOT);
  if (!u->rxbuf || !u->msgs || !u->iovs || !u->addrs || !u->cmsgs) {
    r = UV_ENOMEM;
    goto fail;
  }
  for (i = 0; i < u->nslots; i++) {
    u->iovs[i].iov_base = u->rxbuf + (size_t)i * u->slot_size;
    u->iovs[i].iov_len = u->slot_size;
  }
poll:
  r = uv_poll_init(loop, &u->poll, fd);
  if (r != 0)
    goto fail;
  u->poll.data = u;
  u->fd = fd;
  u->events = UV_READABLE;
  r = uv_poll_start(&u->poll, u->events, on_poll);
  if (r != 0) {
    /* The poll handle exists now; the caller closes it with udp_close. */
    return r;
  }
  return 0;
fail:
  if (!u->shared_rx)
    rx_free(u->rxbuf, u->msgs, u->iovs, u->addrs, u->cmsgs);
  u->rxbuf = NULL;
  u->msgs = NULL;
  u->iovs = NULL;
  u->addrs = NULL;
  u->cmsgs = NULL;
  close(fd);
  return r;
}

/* The segment size of a GRO train, or 0 when the slot holds one datagram. */
static size_t gro_size(struct msghdr *h) {
  struct cmsghdr *cm;
  int v;
  for (cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR(h, cm)) {
    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
      memcpy(&v, CMSG_DATA(cm), sizeof(v));
      return v > 0 ? (size_t)v : 0;
    }
  }
  return 0;
}

static void do_recv(qpeer__udp *u) {
  int n, i, rounds;
  /* Bounded: at most 16 batches per wake-up so that one busy socket cannot
   * starve the loop. */
  for (rounds = 0; rounds < 16; rounds++) {
    for (i = 0; i < u->nslots; i++) {
      struct msghdr *h = &u->msgs[i].msg_hdr;
      memset(h, 0, sizeof(*h));
      h->msg_name = &u->addrs[i];
      h->msg_namelen = sizeof(u->addrs[i]);
      h->msg_iov = &u->iovs[i];
      h->msg_iovlen = 1;
      if (u->gro) {
        h->msg_control = u->cmsgs + (size_t)i * CMSG_SLOT;
        h->msg_controllen = CMSG_SLOT;
      }
      u->msgs[i].msg_len = 0;
    }
    n = recvmmsg(u->fd, u->msgs, (unsigned)u->nslots, MSG_DONTWAIT, NULL);
    if (n <= 0)
      return;
    for (i = 0; i < n && u->fd >= 0; i++) {
      struct sockaddr_storage from;
      struct msghdr *h = &u->msgs[i].msg_hdr;
      const uint8_t *p = u->iovs[i].iov_base;
      size_t len = u->msgs[i].msg_len, seg = u->gro ? gro_size(h) : 0, off;
      int trunc = (h->msg_flags & MSG_TRUNC) != 0;
      qpeer__addr_normalize(&from, (struct sockaddr *)&u->addrs[i]);
      if (seg == 0 || seg >= len || trunc) {
        u->on_recv(u, p, len, (struct sockaddr *)&from, trunc);
        continue;
      }
      for (off = 0; off < len && u->fd >= 0; off += seg)
        u->on_recv(u, p + off, QPEER__MIN(seg, len - off),
                   (struct sockaddr *)&from, 0);
    }
    if (u->on_batch_end && u->fd >= 0)
      u->on_batch_end(u);
    if (n < u->nslots || u->fd < 0)
      return;
  }
}

static void on_poll(uv_poll_t *p, int status, int events) {
  qpeer__udp *u = p->data;
  if (status < 0) {
    qpeer__log(QPEER_LOG_WARN, "udp poll error: %s", uv_strerror(status));
    return;
  }
  if ((events & UV_WRITABLE) && u->on_writable)
    u->on_writable(u);
  if ((events & UV_READABLE) && u->fd >= 0)
    do_recv(u);
}

void qpeer__udp_want_writable(qpeer__udp *u, int on) {
  int ev = UV_READABLE | (on ? UV_WRITABLE : 0);
  if (u->fd < 0 || ev == u->events)
    return;
  u->events = ev;
  uv_poll_start(&u->poll, ev, on_poll);
}

static int send_gso(qpeer__udp *u, const struct sockaddr *to,
                    socklen_t tolen, const uint8_t *data, size_t len,
                    size_t segsize) {
  struct msghdr h;
  struct iovec iov;
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } u_cmsg;
  struct cmsghdr *cm;
  uint16_t seg = (uint16_t)segsize;
  ssize_t n;

  memset(&h, 0, sizeof(h));
  iov.iov_base = (void *)data;
  iov.iov_len = len;
  h.msg_name = (void *)to;
  h.msg_namelen = tolen;
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  if (segsize < len) {
    memset(&u_cmsg, 0, sizeof(u_cmsg));
    h.msg_control = u_cmsg.buf;
    h.msg_controllen = sizeof(u_cmsg.buf);
    cm = CMSG_FIRSTHDR(&h);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(seg));
    memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
  }
  do {
    n = sendmsg(u->fd, &h, 0);
  } while (n < 0 && errno == EINTR);
  u->syscalls++;
  if (n < 0)
    return -errno;
  return 0;
}

static int send_mmsg(qpeer__udp *u, const struct sockaddr *to,
                     socklen_t tolen, const uint8_t *data, size_t len,
                     size_t segsize) {
  struct mmsghdr m[QPEER__UDP_TX_BATCH];
  struct iovec iov[QPEER__UDP_TX_BATCH];
  size_t off = 0, cnt = 0, done = 0;
  int n;
  while (off < len && cnt < QPEER__UDP_TX_BATCH) {
    size_t l = QPEER__MIN(segsize, len - off);
    memset(&m[cnt], 0, sizeof(m[cnt]));
    iov[cnt].iov_base = (void *)(data + off);
    iov[cnt].iov_len = l;
    m[cnt].msg_hdr.msg_name = (void *)to;
    m[cnt].msg_hdr.msg_namelen = tolen;
    m[cnt].msg_hdr.msg_iov = &iov[cnt];
    m[cnt].msg_hdr.msg_iovlen = 1;
    off += l;
    cnt++;
  }
  while (done < cnt) {
    do {
      n = sendmmsg(u->fd, m + done, (unsigned)(cnt - done), 0);
    } while (n < 0 && errno == EINTR);
    u->syscalls++;
    if (n < 0) {
      /* Partly sent: report success for what went; the rest is lost like
       * any UDP loss and QUIC recovers it. */
      return done ? 0 : -errno;
    }
    done += (size_t)n;
  }
  return 0;
}

int qpeer__udp_send(qpeer__udp *u, const struct sockaddr *to,
                    const uint8_t *data, size_t len, size_t segsize) {
  struct sockaddr_storage dst;
  socklen_t tolen;
  int r;
  if (u->fd < 0)
    return UV_EBADF;
  if (segsize == 0 || segsize > len)
    segsize = len;
  if (u->family == AF_INET6 && to->sa_family == AF_INET) {
    if (!u->v4mapped)
      return UV_EAFNOSUPPORT;
    qpeer__addr_to_v6mapped(&dst, to);
    to = (const struct sockaddr *)&dst;
  } else if (u->family == AF_INET && to->sa_family != AF_INET) {
    return UV_EAFNOSUPPORT;
  }
  tolen = qpeer__addr_len(to);
  if (segsize == len || u->gso) {
    r = send_gso(u, to, tolen, data, len, segsize);
    if (r == UV_EIO && segsize < len) {
      /* The device refused segmentation offload: stop using it. */
      u->gso = 0;
      r = send_mmsg(u, to, tolen, data, len, segsize);
    }
  } else {
    r = send_mmsg(u, to, tolen, data, len, segsize);
  }
  if (r == UV_EAGAIN || r == -EWOULDBLOCK || r == UV_ENOBUFS)
    return UV_EAGAIN;
  return r;
}

static void on_poll_closed(uv_handle_t *h) {
  qpeer__udp *u = h->data;
  if (u->closing_fd >= 0)
    close(u->closing_fd);
  u->closing_fd = -1;
  if (u->close_cb)
    u->close_cb(h);
}

void qpeer__udp_close(qpeer__udp *u, uv_close_cb cb) {
  u->closing_fd = u->fd;
  u->close_cb = cb;
  if (u->fd >= 0)
    uv_poll_stop(&u->poll);
  u->fd = -1;
  if (!u->shared_rx)
    rx_free(u->rxbuf, u->msgs, u->iovs, u->addrs, u->cmsgs);
  u->rxbuf = NULL;
  u->msgs = NULL;
  u->iovs = NULL;
  u->addrs = NULL;
  u->cmsgs = NULL;
  u->poll.data = u;
  uv_close((uv_handle_t *)&u->poll, on_poll_closed);
}
