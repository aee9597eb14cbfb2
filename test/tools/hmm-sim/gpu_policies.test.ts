/*
 * test/tools/hmm-sim/gpu_policies.test.ts - the scenarios of the GPU
 * memory policies: `hmm-sim run prefetch`, `thrash`, `read-mostly`
 * (tools/hmm-sim/scenarios/): registered, and their printed outcome holds
 * (every byte right, the policy's figure moves the way it should).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { scenario_lookup } from '../../../tools/hmm-sim/registry.js';
import { MOCKGPU_PATTERN_STRIDED } from '../../../include/uapi/linux/mockgpu.js';
import { prefetch_scenario_run } from '../../../tools/hmm-sim/scenarios/prefetch.js';

test('prefetch, thrash and read-mostly are registered under those names', () => {
  for (const n of ['prefetch', 'thrash', 'read-mostly']) assert.is(scenario_lookup(n)?.name, n);
});

test('prefetch: a strided kernel takes half the faults with the prefetcher; an explicit MIGRATE leaves none', () => {
  const off = prefetch_scenario_run(MOCKGPU_PATTERN_STRIDED, false), on = prefetch_scenario_run(MOCKGPU_PATTERN_STRIDED, true);
  assert.ok(off.bytes_ok && on.bytes_ok);
  assert.is(off.stats.faults_serviced, 512);
  assert.is(on.stats.faults_serviced + on.stats.prefetched_pages, 512);
  assert.ok(on.stats.faults_serviced <= 256);
  assert.ok(on.ns < off.ns, 'fewer fault round trips, less simulated time');
  const ex = prefetch_scenario_run(MOCKGPU_PATTERN_STRIDED, true, true);
  assert.ok(ex.bytes_ok);
  assert.is(ex.stats.gpu_faults, 0);
});

test('thrash and read-mostly print every word right in both columns', () => {
  for (const n of ['thrash', 'read-mostly']) {
    const lines = scenario_lookup(n)!.run({} as never) as string[];
    const ok = lines.find((l) => l.includes('every word right'))!;
    assert.match(ok, /true\s+true$/);
  }
});

test.run();
