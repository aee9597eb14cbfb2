/*
 * test/mm/swap_helpers.ts - helpers shared by the swap, reclaim, memcg,
 * pagemap and MADV_FREE suites: boot with swap, force reclaim, read
 * pagemap through /proc/self/pagemap, an invariant checker that
 * recounts swap slots, rss, the LRU lists and memcg charges from the page
 * tables, and a sleeping interval subscriber that records whether the
 * ranges reclaim sends it are blockable.
 */
import * as assert from 'uvu/assert';
import { boot } from '../helpers.js';
import { runAs, type Process } from '../../tools/include/nolibc/nolibc.js';
import type { mm_struct, page } from '../../include/linux/mm_types.js';
import { MM_ANONPAGES, MM_SWAPENTS } from '../../include/linux/mm_types.js';
import { PAGE_SIZE, PMD_SIZE } from '../../include/linux/mm.js';
import { pte_present, pte_none, pte_pfn, PMD_LEVEL, _PAGE_PSE } from '../../include/linux/pgtable.js';
import { pte_to_swp_entry, non_swap_entry, swp_entry } from '../../include/linux/swapops.js';
import { SWAP_HAS_CACHE, SWAP_COUNT_MASK } from '../../include/linux/swap.js';
import { PageLRU, PageSwapCache, folio_test_anon } from '../../include/linux/page-flags.js';
import { NR_LRU_LISTS } from '../../include/linux/mmzone.js';
import { runSync, type Sleepable } from '../../lib/sim/sched.js';
import type { mmu_interval_notifier, mmu_notifier_range } from '../../include/linux/mmu_notifier.js';
import { mmu_interval_notifier_insert, mmu_interval_set_seq, mmu_notifier_range_blockable } from '../../mm/mmu_notifier.js';
import { msleep, now, NSEC_PER_MSEC } from '../../lib/sim/clock.js';
import { pte_offset_map, ptep_get } from '../../mm/pgtable.js';
import { pfn_to_page, is_zero_pfn } from '../../mm/page_alloc.js';
import { swap_devices, __swap_count } from '../../mm/swapfile.js';
import { mem_cgroup_subtree } from '../../mm/memcontrol.js';
import { shrink_all_memory } from '../../mm/vmscan.js';
import { fget, do_sys_open, close_fd } from '../../mm/file.js';

export const MiB = 1 << 20;

/** Boot a machine with RAM and swap (bytes) and spawn one process. */
export function boot_swap(ram_bytes: number, swap_bytes: number, min_free_kbytes = 0): Process {
  return boot({ ram_bytes, swap_bytes, min_free_kbytes });
}

/** Reclaim until a pass frees nothing (two looks per page: the first clears the accessed bit). */
export function reclaim_all(): number {
  let total = 0;
  for (;;) {
    const n = runSync(shrink_all_memory(1 << 30));
    if (n === 0) return total;
    total += n;
  }
}

/** What a sleeping_subscriber() saw: blockable ranges, the non-blockable ones it refused, and the sleeps that lasted. */
export interface sleeping_sub_stats { blockable: number; refused: number; slept: number }

/**
 * sleeping_subscriber() - insert an interval notifier over [start, start +
 * length) of @p's mm that behaves like a device which must wait for its
 * TLB shootdown: a non-blockable range is refused (counted in refused:
 * reclaim then keeps the page), a blockable one sleeps @sleep_ms (counted
 * in blockable, and in slept when the sleep really lasted).
 * Return: the live counters.
 */
export function sleeping_subscriber(p: Process, start: number, length: number, sleep_ms = 1): sleeping_sub_stats {
  const st: sleeping_sub_stats = { blockable: 0, refused: 0, slept: 0 };
  const sub = { start: 0, last: 0, invalidate_seq: 0 } as unknown as mmu_interval_notifier;
  const ops = {
    *invalidate(s: mmu_interval_notifier, r: mmu_notifier_range, seq: number): Sleepable<boolean> {
      if (!mmu_notifier_range_blockable(r)) { st.refused++; return false; }
      st.blockable++;
      const t0 = now();
      if (sleep_ms > 0) yield* msleep(sleep_ms);
      if (now() - t0 >= sleep_ms * NSEC_PER_MSEC) st.slept++;
      mmu_interval_set_seq(s, seq);
      return true;
    },
  };
  assert.is(runAs(p.task, mmu_interval_notifier_insert(sub, p.mm, start, length, ops as never)), 0);
  return st;
}

/** The raw PTE for addr (0 when there is no PTE page). */
export function pte_of(mm: mm_struct, addr: number): number {
  const ptep = pte_offset_map(mm, addr);
  return ptep < 0 ? 0 : ptep_get(mm, ptep);
}

/* The present pfn mapping addr through a PTE or a huge PMD leaf, or -1; and the swap PTE, or 0. */
function leaf_of(mm: mm_struct, addr: number): { pfn: number; swp: number } {
  const ptep = pte_offset_map(mm, addr);
  if (ptep >= 0) {
    const pte = ptep_get(mm, ptep);
    if (pte_present(pte)) return { pfn: pte_pfn(pte), swp: 0 };
    return { pfn: -1, swp: pte_none(pte) ? 0 : pte };
  }
  const pmdp = mm.pgd.lookup(addr, PMD_LEVEL);
  const pmd = pmdp < 0 ? 0 : mm.pgd.load(pmdp);
  if (!pte_present(pmd) || !(pmd & _PAGE_PSE)) return { pfn: -1, swp: 0 };
  return { pfn: pte_pfn(pmd) + Math.floor((addr % PMD_SIZE) / PAGE_SIZE), swp: 0 };
}

/** Read n pagemap entries from vaddr through /proc/self/pagemap (open, ->read at vaddr/4096*8, close). */
export function pagemap(p: Process, vaddr: number, n: number): bigint[] {
  return runAs(p.task, (function* () {
    const fd = yield* do_sys_open(p.task, '/proc/self/pagemap', 0);
    assert.ok(fd >= 0, `open pagemap: ${fd}`);
    const f = fget(p.task, fd)!;
    const buf = new Uint8Array(n * 8);
    const got = yield* f.f_op.read!(f, buf, (vaddr / PAGE_SIZE) * 8);
    assert.is(got, n * 8);
    yield* close_fd(p.task, fd);
    const v = new DataView(buf.buffer);
    return Array.from({ length: n }, (_, i) => v.getBigUint64(i * 8, true));
  })());
}

/** Read a /proc/self text file whole. */
export function proc_text(p: Process, path: string): string {
  return runAs(p.task, (function* () {
    const fd = yield* do_sys_open(p.task, path, 0);
    assert.ok(fd >= 0, `open ${path}: ${fd}`);
    const f = fget(p.task, fd)!;
    const buf = new Uint8Array(1 << 20);
    const got = yield* f.f_op.read!(f, buf, 0);
    yield* close_fd(p.task, fd);
    return new TextDecoder().decode(buf.subarray(0, got));
  })());
}

/** One smaps field of a text block, in kB. */
export function smaps_field(text: string, field: string): number {
  const m = text.match(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm'));
  if (m === null) throw new Error(`no ${field} in ${text}`);
  return Number(m[1]);
}

/**
 * check_invariants() - recount from the page tables of mms and compare:
 *  - every swap slot's count equals the PTEs naming it, SWAP_HAS_CACHE is
 *    set exactly when the swap cache holds a folio for it, and no slot is
 *    in use that nothing names;
 *  - MM_ANONPAGES and MM_SWAPENTS of each mm equal its present anon PTEs
 *    and swap PTEs;
 *  - each LRU list is consistent (links, sizes, PG_lru, live pages) and
 *    each memcg's usage equals the pages charged to it that are reachable.
 */
export function check_invariants(mms: mm_struct[]): void {
  const named = new Map<number, number>();
  const charged = new Map<unknown, number>();
  for (const mm of mms) {
    let anon = 0, swp = 0;
    for (const vma of mm.mmap) {
      for (let a = vma.vm_start; a < vma.vm_end; a += PAGE_SIZE) {
        const { pfn, swp: pte } = leaf_of(mm, a);
        if (pfn >= 0) {
          if (is_zero_pfn(pfn)) continue;
          const pg = pfn_to_page(pfn);
          assert.ok(pg.compound_head._refcount > 0, `mapped page pfn ${pg.pfn} is free`);
          if (folio_test_anon(pg.compound_head)) anon++;
          continue;
        }
        if (pte === 0) continue;
        const e = pte_to_swp_entry(pte);
        if (non_swap_entry(e)) continue;
        swp++;
        named.set(e, (named.get(e) ?? 0) + 1);
      }
    }
    assert.is(mm.rss_stat[MM_ANONPAGES], anon, `mm${mm.id} MM_ANONPAGES`);
    assert.is(mm.rss_stat[MM_SWAPENTS], swp, `mm${mm.id} MM_SWAPENTS`);
  }
  for (const si of swap_devices()) {
    let inuse = 0;
    for (let off = 1; off < si.max; off++) {
      const map = si.swap_map[off];
      const e = swp_entry(si.type, off);
      const count = __swap_count(e);
      const cached = si.swap_cache.get(off);
      if (map !== 0) inuse++;
      assert.is(count, named.get(e) ?? 0, `slot ${si.type}:${off} count`);
      assert.is((map & SWAP_HAS_CACHE) !== 0, cached !== undefined, `slot ${si.type}:${off} SWAP_HAS_CACHE`);
      if (cached !== undefined) {
        assert.ok(PageSwapCache(cached) && cached.private === e, `swap cache folio of ${off}`);
      }
      assert.ok((map & SWAP_COUNT_MASK) <= 0x3e);
    }
    assert.is(inuse, si.inuse_pages, `swap type ${si.type} inuse_pages`);
  }
  for (const memcg of mem_cgroup_subtree()) {
    const lv = memcg.lruvec;
    for (let lru = 0; lru < NR_LRU_LISTS; lru++) {
      let n = 0, prev: page | null = null;
      for (let f = lv.lists[lru].head; f !== null; f = f.lru_next) {
        assert.is(f.lru_prev?.pfn, prev?.pfn, 'lru links');
        assert.ok(PageLRU(f) && f._refcount > 0, `pfn ${f.pfn} on the LRU but not live`);
        charged.set(f.memcg, (charged.get(f.memcg) ?? 0) + 1);
        n += 1 << f.order;
        prev = f;
      }
      assert.is(lv.lists[lru].tail?.pfn, prev?.pfn, 'lru tail');
      assert.is(lv.nr_pages[lru], n, `lru ${lru} size`);
    }
  }
  for (const memcg of mem_cgroup_subtree()) {
    if (memcg.parent === null) continue;
    const own = mem_cgroup_subtree(memcg).reduce((s, m) => s + (charged.get(m) ?? 0), 0);
    assert.is(memcg.memory.usage, own, `memcg ${memcg.name} usage equals its LRU pages`);
  }
}
