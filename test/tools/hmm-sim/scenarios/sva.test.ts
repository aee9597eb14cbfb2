/*
 * test/tools/hmm-sim/scenarios/sva.test.ts - `hmm-sim run sva`
 * (tools/hmm-sim/scenarios/sva.ts): the workload of the gpu scenario on
 * the CPU page table through the IOMMU, with its outcome checked.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sva_scenario_run } from '../../../../tools/hmm-sim/scenarios/sva.js';
import { scenario_lookup } from '../../../../tools/hmm-sim/registry.js';
import { EOPNOTSUPP } from '../../../../include/uapi/asm-generic/errno.js';

test('the sva scenario is registered; bytes change in place, no migration, the ATC follows a COW at once', () => {
  assert.is(scenario_lookup('sva')?.name, 'sva');
  const r = sva_scenario_run();
  assert.ok(r.readback_ok);
  assert.ok(r.cow_seen, 'the device read the new COW page right after the CPU write');
  assert.equal([r.stats.migrated_to_vram, r.stats.vram_pages_used, r.stats.pt_updates], [0, 0, 0]);
  assert.is(r.page_requests, 8, 'only the untouched buffer needed page requests');
  assert.ok(r.atc_inv_under_ptl >= 1 && r.atc_inv_under_ptl <= r.atc_invalidations);
  assert.is(r.atc_inv_atomic, r.atc_invalidations, 'every ATC invalidation ran in atomic context');
  assert.ok(r.dirty_after_device_write);
  assert.is(r.migrate_ret, -EOPNOTSUPP);
  assert.not.match(r.lines.join('\n'), /false/);
});

test.run();
