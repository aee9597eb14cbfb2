#!/usr/bin/env node
// Runs every compiled uvu suite (dist/test/**/*.test.js) in its own Node
// process, two at a time, and prints each suite's output followed by one
// "Total: N / Passed: N" summary for the whole run. A process per suite
// keeps suites independent (module state, heap) and bounds memory: each
// suite boots its own simulated machines. Coverage still adds up: c8 sets
// NODE_V8_COVERAGE, which the child processes inherit.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = 'dist/test';
const filter = new RegExp(process.argv[2] ?? '\\.test\\.js$');
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.test.js') && filter.test(p)) files.push(p);
  }
})(root);

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
let total = 0, passed = 0, crashed = [];

function runOne(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('close', (code) => {
      const text = strip(out);
      const t = Number(text.match(/Total:\s+(\d+)/)?.[1] ?? 0);
      const p = Number(text.match(/Passed:\s+(\d+)/)?.[1] ?? 0);
      total += t;
      passed += p;
      if (t === 0 || (code !== 0 && p === t)) crashed.push(`${file} (exit ${code})`);
      process.stdout.write(`\n### ${file}\n${out}`);
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
