import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RW, ANON } from '../helpers.js';
import { boot_swap, reclaim_all, pte_of, check_invariants, MiB } from './swap_helpers.js';
import { MM_ANONPAGES, MM_SWAPENTS } from '../../include/linux/mm_types.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { pte_present, pte_write, pte_dirty, pte_pfn } from '../../include/linux/pgtable.js';
import {
  pte_kind, pte_to_swp_entry, pte_swp_exclusive, swp_type, swp_offset, swp_entry, MAX_SWAPFILES,
} from '../../include/linux/swapops.js';
import { SWAP_HAS_CACHE } from '../../include/linux/swap.js';
import { PageSwapCache, PageAnonExclusive, PageLRU } from '../../include/linux/page-flags.js';
import { MADV_PAGEOUT } from '../../include/uapi/asm-generic/mman.js';
import { EINVAL, EPERM, ENOENT } from '../../include/uapi/asm-generic/errno.js';
import { get_counter } from '../../lib/sim/trace.js';
import { nr_free_pages, totalram_pages, pfn_to_page, kmap_local_page, get_page, put_page } from '../../mm/page_alloc.js';
import {
  swapon, get_nr_swap_pages, total_swap_pages, swap_slot_bytes, swapMapOf, swap_duplicate, __swap_count,
  POISON_FREE,
} from '../../mm/swapfile.js';
import { total_swapcache_pages } from '../../mm/swap_state.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { kmemleak_exempt } from '../leakcheck/uvu.js';
import { folio_add_lru, folio_batch_move_lru, lru_add, lruvec_add_folio_tail } from '../../mm/swap.js';
import { folio_batch_init, folio_batch_add } from '../../include/linux/pagevec.js';
import { mem_cgroup_create, mem_cgroup_attach_task, mem_cgroup_charge, mem_cgroup_lruvec, root_mem_cgroup, folio_lruvec } from '../../mm/memcontrol.js';
import { alloc_page } from '../../mm/page_alloc.js';
import { GFP_HIGHUSER_MOVABLE } from '../../include/linux/gfp.js';
import { NR_LRU_LISTS, type lruvec } from '../../include/linux/mmzone.js';
import { SetPageActive, SetPageSwapBacked } from '../../include/linux/page-flags.js';
import { spin_lock, spin_unlock } from '../../lib/locking/spinlock.js';
import { boot } from '../helpers.js';
import type { page } from '../../include/linux/mm_types.js';

const t = suite('mm/swap');
const P = PAGE_SIZE;

function pageout(p: Process, addr: number, len: number): void {
  assert.is(p.madvise(addr, len, MADV_PAGEOUT), 0);
}

t('filling anonymous memory to twice the RAM size swaps it out and every byte reads back', () => {
  const p = boot_swap(16 * MiB, 64 * MiB);
  const ram = totalram_pages();
  const len = 32 * MiB, pages = len / P;
  const a = p.mmap(0, len, RW, ANON);
  p.fill32(a, len, 0x1000);
  assert.ok(get_counter('pswpout') >= pages - ram, `pswpout ${get_counter('pswpout')}`);
  assert.is(p.mm.rss_stat[MM_ANONPAGES] + p.mm.rss_stat[MM_SWAPENTS], pages);
  assert.ok(p.mm.rss_stat[MM_SWAPENTS] >= pages - ram);
  check_invariants([p.mm]);
  assert.is(p.check32(a, len, 0x1000), -1, 'every word intact after swap-in');
  assert.ok(get_counter('pswpin') > 0 && get_counter('pgmajfault') === get_counter('pswpin'));
  assert.is(p.mm.rss_stat[MM_ANONPAGES] + p.mm.rss_stat[MM_SWAPENTS], pages);
  check_invariants([p.mm]);
  p.exit(0);
  assert.is(nr_free_pages(), ram - 1, 'every frame but the zero page is free again');
  assert.is(get_nr_swap_pages(), total_swap_pages(), 'every slot is free again');
  assert.is(total_swapcache_pages(), 0);
});

t('a paged-out page is an exclusive swap entry whose slot holds its bytes; a read maps it back', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 4 * P, RW, ANON);
  p.fill32(a, 4 * P, 7);
  const pfn = pte_pfn(pte_of(p.mm, a + P));
  const before = kmap_local_page(pfn_to_page(pfn)).slice();
  pageout(p, a + P, P);
  const pte = pte_of(p.mm, a + P);
  const k = pte_kind(pte);
  assert.is(k.kind, 'swap');
  const e = pte_to_swp_entry(pte);
  assert.is(swp_type(e), 0);
  assert.ok(swp_offset(e) >= 1, 'slot 0 is the swap header');
  assert.ok(pte_swp_exclusive(pte), 'the page was exclusive: the swap PTE says so');
  assert.equal(swap_slot_bytes(e), before, 'the slot holds the page bytes');
  assert.is(swapMapOf(e), 1, 'one PTE names the slot, no folio cached');
  assert.is(p.mm.rss_stat[MM_ANONPAGES], 3);
  assert.is(p.mm.rss_stat[MM_SWAPENTS], 1);
  assert.is(get_nr_swap_pages(), total_swap_pages() - 1);
  check_invariants([p.mm]);

  assert.is(p.read32(a + P), 7 + 1024, 'swap-in by a read');
  const back = pte_of(p.mm, a + P);
  assert.ok(pte_present(back) && !pte_write(back), 'a read maps it read-only');
  const f = pfn_to_page(pte_pfn(back));
  assert.ok(PageSwapCache(f) && PageAnonExclusive(f) && PageLRU(f));
  assert.is(swapMapOf(e), SWAP_HAS_CACHE, 'no PTE names the slot; the cache still does');
  assert.is(p.mm.rss_stat[MM_SWAPENTS], 0);
  p.write32(a + P, 99);
  assert.is(pte_pfn(pte_of(p.mm, a + P)), f.pfn, 'exclusive: the write reuses the page, no copy');
  assert.is(p.check32(a + 2 * P, 2 * P, 7 + 2048), -1);
  check_invariants([p.mm]);
});

t('a write fault on an exclusive swap entry maps it writable and frees the slot', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 2 * P, RW, ANON);
  p.fill32(a, 2 * P, 1);
  pageout(p, a, 2 * P);
  assert.is(get_nr_swap_pages(), total_swap_pages() - 2);
  const e = pte_to_swp_entry(pte_of(p.mm, a));
  p.write32(a + 8, 0xabcd);
  const pte = pte_of(p.mm, a);
  assert.ok(pte_present(pte) && pte_write(pte) && pte_dirty(pte));
  assert.not.ok(PageSwapCache(pfn_to_page(pte_pfn(pte))), 'should_try_to_free_swap dropped the cache');
  assert.is(__swap_count(e), 0);
  assert.is(get_nr_swap_pages(), total_swap_pages() - 1, 'the slot is free (and poisoned)');
  assert.ok(swap_slot_bytes(e).every((b) => b === POISON_FREE));
  assert.is(p.read32(a), 1);
  assert.is(p.read32(a + 8), 0xabcd);
  assert.is(p.read32(a + 12), 4);
  check_invariants([p.mm]);
});

t('fork shares swap entries: both read the data from one folio, a write copies (COW after swap-in)', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const n = 8, a = p.mmap(0, n * P, RW, ANON);
  p.fill32(a, n * P, 100);
  pageout(p, a, n * P);
  const c = p.fork();
  for (let i = 0; i < n; i++) {
    const pp = pte_of(p.mm, a + i * P), cp = pte_of(c.mm, a + i * P);
    assert.is(pte_kind(cp).kind, 'swap');
    assert.is(pp, cp, 'the child names the same slot');
    assert.not.ok(pte_swp_exclusive(pp), 'fork cleared the exclusive bit in the parent');
    assert.is(__swap_count(pte_to_swp_entry(pp)), 2);
  }
  assert.is(c.mm.rss_stat[MM_SWAPENTS], n);
  check_invariants([p.mm, c.mm]);

  assert.is(c.check32(a, n * P, 100), -1, 'the child swaps the pages in');
  assert.is(p.check32(a, n * P, 100), -1, 'the parent finds them in the swap cache');
  assert.is(get_counter('pswpin'), n, 'one read per slot');
  const shared = pte_pfn(pte_of(p.mm, a));
  assert.is(pte_pfn(pte_of(c.mm, a)), shared, 'one folio mapped by both');
  assert.not.ok(pte_write(pte_of(p.mm, a)) || pte_write(pte_of(c.mm, a)), 'shared: read-only in both');
  check_invariants([p.mm, c.mm]);

  c.write32(a, 0xc0ffee);
  assert.ok(pte_pfn(pte_of(c.mm, a)) !== shared, 'the child got a copy');
  assert.is(p.read32(a), 100, 'the parent still sees its data');
  p.write32(a + 4, 0xbeef);
  assert.is(pte_pfn(pte_of(p.mm, a)), shared, 'now the only mapper: the parent reuses the folio');
  assert.not.ok(PageSwapCache(pfn_to_page(shared)), 'reuse dropped the swap cache');
  assert.is(c.read32(a + 4), 101);
  assert.is(c.read32(a), 0xc0ffee);
  check_invariants([p.mm, c.mm]);
  c.exit(0);
  p.exit(0);
  assert.is(get_nr_swap_pages(), total_swap_pages());
  assert.is(nr_free_pages(), totalram_pages() - 1);
});

t('reclaim of a page shared by fork writes one slot that both PTEs name', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 4 * P, RW, ANON);
  p.fill32(a, 4 * P, 5);
  const c = p.fork();
  assert.ok(reclaim_all() >= 4);
  for (let i = 0; i < 4; i++) {
    const e = pte_to_swp_entry(pte_of(p.mm, a + i * P));
    assert.is(pte_of(c.mm, a + i * P), pte_of(p.mm, a + i * P));
    assert.is(__swap_count(e), 2);
  }
  assert.is(get_counter('pswpout'), 4);
  check_invariants([p.mm, c.mm]);
  assert.is(c.check32(a, 4 * P, 5), -1);
  assert.is(p.check32(a, 4 * P, 5), -1);
});

/*
 * Fuzz seed 5163: reclaim wrote a page out and unmapped it, but a reference
 * held elsewhere (a migration, a device) kept the folio in the swap cache.
 * Every anonymous folio is uptodate in Linux, so the next fault maps the
 * cached folio; the model left new anon folios !uptodate and gave SIGBUS
 * (a dmirror ioctl's copy_to_user returned -EFAULT). Both ways a process
 * gets a fresh anonymous page are covered: first touch and a COW copy.
 */
t('a page reclaim unmapped but could not free stays in the swap cache and the next fault maps it, no SIGBUS', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 2 * P, RW, ANON);
  const held_by_someone_during_pageout = (proc: Process, addr: number, want: number) => {
    const f = pfn_to_page(pte_pfn(pte_of(proc.mm, addr)));
    get_page(f);                                 /* the reference that makes reclaim keep the folio */
    assert.is(proc.madvise(addr, P, MADV_PAGEOUT), 0);
    assert.is(pte_kind(pte_of(proc.mm, addr)).kind, 'swap', 'unmapped and written out');
    assert.ok(PageSwapCache(f) && f._mapcount === -1, 'still in the swap cache, mapped by nobody');
    put_page(f);
    const pswpin = get_counter('pswpin');
    assert.is(proc.read32(addr), want, 'the fault maps the cached folio');
    assert.is(pte_pfn(pte_of(proc.mm, addr)), f.pfn);
    assert.is(get_counter('pswpin'), pswpin, 'a swap-cache hit: no read');
  };
  p.fill32(a, 2 * P, 40);                        /* do_anonymous_page */
  held_by_someone_during_pageout(p, a, 40);
  const c = p.fork();
  c.write32(a + P, 0x5163);                      /* wp_page_copy: the child's own copy */
  held_by_someone_during_pageout(c, a + P, 0x5163);
  assert.is(p.check32(a, 2 * P, 40), -1);
  assert.is(c.read32(a), 40);
  check_invariants([p.mm, c.mm]);
  c.exit(0);
  p.exit(0);
  assert.is(get_nr_swap_pages(), total_swap_pages());
});

t('munmap and exit free the slots of swapped-out pages', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const a = p.mmap(0, 8 * P, RW, ANON);
  p.fill32(a, 8 * P, 0);
  pageout(p, a, 8 * P);
  p.read32(a);                                   /* one back in the swap cache */
  assert.is(get_nr_swap_pages(), total_swap_pages() - 8);
  assert.is(p.munmap(a, 4 * P), 0);
  assert.is(get_nr_swap_pages(), total_swap_pages() - 4);
  assert.is(total_swapcache_pages(), 0, 'the cached folio went with its last mapping');
  assert.is(p.mm.rss_stat[MM_SWAPENTS], 4);
  check_invariants([p.mm]);
  p.exit(0);
  assert.is(get_nr_swap_pages(), total_swap_pages());
});

t('when swap is full the rest stays in memory, activated, with its data', () => {
  const p = boot_swap(16 * MiB, 8 * P);        /* 7 usable slots */
  assert.is(total_swap_pages(), 7);
  const a = p.mmap(0, 16 * P, RW, ANON);
  p.fill32(a, 16 * P, 3);
  pageout(p, a, 16 * P);
  assert.is(p.mm.rss_stat[MM_SWAPENTS], 7);
  assert.is(p.mm.rss_stat[MM_ANONPAGES], 9);
  assert.is(get_nr_swap_pages(), 0);
  assert.ok(get_counter('swap_alloc_fail') >= 9);
  check_invariants([p.mm]);
  assert.is(p.check32(a, 16 * P, 3), -1);
});

t('swapon and swap counts: errno as Linux, priorities, count continuation past SWAP_MAP_MAX', () => {
  kmemleak_exempt('it raises swap counts by hand (swap_duplicate) that no page table holds');
  boot_swap(16 * MiB, 0);
  assert.is(swapon(1), -EINVAL);
  assert.is(swapon(0), -EINVAL);
  const lo = swapon(4, 1), hi = swapon(4, 10);
  assert.equal([lo, hi], [0, 1]);
  for (let i = 2; i < MAX_SWAPFILES; i++) assert.is(swapon(2), i);
  assert.is(swapon(2), -EPERM);
  assert.is(swap_duplicate(swp_entry(hi, 1)), -ENOENT, 'an unused slot');
  assert.is(swap_duplicate(swp_entry(hi, 99)), -EINVAL, 'past the device');
  const p = boot_swap(16 * MiB, 0);
  swapon(4, 1);
  swapon(4, 10);
  const a = p.mmap(0, P, RW, ANON);
  p.write32(a, 1);
  pageout(p, a, P);
  const e = pte_to_swp_entry(pte_of(p.mm, a));
  assert.is(swp_type(e), 1, 'the higher priority device is used first');
  for (let i = 0; i < 100; i++) assert.is(swap_duplicate(e), 0);
  assert.is(__swap_count(e), 101);
  assert.ok(swapMapOf(e) & 0x80, 'COUNT_CONTINUED');
});

/* every list of @lv: the pfns head to tail, checked against the tail links, and the list's size */
function lru_dump(lv: lruvec): string[] {
  const out: string[] = [];
  for (let lru = 0; lru < NR_LRU_LISTS; lru++) {
    const fwd: number[] = [], back: number[] = [];
    for (let f = lv.lists[lru].head; f !== null; f = f.lru_next) fwd.push(f.pfn);
    for (let f = lv.lists[lru].tail; f !== null; f = f.lru_prev) back.push(f.pfn);
    assert.equal(back.reverse(), fwd, `list ${lru}: prev links mirror next links`);
    out.push(`${lru}: [${fwd.join(' ')}] nr ${lv.nr_pages[lru]}`);
  }
  return out;
}

/* count the acquisitions of @lock from now on (a setter on its owner field) */
function count_takes(lock: { owner: unknown }): () => number {
  let owner = lock.owner, n = 0;
  Object.defineProperty(lock, 'owner', {
    get: () => owner,
    set: (v) => { if (v !== null) n++; owner = v; },
    configurable: true,
  });
  return () => n;
}

t('folio_batch_move_lru(fb, lru_add) puts folios on the same lists, in the same order, as folio_add_lru one by one; one lock hold per lruvec run', () => {
  /* 12 folios on a fresh machine: runs of the root memcg and of A, one active, two file (not swap-backed) */
  const run = (batched: boolean) => {
    const p = boot();
    const A = mem_cgroup_create('A');
    const q = p.fork();
    mem_cgroup_attach_task(A, q.task);
    const memcg_of = [0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0];
    const fs: page[] = [];
    for (let k = 0; k < memcg_of.length; k++) {
      const f = alloc_page(GFP_HIGHUSER_MOVABLE)!;
      assert.is(mem_cgroup_charge(f, memcg_of[k] ? q.mm : p.mm, GFP_HIGHUSER_MOVABLE), 0);
      if (k !== 4 && k !== 10) SetPageSwapBacked(f);
      if (k === 7) SetPageActive(f);
      fs.push(f);
    }
    const root_lv = mem_cgroup_lruvec(root_mem_cgroup()), a_lv = mem_cgroup_lruvec(A);
    assert.ok(root_lv !== a_lv && folio_lruvec(fs[3]) === a_lv && folio_lruvec(fs[0]) === root_lv);
    lruvec_add_folio_tail(root_lv, fs[11]);             /* lists not empty to begin with: a folio added at the tail */
    const takes_root = count_takes(root_lv.lru_lock), takes_a = count_takes(a_lv.lru_lock);
    if (batched) {
      const fb = folio_batch_init();
      for (let k = 0; k < 11; k++) folio_batch_add(fb, fs[k]);
      folio_batch_move_lru(fb, lru_add);
      assert.is(fb.nr, 0, 'the batch is empty afterwards');
    } else {
      for (let k = 0; k < 11; k++) folio_add_lru(fs[k]);
    }
    const out = { lists: [lru_dump(root_lv), lru_dump(a_lv)], flags: fs.map((f) => f.flags), takes: [takes_root(), takes_a()],
      held: root_lv.lru_lock.owner !== null || a_lv.lru_lock.owner !== null };
    for (const f of fs) put_page(f);                 /* off the LRU, uncharged and freed */
    return out;
  };
  const one = run(false), batch = run(true);
  assert.equal(batch.lists, one.lists, 'same lists, same order, same sizes');
  assert.equal(batch.flags, one.flags, 'same flags (PG_lru set on each)');
  assert.equal(one.takes, [6, 5], 'one lock hold per folio');
  assert.equal(batch.takes, [3, 2], 'one hold per run of folios of one lruvec: root 0-2, A 3-4, root 5, A 6-8, root 9-10');
  assert.ok(!batch.held && !one.held, 'no lru_lock left held');
  assert.ok(one.lists[0].some((l) => /^0: \[(\d+ ){5}\d+\] nr 6$/.test(l)), 'the root memcg\'s inactive anon list: folios 0-2, 5, 9 and the tail one');
});

t('folio_batch_move_lru(fb, lru_add) of a folio already on the LRU is a BUG, as folio_add_lru()', () => {
  boot();
  const f = alloc_page(GFP_HIGHUSER_MOVABLE)!;
  SetPageSwapBacked(f);
  folio_add_lru(f);
  const fb = folio_batch_init();
  folio_batch_add(fb, f);
  assert.throws(() => folio_batch_move_lru(fb, lru_add), /already on the LRU/);
  const lv = folio_lruvec(f);
  assert.is(lv.lru_lock.owner, null, 'the BUG left no lock held');
  spin_lock(lv.lru_lock);
  spin_unlock(lv.lru_lock);
  put_page(f);
});

t.run();
