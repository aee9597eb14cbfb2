/*
 * lib/sim/trace.ts - an ftrace-like event tracer and event counters.
 *
 * Models kernel/trace/ (the ring buffer, trace events, tracing_on/off) at
 * teaching size. trace_event() records a timestamp (the running thread's
 * simulated clock), the thread's name, the event name and its fields into
 * a bounded ring; when the ring is full the oldest events are overwritten,
 * as ftrace's overwrite mode does. When tracing is off trace_event() costs
 * one boolean test (callers that build expensive fields can test
 * tracing_is_on() first, as Linux's trace_*_enabled() is used).
 *
 * Counters are separate and always on: count_event("fault:anon") etc. for
 * summaries (faults by kind, migrations, invalidations), like the vmstat
 * counters of mm/vmstat.c.
 *
 * trace_dump() output, one line per event:
 *
 *       cpu-thread-3 [     0.012345] handle_mm_fault: addr=0x7f0000001000 flags=WRITE
 *
 * Fields whose name suggests an address (addr, start, end, pfn, iova, ...)
 * print in hex.
 */
import { current } from './sched.js';
import { formatNs } from './clock.js';

export type TraceField = number | string | boolean | bigint;

/** One recorded event. */
export interface TraceRecord {
  readonly ts: number;          /* simulated ns (the thread's vtime) */
  readonly thread: string;      /* name of the thread that emitted it */
  readonly name: string;        /* event name, e.g. "hmm_range_fault" */
  readonly fields: Readonly<Record<string, TraceField>>;
}

const DEFAULT_SIZE = 4096;

let on = false;
let ring: (TraceRecord | undefined)[] = new Array(DEFAULT_SIZE);
let head = 0;                  /* next slot to write */
let count = 0;                 /* valid records, <= ring.length */
let lost = 0;                  /* records overwritten */

/** Counters by name; read with get_counter() or iterate. */
export const trace_counters: ReadonlyMap<string, number> = new Map<string, number>();
const counters = trace_counters as Map<string, number>;

/** tracing_on() - start recording events. */
export function tracing_on(): void {
  on = true;
}

/** tracing_off() - stop recording events (the ring is kept). */
export function tracing_off(): void {
  on = false;
}

/** tracing_is_on() - is trace_event() recording? */
export function tracing_is_on(): boolean {
  return on;
}

/**
 * trace_set_buffer_size() - resize the ring to @n events, emptying it.
 * @n: capacity, >= 1.
 */
export function trace_set_buffer_size(n: number): void {
  ring = new Array(Math.max(1, Math.floor(n)));
  head = 0;
  count = 0;
  lost = 0;
}

/**
 * trace_event() - record event @name with @fields, if tracing is on.
 * @name: event name, in the kernel's naming (e.g. "mmu_notifier_invalidate").
 * @fields: small values; the object is kept, not copied.
 * Context: any; never yields.
 */
export function trace_event(name: string, fields: Record<string, TraceField>): void {
  if (!on) return;
  const t = current();
  if (count === ring.length) lost++;
  else count++;
  const task = t.task as { comm?: string; pid?: number } | null;
  const who = task !== null && task !== undefined && task.pid !== undefined ? `${task.comm}-${task.pid}` : t.name;
  ring[head] = { ts: t.vtime, thread: who, name, fields };
  head = (head + 1) % ring.length;
}

/** trace_records() - recorded events, oldest first. */
export function trace_records(): TraceRecord[] {
  const out: TraceRecord[] = [];
  const start = (head - count + ring.length) % ring.length;
  for (let i = 0; i < count; i++) out.push(ring[(start + i) % ring.length]!);
  return out;
}

/** trace_lost() - events overwritten since the last reset. */
export function trace_lost(): number {
  return lost;
}

const ADDRESS_FIELD = /(^|_)(addr|address|start|end|pfn|iova|va|pa|dma|flags)$|^(addr|start|end|pfn)/i;

function formatField(k: string, v: TraceField): string {
  if ((typeof v === 'number' && Number.isInteger(v) && v >= 0) || typeof v === 'bigint') {
    if (ADDRESS_FIELD.test(k)) return `${k}=0x${v.toString(16)}`;
  }
  return `${k}=${String(v)}`;
}

/** traceFormat() - one record as an ftrace-style line. */
export function traceFormat(r: TraceRecord): string {
  const f = Object.entries(r.fields).map(([k, v]) => formatField(k, v)).join(' ');
  return `${r.thread.padStart(16)} [${formatNs(r.ts).padStart(13)}] ${r.name}:${f ? ' ' + f : ''}`;
}

/**
 * trace_dump() - the ring as text, oldest first, one line per event.
 * Return: the lines joined with "\n" (empty string when empty).
 */
export function trace_dump(): string {
  return trace_records().map(traceFormat).join('\n');
}

/** trace_clear() - empty the ring (tracing stays on or off). */
export function trace_clear(): void {
  ring.fill(undefined);
  head = 0;
  count = 0;
  lost = 0;
}

/**
 * count_event() - add @n to counter @name.
 * Context: any; never yields.
 */
export function count_event(name: string, n = 1): void {
  counters.set(name, (counters.get(name) ?? 0) + n);
}

/** get_counter() - value of counter @name (0 if never counted). */
export function get_counter(name: string): number {
  return counters.get(name) ?? 0;
}

/** reset_counters() - zero every counter. */
export function reset_counters(): void {
  counters.clear();
}

/** resetTrace() - tracing off, default ring size, empty ring, no counters. */
export function resetTrace(): void {
  on = false;
  trace_set_buffer_size(DEFAULT_SIZE);
  counters.clear();
}
