/* SPDX-License-Identifier: MIT */
/*
 * TLS 1.3 for QUIC with GnuTLS: client and server session set-up, ALPN,
 * and peer authentication in the four modes (pinned peer ID, WebPKI,
 * private CA, none). Verification runs in one GnuTLS verify callback that
 * records why it refused, so the connection reports a precise error.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <string.h>

#include "peer/control.h"
#include "peer/identity.h"
#include "quic/handles.h"

static const char priority[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
    "+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
    "+GROUP-SECP384R1:%DISABLE_TLS13_COMPAT_MODE";

/* The parsed form of |priority|, shared by every session of the process.
 * gnutls_priority_set_direct() would parse the string again for each
 * session and keep a private copy (about 8 KiB) for the session's life;
 * a session instead takes a counted reference to this one. It is made on
 * first use (again after a failure) and kept until exit, like GnuTLS's
 * own global state; the mutex covers loops on several threads. */
static uv_once_t priority_once = UV_ONCE_INIT;
static uv_mutex_t priority_mutex;
static gnutls_priority_t priority_cache;

static void priority_mutex_init(void) {
  if (uv_mutex_init(&priority_mutex) != 0)
    abort(); /* As libuv does when a mutex cannot be made. */
}

static int set_priority(gnutls_session_t s) {
  gnutls_priority_t p;
  int r = 0;
  uv_once(&priority_once, priority_mutex_init);
  uv_mutex_lock(&priority_mutex);
  if (!priority_cache &&
      (r = gnutls_priority_init2(&p, priority, NULL, 0)) >= 0)
    priority_cache = p;
  p = priority_cache;
  uv_mutex_unlock(&priority_mutex);
  return r < 0 ? r : gnutls_priority_set(s, p);
}

static qpeer__conn *conn_of_session(gnutls_session_t s) {
  ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(s);
  return QPEER__CONTAINER_OF(ref, qpeer__conn, conn_ref);
}

static int allowed(qpeer__ep *ep, const qpeer_peer_id_t *pid) {
  size_t i;
  for (i = 0; i < ep->nallow; i++)
    if (qpeer_peer_id_equal(&ep->allow[i], pid))
      return 1;
  if (ep->lopts.allow_cb)
    return ep->lopts.allow_cb(ep->handle, pid) != 0;
  return ep->nallow == 0;
}

static int policy_set(const qpeer__ep *ep) {
  return ep->nallow > 0 || ep->lopts.allow_cb ||
         ep->lopts.require_client_identity;
}

static int verify_server_side(qpeer__conn *c, gnutls_session_t s) {
  qpeer__ep *ep = c->ep;
  qpeer_peer_id_t pid;
  if (qpeer__peer_id_from_session(&pid, s) != 0) {
    if (!policy_set(ep))
      return 0; /* An anonymous client is fine without a policy. */
    c->verify_err = QPEER_EREFUSED;
    return -1;
  }
  if (!allowed(ep, &pid)) {
    c->verify_err = QPEER_EREFUSED;
    return -1;
  }
  c->peer_id = pid;
  c->have_peer_id = 1;
  return 0;
}

static int verify_client_side(qpeer__conn *c, gnutls_session_t s) {
  qpeer_peer_id_t pid;
  unsigned int status = 0;
  int have = qpeer__peer_id_from_session(&pid, s) == 0;
  switch (c->auth) {
  case QPEER_AUTH_PEER_ID:
    if (!have) {
      c->verify_err = QPEER_ECERT;
      return -1;
    }
    if (!qpeer_peer_id_equal(&pid, &c->expected_id)) {
      c->verify_err = QPEER_EPEERID;
      return -1;
    }
    break;
  case QPEER_AUTH_WEBPKI:
  case QPEER_AUTH_CA_FILE: {
    if (gnutls_certificate_verify_peers3(s, c->verify_host, &status) < 0 ||
        status != 0) {
      c->verify_err = QPEER_ECERT;
      return -1;
    }
    break;
  }
  default:
    break;
  }
  if (have) {
    c->peer_id = pid;
    c->have_peer_id = 1;
  }
  return 0;
}

static int verify_cb(gnutls_session_t s) {
  qpeer__conn *c = conn_of_session(s);
  return c->server ? verify_server_side(c, s) : verify_client_side(c, s);
}

static int is_ip_literal(const char *name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name, buf) == 1 ||
         inet_pton(AF_INET6, name, buf) == 1;
}

int qpeer__tls_client_init(qpeer__conn *c, const qpeer_connect_options_t *o) {
  qpeer__ep *ep = c->ep;
  gnutls_certificate_credentials_t cred = NULL;
  gnutls_datum_t alpn[16];
  size_t i, n = QPEER__MIN(o->nalpn, QPEER__ARRAY_SIZE(alpn));
  int r;

  r = gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_ENABLE_EARLY_DATA |
                               GNUTLS_NO_END_OF_EARLY_DATA);
  if (r < 0)
    return qpeer__err_from_gnutls(r);
  if ((r = set_priority(c->tls)) < 0 ||
      (r = ngtcp2_crypto_gnutls_configure_client_session(c->tls)) != 0)
    return QPEER_ETLS;
  gnutls_session_set_ptr(c->tls, &c->conn_ref);
  switch (o->auth) {
  case QPEER_AUTH_WEBPKI:
    if (!ep->webpki_cred) {
      if ((r = gnutls_certificate_allocate_credentials(&ep->webpki_cred)) < 0)
        return qpeer__err_from_gnutls(r);
      if ((r = gnutls_certificate_set_x509_system_trust(ep->webpki_cred)) < 0)
        qpeer__log(QPEER_LOG_WARN, "no system trust store: %s",
                   gnutls_strerror(r));
    }
    cred = ep->webpki_cred;
    break;
  case QPEER_AUTH_CA_FILE:
    if ((r = gnutls_certificate_allocate_credentials(&c->own_cred)) < 0)
      return qpeer__err_from_gnutls(r);
    r = gnutls_certificate_set_x509_trust_file(c->own_cred, o->ca_file,
                                               GNUTLS_X509_FMT_PEM);
    if (r <= 0) {
      qpeer__log(QPEER_LOG_ERROR, "cannot use CA file %s: %s", o->ca_file,
                 r < 0 ? gnutls_strerror(r) : "no certificates");
      return QPEER_ECERT;
    }
    cred = c->own_cred;
    break;
  default:
    cred = qpeer__identity_creds(ep->identity);
    break;
  }
  if ((r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, cred)) < 0)
    return qpeer__err_from_gnutls(r);
  for (i = 0; i < n; i++) {
    alpn[i].data = (unsigned char *)o->alpn[i];
    alpn[i].size = (unsigned int)strlen(o->alpn[i]);
  }
  if ((r = gnutls_alpn_set_protocols(c->tls, alpn, (unsigned)n,
                                     GNUTLS_ALPN_MANDATORY)) < 0)
    return qpeer__err_from_gnutls(r);
  if (o->server_name && !is_ip_literal(o->server_name)) {
    gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, o->server_name,
                           strlen(o->server_name));
  }
  if (o->server_name && !(c->verify_host = qpeer__strdup(o->server_name)))
    return UV_ENOMEM;
  if ((r = qpeer__ctrl_tls_register(c, c->tls)) != 0)
    return r;
  gnutls_session_set_verify_function(c->tls, verify_cb);
  return 0;
}

int qpeer__tls_server_init(qpeer__conn *c) {
  qpeer__ep *ep = c->ep;
  gnutls_certificate_credentials_t cred;
  int r;
  c->auth = QPEER_AUTH_PEER_ID;
  r = gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET |
                               GNUTLS_NO_END_OF_EARLY_DATA);
  if (r < 0)
    return qpeer__err_from_gnutls(r);
  if ((r = set_priority(c->tls)) < 0 ||
      (r = ngtcp2_crypto_gnutls_configure_server_session(c->tls)) != 0)
    return QPEER_ETLS;
  gnutls_session_set_ptr(c->tls, &c->conn_ref);
  cred = ep->server_cred ? ep->server_cred
                         : qpeer__identity_creds(ep->identity);
  if ((r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, cred)) < 0)
    return qpeer__err_from_gnutls(r);
  gnutls_certificate_server_set_request(
      c->tls, policy_set(ep) ? GNUTLS_CERT_REQUIRE : GNUTLS_CERT_REQUEST);
  if ((r = gnutls_alpn_set_protocols(c->tls, ep->alpn, (unsigned)ep->nalpn,
                                     GNUTLS_ALPN_MANDATORY |
                                         GNUTLS_ALPN_SERVER_PRECEDENCE)) < 0)
    return qpeer__err_from_gnutls(r);
  gnutls_session_set_verify_function(c->tls, verify_cb);
  return qpeer__ctrl_tls_register(c, c->tls);
}

void qpeer__tls_on_handshake(qpeer__conn *c) {
  gnutls_datum_t d;
  qpeer__free(c->alpn);
  c->alpn = NULL;
  if (gnutls_alpn_get_selected_protocol(c->tls, &d) == 0)
    c->alpn = qpeer__strndup((const char *)d.data, d.size);
  if (c->server && !c->have_peer_id && policy_set(c->ep))
    c->verify_err = QPEER_EREFUSED;
}

int qpeer__tls_error_status(qpeer__conn *c, int liberr) {
  (void)liberr;
  if (c->verify_err)
    return c->verify_err;
  return QPEER_EHANDSHAKE;
}
