/*
 * tools/bench/deopt.ts - `npm run bench -- deopt`: does the fault path
 * deoptimize over and over (a deopt loop: V8 optimizes a function, a
 * hidden class or value representation changes under it, it bails out,
 * and again)?
 *
 * Runs the workload of tools/bench/workload.ts (DEOPT_ROUNDS rounds of
 * 65,536 pages: anonymous faults, fork, COW faults, munmap) in a child
 * node started with --trace-deopt, and counts the bailouts per function.
 * Printed: bailouts per 1,000 faults against the number of functions that
 * deoptimized at all, and the functions that bailed out most. Target: no
 * function bails out more than DEOPT_MAX (3) times: a few deopts while
 * type feedback settles are normal, a count that grows with the rounds
 * is a loop.
 *
 * Run alone: node --trace-deopt dist/tools/bench/deopt.js --child
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { check_target, row } from './harness.js';

const ROUNDS = Number(process.env.DEOPT_ROUNDS ?? 3);
const PAGES = 65536;
const DEOPT_MAX = 3;

/** countBailouts() - bailouts per function name in --trace-deopt output. */
export function countBailouts(trace: string): Map<string, number> {
  const per = new Map<string, number>();
  for (const m of trace.matchAll(/\[bailout \(kind: [^,]*, reason: ([^)]*)\): begin\. deoptimizing [^<]*<JSFunction ([^ >]*)/g)) {
    per.set(m[2], (per.get(m[2]) ?? 0) + 1);
  }
  return per;
}

async function child(): Promise<void> {
  const { start_kernel } = await import('../../mm/init.js');
  const { tracing_off } = await import('../../lib/sim/trace.js');
  const { lockdepAtBoot } = await import('../../lib/locking/lockdep.js');
  const { Process } = await import('../include/nolibc/nolibc.js');
  const { simulatedRound } = await import('./workload.js');
  lockdepAtBoot(false);
  start_kernel({ ram_bytes: 1 << 30 });
  tracing_off();
  const p = Process.spawn('deopt');
  for (let i = 0; i < ROUNDS; i++) simulatedRound(p, PAGES);
}

/** bench_deopt() - run and print the deopt check. */
export async function bench_deopt(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--trace-deopt', self, '--child'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`deopt child failed: ${r.stderr}`);
  const per = countBailouts(r.stdout);
  const total = [...per.values()].reduce((a, b) => a + b, 0);
  const faults = ROUNDS * PAGES * 2;
  const worst = [...per.entries()].sort((a, b) => b[1] - a[1]);
  console.log(`deopt: ${ROUNDS} rounds of ${PAGES} pages (${faults} faults) under --trace-deopt: ${total} bailouts in ${per.size} functions`);
  console.log(`  most: ${worst.slice(0, 6).map(([f, n]) => `${f} ${n}`).join(', ') || 'none'}`);
  row('bailouts per 1000 faults', total / faults * 1000, '', 'functions', per.size);
  const most = worst.length > 0 ? worst[0][1] : 0;
  console.log(`  no deopt loop (at most ${DEOPT_MAX} bailouts per function): ` +
    `${check_target('no deopt loop on the fault path', most <= DEOPT_MAX, `${worst[0]?.[0] ?? '-'} ${most}`)}`);
}

if (process.argv.includes('--child')) await child();
