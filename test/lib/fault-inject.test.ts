/*
 * test/lib/fault-inject.test.ts - should_fail() (lib/fault-inject.ts) and
 * the sweep of every failure site over dmirror workloads.
 *
 * The sweep: for each site, run a workload with the site failing at its
 * 1st hit, then a fresh machine failing at the 2nd, ... until a run ends
 * without the injection firing (the workload has fewer hits than the
 * index). After each run: every call returned 0 or the errno Linux
 * returns there, no BUG and no WARN, every byte of user data is what the
 * successful operations wrote, and the teardown leak check
 * (mm/kmemleak.ts) finds nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { start_kernel } from '../../mm/init.js';
import { alloc_pages, __free_pages } from '../../mm/page_alloc.js';
import type { page } from '../../include/linux/mm_types.js';
import { GFP_KERNEL, GFP_NOWAIT, GFP_HIGHUSER_MOVABLE, __GFP_NOFAIL } from '../../include/linux/gfp.js';
import { FAULT_ATTR_INITIALIZER } from '../../include/linux/fault-inject.js';
import {
  should_fail, setup_fault_attr, fault_inject_boot_param, fault_inject_seed, fault_attr_lookup, fault_inject_log,
  fail_page_alloc, fail_hmm_retry,
} from '../../lib/fault-inject.js';
import { warnings } from '../../include/asm-generic/bug.js';
import { HMM_DMIRROR_READ } from '../../include/uapi/linux/test_hmm.js';
import { get_counter } from '../../lib/sim/trace.js';
import { hmm_dmirror_init } from '../../lib/test_hmm.js';
import { Process } from '../../tools/include/nolibc/nolibc.js';
import { dmirror_open, dmirror_cmd, machine_teardown, RW, ANON } from '../helpers.js';
import { sweep_site, workloads } from './fault-inject-sweep.js';

test('should_fail: probability 0 never fails, and every call is counted as a hit', () => {
  const a = FAULT_ATTR_INITIALIZER('t');
  for (let i = 0; i < 10; i++) assert.is(should_fail(a, 1), false);
  assert.is(a.hits, 10);
  assert.is(a.failures, 0);
});

test('should_fail: interval N, probability 100, times 1 fails exactly the N-th call', () => {
  const a = FAULT_ATTR_INITIALIZER('t');
  assert.is(setup_fault_attr(a, '3,100,0,1'), 1);
  const got = Array.from({ length: 9 }, () => should_fail(a, 1));
  assert.equal(got, [false, false, true, false, false, false, false, false, false]);
  assert.is(a.failures, 1);
  assert.is(a.times, 0);
});

test('should_fail: times -1 has no limit; space lets that much through first', () => {
  const a = FAULT_ATTR_INITIALIZER('t');
  setup_fault_attr(a, '1,100,8192,-1');
  assert.is(should_fail(a, 4096), false);        /* space 8192 -> 4096 */
  assert.is(should_fail(a, 4096), true);         /* space 4096 is not > 4096: fail */
  assert.is(should_fail(a, 4096), true);
  assert.is(a.times, -1);
  assert.is(a.failures, 2);
});

test('should_fail: probability 50 is decided by the seeded generator and replays', () => {
  const draw = () => {
    start_kernel({ ram_bytes: 4 << 20 });
    fault_inject_seed(42);
    start_kernel({ ram_bytes: 4 << 20 });
    const a = FAULT_ATTR_INITIALIZER('t');
    setup_fault_attr(a, '1,50,0,-1');
    return Array.from({ length: 64 }, () => should_fail(a, 1));
  };
  const one = draw(), two = draw();
  assert.equal(one, two);
  const n = one.filter(Boolean).length;
  assert.ok(n > 16 && n < 48, `about half fail: ${n}`);
  fault_inject_seed(1);
});

test('setup_fault_attr: Linux\'s "interval,probability,space,times" form; bad strings and probability > 100 are refused', () => {
  const a = FAULT_ATTR_INITIALIZER('t');
  assert.is(setup_fault_attr(a, '10,100,0,-1'), 1);
  assert.equal([a.interval, a.probability, a.space, a.times], [10, 100, 0, -1]);
  assert.is(setup_fault_attr(a, '1,101,0,1'), 0);
  assert.is(setup_fault_attr(a, '1,100,0'), 0);
  assert.is(setup_fault_attr(a, 'x,1,2,3'), 0);
  assert.equal([a.interval, a.probability, a.space, a.times], [10, 100, 0, -1], 'unchanged');
});

test('a boot parameter configures its site at every boot; boot resets what a test set', () => {
  assert.is(fault_inject_boot_param('nosuch', '1,100,0,1'), -2);
  assert.is(fault_inject_boot_param('page_alloc', '1,200,0,1'), -22);
  assert.is(fault_inject_boot_param('page_alloc', '2,100,0,1'), 0);
  start_kernel({ ram_bytes: 4 << 20 });
  assert.equal([fail_page_alloc.attr.interval, fail_page_alloc.attr.probability], [2, 100]);
  fail_hmm_retry.probability = 100;
  fault_inject_boot_param('fail_page_alloc', '');
  start_kernel({ ram_bytes: 4 << 20 });
  assert.is(fail_page_alloc.attr.probability, 0);
  assert.is(fail_hmm_retry.probability, 0);
  assert.is(fault_attr_lookup('hmm_retry'), fail_hmm_retry);
});

test('fail_page_alloc: never a __GFP_NOFAIL allocation; by default not a user page, one that may reclaim, nor order 0', () => {
  start_kernel({ ram_bytes: 4 << 20 });
  setup_fault_attr(fail_page_alloc.attr, '1,100,0,-1');
  const got: [page | null, number][] = [];
  const alloc = (gfp: number, order: number) => { const p = alloc_pages(gfp, order); got.push([p, order]); return p; };
  assert.ok(alloc(GFP_HIGHUSER_MOVABLE, 1) !== null, 'ignore-gfp-highmem');
  assert.ok(alloc(GFP_KERNEL, 1) !== null, 'ignore-gfp-wait: it may reclaim');
  assert.ok(alloc(GFP_NOWAIT, 0) !== null, 'min-order 1');
  assert.is(alloc(GFP_NOWAIT, 1), null);
  fail_page_alloc.min_order = 0;
  fail_page_alloc.ignore_gfp_highmem = false;
  fail_page_alloc.ignore_gfp_reclaim = false;
  assert.is(alloc(GFP_HIGHUSER_MOVABLE, 0), null);
  assert.ok(alloc(GFP_HIGHUSER_MOVABLE | __GFP_NOFAIL, 0) !== null);
  assert.is(fail_page_alloc.attr.failures, 2);
  assert.match(fault_inject_log()[0], /FAULT_INJECTION: forcing a failure\. name fail_page_alloc/);
  for (const [p, order] of got) if (p !== null) __free_pages(p, order);
});

test('an -EBUSY storm: 2000 forced retries send dmirror READ round 2000 more times, then it reads the right bytes', () => {
  start_kernel({ ram_bytes: 8 << 20 });
  hmm_dmirror_init();
  const p = Process.spawn('storm');
  const r = dmirror_open(p, 0, 4);
  const buf = p.mmap(0, 4 * 4096, RW, ANON);
  p.fill32(buf, 4 * 4096, 7);
  p.write(r.mirror, new Uint8Array(4 * 4096));
  setup_fault_attr(fail_hmm_retry, '1,100,0,2000');
  fail_hmm_retry.verbose = 0;
  assert.is(dmirror_cmd(r, HMM_DMIRROR_READ, buf, 4).ret, 0);
  assert.is(fail_hmm_retry.failures, 2000);
  assert.is(get_counter('dmirror_fault_retry'), 2000, 'one more round per forced retry');
  assert.is(p.check32(r.mirror, 4 * 4096, 7), -1, 'the device read the CPU\'s bytes');
  assert.equal(warnings(), []);
  assert.equal(machine_teardown(), []);
});

for (const w of workloads) {
  for (const site of w.sites) {
    test(`sweep: ${w.name}, ${site} failing at every hit in turn: Linux's errno, bytes intact, no WARN, no leak`, () => {
      const r = sweep_site(site, w);
      assert.ok(r.fired >= 1, `${site} never fired (${r.hits} hits)`);
      assert.is(r.runs, r.fired + 1, 'the last run is the first without a failure');
      assert.is(r.hits, r.fired, 'the clean run has one hit fewer than its index');
    });
  }
}

test.run();
