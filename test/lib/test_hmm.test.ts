/*
 * test/lib/test_hmm.test.ts - the dmirror driver (lib/test_hmm.ts): its
 * ioctl front door and bookkeeping, then every ported HMM self-test
 * (tools/testing/selftests/mm/hmm-tests.ts) for both variants, one uvu
 * test per run, so that `npm test` includes them.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { start_kernel } from '../../mm/init.js';
import { Process, runAs } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { PROT_NONE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import { EINVAL, EFAULT, ENOENT, ENOMEM, EPERM } from '../../include/uapi/asm-generic/errno.js';
import {
  HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_CHECK_EXCLUSIVE, HMM_DMIRROR_RELEASE, HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_READ_UNLOCKABLE, HMM_DMIRROR_FLAG_FAIL_ALLOC, HMM_DMIRROR_CMD_SIZE, hmm_dmirror_cmd_encode,
  hmm_dmirror_cmd_decode, HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_WRITE,
  type hmm_dmirror_cmd,
} from '../../include/uapi/linux/test_hmm.js';
import { dmirror_device_get, hmm_dmirror_init } from '../../lib/test_hmm.js';
import {
  DEVMEM_CHUNK_PAGES, dmirror_devmem_alloc_page, dmirror_devmem_alloc_page_fast, BACKING_PAGE, type dmirror,
} from '../../lib/test_hmm_devmem.js';
import { is_device_private_page } from '../../include/linux/memremap.js';
import { PageLocked } from '../../include/linux/page-flags.js';
import { folio_unlock } from '../../mm/filemap.js';
import { hmm_test_runs, hmm_test_boot_params } from '../../tools/testing/selftests/mm/hmm-tests.js';
import { runTest } from '../../tools/testing/selftests/mm/hmm-tests-helpers.js';
import { pte_at } from '../helpers.js';
import { pte_present, pte_pfn } from '../../include/linux/pgtable.js';
import { totalram_pages, nr_free_pages, put_page } from '../../mm/page_alloc.js';
import { sleeping_subscriber } from '../mm/swap_helpers.js';
import { get_counter } from '../../lib/sim/trace.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

interface rig { p: Process; fd: number; cmd: number; buf: number; mirror: number; }

/* a fresh machine, a process with /dev/hmm_dmirror<unit> open, 16 pages filled with i, a mirror, a command block */
function setup(unit = 0, npages = 16): rig {
  start_kernel({});
  hmm_dmirror_init();
  const p = Process.spawn('t');
  const fd = p.open(`/dev/hmm_dmirror${unit}`, 2);
  const cmd = p.mmap(0, PAGE_SIZE, RW, ANON);
  const buf = p.mmap(0, npages * PAGE_SIZE, RW, ANON);
  const mirror = p.mmap(0, npages * PAGE_SIZE, RW, ANON);
  p.fill32(buf, npages * PAGE_SIZE, 0);
  return { p, fd, cmd, buf, mirror };
}

/* issue one ioctl with the given block; returns the ioctl result and the block as user space sees it after */
function ioctl(r: rig, request: number, c: Partial<hmm_dmirror_cmd>): { ret: number; out: hmm_dmirror_cmd } {
  const block: hmm_dmirror_cmd = { addr: BigInt(r.buf), ptr: BigInt(r.mirror), npages: 16n, cpages: 77n, faults: 88n, ...c };
  r.p.write(r.cmd, hmm_dmirror_cmd_encode(block));
  const ret = r.p.ioctl(r.fd, request, r.cmd);
  return { ret, out: hmm_dmirror_cmd_decode(r.p.read(r.cmd, HMM_DMIRROR_CMD_SIZE)) };
}

test('the ioctl numbers are _IOWR(\'H\', nr, 40-byte struct hmm_dmirror_cmd)', () => {
  const cmds = [HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS,
    HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_CHECK_EXCLUSIVE, HMM_DMIRROR_RELEASE, HMM_DMIRROR_FLAGS,
    HMM_DMIRROR_READ_UNLOCKABLE];
  cmds.forEach((c, nr) => assert.is(c, 0xc0284800 + nr));
  assert.is(HMM_DMIRROR_CMD_SIZE, 40);
});

test('the front door rejects a misaligned address, an empty or wrapping range and unknown commands with -EINVAL', () => {
  const r = setup();
  assert.is(ioctl(r, HMM_DMIRROR_READ, { addr: BigInt(r.buf + 8) }).ret, -EINVAL);
  assert.is(ioctl(r, HMM_DMIRROR_READ, { npages: 0n }).ret, -EINVAL);
  assert.is(ioctl(r, HMM_DMIRROR_READ, { npages: 1n << 52n }).ret, -EINVAL);
  assert.is(ioctl(r, HMM_DMIRROR_FLAGS, { npages: 0n }).ret, -EINVAL, 'FLAGS can never set the flag word to 0');
  assert.is(ioctl(r, HMM_DMIRROR_READ_UNLOCKABLE, {}).ret, -EINVAL);
  assert.is(ioctl(r, 0xc0284863, {}).ret, -EINVAL);
});

test('a command block the driver cannot copy in gives -EFAULT', () => {
  const r = setup();
  assert.is(r.p.ioctl(r.fd, HMM_DMIRROR_READ, 0x1000), -EFAULT);
});

test('a failing command leaves cpages and faults as user space wrote them', () => {
  const r = setup();
  assert.is(r.p.mprotect(r.buf, 16 * PAGE_SIZE, PROT_NONE), 0);
  const { ret, out } = ioctl(r, HMM_DMIRROR_READ, {});
  assert.is(ret, -EFAULT);
  assert.is(out.cpages, 77n);
  assert.is(out.faults, 88n);
});

test('a successful command zeroes the counters first and copies the whole block back', () => {
  const r = setup();
  const first = ioctl(r, HMM_DMIRROR_READ, {});
  assert.is(first.ret, 0);
  assert.is(first.out.cpages, 16n);
  assert.is(first.out.faults, 1n);
  const second = ioctl(r, HMM_DMIRROR_READ, {});
  assert.is(second.out.faults, 0n, 'a fully mirrored range needs no fault round');
  assert.is(ioctl(r, HMM_DMIRROR_CHECK_EXCLUSIVE, {}).out.cpages, 0n);
  assert.is(r.p.check32(r.mirror, 16 * PAGE_SIZE, 0), -1);
});

test('an invalidation (mprotect) drops the device page table, so the next READ faults again', () => {
  const r = setup();
  assert.is(ioctl(r, HMM_DMIRROR_READ, {}).out.faults, 1n);
  assert.is(r.p.mprotect(r.buf, 16 * PAGE_SIZE, PROT_READ), 0);
  assert.is(ioctl(r, HMM_DMIRROR_READ, {}).out.faults, 1n);
});

test('migration counts device pages out and back in (calloc, cfree) on a private device', () => {
  const r = setup(0);
  const dev = dmirror_device_get(0)!;
  const { ret, out } = ioctl(r, HMM_DMIRROR_MIGRATE_TO_DEV, {});
  assert.is(ret, 0);
  assert.is(out.cpages, 16n);
  assert.is(dev.calloc, 16);
  assert.is(dev.cfree, 0);
  assert.is(r.p.check32(r.buf, 16 * PAGE_SIZE, 0), -1, 'the CPU faults every page back with its data');
  assert.is(dev.cfree, 16);
});

test('MIGRATE_TO_SYS moves coherent pages back and counts the entries migrated', () => {
  const r = setup(2);
  assert.is(ioctl(r, HMM_DMIRROR_MIGRATE_TO_DEV, {}).out.cpages, 16n);
  const { ret, out } = ioctl(r, HMM_DMIRROR_MIGRATE_TO_SYS, {});
  assert.is(ret, 0);
  assert.is(out.cpages, 16n);
  assert.is(dmirror_device_get(2)!.cfree, 16);
  assert.is(r.p.check32(r.buf, 16 * PAGE_SIZE, 0), -1);
});

test('FAIL_ALLOC fails exactly one device allocation: that page stays in RAM and the read-back finds it missing', () => {
  const r = setup(0);
  assert.is(ioctl(r, HMM_DMIRROR_FLAGS, { npages: HMM_DMIRROR_FLAG_FAIL_ALLOC }).ret, 0);
  assert.is(ioctl(r, HMM_DMIRROR_MIGRATE_TO_DEV, {}).ret, -ENOENT);
  const again = ioctl(r, HMM_DMIRROR_MIGRATE_TO_DEV, {});
  assert.is(again.ret, 0, 'the flag was consumed');
  assert.is(again.out.cpages, 16n);
});

test('closing the file leaves the device pages where they are, as Linux does; a new mirror sees them as its device\'s', () => {
  const r = setup(0);
  assert.is(ioctl(r, HMM_DMIRROR_MIGRATE_TO_DEV, {}).ret, 0);
  assert.is(r.p.close(r.fd), 0);
  assert.is(dmirror_device_get(0)!.cfree, 0, 'nothing evicted');
  r.fd = r.p.open('/dev/hmm_dmirror0', 2);
  const { ret } = ioctl(r, HMM_DMIRROR_SNAPSHOT, { npages: 16n });
  assert.is(ret, 0);
  assert.equal([...r.p.read(r.mirror, 16)], new Array(16).fill(HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE),
    'writable device-private pages of this device');
  assert.is(r.p.check32(r.buf, 16 * PAGE_SIZE, 0), -1, 'the CPU faults them back with their bytes');
  assert.is(dmirror_device_get(0)!.cfree, 16);
});

test('dmirror_devmem_alloc_page_fast: null with nothing taken when a chunk must be added; then a locked page with RAM behind it', () => {
  const r = setup(0);
  const dev = dmirror_device_get(0)!;
  const d = r.p.task.files.get(r.fd)!.private_data as dmirror;
  assert.is(ioctl(r, HMM_DMIRROR_RELEASE, {}).ret, 0);
  const free = nr_free_pages(), calloc = dev.calloc;
  assert.is(dmirror_devmem_alloc_page_fast(d, false), null, 'no free device page: the sleeping call adds a chunk');
  assert.is(nr_free_pages(), free, 'no backing page taken');
  assert.is(dev.calloc, calloc);
  const first = runAs(r.p.task, dmirror_devmem_alloc_page(d, false))!;
  const dp = dmirror_devmem_alloc_page_fast(d, false)!;
  assert.ok(dp !== null && is_device_private_page(dp));
  assert.ok(PageLocked(dp) && dp._refcount === 1);
  const rpage = BACKING_PAGE(dp);
  assert.ok(rpage.pfn < totalram_pages(), 'backed by a RAM page');
  assert.is(dp.zone_device_data, rpage.pfn, 'zone_device_data names the backing page by pfn (the model split of lib/test_hmm_devmem.ts)');
  assert.is(dev.calloc, calloc + 2);
  assert.is(nr_free_pages(), free - 2);
  for (const x of [first, dp]) { folio_unlock(x); put_page(x); }
  assert.is(nr_free_pages(), free, 'freeing the device pages gave their RAM back');
});

test('RELEASE removes every chunk; the next migration adds one on demand', () => {
  const r = setup(0);
  const dev = dmirror_device_get(0)!;
  assert.is(dev.devmem_count, 1, 'the first chunk is made at boot');
  assert.is(ioctl(r, HMM_DMIRROR_MIGRATE_TO_DEV, {}).ret, 0);
  assert.is(ioctl(r, HMM_DMIRROR_RELEASE, {}).ret, 0);
  assert.is(dev.devmem_count, 0);
  assert.is(dev.free_pages.nr, 0, "no free device page left");
  assert.is(r.p.check32(r.buf, 16 * PAGE_SIZE, 0), -1, 'eviction kept the data');
  assert.is(ioctl(r, HMM_DMIRROR_MIGRATE_TO_DEV, {}).ret, 0);
  assert.is(dev.devmem_count, 1);
});

test('RELEASE while a coherent page is under a device-exclusive entry migrates it back with its bytes', () => {
  /* try_to_migrate() must take device-exclusive entries (Linux 6.15+ counts them as mappings) */
  const r = setup(2);
  const dev = dmirror_device_get(2)!;
  assert.is(ioctl(r, HMM_DMIRROR_MIGRATE_TO_DEV, {}).out.cpages, 16n);
  assert.is(ioctl(r, HMM_DMIRROR_EXCLUSIVE, { npages: 4n }).ret, 0);
  assert.is(ioctl(r, HMM_DMIRROR_CHECK_EXCLUSIVE, { npages: 4n }).ret, -EPERM, 'the device holds 4 pages exclusively');
  assert.is(ioctl(r, HMM_DMIRROR_RELEASE, {}).ret, 0);
  assert.is(dev.devmem_count, 0);
  for (let i = 0; i < 16; i++) {
    const pte = pte_at(r.p.mm, r.buf + i * PAGE_SIZE);
    assert.ok(pte_present(pte), `page ${i} mapped again after the eviction`);
    assert.ok(pte_pfn(pte) < totalram_pages(), `page ${i} is a RAM frame, not a pfn of the removed chunk`);
  }
  assert.is(r.p.check32(r.buf, 16 * PAGE_SIZE, 0), -1, 'eviction kept the data, exclusive pages included');
  r.p.write32(r.buf, 0x5a5a);
  assert.is(r.p.read32(r.buf), 0x5a5a, 'the exclusive page came back writable through the fault path');
});

test('device memory grows by a chunk when the free list runs dry', () => {
  start_kernel({ ram_bytes: 96 * 1024 * 1024 });
  hmm_dmirror_init();
  const p = Process.spawn('t');
  const fd = p.open('/dev/hmm_dmirror2', 2);
  const npages = DEVMEM_CHUNK_PAGES + 16;
  const r: rig = { p, fd, cmd: p.mmap(0, PAGE_SIZE, RW, ANON), buf: p.mmap(0, npages * PAGE_SIZE, RW, ANON),
    mirror: p.mmap(0, npages * PAGE_SIZE, RW, ANON) };
  p.fill32(r.buf, npages * PAGE_SIZE, 0);
  const { ret, out } = ioctl(r, HMM_DMIRROR_MIGRATE_TO_DEV, { npages: BigInt(npages) });
  assert.is(ret, 0);
  assert.is(out.cpages, BigInt(npages));
  assert.is(dmirror_device_get(2)!.devmem_count, 2);
  assert.is(p.check32(r.mirror, npages * PAGE_SIZE, 0), -1);
});

test('EXCLUSIVE tags the entries ATOMIC until the CPU touches the pages', () => {
  const r = setup(0);
  assert.is(ioctl(r, HMM_DMIRROR_EXCLUSIVE, {}).ret, 0);
  assert.is(ioctl(r, HMM_DMIRROR_CHECK_EXCLUSIVE, {}).ret, -1);
  assert.is(r.p.read32(r.buf + 5 * PAGE_SIZE), 5 * 1024);
  assert.is(ioctl(r, HMM_DMIRROR_CHECK_EXCLUSIVE, { addr: BigInt(r.buf + 5 * PAGE_SIZE), npages: 1n }).ret, 0);
  assert.is(ioctl(r, HMM_DMIRROR_CHECK_EXCLUSIVE, {}).ret, -1, 'the other pages are still exclusive');
});

test('a READ of untouched memory maps the zero page read-only; a WRITE then faults the range again for write', () => {
  const r = setup(0);
  r.buf = r.p.mmap(0, 16 * PAGE_SIZE, RW, ANON);
  const rd = ioctl(r, HMM_DMIRROR_READ, {});
  assert.is(rd.out.faults, 1n);
  assert.is(r.p.check32(r.mirror, 16 * PAGE_SIZE, 0) >= 0, true, 'the device read zeroes');
  assert.is(ioctl(r, HMM_DMIRROR_READ, {}).out.faults, 0n, 'read-only entries satisfy a READ');
  r.p.fill32(r.mirror, 16 * PAGE_SIZE, 1000);
  const { ret, out } = ioctl(r, HMM_DMIRROR_WRITE, {});
  assert.is(ret, 0);
  assert.is(out.faults, 1n);
  assert.is(r.p.check32(r.buf, 16 * PAGE_SIZE, 1000), -1);
});

/* ---- sizes computed from user input, as lib/test_hmm.c computes them (u64) ---- */

test('a READ whose npages << PAGE_SHIFT wraps to one page reads that one page, as Linux does', () => {
  const r = setup();
  r.p.fill32(r.buf, PAGE_SIZE, 500);
  const { ret, out } = ioctl(r, HMM_DMIRROR_READ, { npages: (1n << 52n) + 1n });
  assert.is(ret, 0);
  assert.is(out.cpages, 1n);
  assert.is(out.npages, (1n << 52n) + 1n, 'npages goes back to user space as it came');
  assert.is(r.p.check32(r.mirror, PAGE_SIZE, 500), -1);
  assert.is(r.p.read32(r.mirror + PAGE_SIZE), 0, 'nothing past the one page was written');
});

test('a READ or WRITE larger than RAM fails with -ENOMEM (the bounce buffer\'s vmalloc), touching nothing', () => {
  const r = setup();
  for (const cmd of [HMM_DMIRROR_READ, HMM_DMIRROR_WRITE]) {
    const { ret, out } = ioctl(r, cmd, { npages: 1n << 30n });
    assert.is(ret, -ENOMEM);
    assert.is(out.cpages, 77n, 'the block is not copied back on error');
  }
  assert.is(ioctl(r, HMM_DMIRROR_READ, { npages: (64n << 20n) / 4096n + 1n }).ret, -ENOMEM, 'one page more than the 64 MiB of RAM');
  assert.is(r.p.check32(r.buf, 16 * PAGE_SIZE, 0), -1);
});

test('a range that runs past the last user address meets a hole there: MIGRATE -EINVAL, EXCLUSIVE and READ -EFAULT', () => {
  const r = setup();
  const npages = 1n << 40n;                  /* 4 PiB: past TASK_SIZE, within u64 */
  assert.is(ioctl(r, HMM_DMIRROR_MIGRATE_TO_DEV, { npages }).ret, -EINVAL);
  assert.is(ioctl(r, HMM_DMIRROR_MIGRATE_TO_SYS, { npages }).ret, -EINVAL);
  assert.is(ioctl(r, HMM_DMIRROR_EXCLUSIVE, { addr: 1n << 60n, npages: 1n }).ret, -EFAULT);
  assert.is(ioctl(r, HMM_DMIRROR_READ, { addr: 1n << 60n, npages: 1n }).ret, -EFAULT);
  assert.is(ioctl(r, HMM_DMIRROR_CHECK_EXCLUSIVE, { npages }).ret, 0);
  assert.is(r.p.check32(r.buf, 16 * PAGE_SIZE, 0), -1, 'the pages migrated before the hole came back intact');
  /* SNAPSHOT does not fault: holes read as PROT_ERROR, so it writes one byte per page until ptr runs off its mapping */
  const mirror = r.p.mmap(0, PAGE_SIZE, RW, ANON);
  assert.is(ioctl(r, HMM_DMIRROR_SNAPSHOT, { addr: 1n << 46n, npages, ptr: BigInt(mirror) }).ret, -EFAULT);
  assert.ok(r.p.read(mirror, PAGE_SIZE).every((b) => b === HMM_DMIRROR_PROT_ERROR), 'a page of PROT_ERROR bytes, then -EFAULT');
});

test('MIGRATE_TO_DEV over a range with a hole migrates up to the hole, then returns -EINVAL', () => {
  const r = setup(0);
  assert.is(r.p.munmap(r.buf + 8 * PAGE_SIZE, PAGE_SIZE), 0);
  const dev = dmirror_device_get(0)!;
  const { ret } = ioctl(r, HMM_DMIRROR_MIGRATE_TO_DEV, {});
  assert.is(ret, -EINVAL);
  assert.is(dev.calloc, 8, 'the eight pages before the hole moved to the device');
  assert.is(r.p.check32(r.buf, 8 * PAGE_SIZE, 0), -1, 'and come back intact');
  assert.is(r.p.check32(r.buf + 9 * PAGE_SIZE, 7 * PAGE_SIZE, 9 * 1024), -1);
});

/* ---- the self-tests, one uvu test per run ---- */

for (const run of hmm_test_runs()) {
  const name = `${run.tc.fixture}.${run.variant.name}.${run.tc.name}`;
  test(`self-test ${run.index} ${name} passes`, () => {
    const res = runTest(run.tc, run.variant, () => { start_kernel(hmm_test_boot_params(run.tc)); });
    assert.ok(!res.skipped, `${name} skipped: ${res.messages.join('; ')}`);
    assert.ok(res.passed, `${name} failed:\n${res.messages.join('\n')}`);
  });
}

test('a WRITE into its own device page that fork shared read-only is refused and the child keeps its data', () => {
  const r = setup(0, 4);
  assert.is(ioctl(r, HMM_DMIRROR_MIGRATE_TO_DEV, { npages: 4n }).ret, 0);
  const child = r.p.fork();                    /* the device-private entries become read-only, shared with the child */
  r.p.fill32(r.mirror, 4 * PAGE_SIZE, 0x1000);
  /* hmm_range_fault reports the owner's read-only page without faulting it: dmirror_do_fault answers -EFAULT (Linux) */
  assert.is(ioctl(r, HMM_DMIRROR_WRITE, { npages: 4n }).ret, -EFAULT);
  assert.is(child.check32(r.buf, 4 * PAGE_SIZE, 0), -1, 'the child still reads its own data');
  assert.is(r.p.check32(r.buf, 4 * PAGE_SIZE, 0), -1, 'and so does the parent');
});

test('pages migrated from a read-only mapping stay read-only in the device: a WRITE to them fails, the data stays', () => {
  const r = setup(0, 4);
  assert.is(r.p.mprotect(r.buf, 4 * PAGE_SIZE, PROT_READ), 0);
  assert.is(ioctl(r, HMM_DMIRROR_MIGRATE_TO_DEV, { npages: 4n }).ret, 0);
  r.p.fill32(r.mirror, 4 * PAGE_SIZE, 0x1000);
  assert.ok(ioctl(r, HMM_DMIRROR_WRITE, { npages: 4n }).ret < 0, 'the device may not write a read-only page');
  assert.is(r.p.check32(r.buf, 4 * PAGE_SIZE, 0), -1);
});

/*
 * dmirror_fops_mmap() backs the VMA with GFP_KERNEL | __GFP_ZERO pages, as
 * Linux's test driver; f_op->mmap may sleep, so that allocation's direct
 * reclaim sends blockable ranges. Before, f_op->mmap was plain (reclaim
 * inline with non-blockable ranges, now a might_sleep BUG).
 */
test('mmap of the device file under memory pressure: the backing pages\' direct reclaim sends blockable ranges', () => {
  start_kernel({ ram_bytes: 8 << 20, swap_bytes: 32 << 20 });
  hmm_dmirror_init();
  const filler = Process.spawn('filler');
  const fa = filler.mmap(0, 4096 * PAGE_SIZE, RW, ANON);
  const sub = sleeping_subscriber(filler, fa, 4096 * PAGE_SIZE);
  const used = nr_free_pages() - 8;
  filler.fill32(fa, used * PAGE_SIZE, 5);
  const p = Process.spawn('t');
  const fd = p.open('/dev/hmm_dmirror0', 2);
  const stalls = get_counter('allocstall');
  const n = 64, a = p.mmap(0, n * PAGE_SIZE, RW, MAP_SHARED, fd, 0);
  assert.ok(a > 0, `mmap: ${a}`);
  assert.ok(get_counter('allocstall') > stalls, 'the backing pages reclaimed directly');
  assert.ok(sub.blockable > 0 && sub.refused === 0, 'blockable ranges only');
  assert.is(get_counter('reclaim_nosleep'), 0);
  assert.ok(p.read(a, n * PAGE_SIZE).every((x) => x === 0), 'the device pages read as zeroes');
  p.fill32(a, n * PAGE_SIZE, 9);
  assert.is(p.check32(a, n * PAGE_SIZE, 9), -1);
  assert.is(filler.check32(fa, used * PAGE_SIZE, 5), -1);
});

test.run();
