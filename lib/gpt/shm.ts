/*
 * lib/gpt/shm.ts - the shared-memory layout of a gpt table.
 *
 * Models the fields the 2014 gpt kept in struct gpt and in the struct page
 * of each directory (page->private = serial, s_mem = parent, index = first
 * index, flags = level, _mapcount = refcount, ptl = lock), and hmm_pt's
 * struct hmm_pt. Here they are words of three SharedArrayBuffers, so any
 * worker thread can map the same table:
 *
 *   hdr     Int32Array[HDR_WORDS], fixed size: pool state, epoch, serials,
 *           reader and faulter registries, counters
 *   meta    Int32Array[16 per slot] (+ a Float64Array view over the same
 *           buffer for the base address); grows with the pool
 *   entries Uint32Array (and BigUint64Array for 64-bit formats); one slot
 *           is 2^level_bits entries; grows with the pool
 *
 * Per-slot metadata (64 bytes, one cache line):
 *
 *   word  0 M_REF     refcount: 1 link + non-none entries + walkers; 0 = dead
 *         1 M_LOCK    directory spinlock: 0 free, 1 held, 2 held + waiters
 *         2 M_OWNER   thread tag of the lock holder (assertions only)
 *         3 M_LEVEL   level of the directory (0 = root)
 *         4 M_PARENT  slot of the parent directory (-1 for the root)
 *         5 M_PINDEX  index of the linking entry in the parent
 *         6 M_SERIAL  faulter serial of a young directory, 0 once old
 *         7 M_GEN     allocation generation (bumped at every allocation)
 *         8 M_NEXT    free / retired list link
 *         9 M_TAG     epoch tag at retirement
 *        10 M_STATE   DIR_FREE / DIR_LIVE / DIR_DEAD
 *     14-15 (f64 #7)  base: first address the directory covers
 *
 * M_LEVEL, M_PARENT, M_PINDEX and the base are written before the
 * directory is published and never change while it lives. M_REF is atomic.
 * M_NEXT and M_TAG are protected by the pool lock.
 */

/* header words */
export const HDR_MAGIC = 0;
export const HDR_POOL_LOCK = 1;
export const HDR_CAPACITY = 2;      /* slots backed by the buffers */
export const HDR_FRESH = 3;         /* first never-used slot */
export const HDR_FREE_HEAD = 4;     /* free list, -1 if empty */
export const HDR_RETIRED_HEAD = 5;  /* retired (dead, in grace) list, -1 if empty */
export const HDR_USED = 6;          /* live directories */
export const HDR_RETIRED = 7;
export const HDR_FREE = 8;
export const HDR_MAX_SLOTS = 9;
export const HDR_ROOT = 10;
export const HDR_EPOCH = 11;        /* global epoch, starts at 1 */
export const HDR_FAULT_LOCK = 12;
export const HDR_FAULTER_SERIAL = 13; /* next faulter serial (never 0) */
export const HDR_UPDATER_SERIAL = 14; /* oldest in-flight serial, or the next one */
export const HDR_GROWS = 15;
export const HDR_RECLAIMED = 16;
export const HDR_WARN = 17;
export const HDR_POISON = 18;
export const HDR_UAF = 19;
export const HDR_ADDRESS_BITS = 20;
export const HDR_LEVEL_BITS = 21;
export const HDR_PAGE_SHIFT = 22;
export const HDR_ENTRY_BITS = 23;
export const HDR_LEVEL_COUNT = 24;  /* 8 words: live directories per level */
export const HDR_READERS = 32;      /* GPT_MAX_READERS words: 0 quiescent, else entry epoch */
export const HDR_FAULTERS = 64;     /* GPT_MAX_FAULTERS words: 0 free, else serial */
export const HDR_READER_CLAIM = 96; /* GPT_MAX_READERS words: 0 free, 1 claimed */
export const HDR_WORDS = 128;
export const GPT_MAGIC = 0x67707421;

/* per-slot metadata words */
export const M_REF = 0;
export const M_LOCK = 1;
export const M_OWNER = 2;
export const M_LEVEL = 3;
export const M_PARENT = 4;
export const M_PINDEX = 5;
export const M_SERIAL = 6;
export const M_GEN = 7;
export const M_NEXT = 8;
export const M_TAG = 9;
export const M_STATE = 10;
export const META_WORDS = 16;
export const META_SHIFT = 4;        /* log2(META_WORDS) */
export const M_BASE_F64 = 7;        /* f64 index within the slot's 8 doubles */

export const DIR_FREE = 0;
export const DIR_LIVE = 1;
export const DIR_DEAD = 2;
