/*
 * tools/hmm-sim/api.ts - the scenario API: what `import ... from 'hmm-sim'`
 * gives a user who writes a scenario (package.json "exports").
 *
 *   import { defineScenario, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from 'hmm-sim';
 *   export default defineScenario({
 *     name: 'mine',
 *     description: 'one page, written then read',
 *     boot: { ram: '16M' },
 *     run(sim) {
 *       const p = sim.spawn('app');
 *       const a = p.mmap(0, sim.PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
 *       p.write32(a, 42);
 *       sim.log(`read back ${p.read32(a)}`);
 *     },
 *   });
 *
 * `hmm-sim run ./mine.mjs` boots a machine with the scenario's boot
 * parameters (overridden by --set), turns tracing on, calls run(sim) and
 * prints the trace, the lines logged (or returned) and the counters.
 *
 * The user-space view is the one the self-tests use: sim.spawn() returns
 * a Process (tools/include/nolibc/nolibc.ts: mmap, munmap, mprotect,
 * madvise, fork, exit, wait, open, ioctl, read32/write32, fill32/check32,
 * and p.sys.* for the same calls as generators on simulated threads);
 * sim.dmirror() opens /dev/hmm_dmirrorN and issues HMM_DMIRROR_* commands
 * (tools/lib/dmirror.ts). Drivers add their own handles as they land.
 */
import { PAGE_SIZE, PMD_SIZE } from '../../include/linux/mm.js';
import { Process } from '../include/nolibc/nolibc.js';
import { Dmirror } from '../lib/dmirror.js';
import type { sim_params } from './params.js';
import { Scheduler } from '../../lib/sim/sched.js';

export { Process } from '../include/nolibc/nolibc.js';
export { Dmirror } from '../lib/dmirror.js';
export { Scheduler };
export { explore } from '../../lib/sim/explore.js';
export * from '../../include/uapi/asm-generic/mman.js';
export {
  HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_CHECK_EXCLUSIVE, HMM_DMIRROR_RELEASE,
} from '../../include/uapi/linux/test_hmm.js';
export { PAGE_SIZE, PMD_SIZE } from '../../include/linux/mm.js';
export { get_counter } from '../../lib/sim/trace.js';

/** What run() gets: the machine just booted, tracing on. */
export interface sim_context {
  /** the parameters the machine booted with (defaults <- scenario boot <- --set) */
  readonly params: Readonly<sim_params>;
  readonly PAGE_SIZE: number;
  readonly PMD_SIZE: number;
  /** spawn() - a new process with an empty address space, named @comm */
  spawn(comm?: string): Process;
  /** dmirror() - @p opens /dev/hmm_dmirror@unit (0, 1: device-private; 2, 3: device-coherent) */
  dmirror(p: Process, unit?: number): Dmirror;
  /** log() - one line of the scenario's outcome */
  log(line: string): void;
  /**
   * reboot() - boot a fresh machine with the same parameters, tracing on
   * (for a scenario that runs a setup several times, e.g. under explore())
   */
  reboot(): void;
  /**
   * scheduler() - a Scheduler for the scenario's own simulated threads:
   * 'random' interleaves them at every preemption point from --seed
   * (default 1), so a run is repeatable; 'run-to-completion' runs each
   * thread until it blocks.
   */
  scheduler(mode?: 'random' | 'run-to-completion'): Scheduler;
}

/**
 * A race for `hmm-sim explore`: run(s) builds a fresh machine and spawns
 * threads on @s; check() throws when the invariant broke.
 */
export interface scenario_race {
  readonly name: string;
  readonly invariant: string;
  run(s: Scheduler): void;
  check(): void;
  readonly bound?: { preemptionBound: number; maxRuns: number };
}

/** A scenario, as defineScenario() takes it. */
export interface scenario_spec {
  name: string;
  description: string;
  /** boot parameters by their --set name: { ram: '16M', swap: '32M', thp: 'always' } */
  boot?: Record<string, number | string>;
  /** a tour: run these scenarios in turn, each on a fresh machine (run is then not called) */
  parts?: string[];
  /** the 2015 v8 design's counterpart, for --era (tools/hmm-sim/era.ts) */
  era?: string;
  run(sim: sim_context): string[] | void;
  /** a race for `hmm-sim explore` and `replay` */
  race?: () => scenario_race;
}

/** A checked scenario, as the registry holds it. */
export type scenario = Readonly<scenario_spec>;

const NAME = /^[a-z0-9][a-z0-9_-]*$/;

/**
 * defineScenario() - check @spec and return it as a scenario.
 * Throws a TypeError naming the field when one is missing or malformed.
 */
export function defineScenario(spec: scenario_spec): scenario {
  if (spec === null || typeof spec !== 'object') throw new TypeError('defineScenario: expects an object');
  if (typeof spec.name !== 'string' || !NAME.test(spec.name))
    throw new TypeError(`defineScenario: name must match ${NAME} (got ${JSON.stringify(spec.name)})`);
  if (typeof spec.description !== 'string' || spec.description === '')
    throw new TypeError(`defineScenario(${spec.name}): description must be a non-empty string`);
  if (typeof spec.run !== 'function') throw new TypeError(`defineScenario(${spec.name}): run must be a function`);
  if (spec.boot !== undefined && (spec.boot === null || typeof spec.boot !== 'object'))
    throw new TypeError(`defineScenario(${spec.name}): boot must be an object`);
  if (spec.race !== undefined && typeof spec.race !== 'function')
    throw new TypeError(`defineScenario(${spec.name}): race must be a function`);
  return Object.freeze({ ...spec });
}

/** make_context() - the sim object run() gets; @out collects the logged lines; @boot boots a machine. */
export function make_context(params: sim_params, out: string[], boot: () => void): sim_context {
  return {
    params, PAGE_SIZE, PMD_SIZE, reboot: boot,
    spawn: (comm = 'app') => Process.spawn(comm),
    dmirror: (p, unit = 0) => new Dmirror(p, unit),
    log: (line) => { out.push(line); },
    scheduler: (mode = 'random') => new Scheduler({ mode, seed: typeof params.seed === 'number' ? params.seed : 1 }),
  };
}
