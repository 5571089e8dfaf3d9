/* SPDX-License-Identifier: MIT */
/*
 * The bootstrap cache file codec (see bootstrap_fmt.h and doc/bootstrap.md).
 * Divisions, in order: CRC-32C; the entry checks, which go through the
 * ticket helpers so that the cache accepts exactly the addresses and relays
 * a ticket does; the incremental encoder; the decoder, which validates the
 * whole file in a first pass and delivers entries in a second. Pure: no
 * I/O, no clock, no allocation.
 */
#include <string.h>

#include "core/addr.h"
#include "core/varint.h"
#include "internal.h"
#include "peer/bootstrap_fmt.h"

/* The first four bytes of every cache file, whatever its version. */
static const uint8_t fmt_magic[4] = {'Q', 'P', 'B', 'C'};

/* Address families as written in a record. */
#define FAMILY_V4 4
#define FAMILY_V6 6

/* Length of a relay key on the wire (a pin or a CA fingerprint). */
#define RELAY_KEY_LEN 32

_Static_assert(QPEER_PEER_ID_LEN == 32, "record layout");
_Static_assert(QPEER_TICKET_CA_FP_LEN == RELAY_KEY_LEN, "record layout");
_Static_assert(QPEER__BOOTSTRAP_FMT_RECORD_MAX == 1363, "doc/bootstrap.md");
_Static_assert(QPEER__BOOTSTRAP_FMT_RECORD_MAX <= UINT16_MAX,
               "record length is a u16");
_Static_assert(QPEER__BOOTSTRAP_FMT_MAX_LEN(QPEER_BOOTSTRAP_MAX_ENTRIES) <=
                   QPEER_BOOTSTRAP_FILE_MAX,
               "the decoder accepts every file the encoder writes");

/* CRC-32C (Castagnoli, reflected polynomial 0x82f63b78) of each nibble. */
static const uint32_t crc32c_nibble[16] = {
    0x00000000u, 0x105ec76fu, 0x20bd8edeu, 0x30e349b1u,
    0x417b1dbcu, 0x5125dad3u, 0x61c69362u, 0x7198540du,
    0x82f63b78u, 0x92a8fc17u, 0xa24bb5a6u, 0xb21572c9u,
    0xc38d26c4u, 0xd3d3e1abu, 0xe330a81au, 0xf36e6f75u};

uint32_t qpeer__bootstrap_crc32c(const uint8_t *p, size_t len) {
  uint32_t crc = 0xffffffffu;
  while (len-- > 0) {
    crc ^= *p++;
    crc = (crc >> 4) ^ crc32c_nibble[crc & 15];
    crc = (crc >> 4) ^ crc32c_nibble[crc & 15];
  }
  return crc ^ 0xffffffffu;
}

int qpeer__bootstrap_add_relay(qpeer_ticket_t *t,
                               const qpeer_ticket_relay_t *r) {
  if (!t || !r || memchr(r->url, '\0', sizeof(r->url)) == NULL)
    return UV_EINVAL;
  switch (r->auth) {
  case QPEER_TICKET_AUTH_PIN:
    return qpeer_ticket_add_relay(t, r->url, r->auth, &r->pin);
  case QPEER_TICKET_AUTH_WEBPKI:
    return qpeer_ticket_add_relay(t, r->url, r->auth, NULL);
  case QPEER_TICKET_AUTH_CA:
    return qpeer_ticket_add_relay_ca(t, r->url, r->ca_sha256);
  default:
    return UV_EINVAL;
  }
}

/* is_v4mapped returns nonzero for an IPv4-mapped IPv6 address, which the
 * ticket helpers would silently turn into IPv4. */
static int is_v4mapped(const struct sockaddr_storage *ss) {
  const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)ss;
  return ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr);
}

/* entry_check returns 0 when |e| can be written as is and read back equal
 * (scope IDs and flow info aside): counts within the limits, a known path
 * kind, and addresses and relays the ticket helpers accept without change
 * or deduplication. Otherwise UV_EINVAL. */
static int entry_check(const qpeer_bootstrap_entry_t *e) {
  qpeer_ticket_t t;
  size_t i;

  if (e->naddrs > QPEER_BOOTSTRAP_MAX_ADDRS ||
      e->nrelays > QPEER_BOOTSTRAP_MAX_RELAYS ||
      (unsigned)e->last_path > QPEER_BOOTSTRAP_PATH_RELAY)
    return UV_EINVAL;
  qpeer_ticket_init(&t);
  for (i = 0; i < e->naddrs; i++) {
    if (is_v4mapped(&e->addrs[i].addr) ||
        qpeer_ticket_add_typed_addr(&t,
                                    (const struct sockaddr *)&e->addrs[i].addr,
                                    e->addrs[i].type) != 0 ||
        t.naddrs != i + 1)
      return UV_EINVAL;
  }
  for (i = 0; i < e->nrelays; i++)
    if (qpeer__bootstrap_add_relay(&t, &e->relays[i]) != 0 ||
        t.nrelays != i + 1)
      return UV_EINVAL;
  return 0;
}

/* ---- Encoder ---------------------------------------------------------- */

void qpeer__bootstrap_enc_init(qpeer__bootstrap_enc *enc, uint8_t *buf,
                               size_t buflen) {
  memset(enc, 0, sizeof(*enc));
  enc->buf = buf;
  enc->buflen = buflen;
  if (!buf || buflen < QPEER__BOOTSTRAP_FMT_MIN_LEN) {
    enc->err = UV_ENOBUFS;
    return;
  }
  /* The count is patched in by _finish. */
  memcpy(buf, fmt_magic, sizeof(fmt_magic));
  qpeer__put_u16(buf + 4, QPEER__BOOTSTRAP_FMT_VERSION);
  qpeer__put_u16(buf + 6, 0);
  enc->len = QPEER__BOOTSTRAP_FMT_HEADER_LEN;
}

/* put_addr writes one address: type, family, address bytes, port. */
static int put_addr(qpeer__wbuf *w, const qpeer_ticket_addr_t *a) {
  const struct sockaddr *sa = (const struct sockaddr *)&a->addr;
  int r;

  r = qpeer__wbuf_u8(w, (uint8_t)a->type);
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
    r = r ? r : qpeer__wbuf_u8(w, FAMILY_V4);
    r = r ? r : qpeer__wbuf_bytes(w, &s4->sin_addr, 4);
  } else {
    const struct sockaddr_in6 *s6 =
        (const struct sockaddr_in6 *)(const void *)sa;
    r = r ? r : qpeer__wbuf_u8(w, FAMILY_V6);
    r = r ? r : qpeer__wbuf_bytes(w, s6->sin6_addr.s6_addr, 16);
  }
  return r ? r : qpeer__wbuf_u16(w, qpeer__addr_port(sa));
}

/* put_relay writes one relay: auth, URL length, URL, and the key its mode
 * uses (none for WebPKI). */
static int put_relay(qpeer__wbuf *w, const qpeer_ticket_relay_t *rl) {
  size_t n = strlen(rl->url); /* entry_check saw the NUL */
  int r;

  r = qpeer__wbuf_u8(w, (uint8_t)rl->auth);
  r = r ? r : qpeer__wbuf_u8(w, (uint8_t)n);
  r = r ? r : qpeer__wbuf_bytes(w, rl->url, n);
  if (rl->auth == QPEER_TICKET_AUTH_PIN)
    r = r ? r : qpeer__wbuf_bytes(w, rl->pin.key, RELAY_KEY_LEN);
  else if (rl->auth == QPEER_TICKET_AUTH_CA)
    r = r ? r : qpeer__wbuf_bytes(w, rl->ca_sha256, RELAY_KEY_LEN);
  return r;
}

/* put_body writes the record body of |e|. */
static int put_body(qpeer__wbuf *w, const qpeer_bootstrap_entry_t *e) {
  size_t i;
  int r;

  r = qpeer__wbuf_bytes(w, e->peer_id.key, QPEER_PEER_ID_LEN);
  r = r ? r : qpeer__wbuf_u32(w, (uint32_t)(e->last_seen >> 32));
  r = r ? r : qpeer__wbuf_u32(w, (uint32_t)e->last_seen);
  r = r ? r : qpeer__wbuf_u8(w, (uint8_t)e->last_path);
  r = r ? r : qpeer__wbuf_u32(w, e->successes);
  r = r ? r : qpeer__wbuf_u8(w, (uint8_t)e->naddrs);
  for (i = 0; i < e->naddrs && r == 0; i++)
    r = put_addr(w, &e->addrs[i]);
  r = r ? r : qpeer__wbuf_u8(w, (uint8_t)e->nrelays);
  for (i = 0; i < e->nrelays && r == 0; i++)
    r = put_relay(w, &e->relays[i]);
  return r;
}

int qpeer__bootstrap_enc_add(qpeer__bootstrap_enc *enc,
                             const qpeer_bootstrap_entry_t *e) {
  qpeer__wbuf w;
  size_t room, body;
  int r;

  if (enc->err != 0)
    return enc->err;
  if (!e || enc->count >= QPEER_BOOTSTRAP_MAX_ENTRIES || entry_check(e) != 0)
    return UV_EINVAL;
  /* Keep room for the trailer so that _finish cannot run out. */
  room = enc->buflen - enc->len;
  if (room <
      QPEER__BOOTSTRAP_FMT_RECLEN_LEN + QPEER__BOOTSTRAP_FMT_TRAILER_LEN) {
    enc->err = UV_ENOBUFS;
    return enc->err;
  }
  qpeer__wbuf_init(&w, enc->buf + enc->len + QPEER__BOOTSTRAP_FMT_RECLEN_LEN,
                   room - QPEER__BOOTSTRAP_FMT_RECLEN_LEN -
                       QPEER__BOOTSTRAP_FMT_TRAILER_LEN);
  r = put_body(&w, e);
  if (r != 0) {
    enc->err = r;
    return r;
  }
  body =
      (size_t)(w.p - (enc->buf + enc->len + QPEER__BOOTSTRAP_FMT_RECLEN_LEN));
  qpeer__put_u16(enc->buf + enc->len, (uint16_t)body);
  enc->len += QPEER__BOOTSTRAP_FMT_RECLEN_LEN + body;
  enc->count++;
  return 0;
}

int qpeer__bootstrap_enc_finish(qpeer__bootstrap_enc *enc) {
  if (enc->err != 0)
    return enc->err;
  if (enc->buflen - enc->len < QPEER__BOOTSTRAP_FMT_TRAILER_LEN) {
    enc->err = UV_ENOBUFS;
    return enc->err;
  }
  qpeer__put_u16(enc->buf + 6, (uint16_t)enc->count);
  qpeer__put_u32(enc->buf + enc->len,
                 qpeer__bootstrap_crc32c(enc->buf, enc->len));
  enc->len += QPEER__BOOTSTRAP_FMT_TRAILER_LEN;
  return (int)enc->len;
}

/* ---- Decoder ---------------------------------------------------------- */

/* get_addr reads one address into |t| (which must grow by one). Returns 0
 * or QPEER_EBOOTSTRAP. */
static int get_addr(qpeer__rbuf *b, qpeer_ticket_t *t) {
  struct sockaddr_storage ss;
  const uint8_t *ip;
  uint8_t type, family;
  uint16_t port;
  size_t before = t->naddrs;

  if (qpeer__rbuf_u8(b, &type) != 0 || qpeer__rbuf_u8(b, &family) != 0)
    return QPEER_EBOOTSTRAP;
  memset(&ss, 0, sizeof(ss));
  if (family == FAMILY_V4) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)&ss;
    if (qpeer__rbuf_bytes(b, &ip, 4) != 0)
      return QPEER_EBOOTSTRAP;
    s4->sin_family = AF_INET;
    memcpy(&s4->sin_addr, ip, 4);
  } else if (family == FAMILY_V6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)&ss;
    if (qpeer__rbuf_bytes(b, &ip, 16) != 0)
      return QPEER_EBOOTSTRAP;
    s6->sin6_family = AF_INET6;
    memcpy(s6->sin6_addr.s6_addr, ip, 16);
  } else {
    return QPEER_EBOOTSTRAP;
  }
  if (qpeer__rbuf_u16(b, &port) != 0)
    return QPEER_EBOOTSTRAP;
  qpeer__addr_set_port((struct sockaddr *)&ss, port);
  /* The helper checks the type, the port and the address; a duplicate
   * leaves the count unchanged, which a file never does. */
  if (is_v4mapped(&ss) ||
      qpeer_ticket_add_typed_addr(t, (const struct sockaddr *)&ss,
                                  (qpeer_ticket_addr_type)type) != 0 ||
      t->naddrs != before + 1)
    return QPEER_EBOOTSTRAP;
  return 0;
}

/* get_relay reads one relay into |t| (which must grow by one). Returns 0
 * or QPEER_EBOOTSTRAP. */
static int get_relay(qpeer__rbuf *b, qpeer_ticket_t *t) {
  qpeer_ticket_relay_t rl;
  const uint8_t *url, *key = NULL;
  uint8_t auth, n;
  size_t before = t->nrelays;

  if (qpeer__rbuf_u8(b, &auth) != 0 || qpeer__rbuf_u8(b, &n) != 0 ||
      qpeer__rbuf_bytes(b, &url, n) != 0)
    return QPEER_EBOOTSTRAP;
  if (auth == QPEER_TICKET_AUTH_PIN || auth == QPEER_TICKET_AUTH_CA)
    if (qpeer__rbuf_bytes(b, &key, RELAY_KEY_LEN) != 0)
      return QPEER_EBOOTSTRAP;
  memset(&rl, 0, sizeof(rl));
  memcpy(rl.url, url, n); /* n <= 255, so the NUL stays */
  rl.auth = (qpeer_ticket_auth)auth;
  if (auth == QPEER_TICKET_AUTH_PIN)
    memcpy(rl.pin.key, key, RELAY_KEY_LEN);
  else if (auth == QPEER_TICKET_AUTH_CA)
    memcpy(rl.ca_sha256, key, RELAY_KEY_LEN);
  /* An embedded NUL would shorten the URL; the file must say it exactly. */
  if (memchr(url, '\0', n) != NULL || qpeer__bootstrap_add_relay(t, &rl) != 0 ||
      t->nrelays != before + 1)
    return QPEER_EBOOTSTRAP;
  return 0;
}

/* get_body decodes one record body (all |b| holds) into |*e|. Returns 0 or
 * QPEER_EBOOTSTRAP. */
static int get_body(qpeer__rbuf *b, qpeer_bootstrap_entry_t *e) {
  qpeer_ticket_t t;
  const uint8_t *pid;
  uint32_t hi, lo;
  uint8_t path, naddrs, nrelays, i;
  int r;

  memset(e, 0, sizeof(*e));
  qpeer_ticket_init(&t);
  if (qpeer__rbuf_bytes(b, &pid, QPEER_PEER_ID_LEN) != 0 ||
      qpeer__rbuf_u32(b, &hi) != 0 || qpeer__rbuf_u32(b, &lo) != 0 ||
      qpeer__rbuf_u8(b, &path) != 0 || qpeer__rbuf_u32(b, &e->successes) != 0 ||
      qpeer__rbuf_u8(b, &naddrs) != 0)
    return QPEER_EBOOTSTRAP;
  if (path > QPEER_BOOTSTRAP_PATH_RELAY || naddrs > QPEER_BOOTSTRAP_MAX_ADDRS)
    return QPEER_EBOOTSTRAP;
  for (i = 0; i < naddrs; i++)
    if ((r = get_addr(b, &t)) != 0)
      return r;
  if (qpeer__rbuf_u8(b, &nrelays) != 0 || nrelays > QPEER_BOOTSTRAP_MAX_RELAYS)
    return QPEER_EBOOTSTRAP;
  for (i = 0; i < nrelays; i++)
    if ((r = get_relay(b, &t)) != 0)
      return r;
  if (qpeer__rbuf_left(b) != 0)
    return QPEER_EBOOTSTRAP;
  memcpy(e->peer_id.key, pid, QPEER_PEER_ID_LEN);
  e->last_seen = ((uint64_t)hi << 32) | lo;
  e->last_path = (qpeer_bootstrap_path)path;
  e->naddrs = t.naddrs;
  memcpy(e->addrs, t.addrs, sizeof(e->addrs));
  e->nrelays = t.nrelays;
  memcpy(e->relays, t.relays, sizeof(e->relays));
  return 0;
}

/* check_header checks the size, magic, CRC-32C, version and count of the
 * |len| bytes at |buf|, and sets |*pcount|. Returns 0, QPEER_EBOOTSTRAP or
 * QPEER_EUNSUPPORTED. */
static int check_header(const uint8_t *buf, size_t len, size_t *pcount) {
  size_t body;

  if (len < QPEER__BOOTSTRAP_FMT_MIN_LEN || len > QPEER_BOOTSTRAP_FILE_MAX)
    return QPEER_EBOOTSTRAP;
  if (memcmp(buf, fmt_magic, sizeof(fmt_magic)) != 0)
    return QPEER_EBOOTSTRAP;
  /* The checksum comes before the version, so that a damaged version
   * field reads as corruption and not as a file from a later release. */
  body = len - QPEER__BOOTSTRAP_FMT_TRAILER_LEN;
  if (qpeer__bootstrap_crc32c(buf, body) != qpeer__get_u32(buf + body))
    return QPEER_EBOOTSTRAP;
  if (qpeer__get_u16(buf + 4) != QPEER__BOOTSTRAP_FMT_VERSION)
    return QPEER_EUNSUPPORTED;
  *pcount = qpeer__get_u16(buf + 6);
  if (*pcount > QPEER_BOOTSTRAP_MAX_ENTRIES)
    return QPEER_EBOOTSTRAP;
  return 0;
}

/* next_record moves |*recs| past the next record and points |*body| at its
 * body. Returns 0 or QPEER_EBOOTSTRAP for a length out of bounds. */
static int next_record(qpeer__rbuf *recs, qpeer__rbuf *body) {
  const uint8_t *p;
  uint16_t n;

  if (qpeer__rbuf_u16(recs, &n) != 0 || n < QPEER__BOOTSTRAP_FMT_RECORD_MIN ||
      n > QPEER__BOOTSTRAP_FMT_RECORD_MAX ||
      qpeer__rbuf_bytes(recs, &p, n) != 0)
    return QPEER_EBOOTSTRAP;
  qpeer__rbuf_init(body, p, n);
  return 0;
}

/* walk_records runs over the |count| records in |recs|, decoding each; with
 * |cb| NULL it also rejects duplicate peer IDs and trailing bytes. */
static int walk_records(qpeer__rbuf recs, size_t count,
                        qpeer__bootstrap_fmt_entry_cb cb, void *arg) {
  const uint8_t *ids[QPEER_BOOTSTRAP_MAX_ENTRIES];
  qpeer_bootstrap_entry_t e;
  qpeer__rbuf body;
  size_t i, j;
  int r;

  for (i = 0; i < count; i++) {
    if ((r = next_record(&recs, &body)) != 0)
      return r;
    ids[i] = body.p; /* the peer ID opens the body */
    if ((r = get_body(&body, &e)) != 0)
      return r;
    if (cb) {
      if ((r = cb(arg, &e)) != 0)
        return r;
      continue;
    }
    for (j = 0; j < i; j++)
      if (memcmp(ids[j], ids[i], QPEER_PEER_ID_LEN) == 0)
        return QPEER_EBOOTSTRAP;
  }
  return qpeer__rbuf_left(&recs) == 0 ? 0 : QPEER_EBOOTSTRAP;
}

int qpeer__bootstrap_fmt_decode(const uint8_t *buf, size_t len,
                                qpeer__bootstrap_fmt_entry_cb cb, void *arg) {
  qpeer__rbuf recs;
  size_t count = 0;
  int r;

  if (!buf && len > 0)
    return UV_EINVAL;
  if ((r = check_header(buf, len, &count)) != 0)
    return r;
  qpeer__rbuf_init(&recs, buf + QPEER__BOOTSTRAP_FMT_HEADER_LEN,
                   len - QPEER__BOOTSTRAP_FMT_MIN_LEN);
  /* First pass: the whole file must be valid before any entry goes out. */
  if ((r = walk_records(recs, count, NULL, NULL)) != 0 || !cb)
    return r;
  return walk_records(recs, count, cb, arg);
}
