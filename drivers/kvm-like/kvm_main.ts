/*
 * drivers/kvm-like/kvm_main.ts - a KVM-like secondary MMU on the 2008
 * notifier API: a shadow (EPT-like) table whose every entry holds a
 * reference on the page it maps, taken with get_user_pages.
 *
 * Follows KVM as of Linux 2.6.27: virt/kvm/kvm_main.c (the mmu notifier
 * callbacks kvm_mmu_notifier_invalidate_page, _invalidate_range_start/end,
 * _clear_flush_young, _release; mmu_notifier_seq and mmu_notifier_count)
 * and arch/x86/kvm/mmu.c (tdp_page_fault / nonpaging_map: gfn_to_pfn with
 * get_user_pages, then under kvm->mmu_lock mmu_notifier_retry() and the
 * spte install; rmap_remove releasing the page with kvm_release_pfn_*).
 *
 * Why it does not need the range pair for safety: the page a shadow entry
 * maps cannot be freed while the entry exists, because the entry holds a
 * reference. If the VM unmaps the page first and tells KVM late, the guest
 * reads the old (pinned, still allocated) page for a moment: stale, never
 * freed or reused. The pair and the sequence count are what keep KVM
 * coherent (a fault racing an invalidation retries), not what keep it safe.
 *
 * Simplified: guest physical = host virtual (one memslot at offset 0);
 * one vCPU, whose accesses are 32-bit loads and stores issued by a
 * simulated thread; no shadow paging of guest page tables, no large pages.
 */
import type { mm_struct, page } from '../../include/linux/mm_types.js';
import type { mmu_notifier_2008 } from '../../include/linux/mmu_notifier_2008.js';
import { PAGE_SIZE, FOLL_WRITE } from '../../include/linux/mm.js';
import { EAGAIN, EFAULT } from '../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import { wait_queue_head, wait_event, wake_up_all } from '../../lib/locking/wait.js';
import { spinlock_t, spin_lock, spin_unlock } from '../../lib/locking/spinlock.js';
import { count_event } from '../../lib/sim/trace.js';
import { mmap_read_lock, mmap_read_unlock } from '../../mm/mmap_lock.js';
import { get_user_pages } from '../../mm/gup.js';
import { kmap_local_page, put_page } from '../../mm/page_alloc.js';
import { mmu_notifier_register_2008, mmu_notifier_unregister_2008 } from '../../mm/mmu_notifier_2008.js';

/** A shadow PTE: the page (referenced), writable, accessed since the last aging. */
interface kvm_spte { page: page; write: boolean; young: boolean; }

/**
 * struct kvm - one VM.
 * protected by mmu_lock: spt, mmu_notifier_seq, mmu_notifier_count
 * @spt: guest frame -> shadow entry
 * @mmu_notifier_seq: bumped by every invalidation (end of a range, each page)
 * @mmu_notifier_count: range invalidations between start and end
 */
export class kvm {
  readonly mmu_lock = new spinlock_t('kvm->mmu_lock');
  readonly spt = new Map<number, kvm_spte>();
  mmu_notifier_seq = 0;
  mmu_notifier_count = 0;
  /* woken when mmu_notifier_count drops to 0 (the model's stand-in for the vCPU's retry loop) */
  readonly mmu_notifier_wq = new wait_queue_head('kvm->mmu_notifier_wq');
  readonly mmu_notifier: mmu_notifier_2008;
  /* counters */
  faults = 0;
  fault_retries = 0;
  sptes_zapped = 0;
  constructor(readonly mm: mm_struct) {
    this.mmu_notifier = { ops: kvm_mmu_notifier_ops, mm: null };
  }
}

const kvm_of = new WeakMap<mmu_notifier_2008, kvm>();

/* kvm_unmap_hva() - drop the shadow entry of @hva and its page reference. Context: mmu_lock held. */
function kvm_unmap_hva(k: kvm, hva: number): void {
  const gfn = Math.floor(hva / PAGE_SIZE);
  const e = k.spt.get(gfn);
  if (e === undefined) return;
  k.spt.delete(gfn);
  k.sptes_zapped++;
  put_page(e.page);                   /* kvm_release_pfn_clean/dirty in rmap_remove */
}

function kvm_unmap_range(k: kvm, start: number, end: number): void {
  if ((end - start) / PAGE_SIZE > k.spt.size) {
    for (const gfn of [...k.spt.keys()]) if (gfn * PAGE_SIZE >= start && gfn * PAGE_SIZE < end) kvm_unmap_hva(k, gfn * PAGE_SIZE);
    return;
  }
  for (let a = start; a < end; a += PAGE_SIZE) kvm_unmap_hva(k, a);
}

const kvm_mmu_notifier_ops = Object.freeze({
  invalidate_page(mn: mmu_notifier_2008, _mm: mm_struct, address: number): void {
    const k = kvm_of.get(mn)!;
    spin_lock(k.mmu_lock);
    k.mmu_notifier_seq++;
    kvm_unmap_hva(k, address);
    spin_unlock(k.mmu_lock);
  },
  invalidate_range_start(mn: mmu_notifier_2008, _mm: mm_struct, start: number, end: number): void {
    const k = kvm_of.get(mn)!;
    spin_lock(k.mmu_lock);
    k.mmu_notifier_count++;
    kvm_unmap_range(k, start, end);
    spin_unlock(k.mmu_lock);
  },
  invalidate_range_end(mn: mmu_notifier_2008, _mm: mm_struct, _start: number, _end: number): void {
    const k = kvm_of.get(mn)!;
    spin_lock(k.mmu_lock);
    k.mmu_notifier_seq++;
    k.mmu_notifier_count--;
    spin_unlock(k.mmu_lock);
    if (k.mmu_notifier_count === 0) wake_up_all(k.mmu_notifier_wq);
  },
  clear_flush_young(mn: mmu_notifier_2008, _mm: mm_struct, address: number): number {
    const k = kvm_of.get(mn)!;
    spin_lock(k.mmu_lock);
    const e = k.spt.get(Math.floor(address / PAGE_SIZE));
    const young = e !== undefined && e.young ? 1 : 0;
    if (e !== undefined) e.young = false;
    spin_unlock(k.mmu_lock);
    return young;
  },
  release(mn: mmu_notifier_2008, _mm: mm_struct): void {
    const k = kvm_of.get(mn)!;
    spin_lock(k.mmu_lock);
    for (const gfn of [...k.spt.keys()]) kvm_unmap_hva(k, gfn * PAGE_SIZE);   /* kvm_arch_flush_shadow */
    spin_unlock(k.mmu_lock);
  },
});

/**
 * kvm_create_vm() - a VM whose guest memory is @mm, subscribed through the
 * 2008 API. Context: may sleep.
 */
export function* kvm_create_vm(mm: mm_struct): Sleepable<kvm> {
  const k = new kvm(mm);
  kvm_of.set(k.mmu_notifier, k);
  yield* mmu_notifier_register_2008(k.mmu_notifier, mm);
  return k;
}

/** kvm_destroy_vm() - unsubscribe; ->release drops every shadow entry. Context: may sleep. */
export function* kvm_destroy_vm(k: kvm): Sleepable {
  yield* mmu_notifier_unregister_2008(k.mmu_notifier, k.mm);
}

/* mmu_notifier_retry() - did an invalidation start or complete since @mmu_seq was read? Context: mmu_lock held. */
function mmu_notifier_retry(k: kvm, mmu_seq: number): boolean {
  return k.mmu_notifier_count > 0 || k.mmu_notifier_seq !== mmu_seq;
}

/**
 * kvm_tdp_page_fault() - the guest touched @gpa with no shadow entry:
 * pin the host page with get_user_pages, then install the entry under
 * mmu_lock unless an invalidation ran meanwhile (then drop the page and
 * return -EAGAIN: the guest retries the access).
 * Context: may sleep (mmap_lock, the host fault). Return: 0, -EAGAIN, -EFAULT.
 */
export function* kvm_tdp_page_fault(k: kvm, gpa: number, write: boolean): Sleepable<number> {
  k.faults++;
  const mmu_seq = k.mmu_notifier_seq;
  const pages: page[] = [];
  yield* mmap_read_lock(k.mm);
  const n = yield* get_user_pages(k.mm, gpa - (gpa % PAGE_SIZE), 1, write ? FOLL_WRITE : 0, pages);
  mmap_read_unlock(k.mm);
  if (n !== 1) return -EFAULT;
  spin_lock(k.mmu_lock);
  if (mmu_notifier_retry(k, mmu_seq)) {
    spin_unlock(k.mmu_lock);
    put_page(pages[0]!);
    k.fault_retries++;
    count_event('kvm_mmu_notifier_retry');
    return -EAGAIN;
  }
  const gfn = Math.floor(gpa / PAGE_SIZE);
  const old = k.spt.get(gfn);
  k.spt.set(gfn, { page: pages[0]!, write, young: true });
  if (old !== undefined) put_page(old.page);
  spin_unlock(k.mmu_lock);
  return 0;
}

/**
 * kvm_guest_access32() - the guest loads (or, with @store, stores) the u32
 * at @gpa through the shadow table; a miss takes kvm_tdp_page_fault and
 * retries. Context: the vCPU thread; may sleep on a miss.
 * Return: { value, page } (the page the access used), or -EFAULT.
 */
export function* kvm_guest_access32(k: kvm, gpa: number, store?: number): Sleepable<{ value: number; page: page } | number> {
  const write = store !== undefined;
  for (;;) {
    const e = k.spt.get(Math.floor(gpa / PAGE_SIZE));
    if (e !== undefined && (e.write || !write)) {
      e.young = true;
      const b = kmap_local_page(e.page);
      const dv = new DataView(b.buffer, b.byteOffset, PAGE_SIZE);
      if (write) dv.setUint32(gpa % PAGE_SIZE, store >>> 0, true);
      return { value: dv.getUint32(gpa % PAGE_SIZE, true), page: e.page };
    }
    const ret = yield* kvm_tdp_page_fault(k, gpa, write);
    if (ret === -EFAULT) return ret;
    /* KVM re-enters the guest and faults again until the range ends; the model sleeps until then */
    if (ret === -EAGAIN) yield* wait_event(k.mmu_notifier_wq, () => k.mmu_notifier_count === 0);
  }
}
