/*
 * tools/testing/fuzz/v8_view.ts - what the HMM v8 (2015) mirror page
 * tables of a process say about a range, for the fuzzer's checks of
 * behaviour the v8 design itself has and the shadow model cannot predict.
 */
import { PAGE_SIZE, VM_WRITE } from '../../../include/linux/mm.js';
import { EFAULT } from '../../../include/uapi/asm-generic/errno.js';
import type { mm_struct } from '../../../include/linux/mm_types.js';
import { HMM_PTE_WRITE } from '../../../include/linux/gpt.js';
import { hmm_pte_valid, hmm_pte_test_valid_dev } from '../../../include/linux/hmm_v8.js';
import { vma_lookup } from '../../../mm/vma.js';
import { hmm_of, mirror_pt } from '../../../mm/hmm_v8/hmm.js';
import { hmm_pt_lookup, hmm_pt_load } from '../../../mm/hmm_v8/hmm_pt.js';

/**
 * v8WritableMigratedBack() - does some mirror of @mm hold a writable
 * system-memory entry for each of the @n pages from @addr although their
 * VMA has no VM_WRITE? Only the migration back to system memory makes
 * one: hmm_mirror_migrate_back() (2015 patch 25) gives every destination
 * entry HMM_PTE_WRITE whatever the VMA allows, and the device keeps
 * mapping the new page through it, so a device write there succeeds.
 * (A device fault fills a system entry writable only from a writable CPU
 * PTE; mprotect write-protects mirrors.) Pages of the range whose VMA
 * has VM_WRITE need nothing (the write is allowed there); at least one
 * page must be such a read-only one (seed 99142: a WRITE over a read-only
 * migrated-back page and on into writable ones).
 */
export function v8WritableMigratedBack(mm: mm_struct, addr: number, n: number): boolean {
  const h = hmm_of(mm);
  if (h === null) return false;
  let readonly = 0;
  for (let i = 0; i < n; i++) {
    const a = addr + i * PAGE_SIZE;
    const vma = vma_lookup(mm, a);
    if (vma === null) return false;
    if (vma.vm_flags & VM_WRITE) continue;
    readonly++;
    const writable = h.mirrors.some((m) => {
      const ptr = hmm_pt_lookup(mirror_pt(m), a);
      const e = ptr < 0 ? 0 : hmm_pt_load(mirror_pt(m), ptr);
      return hmm_pte_valid(e) && !hmm_pte_test_valid_dev(e) && (e & HMM_PTE_WRITE) !== 0;
    });
    if (!writable) return false;
  }
  return readonly > 0;
}

/**
 * v8MigratedBackWriteTolerated() - may a device WRITE of the @n pages from
 * page @first that the model denies (-EACCES: a read-only page first)
 * have ended with @r? v8 maps a page migrated back from the device
 * writable for the device even in a read-only VMA (2015 patch 25, see
 * v8WritableMigratedBack()), so:
 *  - the write succeeds (r = 0) when every read-only page of the range has
 *    such an entry (seed 20251);
 *  - it ends with -EFAULT when it runs on past the VMA: the device writes
 *    the migrated-back pages, faults on the hole and hmm_mirror_fault()
 *    finds no VMA there (seed 99579: MIGRATE_TO moved the last two pages
 *    of a read-only VMA, a device READ faulted them back through
 *    hmm_mm_fault(), the WRITE started on them and ran past the VMA).
 * @mapped(vpn) says whether the model maps page vpn. The bytes written
 * are the model's own (a denied write writes what is there), so the model
 * stays exact either way.
 */
export function v8MigratedBackWriteTolerated(mm: mm_struct, first: number, n: number, r: number,
                                             mapped: (vpn: number) => boolean): boolean {
  if (r === 0) return v8WritableMigratedBack(mm, first * PAGE_SIZE, n);
  if (r !== -EFAULT) return false;
  let hole = first;
  while (hole < first + n && mapped(hole)) hole++;
  return hole > first && hole < first + n && v8WritableMigratedBack(mm, first * PAGE_SIZE, hole - first);
}
