/*
 * include/linux/sched.ts - struct task_struct: a process of the simulated
 * machine.
 *
 * Models the parts of include/linux/sched.h a memory-management reader
 * needs: pid, comm, mm, the file table, parent/children for wait(), exit
 * state and pending fatal signals. One task has one mm and runs one or
 * more simulated threads (lib/sim/sched.ts Thread.task points back here).
 */
import type { mm_struct } from './mm_types.js';

/*
 * How a function says that it may sleep (lib/sim/sched.ts runs it): it is
 * a generator the scheduler steps, returning Sleepable<T>, and its callers
 * call it with yield*. A thread that stops hands the scheduler a SchedEvent.
 */
/** What a thread hands the scheduler when it stops. */
export type SchedEvent =
  | { readonly kind: 'preempt' }   /* still runnable: may switch to another thread */
  | { readonly kind: 'block' };    /* Thread.state is 'blocked': waitingOn, deadline say on what */

/** A kernel function that may sleep; call it with yield*. */
export type Sleepable<T = void> = Generator<SchedEvent, T, unknown>;

/** struct file_operations - what a file (a device node here) does. */
export interface file_operations {
  /* open(): set up per-open state in file.private_data; return 0 or -errno */
  open?(inode: inode, file: file): Sleepable<number>;
  /* release(): last close of the file; Context: may sleep */
  release?(inode: inode, file: file): Sleepable<number>;
  /* unlocked_ioctl(): cmd and a user pointer argument; return >= 0 or -errno */
  unlocked_ioctl?(file: file, cmd: number, arg: number): Sleepable<number>;
  /* mmap(): set vma->vm_ops and flags for a mapping of this file; Context: mmap_lock held for write, may sleep */
  mmap?(file: file, vma: import('./mm_types.js').vm_area_struct): Sleepable<number>;
  /* read()/write() at a position, for regular files */
  read?(file: file, buf: Uint8Array, pos: number): Sleepable<number>;
  write?(file: file, buf: Uint8Array, pos: number): Sleepable<number>;
  /*
   * get_unmapped_area(): pick the address of a new mapping of len bytes
   * (hugetlbfs aligns it to the huge page size); an address or -errno.
   */
  get_unmapped_area?(file: file, mm: mm_struct, addr: number, len: number, pgoff: number, flags: number): number;
}

/**
 * struct inode_operations - what a directory or a regular file of a
 * filesystem (tmpfs, mm/shmem.ts) does for the VFS (mm/file.ts).
 */
export interface inode_operations {
  /* create(): a new regular file @name in directory @dir (open O_CREAT); the inode or -errno */
  create?(dir: inode, name: string, flags: number): inode | number;
  /* tmpfile(): an unnamed regular file in @dir (open O_TMPFILE); the inode or -errno */
  tmpfile?(dir: inode, flags: number): inode | number;
  /* setattr(): change the size (truncate, ftruncate); 0 or -errno. Context: may sleep */
  setattr?(inode: inode, size: number): Sleepable<number>;
}

/** struct inode - a file system object: a character device or a regular file. */
export interface inode {
  i_ino: number;
  i_mode: 'chr' | 'reg' | 'dir';
  i_rdev: number;                   /* device number for character devices */
  i_size: number;                   /* bytes, regular files */
  i_fop: file_operations;
  i_mapping: import('./mm_types.js').address_space | null;
  i_private: unknown;               /* owner's data (the driver's device) */
  i_nlink: number;
  i_op?: inode_operations;          /* regular files and directories of a filesystem */
}

/** struct file - an open file description. */
export interface file {
  f_inode: inode;
  f_op: file_operations;
  f_flags: number;
  f_pos: number;
  f_count: number;                  /* references: fds and mappings */
  private_data: unknown;
  f_mapping: import('./mm_types.js').address_space | null;
  path: string;
}

export const TASK_RUNNING = 0;
export const EXIT_ZOMBIE = 16;
export const EXIT_DEAD = 32;

/** struct task_struct - a process. */
export class task_struct {
  comm: string;
  mm: mm_struct | null;
  /* file descriptor table: fd -> file */
  files = new Map<number, file>();
  parent: task_struct | null = null;
  children: task_struct[] = [];
  /* 0 while alive; EXIT_ZOMBIE after exit until reaped; EXIT_DEAD once reaped */
  exit_state = 0;
  /* wait status as wait4() reports it: (code << 8) | termsig */
  exit_code = 0;
  /* the fatal signal delivered, 0 if none */
  killed_by = 0;
  /* signals sent but not yet delivered, as a mask of 1 << signo (struct sigpending) */
  pending = 0;
  /* the mm the OOM killer chose this task for (signal->oom_mm), null if never */
  oom_mm: mm_struct | null = null;
  /* a memcg charge of this task's page fault hit the limit (current->memcg_in_oom) */
  memcg_in_oom: unknown = null;
  /* last fault details, for tests and traces: address and si_code of the signal */
  last_fault_addr = 0;
  last_fault_code = 0;

  constructor(readonly pid: number, comm: string, mm: mm_struct | null) {
    this.comm = comm;
    this.mm = mm;
  }
}

/** fatal_signal_pending() - a SIGKILL was sent to @t and not delivered yet. */
export function fatal_signal_pending(t: task_struct): boolean {
  return (t.pending & (1 << 9)) !== 0;       /* SIGKILL */
}
