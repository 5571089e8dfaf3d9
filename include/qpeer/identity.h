/* SPDX-License-Identifier: MIT */
/*
 * Peer identity: an Ed25519 key pair. A peer ID is the 32-byte public key.
 * Its text form is 56 characters: the version character 'p', then the
 * unpadded RFC 4648 base32 (alphabet a-z2-7) of the 34 bytes key ||
 * SHA-256("qpeer peer id v1" || key)[0..1]. The 272 bits fill 55
 * characters; the 3 unused low bits of the last one are zero. Written in
 * lower case, read in any case (see doc/identity.md).
 */
#ifndef QPEER_IDENTITY_H
#define QPEER_IDENTITY_H

#include "qpeer/core.h"

/** Raw length of a peer ID (an Ed25519 public key). */
#define QPEER_PEER_ID_LEN 32
/** Length of the text form, without the terminating NUL. */
#define QPEER_PEER_ID_TEXT_LEN 56
/** Buffer size for the text form, including the terminating NUL. */
#define QPEER_PEER_ID_STRLEN (QPEER_PEER_ID_TEXT_LEN + 1)

/** A peer ID, by value. */
typedef struct qpeer_peer_id_s {
  uint8_t key[QPEER_PEER_ID_LEN]; /* Ed25519 public key */
} qpeer_peer_id_t;

/**
 * `qpeer_peer_id_parse` parses the text form |text| (NUL-terminated) into
 * |*ppid|. Upper and lower case are accepted; nothing else is: no spaces,
 * separators or padding. |*ppid| is written only on success. Returns 0,
 * UV_EINVAL for NULL arguments, QPEER_EBADPEERID for a wrong length, a
 * first character other than 'p' or 'P', a character outside the base32
 * alphabet or nonzero unused bits in the last character, or
 * QPEER_EPEERIDCHECK when the checksum does not match (a typo).
 */
QPEER_EXTERN int qpeer_peer_id_parse(qpeer_peer_id_t *ppid, const char *text);

/**
 * `qpeer_peer_id_format` writes the text form of |pid| (lower case) and a
 * NUL into |buf|. Returns QPEER_PEER_ID_TEXT_LEN, UV_EINVAL for NULL
 * arguments, or UV_ENOBUFS (nothing written) when |buflen| is below
 * QPEER_PEER_ID_STRLEN.
 */
QPEER_EXTERN int qpeer_peer_id_format(const qpeer_peer_id_t *pid, char *buf,
                                      size_t buflen);

/** `qpeer_peer_id_equal` returns nonzero when |a| and |b| are the same
 * (zero if either is NULL). */
QPEER_EXTERN int qpeer_peer_id_equal(const qpeer_peer_id_t *a,
                                     const qpeer_peer_id_t *b);

/** An identity: a key pair plus the self-signed certificate made from it.
 * Reference-counted; shared by endpoints and connections. */
typedef struct qpeer_identity_s qpeer_identity_t;

/**
 * `qpeer_identity_generate` makes a fresh Ed25519 identity and its
 * self-signed certificate. |*pid| gets a reference owned by the caller.
 * Returns 0, UV_EINVAL, UV_ENOMEM or QPEER_ETLS.
 */
QPEER_EXTERN int qpeer_identity_generate(qpeer_identity_t **pid);

/**
 * `qpeer_identity_load` reads a PEM private key ("PRIVATE KEY", unencrypted
 * PKCS#8, Ed25519) from |path| and makes a fresh self-signed certificate
 * for it. The file must be a regular file of at most 64 KiB with no
 * permission bits for group or others. This is blocking file I/O; call it
 * at start-up. |*pid| gets a reference owned by the caller. Returns 0,
 * UV_EINVAL, UV_ENOENT (or another file-system error such as UV_EACCES or
 * UV_EISDIR), QPEER_EKEYPERM, QPEER_EKEYFILE for anything that is not an
 * Ed25519 private key, UV_ENOMEM or QPEER_ETLS.
 */
QPEER_EXTERN int qpeer_identity_load(qpeer_identity_t **pid, const char *path);

/**
 * `qpeer_identity_save` writes the private key of |id| as PEM (unencrypted
 * PKCS#8, the format qpeer_identity_load reads) to |path| atomically: a
 * temporary file "<path>.tmp.XXXXXX" in the same directory, mode 0600,
 * fsync, then rename over |path|. Blocking. Returns 0, UV_EINVAL, a
 * file-system error code (UV_ENOENT, UV_EACCES, ...), UV_ENOMEM or
 * QPEER_ETLS.
 */
QPEER_EXTERN int qpeer_identity_save(const qpeer_identity_t *id,
                                     const char *path);

/** `qpeer_identity_get_peer_id` returns the identity's peer ID (borrowed,
 * valid while the identity is referenced). */
QPEER_EXTERN const qpeer_peer_id_t *
qpeer_identity_get_peer_id(const qpeer_identity_t *id);

/** `qpeer_identity_ref` adds a reference and returns |id|. */
QPEER_EXTERN qpeer_identity_t *qpeer_identity_ref(qpeer_identity_t *id);

/** `qpeer_identity_unref` drops a reference; the last one frees it. */
QPEER_EXTERN void qpeer_identity_unref(qpeer_identity_t *id);

#endif /* QPEER_IDENTITY_H */
