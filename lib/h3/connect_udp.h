/* SPDX-License-Identifier: MIT */
/*
 * RFC 9298 connect-udp request targets: URI template expansion on the
 * client side, and :path parsing against the default template on the
 * proxy side, including the connect-udp-listen draft's "*" / "*" bind
 * target. Pure: no I/O, no allocation, no name resolution.
 */
#ifndef QPEER_H3_CONNECT_UDP_H
#define QPEER_H3_CONNECT_UDP_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The template qpeer clients use unless configured otherwise. {host} and
 * {port} stand for the proxy's authority (RFC 9298 writes $PROXY_HOST and
 * $PROXY_PORT); {target_host} and {target_port} are RFC 9298's variables. */
#define QPEER__CONNECT_UDP_TEMPLATE_DEFAULT                                    \
  "https://{host}:{port}/.well-known/masque/udp/{target_host}/"                \
  "{target_port}/"

/* The :path prefix of the default template, as the proxy matches it. */
#define QPEER__CONNECT_UDP_PATH_PREFIX "/.well-known/masque/udp/"

/* The :protocol token and the header fields used with it. */
#define QPEER__CONNECT_UDP_PROTOCOL "connect-udp"
#define QPEER__HDR_CAPSULE_PROTOCOL "capsule-protocol"
#define QPEER__HDR_CONNECT_UDP_BIND "connect-udp-bind"
#define QPEER__HDR_PROXY_PUBLIC_ADDRESS "proxy-public-address"
#define QPEER__HDR_PROXY_STATUS "proxy-status"

/* The longest target host accepted, after percent-decoding. */
#define QPEER__CONNECT_UDP_HOST_MAX 255

/* What a target names (qpeer__connect_udp_target.kind). */
enum {
  QPEER__CONNECT_UDP_NAME = 1, /* a DNS name, still to be resolved */
  QPEER__CONNECT_UDP_IPV4 = 2, /* an IPv4 literal; addr is set */
  QPEER__CONNECT_UDP_IPV6 = 3, /* an IPv6 literal; addr is set */
  QPEER__CONNECT_UDP_BIND = 4  /* "*" / "*": the bind draft, no target */
};

/* A parsed request target. */
typedef struct {
  int kind;                                   /* QPEER__CONNECT_UDP_* */
  char host[QPEER__CONNECT_UDP_HOST_MAX + 1]; /* decoded host, or "*" */
  uint16_t port;                              /* 1..65535; 0 for BIND */
  struct sockaddr_storage addr; /* literal address and port (IPV4/IPV6) */
} qpeer__connect_udp_target;

/* qpeer__connect_udp_parse_path parses a request :path of |pathlen| bytes
 * against |prefix| (NULL selects QPEER__CONNECT_UDP_PATH_PREFIX; it must end
 * in '/'). The path must be exactly prefix, target_host, '/', target_port,
 * '/'. The host is percent-decoded and must be a DNS name (letters, digits,
 * '-' and '_' in dot-separated labels of 1 to 63), a dotted-quad IPv4
 * address, or an IPv6 address without brackets or zone ID. The port must be
 * 1..65535 in decimal. Both parts "*" (or "%2A") make a bind request; only
 * one of them is an error. Returns 0 or QPEER_EMALFORMED; if |preason| is
 * not NULL it then points at a static string saying what was wrong (fit
 * for a Proxy-Status details parameter). */
int qpeer__connect_udp_parse_path(const char *prefix, const char *path,
                                  size_t pathlen, qpeer__connect_udp_target *pt,
                                  const char **preason);

/* Values for template expansion. */
typedef struct {
  const char *proxy_host;  /* {host}: name or IP; NULL if not in template */
  uint16_t proxy_port;     /* {port}; 0 if the template has no {port} */
  const char *target_host; /* {target_host}; NULL requests a bind ("*") */
  uint16_t target_port;    /* {target_port}; ignored for a bind */
} qpeer__connect_udp_vars;

/* qpeer__connect_udp_expand expands |tmpl| (NULL selects
 * QPEER__CONNECT_UDP_TEMPLATE_DEFAULT) into |dest| as a NUL-terminated URI.
 * The template must follow RFC 9298 §2: printable ASCII, absolute with
 * scheme, authority and a path starting with '/', both target variables in
 * the path or query, and only level-1 "{var}" and level-3 "{?var,...}" /
 * "{&var,...}" expressions (no modifiers). Target values are
 * percent-encoded (an IPv6 target's colons become %3A, a bind's "*" becomes
 * %2A). Variables other than the four above are undefined and expand to
 * nothing. Returns the length written (without NUL), UV_ENOBUFS, or
 * UV_EINVAL for a bad template or value (including {host} or {port} used
 * but not provided). */
ssize_t qpeer__connect_udp_expand(char *dest, size_t destlen, const char *tmpl,
                                  const qpeer__connect_udp_vars *vars);

/* The parts of an absolute URI that become :scheme, :authority and :path. */
typedef struct {
  const char *scheme;    /* start of the scheme */
  size_t schemelen;      /* its length */
  const char *authority; /* start of the authority */
  size_t authoritylen;   /* its length */
  const char *path;      /* start of path and query (no fragment) */
  size_t pathlen;        /* their length */
} qpeer__connect_udp_uri;

/* qpeer__connect_udp_split_uri splits an absolute "scheme://authority/path"
 * URI of |len| bytes into pointers into |uri|. Returns 0 or UV_EINVAL if a
 * part is missing or empty. */
int qpeer__connect_udp_split_uri(const char *uri, size_t len,
                                 qpeer__connect_udp_uri *pu);

#endif /* QPEER_H3_CONNECT_UDP_H */
