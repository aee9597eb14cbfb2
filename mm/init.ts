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
import { mem_init, totalram_pages, setup_per_zone_wmarks } from './page_alloc.js';
import { resetTasks } from './task.js';
import { resetFiles } from './file.js';
import { resetFaultHooks } from './memory.js';
import { hugepage_init } from './huge_memory.js';
import { hugetlb_init } from './hugetlb.js';

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

/* subsystems that keep state register a reset to run at every boot */
const boot_hooks: ((params: boot_params) => void)[] = [];

/** register_boot_hook() - run fn(params) at every start_kernel() (after memory is up). */
export function register_boot_hook(fn: (params: boot_params) => void): void {
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
  resetTasks();
  resetFiles();
  resetFaultHooks();
  mem_init(Math.ceil((params.ram_bytes ?? 64 * 1024 * 1024) / PAGE_SIZE));
  setup_per_zone_wmarks(params.min_free_kbytes ?? 0);
  const ram = totalram_pages(), movable = Math.min(ram, Math.ceil((params.movablecore ?? 0) / PAGE_SIZE));
  set_zone_movable_pfn(movable > 0 ? ram - movable : Infinity, ram);
  hugepage_init(params.transparent_hugepage ?? 'madvise');
  hugetlb_init(params.hugepages_2m ?? 0, params.hugepages_1g ?? 0);
  for (const fn of boot_hooks) fn(params);
  return totalram_pages();
}
