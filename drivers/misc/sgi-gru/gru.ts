/*
 * drivers/misc/sgi-gru/gru.ts - a GRU-like secondary MMU on the 2008
 * notifier API: a TLB of the process's translations that holds NO
 * reference on the pages it maps.
 *
 * Follows SGI's GRU driver as merged in 2.6.27: grutlbpurge.c
 * (gru_register_mmu_notifier, gru_invalidate_range_start/end,
 * gru_invalidate_page, gru_release, ms_range_active, ms_wait_queue) and
 * grufault.c (gru_try_dropin / gru_vtop: a TLB miss is resolved by reading
 * the CPU PTE directly, atomic_pte_lookup, and only if that fails by
 * faulting the page in; a miss while a range invalidation is active
 * stalls until it ends). Linux's file names are grutlbpurge.c and
 * grufault.c; the two halves are one file here.
 *
 * Why it needs the range pair: the TLB maps physical frames with no page
 * reference, so nothing stops the VM from freeing a frame the TLB still
 * maps. invalidate_page is called before the VM drops its reference, so
 * single-PTE changes are safe; a zap frees its pages BEFORE range_end, so
 * the TLB must be flushed at range_start and must not be refilled from the
 * still-present PTEs until range_end: ms_range_active stalls the
 * TLB-miss handler for exactly that window.
 *
 * Simplified: one GRU context per mm (no GSEGs, ASIDs or context
 * switching); the TLB is a map of virtual page -> frame; device accesses
 * are 32-bit loads and stores issued by a simulated thread.
 */
import type { mm_struct } from '../../../include/linux/mm_types.js';
import type { mmu_notifier_2008 } from '../../../include/linux/mmu_notifier_2008.js';
import { PAGE_SIZE, FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, VM_WRITE, VM_FAULT_ERROR } from '../../../include/linux/mm.js';
import { EFAULT } from '../../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { wait_queue_head, wait_event, wake_up_all } from '../../../lib/locking/wait.js';
import { count_event, trace_event } from '../../../lib/sim/trace.js';
import { mmu_translate } from '../../../mm/fault.js';
import { mmap_read_lock, mmap_read_unlock } from '../../../mm/mmap_lock.js';
import { vma_lookup } from '../../../mm/vma.js';
import { handle_mm_fault } from '../../../mm/memory.js';
import { kmap_local_page, pfn_to_page } from '../../../mm/page_alloc.js';
import { mmu_notifier_register_2008, mmu_notifier_unregister_2008 } from '../../../mm/mmu_notifier_2008.js';

/** A GRU TLB entry: the frame and whether it was dropped in for write. No page reference. */
interface gru_tlb_entry { pfn: number; write: boolean; }

/**
 * struct gru_mm_struct - the GRU's state for one mm.
 * @ms_range_active: range invalidations between start and end; while
 *   nonzero the TLB-miss handler does not drop translations in
 * @ms_wait_queue: woken by the end of the last active range
 * @tlb: virtual page number -> entry (the hardware TLB)
 */
export class gru_mm_struct {
  ms_range_active = 0;
  readonly ms_wait_queue = new wait_queue_head('gru_mm_struct.ms_wait_queue');
  readonly tlb = new Map<number, gru_tlb_entry>();
  readonly ms_notifier: mmu_notifier_2008;
  released = false;
  /* counters */
  dropins = 0;
  stalls = 0;
  tlb_flushes = 0;
  constructor(readonly mm: mm_struct) {
    this.ms_notifier = { ops: gru_mmuops, mm: null };
  }
}

const gms_of = new WeakMap<mmu_notifier_2008, gru_mm_struct>();

/* gru_flush_tlb_range() - drop the TLB entries of [start, end) */
function gru_flush_tlb_range(gms: gru_mm_struct, start: number, end: number): void {
  gms.tlb_flushes++;
  if ((end - start) / PAGE_SIZE > gms.tlb.size) {
    for (const vpn of [...gms.tlb.keys()]) if (vpn * PAGE_SIZE >= start && vpn * PAGE_SIZE < end) gms.tlb.delete(vpn);
    return;
  }
  for (let a = start; a < end; a += PAGE_SIZE) gms.tlb.delete(a / PAGE_SIZE);
}

const gru_mmuops = Object.freeze({
  invalidate_range_start(mn: mmu_notifier_2008, _mm: mm_struct, start: number, end: number): void {
    const gms = gms_of.get(mn)!;
    gms.ms_range_active++;
    gru_flush_tlb_range(gms, start, end);
  },
  invalidate_range_end(mn: mmu_notifier_2008, _mm: mm_struct, _start: number, _end: number): void {
    const gms = gms_of.get(mn)!;
    gms.ms_range_active--;
    if (gms.ms_range_active === 0) wake_up_all(gms.ms_wait_queue);
  },
  invalidate_page(mn: mmu_notifier_2008, _mm: mm_struct, address: number): void {
    gru_flush_tlb_range(gms_of.get(mn)!, address, address + PAGE_SIZE);
  },
  release(mn: mmu_notifier_2008, _mm: mm_struct): void {
    const gms = gms_of.get(mn)!;
    gms.released = true;
    gms.tlb.clear();
  },
});

/**
 * gru_register_mmu_notifier() - the GRU context of @mm, subscribed to its
 * invalidations through the 2008 API.
 * Context: may sleep (takes mmap_lock for write).
 */
export function* gru_register_mmu_notifier(mm: mm_struct): Sleepable<gru_mm_struct> {
  const gms = new gru_mm_struct(mm);
  gms_of.set(gms.ms_notifier, gms);
  yield* mmu_notifier_register_2008(gms.ms_notifier, mm);
  return gms;
}

/** gru_drop_mmu_notifier() - unsubscribe (calls ->release if exit did not). Context: may sleep. */
export function* gru_drop_mmu_notifier(gms: gru_mm_struct): Sleepable {
  yield* mmu_notifier_unregister_2008(gms.ms_notifier, gms.mm);
}

/**
 * gru_try_dropin() - resolve a TLB miss at @va: wait while a range
 * invalidation is active, then read the CPU PTE (atomic_pte_lookup, no
 * page reference taken) and drop it into the TLB; if the PTE does not
 * allow the access, fault the page in (the non-atomic path) and retry.
 * Context: the GRU's fault handler; may sleep. Return: 0 or -EFAULT.
 */
export function* gru_try_dropin(gms: gru_mm_struct, va: number, write: boolean): Sleepable<number> {
  for (;;) {
    if (gms.released) return -EFAULT;
    if (gms.ms_range_active > 0) {
      gms.stalls++;
      count_event('gru_dropin_stall');
      yield* wait_event(gms.ms_wait_queue, () => gms.ms_range_active === 0);
      continue;
    }
    const pa = mmu_translate(gms.mm, va, write);
    if (pa >= 0) {
      gms.dropins++;
      gms.tlb.set(Math.floor(va / PAGE_SIZE), { pfn: Math.floor(pa / PAGE_SIZE), write });
      trace_event('gru_tlb_dropin', { mm: gms.mm.id, va, pfn: Math.floor(pa / PAGE_SIZE), write });
      return 0;
    }
    yield* mmap_read_lock(gms.mm);
    const vma = vma_lookup(gms.mm, va);
    if (vma === null || (write && !(vma.vm_flags & VM_WRITE))) { mmap_read_unlock(gms.mm); return -EFAULT; }
    const ret = yield* handle_mm_fault(vma, va, FAULT_FLAG_REMOTE | (write ? FAULT_FLAG_WRITE : 0));
    mmap_read_unlock(gms.mm);
    if (ret & VM_FAULT_ERROR) return -EFAULT;   /* VM_FAULT_RETRY: loop and fault again */
  }
}

/**
 * gru_access32() - a GRU instruction loading (or, with @store, storing) the
 * u32 at @va through the TLB. The TLB lookup and the memory access are one
 * hardware step: no invalidation can come between them.
 * Context: the thread standing for the GRU; may sleep on a miss.
 * Return: { value, pfn } (the frame the access used), or -EFAULT.
 */
export function* gru_access32(gms: gru_mm_struct, va: number, store?: number): Sleepable<{ value: number; pfn: number } | number> {
  const write = store !== undefined;
  for (;;) {
    const e = gms.tlb.get(Math.floor(va / PAGE_SIZE));
    if (e !== undefined && (e.write || !write)) {
      const b = kmap_local_page(pfn_to_page(e.pfn));
      const dv = new DataView(b.buffer, b.byteOffset, PAGE_SIZE);
      if (write) dv.setUint32(va % PAGE_SIZE, store >>> 0, true);
      return { value: dv.getUint32(va % PAGE_SIZE, true), pfn: e.pfn };
    }
    const ret = yield* gru_try_dropin(gms, va, write);
    if (ret) return ret;
  }
}
