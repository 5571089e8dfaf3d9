/* SPDX-License-Identifier: MIT */
/*
 * An intrusive circular doubly-linked list (libuv's QUEUE idea, typed).
 * A list head is a qpeer__list; an element embeds one. All operations are
 * O(1); nothing allocates.
 */
#ifndef QPEER_CORE_LIST_H
#define QPEER_CORE_LIST_H

#include <stddef.h>

typedef struct qpeer__list {
  struct qpeer__list *next; /* next element, or the head */
  struct qpeer__list *prev; /* previous element, or the head */
} qpeer__list;

static inline void qpeer__list_init(qpeer__list *l) { l->next = l->prev = l; }

static inline int qpeer__list_empty(const qpeer__list *l) {
  return l->next == l;
}

/* qpeer__list_linked says whether |e| is currently in a list (requires
 * that unlinked elements were initialised or removed with _remove). */
static inline int qpeer__list_linked(const qpeer__list *e) {
  return e->next != e && e->next != NULL;
}

static inline void qpeer__list_insert_tail(qpeer__list *head,
                                           qpeer__list *e) {
  e->prev = head->prev;
  e->next = head;
  head->prev->next = e;
  head->prev = e;
}

static inline void qpeer__list_remove(qpeer__list *e) {
  e->prev->next = e->next;
  e->next->prev = e->prev;
  e->next = e->prev = e;
}

static inline qpeer__list *qpeer__list_head(const qpeer__list *l) {
  return l->next == l ? NULL : l->next;
}

#endif /* QPEER_CORE_LIST_H */
