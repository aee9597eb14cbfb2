/*
 * test/drivers/infiniband/hw/mlx5/qp.test.ts - RC traffic between two
 * processes through pinned and ODP MRs, for each ODP design, with every
 * byte checked on the CPU side; RNR retry and error completions.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PAGE_SIZE } from '../../../../../include/linux/mm.js';
import { ib_odp_designs } from '../../../../../include/rdma/ib_verbs.js';
import {
  ibv_reg_mr, ibv_post_send, ibv_post_recv, ibv_poll_cq, IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_REMOTE_WRITE,
  IBV_ACCESS_REMOTE_READ, IBV_ACCESS_REMOTE_ATOMIC, IBV_ACCESS_ON_DEMAND, IBV_WR_RDMA_WRITE, IBV_WR_RDMA_READ,
  IBV_WR_SEND, IBV_WR_ATOMIC_FETCH_AND_ADD, IBV_WR_ATOMIC_CMP_AND_SWP, IBV_SEND_SIGNALED, IBV_WC_SUCCESS,
  IBV_WC_RNR_RETRY_EXC_ERR, IBV_WC_REM_ACCESS_ERR, IBV_WC_WR_FLUSH_ERR, ibv_wc_status_str,
} from '../../../../../tools/include/infiniband/verbs.js';
import { rig, pattern, same, RW, ANON } from '../../rig.js';

const ALL = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC;
const LEN = 5 * PAGE_SIZE + 100;

for (const design of ib_odp_designs) {
  for (const odp of [false, true]) {
    const kind = `${odp ? 'ODP' : 'pinned'} MRs (${design})`;
    test(`RDMA WRITE, READ and SEND move every byte between two processes through ${kind}`, () => {
      const { a, b } = rig(design);
      const abuf = a.p.mmap(0, 8 * PAGE_SIZE, RW, ANON), bbuf = b.p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
      const src = pattern(LEN, 1);
      a.p.write(abuf, src);
      if (!odp) b.p.write(bbuf, new Uint8Array(8 * PAGE_SIZE));   /* pinning faults pages in anyway */
      const acc = ALL | (odp ? IBV_ACCESS_ON_DEMAND : 0);
      const amr = ibv_reg_mr(a.pd, abuf, 8 * PAGE_SIZE, acc)!, bmr = ibv_reg_mr(b.pd, bbuf, 8 * PAGE_SIZE, acc)!;
      assert.ok(amr && bmr);
      /* WRITE A -> B */
      assert.is(ibv_post_send(a.qp, { wr_id: 1, opcode: IBV_WR_RDMA_WRITE, send_flags: IBV_SEND_SIGNALED,
        sg_list: [{ addr: abuf, length: LEN, lkey: amr.lkey }], remote_addr: bbuf + 7, rkey: bmr.rkey }), 0);
      let wc = ibv_poll_cq(a.cq, 4);
      assert.equal(wc.map((w) => ibv_wc_status_str(w.status)), ['IBV_WC_SUCCESS']);
      assert.is(wc[0].byte_len, LEN);
      assert.is(same(b.p.read(bbuf + 7, LEN), src), true);
      /* READ B -> A, into a different place */
      b.p.write(bbuf + 2 * PAGE_SIZE, pattern(3000, 9));
      assert.is(ibv_post_send(a.qp, { wr_id: 2, opcode: IBV_WR_RDMA_READ, send_flags: IBV_SEND_SIGNALED,
        sg_list: [{ addr: abuf + 6 * PAGE_SIZE, length: 3000, lkey: amr.lkey }], remote_addr: bbuf + 2 * PAGE_SIZE, rkey: bmr.rkey }), 0);
      wc = ibv_poll_cq(a.cq, 4);
      assert.is(wc[0].status, IBV_WC_SUCCESS);
      assert.is(same(a.p.read(abuf + 6 * PAGE_SIZE, 3000), pattern(3000, 9)), true);
      /* SEND A -> B into a posted receive */
      assert.is(ibv_post_recv(b.qp, { wr_id: 30, sg_list: [{ addr: bbuf + 4 * PAGE_SIZE, length: 2 * PAGE_SIZE, lkey: bmr.lkey }] }), 0);
      assert.is(ibv_post_send(a.qp, { wr_id: 3, opcode: IBV_WR_SEND, send_flags: IBV_SEND_SIGNALED,
        sg_list: [{ addr: abuf + 100, length: 5000, lkey: amr.lkey }] }), 0);
      assert.is(ibv_poll_cq(a.cq, 4)[0].status, IBV_WC_SUCCESS);
      const rwc = ibv_poll_cq(b.cq, 4);
      assert.equal(rwc.map((w) => [w.wr_id, w.status, w.byte_len]), [[30, IBV_WC_SUCCESS, 5000]]);
      assert.is(same(b.p.read(bbuf + 4 * PAGE_SIZE, 5000), src.subarray(100, 5100)), true);
    });

    test(`atomics fetch-and-add and compare-and-swap on the peer's memory through ${kind}`, () => {
      const { a, b } = rig(design);
      const abuf = a.p.mmap(0, PAGE_SIZE, RW, ANON), bbuf = b.p.mmap(0, PAGE_SIZE, RW, ANON);
      b.p.write64(bbuf + 64, 1000);
      a.p.write64(abuf, 0);
      const acc = ALL | (odp ? IBV_ACCESS_ON_DEMAND : 0);
      const amr = ibv_reg_mr(a.pd, abuf, PAGE_SIZE, acc)!, bmr = ibv_reg_mr(b.pd, bbuf, PAGE_SIZE, acc)!;
      ibv_post_send(a.qp, { wr_id: 1, opcode: IBV_WR_ATOMIC_FETCH_AND_ADD, send_flags: IBV_SEND_SIGNALED,
        sg_list: [{ addr: abuf, length: 8, lkey: amr.lkey }], remote_addr: bbuf + 64, rkey: bmr.rkey, compare_add: 5 });
      assert.is(ibv_poll_cq(a.cq, 1)[0].status, IBV_WC_SUCCESS);
      assert.is(a.p.read64(abuf), 1000);
      assert.is(b.p.read64(bbuf + 64), 1005);
      ibv_post_send(a.qp, { wr_id: 2, opcode: IBV_WR_ATOMIC_CMP_AND_SWP, send_flags: IBV_SEND_SIGNALED,
        sg_list: [{ addr: abuf + 8, length: 8, lkey: amr.lkey }], remote_addr: bbuf + 64, rkey: bmr.rkey, compare_add: 1005, swap: 77 });
      assert.is(ibv_poll_cq(a.cq, 1)[0].status, IBV_WC_SUCCESS);
      assert.is(a.p.read64(abuf + 8), 1005);
      assert.is(b.p.read64(bbuf + 64), 77);
    });
  }
}

test('a WRITE through an rkey without REMOTE_WRITE completes with IBV_WC_REM_ACCESS_ERR and flushes the rest', () => {
  const { a, b } = rig('mainline');
  const abuf = a.p.mmap(0, PAGE_SIZE, RW, ANON), bbuf = b.p.mmap(0, PAGE_SIZE, RW, ANON);
  b.p.write(bbuf, new Uint8Array(PAGE_SIZE).fill(3));
  const amr = ibv_reg_mr(a.pd, abuf, PAGE_SIZE, ALL)!;
  const bmr = ibv_reg_mr(b.pd, bbuf, PAGE_SIZE, IBV_ACCESS_REMOTE_READ | IBV_ACCESS_ON_DEMAND)!;
  ibv_post_send(a.qp, { wr_id: 1, opcode: IBV_WR_RDMA_WRITE, send_flags: IBV_SEND_SIGNALED,
    sg_list: [{ addr: abuf, length: 16, lkey: amr.lkey }], remote_addr: bbuf, rkey: bmr.rkey });
  assert.equal(ibv_poll_cq(a.cq, 4).map((w) => w.status), [IBV_WC_REM_ACCESS_ERR]);
  assert.is(b.p.read8(bbuf), 3);
  ibv_post_send(a.qp, { wr_id: 2, opcode: IBV_WR_RDMA_READ, send_flags: IBV_SEND_SIGNALED,
    sg_list: [{ addr: abuf, length: 16, lkey: amr.lkey }], remote_addr: bbuf, rkey: bmr.rkey });
  assert.equal(ibv_poll_cq(a.cq, 4).map((w) => w.status), [IBV_WC_WR_FLUSH_ERR]);
});

test('a SEND with no receive posted is RNR NAKed rnr_retry times, then IBV_WC_RNR_RETRY_EXC_ERR', () => {
  const { a, b } = rig('mainline', { rnr_retry: 3, min_rnr_timer: 1 });
  const abuf = a.p.mmap(0, PAGE_SIZE, RW, ANON);
  b.p.mmap(0, PAGE_SIZE, RW, ANON);
  const amr = ibv_reg_mr(a.pd, abuf, PAGE_SIZE, ALL)!;
  ibv_post_send(a.qp, { wr_id: 1, opcode: IBV_WR_SEND, send_flags: IBV_SEND_SIGNALED, sg_list: [{ addr: abuf, length: 8, lkey: amr.lkey }] });
  assert.equal(ibv_poll_cq(a.cq, 4).map((w) => w.status), [IBV_WC_RNR_RETRY_EXC_ERR]);
  assert.is(a.dev.qps.get(a.qp.qp_num)!.rnr_naks, 4);    /* the first try and three retries */
});

test('ODP needs RNR retry: a receive into a non-present page with rnr_retry 0 fails, with 1 it succeeds after one RNR NAK', () => {
  for (const [retry, want] of [[0, IBV_WC_RNR_RETRY_EXC_ERR], [1, IBV_WC_SUCCESS]] as const) {
    const { a, b } = rig('mainline', { rnr_retry: retry, min_rnr_timer: 1 });
    const abuf = a.p.mmap(0, PAGE_SIZE, RW, ANON), bbuf = b.p.mmap(0, PAGE_SIZE, RW, ANON);
    a.p.write(abuf, pattern(64, 4));
    const amr = ibv_reg_mr(a.pd, abuf, PAGE_SIZE, ALL)!;
    const bmr = ibv_reg_mr(b.pd, bbuf, PAGE_SIZE, ALL | IBV_ACCESS_ON_DEMAND)!;
    ibv_post_recv(b.qp, { wr_id: 9, sg_list: [{ addr: bbuf, length: 64, lkey: bmr.lkey }] });
    ibv_post_send(a.qp, { wr_id: 1, opcode: IBV_WR_SEND, send_flags: IBV_SEND_SIGNALED, sg_list: [{ addr: abuf, length: 64, lkey: amr.lkey }] });
    assert.equal(ibv_poll_cq(a.cq, 4).map((w) => w.status), [want], `rnr_retry ${retry}`);
    assert.is(a.dev.qps.get(a.qp.qp_num)!.rnr_naks, 1);
    if (want === IBV_WC_SUCCESS) assert.is(same(b.p.read(bbuf, 64), pattern(64, 4)), true);
  }
});

test.run();
