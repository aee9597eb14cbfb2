/*
 * lib/sim/trace.ts - an ftrace-like event tracer and event counters.
 *
 * Models kernel/trace/ (the ring buffer, trace events, tracing_on/off) at
 * teaching size. trace_event() records a timestamp (the running thread's
 * simulated clock), the thread, the event name and its fields into
 * a bounded ring; when the ring is full the oldest events are overwritten,
 * as ftrace's overwrite mode does. When tracing is off trace_event() costs
 * one boolean test (callers that build expensive fields can test
 * tracing_is_on() first, as Linux's trace_*_enabled() is used).
 *
 * Counters are separate and always on: count_event("fault:anon") etc. for
 * summaries (faults by kind, migrations, invalidations), like the vmstat
 * counters of mm/vmstat.c.
 *
 * ftrace_dump() output, one line per event, in ftrace's format
 * (Documentation/trace/ftrace.rst, "Output format"):
 *
 *       parent-1       [000] .....     0.000012: handle_mm_fault: mm=1 addr=0x7f0000001000 flags=FAULT_FLAG_WRITE|...
 *   comm-pid             cpu flags     seconds  event           fields
 *
 * The task is the simulated thread's process (comm-pid; a kernel thread
 * or device engine shows its own name and its thread id). Every
 * simulated thread runs on a CPU of its own, numbered by thread id (the
 * boot thread, which plain synchronous calls run on, is CPU 0). The flags
 * column is ftrace's irqs-off, need-resched, hardirq/softirq, preempt
 * depth and migrate-disable; only the preempt depth (spinlocks held and
 * preempt_disable(), in hex) is modelled, the rest print '.'.
 *
 * Events come in call order. trace_event() records an event when it is
 * called; a function that also calls trace_event_begin() at its entry
 * gets two lines: NAME at entry with its arguments, NAME_ret at exit with
 * its result (the exit is matched to the thread's innermost open entry
 * of that name). Fields holding flags print decoded (VM_READ|VM_WRITE,
 * HMM_PFN_VALID|..., MIGRATE_PFN_*, VM_FAULT_*: lib/sim/trace_flags.ts);
 * fields whose name suggests an address (addr, start, end, pfn, ...)
 * print in hex.
 *
 * Listeners (trace_add_listener()) see each record as it is written;
 * the HTML report samples page residency that way.
 */
import { current, type Thread } from './sched.js';
import { formatNs } from './clock.js';
import { trace_decode_field } from './trace_flags.js';

export type TraceField = number | string | boolean | bigint;

/** One recorded event. */
export interface TraceRecord {
  readonly ts: number;          /* simulated ns (the thread's vtime) */
  readonly thread: string;      /* who emitted it: "comm-pid" of its process, or a kernel thread's name */
  readonly name: string;        /* event name, e.g. "hmm_range_fault" */
  readonly fields: Readonly<Record<string, TraceField>>;
  readonly seq?: number;        /* position in call order, from 0 at boot */
  readonly cpu?: number;        /* the simulated thread's id (its CPU) */
  readonly comm?: string;       /* ftrace's comm: the thread's name (the process's for its main thread) */
  readonly pid?: number;        /* ftrace's pid: the process's pid, or the thread id of a kernel thread */
  readonly kind?: 'user' | 'kthread' | 'device';
  readonly preempt?: number;    /* preempt_count when recorded */
  /* 'i': an event; 'B': a function's entry (trace_event_begin); 'E': its exit */
  readonly ph?: 'i' | 'B' | 'E';
}

const DEFAULT_SIZE = 4096;

let on = false;
let ring: (TraceRecord | undefined)[] = new Array(DEFAULT_SIZE);
let head = 0;                  /* next slot to write */
let count = 0;                 /* valid records, <= ring.length */
let lost = 0;                  /* records overwritten */
let seq = 0;                   /* records written since boot */
/* per thread, the names of the entries (trace_event_begin) not exited yet */
let open_entries = new WeakMap<Thread, string[]>();
const listeners: ((r: TraceRecord) => void)[] = [];
let in_listener = false;

/*
 * Counters by name. Each value sits in a cell of its own, so that
 * count_event() (several calls per migrated page) bumps it with one Map
 * lookup instead of a get and a set.
 */
interface counter_cell { n: number }
const counters = new Map<string, counter_cell>();

/* the read-only Map view of the counters that trace_counters exports */
class counter_view implements ReadonlyMap<string, number> {
  get size(): number { return counters.size; }
  get(name: string): number | undefined { return counters.get(name)?.n; }
  has(name: string): boolean { return counters.has(name); }
  forEach(fn: (value: number, name: string, map: ReadonlyMap<string, number>) => void, self?: unknown): void {
    for (const [k, c] of counters) fn.call(self, c.n, k, this);
  }
  entries(): MapIterator<[string, number]> { return new Map([...counters].map(([k, c]) => [k, c.n])).entries(); }
  keys(): MapIterator<string> { return counters.keys(); }
  values(): MapIterator<number> { return new Map([...counters].map(([k, c]) => [k, c.n])).values(); }
  [Symbol.iterator](): MapIterator<[string, number]> { return this.entries(); }
}

/** Counters by name (a read-only Map view); read with get_counter() or iterate. */
export const trace_counters: ReadonlyMap<string, number> = new counter_view();

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

/* who is running: comm-pid of its process, or its own name for a kernel thread or device engine */
function who(t: Thread): { comm: string; pid: number } {
  const task = t.task as { comm?: string; pid?: number } | null;
  if (task === null || task === undefined || task.pid === undefined) return { comm: t.name, pid: t.id };
  return { comm: t.id === 0 || t.name === 'user' ? task.comm ?? t.name : t.name, pid: task.pid };
}

function record(name: string, fields: Record<string, TraceField>, ph: 'i' | 'B' | 'E'): void {
  const t = current();
  if (count === ring.length) lost++;
  else count++;
  const { comm, pid } = who(t);
  const task = t.task as { comm?: string; pid?: number } | null;
  const thread = task !== null && task !== undefined && task.pid !== undefined ? `${task.comm}-${task.pid}` : t.name;
  const r: TraceRecord = {
    ts: t.vtime, thread, name, fields, seq: seq++, cpu: t.id, comm, pid, kind: t.kind,
    preempt: t.preempt_count, ph,
  };
  ring[head] = r;
  head = (head + 1) % ring.length;
  if (listeners.length > 0 && !in_listener) {
    in_listener = true;
    try { for (const l of listeners) l(r); } finally { in_listener = false; }
  }
}

/**
 * trace_event() - record event @name with @fields, if tracing is on.
 * @name: event name, in the kernel's naming (e.g. "mmu_notifier_invalidate").
 * @fields: small values; the object is kept, not copied.
 *
 * When the running thread has an open trace_event_begin() of @name, this
 * is that function's exit (printed as NAME_ret).
 * Context: any; never yields.
 */
export function trace_event(name: string, fields: Record<string, TraceField>): void {
  if (!on) return;
  const stack = open_entries.get(current());
  const i = stack === undefined ? -1 : stack.lastIndexOf(name);
  if (i >= 0) stack!.length = i;       /* entries above it were left by an exception */
  record(name, fields, i >= 0 ? 'E' : 'i');
}

/**
 * trace_event_begin() - record the entry of function @name with its
 * arguments @fields; its trace_event(@name, ...) at exit becomes the
 * matching exit record. Gives the trace call order: the entry comes
 * before the events the function causes.
 * Context: any; never yields.
 */
export function trace_event_begin(name: string, fields: Record<string, TraceField>): void {
  if (!on) return;
  const t = current();
  let stack = open_entries.get(t);
  if (stack === undefined) { stack = []; open_entries.set(t, stack); }
  stack.push(name);
  record(name, fields, 'B');
}

/**
 * trace_add_listener() - call @fn with every record as it is written
 * (not for records written by a listener). Return: a function that
 * removes it.
 */
export function trace_add_listener(fn: (r: TraceRecord) => void): () => void {
  listeners.push(fn);
  return () => { const i = listeners.indexOf(fn); if (i >= 0) listeners.splice(i, 1); };
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

const ADDRESS_FIELD = /(^|_)(addr|address|start|end|pfn|iova|va|pa|dma)$|^(addr|start|end|pfn)/i;

/** formatField() - "name=value": flags decoded, addresses in hex. */
export function formatField(event: string, k: string, v: TraceField): string {
  const decoded = typeof v === 'number' || typeof v === 'bigint' ? trace_decode_field(event, k, v) : null;
  if (decoded !== null) return `${k}=${decoded}`;
  if ((typeof v === 'number' && Number.isInteger(v) && v >= 0) || typeof v === 'bigint') {
    if (ADDRESS_FIELD.test(k) || /flags$/.test(k)) return `${k}=0x${v.toString(16)}`;
  }
  return `${k}=${String(v)}`;
}

/** trace_task_name() - "comm-pid" as the ftrace line shows it (the simulated thread's own name for a spawned thread). */
export function trace_task_name(r: TraceRecord): string {
  return r.comm !== undefined && r.pid !== undefined ? `${r.comm}-${r.pid}` : r.thread;
}

/** trace_event_name() - the name a record prints under: NAME, or NAME_ret for a function's exit. */
export function trace_event_name(r: TraceRecord): string {
  return r.ph === 'E' ? `${r.name}_ret` : r.name;
}

/** trace_flags_column() - ftrace's five latency flags: irqs-off, need-resched, irq context, preempt depth, migrate-disable. */
export function trace_flags_column(r: TraceRecord): string {
  const p = r.preempt ?? 0;
  return `...${p === 0 ? '.' : p > 15 ? 'f' : p.toString(16)}.`;
}

/** traceFormat() - one record as an ftrace line: "comm-pid [cpu] flags seconds: event: fields". */
export function traceFormat(r: TraceRecord): string {
  const f = Object.entries(r.fields).map(([k, v]) => formatField(r.name, k, v)).join(' ');
  const cpu = String(r.cpu ?? 0).padStart(3, '0');
  return `${trace_task_name(r).padStart(16)} [${cpu}] ${trace_flags_column(r)} ${formatNs(r.ts).padStart(12)}: ${trace_event_name(r)}:${f ? ' ' + f : ''}`;
}

/**
 * ftrace_dump() - the ring as text, oldest first, one line per event.
 * Return: the lines joined with "\n" (empty string when empty).
 */
export function ftrace_dump(): string {
  return trace_records().map(traceFormat).join('\n');
}

/** trace_clear() - empty the ring (tracing stays on or off). */
export function trace_clear(): void {
  ring.fill(undefined);
  head = 0;
  count = 0;
  lost = 0;
  open_entries = new WeakMap();
}

/**
 * count_event() - add @n to counter @name.
 * Context: any; never yields.
 */
export function count_event(name: string, n = 1): void {
  const c = counters.get(name);
  if (c !== undefined) c.n += n;
  else counters.set(name, { n });
}

/** get_counter() - value of counter @name (0 if never counted). */
export function get_counter(name: string): number {
  return counters.get(name)?.n ?? 0;
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
  seq = 0;
  open_entries = new WeakMap();
}
