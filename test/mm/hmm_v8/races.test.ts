/*
 * test/mm/hmm_v8/races.test.ts - the 2015 design's
 * races, over EVERY interleaving of the scenario's threads (explore() with
 * no preemption bound: the enumeration completes), scenarios in
 * tools/hmm-sim/v8_races.ts.
 *
 *  - the section 1.7 guarantee holds; without the backoff it breaks;
 *  - the locked SWP_HMM entry: two devices never both hold a page;
 *  - Mark Hairgrove's teardown race: the v8 lifetime rules let the mm's
 *    exit path use a mirror the driver freed (KASAN), the v9 rules do not,
 *    also with a device READ in flight;
 *  - a device READ racing munmap fails or returns exact data.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { explore, resetScheduler, Scheduler, type ExploreResult } from '../../../lib/sim/sched.js';
import { tracing_on, trace_records } from '../../../lib/sim/trace.js';
import {
  v8_race_handshake, v8_race_locked, v8_race_teardown, v8_race_munmap_read, v8_race_dma_two_faults,
  v8_race_migrate_madvise, type v8_race,
} from '../../../tools/hmm-sim/v8_races.js';
import { kmemleak_exempt } from '../../leakcheck/uvu.js';

const t = suite('mm/hmm_v8 races');
t.before.each(() => { resetScheduler(); });

function all(r: v8_race): ExploreResult {
  return explore((s) => r.run(s), { check: () => r.check(), maxRuns: 5000 });
}

const message = (res: ExploreResult) => String((res.failure!.error as Error).message);

t('1.7: no invalidation frees a page a device fault exposed, over every interleaving of fault and madvise', () => {
  const res = all(v8_race_handshake(false));
  assert.is(res.failure, null, res.failure ? message(res) : '');
  assert.ok(res.complete && res.runs > 5, `${res.runs} interleavings`);
});

t('1.7 without the backoff: explore finds the fault publishing a page the invalidation let go', () => {
  kmemleak_exempt('a deliberately broken variant leaves its machine mid-race');
  const res = all(v8_race_handshake(true));
  assert.ok(res.failure !== null);
  assert.match(message(res), /freed while the device maps it|stale device mapping/);
});

t('locked entries: two devices migrating one page while the CPU reads it never both hold it, data intact', () => {
  const res = all(v8_race_locked());
  assert.is(res.failure, null, res.failure ? message(res) : '');
  assert.ok(res.complete && res.runs > 10, `${res.runs} interleavings`);
});

t('Hairgrove (v8 lifetimes): exit vs close is a use-after-free, and the replayed trace shows KASAN catching it', () => {
  kmemleak_exempt('the v8 use-after-free it demonstrates leaves the machine broken');
  const r = v8_race_teardown('v8');
  const res = all(r);
  assert.ok(res.failure !== null);
  assert.match(message(res), /KASAN: use-after-free .* struct hmm_mirror freed by thread "close", accessed by thread "exit"/);
  const s = new Scheduler({ mode: 'enumerate', choices: res.failure!.choices });
  r.run(s);
  tracing_on();
  assert.throws(() => s.run(), /KASAN/);
  const names = trace_records().map((x) => x.name);
  assert.ok(names.includes('hmm_notifier_release') && names.includes('kasan_report'));
  assert.ok(names.indexOf('hmm_notifier_release') < names.indexOf('kasan_report'));
});

t('Hairgrove fixed (v9 lifetimes): no interleaving of exit and close reports anything', () => {
  const res = all(v8_race_teardown('v9'));
  assert.is(res.failure, null, res.failure ? message(res) : '');
  assert.ok(res.complete);
});

t('v9 lifetimes with a device READ in flight in a third thread: still clean', () => {
  const res = all(v8_race_teardown('v9', true));
  assert.is(res.failure, null, res.failure ? message(res) : '');
  assert.ok(res.complete && res.runs > 10, `${res.runs} interleavings`);
});

t('a device READ racing munmap fails with EFAULT or returns exact data, in every interleaving', () => {
  const res = all(v8_race_munmap_read());
  assert.is(res.failure, null, res.failure ? message(res) : '');
  assert.ok(res.complete);
});

t('DMA: two faults mapping one page leave exactly one mapping; the recheck under the lock runs in some interleaving', () => {
  const seen = { raced: 0 };
  const res = all(v8_race_dma_two_faults(seen));
  assert.is(res.failure, null, res.failure ? message(res) : '');
  assert.ok(res.complete);
  assert.ok(seen.raced > 0, 'the map-then-recheck race was exercised');
});

t('migration vs madvise: backoff restores and retries, data and device memory stay consistent', () => {
  const seen = { backoff: 0 };
  const res = all(v8_race_migrate_madvise(seen));
  assert.is(res.failure, null, res.failure ? message(res) : '');
  assert.ok(res.complete);
  assert.ok(seen.backoff > 0, 'some interleaving backed the migration off');
});

t.run();
