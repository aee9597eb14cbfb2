/*
 * include/linux/gfp.ts - allocation flags.
 *
 * Models include/linux/gfp_types.h. The simulator has one zone of RAM plus
 * ZONE_DEVICE ranges, so the zone modifiers only document intent; what the
 * allocator honours is __GFP_ZERO (clear the page), __GFP_NOFAIL (never
 * return null: a simulator BUG if RAM is exhausted), __GFP_NORETRY/
 * __GFP_NOWARN (do not run reclaim, fail quietly) and __GFP_RECLAIM (may
 * reclaim: mm/vmscan.ts).
 */
export const __GFP_DMA = 0x01;
export const __GFP_HIGHMEM = 0x02;
export const __GFP_MOVABLE = 0x08;
export const __GFP_IO = 0x40;
export const __GFP_FS = 0x80;
export const __GFP_ZERO = 0x100;
export const __GFP_DIRECT_RECLAIM = 0x400;
export const __GFP_KSWAPD_RECLAIM = 0x800;
export const __GFP_NOWARN = 0x2000;
export const __GFP_RETRY_MAYFAIL = 0x4000;
export const __GFP_NOFAIL = 0x8000;
export const __GFP_NORETRY = 0x10000;
export const __GFP_COMP = 0x40000;
export const __GFP_HARDWALL = 0x100000;
export const __GFP_ACCOUNT = 0x400000;

export const __GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;
export const GFP_ATOMIC = __GFP_KSWAPD_RECLAIM;
export const GFP_NOWAIT = __GFP_KSWAPD_RECLAIM;
export const GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS;
export const GFP_USER = GFP_KERNEL | __GFP_HARDWALL;
export const GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM;
export const GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE;
export const GFP_TRANSHUGE_LIGHT = (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOWARN) & ~__GFP_RECLAIM;

export type gfp_t = number;
