/*
 * include/linux/pgtable_types.ts - bit numbers of the x86-64 page-table entry.
 *
 * Models arch/x86/include/asm/pgtable_types.h: the hardware and software
 * bits of a PGD/PUD/PMD/PTE entry. lib/gpt stores these entries for the CPU
 * page table (x86_64_pgtable_format in lib/gpt/formats.ts); the helpers that
 * interpret them (pte_present, pfn_pte, ...) live in include/linux/pgtable.ts.
 *
 * An entry is a JS number, a non-negative integer below 2^53:
 *
 *    63      53 52 51                      12 11 10  9  8  7  6  5  4  3  2  1  0
 *   +----------+--+--------------------------+--+--+--+--+--+--+--+--+--+--+--+--+
 *   |  absent  |0 |   pfn (40 bits)          |SD|UW|SP| G|PS| D| A|CD|WT| U|RW| P|
 *   +----------+--+--------------------------+--+--+--+--+--+--+--+--+--+--+--+--+
 *
 * What differs from Linux: bits 53..63 do not exist in this model (an entry
 * is a double, exact only below 2^53). Linux keeps _PAGE_BIT_SOFTW5 (57,
 * saved dirty), _PAGE_BIT_SOFTW4 (58, devmap), the protection keys (59..62)
 * and _PAGE_BIT_NX (63) there; none of them is modelled. Bit 52 is kept
 * zero, so the pfn field is the same 40 bits as Linux's 52-bit physical
 * address space (__PHYSICAL_MASK_SHIFT). All flag bits sit in the low 32
 * bits, which is why flag tests may use the 32-bit operators (e & _PAGE_RW).
 *
 * A non-present, non-zero entry is a swap entry (include/linux/swapops.ts);
 * its bits belong to mm/, not to this table.
 */

export const _PAGE_BIT_PRESENT = 0;     /* is present */
export const _PAGE_BIT_RW = 1;          /* writeable */
export const _PAGE_BIT_USER = 2;        /* userspace addressable */
export const _PAGE_BIT_PWT = 3;         /* page write through */
export const _PAGE_BIT_PCD = 4;         /* page cache disabled */
export const _PAGE_BIT_ACCESSED = 5;    /* set by the MMU on any access */
export const _PAGE_BIT_DIRTY = 6;       /* set by the MMU on a write (leaf only) */
export const _PAGE_BIT_PSE = 7;         /* 2 MiB / 1 GiB leaf at PMD / PUD level */
export const _PAGE_BIT_PAT = 7;         /* at PTE level, bit 7 is PAT */
export const _PAGE_BIT_GLOBAL = 8;      /* global TLB entry */
export const _PAGE_BIT_SOFTW1 = 9;      /* available for software */
export const _PAGE_BIT_SOFTW2 = 10;     /* " */
export const _PAGE_BIT_SOFTW3 = 11;     /* " */
export const _PAGE_BIT_PAT_LARGE = 12;  /* PAT bit of a huge leaf (pfn starts higher) */
export const _PAGE_BIT_SPECIAL = _PAGE_BIT_SOFTW1;    /* no struct page behind it */
export const _PAGE_BIT_UFFD_WP = _PAGE_BIT_SOFTW2;    /* userfaultfd write-protected */
export const _PAGE_BIT_SOFT_DIRTY = _PAGE_BIT_SOFTW3; /* written since clear_refs */

export const _PAGE_PRESENT = 1 << _PAGE_BIT_PRESENT;
export const _PAGE_RW = 1 << _PAGE_BIT_RW;
export const _PAGE_USER = 1 << _PAGE_BIT_USER;
export const _PAGE_PWT = 1 << _PAGE_BIT_PWT;
export const _PAGE_PCD = 1 << _PAGE_BIT_PCD;
export const _PAGE_ACCESSED = 1 << _PAGE_BIT_ACCESSED;
export const _PAGE_DIRTY = 1 << _PAGE_BIT_DIRTY;
export const _PAGE_PSE = 1 << _PAGE_BIT_PSE;
export const _PAGE_PAT = 1 << _PAGE_BIT_PAT;
export const _PAGE_GLOBAL = 1 << _PAGE_BIT_GLOBAL;
export const _PAGE_SOFTW1 = 1 << _PAGE_BIT_SOFTW1;
export const _PAGE_SOFTW2 = 1 << _PAGE_BIT_SOFTW2;
export const _PAGE_SOFTW3 = 1 << _PAGE_BIT_SOFTW3;
export const _PAGE_PAT_LARGE = 1 << _PAGE_BIT_PAT_LARGE;
export const _PAGE_SPECIAL = 1 << _PAGE_BIT_SPECIAL;
export const _PAGE_UFFD_WP = 1 << _PAGE_BIT_UFFD_WP;
export const _PAGE_SOFT_DIRTY = 1 << _PAGE_BIT_SOFT_DIRTY;

/* the pfn field: bits 12..51 */
export const PTE_PFN_SHIFT = 12;
export const __PHYSICAL_MASK_SHIFT = 52;

/*
 * A directory entry (PGD, PUD or PMD pointing at the next level) as this
 * model encodes it: the child directory's slot number where Linux has the
 * pfn of the page-table page, with present, rw, user and accessed set and
 * _PAGE_PSE clear. (Linux's _PAGE_TABLE also sets _PAGE_DIRTY; a directory
 * entry's dirty bit means nothing to the MMU, and this model leaves it out.)
 */
export const _PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED;
