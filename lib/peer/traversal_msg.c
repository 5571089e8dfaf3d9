/* SPDX-License-Identifier: MIT */
/*
 * The control-stream message codec (see traversal_msg.h and
 * doc/protocol.md). Divisions, in order: address fields; the body
 * decoders, one per layout; the one-shot decoder; the encoder; role and
 * negotiation checks; the incremental stream parser. Pure: no I/O, no
 * libuv calls, no clock, no allocation.
 */
#include <arpa/inet.h>
#include <string.h>

#include "core/addr.h"
#include "core/varint.h"
#include "internal.h"
#include "peer/traversal_msg.h"

_Static_assert(QPEER__TRAV_ENC_MAX >= 8 + 1 + 8 + (8 + 1) + (8 + 8) + (8 + 8),
               "a HELLO with every setting fits");
_Static_assert(QPEER__TRAV_MAX_BODY >= QPEER__TRAV_ENC_MAX,
               "the parser accepts every body the encoder writes");

/* ---- Address fields. ---- */

/* get_addr reads an IPv4 (|v6| zero) or IPv6 address and a port into
 * |*ss|; QPEER_EMALFORMED if the body ends first. */
static int get_addr(qpeer__rbuf *r, int v6, struct sockaddr_storage *ss) {
  const uint8_t *ip;
  uint16_t port;
  memset(ss, 0, sizeof(*ss));
  if (qpeer__rbuf_bytes(r, &ip, v6 ? 16 : 4) != 0 ||
      qpeer__rbuf_u16(r, &port) != 0)
    return QPEER_EMALFORMED;
  if (v6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ss;
    s6->sin6_family = AF_INET6;
    memcpy(s6->sin6_addr.s6_addr, ip, 16);
    s6->sin6_port = htons(port);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ss;
    s4->sin_family = AF_INET;
    memcpy(&s4->sin_addr, ip, 4);
    s4->sin_port = htons(port);
  }
  return 0;
}

/* put_addr writes the IP bytes and port of the (normalized) |ss|. */
static int put_addr(qpeer__wbuf *w, const struct sockaddr_storage *ss) {
  const struct sockaddr *sa = (const struct sockaddr *)(const void *)ss;
  int rv;
  if (sa->sa_family == AF_INET)
    rv = qpeer__wbuf_bytes(
        w, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
  else
    rv = qpeer__wbuf_bytes(
        w, ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr,
        16);
  if (rv != 0)
    return rv;
  return qpeer__wbuf_u16(w, qpeer__addr_port(sa));
}

/* ---- Body decoders. ---- */

/* get_varint reads a varint from the body; QPEER_EMALFORMED if it runs
 * past the end (the body's Length is authoritative). */
static int get_varint(qpeer__rbuf *r, uint64_t *pv) {
  return qpeer__rbuf_varint(r, pv) == 0 ? 0 : QPEER_EMALFORMED;
}

/* decode_seq_addr reads {Sequence Number (i), IPv4/IPv6, Port (16)}:
 * OBSERVED_ADDRESS and ADD_ADDRESS. */
static int decode_seq_addr(qpeer__trav_msg *m, qpeer__rbuf *r, int v6) {
  int rv;
  if ((rv = get_varint(r, &m->seq)) != 0)
    return rv;
  return get_addr(r, v6, &m->addr);
}

/* decode_punch reads {Round (i), Paired With Sequence Number (i),
 * IPv4/IPv6, Port (16)}. */
static int decode_punch(qpeer__trav_msg *m, qpeer__rbuf *r, int v6) {
  int rv;
  if ((rv = get_varint(r, &m->round)) != 0 ||
      (rv = get_varint(r, &m->seq)) != 0)
    return rv;
  return get_addr(r, v6, &m->addr);
}

/* decode_address_info reads {Sequence Number (i), Candidate Type (8),
 * Priority (32)}. */
static int decode_address_info(qpeer__trav_msg *m, qpeer__rbuf *r) {
  int rv;
  if ((rv = get_varint(r, &m->seq)) != 0)
    return rv;
  if (qpeer__rbuf_u8(r, &m->cand_type) != 0 ||
      qpeer__rbuf_u32(r, &m->priority) != 0)
    return QPEER_EMALFORMED;
  return 0;
}

/* decode_hello reads {Version (i), (Identifier (i), Value (i))*}. Unknown
 * settings are ignored; a known one may appear once. */
static int decode_hello(qpeer__trav_msg *m, qpeer__rbuf *r) {
  qpeer__trav_hello *h = &m->hello;
  int rv;
  if ((rv = get_varint(r, &h->version)) != 0)
    return rv;
  if (h->version == 0)
    return QPEER_EMALFORMED;
  while (qpeer__rbuf_left(r) > 0) {
    uint64_t id, v;
    if ((rv = get_varint(r, &id)) != 0 || (rv = get_varint(r, &v)) != 0)
      return rv;
    if (id == QPEER__TRAV_SET_ADDRESS_DISCOVERY) {
      if (h->has_address_discovery || v > 2)
        return QPEER_EMALFORMED;
      h->has_address_discovery = 1;
      h->address_discovery = (uint8_t)v;
    } else if (id == QPEER__TRAV_SET_NAT_TRAVERSAL) {
      if (h->has_nat_traversal)
        return QPEER_EMALFORMED;
      h->has_nat_traversal = 1;
      h->nat_traversal = v;
    } else if (id == QPEER__TRAV_SET_MAX_ADDRESSES) {
      if (h->has_max_addresses || v == 0)
        return QPEER_EMALFORMED;
      h->has_max_addresses = 1;
      h->max_addresses = v;
    }
  }
  return 0;
}

int qpeer__trav_msg_decode_body(qpeer__trav_msg *m, uint64_t type,
                                const uint8_t *body, size_t len) {
  qpeer__rbuf r;
  int rv;

  memset(m, 0, sizeof(*m));
  qpeer__rbuf_init(&r, body, len);
  switch (type) {
  case QPEER__TRAV_T_OBSERVED_V4:
  case QPEER__TRAV_T_OBSERVED_V6:
    m->kind = QPEER__TRAV_OBSERVED_ADDRESS;
    rv = decode_seq_addr(m, &r, (int)(type & 1));
    break;
  case QPEER__TRAV_T_ADD_V4:
  case QPEER__TRAV_T_ADD_V6:
    m->kind = QPEER__TRAV_ADD_ADDRESS;
    rv = decode_seq_addr(m, &r, (int)(type & 1));
    break;
  case QPEER__TRAV_T_PUNCH_V4:
  case QPEER__TRAV_T_PUNCH_V6:
    m->kind = QPEER__TRAV_PUNCH_ME_NOW;
    rv = decode_punch(m, &r, (int)(type & 1));
    break;
  case QPEER__TRAV_T_REMOVE:
    m->kind = QPEER__TRAV_REMOVE_ADDRESS;
    rv = get_varint(&r, &m->seq);
    break;
  case QPEER__TRAV_T_HELLO:
    m->kind = QPEER__TRAV_HELLO;
    rv = decode_hello(m, &r);
    break;
  case QPEER__TRAV_T_ADDRESS_INFO:
    m->kind = QPEER__TRAV_ADDRESS_INFO;
    rv = decode_address_info(m, &r);
    break;
  default:
    memset(m, 0, sizeof(*m));
    return QPEER_EUNSUPPORTED;
  }
  if (rv == 0 && qpeer__rbuf_left(&r) != 0)
    rv = QPEER_EMALFORMED; /* bytes after the last field */
  if (rv != 0)
    memset(m, 0, sizeof(*m));
  return rv;
}

/* ---- The one-shot decoder. ---- */

/* read_header reads Type and Length from the |len| bytes at |buf|: 0 and
 * |*phdrlen|, QPEER_ETRUNCATED, QPEER_EMALFORMED (not shortest) or
 * UV_EMSGSIZE. */
static int read_header(const uint8_t *buf, size_t len, uint64_t *ptype,
                       uint64_t *plen, size_t *phdrlen) {
  int tn, ln;
  tn = qpeer__varint_decode(ptype, buf, len);
  if (tn < 0)
    return QPEER_ETRUNCATED;
  ln = qpeer__varint_decode(plen, buf + tn, len - (size_t)tn);
  if (ln < 0)
    return QPEER_ETRUNCATED;
  if (qpeer__varint_len(*ptype) != (size_t)tn ||
      qpeer__varint_len(*plen) != (size_t)ln)
    return QPEER_EMALFORMED;
  if (*plen > QPEER__TRAV_MAX_BODY)
    return UV_EMSGSIZE;
  *phdrlen = (size_t)(tn + ln);
  return 0;
}

/* is_known returns nonzero for a message type this codec decodes. */
static int is_known(uint64_t type) {
  switch (type) {
  case QPEER__TRAV_T_OBSERVED_V4:
  case QPEER__TRAV_T_OBSERVED_V6:
  case QPEER__TRAV_T_ADD_V4:
  case QPEER__TRAV_T_ADD_V6:
  case QPEER__TRAV_T_PUNCH_V4:
  case QPEER__TRAV_T_PUNCH_V6:
  case QPEER__TRAV_T_REMOVE:
  case QPEER__TRAV_T_HELLO:
  case QPEER__TRAV_T_ADDRESS_INFO:
    return 1;
  }
  return 0;
}

int qpeer__trav_msg_decode(qpeer__trav_msg *m, const uint8_t *buf, size_t len,
                           size_t *pconsumed) {
  uint64_t type, blen;
  size_t hl;
  int rv;

  *pconsumed = 0;
  if ((rv = read_header(buf, len, &type, &blen, &hl)) != 0)
    return rv;
  if (!is_known(type)) {
    memset(m, 0, sizeof(*m));
    *pconsumed = hl + (size_t)blen;
    return QPEER_EUNSUPPORTED;
  }
  if (len - hl < blen)
    return QPEER_ETRUNCATED;
  if ((rv = qpeer__trav_msg_decode_body(m, type, buf + hl, (size_t)blen)) != 0)
    return rv;
  *pconsumed = hl + (size_t)blen;
  return 0;
}

/* ---- The encoder. ---- */

/* encode_hello_body writes the HELLO body of |h|. */
static int encode_hello_body(qpeer__wbuf *w, const qpeer__trav_hello *h) {
  int rv;
  if (h->version == 0 || h->version > QPEER__VARINT_MAX ||
      (h->has_address_discovery && h->address_discovery > 2) ||
      (h->has_nat_traversal && h->nat_traversal > QPEER__VARINT_MAX) ||
      (h->has_max_addresses &&
       (h->max_addresses == 0 || h->max_addresses > QPEER__VARINT_MAX)))
    return UV_EINVAL;
  if ((rv = qpeer__wbuf_varint(w, h->version)) != 0)
    return rv;
  if (h->has_address_discovery &&
      ((rv = qpeer__wbuf_varint(w, QPEER__TRAV_SET_ADDRESS_DISCOVERY)) != 0 ||
       (rv = qpeer__wbuf_varint(w, h->address_discovery)) != 0))
    return rv;
  if (h->has_nat_traversal &&
      ((rv = qpeer__wbuf_varint(w, QPEER__TRAV_SET_NAT_TRAVERSAL)) != 0 ||
       (rv = qpeer__wbuf_varint(w, h->nat_traversal)) != 0))
    return rv;
  if (h->has_max_addresses &&
      ((rv = qpeer__wbuf_varint(w, QPEER__TRAV_SET_MAX_ADDRESSES)) != 0 ||
       (rv = qpeer__wbuf_varint(w, h->max_addresses)) != 0))
    return rv;
  return 0;
}

/* encode_body writes the body of |m| (whose address is |addr|) into |w| and
 * sets |*ptype| to its wire type. */
static int encode_body(qpeer__wbuf *w, const qpeer__trav_msg *m,
                       const struct sockaddr_storage *addr, uint64_t *ptype) {
  uint64_t v6 = addr->ss_family == AF_INET6;
  int has_addr = m->kind == QPEER__TRAV_OBSERVED_ADDRESS ||
                 m->kind == QPEER__TRAV_ADD_ADDRESS ||
                 m->kind == QPEER__TRAV_PUNCH_ME_NOW;
  int rv;

  if (m->seq > QPEER__VARINT_MAX || m->round > QPEER__VARINT_MAX)
    return UV_EINVAL;
  if (has_addr && addr->ss_family != AF_INET && addr->ss_family != AF_INET6)
    return UV_EINVAL;
  switch (m->kind) {
  case QPEER__TRAV_OBSERVED_ADDRESS:
  case QPEER__TRAV_ADD_ADDRESS:
    *ptype =
        (m->kind == QPEER__TRAV_OBSERVED_ADDRESS ? QPEER__TRAV_T_OBSERVED_V4
                                                 : QPEER__TRAV_T_ADD_V4) |
        v6;
    if ((rv = qpeer__wbuf_varint(w, m->seq)) != 0)
      return rv;
    return put_addr(w, addr);
  case QPEER__TRAV_PUNCH_ME_NOW:
    *ptype = QPEER__TRAV_T_PUNCH_V4 | v6;
    if ((rv = qpeer__wbuf_varint(w, m->round)) != 0 ||
        (rv = qpeer__wbuf_varint(w, m->seq)) != 0)
      return rv;
    return put_addr(w, addr);
  case QPEER__TRAV_REMOVE_ADDRESS:
    *ptype = QPEER__TRAV_T_REMOVE;
    return qpeer__wbuf_varint(w, m->seq);
  case QPEER__TRAV_HELLO:
    *ptype = QPEER__TRAV_T_HELLO;
    return encode_hello_body(w, &m->hello);
  case QPEER__TRAV_ADDRESS_INFO:
    *ptype = QPEER__TRAV_T_ADDRESS_INFO;
    if ((rv = qpeer__wbuf_varint(w, m->seq)) != 0 ||
        (rv = qpeer__wbuf_u8(w, m->cand_type)) != 0)
      return rv;
    return qpeer__wbuf_u32(w, m->priority);
  }
  return UV_EINVAL;
}

int qpeer__trav_msg_encode(const qpeer__trav_msg *m, uint8_t *buf,
                           size_t buflen) {
  uint8_t body[QPEER__TRAV_ENC_MAX];
  struct sockaddr_storage addr;
  qpeer__wbuf w;
  uint64_t type = 0;
  size_t blen;
  int rv;

  if (m == NULL || (buf == NULL && buflen > 0))
    return UV_EINVAL;
  qpeer__addr_normalize(&addr, (const struct sockaddr *)(const void *)&m->addr);
  qpeer__wbuf_init(&w, body, sizeof(body));
  rv = encode_body(&w, m, &addr, &type);
  if (rv != 0)
    return rv == UV_ENOBUFS ? UV_EINVAL : rv; /* cannot overflow |body| */
  blen = (size_t)(w.p - body);
  qpeer__wbuf_init(&w, buf, buflen);
  if ((rv = qpeer__wbuf_varint(&w, type)) != 0 ||
      (rv = qpeer__wbuf_varint(&w, blen)) != 0 ||
      (rv = qpeer__wbuf_bytes(&w, body, blen)) != 0)
    return rv;
  return (int)(w.p - buf);
}

/* ---- Roles and negotiation. ---- */

int qpeer__trav_msg_direction_ok(qpeer__trav_kind kind,
                                 int receiver_is_server) {
  switch (kind) {
  case QPEER__TRAV_HELLO:
  case QPEER__TRAV_OBSERVED_ADDRESS:
    return 0;
  case QPEER__TRAV_ADD_ADDRESS:
  case QPEER__TRAV_REMOVE_ADDRESS:
  case QPEER__TRAV_ADDRESS_INFO:
    return receiver_is_server ? QPEER_EPROTO : 0;
  case QPEER__TRAV_PUNCH_ME_NOW:
    return receiver_is_server ? 0 : QPEER_EPROTO;
  }
  return QPEER_EPROTO;
}

int qpeer__trav_hello_check(const qpeer__trav_hello *h, int sender_is_server) {
  if (!h->has_nat_traversal)
    return 0;
  if (sender_is_server ? h->nat_traversal == 0 : h->nat_traversal != 0)
    return QPEER_EPROTO;
  return 0;
}

int qpeer__trav_observed_allowed(const qpeer__trav_hello *from,
                                 const qpeer__trav_hello *to) {
  return from->has_address_discovery && to->has_address_discovery &&
         (from->address_discovery == 0 || from->address_discovery == 2) &&
         (to->address_discovery == 1 || to->address_discovery == 2);
}

/* ---- The stream parser. ---- */

void qpeer__trav_parser_init(qpeer__trav_parser *p) {
  memset(p, 0, sizeof(*p));
}

/* header_need returns how many header bytes are needed in total given the
 * |n| bytes gathered so far (never less than |n| + 1 until complete). */
static size_t header_need(const uint8_t *hdr, size_t n) {
  size_t tl;
  if (n == 0)
    return 1;
  tl = (size_t)1 << (hdr[0] >> 6);
  if (n <= tl)
    return tl + 1;
  return tl + ((size_t)1 << (hdr[tl] >> 6));
}

/* fail records the sticky error |err| and returns it. */
static int fail(qpeer__trav_parser *p, int err) {
  p->err = err;
  return err;
}

/* feed_header gathers header bytes; returns 1 once the header is complete
 * (the parser then is in the body), 0 when |len| ran out, or an error. */
static int feed_header(qpeer__trav_parser *p, const uint8_t *data, size_t len,
                       size_t *pused) {
  size_t need, take, hl;
  int rv;

  *pused = 0;
  for (;;) {
    need = header_need(p->hdr, p->hdrlen);
    if (p->hdrlen == need)
      break;
    take = need - p->hdrlen;
    if (take > len - *pused)
      take = len - *pused;
    if (take == 0)
      return 0;
    memcpy(p->hdr + p->hdrlen, data + *pused, take);
    p->hdrlen += take;
    *pused += take;
  }
  rv = read_header(p->hdr, p->hdrlen, &p->type, &p->len, &hl);
  if (rv != 0)
    return rv;
  p->in_body = 1;
  p->got = 0;
  p->known = (uint8_t)is_known(p->type);
  if (!p->hello_seen && p->type != QPEER__TRAV_T_HELLO)
    return QPEER_EPROTO;
  return 1;
}

/* end_message resets |p| for the next message's header. */
static void end_message(qpeer__trav_parser *p) {
  p->hdrlen = 0;
  p->in_body = 0;
  p->got = 0;
}

int qpeer__trav_parser_feed(qpeer__trav_parser *p, const uint8_t *data,
                            size_t len, size_t *pconsumed, qpeer__trav_msg *m) {
  size_t used = 0, n;
  int rv;

  *pconsumed = 0;
  if (p->err != 0)
    return p->err;
  while (used < len || (p->in_body && p->got == p->len)) {
    if (!p->in_body) {
      rv = feed_header(p, data + used, len - used, &n);
      used += n;
      if (rv < 0) {
        *pconsumed = used;
        return fail(p, rv);
      }
      if (rv == 0)
        break;
    }
    n = (size_t)(p->len - p->got);
    if (n > len - used)
      n = len - used;
    if (p->known && n > 0)
      memcpy(p->body + p->got, data + used, n);
    p->got += n;
    used += n;
    if (p->got < p->len)
      break;
    if (!p->known) {
      p->nskipped++;
      end_message(p);
      continue;
    }
    rv = qpeer__trav_msg_decode_body(m, p->type, p->body, (size_t)p->len);
    end_message(p);
    *pconsumed = used;
    if (rv != 0)
      return fail(p, rv);
    if (m->kind == QPEER__TRAV_HELLO) {
      if (p->hello_seen)
        return fail(p, QPEER_EPROTO);
      p->hello_seen = 1;
    }
    p->nmsgs++;
    return 1;
  }
  *pconsumed = used;
  return 0;
}

int qpeer__trav_parser_finish(const qpeer__trav_parser *p) {
  if (p->err != 0)
    return p->err;
  if (p->hdrlen != 0 || p->in_body)
    return QPEER_ETRUNCATED;
  return 0;
}
