/*
 * tools/hmm-sim/scenarios/odp.ts - `hmm-sim run odp`: an RDMA NIC
 * with on-demand paging (drivers/infiniband/), the same transfer under the
 * three ib_umem_odp designs, then the pitfalls ODP users reported, each
 * reproduced and explained in the trace (events "odp_pitfall").
 *
 * The pitfalls (shared/reference/peers.md, section 3, items 5-6):
 *  rnr        a receive into a page the NIC has not mapped costs an RNR NAK
 *             and a wait of min_rnr_timer: 655 ms with the default code 0,
 *             10 us with code 1 (ydb nbs #5790; disni #39);
 *  readonly   an ODP MR that is writable (LOCAL_WRITE) over read-only
 *             memory: every fault asks for write access, so even an RDMA
 *             READ of it fails (chapel #18245); registered without write
 *             access it works; a pinned MR fails at registration instead;
 *  fork       fork after registration: a pinned page is copied for the
 *             child at fork (Linux 5.9+), so the parent keeps the NIC's
 *             page; before 5.9 it was shared, and the parent's first
 *             write moved the parent off the page the NIC writes (shown
 *             with fork_params.share_dma_pinned); ODP follows the CPU page
 *             table through the COW;
 *  munmap     munmap under a live MR: the pinned MR keeps writing the old
 *             pages nobody maps; ODP completes with an error, then faults
 *             the new mapping once there is one;
 *  large_read a 16 MiB RDMA READ from an ODP MR the NIC has not mapped: each
 *             responder fault answers nothing, the requester waits out the
 *             transport timer (67 ms at timeout 14) per fault (UCX #7021);
 *             ibv_advise_mr first removes every timeout.
 * Each returns its outcome lines and the figures the tests check.
 */
import { defineScenario } from '../api.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, MAP_FIXED, MADV_DONTNEED } from '../../../include/uapi/asm-generic/mman.js';
import { ib_odp_designs, type ib_odp_design } from '../../../include/rdma/ib_verbs.js';
import { errno_name } from '../../../include/uapi/asm-generic/errno.js';
import { machineTime, formatNs } from '../../../lib/sim/clock.js';
import { trace_event } from '../../../lib/sim/trace.js';
import { mlx5_ib_mr_of_key } from '../../../drivers/infiniband/hw/mlx5/mlx5_ib.js';
import { mlx5_ib_rdma_stat } from '../../../drivers/infiniband/hw/mlx5/odp.js';
import {
  ibv_reg_mr, ibv_errno, ibv_post_send, ibv_poll_cq, ibv_post_recv, ibv_advise_mr, ibv_wc_status_str,
  IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_REMOTE_WRITE, IBV_ACCESS_REMOTE_READ, IBV_ACCESS_ON_DEMAND, IBV_WR_RDMA_WRITE,
  IBV_WR_RDMA_READ, IBV_WR_SEND, IBV_SEND_SIGNALED, IBV_ADVISE_MR_ADVICE_PREFETCH, IBV_ADVISE_MR_FLAG_FLUSH,
  ibv_modify_qp, IBV_QPS_RESET, IBV_QP_STATE, type ibv_mr,
} from '../../include/infiniband/verbs.js';
import { fork_params } from '../../../mm/fork.js';
import { rig, connect, rdma_rig_params, RW, ANON, pattern, same, type side } from '../../lib/rdma.js';

const W = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;

/** The result of one pitfall: lines for the outcome, figures for tests. */
export interface odp_pitfall { lines: string[]; figures: Record<string, number | string | boolean> }

/* the explanations of the run, in order (also in the trace) */
const explained: string[] = [];
function explain(name: string, text: string): void {
  trace_event('odp_pitfall', { name, explain: text });
  explained.push(`  why (${name}): ${text}`);
}

/* one signaled op from A; returns the completion status name and the simulated time it took */
function op(a: side, opcode: number, lmr: ibv_mr, laddr: number, len: number, raddr = 0, rkey = 0): { status: string; ns: number } {
  const t0 = machineTime();
  ibv_post_send(a.qp, { wr_id: 1, opcode, send_flags: IBV_SEND_SIGNALED, sg_list: [{ addr: laddr, length: len, lkey: lmr.lkey }], remote_addr: raddr, rkey });
  const wc = ibv_poll_cq(a.cq, 1);
  return { status: wc.length ? ibv_wc_status_str(wc[0].status) : 'none', ns: machineTime() - t0 };
}

/** odp_pitfall_rnr() - a SEND into an absent receive page, default RNR timer vs code 1. */
export function odp_pitfall_rnr(): odp_pitfall {
  const out: Record<string, number> = {};
  for (const code of [0, 1]) {
    const { a, b } = rig('mainline', { min_rnr_timer: code });
    const abuf = a.p.mmap(0, PAGE_SIZE, RW, ANON), bbuf = b.p.mmap(0, PAGE_SIZE, RW, ANON);
    a.p.write32(abuf, 0xfeed);
    const amr = ibv_reg_mr(a.pd, abuf, PAGE_SIZE, W)!, bmr = ibv_reg_mr(b.pd, bbuf, PAGE_SIZE, W | IBV_ACCESS_ON_DEMAND)!;
    ibv_post_recv(b.qp, { wr_id: 7, sg_list: [{ addr: bbuf, length: 64, lkey: bmr.lkey }] });
    explain('rnr', `receive buffer not in the NIC's MTT: responder WQE fault + RNR NAK; the sender waits min_rnr_timer code ${code}`);
    const r = op(a, IBV_WR_SEND, amr, abuf, 64);
    out[`code${code}_ns`] = r.ns;
    out[`code${code}_ok`] = Number(r.status === 'IBV_WC_SUCCESS' && b.p.read32(bbuf) === 0xfeed);
  }
  return { lines: [`SEND into a non-present receive page: ${formatNs(out.code0_ns)} s with min_rnr_timer 0 (default, 655 ms), ` +
    `${formatNs(out.code1_ns)} s with code 1 (10 us); the fault itself is tens of us`], figures: out };
}

/** odp_pitfall_readonly() - an RDMA READ of PROT_READ memory through a writable ODP MR. */
export function odp_pitfall_readonly(): odp_pitfall {
  const { a, b } = rig('mainline');
  const abuf = a.p.mmap(0, PAGE_SIZE, RW, ANON), ro = b.p.mmap(0, PAGE_SIZE, PROT_READ, ANON);
  const amr = ibv_reg_mr(a.pd, abuf, PAGE_SIZE, W)!;
  const pinned = ibv_reg_mr(b.pd, ro, PAGE_SIZE, W);
  const pinned_errno = pinned === null ? errno_name(ibv_errno()) : 'ok';
  explain('readonly', 'the ODP MR has LOCAL_WRITE, so its faults ask for write access: hmm_range_fault(HMM_PFN_REQ_WRITE) on a read-only VMA fails');
  const wmr = ibv_reg_mr(b.pd, ro, PAGE_SIZE, W | IBV_ACCESS_ON_DEMAND)!;
  const bad = op(a, IBV_WR_RDMA_READ, amr, abuf, 64, ro, wmr.rkey).status;
  const c = rig('mainline');
  const abuf2 = c.a.p.mmap(0, PAGE_SIZE, RW, ANON), ro2 = c.b.p.mmap(0, PAGE_SIZE, PROT_READ, ANON);
  const amr2 = ibv_reg_mr(c.a.pd, abuf2, PAGE_SIZE, W)!;
  const rmr = ibv_reg_mr(c.b.pd, ro2, PAGE_SIZE, IBV_ACCESS_REMOTE_READ | IBV_ACCESS_ON_DEMAND)!;
  explain('readonly', 'registered with REMOTE_READ only, the umem is not writable and the fault asks for read access');
  const good = op(c.a, IBV_WR_RDMA_READ, amr2, abuf2, 64, ro2, rmr.rkey).status;
  return { lines: [`READ of read-only memory: pinned LOCAL_WRITE MR -> ${pinned_errno} at ibv_reg_mr; ODP LOCAL_WRITE MR -> ${bad}; ` +
    `ODP REMOTE_READ-only MR -> ${good}`], figures: { pinned_errno, odp_writable: bad, odp_readonly: good } };
}

/**
 * odp_pitfall_fork() - fork after registration: who sees the NIC's next
 * write? Pinned under Linux 5.9+ rules, pinned under the older rule
 * (fork_params.share_dma_pinned), and ODP.
 */
export function odp_pitfall_fork(): odp_pitfall {
  const figures: Record<string, boolean | number> = {};
  for (const k of ['pinned', 'pinned_pre59', 'odp'] as const) {
    const odp = k === 'odp';
    const { a, b } = rig('mainline');
    const abuf = a.p.mmap(0, PAGE_SIZE, RW, ANON), bbuf = b.p.mmap(0, PAGE_SIZE, RW, ANON);
    a.p.write32(abuf, 0xc0ffee);
    b.p.write32(bbuf, 1);
    const amr = ibv_reg_mr(a.pd, abuf, PAGE_SIZE, W)!, bmr = ibv_reg_mr(b.pd, bbuf, PAGE_SIZE, W | (odp ? IBV_ACCESS_ON_DEMAND : 0))!;
    op(a, IBV_WR_RDMA_WRITE, amr, abuf, 4, bbuf, bmr.rkey);          /* the NIC has the page now */
    fork_params.share_dma_pinned = k === 'pinned_pre59';
    let child;
    try { child = b.p.fork(); } finally { fork_params.share_dma_pinned = false; }
    b.p.write32(bbuf + 8, 2);                                       /* the parent writes after fork */
    explain('fork', odp ? 'ODP: fork write-protects the page (invalidation zaps the MTT); the parent\'s write breaks COW; the next NIC write faults in the parent\'s new page'
      : k === 'pinned' ? 'pinned, Linux 5.9+: fork copied the pinned page for the child (early COW of pinned pages); the parent keeps the page the NIC writes'
        : 'pinned, before Linux 5.9: fork shared the pinned page; the parent\'s write broke COW onto a new page; the NIC still writes the old one, now the child\'s');
    a.p.write32(abuf, 0xbeef);
    const st = op(a, IBV_WR_RDMA_WRITE, amr, abuf, 4, bbuf, bmr.rkey).status;
    figures[`${k}_parent_sees`] = b.p.read32(bbuf) === 0xbeef;
    figures[`${k}_child_sees`] = child.read32(bbuf) === 0xbeef;
    figures[`${k}_ok`] = st === 'IBV_WC_SUCCESS';
    figures[`${k}_invalidations`] = mlx5_ib_mr_of_key(b.dev, bmr.lkey)!.odp_stats.invalidations;
  }
  return { lines: [`fork after registration: pinned (5.9+) -> parent sees NIC write ${figures.pinned_parent_sees}, child ${figures.pinned_child_sees}; ` +
    `pinned (before 5.9) -> parent ${figures.pinned_pre59_parent_sees}, child ${figures.pinned_pre59_child_sees}; ` +
    `ODP -> parent ${figures.odp_parent_sees}, child ${figures.odp_child_sees} (${figures.odp_invalidations} invalidations)`], figures };
}

/** odp_pitfall_munmap() - munmap (and a new mapping at the same place) under a live MR. */
export function odp_pitfall_munmap(): odp_pitfall {
  const figures: Record<string, string | boolean> = {};
  for (const odp of [false, true]) {
    const { a, b } = rig('mainline');
    const abuf = a.p.mmap(0, PAGE_SIZE, RW, ANON), bbuf = b.p.mmap(0, PAGE_SIZE, RW, ANON);
    b.p.write32(bbuf, 1);
    a.p.write(abuf, pattern(64, 6));
    const amr = ibv_reg_mr(a.pd, abuf, PAGE_SIZE, W)!, bmr = ibv_reg_mr(b.pd, bbuf, PAGE_SIZE, W | (odp ? IBV_ACCESS_ON_DEMAND : 0))!;
    b.p.munmap(bbuf, PAGE_SIZE);
    const k = odp ? 'odp' : 'pinned';
    explain('munmap', odp ? 'ODP: munmap zapped the MTT; the NIC write faults, finds no VMA, PAGE_FAULT_RESUME with the error bit'
      : 'pinned: the pin keeps the old page alive and in the MTT; the NIC writes a page no process maps');
    const r1 = odp ? op(a, IBV_WR_RDMA_WRITE, amr, abuf, 64, bbuf, bmr.rkey).status : 'skipped';
    figures[`${k}_unmapped`] = r1;
    b.p.mmap(bbuf, PAGE_SIZE, RW, ANON | MAP_FIXED);
    rig_reconnect(a, b);                                            /* the error moved both QPs to ERR */
    const r2 = op(a, IBV_WR_RDMA_WRITE, amr, abuf, 64, bbuf, bmr.rkey).status;
    figures[`${k}_remapped`] = r2;
    figures[`${k}_process_sees`] = same(b.p.read(bbuf, 64), pattern(64, 6)) === true;
  }
  return { lines: [`munmap under a live MR: pinned -> WRITE ${figures.pinned_remapped}, process sees it ${figures.pinned_process_sees}; ` +
    `ODP -> ${figures.odp_unmapped} while unmapped, then ${figures.odp_remapped}, process sees it ${figures.odp_process_sees}`], figures };
}

/* bring both QPs back from error to RTS (RESET -> INIT -> RTR -> RTS) */
function rig_reconnect(a: side, b: side): void {
  for (const [x, y] of [[a, b], [b, a]] as const) {
    ibv_modify_qp(x.qp, { qp_state: IBV_QPS_RESET }, IBV_QP_STATE);
    connect(x.qp, y.qp.qp_num);
  }
}

/** odp_pitfall_large_read() - a 16 MiB READ from an ODP MR the NIC has not mapped, with and without advise_mr. */
export function odp_pitfall_large_read(): odp_pitfall {
  const figures: Record<string, number | string> = {};
  for (const advise of [false, true]) {
    const { a, b } = rig('mainline');
    const len = 16 << 20;
    const abuf = a.p.mmap(0, len, RW, ANON), bbuf = b.p.mmap(0, len, RW, ANON);
    b.p.write(bbuf, pattern(len, 8));
    const amr = ibv_reg_mr(a.pd, abuf, len, W)!, bmr = ibv_reg_mr(b.pd, bbuf, len, W | IBV_ACCESS_ON_DEMAND)!;
    if (advise) ibv_advise_mr(b.pd, IBV_ADVISE_MR_ADVICE_PREFETCH, IBV_ADVISE_MR_FLAG_FLUSH, [{ addr: bbuf, length: len, lkey: bmr.lkey }]);
    explain('large_read', advise ? 'ibv_advise_mr(PREFETCH) mapped the MR first: no responder fault, no timeout'
      : 'each responder fault on a READ sends nothing back; the requester retransmits after the transport timeout; the post-fault prefetch maps 4 MiB per fault');
    const r = op(a, IBV_WR_RDMA_READ, amr, abuf, len, bbuf, bmr.rkey);
    const k = advise ? 'advised' : 'cold';
    figures[`${k}_ns`] = r.ns;
    figures[`${k}_status`] = r.status;
    figures[`${k}_retransmits`] = a.dev.qps.get(a.qp.qp_num)!.retransmits;
    figures[`${k}_bytes_ok`] = String(same(a.p.read(abuf, len), pattern(len, 8)) === true);
  }
  return { lines: [`16 MiB READ from a cold ODP MR: ${formatNs(figures.cold_ns as number)} s, ${figures.cold_retransmits} transport timeouts; ` +
    `after ibv_advise_mr: ${formatNs(figures.advised_ns as number)} s, ${figures.advised_retransmits} timeouts`], figures };
}

/**
 * odp_era_report() - `hmm-sim --era ERA odp`: the ODP transfer under the
 * design of each era (v8: ODP on HMM v8; mainline: the interval-notifier
 * design), with the 2014 design, which predates both, as the baseline.
 */
export function odp_era_report(eras: readonly ('v8' | 'mainline')[]): string[] {
  const designs: ib_odp_design[] = ['2014', ...eras.map((e) => (e === 'v8' ? 'hmm_v8' : 'mainline') as ib_odp_design)];
  const { rows } = odp_designs_side_by_side(designs);
  const out = ['# odp: 4 MiB RDMA WRITE into a fresh ODP MR, MADV_DONTNEED, WRITE again (mock mlx5)',
    `  ${''.padEnd(28)}${designs.map((d) => d.padStart(14)).join('')}`];
  for (const [k, label] of [['ns', 'simulated time'], ['faults', 'pages faulted/prefetched'], ['invalidations', 'pages invalidated']] as const)
    out.push(`  ${label.padEnd(28)}${designs.map((d) => (k === 'ns' ? `${(rows[d].ns / 1000).toFixed(1)} us` : String(rows[d][k])).padStart(14)).join('')}`);
  for (const d of designs) out.push(`  ${d}: ${rows[d].ok ? 'ok' : 'FAILED: bytes differ'}`);
  return out;
}

/** odp_designs_side_by_side() - one 4 MiB WRITE + DONTNEED + WRITE per design: time, faults, invalidations. */
export function odp_designs_side_by_side(designs: readonly ib_odp_design[] = ib_odp_designs): { lines: string[]; rows: Record<ib_odp_design, { ns: number; faults: number; invalidations: number; ok: boolean }> } {
  const rows = {} as Record<ib_odp_design, { ns: number; faults: number; invalidations: number; ok: boolean }>;
  for (const d of designs) {
    const { a, b } = rig(d);
    const len = 4 << 20;
    const abuf = a.p.mmap(0, len, RW, ANON), bbuf = b.p.mmap(0, len, RW, ANON);
    a.p.write(abuf, pattern(len, 11));
    const amr = ibv_reg_mr(a.pd, abuf, len, W)!, bmr = ibv_reg_mr(b.pd, bbuf, len, W | IBV_ACCESS_ON_DEMAND)!;
    const t0 = machineTime();
    op(a, IBV_WR_RDMA_WRITE, amr, abuf, len, bbuf, bmr.rkey);
    b.p.madvise(bbuf, len, MADV_DONTNEED);
    const st = op(a, IBV_WR_RDMA_WRITE, amr, abuf, len, bbuf, bmr.rkey).status;
    const s = mlx5_ib_mr_of_key(b.dev, bmr.lkey)!.odp_stats;
    rows[d] = { ns: machineTime() - t0, faults: s.faults + s.prefetch, invalidations: s.invalidations,
      ok: st === 'IBV_WC_SUCCESS' && same(b.p.read(bbuf, len), pattern(len, 11)) === true };
    for (const l of mlx5_ib_rdma_stat(b.dev)) trace_event('rdma_stat', { design: d, line: l });
  }
  return { rows, lines: designs.map((d) => `design ${d.padEnd(8)}: ${formatNs(rows[d].ns)} s, ${rows[d].faults} pages faulted or prefetched, ` +
    `${rows[d].invalidations} invalidated, bytes ok ${rows[d].ok}`) };
}

export const odp_scenario = defineScenario({
  name: 'odp',
  description: 'RDMA NIC with on-demand paging: the 2014, HMM v8 and mainline designs side by side, then five ODP pitfalls explained',
  run() {
    const lines = odp_designs_side_by_side().lines;
    for (const f of [odp_pitfall_rnr, odp_pitfall_readonly, odp_pitfall_fork, odp_pitfall_large_read, odp_pitfall_munmap]) {
      explained.length = 0;
      if (f === odp_pitfall_munmap) rdma_rig_params.trace = true;     /* the trace below is this pitfall's ODP half */
      try { lines.push(...f().lines); } finally { rdma_rig_params.trace = false; }
      lines.push(...explained);
    }
    return lines;
  },
});
