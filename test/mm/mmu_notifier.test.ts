import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, recordNotifier, starts } from '../helpers.js';
import { runAs, type Process } from '../../tools/include/nolibc/nolibc.js';
import { MADV_DONTNEED, PROT_READ } from '../../include/uapi/asm-generic/mman.js';
import {
  mmu_interval_notifier_insert, mmu_interval_notifier_remove, mmu_interval_read_begin, mmu_interval_read_retry,
  mmu_interval_check_retry, mmu_interval_set_seq, mmu_notifier_register, notifierSubscriptionsOf,
  mmu_interval_notifier_insert_locked, mmu_notifier_range_init, mmu_notifier_invalidate_range_start_nonblock,
} from '../../mm/mmu_notifier.js';
import { MMU_NOTIFY_UNMAP } from '../../include/linux/mmu_notifier.js';
import { EAGAIN } from '../../include/uapi/asm-generic/errno.js';
import {
  mmu_notifier_event_names, type mmu_interval_notifier, type mmu_interval_notifier_ops, type mmu_notifier,
} from '../../include/linux/mmu_notifier.js';
import { Scheduler, cond_resched } from '../../lib/sim/sched.js';
import { completion, init_completion, complete, wait_for_completion } from '../../lib/locking/completion.js';
import { kmemleak_exempt } from '../leakcheck/uvu.js';
import { mutex, mutex_lock, mutex_unlock } from '../../lib/locking/mutex.js';
import { lockdep_warnings } from '../../lib/locking/lockdep.js';
import { alloc_page, alloc_page_sleepable, put_page } from '../../mm/page_alloc.js';
import { GFP_KERNEL, GFP_NOWAIT } from '../../include/linux/gfp.js';
import type { page } from '../../include/linux/mm_types.js';

const t = suite('mm/mmu_notifier');
let p: Process;
t.before.each(() => { p = boot(); });

const hex = (n: number) => n.toString(16);

function interval(p: Process, start: number, len: number, ops: mmu_interval_notifier_ops): mmu_interval_notifier {
  const sub = { start: 0, last: 0, invalidate_seq: 0 } as unknown as mmu_interval_notifier;
  assert.is(runAs(p.task, mmu_interval_notifier_insert(sub, p.mm, start, len, ops)), 0);
  return sub;
}

t('each core path sends its event over the exact range, start before end', () => {
  const a = p.mmap(0, 4 * 4096, RW, ANON);
  p.fill32(a, 4 * 4096, 0);
  const seen = recordNotifier(p);
  p.mprotect(a, 4096, PROT_READ);
  p.madvise(a + 4096, 4096, MADV_DONTNEED);
  p.fork();
  p.write32(a + 2 * 4096, 1);       /* COW in the parent */
  p.munmap(a + 3 * 4096, 4096);
  assert.equal(starts(seen), [
    `PROTECTION_VMA ${hex(a)}-${hex(a + 4096)}`,
    `CLEAR ${hex(a + 4096)}-${hex(a + 8192)}`,
    `PROTECTION_PAGE ${hex(a)}-${hex(a + 4096)}`,              /* fork: private read-only is still a COW mapping (VM_MAYWRITE) */
    `PROTECTION_PAGE ${hex(a + 4096)}-${hex(a + 4 * 4096)}`,
    `CLEAR ${hex(a + 2 * 4096)}-${hex(a + 3 * 4096)}`,
    `UNMAP ${hex(a + 3 * 4096)}-${hex(a + 4 * 4096)}`,
  ]);
  for (let i = 0; i < seen.length; i += 2) {
    assert.is(seen[i].phase, 'start');
    assert.is(seen[i + 1].phase, 'end');
    assert.is(seen[i + 1].start, seen[i].start);
  }
});

t('exit releases whole-mm notifiers and sends RELEASE to interval notifiers', () => {
  const a = p.mmap(0, 4096, RW, ANON);
  p.write32(a, 1);
  const events: string[] = [];
  const sub: mmu_notifier = { mm: null, ops: { *release() { events.push('release'); } } };
  runAs(p.task, mmu_notifier_register(sub, p.mm));
  interval(p, a, 4096, { *invalidate(s, r, seq) { mmu_interval_set_seq(s, seq); events.push(mmu_notifier_event_names[r.event]); return true; } });
  p.exit(0);
  assert.equal(events, ['RELEASE', 'release', 'UNMAP']);
});

t('interval notifiers are called only for overlapping invalidations, with an odd sequence', () => {
  const a = p.mmap(0, 4 * 4096, RW, ANON);
  p.fill32(a, 4 * 4096, 0);
  const calls: { start: number; seq: number }[] = [];
  const sub = interval(p, a + 2 * 4096, 2 * 4096, {
    *invalidate(s, r, seq) { mmu_interval_set_seq(s, seq); calls.push({ start: r.start, seq }); return true; },
  });
  const subs = notifierSubscriptionsOf(p.mm)!;
  const seq0 = runAs(p.task, mmu_interval_read_begin(sub));
  p.madvise(a, 4096, MADV_DONTNEED);
  assert.is(calls.length, 0, 'no overlap');
  assert.not.ok(mmu_interval_read_retry(sub, seq0));
  p.madvise(a + 3 * 4096, 4096, MADV_DONTNEED);
  assert.is(calls.length, 1);
  assert.is(calls[0].seq & 1, 1, 'odd while invalidating');
  assert.is(subs.invalidate_seq & 1, 0, 'even again afterwards');
  assert.ok(mmu_interval_read_retry(sub, seq0), 'the reader must retry');
  assert.ok(mmu_interval_check_retry(sub, seq0));
  const seq1 = runAs(p.task, mmu_interval_read_begin(sub));
  assert.not.ok(mmu_interval_read_retry(sub, seq1));
  runAs(p.task, mmu_interval_notifier_remove(sub));
  p.madvise(a + 3 * 4096, 4096, MADV_DONTNEED);
  assert.is(calls.length, 1, 'removed: not called again');
});

t('read_begin sleeps while an invalidation of its range is in flight; remove and insert are deferred', () => {
  kmemleak_exempt('its notifier waits on a one-shot completion in every invalidation, so exit would block');
  const a = p.mmap(0, 2 * 4096, RW, ANON);
  p.fill32(a, 2 * 4096, 0);
  const log: string[] = [];
  const gate = new completion();
  init_completion(gate);
  let late: mmu_interval_notifier | null = null;
  const sub = interval(p, a, 2 * 4096, {
    *invalidate(s, _r, seq) {
      mmu_interval_set_seq(s, seq);
      log.push('invalidate');
      yield* wait_for_completion(gate);
      log.push('invalidate done');
      return true;
    },
  });
  const s = new Scheduler();
  s.spawn('munmap', function* () { yield* p.sys.munmap(a, 4096); log.push('munmap returned'); }, 'user', p.task);
  s.spawn('reader', function* () {
    const seq = yield* mmu_interval_read_begin(sub);
    log.push(`read_begin ${seq & 1 ? 'odd' : 'even'}`);
  }, 'kthread');
  s.spawn('inserter', function* () {
    late = { start: 0, last: 0, invalidate_seq: 0 } as unknown as mmu_interval_notifier;
    const subs = notifierSubscriptionsOf(p.mm)!;
    /* the unmapper holds mmap_lock for write; a driver would insert under it: insert_locked */
    yield* cond_resched();
    mmu_interval_notifier_insert_locked(late!, p.mm, a, 4096, { *invalidate() { return true; } });
    log.push(`inserted deferred=${subs.deferred_list.length}`);
    complete(gate);
  }, 'kthread');
  s.run();
  assert.equal(log, ['invalidate', 'inserted deferred=1', 'invalidate done', 'munmap returned', 'read_begin odd']);
  const subs = notifierSubscriptionsOf(p.mm)!;
  assert.is(subs.deferred_list.length, 0);
  assert.ok(subs.itree.contains(late!), 'the deferred insert was applied at invalidate_range_end');
});


t('a failing non-blockable start still calls every other start, then every end (mn_hlist_invalidate_range_start)', () => {
  const calls: string[] = [];
  const failing: mmu_notifier = {
    mm: null,
    ops: { *invalidate_range_start() { calls.push('A start'); return -EAGAIN; } },   /* may fail: so it has no end */
  };
  const ok = (name: string): mmu_notifier => ({
    mm: null,
    ops: {
      *invalidate_range_start() { calls.push(`${name} start`); return 0; },
      *invalidate_range_end() { calls.push(`${name} end`); },
    },
  });
  runAs(p.task, mmu_notifier_register(failing, p.mm));
  runAs(p.task, mmu_notifier_register(ok('B'), p.mm));
  runAs(p.task, mmu_notifier_register(ok('C'), p.mm));
  const range = mmu_notifier_range_init(MMU_NOTIFY_UNMAP, 0, p.mm, 0x10000, 0x20000);
  assert.is(runAs(p.task, mmu_notifier_invalidate_range_start_nonblock(range)), -EAGAIN);
  assert.equal(calls, ['A start', 'B start', 'C start', 'B end', 'C end']);
});

/*
 * The fs_reclaim lockdep class (mm/page_alloc.ts): a blockable
 * invalidation holds it around the callbacks, every allocation that may
 * reclaim touches it. A driver that allocates with GFP_KERNEL while
 * holding the mutex its invalidate callback takes would deadlock the day
 * reclaim picks one of its pages: lockdep reports it at once, as Linux's
 * fs_reclaim map does; GFP_NOWAIT under the mutex (test_hmm.c's
 * GFP_ATOMIC) is not reported.
 */
t('lockdep: a GFP_KERNEL allocation under a lock the invalidate callback takes is a possible deadlock with reclaim', () => {
  const drv = new mutex('drv->mutex');
  const a = p.mmap(0, 4 * 4096, RW, ANON);
  p.fill32(a, 4 * 4096, 1);
  interval(p, a, 4 * 4096, {
    *invalidate(s, _r, seq) { yield* mutex_lock(drv); mmu_interval_set_seq(s, seq); mutex_unlock(drv); return true; },
  });
  assert.is(p.madvise(a, 4096, MADV_DONTNEED), 0);        /* a blockable invalidation: fs_reclaim -> drv->mutex */
  const held: page[] = [];
  runAs(p.task, (function* () {
    yield* mutex_lock(drv);
    held.push(alloc_page(GFP_NOWAIT)!);                  /* cannot reclaim: no order with fs_reclaim */
    mutex_unlock(drv);
  })());
  assert.equal(lockdep_warnings(), [], 'GFP_NOWAIT under the lock is fine');
  runAs(p.task, (function* () {
    yield* mutex_lock(drv);
    held.push((yield* alloc_page_sleepable(GFP_KERNEL))!);   /* may reclaim, and reclaim may need drv->mutex */
    mutex_unlock(drv);
  })());
  assert.is(lockdep_warnings().length, 1);
  assert.match(lockdep_warnings()[0]!, /takes fs_reclaim while holding drv->mutex; the order fs_reclaim -> drv->mutex was seen before/);
  for (const f of held) put_page(f);
});

t.run();
