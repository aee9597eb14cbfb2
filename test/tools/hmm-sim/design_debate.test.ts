/*
 * test/tools/hmm-sim/design_debate.test.ts - `hmm-sim run design-debate`
 * and `--design` (tools/hmm-sim/scenarios/design_debate.ts, design.ts,
 * driver_lines.ts): the same GPU workload under every design gives the
 * same bytes; the relations the designs imply hold; the table is
 * reproducible; driver lines are counted by rule, not written down.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { design_debate_report, design_run, GMEM_CORE_FILES } from '../../../tools/hmm-sim/scenarios/design_debate.js';
import { gpu_scenario_run } from '../../../tools/hmm-sim/scenarios/gpu.js';
import { DESIGNS, DESIGN_TABLE } from '../../../tools/hmm-sim/design.js';
import { sloc, driver_lines } from '../../../tools/hmm-sim/driver_lines.js';
import { scenario_lookup } from '../../../tools/hmm-sim/registry.js';
import { parse_args, usage_error } from '../../../tools/hmm-sim/cli.js';
import { EFAULT } from '../../../include/uapi/asm-generic/errno.js';
import { spawnSync } from 'node:child_process';

test('sloc() counts code lines only: no blanks, comments, or import statements', () => {
  const text = [
    '/*', ' * a header', ' */', "import { a,", '  b,', "} from './x.js';", "import type { c } from './y.js';", '',
    'const x = 1;   /* trailing comment */', '// a line comment', '/* one-line */', 'function f() {',
    '  /* inside', '     still */ return x;', '}', "export { d } from './z.js';",
  ].join('\n');
  assert.is(sloc(text), 4);      /* const, function, return, } */
});

test('every design runs the workload: same bytes, VRAM empty after close, and the relations each design implies', () => {
  const { lines, results, reused } = design_debate_report();
  const by = Object.fromEntries(results.map((r) => [r.design, r]));
  assert.equal(results.map((r) => r.design), [...DESIGNS]);
  for (const r of results) {
    assert.is(r.status, 0, r.design);
    assert.ok(r.bytes_ok, `${r.design}: every word read back is old + 1`);
    assert.is(r.vram_left, 0, r.design);
  }
  assert.is(new Set(results.map((r) => r.bytes_hash)).size, 1, 'bytes identical across designs');
  const mirrors = results.filter((r) => r.design !== 'sva');
  /* the mirroring designs migrate: 64 pages to VRAM, 32 back on CPU faults (the munmapped 32 are dropped),
     and take their invalidations where the driver may sleep */
  for (const r of mirrors) {
    assert.is(r.pages_serviced, 64, r.design);
    assert.is(r.pages_moved, 96, r.design);
    assert.is(r.inval_atomic, 0, r.design);
    assert.ok(r.inval_sleeping > 0, r.design);
  }
  /* SVA: the CPU's table, nothing to migrate (pages already present: no page request either), and the
     munmap reaches the device only from the TLB flush, in atomic context */
  assert.equal([by.sva!.pages_moved, by.sva!.migrations, by.sva!.fault_packets, by.sva!.inval_sleeping], [0, 0, 0, 0]);
  assert.ok(by.sva!.inval_atomic >= 1);
  assert.ok(by.sva!.sim_ns < by.mainline!.sim_ns, 'one pass over resident data: no migration is cheaper');
  /* reused 8 times, the data in VRAM wins over PCIe on every access */
  const re = Object.fromEntries(reused.map((r) => [r.design, r]));
  for (const r of reused) assert.ok(r.bytes_ok, `${r.design}: old + 8 after 8 runs`);
  const further = (d: string) => re[d]!.sim_ns - by[d]!.sim_ns;
  assert.ok(further('mainline') < further('sva'), 'a further run over VRAM-resident data is cheaper than over PCIe');
  /* GMEM calls peer_unmap once per page: 32 CPU faults + 32 munmapped pages */
  assert.is(by.gmem!.inval_sleeping, 64);
  /* GMEM's published claim: the driver is under 70 lines besides its MMU functions; the HMM glues are larger */
  assert.ok(by.gmem!.driver_lines! < 70, `gmem glue ${by.gmem!.driver_lines}`);
  assert.ok(by.gmem!.mmu_lines! > 0);
  for (const d of ['v8', 'mainline', 'sva']) assert.ok(by[d]!.driver_lines! > by.gmem!.driver_lines!, d);
  assert.match(lines.join('\n'), /bytes read back intact\s+true\s+true\s+true\s+true/);
  assert.match(lines.join('\n'), new RegExp(`under 70 lines besides its MMU functions: ${by.gmem!.driver_lines} lines, holds`));
  const core = driver_lines(GMEM_CORE_FILES)!;
  assert.ok(core > 5 * by.gmem!.driver_lines!, `the core GMEM adds (${core}) is larger than the glue it saves`);
  assert.match(lines.join('\n'), new RegExp(`core mm lines GMEM adds for it \\(5 files, same rule\\): ${core}$`, 'm'));
});

test('the table is reproducible: a second run gives the same lines', () => {
  const a = design_debate_report(['mainline', 'gmem']).lines;
  const b = design_debate_report(['mainline', 'gmem']).lines;
  assert.equal(a, b);
});

test('driver_lines() reads the design\'s files from the source tree', () => {
  for (const d of DESIGNS) {
    const n = driver_lines(DESIGN_TABLE[d].driver_files);
    assert.ok(n !== null && n > 20, d);
  }
  assert.is(driver_lines(['drivers/gpu/mockgpu/no_such_file.ts']), null);
});

test('`--design gmem` on the gpu scenario: the private buffer goes through GMEM; the MAP_SHARED one is outside GMEM (-EFAULT)', () => {
  const r = gpu_scenario_run('gmem');
  assert.ok(r.readback_ok);
  assert.is(r.stats.migrated_to_vram, 64);
  assert.match(r.lines.join('\n'), new RegExp(`kernel 2 .*status ${-EFAULT}`));
  assert.ok(design_run('v8').bytes_ok);
});

test('--design is parsed for run, refused with --era, and the scenarios are registered', () => {
  assert.is(parse_args(['run', 'gpu', '--design', 'gmem']).design, 'gmem');
  assert.throws(() => parse_args(['run', '--era', 'both', '--design', 'gmem']), (e: unknown) => e instanceof usage_error);
  assert.throws(() => parse_args(['list', '--design', 'gmem']), (e: unknown) => e instanceof usage_error);
  assert.is(scenario_lookup('design-debate')?.name, 'design-debate');
  assert.is(scenario_lookup('bo-remap')?.name, 'bo-remap');
});

test('hmm-sim run: a bad --design, or --design on a scenario without designs, exits 2', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, ['dist/tools/hmm-sim/main.js', ...args], { encoding: 'utf8' });
  assert.is(run('run', 'gpu', '--design', 'nosuch', '--no-trace').status, 2);
  assert.is(run('run', 'cow', '--design', 'gmem', '--no-trace').status, 2);
});

test.run();
