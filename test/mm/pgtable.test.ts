/*
 * test/mm/pgtable.test.ts - the PTE-batch helpers of mm/pgtable.ts
 * (folio_pte_batch, set_ptes, wrprotect_ptes, get_and_clear_full_ptes) on
 * a PTE-mapped THP: a run ends where the pfns, the folio, the protection
 * or (unless ignored) the dirty bits stop matching.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../helpers.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { PROT_READ, MADV_HUGEPAGE, MADV_DONTNEED } from '../../include/uapi/asm-generic/mman.js';
import { pte_pfn, pte_write, pte_dirty, pte_young, pte_mkclean, pte_wrprotect, pte_mkold } from '../../include/linux/pgtable.js';
import {
  pte_offset_map, ptep_get, folio_pte_batch, set_ptes, wrprotect_ptes, get_and_clear_full_ptes,
  FPB_IGNORE_DIRTY,
} from '../../mm/pgtable.js';
import { pfn_to_page } from '../../mm/page_alloc.js';

const t = suite('mm/pgtable');
const MB = 1 << 20, TWO_MB = 2 * MB, P = 4096;
let p: Process;
t.before.each(() => { p = boot(); });

/* a 2 MiB THP, then split to 512 PTEs by an mprotect round trip of its last page (the VMA is split and merged back) */
function pte_mapped_thp(): { a: number; ptep: number } {
  const a = p.mmap(0, TWO_MB, RW, ANON);
  assert.is(p.madvise(a, TWO_MB, MADV_HUGEPAGE), 0);
  p.fill32(a, TWO_MB, 1);
  assert.is(p.mprotect(a + TWO_MB - P, P, PROT_READ), 0);
  assert.is(p.mprotect(a + TWO_MB - P, P, RW), 0);
  const ptep = pte_offset_map(p.mm, a);
  assert.ok(ptep >= 0, 'the PMD was split to a PTE page');
  assert.is(pfn_to_page(pte_pfn(ptep_get(p.mm, ptep))).order, 9, 'the folio is still large');
  return { a, ptep };
}

t('folio_pte_batch covers a whole PTE-mapped THP, and stops at max_nr, at a hole and at a clean entry unless dirt is ignored', () => {
  const { a, ptep } = pte_mapped_thp();
  const mm = p.mm, g = mm.pgd;
  const pte0 = ptep_get(mm, ptep), folio = pfn_to_page(pte_pfn(pte0));
  assert.is(folio_pte_batch(folio, mm, ptep, pte0, 512, 0), 512);
  assert.is(folio_pte_batch(folio, mm, ptep, pte0, 7, 0), 7, 'never past max_nr');
  assert.is(folio_pte_batch(folio, mm, ptep + 500, ptep_get(mm, ptep + 500), 12, 0), 12);
  /* the accessed bit never ends a batch */
  g.set(ptep + 3, pte_mkold(ptep_get(mm, ptep + 3)));
  assert.is(folio_pte_batch(folio, mm, ptep, pte0, 512, 0), 512);
  /* a clean entry ends it, unless FPB_IGNORE_DIRTY */
  g.set(ptep + 40, pte_mkclean(ptep_get(mm, ptep + 40)));
  assert.is(folio_pte_batch(folio, mm, ptep, pte0, 512, 0), 40);
  assert.is(folio_pte_batch(folio, mm, ptep, pte0, 512, FPB_IGNORE_DIRTY), 512);
  /* a hole ends it */
  assert.is(p.madvise(a + 100 * P, P, MADV_DONTNEED), 0);
  assert.is(folio_pte_batch(folio, mm, ptep, pte0, 512, FPB_IGNORE_DIRTY), 100);
  assert.is(folio_pte_batch(folio, mm, ptep + 101, ptep_get(mm, ptep + 101), 411, FPB_IGNORE_DIRTY), 411);
});

t('folio_pte_batch ignores the write bit but reports it; wrprotect_ptes, set_ptes and get_and_clear_full_ptes act on the run', () => {
  const { ptep } = pte_mapped_thp();
  const mm = p.mm, g = mm.pgd;
  const pte0 = ptep_get(mm, ptep), folio = pfn_to_page(pte_pfn(pte0));
  wrprotect_ptes(mm, 0, ptep, 10);
  for (let i = 0; i < 12; i++) assert.is(pte_write(ptep_get(mm, ptep + i)), i >= 10, `entry ${i}`);
  const w = { value: false };
  assert.is(folio_pte_batch(folio, mm, ptep, ptep_get(mm, ptep), 512, 0, w), 512, 'the write bit does not end a batch');
  assert.ok(w.value, 'but a writable entry in it is reported');
  assert.is(folio_pte_batch(folio, mm, ptep, ptep_get(mm, ptep), 10, 0, w), 10);
  assert.not.ok(w.value, 'the first ten are read-only');
  /* get_and_clear_full_ptes: the run is cleared, the dirty and accessed bits of all of it are returned */
  const first = pte_mkold(pte_mkclean(ptep_get(mm, ptep + 20)));
  g.set(ptep + 20, first);
  const got = get_and_clear_full_ptes(mm, ptep + 20, first, 5);
  assert.ok(pte_dirty(got) && pte_young(got), 'the bits of the other four');
  assert.is(pte_pfn(got), folio.pfn + 20);
  for (let i = 20; i < 25; i++) assert.is(ptep_get(mm, ptep + i), 0);
  /* set_ptes maps consecutive pfns from one value */
  set_ptes(mm, 0, ptep + 20, pte_wrprotect(got), 5);
  for (let i = 20; i < 25; i++) {
    assert.is(pte_pfn(ptep_get(mm, ptep + i)), folio.pfn + i);
    assert.not.ok(pte_write(ptep_get(mm, ptep + i)));
  }
});

t.run();
