/*
 * lib/locking/lockdep.ts - which thread holds which lock, and in what order
 * locks were taken.
 *
 * Models a small part of kernel/locking/lockdep.c. Every simulated lock
 * calls lock_acquire()/lock_release(), which keep Thread.held (the locks a
 * thread holds, oldest first: deadlock reports and the exit check read it)
 * and record the order in which lock CLASSES were nested: a class is the
 * lock's init site, as in Linux (lockdep_set_class() names it for locks
 * made per object, e.g. every PTE page's lock is class "ptlock"); a lock
 * with no class set is its own class by name. When a thread takes B while holding A
 * and the order B -> A was seen before, that is a possible ABBA deadlock
 * even if this run did not deadlock: it is recorded as a warning that
 * tests can read with lockdep_warnings(). Simplified: no irq-state
 * tracking, no read/write distinction, nesting of one class with itself is
 * ignored (Linux needs a _nested annotation for it).
 */
import { current, type Thread, type Waitable } from '../sim/sched.js';
import { KernelBugError } from '../sim/errors.js';

/** A lock that knows its holders (spinlock, mutex, rwsem). */
export interface HeldLock extends Waitable {
  holders(): readonly Thread[];
}

let enabled = true;
let enabledAtBoot = true;                     /* what resetLockdep() (every boot) restores */
const classIds = new Map<string, number>();   /* lock name -> class id (1..); never reset */
const order = new Set<number>();              /* class(A) * 2^20 + class(B): B was taken while A was held */
const warned = new Set<number>();
const warnings: string[] = [];
const CLASS_SHIFT = 1_048_576;

/* The id of the class called @key (1..), made on first use. */
function classId(key: string): number {
  let k = classIds.get(key);
  if (k === undefined) {
    k = classIds.size + 1;
    classIds.set(key, k);
  }
  return k;
}

/* The lock's class id, cached in its dep_map field (struct lockdep_map). */
function classOf(l: Waitable & { dep_map?: number }): number {
  const k = l.dep_map;
  if (k !== undefined && k !== 0) return k;
  const c = classId(l.name);
  if (l.dep_map !== undefined) l.dep_map = c;
  return c;
}

/**
 * lockdep_set_class() - put @l in the class called @key. A lock made per
 * instance (every mm's page_table_lock, every PTE page's lock, every
 * anon_vma's rwsem) is named after its instance for reports, but its class
 * is the site that initialises it, as in Linux, where a class is the
 * static key of spin_lock_init()/init_rwsem()/mutex_init(): an order seen
 * between two instances holds for all of them.
 * Context: any; call before the lock is first taken.
 */
export function lockdep_set_class<L extends { dep_map: number }>(l: L, key: string): L {
  l.dep_map = classId(key);
  return l;
}

/**
 * lock_acquire() - note that @t now holds @l, and check the nesting order.
 * Context: any; never yields. Called by the lock implementations.
 */
export function lock_acquire(l: Waitable, t: Thread = current()): void {
  if (enabled && t.held.length !== 0) {
    const c = classOf(l);
    for (const h of t.held) {
      const hc = classOf(h);
      if (hc === c) continue;
      if (order.has(c * CLASS_SHIFT + hc)) warnInversion(t, h, l, hc * CLASS_SHIFT + c);
      order.add(hc * CLASS_SHIFT + c);
    }
  }
  t.held.push(l);
}

/**
 * lock_release() - note that @t no longer holds @l (any order).
 * Context: any; never yields.
 */
export function lock_release(l: Waitable, t: Thread = current()): void {
  const held = t.held;
  const last = held.length - 1;
  if (last >= 0 && held[last] === l) {
    held.pop();
    return;
  }
  const i = held.lastIndexOf(l);
  if (i < 0) throw new KernelBugError(`lock_release: thread "${t.name}" releases ${l.waitKind} ${l.name} it does not hold`);
  held.splice(i, 1);
}

function warnInversion(t: Thread, held: Waitable, taking: Waitable, key: number): void {
  if (warned.has(key)) return;
  warned.add(key);
  warnings.push(`possible circular locking dependency: thread "${t.name}" takes ${taking.name} while holding ${held.name}; ` +
    `the order ${taking.name} -> ${held.name} was seen before`);
}

/**
 * lockdep_assert_held() - BUG unless the running thread holds @l (for read
 * or write, for an rwsem).
 * Context: any.
 */
export function lockdep_assert_held(l: HeldLock): void {
  const t = current();
  if (!l.holders().includes(t))
    throw new KernelBugError(`lockdep_assert_held: thread "${t.name}" does not hold ${l.waitKind} ${l.name}`);
}

/**
 * lockdep_assert_not_held() - BUG if the running thread holds @l.
 * Context: any.
 */
export function lockdep_assert_not_held(l: HeldLock): void {
  const t = current();
  if (l.holders().includes(t))
    throw new KernelBugError(`lockdep_assert_not_held: thread "${t.name}" holds ${l.waitKind} ${l.name}`);
}

/**
 * struct lockdep_map - a lock class with no lock behind it (Linux's
 * lock_map_acquire() maps, e.g. fs_reclaim): "acquiring" it only records
 * the nesting order against the locks held, so an inversion with a real
 * lock is reported like any other.
 */
export class lockdep_map implements Waitable {
  readonly waitKind = 'lockdep_map';
  dep_map = 0;
  constructor(readonly name: string) {}
}

/** lock_map_acquire()/lock_map_release() - enter/leave @m's class (never blocks). Context: any. */
export function lock_map_acquire(m: lockdep_map): void {
  lock_acquire(m);
}
export function lock_map_release(m: lockdep_map): void {
  lock_release(m);
}

let seen = 0;                                 /* warnings[0..seen) were read by someone */
const unseen_before_reset: string[] = [];     /* unread when a boot reset the log: still reported */

/**
 * lockdep_warnings() - lock-order inversions seen so far, one line each.
 * Reading them marks them seen: a test that provokes an inversion on
 * purpose reads it here, and the teardown check (lockdep_unseen_warnings)
 * does not report it again.
 */
export function lockdep_warnings(): readonly string[] {
  seen = warnings.length;
  return warnings;
}

/**
 * lockdep_unseen_warnings() - the inversions recorded since the last read,
 * and mark them seen. The test harness calls it after every test: an
 * inversion nobody expected fails the test, as a lockdep splat fails a
 * kernel CI run.
 */
export function lockdep_unseen_warnings(): string[] {
  const fresh = unseen_before_reset.concat(warnings.slice(seen));
  unseen_before_reset.length = 0;
  seen = warnings.length;
  return fresh;
}

/** lockdep_on()/lockdep_off() - enable or disable the order checker. */
export function lockdep_on(): void {
  enabled = true;
}
export function lockdep_off(): void {
  enabled = false;
}

/**
 * lockdepAtBoot() - whether every following boot (resetLockdep) turns the
 * order checker on: true for tests (the default), false for benchmarks,
 * which state it in their output (tools/bench/main.ts). Only the order
 * checking is switched: holders and the assertions stay.
 */
export function lockdepAtBoot(on: boolean): void {
  enabledAtBoot = on;
  enabled = on;
}

/** lockdep_enabled() - is the order checker on? */
export function lockdep_enabled(): boolean {
  return enabled;
}

/** resetLockdep() - forget recorded orders and warnings (tests). */
export function resetLockdep(): void {
  for (let i = seen; i < warnings.length; i++) unseen_before_reset.push(warnings[i]!);
  seen = 0;
  order.clear();
  warned.clear();
  warnings.length = 0;
  enabled = enabledAtBoot;
}
