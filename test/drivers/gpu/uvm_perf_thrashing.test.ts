/*
 * test/drivers/gpu/uvm_perf_thrashing.test.ts - thrashing detection and
 * mitigation (drivers/gpu/mockgpu/uvm_perf_thrashing.ts): when a page is
 * found thrashing, when it is throttled and for how long, when it is
 * pinned, when the pin expires; the CPU/GPU ping-pong of
 * `hmm-sim run thrash` with every word checked. Simulated time only.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot } from '../../helpers.js';
import { runSync } from '../../../lib/sim/sched.js';
import { charge, now } from '../../../lib/sim/clock.js';
import { uvm_gpu_init, mockgpu_get } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset, uvm_va_space } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_perf_params, uvmPerfParamsReset } from '../../../drivers/gpu/mockgpu/uvm_perf_module.js';
import {
  uvm_perf_thrashing_event, uvm_perf_thrashing_get_hint, uvmPerfThrashingInfo,
} from '../../../drivers/gpu/mockgpu/uvm_perf_thrashing.js';
import { uvm_page_table_alloc } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';
import { uvm_hmm_ops } from '../../../drivers/gpu/mockgpu/uvm_hmm.js';
import { thrash_scenario_run } from '../../../tools/hmm-sim/scenarios/thrash.js';

test.before.each(() => { mockgpuParamsReset(); uvmPerfParamsReset(); });

const US = 1000;
const VA = 0x7000_0000_0000;

/* an address space to hang page histories on (no device file needed) */
function space(): uvm_va_space {
  const p = boot();
  uvm_gpu_init();
  return new uvm_va_space(99, mockgpu_get()!, p.mm, uvm_page_table_alloc(), uvm_hmm_ops);
}

/* the simulated time of the test's thread */
function clock(): number {
  return runSync((function* () { return now(); })());
}

/* advance the simulated clock by @ns (outside any scheduler: runSync charges the current thread) */
function wait(ns: number): void {
  runSync((function* () { charge(ns); })());
}

test('three moves within the lapse make a page thrashing; a slower pace never does', () => {
  const vs = space();
  uvm_perf_thrashing_event(vs, VA, 1); wait(400 * US);
  uvm_perf_thrashing_event(vs, VA, 0); wait(400 * US);
  assert.is(uvmPerfThrashingInfo(vs, VA)!.thrashing, false, 'two events');
  uvm_perf_thrashing_event(vs, VA, 1);
  assert.is(uvmPerfThrashingInfo(vs, VA)!.thrashing, true);
  const slow = VA + 4096;
  for (let i = 0; i < 10; i++) { uvm_perf_thrashing_event(vs, slow, i & 1); wait(600 * US); }
  assert.is(uvmPerfThrashingInfo(vs, slow)!.thrashing, false, 'every gap is over 500 us');
  assert.is(uvmPerfThrashingInfo(vs, slow)!.events, 1);
});

test('a thrashing page is throttled for one nap per fault, pinned after 10 throttles, and the pin expires after 150 ms', () => {
  const vs = space();
  for (let i = 0; i < 3; i++) { uvm_perf_thrashing_event(vs, VA, i & 1); wait(100 * US); }
  for (let t = 1; t <= 10; t++) {
    const h = uvm_perf_thrashing_get_hint(vs, VA, 1);
    assert.is(h.type, 'throttle', `fault ${t}`);
    if (h.type === 'throttle') assert.is(h.until - clock(), 500 * US, 'kept off for one nap');
    assert.is(uvmPerfThrashingInfo(vs, VA)!.throttles, t);
    uvm_perf_thrashing_event(vs, VA, t & 1);
    wait(200 * US);
  }
  const pin = uvm_perf_thrashing_get_hint(vs, VA, 1);
  assert.is(pin.type, 'pin');
  wait(149 * 1000 * US);
  assert.is(uvm_perf_thrashing_get_hint(vs, VA, 0).type, 'pin', 'still pinned at 149 ms');
  wait(2 * 1000 * US);
  assert.is(uvm_perf_thrashing_get_hint(vs, VA, 0).type, 'none', 'expired: the history starts over');
  assert.is(uvmPerfThrashingInfo(vs, VA)!.thrashing, false);
});

test('the nap is one lapse; constants come from the module parameters', () => {
  const vs = space();
  uvm_perf_params.uvm_perf_thrashing_lapse_usec = 200;
  uvm_perf_params.uvm_perf_thrashing_threshold = 2;
  uvm_perf_params.uvm_perf_thrashing_nap = 3;
  uvm_perf_thrashing_event(vs, VA, 0); wait(150 * US);
  uvm_perf_thrashing_event(vs, VA, 1);
  assert.is(uvmPerfThrashingInfo(vs, VA)!.thrashing, true, 'threshold 2');
  const h = uvm_perf_thrashing_get_hint(vs, VA, 1);
  assert.is(h.type, 'throttle');
  if (h.type === 'throttle') assert.is(h.until - clock(), 3 * 200 * US, 'nap = 3 lapses');
});

test('switched off: no detection, no hint', () => {
  uvm_perf_params.uvm_perf_thrashing_enable = 0;
  const vs = space();
  for (let i = 0; i < 5; i++) uvm_perf_thrashing_event(vs, VA, i & 1);
  assert.is(uvmPerfThrashingInfo(vs, VA), undefined);
  assert.is(uvm_perf_thrashing_get_hint(vs, VA, 1).type, 'none');
});

test('CPU/GPU ping-pong: detected, 10 throttles, pinned; migrations stop; every word right', () => {
  const on = thrash_scenario_run(40, true);
  assert.ok(on.bytes_ok);
  assert.is(on.stats.thrashing_detected, 1);
  assert.is(on.stats.throttles, 10);
  assert.is(on.stats.pins, 1);
  assert.is(on.events[0], 'ThrashingDetected');
  assert.equal(on.events.slice(1, 21), Array.from({ length: 20 }, (_, i) => (i % 2 ? 'ThrottlingEnd' : 'ThrottlingStart')));
  assert.is(on.events[21], 'uvm_thrashing_pin');
  assert.ok(on.stats.migrated_to_vram < 10, `migrations to VRAM with mitigation: ${on.stats.migrated_to_vram}`);
  assert.is(on.stats.mapped_remote, 1, 'pinned in system memory, mapped remotely by the GPU');
  const off = thrash_scenario_run(40, false);
  assert.ok(off.bytes_ok);
  assert.is(off.stats.migrated_to_vram, 40);
  assert.is(off.stats.cpu_faults, 40);
  assert.is(off.stats.throttles + off.stats.pins + off.stats.thrashing_detected, 0);
});

test.run();
