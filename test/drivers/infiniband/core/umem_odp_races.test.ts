/*
 * test/drivers/infiniband/core/umem_odp_races.test.ts - an NIC page fault
 * against a CPU-side invalidation, over every interleaving within a
 * preemption bound (lib/sim/explore.ts), for each ib_umem_odp design.
 *
 * The invariant checked after each run: an MTT entry of the MR, if
 * present, points at the very page the CPU maps at that address, and is
 * writable only where the CPU PTE is (the invalidations raced: MADV_DONTNEED,
 * munmap, mprotect(PROT_READ)) (a
 * present entry over a page the CPU no longer maps is the stale-DMA bug
 * ODP's notifier protocol exists to prevent). The 2014 handshake
 * (notifiers_count/notifiers_seq), HMM v8's fault backoff and mainline's
 * mmu_interval_read_retry pass; each design with its check switched off
 * is caught and the failing schedule replays.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PAGE_SIZE } from '../../../../include/linux/mm.js';
import { MADV_DONTNEED, PROT_READ } from '../../../../include/uapi/asm-generic/mman.js';
import { pte_present, pte_pfn, pte_write } from '../../../../include/linux/pgtable.js';
import { mlx5_mtt_dma, mlx5_mtt_perm, MLX5_IB_MTT_WRITE } from '../../../../include/linux/mlx5/odp.js';
import type { ib_odp_design } from '../../../../include/rdma/ib_verbs.js';
import { explore, resetScheduler, Scheduler } from '../../../../lib/sim/sched.js';
import { dma_to_pfn } from '../../../../lib/dma/mapping.js';
import { hmm_v8_config } from '../../../../mm/hmm_v8/hmm.js';
import { ib_umem_odp_params } from '../../../../drivers/infiniband/core/umem_odp.js';
import { mlx5_ib_mr_of_key, type mlx5_ib_mr, type mlx5_ib_dev } from '../../../../drivers/infiniband/hw/mlx5/mlx5_ib.js';
import { mlx5_mr_mtt_entry } from '../../../../drivers/infiniband/hw/mlx5/mr.js';
import { pagefault_mr } from '../../../../drivers/infiniband/hw/mlx5/odp.js';
import { ibv_reg_mr, IBV_ACCESS_ON_DEMAND, IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_REMOTE_WRITE } from '../../../../tools/include/infiniband/verbs.js';
import { pte_at } from '../../../helpers.js';
import { rig, RW, ANON } from '../rig.js';
import type { Process } from '../../../../tools/include/nolibc/nolibc.js';

const BOUND = { preemptionBound: 2, maxRuns: 3000 };

interface world { p: Process; dev: mlx5_ib_dev; mr: mlx5_ib_mr; addr: number; ret: number }

function set_broken(on: boolean): void {
  ib_umem_odp_params.broken_skip_retry = on;
  hmm_v8_config.no_fault_backoff = on;
}

/* NIC fault on the page vs MADV_DONTNEED (or munmap) of it, from two threads */
function scenario(design: ib_odp_design, op: 'dontneed' | 'munmap' | 'mprotect', w: { cur: world | null }, broken = false) {
  return (s: Scheduler) => {
    const { b } = rig(design);
    set_broken(broken);                 /* after the boot, which resets hmm_v8_config */
    const addr = b.p.mmap(0, PAGE_SIZE, RW, ANON);
    b.p.write32(addr, 0x1234);
    const ibmr = ibv_reg_mr(b.pd, addr, PAGE_SIZE, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_ON_DEMAND)!;
    const world: world = { p: b.p, dev: b.dev, mr: mlx5_ib_mr_of_key(b.dev, ibmr.lkey)!, addr, ret: 1 };
    w.cur = world;
    s.spawn('mlx5_ib_page_fault', function* () { world.ret = yield* pagefault_mr(world.mr, addr, 8, 0); }, 'kthread');
    s.spawn(op, function* () {
      if (op === 'munmap') yield* b.p.sys.munmap(addr, PAGE_SIZE);
      else if (op === 'mprotect') yield* b.p.sys.mprotect(addr, PAGE_SIZE, PROT_READ);
      else yield* b.p.sys.madvise(addr, PAGE_SIZE, MADV_DONTNEED);
    }, 'user', b.p.task);
  };
}

/* the invariant: a present MTT entry maps what the CPU maps */
function check(w: world): void {
  const e = mlx5_mr_mtt_entry(w.mr, w.addr);
  if (e === 0) return;
  const nic = dma_to_pfn(w.dev.dma, mlx5_mtt_dma(e));
  const pte = pte_at(w.p.mm, w.addr);
  if (pte <= 0 || !pte_present(pte)) throw new Error(`stale MTT: NIC maps pfn ${nic} at 0x${w.addr.toString(16)}, the CPU maps nothing`);
  if (pte_pfn(pte) !== nic) throw new Error(`stale MTT: NIC maps pfn ${nic}, the CPU maps pfn ${pte_pfn(pte)}`);
  if ((mlx5_mtt_perm(e) & MLX5_IB_MTT_WRITE) && !pte_write(pte)) throw new Error(`stale MTT: NIC may write pfn ${nic}, the CPU maps it read-only`);
}

test.before.each(() => { resetScheduler(); set_broken(false); });
test.after.each(() => { set_broken(false); });

for (const design of ['2014', 'hmm_v8', 'mainline'] as const) {
  for (const op of ['dontneed', 'munmap', 'mprotect'] as const) {
    test(`${design}: a NIC fault racing ${op} never leaves a stale MTT entry (every interleaving, bound 2)`, () => {
      const w: { cur: world | null } = { cur: null };
      const res = explore(scenario(design, op, w), { ...BOUND, check: () => {
        check(w.cur!);
        const r = w.cur!.ret;
        /* success, or the refusal each design spells: -EFAULT (2014 GUP), -EACCES (v8), -EPERM (hmm_range_fault), -ENODEV, -EINVAL */
        if (!(r >= 0 || [-14, -13, -1, -19, -22].includes(r))) throw new Error(`fault returned ${r}`);
      } });
      assert.is(res.failure, null, String(res.failure?.error));
      assert.ok(res.complete, `explored ${res.runs} runs without finishing`);
      assert.ok(res.runs >= 3, `only ${res.runs} interleavings`);
    });
  }
  test(`${design}: without its retry check the stale-MTT race is found and replays`, () => {
    const w: { cur: world | null } = { cur: null };
    const res = explore(scenario(design, 'dontneed', w, true), { ...BOUND, check: () => check(w.cur!) });
    assert.ok(res.failure !== null, `not caught in ${res.runs} runs`);
    assert.match(String(res.failure!.error), /stale MTT/);
    const s = new Scheduler({ mode: 'enumerate', choices: res.failure!.choices });
    scenario(design, 'dontneed', w, true)(s);
    s.run();
    assert.throws(() => check(w.cur!), /stale MTT/);
  });
}

test.run();
