/*
 * tools/bench/scaling_host.ts - the host memory each part of `bench
 * scaling` (tools/bench/scaling.ts) needs at a size, and the shape of the
 * workload round that fits in what is free now.
 *
 * Measured (session 9, big4m: /tmp/big4m/mem.mjs, one part per process,
 * peak RSS from process.resourceUsage().maxRSS and `time -v`, at 1M pages
 * on the main of 4198222):
 *
 *   part                               peak RSS at 1M pages    per page
 *   workload round (write N, fork,     8.20 GiB                2 x 4,170 B
 *     child rewrites N, exit, munmap)
 *   sliced round, 4 slices             see the notes           (1 + 1/4) x 4,170 B
 *   hmm_range_fault snapshot of N      0.16 GiB                ~100 B (MAP_POPULATE'd
 *     populated pages, on its own                              pages are zero: no bytes)
 *   migration round trip of N pages    4.22 GiB                4,170 B
 *     (steady; the rig's fill and check
 *     of the whole range at once: 8.14
 *     GiB, now done in 64 MiB pieces)
 *   node and a booted machine          0.06 GiB
 *
 * So a touched page costs the host its 4,096 bytes of contents and about
 * 80 bytes of everything else (struct page arrays, page tables, slab
 * rounding); nothing else grows with the size. The round holds the
 * parent's N pages and the child's N copies (2N); the migration round
 * trip only N: the device's backing pages are RAM pages
 * (lib/test_hmm_devmem.ts) that reuse the frames the source pages free,
 * chunk by chunk. The old check for migration, 3 x N x 4 KiB, was the
 * simulated RAM booted for it, not host memory (sparse RAM). The
 * snapshot runs on the workload's machine after the rounds, on pooled
 * section bytes: within the round's need.
 *
 * Every need below is compared with the budget(): 90% of the memory the
 * host says is available now (os.freemem(): MemAvailable), and at least
 * 3 GiB left to the machine's other processes, read right before the part
 * runs, after the previous part's machine was released (releaseHost()).
 * A first 4M run with 90% alone (00:03 UTC, 22.6 GiB available, the
 * need then counting 256 MiB for the process) chose 8 slices and held
 * 18.2 GiB after 4 minutes, on its way to ~19: too little left to the two
 * other helpers; it was stopped.
 */
import { freemem } from 'node:os';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { forceGc } from './harness.js';

/** HOST_BASE - node, the booted simulator, its JIT code and JS heap (0.06 GiB measured), with room to spare. */
export const HOST_BASE = 256 << 20;
/** HOST_SLACK - what a part adds to the process's RSS before it (JS heap, JIT code, buffers of the rig) beside its pages. */
export const HOST_SLACK = 2 ** 30;

/*
 * base_of() - the process's own memory during a part: HOST_BASE, or the
 * RSS it has now (@rss, read after releaseHost()) plus HOST_SLACK when
 * more. Context: any. Return: bytes. No Linux twin. After
 * the 1M size the process keeps a little more than a fresh one (0.3
 * GiB against 0.1-0.2 measured). HOST_SLACK is what the 4M runs showed
 * beyond the pages: the sizes-only run peaked at 17.7 GiB, the full run
 * at 18.5, 1.2 GiB over its 4M part's pages at 4,170 B (the JS heap
 * between two major GCs, most likely; not pinned down).
 */
const base_of = (rss: number) => Math.max(HOST_BASE, rss + HOST_SLACK);
/** HOST_PAGE - host bytes per simulated page touched: 4,096 of contents, ~80 of metadata measured (128 counted). */
export const HOST_PAGE = PAGE_SIZE + 128;
/** HEADROOM - the share of the available memory a part may plan to use (other processes come and go). */
export const HEADROOM = 0.9;
/** RESERVE - host bytes left to the other processes of the machine in any case (a fault bench and a test run: 3 GiB). */
export const RESERVE = 3 * 2 ** 30;

/**
 * budget() - host bytes a part may plan to use when @free bytes are
 * available: HEADROOM of them, and at least RESERVE left over.
 *
 * Context: any. Return: bytes (negative when less than RESERVE is free).
 */
export function budget(free: number): number {
  return Math.min(free * HEADROOM, free - RESERVE);
}
/** MAX_SLICES - the most slices a round is cut into (each slice forks and tears down the whole N-page table). */
export const MAX_SLICES = 64;

/**
 * need_workload() - host bytes of the workload part at @pages pages in
 * @slices slices: the process's own (@rss: its RSS now, 0 for a fresh
 * one), the parent's pages, one child's copies of its slice, the 1k
 * reference process's round beside it.
 *
 * Context: any. Return: bytes. No Linux twin.
 */
export function need_workload(pages: number, slices: number, ref_pages: number, rss = 0): number {
  return base_of(rss) + (pages + pages / slices + 2 * ref_pages) * HOST_PAGE;
}

/**
 * need_migration() - host bytes of the migration part at @pages pages:
 * the process's own (@rss as need_workload()), the pages (their device
 * backing reuses the frames they free), the 1k reference rig's, and one
 * 64 MiB piece of the rig's fill or check.
 *
 * Context: any. Return: bytes. No Linux twin.
 */
export function need_migration(pages: number, ref_pages: number, rss = 0): number {
  return base_of(rss) + (pages + ref_pages) * HOST_PAGE + (64 << 20);
}

/**
 * forced_slices() - SCALING_BENCH_SLICES, the slices of every size's
 * round (the tests force the sliced shape at small sizes), or null when
 * it is not set (each size gets the fewest that fit: slices_for()).
 *
 * Context: any. Return: the count, or null; throws unless it is a power
 * of 2 from 1 to MAX_SLICES.
 */
export function forced_slices(): number | null {
  const v = process.env.SCALING_BENCH_SLICES;
  if (v === undefined || v === '') return null;
  const s = Number(v);
  if (!Number.isInteger(s) || s < 1 || s > MAX_SLICES || (s & (s - 1)) !== 0) {
    throw new Error(`bench scaling: SCALING_BENCH_SLICES=${v}: a power of 2 from 1 to ${MAX_SLICES}`);
  }
  return s;
}

/**
 * slices_for() - the fewest slices (1, 2, 4 ... MAX_SLICES) whose round
 * of @pages pages fits in the budget() of @free host bytes (@rss: the
 * process's RSS now, as need_workload()).
 *
 * Context: any. Return: the count, or null when even MAX_SLICES do not fit.
 */
export function slices_for(pages: number, free: number, ref_pages: number, rss = 0): number | null {
  for (let s = 1; s <= MAX_SLICES; s *= 2) {
    if (pages % s === 0 && need_workload(pages, s, ref_pages, rss) <= budget(free)) return s;
  }
  return null;
}

/**
 * releaseHost() - let the host take back the memory of the machine
 * @reboot replaced (a small boot: the old machine's section slabs become
 * garbage), by forcing a GC and waiting for V8's background thread to
 * free the ArrayBuffers' backing stores: 200 ms at a time, collecting
 * again, until the RSS stops falling (by less than 64 MiB in a step; 10
 * s at most), so that the next part does not start on top of the old
 * machine (8 GiB of plain 256 MiB buffers were gone at the first step
 * in a direct test; a machine is a larger graph).
 *
 * Context: between two parts of the bench. Return: bytes available now
 * and this process's RSS now.
 */
export async function releaseHost(reboot: () => void): Promise<{ free: number; rss: number }> {
  reboot();
  forceGc();
  let rss = process.memoryUsage().rss;
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 200));
    forceGc();
    const now = process.memoryUsage().rss;
    const fell = rss - now;
    rss = now;
    if (fell < 64 << 20) break;
  }
  return { free: freemem(), rss };
}

/**
 * too_big() - why a part that needs @need host bytes does not run with
 * @free available (@what: how it was shaped), or null when it fits.
 *
 * Context: any. Return: the reason printed in its rows, or null.
 */
export function too_big(need: number, free: number, what = ''): string | null {
  if (need <= budget(free)) return null;
  return `needs ~${gib(need)} GiB of host memory${what}, ${gib(free)} GiB available now ` +
    `(${gib(Math.max(0, budget(free)))} GiB usable: 90%, 3 GiB left to others)`;
}

/** peakRss() - Context: any. Return: the most host memory this process has held so far (maxRSS), in bytes. No Linux twin. */
export function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** gib() - Context: any. Return: @bytes in GiB, one decimal. No Linux twin. */
export const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(1);
