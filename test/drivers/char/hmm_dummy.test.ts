/*
 * test/drivers/char/hmm_dummy.test.ts - the 2015 dummy driver
 * (drivers/char/hmm_dummy.ts) through its uapi: errno of the 2015 core,
 * counters, fake device memory, migration both ways, fork with device
 * memory, DMA mode.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../../helpers.js';
import type { Process } from '../../../tools/include/nolibc/nolibc.js';
import { UserFault } from '../../../mm/fault.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, PROT_NONE, MAP_SHARED, MADV_DONTNEED } from '../../../include/uapi/asm-generic/mman.js';
import { EACCES, EBUSY, EFAULT, EINVAL, ENOMEM } from '../../../include/uapi/asm-generic/errno.js';
import { pte_kind } from '../../../include/linux/swapops.js';
import {
  HMM_DUMMY_EXPOSE_MM, HMM_DUMMY_READ, HMM_DUMMY_WRITE, HMM_DUMMY_MIGRATE_TO, HMM_DUMMY_STRUCT_SIZE,
  hmm_dummy_migrate_encode, hmm_dummy_migrate_decode, hmm_dummy_rw_encode, hmm_dummy_path,
} from '../../../include/uapi/linux/hmm_dummy.js';
import { O_RDWR, O_EXCL } from '../../../mm/file.js';
import { hmm_dummy_params, hmm_dummy_init, insmodHmmDummy, hmm_dummy_rmem_used, hmmDummyDeviceOf } from '../../../drivers/char/hmm_dummy.js';
import {
  hmm_ctx, hmm_ctx_init, hmm_ctx_fini, hmm_buffer_new_anon, hmm_buffer_new_share, hmm_buffer_nbytes,
  hmm_buffer_mirror_read, hmm_buffer_mirror_write, hmm_buffer_mirror_migrate_to, hmm_buffer_mprotect,
  ints_fill, ints_check, hmm_create_file, hmm_buffer_new_file, hmm_ftruncate, type hmm_buffer,
} from '../../../tools/testing/selftests/hmm-dummy/hmm_test_framework.js';
import { get_counter } from '../../../lib/sim/trace.js';

const t = suite('drivers/char/hmm_dummy');
let p: Process;
let ctx: hmm_ctx;
t.before.each(() => {
  p = boot();
  insmodHmmDummy();
  ctx = new hmm_ctx(p, 'unit', []);
  assert.is(hmm_ctx_init(ctx), 0);
});

const K = (k: number) => k;
const kind = (addr: number) => pte_kind(pte_at(p.mm, addr)).kind;

function filled(npages: number): hmm_buffer {
  const b = hmm_buffer_new_anon(p, 'b', npages << 12);
  ints_fill(p, b.ptr, hmm_buffer_nbytes(b), K);
  return b;
}

function migrate_rc(address: number, size: number): { rc: number; n: number } {
  const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
  hmm_dummy_migrate_encode(raw, { address, size, nfaulted_sys_pages: 7, nfaulted_dev_pages: 0 });
  p.write(ctx.arg, raw);
  const rc = p.ioctl(ctx.fd, HMM_DUMMY_MIGRATE_TO, ctx.arg);
  const s = hmm_dummy_migrate_decode(p.read(ctx.arg, HMM_DUMMY_STRUCT_SIZE));
  assert.is(s.nfaulted_sys_pages, 7, 'never written by the driver');
  return { rc, n: s.nfaulted_dev_pages };
}

t('the ioctl numbers are the asm-generic encodings of header v2', () => {
  assert.equal([HMM_DUMMY_EXPOSE_MM, HMM_DUMMY_READ, HMM_DUMMY_WRITE, HMM_DUMMY_MIGRATE_TO],
    [0x00004800, 0xC0804801, 0xC0804802, 0xC0804803]);
});

t('nodes, O_EXCL, a second EXPOSE_MM, an unbound minor, mmap and unknown ioctls', () => {
  assert.ok(p.open(hmm_dummy_path(1, 3), O_RDWR) >= 0);
  assert.ok(p.open(hmm_dummy_path(2, 0), O_RDWR) < 0, 'the load script made nodes for devices 0 and 1 only');
  assert.is(p.open(hmm_dummy_path(0, 1), O_RDWR | O_EXCL), -EINVAL);
  assert.is(p.ioctl(ctx.fd, HMM_DUMMY_EXPOSE_MM, 0), -EBUSY);
  const q = p.fork();
  const qfd = q.open(hmm_dummy_path(0, 0), O_RDWR);
  assert.is(q.ioctl(qfd, HMM_DUMMY_EXPOSE_MM, 0), -EBUSY, 'the slot is per minor, not per open file');
  const fd1 = p.open(hmm_dummy_path(0, 1), O_RDWR);
  assert.is(p.ioctl(fd1, HMM_DUMMY_READ, ctx.arg), -EINVAL, 'unbound minor');
  assert.is(p.ioctl(ctx.fd, 0xC0804809, ctx.arg), -EINVAL);
  assert.ok(p.mmap(0, PAGE_SIZE, RW, MAP_SHARED, ctx.fd, 0) < 0);
});

t('READ of 1024 present pages: one populate round, every copy from system memory', () => {
  const b = filled(1024);
  assert.is(hmm_buffer_mirror_read(ctx, b, -1, 0), 0);
  assert.equal([b.nsys_pages, b.nfaulted_sys_pages, b.ndev_pages, b.nfaulted_dev_pages], [1024, 1024, 0, 0]);
  assert.is(ints_check(p, b.mirror, hmm_buffer_nbytes(b), K).k, -1);
  assert.is(hmm_buffer_mirror_read(ctx, b, -1, 0), 0);
  assert.is(b.nfaulted_sys_pages, 0, 'a second READ hits the device table');
});

t('errno of the 2015 core: EACCES for a write to a read-only VMA, EFAULT for PROT_NONE and holes', () => {
  const b = filled(4);
  assert.is(hmm_buffer_mprotect(b, PROT_READ), 0);
  assert.is(hmm_buffer_mirror_write(ctx, b, -1, 0), -EACCES);
  assert.is(hmm_buffer_mprotect(b, PROT_NONE), 0);
  assert.is(hmm_buffer_mirror_read(ctx, b, -1, 0), -EFAULT);
  assert.is(hmm_buffer_mirror_write(ctx, b, -1, 0), -EACCES);
  const hole = Object.assign(Object.create(b), { ptr: 0x10000 });
  assert.is(hmm_buffer_mirror_read(ctx, hole, PAGE_SIZE, 0), -EFAULT);
});

t('file truncate as the 2015 commit intended: a device READ of the truncated half gets EFAULT', () => {
  const fd = hmm_create_file(p, 8 << 12);
  const b = hmm_buffer_new_file(p, 'f', fd, 8 << 12);
  ints_fill(p, b.ptr, 8 << 12, K);
  assert.is(hmm_ftruncate(p, fd, 4 << 12), 0);
  const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
  hmm_dummy_rw_encode(raw, { address: b.ptr + (4 << 12), size: 4 << 12, ptr: b.mirror, nsys_pages: 0, nfaulted_sys_pages: 0, ndev_pages: 0, nfaulted_dev_pages: 0 });
  p.write(ctx.arg, raw);
  assert.is(p.ioctl(ctx.fd, HMM_DUMMY_READ, ctx.arg), -EFAULT);
  assert.is(hmm_buffer_mirror_read(ctx, b, 4 << 12, 0), 0);
  assert.is(ints_check(p, b.mirror, 4 << 12, K).k, -1);
  assert.is(migrate_rc(b.ptr, 4 << 12).rc, -EINVAL, 'file memory does not migrate in 2015');
});

t('MIGRATE_TO: 256 pages copied, CPU PTEs become SWP_HMM, munmap gives the fake pages back', () => {
  const b = filled(256);
  const { rc, n } = migrate_rc(b.ptr, hmm_buffer_nbytes(b));
  assert.equal([rc, n], [0, 256]);
  assert.is(hmm_dummy_rmem_used(0), 256);
  assert.is(kind(b.ptr), 'hmm');
  assert.is(p.munmap(b.ptr, hmm_buffer_nbytes(b)), 0);
  assert.is(hmm_dummy_rmem_used(0), 0);
});

t('MIGRATE_TO errors: more than 512 pages, shared memory, fake memory exhausted (EINVAL, EINVAL, ENOMEM)', () => {
  const big = filled(513);
  assert.is(migrate_rc(big.ptr, 513 << 12).rc, -EINVAL);
  const sh = hmm_buffer_new_share(p, 'sh', 4 << 12);
  assert.is(migrate_rc(sh.ptr, 4 << 12).rc, -EINVAL);
  p.munmap(big.ptr, 513 << 12);
  hmm_dummy_params.rmem_pages = 8;
  hmm_dummy_init();
  hmm_ctx_fini(ctx);
  ctx = new hmm_ctx(p, 'unit', []);
  assert.is(hmm_ctx_init(ctx), 0);
  const b = filled(16);
  assert.is(migrate_rc(b.ptr, 16 << 12).rc, -ENOMEM);
  assert.is(hmm_dummy_rmem_used(0), 0, 'nothing reserved is kept');
});

t('device-resident pages: READ and WRITE go to device memory; a CPU touch migrates one page back', () => {
  const b = filled(8);
  hmm_buffer_mirror_migrate_to(ctx, b);
  assert.is(hmm_buffer_mirror_read(ctx, b, -1, 0), 0);
  assert.equal([b.ndev_pages, b.nsys_pages], [8, 0]);
  ints_fill(p, b.mirror, 8 << 12, (k) => k * 3);
  assert.is(hmm_buffer_mirror_write(ctx, b, -1, 0), 0);
  assert.is(b.ndev_pages, 8);
  assert.is(p.read32(b.ptr + 3 * PAGE_SIZE + 4), (3 * 1024 + 1) * 3);
  assert.is(kind(b.ptr + 3 * PAGE_SIZE), 'present');
  assert.is(kind(b.ptr + 4 * PAGE_SIZE), 'hmm', 'one page per CPU fault');
  assert.is(hmm_dummy_rmem_used(0), 7);
  assert.is(ints_check(p, b.ptr, 8 << 12, (k) => k * 3).k, -1);
  assert.is(hmm_dummy_rmem_used(0), 0);
  assert.is(get_counter('hmm_v8_migrate_back'), 8);
});

t('fork with device memory: the child gets system copies, the parent keeps its device pages', () => {
  const b = filled(4);
  hmm_buffer_mirror_migrate_to(ctx, b);
  const c = p.fork();
  assert.is(kind(b.ptr), 'hmm', 'parent still on the device');
  assert.is(pte_kind(pte_at(c.mm, b.ptr)).kind, 'present', 'child got a system page');
  assert.is(get_counter('hmm_v8_fork_copy'), 4);
  assert.is(ints_check(c, b.ptr, 4 << 12, K).k, -1);
  c.write32(b.ptr, 12345);
  assert.is(hmm_dummy_rmem_used(0), 4);
  assert.is(ints_check(p, b.ptr, 4 << 12, K).k, -1, 'the parent sees its own data');
});

t('closing the device with pages on it poisons them: the next CPU access gets SIGBUS (v8)', () => {
  const b = filled(2);
  hmm_buffer_mirror_migrate_to(ctx, b);
  hmm_ctx_fini(ctx);
  assert.is(hmm_dummy_rmem_used(0), 0, 'the MUNMAP of everything freed the device memory');
  assert.throws(() => p.read32(b.ptr), (e: unknown) => e instanceof UserFault && /SIGBUS/.test((e as Error).message));
  assert.is(kind(b.ptr), 'hmm');
});

t('DMA mode: HMM hands the dummy bus addresses; the whole read/write/migrate path still works', () => {
  hmm_dummy_params.dma = true;
  hmm_dummy_init();
  hmm_ctx_fini(ctx);
  ctx = new hmm_ctx(p, 'unit', []);
  assert.is(hmm_ctx_init(ctx), 0);
  const dev = hmmDummyDeviceOf(0).device.dev!;
  const b = filled(16);
  assert.is(hmm_buffer_mirror_read(ctx, b, -1, 0), 0);
  assert.is(ints_check(p, b.mirror, 16 << 12, K).k, -1);
  assert.is(dev.nr_mapped, 16);
  hmm_buffer_mirror_migrate_to(ctx, b);
  assert.is(b.nfaulted_dev_pages, 16);
  assert.is(dev.nr_mapped, 0, 'migration unmapped the system pages');
  assert.is(ints_check(p, b.ptr, 16 << 12, K).k, -1, 'migrate back through DMA');
  assert.is(dev.iommu_faults, 0);
});

t('the device write sets DIRTY in its table; the next invalidation carries it to the page', () => {
  const b = filled(1);
  ints_fill(p, b.mirror, PAGE_SIZE, (k) => -k);
  assert.is(hmm_buffer_mirror_write(ctx, b, -1, 0), 0);
  assert.is(get_counter('hmm_v8_set_page_dirty'), 0);
  p.madvise(b.ptr, PAGE_SIZE, MADV_DONTNEED);
  assert.is(get_counter('hmm_v8_set_page_dirty'), 1);
});

t('closing a file whose EXPOSE_MM was refused leaves the other file\'s mirror bound (fuzzer seed 164)', () => {
  const b = filled(4);
  const fd2 = p.open(hmm_dummy_path(0, 0), O_RDWR);
  assert.is(p.ioctl(fd2, HMM_DUMMY_EXPOSE_MM, 0), -EBUSY, 'the minor is bound by ctx.fd');
  assert.is(p.close(fd2), 0);
  assert.is(hmm_buffer_mirror_read(ctx, b, -1, 0), 0, 'the mirror of ctx.fd still serves READ');
  const q = p.fork();                           /* the child inherits ctx.fd: the same open file */
  q.exit(0);
  assert.is(hmm_buffer_mirror_read(ctx, b, -1, 0), 0, 'the file is still open in the parent');
});

void ANON;
t.run();
