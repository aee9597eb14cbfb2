/*
 * test/mm/hmm_v8/hmm.test.ts - struct hmm, devices, mirrors and their
 * lifetimes; the mmu_event -> hmm_etype translation and pte masks
 * (mm/hmm_v8/hmm.ts, HMM v8 patches 05 and 07).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../../helpers.js';
import { runAs, type Process } from '../../../tools/include/nolibc/nolibc.js';
import { PROT_READ, PROT_NONE } from '../../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE, TASK_SIZE } from '../../../include/linux/mm.js';
import {
  MMU_FORK, MMU_HSPLIT, MMU_ISDIRTY, MMU_MIGRATE, MMU_MPROT, MMU_MUNLOCK, MMU_MUNMAP, MMU_WRITE_BACK,
  MMU_WRITE_PROTECT, HMM_NONE, HMM_FORK, HMM_ISDIRTY, HMM_MIGRATE, HMM_MUNMAP, HMM_WRITE_PROTECT,
  HMM_DEVICE_RFAULT, HMM_DEVICE_WFAULT, HMM_COPY_FROM_DEVICE, HMM_COPY_TO_DEVICE, HMM_PTE_MASK_ALL, HMM_PTE_WRITE,
} from '../../../include/linux/hmm_v8.js';
import {
  hmm_of, hmm_event_new, mmu_event_to_hmm_etype, hmm_mirror_unregister, hmm_mirror_kill, hmm_device_unregister,
  hmm_v8_config,
} from '../../../mm/hmm_v8/hmm.js';
import { mmuNotifierMmV8Of } from '../../../mm/hmm_v8/mmu_notifier.js';
import { EBUSY, ENODEV } from '../../../include/uapi/asm-generic/errno.js';
import { tdev } from './tdev.js';

const t = suite('mm/hmm_v8/hmm');
let p: Process;
t.before.each(() => { p = boot(); });

t('the first mirror creates mm->hmm and its listener; a second device shares them', () => {
  const a = new tdev('a'), b = new tdev('b');
  assert.is(hmm_of(p.mm), null);
  assert.is(runAs(p.task, a.register(p.mm)), 0);
  const h = hmm_of(p.mm)!;
  assert.ok(h !== null);
  assert.is(h.vm_end, TASK_SIZE);
  assert.is(mmuNotifierMmV8Of(p.mm)!.list.length, 1);
  assert.is(runAs(p.task, b.register(p.mm)), 0);
  assert.is(hmm_of(p.mm), h);
  assert.equal(h.mirrors.map((m) => m.device.name), ['a', 'b']);
  assert.is(a.device.mirrors.length, 1);
});

t('unregister (v9 rules) tears the device side down, then ->free; the last mirror takes mm->hmm with it', () => {
  const a = new tdev('a');
  runAs(p.task, a.register(p.mm));
  assert.is(hmm_device_unregister(a.device), -EBUSY);
  runAs(p.task, hmm_mirror_unregister(a.mirror));
  assert.equal(a.calls.map((c) => `${c.op} ${c.etype}`), ['update HMM_MUNMAP', 'free ']);
  assert.is(a.calls[0].end, TASK_SIZE);
  assert.is(hmm_of(p.mm), null);
  assert.is(hmm_device_unregister(a.device), 0);
});

t('unregister with the v8 rules calls ->release on the last put and never ->free', () => {
  hmm_v8_config.lifetime = 'v8';
  const a = new tdev('a');
  runAs(p.task, a.register(p.mm));
  assert.is(a.mirror.kref, 1, 'v8: only the list holds the mirror');
  runAs(p.task, hmm_mirror_unregister(a.mirror));
  assert.equal(a.calls.map((c) => c.op), ['update', 'release']);
});

t('exit: v9 tells the driver with ->release and keeps the mirror for its unregister', () => {
  const a = new tdev('a');
  runAs(p.task, a.register(p.mm));
  const mm = p.mm;
  p.exit(0);
  assert.equal(a.calls.map((c) => `${c.op} ${c.etype}`), ['update HMM_MUNMAP', 'release ']);
  assert.ok(a.mirror.dead);
  assert.is(a.mirror.kref, 1, "the driver's reference is left");
  runAs(p.task, hmm_mirror_unregister(a.mirror));
  assert.equal(a.calls.map((c) => c.op).slice(-1), ['free']);
  assert.is(mm.hmm, null);
});

t('mmu_event -> hmm_etype, with the VMA deciding for MPROT', () => {
  const a = p.mmap(0, 3 * PAGE_SIZE, RW, ANON);
  const mm = p.mm;
  assert.is(mmu_event_to_hmm_etype(mm, a, MMU_FORK), HMM_FORK);
  assert.is(mmu_event_to_hmm_etype(mm, a, MMU_MUNLOCK), HMM_NONE);
  assert.is(mmu_event_to_hmm_etype(mm, a, MMU_MPROT), HMM_NONE, 'still RW: nothing to do');
  assert.is(mmu_event_to_hmm_etype(mm, a, MMU_WRITE_BACK), HMM_WRITE_PROTECT);
  assert.is(mmu_event_to_hmm_etype(mm, a, MMU_WRITE_PROTECT), HMM_WRITE_PROTECT);
  assert.is(mmu_event_to_hmm_etype(mm, a, MMU_ISDIRTY), HMM_ISDIRTY);
  assert.is(mmu_event_to_hmm_etype(mm, a, MMU_HSPLIT), HMM_MUNMAP);
  assert.is(mmu_event_to_hmm_etype(mm, a, MMU_MUNMAP), HMM_MUNMAP);
  assert.is(mmu_event_to_hmm_etype(mm, a, MMU_MIGRATE), HMM_MIGRATE);
  p.mprotect(a + PAGE_SIZE, PAGE_SIZE, PROT_READ);
  p.mprotect(a + 2 * PAGE_SIZE, PAGE_SIZE, PROT_NONE);
  assert.is(mmu_event_to_hmm_etype(mm, a + PAGE_SIZE, MMU_MPROT), HMM_WRITE_PROTECT);
  assert.is(mmu_event_to_hmm_etype(mm, a + 2 * PAGE_SIZE, MMU_MPROT), HMM_MUNMAP);
  assert.is(mmu_event_to_hmm_etype(mm, a + 3 * PAGE_SIZE, MMU_MPROT), HMM_MUNMAP, 'no VMA');
});

t('pte_mask per etype: keep everything, drop WRITE, or drop the entry; ranges are page-aligned and clamped', () => {
  const all = [HMM_ISDIRTY, HMM_DEVICE_RFAULT, HMM_DEVICE_WFAULT, HMM_COPY_TO_DEVICE, HMM_COPY_FROM_DEVICE];
  for (const e of all) assert.is(hmm_event_new(null, 0, 1, e).pte_mask, HMM_PTE_MASK_ALL);
  for (const e of [HMM_FORK, HMM_WRITE_PROTECT]) assert.is(hmm_event_new(null, 0, 1, e).pte_mask, HMM_PTE_MASK_ALL & ~HMM_PTE_WRITE);
  for (const e of [HMM_MIGRATE, HMM_MUNMAP]) assert.is(hmm_event_new(null, 0, 1, e).pte_mask, 0);
  const ev = hmm_event_new(null, 0x1234, TASK_SIZE + 0x10000, HMM_MUNMAP);
  assert.equal([ev.start, ev.end], [0x1000, TASK_SIZE]);
});

t('a killed mirror is off the list, cleared, and its faults get -ENODEV', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 5);
  const d = new tdev();
  runAs(p.task, d.register(p.mm));
  assert.is(runAs(p.task, d.read32(a)), 5);
  runAs(p.task, hmm_mirror_kill(d.mirror));
  assert.is(hmm_of(p.mm)?.mirrors.length ?? 0, 0);
  assert.is(d.mentry(a), 0);
  assert.is(d.pt.size, 0, 'the device got an MUNMAP of everything');
  d.pt.clear();
  assert.is(runAs(p.task, d.read32(a)), -ENODEV);
});

t.run();
