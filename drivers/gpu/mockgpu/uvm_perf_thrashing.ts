/*
 * drivers/gpu/mockgpu/uvm_perf_thrashing.ts - thrashing detection and
 * mitigation: a page that keeps moving between the CPU and the GPU is
 * first throttled, then pinned.
 *
 * Follows NVIDIA UVM's uvm_perf_thrashing.c (our own code, its rule and
 * defaults; the constants are in uvm_perf_module.ts):
 *
 *  detection: per page, the time of its last residency change and the
 *    number of consecutive changes that each came within the lapse
 *    (500 us) of the previous one; at uvm_perf_thrashing_threshold (3)
 *    the page is thrashing (ThrashingDetected). It stays so until the
 *    page has been quiet for the epoch (2000 lapses = 1 s).
 *  mitigation, when a processor faults on a thrashing page:
 *    THROTTLE: the processor is kept off the page for the nap (1 lapse):
 *      a GPU fault is held back that long, a CPU fault sleeps that long
 *      (ThrottlingStart/ThrottlingEnd), while the other processor keeps
 *      using the page; then the fault is serviced as usual;
 *    PIN: after uvm_perf_thrashing_pin_threshold (10) throttles, the page
 *      stays where it is (system memory: a CPU fault must bring it back
 *      anyway, since the CPU cannot map device-private VRAM) and the GPU
 *      maps it remotely; the pin expires after uvm_perf_thrashing_pin
 *      (300 lapses = 150 ms), and the page's history starts over.
 *
 * Simplified: one history per page for every processor (UVM keeps the
 * set of processors that touched it and a per-block reset budget,
 * uvm_perf_thrashing_max_resets); the lapse does not self-tune; a
 * throttled GPU fault holds the fault bottom half for the nap instead of
 * replaying and coming back later.
 */
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import {
  UvmEventTypeThrashingDetected, UvmEventTypeThrottlingEnd, UvmEventTypeThrottlingStart,
} from '../../../include/linux/mockgpu.js';
import { now } from '../../../lib/sim/clock.js';
import { trace_event } from '../../../lib/sim/trace.js';
import { uvm_gpu_stat_add, uvm_tools_record_event, type uvm_va_space } from './uvm_gpu.js';
import { uvm_perf_params, uvmPerfThrashingLapseNs } from './uvm_perf_module.js';

/** struct page_thrashing_info - one page's history (UVM: page_thrashing_info_t). */
export interface page_thrashing_info {
  last_ts: number;            /* simulated ns of the last residency change */
  events: number;             /* consecutive changes, each within the lapse of the previous */
  thrashing: boolean;
  throttles: number;          /* THROTTLE hints given since detection */
  pinned_until: number;       /* 0, or when the pin expires */
}

/** The hint for one fault (UVM: uvm_perf_thrashing_hint_t). */
export type uvm_thrashing_hint =
  | { type: 'none' }
  | { type: 'throttle'; until: number }
  | { type: 'pin'; until: number };

const pages = new WeakMap<uvm_va_space, Map<number, page_thrashing_info>>();

function info_of(vs: uvm_va_space, va: number, create: boolean): page_thrashing_info | undefined {
  let m = pages.get(vs);
  if (m === undefined) { if (!create) return undefined; m = new Map(); pages.set(vs, m); }
  const key = Math.floor(va / PAGE_SIZE);
  let p = m.get(key);
  if (p === undefined && create) { p = { last_ts: 0, events: 0, thrashing: false, throttles: 0, pinned_until: 0 }; m.set(key, p); }
  return p;
}

function forget(p: page_thrashing_info): void {
  p.events = 0; p.thrashing = false; p.throttles = 0; p.pinned_until = 0;
}

/**
 * uvm_perf_thrashing_event() - page @va of @vs changed residency because
 * processor @proc faulted (a migration either way).
 * Context: the fault path; does not sleep.
 */
export function uvm_perf_thrashing_event(vs: uvm_va_space, va: number, proc: number): void {
  if (!uvm_perf_params.uvm_perf_thrashing_enable) return;
  const t = now(), lapse = uvmPerfThrashingLapseNs();
  const p = info_of(vs, va, true)!;
  if (p.events > 0 && t - p.last_ts > uvm_perf_params.uvm_perf_thrashing_epoch * lapse) forget(p);
  p.events = p.events > 0 && t - p.last_ts <= lapse ? p.events + 1 : 1;
  p.last_ts = t;
  if (!p.thrashing && p.events >= uvm_perf_params.uvm_perf_thrashing_threshold) {
    p.thrashing = true;
    uvm_gpu_stat_add(vs.gpu, 'thrashing_detected');
    uvm_tools_record_event(UvmEventTypeThrashingDetected, { va: va - (va % PAGE_SIZE), proc, events: p.events });
  }
}

/**
 * uvm_perf_thrashing_get_hint() - what to do about a fault of processor
 * @proc on page @va: nothing, THROTTLE until a time, or PIN.
 * Context: the fault path; does not sleep (the caller naps).
 */
export function uvm_perf_thrashing_get_hint(vs: uvm_va_space, va: number, proc: number): uvm_thrashing_hint {
  if (!uvm_perf_params.uvm_perf_thrashing_enable) return { type: 'none' };
  const p = info_of(vs, va, false);
  if (p === undefined) return { type: 'none' };
  const t = now(), lapse = uvmPerfThrashingLapseNs();
  if (p.pinned_until > 0) {
    if (t < p.pinned_until) return { type: 'pin', until: p.pinned_until };
    trace_event('uvm_thrashing_unpin', { va, proc });
    forget(p);
    return { type: 'none' };
  }
  if (!p.thrashing) return { type: 'none' };
  if (t - p.last_ts > uvm_perf_params.uvm_perf_thrashing_epoch * lapse) { forget(p); return { type: 'none' }; }
  if (p.throttles >= uvm_perf_params.uvm_perf_thrashing_pin_threshold) {
    p.pinned_until = t + uvm_perf_params.uvm_perf_thrashing_pin * lapse;
    uvm_gpu_stat_add(vs.gpu, 'pins');
    trace_event('uvm_thrashing_pin', { va: va - (va % PAGE_SIZE), proc, until: p.pinned_until });
    return { type: 'pin', until: p.pinned_until };
  }
  p.throttles++;
  const until = t + uvm_perf_params.uvm_perf_thrashing_nap * lapse;
  uvm_gpu_stat_add(vs.gpu, 'throttles');
  uvm_tools_record_event(UvmEventTypeThrottlingStart, { va: va - (va % PAGE_SIZE), proc, until, throttles: p.throttles });
  return { type: 'throttle', until };
}

/** uvm_perf_thrashing_throttle_end() - the nap of a throttled fault is over (ThrottlingEnd). */
export function uvm_perf_thrashing_throttle_end(va: number, proc: number): void {
  uvm_tools_record_event(UvmEventTypeThrottlingEnd, { va: va - (va % PAGE_SIZE), proc });
}

/** uvm_perf_thrashing_is_thrashing() - is @va thrashing (or pinned) now? (the prefetcher skips its big page) */
export function uvm_perf_thrashing_is_thrashing(vs: uvm_va_space, va: number): boolean {
  const p = info_of(vs, va, false);
  return p !== undefined && (p.thrashing || p.pinned_until > now());
}

/** uvmPerfThrashingInfo() - page @va's history, or undefined (tests, tools). */
export function uvmPerfThrashingInfo(vs: uvm_va_space, va: number): Readonly<page_thrashing_info> | undefined {
  return info_of(vs, va, false);
}

/** uvm_perf_thrashing_clear() - forget the pages of [start, end) (unmapped memory). */
export function uvm_perf_thrashing_clear(vs: uvm_va_space, start: number, end: number): void {
  const m = pages.get(vs);
  if (m === undefined || m.size === 0) return;
  const a = Math.floor(start / PAGE_SIZE), b = Math.ceil(end / PAGE_SIZE);
  if (b - a < m.size) { for (let k = a; k < b; k++) m.delete(k); return; }
  for (const k of [...m.keys()]) if (k >= a && k < b) m.delete(k);
}
