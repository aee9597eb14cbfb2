/*
 * lib/test_hmm_dpt.ts - the dmirror device page table and the bounce
 * buffers that carry its data to and from user space.
 *
 * Follows lib/test_hmm.c of Linux: the device page table is the dmirror's
 * xarray (xa_load/xa_store/xa_erase, tags 0 read, 1 atomic, 3 write), here
 * a gpt of tagged pfns (struct dmirror_pt, lib/test_hmm_pt.ts); struct
 * dmirror_bounce is Linux's vmalloc()ed
 * bounce buffer, and dmirror_do_read() / dmirror_read_back() the read side
 * that READ, EXCLUSIVE and MIGRATE_TO_DEV share. The table holds no page
 * references: the interval notifier (lib/test_hmm_mirror.ts) drops entries
 * before a page can go stale.
 *
 * Locking: the table is read and written under dmirror.mutex.
 */
import type { page, mm_struct } from '../include/linux/mm_types.js';
import type { task_struct } from '../include/linux/sched.js';
import { PAGE_SIZE, PAGE_SHIFT, TASK_SIZE } from '../include/linux/mm.js';
import { ENOMEM, EFAULT, ENOENT } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from './sim/sched.js';
import { mutex_lock, mutex_unlock } from './locking/mutex.js';
import type { hmm_dmirror_cmd } from '../include/uapi/linux/test_hmm.js';
import { kmap_local_page, totalram_pages, pfn_to_page } from '../mm/page_alloc.js';
import { copy_to_user } from '../mm/fault.js';
import { current } from './sim/sched.js';
import { dmirror_page_data, type dmirror } from './test_hmm_devmem.js';
import { dpt_entry_pfn, type dpt_entry } from './test_hmm_pt.js';

/* ---- the device page table (xa_load / xa_store / xa_erase) ---- */

/** dpt_load() - the entry at virtual page @pfn, or undefined. Caller holds dmirror.mutex. */
export function dpt_load(d: dmirror, pfn: number): dpt_entry | undefined {
  return d.pt.get(pfn);
}

/**
 * dpt_store() - map virtual page @pfn to @p with @tag. Caller holds
 * dmirror.mutex. Return: 0 or -ENOMEM (xa_store's error).
 */
export function dpt_store(d: dmirror, pfn: number, p: page, tag: number): number {
  return d.pt.store(pfn, p.pfn, tag);
}

/** dpt_erase() - unmap virtual page @pfn. */
export function dpt_erase(d: dmirror, pfn: number): void {
  d.pt.erase(pfn);
}

/**
 * dpt_erase_range() - unmap virtual pages first..last (inclusive), walking
 * only the table's directories that cover them (xa_for_each_range).
 */
export function dpt_erase_range(d: dmirror, first: number, last: number): void {
  d.pt.erase_range(first, last + 1);
}

/* ---- bounce buffers: the device's view of a range, copied to or from user space ---- */

/** struct dmirror_bounce - a kernel buffer covering [addr, addr + size). */
export interface dmirror_bounce {
  ptr: Uint8Array;
  size: number;
  addr: number;
  cpages: number;                 /* pages copied so far */
}

/**
 * dmirror_bounce_init() - a zeroed bounce buffer for [addr, addr + size),
 * the driver's vmalloc(size). Return: the buffer, or null (-ENOMEM) when
 * it is larger than the machine's RAM, where Linux's vmalloc fails too.
 */
export function dmirror_bounce_init(addr: number, size: number | bigint): dmirror_bounce | null {
  if (BigInt(size) > BigInt(totalram_pages() * PAGE_SIZE)) return null;
  const n = Number(size);
  return { ptr: bounce_alloc(n), size: n, addr, cpages: 0 };
}

/*
 * Host memory of freed bounce buffers, kept for the next ones (at most
 * BOUNCE_CACHE_MAX buffers): a fresh 64 MiB typed array costs the host a
 * page fault per 4 KiB on first use, more than the copy itself, where
 * Linux's vmalloc() hands out pages already resident. Reused memory is
 * zeroed, so the buffer reads as vmalloc'ed zeroed memory either way.
 */
const BOUNCE_CACHE_MAX = 4;
const bounce_cache: ArrayBuffer[] = [];
let bounce_reused = 0;

function bounce_alloc(n: number): Uint8Array {
  let best = -1;
  for (let i = 0; i < bounce_cache.length; i++) {
    const len = bounce_cache[i].byteLength;
    if (len >= n && len <= 4 * n + (1 << 20) && (best < 0 || len < bounce_cache[best].byteLength)) best = i;
  }
  if (best < 0) return new Uint8Array(n);
  const ab = bounce_cache.splice(best, 1)[0];
  bounce_reused++;
  return new Uint8Array(ab, 0, n).fill(0);
}

/**
 * dmirror_bounce_fini() - the driver's vfree() of the bounce buffer: its
 * memory goes to the cache for the next bounce buffer. @bounce must not
 * be used again.
 */
export function dmirror_bounce_fini(bounce: dmirror_bounce): void {
  const ab = bounce.ptr.buffer as ArrayBuffer;
  bounce.ptr = new Uint8Array(0);
  if (ab.byteLength === 0 || bounce_cache.includes(ab)) return;
  bounce_cache.push(ab);
  if (bounce_cache.length > BOUNCE_CACHE_MAX) bounce_cache.shift();
}

/** dmirror_bounce_reused() - bounce buffers served from freed memory so far (tests). */
export function dmirror_bounce_reused(): number { return bounce_reused; }

/**
 * dmirror_cmd_range() - the range a command covers, computed as
 * lib/test_hmm.c does, in u64 arithmetic: size = npages << PAGE_SHIFT
 * wraps (npages = 2^52 + 1 is one page), end = addr + size. The front
 * door has already refused an empty or wrapping range (-EINVAL). @end is
 * clipped one page past max(addr, TASK_SIZE): nothing can be mapped
 * there, so every command meets its hole (and fails as Linux does there)
 * with addresses a double holds exactly (page-aligned u64s all are).
 * Return: { start, end, size } with size the unclipped u64 byte count.
 */
export function dmirror_cmd_range(cmd: hmm_dmirror_cmd): { start: number; end: number; size: bigint } {
  const size = BigInt.asUintN(64, cmd.npages << BigInt(PAGE_SHIFT));
  const limit = BigInt(Math.max(Number(cmd.addr), TASK_SIZE) + PAGE_SIZE);
  const end = cmd.addr + size < limit ? cmd.addr + size : limit;
  return { start: Number(cmd.addr), end: Number(end), size };
}

/** current_mm() - the address space of the task making the system call. */
export function current_mm(): mm_struct | null {
  const t = current().task as task_struct | null;
  return t === null || t === undefined ? null : t.mm;
}

/**
 * dmirror_bounce_copy_out() - copy the whole bounce buffer to the caller's
 * user buffer at @uptr. Context: may sleep (faults). Return: 0 or -EFAULT.
 */
export function* dmirror_bounce_copy_out(bounce: dmirror_bounce, uptr: bigint): Sleepable<number> {
  const mm = current_mm();
  if (mm === null) return -EFAULT;
  return (yield* copy_to_user(mm, Number(uptr), bounce.ptr)) === 0 ? 0 : -EFAULT;
}

/**
 * dmirror_do_read() - copy [start, end) from the device page table into
 * the bounce buffer, counting pages in bounce.cpages; the entry tag is
 * ignored. Caller holds dmirror.mutex.
 * Return: 0, or -ENOENT at the first page with no entry.
 */
export function dmirror_do_read(d: dmirror, start: number, end: number, bounce: dmirror_bounce): number {
  let off = start - bounce.addr - ((start - bounce.addr) % PAGE_SIZE);
  for (let pfn = start / PAGE_SIZE; pfn < end / PAGE_SIZE; pfn++, off += PAGE_SIZE) {
    const e = d.pt.load(pfn);
    if (e === 0) return -ENOENT;
    /*
     * A device-private entry lands here when hmm_range_fault() reported
     * one of this device's own pages (dev_private_owner). The device reads
     * its own memory, which the simulator keeps in BACKING_PAGE(); Linux's
     * memcpy_from_page() would touch the page's unbacked physical range.
     */
    bounce.ptr.set(kmap_local_page(dmirror_page_data(pfn_to_page(dpt_entry_pfn(e)))), off);
    bounce.cpages++;
  }
  return 0;
}

/**
 * dmirror_read_back() - copy what the device page table now holds for
 * [start, end) to the user buffer at cmd.ptr and report the pages in
 * cmd.cpages: the last step of EXCLUSIVE and MIGRATE_TO_DEV, which return
 * the data for the test to check (as Linux's driver does in both).
 * Context: may sleep (takes dmirror.mutex, copies to user).
 * Return: 0, -ENOMEM (bounce buffer), -ENOENT (a page not mapped by the
 * device), -EFAULT (copy-out).
 */
export function* dmirror_read_back(d: dmirror, start: number, end: number, cmd: hmm_dmirror_cmd): Sleepable<number> {
  const bounce = dmirror_bounce_init(start, end - start);
  if (bounce === null) return -ENOMEM;
  try {
    yield* mutex_lock(d.mutex);
    let ret = dmirror_do_read(d, start, end, bounce);
    mutex_unlock(d.mutex);
    if (ret === 0) ret = yield* dmirror_bounce_copy_out(bounce, cmd.ptr);
    cmd.cpages = BigInt(bounce.cpages);
    return ret;
  } finally {
    dmirror_bounce_fini(bounce);
  }
}
