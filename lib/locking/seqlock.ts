/*
 * lib/locking/seqlock.ts - sequence counters: lockless readers that retry.
 *
 * Models include/linux/seqlock.h (seqcount_t). A writer makes the count
 * odd for the duration of its update (raw_write_seqcount_begin/end); a
 * reader samples the count, reads, and retries if the count changed.
 * Writers must be serialized by a lock of their own, as in Linux.
 *
 * The one deliberate difference: Linux's read_seqcount_begin() spins while
 * the count is odd. On one simulated CPU a spin would never end (the writer
 * cannot run while the reader spins), so here it returns the count with its
 * low bit cleared instead. That value can never match the count at
 * read_seqcount_retry() time if a write was in progress (the count is odd
 * or has moved on), so the reader's work is thrown away and retried: same
 * outcome as spinning, without the spin. raw_read_seqcount() returns the
 * raw value, odd included, for callers that test the bit themselves.
 */
import { KernelBugError } from '../sim/errors.js';

/** A sequence counter; even when no write is in progress. */
export class seqcount_t {
  sequence = 0;

  constructor(readonly name: string = 'seqcount') {}
}

/** seqcount_init() - reset @s to 0. Context: no reader or writer active. */
export function seqcount_init(s: seqcount_t): void {
  s.sequence = 0;
}

/**
 * raw_write_seqcount_begin() - start a write: the count becomes odd.
 * Context: the writer's own lock held. BUG if a write is in progress.
 */
export function raw_write_seqcount_begin(s: seqcount_t): void {
  if ((s.sequence & 1) !== 0) throw new KernelBugError(`seqcount ${s.name}: nested or concurrent write`);
  s.sequence++;
}

/**
 * raw_write_seqcount_end() - end a write: the count becomes even again.
 * Context: after raw_write_seqcount_begin(). BUG if no write is in progress.
 */
export function raw_write_seqcount_end(s: seqcount_t): void {
  if ((s.sequence & 1) === 0) throw new KernelBugError(`seqcount ${s.name}: write end without begin`);
  s.sequence++;
}

/** write_seqcount_begin()/write_seqcount_end(): the same here (no lockdep map). */
export const write_seqcount_begin = raw_write_seqcount_begin;
export const write_seqcount_end = raw_write_seqcount_end;

/**
 * write_seqcount_invalidate() - force every reader in progress to retry.
 * Context: the writer's lock held.
 */
export function write_seqcount_invalidate(s: seqcount_t): void {
  s.sequence += 2;
}

/**
 * raw_read_seqcount() - the count as it is, possibly odd.
 * Context: any. Return: the sequence number.
 */
export function raw_read_seqcount(s: seqcount_t): number {
  return s.sequence;
}

/**
 * read_seqcount_begin() - start a read section.
 * Context: any; never waits (see the header). Return: the count with its
 * low bit cleared; pass it to read_seqcount_retry().
 */
export function read_seqcount_begin(s: seqcount_t): number {
  return s.sequence - (s.sequence & 1);
}

/**
 * read_seqcount_retry() - did a write start or finish since @start?
 * Context: any. Return: true if the read must be retried.
 */
export function read_seqcount_retry(s: seqcount_t, start: number): boolean {
  return s.sequence !== start;
}
