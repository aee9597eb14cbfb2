/*
 * tools/include/v8_flags.ts - the JIT setting every entry point of the
 * simulator runs with. Import it first (before any module whose code can
 * get hot): it sets V8's flag when the module is evaluated.
 *
 * V8 inlines at most 920 bytes of bytecode into one optimized function
 * (--max-inlined-bytecode-size-cumulative). The kernel code here is, by
 * design, long chains of small functions with Linux's names
 * (migrate_pfn_to_page -> pfn_swap_entry_to_page -> __pfn_to_section ...,
 * page->flags through an accessor); on the migration paths that budget
 * runs out a few calls deep and the rest stay real calls. With 4000 the
 * 4 KiB migration round trip of `bench hmm` takes 7-12% less CPU (session
 * 7, alternating processes, 64 MiB, /tmp/s7/prof2.mjs: 43.3-43.5 ms ->
 * 38.3-41.2 ms); the model, its steps and every result are unchanged.
 * Code that imports the kernel modules from its own script runs with V8's
 * default unless it imports this module (or passes the flag to node)
 * first. HMM_SIM_V8_DEFAULT=1 in the environment leaves V8's default (to
 * measure the difference: `npm run bench` prints which). Browsers: not
 * applicable (no node:v8); the browser bundle does not import this file.
 */
import { setFlagsFromString } from 'node:v8';

/** V8_FLAGS - what this module gives V8 (printed by `npm run bench`); '' under HMM_SIM_V8_DEFAULT=1. */
export const V8_FLAGS = process.env.HMM_SIM_V8_DEFAULT === '1' ? '' : '--max-inlined-bytecode-size-cumulative=4000';

if (V8_FLAGS !== '') setFlagsFromString(V8_FLAGS);
