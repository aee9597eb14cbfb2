/*
 * tools/hmm-sim/v8_races.ts - the race scenarios of the 2015 design, for
 * explore() (lib/sim/explore.ts) and for `hmm-sim` to show one trace.
 *
 * Each scenario builds a fresh machine, sets up a process bound to the
 * dummy driver (drivers/char/hmm_dummy.ts), spawns two or three simulated
 * threads on the Scheduler it is given, and leaves a world object whose
 * check() throws when an invariant broke:
 *
 *  handshake   a device READ (which faults) against madvise(DONTNEED) of the
 *              page: the section 1.7 guarantee. Checked: when a page is
 *              freed no device table maps it, and at the end every device
 *              entry maps the page the CPU maps. With
 *              hmm_v8_config.no_fault_backoff (the handshake removed) the
 *              check fails: the fault publishes a page the invalidation
 *              already let go.
 *  locked      two devices MIGRATE_TO the same page while the CPU reads it:
 *              the locked SWP_HMM entry rule. Checked: at most one device
 *              holds the page, exactly one when the CPU PTE says "on a
 *              device", and the data survives every move.
 *  teardown    the mm's exit path (hmm_notifier_release) against the
 *              driver's close (hmm_mirror_unregister then free) in another
 *              process that shares the fd: Mark Hairgrove's race. With the
 *              v8 lifetime rules KASAN reports a use-after-free; with v9
 *              (synchronize before the last put, ->free) nothing does.
 *  munmap_read a device READ against munmap of the buffer (stress_anon003 in
 *              small): the READ fails with EFAULT or returns exact data.
 */
import type { page } from '../../include/linux/mm_types.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { pte_present, pte_pfn } from '../../include/linux/pgtable.js';
import { pte_to_swp_entry, is_hmm_entry } from '../../include/linux/swapops.js';
import { hmm_pte_test_valid_pfn, hmm_pte_pfn } from '../../include/linux/hmm_v8.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_DONTNEED } from '../../include/uapi/asm-generic/mman.js';
import { EFAULT } from '../../include/uapi/asm-generic/errno.js';
import {
  HMM_DUMMY_STRUCT_SIZE, HMM_DUMMY_EXPOSE_MM, HMM_DUMMY_READ, HMM_DUMMY_MIGRATE_TO, hmm_dummy_rw_encode,
  hmm_dummy_migrate_encode, hmm_dummy_path,
} from '../../include/uapi/linux/hmm_dummy.js';
import { Scheduler, explore, type Sleepable } from '../../lib/sim/sched.js';
import { tracing_on, ftrace_dump } from '../../lib/sim/trace.js';
import { start_kernel } from '../../mm/init.js';
import { O_RDWR } from '../../mm/file.js';
import { register_free_hook } from '../../mm/page_alloc.js';
import { pte_offset_map, ptep_get } from '../../mm/pgtable.js';
import { hmm_v8_config } from '../../mm/hmm_v8/hmm.js';
import { hmm_pt_lookup, hmm_pt_load } from '../../mm/hmm_v8/hmm_pt.js';
import { hmmDummyDeviceOf, hmm_dummy_rmem_used, hmm_dummy_params, hmm_dummy_init, insmodHmmDummy, type dummy_mirror } from '../../drivers/char/hmm_dummy.js';
import { get_counter } from '../../lib/sim/trace.js';
import { hmm_pte_test_valid_dma } from '../../include/linux/hmm_v8.js';
import type {} from '../../lib/dma/mapping.js';   /* struct device's members (nr_mapped, iommu_faults) */
import { hmm_of, mirror_pt } from '../../mm/hmm_v8/hmm.js';
import { Process, runAs } from '../include/nolibc/nolibc.js';

/* One free hook for every scenario; it asks the scenario that runs now. */
let on_free: ((p: page) => void) | null = null;
let hooked = false;
function watch_frees(fn: ((p: page) => void) | null): void {
  if (!hooked) { register_free_hook((p) => { on_free?.(p); return false; }); hooked = true; }
  on_free = fn;
}

const RW = PROT_READ | PROT_WRITE, PA = MAP_PRIVATE | MAP_ANONYMOUS;

/** A scenario: run(s) builds the world and spawns its threads; check() throws on a broken invariant. */
export interface v8_race { run(s: Scheduler): void; check(): void; readonly name: string }

function bind(p: Process, d: number, m: number): { fd: number; arg: number } {
  const fd = p.open(hmm_dummy_path(d, m), O_RDWR);
  if (fd < 0 || p.ioctl(fd, HMM_DUMMY_EXPOSE_MM, 0) !== 0) throw new Error('v8_races: cannot bind the dummy');
  return { fd, arg: p.mmap(0, PAGE_SIZE, RW, PA) };
}

function dmirror(d: number, m: number): dummy_mirror { return hmmDummyDeviceOf(d).dmirrors[m]!; }

function* read_ioctl(p: Process, fd: number, arg: number, address: number, size: number, ptr: number): Sleepable<number> {
  const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
  hmm_dummy_rw_encode(raw, { address, size, ptr, nsys_pages: 0, nfaulted_sys_pages: 0, ndev_pages: 0, nfaulted_dev_pages: 0 });
  yield* p.sys.write(arg, raw);
  return yield* p.sys.ioctl(fd, HMM_DUMMY_READ, arg);
}

function* migrate_ioctl(p: Process, fd: number, arg: number, address: number, size: number): Sleepable<number> {
  const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
  hmm_dummy_migrate_encode(raw, { address, size, nfaulted_sys_pages: 0, nfaulted_dev_pages: 0 });
  yield* p.sys.write(arg, raw);
  return yield* p.sys.ioctl(fd, HMM_DUMMY_MIGRATE_TO, arg);
}

/* every valid pfn entry of the device table over [a, a + n pages) maps what the CPU maps */
function check_device_table(p: Process, dm: dummy_mirror, a: number, npages: number): void {
  for (let i = 0; i < npages; i++) {
    const addr = a + i * PAGE_SIZE;
    const dp = hmm_pt_lookup(dm.pt, addr);
    const e = dp < 0 ? 0 : hmm_pt_load(dm.pt, dp);
    if (!hmm_pte_test_valid_pfn(e)) continue;
    const ptep = pte_offset_map(p.mm, addr);
    const pte = ptep < 0 ? 0 : ptep_get(p.mm, ptep);
    if (!pte_present(pte) || pte_pfn(pte) !== hmm_pte_pfn(e))
      throw new Error(`stale device mapping: the device maps pfn ${hmm_pte_pfn(e)} at 0x${addr.toString(16)}, ` +
        `the CPU ${pte_present(pte) ? `pfn ${pte_pfn(pte)}` : 'nothing'}`);
  }
}

/** handshake: device fault vs madvise(DONTNEED). @broken: remove the fault backoff. */
export function v8_race_handshake(broken: boolean): v8_race {
  let p: Process, a = 0;
  return {
    name: `handshake${broken ? ' (no backoff)' : ''}`,
    run(s) {
      start_kernel({ ram_bytes: 4 << 20 });
      insmodHmmDummy();
      watch_frees(null);
      hmm_v8_config.no_fault_backoff = broken;
      p = Process.spawn('hs');
      const { fd, arg } = bind(p, 0, 0);
      a = p.mmap(0, 2 * PAGE_SIZE, RW, PA);
      const buf = p.mmap(0, 2 * PAGE_SIZE, RW, PA);
      p.fill32(a, 2 * PAGE_SIZE, 42);
      p.fill32(buf, 2 * PAGE_SIZE, 0);
      const dm = dmirror(0, 0);
      watch_frees((pg) => {
        for (let i = 0; i < 2; i++) {
          const dp = hmm_pt_lookup(dm.pt, a + i * PAGE_SIZE);
          const e = dp < 0 ? 0 : hmm_pt_load(dm.pt, dp);
          if (hmm_pte_test_valid_pfn(e) && hmm_pte_pfn(e) === pg.pfn) throw new Error(`page ${pg.pfn} freed while the device maps it`);
        }
      });
      s.spawn('device', function* () { yield* read_ioctl(p, fd, arg, a, 2 * PAGE_SIZE, buf); }, 'user', p.task);
      s.spawn('madvise', function* () { yield* p.sys.madvise(a + PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED); }, 'user', p.task);
    },
    check() { watch_frees(null); check_device_table(p, dmirror(0, 0), a, 2); },
  };
}

/** locked: two devices migrate one page while the CPU reads it. */
export function v8_race_locked(): v8_race {
  let p: Process, a = 0, value = -1;
  return {
    name: 'locked entry',
    run(s) {
      start_kernel({ ram_bytes: 4 << 20 });
      insmodHmmDummy();
      watch_frees(null);
      p = Process.spawn('lk');
      const b0 = bind(p, 0, 0), b1 = bind(p, 1, 0);
      a = p.mmap(0, PAGE_SIZE, RW, PA);
      p.write32(a, 0x5a5a);
      s.spawn('dev0', function* () { yield* migrate_ioctl(p, b0.fd, b0.arg, a, PAGE_SIZE); }, 'user', p.task);
      s.spawn('dev1', function* () { yield* migrate_ioctl(p, b1.fd, b1.arg, a, PAGE_SIZE); }, 'user', p.task);
      s.spawn('cpu', function* () { value = yield* p.sys.load(a, 4); }, 'user', p.task);
    },
    check() {
      const held = hmm_dummy_rmem_used(0) + hmm_dummy_rmem_used(1);
      const ptep = pte_offset_map(p.mm, a);
      const pte = ptep_get(p.mm, ptep);
      const on_dev = !pte_present(pte) && is_hmm_entry(pte_to_swp_entry(pte));
      if (held > 1) throw new Error(`both devices hold the page (${held} device pages)`);
      if (on_dev !== (held === 1)) throw new Error(`CPU PTE says ${on_dev ? '' : 'not '}on a device, devices hold ${held}`);
      if (value !== 0x5a5a) throw new Error(`the CPU read 0x${value.toString(16)}`);
      if (p.read32(a) !== 0x5a5a) throw new Error('data lost after the moves');
    },
  };
}

/**
 * teardown: exit of the mirrored mm against the driver's close; @lifetime:
 * 'v8' shows the use-after-free. @with_reader: a third thread has a device
 * READ in flight (the driver's worker count must keep its table alive).
 */
export function v8_race_teardown(lifetime: 'v8' | 'v9', with_reader = false): v8_race {
  let p: Process, c: Process;
  return {
    name: `teardown (${lifetime}${with_reader ? ', device READ in flight' : ''})`,
    run(s) {
      start_kernel({ ram_bytes: 4 << 20 });
      insmodHmmDummy();
      watch_frees(null);
      hmm_v8_config.lifetime = lifetime;
      p = Process.spawn('owner');
      const { fd, arg } = bind(p, 0, 0);
      const a = p.mmap(0, PAGE_SIZE, RW, PA);
      p.write32(a, 1);
      runAs(p.task, read_ioctl(p, fd, arg, a, PAGE_SIZE, arg));   /* the device table maps the page */
      c = p.fork();                                  /* the child shares the open file */
      /* the child drives the device on the parent's address space (the fd is shared) */
      if (with_reader) s.spawn('device', function* () { yield* read_ioctl(c, fd, arg, a, PAGE_SIZE, arg); }, 'user', c.task);
      /*
       * the owner closes its fd and exits: do_exit() releases the mm before
       * the files (exit_mm, then exit_files), so the child's close must be
       * the last one for the release to race with exit_mmap()
       */
      s.spawn('exit', function* () { yield* p.sys.close(fd); yield* p.sys.exit(0); }, 'user', p.task);
      s.spawn('close', function* () { yield* c.sys.close(fd); }, 'user', c.task);
    },
    check() { /* a use-after-free is reported by KASAN while the threads run */ },
  };
}

/** munmap_read: a device READ of two pages against munmap of them. */
export function v8_race_munmap_read(): v8_race {
  let p: Process, rc = 0, got: Uint8Array | null = null;
  return {
    name: 'munmap vs device read',
    run(s) {
      start_kernel({ ram_bytes: 4 << 20 });
      insmodHmmDummy();
      watch_frees(null);
      p = Process.spawn('mr');
      const { fd, arg } = bind(p, 0, 0);
      const a = p.mmap(0, 2 * PAGE_SIZE, RW, PA);
      const buf = p.mmap(0, 2 * PAGE_SIZE, RW, PA);
      p.fill32(a, 2 * PAGE_SIZE, 0);
      p.fill32(buf, 2 * PAGE_SIZE, 0x40000000);
      s.spawn('reader', function* () {
        rc = yield* read_ioctl(p, fd, arg, a, 2 * PAGE_SIZE, buf);
        if (rc === 0) { got = new Uint8Array(2 * PAGE_SIZE); yield* p.sys.read(buf, got); }
      }, 'user', p.task);
      s.spawn('munmap', function* () { yield* p.sys.munmap(a, 2 * PAGE_SIZE); }, 'user', p.task);
    },
    check() {
      if (rc !== 0 && rc !== -EFAULT) throw new Error(`READ returned ${rc}`);
      if (rc === 0) {
        const v = new DataView(got!.buffer);
        for (let k = 0; k < 2 * PAGE_SIZE / 4; k++) {
          if (v.getUint32(k * 4, true) !== k) throw new Error(`READ succeeded with [${k}] = ${v.getUint32(k * 4, true)}`);
        }
      }
    },
  };
}


/**
 * dma_two_faults: two threads read the same page through a device with a
 * DMA device: both faults DMA-map it, and the recheck under the directory
 * lock (patch 13) undoes the loser's mapping. Checked: exactly one live
 * mapping, held by the mirror entry, no IOMMU fault, exact data.
 * @seen.raced counts runs where the recheck path ran.
 */
export function v8_race_dma_two_faults(seen: { raced: number }): v8_race {
  let p: Process, a = 0, bufs: number[] = [];
  return {
    name: 'two faults DMA-map one page',
    run(s) {
      start_kernel({ ram_bytes: 4 << 20 });
      insmodHmmDummy();
      watch_frees(null);
      hmm_dummy_params.dma = true;
      hmm_dummy_init();
      p = Process.spawn('dma');
      const { fd } = bind(p, 0, 0);
      a = p.mmap(0, PAGE_SIZE, RW, PA);
      p.fill32(a, PAGE_SIZE, 11);
      bufs = [p.mmap(0, PAGE_SIZE, RW, PA), p.mmap(0, PAGE_SIZE, RW, PA)];
      const args = [p.mmap(0, PAGE_SIZE, RW, PA), p.mmap(0, PAGE_SIZE, RW, PA)];
      for (const i of [0, 1]) s.spawn(`dev${i}`, function* () { yield* read_ioctl(p, fd, args[i], a, PAGE_SIZE, bufs[i]); }, 'user', p.task);
    },
    check() {
      const dev = hmmDummyDeviceOf(0).device.dev!;
      const mirror = hmm_of(p.mm)!.mirrors[0];
      const mp = hmm_pt_lookup(mirror_pt(mirror), a);
      const dma = mp >= 0 && hmm_pte_test_valid_dma(hmm_pt_load(mirror_pt(mirror), mp)) ? 1 : 0;
      if (dev.nr_mapped !== dma) throw new Error(`${dev.nr_mapped} live DMA mappings, ${dma} held by the mirror`);
      if (dev.iommu_faults !== 0) throw new Error('IOMMU fault');
      for (const b of bufs) if (p.check32(b, PAGE_SIZE, 11) !== -1) throw new Error('a READ returned wrong data');
      if (get_counter('hmm_v8_dma_map_raced') > 0) seen.raced++;
    },
  };
}

/**
 * migrate_madvise: MIGRATE_TO of two pages against madvise(DONTNEED) of the
 * second: the invalidation backs the migration off (mm_hmm_migrate restores
 * everything, -EAGAIN, retry) or comes before or after it. Checked: the
 * first page keeps its data, the second reads 0, device memory matches the
 * CPU's SWP_HMM entries. @seen.backoff counts runs where the migration backed off.
 */
export function v8_race_migrate_madvise(seen: { backoff: number }): v8_race {
  let p: Process, a = 0;
  return {
    name: 'migration vs madvise',
    run(s) {
      start_kernel({ ram_bytes: 4 << 20 });
      insmodHmmDummy();
      watch_frees(null);
      p = Process.spawn('mm');
      const { fd, arg } = bind(p, 0, 0);
      a = p.mmap(0, 2 * PAGE_SIZE, RW, PA);
      p.fill32(a, 2 * PAGE_SIZE, 21);
      s.spawn('migrate', function* () { yield* migrate_ioctl(p, fd, arg, a, 2 * PAGE_SIZE); }, 'user', p.task);
      s.spawn('madvise', function* () { yield* p.sys.madvise(a + PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED); }, 'user', p.task);
    },
    check() {
      let on_dev = 0;
      for (const i of [0, 1]) {
        const ptep = pte_offset_map(p.mm, a + i * PAGE_SIZE);
        const pte = ptep < 0 ? 0 : ptep_get(p.mm, ptep);
        if (pte !== 0 && !pte_present(pte) && is_hmm_entry(pte_to_swp_entry(pte))) on_dev++;
      }
      if (hmm_dummy_rmem_used(0) !== on_dev) throw new Error(`device holds ${hmm_dummy_rmem_used(0)} pages, the CPU says ${on_dev}`);
      if (get_counter('hmm_v8_migrate_backoff') > 0) seen.backoff++;
      if (p.check32(a, PAGE_SIZE, 21) !== -1) throw new Error('first page lost its data');
      if (p.read32(a + PAGE_SIZE) !== 0) throw new Error('second page kept data across MADV_DONTNEED');
    },
  };
}

/**
 * v8_race_replay() - explore @r; if an interleaving breaks it, run that one
 * again with tracing on and return the error and the kernel trace (what
 * `hmm-sim` shows for the v8 teardown race). Return: null when no
 * interleaving breaks it.
 */
export function v8_race_replay(r: v8_race): { runs: number; error: string; trace: string } | null {
  const res = explore((s) => r.run(s), { check: () => r.check(), maxRuns: 5000 });
  if (res.failure === null) return null;
  const s = new Scheduler({ mode: 'enumerate', choices: res.failure.choices });
  r.run(s);
  tracing_on();
  let error = '';
  try { s.run(); r.check(); } catch (e) { error = (e as Error).message; }
  return { runs: res.runs, error, trace: ftrace_dump() };
}
