/*
 * test/drivers/kvm-like/kvm_main.test.ts - the KVM-like shadow table on
 * the 2008 notifier API (drivers/kvm-like/kvm_main.ts): every shadow
 * entry pins its page, invalidations drop entry and pin, a fault racing an
 * invalidation retries, clear_flush_young reports guest accesses.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../../helpers.js';
import { PAGE_SIZE, page_count } from '../../../include/linux/mm.js';
import { EAGAIN } from '../../../include/uapi/asm-generic/errno.js';
import type { page } from '../../../include/linux/mm_types.js';
import { runAs } from '../../../tools/include/nolibc/nolibc.js';
import { mmu_notifier_clear_young } from '../../../mm/mmu_notifier.js';
import { kvm_create_vm, kvm_destroy_vm, kvm_guest_access32, kvm_tdp_page_fault } from '../../../drivers/kvm-like/kvm_main.js';

test('a guest load pins the page in the shadow table; munmap drops the entry and the pin, and the page is freed', () => {
  const p = boot();
  const buf = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(buf, 5);
  const k = runAs(p.task, kvm_create_vm(p.mm));
  const r = runAs(p.task, kvm_guest_access32(k, buf)) as { value: number; page: page };
  assert.is(r.value, 5);
  assert.is(page_count(r.page), 2, 'the CPU mapping and the shadow entry');
  assert.is(p.munmap(buf, PAGE_SIZE), 0);
  assert.is(k.spt.size, 0);
  assert.is(page_count(r.page), 0, 'freed once KVM let go');
  assert.is(k.mmu_notifier_count, 0);
  assert.ok(k.mmu_notifier_seq > 0);
});

test('a fault that races a range invalidation retries (mmu_notifier_retry) and drops the page it pinned', () => {
  const p = boot();
  const buf = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(buf, 5);
  const k = runAs(p.task, kvm_create_vm(p.mm));
  k.mmu_notifier.ops.invalidate_range_start!(k.mmu_notifier, p.mm, buf, buf + PAGE_SIZE);
  assert.is(runAs(p.task, kvm_tdp_page_fault(k, buf, false)), -EAGAIN);
  assert.is(k.spt.size, 0);
  k.mmu_notifier.ops.invalidate_range_end!(k.mmu_notifier, p.mm, buf, buf + PAGE_SIZE);
  assert.is(runAs(p.task, kvm_tdp_page_fault(k, buf, false)), 0);
  assert.is(k.fault_retries, 1);
});

test('a host COW reaches KVM as invalidate_page; the guest then sees the new page; stores reach the host', () => {
  const p = boot();
  const buf = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(buf, 1);
  const k = runAs(p.task, kvm_create_vm(p.mm));
  const before = runAs(p.task, kvm_guest_access32(k, buf)) as { page: page };
  const q = p.fork();
  p.write32(buf, 2);
  const after = runAs(p.task, kvm_guest_access32(k, buf)) as { value: number; page: page };
  assert.is(after.value, 2);
  assert.is.not(after.page, before.page);
  runAs(p.task, kvm_guest_access32(k, buf + 4, 99));
  assert.is(p.read32(buf + 4), 99);
  assert.is(q.read32(buf + 4), 0);
});

test('clear_flush_young reports a guest access once; destroy releases every pin', () => {
  const p = boot();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.write32(buf, 1);
  const k = runAs(p.task, kvm_create_vm(p.mm));
  const r = runAs(p.task, kvm_guest_access32(k, buf)) as { page: page };
  assert.is(mmu_notifier_clear_young(p.mm, buf, buf + PAGE_SIZE), 1);
  assert.is(mmu_notifier_clear_young(p.mm, buf, buf + PAGE_SIZE), 0);
  runAs(p.task, kvm_destroy_vm(k));
  assert.is(k.spt.size, 0);
  assert.is(page_count(r.page), 1);
});

test.run();
