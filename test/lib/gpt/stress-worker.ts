/*
 * test/lib/gpt/stress-worker.ts - the worker threads of the lib/gpt stress
 * test (test/lib/gpt/smp.test.ts): readers, a faulter, a pruner, and bit
 * setters, all on one shared table.
 *
 * Every entry a faulter writes checks itself: the high word holds a version
 * and the low word a hash of (page, version), so a torn read (the low word
 * of one write with the high word of another) fails the check; a slot
 * recycled and poisoned under a reader reads as a value above 2^53. Entries
 * a faulter writes into a directory it created itself are first written
 * "half" (HMM_PTE_SELECT set) and completed in a second pass; a reader under
 * the serial rule (GPT_ITER_UPDATE) must never see a half entry.
 *
 * Ordering of updates for the oracle: each writer takes a ticket from a
 * shared counter while it holds the directory lock, so tickets order all
 * changes of one entry the way the lock did.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { gpt } from '../../../lib/gpt/gpt.js';
import { hmm_pt_format } from '../../../lib/gpt/formats.js';
import {
  GPT_ITER_FAULT, GPT_ITER_UPDATE, HMM_PTE_DIRTY, HMM_PTE_SELECT, HMM_PTE_VALID_DMA,
  type gpt_shared, type gpt_walk_ops,
} from '../../../include/linux/gpt.js';

export const PAGE = 4096;
/* region: 32 leaf directories straddling a 1 GiB (PMD directory) boundary */
export const REGION = 0x7f0000000000 + 2 ** 30 - 2 ** 25;
export const REGION_PAGES = 2 ** 14;

/* control words (shared counters; word 0 is unused) */
export const C_TICKET = 1, C_TORN = 2, C_HALF = 3, C_OTHER = 4, C_READS = 5,
  C_WALKED = 6, C_FAULTS = 7, C_PRUNED = 8, C_BITS = 9, C_YOUNG_SEEN = 10, C_FAULTER_ROUNDS = 11, C_READY = 12, C_WORDS = 16;

export interface stress_args {
  role: 'reader' | 'faulter' | 'pruner' | 'bits';
  shared: gpt_shared;
  ctl: SharedArrayBuffer;
  seed: number;
  /* rounds of work this worker does before it stops (see each role) */
  rounds: number;
  bit?: number;
  /* workers that start together: each waits at a barrier until this many have started */
  party?: number;
}

function mix(page: number, ver: number): number {
  let h = Math.imul((page >>> 0) ^ Math.imul(ver, 0x9e3779b9), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) & 0xffffff;
}

/** stress_entry() - the self-checking entry for @addr at version @ver. */
export function stress_entry(addr: number, ver: number, half: boolean): number {
  const v = ver & 0xfffff;
  const lo = mix(addr / PAGE, v) * 256 + HMM_PTE_VALID_DMA + (half ? HMM_PTE_SELECT : 0);
  return v * 2 ** 32 + lo;
}

/**
 * stress_check() - classify entry @e read at @addr.
 * Return: 0 fine (none or a complete entry), 1 torn or garbage, 2 half.
 */
export function stress_check(addr: number, e: number): number {
  if (e === 0) return 0;
  if (!(e < 2 ** 53) || Math.floor(e) !== e) return 1;
  const hi = Math.floor(e / 2 ** 32), lo = e - hi * 2 ** 32;
  const flags = lo & 0xff & ~(HMM_PTE_DIRTY | HMM_PTE_SELECT);
  if (flags !== HMM_PTE_VALID_DMA || Math.floor(lo / 256) !== mix(addr / PAGE, hi)) return 1;
  return (lo & HMM_PTE_SELECT) !== 0 ? 2 : 0;
}

/*
 * pace() - wait (without spinning) until the faulter has done @share of its
 * rounds, so that readers and the pruner spread their rounds over the
 * faulter's run on any machine, idle or loaded.
 */
function pace(ctl: Int32Array, share: number): void {
  const need = Math.floor(share * Atomics.load(ctl, C_FAULTER_ROUNDS));
  for (let seen = Atomics.load(ctl, C_FAULTS); seen < need; seen = Atomics.load(ctl, C_FAULTS)) {
    Atomics.wait(ctl, C_FAULTS, seen, 50);
  }
}

class Rng {
  constructor(private s: number) {}
  below(n: number): number {
    let x = this.s;
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    this.s = x >>> 0;
    return this.s % n;
  }
}

class check_ops implements gpt_walk_ops {
  n = 0;
  constructor(readonly ctl: Int32Array, readonly honour_serial: boolean) {}
  leaf(_ptr: number, addr: number, _level: number, e: number): number {
    const c = stress_check(addr, e);
    if (c === 1) Atomics.add(this.ctl, C_TORN, 1);
    if (c === 2 && this.honour_serial) Atomics.add(this.ctl, C_HALF, 1);
    this.n++;
    return 0;
  }
}

/* @rounds rounds of 64 lookups or one range walk */
function reader(pt: gpt, ctl: Int32Array, r: Rng, rounds: number): void {
  let reads = 0;
  for (let round = 0; round < rounds; round++) {
    pace(ctl, round / rounds);
    const mode = r.below(8);
    if (mode < 5) {                               /* iterator lookups under the serial rule */
      const it = pt.iter_init(GPT_ITER_UPDATE);
      let a = REGION + r.below(REGION_PAGES) * PAGE;
      for (let k = 0; k < 64; k++, a += PAGE * (1 + r.below(3))) {
        if (a >= REGION + REGION_PAGES * PAGE) break;
        const p = it.lookup(a);
        if (p < 0) continue;
        const e = pt.load(p);
        const c = stress_check(a, e);
        if (c === 1) Atomics.add(ctl, C_TORN, 1);
        else if (c === 2) Atomics.add(ctl, C_HALF, 1);
        else if (e !== 0 && r.below(4) === 0) pt.set_bits(p, HMM_PTE_DIRTY);   /* the device wrote */
        reads++;
      }
      it.fini();
    } else if (mode < 6) {                        /* a range walk under the serial rule */
      const it = pt.iter_init(GPT_ITER_UPDATE);
      const a = REGION + r.below(REGION_PAGES) * PAGE;
      const ops = new check_ops(ctl, true);
      it.walk(a, a + r.below(4096) * PAGE, ops);
      it.fini();
      Atomics.add(ctl, C_WALKED, ops.n);
    } else {                                      /* bare lookups in a read section */
      pt.rcu_read_lock();
      for (let k = 0; k < 64; k++) {
        const a = REGION + r.below(REGION_PAGES) * PAGE;
        const p = pt.lookup(a);
        if (p >= 0 && stress_check(a, pt.load(p)) === 1) Atomics.add(ctl, C_TORN, 1);
        reads++;
      }
      pt.rcu_read_unlock();
    }
  }
  Atomics.add(ctl, C_READS, reads);
}

/* @rounds faults of 1 to 48 pages each */
function faulter(pt: gpt, ctl: Int32Array, r: Rng, rounds: number): number[] {
  const log: number[] = [];
  let ver = 1;
  const write = (p: number, a: number, half: boolean): void => {
    const s = pt.dir_of(p);
    pt.dir_lock(s);
    const t = Atomics.add(ctl, C_TICKET, 1);
    const e = stress_entry(a, ver++, half);
    pt.set(p, e);
    pt.dir_unlock(s);
    if (!half) log.push(a, e, t);
  };
  for (let round = 0; round < rounds; round++) {
    const it = pt.iter_init(GPT_ITER_FAULT);
    const first = r.below(REGION_PAGES), n = 1 + r.below(48);
    const young: number[] = [];
    for (let i = first; i < first + n && i < REGION_PAGES; i++) {
      const a = REGION + i * PAGE;
      const p = it.populate(a);
      if (p < 0) { Atomics.add(ctl, C_OTHER, 1); continue; }
      const mine = pt.dir_serial(pt.dir_of(p)) === it.serial;
      if (mine) young.push(a);
      write(p, a, mine);
    }
    if (young.length > 0) Atomics.add(ctl, C_YOUNG_SEEN, 1);
    for (const a of young) {                      /* second pass: complete the half entries */
      const p = it.populate(a);
      if (p < 0) { Atomics.add(ctl, C_OTHER, 1); continue; }
      write(p, a, false);
    }
    it.fini();
    Atomics.add(ctl, C_FAULTS, 1);
    Atomics.notify(ctl, C_FAULTS);
  }
  return log;
}

/* clear a range under each leaf directory's lock, one ticket per directory */
class clear_ops implements gpt_walk_ops {
  log: number[] = [];
  t = 0;
  constructor(readonly pt: gpt, readonly ctl: Int32Array) {}
  pre(slot: number, level: number, start: number, end: number): number {
    if (level !== this.pt.llevel) return 0;
    this.pt.dir_lock(slot);
    this.t = Atomics.add(this.ctl, C_TICKET, 1);
    this.log.push(start, end, this.t);
    return 0;
  }
  post(slot: number, level: number): number {
    if (level === this.pt.llevel) this.pt.dir_unlock(slot);
    return 0;
  }
  leaf(ptr: number): number {
    this.pt.set(ptr, 0);
    return 0;
  }
}

/* @rounds clear-and-prune passes over a random range (one in 16, and the last: all of it) */
function pruner(pt: gpt, ctl: Int32Array, r: Rng, rounds: number): number[] {
  const ops = new clear_ops(pt, ctl);
  let killed = 0;
  for (let round = 0; round < rounds; round++) {
    pace(ctl, (round + 1) / rounds);
    const whole = r.below(16) === 0 || round === rounds - 1;
    const a = whole ? REGION : REGION + r.below(REGION_PAGES) * PAGE;
    const end = whole ? REGION + REGION_PAGES * PAGE : a + (1 + r.below(2048)) * PAGE;
    pt.walk(a, end, ops);
    killed += pt.prune(a, end);
  }
  Atomics.add(ctl, C_PRUNED, killed);
  return ops.log;
}

/* lockless bit operations on shared entries: @rounds passes of clear and set my bit, end set */
function bits(pt: gpt, ctl: Int32Array, bit: number, rounds: number): void {
  let n = 0;
  const mask = 1 << bit;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < 512; i++) {
      const p = pt.lookup(REGION + i * PAGE);
      pt.clear_bits(p, mask);
      pt.set_bits(p, mask);
      n++;
    }
  }
  Atomics.add(ctl, C_BITS, n);
}

function worker_main(a: stress_args): void {
  const pt = new gpt(a.shared.geometry, hmm_pt_format, { shared: a.shared });
  const ctl = new Int32Array(a.ctl);
  const r = new Rng(a.seed);
  let log: number[] = [];
  /*
   * The start barrier: a worker that starts late (thread start-up under
   * coverage or load) would otherwise find the others done and race with
   * nothing (seen once: every reader walk ran after the pruner had emptied
   * the table).
   */
  if (a.party !== undefined) {
    Atomics.add(ctl, C_READY, 1);
    Atomics.notify(ctl, C_READY);
    for (let n = Atomics.load(ctl, C_READY); n < a.party; n = Atomics.load(ctl, C_READY)) Atomics.wait(ctl, C_READY, n, 100);
  }
  if (a.role === 'reader') reader(pt, ctl, r, a.rounds);
  else if (a.role === 'faulter') log = faulter(pt, ctl, r, a.rounds);
  else if (a.role === 'pruner') log = pruner(pt, ctl, r, a.rounds);
  else bits(pt, ctl, a.bit ?? 16, a.rounds);
  pt.detach();
  parentPort?.postMessage(new Float64Array(log));
}

if (!isMainThread && (workerData as stress_args | null)?.role !== undefined) worker_main(workerData as stress_args);
