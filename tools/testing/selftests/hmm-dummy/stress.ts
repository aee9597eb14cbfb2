/*
 * tools/testing/selftests/hmm-dummy/stress.ts - the three stress tests of
 * the 2015 HMM dummy suite (stress_anon001..003), our own code after
 * shared/reference/hmm-dummy-catalog.md section 3.2.
 *
 * stress_anon001 needs memory pressure with swap: the C test maps 512
 * buffers of 2 MiB (1 GiB, plus as much again in host-side mirrors) and
 * passes once the second pass over them had to re-populate at least one
 * buffer's worth of pages, i.e. once reclaim invalidated mirrored pages.
 * The simulated machine holds swapped data in host memory, so the port
 * keeps the algorithm (rounds, doubling, the pass criterion) but scales
 * the slot count (STRESS_ANON001_SLOTS, 16 instead of 512) and boots a
 * small machine (16 MiB of RAM, 256 MiB of swap) so that round 0 already
 * needs four times RAM.
 *
 * stress_anon003 runs its two threads on a random-mode scheduler (seeded),
 * so the device copy and munmap interleave at the page-copy preemption
 * points; the C test relied on real CPUs and a random 0..32 us sleep.
 */
import type { Process } from '../../../include/nolibc/nolibc.js';
import { Scheduler, sched_yield, type Sleepable } from '../../../../lib/sim/sched.js';
import { schedule_timeout } from '../../../../lib/sim/clock.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../../../include/uapi/asm-generic/mman.js';
import {
  HMM_DUMMY_STRUCT_SIZE, HMM_DUMMY_READ, hmm_dummy_rw_encode,
} from '../../../../include/uapi/linux/hmm_dummy.js';
import {
  hmm_ctx, hmm_ctx_init, hmm_ctx_fini, hmm_buffer_new_anon, hmm_buffer_nbytes, hmm_buffer_mirror_read,
  hmm_buffer_free, ints_fill, ints_check, hmm_random, type hmm_buffer,
} from './hmm_test_framework.js';
import type { hmm_dummy_test } from './tests.js';

const K = (k: number) => k;

/** Slots of stress_anon001 in this port (512 in C; see the header). */
export const STRESS_ANON001_SLOTS = 16;
/** Rounds after which stress_anon001 gives up (C: until mmap/OOM fails). */
export const STRESS_ANON001_MAX_ROUNDS = 4;
/** Iterations of stress_anon002 (512 in C). */
export const STRESS_ANON002_ITERATIONS = 512;
/** Rounds of stress_anon003 (1024 in C). */
export const STRESS_ANON003_ROUNDS = 1024;

function with_ctx(p: Process, out: string[], title: string, body: (ctx: hmm_ctx) => number): number {
  const ctx = new hmm_ctx(p, title, out);
  if (hmm_ctx_init(ctx)) return -1;
  const ret = body(ctx);
  hmm_ctx_fini(ctx);
  return ret;
}

function mirror_ok(ctx: hmm_ctx, b: hmm_buffer): boolean {
  const r = ints_check(ctx.p, b.mirror, hmm_buffer_nbytes(b), K);
  if (r.k >= 0) ctx.out.push(`(EE) ${b.name}: invalid value [${r.k}] got ${r.got}`);
  return r.k < 0;
}

const stress_anon001: hmm_dummy_test = {
  name: 'stress_anon001', title: 'anon page reclaimation test',
  boot: { ram_bytes: 16 << 20, swap_bytes: 256 << 20 } as never,
  run: (p, out) => with_ctx(p, out, 'anon page reclaimation test', (ctx) => {
    let size = 512 << 12;
    for (let round = 0; round < STRESS_ANON001_MAX_ROUNDS; round++) {
      const bufs: hmm_buffer[] = [];
      for (let j = 0; j < STRESS_ANON001_SLOTS; j++) {
        const b = hmm_buffer_new_anon(p, `buffer[${j}]`, size);
        ints_fill(p, b.ptr, size, K);
        hmm_buffer_mirror_read(ctx, b, -1, 0);          /* rc ignored, as in C */
        if (!mirror_ok(ctx, b)) return -1;
        bufs.push(b);
      }
      let nrefaults = 0;
      for (const b of bufs) {
        hmm_buffer_mirror_read(ctx, b, -1, 0);
        nrefaults += b.nfaulted_sys_pages;
        if (!mirror_ok(ctx, b)) return -1;
      }
      for (const b of bufs) hmm_buffer_free(b);
      if (nrefaults >= size >> 12) { out.push(`round ${round}: ${nrefaults} refaults`); return 0; }
      out.push(`(..) Failed to exhaust memory (${nrefaults})`);
      size *= 2;
    }
    return -1;
  }),
};

const stress_anon002: hmm_dummy_test = {
  name: 'stress_anon002', title: 'anon allocation and read stress test',
  run: (p, out) => with_ctx(p, out, 'anon allocation and read stress test', (ctx) => {
    for (let i = 0; i < STRESS_ANON002_ITERATIONS; i++) {
      const b = hmm_buffer_new_anon(p, 'buffer', 1024 << 12);
      ints_fill(p, b.ptr, hmm_buffer_nbytes(b), K);
      hmm_buffer_mirror_read(ctx, b, -1, 0);
      const ok = mirror_ok(ctx, b);
      hmm_buffer_free(b);
      if (!ok) return -1;
    }
    return 0;
  }),
};

/* stress_anon003: a reader thread READs buffers the main thread munmaps under it. */
const stress_anon003: hmm_dummy_test = {
  name: 'stress_anon003', title: 'anon read access and munmap stress test',
  run: (p, out) => with_ctx(p, out, 'anon read access and munmap stress test', (ctx) => {
    const NPAGES = 128, LEN = NPAGES << 12, RW = PROT_READ | PROT_WRITE, PA = MAP_PRIVATE | MAP_ANONYMOUS;
    const shared = { buffer: null as null | { ptr: number; mirror: number }, c: -1, ret: 0, fails: 0 };
    const s = new Scheduler({ mode: 'random', seed: 2015 });
    const fill = new Uint8Array(LEN);
    const dv = new DataView(fill.buffer);
    for (let k = 0; k < LEN / 4; k++) dv.setInt32(k * 4, k, true);
    s.spawn('main', function* (): Sleepable {
      for (let c = 0; c < STRESS_ANON003_ROUNDS && shared.ret === 0; c++) {
        const ptr = yield* p.sys.mmap(0, LEN, RW, PA);
        const mirror = yield* p.sys.mmap(0, LEN, RW, PA);
        yield* p.sys.write(ptr, fill);
        const buf = { ptr, mirror };
        shared.buffer = buf;
        shared.c = c;
        yield* schedule_timeout(hmm_random() % 32000);
        yield* p.sys.munmap(ptr, LEN);
        buf.ptr = 0;
        while (shared.buffer !== null && shared.ret === 0) yield* sched_yield();
        yield* p.sys.munmap(mirror, LEN);
      }
    }, 'user', p.task);
    s.spawn('reader', function* (): Sleepable {
      const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
      for (let c = 0; c < STRESS_ANON003_ROUNDS && shared.ret === 0; c++) {
        while (shared.buffer === null || shared.c !== c) yield* sched_yield();
        const buf = shared.buffer;
        hmm_dummy_rw_encode(raw, { address: buf.ptr, size: LEN, ptr: buf.mirror, nsys_pages: 0, nfaulted_sys_pages: 0, ndev_pages: 0, nfaulted_dev_pages: 0 });
        yield* p.sys.write(ctx.arg, raw);
        const rc = yield* p.sys.ioctl(ctx.fd, HMM_DUMMY_READ, ctx.arg);
        if (rc === 0) {
          const got = new Uint8Array(LEN);
          yield* p.sys.read(buf.mirror, got);
          const v = new DataView(got.buffer);
          for (let k = 0; k < LEN / 4; k++) {
            if (v.getInt32(k * 4, true) !== k) {
              out.push(`Read succeeded but with invalid value [${k}] = ${v.getInt32(k * 4, true)}`);
              shared.ret = -1;
              break;
            }
          }
        } else shared.fails++;
        shared.buffer = null;
      }
    }, 'user', p.task);
    s.run();
    out.push(`${STRESS_ANON003_ROUNDS} rounds, ${shared.fails} reads failed (EFAULT after munmap), all others exact`);
    return shared.ret;
  }),
};

export const stress_tests: hmm_dummy_test[] = [stress_anon001, stress_anon002, stress_anon003];
export { hmm_buffer_free, hmm_buffer_mirror_read };
