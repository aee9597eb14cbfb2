/*
 * tools/bench/thp.ts - `npm run bench -- thp`: what a THP costs to fault
 * and to split, against faulting the same 2 MiB as 512 small pages, in
 * the same run.
 *
 * Each round maps 2 MiB (PMD aligned) and:
 *  - baseline: MADV_NOHUGEPAGE, one store per 4 KiB page: 512 faults
 *    through do_anonymous_page;
 *  - THP fault: MADV_HUGEPAGE, one store: do_huge_pmd_anonymous_page maps
 *    a zeroed 2 MiB folio by one PMD leaf;
 *  - THP split: split_huge_pmd (512 PTEs) then split_folio (512 small
 *    folios, unmapped and remapped through migration entries), the work a
 *    partial munmap or a device migration of part of the THP causes.
 * Printed: host CPU time per round (median over the rounds after a
 * warm-up round, with the spread), host wall time, and simulated time
 * (the cost model of lib/sim/costs.ts), each beside the 512-fault
 * baseline, with the ratio.
 */
import { start_kernel } from '../../mm/init.js';
import { Process, runAs } from '../include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_HUGEPAGE, MADV_NOHUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE, PMD_SIZE } from '../../include/linux/mm.js';
import { pmd_trans_huge, pmd_pfn } from '../../include/linux/pgtable.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import type { task_struct } from '../../include/linux/sched.js';
import { now } from '../../lib/sim/clock.js';
import { tracing_off } from '../../lib/sim/trace.js';
import { user_store } from '../../mm/fault.js';
import { pmd_off } from '../../mm/pgtable.js';
import { pfn_to_page, get_page, put_page } from '../../mm/page_alloc.js';
import { vma_lookup } from '../../mm/vma.js';
import { mmap_read_lock, mmap_read_unlock } from '../../mm/mmap_lock.js';
import { folio_lock, folio_unlock } from '../../mm/filemap.js';
import { split_huge_pmd_address } from '../../mm/huge_memory.js';
import { split_folio } from '../../mm/huge_memory_split.js';
import { cpuNs, hostNs, row, stats } from './harness.js';

interface sample { host: number; cpu: number; sim: number }

/* run a sleepable as the task, measuring host wall, host CPU and simulated time */
function measure(t: task_struct, gen: () => Sleepable<unknown>): sample {
  const s0 = now(), h0 = hostNs(), c0 = cpuNs();
  runAs(t, gen());
  return { host: hostNs() - h0, cpu: cpuNs() - c0, sim: now() - s0 };
}

function* touch_pages(t: task_struct, a: number): Sleepable {
  for (let off = 0; off < PMD_SIZE; off += PAGE_SIZE) yield* user_store(t, a + off, 4, off);
}

/* split_huge_pmd() and split_folio() of the THP at a, as a partial munmap's split path does */
function* split_thp(p: Process, a: number): Sleepable {
  const mm = p.mm;
  yield* mmap_read_lock(mm);
  const f = pfn_to_page(pmd_pfn(mm.pgd.load(pmd_off(mm, a))));
  yield* split_huge_pmd_address(vma_lookup(mm, a)!, a);
  get_page(f);
  yield* folio_lock(f);
  const ret = yield* split_folio(f);
  folio_unlock(f);
  put_page(f);
  mmap_read_unlock(mm);
  if (ret !== 0) throw new Error(`bench: split_folio returned ${ret}`);
}

/* medians over the rounds after the first (the warm-up) */
const med = (xs: sample[]) => {
  const w = xs.slice(1);
  return { host: stats(w.map((x) => x.host)), cpu: stats(w.map((x) => x.cpu)), sim: stats(w.map((x) => x.sim)) };
};

/** bench_thp() - run and print the THP benchmark. */
export async function bench_thp(rounds = 50): Promise<void> {
  start_kernel({ ram_bytes: 256 << 20 });
  tracing_off();
  const p = Process.spawn('bench');
  const small: sample[] = [], fault: sample[] = [], split: sample[] = [];
  for (let r = 0; r < rounds; r++) {
    const a = p.mmap(0, PMD_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.madvise(a, PMD_SIZE, MADV_NOHUGEPAGE);
    small.push(measure(p.task, () => touch_pages(p.task, a)));
    p.munmap(a, PMD_SIZE);

    const b = p.mmap(0, PMD_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.madvise(b, PMD_SIZE, MADV_HUGEPAGE);
    fault.push(measure(p.task, () => user_store(p.task, b, 4, 1)));
    if (!pmd_trans_huge(p.mm.pgd.load(pmd_off(p.mm, b)))) throw new Error('bench: no THP was mapped');
    split.push(measure(p.task, () => split_thp(p, b)));
    if (p.read32(b) !== 1) throw new Error('bench: data check failed after the split');
    p.munmap(b, PMD_SIZE);
  }
  const s = med(small), f = med(fault), x = med(split);
  console.log(`thp: 2 MiB per round, 1 warm-up round then the median of ${rounds - 1}; baseline: 512 first-touch faults of 4 KiB pages`);
  row('host CPU ns: THP fault (1 fault, 2 MiB)', f.cpu, 'ns', '512 faults', s.cpu);
  row('host CPU ns: THP split (PMD + folio)', x.cpu, 'ns', '512 faults', s.cpu);
  row('host wall ns: THP fault', f.host, 'ns', '512 faults', s.host);
  row('simulated ns: THP fault', f.sim, 'ns', '512 faults', s.sim);
  row('simulated ns: THP split', x.sim, 'ns', '512 faults', s.sim);
}
