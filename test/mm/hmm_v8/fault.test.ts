/*
 * test/mm/hmm_v8/fault.test.ts - device faults, invalidations and DMA
 * mapping (mm/hmm_v8/fault.ts, update.ts, dma.ts: HMM v8 patches 07-13, 19, 24).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../../helpers.js';
import { runAs, type Process } from '../../../tools/include/nolibc/nolibc.js';
import { MADV_DONTNEED, PROT_READ, PROT_NONE, MAP_SHARED, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { pte_pfn, pte_write } from '../../../include/linux/pgtable.js';
import {
  HMM_DEVICE_RFAULT, HMM_DEVICE_WFAULT, HMM_PTE_WRITE, HMM_PTE_SELECT, HMM_PTE_DIRTY, MMU_MIGRATE,
  hmm_pte_test_valid_pfn, hmm_pte_test_valid_dma, hmm_pte_pfn, hmm_pte_dma_addr, type hmm_event,
} from '../../../include/linux/hmm_v8.js';
import { EACCES, EFAULT, EINVAL, ENOMEM } from '../../../include/uapi/asm-generic/errno.js';
import { PageDirty, ClearPageDirty } from '../../../include/linux/page-flags.js';
import { hmm_mirror_fault } from '../../../mm/hmm_v8/fault.js';
import { hmm_mirror_range_discard, hmm_mirror_range_dirty } from '../../../mm/hmm_v8/update.js';
import { hmm_pt_directories } from '../../../mm/hmm_v8/hmm_pt.js';
import { hmm_of } from '../../../mm/hmm_v8/hmm.js';
import { mmu_notifier_invalidate_page } from '../../../mm/hmm_v8/mmu_notifier.js';
import { dma_fault_inject, IOVA_BASE } from '../../../lib/dma/mapping.js';
import { pfn_to_page } from '../../../mm/page_alloc.js';
import { Scheduler } from '../../../lib/sim/sched.js';
import { get_counter, tracing_on, trace_records } from '../../../lib/sim/trace.js';
import { tdev } from './tdev.js';

const t = suite('mm/hmm_v8/fault');
let p: Process;
t.before.each(() => { p = boot(); });

function ev(start: number, end: number, write = false): hmm_event {
  return { start, end, etype: write ? HMM_DEVICE_WFAULT : HMM_DEVICE_RFAULT, pte_mask: 0, backoff: false };
}

function setup(npages: number, dma = false): { d: tdev; a: number } {
  const a = p.mmap(0, npages * PAGE_SIZE, RW, ANON);
  const d = new tdev('tdev', dma);
  assert.is(runAs(p.task, d.register(p.mm)), 0);
  return { d, a };
}

t('a read fault fills SELECTed pfn entries from the CPU table and calls update() once', () => {
  const { d, a } = setup(8);
  p.fill32(a, 8 * PAGE_SIZE, 100);
  assert.is(runAs(p.task, hmm_mirror_fault(d.mirror, ev(a, a + 8 * PAGE_SIZE))), 0);
  for (let i = 0; i < 8; i++) {
    const e = d.mentry(a + i * PAGE_SIZE);
    assert.ok(hmm_pte_test_valid_pfn(e) && (e & HMM_PTE_SELECT) !== 0);
    assert.is(hmm_pte_pfn(e), pte_pfn(pte_at(p.mm, a + i * PAGE_SIZE)), 'the page the CPU maps');
  }
  assert.equal(d.ops_of('HMM_DEVICE_RFAULT').length, 1);
  assert.is(runAs(p.task, d.read32(a + 3 * PAGE_SIZE + 8)), 100 + 3 * 1024 + 2);
});

t('WRITE follows the CPU PTE: a COW-shared page is read-only to the device until a write fault breaks COW', () => {
  const { d, a } = setup(1);
  p.write32(a, 1);
  const c = p.fork();
  assert.is(runAs(p.task, d.read32(a)), 1);
  assert.is(d.mentry(a) & HMM_PTE_WRITE, 0, 'after fork the PTE is read-only');
  const before = pte_pfn(pte_at(p.mm, a));
  assert.is(runAs(p.task, d.write32(a, 9)), 0);
  assert.ok(d.mentry(a) & HMM_PTE_WRITE);
  assert.not.equal(pte_pfn(pte_at(p.mm, a)), before, 'the device write broke COW in the parent');
  assert.is(p.read32(a), 9);
  assert.is(c.read32(a), 1, 'the child keeps its copy');
});

t('a write fault on untouched memory: -ENOENT, handle_mm_fault, retry; entries are writable', () => {
  const { d, a } = setup(4);
  const e = ev(a, a + 4 * PAGE_SIZE, true);
  assert.is(runAs(p.task, hmm_mirror_fault(d.mirror, e)), 0);
  assert.ok(get_counter('hmm_v8_mm_fault') >= 1);
  assert.ok(get_counter('hmm_v8_fault_retry') >= 1);
  for (let i = 0; i < 4; i++) assert.ok(d.mentry(a + i * PAGE_SIZE) & HMM_PTE_WRITE);
  for (let i = 0; i < 4; i++) assert.ok(pte_write(pte_at(p.mm, a + i * PAGE_SIZE)));
});

t('errors: no VMA -EFAULT, PROT_NONE -EFAULT, write to read-only VMA -EACCES, start beyond vm_end -EINVAL', () => {
  const { d, a } = setup(2);
  p.fill32(a, 2 * PAGE_SIZE, 0);
  assert.is(runAs(p.task, hmm_mirror_fault(d.mirror, ev(0x10000, 0x11000))), -EFAULT);
  p.mprotect(a, PAGE_SIZE, PROT_READ);
  assert.is(runAs(p.task, hmm_mirror_fault(d.mirror, ev(a, a + PAGE_SIZE, true))), -EACCES);
  assert.is(d.calls.filter((c) => c.etype === 'HMM_DEVICE_WFAULT').length, 0, 'nothing reached the device');
  p.mprotect(a + PAGE_SIZE, PAGE_SIZE, PROT_NONE);
  assert.is(runAs(p.task, hmm_mirror_fault(d.mirror, ev(a + PAGE_SIZE, a + 2 * PAGE_SIZE))), -EFAULT);
  assert.is(runAs(p.task, hmm_mirror_fault(d.mirror, ev(2 ** 47, 2 ** 47 + PAGE_SIZE))), -EINVAL);
});

t('the fault range is clipped to the first VMA', () => {
  const { d, a } = setup(2);
  p.fill32(a, 2 * PAGE_SIZE, 0);
  const e = ev(a, a + 64 * PAGE_SIZE);
  assert.is(runAs(p.task, hmm_mirror_fault(d.mirror, e)), 0);
  assert.is(e.end, a + 2 * PAGE_SIZE);
});

t('munmap: update(MUNMAP) to the device, mirror entries cleared, directories freed', () => {
  const { d, a } = setup(4);
  p.fill32(a, 4 * PAGE_SIZE, 0);
  const dirs0 = hmm_pt_directories(d.mpt);
  runAs(p.task, hmm_mirror_fault(d.mirror, ev(a, a + 4 * PAGE_SIZE)));
  assert.ok(hmm_pt_directories(d.mpt) > dirs0);
  p.munmap(a, 4 * PAGE_SIZE);
  const u = d.ops_of('HMM_MUNMAP');
  assert.is(u.length, 1);
  assert.equal([u[0].start, u[0].end], [a, a + 4 * PAGE_SIZE]);
  assert.is(d.mentry(a), 0);
  assert.is(d.pt.size, 0);
  assert.is(hmm_pt_directories(d.mpt), dirs0, 'no directory leaked');
});

t('mprotect(PROT_READ) write-protects; madvise(DONTNEED) drops; fork keeps entries read-only', () => {
  const { d, a } = setup(3);
  p.fill32(a, 3 * PAGE_SIZE, 0);
  runAs(p.task, hmm_mirror_fault(d.mirror, ev(a, a + 3 * PAGE_SIZE, true)));
  p.mprotect(a, PAGE_SIZE, PROT_READ);
  assert.ok(hmm_pte_test_valid_pfn(d.mentry(a)));
  assert.is(d.mentry(a) & HMM_PTE_WRITE, 0, 'WRITE_PROTECT');
  p.madvise(a + PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED);
  assert.is(d.mentry(a + PAGE_SIZE), 0, 'MIGRATE drops the entry');
  p.fork();
  assert.ok(hmm_pte_test_valid_pfn(d.mentry(a + 2 * PAGE_SIZE)));
  assert.is(d.mentry(a + 2 * PAGE_SIZE) & HMM_PTE_WRITE, 0, 'FORK clears WRITE');
  assert.equal(d.calls.filter((c) => c.op === 'update').map((c) => c.etype),
    ['HMM_DEVICE_WFAULT', 'HMM_WRITE_PROTECT', 'HMM_MIGRATE', 'HMM_FORK', 'HMM_FORK']);
});

t('what the device wrote reaches the page: DIRTY in the mirror -> set_page_dirty at invalidation', () => {
  const { d, a } = setup(1);
  p.write32(a, 0);
  const pg = pfn_to_page(pte_pfn(pte_at(p.mm, a)));
  ClearPageDirty(pg);
  runAs(p.task, d.write32(a, 77));
  p.madvise(a, PAGE_SIZE, MADV_DONTNEED);
  assert.ok(get_counter('hmm_v8_set_page_dirty') >= 1);
});

t('a driver error in update() kills the mirror', () => {
  const { d, a } = setup(1);
  p.write32(a, 0);
  runAs(p.task, d.read32(a));
  d.fail_update = 5;                       /* -EIO */
  p.madvise(a, PAGE_SIZE, MADV_DONTNEED);
  assert.ok(d.mirror.dead);
  assert.is(hmm_of(p.mm)!.mirrors.length, 0);
  assert.is(get_counter('hmm_v8_mirror_kill'), 1);
});

t('range_discard clears without calling the driver; range_dirty marks writable entries', () => {
  const { d, a } = setup(4);
  p.fill32(a, 4 * PAGE_SIZE, 0);
  runAs(p.task, hmm_mirror_fault(d.mirror, ev(a, a + 4 * PAGE_SIZE, true)));
  const n = d.calls.length;
  assert.is(hmm_mirror_range_dirty(d.mirror, a, a + 2 * PAGE_SIZE), 2);
  assert.ok(d.mentry(a) & HMM_PTE_DIRTY);
  hmm_mirror_range_discard(d.mirror, a + 2 * PAGE_SIZE, a + 4 * PAGE_SIZE);
  assert.is(d.mentry(a + 2 * PAGE_SIZE), 0);
  assert.is(d.calls.length, n, 'no callback');
});

t('an invalidation overlapping a device fault in flight sets backoff and waits; the fault retries', () => {
  const { d, a } = setup(2);
  p.fill32(a, 2 * PAGE_SIZE, 3);
  tracing_on();
  const s = new Scheduler();
  let fault_ret = -1;
  d.stall_fault = 5;                       /* the fault's update() sleeps: the madvise lands in the middle */
  s.spawn('device', function* () { fault_ret = yield* hmm_mirror_fault(d.mirror, ev(a, a + 2 * PAGE_SIZE)); }, 'user', p.task);
  s.spawn('madvise', function* () { yield* p.sys.madvise(a, PAGE_SIZE, MADV_DONTNEED); }, 'user', p.task);
  s.run();
  assert.is(fault_ret, 0);
  const names = trace_records().map((r) => r.name);
  assert.ok(names.includes('hmm_wait_device_fault'), 'the invalidation slept on the device fault');
  assert.is(get_counter('hmm_v8_invalidate_waited_for_device'), 1);
  const ops = d.calls.filter((c) => c.op === 'update').map((c) => c.etype);
  assert.equal(ops, ['HMM_DEVICE_RFAULT', 'HMM_MIGRATE'], "the invalidation's update() came after the fault's");
});

t('DMA: entries hold bus addresses (not physical), the device reads through the IOMMU, invalidation unmaps', () => {
  const { d, a } = setup(4, true);
  p.fill32(a, 4 * PAGE_SIZE, 500);
  assert.is(runAs(p.task, d.read32(a + PAGE_SIZE)), 500 + 1024);
  const e = d.mentry(a + PAGE_SIZE);
  assert.ok(hmm_pte_test_valid_dma(e));
  assert.ok(hmm_pte_dma_addr(e) >= IOVA_BASE);
  assert.not.equal(hmm_pte_dma_addr(e) / PAGE_SIZE, pte_pfn(pte_at(p.mm, a + PAGE_SIZE)));
  const dev = d.device.dev!;
  assert.is(dev.nr_mapped, 1);
  p.munmap(a, 4 * PAGE_SIZE);
  assert.is(dev.nr_mapped, 0, 'MUNMAP unmapped it');
  assert.is(dev.unmaps, 1);
});

t('DMA: a mapping failure makes the fault fail with -ENOMEM and leaves no stale mapping', () => {
  const { d, a } = setup(2, true);
  p.fill32(a, 2 * PAGE_SIZE, 0);
  dma_fault_inject(d.device.dev!, 2);
  assert.is(runAs(p.task, hmm_mirror_fault(d.mirror, ev(a, a + 2 * PAGE_SIZE))), -ENOMEM);
  assert.is(d.device.dev!.nr_mapped, 1, 'the first page stays mapped (a valid entry)');
  p.munmap(a, 2 * PAGE_SIZE);
  assert.is(d.device.dev!.nr_mapped, 0);
});

t('DMA: dirty pages are found through the CPU table (mm_pt_iter) or the page invalidate_page passes', () => {
  const { d, a } = setup(2, true);
  p.fill32(a, 2 * PAGE_SIZE, 0);
  const pg0 = pfn_to_page(pte_pfn(pte_at(p.mm, a)));
  const pg1 = pfn_to_page(pte_pfn(pte_at(p.mm, a + PAGE_SIZE)));
  runAs(p.task, d.write32(a, 1));
  runAs(p.task, d.write32(a + PAGE_SIZE, 1));
  ClearPageDirty(pg0);
  ClearPageDirty(pg1);
  runAs(p.task, mmu_notifier_invalidate_page(p.mm, a, pg0, MMU_MIGRATE));
  assert.ok(PageDirty(pg0), 'through the passed page');
  p.madvise(a + PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED);
  assert.is(get_counter('hmm_v8_set_page_dirty'), 2, 'and through the CPU table');
});

t('shared anonymous memory is mirrored too (only migration is limited to private memory)', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
  const d = new tdev();
  runAs(p.task, d.register(p.mm));
  p.write32(a, 42);
  assert.is(runAs(p.task, d.read32(a)), 42);
});

t.run();
