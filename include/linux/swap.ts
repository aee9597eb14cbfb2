/*
 * include/linux/swap.ts - swap devices, swap counts and the reclaim
 * constants.
 *
 * Models include/linux/swap.h (struct swap_info_struct, the swap_map
 * encoding, SWAP_CLUSTER_MAX) and the reclaim constants of mm/internal.h.
 * The behaviour lives in mm/swapfile.ts (slots and counts),
 * mm/swap_state.ts (the swap cache and swap-in), mm/swap.ts (the LRU
 * lists) and mm/vmscan.ts (reclaim); Documentation/vm/hmm.txt, Part 5 tells
 * the whole story. In short, the life of an anonymous page that is
 * swapped out and back in:
 *
 *   1. reclaim picks the folio from the tail of the inactive anon LRU;
 *   2. add_to_swap(): a free slot is taken (swap_map[off] = SWAP_HAS_CACHE)
 *      and the folio enters the swap cache (PG_swapcache, folio->private =
 *      the entry, one folio reference held by the cache);
 *   3. try_to_unmap(): every PTE mapping the folio becomes the swap entry
 *      (each PTE adds 1 to swap_map[off]: swap_duplicate), secondary MMUs
 *      are told with MMU_NOTIFY_CLEAR, MM_ANONPAGES -> MM_SWAPENTS;
 *   4. pageout(): the bytes are written to the slot, PG_dirty is cleared;
 *   5. __remove_mapping(): the folio leaves the swap cache (SWAP_HAS_CACHE
 *      cleared) and is freed. The slot now holds the data, its count is
 *      the number of PTEs that name it;
 *   6. a fault on one of those PTEs (do_swap_page) reads the slot into a
 *      new folio that enters the swap cache again, maps it and drops that
 *      PTE's count (swap_free); the other PTEs find the same folio in the
 *      swap cache; the slot is freed when its count and SWAP_HAS_CACHE
 *      are both gone.
 *
 * swap_map[offset], one byte per slot, as in Linux:
 *
 *      7   6   5                  0
 *    +---+---+----------------------+
 *    | C | H |  count (0..0x3e)     |     0x3f = SWAP_MAP_BAD (slot 0: the header)
 *    +---+---+----------------------+
 *     C = COUNT_CONTINUED: the count goes on in a continuation
 *     H = SWAP_HAS_CACHE: a folio for this slot is in the swap cache
 *
 * Linux keeps the higher digits of a count past SWAP_MAP_MAX in
 * continuation pages (add_swap_count_continuation); this model keeps them
 * in a Map per device.
 */
import type { page } from './mm_types.js';

export const SWAP_HAS_CACHE = 0x40;      /* a folio is in the swap cache for this slot */
export const COUNT_CONTINUED = 0x80;     /* the count continues past SWAP_MAP_MAX */
export const SWAP_MAP_MAX = 0x3e;        /* largest count kept in swap_map itself */
export const SWAP_MAP_BAD = 0x3f;        /* never to be used: the header slot */
export const SWAP_COUNT_MASK = 0x3f;

/* swap_info_struct.flags */
export const SWP_USED = 1 << 0;          /* the device is configured */
export const SWP_WRITEOK = 1 << 1;       /* slots may be allocated */
export const SWP_SYNCHRONOUS_IO = 1 << 12; /* reads complete before swap_read_folio returns (zram, this model) */

/* reclaim constants (include/linux/swap.h, mm/internal.h, include/linux/mmzone.h) */
export const SWAP_CLUSTER_MAX = 32;      /* pages reclaimed or scanned in one batch */
export const DEF_PRIORITY = 12;          /* scan lru_size >> priority per round; 0 scans everything */
export const MAX_RECLAIM_RETRIES = 16;   /* allocator and memcg charge retries while reclaim progresses */

/**
 * struct swap_info_struct - one swap device.
 *
 * Slot 0 holds the swap header and is never handed out, so no swap entry
 * of a real device has offset 0 and the value 0 means "no entry"
 * (folio_alloc_swap failure). The device's bytes are an in-memory array:
 * a RAM disk with synchronous I/O, like zram without compression.
 *
 * Protected by si.lock in Linux; here every update runs without a yield
 * in between, which gives the same atomicity on one simulated CPU.
 */
export class swap_info_struct {
  flags = SWP_USED | SWP_WRITEOK | SWP_SYNCHRONOUS_IO;
  /* slots, including the header slot 0 */
  readonly max: number;
  /* usable slots (max - 1) */
  readonly pages: number;
  /* slots with a count or SWAP_HAS_CACHE */
  inuse_pages = 0;
  /* one byte per slot, layout above */
  readonly swap_map: Uint8Array;
  /* counts above SWAP_MAP_MAX, per offset (the continuation pages of Linux) */
  readonly cont = new Map<number, number>();
  /* next-fit allocation cursor, and the bounds of the free area */
  cluster_next = 1;
  /* the device's contents: max * PAGE_SIZE bytes */
  readonly data: Uint8Array;
  /* the swap cache of this device (swapper_spaces[type].i_pages): offset -> folio */
  readonly swap_cache = new Map<number, page>();
  /* mm/swap_cgroup.c: the memcg id charged for each slot, 0 for none */
  readonly swap_cgroup: Uint16Array;

  constructor(readonly type: number, nr_slots: number, readonly prio: number, page_size: number) {
    this.max = nr_slots;
    this.pages = nr_slots - 1;
    this.swap_map = new Uint8Array(nr_slots);
    this.swap_map[0] = SWAP_MAP_BAD;
    this.data = new Uint8Array(nr_slots * page_size);
    this.swap_cgroup = new Uint16Array(nr_slots);
  }
}
