/*
 * test/mm/device_exclusive.test.ts - make_device_exclusive()
 * (mm/device_exclusive.ts) and every way the CPU takes the page back:
 * fault, mprotect, fork, munmap.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import { runAs, type Process } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE, get_mm_counter, page_mapcount } from '../../include/linux/mm.js';
import { MM_ANONPAGES, type page } from '../../include/linux/mm_types.js';
import { PROT_READ, MAP_SHARED, MAP_ANONYMOUS, MAP_HUGETLB } from '../../include/uapi/asm-generic/mman.js';
import { EFAULT, EOPNOTSUPP, EBUSY } from '../../include/uapi/asm-generic/errno.js';
import { pte_present, pte_write, pte_pfn, pte_young, pte_dirty } from '../../include/linux/pgtable.js';
import { pte_to_swp_entry, is_device_exclusive_entry, swp_offset_pfn, non_swap_entry } from '../../include/linux/swapops.js';
import { runSync } from '../../lib/sim/sched.js';
import { shrink_all_memory } from '../../mm/vmscan.js';
import { PageLocked, PageDirty } from '../../include/linux/page-flags.js';
import { SIGSEGV } from '../../include/uapi/asm-generic/signal.js';
import { get_counter } from '../../lib/sim/trace.js';
import { put_page } from '../../mm/page_alloc.js';
import { folio_unlock, folio_trylock } from '../../mm/filemap.js';
import { make_device_exclusive } from '../../mm/device_exclusive.js';
import { UserFault } from '../../mm/fault.js';
import { watch, locked, type seen_inv } from './hmm_devmem.js';

const t = suite('mm/device_exclusive');
let p: Process;
let seen: seen_inv[];
t.before.each(() => { p = boot(); seen = watch(p).seen; });

const OWNER = { name: 'gpu0' };

function exclusive(proc: Process, addr: number): { ret: number; page: page | null } {
  return locked(proc, function* () { return yield* make_device_exclusive(proc.mm, addr, OWNER); });
}
/* what the driver does after programming its page table */
function release(r: { page: page | null }): void { folio_unlock(r.page!); put_page(r.page!); }
const is_excl = (proc: Process, a: number) => {
  const pte = pte_at(proc.mm, a);
  return pte > 0 && !pte_present(pte) && is_device_exclusive_entry(pte_to_swp_entry(pte));
};

t('make_device_exclusive swaps the PTE for an exclusive entry and returns the page locked and referenced', () => {
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.write32(a + 4, 0x1234);
  const orig = pte_pfn(pte_at(p.mm, a));
  const rss = get_mm_counter(p.mm, MM_ANONPAGES);
  seen.length = 0;
  const r = exclusive(p, a + 100);
  assert.is(r.ret, 0);
  assert.is(r.page!.pfn, orig, 'the same page: no migration');
  assert.ok(PageLocked(r.page!));
  assert.is(r.page!._refcount, 2, 'the mapping and the caller');
  assert.is(page_mapcount(r.page!), 1, 'the entry still counts as a mapping');
  assert.ok(is_excl(p, a));
  assert.is(swp_offset_pfn(pte_to_swp_entry(pte_at(p.mm, a))), orig);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), rss);
  assert.equal(seen.map((s) => [s.event, s.start, s.end, s.owner]), [['EXCLUSIVE', a, a + PAGE_SIZE, OWNER]]);
  release(r);
  assert.is(r.page!._refcount, 1);
});

t('a CPU access restores the PTE and tells the device with an owner-less EXCLUSIVE invalidation', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 77);
  const r = exclusive(p, a);
  release(r);
  seen.length = 0;
  assert.is(p.read32(a), 77);
  assert.not.ok(is_excl(p, a));
  const pte = pte_at(p.mm, a);
  assert.ok(pte_present(pte) && pte_write(pte), 'writable again: the page is still exclusive to this mm');
  assert.is(pte_pfn(pte), r.page!.pfn);
  assert.equal(seen.map((s) => [s.event, s.owner]), [['EXCLUSIVE', null]], 'the holder cannot ignore it');
  assert.is(get_counter('fault_device_exclusive_restore'), 1);
  p.write32(a, 78);
  assert.is(pte_pfn(pte_at(p.mm, a)), r.page!.pfn, 'the write needed no copy');
  assert.is(get_counter('fault_cow'), 0);
  assert.is(p.read32(a), 78);
});

t('an untouched or zero-page address is faulted in for write first', () => {
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.read32(a + PAGE_SIZE);                   /* zero page */
  for (const addr of [a, a + PAGE_SIZE]) {
    const r = exclusive(p, addr);
    assert.is(r.ret, 0);
    assert.ok(is_excl(p, addr));
    assert.not.equal(r.page!.pfn, 0, 'a real page, not the zero page');
    release(r);
  }
  assert.is(p.read32(a + PAGE_SIZE), 0);
});

t('errors: no VMA and read-only VMA are -EFAULT (GUP), a shared mapping is -EOPNOTSUPP', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.munmap(a, PAGE_SIZE);
  assert.is(exclusive(p, a).ret, -EFAULT);
  const ro = p.mmap(0, PAGE_SIZE, PROT_READ, ANON);
  assert.is(exclusive(p, ro).ret, -EFAULT);
  const sh = p.mmap(0, PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
  p.write32(sh, 1);
  const r = exclusive(p, sh);
  assert.is(r.ret, -EOPNOTSUPP);
  assert.is(r.page, null);
  assert.ok(pte_present(pte_at(p.mm, sh)), 'untouched');
});

t('mprotect ends exclusive access: the PTE comes back with the new protection', () => {
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 2 * PAGE_SIZE, 3);
  release(exclusive(p, a));
  release(exclusive(p, a + PAGE_SIZE));
  seen.length = 0;
  assert.is(p.mprotect(a, 2 * PAGE_SIZE, PROT_READ), 0);
  assert.equal(seen.map((s) => s.event), ['PROTECTION_VMA']);
  for (const addr of [a, a + PAGE_SIZE]) {
    const pte = pte_at(p.mm, addr);
    assert.ok(pte_present(pte));
    assert.not.ok(pte_write(pte));
  }
  assert.is(get_counter('mprotect_restore_exclusive'), 2);
  assert.is(p.check32(a, 2 * PAGE_SIZE, 3), -1);
  let sig = 0;
  try { p.write32(a, 1); } catch (e) { sig = (e as UserFault).sig; }
  assert.is(sig, SIGSEGV);
  assert.is(p.mprotect(a, 2 * PAGE_SIZE, RW), 0);
  p.write32(a, 9);
  assert.is(p.read32(a), 9);
});

t('fork restores the parent\'s PTE, then shares the page copy-on-write', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 500);
  const r = exclusive(p, a);
  release(r);
  const child = p.fork();
  assert.not.ok(is_excl(p, a));
  assert.is(get_counter('fork_restore_exclusive'), 1);
  assert.is(pte_pfn(pte_at(p.mm, a)), r.page!.pfn);
  assert.is(pte_pfn(pte_at(child.mm, a)), r.page!.pfn, 'shared');
  assert.is(page_mapcount(r.page!), 2);
  child.write32(a, 501);
  assert.is(p.read32(a), 500);
  assert.is(child.read32(a), 501);
});

t('munmap of an exclusive entry releases the page like a mapped one', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 1);
  const r = exclusive(p, a);
  release(r);
  const rss = get_mm_counter(p.mm, MM_ANONPAGES);
  assert.is(p.munmap(a, PAGE_SIZE), 0);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), rss - 1);
  assert.is(r.page!._refcount, 0, 'freed');
});

t('a second exclusive request for the same page first ends the first one (GUP faults it back)', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 1);
  release(exclusive(p, a));
  seen.length = 0;
  const r = exclusive(p, a);
  assert.is(r.ret, 0);
  assert.equal(seen.map((s) => [s.event, s.owner]), [['EXCLUSIVE', null], ['EXCLUSIVE', OWNER]],
    'the restore, then the new conversion');
  release(r);
  assert.ok(is_excl(p, a));
});

t('a CPU fault restores the entry old, writable (exclusive anon page) and dirty only because the folio is', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 5);
  const r = exclusive(p, a);
  release(r);
  assert.ok(PageDirty(r.page!), 'the PTE\'s dirty bit moved to the folio when the entry was made');
  assert.is(p.read32(a), 5);
  const pte = pte_at(p.mm, a);
  assert.ok(pte_present(pte) && pte_write(pte), 'can_change_pte_writable: an exclusive anonymous page');
  assert.ok(pte_dirty(pte), 'the folio is dirty');
  /* the read itself made it young; what restore_exclusive_pte wrote is seen through fork below */
});

t('fork restores a device-exclusive entry old (not young): the device\'s accesses are not the CPU\'s', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 5);
  release(exclusive(p, a));
  const child = p.fork();
  const pte = pte_at(p.mm, a);
  assert.ok(pte_present(pte));
  assert.not.ok(pte_young(pte), 'restored old');
  assert.not.ok(pte_write(pte), 'then write-protected by the COW copy');
  assert.is(child.read32(a), 5);
});

t('fork of a device-exclusive page whose folio someone else holds locked fails with -EBUSY, nothing copied', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 42);
  const r = exclusive(p, a);             /* the driver still holds the folio lock: as Linux's try_restore_exclusive_pte sees it */
  assert.is(runAs(p.task, p.sys.fork()), -EBUSY);
  assert.ok(is_excl(p, a), 'the parent keeps the device-exclusive entry');
  assert.is(r.page!._refcount, 2, 'the half-built child gave its references back');
  assert.is(page_mapcount(r.page!), 1);
  release(r);
  const child = p.fork();                /* once the lock is free, the fork restores and shares the page */
  assert.not.ok(is_excl(p, a));
  assert.is(child.read32(a), 42);
  assert.ok(folio_trylock(r.page!), 'the fork left the folio unlocked');
  folio_unlock(r.page!);
});

t('make_device_exclusive on a private hugetlb page is -EOPNOTSUPP at once, without splitting or retrying', () => {
  p = boot({ hugepages_2m: 1 });
  const a = p.mmap(0, 2 << 20, RW, ANON | MAP_HUGETLB);
  p.write32(a, 9);
  const r = exclusive(p, a + PAGE_SIZE);
  assert.is(r.ret, -EOPNOTSUPP);
  assert.is(r.page, null);
  assert.is(get_counter('make_device_exclusive_retry'), 0);
  assert.is(p.read32(a), 9);
});

t('reclaim swaps out a page under a device-exclusive entry (a PFN swap PTE that maps the page): the device loses it, the bytes come back', () => {
  p = boot({ swap_bytes: 16 << 20 });
  seen = watch(p).seen;
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 0xfeedbeef);
  const r = exclusive(p, a);
  assert.is(r.ret, 0);
  release(r);
  assert.ok(is_device_exclusive_entry(pte_to_swp_entry(pte_at(p.mm, a))));
  seen.length = 0;
  runSync(shrink_all_memory(1 << 20));
  const pte = pte_at(p.mm, a);
  assert.not.ok(pte_present(pte), 'unmapped by reclaim');
  const e = pte_to_swp_entry(pte);
  assert.not.ok(is_device_exclusive_entry(e), 'the exclusive entry became a swap entry');
  assert.not.ok(non_swap_entry(e), 'a real swap entry');
  assert.ok(seen.some((x) => x.event === 'CLEAR' && x.start <= a && a < x.end), 'the device heard MMU_NOTIFY_CLEAR for it');
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 0);
  assert.is(p.read32(a), 0xfeedbeef, 'swapped back in with its bytes');
});

t.run();
