/*
 * tools/testing/selftests/mm/hmm-tests-huge.ts - the HMM self-tests about
 * device THPs: migrate_anon_huge_* (empty, zero, free, fault),
 * migrate_partial_unmap_fault, migrate_remap_fault, the FAIL_ALLOC tests
 * and benchmark_thp_migration (tests 30 to 38 of
 * shared/reference/hmm-tests-catalog.md).
 *
 * Follows the tail of tools/testing/selftests/mm/hmm-tests.c of Linux (our
 * own code). Split out of hmm-tests.ts for size only: hmm-tests.ts calls
 * register_huge_tests() where these tests stand in the C file, so the
 * kselftest numbering is that of the C file.
 */
import { now } from '../../../../lib/sim/clock.js';
import { PROT_READ, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_FREE, MADV_COLLAPSE,
  MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP,
} from '../../../../include/uapi/asm-generic/mman.js';
import {
  HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_FLAGS, HMM_DMIRROR_FLAG_FAIL_ALLOC, HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_PMD,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
} from '../../../../include/uapi/linux/test_hmm.js';
import { O_RDONLY } from '../../../../mm/file.js';
import type { Process } from '../../../include/nolibc/nolibc.js';
import {
  type hmm_self, type TestCase, type FixtureName, type hmm_buffer, ONEKB, ONEMEG, TWOMEG, RW,
  ASSERT_EQ, ASSERT_INTS, ASSERT_MAPPED, missing, ALIGN, hmm_is_coherent_type, hmm_buffer_new, hmm_buffer_free,
  hmm_dmirror_cmd, hmm_migrate_sys_to_dev, hmm_migrate_dev_to_sys, fill_ints, memset, read_pmd_pagesize, pread,
  mremap, malloc, free, ksft_print, expect_cmd, PRIV_ANON,
} from './hmm-tests-helpers.js';

const I = (i: number) => i;
const ZERO = () => 0;

type Registrar = (fixture: FixtureName, name: string, fn: TestCase['fn'], timeout_s?: number) => void;
const pending: Parameters<Registrar>[] = [];
/* TEST_F() of this file: kept until register_huge_tests() hands them over in order */
function TEST_F(fixture: FixtureName, name: string, fn: TestCase['fn'], timeout_s?: number): void {
  pending.push([fixture, name, fn, timeout_s]);
}

/* The H-aligned huge window of a 2H mapping, set up the way every THP test does. */
function huge_buffer(self: hmm_self, prot: number, advice: number | null, mirror_size?: number):
    { b: hmm_buffer; size: number; npages: number; old_ptr: number } {
  const p = self.p;
  const size = read_pmd_pagesize();
  const b = hmm_buffer_new(p, 2 * size, mirror_size ?? size);
  memset(p, b.mirror, 0xff, mirror_size ?? size);
  b.ptr = p.mmap(0, 2 * size, prot, PRIV_ANON);
  ASSERT_MAPPED(b.ptr);
  const npages = size >> self.page_shift;
  const map = ALIGN(b.ptr, size);
  if (advice !== null) ASSERT_EQ(p.madvise(map, size, advice), 0, 'madvise');
  const old_ptr = b.ptr;
  b.ptr = map;
  return { b, size, npages, old_ptr };
}

/* Migrate an untouched THP-advised range: a zero-filled device THP. */
TEST_F('hmm', 'migrate_anon_huge_empty', (self) => {
  const p = self.p;
  const { b, size, npages, old_ptr } = huge_buffer(self, PROT_READ, MADV_HUGEPAGE);
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
  ASSERT_INTS(p, b.mirror, size / 4, ZERO, 'mirror');
  b.ptr = old_ptr;
  hmm_buffer_free(p, b);
});

/* Migrate the huge zero page. */
TEST_F('hmm', 'migrate_anon_huge_zero', (self) => {
  const p = self.p;
  const { b, size, npages, old_ptr } = huge_buffer(self, PROT_READ, MADV_HUGEPAGE);
  ASSERT_EQ(p.read32(b.ptr), 0, 'val');
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
  ASSERT_INTS(p, b.mirror, size / 4, ZERO, 'mirror');
  ASSERT_INTS(p, b.ptr, size / 4, ZERO, 'ptr');
  b.ptr = old_ptr;
  hmm_buffer_free(p, b);
});

/* Migrate a THP, then MADV_FREE it. */
TEST_F('hmm', 'migrate_anon_huge_free', (self) => {
  const p = self.p;
  const { b, size, npages, old_ptr } = huge_buffer(self, RW, MADV_HUGEPAGE);
  fill_ints(p, b.ptr, size / 4, I);
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
  ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
  ASSERT_EQ(p.madvise(b.ptr, size, MADV_FREE), 0, 'madvise(MADV_FREE)');
  b.ptr = old_ptr;
  hmm_buffer_free(p, b);
});

/* pagemap entry of @addr: 64 bits, read with pread from /proc/self/pagemap */
function pagemap_entry(p: Process, pm_fd: number, addr: number, buf: number): bigint {
  const off = (addr / 4096) * 8;
  const n = pread(p, pm_fd, buf, 8, off);
  ASSERT_EQ(n, 8, 'pread(pagemap)');
  const b = p.read(buf, 8);
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

/*
 * Collapse a range into a THP, migrate it as one device THP (0x26 in a
 * snapshot, swap entries in pagemap on the private device), then fault it back.
 */
TEST_F('hmm', 'migrate_anon_huge_fault', (self, variant) => {
  const p = self.p;
  const { b, size, npages, old_ptr } = huge_buffer(self, RW, null);
  fill_ints(p, b.ptr, size / 4, I);
  ASSERT_EQ(p.madvise(b.ptr, size, MADV_COLLAPSE), 0, 'madvise(MADV_COLLAPSE)');
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
  ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
  if (!hmm_is_coherent_type(variant.device_number)) {
    expect_cmd(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_SNAPSHOT, b, npages), b, npages);
    const m = p.read(b.mirror, npages);
    const want = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD;
    for (let i = 0; i < npages; i++) if (m[i] !== want) ASSERT_EQ(m[i], want, `m[${i}]`);
    const pm_fd = p.open('/proc/self/pagemap', O_RDONLY);
    if (pm_fd < 0) missing(`/proc/self/pagemap (fs/proc/task_mmu.ts): open returned ${pm_fd}`);
    const buf = malloc(p, 8);
    for (let i = 0; i < npages; i++) {
      const e = pagemap_entry(p, pm_fd, b.ptr + i * self.page_size, buf);
      ASSERT_EQ((e >> 62n) & 1n, 1n, `pagemap[${i}] swap bit`);
      ASSERT_EQ((e >> 63n) & 1n, 0n, `pagemap[${i}] present bit`);
    }
    free(p, buf, 8);
    p.close(pm_fd);
  }
  ASSERT_INTS(p, b.ptr, size / 4, I, 'ptr');
  b.ptr = old_ptr;
  hmm_buffer_free(p, b);
});

/* ---------------------------------------------------------------- 34 - 35 */

const HUGE_OFFSETS = [0, 512 * ONEKB, ONEMEG];

/* Migrate, unmap part of the device THP, fault the rest back. */
TEST_F('hmm', 'migrate_partial_unmap_fault', (self) => {
  const p = self.p;
  const size = read_pmd_pagesize() || TWOMEG;
  for (let use_thp = 0; use_thp < 2; ++use_thp) {
    for (const off of HUGE_OFFSETS) {
      const { b, npages, old_ptr } = huge_buffer(self, RW, use_thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
      fill_ints(p, b.ptr, size / 4, I);
      expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
      ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
      p.munmap(b.ptr + off, ONEMEG);
      ASSERT_INTS(p, b.ptr, off / 4, I, 'ptr');
      ASSERT_INTS(p, b.ptr, size / 4, I, 'ptr', (off + ONEMEG) / 4);
      b.ptr = old_ptr;
      hmm_buffer_free(p, b);
    }
  }
});

/* Move a (device) THP with mremap, even to an address that is not PMD aligned. */
TEST_F('hmm', 'migrate_remap_fault', (self) => {
  const p = self.p;
  const size = read_pmd_pagesize() || TWOMEG;
  for (let before = 0; before < 2; ++before) {
    for (let dont_unmap = 0; dont_unmap < 2; ++dont_unmap) {
      for (let use_thp = 0; use_thp < 2; ++use_thp) {
        for (const off of HUGE_OFFSETS) {
          const flags = MREMAP_MAYMOVE | MREMAP_FIXED | (dont_unmap ? MREMAP_DONTUNMAP : 0);
          const b = hmm_buffer_new(p, 8 * size, size);
          memset(p, b.mirror, 0xff, size);
          b.ptr = p.mmap(0, b.size, RW, PRIV_ANON);
          ASSERT_MAPPED(b.ptr);
          const npages = size >> self.page_shift;
          const map = ALIGN(b.ptr, size);
          ASSERT_EQ(p.madvise(map, size, use_thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE), 0, 'madvise');
          const old_ptr = b.ptr;
          p.munmap(map + size, size * 2);
          b.ptr = map;
          fill_ints(p, b.ptr, size / 4, I);
          let new_ptr = 0;
          if (before) {
            new_ptr = mremap(p, map, size, size, flags, map + size + off);
            ASSERT_MAPPED(new_ptr, 'new_ptr');
            b.ptr = new_ptr;
          }
          expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
          ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
          if (!before) {
            new_ptr = mremap(p, map, size, size, flags, map + size + off);
            ASSERT_MAPPED(new_ptr, 'new_ptr');
            b.ptr = new_ptr;
          }
          ASSERT_INTS(p, b.ptr, size / 4, I, 'ptr');
          p.munmap(new_ptr, size);
          b.ptr = old_ptr;
          hmm_buffer_free(p, b);
        }
      }
    }
  }
});

/* ---------------------------------------------------------------- 36 - 37: FAIL_ALLOC */

/* A failed huge device allocation falls back to small pages; a failed huge RAM allocation splits. */
TEST_F('hmm', 'migrate_anon_huge_err', (self) => {
  const p = self.p;
  const size = read_pmd_pagesize();
  const b = hmm_buffer_new(p, 2 * size, 2 * size);
  memset(p, b.mirror, 0xff, 2 * size);
  let old_ptr = p.mmap(0, 2 * size, RW, PRIV_ANON);
  ASSERT_MAPPED(old_ptr, 'old_ptr');
  const npages = size >> self.page_shift;
  let map = ALIGN(old_ptr, size);
  ASSERT_EQ(p.madvise(map, size, MADV_HUGEPAGE), 0, 'madvise');
  b.ptr = map;
  fill_ints(p, b.ptr, size / 4, I);
  ASSERT_EQ(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_FLAGS, b, HMM_DMIRROR_FLAG_FAIL_ALLOC), 0, 'FLAGS');
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
  ASSERT_INTS(p, b.mirror, size / 4, I, 'mirror');
  ASSERT_EQ(p.read32(b.ptr + 2048 * 4), 2048, 'ptr[2048]');
  ASSERT_EQ(p.munmap(old_ptr, 2 * size), 0, 'munmap');
  old_ptr = p.mmap(0, 2 * size, RW, PRIV_ANON);
  ASSERT_MAPPED(old_ptr, 'old_ptr');
  map = ALIGN(old_ptr, size);
  ASSERT_EQ(p.madvise(map, size, MADV_HUGEPAGE), 0, 'madvise');
  b.ptr = map;
  fill_ints(p, b.ptr, size / 4, I);
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
  ASSERT_EQ(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_FLAGS, b, HMM_DMIRROR_FLAG_FAIL_ALLOC), 0, 'FLAGS');
  ASSERT_EQ(hmm_migrate_dev_to_sys(self, self.fd, b, npages), 0, 'MIGRATE_TO_SYS');
  ASSERT_EQ(p.read32(b.ptr + 2048 * 4), 2048, 'ptr[2048]');
  b.ptr = old_ptr;
  hmm_buffer_free(p, b);
});

/* The same with the huge zero page and untouched memory. */
TEST_F('hmm', 'migrate_anon_huge_zero_err', (self) => {
  const p = self.p;
  const size = read_pmd_pagesize();
  const b = hmm_buffer_new(p, 2 * size, 2 * size);
  memset(p, b.mirror, 0xff, 2 * size);
  let old_ptr = p.mmap(0, 2 * size, PROT_READ, PRIV_ANON);
  ASSERT_MAPPED(old_ptr, 'old_ptr');
  const npages = size >> self.page_shift;
  let map = ALIGN(old_ptr, size);
  ASSERT_EQ(p.madvise(map, size, MADV_HUGEPAGE), 0, 'madvise');
  b.ptr = map;
  ASSERT_EQ(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_FLAGS, b, HMM_DMIRROR_FLAG_FAIL_ALLOC), 0, 'FLAGS');
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
  ASSERT_INTS(p, b.mirror, size / 4, ZERO, 'mirror');
  const ptr = b.ptr;
  ASSERT_EQ(p.read32(ptr + 2048 * 4), 0, 'ptr[2048]');
  ASSERT_EQ(p.munmap(old_ptr, 2 * size), 0, 'munmap');
  old_ptr = p.mmap(0, 2 * size, PROT_READ, PRIV_ANON);
  ASSERT_MAPPED(old_ptr, 'old_ptr');
  map = ALIGN(old_ptr, size);
  ASSERT_EQ(p.madvise(map, size, MADV_HUGEPAGE), 0, 'madvise');
  b.ptr = map;
  /* the C test reads through its old pointer: the new mapping must have landed there */
  ASSERT_EQ(p.read32(ptr), 0, 'ptr[0]');
  ASSERT_EQ(hmm_dmirror_cmd(self, self.fd, HMM_DMIRROR_FLAGS, b, HMM_DMIRROR_FLAG_FAIL_ALLOC), 0, 'FLAGS');
  expect_cmd(hmm_migrate_sys_to_dev(self, self.fd, b, npages), b, npages);
  ASSERT_INTS(p, b.ptr, size / 4, ZERO, 'ptr');
  b.ptr = old_ptr;
  hmm_buffer_free(p, b);
});

/* ---------------------------------------------------------------- 38: benchmark */

interface benchmark_results { sys_to_dev_time: number; dev_to_sys_time: number; throughput_s2d: number; throughput_d2s: number; }

/* simulated milliseconds of the test thread (gettimeofday of the simulated machine) */
function get_time_ms(): number { return now() / 1e6; }

/* one size, THP or not: a warm-up round trip, then @iterations timed ones. Return: 0 or the first error. */
function run_migration_benchmark(self: hmm_self, use_thp: boolean, buffer_size: number, iterations: number,
                                 results: benchmark_results): number {
  const p = self.p;
  const npages = buffer_size / self.page_size;
  const b = hmm_buffer_new(p, buffer_size, buffer_size);
  memset(p, b.mirror, 0xff, buffer_size);
  b.ptr = p.mmap(0, buffer_size, RW, PRIV_ANON);
  if (b.ptr < 0) return -1;
  let ret = p.madvise(b.ptr, buffer_size, use_thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  if (ret) return ret;
  fill_ints(p, b.ptr, buffer_size / 4, (i) => i & 0xff);
  if ((ret = hmm_migrate_sys_to_dev(self, self.fd, b, npages))) return ret;
  if ((ret = hmm_migrate_dev_to_sys(self, self.fd, b, npages))) return ret;
  let s2d = 0, d2s = 0;
  for (let i = 0; i < iterations; i++) {
    let start = get_time_ms();
    if ((ret = hmm_migrate_sys_to_dev(self, self.fd, b, npages))) return ret;
    s2d += get_time_ms() - start;
    start = get_time_ms();
    if ((ret = hmm_migrate_dev_to_sys(self, self.fd, b, npages))) return ret;
    d2s += get_time_ms() - start;
  }
  const gib = buffer_size / (1024 * 1024 * 1024);
  results.sys_to_dev_time = s2d / iterations;
  results.dev_to_sys_time = d2s / iterations;
  results.throughput_s2d = gib / (results.sys_to_dev_time / 1000);
  results.throughput_d2s = gib / (results.dev_to_sys_time / 1000);
  hmm_buffer_free(p, b);
  return 0;
}

function print_benchmark_results(name: string, size: number, thp: benchmark_results, reg: benchmark_results): void {
  /* improvement: time saved relative to the small-page time; throughput gained relative to it */
  const pct = (better: number, base: number) => ((better / base) * 100).toFixed(1);
  ksft_print(`=== ${name} (${(size / (1024 * 1024)).toFixed(1)} MB) ===`);
  ksft_print('                     | With THP        | Without THP     | Improvement');
  ksft_print('---------------------------------------------------------------------');
  ksft_print(`Sys->Dev Migration   | ${thp.sys_to_dev_time.toFixed(3)} ms        | ${reg.sys_to_dev_time.toFixed(3)} ms        | ${pct(reg.sys_to_dev_time - thp.sys_to_dev_time, reg.sys_to_dev_time)}%`);
  ksft_print(`Dev->Sys Migration   | ${thp.dev_to_sys_time.toFixed(3)} ms        | ${reg.dev_to_sys_time.toFixed(3)} ms        | ${pct(reg.dev_to_sys_time - thp.dev_to_sys_time, reg.dev_to_sys_time)}%`);
  ksft_print(`S->D Throughput      | ${thp.throughput_s2d.toFixed(2)} GB/s      | ${reg.throughput_s2d.toFixed(2)} GB/s      | ${pct(thp.throughput_s2d - reg.throughput_s2d, reg.throughput_s2d)}%`);
  ksft_print(`D->S Throughput      | ${thp.throughput_d2s.toFixed(2)} GB/s      | ${reg.throughput_d2s.toFixed(2)} GB/s      | ${pct(thp.throughput_d2s - reg.throughput_d2s, reg.throughput_d2s)}%`);
}

/**
 * The benchmark's largest size. Linux runs up to 128 THPs (256 MiB); the
 * simulated machine of the benchmark has BENCHMARK_RAM_BYTES of RAM, and a
 * private-device round trip needs the buffer, its mirror and the device's
 * backing pages at once, so the top size is scaled to 16 THPs (32 MiB).
 */
export const BENCHMARK_MAX_THPS = 16;
export const BENCHMARK_RAM_BYTES = 160 * 1024 * 1024;

/* Migration round trips with and without THP, timed in simulated time. */
TEST_F('hmm', 'benchmark_thp_migration', (self) => {
  const thp_size = 2 * 1024 * 1024;
  const iterations = 5;
  ksft_print('HMM THP Migration Benchmark');
  ksft_print('---------------------------');
  ksft_print(`System page size: ${self.page_size} bytes`);
  ksft_print(`Times are simulated (lib/sim/costs.ts); the largest size is scaled from 128 to ${BENCHMARK_MAX_THPS} THPs ` +
    `(${BENCHMARK_MAX_THPS * 2} MB) to fit the simulated RAM of ${BENCHMARK_RAM_BYTES / (1024 * 1024)} MB.`);
  const sizes = [thp_size / 4, thp_size / 2, thp_size, thp_size * 2, thp_size * 4, thp_size * 8, thp_size * BENCHMARK_MAX_THPS];
  const names = ['Small Buffer (512KB)', 'Half THP Size (1MB)', 'Single THP Size (2MB)', 'Two THP Size (4MB)',
    'Four THP Size (8MB)', 'Eight THP Size (16MB)', `${BENCHMARK_MAX_THPS} THP Size (${BENCHMARK_MAX_THPS * 2}MB, scaled from 256MB)`];
  for (let i = 0; i < sizes.length; i++) {
    if (sizes[i] > 0x7fffffff) break;
    const thp: benchmark_results = { sys_to_dev_time: 0, dev_to_sys_time: 0, throughput_s2d: 0, throughput_d2s: 0 };
    const reg: benchmark_results = { ...thp };
    ASSERT_EQ(run_migration_benchmark(self, true, sizes[i], iterations, thp), 0, 'run_migration_benchmark(THP)');
    ASSERT_EQ(run_migration_benchmark(self, false, sizes[i], iterations, reg), 0, 'run_migration_benchmark(no THP)');
    print_benchmark_results(names[i], sizes[i], thp, reg);
  }
}, 120);

/**
 * register_huge_tests() - register tests 30 to 38 with the caller's
 * TEST_F, in file order.
 * @register: hmm-tests.ts's TEST_F.
 */
export function register_huge_tests(register: Registrar): void {
  for (const args of pending) register(...args);
}
