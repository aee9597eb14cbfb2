/*
 * tools/hmm-sim/scenarios/gpu.ts - `hmm-sim --scenario gpu`: a kernel on
 * the mock GPU (drivers/gpu/mockgpu/) over malloc'd memory, as a CUDA
 * program on managed/HMM memory would run it.
 *
 *  1. the process mallocs 64 pages and fills them;
 *  2. it opens /dev/mockgpu0, creates a context and launches an "inc"
 *     kernel: 8 SMs x 32 warps stream over the buffer, every miss writes
 *     a replayable fault packet (GpuFault) and stalls its warp;
 *  3. the bottom half fetches batches, coalesces the duplicates, services
 *     each 2 MiB VA block: migrate_vma_* moves the pages to VRAM
 *     (Migration SYS->VID, copies on the copy engine), hmm_range_fault
 *     under the interval-notifier protocol maps them, PTE writes go through
 *     the command queue, then a replay (GpuFaultReplay) wakes the warps;
 *  4. the CPU reads the buffer back: each page is a device-private entry,
 *     the CPU fault calls migrate_to_ram (CpuFault, Migration VID->SYS),
 *     whose MIGRATE invalidation unmaps the GPU first;
 *  5. a second kernel writes a shared mapping, which stays in system
 *     memory and is mapped remotely (MapRemote).
 * The trace shows every step with the thread that did it (the SMs, the
 * fault bottom half, the host and copy-engine channels, the process).
 */
import { defineScenario } from '../api.js';
import { start_kernel } from '../../../mm/init.js';
import { Process } from '../../include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_SHARED, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';
import { MOCKGPU_OP_INC, MOCKGPU_OP_WRITE } from '../../../include/uapi/linux/mockgpu.js';
import { tracing_on, trace_set_buffer_size } from '../../../lib/sim/trace.js';
import { formatNs, machineTime } from '../../../lib/sim/clock.js';
import { gpuOpen, gpuSession, type GpuStats } from '../../include/mockgpu.js';
import { mockgpu_get, mockgpu_set_era, uvm_gpu_init, uvm_gpu_stats_sync } from '../../../drivers/gpu/mockgpu/uvm.js';
import { DESIGN_TABLE, design_selected, type design } from '../design.js';
import { mockgpuParamsReset, uvm_gpu_stat, uvmGpuStatsDump } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';

const NPAGES = 64;

/**
 * gpu_scenario_run() - the scenario on mainline HMM or, with @era 'v8', on
 * the 2015 API (uvm_hmm_v8.ts: same device core, other glue), or on any
 * design of tools/hmm-sim/design.ts (`hmm-sim run --design gmem gpu`).
 * The buffers are mapped after the device is opened, with the design's
 * flags (GMEM: MAP_PEER_SHARED; its MAP_SHARED buffer stays outside GMEM).
 * Return: its outcome lines, the counters, whether the read-back matched.
 */
export function gpu_scenario_run(era: design = 'mainline'): { lines: string[]; stats: GpuStats; readback_ok: boolean; cpu_faults: number; ns: number } {
  mockgpuParamsReset();
  start_kernel({ ram_bytes: 32 << 20 });
  uvm_gpu_init();                             /* insmod the driver */
  mockgpu_set_era(DESIGN_TABLE[era].glue);
  trace_set_buffer_size(1 << 16);
  tracing_on();
  const p = Process.spawn('cuda_app');
  const len = NPAGES * PAGE_SIZE;
  let buf = 0, shared = 0;
  const out = gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(`open /dev/mockgpu0: ${g}`);
    buf = yield* p.sys.mmap(0, len, PROT_READ | PROT_WRITE, DESIGN_TABLE[era].buffer_flags);
    shared = yield* p.sys.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    for (let i = 0; i < len / 4; i++) v.setUint32(i * 4, i + 100, true);
    yield* p.sys.write(buf, b);
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: len, op: MOCKGPU_OP_INC, elem: 256 });
    const w1 = yield* g.wait(ctx);
    yield* g.launch(ctx, { base: shared, size: 4 * PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 0xcafe });
    const w2 = yield* g.wait(ctx);
    return { w1, w2, stats: yield* g.stats() };
  });
  const tGpu = machineTime();
  const gpu = mockgpu_get()!;
  const inVram = gpu.pmm.pages_used;
  const readback_ok = p.check32(buf, len, 101) === -1;
  const sharedOk = p.read32(shared + 3 * PAGE_SIZE + 8) === 0xcafe;
  const s = out.stats;
  uvm_gpu_stats_sync(gpu);
  const dump = uvmGpuStatsDump(gpu);
  return {
    stats: s,
    readback_ok,
    cpu_faults: uvm_gpu_stat(gpu, 'cpu_faults'),
    ns: tGpu,
    lines: [
      `kernel 1 (inc over ${NPAGES} malloc'd pages): status ${out.w1.status}, done at ${formatNs(tGpu)} s simulated`,
      `  ${s.gpu_faults} fault packets, ${s.faults_duplicate} duplicates coalesced, ${s.faults_serviced} pages serviced ` +
        `in ${s.fault_batches} batches, ${s.replays} replays`,
      `  ${s.migrated_to_vram} pages migrated to VRAM; ${inVram} VRAM pages in use before the CPU reads back`,
      `CPU read-back: ${uvm_gpu_stat(gpu, 'cpu_faults')} CPU faults (migrate_to_ram) bring the pages home; ` +
        `every word is old + 1: ${readback_ok}`,
      `  VRAM pages in use after: ${gpu.pmm.pages_used}`,
      `kernel 2 (write to a MAP_SHARED buffer): status ${out.w2.status}, ${s.mapped_remote} pages mapped remotely ` +
        `(aperture SYS), the CPU sees 0xcafe: ${sharedOk}`,
      'per-GPU counters at the end (MOCKGPU_IOCTL_STATS order):',
      ...dump.split('\n').map((l) => `  ${l}`),
    ],
  };
}

export const gpu_scenario = defineScenario({
  name: 'gpu',
  description: 'a kernel on the mock GPU over malloc\'d memory: faults, batches, migration to VRAM, CPU reads back',
  run() { return gpu_scenario_run(design_selected() ?? 'mainline').lines; },
});

/**
 * gpu_era_report() - `hmm-sim --era v8|mainline|both`: the scenario's
 * workload under each HMM design, side by side.
 */
export function gpu_era_report(eras: readonly ('v8' | 'mainline')[]): string[] {
  const out = [`# gpu: inc kernel over ${NPAGES} malloc'd pages, CPU reads back (mock GPU, same device core)`,
    `  ${''.padEnd(30)}${eras.map((e) => e.padStart(12)).join('')}`];
  const rows = eras.map((e) => gpu_scenario_run(e));
  const line = (label: string, f: (r: ReturnType<typeof gpu_scenario_run>) => string) =>
    out.push(`  ${label.padEnd(30)}${rows.map((r) => f(r).padStart(12)).join('')}`);
  line('GPU done at (simulated)', (r) => `${(r.ns / 1000).toFixed(1)} us`);
  line('fault packets', (r) => String(r.stats.gpu_faults));
  line('pages serviced / batches', (r) => `${r.stats.faults_serviced}/${r.stats.fault_batches}`);
  line('pages migrated to VRAM', (r) => String(r.stats.migrated_to_vram));
  line('CPU faults back', (r) => String(r.cpu_faults));
  line('bytes intact', (r) => String(r.readback_ok));
  return out;
}
