/*
 * tools/hmm-sim/scenarios/read_mostly.ts - `hmm-sim run read-mostly`:
 * read duplication (drivers/gpu/mockgpu/uvm_hmm_read_dup.ts). A lookup
 * table the CPU fills and both sides read:
 *
 *  1. the process advises the table read-mostly (MOCKGPU_IOCTL_ADVISE,
 *     cudaMemAdviseSetReadMostly);
 *  2. a GPU kernel reads it: each read fault copies the page into VRAM
 *     (ReadDuplicate) and maps the copy read-only; the CPU keeps its page
 *     (write-protected, referenced by the driver);
 *  3. the CPU reads the table: no fault, no migration;
 *  4. the CPU writes one word: the write-protected page is copied (COW),
 *     the CLEAR invalidation drops that page's duplicate
 *     (ReadDuplicateInvalidate); a second GPU read sees the new value;
 *  5. a GPU kernel writes one page: its duplicate collapses first, then
 *     the page migrates to VRAM as usual (the writer gets it);
 *  6. the CPU reads everything back: the written page comes home by
 *     migrate_to_ram, the rest never moved.
 * The same steps without the advice migrate every page to VRAM and back.
 */
import { defineScenario } from '../api.js';
import { start_kernel } from '../../../mm/init.js';
import { Process } from '../../include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';
import { MOCKGPU_OP_READ, MOCKGPU_OP_WRITE, MOCKGPU_ADVISE_SET_READ_MOSTLY } from '../../../include/uapi/linux/mockgpu.js';
import { tracing_on, trace_records, trace_set_buffer_size } from '../../../lib/sim/trace.js';
import { gpuOpen, gpuSession, type GpuStats } from '../../include/mockgpu.js';
import { uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_perf_params, uvmPerfParamsReset } from '../../../drivers/gpu/mockgpu/uvm_perf_module.js';

const NPAGES = 16;
const WRITTEN_PAGE = 5;

/** The outcome of one run. */
export interface read_mostly_result {
  after_read: GpuStats;         /* counters after step 3 */
  end: GpuStats;
  sums: number[];               /* the context's checksum after each read kernel (cumulative) */
  cpu_faults_after_read: number;
  bytes_ok: boolean;
  events: { name: string; va: number; why: string }[];
}

/**
 * read_mostly_scenario_run() - the steps above, with the advice (@advise)
 * or without; @read_dup 0 switches read duplication off (the advice is
 * then ignored).
 */
export function read_mostly_scenario_run(advise = true, read_dup = 1): read_mostly_result {
  mockgpuParamsReset();
  uvmPerfParamsReset();
  uvm_perf_params.read_duplication_enable = read_dup;
  start_kernel({ ram_bytes: 32 << 20 });
  uvm_gpu_init();
  trace_set_buffer_size(1 << 16);
  tracing_on();
  const p = Process.spawn('lookup');
  const len = NPAGES * PAGE_SIZE;
  const buf = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.fill32(buf, len, 1);
  const out = gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(`open /dev/mockgpu0: ${g}`);
    if (advise && (yield* g.advise(buf, len, MOCKGPU_ADVISE_SET_READ_MOSTLY)) !== 0) throw new Error('advise');
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: len, op: MOCKGPU_OP_READ, elem: 256 });
    const s1 = (yield* g.wait(ctx)).checksum;
    let cpu_sum = 0;
    for (let w = 0; w < len / 4; w += 64) cpu_sum += yield* p.sys.load(buf + w * 4, 4);
    const after_read = yield* g.stats();
    void cpu_sum;
    yield* p.sys.store(buf + 8, 4, 1000);                 /* word 2 was 3 */
    yield* g.launch(ctx, { base: buf, size: len, op: MOCKGPU_OP_READ, elem: 256 });
    const s2 = (yield* g.wait(ctx)).checksum;
    yield* g.launch(ctx, { base: buf + WRITTEN_PAGE * PAGE_SIZE, size: PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 7, elem: 256 });
    yield* g.wait(ctx);
    return { after_read, sums: [s1, s2], end: yield* g.stats() };
  });
  let bytes_ok = true;
  for (let w = 0; w < len / 4; w++) {
    const want = Math.floor(w / (PAGE_SIZE / 4)) === WRITTEN_PAGE ? 7 : w === 2 ? 1000 : 1 + w;
    if (p.read32(buf + w * 4) !== want) bytes_ok = false;
  }
  const events = trace_records().filter((e) => e.name === 'ReadDuplicate' || e.name === 'ReadDuplicateInvalidate')
    .map((e) => ({ name: e.name, va: (e.fields.va as number) - buf, why: String(e.fields.why ?? '') }));
  return { after_read: out.after_read, end: out.end, sums: out.sums, cpu_faults_after_read: out.after_read.cpu_faults, bytes_ok, events };
}

export const read_mostly_scenario = defineScenario({
  name: 'read-mostly',
  description: 'read duplication: GPU reads copy pages to VRAM, the CPU keeps its own; a write collapses the copies',
  run() {
    const on = read_mostly_scenario_run(true), off = read_mostly_scenario_run(false);
    const row = (label: string, f: (r: read_mostly_result) => string) => `  ${label.padEnd(40)}${f(off).padStart(10)}${f(on).padStart(12)}`;
    const inv = on.events.filter((e) => e.name === 'ReadDuplicateInvalidate');
    return [
      `a ${NPAGES}-page table: GPU reads, CPU reads, CPU writes a word, GPU reads, GPU writes page ${WRITTEN_PAGE}, CPU reads all`,
      `  ${''.padEnd(40)}${'no advice'.padStart(10)}${'read-mostly'.padStart(12)}`,
      row('after GPU read + CPU read: in VRAM', (r) => String(r.after_read.vram_pages_used)),
      row('  ReadDuplicate', (r) => String(r.after_read.read_duplicates)),
      row('  CPU faults when the CPU read it', (r) => String(r.cpu_faults_after_read)),
      row('pages migrated to VRAM (whole run)', (r) => String(r.end.migrated_to_vram)),
      row('CPU faults (whole run)', (r) => String(r.end.cpu_faults)),
      row('ReadDuplicateInvalidate', (r) => String(r.end.read_dup_invalidates)),
      row('2nd GPU read sees +997 (1000 - 3)', (r) => String((r.sums[1]! - 2 * r.sums[0]!) >>> 0)),
      row('every word right', (r) => String(r.bytes_ok)),
      `collapses (read-mostly run): ${inv.map((e) => `page ${e.va / PAGE_SIZE} (${e.why})`).join(', ')}`,
    ];
  },
});
