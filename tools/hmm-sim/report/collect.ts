/*
 * tools/hmm-sim/report/collect.ts - what the HTML report and the Chrome
 * trace export show, gathered while a scenario runs: every trace record
 * with its lane (simulated thread), the residency of every user page
 * after each record, and the counters over time.
 *
 * A trace listener (lib/sim/trace.ts) does the sampling: after each
 * record it reads the page tables of the processes seen so far (report/
 * residency.ts) and keeps only the changes. Time is simulated ns; each
 * simulated thread has its own clock. A residency change is placed at
 * the time of the record it was seen after (the clock of the thread that
 * made it), never before the page's previous change; counter samples use
 * the latest time any thread has reached (a clock that never goes back).
 */
import type { mm_struct } from '../../../include/linux/mm_types.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { current } from '../../../lib/sim/sched.js';
import {
  trace_add_listener, trace_counters, trace_event_name, trace_task_name, formatField, traceFormat, type TraceRecord,
} from '../../../lib/sim/trace.js';
import { page_state_at, page_states } from './residency.js';

/** One simulated thread (or device engine), as a lane of the timeline. */
export interface report_lane { key: string; comm: string; pid: number; cpu: number; kind: string }

/** One trace record. f: its fields as printed (flags decoded). */
export interface report_event { seq: number; ts: number; lane: number; name: string; ph: string; f: Record<string, string>; line: string }

/** One row of the residency map: a user page of a process. */
export interface report_page { pid: number; comm: string; addr: number }

/** Everything one run shows. */
export interface report_run {
  name: string;
  description: string;
  outcome: string[];
  states: readonly string[];
  lanes: report_lane[];
  events: report_event[];
  pages: report_page[];
  /* residency changes: [row, ns, state], the first of each row is its first sample */
  residency: [number, number, number][];
  /*
   * moves between memories (RAM, swap, device): [row, ns, from state, to
   * state]; a page that was unmapped in between (state none) did not move
   */
  migrations: [number, number, number, number][];
  counters: { names: string[]; samples: [number, ...number[]][] };
  end_ns: number;
  pages_truncated: boolean;
}

/** At most this many rows in the map (the first pages seen). */
export const MAX_ROWS = 1024;

const MEMORIES = new Set(['ram', 'swap', 'device_private', 'device_coherent'].map((s) => page_states.indexOf(s as never)));

/** The counters followed over time: these when present, else the largest. */
const PREFERRED = ['pgfault', 'mmu_notifier_invalidate', 'hmm_range_fault', 'dmirror_fault_retry', 'mmu_interval_read_retry',
  'migrate_insert_page', 'dmirror_devmem_fault', 'zap_page', 'pswpout', 'pswpin'];

/** A collector: start() before the scenario runs, finish() after. */
export class report_collector {
  private lanes: report_lane[] = [];
  private lane_of = new Map<string, number>();
  private events: report_event[] = [];
  private mms = new Map<number, { mm: mm_struct; comm: string }>();
  private rows: report_page[] = [];
  private row_of = new Map<string, number>();
  private state: number[] = [];
  private last_memory: number[] = [];       /* per row: the last memory (RAM, swap, device) the page was in, or -1 */
  private residency: [number, number, number][] = [];
  private migrations: [number, number, number, number][] = [];
  private counter_samples: { ns: number; values: Map<string, number> }[] = [];
  private last_counters = '';
  private now = 0;                          /* the latest time any thread reached */
  private at = 0;                           /* the time of the record being sampled after */
  private row_time: number[] = [];          /* per row: the time of its last change */
  private truncated = false;
  private off: (() => void) | null = null;

  start(): void {
    this.off = trace_add_listener((r) => this.on_record(r));
  }

  /* a new boot (start_kernel() restarts the record numbers): the report shows the last machine, as the text trace does */
  private reset(): void {
    this.lanes = []; this.lane_of.clear(); this.events = []; this.mms.clear(); this.rows = []; this.row_of.clear();
    this.state = []; this.last_memory = []; this.row_time = []; this.residency = []; this.migrations = [];
    this.counter_samples = []; this.last_counters = ''; this.now = 0; this.at = 0; this.truncated = false;
  }

  private on_record(r: TraceRecord): void {
    if (r.seq === 0 && this.events.length > 0) this.reset();
    const key = `${trace_task_name(r)} [${String(r.cpu ?? 0).padStart(3, '0')}]`;
    let lane = this.lane_of.get(key);
    if (lane === undefined) {
      lane = this.lanes.length;
      this.lanes.push({ key, comm: r.comm ?? r.thread, pid: r.pid ?? 0, cpu: r.cpu ?? 0, kind: r.kind ?? 'kthread' });
      this.lane_of.set(key, lane);
    }
    const f: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.fields)) f[k] = formatField(r.name, k, v).slice(k.length + 1);
    this.events.push({ seq: r.seq ?? this.events.length, ts: r.ts, lane, name: trace_event_name(r), ph: r.ph ?? 'i', f, line: traceFormat(r) });
    this.now = Math.max(this.now, r.ts);
    this.at = r.ts;
    const task = current().task as { pid?: number; comm?: string; mm?: mm_struct | null } | null;
    if (task !== null && task !== undefined && task.pid !== undefined && task.mm && !this.mms.has(task.pid)) {
      this.mms.set(task.pid, { mm: task.mm, comm: task.comm ?? '' });
    }
    this.sample_residency();
    this.sample_counters();
  }

  private sample_residency(): void {
    const seen = new Set<number>();
    for (const [pid, { mm, comm }] of this.mms) {
      if (mm.mm_users <= 0) continue;
      for (const vma of mm.mmap) {
        for (let addr = vma.vm_start; addr < vma.vm_end; addr += PAGE_SIZE) {
          const key = `${pid}:${addr}`;
          let row = this.row_of.get(key);
          if (row === undefined) {
            if (this.rows.length >= MAX_ROWS) { this.truncated = true; break; }
            row = this.rows.length;
            this.rows.push({ pid, comm, addr });
            this.row_of.set(key, row);
            this.state.push(-1);
            this.last_memory.push(-1);
            this.row_time.push(0);
          }
          seen.add(row);
          this.set_state(row, page_state_at(mm, addr));
        }
      }
    }
    for (let row = 0; row < this.rows.length; row++) if (!seen.has(row)) this.set_state(row, 0);
  }

  private set_state(row: number, s: number): void {
    const old = this.state[row]!;
    if (old === s) return;
    this.state[row] = s;
    /* the change is seen after a record of the thread that made it: at that thread's time, never before the row's last change */
    const t = Math.max(this.at, this.row_time[row]!);
    this.row_time[row] = t;
    this.residency.push([row, t, s]);
    if (!MEMORIES.has(s)) return;
    /* a move: from the last memory to another one (through a migration entry, or none for a swap-in) */
    const from = this.last_memory[row]!;
    if (from >= 0 && from !== s && old !== 0) this.migrations.push([row, t, from, s]);
    this.last_memory[row] = s;
  }

  private sample_counters(): void {
    const key = [...trace_counters.values()].join(',');
    if (key === this.last_counters) return;
    this.last_counters = key;
    this.counter_samples.push({ ns: this.now, values: new Map(trace_counters) });
  }

  /** finish() - stop collecting; the run's report. */
  finish(name: string, description: string, outcome: string[]): report_run {
    this.off?.();
    this.off = null;
    const last = this.counter_samples[this.counter_samples.length - 1]?.values ?? new Map<string, number>();
    const names = PREFERRED.filter((n) => (last.get(n) ?? 0) > 0);
    for (const [n, v] of [...last.entries()].sort((a, b) => b[1] - a[1])) {
      if (names.length >= 6) break;
      if (!names.includes(n) && v > 0) names.push(n);
    }
    return {
      name, description, outcome, states: page_states, lanes: this.lanes, events: this.events, pages: this.rows,
      residency: this.residency, migrations: this.migrations,
      counters: { names, samples: this.counter_samples.map((s) => [s.ns, ...names.map((n) => s.values.get(n) ?? 0)] as [number, ...number[]]) },
      end_ns: this.now, pages_truncated: this.truncated,
    };
  }
}
