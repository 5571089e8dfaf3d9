/* SPDX-License-Identifier: MIT */
/*
 * The Structured Field (RFC 8941) header values of a connect-udp exchange:
 * the bind draft's Proxy-Public-Address (a List of "ip:port" Strings),
 * RFC 9209 Proxy-Status, and the "?1" Booleans of Capsule-Protocol and
 * Connect-UDP-Bind. Pure: no I/O, no allocation.
 */
#ifndef QPEER_H3_PROXY_STATUS_H
#define QPEER_H3_PROXY_STATUS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The proxy name qpeer's relay puts in Proxy-Status. */
#define QPEER__PROXY_STATUS_NAME "qpeer-relay"

/* RFC 9209 §2.3 error types the relay reports. */
#define QPEER__PROXY_ERR_DNS_ERROR "dns_error"
#define QPEER__PROXY_ERR_DNS_TIMEOUT "dns_timeout"
#define QPEER__PROXY_ERR_DEST_NOT_FOUND "destination_not_found"
#define QPEER__PROXY_ERR_DEST_UNAVAILABLE "destination_unavailable"
#define QPEER__PROXY_ERR_IP_PROHIBITED "destination_ip_prohibited"
#define QPEER__PROXY_ERR_IP_UNROUTABLE "destination_ip_unroutable"
#define QPEER__PROXY_ERR_CONNECTION_REFUSED "connection_refused"
#define QPEER__PROXY_ERR_REQUEST_ERROR "http_request_error"
#define QPEER__PROXY_ERR_REQUEST_DENIED "http_request_denied"
#define QPEER__PROXY_ERR_INTERNAL "proxy_internal_error"

/* qpeer__proxy_public_address_parse parses a Proxy-Public-Address field
 * value of |len| bytes: an SF List whose members are Strings of the form
 * "192.0.2.45:54321" or "[2001:db8::1234]:54321" (port 1..65535, no IPv6
 * zone), parameters ignored. The first |maxaddrs| addresses are stored in
 * |addrs|; later members are still checked. Returns the number stored (0
 * for an empty list) or QPEER_EMALFORMED if the value is not such a list;
 * the bind draft then treats the field as absent. */
int qpeer__proxy_public_address_parse(const char *value, size_t len,
                                      struct sockaddr_storage *addrs,
                                      size_t maxaddrs);

/* qpeer__proxy_public_address_format writes |n| addresses (AF_INET or
 * AF_INET6, nonzero port) as a Proxy-Public-Address value, NUL-terminated.
 * Returns the length written (without NUL), UV_ENOBUFS, or UV_EINVAL for
 * another family or port 0. */
ssize_t qpeer__proxy_public_address_format(char *buf, size_t buflen,
                                           const struct sockaddr_storage *addrs,
                                           size_t n);

/* qpeer__proxy_status_format writes an RFC 9209 Proxy-Status value,
 * NUL-terminated: |proxy_name| (NULL selects QPEER__PROXY_STATUS_NAME; sent
 * as a Token when it is one, else as a String), then "; error=" |error| if
 * not NULL (it must be an SF Token), then "; details=" and |details| as an
 * SF String if not NULL. In details, '"' and '\' are escaped and bytes
 * outside 0x20..0x7E become '?'. Returns the length written (without NUL),
 * UV_ENOBUFS, or UV_EINVAL for a bad error token or proxy name. */
ssize_t qpeer__proxy_status_format(char *buf, size_t buflen,
                                   const char *proxy_name, const char *error,
                                   const char *details);

/* qpeer__sf_boolean_is_true returns 1 if the field value of |len| bytes is
 * the SF Boolean true ("?1", parameters ignored) and 0 otherwise, including
 * for "?0", other types, lists (a repeated field) and parse errors. RFC
 * 9297 §3.4 and the bind draft §4 treat all of those as absent. */
int qpeer__sf_boolean_is_true(const char *value, size_t len);

#endif /* QPEER_H3_PROXY_STATUS_H */
