/*
 * test/mm/zap.test.ts - tearing down page-table entries (mm/zap.ts): the
 * mmu_gather frees a large zap in batches, each after its TLB flush.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import { PAGE_SIZE, get_mm_counter, page_mapcount } from '../../include/linux/mm.js';
import { MM_ANONPAGES } from '../../include/linux/mm_types.js';
import { MADV_NOHUGEPAGE, MADV_HUGEPAGE, MADV_DONTNEED, PROT_READ } from '../../include/uapi/asm-generic/mman.js';
import { pte_pfn } from '../../include/linux/pgtable.js';
import { nr_free_pages, pfn_to_page } from '../../mm/page_alloc.js';
import { get_counter } from '../../lib/sim/trace.js';
import { MMU_GATHER_MAX_PAGES } from '../../mm/zap.js';
import { folio_lruvec } from '../../mm/memcontrol.js';
import { folio_lru_list } from '../../mm/swap.js';
import { PageLRU } from '../../include/linux/page-flags.js';
import type { page } from '../../include/linux/mm_types.js';
import type { lruvec } from '../../include/linux/mmzone.js';

const t = suite('mm/zap');

t('munmap of more pages than a gather holds flushes and frees them batch by batch, each range once', () => {
  const p = boot({ ram_bytes: 256 << 20 });
  const pages = 2 * MMU_GATHER_MAX_PAGES + 1000, len = pages * PAGE_SIZE;
  const a = p.mmap(0, len, RW, ANON);
  assert.is(p.madvise(a, len, MADV_NOHUGEPAGE), 0);
  const free = nr_free_pages();
  for (let i = 0; i < pages; i++) p.write8(a + i * PAGE_SIZE, i & 0xff);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), pages);
  const flushes = get_counter('tlb_flush'), flushed = get_counter('tlb_flush_pages');
  assert.is(p.munmap(a, len), 0);
  /* the gather is flushed when full at the end of a PTE page (512 entries), then once at the end */
  const batches = Math.ceil(pages / (Math.ceil(MMU_GATHER_MAX_PAGES / 512) * 512));
  assert.is(get_counter('tlb_flush') - flushes, batches);
  assert.is(get_counter('tlb_flush_pages') - flushed, pages, 'each batch flushes only its own range');
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 0);
  assert.ok(nr_free_pages() >= free - 8, 'every page came back (page tables aside)');
  assert.is(pte_at(p.mm, a), -1);
});

t('the zap of a PTE-mapped THP drops each run of it with one gather entry: rss, mapcounts and references right, the folio freed once', () => {
  const p = boot({ ram_bytes: 64 << 20 });
  const MB = 1 << 20, TWO_MB = 2 * MB;
  const a = p.mmap(0, TWO_MB, RW, ANON);
  assert.is(p.madvise(a, TWO_MB, MADV_HUGEPAGE), 0);
  p.fill32(a, TWO_MB, 9);
  assert.is(p.mprotect(a + MB, MB, PROT_READ), 0);     /* split: 512 PTEs map the large folio */
  const head = pfn_to_page(pte_pfn(pte_at(p.mm, a)));
  assert.is(head.order, 9);
  const ref0 = head._refcount, batches = get_counter('zap_pte_batch'), zapped = get_counter('zap_page');
  /* MADV_DONTNEED of 100 pages in the middle of the first VMA: one run */
  assert.is(p.madvise(a + 10 * PAGE_SIZE, 100 * PAGE_SIZE, MADV_DONTNEED), 0);
  assert.is(get_counter('zap_pte_batch') - batches, 1);
  assert.is(get_counter('zap_page') - zapped, 100, 'zap_page counts pages, not gather entries');
  assert.is(head._refcount, ref0 - 100);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 412);
  for (let i = 0; i < 512; i++) {
    const want = i >= 10 && i < 110 ? 0 : 1;
    if (page_mapcount(pfn_to_page(head.pfn + i)) !== want) assert.unreachable(`page ${i}: mapcount`);
  }
  assert.is(head.order, 9, 'still one folio, still allocated');
  assert.is(p.check32(a + 110 * PAGE_SIZE, TWO_MB - 110 * PAGE_SIZE, 9 + 110 * 1024), -1);
  const free = nr_free_pages();
  assert.is(p.munmap(a, TWO_MB), 0);
  assert.is(get_counter('zap_pte_batch') - batches, 4, 'then one run per piece left: [0, 10), [110, 256), [256, 512)');
  assert.is(get_counter('zap_page') - zapped, 512);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 0);
  assert.ok(nr_free_pages() >= free + 512, 'the folio was freed, once');
});

t('zap_page counts the PTEs whose page went to the gather: not the zero page\'s', () => {
  const p = boot({ ram_bytes: 64 << 20 });
  const n = 8, len = n * PAGE_SIZE;
  const a = p.mmap(0, len, RW, ANON);
  assert.is(p.madvise(a, len, MADV_NOHUGEPAGE), 0);
  for (let i = 0; i < n; i++) {
    if (i % 3 === 0) p.write8(a + i * PAGE_SIZE, 1); else p.read8(a + i * PAGE_SIZE);   /* reads map the zero page */
  }
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 3);
  const z = get_counter('zap_page'), free = nr_free_pages();
  assert.is(p.munmap(a, len), 0);
  assert.is(get_counter('zap_page') - z, 3, 'pages 0, 3 and 6');
  assert.ok(nr_free_pages() >= free + 3, 'their frames are free again');
  assert.is(pte_at(p.mm, a + PAGE_SIZE), -1, 'the zero-page PTEs are gone too');
});

/* the pfns of one LRU list from head to tail, checking each back link, the tail and the size */
function lru_pfns(lv: lruvec, lru: number): number[] {
  const l = lv.lists[lru], out: number[] = [];
  let prev: page | null = null;
  for (let f = l.head; f !== null; f = f.lru_next) {
    assert.is(f.lru_prev?.pfn ?? -1, prev?.pfn ?? -1, `back link of pfn ${f.pfn}`);
    assert.ok(PageLRU(f));
    out.push(f.pfn);
    prev = f;
  }
  assert.is(l.tail_pfn, prev?.pfn ?? -1, 'tail');
  assert.is(l.head_pfn, out.length ? out[0] : -1, 'head');
  assert.is(lv.nr_pages[lru], out.length, 'list size');
  return out;
}

t('teardown unlinks folios from the LRU by pfn at the tail, the head and the middle: links, ends and sizes stay right', () => {
  const p = boot({ ram_bytes: 64 << 20 });
  const n = 12, len = n * PAGE_SIZE;
  const a = p.mmap(0, len, RW, ANON);
  assert.is(p.madvise(a, len, MADV_NOHUGEPAGE), 0);
  for (let i = 0; i < n; i++) p.write8(a + i * PAGE_SIZE, i + 1);
  const pfn = (i: number) => pte_pfn(pte_at(p.mm, a + i * PAGE_SIZE));
  const first = pfn_to_page(pfn(0)), lv = folio_lruvec(first), lru = folio_lru_list(first);
  const order = lru_pfns(lv, lru);
  const mine = Array.from({ length: n }, (_, i) => pfn(n - 1 - i));    /* newest first: the last fault is the head */
  assert.equal(order.filter((x) => mine.includes(x)), mine);
  const others = order.filter((x) => !mine.includes(x));
  const gone = new Set<number>();
  const check = (): void => assert.equal(lru_pfns(lv, lru), [...mine.filter((x) => !gone.has(x)), ...others]);
  /* page 0 is the oldest (the tail end of ours), page n-1 the head; 5 and 6 are in the middle */
  for (const i of [0, n - 1, 5, 6, 1, n - 2]) {
    const f = pfn(i);
    assert.is(p.madvise(a + i * PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED), 0);
    gone.add(f);
    assert.not.ok(PageLRU(pfn_to_page(f)), `pfn ${f} off the LRU`);
    check();
  }
  assert.is(p.munmap(a, len), 0);
  for (const f of mine) gone.add(f);
  check();
  assert.equal(lru_pfns(lv, lru), others, 'only the folios of others are left');
});

t.run();
