/* SPDX-License-Identifier: MIT */
/*
 * Test certificates made at run time with the GnuTLS API: a private CA, a
 * server certificate for "relay.test" and 127.0.0.1 signed by it, and a
 * second, unrelated CA. All keys are ECDSA P-256; every certificate is
 * valid from one hour ago until one day from now. Nothing is checked in.
 */
#ifndef QPEER_TEST_CERTS_H
#define QPEER_TEST_CERTS_H

#define QPT_CERTS_PATHLEN 512

/* The DNS name and IP address the server certificate is issued for. */
#define QPT_CERTS_DNS_NAME "relay.test"
#define QPT_CERTS_IP_ADDR "127.0.0.1"

typedef struct qpt_certs_s {
  char dir[QPT_CERTS_PATHLEN - 64];       /* private temp directory */
  char ca_file[QPT_CERTS_PATHLEN];        /* PEM: the private CA (CA:TRUE) */
  char cert_file[QPT_CERTS_PATHLEN];      /* PEM: server leaf, CA-signed */
  char key_file[QPT_CERTS_PATHLEN];       /* PEM: its key (PKCS#8, 0600) */
  char chain_file[QPT_CERTS_PATHLEN];     /* PEM: leaf then CA */
  char other_ca_file[QPT_CERTS_PATHLEN];  /* PEM: an unrelated CA */
} qpt_certs_t;

/* qpt_certs_make creates a fresh temp directory, generates the keys and
 * certificates and writes the PEM files named in |c|. It fails the test
 * (cmocka assert) on any error. Blocking; call it outside the loop. */
void qpt_certs_make(qpt_certs_t *c);

/* qpt_certs_remove deletes the files and the directory. */
void qpt_certs_remove(qpt_certs_t *c);

#endif /* QPEER_TEST_CERTS_H */
