/*
 * test/lib/sim/preempt_point_cpu.test.ts - two CPU-side orderings that
 * only the preemption-point explorer (lib/sim/sched.ts, preempt_point())
 * reaches: a fault that read a PTE locklessly must recheck it under the
 * PTE lock, both in handle_pte_fault() (present PTE) and when it restores
 * a device-exclusive entry (remove_device_exclusive_entry()); and a
 * device-private fault must take its page reference before it drops the
 * PTE lock (do_device_private_fault()). In each
 * scenario a second thread of the process zaps the page with
 * MADV_DONTNEED (mmap_lock for read, like the fault) in the window between
 * the fault's lockless read and its PTE lock. The real code passes every
 * interleaving; the broken variant (TEST-ONLY knobs of lib/sim/mutations.ts,
 * the same steps tools/testing/mutate removes) is caught.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resetScheduler, explore } from '../../../lib/sim/sched.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { MADV_DONTNEED } from '../../../include/uapi/asm-generic/mman.js';
import { HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_MIGRATE_TO_DEV } from '../../../include/uapi/linux/test_hmm.js';
import { dmirror_device_get } from '../../../lib/test_hmm.js';
import { race_mutations, resetRaceMutations } from '../../../lib/sim/mutations.js';
import { runAs, type Process } from '../../../tools/include/nolibc/nolibc.js';
import { hmm_dmirror_cmd_sys } from '../../../tools/testing/selftests/mm/hmm-tests-helpers.js';
import {
  bootRaceMachine, checkMirrors, describeError, resetRaceChecker, PATTERN, RACE_BOUND, type MainlineRace, type RaceMachine,
} from '../../../tools/testing/races/mainline.js';
import { kmemleak_exempt } from '../../leakcheck/uvu.js';

test.before.each(() => { resetScheduler(); });
test.after.each(() => { resetRaceChecker(); resetRaceMutations(); });

/* one preemption at a point is enough for both windows and keeps the enumeration short */
const POINT_BOUND = Object.freeze({ preemptionBound: 1, maxRuns: 1000 });

function exploreWith(r: MainlineRace, preemptPoints: boolean) {
  return explore((s) => r.run(s), { ...(preemptPoints ? POINT_BOUND : r.bound), preemptPoints, check: () => r.check() });
}

/* word @i of the page at @addr as @p reads it */
function word(p: Process, addr: number, i: number): number { return p.read32(addr + 4 * i); }

/*
 * A write fault on a page shared copy-on-write with a fork child, racing
 * MADV_DONTNEED of it in the parent. Whatever the order, the parent's
 * page ends zero-filled except possibly the stored word, and the child
 * keeps its data. Without the recheck the fault, finding the PTE gone,
 * still handles the stale entry it read: the page is now mapped only by
 * the child, so do_wp_page() reuses it and the parent's store lands in
 * the child's memory.
 */
function cowStoreVsDontneed(): MainlineRace {
  let r: RaceMachine | null = null;
  let child: Process | null = null;
  return {
    name: 'a write fault on a COW page vs MADV_DONTNEED of it',
    bound: RACE_BOUND,
    run(s) {
      r = bootRaceMachine([]);
      child = r.p.fork();
      const m = r;
      s.spawn('store', function* () { yield* m.p.sys.store(m.addr, 4, 0x1234); }, 'user', m.p.task);
      s.spawn('dontneed', function* () { yield* m.p.sys.madvise(m.addr, PAGE_SIZE, MADV_DONTNEED); }, 'user', m.p.task);
    },
    check() {
      const w0 = word(r!.p, r!.addr, 0);
      if (w0 !== 0 && w0 !== 0x1234) throw new Error(`races: parent word 0 is ${w0.toString(16)}`);
      if (word(r!.p, r!.addr, 1) !== 0) throw new Error('races: the parent sees old data after MADV_DONTNEED');
      if (child!.check32(r!.addr, PAGE_SIZE, PATTERN) !== -1) throw new Error('races: the child\'s copy changed');
    },
  };
}

test('a COW write fault racing MADV_DONTNEED: the real code passes every interleaving with preemption points', () => {
  const ok = exploreWith(cowStoreVsDontneed(), true);
  assert.ok(ok.complete, `enumeration completes (${ok.runs} runs)`);
  assert.is(ok.failure, null, ok.failure ? describeError(ok.failure.error) : '');
  assert.ok(ok.runs > 2, 'the points add interleavings');
});

test('no pte_same() recheck in handle_pte_fault: sleep points miss it, preemption points catch it', () => {
  kmemleak_exempt('a deliberately broken variant leaves its machine corrupted');
  race_mutations.skip_pte_fault_recheck = true;
  const quiet = exploreWith(cowStoreVsDontneed(), false);
  assert.is(quiet.failure, null, `sleep points alone miss it: ${quiet.failure ? describeError(quiet.failure.error) : ''}`);
  const res = exploreWith(cowStoreVsDontneed(), true);
  assert.ok(res.failure !== null, `caught with preemption points (${res.runs} runs)`);
  assert.match(res.failure!.trace ?? '', /lockless read of the PTE/);
});

/*
 * A CPU load of a page the device holds exclusively, racing
 * MADV_DONTNEED. After both, the page reads zero; the load saw the data
 * or zero. Without the recheck the fault restores the entry DONTNEED just
 * zapped: the freed page is mapped again with its old data. This scenario
 * also found a bug in the real code: the fault took a plain reference on
 * the page it read locklessly, a BUG once DONTNEED had freed it; it now
 * takes one only if the page is still in use (folio_try_get() in Linux).
 */
function exclusiveLoadVsDontneed(): MainlineRace {
  return deviceLoadVsDontneed('device-exclusive', HMM_DMIRROR_EXCLUSIVE);
}

/*
 * deviceLoadVsDontneed() - a CPU load of the page under test after the
 * device took it with @request (EXCLUSIVE or MIGRATE_TO_DEV), racing
 * MADV_DONTNEED of it: the load sees the data or zero, the page ends
 * zero, every mirror agrees with the CPU, and no device page stays in use.
 */
function deviceLoadVsDontneed(kind: string, request: number): MainlineRace {
  let r: RaceMachine | null = null;
  let got = -1;
  return {
    name: `a CPU load of a ${kind} page vs MADV_DONTNEED`,
    bound: RACE_BOUND,
    run(s) {
      r = bootRaceMachine([0]);
      const m = r, x = m.users[0]!;
      if (runAs(m.p.task, hmm_dmirror_cmd_sys(m.p, x.cmd, x.fd, request, x.buf, 1)) !== 0) {
        throw new Error(`races: setup of the ${kind} page failed`);
      }
      got = -1;
      s.spawn('load', function* () { got = yield* m.p.sys.load(m.addr + 4, 4); }, 'user', m.p.task);
      s.spawn('dontneed', function* () { yield* m.p.sys.madvise(m.addr, PAGE_SIZE, MADV_DONTNEED); }, 'user', m.p.task);
    },
    check() {
      checkMirrors(r!.p.mm, 'at the end of the run');
      if (got !== PATTERN + 1 && got !== 0) throw new Error(`races: the load returned ${got.toString(16)}`);
      if (word(r!.p, r!.addr, 1) !== 0 || word(r!.p, r!.addr, 2) !== 0) throw new Error('races: old data mapped again after MADV_DONTNEED');
      const dev = dmirror_device_get(0)!;
      if (dev.calloc !== dev.cfree) throw new Error(`races: ${dev.calloc - dev.cfree} device pages still in use`);
    },
  };
}

test('a load of a device-exclusive page racing MADV_DONTNEED: the real code passes every interleaving with preemption points', () => {
  const ok = exploreWith(exclusiveLoadVsDontneed(), true);
  assert.is(ok.failure, null, ok.failure ? `${describeError(ok.failure.error)}\n${ok.failure.trace}` : '');
  assert.ok(ok.complete, `enumeration completes (${ok.runs} runs)`);
});

test('device-exclusive restore without the recheck: caught with preemption points', () => {
  kmemleak_exempt('a deliberately broken variant leaves its machine corrupted');
  race_mutations.skip_exclusive_restore_recheck = true;
  const res = exploreWith(exclusiveLoadVsDontneed(), true);
  assert.ok(res.failure !== null, `caught with preemption points (${res.runs} runs)`);
});

/*
 * A CPU load of a device-private page, racing MADV_DONTNEED of it. The
 * fault locks the page under the PTE lock and takes a reference before
 * dropping the lock, so the zap that may follow drops the mapping's
 * reference only; the migration then finds the entry gone and the last
 * put frees the device page. Whatever the order, the page ends zero, the
 * load saw the data or zero, and no device page stays in use. With the
 * reference taken after the unlock (race_mutations.late_device_private_ref,
 * the mutation mem-devpriv-late-ref), the zap in that window frees the
 * page under the fault, whose get_page() then finds it free.
 */
function devicePrivateLoadVsDontneed(): MainlineRace {
  return deviceLoadVsDontneed('device-private', HMM_DMIRROR_MIGRATE_TO_DEV);
}

test('a load of a device-private page racing MADV_DONTNEED: the real code passes every interleaving with preemption points', () => {
  const ok = exploreWith(devicePrivateLoadVsDontneed(), true);
  assert.is(ok.failure, null, ok.failure ? `${describeError(ok.failure.error)}\n${ok.failure.trace}` : '');
  assert.ok(ok.complete, `enumeration completes (${ok.runs} runs)`);
});

test('device-private fault taking its reference after the PTE lock: caught with preemption points', () => {
  kmemleak_exempt('a deliberately broken variant leaves its machine corrupted');
  race_mutations.late_device_private_ref = true;
  const res = exploreWith(devicePrivateLoadVsDontneed(), true);
  assert.ok(res.failure !== null, `caught with preemption points (${res.runs} runs)`);
  assert.match(describeError(res.failure!.error), /free|BUG/i);
});

test.run();
