/*
 * test/drivers/gpu/uvm_mmu.test.ts - the GPU page-table entry format on
 * lib/gpt and the device TLB (drivers/gpu/mockgpu/uvm_mmu.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  MOCKGPU_PTE_VALID, MOCKGPU_PTE_WRITE, MOCKGPU_PTE_ATOMIC, UVM_APERTURE_SYS, UVM_APERTURE_VID, UVM_APERTURE_PEER,
  MOCKGPU_FAULT_ACCESS_READ, MOCKGPU_FAULT_ACCESS_WRITE, MOCKGPU_FAULT_ACCESS_ATOMIC, mockgpu_pte_make,
  mockgpu_pte_aperture, mockgpu_pte_pfn, mockgpu_pte_decode, mockgpu_pte_allows,
} from '../../../include/linux/mockgpu.js';
import {
  uvm_page_table_alloc, uvm_pte_read, uvm_pte_write, uvm_pte_clear_range, uvm_pt_for_each_valid, uvm_tlb,
  uvm_tlb_translate, uvm_tlb_invalidate, mockgpu_pte_format,
} from '../../../drivers/gpu/mockgpu/uvm_mmu.js';
import { gpt_format_find } from '../../../lib/gpt/formats.js';
import { resetScheduler } from '../../../lib/sim/sched.js';

test.before.each(() => resetScheduler());

test('a GPU PTE keeps valid in bit 0, the aperture in bits 1-2, write in 3, atomic in 4, the PFN from bit 12', () => {
  const e = mockgpu_pte_make(UVM_APERTURE_SYS, 0x12345, true, false);
  assert.is(e, 0x12345 * 4096 + MOCKGPU_PTE_VALID + (UVM_APERTURE_SYS << 1) + MOCKGPU_PTE_WRITE);
  assert.is(mockgpu_pte_aperture(e), UVM_APERTURE_SYS);
  assert.is(mockgpu_pte_pfn(e), 0x12345);
  assert.is(mockgpu_pte_decode(e), 'SYS pfn=0x12345 RW-');
  const big = mockgpu_pte_make(UVM_APERTURE_PEER, 2 ** 40 - 1, true, true);
  assert.is(mockgpu_pte_pfn(big), 2 ** 40 - 1, 'a 40-bit frame number survives');
  assert.is(mockgpu_pte_aperture(big), UVM_APERTURE_PEER);
  assert.is(big & (MOCKGPU_PTE_ATOMIC | MOCKGPU_PTE_WRITE), MOCKGPU_PTE_ATOMIC | MOCKGPU_PTE_WRITE);
  assert.is(mockgpu_pte_decode(0), 'invalid');
});

test('permissions: read needs valid, write needs WRITE, atomic needs ATOMIC', () => {
  const ro = mockgpu_pte_make(UVM_APERTURE_VID, 1, false, false);
  const rw = mockgpu_pte_make(UVM_APERTURE_VID, 1, true, false);
  const rwa = mockgpu_pte_make(UVM_APERTURE_VID, 1, true, true);
  assert.ok(mockgpu_pte_allows(ro, MOCKGPU_FAULT_ACCESS_READ));
  assert.not.ok(mockgpu_pte_allows(ro, MOCKGPU_FAULT_ACCESS_WRITE));
  assert.ok(mockgpu_pte_allows(rw, MOCKGPU_FAULT_ACCESS_WRITE));
  assert.not.ok(mockgpu_pte_allows(rw, MOCKGPU_FAULT_ACCESS_ATOMIC));
  assert.ok(mockgpu_pte_allows(rwa, MOCKGPU_FAULT_ACCESS_ATOMIC));
  assert.not.ok(mockgpu_pte_allows(0, MOCKGPU_FAULT_ACCESS_READ));
});

test('the table is a lib/gpt instance in the registered "mockgpu" format: write, read, walk, clear', () => {
  const pt = uvm_page_table_alloc();
  assert.is(gpt_format_find('mockgpu'), mockgpu_pte_format);
  const va = 0x7f0000200000;
  const e = mockgpu_pte_make(UVM_APERTURE_VID, 7, true, true);
  assert.is(uvm_pte_read(pt, va), 0);
  assert.is(uvm_pte_write(pt, va, e), 0);
  assert.is(uvm_pte_write(pt, va + 4096, mockgpu_pte_make(UVM_APERTURE_SYS, 9, false, false)), 0);
  assert.is(uvm_pte_read(pt, va), e);
  const seen: string[] = [];
  uvm_pt_for_each_valid(pt, va - 4096, va + 3 * 4096, (a, pte) => seen.push(`${a.toString(16)} ${mockgpu_pte_decode(pte)}`));
  assert.equal(seen, ['7f0000200000 VID pfn=0x7 RWA', '7f0000201000 SYS pfn=0x9 R--']);
  assert.is(uvm_pte_clear_range(pt, va, va + 2 * 4096), 2);
  assert.is(uvm_pte_read(pt, va + 4096), 0);
});

test('the TLB caches a translation until invalidated, and a permission miss re-walks the table', () => {
  const pt = uvm_page_table_alloc();
  const tlb = new uvm_tlb(4);
  const va = 0x10000000;
  uvm_pte_write(pt, va, mockgpu_pte_make(UVM_APERTURE_VID, 3, false, false));
  assert.is(uvm_tlb_translate(tlb, pt, 1, va, MOCKGPU_FAULT_ACCESS_READ) !== 0, true);
  assert.is(uvm_tlb_translate(tlb, pt, 1, va + 8, MOCKGPU_FAULT_ACCESS_READ) !== 0, true);
  assert.equal([tlb.hits, tlb.misses], [1, 1]);
  assert.is(uvm_tlb_translate(tlb, pt, 1, va, MOCKGPU_FAULT_ACCESS_WRITE), 0, 'read-only: a write faults');
  uvm_pte_write(pt, va, 0);
  assert.is(uvm_tlb_translate(tlb, pt, 1, va, MOCKGPU_FAULT_ACCESS_READ) !== 0, true, 'stale entry still cached');
  assert.is(uvm_tlb_invalidate(tlb, 1, va, va + 4096), 1);
  assert.is(uvm_tlb_translate(tlb, pt, 1, va, MOCKGPU_FAULT_ACCESS_READ), 0, 'after the invalidate the walk finds nothing');
  assert.is(uvm_tlb_translate(tlb, pt, 2, va, MOCKGPU_FAULT_ACCESS_READ), 0, 'tagged by address space');
});

test('the TLB evicts the least recently used entry when full', () => {
  const pt = uvm_page_table_alloc();
  const tlb = new uvm_tlb(2);
  for (let i = 0; i < 3; i++) uvm_pte_write(pt, i * 4096 + 0x100000, mockgpu_pte_make(UVM_APERTURE_VID, i, true, true));
  uvm_tlb_translate(tlb, pt, 1, 0x100000, MOCKGPU_FAULT_ACCESS_READ);
  uvm_tlb_translate(tlb, pt, 1, 0x101000, MOCKGPU_FAULT_ACCESS_READ);
  uvm_tlb_translate(tlb, pt, 1, 0x100000, MOCKGPU_FAULT_ACCESS_READ);       /* 0x100000 most recent */
  uvm_tlb_translate(tlb, pt, 1, 0x102000, MOCKGPU_FAULT_ACCESS_READ);       /* evicts 0x101000 */
  assert.is(tlb.map.size, 2);
  const misses = tlb.misses;
  uvm_tlb_translate(tlb, pt, 1, 0x100000, MOCKGPU_FAULT_ACCESS_READ);
  assert.is(tlb.misses, misses, '0x100000 stayed');
  uvm_tlb_translate(tlb, pt, 1, 0x101000, MOCKGPU_FAULT_ACCESS_READ);
  assert.is(tlb.misses, misses + 1, '0x101000 was evicted');
});

test.run();
