/*
 * mm/init.ts - start_kernel(): booting the simulated machine.
 *
 * Linux has start_kernel() in init/main.c; this tree keeps its top level
 * to mm, lib, drivers, include, so the boot lives here, beside the memory
 * it mostly brings up. Like init/main.c (and xv6's main.c), it calls each
 * subsystem's init in order, so the boot order can be read in one place:
 *
 *   1. plumbing with global state: scheduler, tracer, lockdep, warnings,
 *      fault injection (its boot parameters), processes, files, and the reclaim state (kswapd_init) before any
 *      page is handed out
 *   2. memory: mem_init() (memblock and the buddy allocator), zone
 *      watermarks (vm.min_free_kbytes), ZONE_MOVABLE (movablecore=)
 *   3. mm subsystems: THP, hugetlb pools, tmpfs, ZONE_DEVICE, memory
 *      cgroups, swap (then swapon of the boot swap device), /proc files,
 *      the gup_test debugfs file
 *   4. the HMM v8 series (mm/hmm_v8): its era rules, and the four places
 *      it hooks into core mm (hmm_v8_hooks, mm/hmm_v8/hooks.ts)
 *
 * Nothing registers itself: a subsystem that keeps state is listed below.
 * Drivers are modules: a caller that wants one loads it after boot, as
 * insmod does (hmm_dmirror_init() of lib/test_hmm.ts, insmodHmmDummy()
 * of drivers/char/hmm_dummy.ts, uvm_gpu_init() of drivers/gpu/mockgpu).
 */
import { PAGE_SIZE, set_zone_movable_pfn } from '../include/linux/mm.js';
import type { thp_mode } from '../include/linux/huge_mm.js';
import { resetWarnings } from '../include/asm-generic/bug.js';
import { resetScheduler } from '../lib/sim/sched.js';
import { resetTrace } from '../lib/sim/trace.js';
import { resetLockdep } from '../lib/locking/lockdep.js';
import { fault_inject_init } from '../lib/fault-inject.js';
import { mem_init, totalram_pages, setup_per_zone_wmarks } from './page_alloc.js';
import { resetTasks } from './task.js';
import { resetFiles } from './file.js';
import { kswapd_init } from './vmscan.js';
import { hugepage_init } from './huge_memory.js';
import { hugetlb_init } from './hugetlb.js';
import { shmem_init } from './shmem.js';
import { resetMemremap } from './memremap.js';
import { resetOomKill } from './oom_kill.js';
import { mem_cgroup_init } from './memcontrol.js';
import { swapfile_init, swapon } from './swapfile.js';
import { procPagemapInit } from './pagemap.js';
import { gup_test_init } from './gup_test.js';
import { hmmV8Init } from './hmm_v8/hmm.js';
import { gmem_reset } from './gmem.js';

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

/**
 * start_kernel() - boot a fresh machine: reset every subsystem and bring
 * up RAM, in the order written in this file's header.
 * @params: the machine's configuration (boot command line).
 * Context: outside any simulated thread. Return: the number of RAM pages.
 */
export function start_kernel(params: boot_params = {}): number {
  resetScheduler();
  resetTrace();
  resetLockdep();
  resetWarnings();
  fault_inject_init();
  resetTasks();
  resetFiles();
  kswapd_init();

  mem_init(Math.ceil((params.ram_bytes ?? 64 * 1024 * 1024) / PAGE_SIZE));
  setup_per_zone_wmarks(params.min_free_kbytes ?? 0);
  const ram = totalram_pages(), movable = Math.min(ram, Math.ceil((params.movablecore ?? 0) / PAGE_SIZE));
  set_zone_movable_pfn(movable > 0 ? ram - movable : Infinity, ram);

  hugepage_init(params.transparent_hugepage ?? 'madvise');
  hugetlb_init(params.hugepages_2m ?? 0, params.hugepages_1g ?? 0);
  shmem_init();
  resetMemremap();
  resetOomKill();
  mem_cgroup_init();
  swapfile_init();
  if ((params.swap_bytes ?? 0) > 0) swapon(Math.floor(params.swap_bytes! / PAGE_SIZE));
  procPagemapInit();
  gup_test_init();

  hmmV8Init();
  gmem_reset();
  return totalram_pages();
}
