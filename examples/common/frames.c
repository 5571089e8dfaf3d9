/* SPDX-License-Identifier: MIT */
/* Synthetic video frames (see frames.h). */
#include <string.h>

#include "frames.h"

static uint32_t crc_table[256];
static int crc_ready;

static void crc_init(void) {
  uint32_t i, j, c;
  for (i = 0; i < 256; i++) {
    c = i;
    for (j = 0; j < 8; j++)
      c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
  crc_ready = 1;
}

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n) {
  size_t i;
  if (!crc_ready)
    crc_init();
  for (i = 0; i < n; i++)
    crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

static void put64(uint8_t *p, uint64_t v) {
  int i;
  for (i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | p[3];
}

/* The payload byte at |i| of frame |seq|: cheap and reproducible. */
static uint8_t payload_byte(uint64_t seq, uint32_t i) {
  uint32_t x = (uint32_t)(seq * 2654435761u) ^ (i * 40503u);
  return (uint8_t)(x ^ (x >> 13));
}

size_t frame_write(uint8_t *buf, size_t buflen, uint64_t seq,
                   uint64_t timestamp_us, uint32_t payload) {
  size_t n = FRAME_HDR + (size_t)payload + 4;
  uint32_t i, crc;
  if (payload > FRAME_MAX_PAYLOAD || buflen < n)
    return 0;
  memset(buf, 0, FRAME_HDR);
  put32(buf, FRAME_MAGIC);
  buf[4] = 1; /* version */
  put64(buf + 8, seq);
  put64(buf + 16, timestamp_us);
  put32(buf + 24, payload);
  for (i = 0; i < payload; i++)
    buf[FRAME_HDR + i] = payload_byte(seq, i);
  crc = crc_update(0xffffffffu, buf, FRAME_HDR + payload) ^ 0xffffffffu;
  put32(buf + FRAME_HDR + payload, crc);
  return n;
}

void frame_reader_init(frame_reader *r) { memset(r, 0, sizeof(*r)); }

int frame_reader_feed(frame_reader *r, const uint8_t *data, size_t len) {
  int done = 0;
  size_t off = 0;
  if (r->err)
    return -1;
  while (off < len) {
    if (r->hdrlen < FRAME_HDR) {
      size_t k = FRAME_HDR - r->hdrlen;
      if (k > len - off)
        k = len - off;
      memcpy(r->hdr + r->hdrlen, data + off, k);
      r->hdrlen += k;
      off += k;
      if (r->hdrlen < FRAME_HDR)
        break;
      if (get32(r->hdr) != FRAME_MAGIC || r->hdr[4] != 1) {
        r->err = FRAME_EMAGIC;
        return -1;
      }
      r->seq = get64(r->hdr + 8);
      r->ts = get64(r->hdr + 16);
      r->payload = get32(r->hdr + 24);
      if (r->payload > FRAME_MAX_PAYLOAD) {
        r->err = FRAME_ESIZE;
        return -1;
      }
      if (r->seq != r->next_seq) {
        r->err = FRAME_ESEQ;
        return -1;
      }
      r->got = 0;
      r->crc = crc_update(0xffffffffu, r->hdr, FRAME_HDR);
      continue;
    }
    while (off < len && r->got < r->payload) {
      /* The payload must be exactly what the camera generates. */
      if (data[off] != payload_byte(r->seq, r->got)) {
        r->err = FRAME_ECRC;
        return -1;
      }
      r->crc = crc_update(r->crc, data + off, 1);
      off++;
      r->got++;
    }
    while (off < len && r->got >= r->payload && r->got < r->payload + 4)
      r->crcbuf[r->got++ - r->payload] = data[off++];
    if (r->got == r->payload + 4) {
      if (get32(r->crcbuf) != (r->crc ^ 0xffffffffu)) {
        r->err = FRAME_ECRC;
        return -1;
      }
      r->frames++;
      r->next_seq++;
      r->hdrlen = 0;
      done++;
    }
  }
  r->bytes += len;
  return done;
}

const char *frame_strerror(int err) {
  switch (err) {
  case 0:
    return "ok";
  case FRAME_EMAGIC:
    return "bad frame header";
  case FRAME_ESEQ:
    return "frame missing or out of order";
  case FRAME_ECRC:
    return "frame content or checksum mismatch";
  case FRAME_ESIZE:
    return "frame too large";
  default:
    return "unknown frame error";
  }
}
