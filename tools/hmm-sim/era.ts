/*
 * tools/hmm-sim/era.ts - one scenario, two designs: the 2015 HMM (v8, the
 * dummy driver of drivers/char/hmm_dummy.ts) and mainline HMM (the dmirror
 * driver of lib/test_hmm.ts), side by side.
 *
 * A scenario is written once, as steps a user program takes (map a buffer,
 * let the CPU fill it, let the device read or write it, migrate it, fork,
 * mprotect, ...). An adapter per era turns the device steps into that era's
 * ioctls:
 *
 *   step           v8 (/dev/hmm_dummy_device00)     mainline (/dev/hmm_dmirror0)
 *   bind           open + HMM_DUMMY_EXPOSE_MM        open (binds the opener's mm)
 *   dev_read       HMM_DUMMY_READ (address, size)    HMM_DMIRROR_READ (addr, npages)
 *   dev_write      HMM_DUMMY_WRITE                   HMM_DMIRROR_WRITE
 *   migrate        HMM_DUMMY_MIGRATE_TO              HMM_DMIRROR_MIGRATE_TO_DEV
 *
 * Each run boots a fresh machine and reports per era: device faults (v8
 * hmm_mirror_fault calls; mainline hmm_range_fault calls), CPU faults,
 * notifier invalidations, page-table entries written (v8: HMM's mirror
 * table and the device's; mainline: no HMM table, the device table's
 * entries are the pages dmirror reports), pages copied between memories,
 * and simulated time. era_report() prints both and the difference.
 *
 * The mainline self-tests the 2015 design supports are the scenarios
 * below; the others have no v8 equivalent (Documentation/vm/hmm.txt, part
 * "HMM v8", says why).
 */
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, PROT_NONE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import { EACCES, EPERM, EFAULT, errno_name } from '../../include/uapi/asm-generic/errno.js';
import {
  HMM_DUMMY_STRUCT_SIZE, HMM_DUMMY_EXPOSE_MM, HMM_DUMMY_READ, HMM_DUMMY_WRITE, HMM_DUMMY_MIGRATE_TO,
  hmm_dummy_rw_encode, hmm_dummy_migrate_encode, hmm_dummy_path,
} from '../../include/uapi/linux/hmm_dummy.js';
import {
  HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_CMD_SIZE, hmm_dmirror_cmd_encode,
  hmm_dmirror_cmd_decode,
} from '../../include/uapi/linux/test_hmm.js';
import { Scheduler, current, type Sleepable } from '../../lib/sim/sched.js';
import { machineTime } from '../../lib/sim/clock.js';
import { get_counter } from '../../lib/sim/trace.js';
import { start_kernel } from '../../mm/init.js';
import { O_RDWR } from '../../mm/file.js';
import { Process } from '../include/nolibc/nolibc.js';
import { insmodHmmDummy } from '../../drivers/char/hmm_dummy.js';
import { hmm_dmirror_init } from '../../lib/test_hmm.js';

export type era = 'v8' | 'mainline';

/** One step of a scenario; @expect: the errno each era returns (0 when absent). */
export type era_step =
  | { op: 'cpu_fill'; base: number }
  | { op: 'cpu_check'; base: number }
  | { op: 'dev_read'; expect?: Partial<Record<era, number>> }
  | { op: 'dev_write'; base: number; expect?: Partial<Record<era, number>> }
  | { op: 'migrate' }
  | { op: 'mprotect'; prot: number }
  | { op: 'fork_child_write'; base: number }
  | { op: 'teardown_race'; rounds: number };

/** A scenario: a buffer of @npages, then @steps. @mainline: the mainline self-test it corresponds to. */
export interface era_scenario { name: string; mainline: string; npages: number; steps: era_step[] }

export const era_scenarios: era_scenario[] = [
  { name: 'anon_read', mainline: 'anon_read', npages: 256, steps: [{ op: 'cpu_fill', base: 0 }, { op: 'dev_read' }] },
  { name: 'anon_write', mainline: 'anon_write', npages: 256, steps: [{ op: 'dev_write', base: 7 }, { op: 'cpu_check', base: 7 }] },
  { name: 'anon_write_prot', mainline: 'anon_write_prot', npages: 16, steps: [
    { op: 'cpu_fill', base: 1 }, { op: 'mprotect', prot: PROT_READ },
    { op: 'dev_write', base: 9, expect: { v8: -EACCES, mainline: -EPERM } }, { op: 'cpu_check', base: 1 }] },
  { name: 'anon_read_prot', mainline: 'anon_read_prot', npages: 16, steps: [
    { op: 'cpu_fill', base: 2 }, { op: 'mprotect', prot: PROT_NONE }, { op: 'dev_read', expect: { v8: -EFAULT, mainline: -EFAULT } },
    { op: 'mprotect', prot: PROT_READ }, { op: 'cpu_check', base: 2 }] },
  { name: 'migrate', mainline: 'migrate', npages: 256, steps: [{ op: 'cpu_fill', base: 3 }, { op: 'migrate' }, { op: 'dev_read' }] },
  { name: 'migrate_fault', mainline: 'migrate_fault', npages: 256, steps: [
    { op: 'cpu_fill', base: 4 }, { op: 'migrate' }, { op: 'cpu_check', base: 4 }, { op: 'dev_read' }] },
  { name: 'fork_device_memory', mainline: 'anon_write_child', npages: 16, steps: [
    { op: 'cpu_fill', base: 5 }, { op: 'migrate' }, { op: 'fork_child_write', base: 50 }, { op: 'cpu_check', base: 5 }] },
  { name: 'anon_teardown', mainline: 'anon_teardown', npages: 32, steps: [{ op: 'teardown_race', rounds: 10 }] },
];

/** What one era did for one scenario. */
export interface era_result {
  era: era; ok: boolean; errors: string[];
  device_faults: number; cpu_faults: number; invalidations: number;
  hmm_pt_entries: number; device_pt_entries: number; pages_copied: number; sim_ns: number;
}

/** The user-space side of one era's device (the bench drives it too). */
export interface era_dev {
  read(p: Process, addr: number, npages: number, host: number): Sleepable<number>;
  write(p: Process, addr: number, npages: number, host: number): Sleepable<number>;
  migrate(p: Process, addr: number, npages: number, host: number): Sleepable<number>;
  device_pt: number;
  copied: number;
}

/** v8_dev() - bind @p to /dev/hmm_dummy_device00. */
export function v8_dev(p: Process): era_dev {
  const fd = p.open(hmm_dummy_path(0, 0), O_RDWR);
  if (fd < 0 || p.ioctl(fd, HMM_DUMMY_EXPOSE_MM, 0) !== 0) throw new Error('era v8: cannot bind the dummy');
  const arg = p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const rw = function* (q: Process, cmd: number, addr: number, npages: number, host: number): Sleepable<number> {
    const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
    hmm_dummy_rw_encode(raw, { address: addr, size: npages * PAGE_SIZE, ptr: host, nsys_pages: 0, nfaulted_sys_pages: 0, ndev_pages: 0, nfaulted_dev_pages: 0 });
    yield* q.sys.write(arg, raw);
    return yield* q.sys.ioctl(fd, cmd, arg);
  };
  return {
    device_pt: 0, copied: 0,
    read: (q, a, n, h) => rw(q, HMM_DUMMY_READ, a, n, h),
    write: (q, a, n, h) => rw(q, HMM_DUMMY_WRITE, a, n, h),
    *migrate(q, addr, npages) {
      const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
      hmm_dummy_migrate_encode(raw, { address: addr, size: npages * PAGE_SIZE, nfaulted_sys_pages: 0, nfaulted_dev_pages: 0 });
      yield* q.sys.write(arg, raw);
      return yield* q.sys.ioctl(fd, HMM_DUMMY_MIGRATE_TO, arg);
    },
  };
}

/** mainline_dev() - open /dev/hmm_dmirror0 for @p. */
export function mainline_dev(p: Process): era_dev {
  const fd = p.open('/dev/hmm_dmirror0', O_RDWR);
  if (fd < 0) throw new Error('era mainline: cannot open the dmirror');
  const arg = p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const d: era_dev = {
    device_pt: 0, copied: 0,
    read: (q, a, n, h) => cmd(q, HMM_DMIRROR_READ, a, n, h, true),
    write: (q, a, n, h) => cmd(q, HMM_DMIRROR_WRITE, a, n, h, true),
    migrate: (q, a, n, h) => cmd(q, HMM_DMIRROR_MIGRATE_TO_DEV, a, n, h, false),   /* dmirror copies the data back to ptr */
  };
  function* cmd(q: Process, c: number, addr: number, npages: number, ptr: number, pt: boolean): Sleepable<number> {
    yield* q.sys.write(arg, hmm_dmirror_cmd_encode({ addr: BigInt(addr), ptr: BigInt(ptr), npages: BigInt(npages), cpages: 0n, faults: 0n }));
    const rc = yield* q.sys.ioctl(fd, c, arg);
    const back = new Uint8Array(HMM_DMIRROR_CMD_SIZE);
    yield* q.sys.read(arg, back);
    const n = Number(hmm_dmirror_cmd_decode(back).cpages);
    if (rc === 0 && pt) d.device_pt += n;
    if (rc === 0 && !pt) d.copied += n;
    return rc;
  }
  return d;
}

/** era_sync() - run a user-side generator of @p to completion on a fresh scheduler. */
export function era_sync<T>(p: Process, g: Sleepable<T>): T {
  const s = new Scheduler();
  let r!: T;
  const t = s.spawn('user', function* () { r = yield* g; }, 'user', p.task);
  s.run();
  const me = current();
  if (t.vtime > me.vtime) me.vtime = t.vtime;     /* a sequential program: the next call starts when this one ended */
  return r;
}

/* what the scenario knows: the buffers and the pattern the CPU should see */
interface era_ctx { e: era; p: Process; dev: era_dev; buf: number; host: number; npages: number; base: number }

/* run one step; returns an error string or null */
function step(c: era_ctx, st: era_step): string | null {
  const { e, p, dev, buf, host, npages } = c;
  const len = npages * PAGE_SIZE;
  const want = (x?: Partial<Record<era, number>>) => x?.[e] ?? 0;
  switch (st.op) {
    case 'cpu_fill': p.fill32(buf, len, st.base); c.base = st.base; return null;
    case 'cpu_check': return p.check32(buf, len, st.base) === -1 ? null : `CPU data differs from base ${st.base}`;
    case 'dev_read': {
      p.fill32(host, len, 0x7fff0000);
      const rc = era_sync(p, dev.read(p, buf, npages, host));
      if (rc !== want(st.expect)) return `dev_read returned ${errno_name(rc)}, expected ${want(st.expect)}`;
      return rc === 0 && p.check32(host, len, c.base) !== -1 ? 'dev_read data differs from the CPU data' : null;
    }
    case 'dev_write': {
      p.fill32(host, len, st.base);
      const rc = era_sync(p, dev.write(p, buf, npages, host));
      if (rc === 0) c.base = st.base;
      return rc === want(st.expect) ? null : `dev_write returned ${errno_name(rc)}, expected ${want(st.expect)}`;
    }
    case 'migrate': {
      const rc = era_sync(p, dev.migrate(p, buf, npages, host));
      return rc === 0 ? null : `migrate returned ${errno_name(rc)}`;
    }
    case 'mprotect': return p.mprotect(buf, len, st.prot) === 0 ? null : 'mprotect failed';
    case 'fork_child_write': {
      const child = p.fork();
      let bad: string | null = child.check32(buf, len, c.base) !== -1 ? 'the child did not see the parent data' : null;
      child.fill32(buf, len, st.base);
      if (bad === null && child.check32(buf, len, st.base) !== -1) bad = 'child data lost';
      child.exit(0);
      p.wait(child.pid);
      return bad;
    }
    case 'teardown_race': {
      for (let r = 0; r < st.rounds; r++) {
        const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        p.fill32(a, len, r);
        p.fill32(host, len, 0x7fff0000);
        const s = new Scheduler({ mode: 'random', seed: 100 + r });
        let rc = 0;
        s.spawn('reader', function* () { rc = yield* dev.read(p, a, npages, host); }, 'user', p.task);
        s.spawn('munmap', function* () { yield* p.sys.munmap(a, len); }, 'user', p.task);
        s.run();
        if (rc !== 0 && rc !== -EFAULT) return `round ${r}: READ returned ${errno_name(rc)}`;
        if (rc === 0 && p.check32(host, len, r) !== -1) return `round ${r}: READ succeeded with wrong data`;
      }
      return null;
    }
  }
}

/**
 * run_era_scenario() - boot a machine and run @sc under @e.
 * Return: the counters of the run and the errors found (ok when none).
 */
export function run_era_scenario(sc: era_scenario, e: era): era_result {
  start_kernel({ ram_bytes: 32 << 20 });
  hmm_dmirror_init();
  insmodHmmDummy();
  const p = Process.spawn(`${e}-${sc.name}`);
  const dev = e === 'v8' ? v8_dev(p) : mainline_dev(p);
  const buf = p.mmap(0, sc.npages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const host = p.mmap(0, sc.npages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const errors: string[] = [];
  const c: era_ctx = { e, p, dev, buf, host, npages: sc.npages, base: 0 };
  for (const st of sc.steps) {
    try {
      const err = step(c, st);
      if (err !== null) errors.push(`${st.op}: ${err}`);
    } catch (x) {
      errors.push(`${st.op}: ${(x as Error).message}`);
    }
  }
  const v8 = e === 'v8';
  return {
    era: e, ok: errors.length === 0, errors,
    device_faults: v8 ? get_counter('hmm_v8_mirror_fault') : get_counter('hmm_range_fault'),
    cpu_faults: get_counter('pgfault'),
    invalidations: get_counter('mmu_notifier_invalidate'),
    hmm_pt_entries: v8 ? get_counter('hmm_v8_pte_touched') : 0,
    device_pt_entries: v8 ? get_counter('hmm_dummy_pte_touched') : dev.device_pt,
    pages_copied: v8
      ? get_counter('hmm_v8_migrate_to_device') + get_counter('hmm_v8_migrate_back') + get_counter('hmm_v8_fork_copy')
      : dev.copied + get_counter('dmirror_devmem_fault'),
    sim_ns: machineTime(),
  };
}

const COLUMNS: [keyof era_result, string][] = [
  ['device_faults', 'device faults'], ['cpu_faults', 'CPU faults'], ['invalidations', 'notifier invalidations'],
  ['hmm_pt_entries', 'HMM table entries written'], ['device_pt_entries', 'device table entries'],
  ['pages_copied', 'pages copied'], ['sim_ns', 'simulated time'],
];

/**
 * era_report() - run scenarios (all, or those named) under the eras asked
 * and return printable lines: per scenario one column per era and, with
 * both, the difference. This is what `hmm-sim --era v8|mainline|both` prints.
 */
export function era_report(eras: era[], names: string[] = []): string[] {
  const out: string[] = [];
  for (const sc of era_scenarios.filter((s) => names.length === 0 || names.includes(s.name))) {
    const res = eras.map((e) => run_era_scenario(sc, e));
    out.push(`# ${sc.name} (mainline self-test: ${sc.mainline}), ${sc.npages} pages`);
    out.push(`  ${''.padEnd(28)}${eras.map((e) => e.padStart(14)).join('')}${eras.length === 2 ? '      diff' : ''}`);
    for (const [k, label] of COLUMNS) {
      const v = res.map((r) => r[k] as number);
      const fmt = (x: number) => (k === 'sim_ns' ? `${(x / 1000).toFixed(1)} us` : String(x)).padStart(14);
      const diff = eras.length === 2 ? `  ${(k === 'sim_ns' ? `${((v[0] - v[1]) / 1000).toFixed(1)} us` : String(v[0] - v[1])).padStart(10)}` : '';
      out.push(`  ${label.padEnd(28)}${v.map(fmt).join('')}${diff}`);
    }
    for (const r of res) out.push(`  ${r.era}: ${r.ok ? 'ok' : 'FAILED: ' + r.errors.join('; ')}`);
  }
  return out;
}
