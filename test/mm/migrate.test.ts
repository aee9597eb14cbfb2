/*
 * test/mm/migrate.test.ts - mm/migrate.ts helpers: folio_total_mapcount()
 * reads a large folio's page mapcounts straight from its section's array;
 * it must agree with the per-page sum through handles
 * (folio_large_mapcount(), mm/huge_memory_split.ts) however the folio is
 * mapped.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import { PAGE_SIZE, PMD_SIZE } from '../../include/linux/mm.js';
import { MADV_HUGEPAGE, PROT_READ } from '../../include/uapi/asm-generic/mman.js';
import { pte_present, pte_pfn, pmd_trans_huge, pmd_pfn } from '../../include/linux/pgtable.js';
import { pfn_to_page } from '../../mm/page_alloc.js';
import { pmd_off } from '../../mm/pgtable.js';
import { folio_total_mapcount } from '../../mm/migrate.js';
import { folio_large_mapcount } from '../../mm/huge_memory_split.js';

const t = suite('mm/migrate');

t('folio_total_mapcount of a THP: PMD-mapped, shared by fork, then PTE-mapped in one process', () => {
  const p = boot();
  const raw = p.mmap(0, 2 * PMD_SIZE, RW, ANON);
  const a = Math.ceil(raw / PMD_SIZE) * PMD_SIZE;
  assert.is(p.madvise(a, PMD_SIZE, MADV_HUGEPAGE), 0);
  p.fill32(a, PMD_SIZE, 1);
  const pmd = p.mm.pgd.load(pmd_off(p.mm, a));
  assert.ok(pmd_trans_huge(pmd), 'a THP');
  const h = pfn_to_page(pmd_pfn(pmd));
  assert.is(h.order, 9);
  const counts = () => [folio_total_mapcount(h), folio_large_mapcount(h), folio_total_mapcount(pfn_to_page(h.pfn + 7))];
  assert.equal(counts(), [1, 1, 1], 'one PMD mapping');
  p.fork();
  assert.equal(counts(), [2, 2, 2], 'the child maps it too');
  assert.is(p.mprotect(a, PAGE_SIZE, PROT_READ), 0);   /* splits the parent's PMD: 512 PTEs */
  assert.ok(pte_present(pte_at(p.mm, a)) && pte_pfn(pte_at(p.mm, a)) === h.pfn, 'PTE-mapped in the parent');
  assert.equal(counts(), [513, 513, 513], 'the child PMD + 512 PTEs');
});

t.run();
