/*
 * tools/testing/fuzz/model.ts - the shadow model of the differential
 * fuzzer: what each process must see, written as plainly as possible so
 * that it can be trusted without reading the kernel.
 *
 * A process is a map from virtual page number to { prot, dontfork, data }.
 * data null means "reads as zeroes" (never written, or dropped by
 * MADV_DONTNEED). There are no VMAs, no page tables, no devices, no swap:
 * every one of those must be invisible in the bytes a process reads, and
 * that is what the fuzzer checks. The model answers three questions: which
 * bytes an access must return, which access must fail, and what a system
 * call does to the pages (mmap, munmap, mprotect, madvise, mremap, fork).
 *
 * The only kernel state the model takes as input is the VMA layout, which
 * decides whether mremap's source lies in one VMA (machine.ts asks the
 * kernel); merging VMAs is the kernel's free choice and never visible in
 * bytes.
 */
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE } from '../../../include/uapi/asm-generic/mman.js';

/** The arena the fuzzer's mappings live in: 2 MiB aligned so that THPs can form. */
export const ARENA = 0x40000000;
/** Pages of the arena (two PMD-sized ranges). */
export const ARENA_PAGES = 1024;
/** A page outside the arena holds ioctl structs and device bounce buffers. */
export const SCRATCH = 0x20000000;
/** Largest device operation, in pages (beyond two dmirror fault windows of 32). */
export const MAX_DEV_PAGES = 72;
export const SCRATCH_CMD = SCRATCH;
export const SCRATCH_BOUNCE = SCRATCH + PAGE_SIZE;
export const SCRATCH_SNAP = SCRATCH + (MAX_DEV_PAGES + 1) * PAGE_SIZE;
export const SCRATCH_PAGES = MAX_DEV_PAGES + 2;

/** One page as the process must see it. */
export interface ShadowPage {
  prot: number;                 /* PROT_NONE, PROT_READ or PROT_READ | PROT_WRITE */
  dontfork: boolean;            /* MADV_DONTFORK */
  data: Uint8Array | null;      /* null: reads as zeroes */
}

/** Why an access must fail, or null when it must succeed. */
export type Denial = null | 'hole' | 'prot';

/** The shadow of one process's arena. */
export class ShadowProc {
  readonly pages = new Map<number, ShadowPage>();

  /** vpn() - the virtual page number of arena page @off. */
  static vpn(off: number): number { return ARENA / PAGE_SIZE + off; }

  clone(forChild: boolean): ShadowProc {
    const c = new ShadowProc();
    for (const [vpn, pg] of this.pages) {
      if (forChild && pg.dontfork) continue;
      c.pages.set(vpn, { prot: pg.prot, dontfork: pg.dontfork, data: pg.data === null ? null : pg.data.slice() });
    }
    return c;
  }

  map(vpn: number, n: number, prot: number): void {
    for (let i = 0; i < n; i++) this.pages.set(vpn + i, { prot, dontfork: false, data: null });
  }

  unmap(vpn: number, n: number): void {
    for (let i = 0; i < n; i++) this.pages.delete(vpn + i);
  }

  /** denied() - may page @vpn be read (or written)? */
  denied(vpn: number, write: boolean): Denial {
    const pg = this.pages.get(vpn);
    if (pg === undefined) return 'hole';
    if (!(pg.prot & PROT_READ)) return 'prot';
    if (write && !(pg.prot & PROT_WRITE)) return 'prot';
    return null;
  }

  /** firstDenied() - the first page of [vpn, vpn + n) an access is refused, or -1. */
  firstDenied(vpn: number, n: number, write: boolean): number {
    for (let i = 0; i < n; i++) if (this.denied(vpn + i, write) !== null) return vpn + i;
    return -1;
  }

  /** bytes() - what [addr, addr + len) must read (ignoring permissions). */
  bytes(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = addr + done, off = a % PAGE_SIZE, n = Math.min(len - done, PAGE_SIZE - off);
      const pg = this.pages.get(Math.floor(a / PAGE_SIZE));
      if (pg !== undefined && pg.data !== null) out.set(pg.data.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  /** store() - what a successful write of @buf at @addr leaves behind. */
  store(addr: number, buf: Uint8Array): void {
    let done = 0;
    while (done < buf.length) {
      const a = addr + done, off = a % PAGE_SIZE, n = Math.min(buf.length - done, PAGE_SIZE - off);
      const pg = this.pages.get(Math.floor(a / PAGE_SIZE));
      if (pg === undefined) throw new Error(`model: store to unmapped 0x${a.toString(16)}`);
      pg.data ??= new Uint8Array(PAGE_SIZE);
      pg.data.set(buf.subarray(done, done + n), off);
      done += n;
    }
  }

  /**
   * mprotect() - Linux's order: the start must be mapped (-ENOMEM), then
   * each VMA is changed in turn until a hole ends the walk (-ENOMEM, the
   * pages before it keep their new protection). Return: 0 or -ENOMEM.
   */
  mprotect(vpn: number, n: number, prot: number): number {
    for (let i = 0; i < n; i++) {
      const pg = this.pages.get(vpn + i);
      if (pg === undefined) return -12;
      pg.prot = prot;
    }
    return 0;
  }

  /** holes() - does [vpn, vpn + n) contain an unmapped page? */
  holes(vpn: number, n: number): boolean {
    for (let i = 0; i < n; i++) if (!this.pages.has(vpn + i)) return true;
    return false;
  }

  /** madvise_dontneed() - the mapped pages of the range read as zeroes again. */
  dontneed(vpn: number, n: number): void {
    for (let i = 0; i < n; i++) { const pg = this.pages.get(vpn + i); if (pg !== undefined) pg.data = null; }
  }

  setDontfork(vpn: number, n: number, on: boolean): void {
    for (let i = 0; i < n; i++) { const pg = this.pages.get(vpn + i); if (pg !== undefined) pg.dontfork = on; }
  }

  /**
   * mremap() - move [old, old + oldn) to [nw, nw + newn): the first
   * min(oldn, newn) pages keep their bytes, growth reads as zeroes with the
   * first page's protection, the old range is unmapped. The caller has
   * checked the source is one VMA and the ranges do not overlap.
   */
  mremap(old: number, oldn: number, newn: number, nw: number): void {
    const first = this.pages.get(old)!;
    const moved: ShadowPage[] = [];
    for (let i = 0; i < Math.min(oldn, newn); i++) moved.push(this.pages.get(old + i)!);
    this.unmap(old, oldn);
    this.unmap(nw, newn);
    for (let i = 0; i < newn; i++)
      this.pages.set(nw + i, i < moved.length ? moved[i] : { prot: first.prot, dontfork: first.dontfork, data: null });
  }
}

/** fillBytes() - @len bytes derived from @v (a store's value, reproducible from the op). */
export function fillBytes(len: number, v: number): Uint8Array {
  const b = new Uint8Array(len);
  let x = (v | 1) >>> 0;
  for (let i = 0; i < len; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
