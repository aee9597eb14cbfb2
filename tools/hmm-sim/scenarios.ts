/*
 * tools/hmm-sim/scenarios.ts - the scenarios `hmm-sim` can run.
 *
 * A scenario boots a fresh machine, drives processes (and, in later
 * scenarios, devices) through the user-space view, and returns a few
 * lines of outcome. The tool prints the kernel trace and a summary around
 * it. Each scenario is small enough to read next to its trace.
 */
import { start_kernel } from '../../mm/init.js';
import { Process, runAs } from '../include/nolibc/nolibc.js';
import {
  PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_POPULATE, MADV_HUGEPAGE, MADV_PAGEOUT,
} from '../../include/uapi/asm-generic/mman.js';
import { smaps_rollup } from '../../mm/pagemap.js';
import { PAGE_SIZE, PMD_SIZE } from '../../include/linux/mm.js';
import { tracing_on } from '../../lib/sim/trace.js';
import { Dmirror } from '../lib/dmirror.js';
import {
  HMM_DMIRROR_READ, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_SNAPSHOT,
} from '../../include/uapi/linux/test_hmm.js';
import { hmm_dmirror_init } from '../../lib/test_hmm.js';

import { odp_scenario } from './scenarios/odp.js';

export interface Scenario {
  name: string;
  summary: string;
  /* a tour runs other scenarios in turn, each on a fresh machine */
  parts?: string[];
  run(): string[];
}

/*
 * cow: the default. A process maps 4 pages, writes them, forks; the child
 * writes one page (copy on write); the parent reads its data back; the
 * child exits and is reaped.
 */
const cow: Scenario = {
  name: 'cow',
  summary: 'map, write, fork, child writes (COW), parent checks its data, child exits',
  run() {
    start_kernel({ ram_bytes: 16 << 20 });
    hmm_dmirror_init();
    tracing_on();
    const p = Process.spawn('parent');
    const len = 4 * PAGE_SIZE;
    const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.read32(a + 3 * PAGE_SIZE);            /* a read fault: the zero page */
    p.fill32(a, len, 0x1000);               /* write faults: fresh pages (and one zero-page COW) */
    const c = p.fork();
    c.write32(a, 0xdead);                   /* COW in the child */
    const parentOk = p.check32(a, len, 0x1000) === -1;
    const childSees = c.read32(a).toString(16);
    c.exit(0);
    const w = p.wait(c.pid);
    return [
      `parent mapped ${len / PAGE_SIZE} pages at 0x${a.toString(16)}`,
      `child ${c.pid} wrote 0x${childSees} to its copy; parent data intact: ${parentOk}`,
      `child exited with status ${w.status >> 8}`,
    ];
  },
};

/*
 * mirror: mainline HMM end to end with the dmirror device. The device
 * mirrors a 16-page buffer (hmm_range_fault inside the interval-notifier
 * read section), migrates it to device-private memory (migrate_vma_setup,
 * _pages, _finalize under MMU_NOTIFY_MIGRATE), the CPU touches the first
 * half (do_swap_page -> migrate_to_ram), the device reads everything
 * again, and munmap tears the mirror down (MMU_NOTIFY_UNMAP, set_seq).
 */
const mirror: Scenario = {
  name: 'mirror',
  summary: 'a device mirrors a buffer, migrates it to device memory, the CPU faults half of it back',
  run() {
    start_kernel({ ram_bytes: 64 << 20 });
    hmm_dmirror_init();
    tracing_on();
    const p = Process.spawn('app');
    const npages = 16, len = npages * PAGE_SIZE;
    const buf = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const view = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE);
    p.fill32(buf, len, 0x100);
    const dev = new Dmirror(p, 0);
    const out: string[] = [];
    const step = (what: string, ret: number) =>
      out.push(`${what.padEnd(44)} ret=${ret} cpages=${dev.cpages} faults=${dev.faults}`);
    step('device READ (hmm_range_fault, mirror)', dev.ioctl(HMM_DMIRROR_READ, buf, npages, view));
    out.push(`  device saw the CPU's data: ${p.check32(view, len, 0x100) === -1}`);
    step('MIGRATE_TO_DEV (migrate_vma_*)', dev.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, buf, npages, view));
    for (let i = 0; i < npages / 2; i++) p.read32(buf + i * PAGE_SIZE);   /* CPU faults: migrate_to_ram */
    step('device READ after the CPU took half back', dev.ioctl(HMM_DMIRROR_READ, buf, npages, view));
    const viewOk = p.check32(view, len, 0x100) === -1;
    step('SNAPSHOT', dev.ioctl(HMM_DMIRROR_SNAPSHOT, buf, npages, view));
    const snap = p.read(view, npages);
    out.push(`  snapshot bytes: ${[...snap].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`);
    out.push('  (0x02: writable page in RAM; 0x22: writable device-private page of this device)');
    out.push(`  device data intact: ${viewOk}; CPU data intact: ${p.check32(buf, len, 0x100) === -1}`);
    p.munmap(buf, len);
    return out;
  },
};

/*
 * thp_swap: the memory manager HMM stands on. A 4 MiB buffer with
 * MADV_HUGEPAGE is faulted as two PMD-mapped THPs; MADV_PAGEOUT of 8
 * pages splits the first one and writes those pages to swap (reclaim,
 * MMU_NOTIFY_CLEAR per page); the next reads swap them back in.
 */
const thp_swap: Scenario = {
  name: 'thp_swap',
  summary: 'a THP fault, then reclaim to swap (split, CLEAR notifications) and swap-in with the data intact',
  run() {
    start_kernel({ ram_bytes: 64 << 20, swap_bytes: 32 << 20 });
    hmm_dmirror_init();
    tracing_on();
    const p = Process.spawn('app');
    const len = 2 * PMD_SIZE;
    const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const out: string[] = [];
    out.push(`mapped ${len >> 20} MiB at 0x${a.toString(16)} (PMD aligned: ${a % PMD_SIZE === 0})`);
    p.madvise(a, len, MADV_HUGEPAGE);
    p.fill32(a, len, 0x7000);
    const thp = runAs(p.task, smaps_rollup(p.mm));
    out.push(`after the first touch: AnonHugePages ${thp.anonymous_thp >> 10} kB, Rss ${thp.resident >> 10} kB`);
    p.madvise(a, 8 * PAGE_SIZE, MADV_PAGEOUT);
    const swapped = runAs(p.task, smaps_rollup(p.mm));
    out.push(`after MADV_PAGEOUT of the first 8 pages: Swap ${swapped.swap >> 10} kB, ` +
      `AnonHugePages ${swapped.anonymous_thp >> 10} kB`);
    const ok = p.check32(a, 16 * PAGE_SIZE, 0x7000) === -1 && p.check32(a, len, 0x7000) === -1;
    const back = runAs(p.task, smaps_rollup(p.mm));
    out.push(`after reading everything back: Swap ${back.swap >> 10} kB, data intact: ${ok}`);
    return out;
  },
};

/* tour: the default; every scenario above in turn, each on a fresh machine */
const tour: Scenario = {
  name: 'tour',
  summary: 'the default: fork and COW, THP and swap, then mainline HMM mirroring and migration',
  parts: ['cow', 'thp_swap', 'mirror'],
  run() { return []; },
};

export const scenarios: Record<string, Scenario> = { tour, cow, thp_swap, mirror, odp: odp_scenario };
export const defaultScenario = 'tour';
