/*
 * tools/hmm-sim/registry.ts - find a scenario by name (the built-ins of
 * scenarios/index.ts) or load one from a user's file, and run it on a
 * freshly booted machine.
 */
import { pathToFileURL } from 'node:url';
import { register } from 'node:module';
import { resolve as resolve_path } from 'node:path';
import { existsSync } from 'node:fs';
import * as builtins from './scenarios/index.js';
import { defineScenario, make_context, type scenario } from './api.js';
import { default_params, set_param, boot_params_of, apply_costs, type sim_params } from './params.js';
import { start_kernel } from '../../mm/init.js';
import { hmm_dmirror_init } from '../../lib/test_hmm.js';
import { tracing_on, trace_set_buffer_size } from '../../lib/sim/trace.js';

/** Events a scenario run keeps (the tracer's default ring holds 4096). */
export const TRACE_RING_EVENTS = 1 << 16;

/** The scenario `hmm-sim` and `npm start` run when none is named. */
export const DEFAULT_SCENARIO = 'tour';

/** scenario_list() - the built-in scenarios, by name. */
export function scenario_list(): scenario[] {
  return Object.values(builtins) as scenario[];
}

/** scenario_lookup() - the built-in scenario @name, or undefined. */
export function scenario_lookup(name: string): scenario | undefined {
  return scenario_list().find((s) => s.name === name);
}

/** is_scenario_file() - does @arg name a file rather than a built-in? (has a slash or a .js/.mjs suffix) */
export function is_scenario_file(arg: string): boolean {
  return arg.includes('/') || /\.m?js$/.test(arg);
}

let hooked = false;

/**
 * load_scenario_file() - import the user's scenario module at @path; its
 * default export (or its export named `scenario`) goes through
 * defineScenario() again, so a plain object works too. The bare
 * specifier 'hmm-sim' resolves to this package even when the file lies
 * outside any project that installed it (a module resolve hook).
 * Throws with a message fit for the user on any problem.
 */
export async function load_scenario_file(path: string): Promise<scenario> {
  const abs = resolve_path(path);
  if (!existsSync(abs)) throw new Error(`no such scenario file: ${path}`);
  if (!hooked) {
    register('./resolve_hook.js', import.meta.url);
    hooked = true;
  }
  const mod = await import(pathToFileURL(abs).href) as { default?: unknown; scenario?: unknown };
  const spec = mod.default ?? mod.scenario;
  if (spec === undefined) throw new Error(`${path}: no default export (export default defineScenario({...}))`);
  return defineScenario(spec as Parameters<typeof defineScenario>[0]);
}

/**
 * scenario_params() - defaults, then @s's boot object, then @sets
 * ("key=value" already split). Return: the parameters, or the error.
 */
export function scenario_params(s: scenario, sets: [string, string][]): sim_params | string {
  const p = default_params();
  for (const [k, v] of Object.entries(s.boot ?? {})) {
    const err = set_param(p, k, String(v));
    if (err !== null) return `scenario ${s.name}: boot: ${err}`;
  }
  for (const [k, v] of sets) {
    const err = set_param(p, k, v);
    if (err !== null) return `--set ${k}=${v}: ${err}`;
  }
  return p;
}

/**
 * boot_scenario_machine() - boot a fresh machine with @p (start_kernel()
 * resets the tracer and the counters), set the cost constants, turn
 * tracing on.
 */
export function boot_scenario_machine(p: sim_params): void {
  apply_costs(p);
  start_kernel(boot_params_of(p));
  hmm_dmirror_init();                     /* module_init of lib/test_hmm: /dev/hmm_dmirror0..3 */
  trace_set_buffer_size(TRACE_RING_EVENTS);
  tracing_on();
}

/**
 * run_scenario() - boot a machine for @s with @p and call its run().
 * Return: the outcome lines (logged and returned). A tour is not run
 * here: the caller runs its parts one by one.
 */
export function run_scenario(s: scenario, p: sim_params): string[] {
  boot_scenario_machine(p);
  const out: string[] = [];
  const ret = s.run(make_context(p, out, () => boot_scenario_machine(p)));
  if (Array.isArray(ret)) out.push(...ret.map(String));
  return out;
}
