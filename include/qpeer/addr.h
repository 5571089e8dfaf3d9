/* SPDX-License-Identifier: MIT */
/* Socket address text forms: "192.0.2.1:443" and "[2001:db8::1]:443". */
#ifndef QPEER_ADDR_H
#define QPEER_ADDR_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "qpeer/core.h"

/** Longest text form including the terminating NUL ("[v6%scope]:65535"). */
#define QPEER_ADDR_STRLEN 64

/**
 * `qpeer_addr_parse` parses a numeric "IPv4:port" or "[IPv6]:port" into
 * |*paddr|. Host names are not resolved. Returns 0 or UV_EINVAL for any
 * malformed text (missing port, port out of 0..65535, bad address).
 */
QPEER_EXTERN int qpeer_addr_parse(struct sockaddr_storage *paddr,
                                  const char *text);

/**
 * `qpeer_addr_format` writes the text form of |addr| into |buf|. Returns the
 * length written (without NUL), UV_ENOBUFS if |buflen| is too small, or
 * UV_EAFNOSUPPORT for a family other than AF_INET/AF_INET6.
 */
QPEER_EXTERN int qpeer_addr_format(const struct sockaddr *addr, char *buf,
                                   size_t buflen);

#endif /* QPEER_ADDR_H */
