/*
 * test/lib/test_hmm_migrate.test.ts - dmirror's migration paths
 * (lib/test_hmm_migrate.ts) and its device memory allocator
 * (lib/test_hmm_devmem.ts): the plain-call fast paths and their Sleepable
 * fallbacks leave the same bytes, counters and device page table; the
 * free list hands pages out as Linux's list does; entries are erased
 * before the copy-back loop sleeps.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { start_kernel } from '../../mm/init.js';
import { Process, runAs } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import { HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_RELEASE, HMM_DMIRROR_SNAPSHOT } from '../../include/uapi/linux/test_hmm.js';
import { WMARK_MIN } from '../../include/linux/mmzone.js';
import type { mmu_interval_notifier, mmu_notifier_range } from '../../include/linux/mmu_notifier.js';
import { hmm_dmirror_init, dmirror_device_get } from '../../lib/test_hmm.js';
import {
  type dmirror, dmirror_devmem_alloc_page, dmirror_devmem_alloc_page_fast, DEVMEM_CHUNK_PAGES, BACKING_PAGE, BACKING_PAGE_PFN,
  pfn_pgmap, pfn_zone_device_data,
} from '../../lib/test_hmm_devmem.js';
import type { page } from '../../include/linux/mm_types.js';
import { dmirror_migrate_range_to_device } from '../../lib/test_hmm_migrate.js';
import { dpt_entry_tag, dpt_entry_pfn } from '../../lib/test_hmm_pt.js';
import { dmirror_params } from '../../lib/test_hmm_devmem.js';
import { fail_dev_copy } from '../../lib/fault-inject.js';
import { trace_counters } from '../../lib/sim/trace.js';
import { now } from '../../lib/sim/clock.js';
import { kmap_local_page } from '../../mm/page_alloc.js';
import { HMM_DMIRROR_MIGRATE_TO_DEV } from '../../include/uapi/linux/test_hmm.js';
import { PMD_SIZE } from '../../include/linux/mm.js';
import { pmd_off } from '../../mm/pgtable.js';
import { pmd_trans_huge, pmd_present, pmd_pfn } from '../../include/linux/pgtable.js';
import { MADV_HUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { fail_devmem_alloc, fail_page_alloc, setup_fault_attr } from '../../lib/fault-inject.js';
import { get_counter } from '../../lib/sim/trace.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import { nr_free_pages, pageAllocStats, put_page, wmark_pages, pfn_to_page } from '../../mm/page_alloc.js';
import { folio_unlock } from '../../mm/filemap.js';
import { mmu_interval_notifier_insert, mmu_interval_set_seq, mmu_notifier_range_blockable } from '../../mm/mmu_notifier.js';
import { Dmirror } from '../../tools/lib/dmirror.js';
import { pte_at } from '../helpers.js';
import { pte_present, pte_pfn } from '../../include/linux/pgtable.js';

const RW = PROT_READ | PROT_WRITE, ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/* the mirror behind a Dmirror handle */
function mirror_of(p: Process, dev: Dmirror): dmirror {
  return p.task.files.get(dev.fd)!.private_data as dmirror;
}

type mode = 'fast' | 'armed' | 'no_chunk';

/*
 * One round trip of N pages (two windows and a bit; every 7th page never
 * touched: a hole the driver zero-fills) in a fresh machine, with the
 * fast paths available ('fast'), with the fail sites armed so that they
 * decline and the Sleepable calls run, the sites never firing ('armed':
 * probability 100, times 0), or with no device chunk at all ('no_chunk':
 * RELEASE first, so the first allocation must add one). What each step
 * left behind.
 */
function round_trip(m: mode): Record<string, unknown> {
  start_kernel({});
  hmm_dmirror_init();
  const p = Process.spawn('t');
  const dev = new Dmirror(p, 0);
  const d = mirror_of(p, dev);
  const n = 1100;
  const a = p.mmap(0, n * PAGE_SIZE, RW, ANON);
  for (let i = 0; i < n; i++) if (i % 7 !== 3) p.fill32(a + i * PAGE_SIZE, PAGE_SIZE, i * 1024);
  const snap = p.mmap(0, PAGE_SIZE, RW, ANON);
  assert.is(dev.ioctl(HMM_DMIRROR_SNAPSHOT, a, 1, snap), 0, 'a first ioctl: its command and output pages are faulted in');
  if (m === 'no_chunk') assert.is(dev.ioctl(HMM_DMIRROR_RELEASE, a, 1), 0);
  if (m === 'armed') {
    for (const attr of [fail_page_alloc.attr, fail_devmem_alloc]) assert.is(setup_fault_attr(attr, '1,100,0,0'), 1);
  }
  const mdev = dmirror_device_get(0)!;
  const chunks = mdev.devmem_count, free0 = nr_free_pages(), calloc0 = mdev.calloc;
  const alloc0 = pageAllocStats().pgalloc, devalloc0 = get_counter('dmirror_devmem_alloc');

  assert.is(runAs(p.task, dmirror_migrate_range_to_device(d, a, a + n * PAGE_SIZE)), 0);
  const tags: number[] = [];
  for (let i = 0; i < n; i++) tags.push(dpt_entry_tag(d.pt.load(a / PAGE_SIZE + i)) + (d.pt.load(a / PAGE_SIZE + i) !== 0 ? 10 : 0));
  const on_dev = {
    tags, size: d.pt.size, calloc: mdev.calloc - calloc0, ram_used: free0 - nr_free_pages(),
    pgalloc: pageAllocStats().pgalloc - alloc0, devmem_alloc: get_counter('dmirror_devmem_alloc') - devalloc0,
    devmem_hits: fail_devmem_alloc.hits, failures: fail_devmem_alloc.failures + fail_page_alloc.attr.failures,
    chunks_added: mdev.devmem_count - chunks, device_ptes: 0,
  };
  for (let i = 0; i < n; i++) if (!pte_present(pte_at(p.mm, a + i * PAGE_SIZE))) on_dev.device_ptes++;

  assert.is(dev.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, a, n), 0);
  let bytes_ok = true;
  for (let i = 0; i < n; i++) {
    const want = i % 7 !== 3 ? i * 1024 : 0;
    if (p.check32(a + i * PAGE_SIZE, PAGE_SIZE, want) !== -1 && (i % 7 !== 3 || p.read(a + i * PAGE_SIZE, 4).some((x) => x !== 0))) bytes_ok = false;
  }
  const back = {
    cpages: dev.cpages, size: d.pt.size, cfree: mdev.cfree, in_use: mdev.calloc - mdev.cfree,
    ram_used: free0 - nr_free_pages(), bytes_ok, ram_ptes: 0,
  };
  for (let i = 0; i < n; i++) if (pte_present(pte_at(p.mm, a + i * PAGE_SIZE))) back.ram_ptes++;
  return { on_dev, back };
}

test('a round trip with the allocation fast paths and with their fallbacks forced leaves the same bytes, counters and device page table', () => {
  const fast = round_trip('fast');
  const armed = round_trip('armed');
  assert.equal(armed, fast, 'armed fail sites (never firing): the Sleepable allocations ran, same outcome');
  const f = fast as { on_dev: { size: number; devmem_hits: number; failures: number; chunks_added: number; device_ptes: number }; back: { size: number; in_use: number; bytes_ok: boolean; ram_ptes: number } };
  assert.is(f.on_dev.size, 1100, 'every page, holes included, mapped by the device');
  assert.is(f.on_dev.device_ptes, 1100);
  assert.is(f.on_dev.devmem_hits, 1100, 'the fast path counts its fail-site hit as the full call does');
  assert.is(f.on_dev.failures, 0);
  assert.is(f.back.size, 0, 'every entry erased on the way back');
  assert.is(f.back.in_use, 0, 'every device page went back to the free list');
  assert.ok(f.back.bytes_ok, 'the data (and the zero-filled holes) came back');
  assert.is(f.back.ram_ptes, 1100);
  /* no chunk: the first allocation must take the Sleepable call, which adds a chunk */
  const nc = round_trip('no_chunk') as typeof f & { on_dev: { chunks_added: number } };
  assert.is(nc.on_dev.chunks_added, 1, 'the fallback added the chunk the fast path could not');
  nc.on_dev.chunks_added = f.on_dev.chunks_added;
  assert.equal(nc, fast, 'the same outcome otherwise');
});

test('the device free list hands out the last page freed first, as Linux\'s list through zone_device_data; free pages keep no zone_device_data', () => {
  start_kernel({});
  hmm_dmirror_init();
  const p = Process.spawn('t');
  const dev = new Dmirror(p, 0);
  const d = mirror_of(p, dev);
  const mdev = d.mdevice;
  assert.is(mdev.devmem_count, 1);
  const c = mdev.devmem_chunks![0];
  assert.is(mdev.free_pages.nr, DEVMEM_CHUNK_PAGES, 'the boot chunk: every page free');
  const first = dmirror_devmem_alloc_page_fast(d, false)!, second = dmirror_devmem_alloc_page_fast(d, false)!;
  assert.is(first.pfn, c.start_pfn! + DEVMEM_CHUNK_PAGES - 1, 'pushed in pfn order, so the last pfn comes out first');
  assert.is(second.pfn, first.pfn - 1);
  folio_unlock(first);
  put_page(first);
  assert.is(first.zone_device_data, null, 'a free device page holds no backing page');
  assert.is(mdev.free_pages.peek(), first.pfn);
  const again = runAs(p.task, dmirror_devmem_alloc_page(d, false))!;
  assert.is(again.pfn, first.pfn, 'the Sleepable call takes the same page off the same list');
  for (const x of [again, second]) { folio_unlock(x); put_page(x); }
  assert.is(mdev.calloc - mdev.cfree, 0);
  assert.is(dev.ioctl(HMM_DMIRROR_RELEASE, 0, 1), 0);
  assert.is(mdev.free_pages.nr, 0, 'RELEASE took the chunk\'s pages off the list');
  assert.is(dmirror_devmem_alloc_page_fast(d, false), null, 'nothing left for the fast path');
});

test('copying back to RAM erases the entries of the pages already copied before the allocation sleeps', () => {
  start_kernel({ ram_bytes: 8 << 20, swap_bytes: 32 << 20 });
  hmm_dmirror_init();
  const p = Process.spawn('t');
  const dev = new Dmirror(p, 0);
  const d = mirror_of(p, dev);
  const n = 64;
  const a = p.mmap(0, n * PAGE_SIZE, RW, ANON);
  p.fill32(a, n * PAGE_SIZE, 77);
  assert.is(runAs(p.task, dmirror_migrate_range_to_device(d, a, a + n * PAGE_SIZE)), 0);
  assert.is(d.pt.size, n);
  /* a filler whose pages reclaim must take: its notifier records the mirror's table when reclaim reaches it */
  const filler = Process.spawn('filler');
  const seen: boolean[][] = [];
  const sub = { start: 0, last: 0, invalidate_seq: 0 } as unknown as mmu_interval_notifier;
  const ops = {
    *invalidate(s: mmu_interval_notifier, r: mmu_notifier_range, seq: number): Sleepable<boolean> {
      if (mmu_notifier_range_blockable(r) && seen.length === 0) {
        const mapped: boolean[] = [];
        for (let i = 0; i < n; i++) mapped.push(d.pt.has(a / PAGE_SIZE + i));
        seen.push(mapped);
      }
      mmu_interval_set_seq(s, seq);
      return true;
    },
  };
  /* free RAM ends 20 pages above the min watermark: the first 20 copies fit, the 21st allocation reclaims */
  const spare = nr_free_pages() - wmark_pages(WMARK_MIN) - 20;
  const fa = filler.mmap(0, spare * PAGE_SIZE, RW, ANON);
  assert.is(runAs(filler.task, mmu_interval_notifier_insert(sub, filler.mm, fa, spare * PAGE_SIZE, ops as never)), 0);
  filler.fill32(fa, spare * PAGE_SIZE, 5);
  assert.is(dev.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, a, n), 0);
  assert.is(seen.length, 1, 'reclaim ran while the window was being copied back');
  const mapped = seen[0];
  const copied = mapped.indexOf(true);
  assert.ok(copied > 0, `some pages were copied before the allocation slept (first still mapped: ${copied})`);
  assert.ok(mapped.slice(copied).every((x) => x), 'the pages not copied yet keep their entries');
  assert.is(d.pt.size, 0);
  assert.is(p.check32(a, n * PAGE_SIZE, 77), -1);
  assert.is(filler.check32(fa, spare * PAGE_SIZE, 5), -1);
});

test('the pfn-level reads give what the page handles give: pgmap, zone_device_data, BACKING_PAGE', () => {
  start_kernel({});
  hmm_dmirror_init();
  const p = Process.spawn('t');
  const n = 8;
  for (const unit of [0, 2]) {                         /* device-private, device-coherent */
    const dev = new Dmirror(p, unit);
    const a = p.mmap(0, n * PAGE_SIZE, RW, ANON);
    p.fill32(a, n * PAGE_SIZE, unit);
    const ram = pte_pfn(pte_at(p.mm, a));
    assert.is(pfn_pgmap(ram), null, 'RAM has no pagemap');
    assert.is(pfn_zone_device_data(ram), pfn_to_page(ram).zone_device_data);
    assert.is(BACKING_PAGE_PFN(ram).pfn, ram);
    assert.is(runAs(p.task, dmirror_migrate_range_to_device(mirror_of(p, dev), a, a + n * PAGE_SIZE)), 0);
    const mdev = dmirror_device_get(unit)!;
    const c = mdev.devmem_chunks![0];
    let checked = 0;
    for (let pfn = c.start_pfn!; pfn < c.start_pfn! + c.nr_pages!; pfn += 97) {
      const pg = pfn_to_page(pfn);
      assert.ok(pfn_pgmap(pfn) === pg.pgmap && pg.pgmap !== null);
      assert.is(pfn_zone_device_data(pfn), pg.zone_device_data);
      assert.is((BACKING_PAGE_PFN(pfn) as page | null)?.pfn, (BACKING_PAGE(pg) as page | null)?.pfn, 'null for a free private page');
      checked++;
    }
    /* the pages in use: backed by RAM (private) or holding the data themselves (coherent) */
    for (let pfn = c.start_pfn! + DEVMEM_CHUNK_PAGES - n; pfn < c.start_pfn! + DEVMEM_CHUNK_PAGES; pfn++) {
      const pg = pfn_to_page(pfn);
      assert.is(BACKING_PAGE_PFN(pfn).pfn, BACKING_PAGE(pg).pfn);
      assert.is(unit === 0, BACKING_PAGE_PFN(pfn).pfn !== pfn, 'private: a RAM page; coherent: itself');
    }
    assert.ok(checked > 40);
  }
});

/* a 32-bit FNV-1a of a page's bytes */
function page_hash(pfn: number): number {
  const b = kmap_local_page(pfn_to_page(pfn));
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

/* the RAM frame mapped at @x (a PTE or a huge PMD), or -1 (none, or a device entry) */
function frame_at(p: Process, x: number): number {
  const pmdp = pmd_off(p.mm, x);
  const pmd = pmdp < 0 ? 0 : p.mm.pgd.load(pmdp);
  if (pmd_present(pmd) && pmd_trans_huge(pmd)) return pmd_pfn(pmd) + (x % PMD_SIZE) / PAGE_SIZE;
  const pte = pte_at(p.mm, x);
  return pte > 0 && pte_present(pte) ? pte_pfn(pte) : -1;
}

/* every struct page field a migration touches, of frame @pfn */
function struct_page_state(pfn: number): unknown[] {
  const pg = pfn_to_page(pfn);
  return [pfn, pg.flags, pg._refcount, pg._mapcount, pg.mapping === null ? null : pg.mapping.kind, pg.index,
    pg.order, pg.zone_device_data === null ? null : typeof pg.zone_device_data === 'number' ? pg.zone_device_data : 'mirror'];
}

/*
 * Round trips of 1100 small pages and one THP on a device-private and a
 * device-coherent mirror in a fresh machine, new contents each time, so
 * that the buddy allocator's free lists mix and the frames of a window
 * come out of order; the window copies queued (dmirror_params.copy_queue,
 * lib/test_hmm_copy.ts) or done page by page as Linux's loop does. The
 * last trip back has fail_dev_copy failing every 300th copy (the window
 * aborts, its queue dropped). Everything a misplaced or lost copy could
 * change, after each step.
 */
function copy_queue_scenario(queue: boolean): { steps: unknown[]; descents: number } {
  const old = dmirror_params.copy_queue;
  dmirror_params.copy_queue = queue;
  try {
    start_kernel({});
    hmm_dmirror_init();
    const p = Process.spawn('t');
    const steps: unknown[] = [];
    let descents = 0;
    for (const unit of [0, 2]) {
      const dev = new Dmirror(p, unit);
      const d = mirror_of(p, dev);
      const n = 1100;
      const a = p.mmap(0, n * PAGE_SIZE, RW, ANON);
      const raw = p.mmap(0, 2 * PMD_SIZE, RW, ANON);
      const h = Math.ceil(raw / PMD_SIZE) * PMD_SIZE;
      p.madvise(h, PMD_SIZE, MADV_HUGEPAGE);
      const ranges: [number, number][] = [[a, n], [h, PMD_SIZE / PAGE_SIZE]];
      for (let round = 0; round < 4; round++) {
        for (const [x, m] of ranges) p.fill32(x, m * PAGE_SIZE, (round + 1) * 0x100000 + unit);
        const src = ranges.flatMap(([x, m]) => Array.from({ length: m }, (_, i) => frame_at(p, x + i * PAGE_SIZE)));
        for (let i = 1; i < n; i++) if (i % 512 !== 0 && src[i] < src[i - 1]) descents++;
        for (const [x, m] of ranges) assert.is(runAs(p.task, dmirror_migrate_range_to_device(d, x, x + m * PAGE_SIZE)), 0);
        const ents = ranges.flatMap(([x, m]) => Array.from({ length: m }, (_, i) => d.pt.load(x / PAGE_SIZE + i)));
        steps.push({ round, unit, ents, data: ents.map((e) => page_hash(dpt_entry_pfn(e))),
          pages: ents.map((e) => struct_page_state(dpt_entry_pfn(e))), vtime: now(), free: nr_free_pages() });
        if (round === 3) assert.is(setup_fault_attr(fail_dev_copy, '300,100,0,-1'), 1);
        const errs = ranges.map(([x, m]) => dev.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, x, m));
        fail_dev_copy.probability = 0;
        const back = ranges.flatMap(([x, m]) => Array.from({ length: m }, (_, i) => {
          const pfn = frame_at(p, x + i * PAGE_SIZE);
          return pfn >= 0 ? [page_hash(pfn), struct_page_state(pfn)] : ['device', d.pt.load(x / PAGE_SIZE + i)];
        }));
        steps.push({ round, unit, errs, back, vtime: now(), free: nr_free_pages(), counters: new Map(trace_counters) });
        if (round === 3) {
          assert.ok(errs.includes(-5), 'a copy failed on the way back (-EIO)');
          assert.is(dev.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, a, n), 0, 'the rest comes back');
          assert.is(dev.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, h, PMD_SIZE / PAGE_SIZE), 0);
        }
        for (const [x, m] of ranges) assert.is(p.check32(x, m * PAGE_SIZE, (round + 1) * 0x100000 + unit), -1, `round ${round} unit ${unit}`);
      }
      assert.is(dev.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, a, 8, p.mmap(0, 8 * PAGE_SIZE, RW, ANON)), 0);
    }
    return { steps, descents };
  } finally {
    dmirror_params.copy_queue = old;
    fail_dev_copy.probability = 0;
  }
}

test('window copies queued and done in source-frame order leave the bytes, page tables, struct pages and counters of per-page copies', () => {
  const queued = copy_queue_scenario(true);
  const per_page = copy_queue_scenario(false);
  assert.ok(queued.descents > 100, `the frames of a window came out of order (${queued.descents} descents): the sort reordered copies`);
  assert.equal(queued, per_page, 'device table, device and RAM bytes, struct pages, vtime, nr_free, counters, errors');
});

test.run();
