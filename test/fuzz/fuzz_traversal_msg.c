/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the control-stream message codec
 * (lib/peer/traversal_msg.c). The input is decoded two ways: message by
 * message with the one-shot decoder (unknown types skipped by their size),
 * and as a stream (after a valid HELLO) through the incremental parser in
 * chunks whose sizes come from the input. Both must yield the same
 * messages up to the first error; every decoded message must re-encode
 * and decode to itself; errors are limited to the documented codes and
 * the parser's are sticky.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "internal.h"
#include "peer/traversal_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The most messages compared between the two decoders. */
#define MAX_MSGS 256

static void check(int cond) {
  if (!cond)
    abort();
}

/* same_msg aborts unless |a| and |b| carry the same content (addresses
 * compared after IPv4-mapped normalization, as the encoder writes them). */
static void same_msg(const qpeer__trav_msg *a, const qpeer__trav_msg *b) {
  struct sockaddr_storage x, y;
  check(a->kind == b->kind && a->seq == b->seq && a->round == b->round);
  check(a->cand_type == b->cand_type && a->priority == b->priority);
  check(memcmp(&a->hello, &b->hello, sizeof(a->hello)) == 0);
  qpeer__addr_normalize(&x, (const struct sockaddr *)&a->addr);
  qpeer__addr_normalize(&y, (const struct sockaddr *)&b->addr);
  check(x.ss_family == y.ss_family);
  if (x.ss_family != AF_UNSPEC)
    check(qpeer__addr_equal((const struct sockaddr *)&x,
                            (const struct sockaddr *)&y));
}

/* reencode aborts unless |m| re-encodes and decodes to itself. */
static void reencode(const qpeer__trav_msg *m) {
  uint8_t buf[QPEER__TRAV_ENC_MAX];
  qpeer__trav_msg back;
  size_t used;
  int n = qpeer__trav_msg_encode(m, buf, sizeof(buf));
  check(n > 0);
  check(qpeer__trav_msg_decode(&back, buf, (size_t)n, &used) == 0);
  check(used == (size_t)n);
  same_msg(m, &back);
}

static int known_error(int rv) {
  return rv == QPEER_ETRUNCATED || rv == QPEER_EMALFORMED ||
         rv == UV_EMSGSIZE || rv == QPEER_EPROTO;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static qpeer__trav_msg one[MAX_MSGS];
  static uint8_t stream[16 + 64 + (1 << 16)];
  static const uint8_t hello[] = {0xc0, 0x00, 0x00, 0x00, 0x71,
                                  0x70, 0x00, 0x00, 0x01, 0x01};
  qpeer__trav_parser p;
  qpeer__trav_msg m;
  size_t off = 0, used, none = 0, nstream = 0, slen, chunk_seed;
  int rv, err_one = 0, err_stream = 0;

  /* One-shot decoding, message by message. */
  while (off < size) {
    rv = qpeer__trav_msg_decode(&m, data + off, size - off, &used);
    if (rv == QPEER_EUNSUPPORTED) {
      check(used > 0);
      if (used > size - off) {
        err_one = QPEER_ETRUNCATED;
        break;
      }
      off += used;
      continue;
    }
    if (rv != 0) {
      check(known_error(rv));
      check(used == 0);
      err_one = rv;
      break;
    }
    check(used > 0 && used <= size - off);
    reencode(&m);
    if (none < MAX_MSGS)
      one[none] = m;
    none++;
    off += used;
  }

  /* The same bytes as a stream after a HELLO, in chunks. */
  if (size > sizeof(stream) - sizeof(hello))
    return 0;
  memcpy(stream, hello, sizeof(hello));
  memcpy(stream + sizeof(hello), data, size);
  slen = sizeof(hello) + size;
  chunk_seed = size > 0 ? data[0] : 1;
  qpeer__trav_parser_init(&p);
  off = 0;
  while (off < slen) {
    size_t len = 1 + (chunk_seed + off * 7) % 23;
    if (len > slen - off)
      len = slen - off;
    rv = qpeer__trav_parser_feed(&p, stream + off, len, &used, &m);
    check(used <= len);
    off += used;
    if (rv < 0) {
      check(known_error(rv) && rv != QPEER_ETRUNCATED);
      check(qpeer__trav_parser_feed(&p, stream, slen, &used, &m) == rv);
      check(used == 0 && qpeer__trav_parser_finish(&p) == rv);
      err_stream = rv;
      break;
    }
    if (rv == 1) {
      reencode(&m);
      if (nstream == 0) {
        check(m.kind == QPEER__TRAV_HELLO && m.hello.version == 1);
      } else if (nstream - 1 < MAX_MSGS && nstream - 1 < none) {
        same_msg(&m, &one[nstream - 1]);
      }
      nstream++;
    } else {
      check(used == len);
    }
  }
  /* Both decoders stop at the same message. The stream parser sees the
   * one-shot decoder's message count, plus its HELLO, unless the input
   * holds a HELLO of its own (a second HELLO is a stream error). */
  if (err_stream == 0) {
    check(nstream == none + 1);
    rv = qpeer__trav_parser_finish(&p);
    check(rv == 0 || rv == QPEER_ETRUNCATED);
    check((rv == QPEER_ETRUNCATED) == (err_one == QPEER_ETRUNCATED));
  } else {
    check(nstream <= none + 1);
    if (err_stream != QPEER_EPROTO)
      check(err_stream == err_one && nstream == none + 1);
  }
  return 0;
}
