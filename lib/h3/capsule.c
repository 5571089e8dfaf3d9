/* SPDX-License-Identifier: MIT */
/*
 * RFC 9297 capsules (see capsule.h). The file holds, in order: the
 * incremental parser (header collection, value reassembly, skipping of
 * unknown types), the writers, and the per-type value decoders. Pure: no
 * I/O; the only allocation is the parser's bounded reassembly buffer.
 */
#include <string.h>

#include "core/varint.h"
#include "h3/capsule.h"
#include "internal.h"

/* Parser states. */
enum {
  S_HEADER = 0, /* collecting Type and Length into p->hdr */
  S_VALUE = 1,  /* reassembling the value of a known capsule */
  S_SKIP = 2,   /* discarding the value of an unknown capsule */
  S_ERROR = 3   /* a fatal error was returned; p->err repeats it */
};

/* A non-NULL value pointer for empty capsules. */
static const uint8_t empty_value[1];

/* The encoded size of the varint whose first byte is |b|. */
static size_t varint_size(uint8_t b) { return (size_t)1 << (b >> 6); }

int qpeer__capsule_is_known(uint64_t type) {
  return type == QPEER__CAPSULE_DATAGRAM ||
         type == QPEER__CAPSULE_COMPRESSION_ASSIGN ||
         type == QPEER__CAPSULE_COMPRESSION_ACK ||
         type == QPEER__CAPSULE_COMPRESSION_CLOSE;
}

int qpeer__capsule_parser_init(qpeer__capsule_parser *p, size_t max_value) {
  memset(p, 0, sizeof(*p));
  p->max_value = max_value ? max_value : QPEER__CAPSULE_MAX_VALUE_DEFAULT;
  p->state = S_HEADER;
  return 0;
}

void qpeer__capsule_parser_free(qpeer__capsule_parser *p) {
  qpeer__free(p->buf);
  p->buf = NULL;
  p->bufcap = 0;
}

/* How many header bytes are needed, given those already in p->hdr. The
 * answer grows as the first byte of each varint reveals its size. */
static size_t header_need(const qpeer__capsule_parser *p) {
  size_t tlen;
  if (p->hdrlen == 0)
    return 1;
  tlen = varint_size(p->hdr[0]);
  if (p->hdrlen <= tlen)
    return tlen + 1;
  return tlen + varint_size(p->hdr[tlen]);
}

static int fail(qpeer__capsule_parser *p, int err) {
  p->state = S_ERROR;
  p->err = err;
  return err;
}

/* Called once p->hdr holds a whole header: decodes it and picks the next
 * state. Returns 0 or a (sticky) error. */
static int header_done(qpeer__capsule_parser *p) {
  qpeer__rbuf r;
  /* Both varints are whole: header_need counted exactly their sizes. */
  qpeer__rbuf_init(&r, p->hdr, p->hdrlen);
  qpeer__rbuf_varint(&r, &p->type);
  qpeer__rbuf_varint(&r, &p->len);
  p->hdrlen = 0;
  p->have = 0;
  if (!qpeer__capsule_is_known(p->type)) {
    p->state = S_SKIP;
    return 0;
  }
  if (p->len > p->max_value)
    return fail(p, QPEER_EMALFORMED);
  p->state = S_VALUE;
  return 0;
}

/* Makes room for a value of p->len bytes (at most max_value). */
static int reserve(qpeer__capsule_parser *p) {
  if (p->bufcap >= p->len)
    return 0;
  qpeer__free(p->buf);
  p->bufcap = 0;
  p->buf = qpeer__malloc((size_t)p->len);
  if (!p->buf)
    return fail(p, UV_ENOMEM);
  p->bufcap = (size_t)p->len;
  return 0;
}

int qpeer__capsule_parser_feed(qpeer__capsule_parser *p, const uint8_t *data,
                               size_t len, size_t *pnread,
                               qpeer__capsule *pcap) {
  const uint8_t *in, *end;
  size_t avail, n;
  int rv;

  *pnread = 0;
  if (p->state == S_ERROR)
    return p->err;
  if (len == 0)
    return 0; /* every capsule completes in the call carrying its end */
  in = data;
  end = data + len;
  for (;;) {
    avail = (size_t)(end - in);
    switch (p->state) {
    case S_HEADER:
      n = header_need(p);
      if (p->hdrlen == n) {
        rv = header_done(p);
        if (rv < 0)
          return rv;
        continue;
      }
      if (avail == 0)
        goto out;
      n = QPEER__MIN(n - p->hdrlen, avail);
      memcpy(p->hdr + p->hdrlen, in, n);
      p->hdrlen += n;
      in += n;
      continue;
    case S_VALUE:
      if (p->have == 0 && avail >= p->len) {
        /* The whole value is in the caller's buffer: no copy. */
        pcap->value = p->len ? in : empty_value;
        in += p->len;
      } else {
        if (avail == 0)
          goto out;
        if (p->have == 0) {
          rv = reserve(p);
          if (rv < 0)
            return rv;
        }
        n = (size_t)QPEER__MIN(p->len - p->have, (uint64_t)avail);
        memcpy(p->buf + p->have, in, n);
        p->have += n;
        in += n;
        if (p->have < p->len)
          goto out;
        pcap->value = p->buf;
      }
      pcap->type = p->type;
      pcap->len = (size_t)p->len;
      p->state = S_HEADER;
      *pnread = (size_t)(in - data);
      return 1;
    case S_SKIP:
      n = (size_t)QPEER__MIN(p->len - p->have, (uint64_t)avail);
      p->have += n;
      in += n;
      if (p->have < p->len)
        goto out;
      p->nskipped++;
      p->state = S_HEADER;
      continue;
    default:
      return p->err;
    }
  }
out:
  *pnread = (size_t)(in - data);
  return 0;
}

int qpeer__capsule_parser_end(const qpeer__capsule_parser *p) {
  if (p->state == S_ERROR)
    return p->err;
  if (p->state != S_HEADER || p->hdrlen != 0)
    return QPEER_ETRUNCATED;
  return 0;
}

/* Writers. */

ssize_t qpeer__capsule_write_header(uint8_t *dest, size_t destlen,
                                    uint64_t type, uint64_t len) {
  qpeer__wbuf w;
  int rv;
  if (type > QPEER__VARINT_MAX || len > QPEER__VARINT_MAX)
    return UV_EINVAL;
  qpeer__wbuf_init(&w, dest, destlen);
  rv = qpeer__wbuf_varint(&w, type);
  if (rv == 0)
    rv = qpeer__wbuf_varint(&w, len);
  if (rv < 0)
    return rv;
  return (ssize_t)(w.p - dest);
}

ssize_t qpeer__capsule_write(uint8_t *dest, size_t destlen, uint64_t type,
                             const uint8_t *value, size_t len) {
  ssize_t n = qpeer__capsule_write_header(dest, destlen, type, len);
  if (n < 0)
    return n;
  if (destlen - (size_t)n < len)
    return UV_ENOBUFS;
  if (len)
    memcpy(dest + n, value, len);
  return n + (ssize_t)len;
}

ssize_t qpeer__capsule_write_datagram_header(uint8_t *dest, size_t destlen,
                                             uint64_t context_id,
                                             size_t datalen) {
  size_t clen = qpeer__varint_len(context_id);
  ssize_t n;
  int rv;
  if (clen == 0 || datalen > QPEER__VARINT_MAX - clen)
    return UV_EINVAL;
  n = qpeer__capsule_write_header(dest, destlen, QPEER__CAPSULE_DATAGRAM,
                                  clen + datalen);
  if (n < 0)
    return n;
  rv = qpeer__varint_encode(dest + n, destlen - (size_t)n, context_id);
  if (rv < 0)
    return rv;
  return n + rv;
}

ssize_t qpeer__capsule_write_datagram(uint8_t *dest, size_t destlen,
                                      uint64_t context_id, const uint8_t *data,
                                      size_t datalen) {
  ssize_t n =
      qpeer__capsule_write_datagram_header(dest, destlen, context_id, datalen);
  if (n < 0)
    return n;
  if (destlen - (size_t)n < datalen)
    return UV_ENOBUFS;
  if (datalen)
    memcpy(dest + n, data, datalen);
  return n + (ssize_t)datalen;
}

ssize_t qpeer__capsule_write_compression_assign(uint8_t *dest, size_t destlen,
                                                uint64_t context_id,
                                                const struct sockaddr *addr) {
  uint8_t value[8 + 1 + 16 + 2];
  qpeer__wbuf w;
  if (context_id == 0 || context_id > QPEER__VARINT_MAX)
    return UV_EINVAL;
  qpeer__wbuf_init(&w, value, sizeof(value));
  qpeer__wbuf_varint(&w, context_id);
  if (!addr) {
    qpeer__wbuf_u8(&w, 0);
  } else if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const void *)addr;
    qpeer__wbuf_u8(&w, 4);
    qpeer__wbuf_bytes(&w, &a->sin_addr, 4);
    qpeer__wbuf_u16(&w, ntohs(a->sin_port));
  } else if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const void *)addr;
    qpeer__wbuf_u8(&w, 6);
    qpeer__wbuf_bytes(&w, &a->sin6_addr, 16);
    qpeer__wbuf_u16(&w, ntohs(a->sin6_port));
  } else {
    return UV_EINVAL;
  }
  return qpeer__capsule_write(dest, destlen, QPEER__CAPSULE_COMPRESSION_ASSIGN,
                              value, (size_t)(w.p - value));
}

/* COMPRESSION_ACK and COMPRESSION_CLOSE share one layout. */
static ssize_t write_context_only(uint8_t *dest, size_t destlen, uint64_t type,
                                  uint64_t context_id) {
  uint8_t value[8];
  int n;
  if (context_id == 0)
    return UV_EINVAL;
  n = qpeer__varint_encode(value, sizeof(value), context_id);
  if (n < 0)
    return n;
  return qpeer__capsule_write(dest, destlen, type, value, (size_t)n);
}

ssize_t qpeer__capsule_write_compression_ack(uint8_t *dest, size_t destlen,
                                             uint64_t context_id) {
  return write_context_only(dest, destlen, QPEER__CAPSULE_COMPRESSION_ACK,
                            context_id);
}

ssize_t qpeer__capsule_write_compression_close(uint8_t *dest, size_t destlen,
                                               uint64_t context_id) {
  return write_context_only(dest, destlen, QPEER__CAPSULE_COMPRESSION_CLOSE,
                            context_id);
}

/* Decoders. */

int qpeer__capsule_decode_datagram(const uint8_t *value, size_t len,
                                   uint64_t *pcontext_id, const uint8_t **pdata,
                                   size_t *pdatalen) {
  qpeer__rbuf r;
  int rv;
  qpeer__rbuf_init(&r, value ? value : empty_value, len);
  rv = qpeer__rbuf_varint(&r, pcontext_id);
  if (rv < 0)
    return rv;
  *pdata = r.p;
  *pdatalen = qpeer__rbuf_left(&r);
  return 0;
}

int qpeer__capsule_decode_compression_assign(const uint8_t *value, size_t len,
                                             qpeer__compression_assign *pa) {
  qpeer__rbuf r;
  const uint8_t *ip;
  uint16_t port;
  int rv;
  memset(pa, 0, sizeof(*pa));
  qpeer__rbuf_init(&r, value ? value : empty_value, len);
  rv = qpeer__rbuf_varint(&r, &pa->context_id);
  if (rv == 0)
    rv = qpeer__rbuf_u8(&r, &pa->ip_version);
  if (rv < 0)
    return rv;
  if (pa->context_id == 0)
    return QPEER_EMALFORMED;
  if (pa->ip_version == 4) {
    struct sockaddr_in *a = (void *)&pa->addr;
    rv = qpeer__rbuf_bytes(&r, &ip, 4);
    if (rv == 0)
      rv = qpeer__rbuf_u16(&r, &port);
    if (rv < 0)
      return rv;
    a->sin_family = AF_INET;
    memcpy(&a->sin_addr, ip, 4);
    a->sin_port = htons(port);
  } else if (pa->ip_version == 6) {
    struct sockaddr_in6 *a = (void *)&pa->addr;
    rv = qpeer__rbuf_bytes(&r, &ip, 16);
    if (rv == 0)
      rv = qpeer__rbuf_u16(&r, &port);
    if (rv < 0)
      return rv;
    a->sin6_family = AF_INET6;
    memcpy(&a->sin6_addr, ip, 16);
    a->sin6_port = htons(port);
  } else if (pa->ip_version != 0) {
    return QPEER_EMALFORMED;
  }
  if (qpeer__rbuf_left(&r) != 0)
    return QPEER_EMALFORMED;
  return 0;
}

static int decode_context_only(const uint8_t *value, size_t len,
                               uint64_t *pcontext_id) {
  qpeer__rbuf r;
  int rv;
  qpeer__rbuf_init(&r, value ? value : empty_value, len);
  rv = qpeer__rbuf_varint(&r, pcontext_id);
  if (rv < 0)
    return rv;
  if (qpeer__rbuf_left(&r) != 0 || *pcontext_id == 0)
    return QPEER_EMALFORMED;
  return 0;
}

int qpeer__capsule_decode_compression_ack(const uint8_t *value, size_t len,
                                          uint64_t *pcontext_id) {
  return decode_context_only(value, len, pcontext_id);
}

int qpeer__capsule_decode_compression_close(const uint8_t *value, size_t len,
                                            uint64_t *pcontext_id) {
  return decode_context_only(value, len, pcontext_id);
}
