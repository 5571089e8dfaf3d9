/* SPDX-License-Identifier: MIT */
/*
 * The STUN message codec (see stun_msg.h). In order: CRC-32 for
 * FINGERPRINT, the classifier and header checks, attribute decoding, the
 * MESSAGE-INTEGRITY check, the bounded writer, and the convenience
 * builders used by the STUN client, responder and netcheck.
 */
#include <arpa/inet.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "core/addr.h"
#include "core/varint.h"
#include "internal.h"
#include "nat/stun_msg.h"

/* CRC-32 (reflected polynomial 0xedb88320), one table entry per byte. */
static const uint32_t crc32_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u,
    0x706af48fu, 0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u,
    0xe0d5e91eu, 0x97d2d988u, 0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u,
    0x90bf1d91u, 0x1db71064u, 0x6ab020f2u, 0xf3b97148u, 0x84be41deu,
    0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u, 0x136c9856u,
    0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u,
    0xa2677172u, 0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu,
    0x35b5a8fau, 0x42b2986cu, 0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u,
    0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u, 0x26d930acu, 0x51de003au,
    0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u, 0xcfba9599u,
    0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u,
    0x01db7106u, 0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu,
    0x9fbfe4a5u, 0xe8b8d433u, 0x7807c9a2u, 0x0f00f934u, 0x9609a88eu,
    0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du, 0x91646c97u, 0xe6635c01u,
    0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu, 0x6c0695edu,
    0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u,
    0xfbd44c65u, 0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u,
    0x4adfa541u, 0x3dd895d7u, 0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au,
    0x346ed9fcu, 0xad678846u, 0xda60b8d0u, 0x44042d73u, 0x33031de5u,
    0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau, 0xbe0b1010u,
    0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u,
    0x2eb40d81u, 0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u,
    0x03b6e20cu, 0x74b1d29au, 0xead54739u, 0x9dd277afu, 0x04db2615u,
    0x73dc1683u, 0xe3630b12u, 0x94643b84u, 0x0d6d6a3eu, 0x7a6a5aa8u,
    0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u, 0xf00f9344u,
    0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au,
    0x67dd4accu, 0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u,
    0xd6d6a3e8u, 0xa1d1937eu, 0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u,
    0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu, 0xd80d2bdau, 0xaf0a1b4cu,
    0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u, 0x316e8eefu,
    0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu,
    0xb2bd0b28u, 0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u,
    0x2cd99e8bu, 0x5bdeae1du, 0x9b64c2b0u, 0xec63f226u, 0x756aa39cu,
    0x026d930au, 0x9c0906a9u, 0xeb0e363fu, 0x72076785u, 0x05005713u,
    0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u, 0x92d28e9bu,
    0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u,
    0x18b74777u, 0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu,
    0x8f659effu, 0xf862ae69u, 0x616bffd3u, 0x166ccf45u, 0xa00ae278u,
    0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u, 0xa7672661u, 0xd06016f7u,
    0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu, 0x40df0b66u,
    0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u,
    0xcdd70693u, 0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u,
    0x5d681b02u, 0x2a6f2b94u, 0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu,
    0x2d02ef8du,
};

uint32_t qpeer__stun_crc32(uint32_t crc, const uint8_t *p, size_t len) {
  crc = ~crc;
  while (len--)
    crc = crc32_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

int qpeer__stun_is_stun(const uint8_t *pkt, size_t len) {
  uint16_t hlen;
  if (len < QPEER__STUN_HEADER_LEN || (pkt[0] & 0xc0) != 0)
    return 0;
  if (qpeer__get_u32(pkt + 4) != QPEER__STUN_MAGIC_COOKIE)
    return 0;
  hlen = qpeer__get_u16(pkt + 2);
  return (hlen & 3) == 0 && (size_t)hlen == len - QPEER__STUN_HEADER_LEN;
}

/* check_header validates the fixed header of the datagram |pkt| against
 * its length |len| and returns the header length field (>= 0) or an
 * error code. */
static int check_header(const uint8_t *pkt, size_t len) {
  size_t hlen;
  if (len < QPEER__STUN_HEADER_LEN)
    return QPEER_ETRUNCATED;
  if (pkt[0] & 0xc0)
    return QPEER_EMALFORMED;
  if (qpeer__get_u32(pkt + 4) != QPEER__STUN_MAGIC_COOKIE)
    return QPEER_EUNSUPPORTED;
  hlen = qpeer__get_u16(pkt + 2);
  if (hlen & 3)
    return QPEER_EMALFORMED;
  if (len - QPEER__STUN_HEADER_LEN < hlen)
    return QPEER_ETRUNCATED;
  if (len - QPEER__STUN_HEADER_LEN > hlen)
    return QPEER_EMALFORMED; /* trailing bytes after the message */
  return (int)hlen;
}

/* next_attr reads one TLV from |b| (the attribute area), returning its
 * type, value and unpadded value length. The padding must fit too. */
static int next_attr(qpeer__rbuf *b, uint16_t *ptype, const uint8_t **pval,
                     size_t *pvlen) {
  uint16_t vlen;
  if (qpeer__rbuf_u16(b, ptype) != 0 || qpeer__rbuf_u16(b, &vlen) != 0)
    return QPEER_EMALFORMED;
  if (qpeer__rbuf_bytes(b, pval, pad4(vlen)) != 0)
    return QPEER_EMALFORMED; /* attribute overruns the message */
  *pvlen = vlen;
  return 0;
}

/* decode_addr parses a (XOR-)MAPPED-ADDRESS style value into |ss|. When
 * |xor_key| is not NULL it points at the 16 bytes cookie || transaction
 * ID, which is exactly the header from offset 4. */
static int decode_addr(struct sockaddr_storage *ss, const uint8_t *v,
                       size_t vlen, const uint8_t *xor_key) {
  uint16_t port;
  size_t i;
  memset(ss, 0, sizeof(*ss));
  if (vlen < 4)
    return QPEER_EMALFORMED;
  port = qpeer__get_u16(v + 2);
  if (xor_key)
    port ^= qpeer__get_u16(xor_key);
  if (v[1] == QPEER__STUN_FAMILY_IPV4) {
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    uint8_t *a = (uint8_t *)&sin->sin_addr;
    if (vlen != 8)
      return QPEER_EMALFORMED;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    for (i = 0; i < 4; i++)
      a[i] = (uint8_t)(v[4 + i] ^ (xor_key ? xor_key[i] : 0));
    return 0;
  }
  if (v[1] == QPEER__STUN_FAMILY_IPV6) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    uint8_t *a = sin6->sin6_addr.s6_addr;
    if (vlen != 20)
      return QPEER_EMALFORMED;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    for (i = 0; i < 16; i++)
      a[i] = (uint8_t)(v[4 + i] ^ (xor_key ? xor_key[i] : 0));
    return 0;
  }
  return QPEER_EMALFORMED;
}

/* store_addr decodes an address attribute, and keeps it in |dst| (and
 * sets |*has|) only for the first occurrence. Later duplicates are still
 * validated, so acceptance does not depend on attribute order. */
static int store_addr(struct sockaddr_storage *dst, uint8_t *has,
                      const uint8_t *v, size_t vlen, const uint8_t *xor_key) {
  struct sockaddr_storage tmp;
  int rv = decode_addr(&tmp, v, vlen, xor_key);
  if (rv != 0)
    return rv;
  if (!*has) {
    *dst = tmp;
    *has = 1;
  }
  return 0;
}

/* decode_error_code parses ERROR-CODE: 21 reserved bits, a 3-bit class
 * (3..6) and a number (0..99), then the reason phrase. */
static int decode_error_code(qpeer__stun_msg *m, const uint8_t *v,
                             size_t vlen) {
  unsigned cls, num;
  if (vlen < 4)
    return QPEER_EMALFORMED;
  cls = v[2] & 0x07;
  num = v[3];
  if (cls < 3 || cls > 6 || num > 99)
    return QPEER_EMALFORMED;
  if (!m->has_error) {
    m->has_error = 1;
    m->error_code = (uint16_t)(cls * 100 + num);
    m->error_reason = v + 4;
    m->error_reason_len = vlen - 4;
  }
  return 0;
}

/* decode_attr interprets one attribute that precedes MESSAGE-INTEGRITY
 * (or MESSAGE-INTEGRITY itself) at offset |off| of |pkt|. */
static int decode_attr(qpeer__stun_msg *m, const uint8_t *pkt, uint16_t type,
                       const uint8_t *v, size_t vlen, size_t off) {
  const uint8_t *xk = pkt + 4;
  switch (type) {
  case QPEER__STUN_ATTR_XOR_MAPPED_ADDRESS:
    return store_addr(&m->xor_mapped, &m->has_xor_mapped, v, vlen, xk);
  case QPEER__STUN_ATTR_MAPPED_ADDRESS:
    return store_addr(&m->mapped, &m->has_mapped, v, vlen, NULL);
  case QPEER__STUN_ATTR_RESPONSE_ORIGIN:
    return store_addr(&m->response_origin, &m->has_response_origin, v, vlen,
                      NULL);
  case QPEER__STUN_ATTR_OTHER_ADDRESS:
    return store_addr(&m->other_address, &m->has_other_address, v, vlen, NULL);
  case QPEER__STUN_ATTR_CHANGE_REQUEST:
    if (vlen != 4)
      return QPEER_EMALFORMED;
    if (!m->has_change_request) {
      m->has_change_request = 1;
      m->change_flags = qpeer__get_u32(v);
    }
    return 0;
  case QPEER__STUN_ATTR_RESPONSE_PORT:
    /* RFC 5780 §7.5: a port then 2 bytes of padding; the padding is
     * counted in the length by some implementations, not by others. */
    if (vlen != 2 && vlen != 4)
      return QPEER_EMALFORMED;
    if (!m->has_response_port) {
      m->has_response_port = 1;
      m->response_port = qpeer__get_u16(v);
    }
    return 0;
  case QPEER__STUN_ATTR_ERROR_CODE:
    return decode_error_code(m, v, vlen);
  case QPEER__STUN_ATTR_SOFTWARE:
    if (!m->has_software) {
      m->has_software = 1;
      m->software = v;
      m->software_len = vlen;
    }
    return 0;
  case QPEER__STUN_ATTR_USERNAME:
    if (!m->has_username) {
      m->has_username = 1;
      m->username = v;
      m->username_len = vlen;
    }
    return 0;
  case QPEER__STUN_ATTR_PADDING:
    if (!m->has_padding) {
      m->has_padding = 1;
      m->padding_len = vlen;
    }
    return 0;
  case QPEER__STUN_ATTR_UNKNOWN_ATTRIBUTES:
    return (vlen & 1) ? QPEER_EMALFORMED : 0;
  case QPEER__STUN_ATTR_MESSAGE_INTEGRITY:
    if (vlen != QPEER__STUN_HMAC_LEN)
      return QPEER_EMALFORMED;
    m->has_integrity = 1;
    m->integrity_offset = off;
    return 0;
  default:
    if (type < 0x8000) {
      if (m->unknown_count < QPEER__STUN_MAX_UNKNOWN)
        m->unknown[m->unknown_count] = type;
      m->unknown_count++;
    }
    return 0;
  }
}

/* check_fingerprint verifies the FINGERPRINT value |v| of the attribute
 * at offset |off|: CRC-32 of everything before it, XOR 0x5354554e. The
 * header length already covers the attribute since it must be last. */
static int check_fingerprint(const uint8_t *pkt, size_t off, const uint8_t *v,
                             size_t vlen) {
  uint32_t crc;
  if (vlen != 4)
    return QPEER_EMALFORMED;
  crc = qpeer__stun_crc32(0, pkt, off) ^ QPEER__STUN_FINGERPRINT_XOR;
  return crc == qpeer__get_u32(v) ? 0 : QPEER_ECHECKSUM;
}

int qpeer__stun_decode(qpeer__stun_msg *m, const uint8_t *pkt, size_t len) {
  qpeer__rbuf b;
  int hlen, rv;
  memset(m, 0, sizeof(*m));
  hlen = check_header(pkt, len);
  if (hlen < 0)
    return hlen;
  m->type = qpeer__get_u16(pkt);
  m->length = (uint16_t)hlen;
  memcpy(m->txid, pkt + 8, QPEER__STUN_TXID_LEN);
  qpeer__rbuf_init(&b, pkt + QPEER__STUN_HEADER_LEN, (size_t)hlen);
  while (qpeer__rbuf_left(&b) > 0) {
    size_t off = (size_t)(b.p - pkt), vlen;
    const uint8_t *v;
    uint16_t type;
    rv = next_attr(&b, &type, &v, &vlen);
    if (rv != 0)
      return rv;
    if (m->has_fingerprint)
      return QPEER_EMALFORMED; /* FINGERPRINT must be the last attribute */
    if (type == QPEER__STUN_ATTR_FINGERPRINT) {
      rv = check_fingerprint(pkt, off, v, vlen);
      if (rv == QPEER_EMALFORMED)
        return rv;
      m->has_fingerprint = 1;
      m->fingerprint_ok = rv == 0;
      continue;
    }
    if (m->has_integrity)
      continue; /* RFC 8489 §14.5: ignored after MESSAGE-INTEGRITY */
    rv = decode_attr(m, pkt, type, v, vlen, off);
    if (rv != 0)
      return rv;
  }
  if (m->has_fingerprint && !m->fingerprint_ok)
    return QPEER_ECHECKSUM;
  return 0;
}

int qpeer__stun_find_attr(const uint8_t *pkt, size_t len, uint16_t type,
                          const uint8_t **pval, size_t *pvlen) {
  qpeer__rbuf b;
  int hlen = check_header(pkt, len);
  if (hlen < 0)
    return QPEER_EMALFORMED;
  qpeer__rbuf_init(&b, pkt + QPEER__STUN_HEADER_LEN, (size_t)hlen);
  while (qpeer__rbuf_left(&b) > 0) {
    const uint8_t *v;
    size_t vlen;
    uint16_t t;
    if (next_attr(&b, &t, &v, &vlen) != 0)
      return QPEER_EMALFORMED;
    if (t == type) {
      *pval = v;
      *pvlen = vlen;
      return 0;
    }
  }
  return UV_ENOENT;
}

int qpeer__stun_verify_integrity(const qpeer__stun_msg *m, const uint8_t *pkt,
                                 size_t len, const uint8_t *key,
                                 size_t keylen) {
  static const uint8_t nokey[1] = {0};
  uint8_t hdr[QPEER__STUN_HEADER_LEN], mac[QPEER__STUN_HMAC_LEN], diff = 0;
  const size_t attrlen = 4 + QPEER__STUN_HMAC_LEN;
  gnutls_hmac_hd_t h;
  size_t off, i;
  if (!m->has_integrity)
    return QPEER_ECHECKSUM;
  off = m->integrity_offset;
  /* Re-check the attribute so a |m| from another buffer cannot overrun. */
  if (off < QPEER__STUN_HEADER_LEN || off > len || len - off < attrlen ||
      qpeer__get_u16(pkt + off) != QPEER__STUN_ATTR_MESSAGE_INTEGRITY ||
      qpeer__get_u16(pkt + off + 2) != QPEER__STUN_HMAC_LEN)
    return QPEER_ECHECKSUM;
  /* The HMAC covers the header with its length cut to end just after
   * MESSAGE-INTEGRITY, then the attributes before it. Streaming the two
   * pieces avoids copying the (const) message to patch its length. */
  memcpy(hdr, pkt, sizeof(hdr));
  qpeer__put_u16(hdr + 2, (uint16_t)(off + attrlen - QPEER__STUN_HEADER_LEN));
  if (gnutls_hmac_init(&h, GNUTLS_MAC_SHA1, keylen ? key : nokey, keylen) < 0)
    return QPEER_ETLS;
  if (gnutls_hmac(h, hdr, sizeof(hdr)) < 0 ||
      gnutls_hmac(h, pkt + QPEER__STUN_HEADER_LEN,
                  off - QPEER__STUN_HEADER_LEN) < 0) {
    gnutls_hmac_deinit(h, NULL);
    return QPEER_ETLS;
  }
  gnutls_hmac_deinit(h, mac);
  /* Constant-time comparison. */
  for (i = 0; i < QPEER__STUN_HMAC_LEN; i++)
    diff |= (uint8_t)(mac[i] ^ pkt[off + 4 + i]);
  return diff == 0 ? 0 : QPEER_ECHECKSUM;
}

/* Writer. */

int qpeer__stun_writer_init(qpeer__stun_writer *w, uint8_t *buf, size_t buflen,
                            uint16_t type,
                            const uint8_t txid[QPEER__STUN_TXID_LEN]) {
  memset(w, 0, sizeof(*w));
  w->buf = buf;
  w->cap = buflen;
  if (type & 0xc000)
    w->err = UV_EINVAL;
  else if (buflen < QPEER__STUN_HEADER_LEN)
    w->err = UV_ENOBUFS;
  if (w->err != 0)
    return w->err;
  qpeer__put_u16(buf, type);
  qpeer__put_u16(buf + 2, 0);
  qpeer__put_u32(buf + 4, QPEER__STUN_MAGIC_COOKIE);
  memcpy(buf + 8, txid, QPEER__STUN_TXID_LEN);
  w->len = QPEER__STUN_HEADER_LEN;
  return 0;
}

/* reserve appends the TLV header and padding of an attribute with a
 * |vlen|-byte value, updates the header length, and returns where the
 * value goes in |*pval|. The attribute may only be added while the writer
 * state is at most |max_state| (so nothing but FINGERPRINT follows
 * MESSAGE-INTEGRITY, and nothing follows FINGERPRINT). */
static int reserve(qpeer__stun_writer *w, uint16_t type, size_t vlen,
                   int max_state, uint8_t **pval) {
  size_t total;
  uint8_t *p;
  if (w->err != 0)
    return w->err;
  if (w->buf == NULL || w->state > max_state || vlen > 0xffff)
    return w->err = UV_EINVAL;
  total = 4 + pad4(vlen);
  if (total > w->cap - w->len ||
      w->len - QPEER__STUN_HEADER_LEN + total > 0xfffc)
    return w->err = UV_ENOBUFS;
  p = w->buf + w->len;
  qpeer__put_u16(p, type);
  qpeer__put_u16(p + 2, (uint16_t)vlen);
  memset(p + 4 + vlen, w->pad, pad4(vlen) - vlen);
  w->len += total;
  qpeer__put_u16(w->buf + 2, (uint16_t)(w->len - QPEER__STUN_HEADER_LEN));
  *pval = p + 4;
  return 0;
}

int qpeer__stun_add_attr(qpeer__stun_writer *w, uint16_t type, const void *val,
                         size_t vlen) {
  uint8_t *p;
  int rv = reserve(w, type, vlen, 0, &p);
  if (rv == 0 && vlen > 0)
    memcpy(p, val, vlen);
  return rv;
}

/* put_addr writes an address value (XORed with the header bytes 4..19 of
 * the message being built when |xor_value| is set). */
static int put_addr(qpeer__stun_writer *w, uint16_t type,
                    const struct sockaddr *sa, int xor_value) {
  struct sockaddr_storage ss;
  const uint8_t *a;
  uint8_t *p;
  size_t alen, i;
  uint16_t port;
  int rv;
  if (w->err != 0)
    return w->err;
  if (sa == NULL || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
    return w->err = UV_EINVAL;
  qpeer__addr_normalize(&ss, sa);
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    a = (const uint8_t *)&sin->sin_addr;
    alen = 4;
    port = ntohs(sin->sin_port);
  } else {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
    a = sin6->sin6_addr.s6_addr;
    alen = 16;
    port = ntohs(sin6->sin6_port);
  }
  rv = reserve(w, type, 4 + alen, 0, &p);
  if (rv != 0)
    return rv;
  p[0] = 0;
  p[1] = alen == 4 ? QPEER__STUN_FAMILY_IPV4 : QPEER__STUN_FAMILY_IPV6;
  if (xor_value)
    port ^= qpeer__get_u16(w->buf + 4);
  qpeer__put_u16(p + 2, port);
  for (i = 0; i < alen; i++)
    p[4 + i] = (uint8_t)(a[i] ^ (xor_value ? w->buf[4 + i] : 0));
  return 0;
}

int qpeer__stun_add_addr(qpeer__stun_writer *w, uint16_t type,
                         const struct sockaddr *sa) {
  return put_addr(w, type, sa, 0);
}

int qpeer__stun_add_xor_addr(qpeer__stun_writer *w, uint16_t type,
                             const struct sockaddr *sa) {
  return put_addr(w, type, sa, 1);
}

int qpeer__stun_add_change_request(qpeer__stun_writer *w, uint32_t flags) {
  uint8_t v[4];
  qpeer__put_u32(v, flags);
  return qpeer__stun_add_attr(w, QPEER__STUN_ATTR_CHANGE_REQUEST, v, 4);
}

int qpeer__stun_add_response_port(qpeer__stun_writer *w, uint16_t port) {
  uint8_t v[2];
  qpeer__put_u16(v, port);
  return qpeer__stun_add_attr(w, QPEER__STUN_ATTR_RESPONSE_PORT, v, 2);
}

int qpeer__stun_add_software(qpeer__stun_writer *w, const char *sw,
                             size_t len) {
  return qpeer__stun_add_attr(w, QPEER__STUN_ATTR_SOFTWARE, sw, len);
}

int qpeer__stun_add_error_code(qpeer__stun_writer *w, int code,
                               const char *reason, size_t len) {
  uint8_t *p;
  int rv;
  if (w->err != 0)
    return w->err;
  if (code < 300 || code > 699 || len > 0xffff - 4)
    return w->err = UV_EINVAL;
  rv = reserve(w, QPEER__STUN_ATTR_ERROR_CODE, 4 + len, 0, &p);
  if (rv != 0)
    return rv;
  p[0] = 0;
  p[1] = 0;
  p[2] = (uint8_t)(code / 100);
  p[3] = (uint8_t)(code % 100);
  if (len > 0)
    memcpy(p + 4, reason, len);
  return 0;
}

int qpeer__stun_add_padding(qpeer__stun_writer *w, size_t len) {
  uint8_t *p;
  int rv = reserve(w, QPEER__STUN_ATTR_PADDING, len, 0, &p);
  if (rv == 0)
    memset(p, 0, len);
  return rv;
}

int qpeer__stun_add_integrity(qpeer__stun_writer *w, const uint8_t *key,
                              size_t keylen) {
  static const uint8_t nokey[1] = {0};
  size_t off = w->len;
  uint8_t *p;
  int rv = reserve(w, QPEER__STUN_ATTR_MESSAGE_INTEGRITY, QPEER__STUN_HMAC_LEN,
                   0, &p);
  if (rv != 0)
    return rv;
  /* The header length now ends just after this attribute, which is what
   * the HMAC must see (RFC 8489 §14.5). */
  if (gnutls_hmac_fast(GNUTLS_MAC_SHA1, keylen ? key : nokey, keylen, w->buf,
                       off, p) < 0)
    return w->err = QPEER_ETLS;
  w->state = 1;
  return 0;
}

int qpeer__stun_writer_finish(qpeer__stun_writer *w, int with_fingerprint) {
  if (w->err == 0 && with_fingerprint) {
    size_t off = w->len;
    uint8_t *p;
    if (reserve(w, QPEER__STUN_ATTR_FINGERPRINT, 4, 1, &p) == 0) {
      qpeer__put_u32(p, qpeer__stun_crc32(0, w->buf, off) ^
                            QPEER__STUN_FINGERPRINT_XOR);
      w->state = 2;
    }
  }
  return w->err != 0 ? w->err : (int)w->len;
}

/* Convenience builders. */

int qpeer__stun_build_binding_request(uint8_t *buf, size_t buflen,
                                      const uint8_t txid[QPEER__STUN_TXID_LEN],
                                      uint32_t change_flags,
                                      int with_fingerprint) {
  qpeer__stun_writer w;
  qpeer__stun_writer_init(&w, buf, buflen, QPEER__STUN_BINDING_REQUEST, txid);
  if (change_flags != 0)
    qpeer__stun_add_change_request(&w, change_flags);
  return qpeer__stun_writer_finish(&w, with_fingerprint);
}

int qpeer__stun_build_binding_response(uint8_t *buf, size_t buflen,
                                       const uint8_t txid[QPEER__STUN_TXID_LEN],
                                       const struct sockaddr *mapped,
                                       const struct sockaddr *response_origin,
                                       const struct sockaddr *other,
                                       int with_fingerprint) {
  qpeer__stun_writer w;
  qpeer__stun_writer_init(&w, buf, buflen, QPEER__STUN_BINDING_SUCCESS, txid);
  qpeer__stun_add_xor_addr(&w, QPEER__STUN_ATTR_XOR_MAPPED_ADDRESS, mapped);
  if (response_origin != NULL)
    qpeer__stun_add_addr(&w, QPEER__STUN_ATTR_RESPONSE_ORIGIN, response_origin);
  if (other != NULL)
    qpeer__stun_add_addr(&w, QPEER__STUN_ATTR_OTHER_ADDRESS, other);
  return qpeer__stun_writer_finish(&w, with_fingerprint);
}

int qpeer__stun_build_error_response(uint8_t *buf, size_t buflen,
                                     const qpeer__stun_msg *req, int code,
                                     const char *reason, int with_fingerprint) {
  uint8_t list[2 * QPEER__STUN_MAX_UNKNOWN];
  qpeer__stun_writer w;
  uint16_t type = qpeer__stun_type(qpeer__stun_type_method(req->type),
                                   QPEER__STUN_CLASS_ERROR);
  size_t n, i;
  qpeer__stun_writer_init(&w, buf, buflen, type, req->txid);
  qpeer__stun_add_error_code(&w, code, reason, reason ? strlen(reason) : 0);
  if (code == 420 && req->unknown_count > 0) {
    n = QPEER__MIN(req->unknown_count, (size_t)QPEER__STUN_MAX_UNKNOWN);
    for (i = 0; i < n; i++)
      qpeer__put_u16(list + 2 * i, req->unknown[i]);
    qpeer__stun_add_attr(&w, QPEER__STUN_ATTR_UNKNOWN_ATTRIBUTES, list, 2 * n);
  }
  return qpeer__stun_writer_finish(&w, with_fingerprint);
}
