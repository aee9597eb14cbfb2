/*
 * tools/testing/selftests/mm/hmm-tests-helpers.ts - the harness and the
 * user-side helpers of the ported HMM self-tests.
 *
 * Follows tools/testing/selftests/kselftest_harness.h (FIXTURE,
 * FIXTURE_VARIANT, TEST_F, ASSERT_* / EXPECT_*, SKIP, the "ok N
 * fixture.variant.test" output) and the helpers at the top of
 * tools/testing/selftests/mm/hmm-tests.c and vm_util.c (hmm_open,
 * hmm_dmirror_cmd, hmm_buffer_free, hmm_create_file, read_pmd_pagesize,
 * default_huge_page_size), written for the simulated machine:
 *
 *  - every test runs on a freshly booted machine, in a new process whose
 *    memory it reaches through tools/include/nolibc (Process);
 *  - malloc() is an anonymous mmap: the test's "mirror" buffers and the
 *    command block live in the process's own address space, where the
 *    driver reaches them with copy_from_user/copy_to_user;
 *  - a failed ASSERT throws TestAbort, which ends the test (the harness's
 *    longjmp); EXPECT records and goes on;
 *  - fork(): the child's part runs first, to its exit, then the parent's
 *    (the tests only need the child to have finished when the parent
 *    waits, or to be killed); a failed ASSERT in a child fails the test;
 *  - system calls beyond nolibc's first set (pread, pwrite, ftruncate,
 *    mremap) are looked up at run time, on Process or in mm/syscalls.ts;
 *    a missing one fails the test with MissingFeature naming it, instead
 *    of skipping (the port must run every test).
 */
import { Process } from '../../../include/nolibc/nolibc.js';
import { PAGE_SIZE, PAGE_SHIFT } from '../../../../include/linux/mm.js';
import { huge_page_size } from '../../../../include/linux/hugetlb.js';
import { hpage_pmd_size } from '../../../../mm/huge_memory.js';
import { default_hstate, hugetlb_report_meminfo } from '../../../../mm/hugetlb.js';
import {
  HMM_DMIRROR_CMD_SIZE, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, hmm_dmirror_cmd_decode,
  hmm_dmirror_cmd_encode,
} from '../../../../include/uapi/linux/test_hmm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../../../include/uapi/asm-generic/mman.js';
import { EINTR, errno_name } from '../../../../include/uapi/asm-generic/errno.js';
import { O_RDWR, O_EXCL, O_TMPFILE } from '../../../../mm/file.js';
import type { Sleepable } from '../../../../lib/sim/sched.js';
import { runAs } from '../../../include/nolibc/nolibc.js';
import { UserFault } from '../../../../mm/fault.js';
import * as syscalls from '../../../../mm/syscalls.js';
import {
  GUP_BASIC_TEST, GUP_FAST_BENCHMARK, PIN_FAST_BENCHMARK, PIN_LONGTERM_BENCHMARK, GUP_TEST_PATH, gup_test_encode,
} from '../../../../mm/gup_test.js';
import { hmm_dmirror_init } from '../../../../lib/test_hmm.js';

export const MAP_FAILED = -1;
export const ONEKB = 1 << 10;
export const ONEMEG = 1 << 20;
export const TWOMEG = 1 << 21;
export const HMM_BUFFER_SIZE = 1024 << 12;
export const NTIMES = 10;
export const RW = PROT_READ | PROT_WRITE;
export const PRIV_ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/* dmirror units, as enum in hmm-tests.c */
export const HMM_PRIVATE_DEVICE_ONE = 0;
export const HMM_PRIVATE_DEVICE_TWO = 1;
export const HMM_COHERENCE_DEVICE_ONE = 2;
export const HMM_COHERENCE_DEVICE_TWO = 3;

/* ------------------------------------------------------------ the harness */

/** A test ended by a failed ASSERT (the harness's longjmp out of the test). */
export class TestAbort extends Error { override name = 'TestAbort'; }
/** SKIP(): the test cannot run here. The port never skips on purpose; see the file header. */
export class TestSkip extends Error { override name = 'TestSkip'; }
/** A system call or device the simulated machine does not provide yet. */
export class MissingFeature extends Error { override name = 'MissingFeature'; }

/** struct __test_metadata (the parts a result needs). */
export class TestMetadata {
  passed = true;
  skipped = false;
  messages: string[] = [];
  output: string[] = [];           /* what the test printed (benchmark tables) */
  constructor(readonly name: string) {}
}

let _metadata: TestMetadata = new TestMetadata('none');
/** harnessBegin() - make @m the running test's record. */
export function harnessBegin(m: TestMetadata): void { _metadata = m; }
/** harnessMetadata() - the running test's record. */
export function harnessMetadata(): TestMetadata { return _metadata; }

/** ksft_print() - a line of test output (printf in a test). */
export function ksft_print(line: string): void { _metadata.output.push(line); }

function show(v: unknown): string {
  if (typeof v === 'number' && Number.isInteger(v) && v < 0 && v >= -4095) return `${v} (-${errno_name(v)})`;
  return String(v);
}

function fail(abort: boolean, msg: string): void {
  _metadata.passed = false;
  _metadata.messages.push(msg);
  if (abort) throw new TestAbort(msg);
}

/** ASSERT_EQ() - end the test unless @a === @b. @what names the expression. */
export function ASSERT_EQ(a: unknown, b: unknown, what = 'value'): void {
  if (a !== b) fail(true, `Expected ${what} (${show(a)}) == ${show(b)}`);
}
/** ASSERT_NE() - end the test if @a === @b. */
export function ASSERT_NE(a: unknown, b: unknown, what = 'value'): void {
  if (a === b) fail(true, `Expected ${what} (${show(a)}) != ${show(b)}`);
}
/** ASSERT_GE() - end the test unless @a >= @b. */
export function ASSERT_GE(a: number, b: number, what = 'value'): void {
  if (!(a >= b)) fail(true, `Expected ${what} (${show(a)}) >= ${show(b)}`);
}
/** EXPECT_EQ() - record a failure unless @a === @b, and go on. */
export function EXPECT_EQ(a: unknown, b: unknown, what = 'value'): void {
  if (a !== b) fail(false, `Expected ${what} (${show(a)}) == ${show(b)}`);
}
/** EXPECT_NE() - record a failure if @a === @b, and go on. */
export function EXPECT_NE(a: unknown, b: unknown, what = 'value'): void {
  if (a === b) fail(false, `Expected ${what} (${show(a)}) != ${show(b)}`);
}
/** SKIP() - give up on the test as skipped. */
export function SKIP(reason: string): never {
  _metadata.skipped = true;
  _metadata.messages.push(`SKIP ${reason}`);
  throw new TestSkip(reason);
}
/** missing() - fail the test for lack of a core feature, naming it. */
export function missing(feature: string): never {
  throw new MissingFeature(`missing core feature: ${feature}`);
}

/* ------------------------------------------------------------ fixtures */

/** FIXTURE(hmm) and FIXTURE(hmm2) state, in one struct. */
export interface hmm_self {
  p: Process;                      /* the test process */
  fd: number;                      /* hmm */
  fd0: number;                     /* hmm2 */
  fd1: number;
  page_size: number;
  page_shift: number;
  cmd_addr: number;                /* where hmm_dmirror_cmd() builds its command block (the "stack") */
}

/** FIXTURE_VARIANT(hmm) / (hmm2). */
export interface hmm_variant {
  name: string;                    /* hmm_device_private, hmm2_device_coherent ... */
  device_number: number;
  device_number0: number;
  device_number1: number;
}

export type FixtureName = 'hmm' | 'hmm2';

/** A TEST_F: the test body and its harness timeout. */
export interface TestCase {
  fixture: FixtureName;
  name: string;
  fn: (self: hmm_self, variant: hmm_variant) => void;
  timeout_s: number;
}

export const hmm_variants: hmm_variant[] = [
  { name: 'hmm_device_private', device_number: HMM_PRIVATE_DEVICE_ONE, device_number0: -1, device_number1: -1 },
  { name: 'hmm_device_coherent', device_number: HMM_COHERENCE_DEVICE_ONE, device_number0: -1, device_number1: -1 },
];
export const hmm2_variants: hmm_variant[] = [
  { name: 'hmm2_device_private', device_number: -1, device_number0: HMM_PRIVATE_DEVICE_ONE, device_number1: HMM_PRIVATE_DEVICE_TWO },
  { name: 'hmm2_device_coherent', device_number: -1, device_number0: HMM_COHERENCE_DEVICE_ONE, device_number1: HMM_COHERENCE_DEVICE_TWO },
];

/** hmm_is_coherent_type() - does this unit have device-coherent memory? */
export function hmm_is_coherent_type(dev_num: number): boolean {
  return dev_num >= HMM_COHERENCE_DEVICE_ONE;
}

/** hmm_open() - open /dev/hmm_dmirror<unit> read/write. Return: fd or -errno. */
export function hmm_open(p: Process, unit: number): number {
  const fd = p.open(`/dev/hmm_dmirror${unit}`, O_RDWR);
  if (fd < 0) ksft_print(`could not open hmm dmirror driver (/dev/hmm_dmirror${unit})`);
  return fd;
}

/** FIXTURE_SETUP(hmm) / FIXTURE_SETUP(hmm2). */
export function fixture_setup(fixture: FixtureName, self: hmm_self, variant: hmm_variant): void {
  self.page_size = PAGE_SIZE;
  self.page_shift = PAGE_SHIFT;
  if (fixture === 'hmm') {
    self.fd = hmm_open(self.p, variant.device_number);
    if (self.fd < 0 && hmm_is_coherent_type(variant.device_number)) SKIP('DEVICE_COHERENT not available');
    ASSERT_GE(self.fd, 0, 'self->fd');
  } else {
    self.fd0 = hmm_open(self.p, variant.device_number0);
    if (self.fd0 < 0 && hmm_is_coherent_type(variant.device_number0)) SKIP('DEVICE_COHERENT not available');
    ASSERT_GE(self.fd0, 0, 'self->fd0');
    self.fd1 = hmm_open(self.p, variant.device_number1);
    ASSERT_GE(self.fd1, 0, 'self->fd1');
  }
}

/** FIXTURE_TEARDOWN(hmm) / FIXTURE_TEARDOWN(hmm2): every close must return 0. */
export function fixture_teardown(fixture: FixtureName, self: hmm_self): void {
  if (fixture === 'hmm') {
    ASSERT_EQ(self.p.close(self.fd), 0, 'close(self->fd)');
    self.fd = -1;
  } else {
    ASSERT_EQ(self.p.close(self.fd0), 0, 'close(self->fd0)');
    self.fd0 = -1;
    ASSERT_EQ(self.p.close(self.fd1), 0, 'close(self->fd1)');
    self.fd1 = -1;
  }
}

/* ------------------------------------------------------------ user memory */

/** malloc() - user memory: an anonymous private mapping (0 on failure, like NULL). */
export function malloc(p: Process, size: number): number {
  const a = p.mmap(0, Math.max(size, 1), RW, PRIV_ANON);
  return a < 0 ? 0 : a;
}

/** free() - release what malloc() returned. */
export function free(p: Process, addr: number, size: number): void {
  if (addr !== 0) p.munmap(addr, Math.max(size, 1));
}

/** memset() of user memory. */
export function memset(p: Process, addr: number, byte: number, size: number): void {
  p.write(addr, new Uint8Array(size).fill(byte));
}

/** read_ints() - @n ints of user memory at @addr (the CPU reads them: faults happen). */
export function read_ints(p: Process, addr: number, n: number): Int32Array {
  const b = p.read(addr, n * 4);
  return new Int32Array(b.buffer, b.byteOffset, n);
}

/** fill_ints() - the CPU stores f(i) into int i of the int array at @addr, for @from <= i < @n. */
export function fill_ints(p: Process, addr: number, n: number, f: (i: number) => number, from = 0): void {
  const a = new Int32Array(n - from);
  for (let i = from; i < n; i++) a[i - from] = f(i);
  p.write(addr + from * 4, new Uint8Array(a.buffer));
}

/**
 * ASSERT_INTS() - the CPU reads ints @from .. @n - 1 of the int array at
 * @addr; each must equal f(i). Reports the first that does not.
 */
export function ASSERT_INTS(p: Process, addr: number, n: number, f: (i: number) => number, what: string, from = 0): void {
  const a = read_ints(p, addr + from * 4, n - from);
  for (let i = from; i < n; i++) {
    if (a[i - from] !== (f(i) | 0)) ASSERT_EQ(a[i - from], f(i) | 0, `${what}[${i}]`);
  }
}

/** ASSERT_MAPPED() - ASSERT_NE(ptr, MAP_FAILED): mmap() returned an address, not -errno. */
export function ASSERT_MAPPED(ret: number, what = 'buffer->ptr'): void {
  if (ret < 0) fail(true, `Expected ${what} (${show(ret)}) != MAP_FAILED`);
}

/**
 * check_inc_ints() - the exclusive tests' loop "ASSERT_EQ(ptr[i]++, i)":
 * page by page, the CPU reads the ints (the first touch of a page ends
 * the device's exclusive access), checks them and stores them plus one.
 */
export function check_inc_ints(p: Process, addr: number, n: number, f: (i: number) => number, what: string): void {
  const per = PAGE_SIZE / 4;
  for (let base = 0; base < n; base += per) {
    const k = Math.min(per, n - base);
    const a = read_ints(p, addr + base * 4, k);
    const out = new Int32Array(k);
    for (let j = 0; j < k; j++) {
      if (a[j] !== (f(base + j) | 0)) ASSERT_EQ(a[j], f(base + j) | 0, `${what}[${base + j}]`);
      out[j] = a[j] + 1;
    }
    p.write(addr + base * 4, new Uint8Array(out.buffer));
  }
}

/** ALIGN() - round @x up to a multiple of @a (a power of two). */
export function ALIGN(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

/* ------------------------------------------------------------ struct hmm_buffer */

/** struct hmm_buffer - a range under test and the test's buffer for the device's view of it. */
export interface hmm_buffer {
  ptr: number;          /* the range (0 = NULL) */
  mirror: number;       /* malloc'd buffer passed as cmd.ptr */
  mirror_size: number;  /* bytes malloc'd for mirror (free() needs it here) */
  size: number;         /* bytes mapped at ptr */
  fd: number;
  cpages: number;
  faults: number;
}

/** hmm_buffer_new() - malloc(sizeof(*buffer)) with its mirror of @mirror_size bytes. */
export function hmm_buffer_new(p: Process, size: number, mirror_size: number): hmm_buffer {
  const mirror = malloc(p, mirror_size);
  ASSERT_NE(mirror, 0, 'buffer->mirror');
  return { ptr: 0, mirror, mirror_size, size, fd: -1, cpages: 0, faults: 0 };
}

/** hmm_buffer_free() - unmap the range and free the mirror. */
export function hmm_buffer_free(p: Process, buffer: hmm_buffer | null): void {
  if (buffer === null) return;
  if (buffer.ptr) { p.munmap(buffer.ptr, buffer.size); buffer.ptr = 0; }
  free(p, buffer.mirror, buffer.mirror_size);
}

/**
 * hmm_dmirror_cmd_sys() - the generator form of hmm_dmirror_cmd(), for
 * simulated threads: build the command block in user memory, ioctl()
 * (again while it returns -EINTR), and on success store cpages and faults
 * into @buffer. Return: 0 or -errno.
 */
export function* hmm_dmirror_cmd_sys(p: Process, cmd_addr: number, fd: number, request: number,
                                     buffer: hmm_buffer, npages: number | bigint): Sleepable<number> {
  const block = hmm_dmirror_cmd_encode({
    addr: BigInt(buffer.ptr), ptr: BigInt(buffer.mirror), npages: BigInt(npages), cpages: 0n, faults: 0n,
  });
  yield* p.sys.write(cmd_addr, block);
  let ret: number;
  for (;;) {
    ret = yield* p.sys.ioctl(fd, request, cmd_addr);
    if (ret === 0) break;
    if (ret === -EINTR) continue;
    return ret;
  }
  const out = new Uint8Array(HMM_DMIRROR_CMD_SIZE);
  yield* p.sys.read(cmd_addr, out);
  const cmd = hmm_dmirror_cmd_decode(out);
  buffer.cpages = Number(cmd.cpages);
  buffer.faults = Number(cmd.faults);
  return 0;
}

/** hmm_dmirror_cmd() - ask the device to do @request over @npages of buffer.ptr. Return: 0 or -errno. */
export function hmm_dmirror_cmd(self: hmm_self, fd: number, request: number, buffer: hmm_buffer,
                                npages: number | bigint, p: Process = self.p): number {
  return runAs(p.task, hmm_dmirror_cmd_sys(p, self.cmd_addr, fd, request, buffer, npages));
}

/** hmm_migrate_sys_to_dev() - HMM_DMIRROR_MIGRATE_TO_DEV. */
export function hmm_migrate_sys_to_dev(self: hmm_self, fd: number, buffer: hmm_buffer, npages: number): number {
  return hmm_dmirror_cmd(self, fd, HMM_DMIRROR_MIGRATE_TO_DEV, buffer, npages);
}

/** hmm_migrate_dev_to_sys() - HMM_DMIRROR_MIGRATE_TO_SYS. */
export function hmm_migrate_dev_to_sys(self: hmm_self, fd: number, buffer: hmm_buffer, npages: number): number {
  return hmm_dmirror_cmd(self, fd, HMM_DMIRROR_MIGRATE_TO_SYS, buffer, npages);
}

/* std_size() - npages and size of the standard HMM_BUFFER_SIZE buffer */
export function std_size(self: hmm_self): { npages: number; size: number } {
  const npages = ALIGN(HMM_BUFFER_SIZE, self.page_size) >> self.page_shift;
  ASSERT_NE(npages, 0, 'npages');
  return { npages, size: npages << self.page_shift };
}

/* anon_buffer() - buffer = malloc; mirror = malloc(size); ptr = mmap(size, prot, flags) */
export function anon_buffer(self: hmm_self, size: number, prot = RW, flags = PRIV_ANON, fd = -1): hmm_buffer {
  const b = hmm_buffer_new(self.p, size, size);
  b.fd = fd;
  b.ptr = self.p.mmap(0, size, prot, flags, fd, 0);
  ASSERT_MAPPED(b.ptr);
  return b;
}

/* expect_cmd() - the "ret, cpages[, faults]" the tests check most commands against */
export function expect_cmd(ret: number, b: hmm_buffer, cpages: number, faults?: number): void {
  ASSERT_EQ(ret, 0, 'ret');
  ASSERT_EQ(b.cpages, cpages, 'buffer->cpages');
  if (faults !== undefined) ASSERT_EQ(b.faults, faults, 'buffer->faults');
}

/* ------------------------------------------------------------ fork and wait */

export const WIFEXITED = (s: number): boolean => (s & 0x7f) === 0;
export const WEXITSTATUS = (s: number): number => (s >> 8) & 0xff;
export const WTERMSIG = (s: number): number => s & 0x7f;
export const WIFSIGNALED = (s: number): boolean => ((s & 0x7f) + 1) >> 1 > 0;

/**
 * run_child() - the child's side of a fork(): run @body as @child, then
 * _exit(0) (or _exit(1) after a failed ASSERT, which also fails the test).
 */
export function run_child(child: Process, body: (c: Process) => void): void {
  const m = harnessMetadata();
  const before = m.messages.length;
  let code = 0;
  try {
    body(child);
  } catch (e) {
    if (!(e instanceof TestAbort)) {
      m.passed = false;
      m.messages.push(`child ${child.pid}: ${e instanceof Error ? e.message : String(e)}`);
    }
    code = 1;
  }
  for (let i = before; i < m.messages.length; i++) m.messages[i] = `child ${child.pid}: ${m.messages[i]}`;
  if (child.task.exit_state === 0) child.exit(code);
}

/* ------------------------------------------------------------ system information */

/** read_pmd_pagesize() - /sys/kernel/mm/transparent_hugepage/hpage_pmd_size (x86-64: 2 MiB). */
export function read_pmd_pagesize(): number {
  return hpage_pmd_size();
}

/** default_huge_page_size() - "Hugepagesize" of /proc/meminfo: the default hugetlb page size. */
export function default_huge_page_size(): number {
  return huge_page_size(default_hstate());
}

/** hugetlb_free_default_pages() - "HugePages_Free" of /proc/meminfo for the default size. */
export function hugetlb_free_default_pages(): number {
  return hugetlb_report_meminfo()[0]?.free ?? 0;
}

/**
 * HUGETLB_SETUP_DEFAULT_PAGES - the C file's global setup asks for one
 * default-size hugetlb page before any test runs; every test's machine
 * boots with this many in its pool (hugepagesz=2M hugepages=1).
 */
export const HUGETLB_SETUP_DEFAULT_PAGES = 1;

/* ------------------------------------------------------------ calls the machine may lack */

type AnyFn = (...args: unknown[]) => unknown;
/*
 * A system call of the simulated machine: nolibc's Process method if it
 * has one, else the raw sys_* entry point of mm/syscalls.ts run as the
 * process, else MissingFeature naming it.
 */
function syscall(p: Process, method: string, sys: string, feature: string): AnyFn {
  const m = (p as unknown as Record<string, unknown>)[method];
  if (typeof m === 'function') return (m as AnyFn).bind(p);
  const s = (syscalls as unknown as Record<string, unknown>)[sys];
  if (typeof s !== 'function') missing(feature);
  return (...args: unknown[]) => runAs(p.task, (s as AnyFn)(p.task, ...args) as Sleepable<unknown>);
}

/** ftruncate(2), or MissingFeature. */
export function ftruncate(p: Process, fd: number, size: number): number {
  return syscall(p, 'ftruncate', 'sys_ftruncate', 'ftruncate(2) (tmpfs files, mm/shmem.ts)')(fd, size) as number;
}

/** pwrite(2) of user memory [buf, buf + len) at file offset @off. */
export function pwrite(p: Process, fd: number, buf: number, len: number, off: number): number {
  return syscall(p, 'pwrite', 'sys_pwrite64', 'pwrite(2) (tmpfs files, mm/shmem.ts)')(fd, buf, len, off) as number;
}

/** pread(2) into user memory [buf, buf + len) from file offset @off. */
export function pread(p: Process, fd: number, buf: number, len: number, off: number): number {
  return syscall(p, 'pread', 'sys_pread64', 'pread(2) (tmpfs files, mm/shmem.ts)')(fd, buf, len, off) as number;
}

/** mremap(2). Return: the new address or -errno. */
export function mremap(p: Process, old: number, old_len: number, new_len: number, flags: number, new_addr: number): number {
  return syscall(p, 'mremap', 'sys_mremap', 'mremap(2) (mm/mremap.ts)')(old, old_len, new_len, flags, new_addr) as number;
}

/**
 * hmm_create_file() - an unnamed temporary file of @size bytes: open
 * /tmp with O_TMPFILE and ftruncate it. Return: fd or -1.
 */
export function hmm_create_file(p: Process, size: number): number {
  const fd = p.open('/tmp', O_TMPFILE | O_EXCL | O_RDWR);
  if (fd < 0) missing(`open("/tmp", O_TMPFILE) returned ${show(fd)} (tmpfs: mm/shmem.ts)`);
  let r: number;
  do { r = ftruncate(p, fd, size); } while (r === -EINTR);
  if (r === 0) return fd;
  p.close(fd);
  return -1;
}

/* ------------------------------------------------------------ gup_test (mm/gup_test.h) */

export { GUP_BASIC_TEST, GUP_FAST_BENCHMARK, PIN_FAST_BENCHMARK, PIN_LONGTERM_BENCHMARK, GUP_TEST_PATH };
export const FOLL_WRITE = 0x01;
export const FOLL_LONGTERM = 0x100;

/** gup_test_exec() - one gup_test ioctl over @npages at @addr, always with FOLL_WRITE. Return: 0 or errno. */
export function gup_test_exec(self: hmm_self, gup_fd: number, addr: number, cmd: number, npages: number,
                              size: number, flags: number): number {
  self.p.write(self.cmd_addr, gup_test_encode({
    get_delta_usec: 0, put_delta_usec: 0, addr, size, nr_pages_per_call: npages, gup_flags: FOLL_WRITE | flags,
    test_flags: 0, which_pages: [],
  }));
  const ret = self.p.ioctl(gup_fd, cmd, self.cmd_addr);
  if (ret < 0) { ksft_print(`ioctl on error: ${errno_name(ret)}`); return -ret; }
  return 0;
}

/* ------------------------------------------------------------ running one test */

/** The outcome of one test run. */
export interface TestResult {
  name: string;                    /* hmm.hmm_device_private.migrate */
  passed: boolean;
  skipped: boolean;
  messages: string[];
  output: string[];
  ms: number;                      /* wall-clock time of the run */
}

/**
 * runTest() - one TEST_F for one variant on a fresh machine: boot, new
 * process, fixture setup, body, teardown. A UserFault (SIGSEGV/SIGBUS in
 * the test process), a MissingFeature or a simulator exception fails it.
 * @boot: boots a fresh machine (start_kernel with the harness's params);
 *   runTest() then loads test_hmm, as test_hmm.sh runs insmod.
 */
export function runTest(tc: TestCase, variant: hmm_variant, boot: () => void): TestResult {
  const name = `${tc.fixture}.${variant.name}.${tc.name}`;
  const m = new TestMetadata(name);
  harnessBegin(m);
  const t0 = Date.now();
  try {
    boot();
    hmm_dmirror_init();
    const p = Process.spawn('hmm-tests');
    const self: hmm_self = { p, fd: -1, fd0: -1, fd1: -1, page_size: PAGE_SIZE, page_shift: PAGE_SHIFT, cmd_addr: 0 };
    self.cmd_addr = malloc(p, PAGE_SIZE);
    let setup_done = false;
    try {
      fixture_setup(tc.fixture, self, variant);
      setup_done = true;
      tc.fn(self, variant);
    } finally {
      if (setup_done && self.p.task.exit_state === 0) {
        try { fixture_teardown(tc.fixture, self); } catch (e) { if (!(e instanceof TestAbort)) throw e; }
      }
    }
  } catch (e) {
    if (e instanceof TestSkip) {
      /* recorded by SKIP() */
    } else if (e instanceof TestAbort) {
      /* recorded by the ASSERT */
    } else if (e instanceof UserFault) {
      m.passed = false;
      m.messages.push(`test process got ${e.message}`);
    } else {
      m.passed = false;
      m.messages.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      if (e instanceof Error && !(e instanceof MissingFeature) && e.stack) m.messages.push(...e.stack.split('\n').slice(1, 8));
    }
  }
  return { name, passed: m.passed && !m.skipped, skipped: m.skipped, messages: m.messages, output: m.output, ms: Date.now() - t0 };
}
