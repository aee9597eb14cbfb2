/*
 * test/mm/device_private_thp.test.ts - device-private THPs mapped by one
 * PMD (mm/huge_memory_nonpresent.ts, mm/migrate_device_huge.ts): the PMD
 * migration entry and the device-private PMD, hmm_range_fault's order 9,
 * the CPU fault that brings the THP back whole, the wait on a PMD
 * migration entry, what munmap, fork, mprotect and mremap do with such a
 * PMD, and the dmirror driver (lib/test_hmm*.ts) end to end. TinyDev
 * (./hmm_devmem.ts) runs with huge_fault: a fault through a PMD migrates
 * the whole 2 MiB, as dmirror does.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { runAs } from '../../tools/include/nolibc/nolibc.js';
import type { page } from '../../include/linux/mm_types.js';
import { MM_ANONPAGES } from '../../include/linux/mm_types.js';
import { PAGE_SIZE, PMD_SIZE, HPAGE_PMD_NR, HPAGE_PMD_ORDER, get_mm_counter } from '../../include/linux/mm.js';
import { PROT_READ, MADV_HUGEPAGE, MREMAP_MAYMOVE, MREMAP_FIXED } from '../../include/uapi/asm-generic/mman.js';
import { EBUSY } from '../../include/uapi/asm-generic/errno.js';
import {
  pmd_present, pmd_trans_huge, pmd_write, pmd_pfn, pmd_is_table, pte_present, pte_pfn,
} from '../../include/linux/pgtable.js';
import {
  pmd_to_swp_entry, pte_to_swp_entry, swp_type, swp_offset_pfn, is_swap_pmd, is_pmd_device_private_entry,
  is_pmd_migration_entry, is_device_private_entry, SWP_DEVICE_WRITE, SWP_DEVICE_READ, SWP_MIGRATION_WRITE,
  MAX_SWAPFILES_SHIFT,
} from '../../include/linux/swapops.js';
import { is_device_private_page } from '../../include/linux/memremap.js';
import { PageAnonExclusive } from '../../include/linux/page-flags.js';
import {
  MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_COMPOUND, MIGRATE_PFN_COMPOUND,
} from '../../include/linux/migrate.js';
import {
  HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, hmm_pfn_flags, hmm_pfn_to_pfn,
  hmm_pfn_to_map_order, type hmm_range,
} from '../../include/linux/hmm.js';
import type { mmu_interval_notifier } from '../../include/linux/mmu_notifier.js';
import { get_counter, trace_counters } from '../../lib/sim/trace.js';
import { pfn_to_page, nr_free_pages } from '../../mm/page_alloc.js';
import { struct_page_direct } from '../../mm/internal.js';
import { pgmap_pages } from '../../mm/memremap.js';
import { pmd_off } from '../../mm/pgtable.js';
import { hmm_range_fault } from '../../mm/hmm.js';
import { mmu_interval_read_begin } from '../../mm/mmu_notifier.js';
import { mmap_read_lock, mmap_read_unlock } from '../../mm/mmap_lock.js';
import { pagemap_read, PM_SWAP, PM_PRESENT, PM_PFRAME_MASK } from '../../mm/pagemap.js';
import { Scheduler, sched_yield } from '../../lib/sim/sched.js';
import { handle_mm_fault } from '../../mm/memory.js';
import { vma_lookup } from '../../mm/vma.js';
import { migrate_vma_setup, migrate_vma_pages, migrate_vma_finalize } from '../../mm/migrate_device.js';
import {
  HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_CMD_SIZE, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_PMD, hmm_dmirror_cmd_encode, hmm_dmirror_cmd_decode,
  HMM_DMIRROR_FLAGS, HMM_DMIRROR_FLAG_FAIL_ALLOC,
} from '../../include/uapi/linux/test_hmm.js';
import { dmirror_device_get, hmm_dmirror_init } from '../../lib/test_hmm.js';
import { TinyDev, watch } from './hmm_devmem.js';

const t = suite('mm/device_private_thp');
let p: Process;
let dev: TinyDev;
t.before.each(() => {
  p = boot();
  hmm_dmirror_init();
  dev = new TinyDev('dev0', false, HPAGE_PMD_NR * 2, 1);
  dev.huge_fault = true;
});

const H = PMD_SIZE;
const COMPOUND = MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND;
const BASE = 7;

/* a THP-advised, PMD-aligned 2 MiB of proc filled with i + base, mapped by one huge PMD */
function thp(proc: Process, base = BASE): number {
  const raw = proc.mmap(0, 3 * H, RW, ANON);
  const a = Math.ceil(raw / H) * H;
  assert.is(proc.madvise(a, H, MADV_HUGEPAGE), 0);
  proc.fill32(a, H, base);
  assert.ok(pmd_trans_huge(pmd_at(proc, a)), 'a huge PMD maps it');
  return a;
}
const pmd_at = (proc: Process, a: number): number => {
  const pmdp = pmd_off(proc.mm, a);
  return pmdp < 0 ? 0 : proc.mm.pgd.load(pmdp);
};
const head_of = (pmd: number): page => pfn_to_page(swp_offset_pfn(pmd_to_swp_entry(pmd)));

/* migrate the THP at a to the device as one compound entry; returns the device folio */
function to_device(proc: Process, a: number): page {
  const m = dev.toDevice(proc, a, a + H, COMPOUND);
  assert.is(m.ret, 0);
  assert.ok(m.dst[0] & MIGRATE_PFN_COMPOUND, 'the device gave a whole folio');
  const pmd = pmd_at(proc, a);
  assert.ok(is_pmd_device_private_entry(pmd));
  return head_of(pmd);
}

/*
 * hmm_range_fault() over [start, start + npages) asking for every page,
 * as owner, retried on -EBUSY the way a driver does. Return: the last
 * ret, the pfns, and how many calls it took.
 */
function snapshot(proc: Process, sub: mmu_interval_notifier, start: number, npages: number, owner: unknown,
                  default_flags = HMM_PFN_REQ_FAULT): { ret: number; pfns: Float64Array; calls: number } {
  const pfns = new Float64Array(npages);
  const range: hmm_range = {
    notifier: sub, notifier_seq: 0, start, end: start + npages * PAGE_SIZE, hmm_pfns: pfns,
    default_flags, pfn_flags_mask: 0, dev_private_owner: owner,
  };
  let calls = 0;
  const ret = runAs(proc.task, (function* () {
    let r: number;
    do {
      calls++;
      range.notifier_seq = yield* mmu_interval_read_begin(sub);
      yield* mmap_read_lock(proc.mm);
      r = yield* hmm_range_fault(range);
      mmap_read_unlock(proc.mm);
    } while (r === -EBUSY && calls < 4);
    return r;
  })());
  return { ret, pfns, calls };
}

t('a THP migrated to device-private memory is one non-present PMD naming the head pfn', () => {
  const a = thp(p);
  const rss = get_mm_counter(p.mm, MM_ANONPAGES);
  let mid = 0;
  const m = dev.toDevice(p, a, a + H, COMPOUND, () => { mid = pmd_at(p, a); });
  assert.is(m.setup_cpages, 1, 'one compound entry');
  assert.ok(is_pmd_migration_entry(mid), 'between setup and finalize: one PMD migration entry');
  assert.is(swp_type(pmd_to_swp_entry(mid)), SWP_MIGRATION_WRITE, 'remembering the THP was writable');
  const pmd = pmd_at(p, a);
  assert.ok(is_swap_pmd(pmd) && !pmd_present(pmd) && !pmd_is_table(pmd), 'a non-present PMD leaf');
  assert.is(swp_type(pmd_to_swp_entry(pmd)), SWP_DEVICE_WRITE);
  const head = head_of(pmd);
  assert.ok(is_device_private_page(head));
  assert.is(head.order, HPAGE_PMD_ORDER);
  assert.is(head.pfn % HPAGE_PMD_NR, 0, 'the entry names the head of the device folio');
  assert.is(pte_at(p.mm, a), -1, 'no PTE page under it');
  assert.is(head._refcount, 1, 'the PMD holds one reference');
  assert.is(head._entire_mapcount, 0, 'one entire mapping');
  assert.is(pfn_to_page(head.pfn + 3)._mapcount, -1, 'no per-page mapping');
  assert.ok(PageAnonExclusive(head), 'still exclusive to this mm');
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), rss, 'the 2 MiB still counts as anonymous rss');
  /* pagemap shows 512 swap entries, page i naming device pfn head + i */
  const buf = new Uint8Array(HPAGE_PMD_NR * 8);
  runAs(p.task, pagemap_read(p.mm, buf, (a / PAGE_SIZE) * 8));
  const view = new DataView(buf.buffer);
  for (const i of [0, 1, 300, HPAGE_PMD_NR - 1]) {
    const pme = view.getBigUint64(i * 8, true);
    assert.ok((pme & PM_SWAP) !== 0n && (pme & PM_PRESENT) === 0n, `page ${i}: a swap entry`);
    assert.is(pme & PM_PFRAME_MASK, BigInt(SWP_DEVICE_WRITE + (head.pfn + i) * 2 ** MAX_SWAPFILES_SHIFT));
  }
});

t('hmm_range_fault reports the owner\'s device THP with order 9, valid and writable, without faulting it', () => {
  const a = thp(p);
  const head = to_device(p, a);
  const { sub } = watch(p);
  const { ret, pfns, calls } = snapshot(p, sub, a, HPAGE_PMD_NR, dev);
  assert.is(ret, 0);
  assert.is(calls, 1, 'nothing to fault, nothing invalidated');
  for (const i of [0, 17, HPAGE_PMD_NR - 1]) {
    assert.is(hmm_pfn_flags(pfns[i]) & (HMM_PFN_VALID | HMM_PFN_WRITE | HMM_PFN_ERROR), HMM_PFN_VALID | HMM_PFN_WRITE);
    assert.is(hmm_pfn_to_pfn(pfns[i]), head.pfn + i);
    assert.is(hmm_pfn_to_map_order(pfns[i]), HPAGE_PMD_ORDER, `page ${i}: mapped by a PMD`);
  }
  assert.is(dev.migrate_to_ram_calls, 0);
  assert.ok(is_pmd_device_private_entry(pmd_at(p, a)), 'left on the device');
});

t('another device\'s snapshot (no fault asked) of a device-private PMD reads HMM_PFN_ERROR, as hmm_vma_handle_absent_pmd does', () => {
  const a = thp(p);
  to_device(p, a);
  const { sub } = watch(p);
  const { ret, pfns } = snapshot(p, sub, a, HPAGE_PMD_NR, 'someone else', 0);
  assert.is(ret, 0);
  for (const i of [0, 100, HPAGE_PMD_NR - 1]) assert.is(hmm_pfn_flags(pfns[i]), HMM_PFN_ERROR, `page ${i}`);
  assert.is(dev.migrate_to_ram_calls, 0, 'nothing faulted');
  assert.ok(is_pmd_device_private_entry(pmd_at(p, a)));
});

t('another device\'s hmm_range_fault faults the device THP back to RAM whole, still order 9', () => {
  const a = thp(p);
  to_device(p, a);
  const { sub } = watch(p);
  const { ret, pfns, calls } = snapshot(p, sub, a, HPAGE_PMD_NR, 'someone else');
  assert.is(ret, 0);
  assert.is(calls, 2, 'the migration invalidated the first snapshot: -EBUSY, then a clean one');
  assert.is(dev.migrate_to_ram_calls, 1, 'one fault brought the whole THP back');
  const pmd = pmd_at(p, a);
  assert.ok(pmd_trans_huge(pmd), 'a present huge PMD again');
  for (const i of [0, 200]) {
    assert.is(hmm_pfn_to_pfn(pfns[i]), pmd_pfn(pmd) + i);
    assert.is(hmm_pfn_to_map_order(pfns[i]), HPAGE_PMD_ORDER);
  }
  assert.is(p.check32(a, H, BASE), -1);
});

t('a CPU read brings the whole THP back as a PMD-mapped THP with its data', () => {
  const a = thp(p);
  const rss = get_mm_counter(p.mm, MM_ANONPAGES);
  const head = to_device(p, a);
  assert.is(dev.huge_free.length, 0);
  assert.is(p.read32(a + 100 * PAGE_SIZE + 8), 100 * 1024 + 2 + BASE);
  assert.is(dev.migrate_to_ram_calls, 1);
  assert.is(get_counter('fault_huge_pmd_device_private'), 1);
  const pmd = pmd_at(p, a);
  assert.ok(pmd_trans_huge(pmd) && pmd_write(pmd), 'a writable huge PMD');
  const f = pfn_to_page(pmd_pfn(pmd));
  assert.not.ok(is_device_private_page(f));
  assert.is(f.order, HPAGE_PMD_ORDER, 'one system THP');
  assert.is(f._entire_mapcount, 0);
  assert.ok(PageAnonExclusive(f));
  assert.is(get_counter('remove_migration_pmd'), 2, 'to the device, then back');
  assert.is(dev.huge_free.length, 1, 'the device folio went back to the driver whole');
  assert.is(dev.freed, HPAGE_PMD_NR);
  assert.is(head._refcount, 0);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), rss);
  assert.is(p.check32(a, H, BASE), -1, 'every word intact');
  p.write32(a, 42);
  assert.is(dev.migrate_to_ram_calls, 1, 'no further fault to the device');
});

t('a partial munmap splits the device PMD into device-private PTEs; the rest migrates back intact', () => {
  const a = thp(p);
  const head = to_device(p, a);
  assert.is(p.munmap(a + H / 2, H / 2), 0);
  assert.ok(pmd_is_table(pmd_at(p, a)), 'the PMD was split');
  assert.is(get_counter('split_huge_pmd_device_private'), 1);
  const pte = pte_at(p.mm, a + 10 * PAGE_SIZE);
  assert.ok(is_device_private_entry(pte_to_swp_entry(pte)), 'a device-private PTE');
  assert.is(swp_type(pte_to_swp_entry(pte)), SWP_DEVICE_WRITE);
  assert.is(swp_offset_pfn(pte_to_swp_entry(pte)), head.pfn + 10, 'page j of the folio');
  assert.is(head.order, HPAGE_PMD_ORDER, 'the folio stays large');
  assert.is(head._refcount, HPAGE_PMD_NR / 2, 'one reference per PTE left');
  assert.is(head._entire_mapcount, -1);
  const back = dev.toSystem(p, a, a + H / 2);
  assert.is(back.setup_cpages, HPAGE_PMD_NR / 2);
  assert.ok(pte_present(pte_at(p.mm, a + 10 * PAGE_SIZE)), 'back in RAM');
  assert.not.ok(is_device_private_page(pfn_to_page(pte_pfn(pte_at(p.mm, a + 10 * PAGE_SIZE)))));
  assert.is(p.check32(a, H / 2, BASE), -1, 'the remaining half is intact');
  assert.is(dev.freed, HPAGE_PMD_NR, 'the unmapped half went back to the driver too');
});

t('fork makes both device PMDs read-only; a CPU write migrates the THP back, then copies on write', () => {
  const a = thp(p);
  const head = to_device(p, a);
  const child = p.fork();
  for (const proc of [p, child]) {
    const pmd = pmd_at(proc, a);
    assert.ok(is_pmd_device_private_entry(pmd));
    assert.is(swp_type(pmd_to_swp_entry(pmd)), SWP_DEVICE_READ, 'read-only in both');
    assert.is(head_of(pmd).pfn, head.pfn);
  }
  assert.is(head._refcount, 2);
  assert.is(head._entire_mapcount, 1, 'two entire mappings');
  assert.not.ok(PageAnonExclusive(head), 'shared now');
  assert.is(get_mm_counter(child.mm, MM_ANONPAGES), HPAGE_PMD_NR);
  p.write32(a + 8, 0xdead);
  assert.is(dev.migrate_to_ram_calls, 1);
  assert.is(dev.huge_free.length, 1, 'the device folio is free again');
  const cpmd = pmd_at(child, a);
  assert.ok(pmd_trans_huge(cpmd) && !pmd_write(cpmd), 'the child maps the RAM THP read-only');
  assert.ok(pmd_is_table(pmd_at(p, a)), 'the parent split its PMD to copy one page');
  assert.ok(pte_pfn(pte_at(p.mm, a)) !== pmd_pfn(cpmd), 'the parent has its own copy of page 0');
  assert.is(pte_pfn(pte_at(p.mm, a + PAGE_SIZE)), pmd_pfn(cpmd) + 1, 'and shares the others');
  assert.is(p.read32(a + 8), 0xdead);
  assert.is(child.read32(a + 8), 2 + BASE, 'the child still sees the old data');
  assert.is(child.check32(a, H, BASE), -1);
  assert.is(p.check32(a + PAGE_SIZE, H - PAGE_SIZE, BASE + 1024), -1);
});

t('a CPU fault on a PMD migration entry waits for the migration (pmd_migration_entry_wait)', () => {
  const a = thp(p);
  const log: string[] = [];
  let ret = -1;
  const s = new Scheduler();
  s.spawn('migrate', function* () {
    yield* mmap_read_lock(p.mm);
    const m = dev.args(p.mm, a, a + H, COMPOUND);
    yield* migrate_vma_setup(m);
    log.push(is_pmd_migration_entry(pmd_at(p, a)) ? 'PMD migration entry' : 'no PMD migration entry');
    yield* sched_yield();                    /* the CPU fault runs into the entry */
    dev.fillDst(m, () => dev.alloc(), () => dev.allocHuge());
    yield* migrate_vma_pages(m);
    yield* migrate_vma_finalize(m);
    log.push('finalized');
    mmap_read_unlock(p.mm);
  }, 'kthread', p.task);
  s.spawn('cpu', function* () {
    yield* mmap_read_lock(p.mm);
    log.push('fault');
    ret = yield* handle_mm_fault(vma_lookup(p.mm, a)!, a + 5 * PAGE_SIZE, 0);
    log.push('fault returns');
    mmap_read_unlock(p.mm);
  }, 'kthread', p.task);
  s.run();
  assert.equal(log, ['PMD migration entry', 'fault', 'finalized', 'fault returns']);
  assert.is(get_counter('fault_pmd_migration_wait'), 1);
  assert.is(ret, 0, 'the access is retried');
  assert.ok(is_pmd_device_private_entry(pmd_at(p, a)), 'the migration finished first');
  assert.is(dev.migrate_to_ram_calls, 0);
  assert.is(p.check32(a, H, BASE), -1);
});

t('munmap zaps the device-private PMD and the driver gets its folio back', () => {
  const a = thp(p);
  const rss = get_mm_counter(p.mm, MM_ANONPAGES);
  const head = to_device(p, a);
  assert.is(dev.huge_free.length, 0);
  assert.is(p.munmap(a, H), 0);
  assert.is(get_counter('zap_huge_pmd_device_private'), 1);
  assert.is(pmd_at(p, a), 0);
  assert.is(head._refcount, 0);
  assert.is(dev.huge_free.length, 1, 'back on the free list, whole');
  assert.is(dev.huge_free[0].pfn, head.pfn);
  assert.is(dev.freed, HPAGE_PMD_NR);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), rss - HPAGE_PMD_NR);
});

t('mprotect makes a writable device PMD read-only; a partial mprotect splits it', () => {
  const a = thp(p);
  to_device(p, a);
  assert.is(p.mprotect(a, H, PROT_READ), 0);
  assert.is(swp_type(pmd_to_swp_entry(pmd_at(p, a))), SWP_DEVICE_READ);
  assert.is(p.mprotect(a, H, RW), 0);
  assert.is(swp_type(pmd_to_swp_entry(pmd_at(p, a))), SWP_DEVICE_READ, 'write permission comes back through a fault');
  assert.is(p.mprotect(a, H / 2, PROT_READ), 0);
  assert.ok(pmd_is_table(pmd_at(p, a)), 'split at the VMA boundary');
  assert.is(swp_type(pte_to_swp_entry(pte_at(p.mm, a))), SWP_DEVICE_READ);
  assert.is(p.read32(a + H - 4), HPAGE_PMD_NR * 1024 - 1 + BASE, 'a read through a PTE brings one page back');
  assert.is(p.check32(a, H, BASE), -1);
  p.write32(a + H / 2, 5);
  assert.is(p.read32(a + H / 2), 5, 'the writable half takes writes again');
});

t('mremap moves a device PMD whole to an aligned address, and splits it for an unaligned one', () => {
  const a = thp(p);
  const head = to_device(p, a);
  const raw = p.mmap(0, 4 * H, RW, ANON);
  const to = Math.ceil(raw / H) * H;
  assert.is(p.mremap(a, H, H, MREMAP_MAYMOVE | MREMAP_FIXED, to), to);
  assert.is(head_of(pmd_at(p, to)).pfn, head.pfn, 'the same device-private PMD at the new place');
  assert.is(pmd_at(p, a), 0);
  const odd = to + H + 16 * PAGE_SIZE;
  assert.is(p.mremap(to, H, H, MREMAP_MAYMOVE | MREMAP_FIXED, odd), odd);
  const pte = pte_at(p.mm, odd + 5 * PAGE_SIZE);
  assert.is(swp_offset_pfn(pte_to_swp_entry(pte)), head.pfn + 5, 'now device-private PTEs');
  assert.is(p.check32(odd, H, BASE), -1);
});

t('dmirror maps its device THP by one PMD, snapshots it as PMD, and brings it back whole on a CPU read', () => {
  const a = thp(p);
  const fd = p.open('/dev/hmm_dmirror0', 2);
  assert.ok(fd >= 0);
  const cmd = p.mmap(0, PAGE_SIZE, RW, ANON);
  const mirror = p.mmap(0, H, RW, ANON);        /* MIGRATE_TO_DEV reads the 2 MiB back into it */
  const run = (request: number): { ret: number; cpages: bigint } => {
    const block = { addr: BigInt(a), ptr: BigInt(mirror), npages: BigInt(HPAGE_PMD_NR), cpages: 0n, faults: 0n };
    p.write(cmd, hmm_dmirror_cmd_encode(block));
    const ret = p.ioctl(fd, request, cmd);
    return { ret, cpages: hmm_dmirror_cmd_decode(p.read(cmd, HMM_DMIRROR_CMD_SIZE)).cpages };
  };
  const mdev = dmirror_device_get(0)!;
  assert.equal(run(HMM_DMIRROR_MIGRATE_TO_DEV), { ret: 0, cpages: BigInt(HPAGE_PMD_NR) });
  assert.is(p.check32(mirror, H, BASE), -1, 'the device holds the data');
  const head = head_of(pmd_at(p, a));
  assert.ok(is_pmd_device_private_entry(pmd_at(p, a)) && head.order === HPAGE_PMD_ORDER);
  assert.is(mdev.calloc - mdev.cfree, HPAGE_PMD_NR, 'one device folio in use');
  assert.equal(run(HMM_DMIRROR_SNAPSHOT), { ret: 0, cpages: BigInt(HPAGE_PMD_NR) });
  const want = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD;
  assert.ok(p.read(mirror, HPAGE_PMD_NR).every((b) => b === want), 'every page: local device-private, writable, PMD');
  assert.is(p.read32(a + 77 * PAGE_SIZE), 77 * 1024 + BASE);
  assert.is(get_counter('dmirror_devmem_fault'), 1, 'one fault for the whole THP');
  assert.ok(pmd_trans_huge(pmd_at(p, a)), 'a present huge PMD again');
  assert.is(mdev.calloc, mdev.cfree, 'the device folio went back to the driver');
  assert.is(p.check32(a, H, BASE), -1);
});

t('a CPU write to a dmirror device THP whose RAM folio cannot be allocated brings the pages back one by one', () => {
  /* found by the fail_page_alloc sweep (test/lib/fault-inject.test.ts): the split gave the fault's reference to every tail, so no tail could migrate and the write looped */
  const a = thp(p);
  const fd = p.open('/dev/hmm_dmirror0', 2);
  const cmd = p.mmap(0, PAGE_SIZE, RW, ANON);
  const mirror = p.mmap(0, H, RW, ANON);
  const run = (request: number, npages: number, addr = a): number => {
    p.write(cmd, hmm_dmirror_cmd_encode({ addr: BigInt(addr), ptr: BigInt(mirror), npages: BigInt(npages), cpages: 0n, faults: 0n }));
    return p.ioctl(fd, request, cmd);
  };
  assert.is(run(HMM_DMIRROR_MIGRATE_TO_DEV, HPAGE_PMD_NR), 0);
  assert.ok(is_pmd_device_private_entry(pmd_at(p, a)));
  assert.is(run(HMM_DMIRROR_FLAGS, Number(HMM_DMIRROR_FLAG_FAIL_ALLOC), 0), 0);   /* the next RAM folio allocation fails */
  p.write32(a + 3 * PAGE_SIZE, 0xabcd);
  assert.is(p.read32(a + 3 * PAGE_SIZE), 0xabcd);
  assert.is(p.read32(a + 3 * PAGE_SIZE + 4), 3 * 1024 + 1 + BASE);
  assert.is(p.check32(a, 3 * PAGE_SIZE, BASE), -1, 'the pages before it are intact');
  assert.is(p.check32(a + 4 * PAGE_SIZE, H - 4 * PAGE_SIZE, BASE + 4 * 1024), -1, 'and the pages after it');
  const mdev = dmirror_device_get(0)!;
  assert.is(mdev.calloc, mdev.cfree, 'every device page went back to the driver');
});

/* every struct page field of each frame, tails included (compound_head as the head's pfn) */
function struct_pages(pfns: Iterable<number>): unknown[] {
  return [...pfns].sort((x, y) => x - y).map((pfn) => {
    const pg = pfn_to_page(pfn);
    return [pfn, pg.flags, pg._refcount, pg._mapcount, pg._entire_mapcount, pg._pincount, pg.private,
      pg.mapping === null ? null : pg.mapping.kind, pg.index, pg.memcg === null ? null : 'memcg', pg.order,
      pg.compound_head.pfn];
  });
}

/*
 * A THP to the device and back three ways (MIGRATE_TO_SYS as one
 * compound entry, a CPU read, munmap of the device PMD), with
 * prep_compound_page() and the device folio's tail reset on the section
 * arrays (@direct) or through the page accessors; returns the struct
 * pages of every RAM and device frame met, the PMDs, every counter, the
 * free page count and the bytes after each step.
 */
function compound_scenario(direct: boolean): unknown {
  const old = struct_page_direct(direct);
  try {
    p = boot();
    dev = new TinyDev('dev0', false, HPAGE_PMD_NR * 2, 1);
    dev.huge_fault = true;
    const dev_pfns = pgmap_pages(dev.pgmap).map((pg) => pg.pfn);
    const ram = new Set<number>();
    const a = thp(p);
    const ram_folio = (): void => { const f = pmd_pfn(pmd_at(p, a)); for (let i = 0; i < HPAGE_PMD_NR; i++) ram.add(f + i); };
    const steps: unknown[] = [];
    /* the bytes are read only where they are in RAM (a read of the device PMD would fault the THP back) */
    const record = (what: string, in_ram: boolean): void => {
      steps.push([what, pmd_at(p, a), new Map(trace_counters), nr_free_pages(), in_ram ? p.check32(a, H, BASE) : null,
        struct_pages([...ram, ...dev_pfns])]);
    };
    ram_folio();
    to_device(p, a);
    record('to device', false);
    assert.is(dev.toSystem(p, a, a + H, MIGRATE_VMA_SELECT_COMPOUND).ret, 0);
    ram_folio();
    record('MIGRATE_TO_SYS', true);
    to_device(p, a);
    assert.is(p.read32(a + 5 * PAGE_SIZE), 5 * 1024 + BASE);
    ram_folio();
    record('CPU read', true);
    to_device(p, a);
    assert.is(p.munmap(a, H), 0);
    record('munmap', false);
    return steps;
  } finally {
    struct_page_direct(old);
  }
}

t('prep_compound_page() and the device folio tail reset on the section arrays end as through the page accessors', () => {
  const direct = compound_scenario(true) as [string, number, Map<string, number>, number, number, unknown[][]][];
  const helpers = compound_scenario(false);
  assert.equal(direct, helpers, 'PMDs, every counter, free pages, bytes, every head and tail struct page, after each step');
  /* the scenario reaches the paths: RAM and device folios made and freed whole, tails pointing at their heads */
  const [dev_step] = direct;
  const on_dev = new Map(dev_step[5].map((r) => [r[0] as number, r]));
  const head = swp_offset_pfn(pmd_to_swp_entry(dev_step[1]));
  assert.is(on_dev.get(head)![10], HPAGE_PMD_ORDER, 'the device head has order 9');
  assert.is(on_dev.get(head + 300)![11], head, 'a device tail names its head');
  assert.is(on_dev.get(head + 300)![2], 0, 'and holds no reference');
  const last = new Map(direct[3][5].map((r) => [r[0] as number, r]));
  assert.is(last.get(head + 300)![11], head + 300, 'the freed device folio\'s tails point at themselves');
  assert.is(last.get(head)![10], 0);
  assert.ok((direct[3][2].get('zone_device_free') ?? 0) >= 3 * HPAGE_PMD_NR, 'three device folios freed');
  for (const [what, , , , bytes] of direct.slice(1, 3)) assert.is(bytes, -1, `${what}: data intact`);
});

t.run();
