/*
 * test/include/asm-generic/bug.test.ts - the one BUG/WARN: BUG throws a
 * KernelBugError, WARN records and returns its condition, WARN_ON_ONCE
 * records once per call site, and a new machine starts with no warning.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BUG, BUG_ON, KernelBugError, VM_BUG_ON_FOLIO, VM_WARN_ON, WARN, WARN_ON, WARN_ON_ONCE, resetWarnings, warnings,
} from '../../../include/asm-generic/bug.js';
import { start_kernel } from '../../../mm/init.js';

test.before.each(() => resetWarnings());

test('BUG and BUG_ON throw a KernelBugError with the message; BUG_ON(false) does nothing', () => {
  assert.throws(() => BUG('mapcount underflow pfn 7'), (e: Error) => e instanceof KernelBugError && e.message === 'BUG: mapcount underflow pfn 7');
  BUG_ON(false, 'never');
  assert.throws(() => BUG_ON(true, 'refcount 0'), (e: Error) => e instanceof KernelBugError && /refcount 0/.test(e.message));
  assert.throws(() => VM_BUG_ON_FOLIO(true, { pfn: 42 }), /folio pfn 42/);
  assert.equal(warnings(), [], 'a BUG is not a warning');
});

test('WARN and WARN_ON record only when the condition holds and return it', () => {
  assert.is(WARN(false, 'no'), false);
  assert.is(WARN_ON(true, 'first'), true);
  assert.is(WARN(true, 'second 0x10'), true);
  VM_WARN_ON(true, 'third');
  VM_WARN_ON(false, 'not recorded');
  assert.equal(warnings(), ['WARNING: first', 'WARNING: second 0x10', 'WARNING: third']);
});

test('WARN_ON_ONCE records the first hit of each call site, but returns the condition every time', () => {
  const site_a = (c: boolean) => WARN_ON_ONCE(c, 'site a');
  const site_b = (c: boolean) => WARN_ON_ONCE(c, 'site b');
  assert.is(site_a(false), false);
  assert.is(site_a(true), true);
  assert.is(site_a(true), true);
  assert.is(site_b(true), true);
  assert.equal(warnings(), ['WARNING: site a', 'WARNING: site b']);
  resetWarnings();
  assert.is(site_a(true), true);
  assert.equal(warnings(), ['WARNING: site a'], 'after a reset the site fires again');
});

test('start_kernel() boots a machine with no warning recorded', () => {
  WARN_ON(true, 'left over from the last machine');
  start_kernel();
  assert.equal(warnings(), []);
});

test.run();
