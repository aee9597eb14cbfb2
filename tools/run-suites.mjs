#!/usr/bin/env node
// Runs every compiled uvu suite (dist/test/**/*.test.js) in its own Node
// process, two at a time, and prints one line per suite as it finishes
// ("pass  12/12  dist/test/mm/hmm.test.js  3.1 s"; with "(N skipped)" and
// the suite's "SKIP ..." lines when it skipped tests: a skipped test is not
// counted as passed), the full output of a suite only when it failed, and
// one "Total: N / Passed: N" summary for
// the whole run. A process per suite keeps suites independent (module
// state, heap) and bounds memory: each suite boots its own simulated
// machines. Coverage still adds up: c8 sets NODE_V8_COVERAGE, which the
// child processes inherit. HMM_TEST_VERBOSE=1 prints every suite's output.
// Every test ends with the teardown leak check (kmemleak in spirit,
// test/leakcheck/uvu.ts); HMM_SIM_LEAKCHECK=0 runs without it. Suites run
// with the JIT setting of every entry point (tools/include/v8_flags.ts).
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { V8_FLAGS } from '../dist/tools/include/v8_flags.js';

const root = 'dist/test';
const filter = new RegExp(process.argv[2] ?? '\\.test\\.js$');
const verbose = process.env.HMM_TEST_VERBOSE === '1';
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.test.js') && filter.test(p)) files.push(p);
  }
})(root);

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
let total = 0, passed = 0, done = 0;
const crashed = [];
const width = String(files.length).length;
console.log(`running ${files.length} suite${files.length === 1 ? '' : 's'}, two at a time`);

function runOne(file) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    /* every test ends with the teardown leak check (test/leakcheck/uvu.ts); HMM_SIM_LEAKCHECK=0 turns it off */
    const leak = process.env.HMM_SIM_LEAKCHECK === '0' ? [] : ['--import', './dist/test/leakcheck/register.js'];
    const child = spawn(process.execPath, ['--enable-source-maps', ...(V8_FLAGS ? [V8_FLAGS] : []), ...leak, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('close', (code) => {
      const text = strip(out);
      const t = Number(text.match(/Total:\s+(\d+)/)?.[1] ?? 0);
      const p = Number(text.match(/Passed:\s+(\d+)/)?.[1] ?? 0);
      const skipped = Number(text.match(/Skipped:\s+(\d+)/)?.[1] ?? 0);
      total += t;
      passed += p;
      const bad = t === 0 || (code !== 0 && p === t);
      if (bad) crashed.push(`${file} (exit ${code})`);
      const ok = !bad && p === t && code === 0;
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      done++;
      console.log(`[${String(done).padStart(width)}/${files.length}] ${ok ? 'pass' : 'FAIL'}  ${`${p}/${t}`.padStart(7)}` +
        `${skipped ? ` (${skipped} skipped)` : ''}  ${file}  ${secs} s${bad ? `  (exit ${code}, ${t === 0 ? 'no test ran' : 'crashed'})` : ''}`);
      if (!ok || verbose) process.stdout.write(`\n### ${file}\n${out}\n`);
      else if (skipped > 0) for (const l of text.split('\n').filter((x) => /^SKIP\b/.test(x))) console.log(`        ${l}`);
      resolve();
    });
  });
}

const queue = files.slice();
async function worker() { while (queue.length > 0) await runOne(queue.shift()); }
await Promise.all([worker(), worker()]);
if (crashed.length > 0) {
  console.log(`\nsuites that ran no test or crashed: ${crashed.join(', ')}`);
  total += crashed.length;            // count each as a failed test
}
console.log(`\n  Total:     ${total}\n  Passed:    ${passed}\n`);
process.exitCode = total > 0 && passed === total ? 0 : 1;
