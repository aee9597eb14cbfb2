#!/usr/bin/env node
// Test driver for `npm test`: runs every compiled uvu suite under c8 (each
// suite in its own process, see tools/run-suites.mjs), passing on its
// output as it comes (a line per suite as it finishes), then the coverage
// summary, and closes with the line "N passed, N failed". It fails when no
// test ran (uvu itself exits 0 on "Total: 0") or a suite crashed.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

const bin = (name) => `node_modules/.bin/${name}`;
if (!existsSync('dist/test')) {
  console.log('0 passed, 0 failed');
  console.error('run-tests: dist/test does not exist; did the build run?');
  process.exit(1);
}
const pattern = process.argv[2] ?? '\\.test\\.js$';
const args = ['--reporter=text-summary', '--all', '--src', 'dist', '--exclude', 'dist/test/**',
  '--exclude', 'dist/tools/**', '--exclude-after-remap',
  process.execPath, 'tools/run-suites.mjs', pattern];
const child = spawn(bin('c8'), args, {
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, NODE_OPTIONS: '--enable-source-maps --max-old-space-size=8192' },
});
let text = '';
child.stdout.on('data', (d) => { text += d; process.stdout.write(d); });
child.stderr.on('data', (d) => { text += d; process.stderr.write(d); });
const status = await new Promise((resolve) => {
  child.on('error', (e) => { console.error(`run-tests: cannot run c8: ${e.message}`); resolve(1); });
  child.on('close', (code) => resolve(code ?? 1));
});
/* the last Total/Passed pair is the whole run's (tools/run-suites.mjs) */
const last = (re) => { const all = [...text.matchAll(re)]; return all.length ? Number(all[all.length - 1][1]) : 0; };
const total = last(/Total:\s+(\d+)/g);
const passed = last(/Passed:\s+(\d+)/g);
const failed = total - passed;
let rc = status;
if (total === 0) {
  console.error('run-tests: no test ran');
  rc = 1;
}
if (failed > 0) rc = 1;
console.log(`${passed} passed, ${failed} failed`);
process.exit(rc);
