/*
 * drivers/gpu/mockgpu/uvm_perf_prefetch.ts - the tree prefetcher: which
 * pages of a 2 MiB VA block to migrate along with the faulted ones.
 *
 * Follows NVIDIA UVM's uvm_perf_prefetch.c (our own code, same rule):
 *
 *  1. every faulted page first grows to its 64 KiB big page (16 pages),
 *     unless a page of that big page is thrashing (moving it again would
 *     feed the thrashing);
 *  2. a binary counter tree over the block's 512 4 KiB leaves counts, per
 *     subtree, the pages that are resident on the destination or about to
 *     be (faulted, grown);
 *  3. for each faulted page, climb from its leaf to the root and keep the
 *     largest subtree whose count exceeds uvm_perf_prefetch_threshold
 *     percent (51) of its pages: the whole subtree is fetched;
 *  4. nothing is prefetched when fewer than uvm_perf_prefetch_min_faults
 *     pages faulted, or when the prefetcher is off.
 *
 * A leaf outside the block's VMA (or that cannot move) is not a page of
 * the tree: it is neither counted nor prefetched, and a subtree's size is
 * its number of valid leaves (UVM: the tree spans the block's region).
 *
 * The caller (uvm_va_block_residency.ts) supplies the masks and does not
 * prefetch away from the preferred location. Result pages appear in the
 * trace as Migration events with cause "prefetch" and in the counter
 * prefetched_pages.
 */
import { UVM_CHUNK_SIZE_64K, UVM_VA_BLOCK_SIZE } from '../../../include/linux/mockgpu.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { uvm_perf_params } from './uvm_perf_module.js';

/** Leaves of the tree: 4 KiB pages per 2 MiB block. */
export const PAGES_PER_UVM_VA_BLOCK = UVM_VA_BLOCK_SIZE / PAGE_SIZE;      /* 512 */
const PAGES_PER_BIG_PAGE = UVM_CHUNK_SIZE_64K / PAGE_SIZE;                /* 16 */
const TREE_LEVELS = Math.log2(PAGES_PER_UVM_VA_BLOCK);                    /* 9 above the leaves */

/**
 * struct uvm_perf_prefetch_masks - per leaf of one block, 1 or 0.
 * @valid: the page may be prefetched (in the VMA, migratable)
 * @resident: already resident on the destination
 * @faulted: faulted in this service
 * @thrashing: thrashing (no big-page growth around it); may be null
 */
export interface uvm_perf_prefetch_masks {
  valid: Uint8Array;
  resident: Uint8Array;
  faulted: Uint8Array;
  thrashing: Uint8Array | null;
}

/* counts[level][node]: occupied leaves of each subtree; level 0 = leaves */
function build_tree(leaves: Uint8Array): Uint16Array[] {
  const counts: Uint16Array[] = [Uint16Array.from(leaves)];
  for (let l = 1; l <= TREE_LEVELS; l++) {
    const below = counts[l - 1]!, cur = new Uint16Array(below.length / 2);
    for (let n = 0; n < cur.length; n++) cur[n] = below[2 * n]! + below[2 * n + 1]!;
    counts.push(cur);
  }
  return counts;
}

/**
 * uvm_perf_prefetch_compute() - the prefetch mask of one block.
 * Return: per leaf, 1 for a page to migrate beyond the faulted ones
 * (never a faulted, resident or invalid page).
 * Context: any; pure.
 */
export function uvm_perf_prefetch_compute(m: uvm_perf_prefetch_masks): Uint8Array {
  const N = PAGES_PER_UVM_VA_BLOCK;
  const out = new Uint8Array(N);
  let nfaults = 0;
  for (let i = 0; i < N; i++) nfaults += m.faulted[i]!;
  if (!uvm_perf_params.uvm_perf_prefetch_enable || nfaults === 0 || nfaults < uvm_perf_params.uvm_perf_prefetch_min_faults) {
    return out;
  }
  /* 1. grow each fault to its big page unless a page there thrashes */
  const grown = Uint8Array.from(m.faulted);
  for (let b = 0; b < N; b += PAGES_PER_BIG_PAGE) {
    let faulted = false, thrashing = false;
    for (let i = b; i < b + PAGES_PER_BIG_PAGE; i++) {
      if (m.faulted[i]) faulted = true;
      if (m.thrashing !== null && m.thrashing[i]) thrashing = true;
    }
    if (faulted && !thrashing) for (let i = b; i < b + PAGES_PER_BIG_PAGE; i++) grown[i] = 1;
  }
  /* 2. the counter tree over valid leaves: occupancy and size */
  const occ = new Uint8Array(N);
  for (let i = 0; i < N; i++) occ[i] = m.valid[i]! & (m.resident[i]! | grown[i]!);
  const count = build_tree(occ), size = build_tree(m.valid);
  const threshold = uvm_perf_params.uvm_perf_prefetch_threshold;
  const take = Uint8Array.from(grown);
  /* 3. per faulted page: the largest subtree over the threshold */
  for (let i = 0; i < N; i++) {
    if (!m.faulted[i]) continue;
    let best = -1;
    for (let l = 1; l <= TREE_LEVELS; l++) {
      const n = i >> l, sz = size[l]![n]!;
      if (sz > 0 && count[l]![n]! * 100 > threshold * sz) best = l;
    }
    if (best < 0) continue;
    const first = (i >> best) << best;
    for (let k = first; k < first + (1 << best); k++) take[k] = 1;
  }
  for (let i = 0; i < N; i++) out[i] = take[i]! & m.valid[i]! & (m.faulted[i]! ^ 1) & (m.resident[i]! ^ 1);
  return out;
}

/** prefetchMaskRuns() - the [first, last] leaf runs of @mask set to 1. */
export function prefetchMaskRuns(mask: Uint8Array): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    let j = i;
    while (j + 1 < mask.length && mask[j + 1]) j++;
    runs.push([i, j]);
    i = j;
  }
  return runs;
}
