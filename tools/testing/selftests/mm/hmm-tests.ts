/*
 * tools/testing/selftests/mm/hmm-tests.ts - the HMM self-tests, ported to
 * the simulated machine.
 *
 * Follows tools/testing/selftests/mm/hmm-tests.c of Linux (our own code):
 * the 38 tests of shared/reference/hmm-tests-catalog.md section 3, with
 * the kernel's names, steps and expected values, each run for the
 * device-private and the device-coherent variant of its fixture. They
 * drive lib/test_hmm.ts through /dev/hmm_dmirror<N> exactly as the C
 * tests do: mmap, fill, ioctl with a struct hmm_dmirror_cmd in the test
 * process's memory, check the process's memory.
 *
 * Port notes:
 *  - fork(): the child's part runs to its exit before the parent's
 *    (hmm-tests-helpers.ts, run_child); hmm_cow_in_device's child, which
 *    only spins, does nothing until the parent kills it.
 *  - anon_teardown runs its unmapping thread and the device read as two
 *    simulated threads in the scheduler's random mode, one seed per
 *    round, so each round is a different interleaving.
 *  - benchmark_thp_migration measures simulated time (lib/sim/clock.ts),
 *    and its sizes are scaled to the simulated RAM (stated in its output).
 *  - Tests the C file lets SKIP for lack of a kernel feature (hugetlb,
 *    gup_test) fail here instead, naming the missing feature.
 */
import { Scheduler, type Sleepable } from '../../../../lib/sim/sched.js';
import { Rng } from '../../../../lib/sim/rng.js';
import { schedule_timeout } from '../../../../lib/sim/clock.js';
import { PROT_NONE, PROT_READ, PROT_WRITE, MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_HUGETLB,
  MADV_HUGEPAGE,
} from '../../../../include/uapi/asm-generic/mman.js';
import { EFAULT, EPERM, ENOENT, EINVAL, errno_name } from '../../../../include/uapi/asm-generic/errno.js';
import {
  HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_RELEASE, HMM_DMIRROR_PROT_READ,
} from '../../../../include/uapi/linux/test_hmm.js';
import {
  type hmm_variant, type TestCase, type FixtureName, HMM_BUFFER_SIZE, NTIMES, TWOMEG, RW, PRIV_ANON,
  ASSERT_EQ, ASSERT_NE, ASSERT_GE, ASSERT_INTS, ASSERT_MAPPED, SKIP, missing,
  ALIGN, hmm_open, hmm_is_coherent_type, hmm_buffer_new, hmm_buffer_free, hmm_dmirror_cmd, hmm_dmirror_cmd_sys,
  hmm_migrate_sys_to_dev, hmm_migrate_dev_to_sys, fill_ints, read_ints, memset, run_child,
  read_pmd_pagesize, default_huge_page_size, hmm_create_file, pwrite, pread, ksft_print,
  WIFEXITED, hmm_variants, hmm2_variants,
  HUGETLB_SETUP_DEFAULT_PAGES, hugetlb_free_default_pages, std_size, anon_buffer, expect_cmd,
} from './hmm-tests-helpers.js';
import { register_snapshot_tests } from './hmm-tests-snapshot.js';
import { register_huge_tests, BENCHMARK_RAM_BYTES } from './hmm-tests-huge.js';
import type { boot_params } from '../../../../mm/init.js';

const tests: TestCase[] = [];
/* TEST_F(): register a test of a fixture, in file order */
function TEST_F(fixture: FixtureName, name: string, fn: TestCase['fn'], timeout_s = 30): void {
  tests.push({ fixture, name, fn, timeout_s });
}

const I = (i: number) => i;
const NEG = (i: number) => -i;
const ZERO = () => 0;

/* ---------------------------------------------------------------- 1 - 5 */

/* Simple NULL test of device open/close. */
TEST_F('hmm', 'open_close', () => {});

/* Read private anonymous memory: the first page is empty, the second the zero page. */
TEST_F('hmm', 'anon_read', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  const b = anon_buffer(self, size);
  const n = size / 4;
  fill_ints(p, b.ptr, n, I, 2 * self.page_size / 4);
  ASSERT_EQ(p.mprotect(b.ptr, size, PROT_READ), 0, 'mprotect');
  ASSERT_EQ(p.read32(b.ptr + self.page_size), 0, 'val');
  expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_READ, b, npages), b, npages, 1);
  const m = read_ints(p, b.mirror, n);
  for (let i = 0; i < n; i++) {
    const want = i < 2 * self.page_size / 4 ? 0 : i;
    if (m[i] !== want) ASSERT_EQ(m[i], want, `mirror[${i}]`);
  }
  hmm_buffer_free(p, b);
});

/* Read private anonymous memory protected with PROT_NONE: -EFAULT, mirror untouched. */
TEST_F('hmm', 'anon_read_prot', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  const b = anon_buffer(self, size);
  fill_ints(p, b.ptr, size / 4, I);
  fill_ints(p, b.mirror, size / 4, NEG);
  ASSERT_EQ(p.mprotect(b.ptr, size, PROT_NONE), 0, 'mprotect');
  ASSERT_EQ(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_READ, b, npages), -EFAULT, 'ret');
  ASSERT_EQ(p.mprotect(b.ptr, size, PROT_READ), 0, 'mprotect');
  ASSERT_INTS(p, b.ptr, size / 4, I, 'ptr');
  ASSERT_INTS(p, b.mirror, size / 4, NEG, 'mirror');
  hmm_buffer_free(p, b);
});

/* Write private anonymous memory. */
TEST_F('hmm', 'anon_write', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  const b = anon_buffer(self, size);
  fill_ints(p, b.mirror, size / 4, I);
  expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_WRITE, b, npages), b, npages, 1);
  ASSERT_INTS(p, b.ptr, size / 4, I, 'ptr');
  hmm_buffer_free(p, b);
});

/* Write private anonymous memory mapped read-only: -EPERM until mprotect makes it writable. */
TEST_F('hmm', 'anon_write_prot', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  const b = anon_buffer(self, size, PROT_READ);
  expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_READ, b, 1), b, 1, 1);
  fill_ints(p, b.mirror, size / 4, I);
  ASSERT_EQ(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_WRITE, b, npages), -EPERM, 'ret');
  ASSERT_INTS(p, b.ptr, size / 4, ZERO, 'ptr');
  ASSERT_EQ(p.mprotect(b.ptr, size, PROT_WRITE | PROT_READ), 0, 'mprotect');
  expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_WRITE, b, npages), b, npages, 1);
  ASSERT_INTS(p, b.ptr, size / 4, I, 'ptr');
  hmm_buffer_free(p, b);
});

/* ---------------------------------------------------------------- 6 - 9 */

/*
 * A device writing a private mapping in a forked child goes to the
 * child's COW copies; the child also reads what the parent migrated.
 */
TEST_F('hmm', 'anon_write_child', (self) => {
  const p = self.p;
  for (let migrate = 0; migrate < 2; ++migrate) {
    for (let use_thp = 0; use_thp < 2; ++use_thp) {
      const npages = ALIGN(use_thp ? read_pmd_pagesize() : HMM_BUFFER_SIZE, self.page_size) >> self.page_shift;
      ASSERT_NE(npages, 0, 'npages');
      const size = npages << self.page_shift;
      const b = hmm_buffer_new(p, size * 2, size);
      b.ptr = p.mmap(0, size * 2, RW, PRIV_ANON);
      ASSERT_MAPPED(b.ptr);
      const old_ptr = b.ptr;
      if (use_thp) {
        const map = ALIGN(b.ptr, size);
        ASSERT_EQ(p.madvise(map, size, MADV_HUGEPAGE), 0, 'madvise');
        b.ptr = map;
      }
      fill_ints(p, b.ptr, size / 4, I);
      fill_ints(p, b.mirror, size / 4, NEG);
      if (migrate) expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);

      const child = p.fork();
      run_child(child, (c) => {
        ASSERT_INTS(c, b.ptr, size / 4, I, 'child ptr');
        if (!migrate) ASSERT_INTS(c, b.mirror, size / 4, NEG, 'child mirror');
        /* the child needs its own mirror of its own mm */
        const child_fd = hmm_open(c, 0);
        ASSERT_GE(child_fd, 0, 'child_fd');
        expect_cmd(hmm_dmirror_cmd(self, child_fd, HMM_DMIRROR_WRITE, b, npages, c), b, npages, 1);
        if (!migrate) ASSERT_INTS(c, b.ptr, size / 4, NEG, 'child ptr after write');
        c.close(child_fd);
      });
      const w = p.wait(child.pid);
      ASSERT_EQ(WIFEXITED(w.status), true, 'WIFEXITED(ret)');
      ASSERT_INTS(p, b.ptr, size / 4, I, 'parent ptr');
      b.ptr = old_ptr;
      hmm_buffer_free(p, b);
    }
  }
});

/* A device writing a shared anonymous mapping in a child: the parent sees it (no COW). */
TEST_F('hmm', 'anon_write_child_shared', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  const b = anon_buffer(self, size, RW, MAP_SHARED | MAP_ANONYMOUS);
  fill_ints(p, b.ptr, size / 4, I);
  fill_ints(p, b.mirror, size / 4, NEG);
  const child = p.fork();
  run_child(child, (c) => {
    ASSERT_INTS(c, b.ptr, size / 4, I, 'child ptr');
    ASSERT_INTS(c, b.mirror, size / 4, NEG, 'child mirror');
    const child_fd = hmm_open(c, 0);
    ASSERT_GE(child_fd, 0, 'child_fd');
    expect_cmd(hmm_dmirror_cmd(self, child_fd, HMM_DMIRROR_WRITE, b, npages, c), b, npages, 1);
    ASSERT_INTS(c, b.ptr, size / 4, NEG, 'child ptr after write');
    c.close(child_fd);
  });
  const w = p.wait(child.pid);
  ASSERT_EQ(WIFEXITED(w.status), true, 'WIFEXITED(ret)');
  ASSERT_INTS(p, b.ptr, size / 4, NEG, 'parent ptr');
  hmm_buffer_free(p, b);
});

/* Write a private anonymous THP-advised range. */
TEST_F('hmm', 'anon_write_huge', (self) => {
  const p = self.p;
  let size = 2 * read_pmd_pagesize();
  const b = hmm_buffer_new(p, size, size);
  b.ptr = p.mmap(0, size, RW, PRIV_ANON);
  ASSERT_MAPPED(b.ptr);
  size /= 2;
  const npages = size >> self.page_shift;
  const map = ALIGN(b.ptr, size);
  ASSERT_EQ(p.madvise(map, size, MADV_HUGEPAGE), 0, 'madvise');
  const old_ptr = b.ptr;
  b.ptr = map;
  fill_ints(p, b.mirror, size / 4, I);
  expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_WRITE, b, npages), b, npages, 1);
  ASSERT_INTS(p, b.ptr, size / 4, I, 'ptr');
  b.ptr = old_ptr;
  hmm_buffer_free(p, b);
});

/* Write a hugetlbfs page. */
TEST_F('hmm', 'anon_write_hugetlbfs', (self) => {
  const p = self.p;
  const default_hsize = default_huge_page_size();
  if (!default_hsize) SKIP('Huge page size could not be determined');
  if (hugetlb_free_default_pages() === 0) missing('a free default hugetlb page (the C test skips: "Not enough huge pages")');
  const size = ALIGN(TWOMEG, default_hsize);
  const npages = size >> self.page_shift;
  const ptr = p.mmap(0, size, RW, PRIV_ANON | MAP_HUGETLB);
  if (ptr < 0) missing(`hugetlb: mmap(MAP_HUGETLB) returned ${ptr} (the C test skips: "Huge page could not be allocated")`);
  const b = hmm_buffer_new(p, size, size);
  b.ptr = ptr;
  fill_ints(p, b.mirror, size / 4, I);
  expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_WRITE, b, npages), b, npages, 1);
  ASSERT_INTS(p, b.ptr, size / 4, I, 'ptr');
  p.munmap(b.ptr, b.size);
  b.ptr = 0;
  hmm_buffer_free(p, b);
});

/* ---------------------------------------------------------------- 10 - 16 */

/* Read mmap'ed file memory. */
TEST_F('hmm', 'file_read', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  const fd = hmm_create_file(p, size);
  ASSERT_GE(fd, 0, 'fd');
  const b = hmm_buffer_new(p, size, size);
  b.fd = fd;
  fill_ints(p, b.mirror, size / 4, I);
  ASSERT_EQ(pwrite(p, fd, b.mirror, size, 0), size, 'len');
  memset(p, b.mirror, 0, size);
  b.ptr = p.mmap(0, size, PROT_READ, MAP_SHARED, b.fd, 0);
  ASSERT_MAPPED(b.ptr);
  expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_READ, b, npages), b, npages, 1);
  ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
  hmm_buffer_free(p, b);
});

/* Write mmap'ed file memory: the file contents change. */
TEST_F('hmm', 'file_write', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  const fd = hmm_create_file(p, size);
  ASSERT_GE(fd, 0, 'fd');
  const b = hmm_buffer_new(p, size, size);
  b.fd = fd;
  b.ptr = p.mmap(0, size, RW, MAP_SHARED, b.fd, 0);
  ASSERT_MAPPED(b.ptr);
  fill_ints(p, b.mirror, size / 4, I);
  expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_WRITE, b, npages), b, npages, 1);
  ASSERT_INTS(p, b.ptr, size / 4, I, 'ptr');
  ASSERT_EQ(pread(p, fd, b.mirror, size, 0), size, 'len');
  ASSERT_INTS(p, b.mirror, size / 4, I, 'file');
  hmm_buffer_free(p, b);
});

/* Migrate anonymous memory to device memory. */
TEST_F('hmm', 'migrate', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  const b = anon_buffer(self, size);
  fill_ints(p, b.ptr, size / 4, I);
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
  ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
  hmm_buffer_free(p, b);
});

/* Migrate the private (COW'd, anonymous) pages of a MAP_PRIVATE file mapping. */
TEST_F('hmm', 'migrate_file_private', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  const fd = hmm_create_file(p, size);
  ASSERT_GE(fd, 0, 'fd');
  const b = anon_buffer(self, size, RW, MAP_PRIVATE, fd);
  fill_ints(p, b.ptr, size / 4, I);
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
  ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
  hmm_buffer_free(p, b);
});

/* Migrate, fault half back, migrate the mix again: earlier device pages count too. */
TEST_F('hmm', 'migrate_fault', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  const b = anon_buffer(self, size);
  fill_ints(p, b.ptr, size / 4, I);
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
  ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
  ASSERT_INTS(p, b.ptr, size / 8, I, 'ptr');
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
  ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
  hmm_buffer_free(p, b);
});

/* RELEASE evicts the device memory; the CPU still reads the data. */
TEST_F('hmm', 'migrate_release', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  const b = anon_buffer(self, size);
  fill_ints(p, b.ptr, size / 4, I);
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
  ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
  ASSERT_EQ(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_RELEASE, b, npages), 0, 'ret');
  ASSERT_INTS(p, b.ptr, size / 8, I, 'ptr');
  hmm_buffer_free(p, b);
});

/* Shared anonymous memory never migrates: the read-back finds nothing. */
TEST_F('hmm', 'migrate_shared', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  const b = anon_buffer(self, size, RW, MAP_SHARED | MAP_ANONYMOUS);
  ASSERT_EQ(hmm_migrate_sys_to_dev(self, self.fd, b, npages), -ENOENT, 'ret');
  hmm_buffer_free(p, b);
});

/* Migrate various kinds of memory: PROT_NONE, a hole, zero, read-only, read-write, another device's. */
TEST_F('hmm2', 'migrate_mixed', (self) => {
  const p = self.p, ps = self.page_size;
  const npages = 6, size = npages << self.page_shift;
  const b = anon_buffer(self, size, PROT_NONE);
  const base = b.ptr;
  ASSERT_EQ(hmm_migrate_sys_to_dev(self, self.fd1, b, npages), -EINVAL, 'ret');
  ASSERT_EQ(p.munmap(b.ptr + ps, ps), 0, 'munmap');
  ASSERT_EQ(hmm_migrate_sys_to_dev(self, self.fd1, b, 3), -EINVAL, 'ret');
  ASSERT_EQ(p.mprotect(b.ptr + 2 * ps, ps, PROT_READ), 0, 'mprotect');
  const val = p.read32(b.ptr + 2 * ps) + 3;
  ASSERT_EQ(val, 3, 'val');
  ASSERT_EQ(p.mprotect(b.ptr + 3 * ps, ps, PROT_READ | PROT_WRITE), 0, 'mprotect');
  p.write32(b.ptr + 3 * ps, val);
  ASSERT_EQ(p.mprotect(b.ptr + 3 * ps, ps, PROT_READ), 0, 'mprotect');
  ASSERT_EQ(p.mprotect(b.ptr + 4 * ps, 2 * ps, PROT_READ | PROT_WRITE), 0, 'mprotect');
  p.write32(b.ptr + 4 * ps, val);
  p.write32(b.ptr + 5 * ps, val);
  b.ptr = base + 2 * ps;
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd1, b, 4), b, 4);
  b.ptr = base + 5 * ps;
  ASSERT_EQ(hmm_migrate_sys_to_dev(self, self.fd0, b, 1), -ENOENT, 'ret');
  b.ptr = base;
  hmm_buffer_free(p, b);
});

/* ---------------------------------------------------------------- 18 - 21 */

/* Migrate there and back ten times: by CPU faults (private) or MIGRATE_TO_SYS (coherent). */
TEST_F('hmm', 'migrate_multiple', (self, variant) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  for (let c = 0; c < NTIMES; c++) {
    const b = anon_buffer(self, size);
    fill_ints(p, b.ptr, size / 4, I);
    expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
    ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
    if (hmm_is_coherent_type(variant.device_number)) {
      expect_cmd(hmm_migrate_dev_to_sys(self, self.fd, b, npages), b, npages);
    }
    ASSERT_INTS(p, b.ptr, size / 4, I, 'ptr');
    hmm_buffer_free(p, b);
  }
});

/* Read anonymous memory ten times: no stale device page table entries. */
TEST_F('hmm', 'anon_read_multiple', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  for (let c = 0; c < NTIMES; c++) {
    const b = anon_buffer(self, size);
    fill_ints(p, b.ptr, size / 4, (i) => i + c);
    expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_READ, b, npages), b, npages, 1);
    ASSERT_INTS(p, b.mirror, size / 4, (i) => i + c, 'mirror');
    hmm_buffer_free(p, b);
  }
});

/* Scheduler seeds per round of anon_teardown: each round runs every seed. */
export const ANON_TEARDOWN_SEEDS = [1, 2, 3, 4, 5];

/*
 * Read anonymous memory while another thread unmaps half of it. Any
 * result is accepted as long as nothing hangs or breaks; a success must
 * have read everything.
 */
TEST_F('hmm', 'anon_teardown', (self) => {
  const p = self.p;
  const { npages, size } = std_size(self);
  const outcomes = new Map<string, number>();
  for (let c = 0; c < NTIMES; ++c) {
    for (const seed of ANON_TEARDOWN_SEEDS) {
      const b = anon_buffer(self, size);
      fill_ints(p, b.ptr, size / 4, (i) => i + c);
      const delay = new Rng(seed * 7919 + c).int(32000);
      const s = new Scheduler({ mode: 'random', seed: seed * 1000 + c });
      let rc = 1;
      s.spawn('unmap_buffer', function* unmap_buffer(): Sleepable {
        yield* schedule_timeout(delay);                 /* hmm_nanosleep(hmm_random() % 32000) */
        yield* p.sys.munmap(b.ptr + b.size / 2, b.size / 2);
        b.ptr = 0;
      }, 'user', p.task);
      s.spawn('hmm-tests', function* reader(): Sleepable {
        rc = yield* hmm_dmirror_cmd_sys(p, self.cmd_addr, self.fd, HMM_DMIRROR_READ, b, npages);
      }, 'user', p.task);
      const orig = b.ptr;
      s.run();
      const what = rc === 0 ? 'read it all' : `returned ${errno_name(rc)}`;
      outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
      if (rc === 0) {
        ASSERT_EQ(b.cpages, npages, 'buffer->cpages');
        ASSERT_EQ(b.faults, 1, 'buffer->faults');
        ASSERT_INTS(p, b.mirror, size / 4, (i) => i + c, 'mirror');
      }
      hmm_buffer_free(p, b);
      /* the C test leaks the lower half (ptr is NULL by now); with 50 rounds that would fill RAM */
      p.munmap(orig, size);
    }
  }
  ksft_print(`anon_teardown: ${NTIMES * ANON_TEARDOWN_SEEDS.length} rounds: ` +
    [...outcomes].map(([k, v]) => `${v} ${k}`).join(', '));
});

/* mmap of the device file itself: an inserted kernel page, mapped read-only (private COW). */
TEST_F('hmm', 'mixedmap', (self) => {
  const p = self.p;
  const npages = 1, size = npages << self.page_shift;
  const b = hmm_buffer_new(p, size, npages);
  b.ptr = p.mmap(0, size, RW, MAP_PRIVATE, self.fd, 0);
  ASSERT_MAPPED(b.ptr);
  expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_SNAPSHOT, b, npages), b, npages);
  const m = p.read(b.mirror, npages);
  ASSERT_EQ(m[0], HMM_DMIRROR_PROT_READ, 'm[0]');
  hmm_buffer_free(p, b);
});

/* ---------------------------------------------------------------- 22 - 29: snapshots, exclusive access, GUP */

register_snapshot_tests(TEST_F);

/* ---------------------------------------------------------------- 30 - 38: device THP, FAIL_ALLOC, benchmark */

register_huge_tests(TEST_F);

/* ---------------------------------------------------------------- the list */

/**
 * hmm_tests() - every TEST_F of this file, in file order. The harness runs
 * each fixture's tests for each of its variants (hmm: private, coherent;
 * hmm2: private, coherent), numbering them as kselftest does.
 */
export function hmm_tests(): readonly TestCase[] {
  return tests;
}

/** One run: a test, the variant it runs for, its kselftest number (1-based). */
export interface TestRun { tc: TestCase; variant: hmm_variant; index: number; }

/**
 * hmm_test_runs() - every run in kselftest order: fixture hmm with its
 * private then coherent variant, then fixture hmm2 likewise; 76 in all.
 */
export function hmm_test_runs(): TestRun[] {
  const runs: TestRun[] = [];
  for (const [fixture, variants] of [['hmm', hmm_variants], ['hmm2', hmm2_variants]] as const) {
    for (const variant of variants) {
      for (const tc of tests) if (tc.fixture === fixture) runs.push({ tc, variant, index: runs.length + 1 });
    }
  }
  return runs;
}

/**
 * hmm_test_boot_params() - the machine each test boots: 64 MiB of RAM
 * (BENCHMARK_RAM_BYTES for the benchmark) and the one default hugetlb
 * page the C file's global setup reserves.
 */
export function hmm_test_boot_params(tc: TestCase): boot_params {
  const ram_bytes = tc.name === 'benchmark_thp_migration' ? BENCHMARK_RAM_BYTES : 64 * 1024 * 1024;
  return { ram_bytes, hugepages_2m: HUGETLB_SETUP_DEFAULT_PAGES };
}
