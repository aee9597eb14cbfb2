/*
 * lib/sim/sched.ts - simulated threads, the scheduler, and where a thread
 * may sleep.
 *
 * Models kernel/sched/core.c (schedule(), wake_up_process(), cond_resched(),
 * might_sleep(), the preempt count) on ONE simulated CPU, and simplifies:
 *
 *  - A thread is a JS generator. It runs until it yields a SchedEvent, so
 *    threads interleave only at explicit points: cond_resched(), a sleep on
 *    a lock or wait queue, sched_yield(). There is no timer preemption.
 *  - A function that may sleep is a generator returning Sleepable<T> and is
 *    called with yield*. The type carries what might_sleep() asserts.
 *  - Time is per thread (Thread.vtime, ns); see lib/sim/clock.ts. A woken
 *    thread's clock catches up with its waker's (Lamport clocks).
 *  - Three modes: 'run-to-completion' (a thread runs until it blocks; FIFO
 *    run queue; cond_resched() costs nothing), 'random' (every preemption
 *    point and every block is a seeded random choice), 'enumerate' (every
 *    such point is a numbered choice taken from a list; see explore.ts).
 *  - When no thread can run and none has a timer, run() throws a
 *    DeadlockError naming each blocked thread, what it waits on, who holds
 *    that, and the wait-for cycle if there is one.
 *
 * Choice numbering (random and enumerate): at a preemption point the
 * candidates are [current, other runnable threads by id], so choice 0 means
 * "keep running"; at a block or exit they are the runnable threads by id.
 * A point with one candidate is not a choice.
 *
 * Timers: a thread sleeping with a deadline is woken (vtime := deadline)
 * when every runnable thread's clock has passed the deadline, or when no
 * thread is runnable at all (time then jumps to the earliest deadline).
 */
import { Rng } from './rng.js';
import { DeadlockError, SimThreadError, KernelBugError } from './errors.js';
import type { SchedEvent, Sleepable } from '../../include/linux/sched.js';

export { DeadlockError, SimThreadError, KernelBugError } from './errors.js';
export { explore } from './explore.js';
export type { ExploreOptions, ExploreResult } from './explore.js';

/* SchedEvent and Sleepable are declared in include/linux/sched.ts (include/ names them too) */
export type { SchedEvent, Sleepable } from '../../include/linux/sched.js';

export type SchedMode = 'run-to-completion' | 'random' | 'enumerate';

/**
 * Anything a thread can block on: locks, wait queues, completions, timers.
 * holders() names the threads that must act before the waiter can go on
 * (lock owners); wait queues have none. Used by deadlock reports.
 */
export interface Waitable {
  readonly name: string;
  readonly waitKind: string;          /* 'mutex', 'rwsem', 'wait queue', ... */
  holders?(): readonly Thread[];
}

const PREEMPT: SchedEvent = Object.freeze({ kind: 'preempt' });
const BLOCK: SchedEvent = Object.freeze({ kind: 'block' });

/** A simulated thread: a process thread, a kernel thread or a device engine. */
export class Thread {
  /*
   * This thread's clock, simulated ns. It starts as -0, a number V8 stores
   * as a double, so the field is a double from the first Thread on: a
   * field that starts as a small integer changes representation when the
   * clock passes 2^31 ns (about two simulated seconds, the third round of
   * `bench fault`), and V8 then replaces the hidden class of every Thread
   * and of the objects holding one and drops the code that relied on it,
   * a pause in the middle of a measurement. -0 + ns is ns, and -0 === 0.
   */
  vtime = -0;
  preempt_count = 0;         /* spinlocks held + preempt_disable(); > 0 is atomic context */
  state: 'runnable' | 'blocked' | 'done' = 'runnable';
  result: unknown = undefined;   /* body's return value, once done */
  error: unknown = undefined;    /* body's uncaught exception, if it died */
  waitingOn: Waitable | null = null;  /* set while blocked */
  deadline = Infinity;       /* ns; finite while in a timed sleep */
  timedOut = false;          /* last sleep ended by its deadline, not a wake-up */
  readonly held: Waitable[] = [];    /* locks held, oldest first (lockdep) */
  /** @internal */ gen: Sleepable<unknown> | null = null;
  /** @internal */ sched: Scheduler | null = null;

  constructor(
    readonly id: number,
    readonly name: string,
    public kind: 'user' | 'kthread' | 'device',
    public task: unknown,             /* owning process (set by mm), null for kthreads */
    /** @internal */ readonly body: (() => Sleepable<unknown>) | null,
  ) {}
}

/* The implicit thread of plain synchronous code and tests. */
let boot = new Thread(0, 'boot', 'kthread', null, null);
let cur: Thread = boot;
let active: Scheduler | null = null;     /* the scheduler inside run(), if any */
let lastSched: Scheduler | null = null;
let syncDepth = 0;                       /* nesting of runSync() */
let nested = 0;                          /* a thread is running at another's preemption point */
let waiting = false;                     /* the last yield was yieldWaiting(): the thread needs another to go on */
let retiredMax = 0;                      /* max vtime of schedulers replaced */

/** The deterministic scheduler of one simulated machine. */
export class Scheduler {
  readonly threads: Thread[] = [];
  readonly mode: SchedMode;
  choicesMade: number[] = [];     /* index chosen at each choice point */
  choicePoints: number[] = [];    /* number of candidates at each choice point */
  choicePreempts: boolean[] = []; /* was the point a preemption (choice > 0 preempts)? */
  switches: string[] = [];        /* names of threads in the order they got the CPU (not in run-to-completion) */
  steps = 0;                      /* scheduling steps taken by run() */
  readonly preemptPoints: boolean;/* preempt_point() is a choice point (random and enumerate modes) */
  pointSteps = 0;                 /* steps run by other threads at preemption points */
  ran = false;                    /* run() was called */
  /** @internal */ runq: Thread[] = [];
  /** @internal */ timers: Thread[] = [];
  private readonly rng: Rng;
  private readonly maxSteps: number;
  private readonly forced: readonly number[];
  private nextId = 1;

  constructor(opts: { mode?: SchedMode; seed?: number; maxSteps?: number; choices?: number[]; preemptPoints?: boolean } = {}) {
    this.mode = opts.mode ?? 'run-to-completion';
    this.preemptPoints = (opts.preemptPoints ?? false) && this.mode !== 'run-to-completion';
    this.rng = new Rng(opts.seed ?? 1);
    this.maxSteps = opts.maxSteps ?? 10_000_000;
    this.forced = opts.choices ?? [];
    if (lastSched !== null && lastSched !== this) retiredMax = Math.max(retiredMax, maxOf(lastSched));
    lastSched = this;
  }

  /**
   * spawn() - create a runnable thread (kthread_run(), clone()).
   * @name: for traces and deadlock reports.
   * @body: generator function; called when the thread first runs.
   * @kind: 'user', 'kthread' (default) or 'device'.
   * @task: the owning process, or null.
   *
   * The new thread's clock starts at its creator's clock.
   * Context: any; does not yield. Return: the thread.
   */
  spawn<T>(name: string, body: () => Sleepable<T>, kind: Thread['kind'] = 'kthread', task: unknown = null): Thread {
    const t = new Thread(this.nextId++, name, kind, task, body);
    t.vtime = cur.vtime;
    t.sched = this;
    this.threads.push(t);
    this.runq.push(t);
    return t;
  }

  /**
   * run() - run threads until every one is done.
   *
   * Throws DeadlockError when live threads remain and none can run,
   * SimThreadError (with the thread's name, cause = original) when a thread
   * throws, KernelBugError for a rule broken at a switch (sleeping in atomic
   * context), Error when maxSteps is exceeded (livelock).
   */
  run(): void {
    if (active !== null) throw new KernelBugError('Scheduler.run() called from inside a simulated thread');
    active = this;
    lastSched = this;
    this.ran = true;
    try {
      this.loop();
    } finally {
      active = null;
      cur = boot;
    }
  }

  private loop(): void {
    let t = this.pick(null);
    while (t !== null) {
      if (++this.steps > this.maxSteps) throw new Error(`scheduler: more than ${this.maxSteps} steps (livelock?)`);
      if (this.mode !== 'run-to-completion' && this.switches[this.switches.length - 1] !== t.name) this.switches.push(t.name);
      cur = t;
      let r: IteratorResult<SchedEvent, unknown>;
      try {
        if (t.gen === null) t.gen = t.body!();
        r = t.gen.next();
      } catch (e) {
        t.state = 'done';
        t.error = e;
        if (e instanceof KernelBugError) e.blame(t);
        throw e instanceof DeadlockError || e instanceof KernelBugError || e instanceof SimThreadError ? e : new SimThreadError(t, e);
      }
      if (r.done) {
        t.state = 'done';
        t.result = r.value;
        checkExit(t);
        t = this.pick(null);
      } else {
        if (t.preempt_count !== 0) throw atomicBug(t);
        t = this.pick(t.state === 'runnable' ? t : null);
      }
    }
    const stuck = this.threads.filter((x) => x.state === 'blocked');
    if (stuck.length > 0) throw new DeadlockError(stuck);
  }

  /* Choose who runs next. @running: the current thread if it is still runnable. */
  private pick(running: Thread | null): Thread | null {
    if (this.timers.length > 0) this.expireTimers(running);
    const rq = this.runq;
    if (rq.length === 0) return running;
    if (this.mode === 'run-to-completion') {
      if (running !== null) rq.push(running);       /* sched_yield(): round robin */
      return rq.shift()!;
    }
    const others = rq.length > 1 ? rq.slice().sort((a, b) => a.id - b.id) : rq.slice();
    const cands = running !== null ? [running, ...others] : others;
    const i = cands.length === 1 ? 0 : this.choose(cands.length, running !== null);
    const next = cands[i]!;
    if (next !== running) {
      rq.splice(rq.indexOf(next), 1);
      if (running !== null) rq.push(running);
    }
    return next;
  }

  private choose(n: number, isPreempt: boolean): number {
    let i: number;
    if (this.mode === 'random') {
      i = this.rng.int(n);
    } else {
      const k = this.choicesMade.length;
      i = k < this.forced.length ? this.forced[k]! : 0;
      if (i >= n) throw new Error(`enumerate: replay diverged at choice ${k}: choice ${i} of ${n} candidates`);
    }
    this.choicesMade.push(i);
    this.choicePoints.push(n);
    this.choicePreempts.push(isPreempt);
    return i;
  }

  /* Wake timed sleepers whose deadline every runnable clock has passed. */
  private expireTimers(running: Thread | null): void {
    this.timers = this.timers.filter((x) => x.state === 'blocked' && x.deadline !== Infinity);
    if (this.timers.length === 0) return;
    let horizon = Infinity;
    for (const x of this.runq) horizon = Math.min(horizon, x.vtime);
    if (running !== null) horizon = Math.min(horizon, running.vtime);
    if (horizon === Infinity) for (const x of this.timers) horizon = Math.min(horizon, x.deadline);
    const due = this.timers.filter((x) => x.deadline <= horizon)
      .sort((a, b) => a.deadline - b.deadline || a.id - b.id);
    for (const x of due) {
      const d = x.deadline;
      makeRunnable(x);
      if (x.vtime < d) x.vtime = d;
      x.timedOut = true;
    }
  }

  /**
   * @internal concurrentStep() - at preemption point @site of the running
   * thread @t: a choice point between going on (choice 0) and letting
   * another runnable thread run right here, one step (up to its next
   * yield) or until it blocks or ends, as another CPU would while @t is
   * stalled between two non-sleeping steps. The other thread runs nested on @t's stack; it cannot reach a
   * spinlock @t holds because @t holds none (preempt_count is 0 here).
   */
  concurrentStep(t: Thread, site: string): void {
    const rq = this.runq;
    if (rq.length === 0) return;
    const others = rq.length > 1 ? rq.slice().sort((a, b) => a.id - b.id) : rq.slice();
    /* 0: go on; 1..n: thread i-1 runs one step; n+1..2n: it runs until it blocks or ends */
    const i = this.choose(2 * others.length + 1, true);
    if (i === 0) return;
    const b = others[(i - 1) % others.length]!;
    const toEnd = i > others.length;
    rq.splice(rq.indexOf(b), 1);
    this.switches.push(`${b.name}@${site}${toEnd ? '*' : ''}`, t.name);
    do {
      if (++this.steps > this.maxSteps) throw new Error(`scheduler: more than ${this.maxSteps} steps (livelock?)`);
      this.pointSteps++;
    } while (this.nestedStep(t, b) && toEnd);
    if (b.state === 'runnable') rq.push(b);
  }

  /* one step of @b on @t's stack; true while @b stays runnable */
  private nestedStep(t: Thread, b: Thread): boolean {
    let r: IteratorResult<SchedEvent, unknown>;
    nested++;
    cur = b;
    waiting = false;
    try {
      if (b.gen === null) b.gen = b.body!();
      r = b.gen.next();
    } catch (e) {
      b.state = 'done';
      b.error = e;
      if (e instanceof KernelBugError) e.blame(b);
      throw e instanceof DeadlockError || e instanceof KernelBugError || e instanceof SimThreadError ? e : new SimThreadError(b, e);
    } finally {
      cur = t;
      nested--;
    }
    if (r.done) {
      b.state = 'done';
      b.result = r.value;
      checkExit(b);
      return false;
    }
    if (b.preempt_count !== 0) throw atomicBug(b);
    return b.state === 'runnable' && !waiting;   /* a thread waiting for @t to go on hands the CPU back */
  }

  /** @internal Are there threads a preemption point could switch to? */
  wantsPreempt(): boolean {
    return this.runq.length > 0 || this.timers.length > 0;
  }

  /** The scheduling history as "A -> B -> A" (random and enumerate modes). */
  formatSchedule(): string {
    return this.switches.join(' -> ');
  }
}

function maxOf(s: Scheduler): number {
  let m = 0;
  for (const t of s.threads) if (t.vtime > m) m = t.vtime;
  return m;
}

function atomicBug(t: Thread): KernelBugError {
  return new KernelBugError(`scheduling while atomic: thread "${t.name}" (id ${t.id}) preempt_count=${t.preempt_count}`);
}

function checkExit(t: Thread): void {
  if (t.preempt_count !== 0)
    throw new KernelBugError(`thread "${t.name}" exited in atomic context (preempt_count=${t.preempt_count})`);
  if (t.held.length !== 0)
    throw new KernelBugError(`thread "${t.name}" exited holding ${t.held.map((l) => `${l.waitKind} ${l.name}`).join(', ')}`);
}

/**
 * kthread_run() - start a kernel thread on the running thread's scheduler
 * (or, from boot code, on the most recently created one).
 * @name: thread name.
 * @body: the thread function.
 *
 * Context: any; does not yield. Return: the new Thread.
 */
export function kthread_run<T>(name: string, body: () => Sleepable<T>): Thread {
  const s = cur.sched ?? lastSched;
  if (s === null) throw new KernelBugError(`kthread_run(${name}): no Scheduler exists`);
  return s.spawn(name, body, 'kthread', null);
}

/**
 * current() - the simulated thread that is running.
 *
 * Outside Scheduler.run() this is the boot thread (id 0, 'kthread').
 * Context: any. Return: the running Thread.
 */
export function current(): Thread {
  return cur;
}

/**
 * schedule() - block the current thread until woken (or until @deadline).
 * @on: what it waits for (lock, wait queue...), for deadlock reports.
 * @deadline: absolute vtime (ns) at which a timer wakes it; Infinity: none.
 *
 * The caller has already put itself on @on's wait list, and re-checks its
 * condition on return (wake-ups may be spurious). Blocking on something the
 * thread itself holds is reported at once as a DeadlockError.
 * Context: may sleep; not in atomic context.
 * Return: true if the deadline woke it, false if a wake-up did.
 */
export function* schedule(on: Waitable | null, deadline = Infinity): Sleepable<boolean> {
  const t = cur;
  if (t.preempt_count !== 0) throw atomicBug(t);
  if (on !== null && on.holders !== undefined && on.holders().includes(t))
    throw new DeadlockError([t], `self-deadlock: thread "${t.name}" blocks on ${on.waitKind} ${on.name} which it holds`, on);
  t.state = 'blocked';
  t.waitingOn = on;
  t.deadline = deadline;
  t.timedOut = false;
  /* a thread woken by its timer stays listed until the next expiry pass: list it once */
  if (deadline !== Infinity && active !== null && syncDepth === 0 && t.sched === active && !active.timers.includes(t)) {
    active.timers.push(t);
  }
  yield BLOCK;
  const to = t.timedOut;
  t.timedOut = false;
  return to;
}

/**
 * wake_up_process() - make a blocked thread runnable.
 * @t: the thread.
 *
 * Its clock becomes max(its own, the waker's): it cannot resume before
 * the event that woke it happened.
 * Context: any; does not yield. Return: true if @t was blocked.
 */
export function wake_up_process(t: Thread): boolean {
  if (t.state !== 'blocked') return false;
  makeRunnable(t);
  if (cur.vtime > t.vtime) t.vtime = cur.vtime;
  return true;
}

function makeRunnable(t: Thread): void {
  t.state = 'runnable';
  t.waitingOn = null;
  t.deadline = Infinity;
  t.timedOut = false;
  if (t.sched !== null) t.sched.runq.push(t);
}

/**
 * cond_resched() - a preemption point.
 *
 * Free in run-to-completion mode and under runSync(): no yield is taken.
 * In random mode the scheduler may switch threads; in enumerate mode it is
 * a choice point.
 * Context: process context; a BUG in atomic context. May yield.
 */
export function* cond_resched(): Sleepable {
  const t = cur;
  if (t.preempt_count !== 0) throw atomicBug(t);
  const s = active;
  /* at another thread's preemption point, that thread is waiting to go on: always hand it back */
  if (s === null || s.mode === 'run-to-completion' || syncDepth !== 0 || (!s.wantsPreempt() && nested === 0)) return;
  yield PREEMPT;
}

/**
 * preempt_point() - a place where Linux may switch threads or where
 * another CPU may run between two non-sleeping steps: a lock release, a
 * PTE store, a refcount change, a sequence-count write.
 * @site: what happens here, for the schedule trace ("mutex_unlock").
 * @what: the object (a lock's name), appended to @site in the trace.
 *
 * Free unless the running scheduler was made with preemptPoints (random
 * and enumerate modes): then, in preemptible context (no spinlock held,
 * not under runSync(), not itself running at another thread's point), it
 * is a choice point at which another runnable thread may run one step
 * (Scheduler.concurrentStep). It never yields, so plain (non-generator)
 * code can call it.
 * Context: any; does nothing in atomic context.
 */
export function preempt_point(site: string, what = ''): void {
  const s = active;
  if (s === null || !s.preemptPoints || syncDepth !== 0 || nested !== 0) return;
  const t = cur;
  if (t.preempt_count !== 0 || t.sched !== s) return;
  s.concurrentStep(t, what === '' ? site : `${site} ${what}`);
}

/**
 * preemption_points_free() - do cond_resched() and preempt_point() do
 * nothing here (no scheduler running, run-to-completion mode, or inside
 * runSync())? A code path that would otherwise only sleep at such points
 * and at uncontended locks may then run as plain calls: no other thread
 * can run in between (the fault fast path, mm/fault.ts).
 * Context: any. Return: true if no preemption point can switch threads.
 */
export function preemption_points_free(): boolean {
  const s = active;
  return s === null || s.mode === 'run-to-completion' || syncDepth !== 0;
}

/**
 * sched_yield() - give the CPU to another runnable thread, in every mode.
 *
 * For polling loops: in run-to-completion mode the thread goes to the tail
 * of the run queue. Under runSync() it does nothing.
 * Context: may yield; not in atomic context.
 */
export function* sched_yield(): Sleepable {
  const t = cur;
  if (t.preempt_count !== 0) throw atomicBug(t);
  if (active === null || syncDepth !== 0) return;
  yield PREEMPT;
}

/**
 * yieldWaiting() - a preemption point for a thread that cannot make
 * progress until another does (a fault retried because someone else
 * holds the page). Like cond_resched(); in addition, a thread running at
 * another's preemption point hands the CPU back here instead of spinning
 * while that thread is stalled.
 * Context: process context; may yield.
 */
export function* yieldWaiting(): Sleepable {
  waiting = true;
  yield* cond_resched();
}

/**
 * might_sleep() - assert that the caller may sleep here.
 * Context: a BUG (throws KernelBugError) in atomic context.
 */
export function might_sleep(): void {
  const t = cur;
  if (t.preempt_count !== 0)
    throw new KernelBugError(`sleeping function called from invalid context: thread "${t.name}" preempt_count=${t.preempt_count}`);
}

/** preempt_disable() - enter atomic context (the thread may not yield). */
export function preempt_disable(): void {
  cur.preempt_count++;
}

/** preempt_enable() - leave atomic context; a BUG if not in it. */
export function preempt_enable(): void {
  if (cur.preempt_count <= 0) throw new KernelBugError(`preempt_enable: preempt_count underflow in thread "${cur.name}"`);
  cur.preempt_count--;
}

/** in_atomic() - true while preemption is disabled (a spinlock is held). */
export function in_atomic(): boolean {
  return cur.preempt_count !== 0;
}

/**
 * runSync() - drive a Sleepable to completion on the current thread,
 * outside the scheduler.
 * @gen: the started generator, e.g. runSync(mutex_lock(m)).
 *
 * Preemption points are skipped; a timed sleep advances the thread's clock
 * to its deadline. A sleep with no deadline can never end (nothing else
 * runs meanwhile): the generator is closed (its finally blocks undo its
 * wait-list entries) and a DeadlockError names the lock and its holder.
 * Context: not in atomic context if @gen blocks. Return: @gen's value.
 */
export function runSync<T>(gen: Sleepable<T>): T {
  const t = cur;
  syncDepth++;
  try {
    for (;;) {
      const r = gen.next();
      if (r.done) return r.value;
      if (t.preempt_count !== 0) throw atomicBug(t);
      if (r.value.kind === 'preempt' || t.state !== 'blocked') continue;
      if (t.deadline !== Infinity) {
        const d = t.deadline;
        t.state = 'runnable';
        t.waitingOn = null;
        t.deadline = Infinity;
        if (t.vtime < d) t.vtime = d;
        t.timedOut = true;
        continue;
      }
      const err = new DeadlockError([t], `runSync: thread "${t.name}" would sleep forever (nothing else runs inside runSync)`);
      t.state = 'runnable';
      t.waitingOn = null;
      gen.return(undefined as T);
      throw err;
    }
  } finally {
    syncDepth--;
  }
}

/** maxVtimeSeen() - the latest clock of any thread of this machine (clock.ts). */
export function maxVtimeSeen(): number {
  let m = Math.max(retiredMax, boot.vtime, cur.vtime);
  if (lastSched !== null) m = Math.max(m, maxOf(lastSched));
  return m;
}

/** schedulerActive() - the scheduler inside run(), or null. */
export function schedulerActive(): Scheduler | null {
  return active;
}

/**
 * resetScheduler() - forget every scheduler and start a fresh boot thread.
 * For tests (before.each). A BUG while Scheduler.run() is on the stack.
 */
export function resetScheduler(): void {
  if (active !== null) throw new KernelBugError('resetScheduler() inside Scheduler.run()');
  boot = new Thread(0, 'boot', 'kthread', null, null);
  cur = boot;
  lastSched = null;
  syncDepth = 0;
  nested = 0;
  retiredMax = 0;
}
