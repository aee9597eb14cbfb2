/*
 * tools/testing/selftests/hmm-dummy/historical.ts - the programs of the 2015
 * suite that did not survive to HEAD (catalog section 3.3), ported for the
 * record under their original names:
 *
 *   anonymous_read, anonymous_write (2015-07-23; the first framework: a
 *     hmm_test() returning a result struct, any ioctl error aborts the
 *     test, buffers sized in pages: 1024)
 *   anonymous_read_stress (2015-07-23): stress_anon001's ancestor, buffers
 *     of 1024 pages doubled on retry
 *   sanity_anonr, sanity_anonw, stress_anonr (the 2015-08-06 renames)
 *   sanity_anon004@3f6c166: the PROT_NONE test before edd74fc, whose final
 *     check failure path forgot to set the result (a false pass was
 *     possible); ported as written, bug included
 *
 * They use header v1 (READ/WRITE end after nfaulted_sys_pages); the driver
 * speaks v2, which has the same ioctl numbers and struct size.
 */
import type { Process } from '../../../include/nolibc/nolibc.js';
import { PROT_READ, PROT_NONE } from '../../../../include/uapi/asm-generic/mman.js';
import {
  hmm_ctx, hmm_ctx_init, hmm_ctx_fini, hmm_buffer_new_anon, hmm_buffer_nbytes, hmm_buffer_mirror_read,
  hmm_buffer_mirror_write, hmm_buffer_mprotect, hmm_buffer_free, ints_fill, ints_check, HmmTestFatal,
  type hmm_buffer,
} from './hmm_test_framework.js';
import { STRESS_ANON001_SLOTS, STRESS_ANON001_MAX_ROUNDS } from './stress.js';
import type { hmm_dummy_test } from './tests.js';

const K = (k: number) => k;
const ZERO = () => 0;

/* the July framework: struct hmm_test_result { ret }, ioctl errors abort */
interface hmm_test_result { ret: number }
function early_main(p: Process, out: string[], title: string, hmm_test: (ctx: hmm_ctx, r: hmm_test_result) => void): number {
  const ctx = new hmm_ctx(p, title, out);
  if (hmm_ctx_init(ctx)) return -1;
  const r: hmm_test_result = { ret: 0 };
  try {
    hmm_test(ctx, r);
  } finally {
    hmm_ctx_fini(ctx);
  }
  return r.ret;
}

function must(rc: number, what: string): void {
  if (rc) throw new HmmTestFatal(`${what}: ioctl failed (${rc})`);
}

function read_test(npages: number) {
  return (ctx: hmm_ctx, r: hmm_test_result): void => {
    const b = hmm_buffer_new_anon(ctx.p, 'anon', npages << 12);
    ints_fill(ctx.p, b.ptr, hmm_buffer_nbytes(b), K);
    must(hmm_buffer_mirror_read(ctx, b, -1, 0), 'read');
    if (ints_check(ctx.p, b.mirror, hmm_buffer_nbytes(b), K).k >= 0) r.ret = -1;
  };
}

function write_test(npages: number) {
  return (ctx: hmm_ctx, r: hmm_test_result): void => {
    const b = hmm_buffer_new_anon(ctx.p, 'anon', npages << 12);
    ints_fill(ctx.p, b.mirror, hmm_buffer_nbytes(b), K);
    must(hmm_buffer_mirror_write(ctx, b, -1, 0), 'write');
    if (ints_check(ctx.p, b.ptr, hmm_buffer_nbytes(b), K).k >= 0) r.ret = -1;
  };
}

/* anonymous_read_stress / stress_anonr: stress_anon001 with 1024-page buffers to start with */
function read_stress(ctx: hmm_ctx, r: hmm_test_result): void {
  let npages = 1024;
  for (let round = 0; round < STRESS_ANON001_MAX_ROUNDS; round++) {
    const bufs: hmm_buffer[] = [];
    for (let j = 0; j < STRESS_ANON001_SLOTS; j++) {
      const b = hmm_buffer_new_anon(ctx.p, `buffer[${j}]`, npages << 12);
      ints_fill(ctx.p, b.ptr, hmm_buffer_nbytes(b), K);
      must(hmm_buffer_mirror_read(ctx, b, -1, 0), 'read');
      if (ints_check(ctx.p, b.mirror, hmm_buffer_nbytes(b), K).k >= 0) { r.ret = -1; return; }
      bufs.push(b);
    }
    let nrefaults = 0;
    for (const b of bufs) {
      must(hmm_buffer_mirror_read(ctx, b, -1, 0), 'reread');
      nrefaults += b.nfaulted_sys_pages;
      if (ints_check(ctx.p, b.mirror, hmm_buffer_nbytes(b), K).k >= 0) { r.ret = -1; return; }
    }
    for (const b of bufs) hmm_buffer_free(b);
    if (nrefaults >= npages) return;
    npages *= 2;
  }
  r.ret = -1;
}

const SWAP_MACHINE = { ram_bytes: 16 << 20, swap_bytes: 512 << 20 } as never;

export const historical_tests: hmm_dummy_test[] = [
  { name: 'anonymous_read', title: 'anonymous read test', historical: true,
    run: (p, out) => early_main(p, out, 'anonymous read test', read_test(1024)) },
  { name: 'anonymous_write', title: 'anonymous write test', historical: true,
    run: (p, out) => early_main(p, out, 'anonymous write test', write_test(1024)) },
  { name: 'anonymous_read_stress', title: 'anonymous read stress test', historical: true, boot: SWAP_MACHINE,
    run: (p, out) => early_main(p, out, 'anonymous read stress test', read_stress) },
  { name: 'sanity_anonr', title: 'anon read test', historical: true,
    run: (p, out) => early_main(p, out, 'anon read test', read_test(1024)) },
  { name: 'sanity_anonw', title: 'anon write test', historical: true,
    run: (p, out) => early_main(p, out, 'anon write test', write_test(1024)) },
  { name: 'stress_anonr', title: 'anon read stress test', historical: true, boot: SWAP_MACHINE,
    run: (p, out) => early_main(p, out, 'anon read stress test', read_stress) },
  {
    name: 'sanity_anon004@3f6c166', title: 'anon mprotect with PROT_NONE test', historical: true,
    run: (p, out) => {
      const ctx = new hmm_ctx(p, 'anon mprotect with PROT_NONE test', out);
      if (hmm_ctx_init(ctx)) return -1;
      let ret = 0;
      const b = hmm_buffer_new_anon(p, 'anon', 1024 << 12);
      const n = hmm_buffer_nbytes(b);
      ints_fill(p, b.ptr, n, K);
      ints_fill(p, b.mirror, n, ZERO);
      if (hmm_buffer_mprotect(b, PROT_NONE)) ret = -1;
      hmm_buffer_mirror_read(ctx, b, -1, 0);
      if (ints_check(p, b.mirror, n, ZERO).k >= 0) ret = -1;
      hmm_buffer_mirror_write(ctx, b, -1, 0);
      if (hmm_buffer_mprotect(b, PROT_READ)) ret = -1;
      if (ints_check(p, b.ptr, n, K).k >= 0) out.push('(EE) final check failed (and this version still reports OK)');
      hmm_ctx_fini(ctx);
      return ret;
    },
  },
];
