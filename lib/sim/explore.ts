/*
 * lib/sim/explore.ts - systematic search of thread interleavings.
 *
 * No Linux twin: this is the simulator's answer to KCSAN and to "run the
 * stress test overnight". A small scenario (a fresh world, a few threads)
 * is run again and again under an 'enumerate' Scheduler; each run takes a
 * different sequence of choices at the scheduler's choice points (see
 * sched.ts for the numbering), in depth-first order, until every sequence
 * has been tried or a run fails. Like CHESS (Musuvathi et al., OSDI'08) it
 * bounds the number of preemptions (choices > 0 at a preemption point),
 * because most concurrency bugs need only one or two.
 *
 * Requirements on the scenario: it builds all its state afresh on every
 * call and is deterministic apart from scheduling (seeded randomness only).
 * Otherwise replay diverges, which is reported as an error.
 */
import { Scheduler } from './sched.js';

export interface ExploreOptions {
  maxRuns?: number;          /* stop after this many runs (default 10000) */
  preemptionBound?: number;  /* at most this many preemptions per run (default Infinity) */
  maxSteps?: number;         /* per-run step budget passed to the Scheduler */
  check?: (s: Scheduler) => void;  /* invariant checked after each run; throws on failure */
  preemptPoints?: boolean;   /* also choose at preempt_point() sites (lock releases, PTE stores, ...) */
}

export interface ExploreResult {
  runs: number;              /* runs executed (including a failing one) */
  complete: boolean;         /* every interleaving within the bound was tried */
  failure: null | {
    choices: number[];       /* replay: new Scheduler({ mode: 'enumerate', choices }) */
    error: unknown;          /* what the failing run threw */
    trace?: string;          /* the failing schedule, "A -> B -> A" */
  };
}

/**
 * explore() - run @scenario under every scheduling choice sequence.
 * @scenario: builds a fresh world and spawns threads on the Scheduler it is
 *            given; it may call s.run() itself, otherwise explore() does.
 * @opts: see ExploreOptions.
 *
 * Stops at the first run whose threads throw (including DeadlockError) or
 * whose @opts.check throws.
 * Context: not inside Scheduler.run(). Return: an ExploreResult.
 */
export function explore(scenario: (s: Scheduler) => void, opts: ExploreOptions = {}): ExploreResult {
  const maxRuns = opts.maxRuns ?? 10_000;
  const bound = opts.preemptionBound ?? Infinity;
  let prefix: number[] = [];
  let runs = 0;
  while (runs < maxRuns) {
    const s = new Scheduler({ mode: 'enumerate', choices: prefix, preemptPoints: opts.preemptPoints ?? false,
      ...(opts.maxSteps !== undefined ? { maxSteps: opts.maxSteps } : {}) });
    runs++;
    try {
      scenario(s);
      if (!s.ran) s.run();
      opts.check?.(s);
    } catch (error) {
      return { runs, complete: false, failure: { choices: s.choicesMade.slice(), error, trace: s.formatSchedule() } };
    }
    const next = nextPrefix(s, bound);
    if (next === null) return { runs, complete: true, failure: null };
    prefix = next;
  }
  return { runs, complete: false, failure: null };
}

/*
 * The next choice sequence in depth-first order: bump the deepest choice
 * that has an untried alternative within the preemption bound, and drop
 * what follows it (those choices default to 0, "no preemption").
 */
function nextPrefix(s: Scheduler, bound: number): number[] | null {
  const made = s.choicesMade;
  let used = 0;
  for (let i = 0; i < made.length; i++) if (s.choicePreempts[i] && made[i]! > 0) used++;
  for (let i = made.length - 1; i >= 0; i--) {
    const c = made[i]!;
    const preempt = s.choicePreempts[i]!;
    if (preempt && c > 0) used--;           /* preemptions in made[0..i) */
    if (c + 1 >= s.choicePoints[i]!) continue;
    if (preempt && used + 1 > bound) continue;
    const p = made.slice(0, i);
    p.push(c + 1);
    return p;
  }
  return null;
}

/**
 * countPreemptions() - preemptions taken in a run of @s (for tests and
 * reports).
 */
export function countPreemptions(s: Scheduler): number {
  let n = 0;
  for (let i = 0; i < s.choicesMade.length; i++) if (s.choicePreempts[i] && s.choicesMade[i]! > 0) n++;
  return n;
}
