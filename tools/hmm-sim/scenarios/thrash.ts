/*
 * tools/hmm-sim/scenarios/thrash.ts - `hmm-sim run thrash`: the CPU and
 * the GPU take turns on the same page, which migrates both ways on every
 * turn, until thrashing detection (drivers/gpu/mockgpu/uvm_perf_thrashing.ts)
 * notices: three moves within the 500 us lapse make the page thrashing;
 * each later fault on it is THROTTLED (the faulting processor naps for a
 * lapse while the other keeps the page), and after 10 throttles the page
 * is PINNED in system memory: the GPU maps it remotely (aperture SYS),
 * the CPU stops faulting, the migrations stop. The same run with
 * mitigation off (uvm_perf_thrashing_enable=0) migrates on every turn.
 * Every word is checked at the end.
 */
import { defineScenario } from '../api.js';
import { start_kernel } from '../../../mm/init.js';
import { Process } from '../../include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';
import { MOCKGPU_OP_INC } from '../../../include/uapi/linux/mockgpu.js';
import { tracing_on, trace_records, trace_set_buffer_size } from '../../../lib/sim/trace.js';
import { formatNs, machineTime } from '../../../lib/sim/clock.js';
import { gpuOpen, gpuSession, type GpuStats } from '../../include/mockgpu.js';
import { uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_perf_params, uvmPerfParamsReset } from '../../../drivers/gpu/mockgpu/uvm_perf_module.js';

const CPU_WORD = 100;
const ROUNDS = 100;

/** The outcome of one run. */
export interface thrash_result {
  stats: GpuStats;
  ns: number;                   /* simulated time of the ping-pong */
  bytes_ok: boolean;
  events: string[];             /* the policy's trace events, in order, by name */
}

/**
 * thrash_scenario_run() - @rounds turns of (GPU kernel increments every
 * word of the page; the CPU increments one word), with thrashing
 * mitigation @mitigation on or off.
 */
export function thrash_scenario_run(rounds = 24, mitigation = true): thrash_result {
  mockgpuParamsReset();
  uvmPerfParamsReset();
  uvm_perf_params.uvm_perf_thrashing_enable = mitigation ? 1 : 0;
  start_kernel({ ram_bytes: 32 << 20 });
  uvm_gpu_init();
  trace_set_buffer_size(1 << 16);
  tracing_on();
  const p = Process.spawn('pingpong');
  const buf = p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.fill32(buf, PAGE_SIZE, 0);
  const t0 = machineTime();
  const stats = gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(`open /dev/mockgpu0: ${g}`);
    const ctx = yield* g.ctxCreate();
    for (let r = 0; r < rounds; r++) {
      yield* g.launch(ctx, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_INC, elem: 256 });
      const w = yield* g.wait(ctx);
      if (w.status !== 0) throw new Error(`kernel: ${w.status}`);
      const v = yield* p.sys.load(buf + CPU_WORD * 4, 4);
      yield* p.sys.store(buf + CPU_WORD * 4, 4, v + 1);
    }
    return yield* g.stats();
  });
  const ns = machineTime() - t0;
  let bytes_ok = true;
  for (let w = 0; w < PAGE_SIZE / 4; w++) {
    if (p.read32(buf + w * 4) !== w + (w === CPU_WORD ? 2 * rounds : rounds)) bytes_ok = false;   /* fill32: word w starts at w */
  }
  const names = new Set(['ThrashingDetected', 'ThrottlingStart', 'ThrottlingEnd', 'uvm_thrashing_pin', 'uvm_thrashing_unpin']);
  const events = trace_records().filter((e) => names.has(e.name)).map((e) => e.name);
  return { stats, ns, bytes_ok, events };
}

export const thrash_scenario = defineScenario({
  name: 'thrash',
  description: 'CPU and GPU ping-pong on one page: thrashing detected, throttled, then pinned (mitigation on vs off)',
  run() {
    const on = thrash_scenario_run(ROUNDS, true), off = thrash_scenario_run(ROUNDS, false);
    const row = (label: string, f: (r: thrash_result) => string) => `  ${label.padEnd(34)}${f(off).padStart(12)}${f(on).padStart(12)}`;
    const first = (r: thrash_result, n: string) => r.events.indexOf(n);
    return [
      `${ROUNDS} rounds: GPU kernel increments every word of one page, then the CPU increments one word`,
      `  ${''.padEnd(34)}${'mitig. off'.padStart(12)}${'mitig. on'.padStart(12)}`,
      row('simulated time', (r) => `${formatNs(r.ns)} s`),
      row('pages migrated to VRAM', (r) => String(r.stats.migrated_to_vram)),
      row('pages migrated back (CPU faults)', (r) => String(r.stats.cpu_faults)),
      row('mapped remotely (pinned: SYS)', (r) => String(r.stats.mapped_remote)),
      row('ThrashingDetected', (r) => String(r.stats.thrashing_detected)),
      row('ThrottlingStart (naps of 500 us)', (r) => String(r.stats.throttles)),
      row('pins', (r) => String(r.stats.pins)),
      row('every word right', (r) => String(r.bytes_ok)),
      `order of the policy events (mitigation on): detected at #${first(on, 'ThrashingDetected')}, ` +
        `first throttle at #${first(on, 'ThrottlingStart')}, pinned at #${first(on, 'uvm_thrashing_pin')} ` +
        `of ${on.events.length}`,
    ];
  },
});
