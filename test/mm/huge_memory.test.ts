import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, recordNotifier, starts, pte_at } from '../helpers.js';
import { runAs, Process } from '../../tools/include/nolibc/nolibc.js';
import { PROT_READ, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTNEED, MADV_COLLAPSE } from '../../include/uapi/asm-generic/mman.js';
import { EINVAL, EAGAIN } from '../../include/uapi/asm-generic/errno.js';
import { MM_ANONPAGES, MMF_HUGE_ZERO_FOLIO } from '../../include/linux/mm_types.js';
import type { page, mm_struct } from '../../include/linux/mm_types.js';
import { FOLL_WRITE, FOLL_LONGTERM, get_mm_counter, page_mapcount } from '../../include/linux/mm.js';
import { pmd_trans_huge, pmd_pfn, pmd_write, pte_present, pte_pfn, pte_write } from '../../include/linux/pgtable.js';
import { PageAnonExclusive, PageUptodate, folio_test_large } from '../../include/linux/page-flags.js';
import { UserFault } from '../../mm/fault.js';
import { pmd_off } from '../../mm/pgtable.js';
import { pfn_to_page, nr_free_pages, is_zero_pfn } from '../../mm/page_alloc.js';
import {
  hpage_pmd_size, nr_anon_thps, thp_enabled_show, thp_enabled_store, is_huge_zero_pmd, huge_zero_folio_allocated,
} from '../../mm/huge_memory.js';
import { THP_ZERO_PAGE_ALLOC } from '../../include/linux/huge_mm.js';
import { shrink_all_memory } from '../../mm/vmscan.js';
import { split_folio, deferred_split_scan, folio_large_mapcount } from '../../mm/huge_memory_split.js';
import { pin_user_pages_unlocked, unpin_user_pages, folio_maybe_dma_pinned } from '../../mm/gup.js';
import { folio_lock, folio_unlock } from '../../mm/filemap.js';
import { get_page, put_page } from '../../mm/page_alloc.js';
import { get_counter } from '../../lib/sim/trace.js';
import { SIGSEGV } from '../../include/uapi/asm-generic/signal.js';

const t = suite('mm/huge_memory');
const MB = 1 << 20, TWO_MB = 2 * MB;
const hex = (n: number) => n.toString(16);
let p: Process;
t.before.each(() => { p = boot(); });

/* the PMD entry for addr (0 when none) */
function pmd_at(mm: mm_struct, addr: number): number {
  const pmdp = pmd_off(mm, addr);
  return pmdp < 0 ? 0 : mm.pgd.load(pmdp);
}

/* a 2 MiB-aligned MADV_HUGEPAGE area of len bytes, filled with the word pattern i + base */
function thp_area(len = TWO_MB, base = 0): number {
  const a = p.mmap(0, len, RW, ANON);
  assert.is(a % TWO_MB, 0, 'anonymous mappings of whole 2 MiB multiples are PMD aligned');
  assert.is(p.madvise(a, len, MADV_HUGEPAGE), 0);
  p.fill32(a, len, base);
  return a;
}

t('hpage_pmd_size is 2 MiB and the THP mode reads and writes like the sysfs file', () => {
  assert.is(hpage_pmd_size(), TWO_MB);
  assert.is(thp_enabled_show(), 'always [madvise] never');
  assert.is(thp_enabled_store('always'), 0);
  assert.is(thp_enabled_show(), '[always] madvise never');
  assert.is(thp_enabled_store('sometimes'), -EINVAL);
});

t('a write fault in a MADV_HUGEPAGE area maps a zeroed 2 MiB folio with one PMD leaf', () => {
  const a = thp_area(TWO_MB, 7);
  const pmd = pmd_at(p.mm, a);
  assert.ok(pmd_trans_huge(pmd) && pmd_write(pmd), 'a writable huge PMD leaf');
  assert.is(pte_at(p.mm, a), -1, 'no PTE page below it');
  const f = pfn_to_page(pmd_pfn(pmd));
  assert.is(f.order, 9);
  assert.is(f.pfn % 512, 0, 'the frame is 2 MiB aligned');
  assert.is(folio_large_mapcount(f), 1);
  assert.ok(PageAnonExclusive(f));
  assert.is(nr_anon_thps(), 512, 'AnonHugePages: 2048 kB');
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 512);
  assert.is(get_counter('thp_fault_alloc'), 1);
  assert.is(p.check32(a, TWO_MB, 7), -1);
});

t('the THP mode decides: madvise needs MADV_HUGEPAGE, always does not, never and MADV_NOHUGEPAGE refuse', () => {
  const a = p.mmap(0, TWO_MB, RW, ANON);
  p.write32(a, 1);
  assert.ok(pte_present(pte_at(p.mm, a)), 'madvise mode without MADV_HUGEPAGE: 4 KiB pages');
  thp_enabled_store('always');
  const b = p.mmap(0, TWO_MB, RW, ANON);
  p.write32(b, 1);
  assert.ok(pmd_trans_huge(pmd_at(p.mm, b)), 'always: a THP');
  const c = p.mmap(0, TWO_MB, RW, ANON);
  assert.is(p.madvise(c, TWO_MB, MADV_NOHUGEPAGE), 0);
  p.write32(c, 1);
  assert.ok(pte_present(pte_at(p.mm, c)), 'MADV_NOHUGEPAGE wins over always');
  thp_enabled_store('never');
  const d = p.mmap(0, TWO_MB, RW, ANON);
  assert.is(p.madvise(d, TWO_MB, MADV_HUGEPAGE), 0);
  p.write32(d, 1);
  assert.ok(pte_present(pte_at(p.mm, d)), 'never: no THP even when asked');
  assert.is(nr_anon_thps(), 512);
});

t('a read fault maps the huge zero page; the first write replaces it by a THP inside a CLEAR', () => {
  const a = p.mmap(0, TWO_MB, RW, ANON);
  p.madvise(a, TWO_MB, MADV_HUGEPAGE);
  assert.is(p.read32(a + 12345 * 4), 0);
  const zero = pmd_at(p.mm, a);
  assert.ok(is_huge_zero_pmd(zero) && !pmd_write(zero), 'the huge zero page, read-only');
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 0, 'the zero page is not rss');
  const seen = recordNotifier(p);
  p.write32(a + 4096, 0xabcd);
  assert.equal(starts(seen), [`CLEAR ${hex(a)}-${hex(a + TWO_MB)}`]);
  const pmd = pmd_at(p.mm, a);
  assert.ok(pmd_trans_huge(pmd) && pmd_write(pmd) && !is_huge_zero_pmd(pmd));
  assert.is(p.read32(a + 4096), 0xabcd);
  assert.is(p.read32(a + 8192), 0);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 512);
});

t('a partial munmap splits the PMD (CLEAR), keeps every remaining byte, and the split shrinker frees the hole', () => {
  const a = thp_area(TWO_MB, 100);
  const head = pfn_to_page(pmd_pfn(pmd_at(p.mm, a)));
  const seen = recordNotifier(p);
  const free0 = nr_free_pages();
  assert.is(p.munmap(a + MB, MB), 0);
  assert.equal(starts(seen), [`CLEAR ${hex(a)}-${hex(a + TWO_MB)}`, `UNMAP ${hex(a + MB)}-${hex(a + TWO_MB)}`]);
  assert.ok(pte_present(pte_at(p.mm, a)), 'the kept half is PTE-mapped');
  assert.ok(folio_test_large(head), 'the folio stays large until the shrinker runs');
  assert.is(nr_free_pages(), free0, 'the unmapped half is still allocated');
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 256);
  assert.is(p.check32(a, MB, 100), -1, 'every byte of the kept half');
  assert.is(runAs(p.task, deferred_split_scan()), 1);
  assert.is(head.order, 0, 'split into small folios');
  assert.is(nr_free_pages(), free0 + 256, 'the 256 unmapped pages are free');
  assert.is(p.check32(a, MB, 100), -1, 'and the data survived the folio split');
  assert.is(get_counter('thp_split_page'), 1);
  assert.throws(() => p.read32(a + MB), (e: unknown) => e instanceof UserFault && e.sig === SIGSEGV);
});

t('a partial mprotect splits the PMD, keeps every byte, and the read-only half refuses writes', () => {
  const a = thp_area(TWO_MB, 3);
  assert.is(p.mprotect(a, MB, PROT_READ), 0);
  assert.ok(!pte_write(pte_at(p.mm, a)) && pte_write(pte_at(p.mm, a + MB)));
  assert.is(p.check32(a, TWO_MB, 3), -1);
  assert.throws(() => p.write32(a, 1), (e: unknown) => e instanceof UserFault && e.sig === SIGSEGV);
  p.write32(a + MB, 0x77);
  assert.is(p.read32(a + MB), 0x77);
});

t('mprotect of the whole 2 MiB changes the PMD leaf in place', () => {
  const a = thp_area(TWO_MB, 3);
  const seen = recordNotifier(p);
  assert.is(p.mprotect(a, TWO_MB, PROT_READ), 0);
  assert.equal(starts(seen), [`PROTECTION_VMA ${hex(a)}-${hex(a + TWO_MB)}`]);
  const pmd = pmd_at(p.mm, a);
  assert.ok(pmd_trans_huge(pmd) && !pmd_write(pmd));
  assert.is(p.mprotect(a, TWO_MB, RW), 0);
  assert.ok(pmd_write(pmd_at(p.mm, a)), 'writable again: an exclusive, dirty THP');
  assert.is(p.check32(a, TWO_MB, 3), -1);
});

t('fork shares the THP read-only; a write splits only the writer\'s PMD and copies one 4 KiB page', () => {
  const a = thp_area(TWO_MB, 9);
  const head = pfn_to_page(pmd_pfn(pmd_at(p.mm, a)));
  const c = p.fork();
  assert.ok(pmd_trans_huge(pmd_at(c.mm, a)) && !pmd_write(pmd_at(c.mm, a)) && !pmd_write(pmd_at(p.mm, a)));
  assert.is(folio_large_mapcount(head), 2);
  assert.not.ok(PageAnonExclusive(head));
  assert.is(get_mm_counter(c.mm, MM_ANONPAGES), 512);
  const seen = recordNotifier(c);
  c.write32(a + 8, 0xc0ffee);
  assert.equal(starts(seen), [`CLEAR ${hex(a)}-${hex(a + TWO_MB)}`, `CLEAR ${hex(a)}-${hex(a + 4096)}`],
    'split of the child\'s PMD, then the COW of one page');
  assert.ok(pte_pfn(pte_at(c.mm, a)) !== head.pfn, 'the child copied the first page');
  assert.is(pte_pfn(pte_at(c.mm, a + 4096)), head.pfn + 1, 'and maps the rest of the THP');
  assert.ok(pmd_trans_huge(pmd_at(p.mm, a)), 'the parent still maps the THP by its PMD');
  assert.is(c.read32(a + 8), 0xc0ffee);
  assert.is(p.read32(a + 8), 11, 'the parent does not see the child\'s write');
  p.write32(a + MB, 5);
  assert.is(c.check32(a + 4096, TWO_MB - 4096, 9 + 1024), -1, 'the child\'s data');
  assert.is(p.read32(a + MB), 5);
  c.exit(0);
  p.wait();
  assert.is(p.check32(a + 4096, MB - 4096, 9 + 1024), -1);
});

/*
 * The huge zero folio is shared by reference count: each mm that maps it
 * holds one until it is torn down (MMF_HUGE_ZERO_FOLIO), and reclaim's
 * shrinker frees the 512 frames once only the shrinker's own is left.
 * Without the shrinker a 4 MiB machine keeps half its RAM in a page no one
 * maps (fuzz seeds 40869 and 41011: HMM_DMIRROR_RELEASE's __GFP_NOFAIL
 * eviction BUGged with 512 frames there).
 */
t('the huge zero folio is freed by reclaim once every mm that used it is gone, not before', () => {
  const read_zero = (q: Process, a: number) => assert.is(q.read32(a + 777 * 4), 0);
  const a = p.mmap(0, TWO_MB, RW, ANON);
  p.madvise(a, TWO_MB, MADV_HUGEPAGE);
  const alloc0 = get_counter(THP_ZERO_PAGE_ALLOC);
  read_zero(p, a);
  assert.is(get_counter(THP_ZERO_PAGE_ALLOC), alloc0 + 1);
  assert.ok(p.mm.flags & MMF_HUGE_ZERO_FOLIO, 'the mm holds a reference');
  const child = p.fork();
  assert.ok(child.mm.flags & MMF_HUGE_ZERO_FOLIO, 'fork copied the PMD and took a reference for the child');
  p.madvise(a, TWO_MB, MADV_DONTNEED);
  assert.is(pmd_at(p.mm, a), 0, 'no mm maps it in the parent any more');
  runAs(p.task, shrink_all_memory(1024));
  assert.ok(huge_zero_folio_allocated(), 'still held: by the parent\'s mm (until exit) and the child\'s');
  p.exit(0);
  runAs(child.task, shrink_all_memory(1024));
  assert.ok(huge_zero_folio_allocated(), 'the child still holds it');
  read_zero(child, a);
  const free0 = nr_free_pages();
  child.exit(0);
  const q = Process.spawn('q');
  runAs(q.task, shrink_all_memory(1024));
  assert.ok(!huge_zero_folio_allocated(), 'the shrinker freed it');
  assert.ok(nr_free_pages() - free0 >= 512, `its 512 frames are free (${nr_free_pages() - free0})`);
  const b = q.mmap(0, TWO_MB, RW, ANON);
  q.madvise(b, TWO_MB, MADV_HUGEPAGE);
  read_zero(q, b);
  assert.is(get_counter(THP_ZERO_PAGE_ALLOC), alloc0 + 2, 'the next read fault allocates a new one');
  assert.ok(is_huge_zero_pmd(pmd_at(q.mm, b)));
  assert.ok(q.read(b, TWO_MB).every((x) => x === 0), 'it reads as zeroes');
});

t('MADV_DONTNEED of part of a THP splits it; that part reads back as zeroes, the rest is kept', () => {
  const a = thp_area(TWO_MB, 1);
  const seen = recordNotifier(p);
  assert.is(p.madvise(a + 4096, 8192, MADV_DONTNEED), 0);
  assert.equal(starts(seen), [`CLEAR ${hex(a + 4096)}-${hex(a + 3 * 4096)}`, `CLEAR ${hex(a)}-${hex(a + TWO_MB)}`],
    'the advised range, then __split_huge_pmd() over the whole PMD');
  assert.is(p.read32(a + 4096), 0);
  assert.is(p.read32(a + 8192 + 4092), 0);
  assert.is(p.read32(a), 1);
  assert.is(p.check32(a + 3 * 4096, TWO_MB - 3 * 4096, 1 + 3 * 1024), -1);
});

t('split_folio of a pinned THP fails with -EAGAIN; unpinned, it splits into 512 folios with the data in place', () => {
  const a = thp_area(TWO_MB, 42);
  const head = pfn_to_page(pmd_pfn(pmd_at(p.mm, a)));
  const pages: page[] = [];
  assert.is(runAs(p.task, pin_user_pages_unlocked(p.mm, a + 4096, 1, FOLL_WRITE, pages)), 1);
  assert.is(pages[0].pfn, head.pfn + 1, 'GUP returns the page inside the THP');
  assert.is(head._pincount, 1, 'a pin of a large folio is counted in _pincount');
  assert.ok(folio_maybe_dma_pinned(head));
  get_page(head);
  runAs(p.task, folio_lock(head));
  assert.is(runAs(p.task, split_folio(head)), -EAGAIN, 'a pinned folio cannot be split');
  assert.ok(pmd_trans_huge(pmd_at(p.mm, a)), 'and nothing changed');
  unpin_user_pages(pages);
  const seen = recordNotifier(p);
  assert.is(runAs(p.task, split_folio(head)), 0);
  folio_unlock(head);
  put_page(head);
  assert.equal(starts(seen), [`CLEAR ${hex(a)}-${hex(a + TWO_MB)}`, `CLEAR ${hex(a)}-${hex(a + TWO_MB)}`],
    'the PMD split, then the unmap of the folio (try_to_migrate)');
  for (let i = 0; i < 512; i += 73) {
    const pg = pfn_to_page(head.pfn + i);
    assert.is(pg.order, 0);
    assert.is(pg._refcount, 1);
    assert.is(page_mapcount(pg), 1);
    assert.is(pte_pfn(pte_at(p.mm, a + i * 4096)), head.pfn + i);
    assert.ok(pte_write(pte_at(p.mm, a + i * 4096)) && PageAnonExclusive(pg));
  }
  assert.is(p.check32(a, TWO_MB, 42), -1);
  assert.is(nr_anon_thps(), 0);
});

t('fork of a pinned THP splits the parent\'s PMD and gives the child copies of the pinned pages', () => {
  const a = thp_area(TWO_MB, 5);
  const head = pfn_to_page(pmd_pfn(pmd_at(p.mm, a)));
  const pages: page[] = [];
  assert.is(runAs(p.task, pin_user_pages_unlocked(p.mm, a, 2, FOLL_WRITE | FOLL_LONGTERM, pages)), 2);
  const c = p.fork();
  assert.ok(pte_present(pte_at(p.mm, a)), 'the parent\'s PMD was split');
  assert.ok(pte_pfn(pte_at(c.mm, a)) !== head.pfn, 'the child has its own copy of the pinned first page');
  assert.ok(pte_write(pte_at(p.mm, a)), 'the parent keeps writing to the pinned folio');
  p.write32(a, 1234);
  assert.is(c.read32(a), 5, 'the DMA target is not shared with the child');
  assert.is(c.check32(a + 4, TWO_MB - 4, 6), -1);
  unpin_user_pages(pages);
});

/*
 * Sibling of fuzz seed 5163 (test/mm/swap.test.ts): each way the kernel
 * makes an anonymous folio outside new_anon_page() marks it uptodate, as
 * Linux does, or a later swap-cache hit on it would be SIGBUS.
 */
t('the THP fault, MADV_COLLAPSE and fork\'s copy of a pinned page each make an uptodate anonymous folio', () => {
  const a = thp_area(TWO_MB, 3);
  assert.ok(PageUptodate(pfn_to_page(pmd_pfn(pmd_at(p.mm, a)))), 'vma_alloc_anon_folio_pmd');
  const pages: page[] = [];
  assert.is(runAs(p.task, pin_user_pages_unlocked(p.mm, a, 1, FOLL_WRITE | FOLL_LONGTERM, pages)), 1);
  const c = p.fork();
  const copy = pfn_to_page(pte_pfn(pte_at(c.mm, a)));
  assert.ok(copy.pfn !== pages[0].pfn && PageUptodate(copy), 'copy_present_page');
  unpin_user_pages(pages);
  c.exit(0);
  const b = p.mmap(0, TWO_MB, RW, ANON);
  p.fill32(b, TWO_MB, 9);
  assert.is(p.madvise(b, TWO_MB, MADV_COLLAPSE), 0);
  const nf = pfn_to_page(pmd_pfn(pmd_at(p.mm, b)));
  assert.ok(nf.order === 9 && PageUptodate(nf), 'collapse_huge_page');
  assert.is(p.check32(b, TWO_MB, 9), -1);
});

/*
 * Fuzz seed 21191: a device mirrored the huge zero page (pfn 512 + i);
 * MADV_DONTNEED of the top of its 2 MiB split the PMD into PTEs of the
 * small zero page (pfn 0) with no invalidation outside the advised range,
 * so the mirror kept the old pfn. Linux's zap_pmd_range() splits through
 * __split_huge_pmd(), which invalidates the whole 2 MiB (CLEAR).
 */
t('MADV_DONTNEED of part of a huge zero PMD splits it with a CLEAR over the whole 2 MiB', () => {
  const a = p.mmap(0, TWO_MB, RW, ANON);
  assert.is(p.madvise(a, TWO_MB, MADV_HUGEPAGE), 0);
  assert.is(p.read32(a), 0);
  assert.ok(is_huge_zero_pmd(pmd_at(p.mm, a)), 'a read maps the huge zero page');
  const seen = recordNotifier(p);
  const cut = a + 441 * 4096;
  assert.is(p.madvise(cut, a + TWO_MB - cut, MADV_DONTNEED), 0);
  assert.equal(starts(seen), [`CLEAR ${hex(cut)}-${hex(a + TWO_MB)}`, `CLEAR ${hex(a)}-${hex(a + TWO_MB)}`],
    'the advised range, then the split of the PMD it covers in part');
  const pte = pte_at(p.mm, a);
  assert.ok(pte_present(pte) && is_zero_pfn(pte_pfn(pte)), 'below the cut: the small zero page');
  assert.is(pte_at(p.mm, cut), 0, 'the advised part is empty');
  assert.is(p.read32(a + 4096 * 440), 0);
});

t('MADV_COLLAPSE builds a THP from small pages, holes as zeroes, with a CLEAR over the 2 MiB', () => {
  const a = p.mmap(0, TWO_MB, RW, ANON);
  p.fill32(a, TWO_MB, 11);
  assert.is(p.madvise(a + 4096 * 7, 4096, MADV_DONTNEED), 0);
  assert.ok(pte_present(pte_at(p.mm, a)), '4 KiB pages (madvise mode, no MADV_HUGEPAGE)');
  const free0 = nr_free_pages();
  const seen = recordNotifier(p);
  assert.is(p.madvise(a, TWO_MB, MADV_COLLAPSE), 0, 'MADV_COLLAPSE does not need MADV_HUGEPAGE');
  assert.equal(starts(seen), [`CLEAR ${hex(a)}-${hex(a + TWO_MB)}`]);
  const pmd = pmd_at(p.mm, a);
  assert.ok(pmd_trans_huge(pmd) && pmd_write(pmd));
  assert.is(pfn_to_page(pmd_pfn(pmd)).order, 9);
  assert.is(p.check32(a, 4096 * 7, 11), -1);
  assert.is(p.read32(a + 4096 * 7), 0, 'the hole became zeroes');
  assert.is(p.check32(a + 4096 * 8, TWO_MB - 4096 * 8, 11 + 8 * 1024), -1);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 512);
  assert.is(nr_free_pages(), free0 - 1, '511 small pages freed, one 2 MiB folio taken');
  assert.is(get_counter('thp_collapse_alloc'), 1);
});

t('MADV_COLLAPSE errno: -EINVAL with VM_NOHUGEPAGE or nothing mapped, -EAGAIN for a pinned page', () => {
  const a = p.mmap(0, TWO_MB, RW, ANON);
  assert.is(p.madvise(a, TWO_MB, MADV_COLLAPSE), -EINVAL, 'nothing populated');
  p.fill32(a, TWO_MB, 1);
  const pages: page[] = [];
  assert.is(runAs(p.task, pin_user_pages_unlocked(p.mm, a + 4096, 1, FOLL_WRITE, pages)), 1);
  assert.is(p.madvise(a, TWO_MB, MADV_COLLAPSE), -EAGAIN, 'a pinned page cannot be copied away');
  unpin_user_pages(pages);
  p.madvise(a, TWO_MB, MADV_NOHUGEPAGE);
  assert.is(p.madvise(a, TWO_MB, MADV_COLLAPSE), -EINVAL);
  p.madvise(a, TWO_MB, MADV_HUGEPAGE);
  assert.is(p.madvise(a, TWO_MB, MADV_COLLAPSE), 0);
  assert.is(p.check32(a, TWO_MB, 1), -1);
});

t('GUP of a THP: a read pin of a shared THP unshares it first, the pin sees the page the process maps', () => {
  const a = thp_area(TWO_MB, 8);
  const c = p.fork();
  const pages: page[] = [];
  assert.is(runAs(c.task, pin_user_pages_unlocked(c.mm, a + MB, 1, 0, pages)), 1);
  assert.is(pte_pfn(pte_at(c.mm, a + MB)), pages[0].pfn, 'the pinned page is the one the child maps');
  assert.ok(PageAnonExclusive(pages[0]), 'exclusive to the child: the parent\'s writes cannot reach it');
  p.write32(a + MB, 99);
  assert.is(c.read32(a + MB), 8 + MB / 4);
  unpin_user_pages(pages);
});

t.run();
