/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for tools/relayd/access.c: every auth mode against every
 * combination of token result and peer-ID result, the reason and status
 * reported, and the allowlist lookup.
 */
#include "access.h"
#include "relayd_test.h"

static const char *decide(relayd_auth_mode a, relayd_token_err te, int sent,
                          relayd_peer_check p, int *st) {
  return relayd_access_decide(a, te, sent, p, st);
}

static void test_access_jwt(void **state) {
  int st;
  (void)state;
  assert_null(
      decide(RELAYD_AUTH_JWT, RELAYD_TOKEN_OK, 1, RELAYD_PEER_MISSING, &st));
  assert_string_equal(decide(RELAYD_AUTH_JWT, RELAYD_TOKEN_MISSING, 0,
                             RELAYD_PEER_ALLOWED, &st),
                      "token_missing");
  assert_int_equal(st, 401);
  assert_string_equal(decide(RELAYD_AUTH_JWT, RELAYD_TOKEN_WRONG_SCOPE, 1,
                             RELAYD_PEER_MISSING, &st),
                      "token_wrong_scope");
  assert_int_equal(st, 403);
}

static void test_access_peerid(void **state) {
  int st;
  (void)state;
  assert_null(decide(RELAYD_AUTH_PEERID, RELAYD_TOKEN_MISSING, 0,
                     RELAYD_PEER_ALLOWED, &st));
  assert_string_equal(
      decide(RELAYD_AUTH_PEERID, RELAYD_TOKEN_OK, 1, RELAYD_PEER_MISSING, &st),
      "peer_id_missing");
  assert_int_equal(st, 401);
  assert_string_equal(
      decide(RELAYD_AUTH_PEERID, RELAYD_TOKEN_OK, 1, RELAYD_PEER_DENIED, &st),
      "peer_not_allowed");
  assert_int_equal(st, 403);
}

static void test_access_both(void **state) {
  int st;
  (void)state;
  assert_null(
      decide(RELAYD_AUTH_BOTH, RELAYD_TOKEN_OK, 1, RELAYD_PEER_ALLOWED, &st));
  /* The token is judged first. */
  assert_string_equal(decide(RELAYD_AUTH_BOTH, RELAYD_TOKEN_EXPIRED, 1,
                             RELAYD_PEER_DENIED, &st),
                      "token_expired");
  assert_int_equal(st, 401);
  assert_string_equal(
      decide(RELAYD_AUTH_BOTH, RELAYD_TOKEN_OK, 1, RELAYD_PEER_DENIED, &st),
      "peer_not_allowed");
  assert_int_equal(st, 403);
  assert_string_equal(
      decide(RELAYD_AUTH_BOTH, RELAYD_TOKEN_OK, 1, RELAYD_PEER_MISSING, &st),
      "peer_id_missing");
}

static void test_access_either(void **state) {
  int st;
  (void)state;
  assert_null(
      decide(RELAYD_AUTH_EITHER, RELAYD_TOKEN_OK, 1, RELAYD_PEER_MISSING, &st));
  assert_null(decide(RELAYD_AUTH_EITHER, RELAYD_TOKEN_MISSING, 0,
                     RELAYD_PEER_ALLOWED, &st));
  assert_null(decide(RELAYD_AUTH_EITHER, RELAYD_TOKEN_EXPIRED, 1,
                     RELAYD_PEER_ALLOWED, &st));
  /* A token was sent: its problem is reported. */
  assert_string_equal(decide(RELAYD_AUTH_EITHER, RELAYD_TOKEN_BAD_SIGNATURE, 1,
                             RELAYD_PEER_DENIED, &st),
                      "token_bad_signature");
  /* No token, an identity that is not allowed: the peer is reported. */
  assert_string_equal(decide(RELAYD_AUTH_EITHER, RELAYD_TOKEN_MISSING, 0,
                             RELAYD_PEER_DENIED, &st),
                      "peer_not_allowed");
  assert_int_equal(st, 403);
  /* Nothing at all: ask for a token. */
  assert_string_equal(decide(RELAYD_AUTH_EITHER, RELAYD_TOKEN_MISSING, 0,
                             RELAYD_PEER_MISSING, &st),
                      "token_missing");
  assert_int_equal(st, 401);
}

static void test_access_none_and_unknown(void **state) {
  int st;
  (void)state;
  assert_null(decide(RELAYD_AUTH_NONE, RELAYD_TOKEN_MISSING, 0,
                     RELAYD_PEER_MISSING, &st));
  assert_non_null(decide((relayd_auth_mode)99, RELAYD_TOKEN_OK, 1,
                         RELAYD_PEER_ALLOWED, &st));
  assert_int_equal(st, 401);
}

static void test_access_allowlist(void **state) {
  qpeer_peer_id_t allow[2], a, other;
  (void)state;
  memset(&allow[0], 1, sizeof(allow[0]));
  memset(&allow[1], 2, sizeof(allow[1]));
  memset(&a, 2, sizeof(a));
  memset(&other, 3, sizeof(other));
  assert_int_equal(relayd_peer_check_id(NULL, allow, 2), RELAYD_PEER_MISSING);
  assert_int_equal(relayd_peer_check_id(&a, allow, 2), RELAYD_PEER_ALLOWED);
  assert_int_equal(relayd_peer_check_id(&other, allow, 2), RELAYD_PEER_DENIED);
  assert_int_equal(relayd_peer_check_id(&a, allow, 0), RELAYD_PEER_DENIED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_access_jwt),
      cmocka_unit_test(test_access_peerid),
      cmocka_unit_test(test_access_both),
      cmocka_unit_test(test_access_either),
      cmocka_unit_test(test_access_none_and_unknown),
      cmocka_unit_test(test_access_allowlist),
  };
  return cmocka_run_group_tests_name("relayd_access", tests, NULL, NULL);
}
