/*
 * test/drivers/infiniband/hw/mlx5/odp.test.ts - the NIC side of ODP:
 * each fault kind with its counters, invalidation,
 * read -> write upgrade in place, implicit children, ibv_advise_mr modes,
 * the rdma stat dump.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PAGE_SIZE } from '../../../../../include/linux/mm.js';
import { MADV_DONTNEED } from '../../../../../include/uapi/asm-generic/mman.js';
import { EINVAL, EOPNOTSUPP, ENOENT, ENOSPC } from '../../../../../include/uapi/asm-generic/errno.js';
import { MLX5_IB_MTT_READ, MLX5_IB_MTT_WRITE, MLX5_IB_NUM_PF_EQE, mlx5_mtt_perm, mlx5_mtt_dma, MAX_PREFETCH_LEN } from '../../../../../include/linux/mlx5/odp.js';
import { pfn_to_page } from '../../../../../mm/page_alloc.js';
import { dma_to_pfn } from '../../../../../lib/dma/mapping.js';
import { get_counter } from '../../../../../lib/sim/trace.js';
import { mlx5_ib_mr_of_key } from '../../../../../drivers/infiniband/hw/mlx5/mlx5_ib.js';
import { mlx5_mr_mtt_entry } from '../../../../../drivers/infiniband/hw/mlx5/mr.js';
import { mlx5_ib_rdma_stat, mlx5_ib_pf_eqe_push } from '../../../../../drivers/infiniband/hw/mlx5/odp.js';
import {
  ibv_reg_mr, ibv_dereg_mr, ibv_post_send, ibv_post_recv, ibv_poll_cq, ibv_advise_mr, SIZE_MAX,
  IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_REMOTE_WRITE, IBV_ACCESS_REMOTE_READ, IBV_ACCESS_ON_DEMAND, IBV_WR_RDMA_WRITE,
  IBV_WR_SEND, IBV_SEND_SIGNALED, IBV_WC_SUCCESS, IBV_WC_REM_ACCESS_ERR, IBV_ADVISE_MR_ADVICE_PREFETCH, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
  IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT, IBV_ADVISE_MR_FLAG_FLUSH,
} from '../../../../../tools/include/infiniband/verbs.js';
import { rig, pattern, same, RW, ANON } from '../../rig.js';
import { pte_at } from '../../../../helpers.js';
import { pte_pfn } from '../../../../../include/linux/pgtable.js';

const W = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
const ODP = W | IBV_ACCESS_ON_DEMAND;

for (const design of ['2014', 'hmm_v8', 'mainline'] as const) {
  test(`${design}: requester, responder-WQE and RDMA faults each count page_faults on the MR that faulted`, () => {
    const { a, b } = rig(design, { min_rnr_timer: 1 });
    const abuf = a.p.mmap(0, 4 * PAGE_SIZE, RW, ANON), bbuf = b.p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
    a.p.write(abuf, pattern(4 * PAGE_SIZE, 2));
    const amr = ibv_reg_mr(a.pd, abuf, 4 * PAGE_SIZE, ODP)!, bmr = ibv_reg_mr(b.pd, bbuf, 4 * PAGE_SIZE, ODP)!;
    /* SEND: A's gather faults (requester), B's receive buffer faults (responder WQE + one RNR NAK) */
    ibv_post_recv(b.qp, { wr_id: 5, sg_list: [{ addr: bbuf, length: PAGE_SIZE, lkey: bmr.lkey }] });
    ibv_post_send(a.qp, { wr_id: 1, opcode: IBV_WR_SEND, send_flags: IBV_SEND_SIGNALED, sg_list: [{ addr: abuf, length: PAGE_SIZE, lkey: amr.lkey }] });
    assert.is(ibv_poll_cq(a.cq, 2)[0].status, IBV_WC_SUCCESS);
    assert.is(same(b.p.read(bbuf, PAGE_SIZE), pattern(PAGE_SIZE, 2)), true);
    const sa = mlx5_ib_mr_of_key(a.dev, amr.lkey)!.odp_stats, sb = mlx5_ib_mr_of_key(b.dev, bmr.lkey)!.odp_stats;
    assert.equal([sa.faults, sb.faults], [1, 1]);
    /* WRITE into B's pages 1..3: an RDMA responder fault, then the post-fault prefetch of the rest */
    ibv_post_send(a.qp, { wr_id: 2, opcode: IBV_WR_RDMA_WRITE, send_flags: IBV_SEND_SIGNALED,
      sg_list: [{ addr: abuf + PAGE_SIZE, length: 3 * PAGE_SIZE, lkey: amr.lkey }], remote_addr: bbuf + PAGE_SIZE, rkey: bmr.rkey });
    assert.is(ibv_poll_cq(a.cq, 2)[0].status, IBV_WC_SUCCESS);
    assert.equal([sb.faults, sb.prefetch], [2, 2]);
    assert.is(same(b.p.read(bbuf + PAGE_SIZE, 3 * PAGE_SIZE), pattern(4 * PAGE_SIZE, 2).subarray(PAGE_SIZE)), true);
    assert.equal(mlx5_ib_rdma_stat(b.dev), [`dev mlx5_1 mrn 1 lkey 0x100 page_faults 2 page_invalidations 0 page_prefetch 2`]);
  });

  test(`${design}: an invalidation zaps the MTT, counts page_invalidations, and the next access faults the new page`, () => {
    const { a, b } = rig(design);
    const abuf = a.p.mmap(0, 2 * PAGE_SIZE, RW, ANON), bbuf = b.p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
    a.p.write(abuf, pattern(2 * PAGE_SIZE, 3));
    const amr = ibv_reg_mr(a.pd, abuf, 2 * PAGE_SIZE, ODP)!, bmr = ibv_reg_mr(b.pd, bbuf, 2 * PAGE_SIZE, ODP)!;
    const send = () => {
      ibv_post_send(a.qp, { wr_id: 1, opcode: IBV_WR_RDMA_WRITE, send_flags: IBV_SEND_SIGNALED,
        sg_list: [{ addr: abuf, length: 2 * PAGE_SIZE, lkey: amr.lkey }], remote_addr: bbuf, rkey: bmr.rkey });
      assert.is(ibv_poll_cq(a.cq, 1)[0].status, IBV_WC_SUCCESS);
    };
    send();
    const mr = mlx5_ib_mr_of_key(b.dev, bmr.lkey)!;
    assert.ok(mlx5_mr_mtt_entry(mr, bbuf) !== 0);
    assert.is(b.p.madvise(bbuf, 2 * PAGE_SIZE, MADV_DONTNEED), 0);
    assert.is(mlx5_mr_mtt_entry(mr, bbuf), 0);
    assert.is(mlx5_mr_mtt_entry(mr, bbuf + PAGE_SIZE), 0);
    assert.is(mr.odp_stats.invalidations, 2);
    assert.is(mr.odp!.npages, 0);
    assert.is(b.p.read32(bbuf), 0, 'DONTNEED gave the CPU a zero page');
    send();
    assert.is(same(b.p.read(bbuf, 2 * PAGE_SIZE), pattern(2 * PAGE_SIZE, 3)), true);
    assert.is(dma_to_pfn(b.dev.dma, mlx5_mtt_dma(mlx5_mr_mtt_entry(mr, bbuf))), pte_pfn(pte_at(b.p.mm, bbuf)));
  });
}

test('a read prefetch maps read-only; a later RDMA WRITE upgrades the entry to writable in place (same bus address)', () => {
  const { a, b } = rig('mainline');
  const abuf = a.p.mmap(0, PAGE_SIZE, RW, ANON), bbuf = b.p.mmap(0, PAGE_SIZE, RW, ANON);
  b.p.write32(bbuf, 7);
  const amr = ibv_reg_mr(a.pd, abuf, PAGE_SIZE, ODP)!, bmr = ibv_reg_mr(b.pd, bbuf, PAGE_SIZE, ODP)!;
  assert.is(ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH, IBV_ADVISE_MR_FLAG_FLUSH, [{ addr: bbuf, length: PAGE_SIZE, lkey: bmr.lkey }]), 0);
  const mr = mlx5_ib_mr_of_key(b.dev, bmr.lkey)!;
  const before = mlx5_mr_mtt_entry(mr, bbuf);
  assert.is(mlx5_mtt_perm(before), MLX5_IB_MTT_READ);
  const upgrades = get_counter('ib_umem_odp_perm_upgrade');
  a.p.write32(abuf, 99);
  ibv_post_send(a.qp, { wr_id: 1, opcode: IBV_WR_RDMA_WRITE, send_flags: IBV_SEND_SIGNALED,
    sg_list: [{ addr: abuf, length: 4, lkey: amr.lkey }], remote_addr: bbuf, rkey: bmr.rkey });
  assert.is(ibv_poll_cq(a.cq, 1)[0].status, IBV_WC_SUCCESS);
  const after = mlx5_mr_mtt_entry(mr, bbuf);
  assert.is(mlx5_mtt_perm(after), MLX5_IB_MTT_READ | MLX5_IB_MTT_WRITE);
  assert.is(mlx5_mtt_dma(after), mlx5_mtt_dma(before), 'not unmapped and remapped');
  assert.is(get_counter('ib_umem_odp_perm_upgrade'), upgrades + 1);
  assert.is(mr.odp_stats.invalidations, 0);
  assert.is(b.p.read32(bbuf), 99);
});

test('implicit ODP: one key for the address space, a 1 GiB child per touched slot, freed when its last page goes', () => {
  const { a, b } = rig('mainline');
  const abuf = a.p.mmap(0, PAGE_SIZE, RW, ANON);
  const x = b.p.mmap(0, PAGE_SIZE, RW, ANON);
  const y = b.p.mmap(0x7e0000000000, PAGE_SIZE, RW, ANON | 0x10 /* MAP_FIXED */);
  assert.is(Math.floor(x / 2 ** 30) !== Math.floor(y / 2 ** 30), true);
  a.p.write32(abuf, 0xabcd);
  const amr = ibv_reg_mr(a.pd, abuf, PAGE_SIZE, ODP)!;
  const imr = ibv_reg_mr(b.pd, 0, SIZE_MAX, ODP)!;
  const mr = mlx5_ib_mr_of_key(b.dev, imr.lkey)!;
  assert.is(mr.implicit_children!.size, 0);
  for (const dst of [x, y]) {
    ibv_post_send(a.qp, { wr_id: 1, opcode: IBV_WR_RDMA_WRITE, send_flags: IBV_SEND_SIGNALED,
      sg_list: [{ addr: abuf, length: 4, lkey: amr.lkey }], remote_addr: dst, rkey: imr.rkey });
    assert.is(ibv_poll_cq(a.cq, 1)[0].status, IBV_WC_SUCCESS);
    assert.is(b.p.read32(dst), 0xabcd);
  }
  assert.equal([...mr.implicit_children!.keys()].sort(), [Math.floor(x / 2 ** 30), Math.floor(y / 2 ** 30)].sort());
  assert.is(b.p.munmap(y, PAGE_SIZE), 0);
  assert.equal([...mr.implicit_children!.keys()], [Math.floor(x / 2 ** 30)]);
  assert.match(mlx5_ib_rdma_stat(b.dev)[0], /children 1$/);
  assert.is(mr.odp_stats.invalidations, 1);
  assert.is(get_counter('mlx5_ib_implicit_child_free'), 1);
  assert.is(ibv_dereg_mr(imr), 0);
});

test('advise_mr: PREFETCH_WRITE maps writable; NO_FAULT maps only what the CPU maps; async work waits for the kworker', () => {
  const { b } = rig('mainline');
  const buf = b.p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  b.p.write32(buf + PAGE_SIZE, 1);                   /* only page 1 is present on the CPU */
  const bmr = ibv_reg_mr(b.pd, buf, 4 * PAGE_SIZE, ODP)!;
  const mr = mlx5_ib_mr_of_key(b.dev, bmr.lkey)!;
  const sge = [{ addr: buf, length: 4 * PAGE_SIZE, lkey: bmr.lkey }];
  assert.is(ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT, IBV_ADVISE_MR_FLAG_FLUSH, sge), 0);
  assert.equal([0, 1, 2, 3].map((i) => mlx5_mtt_perm(mlx5_mr_mtt_entry(mr, buf + i * PAGE_SIZE))), [0, 3, 0, 0]);
  assert.is(ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, 0, sge), 0);
  assert.is(mlx5_mr_mtt_entry(mr, buf), 0, 'queued, not run yet');
  ibv_poll_cq(b.cq, 1);
  assert.equal([0, 1, 2, 3].map((i) => mlx5_mtt_perm(mlx5_mr_mtt_entry(mr, buf + i * PAGE_SIZE))), [3, 3, 3, 3]);
  assert.is(mr.odp_stats.prefetch, 1 + 4);
  assert.is(mr.odp_stats.faults, 0);
  assert.is(ibv_advise_mr(b.pd, 9, 0, sge), EOPNOTSUPP);
  assert.is(ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 2, sge), EOPNOTSUPP);
  assert.is(ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, []), EINVAL);
  const pinned = ibv_reg_mr(b.pd, buf, PAGE_SIZE, W)!;
  assert.is(ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, [{ addr: buf, length: 8, lkey: pinned.lkey }]), ENOENT);
});

test('the 2014 design and HMM v8 have no PREFETCH_NO_FAULT: EOPNOTSUPP with FLUSH', () => {
  for (const design of ['2014', 'hmm_v8'] as const) {
    const { b } = rig(design);
    const buf = b.p.mmap(0, PAGE_SIZE, RW, ANON);
    const bmr = ibv_reg_mr(b.pd, buf, PAGE_SIZE, ODP)!;
    assert.is(ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT, IBV_ADVISE_MR_FLAG_FLUSH, [{ addr: buf, length: 8, lkey: bmr.lkey }]), EOPNOTSUPP);
  }
});

test('the post-fault prefetch stops at MAX_PREFETCH_LEN (4 MiB) past the faulting packet', () => {
  const { a, b } = rig('mainline');
  const len = 8 << 20;
  const abuf = a.p.mmap(0, len, RW, ANON), bbuf = b.p.mmap(0, len, RW, ANON);
  a.p.write(abuf, pattern(len, 5));
  const amr = ibv_reg_mr(a.pd, abuf, len, W)!, bmr = ibv_reg_mr(b.pd, bbuf, len, ODP)!;
  ibv_post_send(a.qp, { wr_id: 1, opcode: IBV_WR_RDMA_WRITE, send_flags: IBV_SEND_SIGNALED,
    sg_list: [{ addr: abuf, length: len, lkey: amr.lkey }], remote_addr: bbuf, rkey: bmr.rkey });
  assert.is(ibv_poll_cq(a.cq, 1)[0].status, IBV_WC_SUCCESS);
  const s = mlx5_ib_mr_of_key(b.dev, bmr.lkey)!.odp_stats;
  assert.equal([s.faults, s.prefetch], [2, 2 * (MAX_PREFETCH_LEN / PAGE_SIZE - 1)]);
  assert.is(same(b.p.read(bbuf, len), pattern(len, 5)), true);
  assert.ok(pfn_to_page(pte_pfn(pte_at(b.p.mm, bbuf))) !== null);
});

for (const design of ['2014', 'hmm_v8', 'mainline'] as const) {
  test(`${design}: the process exits with an ODP MR registered; the NIC's next access fails cleanly, dereg still works`, () => {
    const { a, b } = rig(design);
    const abuf = a.p.mmap(0, PAGE_SIZE, RW, ANON), bbuf = b.p.mmap(0, PAGE_SIZE, RW, ANON);
    a.p.write32(abuf, 3);
    const amr = ibv_reg_mr(a.pd, abuf, PAGE_SIZE, W)!, bmr = ibv_reg_mr(b.pd, bbuf, PAGE_SIZE, ODP)!;
    const wr = { wr_id: 1, opcode: IBV_WR_RDMA_WRITE, send_flags: IBV_SEND_SIGNALED, sg_list: [{ addr: abuf, length: 4, lkey: amr.lkey }], remote_addr: bbuf, rkey: bmr.rkey };
    ibv_post_send(a.qp, wr);
    assert.is(ibv_poll_cq(a.cq, 1)[0].status, IBV_WC_SUCCESS);
    const mr = mlx5_ib_mr_of_key(b.dev, bmr.lkey)!;
    b.p.fork();             /* the child keeps the device file open, so the MR outlives b's address space */
    b.p.exit(0);
    assert.is(mr.odp!.npages, 0, 'the teardown unmapped everything');
    assert.is(mlx5_mr_mtt_entry(mr, bbuf), 0);
    ibv_post_send(a.qp, wr);
    assert.is(ibv_poll_cq(a.cq, 1)[0].status, IBV_WC_REM_ACCESS_ERR);
    assert.ok(b.dev.pf_resume_errors >= 1, 'PAGE_FAULT_RESUME carried the error bit');
    assert.is(ibv_dereg_mr(bmr), 0);
    assert.is(b.dev.dma.nr_mapped, 0, 'no DMA mapping left behind');
  });
}

test('the page-fault EQ holds MLX5_IB_NUM_PF_EQE (4096) entries; one more is an overrun (-ENOSPC)', () => {
  const { b } = rig('mainline');
  const pf = { type: 0, flags: 0, token: b.qp.qp_num, wqe_index: 0, rkey: 0, va: 0, length: 0, op_len: 0 };
  for (let i = 0; i < MLX5_IB_NUM_PF_EQE; i++) assert.is(mlx5_ib_pf_eqe_push(b.dev, pf), 0);
  assert.is(mlx5_ib_pf_eqe_push(b.dev, pf), -ENOSPC);
  assert.is(b.dev.pf_eq_max_depth, 4096);
  assert.is(get_counter('mlx5_ib_pf_eq_overrun'), 1);
});

test.run();
