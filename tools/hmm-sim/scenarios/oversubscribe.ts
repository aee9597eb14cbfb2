/*
 * tools/hmm-sim/scenarios/oversubscribe.ts - `hmm-sim run oversubscribe`:
 * a working set of 1.5x the mock GPU's VRAM (drivers/gpu/mockgpu/
 * uvm_hmm_evict.ts), streamed twice by an "inc" kernel, as a CUDA program
 * oversubscribing managed memory would.
 *
 *  1. VRAM is 4 MiB (two 2 MiB root chunks); the process mallocs 6 MiB;
 *  2. pass 1: the first 1024 pages migrate to VRAM; then every
 *     allocation finds VRAM full, the least recently allocated-in root
 *     chunk is evicted (migrate_device_range, copies VRAM -> RAM on the copy
 *     engine: Eviction) and handed to the faulting block;
 *  3. with evict_remote_map on (UVM's default here) the GPU keeps mapping
 *     the evicted pages from RAM (MapRemote): pass 2 runs with few faults,
 *     part of it over PCIe;
 *  4. the same with evict_remote_map off: evicted pages are unmapped, pass 2
 *     faults them back, which evicts others: the evict/re-fault loop;
 *  5. the CPU reads every word back: each was incremented exactly twice.
 */
import { defineScenario } from '../api.js';
import { start_kernel } from '../../../mm/init.js';
import { Process } from '../../include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';
import { MOCKGPU_OP_INC } from '../../../include/uapi/linux/mockgpu.js';
import { tracing_on, trace_records, trace_set_buffer_size } from '../../../lib/sim/trace.js';
import { formatNs, machineTime } from '../../../lib/sim/clock.js';
import { gpuOpen, gpuSession, type GpuHandle, type GpuStats } from '../../include/mockgpu.js';
import { uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpu_params, mockgpuParamsReset } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';

const MiB = 1 << 20;
const VRAM = 4 * MiB;

/** One configuration's outcome: counters after each pass, simulated times, bytes. */
export interface oversubscribe_result {
  remote_map: boolean;
  passes: { stats: GpuStats; ns: number }[];
  bytes_ok: boolean;
  first_events: string[];
}

/**
 * oversubscribe_run() - two inc passes over @factor x VRAM, on a fresh
 * machine, with evict_remote_map = @remote_map.
 */
export function oversubscribe_run(factor: number, remote_map: boolean): oversubscribe_result {
  mockgpuParamsReset();
  mockgpu_params.vram_bytes = VRAM;
  mockgpu_params.evict_remote_map = remote_map;
  start_kernel({ ram_bytes: 64 * MiB });
  uvm_gpu_init();
  trace_set_buffer_size(1 << 17);
  tracing_on();
  const p = Process.spawn('cuda_app');
  const len = factor * VRAM;
  const buf = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.fill32(buf, len, 100);
  const passes = gpuSession(p, function* () {
    const g = (yield* gpuOpen(p)) as GpuHandle;
    const ctx = yield* g.ctxCreate();
    const out: { stats: GpuStats; ns: number }[] = [];
    for (let i = 0; i < 2; i++) {
      const t0 = machineTime();
      yield* g.launch(ctx, { base: buf, size: len, op: MOCKGPU_OP_INC, elem: 1024 });
      const w = yield* g.wait(ctx);
      if (w.status !== 0) throw new Error(`pass ${i + 1}: ${w.status}`);
      out.push({ stats: yield* g.stats(), ns: machineTime() - t0 });
    }
    return out;
  });
  const first_events = trace_records().filter((e) => e.name === 'Eviction' || e.name === 'uvm_pmm_evict_root_done')
    .slice(0, 2).map((e) => `${e.name} ${Object.entries(e.fields).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  return { remote_map, passes, bytes_ok: p.check32(buf, len, 102) === -1, first_events };
}

function describe(r: oversubscribe_result): string[] {
  const lines = [`evict_remote_map=${r.remote_map ? 1 : 0}:`];
  let prev: GpuStats | null = null;
  r.passes.forEach((ps, i) => {
    const d = (k: keyof GpuStats) => ps.stats[k] - (prev?.[k] ?? 0);
    lines.push(`  pass ${i + 1}: ${formatNs(ps.ns)} s simulated; ${d('faults_serviced')} pages faulted, ` +
      `${d('migrated_to_vram')} migrated in, ${d('evictions')} root chunks evicted (${d('evicted_pages')} pages out), ` +
      `${d('mapped_remote')} mapped remotely`);
    prev = ps.stats;
  });
  lines.push(...r.first_events.map((e) => `  trace: ${e}`));
  lines.push(`  every word incremented twice: ${r.bytes_ok}`);
  return lines;
}

export default defineScenario({
  name: 'oversubscribe',
  description: 'a working set of 1.5x VRAM on the mock GPU: root-chunk eviction, remote mapping vs the evict/re-fault loop',
  run() {
    return [`# ${1.5 * VRAM / MiB} MiB of malloc'd memory, ${VRAM / MiB} MiB of VRAM, an inc kernel streamed twice`,
      ...describe(oversubscribe_run(1.5, true)), ...describe(oversubscribe_run(1.5, false))];
  },
});
