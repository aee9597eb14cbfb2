/*
 * test/tools/fuzz.test.ts - the differential fuzzer (tools/testing/fuzz/):
 * a short fixed budget of seeds for CI, and proof that the fuzzer, its
 * invariants and its shrinker can fail.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runSeed, runRecorded, shrink, signature, bootFuzzMachine } from '../../tools/testing/fuzz/run.js';
import { FuzzWorld, Divergence } from '../../tools/testing/fuzz/machine.js';
import {
  checkCoherence, checkTeardown, baseline, releaseFits, devicePagesInUse,
} from '../../tools/testing/fuzz/invariants.js';
import { cpuView } from '../../tools/testing/fuzz/cpu_view.js';
import { ARENA, ShadowProc, fillBytes } from '../../tools/testing/fuzz/model.js';
import { type Op } from '../../tools/testing/fuzz/ops.js';
import { injectAccepts, injectSettle } from '../../tools/testing/fuzz/inject.js';
import { SIGBUS, SIGSEGV } from '../../include/uapi/asm-generic/signal.js';
import { page_backing, pfn_to_page, nr_free_pages } from '../../mm/page_alloc.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PROT_READ, PROT_WRITE, MADV_HUGEPAGE, MADV_NOHUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { EFAULT, EACCES, EIO, EBUSY, ENOMEM } from '../../include/uapi/asm-generic/errno.js';
import { HMM_DUMMY_READ, HMM_DUMMY_WRITE, HMM_DUMMY_STRUCT_SIZE, hmm_dummy_rw_encode } from '../../include/uapi/linux/hmm_dummy.js';
import { v8WritableMigratedBack } from '../../tools/testing/fuzz/v8_view.js';
import { SCRATCH_CMD, SCRATCH_BOUNCE } from '../../tools/testing/fuzz/model.js';
import { pte_offset_map, ptep_get } from '../../mm/pgtable.js';
import { is_swap_pte, is_hmm_entry_poisonous, pte_to_swp_entry } from '../../include/linux/swapops.js';

/*
 * Seeds that run clean today (known bugs stop most others:
 * the MIGRATE_TO_SYS zero-page folio_unlock BUG, the mprotect merge
 * -ENOMEM, the swap slots leaked by device-exclusive pages; see
 * /work/notes/fuzz.md). 200 operations each, about 0.3 s a seed of CPU.
 */
const CLEAN_SEEDS = [1, 5, 6, 7, 8, 11];

test('a fixed budget of seeds runs without divergence, with invariants and teardown checked', () => {
  let executed = 0;
  for (const seed of CLEAN_SEEDS) {
    const r = runSeed(seed, 200);
    assert.is(r.failure, null, `seed ${seed}: ${r.failure}`);
    executed += r.executed;
  }
  assert.ok(executed >= CLEAN_SEEDS.length * 150, `most operations ran (${executed})`);
});

test('the same seed draws the same operations (a failure replays from its seed)', () => {
  const a = runSeed(5, 120), b = runSeed(5, 120);
  assert.equal(a.ops, b.ops);
  const kinds = new Set(a.ops.map((o) => o.k));
  for (const k of ['mmap', 'store', 'load']) assert.ok(kinds.has(k as Op['k']), `seed 5 draws ${k}`);
});

test('a byte changed behind the model\'s back is a divergence at the next load', () => {
  bootFuzzMachine({ swap_bytes: 8 << 20 });
  const w = new FuzzWorld();
  w.exec({ k: 'spawn', s: 0, a: [] });
  w.exec({ k: 'mmap', s: 0, a: [0, 4, PROT_READ | PROT_WRITE] });
  w.exec({ k: 'store', s: 0, a: [8, 4, 0x11223344] });
  w.exec({ k: 'load', s: 0, a: [8, 4] });
  const cpu = cpuView(w.slots[0]!.p.mm, ARENA);
  assert.is(cpu.kind, 'present');
  const { bytes, offset } = page_backing(pfn_to_page(cpu.pfn));
  bytes[offset + 9] ^= 0xff;                                  /* corrupt the frame */
  assert.throws(() => w.exec({ k: 'load', s: 0, a: [8, 4] }), (e: unknown) => e instanceof Divergence && /load32/.test(e.message));
});

test('an access the model forbids must fault: a store to a read-only page diverges if it succeeds', () => {
  bootFuzzMachine();
  const w = new FuzzWorld();
  w.exec({ k: 'spawn', s: 0, a: [] });
  w.exec({ k: 'mmap', s: 0, a: [0, 2, PROT_READ] });
  w.exec({ k: 'store', s: 0, a: [100, 1, 7] });              /* SIGSEGV expected and delivered */
  /* lie to the model: it now believes page 1 is writable, the kernel refuses */
  w.slots[0]!.model.pages.get(ShadowProc.vpn(1))!.prot = PROT_READ | PROT_WRITE;
  assert.throws(() => w.exec({ k: 'store', s: 0, a: [4096 + 8, 4, 1] }), (e: unknown) => e instanceof Divergence && /SIGSEGV/.test(e.message));
});

test('a device page table entry the CPU no longer maps breaks the coherence invariant', () => {
  bootFuzzMachine();
  const w = new FuzzWorld();
  w.exec({ k: 'spawn', s: 0, a: [] });
  w.exec({ k: 'mmap', s: 0, a: [0, 4, PROT_READ | PROT_WRITE] });
  w.exec({ k: 'wbulk', s: 0, a: [0, 4 * 4096, 3] });
  w.exec({ k: 'dm_open', s: 0, a: [0] });
  w.exec({ k: 'dm_read', s: 0, a: [0, 4, 0] });
  checkCoherence(w);
  const sl = w.slots[0]!;
  const d = sl.p.task.files.get(sl.dm!.fd)!.private_data as { pt: Map<number, { page: { pfn: number } }> };
  const e = d.pt.get(ARENA / 4096 + 1)!;
  d.pt.set(ARENA / 4096 + 1, { ...e, page: pfn_to_page(e.page.pfn + 7) });   /* a stale device mapping */
  assert.throws(() => checkCoherence(w), (x: unknown) => x instanceof Divergence && /coherence/.test(x.message));
});

test('teardown finds a frame that was not freed', () => {
  bootFuzzMachine();
  const b = baseline();
  const w = new FuzzWorld();
  w.exec({ k: 'spawn', s: 0, a: [] });
  w.exec({ k: 'mmap', s: 0, a: [0, 1, PROT_READ | PROT_WRITE] });
  w.exec({ k: 'store', s: 0, a: [0, 1, 1] });
  assert.throws(() => checkTeardown(b), (x: unknown) => x instanceof Divergence && /RAM frames not freed/.test(x.message));
  w.exit(0);
  checkTeardown(b);
});

test('RELEASE is issued only when reclaim can supply the eviction\'s RAM (releaseFits), else skipped and counted', () => {
  bootFuzzMachine({ swap_bytes: 0 });           /* no swap: anonymous memory is not reclaimable */
  const w = new FuzzWorld();
  const RWP = PROT_READ | PROT_WRITE, N = 64;
  w.exec({ k: 'spawn', s: 0, a: [] });
  w.exec({ k: 'mmap', s: 0, a: [0, N, RWP] });
  for (let i = 0; i < N; i++) w.exec({ k: 'store', s: 0, a: [i * 4096, 4, 1000 + i] });
  assert.ok(w.exec({ k: 'dm_open', s: 0, a: [0] }));
  assert.ok(w.exec({ k: 'dm_to_dev', s: 0, a: [0, N, 0] }));
  assert.is(devicePagesInUse(0), N);
  assert.ok(releaseFits(w, 0), 'plenty of free RAM');
  w.exec({ k: 'mmap', s: 0, a: [N, 1024 - N, RWP] });
  w.exec({ k: 'madvise', s: 0, a: [N, 1024 - N, MADV_NOHUGEPAGE] });
  for (let i = N; i < 1024 && nr_free_pages() > N / 2; i++) w.exec({ k: 'store', s: 0, a: [i * 4096, 4, i] });
  assert.ok(nr_free_pages() <= N / 2, `RAM filled (${nr_free_pages()} free)`);
  assert.ok(!releaseFits(w, 0), 'free RAM and reclaim cannot hold the evicted pages');
  assert.is(w.exec({ k: 'dm_release', s: 0, a: [0, 1, 0] }), false, 'not issued');
  assert.is(w.releaseSkipped, 1);
  assert.is(devicePagesInUse(0), N, 'nothing was evicted');
  w.exec({ k: 'munmap', s: 0, a: [N, 1024 - N] });
  assert.ok(releaseFits(w, 0));
  assert.ok(w.exec({ k: 'dm_release', s: 0, a: [0, 1, 0] }), 'issued');
  assert.is(devicePagesInUse(0), 0, 'evicted');
  for (let i = 0; i < N; i++) w.exec({ k: 'load', s: 0, a: [i * 4096, 4] });   /* the model checks the bytes */
  w.exit(0);
});

test('the shrinker cuts a failing sequence to the operations the failure needs', () => {
  /* a deliberately broken machine: every MADV_HUGEPAGE flips a byte of the frame behind arena page 0 */
  const afterOp = (w: FuzzWorld, op: Op) => {
    if (op.k !== 'madvise' || op.a[2] !== MADV_HUGEPAGE || w.slots[0] === null) return;
    const cpu = cpuView(w.slots[0].p.mm, ARENA);
    if (cpu.kind !== 'present') return;
    const { bytes, offset } = page_backing(pfn_to_page(cpu.pfn));
    bytes[offset] ^= 0x5a;
  };
  const RW = PROT_READ | PROT_WRITE;
  const noise: Op[] = [];
  for (let i = 0; i < 12; i++) {
    noise.push({ k: 'mmap', s: 0, a: [300 + 4 * i, 4, RW] }, { k: 'store', s: 0, a: [(300 + 4 * i) * 4096 + i, 2, i] },
      { k: 'load', s: 0, a: [(300 + 4 * i) * 4096, 4] }, { k: 'mprotect', s: 0, a: [300 + 4 * i, 2, PROT_READ] });
  }
  const ops: Op[] = [...noise.slice(0, 10), { k: 'mmap', s: 0, a: [0, 1, RW] }, ...noise.slice(10, 20),
    { k: 'store', s: 0, a: [0, 1, 5] }, ...noise.slice(20, 30), { k: 'madvise', s: 0, a: [0, 1, MADV_HUGEPAGE] },
    ...noise.slice(30), { k: 'load', s: 0, a: [0, 1] }];
  const r = runRecorded(ops, { afterOp });
  assert.ok(r.failure !== null && /load8/.test(r.failure), String(r.failure));
  const m = shrink(r, { afterOp });
  assert.equal(m.keep.map((j) => ops[j].k), ['mmap', 'store', 'madvise', 'load']);
  assert.is(signature(m.failure), signature(r.failure));
});

test('signature() ignores the operation and the numbers, not the kind of failure', () => {
  assert.is(signature('dm_to_sys s1 [668, 72, 5]: Error: BUG: folio_unlock of unlocked folio pfn 0'),
    signature('dm_to_sys s3 [512, 3, 9]: Error: BUG: folio_unlock of unlocked folio pfn 12'));
  assert.is.not(signature('teardown: 3 swap slots still in use'), signature('teardown: 3 RAM frames not freed'));
  assert.is(fillBytes(16, 9).length, 16);
});

test('the fuzz command prints usage for --help and exits 2 with usage on a bad command line', () => {
  const main = fileURLToPath(new URL('../../tools/testing/fuzz/main.js', import.meta.url));
  const run = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
  const help = run('--help');
  assert.is(help.status, 0);
  assert.match(help.stdout, /^usage: npm run fuzz/);
  for (const bad of [['--bogus'], ['--ops'], ['--ops', 'x'], ['--seed', '--ops', '5']]) {
    const r = run(...bad);
    assert.is(r.status, 2, bad.join(' '));
    assert.match(r.stderr, /usage: npm run fuzz/);
    assert.not.match(r.stderr, /at parse/);
  }
  const ok = run('--seed', '3', '--ops', '20');
  assert.is(ok.status, 0);
  assert.match(ok.stdout, /fuzz: 20 operations, 1 seeds/);
});

/*
 * Seed 5551, shrunk: the parent's THP (its new VMA merged with the forked
 * one, so the folio's anon_vma is the one the child's VMA shares) is split
 * by the parent's MIGRATE_TO; the rmap walk also sends HMM_MIGRATE over the
 * child's overlapping range (try_to_migrate_one() invalidates before it
 * looks for the mapping), and v8 drops the child's device copies there.
 * The child's device READ then faults the lost page: poisoned, -EFAULT.
 * The model used to accept that only for CPU accesses (SIGBUS).
 */
test('a device READ of a page whose v8 device copy a THP split dropped: -EFAULT, the model forgets the pages', () => {
  bootFuzzMachine();
  const w = new FuzzWorld();
  const seq: Op[] = [
    { k: 'spawn', s: 0, a: [] }, { k: 'mmap', s: 0, a: [146, 655, 3] }, { k: 'atomic', s: 0, a: [1515592, 526716602] },
    { k: 'fork', s: 0, a: [1] }, { k: 'du_open', s: 1, a: [0] }, { k: 'mmap', s: 0, a: [0, 512, 3] },
    { k: 'du_open', s: 0, a: [1] }, { k: 'store', s: 0, a: [499874, 1, 702663855] },
    { k: 'du_migrate', s: 1, a: [150, 48] }, { k: 'du_migrate', s: 0, a: [61, 51] },
  ];
  for (const op of seq) w.exec(op);
  const child = w.slots[1]!, addr = ARENA + 732004, len = 108357;
  const first = Math.floor(addr / 4096), n = Math.floor((addr + len - 1) / 4096) - first + 1;
  /* the READ itself, as the fuzzer issues it: nothing reaches the caller's buffer */
  child.p.write(SCRATCH_BOUNCE, new Uint8Array(4096).fill(0x5a));
  const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
  hmm_dummy_rw_encode(raw, { address: addr, size: len, ptr: SCRATCH_BOUNCE, nsys_pages: 0, nfaulted_sys_pages: 0, ndev_pages: 0, nfaulted_dev_pages: 0 });
  child.p.write(SCRATCH_CMD, raw);
  assert.is(child.p.ioctl(child.du!.fd, HMM_DUMMY_READ, SCRATCH_CMD), -EFAULT);
  assert.equal(child.p.read(SCRATCH_BOUNCE, 4096), new Uint8Array(4096).fill(0x5a));
  const pte = ptep_get(child.p.mm, pte_offset_map(child.p.mm, first * 4096));
  assert.ok(is_swap_pte(pte) && is_hmm_entry_poisonous(pte_to_swp_entry(pte)), 'the lost page is a poisonous SWP_HMM entry');
  /* the fuzzer's READ: accepted as a v8 loss, the touched pages forgotten on both sides */
  assert.ok(child.model.pages.has(first));
  w.exec({ k: 'du_read', s: 1, a: [732004, 108357, 1420686532] });
  assert.is(w.v8LostPages, n);
  for (let i = 0; i < n; i++) assert.not.ok(child.model.pages.has(first + i), `page ${first + i} forgotten`);
  /* the parent's byte is intact */
  w.exec({ k: 'load', s: 0, a: [499874, 1] });
  assert.is(w.slots[0]!.model.bytes(ARENA + 499874, 1)[0], 702663855 % 256);
});

/* issue one hmm_dummy READ/WRITE of @len bytes at @addr from slot @sl, as the fuzzer does; Return: the ioctl result */
function dummy_rw(w: FuzzWorld, sl: number, request: number, addr: number, len: number): number {
  const slot = w.slots[sl]!;
  const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
  hmm_dummy_rw_encode(raw, { address: addr, size: len, ptr: SCRATCH_BOUNCE, nsys_pages: 0, nfaulted_sys_pages: 0, ndev_pages: 0, nfaulted_dev_pages: 0 });
  slot.p.write(SCRATCH_CMD, raw);
  return slot.p.ioctl(slot.du!.fd, request, SCRATCH_CMD);
}

/*
 * Seed 21268, shrunk: the child's device copies of [0, 63) are dropped by
 * an HMM_MIGRATE its forked relative's THP split sends over the shared
 * anon_vma (the seed 5551 loss). Its WRITE over [28, 52) meets the lost
 * page 28 first and returns -EFAULT, before page 46, which is read-only and
 * would give -EACCES. The model accepted the v8 loss only where the whole
 * operation had to succeed.
 */
test('a device WRITE that meets a page v8 lost before a read-only page: -EFAULT, the model forgets the pages', () => {
  bootFuzzMachine();
  const w = new FuzzWorld();
  const seq: Op[] = [
    { k: 'spawn', s: 0, a: [] }, { k: 'mmap', s: 0, a: [0, 778, 3] }, { k: 'wbulk', s: 0, a: [3005435, 7080, 628361119] }, { k: 'fork', s: 0, a: [1] },
    { k: 'mmap', s: 1, a: [46, 7, 1] }, { k: 'fork', s: 1, a: [3] }, { k: 'fork', s: 3, a: [2] },
    { k: 'du_open', s: 2, a: [1] }, { k: 'du_open', s: 3, a: [1] }, { k: 'du_migrate', s: 2, a: [0, 63] },
    { k: 'mmap', s: 3, a: [0, 512, 3] }, { k: 'wbulk', s: 3, a: [1332086, 4447, 1960049199] },
    { k: 'du_migrate', s: 3, a: [334, 6] },
  ];
  for (const op of seq) w.exec(op);
  const child = w.slots[2]!, addr = ARENA + 115769, len = 93975, first = Math.floor(addr / 4096);
  assert.is(first, ARENA / 4096 + 28);
  assert.is(child.model.firstDenied(first, 24, true), first + 18, 'page 46 is the first the model denies');
  /* the WRITE itself, with the bytes already there (a write the model denies writes those) */
  child.p.write(SCRATCH_BOUNCE, child.model.bytes(addr, len));
  assert.is(dummy_rw(w, 2, HMM_DUMMY_WRITE, addr, len), -EFAULT);
  const pte = ptep_get(child.p.mm, pte_offset_map(child.p.mm, first * 4096));
  assert.ok(is_swap_pte(pte) && is_hmm_entry_poisonous(pte_to_swp_entry(pte)), 'page 28 is poisonous');
  /* the fuzzer's WRITE: accepted as a v8 loss, the 24 pages touched forgotten */
  w.exec({ k: 'du_write', s: 2, a: [115769, 93975, 158412975] });
  assert.is(w.v8LostPages, 24);
  for (let i = 0; i < 24; i++) assert.not.ok(child.model.pages.has(first + i));
});

/*
 * Seed 99151, shrunk: a v8 device copy lost in s0 (its pages migrated,
 * then fork and reclaim send invalidations over them), then a bulk write
 * from s0 that starts on the lost page and runs on into a range the model
 * denies. The kernel's SIGBUS at the lost page comes first (the VMA allows
 * the access there, so only the poisonous entry can stop it); the model
 * used to accept a v8 loss only where the whole access had to succeed,
 * and expected the SIGSEGV further on.
 */
test('a CPU write that meets a page v8 lost before a denied page: SIGBUS, the model forgets the pages', () => {
  bootFuzzMachine();
  const w = new FuzzWorld();
  const seq: Op[] = [
    { k: 'spawn', s: 0, a: [] }, { k: 'du_open', s: 0, a: [0] }, { k: 'mmap', s: 0, a: [313, 638, 3] },
    { k: 'du_migrate', s: 0, a: [694, 72] }, { k: 'fork', s: 0, a: [2] }, { k: 'mmap', s: 2, a: [428, 596, 3] },
    { k: 'store', s: 2, a: [3178458, 4, 1274910640] }, { k: 'reclaim', s: 0, a: [271] }, { k: 'load', s: 0, a: [2939273, 2] },
  ];
  for (const op of seq) w.exec(op);
  const lost = w.v8LostPages;
  w.exec({ k: 'wbulk', s: 0, a: [2933085, 5444, 300584596] });
  assert.ok(w.v8LostPages > lost, `the pages the write touched are forgotten (${w.v8LostPages - lost})`);
});

/*
 * Seed 20251, shrunk: a read-only mapping, migrated to the device, then
 * read by the device (a fault migrates pages back). HMM v8 patch 25
 * (hmm_mirror_migrate_back) gives the destination entries HMM_PTE_WRITE
 * unconditionally, so the device maps the pages of a read-only VMA
 * writable and its WRITE succeeds where the model said -EACCES. The model
 * now accepts that (v8_view.ts); the write is really done.
 */
test('a device WRITE to a read-only page v8 migrated back succeeds (patch 25 maps it writable): accepted', () => {
  bootFuzzMachine();
  const w = new FuzzWorld();
  const seq: Op[] = [
    { k: 'spawn', s: 0, a: [] }, { k: 'spawn', s: 3, a: [] }, { k: 'du_open', s: 3, a: [1] }, { k: 'mmap', s: 3, a: [63, 512, 1] },
    { k: 'du_migrate', s: 3, a: [109, 72] }, { k: 'du_read', s: 3, a: [420505, 112372, 1090515409] },
  ];
  for (const op of seq) w.exec(op);
  const sl = w.slots[3]!, first = Math.floor((ARENA + 507925) / 4096), n = 6;
  assert.is(sl.model.firstDenied(first, n, true), first, 'the model denies the write: PROT_READ');
  assert.ok(v8WritableMigratedBack(sl.p.mm, first * 4096, n));
  assert.not.ok(v8WritableMigratedBack(sl.p.mm, ARENA + 63 * 4096, 1), 'a page v8 never migrated has no writable entry');
  w.exec({ k: 'du_write', s: 3, a: [507925, 21722, 1064269660] });
  /* the v8 behaviour itself: new bytes land in the read-only page */
  sl.p.write(SCRATCH_BOUNCE, new Uint8Array(4096).fill(0xa7));
  assert.is(dummy_rw(w, 3, HMM_DUMMY_WRITE, first * 4096, 4096), 0);
  assert.equal(sl.p.read(first * 4096, 4096), new Uint8Array(4096).fill(0xa7));
  assert.is(dummy_rw(w, 3, HMM_DUMMY_WRITE, ARENA + 63 * 4096, 4096), -EACCES, 'elsewhere the VMA still refuses');
});

/*
 * Seed 99142, shrunk: the same patch-25 entry, but the WRITE starts on
 * the read-only page migrated back (page 13, made read-only by mprotect
 * after its migration) and runs on into writable pages (14-33). The
 * tolerance asked every page of the range to be read-only and writable
 * in the mirror; pages whose VMA allows the write now need nothing.
 */
test('a device WRITE over a read-only migrated-back page and on into writable pages: accepted, bytes kept', () => {
  bootFuzzMachine();
  const w = new FuzzWorld();
  const seq: Op[] = [
    { k: 'spawn', s: 3, a: [] }, { k: 'du_open', s: 3, a: [0] }, { k: 'mmap', s: 3, a: [0, 691, 3] },
    { k: 'du_migrate', s: 3, a: [0, 57] }, { k: 'mprotect', s: 3, a: [7, 7, 1] }, { k: 'mmap', s: 3, a: [3, 7, 1] },
    { k: 'du_read', s: 3, a: [13673, 114207, 709412989] },
  ];
  for (const op of seq) w.exec(op);
  const sl = w.slots[3]!, addr = ARENA + 56838, first = Math.floor(addr / 4096), n = 21;
  assert.is(sl.model.firstDenied(first, n, true), first, 'the model denies the write at its first page');
  assert.ok(v8WritableMigratedBack(sl.p.mm, first * 4096, n));
  assert.not.ok(v8WritableMigratedBack(sl.p.mm, (first + 1) * 4096, n - 1), 'writable pages alone are not the v8 case');
  const before = sl.p.read(addr, 82065);
  w.exec({ k: 'du_write', s: 3, a: [56838, 82065, 1872193961] });
  /* the model denied it, so the fuzzer wrote the bytes already there: nothing changed on either side */
  assert.equal(sl.p.read(addr, 82065), before);
  assert.equal(sl.model.bytes(addr, 82065), before);
});

/*
 * Seed 99579, shrunk: the patch-25 entry again, but the WRITE that starts
 * on the read-only migrated-back pages (the last two of their VMA) runs on
 * past the VMA's end. The device writes the two pages through their
 * writable entries and faults on the hole: -EFAULT, where the model says
 * -EACCES for the first page. Accepted only when every page before the
 * hole is writable in the mirror; bytes unchanged on both sides.
 */
test('a device WRITE over read-only migrated-back pages and on past the VMA: -EFAULT accepted, bytes kept', () => {
  bootFuzzMachine();
  const w = new FuzzWorld();
  const seq: Op[] = [
    { k: 'spawn', s: 1, a: [] }, { k: 'fork', s: 1, a: [2] }, { k: 'du_open', s: 2, a: [1] }, { k: 'mmap', s: 2, a: [858, 8, 1] },
    { k: 'du_migrate', s: 2, a: [864, 6] }, { k: 'du_read', s: 2, a: [3529250, 101141, 138356937] },
  ];
  for (const op of seq) w.exec(op);
  const sl = w.slots[2]!, addr = ARENA + 3542358, len = 108497, first = Math.floor(addr / 4096);
  assert.is(sl.model.firstDenied(first, 2, true), first, 'the model denies the write at its first page');
  assert.ok(sl.model.pages.has(first + 1) && !sl.model.pages.has(first + 2), 'two mapped pages, then the hole');
  assert.ok(v8WritableMigratedBack(sl.p.mm, first * 4096, 2), 'both pages are writable in the mirror (patch 25)');
  const before = sl.p.read(addr, 2 * 4096 - (addr % 4096));
  /* the raw ioctl: the device's answer is -EFAULT (the hole), not the model's -EACCES */
  sl.p.write(SCRATCH_BOUNCE, before);
  const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
  hmm_dummy_rw_encode(raw, { address: addr, size: len, ptr: SCRATCH_BOUNCE, nsys_pages: 0, nfaulted_sys_pages: 0, ndev_pages: 0, nfaulted_dev_pages: 0 });
  sl.p.write(SCRATCH_CMD, raw);
  assert.is(sl.p.ioctl(sl.du!.fd, HMM_DUMMY_WRITE, SCRATCH_CMD), -EFAULT);
  /* and the fuzzer's own step accepts it, writing the bytes already there */
  w.exec({ k: 'du_write', s: 2, a: [3542358, 108497, 831289117] });
  assert.equal(sl.p.read(addr, before.length), before);
  assert.equal(sl.model.bytes(addr, before.length), before);
});

/* ---- --fail: fault injection during a fuzz run (tools/testing/fuzz/inject.ts) ---- */

test('--fail: seed 2 with dev_copy failing 20% of copies runs clean; an injected failure reached the model and was accepted', () => {
  const r = runSeed(2, 400, { fails: [{ site: 'dev_copy', attr: '1,20,0,-1' }] });
  assert.is(r.failure, null);
  assert.ok(r.fired >= 1, `injected failures: ${r.fired}`);
  assert.ok(r.injected >= 1, `accepted: ${r.injected}`);
  const plain = runSeed(2, 400);
  assert.is(plain.fired, 0, 'without --fail nothing is injected');
});

/*
 * Seed 14, shrunk: a child inherits device-private pages of dmirror
 * device 1 and READs them through device 0; hmm_range_fault() faults them
 * through device 1's migrate_to_ram, whose copy fails: VM_FAULT_SIGBUS,
 * which hmm_vma_fault() turns into -EFAULT (the rule first knew only -EIO).
 */
test('--fail: a device READ whose fault of another device\'s page hits a failed copy returns -EFAULT, and the model accepts it', () => {
  const o = { fails: [{ site: 'dev_copy', attr: '1,50,0,-1' }] };
  const full = runSeed(14, 297, o);
  const r = runRecorded([10, 16, 28, 57, 68, 192, 206, 296].map((j) => full.ops[j]!), o);
  assert.is(r.failure, null);
  assert.is(r.injected, 1);
});

/*
 * HMM_DMIRROR_FLAG_FAIL_ALLOC (--fail-alloc): the flag is taken by
 * whoever reaches its dmirror's next allocation, not by the next
 * migration of the process that set it. Four sequences shrunk from seeds
 * 1100010, 1100005, 1100003 and 1100034 (`--fail-alloc 50`), each of
 * which diverged when the model allowed -ENOMEM/-ENOENT to the next
 * MIGRATE_TO_DEV/TO_SYS/EXCLUSIVE only: a READ and a WRITE whose
 * hmm_range_fault() faults the mirror's own device-private pages after
 * a first RAM page (it faults to the end of the PMD it walks) and meets
 * VM_FAULT_OOM (-EFAULT); a MIGRATE_TO_SYS whose first window fails
 * (-ENOMEM) before the hole further on (-EINVAL); an EXCLUSIVE whose
 * fault of a device-private page fails (-ENOMEM), one operation after a
 * MIGRATE_TO_SYS that took nothing.
 */
const op = (k: string, s: number, ...a: number[]): Op => ({ k, s, a } as Op);
const FAIL_ALLOC_CASES: [string, Op[], RegExp][] = [
  ['READ -EFAULT', [op('spawn', 1), op('mmap', 1, 184, 702, 3), op('exit', 0), op('fork', 1, 0), op('dm_open', 0, 0),
    op('dm_flags', 0, 624, 56, 765397098), op('dm_to_dev', 0, 512, 5, 425832140), op('dm_flags', 0, 512, 1, 1245969294),
    op('dm_read', 0, 512, 57, 84668096)], /dmirror READ: got -14/],
  ['WRITE -EFAULT', [op('spawn', 2), op('mmap', 2, 0, 718, 3), op('dm_open', 2, 1), op('dm_flags', 2, 785, 53, 537545199),
    op('dm_to_dev', 2, 0, 5, 811629629), op('dm_flags', 2, 512, 8, 628024341), op('dm_write', 2, 0, 5, 786188579)], /dmirror WRITE: got -14/],
  ['MIGRATE_TO_SYS -ENOMEM', [op('spawn', 1), op('dm_open', 1, 2), op('mmap', 1, 512, 5, 1), op('dm_to_dev', 1, 512, 4, 310160553),
    op('dm_flags', 1, 512, 51, 488597744), op('dm_excl', 1, 293, 8, 1429856860), op('dm_to_sys', 1, 512, 72, 1318918725)],
    /MIGRATE_TO_SYS: got -12/],
  ['EXCLUSIVE -ENOMEM', [op('spawn', 3), op('fork', 3, 1), op('fork', 1, 2), op('dm_open', 2, 1), op('mmap', 2, 55, 850, 3),
    op('dm_to_dev', 2, 504, 4, 408876450), op('dm_flags', 2, 927, 32, 1811318519), op('dm_to_sys', 2, 311, 3, 284892520),
    op('dm_excl', 2, 442, 72, 1542006935)], /EXCLUSIVE: got -12/],
];

for (const [name, ops] of FAIL_ALLOC_CASES) {
  test(`--fail-alloc: ${name} where the dmirror's FAIL_ALLOC flag was taken is accepted, bytes kept`, () => {
    const r = runRecorded(ops);
    assert.is(r.failure, null);
    assert.is(r.injected, 1, 'the flag was taken once, by the last operation, and the model accepted its errno');
  });
}

test('--fail-alloc: the same operations without the flag set are not excused (the last one succeeds, nothing injected)', () => {
  for (const [name, ops] of FAIL_ALLOC_CASES) {
    const r = runRecorded(ops.filter((o) => o.k !== 'dm_flags'));
    assert.is(r.failure, null, name);
    assert.is(r.injected, 0, name);
  }
});

/*
 * Seed 1200019, shrunk: a v8 device WRITE over a range with a PROT_NONE
 * page further on fails early when an allocation is made to fail; the
 * settling step read every page of the range through the CPU, the
 * PROT_NONE one too, and called it "unreadable after an injected
 * failure". A page the process may not read is skipped (no write reaches
 * it; its bytes stay demanded).
 */
test('--fail: a failed write settles only the pages the process may read (a PROT_NONE page further on is skipped)', () => {
  const o = { fails: [{ site: 'page_alloc', attr: '1,5,0,-1' }] };
  const full = runSeed(1200019, 382, o);
  const r = runRecorded([4, 15, 24, 69, 195, 381].map((j) => full.ops[j]!), o);
  assert.is(r.failure, null);
  assert.is(r.injected, 1);
});

test('--fail: the model accepts exactly the errno Linux returns for the site that fired, and SIGBUS only for a failed copy on a CPU access', () => {
  const read: Op = { k: 'dm_read', s: 0, a: [0, 4] }, load: Op = { k: 'load', s: 0, a: [0, 4] };
  assert.ok(injectAccepts(read, ['fail_dev_copy'], -EIO));
  assert.not.ok(injectAccepts(read, ['fail_dev_copy'], -EBUSY), '-EBUSY is not what a failed copy returns');
  assert.not.ok(injectAccepts(read, [], -EIO), 'nothing fired: the model\'s answer stands');
  assert.ok(injectAccepts(read, ['fail_hmm_retry'], -EBUSY));
  assert.ok(injectAccepts(read, ['fail_page_alloc'], -EFAULT), 'hmm_vma_fault(): VM_FAULT_OOM is -EFAULT');
  assert.ok(injectAccepts(read, ['dmirror_fail_alloc'], -EFAULT), 'FAIL_ALLOC taken in a fault: VM_FAULT_OOM');
  assert.not.ok(injectAccepts(read, ['dmirror_fail_alloc'], -EIO), 'FAIL_ALLOC is never a copy failure');
  assert.not.ok(injectAccepts({ k: 'mmap', s: 0, a: [0, 4, 3] }, ['fail_page_alloc'], -ENOMEM), 'an mmap failure is not accounted for');
  assert.ok(injectAccepts(load, ['fail_dev_copy'], undefined, SIGBUS));
  assert.not.ok(injectAccepts(load, ['fail_hmm_retry'], undefined, SIGBUS));
  assert.not.ok(injectAccepts(load, ['fail_dev_copy'], undefined, SIGSEGV));
  assert.not.ok(injectAccepts(read, ['fail_dev_copy'], undefined, SIGBUS), 'an ioctl does not take a signal');
  const fork: Op = { k: 'fork', s: 0, a: [1] };
  assert.ok(injectAccepts(fork, ['fail_page_alloc'], -ENOMEM), 'copy_page_range() out of memory');
  assert.not.ok(injectAccepts(fork, ['fail_page_alloc'], -EFAULT), 'fork never says -EFAULT for it');
  assert.ok(injectAccepts(fork, ['fail_folio_trylock'], -EBUSY), 'a device-exclusive entry whose folio is locked');
});

test('--fail: a failed write must leave each page old or new; a mix is a divergence, a new page is taken by the model', () => {
  bootFuzzMachine();
  const w = new FuzzWorld();
  w.exec({ k: 'spawn', s: 0, a: [] });
  w.exec({ k: 'mmap', s: 0, a: [0, 2, PROT_READ | PROT_WRITE] });
  const sl = w.slots[0]!;
  const op: Op = { k: 'dm_write', s: 0, a: [0, 2, 77] };
  const nu = fillBytes(2 * 4096, 77);
  sl.p.write(ARENA + 4096, nu.subarray(4096));                 /* page 1 got the new bytes, page 0 kept the old */
  assert.is(injectSettle(sl.p, sl.model, op), null);
  assert.equal(sl.model.bytes(ARENA + 4096, 4096), nu.subarray(4096), 'the model took page 1');
  assert.equal(sl.model.bytes(ARENA, 4096), new Uint8Array(4096));
  sl.p.write(ARENA, nu.subarray(0, 100));                      /* page 0: a prefix of the new bytes */
  assert.match(injectSettle(sl.p, sl.model, op) ?? '', /neither its old nor its new bytes/);
});

test('--fail: with injection armed a byte changed behind the model\'s back is still a divergence', () => {
  bootFuzzMachine({ fails: [{ site: 'dev_copy', attr: '1,100,0,-1' }, { site: 'hmm_retry', attr: '1,50,0,-1' }] });
  const w = new FuzzWorld();
  w.exec({ k: 'spawn', s: 0, a: [] });
  w.exec({ k: 'mmap', s: 0, a: [0, 4, PROT_READ | PROT_WRITE] });
  w.exec({ k: 'store', s: 0, a: [8, 4, 0x11223344] });
  const cpu = cpuView(w.slots[0]!.p.mm, ARENA);
  const { bytes, offset } = page_backing(pfn_to_page(cpu.pfn));
  bytes[offset + 9] ^= 0xff;
  assert.throws(() => w.exec({ k: 'load', s: 0, a: [8, 4] }), (e: unknown) => e instanceof Divergence && /load32/.test(e.message));
});

test('--fail: the command takes SITE=interval,probability,space,times, counts the injected failures in its figure, and refuses bad ones', () => {
  const main = fileURLToPath(new URL('../../tools/testing/fuzz/main.js', import.meta.url));
  const run = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
  const ok = run('--seed', '2', '--ops', '60', '--fail', 'hmm_retry=1,50,0,-1');
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /fuzz: \d+ operations, 1 seeds .* 0 divergences, [1-9]\d* injected failures/);
  for (const bad of ['nosuch=1,100,0,1', 'dev_copy=1,101,0,1', 'dev_copy', 'dev_copy=1,2']) {
    const r = run('--fail', bad);
    assert.is(r.status, 2, bad);
    assert.match(r.stderr, /--fail/);
  }
});

test.run();
