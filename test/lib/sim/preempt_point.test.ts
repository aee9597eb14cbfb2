/*
 * test/lib/sim/preempt_point.test.ts - the preemption-point mode of the
 * scheduler (lib/sim/sched.ts, preempt_point() and
 * Scheduler.concurrentStep): explore() reaches the windows between
 * non-sleeping steps (a lock release, a sequence-count write), the
 * existing race scenarios still finish under it, and it catches a driver
 * that records its new sequence number after releasing its lock, which
 * the sleep-only explorer cannot see.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Scheduler, resetScheduler, explore, type Sleepable } from '../../../lib/sim/sched.js';
import { mutex, mutex_lock, mutex_unlock, mutex_trylock } from '../../../lib/locking/mutex.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { MMU_NOTIFY_MIGRATE, type mmu_interval_notifier, type mmu_notifier_range } from '../../../include/linux/mmu_notifier.js';
import { mmu_interval_set_seq, mmu_notifier_range_blockable } from '../../../mm/mmu_notifier.js';
import { dpt_erase_range, type dmirror } from '../../../lib/test_hmm_devmem.js';
import {
  raceFaultVsMunmap, raceWriteVsMprotect, raceMigrateVsCpuFault, mirrorsOf, describeError, rootCause,
  resetRaceChecker, HmmRaceViolation, type MainlineRace,
} from '../../../tools/testing/races/mainline.js';
import type { task_struct } from '../../../include/linux/sched.js';

test.before.each(() => { resetScheduler(); });
test.after.each(() => { resetRaceChecker(); });

/* A writes 1 then 2 to a value, releasing a mutex between the writes; B reads it under the mutex. */
function windowScenario(seen: Set<number>) {
  return (s: Scheduler) => {
    const m = new mutex('window');
    let val = 0;
    s.spawn('A', function* (): Sleepable {
      yield* mutex_lock(m);
      val = 1;
      mutex_unlock(m);
      val = 2;                                  /* no sleep between the release and this store */
    });
    s.spawn('B', function* (): Sleepable {
      yield* mutex_lock(m);
      seen.add(val);
      mutex_unlock(m);
    });
  };
}

test('without preemption points explore() never sees the window after a lock release', () => {
  const seen = new Set<number>();
  const r = explore(windowScenario(seen));
  assert.ok(r.complete && r.failure === null);
  assert.not.ok(seen.has(1), `B saw ${[...seen]}`);
});

test('with preemption points explore() reaches the window between mutex_unlock and the next store', () => {
  const seen = new Set<number>();
  const r = explore(windowScenario(seen), { preemptPoints: true });
  assert.ok(r.complete && r.failure === null);
  assert.ok(seen.has(1), `B saw ${[...seen]}`);
  assert.ok(seen.has(0) && seen.has(2));
});

test('preempt_point() is free outside the mode: a random scheduler without it takes no point steps', () => {
  const s = new Scheduler({ mode: 'random', seed: 3 });
  windowScenario(new Set())(s);
  s.run();
  assert.is(s.pointSteps, 0);
  const p = new Scheduler({ mode: 'random', seed: 3, preemptPoints: true });
  assert.is(p.preemptPoints, true);
  assert.is(new Scheduler({ preemptPoints: true }).preemptPoints, false, 'run-to-completion ignores it');
});

function exploreWith(r: MainlineRace, preemptPoints: boolean) {
  return explore((s) => r.run(s), { ...r.bound, preemptPoints, check: () => r.check() });
}

test('the existing race scenarios still finish, and pass, with preemption points on', () => {
  for (const r of [raceFaultVsMunmap({ op: 'READ' }), raceWriteVsMprotect(), raceMigrateVsCpuFault()]) {
    const res = exploreWith(r, true);
    assert.is(res.failure, null, `${r.name}: ${res.failure ? describeError(res.failure.error) : ''}`);
    assert.ok(res.complete, `${r.name}: enumeration completes within ${r.bound.maxRuns} runs (${res.runs})`);
    assert.ok(res.runs > exploreWith(r, false).runs, `${r.name}: the points add interleavings`);
  }
});

/*
 * The mutation of issue 12: dmirror's invalidate callback records the new
 * sequence number after releasing its mutex. A device fault that takes
 * the mutex in that window passes mmu_interval_read_retry() and publishes
 * the page munmap is about to free.
 */
function* seq_after_unlock_invalidate(mni: mmu_interval_notifier, range: mmu_notifier_range,
                                      cur_seq: number): Sleepable<boolean> {
  const d = (mni as mmu_interval_notifier & { dmirror: dmirror }).dmirror;
  if (range.event === MMU_NOTIFY_MIGRATE && range.owner === d.mdevice) return true;
  if (mmu_notifier_range_blockable(range)) yield* mutex_lock(d.mutex);
  else if (!mutex_trylock(d.mutex)) return false;
  dpt_erase_range(d, Math.floor(range.start / PAGE_SIZE), Math.floor(range.end / PAGE_SIZE));
  mutex_unlock(d.mutex);
  mmu_interval_set_seq(mni, cur_seq);          /* BROKEN: outside the lock */
  return true;
}

function brokenSeqDriver(): MainlineRace {
  const base = raceFaultVsMunmap({ op: 'READ' });
  return {
    ...base,
    name: `${base.name} (driver records its seq after the unlock)`,
    run(s) {
      base.run(s);
      const task = s.threads[0]!.task as task_struct;     /* the scenario's process */
      for (const d of mirrorsOf(task.mm!)) d.notifier.ops = Object.freeze({ invalidate: seq_after_unlock_invalidate });
    },
  };
}

test('seq recorded after the lock is released: invisible to the sleep-only explorer, caught with preemption points', () => {
  const quiet = exploreWith(brokenSeqDriver(), false);
  assert.ok(quiet.complete && quiet.failure === null, 'every sleep-point interleaving passes');
  const r = brokenSeqDriver();
  const res = exploreWith(r, true);
  assert.ok(res.failure !== null, `the broken driver is caught (${res.runs} runs)`);
  assert.instance(rootCause(res.failure!.error), HmmRaceViolation, describeError(res.failure!.error));
  assert.match(res.failure!.trace ?? '', /@mutex_unlock/);
  const again = new Scheduler({ mode: 'enumerate', choices: res.failure!.choices, preemptPoints: true });
  let err: unknown = null;
  try { r.run(again); again.run(); r.check(); } catch (e) { err = e; }
  assert.instance(rootCause(err), HmmRaceViolation, 'the failure replays from its choices');
});

test.run();
