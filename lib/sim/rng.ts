/*
 * lib/sim/rng.ts - the simulator's seeded pseudo-random number generator.
 *
 * No Linux twin: the kernel's prandom (lib/random32.c) plays this role for
 * tests that want repeatable randomness. This is mulberry32, a 32-bit
 * generator with one word of state: tiny, fast, and good enough to choose
 * interleavings and workloads. It is NOT for anything cryptographic.
 *
 * Every random decision in the simulator (random scheduling, workload
 * generators, fault injection) must come from an Rng built from a seed the
 * caller chose, so that a failing run can be replayed bit for bit.
 */

/** A deterministic generator: the same seed gives the same sequence. */
export class Rng {
  /** Current 32-bit state; advanced by every draw. */
  private state: number;

  /**
   * @param seed: any number; only its low 32 bits are used.
   */
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /**
   * next() - draw a float uniformly from [0, 1).
   *
   * Return: a number with 32 random bits of resolution.
   */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  }

  /**
   * int() - draw an integer uniformly from [0, n).
   * @n: number of outcomes, a positive integer.
   *
   * Return: an integer 0 <= i < n.
   */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /**
   * chance() - true with probability p.
   * @p: probability in [0, 1].
   */
  chance(p: number): boolean {
    return this.next() < p;
  }
}
