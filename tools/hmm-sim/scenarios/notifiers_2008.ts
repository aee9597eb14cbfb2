/*
 * tools/hmm-sim/scenarios/notifiers_2008.ts - `hmm-sim run notifiers-2008`:
 * the 2008 mmu notifier API (mm/mmu_notifier_2008.ts) with its two first
 * users, and Andrea Arcangeli's argument of February 2008 made runnable:
 * the invalidate_range_start/end pair is needed by a secondary MMU that
 * holds no page reference (drivers/misc/sgi-gru), not by one that pins
 * its pages (drivers/kvm-like). Documentation/vm/hmm.txt, "The 2008
 * notifiers".
 *
 * The race, for each user, with and without the pair: process A maps a
 * page holding 0x1111; the device has it in its TLB / shadow table; then
 *   cpu:    madvise(MADV_DONTNEED) of the page (range start, PTE cleared,
 *           page freed by tlb_finish_mmu, range end)
 *   device: two loads of the word, a yield between them
 * explore() tries every interleaving (preemption points on, at most two
 * preemptions). The check, made in the same step as each load: the frame
 * the device read is the one the CPU maps at that address now, or one the
 * device holds a reference on; anything else is a frame the VM freed,
 * which the page allocator may already have handed to anyone.
 */
import { defineScenario } from '../api.js';
import { start_kernel } from '../../../mm/init.js';
import { Process, runAs } from '../../include/nolibc/nolibc.js';
import { PAGE_SIZE, page_count } from '../../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_DONTNEED } from '../../../include/uapi/asm-generic/mman.js';
import { sched_yield, type Scheduler, type Sleepable } from '../../../lib/sim/sched.js';
import { explore, type ExploreResult } from '../../../lib/sim/explore.js';
import { pte_offset_map, ptep_get } from '../../../mm/pgtable.js';
import { pte_present, pte_pfn } from '../../../include/linux/pgtable.js';
import { pfn_to_page } from '../../../mm/page_alloc.js';
import type { mm_struct } from '../../../include/linux/mm_types.js';
import { mmu_notifier_2008_params, mmuNotifier2008ParamsReset } from '../../../mm/mmu_notifier_2008.js';
import { gru_access32, gru_register_mmu_notifier } from '../../../drivers/misc/sgi-gru/gru.js';
import { kvm_create_vm, kvm_guest_access32 } from '../../../drivers/kvm-like/kvm_main.js';

export type notifier_user = 'gru' | 'kvm';
const MARK = 0x1111;

/* the frame the CPU maps at @va now, or -1 */
function cpu_pfn(mm: mm_struct, va: number): number {
  const ptep = pte_offset_map(mm, va);
  if (ptep < 0) return -1;
  const pte = ptep_get(mm, ptep);
  return pte_present(pte) ? pte_pfn(pte) : -1;
}

/* loads, over every run, of a frame the CPU had unmapped but the device still pinned (KVM's window) */
let stale_pinned_loads = 0;

/** What one load saw. */
export interface load_seen { value: number; pfn: number; cpu_pfn: number; pinned: boolean; }

/* one device load of @va, checked in the same step (no yield between the load and the check) */
function* device_load(user: notifier_user, dev: unknown, mm: mm_struct, va: number, seen: load_seen[]): Sleepable {
  let value: number, pfn: number, pinned: boolean;
  if (user === 'gru') {
    const r = yield* gru_access32(dev as Parameters<typeof gru_access32>[0], va);
    if (typeof r === 'number') throw new Error(`gru load: ${r}`);
    value = r.value; pfn = r.pfn; pinned = false;
  } else {
    const r = yield* kvm_guest_access32(dev as Parameters<typeof kvm_guest_access32>[0], va);
    if (typeof r === 'number') throw new Error(`kvm load: ${r}`);
    value = r.value; pfn = r.page.pfn; pinned = page_count(r.page) > 0;   /* the shadow entry's reference */
  }
  const s: load_seen = { value, pfn, cpu_pfn: cpu_pfn(mm, va), pinned };
  seen.push(s);
  if (s.pfn !== s.cpu_pfn && s.pinned) stale_pinned_loads++;
  if (s.pfn !== s.cpu_pfn && !s.pinned) {
    const free = page_count(pfn_to_page(pfn)) === 0 ? 'free' : 'reallocated';
    throw new Error(`${user} read frame ${pfn} (${free}, value 0x${value.toString(16)}) that the CPU no longer maps ` +
      `at 0x${va.toString(16)} and the device holds no reference on`);
  }
}

/**
 * notifiers2008Race() - the race world above for @user; with @pair false
 * the 2008 layer's range pair is collapsed after the change
 * (broken_no_range_pair). Return: the per-run world builder for explore()
 * and the loads of the last run.
 */
export function notifiers2008Race(user: notifier_user, pair: boolean): { world: (s: Scheduler) => void; seen: load_seen[] } {
  const seen: load_seen[] = [];
  const world = (s: Scheduler) => {
    seen.length = 0;
    mmuNotifier2008ParamsReset();
    mmu_notifier_2008_params.broken_no_range_pair = !pair;
    start_kernel({ ram_bytes: 1 << 20 });
    const a = Process.spawn('guest');
    const buf = a.mmap(0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    a.write32(buf, MARK);
    a.write32(buf + PAGE_SIZE, MARK);
    const dev = user === 'gru' ? runAs(a.task, gru_register_mmu_notifier(a.mm)) : runAs(a.task, kvm_create_vm(a.mm));
    runAs(a.task, device_load(user, dev, a.mm, buf, []));        /* the TLB / shadow entry exists */
    s.spawn('cpu', function* () { yield* a.sys.madvise(buf, PAGE_SIZE, MADV_DONTNEED); }, 'user', a.task);
    s.spawn('device', function* () {
      yield* device_load(user, dev, a.mm, buf, seen);
      yield* sched_yield();
      yield* device_load(user, dev, a.mm, buf, seen);
    }, 'kthread');
  };
  return { world, seen };
}

/** notifiers2008Explore() - explore() of the race; the last failure's message, or null. */
export function notifiers2008Explore(user: notifier_user, pair: boolean, maxRuns = 3000, preemptionBound = 2):
    { result: ExploreResult; error: string | null; seen: load_seen[]; stale_pinned_loads: number } {
  stale_pinned_loads = 0;
  const r = notifiers2008Race(user, pair);
  const result = explore(r.world, { preemptPoints: true, preemptionBound, maxRuns });
  mmuNotifier2008ParamsReset();
  const e = result.failure?.error;
  return { result, error: e === undefined ? null : e instanceof Error ? e.message : String(e), seen: r.seen,
    stale_pinned_loads };
}

/** notifiers2008Report() - the four explorations, as the scenario prints them. */
export function notifiers2008Report(): { lines: string[]; failed: Record<string, boolean> } {
  const lines = ['2008 notifier API (Linux 2.6.27): MADV_DONTNEED of a page racing two device loads;',
    'every interleaving with at most 2 preemptions (explore, preemption points on)', ''];
  const failed: Record<string, boolean> = {};
  for (const pair of [true, false]) {
    for (const user of ['kvm', 'gru'] as const) {
      const x = notifiers2008Explore(user, pair);
      const key = `${user}-${pair ? 'pair' : 'nopair'}`;
      failed[key] = x.error !== null;
      const what = user === 'kvm' ? 'KVM-like (pins)  ' : 'GRU-like (no pin)';
      const how = pair ? 'range_start/end  ' : 'no pair (late)   ';
      lines.push(`  ${what} ${how} ${x.result.runs} runs: ` +
        (x.error === null ? `${x.result.complete ? 'all' : 'no failure in the'} interleavings correct` : `FAILS: ${x.error}`));
      if (x.stale_pinned_loads > 0)
        lines.push(`      ${x.stale_pinned_loads} loads used a frame the CPU had already unmapped: still pinned by KVM, never freed`);
      if (x.result.failure?.trace) lines.push(`      schedule: ${x.result.failure.trace}`);
    }
  }
  lines.push('', 'Arcangeli (Feb 2008): range_begin is needed for GRU only because range_end comes after the VM',
    'released the pages; KVM holds a reference on every page its shadow table maps, so it stays correct.');
  return { lines, failed };
}

export const notifiers_2008_scenario = defineScenario({
  name: 'notifiers-2008',
  description: 'the 2008 notifier API: drop the range pair and the pinless GRU-like user reads a freed page, KVM-like does not',
  run() { return notifiers2008Report().lines; },
});
