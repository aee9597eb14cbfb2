/*
 * test/mm/migrate.test.ts - mm/migrate.ts helpers: folio_total_mapcount()
 * reads a large folio's page mapcounts straight from its section's array;
 * it must agree with the per-page sum through handles
 * (folio_large_mapcount(), mm/huge_memory_split.ts) however the folio is
 * mapped. remove_migration_ptes() looks the PTE lock up through a
 * one-entry cache: it must still take the lock of the PTE page it writes,
 * in whichever mm.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import { PAGE_SIZE, PMD_SIZE } from '../../include/linux/mm.js';
import { MADV_HUGEPAGE, PROT_READ } from '../../include/uapi/asm-generic/mman.js';
import { pte_present, pte_pfn, pmd_trans_huge, pmd_pfn } from '../../include/linux/pgtable.js';
import { pfn_to_page, get_page, put_page } from '../../mm/page_alloc.js';
import { pmd_off, pte_offset_map, pte_lockptr } from '../../mm/pgtable.js';
import { folio_total_mapcount, try_to_migrate, remove_migration_ptes, remove_migration_ptes_walk } from '../../mm/migrate.js';
import { down_read_trylock, up_read } from '../../lib/locking/rwsem.js';
import { folio_lock, folio_unlock } from '../../mm/filemap.js';
import { spin_lock, spin_unlock } from '../../lib/locking/spinlock.js';
import { runSync } from '../../lib/sim/sched.js';
import { is_swap_pte } from '../../include/linux/swapops.js';
import type { mm_struct, anon_vma } from '../../include/linux/mm_types.js';
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

t('remove_migration_ptes takes the PTE lock of the PTE page it restores, in each mm, after restoring elsewhere', () => {
  const p = boot();
  const raw = p.mmap(0, 4 * PMD_SIZE, RW, ANON);
  const a = Math.ceil(raw / PMD_SIZE) * PMD_SIZE, b = a + PMD_SIZE;   /* two PTE pages */
  p.write32(a, 1);
  p.write32(b, 2);
  const child = p.fork();                           /* shares both pages: two VMAs in the rmap walk */
  const fa = pfn_to_page(pte_pfn(pte_at(p.mm, a))), fb = pfn_to_page(pte_pfn(pte_at(p.mm, b)));
  /* as a migration does: the folio locked and referenced (isolated) while its mappings are migration entries */
  const unmap = (f: typeof fa) => runSync((function* () { yield* folio_lock(f); get_page(f); yield* try_to_migrate(f); })());
  const restore = (f: typeof fa) => runSync(remove_migration_ptes(f, f));
  const held = (mm: mm_struct, addr: number) => pte_lockptr(mm, pte_offset_map(mm, addr));
  unmap(fa);
  unmap(fb);
  assert.ok(is_swap_pte(pte_at(p.mm, a)) && is_swap_pte(pte_at(child.mm, b)), 'migration entries in both mms');
  assert.is(restore(fa), 2, 'page a restored in parent and child (the lock of a\'s PTE page cached)');
  /* b's PTE page, in the child: the walk must find that lock held by this thread */
  const l = held(child.mm, b);
  const av = fb.mapping as anon_vma;
  assert.ok(down_read_trylock(av.rwsem!), 'the rmap walk\'s anon_vma lock');
  spin_lock(l);
  assert.throws(() => remove_migration_ptes_walk(fb, fb, [...av.vmas]), /recursive locking of spinlock ptl/);
  spin_unlock(l);
  up_read(av.rwsem!);
  assert.ok(!is_swap_pte(pte_at(p.mm, b)), 'the parent\'s entry (walked first) was restored before the child\'s lock was met');
  assert.ok(is_swap_pte(pte_at(child.mm, b)), 'the child\'s entry is still a migration entry');
  assert.is(restore(fb), 1, 'the child\'s entry restored once its lock is free');
  for (const f of [fa, fb]) {
    folio_unlock(f);
    put_page(f);
    assert.is(f._refcount, 2, 'mapped by parent and child again');
  }
  assert.is(p.read32(b), 2);
  assert.is(child.read32(a), 1);
  assert.is(child.read32(b), 2);
});

t.run();
