/*
 * lib/gpt/storage.ts - the directory pool: slots in growable shared memory.
 *
 * Models what the 2014 gpt and hmm_pt got from the page allocator: a zeroed
 * page per directory (alloc_page / __free_page), struct page fields for the
 * metadata, and their free lists (gpt->pdp_free, iter->dead_directories).
 * Here a directory is a slot number in a pool of three SharedArrayBuffers
 * (lib/gpt/shm.ts); there is no JS object per directory or per entry.
 *
 * The entry and metadata buffers are growable SharedArrayBuffers: growing
 * keeps their address, so every thread's data stays valid, and each thread
 * re-creates its fixed-length typed-array views when it meets a slot beyond
 * them (fixed-length views are as fast as plain ones in V8; length-tracking
 * views are several times slower). The pool grows by an eighth at a time,
 * so the host memory stays within ~12% of what is used.
 *
 * Slot life: fresh or free -> live (alloc) -> dead (prune, retire with an
 * epoch tag) -> free (recycle, once the grace period has passed) -> live.
 * A slot that was never published (a populate that lost its race) goes
 * straight back to the free list.
 *
 * Locking: the pool lock (HDR_POOL_LOCK) protects the free and retired
 * lists, M_NEXT and M_TAG of slots on them, and growth. It nests inside
 * directory locks (prune retires with the parent locked) and never outside.
 */
import { ENOMEM } from '../../include/uapi/asm-generic/errno.js';
import type { gpt_opts, gpt_shared } from '../../include/linux/gpt.js';
import { gpt_epoch_safe } from './epoch.js';
import { gpt_spin_lock, gpt_spin_unlock } from './lock.js';
import {
  DIR_DEAD, DIR_FREE, DIR_LIVE, GPT_MAGIC, HDR_CAPACITY, HDR_FREE, HDR_FREE_HEAD, HDR_FRESH,
  HDR_GROWS, HDR_LEVEL_COUNT, HDR_MAGIC, HDR_MAX_SLOTS, HDR_POISON, HDR_POOL_LOCK,
  HDR_RECLAIMED, HDR_RETIRED, HDR_RETIRED_HEAD, HDR_USED, HDR_WORDS, M_GEN, M_LEVEL,
  M_NEXT, M_REF, M_STATE, M_TAG, META_WORDS,
} from './shm.js';

interface growable_sab extends SharedArrayBuffer {
  grow(len: number): void;
}
const GrowableSAB = SharedArrayBuffer as unknown as
  new (len: number, opts: { maxByteLength: number }) => growable_sab;

const META_BYTES = META_WORDS * 4;
const POISON_WORD = 0xdeadbeef;

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1)
  throw new Error('gpt: 64-bit entries assume a little-endian host');

/**
 * struct gpt_pool - the shared buffers of one table and this thread's views.
 *
 * The views are fields (not getters) because the hot path reads them on
 * every access; remap() replaces them after another thread grew the pool.
 */
export class gpt_pool {
  /** header words (lib/gpt/shm.ts HDR_*) */
  hdr: Int32Array;
  /** per-slot metadata words (M_*) */
  meta: Int32Array;
  /** the same buffer as doubles (base address at slot * 8 + M_BASE_F64) */
  metaf: Float64Array;
  /** entries as 32-bit words (64-bit entries: low word at 2i, high at 2i+1) */
  u32: Uint32Array;
  /** entries as 64-bit words (64-bit formats, atomic accesses) */
  b64: BigUint64Array;
  /** slots covered by this thread's views */
  nview = 0;
  readonly hdr_sab: SharedArrayBuffer;
  readonly meta_sab: growable_sab;
  readonly ent_sab: growable_sab;
  /** 32-bit words per slot in the entry buffer */
  readonly slot_words: number;

  constructor(slot_words: number, opts: gpt_opts) {
    this.slot_words = slot_words;
    const sh: gpt_shared | undefined = opts.shared;
    if (sh !== undefined) {
      this.hdr_sab = sh.hdr;
      this.meta_sab = sh.meta as growable_sab;
      this.ent_sab = sh.entries as growable_sab;
      this.hdr = new Int32Array(this.hdr_sab);
      if (this.hdr[HDR_MAGIC] !== GPT_MAGIC) throw new Error('gpt: attach to a non-gpt buffer');
    } else {
      const max = opts.maxSlots ?? 65536;
      const init = Math.min(max, Math.max(2, opts.initialSlots ?? 16));
      this.hdr_sab = new SharedArrayBuffer(HDR_WORDS * 4);
      this.meta_sab = new GrowableSAB(init * META_BYTES, { maxByteLength: max * META_BYTES });
      this.ent_sab = new GrowableSAB(init * slot_words * 4, { maxByteLength: max * slot_words * 4 });
      this.hdr = new Int32Array(this.hdr_sab);
      const h = this.hdr;
      h[HDR_CAPACITY] = init;
      h[HDR_MAX_SLOTS] = max;
      h[HDR_FREE_HEAD] = -1;
      h[HDR_RETIRED_HEAD] = -1;
      h[HDR_POISON] = opts.poison ? 1 : 0;
      Atomics.store(h, HDR_MAGIC, GPT_MAGIC);
    }
    this.meta = new Int32Array(0);
    this.metaf = new Float64Array(0);
    this.u32 = new Uint32Array(0);
    this.b64 = new BigUint64Array(0);
    this.remap();
  }

  /**
   * remap() - re-create this thread's views to cover the whole pool.
   * Context: any thread, no lock (the buffers only grow).
   */
  remap(): void {
    const n = Math.floor(this.meta_sab.byteLength / META_BYTES);
    const m = Math.min(n, Math.floor(this.ent_sab.byteLength / (this.slot_words * 4)));
    this.meta = new Int32Array(this.meta_sab, 0, m * META_WORDS);
    this.metaf = new Float64Array(this.meta_sab, 0, m * (META_WORDS >> 1));
    this.u32 = new Uint32Array(this.ent_sab, 0, m * this.slot_words);
    this.b64 = new BigUint64Array(this.ent_sab, 0, (m * this.slot_words) >> 1);
    this.nview = m;
  }

  /**
   * pool_alloc() - a zeroed directory slot, state DIR_LIVE, ref 0, gen bumped.
   * The caller fills the metadata and sets M_REF before publishing it.
   * Context: takes the pool lock; may grow the buffers.
   * Return: the slot, or -ENOMEM when the pool is at max_slots and nothing
   * can be recycled yet.
   */
  pool_alloc(): number {
    const h = this.hdr;
    gpt_spin_lock(h, HDR_POOL_LOCK);
    if (h[HDR_CAPACITY] > this.nview) this.remap();     /* another thread grew the pool */
    let s = h[HDR_FREE_HEAD];
    if (s < 0 && h[HDR_RETIRED_HEAD] >= 0 && this.pool_reclaim_locked() > 0) s = h[HDR_FREE_HEAD];
    let dirty = true;
    if (s >= 0) {
      h[HDR_FREE_HEAD] = this.meta[s * META_WORDS + M_NEXT];
      h[HDR_FREE]--;
    } else {
      s = h[HDR_FRESH];
      if (s >= h[HDR_CAPACITY] && !this.pool_grow_locked()) {
        gpt_spin_unlock(h, HDR_POOL_LOCK);
        return -ENOMEM;
      }
      h[HDR_FRESH] = s + 1;
      dirty = false;                       /* never used: still zero */
    }
    h[HDR_USED]++;
    gpt_spin_unlock(h, HDR_POOL_LOCK);
    if (s >= this.nview) this.remap();
    if (dirty) this.u32.fill(0, s * this.slot_words, (s + 1) * this.slot_words);
    const m = s * META_WORDS;
    Atomics.store(this.meta, m + M_REF, 0);
    Atomics.add(this.meta, m + M_GEN, 1);
    Atomics.store(this.meta, m + M_STATE, DIR_LIVE);
    return s;
  }

  /**
   * pool_free_unused() - return a slot that was never published.
   * Context: takes the pool lock.
   */
  pool_free_unused(s: number): void {
    const h = this.hdr;
    Atomics.store(this.meta, s * META_WORDS + M_STATE, DIR_FREE);
    gpt_spin_lock(h, HDR_POOL_LOCK);
    this.meta[s * META_WORDS + M_NEXT] = h[HDR_FREE_HEAD];
    h[HDR_FREE_HEAD] = s;
    h[HDR_FREE]++;
    h[HDR_USED]--;
    gpt_spin_unlock(h, HDR_POOL_LOCK);
  }

  /**
   * pool_retire() - queue a dead, unlinked directory for recycling after
   * its grace period (call_rcu without the callback).
   * @s: the slot, already unlinked from its parent
   * @tag: gpt_epoch_retire_tag() taken after the unlink
   * Context: takes the pool lock (nests inside a directory lock).
   */
  pool_retire(s: number, tag: number): void {
    const h = this.hdr;
    const m = s * META_WORDS;
    Atomics.store(this.meta, m + M_STATE, DIR_DEAD);
    Atomics.sub(h, HDR_LEVEL_COUNT + this.meta[m + M_LEVEL], 1);
    gpt_spin_lock(h, HDR_POOL_LOCK);
    this.meta[m + M_TAG] = tag;
    this.meta[m + M_NEXT] = h[HDR_RETIRED_HEAD];
    h[HDR_RETIRED_HEAD] = s;
    h[HDR_RETIRED]++;
    h[HDR_USED]--;
    gpt_spin_unlock(h, HDR_POOL_LOCK);
  }

  /**
   * pool_reclaim() - move retired slots whose grace period is over to the
   * free list. Context: takes the pool lock. Return: slots recycled.
   */
  pool_reclaim(): number {
    gpt_spin_lock(this.hdr, HDR_POOL_LOCK);
    const n = this.pool_reclaim_locked();
    gpt_spin_unlock(this.hdr, HDR_POOL_LOCK);
    return n;
  }

  private pool_reclaim_locked(): number {
    if (this.hdr[HDR_CAPACITY] > this.nview) this.remap();   /* retired slots past this thread's view */
    const h = this.hdr, meta = this.meta;
    let n = 0, prev = -1;
    for (let s = h[HDR_RETIRED_HEAD]; s >= 0;) {
      const m = s * META_WORDS;
      const next = meta[m + M_NEXT];
      if (gpt_epoch_safe(h, meta[m + M_TAG])) {
        if (prev < 0) h[HDR_RETIRED_HEAD] = next; else meta[prev * META_WORDS + M_NEXT] = next;
        if (h[HDR_POISON]) this.u32.fill(POISON_WORD, s * this.slot_words, (s + 1) * this.slot_words);
        Atomics.store(meta, m + M_STATE, DIR_FREE);
        meta[m + M_NEXT] = h[HDR_FREE_HEAD];
        h[HDR_FREE_HEAD] = s;
        h[HDR_FREE]++;
        h[HDR_RETIRED]--;
        n++;
      } else {
        prev = s;
      }
      s = next;
    }
    h[HDR_RECLAIMED] += n;
    return n;
  }

  private pool_grow_locked(): boolean {
    const h = this.hdr;
    const cap = h[HDR_CAPACITY], max = h[HDR_MAX_SLOTS];
    if (cap >= max) return false;
    const ncap = Math.min(max, cap + Math.max(16, cap >> 3));
    this.ent_sab.grow(ncap * this.slot_words * 4);
    this.meta_sab.grow(ncap * META_BYTES);
    h[HDR_CAPACITY] = ncap;
    h[HDR_GROWS]++;
    this.remap();
    return true;
  }
}
