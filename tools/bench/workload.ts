/*
 * tools/bench/workload.ts - the process workload the fault and scaling
 * benchmarks share, and the host kernel's run of the same workload
 * (tools/bench/minflt.c) as their baseline.
 *
 * One round on a booted machine: mmap N anonymous pages, write one byte
 * per page (first-touch faults), fork, the child writes every page again
 * (COW faults) and exits (timed until the parent's wait returns), the
 * parent munmaps the range. Each phase is
 * timed in CPU and wall time; the data written is checked.
 *
 * The sliced round (slicedRound(), for a size whose two copies of the
 * data do not fit in the host's memory: `bench scaling` at 4M pages on a
 * 24 GB host): the parent writes all N pages, then S times forks a child
 * that rewrites only its own slice of N/S pages (COW) and exits; the
 * parent munmaps at the end. The host holds N + N/S pages of contents at
 * most (the child's copies go back to the simulator's section pool at
 * its exit and the next slice reuses them) instead of 2N. Per page
 * (roundUnits()): anon fault per page written (N), fork per PTE copied
 * (S x N: each fork copies the whole N-page table), COW per page
 * rewritten (N in all), exit per PTE zapped (S x N: N/S pages of the
 * child's own, the rest shared with the parent), munmap per page (N).
 * Its per-page costs are compared only with a sliced round of the same S
 * (simulatedRound() is the shape S = 1).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Process, runAs } from '../include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_NOHUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { user_store } from '../../mm/fault.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import type { task_struct } from '../../include/linux/sched.js';
import { cpuNs, hostNs, stats, heapAllocated, settledRun, type Stats, type Timing } from './harness.js';

/** The phases of one round, in order. */
export const PHASES = ['anon', 'fork', 'cow', 'exit', 'munmap'] as const;
export type Phase = typeof PHASES[number];
/** CPU and wall ns of each phase of one round. */
export type Round = Record<Phase, { cpu: number; wall: number }>;


/**
 * simulatedRound() - one round of @pages pages by process @p on the
 * booted machine; @after(phase), if given, is called after each phase,
 * outside its measurement.
 *
 * GC (@settle, default true; needs --expose-gc): each phase is timed as
 * a harness settledRun(): it starts on an empty young generation and
 * pays for its own garbage at the average rate (the scavenges it
 * triggers, plus the share of one more scavenge equal to the share of
 * the young generation it left full), instead of one whole scavenge more
 * or less depending on what the previous phase left: in a 35 ms fork
 * phase of a 256k-page round that was most of its spread.
 */
export function simulatedRound(p: Process, pages: number, after?: (ph: Phase) => void, settle = true): Round {
  const len = pages * PAGE_SIZE;
  const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.madvise(a, len, MADV_NOHUGEPAGE);
  const r = {} as Round;
  const phase = (ph: Phase, fn: () => void) => {
    r[ph] = timedPhase(fn, settle);
    after?.(ph);
  };
  phase('anon', () => runAs(p.task, touch_range(p.task, a, 0, pages, 0)));
  let c: Process | undefined;
  phase('fork', () => { c = p.fork(); });
  const child = c!;
  phase('cow', () => runAs(child.task, touch_range(child.task, a, 0, pages, 1)));
  const probe = Math.min(5, pages - 1) * PAGE_SIZE;
  if (child.read8(a + probe) !== ((probe / PAGE_SIZE + 1) & 0xff) || p.read8(a + probe) !== ((probe / PAGE_SIZE) & 0xff)) {
    throw new Error('bench: data check failed after COW');
  }
  phase('exit', () => { child.exit(0); p.wait(child.pid); });
  phase('munmap', () => { if (p.munmap(a, len) !== 0) throw new Error('bench: munmap failed'); });
  return r;
}

/** Where a sliced round is after a phase (slicedRound()'s @after): the child of the slice, if alive, and the slice's pages. */
export interface SliceCtx { child: Process | null; addr: number; first: number; nr: number }

/*
 * touch_range() - task @t stores byte ((i + @v) & 0xff) to page i of the
 * range at @base, for the @nr pages from @first (a user store each, which
 * faults as the page's state asks). Context: runs as @t (runAs). Return:
 * nothing. No Linux twin (the bench's user program).
 */
function* touch_range(t: task_struct, base: number, first: number, nr: number, v: number): Sleepable {
  for (let i = first; i < first + nr; i++) yield* user_store(t, base + i * PAGE_SIZE, 1, (i + v) & 0xff);
}

/*
 * timedPhase() - run @fn once. Context: outside any simulated task.
 * Return: its CPU and wall ns, as a harness settledRun() when @settle,
 * else from plain clocks. No Linux twin.
 */
function timedPhase(fn: () => void, settle: boolean): { cpu: number; wall: number } {
  if (settle) return settledRun(fn);
  const c0 = cpuNs(), w0 = hostNs();
  fn();
  return { wall: hostNs() - w0, cpu: cpuNs() - c0 };
}

/**
 * slicedRound() - the round of simulatedRound() in @slices slices (see
 * the file header): the parent @p writes @pages pages (byte (i & 0xff) to
 * page i), then for each slice s forks, the child writes byte
 * ((i + 1) & 0xff) to the pages i of slice s only (COW faults) and exits,
 * the parent waiting for it; at the end the parent unmaps the range.
 * Each phase's CPU and wall time is summed over its occurrences (fork,
 * cow and exit: one per slice); @after(phase, where), if given, runs
 * after every occurrence, outside its measurement (after 'cow' the child
 * is still alive: its bytes and the parent's can be read). Checked on
 * the way (throws if not): a page of the slice reads the child's byte in
 * the child and the parent's in the parent, a page outside the slice the
 * parent's byte in both. @settle: as simulatedRound().
 *
 * Context: a booted machine; @pages a multiple of @slices.
 * Return: each phase's CPU and wall ns; per-page divisors: roundUnits().
 * No Linux twin (a benchmark workload).
 */
export function slicedRound(p: Process, pages: number, slices: number,
  after?: (ph: Phase, where: SliceCtx) => void, settle = true): Round {
  if (!Number.isInteger(slices) || slices < 1 || pages % slices !== 0) {
    throw new Error(`bench: ${pages} pages do not cut into ${slices} slices`);
  }
  const len = pages * PAGE_SIZE, nr = pages / slices;
  const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.madvise(a, len, MADV_NOHUGEPAGE);
  const r = {} as Round;
  for (const ph of PHASES) r[ph] = { cpu: 0, wall: 0 };
  const where: SliceCtx = { child: null, addr: a, first: 0, nr: pages };
  const phase = (ph: Phase, fn: () => void) => {
    const t = timedPhase(fn, settle);
    r[ph].cpu += t.cpu;
    r[ph].wall += t.wall;
    after?.(ph, where);
  };
  phase('anon', () => runAs(p.task, touch_range(p.task, a, 0, pages, 0)));
  for (let s = 0; s < slices; s++) {
    where.first = s * nr;
    where.nr = nr;
    phase('fork', () => { where.child = p.fork(); });
    const child = where.child!;
    phase('cow', () => runAs(child.task, touch_range(child.task, a, s * nr, nr, 1)));
    const inside = s * nr + Math.min(5, nr - 1), outside = ((s + 1) * nr) % pages;
    if (child.read8(a + inside * PAGE_SIZE) !== ((inside + 1) & 0xff) || p.read8(a + inside * PAGE_SIZE) !== (inside & 0xff) ||
        (slices > 1 && child.read8(a + outside * PAGE_SIZE) !== (outside & 0xff))) {
      throw new Error(`bench: data check failed after COW of slice ${s}`);
    }
    phase('exit', () => { child.exit(0); p.wait(child.pid); where.child = null; });
  }
  where.first = 0;
  where.nr = pages;
  phase('munmap', () => { if (p.munmap(a, len) !== 0) throw new Error('bench: munmap failed'); });
  return r;
}

/**
 * roundUnits() - what each phase's time of a round of @pages pages in
 * @slices slices is per (see the file header): pages written, PTEs
 * copied, pages rewritten, PTEs zapped, pages unmapped.
 *
 * Context: any. Return: the divisor of each phase. No Linux twin.
 */
export function roundUnits(pages: number, slices = 1): Record<Phase, number> {
  return { anon: pages, fork: pages * slices, cow: pages, exit: pages * slices, munmap: pages };
}

/**
 * heapRound() - JS heap bytes allocated (garbage included, harness
 * heapAllocated()) per page by one round's first-touch faults and COW
 * faults, and per store to a page already mapped writable (no fault:
 * what user_store() itself costs, the floor of the two); and per page
 * by the round's fork, exit (the child's teardown) and munmap.
 */
export function heapRound(p: Process, pages: number): {
  anon: number; cow: number; store: number; fork: number; exit: number; munmap: number;
} {
  const len = pages * PAGE_SIZE;
  const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.madvise(a, len, MADV_NOHUGEPAGE);
  const anon = heapAllocated(() => runAs(p.task, touch_range(p.task, a, 0, pages, 0))).bytes;
  const store = heapAllocated(() => runAs(p.task, touch_range(p.task, a, 0, pages, 2))).bytes;
  let c: Process | null = null;
  const fork = heapAllocated(() => { c = p.fork(); }).bytes;
  const child = c as unknown as Process;
  const cow = heapAllocated(() => runAs(child.task, touch_range(child.task, a, 0, pages, 1))).bytes;
  const exit = heapAllocated(() => { child.exit(0); p.wait(child.pid); }).bytes;
  const munmap = heapAllocated(() => { if (p.munmap(a, len) !== 0) throw new Error('bench: munmap failed'); }).bytes;
  return {
    anon: anon / pages, cow: cow / pages, store: store / pages, fork: fork / pages, exit: exit / pages, munmap: munmap / pages,
  };
}

/** roundStats() - per-phase Timing over @rounds. */
export function roundStats(rounds: readonly Round[]): Record<Phase, Timing> {
  const out = {} as Record<Phase, Timing>;
  for (const ph of PHASES) out[ph] = { cpu: stats(rounds.map((x) => x[ph].cpu)), wall: stats(rounds.map((x) => x[ph].wall)) };
  return out;
}

let minfltBin: string | null | undefined;

/* Compile minflt.c once per process with the machine's C compiler; null when there is none. */
function minflt(): string | null {
  if (minfltBin !== undefined) return minfltBin;
  const src = join(process.cwd(), 'tools/bench/minflt.c');
  const bin = join(mkdtempSync(join(tmpdir(), 'minflt-')), 'minflt');
  for (const cc of ['cc', 'gcc', 'clang']) {
    try { execFileSync(cc, ['-O2', '-o', bin, src], { stdio: 'ignore' }); break; } catch { /* next */ }
  }
  minfltBin = existsSync(bin) ? bin : null;
  return minfltBin;
}

/** realRound() - the host kernel's round of @pages pages; null without a C compiler. */
export function realRound(pages: number): Round | null {
  const bin = minflt();
  if (bin === null) return null;
  const out = execFileSync(bin, [String(pages)], { encoding: 'utf8' });
  const r = {} as Round;
  for (const ph of PHASES) {
    const m = out.match(new RegExp(`^${ph} \\d+ (\\d+) (\\d+)$`, 'm'));
    if (m === null) throw new Error(`minflt: no ${ph} line in ${JSON.stringify(out)}`);
    r[ph] = { wall: Number(m[1]), cpu: Number(m[2]) };
  }
  return r;
}

/** perPage() - a Stats divided by @pages. */
export function perPage(s: Stats, pages: number): Stats {
  return { median: s.median / pages, min: s.min / pages, max: s.max / pages, n: s.n };
}
