/*
 * lib/locking/rwsem.ts - reader/writer semaphores (mmap_lock is one).
 *
 * Models include/linux/rwsem.h and kernel/locking/rwsem.c. Many readers or
 * one writer. Policy, as in Linux, favours writers: once a waiter is
 * queued (in particular a writer), new readers queue behind it instead of
 * joining the current readers, so a stream of readers cannot starve a
 * writer. Simplified, for determinism: waiters are served FIFO by HAND-OFF
 * - when the lock frees up, the waiter at the head is granted the lock
 * before it is woken; if that is a reader, every reader directly behind it
 * is granted too (up to the first queued writer). Linux also lets woken
 * waiters race with optimistic spinners, and wakes readers from anywhere
 * in the queue; neither exists here. No time is charged.
 *
 * Readers are tracked per thread (a multiset) so that asserts and deadlock
 * reports can name them. up_read() must come from a thread that holds the
 * lock for read (Linux's up_read_non_owner() is not modelled). A thread
 * that waits for an rwsem it already holds (e.g. down_read() twice with a
 * writer queued in between) is reported as a self-deadlock at once.
 */
import { current, might_sleep, schedule, wake_up_process, preempt_point, type Sleepable, type Thread } from '../sim/sched.js';
import { DeadlockError, KernelBugError } from '../sim/errors.js';
import { lock_acquire, lock_release } from './lockdep.js';
import type {} from '../../include/linux/rwsem.js';   /* the declaration completed below */

/* One thread blocked in down_read()/down_write(). */
interface rwsem_waiter {
  readonly thread: Thread;
  readonly type: 'read' | 'write';
  granted: boolean;          /* set by the waker at hand-off */
}

/** A reader/writer semaphore. */
export class rw_semaphore {
  dep_map = 0;                       /* lockdep class id, assigned on first nesting */
  readonly waitKind = 'rwsem';
  readers = 0;                        /* read holds, counting recursion */
  writer: Thread | null = null;       /* write holder, or null */
  readonly reader_owners = new Map<Thread, number>();  /* who holds it for read, how many times (0: not now) */
  readonly wait_list: rwsem_waiter[] = [];             /* FIFO */

  constructor(readonly name: string) {}

  holders(): readonly Thread[] {
    if (this.writer !== null) return [this.writer];
    const out: Thread[] = [];
    for (const [t, n] of this.reader_owners) if (n > 0) out.push(t);
    return out;
  }
}

/* struct rw_semaphore: include/ declares it with its name only; its members are this class's */
type rw_semaphore_class = rw_semaphore;
declare module '../../include/linux/rwsem.js' {
  interface rw_semaphore extends rw_semaphore_class {}
}

/* Does @t hold @s for read? (An entry stays, at 0, after its last up_read: no Map delete per fault.) */
function holds_read(s: rw_semaphore, t: Thread): boolean {
  return (s.reader_owners.get(t) ?? 0) > 0;
}

function grant_read(s: rw_semaphore, t: Thread): void {
  s.readers++;
  s.reader_owners.set(t, (s.reader_owners.get(t) ?? 0) + 1);
  lock_acquire(s, t);
}

function grant_write(s: rw_semaphore, t: Thread): void {
  s.writer = t;
  lock_acquire(s, t);
}

/* Hand the lock to the waiters at the head of the queue that can have it. */
function rwsem_wake(s: rw_semaphore): void {
  while (s.wait_list.length > 0 && s.writer === null) {
    const w = s.wait_list[0]!;
    if (w.type === 'write') {
      if (s.readers !== 0) return;
      s.wait_list.shift();
      grant_write(s, w.thread);
    } else {
      s.wait_list.shift();
      grant_read(s, w.thread);
    }
    w.granted = true;
    wake_up_process(w.thread);
  }
}

function* rwsem_wait(s: rw_semaphore, t: Thread, type: 'read' | 'write'): Sleepable {
  const w: rwsem_waiter = { thread: t, type, granted: false };
  s.wait_list.push(w);
  try {
    while (!w.granted) yield* schedule(s);
  } finally {
    if (!w.granted) {
      s.wait_list.splice(s.wait_list.indexOf(w), 1);
      rwsem_wake(s);       /* a writer leaving the queue may let readers in */
    }
  }
}

/**
 * down_read() - take @s for read, sleeping while a writer holds it or any
 * waiter is queued (writer preference).
 * Context: may sleep; a BUG in atomic context. DeadlockError if the running
 * thread holds @s for write.
 */
export function* down_read(s: rw_semaphore): Sleepable {
  const t = current();
  might_sleep();
  if (s.writer === null && s.wait_list.length === 0) {
    grant_read(s, t);
    return;
  }
  if (s.writer === t)
    throw new DeadlockError([t], `self-deadlock: thread "${t.name}" takes rwsem ${s.name} for read while holding it for write`, s);
  yield* rwsem_wait(s, t, 'read');
}

/**
 * down_read_killable() - down_read(); signals do not interrupt simulated
 * sleeps. Context: may sleep. Return: 0.
 */
export function* down_read_killable(s: rw_semaphore): Sleepable<number> {
  yield* down_read(s);
  return 0;
}

/**
 * down_read_trylock() - take @s for read if that needs no sleep.
 * Context: any. Return: true if taken.
 */
export function down_read_trylock(s: rw_semaphore): boolean {
  if (s.writer !== null || s.wait_list.length !== 0) return false;
  grant_read(s, current());
  return true;
}

/**
 * up_read() - drop one read hold of @s; the last one lets waiters in.
 * Context: holds @s for read; never sleeps. BUG otherwise.
 */
export function up_read(s: rw_semaphore): void {
  const t = current();
  const n = s.reader_owners.get(t);
  if (n === undefined || n === 0)
    throw new KernelBugError(`up_read: thread "${t.name}" does not hold rwsem ${s.name} for read`);
  s.reader_owners.set(t, n - 1);
  s.readers--;
  lock_release(s, t);
  if (s.readers === 0) rwsem_wake(s);
  preempt_point('up_read', s.name);
}

/**
 * down_write() - take @s exclusively, sleeping while anyone holds it.
 * Context: may sleep; a BUG in atomic context. DeadlockError if the running
 * thread already holds @s.
 */
export function* down_write(s: rw_semaphore): Sleepable {
  const t = current();
  might_sleep();
  if (s.writer === null && s.readers === 0 && s.wait_list.length === 0) {
    grant_write(s, t);
    return;
  }
  if (s.writer === t || holds_read(s, t))
    throw new DeadlockError([t], `self-deadlock: thread "${t.name}" takes rwsem ${s.name} for write while holding it`, s);
  yield* rwsem_wait(s, t, 'write');
}

/**
 * down_write_killable() - down_write(); always succeeds here.
 * Context: may sleep. Return: 0.
 */
export function* down_write_killable(s: rw_semaphore): Sleepable<number> {
  yield* down_write(s);
  return 0;
}

/**
 * down_write_nested() - down_write() of a second lock of the same class
 * (fork takes the child's mmap_lock inside the parent's). @subclass only
 * documents the nesting; lockdep here ignores same-class nesting anyway.
 * Context: may sleep.
 */
export function* down_write_nested(s: rw_semaphore, _subclass: number): Sleepable {
  yield* down_write(s);
}

/**
 * down_write_trylock() - take @s exclusively if it is free.
 * Context: any. Return: true if taken.
 */
export function down_write_trylock(s: rw_semaphore): boolean {
  if (s.writer !== null || s.readers !== 0 || s.wait_list.length !== 0) return false;
  grant_write(s, current());
  return true;
}

/**
 * up_write() - release @s held for write and hand it to the waiters.
 * Context: holds @s for write; never sleeps. BUG otherwise.
 */
export function up_write(s: rw_semaphore): void {
  const t = current();
  if (s.writer !== t)
    throw new KernelBugError(`up_write: thread "${t.name}" does not hold rwsem ${s.name} for write`);
  s.writer = null;
  lock_release(s, t);
  rwsem_wake(s);
  preempt_point('up_write', s.name);
}

/**
 * downgrade_write() - turn a write hold of @s into a read hold without
 * letting a writer in between; queued readers at the head join.
 * Context: holds @s for write; never sleeps.
 */
export function downgrade_write(s: rw_semaphore): void {
  const t = current();
  if (s.writer !== t)
    throw new KernelBugError(`downgrade_write: thread "${t.name}" does not hold rwsem ${s.name} for write`);
  s.writer = null;
  s.readers = 1;
  s.reader_owners.set(t, 1);
  rwsem_wake(s);
}

/** rwsem_is_locked() - held for read or write by anyone? */
export function rwsem_is_locked(s: rw_semaphore): boolean {
  return s.writer !== null || s.readers !== 0;
}

/**
 * rwsem_assert_held() - BUG unless the running thread holds @s (read or
 * write). Context: any.
 */
export function rwsem_assert_held(s: rw_semaphore): void {
  const t = current();
  if (s.writer !== t && !holds_read(s, t))
    throw new KernelBugError(`rwsem_assert_held: thread "${t.name}" does not hold rwsem ${s.name}`);
}

/**
 * rwsem_assert_held_write() - BUG unless the running thread holds @s for
 * write. Context: any.
 */
export function rwsem_assert_held_write(s: rw_semaphore): void {
  const t = current();
  if (s.writer !== t)
    throw new KernelBugError(`rwsem_assert_held_write: thread "${t.name}" does not hold rwsem ${s.name} for write`);
}
