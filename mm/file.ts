/*
 * mm/file.ts - open files, the descriptor table and device nodes.
 *
 * The tree has no fs/: this file models, in the small, fs/open.c
 * (do_sys_open, close), fs/file_table.c (fget/fput), fs/ioctl.c and
 * drivers/char/misc.c (misc_register: a named character device with its
 * file_operations, reachable as /dev/<name>). Regular files are tmpfs
 * files (mm/shmem.ts) in the same table; fs/read_write.c (pread, pwrite,
 * read, write) and do_sys_ftruncate() are at the end.
 */
import type { file, file_operations, inode, task_struct } from '../include/linux/sched.js';
import {
  EBADF, EMFILE, ENODEV, ENOENT, ENOTTY, EINVAL, EEXIST, EISDIR, ENOTDIR, EOPNOTSUPP, EACCES, EFAULT,
} from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { copy_to_user, copy_from_user } from './fault.js';

export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_ACCMODE = 0o3;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const O_DIRECTORY = 0o200000;
export const __O_TMPFILE = 0o20000000;
export const O_TMPFILE = __O_TMPFILE | O_DIRECTORY;
const NR_OPEN = 1024;

/* /dev/<name> -> inode; reset with every boot */
let devices = new Map<string, inode>();
let next_ino = 1;

/** resetFiles() - forget every registered device (a fresh machine). */
export function resetFiles(): void {
  devices = new Map();
  next_ino = 1;
  deferred = [];              /* the old machine's pending releases must not run over the new machine's pages */
}

/** alloc_inode() - a new inode number for a filesystem object. */
export function alloc_ino(): number { return next_ino++; }

/**
 * misc_register() - create /dev/<name> backed by fops.
 * @private_data: stored in inode.i_private for the driver's open().
 * Return: the inode.
 */
export function misc_register(name: string, rdev: number, fops: file_operations, private_data: unknown): inode {
  const ino: inode = { i_ino: next_ino++, i_mode: 'chr', i_rdev: rdev, i_size: 0, i_fop: fops,
    i_mapping: null, i_private: private_data, i_nlink: 1 };
  devices.set(`/dev/${name}`, ino);
  return ino;
}

/** misc_deregister() - remove a device node. */
export function misc_deregister(name: string): void {
  devices.delete(`/dev/${name}`);
}

/** lookup_path() - the inode of a registered path, or null. */
export function lookup_path(path: string): inode | null {
  return devices.get(path) ?? null;
}

/** register_path() - bind a path to an inode (tmpfs files). */
export function register_path(path: string, ino: inode): void {
  devices.set(path, ino);
}

/** unregister_path() - unlink a path. */
export function unregister_path(path: string): void {
  devices.delete(path);
}

function alloc_fd(task: task_struct): number {
  for (let fd = 0; fd < NR_OPEN; fd++) if (!task.files.has(fd)) return fd;
  return -EMFILE;
}

/** alloc_file() - an open file description for an inode. */
export function alloc_file(ino: inode, flags: number, path: string): file {
  return { f_inode: ino, f_op: ino.i_fop, f_flags: flags, f_pos: 0, f_count: 1, private_data: null,
    f_mapping: ino.i_mapping, path };
}

/** fd_install() - put a file into the lowest free descriptor. Return: fd or -EMFILE. */
export function fd_install(task: task_struct, f: file): number {
  const fd = alloc_fd(task);
  if (fd >= 0) task.files.set(fd, f);
  return fd;
}

/*
 * path_openat() - the inode an open names: the one at path, a new file in
 * path's directory (O_CREAT, through the directory's i_op->create), or an
 * unnamed file in the directory path (O_TMPFILE, i_op->tmpfile).
 * Return: the inode, or -ENOENT, -EEXIST (O_CREAT|O_EXCL), -EISDIR,
 * -ENOTDIR, -EINVAL (O_TMPFILE without write access or with O_CREAT),
 * -EOPNOTSUPP, -EACCES (a directory that cannot create files).
 */
function path_openat(path: string, flags: number): inode | number {
  if (flags & __O_TMPFILE) {
    if ((flags & (O_TMPFILE | O_CREAT)) !== O_TMPFILE || (flags & O_ACCMODE) === O_RDONLY) return -EINVAL;
    const dir = lookup_path(path);
    if (dir === null) return -ENOENT;
    if (dir.i_mode !== 'dir') return -ENOTDIR;
    return dir.i_op?.tmpfile !== undefined ? dir.i_op.tmpfile(dir, flags) : -EOPNOTSUPP;
  }
  const ino = lookup_path(path);
  if (ino !== null) {
    if ((flags & (O_CREAT | O_EXCL)) === (O_CREAT | O_EXCL)) return -EEXIST;
    if (ino.i_mode === 'dir' && ((flags & O_ACCMODE) !== O_RDONLY || (flags & O_CREAT))) return -EISDIR;
    return ino;
  }
  if (!(flags & O_CREAT)) return -ENOENT;
  const slash = path.lastIndexOf('/');
  const dir = slash > 0 ? lookup_path(path.slice(0, slash)) : null;
  if (dir === null) return -ENOENT;
  if (dir.i_mode !== 'dir') return -ENOTDIR;
  return dir.i_op?.create !== undefined ? dir.i_op.create(dir, path.slice(slash + 1), flags) : -EACCES;
}

/**
 * do_sys_open() - open a path: a device node, a file, or a new tmpfs
 * file (O_CREAT, O_TMPFILE); O_TRUNC empties a regular file opened for
 * writing.
 * Return: a new fd, or -ENOENT, -ENODEV, -EMFILE, the errno of
 * path_openat(), or what ->open returns.
 */
export function* do_sys_open(task: task_struct, path: string, flags: number): Sleepable<number> {
  const ino = path_openat(path, flags);
  if (typeof ino === 'number') return ino;
  const f = alloc_file(ino, flags, path);
  if (ino.i_fop.open) {
    const ret = yield* ino.i_fop.open(ino, f);
    if (ret < 0) return ret;
  } else if (ino.i_mode === 'chr' && ino.i_fop.unlocked_ioctl === undefined && ino.i_fop.mmap === undefined) {
    return -ENODEV;
  }
  if ((flags & O_TRUNC) && ino.i_mode === 'reg' && (flags & O_ACCMODE) !== O_RDONLY && ino.i_op?.setattr !== undefined) {
    const ret = yield* ino.i_op.setattr(ino, 0);
    if (ret < 0) { yield* fput(f); return ret; }
  }
  const fd = fd_install(task, f);
  if (fd < 0) yield* fput(f);
  return fd;
}

/** fget() - the file behind fd of the task, or null. */
export function fget(task: task_struct, fd: number): file | null {
  return task.files.get(fd) ?? null;
}

/** fget_ref() - take a reference on a file (a mapping of it, or a dup). */
export function fget_ref(f: unknown): void {
  (f as file).f_count++;
}

/**
 * fput() - drop a reference; the last one calls ->release.
 * Context: may sleep.
 */
export function* fput(f: file): Sleepable {
  if (--f.f_count > 0) return;
  if (f.f_op.release) yield* f.f_op.release(f.f_inode, f);
}

/* Deferred fput for paths that cannot sleep (VMA teardown inside locks). */
let deferred: file[] = [];

/** fput_ref() - drop a reference without sleeping; a final release runs at the next flush_delayed_fput(). */
export function fput_ref(f: unknown): void {
  const file = f as file;
  if (--file.f_count > 0) return;
  file.f_count = 1;
  deferred.push(file);
}

/** flush_delayed_fput() - run the releases fput_ref() deferred. Context: may sleep. */
export function* flush_delayed_fput(): Sleepable {
  while (deferred.length > 0) {
    const list = deferred;
    deferred = [];
    for (const f of list) yield* fput(f);
  }
}

/** close_fd() - close a descriptor. Return: 0 or -EBADF. Context: may sleep. */
export function* close_fd(task: task_struct, fd: number): Sleepable<number> {
  const f = task.files.get(fd);
  if (f === undefined) return -EBADF;
  task.files.delete(fd);
  yield* fput(f);
  return 0;
}

/** vfs_ioctl() - pass an ioctl to the file's driver. Return: its result, -EBADF or -ENOTTY. */
export function* vfs_ioctl(task: task_struct, fd: number, cmd: number, arg: number): Sleepable<number> {
  const f = task.files.get(fd);
  if (f === undefined) return -EBADF;
  if (f.f_op.unlocked_ioctl === undefined) return -ENOTTY;
  return yield* f.f_op.unlocked_ioctl(f, cmd, arg);
}

/** exit_files() - close every descriptor of an exiting task. */
export function* exit_files(task: task_struct): Sleepable {
  const fds = [...task.files.keys()];
  for (const fd of fds) yield* close_fd(task, fd);
}

/** dup_fd() - the child's copy of the descriptor table at fork: same files, one more reference each. */
export function dup_fd(parent: task_struct, child: task_struct): void {
  for (const [fd, f] of parent.files) {
    f.f_count++;
    child.files.set(fd, f);
  }
}

/* ------------------------------------------------------------------
 * fs/read_write.c and fs/open.c (ftruncate) in the small: the kernel
 * reads or writes a kernel buffer through f_op, and copies it to or from
 * the caller's memory.
 * ------------------------------------------------------------------ */

/* the most one read or write moves (MAX_RW_COUNT is INT_MAX & PAGE_MASK) */
export const MAX_RW_COUNT = 0x7ffff000;

/*
 * vfs_read() - read count bytes at pos into user memory at buf.
 * Return: bytes read; -EBADF (not open for reading), -EISDIR, -EINVAL
 * (no ->read), -EFAULT (buf not writable).
 */
function* vfs_read(task: task_struct, f: file, buf: number, count: number, pos: number): Sleepable<number> {
  if ((f.f_flags & O_ACCMODE) === O_WRONLY) return -EBADF;
  if (f.f_inode.i_mode === 'dir') return -EISDIR;
  if (f.f_op.read === undefined) return -EINVAL;
  if (count === 0) return 0;
  const kbuf = new Uint8Array(Math.min(count, MAX_RW_COUNT));
  const n = yield* f.f_op.read(f, kbuf, pos);
  if (n <= 0) return n;
  if ((yield* copy_to_user(task.mm!, buf, kbuf.subarray(0, n))) < 0) return -EFAULT;
  return n;
}

/*
 * vfs_write() - write count bytes from user memory at buf at pos.
 * Return: bytes written; -EBADF (not open for writing), -EISDIR, -EINVAL
 * (no ->write), -EFAULT (buf not readable), or ->write's errno.
 */
function* vfs_write(task: task_struct, f: file, buf: number, count: number, pos: number): Sleepable<number> {
  if ((f.f_flags & O_ACCMODE) === O_RDONLY) return -EBADF;
  if (f.f_inode.i_mode === 'dir') return -EISDIR;
  if (f.f_op.write === undefined) return -EINVAL;
  if (count === 0) return 0;
  const kbuf = new Uint8Array(Math.min(count, MAX_RW_COUNT));
  if ((yield* copy_from_user(task.mm!, kbuf, buf)) < 0) return -EFAULT;
  return yield* f.f_op.write(f, kbuf, pos);
}

/** ksys_pread64() - pread(2). Return: bytes read, or -EBADF, -EINVAL (negative pos), -EFAULT, -EISDIR. */
export function* ksys_pread64(task: task_struct, fd: number, buf: number, count: number, pos: number): Sleepable<number> {
  if (pos < 0) return -EINVAL;
  const f = fget(task, fd);
  if (f === null) return -EBADF;
  return yield* vfs_read(task, f, buf, count, pos);
}

/** ksys_pwrite64() - pwrite(2). Return: bytes written, or -EBADF, -EINVAL, -EFAULT, -EFBIG, -ENOMEM. */
export function* ksys_pwrite64(task: task_struct, fd: number, buf: number, count: number, pos: number): Sleepable<number> {
  if (pos < 0) return -EINVAL;
  const f = fget(task, fd);
  if (f === null) return -EBADF;
  return yield* vfs_write(task, f, buf, count, pos);
}

/** ksys_read() - read(2) at the file position, which moves past what was read. */
export function* ksys_read(task: task_struct, fd: number, buf: number, count: number): Sleepable<number> {
  const f = fget(task, fd);
  if (f === null) return -EBADF;
  const n = yield* vfs_read(task, f, buf, count, f.f_pos);
  if (n > 0) f.f_pos += n;
  return n;
}

/** ksys_write() - write(2) at the file position (at the end with O_APPEND), which moves past it. */
export function* ksys_write(task: task_struct, fd: number, buf: number, count: number): Sleepable<number> {
  const f = fget(task, fd);
  if (f === null) return -EBADF;
  if (f.f_flags & O_APPEND) f.f_pos = f.f_inode.i_size;
  const n = yield* vfs_write(task, f, buf, count, f.f_pos);
  if (n > 0) f.f_pos += n;
  return n;
}

/**
 * do_sys_ftruncate() - ftruncate(2): set the size of a regular file open
 * for writing (i_op->setattr).
 * Return: 0, -EBADF, or -EINVAL (negative length, not a regular file,
 * not open for writing, a file that cannot change size).
 */
export function* do_sys_ftruncate(task: task_struct, fd: number, length: number): Sleepable<number> {
  if (length < 0) return -EINVAL;
  const f = fget(task, fd);
  if (f === null) return -EBADF;
  const ino = f.f_inode;
  if (ino.i_mode !== 'reg' || (f.f_flags & O_ACCMODE) === O_RDONLY || ino.i_op?.setattr === undefined) return -EINVAL;
  return yield* ino.i_op.setattr(ino, length);
}
