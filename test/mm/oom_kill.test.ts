/*
 * test/mm/oom_kill.test.ts - the OOM killer (mm/oom_kill.ts): a failed
 * allocation kills the task with the most memory, the reaper gives its
 * private memory back at once, the allocation is retried; a fault that
 * still gets VM_FAULT_OOM is retried (Linux 5.16+), it does not kill the
 * faulting task unless that task is the one chosen.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RW, ANON } from '../helpers.js';
import { PROT_EXEC } from '../../include/uapi/asm-generic/mman.js';
import { start_kernel } from '../../mm/init.js';
import { Process } from '../../tools/include/nolibc/nolibc.js';
import { UserFault } from '../../mm/fault.js';
import { PAGE_SIZE, get_mm_rss } from '../../include/linux/mm.js';
import { MMF_OOM_SKIP } from '../../include/linux/mm_types.js';
import { SIGKILL } from '../../include/uapi/asm-generic/signal.js';
import { get_counter } from '../../lib/sim/trace.js';
import { nr_free_pages, totalram_pages } from '../../mm/page_alloc.js';
import { oom_kills, pagefault_out_of_memory, oom_badness } from '../../mm/oom_kill.js';
import { mmu_notifier_register, mmu_notifier_range_blockable } from '../../mm/mmu_notifier.js';
import type { mmu_notifier } from '../../include/linux/mmu_notifier.js';
import { runAs } from '../../tools/include/nolibc/nolibc.js';

const t = suite('mm/oom_kill');
const RAM_PAGES = 1024;             /* 4 MiB (the smallest machine), no swap */
t.before.each(() => { start_kernel({ ram_bytes: RAM_PAGES * PAGE_SIZE }); });

/* fill n pages at addr with their index (a page that reads back wrong names itself) */
function touch(p: Process, addr: number, n: number): void {
  for (let i = 0; i < n; i++) p.write32(addr + i * PAGE_SIZE, i + 1);
}

t('an allocation that finds RAM exhausted kills the largest other task and reaps it; the faulting task carries on', () => {
  const big = Process.spawn('big');
  const small = Process.spawn('small');
  const nbig = Math.floor(RAM_PAGES * 0.6);
  const b = big.mmap(0, nbig * PAGE_SIZE, RW, ANON);
  touch(big, b, nbig);
  const s = small.mmap(0, RAM_PAGES * PAGE_SIZE, RW, ANON);
  const nsmall = Math.floor(RAM_PAGES * 0.5);
  touch(small, s, nsmall);                 /* runs out half way: the OOM killer must run */
  assert.is(oom_kills().length, 1);
  assert.is(oom_kills()[0].pid, big.pid, 'the task with the most resident pages was chosen');
  assert.ok(oom_kills()[0].points >= nbig);
  assert.is(get_counter('oom_reaped'), 1);
  assert.is(get_mm_rss(big.mm), 0, 'the reaper unmapped every private page of the victim');
  assert.ok(big.mm.flags & MMF_OOM_SKIP, 'the victim is never chosen again');
  for (let i = 0; i < nsmall; i++) assert.is(small.read32(s + i * PAGE_SIZE), i + 1, `small page ${i}`);
  assert.is(small.task.exit_state, 0, 'the faulting task lives');
  assert.throws(() => big.read32(b), (e: unknown) => e instanceof UserFault && e.sig === SIGKILL,
    'the victim dies on its way back to user space');
  assert.is(big.task.killed_by, SIGKILL);
  assert.ok(big.task.exit_state !== 0, 'the victim exited');
});

t('when the faulting task is the largest it is the one killed: SIGKILL, and the others keep their bytes', () => {
  const other = Process.spawn('other');
  const o = other.mmap(0, 16 * PAGE_SIZE, RW, ANON);
  touch(other, o, 16);
  const hog = Process.spawn('hog');
  const h = hog.mmap(0, 2 * RAM_PAGES * PAGE_SIZE, RW, ANON);
  assert.throws(() => touch(hog, h, 2 * RAM_PAGES), (e: unknown) => e instanceof UserFault && e.sig === SIGKILL);
  assert.equal(oom_kills().map((k) => k.pid), [hog.pid], 'one kill, the hog');
  assert.ok(hog.task.exit_state !== 0, 'the hog exited with the pending SIGKILL');
  assert.is(hog.task.killed_by, SIGKILL);
  for (let i = 0; i < 16; i++) assert.is(other.read32(o + i * PAGE_SIZE), i + 1);
  assert.ok(nr_free_pages() > totalram_pages() / 2, 'the hog\'s memory came back when it exited');
});

t('pagefault_out_of_memory (Linux 5.16+): VM_FAULT_OOM without a pending SIGKILL retries the fault', () => {
  const p = Process.spawn('p');
  assert.is(pagefault_out_of_memory(p.task), 0);
  assert.is(get_counter('pagefault_oom_retry'), 1);
  p.task.pending |= 1 << SIGKILL;
  assert.is(pagefault_out_of_memory(p.task), SIGKILL, 'a task the OOM killer chose dies');
});

t('the reaper sends a non-blockable MMU_NOTIFY_UNMAP; a subscriber that would sleep keeps that VMA for the exit', () => {
  const big = Process.spawn('big');
  const a = big.mmap(0, 300 * PAGE_SIZE, RW, ANON);
  const c = big.mmap(0, 300 * PAGE_SIZE, RW | PROT_EXEC, ANON);    /* different flags: two VMAs */
  touch(big, a, 300);
  touch(big, c, 300);
  const seen: boolean[] = [];
  const sub: mmu_notifier = {
    mm: null,
    ops: {
      *invalidate_range_start(_s, r) {
        seen.push(mmu_notifier_range_blockable(r));
        return r.start === Math.min(a, c) ? -11 : 0;      /* -EAGAIN: would have to sleep for the lower VMA */
      },
      *invalidate_range_end() {},
    },
  };
  runAs(big.task, mmu_notifier_register(sub, big.mm));
  assert.ok(oom_badness(big.task) >= 600);
  const hog = Process.spawn('small');
  const h = hog.mmap(0, RAM_PAGES * PAGE_SIZE, RW, ANON);
  touch(hog, h, 500);
  assert.equal(oom_kills().map((k) => k.pid), [big.pid]);
  assert.equal(seen, [false, false], 'two VMAs, both ranges non-blockable');
  assert.is(get_counter('oom_reap_notifier_busy'), 1);
  assert.is(get_mm_rss(big.mm), 300, 'the refused VMA stays mapped until the victim exits');
  for (let i = 0; i < 500; i++) assert.is(hog.read32(h + i * PAGE_SIZE), i + 1);
});

t.run();
