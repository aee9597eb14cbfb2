/*
 * thp_swap: a 4 MiB buffer with MADV_HUGEPAGE is faulted as two
 * PMD-mapped THPs; MADV_PAGEOUT of 8 pages splits the first one and
 * writes those pages to swap (reclaim, MMU_NOTIFY_CLEAR per page); the
 * next reads swap them back in.
 */
import { defineScenario } from '../api.js';
import {
  PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_HUGEPAGE, MADV_PAGEOUT,
} from '../../../include/uapi/asm-generic/mman.js';
import { smaps_rollup } from '../../../mm/pagemap.js';
import { runAs } from '../../include/nolibc/nolibc.js';

export default defineScenario({
  name: 'thp_swap',
  description: 'a THP fault, then reclaim to swap (split, CLEAR notifications) and swap-in with the data intact',
  boot: { ram: '64M', swap: '32M' },
  run(sim) {
    const p = sim.spawn('app');
    const len = 2 * sim.PMD_SIZE;
    const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const out: string[] = [];
    out.push(`mapped ${len >> 20} MiB at 0x${a.toString(16)} (PMD aligned: ${a % sim.PMD_SIZE === 0})`);
    p.madvise(a, len, MADV_HUGEPAGE);
    p.fill32(a, len, 0x7000);
    const thp = runAs(p.task, smaps_rollup(p.mm));
    out.push(`after the first touch: AnonHugePages ${thp.anonymous_thp >> 10} kB, Rss ${thp.resident >> 10} kB`);
    p.madvise(a, 8 * sim.PAGE_SIZE, MADV_PAGEOUT);
    const swapped = runAs(p.task, smaps_rollup(p.mm));
    out.push(`after MADV_PAGEOUT of the first 8 pages: Swap ${swapped.swap >> 10} kB, ` +
      `AnonHugePages ${swapped.anonymous_thp >> 10} kB`);
    const ok = p.check32(a, 16 * sim.PAGE_SIZE, 0x7000) === -1 && p.check32(a, len, 0x7000) === -1;
    const back = runAs(p.task, smaps_rollup(p.mm));
    out.push(`after reading everything back: Swap ${back.swap >> 10} kB, data intact: ${ok}`);
    return out;
  },
});
