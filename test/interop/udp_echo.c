/* SPDX-License-Identifier: MIT */
/*
 * udp_echo: a UDP echo target for the interop tests. Binds ADDR (port 0
 * by default), prints "udp echo on ADDR:PORT" on stdout, sends every
 * datagram back to its source, and exits 0 on SIGTERM/SIGINT or after
 * --timeout seconds (exit 1). Usage: udp_echo [ADDR] [--timeout S]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1";
  long timeout_s = 120;
  struct sockaddr_storage ss, from;
  socklen_t len = sizeof(ss), flen;
  char text[INET6_ADDRSTRLEN];
  static unsigned char buf[65536];
  unsigned long n_echoed = 0;
  time_t end;
  int fd, i;
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
      timeout_s = atol(argv[++i]);
    else
      addr = argv[i];
  }
  memset(&ss, 0, sizeof(ss));
  if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
    ss.ss_family = AF_INET;
    len = sizeof(struct sockaddr_in);
  } else if (inet_pton(AF_INET6, addr,
                       &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
    ss.ss_family = AF_INET6;
    len = sizeof(struct sockaddr_in6);
  } else {
    fprintf(stderr, "udp_echo: %s is not an IP address\n", addr);
    return 2;
  }
  fd = socket(ss.ss_family, SOCK_DGRAM, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
    fprintf(stderr, "udp_echo: %s: %s\n", addr, strerror(errno));
    return 1;
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  if (ss.ss_family == AF_INET)
    printf("udp echo on %s:%u\n",
           inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, text,
                     sizeof(text)),
           ntohs(((struct sockaddr_in *)&ss)->sin_port));
  else
    printf("udp echo on [%s]:%u\n",
           inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, text,
                     sizeof(text)),
           ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
  fflush(stdout);
  end = time(NULL) + timeout_s;
  while (!stop) {
    struct pollfd p = {fd, POLLIN, 0};
    ssize_t n;
    if (time(NULL) >= end) {
      fprintf(stderr, "udp_echo: timeout after %ld s\n", timeout_s);
      return 1;
    }
    if (poll(&p, 1, 200) <= 0)
      continue;
    flen = sizeof(from);
    n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
    if (n < 0)
      continue;
    if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen) == n)
      n_echoed++;
  }
  fprintf(stderr, "udp_echo: echoed %lu datagrams\n", n_echoed);
  return 0;
}
