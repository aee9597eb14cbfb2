/*
 * test/lib/locking/rwsem.test.ts - reader/writer semaphores and seqcounts
 * (lib/locking/rwsem.ts, seqlock.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Scheduler, current, runSync, resetScheduler, sched_yield, explore, DeadlockError, KernelBugError } from '../../../lib/sim/sched.js';
import { resetLockdep } from '../../../lib/locking/lockdep.js';
import {
  rw_semaphore, down_read, down_read_trylock, up_read, down_write, down_write_trylock, up_write,
  downgrade_write, rwsem_is_locked, rwsem_assert_held, rwsem_assert_held_write,
} from '../../../lib/locking/rwsem.js';
import {
  seqcount_t, raw_write_seqcount_begin, raw_write_seqcount_end, read_seqcount_begin, read_seqcount_retry,
  raw_read_seqcount, write_seqcount_invalidate,
} from '../../../lib/locking/seqlock.js';

test.before.each(() => {
  resetScheduler();
  resetLockdep();
});

test('uncontended down_read and down_write finish on their first step', () => {
  const s = new rw_semaphore('mmap_lock');
  assert.ok(down_read(s).next().done);
  assert.ok(down_read(s).next().done, 'recursive read with no writer queued');
  assert.is(s.readers, 2);
  assert.equal([...s.reader_owners.entries()].map(([t, n]) => [t.name, n]), [['boot', 2]]);
  rwsem_assert_held(s);
  assert.throws(() => rwsem_assert_held_write(s), /does not hold rwsem mmap_lock for write/);
  up_read(s); up_read(s);
  assert.not.ok(rwsem_is_locked(s));
  assert.ok(down_write(s).next().done);
  rwsem_assert_held_write(s);
  up_write(s);
  assert.throws(() => up_read(s), (e: Error) => e instanceof KernelBugError && /does not hold rwsem mmap_lock for read/.test(e.message));
  assert.throws(() => up_write(s), /does not hold rwsem mmap_lock for write/);
});

test('readers share, a writer excludes readers and writers', () => {
  const sched = new Scheduler();
  const s = new rw_semaphore('mmap_lock');
  const log: string[] = [];
  const reader = (n: string) => function* () {
    yield* down_read(s);
    log.push(`${n}+`);
    yield* sched_yield();
    log.push(`${n}-`);
    up_read(s);
  };
  sched.spawn('R1', reader('R1'));
  sched.spawn('R2', reader('R2'));
  sched.spawn('W', function* () {
    yield* down_write(s);
    log.push(`W+ readers=${s.readers}`);
    yield* sched_yield();
    log.push('W-');
    up_write(s);
  });
  sched.spawn('R3', reader('R3'));
  sched.run();
  assert.equal(log, ['R1+', 'R2+', 'R1-', 'R2-', 'W+ readers=0', 'W-', 'R3+', 'R3-']);
});

test('a released read hold is no hold: holders, asserts and a later down_write of the same thread', () => {
  const sched = new Scheduler();
  const s = new rw_semaphore('mmap_lock');
  const log: string[] = [];
  sched.spawn('W', function* () {
    yield* down_read(s);
    up_read(s);                 /* W read and released: it no longer holds the lock */
    assert.throws(() => rwsem_assert_held(s), /does not hold rwsem mmap_lock/);
    assert.throws(() => up_read(s), /does not hold rwsem mmap_lock for read/);
    yield* sched_yield();       /* R takes it for read */
    yield* down_write(s);       /* contended: W must queue, not be taken for a reader of itself */
    log.push(`W+ readers=${s.readers}`);
    up_write(s);
  });
  sched.spawn('R', function* () {
    yield* down_read(s);
    log.push(`R+ holders=${s.holders().map((t) => t.name).join(',')}`);
    yield* sched_yield();
    up_read(s);
  });
  sched.run();
  assert.equal(log, ['R+ holders=R', 'W+ readers=0']);
  assert.equal(s.holders(), []);
});

test('writer preference: a queued writer blocks new readers, who get in after it', () => {
  const sched = new Scheduler();
  const s = new rw_semaphore('mmap_lock');
  const log: string[] = [];
  sched.spawn('R1', function* () {
    yield* down_read(s);
    yield* sched_yield();                  /* W queues */
    yield* sched_yield();                  /* R2 tries */
    assert.equal(s.wait_list.map((w) => `${w.thread.name}:${w.type}`), ['W:write', 'R2:read']);
    log.push('R1 up');
    up_read(s);
    assert.is(s.writer!.name, 'W', 'handed to the writer first');
  });
  sched.spawn('W', function* () { yield* down_write(s); log.push('W in'); up_write(s); });
  sched.spawn('R2', function* () {
    assert.not.ok(down_read_trylock(s), 'trylock refuses while a writer waits');
    yield* down_read(s);
    log.push('R2 in');
    up_read(s);
  });
  sched.run();
  assert.equal(log, ['R1 up', 'W in', 'R2 in']);
});

test('downgrade_write keeps writers out and lets queued readers in', () => {
  const sched = new Scheduler();
  const s = new rw_semaphore('mmap_lock');
  const log: string[] = [];
  sched.spawn('W', function* () {
    yield* down_write(s);
    yield* sched_yield();
    downgrade_write(s);
    log.push(`downgraded readers=${s.readers}`);
    assert.not.ok(down_write_trylock(s));
    yield* sched_yield();
    up_read(s);
  });
  sched.spawn('R', function* () { yield* down_read(s); log.push('R in'); up_read(s); });
  sched.run();
  assert.equal(log, ['downgraded readers=2', 'R in']);
  assert.not.ok(rwsem_is_locked(s));
});

test('down_read while holding the write lock, or down_write while reading, is a self-deadlock', () => {
  const s = new rw_semaphore('mmap_lock');
  runSync(down_write(s));
  assert.throws(() => runSync(down_read(s)), (e: Error) => e instanceof DeadlockError && /for read while holding it for write/.test(e.message));
  up_write(s);
  runSync(down_read(s));
  assert.throws(() => runSync(down_write(s)), /for write while holding it/);
  up_read(s);
  assert.is(s.wait_list.length, 0);
});

test('recursive down_read with a writer queued in between deadlocks; explore finds it', () => {
  const r = explore((sched) => {
    const s = new rw_semaphore('mmap_lock');
    sched.spawn('R', function* () {
      yield* down_read(s);
      yield* sched_yield();
      yield* down_read(s);
      up_read(s); up_read(s);
    });
    sched.spawn('W', function* () { yield* down_write(s); up_write(s); });
  });
  assert.ok(r.failure);
  assert.match(String(r.failure!.error), /self-deadlock: thread "R" blocks on rwsem mmap_lock which it holds/);
});

test('a writer stuck behind a reader that waits for it is reported as a cycle', () => {
  const sched = new Scheduler();
  const s = new rw_semaphore('mmap_lock');
  const t = new rw_semaphore('i_mmap_rwsem');
  sched.spawn('A', function* () { yield* down_read(s); yield* sched_yield(); yield* down_write(t); });
  sched.spawn('B', function* () { yield* down_write(t); yield* sched_yield(); yield* down_write(s); });
  assert.throws(() => sched.run(), (e: Error) => e instanceof DeadlockError &&
    /cycle: thread "A" holds mmap_lock waits for i_mmap_rwsem; thread "B" holds i_mmap_rwsem waits for mmap_lock/.test(e.message));
});

test('seqcount: a read across a write must retry, one before or after need not', () => {
  const sc = new seqcount_t('notifier_seq');
  let start = read_seqcount_begin(sc);
  assert.not.ok(read_seqcount_retry(sc, start));
  raw_write_seqcount_begin(sc);
  assert.is(raw_read_seqcount(sc) & 1, 1, 'odd during a write');
  const during = read_seqcount_begin(sc);
  assert.is(during, 0, 'begin masks the write bit instead of spinning');
  assert.ok(read_seqcount_retry(sc, during), 'a read begun during a write retries');
  raw_write_seqcount_end(sc);
  assert.ok(read_seqcount_retry(sc, start), 'a read spanning a write retries');
  assert.ok(read_seqcount_retry(sc, during));
  start = read_seqcount_begin(sc);
  assert.is(start, 2);
  assert.not.ok(read_seqcount_retry(sc, start));
  write_seqcount_invalidate(sc);
  assert.ok(read_seqcount_retry(sc, start));
  assert.throws(() => raw_write_seqcount_end(sc), /write end without begin/);
  raw_write_seqcount_begin(sc);
  assert.throws(() => raw_write_seqcount_begin(sc), /nested or concurrent write/);
  assert.is(current().name, 'boot');
});

test.run();
