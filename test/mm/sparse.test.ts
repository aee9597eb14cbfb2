/*
 * test/mm/sparse.test.ts - the memory map in sections (mm/sparse.ts) and
 * the deferred free blocks of mm/page_alloc.ts: a machine far larger than
 * the host boots without struct pages or page bytes, both appear with
 * the pages used, and a section the allocator frees whole gives its bytes
 * back.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot } from '../helpers.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_NOHUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { MEMORY_DEVICE_PRIVATE, type dev_pagemap } from '../../include/linux/memremap.js';
import type { page } from '../../include/linux/mm_types.js';
import { memremap_pages } from '../../mm/memremap.js';
import {
  alloc_pages, __free_pages, nr_free_pages, totalram_pages, pfn_to_page, kmap_local_page, copy_highpage, clear_highpage,
} from '../../mm/page_alloc.js';
import { GFP_KERNEL, __GFP_ZERO } from '../../include/linux/gfp.js';
import {
  ram_content_bytes, sparse_stats, sparse_pool_limit, page_backing, sparse_free_slots, SECTION_BYTES, PAGES_PER_SECTION,
} from '../../mm/sparse.js';
import { kmemleak_scan } from '../../mm/kmemleak.js';

const t = suite('mm/sparse');
const GiB = 2 ** 30;

t('a 256 GiB machine boots with one section of struct pages (the zero page) and no page bytes', () => {
  boot({ ram_bytes: 256 * GiB });
  assert.is(totalram_pages(), 256 * GiB / PAGE_SIZE);
  assert.is(nr_free_pages(), totalram_pages() - 1, 'every frame but the zero page is free');
  assert.equal(sparse_stats(), { memmap_sections: 1, byte_sections: 0, sections_freed: 0, pooled: 0, slabs: 0, stale_pages: 0 });
  assert.is(ram_content_bytes(), 0);
});

t('a process writing pages 100 GiB apart on a 256 GiB machine reads them back and costs one section of bytes', () => {
  const p = boot({ ram_bytes: 256 * GiB });
  const len = 200 * GiB;
  const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.madvise(a, len, MADV_NOHUGEPAGE);
  p.write32(a, 0x11111111);
  p.write32(a + 100 * GiB, 0x22222222);
  p.write32(a + len - PAGE_SIZE, 0x33333333);
  assert.is(p.read32(a), 0x11111111);
  assert.is(p.read32(a + 100 * GiB), 0x22222222);
  assert.is(p.read32(a + len - PAGE_SIZE), 0x33333333);
  assert.is(p.read32(a + 50 * GiB), 0, 'an untouched page reads zero (the zero page)');
  assert.is(ram_content_bytes(), SECTION_BYTES, 'three pages allocated from one section');
  assert.is(sparse_stats().memmap_sections, 1);
  assert.is(p.munmap(a, len), 0);
  assert.equal(kmemleak_scan([]), [], 'kmemleak walks the present sections and finds every frame freed');
});

t('pfn_to_page gives a handle of the same struct page every time, its section created on first use', () => {
  boot({ ram_bytes: 64 * GiB });
  const pfn = totalram_pages() - 7;
  const before = sparse_stats().memmap_sections;
  const pg = pfn_to_page(pfn);
  assert.is(pg.pfn, pfn);
  assert.is(pfn_to_page(pfn).pfn, pg.pfn);
  assert.is(pfn_to_page(pfn).section, pg.section, 'both handles read the same arrays');
  assert.is(sparse_stats().memmap_sections, before + 1);
  assert.throws(() => pfn_to_page(pfn + 7), /invalid pfn/, 'past the end of RAM');
  assert.throws(() => pfn_to_page(pfn + 0.5), /invalid pfn/, 'not a frame number');
});

t('a section freed whole gives its bytes back (none pooled), and its pages read zero when used again', () => {
  const old = sparse_pool_limit(0);
  const p = boot({ ram_bytes: 1 * GiB });
  const n = 3 * PAGES_PER_SECTION;
  const a = p.mmap(0, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.madvise(a, n * PAGE_SIZE, MADV_NOHUGEPAGE);
  p.fill32(a, n * PAGE_SIZE, 7);
  assert.is(p.check32(a, n * PAGE_SIZE, 7), -1, 'data written across section boundaries reads back');
  const used = ram_content_bytes();
  assert.ok(used >= 3 * SECTION_BYTES, `${used} bytes for 3 sections of pages`);
  assert.is(p.munmap(a, n * PAGE_SIZE), 0);
  const st = sparse_stats();
  assert.ok(st.sections_freed >= 2, `${st.sections_freed} sections freed`);
  assert.ok(ram_content_bytes() <= used - 2 * SECTION_BYTES);
  /* a non-zeroing allocation of a whole freed section sees fresh (zero) bytes */
  const blk = alloc_pages(GFP_KERNEL, 10)!;
  assert.ok(kmap_local_page(blk).every((b) => b === 0));
  __free_pages(blk, 10);
  sparse_pool_limit(old);
});

t('empty slabs up to the pool limit are kept and reused, reading zero; content bytes stay bounded over repeated rounds', () => {
  const old = sparse_pool_limit(2 * SECTION_BYTES);
  const p = boot({ ram_bytes: 1 * GiB });
  const n = 4 * PAGES_PER_SECTION, len = n * PAGE_SIZE;
  let high = 0;
  for (let round = 0; round < 3; round++) {
    const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.madvise(a, len, MADV_NOHUGEPAGE);
    assert.is(p.read32(a + len - PAGE_SIZE), 0, 'a page of a reused section reads zero');
    p.fill32(a, len, round);
    assert.is(p.check32(a, len, round), -1);
    high = Math.max(high, ram_content_bytes());
    assert.is(p.munmap(a, len), 0);
    assert.ok(sparse_stats().pooled <= 2, 'at most the pool limit of empty slabs is kept');
  }
  /* zero page + 4 sections in use: slabs of 1, 1, 2 and 4 slots (each as large as the sections in use) */
  assert.ok(high <= 8 * SECTION_BYTES, `${high} bytes at most over the rounds`);
  sparse_pool_limit(old);
});

t('copy_highpage and clear_highpage work across sections; clearing an unused section allocates nothing', () => {
  boot({ ram_bytes: 64 << 20 });
  const a = alloc_pages(GFP_KERNEL, 10)!, b = alloc_pages(GFP_KERNEL, 10)!;
  assert.is(ram_content_bytes(), 0, 'allocation alone touches no bytes');
  clear_highpage(a);
  assert.is(ram_content_bytes(), 0, 'clearing a page of a section without bytes is free');
  kmap_local_page(a).fill(0x5a);
  copy_highpage(pfn_to_page(b.pfn + 1023), a);
  assert.ok(kmap_local_page(pfn_to_page(b.pfn + 1023)).every((x) => x === 0x5a));
  assert.is(ram_content_bytes(), 2 * SECTION_BYTES);
  const z = alloc_pages(GFP_KERNEL | __GFP_ZERO, 0)!;
  assert.ok(kmap_local_page(z).every((x) => x === 0));
  __free_pages(a, 10);                          /* give back what the test took (teardown leak check) */
  __free_pages(b, 10);
  __free_pages(z, 0);
});

t('an 80 GiB device range costs nothing until a page is used, and its struct pages point at the pagemap', () => {
  boot({ ram_bytes: 256 * GiB });
  const pg: dev_pagemap = {
    type: MEMORY_DEVICE_PRIVATE, range: { start: 0, end: 0 }, nr_range: 0, owner: 'dev', name: 'vram',
    ops: { folio_free(_f: page) {}, *migrate_to_ram() { return 0; } },
  };
  assert.is(memremap_pages(pg, 80 * GiB / PAGE_SIZE), 0);
  assert.is(ram_content_bytes(), 0);
  const mid = pfn_to_page(pg.start_pfn! + 10_000_000);
  assert.is(mid.pgmap, pg);
  assert.is(pfn_to_page(pg.start_pfn! + 10_000_000).section, mid.section);
  kmap_local_page(mid)[5] = 9;
  assert.is(ram_content_bytes(), SECTION_BYTES);
  assert.is(kmap_local_page(pfn_to_page(pg.start_pfn! + 10_000_000))[5], 9);
});

t('section bytes come from slabs as large as the sections in use; an empty slab goes back to the host', () => {
  const old = sparse_pool_limit(0);
  boot({ ram_bytes: 1 * GiB });
  const blocks: page[] = [];
  for (let i = 0; i < 5; i++) {
    const b = alloc_pages(GFP_KERNEL, 10)!;
    kmap_local_page(b)[0] = 0xaa;               /* the section's bytes: a slot now */
    blocks.push(b);
  }
  /* 0 sections in use -> a slab of 1; 1 -> 1; 2 -> 2 (two sections); 4 -> 4 (one used, three fresh) */
  assert.equal(sparse_stats(), { memmap_sections: 6, byte_sections: 5, sections_freed: 0, pooled: 3, slabs: 4, stale_pages: 0 });
  assert.is(ram_content_bytes(), 8 * SECTION_BYTES);
  __free_pages(blocks[2], 10);
  assert.is(ram_content_bytes(), 8 * SECTION_BYTES, 'the slab of two still holds a section');
  assert.is(sparse_stats().pooled, 4);
  __free_pages(blocks[3], 10);
  assert.is(ram_content_bytes(), 6 * SECTION_BYTES, 'the slab of two is empty: given back');
  assert.equal([sparse_stats().slabs, sparse_stats().sections_freed], [3, 2]);
  __free_pages(blocks[0], 10);
  __free_pages(blocks[1], 10);
  __free_pages(blocks[4], 10);
  assert.equal([ram_content_bytes(), sparse_stats().slabs, sparse_stats().pooled], [0, 0, 0], 'every slab given back');
  sparse_pool_limit(old);
});

t('a reused slot is not zeroed whole: its pages are stale and each is zeroed once, on first access or by clear_highpage', () => {
  const old = sparse_pool_limit(Infinity);
  boot({ ram_bytes: 64 << 20 });
  const a = alloc_pages(GFP_KERNEL, 10)!;
  page_backing(a).bytes.fill(0x77);             /* the whole section dirty */
  const slab = page_backing(a).bytes.buffer, at = page_backing(a).bytes.byteOffset;
  __free_pages(a, 10);
  assert.equal([sparse_stats().byte_sections, sparse_stats().pooled], [0, 1], 'the slot went back to its (kept) slab');
  const b = alloc_pages(GFP_KERNEL, 10)!;
  const pg = (i: number) => pfn_to_page(b.pfn + i);
  assert.ok(kmap_local_page(pg(5)).every((x) => x === 0), 'a stale page reads zero');
  assert.is(kmap_local_page(pg(5)).buffer, slab, 'the same slot again');
  assert.is(sparse_stats().stale_pages, PAGES_PER_SECTION - 1, 'only the page touched was zeroed');
  assert.is(new Uint8Array(slab, at + 7 * PAGE_SIZE, PAGE_SIZE)[100], 0x77, 'the other pages keep their old bytes until used');
  clear_highpage(pg(7));
  assert.ok(kmap_local_page(pg(7)).every((x) => x === 0));
  kmap_local_page(pg(5)).fill(0x31);
  copy_highpage(pg(8), pg(5));                   /* onto a stale page: written once by the copy */
  assert.ok(kmap_local_page(pg(8)).every((x) => x === 0x31));
  copy_highpage(pg(9), pg(10));                  /* from a stale page: it reads zero */
  assert.ok(kmap_local_page(pg(9)).every((x) => x === 0) && kmap_local_page(pg(10)).every((x) => x === 0));
  assert.is(sparse_stats().stale_pages, PAGES_PER_SECTION - 5);
  const { bytes, offset } = page_backing(pg(1000));
  assert.ok(bytes.subarray(offset).every((x) => x === 0), 'page_backing zeroes the rest of the section it exposes');
  assert.is(sparse_stats().stale_pages, PAGES_PER_SECTION - 5 - 24);
  __free_pages(b, 10);
  assert.is(sparse_stats().stale_pages, 0, 'a freed section has no stale pages left to track');
  sparse_pool_limit(old);
});

t('sparse_free_slots: only slots handed back; scribbling on them is never seen by a section that takes one again', () => {
  const old = sparse_pool_limit(Infinity);
  boot({ ram_bytes: 64 << 20 });
  const a = alloc_pages(GFP_KERNEL, 10)!;
  const b = alloc_pages(GFP_KERNEL, 10)!;
  kmap_local_page(a)[0] = 1;
  kmap_local_page(b)[0] = 2;                    /* two sections with bytes: slabs of 1 and 1 */
  assert.equal(sparse_free_slots(), [], 'no slot handed back yet (fresh slots are not offered: they must stay zero)');
  const at = page_backing(a).bytes;
  __free_pages(a, 10);
  const free = sparse_free_slots();
  assert.is(free.length, 1);
  assert.equal([free[0].buffer, free[0].byteOffset, free[0].length], [at.buffer, at.byteOffset, SECTION_BYTES], 'the slot a used');
  free[0].fill(0xee);                           /* a host baseline writes over it */
  assert.is(kmap_local_page(b)[0], 2, 'the section in use is untouched');
  const c = alloc_pages(GFP_KERNEL, 10)!;
  assert.is(page_backing(c).bytes.byteOffset, at.byteOffset, 'the scribbled slot is taken again');
  for (const i of [0, 1, 511, 1023]) assert.ok(kmap_local_page(pfn_to_page(c.pfn + i)).every((x) => x === 0), `page ${i} reads zero`);
  assert.equal(sparse_free_slots(), []);
  __free_pages(b, 10);
  __free_pages(c, 10);
  sparse_pool_limit(old);
});

t.run();
