/*
 * lib/sim/clock.ts - simulated time.
 *
 * Models the kernel's clocks (kernel/time/: ktime_get(), jiffies,
 * schedule_timeout(), msleep(), ndelay()) with one simplification that
 * matters: there is no global clock. Each simulated thread carries its own
 * clock, Thread.vtime, in nanoseconds, which moves only when the thread
 * charges the cost of work it models (charge(), with constants from
 * lib/sim/costs.ts) or sleeps. Clocks meet at wake-ups: a woken thread's
 * clock becomes max(its own, its waker's), as Lamport clocks do, so that a
 * thread waiting for a lock "pays" for the time the holder kept it.
 *
 * machineTime() is the latest clock of any thread: the elapsed time of a
 * whole run (e.g. for throughput figures). Nothing is ever charged
 * implicitly: locks, wait queues and the scheduler cost nothing unless the
 * code that uses them charges for it.
 */
import { current, maxVtimeSeen, schedule, type Sleepable, type Waitable } from './sched.js';
import { KernelBugError } from './errors.js';

/* What a plain sleeper waits for, as named in deadlock reports. */
const TIMER: Waitable = Object.freeze({ name: 'timer', waitKind: 'sleep' });

export const NSEC_PER_USEC = 1_000;
export const NSEC_PER_MSEC = 1_000_000;
export const NSEC_PER_SEC = 1_000_000_000;

/**
 * charge() - account @ns of work to the running thread's clock.
 * @ns: simulated nanoseconds, >= 0.
 * Context: any; never yields.
 */
export function charge(ns: number): void {
  if (!(ns >= 0)) throw new KernelBugError(`charge(${ns}): negative or NaN time`);
  current().vtime += ns;
}

/**
 * now() - the running thread's clock (ktime_get()).
 * Context: any. Return: simulated ns.
 */
export function now(): number {
  return current().vtime;
}

/**
 * machineTime() - the latest clock of any thread seen since the last
 * resetScheduler().
 * Return: simulated ns.
 */
export function machineTime(): number {
  return maxVtimeSeen();
}

/**
 * ndelay() - busy-wait @ns (ndelay()/udelay()): time passes, no yield.
 * Context: any, including atomic context.
 */
export function ndelay(ns: number): void {
  charge(ns);
}

/**
 * schedule_timeout() - sleep for @ns unless woken earlier.
 * @ns: relative timeout, simulated ns.
 *
 * Under runSync() (nothing else runs) the clock simply advances by @ns.
 * Context: may sleep; not in atomic context.
 * Return: 0 if the timeout elapsed, else the ns left (woken early).
 */
export function* schedule_timeout(ns: number): Sleepable<number> {
  const t = current();
  if (ns <= 0) return 0;
  const deadline = t.vtime + ns;
  const timedOut = yield* schedule(TIMER, deadline);
  return timedOut ? 0 : Math.max(0, deadline - t.vtime);
}

/**
 * msleep() - sleep for @ms milliseconds; wake-ups do not cut it short.
 * Context: may sleep; not in atomic context.
 */
export function* msleep(ms: number): Sleepable {
  const t = current();
  const deadline = t.vtime + ms * NSEC_PER_MSEC;
  while (t.vtime < deadline) yield* schedule(TIMER, deadline);
}

/**
 * usleep_range() - sleep between @min_us and @max_us microseconds; the
 * simulation sleeps exactly @min_us.
 * Context: may sleep; not in atomic context.
 */
export function* usleep_range(min_us: number, _max_us: number): Sleepable {
  const t = current();
  const deadline = t.vtime + min_us * NSEC_PER_USEC;
  while (t.vtime < deadline) yield* schedule(TIMER, deadline);
}

/**
 * formatNs() - "12.345678" seconds with microsecond digits, as ftrace
 * prints timestamps.
 */
export function formatNs(ns: number): string {
  const us = Math.floor(ns / NSEC_PER_USEC);
  const s = Math.floor(us / 1_000_000);
  return `${s}.${String(us % 1_000_000).padStart(6, '0')}`;
}
