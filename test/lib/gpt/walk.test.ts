/*
 * test/lib/gpt/walk.test.ts - walk (pre / leaf / hole / post), clear_range,
 * the reference-holding iterator and the 2014 serial rule, on one thread.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpt } from '../../../lib/gpt/gpt.js';
import { x86_64_pgtable_format } from '../../../lib/gpt/formats.js';
import { GPT_ITER_FAULT, GPT_ITER_UPDATE, GPT_NO_DIR, type gpt_walk_ops } from '../../../include/linux/gpt.js';
import { _PAGE_PRESENT, _PAGE_PSE } from '../../../include/linux/pgtable_types.js';

const X86 = { address_bits: 48, level_bits: 9, page_shift: 12 };
const MB2 = 2 ** 21, GB1 = 2 ** 30, TOP = 2 ** 48;
const pte = (pfn: number) => pfn * 4096 + _PAGE_PRESENT;

function put(pt: gpt, ptr: number, e: number): void {
  const s = pt.dir_of(ptr);
  pt.dir_lock(s);
  pt.set(ptr, e);
  pt.dir_unlock(s);
}

/* records every callback as a string */
class trace_ops implements gpt_walk_ops {
  log: string[] = [];
  stop_at = -1;
  constructor(readonly pt: gpt) {}
  pre(slot: number, level: number, s: number, e: number): number {
    this.log.push(`pre L${level} ${s.toString(16)}-${e.toString(16)}`);
    assert.is(this.pt.dir_level(slot), level);
    return 0;
  }
  post(_slot: number, level: number): number { this.log.push(`post L${level}`); return 0; }
  leaf(ptr: number, addr: number, level: number, e: number): number {
    this.log.push(`leaf L${level} ${addr.toString(16)} ${e.toString(16)}`);
    assert.is(this.pt.entry_addr(ptr), addr);
    return addr === this.stop_at ? 42 : 0;
  }
  hole(s: number, e: number, level: number): number {
    this.log.push(`hole L${level} ${s.toString(16)}-${e.toString(16)}`);
    return 0;
  }
}

test('holes are coalesced across levels and directories, leaves come in address order', () => {
  const pt = new gpt(X86, x86_64_pgtable_format);
  put(pt, pt.populate(0x200000), pte(1));
  put(pt, pt.populate(0x201000), pte(2));
  put(pt, pt.populate(0x7f0000000000 + 4096), pte(3));
  pt.populate(0x40000000);                       /* an empty PTE directory: a hole */
  const ops = new trace_ops(pt);
  assert.is(pt.walk(0, TOP, ops), 0);
  const leaves = ops.log.filter((l) => !l.startsWith('pre') && !l.startsWith('post'));
  assert.equal(leaves, [
    'hole L2 0-200000',
    'leaf L3 200000 1001',
    'leaf L3 201000 2001',
    'hole L3 202000-7f0000001000',
    'leaf L3 7f0000001000 3001',
    'hole L3 7f0000002000-1000000000000',
  ]);
  assert.is(ops.log[0], 'pre L0 0-1000000000000');
  assert.is(ops.log[ops.log.length - 1], 'post L0');
  assert.is(ops.log.filter((l) => l.startsWith('pre')).length, ops.log.filter((l) => l.startsWith('post')).length);
});

test('a walk of an unaligned range clips its holes to the range', () => {
  const pt = new gpt(X86, x86_64_pgtable_format);
  put(pt, pt.populate(0x5000), pte(5));
  const ops = new trace_ops(pt);
  pt.walk(0x3800, 0x9800, ops);
  assert.equal(ops.log.filter((l) => l.startsWith('hole') || l.startsWith('leaf')),
    ['hole L3 3800-5000', 'leaf L3 5000 5001', 'hole L3 6000-9800']);
  const empty = new trace_ops(pt);
  pt.walk(GB1 * 9 + 0x123, GB1 * 9 + 0x456, empty);
  assert.equal(empty.log.filter((l) => l.startsWith('hole')), ['hole L1 240000123-240000456']);
});

test('a non-zero return stops the walk, is returned, and post still runs for entered directories', () => {
  const pt = new gpt(X86, x86_64_pgtable_format);
  for (let i = 0; i < 4; i++) put(pt, pt.populate(i * 4096), pte(i + 1));
  const ops = new trace_ops(pt);
  ops.stop_at = 2 * 4096;
  assert.is(pt.walk(0, TOP, ops), 42);
  assert.is(ops.log.filter((l) => l.startsWith('leaf')).length, 3);
  assert.is(ops.log.filter((l) => l.startsWith('post')).length, 4);
  assert.is(pt.dir_refcount(pt.dir_of(pt.lookup(0))), 5);   /* walker references dropped */
});

test('huge leaves are reported once with their aligned address; swap entries too', () => {
  const pt = new gpt(X86, x86_64_pgtable_format);
  put(pt, pt.populate(MB2 * 3, 2), 0x80000000 + _PAGE_PRESENT + _PAGE_PSE);
  put(pt, pt.populate(MB2 * 5 + 4096), 0x3e00);  /* non-present: a swap entry */
  const ops = new trace_ops(pt);
  pt.walk(MB2 * 3 + 4096, MB2 * 6, ops);
  assert.equal(ops.log.filter((l) => l.startsWith('leaf') || l.startsWith('hole')), [
    'leaf L2 600000 80000081', 'hole L2 800000-a01000', 'leaf L3 a01000 3e00', 'hole L3 a02000-c00000']);
});

test('clear_range clears leaves and whole huge leaves, and warns on a partial huge leaf', () => {
  const pt = new gpt(X86, x86_64_pgtable_format);
  put(pt, pt.populate(MB2 * 3, 2), 0x80000000 + _PAGE_PRESENT + _PAGE_PSE);
  for (let i = 0; i < 10; i++) put(pt, pt.populate(MB2 * 8 + i * 4096), pte(i + 1));
  assert.is(pt.clear_range(MB2 * 3 + 4096, MB2 * 8 + 3 * 4096), 3);
  assert.is(pt.stats().warnings, 1);
  assert.is(pt.load(pt.lookup(MB2 * 3, 2)), 0x80000000 + _PAGE_PRESENT + _PAGE_PSE);
  assert.is(pt.clear_range(0, TOP), 8);
  assert.is(pt.load(pt.lookup(MB2 * 3, 2)), 0);
  assert.is(pt.dir_refcount(pt.dir_of(pt.lookup(MB2 * 8))), 1);
});

test('an iterator keeps its directories referenced and reuses them for nearby lookups', () => {
  const pt = new gpt(X86, x86_64_pgtable_format);
  const p = pt.populate(0x1000);
  const leaf = pt.dir_of(p), pmd = pt.dir_of(pt.lookup(0x1000, 2));
  const it = pt.iter_init();
  assert.is(it.lookup(0x1000), p);
  assert.is(it.lookup(0x5000), p + 4);
  assert.is(pt.dir_refcount(leaf), 2);
  assert.is(pt.dir_refcount(pmd), 3);            /* link + one child + iterator */
  assert.is(it.lookup(GB1 * 4), GPT_NO_DIR);      /* moves away: drops the leaf and PMD */
  assert.is(pt.dir_refcount(leaf), 1);
  const q = it.populate(GB1 * 4 + 0x3000);
  assert.ok(q >= 0);
  assert.is(pt.dir_refcount(pt.dir_of(q)), 2);
  it.fini();
  assert.is(pt.dir_refcount(pt.dir_of(q)), 1);
  assert.is(pt.stats().uaf, 0);
});

test('readers ignore directories created by a faulter still in flight (the 2014 serial rule)', () => {
  const pt = new gpt(X86, x86_64_pgtable_format);
  put(pt, pt.populate(0x1000), pte(1));          /* an old directory */
  const f = pt.iter_init(GPT_ITER_FAULT);
  assert.ok(f.serial > 0);
  const p = f.populate(GB1 * 2);                 /* new PMD and PTE directories */
  put(pt, p, pte(2));
  const q = f.populate(0x2000);                  /* an old directory: visible at once */
  put(pt, q, pte(3));
  assert.is(pt.dir_serial(pt.dir_of(p)), f.serial);
  const r = pt.iter_init(GPT_ITER_UPDATE);
  assert.is(r.lookup(GB1 * 2), GPT_NO_DIR);
  assert.is(pt.load(r.lookup(0x2000)), pte(3));
  const seen = new trace_ops(pt);
  r.walk(0, TOP, seen);
  assert.equal(seen.log.filter((l) => l.startsWith('leaf')), ['leaf L3 1000 1001', 'leaf L3 2000 3001']);
  assert.is(pt.lookup(GB1 * 2), p);              /* a plain lookup sees everything */
  f.fini();
  assert.is(pt.dir_serial(pt.dir_of(p)), 0);
  /* the faulter is done: even a reader whose snapshot predates it may see its complete directories */
  assert.is(r.lookup(GB1 * 2), p);
  r.fini();
  const r2 = pt.iter_init(GPT_ITER_UPDATE);
  assert.is(pt.load(r2.lookup(GB1 * 2)), pte(2));
  r2.fini();
});

test('the updater serial follows the oldest faulter still in flight', () => {
  const pt = new gpt(X86, x86_64_pgtable_format);
  const f1 = pt.iter_init(GPT_ITER_FAULT);
  const f2 = pt.iter_init(GPT_ITER_FAULT);
  const a = f1.populate(GB1);
  const b = f2.populate(2 ** 39 * 3);              /* under another PGD entry */
  f2.fini();
  const r = pt.iter_init(GPT_ITER_UPDATE);
  assert.is(r.snap, f1.serial);
  assert.is(r.lookup(GB1), GPT_NO_DIR);           /* f1 still in flight */
  assert.is(r.lookup(2 ** 39 * 3), b);            /* f2 finished: stamps cleared */
  f1.fini();
  r.fini();
  const r2 = pt.iter_init(GPT_ITER_UPDATE);
  assert.is(r2.lookup(GB1), a);
  r2.fini();
});

test.run();
