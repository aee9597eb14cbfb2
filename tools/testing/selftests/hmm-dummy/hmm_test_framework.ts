/*
 * tools/testing/selftests/hmm-dummy/hmm_test_framework.ts - the helpers of
 * Jerome Glisse's 2015 user-space suite for the HMM dummy driver
 * (hmm_test_framework.{c,h} of glisse/hmm-dummy-test-suite, HEAD 0680c47),
 * written again for the simulated machine from the description in
 * shared/reference/hmm-dummy-catalog.md section 2.
 *
 * A test is a "program": it gets a fresh machine and a process (Process,
 * tools/include/nolibc) and returns 0 (pass) or -1 (fail), printing one
 * line "(OK)[argv0] test name" or "(EE)[argv0] test name" as the C
 * programs did. Differences from C, and why:
 *  - "malloc" is an anonymous mmap: the host-side mirror buffer must be in
 *    the process's address space, where the driver reaches it with
 *    copy_to_user/copy_from_user; the 128-byte ioctl struct lives in a
 *    scratch page of the process for the same reason;
 *  - helpers return 0 or -errno (C: -1 and errno); the EINTR retry loop is
 *    kept, with its quirk (it retries while the LAST error was EINTR),
 *    which the driver never triggers;
 *  - a fatal helper error throws HmmTestFatal (C: longjmp into a frame
 *    that had returned, i.e. undefined behaviour): the test fails;
 *  - hmm_random() is a seeded generator (tests must be reproducible), not
 *    /dev/urandom; hmm_nanosleep() sleeps in simulated time;
 *  - ftruncate and unlink are looked up on Process at run time; without
 *    them the helpers call sys_ftruncate() as the process, and unlink
 *    removes the name from mm/file.ts's path table (there is no unlink(2)
 *    yet).
 */
import { Process, runAs } from '../../../include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../../../include/linux/mm.js';
import {
  PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS,
} from '../../../../include/uapi/asm-generic/mman.js';
import { EINTR } from '../../../../include/uapi/asm-generic/errno.js';
import {
  HMM_DUMMY_STRUCT_SIZE, HMM_DUMMY_EXPOSE_MM, HMM_DUMMY_READ, HMM_DUMMY_WRITE, HMM_DUMMY_MIGRATE_TO,
  hmm_dummy_rw_decode, hmm_dummy_rw_encode, hmm_dummy_migrate_decode, hmm_dummy_migrate_encode, hmm_dummy_path,
} from '../../../../include/uapi/linux/hmm_dummy.js';
import { O_RDWR, O_CREAT, O_EXCL, unregister_path } from '../../../../mm/file.js';
import { sys_ftruncate } from '../../../../mm/syscalls.js';
import { Rng } from '../../../../lib/sim/rng.js';

/** A fatal helper error (the C helpers longjmp back into the test). */
export class HmmTestFatal extends Error { override name = 'HmmTestFatal'; }

/** struct hmm_ctx - one test's device binding. */
export class hmm_ctx {
  fd = -1;
  pid = 0;
  page_size = PAGE_SIZE;
  page_shift = 12;
  /* scratch page for the ioctl structs */
  arg = 0;
  /* what the test printed */
  readonly out: string[];
  constructor(readonly p: Process, readonly test_name: string, out: string[]) { this.out = out; }
}

/** struct hmm_buffer - a range the device accesses and its host-side mirror. */
export class hmm_buffer {
  ptr = 0;
  mirror = 0;
  npages = 0;
  fd = -1;
  nsys_pages = 0;
  nfaulted_sys_pages = 0;
  ndev_pages = 0;
  nfaulted_dev_pages = 0;
  constructor(readonly p: Process, readonly name: string) {}
}

let rng = new Rng(0x2015);
/** hmm_test_seed() - reseed hmm_random() (every test run starts from the same seed). */
export function hmm_test_seed(seed = 0x2015): void { rng = new Rng(seed); }
/** hmm_random() - 32 random bits (seeded; the C helper read /dev/urandom). */
export function hmm_random(): number { return rng.int(2 ** 32); }

function fatal(msg: string): never { throw new HmmTestFatal(msg); }

/**
 * hmm_ctx_init() - open /dev/hmm_dummy_device00 and mirror the process.
 * Return: 0, or the failing call's -errno (after printing what failed).
 */
export function hmm_ctx_init(ctx: hmm_ctx): number {
  const path = hmm_dummy_path(0, 0);
  ctx.fd = ctx.p.open(path, O_RDWR);
  if (ctx.fd < 0) { ctx.out.push(`could not open hmm dummy driver (${path})`); return ctx.fd; }
  const rc = ctx.p.ioctl(ctx.fd, HMM_DUMMY_EXPOSE_MM, 0);
  if (rc) { ctx.out.push(`hmm dummy driver register failed (${rc})`); return rc; }
  ctx.pid = ctx.p.pid;
  ctx.arg = ctx.p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  return 0;
}

/** hmm_ctx_fini() - close the device (which unregisters the mirror). */
export function hmm_ctx_fini(ctx: hmm_ctx): void {
  if (ctx.fd >= 0) ctx.p.close(ctx.fd);
  ctx.fd = -1;
}

function buffer_new(p: Process, name: string, nbytes: number, flags: number, fd: number): hmm_buffer {
  if (nbytes === 0) fatal(`hmm_buffer_new(${name}): zero size`);
  const b = new hmm_buffer(p, name);
  b.npages = Math.ceil(nbytes / PAGE_SIZE);
  b.mirror = p.mmap(0, b.npages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  b.ptr = p.mmap(0, b.npages * PAGE_SIZE, PROT_READ | PROT_WRITE, flags, fd, 0);
  b.fd = fd;
  if (b.mirror < 0 || b.ptr < 0) fatal(`hmm_buffer_new(${name}): mmap failed (${b.ptr < 0 ? b.ptr : b.mirror})`);
  return b;
}

/** hmm_buffer_new_anon() - private anonymous buffer of @nbytes (mirror uninitialised). */
export function hmm_buffer_new_anon(p: Process, name: string, nbytes: number): hmm_buffer {
  return buffer_new(p, name, nbytes, MAP_PRIVATE | MAP_ANONYMOUS, -1);
}
/** hmm_buffer_new_share() - shared anonymous (shmem-backed) buffer. */
export function hmm_buffer_new_share(p: Process, name: string, nbytes: number): hmm_buffer {
  return buffer_new(p, name, nbytes, MAP_SHARED | MAP_ANONYMOUS, -1);
}
/** hmm_buffer_new_file() - MAP_SHARED read/write mapping of @fd at offset 0 (fd kept, never closed). */
export function hmm_buffer_new_file(p: Process, name: string, fd: number, nbytes: number): hmm_buffer {
  return buffer_new(p, name, nbytes, MAP_SHARED, fd);
}

export function hmm_buffer_nbytes(b: hmm_buffer): number { return b.npages * PAGE_SIZE; }

function put_rw(ctx: hmm_ctx, address: number, size: number, ptr: number): void {
  const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
  hmm_dummy_rw_encode(raw, { address, size, ptr, nsys_pages: 0, nfaulted_sys_pages: 0, ndev_pages: 0, nfaulted_dev_pages: 0 });
  ctx.p.write(ctx.arg, raw);
}

function get_counters(ctx: hmm_ctx, b: hmm_buffer): void {
  const s = hmm_dummy_rw_decode(ctx.p.read(ctx.arg, HMM_DUMMY_STRUCT_SIZE));
  b.nsys_pages = s.nsys_pages;
  b.nfaulted_sys_pages = s.nfaulted_sys_pages;
  b.ndev_pages = s.ndev_pages;
  b.nfaulted_dev_pages = s.nfaulted_dev_pages;
}

/* the EINTR loop, with the C quirk: errno is never cleared by a success */
function ioctl_eintr(ctx: hmm_ctx, cmd: number): number {
  let rc: number, last = 0;
  do {
    rc = ctx.p.ioctl(ctx.fd, cmd, ctx.arg);
    if (rc < 0) last = -rc;
  } while (last === EINTR);
  return rc;
}

/**
 * hmm_buffer_mirror_read() - READ: the device copies @size bytes (-1: the
 * whole buffer) at b.ptr into b.mirror + @offset. The device address is
 * always the buffer start (the 2015 helper's quirk: @offset moves only the
 * destination). Return: 0 (counters copied into @b) or -errno.
 */
export function hmm_buffer_mirror_read(ctx: hmm_ctx, b: hmm_buffer, size: number, offset: number): number {
  put_rw(ctx, b.ptr, size === -1 ? hmm_buffer_nbytes(b) : size, b.mirror + offset);
  const rc = ioctl_eintr(ctx, HMM_DUMMY_READ);
  if (rc) return rc;
  get_counters(ctx, b);
  return 0;
}

/** hmm_buffer_mirror_write() - WRITE of the whole buffer from b.mirror (@size and @offset ignored, as in C). */
export function hmm_buffer_mirror_write(ctx: hmm_ctx, b: hmm_buffer, _size: number, _offset: number): number {
  put_rw(ctx, b.ptr, hmm_buffer_nbytes(b), b.mirror);
  const rc = ioctl_eintr(ctx, HMM_DUMMY_WRITE);
  if (rc) return rc;
  get_counters(ctx, b);
  return 0;
}

/** hmm_buffer_mirror_migrate_to() - MIGRATE_TO of the whole buffer; failure is fatal. */
export function hmm_buffer_mirror_migrate_to(ctx: hmm_ctx, b: hmm_buffer): number {
  const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
  hmm_dummy_migrate_encode(raw, { address: b.ptr, size: hmm_buffer_nbytes(b), nfaulted_sys_pages: 0, nfaulted_dev_pages: 0 });
  ctx.p.write(ctx.arg, raw);
  const rc = ctx.p.ioctl(ctx.fd, HMM_DUMMY_MIGRATE_TO, ctx.arg);
  if (rc) { ctx.out.push(`(EE:migrate_to) ${rc}`); fatal(`HMM_DUMMY_MIGRATE_TO failed: ${rc}`); }
  b.nfaulted_dev_pages = hmm_dummy_migrate_decode(ctx.p.read(ctx.arg, HMM_DUMMY_STRUCT_SIZE)).nfaulted_dev_pages;
  return 0;
}

/** hmm_buffer_mprotect() - mprotect the whole buffer. Return: 0 or -errno. */
export function hmm_buffer_mprotect(b: hmm_buffer, prot: number): number {
  return b.p.mprotect(b.ptr, hmm_buffer_nbytes(b), prot);
}

/** hmm_buffer_free() - unmap the buffer and its mirror (a file fd is not closed). */
export function hmm_buffer_free(b: hmm_buffer | null): void {
  if (b === null) return;
  b.p.munmap(b.ptr, hmm_buffer_nbytes(b));
  b.p.munmap(b.mirror, hmm_buffer_nbytes(b));
}

/* a Process method the machine may not have yet, or the kernel entry point behind it */
function sys(p: Process, name: string, fallback?: (...a: never[]) => number): (...a: unknown[]) => number {
  const f = (p as unknown as Record<string, unknown>)[name];
  if (typeof f === 'function') return (f as (...a: unknown[]) => number).bind(p);
  if (fallback !== undefined) return fallback as (...a: unknown[]) => number;
  fatal(`missing core feature: ${name}(2) on nolibc Process`);
}

/**
 * hmm_create_file() - a new sparse file of @size bytes (rounded up to a
 * page) at the first free /tmp/hmmtmp<N>. Return: the fd (and its path in
 * @path_out[0]), or -1.
 */
export function hmm_create_file(p: Process, size: number, path_out: string[] = []): number {
  size = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
  for (let i = 0; i < 999; i++) {
    const path = `/tmp/hmmtmp${i}`;
    const fd = p.open(path, O_CREAT | O_EXCL | O_RDWR);
    if (fd < 0) continue;
    let r: number;
    do r = hmm_ftruncate(p, fd, size); while (r === -EINTR);
    if (r < 0) { hmm_unlink(p, path); return -1; }
    path_out[0] = path;
    return fd;
  }
  return -1;
}

/** unlink(2): Process.unlink, or removing the name from the path table (mm/file.ts has no unlink yet). */
export function hmm_unlink(p: Process, path: string): number {
  return sys(p, 'unlink', (path_: string) => { unregister_path(path_); return 0; })(path);
}
/** ftruncate(2): Process.ftruncate, or the system call itself run as the process. */
export function hmm_ftruncate(p: Process, fd: number, size: number): number {
  return sys(p, 'ftruncate', (fd_: number, size_: number) => runAs(p.task, sys_ftruncate(p.task, fd_, size_)))(fd, size);
}

/* the host is little-endian (as x86-64 and the simulated machine): Int32Array views are the ints */
const LE = new Uint8Array(new Int32Array([1]).buffer)[0] === 1;

/* patterns are built once per (function, size): the tests fill and check millions of ints */
const patterns = new WeakMap<(k: number) => number, Map<number, Int32Array>>();
function pattern(f: (k: number) => number, nints: number): Int32Array {
  let m = patterns.get(f);
  if (m === undefined) { m = new Map(); patterns.set(f, m); }
  let a = m.get(nints);
  if (a === undefined) {
    a = new Int32Array(nints);
    for (let k = 0; k < nints; k++) a[k] = f(k);
    m.set(nints, a);
  }
  return a;
}

/** ints_fill() - int k of [addr, addr + nbytes) := f(k) (the tests' "k" patterns). */
export function ints_fill(p: Process, addr: number, nbytes: number, f: (k: number) => number): void {
  const src = pattern(f, nbytes >> 2);
  if (LE) { p.write(addr, new Uint8Array(src.buffer)); return; }
  const b = new Uint8Array(nbytes);
  const v = new DataView(b.buffer);
  for (let k = 0; k < src.length; k++) v.setInt32(k * 4, src[k], true);
  p.write(addr, b);
}

/** ints_check() - the first index k where the int differs from f(k), or -1 (and the value seen). */
export function ints_check(p: Process, addr: number, nbytes: number, f: (k: number) => number): { k: number; got: number } {
  const b = p.read(addr, nbytes);
  const want = pattern(f, nbytes >> 2);
  if (LE && Buffer.from(b.buffer, b.byteOffset, nbytes).equals(Buffer.from(want.buffer))) return { k: -1, got: 0 };
  const dv = new DataView(b.buffer, b.byteOffset);
  for (let k = 0; k < want.length; k++) {
    const got = dv.getInt32(k * 4, true);
    if (got !== want[k]) return { k, got };
  }
  return { k: -1, got: 0 };
}
