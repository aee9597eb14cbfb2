/*
 * test/lib/gpt/smp.test.ts - lib/gpt shared between threads, for real:
 * worker_threads readers, a faulter and a pruner at once, lockless bit
 * operations, attaching and growing across instances.
 *
 * Each worker does a fixed number of rounds of work and stops (the bound is
 * work done, not wall-clock time), so the suite's CPU time is the same on
 * an idle and on a loaded machine; only its wall-clock time stretches.
 * Readers and the pruner pace their rounds on the faulter's (sleeping, not
 * spinning, when ahead), so they overlap it however the threads are run.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Worker } from 'node:worker_threads';
import { gpt } from '../../../lib/gpt/gpt.js';
import { hmm_pt_format, x86_64_pgtable_format } from '../../../lib/gpt/formats.js';
import { HMM_PTE_DIRTY, type gpt_walk_ops } from '../../../include/linux/gpt.js';
import {
  C_BITS, C_FAULTER_ROUNDS, C_FAULTS, C_HALF, C_OTHER, C_PRUNED, C_READS, C_TORN, C_WALKED, C_WORDS,
  C_YOUNG_SEEN, PAGE, REGION, REGION_PAGES, stress_check, stress_entry, type stress_args,
} from './stress-worker.js';

const GEOM = { address_bits: 48, level_bits: 9, page_shift: 12 };
/* rounds per worker (see stress-worker.ts): about 1 s of CPU each on an idle machine */
const READER_ROUNDS = +(process.env.GPT_STRESS_READER ?? 4000);
const FAULTER_ROUNDS = +(process.env.GPT_STRESS_FAULTER ?? 4000);
const PRUNER_ROUNDS = +(process.env.GPT_STRESS_PRUNER ?? 400);
const BITS_ROUNDS = +(process.env.GPT_STRESS_BITS ?? 400);

function start(args: stress_args): Promise<Float64Array> {
  const w = new Worker(new URL('./stress-worker.js', import.meta.url), { workerData: args });
  return new Promise((res, rej) => {
    w.once('message', (m: Float64Array) => { res(m); void w.terminate(); });
    w.once('error', rej);
  });
}

class collect_ops implements gpt_walk_ops {
  seen = new Map<number, number>();
  leaf(_ptr: number, addr: number, _level: number, e: number): number { this.seen.set(addr, e); return 0; }
}

/* every live directory: ref == 1 + non-none entries, links consistent */
function check_structure(pt: gpt): number {
  let dirs = 0;
  const visit = (slot: number, level: number): void => {
    dirs++;
    let used = 0;
    for (let i = 0; i < pt.entries_per_dir; i++) {
      const ptr = slot * pt.entries_per_dir + i;
      const e = pt.load(ptr);
      if (e === 0) continue;
      used++;
      if (level < pt.llevel) {
        assert.ok(pt.is_link(e));
        const c = pt.link_slot(e);
        assert.is(pt.dir_parent(c), ptr);
        visit(c, level + 1);
      }
    }
    assert.is(pt.dir_refcount(slot), 1 + used, `refcount of directory ${slot}`);
  };
  visit(pt.root, 0);
  return dirs;
}

test('readers, a faulter and a pruner at once: no torn or half entry, no use after free, no lost update', async () => {
  const pt = new gpt(GEOM, hmm_pt_format, { smp: true, poison: true, initialSlots: 8 });
  const shared = pt.share();
  const ctlbuf = new SharedArrayBuffer(C_WORDS * 4);
  const ctl = new Int32Array(ctlbuf);
  ctl[C_FAULTER_ROUNDS] = FAULTER_ROUNDS;       /* readers and the pruner pace themselves on it */
  const jobs = [
    start({ role: 'reader', shared, ctl: ctlbuf, seed: 11, rounds: READER_ROUNDS, party: 4 }),
    start({ role: 'reader', shared, ctl: ctlbuf, seed: 22, rounds: READER_ROUNDS, party: 4 }),
    start({ role: 'faulter', shared, ctl: ctlbuf, seed: 33, rounds: FAULTER_ROUNDS, party: 4 }),
    start({ role: 'pruner', shared, ctl: ctlbuf, seed: 44, rounds: PRUNER_ROUNDS, party: 4 }),
  ];
  const [, , flog, plog] = await Promise.all(jobs);
  if (process.env.GPT_STRESS_VERBOSE) console.log(Array.from(ctl.slice(0, 11)).join(' '));

  assert.is(ctl[C_TORN], 0, 'torn or poisoned entries read');
  assert.is(ctl[C_HALF], 0, 'half entries seen by readers under the serial rule');
  assert.is(ctl[C_OTHER], 0, 'populate failures');
  assert.is(pt.stats().uaf, 0, 'directories recycled under a reference');
  assert.ok(ctl[C_READS] > 1000 && ctl[C_WALKED] > 0, `readers worked (${ctl[C_READS]} reads, ${ctl[C_WALKED]} entries walked)`);
  assert.ok(ctl[C_FAULTS] > 10 && ctl[C_YOUNG_SEEN] > 0, `faulter worked (${ctl[C_FAULTS]} faults)`);
  assert.ok(ctl[C_PRUNED] > 0, 'pruner freed directories');
  assert.ok(pt.stats().reclaimed > 0, 'slots were recycled after grace periods');

  /* replay the writes and clears in ticket order */
  const ev: { t: number; a: number; b: number; e: number }[] = [];
  for (let i = 0; i < flog.length; i += 3) ev.push({ t: flog[i + 2], a: flog[i], b: -1, e: flog[i + 1] });
  for (let i = 0; i < plog.length; i += 3) ev.push({ t: plog[i + 2], a: plog[i], b: plog[i + 1], e: 0 });
  ev.sort((x, y) => x.t - y.t);
  const oracle = new Map<number, number>();
  for (const x of ev) {
    if (x.b < 0) { oracle.set(x.a, x.e); continue; }
    for (const k of [...oracle.keys()]) if (k >= x.a && k < x.b) oracle.delete(k);
  }
  const c = new collect_ops();
  pt.walk(REGION, REGION + REGION_PAGES * PAGE, c);
  assert.is(c.seen.size, oracle.size);
  for (const [a, e] of c.seen) {
    assert.is(stress_check(a, e), 0);
    assert.is(e - (e % 2 ** 32 & HMM_PTE_DIRTY), oracle.get(a), `entry at ${a.toString(16)}`);
  }
  check_structure(pt);
  pt.synchronize();
  assert.is(pt.stats().slots_retired, 0);
});

test('lockless set_bits and clear_bits from two workers lose no bit and never touch the address', async () => {
  const pt = new gpt(GEOM, hmm_pt_format, { smp: true });
  for (let i = 0; i < 512; i++) {
    const p = pt.populate(REGION + i * PAGE);
    pt.dir_lock(pt.dir_of(p));
    pt.set(p, stress_entry(REGION + i * PAGE, i + 1, false));
    pt.dir_unlock(pt.dir_of(p));
  }
  const ctlbuf = new SharedArrayBuffer(C_WORDS * 4);
  const ctl = new Int32Array(ctlbuf);
  const shared = pt.share();
  const jobs = [
    start({ role: 'bits', shared, ctl: ctlbuf, seed: 1, bit: 6, rounds: BITS_ROUNDS }),
    start({ role: 'bits', shared, ctl: ctlbuf, seed: 2, bit: 7, rounds: BITS_ROUNDS }),
  ];
  await Promise.all(jobs);
  assert.is(ctl[C_BITS], 2 * BITS_ROUNDS * 512);
  for (let i = 0; i < 512; i++) {
    const a = REGION + i * PAGE;
    assert.is(pt.load(pt.lookup(a)), stress_entry(a, i + 1, false) + 64 + 128);
  }
});

test('a second instance attached to a table sees entries and follows the pool as it grows', () => {
  const pt = new gpt(GEOM, hmm_pt_format, { smp: true, initialSlots: 4 });
  const other = new gpt(GEOM, hmm_pt_format, { shared: pt.share() });
  assert.is(other.root, pt.root);
  for (let i = 0; i < 40; i++) {              /* 40 leaf directories: the pool grows */
    const a = REGION + i * 2 ** 21;
    const p = pt.populate(a);
    pt.dir_lock(pt.dir_of(p));
    pt.set(p, stress_entry(a, 7, false));
    pt.dir_unlock(pt.dir_of(p));
  }
  assert.ok(pt.stats().grows > 0);
  assert.ok(other.nview < pt.nview);
  for (let i = 0; i < 40; i++) {
    const a = REGION + i * 2 ** 21;
    assert.is(other.load(other.lookup(a)), stress_entry(a, 7, false));
  }
  assert.is(other.nview, pt.nview);
  assert.throws(() => new gpt({ ...GEOM, level_bits: 8 }, hmm_pt_format, { shared: pt.share() }));
  assert.throws(() => new gpt(GEOM, x86_64_pgtable_format, { shared: pt.share() }), /format/);
  other.detach();
});

test('on an smp table set() asserts that the caller holds the directory lock', () => {
  const pt = new gpt(GEOM, hmm_pt_format, { smp: true });
  const p = pt.populate(REGION);
  assert.throws(() => pt.set(p, 5), /lock/);
  pt.dir_lock(pt.dir_of(p));
  pt.set(p, 5);
  pt.dir_unlock(pt.dir_of(p));
  assert.is(pt.load(p), 5);
  assert.throws(() => new gpt(GEOM, hmm_pt_format).share());
});

test.run();
