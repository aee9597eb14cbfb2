/*
 * tools/bench/gpt.ts - benchmark of lib/gpt against the two obvious
 * JavaScript page tables, measured in the same run.
 *
 * 1,048,576 mapped 4 KiB pages (4 GiB) at 0x7f0000000000 in a 48-bit,
 * 4-level table with x86-64 entries. Each figure is printed beside:
 *   Map   a Map<page number, {pfn, flags}>, the way a simulator without a
 *         page-table engine would store translations;
 *   flat  a Float64Array indexed by page number minus the first page, the
 *         fastest a JS translation can be (only possible for one dense
 *         window, which is why it is a bound and not a design).
 * Operations: populate (create directories and set every entry), random
 * lookup (address -> entry), sequential range walk (entries per second),
 * clear (every entry to none). Then host bytes per mapped entry, and
 * lookup throughput of 1 and 2 worker threads on a shared (smp) table.
 *
 * Targets: random lookup >= 5x Map and >= 25% of flat; walk
 * >= 50 M entries/s; <= 10 host bytes per entry; 2 readers >= 1.5x one.
 *
 * Times: one warm-up run, then the median CPU time of 3 or 5 runs; Map
 * bytes are measured between forced GCs.
 *
 * Run: npm run bench -- gpt   (or node dist/tools/bench/gpt.js)
 */
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { gpt } from '../../lib/gpt/gpt.js';
import { x86_64_pgtable_format } from '../../lib/gpt/formats.js';
import type { gpt_shared, gpt_walk_ops } from '../../include/linux/gpt.js';
import { _PAGE_PRESENT, _PAGE_RW, _PAGE_USER } from '../../include/linux/pgtable_types.js';
import { check_target, hostMemory, measure, row, spreadPct } from './harness.js';

const NPAGES = 1 << 20;
const BASE = 0x7f0000000000;
const BASE_VPN = BASE / 4096;
const PAGE = 4096;
const GEOM = { address_bits: 48, level_bits: 9, page_shift: 12 };
const FLAGS = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER;
const NLOOKUP = 1 << 21;
const WORKER_MS = 1000;
const WARMUP_MS = 300;

interface MapEntry { pfn: number; flags: number }

const pfn_of = (i: number): number => 0x100000 + i * 7;

/*
 * time() - one warm-up run of fn, then @reps measured runs: the median CPU
 * time (process.cpuUsage) in ms, its spread, the median wall time, and
 * fn's result (every run must agree).
 */
function time(fn: () => number, reps = 3): { ms: number; wall: number; spread: number; check: number } {
  let check = fn();
  const t = measure(() => { check = fn(); }, { warmup: 0, reps });
  return { ms: t.cpu.median / 1e6, wall: t.wall.median / 1e6, spread: spreadPct(t.cpu), check };
}

/* ---- gpt ---- */
function gpt_populate(pt: gpt): number {
  for (let i = 0; i < NPAGES; i++) {
    const p = pt.populate(BASE + i * PAGE);
    pt.set(p, pfn_of(i) * PAGE + FLAGS);
  }
  return NPAGES;
}
function gpt_lookup(pt: gpt, addrs: Float64Array): number {
  let s = 0;
  for (let i = 0; i < addrs.length; i++) s += pt.load(pt.lookup(addrs[i]));
  return s;
}
class sum_ops implements gpt_walk_ops {
  sum = 0;
  n = 0;
  leaf(_ptr: number, _addr: number, _level: number, e: number): number {
    this.sum += e;
    this.n++;
    return 0;
  }
}
function gpt_walk(pt: gpt): number {
  const ops = new sum_ops();
  pt.walk(BASE, BASE + NPAGES * PAGE, ops);
  return ops.n;
}

/* ---- Map ---- */
function map_populate(m: Map<number, MapEntry>): number {
  for (let i = 0; i < NPAGES; i++) m.set(BASE_VPN + i, { pfn: pfn_of(i), flags: FLAGS });
  return NPAGES;
}
function map_lookup(m: Map<number, MapEntry>, addrs: Float64Array): number {
  let s = 0;
  for (let i = 0; i < addrs.length; i++) {
    const e = m.get(addrs[i] / PAGE);
    if (e !== undefined) s += e.pfn * PAGE + e.flags;
  }
  return s;
}
function map_walk(m: Map<number, MapEntry>): number {
  let s = 0, n = 0;
  for (let v = BASE_VPN; v < BASE_VPN + NPAGES; v++) {
    const e = m.get(v);
    if (e !== undefined) { s += e.pfn * PAGE + e.flags; n++; }
  }
  return n + (s > 0 ? 0 : 1);
}
function map_clear(m: Map<number, MapEntry>): number {
  for (let v = BASE_VPN; v < BASE_VPN + NPAGES; v++) m.delete(v);
  return NPAGES;
}

/* ---- flat array ---- */
function flat_populate(f: Float64Array): number {
  for (let i = 0; i < NPAGES; i++) f[i] = pfn_of(i) * PAGE + FLAGS;
  return NPAGES;
}
function flat_lookup(f: Float64Array, addrs: Float64Array): number {
  let s = 0;
  for (let i = 0; i < addrs.length; i++) s += f[(addrs[i] - BASE) / PAGE];
  return s;
}
function flat_walk(f: Float64Array): number {
  let s = 0, n = 0;
  for (let i = 0; i < f.length; i++) {
    const e = f[i];
    if (e !== 0) { s += e; n++; }
  }
  return n + (s > 0 ? 0 : 1);
}

/* ---- worker readers on a shared table ---- */
interface worker_args { gpt_bench: true; shared: gpt_shared; ctl: SharedArrayBuffer; id: number }
const CTL_GO = 0, CTL_STOP = 1, CTL_READY = 2, CTL_COUNT = 4;

function bench_worker(a: worker_args): void {
  const pt = new gpt(a.shared.geometry, x86_64_pgtable_format, { shared: a.shared });
  const ctl = new Int32Array(a.ctl);
  let x = 0x9e3779b9 ^ (a.id * 0x85ebca6b);
  let n = 0, s = 0;
  Atomics.add(ctl, CTL_READY, 1);
  Atomics.notify(ctl, CTL_READY);
  Atomics.wait(ctl, CTL_GO, 0);
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    pt.rcu_read_lock();
    for (let k = 0; k < 4096; k++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      s += pt.load(pt.lookup(BASE + ((x >>> 0) & (NPAGES - 1)) * PAGE));
    }
    pt.rcu_read_unlock();
    n += 4096;
    Atomics.store(ctl, CTL_COUNT + a.id, n / 4096);
  }
  pt.detach();
  parentPort?.postMessage(s > 0);
}

async function readers(shared: gpt_shared, nworkers: number): Promise<number> {
  const ctl = new Int32Array(new SharedArrayBuffer(64));
  const ws: Worker[] = [];
  const done: Promise<unknown>[] = [];
  for (let i = 0; i < nworkers; i++) {
    const w = new Worker(new URL(import.meta.url), { workerData: { gpt_bench: true, shared, ctl: ctl.buffer, id: i } });
    ws.push(w);
    done.push(new Promise((res, rej) => { w.once('message', res); w.once('error', rej); }));
  }
  while (Atomics.load(ctl, CTL_READY) < nworkers) await new Promise((r) => setTimeout(r, 5));
  const count = (): number => {
    let n = 0;
    for (let i = 0; i < nworkers; i++) n += Atomics.load(ctl, CTL_COUNT + i) * 4096;
    return n;
  };
  Atomics.store(ctl, CTL_GO, 1);
  Atomics.notify(ctl, CTL_GO);
  await new Promise((r) => setTimeout(r, WARMUP_MS));      /* let the JIT settle */
  const t = performance.now(), n0 = count();
  await new Promise((r) => setTimeout(r, WORKER_MS));
  const n1 = count(), ms = performance.now() - t;
  Atomics.store(ctl, CTL_STOP, 1);
  await Promise.all(done);
  await Promise.all(ws.map((w) => w.terminate()));
  return (n1 - n0) / ms / 1e3;
}

function rate(n: number, ms: number): number { return n / ms / 1e3; }   /* M per second */
const f1 = (v: number): string => v.toFixed(1).padStart(9);
const f2 = (v: number): string => v.toFixed(2).padStart(9);
function line(name: string, g: number, m: number, f: number): void {
  console.log(`${name.padEnd(18)}${f1(g)}${f1(m)}${f1(f)}${f2(g / m)}${f2(g / f)}`);
}

/**
 * bench_gpt() - run the gpt benchmark and print its figures and ratios.
 */
export async function bench_gpt(): Promise<void> {
  console.log(`gpt: ${NPAGES} pages of 4 KiB at 0x${BASE.toString(16)}, 48-bit 4-level x86-64 table`);
  const addrs = new Float64Array(NLOOKUP);
  let x = 12345;
  for (let i = 0; i < NLOOKUP; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    addrs[i] = BASE + ((x >>> 0) % NPAGES) * PAGE;
  }
  /* populate: fresh structures each repetition */
  let pt = new gpt(GEOM, x86_64_pgtable_format);
  const gp = time(() => { pt = new gpt(GEOM, x86_64_pgtable_format); return gpt_populate(pt); });
  let map = new Map<number, MapEntry>();
  const mp = time(() => { map = new Map(); return map_populate(map); });
  /* bytes of one Map, after forced GCs on both sides (the bench runner exposes gc) */
  map = new Map();
  const heap0 = hostMemory().heap;
  map_populate(map);
  const map_bytes = (hostMemory().heap - heap0) / NPAGES;
  let flat = new Float64Array(NPAGES);
  const fp = time(() => { flat = new Float64Array(NPAGES); return flat_populate(flat); });

  const gl = time(() => gpt_lookup(pt, addrs), 5);
  const ml = time(() => map_lookup(map, addrs), 5);
  const fl = time(() => flat_lookup(flat, addrs), 5);
  if (gl.check !== fl.check || ml.check !== fl.check) throw new Error('bench: lookups disagree');

  const gw = time(() => gpt_walk(pt), 5);
  const mw = time(() => map_walk(map), 3);
  const fw = time(() => flat_walk(flat), 5);
  if (gw.check !== NPAGES) throw new Error(`bench: walk saw ${gw.check} entries`);

  const st = pt.stats();
  const gpt_bytes = st.bytes / NPAGES;
  const t0 = performance.now();
  pt.clear_range(BASE, BASE + NPAGES * PAGE);
  const gc = performance.now() - t0;
  const t1 = performance.now();
  pt.prune(BASE, BASE + NPAGES * PAGE);
  const gpr = performance.now() - t1;
  const mc = time(() => map_clear(map), 1);
  const fc = time(() => { flat.fill(0); return 0; }, 1);

  console.log(`${'M ops/s'.padEnd(18)}${'gpt'.padStart(9)}${'Map'.padStart(9)}${'flat'.padStart(9)}${'gpt/Map'.padStart(9)}${'gpt/flat'.padStart(9)}`);
  line('populate', rate(NPAGES, gp.ms), rate(NPAGES, mp.ms), rate(NPAGES, fp.ms));
  line('random lookup', rate(NLOOKUP, gl.ms), rate(NLOOKUP, ml.ms), rate(NLOOKUP, fl.ms));
  line('range walk', rate(NPAGES, gw.ms), rate(NPAGES, mw.ms), rate(NPAGES, fw.ms));
  line('clear', rate(NPAGES, gc), rate(NPAGES, mc.ms), rate(NPAGES, fc.ms));
  console.log(`prune of the emptied range: ${gpr.toFixed(2)} ms (${st.slots_used - 1} directories)`);
  console.log(`host bytes per mapped entry: gpt ${gpt_bytes.toFixed(2)} (${st.slots_used} directories, ` +
    `${(st.bytes / 2 ** 20).toFixed(2)} MiB), Map ~${map_bytes.toFixed(0)}, flat 8.00`);

  /* shared table, worker readers */
  const sp = new gpt(GEOM, x86_64_pgtable_format, { smp: true });
  for (let i = 0; i < NPAGES; i++) {
    const p = sp.populate(BASE + i * PAGE);
    const s = sp.dir_of(p);
    sp.dir_lock(s);
    sp.set(p, pfn_of(i) * PAGE + FLAGS);
    sp.dir_unlock(s);
  }
  const sl = time(() => { sp.rcu_read_lock(); const r = gpt_lookup(sp, addrs); sp.rcu_read_unlock(); return r; }, 3);
  await readers(sp.share(), 1);                       /* warm the table and the worker code */
  const one = await readers(sp.share(), 1);
  const two = await readers(sp.share(), 2);
  console.log(`smp table (Atomics): main-thread lookup ${rate(NLOOKUP, sl.ms).toFixed(1)} M/s; ` +
    `worker readers: 1 = ${one.toFixed(1)} M/s, 2 = ${two.toFixed(1)} M/s (x${(two / one).toFixed(2)})`);

  row('gpt random lookup (M/s, CPU)', rate(NLOOKUP, gl.ms), 'M/s', 'Map', rate(NLOOKUP, ml.ms));
  row('gpt random lookup (M/s, CPU)', rate(NLOOKUP, gl.ms), 'M/s', 'flat', rate(NLOOKUP, fl.ms));
  row('gpt range walk (M/s, CPU)', rate(NPAGES, gw.ms), 'M/s', 'flat', rate(NPAGES, fw.ms));
  row('gpt populate (M/s, CPU)', rate(NPAGES, gp.ms), 'M/s', 'Map', rate(NPAGES, mp.ms));
  row('gpt bytes per entry', gpt_bytes, 'B', 'Map', map_bytes);
  const lk = rate(NLOOKUP, gl.ms);
  console.log('targets: ' + [
    `lookup >= 5x Map: x${(lk / rate(NLOOKUP, ml.ms)).toFixed(1)} ${check_target('gpt lookup >= 5x Map', lk >= 5 * rate(NLOOKUP, ml.ms))}`,
    `lookup >= 25% flat: ${(100 * lk / rate(NLOOKUP, fl.ms)).toFixed(0)}% ${check_target('gpt lookup >= 25% flat', lk >= 0.25 * rate(NLOOKUP, fl.ms))}`,
    `walk >= 50 M/s: ${rate(NPAGES, gw.ms).toFixed(0)} ${check_target('gpt walk >= 50 M/s', rate(NPAGES, gw.ms) >= 50)}`,
    `<= 10 B/entry: ${gpt_bytes.toFixed(2)} ${check_target('gpt <= 10 B/entry', gpt_bytes <= 10)}`,
    `2 readers >= 1.5x: x${(two / one).toFixed(2)} ${check_target('gpt 2 readers >= 1.5x', two >= 1.5 * one)}`,
  ].join('; '));
}

if (!isMainThread && (workerData as worker_args | null)?.gpt_bench === true) {
  bench_worker(workerData as worker_args);
} else if (isMainThread && process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*\/dist\//, '/dist/'))) {
  void bench_gpt();
}
