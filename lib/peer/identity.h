/* SPDX-License-Identifier: MIT */
/*
 * Internal side of the identity module: the TLS credentials an identity
 * carries, and extraction of a peer ID from the certificate a peer
 * presented. The QUIC layer uses these to authenticate pinned peers.
 */
#ifndef QPEER_PEER_IDENTITY_H
#define QPEER_PEER_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>

#include "qpeer/identity.h"

/* qpeer__identity_creds returns the certificate credentials of |id|: its
 * self-signed Ed25519 certificate and private key, ready for
 * gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, ...). Borrowed:
 * valid while |id| is referenced; take a reference for as long as a
 * session uses them. The credentials are never modified after creation,
 * so sessions on several threads may share them. */
gnutls_certificate_credentials_t
qpeer__identity_creds(const qpeer_identity_t *id);

/* qpeer__peer_id_from_der sets |*ppid| to the Ed25519 public key of the
 * DER-encoded X.509 certificate |der| (|derlen| bytes). Only the key is
 * read: the certificate's own signature, names and dates are not checked,
 * because a pinned peer is authenticated by the TLS CertificateVerify
 * signature made with that key. Returns 0, UV_EINVAL for NULL arguments,
 * UV_ENOMEM, or QPEER_ECERT when |der| does not parse or its key is not
 * Ed25519. */
int qpeer__peer_id_from_der(qpeer_peer_id_t *ppid, const uint8_t *der,
                            size_t derlen);

/* qpeer__peer_id_from_session sets |*ppid| from the leaf certificate the
 * peer of |s| presented (gnutls_certificate_get_peers). Call it once the
 * handshake has received the peer's Certificate and CertificateVerify.
 * Returns 0, UV_EINVAL, UV_ENOMEM, or QPEER_ECERT when the peer sent no
 * X.509 certificate or its key is not Ed25519. */
int qpeer__peer_id_from_session(qpeer_peer_id_t *ppid, gnutls_session_t s);

#endif /* QPEER_PEER_IDENTITY_H */
