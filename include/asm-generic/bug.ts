/*
 * include/asm-generic/bug.ts - BUG and WARN, the one place the simulated
 * kernel reports that it is broken or surprised.
 *
 * Follows include/asm-generic/bug.h and include/linux/mmdebug.h (Linux 6.x):
 *
 *   BUG(), BUG_ON(cond)          a broken kernel rule. Linux oopses and kills
 *                                the task; here a KernelBugError is thrown and
 *                                Scheduler.run() stops the machine, naming the
 *                                thread. Every BUG is a simulator bug.
 *   WARN(cond, msg), WARN_ON(cond), WARN_ON_ONCE(cond)
 *                                something that should not happen but can be
 *                                survived. Linux prints a backtrace and taints;
 *                                here the message is recorded (warnings()) and
 *                                the condition is returned, so callers write
 *                                `if (WARN_ON(x)) return -EINVAL;` as in C.
 *   VM_BUG_ON_FOLIO(cond, folio), VM_WARN_ON(cond)
 *                                the CONFIG_DEBUG_VM variants; this simulator
 *                                is always built with CONFIG_DEBUG_VM=y.
 *
 * WARN_ON_ONCE() fires once per call site (Linux keeps a static flag per
 * site; here the site is the caller's source line). Warnings are per
 * machine: start_kernel() calls resetWarnings(), and tests read them with
 * warnings().
 *
 * Simplified: no taint flags, no backtrace, no panic_on_warn.
 */

/**
 * A broken kernel rule: BUG_ON(), scheduling while atomic, unlocking a
 * lock one does not hold. Scheduler.run() adds the running thread's name
 * through blame().
 */
export class KernelBugError extends Error {
  override name = 'KernelBugError';
  /* the simulated thread the bug happened in (lib/sim/sched.ts Thread) */
  thread: { readonly name: string } | null = null;

  /** @internal Name the thread the bug happened in (once). */
  blame(t: { readonly name: string }): void {
    if (this.thread !== null) return;
    this.thread = t;
    if (!this.message.includes(`"${t.name}"`)) this.message += ` (in thread "${t.name}")`;
  }
}

/* recorded warnings of this machine, oldest first */
const recorded: string[] = [];
/* call sites whose WARN_ON_ONCE has fired */
const fired_once = new Set<string>();

/** BUG() - a broken kernel rule. Context: any. Return: never (throws KernelBugError). */
export function BUG(msg = 'BUG'): never {
  throw new KernelBugError(msg.startsWith('BUG') ? msg : `BUG: ${msg}`);
}

/** BUG_ON() - BUG() with @msg when @cond holds. Context: any. */
export function BUG_ON(cond: boolean, msg = 'BUG_ON'): void {
  if (cond) BUG(msg);
}

/** WARN() - record warning @msg when @cond holds. Context: any. Return: @cond. */
export function WARN(cond: boolean, msg: string): boolean {
  if (cond) recorded.push(`WARNING: ${msg}`);
  return cond;
}

/** WARN_ON() - WARN() with a message naming what was checked. Return: @cond. */
export function WARN_ON(cond: boolean, what = 'WARN_ON'): boolean {
  return WARN(cond, what);
}

/* the caller's caller's source line, as a key for WARN_ON_ONCE */
function callSite(): string {
  const lines = (new Error().stack ?? '').split('\n');
  return lines[3] ?? lines[lines.length - 1] ?? '';
}

/**
 * WARN_ON_ONCE() - WARN_ON() that records only the first time its call
 * site sees @cond in this machine. Return: @cond (every time).
 */
export function WARN_ON_ONCE(cond: boolean, what = 'WARN_ON_ONCE'): boolean {
  if (!cond) return false;
  const site = callSite();
  if (!fired_once.has(site)) {
    fired_once.add(site);
    WARN(true, what);
  }
  return true;
}

/** VM_BUG_ON_FOLIO() - BUG_ON() that names @folio's pfn. Context: any. */
export function VM_BUG_ON_FOLIO(cond: boolean, folio: { readonly pfn: number }, msg = 'VM_BUG_ON_FOLIO'): void {
  if (cond) BUG(`${msg} (folio pfn ${folio.pfn})`);
}

/** VM_WARN_ON() - WARN_ON() of CONFIG_DEBUG_VM. Context: any. */
export function VM_WARN_ON(cond: boolean, what = 'VM_WARN_ON'): void {
  WARN(cond, what);
}

/** warnings() - the warnings recorded since boot, oldest first (tests read them). */
export function warnings(): readonly string[] {
  return recorded;
}

/** resetWarnings() - forget recorded warnings and WARN_ON_ONCE sites (at every boot). */
export function resetWarnings(): void {
  recorded.length = 0;
  fired_once.clear();
}
