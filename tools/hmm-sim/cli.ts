/*
 * tools/hmm-sim/cli.ts - the command line of hmm-sim: subcommands, their
 * options, usage texts. parse_args() is pure (no I/O), so the tests can
 * call it; main.ts prints what it returns and exits 2 on a usage error,
 * as getopt-based tools do.
 *
 *   hmm-sim [run] [SCENARIO|FILE] [options]   run a scenario (default: tour)
 *   hmm-sim list                              the scenarios
 *   hmm-sim explore SCENARIO [--bound N]      search its thread interleavings
 *   hmm-sim replay SCENARIO --schedule S      run one interleaving, traced
 *
 * Older spellings still work: --scenario NAME (run NAME), --list (list),
 * --era v8|mainline|both [NAME...] (run --era), --v8-lifetime-race.
 */

import { fault_inject_check_param, fault_site_names } from '../../lib/fault-inject.js';
import { EINVAL, ENOENT } from '../../include/uapi/asm-generic/errno.js';

export type command = 'run' | 'list' | 'explore' | 'replay';

/** What the command line asked for. */
export interface cli_args {
  command: command;
  named: boolean;                 /* the command was named (hmm-sim run ...), not implied */
  help: boolean;
  version: boolean;
  target: string | null;          /* scenario name or file */
  era_names: string[];            /* run --era: the era scenarios named */
  era: 'v8' | 'mainline' | 'both' | null;
  design: string | null;          /* run --design: the design a GPU scenario runs under (tools/hmm-sim/design.ts) */
  seed: number;
  sets: [string, string][];
  fails: [string, string][];      /* --fail SITE=interval,probability,space,times (lib/fault-inject.ts) */
  trace_events: string[];         /* globs; empty: every event */
  no_trace: boolean;
  json: boolean;
  html: string | null;
  stats: string | null;
  chrome: string | null;
  bound: number;
  max_runs: number;
  schedule: string | null;
  v8_lifetime_race: boolean;
}

/** A usage error: the message, and the command whose usage to print. */
export class usage_error extends Error {
  constructor(message: string, readonly command: command | null) { super(message); }
}

type opt_kind = 'flag' | 'value';
interface opt_def { kind: opt_kind; cmds: readonly command[]; help: string; arg?: string }

const ALL: readonly command[] = ['run', 'list', 'explore', 'replay'];
const TRACED: readonly command[] = ['run', 'explore', 'replay'];

const OPTIONS: Record<string, opt_def> = {
  '--help': { kind: 'flag', cmds: ALL, help: 'this help' },
  '--version': { kind: 'flag', cmds: ALL, help: 'print the version and exit' },
  '--era': { kind: 'value', cmds: ['run'], arg: 'v8|mainline|both', help: 'run the shared scenarios under the 2015 v8 design, mainline, or both side by side' },
  '--design': { kind: 'value', cmds: ['run'], arg: 'v8|mainline|sva|gmem', help: 'run a GPU scenario (gpu, design-debate) under this design of the mock GPU' },
  '--seed': { kind: 'value', cmds: TRACED, arg: 'N', help: 'seed of the random schedules of sim.scheduler() in a scenario; default 1' },
  '--set': { kind: 'value', cmds: TRACED, arg: 'KEY=VALUE', help: 'a boot parameter or cost constant (table below); repeatable' },
  '--fail': { kind: 'value', cmds: TRACED, arg: 'SITE=I,P,S,T', help: 'fault injection: SITE fails as Linux\'s boot parameter interval,probability,space,times (sites below); repeatable' },
  '--trace-events': { kind: 'value', cmds: TRACED, arg: 'GLOBS', help: 'only these events, e.g. "hmm*,migrate_vma*"; repeatable' },
  '--no-trace': { kind: 'flag', cmds: TRACED, help: 'do not print the trace' },
  '--json': { kind: 'flag', cmds: ALL, help: 'print JSON, one object per line' },
  '--html': { kind: 'value', cmds: TRACED, arg: 'FILE', help: 'write a self-contained HTML report (timeline, residency map)' },
  '--stats': { kind: 'value', cmds: TRACED, arg: 'FILE', help: 'write the counters (vmstat names, per device) as JSON' },
  '--chrome': { kind: 'value', cmds: TRACED, arg: 'FILE', help: 'write the trace as Chrome trace-event JSON (Perfetto, chrome://tracing)' },
  '--bound': { kind: 'value', cmds: ['explore'], arg: 'N', help: 'at most N preemptions per interleaving (default: the scenario\'s)' },
  '--max-runs': { kind: 'value', cmds: ['explore'], arg: 'N', help: 'stop after N interleavings (default: the scenario\'s)' },
  '--schedule': { kind: 'value', cmds: ['replay'], arg: 'S', help: 'the choices explore printed, e.g. 0,1,0,2' },
};

const SHORT: Record<string, string> = { '-h': '--help', '-V': '--version' };

const SYNOPSIS: Record<command, string> = {
  run: 'hmm-sim run [SCENARIO|FILE] [options]\n       hmm-sim run --era v8|mainline|both [ERA-SCENARIO...]',
  list: 'hmm-sim list [--json]',
  explore: 'hmm-sim explore SCENARIO [--bound N] [--max-runs N] [options]',
  replay: 'hmm-sim replay SCENARIO --schedule S [options]',
};

const ABOUT: Record<command, string> = {
  run: 'Boot a simulated machine, run a scenario (a built-in name, or a .mjs/.js file that\n' +
    'exports defineScenario({...})), print its kernel trace, its outcome and its counters.\n' +
    'Without a scenario: the tour.',
  list: 'List the built-in scenarios.',
  explore: 'Run a race scenario under every thread interleaving within a preemption bound,\n' +
    'check its invariant after each, and print the first violation step by step.',
  replay: 'Run one interleaving of a race scenario (the schedule explore printed), traced.',
};

/** usage() - the usage text of @cmd, or the overview when null; @params: the --set table lines. */
export function usage(cmd: command | null, params: string[] = []): string {
  if (cmd === null) {
    return [
      'usage: hmm-sim [COMMAND] [ARGS] [options]',
      '',
      'commands:',
      '  run [SCENARIO|FILE]      run a scenario and print its trace (the default command)',
      '  list                     list the scenarios',
      '  explore SCENARIO         search the thread interleavings of a race scenario',
      '  replay SCENARIO          replay one interleaving (--schedule S)',
      '',
      '  hmm-sim COMMAND --help   options of a command',
      '  hmm-sim --version        the version',
      '',
      'older spellings: --scenario NAME, --list, --era E [NAME...], --v8-lifetime-race',
    ].join('\n');
  }
  const lines = [`usage: ${SYNOPSIS[cmd]}`, '', ABOUT[cmd], '', 'options:'];
  for (const [name, d] of Object.entries(OPTIONS)) {
    if (!d.cmds.includes(cmd)) continue;
    const short = Object.entries(SHORT).find(([, l]) => l === name)?.[0];
    const spell = `${short ? short + ', ' : ''}${name}${d.arg ? ' ' + d.arg : ''}`;
    lines.push(`  ${spell.padEnd(30)} ${d.help}`);
  }
  if (cmd !== 'list' && params.length > 0) {
    lines.push('', '--set keys (sizes take K, M, G):', `  ${'key'.padEnd(30)} ${'default'.padStart(12)}  meaning`, ...params);
  }
  if (cmd !== 'list') {
    lines.push('', `--fail sites: ${fault_site_names().join(', ')}`,
      '  e.g. --fail dev_copy=2,100,0,1 fails the 2nd copy to or from the device once;',
      '  page_alloc also takes page_alloc.ignore-gfp-highmem=0, .ignore-gfp-wait=0, .min-order=0',
      '  (by default, as in Linux, it never fails a user page). Documentation/vm/hmm.txt, "Fault injection".');
  }
  return lines.join('\n');
}

function int_arg(name: string, v: string, min: number, cmd: command): number {
  if (!/^\d+$/.test(v) || Number(v) < min) throw new usage_error(`${name} takes an integer >= ${min}, not '${v}'`, cmd);
  return Number(v);
}

/**
 * parse_args() - @argv (without node and the script) to cli_args.
 * Throws usage_error for an unknown option, a missing or bad value, a
 * stray argument, or an option the command does not take.
 */
export function parse_args(argv: readonly string[]): cli_args {
  const a: cli_args = {
    command: 'run', named: false, help: false, version: false, target: null, era_names: [], era: null, design: null, seed: 1, sets: [], fails: [],
    trace_events: [], no_trace: false, json: false, html: null, stats: null, chrome: null, bound: -1, max_runs: -1,
    schedule: null, v8_lifetime_race: false,
  };
  const args = argv.slice();
  let explicit = false;
  if (args.length > 0 && (ALL as readonly string[]).includes(args[0]!)) {
    a.command = args.shift() as command;
    explicit = true;
  } else if (args[0] === 'help') {
    args.shift();
    a.help = true;
    if (args.length > 0) {
      if (!(ALL as readonly string[]).includes(args[0]!)) throw new usage_error(`no command '${args[0]}'`, null);
      a.command = args.shift() as command;
      explicit = true;
    }
    if (args.length > 0) throw new usage_error(`unexpected argument '${args[0]}'`, a.command);
    a.named = explicit;
    return a;
  }
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    let arg = args[i]!;
    if (arg === '--') { positionals.push(...args.slice(i + 1)); break; }
    if (!arg.startsWith('-') || arg === '-') { positionals.push(arg); continue; }
    let value: string | null = null;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) { value = arg.slice(eq + 1); arg = arg.slice(0, eq); }
    arg = SHORT[arg] ?? arg;
    /* the older spellings, accepted when no command was named */
    if (!explicit && (arg === '--list' || arg === '--scenario' || arg === '--v8-lifetime-race')) {
      if (arg === '--list') { if (value !== null) throw new usage_error('--list takes no value', null); a.command = 'list'; continue; }
      if (arg === '--v8-lifetime-race') { a.v8_lifetime_race = true; continue; }
      if (value === null) {
        if (i + 1 >= args.length || args[i + 1]!.startsWith('-')) throw new usage_error('--scenario needs a scenario name', 'run');
        value = args[++i]!;
      }
      if (a.target !== null) throw new usage_error('more than one scenario named', 'run');
      a.target = value;
      continue;
    }
    const d = OPTIONS[arg];
    if (d === undefined) throw new usage_error(`unknown option '${args[i]}'`, explicit ? a.command : null);
    if (d.kind === 'flag') {
      if (value !== null) throw new usage_error(`${arg} takes no value`, a.command);
    } else if (value === null) {
      if (i + 1 >= args.length || (args[i + 1]!.startsWith('--') && args[i + 1] !== '--'))
        throw new usage_error(`${arg} needs a value (${d.arg})`, a.command);
      value = args[++i]!;
    }
    set_option(a, arg, value);
  }
  a.named = explicit;
  if (a.help || a.version) return a;
  check_command_options(a, argv);
  take_positionals(a, positionals);
  return a;
}

/* Record one option; the per-command check comes after all are read. */
function set_option(a: cli_args, name: string, value: string | null): void {
  const v = value ?? '';
  switch (name) {
    case '--help': a.help = true; return;
    case '--version': a.version = true; return;
    case '--era':
      if (v !== 'v8' && v !== 'mainline' && v !== 'both') throw new usage_error(`--era takes v8, mainline or both, not '${v}'`, 'run');
      a.era = v; return;
    case '--design': a.design = v; return;
    case '--seed': a.seed = int_arg('--seed', v, 0, a.command); return;
    case '--set': {
      const eq = v.indexOf('=');
      if (eq <= 0) throw new usage_error(`--set takes KEY=VALUE, not '${v}'`, a.command);
      a.sets.push([v.slice(0, eq), v.slice(eq + 1)]); return;
    }
    case '--fail': {
      const eq = v.indexOf('=');
      const err = eq <= 0 ? -EINVAL : fault_inject_check_param(v.slice(0, eq), v.slice(eq + 1));
      if (err === -ENOENT) {
        throw new usage_error(`--fail: no fault-injection site '${v.slice(0, eq)}' (they are: ${fault_site_names().join(', ')})`, a.command);
      }
      if (err !== 0) throw new usage_error(`--fail takes SITE=interval,probability,space,times (probability 0-100, times -1 for no limit), not '${v}'`, a.command);
      a.fails.push([v.slice(0, eq), v.slice(eq + 1)]); return;
    }
    case '--trace-events':
      for (const g of v.split(',')) {
        if (g.trim() === '') throw new usage_error(`--trace-events: empty pattern in '${v}'`, a.command);
        a.trace_events.push(g.trim());
      }
      return;
    case '--no-trace': a.no_trace = true; return;
    case '--json': a.json = true; return;
    case '--html': a.html = v; return;
    case '--stats': a.stats = v; return;
    case '--chrome': a.chrome = v; return;
    case '--bound': a.bound = int_arg('--bound', v, 0, 'explore'); return;
    case '--max-runs': a.max_runs = int_arg('--max-runs', v, 1, 'explore'); return;
    case '--schedule':
      if (!/^\d+(,\d+)*$|^$/.test(v)) throw new usage_error(`--schedule takes comma-separated choices (0,1,0), not '${v}'`, 'replay');
      a.schedule = v; return;
  }
}

/* Every option given must belong to the command (the legacy --era implies run). */
function check_command_options(a: cli_args, argv: readonly string[]): void {
  for (const raw of argv) {
    if (!raw.startsWith('-')) continue;
    const name = SHORT[raw] ?? (raw.includes('=') ? raw.slice(0, raw.indexOf('=')) : raw);
    const d = OPTIONS[name];
    if (d !== undefined && !d.cmds.includes(a.command))
      throw new usage_error(`'${a.command}' does not take ${name}`, a.command);
  }
  if (a.command === 'replay' && a.schedule === null) throw new usage_error('replay needs --schedule S', 'replay');
  if (a.era !== null && (a.html !== null || a.chrome !== null))
    throw new usage_error('--era prints a comparison table; --html and --chrome need a single run', 'run');
  if (a.era !== null && a.design !== null) throw new usage_error('--era and --design do not go together', 'run');
}

function take_positionals(a: cli_args, pos: string[]): void {
  if (a.command === 'list') {
    if (pos.length > 0) throw new usage_error(`unexpected argument '${pos[0]}'`, 'list');
    return;
  }
  if (a.command === 'run' && a.era !== null) {
    if (a.target !== null) throw new usage_error('--era runs the era scenarios; it takes no --scenario', 'run');
    a.era_names = pos;
    return;
  }
  if (a.v8_lifetime_race) {
    if (pos.length > 0 || a.target !== null) throw new usage_error('--v8-lifetime-race takes no scenario', 'run');
    return;
  }
  if (pos.length > 0) {
    if (a.target !== null) throw new usage_error(`unexpected argument '${pos[0]}'`, a.command);
    a.target = pos.shift()!;
  }
  if (pos.length > 0) throw new usage_error(`unexpected argument '${pos[0]}'`, a.command);
  if ((a.command === 'explore' || a.command === 'replay') && a.target === null)
    throw new usage_error(`${a.command} needs a scenario`, a.command);
}
