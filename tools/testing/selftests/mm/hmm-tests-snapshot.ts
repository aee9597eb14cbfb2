/*
 * tools/testing/selftests/mm/hmm-tests-snapshot.ts - the HMM self-tests
 * about snapshots, device-exclusive access and GUP of device pages:
 * snapshot, compound, double_map, exclusive, exclusive_mprotect,
 * exclusive_cow, hmm_gup_test and hmm_cow_in_device (tests 22 to 29 of
 * shared/reference/hmm-tests-catalog.md).
 *
 * Follows the middle of tools/testing/selftests/mm/hmm-tests.c of Linux
 * (our own code). Split out of hmm-tests.ts for size only: hmm-tests.ts
 * calls register_snapshot_tests() where these tests stand in the C file,
 * so the kselftest numbering is that of the C file.
 */
import { PROT_NONE, PROT_READ, PROT_WRITE, MAP_HUGETLB } from '../../../../include/uapi/asm-generic/mman.js';
import { EPERM } from '../../../../include/uapi/asm-generic/errno.js';
import { SIGKILL } from '../../../../include/uapi/asm-generic/signal.js';
import {
  HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_CHECK_EXCLUSIVE,
  HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_NONE, HMM_DMIRROR_PROT_READ, HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_PMD,
  HMM_DMIRROR_PROT_PUD, HMM_DMIRROR_PROT_ZERO, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL,
  HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE,
} from '../../../../include/uapi/linux/test_hmm.js';
import { O_RDWR } from '../../../../mm/file.js';
import {
  type TestCase, type FixtureName, TWOMEG, RW, PRIV_ANON,
  ASSERT_EQ, ASSERT_INTS, ASSERT_MAPPED, EXPECT_EQ, EXPECT_NE, SKIP, missing, ALIGN, hmm_is_coherent_type,
  hmm_buffer_new, hmm_buffer_free, hmm_dmirror_cmd, hmm_migrate_sys_to_dev, fill_ints, check_inc_ints, run_child,
  default_huge_page_size, hugetlb_free_default_pages, WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG, gup_test_exec,
  GUP_BASIC_TEST, GUP_FAST_BENCHMARK, PIN_FAST_BENCHMARK, PIN_LONGTERM_BENCHMARK, FOLL_LONGTERM, GUP_TEST_PATH,
  std_size, anon_buffer, expect_cmd,
} from './hmm-tests-helpers.js';

const I = (i: number) => i;

type Registrar = (fixture: FixtureName, name: string, fn: TestCase['fn'], timeout_s?: number) => void;

/**
 * register_snapshot_tests() - register tests 22 to 29 through @register
 * (hmm-tests.ts's TEST_F), in the C file's order.
 * Context: module load of hmm-tests.ts.
 */
export function register_snapshot_tests(register: Registrar): void {
  /* ---------------------------------------------------------------- 22 - 24 */

  /* Snapshot of every kind of entry, seen from device 0. */
  register('hmm2', 'snapshot', (self, variant) => {
    const p = self.p, ps = self.page_size;
    const npages = 7, size = npages << self.page_shift;
    const b = hmm_buffer_new(p, size, npages);
    b.ptr = p.mmap(0, size, PROT_NONE, PRIV_ANON);
    ASSERT_MAPPED(b.ptr);
    const base = b.ptr;
    ASSERT_EQ(p.munmap(b.ptr + ps, ps), 0, 'munmap');
    ASSERT_EQ(p.mprotect(b.ptr + 2 * ps, ps, PROT_READ), 0, 'mprotect');
    const val = p.read32(b.ptr + 2 * ps) + 3;
    ASSERT_EQ(val, 3, 'val');
    ASSERT_EQ(p.mprotect(b.ptr + 3 * ps, ps, PROT_READ | PROT_WRITE), 0, 'mprotect');
    p.write32(b.ptr + 3 * ps, val);
    ASSERT_EQ(p.mprotect(b.ptr + 3 * ps, ps, PROT_READ), 0, 'mprotect');
    ASSERT_EQ(p.mprotect(b.ptr + 4 * ps, 3 * ps, PROT_READ | PROT_WRITE), 0, 'mprotect');
    p.write32(b.ptr + 4 * ps, val);
    b.ptr = base + 5 * ps;
    expect_cmd(hmm_migrate_sys_to_dev(self, self.fd0, b, 1), b, 1);
    b.ptr = base + 6 * ps;
    expect_cmd(hmm_migrate_sys_to_dev(self, self.fd1, b, 1), b, 1);
    b.ptr = base;
    expect_cmd(hmm_dmirror_cmd(self, self.fd0, HMM_DMIRROR_SNAPSHOT, b, npages), b, npages);
    const m = p.read(b.mirror, npages);
    ASSERT_EQ(m[0], HMM_DMIRROR_PROT_ERROR, 'm[0]');
    ASSERT_EQ(m[1], HMM_DMIRROR_PROT_ERROR, 'm[1]');
    ASSERT_EQ(m[2], HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ, 'm[2]');
    ASSERT_EQ(m[3], HMM_DMIRROR_PROT_READ, 'm[3]');
    ASSERT_EQ(m[4], HMM_DMIRROR_PROT_WRITE, 'm[4]');
    if (!hmm_is_coherent_type(variant.device_number0)) {
      ASSERT_EQ(m[5], HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE, 'm[5]');
      ASSERT_EQ(m[6], HMM_DMIRROR_PROT_NONE, 'm[6]');
    } else {
      ASSERT_EQ(m[5], HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE, 'm[5]');
      ASSERT_EQ(m[6], HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE | HMM_DMIRROR_PROT_WRITE, 'm[6]');
    }
    hmm_buffer_free(p, b);
  });

  /* hugetlb pages are reported as mapped by one PMD (or PUD) entry. */
  register('hmm', 'compound', (self) => {
    const p = self.p;
    const default_hsize = default_huge_page_size();
    if (!default_hsize) SKIP('Huge page size could not be determined');
    if (hugetlb_free_default_pages() === 0) missing('a free default hugetlb page (the C test skips: "Not enough huge pages")');
    const size = ALIGN(TWOMEG, default_hsize);
    const npages = size >> self.page_shift;
    const ptr = p.mmap(0, size, RW, PRIV_ANON | MAP_HUGETLB);
    if (ptr < 0) return;                            /* as the C test: a silent pass */
    const b = hmm_buffer_new(p, size, npages);
    b.ptr = ptr;
    fill_ints(p, b.ptr, size / 4, I);
    expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_SNAPSHOT, b, npages), b, npages);
    let m = p.read(b.mirror, npages);
    const level = (m[0] & HMM_DMIRROR_PROT_PUD) ? HMM_DMIRROR_PROT_PUD : HMM_DMIRROR_PROT_PMD;
    for (let i = 0; i < npages; ++i) if (m[i] !== (HMM_DMIRROR_PROT_WRITE | level)) ASSERT_EQ(m[i], HMM_DMIRROR_PROT_WRITE | level, `m[${i}]`);
    ASSERT_EQ(p.mprotect(b.ptr, size, PROT_READ), 0, 'mprotect');
    expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_SNAPSHOT, b, npages), b, npages);
    m = p.read(b.mirror, npages);
    for (let i = 0; i < npages; ++i) if (m[i] !== (HMM_DMIRROR_PROT_READ | level)) ASSERT_EQ(m[i], HMM_DMIRROR_PROT_READ | level, `m[${i}]`);
    p.munmap(b.ptr, b.size);
    b.ptr = 0;
    hmm_buffer_free(p, b);
  });

  /* Two devices mirror one mm; a migration to device 1 makes device 0 fault again. */
  register('hmm2', 'double_map', (self) => {
    const p = self.p;
    const npages = 6, size = npages << self.page_shift;
    const b = anon_buffer(self, size);
    fill_ints(p, b.ptr, size / 4, I);
    ASSERT_EQ(p.mprotect(b.ptr, size, PROT_READ), 0, 'mprotect');
    expect_cmd(hmm_dmirror_cmd(self, self.fd0, HMM_DMIRROR_READ, b, npages), b, npages, 1);
    ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
    expect_cmd(hmm_dmirror_cmd(self, self.fd1, HMM_DMIRROR_READ, b, npages), b, npages, 1);
    ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
    expect_cmd(hmm_migrate_sys_to_dev(self, self.fd1, b, npages), b, npages);
    expect_cmd(hmm_dmirror_cmd(self, self.fd0, HMM_DMIRROR_READ, b, npages), b, npages, 1);
    ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
    hmm_buffer_free(p, b);
  });

  /* ---------------------------------------------------------------- 25 - 29 */

  /* Device-exclusive access; any CPU access revokes it. */
  register('hmm', 'exclusive', (self) => {
    const p = self.p;
    const { npages, size } = std_size(self);
    const b = anon_buffer(self, size);
    fill_ints(p, b.ptr, size / 4, I);
    expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_EXCLUSIVE, b, npages), b, npages);
    ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
    check_inc_ints(p, b.ptr, size / 4, I, 'ptr');
    ASSERT_INTS(p, b.ptr, size / 4, (i) => i + 1, 'ptr');
    ASSERT_EQ(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_CHECK_EXCLUSIVE, b, npages), 0, 'ret');
    hmm_buffer_free(p, b);
  });

  /* mprotect revokes exclusive access; the device then may not write. */
  register('hmm', 'exclusive_mprotect', (self) => {
    const p = self.p;
    const { npages, size } = std_size(self);
    const b = anon_buffer(self, size);
    fill_ints(p, b.ptr, size / 4, I);
    expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_EXCLUSIVE, b, npages), b, npages);
    ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
    ASSERT_EQ(p.mprotect(b.ptr, size, PROT_READ), 0, 'mprotect');
    ASSERT_EQ(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_WRITE, b, npages), -EPERM, 'ret');
    hmm_buffer_free(p, b);
  });

  /* fork() restores exclusive entries; each process then copies on write. */
  register('hmm', 'exclusive_cow', (self) => {
    const p = self.p;
    const { npages, size } = std_size(self);
    const b = anon_buffer(self, size);
    fill_ints(p, b.ptr, size / 4, I);
    expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_EXCLUSIVE, b, npages), b, npages);
    const child = p.fork();
    run_child(child, (c) => {
      check_inc_ints(c, b.ptr, size / 4, I, 'child ptr');
      ASSERT_INTS(c, b.ptr, size / 4, (i) => i + 1, 'child ptr');
    });
    check_inc_ints(p, b.ptr, size / 4, I, 'ptr');
    ASSERT_INTS(p, b.ptr, size / 4, (i) => i + 1, 'ptr');
    const w = p.wait(child.pid);
    ASSERT_EQ(w.pid, child.pid, 'waitpid');
    ASSERT_EQ(WIFEXITED(w.status), true, 'WIFEXITED(status)');
    ASSERT_EQ(WEXITSTATUS(w.status), 0, 'WEXITSTATUS(status)');
    hmm_buffer_free(p, b);
  });

  /* GUP and pins of device pages: private pages come back; coherent ones only for long-term pins. */
  register('hmm', 'hmm_gup_test', (self, variant) => {
    const p = self.p;
    const gup_fd = p.open(GUP_TEST_PATH, O_RDWR);
    if (gup_fd < 0) missing(`${GUP_TEST_PATH} (CONFIG_GUP_TEST, mm/gup_test.ts): open returned ${gup_fd}`);
    const npages = 4, size = npages << self.page_shift;
    const b = anon_buffer(self, size);
    fill_ints(p, b.ptr, size / 4, I);
    expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
    ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
    const ps = self.page_size;
    ASSERT_EQ(gup_test_exec(self, gup_fd, b.ptr, GUP_BASIC_TEST, 1, ps, 0), 0, 'GUP_BASIC_TEST');
    ASSERT_EQ(gup_test_exec(self, gup_fd, b.ptr + ps, GUP_FAST_BENCHMARK, 1, ps, 0), 0, 'GUP_FAST_BENCHMARK');
    ASSERT_EQ(gup_test_exec(self, gup_fd, b.ptr + 2 * ps, PIN_FAST_BENCHMARK, 1, ps, FOLL_LONGTERM), 0, 'PIN_FAST_BENCHMARK');
    ASSERT_EQ(gup_test_exec(self, gup_fd, b.ptr + 3 * ps, PIN_LONGTERM_BENCHMARK, 1, ps, 0), 0, 'PIN_LONGTERM_BENCHMARK');
    expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_SNAPSHOT, b, npages), b, npages);
    const m = p.read(b.mirror, npages);
    const first = hmm_is_coherent_type(variant.device_number)
      ? HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_WRITE;
    ASSERT_EQ(m[0], first, 'm[0]');
    ASSERT_EQ(m[1], first, 'm[1]');
    ASSERT_EQ(m[2], HMM_DMIRROR_PROT_WRITE, 'm[2]');
    ASSERT_EQ(m[3], HMM_DMIRROR_PROT_WRITE, 'm[3]');
    ASSERT_INTS(p, b.ptr, size / 4, I, 'ptr');
    p.close(gup_fd);
    hmm_buffer_free(p, b);
  });

  /* A COW break on device pages ends with writable system pages. */
  register('hmm', 'hmm_cow_in_device', (self) => {
    const p = self.p;
    const npages = 4, size = npages << self.page_shift;
    const b = anon_buffer(self, size);
    fill_ints(p, b.ptr, size / 4, I);
    expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
    /* the child spins until killed: it does nothing the parent could see */
    const child = p.fork();
    fill_ints(p, b.ptr, size / 4, I);
    EXPECT_EQ(p.kill(child.pid, SIGKILL), 0, 'kill');
    const w = p.wait(child.pid);
    EXPECT_EQ(w.pid, child.pid, 'waitpid');
    EXPECT_NE(WIFSIGNALED(w.status), false, 'WIFSIGNALED(status)');
    EXPECT_EQ(WTERMSIG(w.status), SIGKILL, 'WTERMSIG(status)');
    expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_SNAPSHOT, b, npages), b, npages);
    const m = p.read(b.mirror, npages);
    for (let i = 0; i < npages; i++) ASSERT_EQ(m[i], HMM_DMIRROR_PROT_WRITE, `m[${i}]`);
    hmm_buffer_free(p, b);
  });
}
