import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, recordNotifier, starts } from '../helpers.js';
import { boot_swap, reclaim_all, pte_of, check_invariants, pagemap, proc_text, smaps_field, sleeping_subscriber, MiB } from './swap_helpers.js';
import { runAs, Process } from '../../tools/include/nolibc/nolibc.js';
import { MM_ANONPAGES, MM_SWAPENTS, type page } from '../../include/linux/mm_types.js';
import { PAGE_SIZE, FOLL_WRITE } from '../../include/linux/mm.js';
import { pte_present, pte_pfn, pte_young } from '../../include/linux/pgtable.js';
import { pte_kind } from '../../include/linux/swapops.js';
import { WMARK_MIN, WMARK_LOW, WMARK_HIGH, LRU_INACTIVE_ANON } from '../../include/linux/mmzone.js';
import { GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT } from '../../include/linux/gfp.js';
import { MADV_PAGEOUT, MADV_HUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import type { mmu_notifier } from '../../include/linux/mmu_notifier.js';
import { Scheduler, sched_yield, runSync, KernelBugError, type Sleepable } from '../../lib/sim/sched.js';
import { spinlock_t, spin_lock, spin_unlock } from '../../lib/locking/spinlock.js';
import { lockdep_off, lockdep_on } from '../../lib/locking/lockdep.js';
import { get_counter } from '../../lib/sim/trace.js';
import { mmu_notifier_register } from '../../mm/mmu_notifier.js';
import { alloc_page, alloc_page_sleepable, nr_free_pages, wmark_pages, pfn_to_page, put_page } from '../../mm/page_alloc.js';
import { pin_user_pages_unlocked, unpin_user_pages } from '../../mm/gup.js';
import { kswapd_run, kswapd_stop, shrink_all_memory } from '../../mm/vmscan.js';
import { deferredSplitCount } from '../../mm/huge_memory_split.js';
import { nr_anon_thps } from '../../mm/huge_memory.js';
import { folio_referenced } from '../../mm/rmap_reclaim.js';
import { root_mem_cgroup } from '../../mm/memcontrol.js';
import { get_nr_swap_pages, total_swap_pages } from '../../mm/swapfile.js';
import { kmemleak_exempt } from '../leakcheck/uvu.js';

const t = suite('mm/vmscan');
const P = PAGE_SIZE;
const hex = (n: number) => n.toString(16);

t('reclaim sends MMU_NOTIFY_CLEAR over exactly each page it unmaps, before the PTE changes', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 8 * P, RW, ANON);
  p.fill32(a, 8 * P, 1);
  const seen = recordNotifier(p);
  const at_start: string[] = [], at_end: string[] = [];
  const sub: mmu_notifier = {
    mm: null,
    ops: {
      *invalidate_range_start(_s, r) { at_start.push(pte_kind(pte_of(p.mm, r.start)).kind); return 0; },
      *invalidate_range_end(_s, r) { at_end.push(pte_kind(pte_of(p.mm, r.start)).kind); },
    },
  };
  runAs(p.task, mmu_notifier_register(sub, p.mm));
  assert.is(p.madvise(a + 2 * P, 3 * P, MADV_PAGEOUT), 0);
  assert.equal(starts(seen), [2, 3, 4].map((i) => `CLEAR ${hex(a + i * P)}-${hex(a + (i + 1) * P)}`));
  assert.equal(at_start, ['present', 'present', 'present'], 'secondary MMUs hear before the CPU PTE changes');
  assert.equal(at_end, ['swap', 'swap', 'swap']);
  seen.length = 0;
  assert.ok(reclaim_all() >= 5);
  const got = starts(seen).sort();
  const want = [0, 1, 5, 6, 7].map((i) => `CLEAR ${hex(a + i * P)}-${hex(a + (i + 1) * P)}`).sort();
  assert.equal(got, want, 'global reclaim: one CLEAR per remaining page, nothing else');
  assert.is(p.check32(a, 8 * P, 1), -1);
});

/*
 * Direct reclaim from a fault runs in a context that may sleep (Linux's
 * try_to_unmap -> mmu_notifier_invalidate_range_start with a blockable
 * range): a subscriber that must sleep to invalidate is waited for and
 * its pages are reclaimed. Before the sleepable allocator, direct reclaim
 * sent non-blockable ranges, the subscriber refused (unmap_notifier_busy)
 * and every one of its pages stayed in RAM.
 */
t('direct reclaim from a fault sends blockable ranges: a subscriber that sleeps is waited for and its pages are reclaimed', () => {
  const p = boot_swap(8 * MiB, 32 * MiB);
  const n = 64, a = p.mmap(0, n * P, RW, ANON);
  p.fill32(a, n * P, 9);
  const sub = sleeping_subscriber(p, a, n * P);
  const b = p.mmap(0, 16 * MiB, RW, ANON);
  p.fill32(b, 16 * MiB, 77);                      /* twice the RAM: direct reclaim on the faults */
  assert.ok(get_counter('allocstall') > 0);
  assert.ok(get_counter('pgsteal_direct') > 0);
  assert.is(sub.refused, 0, 'no non-blockable range reached the subscriber');
  assert.is(get_counter('unmap_notifier_busy'), 0);
  assert.ok(sub.blockable > 0 && sub.slept === sub.blockable, 'every invalidation was blockable and the subscriber slept in each');
  let swapped = 0;
  for (let i = 0; i < n; i++) if (pte_kind(pte_of(p.mm, a + i * P)).kind === 'swap') swapped++;
  assert.ok(swapped > 0, 'pages of the mirrored range were reclaimed');
  assert.is(p.check32(b, 16 * MiB, 77), -1);
  assert.is(p.check32(a, n * P, 9), -1, 'every byte of the mirrored range reads back');
  check_invariants([p.mm]);
});

/*
 * might_sleep() for reclaim: in Linux every direct reclaim may sleep and
 * sends blockable ranges, so a blocking gfp from a caller that cannot
 * sleep is a BUG with lockdep on (tests), never a silent non-blockable
 * reclaim; GFP_NOWAIT/GFP_ATOMIC never reclaim; in atomic context a
 * blocking gfp BUGs at once, whether or not memory is short.
 */
t('a caller that cannot sleep: a blocking gfp that needs direct reclaim is a might_sleep BUG (lockdep on); GFP_NOWAIT fails without reclaim; a spinlock BUGs at once', () => {
  kmemleak_exempt('the BUG leaves the kernel pages taken so far allocated');
  const p = boot_swap(4 * MiB, 32 * MiB);
  const n = 64, a = p.mmap(0, n * P, RW, ANON);
  p.fill32(a, n * P, 5);
  const sub = sleeping_subscriber(p, a, n * P, 0);
  const lock = new spinlock_t('test_lock');
  spin_lock(lock);
  assert.throws(() => alloc_page(GFP_KERNEL),
    (e: unknown) => e instanceof KernelBugError && /sleeping function called from invalid context/.test(e.message),
    'GFP_KERNEL under a spinlock: BUG with plenty of free memory');
  const nowait = alloc_page(GFP_NOWAIT);
  assert.ok(nowait !== null, 'GFP_NOWAIT under a spinlock is fine');
  spin_unlock(lock);
  put_page(nowait!);
  const held: page[] = [];
  for (;;) {                                     /* GFP_NOWAIT: the free pages, then null, never reclaim */
    const f = alloc_page(GFP_NOWAIT);
    if (f === null) break;
    held.push(f);
  }
  assert.is(get_counter('allocstall'), 0);
  assert.ok(held.length > 0);
  assert.throws(() => alloc_page(GFP_KERNEL),
    (e: unknown) => e instanceof KernelBugError && /direct reclaim for a blocking gfp .* in a caller that cannot sleep/.test(e.message));
  assert.is(get_counter('reclaim_nosleep'), 1);
  assert.equal([sub.blockable, sub.refused], [0, 0], 'no range of either kind was sent');
  for (const f of held) put_page(f);
  assert.is(p.check32(a, n * P, 5), -1);
});

t('with lockdep off (benchmarks), the plain fallback reclaims inline with non-blockable ranges: the sleeping subscriber keeps its page', () => {
  const p = boot_swap(4 * MiB, 32 * MiB);
  lockdep_off();                                 /* the next boot turns it back on */
  const n = 64, a = p.mmap(0, n * P, RW, ANON);
  p.fill32(a, n * P, 5);
  const sub = sleeping_subscriber(p, a, n * P);
  const q = Process.spawn('filler');               /* memory reclaim can take, so nobody is OOM-killed */
  const qa = q.mmap(0, 512 * P, RW, ANON);
  q.fill32(qa, 512 * P, 6);
  const held: page[] = [];
  while (sub.refused === 0 && held.length < 2048) {     /* kernel pages until reclaim reaches the mirrored range */
    const f = alloc_page(GFP_KERNEL);
    if (f === null) break;
    held.push(f);
  }
  lockdep_on();
  assert.ok(get_counter('allocstall') > 0 && get_counter('reclaim_nosleep') > 0, 'the plain allocator reclaimed directly');
  assert.ok(sub.refused > 0 && get_counter('unmap_notifier_busy') === sub.refused, 'the subscriber refused the non-blockable ranges');
  assert.is(get_counter('oom_kill'), 0);
  assert.is(sub.blockable, 0);
  for (let i = 0; i < n; i++) assert.ok(pte_present(pte_of(p.mm, a + i * P)), `page ${i} stayed mapped`);
  for (const f of held) put_page(f);
  assert.is(p.check32(a, n * P, 5), -1);
  assert.is(q.check32(qa, 512 * P, 6), -1);
  check_invariants([p.mm, q.mm]);
});

t('accessed bits age the LRU: a secondary MMU reporting young keeps a page, idle ones are swapped', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 4 * P, RW, ANON);
  p.fill32(a, 4 * P, 2);
  let young = true;
  const sub: mmu_notifier = {
    mm: null,
    ops: { clear_young: (_s, _mm, start) => (young && start === a ? 1 : 0) },
  };
  runAs(p.task, mmu_notifier_register(sub, p.mm));
  reclaim_all();
  assert.ok(pte_present(pte_of(p.mm, a)), 'the device keeps using page 0');
  assert.ok(get_counter('pgactivate') > 0, 'it was activated on its second young look');
  for (let i = 1; i < 4; i++) assert.is(pte_kind(pte_of(p.mm, a + i * P)).kind, 'swap');
  young = false;
  reclaim_all();
  assert.is(pte_kind(pte_of(p.mm, a)).kind, 'swap', 'once idle, it goes too');
  assert.is(p.check32(a, 4 * P, 2), -1);
});

t('folio_referenced() tests and clears the accessed bit the MMU sets on each access', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, P, RW, ANON);
  p.write32(a, 1);
  const f = pfn_to_page(pte_pfn(pte_of(p.mm, a)));
  assert.ok(pte_young(pte_of(p.mm, a)), 'the fault maps it young');
  assert.is(folio_referenced(f).referenced, 1);
  assert.not.ok(pte_young(pte_of(p.mm, a)), 'cleared');
  assert.is(folio_referenced(f).referenced, 0, 'no access since');
  p.read32(a);
  assert.is(folio_referenced(f).referenced, 1, 'the MMU set it again');
  const c = p.fork();
  p.read32(a);
  c.read32(a);
  assert.is(folio_referenced(f).referenced, 2, 'one per mapping');
  assert.ok(folio_referenced(f).vm_flags & 2, 'VM_WRITE of the mapping VMAs');
});

t('a THP is split by reclaim and swapped out page by page; MADV_PAGEOUT of a PMD-mapped THP too', () => {
  const p = boot({ ram_bytes: 16 * MiB, swap_bytes: 16 * MiB, transparent_hugepage: 'always' });
  const a0 = p.mmap(0, 6 * MiB, RW, ANON);
  const a = Math.ceil(a0 / (2 * MiB)) * 2 * MiB, b = a + 2 * MiB;
  p.fill32(a, 4 * MiB, 0x33);
  assert.is(get_counter('thp_fault_alloc'), 2, 'two PMD-mapped THPs');
  assert.is(root_mem_cgroup().lruvec.nr_pages[LRU_INACTIVE_ANON], 1024, 'on the anon list, 512 pages each');
  check_invariants([p.mm]);
  assert.is(smaps_field(proc_text(p, '/proc/self/smaps_rollup'), 'AnonHugePages'), 4096);
  assert.is(p.madvise(a, 2 * MiB, MADV_PAGEOUT), 0);
  assert.is(p.mm.rss_stat[MM_SWAPENTS], 512, 'the first THP: split, every page swapped');
  assert.equal(pagemap(p, a, 1)[0] >> 62n, 1n, 'PM_SWAP');
  assert.ok(reclaim_all() >= 512);
  assert.is(p.mm.rss_stat[MM_SWAPENTS], 1024);
  assert.is(get_counter('thp_split_for_reclaim'), 2);
  check_invariants([p.mm]);
  assert.is(p.check32(a, 4 * MiB, 0x33), -1);
  assert.is(p.check32(b, P, 0x33 + 2 * MiB / 4), -1);
  p.exit(0);
  assert.equal([get_nr_swap_pages(), root_mem_cgroup().memory.usage], [total_swap_pages(), 0]);
});

t('a DMA-pinned page is not swapped out', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 2 * P, RW, ANON);
  p.fill32(a, 2 * P, 4);
  const pages: page[] = [];
  assert.is(runAs(p.task, pin_user_pages_unlocked(p.mm, a, 1, FOLL_WRITE, pages)), 1);
  assert.is(p.madvise(a, 2 * P, MADV_PAGEOUT), 0);
  assert.ok(pte_present(pte_of(p.mm, a)), 'pinned: stays');
  assert.is(pte_kind(pte_of(p.mm, a + P)).kind, 'swap');
  unpin_user_pages(pages);
  assert.is(p.madvise(a, P, MADV_PAGEOUT), 0);
  assert.is(pte_kind(pte_of(p.mm, a)).kind, 'swap');
  assert.is(p.check32(a, 2 * P, 4), -1);
});

t('watermarks: GFP_KERNEL stops at min without reclaimable memory, GFP_ATOMIC may take half of it', () => {
  kmemleak_exempt('it allocates RAM down to the watermarks by hand and keeps it');
  boot_swap(16 * MiB, 0, 512);
  const [min, low, high] = [wmark_pages(WMARK_MIN), wmark_pages(WMARK_LOW), wmark_pages(WMARK_HIGH)];
  assert.equal([min, low, high], [128, 160, 192], 'min = 512 kB; low/high + max(min/4, 0.1% of RAM)');
  while (runSync(alloc_page_sleepable(GFP_KERNEL)) !== null);   /* may reclaim: the sleepable entry */
  assert.is(nr_free_pages(), min);
  while (alloc_page(GFP_ATOMIC) !== null);
  assert.is(nr_free_pages(), min - min / 2);
});

t('direct reclaim keeps free memory at the min watermark while a process fills twice the RAM', () => {
  const p = boot_swap(16 * MiB, 64 * MiB, 512);
  const a = p.mmap(0, 32 * MiB, RW, ANON);
  p.fill32(a, 32 * MiB, 11);
  assert.ok(get_counter('allocstall') > 0 && get_counter('pgsteal_direct') > 0);
  assert.is(get_counter('pgsteal_kswapd'), 0, 'no kswapd thread was started');
  assert.ok(nr_free_pages() >= wmark_pages(WMARK_MIN));
  assert.is(p.check32(a, 32 * MiB, 11), -1);
  check_invariants([p.mm]);
});

/* The user thread: fill, yielding now and then so kswapd can run, then check every word. */
function* filler(p: Process, len: number, every: number, out: { a: number; bad: number }): Sleepable {
  const a = yield* p.sys.mmap(0, len, RW, ANON);
  out.a = a;
  for (let i = 0; i < len / 4; i += 1024) {
    yield* p.sys.store(a + i * 4, 4, i);
    if ((i / 1024) % every === 0) yield* sched_yield();
  }
  out.bad = -1;
  for (let i = 0; i < len / 4; i += 1024) {
    if ((yield* p.sys.load(a + i * 4, 4)) !== i) { out.bad = i; break; }
    if ((i / 1024) % every === 0) yield* sched_yield();
  }
  kswapd_stop();
}

t('kswapd, a kernel thread under the Scheduler, reclaims to the high watermark so faults never stall', () => {
  const p = boot_swap(16 * MiB, 64 * MiB, 512);
  const s = new Scheduler();
  const k = kswapd_run();
  const out = { a: 0, bad: 0 };
  s.spawn('filler', () => filler(p, 32 * MiB, 8, out), 'user', p.task);
  s.run();
  assert.is(out.bad, -1, 'every page reads back');
  assert.is(k.state, 'done');
  assert.ok((k.result as number) > 0, 'kswapd ran balance_pgdat');
  assert.ok(get_counter('kswapd_wakeup') > 0 && get_counter('pgsteal_kswapd') > 0);
  assert.is(get_counter('allocstall'), 0, 'the filler never reclaimed directly');
  assert.ok(p.mm.rss_stat[MM_SWAPENTS] > 0);
  assert.is(p.mm.rss_stat[MM_ANONPAGES] + p.mm.rss_stat[MM_SWAPENTS], 8192);
  check_invariants([p.mm]);
});

t('kswapd and direct reclaim interleaved at random keep every byte (seeds 1..4)', () => {
  for (let seed = 1; seed <= 4; seed++) {
    const p = boot_swap(8 * MiB, 32 * MiB, 256);
    const s = new Scheduler({ mode: 'random', seed });
    kswapd_run();
    const out = { a: 0, bad: 0 };
    s.spawn('filler', () => filler(p, 16 * MiB, 64, out), 'user', p.task);
    s.run();
    assert.is(out.bad, -1, `seed ${seed}`);
    assert.ok(get_counter('pgsteal_kswapd') > 0, `seed ${seed}: kswapd reclaimed`);
    check_invariants([p.mm]);
  }
});

t('reclaim runs the deferred-split shrinker: a partly unmapped THP is split and its unmapped part freed', () => {
  const p = boot_swap(64 * MiB, 16 * MiB);
  const len = 2 * MiB;
  const raw = p.mmap(0, 2 * len, RW, ANON);
  const a = Math.ceil(raw / len) * len;
  p.madvise(a, len, MADV_HUGEPAGE);
  p.fill32(a, len, 9);
  assert.is(nr_anon_thps(), 512, 'NR_ANON_THPS counts pages');
  assert.is(p.munmap(a + len / 2, len / 2), 0);
  assert.is(deferredSplitCount(), 1, 'the half-unmapped THP waits on the deferred split queue');
  const free = nr_free_pages();
  runAs(p.task, shrink_all_memory(0));
  assert.is(deferredSplitCount(), 0);
  assert.ok(nr_free_pages() >= free + 256, `the unmapped half came back (${nr_free_pages() - free} pages)`);
  assert.is(p.check32(a, len / 2, 9), -1, 'the mapped half keeps its data');
});

t.run();
