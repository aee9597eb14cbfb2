/*
 * include/uapi/asm-generic/errno.ts - error numbers, as user space sees them.
 *
 * Models include/uapi/asm-generic/errno-base.h and errno.h. Kernel functions
 * in this tree return 0 or a negative errno (-ENOMEM), exactly like the raw
 * system call ABI; syscalls hand the negative value straight to user space.
 */
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const EBADF = 9;
export const ECHILD = 10;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOTTY = 25;
export const EFBIG = 27;
export const ENOSPC = 28;
export const ESPIPE = 29;
export const EROFS = 30;
export const ERANGE = 34;
export const EDEADLK = 35;
export const ENOSYS = 38;
export const EOVERFLOW = 75;
export const EOPNOTSUPP = 95;
export const ETIMEDOUT = 110;
export const EHWPOISON = 133;

/** Names for printing: errno_name(12) === 'ENOMEM'. */
const names: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 4: 'EINTR', 5: 'EIO', 6: 'ENXIO', 7: 'E2BIG',
  9: 'EBADF', 10: 'ECHILD', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT',
  16: 'EBUSY', 17: 'EEXIST', 19: 'ENODEV', 20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL',
  23: 'ENFILE', 24: 'EMFILE', 25: 'ENOTTY', 27: 'EFBIG', 28: 'ENOSPC', 29: 'ESPIPE',
  30: 'EROFS', 34: 'ERANGE', 35: 'EDEADLK', 38: 'ENOSYS', 75: 'EOVERFLOW',
  95: 'EOPNOTSUPP', 110: 'ETIMEDOUT', 133: 'EHWPOISON',
};

/** errno_name() - the symbolic name of an errno value (positive or negative). */
export function errno_name(err: number): string {
  return names[Math.abs(err)] ?? `errno ${Math.abs(err)}`;
}

/** IS_ERR_VALUE() - true when a kernel return value is a negative errno. */
export function IS_ERR_VALUE(v: number): boolean {
  return v < 0 && v >= -4095;
}
