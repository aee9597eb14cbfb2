/*
 * test/tools/hmm-sim/scenarios/gpu_policies.test.ts - the GPU memory policy
 * scenarios: `hmm-sim run oversubscribe` (tools/hmm-sim/scenarios/
 * oversubscribe.ts) and `hmm-sim run free_trap` (free_trap.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { oversubscribe_run } from '../../../../tools/hmm-sim/scenarios/oversubscribe.js';
import { free_trap_run } from '../../../../tools/hmm-sim/scenarios/free_trap.js';
import { mockgpuParamsReset } from '../../../../drivers/gpu/mockgpu/uvm_gpu.js';

test.after.each(() => mockgpuParamsReset());

test('oversubscribe: with the remote mapping kept, pass 2 takes no fault; without it, pass 2 re-faults and evicts again; bytes intact both ways', () => {
  const on = oversubscribe_run(1.5, true), off = oversubscribe_run(1.5, false);
  for (const r of [on, off]) {
    assert.ok(r.bytes_ok);
    assert.is(r.passes[0]!.stats.evictions, 1, 'pass 1: one root chunk evicted for the 512 pages over VRAM');
  }
  assert.is(on.passes[1]!.stats.faults_serviced - on.passes[0]!.stats.faults_serviced, 0);
  assert.is(off.passes[1]!.stats.evictions - off.passes[0]!.stats.evictions, 3, 'pass 2: the evict/re-fault loop');
  assert.ok(off.passes[1]!.ns > on.passes[1]!.ns);
  assert.match(on.first_events[0]!, /^Eviction gpu=mockgpu0 chunk=0 pages=512/);
});

test('free_trap: after free() the pages stay in VRAM and calloc faults every one back; MADV_FREE does not help; MADV_DONTNEED does', () => {
  const trap = free_trap_run('trap'), lazy = free_trap_run('MADV_FREE'), drop = free_trap_run('MADV_DONTNEED');
  for (const r of [trap, lazy, drop]) assert.ok(r.gpu_ok && r.zeroed, r.variant);
  assert.equal([trap.vram_after_free, trap.cpu_faults, trap.copied_back], [64, 64, 64]);
  assert.equal([lazy.vram_after_free, lazy.cpu_faults, lazy.copied_back], [64, 64, 64]);
  assert.equal([drop.vram_after_free, drop.cpu_faults, drop.copied_back], [0, 0, 0]);
  assert.ok(drop.calloc_ns < trap.calloc_ns);
});

test.run();
