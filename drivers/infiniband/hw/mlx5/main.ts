/*
 * drivers/infiniband/hw/mlx5/main.ts - bringing a mock ConnectX up: the
 * ib_device_ops table and the probe that registers it with the IB core.
 *
 * Follows drivers/infiniband/hw/mlx5/main.c of Linux v5.10 (mlx5_ib_dev_ops
 * and the ODP part of it, mlx5_ib_odp_ops, registered through
 * ib_set_device_ops). The ODP design (include/rdma/ib_umem_odp.ts) is a
 * property of the device, chosen at probe: the simulator's way to put the
 * 2014 code, HMM v8 and mainline side by side.
 */
import type { ib_device, ib_device_ops, ib_odp_design, ib_pd } from '../../../../include/rdma/ib_verbs.js';
import type { mm_struct } from '../../../../include/linux/mm_types.js';
import { ib_register_device } from '../../core/device.js';
import { type mlx5_ib_dev, type mlx5_ib_ucontext, mlx5_ib_dev_new, mlx5_ib_ucontext_new, to_mdev } from './mlx5_ib.js';
import { mlx5_ib_reg_user_mr, mlx5_ib_dereg_mr } from './mr.js';
import { mlx5_ib_advise_mr, mlx5_ib_invalidate_range } from './odp.js';
import { mlx5_ib_create_cq, mlx5_ib_create_qp, mlx5_ib_modify_qp, mlx5_ib_post_send, mlx5_ib_post_recv, mlx5_ib_poll_cq } from './qp.js';

const mlx5_ib_dev_ops: ib_device_ops = Object.freeze({
  alloc_pd(_pd: ib_pd): number { return 0; },
  dealloc_pd(_pd: ib_pd): number { return 0; },
  reg_user_mr: mlx5_ib_reg_user_mr,
  dereg_mr: mlx5_ib_dereg_mr,
  create_cq(ibdev: ib_device, cqe: number) { return mlx5_ib_create_cq(to_mdev(ibdev), cqe); },
  create_qp: mlx5_ib_create_qp,
  modify_qp: mlx5_ib_modify_qp,
  post_send: mlx5_ib_post_send,
  post_recv: mlx5_ib_post_recv,
  poll_cq: mlx5_ib_poll_cq,
  advise_mr: mlx5_ib_advise_mr,
});

/**
 * mlx5_ib_probe() - create and register a NIC called @name whose ODP MRs
 * use @design. Return: the device, or -EEXIST when the name is taken.
 */
export function mlx5_ib_probe(name: string, design: ib_odp_design = 'mainline'): mlx5_ib_dev | number {
  const dev = mlx5_ib_dev_new(name, design);
  const ibdev = ib_register_device(name, mlx5_ib_dev_ops, design, dev);
  if (typeof ibdev === 'number') return ibdev;
  dev.ibdev = ibdev;
  return dev;
}

/** mlx5_ib_alloc_ucontext() - a user context of @mm on @dev. */
export function mlx5_ib_alloc_ucontext(dev: mlx5_ib_dev, mm: mm_struct): mlx5_ib_ucontext {
  return mlx5_ib_ucontext_new(dev, mm, mlx5_ib_invalidate_range);
}

export { mlx5_ib_create_cq, to_mdev };
