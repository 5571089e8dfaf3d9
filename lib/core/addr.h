/* SPDX-License-Identifier: MIT */
/* Internal socket-address helpers (pure). */
#ifndef QPEER_CORE_ADDR_H
#define QPEER_CORE_ADDR_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

/* Size of the sockaddr for its family (0 for an unknown family). */
socklen_t qpeer__addr_len(const struct sockaddr *sa);
/* Nonzero if family, address and port are equal. */
int qpeer__addr_equal(const struct sockaddr *a, const struct sockaddr *b);
/* Copies |src| into |dst|, turning an IPv4-mapped IPv6 address into IPv4. */
void qpeer__addr_normalize(struct sockaddr_storage *dst,
                           const struct sockaddr *src);
/* Copies an IPv4 |src| into |dst| as IPv4-mapped IPv6 (others unchanged). */
void qpeer__addr_to_v6mapped(struct sockaddr_storage *dst,
                             const struct sockaddr *src);
uint16_t qpeer__addr_port(const struct sockaddr *sa);
void qpeer__addr_set_port(struct sockaddr *sa, uint16_t port);
/* Nonzero for the wildcard address (0.0.0.0 or ::). */
int qpeer__addr_is_any(const struct sockaddr *sa);
/* A 64-bit hash of the address and port (for tables). */
uint64_t qpeer__addr_hash(const struct sockaddr *sa);

#endif /* QPEER_CORE_ADDR_H */
