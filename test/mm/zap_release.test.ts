/*
 * test/mm/zap_release.test.ts - the section-array paths of fork and of a
 * zap (the model split of session 9, mm/swap_release.ts):
 * copy_present_ptes() and zap_present_ptes() of an order-0 anonymous
 * folio, and the gather's release (free_pages_and_swap_cache() ->
 * folios_put_refs_pfn() -> mem_cgroup_uncharge_folios_pfn() ->
 * free_unref_folios_pfn()), must end the fork and every zap (munmap,
 * MADV_DONTNEED, exit) in the state the handle path
 * (struct_page_direct(false), TEST ONLY) ends it in: every struct page of
 * every frame, rss, nr_free, pgfree, every counter, memcg usage, the LRU
 * lists, the deferred split queue, page tables, virtual time and bytes.
 * The workload has every kind of entry a fork or zap meets: exclusive,
 * shared (fork), COW and zero-page PTEs, swap-cache folios and swap
 * entries, pinned pages, device-private entries, a PMD-mapped and a
 * PTE-mapped THP, hugetlb, shmem, under a memcg.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import { PAGE_SIZE, FOLL_WRITE } from '../../include/linux/mm.js';
import { __nr_to_section, type page, type mem_section } from '../../include/linux/mm_types.js';
import {
  MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_HUGETLB, MADV_NOHUGEPAGE, MADV_HUGEPAGE, MADV_DONTNEED, MADV_PAGEOUT,
  PROT_READ,
} from '../../include/uapi/asm-generic/mman.js';
import { struct_page_direct } from '../../mm/internal.js';
import { nr_free_pages, pageAllocStats, for_each_pfn_range } from '../../mm/page_alloc.js';
import { mem_cgroup_create, mem_cgroup_attach_task, mem_cgroup_subtree } from '../../mm/memcontrol.js';
import { pin_user_pages, unpin_user_pages } from '../../mm/gup.js';
import { trace_counters, get_counter } from '../../lib/sim/trace.js';
import { now } from '../../lib/sim/clock.js';
import { deferredSplitCount } from '../../mm/huge_memory_split.js';
import { TinyDev, locked } from './hmm_devmem.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';

const t = suite('mm/zap_release');
const MB = 1 << 20, TWO_MB = 2 * MB;

/* every field of every struct page of a section, as plain arrays */
function section_fields(ms: mem_section): unknown[] {
  const kinds = ms.mapping.map((m) => (m === null ? null : m.kind));
  return [ms.start_pfn, ms.flags, ms._refcount, ms._mapcount, ms.index, kinds, ms.lru_prev, ms.lru_next, ms.order,
    ms._entire_mapcount, ms._pincount, ms.private, ms.compound_head, ms.memcg,
    ms.zone_device_data === null ? null : ms.zone_device_data.map((d) => d !== null)]
    .map((a) => (a === null ? null : Array.from(a as ArrayLike<unknown>)));
}

/* the whole machine's state a zap may change */
function machine(procs: Process[], ranges: [number, number][]): unknown {
  const sections: unknown[] = [];
  for (const r of for_each_pfn_range()) {
    for (const ms of r.mem_section) if (ms !== undefined) sections.push(section_fields(ms));
  }
  const memcgs = mem_cgroup_subtree().map((m) => [m.name, m.memory.usage, m.swap.usage, ...m.lruvec.nr_pages,
    ...m.lruvec.lists.map((l) => [l.head_pfn, l.tail_pfn])]);
  const ptes = procs.map((p) => ranges.map(([a, n]) => Array.from({ length: n }, (_, i) => pte_at(p.mm, a + i * PAGE_SIZE))));
  const rss = procs.map((p) => [...p.mm.rss_stat]);
  return { sections, rss, free: nr_free_pages(), pgfree: pageAllocStats().pgfree, counters: new Map(trace_counters),
    memcgs, ptes, deferred_split: deferredSplitCount(), vtime: now() };
}

/* a hugetlb and a shmem mapping, through the handle path on both sides */
function map_others(p: Process): [number, number] {
  const h = p.mmap(0, TWO_MB, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
  p.fill32(h, TWO_MB, 0x4242);
  const s = p.mmap(0, 16 * PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
  p.fill32(s, 16 * PAGE_SIZE, 0x5151);
  return [h, s];
}

/*
 * The workload, run with the section-array path on or off; returns the
 * machine after each zap step.
 */
function scenario(direct: boolean): unknown[] {
  const old = struct_page_direct(direct);
  const out: unknown[] = [];
  try {
    const p = boot({ ram_bytes: 48 * MB, swap_bytes: 8 * MB, hugepages_2m: 2 });
    const M = mem_cgroup_create('M');
    mem_cgroup_attach_task(M, p.task);
    const N = 1500, a = p.mmap(0, N * PAGE_SIZE, RW, ANON);
    assert.is(p.madvise(a, N * PAGE_SIZE, MADV_NOHUGEPAGE), 0);
    for (let i = 1; i < N; i++) if (i !== 3) p.write32(a + i * PAGE_SIZE, 0x1000 + i);   /* page 0 a hole */
    p.read32(a + 3 * PAGE_SIZE);                                                           /* the zero page */
    const b = p.mmap(0, 3 * TWO_MB, RW, ANON);
    const bh = Math.ceil(b / TWO_MB) * TWO_MB;
    assert.is(p.madvise(bh, 2 * TWO_MB, MADV_HUGEPAGE), 0);
    p.fill32(bh, 2 * TWO_MB, 0x7777);
    assert.is(p.mprotect(bh + TWO_MB + MB, MB, PROT_READ), 0);     /* the second THP: PTE-mapped */
    const [h, s] = map_others(p);
    /* swap: 10..29 paged out, 10..19 read back (swap-cache folios mapped again), 20..29 stay swap entries */
    assert.is(p.madvise(a + 10 * PAGE_SIZE, 20 * PAGE_SIZE, MADV_PAGEOUT), 0);
    for (let i = 10; i < 20; i++) p.read32(a + i * PAGE_SIZE);
    const pins: page[] = [];
    assert.is(locked(p, function* () { return yield* pin_user_pages(p.mm, a + 50 * PAGE_SIZE, 2, FOLL_WRITE, pins); }), 2);
    const ranges: [number, number][] = [[a, N], [bh, 1024], [h, 512], [s, 16]];
    const dev = new TinyDev('dev0');
    assert.is(dev.toDevice(p, a + 60 * PAGE_SIZE, a + 68 * PAGE_SIZE).ret, 0);
    const child = p.fork();
    let procs = [p, child];
    const snap = () => out.push(machine(procs, ranges));
    snap();                                                                                 /* fork's copy */
    for (let i = 100; i < 1300; i++) child.write32(a + i * PAGE_SIZE, 0x2000 + i);          /* COW */
    child.write32(bh + 8 * PAGE_SIZE, 1);                                                   /* COW of a THP page */
    assert.is(child.madvise(a + 400 * PAGE_SIZE, 50 * PAGE_SIZE, MADV_DONTNEED), 0);
    assert.is(p.madvise(a + 5 * PAGE_SIZE, 40 * PAGE_SIZE, MADV_DONTNEED), 0);            /* hole, zero page, swap cache, swap entries */
    snap();
    assert.is(p.munmap(a + 600 * PAGE_SIZE, 100 * PAGE_SIZE), 0);
    assert.is(p.madvise(bh + TWO_MB, 300 * PAGE_SIZE, MADV_DONTNEED), 0);                 /* part of the PTE-mapped THP */
    snap();
    child.exit(0);
    p.wait(child.pid);
    procs = [p];
    snap();
    assert.is(p.munmap(a, N * PAGE_SIZE), 0);           /* pinned pages, device entries; runs across a section's end */
    snap();
    unpin_user_pages(pins);
    assert.is(p.munmap(h, TWO_MB), 0);
    snap();
    out.push(p.read32(bh + 12), p.read32(s), p.read32(bh + TWO_MB + 4 * PAGE_SIZE));
    assert.is(p.munmap(bh, 2 * TWO_MB), 0);
    assert.is(p.munmap(s, 16 * PAGE_SIZE), 0);
    snap();
    out.push(get_counter('zap_page'));
  } finally {
    struct_page_direct(old);
  }
  return out;
}

t('fork and zaps on the section arrays end every step in the state the page handles end it in', () => {
  const direct = scenario(true);
  const helpers = scenario(false);
  assert.equal(direct, helpers, 'struct pages of every frame, nr_free, pgfree, counters, memcg and LRU, page tables, vtime, bytes');
  assert.ok((direct[direct.length - 1] as number) > 1000, 'the workload zapped its pages');
  const end = (direct[direct.length - 2] as { counters: Map<string, number>; sections: unknown[] });
  for (const c of ['zap_pte_batch', 'swap_slot_free', 'zone_device_free', 'hugetlb_free', 'zap_huge_pmd', 'fault_cow']) {
    assert.ok((end.counters.get(c) ?? 0) > 0, `the workload has ${c}`);
  }
  assert.ok(end.sections.length >= 4, 'RAM and device sections dumped');
});

t.run();
