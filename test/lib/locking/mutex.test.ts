/*
 * test/lib/locking/mutex.test.ts - mutexes and spinlocks
 * (lib/locking/mutex.ts, spinlock.ts, lockdep.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Scheduler, current, runSync, resetScheduler, sched_yield, DeadlockError, KernelBugError } from '../../../lib/sim/sched.js';
import { charge, now } from '../../../lib/sim/clock.js';
import { resetLockdep, lockdep_warnings, lockdep_assert_not_held } from '../../../lib/locking/lockdep.js';
import {
  mutex, mutex_lock, mutex_trylock, mutex_unlock, mutex_is_locked, lockdep_assert_held,
} from '../../../lib/locking/mutex.js';
import {
  spinlock_t, spin_lock, spin_unlock, spin_trylock, spin_is_locked, assert_spin_locked,
  spin_lock_irqsave, spin_unlock_irqrestore,
} from '../../../lib/locking/spinlock.js';

test.before.each(() => {
  resetScheduler();
  resetLockdep();
});

test('uncontended mutex_lock completes on its first step: no scheduler round trip', () => {
  const m = new mutex('dmirror->mutex');
  const g = mutex_lock(m);
  const r = g.next();
  assert.ok(r.done, 'the generator finished without yielding');
  assert.is(m.owner, current());
  assert.ok(mutex_is_locked(m));
  lockdep_assert_held(m);
  mutex_unlock(m);
  assert.not.ok(mutex_is_locked(m));
  assert.throws(() => lockdep_assert_held(m), /does not hold mutex dmirror->mutex/);
  /* and inside a scheduler: one step per thread */
  const s = new Scheduler({ mode: 'random', seed: 1 });
  s.spawn('A', function* () { yield* mutex_lock(m); mutex_unlock(m); });
  s.run();
  assert.is(s.steps, 1);
});

test('contended waiters are handed the mutex in FIFO order', () => {
  const s = new Scheduler();
  const m = new mutex('m');
  const log: string[] = [];
  s.spawn('A', function* () {
    yield* mutex_lock(m);
    log.push('A in');
    yield* sched_yield();             /* B and C queue up */
    yield* sched_yield();
    assert.equal(m.wait_list.map((t) => t.name), ['B', 'C']);
    mutex_unlock(m);
    assert.is(m.owner!.name, 'B', 'handed to B at unlock');
    assert.not.ok(mutex_trylock(m), 'nobody can barge in');
    log.push('A out');
  });
  for (const n of ['B', 'C']) {
    s.spawn(n, function* () {
      yield* mutex_lock(m);
      log.push(`${n} in`);
      mutex_unlock(m);
    });
  }
  s.run();
  assert.equal(log, ['A in', 'A out', 'B in', 'C in']);
  assert.is(m.owner, null);
});

test('the waiter resumes at the unlocker\'s time', () => {
  const s = new Scheduler();
  const m = new mutex('m');
  let at = 0;
  s.spawn('A', function* () { yield* mutex_lock(m); yield* sched_yield(); charge(7_000); mutex_unlock(m); });
  s.spawn('B', function* () { charge(3); yield* mutex_lock(m); at = now(); mutex_unlock(m); });
  s.run();
  assert.is(at, 7_000);
});

test('mutex_lock of a mutex one holds is a self-deadlock, reported at once', () => {
  const m = new mutex('mmap_lock');
  runSync(mutex_lock(m));
  assert.throws(() => runSync(mutex_lock(m)), (e: Error) =>
    e instanceof DeadlockError && /self-deadlock.*"boot".*mutex mmap_lock/.test(e.message) && /cycle: thread "boot" holds mmap_lock waits for mmap_lock/.test(e.message));
  assert.is(m.wait_list.length, 0);
});

test('mutex_unlock by a thread that does not own it is a BUG', () => {
  const m = new mutex('m');
  assert.throws(() => mutex_unlock(m), (e: Error) => e instanceof KernelBugError && /held by nobody/.test(e.message));
  const s = new Scheduler();
  s.spawn('owner', function* () { yield* mutex_lock(m); yield* sched_yield(); mutex_unlock(m); });
  s.spawn('thief', function* () { mutex_unlock(m); });
  assert.throws(() => s.run(), /thread "thief" releases mutex m held by "owner"/);
});

test('an ABBA deadlock under run-to-completion names both mutexes and the cycle', () => {
  const s = new Scheduler();
  const a = new mutex('lockA');
  const b = new mutex('lockB');
  s.spawn('T1', function* () { yield* mutex_lock(a); yield* sched_yield(); yield* mutex_lock(b); });
  s.spawn('T2', function* () { yield* mutex_lock(b); yield* sched_yield(); yield* mutex_lock(a); });
  try {
    s.run();
    assert.unreachable();
  } catch (e) {
    assert.instance(e, DeadlockError);
    const msg = (e as Error).message;
    assert.match(msg, /^deadlock: 2 threads blocked, none can run/);
    assert.match(msg, /thread "T1" \(id 1\) waits for mutex lockB held by "T2"/);
    assert.match(msg, /cycle: thread "T1" holds lockA waits for lockB; thread "T2" holds lockB waits for lockA/);
  }
});

test('lockdep warns about an inverted order even when the run did not deadlock', () => {
  const a = new mutex('mmap_lock');
  const b = new mutex('dmirror->mutex');
  runSync(mutex_lock(a)); runSync(mutex_lock(b)); mutex_unlock(b); mutex_unlock(a);
  assert.equal(lockdep_warnings(), []);
  runSync(mutex_lock(b)); runSync(mutex_lock(a)); mutex_unlock(a); mutex_unlock(b);
  assert.is(lockdep_warnings().length, 1);
  assert.match(lockdep_warnings()[0]!, /takes mmap_lock while holding dmirror->mutex; the order mmap_lock -> dmirror->mutex was seen before/);
});

test('spin_lock disables preemption and records its owner', () => {
  const l = new spinlock_t('ptl');
  spin_lock(l);
  assert.is(current().preempt_count, 1);
  assert.is(l.owner, current());
  assert.ok(spin_is_locked(l));
  assert_spin_locked(l);
  assert.equal(current().held.map((x) => x.name), ['ptl']);
  spin_unlock(l);
  assert.is(current().preempt_count, 0);
  assert.not.ok(spin_is_locked(l));
  assert.throws(() => assert_spin_locked(l), /does not hold spinlock ptl/);
  lockdep_assert_not_held(l);
  const f = spin_lock_irqsave(l);
  spin_unlock_irqrestore(l, f);
  assert.is(current().held.length, 0);
});

test('spinlock rules: recursion, contention, foreign unlock are BUGs; trylock fails when held', () => {
  const l = new spinlock_t('ptl');
  assert.ok(spin_trylock(l));
  assert.not.ok(spin_trylock(l));
  assert.throws(() => spin_lock(l), /recursive locking of spinlock ptl/);
  const s = new Scheduler();
  s.spawn('other', function* () { spin_lock(l); });
  assert.throws(() => s.run(), /spinlock ptl wanted by "other" is held by "boot"/);
  resetScheduler();
  const l2 = new spinlock_t('l2');
  assert.throws(() => spin_unlock(l2), /releases spinlock l2 held by nobody/);
});

test('mutex_lock under a spinlock is a BUG even when uncontended', () => {
  const l = new spinlock_t('ptl');
  const m = new mutex('m');
  spin_lock(l);
  assert.throws(() => runSync(mutex_lock(m)), /sleeping function called from invalid context/);
  assert.not.ok(mutex_is_locked(m));
  spin_unlock(l);
});

test.run();
