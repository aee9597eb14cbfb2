/*
 * tools/hmm-sim/report/chrome.ts - `--chrome FILE`: the trace in the
 * Chrome trace-event format ("JSON Object Format": { traceEvents: [...] },
 * timestamps in microseconds), which Perfetto (ui.perfetto.dev, "Open
 * trace file") and chrome://tracing open offline.
 *
 * A function traced at entry and exit is a B/E pair (a slice); any other
 * event an instant ("i", thread scope); the counters followed over time
 * are "C" events. Each run of a tour is its own process group: pid =
 * run number * 1000 + the simulated pid, named "scenario: comm-pid";
 * tid is the simulated thread's CPU (its thread id), named by metadata
 * ("M") events.
 */
import type { report_run } from './collect.js';

interface chrome_event {
  name: string; ph: string; ts: number; pid: number; tid: number;
  cat?: string; s?: string; args?: Record<string, unknown>;
}

/** chrome_trace() - the trace-event object for @runs. */
export function chrome_trace(runs: report_run[]): { traceEvents: chrome_event[]; displayTimeUnit: string; otherData: Record<string, string> } {
  const out: chrome_event[] = [];
  runs.forEach((run, ri) => {
    const pid_of = (pid: number) => (ri + 1) * 1000 + pid;
    const named = new Set<string>();
    for (const l of run.lanes) {
      const pid = pid_of(l.pid);
      if (!named.has(`p${pid}`)) {
        named.add(`p${pid}`);
        out.push({ name: 'process_name', ph: 'M', ts: 0, pid, tid: 0, args: { name: `${run.name}: ${l.comm}-${l.pid}` } });
      }
      out.push({ name: 'thread_name', ph: 'M', ts: 0, pid, tid: l.cpu, args: { name: l.key } });
    }
    /* B/E must nest per thread: an entry whose exit never came is closed at the end */
    const open = run.lanes.map(() => [] as string[]);
    for (const e of run.events) {
      const l = run.lanes[e.lane]!;
      const base = { ts: e.ts / 1000, pid: pid_of(l.pid), tid: l.cpu, cat: e.name.replace(/_ret$/, '').split('_')[0]!, args: e.f };
      if (e.ph === 'B') {
        open[e.lane]!.push(e.name);
        out.push({ name: e.name, ph: 'B', ...base });
      } else if (e.ph === 'E' && open[e.lane]!.includes(e.name.replace(/_ret$/, ''))) {
        const name = e.name.replace(/_ret$/, '');
        const st = open[e.lane]!;
        while (st.length > 0) {
          const top = st.pop()!;
          out.push({ name: top, ph: 'E', ...base, args: top === name ? e.f : {} });
          if (top === name) break;
        }
      } else {
        out.push({ name: e.name, ph: 'i', s: 't', ...base });
      }
    }
    open.forEach((st, lane) => {
      const l = run.lanes[lane]!;
      while (st.length > 0) out.push({ name: st.pop()!, ph: 'E', ts: run.end_ns / 1000, pid: pid_of(l.pid), tid: l.cpu, args: {} });
    });
    const cpid = (ri + 1) * 1000;
    out.push({ name: 'process_name', ph: 'M', ts: 0, pid: cpid, tid: 0, args: { name: `${run.name}: counters` } });
    for (const s of run.counters.samples) {
      const args: Record<string, number> = {};
      run.counters.names.forEach((n, k) => { args[n] = s[k + 1]!; });
      out.push({ name: 'counters', ph: 'C', ts: s[0] / 1000, pid: cpid, tid: 0, args });
    }
  });
  return { traceEvents: out, displayTimeUnit: 'ns', otherData: { generator: 'hmm-sim', clock: 'simulated time' } };
}
