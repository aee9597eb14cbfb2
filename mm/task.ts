/*
 * mm/task.ts - processes: creation, fork, exit, wait, kill.
 *
 * Models, in the small, kernel/fork.c (mm_alloc, copy_mm, kernel_clone,
 * mmget/mmput), kernel/exit.c (do_exit, exit_mm, wait4) and
 * kernel/signal.c (kill, force_sig_fault). The tree has no kernel/, and
 * what a memory-management reader needs of processes is their mm.
 *
 * A process here is a task_struct with an mm and a file table. What it
 * executes is JS code (a test, a scenario) acting through the syscall
 * layer (mm/syscalls.ts) and the MMU (mm/fault.ts); after fork() both
 * tasks exist and the caller decides which one acts next.
 */
import { mm_struct } from '../include/linux/mm_types.js';
import { task_struct, EXIT_ZOMBIE, EXIT_DEAD, fatal_signal_pending } from '../include/linux/sched.js';
import { TASK_SIZE } from '../include/linux/mm.js';
import { ECHILD, ESRCH, EINVAL, ENOMEM } from '../include/uapi/asm-generic/errno.js';
import { SIGKILL, SIGCHLD } from '../include/uapi/asm-generic/signal.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spinlock_t } from '../lib/locking/spinlock.js';
import { lockdep_set_class } from '../lib/locking/lockdep.js';
import { rw_semaphore } from '../lib/locking/rwsem.js';
import { wait_queue_head, wait_event, wake_up_all } from '../lib/locking/wait.js';
import { trace_event } from '../lib/sim/trace.js';
import { pgd_alloc } from './pgtable.js';
import { dup_mmap } from './fork.js';
import { exit_mmap } from './mmap.js';
import { mm_put_huge_zero_folio } from './huge_memory.js';
import { mmu_notifier_release } from './mmu_notifier.js';
import { exit_files, dup_fd } from './file.js';
import { BUG } from '../include/asm-generic/bug.js';

/* the top of the mmap area: x86-64 puts it below the stack gap */
export const MMAP_BASE = 0x7f0000000000;

interface task_state { next_pid: number; next_mm: number; tasks: Map<number, task_struct>; child_exit: wait_queue_head; }
let ts: task_state = fresh();

function fresh(): task_state {
  return { next_pid: 1, next_mm: 1, tasks: new Map(), child_exit: new wait_queue_head('wait_chldexit') };
}

/** resetTasks() - forget every process (a fresh machine). */
export function resetTasks(): void { ts = fresh(); }

/** for_each_process() - every task not yet reaped, in pid order (a copy: callers may exit them). */
export function for_each_process(): task_struct[] { return [...ts.tasks.values()]; }

/** mm_alloc() - a new, empty address space. */
export function mm_alloc(): mm_struct {
  const id = ts.next_mm++;
  return new mm_struct(id, pgd_alloc(), lockdep_set_class(new spinlock_t(`mm${id}.page_table_lock`), '&mm->page_table_lock'),
    lockdep_set_class(new rw_semaphore(`mm${id}.mmap_lock`), '&mm->mmap_lock'), MMAP_BASE, TASK_SIZE);
}

/** mmget() - one more user of the address space (a thread, a driver doing work on it). */
export function mmget(mm: mm_struct): void { mm.mm_users++; }

/** mmget_not_zero() - take a user reference unless the mm is already being torn down. */
export function mmget_not_zero(mm: mm_struct): boolean {
  if (mm.mm_users <= 0) return false;
  mm.mm_users++;
  return true;
}

/** mmgrab()/mmdrop() - references on the struct, not the address space. */
export function mmgrab(mm: mm_struct): void { mm.mm_count++; }
export function mmdrop(mm: mm_struct): void {
  if (--mm.mm_count < 0) BUG(`mmdrop underflow mm${mm.id}`);
}

/**
 * mmput() - drop a user reference; the last one tears the address space
 * down: release notifiers (MMU_NOTIFY_RELEASE), then unmap everything.
 * Context: may sleep.
 */
export function* mmput(mm: mm_struct): Sleepable {
  if (mm.mm_users <= 0) BUG(`mmput underflow mm${mm.id}`);
  if (--mm.mm_users > 0) return;
  yield* mmu_notifier_release(mm);
  yield* exit_mmap(mm);
  mm_put_huge_zero_folio(mm);
  trace_event('mmput_last', { mm: mm.id });
  mmdrop(mm);
}

/** find_task_by_vpid() - the task with this pid, or null. */
export function find_task_by_vpid(pid: number): task_struct | null {
  return ts.tasks.get(pid) ?? null;
}

/** createProcess() - start a new process with an empty address space (harness plumbing, like exec of init). */
export function createProcess(comm: string): task_struct {
  const t = new task_struct(ts.next_pid++, comm, mm_alloc());
  t.mm!.owner = t;
  ts.tasks.set(t.pid, t);
  return t;
}

/**
 * kernel_clone() - fork(): a child with a copy of the parent's address
 * space (dup_mmap) and file table.
 * Context: may sleep. Return: the child's pid, or dup_mmap's -errno
 * (-ENOMEM; -EBUSY when a device-exclusive page is locked).
 */
export function* kernel_clone(parent: task_struct): Sleepable<number> {
  if (parent.mm === null) return -EINVAL;
  const child = new task_struct(ts.next_pid++, parent.comm, mm_alloc());
  child.mm!.owner = child;
  child.parent = parent;
  const ret = yield* dup_mmap(child.mm!, parent.mm);
  if (ret < 0) {
    yield* mmput(child.mm!);
    return ret;                       /* copy_process() passes dup_mmap's errno on: -ENOMEM, -EBUSY */
  }
  dup_fd(parent, child);
  parent.children.push(child);
  ts.tasks.set(child.pid, child);
  trace_event('fork', { parent: parent.pid, child: child.pid });
  return child.pid;
}

/**
 * do_exit() - the task ends with status code: its mm is released, then
 * its files closed (exit_mm() before exit_files(), as kernel/exit.c), and
 * it becomes a zombie until the parent reaps it.
 * Context: may sleep.
 */
export function* do_exit(task: task_struct, code: number): Sleepable {
  if (task.exit_state !== 0) return;
  task.exit_code = code;
  /* Linux's order (kernel/exit.c): exit_mm() first, then exit_files() */
  const mm = task.mm;
  task.mm = null;
  if (mm !== null) yield* mmput(mm);
  yield* exit_files(task);
  task.exit_state = EXIT_ZOMBIE;
  trace_event('exit', { pid: task.pid, code });
  if (task.parent === null) { task.exit_state = EXIT_DEAD; ts.tasks.delete(task.pid); }
  wake_up_all(ts.child_exit);
}

/**
 * kernel_wait4() - wait for a child (pid, or any child for -1) to exit and
 * reap it. Return: { pid, status } with status in wait(2) encoding, or
 * pid = -ECHILD when there is no such child.
 * Context: may sleep.
 */
export function* kernel_wait4(parent: task_struct, pid: number): Sleepable<{ pid: number; status: number }> {
  const pick = () => parent.children.filter((c) => pid === -1 || c.pid === pid);
  if (pick().length === 0) return { pid: -ECHILD, status: 0 };
  yield* wait_event(ts.child_exit, () => pick().some((c) => c.exit_state === EXIT_ZOMBIE));
  const c = pick().find((x) => x.exit_state === EXIT_ZOMBIE)!;
  c.exit_state = EXIT_DEAD;
  parent.children = parent.children.filter((x) => x !== c);
  ts.tasks.delete(c.pid);
  return { pid: c.pid, status: c.exit_code };
}

/**
 * get_signal() - on the way back to user space, deliver a pending SIGKILL
 * (an OOM kill, mm/oom_kill.ts): the task exits with it.
 * Context: the task's own context; may sleep. Return: true if it died.
 */
export function* get_signal(task: task_struct): Sleepable<boolean> {
  if (task.exit_state !== 0 || !fatal_signal_pending(task)) return false;
  task.pending &= ~(1 << SIGKILL);
  task.killed_by = SIGKILL;
  trace_event('signal_deliver', { pid: task.pid, sig: SIGKILL });
  yield* do_exit(task, SIGKILL);
  return true;
}

/** W_EXITCODE() - wait status of a normal exit. */
export function W_EXITCODE(code: number): number { return (code & 0xff) << 8; }

/**
 * kill_pid() - send a signal. SIGKILL (and any other fatal default here)
 * ends the process at once. Return: 0 or -ESRCH.
 * Context: may sleep.
 */
export function* kill_pid(pid: number, sig: number): Sleepable<number> {
  const t = find_task_by_vpid(pid);
  if (t === null || t.exit_state !== 0) return -ESRCH;
  if (sig === 0) return 0;
  t.killed_by = sig;
  yield* do_exit(t, sig);
  return 0;
}

/**
 * force_sig_fault() - a fault the kernel could not resolve: record the
 * signal, address and si_code on the task. The MMU then raises UserFault
 * in the accessing code (mm/fault.ts), which is the simulator's way of
 * "delivering" a synchronous signal to a user program written in JS.
 */
export function force_sig_fault(task: task_struct, sig: number, code: number, addr: number): void {
  task.killed_by = sig;
  task.last_fault_addr = addr;
  task.last_fault_code = code;
  trace_event('signal_generate', { pid: task.pid, sig, code, addr });
}

export { SIGKILL, SIGCHLD, ENOMEM };
