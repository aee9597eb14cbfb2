/*
 * tools/bench/gpu_policies.ts - `npm run bench -- gpu-policies`: what each
 * mock GPU memory policy (drivers/gpu/mockgpu/) saves or costs, on
 * UVMBench-style workloads at VRAM oversubscription factors 0.5x, 1.5x
 * and 3x (working set / VRAM; VRAM is 4 MiB, two root chunks).
 *
 * The matrix is workload x factor x configuration. A configuration is the
 * defaults, or the defaults with one switch of SWITCHES flipped; the
 * ratio column is that configuration's simulated time over the defaults'.
 * To add a policy, add a line to SWITCHES (and its counter to COLUMNS if
 * it has one): every workload and factor picks it up. The defaults are
 * every module parameter's (mockgpu_params, uvm_perf_params): eviction
 * with remote mapping, the tree prefetcher and thrashing mitigation on.
 *
 * Workloads (each checks every byte it wrote before its row is printed):
 *   streaming  an inc kernel over the whole buffer, 2 passes
 *   stencil    per iteration, read the first half, inc the second; 2 iterations
 *   random     inc of seeded random 256-byte elements, as many as the buffer holds
 *   pingpong   2 rounds of: GPU inc of the whole buffer, then the CPU adds to
 *              the first word of every page (two-phase CPU/GPU)
 *   hotcold    one inc sweep over the whole buffer, then 6 inc passes over its
 *              last quarter VRAM (the hot set, touched last by the sweep):
 *              high reuse, where keeping data in VRAM pays for the copies
 *   thrash1    60 rounds of: GPU inc of the first page, then a CPU atomic on
 *              its first word: one page moving both ways every ~170 us
 *              (thrashing detection and mitigation, Documentation Part 16)
 *   readshare  4 rounds of: a GPU read kernel over the whole buffer, then a
 *              CPU load of every page; nothing is written (the read-mostly
 *              advice's case: both processors keep a copy)
 * The switches besides module parameters: read_mostly sets the
 * MOCKGPU_ADVISE_SET_READ_MOSTLY advice on the whole buffer before the
 * first kernel (cudaMemAdviseSetReadMostly); access_counters=1 turns on
 * access-counter migration, off by default as in UVM without ATS.
 * Figures are simulated (lib/sim/costs.ts), hence deterministic: one run each.
 */
import { start_kernel } from '../../mm/init.js';
import { Process } from '../include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import {
  MOCKGPU_OP_INC, MOCKGPU_OP_READ, MOCKGPU_PATTERN_RANDOM, MOCKGPU_ADVISE_SET_READ_MOSTLY, mockgpu_stat_names,
} from '../../include/uapi/linux/mockgpu.js';
import { tracing_off } from '../../lib/sim/trace.js';
import { formatNs, machineTime } from '../../lib/sim/clock.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import { gpuOpen, gpuSession, type GpuHandle, type GpuStats, type KernelSpec } from '../include/mockgpu.js';
import { uvm_gpu_init, mockgpu_get } from '../../drivers/gpu/mockgpu/uvm.js';
import { mockgpu_params, mockgpuParamsReset, uvm_gpu_stat } from '../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_perf_params, uvmPerfParamsReset } from '../../drivers/gpu/mockgpu/uvm_perf_module.js';

const MiB = 1 << 20;
const VRAM = 4 * MiB;
export const FACTORS = [0.5, 1.5, 3] as const;

/** A policy switch: its name in the table and how to flip it away from its default. */
export interface policy_switch { name: string; flip(): void; }

/** The switches, each flipped alone against the defaults (prefetch/thrashing switches join here). */
export const SWITCHES: policy_switch[] = [
  { name: 'evict=0', flip: () => { mockgpu_params.evict = false; } },
  { name: 'evict_remote_map=0', flip: () => { mockgpu_params.evict_remote_map = false; } },
  { name: 'prefetch=0', flip: () => { uvm_perf_params.uvm_perf_prefetch_enable = 0; } },
  { name: 'thrashing=0', flip: () => { uvm_perf_params.uvm_perf_thrashing_enable = 0; } },
  { name: 'access_counters=1', flip: () => { uvm_perf_params.uvm_perf_access_counter_migration_enable = 1; } },
  { name: 'read_mostly', flip: () => { advice = MOCKGPU_ADVISE_SET_READ_MOSTLY; } },
];

/* the advice gpu_policy_run() sets on the whole buffer before the workload (0: none) */
let advice = 0;

/** The counters printed per configuration (GpuStats names), after the simulated time. */
export const COLUMNS: { head: string; f: (s: GpuStats) => number }[] = [
  { head: 'faults', f: (s) => s.faults_serviced },
  { head: 'migrated', f: (s) => s.migrated_to_vram + s.migrated_to_sysmem },
  { head: 'evictions', f: (s) => s.evictions },
  { head: 'remote', f: (s) => s.mapped_remote },
  { head: 'prefetched', f: (s) => s.prefetched_pages },
  { head: 'throttles', f: (s) => s.throttles },
  { head: 'acnotify', f: (s) => s.access_counter_notifications },
  { head: 'acmigr', f: (s) => s.access_counter_migrations },
  { head: 'dups', f: (s) => s.read_duplicates },
];

/** A workload: run it through handle @g on [buf, buf + len), then say whether every byte is right. */
interface workload {
  name: string;
  run(p: Process, g: GpuHandle, ctx: number, buf: number, len: number): Sleepable;
  check(p: Process, buf: number, len: number): boolean;
}

function* kernel(g: GpuHandle, ctx: number, spec: KernelSpec): Sleepable {
  yield* g.launch(ctx, spec);
  const w = yield* g.wait(ctx);
  if (w.status !== 0) throw new Error(`kernel failed: ${w.status}`);
}

/* the 32-bit words of [a, a + len) are i + 3 + @add(i) */
function words_are(p: Process, a: number, len: number, add: (i: number) => number): boolean {
  const v = new DataView(p.read(a, len).buffer);
  for (let i = 0; i < len / 4; i++) if (v.getUint32(i * 4, true) !== ((i + 3 + add(i)) >>> 0)) return false;
  return true;
}

const WPP = PAGE_SIZE / 4;    /* words per page */
const THRASH_ROUNDS = 60;
const HOT = VRAM / 4, HOT_PASSES = 6;

export const WORKLOADS: workload[] = [
  {
    name: 'streaming',
    *run(_p, g, ctx, buf, len) { for (let i = 0; i < 2; i++) yield* kernel(g, ctx, { base: buf, size: len, op: MOCKGPU_OP_INC, elem: 1024 }); },
    check: (p, buf, len) => words_are(p, buf, len, () => 2),
  },
  {
    name: 'stencil',
    *run(_p, g, ctx, buf, len) {
      for (let i = 0; i < 2; i++) {
        yield* kernel(g, ctx, { base: buf, size: len / 2, op: MOCKGPU_OP_READ, elem: 1024 });
        yield* kernel(g, ctx, { base: buf + len / 2, size: len / 2, op: MOCKGPU_OP_INC, elem: 1024 });
      }
    },
    check: (p, buf, len) => words_are(p, buf, len, (i) => (i < len / 8 ? 0 : 2)),
  },
  {
    name: 'random',
    *run(_p, g, ctx, buf, len) {
      yield* kernel(g, ctx, { base: buf, size: len, op: MOCKGPU_OP_INC, elem: 256, pattern: MOCKGPU_PATTERN_RANDOM, seed: 42 });
    },
    check: (p, buf, len) => {
      const v = new DataView(p.read(buf, len).buffer);
      let added = 0;
      for (let i = 0; i < len / 4; i++) added += v.getUint32(i * 4, true) - (i + 3);
      return added === len / 4;     /* len / 256 elements of 64 words, each +1 */
    },
  },
  {
    name: 'pingpong',
    *run(p, g, ctx, buf, len) {
      for (let r = 0; r < 2; r++) {
        yield* kernel(g, ctx, { base: buf, size: len, op: MOCKGPU_OP_INC, elem: 1024 });
        for (let a = buf; a < buf + len; a += PAGE_SIZE) yield* p.sys.atomic(a, 4, (o) => o + 1);
      }
    },
    check: (p, buf, len) => words_are(p, buf, len, (i) => (i % WPP === 0 ? 4 : 2)),
  },
  {
    name: 'hotcold',
    *run(_p, g, ctx, buf, len) {
      yield* kernel(g, ctx, { base: buf, size: len, op: MOCKGPU_OP_INC, elem: 1024 });
      for (let i = 0; i < HOT_PASSES; i++) yield* kernel(g, ctx, { base: buf + len - HOT, size: HOT, op: MOCKGPU_OP_INC, elem: 256 });
    },
    check: (p, buf, len) => words_are(p, buf, len, (i) => (i >= (len - HOT) / 4 ? 1 + HOT_PASSES : 1)),
  },
  {
    name: 'thrash1',
    *run(p, g, ctx, buf) {
      for (let r = 0; r < THRASH_ROUNDS; r++) {
        yield* kernel(g, ctx, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_INC, elem: 256 });
        yield* p.sys.atomic(buf, 4, (o) => o + 1);
      }
    },
    check: (p, buf, len) => words_are(p, buf, len, (i) => (i >= WPP ? 0 : i === 0 ? 2 * THRASH_ROUNDS : THRASH_ROUNDS)),
  },
  {
    name: 'readshare',
    *run(p, g, ctx, buf, len) {
      for (let r = 0; r < 4; r++) {
        yield* kernel(g, ctx, { base: buf, size: len, op: MOCKGPU_OP_READ, elem: 1024 });
        for (let a = buf; a < buf + len; a += PAGE_SIZE) yield* p.sys.load(a, 4);
      }
    },
    check: (p, buf, len) => words_are(p, buf, len, () => 0),
  },
];

/** One cell of the matrix. */
export interface policy_result { ns: number; stats: GpuStats; ok: boolean; }

/** gpu_policy_run() - @w at @factor x VRAM on a fresh machine, after @setup changed the defaults. */
export function gpu_policy_run(w: workload, factor: number, setup: () => void): policy_result {
  mockgpuParamsReset();
  uvmPerfParamsReset();
  advice = 0;
  mockgpu_params.vram_bytes = VRAM;
  setup();
  start_kernel({ ram_bytes: 96 * MiB });
  uvm_gpu_init();
  tracing_off();
  const p = Process.spawn('bench');
  const len = factor * VRAM;
  const buf = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.fill32(buf, len, 3);
  const t0 = machineTime();
  const stats = gpuSession(p, function* () {
    const g = (yield* gpuOpen(p)) as GpuHandle;
    const ctx = yield* g.ctxCreate();
    if (advice !== 0) {
      const ret = yield* g.advise(buf, len, advice);
      if (ret !== 0) throw new Error(`advise ${advice}: ${ret}`);
    }
    yield* w.run(p, g, ctx, buf, len);
    return yield* g.stats();
  });
  const ns = machineTime() - t0;
  /*
   * The counters as the session left them: g.stats() ran when the
   * workload returned, before the access-counter bottom half (a kthread
   * of the same session) had drained its queue, so its migrations and
   * evictions were missing from the row while its time was in it.
   */
  const gpu = mockgpu_get()!;
  for (const n of mockgpu_stat_names) stats[n] = uvm_gpu_stat(gpu, n);
  stats.vram_pages_used = gpu.pmm.pages_used;
  const ok = w.check(p, buf, len);
  mockgpuParamsReset();
  uvmPerfParamsReset();
  advice = 0;
  return { ns, stats, ok };
}

function cell(r: policy_result, base: policy_result | null): string {
  const cols = COLUMNS.map((c) => String(c.f(r.stats)).padStart(10)).join('');
  const ratio = base === null ? '' : (r.ns / base.ns).toFixed(2).padStart(7);
  return `${formatNs(r.ns).padStart(10)}${cols}${ratio.padStart(7)}${r.ok ? '' : '  BYTES WRONG'}`;
}

/** bench_gpu_policies() - run and print the policy matrix, then what each switch saves. */
export async function bench_gpu_policies(): Promise<void> {
  console.log(`gpu-policies: VRAM ${VRAM / MiB} MiB; working set = factor x VRAM; simulated seconds; ` +
    'ratio = time with the switch flipped / time with the defaults (> 1: the default policy saves time)');
  console.log(`  ${'workload'.padEnd(10)}${'factor'.padStart(7)}  ${'config'.padEnd(20)}${'time'.padStart(10)}` +
    `${COLUMNS.map((c) => c.head.padStart(10)).join('')}${'ratio'.padStart(7)}`);
  const ratios = new Map<string, number[]>();
  let wrong = 0;
  for (const w of WORKLOADS) {
    for (const f of FACTORS) {
      const base = gpu_policy_run(w, f, () => {});
      if (!base.ok) wrong++;
      console.log(`  ${w.name.padEnd(10)}${(f + 'x').padStart(7)}  ${'defaults'.padEnd(20)}${cell(base, null)}`);
      for (const s of SWITCHES) {
        const r = gpu_policy_run(w, f, s.flip);
        if (!r.ok) wrong++;
        console.log(`  ${''.padEnd(17)}  ${s.name.padEnd(20)}${cell(r, base)}`);
        if (f > 1) ratios.set(s.name, [...(ratios.get(s.name) ?? []), r.ns / base.ns]);
      }
    }
  }
  console.log('  per switch, time flipped / time with the defaults over the oversubscribed rows (1.5x, 3x): geometric mean (> 1: the default saves time)');
  for (const [name, rs] of ratios) {
    const g = Math.exp(rs.reduce((a, x) => a + Math.log(x), 0) / rs.length);
    console.log(`    ${name.padEnd(20)} ${g.toFixed(2)}x  (min ${Math.min(...rs).toFixed(2)}, max ${Math.max(...rs).toFixed(2)})`);
  }
  if (wrong > 0) throw new Error(`gpu-policies: ${wrong} runs left wrong bytes`);
}
