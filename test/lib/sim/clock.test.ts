/*
 * test/lib/sim/clock.test.ts - per-thread clocks, Lamport catch-up at
 * wake-up, timers, and the cost model (lib/sim/clock.ts, costs.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Scheduler, current, runSync, resetScheduler, wake_up_process, cond_resched, type Thread } from '../../../lib/sim/sched.js';
import { charge, now, machineTime, schedule_timeout, msleep, usleep_range, ndelay, formatNs, NSEC_PER_MSEC } from '../../../lib/sim/clock.js';
import { copy_cost_ns, PCIE_BW, SYSTEM_MEMCPY_BW, PAGE_ZERO_NS, PAGE_TABLE_WALK_NS, MINOR_FAULT_NS, GPU_FAR_FAULT_NS, HMM_RANGE_DEFAULT_TIMEOUT_NS } from '../../../lib/sim/costs.js';
import { resetLockdep } from '../../../lib/locking/lockdep.js';
import { mutex, mutex_lock, mutex_unlock } from '../../../lib/locking/mutex.js';

test.before.each(() => {
  resetScheduler();
  resetLockdep();
});

test('charge advances only the running thread and now() reads it', () => {
  charge(100);
  ndelay(5);
  assert.is(now(), 105);
  assert.throws(() => charge(-1), /negative/);
  const s = new Scheduler();
  const a = s.spawn('A', function* () { charge(1_000); });
  const b = s.spawn('B', function* () { charge(50); });
  s.run();
  assert.is(a.vtime, 1_105, 'spawned threads start at their creator\'s clock');
  assert.is(b.vtime, 155);
  assert.is(now(), 105, 'boot clock untouched');
  assert.is(machineTime(), 1_105);
});

test('a woken thread\'s clock catches up with its waker (mutex hand-off)', () => {
  const s = new Scheduler();
  const m = new mutex('m');
  let got = -1;
  s.spawn('holder', function* () {
    yield* mutex_lock(m);
    charge(5_000);
    yield* msleep(1);                    /* lets the waiter queue up */
    mutex_unlock(m);                     /* at 5000 + 1 ms */
  });
  s.spawn('waiter', function* () {
    charge(10);
    yield* mutex_lock(m);
    got = now();
    mutex_unlock(m);
  });
  s.run();
  assert.is(got, 5_000 + NSEC_PER_MSEC);
});

test('a wake-up never moves a clock backwards', () => {
  const s = new Scheduler();
  let sleeper: Thread | null = null;
  s.spawn('sleeper', function* () {
    sleeper = current();
    charge(9_000);
    const left = yield* schedule_timeout(1_000_000);
    assert.is(left, 1_000_000 - 0, 'woken early at its own time: nothing elapsed');
  });
  s.spawn('waker', function* () { charge(10); wake_up_process(sleeper!); });
  s.run();
  assert.is(sleeper!.vtime, 9_000);
});

test('a thread that sleeps again right after its timer woke it wakes once per sleep, at the right times', () => {
  const s = new Scheduler();
  const woke: number[] = [];
  s.spawn('napper', function* () {
    for (let i = 0; i < 3; i++) { yield* schedule_timeout(20_000); woke.push(now()); }
  });
  s.spawn('other', function* () { yield* schedule_timeout(5_000); });
  s.run();
  assert.equal(woke, [20_000, 40_000, 60_000]);
});

test('schedule_timeout and msleep under runSync just advance the clock', () => {
  assert.is(runSync(schedule_timeout(2_500)), 0);
  assert.is(now(), 2_500);
  runSync(msleep(3));
  assert.is(now(), 2_500 + 3 * NSEC_PER_MSEC);
  runSync(usleep_range(10, 20));
  assert.is(now(), 2_500 + 3 * NSEC_PER_MSEC + 10_000);
  assert.is(runSync(schedule_timeout(0)), 0);
});

test('timed sleepers wake in deadline order, at their deadlines, when nothing else runs', () => {
  const s = new Scheduler();
  const log: string[] = [];
  s.spawn('slow', function* () { yield* msleep(5); log.push(`slow@${now()}`); });
  s.spawn('fast', function* () { yield* msleep(2); log.push(`fast@${now()}`); });
  s.run();
  assert.equal(log, [`fast@${2 * NSEC_PER_MSEC}`, `slow@${5 * NSEC_PER_MSEC}`]);
  assert.is(machineTime(), 5 * NSEC_PER_MSEC);
});

test('a sleeper wakes once every runnable clock has passed its deadline', () => {
  const s = new Scheduler({ mode: 'random', seed: 3 });
  const log: string[] = [];
  s.spawn('sleeper', function* () { yield* schedule_timeout(1_000); log.push(`woke@${now()}`); });
  s.spawn('worker', function* () {
    for (let i = 0; i < 5; i++) { charge(400); log.push(`work@${now()}`); yield* cond_resched(); }
  });
  s.run();
  const woke = log.indexOf('woke@1000');
  assert.ok(woke > log.indexOf('work@1200') , `woke after the worker passed 1000 ns: ${log.join(' ')}`);
});

test('copy_cost_ns and the cited constants', () => {
  assert.is(copy_cost_ns(0, PCIE_BW), 0);
  assert.is(copy_cost_ns(4096, PCIE_BW), 256, '4 KiB at 16 GB/s');
  assert.is(copy_cost_ns(2 * 1024 * 1024, PCIE_BW), 131_072, '2 MiB at 16 GB/s');
  assert.is(copy_cost_ns(4096, SYSTEM_MEMCPY_BW), PAGE_ZERO_NS);
  assert.is(copy_cost_ns(1, 3e9), 1, 'rounded up');
  assert.is(MINOR_FAULT_NS, 1_400);
  assert.is(GPU_FAR_FAULT_NS, 45_000);
  assert.ok(PAGE_TABLE_WALK_NS > 300);
  assert.is(HMM_RANGE_DEFAULT_TIMEOUT_NS, 1e9);
});

test('formatNs prints seconds with microsecond digits', () => {
  assert.is(formatNs(12_345_678_901), '12.345678');
  assert.is(formatNs(999), '0.000000');
});

test('machineTime is reset with the scheduler', () => {
  charge(77);
  assert.is(machineTime(), 77);
  resetScheduler();
  assert.is(machineTime(), 0);
});

test.run();
