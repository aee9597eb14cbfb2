/*
 * test/mm/memremap.test.ts - ZONE_DEVICE pages (mm/memremap.ts):
 * memremap_pages() checks and fills the pagemap, device pages are handed
 * out with zone_device_page_init() and come back through folio_free,
 * never through the buddy allocator.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot } from '../helpers.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import {
  MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_FS_DAX, is_device_private_page,
  is_device_coherent_page, type dev_pagemap,
} from '../../include/linux/memremap.js';
import type { page } from '../../include/linux/mm_types.js';
import { PageLocked } from '../../include/linux/page-flags.js';
import { EINVAL, EBUSY } from '../../include/uapi/asm-generic/errno.js';
import {
  memremap_pages, memunmap_pages, zone_device_page_init, pgmap_pages, request_free_mem_region,
} from '../../mm/memremap.js';
import {
  pfn_to_page, pfn_valid, put_page, get_page, nr_free_pages, page_backing, kmap_local_page, totalram_pages,
} from '../../mm/page_alloc.js';
import { folio_unlock } from '../../mm/filemap.js';
import { get_counter } from '../../lib/sim/trace.js';
import { warnings } from '../../include/asm-generic/bug.js';
import { Scheduler, runSync, sched_yield, DeadlockError } from '../../lib/sim/sched.js';
import { kmemleak_exempt } from '../leakcheck/uvu.js';

const t = suite('mm/memremap');
t.before.each(() => { boot(); });

function pgmap(type: number, freed: page[] = [], owner: unknown = 'dev'): dev_pagemap {
  return {
    type, range: { start: 0, end: 0 }, nr_range: 0, owner, name: 'test',
    ops: { folio_free(f: page) { freed.push(f); }, *migrate_to_ram() { return 0; } },
  };
}

t('memremap_pages refuses what Linux refuses', () => {
  assert.is(memremap_pages(pgmap(MEMORY_DEVICE_PRIVATE), 0), -EINVAL, 'empty range');
  assert.is(memremap_pages(pgmap(MEMORY_DEVICE_PRIVATE, [], null), 16), -EINVAL, 'private memory needs an owner');
  const nofault = pgmap(MEMORY_DEVICE_PRIVATE);
  delete (nofault.ops as { migrate_to_ram?: unknown }).migrate_to_ram;
  assert.is(memremap_pages(nofault, 16), -EINVAL, 'private memory needs migrate_to_ram');
  assert.is(memremap_pages(pgmap(MEMORY_DEVICE_COHERENT, [], null), 16), -EINVAL, 'coherent needs an owner');
  assert.is(memremap_pages(pgmap(MEMORY_DEVICE_FS_DAX), 16), -EINVAL, 'type not modelled');
  const ok = pgmap(MEMORY_DEVICE_COHERENT);
  assert.is(memremap_pages(ok, 16), 0);
  assert.is(memremap_pages(ok, 16), -EBUSY, 'already mapped');
});

t('memremap_pages creates one free struct page per frame, above RAM, pointing at the pagemap', () => {
  const pg = pgmap(MEMORY_DEVICE_PRIVATE);
  assert.is(memremap_pages(pg, 32), 0);
  assert.is(pg.nr_pages, 32);
  assert.ok(pg.start_pfn! >= totalram_pages(), 'device pfns sit above RAM');
  assert.equal(pg.range, { start: pg.start_pfn! * PAGE_SIZE, end: (pg.start_pfn! + 32) * PAGE_SIZE - 1 });
  const pages = pgmap_pages(pg);
  assert.is(pages.length, 32);
  for (const [i, p] of pages.entries()) {
    assert.is(p.pfn, pg.start_pfn! + i);
    assert.is(pfn_to_page(p.pfn).pfn, p.pfn);
    assert.is(p.pgmap, pg);
    assert.is(p._refcount, 0, 'free: owned by the driver');
    assert.ok(is_device_private_page(p));
    assert.not.ok(is_device_coherent_page(p));
  }
  assert.ok(pfn_valid(pg.start_pfn! + 31));
  assert.not.ok(pfn_valid(pg.start_pfn! + 32));
});

t('a device page is handed out locked with one reference and its last put goes to folio_free, not the buddy allocator', () => {
  const freed: page[] = [];
  const pg = pgmap(MEMORY_DEVICE_PRIVATE, freed);
  memremap_pages(pg, 8);
  const p = pgmap_pages(pg)[3];
  const free_before = nr_free_pages();
  zone_device_page_init(p);
  assert.is(p._refcount, 1);
  assert.ok(PageLocked(p));
  assert.is(pg.ref, 1, 'the pagemap counts pages in use');
  get_page(p);
  put_page(p);
  assert.is(freed.length, 0, 'not the last reference');
  folio_unlock(p);
  put_page(p);
  assert.equal(freed, [p], 'folio_free got the page');
  assert.is(p._refcount, 0);
  assert.is(p.mapping, null);
  assert.is(pg.ref, 0);
  assert.is(nr_free_pages(), free_before, 'the buddy allocator never saw it');
  assert.is(get_counter('zone_device_free'), 1);
  zone_device_page_init(p);
  assert.throws(() => zone_device_page_init(p), /busy device pfn/, 'handing out a busy page is a simulator bug');
  folio_unlock(p);
  put_page(p);                               /* give the page back to the driver */
});

t('a compound device folio is freed as one unit and the driver sees its order', () => {
  const freed: page[] = [];
  const orders: number[] = [];
  const pg = pgmap(MEMORY_DEVICE_COHERENT, freed);
  pg.ops.folio_free = (f: page) => { freed.push(f); orders.push(f.order); };
  memremap_pages(pg, 16);
  const head = pgmap_pages(pg)[0];
  zone_device_page_init(head, 2);
  assert.is(pg.ref, 4);
  const tail = pgmap_pages(pg)[3];
  assert.is(tail.compound_head.pfn, head.pfn);
  folio_unlock(head);
  put_page(tail);
  assert.equal(freed, [head]);
  assert.equal(orders, [2]);
  assert.is(pg.ref, 0);
  assert.is(tail.compound_head, tail, 'split back into small pages for the free list');
});

t('device-coherent bytes are real memory the CPU (and the driver) can read and write', () => {
  const pg = pgmap(MEMORY_DEVICE_COHERENT);
  memremap_pages(pg, 4);
  const p = pgmap_pages(pg)[1];
  kmap_local_page(p).fill(0xab);
  const { bytes, offset } = page_backing(p);
  assert.is(bytes[offset], 0xab);
  assert.is(bytes[offset + PAGE_SIZE - 1], 0xab);
  assert.is(kmap_local_page(pgmap_pages(pg)[0])[0], 0, 'neighbours untouched');
});

t('memunmap_pages of an idle pagemap removes the range at once', () => {
  const pg = pgmap(MEMORY_DEVICE_PRIVATE);
  memremap_pages(pg, 4);
  runSync(memunmap_pages(pg));
  assert.not.ok(pfn_valid(pg.start_pfn!));
  assert.equal(warnings(), []);
  assert.is(memremap_pages(pg, 4), 0, 'the pagemap can be mapped again');
});

t('memunmap_pages waits for the last page in use before the struct pages go (percpu_ref_kill + wait)', () => {
  const freed: page[] = [];
  const busy = pgmap(MEMORY_DEVICE_PRIVATE, freed);
  memremap_pages(busy, 4);
  const p = pgmap_pages(busy)[0];
  zone_device_page_init(p);
  folio_unlock(p);
  const order: string[] = [];
  const s = new Scheduler();
  s.spawn('unmap', function* () {
    yield* memunmap_pages(busy);
    order.push('unmapped');
  });
  s.spawn('user', function* () {
    yield* sched_yield();
    order.push(`pfn valid while in use: ${pfn_valid(p.pfn)}`);
    put_page(p);
  });
  s.run();
  assert.equal(order, ['pfn valid while in use: true', 'unmapped']);
  assert.equal(freed, [p], 'the page came back through folio_free first');
  assert.not.ok(pfn_valid(busy.start_pfn!));
  assert.is(get_counter('memunmap_pages_wait'), 1);
  assert.equal(warnings(), []);
});

t('zone_device_page_init while memunmap_pages drains the pagemap warns (percpu_ref_tryget_live fails once the ref is killed)', () => {
  const busy = pgmap(MEMORY_DEVICE_PRIVATE);
  memremap_pages(busy, 4);
  assert.is(busy.ref_live, true, 'live once mapped');
  const [p0, p1] = pgmap_pages(busy);
  zone_device_page_init(p0);
  assert.equal(warnings(), [], 'a live pagemap hands out pages quietly');
  const seen: string[] = [];
  const s = new Scheduler();
  s.spawn('unmap', function* () { yield* memunmap_pages(busy); seen.push('unmapped'); });
  s.spawn('user', function* () {
    yield* sched_yield();
    seen.push(`live ${busy.ref_live}`);
    zone_device_page_init(p1);                 /* a driver racing with its own teardown */
    seen.push(`ref ${busy.ref}`);
    for (const p of [p0, p1]) { folio_unlock(p); put_page(p); }
  });
  s.run();
  assert.equal(seen, ['live false', 'ref 2', 'unmapped'], 'the late page is counted and waited for too');
  assert.ok(warnings().some((w) => w.includes('zone_device_page_init after memunmap_pages')));
  assert.is(memremap_pages(busy, 4), 0);
  assert.is(busy.ref_live, true, 'live again once mapped again');
});

t('memunmap_pages with a reference nobody drops never completes (Linux hangs; the scheduler names the wait)', () => {
  kmemleak_exempt('it holds a device page reference nobody drops, on purpose');
  const busy = pgmap(MEMORY_DEVICE_PRIVATE);
  memremap_pages(busy, 4);
  zone_device_page_init(pgmap_pages(busy)[1]);
  const s = new Scheduler();
  s.spawn('unmap', function* () { yield* memunmap_pages(busy); });
  assert.throws(() => s.run(), (e: Error) => e instanceof DeadlockError && /pgmap .* done/.test(e.message));
  assert.ok(pfn_valid(busy.start_pfn!), 'the struct pages stay while the page is referenced');
});

t('request_free_mem_region hands out disjoint page-multiple regions', () => {
  const a = request_free_mem_region(256 * PAGE_SIZE, 'a')!;
  const b = request_free_mem_region(PAGE_SIZE, 'b')!;
  assert.is(a.end - a.start + 1, 256 * PAGE_SIZE);
  assert.ok(b.start > a.end);
  assert.is(request_free_mem_region(100, 'c'), null);
});

t.run();
