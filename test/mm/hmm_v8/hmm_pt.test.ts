/*
 * test/mm/hmm_v8/hmm_pt.test.ts - the mirror page table on lib/gpt
 * (mm/hmm_v8/hmm_pt.ts, HMM v8 patches 06, 17, 18, 23) and the entry
 * helpers of include/linux/hmm_v8.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TASK_SIZE, PAGE_SIZE } from '../../../include/linux/mm.js';
import {
  HMM_PTE_VALID_DEV, HMM_PTE_VALID_DMA, HMM_PTE_VALID_PFN, HMM_PTE_SELECT, HMM_PTE_WRITE, HMM_PTE_DIRTY,
  HMM_PTE_MASK_ALL, hmm_pte_from_pfn, hmm_pte_pfn, hmm_pte_from_dma_addr, hmm_pte_dma_addr, hmm_pte_from_dev_addr,
  hmm_pte_dev_addr, hmm_pte_set_write, hmm_pte_clear_write, hmm_pte_mask, hmm_pte_set_select, hmm_pte_test_select,
  hmm_pte_valid,
} from '../../../include/linux/hmm_v8.js';
import {
  hmm_pt_init, hmm_pt_fini, hmm_pt_iter_init, hmm_pt_iter_fini, hmm_pt_iter_update, hmm_pt_iter_fault,
  hmm_pt_iter_next, hmm_pt_level_next, hmm_pt_directory_lock, hmm_pt_directory_unlock, hmm_pt_store,
  hmm_pt_load, hmm_pt_set_dirty, hmm_pt_prune, hmm_pt_directories, hmm_pt_directory_lock_ptr, GPT_NO_DIR,
} from '../../../mm/hmm_v8/hmm_pt.js';
import { Scheduler, cond_resched, resetScheduler } from '../../../lib/sim/sched.js';
import { resetLockdep } from '../../../lib/locking/lockdep.js';

const t = suite('mm/hmm_v8/hmm_pt');
t.before.each(() => { resetScheduler(); resetLockdep(); });

t('entry helpers keep the v8 bit layout and round-trip addresses above 2^32', () => {
  assert.equal([HMM_PTE_VALID_DEV, HMM_PTE_VALID_DMA, HMM_PTE_VALID_PFN, HMM_PTE_SELECT, HMM_PTE_WRITE, HMM_PTE_DIRTY],
    [1, 2, 4, 8, 16, 32]);
  const pfn = 0x12345678;                   /* address 0x12345678000: needs 45 bits */
  const e = hmm_pte_from_pfn(pfn);
  assert.is(hmm_pte_pfn(e), pfn);
  assert.ok(hmm_pte_valid(e));
  const w = hmm_pte_set_write(hmm_pte_set_select(e));
  assert.ok(hmm_pte_test_select(w));
  assert.is(hmm_pte_pfn(w), pfn, 'flags never touch the address');
  assert.is(hmm_pte_clear_write(w), hmm_pte_set_select(e));
  assert.is(hmm_pte_mask(w, HMM_PTE_MASK_ALL & ~HMM_PTE_WRITE), hmm_pte_set_select(e), 'FORK/WRITE_PROTECT mask');
  assert.is(hmm_pte_mask(w, 0), 0, 'MIGRATE/MUNMAP mask drops the entry');
  assert.is(hmm_pte_dma_addr(hmm_pte_from_dma_addr(0x100003000)), 0x100003000);
  assert.is(hmm_pte_dev_addr(hmm_pte_from_dev_addr(0x7000)), 0x7000);
});

t('geometry for last = TASK_SIZE - 1: four levels, leaf level 3, one leaf directory per 2 MiB', () => {
  const pt = hmm_pt_init(TASK_SIZE - 1);
  assert.is(pt.llevel, 3);
  assert.equal(pt.gpt.layout.shift, [39, 30, 21, 12]);
  assert.is(hmm_pt_level_next(pt, 0x200000 + 5 * PAGE_SIZE, 2 ** 40, 2), 0x400000);
  assert.is(hmm_pt_level_next(pt, 0x200000, 0x300000, 2), 0x300000, 'clamped to end');
});

t('iter_fault builds directories, iter_update finds them, iter_next skips what is missing', () => {
  const pt = hmm_pt_init();
  const it = hmm_pt_iter_init(pt);
  assert.is(hmm_pt_iter_update(it, 0x7f0000000000), GPT_NO_DIR);
  const before = hmm_pt_directories(pt);
  const p = hmm_pt_iter_fault(it, 0x7f0000001000);
  assert.ok(p >= 0);
  assert.is(hmm_pt_directories(pt), before + 3, 'three levels below the root');
  assert.is(hmm_pt_iter_update(it, 0x7f0000001000), p);
  assert.is(hmm_pt_iter_next(it, 0x7f0000400000, 2 ** 47), 0x7f0000600000,
    'a missing leaf directory is skipped as a whole');
  assert.is(hmm_pt_iter_next(it, 0x7f0000001000, 2 ** 47), 0x7f0000002000, 'inside a live leaf: next page');
  hmm_pt_iter_fini(it);
});

t('valid entries hold their directory; prune frees it once they are cleared (hmm_pt_iter_directory_ref/unref)', () => {
  const pt = hmm_pt_init();
  const it = hmm_pt_iter_init(pt);
  const p = hmm_pt_iter_fault(it, 0x400000);
  hmm_pt_directory_lock(pt, p);
  hmm_pt_store(pt, p, hmm_pte_from_pfn(42));
  hmm_pt_store(pt, p + 1, hmm_pte_from_pfn(43));
  hmm_pt_directory_unlock(pt, p);
  hmm_pt_iter_fini(it);
  const slot = hmm_pt_directory_lock_ptr(pt, p);
  assert.is(pt.gpt.dir_refcount(slot), 3, 'link + two valid entries');
  assert.is(hmm_pt_prune(pt, 0, 2 ** 47), 0, 'a directory with valid entries stays');
  hmm_pt_set_dirty(pt, p);
  assert.is(hmm_pt_load(pt, p) & HMM_PTE_DIRTY, HMM_PTE_DIRTY, 'lockless dirty bit');
  hmm_pt_directory_lock(pt, p);
  hmm_pt_store(pt, p, 0);
  hmm_pt_store(pt, p + 1, 0);
  hmm_pt_directory_unlock(pt, p);
  assert.is(hmm_pt_prune(pt, 0, 2 ** 47), 3, 'leaf, PMD-level and PUD-level directories go');
  hmm_pt_fini(pt);
  assert.throws(() => hmm_pt_iter_init(pt), /after hmm_pt_fini/);
});

t('a directory lock is a spinlock: yielding while holding it is a BUG', () => {
  const pt = hmm_pt_init();
  const it = hmm_pt_iter_init(pt);
  const p = hmm_pt_iter_fault(it, 0x400000);
  const s = new Scheduler({ mode: 'random', seed: 3 });
  s.spawn('holder', function* () { hmm_pt_directory_lock(pt, p); yield* cond_resched(); hmm_pt_directory_unlock(pt, p); });
  s.spawn('other', function* () { yield* cond_resched(); });
  assert.throws(() => s.run(), /atomic/);
});

t.run();
