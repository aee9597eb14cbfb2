/*
 * test/lib/test_hmm_close.test.ts - what a dmirror file leaves behind when
 * it is closed, and several mirrors of one address space on one device
 * (lib/test_hmm.ts dmirror_fops_release(), the MMU_NOTIFY_MIGRATE rule of
 * lib/test_hmm_mirror.ts dmirror_interval_invalidate()).
 *
 * Close does not evict, as in Linux: pages a mirror migrated stay on the
 * device. A mirror opened later (or a second live mirror) may pick such a
 * page up through hmm_range_fault(); when the page then moves (CPU fault,
 * another mirror's migration) its entry must go, or the device reads a
 * freed backing page. Every scenario checks the bytes the device returns.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { start_kernel } from '../../mm/init.js';
import { Process } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_HUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { EFAULT } from '../../include/uapi/asm-generic/errno.js';
import { nr_free_pages } from '../../mm/page_alloc.js';
import { huge_zero_folio_allocated } from '../../mm/huge_memory.js';
import {
  HMM_DMIRROR_READ, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_RELEASE,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_WRITE,
} from '../../include/uapi/linux/test_hmm.js';
import { hmm_dmirror_init, dmirror_device_get, type dmirror } from '../../lib/test_hmm.js';
import { get_counter } from '../../lib/sim/trace.js';
import { setup_fault_attr, fail_folio_trylock } from '../../lib/fault-inject.js';
import { Dmirror } from '../../tools/lib/dmirror.js';
import { is_swap_pte, is_device_private_entry, pte_to_swp_entry } from '../../include/linux/swapops.js';
import { pte_at } from '../helpers.js';

const RW = PROT_READ | PROT_WRITE, ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const N = 16;

interface rig { p: Process; buf: number; out: number; }

/* a fresh machine and a process with N pages at buf holding words i + 0, and an output buffer */
function setup(): rig {
  start_kernel({});
  hmm_dmirror_init();
  const p = Process.spawn('t');
  const buf = p.mmap(0, N * PAGE_SIZE, RW, ANON), out = p.mmap(0, N * PAGE_SIZE, RW, ANON);
  p.fill32(buf, N * PAGE_SIZE, 0);
  return { p, buf, out };
}

/* device pages of dmirror device @minor's chunks that are in use */
function devmem_in_use(minor: number): number {
  const d = dmirror_device_get(minor)!;
  return d.calloc - d.cfree;
}

/* the struct dmirror behind an open file */
function mirror_of(dev: Dmirror): dmirror {
  return dev.p.task.files.get(dev.fd)!.private_data as dmirror;
}

/* is page i of the range mapped by a device-private entry (the data is on the device)? */
function on_device(r: rig, i: number): boolean {
  const pte = pte_at(r.p.mm, r.buf + i * PAGE_SIZE);
  return is_swap_pte(pte) && is_device_private_entry(pte_to_swp_entry(pte));
}

/* the device reads the whole range into r.out; the words must be i + 0 except page @page, which holds @word */
function device_reads(r: rig, dev: Dmirror, page: number, word: number): void {
  r.p.fill32(r.out, N * PAGE_SIZE, 7777);
  assert.is(dev.ioctl(HMM_DMIRROR_READ, r.buf, N, r.out), 0);
  assert.is(dev.cpages, N);
  for (let i = 0; i < N; i++) {
    const want = i === page ? word : i * (PAGE_SIZE / 4);
    assert.is(r.p.read32(r.out + i * PAGE_SIZE), want, `device word 0 of page ${i}`);
  }
}

test('close leaves the mirror\'s pages on the device; the CPU faults them back with their bytes', () => {
  const r = setup();
  const a = new Dmirror(r.p, 0);
  const mdevice = dmirror_device_get(0)!;
  assert.is(a.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, r.buf, N, r.out), 0);
  assert.is(a.cpages, N);
  assert.is(r.p.close(a.fd), 0);
  assert.is(mdevice.calloc - mdevice.cfree, N, 'no page was evicted by the close');
  for (let i = 0; i < N; i++) assert.ok(on_device(r, i), `page ${i} still device-private`);
  assert.is(r.p.check32(r.buf, N * PAGE_SIZE, 0), -1, 'every byte comes back through dmirror_devmem_fault()');
  assert.is(mdevice.calloc - mdevice.cfree, 0);
});

test('a mirror reopened after close picks a left page up; after the CPU faults it back its table has no stale entry', () => {
  const r = setup();
  const a = new Dmirror(r.p, 0);
  assert.is(a.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, r.buf, N, r.out), 0);
  assert.is(r.p.close(a.fd), 0);
  const b = new Dmirror(r.p, 0);
  device_reads(r, b, -1, 0);
  assert.is(b.faults, 1, 'the new mirror faulted the range in');
  assert.is(b.ioctl(HMM_DMIRROR_SNAPSHOT, r.buf, N, r.out), 0);
  assert.is(r.p.read(r.out, 1)[0], HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE,
    'hmm_range_fault() handed it the device page (same owner)');
  const vpn = (r.buf + 3 * PAGE_SIZE) / PAGE_SIZE;
  assert.ok(mirror_of(b).pt.load(vpn) !== 0, 'entry for page 3 before the CPU fault');
  r.p.write32(r.buf + 3 * PAGE_SIZE, 0xabcdef);          /* CPU fault: the closed mirror's page comes back */
  assert.ok(!on_device(r, 3));
  assert.is(mirror_of(b).pt.load(vpn), 0, 'the MIGRATE invalidation dropped the reopened mirror\'s entry');
  device_reads(r, b, 3, 0xabcdef);
  assert.is(b.faults, 1, 'page 3 was faulted again');
});

test('two live mirrors of one mm on one device: each one\'s migration drops the other\'s entries', () => {
  const r = setup();
  const a = new Dmirror(r.p, 0), b = new Dmirror(r.p, 0);
  const inv0 = get_counter('dmirror_invalidate');
  device_reads(r, b, -1, 0);                            /* B maps the system pages */
  assert.is(a.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, r.buf, N, r.out), 0);
  assert.is(a.cpages, N);
  assert.ok(get_counter('dmirror_invalidate') > inv0, 'B handled A\'s MMU_NOTIFY_MIGRATE');
  assert.is(mirror_of(b).pt.load(r.buf / PAGE_SIZE), 0, 'B has no entry for the freed system page');
  device_reads(r, b, -1, 0);
  assert.is(b.faults, 1, 'B faults the device pages in');

  r.p.write32(r.buf + 5 * PAGE_SIZE, 0x5555);            /* CPU fault on A's page, which B maps too */
  assert.is(mirror_of(a).pt.load((r.buf + 5 * PAGE_SIZE) / PAGE_SIZE), 0);
  assert.is(mirror_of(b).pt.load((r.buf + 5 * PAGE_SIZE) / PAGE_SIZE), 0);
  device_reads(r, b, 5, 0x5555);
  device_reads(r, a, 5, 0x5555);

  assert.is(b.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, r.buf, N, r.out), 0);   /* B moves A's pages back */
  assert.is(b.cpages, N - 1);
  for (let i = 0; i < N; i++) assert.ok(!on_device(r, i), `page ${i} back in RAM`);
  r.p.write32(r.buf + 9 * PAGE_SIZE, 0x9999);
  r.p.write32(r.buf + 5 * PAGE_SIZE, 5 * PAGE_SIZE / 4);
  device_reads(r, a, 9, 0x9999);
  assert.is(a.faults, 1, 'A lost its entries to B\'s migration and faulted again');
  assert.is(r.p.close(a.fd), 0);
  assert.is(r.p.close(b.fd), 0);
});

test('a mirror\'s own migration is still skipped by its notifier (Linux\'s owner check)', () => {
  const r = setup();
  const a = new Dmirror(r.p, 0);
  device_reads(r, a, -1, 0);
  const inv0 = get_counter('dmirror_invalidate');
  assert.is(a.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, r.buf, N, r.out), 0);
  assert.is(a.ioctl(HMM_DMIRROR_MIGRATE_TO_SYS, r.buf, N, r.out), 0);
  assert.is(a.cpages, N);
  assert.is(get_counter('dmirror_invalidate'), inv0, 'no invalidation reached the table for its own migrations');
  device_reads(r, a, -1, 0);
  assert.is(a.faults, 1, 'MIGRATE_TO_SYS erased the entries itself');
});

/*
 * HMM_DMIRROR_RELEASE allocates one RAM page per device page with
 * __GFP_NOFAIL before any backing page is freed. On 4 MiB without swap the
 * only RAM reclaim can find is the huge zero folio, which no mm holds any
 * more: its shrinker must free it (fuzz seeds 40869, 41011; without it the
 * allocation BUGs after the OOM killer ran out of victims).
 */
test('RELEASE on 4 MiB finds its RAM in the huge zero folio nobody holds; every byte comes back', () => {
  start_kernel({ ram_bytes: 4 << 20 });
  hmm_dmirror_init();
  const z = Process.spawn('z');                 /* the huge zero folio first, while 2 MiB are contiguous */
  const h = z.mmap(0, 2 << 20, RW, ANON);
  assert.is(z.madvise(h, 2 << 20, MADV_HUGEPAGE), 0);
  assert.is(z.read32(h + 4096), 0);
  assert.ok(huge_zero_folio_allocated(), 'z read the huge zero folio');
  const b = Process.spawn('b');
  const dev = new Dmirror(b, 0);
  const X = 300, M = 150, W = 15;
  const pinned = b.mmap(0, X * PAGE_SIZE, RW, ANON), buf = b.mmap(0, M * PAGE_SIZE, RW, ANON);
  b.fill32(pinned, X * PAGE_SIZE, 1 << 20);     /* no swap: these stay */
  b.fill32(buf, M * PAGE_SIZE, 0);
  for (let i = 0; i < M; i += W) {              /* a window at a time, so the copies fit */
    assert.is(dev.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, buf + i * PAGE_SIZE, W, 0), -EFAULT, 'migrated; only the read-back to ptr 0 fails');
  }
  for (let i = 0; i < M; i++) assert.ok(on_device({ p: b, buf, out: 0 }, i), `page ${i} on the device`);
  z.exit(0);
  assert.ok(huge_zero_folio_allocated(), 'nothing reclaimed it yet');
  assert.ok(nr_free_pages() < M, `${nr_free_pages()} free pages: the eviction needs ${M}`);
  assert.is(dev.ioctl(HMM_DMIRROR_RELEASE, buf, 1, 0), 0);
  assert.ok(!huge_zero_folio_allocated(), 'reclaim freed the huge zero folio');
  assert.is(get_counter('oom_kill'), 0, 'nobody was killed');
  assert.is(b.check32(buf, M * PAGE_SIZE, 0), -1, 'the evicted pages kept their bytes');
  assert.is(b.check32(pinned, X * PAGE_SIZE, 1 << 20), -1);
});

/*
 * fail_folio_trylock during RELEASE (fuzz --fail folio_trylock, seeds 2
 * and 14 of session 4): migrate_device_range() only trylocks, so a page
 * whose trylock fails is skipped by the eviction pass and would keep
 * memunmap_pages() waiting for ever. The straggler passes
 * (DMIRROR_EVICT_RETRIES) take it on a later pass.
 */
test('RELEASE while folio_trylock fails for the first 40 pages: later passes evict them, every byte comes back', () => {
  const r = setup();
  const a = new Dmirror(r.p, 0);
  const M = 64, big = r.p.mmap(0, M * PAGE_SIZE, RW, ANON);
  r.p.fill32(big, M * PAGE_SIZE, 5000);
  for (let i = 0; i < M; i += N) assert.is(a.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, big + i * PAGE_SIZE, N, r.out), 0);
  assert.is(devmem_in_use(0), M);
  const retries0 = get_counter('dmirror_evict_retry');
  const failed0 = fail_folio_trylock.failures;
  assert.is(setup_fault_attr(fail_folio_trylock, '1,100,0,40'), 1);
  assert.is(a.ioctl(HMM_DMIRROR_RELEASE, big, 1, 0), 0);
  assert.is(fail_folio_trylock.failures - failed0, 40, 'the first 40 trylocks failed');
  setup_fault_attr(fail_folio_trylock, '1,0,0,0');
  assert.ok(get_counter('dmirror_evict_retry') > retries0, 'a straggler pass ran');
  assert.is(dmirror_device_get(0)!.devmem_count, 0, 'every chunk removed');
  assert.is(r.p.check32(big, M * PAGE_SIZE, 5000), -1, 'every evicted page kept its bytes');
});

test.run();
