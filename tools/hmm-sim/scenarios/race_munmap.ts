/*
 * race_munmap: a device READ of a page (hmm_range_fault inside the
 * interval notifier's read section, dmirror_fault) against munmap() of
 * that page, under every interleaving `hmm-sim explore` tries. The
 * invariant (tools/testing/races/mainline.ts): after
 * invalidate_range_end() no device maps a page the CPU no longer maps,
 * and no page is freed while a device maps it. With the real driver
 * every interleaving holds: mmu_interval_read_retry() sends the device
 * back when munmap's invalidation ran in between.
 * Documentation/vm/hmm.txt, Part 8.
 */
import { defineScenario } from '../api.js';
import { race_scenario } from '../explore.js';

export default defineScenario(race_scenario({
  name: 'race_munmap',
  description: 'device READ vs munmap, every interleaving: the retry keeps the mirror coherent',
  broken: false,
}));
