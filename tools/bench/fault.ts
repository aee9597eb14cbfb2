/*
 * tools/bench/fault.ts - `npm run bench -- fault`: what a simulated page
 * fault, fork and munmap cost in host CPU time, against the real kernel
 * doing the same on the same machine in the same run.
 *
 * Workload (tools/bench/workload.ts): a process maps 262,144 pages
 * (1 GiB), writes one byte per page (first-touch anonymous faults through
 * mmu_translate -> do_user_addr_fault -> handle_mm_fault ->
 * do_anonymous_page), forks, the child writes every page again (COW
 * faults through do_wp_page) and exits, the parent munmaps. The real
 * kernel runs tools/bench/minflt.c, compiled with the machine's C
 * compiler when there is one.
 *
 * Method: one booted machine that keeps the bytes of every freed section
 * for reuse (sparse_pool_limit(Infinity), mm/sparse.ts) and simulated
 * warm-up rounds (harness warmUp()): at least FAULT_BENCH_WARMUPS (3),
 * then more while a round still takes more host page faults than 1% of
 * its pages, at most 8. They pay, before the measurement, the host's own
 * page faults on the simulator's fresh buffers and on the JS heap while it
 * grows (host cost, not simulated-fault cost) and the JIT's background
 * compiles (counted in process CPU time). Measured on 262,144 pages, the
 * second and third rounds still took 4,000-8,000 host page faults in a
 * phase (exit 541-1,080 ns per page against 145-165 from the fourth round
 * on, fork 335-828 against 105-119), later rounds about 1,000-2,000 in a
 * whole round. The real side gets one warm-up round (no JIT, a fresh
 * process each round).
 * FAULT_BENCH_REPS real rounds first, then as many
 * simulated rounds (see bench_fault() for why not interleaved); medians of
 * CPU ns per page with the spread. Wall time
 * is printed for the anonymous fault only, as a check on the CPU figure.
 * Garbage: JS heap bytes allocated per anonymous and per COW fault
 * (harness heapAllocated(): heap growth plus what the GCs freed meanwhile)
 * in one more round, beside a store to a mapped page (no fault) as the
 * floor of a user_store() call; and per page of that round's fork, exit
 * and munmap (the teardown's garbage: page handles, boxed numbers).
 * Targets (issue 17): anon and COW fault, fork, exit and munmap per page
 * at most 1.0x the real kernel. The output says how many host page
 * faults the timed simulated rounds took (median per round), the check
 * that the warm-up was long enough.
 */
import { start_kernel } from '../../mm/init.js';
import { Process } from '../include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { tracing_off } from '../../lib/sim/trace.js';
import { sparse_pool_limit } from '../../mm/sparse.js';
import { row, stats, hostFaults, warmUp } from './harness.js';
import { PHASES, simulatedRound, realRound, roundStats, perPage, heapRound, type Round } from './workload.js';

const REPS = Number(process.env.FAULT_BENCH_REPS ?? 9);
const WARMUPS = Number(process.env.FAULT_BENCH_WARMUPS ?? 3);
/* the round's size; smaller only for the bench's own test (test/tools/bench/fault.test.ts) */
const PAGES = Number(process.env.FAULT_BENCH_PAGES ?? 262144);

/** bench_fault() - run and print the fault benchmark. */
export async function bench_fault(pages = PAGES): Promise<void> {
  const pool = sparse_pool_limit(Infinity);
  start_kernel({ ram_bytes: pages * PAGE_SIZE * 2 + (64 << 20) });
  tracing_off();
  const p = Process.spawn('bench');
  /*
   * The real rounds run first, then the simulated ones back to back: a
   * real round run between simulated ones (1-2 GiB of host memory
   * allocated and freed) made the next simulated round's faults cost
   * 6-7x more on this kind of VM (29 us against 4.2-4.5 us per anon fault,
   * measured by running simulatedRound() with and without realRound()
   * between), an artefact of the host, not of either fault path.
   */
  const have_real = realRound(Math.min(pages, 4096)) !== null;
  console.log(`fault: ${pages} pages (${pages * PAGE_SIZE / 2 ** 20} MiB): first-touch and COW write faults, fork, munmap; ` +
    `${have_real ? '1 real and ' : ''}${WARMUPS}-8 simulated warm-up rounds (until a round takes at most ${pages / 100} host page faults), ` +
    `median of ${REPS}, CPU ns per page; freed RAM sections kept for reuse`);
  const sim: Round[] = [], real: Round[] = [];
  if (have_real) realRound(pages);              /* warm-up, as the simulated side has */
  if (have_real) for (let r = 0; r < REPS; r++) real.push(realRound(pages)!);
  const warm = warmUp(() => simulatedRound(p, pages), { min: WARMUPS, max: Math.max(WARMUPS, 8), faults: pages / 100 });
  console.log(`  warm-up: ${warm.runs} simulated rounds, the last took ${warm.faults} host page faults`);
  const flt: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const f0 = hostFaults();
    sim.push(simulatedRound(p, pages));
    flt.push(hostFaults() - f0);
  }
  sparse_pool_limit(pool);
  const s = roundStats(sim);
  if (!have_real) console.log('  no C compiler found: no real-kernel baseline, targets not checked');
  const r = have_real ? roundStats(real) : null;
  const fs = stats(flt);
  console.log(`  host page faults per timed simulated round: median ${fs.median}, max ${fs.max} ` +
    `(${(fs.median / pages).toFixed(4)} per simulated page)`);
  for (const ph of PHASES) {
    const name = ph === 'anon' ? 'anon fault' : ph === 'cow' ? 'COW fault' : ph;
    row(`${name}, CPU ns per page`, perPage(s[ph].cpu, pages), 'ns', 'Linux', r ? perPage(r[ph].cpu, pages) : NaN, { ratio_max: 1.0 });
  }
  row('anon fault, wall ns per page', perPage(s.anon.wall, pages), 'ns', 'Linux', r ? perPage(r.anon.wall, pages) : NaN);
  /* garbage per fault: one more round after the timed ones (the JIT warm), baseline a store that does not fault */
  const heap = heapRound(p, Math.min(pages, 65536));
  row('anon fault, heap bytes allocated', heap.anon, 'B', 'store, no fault', heap.store);
  row('COW fault, heap bytes allocated', heap.cow, 'B', 'store, no fault', heap.store);
  /* teardown garbage per page, beside a first-touch fault's (Linux allocates nothing to free a page) */
  row('fork, heap bytes per page', heap.fork, 'B', 'anon fault', heap.anon);
  row('exit, heap bytes per page', heap.exit, 'B', 'anon fault', heap.anon);
  row('munmap, heap bytes per page', heap.munmap, 'B', 'anon fault', heap.anon);
}
