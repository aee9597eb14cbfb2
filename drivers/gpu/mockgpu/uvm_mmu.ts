/*
 * drivers/gpu/mockgpu/uvm_mmu.ts - the GPU's MMU: its page table (a lib/gpt
 * table in the mock GPU's own entry format) and its TLB.
 *
 * Follows NVIDIA UVM's uvm_mmu.c (the page tree the driver writes through
 * pushes, and the TLB invalidates it issues after unmapping) and the
 * hardware side UVM programs: the GPU's page walker reads the table, the
 * TLB caches translations until an invalidate command drops them. The
 * entry format is drawn in include/linux/mockgpu.ts.
 *
 * Who writes what:
 *   the channel's engine (uvm_channel.ts) executes PTE writes/clears and
 *     TLB invalidates in command order - nothing else changes the table;
 *   the SMs (mockgpu_sm.ts) translate: TLB, then a walk on a miss; a
 *     walk that finds no entry allowing the access raises a fault.
 * So a CPU-side change reaches the GPU only when the invalidate command
 * it queued has executed: the two page tables are never updated
 * atomically together, and the notifier protocol is what makes that safe.
 *
 * Simplified: one fully associative TLB for the whole GPU (UVM's hardware
 * has per-SM uTLBs and a shared L2 TLB), tagged by address space, LRU.
 */
import { gpt } from '../../../lib/gpt/gpt.js';
import { gpt_format_define, gpt_format_register } from '../../../lib/gpt/formats.js';
import type { gpt_format } from '../../../include/linux/gpt.js';
import {
  MOCKGPU_PDE_VALID, MOCKGPU_PTE_PFN_SHIFT, mockgpu_pte_allows, mockgpu_pte_valid,
} from '../../../include/linux/mockgpu.js';
import { PAGE_SIZE, PAGE_SHIFT } from '../../../include/linux/mm.js';
import { charge } from '../../../lib/sim/clock.js';
import { GPU_PT_WALK_NS, GPU_TLB_HIT_NS } from '../../../lib/sim/costs.js';

/**
 * The mock GPU's entry format on lib/gpt: 64-bit entries, leaves only at
 * the last level, a directory entry is (slot << 12) | VALID.
 */
export const mockgpu_pte_format: gpt_format = gpt_format_define({
  name: 'mockgpu',
  entry_bits: 64,
  leaf_levels: [],
  pde_mask: MOCKGPU_PDE_VALID,
  pde_value: MOCKGPU_PDE_VALID,
  pde_shift: MOCKGPU_PTE_PFN_SHIFT,
  pde_bits: MOCKGPU_PDE_VALID,
});

/** GPU virtual addresses are CPU virtual addresses (HMM): the same 48 bits. */
export const MOCKGPU_VA_BITS = 48;

/**
 * uvm_page_table_alloc() - an empty GPU page table for one address space.
 * Context: any. Return: the table.
 */
export function uvm_page_table_alloc(): gpt {
  gpt_format_register(mockgpu_pte_format);
  return new gpt({ address_bits: MOCKGPU_VA_BITS, level_bits: 9, page_shift: PAGE_SHIFT }, mockgpu_pte_format);
}

/**
 * uvm_pte_read() - the leaf for @va, or 0 (the hardware page walker).
 * Context: any; charges one walk.
 */
export function uvm_pte_read(pt: gpt, va: number): number {
  charge(GPU_PT_WALK_NS);
  const ptr = pt.lookup(va);
  return ptr < 0 ? 0 : pt.load(ptr);
}

/**
 * uvm_pte_write() - set the leaf for @va to @pte (0 clears it).
 * Only the channel engine calls this, when a PTE_WRITE command executes.
 * Return: 0, or -ENOMEM when the table cannot grow.
 */
export function uvm_pte_write(pt: gpt, va: number, pte: number): number {
  if (pte === 0) {
    const ptr = pt.lookup(va);
    if (ptr >= 0) pt.set(ptr, 0);
    return 0;
  }
  const ptr = pt.populate(va);
  if (ptr < 0) return ptr;
  pt.set(ptr, pte);
  return 0;
}

/**
 * uvm_pte_clear_range() - clear every leaf of [@start, @end) (an UNMAP
 * command). Return: the number of valid entries cleared.
 */
export function uvm_pte_clear_range(pt: gpt, start: number, end: number): number {
  return pt.clear_range(start, end);
}

/**
 * uvm_pt_for_each_valid() - call @fn(va, pte) for every valid leaf in
 * [@start, @end) (tests, dumps and the race check).
 */
export function uvm_pt_for_each_valid(pt: gpt, start: number, end: number, fn: (va: number, pte: number) => void): void {
  pt.walk(start, end, {
    leaf(_ptr: number, addr: number, _level: number, e: number) { if (mockgpu_pte_valid(e)) fn(addr, e); },
  });
}

/**
 * struct uvm_tlb - the device TLB: (address space, virtual page) -> PTE,
 * fully associative, least recently used entry replaced first.
 */
export class uvm_tlb {
  /* key = va_space id * 2^36 + virtual page number; insertion order is LRU order */
  readonly map = new Map<number, number>();
  hits = 0;
  misses = 0;
  constructor(readonly capacity: number) {}
}

function tlb_key(vs_id: number, va: number): number {
  return vs_id * 2 ** 36 + Math.floor(va / PAGE_SIZE);
}

/**
 * uvm_tlb_translate() - translate @va of address space @vs_id for an
 * access of type @access, through the TLB and, on a miss, the table @pt.
 * A walk that finds a leaf allowing the access fills the TLB.
 * Context: an SM. Return: the PTE, or 0 when the access must fault.
 */
export function uvm_tlb_translate(tlb: uvm_tlb, pt: gpt, vs_id: number, va: number, access: number): number {
  const key = tlb_key(vs_id, va);
  const hit = tlb.map.get(key);
  if (hit !== undefined && mockgpu_pte_allows(hit, access)) {
    charge(GPU_TLB_HIT_NS);
    tlb.hits++;
    tlb.map.delete(key);
    tlb.map.set(key, hit);
    return hit;
  }
  tlb.misses++;
  const pte = uvm_pte_read(pt, va);
  if (!mockgpu_pte_allows(pte, access)) return 0;
  if (tlb.map.size >= tlb.capacity && hit === undefined) {
    const oldest = tlb.map.keys().next().value;
    if (oldest !== undefined) tlb.map.delete(oldest);
  }
  tlb.map.set(key, pte);
  return pte;
}

/**
 * uvm_tlb_invalidate() - drop the cached translations of [@start, @end)
 * of address space @vs_id (a TLB_INVALIDATE command executing).
 * Return: entries dropped.
 */
export function uvm_tlb_invalidate(tlb: uvm_tlb, vs_id: number, start: number, end: number): number {
  const first = tlb_key(vs_id, start), last = tlb_key(vs_id, end - 1);
  let n = 0;
  if (last - first + 1 < tlb.map.size) {
    for (let k = first; k <= last; k++) if (tlb.map.delete(k)) n++;
    return n;
  }
  for (const k of [...tlb.map.keys()]) if (k >= first && k <= last) { tlb.map.delete(k); n++; }
  return n;
}
