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
import { type dmirror } from '../../../lib/test_hmm_devmem.js';
import { dpt_erase_range } from '../../../lib/test_hmm_dpt.js';
import {
  raceFaultVsMunmap, raceWriteVsMprotect, raceMigrateVsCpuFault, raceForkDuringMigration, mirrorsOf, describeError, rootCause,
  resetRaceChecker, HmmRaceViolation, type MainlineRace,
} from '../../../tools/testing/races/mainline.js';
import type { task_struct } from '../../../include/linux/sched.js';
import { HMM_DMIRROR_READ, HMM_DMIRROR_MIGRATE_TO_DEV } from '../../../include/uapi/linux/test_hmm.js';
import { ENOENT } from '../../../include/uapi/asm-generic/errno.js';
import { race_mutations, resetRaceMutations } from '../../../lib/sim/mutations.js';
import { dmirror_device_get } from '../../../lib/test_hmm.js';
import { runAs } from '../../../tools/include/nolibc/nolibc.js';
import { hmm_dmirror_cmd_sys } from '../../../tools/testing/selftests/mm/hmm-tests-helpers.js';
import { bootRaceMachine, checkMirrors, PATTERN, RACE_BOUND, type RaceMachine } from '../../../tools/testing/races/mainline.js';
import { kmemleak_exempt } from '../../leakcheck/uvu.js';

test.before.each(() => { resetScheduler(); });
test.after.each(() => { resetRaceChecker(); resetRaceMutations(); });

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

/*
 * With preemption points, one preemption per run is enough for every
 * window below and keeps the enumeration complete and short; without
 * them, the scenarios' own bound (3 preemptions at sleep points) applies.
 */
const POINT_BOUND = Object.freeze({ preemptionBound: 1, maxRuns: 1000 });

function exploreWith(r: MainlineRace, preemptPoints: boolean, bound = preemptPoints ? POINT_BOUND : r.bound) {
  return explore((s) => r.run(s), { ...bound, preemptPoints, check: () => r.check() });
}

test('the existing race scenarios still finish, and pass, with preemption points on', () => {
  for (const r of [raceFaultVsMunmap({ op: 'READ' }), raceWriteVsMprotect(), raceMigrateVsCpuFault()]) {
    const res = exploreWith(r, true);
    assert.is(res.failure, null, `${r.name}: ${res.failure ? describeError(res.failure.error) : ''}`);
    assert.ok(res.complete, `${r.name}: enumeration completes within ${POINT_BOUND.maxRuns} runs (${res.runs})`);
    assert.ok(res.runs > exploreWith(r, false).runs, `${r.name}: the points add interleavings`);
  }
});

/*
 * The race mutation: dmirror's invalidate callback records the new
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
  kmemleak_exempt('a deliberately broken variant leaves its machine mid-race (a lock held, a mapping published)');
  const quiet = exploreWith(brokenSeqDriver(), false);
  assert.ok(quiet.complete && quiet.failure === null, 'every sleep-point interleaving passes');
  const r = brokenSeqDriver();
  /* two preemptions: the device thread between hmm_range_fault() and its lock, munmap's at its mutex_unlock */
  const res = exploreWith(r, true, { preemptionBound: 2, maxRuns: 1000 });
  assert.ok(res.failure !== null, `the broken driver is caught (${res.runs} runs)`);
  assert.instance(rootCause(res.failure!.error), HmmRaceViolation, describeError(res.failure!.error));
  assert.match(res.failure!.trace ?? '', /@mutex_unlock/);
  const again = new Scheduler({ mode: 'enumerate', choices: res.failure!.choices, preemptPoints: true });
  let err: unknown = null;
  try { r.run(again); again.run(); r.check(); } catch (e) { err = e; }
  assert.instance(rootCause(err), HmmRaceViolation, 'the failure replays from its choices');
});

/* device user @u's command on the page under test */
function devCmd(r: RaceMachine, u: number, request: number): Sleepable<number> {
  const x = r.users[u]!;
  return hmm_dmirror_cmd_sys(r.p, x.cmd, x.fd, request, x.buf, 1);
}

/*
 * Mutation 1: migrate_vma_collect() ends its MMU_NOTIFY_MIGRATE
 * invalidation before walking the range. Another device's READ that runs
 * in between maps the RAM page the migration then replaces: the other
 * mirror keeps a page the CPU no longer maps (the checker's comparison).
 */
function migrateVsOtherDeviceRead(): MainlineRace {
  let r: RaceMachine | null = null;
  const rets = [1, 1];
  return {
    name: 'MIGRATE_TO_DEV on device 0 vs READ on device 1',
    bound: RACE_BOUND,
    run(s) {
      r = bootRaceMachine([0, 1]);
      rets.fill(1);
      const m = r;
      s.spawn('migrate', function* () { rets[0] = yield* devCmd(m, 0, HMM_DMIRROR_MIGRATE_TO_DEV); }, 'user', m.p.task);
      s.spawn('read', function* () { rets[1] = yield* devCmd(m, 1, HMM_DMIRROR_READ); }, 'user', m.p.task);
    },
    check() {
      checkMirrors(r!.p.mm, 'at the end of the run');
      /* a page the other device holds a reference on at that moment stays behind: -ENOENT from the read-back */
      if ((rets[0] !== 0 && rets[0] !== -ENOENT) || rets[1] !== 0) throw new Error(`races: MIGRATE_TO_DEV ${rets[0]}, READ ${rets[1]}`);
      if (r!.p.read32(r!.users[1]!.buf.mirror) !== PATTERN) throw new Error('races: READ returned wrong data');
    },
  };
}

test('end of the migration invalidation before the walk: caught only with preemption points', () => {
  kmemleak_exempt('a deliberately broken variant leaves its machine mid-race (a lock held, a mapping published)');
  const ok = exploreWith(migrateVsOtherDeviceRead(), true);
  assert.ok(ok.complete && ok.failure === null, 'the real code passes every interleaving with points');
  race_mutations.end_invalidation_before_walk = true;
  const quiet = exploreWith(migrateVsOtherDeviceRead(), false);
  assert.is(quiet.failure, null, `sleep points alone miss it: ${quiet.failure ? describeError(quiet.failure.error) : ''}`);
  const res = exploreWith(migrateVsOtherDeviceRead(), true);
  assert.ok(res.failure !== null, `caught with preemption points (${res.runs} runs)`);
  assert.match(describeError(res.failure!.error), /mirror|device|stale|maps/i);
});

/*
 * Mutation 2: the CPU fault on a device-private page does not recheck,
 * under the PTE lock, the entry it read locklessly. Two CPU loads of the
 * page: the second, preempted after its read, takes a reference on a
 * device page the first one's migration already freed.
 */
function twoCpuFaultsOnDevicePage(): MainlineRace {
  let r: RaceMachine | null = null;
  const vals = [0, 0];
  return {
    name: 'two CPU loads of one device-private page',
    bound: RACE_BOUND,
    run(s) {
      r = bootRaceMachine([0]);
      const m = r;
      if (runAs(m.p.task, devCmd(m, 0, HMM_DMIRROR_MIGRATE_TO_DEV)) !== 0) throw new Error('races: setup migration failed');
      vals.fill(0);
      s.spawn('load0', function* () { vals[0] = yield* m.p.sys.load(m.addr, 4); }, 'user', m.p.task);
      s.spawn('load1', function* () { vals[1] = yield* m.p.sys.load(m.addr + 4, 4); }, 'user', m.p.task);
    },
    check() {
      checkMirrors(r!.p.mm, 'at the end of the run');
      if (vals[0] !== PATTERN || vals[1] !== PATTERN + 1) throw new Error(`races: loads returned ${vals.map((v) => v.toString(16))}`);
      const dev = dmirror_device_get(0)!;
      if (dev.calloc !== dev.cfree) throw new Error(`races: ${dev.calloc - dev.cfree} device pages still in use`);
    },
  };
}

test('no recheck of the saved PTE in the device-private CPU fault: caught only with preemption points', () => {
  kmemleak_exempt('a deliberately broken variant leaves its machine mid-race (a lock held, a mapping published)');
  const ok = exploreWith(twoCpuFaultsOnDevicePage(), true);
  assert.ok(ok.complete && ok.failure === null, 'the real code passes every interleaving with points');
  race_mutations.skip_device_private_recheck = true;
  const quiet = exploreWith(twoCpuFaultsOnDevicePage(), false);
  assert.is(quiet.failure, null, `sleep points alone miss it: ${quiet.failure ? describeError(quiet.failure.error) : ''}`);
  const res = exploreWith(twoCpuFaultsOnDevicePage(), true);
  assert.ok(res.failure !== null, `caught with preemption points (${res.runs} runs)`);
  assert.match(res.failure!.trace ?? '', /lockless read of the PTE/);
});

/*
 * Fork during MIGRATE_TO_DEV racing HMM_DMIRROR_RELEASE (session 3: passed
 * 64 runs, then memunmap_pages() waited forever). Two windows, both in
 * Linux's lib/test_hmm.c too: a migration holding a page of the chunk
 * locked is skipped by the single eviction pass and maps it afterwards
 * (fixed: evict again while pages of the chunk are in use, bounded); and a
 * page taken off the free list but not yet counted in pgmap.ref let
 * memunmap_pages() finish under the migration (fixed: the reference is
 * taken under mdevice.lock). Mutation: one eviction pass, as Linux.
 */
test('fork during migration to and from the device passes with preemption points; one eviction pass deadlocks in memunmap_pages', () => {
  kmemleak_exempt('a deliberately broken variant leaves its machine mid-race (RELEASE asleep in memunmap_pages)');
  const ok = exploreWith(raceForkDuringMigration(), true);
  assert.ok(ok.complete && ok.failure === null,
    `every interleaving passes (${ok.runs} runs): ${ok.failure ? describeError(ok.failure.error) : ''}`);
  race_mutations.single_evict_pass = true;
  const res = exploreWith(raceForkDuringMigration(), true);
  assert.ok(res.failure !== null, `caught with preemption points (${res.runs} runs)`);
  assert.match(describeError(res.failure!.error), /evict.*pgmap hmm_dmirror0 done/s);
});

test.run();
