/*
 * test/lib/test_hmm_dpt.test.ts - dmirror's bounce buffers
 * (lib/test_hmm_dpt.ts): the memory of a freed bounce buffer serves the
 * next one, zeroed, so READ, WRITE and MIGRATE_TO_DEV read-back return
 * exactly the range's bytes whatever the previous command left in it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { start_kernel } from '../../mm/init.js';
import { Process } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import { HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV } from '../../include/uapi/linux/test_hmm.js';
import { hmm_dmirror_init } from '../../lib/test_hmm.js';
import { dmirror_bounce_reused } from '../../lib/test_hmm_dpt.js';
import { Dmirror } from '../../tools/lib/dmirror.js';

const RW = PROT_READ | PROT_WRITE, ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const N = 64;

test('a READ after a WRITE reuses the bounce memory and returns the range bytes, not the previous command\'s', () => {
  start_kernel({});
  hmm_dmirror_init();
  const p = Process.spawn('t');
  const dev = new Dmirror(p, 0);
  const a = p.mmap(0, N * PAGE_SIZE, RW, ANON), b = p.mmap(0, N * PAGE_SIZE, RW, ANON);
  const src = p.mmap(0, N * PAGE_SIZE, RW, ANON), out = p.mmap(0, N * PAGE_SIZE, RW, ANON);
  p.fill32(a, N * PAGE_SIZE, 1000);
  p.fill32(src, N * PAGE_SIZE, 5);
  const r0 = dmirror_bounce_reused();
  assert.is(dev.ioctl(HMM_DMIRROR_WRITE, b, N, src), 0, 'the device writes b from src');
  assert.is(p.check32(b, N * PAGE_SIZE, 5), -1);
  assert.is(dev.ioctl(HMM_DMIRROR_READ, a, N, out), 0);
  assert.is(p.check32(out, N * PAGE_SIZE, 1000), -1, 'READ returns a, not the bytes the WRITE left in the buffer');
  assert.ok(dmirror_bounce_reused() > r0, 'the second command reused the first one\'s memory');
});

test('a READ of untouched memory after a MIGRATE_TO_DEV read-back returns zeroes, none of the earlier bytes', () => {
  start_kernel({});
  hmm_dmirror_init();
  const p = Process.spawn('t');
  const dev = new Dmirror(p, 0);
  const a = p.mmap(0, N * PAGE_SIZE, RW, ANON), out = p.mmap(0, N * PAGE_SIZE, RW, ANON);
  p.fill32(a, N * PAGE_SIZE, 7);
  p.fill32(out, N * PAGE_SIZE, 99);
  assert.is(dev.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, a, N, out), 0);
  assert.is(p.check32(out, N * PAGE_SIZE, 7), -1, 'MIGRATE_TO_DEV reads the migrated data back');
  const hole = p.mmap(0, N * PAGE_SIZE, RW, ANON);
  p.fill32(out, N * PAGE_SIZE, 99);
  assert.is(dev.ioctl(HMM_DMIRROR_READ, hole, N, out), 0, 'READ faults the zero page in');
  assert.ok(p.read(out, N * PAGE_SIZE).every((x) => x === 0), 'all zero: no byte of the earlier read-back');
});

test.run();
