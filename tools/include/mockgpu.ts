/*
 * tools/include/mockgpu.ts - the user-space library of the mock GPU, what
 * a CUDA-like runtime would be over /dev/mockgpu0: open the device,
 * create a context, launch a kernel over a malloc'd buffer, wait, read the
 * counters.
 *
 * Every call is a generator that issues the raw ioctl from the calling
 * simulated thread (include/uapi/linux/mockgpu.ts), because the GPU runs
 * as simulated threads (SMs, the fault bottom half, the channel engines)
 * that only make progress while a Scheduler runs. gpu_session() gives a
 * test or tool one: it runs a body as a user thread of the process and
 * returns when every thread has finished.
 */
import type { Process } from './nolibc/nolibc.js';
import { Scheduler, current, type Sleepable } from '../../lib/sim/sched.js';
import { machineTime } from '../../lib/sim/clock.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_SHARED, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import {
  MOCKGPU_IOCTL_ADVISE, MOCKGPU_IOCTL_MIGRATE, MOCKGPU_IOCTL_GET_ATTR, MOCKGPU_MIGRATE_SIZE, MOCKGPU_ATTR_SIZE,
  MOCKGPU_IOCTL_CTX_CREATE, MOCKGPU_IOCTL_LAUNCH, MOCKGPU_IOCTL_WAIT, MOCKGPU_IOCTL_STATS, MOCKGPU_LAUNCH_SIZE,
  MOCKGPU_STATS_SIZE, MOCKGPU_NR_STATS, MOCKGPU_WAIT_SIZE, MOCKGPU_OP_READ, MOCKGPU_PATTERN_SEQUENTIAL,
  mockgpu_launch_decode, mockgpu_launch_encode, mockgpu_stat_names, mockgpu_u64s_decode, mockgpu_u64s_encode,
  type mockgpu_launch, type mockgpu_stat_name,
} from '../../include/uapi/linux/mockgpu.js';

/** What a kernel launch needs; unset fields default (sequential read of the buffer, 4-byte elements). */
export type KernelSpec = Partial<Omit<mockgpu_launch, 'ctx' | 'fence'>> & { base: number; size: number };

/** The counters as a record (MOCKGPU_IOCTL_STATS). */
export type GpuStats = Record<mockgpu_stat_name, number>;

/** The result of a WAIT: the launch error (0 or -errno) and the READ checksum. */
export interface WaitResult { status: number; checksum: number; }

/** An open /dev/mockgpu0 of one process, with a page of its memory for argument blocks. */
export class GpuHandle {
  constructor(readonly p: Process, readonly fd: number, private readonly scratch: number) {}

  private *call(cmd: number, block: Uint8Array, outLen: number): Sleepable<{ ret: number; out: Uint8Array }> {
    yield* this.p.sys.write(this.scratch, block);
    const ret = yield* this.p.sys.ioctl(this.fd, cmd, this.scratch);
    const out = new Uint8Array(outLen);
    if (ret === 0 && outLen > 0) yield* this.p.sys.read(this.scratch, out);
    return { ret, out };
  }

  /** ctxCreate() - a new context id, or -errno. */
  *ctxCreate(): Sleepable<number> {
    const { ret, out } = yield* this.call(MOCKGPU_IOCTL_CTX_CREATE, mockgpu_u64s_encode([0]), 8);
    return ret < 0 ? ret : mockgpu_u64s_decode(out, 1)[0]!;
  }

  /** launch() - start @spec on @ctx. Return: the launch's sequence number, or -errno. */
  *launch(ctx: number, spec: KernelSpec): Sleepable<number> {
    const l: mockgpu_launch = { ctx, pattern: MOCKGPU_PATTERN_SEQUENTIAL, op: MOCKGPU_OP_READ, elem: 4, stride: 0,
      count: 0, aux: 0, seed: 1, write_pct: 0, value: 0, fence: 0, ...spec };
    const { ret, out } = yield* this.call(MOCKGPU_IOCTL_LAUNCH, mockgpu_launch_encode(l), MOCKGPU_LAUNCH_SIZE);
    return ret < 0 ? ret : mockgpu_launch_decode(out).fence;
  }

  /** wait() - sleep until every launch of @ctx finished. Return: its status, or { status: -errno } if WAIT failed. */
  *wait(ctx: number): Sleepable<WaitResult> {
    const { ret, out } = yield* this.call(MOCKGPU_IOCTL_WAIT, mockgpu_u64s_encode([ctx, 0, 0]), MOCKGPU_WAIT_SIZE);
    if (ret < 0) return { status: ret, checksum: 0 };
    const w = mockgpu_u64s_decode(out, 3);
    return { status: w[1]!, checksum: w[2]! };
  }

  /** stats() - the per-GPU counters. */
  *stats(): Sleepable<GpuStats> {
    yield* this.p.sys.ioctl(this.fd, MOCKGPU_IOCTL_STATS, this.scratch);
    const out = new Uint8Array(MOCKGPU_STATS_SIZE);
    yield* this.p.sys.read(this.scratch, out);
    const w = mockgpu_u64s_decode(out, MOCKGPU_NR_STATS);
    const s = {} as GpuStats;
    mockgpu_stat_names.forEach((n, i) => { s[n] = w[i]!; });
    return s;
  }

  /** advise() - MOCKGPU_IOCTL_ADVISE: @advice (MOCKGPU_ADVISE_*) for @proc on [base, base + len). Return: 0 or -errno. */
  *advise(base: number, len: number, advice: number, proc = 0): Sleepable<number> {
    return (yield* this.call(MOCKGPU_IOCTL_ADVISE, mockgpu_u64s_encode([base, len, advice, proc]), 0)).ret;
  }

  /** migrate() - MOCKGPU_IOCTL_MIGRATE [base, base + len) to @proc. Return: pages moved, or -errno. */
  *migrate(base: number, len: number, proc: number): Sleepable<number> {
    const { ret, out } = yield* this.call(MOCKGPU_IOCTL_MIGRATE, mockgpu_u64s_encode([base, len, proc, 0]), MOCKGPU_MIGRATE_SIZE);
    return ret < 0 ? ret : mockgpu_u64s_decode(out, 4)[3]!;
  }

  /** getAttr() - MOCKGPU_IOCTL_GET_ATTR of [base, base + len), or -errno. */
  *getAttr(base: number, len: number): Sleepable<{ preferred: number; accessed_by: number; read_mostly: number; nr_ranges: number } | number> {
    const { ret, out } = yield* this.call(MOCKGPU_IOCTL_GET_ATTR, mockgpu_u64s_encode([base, len, 0, 0, 0, 0]), MOCKGPU_ATTR_SIZE);
    if (ret < 0) return ret;
    const w = mockgpu_u64s_decode(out, 6);
    return { preferred: w[2]!, accessed_by: w[3]!, read_mostly: w[4]!, nr_ranges: w[5]! };
  }

  /** close() - close the device. */
  *close(): Sleepable<number> {
    return yield* this.p.sys.close(this.fd);
  }
}

/**
 * gpuOpen() - open /dev/mockgpu<@minor> (0 unless the machine has two GPUs) in @p.
 * Return: the handle, or -errno from open or the scratch mmap.
 */
export function* gpuOpen(p: Process, minor = 0): Sleepable<GpuHandle | number> {
  const fd = yield* p.sys.open(`/dev/mockgpu${minor}`, 2);
  if (fd < 0) return fd;
  /* shared: never merges with the caller's private buffers, so the GPU never prefetches the ioctl argument page */
  const scratch = yield* p.sys.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  if (scratch < 0) return scratch;
  return new GpuHandle(p, fd, scratch);
}

/**
 * gpuSession() - run @body as a user thread of @p on a fresh Scheduler and
 * return its result once every thread (the GPU's included) has finished.
 * @opts: Scheduler options (mode 'random' with a seed to shake interleavings).
 */
export function gpuSession<T>(p: Process, body: () => Sleepable<T>,
                              opts: ConstructorParameters<typeof Scheduler>[0] = {}): T {
  const s = new Scheduler(opts);
  const t = s.spawn(`${p.task.comm}-gpu`, body, 'user', p.task);
  s.run();
  /* the caller continues after everything the session did (Lamport: its clock catches up) */
  const me = current();
  me.vtime = Math.max(me.vtime, machineTime());
  return t.result as T;
}

/**
 * gpuRunKernel() - open, create a context, launch @spec, wait, read the
 * counters and close, all in one session. Return: the wait result and stats.
 */
export function gpuRunKernel(p: Process, spec: KernelSpec): WaitResult & { stats: GpuStats } {
  return gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(`open /dev/mockgpu0: ${g}`);
    const ctx = yield* g.ctxCreate();
    const seq = yield* g.launch(ctx, spec);
    if (seq < 0) return { status: seq, checksum: 0, stats: yield* g.stats() };
    const r = yield* g.wait(ctx);
    const stats = yield* g.stats();
    yield* g.close();
    return { ...r, stats };
  });
}
