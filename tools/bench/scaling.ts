/*
 * tools/bench/scaling.ts - `npm run bench -- scaling`: per-page cost of the
 * main operations as the size grows from 1k to 4M pages (4 MiB to 16 GiB).
 *
 * For each size, on a fresh machine sized for it:
 *   fault, fork, COW, munmap   one round of the workload of
 *                              tools/bench/workload.ts (a process writes N
 *                              pages, forks, the child rewrites them, exits,
 *                              the parent unmaps);
 *   hmm_range_fault            one snapshot of the N resident pages;
 *   migration                  a dmirror round trip of the N pages (to
 *                              device-private memory and back).
 * Printed: CPU ns per page for each operation and size, beside the same
 * operation's per-page cost at 1k pages: a flat table has ratios near 1.
 * Target (issue 17): migration per page flat (ratio <= 1.5) up to 1M.
 * The JIT is warmed on every path first (16k-page workload, 4k-page
 * migration); then small sizes are repeated (median of 9 at 1k, 5 at
 * 10k, 3 at 100k) after a warm-up round; 1M and 4M run once. A size
 * the machine cannot hold prints "skipped: reason": the simulator's RAM
 * limit, or the host memory it would need against what is free now.
 * SCALING_BENCH_MAX caps the largest size (tests run it small).
 */
import { freemem } from 'node:os';
import { start_kernel } from '../../mm/init.js';
import { Process } from '../include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_POPULATE } from '../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { tracing_off } from '../../lib/sim/trace.js';
import { measure, row, skipped, type Stats } from './harness.js';
import { simulatedRound, PHASES, roundStats, perPage, type Phase, type Round } from './workload.js';
import { migrateRig, snapshotRig } from './hmm.js';
import { sparse_pool_limit } from '../../mm/sparse.js';

export const SCALING_SIZES = [1 << 10, 10 << 10, 100 << 10, 1 << 20, 4 << 20];
const OPS = ['anon fault', 'fork', 'COW fault', 'munmap', 'hmm_range_fault', 'migration'] as const;
type Op = typeof OPS[number];
const PHASE_OP: Record<Phase, Op> = { anon: 'anon fault', fork: 'fork', cow: 'COW fault', munmap: 'munmap' };

/* Host bytes a run of @pages needs: content of RAM touched twice (COW) plus a generous 1 KiB of metadata per page. */
const hostNeed = (pages: number) => pages * (2 * PAGE_SIZE + 1024);
const GiB = 2 ** 30;
const label = (n: number) => (n >= 1 << 20 ? `${n >> 20}M` : `${n >> 10}k`);

/* Boot a machine of @ram_bytes; the error text when the simulator cannot. */
function boot(ram_bytes: number): string | null {
  try {
    start_kernel({ ram_bytes });
    tracing_off();
    return null;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

function workloadCosts(pages: number, reps: number): Record<Op, Stats> | string {
  const err = boot(pages * PAGE_SIZE * 2 + (64 << 20));
  if (err !== null) return `cannot boot ${(pages * PAGE_SIZE * 2 / GiB).toFixed(1)} GiB of RAM: ${err}`;
  const p = Process.spawn('bench');
  simulatedRound(p, Math.min(pages, 16384));
  const rounds: Round[] = [];
  for (let r = 0; r < reps; r++) rounds.push(simulatedRound(p, pages));
  const s = roundStats(rounds);
  const out = {} as Record<Op, Stats>;
  for (const ph of PHASES) out[PHASE_OP[ph]] = perPage(s[ph].cpu, pages);
  const len = pages * PAGE_SIZE;
  const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE);
  const { snap } = snapshotRig(p, a, len);
  out['hmm_range_fault'] = perPage(measure(snap, { warmup: 1, reps }).cpu, pages);
  p.munmap(a, len);
  return out;
}

/*
 * The migration row: the rig of tools/bench/hmm.ts (no read-back), with
 * freed sections' host memory kept in the simulator's pool as the fault
 * bench keeps it, so that a size larger than the default pool does not
 * measure the host's page faults on fresh memory.
 */
function migrationCost(pages: number, reps: number): Stats | string {
  const bytes = pages * PAGE_SIZE;
  const err = boot(MIGRATION_RAM(pages));
  if (err !== null) return `cannot boot ${(MIGRATION_RAM(pages) / GiB).toFixed(1)} GiB of RAM: ${err}`;
  const pool = sparse_pool_limit(Infinity);
  try {
    const rig = migrateRig(bytes, false);
    let ret = 0;
    const t = measure(() => { ret = rig.toDev() || rig.toSys() || ret; }, { warmup: 2, reps });
    if (ret !== 0) return `round trip failed: ${ret}`;
    if (!rig.check()) throw new Error('bench: data lost in the migration round trip');
    return perPage(t.cpu, pages);
  } finally {
    sparse_pool_limit(pool);
  }
}

/* RAM for a migration of @pages: the data, its device backing and room to come back */
const MIGRATION_RAM = (pages: number) => 3 * pages * PAGE_SIZE + (128 << 20);

/** bench_scaling() - run and print the scaling benchmark. */
export async function bench_scaling(): Promise<void> {
  const max = Number(process.env.SCALING_BENCH_MAX ?? Infinity);
  const sizes = SCALING_SIZES.filter((n) => n <= max);
  console.log(`scaling: CPU ns per page at ${sizes.map(label).join(', ')} pages; baseline: the same operation at ${label(sizes[0])}`);
  /* warm the JIT on every path first, so that the smallest size is not measured cold */
  workloadCosts(16384, 2);
  migrationCost(4096, 2);
  const res = new Map<number, Record<Op, Stats | string>>();
  for (const n of sizes) {
    const reps = n <= 1 << 10 ? 9 : n <= 10 << 10 ? 5 : n <= 100 << 10 ? 3 : 1;
    const free = freemem();
    const row_ = {} as Record<Op, Stats | string>;
    if (hostNeed(n) > free * 0.7) {
      const why = `needs ~${(hostNeed(n) / GiB).toFixed(1)} GiB of host memory, ${(free / GiB).toFixed(1)} GiB free now`;
      for (const op of OPS) row_[op] = why;
    } else {
      const w = workloadCosts(n, reps);
      for (const op of OPS) if (op !== 'migration') row_[op] = typeof w === 'string' ? w : w[op];
      row_['migration'] = 3 * n * PAGE_SIZE > free * 0.7
        ? `needs ~${(3 * n * PAGE_SIZE / GiB).toFixed(1)} GiB of host memory, ${(free / GiB).toFixed(1)} GiB free now`
        : migrationCost(n, reps);
    }
    res.set(n, row_);
  }
  const first = res.get(sizes[0])!;
  for (const op of OPS) {
    for (const n of sizes) {
      const v = res.get(n)![op], b = first[op];
      const name = `${op} @${label(n)}`;
      if (typeof v === 'string') { skipped(name, v); continue; }
      const target = op === 'migration' && n > sizes[0] && n <= 1 << 20 ? { ratio_max: 1.5 } : '';
      row(name, v, 'ns/page', `@${label(sizes[0])}`, typeof b === 'string' ? NaN : b, target);
    }
  }
}

