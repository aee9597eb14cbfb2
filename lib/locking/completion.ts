/*
 * lib/locking/completion.ts - completions: "wait until X has happened".
 *
 * Models include/linux/completion.h and kernel/sched/completion.c. done
 * counts complete() calls not yet consumed by a waiter; complete_all()
 * sets it to "infinity" so every present and future waiter passes, until
 * reinit_completion(). complete() wakes the oldest waiter; if another
 * thread consumes the count first, the woken one sleeps again. Simplified:
 * no swait queue or lock of its own (one CPU, no preemption in between).
 */
import { current, might_sleep, schedule, wake_up_process, type Sleepable, type Thread } from '../sim/sched.js';
import type {} from '../../include/linux/completion.js';   /* the declaration completed below */

const COMPLETE_ALL = Infinity;

/** A completion. */
export class completion {
  readonly waitKind = 'completion';
  done = 0;                          /* pending complete()s; Infinity after complete_all() */
  readonly wait: Thread[] = [];      /* sleeping waiters, oldest first */

  constructor(readonly name: string = 'completion') {}
}

/* struct completion: include/ declares it with its name only; its members are this class's */
type completion_class = completion;
declare module '../../include/linux/completion.js' {
  interface completion extends completion_class {}
}

/** init_completion() - make @c not done, with no waiters. Context: any. */
export function init_completion(c: completion): void {
  c.done = 0;
  c.wait.length = 0;
}

/**
 * reinit_completion() - make @c not done again, for reuse; waiters stay.
 * Context: any.
 */
export function reinit_completion(c: completion): void {
  c.done = 0;
}

/**
 * complete() - signal @c once: one waiter (now or future) gets through.
 * Context: any, including atomic; never sleeps.
 */
export function complete(c: completion): void {
  if (c.done !== COMPLETE_ALL) c.done++;
  const t = c.wait.shift();
  if (t !== undefined) wake_up_process(t);
}

/**
 * complete_all() - signal @c for good: every waiter gets through until
 * reinit_completion(). Context: any; never sleeps.
 */
export function complete_all(c: completion): void {
  c.done = COMPLETE_ALL;
  for (const t of c.wait.splice(0)) wake_up_process(t);
}

function* do_wait(c: completion, deadline: number): Sleepable<boolean> {
  const t = current();
  while (c.done === 0) {
    if (t.vtime >= deadline) return false;
    c.wait.push(t);
    try {
      yield* schedule(c, deadline);
    } finally {
      const i = c.wait.indexOf(t);
      if (i >= 0) c.wait.splice(i, 1);
    }
  }
  if (c.done !== COMPLETE_ALL) c.done--;
  return true;
}

/**
 * wait_for_completion() - sleep until @c is completed, consuming one
 * complete(). Context: may sleep; a BUG in atomic context.
 */
export function* wait_for_completion(c: completion): Sleepable {
  might_sleep();
  yield* do_wait(c, Infinity);
}

/**
 * wait_for_completion_timeout() - wait_for_completion() for at most
 * @timeout_ns. Context: may sleep.
 * Return: 0 on timeout, else the ns left (>= 1).
 */
export function* wait_for_completion_timeout(c: completion, timeout_ns: number): Sleepable<number> {
  might_sleep();
  const t = current();
  const deadline = t.vtime + timeout_ns;
  const ok = yield* do_wait(c, deadline);
  return ok ? Math.max(1, deadline - t.vtime) : 0;
}

/**
 * try_wait_for_completion() - consume a complete() if one is pending.
 * Context: any; never sleeps. Return: true if consumed (or complete_all()).
 */
export function try_wait_for_completion(c: completion): boolean {
  if (c.done === 0) return false;
  if (c.done !== COMPLETE_ALL) c.done--;
  return true;
}

/**
 * completion_done() - would wait_for_completion() pass without sleeping?
 * Context: any. Return: true if done.
 */
export function completion_done(c: completion): boolean {
  return c.done !== 0;
}
