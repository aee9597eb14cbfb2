/*
 * tools/hmm-sim/explore.ts - `hmm-sim explore` and `hmm-sim replay`: the
 * race explorer (lib/sim/explore.ts) over a scenario's race, and the
 * replay of one interleaving with the kernel trace, step by step.
 *
 * A race scenario (defineScenario({ race })) builds a fresh machine per
 * run and spawns two or three simulated threads; explore() runs it under
 * every sequence of scheduling choices within a preemption bound and
 * checks the invariant after each run. The first violation is replayed
 * with tracing on; the trace is printed with a marker each time another
 * thread takes the CPU.
 */
import { fault_inject_boot_param } from '../../lib/fault-inject.js';
import { explore, countPreemptions } from '../../lib/sim/explore.js';
import { Scheduler } from '../../lib/sim/sched.js';
import { tracing_on, traceFormat, trace_task_name } from '../../lib/sim/trace.js';
import type { cli_args } from './cli.js';
import { usage_error } from './cli.js';
import type { scenario, scenario_race, scenario_spec } from './api.js';
import { print_run, selected_records, run_stats_of, write_outputs, type print_opts } from './output.js';
import { report_collector } from './report/collect.js';
import { default_params, set_param, apply_costs, param_table } from './params.js';
import {
  raceFaultVsMunmap, resetRaceChecker, describeError, RACE_BOUND,
} from '../testing/races/mainline.js';

/** The invariant every mainline race checks (tools/testing/races/mainline.ts). */
export const MIRROR_INVARIANT =
  'after invalidate_range_end() no device maps a page the CPU no longer maps, and no page is freed while a device maps it';

/**
 * race_scenario() - a scenario over the device-READ-vs-munmap race of
 * tools/testing/races/mainline.ts; @broken: the driver skips the retry.
 * Its run() explores the race and replays the first violation traced
 * (or, when every interleaving holds, the one without preemption).
 */
export function race_scenario(o: { name: string; description: string; broken: boolean }): scenario_spec {
  const race = (): scenario_race => {
    const r = raceFaultVsMunmap({ broken: o.broken });
    return { name: r.name, invariant: MIRROR_INVARIANT, run: (s) => r.run(s), check: () => r.check(), bound: RACE_BOUND };
  };
  return {
    name: o.name, description: o.description, race,
    run(sim) {
      const r = race();
      const res = (() => {
        try { return explore((s) => r.run(s), { ...RACE_BOUND, check: () => r.check() }); } finally { resetRaceChecker(); }
      })();
      const choices = res.failure?.choices ?? [];
      sim.log(`explored ${res.runs} interleavings (at most ${RACE_BOUND.preemptionBound} preemptions each): ` +
        (res.failure === null ? 'the invariant held in every one' : `interleaving ${res.runs} breaks it`));
      const rep = replay_race(r, choices);
      sim.log(`replayed schedule ${choices.join(',') || '(no preemption)'}: threads ran ${rep.schedule}`);
      sim.log(rep.error === null ? 'invariant held' : `invariant broken: ${rep.error}`);
    },
  };
}

/* replay_race(), collecting for --html/--chrome and writing --stats */
function replay_reported(a: cli_args, s: scenario, r: scenario_race, choices: number[]): replay_result {
  const col = a.html !== null || a.chrome !== null ? new report_collector() : null;
  col?.start();
  const rep = replay_race(r, choices);
  const outcome = [`schedule ${choices.join(',') || '(none)'}: threads ran ${rep.schedule}`,
    rep.error === null ? 'invariant held' : `invariant broken: ${rep.error}`];
  const reports = col === null ? [] : [col.finish(s.name, `${r.name}: ${r.invariant}`, outcome)];
  write_outputs(a, `${s.name} (replay)`, [run_stats_of(s.name)], reports);
  return rep;
}

/** What one replay did. */
export interface replay_result { schedule: string; choices: number[]; preemptions: number; error: string | null }

/**
 * replay_race() - run @r once with the scheduling choices @choices,
 * tracing the threads (the setup before them is not traced).
 */
export function replay_race(r: scenario_race, choices: number[]): replay_result {
  const s = new Scheduler({ mode: 'enumerate', choices });
  let error: string | null = null;
  try {
    r.run(s);
    tracing_on();
    s.run();
    r.check();
  } catch (e) {
    error = describeError(e);
  } finally {
    resetRaceChecker();
  }
  return { schedule: s.formatSchedule(), choices: s.choicesMade.slice(), preemptions: countPreemptions(s), error };
}

function race_of(s: scenario, cmd: 'explore' | 'replay'): scenario_race {
  if (s.race === undefined) throw new usage_error(`scenario '${s.name}' has no race to ${cmd} (hmm-sim list marks them [race])`, cmd);
  return s.race();
}

/* races boot their own machine: only cost constants may be set */
function apply_race_sets(a: cli_args, cmd: 'explore' | 'replay'): void {
  const p = default_params();
  for (const [k, v] of a.sets) {
    const row = param_table.find((r) => r.key === k);
    if (row !== undefined && row.kind !== 'cost') throw new usage_error(`--set ${k}: a race boots its own machine; only cost constants can be set`, cmd);
    const err = set_param(p, k, v);
    if (err !== null) throw new usage_error(`--set ${k}=${v}: ${err}`, cmd);
  }
  apply_costs(p);
  for (const [site, str] of a.fails) fault_inject_boot_param(site, str);   /* every boot of the race gets them */
}

/* the replayed trace, with a marker when another thread takes the CPU */
function print_steps(o: print_opts, out: (l: string) => void): void {
  let last = '';
  let step = 0;
  for (const r of selected_records(o)) {
    const who = trace_task_name(r);
    if (who !== last) { out(`# --- step ${++step}: ${who} runs`); last = who; }
    out(traceFormat(r));
  }
}

/**
 * explore_command() - `hmm-sim explore SCENARIO [--bound N] [--max-runs N]`.
 * Return: the exit status (1 when a violation was found).
 */
export async function explore_command(a: cli_args, s: scenario, out: (l: string) => void): Promise<number> {
  const r = race_of(s, 'explore');
  apply_race_sets(a, 'explore');
  const bound = a.bound >= 0 ? a.bound : r.bound?.preemptionBound ?? 2;
  const maxRuns = a.max_runs > 0 ? a.max_runs : r.bound?.maxRuns ?? 1000;
  let runs = 0;
  const tty = process.stderr.isTTY === true;
  const res = (() => {
    try {
      return explore((sch) => {
        runs++;
        if (runs % 25 === 0) process.stderr.write(tty ? `\rexplore: ${runs} interleavings` : `explore: ${runs} interleavings\n`);
        r.run(sch);
      }, { preemptionBound: bound, maxRuns, check: () => r.check() });
    } finally {
      resetRaceChecker();
      if (tty && runs >= 25) process.stderr.write('\n');
    }
  })();
  const head = {
    scenario: s.name, race: r.name, invariant: r.invariant, preemption_bound: bound, max_runs: maxRuns,
    interleavings: res.runs, complete: res.complete,
  };
  if (a.json) out(JSON.stringify({ type: 'explore', ...head, violation: res.failure === null ? null : describeError(res.failure.error),
    schedule: res.failure?.choices.join(',') ?? null }));
  else {
    out(`# explore: scenario '${s.name}': ${r.name}`);
    out(`# invariant: ${r.invariant}`);
    out(`# interleavings run: ${res.runs} (at most ${bound} preemptions each; ` +
      `${res.complete ? 'every interleaving within the bound' : res.failure ? 'stopped at the first violation' : `stopped at --max-runs ${maxRuns}`})`);
  }
  if (res.failure === null) {
    if (!a.json) out('# no violation found');
    return 0;
  }
  const choices = res.failure.choices.join(',');
  const rep = replay_reported(a, s, r, res.failure.choices);
  if (!a.json) {
    out(`# first violation, interleaving ${res.runs}: ${describeError(res.failure.error)}`);
    out(`# threads in the order they ran: ${res.failure.trace}`);
    out(`# schedule: ${choices}   (hmm-sim replay ${s.name} --schedule ${choices})`);
    out('#');
  }
  if (!a.no_trace) {
    if (a.json) print_run(s.name, s.description, [rep.error ?? 'invariant held'], a, out);
    else print_steps(a, out);
  }
  return 1;
}

/**
 * replay_command() - `hmm-sim replay SCENARIO --schedule S`: one
 * interleaving, traced. Return: 1 when the invariant broke in it.
 */
export async function replay_command(a: cli_args, s: scenario, out: (l: string) => void): Promise<number> {
  const r = race_of(s, 'replay');
  apply_race_sets(a, 'replay');
  const choices = a.schedule === '' || a.schedule === null ? [] : a.schedule.split(',').map(Number);
  const rep = replay_reported(a, s, r, choices);
  const outcome = [`threads in the order they ran: ${rep.schedule}`,
    `preemptions: ${rep.preemptions}`,
    rep.error === null ? 'invariant held' : `invariant broken: ${rep.error}`];
  if (a.json) print_run(s.name, s.description, outcome, a, out);
  else {
    out(`# replay: scenario '${s.name}': ${r.name}, schedule ${choices.join(',') || '(none: no preemption)'}`);
    out(`# invariant: ${r.invariant}`);
    if (!a.no_trace) print_steps(a, out);
    out('#');
    for (const l of outcome) out(`# ${l}`);
  }
  return rep.error === null ? 0 : 1;
}
