/*
 * test/tools/bench/deopt.test.ts - the deopt check (tools/bench/deopt.ts):
 * bailouts counted per function (SharedFunctionInfo, so two getters both
 * named `get` stay two functions) and per round; the loop verdict counts
 * only the rounds after the first. And `bench deopt` run small
 * (DEOPT_PAGES=2048, 3 rounds): every round is marked and reported.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { countBailouts, sumBailouts, worstBailouts, ROUND_MARK } from '../../../tools/bench/deopt.js';

const bail = (fn: string, sfi: string, reason = 'wrong map') =>
  `[bailout (kind: deopt-eager, reason: ${reason}): begin. deoptimizing 0x1 <JSFunction ${fn} (sfi = ${sfi})>, 0x2 <Code TURBOFAN>, opt id 7, bytecode offset 21]`;

test('bailouts are counted per function and round; same-named functions stay apart', () => {
  const trace = [
    bail('boot_fn', '0xaa'),
    `${ROUND_MARK}1`,
    ...Array.from({ length: 10 }, () => bail('free_pages_and_swap_cache', '0xf0', 'Insufficient type feedback for compare operation')),
    bail('get', '0x10'), bail('get', '0x20'), bail('get', '0x30'), bail('get', '0x40'),
    `${ROUND_MARK}2`,
    bail('get', '0x10'),
    'unrelated output line',
    `${ROUND_MARK}3`,
    bail('zap_pte_range', '0x50'), bail('zap_pte_range', '0x50'), bail('zap_pte_range', '0x50'), bail('zap_pte_range', '0x50'),
  ].join('\n');
  const rounds = countBailouts(trace);
  assert.is(rounds.length, 4);
  assert.equal([...rounds[0].entries()], [['boot_fn@0xaa', 1]]);
  assert.is(rounds[1].get('free_pages_and_swap_cache@0xf0'), 10);
  assert.is(rounds[1].get('get@0x10'), 1);
  assert.is(rounds[1].size, 5, 'four getters named get are four functions');
  const later = sumBailouts(rounds.slice(2));
  assert.equal(worstBailouts(later, 2), [['zap_pte_range', 4], ['get', 1]]);
  /* over all rounds the getters need their sfi to be told apart */
  const all = worstBailouts(sumBailouts(rounds), 3);
  assert.equal(all[0], ['free_pages_and_swap_cache', 10]);
  assert.equal(all[1], ['zap_pte_range', 4]);
  assert.equal(all[2], ['get(0x10)', 2]);
});

test('bench deopt runs every round under --trace-deopt and judges only the rounds after the first', () => {
  const r = spawnSync(process.execPath, ['--expose-gc', 'dist/tools/bench/main.js', 'deopt'],
    { encoding: 'utf8', env: { ...process.env, DEOPT_PAGES: '2048', DEOPT_ROUNDS: '3' }, timeout: 300e3 });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /deopt: 3 rounds of 2048 pages \(12288 faults\) under --trace-deopt: \d+ bailouts in \d+ functions/);
  const per = r.stdout.match(/per round \(boot, then 1-3\): (\d+), (\d+), (\d+), (\d+)/);
  assert.ok(per !== null, r.stdout);
  const verdict = r.stdout.match(/no deopt loop \(at most 3 bailouts per function after round 1\): (met|MISSED)/);
  assert.ok(verdict !== null, r.stdout);
  const later = r.stdout.match(/most, rounds 2-3: (.*)/)![1];
  const worst = later === 'none' ? 0 : Number(later.split(', ')[0].split(' ').pop());
  assert.is(verdict![1], worst <= 3 ? 'met' : 'MISSED', later);
});

test.run();
