/* SPDX-License-Identifier: MIT */
/*
 * Network-change sets (see netset.h; pure): the interface-address set
 * (normalize, compare) and the candidate-set difference the listener uses
 * to tell what it must announce and withdraw.
 */
#include <string.h>

#include "core/addr.h"
#include "peer/netset.h"

/* cmp_addr orders normalized addresses: family, then address bytes, then
 * the IPv6 scope (two link-local addresses on two interfaces differ). */
static int cmp_addr(const struct sockaddr_storage *a,
                    const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family)
    return a->ss_family < b->ss_family ? -1 : 1;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a;
    const struct sockaddr_in *y = (const struct sockaddr_in *)b;
    return memcmp(&x->sin_addr, &y->sin_addr, sizeof(x->sin_addr));
  } else {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    int r = memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
    if (r)
      return r;
    if (x->sin6_scope_id != y->sin6_scope_id)
      return x->sin6_scope_id < y->sin6_scope_id ? -1 : 1;
    return 0;
  }
}

size_t qpeer__netset_norm(struct sockaddr_storage *set, size_t n) {
  size_t i, j, k = 0;
  for (i = 0; i < n; i++) {
    struct sockaddr_storage a;
    if (set[i].ss_family != AF_INET && set[i].ss_family != AF_INET6)
      continue;
    qpeer__addr_normalize(&a, (const struct sockaddr *)&set[i]);
    qpeer__addr_set_port((struct sockaddr *)&a, 0);
    if (a.ss_family == AF_INET6)
      ((struct sockaddr_in6 *)&a)->sin6_flowinfo = 0;
    /* Insertion sort: the sets are small (QPEER__NETSET_MAX). */
    for (j = k; j > 0 && cmp_addr(&set[j - 1], &a) > 0; j--)
      set[j] = set[j - 1];
    if (j > 0 && cmp_addr(&set[j - 1], &a) == 0) {
      /* A duplicate: undo the shift. */
      for (; j < k; j++)
        set[j] = set[j + 1];
      continue;
    }
    set[j] = a;
    k++;
  }
  return k;
}

int qpeer__netset_equal(const struct sockaddr_storage *a, size_t na,
                        const struct sockaddr_storage *b, size_t nb) {
  size_t i;
  if (na != nb)
    return 0;
  for (i = 0; i < na; i++)
    if (cmp_addr(&a[i], &b[i]) != 0)
      return 0;
  return 1;
}

/* find returns the index of the candidate with |c|'s address in |set|, or
 * |n| when there is none. */
static size_t find(const qpeer_candidate_t *set, size_t n,
                   const qpeer_candidate_t *c) {
  size_t i;
  for (i = 0; i < n; i++)
    if (qpeer__addr_equal((const struct sockaddr *)&set[i].addr,
                          (const struct sockaddr *)&c->addr))
      return i;
  return n;
}

int qpeer__canddiff_compute(qpeer__canddiff *d, const qpeer_candidate_t *old,
                            size_t nold, const qpeer_candidate_t *cur,
                            size_t ncur) {
  size_t i, j;
  memset(d, 0, sizeof(*d));
  if (nold > QPEER__CANDDIFF_MAX)
    nold = QPEER__CANDDIFF_MAX;
  if (ncur > QPEER__CANDDIFF_MAX)
    ncur = QPEER__CANDDIFF_MAX;
  for (i = 0; i < ncur; i++) {
    j = find(old, nold, &cur[i]);
    if (j == nold)
      d->added[d->nadded++] = i;
    else if (old[j].type != cur[i].type || old[j].priority != cur[i].priority)
      d->retyped[d->nretyped++] = i;
  }
  for (i = 0; i < nold; i++)
    if (find(cur, ncur, &old[i]) == ncur)
      d->removed[d->nremoved++] = i;
  return d->nadded || d->nremoved || d->nretyped;
}
