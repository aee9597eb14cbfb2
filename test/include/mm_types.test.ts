/*
 * test/include/mm_types.test.ts - struct page as a struct of arrays
 * (include/linux/mm_types.ts): a page handle reads and writes its
 * section's typed arrays, values past int32 round-trip, rarely used
 * fields cost nothing until used, handles are views made on demand
 * (compared by pfn; none kept per frame: 37 B of arrays per frame), and
 * the fault path changes no hidden class (checked in a node with
 * --allow-natives-syntax).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import { PAGE_SIZE, PAGE_SHIFT } from '../../include/linux/mm.js';
import { MADV_HUGEPAGE, MADV_NOHUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { SECTION_MASK, PAGES_PER_SECTION, PFN_SECTION_SHIFT, __nr_to_section, __pfn_to_section, type page } from '../../include/linux/mm_types.js';
import { pte_pfn, pmd_pfn } from '../../include/linux/pgtable.js';
import { swp_entry } from '../../include/linux/swapops.js';
import { pmd_off } from '../../mm/pgtable.js';
import { alloc_page, alloc_pages, __free_pages, pfn_to_page, totalram_pages } from '../../mm/page_alloc.js';
import { memmap_bytes, sparse_stats } from '../../mm/sparse.js';
import { GFP_KERNEL } from '../../include/linux/gfp.js';
import { root_mem_cgroup, mem_cgroup_create, mem_cgroup_attach_task } from '../../mm/memcontrol.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';

const t = suite('include/mm_types');
const TWO_MB = 2 << 20;

const page_at = (p: Process, a: number): page => pfn_to_page(pte_pfn(pte_at(p.mm, a)));

t('a page handle reads and writes its section arrays at pfn & SECTION_MASK', () => {
  boot({ ram_bytes: 64 << 20 });
  const pg = alloc_page(GFP_KERNEL)!;
  const ms = pg.section, i = pg.pfn & SECTION_MASK;
  assert.is(ms.start_pfn, pg.pfn - i);
  assert.is(ms._refcount[i], 1, 'the allocator set the refcount in the array');
  pg.flags |= 0x15;
  pg._mapcount = 3;
  pg.order = 2;
  assert.equal([ms.flags[i], ms._mapcount[i], ms.order[i]], [0x15, 3, 2]);
  ms._refcount[i] = 7;
  assert.is(pg._refcount, 7, 'the handle reads what the array holds');
  ms._refcount[i] = 1;
  pg.flags = 0; pg._mapcount = -1; pg.order = 0;
  __free_pages(pg);
  assert.is(ms._refcount[i], 0);
});

t('__pfn_to_section() finds the section of a frame, and none where no struct pages exist', () => {
  boot({ ram_bytes: 64 << 20 });
  const p = alloc_page(GFP_KERNEL)!;
  const pfn = p.pfn;
  const ms = __pfn_to_section(pfn)!;
  assert.is(ms, __nr_to_section(pfn >>> PFN_SECTION_SHIFT));
  assert.ok(pfn - ms.start_pfn >= 0 && pfn - ms.start_pfn < ms.nr, 'the frame lies in the section');
  assert.is(ms, p.section, 'the handle reads the same section');
  assert.is(__pfn_to_section(totalram_pages() + 64 * PAGES_PER_SECTION), undefined, 'far past RAM: no section');
  __free_pages(p);
});

t('an anon index past 2^32 and a swap entry in private round-trip exactly', () => {
  const p = boot({ ram_bytes: 64 << 20 });
  const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  assert.ok(a / PAGE_SIZE > 2 ** 32, 'the top-down mmap area sits above 2^44');
  p.write32(a + PAGE_SIZE, 5);
  const pg = page_at(p, a + PAGE_SIZE);
  assert.is(pg.index, (a + PAGE_SIZE) / PAGE_SIZE, 'linear index of the anon page');
  assert.is(pg.index * PAGE_SIZE, a + PAGE_SIZE);
  const q = alloc_page(GFP_KERNEL)!;
  const e = swp_entry(5, 123457);
  q.private = e;
  assert.is(q.private, e);
  q.private = 0;
  __free_pages(q);
  assert.is(a >>> 0 !== a, true, 'sanity: the address does not fit 32 bits');
  assert.is(PAGE_SHIFT, 12);
});

t('rarely used fields allocate no array until a frame stores a value other than the default', () => {
  const p = boot({ ram_bytes: 64 << 20 });
  const a = p.mmap(0, 64 * PAGE_SIZE, RW, ANON);
  p.madvise(a, 64 * PAGE_SIZE, MADV_NOHUGEPAGE);
  p.fill32(a, 64 * PAGE_SIZE, 1);
  const ms = page_at(p, a).section;
  assert.equal([ms._entire_mapcount, ms._pincount, ms.private, ms.compound_head, ms.zone_device_data, ms.waitq, ms.pgmap_of],
    [null, null, null, null, null, null, null], 'anonymous 4 KiB faults use only the always-present arrays and memcg');
  const pg = page_at(p, a);
  assert.equal([pg._entire_mapcount, pg._pincount, pg.private, pg.zone_device_data, pg.waitq],
    [-1, 0, 0, null, null], 'defaults read back without arrays');
  assert.ok(ms.memcg instanceof Uint16Array, 'the charge is a 16-bit slot per frame');
  assert.is(pg.memcg, root_mem_cgroup(), 'the slot names the memcg the fault charged');
  const cg = mem_cgroup_create('sp');
  mem_cgroup_attach_task(cg, p.task);
  const b = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(b, 3);
  const q = page_at(p, b);
  assert.is(q.memcg, cg, 'a second cgroup gets its own slot');
  assert.is(pg.memcg, root_mem_cgroup());
  assert.is(ms.memcg![pg.pfn & SECTION_MASK], ms.memcg![page_at(p, a + PAGE_SIZE).pfn & SECTION_MASK], 'one slot per cgroup');
  assert.is.not(q.section.memcg![q.pfn & SECTION_MASK], ms.memcg![pg.pfn & SECTION_MASK]);
  assert.is(pg.compound_head, pg, 'an order-0 page is its own head: the same handle back');
  pg._pincount = 0;
  pg.private = 0;
  pg.compound_head = pg;
  assert.equal([ms._pincount, ms.private, ms.compound_head], [null, null, null], 'storing a default allocates nothing');
});

t('handles are views made on demand: two handles of one frame read the same struct page', () => {
  const p = boot({ ram_bytes: 64 << 20 });
  const a = p.mmap(0, TWO_MB, RW, ANON);
  assert.is(p.madvise(a, TWO_MB, MADV_HUGEPAGE), 0);
  p.fill32(a, TWO_MB, 9);
  const head = pfn_to_page(pmd_pfn(p.mm.pgd.load(pmd_off(p.mm, a))));
  assert.is(head.order, 9);
  const again = pfn_to_page(head.pfn);
  assert.ok(again.pfn === head.pfn, 'a handle of the same frame (maybe the cached one): compare pages by pfn');
  /* a handle made after its cache slot was taken by another frame is a new object of the same frame */
  pfn_to_page(head.pfn + 4096);
  const fresh = pfn_to_page(head.pfn);
  assert.ok(fresh !== head && fresh.pfn === head.pfn, 'after the slot was reused: a new handle, same frame');
  assert.is(fresh._refcount, head._refcount);
  again._refcount += 5;
  assert.is(head._refcount, again._refcount, 'a store through one handle is read through the other');
  again._refcount -= 5;
  const tail = pfn_to_page(head.pfn + 300);
  assert.is(tail.compound_head.pfn, head.pfn, 'a tail names its head');
  assert.is(tail.compound_head.order, 9);
  assert.ok(head.section.compound_head !== null, 'the section holds the tails\' head distances');
  assert.is(head.section.compound_head![(head.pfn + 300) & SECTION_MASK], 300);
  /* two pages on one LRU list link to each other's frames */
  const b = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.madvise(b, 2 * PAGE_SIZE, MADV_NOHUGEPAGE);
  p.write32(b, 1);
  p.write32(b + PAGE_SIZE, 2);
  const x = page_at(p, b), y = page_at(p, b + PAGE_SIZE);
  assert.ok(x.lru_next?.pfn === y.pfn || y.lru_next?.pfn === x.pfn,
    'pages faulted one after the other are neighbours on the LRU list');
  if (x.lru_next?.pfn === y.pfn) assert.is(y.lru_prev!.pfn, x.pfn);
  else assert.is(x.lru_prev!.pfn, y.pfn);
});

t('no handle is kept per frame: the struct page arrays are all there is, 37 B per frame', () => {
  boot({ ram_bytes: 64 << 20 });
  for (let pfn = 0; pfn < totalram_pages(); pfn++) pfn_to_page(pfn);
  const ms = pfn_to_page(5).section;
  assert.not.ok('pages' in ms, 'a section has no array of handles');
  assert.is(sparse_stats().memmap_sections, totalram_pages() / PAGES_PER_SECTION);
  /* flags, _refcount, _mapcount 4 each, index 8, mapping 8, lru_prev and lru_next 4 each, order 1 */
  assert.is(memmap_bytes() / totalram_pages(), 37);
});

t('a folio spanning sections (order 10 block at a section boundary) finds its head across them', () => {
  boot({ ram_bytes: 64 << 20 });
  const f = alloc_pages(GFP_KERNEL, 10)!;
  assert.is(f.pfn % PAGES_PER_SECTION, 0);
  const last = pfn_to_page(f.pfn + PAGES_PER_SECTION - 1);
  assert.is(last.compound_head.pfn, f.pfn);
  __free_pages(f, 10);
  assert.is(last.compound_head, last, 'freeing resets the tails: a page is its own head again');
});

const HIDDEN_CLASS_SCRIPT = `
const mm = await import(process.argv[1]);
const { start_kernel } = await import(process.argv[2]);
const { Process, runAs } = await import(process.argv[3]);
start_kernel({ ram_bytes: 64 << 20 });
const ref = mm.pfn_to_page(1);
const p = Process.spawn('hc');
const n = 512, a = p.mmap(0, n * 4096, 3, 0x22);
for (let i = 0; i < n; i++) p.write32(a + i * 4096, i);
const b = p.mmap(0, 4 << 20, 3, 0x22);
p.madvise(b, 4 << 20, 14);
p.fill32(b, 4 << 20, 1);
let same = 0, total = 0;
for (let pfn = 0; pfn < 16384; pfn++) {
  const pg = mm.pfn_to_page(pfn);
  total++;
  if (%HaveSameMap(pg, ref)) same++;
}
console.log(JSON.stringify({ same, total, keys: Object.keys(ref) }));
`;

t('no hidden-class change: every page handle keeps the map of a fresh one after faults, THP and large indexes', () => {
  const dist = fileURLToPath(new URL('../../', import.meta.url));
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', HIDDEN_CLASS_SCRIPT,
    `${dist}mm/page_alloc.js`, `${dist}mm/init.js`, `${dist}tools/include/nolibc/nolibc.js`], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(out, { same: 16384, total: 16384, keys: ['pfn', 'section'] });
});

t.run();
