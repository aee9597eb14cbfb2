/*
 * mm/init.ts - booting the simulated machine.
 *
 * Models start_kernel() of init/main.c for what this tree has: physical
 * memory (mm_init -> mem_init), and a clean slate for every subsystem
 * with global state (scheduler, tracer, processes, files, fault hooks),
 * so that each test can boot a fresh machine.
 */
import { PAGE_SIZE, set_zone_movable_pfn } from '../include/linux/mm.js';
import type { thp_mode } from '../include/linux/huge_mm.js';
import { resetScheduler } from '../lib/sim/sched.js';
import { resetTrace } from '../lib/sim/trace.js';
import { resetLockdep } from '../lib/locking/lockdep.js';
import { resetWarnings } from '../include/asm-generic/bug.js';
import { mem_init, totalram_pages, setup_per_zone_wmarks } from './page_alloc.js';
import { resetTasks } from './task.js';
import { resetFiles } from './file.js';
import { resetFaultHooks } from './memory.js';
import { hugepage_init } from './huge_memory.js';
import { hugetlb_init } from './hugetlb.js';
import { shmem_init } from './shmem.js';
import { gup_longterm_init } from './gup_longterm.js';
/*
 * Built in, installing themselves through boot hooks (issue 4): swap
 * devices and the swap cache, the LRU and reclaim (kswapd, direct, memcg),
 * memory cgroups, MADV_FREE/MADV_PAGEOUT, /proc/self/pagemap and smaps.
 */
import './swap_state.js';
import './vmscan.js';
import './madvise_free.js';
import './pagemap.js';

/** Machine configuration. */
export interface boot_params {
  /* RAM in bytes (default 64 MiB); rounded up to 4 MiB */
  ram_bytes?: number;
  /* swap device size in bytes, swapped on at boot (mm/swapfile.ts); default 0: no swap */
  swap_bytes?: number;
  /*
   * vm.min_free_kbytes: the reserve that sets the zone watermarks
   * (setup_per_zone_wmarks). Linux derives it from the RAM size; the
   * default here is 0 (no reserve, no kswapd wake-ups), so a machine
   * booted without it hands out every frame.
   */
  min_free_kbytes?: number;
  /* transparent_hugepage=always|madvise|never (mm/huge_memory.ts); default madvise */
  transparent_hugepage?: thp_mode;
  /* hugepagesz=2M hugepages=N and hugepagesz=1G hugepages=N: hugetlb pools filled at boot (mm/hugetlb.ts) */
  hugepages_2m?: number;
  hugepages_1g?: number;
  /* movablecore=: bytes at the top of RAM that form ZONE_MOVABLE (include/linux/mm.ts); default 0 */
  movablecore?: number;
}

/*
 * Subsystems that keep state register a reset to run at every boot. The
 * list is a hoisted `var` created on first use, not a const set up by this
 * module's body: a module that this file imports (directly or through a
 * cycle) may register while this file is still being evaluated.
 */
// eslint-disable-next-line no-var
var boot_hooks: ((params: boot_params) => void)[] | undefined;

/** register_boot_hook() - run fn(params) at every start_kernel() (after memory is up). */
export function register_boot_hook(fn: (params: boot_params) => void): void {
  boot_hooks ??= [];
  if (!boot_hooks.includes(fn)) boot_hooks.push(fn);
}

/**
 * start_kernel() - boot a fresh machine: reset every subsystem and bring
 * up RAM. Return: the number of RAM pages.
 */
export function start_kernel(params: boot_params = {}): number {
  resetScheduler();
  resetTrace();
  resetLockdep();
  resetWarnings();
  resetTasks();
  resetFiles();
  resetFaultHooks();
  mem_init(Math.ceil((params.ram_bytes ?? 64 * 1024 * 1024) / PAGE_SIZE));
  setup_per_zone_wmarks(params.min_free_kbytes ?? 0);
  const ram = totalram_pages(), movable = Math.min(ram, Math.ceil((params.movablecore ?? 0) / PAGE_SIZE));
  set_zone_movable_pfn(movable > 0 ? ram - movable : Infinity, ram);
  hugepage_init(params.transparent_hugepage ?? 'madvise');
  hugetlb_init(params.hugepages_2m ?? 0, params.hugepages_1g ?? 0);
  shmem_init();
  gup_longterm_init();
  for (const fn of boot_hooks ?? []) fn(params);
  return totalram_pages();
}
