/*
 * tools/include/nolibc/nolibc.ts - the user-space view for tests, tools
 * and ported self-tests.
 *
 * Linux has tools/include/nolibc, a minimal libc for self-tests; this is
 * the same idea for the simulated machine. A Process wraps a task and
 * offers its system calls and memory accesses. Every call returns what
 * the raw syscall returns (a value or -errno); a bad memory access throws
 * UserFault (SIGSEGV/SIGBUS), which a test can catch.
 *
 * Two ways to call: the plain methods (p.mmap(...), p.write32(...)) run
 * synchronously on the boot thread and are for single-threaded scenarios;
 * the generator methods under p.sys (yield* p.sys.mmap(...)) run inside a
 * simulated thread spawned on a Scheduler, where they can block and
 * interleave with other threads.
 */
import type { task_struct } from '../../../include/linux/sched.js';
import { current, runSync, type Sleepable } from '../../../lib/sim/sched.js';
import {
  sys_mmap, sys_munmap, sys_mprotect, sys_madvise, sys_fork, sys_exit_group, sys_wait4, sys_kill,
  sys_openat, sys_close, sys_ioctl, sys_mremap, sys_pread64, sys_pwrite64, sys_read, sys_write, sys_ftruncate,
  sys_hmadvise,
} from '../../../mm/syscalls.js';
import { user_read, user_write, user_load, user_store, user_atomic_rmw, UserFault } from '../../../mm/fault.js';
import { SIGKILL } from '../../../include/uapi/asm-generic/signal.js';
import { createProcess, find_task_by_vpid, get_signal } from '../../../mm/task.js';

/** Run a sleepable call as `task` on the current (boot) thread. */
export function runAs<T>(task: task_struct, gen: Sleepable<T>): T {
  const th = current();
  const saved = th.task;
  th.task = task;
  try { return runSync(gen); } finally { th.task = saved; }
}

/** Generator-form system calls of one process, for simulated threads. */
export class Syscalls {
  constructor(private readonly t: task_struct) {}
  mmap(addr: number, len: number, prot: number, flags: number, fd = -1, off = 0) { return sys_mmap(this.t, addr, len, prot, flags, fd, off); }
  munmap(addr: number, len: number) { return sys_munmap(this.t, addr, len); }
  mprotect(addr: number, len: number, prot: number) { return sys_mprotect(this.t, addr, len, prot); }
  madvise(addr: number, len: number, advice: number) { return sys_madvise(this.t, addr, len, advice); }
  hmadvise(hnid: number, addr: number, len: number, advice: number) { return sys_hmadvise(this.t, hnid, addr, len, advice); }
  fork() { return sys_fork(this.t); }
  exit(code: number) { return sys_exit_group(this.t, code); }
  wait(pid = -1) { return sys_wait4(this.t, pid); }
  kill(pid: number, sig: number) { return sys_kill(this.t, pid, sig); }
  open(path: string, flags: number) { return sys_openat(this.t, path, flags); }
  close(fd: number) { return sys_close(this.t, fd); }
  ioctl(fd: number, cmd: number, arg: number) { return sys_ioctl(this.t, fd, cmd, arg); }
  mremap(addr: number, old_len: number, new_len: number, flags: number, new_addr = 0) { return sys_mremap(this.t, addr, old_len, new_len, flags, new_addr); }
  pread(fd: number, buf: number, count: number, pos: number) { return sys_pread64(this.t, fd, buf, count, pos); }
  pwrite(fd: number, buf: number, count: number, pos: number) { return sys_pwrite64(this.t, fd, buf, count, pos); }
  readfd(fd: number, buf: number, count: number) { return sys_read(this.t, fd, buf, count); }
  writefd(fd: number, buf: number, count: number) { return sys_write(this.t, fd, buf, count); }
  ftruncate(fd: number, length: number) { return sys_ftruncate(this.t, fd, length); }
  read(addr: number, buf: Uint8Array) { return user_read(this.t, addr, buf); }
  write(addr: number, buf: Uint8Array) { return user_write(this.t, addr, buf); }
  load(addr: number, size: 1 | 2 | 4 | 8) { return user_load(this.t, addr, size); }
  store(addr: number, size: 1 | 2 | 4 | 8, v: number) { return user_store(this.t, addr, size, v); }
  atomic(addr: number, size: 1 | 2 | 4 | 8, op: (old: number) => number) { return user_atomic_rmw(this.t, addr, size, op); }
}

/** A process as a test or tool sees it. */
export class Process {
  readonly sys: Syscalls;
  constructor(readonly task: task_struct) { this.sys = new Syscalls(task); }

  /** spawn() - a new process with an empty address space. */
  static spawn(comm = 'test'): Process { return new Process(createProcess(comm)); }
  /** of() - the Process of an existing pid (a fork child). */
  static of(pid: number): Process {
    const t = find_task_by_vpid(pid);
    if (t === null) throw new Error(`no process ${pid}`);
    return new Process(t);
  }

  get pid(): number { return this.task.pid; }
  get mm() { return this.task.mm!; }

  /*
   * run() - one call into the kernel and the return to user space: a
   * SIGKILL sent meanwhile (the OOM killer) is delivered there, the process
   * exits and the call does not return (UserFault SIGKILL).
   */
  private run<T>(gen: Sleepable<T>): T {
    let r: T;
    try {
      r = runAs(this.task, gen);
    } catch (e) {
      runAs(this.task, get_signal(this.task));
      throw e;
    }
    if (runAs(this.task, get_signal(this.task))) throw new UserFault(SIGKILL, 0, 0);
    return r;
  }

  mmap(addr: number, len: number, prot: number, flags: number, fd = -1, off = 0): number { return this.run(this.sys.mmap(addr, len, prot, flags, fd, off)); }
  munmap(addr: number, len: number): number { return this.run(this.sys.munmap(addr, len)); }
  mprotect(addr: number, len: number, prot: number): number { return this.run(this.sys.mprotect(addr, len, prot)); }
  madvise(addr: number, len: number, advice: number): number { return this.run(this.sys.madvise(addr, len, advice)); }
  /** hmadvise() - the GMEM RFC's hmadvise(2) (mm/gmem_hmadvise.ts). */
  hmadvise(hnid: number, addr: number, len: number, advice: number): number { return this.run(this.sys.hmadvise(hnid, addr, len, advice)); }
  /** fork() - returns the child Process (the pid is child.pid), or throws on -errno. */
  fork(): Process {
    const pid = this.run(this.sys.fork());
    if (pid < 0) throw new Error(`fork failed: ${pid}`);
    return Process.of(pid);
  }
  exit(code = 0): void { this.run(this.sys.exit(code)); }
  wait(pid = -1): { pid: number; status: number } { return this.run(this.sys.wait(pid)); }
  kill(pid: number, sig: number): number { return this.run(this.sys.kill(pid, sig)); }
  open(path: string, flags = 2): number { return this.run(this.sys.open(path, flags)); }
  close(fd: number): number { return this.run(this.sys.close(fd)); }
  ioctl(fd: number, cmd: number, arg: number): number { return this.run(this.sys.ioctl(fd, cmd, arg)); }
  mremap(addr: number, old_len: number, new_len: number, flags: number, new_addr = 0): number {
    return this.run(this.sys.mremap(addr, old_len, new_len, flags, new_addr));
  }
  /** pread() - pread64(2) into user memory at buf. */
  pread(fd: number, buf: number, count: number, pos: number): number { return this.run(this.sys.pread(fd, buf, count, pos)); }
  /** pwrite() - pwrite64(2) from user memory at buf. */
  pwrite(fd: number, buf: number, count: number, pos: number): number { return this.run(this.sys.pwrite(fd, buf, count, pos)); }
  ftruncate(fd: number, length: number): number { return this.run(this.sys.ftruncate(fd, length)); }

  read(addr: number, len: number): Uint8Array { const b = new Uint8Array(len); this.run(this.sys.read(addr, b)); return b; }
  write(addr: number, buf: Uint8Array): void { this.run(this.sys.write(addr, buf)); }
  read8(addr: number): number { return this.run(this.sys.load(addr, 1)); }
  read32(addr: number): number { return this.run(this.sys.load(addr, 4)); }
  read64(addr: number): number { return this.run(this.sys.load(addr, 8)); }
  write8(addr: number, v: number): void { this.run(this.sys.store(addr, 1, v)); }
  write32(addr: number, v: number): void { this.run(this.sys.store(addr, 4, v)); }
  write64(addr: number, v: number): void { this.run(this.sys.store(addr, 8, v)); }
  atomicAdd32(addr: number, n: number): number { return this.run(this.sys.atomic(addr, 4, (o) => o + n)); }
  /** fill32() - write i + base to every 32-bit word of [addr, addr + len). */
  fill32(addr: number, len: number, base = 0): void {
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    for (let i = 0; i < len / 4; i++) v.setUint32(i * 4, (i + base) >>> 0, true);
    this.write(addr, b);
  }
  /** check32() - the index of the first word that is not i + base, or -1. */
  check32(addr: number, len: number, base = 0): number {
    const b = this.read(addr, len);
    const v = new DataView(b.buffer);
    for (let i = 0; i < len / 4; i++) if (v.getUint32(i * 4, true) !== ((i + base) >>> 0)) return i;
    return -1;
  }
}
