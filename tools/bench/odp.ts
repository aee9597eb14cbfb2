/*
 * tools/bench/odp.ts - `npm run bench -- odp`: what on-demand paging costs
 * and saves on the mock mlx5 (drivers/infiniband/), in simulated time,
 * with host CPU time (process.cpuUsage) beside it.
 *
 * Rows, each on a fresh machine, each a median of ODP_BENCH_REPS runs after
 * one warm-up run, each with its same-run baseline:
 *   1. registering 1 GiB: ODP (nothing pinned) against pinned
 *      (pin_user_pages(FOLL_LONGTERM) of 262,144 pages);
 *   2. first-touch RDMA WRITE of 64 KiB into an ODP MR: without prefetch
 *      (responder fault + RNR NAK) against after ibv_advise_mr(PREFETCH_WRITE);
 *   3. a SEND into a non-present receive buffer (RNR NAK, default timer
 *      code 0 = 655 ms, and code 1 = 10 us) against a requester fault that
 *      resolves without RNR;
 *   4. the same 16 MiB RDMA WRITE into a fresh ODP MR under each
 *      ib_umem_odp design, then MADV_DONTNEED of it (invalidations):
 *      simulated time, faults, invalidations, against mainline.
 * ODP_BENCH_GIB overrides the registration size (tests run it small).
 */
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { MADV_DONTNEED } from '../../include/uapi/asm-generic/mman.js';
import { ib_odp_designs, type ib_odp_design } from '../../include/rdma/ib_verbs.js';
import { machineTime } from '../../lib/sim/clock.js';
import { tracing_off } from '../../lib/sim/trace.js';
import { mlx5_ib_mr_of_key } from '../../drivers/infiniband/hw/mlx5/mlx5_ib.js';
import {
  ibv_reg_mr, ibv_errno, ibv_post_send, ibv_post_recv, ibv_poll_cq, ibv_advise_mr, IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_REMOTE_WRITE,
  IBV_ACCESS_ON_DEMAND, IBV_WR_RDMA_WRITE, IBV_WR_SEND, IBV_SEND_SIGNALED, IBV_WC_SUCCESS,
  IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, IBV_ADVISE_MR_FLAG_FLUSH,
} from '../include/infiniband/verbs.js';
import { rig, RW, ANON, type side } from '../lib/rdma.js';
import { row } from './harness.js';

const W = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
const REPS = Number(process.env.ODP_BENCH_REPS ?? 5);

interface sample { sim_ns: number; cpu_us: number; faults?: number; prefetch?: number; invalidations?: number }

function measure(fn: () => void): sample {
  const c0 = process.cpuUsage(), t0 = machineTime();
  fn();
  const c = process.cpuUsage(c0);
  return { sim_ns: machineTime() - t0, cpu_us: c.user + c.system };
}

function median(fn: () => sample): sample {
  fn();                                            /* warm-up */
  const xs = Array.from({ length: REPS }, fn).sort((x, y) => x.sim_ns - y.sim_ns);
  return xs[Math.floor(xs.length / 2)];
}

function write(a: side, abuf: number, alkey: number, dst: number, rkey: number, len: number): void {
  ibv_post_send(a.qp, { wr_id: 1, opcode: IBV_WR_RDMA_WRITE, send_flags: IBV_SEND_SIGNALED,
    sg_list: [{ addr: abuf, length: len, lkey: alkey }], remote_addr: dst, rkey });
  const wc = ibv_poll_cq(a.cq, 1);
  if (wc[0]?.status !== IBV_WC_SUCCESS) throw new Error(`bench odp: WRITE status ${wc[0]?.status}`);
}

function reg_cost(odp: boolean, bytes: number): sample {
  const { a } = rig('mainline', {}, bytes + (256 << 20));
  const buf = a.p.mmap(0, bytes, RW, ANON);
  let mr = null;
  const s = measure(() => { mr = ibv_reg_mr(a.pd, buf, bytes, W | (odp ? IBV_ACCESS_ON_DEMAND : 0)); });
  if (mr === null) throw new Error(`bench odp: registration failed, errno ${ibv_errno()}`);
  return s;
}

function first_touch(prefetch: boolean): sample {
  const { a, b } = rig('mainline', { min_rnr_timer: 1 });
  const len = 64 << 10;
  const abuf = a.p.mmap(0, len, RW, ANON), bbuf = b.p.mmap(0, len, RW, ANON);
  a.p.write(abuf, new Uint8Array(len).fill(1));
  b.p.write(bbuf, new Uint8Array(len));             /* CPU-present: only the NIC misses */
  const amr = ibv_reg_mr(a.pd, abuf, len, W)!, bmr = ibv_reg_mr(b.pd, bbuf, len, W | IBV_ACCESS_ON_DEMAND)!;
  if (prefetch) ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, IBV_ADVISE_MR_FLAG_FLUSH, [{ addr: bbuf, length: len, lkey: bmr.lkey }]);
  return measure(() => write(a, abuf, amr.lkey, bbuf, bmr.rkey, len));
}

function recv_fault(timer: number | null): sample {
  const { a, b } = rig('mainline', { min_rnr_timer: timer ?? 1 });
  const abuf = a.p.mmap(0, PAGE_SIZE, RW, ANON), bbuf = b.p.mmap(0, PAGE_SIZE, RW, ANON);
  a.p.write32(abuf, 5);
  if (timer === null) b.p.write32(bbuf, 0);         /* receive side present; the sender's page is not in its MTT */
  const amr = ibv_reg_mr(a.pd, abuf, PAGE_SIZE, W | (timer === null ? IBV_ACCESS_ON_DEMAND : 0))!;
  const bmr = ibv_reg_mr(b.pd, bbuf, PAGE_SIZE, W | (timer === null ? 0 : IBV_ACCESS_ON_DEMAND))!;
  ibv_post_recv(b.qp, { wr_id: 2, sg_list: [{ addr: bbuf, length: 64, lkey: bmr.lkey }] });
  return measure(() => {
    ibv_post_send(a.qp, { wr_id: 1, opcode: IBV_WR_SEND, send_flags: IBV_SEND_SIGNALED, sg_list: [{ addr: abuf, length: 64, lkey: amr.lkey }] });
    if (ibv_poll_cq(a.cq, 1)[0]?.status !== IBV_WC_SUCCESS) throw new Error('bench odp: SEND failed');
  });
}

function design_run(design: ib_odp_design): sample {
  const { a, b } = rig(design);
  const len = 16 << 20;
  const abuf = a.p.mmap(0, len, RW, ANON), bbuf = b.p.mmap(0, len, RW, ANON);
  a.p.write(abuf, new Uint8Array(len).fill(7));
  const amr = ibv_reg_mr(a.pd, abuf, len, W)!, bmr = ibv_reg_mr(b.pd, bbuf, len, W | IBV_ACCESS_ON_DEMAND)!;
  const s = measure(() => {
    write(a, abuf, amr.lkey, bbuf, bmr.rkey, len);
    b.p.madvise(bbuf, len, MADV_DONTNEED);
  });
  const st = mlx5_ib_mr_of_key(b.dev, bmr.lkey)!.odp_stats;
  return { ...s, faults: st.faults, prefetch: st.prefetch, invalidations: st.invalidations };
}

const us = (s: sample) => s.sim_ns / 1000;

export function bench_odp(): void {
  tracing_off();
  const gib = Number(process.env.ODP_BENCH_GIB ?? 1);
  const bytes = gib * 2 ** 30;
  console.log(`odp: mock mlx5 ODP, simulated us (median of ${REPS} after a warm-up); host CPU us beside`);
  const pin = median(() => reg_cost(false, bytes)), odp = median(() => reg_cost(true, bytes));
  row(`reg_mr ${gib} GiB: ODP`, us(odp), 'sim us', 'pinned', us(pin), `host cpu ${odp.cpu_us.toFixed(0)} vs ${pin.cpu_us.toFixed(0)} us`);
  const cold = median(() => first_touch(false)), warm = median(() => first_touch(true));
  row('first-touch WRITE 64 KiB, no prefetch', us(cold), 'sim us', 'advise_mr', us(warm), `host cpu ${cold.cpu_us.toFixed(0)} vs ${warm.cpu_us.toFixed(0)} us`);
  const resolved = median(() => recv_fault(null));
  for (const [name, code] of [['RNR, min_rnr_timer 0 (655 ms)', 0], ['RNR, min_rnr_timer 1 (10 us)', 1]] as const) {
    const r = median(() => recv_fault(code));
    row(`SEND into absent page: ${name}`, us(r), 'sim us', 'sender fault', us(resolved), `host cpu ${r.cpu_us.toFixed(0)} vs ${resolved.cpu_us.toFixed(0)} us`);
  }
  const base = median(() => design_run('mainline'));
  for (const d of ib_odp_designs) {
    const r = median(() => design_run(d));
    row(`16 MiB WRITE + DONTNEED: ${d}`, us(r), 'sim us', 'mainline', us(base),
      `pages faulted ${r.faults}, prefetched ${r.prefetch}, invalidated ${r.invalidations}; host cpu ${r.cpu_us.toFixed(0)} us`);
  }
}
