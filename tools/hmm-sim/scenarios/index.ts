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
