/*
 * drivers/gpu/mockgpu/uvm_gpu_replayable_faults.ts - the replayable fault
 * buffer and its bottom half: fetch a batch, coalesce, sort, service per
 * 2 MiB VA block, replay.
 *
 * Follows NVIDIA UVM's uvm_gpu_replayable_faults.c
 * (uvm_gpu_service_replayable_faults, fetch_fault_buffer_entries,
 * preprocess_fault_batch, service_fault_batch, push_replay_on_gpu,
 * fault_buffer_flush_locked) with its default constants: batches of
 * uvm_perf_fault_batch_count = 256 packets, at most
 * uvm_perf_fault_max_batches_per_service = 20 batches per bottom-half
 * run, replay policy BATCH_FLUSH. The packet layout and the policies are
 * in include/linux/mockgpu.ts.
 *
 *   SM miss --> packet at PUT (GPU side; full ring: packet lost, counted)
 *           --> "interrupt": the bottom half starts if idle
 *   bottom half: fetch up to 256 packets from GET (GET advances)
 *     -> coalesce: one representative per (context, page), keeping the
 *        most intrusive access (atomic > write > read); packets of
 *        cancelled contexts are dropped
 *     -> sort by (address space, address)
 *     -> for each 2 MiB VA block: glue.service_block() (uvm_hmm.ts or
 *        uvm_hmm_v8.ts): hmm_range_fault or migrate_vma_*, GPU PTE writes
 *        pushed on the host channel
 *     -> faults left fatal cancel their context (FatalFault)
 *     -> replay per policy: BLOCK after each block, BATCH after each batch,
 *        BATCH_FLUSH: discard what is left in the buffer, then replay,
 *        ONCE: one replay when the buffer is empty
 * A replay is a command on the same channel as the PTE writes, so it
 * executes after them: a replayed access sees the new translation.
 *
 * Simplified: no precise cancel procedure (a fatal fault cancels its whole
 * context at once, which is what Volta+ targeted cancel achieves), no
 * throttling, no prefetch faults, PUT is not re-read under BATCH_FLUSH.
 */
import {
  UVM_PERF_FAULT_REPLAY_POLICY_BLOCK, UVM_PERF_FAULT_REPLAY_POLICY_BATCH, UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH,
  UVM_PERF_FAULT_REPLAY_POLICY_ONCE, UVM_VA_BLOCK_SIZE, UvmEventTypeGpuFault, UvmEventTypeFaultBufferOverflow,
  UvmEventTypeFatalFault, UvmEventTypeGpuFaultReplay, mockgpu_fault_access_names, uvm_replay_policy_names,
} from '../../../include/linux/mockgpu.js';
import { current, kthread_run, type Sleepable } from '../../../lib/sim/sched.js';
import { wait_queue_head, wake_up_all } from '../../../lib/locking/wait.js';
import { charge } from '../../../lib/sim/clock.js';
import { trace_event } from '../../../lib/sim/trace.js';
import { GPU_FAULT_FETCH_NS, GPU_FAULT_INTERRUPT_NS } from '../../../lib/sim/costs.js';
import {
  mockgpu_params, uvm_gpu_stat_add, uvm_tools_record_event, type gpu_context, type uvm_gpu, type uvm_service_fault,
} from './uvm_gpu.js';
import { uvm_push_begin, uvm_push_end } from './uvm_channel.js';

/**
 * struct uvm_fault_buffer - the hardware ring (typed arrays, one slot per
 * packet) and the bottom half's state. get and put count packets since
 * creation; the slot of packet n is n mod capacity.
 */
export class uvm_fault_buffer {
  readonly va: Float64Array;
  readonly access: Uint8Array;
  readonly sm: Uint16Array;
  readonly warp: Uint16Array;
  readonly ts: Float64Array;
  readonly ctx: (gpu_context | null)[];
  get = 0;
  put = 0;
  bh_running = false;
  readonly idle_wq: wait_queue_head;
  constructor(readonly capacity: number, name = 'mockgpu0') {
    this.idle_wq = new wait_queue_head(`${name}.fault_bh.idle`);
    this.va = new Float64Array(capacity);
    this.access = new Uint8Array(capacity);
    this.sm = new Uint16Array(capacity);
    this.warp = new Uint16Array(capacity);
    this.ts = new Float64Array(capacity);
    this.ctx = new Array<gpu_context | null>(capacity).fill(null);
  }
}

/**
 * uvm_fault_buffer_write() - the GPU side: an SM writes a fault packet at
 * PUT and raises the interrupt (starting the bottom half if it is idle).
 * A full ring loses the packet (FaultBufferOverflow); the warp stays
 * stalled and faults again after the next replay.
 * Context: an SM thread; does not sleep. Return: true if written.
 */
export function uvm_fault_buffer_write(gpu: uvm_gpu, va: number, access: number, ctx: gpu_context,
                                       sm: number, warp: number): boolean {
  const fb = gpu.fault_buffer;
  const written = fb.put - fb.get < fb.capacity;
  if (!written) {
    uvm_gpu_stat_add(gpu, 'buffer_overflows');
    uvm_tools_record_event(UvmEventTypeFaultBufferOverflow, { va, sm, warp });
  } else {
    const i = fb.put % fb.capacity;
    fb.va[i] = va; fb.access[i] = access; fb.sm[i] = sm; fb.warp[i] = warp; fb.ts[i] = current().vtime; fb.ctx[i] = ctx;
    fb.put++;
    uvm_gpu_stat_add(gpu, 'gpu_faults');
    uvm_tools_record_event(UvmEventTypeGpuFault, { ctx: ctx.id, va, access: mockgpu_fault_access_names[access]!, sm, warp });
  }
  if (!fb.bh_running) {
    fb.bh_running = true;
    const th = kthread_run(`${gpu.name}-fault_bh`, () => uvm_gpu_service_replayable_faults(gpu));
    th.kind = 'kthread';
  }
  return written;
}

/**
 * fetch_fault_buffer_entries() - read up to @max packets from GET and
 * coalesce them: one uvm_service_fault per (context, page) with the most
 * intrusive access; packets of cancelled contexts are dropped.
 * Return: the representatives, in arrival order, and the packets read.
 */
export function fetch_fault_buffer_entries(gpu: uvm_gpu, max: number): { faults: uvm_service_fault[]; fetched: number } {
  const fb = gpu.fault_buffer;
  const seen = new Map<number, uvm_service_fault>();
  let fetched = 0;
  while (fb.get < fb.put && fetched < max) {
    const i = fb.get % fb.capacity;
    const ctx = fb.ctx[i]!;
    fb.ctx[i] = null;
    fb.get++;
    fetched++;
    if (ctx.cancelled) continue;
    const key = ctx.id * 2 ** 36 + fb.va[i]! / 4096;     /* (context, virtual page) */
    const rep = seen.get(key);
    if (rep === undefined) seen.set(key, { va: fb.va[i]!, access: fb.access[i]!, ctx, fatal: 0 });
    else {
      if (fb.access[i]! > rep.access) rep.access = fb.access[i]!;
      uvm_gpu_stat_add(gpu, 'faults_duplicate');
    }
  }
  charge(fetched * GPU_FAULT_FETCH_NS);
  return { faults: [...seen.values()], fetched };
}

/** preprocess_fault_batch() - sort by (address space, address). */
export function preprocess_fault_batch(faults: uvm_service_fault[]): void {
  faults.sort((a, b) => a.ctx.vs.id - b.ctx.vs.id || a.va - b.va);
}

/**
 * push_replay_on_gpu() - push a replay: when it executes, every stalled
 * warp retries (GpuFaultReplay). Context: may sleep (ring full).
 */
export function* push_replay_on_gpu(gpu: uvm_gpu, why: string): Sleepable<number> {
  const p = uvm_push_begin(gpu.channel, 'replay');
  trace_event('uvm_replay_push', { why });
  p.cmds.push({ kind: 'replay', fn: () => {
    gpu.replay_seq++;
    uvm_gpu_stat_add(gpu, 'replays');
    uvm_tools_record_event(UvmEventTypeGpuFaultReplay, { seq: gpu.replay_seq, why });
    wake_up_all(gpu.replay_wq);
  } });
  return yield* uvm_push_end(p);
}

/**
 * uvm_gpu_cancel_context() - stop every kernel of @ctx: its warps leave
 * their replay wait and queued launches end at once. A fatal fault
 * (@fatal) records @err as the launch error (FatalFault); a context torn
 * down by close or exit is cancelled without one.
 */
export function uvm_gpu_cancel_context(gpu: uvm_gpu, ctx: gpu_context, err: number, va: number, fatal = true): void {
  if (ctx.cancelled) return;
  ctx.cancelled = true;
  if (fatal) {
    if (ctx.error === 0) ctx.error = err;
    uvm_gpu_stat_add(gpu, 'fatal_faults');
    uvm_tools_record_event(UvmEventTypeFatalFault, { ctx: ctx.id, va, err });
  }
  wake_up_all(gpu.replay_wq);
}

/*
 * service_fault_batch() - service sorted representatives block by block;
 * BLOCK policy replays after each block. Fatal faults cancel their context.
 */
function* service_fault_batch(gpu: uvm_gpu, faults: uvm_service_fault[]): Sleepable {
  for (let i = 0; i < faults.length;) {
    const vs = faults[i]!.ctx.vs;
    const block = Math.floor(faults[i]!.va / UVM_VA_BLOCK_SIZE);
    let j = i + 1;
    while (j < faults.length && faults[j]!.ctx.vs === vs && Math.floor(faults[j]!.va / UVM_VA_BLOCK_SIZE) === block) j++;
    const group = faults.slice(i, j).filter((f) => !f.ctx.cancelled);
    if (group.length > 0 && !vs.closed) {
      trace_event('uvm_service_block', { vs: vs.id, start: block * UVM_VA_BLOCK_SIZE, faults: group.length });
      yield* vs.glue.service_block(vs, group);
      uvm_gpu_stat_add(gpu, 'faults_serviced', group.length);
      for (const f of group) if (f.fatal) uvm_gpu_cancel_context(gpu, f.ctx, f.fatal, f.va);
      if (mockgpu_params.replay_policy === UVM_PERF_FAULT_REPLAY_POLICY_BLOCK) yield* push_replay_on_gpu(gpu, 'block');
    }
    i = j;
  }
}

/**
 * uvm_gpu_service_replayable_faults() - the bottom half: batches until the
 * buffer is empty (at most max_batches_per_service per round), replaying
 * per the policy; then it ends (the next packet starts it again).
 * Context: kernel thread; may sleep.
 */
export function* uvm_gpu_service_replayable_faults(gpu: uvm_gpu): Sleepable {
  const fb = gpu.fault_buffer;
  const policy = mockgpu_params.replay_policy;
  charge(GPU_FAULT_INTERRUPT_NS);
  while (fb.get < fb.put) {
    for (let b = 0; b < mockgpu_params.max_batches_per_service && fb.get < fb.put; b++) {
      const { faults, fetched } = fetch_fault_buffer_entries(gpu, mockgpu_params.fault_batch_count);
      uvm_gpu_stat_add(gpu, 'fault_batches');
      preprocess_fault_batch(faults);
      trace_event('uvm_fault_batch', { fetched, faults: faults.length, policy: uvm_replay_policy_names[policy]! });
      yield* service_fault_batch(gpu, faults);
      if (policy === UVM_PERF_FAULT_REPLAY_POLICY_BATCH) yield* push_replay_on_gpu(gpu, 'batch');
      else if (policy === UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH) {
        const dropped = fb.put - fb.get;
        for (; fb.get < fb.put; fb.get++) fb.ctx[fb.get % fb.capacity] = null;
        trace_event('uvm_fault_buffer_flush', { dropped });
        yield* push_replay_on_gpu(gpu, 'batch_flush');
      }
    }
  }
  if (policy === UVM_PERF_FAULT_REPLAY_POLICY_ONCE) yield* push_replay_on_gpu(gpu, 'once');
  fb.bh_running = false;
  wake_up_all(fb.idle_wq);
}
