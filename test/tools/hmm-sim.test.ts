import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_SCENARIO, scenario_lookup, scenario_params, run_scenario } from '../../tools/hmm-sim/registry.js';
import type { scenario } from '../../tools/hmm-sim/api.js';
import { trace_records } from '../../lib/sim/trace.js';

const scenarios = new Proxy({} as Record<string, { run(): string[]; parts?: readonly string[] }>, {
  get: (_t, name: string) => {
    const s = scenario_lookup(name) as scenario;
    return { parts: s.parts, run: () => run_scenario(s, scenario_params(s, []) as Exclude<ReturnType<typeof scenario_params>, string>) };
  },
});
const defaultScenario = DEFAULT_SCENARIO;

test('the default tour runs every part, and each part reports success', () => {
  const tour = scenarios[defaultScenario];
  assert.ok(tour.parts !== undefined && tour.parts.length >= 2);
  for (const name of tour.parts!) {
    const out = scenarios[name].run().join('\n');
    assert.not.match(out, /false/, `${name}: ${out}`);
    assert.ok(trace_records().length > 10, `${name} leaves a trace`);
  }
});

test('the cow scenario shows the COW fault and the notifier events in its trace', () => {
  scenarios.cow.run();
  const names = new Set(trace_records().map((r) => r.name));
  for (const n of ['handle_mm_fault', 'wp_page_copy', 'mmu_notifier_invalidate_range_start', 'dup_mmap', 'exit']) {
    assert.ok(names.has(n), `trace has ${n}`);
  }
});

test('the mirror scenario migrates, faults back half and snapshots the mix', () => {
  const out = scenarios.mirror.run().join('\n');
  assert.match(out, /snapshot bytes: (02 ){8}(22 ){7}22/);
  const names = trace_records().map((r) => r.name);
  for (const n of ['mmu_interval_read_begin', 'hmm_range_fault', 'migrate_vma_setup', 'migrate_vma_pages',
    'migrate_vma_finalize', 'do_swap_page_device_private']) {
    assert.ok(names.includes(n), `trace has ${n}`);
  }
});

test.run();
