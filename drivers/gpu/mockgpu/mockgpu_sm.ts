/*
 * drivers/gpu/mockgpu/mockgpu_sm.ts - the GPU's streaming multiprocessors:
 * a launched kernel is an access stream over a VA range, run by warps that
 * translate every access through the device TLB and page table.
 *
 * No Linux or UVM twin: this is the hardware UVM drives. What it models is
 * what the driver sees of it:
 *   - each access is translated (uvm_mmu.ts); a translation that finds no
 *     PTE allowing the access writes a replayable fault packet into the
 *     fault buffer (uvm_gpu_replayable_faults.ts) and stalls the warp;
 *   - an SM keeps issuing its other warps and sleeps when every warp it
 *     has left is stalled; a replay (a command the driver pushes) wakes
 *     it, and stalled warps retry - those not yet serviced fault again,
 *     which is where duplicate packets come from;
 *   - bytes really move: a load reads, and a store writes, the VRAM or
 *     system page the PTE maps (aperture VID or SYS).
 * The access stream of a launch (include/uapi/linux/mockgpu.ts): element i
 * of count, at an address chosen by the pattern, is handled by global warp
 * i mod (nr_sms * warps_per_sm), in order.
 *
 * Simplified: one access (elem bytes, inside one page) per warp step; an
 * SM's warps run one after the other on its thread; time per access is
 * the element at the SM's share of VRAM or PCIe bandwidth; a kernel's
 * SMs start KERNEL_LAUNCH_NS after the launch.
 */
import {
  MOCKGPU_FAULT_ACCESS_READ, MOCKGPU_FAULT_ACCESS_WRITE, MOCKGPU_FAULT_ACCESS_ATOMIC, UVM_APERTURE_VID,
  mockgpu_pte_aperture, mockgpu_pte_pfn,
} from '../../../include/linux/mockgpu.js';
import {
  MOCKGPU_PATTERN_SEQUENTIAL, MOCKGPU_PATTERN_STRIDED, MOCKGPU_PATTERN_RANDOM, MOCKGPU_PATTERN_GATHER,
  MOCKGPU_OP_READ, MOCKGPU_OP_INC, MOCKGPU_OP_ATOMIC_INC, MOCKGPU_OP_MIX, type mockgpu_launch,
} from '../../../include/uapi/linux/mockgpu.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { EINVAL } from '../../../include/uapi/asm-generic/errno.js';
import { cond_resched, kthread_run, type Sleepable } from '../../../lib/sim/sched.js';
import { wait_event, wake_up_all } from '../../../lib/locking/wait.js';
import { charge } from '../../../lib/sim/clock.js';
import { trace_event } from '../../../lib/sim/trace.js';
import { KERNEL_LAUNCH_NS, PCIE_BW, VRAM_BW, copy_cost_ns } from '../../../lib/sim/costs.js';
import { kmap_local_page, pfn_to_page } from '../../../mm/page_alloc.js';
import { mockgpu_params, type gpu_context, type gpu_kernel, type uvm_gpu } from './uvm_gpu.js';
import { uvm_tlb_translate } from './uvm_mmu.js';
import { uvm_fault_buffer_write } from './uvm_gpu_replayable_faults.js';
import { uvm_access_counter_record } from './uvm_gpu_access_counters.js';

/** Accesses a warp makes before the SM moves to its next warp. */
const WARP_SLICE = 8;

/**
 * mockgpu_launch_check() - validate a launch block.
 * Return: 0, or -EINVAL for an unknown pattern or op, an element size that
 * is not a power of two in [4, 4096], a base, size or stride not a multiple
 * of it, an empty buffer, a bad write_pct, or a misaligned GATHER index array.
 */
export function mockgpu_launch_check(l: mockgpu_launch): number {
  if (!(l.pattern >= MOCKGPU_PATTERN_SEQUENTIAL && l.pattern <= MOCKGPU_PATTERN_GATHER)) return -EINVAL;
  if (!(l.op >= MOCKGPU_OP_READ && l.op <= MOCKGPU_OP_MIX)) return -EINVAL;
  if (!(l.elem >= 4 && l.elem <= PAGE_SIZE && (l.elem & (l.elem - 1)) === 0)) return -EINVAL;
  if (l.base <= 0 || l.base % l.elem || l.size <= 0 || l.size % l.elem) return -EINVAL;
  if (l.count < 0 || l.write_pct < 0 || l.write_pct > 100) return -EINVAL;
  if (l.pattern === MOCKGPU_PATTERN_STRIDED && (l.stride <= 0 || l.stride % l.elem)) return -EINVAL;
  if (l.pattern === MOCKGPU_PATTERN_GATHER && (l.aux <= 0 || l.aux % 4)) return -EINVAL;
  if (l.count === 0) l.count = l.size / l.elem;
  return 0;
}

/* a 32-bit mix of (seed, i): deterministic per launch */
function hash32(seed: number, i: number): number {
  let h = Math.imul((seed | 0) ^ Math.imul(i, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/* the access type element i of @l makes */
function access_type(l: mockgpu_launch, i: number): number {
  switch (l.op) {
    case MOCKGPU_OP_READ: return MOCKGPU_FAULT_ACCESS_READ;
    case MOCKGPU_OP_ATOMIC_INC: return MOCKGPU_FAULT_ACCESS_ATOMIC;
    case MOCKGPU_OP_MIX: return hash32(l.seed ^ 0x5bd1e995, i) % 100 < l.write_pct ? MOCKGPU_FAULT_ACCESS_WRITE : MOCKGPU_FAULT_ACCESS_READ;
    default: return MOCKGPU_FAULT_ACCESS_WRITE;
  }
}

/* where an access through @pte lands: the page's bytes (VRAM or system RAM) */
function pte_bytes(gpu: uvm_gpu, pte: number): Uint8Array {
  const pfn = mockgpu_pte_pfn(pte);
  return mockgpu_pte_aperture(pte) === UVM_APERTURE_VID ? gpu.pmm.vram(pfn) : kmap_local_page(pfn_to_page(pfn));
}

/* one SM's view of the kernel it runs */
interface sm_state {
  gpu: uvm_gpu;
  k: gpu_kernel;
  sm: number;
  next: Float64Array;         /* per warp: its next element index */
  stalled: Float64Array;      /* per warp: replay_seq when it faulted, or -1 */
}

/*
 * translate @va for @access; on a miss write a fault packet and stall the
 * warp. Return: the PTE, or 0 when the warp stalled.
 */
function sm_translate(s: sm_state, w: number, va: number, access: number): number {
  const vs = s.k.ctx.vs;
  if (vs.glue.translate !== undefined) {
    /* SVA: no GPU page table; the glue's ATC and page requests (mockgpu_sva.ts) */
    const seq = s.gpu.replay_seq;
    const pte = vs.glue.translate(vs, va, access, s.k.ctx);
    if (pte === 0) s.stalled[w] = seq;
    return pte;
  }
  const pte = uvm_tlb_translate(s.gpu.tlb, vs.pt, vs.id, va, access);
  if (pte !== 0) return pte;
  s.stalled[w] = s.gpu.replay_seq;
  uvm_fault_buffer_write(s.gpu, va - (va % PAGE_SIZE), access, s.k.ctx, s.sm, w);
  return 0;
}

/* the address of element @i, or -1 when the warp stalled reading a GATHER index */
function element_addr(s: sm_state, w: number, i: number): number {
  const l = s.k.l;
  const n = l.size / l.elem;
  switch (l.pattern) {
    case MOCKGPU_PATTERN_SEQUENTIAL: return l.base + (i % n) * l.elem;
    case MOCKGPU_PATTERN_STRIDED: return l.base + ((i * l.stride) % l.size);
    case MOCKGPU_PATTERN_RANDOM: return l.base + (hash32(l.seed, i) % n) * l.elem;
    default: {
      const ia = l.aux + i * 4;
      const pte = sm_translate(s, w, ia, MOCKGPU_FAULT_ACCESS_READ);
      if (pte === 0) return -1;
      const b = pte_bytes(s.gpu, pte), o = ia % PAGE_SIZE;
      const idx = (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
      return l.base + (idx % n) * l.elem;
    }
  }
}

/* perform element @i's operation on the page bytes; return false if the warp stalled */
function sm_access(s: sm_state, w: number, i: number): boolean {
  const l = s.k.l, ctx = s.k.ctx;
  const addr = element_addr(s, w, i);
  if (addr < 0) return false;
  const access = access_type(l, i);
  const pte = sm_translate(s, w, addr, access);
  if (pte === 0) return false;
  const b = pte_bytes(s.gpu, pte);
  const dv = new DataView(b.buffer, b.byteOffset, PAGE_SIZE);
  const o = addr % PAGE_SIZE;
  const vid = mockgpu_pte_aperture(pte) === UVM_APERTURE_VID;
  if (!vid) uvm_access_counter_record(s.gpu, ctx.vs, addr);     /* uvm_gpu_access_counters.ts */
  charge(copy_cost_ns(l.elem, (vid ? VRAM_BW : PCIE_BW) / mockgpu_params.nr_sms));
  if (l.op === MOCKGPU_OP_ATOMIC_INC) {
    dv.setUint32(o, (dv.getUint32(o, true) + 1) >>> 0, true);
    return true;
  }
  const write = access === MOCKGPU_FAULT_ACCESS_WRITE;
  for (let k = o; k < o + l.elem; k += 4) {
    if (l.op === MOCKGPU_OP_INC) dv.setUint32(k, (dv.getUint32(k, true) + 1) >>> 0, true);
    else if (write) dv.setUint32(k, l.value >>> 0, true);
    else ctx.checksum = (ctx.checksum + dv.getUint32(k, true)) >>> 0;
  }
  return true;
}

/* run warp @w for up to WARP_SLICE accesses; return true if it made progress */
function sm_run_warp(s: sm_state, w: number, G: number): boolean {
  const count = s.k.l.count;
  let progressed = false;
  for (let k = 0; k < WARP_SLICE && s.next[w]! < count; k++) {
    if (!sm_access(s, w, s.next[w]!)) return progressed;
    s.next[w] += G;
    progressed = true;
  }
  return progressed;
}

/*
 * The SM thread: issue warps round robin; sleep while every unfinished
 * warp is stalled; stop when all are done or the context is cancelled.
 */
function* mockgpu_sm_thread(s: sm_state): Sleepable {
  const W = mockgpu_params.warps_per_sm, G = mockgpu_params.nr_sms * W;
  const gpu = s.gpu, ctx = s.k.ctx;
  charge(KERNEL_LAUNCH_NS);
  for (;;) {
    if (ctx.cancelled) break;
    let live = 0, runnable = 0, oldest = Infinity;
    for (let w = 0; w < W; w++) {
      if (s.next[w]! >= s.k.l.count) continue;
      live++;
      if (s.stalled[w]! >= 0) {
        if (gpu.replay_seq <= s.stalled[w]!) { oldest = Math.min(oldest, s.stalled[w]!); continue; }
        s.stalled[w] = -1;          /* replayed: retry the access */
      }
      runnable++;
      sm_run_warp(s, w, G);
    }
    if (live === 0) break;
    if (runnable === 0) {
      yield* wait_event(gpu.replay_wq, () => gpu.replay_seq > oldest || ctx.cancelled);
    } else {
      yield* cond_resched();
    }
  }
  mockgpu_sm_done(gpu, s.k);
}

/* an SM finished its part of @k; the last one completes the launch */
function mockgpu_sm_done(gpu: uvm_gpu, k: gpu_kernel): void {
  gpu.sms_running--;
  if (--k.sms_left > 0) return;
  const ctx = k.ctx;
  ctx.completed = k.seq;
  trace_event('mockgpu_kernel_done', { ctx: ctx.id, seq: k.seq, error: ctx.error, checksum: ctx.checksum });
  wake_up_all(ctx.done_wq);
  const next = ctx_queue.get(ctx)?.shift();
  if (next !== undefined) mockgpu_kernel_start(gpu, next);
}

/* kernels of a context waiting for the one running (a CUDA stream runs them in order) */
const ctx_queue = new WeakMap<gpu_context, gpu_kernel[]>();

/* spawn the SM threads of @k */
function mockgpu_kernel_start(gpu: uvm_gpu, k: gpu_kernel): void {
  const n = mockgpu_params.nr_sms, W = mockgpu_params.warps_per_sm;
  k.sms_left = n;
  trace_event('mockgpu_kernel_start', { ctx: k.ctx.id, seq: k.seq, base: k.l.base, size: k.l.size, count: k.l.count });
  for (let sm = 0; sm < n; sm++) {
    const s: sm_state = { gpu, k, sm, next: new Float64Array(W), stalled: new Float64Array(W).fill(-1) };
    for (let w = 0; w < W; w++) s.next[w] = sm * W + w;
    gpu.sms_running++;
    const th = kthread_run(`${gpu.name}-sm${sm}`, () => mockgpu_sm_thread(s));
    th.kind = 'device';
  }
}

/**
 * mockgpu_kernel_launch() - queue checked launch @l on @ctx; it starts at
 * once if the context is idle, else after the kernels before it.
 * Context: a running Scheduler (the SMs are its threads); does not sleep.
 * Return: the launch's sequence number in @ctx.
 */
export function mockgpu_kernel_launch(gpu: uvm_gpu, ctx: gpu_context, l: mockgpu_launch): number {
  const k: gpu_kernel = { ctx, l, seq: ++ctx.submitted, sms_left: 0 };
  if (ctx.completed === k.seq - 1) { mockgpu_kernel_start(gpu, k); return k.seq; }
  let q = ctx_queue.get(ctx);
  if (q === undefined) { q = []; ctx_queue.set(ctx, q); }
  q.push(k);
  return k.seq;
}
