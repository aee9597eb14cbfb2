/*
 * lib/locking/mutex.ts - sleeping mutual-exclusion locks.
 *
 * Models kernel/locking/mutex.c. The lock records its owner; waiters queue
 * FIFO on wait_list. Simplified policy, chosen for determinism: unlock
 * HANDS the mutex to the first waiter (owner := waiter, then wake it), so
 * the woken thread returns from mutex_lock() already owning the lock and
 * no thread can barge in between. Linux instead lets the woken waiter race
 * with newcomers and optimistic spinners, and hands off only to a waiter
 * that starved; there is no spinning here (one CPU).
 *
 * The uncontended path takes no scheduler round trip: mutex_lock() on a
 * free mutex returns without yielding. Taking a mutex one already holds is
 * a self-deadlock, reported at once. Unlocking by a non-owner is a BUG.
 * Nothing is charged to the clock; a waiter's clock catches up with the
 * unlocker's at hand-off (wake_up_process()).
 */
import { current, might_sleep, schedule, wake_up_process, preempt_point, type Sleepable, type Thread } from '../sim/sched.js';
import { DeadlockError, KernelBugError } from '../sim/errors.js';
import { lock_acquire, lock_release } from './lockdep.js';
import type {} from '../../include/linux/mutex_types.js';   /* the declaration completed below */

export { lockdep_assert_held, lockdep_assert_not_held } from './lockdep.js';

/** A sleeping lock with a single owner. */
export class mutex {
  dep_map = 0;                       /* lockdep class id, assigned on first nesting */
  readonly waitKind = 'mutex';
  owner: Thread | null = null;       /* holder, or null when unlocked */
  readonly wait_list: Thread[] = []; /* blocked in mutex_lock(), FIFO */

  constructor(readonly name: string) {}

  holders(): readonly Thread[] {
    return this.owner === null ? [] : [this.owner];
  }
}

/* struct mutex: include/ declares it with its name only; its members are this class's */
type mutex_class = mutex;
declare module '../../include/linux/mutex_types.js' {
  interface mutex extends mutex_class {}
}

/**
 * mutex_lock() - take @m, sleeping while another thread holds it.
 * @m: the mutex.
 *
 * Context: process context, may sleep; a BUG in atomic context.
 * DeadlockError if the running thread already holds @m.
 */
export function* mutex_lock(m: mutex): Sleepable {
  const t = current();
  might_sleep();
  if (m.owner === null) {
    m.owner = t;
    lock_acquire(m, t);
    return;
  }
  if (m.owner === t)
    throw new DeadlockError([t], `self-deadlock: thread "${t.name}" takes mutex ${m.name} which it holds`, m);
  m.wait_list.push(t);
  try {
    while (m.owner !== t) yield* schedule(m);
  } finally {
    if (m.owner !== t) {
      const i = m.wait_list.indexOf(t);
      if (i >= 0) m.wait_list.splice(i, 1);
    }
  }
}

/**
 * mutex_lock_killable() - mutex_lock() that a fatal signal could cut short.
 * Signals do not interrupt simulated sleeps, so it always succeeds.
 * Context: may sleep. Return: 0.
 */
export function* mutex_lock_killable(m: mutex): Sleepable<number> {
  yield* mutex_lock(m);
  return 0;
}

/**
 * mutex_trylock() - take @m if it is free.
 * Context: any (never sleeps). Return: true if taken.
 */
export function mutex_trylock(m: mutex): boolean {
  if (m.owner !== null) return false;
  const t = current();
  m.owner = t;
  lock_acquire(m, t);
  return true;
}

/**
 * mutex_unlock() - release @m, handing it to the first waiter if any.
 * Context: holds @m; never sleeps. BUG if the running thread is not the owner.
 */
export function mutex_unlock(m: mutex): void {
  const t = current();
  if (m.owner !== t)
    throw new KernelBugError(`mutex_unlock: thread "${t.name}" releases mutex ${m.name} held by ${m.owner ? `"${m.owner.name}"` : 'nobody'}`);
  lock_release(m, t);
  const w = m.wait_list.shift();
  if (w === undefined) {
    m.owner = null;
  } else {
    m.owner = w;
    lock_acquire(m, w);
    wake_up_process(w);
  }
  preempt_point('mutex_unlock', m.name);
}

/**
 * mutex_is_locked() - is @m held by anyone?
 * Context: any. Return: true if held.
 */
export function mutex_is_locked(m: mutex): boolean {
  return m.owner !== null;
}
