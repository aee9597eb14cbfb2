#!/usr/bin/env node
// Test driver for `npm test`: runs every compiled uvu suite under c8 (each
// suite in its own process, see tools/run-suites.mjs), prints the coverage
// summary, and closes with the line "N passed, N failed". It fails when no
// test ran (uvu itself exits 0 on "Total: 0") or a suite crashed.
import { spawnSync } from 'node:child_process';
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
const res = spawnSync(bin('c8'), args, {
  encoding: 'utf8', maxBuffer: 256 * 1024 * 1024,
  env: { ...process.env, NODE_OPTIONS: '--enable-source-maps --max-old-space-size=8192' },
});
process.stdout.write(res.stdout ?? '');
process.stderr.write(res.stderr ?? '');
const text = (res.stdout ?? '') + (res.stderr ?? '');
const num = (re) => { const m = text.match(re); return m ? Number(m[1]) : 0; };
/* the last Total/Passed pair is the whole run's (tools/run-suites.mjs) */
const last = (re) => { const all = [...text.matchAll(re)]; return all.length ? Number(all[all.length - 1][1]) : 0; };
const total = last(/Total:\s+(\d+)/g);
const passed = last(/Passed:\s+(\d+)/g);
const failed = total - passed;
let rc = res.status ?? 1;
if (total === 0) {
  console.error('run-tests: no test ran');
  rc = 1;
}
if (failed > 0) rc = 1;
console.log(`${passed} passed, ${failed} failed`);
process.exit(rc);
