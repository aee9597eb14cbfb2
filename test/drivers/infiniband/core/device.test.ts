/*
 * test/drivers/infiniband/core/device.test.ts - the IB core front door:
 * device registration, access-flag rules, PD lifetime, dispatch to the
 * driver's ib_device_ops.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  IB_ACCESS_LOCAL_WRITE, IB_ACCESS_REMOTE_WRITE, IB_ACCESS_REMOTE_READ, IB_ACCESS_REMOTE_ATOMIC, IB_ACCESS_ON_DEMAND,
  IB_ACCESS_MW_BIND, ib_access_writable, ib_rnr_timer_ns, ib_local_ack_timeout_ns, type ib_device_ops,
} from '../../../../include/rdma/ib_verbs.js';
import { EEXIST, EINVAL, EBUSY } from '../../../../include/uapi/asm-generic/errno.js';
import {
  ib_register_device, ib_unregister_device, ib_device_get_by_name, ibDevicesReset, ib_check_mr_access, ib_alloc_pd,
  ib_dealloc_pd,
} from '../../../../drivers/infiniband/core/device.js';
import { rig } from '../rig.js';

test('registration by name: EEXIST for a taken name, lookup, unregister', () => {
  ibDevicesReset();
  const ops = { alloc_pd: () => 0, dealloc_pd: () => 0 } as unknown as ib_device_ops;
  const d = ib_register_device('rxe0', ops, 'mainline', null);
  assert.ok(typeof d !== 'number');
  assert.is(ib_register_device('rxe0', ops, '2014', null), -EEXIST);
  assert.is(ib_device_get_by_name('rxe0'), d);
  ib_unregister_device(d as Exclude<typeof d, number>);
  assert.is(ib_device_get_by_name('rxe0'), null);
});

test('access rules: remote write and atomics need local write; unknown bits are refused; writable means any write right', () => {
  const { a } = rig('mainline');
  const dev = a.dev.ibdev;
  assert.is(ib_check_mr_access(dev, IB_ACCESS_REMOTE_READ | IB_ACCESS_ON_DEMAND), 0);
  assert.is(ib_check_mr_access(dev, IB_ACCESS_REMOTE_WRITE), -EINVAL);
  assert.is(ib_check_mr_access(dev, IB_ACCESS_REMOTE_ATOMIC), -EINVAL);
  assert.is(ib_check_mr_access(dev, IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_ATOMIC), 0);
  assert.is(ib_check_mr_access(dev, IB_ACCESS_MW_BIND), -EINVAL, 'memory windows are not modelled');
  assert.is(ib_access_writable(IB_ACCESS_REMOTE_READ), false);
  assert.is(ib_access_writable(IB_ACCESS_REMOTE_ATOMIC), true);
});

test('the IB timer encodings: RNR code 0 is 655.36 ms, code 1 10 us, code 31 491.52 ms; ack timeout 14 is 67 ms', () => {
  assert.equal([ib_rnr_timer_ns(0), ib_rnr_timer_ns(1), ib_rnr_timer_ns(14), ib_rnr_timer_ns(31)], [655_360_000, 10_000, 1_280_000, 491_520_000]);
  assert.is(Math.round(ib_local_ack_timeout_ns(14) / 1e6), 67);
  assert.is(ib_local_ack_timeout_ns(0), Infinity);
});

test('a PD goes only once nothing uses it', () => {
  const { a } = rig('mainline');
  const pd = ib_alloc_pd(a.dev.ibdev, a.ctx.uctx, 9);
  assert.ok(typeof pd !== 'number');
  assert.is(ib_dealloc_pd(a.pd.pd), -EBUSY, 'the rig\'s QP uses its PD');
  assert.is(ib_dealloc_pd(pd as Exclude<typeof pd, number>), 0);
});

test.run();
