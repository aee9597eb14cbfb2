/*
 * test/drivers/misc/sgi-gru/gru.test.ts - the GRU-like TLB on the 2008
 * notifier API (drivers/misc/sgi-gru/gru.ts): drop-ins hold no page
 * reference, range_start flushes and stalls the miss handler until
 * range_end, invalidate_page flushes one page, release empties the TLB.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../../../helpers.js';
import { PAGE_SIZE, page_count } from '../../../../include/linux/mm.js';
import { PROT_READ, MADV_DONTNEED } from '../../../../include/uapi/asm-generic/mman.js';
import { EFAULT } from '../../../../include/uapi/asm-generic/errno.js';
import { Scheduler } from '../../../../lib/sim/sched.js';
import { runAs } from '../../../../tools/include/nolibc/nolibc.js';
import { pfn_to_page } from '../../../../mm/page_alloc.js';
import { gru_access32, gru_register_mmu_notifier, gru_drop_mmu_notifier } from '../../../../drivers/misc/sgi-gru/gru.js';

test('a GRU load drops the CPU translation into its TLB without taking a page reference', () => {
  const p = boot();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.write32(buf + 8, 42);
  const gms = runAs(p.task, gru_register_mmu_notifier(p.mm));
  const r = runAs(p.task, gru_access32(gms, buf + 8)) as { value: number; pfn: number };
  assert.is(r.value, 42);
  assert.is(page_count(pfn_to_page(r.pfn)), 1, 'only the CPU mapping references the page');
  assert.is(gms.tlb.size, 1);
  assert.is(gms.dropins, 1);
  const w = runAs(p.task, gru_access32(gms, buf + PAGE_SIZE, 7)) as { value: number };
  assert.is(w.value, 7, 'a store to an untouched page faults it in, then drops it in for write');
  assert.is(p.read32(buf + PAGE_SIZE), 7);
});

test('MADV_DONTNEED: range_start flushes the TLB; the next load gets the fresh zero-filled page', () => {
  const p = boot();
  const buf = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(buf, 42);
  const gms = runAs(p.task, gru_register_mmu_notifier(p.mm));
  runAs(p.task, gru_access32(gms, buf));
  assert.is(p.madvise(buf, PAGE_SIZE, MADV_DONTNEED), 0);
  assert.is(gms.tlb.size, 0);
  assert.is(gms.ms_range_active, 0);
  assert.is((runAs(p.task, gru_access32(gms, buf)) as { value: number }).value, 0);
});

test('a TLB miss while a range invalidation is active stalls until range_end', () => {
  const p = boot();
  const buf = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(buf, 42);
  const gms = runAs(p.task, gru_register_mmu_notifier(p.mm));
  gms.ms_notifier.ops.invalidate_range_start!(gms.ms_notifier, p.mm, buf, buf + PAGE_SIZE);
  const s = new Scheduler({});
  const order: string[] = [];
  s.spawn('gru', function* () { const r = yield* gru_access32(gms, buf); order.push(`load ${(r as { value: number }).value}`); });
  s.spawn('vm', function* () {
    order.push('end');
    gms.ms_notifier.ops.invalidate_range_end!(gms.ms_notifier, p.mm, buf, buf + PAGE_SIZE);
  });
  s.run();
  assert.equal(order, ['end', 'load 42']);
  assert.is(gms.stalls, 1);
});

test('a COW flushes the page through invalidate_page; a store to a read-only mapping is -EFAULT; unregister releases', () => {
  const p = boot();
  const buf = p.mmap(0, PAGE_SIZE, RW, ANON);
  const ro = p.mmap(0, PAGE_SIZE, PROT_READ, ANON);
  p.write32(buf, 1);
  const gms = runAs(p.task, gru_register_mmu_notifier(p.mm));
  const before = runAs(p.task, gru_access32(gms, buf)) as { pfn: number };
  const q = p.fork();
  p.write32(buf, 2);                                  /* COW in the parent */
  const after = runAs(p.task, gru_access32(gms, buf)) as { value: number; pfn: number };
  assert.is(after.value, 2);
  assert.is.not(after.pfn, before.pfn, 'the TLB followed the COW to the new page');
  assert.is(q.read32(buf), 1);
  assert.is(runAs(p.task, gru_access32(gms, ro, 1)), -EFAULT);
  runAs(p.task, gru_drop_mmu_notifier(gms));
  assert.ok(gms.released);
  assert.is(gms.tlb.size, 0);
});

test.run();
