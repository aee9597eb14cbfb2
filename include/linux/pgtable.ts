/*
 * include/linux/pgtable.ts - CPU page-table entry helpers (pte_t, pmd_t).
 *
 * Models include/linux/pgtable.h and arch/x86/include/asm/pgtable.h for the
 * x86-64 entry format that lib/gpt stores (include/linux/pgtable_types.ts
 * has the bit numbers). An entry is a JS number below 2^53:
 *
 *   present entry (pte_present):
 *     52                       12 11   9 8 7 6 5 4 3 2 1 0
 *    +---------------------------+------+-+-+-+-+-+-+-+-+-+
 *    |            pfn            | soft |G|S|D|A|C|T|U|W|P|
 *    +---------------------------+------+-+-+-+-+-+-+-+-+-+
 *     soft: software bits (_PAGE_SPECIAL, _PAGE_SOFT_DIRTY ...)
 *     S: _PAGE_PSE, a huge leaf at PMD or PUD level
 *     G: _PAGE_GLOBAL, reused as _PAGE_PROTNONE when P is clear
 *
 *   non-present, non-zero entry: a swap entry (include/linux/swapops.ts)
 *
 * Flag bits all sit below bit 12, so flag updates never touch the pfn and
 * are done with 32-bit operators on the low word: (pte & mask) is exact
 * for any integer below 2^53 because ToInt32 keeps the low 32 bits.
 */
import {
  _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PSE,
  _PAGE_GLOBAL, _PAGE_SPECIAL, _PAGE_SOFT_DIRTY,
} from './pgtable_types.js';
import { PAGE_SIZE, PMD_SIZE, PUD_SIZE, PGDIR_SIZE } from './mm.js';

export * from './pgtable_types.js';

/* A PROT_NONE mapping keeps the entry "present" to the kernel, not to the MMU. */
export const _PAGE_PROTNONE = _PAGE_GLOBAL;
/* bits pte_modify() keeps: the pfn and the state the hardware or kernel tracks */
export const _PAGE_CHG_MASK = _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SPECIAL | _PAGE_SOFT_DIRTY;
const FLAG_MASK = PAGE_SIZE - 1;

/* page-table levels of the x86-64 format, as gpt levels */
export const PGD_LEVEL = 0;
export const PUD_LEVEL = 1;
export const PMD_LEVEL = 2;
export const PTE_LEVEL = 3;

export type pte_t = number;
export type pmd_t = number;

export function pte_none(pte: pte_t): boolean { return pte === 0; }
export function pte_present(pte: pte_t): boolean { return (pte & (_PAGE_PRESENT | _PAGE_PROTNONE)) !== 0; }
export function pte_protnone(pte: pte_t): boolean {
  return (pte & (_PAGE_PRESENT | _PAGE_PROTNONE)) === _PAGE_PROTNONE;
}
/** pte_hw_valid() - the MMU itself can use the entry (present and not PROT_NONE). */
export function pte_hw_valid(pte: pte_t): boolean { return (pte & _PAGE_PRESENT) !== 0; }
export function pte_write(pte: pte_t): boolean { return (pte & _PAGE_RW) !== 0; }
export function pte_dirty(pte: pte_t): boolean { return (pte & _PAGE_DIRTY) !== 0; }
export function pte_young(pte: pte_t): boolean { return (pte & _PAGE_ACCESSED) !== 0; }
export function pte_special(pte: pte_t): boolean { return (pte & _PAGE_SPECIAL) !== 0; }
export function pte_user(pte: pte_t): boolean { return (pte & _PAGE_USER) !== 0; }
export function pte_soft_dirty(pte: pte_t): boolean { return (pte & _PAGE_SOFT_DIRTY) !== 0; }
export function pte_flags(pte: pte_t): number { return pte & FLAG_MASK; }
export function pte_pfn(pte: pte_t): number { return (pte - (pte & FLAG_MASK)) / PAGE_SIZE; }

/** pte_set_flags() - return pte with the low flag bits in `bits` set. */
export function pte_set_flags(pte: pte_t, bits: number): pte_t { return pte + (bits & ~pte); }
/** pte_clear_flags() - return pte with the low flag bits in `bits` cleared. */
export function pte_clear_flags(pte: pte_t, bits: number): pte_t { return pte - (pte & bits); }

/** pfn_pte() - build a present entry for pfn with protection bits prot. */
export function pfn_pte(pfn: number, prot: number): pte_t { return pfn * PAGE_SIZE + (prot & FLAG_MASK); }
export function pte_mkwrite(pte: pte_t): pte_t { return pte_set_flags(pte, _PAGE_RW); }
export function pte_wrprotect(pte: pte_t): pte_t { return pte_clear_flags(pte, _PAGE_RW); }
export function pte_mkdirty(pte: pte_t): pte_t { return pte_set_flags(pte, _PAGE_DIRTY | _PAGE_SOFT_DIRTY); }
export function pte_mkclean(pte: pte_t): pte_t { return pte_clear_flags(pte, _PAGE_DIRTY); }
export function pte_mkyoung(pte: pte_t): pte_t { return pte_set_flags(pte, _PAGE_ACCESSED); }
export function pte_mkold(pte: pte_t): pte_t { return pte_clear_flags(pte, _PAGE_ACCESSED); }
export function pte_mkspecial(pte: pte_t): pte_t { return pte_set_flags(pte, _PAGE_SPECIAL); }
export function pte_mkhuge(pte: pte_t): pte_t { return pte_set_flags(pte, _PAGE_PSE); }

/** pte_modify() - change the protection of a present entry, keeping pfn and tracked state. */
export function pte_modify(pte: pte_t, newprot: number): pte_t {
  const keep = pte & _PAGE_CHG_MASK;
  return pfn_pte(pte_pfn(pte), (newprot & ~_PAGE_CHG_MASK) | keep);
}

/* PMD-level spellings: a huge PMD is a present leaf with _PAGE_PSE */
export function pmd_none(pmd: pmd_t): boolean { return pmd === 0; }
export function pmd_present(pmd: pmd_t): boolean { return (pmd & (_PAGE_PRESENT | _PAGE_PROTNONE)) !== 0; }
export function pmd_trans_huge(pmd: pmd_t): boolean {
  return (pmd & (_PAGE_PRESENT | _PAGE_PSE)) === (_PAGE_PRESENT | _PAGE_PSE) ||
    (pmd & (_PAGE_PROTNONE | _PAGE_PSE)) === (_PAGE_PROTNONE | _PAGE_PSE);
}
/** pmd_is_table() - the PMD entry points to a PTE page (present, not huge). */
export function pmd_is_table(pmd: pmd_t): boolean {
  return (pmd & _PAGE_PRESENT) !== 0 && (pmd & _PAGE_PSE) === 0;
}
export const pmd_write = pte_write;
export const pmd_dirty = pte_dirty;
export const pmd_young = pte_young;
export const pmd_pfn = pte_pfn;
export const pmd_mkwrite = pte_mkwrite;
export const pmd_wrprotect = pte_wrprotect;
export const pmd_mkdirty = pte_mkdirty;
export const pmd_mkclean = pte_mkclean;
export const pmd_mkyoung = pte_mkyoung;
export const pmd_mkold = pte_mkold;
export const pmd_protnone = pte_protnone;

/* a huge leaf keeps _PAGE_PSE through a protection change (_HPAGE_CHG_MASK) */
export const _HPAGE_CHG_MASK = _PAGE_CHG_MASK | _PAGE_PSE;

/** pmd_mkhuge() - mark a PMD (or PUD) entry as a huge leaf. */
export function pmd_mkhuge(pmd: pmd_t): pmd_t { return pte_set_flags(pmd, _PAGE_PSE); }
/** pfn_pmd() - a huge leaf for the 2 MiB (or 1 GiB) frame starting at pfn. */
export function pfn_pmd(pfn: number, prot: number): pmd_t { return pmd_mkhuge(pfn_pte(pfn, prot)); }
/** pmd_modify() - pte_modify() for a huge leaf: the leaf stays huge. */
export function pmd_modify(pmd: pmd_t, newprot: number): pmd_t {
  const keep = pmd & _HPAGE_CHG_MASK;
  return pfn_pte(pte_pfn(pmd), (newprot & ~_HPAGE_CHG_MASK) | keep);
}

/* PUD-level leaves (1 GiB hugetlb pages) use the same bits */
export type pud_t = number;
export const pud_none = pmd_none;
export const pud_trans_huge = pmd_trans_huge;
export const pud_pfn = pte_pfn;
export const pud_write = pte_write;

/** pmd_leaf() - a present huge leaf at PMD level (maps 2 MiB itself). */
export function pmd_leaf(pmd: pmd_t): boolean { return (pmd & (_PAGE_PRESENT | _PAGE_PSE)) === (_PAGE_PRESENT | _PAGE_PSE); }
/** pud_leaf() - a present huge leaf at PUD level (a 1 GiB hugetlb page). */
export const pud_leaf = pmd_leaf;
export const pud_present = pmd_present;

/*
 * pgd_addr_end() .. pmd_addr_end() - the end of the entry covering @addr at
 * that level, capped at @end: the step of every nested page-table loop
 *
 *   do { next = pmd_addr_end(addr, end); ... } while (addr = next, addr !== end)
 *
 * The P4D level is folded (4-level x86-64): p4d_addr_end() returns @end.
 * Addresses are below 2^48, so the division is exact in a double.
 */
function level_addr_end(addr: number, end: number, size: number): number {
  const boundary = (Math.floor(addr / size) + 1) * size;
  return boundary < end ? boundary : end;
}
export function pgd_addr_end(addr: number, end: number): number { return level_addr_end(addr, end, PGDIR_SIZE); }
export function p4d_addr_end(_addr: number, end: number): number { return end; }
export function pud_addr_end(addr: number, end: number): number { return level_addr_end(addr, end, PUD_SIZE); }
export function pmd_addr_end(addr: number, end: number): number { return level_addr_end(addr, end, PMD_SIZE); }

/** The base protection bits every user mapping carries. */
export const _PAGE_TABLE_USER = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
