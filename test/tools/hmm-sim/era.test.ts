/*
 * test/tools/hmm-sim/era.test.ts - the side-by-side scenarios
 * (tools/hmm-sim/era.ts) and the era benchmark's workload
 * (tools/bench/era.ts) on a small size: both designs run every scenario
 * correctly, and the figures show the differences the designs predict.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { era_scenarios, run_era_scenario, era_report } from '../../../tools/hmm-sim/era.js';
import { run_era_workload } from '../../../tools/bench/era.js';
import { resetScheduler } from '../../../lib/sim/sched.js';

const t = suite('tools/hmm-sim/era');
t.before.each(() => { resetScheduler(); });

for (const sc of era_scenarios) {
  t(`${sc.name} (mainline ${sc.mainline}) runs correctly under v8 and under mainline`, () => {
    for (const e of ['v8', 'mainline'] as const) {
      const r = run_era_scenario(sc, e);
      assert.ok(r.ok, `${e}: ${r.errors.join('; ')}`);
    }
  });
}

t('migrate_fault: v8 faults pages back without a notifier invalidation, mainline sends one per page', () => {
  const sc = era_scenarios.find((s) => s.name === 'migrate_fault')!;
  const v8 = run_era_scenario(sc, 'v8'), ml = run_era_scenario(sc, 'mainline');
  assert.is(v8.invalidations, 1, 'only the migration to the device');
  assert.ok(ml.invalidations >= sc.npages, 'migrate_vma per CPU fault');
  assert.ok(v8.hmm_pt_entries > 0 && ml.hmm_pt_entries === 0, 'only v8 has an HMM-owned table');
});

t('era_report prints both columns and the difference', () => {
  const lines = era_report(['v8', 'mainline'], ['anon_write_prot']);
  assert.match(lines[0], /anon_write_prot/);
  assert.match(lines[1], /v8\s+mainline\s+diff/);
  assert.ok(lines.some((l) => l.includes('v8: ok')) && lines.some((l) => l.includes('mainline: ok')));
});

t('the benchmark workload keeps the data in both eras and faults exactly half the pages back', () => {
  for (const e of ['v8', 'mainline'] as const) {
    const r = run_era_workload(e, 1024);
    assert.ok(r.ok, e);
    assert.is(r.faults_back, 512, e);
    assert.ok(r.read.sim_ns > 0 && r.migrate.sim_ns > 0 && r.fault_back.sim_ns > 0);
  }
});

t.run();
