/*
 * tools/testing/fuzz/run.ts - one fuzzer sequence from boot to teardown,
 * and the shrinker that cuts a failing sequence down to a minimal one.
 *
 * A sequence: boot a fresh machine (start_kernel with a small RAM, swap,
 * THP always, then the dmirror and hmm_dummy modules loaded), spawn the process of slot 0, then draw and execute @ops
 * operations (ops.ts), checking the invariants (invariants.ts) every
 * @checkEvery operations; finally every process exits and the teardown
 * check runs. The generated operations are recorded, so a failure can be
 * replayed from the seed alone, or from the seed and the indices kept by
 * the shrinker (runRecorded).
 *
 * Shrinking is delta debugging over the recorded list: remove chunks of
 * operations (halves, quarters, ... single operations) while the sequence
 * still diverges, keeping the first line of the divergence message's
 * category (what diverged, without the operation that showed it) stable
 * the same (signature()), so that the shrinker cannot wander off to an
 * unrelated failure on the way.
 */
import { start_kernel } from '../../../mm/init.js';
import { hmm_dmirror_init } from '../../../lib/test_hmm.js';
import { insmodHmmDummy } from '../../../drivers/char/hmm_dummy.js';
import { shrink_all_memory } from '../../../mm/vmscan.js';
import { runSync } from '../../../lib/sim/sched.js';
import { OpGen, type Op, type GenOptions, fmtOp } from './ops.js';
import { FuzzWorld, Divergence } from './machine.js';
import { checkCoherence, checkDevicePages, checkTeardown, baseline } from './invariants.js';
import { armFails, injectFired, type FailSpec } from './inject.js';

/** How a sequence runs. */
export interface FuzzOptions extends GenOptions {
  ram_bytes?: number;            /* default 4 MiB */
  swap_bytes?: number;           /* default 32 MiB */
  checkEvery?: number;           /* invariant checks every N operations (default 16) */
  afterOp?: (w: FuzzWorld, op: Op) => void;   /* tests only: tamper with the machine after an operation */
  fails?: FailSpec[];            /* --fail: sites armed at every boot (inject.ts) */
}

/** The result of one sequence. */
export interface SeqResult {
  ops: Op[];                     /* every operation drawn (or replayed) */
  executed: number;              /* operations that ran (not skipped) */
  failure: string | null;        /* the divergence, or null */
  failedAt: number;              /* index in ops of the failing operation (ops.length: teardown) */
  injected: number;              /* --fail: operations whose injected failure the model accepted */
  fired: number;                 /* --fail: injected failures, accepted or absorbed (a retry loop, a fallback) */
  releaseSkipped: number;        /* dm_release not issued: the eviction would not fit in RAM (releaseFits) */
}

/** bootFuzzMachine() - the fuzzer's machine: small RAM, swap, THP always, both test drivers loaded. */
export function bootFuzzMachine(o: FuzzOptions = {}): void {
  start_kernel({ ram_bytes: o.ram_bytes ?? 4 << 20, swap_bytes: o.swap_bytes ?? 32 << 20, transparent_hugepage: 'always' });
  hmm_dmirror_init();
  insmodHmmDummy();
  armFails(o.fails ?? []);
}

/* run ops (drawn from gen when given, else the list) and the teardown */
function execute(o: FuzzOptions, list: Op[] | null, gen: OpGen | null, count: number): SeqResult {
  bootFuzzMachine(o);
  const base = baseline();
  const w = new FuzzWorld();
  const ops: Op[] = [];
  const every = o.checkEvery ?? 16;
  let i = 0;
  try {
    w.exec({ k: 'spawn', s: 0, a: [] });
    for (; i < count; i++) {
      const op = gen !== null ? gen.next(w) : list![i];
      ops.push(op);
      w.exec(op);
      o.afterOp?.(w, op);
      if ((i + 1) % every === 0) { checkCoherence(w); checkDevicePages(w); }
    }
    checkCoherence(w);
    checkDevicePages(w);
    for (let s = w.slots.length - 1; s >= 0; s--) if (w.slots[s] !== null) w.exit(s);
    /*
     * Linux may leave an unmapped folio in the swap cache (a zapped
     * device-exclusive entry does not free it); reclaim drops such
     * folios and their slots (a dirty one is written out on one pass and
     * freed on the next), so reclaim until it makes no progress.
     */
    for (let pass = 0; pass < 8 && runSync(shrink_all_memory(1 << 20)) > 0; pass++);
    checkTeardown(base);
    return { ops, executed: w.executed, failure: null, failedAt: -1, injected: w.injected, fired: injectFired(),
      releaseSkipped: w.releaseSkipped };
  } catch (e) {
    const msg = e instanceof Divergence ? e.message : `${e instanceof Error ? e.stack ?? e.message : String(e)}`;
    return { ops, executed: w.executed, failure: msg, failedAt: i, injected: w.injected, fired: injectFired(),
      releaseSkipped: w.releaseSkipped };
  }
}

/** runSeed() - draw and run @nops operations from @seed. */
export function runSeed(seed: number, nops: number, o: FuzzOptions = {}): SeqResult {
  return execute(o, null, new OpGen(seed, o), nops);
}

/** runRecorded() - run a recorded list of operations. */
export function runRecorded(ops: Op[], o: FuzzOptions = {}): SeqResult {
  return execute(o, ops, null, ops.length);
}

/**
 * shrink() - a minimal failing sub-sequence of a failing run: no single
 * operation can be removed and still diverge. Return: the indices (into
 * the original list) of the operations kept, and the final failure.
 */
export function shrink(r: SeqResult, o: FuzzOptions = {}, budgetRuns = 2000): { keep: number[]; failure: string } {
  let keep = [...Array(Math.min(r.failedAt + 1, r.ops.length)).keys()];
  let failure = r.failure!;
  let runs = 0;
  const want = signature(failure);
  const fails = (idx: number[]): string | null => {
    runs++;
    const res = runRecorded(idx.map((j) => r.ops[j]), o);
    return res.failure !== null && signature(res.failure) === want ? res.failure : null;
  };
  for (let chunk = Math.max(1, keep.length >> 1); chunk >= 1 && runs < budgetRuns; chunk = chunk === 1 ? 0 : chunk >> 1) {
    let changed = true;
    while (changed && runs < budgetRuns) {
      changed = false;
      for (let at = keep.length - chunk; at >= 0 && runs < budgetRuns; at -= chunk) {
        const cand = keep.slice(0, at).concat(keep.slice(at + chunk));
        const f = fails(cand);
        if (f !== null) { keep = cand; failure = f; changed = true; at = Math.min(at, keep.length - chunk + 1); }
      }
    }
  }
  return { keep, failure };
}

/*
 * signature() - what makes two divergences "the same failure" for the
 * shrinker: the message without the operation that showed it and without
 * numbers (addresses, pfns, counts change as operations are removed).
 */
export function signature(msg: string): string {
  const noOp = msg.replace(/^[a-z_]+ s\d \[[^\]]*\]: /, '');
  return noOp.split('\n')[0].replace(/0x[0-9a-f]+|\d+/g, 'N');
}

/** describe() - the kept operations, one a line, for a report. */
export function describe(ops: Op[], keep: number[]): string[] {
  return keep.map((j) => `  #${j} ${fmtOp(ops[j])}`);
}
