/*
 * test/mm/page_alloc_nofail.test.ts - the sleepable allocator
 * (mm/page_alloc.ts alloc_pages_sleepable()) under the OOM killer:
 * __GFP_NOFAIL waits for an OOM victim to exit and free its memory, then
 * retries, instead of BUGging; the OOM killer does not kill again while
 * its victim is still on its way out; and the wait is bounded: with
 * nothing to kill the model BUGs at once (Linux panics "System is
 * deadlocked on memory"), and a victim that never exits ends the wait
 * after NOFAIL_WAIT_NS (Linux would loop forever).
 *
 * The victim keeps the memory the OOM reaper cannot take: a subscriber of
 * its mm that must sleep refuses the reaper's non-blockable range, so
 * only the victim's own exit (blockable) gives that VMA back.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RW, ANON } from '../helpers.js';
import { start_kernel } from '../../mm/init.js';
import { Process, runAs } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE, get_mm_rss } from '../../include/linux/mm.js';
import { MMF_OOM_SKIP, type page } from '../../include/linux/mm_types.js';
import { fatal_signal_pending } from '../../include/linux/sched.js';
import { GFP_KERNEL, GFP_NOWAIT, GFP_ATOMIC, __GFP_NOFAIL } from '../../include/linux/gfp.js';
import type { mmu_notifier } from '../../include/linux/mmu_notifier.js';
import {
  Scheduler, runSync, preempt_disable, preempt_enable, KernelBugError, type Sleepable,
} from '../../lib/sim/sched.js';
import { msleep, now, NSEC_PER_MSEC } from '../../lib/sim/clock.js';
import { get_counter } from '../../lib/sim/trace.js';
import {
  alloc_page, alloc_page_sleepable, put_page, kmap_local_page, nr_free_pages, NOFAIL_WAIT_NS, NOFAIL_RETRY_NS,
} from '../../mm/page_alloc.js';
import { oom_kills, OOM_REAP_WAIT_NS } from '../../mm/oom_kill.js';
import { mmu_notifier_register, mmu_notifier_range_blockable } from '../../mm/mmu_notifier.js';
import { lockdep_off, lockdep_on } from '../../lib/locking/lockdep.js';
import { kmemleak_exempt } from '../leakcheck/uvu.js';

const t = suite('mm/page_alloc_nofail');
const RAM_PAGES = 1024;             /* 4 MiB, no swap: the fuzzer's machine */
t.before.each(() => { start_kernel({ ram_bytes: RAM_PAGES * PAGE_SIZE }); });

const NOFAIL = GFP_KERNEL | __GFP_NOFAIL;

/* a process with n touched pages that the OOM reaper cannot take (its subscriber needs to sleep) */
function unreapable(comm: string, n: number): { p: Process; refused: { n: number } } {
  const p = Process.spawn(comm);
  const a = p.mmap(0, n * PAGE_SIZE, RW, ANON);
  for (let i = 0; i < n; i++) p.write32(a + i * PAGE_SIZE, i + 1);
  const refused = { n: 0 };
  const sub: mmu_notifier = {
    mm: null,
    ops: {
      *invalidate_range_start(_s, r) {
        if (mmu_notifier_range_blockable(r)) return 0;
        refused.n++;
        return -11;                        /* -EAGAIN: would have to sleep */
      },
      *invalidate_range_end() {},
    },
  };
  runAs(p.task, mmu_notifier_register(sub, p.mm));
  return { p, refused };
}

/* a kernel thread's body: n __GFP_NOFAIL pages, each stamped with its index */
function* grab(n: number, out: page[]): Sleepable {
  for (let i = 0; i < n; i++) {
    const f = (yield* alloc_page_sleepable(NOFAIL))!;
    new DataView(kmap_local_page(f).buffer, kmap_local_page(f).byteOffset).setUint32(0, i + 1, true);
    out.push(f);
  }
}

function stamp(f: page): number {
  const b = kmap_local_page(f);
  return new DataView(b.buffer, b.byteOffset).getUint32(0, true);
}

t('__GFP_NOFAIL waits for the OOM victim to exit, then gets its memory; nobody else is killed meanwhile', () => {
  const { p: victim, refused } = unreapable('victim', 700);
  const bystander = Process.spawn('bystander');
  const b = bystander.mmap(0, 8 * PAGE_SIZE, RW, ANON);
  for (let i = 0; i < 8; i++) bystander.write32(b + i * PAGE_SIZE, 100 + i);
  const s = new Scheduler();
  const got: page[] = [];
  const want = nr_free_pages() + 400;       /* more than is free: needs the victim's memory */
  let exited_at = -1;
  s.spawn('victim', function* () {          /* the victim's own thread: it dies when it sees its SIGKILL */
    while (!fatal_signal_pending(victim.task)) yield* msleep(1);
    exited_at = now();
    yield* victim.sys.exit(0);
  }, 'user', victim.task);
  const k = s.spawn('nofail', () => grab(want, got), 'kthread', null);
  s.run();
  assert.is(k.state, 'done');
  assert.is(k.error, undefined, 'no BUG: the allocation waited instead');
  assert.is(got.length, want);
  for (let i = 0; i < want; i++) assert.is(stamp(got[i]), i + 1, `page ${i}`);
  assert.equal(oom_kills().map((x) => x.pid), [victim.pid], 'one kill: the victim, never the bystander');
  assert.ok(refused.n > 0, 'the reaper\'s non-blockable range was refused');
  assert.ok(get_counter('oom_victim_wait') > 0, 'the allocation slept while the victim exited');
  assert.is(get_counter('nofail_stall'), 0);
  assert.ok(victim.task.exit_state !== 0 && exited_at >= 0, 'the victim exited on its own thread');
  for (let i = 0; i < 8; i++) assert.is(bystander.read32(b + i * PAGE_SIZE), 100 + i);
  for (const f of got) put_page(f);
});

t('before the sleepable path: the same __GFP_NOFAIL from a caller that cannot sleep BUGs at its first direct reclaim (lockdep on)', () => {
  kmemleak_exempt('the BUG leaves the pages taken so far allocated');
  unreapable('victim', 700);
  const held: page[] = [];
  assert.throws(() => { for (;;) held.push(alloc_page(NOFAIL)!); },
    (e: unknown) => e instanceof KernelBugError && /sleeping function called from invalid context: direct reclaim/.test(e.message));
  assert.is(get_counter('reclaim_nosleep'), 1);
  assert.is(get_counter('oom_kill'), 0, 'the BUG comes before any kill');
});

t('with lockdep off (benchmarks), the plain fallback reclaims inline, kills, and its __GFP_NOFAIL BUGs', () => {
  kmemleak_exempt('the BUG leaves the pages taken so far allocated');
  lockdep_off();                                /* the next boot's resetLockdep() turns it back on */
  unreapable('victim', 700);
  const held: page[] = [];
  assert.throws(() => { for (;;) held.push(alloc_page(NOFAIL)!); },
    (e: unknown) => e instanceof KernelBugError && /cannot sleep \(alloc_pages\)/.test(e.message));
  assert.ok(get_counter('reclaim_nosleep') > 0);
  assert.is(get_counter('oom_kill'), 1);
  lockdep_on();
});

t('nothing to kill and no victim to wait for: BUG at once, as Linux panics (System is deadlocked on memory)', () => {
  kmemleak_exempt('the BUG leaves the pages taken so far allocated');
  const held: page[] = [];
  const t0 = now();
  assert.throws(() => runSync(grab(2 * RAM_PAGES, held)),
    (e: unknown) => e instanceof KernelBugError && /no killable processes/.test(e.message) &&
      /System is deadlocked on memory/.test(e.message));
  assert.is(get_counter('nofail_stall'), 1);
  assert.is(get_counter('oom_victim_wait'), 0, 'nothing to wait for');
  assert.ok(now() - t0 < NOFAIL_RETRY_NS, 'no sleeping');
  assert.is(nr_free_pages(), 0);
});

t('a victim that never exits: the reaper gives up after OOM_REAP_WAIT_NS and the next task is killed; then the wait is bounded', () => {
  kmemleak_exempt('the BUG leaves the pages taken so far allocated');
  const { p: victim } = unreapable('victim', 600);
  const second = Process.spawn('second');
  const a = second.mmap(0, 100 * PAGE_SIZE, RW, ANON);
  for (let i = 0; i < 100; i++) second.write32(a + i * PAGE_SIZE, i);
  const held: page[] = [];
  const t0 = now();
  /* nobody runs the victim's exit under runSync: the allocation can only wait, then give up */
  assert.throws(() => runSync(grab(2 * RAM_PAGES, held)),
    (e: unknown) => e instanceof KernelBugError && /waiting for OOM victims to exit/.test(e.message) && /livelock/.test(e.message));
  const waited = now() - t0;
  assert.equal(oom_kills().map((x) => x.pid), [victim.pid, second.pid],
    'the second task only after the reaper gave up on the victim');
  assert.ok(victim.mm.flags & MMF_OOM_SKIP);
  assert.is(get_mm_rss(second.mm), 0, 'the second victim was reaped completely');
  assert.ok(get_mm_rss(victim.mm) > 0, 'the victim kept the VMA its subscriber refused');
  assert.ok(waited >= OOM_REAP_WAIT_NS + NOFAIL_WAIT_NS, `waited ${waited / NSEC_PER_MSEC} ms`);
  assert.ok(waited < OOM_REAP_WAIT_NS + NOFAIL_WAIT_NS + 10 * NOFAIL_RETRY_NS, 'bounded');
  assert.is(get_counter('nofail_stall'), 1);
  assert.ok(held.length > 100, 'the second task\'s memory was used');
});

t('without __GFP_DIRECT_RECLAIM (GFP_NOWAIT, GFP_ATOMIC) nothing reclaims, sleeps or kills; a reclaiming gfp in atomic context is a BUG', () => {
  kmemleak_exempt('it allocates RAM down to nothing by hand and keeps it');
  start_kernel({ ram_bytes: RAM_PAGES * PAGE_SIZE, swap_bytes: 16 << 20 });
  const p = Process.spawn('user');
  const a = p.mmap(0, 600 * PAGE_SIZE, RW, ANON);
  for (let i = 0; i < 600; i++) p.write32(a + i * PAGE_SIZE, i);     /* reclaimable: swap has room */
  const held: page[] = [];
  const t0 = now(), stalls = get_counter('allocstall');
  for (const gfp of [GFP_NOWAIT, GFP_ATOMIC]) {
    for (;;) {
      const f = runSync(alloc_page_sleepable(gfp));
      if (f === null) break;
      held.push(f);
    }
  }
  assert.is(get_counter('allocstall'), stalls, 'no direct reclaim');
  assert.is(get_counter('oom_kill'), 0);
  assert.is(now(), t0, 'no sleep');
  assert.ok(held.length > 300 && nr_free_pages() === 0);
  assert.is(get_mm_rss(p.mm), 600, 'the user pages stayed in RAM');
  preempt_disable();
  try {
    assert.throws(() => runSync(alloc_page_sleepable(GFP_KERNEL)),
      (e: unknown) => e instanceof KernelBugError && /sleeping function called from invalid context/.test(e.message));
  } finally {
    preempt_enable();
  }
  for (const f of held) put_page(f);
});

t.run();
