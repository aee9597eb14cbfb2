/*
 * test/drivers/infiniband/odp_fault_inject.test.ts - the fault-injection
 * sweep (test/lib/fault-inject-sweep.ts) over the ODP NIC
 * (drivers/infiniband/core/umem_odp.ts, hw/mlx5/): the sites
 * fail_dma_map (dma_map_page() of a umem page, lib/dma/mapping.ts) and
 * fail_hmm_retry (the retry loop of ib_umem_odp_map_dma_and_lock()) fail
 * at their 1st hit, then on a fresh machine at the 2nd, ... until a run
 * completes without the injection firing. This is fail_dma_map's first
 * sweep (dmirror does not DMA-map).
 *
 * What each failure must give, as Linux v5.10 gives it:
 *   dma_map    a pinned MR: ibv_reg_mr() fails with ENOMEM (ib_umem_get),
 *              nothing left mapped or pinned; an ODP page fault:
 *              ib_umem_odp_map_dma_single_page() says -EFAULT, the fault
 *              is resumed with the error bit, the work request completes
 *              in error (IBV_WC_REM_ACCESS_ERR at the requester for a
 *              responder fault, IBV_WC_LOC_PROT_ERR for its own) and the
 *              QP moves to the error state; ibv_advise_mr(FLUSH) returns
 *              EFAULT
 *   hmm_retry  the fault handler sees an invalidation, retries, succeeds
 * In every run: the memory a failed RDMA WRITE or READ targeted holds, per
 * page, its old or its new content (RDMA leaves it undefined, the model
 * moves whole pages); all other bytes exact; no BUG, no WARN, no leak.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { MAP_FIXED, MADV_DONTNEED } from '../../../include/uapi/asm-generic/mman.js';
import { EFAULT, ENOMEM } from '../../../include/uapi/asm-generic/errno.js';
import {
  ibv_reg_mr, ibv_dereg_mr, ibv_post_send, ibv_poll_cq, ibv_advise_mr, ibv_errno, IBV_ACCESS_LOCAL_WRITE,
  IBV_ACCESS_REMOTE_WRITE, IBV_ACCESS_REMOTE_READ, IBV_ACCESS_ON_DEMAND, IBV_WR_RDMA_WRITE, IBV_WR_RDMA_READ,
  IBV_SEND_SIGNALED, IBV_WC_SUCCESS, IBV_WC_REM_ACCESS_ERR, IBV_WC_LOC_PROT_ERR, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
  IBV_ADVISE_MR_FLAG_FLUSH, type ibv_mr,
} from '../../../tools/include/infiniband/verbs.js';
import { fault_attr_lookup } from '../../../lib/fault-inject.js';
import { rig, RW, ANON, type side } from './rig.js';
import { sweep_site, user_pages, type sweep_ctx, type workload } from '../../lib/fault-inject-sweep.js';

const W = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
const ODP = W | IBV_ACCESS_ON_DEMAND;
const N = 8;
const A_BASE = 0x40000000, B_BASE = 0x48000000, A2_BASE = 0x50000000, PIN_BASE = 0x58000000;

/* @n pages at @base in @s's process, filled with patterns from @tag */
function buffer(s: side, base: number, n: number, tag: number): user_pages {
  if (s.p.mmap(base, n * PAGE_SIZE, RW, ANON | MAP_FIXED) !== base) throw new Error(`mmap 0x${base.toString(16)}`);
  const u = new user_pages(s.p, base, n, tag);
  u.want.forEach((b, i) => s.p.write(u.addr(i), b));
  return u;
}

/* has the armed site fired in this run? */
const fired = (c: sweep_ctx) => fault_attr_lookup(c.site)!.failures > 0;

/*
 * One signalled RDMA op of N pages from @from (local, @lmr) to or from
 * @to (remote, @rmr). On success the destination holds the source; on an
 * allowed failure each destination page is old or new. Return: true if
 * the QP is still usable.
 */
function rdma(c: sweep_ctx, s: side, what: string, opcode: number, local: user_pages, lmr: ibv_mr, remote: user_pages, rmr: ibv_mr): boolean {
  const rc = ibv_post_send(s.qp, { wr_id: 1, opcode, send_flags: IBV_SEND_SIGNALED, sg_list: [{ addr: local.base, length: N * PAGE_SIZE, lkey: lmr.lkey }],
    remote_addr: remote.base, rkey: rmr.rkey });
  if (rc !== 0) c.fail(`${what}: post_send ${rc}`);
  const wc = ibv_poll_cq(s.cq, 4);
  if (wc.length !== 1) c.fail(`${what}: ${wc.length} completions`);
  const st = wc[0]!.status;
  c.log.push(`${what} -> wc ${st}`);
  const [src, dst] = opcode === IBV_WR_RDMA_WRITE ? [local, remote] : [remote, local];
  if (st === IBV_WC_SUCCESS) {
    src.want.forEach((b, i) => { dst.want[i] = b; });
    return true;
  }
  if (!fired(c) || (st !== IBV_WC_REM_ACCESS_ERR && st !== IBV_WC_LOC_PROT_ERR)) c.fail(`${what}: completion status ${st}`);
  for (let i = 0; i < N; i++) dst.settle(c, i, src.want[i]!);
  return false;
}

/*
 * A registers a pinned MR (DMA-maps now) and ODP MRs; RDMA WRITE of A's 8
 * pages into B (requester WQE faults on A, responder RDMA faults on B);
 * B drops two pages (MADV_DONTNEED: an invalidation) and rewrites one;
 * a prefetch with ibv_advise_mr(FLUSH); RDMA READ of B into A2.
 */
const odp_workload: workload = {
  name: 'ODP MRs: registration, RDMA WRITE and READ faults, invalidation, prefetch',
  sites: ['dma_map', 'hmm_retry'],
  boot() { /* rig() boots */ },
  setup() {
    const { a, b } = rig('mainline');
    const A = buffer(a, A_BASE, N, 1), B = buffer(b, B_BASE, N, 0x100), A2 = buffer(a, A2_BASE, N, 0x200);
    const PIN = buffer(a, PIN_BASE, 2, 0x300);
    const amr = ibv_reg_mr(a.pd, A.base, N * PAGE_SIZE, ODP)!, bmr = ibv_reg_mr(b.pd, B.base, N * PAGE_SIZE, ODP)!;
    const a2mr = ibv_reg_mr(a.pd, A2.base, N * PAGE_SIZE, ODP)!;
    return {
      run(c) {
        const pin = ibv_reg_mr(a.pd, PIN.base, 2 * PAGE_SIZE, W);
        if (pin === null) c.ret('reg pinned MR', -ibv_errno(), [-ENOMEM]);
        let ok = rdma(c, a, 'RDMA WRITE A -> B', IBV_WR_RDMA_WRITE, A, amr, B, bmr);
        b.p.madvise(B.addr(4), 2 * PAGE_SIZE, MADV_DONTNEED);
        B.want[4] = new Uint8Array(PAGE_SIZE);
        B.want[5] = new Uint8Array(PAGE_SIZE);
        B.store(c, 6, 0x400);
        const adv = ibv_advise_mr(a.pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, IBV_ADVISE_MR_FLAG_FLUSH,
          [{ addr: A2.base, length: N * PAGE_SIZE, lkey: a2mr.lkey }]);
        c.ret('advise_mr PREFETCH_WRITE FLUSH', -adv, [-EFAULT]);
        if (ok) ok = rdma(c, a, 'RDMA READ B -> A2', IBV_WR_RDMA_READ, A2, a2mr, B, bmr);
        if (pin !== null) c.ret('dereg pinned MR', -ibv_dereg_mr(pin));
        for (const [u, who] of [[A, 'A'], [B, 'B'], [A2, 'A2'], [PIN, 'pinned']] as const) u.check(c, who);
      },
    };
  },
};

for (const site of odp_workload.sites) {
  test(`sweep: ${odp_workload.name}, ${site} failing at every hit in turn: Linux's errno or WC status, bytes intact, no WARN, no leak`, () => {
    const r = sweep_site(site, odp_workload);
    assert.ok(r.fired >= 1, `${site} never fired (${r.hits} hits)`);
    assert.is(r.runs, r.fired + 1, 'the last run is the first without a failure');
    assert.is(r.hits, r.fired, 'the clean run has one hit fewer than its index');
  });
}

test.run();
