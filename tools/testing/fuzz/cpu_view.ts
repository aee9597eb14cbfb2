/*
 * tools/testing/fuzz/cpu_view.ts - what the CPU page table of a process
 * holds at one address, decoded for the fuzzer's checks (a PMD leaf or
 * PTE: present, device-private, device-exclusive, anything else).
 */
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PMD_LEVEL, pte_present, pte_pfn, pte_write, pmd_present } from '../../../include/linux/pgtable.js';
import {
  pte_to_swp_entry, non_swap_entry, is_device_private_entry, is_device_exclusive_entry, swp_offset,
  is_writable_device_private_entry,
} from '../../../include/linux/swapops.js';
import type { mm_struct } from '../../../include/linux/mm_types.js';
import { pte_offset_map, ptep_get } from '../../../mm/pgtable.js';

const PMD_PAGES = 512;

/** What the CPU page table holds at one address. */
export interface CpuView { pfn: number; writable: boolean; kind: 'present' | 'device' | 'exclusive' | 'other' | 'none' }

/** cpuView() - decode the CPU's translation of @addr in @mm (PMD leaf or PTE). */
export function cpuView(mm: mm_struct, addr: number): CpuView {
  const pmdp = mm.pgd.lookup(addr, PMD_LEVEL);
  if (pmdp >= 0) {
    const pmd = mm.pgd.load(pmdp);
    const idx = Math.floor((addr % (PMD_PAGES * PAGE_SIZE)) / PAGE_SIZE);
    if (pmd !== 0 && pmd_present(pmd) && (pmd & 0x80)) return { pfn: pte_pfn(pmd) + idx, writable: pte_write(pmd), kind: 'present' };
    if (pmd !== 0 && !pmd_present(pmd)) return decodeSwap(pmd, idx);
  }
  const ptep = pte_offset_map(mm, addr);
  if (ptep < 0) return { pfn: -1, writable: false, kind: 'none' };
  const pte = ptep_get(mm, ptep);
  if (pte === 0) return { pfn: -1, writable: false, kind: 'none' };
  if (pte_present(pte)) return { pfn: pte_pfn(pte), writable: pte_write(pte), kind: 'present' };
  return decodeSwap(pte, 0);
}

function decodeSwap(pte: number, idx: number): CpuView {
  const e = pte_to_swp_entry(pte);
  if (!non_swap_entry(e)) return { pfn: -1, writable: false, kind: 'other' };
  if (is_device_private_entry(e)) return { pfn: swp_offset(e) + idx, writable: is_writable_device_private_entry(e), kind: 'device' };
  if (is_device_exclusive_entry(e)) return { pfn: swp_offset(e) + idx, writable: true, kind: 'exclusive' };
  return { pfn: -1, writable: false, kind: 'other' };
}

