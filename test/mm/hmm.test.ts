/*
 * test/mm/hmm.test.ts - hmm_range_fault() (mm/hmm.ts) over every kind of
 * entry and every request rule, with the sequence-count protocol around
 * it (include/linux/hmm.ts has the encoding).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { runAs } from '../../tools/include/nolibc/nolibc.js';
import {
  PAGE_SIZE, PMD_SIZE, HPAGE_PMD_ORDER, VM_IO, VM_PFNMAP,
} from '../../include/linux/mm.js';
import { PROT_READ, PROT_NONE, MADV_DONTNEED } from '../../include/uapi/asm-generic/mman.js';
import { EBUSY, EFAULT, EPERM, EINVAL } from '../../include/uapi/asm-generic/errno.js';
import {
  HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_DMA_MAPPED,
  HMM_PFN_ORDER_SHIFT, HMM_PFN_FLAGS_SHIFT, hmm_pfn_flags, hmm_pfn_to_pfn, hmm_pfn_to_page, hmm_pfn_to_map_order,
  hmm_pfn_make, type hmm_range,
} from '../../include/linux/hmm.js';
import { _PAGE_PSE, _PAGE_TABLE_USER, _PAGE_RW, pfn_pte, pte_pfn, pte_present } from '../../include/linux/pgtable.js';
import {
  pte_to_swp_entry, is_device_private_entry, is_device_exclusive_entry, swp_entry_to_pte, make_hwpoison_entry,
} from '../../include/linux/swapops.js';
import { __GFP_COMP, GFP_HIGHUSER_MOVABLE } from '../../include/linux/gfp.js';
import type { mmu_interval_notifier } from '../../include/linux/mmu_notifier.js';
import { Scheduler, sched_yield, type Sleepable } from '../../lib/sim/sched.js';
import { get_counter } from '../../lib/sim/trace.js';
import { hmm_range_fault } from '../../mm/hmm.js';
import { mmu_interval_read_begin, mmu_interval_read_retry } from '../../mm/mmu_notifier.js';
import { alloc_pages, pfn_to_page, put_page } from '../../mm/page_alloc.js';
import { pmd_alloc, pte_offset_map, set_pte_at } from '../../mm/pgtable.js';
import { vmf_insert_pfn } from '../../mm/memory.js';
import { vma_lookup } from '../../mm/vma.js';
import { mmap_read_lock, mmap_read_unlock } from '../../mm/mmap_lock.js';
import { make_device_exclusive } from '../../mm/device_exclusive.js';
import { folio_unlock } from '../../mm/filemap.js';
import { migrate_vma_setup, migrate_vma_pages, migrate_vma_finalize } from '../../mm/migrate_device.js';
import { MIGRATE_VMA_SELECT_SYSTEM } from '../../include/linux/migrate.js';
import { TinyDev, watch, locked } from './hmm_devmem.js';
import { kmemleak_exempt } from '../leakcheck/uvu.js';

const t = suite('mm/hmm: hmm_range_fault');
let p: Process;
let sub: mmu_interval_notifier;
t.before.each(() => { p = boot(); sub = watch(p).sub; });

interface opts { default_flags?: number; mask?: number; owner?: unknown; req?: number[] }

/* one driver-style call: read_begin, mmap_lock, hmm_range_fault, unlock */
function fault(start: number, npages: number, o: opts = {}): { ret: number; pfns: Float64Array; range: hmm_range } {
  const pfns = new Float64Array(npages);
  if (o.req) o.req.forEach((f, i) => { pfns[i] = hmm_pfn_make(0, f); });
  const range: hmm_range = {
    notifier: sub, notifier_seq: 0, start, end: start + npages * PAGE_SIZE, hmm_pfns: pfns,
    default_flags: o.default_flags ?? 0, pfn_flags_mask: o.mask ?? 0, dev_private_owner: o.owner ?? null,
  };
  const ret = runAs(p.task, (function* () {
    range.notifier_seq = yield* mmu_interval_read_begin(sub);
    yield* mmap_read_lock(p.mm);
    const r = yield* hmm_range_fault(range);
    mmap_read_unlock(p.mm);
    return r;
  })());
  return { ret, pfns, range };
}

const F = (x: number) => hmm_pfn_flags(x) & (HMM_PFN_VALID | HMM_PFN_WRITE | HMM_PFN_ERROR);
const pfn_at = (a: number) => pte_pfn(pte_at(p.mm, a));

t('the hmm_pfns layout: flags above a 40-bit pfn, order in its own field, every value exact', () => {
  const x = hmm_pfn_make(2 ** 40 - 1, HMM_PFN_VALID | HMM_PFN_WRITE | (HPAGE_PMD_ORDER << HMM_PFN_ORDER_SHIFT));
  assert.ok(Number.isSafeInteger(x));
  assert.is(hmm_pfn_to_pfn(x), 2 ** 40 - 1);
  assert.is(hmm_pfn_flags(x) & HMM_PFN_VALID, HMM_PFN_VALID);
  assert.is(hmm_pfn_flags(x) & HMM_PFN_ERROR, 0);
  assert.is(hmm_pfn_to_map_order(x), 9);
  assert.is(HMM_PFN_FLAGS_SHIFT, 40);
  assert.is(HMM_PFN_REQ_FAULT, HMM_PFN_VALID);
  assert.is(HMM_PFN_REQ_WRITE, HMM_PFN_WRITE);
  assert.is(hmm_pfn_make(5, HMM_PFN_VALID), 2 ** 52 + 5, 'VALID is the top bit of the 53');
});

t('a pure snapshot reports resident pages, leaves holes 0 and marks the gap past the VMA ERROR', () => {
  const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.write32(a, 1);                           /* writable page */
  p.read32(a + PAGE_SIZE);                   /* zero page, read-only */
  const { ret, pfns } = fault(a, 5);         /* one page past the end: no VMA there */
  assert.is(ret, 0);
  assert.is(F(pfns[0]), HMM_PFN_VALID | HMM_PFN_WRITE);
  assert.is(hmm_pfn_to_pfn(pfns[0]), pfn_at(a));
  assert.is(hmm_pfn_to_page(pfns[0]).pfn, pfn_to_page(pfn_at(a)).pfn);
  assert.is(F(pfns[1]), HMM_PFN_VALID, 'the zero page is reported as a read-only page');
  assert.is(hmm_pfn_to_pfn(pfns[1]), 0);
  assert.is(pfns[2], 0, 'hole, no fault asked');
  assert.is(pfns[3], 0);
  assert.is(F(pfns[4]), HMM_PFN_ERROR, 'no VMA');
  assert.is(hmm_pfn_to_map_order(pfns[0]), 0);
  assert.is(get_counter('pgfault_remote'), 0, 'nothing was faulted');
});

t('default_flags = REQ_FAULT faults every page in for read: zero pages, read-only', () => {
  const a = p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
  const { ret, pfns } = fault(a, 8, { default_flags: HMM_PFN_REQ_FAULT });
  assert.is(ret, 0);
  for (let i = 0; i < 8; i++) {
    assert.is(F(pfns[i]), HMM_PFN_VALID);
    assert.is(hmm_pfn_to_pfn(pfns[i]), 0, 'anonymous read fault maps the zero page');
  }
  assert.is(get_counter('pgfault_remote'), 8, 'handle_mm_fault with FAULT_FLAG_REMOTE per page');
});

t('REQ_FAULT | REQ_WRITE allocates writable pages, and breaks COW of the zero page', () => {
  const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.read32(a);                               /* zero page first */
  const first = fault(a, 4, { default_flags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
  assert.is(first.ret, -EBUSY, 'replacing the zero page invalidated the range: the driver retries');
  const { ret, pfns } = fault(a, 4, { default_flags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
  assert.is(ret, 0);
  for (let i = 0; i < 4; i++) {
    assert.is(F(pfns[i]), HMM_PFN_VALID | HMM_PFN_WRITE);
    assert.is(hmm_pfn_to_pfn(pfns[i]), pfn_at(a + i * PAGE_SIZE));
    assert.not.equal(hmm_pfn_to_pfn(pfns[i]), 0);
  }
  assert.is(get_counter('fault_cow_zero'), 1);
});

t('per-entry requests count only through pfn_flags_mask', () => {
  const a = p.mmap(0, 5 * PAGE_SIZE, RW, ANON);
  p.write32(a + 4 * PAGE_SIZE, 1);           /* the PTE page exists: entries are looked at one by one */
  const req = [0, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, 0];
  const masked = fault(a, 4, { req, mask: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
  assert.is(masked.ret, -EBUSY, 'entry 2 replaced the zero page entry 1 had put there');
  const again = fault(a, 4, { req, mask: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
  assert.is(again.ret, 0);
  assert.is(again.pfns[0], 0, 'not asked, nothing there');
  assert.is(F(again.pfns[1]), HMM_PFN_VALID);
  assert.is(hmm_pfn_to_pfn(again.pfns[1]), 0, 'read fault: the zero page');
  assert.is(F(again.pfns[2]), HMM_PFN_VALID | HMM_PFN_WRITE);
  /* as in Linux, a fault covers the rest of the PMD being walked, asked for or not */
  assert.is(F(again.pfns[3]), HMM_PFN_VALID | HMM_PFN_WRITE);
  const big = p.mmap(0, 2 * PMD_SIZE, RW, ANON);
  const b = Math.ceil(big / PMD_SIZE) * PMD_SIZE;   /* a PMD nobody touched */
  const ignored = fault(b, 4, { req, mask: 0 });
  assert.equal([...ignored.pfns], [0, 0, 0, 0], 'mask 0: the per-entry requests are ignored');
  const readonly = fault(b, 4, { req, mask: HMM_PFN_REQ_FAULT });
  assert.is(readonly.ret, 0);
  assert.equal([...readonly.pfns].map(F), [HMM_PFN_VALID, HMM_PFN_VALID, HMM_PFN_VALID, HMM_PFN_VALID],
    'no PTE page yet: the hole is faulted as one span with the union of the requests (REQ_WRITE masked out)');
});

t('a write request on a read-only VMA is -EPERM; a fault request on PROT_NONE is -EFAULT, a snapshot is ERROR', () => {
  const ro = p.mmap(0, 2 * PAGE_SIZE, PROT_READ, ANON);
  assert.is(fault(ro, 2, { default_flags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE }).ret, -EPERM);
  assert.is(fault(ro, 2, { default_flags: HMM_PFN_REQ_FAULT }).ret, 0, 'read is fine');
  const none = p.mmap(0, 2 * PAGE_SIZE, PROT_NONE, ANON);
  assert.is(fault(none, 2, { default_flags: HMM_PFN_REQ_FAULT }).ret, -EFAULT);
  const snap = fault(none, 2);
  assert.is(snap.ret, 0);
  assert.equal([...snap.pfns].map(F), [HMM_PFN_ERROR, HMM_PFN_ERROR]);
});

t('no VMA with a fault request is -EFAULT; an empty or unaligned range is -EINVAL', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.munmap(a, PAGE_SIZE);
  assert.is(fault(a, 1, { default_flags: HMM_PFN_REQ_FAULT }).ret, -EFAULT);
  assert.is(fault(a, 0).ret, -EINVAL);
  const r = fault(a, 1);
  r.range.start += 8;
  assert.is(runAs(p.task, (function* () {
    yield* mmap_read_lock(p.mm);
    const x = yield* hmm_range_fault(r.range);
    mmap_read_unlock(p.mm);
    return x;
  })()), -EINVAL);
});

t('VM_IO and VM_PFNMAP VMAs are ERROR, or -EFAULT when a fault is asked', () => {
  for (const flag of [VM_IO, VM_PFNMAP]) {
    const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
    p.write32(a, 1);
    vma_lookup(p.mm, a)!.vm_flags |= flag;
    assert.equal([...fault(a, 2).pfns].map(F), [HMM_PFN_ERROR, HMM_PFN_ERROR]);
    assert.is(fault(a, 2, { default_flags: HMM_PFN_REQ_FAULT }).ret, -EFAULT);
  }
});

t('a special PTE with no struct page is ERROR, or -EFAULT when a fault is asked', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  locked(p, function* () { vmf_insert_pfn(vma_lookup(p.mm, a)!, a, 12345); });
  assert.is(F(fault(a, 1).pfns[0]), HMM_PFN_ERROR);
  assert.is(fault(a, 1, { default_flags: HMM_PFN_REQ_FAULT }).ret, -EFAULT);
});

t('a hwpoison entry is 0 in a snapshot and -EFAULT when a fault is asked', () => {
  kmemleak_exempt('the test overwrites a mapped PTE with a hwpoison entry by hand: the page it pointed to is orphaned');
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 1);
  set_pte_at(p.mm, a, pte_offset_map(p.mm, a), swp_entry_to_pte(make_hwpoison_entry(999)));
  assert.is(fault(a, 1).pfns[0], 0);
  assert.is(fault(a, 1, { default_flags: HMM_PFN_REQ_FAULT }).ret, -EFAULT);
});

t('an invalidation between read_begin and the walk makes hmm_range_fault return -EBUSY', () => {
  const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 4 * PAGE_SIZE, 1);
  const pfns = new Float64Array(4);
  const range: hmm_range = {
    notifier: sub, notifier_seq: 0, start: a, end: a + 4 * PAGE_SIZE, hmm_pfns: pfns,
    default_flags: HMM_PFN_REQ_FAULT, pfn_flags_mask: 0, dev_private_owner: null,
  };
  const log = runAs(p.task, (function* (): Sleepable<string[]> {
    const out: string[] = [];
    range.notifier_seq = yield* mmu_interval_read_begin(sub);
    p.madvise(a + PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED);   /* MMU_NOTIFY_CLEAR hits the notifier */
    yield* mmap_read_lock(p.mm);
    out.push(`first ${yield* hmm_range_fault(range)}`);
    mmap_read_unlock(p.mm);
    range.notifier_seq = yield* mmu_interval_read_begin(sub);
    yield* mmap_read_lock(p.mm);
    out.push(`retry ${yield* hmm_range_fault(range)}`);
    mmap_read_unlock(p.mm);
    out.push(`stale ${mmu_interval_read_retry(sub, range.notifier_seq)}`);
    return out;
  })());
  assert.equal(log, [`first ${-EBUSY}`, 'retry 0', 'stale false']);
  assert.is(hmm_pfn_to_pfn(pfns[1]), 0, 'the zapped page came back as the zero page');
  assert.is(F(pfns[0]), HMM_PFN_VALID | HMM_PFN_WRITE);
});

t('faults made by hmm_range_fault itself do not make it fail; a collision with another writer does', () => {
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.read32(a);
  /* the write fault replaces the zero page: a CLEAR invalidation of the notifier's own range */
  const r = fault(a, 2, { default_flags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
  assert.is(r.ret, -EBUSY, 'the COW invalidation bumped the sequence: the driver must retry');
  const again = fault(a, 2, { default_flags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
  assert.is(again.ret, 0, 'second round: everything is already there');
});

t('sticky DMA flags survive the call; outputs below `last` and inputs above it are consistent after -EPERM', () => {
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.write32(a, 1);
  const r = fault(a, 2, { req: [HMM_PFN_DMA_MAPPED, HMM_PFN_DMA_MAPPED] });
  assert.is(r.ret, 0);
  assert.is(hmm_pfn_flags(r.pfns[0]) & HMM_PFN_DMA_MAPPED, HMM_PFN_DMA_MAPPED);
  assert.is(hmm_pfn_flags(r.pfns[1]) & HMM_PFN_DMA_MAPPED, HMM_PFN_DMA_MAPPED, 'kept on a hole too');
  assert.is(F(r.pfns[0]), HMM_PFN_VALID | HMM_PFN_WRITE);
});

t('a device-private page of the caller is reported as it is; another owner\'s page is faulted back', () => {
  const dev = new TinyDev('dev0');
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 2 * PAGE_SIZE, 5);
  dev.toDevice(p, a, a + 2 * PAGE_SIZE);
  const dpfn = pte_to_swp_entry(pte_at(p.mm, a));
  assert.ok(is_device_private_entry(dpfn));
  const own = fault(a, 2, { default_flags: HMM_PFN_REQ_FAULT, owner: dev });
  assert.is(own.ret, 0);
  assert.is(F(own.pfns[0]), HMM_PFN_VALID | HMM_PFN_WRITE);
  assert.is(hmm_pfn_to_page(own.pfns[0]).pgmap, dev.pgmap, 'the device page itself');
  assert.is(dev.migrate_to_ram_calls, 0, 'never faulted');
  const snap = fault(a, 2, { owner: 'someone else' });
  assert.equal([...snap.pfns], [0, 0], 'foreign and not asked for: not present');
  const foreign = fault(a, 2, { default_flags: HMM_PFN_REQ_FAULT, owner: 'someone else' });
  assert.is(foreign.ret, -EBUSY, 'migrating back invalidated the range');
  assert.is(dev.migrate_to_ram_calls, 2);
  const after = fault(a, 2, { default_flags: HMM_PFN_REQ_FAULT, owner: 'someone else' });
  assert.is(after.ret, 0);
  assert.ok(pte_present(pte_at(p.mm, a)));
  assert.is(hmm_pfn_to_page(after.pfns[1]).pgmap, null, 'system memory now');
  assert.is(p.check32(a, 2 * PAGE_SIZE, 5), -1, 'data intact');
});

t('a device-exclusive entry is 0 in a snapshot and restored by a fault request', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 42);
  const r = locked(p, function* () { return yield* make_device_exclusive(p.mm, a, 'atomics'); });
  assert.is(r.ret, 0);
  folio_unlock(r.page!);
  put_page(r.page!);
  assert.ok(is_device_exclusive_entry(pte_to_swp_entry(pte_at(p.mm, a))));
  assert.is(fault(a, 1).pfns[0], 0);
  const f = fault(a, 1, { default_flags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
  assert.is(f.ret, -EBUSY, 'the restore sent MMU_NOTIFY_EXCLUSIVE');
  const g = fault(a, 1, { default_flags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
  assert.is(F(g.pfns[0]), HMM_PFN_VALID | HMM_PFN_WRITE);
  assert.is(hmm_pfn_to_page(g.pfns[0]).pfn, r.page!.pfn);
  assert.is(p.read32(a), 42);
});

t('a huge PMD reports every small page with the PMD\'s flags and order 9', () => {
  const raw = p.mmap(0, 2 * PMD_SIZE, RW, ANON);
  const a = Math.ceil(raw / PMD_SIZE) * PMD_SIZE;
  const thp = alloc_pages(GFP_HIGHUSER_MOVABLE | __GFP_COMP, HPAGE_PMD_ORDER)!;
  const pmdp = pmd_alloc(p.mm, a);
  p.mm.pgd.set(pmdp, pfn_pte(thp.pfn, _PAGE_TABLE_USER | _PAGE_RW | _PAGE_PSE));
  const { ret, pfns } = fault(a + 8 * PAGE_SIZE, 4, { default_flags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
  assert.is(ret, 0);
  for (let i = 0; i < 4; i++) {
    assert.is(F(pfns[i]), HMM_PFN_VALID | HMM_PFN_WRITE);
    assert.is(hmm_pfn_to_pfn(pfns[i]), thp.pfn + 8 + i, 'the matching small page of the huge page');
    assert.is(hmm_pfn_to_map_order(pfns[i]), HPAGE_PMD_ORDER);
  }
  p.mm.pgd.set(pmdp, pfn_pte(thp.pfn, _PAGE_TABLE_USER | _PAGE_PSE));
  const ro = fault(a, 1);
  assert.is(F(ro.pfns[0]), HMM_PFN_VALID, 'read-only huge PMD');
  p.mm.pgd.set(pmdp, 0);                     /* hand the table back empty */
  put_page(thp);                             /* the test's own THP, installed by hand */
});

t('a migration entry makes the walk wait for the migration to finish, then report the new page', () => {
  const dev = new TinyDev('dev0');
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 9);
  const log: string[] = [];
  let result: { ret: number; pfn: number } | null = null;
  const s = new Scheduler();
  s.spawn('migrate', function* () {
    yield* mmap_read_lock(p.mm);
    const m = dev.args(p.mm, a, a + PAGE_SIZE, MIGRATE_VMA_SELECT_SYSTEM);
    yield* migrate_vma_setup(m);
    log.push('entries installed');
    yield* sched_yield();                    /* the device fault runs into the migration entry */
    dev.fillDst(m, () => dev.alloc());
    yield* migrate_vma_pages(m);
    yield* migrate_vma_finalize(m);
    log.push('finalized');
    mmap_read_unlock(p.mm);
  }, 'kthread', p.task);
  s.spawn('device', function* () {
    const pfns = new Float64Array(1);
    const range: hmm_range = {
      notifier: sub, notifier_seq: yield* mmu_interval_read_begin(sub), start: a, end: a + PAGE_SIZE,
      hmm_pfns: pfns, default_flags: HMM_PFN_REQ_FAULT, pfn_flags_mask: 0, dev_private_owner: dev,
    };
    yield* mmap_read_lock(p.mm);
    log.push('walk');
    const ret = yield* hmm_range_fault(range);
    mmap_read_unlock(p.mm);
    result = { ret, pfn: pfns[0] };
  }, 'kthread', p.task);
  s.run();
  assert.equal(log, ['entries installed', 'walk', 'finalized']);
  assert.is(get_counter('fault_migration_wait'), 1);
  assert.is(result!.ret, 0);
  assert.is(F(result!.pfn), HMM_PFN_VALID | HMM_PFN_WRITE);
  assert.is(hmm_pfn_to_page(result!.pfn).pgmap, dev.pgmap, 'the page the migration installed');
});

t.run();
