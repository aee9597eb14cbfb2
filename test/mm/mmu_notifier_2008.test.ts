/*
 * test/mm/mmu_notifier_2008.test.ts - the 2008 notifier API
 * (mm/mmu_notifier_2008.ts): which of its five calls each core-mm path
 * delivers, in which order relative to the page being freed, and the
 * broken variant that collapses the range pair after the change.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../helpers.js';
import { PAGE_SIZE, page_count } from '../../include/linux/mm.js';
import { MADV_DONTNEED } from '../../include/uapi/asm-generic/mman.js';
import type { mmu_notifier_2008 } from '../../include/linux/mmu_notifier_2008.js';
import { runAs, type Process } from '../../tools/include/nolibc/nolibc.js';
import { pte_offset_map, ptep_get } from '../../mm/pgtable.js';
import { pte_pfn } from '../../include/linux/pgtable.js';
import { pfn_to_page } from '../../mm/page_alloc.js';
import { mmu_notifier_clear_young } from '../../mm/mmu_notifier.js';
import {
  mmu_notifier_2008_params, mmuNotifier2008ParamsReset, mmu_notifier_register_2008, mmu_notifier_unregister_2008,
} from '../../mm/mmu_notifier_2008.js';

test.before.each(() => mmuNotifier2008ParamsReset());

/* a 2008 subscriber that logs each call; @watch: a page whose refcount it notes at each call */
function recorder(p: Process, watch: { pfn: number } = { pfn: -1 }) {
  const log: string[] = [];
  const rc = () => (watch.pfn >= 0 ? ` rc=${page_count(pfn_to_page(watch.pfn))}` : '');
  const mn: mmu_notifier_2008 = {
    mm: null,
    ops: {
      release: () => { log.push('release'); },
      invalidate_page: (_mn, _mm, a) => { log.push(`page ${(a - base).toString(16)}${rc()}`); },
      invalidate_range_start: (_mn, _mm, s, e) => { log.push(`start ${(s - base).toString(16)}-${(e - base).toString(16)}${rc()}`); },
      invalidate_range_end: (_mn, _mm, s, e) => { log.push(`end ${(s - base).toString(16)}-${(e - base).toString(16)}${rc()}`); },
      clear_flush_young: (_mn, _mm, a) => { log.push(`young ${(a - base).toString(16)}`); return 1; },
    },
  };
  let base = 0;
  runAs(p.task, mmu_notifier_register_2008(mn, p.mm));
  return { log, mn, setBase: (b: number) => { base = b; } };
}

function pfn_at(p: Process, va: number): number {
  return pte_pfn(ptep_get(p.mm, pte_offset_map(p.mm, va)));
}

test('a zap sends the range pair; the page is freed between start and end (the window a pinless user must close)', () => {
  const p = boot();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.write32(buf, 1);
  const watch = { pfn: pfn_at(p, buf) };
  const r = recorder(p, watch);
  r.setBase(buf);
  assert.is(p.madvise(buf, PAGE_SIZE, MADV_DONTNEED), 0);
  assert.equal(r.log, ['start 0-1000 rc=1', 'end 0-1000 rc=0']);
});

test('a COW after fork sends invalidate_page while the old page is still referenced', () => {
  const p = boot();
  const buf = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(buf, 1);
  const q = p.fork();
  const watch = { pfn: pfn_at(p, buf) };
  const r = recorder(p, watch);
  r.setBase(buf);
  p.write32(buf, 2);
  /* mainline wraps the COW in a pair too (a superset of 2.6.27's lone invalidate_page) */
  assert.equal(r.log.map((l) => l.replace(/ rc=\d+/, '')), ['start 0-1000', 'page 0', 'end 0-1000']);
  assert.match(r.log[1]!, /^page 0 rc=[1-9]/, 'the old page is still referenced when invalidate_page runs');
  assert.is(q.read32(buf), 1);
});

test('clear_flush_young is asked page by page; exit sends release once; unregister after exit sends nothing more', () => {
  const p = boot();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  const r = recorder(p);
  r.setBase(buf);
  assert.is(mmu_notifier_clear_young(p.mm, buf, buf + 2 * PAGE_SIZE), 1);
  assert.equal(r.log.splice(0), ['young 0', 'young 1000']);
  const mm = p.mm;
  p.exit(0);
  assert.equal(r.log.filter((l) => l === 'release'), ['release']);
  runAs(p.task, mmu_notifier_unregister_2008(r.mn, mm));
  assert.equal(r.log.filter((l) => l === 'release'), ['release']);
});

test('broken variant: nothing before the change; start and end come back to back after the page is freed', () => {
  const p = boot();
  const buf = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(buf, 1);
  const watch = { pfn: pfn_at(p, buf) };
  const r = recorder(p, watch);
  r.setBase(buf);
  mmu_notifier_2008_params.broken_no_range_pair = true;
  assert.is(p.madvise(buf, PAGE_SIZE, MADV_DONTNEED), 0);
  assert.equal(r.log, ['start 0-1000 rc=0', 'end 0-1000 rc=0']);
});

test.run();
