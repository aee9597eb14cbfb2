/*
 * test/tools/hmm-sim/scenarios/notifiers_2008.test.ts - `hmm-sim run
 * notifiers-2008`: the explore check of Arcangeli's 2008 point. With the
 * range pair both users are correct in every interleaving; without it the
 * pinless GRU-like user reads a freed frame, the pinning KVM-like user
 * stays correct.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { notifiers2008Explore } from '../../../../tools/hmm-sim/scenarios/notifiers_2008.js';
import { scenario_lookup } from '../../../../tools/hmm-sim/registry.js';
import { kmemleak_exempt } from '../../../leakcheck/uvu.js';

test('with the range pair, KVM-like and GRU-like users are correct in every interleaving (2 preemptions)', () => {
  for (const user of ['kvm', 'gru'] as const) {
    const x = notifiers2008Explore(user, true);
    assert.is(x.error, null, `${user}: ${x.error}`);
    assert.ok(x.result.complete, `${user}: the exploration finished`);
    assert.ok(x.result.runs > 1);
    assert.is(x.stale_pinned_loads, 0, `${user}: no load ever used an unmapped frame`);
  }
});

test('without the pair the GRU-like user reads a freed frame; the explorer catches it', () => {
  kmemleak_exempt('a deliberately broken variant leaves its machine mid-race (mmap_lock held by an exited thread)');
  const x = notifiers2008Explore('gru', false);
  assert.ok(x.result.failure !== null);
  assert.match(x.error!, /gru read frame \d+ \(free, value 0x1111\) that the CPU no longer maps/);
});

test('without the pair the KVM-like user stays correct: it does use unmapped frames, but they are its pinned pages', () => {
  const x = notifiers2008Explore('kvm', false);
  assert.is(x.error, null, String(x.error));
  assert.ok(x.result.complete);
  assert.ok(x.stale_pinned_loads > 0, 'the window exists: some load used a frame the CPU had already dropped');
});

test('the scenario is registered under its name', () => {
  assert.is(scenario_lookup('notifiers-2008')?.name, 'notifiers-2008');
});

test.run();
