/*
 * tools/hmm-sim/output.ts - what a run prints and writes: the trace
 * (text or JSON lines, filtered by --trace-events globs), the outcome,
 * the counters, and the files of --stats and --chrome.
 */
import { writeFileSync } from 'node:fs';
import { trace_records, traceFormat, trace_lost, trace_counters, type TraceRecord } from '../../lib/sim/trace.js';
import { machineTime, formatNs } from '../../lib/sim/clock.js';
import { page_alloc_stats } from '../../mm/page_alloc.js';

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
  return { type: 'event', ts_ns: r.ts, thread: r.thread, event: r.name, fields };
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
  const st = page_alloc_stats();
  out(`  pages allocated ${st.pgalloc}, freed ${st.pgfree}, failed allocations ${st.alloc_fail}`);
  out(`  simulated time ${formatNs(machineTime())}`);
  out('#');
}

/** write_stats() - the counters of the runs in @runs, as JSON, to @file. */
export function write_stats(file: string, runs: { name: string; sim_ns: number; counters: Record<string, number> }[]): void {
  writeFileSync(file, JSON.stringify({ runs }, null, 2) + '\n');
}
