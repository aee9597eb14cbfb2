/*
 * test/mm/hmm_v8/races.test.ts - item 10: every interleaving, up to a
 * preemption bound, of the 2015 design's races (tools/hmm-sim/v8_races.ts).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { explore, resetScheduler } from '../../../lib/sim/sched.js';
import { v8_race_handshake, v8_race_locked, v8_race_teardown, v8_race_munmap_read, type v8_race } from '../../../tools/hmm-sim/v8_races.js';

const t = suite('mm/hmm_v8 races');
t.before.each(() => { resetScheduler(); });

function run(r: v8_race, bound: number, maxRuns = 20000) {
  const t0 = Date.now();
  const res = explore((s) => r.run(s), { check: () => r.check(), preemptionBound: bound, maxRuns });
  console.log(r.name, res.runs, res.complete, Date.now() - t0, 'ms', res.failure ? String((res.failure.error as Error).message).slice(0, 200) : '');
  return res;
}

t('handshake', () => { const r = run(v8_race_handshake(false), Infinity); assert.ok(r.complete && r.failure === null); });
t('handshake broken', () => { const r = run(v8_race_handshake(true), 2); assert.ok(r.failure !== null); });
t('locked', () => { const r = run(v8_race_locked(), Infinity); assert.ok(r.complete && r.failure === null); });
t('teardown v8', () => { const r = run(v8_race_teardown('v8'), 2); assert.ok(r.failure !== null); });
t('teardown v9', () => { const r = run(v8_race_teardown('v9'), Infinity); assert.ok(r.complete && r.failure === null); });
t('munmap read', () => { const r = run(v8_race_munmap_read(), Infinity); assert.ok(r.complete && r.failure === null); });
t.run();
