import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { start_kernel } from '../../mm/init.js';
import {
  alloc_pages, alloc_page, put_page, get_page, nr_free_pages, totalram_pages, ZERO_PAGE, kmap_local_page,
  pageAllocStats, copy_highpage, pfn_to_page, __free_pages, alloc_page_sleepable, alloc_pages_fastpath, wmark_pages,
  setup_per_zone_wmarks, register_pfn_range, free_unref_folios, free_unref_folios_params,
} from '../../mm/page_alloc.js';
import { folio_batch_init, folio_batch_add, folio_batch_reinit } from '../../include/linux/pagevec.js';
import type { page } from '../../include/linux/mm_types.js';
import { WMARK_LOW } from '../../include/linux/mmzone.js';
import { fail_page_alloc, setup_fault_attr } from '../../lib/fault-inject.js';
import { GFP_KERNEL, GFP_HIGHUSER_MOVABLE, __GFP_ZERO, __GFP_COMP } from '../../include/linux/gfp.js';
import { PageReserved, PageBuddy, PG_dirty, PG_buddy, PG_lru } from '../../include/linux/page-flags.js';
import { __nr_to_section, PFN_SECTION_SHIFT } from '../../include/linux/mm_types.js';
import { runSync } from '../../lib/sim/sched.js';
import { kmemleak_exempt } from '../leakcheck/uvu.js';

const t = suite('mm/page_alloc');
t.before.each(() => { start_kernel({ ram_bytes: 8 << 20 }); });

t('boot makes every frame free except the reserved zero page at pfn 0', () => {
  assert.is(totalram_pages(), 2048);
  assert.is(nr_free_pages(), 2047);
  const zp = ZERO_PAGE();
  assert.is(zp.pfn, 0);
  assert.ok(PageReserved(zp));
  assert.ok(kmap_local_page(zp).every((b) => b === 0));
});

t('a page comes back with refcount 1 and the last put frees it', () => {
  const p = alloc_page(GFP_KERNEL)!;
  assert.is(p._refcount, 1);
  assert.is(nr_free_pages(), 2046);
  get_page(p);
  put_page(p);
  assert.is(nr_free_pages(), 2046, 'still held');
  put_page(p);
  assert.is(nr_free_pages(), 2047);
  assert.is(p._refcount, 0);
  assert.throws(() => put_page(p), /underflow/);
});

t('__GFP_ZERO clears bytes a previous user left behind', () => {
  kmemleak_exempt('tests the allocator itself: it keeps the frames it allocates');
  const p = alloc_page(GFP_KERNEL)!;
  kmap_local_page(p).fill(0xaa);
  const pfn = p.pfn;
  put_page(p);
  const q = alloc_page(GFP_KERNEL | __GFP_ZERO)!;
  assert.is(q.pfn, pfn, 'the buddy allocator hands the same frame back');
  assert.ok(kmap_local_page(q).every((b) => b === 0));
});

t('a compound allocation is contiguous, aligned and links tails to the head', () => {
  const h = alloc_pages(GFP_KERNEL, 9)!;
  assert.is(h.pfn % 512, 0);
  assert.is(h.order, 9);
  assert.is(pfn_to_page(h.pfn + 511).compound_head.pfn, h.pfn);
  assert.is(nr_free_pages(), 2047 - 512);
  put_page(pfn_to_page(h.pfn + 3));      /* a put through a tail drops the folio */
  assert.is(nr_free_pages(), 2047);
});

t('running out of RAM returns null and leaves the counters consistent', () => {
  kmemleak_exempt('tests the allocator itself: it keeps the frames it allocates');
  const got = [];
  for (;;) { const p = runSync(alloc_page_sleepable(GFP_KERNEL)); if (p === null) break; got.push(p); }   /* may reclaim: the sleepable entry */
  assert.is(got.length, 2047);
  assert.is(nr_free_pages(), 0);
  assert.is(pageAllocStats().alloc_fail, 1);
  for (const p of got) put_page(p);
  assert.is(nr_free_pages(), 2047);
  assert.ok(alloc_pages(GFP_KERNEL, 10) !== null, 'buddies merged back into a 4 MiB block');
});

t('copy_highpage copies every byte; freeing a mapped page is a BUG', () => {
  kmemleak_exempt('tests the allocator itself: it keeps the frames it allocates');
  const a = alloc_page(GFP_KERNEL)!, b = alloc_page(GFP_KERNEL)!;
  kmap_local_page(a).forEach((_, i, arr) => { arr[i] = i & 0xff; });
  copy_highpage(b, a);
  assert.equal(kmap_local_page(b), kmap_local_page(a));
  b._mapcount = 0;
  assert.throws(() => __free_pages(b), /mapped/);
});

t('alloc_pages_fastpath: a page above the low watermark; else null with nothing taken or counted', () => {
  kmemleak_exempt('tests the allocator itself: it keeps the frames it allocates');
  setup_per_zone_wmarks(1024);                    /* min 256 pages, low 320 on this 2048-page machine */
  const low = wmark_pages(WMARK_LOW);
  const h = alloc_pages_fastpath(GFP_HIGHUSER_MOVABLE, 9)!;
  assert.is(h.order, 9, 'prepared as a folio, as alloc_pages_sleepable() would');
  assert.is(pfn_to_page(h.pfn + 1).compound_head.pfn, h.pfn);
  const got = [h];
  while (nr_free_pages() - 1 >= low) got.push(alloc_pages_fastpath(GFP_HIGHUSER_MOVABLE)!);
  assert.ok(got.every((p) => p !== null && p._refcount === 1));
  const before = { ...pageAllocStats() }, free = nr_free_pages();
  assert.is(alloc_pages_fastpath(GFP_HIGHUSER_MOVABLE), null, 'below the low watermark: the slow path decides');
  assert.equal({ ...pageAllocStats() }, before, 'no pgalloc, no alloc_fail');
  assert.is(nr_free_pages(), free);
  assert.ok(alloc_page(GFP_KERNEL) !== null, 'the full allocator still has pages (down to min)');
  for (const p of got) put_page(p);
});

t('alloc_pages_fastpath leaves an armed fail_page_alloc to the full call: no hit counted', () => {
  setup_fault_attr(fail_page_alloc.attr, '1,100,0,1');
  fail_page_alloc.ignore_gfp_reclaim = false;       /* ignore-gfp-wait=0: GFP_KERNEL may be failed too */
  const hits = fail_page_alloc.attr.hits;
  try {
    assert.is(alloc_pages_fastpath(GFP_KERNEL, 1), null);
    assert.is(fail_page_alloc.attr.hits, hits);
    assert.is(alloc_pages(GFP_KERNEL, 1), null, 'the full call fails it');
    assert.is(fail_page_alloc.attr.hits, hits + 1);
  } finally {
    setup_fault_attr(fail_page_alloc.attr, '1,0,0,0');
    fail_page_alloc.ignore_gfp_reclaim = true;
  }
  fail_page_alloc.ignore_gfp_reclaim = false;
  const p = alloc_pages_fastpath(GFP_KERNEL, 1)!;
  assert.is(fail_page_alloc.attr.hits, hits + 2, 'unarmed: the hit is counted as the full call counts it');
  fail_page_alloc.ignore_gfp_reclaim = true;
  put_page(p);
});

/* the free-list links of frame @pfn, read from its section's arrays: [prev, next], -1 = none */
function links(pfn: number): [number, number] {
  const ms = __nr_to_section(pfn >>> PFN_SECTION_SHIFT)!;
  return [ms.lru_prev[pfn - ms.start_pfn], ms.lru_next[pfn - ms.start_pfn]];
}

t('the buddy free lists run through the struct pages: PageBuddy heads, order, LRU links', () => {
  /* boot split block 0 for the zero page: free blocks 1 (order 0), 2 (1), 4 (2) ... 512 (9) */
  for (let o = 0; o <= 9; o++) {
    const p = pfn_to_page(1 << o);
    assert.ok(PageBuddy(p), `pfn ${1 << o} heads a free block`);
    assert.is(p.order, o);
    assert.equal(links(1 << o), [-1, -1], `alone on the order-${o} list`);
  }
  assert.not.ok(PageBuddy(pfn_to_page(3)), 'a frame inside a free block is no buddy head');
  const a = alloc_page(GFP_KERNEL)!, b = alloc_page(GFP_KERNEL)!;
  assert.equal([a.pfn, b.pfn], [1, 2], 'order 0 first, then the order-1 block split: 3 goes on the order-0 list');
  for (const p of [a, b]) {
    assert.not.ok(PageBuddy(p));
    assert.is(p.order, 0);
    assert.equal(links(p.pfn), [-1, -1], 'an allocated frame has no links');
  }
  put_page(a);
  assert.equal([links(1), links(3)], [[-1, 3], [1, -1]], 'order-0 list: 1 (the latest) then 3');
  put_page(b);                                   /* 2 merges with 3 into an order-1 block; 1 cannot merge with 0 */
  assert.not.ok(PageBuddy(pfn_to_page(3)), 'a merged buddy leaves its list');
  assert.ok(PageBuddy(pfn_to_page(2)));
  assert.is(pfn_to_page(2).order, 1);
  assert.equal([links(1), links(2)], [[-1, -1], [-1, -1]]);
  assert.is(nr_free_pages(), 2047);
  const c = alloc_pages(GFP_KERNEL, 9)!;
  assert.is(c.pfn, 512);
  assert.not.ok(PageBuddy(c));
  put_page(c);
  assert.ok(PageBuddy(pfn_to_page(512)));
  assert.throws(() => __free_pages(pfn_to_page(512), 9), /freeing free page pfn 512/, 'a double free is caught');
  assert.is(nr_free_pages(), 2047);
});

t('a bad free is a BUG naming the first fault (free_page_is_bad, bad_page); a bad reference too; nothing changes', () => {
  kmemleak_exempt('tests the allocator itself: it keeps the frames it allocates');
  const p = alloc_page(GFP_KERNEL)!;
  const free0 = nr_free_pages(), stats0 = { ...pageAllocStats() };
  const bug = (f: () => void, re: RegExp, what: string) => assert.throws(f, (e: Error) => re.test(e.message), what);
  const dev = register_pfn_range(4, 'test device');
  bug(() => __free_pages(pfn_to_page(dev.start_pfn + 1)), new RegExp(`__free_pages of non-RAM pfn ${dev.start_pfn + 1}`), 'not RAM');
  bug(() => __free_pages(ZERO_PAGE()), /freeing the zero page/, 'the zero page');
  p.flags |= 1 << PG_buddy;
  p._mapcount = 0;
  bug(() => __free_pages(p), new RegExp(`freeing free page pfn ${p.pfn}`), 'free first, though mapped too');
  p.flags &= ~(1 << PG_buddy);
  bug(() => __free_pages(p), new RegExp(`freeing mapped page pfn ${p.pfn} mapcount 1`), 'mapped, though on the LRU too');
  p._mapcount = -1;
  p.flags |= 1 << PG_lru;
  bug(() => __free_pages(p), new RegExp(`freeing page on LRU pfn ${p.pfn}`), 'on an LRU');
  p.flags &= ~(1 << PG_lru);
  assert.is(nr_free_pages(), free0, 'nothing was freed');
  assert.equal(pageAllocStats(), stats0);
  const q = alloc_page(GFP_KERNEL)!;
  put_page(q);
  bug(() => put_page(q), new RegExp(`put_page underflow pfn ${q.pfn}`), 'a put on a free page');
  bug(() => get_page(q), new RegExp(`get_page on free page pfn ${q.pfn}`), 'a get on a free page');
  put_page(p);
  assert.is(nr_free_pages(), free0 + 1);
});

t('freeing resets every struct page field of the block, lazily made ones too; the block comes back clean', () => {
  const h = alloc_pages(GFP_KERNEL | __GFP_COMP, 2)!;
  for (let i = 0; i < 4; i++) {
    const q = pfn_to_page(h.pfn + i);
    q.flags |= 1 << PG_dirty;
    q.mapping = null;
    q.index = 1000 + i;
    q.private = 77 + i;
    q._pincount = i;
  }
  h._entire_mapcount = 0;
  h._entire_mapcount = -1;
  h._pincount = 0;
  put_page(h);
  assert.is(nr_free_pages(), 2047);
  for (let i = 0; i < 4; i++) {
    const q = pfn_to_page(h.pfn + i);
    assert.is(q.flags & ~(1 << PG_buddy), 0, `flags of +${i}`);
    assert.is(q.mapping, null);
    assert.is(q.index, 0);
    assert.is(q.private, 0);
    assert.is(q._pincount, 0);
    assert.is(q.memcg, null);
    assert.is(q._entire_mapcount, -1);
    assert.is(q._mapcount, -1);
    assert.is(q.compound_head.pfn, q.pfn, 'no tail of a folio any more');
    assert.is(q._refcount, 0);
  }
  const again = alloc_pages(GFP_KERNEL | __GFP_COMP, 2)!;
  assert.is(again.pfn, h.pfn, 'the same block');
  assert.is(again.order, 2);
  for (let i = 1; i < 4; i++) {
    const q = pfn_to_page(h.pfn + i);
    assert.equal([q.index, q.private, q.flags, q.compound_head.pfn], [0, 0, 0, h.pfn], `tail +${i} clean`);
  }
  put_page(again);
});

/*
 * The model split of free_unref_folios() (mm/page_alloc.ts header): a
 * run of order-0 folios of consecutive pfns is freed as its aligned
 * blocks. Both paths run the same frees on two machines booted alike;
 * every struct page of every section (free-list links and orders
 * included), nr_free, pgfree and the order pages are allocated in
 * afterwards must be the same.
 */
t('free_unref_folios() frees runs of consecutive order-0 folios as aligned blocks and leaves the state freeing them one by one leaves', () => {
  const run = (runs: boolean): unknown[] => {
    start_kernel({ ram_bytes: 16 << 20 });
    free_unref_folios_params.runs = runs;
    const out: unknown[] = [];
    const dump = (): void => {
      for (let n = 0; n < 4; n++) {
        const ms = __nr_to_section(n);
        if (ms === undefined) { out.push(null); continue; }
        out.push([ms.flags, ms._refcount, ms._mapcount, ms.order, ms.lru_prev, ms.lru_next, ms.compound_head ?? []].map((a) => Array.from(a)));
      }
      out.push(nr_free_pages(), pageAllocStats().pgfree);
    };
    const free = (list: page[]): void => {        /* as folios_put_refs() hands them over: batches of 31 */
      const fb = folio_batch_init();
      for (const f of list) {
        f._refcount = 0;
        if (folio_batch_add(fb, f) === 0) { free_unref_folios(fb); folio_batch_reinit(fb); }
      }
      if (fb.nr > 0) free_unref_folios(fb);
    };
    try {
      const pages: page[] = [];
      for (let i = 0; i < 3000; i++) pages.push(alloc_page(GFP_KERNEL)!);
      const big = alloc_pages(GFP_KERNEL | __GFP_COMP, 2)!;
      const more: page[] = [];
      for (let i = 0; i < 40; i++) more.push(alloc_page(GFP_KERNEL)!);
      assert.ok(pages.every((p, i) => p.pfn === pages[0].pfn + i), 'the allocator hands out ascending pfns');
      const at = (a: number, b: number): page[] => pages.slice(a, b);
      free([pages[100]]);
      free([pages[103]]);                           /* free buddies outside the runs */
      free(at(101, 103).concat(at(104, 140)));      /* a run from an odd pfn around a free page */
      free(at(200, 212).reverse());                 /* descending: page by page */
      free([pages[500], pages[502], pages[501]]);   /* not ascending */
      free(at(1010, 1040));                         /* across a section boundary */
      free(at(300, 310).concat([big], more.slice(0, 20), at(310, 330)));
      dump();
      const rest = pages.filter((p) => p._refcount > 0);
      free(rest.concat(more.slice(20)));            /* everything else, in address order: whole sections merge */
      dump();
      const again: page[] = [];
      for (let i = 0; i < 64; i++) again.push(alloc_page(GFP_KERNEL)!);
      out.push(again.map((p) => p.pfn));
      free(again);
    } finally {
      free_unref_folios_params.runs = true;
    }
    return out;
  };
  const per_page = run(false);
  assert.equal(run(true), per_page);
});

t('a bad page in a run is a BUG at that page, with the pages before it freed, as page by page', () => {
  kmemleak_exempt('the page the BUG refused stays allocated');
  const pages: page[] = [];
  for (let i = 0; i < 5; i++) pages.push(alloc_page(GFP_KERNEL)!);
  const free0 = nr_free_pages();
  pages[3]._mapcount = 0;                       /* still mapped */
  const fb = folio_batch_init();
  for (const f of pages) { f._refcount = 0; folio_batch_add(fb, f); }
  assert.throws(() => free_unref_folios(fb), new RegExp(`freeing mapped page pfn ${pages[3].pfn} `));
  assert.is(nr_free_pages(), free0 + 3);
  assert.is(pages[3]._mapcount, 0, 'the bad page is left as it was');
  pages[3]._mapcount = -1;
  pages[3]._refcount = 1;
});

t.run();
