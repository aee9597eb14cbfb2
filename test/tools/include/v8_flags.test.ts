/*
 * test/tools/include/v8_flags.test.ts - every entry point runs with the
 * simulator's JIT setting (tools/include/v8_flags.ts): its first import is
 * the module that sets it, the test runner passes it to every suite, the
 * bench prints it, and HMM_SIM_V8_DEFAULT=1 leaves V8's default.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { V8_FLAGS } from '../../../tools/include/v8_flags.js';

const ENTRIES = ['tools/hmm-sim/main', 'tools/bench/main', 'tools/testing/selftests/main', 'tools/testing/fuzz/main'];

test('the setting is the inlining budget, unless HMM_SIM_V8_DEFAULT=1', () => {
  assert.is(V8_FLAGS, process.env.HMM_SIM_V8_DEFAULT === '1' ? '' : '--max-inlined-bytecode-size-cumulative=4000');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e',
    "import('./dist/tools/include/v8_flags.js').then((m) => console.log(JSON.stringify(m.V8_FLAGS)))"],
  { encoding: 'utf8', env: { ...process.env, HMM_SIM_V8_DEFAULT: '1' } });
  assert.is(r.stdout.trim(), '""', r.stderr);
});

test('each entry point imports it before anything else (source and build)', () => {
  for (const e of ENTRIES) {
    for (const f of [`${e}.ts`, `dist/${e}.js`]) {
      const first = readFileSync(f, 'utf8').split('\n').find((l) => l.startsWith('import '));
      assert.ok(first !== undefined && /include\/v8_flags\.js'/.test(first), `${f}: first import is ${first}`);
    }
  }
});

test('the test runner gives it to every suite, and the bench prints it', () => {
  assert.match(readFileSync('tools/run-suites.mjs', 'utf8'), /spawn\(process\.execPath, \['--enable-source-maps', \.\.\.\(V8_FLAGS \? \[V8_FLAGS\] : \[\]\)/);
  const r = spawnSync(process.execPath, ['dist/tools/bench/main.js', '--bogus'], { encoding: 'utf8' });
  assert.is(r.status, 2);
  const ok = spawnSync(process.execPath, ['--expose-gc', 'dist/tools/bench/main.js', 'nonesuch'], { encoding: 'utf8' });
  assert.match(ok.stdout, /V8 --max-inlined-bytecode-size-cumulative=4000 \(every entry point's JIT setting/);
  const def = spawnSync(process.execPath, ['--expose-gc', 'dist/tools/bench/main.js', 'nonesuch'],
    { encoding: 'utf8', env: { ...process.env, HMM_SIM_V8_DEFAULT: '1' } });
  assert.match(def.stdout, /V8 defaults \(HMM_SIM_V8_DEFAULT=1\)/);
});

test.run();
