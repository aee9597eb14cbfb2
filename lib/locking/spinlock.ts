/*
 * lib/locking/spinlock.ts - spinlocks.
 *
 * Models include/linux/spinlock.h and kernel/locking/spinlock.c on one
 * simulated CPU. Taking a spinlock disables preemption (preempt_count++),
 * and any yield while preempt_count > 0 is a BUG ("scheduling while
 * atomic"), so a holder can never be switched away from. It follows that
 * finding a spinlock held by ANOTHER thread is impossible in a correct
 * simulation: it is reported as a BUG rather than spun on. Recursive
 * locking and unlocking by a non-owner are BUGs too, as lockdep and
 * CONFIG_DEBUG_SPINLOCK make them in Linux. The _irq/_irqsave variants are
 * the same lock here (there are no interrupts) and exist for the names.
 * Nothing is charged to the clock.
 */
import { current, preempt_point, type Thread } from '../sim/sched.js';
import { KernelBugError } from '../sim/errors.js';
import { lock_acquire, lock_release } from './lockdep.js';
import type {} from '../../include/linux/spinlock_types.js';   /* the declaration completed below */

/** A spinlock. */
export class spinlock_t {
  dep_map = 0;                       /* lockdep class id, assigned on first nesting */
  readonly waitKind = 'spinlock';
  owner: Thread | null = null;   /* holder, or null when unlocked */

  constructor(readonly name: string) {}

  holders(): readonly Thread[] {
    return this.owner === null ? [] : [this.owner];
  }
}

/* spinlock_t: include/ declares it with its name only; its members are this class's */
type spinlock_t_class = spinlock_t;
declare module '../../include/linux/spinlock_types.js' {
  interface spinlock_t extends spinlock_t_class {}
}

/**
 * spin_lock() - take @l.
 * Context: any. Disables preemption until spin_unlock(). BUG if @l is held.
 */
export function spin_lock(l: spinlock_t): void {
  const t = current();
  if (l.owner !== null) {
    if (l.owner === t) throw new KernelBugError(`spin_lock: recursive locking of spinlock ${l.name} by thread "${t.name}"`);
    throw new KernelBugError(`spin_lock: spinlock ${l.name} wanted by "${t.name}" is held by "${l.owner.name}", ` +
      'which cannot have been preempted: it yielded or exited while holding it');
  }
  t.preempt_count++;
  l.owner = t;
  lock_acquire(l, t);
}

/**
 * spin_trylock() - take @l if it is free.
 * Context: any. Return: true if taken (preemption is then disabled).
 */
export function spin_trylock(l: spinlock_t): boolean {
  if (l.owner !== null) return false;
  spin_lock(l);
  return true;
}

/**
 * spin_unlock() - release @l; BUG unless the running thread holds it.
 * Context: holds @l. Re-enables preemption.
 */
export function spin_unlock(l: spinlock_t): void {
  const t = current();
  if (l.owner !== t)
    throw new KernelBugError(`spin_unlock: thread "${t.name}" releases spinlock ${l.name} held by ${l.owner ? `"${l.owner.name}"` : 'nobody'}`);
  lock_release(l, t);
  l.owner = null;
  t.preempt_count--;
  if (t.preempt_count === 0) preempt_point('spin_unlock', l.name);
}

/** spin_lock_irq()/spin_unlock_irq(): spin_lock() without interrupts to mask. */
export const spin_lock_irq = spin_lock;
export const spin_unlock_irq = spin_unlock;

/**
 * spin_lock_irqsave() - spin_lock(); returns the "flags" to restore.
 * Return: 0 (no interrupt state in the simulator).
 */
export function spin_lock_irqsave(l: spinlock_t): number {
  spin_lock(l);
  return 0;
}

/** spin_unlock_irqrestore() - spin_unlock(); @flags is ignored. */
export function spin_unlock_irqrestore(l: spinlock_t, _flags: number): void {
  spin_unlock(l);
}

/**
 * spin_is_locked() - is @l held by anyone?
 * Context: any. Return: true if held.
 */
export function spin_is_locked(l: spinlock_t): boolean {
  return l.owner !== null;
}

/**
 * assert_spin_locked() - BUG unless the running thread holds @l.
 * Context: any.
 */
export function assert_spin_locked(l: spinlock_t): void {
  const t = current();
  if (l.owner !== t)
    throw new KernelBugError(`assert_spin_locked: thread "${t.name}" does not hold spinlock ${l.name}`);
}
