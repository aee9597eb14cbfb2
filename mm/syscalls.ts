/*
 * mm/syscalls.ts - the system calls of the simulated machine.
 *
 * Models the SYSCALL_DEFINE entry points (mm/mmap.c, mm/mprotect.c,
 * mm/madvise.c, mm/mremap.c, kernel/fork.c, kernel/exit.c, fs/open.c,
 * fs/read_write.c, fs/ioctl.c) as
 * functions of the calling task. Each returns what the raw syscall
 * returns: a value, or a negative errno. A syscall costs SYSCALL_NS of
 * simulated time.
 */
import type { task_struct } from '../include/linux/sched.js';
import { EBADF, ESRCH } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { charge } from '../lib/sim/clock.js';
import { SYSCALL_NS } from '../lib/sim/costs.js';
import { ksys_mmap_pgoff, __vm_munmap } from './mmap.js';
import { do_mprotect_pkey } from './mprotect.js';
import { do_madvise } from './madvise.js';
import { kernel_clone, do_exit, kernel_wait4, kill_pid, W_EXITCODE } from './task.js';
import {
  do_sys_open, close_fd, vfs_ioctl, fget, ksys_pread64, ksys_pwrite64, ksys_read, ksys_write, do_sys_ftruncate,
} from './file.js';
import { do_mremap } from './mremap.js';
import { BUG } from '../include/asm-generic/bug.js';

export { sys_hmadvise } from './gmem_hmadvise.js';   /* GMEM RFC syscall 453 */

function mm_of(t: task_struct) {
  if (t.mm === null) BUG(`syscall from task ${t.pid} without mm`);
  return t.mm;
}

/** sys_mmap() - mmap(2); off in bytes. Return: address or -errno. */
export function* sys_mmap(t: task_struct, addr: number, len: number, prot: number, flags: number,
                          fd: number, off: number): Sleepable<number> {
  charge(SYSCALL_NS);
  if (off % 4096 !== 0) return -22;
  const f = fd >= 0 ? fget(t, fd) : null;
  if (fd >= 0 && f === null && (flags & 0x20) === 0) return -EBADF;
  return yield* ksys_mmap_pgoff(mm_of(t), addr, len, prot, flags, f, off / 4096);
}

/** sys_munmap() - munmap(2). */
export function* sys_munmap(t: task_struct, addr: number, len: number): Sleepable<number> {
  charge(SYSCALL_NS);
  return yield* __vm_munmap(mm_of(t), addr, len);
}

/** sys_mprotect() - mprotect(2). */
export function* sys_mprotect(t: task_struct, addr: number, len: number, prot: number): Sleepable<number> {
  charge(SYSCALL_NS);
  return yield* do_mprotect_pkey(mm_of(t), addr, len, prot);
}

/** sys_madvise() - madvise(2). */
export function* sys_madvise(t: task_struct, addr: number, len: number, advice: number): Sleepable<number> {
  charge(SYSCALL_NS);
  return yield* do_madvise(mm_of(t), addr, len, advice);
}

/** sys_fork() - fork(2). Return: the child's pid (the caller is the parent). */
export function* sys_fork(t: task_struct): Sleepable<number> {
  charge(SYSCALL_NS);
  return yield* kernel_clone(t);
}

/** sys_exit_group() - exit(2). */
export function* sys_exit_group(t: task_struct, code: number): Sleepable {
  charge(SYSCALL_NS);
  yield* do_exit(t, W_EXITCODE(code));
}

/** sys_wait4() - wait4(2). Return: { pid, status }, pid < 0 on error. */
export function* sys_wait4(t: task_struct, pid: number): Sleepable<{ pid: number; status: number }> {
  charge(SYSCALL_NS);
  return yield* kernel_wait4(t, pid);
}

/** sys_kill() - kill(2). */
export function* sys_kill(_t: task_struct, pid: number, sig: number): Sleepable<number> {
  charge(SYSCALL_NS);
  const r = yield* kill_pid(pid, sig);
  return r === -ESRCH ? -ESRCH : r;
}

/** sys_openat() - open(2) of a path. */
export function* sys_openat(t: task_struct, path: string, flags: number): Sleepable<number> {
  charge(SYSCALL_NS);
  return yield* do_sys_open(t, path, flags);
}

/** sys_close() - close(2). */
export function* sys_close(t: task_struct, fd: number): Sleepable<number> {
  charge(SYSCALL_NS);
  return yield* close_fd(t, fd);
}

/** sys_mremap() - mremap(2). Return: the (new) address or -errno (mm/mremap.ts). */
export function* sys_mremap(t: task_struct, addr: number, old_len: number, new_len: number, flags: number,
                            new_addr = 0): Sleepable<number> {
  charge(SYSCALL_NS);
  return yield* do_mremap(mm_of(t), addr, old_len, new_len, flags, new_addr);
}

/** sys_pread64() - pread(2): count bytes at file offset pos into user memory at buf. */
export function* sys_pread64(t: task_struct, fd: number, buf: number, count: number, pos: number): Sleepable<number> {
  charge(SYSCALL_NS);
  return yield* ksys_pread64(t, fd, buf, count, pos);
}

/** sys_pwrite64() - pwrite(2): count bytes from user memory at buf to file offset pos. */
export function* sys_pwrite64(t: task_struct, fd: number, buf: number, count: number, pos: number): Sleepable<number> {
  charge(SYSCALL_NS);
  return yield* ksys_pwrite64(t, fd, buf, count, pos);
}

/** sys_read() - read(2) at the file position. */
export function* sys_read(t: task_struct, fd: number, buf: number, count: number): Sleepable<number> {
  charge(SYSCALL_NS);
  return yield* ksys_read(t, fd, buf, count);
}

/** sys_write() - write(2) at the file position. */
export function* sys_write(t: task_struct, fd: number, buf: number, count: number): Sleepable<number> {
  charge(SYSCALL_NS);
  return yield* ksys_write(t, fd, buf, count);
}

/** sys_ftruncate() - ftruncate(2). */
export function* sys_ftruncate(t: task_struct, fd: number, length: number): Sleepable<number> {
  charge(SYSCALL_NS);
  return yield* do_sys_ftruncate(t, fd, length);
}

/** sys_ioctl() - ioctl(2): arg is a user pointer or a value. */
export function* sys_ioctl(t: task_struct, fd: number, cmd: number, arg: number): Sleepable<number> {
  charge(SYSCALL_NS);
  return yield* vfs_ioctl(t, fd, cmd, arg);
}
