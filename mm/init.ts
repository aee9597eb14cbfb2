/*
 * mm/init.ts - booting the simulated machine.
 *
 * Models start_kernel() of init/main.c for what this tree has: physical
 * memory (mm_init -> mem_init), and a clean slate for every subsystem
 * with global state (scheduler, tracer, processes, files, fault hooks),
 * so that each test can boot a fresh machine.
 */
import { PAGE_SIZE } from '../include/linux/mm.js';
import { resetScheduler } from '../lib/sim/sched.js';
import { resetTrace } from '../lib/sim/trace.js';
import { resetLockdep } from '../lib/locking/lockdep.js';
import { mem_init, totalram_pages } from './page_alloc.js';
import { resetTasks } from './task.js';
import { resetFiles } from './file.js';
import { resetFaultHooks } from './memory.js';

/** Machine configuration. */
export interface boot_params {
  /* RAM in bytes (default 64 MiB); rounded up to 4 MiB */
  ram_bytes?: number;
}

/* subsystems that keep state register a reset to run at every boot */
const boot_hooks: (() => void)[] = [];

/** register_boot_hook() - run fn at every start_kernel() (after memory is up). */
export function register_boot_hook(fn: () => void): void {
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
  for (const fn of boot_hooks) fn();
  return totalram_pages();
}
