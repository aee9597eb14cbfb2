/*
 * drivers/gpu/mockgpu/uvm_gmem.ts - the mock GPU on GMEM (the 2023 RFC,
 * mm/gmem.ts), the third glue beside uvm_hmm.ts (mainline) and
 * uvm_hmm_v8.ts (2015). Select it before open with
 * mockgpu_set_era(uvm_gmem_ops).
 *
 * This file is what the RFC says a driver writes besides its MMU functions
 * (those are uvm_gmem_mmu.ts): register the device once, attach a context
 * to the opener's mm, and pass every fault to gm_dev_fault(). Where a page
 * lives, when it moves, and what happens on a CPU fault, munmap or exit is
 * core mm's decision. Compare uvm_hmm.ts, which makes all of these itself.
 *
 * What GMEM asks of user space: the buffers the GPU touches are mapped
 * with MAP_PEER_SHARED after the device is opened (a fault anywhere else
 * is fatal, -EFAULT, as gm_dev_fault() fails there).
 */
import type { gm_as, gm_context, gm_dev } from '../../../include/linux/gmem.js';
import {
  GM_DEV_CAP_PEER, GM_DEV_CAP_REPLAYABLE, GM_MMU_MODE_COHERENT_EXCLUSIVE, GM_RET_NOMEM, GM_RET_SUCCESS,
} from '../../../include/linux/gmem.js';
import { PAGE_SIZE, TASK_SIZE } from '../../../include/linux/mm.js';
import { MOCKGPU_FAULT_ACCESS_WRITE } from '../../../include/linux/mockgpu.js';
import { EFAULT, ENODEV, ENOMEM } from '../../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { gm_as_attach, gm_as_create, gm_as_detach, gm_dev_create, gm_dev_fault, gm_dev_register_physmem } from '../../../mm/gmem.js';
import { mmget_not_zero, mmput } from '../../../mm/task.js';
import type { mockgpu_hmm_ops, uvm_gpu, uvm_service_fault, uvm_va_space } from './uvm_gpu.js';
import { uvm_gmem_mmu, type uvm_gmem_pmap } from './uvm_gmem_mmu.js';

const gm_devs = new WeakMap<uvm_gpu, gm_dev>();

function* uvm_gmem_va_space_init(vs: uvm_va_space): Sleepable<number> {
  let dev = gm_devs.get(vs.gpu);
  if (dev === undefined) {
    const d: { dev?: gm_dev } = {};
    if (gm_dev_create(uvm_gmem_mmu, vs.gpu, GM_DEV_CAP_REPLAYABLE | GM_DEV_CAP_PEER, d) !== GM_RET_SUCCESS) return -ENODEV;
    dev = d.dev!;
    gm_dev_register_physmem(dev, 0, vs.gpu.pmm.nr_pages * PAGE_SIZE);
    gm_devs.set(vs.gpu, dev);
  }
  if (vs.mm.gm_as === null) {
    const a: { as?: gm_as } = {};
    if (gm_as_create(0, TASK_SIZE, a) !== GM_RET_SUCCESS) return -ENOMEM;
    vs.mm.gm_as = a.as!;
  }
  const c: { ctx?: gm_context } = {};
  const ret = gm_as_attach(vs.mm.gm_as as gm_as, dev, GM_MMU_MODE_COHERENT_EXCLUSIVE, true, c);
  if (ret !== GM_RET_SUCCESS) return -ENOMEM;
  (c.ctx!.pmap as uvm_gmem_pmap).vs = vs;
  vs.glue_data = c.ctx!;
  return 0;
}

function* uvm_gmem_va_space_fini(vs: uvm_va_space): Sleepable {
  const ctx = vs.glue_data as gm_context | null;
  if (ctx === null) return;
  yield* gm_as_detach(ctx, vs.mm);
  vs.glue_data = null;
}

function* uvm_gmem_service_block(vs: uvm_va_space, faults: uvm_service_fault[]): Sleepable {
  const dev = gm_devs.get(vs.gpu)!;
  if (vs.glue_data === null || !mmget_not_zero(vs.mm)) { for (const f of faults) f.fatal = -EFAULT; return; }
  for (const f of faults) {
    const ret = yield* gm_dev_fault(vs.mm, f.va, dev, null, f.access >= MOCKGPU_FAULT_ACCESS_WRITE);
    if (ret === GM_RET_NOMEM) f.fatal = -ENOMEM;
    else if (ret !== GM_RET_SUCCESS) f.fatal = -EFAULT;
  }
  yield* mmput(vs.mm);
}

/** The GMEM glue of the device core. */
export const uvm_gmem_ops: mockgpu_hmm_ops = Object.freeze({
  name: 'gmem' as const,
  va_space_init: uvm_gmem_va_space_init,
  va_space_fini: uvm_gmem_va_space_fini,
  service_block: uvm_gmem_service_block,
});
