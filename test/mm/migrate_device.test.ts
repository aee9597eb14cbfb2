/*
 * test/mm/migrate_device.test.ts - migrate_vma_setup/pages/finalize,
 * migrate_to_ram from do_swap_page, device eviction with
 * migrate_device_range, device-coherent memory and long-term pins, and
 * fork of device-private memory (mm/migrate_device.ts, mm/migrate.ts).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at, dmirror_open, dmirror_cmd } from '../helpers.js';
import { HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS } from '../../include/uapi/linux/test_hmm.js';
import { hmm_dmirror_init } from '../../lib/test_hmm.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import {
  PAGE_SIZE, PMD_SIZE, HPAGE_PMD_NR, HPAGE_PMD_ORDER, FOLL_WRITE, FOLL_LONGTERM, get_mm_counter, page_mapcount,
} from '../../include/linux/mm.js';
import { MM_ANONPAGES } from '../../include/linux/mm_types.js';
import type { page } from '../../include/linux/mm_types.js';
import { PROT_READ, MAP_SHARED, MAP_ANONYMOUS, MADV_HUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { EINVAL } from '../../include/uapi/asm-generic/errno.js';
import { pte_present, pte_write, pte_pfn, pmd_trans_huge, pmd_write, pmd_pfn } from '../../include/linux/pgtable.js';
import {
  pte_to_swp_entry, swp_type, swp_offset_pfn, SWP_DEVICE_WRITE, SWP_DEVICE_READ, pmd_to_swp_entry,
  is_pmd_device_private_entry,
} from '../../include/linux/swapops.js';
import { is_device_private_page, is_device_coherent_page } from '../../include/linux/memremap.js';
import {
  MIGRATE_PFN_VALID, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_PFN_COMPOUND, MIGRATE_PFN_SHIFT,
  MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE, migrate_pfn, migrate_pfn_flags, migrate_pfn_to_page, type migrate_vma,
} from '../../include/linux/migrate.js';
import { PageLocked } from '../../include/linux/page-flags.js';
import { get_counter } from '../../lib/sim/trace.js';
import { pfn_to_page, get_page, put_page, nr_free_pages, kmap_local_page } from '../../mm/page_alloc.js';
import { pin_user_pages, get_user_pages, unpin_user_pages } from '../../mm/gup.js';
import { migrate_vma_setup, migrate_vma_finalize } from '../../mm/migrate_device.js';
import { vma_lookup } from '../../mm/vma.js';
import { pmd_off } from '../../mm/pgtable.js';
import { TinyDev, watch, locked } from './hmm_devmem.js';
import { Scheduler, sched_yield } from '../../lib/sim/sched.js';
import { folio_trylock, folio_unlock } from '../../mm/filemap.js';
import { handle_mm_fault } from '../../mm/memory.js';
import { mmap_read_lock, mmap_read_unlock } from '../../mm/mmap_lock.js';

const t = suite('mm/migrate_device');
let p: Process;
t.before.each(() => { p = boot(); });

const N = 8;
const BYTES = N * PAGE_SIZE;

/* what the CPU page table holds at addr, as a short string */
function kind(proc: Process, addr: number): string {
  const pte = pte_at(proc.mm, addr);
  if (pte <= 0) return 'none';
  if (pte_present(pte)) {
    const pg = pfn_to_page(pte_pfn(pte));
    const where = is_device_coherent_page(pg) ? 'coherent' : pte_pfn(pte) === 0 ? 'zero' : 'ram';
    return `${where}${pte_write(pte) ? ' rw' : ' ro'}`;
  }
  const e = pte_to_swp_entry(pte);
  if (swp_type(e) === SWP_DEVICE_WRITE) return 'device rw';
  if (swp_type(e) === SWP_DEVICE_READ) return 'device ro';
  return `swap type ${swp_type(e)}`;
}
const kinds = (proc: Process, a: number, n: number) => Array.from({ length: n }, (_, i) => kind(proc, a + i * PAGE_SIZE));
const page_at = (proc: Process, a: number): page => {
  const pte = pte_at(proc.mm, a);
  return pfn_to_page(pte_present(pte) ? pte_pfn(pte) : swp_offset_pfn(pte_to_swp_entry(pte)));
};

t('the migrate_pfn encoding: pfn above six flag bits', () => {
  assert.is(MIGRATE_PFN_SHIFT, 6);
  const x = migrate_pfn(0x1234567) | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE;
  assert.is(x, 0x1234567 * 64 + 1 + 2 + 8, 'pfns below 2^25 keep elements in 31 bits: | and & are exact');
  assert.is(migrate_pfn_to_page(migrate_pfn(5))!.pfn, pfn_to_page(5).pfn);
  assert.throws(() => migrate_pfn(2 ** 25), /migrate_pfn/);
  assert.is(migrate_pfn_flags(x), MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE);
  assert.is(migrate_pfn_to_page(MIGRATE_PFN_MIGRATE), null, 'no VALID: no page');
});

t('anonymous pages migrate to device-private memory and come back on a CPU read, data intact', () => {
  const dev = new TinyDev('dev0');
  const { seen } = watch(p);
  const a = p.mmap(0, BYTES, RW, ANON);
  p.fill32(a, BYTES, 100);
  const rss = get_mm_counter(p.mm, MM_ANONPAGES);
  const free_before = nr_free_pages();
  const m = dev.toDevice(p, a, a + BYTES);
  assert.is(m.ret, 0);
  assert.is(m.setup_cpages, N);
  for (let i = 0; i < N; i++) assert.is(migrate_pfn_flags(m.src[i]), MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE);
  assert.equal(kinds(p, a, N), Array(N).fill('device rw'));
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), rss, 'device pages count as anonymous rss');
  assert.is(nr_free_pages(), free_before + N, 'the system pages were freed');
  const dpage = page_at(p, a);
  assert.ok(is_device_private_page(dpage));
  assert.is(page_mapcount(dpage), 1);
  assert.is(dpage._refcount, 1, 'one reference: the mapping');
  assert.not.ok(PageLocked(dpage));
  const words = new DataView(kmap_local_page(dpage).buffer, kmap_local_page(dpage).byteOffset);
  assert.is(words.getUint32(0, true), 100, 'device memory holds the data');
  const mig = seen.filter((s) => s.event === 'MIGRATE');
  assert.is(mig.length, 1);
  assert.is(mig[0].owner, dev, 'the MIGRATE invalidation carries the pgmap owner');
  assert.equal([mig[0].start, mig[0].end], [a, a + BYTES]);

  assert.is(p.check32(a, BYTES, 100), -1, 'CPU reads fault every page back');
  assert.is(dev.migrate_to_ram_calls, N);
  assert.equal(kinds(p, a, N), Array(N).fill('ram rw'));
  assert.is(dev.freed, N, 'every device page went back to the driver');
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), rss);
  assert.is(get_counter('fault_device_private'), N);
  const back = page_at(p, a);
  assert.is(back._refcount, 1);
  assert.is(page_mapcount(back), 1);
  assert.not.ok(PageLocked(back));
});

t('holes and the zero page in an anonymous VMA are populated with new device pages', () => {
  const dev = new TinyDev('dev0');
  const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.read32(a + PAGE_SIZE);                    /* zero page */
  const rss = get_mm_counter(p.mm, MM_ANONPAGES);
  const m = dev.toDevice(p, a, a + 4 * PAGE_SIZE);
  assert.is(m.setup_cpages, 4);
  for (let i = 0; i < 4; i++) assert.is(m.src[i], MIGRATE_PFN_MIGRATE, 'MIGRATE without a page');
  assert.equal(kinds(p, a, 4), Array(4).fill('device rw'));
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), rss + 4, 'inserted pages are new anonymous rss');
  assert.is(get_counter('migrate_insert_page'), 4);
  assert.is(p.read32(a + 3 * PAGE_SIZE), 0, 'they read as zeroes');
  assert.is(kind(p, a + 3 * PAGE_SIZE), 'ram rw');
});

t('holes in a shared mapping are not populated and a read-only mapping migrates read-only', () => {
  const dev = new TinyDev('dev0');
  const sh = p.mmap(0, 2 * PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
  const m = dev.toDevice(p, sh, sh + 2 * PAGE_SIZE);
  assert.is(m.setup_cpages, 0);
  assert.equal([...m.src], [0, 0]);
  p.write32(sh, 5);
  const ms = dev.toDevice(p, sh, sh + 2 * PAGE_SIZE);
  assert.is(ms.setup_cpages, 1, 'the shmem page is collected...');
  assert.is(migrate_pfn_flags(ms.src[0]) & MIGRATE_PFN_MIGRATE, 0, '...but refused: page cache cannot go to the device');
  assert.is(kind(p, sh), 'ram rw');
  assert.is(p.read32(sh), 5);

  const ro = p.mmap(0, PAGE_SIZE, PROT_READ, ANON);
  p.read32(ro);
  const mr = dev.toDevice(p, ro, ro + PAGE_SIZE);
  assert.is(mr.setup_cpages, 1);
  assert.equal(kinds(p, ro, 1), ['device ro']);
  assert.is(p.read32(ro), 0);
  assert.equal(kinds(p, ro, 1), ['ram ro']);
});

t('a pinned page is refused at collect time and keeps its mapping; the rest migrates', () => {
  const dev = new TinyDev('dev0');
  const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 4 * PAGE_SIZE, 7);
  const pins: page[] = [];
  assert.is(locked(p, function* () { return yield* pin_user_pages(p.mm, a + PAGE_SIZE, 1, FOLL_WRITE, pins); }), 1);
  const m = dev.toDevice(p, a, a + 4 * PAGE_SIZE);
  assert.is(m.src[1], 0, 'a pinned exclusive page cannot be shared with a migration entry');
  assert.equal(kinds(p, a, 4), ['device rw', 'ram rw', 'device rw', 'device rw']);
  assert.is(get_counter('migrate_collect_pinned'), 1);
  unpin_user_pages(pins);
  assert.is(p.check32(a, 4 * PAGE_SIZE, 7), -1);
});

t('an extra reference found at unmap time restores the original PTE', () => {
  const dev = new TinyDev('dev0');
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 2 * PAGE_SIZE, 3);
  const extra = page_at(p, a);
  get_page(extra);                            /* a racing lookup */
  const m = dev.toDevice(p, a, a + 2 * PAGE_SIZE);
  assert.is(m.src[0], 0, 'restored and dropped from the migration');
  assert.is(m.setup_cpages, 1);
  assert.is(get_counter('migrate_unmap_busy'), 1);
  assert.equal(kinds(p, a, 2), ['ram rw', 'device rw']);
  assert.is(page_at(p, a).pfn, extra.pfn, 'the same page mapped again');
  assert.is(page_mapcount(extra), 1);
  assert.is(extra._refcount, 2);
  assert.not.ok(PageLocked(extra));
  put_page(extra);
  assert.is(p.check32(a, 2 * PAGE_SIZE, 3), -1);
});

t('an entry without a destination stays in system memory', () => {
  const dev = new TinyDev('dev0');
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 2 * PAGE_SIZE, 11);
  dev.fail_alloc = true;
  const m = dev.toDevice(p, a, a + 2 * PAGE_SIZE);
  assert.is(migrate_pfn_flags(m.src[0]) & MIGRATE_PFN_MIGRATE, 0);
  assert.equal(kinds(p, a, 2), ['ram rw', 'device rw']);
  assert.is(p.check32(a, 2 * PAGE_SIZE, 11), -1);
});

t('migrate_vma_setup rejects bad arguments with -EINVAL', () => {
  const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 4 * PAGE_SIZE, 1);
  const dev = new TinyDev('dev0');
  const bad = (f: (m: migrate_vma) => void) => locked(p, function* () {
    const m = dev.args(p.mm, a, a + 2 * PAGE_SIZE, MIGRATE_VMA_SELECT_SYSTEM);
    f(m);
    const ret = yield* migrate_vma_setup(m);
    if (ret === 0) yield* migrate_vma_finalize(m);   /* nothing migrates: every page is restored */
    return ret;
  });
  assert.is(bad(() => {}), 0);
  assert.is(bad((m) => { m.end = m.start; }), -EINVAL, 'empty');
  assert.is(bad((m) => { m.end = a + 5 * PAGE_SIZE; }), -EINVAL, 'past the VMA');
  assert.is(bad((m) => { m.start = a - PAGE_SIZE; }), -EINVAL, 'before the VMA');
  assert.is(bad((m) => { m.src = new Float64Array(1); }), -EINVAL, 'src too short');
  assert.is(bad((m) => { m.fault_page = page_at(p, a); }), -EINVAL, 'fault_page must be device private');
  assert.is(bad((m) => { m.vma = null as never; }), -EINVAL);
  assert.equal(kinds(p, a, 4), Array(4).fill('ram rw'));
  assert.is(p.check32(a, 4 * PAGE_SIZE, 1), -1);
});

t('device-coherent memory is mapped by present PTEs the CPU uses directly, and migrates back on request', () => {
  const dev = new TinyDev('coh', true);
  const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 4 * PAGE_SIZE, 50);
  const m = dev.toDevice(p, a, a + 4 * PAGE_SIZE);
  assert.is(m.setup_cpages, 4);
  assert.equal(kinds(p, a, 4), Array(4).fill('coherent rw'));
  assert.is(p.check32(a, 4 * PAGE_SIZE, 50), -1, 'no fault: the CPU reads device memory');
  p.write32(a, 0xdead);
  assert.is(dev.migrate_to_ram_calls, 0);
  assert.is(new DataView(kmap_local_page(page_at(p, a)).buffer).getUint32(kmap_local_page(page_at(p, a)).byteOffset, true), 0xdead);
  const again = dev.toDevice(p, a, a + 4 * PAGE_SIZE);
  assert.is(again.setup_cpages, 0, 'SELECT_SYSTEM does not pick device pages');
  const back = dev.toSystem(p, a, a + 4 * PAGE_SIZE);
  assert.is(back.setup_cpages, 4);
  assert.equal(kinds(p, a, 4), Array(4).fill('ram rw'));
  assert.is(p.read32(a), 0xdead);
  assert.is(dev.freed, 4);
});

t('a long-term pin of a device-coherent page migrates it to system memory first', () => {
  const dev = new TinyDev('coh', true);
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 2 * PAGE_SIZE, 8);
  dev.toDevice(p, a, a + 2 * PAGE_SIZE);
  const pins: page[] = [];
  const n = locked(p, function* () { return yield* pin_user_pages(p.mm, a, 2, FOLL_WRITE | FOLL_LONGTERM, pins); });
  assert.is(n, 2);
  assert.equal(pins.map((x) => is_device_coherent_page(x)), [false, false]);
  assert.equal(kinds(p, a, 2), ['ram rw', 'ram rw']);
  assert.is(get_counter('migrate_device_coherent'), 2);
  assert.is(dev.freed, 2);
  assert.is(p.check32(a, 2 * PAGE_SIZE, 8), -1);
  unpin_user_pages(pins);
});

t('GUP of a device-private page migrates it to RAM (the page is never handed out)', () => {
  const dev = new TinyDev('dev0');
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 31);
  dev.toDevice(p, a, a + PAGE_SIZE);
  const pages: page[] = [];
  assert.is(locked(p, function* () { return yield* get_user_pages(p.mm, a, 1, 0, pages); }), 1);
  assert.not.ok(is_device_private_page(pages[0]));
  assert.is(dev.migrate_to_ram_calls, 1);
  put_page(pages[0]);
  assert.is(p.read32(a), 31);
});

t('migrate_device_range evicts device pages wherever they are mapped', () => {
  const dev = new TinyDev('dev0', false, 16);
  const { seen } = watch(p, dev);
  const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 4 * PAGE_SIZE, 1000);
  dev.toDevice(p, a, a + 4 * PAGE_SIZE);
  const child = p.fork();
  seen.length = 0;
  const moved = dev.evict();
  assert.is(moved, 4);
  assert.equal(kinds(p, a, 4), Array(4).fill('ram ro'), 'parent: read-only after fork, now in RAM');
  assert.equal(kinds(child, a, 4), Array(4).fill('ram ro'));
  assert.is(page_at(p, a).pfn, page_at(child, a).pfn, 'still one shared page');
  assert.is(page_mapcount(page_at(p, a)), 2);
  assert.is(dev.freed, 4);
  assert.is(dev.migrate_to_ram_calls, 0, 'no fault was needed');
  assert.ok(seen.some((s) => s.event === 'CLEAR'), 'each mapping is invalidated as it is unmapped');
  assert.is(p.check32(a, 4 * PAGE_SIZE, 1000), -1);
  assert.is(child.check32(a, 4 * PAGE_SIZE, 1000), -1);
  assert.is(dev.evict(), 0, 'nothing left');
});

t('fork of device-private memory: read-only in both; a CPU write migrates back, then breaks COW', () => {
  const dev = new TinyDev('dev0');
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 2 * PAGE_SIZE, 40);
  dev.toDevice(p, a, a + 2 * PAGE_SIZE);
  const dpage = page_at(p, a);
  const child = p.fork();
  assert.equal(kinds(p, a, 2), ['device ro', 'device ro']);
  assert.equal(kinds(child, a, 2), ['device ro', 'device ro']);
  assert.is(page_mapcount(dpage), 2);
  assert.is(dpage._refcount, 2);
  assert.is(get_mm_counter(child.mm, MM_ANONPAGES), 2);

  child.write32(a, 0xbeef);
  assert.is(dev.migrate_to_ram_calls, 1);
  assert.is(kind(child, a), 'ram rw', 'the child got its own copy');
  assert.is(kind(p, a), 'ram ro', 'the parent maps the migrated page, still COW-shared');
  assert.is(get_counter('fault_cow'), 1);
  assert.is(p.read32(a), 40, 'the parent still sees the original');
  assert.is(child.read32(a), 0xbeef);
  p.write32(a, 1);
  assert.is(kind(p, a), 'ram rw', 'the last user reuses the page');
  assert.equal(kinds(p, a + PAGE_SIZE, 1), ['device ro'], 'the other page never moved');
  assert.is(dev.freed, 1);
});

t('munmap of device-private memory releases the device pages and the rss', () => {
  const dev = new TinyDev('dev0');
  const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 4 * PAGE_SIZE, 2);
  dev.toDevice(p, a, a + 4 * PAGE_SIZE);
  const rss = get_mm_counter(p.mm, MM_ANONPAGES);
  assert.is(p.munmap(a, 4 * PAGE_SIZE), 0);
  assert.is(dev.freed, 4);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), rss - 4);
  assert.is(dev.pgmap.ref, 0);
});

t('migrating to system memory selects only the owner\'s pages', () => {
  const d0 = new TinyDev('dev0');
  const d1 = new TinyDev('dev1');
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 2 * PAGE_SIZE, 9);
  d0.toDevice(p, a, a + PAGE_SIZE);
  d1.toDevice(p, a + PAGE_SIZE, a + 2 * PAGE_SIZE);
  const m = d0.toSystem(p, a, a + 2 * PAGE_SIZE);
  assert.is(m.setup_cpages, 1);
  assert.equal(kinds(p, a, 2), ['ram rw', 'device rw']);
  assert.is(page_at(p, a + PAGE_SIZE).pgmap, d1.pgmap);
  const setup_only = locked(p, function* () {
    const mm = d0.args(p.mm, a, a + 2 * PAGE_SIZE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE);
    yield* migrate_vma_setup(mm);
    const c = mm.cpages;
    yield* migrate_vma_finalize(mm);
    return c;
  });
  assert.is(setup_only, 0, 'nothing of d0 left; setup + finalize with no destination is a no-op');
  assert.equal(kinds(p, a, 2), ['ram rw', 'device rw']);
  assert.ok(vma_lookup(p.mm, a) !== null);
});

/* ------------------------------------------------------------------ THP */

const H = PMD_SIZE;
/* a THP-advised, PMD-aligned 2 MiB of p, filled with i + base: one PMD-mapped THP */
function thp(proc: Process, base: number): number {
  const raw = proc.mmap(0, 2 * H, RW, ANON);
  const a = Math.ceil(raw / H) * H;
  assert.is(proc.madvise(a, H, MADV_HUGEPAGE), 0);
  proc.fill32(a, H, base);
  assert.ok(pmd_trans_huge(proc.mm.pgd.load(pmd_off(proc.mm, a))), 'a huge PMD maps it');
  return a;
}
const COMPOUND = MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND;
/* the PMD entry covering a */
const pmd_at = (proc: Process, a: number): number => proc.mm.pgd.load(pmd_off(proc.mm, a));
/* the head page a device-private PMD at a names */
const pmd_device_head = (proc: Process, a: number): page => {
  const pmd = pmd_at(proc, a);
  assert.ok(is_pmd_device_private_entry(pmd), 'a device-private PMD maps the 2 MiB');
  return pfn_to_page(swp_offset_pfn(pmd_to_swp_entry(pmd)));
};

t('a THP migrates to a device folio as one compound entry', () => {
  const dev = new TinyDev('dev0', false, HPAGE_PMD_NR * 2, 1);
  const a = thp(p, 3);
  const rss = get_mm_counter(p.mm, MM_ANONPAGES);
  const free_before = nr_free_pages();
  const m = dev.toDevice(p, a, a + H, COMPOUND);
  assert.is(m.setup_cpages, 1, 'one entry for the whole folio');
  assert.is(migrate_pfn_flags(m.src[0]), MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE | MIGRATE_PFN_COMPOUND);
  assert.ok([...m.src].slice(1).every((x) => x === 0), 'the other 511 entries stay empty');
  assert.is(get_counter('migrate_collect_compound'), 1);
  assert.is(get_counter('set_pmd_migration_entry'), 1, 'the THP was unmapped by one PMD migration entry');
  const head = pmd_device_head(p, a);
  assert.is(swp_type(pmd_to_swp_entry(pmd_at(p, a))), SWP_DEVICE_WRITE);
  assert.ok(is_device_private_page(head));
  assert.is(head.order, HPAGE_PMD_ORDER, 'still one device folio');
  assert.is(pte_at(p.mm, a + 100 * PAGE_SIZE), -1, 'no PTE page under the PMD leaf');
  assert.is(head._refcount, 1, 'the PMD holds one reference');
  assert.is(head._entire_mapcount, 0, 'and one entire mapping');
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), rss);
  assert.is(nr_free_pages(), free_before + HPAGE_PMD_NR, 'the system THP was freed');
  assert.is(dev.huge_free.length, 0);
  assert.is(p.munmap(a, H), 0);
  assert.is(dev.huge_free.length, 1, 'the device folio came back to the driver whole');
  assert.is(dev.freed, HPAGE_PMD_NR);
});

t('without a device folio the driver gives small pages and the core splits the source THP', () => {
  const dev = new TinyDev('dev0', false, HPAGE_PMD_NR + 16, 0);
  const a = thp(p, 11);
  const m = dev.toDevice(p, a, a + H, COMPOUND);
  assert.is(m.setup_cpages, 1);
  assert.is(get_counter('migrate_compound_fallback'), 1);
  for (let i = 0; i < HPAGE_PMD_NR; i++) assert.ok(m.src[i] & MIGRATE_PFN_MIGRATE, 'expanded to 512 entries');
  assert.equal(new Set(kinds(p, a, HPAGE_PMD_NR)), new Set(['device rw']));
  assert.is(page_at(p, a).order, 0);
  assert.is(p.read32(a + 2048 * 4), 2048 + 11);
  assert.is(p.check32(a, H, 11), -1);
});

t('a CPU fault on a device THP, for a driver that moves one page, splits the PMD and the folio in place', () => {
  const dev = new TinyDev('dev0', false, HPAGE_PMD_NR * 2, 1);
  const a = thp(p, 21);
  dev.toDevice(p, a, a + H, COMPOUND);
  const head = pmd_device_head(p, a);
  assert.is(p.read32(a + 5 * PAGE_SIZE), 5 * 1024 + 21);
  assert.is(dev.migrate_to_ram_calls, 1);
  assert.is(get_counter('fault_huge_pmd_device_private'), 1, 'the fault came through the PMD');
  assert.is(get_counter('split_huge_pmd_device_private'), 1, 'the PMD became 512 device-private PTEs');
  assert.is(get_counter('migrate_device_split_folio'), 1);
  assert.is(dev.folio_split_calls, HPAGE_PMD_NR - 1, 'the driver was told about every new folio');
  assert.is(head.order, 0);
  assert.is(kind(p, a + 5 * PAGE_SIZE), 'ram rw');
  assert.is(kind(p, a + 6 * PAGE_SIZE), 'device rw', 'the rest stays on the device');
  assert.is(page_at(p, a + 6 * PAGE_SIZE)._refcount, 1);
  assert.not.ok(PageLocked(page_at(p, a + 6 * PAGE_SIZE)));
  assert.is(dev.freed, 1);
  assert.is(p.check32(a, H, 21), -1);
  assert.is(dev.freed, HPAGE_PMD_NR);
});

t('an untouched aligned 2 MiB is one compound hole, populated with a whole device folio', () => {
  const dev = new TinyDev('dev0', false, HPAGE_PMD_NR * 2, 1);
  const raw = p.mmap(0, 2 * H, RW, ANON);
  const a = Math.ceil(raw / H) * H;
  const rss = get_mm_counter(p.mm, MM_ANONPAGES);
  const m = dev.toDevice(p, a, a + H, COMPOUND);
  assert.is(m.setup_cpages, 1);
  assert.is(m.src[0], MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
  assert.is(get_counter('migrate_insert_huge_pmd_page'), 1);
  assert.is(swp_type(pmd_to_swp_entry(pmd_at(p, a))), SWP_DEVICE_WRITE, 'one writable device-private PMD');
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), rss + HPAGE_PMD_NR);
  assert.is(pmd_device_head(p, a).order, HPAGE_PMD_ORDER);
  assert.is(p.read32(a + H - 4), 0);
});

t('a device THP migrates back to a system THP as one unit, and eviction keeps it whole too', () => {
  const dev = new TinyDev('dev0', false, HPAGE_PMD_NR * 2, 2);
  const a = thp(p, 31);
  dev.toDevice(p, a, a + H, COMPOUND);
  const back = dev.toSystem(p, a, a + H, MIGRATE_VMA_SELECT_COMPOUND);
  assert.is(back.setup_cpages, 1);
  const pmd = pmd_at(p, a);
  assert.ok(pmd_trans_huge(pmd) && pmd_write(pmd), 'a writable huge PMD');
  const f = pfn_to_page(pmd_pfn(pmd));
  assert.is(f.order, HPAGE_PMD_ORDER, 'a PMD-mapped system THP');
  assert.not.ok(is_device_private_page(f));
  assert.is(p.check32(a, H, 31), -1);
  dev.toDevice(p, a, a + H, COMPOUND);
  const child = p.fork();
  assert.is(pmd_device_head(child, a).pfn, pmd_device_head(p, a).pfn, 'fork shared the device THP');
  assert.is(dev.evict(), 1, 'one compound entry');
  assert.ok(pmd_trans_huge(pmd_at(p, a)) && pmd_trans_huge(pmd_at(child, a)), 'both map it with a huge PMD again');
  assert.is(pfn_to_page(pmd_pfn(pmd_at(p, a))).order, HPAGE_PMD_ORDER);
  assert.is(pmd_pfn(pmd_at(child, a)), pmd_pfn(pmd_at(p, a)), 'both processes map the new folio');
  assert.is(p.check32(a, H, 31), -1);
  assert.is(child.check32(a, H, 31), -1);
  assert.is(dev.huge_free.length, 2);
});

t('MIGRATE_TO_SYS over a range where a page maps the shared zero page skips it (no struct page to lock)', () => {
  hmm_dmirror_init();                    /* insmod test_hmm: /dev/hmm_dmirror0-3 */
  const r = dmirror_open(p);
  const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.write32(a, 11);
  assert.is(p.read32(a + PAGE_SIZE), 0, 'a read before any write maps the zero page');
  p.write32(a + 2 * PAGE_SIZE, 33);
  assert.equal(kinds(p, a, 4), ['ram rw', 'zero ro', 'ram rw', 'none']);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_MIGRATE_TO_DEV, a, 1).ret, 0);
  assert.is(kind(p, a), 'device rw');
  const res = dmirror_cmd(r, HMM_DMIRROR_MIGRATE_TO_SYS, a, 4);
  assert.is(res.ret, 0);
  assert.is(res.cpages, 1, 'only the device page moves; the zero page, RAM and the hole are not selected');
  assert.equal(kinds(p, a, 4), ['ram rw', 'zero ro', 'ram rw', 'none']);
  assert.is(PageLocked(pfn_to_page(0)), false);
  assert.equal([p.read32(a), p.read32(a + PAGE_SIZE), p.read32(a + 2 * PAGE_SIZE)], [11, 0, 33]);
});

t('a CPU fault on a device-private page whose folio is locked waits without a reference, then retries', () => {
  const dev = new TinyDev('dev0');
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 31);
  dev.toDevice(p, a, a + PAGE_SIZE);
  const dp = page_at(p, a);
  assert.ok(is_device_private_page(dp));
  const refs = dp._refcount;
  const log: string[] = [];
  const s = new Scheduler();
  s.spawn('holder', function* () {
    assert.ok(folio_trylock(dp));           /* someone else (a migration) holds the folio lock */
    yield* sched_yield();                   /* the CPU fault runs into it */
    log.push(`refs while waiting ${dp._refcount - refs}`);
    folio_unlock(dp);
  }, 'kthread', p.task);
  s.spawn('cpu', function* () {
    yield* mmap_read_lock(p.mm);
    const ret = yield* handle_mm_fault(vma_lookup(p.mm, a)!, a, 0);
    log.push(`fault ${ret}`);
    mmap_read_unlock(p.mm);
  }, 'kthread', p.task);
  s.run();
  assert.equal(log, ['refs while waiting 0', 'fault 0']);
  assert.is(get_counter('fault_device_private_wait'), 1);
  assert.is(dev.migrate_to_ram_calls, 0, 'the fault returned to be retried, it did not migrate');
  assert.is(p.read32(a), 31, 'the retry migrates it back');
  assert.is(dev.migrate_to_ram_calls, 1);
});

t.run();
