/*
 * mm/filemap.ts - the folio lock.
 *
 * Models folio_lock()/folio_unlock()/folio_wait_locked() of mm/filemap.c:
 * PG_locked is a sleeping bit lock; waiters sleep on a per-page wait
 * queue (Linux hashes pages onto a shared folio_wait_table; here each
 * page gets its own queue on first contention). Page-cache lookups for
 * files arrive with issue 4 (mm/shmem.ts).
 */
import type { page } from '../include/linux/mm_types.js';
import { PageLocked, PG_locked } from '../include/linux/page-flags.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { wait_queue_head, wait_event, wake_up_all, waitqueue_active } from '../lib/locking/wait.js';

function folio_waitqueue(f: page): wait_queue_head {
  if (f.waitq === null) f.waitq = new wait_queue_head(`folio_lock[pfn ${f.pfn}]`);
  return f.waitq;
}

/** folio_trylock() - take the folio lock if it is free. Return: true if taken. */
export function folio_trylock(f: page): boolean {
  const h = f.compound_head;
  if (PageLocked(h)) return false;
  h.flags |= 1 << PG_locked;
  return true;
}

/**
 * folio_lock() - take the folio lock, sleeping while someone else holds it.
 * Context: may sleep; must not hold a spinlock.
 */
export function* folio_lock(f: page): Sleepable {
  const h = f.compound_head;
  while (!folio_trylock(h)) yield* wait_event(folio_waitqueue(h), () => !PageLocked(h));
}

/** folio_unlock() - release the folio lock and wake its waiters. */
export function folio_unlock(f: page): void {
  const h = f.compound_head;
  if (!PageLocked(h)) throw new Error(`BUG: folio_unlock of unlocked folio pfn ${h.pfn}`);
  h.flags &= ~(1 << PG_locked);
  if (h.waitq !== null && waitqueue_active(h.waitq)) wake_up_all(h.waitq);
}

/** folio_wait_locked() - sleep until the folio is unlocked (without taking the lock). */
export function* folio_wait_locked(f: page): Sleepable {
  const h = f.compound_head;
  if (PageLocked(h)) yield* wait_event(folio_waitqueue(h), () => !PageLocked(h));
}

export const lock_page = folio_lock;
export const unlock_page = folio_unlock;
export const trylock_page = folio_trylock;
