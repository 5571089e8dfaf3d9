/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/3 session (h3conn.h). Divisions: nghttp3 memory and stream
 * bookkeeping; the SETTINGS rewriter (our control stream) and parser (the
 * peer's); the write path (nghttp3 output -> qpeer_stream_write, ACKs back
 * to nghttp3); nghttp3 callbacks; the read path and connection events;
 * requests, datagrams and capsules; teardown.
 *
 * Re-entrancy: every entry point (qpeer callback or internal API call)
 * brackets its work with enter()/leave(). nghttp3 is never called from
 * inside one of its own callbacks except for submitting a response (as the
 * nghttp3 examples do); stream resumption and shutdown requested from
 * inside nghttp3 are recorded and applied in leave(), which also writes
 * what nghttp3 produced. Memory is released only from qpeer close
 * callbacks, which never run inside an entry point.
 */
#include <string.h>

#include "core/varint.h"
#include "h3/capsule.h"
#include "h3/datagram.h"
#include "h3/h3conn.h"
#include "quic/handles.h"

int qpeer__h3_test_no_h3_datagram;

#define MAX_VECS 16

/* Stream kinds. */
enum { ST_CTRL = 1, ST_QENC, ST_QDEC, ST_PEER_UNI, ST_REQ };

/* SETTINGS rewriter / parser states. */
enum {
  S_STYPE = 0, /* stream type varint */
  S_FTYPE,     /* frame type varint */
  S_FLEN,      /* frame length varint */
  S_PAYLOAD,   /* rewriter: the settings payload */
  S_ID,        /* parser: a setting identifier */
  S_VAL,       /* parser: its value */
  S_DONE       /* finished (or not a control stream) */
};

/* Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2). */
#define UNI_CONTROL 0x00
#define UNI_QPACK_ENCODER 0x02
#define UNI_QPACK_DECODER 0x03
#define FRAME_SETTINGS 0x04

/* An incremental QUIC varint. */
typedef struct {
  uint64_t v;   /* value so far */
  uint8_t need; /* total length, 0 before the first byte */
  uint8_t have; /* bytes seen */
} vacc;

/* Adds byte |b|; returns 1 when the varint is complete. */
static int vacc_add(vacc *a, uint8_t b) {
  if (a->need == 0) {
    a->need = (uint8_t)(1u << (b >> 6));
    a->v = b & 0x3f;
    a->have = 1;
  } else {
    a->v = (a->v << 8) | b;
    a->have++;
  }
  if (a->have < a->need)
    return 0;
  a->need = a->have = 0;
  return 1;
}

/* An outbound capsule chunk (the data reader lends it to nghttp3 until
 * acknowledged). */
typedef struct chunk {
  struct chunk *next; /* next queued chunk */
  size_t len;         /* bytes in data */
  uint8_t data[];     /* capsule bytes */
} chunk;

/* A received header field, as offsets into the stream's header buffer. */
typedef struct {
  size_t noff, nlen, voff, vlen; /* name and value */
} hoff;

typedef struct h3stream {
  qpeer__h3req rq;       /* request view (first: rq <-> stream cast) */
  qpeer__list link;      /* in h->streams */
  qpeer_stream_t s;      /* the QUIC stream handle */
  qpeer_shutdown_t shut; /* FIN request */
  qpeer__h3conn *h;      /* session */
  int kind;              /* ST_* */
  int64_t id;            /* stream ID */
  int closing;           /* qpeer_close called on s */
  int fin_submitted;     /* qpeer_stream_shutdown called */
  int fin_done;          /* ... and completed */
  int read_ended;        /* EOF or a read error arrived */
  int blocked;           /* nghttp3_conn_block_stream after ENOBUFS */
  int need_resume;       /* nghttp3_conn_resume_stream pending */
  int need_shut;         /* nghttp3 shutdown_stream_write/read pending */
  int owner_done;        /* owner ended or aborted: no more callbacks */
  int aborted;           /* reset by us */
  int notified;          /* on_req_closed delivered */
  int responded;         /* server: response submitted */
  uint64_t pending_nh3;  /* nghttp3 bytes taken, not yet in a write */
  /* SETTINGS rewriter (ST_CTRL) or parser (ST_PEER_UNI) */
  int sstate;        /* S_* */
  vacc acc;          /* varint being read */
  uint64_t left;     /* payload bytes left (parser) */
  uint64_t sid;      /* setting identifier (parser) */
  uint64_t uni_type; /* peer stream type, once known */
  size_t stype_end;  /* rewriter: end of the stream type bytes */
  size_t plen_start; /* rewriter: start of the settings payload */
  uint64_t flen;     /* rewriter: settings payload length */
  uint8_t sbuf[128]; /* rewriter: bytes held back */
  size_t sbuflen;    /* bytes in sbuf */
  uint8_t *rw_out;   /* rewriter: the rewritten prefix (owned) */
  /* capsules */
  qpeer__capsule_parser cp; /* incoming capsule parser */
  chunk *oq_head;           /* oldest unacknowledged chunk */
  chunk *oq_tail;           /* newest chunk */
  chunk *oq_unsent;         /* first chunk not lent to nghttp3 */
  size_t oq_bytes;          /* bytes queued, not acknowledged */
  uint64_t oq_acked;        /* acknowledged bytes of oq_head */
  int oq_eof;               /* end the stream after the queue */
  /* received header fields */
  char *hbuf;                /* names and values */
  size_t hlen, hcap;         /* used and allocated */
  hoff *ho;                  /* offsets */
  size_t hn, hocap;          /* used and allocated */
  qpeer_masque_header_t *hv; /* built at end of headers */
  int htrunc;                /* headers exceeded QPEER__H3_HEADERS_MAX */
} h3stream;

/* A write of nghttp3 output. */
typedef struct h3write {
  qpeer_write_t req;    /* the write request */
  struct h3write *next; /* free list */
  h3stream *st;         /* its stream */
  uint64_t nh3;         /* nghttp3 bytes it accounts for */
} h3write;

struct qpeer__h3conn {
  qpeer_conn_t *conn;           /* the QUIC connection (owner's memory) */
  nghttp3_conn *ng;             /* nghttp3 state */
  qpeer__h3conn_callbacks cbs;  /* owner callbacks */
  void *data;                   /* owner's pointer */
  int server;                   /* server role */
  int local_dgram;              /* we announce H3_DATAGRAM = 1 */
  qpeer__list streams;          /* every h3stream */
  int peer_settings;            /* peer SETTINGS parsed */
  int peer_connect;             /* ENABLE_CONNECT_PROTOCOL = 1 */
  int peer_dgram;               /* H3_DATAGRAM = 1 */
  int seen_dgram, seen_connect; /* duplicates check */
  int depth;                    /* entry point nesting */
  uint64_t entries;             /* entry points entered so far */
  int in_ng;                    /* inside an nghttp3 call */
  int failing;                  /* fatal error: closing the connection */
  int fail_status;              /* status reported for it */
  int dying;                    /* teardown started */
  int conn_open;                /* conn handle not yet closed */
  size_t open_handles;          /* stream handles + conn still open */
  int goaway_tx;                /* we sent GOAWAY */
  int goaway_rx;                /* the peer sent GOAWAY */
  int64_t goaway_id;            /* the smallest ID the peer sent in it */
  h3write *wfree;               /* free write requests */
  qpeer__h3_dgram_stats dst;    /* datagram counters */
};

static void leave(qpeer__h3conn *h);
static void teardown(qpeer__h3conn *h);
static void st_try_finish(h3stream *st);

/* ---- memory and bookkeeping --------------------------------------------- */

static void *ng_malloc(size_t n, void *ud) {
  (void)ud;
  return qpeer__malloc(n);
}
static void ng_free(void *p, void *ud) {
  (void)ud;
  qpeer__free(p);
}
static void *ng_calloc(size_t n, size_t sz, void *ud) {
  (void)ud;
  return qpeer__calloc(n, sz);
}
static void *ng_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  return qpeer__realloc(p, n);
}
static const nghttp3_mem ng_mem = {NULL, ng_malloc, ng_free, ng_calloc,
                                   ng_realloc};

static void enter(qpeer__h3conn *h) {
  h->depth++;
  h->entries++;
}

static h3stream *find_stream(qpeer__h3conn *h, int64_t id) {
  qpeer__list *e;
  for (e = h->streams.next; e != &h->streams; e = e->next) {
    h3stream *st = QPEER__CONTAINER_OF(e, h3stream, link);
    if (st->id == id)
      return st;
  }
  return NULL;
}

static h3stream *stream_new(qpeer__h3conn *h, int kind) {
  h3stream *st = qpeer__calloc(1, sizeof(*st));
  if (!st)
    return NULL;
  st->h = h;
  st->kind = kind;
  st->id = -1;
  st->rq.h = h;
  st->rq.stream_id = -1;
  qpeer__capsule_parser_init(&st->cp, 0);
  qpeer__list_init(&st->link);
  return st;
}

static void stream_free(h3stream *st) {
  chunk *c, *n;
  for (c = st->oq_head; c; c = n) {
    n = c->next;
    qpeer__free(c);
  }
  qpeer__capsule_parser_free(&st->cp);
  qpeer__free(st->rw_out);
  qpeer__free(st->hbuf);
  qpeer__free(st->ho);
  qpeer__free(st->hv);
  qpeer__free(st);
}

static void maybe_free(qpeer__h3conn *h) {
  h3write *w;
  if (!h->dying || h->open_handles || h->depth)
    return;
  if (h->ng)
    nghttp3_conn_del(h->ng);
  h->ng = NULL;
  while ((w = h->wfree) != NULL) {
    h->wfree = w->next;
    qpeer__free(w);
  }
  if (h->cbs.on_freed)
    h->cbs.on_freed(h);
  qpeer__free(h);
}

/* A fatal HTTP/3 error: close the connection with |code|; the owner hears
 * of it through on_closed once the connection is down. */
static void fail(qpeer__h3conn *h, uint64_t code, const char *why) {
  if (h->failing || h->dying)
    return;
  qpeer__log(QPEER_LOG_WARN, "HTTP/3 connection error 0x%llx: %s",
             (unsigned long long)code, why);
  h->failing = 1;
  h->fail_status = QPEER_EH3;
  /* If the connection already ended, its close event is on its way. */
  qpeer_conn_shutdown(h->conn, code, why);
}

static void fail_ng(qpeer__h3conn *h, int rv) {
  fail(h, nghttp3_err_infer_quic_app_error_code(rv), nghttp3_strerror(rv));
}

/* ---- SETTINGS ----------------------------------------------------------- */

/* Applies one setting from the peer; returns nonzero for an error. */
static int apply_setting(qpeer__h3conn *h, uint64_t id, uint64_t v) {
  switch (id) {
  case QPEER__H3_SETTINGS_H3_DATAGRAM:
    if (h->seen_dgram || v > 1)
      return -1;
    h->seen_dgram = 1;
    h->peer_dgram = (int)v;
    return 0;
  case QPEER__H3_SETTINGS_ENABLE_CONNECT_PROTOCOL:
    if (h->seen_connect || v > 1)
      return -1;
    h->seen_connect = 1;
    h->peer_connect = (int)v;
    return 0;
  default:
    return 0;
  }
}

static void settings_done(qpeer__h3conn *h, h3stream *st) {
  st->sstate = S_DONE;
  h->peer_settings = 1;
  /* RFC 9297 §2.1.1: H3_DATAGRAM = 1 without the QUIC extension. */
  if (h->peer_dgram && qpeer_conn_get_max_datagram_size(h->conn) == 0) {
    fail(h, QPEER__H3_SETTINGS_ERROR, "H3_DATAGRAM without QUIC datagrams");
    return;
  }
  QPEER__LOG_DEBUG("h3: peer SETTINGS: connect_protocol=%d h3_datagram=%d",
                   h->peer_connect, h->peer_dgram);
  if (h->cbs.on_settings)
    h->cbs.on_settings(h);
}

/* Parses the peer's unidirectional stream prefix: its type and, on the
 * control stream, the SETTINGS frame (which must come first; nghttp3
 * enforces that, so anything else just ends the parse). */
static void parse_peer_uni(qpeer__h3conn *h, h3stream *st, const uint8_t *p,
                           size_t n) {
  size_t i;
  for (i = 0; i < n && st->sstate != S_DONE && !h->failing; i++) {
    uint8_t b = p[i];
    int in_payload = st->sstate == S_ID || st->sstate == S_VAL;
    if (in_payload) {
      if (st->left == 0) {
        st->sstate = S_DONE;
        break;
      }
      st->left--;
    }
    if (!vacc_add(&st->acc, b)) {
      if (in_payload && st->left == 0)
        st->sstate = S_DONE; /* a varint cut by the frame end */
      continue;
    }
    switch (st->sstate) {
    case S_STYPE:
      st->uni_type = st->acc.v;
      st->sstate = st->acc.v == UNI_CONTROL ? S_FTYPE : S_DONE;
      break;
    case S_FTYPE:
      st->sstate = st->acc.v == FRAME_SETTINGS ? S_FLEN : S_DONE;
      break;
    case S_FLEN:
      st->left = st->acc.v;
      st->sstate = S_ID;
      if (st->left == 0)
        settings_done(h, st);
      break;
    case S_ID:
      st->sid = st->acc.v;
      st->sstate = S_VAL;
      if (st->left == 0)
        st->sstate = S_DONE; /* identifier without value */
      break;
    case S_VAL:
      if (apply_setting(h, st->sid, st->acc.v) != 0) {
        fail(h, QPEER__H3_SETTINGS_ERROR, "bad or repeated setting");
        return;
      }
      st->sstate = S_ID;
      if (st->left == 0)
        settings_done(h, st);
      break;
    default:
      break;
    }
  }
}

/* Builds the rewritten control-stream prefix once the stream type and the
 * whole SETTINGS frame are in st->sbuf: the same settings plus
 * H3_DATAGRAM = 1. Returns its length or a negative code. */
static ssize_t build_settings(qpeer__h3conn *h, h3stream *st) {
  qpeer__wbuf w;
  size_t extra = h->local_dgram ? 2 : 0, cap;
  cap = st->sbuflen + extra + 8;
  st->rw_out = qpeer__malloc(cap);
  if (!st->rw_out)
    return UV_ENOMEM;
  qpeer__wbuf_init(&w, st->rw_out, cap);
  if (qpeer__wbuf_bytes(&w, st->sbuf, st->stype_end) != 0 ||
      qpeer__wbuf_varint(&w, FRAME_SETTINGS) != 0 ||
      qpeer__wbuf_varint(&w, st->flen + extra) != 0 ||
      qpeer__wbuf_bytes(&w, st->sbuf + st->plen_start, (size_t)st->flen) != 0)
    return UV_ENOBUFS;
  if (extra && (qpeer__wbuf_varint(&w, QPEER__H3_SETTINGS_H3_DATAGRAM) != 0 ||
                qpeer__wbuf_varint(&w, 1) != 0))
    return UV_ENOBUFS;
  return (ssize_t)(w.p - st->rw_out);
}

/* Runs our control stream's first bytes through the rewriter. Returns the
 * number of bytes of the vectors that belong to the prefix once it is
 * complete (*pdone set), or 0 with everything held back. */
static int rewrite_feed(h3stream *st, const nghttp3_vec *vec, size_t nvec,
                        size_t *pconsumed, int *pdone) {
  size_t i, off, used = 0;
  *pdone = 0;
  for (i = 0; i < nvec; i++) {
    for (off = 0; off < vec[i].len; off++) {
      uint8_t b = vec[i].base[off];
      if (st->sbuflen == sizeof(st->sbuf))
        return UV_ENOBUFS;
      st->sbuf[st->sbuflen++] = b;
      used++;
      if (st->sstate == S_PAYLOAD) {
        if (st->sbuflen - st->plen_start == st->flen) {
          *pdone = 1;
          *pconsumed = used;
          return 0;
        }
        continue;
      }
      if (!vacc_add(&st->acc, b))
        continue;
      switch (st->sstate) {
      case S_STYPE:
        st->stype_end = st->sbuflen;
        st->sstate = S_FTYPE;
        break;
      case S_FTYPE:
        if (st->acc.v != FRAME_SETTINGS)
          return UV_EPROTO;
        st->sstate = S_FLEN;
        break;
      case S_FLEN:
        st->flen = st->acc.v;
        st->plen_start = st->sbuflen;
        st->sstate = S_PAYLOAD;
        if (st->flen == 0) {
          *pdone = 1;
          *pconsumed = used;
          return 0;
        }
        break;
      default:
        break;
      }
    }
  }
  *pconsumed = used;
  return 0;
}

/* ---- the write path ---------------------------------------------------- */

static void on_write_done(qpeer_write_t *req, int status);

static int submit_write(qpeer__h3conn *h, h3stream *st, const uv_buf_t *bufs,
                        unsigned int nbufs, uint64_t nh3) {
  h3write *w = h->wfree;
  int r;
  if (w)
    h->wfree = w->next;
  else if (!(w = qpeer__malloc(sizeof(*w))))
    return UV_ENOMEM;
  w->st = st;
  w->nh3 = nh3;
  w->req.data = w;
  r = qpeer_stream_write(&w->req, &st->s, bufs, nbufs, on_write_done);
  if (r != 0) {
    w->next = h->wfree;
    h->wfree = w;
  }
  return r;
}

/* Writes the control stream's output through the SETTINGS rewriter. */
static int write_ctrl(qpeer__h3conn *h, h3stream *st, const nghttp3_vec *vec,
                      size_t n, size_t total) {
  uv_buf_t bufs[MAX_VECS + 1];
  size_t consumed = 0, i, skip;
  unsigned int nb = 0;
  ssize_t plen;
  int done, r;
  r = rewrite_feed(st, vec, n, &consumed, &done);
  if (r != 0)
    return r;
  if (!done) {
    st->pending_nh3 += total;
    return 0;
  }
  st->sstate = S_DONE;
  plen = build_settings(h, st);
  if (plen < 0)
    return (int)plen;
  bufs[nb++] = uv_buf_init((char *)st->rw_out, (unsigned int)plen);
  skip = consumed;
  for (i = 0; i < n; i++) {
    if (skip >= vec[i].len) {
      skip -= vec[i].len;
      continue;
    }
    bufs[nb++] = uv_buf_init((char *)vec[i].base + skip,
                             (unsigned int)(vec[i].len - skip));
    skip = 0;
  }
  r = submit_write(h, st, bufs, nb, st->pending_nh3 + total);
  if (r == 0)
    st->pending_nh3 = 0;
  return r;
}

static void on_shut_done(qpeer_shutdown_t *req, int status) {
  h3stream *st = req->data;
  qpeer__h3conn *h = st->h;
  (void)status;
  enter(h);
  st->fin_done = 1;
  st_try_finish(st);
  leave(h);
}

/* Writes everything nghttp3 has ready. */
static void flush(qpeer__h3conn *h) {
  nghttp3_vec vec[MAX_VECS];
  uv_buf_t bufs[MAX_VECS];
  int rounds;
  for (rounds = 0; rounds < 1024 && !h->failing && !h->dying; rounds++) {
    int64_t sid = -1;
    int fin = 0, r = 0;
    nghttp3_ssize n;
    size_t total, i;
    h3stream *st;
    h->in_ng = 1;
    n = nghttp3_conn_writev_stream(h->ng, &sid, &fin, vec, MAX_VECS);
    h->in_ng = 0;
    if (n < 0) {
      fail_ng(h, (int)n);
      return;
    }
    if (sid < 0)
      return;
    total = (size_t)nghttp3_vec_len(vec, (size_t)n);
    st = find_stream(h, sid);
    if (!st || st->closing || st->aborted) {
      /* The stream is gone: stop nghttp3 from offering it again. */
      nghttp3_conn_shutdown_stream_write(h->ng, sid);
      continue;
    }
    if (st->kind == ST_CTRL && st->sstate != S_DONE) {
      r = write_ctrl(h, st, vec, (size_t)n, total);
    } else if (total > 0) {
      for (i = 0; i < (size_t)n; i++)
        bufs[i] = uv_buf_init((char *)vec[i].base, (unsigned int)vec[i].len);
      r = submit_write(h, st, bufs, (unsigned int)n, total);
    }
    if (r == UV_ENOBUFS) {
      /* The stream's send queue is full: wait for acknowledgements. */
      nghttp3_conn_block_stream(h->ng, sid);
      st->blocked = 1;
      continue;
    }
    if (r == UV_EPIPE || r == UV_ENOTCONN) {
      nghttp3_conn_shutdown_stream_write(h->ng, sid);
      continue;
    }
    if (r != 0) {
      fail(h, QPEER__H3_INTERNAL_ERROR, "write failed");
      return;
    }
    h->in_ng = 1;
    r = nghttp3_conn_add_write_offset(h->ng, sid, total);
    h->in_ng = 0;
    if (r != 0) {
      fail_ng(h, r);
      return;
    }
    if (fin && !st->fin_submitted) {
      st->fin_submitted = 1;
      st->shut.data = st;
      if (qpeer_stream_shutdown(&st->shut, &st->s, on_shut_done) != 0)
        st->fin_done = 1;
    }
  }
}

static void on_write_done(qpeer_write_t *req, int status) {
  h3write *w = req->data;
  h3stream *st = w->st;
  qpeer__h3conn *h = st->h;
  int r;
  enter(h);
  if (status == 0 && h->ng && !h->dying && !h->failing) {
    h->in_ng = 1;
    r = nghttp3_conn_add_ack_offset(h->ng, st->id, w->nh3);
    h->in_ng = 0;
    if (r != 0)
      fail_ng(h, r);
  }
  if (st->blocked && h->ng && !h->dying && !h->failing) {
    st->blocked = 0;
    nghttp3_conn_unblock_stream(h->ng, st->id);
  }
  w->next = h->wfree;
  h->wfree = w;
  leave(h);
}

/* Applies stream operations recorded while inside nghttp3, then writes. */
static void leave(qpeer__h3conn *h) {
  if (h->depth == 1 && h->ng && !h->dying && !h->failing) {
    qpeer__list *e;
    for (e = h->streams.next; e != &h->streams; e = e->next) {
      h3stream *st = QPEER__CONTAINER_OF(e, h3stream, link);
      if (st->need_shut) {
        st->need_shut = 0;
        nghttp3_conn_shutdown_stream_write(h->ng, st->id);
        nghttp3_conn_shutdown_stream_read(h->ng, st->id);
      }
      if (st->need_resume) {
        st->need_resume = 0;
        nghttp3_conn_resume_stream(h->ng, st->id);
      }
    }
    flush(h);
  }
  h->depth--;
  maybe_free(h);
}

/* leave() for an entry point that took |entries| on entering: when no
 * other entry point ran since (the user's callback called nothing), it
 * gave nghttp3 nothing to write, so the write pass is skipped (a received
 * DATAGRAM costs no nghttp3 call). */
static void leave_after(qpeer__h3conn *h, uint64_t entries) {
  if (h->entries != entries || h->depth != 1) {
    leave(h);
    return;
  }
  h->depth--;
  maybe_free(h);
}

/* ---- nghttp3 callbacks ------------------------------------------------- */

static void req_closed(h3stream *st, int status);

static int cb_acked_stream_data(nghttp3_conn *ng, int64_t sid, uint64_t len,
                                void *ud, void *sud) {
  qpeer__h3conn *h = ud;
  h3stream *st = find_stream(h, sid);
  (void)ng;
  (void)sud;
  if (!st)
    return 0;
  st->oq_acked += len;
  while (st->oq_head && st->oq_head != st->oq_unsent &&
         st->oq_acked >= st->oq_head->len) {
    chunk *c = st->oq_head;
    st->oq_acked -= c->len;
    st->oq_bytes -= c->len;
    st->oq_head = c->next;
    if (!st->oq_head)
      st->oq_tail = NULL;
    qpeer__free(c);
  }
  return 0;
}

static int cb_stream_close(nghttp3_conn *ng, int64_t sid, uint64_t code,
                           void *ud, void *sud) {
  (void)ng;
  (void)sid;
  (void)code;
  (void)ud;
  (void)sud;
  return 0;
}

/* Delivers one capsule of a request stream. Returns nonzero when the
 * stream was aborted as malformed. */
static int on_capsule(h3stream *st, const qpeer__capsule *cap) {
  qpeer__h3conn *h = st->h;
  uint64_t ctx;
  const uint8_t *p;
  size_t n;
  if (cap->type == QPEER__CAPSULE_DATAGRAM) {
    if (qpeer__capsule_decode_datagram(cap->value, cap->len, &ctx, &p, &n) != 0)
      return -1;
    h->dst.rx_capsule++;
    if (h->cbs.on_datagram)
      h->cbs.on_datagram(&st->rq, ctx, p, n, 1);
    return 0;
  }
  if (h->cbs.on_capsule)
    h->cbs.on_capsule(&st->rq, cap->type, cap->value, cap->len);
  return 0;
}

static int cb_recv_data(nghttp3_conn *ng, int64_t sid, const uint8_t *data,
                        size_t len, void *ud, void *sud) {
  qpeer__h3conn *h = ud;
  h3stream *st = find_stream(h, sid);
  (void)ng;
  (void)sud;
  while (st && len > 0 && !st->owner_done && !st->notified && !h->dying &&
         !h->failing) {
    qpeer__capsule cap;
    size_t nread = 0;
    int r = qpeer__capsule_parser_feed(&st->cp, data, len, &nread, &cap);
    if (r < 0 || (r == 1 && on_capsule(st, &cap) != 0)) {
      /* RFC 9297 §3.3: a malformed capsule is a malformed message. */
      req_closed(st, QPEER_EMALFORMED);
      qpeer__h3req_abort(&st->rq, QPEER__H3_MESSAGE_ERROR);
      return 0;
    }
    data += nread;
    len -= nread;
    if (r == 0)
      break;
  }
  return 0;
}

static int cb_begin_headers(nghttp3_conn *ng, int64_t sid, void *ud,
                            void *sud) {
  qpeer__h3conn *h = ud;
  h3stream *st = find_stream(h, sid);
  (void)ng;
  (void)sud;
  if (st) {
    st->hlen = 0;
    st->hn = 0;
    st->htrunc = 0;
  }
  return 0;
}

static int hbuf_add(h3stream *st, const uint8_t *p, size_t n, size_t *poff) {
  if (st->hlen + n > QPEER__H3_HEADERS_MAX)
    return -1;
  if (st->hlen + n > st->hcap) {
    size_t cap = QPEER__MAX(st->hcap * 2, st->hlen + n);
    char *b = qpeer__realloc(st->hbuf, QPEER__MAX(cap, (size_t)256));
    if (!b)
      return -1;
    st->hbuf = b;
    st->hcap = QPEER__MAX(cap, (size_t)256);
  }
  if (n)
    memcpy(st->hbuf + st->hlen, p, n);
  *poff = st->hlen;
  st->hlen += n;
  return 0;
}

static int cb_recv_header(nghttp3_conn *ng, int64_t sid, int32_t token,
                          nghttp3_rcbuf *name, nghttp3_rcbuf *value,
                          uint8_t flags, void *ud, void *sud) {
  qpeer__h3conn *h = ud;
  h3stream *st = find_stream(h, sid);
  nghttp3_vec nv = nghttp3_rcbuf_get_buf(name);
  nghttp3_vec vv = nghttp3_rcbuf_get_buf(value);
  hoff o;
  (void)ng;
  (void)token;
  (void)flags;
  (void)sud;
  if (!st || st->htrunc)
    return 0;
  if (st->hn == st->hocap) {
    size_t cap = st->hocap ? st->hocap * 2 : 16;
    hoff *p = qpeer__realloc(st->ho, cap * sizeof(*p));
    if (!p) {
      st->htrunc = 1;
      return 0;
    }
    st->ho = p;
    st->hocap = cap;
  }
  if (hbuf_add(st, nv.base, nv.len, &o.noff) != 0 ||
      hbuf_add(st, vv.base, vv.len, &o.voff) != 0) {
    st->htrunc = 1;
    return 0;
  }
  o.nlen = nv.len;
  o.vlen = vv.len;
  st->ho[st->hn++] = o;
  return 0;
}

static int build_headers(h3stream *st) {
  size_t i;
  qpeer__free(st->hv);
  st->hv = qpeer__calloc(st->hn ? st->hn : 1, sizeof(*st->hv));
  if (!st->hv)
    return -1;
  for (i = 0; i < st->hn; i++) {
    st->hv[i].name = st->hbuf + st->ho[i].noff;
    st->hv[i].namelen = st->ho[i].nlen;
    st->hv[i].value = st->hbuf + st->ho[i].voff;
    st->hv[i].valuelen = st->ho[i].vlen;
  }
  st->rq.hdrs = st->hv;
  st->rq.nhdrs = st->hn;
  return 0;
}

static int cb_end_headers(nghttp3_conn *ng, int64_t sid, int fin, void *ud,
                          void *sud) {
  qpeer__h3conn *h = ud;
  h3stream *st = find_stream(h, sid);
  (void)ng;
  (void)fin;
  (void)sud;
  if (!st || st->owner_done || st->notified || h->dying || h->failing)
    return 0;
  if (st->htrunc || build_headers(st) != 0) {
    req_closed(st, QPEER_EMALFORMED);
    qpeer__h3req_abort(&st->rq, QPEER__H3_MESSAGE_ERROR);
    return 0;
  }
  if (h->server) {
    if (h->cbs.on_request)
      h->cbs.on_request(h, &st->rq);
    return 0;
  }
  {
    size_t len;
    const char *s = qpeer__h3req_header(&st->rq, ":status", &len, NULL);
    int status = 0;
    size_t i;
    for (i = 0; s && i < len && i < 3; i++)
      status = status * 10 + (s[i] - '0');
    if (status >= 100 && status < 200)
      return 0; /* interim */
    st->rq.status = status;
  }
  if (h->cbs.on_response)
    h->cbs.on_response(&st->rq);
  return 0;
}

static int cb_end_stream(nghttp3_conn *ng, int64_t sid, void *ud, void *sud) {
  qpeer__h3conn *h = ud;
  h3stream *st = find_stream(h, sid);
  (void)ng;
  (void)sud;
  if (!st || st->owner_done || st->notified)
    return 0;
  if (qpeer__capsule_parser_end(&st->cp) != 0) {
    req_closed(st, QPEER_EMALFORMED);
    qpeer__h3req_abort(&st->rq, QPEER__H3_MESSAGE_ERROR);
    return 0;
  }
  req_closed(st, 0);
  return 0;
}

static int cb_stop_sending(nghttp3_conn *ng, int64_t sid, uint64_t code,
                           void *ud, void *sud) {
  qpeer__h3conn *h = ud;
  h3stream *st = find_stream(h, sid);
  (void)ng;
  (void)sud;
  if (st && !st->closing)
    qpeer_stream_stop_sending(&st->s, code);
  return 0;
}

static int cb_reset_stream(nghttp3_conn *ng, int64_t sid, uint64_t code,
                           void *ud, void *sud) {
  qpeer__h3conn *h = ud;
  h3stream *st = find_stream(h, sid);
  (void)ng;
  (void)sud;
  if (!st || st->closing)
    return 0;
  qpeer_stream_reset(&st->s, code);
  if (st->kind == ST_REQ) {
    /* nghttp3 rejected the message (malformed header section). */
    req_closed(st, QPEER_EMALFORMED);
    st->aborted = 1;
    st_try_finish(st);
  }
  return 0;
}

static int cb_shutdown(nghttp3_conn *ng, int64_t id, void *ud) {
  qpeer__h3conn *h = ud;
  (void)ng;
  if (h->goaway_rx && id >= h->goaway_id)
    return 0; /* nghttp3 checks that it never grows */
  h->goaway_rx = 1;
  h->goaway_id = id;
  if (!h->dying && !h->failing && h->cbs.on_goaway)
    h->cbs.on_goaway(h, id);
  return 0;
}

static nghttp3_ssize cb_read_data(nghttp3_conn *ng, int64_t sid,
                                  nghttp3_vec *vec, size_t veccnt,
                                  uint32_t *pflags, void *ud, void *sud) {
  qpeer__h3conn *h = ud;
  h3stream *st = find_stream(h, sid);
  size_t n = 0;
  (void)ng;
  (void)sud;
  if (!st)
    return NGHTTP3_ERR_CALLBACK_FAILURE;
  while (n < veccnt && st->oq_unsent) {
    vec[n].base = st->oq_unsent->data;
    vec[n].len = st->oq_unsent->len;
    n++;
    st->oq_unsent = st->oq_unsent->next;
  }
  if (!st->oq_unsent && st->oq_eof)
    *pflags |= NGHTTP3_DATA_FLAG_EOF;
  else if (n == 0)
    return NGHTTP3_ERR_WOULDBLOCK;
  return (nghttp3_ssize)n;
}

/* ---- requests ------------------------------------------------------------ */

/* Tells the owner that |st| ended (once), unless the owner ended it. */
static void req_closed(h3stream *st, int status) {
  qpeer__h3conn *h = st->h;
  if (st->notified || st->owner_done || st->kind != ST_REQ)
    return;
  st->notified = 1;
  if (h->cbs.on_req_closed)
    h->cbs.on_req_closed(&st->rq, status);
  /* After a clean end from the peer we end our side too. */
  if (status == 0 && !st->aborted && !st->oq_eof) {
    st->oq_eof = 1;
    st->need_resume = 1;
  }
  st_try_finish(st);
}

/* Closes a request stream's handle once both sides are settled. */
static void on_stream_closed(qpeer_handle_t *hd);

static void st_try_finish(h3stream *st) {
  if (st->closing || st->kind != ST_REQ || st->h->dying)
    return;
  if (!st->owner_done && !st->notified)
    return;
  if (!st->aborted && !st->fin_done)
    return;
  st->closing = 1;
  qpeer_close((qpeer_handle_t *)&st->s, on_stream_closed);
}

static const nghttp3_data_reader data_reader = {cb_read_data};

static void on_read(qpeer_stream_t *s, ssize_t nread, const uint8_t *data);

int qpeer__h3conn_submit_request(qpeer__h3conn *h, const nghttp3_nv *nva,
                                 size_t nvlen, void *data, qpeer__h3req **prq) {
  h3stream *st;
  int r;
  if (!h || h->server || !prq)
    return UV_EINVAL;
  if (h->dying || h->failing)
    return UV_ENOTCONN;
  if (h->goaway_rx)
    return UV_ESHUTDOWN; /* RFC 9114 §5.2: no new request after GOAWAY */
  st = stream_new(h, ST_REQ);
  if (!st)
    return UV_ENOMEM;
  r = qpeer_stream_open(h->conn, &st->s, QPEER_STREAM_BIDI);
  if (r != 0) {
    stream_free(st);
    return r;
  }
  st->id = qpeer_stream_get_id(&st->s);
  st->rq.stream_id = st->id;
  st->rq.data = data;
  st->s.data = st;
  qpeer__list_insert_tail(&h->streams, &st->link);
  h->open_handles++;
  qpeer_stream_read_start(&st->s, on_read);
  enter(h);
  h->in_ng = 1;
  r = nghttp3_conn_submit_request(h->ng, st->id, nva, nvlen, &data_reader, st);
  h->in_ng = 0;
  if (r != 0) {
    st->owner_done = 1;
    st->aborted = 1;
    st->closing = 1;
    qpeer_close((qpeer_handle_t *)&st->s, on_stream_closed);
    leave(h);
    return QPEER_EH3;
  }
  *prq = &st->rq;
  leave(h);
  return 0;
}

const char *qpeer__h3req_header(const qpeer__h3req *rq, const char *name,
                                size_t *plen, int *prepeated) {
  size_t i, n = strlen(name);
  const char *found = NULL;
  if (prepeated)
    *prepeated = 0;
  for (i = 0; i < rq->nhdrs; i++) {
    const qpeer_masque_header_t *f = &rq->hdrs[i];
    if (f->namelen != n || memcmp(f->name, name, n) != 0)
      continue;
    if (found) {
      if (prepeated)
        *prepeated = 1;
      break;
    }
    found = f->value;
    if (plen)
      *plen = f->valuelen;
  }
  return found;
}

int qpeer__h3req_respond(qpeer__h3req *rq, const nghttp3_nv *nva, size_t nvlen,
                         int keep_open) {
  h3stream *st = (h3stream *)rq;
  qpeer__h3conn *h = st->h;
  int r;
  if (!h->server)
    return UV_EINVAL;
  if (st->responded)
    return UV_EALREADY;
  if (h->dying || h->failing || st->aborted || st->closing)
    return UV_EPIPE;
  st->responded = 1;
  if (!keep_open) {
    st->owner_done = 1;
    st->oq_eof = 1;
  }
  enter(h);
  r = nghttp3_conn_submit_response(h->ng, st->id, nva, nvlen,
                                   keep_open ? &data_reader : NULL);
  if (r != 0) {
    leave(h);
    return QPEER_EH3;
  }
  leave(h);
  return 0;
}

static int queue_chunk(h3stream *st, chunk *c) {
  c->next = NULL;
  if (st->oq_tail)
    st->oq_tail->next = c;
  else
    st->oq_head = c;
  st->oq_tail = c;
  if (!st->oq_unsent)
    st->oq_unsent = c;
  st->oq_bytes += c->len;
  st->need_resume = 1;
  return 0;
}

static int req_writable(const h3stream *st) {
  const qpeer__h3conn *h = st->h;
  return !h->dying && !h->failing && !st->owner_done && !st->notified &&
         !st->aborted && !st->oq_eof;
}

int qpeer__h3req_send_datagram(qpeer__h3req *rq, uint64_t context_id,
                               const uint8_t *hdr, size_t hdrlen,
                               const uint8_t *data, size_t len) {
  h3stream *st = (h3stream *)rq;
  qpeer__h3conn *h = st->h;
  size_t payload = hdrlen + len;
  chunk *c;
  ssize_t hl;
  if (!req_writable(st))
    return UV_EPIPE;
  if (qpeer__h3conn_datagrams_enabled(h)) {
    uint8_t buf[32];
    size_t max = qpeer_conn_get_max_datagram_size(h->conn);
    hl = qpeer__h3_datagram_write_header(buf, sizeof(buf), st->id, context_id);
    if (hl < 0)
      return (int)hl;
    if ((size_t)hl + payload <= max) {
      /* Header, context header and payload go straight into the
       * connection's queue (one copy). */
      uv_buf_t v[3];
      int r;
      v[0] = uv_buf_init((char *)buf, (unsigned int)hl);
      v[1] = uv_buf_init((char *)(uintptr_t)hdr, (unsigned int)hdrlen);
      v[2] = uv_buf_init((char *)(uintptr_t)data, (unsigned int)len);
      r = qpeer__conn_send_datagramv(h->conn, v, 3);
      if (r == 0)
        h->dst.tx_quic++;
      else
        h->dst.tx_dropped++;
      return r;
    }
    if (len > QPEER__H3_RELIABLE_PAYLOAD_MAX) {
      h->dst.tx_dropped++;
      return UV_EMSGSIZE;
    }
  }
  if (payload > QPEER__CAPSULE_MAX_VALUE_DEFAULT - 8) {
    h->dst.tx_dropped++;
    return UV_EMSGSIZE;
  }
  if (st->oq_bytes + payload > QPEER__H3_CAPSULE_QUEUE_MAX) {
    h->dst.tx_dropped++;
    return UV_ENOBUFS;
  }
  c = qpeer__malloc(sizeof(*c) + QPEER__CAPSULE_HEADER_MAX + 8 + payload);
  if (!c)
    return UV_ENOMEM;
  hl = qpeer__capsule_write_datagram_header(
      c->data, QPEER__CAPSULE_HEADER_MAX + 8, context_id, payload);
  if (hl < 0) {
    qpeer__free(c);
    return (int)hl;
  }
  if (hdrlen)
    memcpy(c->data + hl, hdr, hdrlen);
  if (len)
    memcpy(c->data + hl + hdrlen, data, len);
  c->len = (size_t)hl + payload;
  enter(h);
  queue_chunk(st, c);
  h->dst.tx_capsule++;
  leave(h);
  return 0;
}

int qpeer__h3req_send_capsule(qpeer__h3req *rq, uint64_t type,
                              const uint8_t *value, size_t len) {
  h3stream *st = (h3stream *)rq;
  qpeer__h3conn *h = st->h;
  chunk *c;
  ssize_t n;
  if (!req_writable(st))
    return UV_EPIPE;
  c = qpeer__malloc(sizeof(*c) + QPEER__CAPSULE_HEADER_MAX + len);
  if (!c)
    return UV_ENOMEM;
  n = qpeer__capsule_write(c->data, QPEER__CAPSULE_HEADER_MAX + len, type,
                           value, len);
  if (n < 0) {
    qpeer__free(c);
    return (int)n;
  }
  c->len = (size_t)n;
  enter(h);
  queue_chunk(st, c);
  leave(h);
  return 0;
}

int qpeer__h3req_send_encoded(qpeer__h3req *rq, const uint8_t *capsules,
                              size_t len) {
  h3stream *st = (h3stream *)rq;
  qpeer__h3conn *h = st->h;
  chunk *c;
  if (!req_writable(st))
    return UV_EPIPE;
  c = qpeer__malloc(sizeof(*c) + len);
  if (!c)
    return UV_ENOMEM;
  memcpy(c->data, capsules, len);
  c->len = len;
  enter(h);
  queue_chunk(st, c);
  leave(h);
  return 0;
}

void qpeer__h3req_end(qpeer__h3req *rq) {
  h3stream *st = (h3stream *)rq;
  qpeer__h3conn *h = st->h;
  if (st->owner_done)
    return;
  enter(h);
  st->owner_done = 1;
  if (!st->oq_eof && !st->aborted) {
    st->oq_eof = 1;
    st->need_resume = 1;
  }
  if (h->server && !st->responded)
    qpeer__h3req_abort(rq, QPEER__H3_REQUEST_REJECTED);
  st_try_finish(st);
  leave(h);
}

void qpeer__h3req_abort(qpeer__h3req *rq, uint64_t code) {
  h3stream *st = (h3stream *)rq;
  qpeer__h3conn *h = st->h;
  enter(h);
  st->owner_done = 1;
  if (!st->aborted && !st->closing) {
    st->aborted = 1;
    st->need_shut = 1;
    if (!st->fin_done)
      qpeer_stream_reset(&st->s, code);
    if (!st->read_ended)
      qpeer_stream_stop_sending(&st->s, code);
  }
  st_try_finish(st);
  leave(h);
}

/* ---- the read path and connection events ------------------------------- */

static void on_read(qpeer_stream_t *s, ssize_t nread, const uint8_t *data) {
  h3stream *st = s->data;
  qpeer__h3conn *h = st->h;
  nghttp3_ssize rv;
  enter(h);
  if (h->dying || h->failing || st->closing) {
    leave(h);
    return;
  }
  if (nread > 0) {
    if (st->kind == ST_PEER_UNI && st->sstate != S_DONE)
      parse_peer_uni(h, st, data, (size_t)nread);
    if (!h->failing && !h->dying && !(st->kind == ST_REQ && st->aborted)) {
      h->in_ng = 1;
      rv = nghttp3_conn_read_stream(h->ng, st->id, data, (size_t)nread, 0);
      h->in_ng = 0;
      if (rv < 0)
        fail_ng(h, (int)rv);
    }
  } else if (nread == UV_EOF) {
    st->read_ended = 1;
    if (!(st->kind == ST_REQ && st->aborted)) {
      h->in_ng = 1;
      rv = nghttp3_conn_read_stream(h->ng, st->id, NULL, 0, 1);
      h->in_ng = 0;
      if (rv < 0)
        fail_ng(h, (int)rv);
    }
  } else if (nread < 0) {
    st->read_ended = 1;
    if (st->kind == ST_REQ) {
      req_closed(st, (int)nread);
      if (!st->aborted)
        qpeer__h3req_abort(&st->rq, QPEER__H3_REQUEST_CANCELLED);
    } else if (nread == QPEER_ESTREAMRESET &&
               /* RFC 9114 §6.2: a reset before the stream type is fine. */
               (st->uni_type == UNI_CONTROL ||
                st->uni_type == UNI_QPACK_ENCODER ||
                st->uni_type == UNI_QPACK_DECODER)) {
      fail(h, NGHTTP3_H3_CLOSED_CRITICAL_STREAM, "critical stream reset");
    }
  }
  st_try_finish(st);
  leave(h);
}

static void on_stream(qpeer_conn_t *conn, int status) {
  qpeer__h3conn *h = conn->data;
  enter(h);
  while (status == 0) {
    h3stream *st = stream_new(h, ST_PEER_UNI);
    if (!st) {
      fail(h, QPEER__H3_INTERNAL_ERROR, "out of memory");
      break;
    }
    if (qpeer_conn_accept_stream(conn, &st->s) != 0) {
      stream_free(st);
      break;
    }
    st->id = qpeer_stream_get_id(&st->s);
    st->rq.stream_id = st->id;
    st->s.data = st;
    st->uni_type = UINT64_MAX; /* not known until its first byte */
    qpeer__list_insert_tail(&h->streams, &st->link);
    h->open_handles++;
    if ((st->id & 2) == 0) {
      st->kind = ST_REQ;
      st->sstate = S_DONE;
      if (!h->server)
        fail(h, QPEER__H3_STREAM_CREATION_ERROR, "server opened a bidi stream");
    }
    if (h->dying || h->failing) {
      st->closing = 1;
      qpeer_close((qpeer_handle_t *)&st->s, on_stream_closed);
      continue;
    }
    qpeer_stream_read_start(&st->s, on_read);
  }
  leave(h);
}

static void on_datagram(qpeer_conn_t *conn, const uint8_t *data, size_t len) {
  qpeer__h3conn *h = conn->data;
  int64_t sid = -1;
  uint64_t ctx = 0;
  const uint8_t *p;
  size_t n;
  h3stream *st;
  uint64_t entries;
  int r;
  enter(h);
  entries = h->entries;
  if (h->dying || h->failing) {
    leave(h);
    return;
  }
  r = qpeer__h3_datagram_decode(data, len, &sid, &ctx, &p, &n);
  if (r != 0 && sid < 0) {
    fail(h, QPEER__H3_DATAGRAM_ERROR, "malformed HTTP datagram");
    leave(h);
    return;
  }
  st = r == 0 && h->local_dgram ? find_stream(h, sid) : NULL;
  if (!st || st->kind != ST_REQ || st->owner_done || st->notified ||
      st->aborted) {
    h->dst.rx_dropped++;
    leave_after(h, entries);
    return;
  }
  h->dst.rx_quic++;
  if (h->cbs.on_datagram)
    h->cbs.on_datagram(&st->rq, ctx, p, n, 0);
  leave_after(h, entries);
}

static void on_conn_closed_event(qpeer_conn_t *conn, int status,
                                 const qpeer_close_info_t *info) {
  qpeer__h3conn *h = conn->data;
  qpeer__list *e, *next;
  if (h->dying)
    return;
  enter(h);
  if (h->failing)
    status = h->fail_status;
  else if (status == QPEER_EAPPCLOSE && info &&
           info->kind == QPEER_CLOSE_APPLICATION &&
           info->code == QPEER__H3_NO_ERROR)
    status = QPEER_EPEERCLOSED;
  else if (status == 0)
    status = QPEER_EPEERCLOSED;
  for (e = h->streams.next; e != &h->streams; e = next) {
    h3stream *st = QPEER__CONTAINER_OF(e, h3stream, link);
    next = e->next;
    req_closed(st, status);
  }
  if (h->cbs.on_closed)
    h->cbs.on_closed(h, status);
  teardown(h);
  leave(h);
}

/* ---- setup and teardown ---------------------------------------------------
 */

static void on_stream_closed(qpeer_handle_t *hd) {
  h3stream *st = hd->data;
  qpeer__h3conn *h = st->h;
  if (h->ng && !h->dying) {
    h->in_ng = 1;
    nghttp3_conn_close_stream(h->ng, st->id, QPEER__H3_NO_ERROR);
    h->in_ng = 0;
  }
  qpeer__list_remove(&st->link);
  stream_free(st);
  h->open_handles--;
  maybe_free(h);
}

static void on_conn_closed(qpeer_handle_t *hd) {
  qpeer__h3conn *h = hd->data;
  h->open_handles--;
  maybe_free(h);
}

static void teardown(qpeer__h3conn *h) {
  qpeer__list *e;
  if (h->dying)
    return;
  h->dying = 1;
  for (e = h->streams.next; e != &h->streams; e = e->next) {
    h3stream *st = QPEER__CONTAINER_OF(e, h3stream, link);
    if (!st->closing) {
      st->closing = 1;
      qpeer_close((qpeer_handle_t *)&st->s, on_stream_closed);
    }
  }
  if (h->conn_open) {
    h->conn_open = 0;
    if (qpeer_close((qpeer_handle_t *)h->conn, on_conn_closed) != 0)
      h->open_handles--;
  }
}

void qpeer__h3conn_close(qpeer__h3conn *h, uint64_t code, const char *reason) {
  if (!h || h->dying)
    return;
  enter(h);
  if (!h->failing)
    qpeer_conn_shutdown(h->conn, code, reason);
  teardown(h);
  leave(h);
}

static int open_local_uni(qpeer__h3conn *h, int kind, int64_t *pid) {
  h3stream *st = stream_new(h, kind);
  int r;
  if (!st)
    return UV_ENOMEM;
  r = qpeer_stream_open(h->conn, &st->s, QPEER_STREAM_UNI);
  if (r != 0) {
    stream_free(st);
    return r;
  }
  st->id = qpeer_stream_get_id(&st->s);
  st->s.data = st;
  st->sstate = kind == ST_CTRL ? S_STYPE : S_DONE;
  qpeer__list_insert_tail(&h->streams, &st->link);
  h->open_handles++;
  *pid = st->id;
  return 0;
}

int qpeer__h3conn_new(qpeer__h3conn **ph, qpeer_conn_t *conn,
                      const qpeer__h3conn_settings *s,
                      const qpeer__h3conn_callbacks *cbs, void *data) {
  qpeer__h3conn *h;
  nghttp3_callbacks ncb;
  nghttp3_settings ns;
  qpeer_conn_callbacks_t ccb;
  int64_t ctrl, qenc, qdec;
  int r;
  if (!ph || !conn || !s || !cbs)
    return UV_EINVAL;
  h = qpeer__calloc(1, sizeof(*h));
  if (!h)
    return UV_ENOMEM;
  h->conn = conn;
  h->cbs = *cbs;
  h->data = data;
  h->server = s->server;
  h->local_dgram = s->local_datagrams &&
                   !(qpeer__h3_test_no_h3_datagram & (s->server ? 2 : 1));
  qpeer__list_init(&h->streams);
  memset(&ncb, 0, sizeof(ncb));
  ncb.acked_stream_data = cb_acked_stream_data;
  ncb.stream_close = cb_stream_close;
  ncb.recv_data = cb_recv_data;
  ncb.begin_headers = cb_begin_headers;
  ncb.recv_header = cb_recv_header;
  ncb.end_headers = cb_end_headers;
  ncb.end_stream = cb_end_stream;
  ncb.stop_sending = cb_stop_sending;
  ncb.reset_stream = cb_reset_stream;
  ncb.shutdown = cb_shutdown;
  nghttp3_settings_default(&ns);
  ns.qpack_max_dtable_capacity = 0;
  ns.qpack_blocked_streams = 0;
  ns.max_field_section_size = QPEER__H3_HEADERS_MAX;
  ns.enable_connect_protocol = s->server;
  if (s->server)
    r = nghttp3_conn_server_new(&h->ng, &ncb, &ns, &ng_mem, h);
  else
    r = nghttp3_conn_client_new(&h->ng, &ncb, &ns, &ng_mem, h);
  if (r != 0) {
    qpeer__free(h);
    return r == NGHTTP3_ERR_NOMEM ? UV_ENOMEM : QPEER_EH3;
  }
  if (s->server)
    nghttp3_conn_set_max_client_streams_bidi(h->ng, 1000);
  conn->data = h;
  h->conn_open = 1;
  h->open_handles = 1;
  memset(&ccb, 0, sizeof(ccb));
  ccb.on_stream = on_stream;
  ccb.on_datagram = on_datagram;
  ccb.on_closed = on_conn_closed_event;
  if ((r = qpeer_conn_set_callbacks(conn, &ccb)) != 0 ||
      (r = open_local_uni(h, ST_CTRL, &ctrl)) != 0 ||
      (r = open_local_uni(h, ST_QENC, &qenc)) != 0 ||
      (r = open_local_uni(h, ST_QDEC, &qdec)) != 0)
    goto fail;
  if (nghttp3_conn_bind_control_stream(h->ng, ctrl) != 0 ||
      nghttp3_conn_bind_qpack_streams(h->ng, qenc, qdec) != 0) {
    r = QPEER_EH3;
    goto fail;
  }
  enter(h);
  leave(h); /* Writes the stream types and SETTINGS. */
  *ph = h;
  return 0;
fail:
  /* The owner keeps ownership of |conn| on failure: tear down our streams
   * only, and leave the connection to the owner. */
  {
    qpeer__list *e;
    qpeer_conn_callbacks_t none;
    memset(&none, 0, sizeof(none));
    qpeer_conn_set_callbacks(conn, &none);
    conn->data = NULL;
    h->dying = 1;
    h->conn_open = 0;
    h->open_handles--;
    for (e = h->streams.next; e != &h->streams; e = e->next) {
      h3stream *st = QPEER__CONTAINER_OF(e, h3stream, link);
      st->closing = 1;
      qpeer_close((qpeer_handle_t *)&st->s, on_stream_closed);
    }
    h->cbs.on_freed = NULL;
    maybe_free(h);
  }
  return r;
}

/* ---- writing datagrams early ---------------------------------------------- */

void qpeer__h3conn_flush_datagrams(qpeer__h3conn *h, int force) {
  qpeer__conn *c;
  if (!h || h->depth || h->dying || h->failing || !h->conn ||
      !(c = h->conn->impl) || c->freeing || c->closed)
    return;
  /* Without |force|: once a GSO train's worth is queued. */
  if (c->dgq.n == 0 || (!force && c->dgq.n < QPEER__UDP_TX_BATCH))
    return;
  qpeer__conn_write(c);
}

/* ---- graceful shutdown -------------------------------------------------- */

int qpeer__h3conn_goaway(qpeer__h3conn *h) {
  int r = 0;
  if (!h || !h->server)
    return UV_EINVAL;
  if (h->dying || h->failing || !h->ng)
    return UV_ENOTCONN;
  if (h->goaway_tx)
    return 0;
  enter(h);
  h->in_ng = 1;
  r = nghttp3_conn_shutdown(h->ng);
  h->in_ng = 0;
  if (r == 0)
    h->goaway_tx = 1;
  leave(h); /* Writes the GOAWAY frame on the control stream. */
  return r == 0 ? 0 : r == NGHTTP3_ERR_NOMEM ? UV_ENOMEM : QPEER_EH3;
}

int qpeer__h3conn_goaway_sent(const qpeer__h3conn *h) { return h->goaway_tx; }

int qpeer__h3conn_goaway_received(const qpeer__h3conn *h, int64_t *pid) {
  if (h->goaway_rx && pid)
    *pid = h->goaway_id;
  return h->goaway_rx;
}

/* ---- accessors ------------------------------------------------------------
 */

void *qpeer__h3conn_data(const qpeer__h3conn *h) { return h->data; }

qpeer_conn_t *qpeer__h3conn_conn(const qpeer__h3conn *h) { return h->conn; }

int qpeer__h3conn_peer_settings_received(const qpeer__h3conn *h) {
  return h->peer_settings;
}

int qpeer__h3conn_peer_connect_protocol(const qpeer__h3conn *h) {
  return h->peer_connect;
}

int qpeer__h3conn_peer_h3_datagram(const qpeer__h3conn *h) {
  return h->peer_dgram;
}

int qpeer__h3conn_datagrams_enabled(const qpeer__h3conn *h) {
  return h->local_dgram && h->peer_settings && h->peer_dgram &&
         qpeer_conn_get_max_datagram_size(h->conn) > 0;
}

const qpeer__h3_dgram_stats *qpeer__h3conn_dgram_stats(const qpeer__h3conn *h) {
  return &h->dst;
}
