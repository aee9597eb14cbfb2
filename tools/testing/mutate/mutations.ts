/*
 * tools/testing/mutate/mutations.ts - the step-order mutations `npm run
 * mutate` applies, one at a time, to the key HMM functions.
 *
 * Each mutation is one or more text edits. An edit names the files it may
 * live in (path globs, so that a function moving to another file of the
 * same family, e.g. mm/migrate_device*.ts or mm/pagewalk.ts, is still
 * found) and an anchor: exact code text that must occur exactly once in
 * those files. An anchor found zero or several times is an error the tool
 * reports loudly: the mutation list must follow the code, never silently
 * test nothing. The kinds: swap two steps,
 * drop a recheck, move a sequence write outside its lock, skip a notifier
 * call, take a reference late (plus "weaken a permission", a dropped
 * check of the same family).
 *
 * suites: alternatives of a regex over dist/test paths naming the suites
 * that should kill the mutation, run in the order written (fast ones
 * first; the first failure kills), and/or 'selftests' for the 98 ported
 * self-test runs.
 */

export type MutationKind = 'swap' | 'drop-recheck' | 'seq-outside-lock' | 'skip-notifier' | 'late-ref' | 'weaken';

export interface MutationEdit { files: string[]; anchor: string; replace: string }

export interface Mutation {
  id: string;
  kind: MutationKind;
  what: string;
  edits: MutationEdit[];
  suites: string;
}

const HMM = ['mm/hmm.ts', 'mm/pagewalk.ts', 'mm/hmm_*.ts'];
const MN = ['mm/mmu_notifier.ts'];
const MIG = ['mm/migrate_device*.ts'];
const MEM = ['mm/memory.ts', 'mm/memory_*.ts'];
const FORK = ['mm/fork.ts'];
const DRV = ['lib/test_hmm*.ts'];
const V8 = ['mm/hmm_v8/*.ts'];

/* suite groups, fastest first */
const S_HMM = 'test/mm/hmm\\.test|test/lib/sim/preempt_point|test/lib/test_hmm_races';
const S_MIG = 'test/mm/migrate_device|test/mm/device_private_thp|test/lib/sim/preempt_point';
const S_MN = 'test/mm/mmu_notifier|test/mm/hmm\\.test|test/lib/sim/preempt_point';
const S_RACE = 'test/lib/sim/preempt_point|test/lib/test_hmm_races';
const S_FORK = 'test/mm/task|test/mm/migrate_device|test/mm/device_private_thp';
const S_V8 = 'test/mm/hmm_v8/|test/drivers/hmm_dummy';

export const MUTATIONS: readonly Mutation[] = [
  /* ---- mm/hmm.ts: hmm_range_fault() and its walk ---- */
  { id: 'hmm-no-seq-check', kind: 'drop-recheck', what: 'hmm_range_fault: no notifier seq check before each walk',
    edits: [{ files: HMM, anchor: 'if (mmu_interval_check_retry(range.notifier, range.notifier_seq)) { ret = -EBUSY; break; }', replace: '' }],
    suites: S_HMM },
  { id: 'hmm-write-fault-no-vm-write', kind: 'weaken', what: 'hmm_do_fault: a write fault without the VM_WRITE check',
    edits: [{ files: HMM, anchor: 'if (!(vma.vm_flags & VM_WRITE)) return -EPERM;\n    fault_flags |= FAULT_FLAG_WRITE;', replace: 'fault_flags |= FAULT_FLAG_WRITE;' }],
    suites: S_HMM },
  { id: 'hmm-no-vm-read', kind: 'weaken', what: 'hmm_vma_walk_test: walks a VMA without VM_READ',
    edits: [{ files: HMM, anchor: 'if (!(vma.vm_flags & (VM_IO | VM_PFNMAP)) && (vma.vm_flags & VM_READ)) return 0;', replace: 'if (!(vma.vm_flags & (VM_IO | VM_PFNMAP))) return 0;' }],
    suites: S_HMM },
  { id: 'hmm-no-rewalk-after-fault', kind: 'drop-recheck', what: 'hmm_do_fault: returns 0 instead of -EBUSY (no re-walk of what it faulted)',
    edits: [{ files: HMM, anchor: "if ((yield* handle_mm_fault(vma, addr, fault_flags)) & VM_FAULT_ERROR) return -EFAULT;\n  }\n  return -EBUSY;", replace: "if ((yield* handle_mm_fault(vma, addr, fault_flags)) & VM_FAULT_ERROR) return -EFAULT;\n  }\n  return 0;" }],
    suites: S_HMM },
  { id: 'hmm-ro-pte-writable', kind: 'weaken', what: 'hmm_vma_walk_ptes: a read-only PTE reported writable',
    edits: [{ files: HMM, anchor: 'const cpu_flags = (pte & RW) ? VW : V;', replace: 'const cpu_flags = VW;' }],
    suites: S_HMM },
  { id: 'hmm-devpriv-always-writable', kind: 'weaken', what: "a read-only device-private entry of the caller's device reported writable",
    edits: [{ files: HMM, anchor: 'if (is_writable_device_private_entry(entry)) cpu_flags |= HMM_PFN_WRITE;', replace: 'cpu_flags |= HMM_PFN_WRITE;' }],
    /* survived the first run; killed by the dmirror test "a WRITE into its own device page that fork shared read-only" */
    suites: 'test/lib/test_hmm\\.test|' + S_HMM },
  { id: 'hmm-migration-entry-as-error', kind: 'drop-recheck', what: 'a migration entry is not waited for (reported as -EFAULT)',
    edits: [{ files: HMM, anchor: '    w.last = addr;\n    w.wait_entry = entry;\n    return HMM_WALK_MIGRATION_WAIT;', replace: '    return -EFAULT;' }],
    suites: S_HMM + '|' + S_RACE },

  /* ---- mm/mmu_notifier.ts ---- */
  { id: 'mn-no-odd-seq', kind: 'seq-outside-lock', what: 'mn_itree_inv_start_range: the seq is not made odd',
    edits: [{ files: MN, anchor: 'if (subs.length > 0) s.invalidate_seq |= 1;', replace: '' }],
    suites: S_MN },
  { id: 'mn-no-seq-bump-at-end', kind: 'seq-outside-lock', what: 'mn_itree_inv_end: the seq is not advanced',
    edits: [{ files: MN, anchor: '  s.invalidate_seq++;\n  for (const d of s.deferred_list) {', replace: '  for (const d of s.deferred_list) {' }],
    suites: S_MN },
  { id: 'mn-no-wake-at-end', kind: 'skip-notifier', what: 'mn_itree_inv_end: waiting readers are not woken',
    edits: [{ files: MN, anchor: '  s.deferred_list = [];\n  spin_unlock(s.lock);\n  wake_up_all(s.wq);', replace: '  s.deferred_list = [];\n  spin_unlock(s.lock);' }],
    suites: S_MN },
  { id: 'mn-read-begin-no-wait', kind: 'drop-recheck', what: 'mmu_interval_read_begin: does not wait for the invalidation in progress',
    edits: [{ files: MN, anchor: '    yield* wait_event(s.wq, () => s.invalidate_seq !== seq);', replace: '' }],
    suites: S_MN },
  { id: 'mn-read-retry-never', kind: 'drop-recheck', what: 'mmu_interval_read_retry: never asks for a retry',
    edits: [{ files: MN, anchor: 'const retry = sub.invalidate_seq !== seq || should_fail(fail_hmm_retry, 1);', replace: 'const retry = false;' }],
    suites: S_MN },
  { id: 'mn-skip-interval-invalidate', kind: 'skip-notifier', what: 'mn_itree_invalidate: interval notifiers are not called',
    edits: [{ files: MN, anchor: 'const ok = yield* sub.ops.invalidate(sub, range, seq);', replace: 'const ok = true;' }],
    suites: S_MN },
  { id: 'mn-skip-range-start', kind: 'skip-notifier', what: 'invalidate_range_start: list subscribers are not called',
    edits: [{ files: MN, anchor: 'const r = yield* sub.ops.invalidate_range_start(sub, range);', replace: 'const r = 0;' }],
    suites: S_MN + '|test/mm/hmm_v8/' },
  { id: 'mn-end-skips-itree', kind: 'skip-notifier', what: 'invalidate_range_end: the interval tree is not told the invalidation ended',
    edits: [{ files: MN, anchor: '  if (s.has_itree) mn_itree_inv_end(s);\n  for (const sub of s.list.slice()) {', replace: '  for (const sub of s.list.slice()) {' }],
    suites: S_MN },

  /* ---- lib/test_hmm*.ts: the dmirror driver ---- */
  { id: 'drv-seq-after-unlock', kind: 'seq-outside-lock', what: 'dmirror_interval_invalidate: the new seq is recorded after the mutex is released',
    edits: [{ files: DRV, anchor: '  mmu_interval_set_seq(mni, cur_seq);\n  dpt_erase_range(d, Math.floor(range.start / PAGE_SIZE), Math.floor(range.end / PAGE_SIZE));\n  mutex_unlock(d.mutex);',
      replace: '  dpt_erase_range(d, Math.floor(range.start / PAGE_SIZE), Math.floor(range.end / PAGE_SIZE));\n  mutex_unlock(d.mutex);\n  mmu_interval_set_seq(mni, cur_seq);' }],
    suites: S_RACE },
  { id: 'drv-no-erase', kind: 'skip-notifier', what: 'dmirror_interval_invalidate: the device page table is not cleared',
    edits: [{ files: DRV, anchor: '  mmu_interval_set_seq(mni, cur_seq);\n  dpt_erase_range(d, Math.floor(range.start / PAGE_SIZE), Math.floor(range.end / PAGE_SIZE));', replace: '  mmu_interval_set_seq(mni, cur_seq);' }],
    suites: S_HMM },
  { id: 'drv-no-read-retry', kind: 'drop-recheck', what: 'dmirror_range_fault: publishes without mmu_interval_read_retry()',
    edits: [{ files: DRV, anchor: 'if (mmu_interval_read_retry(range.notifier, range.notifier_seq) && !dmirror_params.broken_skip_read_retry) {', replace: 'if (false) {' }],
    suites: S_RACE },
  { id: 'drv-publish-outside-lock', kind: 'swap', what: 'dmirror_range_fault: publishes after releasing the mutex',
    edits: [{ files: DRV, anchor: '  ret = dmirror_do_fault(d, range);\n  mutex_unlock(d.mutex);', replace: '  mutex_unlock(d.mutex);\n  ret = dmirror_do_fault(d, range);' }],
    suites: S_RACE },
  { id: 'drv-skip-all-migrate-events', kind: 'skip-notifier', what: "dmirror_interval_invalidate: skips every MIGRATE event, not only its own",
    edits: [{ files: DRV, anchor: 'if (range.event === MMU_NOTIFY_MIGRATE && range.owner === d.mdevice && dmirror_migrating_for(d)) return true;', replace: 'if (range.event === MMU_NOTIFY_MIGRATE) return true;' }],
    suites: S_HMM + '|' + S_MIG },
  { id: 'drv-always-write-tag', kind: 'weaken', what: 'dmirror_do_fault: every entry tagged WRITE',
    edits: [{ files: DRV, anchor: 'if (flags & HMM_PFN_WRITE) tag = DPT_XA_TAG_WRITE;\n    else if (', replace: 'tag = DPT_XA_TAG_WRITE;\n    if (' }],
    suites: 'test/tools/fuzz|' + S_HMM },
  /*
   * Survives, by design of the check: a snapshot only reports to user space
   * and keeps no device mapping, so a snapshot that missed an invalidation
   * is indistinguishable from one taken just before it (both orders are
   * legal); Linux retries for a consistent view, no test can tell.
   */
  /*
   * Survives, equivalent in this model (session 9 analysis, a race test
   * tried): a snapshot without the retry could only report a state that
   * never existed if a zap and a fault ran between its look at one page
   * and its look at the next. hmm_range_fault() reads PTEs without the
   * PTE lock (as Linux's does) and the model preempts only at explicit
   * points (lock releases, sleeps), none inside the walk, so a window's
   * walk is atomic here; the one window left, between the walk and the
   * driver's mutex, gives a snapshot of a state that did exist. Linux can
   * be preempted inside the walk (CONFIG_PREEMPT), which is where the
   * retry matters.
   */
  { id: 'drv-snapshot-no-retry', kind: 'drop-recheck', what: 'dmirror snapshot: no mmu_interval_read_retry()',
    edits: [{ files: DRV, anchor: 'if (mmu_interval_read_retry(range.notifier, range.notifier_seq)) { mutex_unlock(d.mutex); continue; }', replace: '' }],
    suites: S_RACE + '|' + S_HMM },
  { id: 'drv-finalize-always-write', kind: 'weaken', what: 'dmirror_migrate_finalize_and_map: a read-only source mapped WRITE in the device',
    edits: [{ files: DRV, anchor: 'const tag = (args.dst[i] & MIGRATE_PFN_WRITE) ? DPT_XA_TAG_WRITE : DPT_XA_TAG_READ;', replace: 'const tag = DPT_XA_TAG_WRITE;' }],
    /* survived the first run; killed by the dmirror test "pages migrated from a read-only mapping stay read-only" */
    suites: 'test/lib/test_hmm\\.test|' + S_MIG },

  /* ---- mm/migrate_device*.ts ---- */
  { id: 'mig-end-before-walk', kind: 'swap', what: 'migrate_vma_collect: the invalidation ends before the walk',
    edits: [{ files: MIG, anchor: 'const broken = race_mutations.end_invalidation_before_walk;', replace: 'const broken = true;' }],
    suites: S_RACE + '|' + S_MIG },
  { id: 'mig-no-check-page', kind: 'drop-recheck', what: 'migrate_vma_check_page: extra references are ignored',
    edits: [{ files: MIG, anchor: 'return f._refcount - extra <= mapcount;', replace: 'return true;' }],
    suites: S_MIG + '|test/mm/gup' },
  { id: 'mig-no-trylock', kind: 'drop-recheck', what: 'collect_one: the folio lock is not taken (a locked folio is migrated anyway)',
    edits: [{ files: MIG, anchor: '    if ((flags[i] & (1 << PG_locked)) !== 0 || should_fail(fail_folio_trylock, 1)) { folio_put(f); return 0; }\n    flags[i] |= 1 << PG_locked;\n', replace: '' }],
    suites: S_MIG },
  { id: 'mig-late-ref', kind: 'late-ref', what: 'collect_one: the reference is taken after the PTE is cleared',
    edits: [{ files: MIG, anchor: '  ref[i]++;                             /* folio_get(): holds the page, and so the entry, until unmap/restore */\n', replace: '' },
    { files: MIG, anchor: '{ folio_put(f); return 0; }\n    flags[i] |= 1 << PG_locked;', replace: '{ return 0; }\n    flags[i] |= 1 << PG_locked;' },
    { files: MIG, anchor: '  m.cpages++;\n  if (present && pte_dirty(old)) flags[i] |= 1 << PG_dirty;', replace: '  ref[i]++;\n  m.cpages++;\n  if (present && pte_dirty(old)) flags[i] |= 1 << PG_dirty;' }],
    suites: S_MIG },
  { id: 'mig-pinned-not-restored', kind: 'drop-recheck', what: 'collect_one: a pinned exclusive page is migrated anyway',
    edits: [{ files: MIG, anchor: '    if (!is_device_private_page(f) && ref[i] >= GUP_PIN_COUNTING_BIAS) {', replace: '    if (false) {' }],
    suites: 'test/mm/gup_longterm|' + S_MIG },
  { id: 'mig-readable-entry-writable', kind: 'weaken', what: 'collect_one: every migration entry is writable',
    edits: [{ files: MIG, anchor: 'const e = (mpfn & MIGRATE_PFN_WRITE) ? make_writable_migration_entry(pfn)', replace: 'const e = true ? make_writable_migration_entry(pfn)' }],
    suites: S_MIG + '|' + S_FORK },

  /* ---- mm/memory.ts: CPU faults on special entries ---- */
  { id: 'mem-devpriv-no-recheck', kind: 'drop-recheck', what: 'do_device_private_fault: no recheck of the saved PTE under the PTE lock',
    edits: [{ files: MEM, anchor: 'if (!race_mutations.skip_device_private_recheck && ptep_get(mm, vmf.pte) !== vmf.orig_pte) { spin_unlock(ptl); return 0; }', replace: '' }],
    suites: S_RACE },
  { id: 'mem-devpriv-late-ref', kind: 'late-ref', what: 'do_device_private_fault: the reference is taken after the PTE lock is dropped',
    edits: [{ files: MEM, anchor: '  if (!race_mutations.late_device_private_ref) get_page(p);\n  spin_unlock(ptl);\n  if (race_mutations.late_device_private_ref) get_page(p);',
      replace: '  spin_unlock(ptl);\n  get_page(p);' }],
    /* survived the session 9 run; killed by test/lib/sim/preempt_point_cpu.test.ts (a device-private load vs MADV_DONTNEED) */
    suites: S_RACE },
  { id: 'mem-pte-fault-no-recheck', kind: 'drop-recheck', what: 'handle_pte_fault: no pte_same() check under the PTE lock',
    edits: [{ files: MEM, anchor: 'if (entry !== vmf.orig_pte && !race_mutations.skip_pte_fault_recheck) { spin_unlock(ptl); return 0; }   /* raced: retry from user space */', replace: '' }],
    /* survived the first run; killed by test/lib/sim/preempt_point_cpu.test.ts (COW write fault vs MADV_DONTNEED) */
    suites: S_RACE + '|test/mm/memory' },
  { id: 'mem-exclusive-restore-unchecked', kind: 'drop-recheck', what: 'remove_device_exclusive_entry: restores without rechecking the entry',
    edits: [{ files: MEM, anchor: 'if (ptep_get(mm, vmf.pte) === vmf.orig_pte || race_mutations.skip_exclusive_restore_recheck) restore_exclusive_pte(vma, p, vmf.address, vmf.pte);', replace: 'restore_exclusive_pte(vma, p, vmf.address, vmf.pte);' }],
    /* survived the first run; killed by test/lib/sim/preempt_point_cpu.test.ts (load of a device-exclusive page vs MADV_DONTNEED) */
    suites: 'test/mm/device_exclusive|' + S_RACE },

  /* ---- mm/fork.ts ---- */
  { id: 'fork-no-cow-notifier', kind: 'skip-notifier', what: 'copy_page_range: no MMU_NOTIFY_PROTECTION_PAGE invalidation for a COW mapping',
    edits: [{ files: FORK, anchor: '  if (cow) yield* mmu_notifier_invalidate_range_start(range);\n  let ret = 0;', replace: '  let ret = 0;' },
      { files: FORK, anchor: '    flush_tlb_range(src, src.vm_start, src.vm_end);\n    yield* mmu_notifier_invalidate_range_end(range);', replace: '    flush_tlb_range(src, src.vm_start, src.vm_end);' }],
    suites: S_FORK + '|test/lib/test_hmm_races|test/mm/mmu_notifier' },
  { id: 'fork-devpriv-stays-writable', kind: 'weaken', what: 'copy_nonpresent_pte: a writable device-private entry stays writable in a COW parent',
    edits: [{ files: FORK, anchor: 'if (is_writable_device_private_entry(entry) && cow) {', replace: 'if (false) {' }],
    suites: S_FORK },
  { id: 'fork-migration-stays-writable', kind: 'weaken', what: 'copy_nonpresent_pte: a writable migration entry stays writable in a COW parent',
    edits: [{ files: FORK, anchor: 'if (!is_readable_migration_entry(entry) && cow) {', replace: 'if (false) {' }],
    suites: S_FORK + '|test/lib/test_hmm_races' },
  { id: 'fork-present-stays-writable', kind: 'weaken', what: 'copy_present_pte: the parent PTE is not write-protected',
    edits: [{ files: FORK, anchor: '    wrprotect_ptes(src.vm_mm, addr, src_ptep, nr);\n    pte = pte_wrprotect(pte);', replace: '    pte = pte_wrprotect(pte);' }],
    /* survived the first run (suite list gap): killed by mm/memory's COW-after-fork test */
    suites: 'test/mm/memory|' + S_FORK },

  /* ---- mm/hmm_v8/: the 2015 design ---- */
  /*
   * Survives, equivalent in effect in this model (session 3 analysis): an
   * invalidation that sets backoff then waits in hmm_wait_device_fault()
   * until the fault has left (hmm_device_fault_end) and only afterwards
   * clears the mirror and the device, so a fault that publishes after
   * backoff was set is undone before the invalidation returns and before
   * the page can be freed. The check spares the device a useless update;
   * a preemption-point scenario (invalidation between the walk and
   * update()) would show the extra update, not a stale mapping.
   */
  { id: 'v8-no-backoff-check', kind: 'drop-recheck', what: 'hmm_mirror_handle_fault: no backoff check before update()',
    edits: [{ files: V8, anchor: '  if (!ret && mirror.device.dev !== null) ret = yield* hmm_mirror_dma_map(mirror, c.iter, event.start, event.end);\n  if (!ret && event.backoff) ret = -EAGAIN;',
      replace: '  if (!ret && mirror.device.dev !== null) ret = yield* hmm_mirror_dma_map(mirror, c.iter, event.start, event.end);' },
    { files: V8, anchor: '  ret = yield* hmm_mirror_fault_walk(c, vma);\n  if (!ret && event.backoff) ret = -EAGAIN;', replace: '  ret = yield* hmm_mirror_fault_walk(c, vma);' }],
    suites: S_V8 },
  { id: 'v8-no-wait-device-fault', kind: 'skip-notifier', what: 'hmm_update: does not wait out device faults',
    edits: [{ files: V8, anchor: '  if (h.mm.hmm !== h) return;\n  yield* hmm_wait_device_fault(h, event);', replace: '  if (h.mm.hmm !== h) return;' }],
    suites: S_V8 },
  { id: 'v8-write-no-vm-write', kind: 'weaken', what: 'hmm_mirror_handle_fault: a write fault on a VMA without VM_WRITE',
    edits: [{ files: V8, anchor: 'if (write && !(vma.vm_flags & VM_WRITE)) return -EACCES;', replace: '' }],
    suites: S_V8 },
];
