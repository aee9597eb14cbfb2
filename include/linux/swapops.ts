/*
 * include/linux/swapops.ts - swap entries and the special non-swap entries.
 *
 * Models include/linux/swapops.h and include/linux/swap.h. A swp_entry_t is
 * a number: type in bits 41..45, offset in bits 0..40 (the value field of
 * Linux's swp_entry_t, laid out to fit a JS number).
 *
 * The last swap types are not swap devices but markers the fault path
 * dispatches on (do_swap_page). Counting down from 31:
 *
 *   31  SWP_PTE_MARKER          (uffd-wp and poison markers; reserved)
 *   30  SWP_DEVICE_EXCLUSIVE    offset = pfn of the page the device holds exclusively
 *   29  SWP_DEVICE_READ         offset = pfn of a device-private page, read-only
 *   28  SWP_DEVICE_WRITE        offset = pfn of a device-private page, writable
 *   27  SWP_MIGRATION_WRITE     offset = pfn of the page under migration
 *   26  SWP_MIGRATION_READ_EXCLUSIVE
 *   25  SWP_MIGRATION_READ
 *   24  SWP_HWPOISON            offset = pfn of the poisoned page
 *   23  SWP_HMM                 HMM v8 (2015, patch 16): offset 0 device, 1 locked, 2 poisonous
 *   0..22 real swap devices (MAX_SWAPFILES = 23)
 *
 * In a page table a swap entry is stored as a non-present PTE:
 *
 *     52                         12 11  9 8 7 6 5       1 0
 *    +-----------------------------+-+---+-+-+-+---------+-+
 *    |           offset            |S|   |0|E|1|  type   |0|
 *    +-----------------------------+-+---+-+-+-+---------+-+
 *     bit 0 = 0 (not present), bit 8 = 0 (not PROT_NONE),
 *     bit 6 = 1 so that no swap entry is the empty entry,
 *     E = _PAGE_SWP_EXCLUSIVE (anon page exclusive to this mm),
 *     S = _PAGE_SWP_SOFT_DIRTY.
 */
import type { page } from './mm_types.js';
import { __pfn_to_section } from './mm_types.js';
import { pfn_to_page_new } from '../asm-generic/memory_model.js';
import { PAGE_SIZE } from './mm.js';
import { pte_none, pte_present, pmd_present, pmd_trans_huge, type pte_t, type pmd_t } from './pgtable.js';

export type swp_entry_t = number;

export const MAX_SWAPFILES_SHIFT = 5;
const SWP_TYPE_SHIFT = 41;
const SWP_TYPE_BASE = 2 ** SWP_TYPE_SHIFT;
export const SWP_OFFSET_MASK = SWP_TYPE_BASE - 1;

export const SWP_DEVICE_NUM = 3;
export const SWP_MIGRATION_NUM = 3;
export const SWP_HWPOISON_NUM = 1;
export const SWP_PTE_MARKER_NUM = 1;
export const SWP_HMM_NUM = 1;
export const MAX_SWAPFILES = (1 << MAX_SWAPFILES_SHIFT) - SWP_DEVICE_NUM - SWP_MIGRATION_NUM -
  SWP_HWPOISON_NUM - SWP_PTE_MARKER_NUM - SWP_HMM_NUM;
export const SWP_HMM = MAX_SWAPFILES;
export const SWP_HWPOISON = SWP_HMM + SWP_HMM_NUM;
export const SWP_MIGRATION_READ = SWP_HWPOISON + SWP_HWPOISON_NUM;
export const SWP_MIGRATION_READ_EXCLUSIVE = SWP_MIGRATION_READ + 1;
export const SWP_MIGRATION_WRITE = SWP_MIGRATION_READ + 2;
export const SWP_DEVICE_WRITE = SWP_MIGRATION_READ + SWP_MIGRATION_NUM;
export const SWP_DEVICE_READ = SWP_DEVICE_WRITE + 1;
export const SWP_DEVICE_EXCLUSIVE = SWP_DEVICE_WRITE + 2;
export const SWP_PTE_MARKER = SWP_DEVICE_WRITE + SWP_DEVICE_NUM;

/* software bits of a swap PTE */
export const _PAGE_SWP_MARK = 1 << 6;
export const _PAGE_SWP_EXCLUSIVE = 1 << 7;
export const _PAGE_SWP_SOFT_DIRTY = 1 << 11;
const SWP_PTE_TYPE_SHIFT = 1;

/* HMM v8 SWP_HMM offsets (patch 16) */
export const HMM_ENTRY_DEVICE = 0;
export const HMM_ENTRY_LOCKED = 1;
export const HMM_ENTRY_POISONOUS = 2;

export function swp_entry(type: number, offset: number): swp_entry_t { return type * SWP_TYPE_BASE + offset; }
export function swp_type(e: swp_entry_t): number { return Math.floor(e / SWP_TYPE_BASE); }
/* e - type * 2^41 is exact below 2^53, as e % 2^41 is, without the double modulo (a call into the runtime) */
export function swp_offset(e: swp_entry_t): number { return e - swp_type(e) * SWP_TYPE_BASE; }

/** is_swap_pte() - a non-empty entry that is not present: a swap or special entry. */
export function is_swap_pte(pte: pte_t): boolean { return !pte_none(pte) && !pte_present(pte); }

/** pte_to_swp_entry() - decode a swap PTE (caller checked is_swap_pte). */
export function pte_to_swp_entry(pte: pte_t): swp_entry_t {
  const type = (pte >>> SWP_PTE_TYPE_SHIFT) & ((1 << MAX_SWAPFILES_SHIFT) - 1);
  return swp_entry(type, (pte - (pte & (PAGE_SIZE - 1))) / PAGE_SIZE);
}

/** swp_entry_to_pte() - encode a swap entry as a non-present PTE. */
export function swp_entry_to_pte(e: swp_entry_t): pte_t {
  return swp_offset(e) * PAGE_SIZE + (swp_type(e) << SWP_PTE_TYPE_SHIFT) + _PAGE_SWP_MARK;
}

export function pte_swp_exclusive(pte: pte_t): boolean { return (pte & _PAGE_SWP_EXCLUSIVE) !== 0; }
export function pte_swp_mkexclusive(pte: pte_t): pte_t { return pte + (_PAGE_SWP_EXCLUSIVE & ~pte); }
export function pte_swp_clear_exclusive(pte: pte_t): pte_t { return pte - (pte & _PAGE_SWP_EXCLUSIVE); }

/** non_swap_entry() - true for the special types that are not a swap device. */
export function non_swap_entry(e: swp_entry_t): boolean { return swp_type(e) >= MAX_SWAPFILES; }

export function is_migration_entry(e: swp_entry_t): boolean {
  const t = swp_type(e);
  return t === SWP_MIGRATION_READ || t === SWP_MIGRATION_READ_EXCLUSIVE || t === SWP_MIGRATION_WRITE;
}
export function is_writable_migration_entry(e: swp_entry_t): boolean { return swp_type(e) === SWP_MIGRATION_WRITE; }
/* a plain (shared) readable migration entry: neither writable nor exclusive */
export function is_readable_migration_entry(e: swp_entry_t): boolean { return swp_type(e) === SWP_MIGRATION_READ; }
export function is_readable_exclusive_migration_entry(e: swp_entry_t): boolean {
  return swp_type(e) === SWP_MIGRATION_READ_EXCLUSIVE;
}
export function make_readable_migration_entry(pfn: number): swp_entry_t { return swp_entry(SWP_MIGRATION_READ, pfn); }
export function make_readable_exclusive_migration_entry(pfn: number): swp_entry_t {
  return swp_entry(SWP_MIGRATION_READ_EXCLUSIVE, pfn);
}
export function make_writable_migration_entry(pfn: number): swp_entry_t { return swp_entry(SWP_MIGRATION_WRITE, pfn); }

export function is_device_private_entry(e: swp_entry_t): boolean {
  const t = swp_type(e);
  return t === SWP_DEVICE_READ || t === SWP_DEVICE_WRITE;
}
export function is_writable_device_private_entry(e: swp_entry_t): boolean { return swp_type(e) === SWP_DEVICE_WRITE; }
export function make_readable_device_private_entry(pfn: number): swp_entry_t { return swp_entry(SWP_DEVICE_READ, pfn); }
export function make_writable_device_private_entry(pfn: number): swp_entry_t { return swp_entry(SWP_DEVICE_WRITE, pfn); }

export function is_device_exclusive_entry(e: swp_entry_t): boolean { return swp_type(e) === SWP_DEVICE_EXCLUSIVE; }
export function make_device_exclusive_entry(pfn: number): swp_entry_t { return swp_entry(SWP_DEVICE_EXCLUSIVE, pfn); }

export function is_hwpoison_entry(e: swp_entry_t): boolean { return swp_type(e) === SWP_HWPOISON; }
export function make_hwpoison_entry(pfn: number): swp_entry_t { return swp_entry(SWP_HWPOISON, pfn); }

export function is_pte_marker_entry(e: swp_entry_t): boolean { return swp_type(e) === SWP_PTE_MARKER; }

/* HMM v8 (patch 16): the CPU PTE holds only the type and a small state offset */
export function make_hmm_entry(): swp_entry_t { return swp_entry(SWP_HMM, HMM_ENTRY_DEVICE); }
export function make_hmm_entry_locked(): swp_entry_t { return swp_entry(SWP_HMM, HMM_ENTRY_LOCKED); }
export function make_hmm_entry_poisonous(): swp_entry_t { return swp_entry(SWP_HMM, HMM_ENTRY_POISONOUS); }
export function is_hmm_entry(e: swp_entry_t): boolean { return swp_type(e) === SWP_HMM; }
export function is_hmm_entry_locked(e: swp_entry_t): boolean { return e === make_hmm_entry_locked(); }
export function is_hmm_entry_poisonous(e: swp_entry_t): boolean { return e === make_hmm_entry_poisonous(); }

/** is_pfn_swap_entry() - the offset of this entry is a pfn (migration, device, hwpoison, exclusive). */
export function is_pfn_swap_entry(e: swp_entry_t): boolean {
  return is_migration_entry(e) || is_device_private_entry(e) || is_device_exclusive_entry(e) || is_hwpoison_entry(e);
}

/** swp_offset_pfn() - the pfn carried by a pfn swap entry. */
export function swp_offset_pfn(e: swp_entry_t): number { return swp_offset(e); }

/**
 * pfn_swap_entry_to_page() - the page a pfn swap entry (migration,
 * device-private, device-exclusive) points to. Its frame has struct pages
 * (the entry was made from its page), so the handle comes from the
 * section without the handle cache, as migrate_pfn_to_page()'s
 * (include/linux/migrate.ts explains why); a pfn with no section yet
 * goes through pfn_to_page(), which BUGs on one that is no memory.
 */
export function pfn_swap_entry_to_page(e: swp_entry_t): page {
  return pfn_to_page_new(swp_offset_pfn(e));
}

/**
 * The kinds of CPU PTE, as a discriminated union for the fault path and the
 * walkers. pte_kind() classifies a raw entry; callers switch on `kind` and
 * end with an exhaustive `never` check.
 */
export type pte_kind =
  | { kind: 'none' }
  | { kind: 'present' }
  | { kind: 'swap'; entry: swp_entry_t }
  | { kind: 'migration'; entry: swp_entry_t }
  | { kind: 'device_private'; entry: swp_entry_t }
  | { kind: 'device_exclusive'; entry: swp_entry_t }
  | { kind: 'hwpoison'; entry: swp_entry_t }
  | { kind: 'hmm'; entry: swp_entry_t }
  | { kind: 'marker'; entry: swp_entry_t };

/** pte_kind() - classify an entry. Allocates; the hot paths test bits directly. */
export function pte_kind(pte: pte_t): pte_kind {
  if (pte_none(pte)) return { kind: 'none' };
  if (pte_present(pte)) return { kind: 'present' };
  const entry = pte_to_swp_entry(pte);
  if (!non_swap_entry(entry)) return { kind: 'swap', entry };
  if (is_migration_entry(entry)) return { kind: 'migration', entry };
  if (is_device_private_entry(entry)) return { kind: 'device_private', entry };
  if (is_device_exclusive_entry(entry)) return { kind: 'device_exclusive', entry };
  if (is_hwpoison_entry(entry)) return { kind: 'hwpoison', entry };
  if (is_hmm_entry(entry)) return { kind: 'hmm', entry };
  return { kind: 'marker', entry };
}

/*
 * PMD-level swap entries (THP migration and device-private THPs).
 *
 * A non-present PMD that is not empty is a leaf holding a swap entry for
 * the whole 2 MiB, with the pfn of the folio's head page in the offset.
 * x86 encodes it exactly like a swap PTE (the layout at the top of this
 * file), so pmd_to_swp_entry()/swp_entry_to_pmd() are the PTE codecs at
 * PMD level. Bit 7, _PAGE_PSE in a present PMD, is _PAGE_SWP_EXCLUSIVE
 * here and never set at PMD level: exclusivity of a PMD-mapped anonymous
 * folio lives in PageAnonExclusive of its head page. lib/gpt never takes
 * such an entry for a directory link (links are present), so it is a
 * leaf: lookups below it return GPT_NO_DIR.
 *
 * Only two kinds occur at PMD level: SWP_MIGRATION_* while the folio is
 * being migrated as a whole, and SWP_DEVICE_WRITE/READ for a PMD-sized
 * device-private folio. Swap slots, hwpoison and markers stay PTE-level.
 */

/** is_swap_pmd() - a non-empty, non-present PMD: a PMD-level swap entry. */
export function is_swap_pmd(pmd: pmd_t): boolean { return pmd !== 0 && !pmd_present(pmd); }

/** pmd_to_swp_entry() - decode a swap PMD (caller checked is_swap_pmd). */
export function pmd_to_swp_entry(pmd: pmd_t): swp_entry_t { return pte_to_swp_entry(pmd); }

/** swp_entry_to_pmd() - encode a swap entry as a non-present PMD leaf. */
export function swp_entry_to_pmd(e: swp_entry_t): pmd_t { return swp_entry_to_pte(e); }

/** is_pmd_migration_entry() - the PMD is a migration entry for a whole THP. */
export function is_pmd_migration_entry(pmd: pmd_t): boolean {
  return is_swap_pmd(pmd) && is_migration_entry(pmd_to_swp_entry(pmd));
}

/** is_pmd_device_private_entry() - the PMD maps a PMD-sized device-private folio. */
export function is_pmd_device_private_entry(pmd: pmd_t): boolean {
  return is_swap_pmd(pmd) && is_device_private_entry(pmd_to_swp_entry(pmd));
}

/** is_pmd_non_present_folio_entry() - a PMD swap entry that stands for a folio (migration or device-private). */
export function is_pmd_non_present_folio_entry(pmd: pmd_t): boolean {
  return is_pmd_migration_entry(pmd) || is_pmd_device_private_entry(pmd);
}

/** pmd_is_huge() - a PMD leaf of any kind: a present huge PMD or a folio's PMD swap entry. */
export function pmd_is_huge(pmd: pmd_t): boolean {
  return pmd_trans_huge(pmd) || is_pmd_non_present_folio_entry(pmd);
}

export function pmd_swp_soft_dirty(pmd: pmd_t): boolean { return (pmd & _PAGE_SWP_SOFT_DIRTY) !== 0; }
export function pmd_swp_mksoft_dirty(pmd: pmd_t): pmd_t { return pmd + (_PAGE_SWP_SOFT_DIRTY & ~pmd); }
