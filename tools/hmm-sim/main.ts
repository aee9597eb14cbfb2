/*
 * tools/hmm-sim/main.ts - run a scenario and show what the kernel did.
 *
 *   node dist/tools/hmm-sim/main.js [--scenario NAME] [--list] [--no-trace]
 *   node dist/tools/hmm-sim/main.js --era v8|mainline|both [SCENARIO...]
 *   node dist/tools/hmm-sim/main.js --v8-lifetime-race
 *
 * --era runs the scenarios written once for both designs (tools/hmm-sim/
 * era.ts) under the 2015 v8 code and/or mainline and prints, per era,
 * faults, notifier calls, page-table entries touched, pages copied and
 * simulated time, with the difference. --v8-lifetime-race replays Mark
 * Hairgrove's unregister-vs-exit race under the faithful v8 lifetimes and
 * prints the use after free the simulator catches.
 *
 * Prints the ftrace-like trace of the run (faults, notifier invalidations,
 * COW, fork, exit...), the scenario's outcome, and a summary: faults by
 * kind, pages allocated and freed, simulated time. `npm start` runs the
 * default scenario.
 */
import { scenarios, defaultScenario, type Scenario } from './scenarios.js';
import { era_report, type era } from './era.js';
import { odp_era_report } from './scenarios/odp.js';
import { v8_race_replay, v8_race_teardown } from './v8_races.js';
import { trace_dump, trace_counters, trace_lost } from '../../lib/sim/trace.js';
import { machineTime, formatNs } from '../../lib/sim/clock.js';
import { page_alloc_stats } from '../../mm/page_alloc.js';

function arg(name: string): string | null {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : null;
}

function main(): void {
  const era = arg('--era');
  if (era !== null) {
    const eras: era[] = era === 'both' ? ['v8', 'mainline'] : [era as era];
    if (!eras.every((e) => e === 'v8' || e === 'mainline')) {
      console.error(`hmm-sim: --era takes v8, mainline or both`);
      process.exitCode = 2;
      return;
    }
    const names = process.argv.slice(process.argv.indexOf('--era') + 2).filter((a) => !a.startsWith('--'));
    for (const line of era_report(eras, names)) console.log(line);
    if (names.length === 0 || names.includes('odp')) for (const line of odp_era_report(eras)) console.log(line);
    return;
  }
  if (process.argv.includes('--v8-lifetime-race')) {
    const r = v8_race_replay(v8_race_teardown('v8'));
    if (r === null) { console.log('no failing interleaving found'); return; }
    console.log(`# unregister vs exit under v8 lifetimes: caught after ${r.runs} interleavings`);
    console.log(`# schedule: ${r.trace}`);
    console.log(r.error);
    return;
  }
  if (process.argv.includes('--list')) {
    for (const s of Object.values(scenarios)) console.log(`${s.name.padEnd(16)} ${s.summary}`);
    return;
  }
  const name = arg('--scenario') ?? defaultScenario;
  const s = scenarios[name];
  if (s === undefined) {
    console.error(`hmm-sim: unknown scenario '${name}' (try --list)`);
    process.exitCode = 2;
    return;
  }
  for (const part of s.parts ?? [s.name]) runOne(scenarios[part]!);
}

/* Run one scenario on a fresh machine and print its trace, outcome and summary. */
function runOne(s: Scenario): void {
  console.log(`# hmm-sim: scenario '${s.name}': ${s.summary}`);
  const outcome = s.run();
  if (!process.argv.includes('--no-trace')) {
    console.log('#\n# trace (thread [simulated time] event: fields)\n#');
    console.log(trace_dump());
    if (trace_lost() > 0) console.log(`# (${trace_lost()} older events were overwritten)`);
  }
  console.log('#\n# outcome\n#');
  for (const l of outcome) console.log(`  ${l}`);
  console.log('#\n# summary\n#');
  const counters = [...trace_counters.entries()].sort(([a], [b]) => a.localeCompare(b));
  const faults = counters.filter(([k]) => k.startsWith('fault_') || k.startsWith('pgfault'));
  const other = counters.filter(([k]) => !k.startsWith('fault_') && !k.startsWith('pgfault'));
  console.log('  faults by kind:');
  for (const [k, v] of faults) console.log(`    ${k.padEnd(34)} ${v}`);
  console.log('  other events:');
  for (const [k, v] of other) console.log(`    ${k.padEnd(34)} ${v}`);
  const st = page_alloc_stats();
  console.log(`  pages allocated ${st.pgalloc}, freed ${st.pgfree}, failed allocations ${st.alloc_fail}`);
  console.log(`  simulated time ${formatNs(machineTime())}`);
  console.log('#');
}

main();
