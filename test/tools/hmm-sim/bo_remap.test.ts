/*
 * test/tools/hmm-sim/bo_remap.test.ts - `hmm-sim run bo-remap`
 * (tools/hmm-sim/scenarios/bo_remap.ts): the same seeded remap stream
 * through buffer objects and through a mirrored address space; every
 * frame's bytes checked by the kernel's checksum in both; the relations
 * that make the mirror the special case hold.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bo_remap_report } from '../../../tools/hmm-sim/scenarios/bo_remap.js';

test('bo-remap: both ways read the right bytes every frame; BOs need no CPU VMA, no fault, no notifier, and carry device-only attributes', () => {
  const { lines, results } = bo_remap_report();
  const [bo, mirror] = results;
  assert.ok(bo!.checksums_ok && mirror!.checksums_ok);
  assert.is(bo!.remaps, 1280);
  assert.is(mirror!.remaps, 1280);
  assert.equal([bo!.gpu_faults, bo!.invalidations, bo!.vmas], [0, 0, 0]);
  assert.ok(bo!.device_attr_ptes > 0, 'compression / uncached bits in GPU PTEs');
  assert.is(mirror!.device_attr_ptes, 0, 'nothing in hmm_pfns carries them');
  assert.ok(mirror!.gpu_faults > 0, 'every remapped page faults again on the GPU');
  assert.is(mirror!.invalidations, 1280, 'every MAP_FIXED over a mapped page is one notifier invalidation');
  assert.ok(mirror!.vmas >= 64, `the window is many VMAs (${mirror!.vmas})`);
  const frame = (r: typeof bo) => r!.remap_ns / r!.frames + r!.kernel_ns / (r!.frames + 1);
  assert.ok(frame(bo) < frame(mirror), 'a frame costs less through BOs');
  assert.ok(bo!.remaps / (bo!.remap_ns / 1e9) > 1000, 'thousands of remaps per simulated second');
  assert.match(lines.join('\n'), /every frame's checksum as expected\s+true\s+true/);
});

test.run();
