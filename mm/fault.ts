/*
 * mm/fault.ts - the CPU side: loads and stores through the MMU, the page
 * fault entry, and copy_{from,to}_user.
 *
 * Models arch/x86/mm/fault.c (do_user_addr_fault, access_error,
 * bad_area, mm_fault_error) and the user-copy helpers of
 * include/linux/uaccess.h. The "hardware" is mmu_translate(): it walks
 * the CPU page table exactly as the MMU would (no TLB: see
 * flush_tlb_range in mm/pgtable.ts), sets the accessed and dirty bits
 * locklessly, and reports a miss for anything else, which becomes a page
 * fault.
 *
 * Signals: a fault that cannot be resolved records the signal on the task
 * (force_sig_fault) and throws UserFault into the JS code that made the
 * access, standing for the synchronous signal a real program receives.
 */
import type { mm_struct, vm_area_struct } from '../include/linux/mm_types.js';
import type { task_struct } from '../include/linux/sched.js';
import {
  PAGE_SIZE, PMD_SIZE, PUD_SIZE, VM_WRITE, VM_ACCESS_FLAGS, FAULT_FLAG_DEFAULT, FAULT_FLAG_USER, FAULT_FLAG_WRITE,
  FAULT_FLAG_REMOTE, FAULT_FLAG_TRIED, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_HWPOISON,
  VM_FAULT_HWPOISON_LARGE, VM_FAULT_RETRY, VM_FAULT_ERROR,
} from '../include/linux/mm.js';
import { _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PSE, PTE_LEVEL, PMD_LEVEL, PUD_LEVEL } from '../include/linux/pgtable.js';
import { EFAULT } from '../include/uapi/asm-generic/errno.js';
import {
  SIGSEGV, SIGBUS, SIGKILL, SEGV_MAPERR, SEGV_ACCERR, BUS_ADRERR, BUS_MCEERR_AR, signal_name,
} from '../include/uapi/asm-generic/signal.js';
import { yieldWaiting, type Sleepable } from '../lib/sim/sched.js';
import { trace_event } from '../lib/sim/trace.js';
import { phys_to_bytes, SECTION_BYTES } from './sparse.js';
import { handle_mm_fault, handle_mm_fault_nosleep, FAULT_WOULD_SLEEP } from './memory.js';
import { vma_lookup } from './vma.js';
import { mmap_read_lock, mmap_read_trylock, mmap_read_unlock } from './mmap_lock.js';
import { force_sig_fault } from './task.js';
import { pagefault_out_of_memory } from './oom_kill.js';
import { BUG } from '../include/asm-generic/bug.js';

/** A synchronous signal delivered to the user code that made an access. */
export class UserFault extends Error {
  constructor(readonly sig: number, readonly code: number, readonly addr: number) {
    super(`${signal_name(sig)} at 0x${addr.toString(16)} (si_code ${code})`);
    this.name = 'UserFault';
  }
}

const NEED_FAULT = -1;
const NEED_SLEEP = -2;      /* translate_nosleep(): not faulted; NEED_FAULT: faulted once, still missing */
const NEED_SPLIT = -3;      /* an access across a page boundary: done page by page */

/* The PMD or PUD entry pointer of a present huge leaf covering addr, or -1. */
function huge_leaf(pgt: mm_struct['pgd'], addr: number): number {
  for (const level of [PMD_LEVEL, PUD_LEVEL]) {
    const p = pgt.lookup(addr, level);
    if (p < 0) continue;
    return (pgt.load(p) & (_PAGE_PSE | _PAGE_PRESENT)) === (_PAGE_PSE | _PAGE_PRESENT) ? p : -1;
  }
  return -1;
}

/**
 * mmu_translate() - what the MMU does for one access: the physical byte
 * address for addr, or -1 when the access must fault (entry absent, not
 * present, not user, or read-only for a write). Sets _PAGE_ACCESSED and,
 * for writes, _PAGE_DIRTY like x86 hardware (atomically, no lock).
 */
export function mmu_translate(mm: mm_struct, addr: number, write: boolean): number {
  const pgt = mm.pgd;
  const need = write ? (_PAGE_PRESENT | _PAGE_USER | _PAGE_RW) : (_PAGE_PRESENT | _PAGE_USER);
  const ptep = pgt.lookup(addr, PTE_LEVEL);
  let e: number, size: number, ptr: number;
  if (ptep >= 0) {
    ptr = ptep;
    e = pgt.load(ptep);
    size = PAGE_SIZE;
  } else {
    /* a huge leaf: the walk stopped one (PMD) or two (PUD, 1 GiB hugetlb) levels up */
    const leaf = huge_leaf(pgt, addr);
    if (leaf < 0) return NEED_FAULT;
    ptr = leaf;
    e = pgt.load(leaf);
    size = pgt.entry_level(leaf) === PMD_LEVEL ? PMD_SIZE : PUD_SIZE;
  }
  if ((e & need) !== need) return NEED_FAULT;
  const bits = write ? (_PAGE_ACCESSED | _PAGE_DIRTY) : _PAGE_ACCESSED;
  if ((e & bits) !== bits) pgt.set_bits(ptr, bits);
  const lo = e & 0xfff;
  const base = e - lo - ((e - lo) % size);    /* frame address: entry minus flags, aligned to the leaf size */
  return base + (addr % size);
}

/*
 * access_error() - does the VMA forbid this access? x86 lets any of
 * read/write/exec imply read.
 */
function access_error(write: boolean, vm_flags: number): boolean {
  if (write) return (vm_flags & VM_WRITE) === 0;
  return (vm_flags & VM_ACCESS_FLAGS) === 0;
}

/*
 * The VMA that may take a user access at @addr (mmap_lock held for read),
 * or null after dropping mmap_lock and signalling SIGSEGV (bad_area).
 */
function vma_for_user_access(task: task_struct, mm: mm_struct, addr: number, write: boolean): vm_area_struct | null {
  const vma = vma_lookup(mm, addr);
  if (vma === null) {
    mmap_read_unlock(mm);
    force_sig_fault(task, SIGSEGV, SEGV_MAPERR, addr);
    return null;
  }
  if (access_error(write, vma.vm_flags)) {
    mmap_read_unlock(mm);
    force_sig_fault(task, SIGSEGV, SEGV_ACCERR, addr);
    return null;
  }
  return vma;
}

/**
 * do_user_addr_fault() - a user access at addr missed in the MMU.
 * Return: 0 when the access can be retried, or the signal to deliver
 * (the task is marked with force_sig_fault).
 * Context: may sleep (takes mmap_lock for read).
 */
export function* do_user_addr_fault(task: task_struct, addr: number, write: boolean): Sleepable<number> {
  const mm = task.mm;
  if (mm === null) return SIGKILL;
  let flags = FAULT_FLAG_DEFAULT | FAULT_FLAG_USER | (write ? FAULT_FLAG_WRITE : 0);
  task.memcg_in_oom = null;           /* mem_cgroup_enter_user_fault() */
  for (;;) {
    yield* mmap_read_lock(mm);
    const vma = vma_for_user_access(task, mm, addr, write);
    if (vma === null) return SIGSEGV;
    const fault = yield* handle_mm_fault(vma, addr, flags);
    mmap_read_unlock(mm);
    if (fault & VM_FAULT_RETRY) { flags |= FAULT_FLAG_TRIED; continue; }
    if (!(fault & VM_FAULT_ERROR)) return 0;
    return mm_fault_error(task, addr, fault);
  }
}

/*
 * do_user_addr_fault() without sleeping: mmap_lock by trylock (Linux tries
 * that first too, lock_mm_and_find_vma) and handle_mm_fault_nosleep().
 * Return: as do_user_addr_fault(), or FAULT_WOULD_SLEEP, having changed
 * nothing, when the fault needs the sleeping path.
 */
function do_user_addr_fault_nosleep(task: task_struct, mm: mm_struct, addr: number, write: boolean): number {
  if (!mmap_read_trylock(mm)) return FAULT_WOULD_SLEEP;
  const vma = vma_lookup(mm, addr);
  if (vma === null || access_error(write, vma.vm_flags)) { mmap_read_unlock(mm); return FAULT_WOULD_SLEEP; }
  task.memcg_in_oom = null;           /* mem_cgroup_enter_user_fault() */
  const fault = handle_mm_fault_nosleep(vma, addr, FAULT_FLAG_DEFAULT | FAULT_FLAG_USER | (write ? FAULT_FLAG_WRITE : 0));
  mmap_read_unlock(mm);
  if (fault === FAULT_WOULD_SLEEP) return FAULT_WOULD_SLEEP;
  if (fault & VM_FAULT_RETRY) return FAULT_WOULD_SLEEP;    /* handle_mm_fault_nosleep() never asks for one */
  if (!(fault & VM_FAULT_ERROR)) return 0;
  return mm_fault_error(task, addr, fault);
}

/* mm_fault_error() - turn VM_FAULT_* into the signal Linux sends (0: retry the fault). */
function mm_fault_error(task: task_struct, addr: number, fault: number): number {
  if (fault & VM_FAULT_OOM) {
    /* the allocator ran the OOM killer already; retry unless this task is the one dying */
    const sig = pagefault_out_of_memory(task);
    if (sig !== 0) force_sig_fault(task, sig, 0, addr);
    return sig;
  }
  if (fault & (VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE)) {
    force_sig_fault(task, SIGBUS, BUS_MCEERR_AR, addr);
    return SIGBUS;
  }
  if (fault & VM_FAULT_SIGBUS) {
    force_sig_fault(task, SIGBUS, BUS_ADRERR, addr);
    return SIGBUS;
  }
  force_sig_fault(task, SIGSEGV, SEGV_MAPERR, addr);
  return SIGSEGV;
}

/* The task got a signal for its access at addr: throw it into the user code. */
function user_signal(task: task_struct, sig: number, addr: number): never {
  trace_event('user_signal', { pid: task.pid, sig, addr });
  throw new UserFault(sig, task.last_fault_code, addr);
}

/*
 * Translate, faulting as often as needed, after translate_nosleep()
 * returned @nosleep (NEED_SLEEP or NEED_FAULT); throws UserFault on a
 * signal.
 */
function* translate_or_fault(task: task_struct, addr: number, write: boolean, nosleep: number): Sleepable<number> {
  for (let tries = nosleep === NEED_FAULT ? 1 : 0; ; tries++) {
    const mm = task.mm;
    if (mm === null) throw new UserFault(SIGKILL, 0, addr);
    const phys = mmu_translate(mm, addr, write);
    if (phys >= 0) return phys;
    if (tries > 16) BUG(`fault livelock at 0x${addr.toString(16)} write=${write}`);
    if (tries > 0) yield* yieldWaiting();      /* the retry goes back through user space: a preemption point */
    const sig = yield* do_user_addr_fault(task, addr, write);
    if (sig !== 0) user_signal(task, sig, addr);
  }
}


/*
 * translate_nosleep() - the access as the MMU does it, and the first
 * fault of a miss as plain calls when it needs no sleep
 * (handle_mm_fault_nosleep()). Return: the physical address, NEED_SLEEP
 * (no fault taken) or NEED_FAULT (one fault taken, the access still
 * misses): then translate_or_fault() goes on. Throws UserFault on a
 * signal.
 */
function translate_nosleep(task: task_struct, addr: number, write: boolean): number {
  const mm = task.mm;
  if (mm === null) return NEED_SLEEP;
  const phys = mmu_translate(mm, addr, write);
  if (phys >= 0) return phys;
  const sig = do_user_addr_fault_nosleep(task, mm, addr, write);
  if (sig === FAULT_WOULD_SLEEP) return NEED_SLEEP;
  if (sig !== 0) user_signal(task, sig, addr);
  return mmu_translate(mm, addr, write);
}

/**
 * user_read() - a user-mode read of buf.length bytes at addr into buf.
 * Context: may sleep (faults). Throws UserFault on SIGSEGV/SIGBUS.
 */
export function* user_read(task: task_struct, addr: number, buf: Uint8Array): Sleepable {
  let done = 0;
  while (done < buf.length) {
    const a = addr + done;
    const n = Math.min(buf.length - done, PAGE_SIZE - (a % PAGE_SIZE));
    let phys = translate_nosleep(task, a, false);
    if (phys < 0) phys = yield* translate_or_fault(task, a, false, phys);
    const bytes = phys_to_bytes(phys), off = phys % SECTION_BYTES;
    buf.set(bytes.subarray(off, off + n), done);
    done += n;
  }
}

/**
 * user_write() - a user-mode write of buf at addr.
 * Context: may sleep (faults). Throws UserFault on SIGSEGV/SIGBUS.
 */
export function* user_write(task: task_struct, addr: number, buf: Uint8Array): Sleepable {
  let done = 0;
  while (done < buf.length) {
    const a = addr + done;
    const n = Math.min(buf.length - done, PAGE_SIZE - (a % PAGE_SIZE));
    let phys = translate_nosleep(task, a, true);
    if (phys < 0) phys = yield* translate_or_fault(task, a, true, phys);
    const bytes = phys_to_bytes(phys), off = phys % SECTION_BYTES;
    bytes.set(buf.subarray(done, done + n), off);
    done += n;
  }
}

/* little-endian scalar access inside one page (callers split page-crossing accesses) */
function read_scalar(bytes: Uint8Array, off: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + bytes[off + i];
  return v;
}
function write_scalar(bytes: Uint8Array, off: number, size: number, v: number): void {
  for (let i = 0; i < size; i++) { bytes[off + i] = v % 256; v = Math.floor(v / 256); }
}

/**
 * user_load() - load an unsigned little-endian value of size 1, 2, 4 or 8
 * bytes (8-byte values must stay below 2^53). Fast path: no fault, no
 * generator switch beyond this one.
 */
export function* user_load(task: task_struct, addr: number, size: 1 | 2 | 4 | 8): Sleepable<number> {
  if ((addr % PAGE_SIZE) + size > PAGE_SIZE) {
    const b = new Uint8Array(size);
    yield* user_read(task, addr, b);
    return read_scalar(b, 0, size);
  }
  let phys = translate_nosleep(task, addr, false);
  if (phys < 0) phys = yield* translate_or_fault(task, addr, false, phys);
  const bytes = phys_to_bytes(phys), off = phys % SECTION_BYTES;
  return read_scalar(bytes, off, size);
}

/*
 * user_store() without sleeping: the store done (0), or why not: a
 * translate_nosleep() result (NEED_SLEEP, NEED_FAULT) or NEED_SPLIT.
 */
function user_store_nosleep(task: task_struct, addr: number, size: number, value: number): number {
  if ((addr % PAGE_SIZE) + size > PAGE_SIZE) return NEED_SPLIT;
  const phys = translate_nosleep(task, addr, true);
  if (phys < 0) return phys;
  write_scalar(phys_to_bytes(phys), phys % SECTION_BYTES, size, value);
  return 0;
}

/* user_store() when it may sleep; @why: user_store_nosleep()'s answer */
function* user_store_slow(task: task_struct, addr: number, size: number, value: number, why: number): Sleepable {
  if (why === NEED_SPLIT) {
    const b = new Uint8Array(size);
    write_scalar(b, 0, size, value);
    yield* user_write(task, addr, b);
    return;
  }
  const phys = yield* translate_or_fault(task, addr, true, why);
  write_scalar(phys_to_bytes(phys), phys % SECTION_BYTES, size, value);
}

/**
 * user_store() - store an unsigned little-endian value of size 1, 2, 4 or
 * 8 bytes. A store that needs no sleep (no fault, or a fault
 * handle_mm_fault_nosleep() resolves) runs as plain calls.
 */
export function* user_store(task: task_struct, addr: number, size: 1 | 2 | 4 | 8, value: number): Sleepable {
  const why = user_store_nosleep(task, addr, size, value);
  if (why !== 0) yield* user_store_slow(task, addr, size, value, why);
}

/**
 * user_atomic_rmw() - an atomic read-modify-write (lock xadd, cmpxchg...)
 * of a naturally aligned value: translate for write once, then apply op
 * to the old value. Return: the old value. A device-exclusive entry
 * faults here and is restored before the operation, as on real hardware.
 */
export function* user_atomic_rmw(task: task_struct, addr: number, size: 1 | 2 | 4 | 8,
                                 op: (old: number) => number): Sleepable<number> {
  if (addr % size !== 0) throw new UserFault(SIGBUS, BUS_ADRERR, addr);
  let phys = translate_nosleep(task, addr, true);
  if (phys < 0) phys = yield* translate_or_fault(task, addr, true, phys);
  const bytes = phys_to_bytes(phys), off = phys % SECTION_BYTES;
  const old = read_scalar(bytes, off, size);
  write_scalar(bytes, off, size, op(old) % 2 ** (size * 8));
  return old;
}

/**
 * copy_from_user() - the kernel reads user memory of mm (for a syscall or
 * ioctl argument). Faults are resolved; an address that cannot be
 * faulted in gives -EFAULT instead of a signal.
 * Return: 0 or -EFAULT.
 */
export function* copy_from_user(mm: mm_struct, dst: Uint8Array, src_addr: number): Sleepable<number> {
  return yield* kernel_user_copy(mm, src_addr, dst, false);
}

/** copy_to_user() - the kernel writes user memory. Return: 0 or -EFAULT. */
export function* copy_to_user(mm: mm_struct, dst_addr: number, src: Uint8Array): Sleepable<number> {
  return yield* kernel_user_copy(mm, dst_addr, src, true);
}

function* kernel_user_copy(mm: mm_struct, addr: number, buf: Uint8Array, write: boolean): Sleepable<number> {
  let done = 0;
  while (done < buf.length) {
    const a = addr + done;
    const n = Math.min(buf.length - done, PAGE_SIZE - (a % PAGE_SIZE));
    let phys = mmu_translate(mm, a, write);
    /*
     * The copy instruction restarts after every fault that succeeded (the
     * page may be gone again: reclaimed, migrating): fault until it maps,
     * bounded as a user fault is (translate_or_fault).
     */
    for (let tries = 0; phys < 0; tries++) {
      if (tries > 16) BUG(`kernel copy livelock at 0x${a.toString(16)} write=${write}`);
      if (tries > 0) yield* yieldWaiting();
      yield* mmap_read_lock(mm);
      const vma = vma_lookup(mm, a);
      let ok = vma !== null && !access_error(write, vma.vm_flags);
      if (ok) {
        const fault = yield* handle_mm_fault(vma!, a, (write ? FAULT_FLAG_WRITE : 0) | FAULT_FLAG_REMOTE);
        ok = (fault & VM_FAULT_ERROR) === 0;
      }
      mmap_read_unlock(mm);
      if (!ok) return -EFAULT;
      phys = mmu_translate(mm, a, write);
    }
    const bytes = phys_to_bytes(phys), off = phys % SECTION_BYTES;
    if (write) bytes.set(buf.subarray(done, done + n), off);
    else buf.set(bytes.subarray(off, off + n), done);
    done += n;
  }
  return 0;
}


