/*
 * tools/bench/gpu.ts - `npm run bench -- gpu`: the mock GPU's fault path
 * (drivers/gpu/mockgpu/) on streaming, strided and random kernels over a
 * buffer of 4x the fault batch size (1024 pages, 4 MiB), each on a fresh
 * machine.
 *
 * Per kernel it prints:
 *  - simulated time of the kernel (launch to completion, lib/sim/costs.ts),
 *  - faults serviced per batch (distinct pages after coalescing / batches)
 *    and the raw packets per serviced fault (the duplicates replays cause),
 *  - host CPU time per serviced fault (process.cpuUsage around the whole
 *    session: SMs, bottom half, migrate_vma_*, hmm_range_fault, channels),
 *    beside the baseline measured in the same run: host CPU time per page
 *    of one hmm_range_fault() snapshot of the same pages (the least a
 *    driver must spend per page to learn what the CPU maps).
 * One warm-up run, then the median of REPEATS.
 */
import { start_kernel } from '../../mm/init.js';
import { Process, runAs } from '../include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { HMM_PFN_VALID, hmm_pfn_flags, type hmm_range } from '../../include/linux/hmm.js';
import type { mmu_interval_notifier } from '../../include/linux/mmu_notifier.js';
import {
  MOCKGPU_OP_INC, MOCKGPU_PATTERN_RANDOM, MOCKGPU_PATTERN_SEQUENTIAL, MOCKGPU_PATTERN_STRIDED,
} from '../../include/uapi/linux/mockgpu.js';
import { hmm_range_fault } from '../../mm/hmm.js';
import { mmu_interval_notifier_insert, mmu_interval_read_begin, mmu_interval_set_seq } from '../../mm/mmu_notifier.js';
import { mmap_read_lock, mmap_read_unlock } from '../../mm/mmap_lock.js';
import { tracing_off } from '../../lib/sim/trace.js';
import { formatNs, machineTime } from '../../lib/sim/clock.js';
import { GPU_FAULT_BATCH } from '../../lib/sim/costs.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import { gpuRunKernel, type KernelSpec } from '../include/mockgpu.js';
import { mockgpu_get, uvm_gpu_init } from '../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset } from '../../drivers/gpu/mockgpu/uvm_gpu.js';
import { row } from './harness.js';

const PAGES = 4 * GPU_FAULT_BATCH;
const BYTES = PAGES * PAGE_SIZE;
const ELEM = 256;
const REPEATS = 3;

interface result { simNs: number; serviced: number; batches: number; packets: number; hostPerFault: number; walkPerPage: number; }

const kernels: { name: string; spec: (base: number) => KernelSpec }[] = [
  { name: 'streaming', spec: (base) => ({ base, size: BYTES, op: MOCKGPU_OP_INC, elem: ELEM, pattern: MOCKGPU_PATTERN_SEQUENTIAL }) },
  /* 273 elements apart: coprime with the 16384 elements, so every element once, pages in scattered order */
  { name: 'strided', spec: (base) => ({ base, size: BYTES, op: MOCKGPU_OP_INC, elem: ELEM, pattern: MOCKGPU_PATTERN_STRIDED, stride: 273 * ELEM }) },
  { name: 'random', spec: (base) => ({ base, size: BYTES, op: MOCKGPU_OP_INC, elem: ELEM, pattern: MOCKGPU_PATTERN_RANDOM, seed: 42 }) },
];

function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

function* snapshot(p: Process, range: hmm_range): Sleepable<number> {
  range.notifier_seq = yield* mmu_interval_read_begin(range.notifier);
  yield* mmap_read_lock(p.mm);
  const ret = yield* hmm_range_fault(range);
  mmap_read_unlock(p.mm);
  return ret;
}

/* host CPU ns per page of an hmm_range_fault() snapshot of [a, a + BYTES), GPU pages reported as its own */
function walk_per_page(p: Process, a: number): number {
  const sub = { start: 0, last: 0, invalidate_seq: 0 } as unknown as mmu_interval_notifier;
  runAs(p.task, mmu_interval_notifier_insert(sub, p.mm, a, BYTES, {
    *invalidate(s, _r, seq) { mmu_interval_set_seq(s, seq); return true; },
  }));
  const range: hmm_range = { notifier: sub, notifier_seq: 0, start: a, end: a + BYTES, hmm_pfns: new Float64Array(PAGES),
    default_flags: 0, pfn_flags_mask: 0, dev_private_owner: mockgpu_get() };
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = cpuNs();
    const ret = runAs(p.task, snapshot(p, range));
    best = Math.min(best, cpuNs() - t0);
    if (ret !== 0) throw new Error(`hmm_range_fault returned ${ret}`);
  }
  if (!(hmm_pfn_flags(range.hmm_pfns[0]!) & HMM_PFN_VALID)) throw new Error('snapshot found nothing');
  return best / PAGES;
}

function run_once(spec: (base: number) => KernelSpec): result {
  mockgpuParamsReset();
  start_kernel({ ram_bytes: 64 << 20 });
  uvm_gpu_init();
  tracing_off();
  const p = Process.spawn('bench');
  const a = p.mmap(0, BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.fill32(a, BYTES, 3);
  const sim0 = machineTime();
  const t0 = cpuNs();
  const r = gpuRunKernel(p, spec(a));
  const host = cpuNs() - t0;
  if (r.status !== 0) throw new Error(`kernel failed: ${r.status}`);
  const simNs = machineTime() - sim0;
  const walk = walk_per_page(p, a);
  /* every access incremented ELEM / 4 words once: the buffer's sum grew by exactly BYTES / 4 */
  const v = new DataView(p.read(a, BYTES).buffer);
  let added = 0;
  for (let i = 0; i < BYTES / 4; i++) added += v.getUint32(i * 4, true) - (i + 3);
  if (added !== BYTES / 4) throw new Error(`the GPU's increments do not add up: ${added}`);
  return { simNs, serviced: r.stats.faults_serviced, batches: r.stats.fault_batches, packets: r.stats.gpu_faults,
    hostPerFault: host / r.stats.faults_serviced, walkPerPage: walk };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** bench_gpu() - run and print the GPU fault-path benchmark. */
export async function bench_gpu(): Promise<void> {
  console.log(`gpu: kernels over ${PAGES} pages (${BYTES >> 20} MiB, 4x the ${GPU_FAULT_BATCH}-fault batch), ` +
    `${ELEM}-byte accesses, median of ${REPEATS} after a warm-up`);
  for (const k of kernels) {
    run_once(k.spec);
    const rs: result[] = [];
    for (let i = 0; i < REPEATS; i++) rs.push(run_once(k.spec));
    const m = (f: (r: result) => number) => median(rs.map(f));
    const sim = m((r) => r.simNs);
    console.log(`  ${k.name}: simulated ${formatNs(sim)} s, ${m((r) => r.serviced)} faults serviced in ` +
      `${m((r) => r.batches)} batches (${(m((r) => r.serviced / r.batches)).toFixed(1)} per batch), ` +
      `${(m((r) => r.packets / r.serviced)).toFixed(2)} packets per serviced fault`);
    row(`${k.name}: host CPU per serviced fault`, m((r) => r.hostPerFault) / 1000, 'us',
      'hmm_range_fault per page', m((r) => r.walkPerPage) / 1000);
  }
}
