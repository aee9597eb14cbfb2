/*
 * test/mm/hmm_v8/mmu_notifier.test.ts - the 2015 notifier extensions
 * (mm/hmm_v8/mmu_notifier.ts, HMM v8 patches 01-04).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../../helpers.js';
import { runAs, Process } from '../../../tools/include/nolibc/nolibc.js';
import { MADV_DONTNEED, PROT_READ } from '../../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import {
  mmu_event_names, MMU_MIGRATE, MMU_WRITE_BACK, type mmu_notifier_v8,
} from '../../../include/linux/hmm_v8.js';
import {
  MMU_NOTIFY_CLEAR, MMU_NOTIFY_PROTECTION_PAGE, MMU_NOTIFIER_RANGE_BLOCKABLE, mmu_notifier_event_names,
} from '../../../include/linux/mmu_notifier.js';
import {
  mmu_notifier_register_v8, mmu_notifier_range_is_valid, mmu_notifier_range_wait_valid, mmuNotifierMmV8Of,
  mmu_notifier_invalidate_page, mmu_notifier_invalidate_range_start_excluding,
  mmu_notifier_invalidate_range_end_excluding, mmu_event_from_mainline,
} from '../../../mm/hmm_v8/mmu_notifier.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from '../../../mm/mmu_notifier.js';
import { Scheduler, sched_yield, type Sleepable } from '../../../lib/sim/sched.js';
import { pfn_to_page } from '../../../mm/page_alloc.js';
import { pte_pfn } from '../../../include/linux/pgtable.js';
import { pte_at } from '../../helpers.js';

import { start_kernel } from '../../../mm/init.js';
import { get_mm_rss } from '../../../include/linux/mm.js';
import { get_counter } from '../../../lib/sim/trace.js';
import { oom_kills } from '../../../mm/oom_kill.js';
import { UserFault } from '../../../mm/fault.js';
import { SIGKILL } from '../../../include/uapi/asm-generic/signal.js';
import { warnings } from '../../../include/asm-generic/bug.js';
import { EAGAIN } from '../../../include/uapi/asm-generic/errno.js';

const t = suite('mm/hmm_v8/mmu_notifier');
let p: Process;
t.before.each(() => { p = boot(); });

const hex = (n: number) => n.toString(16);

function listener(p: Process, log: string[], extra: Partial<mmu_notifier_v8['ops']> = {}): mmu_notifier_v8 {
  const mn: mmu_notifier_v8 = {
    mm: null,
    ops: {
      *invalidate_range_start(_mn, mm, r) {
        log.push(`start ${mmu_event_names[r.v8_event!]} ${hex(r.start)}-${hex(r.end)} valid=${mmu_notifier_range_is_valid(mm, r.start, r.end)}`);
      },
      *invalidate_range_end(_mn, mm, r) {
        log.push(`end ${mmu_event_names[r.v8_event!]} valid=${mmu_notifier_range_is_valid(mm, r.start, r.end)}`);
      },
      ...extra,
    },
  };
  assert.is(runAs(p.task, mmu_notifier_register_v8(mn, p.mm)), 0);
  return mn;
}

t('every core path tags its invalidation with the 2015 event of the table', () => {
  const a = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 4 * PAGE_SIZE, 0);
  const log: string[] = [];
  listener(p, log);
  p.mprotect(a, PAGE_SIZE, PROT_READ);
  p.madvise(a + PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED);
  p.fork();
  p.write32(a + 2 * PAGE_SIZE, 1);                 /* COW in the parent */
  p.munmap(a + 3 * PAGE_SIZE, PAGE_SIZE);
  const starts = log.filter((l) => l.startsWith('start')).map((l) => l.split(' ').slice(0, 2).join(' '));
  assert.equal(starts, [
    'start MMU_MPROT', 'start MMU_MIGRATE', 'start MMU_FORK', 'start MMU_FORK', 'start MMU_MIGRATE', 'start MMU_MUNMAP',
  ]);
  for (const l of log) assert.match(l, /valid=false/, 'the range is on the active list for start and end callbacks');
});

t('the mainline-to-2015 table covers every mainline event', () => {
  assert.is(mmu_event_from_mainline.length, mmu_notifier_event_names.length);
  assert.is(mmu_event_from_mainline[MMU_NOTIFY_CLEAR], MMU_MIGRATE);
});

t('a caller that knows better sets v8_event itself (writeback is not a fork)', () => {
  p.mmap(0, PAGE_SIZE, RW, ANON);
  const log: string[] = [];
  listener(p, log);
  const r = mmu_notifier_range_init(MMU_NOTIFY_PROTECTION_PAGE, MMU_NOTIFIER_RANGE_BLOCKABLE, p.mm, 0x10000, 0x11000);
  r.v8_event = MMU_WRITE_BACK;
  runAs(p.task, mmu_notifier_invalidate_range_start(r));
  runAs(p.task, mmu_notifier_invalidate_range_end(r));
  assert.match(log[0], /^start MMU_WRITE_BACK/);
});

t('the active list: linked before start callbacks, unlinked after end, nranges follows', () => {
  p.mmap(0, PAGE_SIZE, RW, ANON);
  listener(p, []);
  const s = mmuNotifierMmV8Of(p.mm)!;
  const r = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, p.mm, 0x20000, 0x30000);
  runAs(p.task, mmu_notifier_invalidate_range_start(r));
  assert.is(s.nranges, 1);
  assert.not.ok(mmu_notifier_range_is_valid(p.mm, 0x2f000, 0x31000), 'overlap');
  assert.ok(mmu_notifier_range_is_valid(p.mm, 0x30000, 0x40000), 'adjacent is fine');
  runAs(p.task, mmu_notifier_invalidate_range_end(r));
  assert.is(s.nranges, 0);
  assert.ok(mmu_notifier_range_is_valid(p.mm, 0x20000, 0x30000));
});

t('range_wait_valid sleeps while an overlapping invalidation runs and wakes at its end', () => {
  p.mmap(0, PAGE_SIZE, RW, ANON);
  listener(p, []);
  const order: string[] = [];
  const s = new Scheduler();
  const r = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, p.mm, 0x20000, 0x30000);
  s.spawn('invalidate', function* (): Sleepable {
    yield* mmu_notifier_invalidate_range_start(r);
    order.push('started');
    for (let i = 0; i < 3; i++) yield* sched_yield();
    order.push('ending');
    yield* mmu_notifier_invalidate_range_end(r);
  });
  s.spawn('fault', function* (): Sleepable {
    yield* mmu_notifier_range_wait_valid(p.mm, 0x21000, 0x22000);
    order.push('valid');
  });
  s.run();
  assert.equal(order, ['started', 'ending', 'valid']);
});

t('invalidate_page hands the page to the listener (patch 03)', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 7);
  const got: number[] = [];
  listener(p, [], { *invalidate_page(_mn, _mm, addr, pg, ev) { got.push(addr, pg!.pfn, ev); } });
  const pg = pfn_to_page(pte_pfn(pte_at(p.mm, a)));
  runAs(p.task, mmu_notifier_invalidate_page(p.mm, a, pg, MMU_MIGRATE));
  assert.equal(got, [a, pg.pfn, MMU_MIGRATE]);
});

t('an _excluding invalidation skips exactly the excluded listener (patch 04)', () => {
  p.mmap(0, PAGE_SIZE, RW, ANON);
  const la: string[] = [], lb: string[] = [];
  const a = listener(p, la);
  listener(p, lb);
  const r = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, p.mm, 0x20000, 0x30000);
  runAs(p.task, mmu_notifier_invalidate_range_start_excluding(r, a));
  runAs(p.task, mmu_notifier_invalidate_range_end_excluding(r, a));
  assert.is(la.length, 0);
  assert.is(lb.length, 2);
  const r2 = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, p.mm, 0x20000, 0x30000);
  runAs(p.task, mmu_notifier_invalidate_range_start(r2));
  runAs(p.task, mmu_notifier_invalidate_range_end(r2));
  assert.is(la.length, 2, 'a later plain range reaches it again');
});

t('exit calls release of every 2015 listener', () => {
  p.mmap(0, PAGE_SIZE, RW, ANON);
  const log: string[] = [];
  listener(p, log, { *release() { log.push('release'); } });
  p.exit(0);
  assert.ok(log.includes('release'));
});

/*
 * Fuzz seed 22937: a hmm_dummy device fault ran out of RAM, the OOM killer
 * reaped a process mirrored by the 2015 HMM, and the reaper's non-blockable
 * range reached hmm_update(), which sleeps on hmm.rwsem: "sleeping function
 * called from invalid context". The hub now refuses such a range.
 */
t('the OOM reaper\'s non-blockable range (seed 22937): the hub refuses it with -EAGAIN; no 2015 callback runs', () => {
  const RAM = 1024;
  start_kernel({ ram_bytes: RAM * PAGE_SIZE });
  const big = Process.spawn('big');
  const a = big.mmap(0, 600 * PAGE_SIZE, RW, ANON);
  for (let i = 0; i < 600; i++) big.write32(a + i * PAGE_SIZE, i + 1);
  const log: string[] = [];
  listener(big, log, {
    *invalidate_range_start(_mn, _mm, r) { log.push(`start ${hex(r.start)}`); yield* sched_yield(); },
  });
  const w0 = warnings().length;
  const hog = Process.spawn('hog');
  const h = hog.mmap(0, RAM * PAGE_SIZE, RW, ANON);
  let wrote = 0;
  try {
    for (; wrote < 500; wrote++) hog.write32(h + wrote * PAGE_SIZE, wrote + 1);   /* runs out: big is the victim */
  } catch (e) {
    /* big's memory comes back only when it exits: the hog may be the next victim (not asserted either way) */
    assert.ok(e instanceof UserFault && e.sig === SIGKILL, String(e));
  }
  assert.is(oom_kills()[0].pid, big.pid, 'the task with the most memory was chosen first');
  const refusedRanges = get_counter('mmu_notifier_v8_nonblock_refused');
  assert.ok(refusedRanges >= 1, 'the reaper\'s range was refused (once per reap attempt)');
  assert.is(get_counter('oom_reap_notifier_busy'), refusedRanges, 'each refusal made the reaper skip the VMA');
  assert.equal(log, [], 'no 2015 listener saw the start or the end of the refused range');
  assert.is(warnings().length, w0, 'no WARN (mainline: a start that can fail has no end)');
  assert.is(get_mm_rss(big.mm), 600, 'the refused VMA stays mapped until the victim exits');
  if (hog.task.exit_state === 0) {
    for (let i = 0; i < wrote; i++) assert.is(hog.read32(h + i * PAGE_SIZE), i + 1, `hog page ${i}`);
  }
  /* on a live mm: a blockable range still reaches the listener, start and end */
  const q = Process.spawn('q');
  const x = q.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  q.write32(x, 7);
  const log2: string[] = [];
  listener(q, log2);
  const r = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, q.mm, x, x + PAGE_SIZE);
  assert.is(runAs(q.task, mmu_notifier_invalidate_range_start(r)), 0);
  runAs(q.task, mmu_notifier_invalidate_range_end(r));
  assert.equal(log2.map((l) => l.split(' ')[0]), ['start', 'end'], log2.join('; '));
  /* a non-blockable one on the same mm: -EAGAIN, nothing logged, the end sends nothing either */
  const nb = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, 0, q.mm, x, x + PAGE_SIZE);
  assert.is(runAs(q.task, mmu_notifier_invalidate_range_start(nb)), -EAGAIN);
  runAs(q.task, mmu_notifier_invalidate_range_end(nb));
  assert.is(log2.length, 2);
  assert.is(q.read32(x), 7);
});

t.run();
