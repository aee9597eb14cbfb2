/*
 * mm/gup_test.ts - the GUP test device, /sys/kernel/debug/gup_test
 * (CONFIG_GUP_TEST): user space asks the kernel to get_user_pages() or
 * pin_user_pages() a range of its own memory and release it again.
 *
 * Follows mm/gup_test.c and mm/gup_test.h of Linux (the GUP_* / PIN_*
 * ioctls and struct gup_test; the PIN_LONGTERM_TEST_* trio is left out).
 * The HMM self-test hmm_gup_test uses it to check that taking a page
 * reference moves a device-private page back to RAM and that a long-term
 * pin moves a device-coherent page back too.
 *
 * struct gup_test, 80 bytes, little-endian:
 *
 *     offset  0  u64  get_delta_usec      out: time spent getting the pages
 *     offset  8  u64  put_delta_usec      out: time spent releasing them
 *     offset 16  u64  addr                in: start of the range
 *     offset 24  u64  size                in: bytes; out: bytes handled
 *     offset 32  u32  nr_pages_per_call   in: pages per GUP call
 *     offset 36  u32  gup_flags           in: FOLL_* (FOLL_WRITE, FOLL_LONGTERM ...)
 *     offset 40  u32  test_flags          in: GUP_TEST_FLAG_*
 *     offset 44  u32  which_pages[8]      in: pages to dump (1-based)
 *
 * Simplified: the "fast" variants (get_user_pages_fast,
 * pin_user_pages_fast) are their slow paths taking mmap_lock themselves,
 * which is what the lockless walk falls back to for any entry it cannot
 * use (a device-private entry, a read-only page for FOLL_WRITE); the
 * times are simulated microseconds.
 */
import type { page } from '../include/linux/mm_types.js';
import type { file, file_operations, inode } from '../include/linux/sched.js';
import type { task_struct } from '../include/linux/sched.js';
import { PAGE_SIZE, FOLL_LONGTERM, FOLL_PIN, FOLL_GET, page_folio } from '../include/linux/mm.js';
import { is_device_coherent_page } from '../include/linux/memremap.js';
import { _IOWR } from '../include/uapi/linux/test_hmm.js';
import { EINVAL, EFAULT, ENOMEM } from '../include/uapi/asm-generic/errno.js';
import { current, type Sleepable } from '../lib/sim/sched.js';
import { now } from '../lib/sim/clock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { put_page } from './page_alloc.js';
import { copy_from_user, copy_to_user } from './fault.js';
import { mmap_read_lock, mmap_read_unlock } from './mmap_lock.js';
import {
  get_user_pages, get_user_pages_unlocked, pin_user_pages, pin_user_pages_unlocked, unpin_user_pages,
  folio_maybe_dma_pinned,
} from './gup.js';
import { alloc_ino, register_path } from './file.js';

/** sizeof(struct gup_test) */
export const GUP_TEST_SIZE = 80;
export const GUP_TEST_MAX_PAGES_TO_DUMP = 8;
export const GUP_TEST_FLAG_DUMP_PAGES_USE_PIN = 0x1;

export const GUP_FAST_BENCHMARK = _IOWR('g', 1, GUP_TEST_SIZE);
export const PIN_FAST_BENCHMARK = _IOWR('g', 2, GUP_TEST_SIZE);
export const PIN_LONGTERM_BENCHMARK = _IOWR('g', 3, GUP_TEST_SIZE);
export const GUP_BASIC_TEST = _IOWR('g', 4, GUP_TEST_SIZE);
export const PIN_BASIC_TEST = _IOWR('g', 5, GUP_TEST_SIZE);
export const DUMP_USER_PAGES_TEST = _IOWR('g', 6, GUP_TEST_SIZE);

/** The path of the device. */
export const GUP_TEST_PATH = '/sys/kernel/debug/gup_test';

/** struct gup_test, decoded. */
export interface gup_test {
  get_delta_usec: number;
  put_delta_usec: number;
  addr: number;
  size: number;
  nr_pages_per_call: number;
  gup_flags: number;
  test_flags: number;
  which_pages: number[];
}

/** gup_test_decode() - a struct gup_test from its 80 bytes. */
export function gup_test_decode(b: Uint8Array): gup_test {
  const v = new DataView(b.buffer, b.byteOffset, GUP_TEST_SIZE);
  const which: number[] = [];
  for (let i = 0; i < GUP_TEST_MAX_PAGES_TO_DUMP; i++) which.push(v.getUint32(44 + 4 * i, true));
  return {
    get_delta_usec: Number(v.getBigUint64(0, true)), put_delta_usec: Number(v.getBigUint64(8, true)),
    addr: Number(v.getBigUint64(16, true)), size: Number(v.getBigUint64(24, true)),
    nr_pages_per_call: v.getUint32(32, true), gup_flags: v.getUint32(36, true), test_flags: v.getUint32(40, true),
    which_pages: which,
  };
}

/** gup_test_encode() - the 80 bytes of a struct gup_test. */
export function gup_test_encode(g: gup_test): Uint8Array {
  const b = new Uint8Array(GUP_TEST_SIZE);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, BigInt(g.get_delta_usec), true);
  v.setBigUint64(8, BigInt(g.put_delta_usec), true);
  v.setBigUint64(16, BigInt(g.addr), true);
  v.setBigUint64(24, BigInt(g.size), true);
  v.setUint32(32, g.nr_pages_per_call, true);
  v.setUint32(36, g.gup_flags, true);
  v.setUint32(40, g.test_flags, true);
  for (let i = 0; i < GUP_TEST_MAX_PAGES_TO_DUMP; i++) v.setUint32(44 + 4 * i, g.which_pages[i] ?? 0, true);
  return b;
}

const is_pin = (cmd: number) => cmd === PIN_FAST_BENCHMARK || cmd === PIN_BASIC_TEST || cmd === PIN_LONGTERM_BENCHMARK;

/* release what the test took: references or pins */
function put_back_pages(cmd: number, pages: page[], test_flags: number): void {
  const pinned = is_pin(cmd) || (cmd === DUMP_USER_PAGES_TEST && (test_flags & GUP_TEST_FLAG_DUMP_PAGES_USE_PIN));
  if (pinned) unpin_user_pages(pages);
  else for (const p of pages) put_page(p);
}

/* every pinned page must look pinned; a long-term pin must not hold device-coherent memory */
function verify_dma_pinned(cmd: number, pages: page[]): void {
  if (!is_pin(cmd)) return;
  for (let i = 0; i < pages.length; i++) {
    const f = page_folio(pages[i]);
    if (!folio_maybe_dma_pinned(f)) {
      count_event('gup_test_warn');
      trace_event('gup_test_warn', { msg: 'page is NOT dma-pinned', i });
      return;
    }
    if (cmd === PIN_LONGTERM_BENCHMARK && is_device_coherent_page(f)) {
      count_event('gup_test_warn');
      trace_event('gup_test_warn', { msg: 'page is NOT pinnable but pinned', i });
      return;
    }
  }
}

/* one GUP call of the test over [addr, addr + nr pages); returns pages taken or -errno */
function* gup_call(cmd: number, mm: NonNullable<task_struct['mm']>, addr: number, nr: number, g: gup_test,
                   out: page[]): Sleepable<number> {
  const flags = g.gup_flags & ~(FOLL_PIN | FOLL_GET);
  switch (cmd) {
    case GUP_FAST_BENCHMARK: return yield* get_user_pages_unlocked(mm, addr, nr, flags, out);
    case GUP_BASIC_TEST: return yield* get_user_pages(mm, addr, nr, flags, out);
    case PIN_FAST_BENCHMARK: return yield* pin_user_pages_unlocked(mm, addr, nr, flags, out);
    case PIN_BASIC_TEST: return yield* pin_user_pages(mm, addr, nr, flags, out);
    case PIN_LONGTERM_BENCHMARK: return yield* pin_user_pages(mm, addr, nr, flags | FOLL_LONGTERM, out);
    case DUMP_USER_PAGES_TEST:
      return (g.test_flags & GUP_TEST_FLAG_DUMP_PAGES_USE_PIN)
        ? yield* pin_user_pages(mm, addr, nr, flags, out) : yield* get_user_pages(mm, addr, nr, flags, out);
    default: return -EINVAL;
  }
}

/*
 * __gup_test_ioctl() - take the range, nr_pages_per_call at a time, time
 * it, verify the pins, release everything. g.size becomes what was done.
 */
function* __gup_test_ioctl(cmd: number, g: gup_test, mm: NonNullable<task_struct['mm']>): Sleepable<number> {
  const end = g.addr + g.size;
  if (!Number.isSafeInteger(end)) return -EINVAL;
  if (g.size / PAGE_SIZE > 1 << 24) return -ENOMEM;
  const needs_mmap_lock = cmd !== GUP_FAST_BENCHMARK && cmd !== PIN_FAST_BENCHMARK;
  if (needs_mmap_lock) yield* mmap_read_lock(mm);
  const pages: page[] = [];
  let nr = g.nr_pages_per_call, addr = g.addr;
  let t = now();
  for (; addr < end;) {
    if (nr !== g.nr_pages_per_call) break;
    let next = addr + nr * PAGE_SIZE;
    if (next > end) { next = end; nr = (next - addr) / PAGE_SIZE; }
    const batch: page[] = [];
    nr = yield* gup_call(cmd, mm, addr, nr, g, batch);
    if (nr <= 0) break;
    pages.push(...batch);
    addr = next;
  }
  g.get_delta_usec = Math.round((now() - t) / 1000);
  g.size = addr - g.addr;
  verify_dma_pinned(cmd, pages);
  t = now();
  put_back_pages(cmd, pages, g.test_flags);
  g.put_delta_usec = Math.round((now() - t) / 1000);
  if (needs_mmap_lock) mmap_read_unlock(mm);
  trace_event('gup_test', { cmd: cmd & 0xff, addr: g.addr, pages: pages.length });
  return 0;
}

/**
 * gup_test_ioctl() - the ioctl entry point: copy the struct in, run the
 * test, copy it back.
 * Context: process context; may sleep. Return: 0, -EINVAL (unknown
 * command, bad range), -EFAULT (copy), -ENOMEM.
 */
export function* gup_test_ioctl(_filp: file, cmd: number, arg: number): Sleepable<number> {
  cmd >>>= 0;
  switch (cmd) {
    case GUP_FAST_BENCHMARK: case PIN_FAST_BENCHMARK: case PIN_LONGTERM_BENCHMARK:
    case GUP_BASIC_TEST: case PIN_BASIC_TEST: case DUMP_USER_PAGES_TEST:
      break;
    default:
      return -EINVAL;
  }
  const task = current().task as task_struct | null;
  const mm = task?.mm ?? null;
  if (mm === null) return -EFAULT;
  const raw = new Uint8Array(GUP_TEST_SIZE);
  if ((yield* copy_from_user(mm, raw, arg)) !== 0) return -EFAULT;
  const g = gup_test_decode(raw);
  const ret = yield* __gup_test_ioctl(cmd, g, mm);
  if (ret) return ret;
  if ((yield* copy_to_user(mm, arg, gup_test_encode(g))) !== 0) return -EFAULT;
  return 0;
}

const gup_test_fops: file_operations = Object.freeze({ unlocked_ioctl: gup_test_ioctl });

/** gup_test_init() - create /sys/kernel/debug/gup_test (late_initcall); start_kernel() calls it. */
export function gup_test_init(): void {
  const ino: inode = { i_ino: alloc_ino(), i_mode: 'chr', i_rdev: 0, i_size: 0, i_fop: gup_test_fops,
    i_mapping: null, i_private: null, i_nlink: 1 };
  register_path(GUP_TEST_PATH, ino);
}

