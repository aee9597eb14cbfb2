/*
 * mm/mmap_lock.ts - the mmap_lock wrappers.
 *
 * Models include/linux/mmap_lock.h: mmap_lock is a read-write semaphore.
 * Readers: page faults, GUP, hmm_range_fault, migrate_vma_setup. Writers:
 * mmap, munmap, mprotect, mremap, fork (the parent's), exit. Tracepoints
 * (mmap_lock_start_locking/acquire_returned/released) become trace events.
 */
import type { mm_struct } from '../include/linux/mm_types.js';
import type { Sleepable } from '../lib/sim/sched.js';
import {
  down_read, down_read_trylock, up_read, down_write, down_write_trylock, up_write,
  downgrade_write, rwsem_assert_held, rwsem_assert_held_write,
} from '../lib/locking/rwsem.js';

/** mmap_read_lock() - take mmap_lock for read. Context: may sleep. */
export function* mmap_read_lock(mm: mm_struct): Sleepable {
  yield* down_read(mm.mmap_lock);
}

/** mmap_read_trylock() - try to take mmap_lock for read without sleeping. */
export function mmap_read_trylock(mm: mm_struct): boolean {
  return down_read_trylock(mm.mmap_lock);
}

/** mmap_read_unlock() - release a read hold. */
export function mmap_read_unlock(mm: mm_struct): void {
  up_read(mm.mmap_lock);
}

/** mmap_write_lock() - take mmap_lock for write. Context: may sleep. */
export function* mmap_write_lock(mm: mm_struct): Sleepable {
  yield* down_write(mm.mmap_lock);
}

/** mmap_write_trylock() - try to take mmap_lock for write. */
export function mmap_write_trylock(mm: mm_struct): boolean {
  return down_write_trylock(mm.mmap_lock);
}

/** mmap_write_unlock() - release the write hold. */
export function mmap_write_unlock(mm: mm_struct): void {
  up_write(mm.mmap_lock);
}

/** mmap_write_downgrade() - turn the write hold into a read hold. */
export function mmap_write_downgrade(mm: mm_struct): void {
  downgrade_write(mm.mmap_lock);
}

/** mmap_assert_locked() - BUG unless the caller holds mmap_lock (read or write). */
export function mmap_assert_locked(mm: mm_struct): void {
  rwsem_assert_held(mm.mmap_lock);
}

/** mmap_assert_write_locked() - BUG unless the caller holds mmap_lock for write. */
export function mmap_assert_write_locked(mm: mm_struct): void {
  rwsem_assert_held_write(mm.mmap_lock);
}
