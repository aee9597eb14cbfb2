/*
 * race_broken_retry: the race_munmap scenario with a driver that skips
 * mmu_interval_read_retry() (the TEST-ONLY knob
 * dmirror_params.broken_skip_read_retry). `hmm-sim explore
 * race_broken_retry` finds the interleaving device -> munmap -> device
 * where the device publishes a page munmap already freed, and prints it
 * step by step; `hmm-sim replay race_broken_retry --schedule S` runs it
 * again (also into --html). Documentation/vm/hmm.txt, Part 8.
 */
import { defineScenario } from '../api.js';
import { race_scenario } from '../explore.js';

export default defineScenario(race_scenario({
  name: 'race_broken_retry',
  description: 'a driver that skips mmu_interval_read_retry(): the explorer finds the stale mapping',
  broken: true,
}));
