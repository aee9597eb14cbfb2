/*
 * tools/bench/deopt.ts - `npm run bench -- deopt`: does the fault path
 * deoptimize over and over (a deopt loop: V8 optimizes a function, a
 * hidden class or value representation changes under it, it bails out,
 * and again)?
 *
 * Runs the workload of tools/bench/workload.ts (DEOPT_ROUNDS rounds, 4 by
 * default, of DEOPT_PAGES pages, 65,536 by default: anonymous faults,
 * fork, COW faults, exit, munmap) in a child node started with
 * --trace-deopt and the JIT setting of every entry point
 * (tools/include/v8_flags.ts), which prints a marker line before each
 * round, and counts the bailouts per function and round. A function is
 * its SharedFunctionInfo, not its name: the page accessors are all called
 * `get` or `set`, and adding up the bailouts of forty getters is not a
 * loop.
 *
 * The first round is where type feedback settles: a function whose long
 * loop was compiled on stack (OSR) before the code after the loop ever
 * ran bails out there once per call until it is optimized as a whole
 * (free_pages_and_swap_cache() did so 5-12 times in one run of two). Its
 * bailouts are printed, not judged. Target: in the later rounds no
 * function bails out more than DEOPT_MAX (3) times; a function that keeps
 * bailing out round after round is a loop.
 *
 * Run alone: node --trace-deopt dist/tools/bench/deopt.js --child
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { check_target, row } from './harness.js';

const ROUNDS = Number(process.env.DEOPT_ROUNDS ?? 4);
const PAGES = Number(process.env.DEOPT_PAGES ?? 65536);
const DEOPT_MAX = 3;
/** The line the child prints before round N (1-based). */
export const ROUND_MARK = 'deopt-bench round ';

/** Bailouts of one round: count per function key (name@sfi). */
export type RoundBailouts = Map<string, number>;

/**
 * countBailouts() - the bailouts in --trace-deopt output, per round: entry
 * 0 is what ran before the first ROUND_MARK line (boot), entry N round N.
 * Keys are "name@sfi" (the SharedFunctionInfo's address as printed).
 */
export function countBailouts(trace: string): RoundBailouts[] {
  const rounds: RoundBailouts[] = [new Map()];
  const re = /\[bailout \(kind: [^,]*, reason: [^)]*\): begin\. deoptimizing [^<]*<JSFunction ([^ >]*) \(sfi = (0x[0-9a-f]+)\)/;
  for (const line of trace.split('\n')) {
    if (line.startsWith(ROUND_MARK)) { rounds.push(new Map()); continue; }
    const m = re.exec(line);
    if (m === null) continue;
    const per = rounds[rounds.length - 1], key = `${m[1] || '(anonymous)'}@${m[2]}`;
    per.set(key, (per.get(key) ?? 0) + 1);
  }
  return rounds;
}

/** sumBailouts() - @rounds added up per function. */
export function sumBailouts(rounds: readonly RoundBailouts[]): RoundBailouts {
  const sum: RoundBailouts = new Map();
  for (const r of rounds) for (const [k, n] of r) sum.set(k, (sum.get(k) ?? 0) + n);
  return sum;
}

/**
 * worstBailouts() - the functions of @per with the most bailouts, most
 * first, labelled by name; a name that several functions share gets its
 * sfi address too.
 */
export function worstBailouts(per: RoundBailouts, n: number): [string, number][] {
  const names = new Map<string, number>();
  for (const k of per.keys()) { const name = k.slice(0, k.lastIndexOf('@')); names.set(name, (names.get(name) ?? 0) + 1); }
  return [...per.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, c]) => {
    const name = k.slice(0, k.lastIndexOf('@'));
    return [names.get(name)! > 1 ? `${name}(${k.slice(k.lastIndexOf('@') + 1)})` : name, c];
  });
}

async function child(): Promise<void> {
  await import('../include/v8_flags.js');   /* first: the JIT setting the bench and every entry point run with */
  const { start_kernel } = await import('../../mm/init.js');
  const { tracing_off } = await import('../../lib/sim/trace.js');
  const { lockdepAtBoot } = await import('../../lib/locking/lockdep.js');
  const { Process } = await import('../include/nolibc/nolibc.js');
  const { simulatedRound } = await import('./workload.js');
  lockdepAtBoot(false);
  start_kernel({ ram_bytes: Math.max(1 << 30, PAGES * 4096 * 2 + (64 << 20)) });
  tracing_off();
  const p = Process.spawn('deopt');
  for (let i = 1; i <= ROUNDS; i++) {
    console.log(`${ROUND_MARK}${i}`);
    simulatedRound(p, PAGES);
  }
}

/** bench_deopt() - run and print the deopt check. */
export async function bench_deopt(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--trace-deopt', self, '--child'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`deopt child failed: ${r.stderr}`);
  const rounds = countBailouts(r.stdout);
  if (rounds.length !== ROUNDS + 1) throw new Error(`deopt child: ${rounds.length - 1} round markers, ${ROUNDS} expected`);
  const all = sumBailouts(rounds), later = sumBailouts(rounds.slice(2));
  const total = [...all.values()].reduce((a, b) => a + b, 0);
  const faults = ROUNDS * PAGES * 2;
  const fmt = (per: RoundBailouts) => worstBailouts(per, 6).map(([f, n]) => `${f} ${n}`).join(', ') || 'none';
  console.log(`deopt: ${ROUNDS} rounds of ${PAGES} pages (${faults} faults) under --trace-deopt: ${total} bailouts in ${all.size} functions`);
  console.log(`  per round (boot, then 1-${ROUNDS}): ${rounds.map((x) => [...x.values()].reduce((a, b) => a + b, 0)).join(', ')}`);
  console.log(`  most, round 1 (feedback settling): ${fmt(rounds[1])}`);
  console.log(`  most, rounds 2-${ROUNDS}: ${fmt(later)}`);
  row('bailouts per 1000 faults', total / faults * 1000, '', 'functions', all.size);
  const worst = worstBailouts(later, 1)[0] ?? ['-', 0];
  console.log(`  no deopt loop (at most ${DEOPT_MAX} bailouts per function after round 1): ` +
    `${check_target('no deopt loop on the fault path', worst[1] <= DEOPT_MAX, `${worst[0]} ${worst[1]} after round 1`)}`);
}

if (process.argv.includes('--child')) await child();
