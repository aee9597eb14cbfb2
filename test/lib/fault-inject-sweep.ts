/*
 * test/lib/fault-inject-sweep.ts - the fault-injection sweep: run a
 * workload on a fresh machine with one site (lib/fault-inject.ts) failing
 * at its N-th hit, for N = 1, 2, ... until a run ends without the
 * injection firing, and check every run:
 *   - every call returned 0 or the errno (or signal) Linux gives for a
 *     failure at that site;
 *   - every page of user data holds what the operations that succeeded
 *     wrote (a page an operation failed half-way through holds the old or
 *     the new content, never a mix);
 *   - no BUG (a KernelBugError fails the test) and no WARN (warnings());
 *   - nothing leaked (machine_teardown(), mm/kmemleak.ts).
 *
 * Workloads: a migration of a range spanning two migration windows to the
 * device and back with CPU and device accesses in between, and a fork of
 * a process with device-private and device-exclusive pages.
 */
import { start_kernel } from '../../mm/init.js';
import { UserFault } from '../../mm/fault.js';
import { Process, runAs } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE, HPAGE_PMD_NR } from '../../include/linux/mm.js';
import { MAP_FIXED, MADV_HUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { SIGBUS, SIGKILL } from '../../include/uapi/asm-generic/signal.js';
import { ENOMEM, EBUSY, EIO, ENOENT, EFAULT } from '../../include/uapi/asm-generic/errno.js';
import {
  HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_EXCLUSIVE,
} from '../../include/uapi/linux/test_hmm.js';
import { warnings } from '../../include/asm-generic/bug.js';
import { hmm_dmirror_init } from '../../lib/test_hmm.js';
import { fault_attr_lookup, fail_page_alloc, setup_fault_attr } from '../../lib/fault-inject.js';
import { dmirror_open, dmirror_cmd, machine_teardown, RW, ANON, type dmirror_rig } from '../helpers.js';

export type site_name = 'page_alloc' | 'devmem_alloc' | 'dma_map' | 'dev_copy' | 'hmm_retry' | 'folio_trylock';

/* what a failure at each site may return: errnos of system calls, signals of CPU accesses */
const ALLOWED: Record<site_name, { errno: number[]; sig: number[] }> = {
  page_alloc: { errno: [-ENOMEM], sig: [] },            /* a CPU fault retries (pagefault_out_of_memory), as Linux >= 5.16 */
  devmem_alloc: { errno: [-ENOMEM], sig: [] },
  dma_map: { errno: [-ENOMEM, -EFAULT], sig: [] },     /* ODP: ib_umem_odp_map_dma_single_page() says -EFAULT */
  dev_copy: { errno: [-EIO], sig: [SIGBUS] },
  hmm_retry: { errno: [-EBUSY], sig: [] },
  folio_trylock: { errno: [-EBUSY], sig: [] },
};

/*
 * MIGRATE_TO_DEV reads the range back from the device: a page the failure
 * left in system memory is -ENOENT there (dmirror_do_read), as in Linux
 */
const NOT_MIGRATED = [-ENOENT];

/** One run's context: the site under test and what the workload saw. */
export class sweep_ctx {
  log: string[] = [];
  constructor(readonly site: site_name, readonly hit: number) {}

  fail(msg: string): never {
    throw new Error(`${this.site} failing at hit ${this.hit}: ${msg}\n  ${this.log.join('\n  ')}`);
  }

  /** a system call's result: 0 (or >= 0) or an errno allowed for the site */
  ret(what: string, ret: number, also: number[] = []): number {
    this.log.push(`${what} -> ${ret}`);
    if (ret < 0 && !ALLOWED[this.site].errno.includes(ret) && !also.includes(ret)) this.fail(`${what} returned ${ret}`);
    return ret;
  }

  /** run a CPU access; null when it worked, else the (allowed) signal */
  access(what: string, fn: () => void): number | null {
    try {
      fn();
      return null;
    } catch (e) {
      if (!(e instanceof UserFault)) throw e;
      this.log.push(`${what} -> signal ${e.sig}`);
      if (!ALLOWED[this.site].sig.includes(e.sig)) this.fail(`${what}: ${e.message}`);
      return e.sig;
    }
  }
}

/* a page of pattern @tag: word i holds tag * 0x10000 + i */
export function pattern(tag: number): Uint8Array {
  const b = new Uint8Array(PAGE_SIZE);
  const v = new DataView(b.buffer);
  for (let i = 0; i < PAGE_SIZE / 4; i++) v.setUint32(i * 4, (tag * 0x10000 + i) >>> 0, true);
  return b;
}

export function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A process's view of npages pages at @base and the content each must
 * hold. check() reads them through the CPU (retrying a page once after an
 * allowed signal: the injection fires at most once per run).
 */
export class user_pages {
  readonly want: Uint8Array[];
  constructor(readonly p: Process, readonly base: number, n: number, tag: number) {
    this.want = Array.from({ length: n }, (_, i) => pattern(tag + i));
  }
  addr(i: number): number { return this.base + i * PAGE_SIZE; }

  /* write pattern @tag to page @i; the page holds it only if the access worked */
  store(c: sweep_ctx, i: number, tag: number): number | null {
    const b = pattern(tag);
    const sig = c.access(`store page ${i}`, () => this.p.write(this.addr(i), b));
    if (sig === null) this.want[i] = b;
    return sig;
  }

  /* every page through the CPU; false when the process was killed */
  check(c: sweep_ctx, who: string): boolean {
    for (let i = 0; i < this.want.length; i++) {
      let got: Uint8Array | null = null;
      for (let t = 0; t < 2 && got === null; t++) {
        const sig = c.access(`${who} load page ${i}`, () => { got = this.p.read(this.addr(i), PAGE_SIZE); });
        if (sig === SIGKILL) return false;
      }
      if (got === null) c.fail(`${who}: page ${i} unreadable twice`);
      if (!same(got!, this.want[i])) c.fail(`${who}: page ${i} holds the wrong bytes`);
    }
    return true;
  }

  /* after a device write that may have stopped part-way: each page old or new, then take what is there */
  settle(c: sweep_ctx, i: number, alt: Uint8Array): void {
    const now = this.p.read(this.addr(i), PAGE_SIZE);
    if (!same(now, this.want[i]) && !same(now, alt)) c.fail(`page ${i} is neither its old nor its new content`);
    this.want[i] = now;
  }
}

/** A workload: set up (injection off), then run() with the site armed. */
export interface workload {
  name: string;
  /* the sites the workload's run() reaches */
  sites: site_name[];
  /* boot the machine (default: 16 MiB of RAM and dmirror's two devices) */
  boot?(): void;
  setup(): { run(c: sweep_ctx): void };
}

/* one process, a dmirror on device 0 and @n pages at @base filled with patterns */
function rig(n: number, base: number): { r: dmirror_rig; u: user_pages } {
  const p = Process.spawn('sweep');
  const r = dmirror_open(p, 0, n);
  p.write(r.cmd_addr, new Uint8Array(PAGE_SIZE));          /* fault the command block and the bounce buffer in now */
  p.write(r.mirror, new Uint8Array(n * PAGE_SIZE));
  const got = p.mmap(base, n * PAGE_SIZE, RW, ANON | MAP_FIXED);
  if (got !== base) throw new Error(`mmap at 0x${base.toString(16)} gave ${got}`);
  const u = new user_pages(p, base, n, 1);
  u.want.forEach((b, i) => p.write(u.addr(i), b));
  return { r, u };
}

/* 16 pages across the 1 GiB boundary: two migration windows (PMDs) */
const MIGRATE_BASE = 0x40000000 - 8 * PAGE_SIZE;

const migrate_workload: workload = {
  name: 'migration of two windows to the device and back',
  sites: ['page_alloc', 'devmem_alloc', 'dev_copy', 'hmm_retry', 'folio_trylock'],
  setup() {
    const n = 16;
    const { r, u } = rig(n, MIGRATE_BASE);
    return {
      run(c) {
        const device_read = (what: string) => {
          if (c.ret(what, dmirror_cmd(r, HMM_DMIRROR_READ, u.base, n).ret) !== 0) return;
          for (let i = 0; i < n; i++) {
            if (!same(u.p.read(r.mirror + i * PAGE_SIZE, PAGE_SIZE), u.want[i])) c.fail(`device ${what}: page ${i} wrong`);
          }
        };
        device_read('READ (hmm_range_fault)');
        c.ret('MIGRATE_TO_DEV', dmirror_cmd(r, HMM_DMIRROR_MIGRATE_TO_DEV, u.base, n).ret);
        device_read('READ (device pages)');
        for (let i = 0; i < 4; i++) if (u.store(c, i, 0x40 + i) === SIGKILL) return;
        const alt = [4, 5, 6, 7].map((i) => pattern(0x80 + i));
        for (let k = 0; k < 4; k++) {
          if (c.access('fill bounce', () => u.p.write(r.mirror + k * PAGE_SIZE, alt[k])) === SIGKILL) return;
        }
        const w = c.ret('WRITE', dmirror_cmd(r, HMM_DMIRROR_WRITE, u.addr(4), 4).ret);
        for (let k = 0; k < 4; k++) {
          if (w === 0) u.want[4 + k] = alt[k];
          else u.settle(c, 4 + k, alt[k]);
        }
        c.ret('MIGRATE_TO_SYS', dmirror_cmd(r, HMM_DMIRROR_MIGRATE_TO_SYS, u.base, n).ret);
        u.check(c, 'final');
      },
    };
  },
};

const FORK_BASE = 0x50000000;

const fork_workload: workload = {
  name: 'fork of a process with device-private and device-exclusive pages',
  sites: ['page_alloc', 'dev_copy', 'folio_trylock'],
  setup() {
    const n = 8;
    const { r, u } = rig(n, FORK_BASE);
    if (dmirror_cmd(r, HMM_DMIRROR_EXCLUSIVE, u.addr(6), 2).ret !== 0) throw new Error('setup: EXCLUSIVE');
    if (dmirror_cmd(r, HMM_DMIRROR_MIGRATE_TO_DEV, u.base, 6).ret !== 0) throw new Error('setup: MIGRATE_TO_DEV');
    return {
      run(c) {
        const pid = c.ret('fork', runAs(u.p.task, u.p.sys.fork()));
        if (pid > 0) {
          const child = new user_pages(Process.of(pid), u.base, n, 0);
          u.want.forEach((b, i) => { child.want[i] = b; });
          if (child.check(c, 'child')) {
            for (const i of [0, 1, 6]) if (child.store(c, i, 0x200 + i) === SIGKILL) break;
          }
          if (!u.check(c, 'parent after child stores')) return;
          if (child.p.task.exit_state === 0) child.p.exit(0);
          u.p.wait(pid);
        }
        c.ret('MIGRATE_TO_SYS', dmirror_cmd(r, HMM_DMIRROR_MIGRATE_TO_SYS, u.base, n).ret);
        u.check(c, 'parent final');
      },
    };
  },
};

const THP_BASE = 0x60000000;

const thp_workload: workload = {
  name: 'migration of a THP to a device folio and back',
  sites: ['page_alloc', 'devmem_alloc', 'dev_copy', 'folio_trylock'],
  setup() {
    const n = HPAGE_PMD_NR;
    const p = Process.spawn('sweep');
    const r = dmirror_open(p, 0, n);
    p.write(r.cmd_addr, new Uint8Array(PAGE_SIZE));
    p.write(r.mirror, new Uint8Array(n * PAGE_SIZE));
    if (p.mmap(THP_BASE, n * PAGE_SIZE, RW, ANON | MAP_FIXED) !== THP_BASE) throw new Error('setup: mmap');
    p.madvise(THP_BASE, n * PAGE_SIZE, MADV_HUGEPAGE);
    const u = new user_pages(p, THP_BASE, n, 1);
    u.want.forEach((b, i) => p.write(u.addr(i), b));
    return {
      run(c) {
        c.ret('MIGRATE_TO_DEV', dmirror_cmd(r, HMM_DMIRROR_MIGRATE_TO_DEV, u.base, n).ret, NOT_MIGRATED);
        if (u.store(c, 3, 0x300) === SIGKILL) return;
        c.ret('MIGRATE_TO_DEV', dmirror_cmd(r, HMM_DMIRROR_MIGRATE_TO_DEV, u.base, n).ret, NOT_MIGRATED);
        c.ret('MIGRATE_TO_SYS', dmirror_cmd(r, HMM_DMIRROR_MIGRATE_TO_SYS, u.base, n).ret);
        u.check(c, 'final');
      },
    };
  },
};

export const workloads: readonly workload[] = [migrate_workload, fork_workload, thp_workload];

/* arm @site to fail once, at its @n-th hit */
function arm(site: site_name, n: number): void {
  const a = fault_attr_lookup(site)!;
  if (site === 'page_alloc') Object.assign(fail_page_alloc, { ignore_gfp_highmem: false, ignore_gfp_reclaim: false, min_order: 0 });
  a.verbose = 0;
  a.hits = 0;
  if (setup_fault_attr(a, `${n},100,0,1`) !== 1) throw new Error('setup_fault_attr');
}

/**
 * sweep_run() - one run of @w on a fresh machine with @site failing at its
 * @n-th hit (after setup), checked as the header says (throws on a broken
 * rule). Return: whether the site fired, and its hits in the run.
 */
export function sweep_run(site: site_name, w: workload, n: number): { fired: boolean; hits: number } {
  if (w.boot !== undefined) w.boot();
  else {
    start_kernel({ ram_bytes: 16 << 20 });
    hmm_dmirror_init();
  }
  const job = w.setup();
  const a = fault_attr_lookup(site)!;
  arm(site, n);
  const c = new sweep_ctx(site, n);
  job.run(c);
  if (process.env.HMM_SWEEP_VERBOSE === '1') console.log(`${site} hit ${n}: ${c.log.join(', ')}`);
  const failed = a.failures, hits = a.hits;
  a.probability = 0;
  if (warnings().length > 0) c.fail(`warnings: ${warnings().join(' | ')}`);
  const leaks = machine_teardown();
  if (leaks.length > 0) c.fail(`leaks: ${leaks.join(' | ')}`);
  return { fired: failed > 0, hits };
}

/**
 * sweep_site() - run @w with @site failing at hit 1, 2, ... until a run
 * ends without the injection firing (at most @max runs). Throws on the
 * first run that breaks a rule (see the header).
 * Return: the number of runs, of runs in which the site fired, and the
 * hits of the last (clean) run, counted from the end of setup.
 */
export function sweep_site(site: site_name, w: workload, max = 400): { runs: number; fired: number; hits: number } {
  let fired = 0;
  for (let n = 1; n <= max; n++) {
    const r = sweep_run(site, w, n);
    if (!r.fired) return { runs: n, fired, hits: r.hits };
    fired++;
  }
  throw new Error(`${site}: still firing after ${max} runs`);
}
