/*
 * drivers/iommu/io-pgfault.ts - I/O page faults: a device's PRI Page
 * Request is handed to a worker that resolves it with handle_mm_fault()
 * in the bound process's mm and answers with a Page Response.
 *
 * Follows Linux 6.8-6.9: drivers/iommu/io-pgfault.c (iommu_report_device_fault
 * queues the group on the iopf workqueue; the handler answers with
 * iopf_group_response) and the SVA handler in drivers/iommu/iommu-sva.c
 * (iommu_sva_iopf_handler -> iommu_sva_handle_mm: mmget_not_zero,
 * mmap_read_lock, vma_lookup, VMA permission check, handle_mm_fault with
 * FAULT_FLAG_REMOTE, INVALID on any error).
 *
 * Simplified: every request is a group of one (LAST_PAGE); each group is
 * one short-lived kernel thread instead of a work item on a shared
 * workqueue; no partial-group discard.
 */
import type { mm_struct } from '../../include/linux/mm_types.js';
import {
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID, IOMMU_FAULT_PERM_READ, IOMMU_FAULT_PERM_WRITE, IOMMU_FAULT_PERM_EXEC,
  IOMMU_FAULT_PERM_PRIV, IOMMU_PAGE_RESP_INVALID, IOMMU_PAGE_RESP_SUCCESS, iommu_page_response_names,
  type iommu_fault_page_request, type iommu_sva, type iommu_sva_device,
} from '../../include/linux/iommu.js';
import {
  VM_READ, VM_WRITE, VM_EXEC, FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, FAULT_FLAG_USER, FAULT_FLAG_INSTRUCTION,
  VM_FAULT_ERROR, VM_FAULT_RETRY, FAULT_FLAG_TRIED,
} from '../../include/linux/mm.js';
import { EINVAL } from '../../include/uapi/asm-generic/errno.js';
import { kthread_run, type Sleepable } from '../../lib/sim/sched.js';
import { wake_up_all } from '../../lib/locking/wait.js';
import { count_event, trace_event } from '../../lib/sim/trace.js';
import { mmap_read_lock, mmap_read_unlock } from '../../mm/mmap_lock.js';
import { vma_lookup } from '../../mm/vma.js';
import { handle_mm_fault } from '../../mm/memory.js';
import { mmget_not_zero, mmput } from '../../mm/task.js';
import { iommuSvaBondOf, iopf_flush_wq } from './iommu-sva.js';

/**
 * iommu_sva_handle_mm() - resolve one page request in @mm as a CPU fault
 * on another process's behalf would be.
 * Context: the iopf worker; may sleep (mmap_lock, the fault itself).
 * Return: IOMMU_PAGE_RESP_SUCCESS, or IOMMU_PAGE_RESP_INVALID when the
 * request has no PASID, the mm is exiting, no VMA covers the address,
 * the VMA forbids the access, or the fault failed (SIGSEGV/SIGBUS/OOM).
 */
export function* iommu_sva_handle_mm(prm: iommu_fault_page_request, mm: mm_struct): Sleepable<number> {
  if (!(prm.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID)) return IOMMU_PAGE_RESP_INVALID;
  if (!mmget_not_zero(mm)) return IOMMU_PAGE_RESP_INVALID;
  let access = 0, flags = FAULT_FLAG_REMOTE;
  if (prm.perm & IOMMU_FAULT_PERM_READ) access |= VM_READ;
  if (prm.perm & IOMMU_FAULT_PERM_WRITE) { access |= VM_WRITE; flags |= FAULT_FLAG_WRITE; }
  if (prm.perm & IOMMU_FAULT_PERM_EXEC) { access |= VM_EXEC; flags |= FAULT_FLAG_INSTRUCTION; }
  if (!(prm.perm & IOMMU_FAULT_PERM_PRIV)) flags |= FAULT_FLAG_USER;
  let status = IOMMU_PAGE_RESP_INVALID;
  for (;;) {
    yield* mmap_read_lock(mm);
    const vma = vma_lookup(mm, prm.addr);
    if (vma === null || (access & ~vma.vm_flags) !== 0) { mmap_read_unlock(mm); break; }
    const ret = yield* handle_mm_fault(vma, prm.addr, flags);
    mmap_read_unlock(mm);
    /* VM_FAULT_RETRY: the fault waited for a folio; fault again, as do_user_addr_fault does */
    if (ret & VM_FAULT_RETRY) { flags |= FAULT_FLAG_TRIED; continue; }
    if (!(ret & VM_FAULT_ERROR)) status = IOMMU_PAGE_RESP_SUCCESS;
    break;
  }
  yield* mmput(mm);
  return status;
}

/* the worker of one page-request group (iopf_handler) */
function* iopf_handler(dev: iommu_sva_device, bond: iommu_sva, prm: iommu_fault_page_request): Sleepable {
  const code = bond.released ? IOMMU_PAGE_RESP_INVALID : yield* iommu_sva_handle_mm(prm, bond.mm);
  trace_event('iommu_page_response', { dev: dev.name, pasid: prm.pasid, addr: prm.addr, code: iommu_page_response_names[code]! });
  count_event(code === IOMMU_PAGE_RESP_SUCCESS ? 'iopf_success' : 'iopf_invalid');
  dev.sva_ops.page_response({ pasid: prm.pasid, grpid: prm.grpid, code });
  if (--bond.iopf_pending === 0) wake_up_all(iopf_flush_wq);
}

/**
 * iommu_report_device_fault() - the IOMMU's PRI queue delivered @prm from
 * @dev: find the PASID's bond and queue the request for the worker.
 * Context: the IOMMU's event handler (any context); never sleeps.
 * Return: 0, or -EINVAL when no live bond owns the PASID (the caller
 * answers INVALID itself, as the IOMMU driver does for stray requests).
 */
export function iommu_report_device_fault(dev: iommu_sva_device, prm: iommu_fault_page_request): number {
  const bond = iommuSvaBondOf(dev, prm.pasid);
  if (bond === null) return -EINVAL;
  bond.page_requests++;
  bond.iopf_pending++;
  count_event('iopf_page_request');
  trace_event('iommu_page_request', { dev: dev.name, pasid: prm.pasid, addr: prm.addr, perm: prm.perm });
  kthread_run(`iopf-${dev.name}`, () => iopf_handler(dev, bond, prm));
  return 0;
}
