/*
 * tools/hmm-sim/output.ts - what a run prints and writes: the trace
 * (text or JSON lines, filtered by --trace-events globs), the outcome,
 * the counters, and the files of --stats and --chrome.
 */
import { writeFileSync } from 'node:fs';
import { trace_records, traceFormat, trace_lost, trace_counters, trace_event_name, trace_task_name, type TraceRecord } from '../../lib/sim/trace.js';
import { machineTime, formatNs } from '../../lib/sim/clock.js';
import { pageAllocStats } from '../../mm/page_alloc.js';
import { fault_inject_stats } from '../../lib/fault-inject.js';
import type { report_run } from './report/collect.js';
import { render_html } from './report/html.js';
import { chrome_trace } from './report/chrome.js';

/** glob_matcher() - a predicate over event names for globs like "hmm*,migrate_vma_?etup". */
export function glob_matcher(globs: readonly string[]): (name: string) => boolean {
  if (globs.length === 0) return () => true;
  const res = globs.map((g) => new RegExp('^' + g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$'));
  return (name) => res.some((r) => r.test(name));
}

/** What to print. */
export interface print_opts { json: boolean; no_trace: boolean; trace_events: readonly string[] }

/** selected_records() - the recorded events that pass the --trace-events filter. */
export function selected_records(o: print_opts): TraceRecord[] {
  const keep = glob_matcher(o.trace_events);
  return trace_records().filter((r) => keep(r.name));
}

/** counters() - every counter of the run, sorted by name. */
export function counters(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of [...trace_counters.entries()].sort(([a], [b]) => a.localeCompare(b))) out[k] = v;
  return out;
}

/** record_json() - one trace record as the object --json prints. */
export function record_json(r: TraceRecord): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r.fields)) fields[k] = typeof v === 'bigint' ? v.toString() : v;
  return { type: 'event', seq: r.seq, ts_ns: r.ts, thread: trace_task_name(r), cpu: r.cpu, ph: r.ph, event: trace_event_name(r), fields };
}

/**
 * print_run() - the trace, outcome and summary of one scenario run, to
 * @out (a line at a time).
 */
export function print_run(name: string, description: string, outcome: string[], o: print_opts, out: (l: string) => void): void {
  const recs = o.no_trace ? [] : selected_records(o);
  if (o.json) {
    out(JSON.stringify({ type: 'scenario', name, description }));
    for (const r of recs) out(JSON.stringify(record_json(r)));
    out(JSON.stringify({ type: 'outcome', name, lines: outcome }));
    out(JSON.stringify({ type: 'counters', name, sim_ns: machineTime(), counters: counters(), lost: trace_lost() }));
    return;
  }
  out(`# hmm-sim: scenario '${name}': ${description}`);
  if (!o.no_trace) {
    out('#\n# trace (ftrace format; NAME at a function\'s entry, NAME_ret at its exit)\n#');
    out('#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION');
    out('#              | |         |   |||||     |         |');
    for (const r of recs) out(traceFormat(r));
    if (trace_lost() > 0) out(`# (${trace_lost()} older events were overwritten)`);
  }
  out('#\n# outcome\n#');
  for (const l of outcome) out(`  ${l}`);
  out('#\n# summary\n#');
  const all = Object.entries(counters());
  const isFault = ([k]: [string, number]) => k.startsWith('fault_') || k.startsWith('pgfault');
  out('  faults by kind:');
  for (const [k, v] of all.filter(isFault)) out(`    ${k.padEnd(34)} ${v}`);
  out('  other events:');
  for (const [k, v] of all.filter((e) => !isFault(e))) out(`    ${k.padEnd(34)} ${v}`);
  const st = pageAllocStats();
  out(`  pages allocated ${st.pgalloc}, freed ${st.pgfree}, failed allocations ${st.alloc_fail}`);
  const rs = run_stats_of(name);
  out(`  /proc/vmstat: ${Object.entries(rs.vmstat).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const [dev, d] of Object.entries(rs.devices)) {
    out(`  ${dev}: ioctls ${Object.entries(d.ioctls).map(([c, n]) => `${c} ${n}`).join(', ')}; ` +
      `pages ${d.cpages}, device faults ${d.faults}, errors ${d.errors}`);
  }
  for (const f of fault_inject_stats().filter((x) => x.failures > 0 || x.armed)) {
    out(`  fault injection: ${f.name} hits ${f.hits}, failures ${f.failures}`);
  }
  out(`  simulated time ${formatNs(machineTime())}`);
  out('#');
}

/** The counters of one run, as --stats writes them. */
export interface run_stats {
  name: string;
  sim_ns: number;
  /* the counters that have a /proc/vmstat name in Linux, under that name */
  vmstat: Record<string, number>;
  /* per device (dmirror unit), from its ioctls in the trace */
  devices: Record<string, device_stats>;
  /* every counter, under the simulator's name */
  counters: Record<string, number>;
}

/** What one device did: ioctls by command, pages it reported (cpages), device faults. */
export interface device_stats { ioctls: Record<string, number>; cpages: number; faults: number; errors: number }

/*
 * Simulator counter -> /proc/vmstat name (mm/vmstat.c's vmstat_text),
 * where Linux counts the same thing.
 */
const VMSTAT: Record<string, string> = {
  pgfault: 'pgfault', pgmajfault: 'pgmajfault', pswpin: 'pswpin', pswpout: 'pswpout',
  pgmigrate_success: 'pgmigrate_success', pgmigrate_fail: 'pgmigrate_fail', pgactivate: 'pgactivate',
  pgdeactivate: 'pgdeactivate', pgrefill: 'pgrefill', pglazyfree: 'pglazyfree', pglazyfreed: 'pglazyfreed',
  pageoutrun: 'pageoutrun', allocstall: 'allocstall_normal', oom_kill: 'oom_kill', thp_collapse: 'thp_collapse_alloc',
  thp_split_for_reclaim: 'thp_split_page',
};

/** run_stats_of() - the counters of the run that just ended, and per-device figures from its trace. */
export function run_stats_of(name: string): run_stats {
  const all = counters();
  const vmstat: Record<string, number> = {};
  for (const [k, v] of Object.entries(all)) if (VMSTAT[k] !== undefined) vmstat[VMSTAT[k]!] = (vmstat[VMSTAT[k]!] ?? 0) + v;
  const st = pageAllocStats();
  vmstat.pgalloc_normal ??= st.pgalloc;
  vmstat.pgfree ??= st.pgfree;
  const devices: Record<string, device_stats> = {};
  for (const r of trace_records()) {
    if (r.name !== 'dmirror_ioctl' || r.ph === 'B') continue;
    const d = (devices[`hmm_dmirror${String(r.fields.dev)}`] ??= { ioctls: {}, cpages: 0, faults: 0, errors: 0 });
    const cmd = String(r.fields.cmd);
    d.ioctls[cmd] = (d.ioctls[cmd] ?? 0) + 1;
    d.cpages += Number(r.fields.cpages ?? 0);
    d.faults += Number(r.fields.faults ?? 0);
    if (Number(r.fields.ret ?? 0) !== 0) d.errors++;
  }
  return { name, sim_ns: machineTime(), vmstat, devices, counters: all };
}

/** write_outputs() - the files --stats, --html and --chrome ask for. */
export function write_outputs(o: { stats: string | null; html: string | null; chrome: string | null }, title: string,
                              stats: run_stats[], reports: report_run[]): void {
  if (o.stats !== null) writeFileSync(o.stats, JSON.stringify({ runs: stats }, null, 2) + '\n');
  if (o.html !== null) writeFileSync(o.html, render_html(title, reports));
  if (o.chrome !== null) writeFileSync(o.chrome, JSON.stringify(chrome_trace(reports)) + '\n');
}
