/*
 * mm/hmm.ts - hmm_range_fault(): snapshot (and fault in) the CPU page
 * table of a range into a device driver's hmm_pfns[] array.
 *
 * Models mm/hmm.c of Linux 6.x. struct hmm_range, the hmm_pfns encoding
 * and the request rule are in include/linux/hmm.ts; the walk-through,
 * with the sequence-count protocol the caller wraps around this call, is
 * the "hmm_range_fault" section of Documentation/vm/hmm.txt.
 *
 * The walk, walk_page_range() (mm/pagewalk.ts) with hmm_walk_ops, visits
 * from the `last` cursor to range.end:
 *   - gaps between VMAs (pte_hole, no VMA): HMM_PFN_ERROR, or -EFAULT if
 *     a fault was asked;
 *   - VMAs with VM_IO or VM_PFNMAP, or without VM_READ (test_walk): the same;
 *   - empty directories (pte_hole): 0, or a fault;
 *   - per PUD (pud_entry): a 1 GiB leaf -> every small page with its flags
 *     and order 18; per PMD (pmd_entry): huge leaf -> order 9; PMD
 *     migration entry -> wait; otherwise each PTE by its kind
 *     (hmm_vma_handle_pte); per huge page of a hugetlb VMA
 *     (hugetlb_entry): as a PMD or PUD leaf.
 * When an entry needs a fault, the walk stops and records [last, end) and
 * the kind of fault; the outer loop faults that span outside any
 * page-table lock (handle_mm_fault with FAULT_FLAG_REMOTE) and restarts
 * the walk at `last`. Entries below `last` already hold their output,
 * entries at or above it still hold their request. Every restart first
 * asks mmu_interval_check_retry() whether an invalidation hit the
 * notifier, and gives up with -EBUSY if so.
 *
 * Simplified: PMD and PUD leaves are recognised by _PAGE_PSE whether or
 * not mm/huge_memory.ts is present; the HMM_PFN_DMA_MAPPED family is kept
 * sticky but the hmm_dma_map_* helpers are not modelled.
 */
import type { vm_area_struct } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, VM_FAULT_ERROR,
  HPAGE_PMD_ORDER, PMD_SIZE, PUD_SIZE, PUD_SHIFT, PAGE_SHIFT,
} from '../include/linux/mm.js';
import {
  _PAGE_PRESENT, _PAGE_RW, _PAGE_PSE, _PAGE_SPECIAL, _PAGE_PROTNONE, pte_protnone, pmd_is_table, pud_leaf,
} from '../include/linux/pgtable.js';
import {
  pte_to_swp_entry, non_swap_entry, is_migration_entry, is_device_private_entry, is_device_exclusive_entry,
  is_writable_device_private_entry, swp_offset_pfn, type swp_entry_t,
} from '../include/linux/swapops.js';
import {
  HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_INOUT_FLAGS,
  HMM_PFN_FLAGS_SHIFT, hmm_pfn_flags, hmm_pfn_make, hmm_pfn_flags_order, type hmm_range,
} from '../include/linux/hmm.js';
import { EBUSY, EFAULT, EINVAL, EPERM } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { count_event, trace_event, trace_event_begin } from '../lib/sim/trace.js';
import { pfn_to_page, is_zero_pfn } from './page_alloc.js';

const HMM_PFN_FLAGS_BASE = 2 ** HMM_PFN_FLAGS_SHIFT;
import { pte_offset_map } from './pgtable.js';
import { handle_mm_fault, migration_entry_wait } from './memory.js';
import { walk_page_range, ACTION_CONTINUE, PGWALK_RDLOCK, type mm_walk, type mm_walk_ops } from './pagewalk.js';
import { mmu_interval_check_retry } from './mmu_notifier.js';
import { mmap_assert_locked } from './mmap_lock.js';


/* what an entry needs: HMM_NEED_FAULT, plus HMM_NEED_WRITE_FAULT for write */
const HMM_NEED_FAULT = 1 << 0;
const HMM_NEED_WRITE_FAULT = 1 << 1;
const HMM_NEED_ALL_BITS = HMM_NEED_FAULT | HMM_NEED_WRITE_FAULT;

/* how a walk step ends besides 0 / -errno: the outer loop has work to do */
const HMM_WALK_FAULT = 1;           /* fault [last, fault_end) of fault_vma */
const HMM_WALK_MIGRATION_WAIT = 2;  /* wait for the migration entry wait_entry, then restart */

/** struct hmm_vma_walk - the state of one hmm_range_fault() call. */
interface hmm_vma_walk {
  range: hmm_range;
  last: number;                     /* first address whose element still holds its request */
  fault_vma: vm_area_struct | null; /* set with HMM_WALK_FAULT */
  fault_end: number;
  required_fault: number;
  wait_entry: swp_entry_t;          /* set with HMM_WALK_MIGRATION_WAIT */
}

/* hmm_pte_need_fault() - what the request of one element needs, given the CPU's flags */
function hmm_pte_need_fault(range: hmm_range, pfn_req: number, cpu_flags: number): number {
  const req = (hmm_pfn_flags(pfn_req) & range.pfn_flags_mask) | range.default_flags;
  if (!(req & HMM_PFN_REQ_FAULT)) return 0;
  if ((req & HMM_PFN_REQ_WRITE) && !(cpu_flags & HMM_PFN_WRITE)) return HMM_NEED_FAULT | HMM_NEED_WRITE_FAULT;
  if (!(cpu_flags & HMM_PFN_VALID)) return HMM_NEED_FAULT;
  return 0;
}

/* hmm_range_need_fault() - the union of what the elements of [addr, end) need */
function hmm_range_need_fault(range: hmm_range, addr: number, end: number, cpu_flags: number): number {
  if (!((range.default_flags | range.pfn_flags_mask) & HMM_PFN_REQ_FAULT)) return 0;
  let required = 0;
  for (let i = (addr - range.start) / PAGE_SIZE; addr < end; addr += PAGE_SIZE, i++) {
    required |= hmm_pte_need_fault(range, range.hmm_pfns[i], cpu_flags);
    if (required === HMM_NEED_ALL_BITS) break;
  }
  return required;
}

/* hmm_pfns_fill() - every element of [addr, end) gets cpu_flags (keeping its sticky bits) */
function hmm_pfns_fill(range: hmm_range, addr: number, end: number, cpu_flags: number): number {
  const pfns = range.hmm_pfns;
  for (let i = (addr - range.start) / PAGE_SIZE; addr < end; addr += PAGE_SIZE, i++) {
    pfns[i] = hmm_pfn_make(0, (hmm_pfn_flags(pfns[i]) & HMM_PFN_INOUT_FLAGS) | cpu_flags);
  }
  return 0;
}

/* hmm_vma_fault() in Linux faults here; this model hands the span to the outer loop */
function hmm_vma_fault(w: hmm_vma_walk, vma: vm_area_struct, addr: number, end: number, required: number): number {
  w.last = addr;
  w.fault_vma = vma;
  w.fault_end = end;
  w.required_fault = required;
  return HMM_WALK_FAULT;
}

/* hmm_vma_walk_hole() - pte_hole: nothing mapped at [addr, end); walk.vma is null in a gap between VMAs */
function hmm_vma_walk_hole(addr: number, end: number, _depth: number, walk: mm_walk<hmm_vma_walk>): number {
  const w = walk.private, vma = walk.vma;
  const required = hmm_range_need_fault(w.range, addr, end, 0);
  if (vma === null) {
    if (required) return -EFAULT;
    return hmm_pfns_fill(w.range, addr, end, HMM_PFN_ERROR);
  }
  if (required) return hmm_vma_fault(w, vma, addr, end, required);
  return hmm_pfns_fill(w.range, addr, end, 0);
}

/*
 * hmm_vma_handle_leaf() - a huge leaf (PMD, or PUD) maps [addr, end): each
 * small page gets the leaf's flags and its map order.
 */
function hmm_vma_handle_leaf(w: hmm_vma_walk, vma: vm_area_struct, addr: number, end: number, leaf: number,
                             order: number, size: number): number {
  const range = w.range;
  const cpu_flags = pte_protnone(leaf) ? 0
    : ((leaf & _PAGE_RW) ? HMM_PFN_VALID | HMM_PFN_WRITE : HMM_PFN_VALID) | hmm_pfn_flags_order(order);
  const required = hmm_range_need_fault(range, addr, end, cpu_flags);
  if (required) return hmm_vma_fault(w, vma, addr, end, required);
  const base = Math.floor((leaf - (leaf & (PAGE_SIZE - 1))) / size) * (size / PAGE_SIZE);   /* pfn of the leaf */
  let pfn = base + (addr % size) / PAGE_SIZE;
  const pfns = range.hmm_pfns;
  for (let i = (addr - range.start) / PAGE_SIZE; addr < end; addr += PAGE_SIZE, i++, pfn++) {
    pfns[i] = hmm_pfn_make(pfn, sticky(pfns[i]) | cpu_flags);
  }
  return 0;
}

/* hmm_is_device_private_entry() - a device-private page of the caller's own device? */
function hmm_is_device_private_entry(range: hmm_range, entry: swp_entry_t): boolean {
  return is_device_private_entry(entry) && pfn_to_page(swp_offset_pfn(entry)).pgmap!.owner === range.dev_private_owner;
}

/* the sticky bits of a request element, kept in its output */
function sticky(req: number): number {
  return req < HMM_PFN_FLAGS_BASE ? 0 : hmm_pfn_flags(req) & HMM_PFN_INOUT_FLAGS;
}

/*
 * hmm_vma_handle_nonpresent() - a swap-type entry mapping [addr, end):
 * one PTE (order 0, end = addr + PAGE_SIZE) or a whole PMD (order 9).
 * @fault_end: how far a fault goes (Linux faults up to the end of the PMD
 * being walked). Returns 0 with the elements written, or a walk outcome.
 */
function hmm_vma_handle_nonpresent(w: hmm_vma_walk, vma: vm_area_struct, addr: number, end: number,
                                   fault_end: number, entry: swp_entry_t, order: number): number {
  const range = w.range;
  if (hmm_is_device_private_entry(range, entry)) {
    /* never faulted: the owner's device can use its own page as it is */
    let cpu_flags = HMM_PFN_VALID | hmm_pfn_flags_order(order);
    if (is_writable_device_private_entry(entry)) cpu_flags |= HMM_PFN_WRITE;
    let pfn = swp_offset_pfn(entry) + (order ? (addr % PMD_SIZE) / PAGE_SIZE : 0);
    const pfns = range.hmm_pfns;
    for (let i = (addr - range.start) / PAGE_SIZE; addr < end; addr += PAGE_SIZE, i++, pfn++) {
      pfns[i] = hmm_pfn_make(pfn, sticky(pfns[i]) | cpu_flags);
    }
    return 0;
  }
  const required = hmm_range_need_fault(range, addr, end, 0);
  /* another device's private THP reads as an error (hmm_vma_handle_absent_pmd); its PTE-mapped pages as empty */
  if (!required) return hmm_pfns_fill(range, addr, end, order !== 0 && is_device_private_entry(entry) ? HMM_PFN_ERROR : 0);
  /* swap, another device's private page, a device-exclusive entry: the fault brings the page back */
  if (!non_swap_entry(entry) || is_device_private_entry(entry) || is_device_exclusive_entry(entry)) {
    return hmm_vma_fault(w, vma, addr, fault_end, required);
  }
  if (is_migration_entry(entry)) {
    w.last = addr;
    w.wait_entry = entry;
    return HMM_WALK_MIGRATION_WAIT;
  }
  return -EFAULT;                     /* hwpoison, markers: nothing a fault can repair */
}

/*
 * hmm_vma_handle_pte() - one PTE that is not a plain present page: none,
 * swap-type, special or PROT_NONE. Writes element i, or returns a walk
 * outcome (a fault spans to @end, the end of the PMD being walked).
 */
function hmm_vma_handle_pte(w: hmm_vma_walk, vma: vm_area_struct, addr: number, end: number, pte: number,
                            i: number): number {
  const range = w.range, pfns = range.hmm_pfns, req = pfns[i];
  if (pte === 0) {
    const required = hmm_pte_need_fault(range, req, 0);
    if (required) return hmm_vma_fault(w, vma, addr, end, required);
    pfns[i] = hmm_pfn_make(0, sticky(req));
    return 0;
  }
  if ((pte & (_PAGE_PRESENT | _PAGE_PROTNONE)) === 0) {
    return hmm_vma_handle_nonpresent(w, vma, addr, addr + PAGE_SIZE, end, pte_to_swp_entry(pte), 0);
  }
  /* PROT_NONE is present to the kernel but gives the device nothing */
  const cpu_flags = (pte & _PAGE_PRESENT) === 0 ? 0 : (pte & _PAGE_RW) ? HMM_PFN_VALID | HMM_PFN_WRITE : HMM_PFN_VALID;
  const required = hmm_pte_need_fault(range, req, cpu_flags);
  if (required) return hmm_vma_fault(w, vma, addr, end, required);
  const pfn = (pte - (pte & (PAGE_SIZE - 1))) / PAGE_SIZE;
  if ((pte & _PAGE_SPECIAL) && !is_zero_pfn(pfn)) {
    /* no struct page behind it (vmf_insert_pfn): the zero page alone is reported as a page */
    if (hmm_pte_need_fault(range, req, 0)) return -EFAULT;
    pfns[i] = hmm_pfn_make(0, sticky(req) | HMM_PFN_ERROR);
    return 0;
  }
  pfns[i] = hmm_pfn_make(pfn, sticky(req) | cpu_flags);
  return 0;
}

/*
 * hmm_vma_walk_ptes() - the PTEs of [addr, end) inside one PMD. This is
 * the hot path of a snapshot: a present PTE mapping a page is handled
 * inline, everything else by hmm_vma_handle_pte().
 */
function hmm_vma_walk_ptes(walk: mm_walk<hmm_vma_walk>, addr: number, end: number): number {
  const w = walk.private, vma = walk.vma!;
  const range = w.range, mm = vma.vm_mm, pgd = mm.pgd, pfns = range.hmm_pfns;
  const may_fault = ((range.default_flags | range.pfn_flags_mask) & HMM_PFN_REQ_FAULT) !== 0;
  const ptep = pte_offset_map(mm, addr);
  if (ptep < 0) return hmm_vma_walk_hole(addr, end, -1, walk);
  /* small-integer indexes keep the typed-array accesses fast (ranges are below 2^31 pages) */
  const i0 = ((addr - range.start) / PAGE_SIZE) | 0, n = ((end - addr) / PAGE_SIZE) | 0;
  /* the constants as locals: imported bindings are re-read on every use */
  const P = _PAGE_PRESENT, PS = _PAGE_PRESENT | _PAGE_SPECIAL, RW = _PAGE_RW, LOW = PAGE_SIZE - 1;
  const V = HMM_PFN_VALID, VW = HMM_PFN_VALID | HMM_PFN_WRITE, BASE = HMM_PFN_FLAGS_BASE;
  for (let k = 0; k < n; k++) {
    const pte = pgd.load(ptep + k);
    const i = i0 + k;
    if ((pte & PS) === P) {
      const cpu_flags = (pte & RW) ? VW : V;
      const req = pfns[i];
      if (may_fault) {
        const required = hmm_pte_need_fault(range, req, cpu_flags);
        if (required) return hmm_vma_fault(w, vma, addr + k * PAGE_SIZE, end, required);
      }
      const flags = req < BASE ? cpu_flags : sticky(req) | cpu_flags;
      pfns[i] = flags * BASE + (pte - (pte & LOW)) / (LOW + 1);
      continue;
    }
    const r = hmm_vma_handle_pte(w, vma, addr + k * PAGE_SIZE, end, pte, i);
    if (r) return r;
  }
  return 0;
}

/* hmm_vma_handle_pmd() - [addr, end) under one PMD entry (or a 2 MiB hugetlb entry) of value pmd */
function hmm_vma_handle_pmd(walk: mm_walk<hmm_vma_walk>, addr: number, end: number, pmd: number): number {
  const w = walk.private, vma = walk.vma!;
  if (pmd === 0) return hmm_vma_walk_hole(addr, end, -1, walk);
  if (pmd_is_table(pmd)) return hmm_vma_walk_ptes(walk, addr, end);
  if (pmd & (_PAGE_PRESENT | _PAGE_PROTNONE)) {
    if (pmd & _PAGE_PSE) return hmm_vma_handle_leaf(w, vma, addr, end, pmd, HPAGE_PMD_ORDER, PMD_SIZE);
    return hmm_vma_walk_hole(addr, end, -1, walk);
  }
  /* a swap-type PMD: THP migration entry or a device-private THP */
  const entry = pte_to_swp_entry(pmd);
  if (is_migration_entry(entry) || is_device_private_entry(entry)) {
    return hmm_vma_handle_nonpresent(w, vma, addr, end, end, entry, HPAGE_PMD_ORDER);
  }
  if (hmm_range_need_fault(w.range, addr, end, 0)) return -EFAULT;
  return hmm_pfns_fill(w.range, addr, end, HMM_PFN_ERROR);
}

/* hmm_vma_walk_pmd() - pmd_entry: [addr, end), covered by one non-empty PMD entry */
function hmm_vma_walk_pmd(pmdp: number, addr: number, end: number, walk: mm_walk<hmm_vma_walk>): number {
  return hmm_vma_handle_pmd(walk, addr, end, walk.mm.pgd.load(pmdp));
}

/* hmm_vma_walk_pud() - pud_entry: a 1 GiB leaf is reported whole here; a PMD page is walked below */
function hmm_vma_walk_pud(pudp: number, addr: number, end: number, walk: mm_walk<hmm_vma_walk>): number {
  const pud = walk.mm.pgd.load(pudp);
  if (!pud_leaf(pud)) return 0;
  walk.action = ACTION_CONTINUE;
  return hmm_vma_handle_leaf(walk.private, walk.vma!, addr, end, pud, PUD_SHIFT - PAGE_SHIFT, PUD_SIZE);
}

/* hmm_vma_walk_hugetlb_entry() - one huge page of a hugetlb VMA: a 2 MiB PMD entry or a 1 GiB PUD entry */
function hmm_vma_walk_hugetlb_entry(ptep: number, hmask: number, addr: number, end: number,
                                    walk: mm_walk<hmm_vma_walk>): number {
  const e = walk.mm.pgd.load(ptep);
  if (-hmask !== PUD_SIZE) return hmm_vma_handle_pmd(walk, addr, end, e);
  if (!pud_leaf(e)) return hmm_vma_walk_hole(addr, end, -1, walk);
  return hmm_vma_handle_leaf(walk.private, walk.vma!, addr, end, e, PUD_SHIFT - PAGE_SHIFT, PUD_SIZE);
}

/*
 * hmm_vma_walk_test() - test_walk: may the walk look inside this VMA? Not
 * if it maps I/O or raw pfns, or cannot be read: those pages are ERROR
 * (-EFAULT if a fault was asked). Return: 0 to walk, 1 to skip, or -EFAULT.
 */
function hmm_vma_walk_test(start: number, end: number, walk: mm_walk<hmm_vma_walk>): number {
  const w = walk.private, vma = walk.vma!;
  if (!(vma.vm_flags & (VM_IO | VM_PFNMAP)) && (vma.vm_flags & VM_READ)) return 0;
  if (hmm_range_need_fault(w.range, start, end, 0)) return -EFAULT;
  hmm_pfns_fill(w.range, start, end, HMM_PFN_ERROR);
  return 1;
}

/*
 * hmm_walk_ops - what hmm_range_fault() does with each part of the range.
 * A walk returns 0, -errno, or an HMM_WALK_* request for the outer loop.
 * None of the callbacks sleeps: faults and waits happen between walks.
 */
const hmm_walk_ops: mm_walk_ops<hmm_vma_walk> = Object.freeze({
  pud_entry: hmm_vma_walk_pud,
  pmd_entry: hmm_vma_walk_pmd,
  pte_hole: hmm_vma_walk_hole,
  hugetlb_entry: hmm_vma_walk_hugetlb_entry,
  test_walk: hmm_vma_walk_test,
  walk_lock: PGWALK_RDLOCK,
});

/* do the fault the walk asked for: -EBUSY to restart the walk, or -EPERM / -EFAULT */
function* hmm_do_fault(w: hmm_vma_walk): Sleepable<number> {
  const vma = w.fault_vma!;
  let fault_flags = FAULT_FLAG_REMOTE;
  if (w.required_fault & HMM_NEED_WRITE_FAULT) {
    if (!(vma.vm_flags & VM_WRITE)) return -EPERM;
    fault_flags |= FAULT_FLAG_WRITE;
  }
  for (let addr = w.last; addr < w.fault_end; addr += PAGE_SIZE) {
    count_event('hmm_range_fault_fault');
    if ((yield* handle_mm_fault(vma, addr, fault_flags)) & VM_FAULT_ERROR) return -EFAULT;
  }
  return -EBUSY;
}

/**
 * hmm_range_fault() - fill range.hmm_pfns with the CPU's view of
 * [range.start, range.end), faulting pages in where the request says so.
 * @range: the range, its notifier and notifier_seq (from
 *         mmu_interval_read_begin()), and the requests in hmm_pfns,
 *         default_flags and pfn_flags_mask (include/linux/hmm.ts).
 *
 * For each page, the output is VALID (+WRITE) with the pfn of the page
 * the CPU maps (the zero page included; a device-private page if its
 * pgmap owner is range.dev_private_owner, reported without faulting),
 * 0 for "nothing there" when no fault was requested, or ERROR for pages
 * no device may use. Each output also carries the CPU mapping's order.
 * The outputs are a snapshot: they are only valid if, under the driver's
 * lock, mmu_interval_read_retry(notifier, notifier_seq) is false.
 *
 * Context: mmap_lock of range.notifier.mm held for read; may sleep
 * (faults, migration-entry waits). The driver lock must not be held.
 * Return: 0 on success, or
 *   -EINVAL  empty or unaligned range, or hmm_pfns too short;
 *   -EBUSY   an invalidation hit the notifier since notifier_seq (possibly
 *            after this call faulted pages in): take a new seq and retry;
 *   -EFAULT  a requested page has no VMA, sits in a VM_IO/VM_PFNMAP or
 *            unreadable VMA, is a special or poisoned entry, or its fault
 *            failed (SIGBUS, SIGSEGV, OOM);
 *   -EPERM   write requested in a VMA without VM_WRITE.
 * (Linux also lists -ENOMEM for allocation failures inside the walk,
 * which this model's walk does not have: a failed fault is -EFAULT.)
 */
export function* hmm_range_fault(range: hmm_range): Sleepable<number> {
  const mm = range.notifier.mm;
  mmap_assert_locked(mm);
  if (!(range.start < range.end) || range.start % PAGE_SIZE || range.end % PAGE_SIZE) return -EINVAL;
  if (range.hmm_pfns.length < (range.end - range.start) / PAGE_SIZE) return -EINVAL;
  if ((range.end - range.start) / PAGE_SIZE >= 2 ** 31) return -EINVAL;
  const w: hmm_vma_walk = {
    range, last: range.start, fault_vma: null, fault_end: 0, required_fault: 0, wait_entry: 0,
  };
  count_event('hmm_range_fault');
  trace_event_begin('hmm_range_fault', {
    mm: mm.id, start: range.start, end: range.end, default_flags: range.default_flags, seq: range.notifier_seq,
  });
  let ret: number;
  do {
    if (mmu_interval_check_retry(range.notifier, range.notifier_seq)) { ret = -EBUSY; break; }
    ret = yield* walk_page_range(mm, w.last, range.end, hmm_walk_ops, w);
    if (ret === HMM_WALK_FAULT) {
      ret = yield* hmm_do_fault(w);
    } else if (ret === HMM_WALK_MIGRATION_WAIT) {
      yield* migration_entry_wait(mm, w.wait_entry);
      ret = -EBUSY;
    }
  } while (ret === -EBUSY);
  trace_event('hmm_range_fault', {
    mm: mm.id, start: range.start, end: range.end, seq: range.notifier_seq, ret,
  });
  return ret;
}
