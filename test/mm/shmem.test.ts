import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, recordNotifier, starts, pte_at } from '../helpers.js';
import { runAs, Process } from '../../tools/include/nolibc/nolibc.js';
import { boot_swap, sleeping_subscriber, MiB } from './swap_helpers.js';
import { PROT_READ, PROT_WRITE, MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import { EBADF, EINVAL, ENOENT, EEXIST, ENOTDIR, EISDIR, EACCES, EFAULT } from '../../include/uapi/asm-generic/errno.js';
import { SIGBUS } from '../../include/uapi/asm-generic/signal.js';
import { MM_ANONPAGES, MM_SHMEMPAGES } from '../../include/linux/mm_types.js';
import type { file } from '../../include/linux/sched.js';
import { get_mm_counter } from '../../include/linux/mm.js';
import { pte_pfn, pte_write, pte_dirty, pte_present } from '../../include/linux/pgtable.js';
import { PageDirty } from '../../include/linux/page-flags.js';
import { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_TMPFILE, fget } from '../../mm/file.js';
import { sys_pread64, sys_pwrite64, sys_ftruncate, sys_read, sys_write } from '../../mm/syscalls.js';
import { UserFault } from '../../mm/fault.js';
import { nr_free_pages } from '../../mm/page_alloc.js';
import { folio_clear_dirty_for_io, folio_lock, folio_unlock } from '../../mm/filemap.js';
import { get_counter } from '../../lib/sim/trace.js';

const t = suite('mm/shmem');
const PG = 4096;
const hex = (n: number) => n.toString(16);
let p: Process;
let scratch = 0;
t.before.each(() => {
  p = boot();
  scratch = p.mmap(0, 64 * PG, RW, ANON);
  p.write(scratch, new Uint8Array(64 * PG));   /* fault the scratch buffer in now: counters below see only the files */
});

/* test helpers for the file syscalls nolibc does not wrap yet: data goes through user memory at scratch */
function pwrite(q: Process, fd: number, data: Uint8Array, pos: number): number {
  q.write(scratch, data);
  return runAs(q.task, sys_pwrite64(q.task, fd, scratch, data.length, pos));
}
function pread(q: Process, fd: number, n: number, pos: number): { ret: number; data: Uint8Array } {
  q.write(scratch, new Uint8Array(n).fill(0xee));
  const ret = runAs(q.task, sys_pread64(q.task, fd, scratch, n, pos));
  return { ret, data: q.read(scratch, Math.max(ret, 0)) };
}
function ftruncate(q: Process, fd: number, len: number): number { return runAs(q.task, sys_ftruncate(q.task, fd, len)); }
const bytes = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 7 + seed) & 0xff);
const sigOf = (fn: () => unknown) => { try { fn(); return 0; } catch (e) { if (e instanceof UserFault) return e.sig; throw e; } };

t('open O_CREAT makes a tmpfs file: pwrite then pread return the bytes, holes read as zeroes, EOF reads 0', () => {
  const fd = p.open('/tmp/a', O_RDWR | O_CREAT);
  assert.ok(fd >= 0);
  const data = bytes(10000, 1);
  assert.is(pwrite(p, fd, data, 3 * PG), 10000);
  const r = pread(p, fd, 3 * PG + 10000, 0);
  assert.is(r.ret, 3 * PG + 10000);
  assert.ok(r.data.subarray(0, 3 * PG).every((b) => b === 0), 'the hole before the data reads as zeroes');
  assert.equal(r.data.subarray(3 * PG), data);
  assert.is(pread(p, fd, 100, 3 * PG + 10000).ret, 0, 'at EOF');
  assert.is(pread(p, fd, 100, 3 * PG + 9990).ret, 10, 'a read stops at EOF');
  assert.is(get_counter('shmem_alloc'), 3, 'only the pages written were allocated');
  p.close(fd);
  const fd2 = p.open('/tmp/a', O_RDONLY);
  assert.equal(pread(p, fd2, 10000, 3 * PG).data, data, 'the file outlives its first open');
  assert.is(pwrite(p, fd2, data, 0), -EBADF, 'not open for writing');
});

t('read and write move the file position; O_TRUNC empties the file', () => {
  const fd = p.open('/tmp/pos', O_RDWR | O_CREAT);
  p.write(scratch, bytes(100, 3));
  assert.is(runAs(p.task, sys_write(p.task, fd, scratch, 60)), 60);
  assert.is(runAs(p.task, sys_write(p.task, fd, scratch + 60, 40)), 40);
  assert.is(fget(p.task, fd)!.f_pos, 100);
  const fd2 = p.open('/tmp/pos', O_RDONLY);
  assert.is(runAs(p.task, sys_read(p.task, fd2, scratch + PG, 70)), 70);
  assert.is(runAs(p.task, sys_read(p.task, fd2, scratch + PG, 70)), 30);
  assert.equal(p.read(scratch + PG, 30), bytes(100, 3).subarray(70));
  const fd3 = p.open('/tmp/pos', O_RDWR | O_TRUNC);
  assert.is((fget(p.task, fd3)!.f_inode).i_size, 0);
  assert.is(pread(p, fd3, 10, 0).ret, 0);
});

t('open errno: ENOENT, EEXIST, EISDIR, ENOTDIR, O_TMPFILE rules; file syscalls: EBADF, EINVAL, EFAULT', () => {
  assert.is(p.open('/tmp/none', O_RDWR), -ENOENT);
  assert.is(p.open('/nodir/x', O_RDWR | O_CREAT), -ENOENT, 'no such directory');
  const fd = p.open('/tmp/e', O_RDWR | O_CREAT | O_EXCL);
  assert.ok(fd >= 0);
  assert.is(p.open('/tmp/e', O_RDWR | O_CREAT | O_EXCL), -EEXIST);
  assert.is(p.open('/tmp', O_RDWR), -EISDIR);
  assert.is(p.open('/tmp/e/x', O_RDWR | O_CREAT), -ENOTDIR);
  assert.is(p.open('/tmp', O_TMPFILE | O_RDONLY), -EINVAL, 'an unnamed file must be writable');
  assert.is(p.open('/tmp', O_TMPFILE | O_CREAT | O_RDWR), -EINVAL);
  assert.is(p.open('/tmp/e', O_TMPFILE | O_RDWR), -ENOTDIR);
  assert.is(ftruncate(p, 99, 0), -EBADF);
  assert.is(ftruncate(p, fd, -1), -EINVAL);
  const ro = p.open('/tmp/e', O_RDONLY);
  assert.is(ftruncate(p, ro, 10), -EINVAL, 'not open for writing');
  assert.is(runAs(p.task, sys_pread64(p.task, fd, scratch, 10, -1)), -EINVAL);
  assert.is(runAs(p.task, sys_pread64(p.task, 99, scratch, 10, 0)), -EBADF);
  assert.is(runAs(p.task, sys_pwrite64(p.task, fd, 0x1000, 10, 0)), -EFAULT, 'an unmapped user buffer');
  const wo = p.open('/tmp/e', O_WRONLY);
  assert.is(runAs(p.task, sys_pread64(p.task, wo, scratch, 10, 0)), -EBADF);
  assert.is(p.mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0), -EACCES, 'shared writable map of a read-only open');
});

t('MAP_SHARED file writes are visible through pread, and pwrite through the mapping', () => {
  const fd = p.open('/tmp', O_TMPFILE | O_RDWR);
  assert.ok(fd >= 0);
  assert.is(ftruncate(p, fd, 8 * PG), 0);
  const a = p.mmap(0, 8 * PG, RW, MAP_SHARED, fd, 0);
  assert.ok(a > 0);
  p.fill32(a, 8 * PG, 500);
  const r = pread(p, fd, 8 * PG, 0);
  const v = new DataView(r.data.buffer, r.data.byteOffset);
  for (let i = 0; i < 8 * PG / 4; i += 97) assert.is(v.getUint32(i * 4, true), 500 + i);
  assert.is(get_mm_counter(p.mm, MM_SHMEMPAGES), 8, 'shmem pages are MM_SHMEMPAGES');
  assert.is(pwrite(p, fd, new Uint8Array([1, 2, 3, 4]), 5 * PG), 4);
  assert.is(p.read32(a + 5 * PG), 0x04030201, 'the mapping maps the page-cache page itself');
  const c = p.fork();
  c.write32(a + 7 * PG, 0xfeed);
  assert.is(p.read32(a + 7 * PG), 0xfeed, 'a fork child shares the file pages');
});

t('MAP_PRIVATE file COW leaves the file untouched', () => {
  const fd = p.open('/tmp/priv', O_RDWR | O_CREAT);
  const data = bytes(4 * PG, 9);
  assert.is(pwrite(p, fd, data, 0), 4 * PG);
  const a = p.mmap(0, 4 * PG, RW, MAP_PRIVATE, fd, 0);
  const s = p.mmap(0, 4 * PG, RW, MAP_SHARED, fd, 0);
  assert.is(p.read8(a + 5), data[5], 'a read maps the file page');
  const file_pfn = pte_pfn(pte_at(p.mm, a));
  assert.not.ok(pte_write(pte_at(p.mm, a)), 'read-only: a write must copy');
  p.write8(a + 5, 0xaa);
  assert.ok(pte_pfn(pte_at(p.mm, a)) !== file_pfn, 'the write copied the page');
  assert.is(p.read8(a + 5), 0xaa);
  assert.is(p.read8(s + 5), data[5], 'the shared mapping still sees the file');
  assert.is(pread(p, fd, 1, 5).data[0], data[5], 'pread sees the file unchanged');
  p.write8(a + PG, 0xbb);                   /* a write fault on an untouched page copies at once (do_cow_fault) */
  assert.is(pread(p, fd, 1, PG).data[0], data[PG]);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 64 + 2, 'the private copies are anonymous pages');
  p.write8(s + 2 * PG, 0xcc);
  assert.is(p.read8(a + 2 * PG), 0xcc, 'an untouched private page still follows the file');
});

t('ftruncate shrinking a mapped file: SIGBUS beyond EOF, CLEAR over the cut, data before EOF kept', () => {
  const fd = p.open('/dev/shm/t', O_RDWR | O_CREAT);
  assert.is(ftruncate(p, fd, 8 * PG), 0);
  const a = p.mmap(0, 8 * PG, RW, MAP_SHARED, fd, 0);
  const b = p.mmap(0, 8 * PG, RW, MAP_PRIVATE, fd, 0);
  p.fill32(a, 8 * PG, 1);
  p.write32(b + 6 * PG, 0x1234);            /* a private copy beyond the new EOF */
  const seen = recordNotifier(p);
  assert.is(ftruncate(p, fd, 3 * PG + 100), 0);
  const cleared = starts(seen);
  assert.ok(cleared.includes(`CLEAR ${hex(a + 4 * PG)}-${hex(a + 8 * PG)}`), cleared.join(', '));
  assert.ok(cleared.includes(`CLEAR ${hex(b + 4 * PG)}-${hex(b + 8 * PG)}`), 'private copies are unmapped too');
  assert.is(p.check32(a, 3 * PG + 100, 1), -1, 'the data before the new end');
  assert.is(p.read32(a + 3 * PG + 100), 0, 'the rest of the last page is zeroed');
  assert.is(sigOf(() => p.read32(a + 4 * PG)), SIGBUS, 'beyond EOF');
  assert.is(sigOf(() => p.write32(b + 6 * PG, 1)), SIGBUS, 'the private mapping too');
  assert.is(ftruncate(p, fd, 8 * PG), 0);
  assert.is(p.read32(a + 6 * PG), 0, 'growing again gives zeroes, not the old data');
  assert.is(pread(p, fd, 4, 3 * PG + 100).data.reduce((x, y) => x + y, 0), 0);
});

t('shared anonymous memory is a tmpfs file the fork child shares; unmapped, its pages are freed', () => {
  const free0 = nr_free_pages();
  const a = p.mmap(0, 16 * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
  p.fill32(a, 16 * PG, 3);
  const c = p.fork();
  assert.is(c.check32(a, 16 * PG, 3), -1);
  c.write32(a, 77);
  assert.is(p.read32(a), 77);
  assert.is(pte_pfn(pte_at(c.mm, a + PG)), pte_pfn(pte_at(p.mm, a + PG)));
  c.exit(0);
  p.wait();
  assert.is(p.munmap(a, 16 * PG), 0);
  assert.is(nr_free_pages(), free0, 'every page of the object went back');
});

t('an unlinked O_TMPFILE file is freed on its last close once nothing maps it', () => {
  const free0 = nr_free_pages();
  const fd = p.open('/tmp', O_TMPFILE | O_RDWR);
  assert.is(pwrite(p, fd, bytes(5 * PG, 2), 0), 5 * PG);
  const a = p.mmap(0, 5 * PG, PROT_READ, MAP_SHARED, fd, 0);
  assert.is(p.close(fd), 0);
  assert.equal(p.read(a + PG, 16), bytes(5 * PG, 2).subarray(PG, PG + 16), 'the mapping keeps the file');
  assert.ok(nr_free_pages() < free0);
  assert.is(p.munmap(a, 5 * PG), 0);
  assert.is(nr_free_pages(), free0);
  assert.is(get_counter('shmem_evict_inode'), 1);
});

t('writeback write-protects mapped file pages (PROTECTION_PAGE); the next store dirties the page again', () => {
  const fd = p.open('/tmp/wb', O_RDWR | O_CREAT);
  ftruncate(p, fd, PG);
  const a = p.mmap(0, PG, RW, MAP_SHARED, fd, 0);
  p.write32(a, 5);
  const f = (fget(p.task, fd) as file).f_mapping!.i_pages.get(0)!;
  assert.ok(PageDirty(f) && pte_dirty(pte_at(p.mm, a)) && pte_write(pte_at(p.mm, a)));
  const seen = recordNotifier(p);
  runAs(p.task, folio_lock(f));
  assert.is(runAs(p.task, folio_clear_dirty_for_io(f)), true, 'dirty: write it back');
  folio_unlock(f);
  assert.equal(starts(seen), [`PROTECTION_PAGE ${hex(a)}-${hex(a + PG)}`]);
  assert.ok(pte_present(pte_at(p.mm, a)) && !pte_write(pte_at(p.mm, a)) && !pte_dirty(pte_at(p.mm, a)));
  assert.not.ok(PageDirty(f));
  p.write32(a, 6);
  assert.ok(PageDirty(f) && pte_write(pte_at(p.mm, a)), 'the write fault made it writable and dirty again');
  assert.is(pread(p, fd, 4, 0).data[0], 6);
});

/*
 * shmem_alloc_and_add_folio() allocates with the mapping's gfp
 * (GFP_HIGHUSER_MOVABLE) and charges in a context that may sleep, as
 * Linux's shmem_get_folio_gfp(): its direct reclaim sends blockable
 * ranges. Before, shmem allocated with the plain allocator (reclaim inline
 * with non-blockable ranges, now a might_sleep BUG).
 */
t('shmem faults and writes under memory pressure: direct reclaim sends blockable ranges, a sleeping subscriber is waited for', () => {
  const q = boot_swap(8 * MiB, 32 * MiB);
  const n = 64, a = q.mmap(0, n * PG, RW, ANON);
  q.fill32(a, n * PG, 3);                          /* the oldest pages: reclaim takes them first */
  const sub = sleeping_subscriber(q, a, n * PG);
  const filler = Process.spawn('filler');
  const fill = nr_free_pages() - 8;
  const f = filler.mmap(0, fill * PG, RW, ANON);
  filler.fill32(f, fill * PG, 5);
  const stalls = get_counter('allocstall');
  const m = 96, s = q.mmap(0, m * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
  q.fill32(s, m * PG, 9);                          /* shmem_fault allocates each page */
  assert.ok(get_counter('allocstall') > stalls, 'the shmem allocations reclaimed directly');
  assert.ok(get_counter('shmem_alloc') >= m);
  assert.is(sub.refused, 0, 'no non-blockable range reached the subscriber');
  assert.ok(sub.blockable > 0 && sub.slept === sub.blockable, 'every invalidation was blockable and slept');
  assert.is(get_counter('reclaim_nosleep'), 0);
  const blockable = sub.blockable;
  const fd = q.open('/tmp/rf', O_RDWR | O_CREAT);  /* write(2) to a tmpfs file: shmem_file_write allocates too */
  assert.ok(fd >= 0);
  const buf = q.mmap(0, 32 * PG, RW, ANON);
  q.fill32(buf, 32 * PG, 11);
  assert.is(runAs(q.task, sys_pwrite64(q.task, fd, buf, 32 * PG, 0)), 32 * PG);
  assert.is(sub.refused, 0);
  assert.ok(sub.blockable >= blockable);
  assert.is(q.check32(s, m * PG, 9), -1);
  assert.is(q.check32(a, n * PG, 3), -1);
  assert.is(filler.check32(f, fill * PG, 5), -1);
  q.fill32(buf, 32 * PG, 0);
  assert.is(runAs(q.task, sys_pread64(q.task, fd, buf, 32 * PG, 0)), 32 * PG);
  assert.is(q.check32(buf, 32 * PG, 11), -1, 'the file holds the bytes written');
});

t.run();
