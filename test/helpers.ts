/*
 * test/helpers.ts - small shared helpers for the unit tests: boot a fresh
 * machine, record what a notifier sees, read a PTE.
 */
import { start_kernel, type boot_params } from '../mm/init.js';
import { Process, runAs } from '../tools/include/nolibc/nolibc.js';
import { mmu_notifier_register } from '../mm/mmu_notifier.js';
import { mmu_notifier_event_names, type mmu_notifier, type mmu_notifier_range } from '../include/linux/mmu_notifier.js';
import type { mm_struct } from '../include/linux/mm_types.js';
import { pte_offset_map, ptep_get } from '../mm/pgtable.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../include/uapi/asm-generic/mman.js';

export const RW = PROT_READ | PROT_WRITE;
export const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** Boot a fresh machine and spawn one process. */
export function boot(params: boot_params = {}): Process {
  start_kernel(params);
  return Process.spawn('test');
}

export interface seen_range { event: string; start: number; end: number; phase: 'start' | 'end' }

/** Register a whole-mm notifier that records every invalidation. */
export function recordNotifier(p: Process): seen_range[] {
  const seen: seen_range[] = [];
  const rec = (phase: 'start' | 'end') => (r: mmu_notifier_range) =>
    seen.push({ event: mmu_notifier_event_names[r.event], start: r.start, end: r.end, phase });
  const rs = rec('start'), re = rec('end');
  const sub: mmu_notifier = {
    mm: null,
    ops: {
      *invalidate_range_start(_s, r) { rs(r); return 0; },
      *invalidate_range_end(_s, r) { re(r); },
    },
  };
  runAs(p.task, mmu_notifier_register(sub, p.mm));
  return seen;
}

/** The starts of the recorded invalidations, as "EVENT start-end" strings. */
export function starts(seen: seen_range[]): string[] {
  return seen.filter((s) => s.phase === 'start').map((s) => `${s.event} ${s.start.toString(16)}-${s.end.toString(16)}`);
}

/** The raw PTE for addr, or -1 when no PTE page exists. */
export function pte_at(mm: mm_struct, addr: number): number {
  const ptep = pte_offset_map(mm, addr);
  return ptep < 0 ? -1 : ptep_get(mm, ptep);
}
