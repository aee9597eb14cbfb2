/*
 * drivers/infiniband/core/uverbs_main.ts - /dev/infiniband/uverbs_<dev>,
 * the file a process opens to use an RDMA device, and what its last close
 * cleans up.
 *
 * Follows drivers/infiniband/core/uverbs_main.c of Linux v5.10
 * (ib_uverbs_open, ib_uverbs_close, ib_uverbs_cleanup_ufile): every object
 * a process creates through verbs belongs to its open file, and when the
 * file goes (close, or exit closing every descriptor) the kernel destroys
 * what is left: each MR is deregistered (a pinned MR unpins its pages, an
 * ODP MR drops its notifier and DMA mappings), then each PD. So a process
 * that exits with registered memory leaves nothing pinned, as in Linux.
 * An MR outlives its process only while another process holds the file
 * (a fork child: the descriptor table is copied).
 *
 * Simplified: no uobject handles or ABI commands (tools/include/infiniband
 * calls the core directly and records what it created here), no
 * disassociation on device removal; QPs and CQs hold no memory and are
 * not tracked.
 */
import type { ib_device, ib_mr, ib_pd } from '../../../include/rdma/ib_verbs.js';
import type { file, file_operations, inode } from '../../../include/linux/sched.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { trace_event } from '../../../lib/sim/trace.js';
import { misc_register, misc_deregister } from '../../../mm/file.js';

/* struct ib_uverbs_file: one open of the device file and the objects made through it */
export interface ib_uverbs_file {
  device: ib_device;
  /* the driver's user context (created by the opener: tools/include/infiniband/verbs.ts) */
  ucontext: unknown;
  /* MRs and PDs not yet destroyed by their owner */
  mrs: Set<ib_mr>;
  pds: Set<ib_pd>;
}

/* uverbs major number (Linux: IB_UVERBS_MAJOR 231) */
const IB_UVERBS_MAJOR = 231;

/**
 * ib_uverbs_cleanup_ufile() - destroy every object still in @uf: MRs
 * first (they hold their PD), then PDs.
 * Context: may sleep (deregistration waits for the device).
 */
export function* ib_uverbs_cleanup_ufile(uf: ib_uverbs_file, dereg: (mr: ib_mr) => Sleepable<number>,
                                         dealloc: (pd: ib_pd) => number): Sleepable {
  const mrs = [...uf.mrs], pds = [...uf.pds];
  uf.mrs.clear();
  uf.pds.clear();
  for (const mr of mrs) yield* dereg(mr);
  for (const pd of pds) dealloc(pd);
  trace_event('ib_uverbs_cleanup_ufile', { dev: uf.device.name, mrs: mrs.length, pds: pds.length });
}

/**
 * ib_uverbs_add_one() - create /dev/infiniband/uverbs_<name> for @dev.
 * @dereg, @dealloc: the core's ib_dereg_mr and ib_dealloc_pd (passed in,
 * as device.ts imports this file).
 */
export function ib_uverbs_add_one(dev: ib_device, dereg: (mr: ib_mr) => Sleepable<number>,
                                  dealloc: (pd: ib_pd) => number): void {
  const fops: file_operations = Object.freeze({
    *open(ino: inode, f: file): Sleepable<number> {
      const uf: ib_uverbs_file = { device: ino.i_private as ib_device, ucontext: null, mrs: new Set(), pds: new Set() };
      f.private_data = uf;
      return 0;
    },
    *release(_ino: inode, f: file): Sleepable<number> {
      yield* ib_uverbs_cleanup_ufile(f.private_data as ib_uverbs_file, dereg, dealloc);
      return 0;
    },
  });
  misc_register(`infiniband/uverbs_${dev.name}`, IB_UVERBS_MAJOR * 2 ** 20, fops, dev);
}

/** ib_uverbs_remove_one() - the device file goes away with its device. */
export function ib_uverbs_remove_one(dev: ib_device): void {
  misc_deregister(`infiniband/uverbs_${dev.name}`);
}
