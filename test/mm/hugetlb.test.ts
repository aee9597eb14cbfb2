import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, recordNotifier, starts, pte_at } from '../helpers.js';
import { runAs, type Process } from '../../tools/include/nolibc/nolibc.js';
import {
  MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_HUGETLB, MAP_NORESERVE, MAP_HUGE_1GB, MAP_HUGE_SHIFT, PROT_READ,
  MREMAP_MAYMOVE, MREMAP_FIXED,
} from '../../include/uapi/asm-generic/mman.js';
import { ENOMEM, EINVAL } from '../../include/uapi/asm-generic/errno.js';
import { SIGBUS } from '../../include/uapi/asm-generic/signal.js';
import { MM_ANONPAGES, type mm_struct, type page } from '../../include/linux/mm_types.js';
import { get_mm_counter, FOLL_WRITE, PUD_SIZE } from '../../include/linux/mm.js';
import { pmd_trans_huge, pmd_pfn, pmd_write, PMD_LEVEL, PUD_LEVEL } from '../../include/linux/pgtable.js';
import { folio_test_hugetlb } from '../../include/linux/page-flags.js';
import { hugetlb_report_meminfo, hugetlb_usage } from '../../mm/hugetlb.js';
import { get_user_pages_unlocked } from '../../mm/gup.js';
import { pfn_to_page, put_page, kmap_local_page } from '../../mm/page_alloc.js';
import { sys_mremap } from '../../mm/syscalls.js';
import { UserFault } from '../../mm/fault.js';

const t = suite('mm/hugetlb');
const MB = 1 << 20, TWO_MB = 2 * MB;
const HUGE = MAP_ANONYMOUS | MAP_HUGETLB;
const hex = (n: number) => n.toString(16);
let p: Process;
t.before.each(() => { p = boot({ hugepages_2m: 4 }); });

function leaf_at(mm: mm_struct, addr: number, level: number): number {
  const ptr = mm.pgd.lookup(addr, level);
  return ptr < 0 ? 0 : mm.pgd.load(ptr);
}
const pool2m = () => hugetlb_report_meminfo()[0];
const sigOf = (fn: () => unknown) => { try { fn(); return 0; } catch (e) { if (e instanceof UserFault) return e.sig; throw e; } };

t('boot fills the pool; MAP_HUGETLB maps 2 MiB pool pages by PMD leaves, outside rss', () => {
  assert.equal(pool2m(), { size: TWO_MB, total: 4, free: 4, rsvd: 0 });
  const a = p.mmap(0, 3 * MB, RW, MAP_PRIVATE | HUGE);
  assert.ok(a > 0 && a % TWO_MB === 0, 'aligned to the huge page size');
  assert.equal(pool2m(), { size: TWO_MB, total: 4, free: 4, rsvd: 2 }, 'the length was rounded up to 2 huge pages, both reserved');
  p.fill32(a, 2 * TWO_MB, 17);
  const pmd = leaf_at(p.mm, a, PMD_LEVEL);
  assert.ok(pmd_trans_huge(pmd) && pmd_write(pmd));
  assert.ok(folio_test_hugetlb(pfn_to_page(pmd_pfn(pmd))));
  assert.equal(pool2m(), { size: TWO_MB, total: 4, free: 2, rsvd: 0 });
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 0, 'hugetlb pages are not rss');
  assert.is(hugetlb_usage(p.mm), 1024);
  assert.is(p.check32(a, 2 * TWO_MB, 17), -1);
  const seen = recordNotifier(p);
  assert.is(p.munmap(a, 2 * TWO_MB), 0);
  assert.equal(starts(seen), [`UNMAP ${hex(a)}-${hex(a + 2 * TWO_MB)}`]);
  assert.equal(pool2m(), { size: TWO_MB, total: 4, free: 4, rsvd: 0 }, 'back in the pool');
});

t('an empty pool: mmap fails with -ENOMEM; with MAP_NORESERVE the fault past the pool is SIGBUS', () => {
  assert.is(p.mmap(0, 5 * TWO_MB, RW, MAP_PRIVATE | HUGE), -ENOMEM, 'the pool holds only 4');
  const a = p.mmap(0, 3 * TWO_MB, RW, MAP_PRIVATE | HUGE);
  assert.ok(a > 0);
  assert.is(p.mmap(0, 2 * TWO_MB, RW, MAP_SHARED | HUGE), -ENOMEM, 'one free page is not promised to a');
  const b = p.mmap(0, 2 * TWO_MB, RW, MAP_PRIVATE | HUGE | MAP_NORESERVE);
  assert.ok(b > 0, 'nothing reserved');
  p.write32(b, 1);
  assert.is(sigOf(() => p.write32(b + TWO_MB, 1)), SIGBUS, 'no unreserved page left for the second');
  p.fill32(a, 3 * TWO_MB, 0);
  assert.equal(pool2m(), { size: TWO_MB, total: 4, free: 0, rsvd: 0 }, 'a got its reserved pages');
  assert.is(p.mmap(0, TWO_MB, RW, MAP_PRIVATE | HUGE | MAP_HUGE_1GB), -ENOMEM, 'the 1 GiB pool is empty');
  assert.is(p.mmap(0, TWO_MB, RW, MAP_PRIVATE | HUGE | (16 << MAP_HUGE_SHIFT)), -EINVAL, 'no 64 KiB pages');
});

t('munmap of part of a mapping gives back its pages and its unused reservations', () => {
  const a = p.mmap(0, 4 * TWO_MB, RW, MAP_PRIVATE | HUGE);
  p.write32(a, 1);
  assert.is(p.munmap(a, TWO_MB + 4096), -EINVAL, 'hugetlb VMAs split only at huge page boundaries');
  assert.is(p.munmap(a, TWO_MB), 0);
  assert.equal(pool2m(), { size: TWO_MB, total: 4, free: 4, rsvd: 3 });
  assert.is(p.munmap(a + 2 * TWO_MB, 2 * TWO_MB), 0);
  assert.equal(pool2m(), { size: TWO_MB, total: 4, free: 4, rsvd: 1 });
  assert.is(p.mprotect(a + TWO_MB + 4096, 4096, PROT_READ), -EINVAL);
});

t('fork of a private hugetlb mapping: a write copies the huge page inside a CLEAR; each side keeps its data', () => {
  const a = p.mmap(0, TWO_MB, RW, MAP_PRIVATE | HUGE);
  p.fill32(a, TWO_MB, 4);
  const pseen = recordNotifier(p);
  const c = p.fork();
  assert.equal(starts(pseen), [`CLEAR ${hex(a)}-${hex(a + TWO_MB)}`], 'fork write-protects the parent\'s huge page');
  assert.is(pmd_pfn(leaf_at(c.mm, a, PMD_LEVEL)), pmd_pfn(leaf_at(p.mm, a, PMD_LEVEL)), 'shared after fork');
  assert.not.ok(pmd_write(leaf_at(p.mm, a, PMD_LEVEL)), 'write-protected in the parent');
  const seen = recordNotifier(c);
  c.write32(a + 100, 99);
  assert.equal(starts(seen), [`CLEAR ${hex(a)}-${hex(a + TWO_MB)}`]);
  assert.ok(pmd_pfn(leaf_at(c.mm, a, PMD_LEVEL)) !== pmd_pfn(leaf_at(p.mm, a, PMD_LEVEL)), 'the child copied');
  assert.is(c.read32(a + 100), 99);
  assert.is(p.read32(a + 100), 4 + 25);
  assert.is(c.check32(a + 104, TWO_MB - 104, 4 + 26), -1);
  p.write32(a, 7);
  assert.ok(pmd_write(leaf_at(p.mm, a, PMD_LEVEL)), 'the parent, now alone, reuses its page');
  assert.equal(pool2m(), { size: TWO_MB, total: 4, free: 2, rsvd: 0 });
});

t('a shared hugetlb mapping is shared with the fork child through the file', () => {
  const a = p.mmap(0, TWO_MB, RW, MAP_SHARED | HUGE);
  p.write32(a, 11);
  const c = p.fork();
  assert.is(pte_at(c.mm, a), -1);
  assert.is(c.read32(a), 11, 'the child faults the page from the file');
  c.write32(a + 8, 12);
  assert.is(p.read32(a + 8), 12);
  assert.is(pmd_pfn(leaf_at(c.mm, a, PMD_LEVEL)), pmd_pfn(leaf_at(p.mm, a, PMD_LEVEL)));
  c.exit(0);
  p.wait();
  assert.is(p.munmap(a, TWO_MB), 0);
  assert.equal(pool2m(), { size: TWO_MB, total: 4, free: 4, rsvd: 0 }, 'the last unmap freed the file and its page');
});

t('mremap moves huge leaves between aligned addresses and refuses to grow a hugetlb mapping', () => {
  const a = p.mmap(0, 2 * TWO_MB, RW, MAP_PRIVATE | HUGE);
  p.fill32(a, 2 * TWO_MB, 31);
  const mremap = (addr: number, ol: number, nl: number, fl: number, na = 0) => runAs(p.task, sys_mremap(p.task, addr, ol, nl, fl, na));
  assert.is(mremap(a, 2 * TWO_MB, 3 * TWO_MB, MREMAP_MAYMOVE), -EINVAL);
  const hole = p.mmap(0, 4 * TWO_MB, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  p.munmap(hole, 4 * TWO_MB);
  const target = hole + 2 * TWO_MB - (hole % TWO_MB);
  assert.is(mremap(a, 2 * TWO_MB, 2 * TWO_MB, MREMAP_MAYMOVE | MREMAP_FIXED, target + 4096), -EINVAL, 'unaligned');
  const seen = recordNotifier(p);
  assert.is(mremap(a, 2 * TWO_MB, 2 * TWO_MB, MREMAP_MAYMOVE | MREMAP_FIXED, target), target);
  assert.equal(starts(seen)[0], `CLEAR ${hex(a)}-${hex(a + 2 * TWO_MB)}`);
  assert.is(p.check32(target, 2 * TWO_MB, 31), -1);
  assert.is(p.munmap(target, 2 * TWO_MB), 0);
  assert.equal(pool2m(), { size: TWO_MB, total: 4, free: 4, rsvd: 0 }, 'the reservation followed the pages');
});

t('1 GiB pages come from their own pool and are mapped by PUD leaves', () => {
  p = boot({ ram_bytes: 2 * 1024 * MB + 64 * MB, hugepages_1g: 1 });
  assert.equal(hugetlb_report_meminfo()[1], { size: PUD_SIZE, total: 1, free: 1, rsvd: 0 });
  const a = p.mmap(0, PUD_SIZE, RW, MAP_PRIVATE | HUGE | MAP_HUGE_1GB);
  assert.ok(a > 0 && a % PUD_SIZE === 0);
  assert.is(p.mmap(0, PUD_SIZE, RW, MAP_PRIVATE | HUGE | MAP_HUGE_1GB), -ENOMEM);
  const pages: page[] = [];
  assert.is(runAs(p.task, get_user_pages_unlocked(p.mm, a + 3 * TWO_MB + 4096, 1, FOLL_WRITE, pages)), 1);
  const pud = leaf_at(p.mm, a, PUD_LEVEL);
  assert.ok(pmd_trans_huge(pud), 'a PUD leaf');
  const head = pfn_to_page(pmd_pfn(pud));
  assert.is(head.order, 18);
  assert.is(head.pfn % (PUD_SIZE / 4096), 0, '1 GiB aligned');
  assert.is(pages[0].pfn, head.pfn + 3 * 512 + 1, 'GUP returns the page inside the gigantic page');
  assert.ok(kmap_local_page(pages[0]).every((b) => b === 0), 'zeroed');
  put_page(pages[0]);
  assert.is(hugetlb_usage(p.mm), PUD_SIZE / 4096);
  assert.is(p.munmap(a, PUD_SIZE), 0);
  assert.equal(hugetlb_report_meminfo()[1], { size: PUD_SIZE, total: 1, free: 1, rsvd: 0 });
});

t.run();
