/*
 * drivers/infiniband/core/device.ts - the IB core: device registration,
 * user contexts, protection domains, and the checks every verb makes
 * before it reaches the driver's ib_device_ops.
 *
 * Follows drivers/infiniband/core/device.c (ib_register_device,
 * ib_device_get_by_name), verbs.c (ib_alloc_pd, ib_dealloc_pd,
 * ib_check_mr_access, ib_advise_mr) and uverbs_cmd.c (the reg_mr checks)
 * of Linux v5.10. Simplified: no object handles; a user context is
 * created per open of the device file (./uverbs_main.ts, which also
 * destroys what is left at the last close) and passed along.
 */
import {
  type ib_device, type ib_device_ops, type ib_pd, type ib_mr, type ib_sge, type ib_odp_design,
  IB_ACCESS_LOCAL_WRITE, IB_ACCESS_REMOTE_WRITE, IB_ACCESS_REMOTE_ATOMIC, IB_ACCESS_SUPPORTED,
} from '../../../include/rdma/ib_verbs.js';
import { EBUSY, EEXIST, EINVAL, EOPNOTSUPP } from '../../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { trace_event } from '../../../lib/sim/trace.js';
import { ib_uverbs_add_one, ib_uverbs_remove_one } from './uverbs_main.js';

/* the registered devices, by name (ib_devices xarray) */
const ib_devices = new Map<string, ib_device>();

/**
 * ib_register_device() - make @name usable by verbs.
 * Return: the device, or -EEXIST if the name is taken, -EINVAL without ops.
 */
export function ib_register_device(name: string, ops: ib_device_ops, odp_design: ib_odp_design, driver_data: unknown): ib_device | number {
  if (ops === null || ops === undefined) return -EINVAL;
  if (ib_devices.has(name)) return -EEXIST;
  const dev: ib_device = Object.freeze({ name, ops, odp_design, driver_data });
  ib_devices.set(name, dev);
  ib_uverbs_add_one(dev, ib_dereg_mr, ib_dealloc_pd);
  trace_event('ib_register_device', { name, odp_design });
  return dev;
}

/** ib_unregister_device() - the name goes away. */
export function ib_unregister_device(dev: ib_device): void {
  ib_uverbs_remove_one(dev);
  ib_devices.delete(dev.name);
}

/** ib_device_get_by_name() - the device called @name, or null. */
export function ib_device_get_by_name(name: string): ib_device | null { return ib_devices.get(name) ?? null; }

/** ibDevicesReset() - forget every device (a fresh machine). */
export function ibDevicesReset(): void { ib_devices.clear(); }

/** ib_alloc_pd() - a protection domain of user context @uctx. Return: the PD or -errno from the driver. */
export function ib_alloc_pd(dev: ib_device, uctx: unknown, pdn: number): ib_pd | number {
  const pd: ib_pd = { device: dev, uctx, pdn, usecnt: 0 };
  const ret = dev.ops.alloc_pd(pd);
  return ret ? ret : pd;
}

/** ib_dealloc_pd() - Return: 0, or -EBUSY while MRs or QPs still use the PD. */
export function ib_dealloc_pd(pd: ib_pd): number {
  if (pd.usecnt > 0) return -EBUSY;
  return pd.device.ops.dealloc_pd(pd);
}

/**
 * ib_check_mr_access() - the access-flag rules: unknown flags are refused,
 * remote write and atomics need local write (the HCA would otherwise write
 * memory the local side cannot). Every device of this model has ODP.
 * Return: 0 or -EINVAL.
 */
export function ib_check_mr_access(_dev: ib_device, access: number): number {
  if (access & ~IB_ACCESS_SUPPORTED) return -EINVAL;
  if (access & (IB_ACCESS_REMOTE_WRITE | IB_ACCESS_REMOTE_ATOMIC) && !(access & IB_ACCESS_LOCAL_WRITE)) return -EINVAL;
  return 0;
}

/**
 * ib_reg_user_mr() - register [start, start + length) of the PD's process.
 * Context: may sleep. Return: the MR or -errno (ib_check_mr_access, then
 * the driver: -EFAULT, -ENOMEM, -EINVAL).
 */
export function* ib_reg_user_mr(pd: ib_pd, start: number, length: number, iova: number, access: number): Sleepable<ib_mr | number> {
  const err = ib_check_mr_access(pd.device, access);
  if (err) return err;
  if (!(length > 0)) return -EINVAL;
  return yield* pd.device.ops.reg_user_mr(pd, start, length, iova, access);
}

/** ib_dereg_mr() - Context: may sleep. Return: 0 or -EINVAL. */
export function* ib_dereg_mr(mr: ib_mr): Sleepable<number> {
  return yield* mr.device.ops.dereg_mr(mr);
}

/** ib_advise_mr() - Return: 0 or -errno (-EOPNOTSUPP without driver support). */
export function* ib_advise_mr(pd: ib_pd, advice: number, flags: number, sg_list: ib_sge[]): Sleepable<number> {
  if (pd.device.ops.advise_mr === undefined) return -EOPNOTSUPP;
  return yield* pd.device.ops.advise_mr(pd, advice, flags, sg_list);
}

