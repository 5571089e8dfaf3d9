/* SPDX-License-Identifier: MIT */
/*
 * udpprobe: a tiny standalone UDP probe for the qpeer NAT lab (test/nat/).
 *
 * No qpeer dependency: plain POSIX sockets, poll() with timeouts, and every
 * loop bounded in count and in time. IPv4 only (the lab is IPv4).
 *
 *   udpprobe echo PORT [SECONDS] [MAXPKTS]
 *       Answer each datagram with "SRC ip:port" (the observed source), sent
 *       from the address the datagram was sent to (IP_PKTINFO), so one echo
 *       serves several addresses of a namespace. Exits after SECONDS
 *       (default 60) or MAXPKTS datagrams (default 100000).
 *   udpprobe ask [LOCALIP:]LOCALPORT SERVER:PORT [SERVER:PORT ...]
 *       From one bound local port, ask each echo server for the observed
 *       source. Prints "MAPPED SERVER ip:port" or "TIMEOUT SERVER" per
 *       server. Exit 0 if every server answered, 1 otherwise.
 *   udpprobe punch [LOCALIP:]LOCALPORT PEER:PORT SECONDS [START_EPOCH_MS]
 *       Optionally wait until START_EPOCH_MS (CLOCK_REALTIME, for a
 *       coordinated start), then send a packet every 50 ms to the peer and to
 *       every peer-reflexive source seen since. Prints "GOT from ip:port" on
 *       the first datagram from the peer (its IP, any port), and keeps
 *       answering. Exit 0 if anything from the peer arrived within SECONDS,
 *       else 1. Stops early (after a short linger) once the peer reports that
 *       it got our packets too.
 *   udpprobe recv [LOCALIP:]LOCALPORT SECONDS [SERVER:PORT]
 *       Optionally first ask SERVER (creates the NAT mapping, prints
 *       "MAPPED ..."), then print "READY" and wait for a datagram from any
 *       other source. Prints "GOT from ip:port" and exits 0, or "NOTHING"
 *       and exits 1 after SECONDS.
 *   udpprobe send [SRCIP:]SRCPORT DEST:PORT [COUNT]
 *       Send COUNT (default 3) datagrams, 20 ms apart, from the given source.
 *   udpprobe delay QUEUE MS SECONDS
 *       NFQUEUE delay line over raw netlink (no libnetfilter_queue): hold
 *       each packet of queue QUEUE for MS milliseconds, then accept it, in
 *       order. Pair with
 *         iptables -t raw -A PREROUTING -i wan -j NFQUEUE --queue-num QUEUE --queue-bypass
 *       (the kernel has no netem). Exits after SECONDS or on SIGTERM,
 *       accepting everything still held.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>

#define MAX_SERVERS 16
#define MAX_TARGETS 8
#define MAX_SECONDS 3600

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
  (void)sig;
  g_stop = 1;
}

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(void)
{
  fprintf(stderr,
    "usage: udpprobe echo PORT [SECONDS] [MAXPKTS]\n"
    "       udpprobe ask [LOCALIP:]LOCALPORT SERVER:PORT [SERVER:PORT ...]\n"
    "       udpprobe punch [LOCALIP:]LOCALPORT PEER:PORT SECONDS [START_EPOCH_MS]\n"
    "       udpprobe recv [LOCALIP:]LOCALPORT SECONDS [SERVER:PORT]\n"
    "       udpprobe send [SRCIP:]SRCPORT DEST:PORT [COUNT]\n"
    "       udpprobe delay QUEUE MS SECONDS\n");
  exit(2);
}

static long parse_num(const char *s, long lo, long hi)
{
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "udpprobe: bad number '%s' (want %ld..%ld)\n", s, lo, hi);
    exit(2);
  }
  return v;
}

/* "ip:port" (need_ip) or "[ip:]port" (!need_ip; ip defaults to 0.0.0.0). */
static void parse_addr(const char *s, int need_ip, struct sockaddr_in *out)
{
  char buf[64];
  memset(out, 0, sizeof(*out));
  out->sin_family = AF_INET;
  if (strlen(s) >= sizeof(buf)) {
    fprintf(stderr, "udpprobe: address too long '%s'\n", s);
    exit(2);
  }
  strcpy(buf, s);
  char *colon = strrchr(buf, ':');
  const char *port = buf;
  if (colon) {
    *colon = '\0';
    port = colon + 1;
    if (inet_pton(AF_INET, buf, &out->sin_addr) != 1) {
      fprintf(stderr, "udpprobe: bad IPv4 address '%s'\n", buf);
      exit(2);
    }
  } else if (need_ip) {
    fprintf(stderr, "udpprobe: want ip:port, got '%s'\n", s);
    exit(2);
  } else {
    out->sin_addr.s_addr = htonl(INADDR_ANY);
  }
  out->sin_port = htons((uint16_t)parse_num(port, 0, 65535));
}

static const char *fmt_addr(const struct sockaddr_in *a, char *buf, size_t len)
{
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
  snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
  return buf;
}

static int same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
  return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static int udp_bound(const struct sockaddr_in *local)
{
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    perror("udpprobe: socket");
    exit(3);
  }
  if (bind(fd, (const struct sockaddr *)local, sizeof(*local)) < 0) {
    char b[64];
    fprintf(stderr, "udpprobe: bind %s: %s\n", fmt_addr(local, b, sizeof(b)),
            strerror(errno));
    exit(3);
  }
  return fd;
}

/* Wait up to timeout_ms for one datagram. Returns length, 0 on timeout. */
static ssize_t recv_timeout(int fd, char *buf, size_t len,
                            struct sockaddr_in *from, int timeout_ms)
{
  struct pollfd p = { .fd = fd, .events = POLLIN };
  if (timeout_ms < 0)
    timeout_ms = 0;
  int r = poll(&p, 1, timeout_ms);
  if (r <= 0)
    return 0;
  socklen_t fl = sizeof(*from);
  ssize_t n = recvfrom(fd, buf, len - 1, MSG_DONTWAIT, (struct sockaddr *)from, &fl);
  if (n < 0)
    return 0; /* e.g. ECONNREFUSED from an ICMP error: treat as nothing */
  buf[n] = '\0';
  return n > 0 ? n : 0;
}

/* Parse "SRC ip:port" from an echo reply. */
static int parse_src_reply(const char *buf, struct sockaddr_in *out)
{
  if (strncmp(buf, "SRC ", 4) != 0)
    return -1;
  char tmp[64];
  size_t i = 0;
  const char *p = buf + 4;
  while (*p && *p != ' ' && *p != '\n' && i + 1 < sizeof(tmp))
    tmp[i++] = *p++;
  tmp[i] = '\0';
  char *colon = strrchr(tmp, ':');
  if (!colon)
    return -1;
  *colon = '\0';
  memset(out, 0, sizeof(*out));
  out->sin_family = AF_INET;
  if (inet_pton(AF_INET, tmp, &out->sin_addr) != 1)
    return -1;
  long port = strtol(colon + 1, NULL, 10);
  if (port <= 0 || port > 65535)
    return -1;
  out->sin_port = htons((uint16_t)port);
  return 0;
}

/* Ask one echo server (3 tries x 400 ms). 0 on success, fills *mapped. */
static int ask_one(int fd, const struct sockaddr_in *srv, struct sockaddr_in *mapped)
{
  char buf[512];
  for (int attempt = 0; attempt < 3; attempt++) {
    const char *msg = "ASK";
    sendto(fd, msg, strlen(msg), 0, (const struct sockaddr *)srv, sizeof(*srv));
    int64_t deadline = now_ms() + 400;
    for (int n = 0; n < 64; n++) {
      int64_t left = deadline - now_ms();
      if (left <= 0)
        break;
      struct sockaddr_in from;
      if (recv_timeout(fd, buf, sizeof(buf), &from, (int)left) <= 0)
        continue;
      if (same_addr(&from, srv) && parse_src_reply(buf, mapped) == 0)
        return 0;
    }
  }
  return -1;
}

/* ------------------------------------------------------------------ echo */
static int cmd_echo(int argc, char **argv)
{
  if (argc < 1 || argc > 3)
    usage();
  struct sockaddr_in local;
  parse_addr(argv[0], 0, &local);
  long seconds = argc > 1 ? parse_num(argv[1], 1, MAX_SECONDS) : 60;
  long maxpkts = argc > 2 ? parse_num(argv[2], 1, 10000000) : 100000;
  int fd = udp_bound(&local);
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
  int64_t deadline = now_ms() + seconds * 1000;
  long served = 0;
  while (!g_stop && served < maxpkts) {
    int64_t left = deadline - now_ms();
    if (left <= 0)
      break;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
      continue;
    char buf[1500];
    char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
    struct sockaddr_in from;
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
    struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from),
                         .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n < 0)
      continue;
    struct in_addr dst = { 0 };
    int have_dst = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        struct in_pktinfo pi;
        memcpy(&pi, CMSG_DATA(c), sizeof(pi));
        dst = pi.ipi_addr;
        have_dst = 1;
      }
    }
    char a[64], reply[128];
    int rl = snprintf(reply, sizeof(reply), "SRC %s\n", fmt_addr(&from, a, sizeof(a)));
    /* Reply from the address the request was sent to. */
    char obuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
    memset(obuf, 0, sizeof(obuf));
    struct iovec oiov = { .iov_base = reply, .iov_len = (size_t)rl };
    struct msghdr om = { .msg_name = &from, .msg_namelen = sizeof(from),
                         .msg_iov = &oiov, .msg_iovlen = 1 };
    if (have_dst) {
      om.msg_control = obuf;
      om.msg_controllen = sizeof(obuf);
      struct cmsghdr *c = CMSG_FIRSTHDR(&om);
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
      struct in_pktinfo pi;
      memset(&pi, 0, sizeof(pi));
      pi.ipi_spec_dst = dst;
      memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    }
    sendmsg(fd, &om, 0);
    served++;
  }
  close(fd);
  return 0;
}

/* ------------------------------------------------------------------- ask */
static int cmd_ask(int argc, char **argv)
{
  if (argc < 2 || argc - 1 > MAX_SERVERS)
    usage();
  struct sockaddr_in local;
  parse_addr(argv[0], 0, &local);
  int fd = udp_bound(&local);
  int ok = 0;
  for (int i = 1; i < argc; i++) {
    struct sockaddr_in srv, mapped;
    parse_addr(argv[i], 1, &srv);
    char a[64], b[64];
    int64_t t0 = now_ms();
    if (ask_one(fd, &srv, &mapped) == 0) {
      printf("MAPPED %s %s rtt=%" PRId64 "ms\n", fmt_addr(&srv, a, sizeof(a)),
             fmt_addr(&mapped, b, sizeof(b)), now_ms() - t0);
      ok++;
    } else {
      printf("TIMEOUT %s\n", fmt_addr(&srv, a, sizeof(a)));
    }
    fflush(stdout);
  }
  close(fd);
  return ok == argc - 1 ? 0 : 1;
}

/* ----------------------------------------------------------------- punch */
static int cmd_punch(int argc, char **argv)
{
  if (argc < 3 || argc > 4)
    usage();
  struct sockaddr_in local, peer;
  parse_addr(argv[0], 0, &local);
  parse_addr(argv[1], 1, &peer);
  long seconds = parse_num(argv[2], 1, 600);
  int fd = udp_bound(&local);

  if (argc == 4) {
    long long start = strtoll(argv[3], NULL, 10);
    int64_t wait = (int64_t)start - wall_ms();
    if (wait > 60000) {
      fprintf(stderr, "udpprobe: start time more than 60 s ahead\n");
      return 2;
    }
    if (wait > 0) {
      struct timespec ts = { .tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000 };
      nanosleep(&ts, NULL);
    }
  }

  struct sockaddr_in targets[MAX_TARGETS];
  int ntargets = 1;
  targets[0] = peer;
  int got = 0, peer_got = 0;
  long sent = 0, rcvd = 0;
  int64_t t0 = now_ms();
  int64_t deadline = t0 + seconds * 1000;
  int64_t next_send = t0;
  int64_t linger_until = 0;
  char a[64];

  /* Bounded: at most seconds*20 send rounds plus a few receives each. */
  while (!g_stop) {
    int64_t now = now_ms();
    if (now >= deadline || (linger_until && now >= linger_until))
      break;
    if (now >= next_send) {
      char msg[96];
      int ml = snprintf(msg, sizeof(msg), "PUNCH %ld got=%d", sent, got);
      for (int i = 0; i < ntargets; i++)
        sendto(fd, msg, (size_t)ml, 0, (struct sockaddr *)&targets[i], sizeof(targets[i]));
      sent++;
      next_send = now + 50;
    }
    int64_t wait = next_send - now_ms();
    struct sockaddr_in from;
    char buf[512];
    if (recv_timeout(fd, buf, sizeof(buf), &from, (int)(wait > 0 ? wait : 0)) <= 0)
      continue;
    if (from.sin_addr.s_addr != peer.sin_addr.s_addr && strncmp(buf, "PUNCH", 5) != 0)
      continue;
    rcvd++;
    int known = 0;
    for (int i = 0; i < ntargets; i++)
      if (same_addr(&targets[i], &from))
        known = 1;
    if (!got) {
      printf("GOT from %s after %" PRId64 " ms%s\n", fmt_addr(&from, a, sizeof(a)),
             now_ms() - t0, known ? "" : " (peer-reflexive)");
      fflush(stdout);
      got = 1;
      next_send = now_ms(); /* tell the peer at once */
    }
    if (!known && ntargets < MAX_TARGETS) {
      targets[ntargets++] = from;
      if (got)
        printf("ANSWERING %s\n", fmt_addr(&from, a, sizeof(a)));
    }
    if (!peer_got && strstr(buf, "got=1")) {
      peer_got = 1;
      printf("PEER-GOT\n");
      fflush(stdout);
      /* keep answering a little so the peer also sees our got=1 */
      linger_until = now_ms() + 600;
    }
  }
  printf("SENT %ld RECEIVED %ld %s\n", sent, rcvd, got ? "SUCCESS" : "FAIL");
  close(fd);
  return got ? 0 : 1;
}

/* ------------------------------------------------------------------ recv */
static int cmd_recv(int argc, char **argv)
{
  if (argc < 2 || argc > 3)
    usage();
  struct sockaddr_in local, srv;
  parse_addr(argv[0], 0, &local);
  long seconds = parse_num(argv[1], 1, 600);
  int fd = udp_bound(&local);
  int have_srv = 0;
  char a[64], b[64];
  if (argc == 3) {
    struct sockaddr_in mapped;
    parse_addr(argv[2], 1, &srv);
    have_srv = 1;
    if (ask_one(fd, &srv, &mapped) == 0)
      printf("MAPPED %s %s\n", fmt_addr(&srv, a, sizeof(a)), fmt_addr(&mapped, b, sizeof(b)));
    else
      printf("TIMEOUT %s\n", fmt_addr(&srv, a, sizeof(a)));
  }
  printf("READY\n");
  fflush(stdout);
  int64_t deadline = now_ms() + seconds * 1000;
  for (int n = 0; n < 10000 && !g_stop; n++) {
    int64_t left = deadline - now_ms();
    if (left <= 0)
      break;
    struct sockaddr_in from;
    char buf[512];
    if (recv_timeout(fd, buf, sizeof(buf), &from, (int)left) <= 0)
      continue;
    if (have_srv && same_addr(&from, &srv))
      continue; /* late echo reply */
    printf("GOT from %s\n", fmt_addr(&from, a, sizeof(a)));
    close(fd);
    return 0;
  }
  printf("NOTHING\n");
  close(fd);
  return 1;
}

/* ------------------------------------------------------------------ send */
static int cmd_send(int argc, char **argv)
{
  if (argc < 2 || argc > 3)
    usage();
  struct sockaddr_in local, dst;
  parse_addr(argv[0], 0, &local);
  parse_addr(argv[1], 1, &dst);
  long count = argc > 2 ? parse_num(argv[2], 1, 1000) : 3;
  int fd = udp_bound(&local);
  char a[64];
  struct sockaddr_in me;
  socklen_t ml = sizeof(me);
  getsockname(fd, (struct sockaddr *)&me, &ml);
  for (long i = 0; i < count; i++) {
    char msg[96];
    int l = snprintf(msg, sizeof(msg), "PROBE %ld from %s", i, fmt_addr(&me, a, sizeof(a)));
    if (sendto(fd, msg, (size_t)l, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0)
      perror("udpprobe: sendto");
    struct timespec ts = { 0, 20 * 1000000 };
    nanosleep(&ts, NULL);
  }
  close(fd);
  return 0;
}

/* ----------------------------------------------------------------- delay */
#define NLBUF 65536
#define HOLD_MAX 8192

struct held {
  uint32_t id;
  int64_t due;
};

static void nl_attr(struct nlmsghdr *nh, uint16_t type, const void *data, uint16_t len)
{
  struct nlattr *at = (struct nlattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));
  at->nla_type = type;
  at->nla_len = (uint16_t)(NLA_HDRLEN + len);
  memcpy((char *)at + NLA_HDRLEN, data, len);
  nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + NLA_ALIGN(at->nla_len);
}

static struct nlmsghdr *nfq_hdr(char *buf, uint16_t msg_type, uint16_t queue,
                                uint16_t flags, uint32_t seq)
{
  memset(buf, 0, 256);
  struct nlmsghdr *nh = (struct nlmsghdr *)buf;
  nh->nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
  nh->nlmsg_type = (uint16_t)((NFNL_SUBSYS_QUEUE << 8) | msg_type);
  nh->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
  nh->nlmsg_seq = seq;
  struct nfgenmsg *g = NLMSG_DATA(nh);
  g->nfgen_family = AF_UNSPEC;
  g->version = NFNETLINK_V0;
  g->res_id = htons(queue);
  return nh;
}

/* Send a config message and wait for its ACK; returns 0 or -errno. */
static int nfq_config(int fd, struct nlmsghdr *nh)
{
  struct sockaddr_nl k = { .nl_family = AF_NETLINK };
  if (sendto(fd, nh, nh->nlmsg_len, 0, (struct sockaddr *)&k, sizeof(k)) < 0)
    return -errno;
  char buf[4096];
  for (int i = 0; i < 16; i++) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, 1000) <= 0)
      return -ETIMEDOUT;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0)
      return -errno;
    for (struct nlmsghdr *r = (struct nlmsghdr *)buf; NLMSG_OK(r, (size_t)n);
         r = NLMSG_NEXT(r, n)) {
      if (r->nlmsg_type == NLMSG_ERROR && r->nlmsg_seq == nh->nlmsg_seq) {
        struct nlmsgerr *e = NLMSG_DATA(r);
        return e->error;
      }
    }
  }
  return -EIO;
}

static void nfq_verdict(int fd, uint16_t queue, uint32_t id)
{
  char buf[256];
  struct nlmsghdr *nh = nfq_hdr(buf, NFQNL_MSG_VERDICT, queue, 0, 0);
  struct nfqnl_msg_verdict_hdr vh = { .verdict = htonl(NF_ACCEPT), .id = htonl(id) };
  nl_attr(nh, NFQA_VERDICT_HDR, &vh, sizeof(vh));
  struct sockaddr_nl k = { .nl_family = AF_NETLINK };
  sendto(fd, nh, nh->nlmsg_len, 0, (struct sockaddr *)&k, sizeof(k));
}

static int cmd_delay(int argc, char **argv)
{
  if (argc != 3)
    usage();
  uint16_t queue = (uint16_t)parse_num(argv[0], 0, 65535);
  long delay = parse_num(argv[1], 0, 5000);
  long seconds = parse_num(argv[2], 1, 86400);

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) {
    perror("udpprobe: netlink socket");
    return 3;
  }
  int rcv = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
  struct sockaddr_nl me = { .nl_family = AF_NETLINK };
  if (bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
    perror("udpprobe: netlink bind");
    return 3;
  }

  char buf[256];
  struct nlmsghdr *nh = nfq_hdr(buf, NFQNL_MSG_CONFIG, queue, NLM_F_ACK, 1);
  struct nfqnl_msg_config_cmd cmd = { .command = NFQNL_CFG_CMD_BIND, .pf = htons(AF_INET) };
  nl_attr(nh, NFQA_CFG_CMD, &cmd, sizeof(cmd));
  int r = nfq_config(fd, nh);
  if (r) {
    fprintf(stderr, "udpprobe: bind queue %u: %s\n", queue, strerror(-r));
    return 3;
  }
  nh = nfq_hdr(buf, NFQNL_MSG_CONFIG, queue, NLM_F_ACK, 2);
  struct nfqnl_msg_config_params params = { .copy_range = htonl(0),
                                            .copy_mode = NFQNL_COPY_META };
  nl_attr(nh, NFQA_CFG_PARAMS, &params, sizeof(params));
  uint32_t maxlen = htonl(HOLD_MAX);
  nl_attr(nh, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof(maxlen));
  uint32_t fl = htonl(NFQA_CFG_F_FAIL_OPEN);
  nl_attr(nh, NFQA_CFG_MASK, &fl, sizeof(fl));
  nl_attr(nh, NFQA_CFG_FLAGS, &fl, sizeof(fl));
  r = nfq_config(fd, nh);
  if (r) {
    fprintf(stderr, "udpprobe: configure queue %u: %s\n", queue, strerror(-r));
    return 3;
  }
  printf("DELAY queue %u %ld ms for %ld s\n", queue, delay, seconds);
  fflush(stdout);

  static struct held ring[HOLD_MAX];
  size_t head = 0, count = 0;
  static char rbuf[NLBUF];
  int64_t deadline = now_ms() + seconds * 1000;
  while (!g_stop) {
    int64_t now = now_ms();
    if (now >= deadline)
      break;
    while (count && ring[head].due <= now) {
      nfq_verdict(fd, queue, ring[head].id);
      head = (head + 1) % HOLD_MAX;
      count--;
    }
    int64_t wait = count ? ring[head].due - now : 1000;
    if (wait > 1000)
      wait = 1000;
    if (wait < 0)
      wait = 0;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, (int)wait) <= 0)
      continue;
    ssize_t n = recv(fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
    if (n <= 0)
      continue;
    int64_t arrived = now_ms();
    for (struct nlmsghdr *m = (struct nlmsghdr *)rbuf; NLMSG_OK(m, (size_t)n);
         m = NLMSG_NEXT(m, n)) {
      if (m->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET))
        continue;
      int alen = (int)m->nlmsg_len - NLMSG_LENGTH(sizeof(struct nfgenmsg));
      struct nlattr *at = (struct nlattr *)((char *)NLMSG_DATA(m) +
                                            NLMSG_ALIGN(sizeof(struct nfgenmsg)));
      for (int k = 0; k < 64 && alen >= NLA_HDRLEN && at->nla_len >= NLA_HDRLEN &&
                      at->nla_len <= alen; k++) {
        if ((at->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR) {
          struct nfqnl_msg_packet_hdr ph;
          memcpy(&ph, (char *)at + NLA_HDRLEN, sizeof(ph));
          uint32_t id = ntohl(ph.packet_id);
          if (count == HOLD_MAX) {
            nfq_verdict(fd, queue, id); /* full: pass at once */
          } else {
            ring[(head + count) % HOLD_MAX] = (struct held){ id, arrived + delay };
            count++;
          }
          break;
        }
        alen -= NLA_ALIGN(at->nla_len);
        at = (struct nlattr *)((char *)at + NLA_ALIGN(at->nla_len));
      }
    }
  }
  while (count) { /* release everything still held */
    nfq_verdict(fd, queue, ring[head].id);
    head = (head + 1) % HOLD_MAX;
    count--;
  }
  nh = nfq_hdr(buf, NFQNL_MSG_CONFIG, queue, 0, 3);
  cmd.command = NFQNL_CFG_CMD_UNBIND;
  nl_attr(nh, NFQA_CFG_CMD, &cmd, sizeof(cmd));
  struct sockaddr_nl k = { .nl_family = AF_NETLINK };
  sendto(fd, nh, nh->nlmsg_len, 0, (struct sockaddr *)&k, sizeof(k));
  close(fd);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc < 2)
    usage();
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  const char *m = argv[1];
  if (!strcmp(m, "echo"))
    return cmd_echo(argc - 2, argv + 2);
  if (!strcmp(m, "ask"))
    return cmd_ask(argc - 2, argv + 2);
  if (!strcmp(m, "punch"))
    return cmd_punch(argc - 2, argv + 2);
  if (!strcmp(m, "recv"))
    return cmd_recv(argc - 2, argv + 2);
  if (!strcmp(m, "send"))
    return cmd_send(argc - 2, argv + 2);
  if (!strcmp(m, "delay"))
    return cmd_delay(argc - 2, argv + 2);
  usage();
  return 2;
}
