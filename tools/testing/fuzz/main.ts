/*
 * tools/testing/fuzz/main.ts - `npm run fuzz`: the differential fuzzer's
 * command line.
 *
 *   npm run fuzz -- [--seed S] [--seeds N] [--ops N] [--budget-seconds T]
 *                   [--keep i,j,k] [--no-shrink] [--fail-alloc W] [--continue]
 *                   [--without kind,kind] [--fail SITE=interval,probability,space,times]...
 *
 * Runs seeds S, S+1, ... (N of them, or until T seconds have passed), each
 * a sequence of --ops operations (default 500) on a freshly booted machine
 * (run.ts). At the first divergence it shrinks the sequence to a minimal
 * one, prints it with the command that replays it, and exits 1. --keep
 * replays only the listed operations of seed S (what the shrinker prints).
 * --without never draws the operation kinds named (a run around an open
 * bug; the replay command repeats it). --continue goes on after a divergence (a long run while known bugs are
 * open): each new kind of divergence (run.ts signature()) is shrunk once
 * and printed with its replay command, then only counted.
 * --fail arms a fault-injection site (lib/fault-inject.ts; the string of
 * Linux's boot parameters, as `hmm-sim run --fail`) on every machine; it
 * may be repeated. The model then accepts exactly the errno Linux returns
 * for an injected failure, or SIGBUS for a failed copy out of device
 * memory, and still demands every byte (inject.ts); the figure counts the
 * operations whose injected failure was accepted. --fail-alloc W draws
 * lib/test_hmm's HMM_DMIRROR_FLAGS(FAIL_ALLOC) with weight W (0 by
 * default: drawing it changes every seed's sequence); the flag taken is
 * an injected failure of the same rule, counted the same way.
 * The last line is the figure: operations, seeds, seconds, divergences.
 */
import '../../include/v8_flags.js';       /* first: the JIT setting (tools/include/v8_flags.ts) */
import { runSeed, runRecorded, shrink, describe, signature, type FuzzOptions } from './run.js';
import { fmtOp, type OpKind } from './ops.js';
import { parseFail, type FailSpec } from './inject.js';

interface Args {
  seed: number; seeds: number; ops: number; budget: number; keep: number[] | null; shrink: boolean; failAlloc: number;
  cont: boolean; without: OpKind[]; fails: FailSpec[];
}

const USAGE = `usage: npm run fuzz -- [--seed S] [--seeds N] [--ops N] [--budget-seconds T]
                     [--keep i,j,k] [--no-shrink] [--fail-alloc W] [--continue] [--without kind,kind]
                     [--fail SITE=interval,probability,space,times]...`;

/* A bad command line: the message and the usage go to stderr, exit 2. */
class UsageError extends Error {}

function value(argv: string[], i: number, numeric: boolean): string {
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new UsageError(`${argv[i]} needs a value`);
  if (numeric && !(Number(v) >= 0)) throw new UsageError(`${argv[i]} takes a number, not '${v}'`);
  return v;
}

function parse(argv: string[]): Args {
  const a: Args = { seed: 1, seeds: 1, ops: 500, budget: Infinity, keep: null, shrink: true, failAlloc: 0, cont: false, without: [], fails: [] };
  let seedsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--seed': a.seed = Number(value(argv, i++, true)); break;
      case '--seeds': a.seeds = Number(value(argv, i++, true)); seedsGiven = true; break;
      case '--ops': a.ops = Number(value(argv, i++, true)); break;
      case '--budget-seconds': a.budget = Number(value(argv, i++, true)); break;
      case '--keep': a.keep = value(argv, i++, false).split(',').map(Number); break;
      case '--no-shrink': a.shrink = false; break;
      case '--continue': a.cont = true; break;
      case '--without': a.without = value(argv, i++, false).split(',') as OpKind[]; break;
      case '--fail-alloc': a.failAlloc = Number(value(argv, i++, true)); break;
      case '--fail': {
        const f = parseFail(value(argv, i++, false));
        if (typeof f === 'string') throw new UsageError(f);
        a.fails.push(f);
        break;
      }
      default: throw new UsageError(`unknown argument '${argv[i]}'`);
    }
  }
  if (!seedsGiven && a.budget !== Infinity) a.seeds = Infinity;
  return a;
}

function replayCommand(a: Args, keep: number[] | null): string {
  const fa = (a.failAlloc ? ` --fail-alloc ${a.failAlloc}` : '') + (a.without.length ? ` --without ${a.without.join(',')}` : '') +
    a.fails.map((f) => ` --fail ${f.site}=${f.attr}`).join('');
  return `npm run fuzz -- --seed ${a.seed} --ops ${a.ops}${fa}${keep ? ` --keep ${keep.join(',')}` : ''}`;
}

function main(): number {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) { console.log(USAGE); return 0; }
  let a: Args;
  try {
    a = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`fuzz: ${e.message}\n${USAGE}`);
    return 2;
  }
  const o: FuzzOptions = { failAlloc: a.failAlloc, without: a.without, fails: a.fails };
  const t0 = Date.now();
  if (a.keep !== null) {
    const full = runSeed(a.seed, a.ops, o);
    const r = runRecorded(a.keep.map((j) => full.ops[j]), o);
    for (const j of a.keep) console.log(`  #${j} ${fmtOp(full.ops[j])}`);
    console.log(r.failure === null ? 'replay: no divergence' : `replay: DIVERGENCE ${r.failure}`);
    return r.failure === null ? 0 : 1;
  }
  let total = 0, seeds = 0, diverged = 0, injected = 0, fired = 0, relSkipped = 0;
  const kinds = new Map<string, number>();
  const seedsOf = new Map<string, number[]>();   /* every diverging seed of a kind, for the summary */
  const first = a.seed;
  for (let s = first; s < first + a.seeds && (Date.now() - t0) / 1000 < a.budget; s++) {
    const r = runSeed(s, a.ops, o);
    seeds++;
    injected += r.injected;
    fired += r.fired;
    relSkipped += r.releaseSkipped;
    if (r.failure === null) { total += r.executed; continue; }
    diverged++;
    const sig = signature(r.failure);
    const seen = kinds.get(sig) ?? 0;
    kinds.set(sig, seen + 1);
    seedsOf.set(sig, [...(seedsOf.get(sig) ?? []), s]);
    if (seen > 0) continue;
    console.log(`seed ${s}: DIVERGENCE after ${r.failedAt} operations: ${r.failure}`);
    if (a.shrink) {
      const m = shrink(r, o);
      console.log(`minimal sequence (${m.keep.length} operations): ${m.failure}`);
      for (const line of describe(r.ops, m.keep)) console.log(line);
      console.log(`replay: ${replayCommand({ ...a, seed: s }, m.keep)}`);
    } else {
      console.log(`replay: ${replayCommand({ ...a, seed: s }, null)}`);
    }
    if (!a.cont) {
      console.log(`fuzz: ${total} operations, ${seeds} seeds, ${((Date.now() - t0) / 1000).toFixed(1)} s, 1 divergence`);
      return 1;
    }
  }
  for (const [sig, n] of kinds) {
    const list = seedsOf.get(sig) ?? [];
    console.log(`  ${n} seed(s): ${sig}  [seeds ${list.slice(0, 12).join(' ')}${list.length > 12 ? ' ...' : ''}]`);
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (diverged > 0) {
    console.log(`fuzz: ${total} operations in ${seeds - diverged} clean seeds of ${seeds} (${first}..${first + seeds - 1}), ${secs} s, ${diverged} divergences of ${kinds.size} kinds`);
    return 1;
  }
  const inj = a.fails.length > 0 || a.failAlloc > 0 ? `, ${fired} injected failures (${injected} returned to the caller and accepted)` : '';
  const rel = relSkipped > 0 ? `, ${relSkipped} RELEASEs not issued (eviction would not fit in RAM)` : '';
  console.log(`fuzz: ${total} operations, ${seeds} seeds (${first}..${first + seeds - 1}), ${secs} s, 0 divergences${inj}${rel}`);
  return 0;
}

process.exitCode = main();
