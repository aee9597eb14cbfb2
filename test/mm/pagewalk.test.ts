import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../helpers.js';
import { runAs, type Process } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE, PMD_SIZE, PUD_SIZE, PGDIR_SIZE, VM_PFNMAP } from '../../include/linux/mm.js';
import { pte_present, pte_none, pmd_trans_huge, pmd_is_table } from '../../include/linux/pgtable.js';
import {
  MAP_FIXED, MAP_HUGETLB, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, MADV_HUGEPAGE,
} from '../../include/uapi/asm-generic/mman.js';
import { EFAULT, EINVAL, EPERM } from '../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import { KernelBugError } from '../../lib/sim/sched.js';
import { mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock } from '../../mm/mmap_lock.js';
import { find_vma } from '../../mm/vma.js';
import { pmd_off } from '../../mm/pgtable.js';
import {
  walk_page_range, walk_page_vma, ACTION_AGAIN, ACTION_CONTINUE, PGWALK_RDLOCK, PGWALK_WRLOCK,
  PGWALK_WRLOCK_VERIFY, type mm_walk, type mm_walk_ops, type page_walk_lock,
} from '../../mm/pagewalk.js';

const t = suite('mm/pagewalk');
const P = PAGE_SIZE;
const hex = (n: number) => n.toString(16);
/* a 512 GiB-aligned area no other mapping shares a PGD entry with */
const BASE = 4 * PGDIR_SIZE;
let p: Process;
t.before.each(() => { p = boot({ hugepages_2m: 2 }); });

/* what a recording walk saw, one line per callback */
type log = string[];

/* every callback, recording "name start-end"; `over` replaces some of them */
function recorder(over: Partial<mm_walk_ops<log>> = {}, walk_lock: page_walk_lock = PGWALK_RDLOCK): mm_walk_ops<log> {
  const at = (name: string) => (_ptr: number, addr: number, next: number, w: mm_walk<log>) => {
    w.private.push(`${name} ${hex(addr)}-${hex(next)}`);
    return 0;
  };
  return Object.freeze({
    pgd_entry: at('pgd'), p4d_entry: at('p4d'), pud_entry: at('pud'), pmd_entry: at('pmd'),
    pte_entry: (ptep: number, addr: number, _next: number, w: mm_walk<log>) => {
      w.private.push(`pte ${hex(addr)} ${pte_none(w.mm.pgd.load(ptep)) ? 'none' : 'present'}`);
      return 0;
    },
    pte_hole: (addr: number, next: number, depth: number, w: mm_walk<log>) => {
      w.private.push(`hole ${hex(addr)}-${hex(next)} ${depth}`);
      return 0;
    },
    pre_vma: (start: number, end: number, w: mm_walk<log>) => { w.private.push(`pre_vma ${hex(start)}-${hex(end)}`); return 0; },
    post_vma: (w: mm_walk<log>) => { w.private.push('post_vma'); },
    walk_lock,
    ...over,
  });
}

/* run walk_page_range() with mmap_lock held for read (or write) */
function walk(start: number, end: number, ops: mm_walk_ops<log>, write = false): { ret: number; log: log } {
  const l: log = [];
  const ret = runAs(p.task, (function* (): Sleepable<number> {
    yield* (write ? mmap_write_lock(p.mm) : mmap_read_lock(p.mm));
    try { return yield* walk_page_range(p.mm, start, end, ops, l); }
    finally { if (write) mmap_write_unlock(p.mm); else mmap_read_unlock(p.mm); }
  })());
  return { ret, log: l };
}

function map(addr: number, len: number, prot = RW, flags = ANON): number {
  const a = p.mmap(addr, len, prot, flags | MAP_FIXED);
  assert.is(a, addr);
  return a;
}

t('callbacks come in Linux order: pre_vma, pgd..pmd once per entry, every PTE, post_vma; a gap is a depth -1 hole', () => {
  map(BASE, 2 * P);
  map(BASE + 3 * P, P, PROT_READ);
  p.write32(BASE, 1);
  p.read32(BASE + 3 * P);
  const r = walk(BASE, BASE + 4 * P, recorder());
  assert.is(r.ret, 0);
  const e = (a: number, b: number) => `${hex(a)}-${hex(b)}`;
  assert.equal(r.log, [
    `pre_vma ${e(BASE, BASE + 2 * P)}`,
    `pgd ${e(BASE, BASE + 2 * P)}`, `p4d ${e(BASE, BASE + 2 * P)}`, `pud ${e(BASE, BASE + 2 * P)}`,
    `pmd ${e(BASE, BASE + 2 * P)}`, `pte ${hex(BASE)} present`, `pte ${hex(BASE + P)} none`,
    'post_vma',
    `hole ${e(BASE + 2 * P, BASE + 3 * P)} -1`,
    `pre_vma ${e(BASE + 3 * P, BASE + 4 * P)}`,
    `pgd ${e(BASE + 3 * P, BASE + 4 * P)}`, `p4d ${e(BASE + 3 * P, BASE + 4 * P)}`, `pud ${e(BASE + 3 * P, BASE + 4 * P)}`,
    `pmd ${e(BASE + 3 * P, BASE + 4 * P)}`, `pte ${hex(BASE + 3 * P)} present`,
    'post_vma',
  ]);
  assert.is(walk(BASE, BASE, recorder()).ret, -EINVAL, 'an empty range');
});

t('holes are reported at the level that is empty: PGD (0), PUD (2), PMD (3), and past the last VMA (-1)', () => {
  map(BASE, 2 * PUD_SIZE);
  const untouched = walk(BASE, BASE + 4 * P, recorder({ pre_vma: undefined, post_vma: undefined }));
  assert.equal(untouched.log, [`hole ${hex(BASE)}-${hex(BASE + 4 * P)} 0`], 'no PGD entry at all');
  p.write32(BASE + PUD_SIZE + PMD_SIZE, 7);     /* one page in the second PUD, second PMD */
  const ops = recorder({ pre_vma: undefined, post_vma: undefined, pte_entry: undefined, pgd_entry: undefined,
    p4d_entry: undefined });
  const r = walk(BASE, BASE + PUD_SIZE + 3 * PMD_SIZE, ops);
  assert.equal(r.log, [
    `hole ${hex(BASE)}-${hex(BASE + PUD_SIZE)} 2`,
    `pud ${hex(BASE + PUD_SIZE)}-${hex(BASE + PUD_SIZE + 3 * PMD_SIZE)}`,
    `hole ${hex(BASE + PUD_SIZE)}-${hex(BASE + PUD_SIZE + PMD_SIZE)} 3`,
    `pmd ${hex(BASE + PUD_SIZE + PMD_SIZE)}-${hex(BASE + PUD_SIZE + 2 * PMD_SIZE)}`,
    `hole ${hex(BASE + PUD_SIZE + 2 * PMD_SIZE)}-${hex(BASE + PUD_SIZE + 3 * PMD_SIZE)} 3`,
  ]);
  const past = walk(BASE + 2 * PUD_SIZE - P, BASE + 2 * PUD_SIZE + 2 * P, recorder({ pre_vma: undefined, post_vma: undefined }));
  assert.equal(past.log.at(-1), `hole ${hex(BASE + 2 * PUD_SIZE)}-${hex(BASE + 2 * PUD_SIZE + 2 * P)} -1`);
});

t('a non-zero return stops the walk at once and is returned: an errno from pte_entry, a positive code from pmd_entry', () => {
  map(BASE, 4 * P);
  map(BASE + PMD_SIZE, P);
  p.fill32(BASE, 4 * P, 0);
  p.write32(BASE + PMD_SIZE, 0);
  let ptes = 0;
  const failing = recorder({
    pte_entry: (_ptep, addr, _next, w) => { w.private.push(`pte ${hex(addr)}`); return ++ptes === 2 ? -EFAULT : 0; },
  });
  const r = walk(BASE, BASE + PMD_SIZE + P, failing);
  assert.is(r.ret, -EFAULT);
  assert.equal(r.log.slice(-3), [`pte ${hex(BASE)}`, `pte ${hex(BASE + P)}`, 'post_vma'],
    'no PTE after the failing one, no second VMA; post_vma still closes the first');
  const stop = walk(BASE, BASE + PMD_SIZE + P, recorder({ pmd_entry: () => 5 }));
  assert.is(stop.ret, 5, 'positive values reach the caller too');
  assert.not.ok(stop.log.some((l) => l.startsWith('pte')), 'nothing below the stopping PMD');
});

t('ACTION_AGAIN looks at the same PMD again; ACTION_CONTINUE skips its PTEs', () => {
  map(BASE, 2 * P);
  p.fill32(BASE, 2 * P, 0);
  let calls = 0;
  const again = recorder({
    pmd_entry: (_pmdp, addr, next, w) => {
      w.private.push(`pmd ${hex(addr)}-${hex(next)}`);
      if (++calls < 3) w.action = ACTION_AGAIN;
      return 0;
    },
  });
  const r = walk(BASE, BASE + 2 * P, again);
  assert.is(calls, 3);
  assert.equal(r.log.filter((l) => l.startsWith('pmd') || l.startsWith('pte')), [
    `pmd ${hex(BASE)}-${hex(BASE + 2 * P)}`, `pmd ${hex(BASE)}-${hex(BASE + 2 * P)}`, `pmd ${hex(BASE)}-${hex(BASE + 2 * P)}`,
    `pte ${hex(BASE)} present`, `pte ${hex(BASE + P)} present`,
  ]);
  const cont = walk(BASE, BASE + 2 * P, recorder({ pud_entry: (_pudp, _a, _n, w) => { w.action = ACTION_CONTINUE; return 0; } }));
  assert.not.ok(cont.log.some((l) => l.startsWith('pmd') || l.startsWith('pte')), 'nothing below a PUD handled whole');
});

t('test_walk skips a VMA (1) or fails the walk (< 0); without it a VM_PFNMAP VMA is one hole', () => {
  map(BASE, P);
  map(BASE + 2 * P, P, PROT_READ);
  map(BASE + 4 * P, P);
  for (const a of [BASE, BASE + 2 * P, BASE + 4 * P]) p.read32(a);
  const skip_ro = recorder({
    test_walk: (_s, _e, w) => (w.vma!.vm_flags & 2 /* VM_WRITE */) ? 0 : 1,
    pgd_entry: undefined, p4d_entry: undefined, pud_entry: undefined, pmd_entry: undefined, pte_hole: undefined,
  });
  const r = walk(BASE, BASE + 5 * P, skip_ro);
  assert.is(r.ret, 0, 'a skip is not an error');
  assert.equal(r.log.filter((l) => l.startsWith('pte')), [`pte ${hex(BASE)} present`, `pte ${hex(BASE + 4 * P)} present`]);
  const fail = walk(BASE, BASE + 5 * P, recorder({ test_walk: (s) => (s === BASE + 2 * P ? -EPERM : 0) }));
  assert.is(fail.ret, -EPERM);
  assert.not.ok(fail.log.some((l) => l.includes(hex(BASE + 4 * P))), 'the walk ended at the refused VMA');
  runAs(p.task, mmap_read_lock(p.mm));
  find_vma(p.mm, BASE + 2 * P)!.vm_flags |= VM_PFNMAP;
  mmap_read_unlock(p.mm);
  const pfnmap = walk(BASE + 2 * P, BASE + 3 * P, recorder());
  assert.equal(pfnmap.log, [`hole ${hex(BASE + 2 * P)}-${hex(BASE + 3 * P)} -1`], 'raw pfns have no pages to walk');
});

t('a hugetlb VMA is walked per huge page through hugetlb_entry, never through pmd_entry', () => {
  const a = p.mmap(BASE, 2 * PMD_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_FIXED);
  assert.is(a, BASE);
  p.write32(BASE + 8, 3);
  const ops = recorder({
    hugetlb_entry: (ptep, hmask, addr, next, w) => {
      const e = w.mm.pgd.load(ptep);
      w.private.push(`huge ${hex(addr)}-${hex(next)} mask ${-hmask === PMD_SIZE} ${pmd_trans_huge(e) ? 'leaf' : 'none'}`);
      return 0;
    },
  });
  const r = walk(BASE + P, BASE + 2 * PMD_SIZE, ops);
  assert.equal(r.log, [
    `pre_vma ${hex(BASE + P)}-${hex(BASE + 2 * PMD_SIZE)}`,
    `huge ${hex(BASE + P)}-${hex(BASE + PMD_SIZE)} mask true leaf`,
    `huge ${hex(BASE + PMD_SIZE)}-${hex(BASE + 2 * PMD_SIZE)} mask true none`,
    'post_vma',
  ]);
});

t('pte_entry over a THP splits the PMD first and sees 512 present PTEs; walk_page_vma covers the VMA', () => {
  map(BASE, PMD_SIZE);
  assert.is(p.madvise(BASE, PMD_SIZE, MADV_HUGEPAGE), 0);
  p.fill32(BASE, PMD_SIZE, 1);
  assert.ok(pmd_trans_huge(p.mm.pgd.load(pmd_off(p.mm, BASE))), 'a THP maps the range');
  const l: log = [];
  let present = 0;
  const ops: mm_walk_ops<log> = Object.freeze({
    pte_entry: (ptep: number) => { if (pte_present(p.mm.pgd.load(ptep))) present++; return 0; },
    walk_lock: PGWALK_RDLOCK,
  });
  const ret = runAs(p.task, (function* (): Sleepable<number> {
    yield* mmap_read_lock(p.mm);
    try { return yield* walk_page_vma(find_vma(p.mm, BASE)!, ops, l); } finally { mmap_read_unlock(p.mm); }
  })());
  assert.is(ret, 0);
  assert.is(present, PMD_SIZE / P);
  assert.ok(pmd_is_table(p.mm.pgd.load(pmd_off(p.mm, BASE))), 'the PMD now points to a PTE page');
  assert.is(p.check32(BASE, PMD_SIZE, 1), -1, 'every word kept');
});

t('walk_lock: RDLOCK needs mmap_lock held, WRLOCK and WRLOCK_VERIFY need it held for write', () => {
  map(BASE, P);
  const bare = () => runAs(p.task, walk_page_range(p.mm, BASE, BASE + P, recorder(), []));
  assert.throws(bare, (e: unknown) => e instanceof KernelBugError, 'no mmap_lock at all');
  for (const lock of [PGWALK_WRLOCK, PGWALK_WRLOCK_VERIFY]) {
    assert.throws(() => walk(BASE, BASE + P, recorder({}, lock)), (e: unknown) => e instanceof KernelBugError,
      'a read hold is not enough');
    assert.is(walk(BASE, BASE + P, recorder({}, lock), true).ret, 0, 'a write hold is');
  }
  assert.is(walk(BASE, BASE + P, recorder(), true).ret, 0, 'RDLOCK is satisfied by a write hold too');
});

t.run();
