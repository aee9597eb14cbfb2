/*
 * tools/hmm-sim/scenarios/design_debate.ts - `hmm-sim run design-debate`:
 * one GPU workload under each design the HMM threads argued about
 * (tools/hmm-sim/design.ts), on the same device core, printed as one
 * table (Documentation/vm/hmm.txt, "The design debate", reads it).
 *
 * The workload, the same for every design and written once:
 *  1. the process opens /dev/mockgpu0 and maps 64 pages (with the mmap
 *     flags the design needs: GMEM wants MAP_PEER_SHARED), and fills them;
 *  2. an "inc" kernel runs over all 64 pages (8 SMs x 32 warps, 256 B per
 *     access): every page faults on the GPU;
 *  3. the CPU reads the first 32 pages back (CPU faults wherever the pages
 *     moved to VRAM), and the bytes are checked: every word old + 1;
 *  4. the process munmaps the last 32 pages (the GPU still maps them);
 *  5. it closes the device.
 *
 * Per design the table shows: GPU fault packets and the pages serviced,
 * the invalidations that reached the driver and where they ran (sleeping:
 * process or kernel-thread context with preempt_count 0; atomic: with a
 * spinlock held or preemption off, read from each trace record), the
 * migration events and the pages they moved, the simulated time at the
 * end, the bytes read back (a hash, identical for every design) and the
 * driver's lines of code (driver_lines.ts). A second run per design
 * launches the kernel 8 times before the read-back: the time of each
 * further run (data in VRAM against data read over PCIe) says after how
 * many runs moving the data pays off.
 */
import { defineScenario } from '../api.js';
import { start_kernel } from '../../../mm/init.js';
import { Process } from '../../include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE } from '../../../include/uapi/asm-generic/mman.js';
import { MOCKGPU_OP_INC } from '../../../include/uapi/linux/mockgpu.js';
import { tracing_on, trace_set_buffer_size, trace_add_listener } from '../../../lib/sim/trace.js';
import { formatNs, machineTime } from '../../../lib/sim/clock.js';
import { gpuOpen, gpuSession } from '../../include/mockgpu.js';
import { mockgpu_get, mockgpu_set_era, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_perf_params, uvmPerfParamsReset } from '../../../drivers/gpu/mockgpu/uvm_perf_module.js';
import { DESIGNS, DESIGN_TABLE, design_selected, type design } from '../design.js';
import { driver_lines } from '../driver_lines.js';

const NPAGES = 64;
/* the second run: the same kernel launched this many times before the read-back (the GPU reuses the data) */
const REUSE = 8;
/* arXiv 2310.12554 (GMEM): a simulated GPU driver in under 70 lines besides MMU functions */
const GMEM_CLAIM_LINES = 70;
/* where GMEM's lines went: the core mm it adds, which every GMEM device depends on */
export const GMEM_CORE_FILES = Object.freeze([
  'include/linux/gmem.ts', 'mm/gmem.ts', 'mm/gmem_phys.ts', 'mm/vm_object.ts', 'mm/gmem_hmadvise.ts',
]);

/** What one design did with the workload. */
export interface design_result {
  design: design;
  status: number;               /* the kernel's launch status (0, or -errno) */
  fault_packets: number;
  pages_serviced: number;
  batches: number;
  inval_sleeping: number;
  inval_atomic: number;
  migrations: number;           /* Migration events */
  pages_moved: number;          /* to VRAM + back to system memory */
  sim_ns: number;
  bytes_ok: boolean;
  bytes_hash: number;           /* FNV-1a of the 32 pages read back */
  vram_left: number;            /* VRAM pages in use after close */
  driver_lines: number | null;
  mmu_lines: number | null;     /* MMU functions counted apart (GMEM), 0 where the glue holds them */
}

function fnv1a(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const x of b) h = Math.imul(h ^ x, 0x01000193) >>> 0;
  return h;
}

/**
 * design_run() - the workload under @d on a freshly booted machine, the
 * kernel launched @passes times (the data reused) before the read-back.
 * Return: the measured result (nothing in it is a constant of the design).
 */
export function design_run(d: design, passes = 1): design_result {
  const desc = DESIGN_TABLE[d];
  mockgpuParamsReset();
  uvmPerfParamsReset();
  uvm_perf_params.uvm_perf_prefetch_enable = 0;   /* compare the mechanisms: the mainline glue's prefetcher (Part 16) off */
  start_kernel({ ram_bytes: 32 << 20 });
  uvm_gpu_init();
  mockgpu_set_era(desc.glue);
  trace_set_buffer_size(1 << 12);
  tracing_on();
  let sleeping = 0, atomic = 0, migrations = 0;
  const off = trace_add_listener((r) => {
    if (r.name === 'Migration') migrations++;
    if (r.ph === 'B' || !desc.invalidate_events.includes(r.name)) return;
    if ((r.preempt ?? 0) > 0) atomic++; else sleeping++;
  });
  const p = Process.spawn('cuda_app');
  const len = NPAGES * PAGE_SIZE, half = len / 2;
  try {
    const out = gpuSession(p, function* () {
      const g = yield* gpuOpen(p);
      if (typeof g === 'number') throw new Error(`open /dev/mockgpu0: ${g}`);
      const buf = yield* p.sys.mmap(0, len, PROT_READ | PROT_WRITE, desc.buffer_flags);
      if (buf < 0) throw new Error(`mmap: ${buf}`);
      const b = new Uint8Array(len);
      const v = new DataView(b.buffer);
      for (let i = 0; i < len / 4; i++) v.setUint32(i * 4, i * 3, true);
      yield* p.sys.write(buf, b);
      const ctx = yield* g.ctxCreate();
      for (let i = 0; i < passes; i++) yield* g.launch(ctx, { base: buf, size: len, op: MOCKGPU_OP_INC, elem: 256 });
      const w = yield* g.wait(ctx);
      const back = new Uint8Array(half);
      yield* p.sys.read(buf, back);
      yield* p.sys.munmap(buf + half, half);
      const stats = yield* g.stats();
      yield* g.close();
      return { w, back, stats };
    });
    const bv = new DataView(out.back.buffer);
    let bytes_ok = true;
    for (let i = 0; i < half / 4; i++) if (bv.getUint32(i * 4, true) !== i * 3 + passes) { bytes_ok = false; break; }
    const s = out.stats;
    return {
      design: d, status: out.w.status, fault_packets: s.gpu_faults, pages_serviced: s.faults_serviced,
      batches: s.fault_batches, inval_sleeping: sleeping, inval_atomic: atomic, migrations,
      pages_moved: s.migrated_to_vram + s.migrated_to_sysmem, sim_ns: machineTime(), bytes_ok,
      bytes_hash: fnv1a(out.back), vram_left: mockgpu_get()!.pmm.pages_used,
      driver_lines: driver_lines(desc.driver_files), mmu_lines: driver_lines(desc.mmu_files),
    };
  } finally {
    off();
  }
}

/**
 * design_debate_report() - run @designs and print the table.
 * Return: the lines, and the results (tests assert on them).
 */
export function design_debate_report(designs: readonly design[] = DESIGNS): { lines: string[]; results: design_result[];
                                                                             reused: design_result[] } {
  const results = designs.map((d) => design_run(d));
  const reused = designs.map((d) => design_run(d, REUSE));
  const w = 16;
  const lines = [
    `# design-debate: one GPU workload (inc kernel over ${NPAGES} pages, CPU reads back ${NPAGES / 2}, munmaps ${NPAGES / 2}, close)`,
    `  ${''.padEnd(38)}${designs.map((d) => d.padStart(w)).join('')}`,
  ];
  const row = (label: string, f: (r: design_result) => string) =>
    lines.push(`  ${label.padEnd(38)}${results.map((r) => f(r).padStart(w)).join('')}`);
  const n = (x: number | null) => (x === null ? '-' : String(x));
  row('kernel status', (r) => String(r.status));
  row('GPU fault packets (SVA: page requests)', (r) => String(r.fault_packets));
  row('pages serviced / batches', (r) => `${r.pages_serviced}/${r.batches}`);
  row('invalidations to driver, sleeping', (r) => String(r.inval_sleeping));
  row('invalidations to driver, atomic', (r) => String(r.inval_atomic));
  row('migration events', (r) => String(r.migrations));
  row('pages moved (to VRAM + back)', (r) => String(r.pages_moved));
  row('simulated time', (r) => `${formatNs(r.sim_ns)} s`);
  const more = (i: number) => (reused[i]!.sim_ns - results[i]!.sim_ns) / (REUSE - 1);
  lines.push(`  ${`simulated time, kernel run ${REUSE}x`.padEnd(38)}${reused.map((r) => `${formatNs(r.sim_ns)} s`.padStart(w)).join('')}`);
  lines.push(`  ${'  each further run'.padEnd(38)}${reused.map((_r, i) => `${(more(i) / 1000).toFixed(1)} us`.padStart(w)).join('')}`);
  lines.push(`  ${`  bytes intact after ${REUSE} runs`.padEnd(38)}${reused.map((r) => String(r.bytes_ok).padStart(w)).join('')}`);
  row('bytes read back intact', (r) => String(r.bytes_ok));
  row('bytes read back (FNV-1a)', (r) => r.bytes_hash.toString(16));
  row('VRAM pages left after close', (r) => String(r.vram_left));
  row('driver lines (glue)', (r) => n(r.driver_lines));
  row('  + MMU functions counted apart', (r) => n(r.mmu_lines));
  const gm = results.find((r) => r.design === 'gmem');
  if (gm !== undefined && gm.driver_lines !== null) {
    lines.push(`  GMEM's published claim, a GPU driver under ${GMEM_CLAIM_LINES} lines besides its MMU functions: ` +
      `${gm.driver_lines} lines, ${gm.driver_lines < GMEM_CLAIM_LINES ? 'holds' : 'does not hold'} here`);
    lines.push(`    core mm lines GMEM adds for it (${GMEM_CORE_FILES.length} files, same rule): ${n(driver_lines(GMEM_CORE_FILES))}`);
  }
  return { lines, results, reused };
}

export const design_debate_scenario = defineScenario({
  name: 'design-debate',
  description: 'one GPU workload under HMM v8, mainline HMM, SVA and GMEM: faults, invalidations, migrations, time, driver lines',
  run() {
    const d = design_selected();
    return design_debate_report(d === null ? DESIGNS : [d]).lines;
  },
});
