/*
 * test/mm/migrate_device_collect.test.ts - the collect step of
 * migrate_vma_setup() (mm/migrate_device_collect.ts): what each kind of
 * PTE becomes (src[] element, migration entry, folio state) and the TLB
 * flushes Linux does there (ptep_clear_flush() per exclusive page, one
 * flush_tlb_range() per PTE page), checked between setup and pages; and
 * the page handles of the migration passes (migrate_pfn_to_page(),
 * pfn_swap_entry_to_page(): new handles from the section, not the handle
 * cache) against pfn_to_page().
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE, FOLL_WRITE } from '../../include/linux/mm.js';
import type { page } from '../../include/linux/mm_types.js';
import { PROT_READ } from '../../include/uapi/asm-generic/mman.js';
import { pte_present, pte_pfn } from '../../include/linux/pgtable.js';
import {
  pte_to_swp_entry, swp_type, swp_offset_pfn, pfn_swap_entry_to_page, SWP_MIGRATION_READ,
  SWP_MIGRATION_READ_EXCLUSIVE, SWP_MIGRATION_WRITE, SWP_DEVICE_WRITE,
} from '../../include/linux/swapops.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_PFN_VALID,
  migrate_pfn, migrate_pfn_flags, migrate_pfn_to_page, type migrate_vma,
} from '../../include/linux/migrate.js';
import { PageDirty, PageAnonExclusive, PageLocked } from '../../include/linux/page-flags.js';
import { get_counter } from '../../lib/sim/trace.js';
import { pfn_to_page } from '../../mm/page_alloc.js';
import { pin_user_pages, unpin_user_pages } from '../../mm/gup.js';
import { TinyDev, locked } from './hmm_devmem.js';
import { runAs } from '../../tools/include/nolibc/nolibc.js';
import { trace_counters } from '../../lib/sim/trace.js';
import { now } from '../../lib/sim/clock.js';
import { tlb_flush_batch_enable } from '../../mm/pgtable.js';
import { struct_page_direct } from '../../mm/internal.js';
import { pgmap_pages } from '../../mm/memremap.js';
import { nr_free_pages } from '../../mm/page_alloc.js';
import { fail_folio_trylock } from '../../lib/fault-inject.js';
import { mmu_notifier_register } from '../../mm/mmu_notifier.js';
import type { mmu_notifier } from '../../include/linux/mmu_notifier.js';

const t = suite('mm/migrate_device_collect');
let p: Process;
t.before.each(() => { p = boot(); });

/* the CPU entry at addr, as a short string */
function entry(proc: Process, addr: number): string {
  const pte = pte_at(proc.mm, addr);
  if (pte <= 0) return 'none';
  if (pte_present(pte)) return pte_pfn(pte) === 0 ? 'zero' : 'present';
  const type = swp_type(pte_to_swp_entry(pte));
  return type === SWP_MIGRATION_WRITE ? 'mig write' : type === SWP_MIGRATION_READ_EXCLUSIVE ? 'mig read excl'
    : type === SWP_MIGRATION_READ ? 'mig read' : type === SWP_DEVICE_WRITE ? 'device rw' : `swap ${type}`;
}
const entries = (proc: Process, a: number, n: number) => Array.from({ length: n }, (_, i) => entry(proc, a + i * PAGE_SIZE));
const pfn_at = (proc: Process, a: number): number => {
  const pte = pte_at(proc.mm, a);
  return pte_present(pte) ? pte_pfn(pte) : swp_offset_pfn(pte_to_swp_entry(pte));
};

t('collect: holes, the zero page, exclusive, shared and pinned pages get the entries and flushes Linux gives them', () => {
  const dev = new TinyDev('dev0');
  const N = 8;
  const a = p.mmap(0, N * PAGE_SIZE, RW, ANON);
  /* 0 hole, 1 zero page, 2..7 written; then fork shares 2..7 and the parent writes 2, 4..7 again (COW: exclusive) */
  p.read32(a + PAGE_SIZE);
  for (let i = 2; i < N; i++) p.write32(a + i * PAGE_SIZE, 0x100 + i);
  const child = p.fork();
  for (const i of [2, 4, 5, 6, 7]) p.write32(a + i * PAGE_SIZE, 0x200 + i);
  const shared = pfn_at(p, a + 3 * PAGE_SIZE);
  const pins: page[] = [];
  assert.is(locked(p, function* () { return yield* pin_user_pages(p.mm, a + 5 * PAGE_SIZE, 1, FOLL_WRITE, pins); }), 1);
  const pfns = Array.from({ length: N }, (_, i) => pfn_at(p, a + i * PAGE_SIZE));
  const flush0 = get_counter('tlb_flush'), pages0 = get_counter('tlb_flush_pages');
  let after: { src: number[]; kinds: string[]; child: string[]; dirty: boolean[]; excl: boolean[]; locked: boolean[];
               cpages: number; flushes: number; flushed_pages: number } | null = null;
  const m = dev.toDevice(p, a, a + N * PAGE_SIZE, undefined, (mv: migrate_vma) => {
    const pg = (i: number) => pfn_to_page(pfns[i]);
    after = {
      src: Array.from(mv.src), kinds: entries(p, a, N), child: entries(child, a, N), cpages: mv.cpages,
      dirty: [2, 3, 4].map((i) => PageDirty(pg(i))), excl: [2, 3, 4, 5].map((i) => PageAnonExclusive(pg(i))),
      locked: [2, 3, 4, 5].map((i) => PageLocked(pg(i))),
      flushes: get_counter('tlb_flush') - flush0, flushed_pages: get_counter('tlb_flush_pages') - pages0,
    };
  });
  assert.is(m.ret, 0);
  const s = after!;
  assert.equal(s.src.slice(0, 2), [MIGRATE_PFN_MIGRATE, MIGRATE_PFN_MIGRATE], 'hole and zero page: MIGRATE, no page');
  for (const i of [2, 4, 6, 7]) assert.is(s.src[i], migrate_pfn(pfns[i]) | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE);
  assert.is(s.src[3], migrate_pfn(shared) | MIGRATE_PFN_MIGRATE, 'the shared page was read-only: no WRITE');
  assert.is(s.src[5], 0, 'the pinned exclusive page is not collected');
  assert.equal(s.kinds, ['none', 'zero', 'mig write', 'mig read', 'mig write', 'present', 'mig write', 'mig write']);
  assert.equal(s.child.slice(2, 4), ['present', 'mig read'], 'unmap (try_to_migrate) replaced the child\'s mapping of the shared page');
  assert.equal(s.dirty, [true, true, true], 'the PTE dirty bits moved to the folios');
  assert.equal(s.excl, [false, false, false, true], 'collected pages are no longer exclusive; the pinned one stays');
  assert.equal(s.locked, [true, true, true, false]);
  assert.is(s.cpages, 7, 'all but the pinned page (the shared one too: its other mapping went at unmap)');
  /*
   * ptep_clear_flush() for each exclusive present page: 2, 4, 5 (the
   * pinned one, flushed before the pin check puts the PTE back), 6, 7;
   * one flush_tlb_range() over the 8 pages the PTE loop covered; unmap's
   * try_to_migrate() clears and flushes the child's PTE of page 3.
   */
  assert.is(s.flushes, 5 + 1 + 1);
  assert.is(s.flushed_pages, 5 + 8 + 1);
  assert.is(get_counter('migrate_collect_pinned'), 1);
  unpin_user_pages(pins);
  assert.equal(Array.from({ length: N }, (_, i) => p.read32(a + i * PAGE_SIZE)),
    [0, 0, 0x202, 0x103, 0x204, 0x205, 0x206, 0x207], 'the data survived the round trip to the device and back');
  assert.equal(Array.from({ length: N }, (_, i) => child.read32(a + i * PAGE_SIZE)),
    [0, 0, 0x102, 0x103, 0x104, 0x105, 0x106, 0x107], 'the child kept its own copies');
});

t('collect: a read-only exclusive page becomes a readable-exclusive migration entry, flushed on its own', () => {
  const dev = new TinyDev('dev0');
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 2 * PAGE_SIZE, 5);
  assert.is(p.mprotect(a, 2 * PAGE_SIZE, PROT_READ), 0);
  const flush0 = get_counter('tlb_flush');
  let kinds: string[] = [], src: number[] = [], flushes = 0;
  dev.toDevice(p, a, a + 2 * PAGE_SIZE, undefined, (mv: migrate_vma) => {
    kinds = entries(p, a, 2); src = Array.from(mv.src); flushes = get_counter('tlb_flush') - flush0;
  });
  assert.equal(kinds, ['mig read excl', 'mig read excl']);
  for (const x of src) assert.is(migrate_pfn_flags(x), MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE, 'no WRITE');
  assert.is(flushes, 2 + 1);
  assert.is(p.check32(a, 2 * PAGE_SIZE, 5), -1);
});

/* the frames mapped at [a, a + n pages) of @proc, present or behind a swap entry */
const pfns_of = (proc: Process, a: number, n: number) => Array.from({ length: n }, (_, i) => pfn_at(proc, a + i * PAGE_SIZE));

/* every struct page field the migration touches, of each frame */
function struct_pages(pfns: number[]): unknown[] {
  return pfns.map((pfn) => {
    const pg = pfn_to_page(pfn);
    return [pfn, pg.flags, pg._refcount, pg._mapcount, pg.mapping === null ? null : pg.mapping.kind, pg.index,
      pg.memcg === null ? null : 'memcg', pg.order, pg.zone_device_data === null ? null : 'data'];
  });
}

/*
 * One mixed migration to the device and back, stopped after setup to
 * record what collect left; returns everything a difference in the
 * flush accounting could change.
 */
function flush_scenario(batching: boolean, direct = true, fail_trylock = 0): unknown {
  const old = tlb_flush_batch_enable(batching);
  const old_direct = struct_page_direct(direct);
  try {
    p = boot();
    const dev = new TinyDev('dev0');
    const N = 12;
    const a = p.mmap(0, N * PAGE_SIZE, RW, ANON);
    /* a whole-mm subscriber with a secondary TLB (as IOMMU SVA): each flush must still reach it, per page, in order */
    const sva: string[] = [];
    const sub = {
      mm: null,
      ops: { arch_invalidate_secondary_tlbs: (_s: mmu_notifier, _mm: unknown, s: number, e: number) => { sva.push(`${(s - a) / PAGE_SIZE}+${(e - s) / PAGE_SIZE}`); } },
    } as unknown as mmu_notifier;
    runAs(p.task, mmu_notifier_register(sub, p.mm));
    p.read32(a + PAGE_SIZE);
    for (let i = 2; i < N; i++) p.write32(a + i * PAGE_SIZE, 0x300 + i);
    const child = p.fork();
    for (const i of [2, 4, 5, 7, 8, 9, 10]) p.write32(a + i * PAGE_SIZE, 0x400 + i);
    const pins: page[] = [];
    locked(p, function* () { return yield* pin_user_pages(p.mm, a + 5 * PAGE_SIZE, 1, FOLL_WRITE, pins); });
    sva.length = 0;
    const pfns = Array.from({ length: N }, (_, i) => pfn_at(p, a + i * PAGE_SIZE));
    let at_setup: unknown = null;
    /* during setup, every fail_trylock-th trylock of an unlocked folio fails (fail_folio_trylock), when not 0 */
    if (fail_trylock !== 0) Object.assign(fail_folio_trylock, { probability: 100, interval: fail_trylock, times: -1 });
    dev.toDevice(p, a, a + N * PAGE_SIZE, undefined, (mv: migrate_vma) => {
      fail_folio_trylock.probability = 0;
      at_setup = {
        vtime: now(), src: Array.from(mv.src), kinds: entries(p, a, N), child: entries(child, a, N),
        pages: pfns.map((pfn) => { const pg = pfn_to_page(pfn); return [pg.flags, pg._refcount, pg._mapcount]; }),
        counters: new Map(trace_counters), sva: [...sva],
      };
    });
    unpin_user_pages(pins);
    const on_device = struct_pages([...pfns_of(p, a, N), ...pgmap_pages(dev.pgmap).map((pg) => pg.pfn)]);
    const back = dev.toSystem(p, a, a + N * PAGE_SIZE);
    return {
      at_setup, on_device, back_src: Array.from(back.src), counters: new Map(trace_counters), free: nr_free_pages(),
      back_pages: struct_pages([...pfns_of(p, a, N), ...pfns_of(child, a, N), ...pgmap_pages(dev.pgmap).map((pg) => pg.pfn)]),
      data: Array.from({ length: N }, (_, i) => [p.read32(a + i * PAGE_SIZE), child.read32(a + i * PAGE_SIZE)]),
    };
  } finally {
    tlb_flush_batch_enable(old);
    struct_page_direct(old_direct);
  }
}

t('collect: per-page flushes accounted per PTE lock hold end in the same state as flush_tlb_page() per page', () => {
  const batched = flush_scenario(true) as { at_setup: { counters: Map<string, number>; sva: string[] } };
  const slow = flush_scenario(false);
  assert.equal(batched, slow, 'vtime, src[], both page tables, struct pages, every counter, SVA flushes, bytes');
  const s = batched.at_setup;
  assert.ok((s.counters.get('tlb_flush') ?? 0) >= 7, 'the exclusive pages were flushed');
  /*
   * the parent's secondary TLB saw each exclusive present page (2, 4,
   * 5 pinned, 7..10) flushed on its own, in order, then the PTE page's
   * range (the shared pages 3, 6 and 11 are cleared without a flush of
   * their own; the child's PTEs are another mm's)
   */
  assert.equal(s.sva, ['2+1', '4+1', '5+1', '7+1', '8+1', '9+1', '10+1', '0+12']);
});

t('the struct page steps on the section arrays (collect, restore, finalize, device page free) end as through the page helpers', () => {
  for (const fail_trylock of [0, 3]) {
    const direct = flush_scenario(true, true, fail_trylock) as { at_setup: { src: number[] }; back_src: number[] };
    const helpers = flush_scenario(true, false, fail_trylock);
    assert.equal(direct, helpers, `fail_trylock ${fail_trylock}: vtime, src[], both page tables, struct pages, every counter, bytes`);
    /* the scenario reaches the paths: exclusive, shared (forked), pinned, clean and dirty pages; some not taken */
    const taken = direct.at_setup.src.filter((x) => (x & MIGRATE_PFN_MIGRATE) !== 0).length;
    if (fail_trylock === 0) assert.is(taken, 11, 'every page but the pinned one');
    else assert.ok(taken < 11 && taken > 0, `some trylocks failed (${taken} taken)`);
  }
});

t('migrate_pfn_to_page() and pfn_swap_entry_to_page() read the same struct pages as pfn_to_page()', () => {
  const dev = new TinyDev('dev0');
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 2 * PAGE_SIZE, 9);
  const ram = pfn_to_page(pfn_at(p, a));
  const h = migrate_pfn_to_page(migrate_pfn(ram.pfn) | MIGRATE_PFN_MIGRATE)!;
  assert.is(h.pfn, ram.pfn);
  assert.is(h.section, ram.section);
  assert.equal([h.flags, h._refcount, h._mapcount, h.mapping, h.index], [ram.flags, ram._refcount, ram._mapcount, ram.mapping, ram.index]);
  assert.is.not(migrate_pfn_to_page(migrate_pfn(ram.pfn)), h, 'a new handle per call (compare pfns, never handles)');
  h.private = 77;
  assert.is(ram.private, 77, 'a store through one handle is read through the other');
  h.private = 0;

  dev.toDevice(p, a, a + 2 * PAGE_SIZE);
  const e = pte_to_swp_entry(pte_at(p.mm, a));
  assert.is(entry(p, a), 'device rw');
  const d = pfn_swap_entry_to_page(e), dd = pfn_to_page(swp_offset_pfn(e));
  assert.equal([d.pfn, d.section, d.pgmap, d._refcount, d.mapping], [dd.pfn, dd.section, dd.pgmap, dd._refcount, dd.mapping]);
  const back = dev.toSystem(p, a, a + 2 * PAGE_SIZE);
  assert.is(migrate_pfn_flags(back.src[0]), MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE);
  assert.is(migrate_pfn_to_page(back.src[0])!.pfn, dd.pfn, 'MIGRATE_TO_SYS collected the device page the entry named');
  assert.is(p.check32(a, 2 * PAGE_SIZE, 9), -1);
  assert.throws(() => migrate_pfn_to_page(migrate_pfn(2 ** 24)), /pfn_to_page/, 'no memory there: BUG as pfn_to_page()');
});

t.run();
