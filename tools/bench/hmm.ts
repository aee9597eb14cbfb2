/*
 * tools/bench/hmm.ts - `npm run bench -- hmm`: the cost of mainline HMM's
 * two main operations in host time, each beside a baseline from the same
 * run.
 *
 *  1. hmm_range_fault() snapshot of 262,144 resident pages (1 GiB) against
 *     a plain walk of the same CPU page table (lookup + load per page, the
 *     least any mirror could do). Target: at least 25% of the plain walk.
 *  2. Migration to device-private memory and back (dmirror MIGRATE_TO_DEV
 *     then MIGRATE_TO_SYS: migrate_vma_setup/pages/finalize, both copies)
 *     for 4 KiB pages and for THP, in GB/s of page data, against a
 *     typed-array copy of the same bytes there and back. Targets: THP at
 *     least 25%, 4 KiB at least 10% of the copy bandwidth.
 */
import { start_kernel } from '../../mm/init.js';
import { Process, runAs } from '../include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_POPULATE, MADV_HUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE, PMD_SIZE } from '../../include/linux/mm.js';
import { PTE_LEVEL, pte_pfn, pte_write } from '../../include/linux/pgtable.js';
import { HMM_PFN_VALID, HMM_PFN_WRITE, hmm_pfn_make, hmm_pfn_to_pfn, type hmm_range } from '../../include/linux/hmm.js';
import type { mmu_interval_notifier } from '../../include/linux/mmu_notifier.js';
import { hmm_range_fault } from '../../mm/hmm.js';
import { mmu_interval_notifier_insert, mmu_interval_read_begin, mmu_interval_set_seq } from '../../mm/mmu_notifier.js';
import { mmap_read_lock, mmap_read_unlock } from '../../mm/mmap_lock.js';
import { HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS } from '../../include/uapi/linux/test_hmm.js';
import { Dmirror } from '../lib/dmirror.js';
import { tracing_off } from '../../lib/sim/trace.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import { hostNs, row } from './harness.js';
import { hmm_dmirror_init } from '../../lib/test_hmm.js';

const SNAP_PAGES = 262144;

function* snapshot(p: Process, sub: mmu_interval_notifier, range: hmm_range): Sleepable<number> {
  range.notifier_seq = yield* mmu_interval_read_begin(sub);
  yield* mmap_read_lock(p.mm);
  const ret = yield* hmm_range_fault(range);
  mmap_read_unlock(p.mm);
  return ret;
}

/*
 * The baseline: the least any mirror must do, as zap_pte_range does it:
 * one lookup per PTE page, then a load per entry with the pointer stepping
 * through the page, and the same output encoding.
 */
function plain_walk(p: Process, start: number, out: Float64Array): void {
  const pgd = p.mm.pgd;
  const per = PMD_SIZE / PAGE_SIZE;
  for (let i = 0; i < out.length; i += per) {
    let ptep = pgd.lookup(start + i * PAGE_SIZE, PTE_LEVEL);
    const n = Math.min(per, out.length - i);
    for (let j = 0; j < n; j++, ptep++) {
      const pte = ptep < 0 ? 0 : pgd.load(ptep);
      out[i + j] = pte === 0 ? 0 : hmm_pfn_make(pte_pfn(pte), HMM_PFN_VALID | (pte_write(pte) ? HMM_PFN_WRITE : 0));
    }
  }
}

function bench_snapshot(): void {
  start_kernel({ ram_bytes: SNAP_PAGES * PAGE_SIZE + (128 << 20) });
  hmm_dmirror_init();
  tracing_off();
  const p = Process.spawn('bench');
  const len = SNAP_PAGES * PAGE_SIZE;
  const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE);
  const sub = { start: 0, last: 0, invalidate_seq: 0 } as unknown as mmu_interval_notifier;
  runAs(p.task, mmu_interval_notifier_insert(sub, p.mm, a, len, {
    *invalidate(s, _r, seq) { mmu_interval_set_seq(s, seq); return true; },
  }));
  const pfns = new Float64Array(SNAP_PAGES);
  const range: hmm_range = { notifier: sub, notifier_seq: 0, start: a, end: a + len, hmm_pfns: pfns,
    default_flags: 0, pfn_flags_mask: 0, dev_private_owner: null };
  const base = new Float64Array(SNAP_PAGES);
  let tw = Infinity, th = Infinity;
  for (let r = 0; r < 3; r++) {
    let t0 = hostNs();
    plain_walk(p, a, base);
    tw = Math.min(tw, hostNs() - t0);
    t0 = hostNs();
    const ret = runAs(p.task, snapshot(p, sub, range));
    th = Math.min(th, hostNs() - t0);
    if (ret !== 0) throw new Error(`hmm_range_fault returned ${ret}`);
  }
  for (let i = 0; i < SNAP_PAGES; i += 4099) {
    if (hmm_pfn_to_pfn(pfns[i]) !== hmm_pfn_to_pfn(base[i])) throw new Error(`snapshot mismatch at page ${i}`);
  }
  const rate = (ns: number) => SNAP_PAGES / (ns / 1e9) / 1e6;
  console.log(`hmm: hmm_range_fault snapshot of ${SNAP_PAGES} resident pages`);
  row('hmm_range_fault (Mpages/s)', rate(th), 'Mpages/s', 'plain walk', rate(tw), { ratio_min: 0.25 });
}

function bench_migrate(huge: boolean, bytes: number): void {
  start_kernel({ ram_bytes: 4 * bytes + (128 << 20) });
  hmm_dmirror_init();
  tracing_off();
  const p = Process.spawn('bench');
  const dev = new Dmirror(p, 0);
  /* over-map by one PMD so a 2 MiB aligned window exists for THP */
  const raw = p.mmap(0, bytes + PMD_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const a = Math.ceil(raw / PMD_SIZE) * PMD_SIZE;
  if (huge) p.madvise(a, bytes, MADV_HUGEPAGE);
  const mirror = p.mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE);
  p.fill32(a, bytes, 0x51);
  const npages = bytes / PAGE_SIZE;
  const label = huge ? 'THP' : '4 KiB';
  /*
   * One untimed round trip first: it allocates the device chunks and lets
   * the host fault in the simulator's buffers, which is host cost, not
   * migration cost. Then the best of three timed round trips.
   */
  let to = 0, back = 0, tto = Infinity, tback = Infinity;
  for (let r = 0; r < 4 && to === 0 && back === 0; r++) {
    const t0 = hostNs();
    to = dev.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, a, npages, mirror);
    const t1 = hostNs();
    back = dev.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, a, npages, mirror);
    const t2 = hostNs();
    if (r > 0) { tto = Math.min(tto, t1 - t0); tback = Math.min(tback, t2 - t1); }
  }
  if (to !== 0 || back !== 0) {
    console.log(`hmm: ${label} migration failed: to device ${to}, back ${back} (errno); not measured`);
    return;
  }
  if (p.check32(a, bytes, 0x51) !== -1) throw new Error('data lost in the round trip');

  /* the baseline: the same bytes copied there and back between warm typed arrays, best of 3 */
  const src = new Uint8Array(bytes).fill(7), dst = new Uint8Array(bytes).fill(1);
  let copy = Infinity;
  for (let r = 0; r < 3; r++) {
    const c0 = hostNs();
    dst.set(src);
    src.set(dst);
    copy = Math.min(copy, hostNs() - c0);
  }
  const gbs = (b: number, ns: number) => b / ns;   /* bytes per ns = GB/s */
  const t0 = 0, t1 = tto, t2 = tto + tback;
  console.log(`hmm: migration to device-private memory and back, ${bytes >> 20} MiB of ${label} pages`);
  row(`to device (${label})`, gbs(bytes, t1 - t0), 'GB/s', 'copy', gbs(2 * bytes, copy));
  row(`back to RAM (${label})`, gbs(bytes, t2 - t1), 'GB/s', 'copy', gbs(2 * bytes, copy));
  row(`round trip (${label})`, gbs(2 * bytes, t2 - t0), 'GB/s', 'copy', gbs(2 * bytes, copy),
    { ratio_min: huge ? 0.25 : 0.10 });
}

/** bench_hmm() - run and print the HMM benchmarks. */
export async function bench_hmm(): Promise<void> {
  bench_snapshot();
  bench_migrate(false, 64 << 20);
  bench_migrate(true, 64 << 20);
}
