/* tour: the default; fork and COW, THP and swap, then mainline HMM mirroring and migration. */
import { defineScenario } from '../api.js';

export default defineScenario({
  name: 'tour',
  description: 'the default: fork and COW, THP and swap, then mainline HMM mirroring and migration',
  parts: ['cow', 'thp_swap', 'mirror'],
  run() { return []; },
});
