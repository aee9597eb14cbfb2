/*
 * test/mm/fork.test.ts - copy_page_range() of mm/fork.ts: the rules of
 * copy_nonpresent_pte() for migration entries (a migration in flight at
 * fork time). Device-private and device-exclusive entries at fork are
 * tested with their subsystems (test/mm/migrate_device.test.ts,
 * test/mm/device_exclusive.test.ts).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import { Process, runAs } from '../../tools/include/nolibc/nolibc.js';
import { Scheduler, sched_yield, explore } from '../../lib/sim/sched.js';
import { mmu_notifier_register } from '../../mm/mmu_notifier.js';
import type { mmu_notifier } from '../../include/linux/mmu_notifier.js';
import { pfn_to_page, get_page, put_page, nr_free_pages } from '../../mm/page_alloc.js';
import { folio_lock, folio_unlock } from '../../mm/filemap.js';
import { try_to_migrate, folio_mapped, remove_migration_ptes } from '../../mm/migrate.js';
import { sys_fork } from '../../mm/syscalls.js';
import { PAGE_SIZE, FOLL_WRITE, get_mm_counter, page_mapcount } from '../../include/linux/mm.js';
import { MM_ANONPAGES } from '../../include/linux/mm_types.js';
import { PageAnonExclusive } from '../../include/linux/page-flags.js';
import { get_counter } from '../../lib/sim/trace.js';
import { PROT_READ, MADV_HUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { pte_present, pte_pfn, pte_write } from '../../include/linux/pgtable.js';
import {
  pte_to_swp_entry, swp_type, SWP_MIGRATION_READ, SWP_MIGRATION_READ_EXCLUSIVE, SWP_MIGRATION_WRITE,
} from '../../include/linux/swapops.js';
import { migrate_vma_setup, migrate_vma_finalize } from '../../mm/migrate_device.js';
import type { migrate_vma } from '../../include/linux/migrate.js';
import { TinyDev, locked, MIGRATE_VMA_SELECT_SYSTEM } from './hmm_devmem.js';
import { boot_swap, sleeping_subscriber, check_invariants, MiB } from './swap_helpers.js';
import { pin_user_pages_unlocked, unpin_user_pages } from '../../mm/gup.js';
import type { page } from '../../include/linux/mm_types.js';

const t = suite('mm/fork');
let p: Process;
t.before.each(() => { p = boot(); });

const swp_type_at = (proc: Process, a: number) => swp_type(pte_to_swp_entry(pte_at(proc.mm, a)));

/* collect [a, a + PAGE_SIZE) for migration and leave its migration entry in place (no pages, no finalize yet) */
function setup_only(dev: TinyDev, a: number): migrate_vma {
  return locked(p, function* () {
    const m = dev.args(p.mm, a, a + PAGE_SIZE, MIGRATE_VMA_SELECT_SYSTEM);
    assert.is(yield* migrate_vma_setup(m), 0);
    return m;
  });
}

t('fork during a migration turns a readable-exclusive migration entry shared: after the restore neither side writes the other\'s page', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 7);
  assert.is(p.mprotect(a, PAGE_SIZE, PROT_READ), 0);   /* read-only PTE, page still exclusive to this mm */
  const m = setup_only(new TinyDev('dev0'), a);
  assert.is(swp_type_at(p, a), SWP_MIGRATION_READ_EXCLUSIVE);
  const child = p.fork();
  assert.is(swp_type_at(p, a), SWP_MIGRATION_READ, 'the parent\'s entry is downgraded: the page is shared now');
  assert.is(swp_type_at(child, a), SWP_MIGRATION_READ);
  locked(p, function* () { yield* migrate_vma_finalize(m); });   /* nothing migrated: both entries restored */
  assert.ok(pte_present(pte_at(p.mm, a)) && pte_present(pte_at(child.mm, a)));
  assert.is(pte_pfn(pte_at(p.mm, a)), pte_pfn(pte_at(child.mm, a)), 'one shared page');
  assert.is(p.mprotect(a, PAGE_SIZE, RW), 0);
  assert.is(child.mprotect(a, PAGE_SIZE, RW), 0);
  child.write32(a, 8);
  p.write32(a + 4, 9);
  assert.equal([p.read32(a), p.read32(a + 4)], [7, 9], 'the child\'s store stayed in the child');
  assert.equal([child.read32(a), child.read32(a + 4)], [8, 0], 'the parent\'s store stayed in the parent');
  assert.not.equal(pte_pfn(pte_at(p.mm, a)), pte_pfn(pte_at(child.mm, a)));
});

t('fork during a migration turns a writable migration entry readable in both (COW mapping)', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 3);
  const m = setup_only(new TinyDev('dev0'), a);
  assert.is(swp_type_at(p, a), SWP_MIGRATION_WRITE);
  const child = p.fork();
  assert.is(swp_type_at(p, a), SWP_MIGRATION_READ);
  assert.is(swp_type_at(child, a), SWP_MIGRATION_READ);
  locked(p, function* () { yield* migrate_vma_finalize(m); });
  child.write32(a, 4);
  assert.is(p.read32(a), 3);
  p.write32(a, 5);
  assert.equal([p.read32(a), child.read32(a)], [5, 4]);
});

t('fork during a sleeping rmap walk (try_to_migrate whose notifier sleeps) waits on the anon_vma lock: the child gets a migration entry, no mapping escapes the walk', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 0x1234);
  const f = pfn_to_page(pte_pfn(pte_at(p.mm, a)));
  let slept = 0;
  const sub: mmu_notifier = {
    mm: null,
    ops: {
      *invalidate_range_start() { if (slept++ === 0) yield* sched_yield(); return 0; },   /* a driver taking a mutex */
      *invalidate_range_end() {},
    },
  };
  runAs(p.task, mmu_notifier_register(sub, p.mm));
  let child = 0, mappedAfterWalk = true;
  const s = new Scheduler();
  s.spawn('migrate', function* () {
    yield* folio_lock(f);
    get_page(f);
    yield* try_to_migrate(f);
    mappedAfterWalk = folio_mapped(f);
    yield* remove_migration_ptes(f, f);
    folio_unlock(f);
    put_page(f);
  });
  s.spawn('fork', function* () { child = yield* sys_fork(p.task); }, 'user', p.task);
  s.run();
  assert.ok(child > 0);
  assert.not.ok(mappedAfterWalk, 'every mapping, the child\'s included, was a migration entry after the walk');
  const c = Process.of(child);
  assert.is(c.read32(a), 0x1234);
  c.write32(a, 7);
  assert.is(p.read32(a), 0x1234, 'COW kept the two apart');
});

/*
 * remove_migration_ptes() walks the anon_vma with its rwsem held for read
 * (rmap_walk_anon). Without it, a process that shares the page forks
 * at a preemption point of the walk (a PTE lock release): the grandchild's
 * VMA joins after the walk took its list of VMAs, fork copies a migration
 * entry the walk has not restored yet, and the grandchild keeps it.
 */
t('fork during remove_migration_ptes waits on the anon_vma lock: no migration entry survives in the new child (every interleaving)', () => {
  let q = p, c = p, a = 0, g = 0;
  const res = explore((s) => {
    q = boot();
    a = q.mmap(0, PAGE_SIZE, RW, ANON);
    q.write32(a, 0x1234);
    c = q.fork();                                /* the page is mapped by two VMAs of one anon_vma */
    const f = pfn_to_page(pte_pfn(pte_at(q.mm, a)));
    g = 0;
    s.spawn('migrate', function* () {
      yield* folio_lock(f);
      get_page(f);
      yield* try_to_migrate(f);
      yield* remove_migration_ptes(f, f);
      folio_unlock(f);
      put_page(f);
    });
    s.spawn('fork', function* () { g = yield* sys_fork(c.task); }, 'user', c.task);
  }, {
    preemptionBound: 1, maxRuns: 500, preemptPoints: true,
    check: () => {
      for (const [who, x] of [['parent', q], ['child', c], ['grandchild', Process.of(g)]] as const) {
        if (!pte_present(pte_at(x.mm, a))) throw new Error(`${who}: 0x${pte_at(x.mm, a).toString(16)} after the migration`);
        if (x.read32(a) !== 0x1234) throw new Error(`${who}: data lost`);
      }
    },
  });
  assert.is(res.failure, null, res.failure ? String(res.failure.error) : '');
  assert.ok(res.complete && res.runs > 1, `every interleaving explored (${res.runs} runs)`);
});

t('fork of a PTE-mapped THP shares it run by run (folio_pte_batch): each page mapped twice, one reference per PTE, write-protected, the data right', () => {
  const MB = 1 << 20, TWO_MB = 2 * MB;
  const a = p.mmap(0, TWO_MB, RW, ANON);
  assert.is(p.madvise(a, TWO_MB, MADV_HUGEPAGE), 0);
  p.fill32(a, TWO_MB, 3);
  assert.is(p.mprotect(a + MB, MB, PROT_READ), 0);     /* two VMAs over one folio, now mapped by 512 PTEs */
  const head = pfn_to_page(pte_pfn(pte_at(p.mm, a)));
  assert.is(head.order, 9);
  const ref0 = head._refcount, batches = get_counter('fork_pte_batch');
  const c = p.fork();
  assert.is(get_counter('fork_pte_batch') - batches, 2, 'one batch per VMA: a batch never crosses the VMA\'s end');
  assert.is(head._refcount, ref0 + 512, 'one reference per child PTE');
  assert.is(get_mm_counter(c.mm, MM_ANONPAGES), 512);
  for (let i = 0; i < 512; i++) {
    const pp = pte_at(p.mm, a + i * PAGE_SIZE), cp = pte_at(c.mm, a + i * PAGE_SIZE);
    if (pte_pfn(pp) !== head.pfn + i || pte_pfn(cp) !== head.pfn + i) assert.unreachable(`page ${i}: pfn`);
    if (pte_write(pp) || pte_write(cp)) assert.unreachable(`page ${i}: writable after fork`);
    const pg = pfn_to_page(head.pfn + i);
    if (page_mapcount(pg) !== 2 || PageAnonExclusive(pg)) assert.unreachable(`page ${i}: mapcount ${page_mapcount(pg)}`);
  }
  assert.is(c.check32(a, TWO_MB, 3), -1, 'the child reads every byte');
  c.write32(a + 4, 77);
  assert.is(p.read32(a + 4), 4, 'the child\'s write broke COW for one page');
  assert.is(c.check32(a + PAGE_SIZE, TWO_MB - PAGE_SIZE, 3 + 1024), -1);
  c.exit(0);
  p.wait(c.pid);
  assert.is(head._refcount, ref0, 'the child\'s references went with its exit');
  assert.is(p.check32(a, TWO_MB, 3), -1);
});

/*
 * copy_pte_range(): the child's copy of a DMA-pinned page is allocated with
 * both PTE locks dropped (folio_prealloc(), GFP_HIGHUSER_MOVABLE), so its
 * direct reclaim may sleep and sends blockable ranges. Before, fork
 * allocated under the PTE locks: no reclaim could run there (the copy
 * failed or the OOM killer ran), and with might_sleep() it is a BUG.
 */
t('fork copies DMA-pinned pages under memory pressure: the copy\'s direct reclaim sends blockable ranges, a sleeping subscriber is waited for', () => {
  const q = boot_swap(8 * MiB, 32 * MiB);
  const n = 64, m = 128;
  const a = q.mmap(0, n * PAGE_SIZE, RW, ANON);
  q.fill32(a, n * PAGE_SIZE, 3);                  /* the oldest pages: reclaim takes them first */
  const sub = sleeping_subscriber(q, a, n * PAGE_SIZE);
  const b = q.mmap(0, m * PAGE_SIZE, RW, ANON);
  q.fill32(b, m * PAGE_SIZE, 4);
  const pages: page[] = [];
  assert.is(runAs(q.task, pin_user_pages_unlocked(q.mm, b, m, FOLL_WRITE, pages)), m);
  const filler = Process.spawn('filler');          /* RAM full: the copies need reclaim */
  const fill = nr_free_pages() - 8;
  const f = filler.mmap(0, fill * PAGE_SIZE, RW, ANON);
  filler.fill32(f, fill * PAGE_SIZE, 5);
  assert.ok(nr_free_pages() < m, `free ${nr_free_pages()}`);
  assert.equal([sub.blockable, sub.refused], [0, 0]);
  const stalls = get_counter('allocstall');
  const c = q.fork();
  assert.ok(get_counter('allocstall') > stalls, 'the copies reclaimed directly');
  assert.is(get_counter('fork_copy_pinned'), m, 'every pinned page was copied for the child');
  assert.is(sub.refused, 0, 'no non-blockable range reached the subscriber');
  assert.ok(sub.blockable > 0 && sub.slept === sub.blockable, 'every invalidation was blockable and slept');
  assert.is(get_counter('reclaim_nosleep'), 0);
  for (let i = 0; i < m; i++) {
    assert.ok(pte_pfn(pte_at(c.mm, b + i * PAGE_SIZE)) !== pages[i].pfn, `page ${i}: the child has its own copy`);
  }
  assert.is(c.check32(b, m * PAGE_SIZE, 4), -1, 'the child\'s copies hold the parent\'s bytes');
  assert.is(c.check32(a, n * PAGE_SIZE, 3), -1);
  assert.is(q.check32(a, n * PAGE_SIZE, 3), -1);
  assert.is(filler.check32(f, fill * PAGE_SIZE, 5), -1);
  unpin_user_pages(pages);
  assert.is(q.check32(b, m * PAGE_SIZE, 4), -1);
  check_invariants([q.mm, c.mm, filler.mm]);
});

t.run();
