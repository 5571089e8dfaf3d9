/* SPDX-License-Identifier: MIT */
/*
 * PCP (RFC 6887) message codec and the PCP / NAT-PMP epoch rules. Pure.
 * Divisions: address fields (128-bit, IPv4-mapped), options, requests,
 * responses (including NAT-PMP version-0 replies), result names, epochs.
 */
#include <string.h>

#include "core/varint.h"
#include "internal.h"
#include "nat/pcp_msg.h"

/* ------------------------------------------------------------ addresses */

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0,    0,
                                            0, 0, 0, 0, 0xff, 0xff};

/* put_addr writes |sa| as a 128-bit PCP address field. AF_UNSPEC writes
 * the all-zeros address of |family_hint| (IPv4-mapped 0.0.0.0 for IPv4,
 * :: for IPv6). Returns 0 or UV_EINVAL. */
static int put_addr(uint8_t *p, const struct sockaddr_storage *ss,
                    int family_hint) {
  int family = ss->ss_family == AF_UNSPEC ? family_hint : ss->ss_family;
  if (family == AF_INET) {
    memcpy(p, v4mapped_prefix, 12);
    if (ss->ss_family == AF_INET)
      memcpy(p + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    else
      memset(p + 12, 0, 4);
    return 0;
  }
  if (family == AF_INET6) {
    if (ss->ss_family == AF_INET6)
      memcpy(p, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    else
      memset(p, 0, 16);
    return 0;
  }
  return UV_EINVAL;
}

/* get_addr reads a 128-bit PCP address field: IPv4-mapped becomes
 * AF_INET, anything else AF_INET6 (port 0). */
static void get_addr(struct sockaddr_storage *ss, const uint8_t *p) {
  memset(ss, 0, sizeof(*ss));
  if (memcmp(p, v4mapped_prefix, 12) == 0) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    memcpy(&s4->sin_addr, p + 12, 4);
  } else {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    memcpy(&s6->sin6_addr, p, 16);
  }
}

/* -------------------------------------------------------------- options */

/* parse_options walks the options in |p|..|p+len|: each is a 4-byte header
 * (code, reserved, 16-bit length) and data padded to 4 bytes. Counts them
 * and notes PREFER_FAILURE. Returns 0 or QPEER_EMALFORMED. */
static int parse_options(const uint8_t *p, size_t len, unsigned int *pcount,
                         int *pprefer_failure) {
  size_t off = 0;
  *pcount = 0;
  *pprefer_failure = 0;
  while (off < len) {
    uint8_t code;
    size_t olen, padded;
    if (len - off < 4)
      return QPEER_EMALFORMED;
    code = p[off];
    olen = qpeer__get_u16(p + off + 2);
    padded = (olen + 3) & ~(size_t)3;
    if (padded > len - off - 4)
      return QPEER_EMALFORMED;
    switch (code) {
    case QPEER__PCP_OPT_PREFER_FAILURE:
      if (olen != 0)
        return QPEER_EMALFORMED;
      *pprefer_failure = 1;
      break;
    case QPEER__PCP_OPT_THIRD_PARTY:
      if (olen != 16)
        return QPEER_EMALFORMED;
      break;
    case QPEER__PCP_OPT_FILTER:
      if (olen != 20)
        return QPEER_EMALFORMED;
      break;
    default:
      break; /* unknown options are the receiver's policy; skip */
    }
    (*pcount)++;
    off += 4 + padded;
  }
  return 0;
}

/* check_length applies the size rules of RFC 6887 §7: at least the common
 * header, at most 1100 bytes, a multiple of 4. */
static int check_length(size_t len) {
  if (len < QPEER__PCP_HEADER_LEN)
    return QPEER_ETRUNCATED;
  if (len > QPEER__PCP_MAX_LEN || (len & 3) != 0)
    return QPEER_EMALFORMED;
  return 0;
}

/* ------------------------------------------------------------- requests */

int qpeer__pcp_encode_request(uint8_t *buf, size_t buflen,
                              const qpeer__pcp_request *req) {
  size_t need = QPEER__PCP_HEADER_LEN;
  int family = req->client.ss_family;
  uint8_t *m;
  if (family != AF_INET && family != AF_INET6)
    return UV_EINVAL;
  if (req->opcode == QPEER__PCP_OP_MAP)
    need += QPEER__PCP_MAP_LEN + (req->prefer_failure ? 4 : 0);
  else if (req->opcode != QPEER__PCP_OP_ANNOUNCE)
    return UV_EINVAL;
  if (buflen < need)
    return UV_ENOBUFS;
  memset(buf, 0, need);
  buf[0] = QPEER__PCP_VERSION;
  buf[1] = req->opcode; /* R = 0 */
  qpeer__put_u32(buf + 4, req->lifetime);
  put_addr(buf + 8, &req->client, family);
  if (req->opcode != QPEER__PCP_OP_MAP)
    return (int)need;
  m = buf + QPEER__PCP_HEADER_LEN;
  memcpy(m, req->nonce, QPEER__PCP_NONCE_LEN);
  m[12] = req->protocol;
  qpeer__put_u16(m + 16, req->internal_port);
  qpeer__put_u16(m + 18, req->external_port);
  if (req->external.ss_family != AF_UNSPEC && req->external.ss_family != family)
    return UV_EINVAL;
  put_addr(m + 20, &req->external, family);
  if (req->prefer_failure)
    m[QPEER__PCP_MAP_LEN] = QPEER__PCP_OPT_PREFER_FAILURE; /* len 0 */
  return (int)need;
}

int qpeer__pcp_decode_request(qpeer__pcp_request *req, const uint8_t *buf,
                              size_t len) {
  size_t off = QPEER__PCP_HEADER_LEN;
  unsigned int count;
  int rv;
  memset(req, 0, sizeof(*req));
  if ((rv = check_length(len)) != 0)
    return rv;
  if (buf[0] != QPEER__PCP_VERSION)
    return QPEER_EUNSUPPORTED;
  if (buf[1] & QPEER__PCP_R_BIT)
    return QPEER_EMALFORMED;
  req->opcode = buf[1] & 0x7f;
  req->lifetime = qpeer__get_u32(buf + 4);
  get_addr(&req->client, buf + 8);
  if (req->opcode == QPEER__PCP_OP_MAP) {
    const uint8_t *m = buf + off;
    if (len < off + QPEER__PCP_MAP_LEN)
      return QPEER_ETRUNCATED;
    memcpy(req->nonce, m, QPEER__PCP_NONCE_LEN);
    req->protocol = m[12];
    req->internal_port = qpeer__get_u16(m + 16);
    req->external_port = qpeer__get_u16(m + 18);
    get_addr(&req->external, m + 20);
    off += QPEER__PCP_MAP_LEN;
  } else if (req->opcode != QPEER__PCP_OP_ANNOUNCE) {
    return QPEER_EUNSUPPORTED;
  }
  return parse_options(buf + off, len - off, &count, &req->prefer_failure);
}

/* ------------------------------------------------------------ responses */

int qpeer__pcp_encode_response(uint8_t *buf, size_t buflen,
                               const qpeer__pcp_response *res) {
  size_t need = QPEER__PCP_HEADER_LEN;
  uint8_t *m;
  if (res->version != QPEER__PCP_VERSION || res->result > 0xff ||
      (res->opcode != QPEER__PCP_OP_MAP &&
       res->opcode != QPEER__PCP_OP_ANNOUNCE))
    return UV_EINVAL;
  if (res->opcode == QPEER__PCP_OP_MAP)
    need += QPEER__PCP_MAP_LEN + (res->prefer_failure ? 4 : 0);
  if (buflen < need)
    return UV_ENOBUFS;
  memset(buf, 0, need);
  buf[0] = QPEER__PCP_VERSION;
  buf[1] = (uint8_t)(QPEER__PCP_R_BIT | res->opcode);
  buf[3] = (uint8_t)res->result;
  qpeer__put_u32(buf + 4, res->lifetime);
  qpeer__put_u32(buf + 8, res->epoch);
  if (res->opcode != QPEER__PCP_OP_MAP)
    return (int)need;
  m = buf + QPEER__PCP_HEADER_LEN;
  memcpy(m, res->nonce, QPEER__PCP_NONCE_LEN);
  m[12] = res->protocol;
  qpeer__put_u16(m + 16, res->internal_port);
  qpeer__put_u16(m + 18, res->external_port);
  if (res->external.ss_family != AF_UNSPEC &&
      put_addr(m + 20, &res->external, AF_INET6) != 0)
    return UV_EINVAL;
  if (res->prefer_failure)
    m[QPEER__PCP_MAP_LEN] = QPEER__PCP_OPT_PREFER_FAILURE;
  return (int)need;
}

/* decode_natpmp reads a NAT-PMP (version 0) response: the 8-byte header,
 * then the public address (opcode 128) or the mapping (129, 130) when the
 * result is success and the datagram is long enough. */
static int decode_natpmp(qpeer__pcp_response *res, const uint8_t *buf,
                         size_t len) {
  if (len < QPEER__NATPMP_HEADER_LEN)
    return QPEER_ETRUNCATED;
  if (!(buf[1] & QPEER__PCP_R_BIT))
    return QPEER_EMALFORMED;
  res->version = QPEER__NATPMP_VERSION;
  res->opcode = buf[1] & 0x7f;
  res->result = qpeer__get_u16(buf + 2);
  res->epoch = qpeer__get_u32(buf + 4);
  if (res->result != 0)
    return 0;
  if (res->opcode == QPEER__NATPMP_OP_PUBLIC_ADDR) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&res->external;
    if (len < QPEER__NATPMP_ADDR_RESP_LEN)
      return QPEER_ETRUNCATED;
    s4->sin_family = AF_INET;
    memcpy(&s4->sin_addr, buf + 8, 4);
  } else if (res->opcode == QPEER__NATPMP_OP_MAP_UDP ||
             res->opcode == QPEER__NATPMP_OP_MAP_TCP) {
    if (len < QPEER__NATPMP_MAP_RESP_LEN)
      return QPEER_ETRUNCATED;
    res->has_map = 1;
    res->protocol = res->opcode == QPEER__NATPMP_OP_MAP_UDP ? 17 : 6;
    res->internal_port = qpeer__get_u16(buf + 8);
    res->external_port = qpeer__get_u16(buf + 10);
    res->lifetime = qpeer__get_u32(buf + 12);
  } else {
    return QPEER_EUNSUPPORTED;
  }
  return 0;
}

int qpeer__pcp_decode_response(qpeer__pcp_response *res, const uint8_t *buf,
                               size_t len) {
  size_t off = QPEER__PCP_HEADER_LEN;
  int rv;
  memset(res, 0, sizeof(*res));
  if (len < 1)
    return QPEER_ETRUNCATED;
  if (buf[0] == QPEER__NATPMP_VERSION)
    return decode_natpmp(res, buf, len);
  if (buf[0] != QPEER__PCP_VERSION)
    return QPEER_EUNSUPPORTED;
  if ((rv = check_length(len)) != 0)
    return rv;
  if (!(buf[1] & QPEER__PCP_R_BIT))
    return QPEER_EMALFORMED;
  res->version = buf[0];
  res->opcode = buf[1] & 0x7f;
  res->result = buf[3];
  res->lifetime = qpeer__get_u32(buf + 4);
  res->epoch = qpeer__get_u32(buf + 8);
  if (res->opcode == QPEER__PCP_OP_MAP) {
    const uint8_t *m = buf + off;
    if (len < off + QPEER__PCP_MAP_LEN) {
      /* An error response may come without the payload; a success may
       * not. */
      if (res->result == QPEER__PCP_SUCCESS)
        return QPEER_EMALFORMED;
      return 0;
    }
    res->has_map = 1;
    memcpy(res->nonce, m, QPEER__PCP_NONCE_LEN);
    res->protocol = m[12];
    res->internal_port = qpeer__get_u16(m + 16);
    res->external_port = qpeer__get_u16(m + 18);
    get_addr(&res->external, m + 20);
    off += QPEER__PCP_MAP_LEN;
  } else if (res->opcode != QPEER__PCP_OP_ANNOUNCE) {
    return QPEER_EUNSUPPORTED;
  }
  return parse_options(buf + off, len - off, &res->options,
                       &res->prefer_failure);
}

/* --------------------------------------------------------- result codes */

const char *qpeer__pcp_result_name(unsigned int result) {
  static const char *const names[] = {
      "SUCCESS",           "UNSUPP_VERSION",        "NOT_AUTHORIZED",
      "MALFORMED_REQUEST", "UNSUPP_OPCODE",         "UNSUPP_OPTION",
      "MALFORMED_OPTION",  "NETWORK_FAILURE",       "NO_RESOURCES",
      "UNSUPP_PROTOCOL",   "USER_EX_QUOTA",         "CANNOT_PROVIDE_EXTERNAL",
      "ADDRESS_MISMATCH",  "EXCESSIVE_REMOTE_PEERS"};
  if (result < QPEER__ARRAY_SIZE(names))
    return names[result];
  return "UNKNOWN";
}

int qpeer__pcp_result_is_transient(unsigned int result) {
  return result == QPEER__PCP_NETWORK_FAILURE ||
         result == QPEER__PCP_NO_RESOURCES ||
         result == QPEER__PCP_USER_EX_QUOTA;
}

/* --------------------------------------------------------------- epochs */

static void epoch_record(qpeer__epoch *e, uint32_t epoch, uint64_t now_ms) {
  e->valid = 1;
  e->epoch = epoch;
  e->at_ms = now_ms;
}

int qpeer__pcp_epoch_update(qpeer__epoch *e, uint32_t epoch, uint64_t now_ms) {
  int lost = 0;
  if (e->valid) {
    /* Both elapsed times in ms: C on the client's clock, S on the
     * server's (seconds resolution). */
    int64_t c = now_ms >= e->at_ms ? (int64_t)(now_ms - e->at_ms) : 0;
    int64_t s = ((int64_t)epoch - (int64_t)e->epoch) * 1000;
    if (s < -1000)
      lost = 1; /* the epoch went back by more than a second */
    else if (c + 2000 < s - s / 16 || s + 2000 < c - c / 16)
      lost = 1;
  }
  epoch_record(e, epoch, now_ms);
  return lost;
}

int qpeer__natpmp_epoch_update(qpeer__epoch *e, uint32_t epoch,
                               uint64_t now_ms) {
  int lost = 0;
  if (e->valid) {
    uint64_t c = now_ms >= e->at_ms ? now_ms - e->at_ms : 0;
    uint64_t expect = (uint64_t)e->epoch * 1000 + c * 7 / 8;
    if ((uint64_t)epoch * 1000 + 2000 < expect)
      lost = 1;
  }
  epoch_record(e, epoch, now_ms);
  return lost;
}
