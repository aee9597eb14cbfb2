/*
 * lib/test_hmm_pt.ts - the dmirror device page table on lib/gpt.
 *
 * Linux's lib/test_hmm.c keeps each mirror's device page table in an
 * xarray (dmirror->pt) indexed by virtual page number, whose entries are
 * struct page pointers tagged in their low bits: untagged for a read-only
 * mapping, DPT_XA_TAG_ATOMIC (1) for a device-exclusive page,
 * DPT_XA_TAG_WRITE (3) for a writable one (xa_tag_pointer()). Here the
 * table is a gpt (lib/gpt, this simulator's radix table and its model of
 * an xarray): 48 bits of virtual address, 9 bits per level, 4 KiB leaves,
 * and a 64-bit leaf entry that tags a page frame number instead of a
 * pointer:
 *
 *   63 (53)                              3     2       1    0
 *  +---------------------------------------+---------+---------+
 *  | pfn of the page holding the data      | PRESENT |   tag   |
 *  +---------------------------------------+---------+---------+
 *
 * PRESENT keeps a read-only entry (tag 0) of pfn 0 distinct from "none".
 * The xarray frees its nodes as they empty; this table frees empty
 * directories when the whole table empties (dmirror_pt_erase_range() down
 * to size 0, clear()), so a long-lived mirror keeps the directories of the
 * ranges it once mapped (at most one 4 KiB directory per 2 MiB touched).
 *
 * The hot paths (device faults, migrations, READ/WRITE) use the raw
 * entries: dmirror_pt.load()/store()/erase(). The Map-shaped methods
 * (get/has/set/delete/size/iteration, returning { page, tag } objects) are
 * for tools and tests that inspect a mirror.
 *
 * Locking: the caller holds dmirror.mutex (a private gpt: no atomics).
 */
import type { page } from '../include/linux/mm_types.js';
import { PAGE_SIZE } from '../include/linux/mm.js';
import { ENOMEM } from '../include/uapi/asm-generic/errno.js';
import { gpt } from './gpt/gpt.js';
import { gpt_format_define, gpt_format_register } from './gpt/formats.js';
import { pfn_to_page } from '../mm/page_alloc.js';
import { BUG } from '../include/asm-generic/bug.js';

/** DPT_ENTRY_PRESENT - bit 2 of a leaf entry: something is mapped. */
export const DPT_ENTRY_PRESENT = 4;
const DPT_TAG_MASK = 3;
const DPT_PFN_MUL = 8;
const DPT_ADDRESS_BITS = 48;
const DPT_LIMIT = 2 ** DPT_ADDRESS_BITS;
/* virtual pages per leaf directory (9 bits per level) */
const DPT_LEAF_PAGES = 512;

/* directories link with bit 0 and the slot from bit 12; leaves only at the last level */
export const dmirror_pt_format = gpt_format_define({
  name: 'dmirror_pt', entry_bits: 64, leaf_levels: [], pde_mask: 1, pde_value: 1,
  pde_shift: 12, pde_bits: 1, last_level: 3,
});
gpt_format_register(dmirror_pt_format);

/** One entry of a mirror's device page table: the page holding the data and its tag. */
export interface dpt_entry {
  page: page;
  tag: number;                    /* DPT_XA_TAG_READ, _ATOMIC or _WRITE */
}

/** dpt_mkentry() - the leaf entry for page frame @pfn with @tag (xa_tag_pointer). */
export function dpt_mkentry(pfn: number, tag: number): number {
  return pfn * DPT_PFN_MUL + DPT_ENTRY_PRESENT + (tag & DPT_TAG_MASK);
}

/** dpt_entry_pfn() - the page frame of a non-none entry (xa_untag_pointer). */
export function dpt_entry_pfn(e: number): number {
  return Math.floor(e / DPT_PFN_MUL);
}

/** dpt_entry_tag() - the tag of a non-none entry (xa_pointer_tag). */
export function dpt_entry_tag(e: number): number {
  return e & DPT_TAG_MASK;
}

/**
 * struct dmirror_pt - one mirror's device page table.
 * @size: entries present (what xa_for_each would count).
 */
export class dmirror_pt {
  private readonly t = new gpt({ address_bits: DPT_ADDRESS_BITS, level_bits: 9, page_shift: 12 },
    dmirror_pt_format, { initialSlots: 4 });
  size = 0;

  /** load() - the raw entry at virtual page @vpn, 0 for none (xa_load). */
  load(vpn: number): number {
    const ptr = this.t.lookup(vpn * PAGE_SIZE);
    return ptr < 0 ? 0 : this.t.load(ptr);
  }

  /**
   * store() - map virtual page @vpn to frame @pfn with @tag (xa_store).
   * Return: 0, or -ENOMEM when no directory could be added (the table is
   * at its pool limit) or @vpn lies beyond the 48-bit address space.
   */
  store(vpn: number, pfn: number, tag: number): number {
    const ptr = this.t.populate(vpn * PAGE_SIZE);
    if (ptr < 0) return -ENOMEM;
    if (this.t.set(ptr, dpt_mkentry(pfn, tag)) === 0) this.size++;
    return 0;
  }

  /** erase() - unmap virtual page @vpn (xa_erase). Return: the old raw entry. */
  erase(vpn: number): number {
    const ptr = this.t.lookup(vpn * PAGE_SIZE);
    if (ptr < 0) return 0;
    const old = this.t.set(ptr, 0);
    if (old !== 0) this.size--;
    return old;
  }

  /**
   * store_run() - store() of @n consecutive virtual pages from @vpn:
   * @entries[k] is the raw entry (dpt_mkentry()) for vpn + k, or 0 to
   * leave that page's entry as it is. The same entries as a store() per
   * page (Linux's xa_store() per page), with one directory lookup per leaf
   * directory (512 pages) instead of one per page.
   * Return: 0, or -ENOMEM when a directory could not be added (as store():
   * the pages under it are left as they were, the others are stored).
   */
  store_run(vpn: number, entries: Float64Array, n: number): number {
    let ret = 0;
    for (let k = 0; k < n;) {
      const m = Math.min(DPT_LEAF_PAGES - ((vpn + k) % DPT_LEAF_PAGES), n - k);
      let base = -1;                      /* entry pointer of vpn + k, once populated */
      for (let j = 0; j < m; j++) {
        const e = entries[k + j];
        if (e === 0) continue;
        if (base < 0) {
          const ptr = this.t.populate((vpn + k + j) * PAGE_SIZE);
          if (ptr < 0) { ret = -ENOMEM; break; }
          base = ptr - j;
        }
        if (this.t.set(base + j, e) === 0) this.size++;
      }
      k += m;
    }
    return ret;
  }

  /**
   * erase_run() - erase() of @n consecutive virtual pages from @vpn (xa_erase
   * per page), one directory lookup per leaf directory.
   * Return: the entries removed.
   */
  erase_run(vpn: number, n: number): number {
    if (this.size === 0) return 0;
    let removed = 0;
    for (let k = 0; k < n;) {
      const m = Math.min(DPT_LEAF_PAGES - ((vpn + k) % DPT_LEAF_PAGES), n - k);
      const ptr = this.t.lookup((vpn + k) * PAGE_SIZE);
      if (ptr >= 0) for (let j = 0; j < m; j++) if (this.t.set(ptr + j, 0) !== 0) removed++;
      k += m;
    }
    this.size -= removed;
    return removed;
  }

  /**
   * erase_range() - unmap virtual pages [first, end) (xa_for_each_range +
   * xa_erase), walking only the directories that exist.
   * Return: the entries removed.
   */
  erase_range(first: number, end: number): number {
    if (this.size === 0) return 0;
    const s = Math.max(0, first) * PAGE_SIZE, e = Math.min(end * PAGE_SIZE, DPT_LIMIT);
    if (!(s < e)) return 0;
    const n = this.t.clear_range(s, e);
    this.size -= n;
    if (this.size === 0) this.t.prune(0, DPT_LIMIT);
    return n;
  }

  /** clear() - unmap everything and free every directory but the root. */
  clear(): void {
    this.t.clear_range(0, DPT_LIMIT);
    this.t.prune(0, DPT_LIMIT);
    this.size = 0;
  }

  /**
   * for_each() - call @fn(vpn, raw entry) for each entry of [first, end)
   * in address order (xa_for_each_range); stops when @fn returns non-zero.
   * Return: 0 or what @fn returned.
   */
  for_each(first: number, end: number, fn: (vpn: number, e: number) => number): number {
    const s = Math.max(0, first) * PAGE_SIZE, e = Math.min(end * PAGE_SIZE, DPT_LIMIT);
    if (this.size === 0 || !(s < e)) return 0;
    return this.t.walk(s, e, { leaf: (_ptr, addr, _level, v) => fn(addr / PAGE_SIZE, v) });
  }

  /** dir_count() - live directories, the root included (tests: what the table costs). */
  dir_count(): number { return this.t.stats().slots_used; }

  /* ---- Map-shaped view, for tools and tests ---- */

  /** get() - the entry at @vpn as { page, tag }, or undefined. */
  get(vpn: number): dpt_entry | undefined {
    const e = this.load(vpn);
    return e === 0 ? undefined : { page: pfn_to_page(dpt_entry_pfn(e)), tag: dpt_entry_tag(e) };
  }

  /** has() - is virtual page @vpn mapped? */
  has(vpn: number): boolean { return this.load(vpn) !== 0; }

  /** set() - store { page, tag } at @vpn (tests that plant entries). */
  set(vpn: number, v: dpt_entry): this {
    if (this.store(vpn, v.page.pfn, v.tag) !== 0) BUG(`dmirror_pt.set(${vpn}) failed`);
    return this;
  }

  /** delete() - unmap @vpn. Return: whether it was mapped. */
  delete(vpn: number): boolean { return this.erase(vpn) !== 0; }

  /** entries() - every [vpn, { page, tag }] in address order. */
  entries(): IterableIterator<[number, dpt_entry]> {
    const out: [number, dpt_entry][] = [];
    this.for_each(0, DPT_LIMIT / PAGE_SIZE, (vpn, e) => {
      out.push([vpn, { page: pfn_to_page(dpt_entry_pfn(e)), tag: dpt_entry_tag(e) }]);
      return 0;
    });
    return out[Symbol.iterator]();
  }

  /** keys() - every mapped virtual page number in address order. */
  keys(): IterableIterator<number> {
    const out: number[] = [];
    this.for_each(0, DPT_LIMIT / PAGE_SIZE, (vpn) => { out.push(vpn); return 0; });
    return out[Symbol.iterator]();
  }

  [Symbol.iterator](): IterableIterator<[number, dpt_entry]> { return this.entries(); }
}
