/*
 * test/lib/test_hmm_pt.test.ts - dmirror's device page table on lib/gpt
 * (lib/test_hmm_pt.ts) and the device page -> chunk lookup through the
 * pagemap (lib/test_hmm_devmem.ts): entries keep Linux's tags, the count
 * follows stores and erases, range erases stop at the range, directories
 * are freed when the table empties, and migrations fill and empty it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { start_kernel } from '../../mm/init.js';
import { Process, runAs } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE, PMD_SIZE } from '../../include/linux/mm.js';
import type { page } from '../../include/linux/mm_types.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_HUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { ENOMEM } from '../../include/uapi/asm-generic/errno.js';
import { HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS } from '../../include/uapi/linux/test_hmm.js';
import { pfn_to_page } from '../../mm/page_alloc.js';
import { hmm_dmirror_init } from '../../lib/test_hmm.js';
import {
  dmirror_pt, dpt_mkentry, dpt_entry_pfn, dpt_entry_tag, DPT_ENTRY_PRESENT,
} from '../../lib/test_hmm_pt.js';
import {
  type dmirror, type dmirror_chunk, DPT_XA_TAG_READ, DPT_XA_TAG_ATOMIC, DPT_XA_TAG_WRITE, BACKING_PAGE,
  dmirror_page_to_chunk, dmirror_page_to_device, pfn_zone_device_data,
} from '../../lib/test_hmm_devmem.js';
import { dmirror_migrate_range_to_device } from '../../lib/test_hmm_migrate.js';
import { Dmirror } from '../../tools/lib/dmirror.js';

const RW = PROT_READ | PROT_WRITE, ANON = MAP_PRIVATE | MAP_ANONYMOUS;

test('entries carry the pfn and Linux\'s tag; a read-only entry of pfn 0 is not "none"', () => {
  start_kernel({});
  const pt = new dmirror_pt();
  assert.is(pt.store(0x1000, 0, DPT_XA_TAG_READ), 0);
  assert.is(pt.load(0x1000), DPT_ENTRY_PRESENT, 'pfn 0, tag 0: only the present bit');
  assert.is(pt.store(0x1001, 77, DPT_XA_TAG_WRITE), 0);
  assert.is(pt.store(0x1002, 78, DPT_XA_TAG_ATOMIC), 0);
  assert.is(dpt_entry_pfn(pt.load(0x1001)), 77);
  assert.is(dpt_entry_tag(pt.load(0x1001)), DPT_XA_TAG_WRITE);
  assert.is(dpt_entry_tag(pt.load(0x1002)), DPT_XA_TAG_ATOMIC);
  assert.is(pt.load(0x1003), 0, 'never stored: none');
  assert.is(pt.size, 3);
  assert.is(pt.store(0x1001, 79, DPT_XA_TAG_READ), 0, 'overwrite');
  assert.is(pt.size, 3, 'an overwrite does not count twice');
  assert.equal(pt.get(0x1001), { page: pfn_to_page(79), tag: DPT_XA_TAG_READ });
  assert.is(dpt_mkentry(79, DPT_XA_TAG_READ), pt.load(0x1001));
  assert.is(pt.store(2 ** 40, 5, DPT_XA_TAG_READ), -ENOMEM, 'beyond the 48-bit address space');
  assert.is(pt.load(2 ** 40), 0);
  assert.is(pt.erase(0x1002), dpt_mkentry(78, DPT_XA_TAG_ATOMIC));
  assert.is(pt.erase(0x1002), 0, 'second erase finds nothing');
  assert.is(pt.size, 2);
});

test('erase_range() clears exactly [first, end) across directories; the emptied table frees its directories', () => {
  start_kernel({});
  const pt = new dmirror_pt();
  const per_dir = PMD_SIZE / PAGE_SIZE;                 /* 512 entries per leaf directory */
  const base = 7 * per_dir;
  for (let i = 0; i < 3 * per_dir; i++) assert.is(pt.store(base + i, 1000 + i, DPT_XA_TAG_WRITE), 0);
  const dirs = pt.dir_count();
  assert.is(dirs, 1 + 2 + 3, "root, one directory on each of the two middle levels, three leaf directories");
  assert.is(pt.erase_range(base + 100, base + 2 * per_dir + 5), 2 * per_dir - 95);
  assert.is(pt.size, 3 * per_dir - (2 * per_dir - 95));
  assert.ok(pt.has(base + 99) && !pt.has(base + 100), 'first kept, first erased');
  assert.ok(!pt.has(base + 2 * per_dir + 4) && pt.has(base + 2 * per_dir + 5), 'last erased, end kept');
  const seen: number[] = [];
  pt.for_each(0, 2 ** 36, (vpn, e) => { seen.push(vpn); assert.is(dpt_entry_pfn(e), 1000 + vpn - base); return 0; });
  assert.is(seen.length, pt.size);
  assert.ok(seen.every((v, i) => i === 0 || v > seen[i - 1]), 'address order');
  assert.is(pt.for_each(0, 2 ** 36, (vpn) => (vpn === base + 50 ? 42 : 0)), 42, 'a non-zero return stops the walk');
  assert.equal([...pt.keys()], seen);
  pt.erase_range(0, 2 ** 36);
  assert.is(pt.size, 0);
  assert.is(pt.dir_count(), 1, 'only the root is left');
  pt.store(5, 5, DPT_XA_TAG_READ);
  pt.clear();
  assert.is(pt.size, 0);
  assert.is(pt.load(5), 0);
  assert.is(pt.dir_count(), 1);
});

/* every raw entry of [first, end) of @pt, and its count */
function table_state(pt: dmirror_pt, first: number, end: number): { entries: number[]; size: number; dirs: number } {
  const entries: number[] = [];
  for (let v = first; v < end; v++) entries.push(pt.load(v));
  return { entries, size: pt.size, dirs: pt.dir_count() };
}

test('store_run() and erase_run() leave the table exactly as store() and erase() per page', () => {
  start_kernel({});
  const per_dir = PMD_SIZE / PAGE_SIZE;
  const first = 2 ** 35 - per_dir - 37;               /* vpns above 2^31, a run starting mid-directory */
  const n = 2 * per_dir + 80;                          /* over three leaf directories */
  const runs = new dmirror_pt(), pages = new dmirror_pt();
  for (const pt of [runs, pages]) for (const k of [4, 5]) pt.store(first + k, 11, DPT_XA_TAG_ATOMIC);   /* stored before */
  const entries = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    /* a hole every 3rd page (left alone); no entry at all for the leaf directory in the middle */
    if (k % 3 === 1 || (k >= per_dir + 37 && k < 2 * per_dir + 37)) continue;
    entries[k] = dpt_mkentry(5000 + k, k % 2 ? DPT_XA_TAG_WRITE : DPT_XA_TAG_READ);
  }
  assert.is(runs.store_run(first, entries, n), 0);
  for (let k = 0; k < n; k++) {
    if (entries[k] !== 0) assert.is(pages.store(first + k, dpt_entry_pfn(entries[k]), dpt_entry_tag(entries[k])), 0);
  }
  assert.equal(table_state(runs, first - 1, first + n + 1), table_state(pages, first - 1, first + n + 1));
  assert.is(dpt_entry_tag(runs.load(first + 5)), DPT_XA_TAG_WRITE, 'a stored entry overwrites');
  assert.is(runs.load(first + 4), dpt_mkentry(11, DPT_XA_TAG_ATOMIC), 'a hole keeps its entry');
  assert.is(runs.load(first + 6), dpt_mkentry(5006, DPT_XA_TAG_READ));
  assert.is(runs.load(first + 1), 0, 'a hole stays none');

  /* erase a range that starts before the table's entries and covers a directory never populated */
  const e0 = first - 700, en = n + 700 + 10;
  const removed = runs.erase_run(e0, en);
  let removed_pages = 0;
  for (let k = 0; k < en; k++) if (pages.erase(e0 + k) !== 0) removed_pages++;
  assert.is(removed, removed_pages);
  assert.equal(table_state(runs, e0 - 1, e0 + en + 1), table_state(pages, e0 - 1, e0 + en + 1));

  /* a run that crosses the end of the 48-bit space: the pages beyond fail as store() fails there */
  const top = 2 ** 36 - 3, over = new Float64Array(6).fill(dpt_mkentry(9, DPT_XA_TAG_READ));
  assert.is(runs.store_run(top, over, 6), -ENOMEM);
  for (let k = 0; k < 6; k++) assert.is(pages.store(top + k, 9, DPT_XA_TAG_READ), k < 3 ? 0 : -ENOMEM);
  assert.equal(table_state(runs, top - 1, top + 3), table_state(pages, top - 1, top + 3));
  assert.is(runs.size, pages.size);
});

/* the mirror behind a Dmirror handle */
function mirror_of(p: Process, dev: Dmirror): dmirror {
  return p.task.files.get(dev.fd)!.private_data as dmirror;
}

test('MIGRATE_TO_DEV maps each page WRITE to its backing page; MIGRATE_TO_SYS and munmap empty the table', () => {
  start_kernel({});
  hmm_dmirror_init();
  const p = Process.spawn('t');
  const dev = new Dmirror(p, 0);
  const d = mirror_of(p, dev);
  const n = 600;                                        /* spans two leaf directories */
  const a = p.mmap(0, n * PAGE_SIZE, RW, ANON), out = p.mmap(0, n * PAGE_SIZE, RW, ANON);
  p.fill32(a, n * PAGE_SIZE, 3);
  assert.is(dev.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, a, n, out), 0);
  assert.is(d.pt.size, n);
  for (let i = 0; i < n; i += 97) {
    const e = d.pt.get(a / PAGE_SIZE + i)!;
    assert.is(e.tag, DPT_XA_TAG_WRITE);
    assert.is(e.page.zone_device_data, d, 'the entry is the backing RAM page, which points back at the mirror');
  }
  assert.is(dev.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, a, n, out), 0);
  assert.is(dev.cpages, n);
  assert.is(d.pt.size, 0, 'every entry erased on the way back');
  assert.is(p.check32(a, n * PAGE_SIZE, 3), -1);
  assert.is(runAs(p.task, dmirror_migrate_range_to_device(d, a, a + n * PAGE_SIZE)), 0, 'migration without the read-back');
  assert.is(d.pt.size, n);
  p.munmap(a, n * PAGE_SIZE);
  assert.is(d.pt.size, 0, 'the munmap invalidation erased the range');
  assert.is(d.pt.dir_count(), 1, 'and freed the directories');
});

test('a device page finds its chunk through page->pgmap: the chunk is its pagemap', () => {
  start_kernel({});
  hmm_dmirror_init();
  const p = Process.spawn('t');
  const dev = new Dmirror(p, 0), dev1 = new Dmirror(p, 1);
  const a = p.mmap(0, 2 * PMD_SIZE, RW, ANON);
  const h = Math.ceil(a / PMD_SIZE) * PMD_SIZE;
  p.madvise(h, PMD_SIZE, MADV_HUGEPAGE);
  p.fill32(h, PMD_SIZE, 9);
  const b = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(b, 4 * PAGE_SIZE, 10);
  assert.is(runAs(p.task, dmirror_migrate_range_to_device(mirror_of(p, dev), h, h + PMD_SIZE)), 0);
  assert.is(runAs(p.task, dmirror_migrate_range_to_device(mirror_of(p, dev1), b, b + 4 * PAGE_SIZE)), 0);
  const backing = mirror_of(p, dev).pt.get(h / PAGE_SIZE + 3)!.page;
  const rhead = backing.compound_head;
  /* the device folio whose backing folio the table maps */
  let dpage: page | null = null, c0 = null as dmirror_chunk | null;
  const md = mirror_of(p, dev).mdevice;
  for (let c = 0; c < md.devmem_count && dpage === null; c++) {
    const ch = md.devmem_chunks![c];
    for (let pfn = ch.start_pfn!; pfn < ch.start_pfn! + ch.nr_pages! && dpage === null; pfn++) {
      if (pfn_zone_device_data(pfn) === rhead.pfn) { dpage = pfn_to_page(pfn); c0 = ch; }     /* the backing page's pfn */
    }
  }
  assert.ok(dpage !== null && c0 !== null, 'the device folio backed by the RAM folio');
  assert.is(rhead.order, 9, 'migrated as one THP');
  assert.is(BACKING_PAGE(dpage!)!.pfn, rhead.pfn);
  assert.is(dmirror_page_to_chunk(dpage!), c0);
  assert.is(dpage!.pgmap, c0, 'page->pgmap is the chunk itself');
  assert.is(c0!.pagemap, c0);
  assert.is(dmirror_page_to_device(dpage!), md);
  const c1 = (mirror_of(p, dev1).mdevice.devmem_chunks ?? [])[0];
  assert.is(dmirror_page_to_device(pfn_to_page(c1.start_pfn!)), mirror_of(p, dev1).mdevice);
  assert.is(dmirror_page_to_device(pfn_to_page(0)), null, 'RAM: no chunk');
  const foreign = { ...pfn_to_page(c1.start_pfn!), pgmap: { ...c1, ops: { folio_free() {} } } } as unknown as page;
  assert.is(dmirror_page_to_device(foreign), null, 'a pagemap with other ops is another driver\'s');
  assert.is(p.check32(h, PMD_SIZE, 9), -1, 'the CPU faults the THP back intact');
  assert.is(p.check32(b, 4 * PAGE_SIZE, 10), -1);
});

test.run();
