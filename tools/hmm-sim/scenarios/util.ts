/*
 * tools/hmm-sim/scenarios/util.ts - small helpers the built-in scenarios
 * share (not a scenario: index.ts does not list it).
 */
import type { Process } from '../../include/nolibc/nolibc.js';
import type { Dmirror } from '../../lib/dmirror.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';
import { HMM_DMIRROR_SNAPSHOT } from '../../../include/uapi/linux/test_hmm.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { errno_name } from '../../../include/uapi/asm-generic/errno.js';
import { trace_records } from '../../../lib/sim/trace.js';

export const RW = PROT_READ | PROT_WRITE;
export const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** anon() - mmap @npages of private anonymous read-write memory in @p. */
export function anon(p: Process, npages: number): number {
  return p.mmap(0, npages * PAGE_SIZE, RW, ANON);
}

/**
 * snapshot() - HMM_DMIRROR_SNAPSHOT of [@addr, +@npages) into @view: one
 * byte per page (HMM_DMIRROR_PROT_*), printed in hex.
 */
export function snapshot(d: Dmirror, addr: number, npages: number, view: number): string {
  const ret = d.ioctl(HMM_DMIRROR_SNAPSHOT, addr, npages, view);
  if (ret !== 0) return `SNAPSHOT failed: ${ret}`;
  return [...d.p.read(view, npages)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** ret() - a return value as a reader wants it: "0", or "-ENOENT" for -2. */
export function ret(r: number): string {
  return r < 0 ? `-${errno_name(r).replace(/^-/, '')}` : String(r);
}

/** events_since() - how many trace records named in @names were written at or after sequence number @seq. */
export function events_since(seq: number, names: readonly string[]): number {
  return trace_records().filter((r) => (r.seq ?? 0) >= seq && names.includes(r.name)).length;
}

/** trace_seq() - the sequence number the next trace record will get. */
export function trace_seq(): number {
  const all = trace_records();
  return all.length === 0 ? 0 : (all[all.length - 1]!.seq ?? 0) + 1;
}
