/*
 * tools/testing/fuzz/inject.ts - fault injection during a fuzz run
 * (`npm run fuzz -- --fail SITE=interval,probability,space,times`), and
 * the one rule by which the model accepts an injected failure.
 *
 * The sites and the string are lib/fault-inject.ts's (the form of Linux's
 * fail_page_alloc=... boot parameters, the same as `hmm-sim run --fail`).
 * Each fuzz machine arms them right after boot, so every sequence, every
 * replay and every shrinking run sees the same injections for the same
 * operations; the generator's probability draws restart at each boot.
 *
 * The acceptance rule: an operation during which a site fired may return,
 * instead of what the model predicts, exactly an errno Linux returns for
 * that site's failure (INJECTED_ERRNO), or, for a CPU access, SIGBUS when a
 * copy out of device memory failed (a driver's migrate_to_ram returns
 * VM_FAULT_SIGBUS, as nouveau and lib/test_hmm.c do). Only operations
 * whose failure the model can account for are accepted: the device calls
 * (DEVICE_OPS), fork (FORK_ERRNO: no child) and the CPU accesses (CPU_OPS). A failed device WRITE or CPU store
 * may have written part of its range: each page it touched must then hold
 * either its old or its new bytes, never a mix, and the model takes what
 * is there. Every other byte stays demanded exactly as before. Anything
 * else (another errno, an operation outside ACCEPTING such as a fork or an
 * mmap failing with -ENOMEM) stays a divergence.
 *
 * lib/test_hmm's one-shot HMM_DMIRROR_FLAG_FAIL_ALLOC (`--fail-alloc W`
 * draws HMM_DMIRROR_FLAGS) is one more such site, "dmirror_fail_alloc":
 * it fires when the driver takes the flag (the event counter of that
 * name). The flag belongs to the dmirror that set it, but whoever reaches
 * that dmirror's next allocation takes it: its own MIGRATE_TO_DEV (the
 * page stays in RAM, the read-back says -ENOENT) or MIGRATE_TO_SYS
 * (-ENOMEM), and any fault on a page it migrated, from a CPU access (the
 * fault is retried), from another process's EXCLUSIVE, or from a READ or
 * WRITE of the same mirror: hmm_range_fault() faults everything from the
 * first page it must fault to the end of the PMD it walks, the device's
 * own private pages included, and a VM_FAULT_OOM there is -EFAULT.
 */
import { ENOMEM, EFAULT, EIO, EBUSY, ENOENT } from '../../../include/uapi/asm-generic/errno.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import {
  fault_attr_lookup, fault_attr_sites, fault_inject_check_param, setup_fault_attr, fail_page_alloc,
} from '../../../lib/fault-inject.js';
import { count_event, get_counter } from '../../../lib/sim/trace.js';
import type { Process } from '../../include/nolibc/nolibc.js';
import { fillBytes, ARENA, ARENA_PAGES, type ShadowProc } from './model.js';
import type { Op, OpKind } from './ops.js';

const SIGBUS = 7;

/** What Linux returns to the caller when each site fails, per debugfs name. */
export const INJECTED_ERRNO: Readonly<Record<string, readonly number[]>> = {
  fail_page_alloc: [-ENOMEM, -EFAULT],       /* hmm_vma_fault(): any VM_FAULT_ERROR is -EFAULT */
  fail_devmem_alloc: [-ENOMEM, -ENOENT],     /* dmirror: the page stays, its read-back says -ENOENT */
  fail_dma_map: [-ENOMEM, -EFAULT],
  fail_dev_copy: [-EIO, -EFAULT],            /* -EFAULT: hmm_range_fault() met VM_FAULT_SIGBUS from migrate_to_ram */
  fail_hmm_retry: [-EBUSY],
  fail_folio_trylock: [-EBUSY],
  dmirror_fail_alloc: [-ENOMEM, -ENOENT, -EFAULT],
};

/* the event lib/test_hmm_migrate.ts counts when a dmirror takes its HMM_DMIRROR_FLAG_FAIL_ALLOC */
const DMIRROR_FAIL_ALLOC = 'dmirror_fail_alloc';

/*
 * fork(): copy_page_range() fails with -ENOMEM when a page-table or
 * anon_vma allocation fails, and with -EBUSY when it cannot lock the folio
 * of a device-exclusive entry to restore it; the child never runs
 */
const FORK_ERRNO: Readonly<Record<string, readonly number[]>> = {
  fail_page_alloc: [-ENOMEM],
  fail_folio_trylock: [-EBUSY],
};

/** The operations whose injected failure the model accounts for: device calls and fork (errno), CPU accesses (SIGBUS). */
const DEVICE_OPS: ReadonlySet<OpKind> = new Set<OpKind>([
  'dm_read', 'dm_write', 'dm_to_dev', 'dm_to_sys', 'dm_excl', 'dm_snapshot', 'dm_check_excl',
  'du_read', 'du_write', 'du_migrate',
]);
const CPU_OPS: ReadonlySet<OpKind> = new Set<OpKind>(['load', 'store', 'atomic', 'rbulk', 'wbulk']);

/** A --fail option: site (short or debugfs name) and "interval,probability,space,times". */
export interface FailSpec { site: string; attr: string }

/**
 * parseFail() - one --fail value "SITE=interval,probability,space,times".
 * Return: the spec, or a message saying what is wrong.
 */
export function parseFail(v: string): FailSpec | string {
  const eq = v.indexOf('=');
  if (eq <= 0) return `--fail takes SITE=interval,probability,space,times, not '${v}'`;
  const site = v.slice(0, eq), attr = v.slice(eq + 1);
  const err = fault_inject_check_param(site, attr);
  if (err === -2) return `--fail: no fault-injection site '${site}'`;
  if (err !== 0) return `--fail ${site}: '${attr}' is not interval,probability,space,times`;
  return { site, attr };
}

/**
 * armFails() - arm @fails on the machine just booted. A page_alloc spec
 * also lets user pages, reclaiming and order-0 allocations fail (what a
 * fuzz run wants; Linux's defaults exempt them). Verbose off.
 */
export function armFails(fails: readonly FailSpec[]): void {
  for (const f of fails) {
    const a = fault_attr_lookup(f.site)!;
    setup_fault_attr(a, f.attr);
    a.verbose = 0;
    if (a === fail_page_alloc.attr) Object.assign(fail_page_alloc, { ignore_gfp_highmem: false, ignore_gfp_reclaim: false, min_order: 0 });
  }
}

/** injectFired() - injected failures on this machine so far, every site, FAIL_ALLOC flags taken included. */
export function injectFired(): number {
  return fault_attr_sites().reduce((n, a) => n + a.failures, 0) + get_counter(DMIRROR_FAIL_ALLOC);
}

/** injectWindow() - the sites' failure counts now (and FAIL_ALLOC's, last), to see which fired during an operation. */
export function injectWindow(): number[] {
  return [...fault_attr_sites().map((a) => a.failures), get_counter(DMIRROR_FAIL_ALLOC)];
}

/** firedSince() - debugfs names of the sites that failed since @win ("dmirror_fail_alloc": the flag was taken). */
export function firedSince(win: readonly number[]): string[] {
  const sites = fault_attr_sites();
  const fired = sites.filter((a, i) => a.failures > win[i]!).map((a) => a.name);
  if (get_counter(DMIRROR_FAIL_ALLOC) > win[sites.length]!) fired.push(DMIRROR_FAIL_ALLOC);
  return fired;
}

/**
 * injectAccepts() - may result @got (an errno) or signal @sig of @op stand,
 * given the sites in @fired failed during it? (The rule of the header;
 * no state is touched.)
 */
export function injectAccepts(op: Op, fired: readonly string[], got?: number, sig?: number): boolean {
  if (fired.length === 0) return false;
  if (sig !== undefined) return CPU_OPS.has(op.k) && sig === SIGBUS && fired.includes('fail_dev_copy');
  if (got === undefined) return false;
  const table = op.k === 'fork' ? FORK_ERRNO : DEVICE_OPS.has(op.k) ? INJECTED_ERRNO : {};
  return fired.some((s) => (table[s] ?? []).includes(got));
}

/*
 * the bytes [addr, addr + len) would hold had @op completed, or null when
 * it does not write (the model's own bytes stay demanded)
 */
function intended(m: ShadowProc, op: Op): { addr: number; bytes: Uint8Array } | null {
  const [a, b, c] = op.a;
  switch (op.k) {
    case 'dm_write': return { addr: ARENA + a * PAGE_SIZE, bytes: fillBytes(b * PAGE_SIZE, c) };
    case 'du_write': return { addr: ARENA + a, bytes: fillBytes(Math.min(b, ARENA_PAGES * PAGE_SIZE - a), c) };
    case 'wbulk': return { addr: ARENA + a, bytes: fillBytes(Math.min(b, ARENA_PAGES * PAGE_SIZE - a), c) };
    case 'store': {
      const v = c % 2 ** (b * 8), out = new Uint8Array(b);
      for (let i = 0, x = v; i < b; i++, x = Math.floor(x / 256)) out[i] = x % 256;
      return { addr: ARENA + a, bytes: out };
    }
    case 'atomic': {
      const old = m.bytes(ARENA + a, 4);
      const nv = ((old[0] | (old[1] << 8) | (old[2] << 16) | (old[3] << 24)) + (b % 65536)) >>> 0;
      return { addr: ARENA + a, bytes: new Uint8Array([nv & 0xff, (nv >>> 8) & 0xff, (nv >>> 16) & 0xff, nv >>> 24]) };
    }
    default: return null;
  }
}

function same(x: Uint8Array, y: Uint8Array): boolean {
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * injectSettle() - after an accepted failure of a writing @op: each page
 * it touched must hold its old bytes or its new ones; the model takes
 * what is there. Reads through the CPU (retrying a read an injected
 * failure refuses); a page the model says may not be read is skipped (no
 * write reaches it, and its bytes stay demanded as before). Return: null,
 * or what is wrong (a divergence).
 */
export function injectSettle(p: Process, m: ShadowProc, op: Op): string | null {
  const w = intended(m, op);
  if (w === null) return null;
  const first = Math.floor(w.addr / PAGE_SIZE), last = Math.floor((w.addr + w.bytes.length - 1) / PAGE_SIZE);
  for (let pg = first; pg <= last; pg++) {
    /* a page the process may not read (PROT_NONE, a hole) no write can have reached: the model keeps its bytes */
    if (m.denied(pg, false) !== null) continue;
    const start = Math.max(w.addr, pg * PAGE_SIZE), end = Math.min(w.addr + w.bytes.length, (pg + 1) * PAGE_SIZE);
    const old = m.bytes(start, end - start), nu = w.bytes.subarray(start - w.addr, end - w.addr);
    let now: Uint8Array | null = null;
    for (let t = 0; t < 8 && now === null; t++) {
      try { now = p.read(start, end - start); } catch { now = null; }
    }
    if (now === null) return `page 0x${(pg * PAGE_SIZE).toString(16)} unreadable after an injected failure`;
    if (!same(now, old) && !same(now, nu)) return `page 0x${(pg * PAGE_SIZE).toString(16)} holds neither its old nor its new bytes after an injected failure`;
    m.store(start, now);
  }
  count_event('fuzz_inject_settled');
  return null;
}
