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
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import {
  HMM_DMIRROR_READ, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_WRITE,
} from '../../include/uapi/linux/test_hmm.js';
import { hmm_dmirror_init, dmirror_device_get, type dmirror } from '../../lib/test_hmm.js';
import { get_counter } from '../../lib/sim/trace.js';
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

test.run();
