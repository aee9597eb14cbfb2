/*
 * lib/locking/lockdep.ts - which thread holds which lock, and in what order
 * locks were taken.
 *
 * Models a small part of kernel/locking/lockdep.c. Every simulated lock
 * calls lock_acquire()/lock_release(), which keep Thread.held (the locks a
 * thread holds, oldest first: deadlock reports and the exit check read it)
 * and record the order in which lock CLASSES were nested: a class is a
 * lock's name, so every mm's "mmap_lock" is one class, as in Linux where a
 * class is the lock's init site. When a thread takes B while holding A
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

/* The lock's class id, cached in its dep_map field (struct lockdep_map). */
function classOf(l: Waitable & { dep_map?: number }): number {
  let k = l.dep_map;
  if (k !== undefined && k !== 0) return k;
  k = classIds.get(l.name);
  if (k === undefined) {
    k = classIds.size + 1;
    classIds.set(l.name, k);
  }
  if (l.dep_map !== undefined) l.dep_map = k;
  return k;
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

/** lockdep_warnings() - lock-order inversions seen so far, one line each. */
export function lockdep_warnings(): readonly string[] {
  return warnings;
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
  order.clear();
  warned.clear();
  warnings.length = 0;
  enabled = enabledAtBoot;
}
