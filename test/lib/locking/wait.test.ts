/*
 * test/lib/locking/wait.test.ts - wait queues and completions
 * (lib/locking/wait.ts, completion.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Scheduler, runSync, resetScheduler, sched_yield, DeadlockError } from '../../../lib/sim/sched.js';
import { charge, now, msleep } from '../../../lib/sim/clock.js';
import { resetLockdep } from '../../../lib/locking/lockdep.js';
import { wait_queue_head, wait_event, wait_event_timeout, wake_up, wake_up_all, waitqueue_active } from '../../../lib/locking/wait.js';
import {
  completion, init_completion, reinit_completion, complete, complete_all, wait_for_completion,
  wait_for_completion_timeout, try_wait_for_completion, completion_done,
} from '../../../lib/locking/completion.js';

test.before.each(() => {
  resetScheduler();
  resetLockdep();
});

test('wait_event returns at once when the condition holds, and sleeps until woken otherwise', () => {
  const wq = new wait_queue_head('wq');
  assert.ok(wait_event(wq, () => true).next().done, 'no yield when already true');
  const sched = new Scheduler();
  let ready = false;
  const log: string[] = [];
  sched.spawn('waiter', function* () { yield* wait_event(wq, () => ready); log.push(`waiter@${now()}`); });
  sched.spawn('waker', function* () {
    assert.ok(waitqueue_active(wq));
    wake_up(wq);                          /* spurious: condition still false */
    yield* sched_yield();
    assert.ok(waitqueue_active(wq), 'the waiter slept again');
    charge(500);
    ready = true;
    log.push('wake');
    wake_up(wq);
    assert.not.ok(waitqueue_active(wq));
  });
  sched.run();
  assert.equal(log, ['wake', 'waiter@500']);
});

test('wait_event_timeout returns 0 after the timeout with the clock advanced', () => {
  const wq = new wait_queue_head('wq');
  charge(1_000);
  assert.is(runSync(wait_event_timeout(wq, () => false, 5_000)), 0);
  assert.is(now(), 6_000);
  assert.not.ok(waitqueue_active(wq));
  const sched = new Scheduler();
  let ret = -1;
  const t = sched.spawn('w', function* () { ret = yield* wait_event_timeout(wq, () => false, 2_000_000); });
  sched.spawn('busy', function* () { charge(100); wake_up(wq); });
  sched.run();
  assert.is(ret, 0);
  assert.is(t.vtime, 6_000 + 2_000_000);
});

test('wait_event_timeout returns the time left when the condition comes true first', () => {
  const wq = new wait_queue_head('wq');
  const sched = new Scheduler();
  let ready = false;
  let ret = -1;
  sched.spawn('w', function* () { ret = yield* wait_event_timeout(wq, () => ready, 10_000); });
  sched.spawn('k', function* () { charge(2_500); ready = true; wake_up_all(wq); });
  sched.run();
  assert.is(ret, 7_500);
  assert.is(runSync(wait_event_timeout(wq, () => true, 10)), 10);
});

test('wake_up_all wakes every waiter, oldest first', () => {
  const wq = new wait_queue_head('wq');
  const sched = new Scheduler();
  let go = false;
  const log: string[] = [];
  for (const n of ['a', 'b', 'c']) sched.spawn(n, function* () { yield* wait_event(wq, () => go); log.push(n); });
  sched.spawn('k', function* () { go = true; wake_up_all(wq); log.push('k'); });
  sched.run();
  assert.equal(log, ['k', 'a', 'b', 'c']);
});

test('a missing wake_up is reported as a deadlock on the queue', () => {
  const wq = new wait_queue_head('dmirror->wq');
  const sched = new Scheduler();
  let ready = false;
  sched.spawn('w', function* () { yield* wait_event(wq, () => ready); });
  sched.spawn('k', function* () { ready = true; /* forgot wake_up */ });
  assert.throws(() => sched.run(), (e: Error) => e instanceof DeadlockError && /"w" \(id 1\) waits for wait queue dmirror->wq/.test(e.message));
});

test('complete wakes one waiter per call; complete_all releases all until reinit', () => {
  const c = new completion('dma_done');
  const sched = new Scheduler();
  const log: string[] = [];
  for (const n of ['a', 'b']) sched.spawn(n, function* () { yield* wait_for_completion(c); log.push(n); });
  sched.spawn('k', function* () {
    complete(c);
    yield* sched_yield();
    log.push(`k done=${c.done} waiters=${c.wait.length}`);
    complete(c);
  });
  sched.run();
  assert.equal(log, ['a', 'k done=0 waiters=1', 'b']);
  assert.not.ok(completion_done(c));
  complete_all(c);
  runSync(wait_for_completion(c));
  runSync(wait_for_completion(c));
  assert.ok(try_wait_for_completion(c));
  reinit_completion(c);
  assert.not.ok(try_wait_for_completion(c));
  complete(c);
  assert.ok(completion_done(c));
  assert.ok(try_wait_for_completion(c));
  assert.not.ok(completion_done(c));
  init_completion(c);
  assert.is(c.done, 0);
});

test('wait_for_completion_timeout times out with the clock advanced, or returns the time left', () => {
  const c = new completion('c');
  assert.is(runSync(wait_for_completion_timeout(c, 1_000)), 0);
  assert.is(now(), 1_000);
  const sched = new Scheduler();
  let ret = -1;
  sched.spawn('w', function* () { ret = yield* wait_for_completion_timeout(c, 1_000_000); });
  sched.spawn('k', function* () { yield* msleep(0.5); complete(c); });
  sched.run();
  assert.is(ret, 500_000);
});

test('wait_for_completion with nobody to complete it is a deadlock naming the completion', () => {
  const c = new completion('migrate_done');
  assert.throws(() => runSync(wait_for_completion(c)), /waits for completion migrate_done/);
  assert.is(c.wait.length, 0);
});

test.run();
