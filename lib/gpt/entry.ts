/*
 * lib/gpt/entry.ts - the table core: geometry, entries, links, references, locks.
 *
 * Models the per-table and per-directory primitives of the 2014 gpt
 * (lib/gpt_generic.h: the entry accessors its GPT_DEFINE template stamped
 * out per entry width) and of hmm_pt in HMM v8 (patch 06/23: hmm_pt_init,
 * the directory refcount in page->_mapcount, the split directory lock,
 * the atomic dirty-bit helpers). lib/gpt/gpt.ts builds lookup, populate,
 * prune and the walker on top; the rules are in include/linux/gpt.ts.
 *
 * Two modes, chosen at creation:
 *  - private (default): one thread owns the table; entries are read and
 *    written with plain typed-array accesses (this is mm/'s CPU table,
 *    guarded by the simulated mmap_lock and PTE locks). The hot path is a
 *    few typed-array reads, no allocation, no closure.
 *  - smp (opts.smp, and every table attached from a worker): entries are
 *    read and written with Atomics; 64-bit entries as one BigUint64 atomic,
 *    so no reader ever sees half an entry. set() asserts the directory lock.
 *
 * What differs: one engine for both entry widths (a runtime flag instead of
 * the 2014 macro template); a directory link stores a pool slot number where
 * the kernel stores a pfn; set() refuses to create or overwrite links, so a
 * directory can only appear through populate and vanish through prune.
 */
import { GPT_NO_DIR, type gpt_format, type gpt_geometry, type gpt_opts } from '../../include/linux/gpt.js';
import { gpt_layout_init, gpt_level_end, type gpt_layout } from './geometry.js';
import { gpt_pool } from './storage.js';
import { gpt_spin_lock, gpt_spin_trylock, gpt_spin_unlock, gpt_thread_tag } from './lock.js';
import {
  HDR_ADDRESS_BITS, HDR_ENTRY_BITS, HDR_EPOCH, HDR_FAULTER_SERIAL, HDR_LEVEL_BITS,
  HDR_LEVEL_COUNT, HDR_MAX_SLOTS, HDR_PAGE_SHIFT, HDR_ROOT, HDR_UPDATER_SERIAL,
  M_BASE_F64, M_GEN, M_LEVEL, M_LOCK, M_OWNER, M_PARENT, M_PINDEX, M_REF, M_SERIAL,
  META_WORDS,
} from './shm.js';
import { BUG } from '../../include/asm-generic/bug.js';

const TWO32 = 4294967296;
const MAX53 = 9007199254740991;

/* BUG() is include/asm-generic/bug.ts's: a simulator bug, never an expected failure */

export class gpt_base extends gpt_pool {
  readonly format: gpt_format;
  readonly geometry: gpt_geometry;
  readonly layout: gpt_layout;
  /** number of levels; llevel = levels - 1 is the leaf level */
  readonly levels: number;
  readonly llevel: number;
  /** slot of the root directory (the pgd) */
  readonly root: number;
  /** entries per directory slot (2^level_bits) */
  readonly entries_per_dir: number;
  /** entries are accessed with Atomics (shared with worker threads) */
  readonly smp: boolean;
  /* hot-path copies of the layout and format (internal) */
  readonly lbits: number;
  readonly mask: number;
  readonly limit: number;
  readonly span: Float64Array;
  readonly wide: boolean;
  private readonly pde_mask: number;
  private readonly pde_value: number;
  private readonly pde_shift: number;
  private readonly pde_div: number;
  private readonly pde_hi_mul: number;
  private readonly leaf_bits: number;

  /**
   * gpt_base() - create a table, or attach to one another thread created
   * (the constructor of struct gpt; see gpt()).
   * @geom: the geometry (ignored fields must match the shared header)
   * @fmt: the entry format
   * @opts: struct gpt_opts; opts.shared attaches (worker side)
   * Context: allocates the pool and the root directory.
   */
  constructor(geom: gpt_geometry, fmt: gpt_format, opts: gpt_opts = {}) {
    const L = gpt_layout_init(geom);
    if (fmt.entry_bits !== 32 && fmt.entry_bits !== 64) BUG(`entry_bits ${fmt.entry_bits}`);
    /* default max_slots: 65536, or fewer so that pointers stay below 2^31
       and the reserved entry buffer below 1 GiB */
    const slot_words = L.entries * (fmt.entry_bits >> 5);
    super(slot_words, { ...opts, maxSlots: opts.maxSlots ?? Math.min(65536, 2 ** 31 / L.entries, 2 ** 28 / slot_words) });
    this.format = fmt;
    this.geometry = { address_bits: geom.address_bits, level_bits: geom.level_bits, page_shift: geom.page_shift };
    this.layout = L;
    this.levels = L.levels;
    this.llevel = L.llevel;
    this.entries_per_dir = L.entries;
    this.lbits = geom.level_bits;
    this.mask = L.mask;
    this.limit = L.limit;
    this.span = L.span;
    this.wide = fmt.entry_bits === 64;
    this.smp = opts.smp === true || opts.shared !== undefined;
    this.pde_mask = fmt.pde_mask;
    this.pde_value = fmt.pde_value;
    this.pde_shift = fmt.pde_shift;
    this.pde_div = 2 ** fmt.pde_shift;
    this.pde_hi_mul = 2 ** (32 - fmt.pde_shift);
    let lb = 1 << L.llevel;
    for (const l of fmt.leaf_levels) if (l < L.levels) lb |= 1 << l;
    this.leaf_bits = lb;
    this.check_format();
    const h = this.hdr;
    if (opts.shared !== undefined) {
      if (opts.shared.format !== fmt.name) BUG(`attach with format ${fmt.name} to a ${opts.shared.format} table`);
      if (h[HDR_ADDRESS_BITS] !== geom.address_bits || h[HDR_LEVEL_BITS] !== geom.level_bits ||
          h[HDR_PAGE_SHIFT] !== geom.page_shift || h[HDR_ENTRY_BITS] !== fmt.entry_bits)
        BUG('attach with a different geometry or entry width');
      this.root = Atomics.load(h, HDR_ROOT);
      return;
    }
    h[HDR_ADDRESS_BITS] = geom.address_bits;
    h[HDR_LEVEL_BITS] = geom.level_bits;
    h[HDR_PAGE_SHIFT] = geom.page_shift;
    h[HDR_ENTRY_BITS] = fmt.entry_bits;
    h[HDR_EPOCH] = 1;
    h[HDR_FAULTER_SERIAL] = 1;
    h[HDR_UPDATER_SERIAL] = 1;
    const r = this.pool_alloc();
    if (r < 0) BUG('no slot for the root');
    const m = r * META_WORDS;
    this.meta[m + M_LEVEL] = 0;
    this.meta[m + M_PARENT] = -1;
    this.meta[m + M_PINDEX] = 0;
    this.metaf[r * 8 + M_BASE_F64] = 0;
    Atomics.store(this.meta, m + M_REF, 1);
    h[HDR_LEVEL_COUNT]++;
    this.root = r;
    Atomics.store(h, HDR_ROOT, r);
  }

  /* the engine's data spelling of a pde must agree with the format's functions */
  private check_format(): void {
    const fmt = this.format, max = this.hdr[HDR_MAX_SLOTS];
    if (this.pde_value === 0) BUG(`format ${fmt.name}: pde_value must be non-zero`);
    const room = 2 ** ((this.wide ? 53 : 32) - this.pde_shift);
    if (max > room) BUG(`format ${fmt.name} encodes only ${room} slots, max_slots is ${max}`);
    if (max * this.entries_per_dir > 2 ** 31) BUG('max_slots * entries_per_dir must stay below 2^31');
    for (const s of [0, 1, 2, 513, max - 1]) {
      for (let l = 0; l < this.llevel; l++) {
        const e = fmt.pde_make(s, l);
        if (!Number.isSafeInteger(e) || e <= 0 || (!this.wide && e >= TWO32) ||
            fmt.pde_slot(e) !== s || !fmt.is_pde(e, l) ||
            Math.floor(e / this.pde_div) !== s || (e & this.pde_mask) !== this.pde_value)
          BUG(`format ${fmt.name}: pde_make/pde_slot/is_pde disagree with pde_mask/value/shift`);
      }
    }
  }

  /* ---- geometry ---- */

  /** shift() - address shift of an entry at @level (page_shift at llevel). */
  shift(level: number): number { return this.layout.shift[level]; }

  /** index() - index of the entry covering @addr in its directory at @level. */
  index(addr: number, level: number): number { return (addr / this.span[level]) & this.mask; }

  /** level_end() - first address after the entry at @level that covers @addr. */
  level_end(addr: number, level: number): number { return gpt_level_end(this.layout, addr, level); }

  /** is_leaf_level() - may a leaf (huge or last-level) entry sit at @level? */
  is_leaf_level(level: number): boolean { return ((this.leaf_bits >>> level) & 1) !== 0; }

  /* ---- pointers and directory metadata ---- */

  /** dir_of() - the directory slot holding the entry @ptr. */
  dir_of(ptr: number): number { return ptr >>> this.lbits; }

  /** entry_index() - the index of @ptr inside its directory. */
  entry_index(ptr: number): number { return ptr & this.mask; }

  /** dir_level() - the level of directory @slot. */
  dir_level(slot: number): number { return this.meta[slot * META_WORDS + M_LEVEL]; }

  /** dir_base() - the first address directory @slot covers. */
  dir_base(slot: number): number { return this.metaf[slot * 8 + M_BASE_F64]; }

  /** dir_parent() - pointer to the entry linking @slot, or GPT_NO_DIR for the root. */
  dir_parent(slot: number): number {
    const m = slot * META_WORDS;
    const p = this.meta[m + M_PARENT];
    return p < 0 ? GPT_NO_DIR : p * this.entries_per_dir + this.meta[m + M_PINDEX];
  }

  /** dir_refcount() - link + non-none entries + walkers; 0 once dead. */
  dir_refcount(slot: number): number { return Atomics.load(this.meta, slot * META_WORDS + M_REF); }

  /** dir_serial() - faulter serial of a young directory, 0 once old. */
  dir_serial(slot: number): number { return Atomics.load(this.meta, slot * META_WORDS + M_SERIAL); }

  /** dir_gen() - how many times slot @slot was allocated (use-after-free checks). */
  dir_gen(slot: number): number { return Atomics.load(this.meta, slot * META_WORDS + M_GEN); }

  /** entry_addr() - the first address the entry @ptr covers. */
  entry_addr(ptr: number): number {
    const s = ptr >>> this.lbits;
    return this.metaf[s * 8 + M_BASE_F64] + (ptr & this.mask) * this.span[this.meta[s * META_WORDS + M_LEVEL]];
  }

  /** entry_level() - the level of the entry @ptr. */
  entry_level(ptr: number): number { return this.meta[(ptr >>> this.lbits) * META_WORDS + M_LEVEL]; }

  /* ---- entries ---- */

  /**
   * load() - read an entry (READ_ONCE / ptep_get).
   * @ptr: entry pointer from lookup(), populate() or a walk
   * Context: lockless. Private tables: plain reads (tear-free per word; the
   * only lockless writers touch the low word). smp tables: one atomic, so a
   * 64-bit entry is never torn.
   * Return: the entry (0 = none).
   */
  load(ptr: number): number {
    if (!this.smp) {
      const u = this.u32;
      if (!this.wide) return u[ptr];
      const i = ptr * 2;
      return u[i + 1] * TWO32 + u[i];
    }
    return this.wide ? Number(Atomics.load(this.b64, ptr)) : Atomics.load(this.u32, ptr);
  }

  /**
   * set() - write an entry (set_pte / ptep_get_and_clear in one).
   * @ptr: entry pointer; @e: the new value (0 = none), not a directory link
   *
   * Keeps the directory's refcount (none <-> non-none). Directory links are
   * made by populate() and removed by prune(); set() refuses to create or
   * overwrite one (that would leak or orphan a directory).
   * Context: the caller holds the directory's lock (dir_lock(dir_of(ptr)));
   * asserted on smp tables. Private tables: the caller's own locks.
   * Return: the previous entry, including bits set concurrently by set_bits().
   */
  set(ptr: number, e: number): number {
    if (this.wide) {
      if (!(e >= 0 && e <= MAX53) || Math.floor(e) !== e) BUG(`entry ${e} is not an integer below 2^53`);
    } else if ((e >>> 0) !== e) BUG(`entry ${e} is not an unsigned 32-bit value`);
    const s = ptr >>> this.lbits;
    if (this.smp && this.meta[s * META_WORDS + M_OWNER] !== gpt_thread_tag)
      BUG(`set() on directory ${s} without its lock`);
    const upper = this.meta[s * META_WORDS + M_LEVEL] !== this.llevel;
    if (upper && e !== 0 && this.is_link(e)) BUG('set() cannot install a directory link; use populate()');
    const old = this.xchg_raw(ptr, e);
    if (upper && old !== 0 && old !== e && this.is_link(old)) {
      this.xchg_raw(ptr, old);
      BUG('set() would orphan a directory; prune() removes directory links');
    }
    return old;
  }

  /* exchange an entry and keep the refcount; no checks (pde management) */
  protected xchg_raw(ptr: number, e: number): number {
    let old: number;
    if (this.wide) {
      if (this.smp) {
        old = Number(Atomics.exchange(this.b64, ptr, BigInt(e)));
      } else {
        const i = ptr * 2, u = this.u32;
        old = u[i + 1] * TWO32 + u[i];
        u[i] = e >>> 0;
        u[i + 1] = (e / TWO32) >>> 0;
      }
    } else if (this.smp) {
      old = Atomics.exchange(this.u32, ptr, e);
    } else {
      old = this.u32[ptr];
      this.u32[ptr] = e;
    }
    if ((old === 0) !== (e === 0)) {
      const r = (ptr >>> this.lbits) * META_WORDS + M_REF;
      if (this.smp) Atomics.add(this.meta, r, e === 0 ? -1 : 1);
      else this.meta[r] += e === 0 ? -1 : 1;
    }
    return old;
  }

  /**
   * set_bits() - atomically OR @mask into a non-none entry (the dirty bit).
   * @mask: bits within the low 32 bits
   * Context: lockless; safe against set() under the lock (which returns the
   * bits it replaced) and against other bit operations.
   * Return: the entry's previous low word; 0 means its low word was 0
   * (none, for every shipped format) and nothing was changed.
   */
  set_bits(ptr: number, mask: number): number {
    if (this.wide) {
      const i = ptr * 2;
      if (!this.smp) {
        const lo = this.u32[i];
        if (lo !== 0) this.u32[i] = lo | mask;
        return lo;
      }
      const m = BigInt(mask >>> 0);
      for (;;) {
        const o = Atomics.load(this.b64, ptr);
        const lo = Number(o & 0xffffffffn);
        if (lo === 0) return 0;
        const n = o | m;
        if (n === o || Atomics.compareExchange(this.b64, ptr, o, n) === o) return lo;
      }
    }
    if (!this.smp) {
      const o = this.u32[ptr];
      if (o !== 0) this.u32[ptr] = o | mask;
      return o;
    }
    for (;;) {
      const o = Atomics.load(this.u32, ptr);
      if (o === 0) return 0;
      const n = (o | mask) >>> 0;
      if (n === o || Atomics.compareExchange(this.u32, ptr, o, n) === o) return o;
    }
  }

  /**
   * clear_bits() - atomically clear @mask in an entry's low word.
   * Context: lockless. Clearing must not empty the low word of a non-none
   * entry (use set(ptr, 0) under the lock to remove an entry): BUG.
   * Return: the previous low word (0: none, nothing done).
   */
  clear_bits(ptr: number, mask: number): number {
    const w = this.wide ? ptr * 2 : ptr;
    if (!this.smp) {
      const o = this.u32[w];
      if (o !== 0) {
        if ((o & ~mask) === 0) BUG('clear_bits() would empty the entry');
        this.u32[w] = o & ~mask;
      }
      return o;
    }
    for (;;) {
      const o = Atomics.load(this.u32, w);
      if (o === 0) return 0;
      const n = (o & ~mask) >>> 0;
      if (n === 0) BUG('clear_bits() would empty the entry');
      if (n === o || Atomics.compareExchange(this.u32, w, o, n) === o) return o;
    }
  }

  /* ---- decoding directory links (engine side of struct gpt_format) ---- */

  /** is_link() - is non-zero @e, found above the last level, a directory link? */
  is_link(e: number): boolean { return (e & this.pde_mask) === this.pde_value; }

  /** link_slot() - the child slot of directory link @e (is_link(e) true). */
  link_slot(e: number): number {
    const s = Math.floor(e / this.pde_div);
    if (s >= this.nview) this.remap();
    return s;
  }

  /**
   * child_at() - the directory linked by the entry at @ptr (above llevel).
   * Return: the child slot, or -1 if the entry is none or not a link.
   */
  child_at(ptr: number): number {
    if (this.smp) return this.child_at_smp(ptr);
    if (this.wide) {
      const lo = this.u32[ptr * 2];
      if ((lo & this.pde_mask) !== this.pde_value) return -1;
      return (lo >>> this.pde_shift) + this.u32[ptr * 2 + 1] * this.pde_hi_mul;
    }
    const e = this.u32[ptr];
    return (e & this.pde_mask) !== this.pde_value ? -1 : e >>> this.pde_shift;
  }

  /* child_at() of an smp table: one atomic read, and views re-made if the
     child lies beyond them (another thread grew the pool) */
  private child_at_smp(ptr: number): number {
    const v = this.wide ? Number(Atomics.load(this.b64, ptr)) : Atomics.load(this.u32, ptr);
    if ((v & this.pde_mask) !== this.pde_value) return -1;
    const s = Math.floor(v / this.pde_div);
    if (s >= this.nview) this.remap();
    return s;
  }

  /* ---- directory references (walkers) ---- */

  /**
   * dir_get() - take a walker reference on @slot unless it is dead
   * (atomic_inc_not_zero on hmm_pt's _mapcount).
   * Context: the caller reached @slot through a link inside a read section,
   * or already holds a reference. Return: false if the directory is dying.
   */
  dir_get(slot: number): boolean {
    const i = slot * META_WORDS + M_REF, meta = this.meta;
    let v = Atomics.load(meta, i);
    while (v !== 0) {
      const w = Atomics.compareExchange(meta, i, v, v + 1);
      if (w === v) return true;
      v = w;
    }
    return false;
  }

  /** dir_put() - drop a reference taken by dir_get(). Never drops the link. */
  dir_put(slot: number): void {
    if (Atomics.sub(this.meta, slot * META_WORDS + M_REF, 1) <= 1) BUG(`dir_put(${slot}) dropped the link reference`);
  }

  /* ---- locks ---- */

  /**
   * dir_lock() - take directory @slot's lock (the split PTE lock).
   * Context: may block (spin, then Atomics.wait). Order: parent before
   * child, pool lock inside. Not recursive.
   */
  dir_lock(slot: number): void {
    if (slot >= this.nview) this.remap();
    const m = slot * META_WORDS;
    gpt_spin_lock(this.meta, m + M_LOCK);
    this.meta[m + M_OWNER] = gpt_thread_tag;
  }

  /** dir_trylock() - take @slot's lock if free. Return: true if taken. */
  dir_trylock(slot: number): boolean {
    if (slot >= this.nview) this.remap();
    const m = slot * META_WORDS;
    if (!gpt_spin_trylock(this.meta, m + M_LOCK)) return false;
    this.meta[m + M_OWNER] = gpt_thread_tag;
    return true;
  }

  /** dir_unlock() - release @slot's lock. Context: this thread holds it (asserted). */
  dir_unlock(slot: number): void {
    const m = slot * META_WORDS;
    if (this.meta[m + M_OWNER] !== gpt_thread_tag) BUG(`dir_unlock(${slot}) by a non-owner`);
    this.meta[m + M_OWNER] = 0;
    gpt_spin_unlock(this.meta, m + M_LOCK);
  }

  /** dir_locked_by_me() - does this thread hold @slot's lock? */
  dir_locked_by_me(slot: number): boolean {
    return this.meta[slot * META_WORDS + M_OWNER] === gpt_thread_tag;
  }
}
