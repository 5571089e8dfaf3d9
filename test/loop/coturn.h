/* SPDX-License-Identifier: MIT */
/*
 * A coturn STUN server for the loop tests, on loopback only: 127.0.0.1,
 * 127.0.0.2 (the second IPv4 address makes it answer every RFC 5780
 * CHANGE-REQUEST) and ::1, on a random free high port PORT (and PORT + 1,
 * its alternate port). Started with posix_spawn, checked with a blocking
 * STUN probe, retried on another port if it does not come up, and killed
 * by coturn_stop(). Header-only: shared by test_stun.c and
 * test_netcheck.c.
 */
#ifndef QPEER_TEST_COTURN_H
#define QPEER_TEST_COTURN_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct {
  pid_t pid;      /* the turnserver process, or 0 */
  int port;       /* its primary port */
  char dir[256];  /* temp dir: pid file, log */
} coturn_t;

/* coturn_path finds turnserver in PATH; NULL when not installed. */
static inline const char *coturn_path(void) {
  static char buf[512];
  const char *path = getenv("PATH");
  char tmp[4096], *save = NULL, *d;
  if (!path)
    path = "/usr/bin:/usr/sbin:/bin";
  snprintf(tmp, sizeof(tmp), "%s:/usr/bin:/usr/sbin", path);
  for (d = strtok_r(tmp, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    snprintf(buf, sizeof(buf), "%s/turnserver", d);
    if (access(buf, X_OK) == 0)
      return buf;
  }
  return NULL;
}

/* udp_port_free says whether |port| can be bound on |ip| (UDP). */
static inline int coturn_port_free(int family, const char *ip, int port) {
  struct sockaddr_storage ss;
  socklen_t len;
  int fd, ok;
  memset(&ss, 0, sizeof(ss));
  if (family == AF_INET) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &s4->sin_addr);
    len = sizeof(*s4);
  } else {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    inet_pton(AF_INET6, ip, &s6->sin6_addr);
    len = sizeof(*s6);
  }
  fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0)
    return 0;
  ok = bind(fd, (struct sockaddr *)&ss, len) == 0;
  close(fd);
  return ok;
}

/* coturn_probe sends one STUN Binding request to ip:port and waits up to
 * |ms| for any answer. */
static inline int coturn_probe(const char *ip, int port, int ms) {
  struct sockaddr_in s4;
  uint8_t req[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42,
                     1,    2,    3,    4,    5,    6,    7,    8,
                     9,    10,   11,   12};
  uint8_t buf[512];
  struct pollfd pfd;
  int fd, ok = 0;
  memset(&s4, 0, sizeof(s4));
  s4.sin_family = AF_INET;
  s4.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, ip, &s4.sin_addr);
  fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0)
    return 0;
  if (sendto(fd, req, sizeof(req), 0, (struct sockaddr *)&s4, sizeof(s4)) ==
      (ssize_t)sizeof(req)) {
    pfd.fd = fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, ms) == 1 && recv(fd, buf, sizeof(buf), 0) >= 20)
      ok = 1;
  }
  close(fd);
  return ok;
}

static inline void coturn_stop(coturn_t *c) {
  char p[512];
  if (c->pid > 0) {
    kill(c->pid, SIGTERM);
    waitpid(c->pid, NULL, 0);
    c->pid = 0;
  }
  if (c->dir[0]) {
    snprintf(p, sizeof(p), "%s/turnserver.pid", c->dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/turnserver.log", c->dir);
    unlink(p);
    rmdir(c->dir);
    c->dir[0] = '\0';
  }
}

/* coturn_start starts the server; returns 0, or -1 if turnserver is not
 * installed (the caller skips), or -2 if it never came up. */
static inline int coturn_start(coturn_t *c) {
  const char *bin = coturn_path();
  const char *base = getenv("TMPDIR");
  int attempt;
  memset(c, 0, sizeof(*c));
  if (!bin)
    return -1;
  snprintf(c->dir, sizeof(c->dir), "%s/qpeer-coturn-XXXXXX",
           base ? base : "/tmp");
  if (!mkdtemp(c->dir))
    return -2;
  srand((unsigned)getpid() ^ (unsigned)time(NULL));
  for (attempt = 0; attempt < 8; attempt++) {
    char port[16], pidfile[320], log[320];
    char *argv[24];
    posix_spawn_file_actions_t fa;
    int i, n = 0, p = 20000 + (rand() % 19000) * 2;
    if (!coturn_port_free(AF_INET, "127.0.0.1", p) ||
        !coturn_port_free(AF_INET, "127.0.0.1", p + 1) ||
        !coturn_port_free(AF_INET, "127.0.0.2", p) ||
        !coturn_port_free(AF_INET, "127.0.0.2", p + 1) ||
        !coturn_port_free(AF_INET6, "::1", p) ||
        !coturn_port_free(AF_INET6, "::1", p + 1))
      continue;
    snprintf(port, sizeof(port), "%d", p);
    snprintf(pidfile, sizeof(pidfile), "--pidfile=%s/turnserver.pid",
             c->dir);
    snprintf(log, sizeof(log), "%s/turnserver.log", c->dir);
    argv[n++] = (char *)bin;
    argv[n++] = "-n";
    argv[n++] = "--stun-only";
    argv[n++] = "-z";
    argv[n++] = "--no-cli";
    argv[n++] = "--no-tls";
    argv[n++] = "--no-dtls";
    argv[n++] = "-L";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-L";
    argv[n++] = "127.0.0.2";
    argv[n++] = "-L";
    argv[n++] = "::1";
    argv[n++] = "-p";
    argv[n++] = port;
    argv[n++] = "--log-file=stdout";
    argv[n++] = "--simple-log";
    argv[n++] = pidfile;
    argv[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (posix_spawn(&c->pid, bin, &fa, NULL, argv, environ) != 0) {
      posix_spawn_file_actions_destroy(&fa);
      c->pid = 0;
      continue;
    }
    posix_spawn_file_actions_destroy(&fa);
    for (i = 0; i < 50; i++) {
      if (coturn_probe("127.0.0.1", p, 100) &&
          coturn_probe("127.0.0.2", p, 100)) {
        c->port = p;
        fprintf(stderr, "coturn: pid %d on port %d\n", (int)c->pid, p);
        return 0;
      }
      if (waitpid(c->pid, NULL, WNOHANG) == c->pid) {
        c->pid = 0;
        break; /* exited: probably a port clash; try another */
      }
    }
    if (c->pid > 0) {
      kill(c->pid, SIGTERM);
      waitpid(c->pid, NULL, 0);
      c->pid = 0;
    }
  }
  coturn_stop(c);
  return -2;
}

#endif /* QPEER_TEST_COTURN_H */
