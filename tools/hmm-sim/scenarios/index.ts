/*
 * tools/hmm-sim/scenarios/index.ts - every built-in scenario, one line
 * each (`hmm-sim list` prints them by name). To add one: write
 * scenarios/NAME.ts (export default defineScenario({...})) and add its
 * line here.
 */
export { default as tour } from './tour.js';
export { default as cow } from './cow.js';
export { default as thp_swap } from './thp_swap.js';
export { default as mirror } from './mirror.js';
export { default as race_munmap } from './race_munmap.js';
export { default as race_broken_retry } from './race_broken_retry.js';
export { default as exclusive } from './exclusive.js';
export { default as coherent } from './coherent.js';
export { default as fork_device } from './fork_device.js';
export { default as memcg_oom } from './memcg_oom.js';
export { default as longterm_pin } from './longterm_pin.js';
export { default as thp_migrate } from './thp_migrate.js';
export { default as notifier_retry } from './notifier_retry.js';
export { odp_scenario as odp } from './odp.js';
export { gpu_scenario as gpu } from './gpu.js';
export { sva_scenario as sva } from './sva.js';
export { notifiers_2008_scenario as notifiers_2008 } from './notifiers_2008.js';
export { thrash_scenario as thrash } from './thrash.js';
export { read_mostly_scenario as read_mostly } from './read_mostly.js';
export { prefetch_scenario as prefetch } from './prefetch.js';
export { design_debate_scenario as design_debate } from './design_debate.js';
export { bo_remap_scenario as bo_remap } from './bo_remap.js';
export { default as oversubscribe } from './oversubscribe.js';
export { default as free_trap } from './free_trap.js';
