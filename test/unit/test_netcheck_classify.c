/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for netcheck's pure classifiers (lib/nat/netcheck_classify.c):
 * mapping behaviour from observations, RFC 5780 filtering from test
 * outcomes (including servers that ignore CHANGE-REQUEST), address
 * classes, and the double-NAT rules with port-mapping and path evidence.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "nat/netcheck.h"

static struct sockaddr_storage A(const char *text) {
  struct sockaddr_storage ss;
  assert_int_equal(qpeer_addr_parse(&ss, text), 0);
  return ss;
}

static qpeer__nc_obs O(const char *server, const char *mapped) {
  qpeer__nc_obs o;
  o.server = A(server);
  o.mapped = A(mapped);
  return o;
}

static void test_mapping(void **state) {
  qpeer__nc_obs o[4];
  memset(o, 0, sizeof(o));
  (void)state;
  assert_int_equal(qpeer__netcheck_classify_mapping(o, 0, 0),
                   QPEER_NAT_MAPPING_UNKNOWN);
  /* One server: nothing to compare. */
  o[0] = O("203.0.113.10:3478", "198.51.100.7:40000");
  assert_int_equal(qpeer__netcheck_classify_mapping(o, 1, 0),
                   QPEER_NAT_MAPPING_UNKNOWN);
  /* ... unless the address is our own. */
  assert_int_equal(qpeer__netcheck_classify_mapping(o, 1, 1),
                   QPEER_NAT_MAPPING_NONE);
  /* Two IPs, same mapping: EIM. */
  o[1] = O("203.0.113.11:3478", "198.51.100.7:40000");
  assert_int_equal(qpeer__netcheck_classify_mapping(o, 2, 0),
                   QPEER_NAT_MAPPING_ENDPOINT_INDEPENDENT);
  /* Two ports of one IP, same mapping: cannot tell EIM from ADM. */
  o[1] = O("203.0.113.10:3479", "198.51.100.7:40000");
  assert_int_equal(qpeer__netcheck_classify_mapping(o, 2, 0),
                   QPEER_NAT_MAPPING_UNKNOWN);
  /* Two IPs, different mappings, no same-IP pair: endpoint-dependent. */
  o[1] = O("203.0.113.11:3478", "198.51.100.7:40001");
  assert_int_equal(qpeer__netcheck_classify_mapping(o, 2, 0),
                   QPEER_NAT_MAPPING_ENDPOINT_DEPENDENT);
  /* RFC 5780 tests I, II, III: X1 != X2 == X3 is address-dependent. */
  o[2] = O("203.0.113.11:3479", "198.51.100.7:40001");
  assert_int_equal(qpeer__netcheck_classify_mapping(o, 3, 0),
                   QPEER_NAT_MAPPING_ADDRESS_DEPENDENT);
  /* X1 != X2 != X3: address-and-port-dependent ("symmetric"). */
  o[2] = O("203.0.113.11:3479", "198.51.100.7:40002");
  assert_int_equal(qpeer__netcheck_classify_mapping(o, 3, 0),
                   QPEER_NAT_MAPPING_ADDRESS_AND_PORT_DEPENDENT);
  /* X1 == X2 == X3: EIM. */
  o[1] = O("203.0.113.11:3478", "198.51.100.7:40000");
  o[2] = O("203.0.113.11:3479", "198.51.100.7:40000");
  assert_int_equal(qpeer__netcheck_classify_mapping(o, 3, 0),
                   QPEER_NAT_MAPPING_ENDPOINT_INDEPENDENT);
  /* The same server twice with different answers (a rebinding between)
   * is not evidence about destinations. */
  o[1] = O("203.0.113.10:3478", "198.51.100.7:40009");
  assert_int_equal(qpeer__netcheck_classify_mapping(o, 2, 0),
                   QPEER_NAT_MAPPING_UNKNOWN);
  /* IPv6. */
  o[0] = O("[2001:db8::10]:3478", "[2001:db8:1::2]:5000");
  o[1] = O("[2001:db8::11]:3478", "[2001:db8:1::2]:5000");
  assert_int_equal(qpeer__netcheck_classify_mapping(o, 2, 0),
                   QPEER_NAT_MAPPING_ENDPOINT_INDEPENDENT);
}

static void test_filtering(void **state) {
  (void)state;
  assert_int_equal(qpeer__netcheck_classify_filtering(
                       QPEER__NC_TEST_RESPONSE, QPEER__NC_TEST_NO_RESPONSE),
                   QPEER_NAT_FILTERING_ENDPOINT_INDEPENDENT);
  assert_int_equal(qpeer__netcheck_classify_filtering(
                       QPEER__NC_TEST_RESPONSE, QPEER__NC_TEST_RESPONSE),
                   QPEER_NAT_FILTERING_ENDPOINT_INDEPENDENT);
  assert_int_equal(qpeer__netcheck_classify_filtering(
                       QPEER__NC_TEST_NO_RESPONSE, QPEER__NC_TEST_RESPONSE),
                   QPEER_NAT_FILTERING_ADDRESS_DEPENDENT);
  assert_int_equal(
      qpeer__netcheck_classify_filtering(QPEER__NC_TEST_NO_RESPONSE,
                                         QPEER__NC_TEST_NO_RESPONSE),
      QPEER_NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT);
  /* A server with one IP: no response to the port change still proves
   * APDF; a response proves nothing about other IPs. */
  assert_int_equal(
      qpeer__netcheck_classify_filtering(QPEER__NC_TEST_UNUSABLE,
                                         QPEER__NC_TEST_NO_RESPONSE),
      QPEER_NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT);
  assert_int_equal(qpeer__netcheck_classify_filtering(
                       QPEER__NC_TEST_UNUSABLE, QPEER__NC_TEST_RESPONSE),
                   QPEER_NAT_FILTERING_UNKNOWN);
  assert_int_equal(qpeer__netcheck_classify_filtering(
                       QPEER__NC_TEST_NO_RESPONSE, QPEER__NC_TEST_UNUSABLE),
                   QPEER_NAT_FILTERING_UNKNOWN);
  assert_int_equal(qpeer__netcheck_classify_filtering(
                       QPEER__NC_TEST_NOT_RUN, QPEER__NC_TEST_NOT_RUN),
                   QPEER_NAT_FILTERING_UNKNOWN);
}

static void test_filter_outcome(void **state) {
  struct sockaddr_storage s = A("203.0.113.10:3478");
  struct sockaddr_storage o = A("203.0.113.11:3479");
  struct sockaddr_storage o1 = A("203.0.113.10:3479"); /* one-IP server */
  struct sockaddr_storage src;
  const struct sockaddr *S = (void *)&s, *Ot = (void *)&o, *O1 = (void *)&o1;
  unsigned both = QPEER_STUN_CHANGE_IP | QPEER_STUN_CHANGE_PORT;
  (void)state;
  src = A("203.0.113.11:3479");
  assert_int_equal(qpeer__netcheck_filter_outcome(0, S, Ot, (void *)&src,
                                                  both),
                   QPEER__NC_TEST_RESPONSE);
  /* A server that ignored the change answers from its own address. */
  src = s;
  assert_int_equal(qpeer__netcheck_filter_outcome(0, S, Ot, (void *)&src,
                                                  both),
                   QPEER__NC_TEST_UNUSABLE);
  /* Port change: same IP, other port. */
  src = A("203.0.113.10:3479");
  assert_int_equal(qpeer__netcheck_filter_outcome(
                       0, S, Ot, (void *)&src, QPEER_STUN_CHANGE_PORT),
                   QPEER__NC_TEST_RESPONSE);
  src = A("203.0.113.11:3479");
  assert_int_equal(qpeer__netcheck_filter_outcome(
                       0, S, Ot, (void *)&src, QPEER_STUN_CHANGE_PORT),
                   QPEER__NC_TEST_UNUSABLE);
  assert_int_equal(qpeer__netcheck_filter_outcome(UV_ETIMEDOUT, S, Ot, NULL,
                                                  both),
                   QPEER__NC_TEST_NO_RESPONSE);
  assert_int_equal(qpeer__netcheck_filter_outcome(QPEER_ESTUN, S, Ot, NULL,
                                                  both),
                   QPEER__NC_TEST_UNUSABLE);
  assert_int_equal(qpeer__netcheck_filter_outcome(UV_ECANCELED, S, Ot, NULL,
                                                  both),
                   QPEER__NC_TEST_NOT_RUN);
  /* One-IP server: the IP change is unusable whatever happened. */
  assert_int_equal(qpeer__netcheck_filter_outcome(UV_ETIMEDOUT, S, O1, NULL,
                                                  both),
                   QPEER__NC_TEST_UNUSABLE);
  assert_int_equal(qpeer__netcheck_filter_outcome(
                       UV_ETIMEDOUT, S, O1, NULL, QPEER_STUN_CHANGE_PORT),
                   QPEER__NC_TEST_NO_RESPONSE);
  assert_int_equal(qpeer__netcheck_filter_outcome(UV_ETIMEDOUT, S, NULL,
                                                  NULL, both),
                   QPEER__NC_TEST_UNUSABLE);
}

static void test_addr_class(void **state) {
  static const struct {
    const char *addr;
    int cls;
  } v[] = {
      {"10.1.2.3:1", QPEER__NC_ADDR_PRIVATE},
      {"172.16.0.1:1", QPEER__NC_ADDR_PRIVATE},
      {"172.31.255.255:1", QPEER__NC_ADDR_PRIVATE},
      {"172.32.0.1:1", QPEER__NC_ADDR_PUBLIC},
      {"192.168.1.1:1", QPEER__NC_ADDR_PRIVATE},
      {"169.254.1.1:1", QPEER__NC_ADDR_PRIVATE},
      {"127.0.0.1:1", QPEER__NC_ADDR_PRIVATE},
      {"0.0.0.0:1", QPEER__NC_ADDR_PRIVATE},
      {"100.64.0.1:1", QPEER__NC_ADDR_SHARED},
      {"100.127.255.254:1", QPEER__NC_ADDR_SHARED},
      {"100.128.0.1:1", QPEER__NC_ADDR_PUBLIC},
      {"100.63.255.255:1", QPEER__NC_ADDR_PUBLIC},
      {"203.0.113.2:1", QPEER__NC_ADDR_PUBLIC},
      {"8.8.8.8:1", QPEER__NC_ADDR_PUBLIC},
      {"[fd00::1]:1", QPEER__NC_ADDR_PRIVATE},
      {"[fe80::1]:1", QPEER__NC_ADDR_PRIVATE},
      {"[::1]:1", QPEER__NC_ADDR_PRIVATE},
      {"[2001:db8::1]:1", QPEER__NC_ADDR_PUBLIC},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    struct sockaddr_storage ss = A(v[i].addr);
    assert_int_equal(qpeer__netcheck_addr_class((void *)&ss), v[i].cls);
  }
}

static qpeer_netcheck_hop_t H(const char *addr, qpeer_netcheck_hop_kind k) {
  qpeer_netcheck_hop_t h;
  memset(&h, 0, sizeof(h));
  if (addr)
    h.addr = A(addr);
  h.kind = k;
  return h;
}

/* A report behind one NAT: EIM, reflexive 203.0.113.2:40000. */
static void natted(qpeer_netcheck_report_t *r) {
  qpeer__netcheck_report_init(r);
  r->udp = 1;
  r->ipv4.tested = r->ipv4.works = 1;
  r->ipv4.reflexive = A("203.0.113.2:40000");
  r->ipv4.mapping = QPEER_NAT_MAPPING_ENDPOINT_INDEPENDENT;
  qpeer__netcheck_classify_double_nat(r);
}

static void test_double_nat_path(void **state) {
  qpeer_netcheck_report_t r;
  qpeer_netcheck_hop_t h[3];
  (void)state;
  natted(&r);
  assert_int_equal(r.double_nat, QPEER_NETCHECK_UNKNOWN);
  assert_int_equal(r.cgnat, QPEER_NETCHECK_UNKNOWN);
  assert_int_equal(r.portmap_status, 1);
  /* Lab "eim": the home router, then the server. */
  h[0] = H("10.0.1.1:0", QPEER_NETCHECK_HOP_ROUTER);
  h[1] = H("203.0.113.10:3478", QPEER_NETCHECK_HOP_DESTINATION);
  qpeer_netcheck_report_set_path(&r, h, 2);
  assert_int_equal(r.double_nat, QPEER_NETCHECK_NO);
  assert_int_equal(r.cgnat, QPEER_NETCHECK_NO);
  assert_int_equal(r.double_nat_evidence, 0);
  /* A public second router. */
  h[1] = H("198.51.100.254:0", QPEER_NETCHECK_HOP_ROUTER);
  qpeer_netcheck_report_set_path(&r, h, 2);
  assert_int_equal(r.double_nat, QPEER_NETCHECK_NO);
  /* Lab "double": home router, CGNAT router, server. */
  h[1] = H("100.64.1.1:0", QPEER_NETCHECK_HOP_ROUTER);
  h[2] = H("203.0.113.10:3478", QPEER_NETCHECK_HOP_DESTINATION);
  qpeer_netcheck_report_set_path(&r, h, 3);
  assert_int_equal(r.double_nat, QPEER_NETCHECK_YES);
  assert_int_equal(r.cgnat, QPEER_NETCHECK_YES);
  assert_int_equal(r.double_nat_evidence, QPEER_NETCHECK_DNAT_PATH_CGNAT);
  assert_int_equal(r.nhops, 3);
  /* Two private routers. */
  h[1] = H("192.168.0.1:0", QPEER_NETCHECK_HOP_ROUTER);
  qpeer_netcheck_report_set_path(&r, h, 3);
  assert_int_equal(r.double_nat, QPEER_NETCHECK_YES);
  assert_int_equal(r.cgnat, QPEER_NETCHECK_UNKNOWN);
  assert_int_equal(r.double_nat_evidence, QPEER_NETCHECK_DNAT_PATH_PRIVATE);
  /* A silent second hop (lab "blocked"): unknown. */
  h[1] = H(NULL, QPEER_NETCHECK_HOP_SILENT);
  qpeer_netcheck_report_set_path(&r, h, 2);
  assert_int_equal(r.double_nat, QPEER_NETCHECK_UNKNOWN);
  /* A public first hop proves nothing either way. */
  h[0] = H("198.51.100.1:0", QPEER_NETCHECK_HOP_ROUTER);
  h[1] = H("100.64.0.1:0", QPEER_NETCHECK_HOP_ROUTER);
  qpeer_netcheck_report_set_path(&r, h, 2);
  assert_int_equal(r.double_nat, QPEER_NETCHECK_UNKNOWN);
  /* No NAT at all. */
  qpeer_netcheck_report_set_path(&r, NULL, 0);
  r.ipv4.mapping = QPEER_NAT_MAPPING_NONE;
  qpeer__netcheck_classify_double_nat(&r);
  assert_int_equal(r.double_nat, QPEER_NETCHECK_NO);
  assert_int_equal(r.cgnat, QPEER_NETCHECK_NO);
  /* More hops than the report holds are cut. */
  {
    qpeer_netcheck_hop_t many[QPEER_NETCHECK_MAX_HOPS + 4];
    size_t i;
    for (i = 0; i < QPEER_NETCHECK_MAX_HOPS + 4; i++)
      many[i] = H(NULL, QPEER_NETCHECK_HOP_SILENT);
    qpeer_netcheck_report_set_path(&r, many, QPEER_NETCHECK_MAX_HOPS + 4);
    assert_int_equal(r.nhops, QPEER_NETCHECK_MAX_HOPS);
  }
}

static void test_double_nat_portmap(void **state) {
  qpeer_netcheck_report_t r;
  struct sockaddr_storage ext;
  qpeer_netcheck_hop_t h[2];
  (void)state;
  natted(&r);
  ext = A("203.0.113.2:41000");
  qpeer_netcheck_report_set_portmap(&r, 0, 1, 3, (void *)&ext);
  assert_int_equal(r.double_nat, QPEER_NETCHECK_NO);
  assert_int_equal(r.portmap_protocol, 1);
  assert_int_equal(r.portmap_answered, 3);
  ext = A("100.64.1.2:41000");
  qpeer_netcheck_report_set_portmap(&r, 0, 2, 2, (void *)&ext);
  assert_int_equal(r.double_nat, QPEER_NETCHECK_YES);
  assert_int_equal(r.cgnat, QPEER_NETCHECK_YES);
  assert_int_equal(r.double_nat_evidence, QPEER_NETCHECK_DNAT_PORTMAP_CGNAT);
  ext = A("192.168.1.50:41000");
  qpeer_netcheck_report_set_portmap(&r, 0, 4, 4, (void *)&ext);
  assert_int_equal(r.double_nat_evidence,
                   QPEER_NETCHECK_DNAT_PORTMAP_PRIVATE);
  assert_int_equal(r.cgnat, QPEER_NETCHECK_UNKNOWN);
  ext = A("198.51.100.9:41000");
  qpeer_netcheck_report_set_portmap(&r, 0, 1, 1, (void *)&ext);
  assert_int_equal(r.double_nat_evidence,
                   QPEER_NETCHECK_DNAT_PORTMAP_MISMATCH);
  assert_int_equal(r.double_nat, QPEER_NETCHECK_YES);
  /* Evidence adds up: a CGNAT hop too. */
  h[0] = H("10.0.1.1:0", QPEER_NETCHECK_HOP_ROUTER);
  h[1] = H("100.64.1.1:0", QPEER_NETCHECK_HOP_ROUTER);
  qpeer_netcheck_report_set_path(&r, h, 2);
  assert_int_equal(r.double_nat_evidence,
                   QPEER_NETCHECK_DNAT_PORTMAP_MISMATCH |
                       QPEER_NETCHECK_DNAT_PATH_CGNAT);
  /* A failed attempt is no evidence. */
  qpeer_netcheck_report_set_path(&r, NULL, 0);
  qpeer_netcheck_report_set_portmap(&r, QPEER_ENOMAPPING, 0, 0, NULL);
  assert_int_equal(r.portmap_status, QPEER_ENOMAPPING);
  assert_int_equal(r.portmap_external.ss_family, AF_UNSPEC);
  assert_int_equal(r.double_nat, QPEER_NETCHECK_UNKNOWN);
  qpeer_netcheck_report_set_portmap(NULL, 0, 0, 0, NULL); /* no crash */
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(qpeer_nat_mapping_name(QPEER_NAT_MAPPING_NONE), "none");
  assert_string_equal(
      qpeer_nat_mapping_name(QPEER_NAT_MAPPING_ADDRESS_AND_PORT_DEPENDENT),
      "address-and-port-dependent");
  assert_string_equal(qpeer_nat_mapping_name((qpeer_nat_mapping)99),
                      "unknown");
  assert_string_equal(
      qpeer_nat_filtering_name(QPEER_NAT_FILTERING_ENDPOINT_INDEPENDENT),
      "endpoint-independent");
  assert_string_equal(qpeer_nat_filtering_name((qpeer_nat_filtering)99),
                      "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mapping),
      cmocka_unit_test(test_filtering),
      cmocka_unit_test(test_filter_outcome),
      cmocka_unit_test(test_addr_class),
      cmocka_unit_test(test_double_nat_path),
      cmocka_unit_test(test_double_nat_portmap),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests_name("netcheck_classify", tests, NULL, NULL);
}
