/*
 * mm/hmm_v8/kasan.ts - kfree() and a use-after-free check for the objects
 * whose lifetime the HMM v8 review was about (hmm_mirror, the driver's
 * mirror and device structures).
 *
 * Models what slab + KASAN (mm/kasan/) give a kernel developer: freeing an
 * object poisons it, and the next access reports "use-after-free", naming
 * the thread that freed it and the thread that touched it. JS objects are
 * never really freed, so kfree() marks the object and the code paths that
 * dereference these objects call kasan_check() first. A report is a
 * KernelBugError (the simulated kernel oopses), so a scheduler run, and
 * explore(), stop on it.
 */
import { KernelBugError } from '../../include/asm-generic/bug.js';
import { current } from '../../lib/sim/sched.js';
import { count_event, trace_event } from '../../lib/sim/trace.js';

interface free_record { by: string; what: string }
const freed = new WeakMap<object, free_record>();

/**
 * kfree() - free @obj: any later kasan_check() on it reports a
 * use-after-free; a second kfree() is a double free.
 * @what: the type, for reports ("struct hmm_mirror").
 */
export function kfree(obj: object, what: string): void {
  const prev = freed.get(obj);
  if (prev !== undefined)
    throw new KernelBugError(`KASAN: double-free of ${what}, first freed by thread "${prev.by}"`);
  freed.set(obj, { by: current().name, what });
  count_event('kfree');
  trace_event('kfree', { object: what });
}

/** kasan_freed() - has @obj been kfree()d? */
export function kasan_freed(obj: object): boolean {
  return freed.has(obj);
}

/**
 * kasan_check() - the access @where is about to make to @obj; a
 * KernelBugError ("KASAN: use-after-free") if @obj was freed.
 * Context: any.
 */
export function kasan_check(obj: object, where: string): void {
  const r = freed.get(obj);
  if (r === undefined) return;
  count_event('kasan_report');
  trace_event('kasan_report', { where, object: r.what, freed_by: r.by });
  throw new KernelBugError(`KASAN: use-after-free in ${where}: ${r.what} freed by thread "${r.by}", ` +
    `accessed by thread "${current().name}"`);
}
