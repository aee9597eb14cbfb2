/*
 * test/lib/test_hmm_races.test.ts - the dmirror driver
 * (lib/test_hmm.ts) against core mm over every interleaving of small race
 * scenarios, with the checker and scenarios of tools/testing/races/mainline.ts
 * (walk-through: Documentation/vm/hmm.txt, Part 8).
 *
 *  - the checker itself: ordering after the mirror, the mapping rules,
 *    the free hook;
 *  - every scenario passes with the real driver, within its bound;
 *  - the TEST-ONLY driver that skips mmu_interval_read_retry() is caught
 *    by the end-of-run comparison, and with that comparison off, by the
 *    invalidate_range_end() observer or the free hook; each failure
 *    replays from its choice list to the same error;
 *  - the own-migration race the checker found in the driver as written.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { PROT_READ } from '../../include/uapi/asm-generic/mman.js';
import { HMM_DMIRROR_READ, HMM_DMIRROR_MIGRATE_TO_DEV } from '../../include/uapi/linux/test_hmm.js';
import { GFP_KERNEL } from '../../include/linux/gfp.js';
import { resetScheduler } from '../../lib/sim/sched.js';
import { alloc_page, put_page, pfn_to_page } from '../../mm/page_alloc.js';
import { dmirror_params, DPT_XA_TAG_READ, DPT_XA_TAG_WRITE, BACKING_PAGE } from '../../lib/test_hmm_devmem.js';
import { dpt_store } from '../../lib/test_hmm_dpt.js';
import { runAs } from '../../tools/include/nolibc/nolibc.js';
import { hmm_dmirror_cmd_sys } from '../../tools/testing/selftests/mm/hmm-tests-helpers.js';
import {
  HmmRaceViolation, bootRaceMachine, checkMirrors, cpuEntryAt, entryAgrees, mirrorsOf, exploreRace, replayRace,
  describeError, rootCause, resetRaceChecker, mainlineRaces, raceFaultVsMunmap, raceWriteVsMprotect,
  raceOwnMigrationVsDeviceFault, RACE_BOUND, type RaceMachine, type MainlineRace, type RaceResult,
} from '../../tools/testing/races/mainline.js';
import { kmemleak_exempt } from '../leakcheck/uvu.js';

test.before.each(() => { resetScheduler(); });
test.after.each(() => { resetRaceChecker(); });

/* device user @u's command on the page under test, from plain code */
function cmd(m: RaceMachine, request: number, u = 0): number {
  const x = m.users[u]!;
  return runAs(m.p.task, hmm_dmirror_cmd_sys(m.p, x.cmd, x.fd, request, x.buf, 1));
}

function throwsViolation(fn: () => void, re: RegExp): void {
  let caught: unknown = null;
  try { fn(); } catch (e) { caught = e; }
  assert.instance(rootCause(caught), HmmRaceViolation, `expected a violation, got ${describeError(caught)}`);
  assert.match(String((rootCause(caught) as Error).message), re);
}

/* ---- the checker ---- */

test('the checker runs after the mirror: a munmap of a device-mapped page is clean at invalidate_range_end', () => {
  const m = bootRaceMachine([0]);
  assert.is(cmd(m, HMM_DMIRROR_READ), 0);
  const [d] = mirrorsOf(m.p.mm);
  assert.ok(d!.pt.has(m.addr / PAGE_SIZE), 'the READ mapped the page in the device');
  checkMirrors(m.p.mm, 'test');
  assert.is(m.p.munmap(m.addr, PAGE_SIZE), 0);
  assert.ok(m.checker.rangeChecks >= 1, 'the whole-mm notifier saw the UNMAP range');
  assert.ok(m.checker.freesChecked >= 1, 'the free hook saw the page go');
  assert.not.ok(d!.pt.has(m.addr / PAGE_SIZE), 'the mirror dropped the entry before the checker ran');
});

test('entries disagreeing with the CPU are reported: a WRITE entry over a read-only PTE, a page the CPU does not map', () => {
  kmemleak_exempt('the test plants device page-table entries that name pages the CPU does not map');
  const m = bootRaceMachine([0]);
  assert.is(m.p.mprotect(m.addr, PAGE_SIZE, PROT_READ), 0);
  const [d] = mirrorsOf(m.p.mm);
  const c = cpuEntryAt(m.p.mm, m.addr);
  assert.is(c.kind, 'present');
  const mapped = pfn_to_page((c as { pfn: number }).pfn);
  assert.ok(entryAgrees(c, mapped, DPT_XA_TAG_READ));
  assert.not.ok(entryAgrees(c, mapped, DPT_XA_TAG_WRITE));
  dpt_store(d!, m.addr / PAGE_SIZE, mapped, DPT_XA_TAG_WRITE);
  throwsViolation(() => checkMirrors(m.p.mm, 'test'), /test: dmirror0\.0 maps pfn \d+ \[WRITE\] at 0x[0-9a-f]+, but the CPU maps pfn \d+ read-only/);
  const other = alloc_page(GFP_KERNEL)!;
  dpt_store(d!, m.addr / PAGE_SIZE, other, DPT_XA_TAG_READ);
  throwsViolation(() => checkMirrors(m.p.mm, 'test'), new RegExp(`maps pfn ${other.pfn} \\[READ\\].*but the CPU maps pfn ${mapped.pfn}`));
  dpt_store(d!, m.addr / PAGE_SIZE + 1, mapped, DPT_XA_TAG_READ);
  throwsViolation(() => checkMirrors(m.p.mm, 'test', m.addr / PAGE_SIZE + 1, m.addr / PAGE_SIZE + 2), /but the CPU maps nothing there/);
});

test('a migrated page agrees as its device page or its backing page, writable like its device-private entry', () => {
  const m = bootRaceMachine([0]);
  assert.is(cmd(m, HMM_DMIRROR_MIGRATE_TO_DEV), 0);
  const c = cpuEntryAt(m.p.mm, m.addr);
  assert.equal(c.kind === 'device_private' && c.write, true, 'a writable device-private entry');
  const dev = pfn_to_page((c as { pfn: number }).pfn);
  const [d] = mirrorsOf(m.p.mm);
  assert.is(d!.pt.get(m.addr / PAGE_SIZE)!.page.pfn, BACKING_PAGE(dev).pfn, 'the mirror maps the backing page');
  checkMirrors(m.p.mm, 'test');
  assert.ok(entryAgrees(c, dev, DPT_XA_TAG_WRITE), 'the device page itself, as hmm_range_fault() reports it');
  assert.not.ok(entryAgrees({ kind: 'none' }, dev, DPT_XA_TAG_READ));
});

test('the free hook reports a page freed while a device page table still maps it', () => {
  const m = bootRaceMachine([0]);
  const [d] = mirrorsOf(m.p.mm);
  const p = alloc_page(GFP_KERNEL)!;
  dpt_store(d!, 0x1234, p, DPT_XA_TAG_READ);
  throwsViolation(() => put_page(p), new RegExp(`page freed: pfn ${p.pfn} is still mapped by dmirror0\\.0 \\[READ\\] at 0x1234000`));
});

/* ---- every scenario with the real driver ---- */

function explored(r: MainlineRace): RaceResult {
  const res = exploreRace(r);
  if (res.failure !== null) assert.unreachable(`${r.name}: ${describeError(res.failure.error)} after ${res.failure.trace}`);
  return res;
}

for (const make of mainlineRaces) {
  const r = make();
  test(`${r.name}: no interleaving within ${RACE_BOUND.preemptionBound} preemptions breaks the invariant`, () => {
    const res = explored(r);
    assert.ok(res.runs > 1, `${res.runs} runs`);
    assert.ok(res.complete, `complete within the bound (${res.runs} runs of at most ${RACE_BOUND.maxRuns})`);
    assert.ok(res.rangeChecks >= res.runs, `${res.rangeChecks} invalidate_range_end checks over ${res.runs} runs`);
  });
}

/* ---- the broken driver (no mmu_interval_read_retry) ---- */

/* explore @r, expect a violation matching @re, and replay its choices to the same error */
function caught(r: MainlineRace, re: RegExp, trace: RegExp): RaceResult {
  const res = exploreRace(r);
  assert.ok(res.failure !== null, `${r.name}: no interleaving caught the broken driver in ${res.runs} runs`);
  const f = res.failure!;
  assert.instance(rootCause(f.error), HmmRaceViolation, describeError(f.error));
  assert.match(describeError(f.error), re);
  assert.match(f.trace ?? '', trace);
  const again = replayRace(r, f.choices);
  assert.is(describeError(again), describeError(f.error), 'the replay fails the same way');
  return res;
}

test('broken driver, device READ vs munmap: the end-of-run check finds a freed page in the device table', () => {
  assert.is(dmirror_params.broken_skip_read_retry, false);
  caught(raceFaultVsMunmap({ broken: true }), /^at the end of the run: dmirror0\.0 maps pfn \d+ \[WRITE\] at 0x[0-9a-f]+, a free page/,
    /^device -> munmap -> device$/);
});

test('broken driver, device WRITE vs munmap: caught the same way', () => {
  caught(raceFaultVsMunmap({ broken: true, op: 'WRITE' }), /^at the end of the run: .* a free page/, /^device -> munmap -> device$/);
});

test('broken driver, device WRITE vs mprotect: the end-of-run check finds a WRITE entry over a read-only PTE', () => {
  caught(raceWriteVsMprotect({ broken: true }), /^at the end of the run: dmirror0\.0 maps pfn (\d+) \[WRITE\] .* but the CPU maps pfn \1 read-only/,
    /^device -> mprotect -> device$/);
});

test('broken driver, end-of-run check off: the free hook catches the publish inside the munmap', () => {
  kmemleak_exempt('a deliberately broken driver leaves its machine mid-race');
  caught(raceFaultVsMunmap({ broken: true, observersOnly: true }),
    /thread "munmap" \(id \d+\) died: page freed: pfn \d+ is still mapped by dmirror0\.0 \[WRITE\]/, /^device -> munmap -> device -> munmap$/);
});

test('broken driver, end-of-run check off: the invalidate_range_end observer catches the publish inside the mprotect', () => {
  kmemleak_exempt('a deliberately broken driver leaves its machine mid-race');
  caught(raceWriteVsMprotect({ broken: true, observersOnly: true }),
    /thread "mprotect" \(id \d+\) died: after invalidate_range_end\(PROTECTION_VMA\): dmirror0\.0 maps pfn (\d+) \[WRITE\] .* read-only/,
    /^device -> mprotect -> device -> mprotect$/);
});

test('the broken knob is per boot: a fresh machine starts with the real driver', () => {
  dmirror_params.broken_skip_read_retry = true;
  bootRaceMachine([0]);
  assert.is(dmirror_params.broken_skip_read_retry, false);
});

/* ---- what the checker found in the driver as written ---- */

test('own-migration race: a device READ publishes its own page after a migration of it freed it (driver as written)', () => {
  const r = raceOwnMigrationVsDeviceFault();
  const res = caught(r, /^at the end of the run: dmirror0\.0 maps pfn \d+ \[WRITE\] at 0x[0-9a-f]+, a free page/, /device/);
  assert.not.ok(res.failure!.choices.length === 0);
  /* the same schedule, judged by its data alone: the READ hands back bytes of a freed device page */
  const data = replayRace(raceOwnMigrationVsDeviceFault({ observersOnly: true }), res.failure!.choices);
  assert.match(describeError(data), /READ returned wrong data/);
});

test.run();
