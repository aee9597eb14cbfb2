/*
 * test/tools/include/infiniband/verbs.test.ts - the libibverbs-shaped API:
 * errno of each verb, the QP state machine, local protection errors,
 * queue limits.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PAGE_SIZE } from '../../../../include/linux/mm.js';
import { EINVAL, ENOMEM, ENODEV, EBUSY } from '../../../../include/uapi/asm-generic/errno.js';
import { ib_dealloc_pd } from '../../../../drivers/infiniband/core/device.js';
import { mlx5_ib_probe } from '../../../../drivers/infiniband/hw/mlx5/main.js';
import {
  ibv_open_device, ibv_errno, ibv_create_cq, ibv_create_qp, ibv_modify_qp, ibv_post_send, ibv_post_recv, ibv_poll_cq,
  ibv_reg_mr, ibv_alloc_pd, IBV_QPS_INIT, IBV_QPS_RTS, IBV_QPS_RTR, IBV_QP_STATE, IBV_QP_DEST_QPN, IBV_QP_RNR_RETRY,
  IBV_WR_RDMA_WRITE, IBV_WR_SEND, IBV_SEND_SIGNALED, IBV_ACCESS_LOCAL_WRITE,
  IBV_ACCESS_REMOTE_WRITE, ibv_wc_status_str,
} from '../../../../tools/include/infiniband/verbs.js';
import { rig, RW, ANON } from '../../../drivers/infiniband/rig.js';

test('ibv_open_device of a name nobody registered gives null and ENODEV; a second probe of a name EEXIST', () => {
  const { a } = rig('mainline');
  assert.is(ibv_open_device(a.p, 'mlx5_9'), null);
  assert.is(ibv_errno(), ENODEV);
  assert.is(mlx5_ib_probe('mlx5_0', 'mainline'), -17);
});

test('the QP state machine: RESET -> RTS directly is EINVAL, RTR needs a destination, bad rnr_retry EINVAL', () => {
  const { a } = rig('mainline');
  const cq = ibv_create_cq(a.ctx, 16)!;
  const qp = ibv_create_qp(a.pd, { send_cq: cq, recv_cq: cq, cap: { max_send_wr: 2, max_recv_wr: 2 } })!;
  assert.is(ibv_modify_qp(qp, { qp_state: IBV_QPS_RTS }, IBV_QP_STATE), EINVAL);
  assert.is(ibv_modify_qp(qp, { qp_state: IBV_QPS_INIT }, IBV_QP_STATE), 0);
  assert.is(ibv_modify_qp(qp, { qp_state: IBV_QPS_RTR }, IBV_QP_STATE), EINVAL);
  assert.is(ibv_modify_qp(qp, { qp_state: IBV_QPS_RTR, dest_qp_num: a.qp.qp_num }, IBV_QP_STATE | IBV_QP_DEST_QPN), 0);
  assert.is(ibv_modify_qp(qp, { qp_state: IBV_QPS_RTS, rnr_retry: 8 }, IBV_QP_STATE | IBV_QP_RNR_RETRY), EINVAL);
  assert.is(ibv_create_cq(a.ctx, 0), null);
  assert.is(ibv_errno(), EINVAL);
  assert.is(ibv_create_qp(a.pd, { send_cq: cq, recv_cq: cq, cap: { max_send_wr: 0, max_recv_wr: 1 } }), null);
  assert.is(ibv_errno(), EINVAL);
});

test('posting: EINVAL before RTS and for a bad opcode, ENOMEM when the receive queue is full', () => {
  const { a } = rig('mainline');
  const cq = ibv_create_cq(a.ctx, 16)!;
  const qp = ibv_create_qp(a.pd, { send_cq: cq, recv_cq: cq, cap: { max_send_wr: 2, max_recv_wr: 1 } })!;
  const wr = { wr_id: 1, opcode: IBV_WR_SEND, send_flags: 0, sg_list: [] };
  assert.is(ibv_post_send(qp, wr), EINVAL);
  assert.is(ibv_post_recv(qp, { wr_id: 1, sg_list: [] }), EINVAL);
  ibv_modify_qp(qp, { qp_state: IBV_QPS_INIT }, IBV_QP_STATE);
  assert.is(ibv_post_recv(qp, { wr_id: 1, sg_list: [] }), 0);
  assert.is(ibv_post_recv(qp, { wr_id: 2, sg_list: [] }), ENOMEM);
  assert.is(ibv_post_send(a.qp, { ...wr, opcode: 42 }), EINVAL);
});

test('an lkey of another PD or beyond its MR completes with IBV_WC_LOC_PROT_ERR; the QP then flushes', () => {
  const { a, b } = rig('mainline');
  const abuf = a.p.mmap(0, 2 * PAGE_SIZE, RW, ANON), bbuf = b.p.mmap(0, PAGE_SIZE, RW, ANON);
  a.p.write32(abuf, 1);
  b.p.write32(bbuf, 1);
  const pd2 = ibv_alloc_pd(a.ctx)!;
  const other = ibv_reg_mr(pd2, abuf, PAGE_SIZE, IBV_ACCESS_LOCAL_WRITE)!;
  const bmr = ibv_reg_mr(b.pd, bbuf, PAGE_SIZE, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE)!;
  assert.is(ib_dealloc_pd(pd2.pd), -EBUSY, 'a PD with an MR cannot go');
  ibv_post_send(a.qp, { wr_id: 1, opcode: IBV_WR_RDMA_WRITE, send_flags: IBV_SEND_SIGNALED,
    sg_list: [{ addr: abuf, length: 8, lkey: other.lkey }], remote_addr: bbuf, rkey: bmr.rkey });
  ibv_post_send(a.qp, { wr_id: 2, opcode: IBV_WR_RDMA_WRITE, send_flags: IBV_SEND_SIGNALED,
    sg_list: [{ addr: abuf, length: 8, lkey: other.lkey }], remote_addr: bbuf, rkey: bmr.rkey });
  assert.equal(ibv_poll_cq(a.cq, 4).map((w) => ibv_wc_status_str(w.status)), ['IBV_WC_LOC_PROT_ERR', 'IBV_WC_WR_FLUSH_ERR']);
  assert.is(b.p.read32(bbuf), 1, 'nothing was written');
});

test.run();
