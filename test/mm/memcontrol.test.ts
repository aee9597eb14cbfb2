import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RW, ANON } from '../helpers.js';
import { boot_swap, pte_of, check_invariants, sleeping_subscriber, MiB } from './swap_helpers.js';
import { UserFault } from '../../mm/fault.js';
import { MM_SWAPENTS } from '../../include/linux/mm_types.js';
import { PAGE_SIZE, FAULT_FLAG_WRITE, FAULT_FLAG_USER, VM_FAULT_OOM } from '../../include/linux/mm.js';
import { runAs } from '../../tools/include/nolibc/nolibc.js';
import { handle_mm_fault } from '../../mm/memory.js';
import { vma_lookup } from '../../mm/vma.js';
import { mmap_read_lock, mmap_read_unlock } from '../../mm/mmap_lock.js';
import { pte_pfn } from '../../include/linux/pgtable.js';
import { pte_kind, pte_to_swp_entry } from '../../include/linux/swapops.js';
import { MEMCG_MAX, MEMCG_OOM, MEMCG_OOM_KILL, MEMCG_SWAP_MAX, folio_memcg } from '../../include/linux/memcontrol.js';
import { MADV_PAGEOUT } from '../../include/uapi/asm-generic/mman.js';
import { SIGKILL } from '../../include/uapi/asm-generic/signal.js';
import { EINVAL } from '../../include/uapi/asm-generic/errno.js';
import { get_counter } from '../../lib/sim/trace.js';
import { pfn_to_page } from '../../mm/page_alloc.js';
import {
  mem_cgroup_create, mem_cgroup_attach_task, memory_max_write, swap_max_write, root_mem_cgroup,
  get_mem_cgroup_from_mm, lookup_swap_cgroup_id,
} from '../../mm/memcontrol.js';
import { Process } from '../../tools/include/nolibc/nolibc.js';

const t = suite('mm/memcontrol');
const P = PAGE_SIZE;

t('faults charge the mm\'s memcg and its ancestors; freeing uncharges', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const A = mem_cgroup_create('A');
  const B = mem_cgroup_create('B', A);
  assert.is(B.name, '/A/B');
  assert.is(get_mem_cgroup_from_mm(p.mm), root_mem_cgroup());
  mem_cgroup_attach_task(B, p.task);
  assert.is(get_mem_cgroup_from_mm(p.mm), B);
  const a = p.mmap(0, 10 * P, RW, ANON);
  p.fill32(a, 10 * P, 0);
  assert.equal([B.memory.usage, A.memory.usage], [10, 10]);
  assert.is(folio_memcg(pfn_to_page(pte_pfn(pte_of(p.mm, a)))), B);
  assert.is(B.lruvec.nr_pages[0], 10, 'the pages are on B\'s inactive anon list');
  const c = p.fork();
  assert.is(get_mem_cgroup_from_mm(c.mm), B, 'a fork child stays in its parent\'s memcg');
  c.write32(a, 1);
  assert.is(B.memory.usage, 11, 'the COW copy is charged too');
  check_invariants([p.mm, c.mm]);
  c.exit(0);
  p.munmap(a, 4 * P);
  assert.equal([B.memory.usage, A.memory.usage], [6, 6]);
  assert.is(B.memory.watermark, 11, 'memory.peak');
  p.exit(0);
  assert.equal([B.memory.usage, A.memory.usage], [0, 0]);
});

t('over memory.max, reclaim inside the memcg swaps its own pages out; the data survives', () => {
  const p = boot_swap(16 * MiB, 16 * MiB);
  const other = Process.spawn('other');
  const bystander = other.mmap(0, 32 * P, RW, ANON);
  other.fill32(bystander, 32 * P, 555);
  const M = mem_cgroup_create('M');
  assert.is(memory_max_write(M, 64 * P), 0);
  mem_cgroup_attach_task(M, p.task);
  const a = p.mmap(0, 256 * P, RW, ANON);
  p.fill32(a, 256 * P, 42);
  assert.ok(M.memory.usage <= 64, `usage ${M.memory.usage}`);
  assert.ok(M.events[MEMCG_MAX] > 0, 'memory.events max');
  assert.is(M.events[MEMCG_OOM], 0);
  assert.ok(M.swap.usage >= 256 - 64, 'memory.swap.current');
  assert.ok(M.stat.pgsteal >= 192);
  assert.is(other.mm.rss_stat[MM_SWAPENTS], 0, 'reclaim stayed inside the memcg: the bystander kept its pages');
  assert.is(p.check32(a, 256 * P, 42), -1);
  assert.is(other.check32(bystander, 32 * P, 555), -1);
  check_invariants([p.mm, other.mm]);
  const e = pte_to_swp_entry(pte_of(p.mm, a + 255 * P));
  assert.ok(pte_kind(pte_of(p.mm, a + 255 * P)).kind !== 'swap' || lookup_swap_cgroup_id(e) === M.id);
  p.exit(0);
  assert.equal([M.memory.usage, M.swap.usage], [0, 0]);
});

/*
 * The charge of a fault may sleep in Linux (try_charge_memcg ->
 * try_to_free_mem_cgroup_pages, blockable): a subscriber that must sleep
 * to invalidate is waited for and the memcg's mirrored pages are
 * reclaimed. Before, memcg reclaim ran inline with non-blockable ranges:
 * the subscriber refused and its pages were never reclaimed.
 */
t('memcg limit reclaim from a fault sends blockable ranges: a subscriber that sleeps is waited for', () => {
  const p = boot_swap(16 * MiB, 16 * MiB);
  const M = mem_cgroup_create('M');
  assert.is(memory_max_write(M, 64 * P), 0);
  mem_cgroup_attach_task(M, p.task);
  const n = 48, a = p.mmap(0, n * P, RW, ANON);
  p.fill32(a, n * P, 7);
  const sub = sleeping_subscriber(p, a, n * P);
  const b = p.mmap(0, 128 * P, RW, ANON);
  p.fill32(b, 128 * P, 8);                       /* over memory.max: memcg reclaim on the faults */
  assert.ok(M.memory.usage <= 64, `usage ${M.memory.usage}`);
  assert.ok(M.events[MEMCG_MAX] > 0);
  assert.is(M.events[MEMCG_OOM], 0);
  assert.is(sub.refused, 0, 'no non-blockable range reached the subscriber');
  assert.ok(sub.blockable > 0 && sub.slept === sub.blockable);
  let swapped = 0;
  for (let i = 0; i < n; i++) if (pte_kind(pte_of(p.mm, a + i * P)).kind === 'swap') swapped++;
  assert.ok(swapped > 0, 'mirrored pages of the memcg were reclaimed');
  assert.is(p.check32(a, n * P, 7), -1);
  assert.is(p.check32(b, 128 * P, 8), -1);
  check_invariants([p.mm]);
  p.exit(0);
  assert.equal([M.memory.usage, M.swap.usage], [0, 0]);
});

t('over memory.max with nothing to reclaim, the memcg is OOM: the fault kills the task with SIGKILL', () => {
  const p = boot_swap(16 * MiB, 0);
  const M = mem_cgroup_create('M');
  memory_max_write(M, 16 * P);
  mem_cgroup_attach_task(M, p.task);
  const a = p.mmap(0, 32 * P, RW, ANON);
  p.fill32(a, 16 * P, 1);
  assert.is(M.memory.usage, 16);
  const vma = vma_lookup(p.mm, a + 17 * P)!;
  const ret = runAs(p.task, (function* () {
    yield* mmap_read_lock(p.mm);
    const r = yield* handle_mm_fault(vma, a + 17 * P, FAULT_FLAG_WRITE | FAULT_FLAG_USER);
    mmap_read_unlock(p.mm);
    return r;
  })());
  assert.is(ret, VM_FAULT_OOM, 'handle_mm_fault() reports VM_FAULT_OOM');
  assert.is(M.events[MEMCG_OOM], 1);
  const err = (() => { try { p.write32(a + 16 * P, 2); return null; } catch (e) { return e; } })();
  assert.ok(err instanceof UserFault && err.sig === SIGKILL, `got ${err}`);
  assert.is(p.task.killed_by, SIGKILL);
  assert.equal([M.events[MEMCG_OOM], M.events[MEMCG_OOM_KILL]], [2, 2]);
  assert.is(root_mem_cgroup().events[MEMCG_OOM], 2, 'memory.events is hierarchical');
  assert.is(get_counter('memcg_oom'), 2);
  assert.is(get_counter('oom_kill'), 1, 'mm_fault_error() killed the task once');
  assert.is(M.memory.usage, 16, 'nothing was charged past the limit');
  assert.is(M.memory.failcnt > 0, true);
  assert.is(p.check32(a, 16 * P, 1), -1, 'the charged pages are intact');
  check_invariants([p.mm]);
});

t('memory.swap.max bounds how much reclaim may swap; past it the memcg is OOM', () => {
  const p = boot_swap(16 * MiB, 16 * MiB);
  const M = mem_cgroup_create('M');
  memory_max_write(M, 16 * P);
  swap_max_write(M, 8 * P);
  mem_cgroup_attach_task(M, p.task);
  const a = p.mmap(0, 64 * P, RW, ANON);
  let filled = 0;
  try { for (; filled < 64; filled++) p.write32(a + filled * P, filled); } catch (e) {
    assert.ok(e instanceof UserFault && e.sig === SIGKILL);
  }
  assert.is(filled, 24, 'memory.max + memory.swap.max pages, then OOM');
  assert.is(M.swap.usage, 8);
  assert.ok(M.events[MEMCG_SWAP_MAX] > 0);
  assert.is(M.events[MEMCG_OOM_KILL], 1);
  assert.throws(() => p.read32(a), /SIGKILL/, 'even a swap-in needs a charge the memcg cannot give');
  assert.is(memory_max_write(M, Infinity), 0);
  for (let i = 0; i < 24; i++) assert.is(p.read32(a + i * P), i, 'with the limit lifted every page reads back');
  check_invariants([p.mm]);
});

t('a page read back from swap is charged to the memcg that owned the slot', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const A = mem_cgroup_create('A'), B = mem_cgroup_create('B');
  mem_cgroup_attach_task(A, p.task);
  const a = p.mmap(0, 4 * P, RW, ANON);
  p.fill32(a, 4 * P, 8);
  assert.is(p.madvise(a, 4 * P, MADV_PAGEOUT), 0);
  assert.equal([A.memory.usage, A.swap.usage], [0, 4]);
  mem_cgroup_attach_task(B, p.task);                /* moving a task does not move its charges (v2) */
  assert.is(p.read32(a), 8);
  assert.equal([A.memory.usage, B.memory.usage], [1, 0]);
  p.write32(a + P, 9);
  assert.equal([A.memory.usage, A.swap.usage], [2, 3], 'the write freed its slot: swap uncharged');
  check_invariants([p.mm]);
});

t('lowering memory.max below usage reclaims down to it; bad values are EINVAL', () => {
  const p = boot_swap(16 * MiB, 4 * MiB);
  const M = mem_cgroup_create('M');
  mem_cgroup_attach_task(M, p.task);
  const a = p.mmap(0, 64 * P, RW, ANON);
  p.fill32(a, 64 * P, 3);
  assert.is(M.memory.usage, 64);
  assert.is(memory_max_write(M, 32 * P), 0);
  assert.ok(M.memory.usage <= 32);
  assert.is(p.mm.rss_stat[MM_SWAPENTS], 64 - M.memory.usage);
  assert.is(memory_max_write(M, -1), -EINVAL);
  assert.is(memory_max_write(M, Infinity), 0);
  assert.is(p.check32(a, 64 * P, 3), -1);
  check_invariants([p.mm]);
});

t.run();
