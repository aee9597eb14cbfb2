/*
 * drivers/infiniband/hw/mlx5/qp.ts - RC queue pairs, completion queues and
 * the wire between two ports: SEND/RECV, RDMA WRITE, RDMA READ, atomics,
 * RNR NAK with retry, transport retry, error completions.
 *
 * Follows the verbs semantics of Linux v5.10 (drivers/infiniband/hw/mlx5/
 * qp.c for the state machine, cq.c for completions) and the IBTA RC rules
 * the hardware implements; the hardware itself is this model's own. When a
 * packet needs a page the NIC does not have:
 *   requester side (gather for SEND/WRITE, landing a READ/atomic response):
 *     a requester WQE fault; the QP pauses until PAGE_FAULT_RESUME;
 *   responder side, SEND into a receive buffer: a responder WQE fault, and
 *     the responder answers RNR NAK: the requester waits the responder's
 *     min_rnr_timer and retries, at most rnr_retry times (7 = forever);
 *   responder side, RDMA WRITE / atomic: an RDMA fault (rkey, va, length)
 *     and an RNR NAK as for SEND;
 *   responder side, RDMA READ: an RDMA fault and no answer: the requester
 *     retransmits after the transport timeout (4.096 us * 2^timeout), at
 *     most retry_cnt times without progress.
 * A fault that fails (PAGE_FAULT_RESUME with the error bit) completes the
 * operation with an error and moves the QP to the error state; the rest of
 * its queue is flushed (IB_WC_WR_FLUSH_ERR).
 *
 * Simplified: the requester runs its send queue in the thread that posts
 * (see hw/mlx5/mlx5_ib.ts); an RNR wait with rnr_retry = 7 and no receive
 * ever posted would never end, so after MLX5_RNR_SIM_BOUND naks it ends
 * with IB_WC_RNR_RETRY_EXC_ERR and says so in the trace. Packets are never
 * lost, so a retransmit only follows a responder fault.
 */
import {
  type ib_send_wr, type ib_recv_wr, type ib_qp_attr, type ib_wc, type ib_pd, type ib_cq, type ib_qp,
  IB_WR_SEND, IB_WR_RDMA_WRITE, IB_WR_RDMA_READ, IB_WR_ATOMIC_CMP_AND_SWP, IB_WR_ATOMIC_FETCH_AND_ADD,
  IB_WC_SUCCESS, IB_WC_LOC_PROT_ERR, IB_WC_LOC_LEN_ERR, IB_WC_WR_FLUSH_ERR, IB_WC_REM_ACCESS_ERR, IB_WC_REM_INV_REQ_ERR,
  IB_WC_RETRY_EXC_ERR, IB_WC_RNR_RETRY_EXC_ERR, IB_WC_REM_OP_ERR, IB_WC_SEND, IB_WC_RDMA_WRITE, IB_WC_RDMA_READ,
  IB_WC_COMP_SWAP, IB_WC_FETCH_ADD, IB_WC_RECV, IB_SEND_SIGNALED, IB_QPS_RESET, IB_QPS_INIT, IB_QPS_RTR, IB_QPS_RTS,
  IB_QPS_ERR, IB_QP_STATE, IB_QP_ACCESS_FLAGS, IB_QP_DEST_QPN, IB_QP_MIN_RNR_TIMER, IB_QP_TIMEOUT, IB_QP_RETRY_CNT,
  IB_QP_RNR_RETRY, IB_ACCESS_REMOTE_WRITE, IB_ACCESS_REMOTE_READ, IB_ACCESS_REMOTE_ATOMIC, IB_RNR_RETRY_INFINITE,
  ib_rnr_timer_ns, ib_local_ack_timeout_ns, ib_wc_status_names, ib_wr_opcode_names, ib_qp_state_names,
} from '../../../../include/rdma/ib_verbs.js';
import {
  MLX5_PFAULT_SUBTYPE_WQE, MLX5_PFAULT_SUBTYPE_RDMA, MLX5_PFAULT_REQUESTOR, MLX5_PFAULT_WRITE, MLX5_PFAULT_RDMA,
  type mlx5_pagefault,
} from '../../../../include/linux/mlx5/odp.js';
import { EINVAL, ENOMEM } from '../../../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../../../lib/sim/sched.js';
import { charge } from '../../../../lib/sim/clock.js';
import { RDMA_WIRE_NS, RDMA_LINK_BW, copy_cost_ns } from '../../../../lib/sim/costs.js';
import { count_event, trace_event } from '../../../../lib/sim/trace.js';
import { type mlx5_ib_dev, type mlx5_ib_qp, type mlx5_ib_cq, type mlx5_ib_mr, to_mdev, to_mqp, to_mcq, mlx5_ib_mr_of_key } from './mlx5_ib.js';
import { mlx5_mr_dma } from './mr.js';
import { mlx5_ib_pf_eqe_push, mlx5_ib_eq_pf_process, mlx5_ib_flush_wq } from './odp.js';

/** RNR naks after which an infinite-retry wait is ended by the simulator (see header). */
export const MLX5_RNR_SIM_BOUND = 64;

/* every QP of every port on the switch, by number (numbers are never reused) */
const fabric = new Map<number, mlx5_ib_qp>();
let next_qpn = 0x100;

/** mlx5_ib_create_cq() - ib_device_ops.create_cq. Return: the CQ or -EINVAL. */
export function mlx5_ib_create_cq(dev: mlx5_ib_dev, cqe: number): mlx5_ib_cq | number {
  if (!(cqe >= 1 && cqe <= 1 << 22)) return -EINVAL;
  return { device: dev.ibdev, cqe, wcs: [], overflowed: false };
}

/** mlx5_ib_create_qp() - ib_device_ops.create_qp (RC). Return: the QP in RESET, or -EINVAL. */
export function mlx5_ib_create_qp(pd: ib_pd, scq: ib_cq, rcq: ib_cq, max_send_wr: number, max_recv_wr: number): mlx5_ib_qp | number {
  const dev = to_mdev(pd.device);
  if (!(max_send_wr >= 1 && max_send_wr <= 32768 && max_recv_wr >= 0 && max_recv_wr <= 32768)) return -EINVAL;
  const qp: mlx5_ib_qp = {
    device: dev.ibdev, pd, qp_num: next_qpn++, dev, send_cq: to_mcq(scq), recv_cq: to_mcq(rcq), max_send_wr, max_recv_wr,
    sq: [], rq: [], state: IB_QPS_RESET, dest_qp_num: 0, qp_access_flags: 0, min_rnr_timer: 0, timeout: 14,
    retry_cnt: 7, rnr_retry: 7, paused_on_fault: false, pf_resume_error: false, rnr_naks: 0, retransmits: 0,
  };
  dev.qps.set(qp.qp_num, qp);
  fabric.set(qp.qp_num, qp);
  return qp;
}

/**
 * mlx5_ib_modify_qp() - the RC state machine: RESET -> INIT -> RTR -> RTS,
 * any -> ERR, any -> RESET. INIT may set access flags; RTR needs
 * IB_QP_DEST_QPN and may set min_rnr_timer; RTS may set timeout,
 * retry_cnt, rnr_retry. Return: 0 or -EINVAL (a transition the spec
 * forbids, a missing attribute, a value out of range).
 */
export function mlx5_ib_modify_qp(ibqp: ib_qp, attr: ib_qp_attr, mask: number): number {
  const qp = to_mqp(ibqp);
  const to = mask & IB_QP_STATE ? attr.qp_state! : qp.state;
  const ok = to === IB_QPS_RESET || to === IB_QPS_ERR ||
    (qp.state === IB_QPS_RESET && to === IB_QPS_INIT) || (qp.state === IB_QPS_INIT && (to === IB_QPS_INIT || to === IB_QPS_RTR)) ||
    (qp.state === IB_QPS_RTR && to === IB_QPS_RTS) || (qp.state === IB_QPS_RTS && to === IB_QPS_RTS);
  if (!ok) return -EINVAL;
  if (to === IB_QPS_RTR && qp.state !== IB_QPS_RTR && !(mask & IB_QP_DEST_QPN)) return -EINVAL;
  for (const [bit, v, max] of [[IB_QP_MIN_RNR_TIMER, attr.min_rnr_timer, 31], [IB_QP_TIMEOUT, attr.timeout, 31],
    [IB_QP_RETRY_CNT, attr.retry_cnt, 7], [IB_QP_RNR_RETRY, attr.rnr_retry, 7]] as const) {
    if (mask & bit && !(Number.isInteger(v) && v! >= 0 && v! <= max)) return -EINVAL;
  }
  if (mask & IB_QP_ACCESS_FLAGS) qp.qp_access_flags = attr.qp_access_flags!;
  if (mask & IB_QP_DEST_QPN) qp.dest_qp_num = attr.dest_qp_num!;
  if (mask & IB_QP_MIN_RNR_TIMER) qp.min_rnr_timer = attr.min_rnr_timer!;
  if (mask & IB_QP_TIMEOUT) qp.timeout = attr.timeout!;
  if (mask & IB_QP_RETRY_CNT) qp.retry_cnt = attr.retry_cnt!;
  if (mask & IB_QP_RNR_RETRY) qp.rnr_retry = attr.rnr_retry!;
  if (to === IB_QPS_RESET) { qp.sq = []; qp.rq = []; }
  qp.state = to;
  trace_event('mlx5_ib_modify_qp', { qpn: qp.qp_num, state: ib_qp_state_names[to] });
  return 0;
}

/**
 * mlx5_ib_post_recv() - queue a receive; on a QP in error it completes at
 * once with IB_WC_WR_FLUSH_ERR. Return: 0, -EINVAL in RESET, -ENOMEM when
 * the receive queue is full.
 */
export function mlx5_ib_post_recv(ibqp: ib_qp, wr: ib_recv_wr): number {
  const qp = to_mqp(ibqp);
  if (qp.state === IB_QPS_RESET) return -EINVAL;
  if (qp.rq.length >= qp.max_recv_wr) return -ENOMEM;
  if (qp.state === IB_QPS_ERR) { complete(qp.recv_cq, wr.wr_id, IB_WC_WR_FLUSH_ERR, IB_WC_RECV, 0, qp); return 0; }
  qp.rq.push(wr);
  return 0;
}

/** mlx5_ib_poll_cq() - take up to @n completions, oldest first. */
export function mlx5_ib_poll_cq(ibcq: ib_cq, n: number): ib_wc[] {
  return to_mcq(ibcq).wcs.splice(0, Math.max(0, n));
}

function complete(cq: mlx5_ib_cq, wr_id: number, status: number, opcode: number, byte_len: number, qp: mlx5_ib_qp): void {
  if (cq.wcs.length >= cq.cqe) { cq.overflowed = true; count_event('mlx5_ib_cq_overrun'); return; }
  cq.wcs.push({ wr_id, status, opcode, byte_len, qp_num: qp.qp_num });
}

/* the QP goes to error: everything still queued completes with WR_FLUSH_ERR */
function qp_to_error(qp: mlx5_ib_qp): void {
  qp.state = IB_QPS_ERR;
  for (const wr of qp.sq.splice(0)) complete(qp.send_cq, wr.wr_id, IB_WC_WR_FLUSH_ERR, IB_WC_SEND, 0, qp);
  for (const wr of qp.rq.splice(0)) complete(qp.recv_cq, wr.wr_id, IB_WC_WR_FLUSH_ERR, IB_WC_RECV, 0, qp);
  trace_event('mlx5_ib_qp_error', { qpn: qp.qp_num });
}

/* Raise a page fault and let the work queue run it. Return: true if resolved (resume without error). */
function* raise_fault(dev: mlx5_ib_dev, qp: mlx5_ib_qp, pf: Omit<mlx5_pagefault, 'token'>): Sleepable<boolean> {
  qp.paused_on_fault = true;
  if (mlx5_ib_pf_eqe_push(dev, { ...pf, token: qp.qp_num }) < 0) return false;
  yield* mlx5_ib_eq_pf_process(dev);
  return !qp.pf_resume_error;
}

/*
 * Move bytes between @buf and the scatter list @sgl of @qp's own memory
 * (lkeys), faulting as a requester (or responder WQE) fault on a miss.
 * Return: IB_WC_SUCCESS, IB_WC_LOC_PROT_ERR or IB_WC_LOC_LEN_ERR.
 */
function* local_sgl(qp: mlx5_ib_qp, wqe_index: number, requester: boolean, sgl: { addr: number; length: number; lkey: number }[],
                    buf: Uint8Array, write: boolean): Sleepable<number> {
  let off = 0;
  for (const sge of sgl) {
    if (off >= buf.length) break;
    const mr = mlx5_ib_mr_of_key(qp.dev, sge.lkey);
    if (mr === null || mr.ibmr.pd !== qp.pd || sge.addr < mr.ibmr.iova || sge.addr + sge.length > mr.ibmr.iova + mr.ibmr.length) return IB_WC_LOC_PROT_ERR;
    const part = buf.subarray(off, Math.min(buf.length, off + sge.length));
    for (let tries = 0; ; tries++) {
      const done = mlx5_mr_dma(mr, sge.addr, part, write);
      if (done === part.length) break;
      if (mr.odp === null || tries > 2) return IB_WC_LOC_PROT_ERR;
      const ok = yield* raise_fault(qp.dev, qp, { type: MLX5_PFAULT_SUBTYPE_WQE, flags: (requester ? MLX5_PFAULT_REQUESTOR : 0) | (write ? MLX5_PFAULT_WRITE : 0),
        wqe_index, rkey: 0, va: sge.addr + done, length: part.length - done, op_len: part.length - done });
      if (!ok) return IB_WC_LOC_PROT_ERR;
    }
    off += part.length;
  }
  return off < buf.length && write ? IB_WC_LOC_LEN_ERR : IB_WC_SUCCESS;
}

type responder_result = { kind: 'ok'; data?: Uint8Array } | { kind: 'rnr' } | { kind: 'silent' } | { kind: 'error'; status: number };

/* The responder's rkey checks: IB_WC_REM_ACCESS_ERR on failure. */
function remote_mr(peer: mlx5_ib_qp, rkey: number, va: number, len: number, need: number): mlx5_ib_mr | null {
  const mr = mlx5_ib_mr_of_key(peer.dev, rkey);
  if (mr === null || mr.ibmr.pd !== peer.pd || !(mr.ibmr.access & need) || !(peer.qp_access_flags & need)) return null;
  if (va < mr.ibmr.iova || va + len > mr.ibmr.iova + mr.ibmr.length) return null;
  return mr;
}

/* The responder's side of one request (runs on the peer's NIC). */
function* responder(peer: mlx5_ib_qp, wr: ib_send_wr, payload: Uint8Array): Sleepable<responder_result> {
  if (peer.state !== IB_QPS_RTR && peer.state !== IB_QPS_RTS) return { kind: 'silent' };
  if (wr.opcode === IB_WR_SEND) {
    const rwr = peer.rq[0];
    if (rwr === undefined) { trace_event('mlx5_ib_rnr_nak', { qpn: peer.qp_num, why: 'no receive WQE' }); return { kind: 'rnr' }; }
    const total = rwr.sg_list.reduce((s, g) => s + g.length, 0);
    if (payload.length > total) { peer.rq.shift(); complete(peer.recv_cq, rwr.wr_id, IB_WC_LOC_LEN_ERR, IB_WC_RECV, 0, peer); qp_to_error(peer); return { kind: 'error', status: IB_WC_REM_INV_REQ_ERR }; }
    const before = peer.dev.pf_events;
    const st = yield* local_sgl(peer, 0, false, rwr.sg_list, payload, true);
    if (st !== IB_WC_SUCCESS) { peer.rq.shift(); complete(peer.recv_cq, rwr.wr_id, st, IB_WC_RECV, 0, peer); qp_to_error(peer); return { kind: 'error', status: IB_WC_REM_OP_ERR }; }
    if (peer.dev.pf_events !== before) {
      /* the receive buffer faulted: the packet was answered with RNR NAK while the fault ran (the data lands on the retry) */
      trace_event('mlx5_ib_rnr_nak', { qpn: peer.qp_num, why: 'receive buffer page fault' });
      return { kind: 'rnr' };
    }
    peer.rq.shift();
    complete(peer.recv_cq, rwr.wr_id, IB_WC_SUCCESS, IB_WC_RECV, payload.length, peer);
    return { kind: 'ok' };
  }
  const write = wr.opcode !== IB_WR_RDMA_READ;
  const atomic = wr.opcode === IB_WR_ATOMIC_CMP_AND_SWP || wr.opcode === IB_WR_ATOMIC_FETCH_AND_ADD;
  const len = atomic ? 8 : payload.length;
  const need = atomic ? IB_ACCESS_REMOTE_ATOMIC : write ? IB_ACCESS_REMOTE_WRITE : IB_ACCESS_REMOTE_READ;
  const va = wr.remote_addr ?? 0;
  const mr = remote_mr(peer, wr.rkey ?? 0, va, len, need);
  if (mr === null || (atomic && va % 8 !== 0)) { qp_to_error(peer); return { kind: 'error', status: IB_WC_REM_ACCESS_ERR }; }
  const buf = atomic ? new Uint8Array(8) : write ? payload : new Uint8Array(len);
  /* an atomic needs read and write: read the word, then write it back unchanged to test W */
  let done = mlx5_mr_dma(mr, va, buf, atomic ? false : write);
  if (atomic && done === 8) done = mlx5_mr_dma(mr, va, buf.slice(), true);
  if (done < len) {
    if (mr.odp === null) { qp_to_error(peer); return { kind: 'error', status: IB_WC_REM_ACCESS_ERR }; }
    const fva = va + done;
    const ok = yield* raise_fault(peer.dev, peer, { type: MLX5_PFAULT_SUBTYPE_RDMA, flags: MLX5_PFAULT_RDMA | (write ? MLX5_PFAULT_WRITE : 0),
      wqe_index: 0, rkey: wr.rkey!, va: fva, length: Math.min(4096 - (fva % 4096), va + len - fva), op_len: va + len - fva });
    if (!ok) { qp_to_error(peer); return { kind: 'error', status: IB_WC_REM_ACCESS_ERR }; }
    return write ? { kind: 'rnr' } : { kind: 'silent' };
  }
  if (atomic) {
    const dv = new DataView(buf.buffer);
    const old = dv.getBigUint64(0, true);
    const nv = wr.opcode === IB_WR_ATOMIC_FETCH_AND_ADD ? (old + BigInt(wr.compare_add ?? 0)) & 0xffffffffffffffffn
      : old === BigInt(wr.compare_add ?? 0) ? BigInt(wr.swap ?? 0) : old;
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, nv, true);
    mlx5_mr_dma(mr, va, out, true);
    return { kind: 'ok', data: buf };
  }
  return write ? { kind: 'ok' } : { kind: 'ok', data: buf };
}

/* Execute one send WQE end to end. Return: the completion status. */
function* execute_wqe(qp: mlx5_ib_qp, wr: ib_send_wr): Sleepable<number> {
  const peer = fabric.get(qp.dest_qp_num);
  const len = wr.sg_list.reduce((s, g) => s + g.length, 0);
  const gather = wr.opcode === IB_WR_SEND || wr.opcode === IB_WR_RDMA_WRITE;
  const payload = new Uint8Array(wr.opcode === IB_WR_ATOMIC_CMP_AND_SWP || wr.opcode === IB_WR_ATOMIC_FETCH_AND_ADD ? 8 : len);
  if (gather) {
    const st = yield* local_sgl(qp, 0, true, wr.sg_list, payload, false);
    if (st !== IB_WC_SUCCESS) return st;
  }
  let rnr_left = qp.rnr_retry, retry_left = qp.retry_cnt, naks = 0;
  for (;;) {
    charge(RDMA_WIRE_NS + copy_cost_ns(gather ? len : 0, RDMA_LINK_BW));
    const r: responder_result = peer === undefined ? { kind: 'silent' } : yield* responder(peer, wr, payload);
    if (r.kind === 'error') return r.status;
    if (r.kind === 'rnr') {
      qp.rnr_naks++;
      count_event('mlx5_ib_rnr_nak');
      if (qp.rnr_retry !== IB_RNR_RETRY_INFINITE && rnr_left-- <= 0) return IB_WC_RNR_RETRY_EXC_ERR;
      if (++naks >= MLX5_RNR_SIM_BOUND) { trace_event('mlx5_ib_rnr_sim_bound', { qpn: qp.qp_num, naks }); return IB_WC_RNR_RETRY_EXC_ERR; }
      const wait = ib_rnr_timer_ns(peer!.min_rnr_timer);
      trace_event('mlx5_ib_rnr_wait', { qpn: qp.qp_num, wait_ns: wait, left: qp.rnr_retry === IB_RNR_RETRY_INFINITE ? -1 : rnr_left });
      charge(RDMA_WIRE_NS + wait);
      continue;
    }
    if (r.kind === 'silent') {
      qp.retransmits++;
      count_event('mlx5_ib_retransmit');
      if (retry_left-- <= 0) return IB_WC_RETRY_EXC_ERR;
      const wait = ib_local_ack_timeout_ns(qp.timeout);
      if (wait === Infinity) return IB_WC_RETRY_EXC_ERR;
      trace_event('mlx5_ib_transport_timeout', { qpn: qp.qp_num, wait_ns: wait, left: retry_left });
      charge(wait);
      continue;
    }
    retry_left = qp.retry_cnt;
    charge(RDMA_WIRE_NS + copy_cost_ns(r.data?.length ?? 0, RDMA_LINK_BW));
    if (r.data !== undefined) {
      const st = yield* local_sgl(qp, 0, true, wr.sg_list, r.data, true);
      if (st !== IB_WC_SUCCESS) return st;
    }
    return IB_WC_SUCCESS;
  }
}

const wc_opcode = [IB_WC_RDMA_WRITE, IB_WC_RDMA_WRITE, IB_WC_SEND, IB_WC_SEND, IB_WC_RDMA_READ, IB_WC_COMP_SWAP, IB_WC_FETCH_ADD];

/**
 * mlx5_ib_post_send() - queue a send WQE and ring the doorbell: the NIC
 * runs the send queue now (this thread) and posts completions.
 * Context: may sleep (page faults). Return: 0, -EINVAL (QP not in RTS, bad
 * opcode), -ENOMEM (send queue full).
 */
export function* mlx5_ib_post_send(ibqp: ib_qp, wr: ib_send_wr): Sleepable<number> {
  const qp = to_mqp(ibqp);
  if (qp.state !== IB_QPS_RTS && qp.state !== IB_QPS_ERR) return -EINVAL;
  if (!(wr.opcode in wc_opcode) || wr.opcode === 1 || wr.opcode === 3) return -EINVAL;
  if (qp.sq.length >= qp.max_send_wr) return -ENOMEM;
  if (qp.state === IB_QPS_ERR) { complete(qp.send_cq, wr.wr_id, IB_WC_WR_FLUSH_ERR, wc_opcode[wr.opcode], 0, qp); return 0; }
  qp.sq.push(wr);
  yield* mlx5_ib_flush_wq(qp.dev);
  while (qp.sq.length > 0 && qp.state === IB_QPS_RTS) {
    const cur = qp.sq[0];
    const status = yield* execute_wqe(qp, cur);
    qp.sq.shift();
    const len = cur.sg_list.reduce((s, g) => s + g.length, 0);
    if (status !== IB_WC_SUCCESS || cur.send_flags & IB_SEND_SIGNALED)
      complete(qp.send_cq, cur.wr_id, status, wc_opcode[cur.opcode], status === IB_WC_SUCCESS ? len : 0, qp);
    trace_event('mlx5_ib_wqe_done', { qpn: qp.qp_num, op: ib_wr_opcode_names[cur.opcode], len, status: ib_wc_status_names[status] });
    if (status !== IB_WC_SUCCESS) qp_to_error(qp);
  }
  return 0;
}

/** mlx5_ib_qp_of_num() - a QP on the switch by number (tests, tools). */
export function mlx5_ib_qp_of_num(qpn: number): mlx5_ib_qp | null { return fabric.get(qpn) ?? null; }

