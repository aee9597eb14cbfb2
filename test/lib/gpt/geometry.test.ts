/*
 * test/lib/gpt/geometry.test.ts - levels, shifts and index math of lib/gpt
 * for 2, 3, 4 and 5 levels, with 32-bit and 64-bit entries.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpt_layout_init, gpt_index, gpt_level_end } from '../../../lib/gpt/geometry.js';
import { gpt } from '../../../lib/gpt/gpt.js';
import { gpt_u32_format, hmm_pt_format } from '../../../lib/gpt/formats.js';
import { GPT_NO_DIR, type gpt_format } from '../../../include/linux/gpt.js';

const shapes = [
  { g: { address_bits: 30, level_bits: 9, page_shift: 12 }, levels: 2, shifts: [21, 12], top: 512 },
  { g: { address_bits: 39, level_bits: 9, page_shift: 12 }, levels: 3, shifts: [30, 21, 12], top: 512 },
  { g: { address_bits: 48, level_bits: 9, page_shift: 12 }, levels: 4, shifts: [39, 30, 21, 12], top: 512 },
  { g: { address_bits: 53, level_bits: 9, page_shift: 12 }, levels: 5, shifts: [48, 39, 30, 21, 12], top: 32 },
  { g: { address_bits: 32, level_bits: 10, page_shift: 12 }, levels: 2, shifts: [22, 12], top: 1024 },
  { g: { address_bits: 36, level_bits: 8, page_shift: 12 }, levels: 3, shifts: [28, 20, 12], top: 256 },
  { g: { address_bits: 44, level_bits: 16, page_shift: 12 }, levels: 2, shifts: [28, 12], top: 65536 },
];

for (const s of shapes) {
  test(`a ${s.g.address_bits}-bit table with ${s.g.level_bits} bits per level has ${s.levels} levels`, () => {
    const L = gpt_layout_init(s.g);
    assert.is(L.levels, s.levels);
    assert.is(L.llevel, s.levels - 1);
    assert.equal([...L.shift], s.shifts);
    assert.is(L.top_entries, s.top);
    assert.is(L.limit, 2 ** s.g.address_bits);
    assert.is(L.entries, 2 ** s.g.level_bits);
  });
}

test('impossible geometries are refused', () => {
  assert.throws(() => gpt_layout_init({ address_bits: 54, level_bits: 9, page_shift: 12 }));
  assert.throws(() => gpt_layout_init({ address_bits: 20, level_bits: 1, page_shift: 12 }));
  assert.throws(() => gpt_layout_init({ address_bits: 12, level_bits: 9, page_shift: 12 }));
  assert.throws(() => gpt_layout_init({ address_bits: 48, level_bits: 0, page_shift: 12 }));
});

test('index math is exact above 2^32 (compared with BigInt arithmetic)', () => {
  const L = gpt_layout_init({ address_bits: 53, level_bits: 9, page_shift: 12 });
  let x = 0x1234567;
  for (let n = 0; n < 2000; n++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const addr = (x % 2 ** 21) * 2 ** 32 + ((Math.imul(x, 2654435761) >>> 0));
    for (let l = 0; l < L.levels; l++) {
      const want = Number((BigInt(addr) >> BigInt(L.shift[l])) & BigInt(L.mask));
      assert.is(gpt_index(L, addr, l), want);
      const end = Number(((BigInt(addr) >> BigInt(L.shift[l])) + 1n) << BigInt(L.shift[l]));
      assert.is(gpt_level_end(L, addr, l), end);
    }
  }
});

function check_table(geom: { address_bits: number; level_bits: number; page_shift: number }, fmt: gpt_format,
                     value: (i: number) => number): void {
  const pt = new gpt(geom, fmt);
  const L = pt.layout;
  const addrs = [0, L.limit - 2 ** geom.page_shift];
  for (let l = 0; l < L.levels; l++) {
    const b = L.span[l] * L.entries;            /* a directory boundary at this level */
    if (b < L.limit) { addrs.push(b - 2 ** geom.page_shift, b, b + 2 ** geom.page_shift); }
  }
  addrs.forEach((a, i) => {
    const p = pt.populate(a);
    assert.ok(p >= 0, `populate ${a}`);
    assert.is(pt.entry_addr(p), a);
    assert.is(pt.entry_level(p), pt.llevel);
    assert.is(pt.dir_of(p) * pt.entries_per_dir + pt.entry_index(p), p);
    assert.is(pt.entry_index(p), pt.index(a, pt.llevel));
    assert.is(pt.lookup(a), p);
    pt.dir_lock(pt.dir_of(p));
    pt.set(p, value(i));
    pt.dir_unlock(pt.dir_of(p));
  });
  addrs.forEach((a, i) => assert.is(pt.load(pt.lookup(a)), value(i)));
  assert.is(pt.lookup(L.limit), GPT_NO_DIR);
  assert.is(pt.populate(L.limit), -14);
}

for (const s of shapes) {
  test(`${s.levels}-level table (${s.g.address_bits} bits) stores 32-bit entries at its edges`, () => {
    check_table(s.g, gpt_u32_format, (i) => (0xfffff000 - i * 4096 + 0x1c) >>> 0);
  });
  test(`${s.levels}-level table (${s.g.address_bits} bits) stores 64-bit entries at its edges`, () => {
    check_table(s.g, hmm_pt_format, (i) => 2 ** 53 - 1 - i * 2 ** 33);
  });
}

test.run();
