/*
 * drivers/gpu/mockgpu/uvm_perf_module.ts - the switches and constants of
 * the mock GPU's memory policies: the tree prefetcher
 * (uvm_perf_prefetch.ts), thrashing detection and mitigation
 * (uvm_perf_thrashing.ts), access counters (uvm_gpu_access_counters.ts)
 * and read duplication (uvm_hmm_read_dup.ts).
 *
 * Each is a module parameter spelt as NVIDIA UVM spells it
 * (kernel-open/nvidia-uvm/, module_param in the file named in the table);
 * tests and tools set them before a run and reset them with
 * uvmPerfParamsReset(). Time-valued thrashing parameters are, as in
 * UVM, multiples of the lapse.
 *
 * uvm_perf_constants is the one table of every constant with its default
 * and its source; Documentation/vm/hmm.txt ("GPU memory policies") prints
 * it, and `hmm-sim run prefetch` shows the values in force.
 */

/**
 * Module parameters of the policies.
 *  uvm_perf_prefetch_enable: the tree prefetcher on (1) or off (0)
 *  uvm_perf_prefetch_threshold: % of a subtree that must be resident or
 *      faulted before the rest of it is prefetched (1..100)
 *  uvm_perf_prefetch_min_faults: faults in a block before it prefetches
 *  uvm_perf_thrashing_enable: detection and mitigation on (1) or off (0)
 *  uvm_perf_thrashing_threshold: events within the lapse that make a page thrash
 *  uvm_perf_thrashing_pin_threshold: throttles of a page before it is pinned
 *  uvm_perf_thrashing_lapse_usec: the window two events must fall within
 *  uvm_perf_thrashing_nap: throttle time, in lapses
 *  uvm_perf_thrashing_epoch: quiet time after which a page's history is
 *      forgotten, in lapses
 *  uvm_perf_thrashing_pin: pin lifetime, in lapses
 *  uvm_perf_access_counter_migration_enable: -1 the driver's default (on
 *      only with ATS, which this model has not: off), 0 off, 1 on
 *  uvm_perf_access_counter_threshold: remote accesses to a region before
 *      the GPU notifies
 *  access_counter_granularity: bytes per counted region (a hardware
 *      setting in UVM, UVM_ACCESS_COUNTER_GRANULARITY_2M; not a module
 *      parameter there)
 *  read_duplication_enable: TEST/BENCH switch of this model (UVM has no
 *      such parameter): 0 makes read-mostly ranges behave as ordinary ones
 */
export const uvm_perf_params = {
  uvm_perf_prefetch_enable: 1,
  uvm_perf_prefetch_threshold: 51,
  uvm_perf_prefetch_min_faults: 1,
  uvm_perf_thrashing_enable: 1,
  uvm_perf_thrashing_threshold: 3,
  uvm_perf_thrashing_pin_threshold: 10,
  uvm_perf_thrashing_lapse_usec: 500,
  uvm_perf_thrashing_nap: 1,
  uvm_perf_thrashing_epoch: 2000,
  uvm_perf_thrashing_pin: 300,
  uvm_perf_access_counter_migration_enable: -1,
  uvm_perf_access_counter_threshold: 256,
  access_counter_granularity: 2 * 1024 * 1024,
  read_duplication_enable: 1,
};
const DEFAULTS = Object.freeze({ ...uvm_perf_params });

/** uvmPerfParamsReset() - every policy parameter back to its default. */
export function uvmPerfParamsReset(): void {
  Object.assign(uvm_perf_params, DEFAULTS);
}

/** uvmPerfAccessCounterMigrationOn() - does a notification migrate? (-1: no ATS here, so off) */
export function uvmPerfAccessCounterMigrationOn(): boolean {
  return uvm_perf_params.uvm_perf_access_counter_migration_enable > 0;
}

const NSEC_PER_USEC = 1000;

/** uvmPerfThrashingLapseNs() - the lapse in simulated ns. */
export function uvmPerfThrashingLapseNs(): number {
  return uvm_perf_params.uvm_perf_thrashing_lapse_usec * NSEC_PER_USEC;
}

/** One row of the constants table. */
export interface uvm_perf_constant {
  name: string;           /* the module parameter or constant, as UVM spells it */
  value: string;          /* the default, with its unit */
  source: string;         /* the file of kernel-open/nvidia-uvm/ it comes from */
  modelled: string;       /* where and how this model uses it */
}

/** Every constant of the policies, with its source. */
export const uvm_perf_constants: readonly uvm_perf_constant[] = Object.freeze([
  { name: 'UVM_VA_BLOCK_SIZE', value: '2 MiB', source: 'uvm_va_block_types.h', modelled: 'the prefetch tree spans one block (512 leaves)' },
  { name: 'UVM_PAGE_SIZE_64K (big page)', value: '64 KiB', source: 'uvm_perf_prefetch.c', modelled: 'each fault first grows to its big page' },
  { name: 'uvm_perf_prefetch_enable', value: '1', source: 'uvm_perf_prefetch.c', modelled: 'switch' },
  { name: 'uvm_perf_prefetch_threshold', value: '51 %', source: 'uvm_perf_prefetch.c', modelled: 'subtree occupancy that triggers prefetch' },
  { name: 'uvm_perf_prefetch_min_faults', value: '1', source: 'uvm_perf_prefetch.c', modelled: 'faults per block service before prefetching' },
  { name: 'uvm_perf_thrashing_enable', value: '1', source: 'uvm_perf_thrashing.c', modelled: 'switch (detection and mitigation)' },
  { name: 'uvm_perf_thrashing_threshold', value: '3 events', source: 'uvm_perf_thrashing.c', modelled: 'events within the lapse => thrashing' },
  { name: 'uvm_perf_thrashing_pin_threshold', value: '10 throttles', source: 'uvm_perf_thrashing.c', modelled: 'THROTTLE turns into PIN' },
  { name: 'uvm_perf_thrashing_lapse_usec', value: '500 us', source: 'uvm_perf_thrashing.c', modelled: 'window between two events' },
  { name: 'uvm_perf_thrashing_nap', value: '1 lapse = 500 us', source: 'uvm_perf_thrashing.c', modelled: 'a throttled processor stays off the page' },
  { name: 'uvm_perf_thrashing_epoch', value: '2000 lapses = 1 s', source: 'uvm_perf_thrashing.c', modelled: 'quiet time that clears a page\'s history' },
  { name: 'uvm_perf_thrashing_pin', value: '300 lapses = 150 ms', source: 'uvm_perf_thrashing.c', modelled: 'pin lifetime' },
  { name: 'uvm_perf_thrashing_max_resets', value: '4', source: 'uvm_perf_thrashing.c', modelled: 'not modelled (per-block reset budget)' },
  { name: 'uvm_perf_access_counter_migration_enable', value: '-1 (on only with ATS)', source: 'uvm_gpu_access_counters.c', modelled: 'switch; -1 = off here (no ATS)' },
  { name: 'uvm_perf_access_counter_threshold', value: '256 accesses', source: 'uvm_gpu_access_counters.c', modelled: 'remote accesses per region before a notification' },
  { name: 'access counter granularity', value: '2 MiB', source: 'uvm_gpu_access_counters.c', modelled: 'bytes per counted region' },
  { name: 'uvm_perf_access_counter_batch_count', value: '256', source: 'uvm_gpu_access_counters.c', modelled: 'not modelled (each notification serviced on its own)' },
]);

/** uvmPerfConstantsTable() - the table as text lines (docs, scenarios). */
export function uvmPerfConstantsTable(): string[] {
  const w = Math.max(...uvm_perf_constants.map((c) => c.name.length));
  return uvm_perf_constants.map((c) => `${c.name.padEnd(w)}  ${c.value.padEnd(22)} ${c.source.padEnd(26)} ${c.modelled}`);
}
