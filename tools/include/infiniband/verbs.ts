/*
 * tools/include/infiniband/verbs.ts - a libibverbs-shaped user API over
 * the simulated RDMA stack (drivers/infiniband/).
 *
 * Follows rdma-core's libibverbs (infiniband/verbs.h, the ibv_* man pages):
 * functions that create an object return it or null with errno set;
 * ibv_modify_qp, ibv_post_send, ibv_post_recv, ibv_dereg_mr and
 * ibv_advise_mr return 0 or a positive errno; ibv_poll_cq returns the
 * completions taken (the array rather than a count). Work completions
 * carry IBV_WC_* statuses with the kernel's values. Every call runs as the
 * process that opened the device (runAs), so faults and notifiers see the
 * right mm. Simplified: RC only, one port, no ibv_get_device_list (open by
 * name), no completion channels.
 */
import type { ib_qp_attr, ib_send_wr, ib_recv_wr, ib_wc, ib_sge, ib_mr, ib_pd, ib_qp, ib_cq } from '../../../include/rdma/ib_verbs.js';
import { ib_wc_status_names } from '../../../include/rdma/ib_verbs.js';
import { IB_IMPLICIT_MR_LENGTH } from '../../../include/linux/mlx5/odp.js';
import { ENODEV, EINVAL } from '../../../include/uapi/asm-generic/errno.js';
import type { ib_uverbs_file } from '../../../drivers/infiniband/core/uverbs_main.js';
import { fget } from '../../../mm/file.js';
import { ib_device_get_by_name, ib_alloc_pd, ib_reg_user_mr, ib_dereg_mr, ib_advise_mr } from '../../../drivers/infiniband/core/device.js';
import { mlx5_ib_alloc_ucontext } from '../../../drivers/infiniband/hw/mlx5/main.js';
import { to_mdev, type mlx5_ib_ucontext } from '../../../drivers/infiniband/hw/mlx5/mlx5_ib.js';
import { mlx5_ib_flush_wq } from '../../../drivers/infiniband/hw/mlx5/odp.js';
import { runAs, type Process } from '../nolibc/nolibc.js';

export {
  IB_ACCESS_LOCAL_WRITE as IBV_ACCESS_LOCAL_WRITE, IB_ACCESS_REMOTE_WRITE as IBV_ACCESS_REMOTE_WRITE,
  IB_ACCESS_REMOTE_READ as IBV_ACCESS_REMOTE_READ, IB_ACCESS_REMOTE_ATOMIC as IBV_ACCESS_REMOTE_ATOMIC,
  IB_ACCESS_ON_DEMAND as IBV_ACCESS_ON_DEMAND,
  IB_WR_RDMA_WRITE as IBV_WR_RDMA_WRITE, IB_WR_SEND as IBV_WR_SEND, IB_WR_RDMA_READ as IBV_WR_RDMA_READ,
  IB_WR_ATOMIC_CMP_AND_SWP as IBV_WR_ATOMIC_CMP_AND_SWP, IB_WR_ATOMIC_FETCH_AND_ADD as IBV_WR_ATOMIC_FETCH_AND_ADD,
  IB_SEND_SIGNALED as IBV_SEND_SIGNALED,
  IB_WC_SUCCESS as IBV_WC_SUCCESS, IB_WC_LOC_LEN_ERR as IBV_WC_LOC_LEN_ERR, IB_WC_LOC_PROT_ERR as IBV_WC_LOC_PROT_ERR,
  IB_WC_WR_FLUSH_ERR as IBV_WC_WR_FLUSH_ERR, IB_WC_REM_ACCESS_ERR as IBV_WC_REM_ACCESS_ERR,
  IB_WC_REM_INV_REQ_ERR as IBV_WC_REM_INV_REQ_ERR, IB_WC_REM_OP_ERR as IBV_WC_REM_OP_ERR,
  IB_WC_RETRY_EXC_ERR as IBV_WC_RETRY_EXC_ERR, IB_WC_RNR_RETRY_EXC_ERR as IBV_WC_RNR_RETRY_EXC_ERR,
  IB_QPS_RESET as IBV_QPS_RESET, IB_QPS_INIT as IBV_QPS_INIT, IB_QPS_RTR as IBV_QPS_RTR, IB_QPS_RTS as IBV_QPS_RTS,
  IB_QPS_ERR as IBV_QPS_ERR, IB_QP_STATE as IBV_QP_STATE, IB_QP_ACCESS_FLAGS as IBV_QP_ACCESS_FLAGS,
  IB_QP_DEST_QPN as IBV_QP_DEST_QPN, IB_QP_MIN_RNR_TIMER as IBV_QP_MIN_RNR_TIMER, IB_QP_TIMEOUT as IBV_QP_TIMEOUT,
  IB_QP_RETRY_CNT as IBV_QP_RETRY_CNT, IB_QP_RNR_RETRY as IBV_QP_RNR_RETRY,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH as IBV_ADVISE_MR_ADVICE_PREFETCH,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE as IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT as IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
  IB_UVERBS_ADVISE_MR_FLAG_FLUSH as IBV_ADVISE_MR_FLAG_FLUSH,
} from '../../../include/rdma/ib_verbs.js';

/** SIZE_MAX: ibv_reg_mr(pd, 0, SIZE_MAX, IBV_ACCESS_ON_DEMAND) registers the implicit MR. */
export const SIZE_MAX = IB_IMPLICIT_MR_LENGTH;

let errno_value = 0;
/** ibv_errno() - errno as the last failing call left it (positive). */
export function ibv_errno(): number { return errno_value; }
function fail(err: number): null { errno_value = -err; return null; }
function rc(err: number): number { return err < 0 ? -err : 0; }

export interface ibv_context { proc: Process; uctx: mlx5_ib_ucontext; name: string; next_pdn: number; fd: number; ufile: ib_uverbs_file; }
export interface ibv_pd { ctx: ibv_context; pd: ib_pd; }
export interface ibv_mr { ctx: ibv_context; mr: ib_mr; readonly lkey: number; readonly rkey: number; readonly addr: number; readonly length: number; }
export interface ibv_cq { ctx: ibv_context; cq: ib_cq; }
export interface ibv_qp { ctx: ibv_context; qp: ib_qp; readonly qp_num: number; }
export interface ibv_qp_init_attr { send_cq: ibv_cq; recv_cq: ibv_cq; cap: { max_send_wr: number; max_recv_wr: number }; }
export type ibv_wc = ib_wc;
export type ibv_sge = ib_sge;
export type ibv_send_wr = ib_send_wr;
export type ibv_recv_wr = ib_recv_wr;
export type ibv_qp_attr = ib_qp_attr;

/** ibv_open_device() - @proc opens the device called @name. null + ENODEV if there is none. */
export function ibv_open_device(proc: Process, name: string): ibv_context | null {
  const dev = ib_device_get_by_name(name);
  if (dev === null) return fail(-ENODEV);
  const fd = proc.open(`/dev/infiniband/uverbs_${name}`, 2);
  if (fd < 0) return fail(fd);
  const ufile = fget(proc.task, fd)!.private_data as ib_uverbs_file;
  const uctx = mlx5_ib_alloc_ucontext(to_mdev(dev), proc.mm);
  ufile.ucontext = uctx;
  return { proc, uctx, name, next_pdn: 1, fd, ufile };
}

/** ibv_close_device() - close the device file; what is left of the context is destroyed. 0 or errno. */
export function ibv_close_device(ctx: ibv_context): number { return rc(ctx.proc.close(ctx.fd)); }

/** ibv_alloc_pd() */
export function ibv_alloc_pd(ctx: ibv_context): ibv_pd | null {
  const pd = ib_alloc_pd(ctx.uctx.dev.ibdev, ctx.uctx, ctx.next_pdn++);
  if (typeof pd === 'number') return fail(pd);
  ctx.ufile.pds.add(pd);
  return { ctx, pd };
}

/** ibv_reg_mr() - null with errno EINVAL, EFAULT, ENOMEM, EOPNOTSUPP on failure. */
export function ibv_reg_mr(pd: ibv_pd, addr: number, length: number, access: number): ibv_mr | null {
  const mr = runAs(pd.ctx.proc.task, ib_reg_user_mr(pd.pd, addr, length, addr, access));
  if (typeof mr === 'number') return fail(mr);
  pd.ctx.ufile.mrs.add(mr);
  return { ctx: pd.ctx, mr, lkey: mr.lkey, rkey: mr.rkey, addr, length };
}

/** ibv_dereg_mr() - 0 or errno (EINVAL: the MR is gone, e.g. its device file was closed). */
export function ibv_dereg_mr(mr: ibv_mr): number {
  if (!mr.ctx.ufile.mrs.delete(mr.mr)) return rc(-EINVAL);
  return rc(runAs(mr.ctx.proc.task, ib_dereg_mr(mr.mr)));
}

/** ibv_create_cq() */
export function ibv_create_cq(ctx: ibv_context, cqe: number): ibv_cq | null {
  const cq = ctx.uctx.dev.ibdev.ops.create_cq(ctx.uctx.dev.ibdev, cqe);
  return typeof cq === 'number' ? fail(cq) : { ctx, cq };
}

/** ibv_create_qp() - an RC QP in RESET. */
export function ibv_create_qp(pd: ibv_pd, attr: ibv_qp_init_attr): ibv_qp | null {
  const qp = pd.pd.device.ops.create_qp(pd.pd, attr.send_cq.cq, attr.recv_cq.cq, attr.cap.max_send_wr, attr.cap.max_recv_wr);
  if (typeof qp === 'number') return fail(qp);
  pd.pd.usecnt++;
  return { ctx: pd.ctx, qp, qp_num: qp.qp_num };
}

/** ibv_modify_qp() - 0 or EINVAL. */
export function ibv_modify_qp(qp: ibv_qp, attr: ibv_qp_attr, mask: number): number {
  return rc(qp.qp.device.ops.modify_qp(qp.qp, attr, mask));
}

/** ibv_post_send() - 0, EINVAL or ENOMEM; the NIC runs the WQE before this returns. */
export function ibv_post_send(qp: ibv_qp, wr: ibv_send_wr): number {
  return rc(runAs(qp.ctx.proc.task, qp.qp.device.ops.post_send(qp.qp, wr)));
}

/** ibv_post_recv() - 0, EINVAL or ENOMEM. */
export function ibv_post_recv(qp: ibv_qp, wr: ibv_recv_wr): number { return rc(qp.qp.device.ops.post_recv(qp.qp, wr)); }

/** ibv_poll_cq() - up to @n completions, oldest first; queued driver work gets to run first. */
export function ibv_poll_cq(cq: ibv_cq, n: number): ibv_wc[] {
  runAs(cq.ctx.proc.task, mlx5_ib_flush_wq(cq.ctx.uctx.dev));
  return cq.cq.device.ops.poll_cq(cq.cq, n);
}

/** ibv_advise_mr() - 0 or errno (EOPNOTSUPP, EINVAL, ENOENT, or a fault's errno with FLUSH). */
export function ibv_advise_mr(pd: ibv_pd, advice: number, flags: number, sg_list: ibv_sge[]): number {
  return rc(runAs(pd.ctx.proc.task, ib_advise_mr(pd.pd, advice, flags, sg_list)));
}

/** ibv_wc_status_str() */
export function ibv_wc_status_str(status: number): string { return `IBV_WC_${ib_wc_status_names[status] ?? status}`; }
