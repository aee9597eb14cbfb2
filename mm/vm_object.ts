/*
 * mm/vm_object.ts - the logical page table of GMEM (struct vm_object; the
 * RFC's mm/vm_object.c, which borrows FreeBSD's VM object): one per mm
 * (mm.vm_obj), created by the first mmap(MAP_PEER_SHARED). An entry says
 * where a virtual page of a peer-shared VMA lives:
 *
 *   GM_PAGE_CPU     the CPU page table maps it (pfn of the CPU page)
 *   GM_PAGE_DEVICE  a device holds it (device id and device pfn); the CPU
 *                   page table has nothing there
 *   0               nothing yet (the RFC's GM_PAGE_NOMAP)
 *
 * The users are mm/gmem.ts (faults, munmap, detach), mm/gmem_phys.ts
 * (device memory, eviction) and mm/gmem_hmadvise.ts.
 *
 * Simplified: the RFC keeps a struct gm_mapping (flags, page or pfn, a
 * mutex) per HPAGE_SIZE unit in an xarray; we keep one 64-bit entry per
 * 4 KiB page in a lib/gpt table, and one mutex per vm_object.
 */
import type { mm_struct } from '../include/linux/mm_types.js';
import { GM_PAGE_DEVICE } from '../include/linux/gmem.js';
import type { gpt_format } from '../include/linux/gpt.js';
import { gpt } from '../lib/gpt/gpt.js';
import { gpt_format_define, gpt_format_register } from '../lib/gpt/formats.js';
import { mutex } from '../lib/locking/mutex.js';

/* leaves at the last of 4 levels; bit 0 valid; flags GM_PAGE_*; device id bits 8..11; pfn from bit 12 */
let gm_lpt_format: gpt_format | null = null;
function gm_lpt_alloc(): gpt {
  gm_lpt_format ??= gpt_format_define({ name: 'gmem_lpt', entry_bits: 64, leaf_levels: [], pde_mask: 1, pde_value: 1,
    pde_shift: 12, pde_bits: 1, last_level: 3 });
  gpt_format_register(gm_lpt_format);
  return new gpt({ address_bits: 48, level_bits: 9, page_shift: 12 }, gm_lpt_format);
}

/** gm_entry() - an entry for a page with GM_PAGE_* @flags on device @dev_id (0: CPU) at @pfn. */
export function gm_entry(flags: number, dev_id: number, pfn: number): number { return pfn * 4096 + dev_id * 256 + flags + 1; }
export function gm_entry_flags(e: number): number { return e & 0x70; }
export function gm_entry_dev(e: number): number { return (e >>> 8) & 0xf; }
export function gm_entry_pfn(e: number): number { return Math.floor(e / 4096); }

/**
 * struct vm_object - the logical page table of one mm (mm.vm_obj).
 * @lock: serialises the device and CPU fault paths on its pages
 * @nr_device: entries that are GM_PAGE_DEVICE
 */
export class vm_object {
  readonly logical_page_table = gm_lpt_alloc();
  readonly lock = new mutex('vm_object.lock');
  nr_device = 0;
  constructor(readonly mm: mm_struct) {}
}

/** vm_object_lookup() - the entry for @va (0: none). */
export function vm_object_lookup(obj: vm_object, va: number): number {
  const p = obj.logical_page_table.lookup(va);
  return p < 0 ? 0 : obj.logical_page_table.load(p);
}

/** vm_object_set() - set the entry for @va to @e (0 clears it). Caller holds obj.lock. */
export function vm_object_set(obj: vm_object, va: number, e: number): void {
  const old = vm_object_lookup(obj, va);
  if (gm_entry_flags(old) === GM_PAGE_DEVICE) obj.nr_device--;
  if (gm_entry_flags(e) === GM_PAGE_DEVICE) obj.nr_device++;
  if (e === 0) { const p = obj.logical_page_table.lookup(va); if (p >= 0) obj.logical_page_table.set(p, 0); return; }
  const p = obj.logical_page_table.populate(va);
  if (p < 0) throw new Error('gmem: logical page table cannot grow');
  obj.logical_page_table.set(p, e);
}

/**
 * vm_object_for_each() - call @fn(va, entry) for every non-empty entry in
 * [start, end), collected first so @fn may change the table.
 */
export function vm_object_for_each(obj: vm_object, start: number, end: number, fn: (va: number, e: number) => void): void {
  const found: [number, number][] = [];
  obj.logical_page_table.walk(start, end, {
    leaf(_ptr: number, addr: number, _level: number, e: number) { if (e !== 0) found.push([addr, e]); },
  });
  for (const [va, e] of found) fn(va, e);
}
