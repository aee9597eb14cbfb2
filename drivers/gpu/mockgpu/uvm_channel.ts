/*
 * drivers/gpu/mockgpu/uvm_channel.ts - the GPU's command queues: a ring of
 * pushes that a device engine executes in order after a latency, each
 * completing a fence the CPU can wait on.
 *
 * Follows NVIDIA UVM's uvm_channel.c and uvm_push.c: the driver begins a
 * push, appends methods (page-table writes, TLB invalidates, fault
 * replays, copy-engine copies), ends it, and gets a tracker value; it later
 * waits for the channel's semaphore to pass that value
 * (uvm_tracker_wait). Two channels per GPU here: "host" for page-table
 * writes, TLB invalidates and replays (UVM's UVM_CHANNEL_TYPE_GPU_INTERNAL
 * and MEMOPS), and "ce" for copies (UVM_CHANNEL_TYPE_CPU_TO_GPU /
 * GPU_TO_CPU). Commands of one channel execute in the order pushed: a
 * PTE write pushed before an unmap of the same page is overwritten by it,
 * never the other way round.
 *
 * The engine is a simulated device thread started when a push arrives and
 * finding the ring empty ends (a real front end idles instead; ending lets
 * Scheduler.run() finish). Its clock starts at the push's submission time;
 * each push costs GPU_CMD_LATENCY_NS plus its methods (lib/sim/costs.ts).
 *
 * Polling mode: with no scheduler running (plain synchronous callers such
 * as a CPU fault from a test), uvm_push_end() executes the push at once on
 * the caller's clock: the same commands and costs, no other thread.
 */
import { current, kthread_run, schedulerActive, type Sleepable } from '../../../lib/sim/sched.js';
import { wait_queue_head, wait_event, wake_up_all } from '../../../lib/locking/wait.js';
import { charge } from '../../../lib/sim/clock.js';
import { trace_event, count_event } from '../../../lib/sim/trace.js';
import {
  GPU_CMD_LATENCY_NS, GPU_PTE_WRITE_NS, GPU_TLB_INVALIDATE_NS, copy_cost_ns,
} from '../../../lib/sim/costs.js';
import { mockgpu_pte_decode } from '../../../include/linux/mockgpu.js';
import type { gpt } from '../../../lib/gpt/gpt.js';
import { uvm_pte_write, uvm_pte_clear_range, type uvm_tlb, uvm_tlb_invalidate } from './uvm_mmu.js';
import { fail_dev_copy, should_fail } from '../../../lib/fault-inject.js';
import { EIO } from '../../../include/uapi/asm-generic/errno.js';

/** One method of a push (a discriminated union; see uvm_channel_execute). */
export type uvm_cmd =
  | { kind: 'pte_write'; pt: gpt; vs_id: number; va: number; pte: number }
  | { kind: 'pte_clear'; pt: gpt; vs_id: number; start: number; end: number }
  | { kind: 'tlb_invalidate'; tlb: uvm_tlb; vs_id: number; start: number; end: number }
  | { kind: 'replay'; fn: () => void }
  | { kind: 'copy'; dst: Uint8Array; src: Uint8Array | null; bw: number; status?: number };

/** struct uvm_push - methods to be submitted together, then one fence. */
export interface uvm_push {
  readonly ch: uvm_channel;
  readonly name: string;
  readonly cmds: uvm_cmd[];
  submitted: number;          /* ns: the submitter's clock at uvm_push_end() */
  fence: number;              /* the channel's value once this push completes */
}

/** A copy-engine method whose completion status the pusher reads (uvm_push_copy()). */
export type uvm_copy_cmd = Extract<uvm_cmd, { kind: 'copy' }> & { status: number };

/**
 * uvm_push_copy() - append a copy of @src (null: zero-fill) into @dst at
 * bandwidth @bw to @p, with a status the pusher reads once the push's
 * fence has completed: 0, or -EIO when the copy engine failed it
 * (fail_dev_copy, lib/fault-inject.ts): @dst is then left untouched.
 * UVM learns of a copy-engine error from the channel when it waits for
 * the tracker; here the error is per copy, so the caller can abandon just
 * that page (a real channel error is fatal to the whole channel: not
 * modelled). Copies pushed with a bare { kind: 'copy' } never fail.
 * Return: the method, to read its status after uvm_channel_wait().
 */
export function uvm_push_copy(p: uvm_push, dst: Uint8Array, src: Uint8Array | null, bw: number): uvm_copy_cmd {
  const c: uvm_copy_cmd = { kind: 'copy', dst, src, bw, status: 0 };
  p.cmds.push(c);
  return c;
}

/** Pushes a ring holds before uvm_push_end() waits for room. */
export const UVM_CHANNEL_RING_PUSHES = 256;

/**
 * struct uvm_channel - one command queue and its engine.
 * ring[get .. put) are pushes not yet executed; completed is the fence of
 * the last executed push (the semaphore).
 */
export class uvm_channel {
  readonly ring: uvm_push[] = [];
  put = 0;                    /* fences handed out */
  completed = 0;
  engine_running = false;
  readonly fence_wq: wait_queue_head;
  readonly space_wq: wait_queue_head;
  commands = 0;               /* methods executed */
  pte_writes = 0;
  tlb_invalidates = 0;
  constructor(readonly name: string) {
    this.fence_wq = new wait_queue_head(`${name}.fence`);
    this.space_wq = new wait_queue_head(`${name}.space`);
  }
}

/** uvm_push_begin() - start a push on @ch named @name (for the trace). */
export function uvm_push_begin(ch: uvm_channel, name: string): uvm_push {
  return { ch, name, cmds: [], submitted: 0, fence: 0 };
}

/* cost of one method, in ns */
function cmd_cost(c: uvm_cmd): number {
  switch (c.kind) {
    case 'pte_write': return GPU_PTE_WRITE_NS;
    case 'pte_clear': return GPU_PTE_WRITE_NS;
    case 'tlb_invalidate': return GPU_TLB_INVALIDATE_NS;
    case 'replay': return 0;
    case 'copy': return copy_cost_ns(c.dst.length, c.bw);
    default: { const never: never = c; throw new Error(`unknown command ${String(never)}`); }
  }
}

/* uvm_channel_execute() - what the engine does for one method */
function uvm_channel_execute(ch: uvm_channel, c: uvm_cmd): void {
  ch.commands++;
  switch (c.kind) {
    case 'pte_write':
      ch.pte_writes++;
      uvm_pte_write(c.pt, c.va, c.pte);
      trace_event('uvm_pte_write', { vs: c.vs_id, va: c.va, pte: mockgpu_pte_decode(c.pte) });
      return;
    case 'pte_clear': {
      const n = uvm_pte_clear_range(c.pt, c.start, c.end);
      ch.pte_writes += n;
      trace_event('uvm_pte_clear', { vs: c.vs_id, start: c.start, end: c.end, cleared: n });
      return;
    }
    case 'tlb_invalidate':
      ch.tlb_invalidates++;
      uvm_tlb_invalidate(c.tlb, c.vs_id, c.start, c.end);
      trace_event('uvm_tlb_invalidate', { vs: c.vs_id, start: c.start, end: c.end });
      return;
    case 'replay':
      c.fn();
      return;
    case 'copy':
      if (c.status !== undefined && should_fail(fail_dev_copy, c.dst.length)) { c.status = -EIO; return; }
      if (c.src === null) c.dst.fill(0);
      else c.dst.set(c.src);
      return;
    default: { const never: never = c; throw new Error(`unknown command ${String(never)}`); }
  }
}

/* execute one push: latency, then its methods in order, then the semaphore release */
function uvm_channel_run_push(ch: uvm_channel, p: uvm_push): void {
  const t = current();
  if (t.vtime < p.submitted) t.vtime = p.submitted;
  let ns = GPU_CMD_LATENCY_NS;
  for (const c of p.cmds) ns += cmd_cost(c);
  charge(ns);
  for (const c of p.cmds) uvm_channel_execute(ch, c);
  ch.completed = p.fence;
  trace_event('uvm_push_done', { ch: ch.name, push: p.name, fence: p.fence, methods: p.cmds.length });
}

/* the engine thread: drain the ring, then end */
function* uvm_channel_engine(ch: uvm_channel): Sleepable {
  while (ch.ring.length > 0) {
    const p = ch.ring.shift()!;
    uvm_channel_run_push(ch, p);
    wake_up_all(ch.space_wq);
    wake_up_all(ch.fence_wq);
  }
  ch.engine_running = false;
}

/* polling mode: execute what is queued, on the caller's clock */
function uvm_channel_drain_inline(ch: uvm_channel): void {
  while (ch.ring.length > 0) uvm_channel_run_push(ch, ch.ring.shift()!);
  ch.engine_running = false;
}

/**
 * uvm_push_end() - submit @p: it gets the next fence value and joins the
 * ring; the engine is started if idle.
 * Context: may sleep while the ring is full (never when @p is empty of
 * room needs: callers on non-blockable paths must not push). Return: the
 * fence value to wait for.
 */
export function* uvm_push_end(p: uvm_push): Sleepable<number> {
  const ch = p.ch;
  if (schedulerActive() !== null) {
    yield* wait_event(ch.space_wq, () => ch.ring.length < UVM_CHANNEL_RING_PUSHES);
  }
  p.fence = ++ch.put;
  p.submitted = current().vtime;
  ch.ring.push(p);
  count_event(`mockgpu_push_${p.name}`);
  if (schedulerActive() === null) {
    uvm_channel_drain_inline(ch);
  } else if (!ch.engine_running) {
    ch.engine_running = true;
    const th = kthread_run(`${ch.name}`, () => uvm_channel_engine(ch));
    th.kind = 'device';
  }
  return p.fence;
}

/**
 * uvm_channel_wait() - sleep until @ch has executed the push of @fence
 * (uvm_tracker_wait). The caller's clock becomes the completion time.
 * Context: may sleep.
 */
export function* uvm_channel_wait(ch: uvm_channel, fence: number): Sleepable {
  if (schedulerActive() === null) { uvm_channel_drain_inline(ch); return; }
  yield* wait_event(ch.fence_wq, () => ch.completed >= fence);
}

/** uvm_channel_fence_done() - has @fence completed? */
export function uvm_channel_fence_done(ch: uvm_channel, fence: number): boolean {
  return ch.completed >= fence;
}

/** uvm_channel_idle() - nothing queued and the engine stopped. */
export function uvm_channel_idle(ch: uvm_channel): boolean {
  return ch.ring.length === 0 && !ch.engine_running;
}
