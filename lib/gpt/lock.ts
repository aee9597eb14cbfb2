/*
 * lib/gpt/lock.ts - the directory spinlock: a real lock word in shared memory.
 *
 * Models hmm_pt's per-directory split page-table lock (page->ptl, patch
 * 06/23 and 23/23) and answers Linus's objection to the 2014 gpt, whose
 * "locks" were test_and_set_bit() without acquire/release ordering. Here a
 * lock is an Int32 word changed only with Atomics (sequentially consistent,
 * so acquiring is an acquire and releasing a release):
 *
 *   0  free
 *   1  held, nobody waits
 *   2  held, a thread may sleep in Atomics.wait on the word
 *
 * The slow path is Drepper's futex mutex ("Futexes are tricky", mutex 3):
 * spin a little (the machine has few cores and critical sections are a
 * handful of stores), then mark the word contended and sleep. The holder's
 * thread tag is kept beside the word so set() can assert the rule
 * "entries change under their directory's lock".
 */
import { threadId } from 'node:worker_threads';

/* Spins before sleeping; critical sections are short. */
const GPT_SPIN = 64;
/** This thread's tag as a lock owner (never 0). */
export const gpt_thread_tag = threadId + 1;

/**
 * gpt_spin_trylock() - take the lock at w[i] if it is free.
 * Return: true if taken.
 */
export function gpt_spin_trylock(w: Int32Array, i: number): boolean {
  return Atomics.compareExchange(w, i, 0, 1) === 0;
}

/**
 * gpt_spin_lock() - take the lock at w[i], spinning then sleeping.
 * Context: may block the calling thread (Atomics.wait); never recursive.
 */
export function gpt_spin_lock(w: Int32Array, i: number): void {
  let c = Atomics.compareExchange(w, i, 0, 1);
  if (c === 0) return;
  for (let n = 0; n < GPT_SPIN; n++) {
    if (Atomics.load(w, i) === 0 && (c = Atomics.compareExchange(w, i, 0, 1)) === 0) return;
  }
  if (c !== 2) c = Atomics.exchange(w, i, 2);
  while (c !== 0) {
    Atomics.wait(w, i, 2);
    c = Atomics.exchange(w, i, 2);
  }
}

/**
 * gpt_spin_unlock() - release the lock at w[i], waking one sleeper if any.
 */
export function gpt_spin_unlock(w: Int32Array, i: number): void {
  if (Atomics.sub(w, i, 1) !== 1) {
    Atomics.store(w, i, 0);
    Atomics.notify(w, i, 1);
  }
}
