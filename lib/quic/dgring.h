/* SPDX-License-Identifier: MIT */
/*
 * The outgoing DATAGRAM queue of a connection: variable-length records
 * kept contiguously in one byte ring, so queueing a datagram is one copy
 * into the ring and no allocation (the ring is allocated with the first
 * datagram, doubles up to its byte limit while a burst needs it, and is
 * released once it has stayed empty). Bounded in records and bytes.
 * Pure: no I/O.
 */
#ifndef QPEER_QUIC_DGRING_H
#define QPEER_QUIC_DGRING_H

#include <stddef.h>
#include <stdint.h>

#define QPEER__DGRING_INITIAL 16384 /* bytes of a fresh ring */
#define QPEER__DGRING_REC_MAX 65535 /* largest record payload */

typedef struct qpeer__dgring {
  uint8_t *buf;     /* NULL until the first record (and after release) */
  size_t cap;       /* bytes at buf */
  size_t head;      /* offset of the first record */
  size_t tail;      /* offset where the next record goes */
  size_t wrap;      /* records stop here, then continue at 0; cap: none */
  size_t n;         /* records queued */
  size_t bytes;     /* payload + header bytes queued */
  size_t max_n;     /* record limit */
  size_t max_bytes; /* byte limit (payload + 2 per record) */
} qpeer__dgring;

/* An empty ring holding at most |max_n| records and |max_bytes| bytes
 * (each record costs its length + 2). No allocation. */
void qpeer__dgring_init(qpeer__dgring *r, size_t max_n, size_t max_bytes);
/* Appends a record of |len| bytes and returns where to write them, or
 * NULL with *err set: UV_ENOBUFS (a limit is reached; nothing changed),
 * UV_EMSGSIZE (len > QPEER__DGRING_REC_MAX), UV_ENOMEM. */
uint8_t *qpeer__dgring_push(qpeer__dgring *r, size_t len, int *err);
/* The first record (0 and nothing set when empty, else 1). */
int qpeer__dgring_front(const qpeer__dgring *r, const uint8_t **data,
                        size_t *len);
/* Removes the first record (no-op when empty). */
void qpeer__dgring_pop(qpeer__dgring *r);
/* Frees the storage when the ring is empty. */
void qpeer__dgring_release(qpeer__dgring *r);
/* Frees everything; the ring is empty (and usable) afterwards. */
void qpeer__dgring_free(qpeer__dgring *r);

#endif
