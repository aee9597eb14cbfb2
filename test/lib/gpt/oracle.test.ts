/*
 * test/lib/gpt/oracle.test.ts - a seeded random mix of populate / set /
 * huge leaves / set_bits / clear_range / prune / lookup, 100,000 operations
 * per table, checked against a Map oracle: entry values, the walk's view,
 * directory refcounts and the per-level directory counts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpt } from '../../../lib/gpt/gpt.js';
import { x86_64_pgtable_format, gpt_u32_format, GPT_U32_VALID, GPT_U32_HUGE } from '../../../lib/gpt/formats.js';
import type { gpt_format, gpt_geometry, gpt_walk_ops } from '../../../include/linux/gpt.js';
import { _PAGE_PRESENT, _PAGE_PSE, _PAGE_DIRTY } from '../../../include/linux/pgtable_types.js';

/* xorshift32: seeded, so a failure replays */
class Rng {
  constructor(private s: number) {}
  next(): number {
    let x = this.s;
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  below(n: number): number { return this.next() % n; }
}

interface model {
  geom: gpt_geometry;
  fmt: gpt_format;
  huge_level: number;            /* the level where huge leaves go */
  regions: number[];             /* where addresses cluster */
  region_size: number;
  leaf(r: Rng, addr: number): number;
  huge(r: Rng, addr: number): number;
  dirty: number;
}

const x86_model: model = {
  geom: { address_bits: 48, level_bits: 9, page_shift: 12 },
  fmt: x86_64_pgtable_format,
  huge_level: 2,
  regions: [0, 2 ** 39 - 2 ** 25, 0x7f0000000000, 2 ** 48 - 2 ** 26],
  region_size: 2 ** 26,
  leaf: (r, _a) => (r.below(2) ? (r.below(2 ** 21) * 2 ** 19 + r.below(2 ** 19)) * 4096 + _PAGE_PRESENT
                               : r.below(2 ** 20) * 2 + 2),    /* present, or a swap entry */
  huge: (r, _a) => r.below(2 ** 20) * 2 ** 21 + _PAGE_PRESENT + _PAGE_PSE,
  dirty: _PAGE_DIRTY,
};

const u32_model: model = {
  geom: { address_bits: 32, level_bits: 6, page_shift: 12 },  /* 4 levels: 2/6/6/6 + 12 */
  fmt: gpt_u32_format,
  huge_level: 2,
  regions: [0, 2 ** 31, 2 ** 32 - 2 ** 22],
  region_size: 2 ** 22,
  leaf: (r, _a) => (r.below(2 ** 20) * 4096 + GPT_U32_VALID) >>> 0,
  huge: (r, _a) => (r.below(2 ** 14) * 2 ** 18 + GPT_U32_VALID + GPT_U32_HUGE) >>> 0,
  dirty: 0x100,
};

class collect_ops implements gpt_walk_ops {
  seen = new Map<number, number>();
  levels = new Map<number, number>();
  leaf(_ptr: number, addr: number, level: number, e: number): number {
    this.seen.set(addr, e);
    this.levels.set(addr, level);
    return 0;
  }
}

function put(pt: gpt, ptr: number, e: number): void {
  const s = pt.dir_of(ptr);
  pt.dir_lock(s);
  pt.set(ptr, e);
  pt.dir_unlock(s);
}

/* every live directory: ref == 1 + non-none entries; per-level counts match */
function check_structure(pt: gpt): void {
  const count = new Array(pt.levels).fill(0);
  const visit = (slot: number, level: number): void => {
    count[level]++;
    let used = 0;
    for (let i = 0; i < pt.entries_per_dir; i++) {
      const ptr = slot * pt.entries_per_dir + i;
      const e = pt.load(ptr);
      if (e === 0) continue;
      used++;
      if (level < pt.llevel && pt.is_link(e)) {
        const c = pt.link_slot(e);
        assert.is(pt.dir_parent(c), ptr);
        assert.is(pt.dir_level(c), level + 1);
        assert.is(pt.dir_base(c), pt.entry_addr(ptr));
        visit(c, level + 1);
      }
    }
    assert.is(pt.dir_refcount(slot), 1 + used, `refcount of directory ${slot}`);
  };
  visit(pt.root, 0);
  assert.equal(pt.stats().dirs_per_level, count);
  assert.is(pt.stats().slots_used, count.reduce((a, b) => a + b, 0));
}

function run_model(m: model, seed: number, ops: number): void {
  const r = new Rng(seed);
  const pt = new gpt(m.geom, m.fmt, { initialSlots: 4 });
  const page = 2 ** m.geom.page_shift, hspan = pt.span[m.huge_level];
  const ptes = new Map<number, number>();        /* page address -> entry */
  const huges = new Map<number, number>();       /* huge-leaf address -> entry */
  const addr = (): number => m.regions[r.below(m.regions.length)] + r.below(m.region_size / page) * page;
  const hbase = (a: number): number => Math.floor(a / hspan) * hspan;
  const pages_in = (a: number, b: number, f: (p: number) => void): void => {
    for (const p of [...ptes.keys()]) if (p >= a && p < b) f(p);
  };
  let warnings = 0;
  for (let n = 0; n < ops; n++) {
    const op = r.below(100);
    if (op < 40) {                                /* map a page */
      const a = addr();
      const p = pt.populate(a);
      if (huges.has(hbase(a))) { assert.is(p, -17); continue; }
      assert.ok(p >= 0);
      const e = m.leaf(r, a);
      put(pt, p, e);
      ptes.set(a, e);
    } else if (op < 50) {                         /* unmap a known page */
      const a = addr();
      const p = pt.lookup(a);
      if (p >= 0) { put(pt, p, 0); ptes.delete(a); }
      else assert.not.ok(ptes.has(a));
    } else if (op < 56) {                         /* map a huge leaf where nothing is below */
      const a = hbase(addr());
      const p = pt.populate(a, m.huge_level);
      assert.ok(p >= 0);
      const cur = pt.load(p);
      if (cur !== 0 && pt.is_link(cur)) continue;
      const e = m.huge(r, a);
      put(pt, p, e);
      huges.set(a, e);
    } else if (op < 66) {                         /* the device sets a dirty bit */
      const a = addr();
      const p = pt.lookup_leaf(a);
      const h = huges.get(hbase(a)), e = ptes.get(a);
      const old = pt.set_bits(p, m.dirty);
      if (e !== undefined) { ptes.set(a, e + (m.dirty & ~(e % 2 ** 32) ? m.dirty : 0)); assert.ok(old !== 0); }
      else if (h !== undefined) { huges.set(hbase(a), h + (m.dirty & ~(h % 2 ** 32) ? m.dirty : 0)); }
      else assert.is(old, 0);
    } else if (op < 76) {                         /* clear a range */
      const a = addr(), len = r.below(8) === 0 ? r.below(4) * hspan : r.below(64) * page;
      pt.clear_range(a, a + len);
      pages_in(a, a + len, (p) => ptes.delete(p));
      for (const h of [...huges.keys()]) {
        if (h >= a && h + hspan <= a + len) huges.delete(h);
        else if (len > 0 && h < a + len && h + hspan > a) warnings++;
      }
    } else if (op < 84) {                         /* prune a range */
      const a = addr(), len = r.below(4) * hspan + r.below(64) * page;
      pt.prune(a, a + len);
    } else {                                      /* look up a random address */
      const a = addr();
      const p = pt.lookup_leaf(a);
      const h = huges.get(hbase(a));
      const want = h ?? ptes.get(a) ?? 0;
      assert.is(pt.load(p), want, `lookup of ${a}`);
      if (h !== undefined) assert.is(pt.entry_level(p), m.huge_level);
    }
    if (n % 20000 === 19999) check_structure(pt);
  }
  /* final: the walk sees exactly the oracle, and structure invariants hold */
  const c = new collect_ops();
  pt.walk(0, pt.limit, c);
  assert.is(c.seen.size, ptes.size + huges.size);
  for (const [a, e] of ptes) { assert.is(c.seen.get(a), e); assert.is(c.levels.get(a), pt.llevel); }
  for (const [a, e] of huges) { assert.is(c.seen.get(a), e); assert.is(c.levels.get(a), m.huge_level); }
  assert.is(pt.stats().warnings, warnings);
  check_structure(pt);
  /* and it all goes away */
  pt.clear_range(0, pt.limit);
  assert.ok(pt.prune(0, pt.limit) > 0);
  assert.equal(pt.stats().dirs_per_level, [1, ...new Array(pt.llevel).fill(0)]);
  assert.is(pt.dir_refcount(pt.root), 1);
  assert.is(pt.stats().uaf, 0);
}

test('100,000 random operations on an x86-64 table agree with a Map oracle', () => {
  run_model(x86_model, 0x9e3779b9, 100_000);
});

test('100,000 random operations on a 4-level 32-bit table agree with a Map oracle', () => {
  run_model(u32_model, 12345, 100_000);
});

test.run();
