/* SPDX-License-Identifier: MIT */
/*
 * qpeer error codes. Every function returns 0 or a negative code. libuv and
 * system errors pass through unchanged (UV_EINVAL, UV_ENOMEM, UV_ECANCELED,
 * UV_ETIMEDOUT, UV_EOF, ...); qpeer's own codes live in [-9999, -9000].
 * One X-macro generates the enum, qpeer_err_name() and qpeer_strerror().
 */
#ifndef QPEER_ERRNO_H
#define QPEER_ERRNO_H

#define QPEER_ERRNO_MAP(XX)                                                   \
  XX(EHANDSHAKE, -9001, "QUIC/TLS handshake failed")                          \
  XX(EPEERID, -9002, "peer identity does not match the expected peer ID")     \
  XX(ECERT, -9003, "peer certificate could not be verified")                  \
  XX(EREFUSED, -9004, "peer refused our identity")                            \
  XX(EIDLE, -9005, "connection closed by idle timeout")                       \
  XX(EPEERCLOSED, -9006, "peer closed the connection")                        \
  XX(ESTATELESSRESET, -9007, "connection ended by a stateless reset")         \
  XX(EPROTO, -9008, "QUIC protocol violation")                                \
  XX(EVERSION, -9009, "no QUIC version in common with the peer")              \
  XX(ETLS, -9010, "TLS library error")                                        \
  XX(EQUIC, -9011, "QUIC library error")                                      \
  XX(EAPPCLOSE, -9012, "peer closed the connection with an application error")\
  XX(ESTREAMRESET, -9013, "peer reset the stream")                            \
  XX(ESTOPSENDING, -9014, "peer asked us to stop sending on the stream")      \
  XX(EFLOWCONTROL, -9015, "flow control or stream limit reached")             \
  XX(EBADPEERID, -9020, "malformed peer ID text")                             \
  XX(EPEERIDCHECK, -9021, "peer ID checksum mismatch (mistyped?)")            \
  XX(EKEYFILE, -9022, "invalid or unreadable key file")                       \
  XX(EKEYPERM, -9023, "key file is readable by group or others")              \
  XX(EMALFORMED, -9030, "malformed wire message")                             \
  XX(ETRUNCATED, -9031, "truncated wire message")                             \
  XX(EUNSUPPORTED, -9032, "unsupported message type or version")              \
  XX(ECHECKSUM, -9033, "message integrity check failed")                      \
  XX(ESTUN, -9040, "STUN transaction failed")                                 \
  XX(ENOMAPPING, -9041, "no port mapping could be obtained")                  \
  XX(ENOPATH, -9042, "no usable network path")                                \
  XX(ERELAY, -9043, "relay error")                                            \
  XX(EH3, -9044, "HTTP/3 error")                                              \
  XX(ETICKET, -9045, "malformed or corrupted ticket")                         \
  XX(EMAPREFUSED, -9050, "the gateway refused the port mapping")              \
  XX(ENOGATEWAY, -9051, "no default gateway to ask for a port mapping")      \
  XX(ENOTALLOWED, -9060, "peer ID not allowed by the listener")              \
  XX(EBOOTSTRAP, -9070, "corrupted bootstrap cache file")

typedef enum {
#define QPEER_ERRNO_XX(name, val, msg) QPEER_##name = (val),
  QPEER_ERRNO_MAP(QPEER_ERRNO_XX)
#undef QPEER_ERRNO_XX
  QPEER_ERRNO_MAX = -9000
} qpeer_errno_t;

#endif /* QPEER_ERRNO_H */
