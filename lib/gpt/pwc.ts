/*
 * lib/gpt/pwc.ts - the paging-structure cache of a private table.
 *
 * Models the MMU's paging-structure caches (Intel SDM vol. 3, 4.10.3, the
 * "PDE cache"): hardware remembers, per 2 MiB region, which page-table page
 * holds its PTEs, so a TLB miss reads one entry instead of four. Linux has
 * to account for them when it frees page tables (tlb_remove_table() and the
 * flush that follows free_pgtables()); here prune() does the equivalent by
 * invalidating the line of every last-level directory it kills.
 *
 * A line maps key = floor(addr / coverage of one last-level directory) to
 * the pointer of that directory's entry 0; lookups at the last level that
 * hit it skip the upper levels (one tag compare, one read). Empty lines
 * hold NaN, which equals no key, so an address outside the table (a
 * negative or too large key, never cached) always misses and the walk
 * rejects it. Only links are cached
 * (never "no directory"), so populate() needs no invalidation; links are
 * removed only by prune(), which invalidates. The cache grows with the
 * number of last-level directories, up to PWC_MAX lines.
 *
 * Private tables only: on a table shared with worker threads a line could
 * name a directory another thread has pruned, so smp tables walk every
 * time (with Atomics) and keep no cache.
 */

const PWC_MIN = 64;
const PWC_MAX = 8192;

export class gpt_pwc {
  /** key of each line, NaN if empty (keys are exact integers below 2^53) */
  tag: Float64Array;
  /** pointer of entry 0 of the cached last-level directory */
  base: Int32Array;
  /** lines - 1 */
  mask: number;
  /** 1 / bytes covered by one last-level directory (exact: a power of two) */
  readonly inv: number;
  /** 1 / bytes covered by one last-level entry, and the entry-index mask */
  readonly pinv: number;
  readonly emask: number;
  private readonly epd: number;

  constructor(page_span: number, epd: number) {
    this.inv = 1 / (page_span * epd);
    this.pinv = 1 / page_span;
    this.emask = epd - 1;
    this.epd = epd;
    this.tag = new Float64Array(PWC_MIN).fill(NaN);
    this.base = new Int32Array(PWC_MIN);
    this.mask = PWC_MIN - 1;
  }

  /**
   * fill() - remember that the last-level directory @slot covers @addr.
   * @ndirs: live last-level directories, to size the cache
   */
  fill(addr: number, slot: number, ndirs: number): void {
    if (ndirs > this.mask + 1 && this.mask + 1 < PWC_MAX) this.resize(Math.min(PWC_MAX, 2 ** Math.ceil(Math.log2(ndirs))));
    const key = Math.floor(addr * this.inv);
    const h = key & this.mask;
    this.tag[h] = key;
    this.base[h] = slot * this.epd;
  }

  /** invalidate() - forget the directory covering @base (prune killed it). */
  invalidate(base: number): void {
    const key = Math.floor(base * this.inv);
    const h = key & this.mask;
    if (this.tag[h] === key) this.tag[h] = NaN;
  }

  /** flush() - forget everything. */
  flush(): void { this.tag.fill(NaN); }

  /* grow, keeping the lines (a flush here would make every lookup miss once more) */
  private resize(n: number): void {
    const tag = this.tag, base = this.base;
    this.tag = new Float64Array(n).fill(NaN);
    this.base = new Int32Array(n);
    this.mask = n - 1;
    for (let i = 0; i < tag.length; i++) {
      if (tag[i] !== tag[i]) continue;          /* NaN: empty */
      const h = tag[i] & this.mask;
      this.tag[h] = tag[i];
      this.base[h] = base[i];
    }
  }
}
