/*
 * lib/locking/wait.ts - wait queues.
 *
 * Models include/linux/wait.h and kernel/sched/wait.c. A thread waiting
 * for a condition puts itself on the queue, sleeps, and re-checks the
 * condition each time it is woken; whoever makes the condition true calls
 * wake_up() after doing so. Simplified: every wait is non-exclusive (no
 * wait_event_exclusive, no custom wake functions), so wake_up() and
 * wake_up_all() both wake every waiter; a woken waiter is taken off the
 * queue at once (as autoremove_wake_function does). There are no signals,
 * so the _interruptible/_killable forms behave like the plain ones.
 *
 * A condition that is already true costs no yield. A waiter whose
 * condition nobody makes true is a lost wake-up: when nothing else can
 * run, Scheduler.run() reports it as a DeadlockError naming the queue.
 */
import { current, might_sleep, schedule, wake_up_process, type Sleepable, type Thread } from '../sim/sched.js';
import type {} from '../../include/linux/wait.js';   /* the declaration completed below */

/** A wait queue head. */
export class wait_queue_head {
  readonly waitKind = 'wait queue';
  readonly head: Thread[] = [];     /* sleeping waiters, in arrival order */

  constructor(readonly name: string) {}
}

/* struct wait_queue_head: include/ declares it with its name only; its members are this class's */
type wait_queue_head_class = wait_queue_head;
declare module '../../include/linux/wait.js' {
  interface wait_queue_head extends wait_queue_head_class {}
}

/** init_waitqueue_head() - empty @wq (the constructor already does). */
export function init_waitqueue_head(wq: wait_queue_head): void {
  wq.head.length = 0;
}

function finish_wait(wq: wait_queue_head, t: Thread): void {
  const i = wq.head.indexOf(t);
  if (i >= 0) wq.head.splice(i, 1);
}

/**
 * wait_event() - sleep on @wq until @cond() is true.
 * @wq: the queue wakers will call wake_up() on.
 * @cond: evaluated before sleeping and after each wake-up; no side effects.
 *
 * Context: may sleep; a BUG in atomic context.
 */
export function* wait_event(wq: wait_queue_head, cond: () => boolean): Sleepable {
  might_sleep();
  if (cond()) return;
  const t = current();
  for (;;) {
    wq.head.push(t);
    try {
      yield* schedule(wq);
    } finally {
      finish_wait(wq, t);
    }
    if (cond()) return;
  }
}

/**
 * wait_event_killable() - wait_event() that a fatal signal could end;
 * signals are not modelled. Context: may sleep. Return: 0.
 */
export function* wait_event_killable(wq: wait_queue_head, cond: () => boolean): Sleepable<number> {
  yield* wait_event(wq, cond);
  return 0;
}

/**
 * wait_event_timeout() - wait_event() for at most @timeout_ns.
 * @wq: the queue.
 * @cond: the condition.
 * @timeout_ns: relative timeout in simulated ns.
 *
 * On timeout the thread's clock has advanced by @timeout_ns.
 * Context: may sleep; a BUG in atomic context.
 * Return: as Linux (in ns instead of jiffies): 0 if @cond is still false
 * when the timeout elapsed, 1 if it became true just as it elapsed, else
 * the ns that were left (>= 1).
 */
export function* wait_event_timeout(wq: wait_queue_head, cond: () => boolean, timeout_ns: number): Sleepable<number> {
  might_sleep();
  const t = current();
  const deadline = t.vtime + timeout_ns;
  if (cond()) return Math.max(1, timeout_ns);
  for (;;) {
    if (t.vtime >= deadline) return 0;
    wq.head.push(t);
    let timedOut: boolean;
    try {
      timedOut = yield* schedule(wq, deadline);
    } finally {
      finish_wait(wq, t);
    }
    if (cond()) return Math.max(1, deadline - t.vtime);
    if (timedOut) return 0;
  }
}

/**
 * wake_up() - wake the waiters of @wq so they re-check their condition.
 * All waits are non-exclusive, so this wakes them all (= wake_up_all()).
 * Context: any, including atomic; never sleeps.
 */
export function wake_up(wq: wait_queue_head): void {
  wake_up_all(wq);
}

/**
 * wake_up_all() - wake every waiter of @wq, oldest first.
 * Context: any; never sleeps.
 */
export function wake_up_all(wq: wait_queue_head): void {
  if (wq.head.length === 0) return;
  for (const t of wq.head.splice(0)) wake_up_process(t);
}

/** wake_up_interruptible(): wake_up() (no signals are modelled). */
export const wake_up_interruptible = wake_up;

/**
 * waitqueue_active() - does @wq have sleeping waiters?
 * Context: any. Return: true if at least one thread sleeps on it.
 */
export function waitqueue_active(wq: wait_queue_head): boolean {
  return wq.head.length !== 0;
}
