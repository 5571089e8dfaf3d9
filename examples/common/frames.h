/* SPDX-License-Identifier: MIT */
/*
 * Synthetic video frames for the camera/phone examples: a sequence-numbered,
 * checksummed stream. Each frame is a 32-byte header, a payload derived
 * from the sequence number, and a CRC-32 of both; the reader checks every
 * byte, the sequence and the checksum. Pure (no I/O).
 */
#ifndef QPEER_EXAMPLES_FRAMES_H
#define QPEER_EXAMPLES_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_MAGIC 0x51505646u /* "QPVF" */
#define FRAME_HDR 32
#define FRAME_MAX_PAYLOAD (1u << 20)

/* Writes frame |seq| with |payload| bytes into |buf| (room |buflen|).
 * Returns the frame length, or 0 if it does not fit. */
size_t frame_write(uint8_t *buf, size_t buflen, uint64_t seq,
                   uint64_t timestamp_us, uint32_t payload);

/* Incremental reader. */
typedef struct frame_reader {
  uint8_t hdr[FRAME_HDR]; /* header being assembled */
  size_t hdrlen;          /* header bytes so far */
  uint64_t seq;           /* sequence of the frame being read */
  uint64_t ts;            /* its timestamp */
  uint32_t payload;       /* its payload length */
  uint32_t got;           /* payload + CRC bytes so far */
  uint32_t crc;           /* running CRC */
  uint8_t crcbuf[4];      /* the received CRC */
  uint64_t next_seq;      /* the sequence expected next */
  uint64_t frames;        /* complete, verified frames */
  uint64_t bytes;         /* bytes consumed */
  int err;                /* sticky error: 0 or a FRAME_E* value */
} frame_reader;

enum {
  FRAME_EMAGIC = 1, /* bad magic or version */
  FRAME_ESEQ,       /* a frame missing or out of order */
  FRAME_ECRC,       /* checksum mismatch */
  FRAME_ESIZE       /* payload length over the limit */
};

void frame_reader_init(frame_reader *r);
/* Feeds bytes; returns the number of frames completed by this call, or -1
 * on the first error (then r->err says which). */
int frame_reader_feed(frame_reader *r, const uint8_t *data, size_t len);
const char *frame_strerror(int err);

#endif
