/*
 * test/tools/hmm-sim/gpu.test.ts - `hmm-sim --scenario gpu`
 * (tools/hmm-sim/scenarios/gpu.ts): the kernel faults, its faults are
 * batched and coalesced, pages move to VRAM and back with every byte intact.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu_scenario_run, gpu_era_report } from '../../../tools/hmm-sim/scenarios/gpu.js';
import { scenario_lookup } from '../../../tools/hmm-sim/registry.js';
import { trace_records } from '../../../lib/sim/trace.js';

test('the gpu scenario is registered and its outcome holds', () => {
  assert.is(scenario_lookup('gpu')?.name, 'gpu');
  const r = gpu_scenario_run();
  assert.ok(r.readback_ok);
  assert.is(r.stats.migrated_to_vram, 64);
  assert.ok(r.stats.faults_duplicate > 0, 'duplicates were coalesced');
  assert.ok(r.stats.fault_batches >= 1 && r.stats.replays >= r.stats.fault_batches);
  assert.is(r.stats.mapped_remote, 4);
  assert.not.match(r.lines.join('\n'), /false/);
});

test('the trace shows the fault path from SM to replay and the CPU fault back, with UVM\'s event names', () => {
  gpu_scenario_run();
  const byName = new Map<string, string>();
  for (const e of trace_records()) if (!byName.has(e.name)) byName.set(e.name, e.thread);
  for (const n of ['GpuFault', 'uvm_fault_batch', 'uvm_service_block', 'migrate_vma_setup', 'Migration', 'hmm_range_fault',
    'uvm_pte_write', 'GpuFaultReplay', 'CpuFault', 'MapRemote', 'uvm_hmm_invalidate']) {
    assert.ok(byName.has(n), `trace has ${n}`);
  }
  assert.is(byName.get('GpuFault'), 'mockgpu0-sm0');
  assert.is(byName.get('uvm_fault_batch'), 'mockgpu0-fault_bh');
  assert.is(byName.get('uvm_pte_write'), 'mockgpu0-host');
});

test('--era both runs the GPU workload under v8 and mainline with the same outcome', () => {
  const out = gpu_era_report(['v8', 'mainline']).join('\n');
  assert.match(out, /pages migrated to VRAM\s+64\s+64/);
  assert.match(out, /CPU faults back\s+64\s+64/);
  assert.match(out, /bytes intact\s+true\s+true/);
});

test.run();
