/*
 * test/mm/isolation.test.ts - a device sees a process's memory exactly as
 * the process may: never another process's memory, never memory after
 * munmap, nothing through PROT_NONE, no write through a read-only
 * mapping, and after a fork never what the other side of a COW page
 * wrote. Both eras: the dmirror driver (lib/test_hmm.ts, mainline
 * hmm_range_fault + mmu_interval_notifier) and the 2015 dummy driver
 * (drivers/char/hmm_dummy.ts, HMM v8 mirror). Every case asserts the
 * bytes the device returned (or did not) and the errno.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, dmirror_open, dmirror_cmd, type dmirror_rig } from '../helpers.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { PROT_NONE, PROT_READ } from '../../include/uapi/asm-generic/mman.js';
import { EFAULT, EPERM } from '../../include/uapi/asm-generic/errno.js';
import { HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV } from '../../include/uapi/linux/test_hmm.js';
import { hmm_dmirror_init } from '../../lib/test_hmm.js';
import { insmodHmmDummy } from '../../drivers/char/hmm_dummy.js';
import {
  hmm_ctx, hmm_ctx_init, hmm_buffer_new_anon, hmm_buffer_mirror_read, hmm_buffer_mirror_write, hmm_buffer_nbytes,
  ints_fill, ints_check,
} from '../../tools/testing/selftests/hmm-dummy/hmm_test_framework.js';

const t = suite('mm/isolation');
let p: Process;
let r: dmirror_rig;
t.before.each(() => {
  p = boot();
  hmm_dmirror_init();
  r = dmirror_open(p);
});

const N = 4;
const BYTES = N * PAGE_SIZE;

/* the bounce buffer as 32-bit words, poisoned first so that a copy that should not happen shows */
function poison(rig: dmirror_rig): void { rig.p.fill32(rig.mirror, BYTES, 0xdead0000); }
const untouched = (rig: dmirror_rig) => rig.p.check32(rig.mirror, BYTES, 0xdead0000) === -1;

t('dmirror: a process\'s device reads its own memory at an address, never another process\'s memory there', () => {
  const q = p.fork();                                   /* same layout, own address space */
  const a = p.mmap(0x200000000, BYTES, RW, ANON);       /* an address q never maps by itself */
  assert.is(a, 0x200000000);
  p.fill32(a, BYTES, 1000);
  /* q has no mapping at a: q's device must not reach p's pages */
  const rq = dmirror_open(q, 1);
  poison(rq);
  assert.is(dmirror_cmd(rq, HMM_DMIRROR_READ, a, N).ret, -EFAULT);
  assert.ok(untouched(rq), 'not one byte of p\'s memory was copied out');
  assert.is(dmirror_cmd(rq, HMM_DMIRROR_WRITE, a, N).ret, -EFAULT);
  assert.is(p.check32(a, BYTES, 1000), -1, 'p\'s memory is unchanged');
  /* q maps its own memory at the same address: the device sees q's bytes */
  assert.is(q.mmap(a, BYTES, RW, ANON | 0x10 /* MAP_FIXED */), a);
  q.fill32(a, BYTES, 2000);
  assert.is(dmirror_cmd(rq, HMM_DMIRROR_READ, a, N).ret, 0);
  assert.is(q.check32(rq.mirror, BYTES, 2000), -1);
  poison(r);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_READ, a, N).ret, 0);
  assert.is(p.check32(r.mirror, BYTES, 1000), -1, 'p\'s device still sees p\'s bytes');
});

t('dmirror: after munmap the device gets -EFAULT, even for pages it had mirrored and migrated', () => {
  const a = p.mmap(0, BYTES, RW, ANON);
  p.fill32(a, BYTES, 7);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_READ, a, N).ret, 0);          /* mirrored in the device page table */
  assert.is(dmirror_cmd(r, HMM_DMIRROR_MIGRATE_TO_DEV, a, 2).ret, 0); /* two pages now live on the device */
  assert.is(p.munmap(a, BYTES), 0);
  poison(r);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_READ, a, N).ret, -EFAULT);
  assert.ok(untouched(r), 'no stale byte from the device page table');
  assert.is(dmirror_cmd(r, HMM_DMIRROR_WRITE, a, N).ret, -EFAULT);
  /* a new mapping at the same address: zeroes, not the old data */
  assert.is(p.mmap(a, BYTES, RW, ANON | 0x10), a);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_READ, a, N).ret, 0);
  assert.ok(p.read(r.mirror, BYTES).every((b) => b === 0), 'the new mapping reads as zeroes');
});

t('dmirror: PROT_NONE gives the device nothing (-EFAULT); a read-only mapping refuses device writes (-EPERM)', () => {
  const a = p.mmap(0, BYTES, RW, ANON);
  p.fill32(a, BYTES, 50);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_READ, a, N).ret, 0);          /* writable entries in the device */
  assert.is(p.mprotect(a, BYTES, PROT_NONE), 0);
  poison(r);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_READ, a, N).ret, -EFAULT);
  assert.ok(untouched(r));
  assert.is(p.mprotect(a, BYTES, PROT_READ), 0);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_READ, a, N).ret, 0, 'reading is allowed again');
  assert.is(p.check32(r.mirror, BYTES, 50), -1);
  p.fill32(r.mirror, BYTES, 60);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_WRITE, a, N).ret, -EPERM);
  assert.is(p.check32(a, BYTES, 50), -1, 'no device write went through the read-only mapping');
});

t('dmirror: after fork neither side\'s device sees what the other side wrote to a COW page', () => {
  const a = p.mmap(0, BYTES, RW, ANON);
  p.fill32(a, BYTES, 100);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_READ, a, N).ret, 0);          /* the parent's device mirrors the pages */
  const c = p.fork();
  const rc = dmirror_open(c, 1);
  c.fill32(a, BYTES, 300);                              /* the child breaks COW */
  poison(r);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_READ, a, N).ret, 0);
  assert.is(p.check32(r.mirror, BYTES, 100), -1, 'the parent\'s device still reads the parent\'s bytes');
  p.fill32(r.mirror, BYTES, 200);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_WRITE, a, N).ret, 0);         /* the parent's device writes */
  assert.is(c.check32(a, BYTES, 300), -1, 'the child does not see the parent\'s device write');
  assert.is(dmirror_cmd(rc, HMM_DMIRROR_READ, a, N).ret, 0);
  assert.is(c.check32(rc.mirror, BYTES, 300), -1, 'the child\'s device reads the child\'s bytes');
  assert.is(p.check32(a, BYTES, 200), -1);
});

t('dmirror: a device write to a page shared COW with a child copies it first: the child keeps the old bytes', () => {
  const a = p.mmap(0, BYTES, RW, ANON);
  p.fill32(a, BYTES, 5);
  const c = p.fork();
  p.fill32(r.mirror, BYTES, 6);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_WRITE, a, N).ret, 0);
  assert.is(p.check32(a, BYTES, 6), -1);
  assert.is(c.check32(a, BYTES, 5), -1, 'the device wrote the parent\'s copy, not the shared page');
});

/* ---- the 2015 dummy driver (HMM v8) ---- */

function dummy(proc: Process): hmm_ctx {
  const ctx = new hmm_ctx(proc, 'isolation', []);
  assert.is(hmm_ctx_init(ctx), 0);
  return ctx;
}

t('hmm_dummy: after munmap, through PROT_NONE and read-only, and after fork, the v8 device sees only what the process may', () => {
  insmodHmmDummy();
  const ctx = dummy(p);
  const b = hmm_buffer_new_anon(p, 'b', BYTES);
  const n = hmm_buffer_nbytes(b);
  ints_fill(p, b.ptr, n, (k) => k + 1);
  assert.is(hmm_buffer_mirror_read(ctx, b, -1, 0), 0);
  assert.is(ints_check(p, b.mirror, n, (k) => k + 1).k, -1);
  /* read-only: no device write */
  assert.is(p.mprotect(b.ptr, n, PROT_READ), 0);
  ints_fill(p, b.mirror, n, () => 9);
  assert.ok(hmm_buffer_mirror_write(ctx, b, -1, 0) < 0, 'a device write through a read-only mapping fails');
  assert.is(ints_check(p, b.ptr, n, (k) => k + 1).k, -1, 'and changes nothing');
  /* PROT_NONE: no device read */
  assert.is(p.mprotect(b.ptr, n, PROT_NONE), 0);
  ints_fill(p, b.mirror, n, () => 0xdead);
  assert.ok(hmm_buffer_mirror_read(ctx, b, -1, 0) < 0);
  assert.is(ints_check(p, b.mirror, n, () => 0xdead).k, -1, 'nothing copied out');
  /* after fork the child's writes stay in the child */
  assert.is(p.mprotect(b.ptr, n, RW), 0);
  const c = p.fork();
  ints_fill(c, b.ptr, n, () => 77);
  assert.is(hmm_buffer_mirror_read(ctx, b, -1, 0), 0);
  assert.is(ints_check(p, b.mirror, n, (k) => k + 1).k, -1, 'the parent\'s device reads the parent\'s bytes');
  /* after munmap: -EFAULT, no stale bytes */
  assert.is(p.munmap(b.ptr, n), 0);
  ints_fill(p, b.mirror, n, () => 0xbeef);
  assert.is(hmm_buffer_mirror_read(ctx, b, -1, 0), -EFAULT);
  assert.is(ints_check(p, b.mirror, n, () => 0xbeef).k, -1);
});

t.run();
