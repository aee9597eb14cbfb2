/*
 * test/lib/sim/explore.test.ts - systematic interleaving search
 * (lib/sim/explore.ts) and replay of what it finds.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Scheduler, cond_resched, explore, resetScheduler, DeadlockError, type Sleepable } from '../../../lib/sim/sched.js';
import { countPreemptions } from '../../../lib/sim/explore.js';
import { resetLockdep, lockdep_warnings } from '../../../lib/locking/lockdep.js';
import { mutex, mutex_lock, mutex_unlock } from '../../../lib/locking/mutex.js';

test.before.each(() => {
  resetScheduler();
  resetLockdep();
});

/* Two threads increment a shared counter with read; cond_resched; write. */
function lostUpdate(world: { counter: number }) {
  return (s: Scheduler) => {
    world.counter = 0;
    const inc = function* (): Sleepable {
      const v = world.counter;
      yield* cond_resched();
      world.counter = v + 1;
    };
    s.spawn('inc1', inc);
    s.spawn('inc2', inc);
  };
}

test('explore finds the lost-update race and its choices replay to the same failure', () => {
  const world = { counter: 0 };
  const check = () => assert.is(world.counter, 2, 'counter after two increments');
  const r = explore(lostUpdate(world), { check });
  assert.ok(r.failure !== null, 'race found');
  assert.is(r.complete, false);
  assert.match(String((r.failure!.error as Error).message), /counter after two increments/);
  assert.is(r.failure!.trace, 'inc1 -> inc2 -> inc1');
  /* replay */
  const s = new Scheduler({ mode: 'enumerate', choices: r.failure!.choices });
  lostUpdate(world)(s);
  s.run();
  assert.is(world.counter, 1, 'the replay loses the same update');
  assert.equal(s.choicesMade, r.failure!.choices);
  assert.is(s.formatSchedule(), r.failure!.trace);
  let failed = false;
  try { check(); } catch { failed = true; }   /* assert.throws rethrows uvu assertions */
  assert.ok(failed, 'the check fails on the replay too');
});

/* @n threads, each doing @blocks atomic blocks separated by cond_resched(). */
function blocks(n: number, k: number, orders: Set<string>) {
  return (s: Scheduler) => {
    const log: string[] = [];
    for (let t = 0; t < n; t++) {
      const name = String.fromCharCode(65 + t);
      s.spawn(name, function* () {
        for (let i = 0; i < k; i++) {
          if (i > 0) yield* cond_resched();
          log.push(name + i);
        }
      });
    }
    s.run();
    orders.add(log.join(''));
  };
}

test('explore with no bug runs every interleaving exactly once', () => {
  /* 2 threads x 2 blocks: 4!/(2!2!) = 6 interleavings */
  let orders = new Set<string>();
  let r = explore(blocks(2, 2, orders));
  assert.equal({ runs: r.runs, complete: r.complete, failure: r.failure }, { runs: 6, complete: true, failure: null });
  assert.is(orders.size, 6);
  /* 3 threads x 2 blocks: 6!/(2!2!2!) = 90 */
  orders = new Set<string>();
  r = explore(blocks(3, 2, orders));
  assert.is(r.runs, 90);
  assert.ok(r.complete);
  assert.is(orders.size, 90);
  /* 2 threads x 3 blocks: 6!/(3!3!) = 20 */
  orders = new Set<string>();
  r = explore(blocks(2, 3, orders));
  assert.is(r.runs, 20);
  assert.is(orders.size, 20);
});

test('the preemption bound limits the search: 0 -> thread orders only, 1 -> 4 of 6', () => {
  let orders = new Set<string>();
  let r = explore(blocks(2, 2, orders), { preemptionBound: 0 });
  assert.is(r.runs, 2);
  assert.ok(r.complete);
  assert.equal([...orders].sort(), ['A0A1B0B1', 'B0B1A0A1']);
  orders = new Set<string>();
  r = explore(blocks(2, 2, orders), { preemptionBound: 1 });
  assert.is(r.runs, 4);
  assert.equal([...orders].sort(), ['A0A1B0B1', 'A0B0B1A1', 'B0A0A1B1', 'B0B1A0A1']);
  orders = new Set<string>();
  r = explore(blocks(3, 2, orders), { preemptionBound: 0 });
  assert.is(r.runs, 6, '3! thread orders');
});

test('maxRuns stops the search early and says it is incomplete', () => {
  const r = explore(blocks(3, 2, new Set()), { maxRuns: 10 });
  assert.is(r.runs, 10);
  assert.is(r.complete, false);
  assert.is(r.failure, null);
});

test('explore finds an ABBA deadlock and reports both locks and the cycle', () => {
  const abba = (s: Scheduler) => {
    const a = new mutex('mmap_lock');
    const b = new mutex('ptl');
    s.spawn('A', function* () {
      yield* mutex_lock(a); yield* cond_resched(); yield* mutex_lock(b);
      mutex_unlock(b); mutex_unlock(a);
    });
    s.spawn('B', function* () {
      yield* mutex_lock(b); yield* cond_resched(); yield* mutex_lock(a);
      mutex_unlock(a); mutex_unlock(b);
    });
  };
  const r = explore(abba);
  assert.ok(r.failure);
  const e = r.failure!.error as DeadlockError;
  assert.instance(e, DeadlockError);
  assert.match(e.message, /thread "A" \(id 1\) waits for mutex ptl held by "B"/);
  assert.match(e.message, /thread "B" \(id 2\) waits for mutex mmap_lock held by "A"/);
  assert.match(e.message, /cycle: thread "A" holds mmap_lock waits for ptl; thread "B" holds ptl waits for mmap_lock/);
  assert.equal(e.cycle!.map((t) => t.name), ['A', 'B']);
  assert.is(r.runs, 2, 'found on the first preemption tried');
  /* lockdep saw the inversion too, in the run that did not deadlock */
  assert.ok(lockdep_warnings().some((w) => /takes mmap_lock while holding ptl; the order mmap_lock -> ptl was seen before/.test(w)));
  /* replay deadlocks the same way */
  const s = new Scheduler({ mode: 'enumerate', choices: r.failure!.choices });
  abba(s);
  assert.throws(() => s.run(), (x: Error) => x instanceof DeadlockError && x.message === e.message);
  assert.is(countPreemptions(s), 1);
});

test('explore runs the scenario itself or accepts a scenario that called run()', () => {
  let n = 0;
  const r = explore((s) => { s.spawn('solo', function* () { n++; }); });
  assert.equal([r.runs, r.complete, n], [1, true, 1]);
});

test('a replay whose scenario changed is reported as diverged', () => {
  const s = new Scheduler({ mode: 'enumerate', choices: [5] });
  s.spawn('A', function* () {});
  s.spawn('B', function* () {});
  assert.throws(() => s.run(), /replay diverged at choice 0/);
});

test.run();
