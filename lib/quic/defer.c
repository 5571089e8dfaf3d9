/* SPDX-License-Identifier: MIT */
/*
 * The defer queue: work that must not run inside the call that caused it
 * (user callbacks, freeing state) is queued here and run from a uv_idle_t
 * on a later loop iteration. The idle handle runs only while work waits.
 */
#include "quic/handles.h"

static void on_idle(uv_idle_t *idle) {
  qpeer__ep *ep = idle->data;
  qpeer__list batch;
  qpeer__list *e;
  /* Run what is queued now; work queued while running waits for the next
   * iteration, so a task that re-queues itself cannot spin forever. */
  qpeer__list_init(&batch);
  if (!qpeer__list_empty(&ep->defer_q)) {
    batch.next = ep->defer_q.next;
    batch.prev = ep->defer_q.prev;
    batch.next->prev = &batch;
    batch.prev->next = &batch;
    qpeer__list_init(&ep->defer_q);
  }
  while ((e = qpeer__list_head(&batch)) != NULL) {
    qpeer__defer *d = QPEER__CONTAINER_OF(e, qpeer__defer, link);
    qpeer__list_remove(e);
    d->run(d);
  }
  if (qpeer__list_empty(&ep->defer_q))
    uv_idle_stop(&ep->defer_idle);
}

void qpeer__defer_init(qpeer__defer *d, void (*run)(qpeer__defer *d)) {
  qpeer__list_init(&d->link);
  d->run = run;
}

void qpeer__defer_push(qpeer__ep *ep, qpeer__defer *d) {
  /* Once the endpoint's idle handle is closing nothing may run any more:
   * its state is about to be freed. */
  if (qpeer__list_linked(&d->link) || ep->idle_closing)
    return;
  qpeer__list_insert_tail(&ep->defer_q, &d->link);
  uv_idle_start(&ep->defer_idle, on_idle);
}

void qpeer__defer_cancel(qpeer__defer *d) {
  if (qpeer__list_linked(&d->link))
    qpeer__list_remove(&d->link);
}

int qpeer__defer_start(qpeer__ep *ep) {
  int r;
  qpeer__list_init(&ep->defer_q);
  r = uv_idle_init(ep->loop, &ep->defer_idle);
  if (r == 0)
    ep->defer_idle.data = ep;
  return r;
}
