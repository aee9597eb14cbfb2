/*
 * test/tools/hmm-sim/cli.test.ts - the hmm-sim command as a user runs it:
 * the built dist/tools/hmm-sim/main.js in a child process. Misuse exits 2
 * with the usage on stderr; each subcommand does its job; a scenario
 * file a user writes in a temp dir runs through `hmm-sim run FILE`.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse_args, usage_error } from '../../../tools/hmm-sim/cli.js';

const MAIN = 'dist/tools/hmm-sim/main.js';
const t = suite('tools/hmm-sim/cli');

/** hmm() - run the CLI with @args; stdout, stderr, exit status. */
export function hmm(...args: string[]): { out: string; err: string; rc: number } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { out: r.stdout, err: r.stderr, rc: r.status ?? -1 };
}

/* misuse that parse_args() itself refuses */
const misuse: string[][] = [
  ['--bogus'], ['-x'], ['--scenario'], ['--scenario', '--no-trace'], ['--era'], ['--era', 'v9'],
  ['run', 'cow', 'extra'], ['run', '--seed'], ['run', '--seed', 'abc'], ['run', '--set', 'ram'],
  ['list', 'cow'], ['list', '--bound', '3'], ['explore'], ['explore', 'race_munmap', '--bound'],
  ['explore', 'race_munmap', '--bound', '-1'], ['replay', 'race_munmap'], ['replay', 'race_munmap', '--schedule', 'x'],
  ['run', '--trace-events', ''], ['run', '--no-trace=yes'], ['run', '--html'], ['help', 'nosuch'], ['--list=1'],
  ['run', '--fail', 'page_alloc'], ['run', '--fail', 'nosuch=1,100,0,1'], ['run', '--fail', 'dev_copy=1,101,0,1'],
  ['run', '--fail', 'dev_copy=1,100,0'], ['run', '--fail', 'page_alloc.bogus=0'], ['list', '--fail', 'dev_copy=1,100,0,1'],
];

t('parse_args() refuses every misuse with a usage_error', () => {
  for (const args of misuse) {
    assert.throws(() => parse_args(args), (e: unknown) => e instanceof usage_error, args.join(' '));
  }
});

/* misuse the command finds after parsing (names that do not exist, bad --set values), and a sample of the above */
const misuse_run: string[][] = [
  ['--bogus'], ['--scenario'], ['--era', 'v8', 'nope'], ['run', 'nosuch'], ['run', '--set', 'bogus=1'],
  ['run', '--set', 'ram=lots'], ['run', '--set', 'thp=sometimes'], ['explore', 'cow'], ['run', 'cow', 'extra'],
];

t('every misuse prints an error and the usage on stderr and exits 2, running nothing', () => {
  for (const args of misuse_run) {
    const r = hmm(...args);
    assert.is(r.rc, 2, `${args.join(' ')}: exit ${r.rc}\n${r.err}`);
    assert.match(r.err, /^hmm-sim: .+\nusage: hmm-sim/, `${args.join(' ')}: ${r.err}`);
    assert.is(r.out, '', `${args.join(' ')} printed to stdout`);
  }
});

t('--help, -h, help CMD and CMD --help print the right usage and exit 0', () => {
  const top = hmm('--help');
  assert.is(top.rc, 0);
  assert.match(top.out, /^usage: hmm-sim \[COMMAND\]/);
  assert.match(top.out, /explore SCENARIO/);
  assert.is(hmm('-h').out, top.out);
  for (const cmd of ['run', 'list', 'explore', 'replay']) {
    const r = hmm(cmd, '--help');
    assert.is(r.rc, 0, cmd);
    assert.match(r.out, new RegExp(`^usage: hmm-sim ${cmd}`), cmd);
    assert.is(hmm('help', cmd).out, r.out, `help ${cmd}`);
  }
  const run = hmm('run', '--help').out;
  for (const k of ['ram', 'swap', 'thp', 'vram', 'pcie_bw', 'minor_fault_ns']) assert.match(run, new RegExp(`\\n  ${k} `), `--set table has ${k}`);
  assert.match(hmm('explore', '--help').out, /--bound N/);
  assert.match(hmm('replay', '--help').out, /--schedule S/);
});

t('--version prints the package version', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  const r = hmm('--version');
  assert.is(r.rc, 0);
  assert.is(r.out, `hmm-sim ${pkg.version}\n`);
  assert.is(hmm('-V').out, r.out);
});

t('list prints every scenario once; --list is the same; --json parses', () => {
  const r = hmm('list');
  assert.is(r.rc, 0);
  const names = r.out.trim().split('\n').map((l) => l.split(/\s+/)[0]);
  for (const n of ['tour', 'cow', 'thp_swap', 'mirror', 'race_munmap', 'race_broken_retry']) assert.ok(names.includes(n), n);
  assert.is(new Set(names).size, names.length);
  assert.is(hmm('--list').out, r.out);
  const j = hmm('list', '--json').out.trim().split('\n').map((l) => JSON.parse(l) as { name: string; race: boolean });
  assert.equal(j.map((x) => x.name), names);
  assert.ok(j.find((x) => x.name === 'race_munmap')!.race);
});

t('run NAME, --scenario NAME and --scenario=NAME run the same scenario; --no-trace drops the trace', () => {
  const a = hmm('run', 'cow');
  assert.is(a.rc, 0, a.err);
  assert.match(a.out, /# hmm-sim: scenario 'cow'/);
  assert.match(a.out, /parent data intact: true/);
  assert.match(a.out, /wp_page_copy: /);
  assert.is(hmm('--scenario', 'cow').out, a.out);
  assert.is(hmm('--scenario=cow').out, a.out);
  const n = hmm('run', 'cow', '--no-trace');
  assert.not.match(n.out, /wp_page_copy: /);
  assert.match(n.out, /fault_cow +1/);
});

t('--set changes the machine: RAM size shows in the page counts, a cost constant in the simulated time', () => {
  const small = hmm('run', 'mirror', '--no-trace', '--set', 'ram=8M');
  assert.is(small.rc, 0, small.err);
  assert.match(small.out, /device data intact: true/);
  assert.match(small.out, /\n {2}\/proc\/vmstat: pgfault 49, /, 'the summary under /proc/vmstat names');
  assert.match(small.out, /\n {2}hmm_dmirror0: ioctls READ 2, MIGRATE_TO_DEV 1, SNAPSHOT 1; pages 64, device faults 2, errors 0\n/,
    'and per device');
  const time = (s: string) => s.match(/simulated time ([\d.]+)/)![1]!;
  const base = hmm('run', 'cow', '--no-trace');
  const slow = hmm('run', 'cow', '--no-trace', '--set', 'minor_fault_ns=1000000');
  assert.ok(Number(time(slow.out)) > Number(time(base.out)) + 0.005, `${time(slow.out)} vs ${time(base.out)}`);
  const tiny = hmm('run', 'thp_swap', '--no-trace', '--set=thp=never');
  assert.match(tiny.out, /AnonHugePages 0 kB/);
});

t('--fail makes a fault-injection site fail as the boot parameter says; the summary counts its hits and failures', () => {
  const r = hmm('run', 'mirror', '--no-trace', '--fail', 'dev_copy=1,100,0,-1');
  assert.is(r.rc, 0, r.err);
  assert.match(r.out, /\n {2}fault injection: fail_dev_copy hits 16, failures 16\n/);
  assert.match(r.out, /snapshot bytes: (02 ){15}02\n/, 'every copy to the device failed: all 16 pages stayed in RAM');
  assert.match(r.out, /device data intact: true; CPU data intact: true/);
  const once = hmm('run', 'mirror', '--no-trace', '--fail', 'dev_copy=3,100,0,1');
  assert.match(once.out, /fault injection: fail_dev_copy hits \d+, failures 1\n/);
  assert.not.match(hmm('run', 'mirror', '--no-trace').out, /fault injection:/, 'no line without --fail');
  const bad = hmm('run', 'mirror', '--fail', 'dma=1,100,0,1');
  assert.is(bad.rc, 2);
  assert.match(bad.err, /no fault-injection site 'dma' \(they are: page_alloc, devmem_alloc, dma_map, dev_copy, hmm_retry, folio_trylock\)/);
});

t('--trace-events keeps only the events its globs match', () => {
  const r = hmm('run', 'mirror', '--trace-events', 'migrate_vma*,hmm_range_fault');
  assert.is(r.rc, 0, r.err);
  const events = [...r.out.matchAll(/\[\d{3}\] \S{5} +[\d.]+: (\w+):/g)].map((m) => m[1]!);
  assert.ok(events.length >= 4, r.out);
  for (const e of events) assert.match(e, /^(migrate_vma\w*|hmm_range_fault(_ret)?)$/);
  assert.ok(events.includes('migrate_vma_setup') && events.includes('hmm_range_fault'));
});

t('--json prints one JSON object per line; --stats writes the counters', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hmm-sim-'));
  try {
    const stats = join(dir, 'stats.json');
    const r = hmm('run', 'cow', '--json', '--stats', stats);
    assert.is(r.rc, 0, r.err);
    const objs = r.out.trim().split('\n').map((l) => JSON.parse(l) as { type: string; event?: string; counters?: Record<string, number> });
    assert.is(objs[0]!.type, 'scenario');
    assert.ok(objs.filter((o) => o.type === 'event').length > 10);
    assert.ok(objs.some((o) => o.event === 'handle_mm_fault'));
    const c = objs.find((o) => o.type === 'counters')!;
    const s = JSON.parse(readFileSync(stats, 'utf8')) as { runs: { name: string; counters: Record<string, number> }[] };
    assert.is(s.runs.length, 1);
    assert.is(s.runs[0]!.name, 'cow');
    assert.equal(s.runs[0]!.counters, c.counters);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t('the tour runs its parts, each on a fresh machine', () => {
  const r = hmm('--no-trace');
  assert.is(r.rc, 0, r.err);
  const names = [...r.out.matchAll(/# hmm-sim: scenario '(\w+)'/g)].map((m) => m[1]);
  assert.equal(names, ['cow', 'thp_swap', 'mirror']);
  assert.not.match(r.out, /false/);
});

t('--era compares the designs; old and new spellings agree', () => {
  const r = hmm('--era', 'both', 'anon_read');
  assert.is(r.rc, 0, r.err);
  assert.match(r.out, /# anon_read .*\n.*v8 +mainline +diff/);
  assert.match(r.out, /v8: ok\n {2}mainline: ok/);
  assert.is(hmm('run', '--era', 'both', 'anon_read').out, r.out);
});

t('a scenario file a user writes runs through `hmm-sim run FILE`, importing the package API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hmm-sim-'));
  try {
    const file = join(dir, 'my-scenario.mjs');
    writeFileSync(file, `
import { defineScenario, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, HMM_DMIRROR_MIGRATE_TO_DEV } from 'hmm-sim';
export default defineScenario({
  name: 'mine',
  description: 'two pages to device memory and back',
  boot: { ram: '16M' },
  run(sim) {
    const p = sim.spawn('user-app');
    const a = p.mmap(0, 2 * sim.PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.write32(a, 0x1234);
    const d = sim.dmirror(p, 0);
    sim.log('migrate ret=' + d.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, a, 2, a) + ' cpages=' + d.cpages);
    sim.log('read back 0x' + p.read32(a).toString(16) + ' ram=' + sim.params.ram);
  },
});
`);
    const r = hmm('run', file);
    assert.is(r.rc, 0, r.err);
    assert.match(r.out, /# hmm-sim: scenario 'mine': two pages to device memory and back/);
    assert.match(r.out, /migrate ret=0 cpages=2\n/);          /* the untouched page migrates as a zero-filled one */
    assert.match(r.out, /read back 0x1234 ram=16777216\n/);
    assert.match(r.out, /user-app-1 .*migrate_vma_setup: /);
    assert.match(r.out, /do_swap_page_device_private: /);
    /* --seed drives the random schedule a scenario gets from sim.scheduler() */
    const seeded = join(dir, 'seeded.mjs');
    writeFileSync(seeded, `
import { defineScenario, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from 'hmm-sim';
export default defineScenario({
  name: 'seeded', description: 'two threads fault pages under a random schedule',
  run(sim) {
    const p = sim.spawn('app');
    const a = p.mmap(0, 8 * sim.PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const s = sim.scheduler();
    for (const name of ['t0', 't1']) s.spawn(name, function* () {
      for (let i = 0; i < 4; i++) yield* p.sys.store(a + (name === 't0' ? i : 4 + i) * sim.PAGE_SIZE, 4, i);
    }, 'user', p.task);
    s.run();
    sim.log('order ' + s.formatSchedule());
  },
});
`);
    const order = (seed: string) => /order (.*)\n/.exec(hmm('run', seeded, '--no-trace', '--seed', seed).out)![1]!;
    const one = order('1');
    assert.is(order('1'), one, 'the same seed, the same interleaving');
    assert.ok(order('3') !== one || order('4') !== one, 'another seed, another interleaving');
    const bad = join(dir, 'bad.mjs');
    writeFileSync(bad, `export default { name: 'Bad Name', description: 'x', run() {} };\n`);
    const b = hmm('run', bad);
    assert.is(b.rc, 1);
    assert.match(b.err, /defineScenario: name must match/);
    assert.is(hmm('run', join(dir, 'missing.mjs')).rc, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t('explore: interleavings, the invariant, the first violation step by step; replay runs it again', () => {
  const r = hmm('explore', 'race_broken_retry');
  assert.is(r.rc, 1, r.err);
  assert.match(r.out, /# invariant: after invalidate_range_end\(\) no device maps a page the CPU no longer maps/);
  assert.match(r.out, /# interleavings run: 2 \(at most 3 preemptions each; stopped at the first violation\)/);
  assert.match(r.out, /# threads in the order they ran: device -> munmap -> device/);
  const sched = /# schedule: ([\d,]+) /.exec(r.out)![1]!;
  const steps = [...r.out.matchAll(/# --- step (\d+): (\S+) runs/g)].map((m) => m[2]);
  assert.equal(steps, ['device-1', 'munmap-1', 'device-1']);
  assert.match(r.out, /device-1 \[001\] .* mmu_interval_read_retry: /);
  const p = hmm('replay', 'race_broken_retry', '--schedule', sched, '--no-trace');
  assert.is(p.rc, 1);
  assert.match(p.out, /# invariant broken: at the end of the run: dmirror0\.0 maps pfn/);
  const ok = hmm('replay', 'race_broken_retry', '--schedule', '');
  assert.is(ok.rc, 0, 'without the preemption the broken driver survives');
  const good = hmm('explore', 'race_munmap', '--bound', '1');
  assert.is(good.rc, 0);
  assert.match(good.out, /# interleavings run: \d+ \(at most 1 preemptions each; every interleaving within the bound\)\n# no violation found/);
});

t('package.json: bin points at the built main.js, which starts with a shebang; exports the API', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string>; exports: Record<string, string> };
  assert.is(pkg.bin['hmm-sim'], MAIN);
  assert.ok(readFileSync(MAIN, 'utf8').startsWith('#!/usr/bin/env node\n'));
  assert.is(pkg.exports['.'], './dist/tools/hmm-sim/api.js');
  assert.ok(statSync('dist/tools/hmm-sim/api.js').isFile());
});

t('parse_args: values with = and with a space, repeated --set and --trace-events', () => {
  const a = parse_args(['run', 'cow', '--set', 'ram=8M', '--set=swap=1M', '--trace-events', 'hmm*,migrate*', '--seed=7']);
  assert.is(a.command, 'run');
  assert.is(a.target, 'cow');
  assert.equal(a.sets, [['ram', '8M'], ['swap', '1M']]);
  assert.equal(a.trace_events, ['hmm*', 'migrate*']);
  assert.is(a.seed, 7);
  assert.throws(() => parse_args(['run', '--bound', '2']), (e: unknown) => e instanceof usage_error && /does not take --bound/.test(e.message));
});

t.run();
