/*
 * drivers/gpu/mockgpu/uvm_gpu.ts - the mock GPU's core structures: the
 * GPU, an address space bound to one mm (uvm_va_space), a context (a
 * channel user space launches kernels on), the module parameters, the
 * counters and the tools events.
 *
 * Follows NVIDIA UVM's uvm_gpu.h (uvm_gpu_t), uvm_va_space.h and
 * uvm_tools.c (events and counters) in kernel-open/nvidia-uvm/, reduced to
 * what one GPU under HMM needs. The hardware formats are in
 * include/linux/mockgpu.ts, the ABI in include/uapi/linux/mockgpu.ts, and
 * Documentation/vm/hmm.txt ("The mock GPU") walks the fault path.
 *
 * Simplified: one GPU (/dev/mockgpu0); a uvm_va_space belongs to one open
 * file and one mm (UVM: one per open of /dev/nvidia-uvm, shared by GPUs);
 * its device page table is per address space (UVM: per GPU VA space).
 */
import type { mm_struct } from '../../../include/linux/mm_types.js';
import type { mmu_interval_notifier } from '../../../include/linux/mmu_notifier.js';
import { UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH } from '../../../include/linux/mockgpu.js';
import { MOCKGPU_NR_STATS, mockgpu_stat_names, type mockgpu_stat_name, type mockgpu_launch } from '../../../include/uapi/linux/mockgpu.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { mutex } from '../../../lib/locking/mutex.js';
import { lockdep_set_class } from '../../../lib/locking/lockdep.js';
import { wait_queue_head } from '../../../lib/locking/wait.js';
import { count_event, trace_event, type TraceField } from '../../../lib/sim/trace.js';
import { GPU_FAULT_BATCH } from '../../../lib/sim/costs.js';
import type { gpt } from '../../../lib/gpt/gpt.js';
import type { uvm_pmm_gpu } from './uvm_pmm_gpu.js';
import type { uvm_channel } from './uvm_channel.js';
import type { uvm_tlb } from './uvm_mmu.js';
import type { uvm_fault_buffer } from './uvm_gpu_replayable_faults.js';

/**
 * Module parameters (module_param in UVM; set before boot, reset by tests).
 *  vram_bytes: VRAM size; 0 means half of RAM, at most 64 MiB (always
 *      smaller than RAM, so that HMM has somewhere to put evicted data)
 *  nr_sms, warps_per_sm: streaming multiprocessors, warps each
 *  fault_buffer_entries: capacity of the replayable fault buffer (UVM:
 *      sized by the hardware); a full buffer drops packets (overflow)
 *  fault_batch_count: uvm_perf_fault_batch_count [256]
 *  max_batches_per_service: uvm_perf_fault_max_batches_per_service [20]
 *  replay_policy: uvm_perf_fault_replay_policy [BATCH_FLUSH]
 *  tlb_entries: device TLB capacity (fully associative, LRU)
 *  migrate_to_vram: migrate anonymous memory on GPU fault (UVM's default
 *      for HMM ranges); false maps system memory remotely instead
 *  evict: when VRAM is full, evict a root chunk (uvm_hmm_evict.ts) to
 *      make room (UVM's behaviour); false maps the page remotely instead
 *  evict_remote_map: after eviction the GPU maps the pages' new system
 *      copies remotely (aperture SYS) instead of faulting on them again
 *  nr_gpus: devices created by uvm_gpu_init(): /dev/mockgpu0, 1, ... (1 or 2)
 *  broken_skip_read_retry: TEST ONLY - publish serviced faults without
 *      mmu_interval_read_retry(); the race check proves it catches this
 *  broken_evict_pinned: TEST ONLY - let eviction pick a root chunk that a
 *      migration in flight holds and retry it forever (the shape of UVM
 *      issue #1223: the evictor waits for pages it holds itself)
 *  broken_evict_ignore_busy: TEST ONLY - one eviction pass, and pages a
 *      concurrent fault held locked are counted free anyway (the chunk is
 *      handed out while still in use)
 */
export const mockgpu_params = {
  vram_bytes: 0,
  nr_sms: 8,
  warps_per_sm: 32,
  fault_buffer_entries: 2048,
  fault_batch_count: GPU_FAULT_BATCH,
  max_batches_per_service: 20,
  replay_policy: UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH,
  tlb_entries: 512,
  migrate_to_vram: true,
  evict: true,
  evict_remote_map: true,
  nr_gpus: 1,
  broken_skip_read_retry: false,
  broken_evict_pinned: false,
  broken_evict_ignore_busy: false,
};
const DEFAULT_PARAMS = Object.freeze({ ...mockgpu_params });

/** mockgpuParamsReset() - every parameter back to its default (tests). */
export function mockgpuParamsReset(): void {
  Object.assign(mockgpu_params, DEFAULT_PARAMS);
}

/**
 * One fault as the servicing code sees it after coalescing (UVM: the
 * representative uvm_fault_buffer_entry_t of a page).
 */
export interface uvm_service_fault {
  va: number;                 /* page aligned */
  access: number;             /* MOCKGPU_FAULT_ACCESS_*, the most intrusive seen */
  ctx: gpu_context;
  fatal: number;              /* 0, or -errno once servicing gave up on it */
}

/**
 * struct mockgpu_hmm_ops - the glue between the device core and one era of
 * HMM (uvm_hmm.ts for mainline, uvm_hmm_v8.ts for the 2015 API).
 *
 * @va_space_init: subscribe to the mm's invalidations. Context: may sleep.
 *   Return: 0 or -errno.
 * @va_space_fini: unsubscribe; after it returns no callback runs for
 *   @vs. Context: may sleep.
 * @service_block: make every fault of @faults (one 2 MiB VA block, sorted
 *   by address) translatable by pushing GPU PTE writes, migrating to VRAM
 *   or mapping system memory; set .fatal on faults it cannot resolve.
 *   Context: bottom half; takes mmap_lock for read and vs.mutex; may sleep.
 */
export interface mockgpu_hmm_ops {
  readonly name: 'mainline' | 'v8' | 'sva' | 'gmem';
  va_space_init(vs: uvm_va_space): Sleepable<number>;
  va_space_fini(vs: uvm_va_space): Sleepable;
  service_block(vs: uvm_va_space, faults: uvm_service_fault[]): Sleepable;
  /**
   * translate() - optional: a glue with no GPU page table of its own (SVA,
   * mockgpu_sva.ts) translates the SMs' accesses itself. Return: a PTE in
   * the GPU's format allowing @access, or 0 when the warp must stall (the
   * glue sent a request whose answer bumps replay_seq or cancels @ctx).
   * Context: an SM thread; must not sleep.
   */
  translate?(vs: uvm_va_space, va: number, access: number, ctx: gpu_context): number;
}

/**
 * struct gpu_context - a context user space launches kernels on (UVM: a
 * channel/TSG; its instance pointer tags its faults).
 */
export class gpu_context {
  /* launch error: 0, or -errno of the fatal fault that cancelled it */
  error = 0;
  cancelled = false;
  /* launches submitted / finished (a WAIT sleeps on done_wq until equal) */
  submitted = 0;
  completed = 0;
  /* sum of the u32 words READ kernels loaded, mod 2^32 */
  checksum = 0;
  readonly done_wq: wait_queue_head;
  constructor(readonly id: number, readonly vs: uvm_va_space) {
    this.done_wq = new wait_queue_head(`mockgpu ctx${id}.done`);
  }
}

/**
 * struct uvm_va_space - the GPU's view of one mm, created by open().
 * pt maps GPU VAs (= CPU VAs) to GPU PTEs; it is written only by the
 * channel's engine (commands), read by the SMs' page walker.
 */
export class uvm_va_space {
  /* protected by mutex: the publish side of the retry protocol */
  readonly mutex: mutex;
  notifier: mmu_interval_notifier | null = null;
  /* the era glue's own state (v8: the hmm_mirror) */
  glue_data: unknown = null;
  contexts = new Map<number, gpu_context>();
  next_ctx = 1;
  closed = false;
  constructor(readonly id: number, readonly gpu: uvm_gpu, readonly mm: mm_struct, readonly pt: gpt,
              readonly glue: mockgpu_hmm_ops) {
    this.mutex = lockdep_set_class(new mutex(`mockgpu va_space${id}.mutex`), '&va_space->mutex');
  }
}

/** struct uvm_gpu - the device. */
export class uvm_gpu {
  readonly stats = new Float64Array(MOCKGPU_NR_STATS);
  readonly va_spaces = new Set<uvm_va_space>();
  next_va_space = 1;
  /* replays issued; a stalled warp waits until this passes its fault's value */
  replay_seq = 0;
  readonly replay_wq: wait_queue_head;
  /* SM threads still running kernels */
  sms_running = 0;
  constructor(readonly name: string, readonly pmm: uvm_pmm_gpu, readonly channel: uvm_channel,
              readonly ce: uvm_channel, readonly tlb: uvm_tlb, readonly fault_buffer: uvm_fault_buffer) {
    this.replay_wq = new wait_queue_head(`${name}.replay`);
  }
}

/** A kernel in flight: the launch block and where each warp is in its stream. */
export interface gpu_kernel {
  ctx: gpu_context;
  l: mockgpu_launch;
  seq: number;                /* the context's launch number */
  sms_left: number;           /* SM threads still working on it */
}

const stat_index = new Map<string, number>(mockgpu_stat_names.map((n, i) => [n, i]));

/** uvm_gpu_stat_add() - add @n to counter @name of @gpu (and the global counter mockgpu_<name>). */
export function uvm_gpu_stat_add(gpu: uvm_gpu, name: mockgpu_stat_name, n = 1): void {
  gpu.stats[stat_index.get(name)!] += n;
  count_event(`mockgpu_${name}`, n);
}

/** uvm_gpu_stat() - the value of counter @name. */
export function uvm_gpu_stat(gpu: uvm_gpu, name: mockgpu_stat_name): number {
  return gpu.stats[stat_index.get(name)!]!;
}

/**
 * uvm_tools_record_event() - a tools event (UvmEventType* name, see
 * include/linux/mockgpu.ts) into the trace, as uvm_tools.c queues it for
 * a tools session.
 */
export function uvm_tools_record_event(type: string, fields: Record<string, TraceField>): void {
  trace_event(type, fields);
}

/** uvmGpuStatsDump() - "name value" lines of every counter, for tools. */
export function uvmGpuStatsDump(gpu: uvm_gpu): string {
  return mockgpu_stat_names.map((n, i) => `${n.padEnd(20)} ${gpu.stats[i]}`).join('\n');
}
