#!/usr/bin/env node
/*
 * tools/hmm-sim/main.ts - the hmm-sim command (package.json "bin"): run a
 * scenario and show what the kernel did, list the scenarios, explore and
 * replay races. The command line is in cli.ts (`hmm-sim --help`); the
 * scenarios in scenarios/ (one file each); the scenario API a user's
 * file imports in api.ts.
 *
 * Exit status: 0 on success; 1 when a scenario failed (threw) or explore
 * found a violation; 2 on a usage error (with the usage on stderr).
 */
import '../include/v8_flags.js';          /* first: the JIT setting (tools/include/v8_flags.ts) */
import { readFileSync } from 'node:fs';
import { fault_inject_boot_param } from '../../lib/fault-inject.js';
import { parse_args, usage, usage_error, type cli_args } from './cli.js';
import { param_help } from './params.js';
import {
  DEFAULT_SCENARIO, scenario_list, scenario_lookup, is_scenario_file, load_scenario_file, scenario_params, run_scenario,
} from './registry.js';
import type { scenario } from './api.js';
import { print_run, run_stats_of, write_outputs, type run_stats } from './output.js';
import { report_collector, type report_run } from './report/collect.js';
import { explore_command, replay_command } from './explore.js';
import { era_report, era_scenarios, type era } from './era.js';
import { odp_era_report } from './scenarios/odp.js';
import { gpu_era_report } from './scenarios/gpu.js';
import { v8_race_replay, v8_race_teardown } from './v8_races.js';
import { DESIGNS, design_select, is_design } from './design.js';

/* the scenarios that run under --design */
const DESIGN_SCENARIOS: readonly string[] = ['gpu', 'design-debate'];

const out = (l: string) => { process.stdout.write(l + '\n'); };

/* the drivers' own workloads under each era (`hmm-sim run --era both odp`), beside era.ts's shared scenarios */
const ERA_DRIVERS: Record<string, (eras: readonly era[]) => string[]> = { odp: odp_era_report, gpu: gpu_era_report };

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/* resolve the scenario a command names (default: the first built-in, the tour) */
async function find_scenario(target: string | null): Promise<scenario> {
  if (target === null) return scenario_lookup(DEFAULT_SCENARIO)!;
  if (is_scenario_file(target)) return load_scenario_file(target);
  const s = scenario_lookup(target);
  if (s === undefined) throw new usage_error(`unknown scenario '${target}' (hmm-sim list shows them)`, 'run');
  return s;
}

async function run_command(a: cli_args): Promise<number> {
  if (a.era !== null) {
    const eras: era[] = a.era === 'both' ? ['v8', 'mainline'] : [a.era];
    const known = [...era_scenarios.map((e) => e.name), ...Object.keys(ERA_DRIVERS)];
    const unknown = a.era_names.filter((n) => !known.includes(n));
    if (unknown.length > 0) throw new usage_error(`no era scenario '${unknown[0]}' (they are: ${known.join(', ')})`, 'run');
    const shared = a.era_names.filter((n) => !(n in ERA_DRIVERS));
    if (a.era_names.length === 0 || shared.length > 0) for (const line of era_report(eras, shared)) out(line);
    for (const [name, report] of Object.entries(ERA_DRIVERS)) {
      if (a.era_names.length === 0 || a.era_names.includes(name)) for (const line of report(eras)) out(line);
    }
    return 0;
  }
  if (a.v8_lifetime_race) {
    const r = v8_race_replay(v8_race_teardown('v8'));
    if (r === null) { out('no failing interleaving found'); return 0; }
    out(`# unregister vs exit under v8 lifetimes: caught after ${r.runs} interleavings`);
    out('# the failing interleaving, traced (exit-1: the exiting process; close-2: the fork child closing the shared fd):');
    out(r.trace);
    out(r.error);
    return 0;
  }
  const s = await find_scenario(a.target);
  if (a.design !== null) {
    if (!is_design(a.design)) throw new usage_error(`--design takes ${DESIGNS.join(', ')}, not '${a.design}'`, 'run');
    if (!DESIGN_SCENARIOS.includes(s.name)) throw new usage_error(`--design runs ${DESIGN_SCENARIOS.join(' or ')}, not '${s.name}'`, 'run');
  }
  design_select(a.design as Parameters<typeof design_select>[0]);
  try {
    return run_parts(a, s);
  } finally {
    design_select(null);
  }
}

function run_parts(a: cli_args, s: scenario): number {
  const parts = s.parts !== undefined ? s.parts.map((n) => {
    const p = scenario_lookup(n);
    if (p === undefined) throw new Error(`scenario ${s.name}: no part '${n}'`);
    return p;
  }) : [s];
  const stats: run_stats[] = [];
  const reports: report_run[] = [];
  for (const [site, str] of a.fails) fault_inject_boot_param(site, str);   /* the scenario's boot applies them */
  for (const part of parts) {
    const params = scenario_params(part, a.sets);
    if (typeof params === 'string') throw new usage_error(params, 'run');
    params.seed = a.seed;
    const col = a.html !== null || a.chrome !== null ? new report_collector() : null;
    col?.start();
    const outcome = run_scenario(part, params);
    print_run(part.name, part.description, outcome, a, out);
    stats.push(run_stats_of(part.name));
    if (col !== null) reports.push(col.finish(part.name, part.description, outcome));
  }
  write_outputs(a, s.name, stats, reports);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  let a: cli_args;
  try {
    a = parse_args(argv);
  } catch (e) {
    if (!(e instanceof usage_error)) throw e;
    process.stderr.write(`hmm-sim: ${e.message}\n${usage(e.command, param_help())}\n`);
    return 2;
  }
  if (a.version) { out(`hmm-sim ${version()}`); return 0; }
  if (a.help) { out(usage(a.named ? a.command : null, param_help())); return 0; }
  try {
    switch (a.command) {
      case 'list':
        for (const s of scenario_list()) {
          out(a.json ? JSON.stringify({ name: s.name, description: s.description, race: s.race !== undefined })
            : `${s.name.padEnd(20)} ${s.race !== undefined ? '[race] ' : ''}${s.description}`);
        }
        return 0;
      case 'run': return await run_command(a);
      case 'explore': return await explore_command(a, await find_scenario(a.target), out);
      case 'replay': return await replay_command(a, await find_scenario(a.target), out);
    }
  } catch (e) {
    if (e instanceof usage_error) {
      process.stderr.write(`hmm-sim: ${e.message}\n${usage(e.command, param_help())}\n`);
      return 2;
    }
    process.stderr.write(`hmm-sim: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

/* a reader that stops early (hmm-sim run | head) is not an error */
process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); else throw e; });
process.exitCode = await main(process.argv.slice(2));
