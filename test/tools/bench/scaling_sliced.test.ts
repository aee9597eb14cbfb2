/*
 * test/tools/bench/scaling_sliced.test.ts - the sliced round of
 * tools/bench/workload.ts (slicedRound(): the 4M-page rows of `bench
 * scaling` on a host without room for two copies of the data) and the
 * host-memory budget of tools/bench/scaling_host.ts that chooses it:
 * every byte of parent and child in every slice, which pages the child
 * copied (its own frames inside its slice, the parent's outside), nothing
 * leaked, the section bytes the host holds at the peak (N + N/S pages,
 * against 2N for the ordinary round), the per-page divisors, and the
 * choice of S.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, pte_at } from '../../helpers.js';
import { Process } from '../../../tools/include/nolibc/nolibc.js';
import { slicedRound, simulatedRound, roundUnits, PHASES, type Phase } from '../../../tools/bench/workload.js';
import { need_workload, need_migration, slices_for, forced_slices, budget, too_big, RESERVE, HOST_PAGE, MAX_SLICES } from '../../../tools/bench/scaling_host.js';
import { nr_free_pages } from '../../../mm/page_alloc.js';
import { sparse_stats, PAGES_PER_SECTION } from '../../../mm/sparse.js';
import { pte_pfn } from '../../../include/linux/pgtable.js';
import { PAGE_SIZE, get_mm_counter } from '../../../include/linux/mm.js';
import { MM_ANONPAGES } from '../../../include/linux/mm_types.js';

const GiB = 2 ** 30;

test('every slice: the child reads its own bytes in its slice and the parent\'s elsewhere, on its own frames only inside the slice', () => {
  const pages = 2048, slices = 4, nr = pages / slices;
  const p = boot({ ram_bytes: 64 << 20 });
  const free0 = nr_free_pages();
  const seen: string[] = [];
  let checked = 0;
  slicedRound(p, pages, slices, (ph, where) => {
    seen.push(ph);
    if (ph !== 'cow') return;
    const c = where.child!;
    assert.ok(c !== null && c.pid !== p.pid);
    assert.is(where.nr, nr);
    let own = 0;
    for (let i = 0; i < pages; i++) {
      const va = where.addr + i * PAGE_SIZE;
      const inside = i >= where.first && i < where.first + nr;
      assert.is(p.read8(va), i & 0xff, `parent page ${i}`);
      assert.is(c.read8(va), inside ? (i + 1) & 0xff : i & 0xff, `child page ${i}, slice at ${where.first}`);
      const same = pte_pfn(pte_at(c.mm, va)) === pte_pfn(pte_at(p.mm, va));
      assert.is(same, !inside, `page ${i}: ${inside ? 'copied by the COW' : 'shared with the parent'}`);
      if (!same) own++;
    }
    assert.is(own, nr);
    assert.is(get_mm_counter(c.mm, MM_ANONPAGES), pages);
    checked++;
  }, false);
  assert.is(checked, slices);
  const order: Phase[] = ['anon'];
  for (let s = 0; s < slices; s++) order.push('fork', 'cow', 'exit');
  order.push('munmap');
  assert.equal(seen, order);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 0);
  assert.is(nr_free_pages(), free0, 'every page of the round freed');
});

test('the sliced round holds N + N/S pages of contents at its peak, the ordinary round 2N', () => {
  const pages = 16 * PAGES_PER_SECTION, slices = 4;
  const peak = (run: (p: Process, after: () => void) => void) => {
    const p = boot({ ram_bytes: 4 * pages * PAGE_SIZE });
    let most = 0;
    run(p, () => { most = Math.max(most, sparse_stats().byte_sections); });
    return most;
  };
  const sliced = peak((p, after) => slicedRound(p, pages, slices, after, false));
  const whole = peak((p, after) => simulatedRound(p, pages, after, false));
  const sec = pages / PAGES_PER_SECTION;
  assert.ok(sliced >= sec + sec / slices && sliced <= sec + sec / slices + 2, `sliced peak ${sliced} sections`);
  assert.ok(whole >= 2 * sec, `ordinary peak ${whole} sections`);
});

test('per-page divisors: fork and exit per PTE (S x N), the faults and munmap per page', () => {
  assert.equal(roundUnits(1024, 8), { anon: 1024, fork: 8192, cow: 1024, exit: 8192, munmap: 1024 });
  const one = roundUnits(4096);
  for (const ph of PHASES) assert.is(one[ph], 4096);
});

test('a slice count that does not divide the pages is refused', () => {
  const p = boot({ ram_bytes: 16 << 20 });
  assert.throws(() => slicedRound(p, 1000, 3), /do not cut into 3 slices/);
  assert.throws(() => slicedRound(p, 1024, 0), /do not cut into 0 slices/);
});

test('the budget: the fewest slices that fit in 90% of what is available with 3 GiB left over, null when none does', () => {
  assert.is(budget(10 * GiB), 7 * GiB);
  assert.is(budget(50 * GiB), 45 * GiB);
  assert.ok(budget(RESERVE / 2) < 0);
  const n = 4 << 20;
  /* 2 copies of 4M pages (32 GiB) never fit in 24 GB; 1 + 1/S copies do once S is large enough */
  assert.ok(need_workload(n, 1, 1024) > 32 * GiB);
  const s = slices_for(n, 22 * GiB, 1024)!;
  assert.ok(s !== null && s > 1 && s <= MAX_SLICES);
  assert.ok(need_workload(n, s, 1024) <= budget(22 * GiB));
  assert.ok(need_workload(n, s / 2, 1024) > budget(22 * GiB), `${s / 2} slices would fit too`);
  assert.is(slices_for(n, 12 * GiB, 1024), null);
  assert.is(slices_for(1 << 20, 22 * GiB, 1024), 1);
  assert.is(too_big(need_migration(n, 1024), 22 * GiB), null);
  /* what the process holds already counts: with 0.5 GiB of RSS before the part it takes more slices than a fresh process */
  assert.ok(need_workload(n, 16, 1024, GiB / 2) === need_workload(n, 16, 1024) + GiB / 2);
  assert.ok(slices_for(n, 22 * GiB, 1024, GiB / 2)! > s);
  assert.match(too_big(need_workload(n, MAX_SLICES, 1024), 12 * GiB, ' even in 64 slices')!,
    /^needs ~17\.\d GiB of host memory even in 64 slices, 12\.0 GiB available now \(9\.0 GiB usable/);
  /* the migration round trip holds the pages once: 4M pages need about 17.6 GiB, not 3 x 16 */
  assert.ok(need_migration(n, 1024) < 18 * GiB && need_migration(n, 1024) >= n * HOST_PAGE);
});

test('SCALING_BENCH_SLICES: a power of 2 up to MAX_SLICES, or unset', () => {
  const old = process.env.SCALING_BENCH_SLICES;
  try {
    delete process.env.SCALING_BENCH_SLICES;
    assert.is(forced_slices(), null);
    process.env.SCALING_BENCH_SLICES = '8';
    assert.is(forced_slices(), 8);
    for (const bad of ['3', '0', '128', 'x']) {
      process.env.SCALING_BENCH_SLICES = bad;
      assert.throws(() => forced_slices(), /a power of 2/);
    }
  } finally {
    if (old === undefined) delete process.env.SCALING_BENCH_SLICES; else process.env.SCALING_BENCH_SLICES = old;
  }
});

test.run();
