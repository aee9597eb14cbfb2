import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, recordNotifier, starts, pte_at } from '../helpers.js';
import { runAs, type Process } from '../../tools/include/nolibc/nolibc.js';
import { MADV_HUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { EINVAL, ENOMEM } from '../../include/uapi/asm-generic/errno.js';
import type { page } from '../../include/linux/mm_types.js';
import {
  FOLL_WRITE, FOLL_LONGTERM, ZONE_MOVABLE, ZONE_NORMAL, page_zonenum, page_mapcount,
} from '../../include/linux/mm.js';
import { pte_pfn, pte_write } from '../../include/linux/pgtable.js';
import { PageAnonExclusive } from '../../include/linux/page-flags.js';
import {
  pin_user_pages_unlocked, get_user_pages_unlocked, unpin_user_pages, folio_maybe_dma_pinned, page_maybe_dma_pinned,
  GUP_PIN_COUNTING_BIAS,
} from '../../mm/gup.js';
import { folio_is_longterm_pinnable } from '../../mm/gup_longterm.js';
import { pfn_to_page, totalram_pages, ZERO_PAGE, kmap_local_page as kmap } from '../../mm/page_alloc.js';
import { get_counter } from '../../lib/sim/trace.js';

const t = suite('mm/gup_longterm');
const MB = 1 << 20, PG = 4096;
const hex = (n: number) => n.toString(16);
let p: Process;
let normal_end = 0;            /* first pfn of ZONE_MOVABLE */

/* 64 MiB of RAM, the top 48 MiB ZONE_MOVABLE; the buddy allocator hands out low frames first */
t.before.each(() => {
  p = boot({ ram_bytes: 64 * MB, movablecore: 48 * MB });
  normal_end = totalram_pages() - 48 * MB / PG;
});

/* fill ZONE_NORMAL with a filler mapping, then map n pages: they land in ZONE_MOVABLE */
function movable_pages(n: number): { filler: number; a: number } {
  const filler = p.mmap(0, 16 * MB, RW, ANON);
  p.fill32(filler, 16 * MB, 0);
  const a = p.mmap(0, n * PG, RW, ANON);
  p.fill32(a, n * PG, 300);
  for (let i = 0; i < n; i++) assert.is(page_zonenum(pfn_to_page(pte_pfn(pte_at(p.mm, a + i * PG)))), ZONE_MOVABLE);
  return { filler, a };
}

t('the zones: pages below the movablecore boundary are ZONE_NORMAL and pinnable, above it are not', () => {
  assert.is(page_zonenum(pfn_to_page(normal_end - 1)), ZONE_NORMAL);
  assert.is(page_zonenum(pfn_to_page(normal_end)), ZONE_MOVABLE);
  assert.ok(folio_is_longterm_pinnable(pfn_to_page(normal_end - 1)));
  assert.not.ok(folio_is_longterm_pinnable(pfn_to_page(normal_end)));
  assert.ok(folio_is_longterm_pinnable(ZERO_PAGE()), 'the zero page always');
});

t('a FOLL_LONGTERM pin of ZONE_MOVABLE pages migrates them to ZONE_NORMAL first (CLEAR per page), data intact', () => {
  const { filler, a } = movable_pages(4);
  const old = [0, 1, 2, 3].map((i) => pte_pfn(pte_at(p.mm, a + i * PG)));
  p.munmap(filler, 16 * MB);                 /* ZONE_NORMAL has room again */
  const seen = recordNotifier(p);
  const pages: page[] = [];
  assert.is(runAs(p.task, pin_user_pages_unlocked(p.mm, a, 4, FOLL_WRITE | FOLL_LONGTERM, pages)), 4);
  assert.equal(starts(seen), [0, 1, 2, 3].map((i) => `CLEAR ${hex(a + i * PG)}-${hex(a + (i + 1) * PG)}`),
    'try_to_migrate of each page');
  for (const [i, pg] of pages.entries()) {
    assert.is(page_zonenum(pg), ZONE_NORMAL, `page ${i} moved out of ZONE_MOVABLE`);
    assert.ok(pg.pfn !== old[i]);
    assert.is(pte_pfn(pte_at(p.mm, a + i * PG)), pg.pfn, 'the process maps the pinned copy');
    assert.ok(pte_write(pte_at(p.mm, a + i * PG)) && PageAnonExclusive(pg));
    assert.is(pg._refcount, 1 + GUP_PIN_COUNTING_BIAS);
    assert.is(page_mapcount(pg), 1);
    assert.is(pfn_to_page(old[i])._refcount, 0, 'the old page is free');
  }
  assert.is(p.check32(a, 4 * PG, 300), -1);
  assert.is(get_counter('pgmigrate_success'), 4);
  p.write32(a, 0x5a5a);
  assert.is(new DataView(kmap(pages[0]).buffer, kmap(pages[0]).byteOffset).getUint32(0, true), 0x5a5a,
    'the device sees what the process writes');
  unpin_user_pages(pages);
  assert.not.ok(page_maybe_dma_pinned(pfn_to_page(pte_pfn(pte_at(p.mm, a)))));
});

t('no ZONE_NORMAL page for the copy: the long-term pin fails with -ENOMEM and holds nothing', () => {
  const { a } = movable_pages(2);
  const before = [pte_at(p.mm, a), pte_at(p.mm, a + PG)];
  const pages: page[] = [];
  assert.is(runAs(p.task, pin_user_pages_unlocked(p.mm, a, 2, FOLL_WRITE | FOLL_LONGTERM, pages)), -ENOMEM);
  assert.is(pages.length, 0);
  const pg = pfn_to_page(pte_pfn(pte_at(p.mm, a)));
  assert.not.ok(folio_maybe_dma_pinned(pg), 'no pin left behind');
  assert.is(pg._refcount, 1);
  assert.equal([pte_pfn(pte_at(p.mm, a)), pte_pfn(pte_at(p.mm, a + PG))], before.map(pte_pfn), 'still the old pages');
  assert.is(p.check32(a, 2 * PG, 300), -1);
  const short: page[] = [];
  assert.is(runAs(p.task, pin_user_pages_unlocked(p.mm, a, 2, FOLL_WRITE, short)), 2, 'a short-term pin may hold them');
  unpin_user_pages(short);
});

t('a long-term pin of ZONE_NORMAL pages pins them where they are; FOLL_LONGTERM without FOLL_PIN is -EINVAL', () => {
  const a = p.mmap(0, 2 * PG, RW, ANON);
  p.fill32(a, 2 * PG, 1);
  const pfn = pte_pfn(pte_at(p.mm, a));
  assert.is(page_zonenum(pfn_to_page(pfn)), ZONE_NORMAL);
  const pages: page[] = [];
  assert.is(runAs(p.task, pin_user_pages_unlocked(p.mm, a, 2, FOLL_WRITE | FOLL_LONGTERM, pages)), 2);
  assert.is(pages[0].pfn, pfn, 'not moved');
  assert.ok(page_maybe_dma_pinned(pages[0]));
  assert.is(get_counter('pgmigrate_success'), 0);
  unpin_user_pages(pages);
  assert.is(runAs(p.task, get_user_pages_unlocked(p.mm, a, 1, FOLL_LONGTERM, [])), -EINVAL);
});

t('a long-term pin of a THP in ZONE_MOVABLE splits it and migrates the pinned pages', () => {
  const filler = p.mmap(0, 16 * MB, RW, ANON);
  p.fill32(filler, 16 * MB, 0);
  const a = p.mmap(0, 2 * MB, RW, ANON);
  p.madvise(a, 2 * MB, MADV_HUGEPAGE);
  p.fill32(a, 2 * MB, 9);
  p.munmap(filler, 16 * MB);
  const pages: page[] = [];
  assert.is(runAs(p.task, pin_user_pages_unlocked(p.mm, a + 8 * PG, 2, FOLL_WRITE | FOLL_LONGTERM, pages)), 2);
  for (const pg of pages) {
    assert.is(pg.order, 0);
    assert.is(page_zonenum(pg), ZONE_NORMAL);
    assert.ok(folio_maybe_dma_pinned(pg));
  }
  assert.is(pte_pfn(pte_at(p.mm, a + 8 * PG)), pages[0].pfn);
  assert.is(get_counter('thp_split_page'), 1);
  assert.is(p.check32(a, 2 * MB, 9), -1, 'every byte of the former THP');
  unpin_user_pages(pages);
});

t.run();
