/*
 * test/tools/hmm-sim/scenarios/odp.test.ts - the ODP scenario of hmm-sim:
 * the three designs agree on the bytes, and each pitfall reproduces with
 * the outcome its explanation states.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  odp_designs_side_by_side, odp_pitfall_rnr, odp_pitfall_readonly, odp_pitfall_fork, odp_pitfall_munmap,
  odp_pitfall_large_read, odp_scenario, odp_era_report,
} from '../../../../tools/hmm-sim/scenarios/odp.js';
import { scenario_lookup } from '../../../../tools/hmm-sim/registry.js';

test('the odp scenario is registered with hmm-sim', () => {
  assert.is(scenario_lookup('odp'), odp_scenario);
});

test('the same WRITE, DONTNEED, WRITE moves the same bytes under the 2014, HMM v8 and mainline designs', () => {
  const { rows } = odp_designs_side_by_side();
  for (const d of ['2014', 'hmm_v8', 'mainline'] as const) {
    assert.ok(rows[d].ok, d);
    assert.is(rows[d].invalidations, 1024, `${d}: DONTNEED of 4 MiB zaps 1024 NIC pages`);
    assert.is(rows[d].faults, 2048, `${d}: two first touches of 1024 pages`);
  }
  assert.ok(rows['2014'].ns > rows.mainline.ns, 'per-page GUP walks cost more than hmm_range_fault\'s per-PMD walk');
});

test('RNR: the default timer (code 0) costs 655 ms per receive fault, code 1 tens of microseconds', () => {
  const f = odp_pitfall_rnr().figures;
  assert.equal([f.code0_ok, f.code1_ok], [1, 1]);
  assert.ok((f.code0_ns as number) > 655e6 && (f.code0_ns as number) < 656e6);
  assert.ok((f.code1_ns as number) < 100e3);
});

test('read-only memory: a writable ODP MR fails an RDMA READ, a REMOTE_READ-only one works, a pinned one fails at registration', () => {
  assert.equal(odp_pitfall_readonly().figures, { pinned_errno: 'EFAULT', odp_writable: 'IBV_WC_REM_ACCESS_ERR', odp_readonly: 'IBV_WC_SUCCESS' });
});

test('fork after registration: pinned (5.9+) and ODP keep the parent on the NIC\'s page; the pre-5.9 rule leaves it to the child', () => {
  const f = odp_pitfall_fork().figures;
  assert.equal([f.pinned_ok, f.pinned_parent_sees, f.pinned_child_sees], [true, true, false]);
  assert.equal([f.pinned_pre59_ok, f.pinned_pre59_parent_sees, f.pinned_pre59_child_sees], [true, false, true]);
  assert.equal([f.odp_ok, f.odp_parent_sees, f.odp_child_sees], [true, true, false]);
  assert.ok((f.odp_invalidations as number) >= 1);
});

test('munmap under a live MR: pinned writes into a page nobody maps; ODP errors while unmapped and lands in the new mapping', () => {
  assert.equal(odp_pitfall_munmap().figures, {
    pinned_unmapped: 'skipped', pinned_remapped: 'IBV_WC_SUCCESS', pinned_process_sees: false,
    odp_unmapped: 'IBV_WC_REM_ACCESS_ERR', odp_remapped: 'IBV_WC_SUCCESS', odp_process_sees: true,
  });
});

test('a 16 MiB READ from a cold ODP MR pays one transport timeout per 4 MiB; advise_mr first pays none', () => {
  const f = odp_pitfall_large_read().figures;
  assert.equal([f.cold_status, f.advised_status, f.cold_bytes_ok, f.advised_bytes_ok], ['IBV_WC_SUCCESS', 'IBV_WC_SUCCESS', 'true', 'true']);
  assert.is(f.cold_retransmits, 4);
  assert.is(f.advised_retransmits, 0);
  assert.ok((f.cold_ns as number) > 4 * 67e6 && (f.advised_ns as number) < 10e6);
});

test('hmm-sim --era both odp prints the 2014 baseline, HMM v8 and mainline, all with the right bytes', () => {
  const out = odp_era_report(['v8', 'mainline']);
  assert.match(out[1], /2014\s+hmm_v8\s+mainline/);
  assert.equal(out.slice(-3), ['  2014: ok', '  hmm_v8: ok', '  mainline: ok']);
  assert.match(out.find((l) => l.includes('pages invalidated'))!, /1024\s+1024\s+1024/);
});

test.run();
