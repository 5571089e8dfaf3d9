/* SPDX-License-Identifier: MIT */
/*
 * qpeer: command-line tool. Subcommands: id (identities), pipe (netcat
 * over QUIC), ticket (show what a ticket holds), netcheck (netcheck.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: qpeer <command> [options]\n"
          "\n"
          "commands:\n"
          "  id new|show       create or show this machine's identity\n"
          "  pipe listen       wait for a peer and pipe stdin/stdout to it\n"
          "  pipe connect T    dial the peer in ticket T, pipe stdin/stdout\n"
          "  ticket show T     print what ticket T contains\n"
          "  netcheck          survey this network's UDP, NAT and STUN "
          "behaviour\n"
          "  version           print the library version\n"
          "\n"
          "Run 'qpeer <command> --help' for a command's options.\n");
}

int cli_fail(const char *what, int err) {
  fprintf(stderr, "qpeer: %s: %s (%s)\n", what, qpeer_err_name(err),
          qpeer_strerror(err));
  return 1;
}

const char *cli_default_key(void) {
  static char path[4096];
  const char *k = getenv("QPEER_KEY"), *home = getenv("HOME");
  if (k && *k)
    return k;
  snprintf(path, sizeof(path), "%s/.config/qpeer/key.pem",
           home && *home ? home : ".");
  return path;
}

static int mkdirs_for(const char *path) {
  char dir[4096];
  char *p;
  snprintf(dir, sizeof(dir), "%s", path);
  p = strrchr(dir, '/');
  if (!p || p == dir)
    return 0;
  *p = '\0';
  for (p = dir + 1; *p; p++) {
    if (*p == '/') {
      *p = '\0';
      if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
      *p = '/';
    }
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return -errno;
  return 0;
}

int cli_load_identity(const char *path, int create, qpeer_identity_t **pid) {
  int r = qpeer_identity_load(pid, path);
  if (r == UV_ENOENT && create) {
    if ((r = qpeer_identity_generate(pid)) != 0)
      return r;
    if ((r = mkdirs_for(path)) != 0 || (r = qpeer_identity_save(*pid, path))) {
      qpeer_identity_unref(*pid);
      *pid = NULL;
      return r;
    }
    fprintf(stderr, "qpeer: created a new identity in %s\n", path);
  }
  return r;
}

int cmd_id(int argc, char **argv) {
  const char *key = cli_default_key();
  qpeer_identity_t *id = NULL;
  char text[QPEER_PEER_ID_STRLEN];
  int i, r, create;
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    printf("usage: qpeer id new [--key FILE] [--force]\n"
           "       qpeer id show [--key FILE]\n"
           "Creates or shows an Ed25519 identity; prints its peer ID.\n"
           "The key file defaults to $QPEER_KEY or "
           "~/.config/qpeer/key.pem.\n");
    return argc < 2 ? 2 : 0;
  }
  create = !strcmp(argv[1], "new");
  if (!create && strcmp(argv[1], "show")) {
    fprintf(stderr, "qpeer: id: unknown subcommand '%s'\n", argv[1]);
    return 2;
  }
  for (i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--key") && i + 1 < argc) {
      key = argv[++i];
    } else if (!strcmp(argv[i], "--force") && create) {
      if (unlink(key) != 0 && errno != ENOENT)
        return cli_fail("id new", -errno);
    } else {
      fprintf(stderr, "qpeer: id: unexpected argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (create) {
    r = qpeer_identity_load(&id, key);
    if (r == 0) {
      qpeer_identity_unref(id);
      fprintf(stderr, "qpeer: id new: %s exists (use --force to replace)\n",
              key);
      return 1;
    }
  }
  r = cli_load_identity(key, create, &id);
  if (r != 0)
    return cli_fail(key, r);
  qpeer_peer_id_format(qpeer_identity_get_peer_id(id), text, sizeof(text));
  printf("%s\n", text);
  qpeer_identity_unref(id);
  return 0;
}

int cmd_ticket(int argc, char **argv) {
  qpeer_ticket_t t;
  char buf[QPEER_PEER_ID_STRLEN], a[QPEER_ADDR_STRLEN];
  size_t i;
  int r;
  if (argc < 3 || strcmp(argv[1], "show")) {
    printf("usage: qpeer ticket show TICKET\n"
           "Prints the peer ID, addresses and relays a ticket holds.\n");
    return argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
               ? 0
               : 2;
  }
  if ((r = qpeer_ticket_parse(&t, argv[2])) != 0)
    return cli_fail("ticket", r);
  qpeer_peer_id_format(&t.peer_id, buf, sizeof(buf));
  printf("peer %s\n", buf);
  for (i = 0; i < t.naddrs; i++) {
    qpeer_addr_format((struct sockaddr *)&t.addrs[i].addr, a, sizeof(a));
    printf("addr %s\n", a);
  }
  for (i = 0; i < t.nrelays; i++)
    printf("relay %s\n", t.relays[i].url);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
      !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
    printf("qpeer %s\n", qpeer_version_string());
    return 0;
  }
  if (!strcmp(argv[1], "id"))
    return cmd_id(argc - 1, argv + 1);
  if (!strcmp(argv[1], "pipe"))
    return cmd_pipe(argc - 1, argv + 1);
  if (!strcmp(argv[1], "ticket"))
    return cmd_ticket(argc - 1, argv + 1);
  if (!strcmp(argv[1], "netcheck"))
    return cmd_netcheck(argc - 1, argv + 1);
  fprintf(stderr, "qpeer: unknown command '%s' (try 'qpeer --help')\n",
          argv[1]);
  return 2;
}
