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
import { hmm_dmirror_cmd_encode, hmm_dmirror_cmd_decode, HMM_DMIRROR_CMD_SIZE } from '../include/uapi/linux/test_hmm.js';

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

/** A process with /dev/hmm_dmirror<unit> open and a one-page command block. */
export interface dmirror_rig { p: Process; fd: number; cmd_addr: number; mirror: number }

/**
 * Open /dev/hmm_dmirror<unit> in @p (the test loads the driver first with
 * hmm_dmirror_init() of lib/test_hmm.ts, as insmod would) and map a command block and a
 * bounce buffer of @mirror_pages pages for dmirror_cmd().
 */
export function dmirror_open(p: Process, unit = 0, mirror_pages = 64): dmirror_rig {
  const fd = p.open(`/dev/hmm_dmirror${unit}`, 2);
  const cmd_addr = p.mmap(0, 4096, RW, ANON);
  const mirror = p.mmap(0, mirror_pages * 4096, RW, ANON);
  return { p, fd, cmd_addr, mirror };
}

/**
 * Issue one dmirror ioctl over [addr, addr + npages pages) with bounce
 * buffer @ptr. Return: the ioctl's result and the cpages/faults the driver
 * copied back (as user space sees the block afterwards).
 */
export function dmirror_cmd(r: dmirror_rig, request: number, addr: number | bigint, npages: number | bigint,
                            ptr: number | bigint = r.mirror): { ret: number; cpages: number; faults: number } {
  r.p.write(r.cmd_addr, hmm_dmirror_cmd_encode({
    addr: BigInt(addr), ptr: BigInt(ptr), npages: BigInt(npages), cpages: 0n, faults: 0n,
  }));
  const ret = r.p.ioctl(r.fd, request, r.cmd_addr);
  const out = hmm_dmirror_cmd_decode(r.p.read(r.cmd_addr, HMM_DMIRROR_CMD_SIZE));
  return { ret, cpages: Number(out.cpages), faults: Number(out.faults) };
}
