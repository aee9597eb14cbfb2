/*
 * include/linux/gpt.ts - the generic lockless page table: types, constants,
 * entry-format descriptor, lock order and memory-ordering rules.
 *
 * Models three proposals at once:
 *  - the 2014 RFC "lib: lockless generic and arch independent page table
 *    (gpt)" (include/linux/gpt.h, lib/gpt.c): one engine that walks and
 *    updates any page table, entry format left to the user, per-directory
 *    locks, and the faulter serial rule "readers ignore directories that
 *    faulters still in flight are creating";
 *  - hmm_pt of HMM v8 (patch 06/23, include/linux/hmm_pt.h): the geometry
 *    of hmm_pt_init(), refcounted directories (children + walkers),
 *    inc-not-zero references that treat a dying directory as absent,
 *    populate under the parent's lock with the "someone else installed it
 *    first" case, the v9 names lookup / walk / populate;
 *  - Linus's generic walker proposed in the review (Nov 2014): a range
 *    walk with pre / leaf / hole / post callbacks, locking left to the
 *    caller where the caller knows better.
 * The code is in lib/gpt/; the long explanation is the gpt section of
 * Documentation/vm/hmm.txt (Part 3).
 *
 * Vocabulary. A table is a tree of directories; every directory is one
 * fixed-size slot of 2^level_bits entries in a typed-array pool. Level 0
 * is the root (the pgd), level llevel = levels - 1 holds the last-level
 * leaves (PTEs). An entry is a JS number; 0 is "none" in every format. A
 * pointer to an entry (C's pte_t *) is the number
 *
 *     ptr = slot * entries_per_dir + index
 *
 * so mm/ keeps ptep / pmdp as plain numbers, and dir_of(ptr) = slot.
 *
 * Entries. 32-bit formats store unsigned 32-bit values. 64-bit formats store
 * two 32-bit words (low word first), and an entry must be an integer below
 * 2^53: bits 53..63 are unavailable in this model (the price of JS numbers;
 * the 2014 thread's point that an entry may be wider than a long is kept,
 * the width is just 53 instead of 64). Every format keeps its valid bits
 * in the low word, so the atomic bit operations work on that word alone.
 *
 * Directory lifetime (a directory's refcount, as hmm_pt's _mapcount):
 *     ref = 1 (the link: the parent's entry, or the table for the root)
 *         + number of non-none entries in the directory
 *         + number of walkers / iterators currently holding it
 * A walker takes a reference with inc-not-zero; 0 means dead. Nothing dies
 * on a decrement: prune() kills a directory by moving its ref from 1 (link
 * only: empty, nobody walking) to 0 with a compare-and-swap made under the
 * parent directory's lock, clears the parent's entry, and retires the slot.
 * A retired slot is recycled only after an epoch grace period (lib/gpt/
 * epoch.ts): no reader that could have read the old parent entry remains.
 *
 * Lock order (outermost first):
 *     directory locks, parent before child (top-down)
 *       -> pool lock (HDR_POOL_LOCK: free list, retired list, growth)
 *     fault lock (HDR_FAULT_LOCK: faulter serials) is taken alone.
 * Directory locks are spinlock words (Atomics.compareExchange, then
 * Atomics.wait/notify after spinning); entries of a directory change only
 * under its lock, except the lockless bit operations (set_bits/clear_bits,
 * the dirty bit) which are atomic read-modify-writes of the low word.
 *
 * Ordering (all Atomics in JS are sequentially consistent, so every Atomics
 * store is at least a release and every Atomics load at least an acquire;
 * this is the ordering the 2014 "bitops as locks" lacked):
 *  1. A new directory is zeroed and its metadata (level, parent, base,
 *     serial, ref) written before the parent entry pointing at it is stored
 *     with an atomic store; a reader loads that entry with an atomic load,
 *     so it sees the initialised directory (publish / subscribe, as
 *     rcu_assign_pointer / rcu_dereference).
 *  2. A reader reads a parent entry and takes the child's reference inside
 *     an epoch read section. The pruner clears the parent entry, then takes
 *     a retire tag (atomic add on the global epoch). The slot is recycled
 *     when every reader slot is quiescent or entered after the tag; in the
 *     total order of Atomics, a reader that entered after the tag loads the
 *     parent entry after it was cleared, so it cannot reach the slot.
 *  3. inc-not-zero and the pruner's 1 -> 0 are compare-and-swaps on the
 *     same word: either the reader holds a reference (and the pruner's CAS
 *     fails) or the directory is dead (and the reader treats it as absent).
 *  4. The faulter serial rule: a faulter takes serial s and stamps the
 *     directories it creates with s; a reader takes a snapshot u of the
 *     oldest serial still in flight and skips every directory stamped with
 *     a serial >= u. The faulter clears its stamps and then leaves the
 *     in-flight set with atomic stores, so a reader whose snapshot is past
 *     s, or who sees a cleared stamp, sees all of that faulter's entries.
 *  5. 64-bit entries are read and written by lockless parties as one
 *     BigUint64 atomic (tear-free); a reader never sees half an entry.
 *
 * What differs from the 2014 patch and why: see Documentation/vm/hmm.txt,
 * "gpt"; in short, real locks with acquire/release, no synchronize_rcu()
 * on any update path (deferred free instead), refcounts from hmm_pt, typed
 * arrays in place of struct page, and an explicit prune().
 */

/** lookup() result when a directory on the path is missing, dead, young or a leaf. */
export const GPT_NO_DIR = -1;
/** Deepest tree this engine builds (HMM_PT_MAX_LEVEL). */
export const GPT_MAX_LEVELS = 6;
/** Threads (or table instances) that may enter epoch read sections at once. */
export const GPT_MAX_READERS = 32;
/** Faulters that may be in flight at once (serial rule). */
export const GPT_MAX_FAULTERS = 32;

/* gpt_iter_init() flags */
/** The iterator is a faulter: takes a serial, its new directories are young until fini(). */
export const GPT_ITER_FAULT = 1;
/** The iterator is a reader that ignores directories of faulters still in flight. */
export const GPT_ITER_UPDATE = 2;

/**
 * struct gpt_geometry - the shape of a table.
 * @address_bits: width of the address space covered, 1..53 (addresses are numbers)
 * @level_bits: index bits per level; a directory has 2^level_bits entries (default 9)
 * @page_shift: address bits covered by one last-level entry (default 12)
 */
export interface gpt_geometry {
  readonly address_bits: number;
  readonly level_bits: number;
  readonly page_shift: number;
}

/**
 * struct gpt_format - how one hardware encodes its entries.
 *
 * The engine only needs to recognise and build directory entries (pde); the
 * meaning of leaf entries is the user's business (2014 gpt: "PTE content is
 * the user's problem"). The functions are the format's public face; the
 * three numbers pde_mask / pde_value / pde_shift say the same thing as data,
 * so the engine's hot path decodes a pde with two integer operations instead
 * of an indirect call:
 *     is_pde(e, l)  <=>  e != 0 && (low32(e) & pde_mask) == pde_value   (l < llevel)
 *     pde_slot(e)   ==   floor(e / 2^pde_shift)
 * lib/gpt checks both spellings agree when a table is created.
 *
 * @name: unique name; worker threads find the format by it (gpt_format_find)
 * @entry_bits: 32 or 64 (64: integer below 2^53, stored as two words)
 * @leaf_levels: levels (0 = top) where a leaf may sit; the last level is
 *   always a leaf level whether listed or not. x86-64: PUD, PMD and PTE.
 * @pde_mask, @pde_value, @pde_shift: the data spelling of is_pde / pde_slot
 * @pde_make: encode a directory entry at @level pointing at @child_slot
 * @pde_slot: the child slot of a directory entry
 * @is_pde: true if non-zero @e at @level (above the last) links to a child
 *   directory; false for a huge leaf and for a non-present (swap) entry
 */
export interface gpt_format {
  readonly name: string;
  readonly entry_bits: 32 | 64;
  readonly leaf_levels: readonly number[];
  readonly pde_mask: number;
  readonly pde_value: number;
  readonly pde_shift: number;
  pde_make(child_slot: number, level: number): number;
  pde_slot(e: number): number;
  is_pde(e: number, level: number): boolean;
}

/**
 * struct gpt - one generic page table. Declared here with the two fields
 * every user reads; its implementation (lib/gpt/gpt.ts) completes it with
 * the rest of its members through a `declare module` augmentation, so
 * include/ names it (mm_struct.pgd) without importing lib/.
 */
export interface gpt {
  readonly geometry: gpt_geometry;
  readonly format: gpt_format;
}

/**
 * struct gpt_walk_ops - callbacks of gpt.walk() (Linus's walker shape).
 *
 * Called as methods of the ops object (keep state in its fields; one object
 * per walk, no closure per entry). A non-zero return stops the walk and
 * becomes walk()'s return value.
 *
 * @pre: before the walk descends into directory @slot at @level; @start,
 *   @end is the part of the walked range it covers. Also called for the
 *   root. If it returns non-zero the directory is not entered and post is
 *   not called for it.
 * @leaf: for every non-none entry that is not a directory link: last-level
 *   entries, huge leaves, non-present (swap) entries at any level. @addr is
 *   the first address the whole entry covers (aligned; a huge leaf may start
 *   before the walked range), @level its level, @e its value.
 * @hole: for each maximal run of addresses with no entry (none entries,
 *   missing directories, dying directories, young directories the walker
 *   must ignore), coalesced across levels and directories. A run is
 *   reported when it ends: before the next leaf, or at the end of the walk
 *   (before the root's post), so it may come after the post of the
 *   directory where it began. @level is the level where the run began.
 * @post: after directory @slot was walked (even when the walk stopped
 *   inside it), so a lock taken in pre can be dropped in post.
 * Context: the walker holds a reference on every directory on its path and
 * is inside an epoch read section; callbacks may take directory locks and
 * set entries, but must not wait for a grace period.
 */
export interface gpt_walk_ops {
  pre?(slot: number, level: number, start: number, end: number): number | void;
  leaf?(ptr: number, addr: number, level: number, e: number): number | void;
  hole?(start: number, end: number, level: number): number | void;
  post?(slot: number, level: number, start: number, end: number): number | void;
}

/**
 * struct gpt_stats - where the host memory of a table goes.
 * @slots_used: live directories (root included)
 * @slots_retired: dead directories waiting for their grace period
 * @slots_free: recycled slots ready for reuse
 * @capacity: slots the pool can hold without growing
 * @max_slots: the pool never grows past this (populate returns -ENOMEM)
 * @dirs_per_level: live directories per level
 * @bytes: host bytes of the whole pool (entries + metadata + header)
 * @bytes_entries, @bytes_meta: the parts of @bytes
 * @grows: times the pool grew; @reclaimed: slots recycled after grace
 * @uaf: references found stale on release (a directory freed under a
 *   walker); must stay 0
 * @warnings: WARN_ON_ONCE-like events (partial huge leaf in clear_range)
 */
export interface gpt_stats {
  slots_used: number;
  slots_retired: number;
  slots_free: number;
  capacity: number;
  max_slots: number;
  dirs_per_level: number[];
  bytes: number;
  bytes_entries: number;
  bytes_meta: number;
  grows: number;
  reclaimed: number;
  uaf: number;
  warnings: number;
}

/**
 * struct gpt_shared - what a worker thread needs to attach to a table.
 * Pass it in workerData (SharedArrayBuffers are shared, not copied).
 */
export interface gpt_shared {
  readonly hdr: SharedArrayBuffer;
  readonly meta: SharedArrayBuffer;
  readonly entries: SharedArrayBuffer;
  readonly geometry: gpt_geometry;
  readonly format: string;
}

/**
 * struct gpt_opts - table creation options.
 * @initialSlots: directories the pool holds before its first growth (default 16)
 * @maxSlots: the pool never grows beyond this (default 65536, fewer for
 *   directories above 4 KiB: at most 1 GiB is reserved); populate then
 *   returns -ENOMEM
 * @smp: the table will be shared with worker threads: every entry access
 *   uses Atomics (default false: plain typed-array accesses, one thread)
 * @shared: attach to an existing table created with smp (worker side)
 * @poison: debug: fill recycled directories with a poison pattern when
 *   their grace period ends, so a use-after-free reads garbage (tests)
 */
export interface gpt_opts {
  initialSlots?: number;
  maxSlots?: number;
  smp?: boolean;
  shared?: gpt_shared;
  poison?: boolean;
}

/*
 * hmm_pt entry format of HMM v8 (patch 06/23, with 17 and 18), shipped as
 * hmm_pt_format in lib/gpt/formats.ts. A leaf (dma_addr_t in the patch):
 *
 *   52              PAGE_SHIFT  11      8 7 6  5  4   3    2     1     0
 *  +------------------------+----------+---+---+---+----+-----+-----+-----+
 *  | pfn / DMA / dev address|driver bits| - |DRT|WR |SEL |V_PFN|V_DMA|V_DEV|
 *  +------------------------+----------+---+---+---+----+-----+-----+-----+
 *
 * A directory entry is (child slot << PAGE_SHIFT) | HMM_PDE_VALID. The driver
 * may change only the dirty bit and its own bits, locklessly (set_bits).
 */
export const HMM_PTE_VALID_DEV_BIT = 0;   /* entry points to device memory */
export const HMM_PTE_VALID_DMA_BIT = 1;   /* entry holds a DMA address of a system page */
export const HMM_PTE_VALID_PFN_BIT = 2;   /* entry holds a pfn (before DMA mapping) */
export const HMM_PTE_SELECT_BIT = 3;      /* belongs to the current fault / migration batch */
export const HMM_PTE_WRITE_BIT = 4;       /* device may write */
export const HMM_PTE_DIRTY_BIT = 5;       /* device wrote (driver sets it, atomic) */
export const HMM_PTE_HW_SHIFT = 8;        /* first driver-private bit */
export const HMM_PTE_VALID_DEV = 1 << HMM_PTE_VALID_DEV_BIT;
export const HMM_PTE_VALID_DMA = 1 << HMM_PTE_VALID_DMA_BIT;
export const HMM_PTE_VALID_PFN = 1 << HMM_PTE_VALID_PFN_BIT;
export const HMM_PTE_SELECT = 1 << HMM_PTE_SELECT_BIT;
export const HMM_PTE_WRITE = 1 << HMM_PTE_WRITE_BIT;
export const HMM_PTE_DIRTY = 1 << HMM_PTE_DIRTY_BIT;
export const HMM_PDE_VALID = 1;
