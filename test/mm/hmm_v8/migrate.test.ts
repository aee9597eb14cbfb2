/*
 * test/mm/hmm_v8/migrate.test.ts - migration to device memory and back,
 * SWP_HMM entries, fork and memcg (mm/hmm_v8/migrate.ts, migrate_back.ts,
 * memcg.ts: HMM v8 patches 14-16, 20-22, 25-28).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../../helpers.js';
import { runAs } from '../../../tools/include/nolibc/nolibc.js';
import { UserFault } from '../../../mm/fault.js';
import { PAGE_SIZE, FOLL_WRITE, get_mm_counter } from '../../../include/linux/mm.js';
import { MM_ANONPAGES, type page } from '../../../include/linux/mm_types.js';
import { MAP_SHARED, MAP_ANONYMOUS, MADV_HUGEPAGE } from '../../../include/uapi/asm-generic/mman.js';
import { pmd_trans_huge, pmd_pfn } from '../../../include/linux/pgtable.js';
import { pmd_off } from '../../../mm/pgtable.js';
import { pte_kind, pte_to_swp_entry, is_hmm_entry_locked, is_hmm_entry_poisonous } from '../../../include/linux/swapops.js';
import {
  HMM_COPY_TO_DEVICE, hmm_pte_test_valid_dev, hmm_pte_test_valid_pfn, type hmm_event,
} from '../../../include/linux/hmm_v8.js';
import { EINVAL, ENOMEM, EAGAIN } from '../../../include/uapi/asm-generic/errno.js';
import { hmm_mirror_fault } from '../../../mm/hmm_v8/fault.js';
import { HMM_MIGRATE_MAX_PAGES } from '../../../mm/hmm_v8/migrate.js';
import { pin_user_pages, unpin_user_pages } from '../../../mm/gup.js';
import { mmap_read_lock, mmap_read_unlock } from '../../../mm/mmap_lock.js';
import { mem_cgroup_create, mem_cgroup_attach_task, memory_max_write } from '../../../mm/memcontrol.js';
import { start_kernel } from '../../../mm/init.js';
import { Process } from '../../../tools/include/nolibc/nolibc.js';
import { reclaim_all, sleeping_subscriber } from '../swap_helpers.js';
import { Scheduler } from '../../../lib/sim/sched.js';
import { get_counter } from '../../../lib/sim/trace.js';
import { nr_free_pages } from '../../../mm/page_alloc.js';
import { oom_kills } from '../../../mm/oom_kill.js';
import { tdev } from './tdev.js';

const t = suite('mm/hmm_v8/migrate');
let p: Process;
t.before.each(() => { p = boot(); });

const kind = (addr: number, pp: Process = p) => pte_kind(pte_at(pp.mm, addr)).kind;

function mig(d: tdev, start: number, npages: number) {
  const e: hmm_event = { start, end: start + npages * PAGE_SIZE, etype: HMM_COPY_TO_DEVICE, pte_mask: 0, backoff: false };
  return runAs(p.task, hmm_mirror_fault(d.mirror, e));
}

function setup(npages: number, name = 'tdev'): { d: tdev; a: number } {
  const a = p.mmap(0, npages * PAGE_SIZE, RW, ANON);
  const d = new tdev(name);
  assert.is(runAs(p.task, d.register(p.mm)), 0);
  return { d, a };
}

t('present pages move: the CPU PTE becomes SWP_HMM, the mirror a device entry, rss and pages go down', () => {
  const { d, a } = setup(4);
  p.fill32(a, 4 * PAGE_SIZE, 7);
  const rss = get_mm_counter(p.mm, MM_ANONPAGES);
  assert.is(mig(d, a, 4), 0);
  for (let i = 0; i < 4; i++) {
    assert.is(kind(a + i * PAGE_SIZE), 'hmm');
    assert.ok(hmm_pte_test_valid_dev(d.mentry(a + i * PAGE_SIZE)));
  }
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), rss - 4);
  assert.is(d.mem.size, 4);
  assert.is(get_counter('hmm_v8_migrate_to_device'), 4);
  assert.is(p.check32(a, 4 * PAGE_SIZE, 7), -1, 'CPU reads migrate every page back with its data');
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), rss);
  assert.is(d.mem.size, 0);
});

t('holes and zero-page PTEs are filled with fresh zeroed pages, which migrate too', () => {
  const { d, a } = setup(3);
  p.read32(a + PAGE_SIZE);                    /* the zero page */
  assert.is(mig(d, a, 3), 0);
  assert.is(get_counter('hmm_v8_migrate_hole'), 3);
  assert.is(d.mem.size, 3);
  assert.is(p.read32(a + 2 * PAGE_SIZE), 0);
});

t('only private anonymous memory, and at most HMM_MIGRATE_MAX_PAGES at once', () => {
  const { d, a } = setup(HMM_MIGRATE_MAX_PAGES + 1);
  assert.is(mig(d, a, HMM_MIGRATE_MAX_PAGES + 1), -EINVAL);
  const s = p.mmap(0, PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
  assert.is(mig(d, s, 1), -EINVAL);
  assert.is(mig(d, a, HMM_MIGRATE_MAX_PAGES), 0);
});

t('a GUP-pinned page fails the mapcount-vs-refcount filter and keeps its PTE', () => {
  const { d, a } = setup(2);
  p.fill32(a, 2 * PAGE_SIZE, 0);
  const pinned: page[] = [];
  runAs(p.task, (function* () {
    yield* mmap_read_lock(p.mm);
    yield* pin_user_pages(p.mm, a, 1, FOLL_WRITE, pinned);
    mmap_read_unlock(p.mm);
  })());
  assert.is(mig(d, a, 2), 0);
  assert.is(kind(a), 'present');
  assert.is(kind(a + PAGE_SIZE), 'hmm');
  assert.is(get_counter('hmm_v8_migrate_pinned'), 1);
  assert.ok(!hmm_pte_test_valid_dev(d.mentry(a)));
  unpin_user_pages(pinned);
});

t('partial copy_to_device: refused pages get their saved PTE back', () => {
  const { d, a } = setup(3);
  p.fill32(a, 3 * PAGE_SIZE, 1);
  d.refuse.add(a + PAGE_SIZE);
  assert.is(mig(d, a, 3), 0);
  assert.equal([kind(a), kind(a + PAGE_SIZE), kind(a + 2 * PAGE_SIZE)], ['hmm', 'present', 'hmm']);
  assert.ok(hmm_pte_test_valid_pfn(d.mentry(a + PAGE_SIZE)));
  assert.is(p.check32(a, 3 * PAGE_SIZE, 1), -1);
});

t('the other mirrors of the mm are invalidated with HMM_MIGRATE; the migrating one is not', () => {
  const { d, a } = setup(2, 'one');
  const other = new tdev('two');
  runAs(p.task, other.register(p.mm));
  p.fill32(a, 2 * PAGE_SIZE, 0);
  runAs(p.task, other.read32(a));
  assert.is(mig(d, a, 2), 0);
  assert.equal(other.ops_of('HMM_MIGRATE').length, 1);
  assert.is(other.mentry(a), 0);
  assert.is(d.ops_of('HMM_MIGRATE').length, 0, 'its own listener was excluded');
  assert.is(runAs(p.task, other.read32(a)), 0, 'the other device faults it back through system memory');
  assert.is(kind(a), 'present');
});

t('a page already on another device is neither migrated again nor dropped by the second device', () => {
  const { d, a } = setup(2, 'one');
  const other = new tdev('two');
  runAs(p.task, other.register(p.mm));
  p.fill32(a, 2 * PAGE_SIZE, 5);
  assert.is(mig(d, a, 1), 0);
  assert.is(mig(other, a, 2), 0);
  assert.ok(hmm_pte_test_valid_dev(d.mentry(a)), 'device one keeps the first page');
  assert.ok(hmm_pte_test_valid_dev(other.mentry(a + PAGE_SIZE)), 'device two took the second');
  assert.is(other.mentry(a), 0);
  assert.equal([d.mem.size, other.mem.size], [1, 1]);
  assert.is(p.check32(a, 2 * PAGE_SIZE, 5), -1);
});

t('a THP is mirrored as 512 entries of its subpages, and split before it migrates', () => {
  const TWO_MB = 2 << 20;
  const a = p.mmap(0, TWO_MB, RW, ANON);
  assert.is(p.madvise(a, TWO_MB, MADV_HUGEPAGE), 0);
  p.fill32(a, TWO_MB, 9);
  const d = new tdev();
  runAs(p.task, d.register(p.mm));
  const pmd = p.mm.pgd.load(pmd_off(p.mm, a));
  assert.ok(pmd_trans_huge(pmd), 'a huge PMD to start with');
  assert.is(runAs(p.task, d.read32(a + 300 * PAGE_SIZE + 4)), 300 * 1024 + 1 + 9);
  const e = d.mentry(a + 300 * PAGE_SIZE);
  assert.ok(hmm_pte_test_valid_pfn(e));
  assert.is(e / PAGE_SIZE >>> 0, (pmd_pfn(pmd) + 300) >>> 0, 'the subpage of the folio');
  assert.is(mig(d, a, 512), 0);
  assert.not.ok(pmd_trans_huge(p.mm.pgd.load(pmd_off(p.mm, a))), 'split first');
  assert.is(d.mem.size, 512);
  assert.is(p.check32(a, TWO_MB, 9), -1);
});

t('a device copy that fails migrating back poisons the entry: SIGBUS on the CPU', () => {
  const { d, a } = setup(1);
  p.write32(a, 3);
  mig(d, a, 1);
  d.lose.add(a);
  assert.throws(() => p.read32(a), (e: unknown) => e instanceof UserFault && /SIGBUS/.test(String(e)));
  assert.ok(is_hmm_entry_poisonous(pte_to_swp_entry(pte_at(p.mm, a))));
  assert.is(get_counter('hmm_v8_poisoned'), 1);
});

t('a CPU fault on a locked entry waits for the migrating thread, then sees the result', () => {
  const { d, a } = setup(1);
  p.write32(a, 11);
  const s = new Scheduler();
  let seen_locked = false, value = -1;
  d.stall_copy = 3;
  s.spawn('migrate', function* () {
    const e: hmm_event = { start: a, end: a + PAGE_SIZE, etype: HMM_COPY_TO_DEVICE, pte_mask: 0, backoff: false };
    yield* hmm_mirror_fault(d.mirror, e);
  }, 'user', p.task);
  s.spawn('cpu', function* () {
    seen_locked = is_hmm_entry_locked(pte_to_swp_entry(pte_at(p.mm, a)));
    value = yield* p.sys.load(a, 4);
  }, 'user', p.task);
  s.run();
  assert.ok(seen_locked, 'the CPU found the locked entry');
  assert.is(get_counter('hmm_v8_cpu_fault_wait'), 1);
  assert.is(value, 11);
});

t('fork: the child gets system copies through copy_from_device(HMM_FORK); the parent keeps device pages', () => {
  const { d, a } = setup(2);
  p.fill32(a, 2 * PAGE_SIZE, 40);
  mig(d, a, 2);
  const c = p.fork();
  assert.equal(d.ops_of('HMM_FORK').filter((x) => x.op === 'copy_from_device').length, 2);
  assert.equal([kind(a), kind(a, c)], ['hmm', 'present']);
  assert.is(c.check32(a, 2 * PAGE_SIZE, 40), -1);
  assert.is(get_mm_counter(c.mm, MM_ANONPAGES), 2);
  assert.is(d.mem.size, 2, 'device memory untouched');
  assert.is(p.check32(a, 2 * PAGE_SIZE, 40), -1);
});

t('memcg (2015): pages moved to the device are uncharged, so migrating back can fail on the limit -> OOM', () => {
  const memcg = mem_cgroup_create('gpu');
  mem_cgroup_attach_task(memcg, p.task);
  assert.is(memory_max_write(memcg, 8 * PAGE_SIZE), 0);
  const { d, a } = setup(4);
  p.fill32(a, 4 * PAGE_SIZE, 0);
  const used = memcg.memory.usage;
  assert.is(mig(d, a, 4), 0);
  assert.is(memcg.memory.usage, used - 4, 'the system pages left the memcg with their data');
  const filler = p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
  for (let i = 0; memcg.memory.usage < 8; i++) p.write32(filler + i * PAGE_SIZE, 1);
  assert.throws(() => p.read32(a), (e: unknown) => e instanceof UserFault && /SIGKILL/.test(String(e)));
  assert.is(get_counter('hmm_v8_memcg_charge_fail'), 1);
  assert.is(kind(a), 'hmm', 'the data stays on the device');
  p.munmap(filler, 8 * PAGE_SIZE);
  assert.is(p.read32(a), 0, 'room again: it comes back');
  assert.is(memcg.memory.usage, used - 3);
});

t('a swapped-out page in the range is swapped in first (-ENOENT, fault, go on), then migrates', () => {
  start_kernel({ ram_bytes: 8 << 20, swap_bytes: 16 << 20 });
  p = Process.spawn('swap');
  const { d, a } = setup(8);
  p.fill32(a, 8 * PAGE_SIZE, 77);
  reclaim_all();
  assert.is(kind(a), 'swap', 'reclaim swapped the buffer out');
  assert.is(mig(d, a, 8), 0);
  assert.ok(get_counter('hmm_v8_migrate_swapin') >= 1);
  assert.is(d.mem.size, 8);
  assert.is(p.check32(a, 8 * PAGE_SIZE, 77), -1);
});

/*
 * Fuzz seed 22937: the pages for holes were allocated under the PTE lock.
 * With RAM exhausted the allocation runs the OOM killer, whose reaper
 * invalidates the victim's mm; a v8 mirror there takes hmm.rwsem (may
 * sleep): BUG, sleeping under a spinlock. Patch 21 allocates them after
 * pte_unmap_unlock(), the locked SWP_HMM entries keeping others out.
 */
t('MIGRATE_TO over holes with RAM exhausted allocates outside the PTE lock: the OOM killer runs, no BUG', () => {
  start_kernel({ ram_bytes: 4 << 20 });
  const victim = Process.spawn('victim');
  const dv = new tdev('victim');
  assert.is(runAs(victim.task, dv.register(victim.mm)), 0);
  const nv = 700, v = victim.mmap(0, nv * PAGE_SIZE, RW, ANON);
  victim.fill32(v, nv * PAGE_SIZE, 1);
  p = Process.spawn('migrator');
  const { d, a } = setup(64);
  const rest = p.mmap(0, 1024 * PAGE_SIZE, RW, ANON);
  for (let i = 0; nr_free_pages() > 40; i++) p.write32(rest + i * PAGE_SIZE, i);
  assert.is(oom_kills().length, 0, 'RAM is nearly full, nobody killed yet');
  const r = mig(d, a, 64);
  assert.ok(r === 0 || r === -ENOMEM, `MIGRATE_TO: ${r}`);
  assert.ok(oom_kills().length >= 1, 'the OOM killer ran inside the hole allocation');
  assert.is(oom_kills()[0].pid, victim.pid, 'the largest task was killed (the v8 hub refuses the reaper\'s non-blockable range)');
  assert.is(d.mem.size, r === 0 ? 64 : 0, 'all the holes moved, or none (the range is restored)');
});

/*
 * Patch 21 allocates the hole pages (alloc_zeroed_user_highpage_movable,
 * GFP_KERNEL charge) and patch 20 the migrate-back pages after the PTE
 * lock is dropped: both may sleep, so their direct reclaim sends blockable
 * ranges. Before, both used the plain allocator (reclaim inline with
 * non-blockable ranges, now a might_sleep BUG).
 */
t('hole and migrate-back allocations under memory pressure: direct reclaim sends blockable ranges, a sleeping subscriber is waited for', () => {
  start_kernel({ ram_bytes: 8 << 20, swap_bytes: 32 << 20 });
  const filler = Process.spawn('filler');
  const fa = filler.mmap(0, 4096 * PAGE_SIZE, RW, ANON);
  const sub = sleeping_subscriber(filler, fa, 4096 * PAGE_SIZE);
  p = Process.spawn('migrator');
  const { d, a } = setup(64);
  const used = nr_free_pages() - 8;
  filler.fill32(fa, used * PAGE_SIZE, 5);         /* RAM full of the filler's pages, the oldest on the LRU */
  let stalls = get_counter('allocstall');
  assert.is(mig(d, a, 64), 0);
  assert.is(get_counter('hmm_v8_migrate_hole'), 64);
  assert.ok(get_counter('allocstall') > stalls, 'the hole allocations reclaimed directly');
  assert.is(sub.refused, 0, 'no non-blockable range reached the subscriber');
  assert.ok(sub.blockable > 0 && sub.slept === sub.blockable);
  const more = nr_free_pages() - 4;                /* the holes' system pages went back: fill again */
  filler.fill32(fa + used * PAGE_SIZE, more * PAGE_SIZE, 6);
  const blockable = sub.blockable;
  stalls = get_counter('allocstall');
  assert.ok(p.read(a, 64 * PAGE_SIZE).every((x) => x === 0), 'CPU reads bring every page back, zeroed');
  assert.is(get_counter('hmm_v8_migrate_back'), 64);
  assert.ok(get_counter('allocstall') > stalls, 'the migrate-back allocations reclaimed directly');
  assert.ok(sub.blockable > blockable && sub.refused === 0, 'blockable ranges again');
  assert.is(get_counter('reclaim_nosleep'), 0);
  assert.is(filler.check32(fa, used * PAGE_SIZE, 5), -1);
  assert.is(filler.check32(fa + used * PAGE_SIZE, more * PAGE_SIZE, 6), -1);
});

/*
 * The migrating thread is a registered device fault over its range: an
 * invalidation from its own direct reclaim that overlaps the range (a page
 * of the next PMD, not locked yet) would wait for the thread itself. The
 * hub tells the migration to back off instead of waiting (model deviation,
 * documented in mm/hmm_v8/hmm.ts): no deadlock, the range is restored.
 */
t('a hole allocation whose reclaim invalidates the migrating range itself backs off instead of waiting for itself', () => {
  start_kernel({ ram_bytes: 8 << 20, swap_bytes: 32 << 20 });
  p = Process.spawn('migrator');
  const { d, a } = setup(2048);
  const b = Math.ceil((a + PAGE_SIZE) / (2 << 20)) * (2 << 20);   /* a PMD boundary inside the mapping */
  const start = b - 32 * PAGE_SIZE;
  p.fill32(b, 32 * PAGE_SIZE, 21);                /* the next PMD's pages: the oldest on the LRU */
  const filler = Process.spawn('filler');
  const n = nr_free_pages() - 8, fa = filler.mmap(0, n * PAGE_SIZE, RW, ANON);
  filler.fill32(fa, n * PAGE_SIZE, 5);
  const r = mig(d, start, 64);                     /* 32 holes in the first PMD, then 32 present pages */
  assert.ok(get_counter('hmm_v8_invalidate_own_fault') > 0, 'reclaim invalidated a page of the migrating range');
  assert.ok(r === 0 || r === -EAGAIN, `MIGRATE_TO: ${r}`);
  assert.is(p.check32(b, 32 * PAGE_SIZE, 21), -1, 'the pages reclaimed or moved read back intact');
  assert.ok(p.read(start, 32 * PAGE_SIZE).every((x) => x === 0));
  assert.is(filler.check32(fa, n * PAGE_SIZE, 5), -1);
});

t.run();
