/*
 * test/lib/gpt/gpt.test.ts - the single-threaded API of lib/gpt/gpt.ts:
 * entries, lookup, populate, huge leaves, refcounts, bit operations,
 * pruning, the pool's growth and -ENOMEM.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpt } from '../../../lib/gpt/gpt.js';
import {
  x86_64_pgtable_format, hmm_pt_format, gpt_u32_format, gpt_format_define, gpt_format_find,
  gpt_format_register, resetGptFormatRegistry, GPT_U32_VALID, GPT_U32_HUGE,
} from '../../../lib/gpt/formats.js';
import { GPT_NO_DIR, HMM_PTE_VALID_DMA, HMM_PTE_WRITE, HMM_PTE_DIRTY, HMM_PDE_VALID } from '../../../include/linux/gpt.js';
import {
  _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PSE, _PAGE_TABLE,
} from '../../../include/linux/pgtable_types.js';

const X86 = { address_bits: 48, level_bits: 9, page_shift: 12 };
const PGD = 0, PUD = 1, PMD = 2;
const MB2 = 2 ** 21, GB1 = 2 ** 30;
const pte = (pfn: number, f = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER) => pfn * 4096 + f;

function x86(opts = {}): gpt { return new gpt(X86, x86_64_pgtable_format, opts); }
function put(pt: gpt, ptr: number, e: number): number {
  const s = pt.dir_of(ptr);
  pt.dir_lock(s);
  const old = pt.set(ptr, e);
  pt.dir_unlock(s);
  return old;
}

test('an empty table has only its root and every lookup misses', () => {
  const pt = x86();
  assert.is(pt.levels, 4);
  assert.is(pt.llevel, 3);
  assert.is(pt.lookup(0x7f0000000000), GPT_NO_DIR);
  assert.is(pt.lookup(0x7f0000000000, PGD), pt.root * 512 + 254);
  assert.is(pt.lookup(-4096), GPT_NO_DIR);
  assert.is(pt.lookup(2 ** 48), GPT_NO_DIR);
  assert.equal(pt.stats().dirs_per_level, [1, 0, 0, 0]);
  assert.is(pt.dir_parent(pt.root), GPT_NO_DIR);
});

test('populate creates each missing level once and lookup then finds the same entry', () => {
  const pt = x86();
  const a = 0x7f1234567000;
  const p = pt.populate(a);
  assert.ok(p >= 0);
  assert.is(pt.lookup(a), p);
  assert.is(pt.populate(a), p);
  assert.is(pt.populate(a + 4096), p + 1);
  assert.equal(pt.stats().dirs_per_level, [1, 1, 1, 1]);
  assert.is(pt.entry_addr(p), a);
  const pmdp = pt.lookup(a, PMD);
  assert.is(pt.dir_parent(pt.dir_of(p)), pmdp);
  assert.ok(x86_64_pgtable_format.is_pde(pt.load(pmdp), PMD));
  assert.is(pt.load(pmdp) & 0xfff, _PAGE_TABLE);
  assert.is(x86_64_pgtable_format.pde_slot(pt.load(pmdp)), pt.dir_of(p));
  assert.is(pt.populate(a, PUD), pt.lookup(a, PUD));
  assert.is(pt.populate(2 ** 48), -14);
});

test('64-bit entries round-trip every bit below 2^53 and the refcount follows none transitions', () => {
  const pt = x86();
  const p = pt.populate(0x1000);
  const leaf = pt.dir_of(p);
  assert.is(pt.dir_refcount(leaf), 1);
  const vals = [1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 52 + 0x67, 2 ** 53 - 1, pte(0xfffffffff)];
  for (const v of vals) {
    put(pt, p, v);
    assert.is(pt.load(p), v);
  }
  assert.is(pt.dir_refcount(leaf), 2);
  put(pt, p + 1, 5);
  assert.is(pt.dir_refcount(leaf), 3);
  assert.is(put(pt, p, 0), vals[vals.length - 1]);
  assert.is(pt.dir_refcount(leaf), 2);
  assert.throws(() => pt.set(p, 2 ** 53));
  assert.throws(() => pt.set(p, -1));
  assert.throws(() => pt.set(p, 1.5));
});

test('32-bit entries hold any unsigned 32-bit value and reject wider ones', () => {
  const pt = new gpt({ address_bits: 32, level_bits: 10, page_shift: 12 }, gpt_u32_format);
  const p = pt.populate(0xfffff000);
  put(pt, p, 0xffffffff);
  assert.is(pt.load(p), 0xffffffff);
  assert.throws(() => pt.set(p, 2 ** 32));
  assert.is(pt.entry_addr(p), 0xfffff000);
});

test('a huge PMD leaf stops lookup below it, populate returns -EEXIST, lookup_leaf finds it', () => {
  const pt = x86();
  const a = 0x7f0000200000 + 5 * 4096;
  const pmdp = pt.populate(a, PMD);
  put(pt, pmdp, pte(0x400, _PAGE_PRESENT | _PAGE_RW | _PAGE_PSE));
  assert.is(pt.lookup(a), GPT_NO_DIR);
  assert.is(pt.lookup(a, PMD), pmdp);
  assert.is(pt.populate(a), -17);
  assert.is(pt.lookup_leaf(a), pmdp);
  assert.is(pt.entry_level(pmdp), PMD);
  assert.is(pt.entry_addr(pmdp), 0x7f0000200000);
  assert.not.ok(x86_64_pgtable_format.is_pde(pt.load(pmdp), PMD));
  assert.ok(pt.is_leaf_level(PMD) && pt.is_leaf_level(PUD) && !pt.is_leaf_level(PGD));
});

test('a huge PUD leaf and a swap entry at PMD level are leaves, not links', () => {
  const pt = x86();
  const pudp = pt.populate(GB1 * 3, PUD);
  put(pt, pudp, pte(0x40000, _PAGE_PRESENT | _PAGE_PSE));
  assert.is(pt.lookup(GB1 * 3 + MB2, PMD), GPT_NO_DIR);
  const pmdp = pt.populate(GB1 * 5, PMD);
  put(pt, pmdp, 0x3f00);                       /* non-present: a PMD migration entry */
  assert.not.ok(x86_64_pgtable_format.is_pde(0x3f00, PMD));
  assert.is(pt.populate(GB1 * 5), -17);
  assert.is(pt.lookup_leaf(GB1 * 5 + 4096), pmdp);
});

test('set() refuses to install or overwrite a directory link', () => {
  const pt = x86();
  const p = pt.populate(0x1000);
  const pmdp = pt.lookup(0x1000, PMD);
  const link = pt.load(pmdp);
  assert.throws(() => put(pt, pmdp, 0), /orphan/);
  pt.dir_unlock(pt.dir_of(pmdp));
  assert.is(pt.load(pmdp), link);
  const other = pt.populate(GB1 * 7, PMD);
  assert.throws(() => put(pt, other, x86_64_pgtable_format.pde_make(pt.dir_of(p), PMD)), /link/);
  pt.dir_unlock(pt.dir_of(other));
  assert.is(pt.load(other), 0);
});

test('set_bits and clear_bits change the low word atomically and never resurrect a none entry', () => {
  const pt = x86();
  const p = pt.populate(0x5000);
  assert.is(pt.set_bits(p, _PAGE_DIRTY), 0);
  assert.is(pt.load(p), 0);
  put(pt, p, pte(2 ** 40 - 1));
  const before = pt.load(p);
  assert.is(pt.set_bits(p, _PAGE_DIRTY | _PAGE_ACCESSED), before & 0xffffffff ? (before % 2 ** 32) : 0);
  assert.is(pt.load(p), before + _PAGE_DIRTY + _PAGE_ACCESSED);
  pt.clear_bits(p, _PAGE_DIRTY);
  assert.is(pt.load(p), before + _PAGE_ACCESSED);
  assert.is(pt.dir_refcount(pt.dir_of(p)), 2);
  const q = pt.populate(0x6000);
  put(pt, q, _PAGE_PRESENT);
  assert.throws(() => pt.clear_bits(q, _PAGE_PRESENT));
});

test('prune frees empty directories bottom-up and keeps the ones that still map something', () => {
  const pt = x86();
  const a = 0x7f0000000000, b = a + GB1;          /* same PUD directory, two PMD directories */
  put(pt, pt.populate(a), pte(1));
  put(pt, pt.populate(b), pte(2));
  assert.equal(pt.stats().dirs_per_level, [1, 1, 2, 2]);
  assert.is(pt.prune(0, 2 ** 48), 0);
  put(pt, pt.lookup(a), 0);
  assert.is(pt.prune(0, 2 ** 48), 2);            /* a's PTE and PMD directories */
  assert.equal(pt.stats().dirs_per_level, [1, 1, 1, 1]);
  assert.is(pt.lookup(a), GPT_NO_DIR);
  assert.is(pt.load(pt.lookup(b)), pte(2));
  assert.is(pt.clear_range(0, 2 ** 48), 1);
  assert.is(pt.prune(b, b + 4096), 3);
  assert.equal(pt.stats().dirs_per_level, [1, 0, 0, 0]);
  assert.is(pt.dir_refcount(pt.root), 1);
});

test('prune leaves a directory that a walker holds, and frees it once released', () => {
  const pt = x86();
  pt.populate(0x200000);
  const it = pt.iter_init();
  const p = it.lookup(0x200000);
  assert.ok(p >= 0);
  assert.is(pt.dir_refcount(pt.dir_of(p)), 2);
  assert.is(pt.prune(0, 2 ** 48), 0);
  it.fini();
  assert.is(pt.dir_refcount(pt.dir_of(p)), 1);
  assert.is(pt.prune(0, 2 ** 48), 3);
});

test('a directory pruned inside a read section is recycled only after the section ends', () => {
  const pt = x86();
  pt.populate(0x200000);
  pt.rcu_read_lock();
  assert.is(pt.prune(0, 2 ** 48), 3);
  let s = pt.stats();
  assert.is(s.slots_retired, 3);
  assert.is(pt.reclaim(), 0);
  pt.rcu_read_unlock();
  assert.is(pt.reclaim(), 3);
  s = pt.stats();
  assert.is(s.slots_retired, 0);
  assert.is(s.slots_free, 3);
  const before = s.capacity;
  pt.populate(0x40000000000);                    /* reuses the recycled slots */
  assert.is(pt.stats().slots_free, 0);
  assert.is(pt.stats().capacity, before);
});

test('the pool grows by small steps and populate returns -ENOMEM at max_slots', () => {
  const pt = x86({ initialSlots: 2, maxSlots: 40 });
  let last = 0, n = 0;
  for (let i = 0; ; i++) {
    last = pt.populate(i * MB2);
    if (last < 0) break;
    put(pt, last, pte(i));
    n++;
  }
  assert.is(last, -12);
  const s = pt.stats();
  assert.is(s.capacity, 40);
  assert.ok(s.grows >= 2);
  assert.is(s.slots_used, 40);
  assert.is(n, 40 - 3);                          /* root, PUD and PMD take 3 */
  for (let i = 0; i < n; i++) assert.is(pt.load(pt.lookup(i * MB2)), pte(i));
  assert.is(s.bytes, s.bytes_entries + s.bytes_meta + 512);
  assert.is(s.bytes_entries, 40 * 4096);
  put(pt, pt.lookup(0), 0);
  assert.is(pt.prune(0, MB2), 1);
  assert.ok(pt.populate(n * MB2) >= 0);
});

test('the hmm_pt format encodes v8 leaves and directory entries', () => {
  const pt = new gpt(X86, hmm_pt_format);
  const p = pt.populate(0x7000);
  const dma = 0x3_0000_0000_0000 / 4096;         /* a DMA address above 2^32 */
  put(pt, p, dma * 4096 + HMM_PTE_VALID_DMA + HMM_PTE_WRITE);
  pt.set_bits(p, HMM_PTE_DIRTY);
  assert.is(pt.load(p), dma * 4096 + HMM_PTE_VALID_DMA + HMM_PTE_WRITE + HMM_PTE_DIRTY);
  const pde = pt.load(pt.lookup(0x7000, 2));
  assert.is(pde & 0xfff, HMM_PDE_VALID);
  assert.is(Math.floor(pde / 4096), pt.dir_of(p));
  assert.is(gpt_format_find('hmm_pt'), hmm_pt_format);
});

test('the 32-bit test format has huge leaves at every level below the root', () => {
  const pt = new gpt({ address_bits: 32, level_bits: 10, page_shift: 12 }, gpt_u32_format);
  const p1 = pt.populate(0x400000, 1);
  assert.is(p1, pt.populate(0x400fff, 1));
  const pdp = pt.lookup(0x400000, 0);
  assert.ok(gpt_u32_format.is_pde(pt.load(pdp), 0));
  const q = pt.populate(0x800000, 0);
  put(pt, q, 0x800000 | GPT_U32_VALID | GPT_U32_HUGE);
  assert.is(pt.populate(0x800000), -17);
  assert.is(pt.lookup_leaf(0x8ff000), q);
});

test('a format whose functions and data disagree is refused', () => {
  assert.throws(() => gpt_format_define({ name: 'bad', entry_bits: 32, leaf_levels: [], pde_mask: 1,
    pde_value: 1, pde_shift: 12, pde_bits: 2 }));
  const liar = { ...gpt_u32_format, name: 'liar', pde_slot: (e: number) => e >>> 13 };
  assert.throws(() => new gpt(X86, liar as typeof gpt_u32_format));
});

test('directory locks record their owner and refuse an unlock by a non-owner', () => {
  const pt = x86();
  const s = pt.dir_of(pt.populate(0x1000));
  assert.ok(pt.dir_trylock(s));
  assert.ok(pt.dir_locked_by_me(s));
  assert.not.ok(pt.dir_trylock(s));
  pt.dir_unlock(s);
  assert.not.ok(pt.dir_locked_by_me(s));
  assert.throws(() => pt.dir_unlock(s));
});

test('formats are found by name; a second format with a taken name is refused; reset forgets drivers', () => {
  const mine = gpt_format_define({ name: 'mock_gpu', entry_bits: 64, leaf_levels: [], pde_mask: 1,
    pde_value: 1, pde_shift: 12, pde_bits: 1 });
  assert.is(gpt_format_register(mine), 0);
  assert.is(gpt_format_register(mine), 0);
  assert.is(gpt_format_find('mock_gpu'), mine);
  assert.is(gpt_format_register({ ...mine }), -17);
  resetGptFormatRegistry();
  assert.is(gpt_format_find('mock_gpu'), null);
  assert.is(gpt_format_find('x86_64'), x86_64_pgtable_format);
});

test('the paging-structure cache never returns a pruned directory', () => {
  const pt = x86();
  const a = 0x7f0000201000;
  const p = pt.populate(a);
  put(pt, p, pte(9));
  assert.is(pt.lookup(a), p);                    /* cached now */
  put(pt, p, 0);
  assert.is(pt.prune(a, a + 4096), 3);
  assert.is(pt.lookup(a), GPT_NO_DIR);
  pt.populate(GB1 * 100);                        /* recycles the freed slots elsewhere */
  assert.is(pt.lookup(a), GPT_NO_DIR);
  const q = pt.populate(a);
  assert.is(pt.lookup(a), q);
  assert.is(pt.entry_addr(q), a);
  assert.is(pt.lookup(a + 2 ** 48), GPT_NO_DIR);
  assert.is(pt.lookup(-a), GPT_NO_DIR);
});

test.run();
