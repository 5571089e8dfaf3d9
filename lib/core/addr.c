/* SPDX-License-Identifier: MIT */
/* Socket address parsing, formatting, comparison and normalisation. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "internal.h"

socklen_t qpeer__addr_len(const struct sockaddr *sa) {
  switch (sa->sa_family) {
  case AF_INET:
    return sizeof(struct sockaddr_in);
  case AF_INET6:
    return sizeof(struct sockaddr_in6);
  default:
    return 0;
  }
}

int qpeer__addr_equal(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           !memcmp(&x->sin6_addr, &y->sin6_addr, 16) &&
           x->sin6_scope_id == y->sin6_scope_id;
  }
  return 0;
}

void qpeer__addr_normalize(struct sockaddr_storage *dst,
                           const struct sockaddr *src) {
  const struct sockaddr_in6 *s6 = (const void *)src;
  if (src->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
    struct sockaddr_in *d4 = (void *)dst;
    uint16_t port = s6->sin6_port;
    uint32_t a;
    memcpy(&a, s6->sin6_addr.s6_addr + 12, 4);
    memset(dst, 0, sizeof(*dst));
    d4->sin_family = AF_INET;
    d4->sin_port = port;
    d4->sin_addr.s_addr = a;
    return;
  }
  memset(dst, 0, sizeof(*dst));
  memcpy(dst, src, qpeer__addr_len(src));
}

void qpeer__addr_to_v6mapped(struct sockaddr_storage *dst,
                             const struct sockaddr *src) {
  if (src->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const void *)src;
    struct sockaddr_in6 *d6 = (void *)dst;
    struct sockaddr_in copy = *s4;
    memset(dst, 0, sizeof(*dst));
    d6->sin6_family = AF_INET6;
    d6->sin6_port = copy.sin_port;
    d6->sin6_addr.s6_addr[10] = 0xff;
    d6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(d6->sin6_addr.s6_addr + 12, &copy.sin_addr, 4);
    return;
  }
  if (dst != (void *)src) {
    memset(dst, 0, sizeof(*dst));
    memcpy(dst, src, qpeer__addr_len(src));
  }
}

uint16_t qpeer__addr_port(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
  if (sa->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
  return 0;
}

void qpeer__addr_set_port(struct sockaddr *sa, uint16_t port) {
  if (sa->sa_family == AF_INET)
    ((struct sockaddr_in *)(void *)sa)->sin_port = htons(port);
  else if (sa->sa_family == AF_INET6)
    ((struct sockaddr_in6 *)(void *)sa)->sin6_port = htons(port);
}

int qpeer__addr_is_any(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr ==
           htonl(INADDR_ANY);
  if (sa->sa_family == AF_INET6)
    return IN6_IS_ADDR_UNSPECIFIED(
        &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
  return 0;
}

uint64_t qpeer__addr_hash(const struct sockaddr *sa) {
  /* FNV-1a over the family, address bytes and port. */
  uint64_t h = 1469598103934665603ULL;
  const uint8_t *p = NULL;
  size_t n = 0, i;
  uint16_t port = qpeer__addr_port(sa);
  if (sa->sa_family == AF_INET) {
    p = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)
            ->sin_addr;
    n = 4;
  } else if (sa->sa_family == AF_INET6) {
    p = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    n = 16;
  }
  h = (h ^ sa->sa_family) * 1099511628211ULL;
  for (i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ULL;
  h = (h ^ (port >> 8)) * 1099511628211ULL;
  h = (h ^ (port & 0xff)) * 1099511628211ULL;
  return h;
}

static int parse_port(const char *s, uint16_t *pport) {
  char *end;
  unsigned long v;
  if (*s < '0' || *s > '9')
    return UV_EINVAL;
  v = strtoul(s, &end, 10);
  if (*end != '\0' || v > 65535 || end - s > 5)
    return UV_EINVAL;
  *pport = (uint16_t)v;
  return 0;
}

int qpeer_addr_parse(struct sockaddr_storage *paddr, const char *text) {
  char host[INET6_ADDRSTRLEN + 1];
  const char *colon, *close;
  uint16_t port;
  size_t hlen;
  if (!paddr || !text)
    return UV_EINVAL;
  memset(paddr, 0, sizeof(*paddr));
  if (text[0] == '[') {
    struct sockaddr_in6 *s6 = (void *)paddr;
    close = strchr(text, ']');
    if (!close || close[1] != ':')
      return UV_EINVAL;
    hlen = (size_t)(close - text - 1);
    if (hlen == 0 || hlen >= sizeof(host))
      return UV_EINVAL;
    memcpy(host, text + 1, hlen);
    host[hlen] = '\0';
    if (parse_port(close + 2, &port) != 0)
      return UV_EINVAL;
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
      return UV_EINVAL;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    return 0;
  } else {
    struct sockaddr_in *s4 = (void *)paddr;
    colon = strrchr(text, ':');
    if (!colon || strchr(text, ':') != colon)
      return UV_EINVAL;
    hlen = (size_t)(colon - text);
    if (hlen == 0 || hlen >= sizeof(host))
      return UV_EINVAL;
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (parse_port(colon + 1, &port) != 0)
      return UV_EINVAL;
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
      return UV_EINVAL;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    return 0;
  }
}

int qpeer_addr_format(const struct sockaddr *addr, char *buf, size_t buflen) {
  char host[INET6_ADDRSTRLEN];
  int n;
  if (!addr || !buf)
    return UV_EINVAL;
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const void *)addr;
    inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
    n = snprintf(buf, buflen, "%s:%u", host, ntohs(s4->sin_port));
  } else if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const void *)addr;
    inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
    n = snprintf(buf, buflen, "[%s]:%u", host, ntohs(s6->sin6_port));
  } else {
    return UV_EAFNOSUPPORT;
  }
  if (n < 0 || (size_t)n >= buflen)
    return UV_ENOBUFS;
  return n;
}
