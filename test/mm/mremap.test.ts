import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, recordNotifier, starts, pte_at } from '../helpers.js';
import { boot_swap, reclaim_all, MiB } from './swap_helpers.js';
import { runAs, type Process } from '../../tools/include/nolibc/nolibc.js';
import {
  MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP, MADV_HUGEPAGE, MAP_SHARED, MAP_ANONYMOUS,
} from '../../include/uapi/asm-generic/mman.js';
import { EINVAL, EFAULT, ENOMEM } from '../../include/uapi/asm-generic/errno.js';
import { SIGBUS, SIGSEGV } from '../../include/uapi/asm-generic/signal.js';
import { MM_ANONPAGES, MM_SWAPENTS, type mm_struct } from '../../include/linux/mm_types.js';
import { get_mm_counter } from '../../include/linux/mm.js';
import { pmd_trans_huge, pmd_pfn, pte_present, pte_pfn } from '../../include/linux/pgtable.js';
import { is_swap_pte, pte_to_swp_entry, non_swap_entry, make_hwpoison_entry, swp_entry_to_pte } from '../../include/linux/swapops.js';
import { sys_mremap } from '../../mm/syscalls.js';
import { UserFault } from '../../mm/fault.js';
import { pmd_off, pte_offset_map } from '../../mm/pgtable.js';
import { is_zero_pfn } from '../../mm/page_alloc.js';

const t = suite('mm/mremap');
const PG = 4096, TWO_MB = 2 * MiB;
const hex = (n: number) => n.toString(16);
let p: Process;
t.before.each(() => { p = boot(); });

/* test helper: mremap(2) (nolibc has no wrapper yet) */
function mremap(q: Process, addr: number, old_len: number, new_len: number, flags: number, new_addr = 0): number {
  return runAs(q.task, sys_mremap(q.task, addr, old_len, new_len, flags, new_addr));
}
const sigOf = (fn: () => unknown) => { try { fn(); return 0; } catch (e) { if (e instanceof UserFault) return e.sig; throw e; } };
function pmd_at(mm: mm_struct, addr: number): number {
  const pmdp = pmd_off(mm, addr);
  return pmdp < 0 ? 0 : mm.pgd.load(pmdp);
}
/* a free, 2 MiB-aligned address of len bytes (mapped then unmapped) */
function hole(len: number): number {
  const a = p.mmap(0, len, RW, ANON);
  p.munmap(a, len);
  return a;
}

t('a mapping grows in place when the space after it is free, shrinks by unmapping its tail', () => {
  const a = p.mmap(0, 8 * PG, RW, ANON);
  p.fill32(a, 8 * PG, 1);
  p.munmap(a + 4 * PG, 4 * PG);
  assert.is(mremap(p, a, 4 * PG, 8 * PG, 0), a, 'grown in place');
  assert.is(p.check32(a, 4 * PG, 1), -1);
  assert.is(p.read32(a + 6 * PG), 0, 'the new part is fresh anonymous memory');
  const seen = recordNotifier(p);
  assert.is(mremap(p, a, 8 * PG, 2 * PG, 0), a, 'shrunk');
  assert.equal(starts(seen), [`UNMAP ${hex(a + 2 * PG)}-${hex(a + 8 * PG)}`]);
  assert.is(sigOf(() => p.read32(a + 3 * PG)), SIGSEGV);
});

t('a mapping that cannot grow in place moves with MREMAP_MAYMOVE and keeps every byte', () => {
  const a = p.mmap(0, 16 * PG, RW, ANON);
  p.fill32(a, 16 * PG, 3);
  const below = p.mmap(a + 16 * PG, PG, RW, ANON | 0x10 /* MAP_FIXED */);
  assert.is(below, a + 16 * PG);
  assert.is(mremap(p, a, 16 * PG, 32 * PG, 0), -ENOMEM, 'blocked, and not allowed to move');
  const anon0 = get_mm_counter(p.mm, MM_ANONPAGES);
  const b = mremap(p, a, 16 * PG, 32 * PG, MREMAP_MAYMOVE);
  assert.ok(b > 0 && b !== a);
  assert.is(p.check32(b, 16 * PG, 3), -1);
  assert.is(p.read32(b + 20 * PG), 0);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), anon0, 'pages moved, not copied (the new part read the zero page)');
  assert.is(sigOf(() => p.read32(a)), SIGSEGV, 'the old range is gone');
});

t('mremap errno: EINVAL for flags, alignment, lengths and overlap; EFAULT for holes and VMA ends', () => {
  const a = p.mmap(0, 8 * PG, RW, ANON);
  assert.is(mremap(p, a, PG, PG, 8), -EINVAL, 'unknown flag');
  assert.is(mremap(p, a, PG, PG, MREMAP_FIXED, a + 16 * PG), -EINVAL, 'FIXED without MAYMOVE');
  assert.is(mremap(p, a, PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP), -EINVAL, 'DONTUNMAP resizing');
  assert.is(mremap(p, a, PG, PG, MREMAP_DONTUNMAP), -EINVAL, 'DONTUNMAP without MAYMOVE');
  assert.is(mremap(p, a + 1, PG, PG, 0), -EINVAL, 'misaligned');
  assert.is(mremap(p, a, PG, 0, 0), -EINVAL, 'new length 0');
  assert.is(mremap(p, a, 0, PG, MREMAP_MAYMOVE), -EINVAL, 'old length 0 on a private mapping');
  assert.is(mremap(p, a, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, a + 2 * PG), -EINVAL, 'overlap');
  assert.is(mremap(p, a, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, a + 1), -EINVAL, 'misaligned target');
  assert.is(mremap(p, 0x10000, PG, 2 * PG, MREMAP_MAYMOVE), -EFAULT, 'nothing mapped there');
  assert.is(mremap(p, a, 16 * PG, 32 * PG, MREMAP_MAYMOVE), -EFAULT, 'crosses the end of the VMA');
});

t('moving present, zero-page, swap and hwpoison entries keeps them and sends UNMAP for the old range', () => {
  p = boot_swap(64 * MiB, 16 * MiB);
  const a = p.mmap(0, 16 * PG, RW, ANON);
  p.fill32(a, 8 * PG, 1000);                        /* pages 0-7 */
  assert.is(p.read32(a + 9 * PG), 0);               /* page 9: the zero page */
  reclaim_all();
  const swapped = [...Array(8).keys()].filter((i) => is_swap_pte(pte_at(p.mm, a + i * PG)));
  assert.ok(swapped.length > 0, 'reclaim swapped pages out');
  p.write32(a + 3 * PG, 3);                         /* page 3: swapped back in, dirty */
  p.fill32(a + 10 * PG, PG, 77);                    /* page 10: a present page written after reclaim */
  const poison = swp_entry_to_pte(make_hwpoison_entry(1));
  p.mm.pgd.set(pte_offset_map(p.mm, a + 12 * PG), poison);   /* page 12: a hwpoison marker */
  const before = [...Array(16).keys()].map((i) => pte_at(p.mm, a + i * PG));
  const swapents = get_mm_counter(p.mm, MM_SWAPENTS), anon = get_mm_counter(p.mm, MM_ANONPAGES);
  const target = hole(16 * PG);
  const seen = recordNotifier(p);
  assert.is(mremap(p, a, 16 * PG, 16 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, target), target);
  assert.equal(starts(seen), [`UNMAP ${hex(a)}-${hex(a + 16 * PG)}`, `UNMAP ${hex(a)}-${hex(a + 16 * PG)}`],
    'move_page_tables, then the munmap of the old range');
  for (let i = 0; i < 16; i++) assert.is(pte_at(p.mm, target + i * PG), before[i], `entry ${i} moved as it was`);
  assert.ok(is_swap_pte(pte_at(p.mm, target + swapped[0] * PG)) && !non_swap_entry(pte_to_swp_entry(pte_at(p.mm, target + swapped[0] * PG))));
  assert.is(get_mm_counter(p.mm, MM_SWAPENTS), swapents, 'rss does not change: same mm');
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), anon);
  assert.ok(is_zero_pfn(pte_pfn(pte_at(p.mm, target + 9 * PG))));
  const want = (i: number) => (i === 3 * 1024 ? 3 : 1000 + i);
  for (let i = 0; i < 8 * 1024; i += 127) assert.is(p.read32(target + i * 4), want(i), `word ${i} (swapped in from the moved entry)`);
  assert.is(p.check32(target + 10 * PG, PG, 77), -1);
  assert.is(sigOf(() => p.read32(target + 12 * PG)), SIGBUS, 'the hwpoison marker moved with the page');
  assert.is(sigOf(() => p.read32(a)), SIGSEGV);
});

t('an aligned THP moves as one PMD leaf', () => {
  const a = p.mmap(0, TWO_MB, RW, ANON);
  p.madvise(a, TWO_MB, MADV_HUGEPAGE);
  p.fill32(a, TWO_MB, 5);
  const pfn = pmd_pfn(pmd_at(p.mm, a));
  const target = hole(2 * TWO_MB);
  const seen = recordNotifier(p);
  assert.is(mremap(p, a, TWO_MB, TWO_MB, MREMAP_MAYMOVE | MREMAP_FIXED, target), target);
  assert.equal(starts(seen), [`UNMAP ${hex(a)}-${hex(a + TWO_MB)}`, `UNMAP ${hex(a)}-${hex(a + TWO_MB)}`], 'no split');
  const pmd = pmd_at(p.mm, target);
  assert.ok(pmd_trans_huge(pmd) && pmd_pfn(pmd) === pfn, 'the same THP, by its PMD');
  assert.is(p.check32(target, TWO_MB, 5), -1);
});

t('a THP moved to an address that is not 2 MiB aligned is split (CLEAR) and keeps every byte', () => {
  const a = p.mmap(0, TWO_MB, RW, ANON);
  p.madvise(a, TWO_MB, MADV_HUGEPAGE);
  p.fill32(a, TWO_MB, 21);
  const target = hole(2 * TWO_MB) + 5 * PG;
  const seen = recordNotifier(p);
  assert.is(mremap(p, a, TWO_MB, TWO_MB, MREMAP_MAYMOVE | MREMAP_FIXED, target), target);
  assert.equal(starts(seen), [
    `UNMAP ${hex(a)}-${hex(a + TWO_MB)}`, `CLEAR ${hex(a)}-${hex(a + TWO_MB)}`, `UNMAP ${hex(a)}-${hex(a + TWO_MB)}`,
  ]);
  assert.ok(pte_present(pte_at(p.mm, target)));
  assert.is(p.check32(target, TWO_MB, 21), -1);
});

t('moving the middle of a THP splits it; both pieces keep their bytes', () => {
  const a = p.mmap(0, TWO_MB, RW, ANON);
  p.madvise(a, TWO_MB, MADV_HUGEPAGE);
  p.fill32(a, TWO_MB, 8);
  const target = hole(TWO_MB);
  assert.is(mremap(p, a + MiB / 2, MiB, MiB, MREMAP_MAYMOVE | MREMAP_FIXED, target), target);
  assert.is(p.check32(target, MiB, 8 + MiB / 8), -1);
  assert.is(p.check32(a, MiB / 2, 8), -1);
  assert.is(p.check32(a + 3 * MiB / 2, MiB / 2, 8 + 3 * MiB / 8), -1);
  assert.is(sigOf(() => p.read32(a + MiB)), SIGSEGV);
});

t('MREMAP_DONTUNMAP moves the pages and leaves the old range mapped and empty', () => {
  const a = p.mmap(0, 8 * PG, RW, ANON);
  p.fill32(a, 8 * PG, 40);
  const b = mremap(p, a, 8 * PG, 8 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
  assert.ok(b > 0 && b !== a);
  assert.is(p.check32(b, 8 * PG, 40), -1);
  assert.is(pte_at(p.mm, a), 0, 'the old PTEs are empty');
  assert.is(p.read32(a + 4 * PG), 0, 'the old range still maps: it faults fresh zeroes');
  p.write32(a, 1);
  assert.is(p.read32(b), 40, 'a write to the old range does not reach the moved page');
});

t('a shared mapping moved in one process stays shared with the fork child', () => {
  const a = p.mmap(0, 4 * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
  p.fill32(a, 4 * PG, 2);
  const c = p.fork();
  const b = mremap(p, a, 4 * PG, 8 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, hole(8 * PG));
  assert.ok(b > 0);
  c.write32(a + PG, 0xbeef);
  assert.is(p.read32(b + PG), 0xbeef, 'the parent sees the child\'s store at the new address');
  assert.is(p.check32(b + 2 * PG, 2 * PG, 2 + 2 * 1024), -1);
  assert.is(sigOf(() => p.read32(b + 5 * PG)), SIGBUS, 'the file behind it is only 4 pages long');
});

t.run();
