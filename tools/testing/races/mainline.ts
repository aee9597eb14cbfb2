/*
 * tools/testing/races/mainline.ts - race checks of mainline HMM: small
 * scenarios run over every interleaving (up to a stated bound) against the
 * coherence invariant of a mirrored address space.
 *
 * No Linux twin: in Linux these races are argued in review and shaken out
 * by running the hmm self-tests under load. Here explore()
 * (lib/sim/explore.ts) enumerates the interleavings of two or three
 * simulated threads, and a checker states what must hold:
 *
 *   After mmu_notifier_invalidate_range_end() returns, no device page
 *   table maps a page that the CPU page table no longer maps at that
 *   address, and no page is freed while a device maps it.
 *
 * The checker (RaceChecker) is an observer made of kernel parts:
 *
 *  - a whole-mm mmu_notifier on the process's mm. Interval notifiers (the
 *    dmirror mirrors) are called on range start, before whole-mm ones;
 *    whole-mm invalidate_range_end() callbacks run after the CPU change
 *    and after the interval side closed its sequence (mm/mmu_notifier.ts),
 *    so at that point every mirror must agree with the CPU over the range;
 *  - a page-free hook (register_free_hook): the last put of a RAM page
 *    that a device page table still holds is a violation on the spot
 *    (ZONE_DEVICE pages go to their driver's hook first; for them, and
 *    for backing pages the driver frees directly, the comparisons below
 *    find the entry's page with no reference left);
 *  - the same comparison over every entry of every mirror at the end of
 *    each run, with no thread left running.
 *
 * "Agree" follows the dmirror's own mapping rules (lib/test_hmm*.ts): a
 * READ or WRITE entry needs the CPU to map the same page at that address
 * (a present PTE; a device-private entry of that device page, whose entry
 * may hold the device page or its backing RAM page; a migration entry of
 * it while a migration owns the page), and WRITE needs the CPU entry to be
 * writable; an ATOMIC entry needs a device-exclusive entry of that page.
 * A page an entry holds must not be free (refcount 0).
 *
 * The scenarios, their bounds and what breaks with the TEST-ONLY
 * dmirror_params.broken_skip_read_retry are described in
 * Documentation/vm/hmm.txt, Part 8.
 */
import type { mm_struct, page } from '../../../include/linux/mm_types.js';
import { PAGE_SIZE, PMD_SIZE, PUD_SIZE } from '../../../include/linux/mm.js';
import { pte_write, pte_pfn, pmd_trans_huge, pmd_write, pmd_pfn, pmd_is_table, PUD_LEVEL } from '../../../include/linux/pgtable.js';
import {
  pte_kind, swp_offset_pfn, is_writable_migration_entry, is_writable_device_private_entry,
} from '../../../include/linux/swapops.js';
import { is_device_private_page } from '../../../include/linux/memremap.js';
import { mmu_notifier_event_names, type mmu_notifier, type mmu_notifier_range } from '../../../include/linux/mmu_notifier.js';
import {
  HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_RELEASE,
} from '../../../include/uapi/linux/test_hmm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';
import { EFAULT, ENOENT, EPERM } from '../../../include/uapi/asm-generic/errno.js';
import { Scheduler, explore, type ExploreResult, type Sleepable } from '../../../lib/sim/sched.js';
import { start_kernel } from '../../../mm/init.js';
import { pfn_to_page, pfn_valid, register_free_hook } from '../../../mm/page_alloc.js';
import { pmd_off, pte_offset_map, ptep_get } from '../../../mm/pgtable.js';
import { mmu_notifier_register, notifierSubscriptionsOf } from '../../../mm/mmu_notifier.js';
import { O_RDWR } from '../../../mm/file.js';
import {
  dmirror, dmirror_params, DPT_XA_TAG_READ, DPT_XA_TAG_WRITE, DPT_XA_TAG_ATOMIC, BACKING_PAGE, dmirror_page_to_device,
} from '../../../lib/test_hmm_devmem.js';
import { Process, runAs } from '../../include/nolibc/nolibc.js';
import { hmm_dmirror_cmd_sys, type hmm_buffer } from '../selftests/mm/hmm-tests-helpers.js';
import { hmm_dmirror_init } from '../../../lib/test_hmm.js';

/** What the checker throws: the invariant broke. */
export class HmmRaceViolation extends Error {
  override name = 'HmmRaceViolation';
}

/* ------------------------------------------------------------ the CPU's view */

/** What the CPU page table holds at one address, reduced to what a mirror entry is compared with. */
export type CpuEntry =
  | { kind: 'none' }
  | { kind: 'present'; pfn: number; write: boolean }
  | { kind: 'device_private'; pfn: number; write: boolean }
  | { kind: 'migration'; pfn: number; write: boolean }
  | { kind: 'device_exclusive'; pfn: number }
  | { kind: 'other'; what: string };

/**
 * cpuEntryAt() - the CPU mapping of @addr in @mm: a PUD or PMD leaf (the
 * page of the leaf at that offset), a PTE, or a non-present entry.
 * Lockless (the scheduler is cooperative: nobody writes while we read).
 */
export function cpuEntryAt(mm: mm_struct, addr: number): CpuEntry {
  const pudp = mm.pgd.lookup(addr, PUD_LEVEL);
  if (pudp >= 0) {
    const pud = mm.pgd.load(pudp);
    if (pmd_trans_huge(pud)) return { kind: 'present', pfn: pmd_pfn(pud) + Math.floor((addr % PUD_SIZE) / PAGE_SIZE), write: pmd_write(pud) };
  }
  const pmdp = pmd_off(mm, addr);
  if (pmdp < 0) return { kind: 'none' };
  const pmd = mm.pgd.load(pmdp);
  if (pmd === 0) return { kind: 'none' };
  if (pmd_trans_huge(pmd)) return { kind: 'present', pfn: pmd_pfn(pmd) + Math.floor((addr % PMD_SIZE) / PAGE_SIZE), write: pmd_write(pmd) };
  if (!pmd_is_table(pmd)) return { kind: 'other', what: `PMD entry 0x${pmd.toString(16)}` };
  const ptep = pte_offset_map(mm, addr);
  const pte = ptep < 0 ? 0 : ptep_get(mm, ptep);
  const k = pte_kind(pte);
  switch (k.kind) {
    case 'none': return { kind: 'none' };
    case 'present': return { kind: 'present', pfn: pte_pfn(pte), write: pte_write(pte) };
    case 'migration': return { kind: 'migration', pfn: swp_offset_pfn(k.entry), write: is_writable_migration_entry(k.entry) };
    case 'device_private':
      return { kind: 'device_private', pfn: swp_offset_pfn(k.entry), write: is_writable_device_private_entry(k.entry) };
    case 'device_exclusive': return { kind: 'device_exclusive', pfn: swp_offset_pfn(k.entry) };
    case 'swap': case 'hwpoison': case 'hmm': case 'marker': return { kind: 'other', what: `${k.kind} entry` };
    default: { const never: never = k; return never; }
  }
}

function describeCpu(c: CpuEntry): string {
  switch (c.kind) {
    case 'none': return 'maps nothing there';
    case 'present': return `maps pfn ${c.pfn} ${c.write ? 'writable' : 'read-only'}`;
    case 'device_private': return `has a ${c.write ? 'writable' : 'read-only'} device-private entry of pfn ${c.pfn}`;
    case 'migration': return `has a ${c.write ? 'writable' : 'read-only'} migration entry of pfn ${c.pfn}`;
    case 'device_exclusive': return `has a device-exclusive entry of pfn ${c.pfn}`;
    case 'other': return `has a ${c.what}`;
    default: { const never: never = c; return never; }
  }
}

/* the CPU's page of a pfn entry, or null when the pfn has no struct page */
function pageOf(pfn: number): page | null {
  return pfn_valid(pfn) ? pfn_to_page(pfn) : null;
}

/* does the CPU entry stand for page @p (the device-private page itself or its backing RAM page)? */
function samePage(c: { pfn: number }, p: page): boolean {
  if (c.pfn === p.pfn) return true;
  const cp = pageOf(c.pfn);
  return cp !== null && is_device_private_page(cp) && BACKING_PAGE(cp)?.pfn === p.pfn;
}

/**
 * entryAgrees() - does one mirror entry (@p, @tag) agree with the CPU
 * entry @c at the same address? See the file header for the rules.
 */
export function entryAgrees(c: CpuEntry, p: page, tag: number): boolean {
  if (tag === DPT_XA_TAG_ATOMIC) return c.kind === 'device_exclusive' && c.pfn === p.pfn;
  switch (c.kind) {
    case 'present': case 'device_private': case 'migration':
      return samePage(c, p) && (tag !== DPT_XA_TAG_WRITE || c.write);
    case 'none': case 'device_exclusive': case 'other':
      return false;
    default: { const never: never = c; return never; }
  }
}

const tagName = (tag: number): string =>
  tag === DPT_XA_TAG_WRITE ? 'WRITE' : tag === DPT_XA_TAG_READ ? 'READ' : tag === DPT_XA_TAG_ATOMIC ? 'ATOMIC' : `tag ${tag}`;

/* ------------------------------------------------------------ the checker */

/** mirrorsOf() - every dmirror subscribed to @mm (container_of its interval notifier). */
export function mirrorsOf(mm: mm_struct): dmirror[] {
  const subs = notifierSubscriptionsOf(mm);
  if (subs === null) return [];
  const out = new Set<dmirror>();
  for (const n of subs.itree.all()) {
    const d = (n as { dmirror?: unknown }).dmirror;
    if (d instanceof dmirror) out.add(d);
  }
  return [...out];
}

function mirrorName(d: dmirror): string { return d.mutex.name.replace(/\.mutex$/, ''); }

/**
 * checkMirrors() - compare every mirror of @mm with the CPU page table over
 * the virtual pages [first, last) (all entries when @first is null).
 * @where: named in the violation ("invalidate_range_end(UNMAP)", ...).
 * Throws HmmRaceViolation at the first disagreement.
 */
export function checkMirrors(mm: mm_struct, where: string, first: number | null = null, last = 0): void {
  for (const d of mirrorsOf(mm)) {
    for (const [vpn, e] of d.pt) {
      if (first !== null && (vpn < first || vpn >= last)) continue;
      const addr = vpn * PAGE_SIZE;
      const at = `${where}: ${mirrorName(d)} maps pfn ${e.page.pfn} [${tagName(e.tag)}] at 0x${addr.toString(16)}`;
      if (e.page.compound_head._refcount <= 0) throw new HmmRaceViolation(`${at}, a free page`);
      const c = cpuEntryAt(mm, addr);
      if (!entryAgrees(c, e.page, e.tag)) throw new HmmRaceViolation(`${at}, but the CPU ${describeCpu(c)}`);
    }
  }
}

/** The observer of one machine's mm; see the file header. */
export interface RaceChecker {
  readonly mm: mm_struct;
  readonly notifier: mmu_notifier;
  rangeChecks: number;        /* invalidate_range_end() callbacks checked */
  freesChecked: number;       /* page frees checked against the mirrors */
}

/* The checker of the machine that runs now: the free hook is global and installed once. */
let active: RaceChecker | null = null;
let hooked = false;
/* checks made since exploreRace() started */
const totals = { rangeChecks: 0, freesChecked: 0 };

function onFree(p: page): boolean {
  const c = active;
  if (c === null) return false;
  c.freesChecked++;
  totals.freesChecked++;
  const lo = p.pfn, hi = p.pfn + 2 ** p.order;
  for (const d of mirrorsOf(c.mm)) {
    for (const [vpn, e] of d.pt) {
      if (e.page.pfn >= lo && e.page.pfn < hi)
        throw new HmmRaceViolation(`page freed: pfn ${e.page.pfn} is still mapped by ${mirrorName(d)} ` +
          `[${tagName(e.tag)}] at 0x${(vpn * PAGE_SIZE).toString(16)}`);
    }
  }
  return false;
}

function* checker_invalidate_range_end(sub: mmu_notifier, range: mmu_notifier_range): Sleepable {
  const c = active;
  if (c === null || c.notifier !== sub) return;
  c.rangeChecks++;
  totals.rangeChecks++;
  const ev = mmu_notifier_event_names[range.event] ?? String(range.event);
  checkMirrors(range.mm, `after invalidate_range_end(${ev})`, Math.floor(range.start / PAGE_SIZE),
    Math.ceil(range.end / PAGE_SIZE));
}

const race_checker_ops = Object.freeze({ invalidate_range_end: checker_invalidate_range_end });

/**
 * installRaceChecker() - watch @p's address space: register the whole-mm
 * notifier (called after every interval notifier, whenever those were
 * registered) and point the free hook at it. Call on a fresh machine,
 * from plain code (it takes mmap_lock for write).
 * Return: the checker, also the active one until the next install or
 * resetRaceChecker().
 */
export function installRaceChecker(p: Process): RaceChecker {
  if (!hooked) { register_free_hook(onFree); hooked = true; }
  const notifier: mmu_notifier = { ops: race_checker_ops, mm: null };
  const ret = runAs(p.task, mmu_notifier_register(notifier, p.mm));
  if (ret !== 0) throw new Error(`races: mmu_notifier_register failed: ${ret}`);
  active = { mm: p.mm, notifier, rangeChecks: 0, freesChecked: 0 };
  return active;
}

/** resetRaceChecker() - stop checking, and put the test-only driver knob back. For tests (after.each). */
export function resetRaceChecker(): void {
  active = null;
  dmirror_params.broken_skip_read_retry = false;
}

/* ------------------------------------------------------------ scenarios */

/** Bound of one exploration: at most @preemptionBound preemptions per run, at most @maxRuns runs. */
export interface RaceBound { preemptionBound: number; maxRuns: number }

/**
 * A race scenario. run(s) boots a fresh machine, sets up one process,
 * installs the checker and spawns 2-3 threads on @s; check() runs the
 * end-of-run comparison and the scenario's own outcome checks.
 */
export interface MainlineRace {
  readonly name: string;
  readonly bound: RaceBound;
  run(s: Scheduler): void;
  check(): void;
}

/** Options every scenario takes. */
export interface RaceOptions {
  /* set dmirror_params.broken_skip_read_retry after boot (the driver bug the check must catch) */
  broken?: boolean;
  /* skip the end-of-run comparison: only the invalidate_range_end() observer and the free hook check */
  observersOnly?: boolean;
}

/** The bound every scenario is explored with: its enumeration completes well inside it. */
export const RACE_BOUND: RaceBound = Object.freeze({ preemptionBound: 3, maxRuns: 1000 });

const RW = PROT_READ | PROT_WRITE, PRIV_ANON = MAP_PRIVATE | MAP_ANONYMOUS;
/** Word i of the page under test holds PATTERN + i. */
export const PATTERN = 0x5a000000;

/** One thread's use of a device: the fd of its unit, its own command block, its hmm_buffer over the page. */
export interface RaceDeviceUser { fd: number; cmd: number; buf: hmm_buffer }

/** The machine of one run: the process, the page under test (word i = PATTERN + i), the checker. */
export interface RaceMachine { p: Process; addr: number; checker: RaceChecker; users: RaceDeviceUser[] }

/**
 * bootRaceMachine() - a fresh machine with the private devices only (the
 * coherent ones cost two 16 MiB chunks per boot and no scenario needs
 * them), one process, one populated page at .addr, the checker, and one
 * device user per entry of @units (a unit named twice is opened once:
 * both users share the mirror, each has its own command block).
 */
export function bootRaceMachine(units: number[], opts: RaceOptions = {}): RaceMachine {
  const spm = dmirror_params.spm;
  dmirror_params.spm = false;
  try { start_kernel({ ram_bytes: 4 << 20 }); hmm_dmirror_init(); } finally { dmirror_params.spm = spm; }
  dmirror_params.broken_skip_read_retry = opts.broken ?? false;
  const p = Process.spawn('race');
  const addr = p.mmap(0, PAGE_SIZE, RW, PRIV_ANON);
  p.fill32(addr, PAGE_SIZE, PATTERN);
  const fds = new Map<number, number>();
  const users = units.map((u) => {
    const fd = fds.get(u) ?? p.open(`/dev/hmm_dmirror${u}`, O_RDWR);
    fds.set(u, fd);
    const cmd = p.mmap(0, PAGE_SIZE, RW, PRIV_ANON);
    const mirror = p.mmap(0, PAGE_SIZE, RW, PRIV_ANON);
    if (fd < 0 || cmd < 0 || mirror < 0) throw new Error(`races: setup failed (fd ${fd})`);
    p.fill32(cmd, PAGE_SIZE, 0);
    p.fill32(mirror, PAGE_SIZE, 0);
    return { fd, cmd, buf: { ptr: addr, mirror, mirror_size: PAGE_SIZE, size: PAGE_SIZE, fd, cpages: 0, faults: 0 } };
  });
  return { p, addr, checker: installRaceChecker(p), users };
}

/* device user @u's command on the page under test, from a simulated thread */
function devCmd(r: RaceMachine, u: number, request: number): Sleepable<number> {
  const x = r.users[u]!;
  return hmm_dmirror_cmd_sys(r.p, x.cmd, x.fd, request, x.buf, 1);
}

function spawnUser(s: Scheduler, r: RaceMachine, name: string, body: () => Sleepable<unknown>): void {
  s.spawn(name, body, 'user', r.p.task);
}

function expect(cond: boolean, what: string): void {
  if (!cond) throw new Error(`races: ${what}`);
}

/* the words at @addr as the CPU reads them now (device pages fault back) */
function cpuWords(p: Process, addr: number): Uint32Array {
  return new Uint32Array(p.read(addr, PAGE_SIZE).buffer);
}

/* first word from @from on that is not PATTERN + i, or -1 */
function patternAt(words: Uint32Array, from = 0): number {
  for (let i = from; i < words.length; i++) if (words[i] !== ((PATTERN + i) >>> 0)) return i;
  return -1;
}

/* What every scenario shares: the machine of the last run and the end-of-run check. */
function scenario(name: string, opts: RaceOptions, setup: (s: Scheduler) => RaceMachine, outcome: (r: RaceMachine) => void): MainlineRace {
  let r: RaceMachine | null = null;
  return {
    name: name + (opts.broken ? ' (broken driver)' : ''),
    bound: RACE_BOUND,
    run(s) { active = null; r = setup(s); },
    check() {
      if (!opts.observersOnly) checkMirrors(r!.p.mm, 'at the end of the run');
      active = null;
      outcome(r!);
    },
  };
}

/**
 * raceFaultVsMunmap() - a device READ (or WRITE, @op) of the page against
 * munmap() of it. Outcome: the command returns 0 (a READ with the page's
 * data) or -EFAULT.
 */
export function raceFaultVsMunmap(opts: RaceOptions & { op?: 'READ' | 'WRITE' } = {}): MainlineRace {
  const op = opts.op ?? 'READ';
  let ret = 1;
  return scenario(`device ${op} vs munmap`, opts,
    (s) => {
      const r = bootRaceMachine([0], opts);
      if (op === 'WRITE') r.p.fill32(r.users[0]!.buf.mirror, PAGE_SIZE, PATTERN);
      ret = 1;
      spawnUser(s, r, 'device', function* () { ret = yield* devCmd(r, 0, op === 'READ' ? HMM_DMIRROR_READ : HMM_DMIRROR_WRITE); });
      spawnUser(s, r, 'munmap', function* () { yield* r.p.sys.munmap(r.addr, PAGE_SIZE); });
      return r;
    },
    (r) => {
      expect(ret === 0 || ret === -EFAULT, `${op} returned ${ret}`);
      if (ret === 0 && op === 'READ') expect(patternAt(cpuWords(r.p, r.users[0]!.buf.mirror)) === -1, 'READ returned wrong data');
    });
}

/**
 * raceWriteVsMprotect() - a device WRITE of the page against
 * mprotect(PROT_READ) of it. Outcome: the WRITE returns 0 and the page
 * holds the device's data, or -EPERM and the page is unchanged.
 */
export function raceWriteVsMprotect(opts: RaceOptions = {}): MainlineRace {
  let ret = 1;
  const DEVDATA = 0x0d000000;
  return scenario('device WRITE vs mprotect(PROT_READ)', opts,
    (s) => {
      const r = bootRaceMachine([0], opts);
      r.p.fill32(r.users[0]!.buf.mirror, PAGE_SIZE, DEVDATA);
      ret = 1;
      spawnUser(s, r, 'device', function* () { ret = yield* devCmd(r, 0, HMM_DMIRROR_WRITE); });
      spawnUser(s, r, 'mprotect', function* () { yield* r.p.sys.mprotect(r.addr, PAGE_SIZE, PROT_READ); });
      return r;
    },
    (r) => {
      expect(ret === 0 || ret === -EPERM, `WRITE returned ${ret}`);
      const bad = ret === 0 ? r.p.check32(r.addr, PAGE_SIZE, DEVDATA) : patternAt(cpuWords(r.p, r.addr));
      expect(bad === -1, `page data wrong at word ${bad} after WRITE returned ${ret}`);
    });
}

/**
 * raceMigrateVsCpuFault() - MIGRATE_TO_DEV of the page against a CPU
 * store to it: the store lands before, waits on the migration entry, or
 * faults the page back from the device (dmirror_devmem_fault). Outcome:
 * the migration returns 0 or -ENOENT (the page left the device before the
 * read-back); the store and the rest of the data survive.
 */
export function raceMigrateVsCpuFault(opts: RaceOptions = {}): MainlineRace {
  let ret = 1;
  const STORED = 0xc0ffee;
  return scenario('MIGRATE_TO_DEV vs CPU store', opts,
    (s) => {
      const r = bootRaceMachine([0], opts);
      ret = 1;
      spawnUser(s, r, 'migrate', function* () { ret = yield* devCmd(r, 0, HMM_DMIRROR_MIGRATE_TO_DEV); });
      spawnUser(s, r, 'cpu', function* () { yield* r.p.sys.store(r.addr, 4, STORED); });
      return r;
    },
    (r) => {
      expect(ret === 0 || ret === -ENOENT, `MIGRATE_TO_DEV returned ${ret}`);
      const w = cpuWords(r.p, r.addr);
      expect(w[0] === STORED && patternAt(w, 1) === -1, 'page data lost');
    });
}

/**
 * raceOwnMigrationVsDeviceFault() - the scenario above plus a device READ
 * of the page through the same mirror, so that hmm_range_fault() can
 * report the device's own page (dev_private_owner) or the RAM page while
 * a migration of that page, started by this device or by the CPU fault
 * on its memory, is in flight. The mirror ignores MMU_NOTIFY_MIGRATE
 * ranges it owns and, as written, does not publish their sequence either,
 * so the READ's mmu_interval_read_retry() misses them: see "The
 * own-migration race" in Documentation/vm/hmm.txt, Part 8. Outcome as
 * above, and the READ returns 0 with the data before or after the store.
 */
export function raceOwnMigrationVsDeviceFault(opts: RaceOptions = {}): MainlineRace {
  const rets = [1, 1];
  const STORED = 0xc0ffee;
  return scenario('MIGRATE_TO_DEV vs CPU store vs device READ on the same mirror', opts,
    (s) => {
      const r = bootRaceMachine([0, 0], opts);
      rets.fill(1);
      spawnUser(s, r, 'migrate', function* () { rets[0] = yield* devCmd(r, 0, HMM_DMIRROR_MIGRATE_TO_DEV); });
      spawnUser(s, r, 'cpu', function* () { yield* r.p.sys.store(r.addr, 4, STORED); });
      spawnUser(s, r, 'device', function* () { rets[1] = yield* devCmd(r, 1, HMM_DMIRROR_READ); });
      return r;
    },
    (r) => {
      expect(rets[0] === 0 || rets[0] === -ENOENT, `MIGRATE_TO_DEV returned ${rets[0]}`);
      expect(rets[1] === 0, `READ returned ${rets[1]}`);
      const seen = cpuWords(r.p, r.users[1]!.buf.mirror);
      expect((seen[0] === STORED || seen[0] === PATTERN >>> 0) && patternAt(seen, 1) === -1, 'READ returned wrong data');
      const w = cpuWords(r.p, r.addr);
      expect(w[0] === STORED && patternAt(w, 1) === -1, 'page data lost');
    });
}

/**
 * raceTwoDevicesMigrate() - two devices that both mirror the page (each
 * READ it first) MIGRATE_TO_DEV it at once while the CPU loads from it.
 * Outcome: the CPU load sees the data; when the page ends on a device,
 * that device's migration returned 0 and the other device does not map
 * it (either may also have lost its mapping to the other's MIGRATE
 * invalidation, as in Linux); the data survives.
 */
export function raceTwoDevicesMigrate(opts: RaceOptions = {}): MainlineRace {
  const rets = [1, 1];
  let loaded = -1;
  return scenario('two devices MIGRATE_TO_DEV one page while the CPU loads', opts,
    (s) => {
      const r = bootRaceMachine([0, 1], opts);
      for (const u of [0, 1]) expect(runAs(r.p.task, devCmd(r, u, HMM_DMIRROR_READ)) === 0, 'setup READ');
      rets.fill(1);
      loaded = -1;
      for (const u of [0, 1]) spawnUser(s, r, `dev${u}`, function* () { rets[u] = yield* devCmd(r, u, HMM_DMIRROR_MIGRATE_TO_DEV); });
      spawnUser(s, r, 'cpu', function* () { loaded = yield* r.p.sys.load(r.addr + 4, 4); });
      return r;
    },
    (r) => {
      for (const x of rets) expect(x === 0 || x === -ENOENT, `MIGRATE_TO_DEV returned ${x}`);
      expect(loaded === PATTERN + 1, `the CPU loaded 0x${loaded.toString(16)}`);
      const c = cpuEntryAt(r.p.mm, r.addr);
      if (c.kind === 'device_private') {
        const owner = dmirror_page_to_device(pfn_to_page(c.pfn));
        expect(owner !== null && rets[owner.minor] === 0, `the page is on device ${owner?.minor} whose migration returned ${rets.join(', ')}`);
        for (const d of mirrorsOf(r.p.mm)) {
          expect(d.mdevice === owner || !d.pt.has(r.addr / PAGE_SIZE), `${mirrorName(d)} maps a page of another device`);
        }
      }
      expect(patternAt(cpuWords(r.p, r.addr)) === -1, 'page data lost');
    });
}

/**
 * raceForkDuringMigration() - fork() against two migrations of the page:
 * MIGRATE_TO_DEV of it, and the eviction of the device's memory
 * (HMM_DMIRROR_RELEASE: migrate_device_range(), which works through rmap
 * without mmap_lock, so fork can copy the page's device-private or
 * migration entry while it runs). Outcome: parent and child read the
 * data, and a store of the child stays in the child.
 */
export function raceForkDuringMigration(opts: RaceOptions = {}): MainlineRace {
  const rets = [1, 1];
  let child = 0;
  return scenario('fork during migration to and from the device', opts,
    (s) => {
      const r = bootRaceMachine([0, 0], opts);
      rets.fill(1);
      child = 0;
      spawnUser(s, r, 'migrate', function* () { rets[0] = yield* devCmd(r, 0, HMM_DMIRROR_MIGRATE_TO_DEV); });
      spawnUser(s, r, 'fork', function* () { child = yield* r.p.sys.fork(); });
      spawnUser(s, r, 'evict', function* () { rets[1] = yield* devCmd(r, 1, HMM_DMIRROR_RELEASE); });
      return r;
    },
    (r) => {
      expect(rets[0] === 0 || rets[0] === -ENOENT, `MIGRATE_TO_DEV returned ${rets[0]}`);
      expect(rets[1] === 0, `RELEASE returned ${rets[1]}`);
      expect(child > 0, `fork returned ${child}`);
      const c = Process.of(child);
      expect(patternAt(cpuWords(r.p, r.addr)) === -1, 'the parent lost the data');
      expect(patternAt(cpuWords(c, r.addr)) === -1, 'the child lost the data');
      c.write32(r.addr, 1);
      expect(r.p.read32(r.addr) === PATTERN >>> 0, 'a store of the child reached the parent');
    });
}

/** Every scenario, in the order of Documentation/vm/hmm.txt, Part 8. */
export const mainlineRaces: readonly ((opts?: RaceOptions) => MainlineRace)[] = Object.freeze([
  (o: RaceOptions = {}) => raceFaultVsMunmap({ ...o, op: 'READ' }),
  (o: RaceOptions = {}) => raceFaultVsMunmap({ ...o, op: 'WRITE' }),
  raceWriteVsMprotect, raceMigrateVsCpuFault, raceTwoDevicesMigrate, raceForkDuringMigration,
]);

/** What exploreRace() returns: explore()'s result and how much the checker looked at, over all runs. */
export interface RaceResult extends ExploreResult {
  rangeChecks: number;        /* invalidate_range_end() callbacks checked */
  freesChecked: number;       /* page frees checked against the mirrors */
}

/**
 * exploreRace() - explore() @r within its bound (or @bound), checking
 * after every run. Return: the ExploreResult.
 */
export function exploreRace(r: MainlineRace, bound: RaceBound = r.bound): RaceResult {
  totals.rangeChecks = 0;
  totals.freesChecked = 0;
  try {
    const res = explore((s) => r.run(s), { ...bound, check: () => r.check() });
    return { ...res, rangeChecks: totals.rangeChecks, freesChecked: totals.freesChecked };
  } finally {
    active = null;
  }
}

/**
 * replayRace() - run @r once more with the scheduling choices @choices
 * (from a failure), through the same checks. Return: what the run threw,
 * or null if it passed.
 */
export function replayRace(r: MainlineRace, choices: number[]): unknown {
  const s = new Scheduler({ mode: 'enumerate', choices });
  try {
    r.run(s);
    s.run();
    r.check();
    return null;
  } catch (e) {
    return e;
  } finally {
    active = null;
  }
}

/** describeError() - the message of a failure, down to the root cause (SimThreadError wraps it). */
export function describeError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = (e as { cause?: unknown }).cause;
  return cause instanceof Error ? `${e.message} [${cause.name}]` : `${e.message} [${e.name}]`;
}

/** rootCause() - the error a thread died of (the cause of a SimThreadError), else @e. */
export function rootCause(e: unknown): unknown {
  const cause = e instanceof Error ? (e as { cause?: unknown }).cause : undefined;
  return cause instanceof Error ? cause : e;
}
