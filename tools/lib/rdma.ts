/*
 * tools/lib/rdma.ts - two processes, two NIC ports, one RC
 * connection: the set-up every RDMA test starts from.
 */
import { start_kernel } from '../../mm/init.js';
import { tracing_on } from '../../lib/sim/trace.js';
import { Process } from '../include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import type { ib_odp_design } from '../../include/rdma/ib_verbs.js';
import { ibDevicesReset } from '../../drivers/infiniband/core/device.js';
import { mlx5_ib_probe } from '../../drivers/infiniband/hw/mlx5/main.js';
import type { mlx5_ib_dev } from '../../drivers/infiniband/hw/mlx5/mlx5_ib.js';
import {
  ibv_open_device, ibv_alloc_pd, ibv_create_cq, ibv_create_qp, ibv_modify_qp, type ibv_context, type ibv_pd,
  type ibv_cq, type ibv_qp, IBV_QPS_INIT, IBV_QPS_RTR, IBV_QPS_RTS, IBV_QP_STATE, IBV_QP_ACCESS_FLAGS, IBV_QP_DEST_QPN,
  IBV_QP_MIN_RNR_TIMER, IBV_QP_RNR_RETRY, IBV_QP_RETRY_CNT, IBV_QP_TIMEOUT, IBV_ACCESS_REMOTE_READ, IBV_ACCESS_REMOTE_WRITE,
  IBV_ACCESS_REMOTE_ATOMIC, IBV_ACCESS_LOCAL_WRITE,
} from '../include/infiniband/verbs.js';

export const RW = PROT_READ | PROT_WRITE;

/** rdma_rig_params.trace - turn tracing on right after each rig()'s boot (hmm-sim scenarios). */
export const rdma_rig_params = { trace: false };
export const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

export interface side { p: Process; dev: mlx5_ib_dev; ctx: ibv_context; pd: ibv_pd; cq: ibv_cq; qp: ibv_qp; }
export interface rig { a: side; b: side; }

/** connect() - RESET -> INIT -> RTR -> RTS towards @peer_qpn. */
export function connect(qp: ibv_qp, peer_qpn: number, opts: { min_rnr_timer?: number; rnr_retry?: number; retry_cnt?: number; timeout?: number } = {}): void {
  const acc = IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_LOCAL_WRITE;
  if (ibv_modify_qp(qp, { qp_state: IBV_QPS_INIT, qp_access_flags: acc }, IBV_QP_STATE | IBV_QP_ACCESS_FLAGS)) throw new Error('INIT');
  if (ibv_modify_qp(qp, { qp_state: IBV_QPS_RTR, dest_qp_num: peer_qpn, min_rnr_timer: opts.min_rnr_timer ?? 12 },
    IBV_QP_STATE | IBV_QP_DEST_QPN | IBV_QP_MIN_RNR_TIMER)) throw new Error('RTR');
  if (ibv_modify_qp(qp, { qp_state: IBV_QPS_RTS, rnr_retry: opts.rnr_retry ?? 7, retry_cnt: opts.retry_cnt ?? 7, timeout: opts.timeout ?? 14 },
    IBV_QP_STATE | IBV_QP_RNR_RETRY | IBV_QP_RETRY_CNT | IBV_QP_TIMEOUT)) throw new Error('RTS');
}

function side_of(name: string, design: ib_odp_design, p: Process): side {
  const dev = mlx5_ib_probe(name, design);
  if (typeof dev === 'number') throw new Error(`probe ${dev}`);
  const ctx = ibv_open_device(p, name)!;
  const pd = ibv_alloc_pd(ctx)!;
  const cq = ibv_create_cq(ctx, 256)!;
  const qp = ibv_create_qp(pd, { send_cq: cq, recv_cq: cq, cap: { max_send_wr: 64, max_recv_wr: 64 } })!;
  return { p, dev, ctx, pd, cq, qp };
}

/**
 * rig() - a fresh machine with processes A and B, NICs mlx5_0 and mlx5_1
 * of @design, and A's QP connected to B's; @ram_bytes sizes RAM (default:
 * the boot default).
 */
export function rig(design: ib_odp_design = 'mainline', opts: Parameters<typeof connect>[2] = {}, ram_bytes?: number): rig {
  start_kernel(ram_bytes === undefined ? {} : { ram_bytes });
  if (rdma_rig_params.trace) tracing_on();
  ibDevicesReset();
  const a = side_of('mlx5_0', design, Process.spawn('rdma-a'));
  const b = side_of('mlx5_1', design, Process.spawn('rdma-b'));
  connect(a.qp, b.qp.qp_num, opts);
  connect(b.qp, a.qp.qp_num, opts);
  return { a, b };
}

/** pattern() - @len bytes of a recognisable pattern seeded by @seed. */
export function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + seed * 13 + (i >> 12)) & 0xff;
  return b;
}

/** same() - byte equality, with the first difference in the message. */
export function same(a: Uint8Array, b: Uint8Array): string | true {
  if (a.length !== b.length) return `length ${a.length} != ${b.length}`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `byte ${i}: ${a[i]} != ${b[i]}`;
  return true;
}
