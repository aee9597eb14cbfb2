/*
 * tools/hmm-sim/report/residency.ts - where each user page lives, read
 * from the CPU page tables: the residency map of the HTML report.
 *
 * A page is in one of the states of page_state (the CPU's entry for it,
 * as Linux's page-table walkers classify it): none (no entry), zero (the
 * shared zero page), ram, swap, device_private (a device-private swap
 * entry), device_coherent (a present entry of a MEMORY_DEVICE_COHERENT
 * page), exclusive (a device-exclusive entry), migration (a migration
 * entry: the page is being moved). A PMD leaf (THP, or a PMD-level
 * device-private or migration entry) gives the state of each of its pages.
 * Reading is lockless: the simulator is cooperative, nobody writes while
 * the report samples.
 */
import type { mm_struct } from '../../../include/linux/mm_types.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { pmd_trans_huge, pmd_pfn, pmd_is_table, pte_pfn, PUD_LEVEL } from '../../../include/linux/pgtable.js';
import { pte_kind } from '../../../include/linux/swapops.js';
import { is_device_coherent_page } from '../../../include/linux/memremap.js';
import { pfn_to_page, pfn_valid, is_zero_pfn } from '../../../mm/page_alloc.js';
import { pmd_off, pte_offset_map, ptep_get } from '../../../mm/pgtable.js';

/** The states, in the order of the map's legend (index = state code). */
export const page_states = ['none', 'zero', 'ram', 'swap', 'device_private', 'device_coherent', 'exclusive', 'migration'] as const;
export type page_state = typeof page_states[number];

const NONE = 0, ZERO = 1, RAM = 2, SWAP = 3, DEV_PRIVATE = 4, DEV_COHERENT = 5, EXCLUSIVE = 6, MIGRATION = 7;

function present(pfn: number): number {
  if (is_zero_pfn(pfn)) return ZERO;
  return pfn_valid(pfn) && is_device_coherent_page(pfn_to_page(pfn)) ? DEV_COHERENT : RAM;
}

/* a non-present entry (PTE, or PMD leaf encoded the same way) */
function nonpresent(entry: number): number {
  const k = pte_kind(entry);
  switch (k.kind) {
    case 'none': return NONE;
    case 'present': return RAM;
    case 'swap': return SWAP;
    case 'migration': return MIGRATION;
    case 'device_private': case 'hmm': return DEV_PRIVATE;    /* 'hmm': the 2015 design's SWP_HMM, memory on the device */
    case 'device_exclusive': return EXCLUSIVE;
    default: return NONE;                                    /* hwpoison, markers: nothing readable there */
  }
}

/**
 * page_state_at() - the state code (index into page_states) of the page
 * at @addr in @mm.
 */
export function page_state_at(mm: mm_struct, addr: number): number {
  const pudp = mm.pgd.lookup(addr, PUD_LEVEL);
  if (pudp >= 0) {
    const pud = mm.pgd.load(pudp);
    if (pmd_trans_huge(pud)) return RAM;
  }
  const pmdp = pmd_off(mm, addr);
  if (pmdp < 0) return NONE;
  const pmd = mm.pgd.load(pmdp);
  if (pmd === 0) return NONE;
  if (pmd_trans_huge(pmd)) return present(pmd_pfn(pmd) + Math.floor((addr % (512 * PAGE_SIZE)) / PAGE_SIZE));
  if (!pmd_is_table(pmd)) return nonpresent(pmd);
  const ptep = pte_offset_map(mm, addr);
  const pte = ptep < 0 ? 0 : ptep_get(mm, ptep);
  const k = pte_kind(pte);
  return k.kind === 'present' ? present(pte_pfn(pte)) : nonpresent(pte);
}
