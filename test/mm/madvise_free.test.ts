import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RW, ANON, recordNotifier, starts } from '../helpers.js';
import { boot_swap, reclaim_all, pte_of, check_invariants, MiB } from './swap_helpers.js';
import { MM_ANONPAGES, MM_SWAPENTS } from '../../include/linux/mm_types.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { pte_present, pte_none, pte_dirty, pte_young, pte_pfn } from '../../include/linux/pgtable.js';
import { PageSwapBacked, PageLRU } from '../../include/linux/page-flags.js';
import { LRU_INACTIVE_FILE } from '../../include/linux/mmzone.js';
import {
  MADV_FREE, MADV_PAGEOUT, MAP_SHARED, MAP_ANONYMOUS,
} from '../../include/uapi/asm-generic/mman.js';
import { EINVAL, ENOMEM } from '../../include/uapi/asm-generic/errno.js';
import { get_counter } from '../../lib/sim/trace.js';
import { pfn_to_page, nr_free_pages } from '../../mm/page_alloc.js';
import { get_nr_swap_pages, total_swap_pages } from '../../mm/swapfile.js';
import { root_mem_cgroup } from '../../mm/memcontrol.js';

const t = suite('mm/madvise_free');
const P = PAGE_SIZE;
const hex = (n: number) => n.toString(16);

t('MADV_FREE: clean, old PTEs on the file LRU; reclaim discards the pages without swap I/O, they read as zero', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 8 * P, RW, ANON);
  p.fill32(a, 8 * P, 1);
  const seen = recordNotifier(p);
  assert.is(p.madvise(a, 8 * P, MADV_FREE), 0);
  assert.equal(starts(seen), [`CLEAR ${hex(a)}-${hex(a + 8 * P)}`], 'one CLEAR over the advised range');
  const f = pfn_to_page(pte_pfn(pte_of(p.mm, a)));
  assert.not.ok(pte_dirty(pte_of(p.mm, a)) || pte_young(pte_of(p.mm, a)), 'the PTE is clean and old');
  assert.ok(!PageSwapBacked(f) && PageLRU(f), 'lazily freed: not swap-backed');
  assert.is(root_mem_cgroup().lruvec.nr_pages[LRU_INACTIVE_FILE], 8, 'on the inactive file list');
  assert.is(get_counter('pglazyfree'), 8);
  assert.is(p.read32(a + 4), 2, 'until reclaim comes, the data is still there');
  seen.length = 0;
  assert.is(reclaim_all(), 8);
  assert.equal(starts(seen).sort(), Array.from({ length: 8 }, (_, i) => `CLEAR ${hex(a + i * P)}-${hex(a + (i + 1) * P)}`).sort());
  assert.is(get_counter('pglazyfreed'), 8);
  assert.is(get_counter('pswpout'), 0, 'no swap I/O');
  assert.is(p.mm.rss_stat[MM_ANONPAGES], 0);
  for (let i = 0; i < 8; i++) assert.ok(pte_none(pte_of(p.mm, a + i * P)));
  assert.ok(p.read(a, 8 * P).every((b) => b === 0), 'every byte reads as zero');
  check_invariants([p.mm]);
});

t('a write after MADV_FREE keeps the whole page: the dirty PTE stops the discard', () => {
  const p = boot_swap(16 * MiB, 0);                /* no swap: anything kept stays in memory */
  const a = p.mmap(0, 4 * P, RW, ANON);
  p.fill32(a, 4 * P, 10);
  assert.is(p.madvise(a, 4 * P, MADV_FREE), 0);
  p.write32(a + P + 8, 0xfeed);                   /* no fault: the PTE was writable, the MMU sets dirty */
  assert.ok(pte_dirty(pte_of(p.mm, a + P)));
  reclaim_all();
  assert.ok(pte_present(pte_of(p.mm, a + P)), 'page 1 kept');
  const f = pfn_to_page(pte_pfn(pte_of(p.mm, a + P)));
  assert.ok(PageSwapBacked(f), 'swap-backed again');
  assert.ok(get_counter('pglazyfree_fail') >= 1);
  for (let i = 0; i < 1024; i++) assert.is(p.read32(a + P + i * 4), i === 2 ? 0xfeed : 10 + 1024 + i);
  for (const i of [0, 2, 3]) assert.ok(pte_none(pte_of(p.mm, a + i * P)), `page ${i} discarded`);
  assert.is(p.mm.rss_stat[MM_ANONPAGES], 1);
  check_invariants([p.mm]);
});

t('with swap, a page written after MADV_FREE is swapped out instead of discarded', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 2 * P, RW, ANON);
  p.fill32(a, 2 * P, 20);
  assert.is(p.madvise(a, 2 * P, MADV_FREE), 0);
  p.write32(a, 7);
  reclaim_all();
  assert.ok(pte_none(pte_of(p.mm, a + P)));
  assert.is(p.mm.rss_stat[MM_SWAPENTS], 1, 'page 0 went to swap');
  assert.is(p.read32(a), 7);
  assert.is(p.read32(a + 4), 21);
  assert.is(p.read32(a + P), 0);
});

t('MADV_FREE frees swapped-out pages of the range at once', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 4 * P, RW, ANON);
  p.fill32(a, 4 * P, 30);
  assert.is(p.madvise(a, 4 * P, MADV_PAGEOUT), 0);
  assert.is(p.mm.rss_stat[MM_SWAPENTS], 4);
  p.read32(a);                                    /* page 0 back, still in the swap cache */
  assert.is(p.madvise(a, 4 * P, MADV_FREE), 0);
  assert.is(p.mm.rss_stat[MM_SWAPENTS], 0);
  assert.is(get_nr_swap_pages(), total_swap_pages(), 'every slot freed, the cached one too');
  for (let i = 1; i < 4; i++) assert.ok(pte_none(pte_of(p.mm, a + i * P)));
  assert.is(p.read32(a + 2 * P), 0);
  assert.is(p.read32(a), 30, 'page 0 is resident (lazily freed now), not lost yet');
  check_invariants([p.mm]);
});

t('MADV_FREE by the parent of a page shared with a fork child leaves the child its data', () => {
  const p = boot_swap(16 * MiB, 0);
  const a = p.mmap(0, 2 * P, RW, ANON);
  p.fill32(a, 2 * P, 40);
  const c = p.fork();
  assert.is(p.madvise(a, 2 * P, MADV_FREE), 0);
  reclaim_all();
  assert.is(p.read32(a), 0, 'the parent gave its pages up');
  assert.is(c.check32(a, 2 * P, 40), -1, 'the child did not');
  assert.equal([p.mm.rss_stat[MM_ANONPAGES], c.mm.rss_stat[MM_ANONPAGES]], [0, 2]);
  assert.ok(PageSwapBacked(pfn_to_page(pte_pfn(pte_of(c.mm, a)))), 'the child\'s dirty PTE made them swap-backed again');
  check_invariants([p.mm, c.mm]);
});

t('without swap, memory pressure reclaims MADV_FREE pages instead of failing', () => {
  const p = boot_swap(8 * MiB, 0);
  const free0 = nr_free_pages();
  const a = p.mmap(0, 6 * MiB, RW, ANON);
  p.fill32(a, 6 * MiB, 0);
  assert.is(p.madvise(a, 6 * MiB, MADV_FREE), 0);
  const b = p.mmap(0, 6 * MiB, RW, ANON);
  p.fill32(b, 6 * MiB, 50);                      /* more than is free: direct reclaim discards the lazy pages */
  assert.ok(get_counter('pglazyfreed') > 0 && get_counter('allocstall') > 0);
  assert.is(p.check32(b, 6 * MiB, 50), -1);
  assert.ok(p.mm.rss_stat[MM_ANONPAGES] <= free0);
  check_invariants([p.mm]);
});

t('errno: EINVAL for shared memory and misalignment, ENOMEM over a hole (the mapped parts are still advised)', () => {
  const p = boot_swap(16 * MiB, 0);
  const s = p.mmap(0, P, RW, MAP_SHARED | MAP_ANONYMOUS);
  p.write32(s, 1);
  assert.is(p.madvise(s, P, MADV_FREE), -EINVAL, 'shmem is not anonymous memory');
  const a = p.mmap(0, 3 * P, RW, ANON);
  p.fill32(a, 3 * P, 1);
  assert.is(p.madvise(a + 1, P, MADV_FREE), -EINVAL);
  assert.is(p.munmap(a + P, P), 0);
  assert.is(p.madvise(a, 3 * P, MADV_FREE), -ENOMEM);
  assert.not.ok(PageSwapBacked(pfn_to_page(pte_pfn(pte_of(p.mm, a + 2 * P)))), 'the part after the hole was advised');
  assert.is(p.madvise(a, 0, MADV_FREE), 0);
});

t.run();
