/*
 * lib/sim/errors.ts - how the simulated machine reports that it is broken.
 *
 * BUG() itself is include/asm-generic/bug.ts. This file models the hung-task and
 * lockdep deadlock reports (kernel/hung_task.c, kernel/locking/lockdep.c),
 * and an oops in a kernel thread. In Linux these print and kill the task;
 * here they throw, and Scheduler.run() stops the machine: every one of them
 * means the simulator (or the code it runs) has a bug. Expected failures
 * are never thrown: kernel functions return a negative errno.
 */
import type { Thread, Waitable } from './sched.js';

/* BUG() and its error live in include/asm-generic/bug.ts; lib/ code imports them from here too */
export { KernelBugError, BUG } from '../../include/asm-generic/bug.js';

/** A simulated thread died of an exception that is not a KernelBugError. */
export class SimThreadError extends Error {
  override name = 'SimThreadError';

  constructor(readonly thread: Thread, cause: unknown) {
    const what = cause instanceof Error ? cause.message : String(cause);
    super(`thread "${thread.name}" (id ${thread.id}) died: ${what}`, { cause });
  }
}

/**
 * No runnable thread is left, yet some are blocked: a deadlock or a lost
 * wake-up. The message lists every blocked thread, what it waits for and
 * who holds that, then the wait-for cycle if there is one, e.g.
 *
 *   deadlock: 2 threads blocked, none can run
 *     thread "A" (id 1) waits for mutex lockB held by "B"
 *     thread "B" (id 2) waits for mutex lockA held by "A"
 *     cycle: thread "A" holds lockA waits for lockB; thread "B" holds lockB waits for lockA
 */
export class DeadlockError extends Error {
  override name = 'DeadlockError';
  readonly blocked: readonly Thread[];
  readonly cycle: readonly Thread[] | null;

  /**
   * @blocked: the blocked threads.
   * @headline: first line; a default one counts the threads.
   * @selfOn: for a self-deadlock, the lock the thread holds and wants again.
   */
  constructor(blocked: readonly Thread[], headline?: string, selfOn?: Waitable) {
    const cycle = selfOn !== undefined ? [blocked[0]!] : findCycle(blocked);
    const lines = [headline ?? `deadlock: ${blocked.length} thread${blocked.length === 1 ? '' : 's'} blocked, none can run`];
    for (const t of blocked) lines.push('  ' + describeWait(t, selfOn));
    if (cycle !== null) lines.push('  cycle: ' + describeCycle(cycle, selfOn));
    super(lines.join('\n'));
    this.blocked = blocked;
    this.cycle = cycle;
  }
}

function threadList(ts: readonly Thread[]): string {
  return ts.map((h) => `"${h.name}"${h.state === 'done' ? ' (exited)' : ''}`).join(', ');
}

function describeWait(t: Thread, selfOn?: Waitable): string {
  const on = selfOn ?? t.waitingOn;
  let s = `thread "${t.name}" (id ${t.id})`;
  if (on === null) return s + ' is blocked on nothing known';
  s += ` waits for ${on.waitKind} ${on.name}`;
  if (t.deadline !== Infinity) s += ` (timer at ${t.deadline} ns)`;
  if (on.holders === undefined) return s + ' (no owner: it needs a wake-up)';
  const hs = on.holders();
  return s + (hs.length > 0 ? ` held by ${threadList(hs)}` : ' (not held)');
}

function describeCycle(cycle: readonly Thread[], selfOn?: Waitable): string {
  if (selfOn !== undefined) return `thread "${cycle[0]!.name}" holds ${selfOn.name} waits for ${selfOn.name}`;
  const k = cycle.length;
  const parts: string[] = [];
  for (let j = 0; j < k; j++) {
    const prev = cycle[(j + k - 1) % k]!.waitingOn!;
    parts.push(`thread "${cycle[j]!.name}" holds ${prev.name} waits for ${cycle[j]!.waitingOn!.name}`);
  }
  return parts.join('; ');
}

/*
 * A cycle in the wait-for graph: t -> h when t waits for a lock h holds and
 * h is blocked too. Returned in wait order: cycle[i] waits for a lock held
 * by cycle[i + 1] (mod length). Null when there is none.
 */
function findCycle(blocked: readonly Thread[]): Thread[] | null {
  const next = (t: Thread): Thread[] => {
    const on = t.waitingOn;
    if (on === null || on.holders === undefined) return [];
    return on.holders().filter((h) => h.state === 'blocked');
  };
  const color = new Map<Thread, 1 | 2>();   /* 1: on the stack, 2: finished */
  const stack: Thread[] = [];
  const visit = (t: Thread): Thread[] | null => {
    color.set(t, 1);
    stack.push(t);
    for (const h of next(t)) {
      const c = color.get(h);
      if (c === 1) return stack.slice(stack.indexOf(h));
      if (c === undefined) {
        const found = visit(h);
        if (found !== null) return found;
      }
    }
    stack.pop();
    color.set(t, 2);
    return null;
  };
  for (const t of [...blocked].sort((a, b) => a.id - b.id)) {
    if (color.has(t)) continue;
    const found = visit(t);
    if (found !== null) return found;
  }
  return null;
}
