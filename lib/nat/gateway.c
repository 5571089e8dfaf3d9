/* SPDX-License-Identifier: MIT */
/*
 * Default gateway and external-address classification (pure). Divided in
 * two: the /proc/net/route parser, then the IPv4/IPv6 address classes
 * that the port-mapping handle turns into double-NAT flags.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nat/gateway.h"

/* Route flags of /proc/net/route (linux/route.h). */
#define RTF_UP_ 0x0001u
#define RTF_GATEWAY_ 0x0002u

/* parse_hex reads one whitespace-delimited hex field of |line| starting at
 * |*pos|. Returns 0 and the value, or -1 when the field is missing or not
 * hex. */
static int parse_hex(const char *line, size_t *pos, unsigned long *pv) {
  size_t i = *pos, start;
  char field[20];
  char *end;
  while (line[i] == ' ' || line[i] == '\t')
    i++;
  start = i;
  while (line[i] && line[i] != ' ' && line[i] != '\t')
    i++;
  if (i == start || i - start >= sizeof(field))
    return -1;
  memcpy(field, line + start, i - start);
  field[i - start] = '\0';
  *pv = strtoul(field, &end, 16);
  if (*end != '\0')
    return -1;
  *pos = i;
  return 0;
}

/* skip_field moves |*pos| past one whitespace-delimited field. */
static int skip_field(const char *line, size_t *pos) {
  size_t i = *pos, start;
  while (line[i] == ' ' || line[i] == '\t')
    i++;
  start = i;
  while (line[i] && line[i] != ' ' && line[i] != '\t')
    i++;
  *pos = i;
  return i == start ? -1 : 0;
}

/* parse_line reads one route line. Returns 0 with the gateway and metric
 * if it is an up default route through a gateway, else -1. */
static int parse_line(const char *line, uint32_t *pgw, unsigned long *pmetric) {
  unsigned long dest, gw, flags, metric, mask, dummy;
  size_t pos = 0;
  if (skip_field(line, &pos) != 0 || parse_hex(line, &pos, &dest) != 0 ||
      parse_hex(line, &pos, &gw) != 0 || parse_hex(line, &pos, &flags) != 0 ||
      parse_hex(line, &pos, &dummy) != 0 || /* RefCnt */
      parse_hex(line, &pos, &dummy) != 0 || /* Use */
      parse_hex(line, &pos, &metric) != 0 || parse_hex(line, &pos, &mask) != 0)
    return -1;
  if (dest != 0 || mask != 0 || gw == 0 || gw > 0xffffffffUL)
    return -1;
  if ((flags & (RTF_UP_ | RTF_GATEWAY_)) != (RTF_UP_ | RTF_GATEWAY_))
    return -1;
  /* The kernel prints the network-order address as a host integer, so the
   * parsed value is already the in_addr's s_addr on this host. */
  *pgw = (uint32_t)gw;
  *pmetric = metric;
  return 0;
}

int qpeer__gateway_parse_route(const char *text, size_t len, uint32_t *pgw) {
  char line[256];
  size_t i = 0, n;
  int found = 0, first = 1;
  unsigned long best_metric = 0;
  while (i < len) {
    n = 0;
    while (i < len && text[i] != '\n') {
      if (n < sizeof(line) - 1)
        line[n++] = text[i];
      i++;
    }
    i++; /* the newline */
    line[n] = '\0';
    if (first) { /* the header line */
      first = 0;
      continue;
    }
    {
      uint32_t gw;
      unsigned long metric;
      if (parse_line(line, &gw, &metric) == 0 &&
          (!found || metric < best_metric)) {
        *pgw = gw;
        best_metric = metric;
        found = 1;
      }
    }
  }
  return found ? 0 : QPEER_ENOGATEWAY;
}

/* classify4 classifies an IPv4 address given in host byte order. */
static unsigned int classify4(uint32_t a) {
  if ((a >> 24) == 10 || (a >> 20) == (172u << 4 | 1) || /* 172.16/12 */
      (a >> 16) == (192u << 8 | 168) || (a >> 24) == 127 ||
      (a >> 16) == (169u << 8 | 254) || a == 0)
    return QPEER__ADDR_PRIVATE;
  if ((a >> 22) == (100u << 2 | 1)) /* 100.64/10 */
    return QPEER__ADDR_CGNAT;
  if ((a >> 24) == 0 ||                           /* 0/8 "this network" */
      (a >> 8) == (192u << 16) ||                 /* 192.0.0/24 */
      (a >> 8) == (192u << 16 | 2) ||             /* 192.0.2/24 TEST-NET-1 */
      (a >> 8) == (192u << 16 | 88 << 8 | 99) ||  /* 192.88.99/24 */
      (a >> 17) == (198u << 7 | 9) ||             /* 198.18/15 benchmarking */
      (a >> 8) == (198u << 16 | 51 << 8 | 100) || /* TEST-NET-2 */
      (a >> 8) == (203u << 16 | 0 << 8 | 113) ||  /* TEST-NET-3 */
      (a >> 28) >= 14)                            /* 224/4 multicast, 240/4 */
    return QPEER__ADDR_RESERVED;
  return 0;
}

unsigned int qpeer__gateway_classify(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    return classify4(ntohl(s4->sin_addr.s_addr));
  }
  if (sa->sa_family == AF_INET6) {
    const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0,    0,
                                         0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t zero[16] = {0};
    if (memcmp(b, v4mapped, 12) == 0)
      return classify4((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
                       (uint32_t)b[14] << 8 | b[15]);
    if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1))
      return QPEER__ADDR_PRIVATE;                /* :: and ::1 */
    if ((b[0] & 0xfe) == 0xfc ||                 /* fc00::/7 ULA */
        (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)) /* fe80::/10 */
      return QPEER__ADDR_PRIVATE;
    if ((b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) ||
        b[0] == 0xff) /* 2001:db8::/32 documentation, ff00::/8 */
      return QPEER__ADDR_RESERVED;
    return 0;
  }
  return QPEER__ADDR_RESERVED;
}
