/*
 * test/lib/locking/lockdep.test.ts - lock classes and the teardown report
 * of lib/locking/lockdep.ts: lockdep_set_class() makes every instance of a
 * per-object lock one class (an order seen on one pair holds for all), and
 * an inversion no test read fails the test at teardown
 * (test/leakcheck/uvu.ts), as a lockdep splat fails a kernel CI run.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runSync, resetScheduler } from '../../../lib/sim/sched.js';
import {
  resetLockdep, lockdep_warnings, lockdep_unseen_warnings, lockdep_set_class,
} from '../../../lib/locking/lockdep.js';
import { mutex, mutex_lock, mutex_unlock } from '../../../lib/locking/mutex.js';
import { spinlock_t, spin_lock, spin_unlock } from '../../../lib/locking/spinlock.js';

test.before.each(() => {
  resetScheduler();
  resetLockdep();
  lockdep_unseen_warnings();
});

/* take @outer then @inner, release both (spinlocks: no sleeping under them) */
function nest(outer: spinlock_t, inner: spinlock_t): void {
  spin_lock(outer);
  spin_lock(inner);
  spin_unlock(inner);
  spin_unlock(outer);
}

test('instances in one class: an order seen on one pair is an inversion on another pair', () => {
  const m = new spinlock_t('hmm_dmirror0.lock');
  const a = lockdep_set_class(new spinlock_t('ptl[mm1:4]'), 'ptlock');
  const b = lockdep_set_class(new spinlock_t('ptl[mm2:9]'), 'ptlock');
  nest(m, a);                                   /* hmm_dmirror0.lock -> ptlock */
  assert.equal(lockdep_warnings(), []);
  nest(b, m);                                   /* ptlock -> hmm_dmirror0.lock, on another PTE page */
  const w = lockdep_warnings();
  assert.is(w.length, 1);
  assert.match(w[0]!, /takes hmm_dmirror0\.lock while holding ptl\[mm2:9\]/);
});

test('without a class, each name is its own class: the same two steps are not seen as an inversion', () => {
  const m = new spinlock_t('hmm_dmirror0.lock');
  nest(m, new spinlock_t('ptl[mm1:4]'));
  nest(new spinlock_t('ptl[mm2:9]'), m);
  assert.equal(lockdep_warnings(), []);
});

test('two instances of one class nested in either order are not reported (same-class nesting is ignored)', () => {
  const a = lockdep_set_class(new mutex('anon_vma1'), '&anon_vma->rwsem');
  const b = lockdep_set_class(new mutex('anon_vma2'), '&anon_vma->rwsem');
  runSync((function* () {
    yield* mutex_lock(a); yield* mutex_lock(b); mutex_unlock(b); mutex_unlock(a);
    yield* mutex_lock(b); yield* mutex_lock(a); mutex_unlock(a); mutex_unlock(b);
  })());
  assert.equal(lockdep_warnings(), []);
});

test('lockdep_unseen_warnings() returns each inversion once; reading lockdep_warnings() marks them seen', () => {
  const m = new spinlock_t('M');
  nest(m, new spinlock_t('S'));
  nest(new spinlock_t('S'), m);
  const fresh = lockdep_unseen_warnings();
  assert.is(fresh.length, 1);
  assert.equal(lockdep_unseen_warnings(), []);
  const n = new spinlock_t('N');
  nest(n, new spinlock_t('T'));
  nest(new spinlock_t('T'), n);
  assert.is(lockdep_warnings().length, 2);     /* the log keeps both ... */
  assert.equal(lockdep_unseen_warnings(), []);  /* ... and the read marked the new one seen */
});

test('an unread inversion survives a reset (every boot resets lockdep) and is still reported', () => {
  const m = new spinlock_t('M');
  nest(m, new spinlock_t('S'));
  nest(new spinlock_t('S'), m);
  resetLockdep();
  assert.equal(lockdep_warnings(), [], 'the log itself starts empty after a boot');
  const fresh = lockdep_unseen_warnings();
  assert.is(fresh.length, 1);
  assert.match(fresh[0]!, /takes M while holding S/);
});

/*
 * The harness: a suite whose test provokes an inversion and does not read
 * it fails with "lockdep at teardown"; the same suite reading it passes.
 */
function run_fixture(read: boolean): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'lockdep-fixture-'));
  const dist = resolve('dist');
  const url = (p: string) => pathToFileURL(join(dist, p)).href;
  const file = join(dir, 'fixture.test.mjs');
  writeFileSync(file, `
import { test } from ${JSON.stringify(url('test/leakcheck/uvu.js'))};
import { runSync } from ${JSON.stringify(url('lib/sim/sched.js'))};
import { lockdep_warnings } from ${JSON.stringify(url('lib/locking/lockdep.js'))};
import { mutex, mutex_lock, mutex_unlock } from ${JSON.stringify(url('lib/locking/mutex.js'))};
test('inversion', () => {
  const a = new mutex('fixture_A'), b = new mutex('fixture_B');
  runSync((function* () {
    yield* mutex_lock(a); yield* mutex_lock(b); mutex_unlock(b); mutex_unlock(a);
    yield* mutex_lock(b); yield* mutex_lock(a); mutex_unlock(a); mutex_unlock(b);
  })());
  ${read ? 'if (lockdep_warnings().length !== 1) throw new Error("expected one warning");' : ''}
});
test.run();
`);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('harness: an unread inversion fails its test at teardown; a read one passes', () => {
  const bad = run_fixture(false);
  assert.is(bad.status, 1, bad.out);
  assert.match(bad.out, /lockdep at teardown: possible circular locking dependency: thread "[^"]+" takes fixture_A while holding fixture_B/);
  const good = run_fixture(true);
  assert.is(good.status, 0, good.out);
  assert.match(good.out, /Passed:\s+1/);
});

test.run();
