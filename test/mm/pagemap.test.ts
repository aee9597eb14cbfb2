import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RW, ANON } from '../helpers.js';
import { boot_swap, pte_of, pagemap, proc_text, smaps_field, MiB } from './swap_helpers.js';
import { runAs } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { pte_pfn } from '../../include/linux/pgtable.js';
import { pte_to_swp_entry, swp_type, swp_offset } from '../../include/linux/swapops.js';
import { MAP_SHARED, MAP_ANONYMOUS, MADV_PAGEOUT, MADV_FREE } from '../../include/uapi/asm-generic/mman.js';
import { EINVAL } from '../../include/uapi/asm-generic/errno.js';
import {
  pagemap_read, smaps_rollup, PM_PRESENT, PM_SWAP, PM_FILE, PM_MMAP_EXCLUSIVE, PM_SOFT_DIRTY, PM_PFRAME_MASK,
} from '../../mm/pagemap.js';

const t = suite('mm/pagemap');
const P = PAGE_SIZE;
const pfn_of = (e: bigint) => Number(e & PM_PFRAME_MASK);

t('present, zero-page, untouched, swapped and unmapped pages read as Linux encodes them', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 4 * P, RW, ANON);
  p.write32(a, 1);                     /* 0: present, written */
  p.read32(a + P);                     /* 1: the zero page */
  /* 2: never touched */
  p.write32(a + 3 * P, 3);             /* 3: swapped out below */
  assert.is(p.madvise(a + 3 * P, P, MADV_PAGEOUT), 0);
  const e = pte_to_swp_entry(pte_of(p.mm, a + 3 * P));
  const pm = pagemap(p, a - P, 6);
  assert.is(pm[0], 0n, 'below the mapping: a hole');
  assert.is(pm[1], PM_PRESENT | PM_MMAP_EXCLUSIVE | PM_SOFT_DIRTY | BigInt(pte_pfn(pte_of(p.mm, a))));
  assert.is(pm[2], PM_PRESENT, 'the zero page: present, pfn 0, no struct page to call exclusive');
  assert.is(pm[3], 0n, 'untouched');
  assert.is(pm[4], PM_SWAP | PM_SOFT_DIRTY | BigInt(swp_type(e) + swp_offset(e) * 32), 'type in bits 0-4, offset above');
  assert.is(pfn_of(pm[4]) >> 5, swp_offset(e));
  assert.is(pm[5], 0n, 'past the mapping');
  p.read32(a + 3 * P);
  const back = pagemap(p, a + 3 * P, 1)[0];
  assert.ok(back & PM_PRESENT && !(back & PM_SWAP), 'after swap-in: present again');
});

t('pages shared after fork lose PM_MMAP_EXCLUSIVE until COW; shared anonymous memory is PM_FILE', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 2 * P, RW, ANON);
  p.fill32(a, 2 * P, 0);
  const c = p.fork();
  const [p0, p1] = pagemap(p, a, 2), [c0] = pagemap(c, a, 1);
  assert.ok(p0 & PM_PRESENT && !(p0 & PM_MMAP_EXCLUSIVE));
  assert.is(pfn_of(c0), pfn_of(p0), 'one page, two mappings');
  c.write32(a, 5);
  assert.ok(pagemap(c, a, 1)[0] & PM_MMAP_EXCLUSIVE, 'the child has its own copy');
  assert.ok(pagemap(p, a, 1)[0] & PM_MMAP_EXCLUSIVE, 'and the parent is alone on the old page');
  assert.not.ok(p1 & PM_MMAP_EXCLUSIVE);
  const s = p.mmap(0, P, RW, MAP_SHARED | MAP_ANONYMOUS);
  p.write32(s, 1);
  const se = pagemap(p, s, 1)[0];
  assert.ok(se & PM_PRESENT && se & PM_FILE && se & PM_MMAP_EXCLUSIVE);
});

t('pagemap read: EINVAL unless position and length are multiples of 8; 0 bytes past the address space', () => {
  const p = boot_swap(16 * MiB, 0);
  assert.is(runAs(p.task, pagemap_read(p.mm, new Uint8Array(12), 0)), -EINVAL);
  assert.is(runAs(p.task, pagemap_read(p.mm, new Uint8Array(16), 4)), -EINVAL);
  assert.is(runAs(p.task, pagemap_read(p.mm, new Uint8Array(16), (p.mm.task_size / P) * 8)), 0);
  assert.is(runAs(p.task, pagemap_read(p.mm, new Uint8Array(0), 0)), 0);
  const partial = (p.mm.task_size / P - 1) * 8;
  assert.is(runAs(p.task, pagemap_read(p.mm, new Uint8Array(16), partial)), 8, 'stops at task_size');
});

t('smaps counts Rss, Anonymous, LazyFree and Swap per VMA; smaps_rollup adds them up', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 13 * P, RW, ANON), b = a + 9 * P;
  assert.is(p.munmap(a + 8 * P, P), 0, 'two VMAs: [a, a+8P) and [b, b+4P)');
  p.fill32(a, 8 * P, 0);
  p.fill32(b, 2 * P, 0);
  assert.is(p.madvise(a, 3 * P, MADV_PAGEOUT), 0);
  assert.is(p.madvise(a + 3 * P, 2 * P, MADV_FREE), 0);
  const text = proc_text(p, '/proc/self/smaps');
  const blocks = text.split(/(?=^[0-9a-f]+-[0-9a-f]+ )/m);
  const ba = blocks.find((x) => x.startsWith(a.toString(16)))!;
  const bb = blocks.find((x) => x.startsWith(b.toString(16)))!;
  assert.ok(ba.includes(' rw-p '));
  assert.equal([smaps_field(ba, 'Size'), smaps_field(ba, 'Rss'), smaps_field(ba, 'Anonymous')], [32, 20, 20]);
  assert.equal([smaps_field(ba, 'Swap'), smaps_field(ba, 'LazyFree'), smaps_field(ba, 'AnonHugePages')], [12, 8, 0]);
  assert.equal([smaps_field(ba, 'Private_Dirty'), smaps_field(ba, 'Private_Clean')], [12, 8], 'MADV_FREE cleaned 2');
  assert.equal([smaps_field(bb, 'Rss'), smaps_field(bb, 'Swap')], [8, 0]);
  const c = p.fork();
  const roll = runAs(p.task, smaps_rollup(p.mm));
  assert.equal([roll.resident, roll.anonymous, roll.swap], [28 * 1024, 28 * 1024, 12 * 1024]);
  assert.is(roll.pss, 14 * 1024, 'every resident page is now shared by two: Pss is half');
  assert.is(smaps_field(proc_text(c, '/proc/self/smaps_rollup'), 'Swap'), 12);
});

t.run();
