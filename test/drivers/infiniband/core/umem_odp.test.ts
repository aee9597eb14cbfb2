/*
 * test/drivers/infiniband/core/umem_odp.test.ts - ib_umem_odp bookkeeping
 * per design: what each design hangs on the mm, the 2014 late-umem rule
 * (no_private_counters), dirtying on unmap, release.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PAGE_SIZE } from '../../../../include/linux/mm.js';
import { MADV_DONTNEED } from '../../../../include/uapi/asm-generic/mman.js';
import { PageDirty } from '../../../../include/linux/page-flags.js';
import { Scheduler, resetScheduler } from '../../../../lib/sim/sched.js';
import { mutex_lock, mutex_unlock } from '../../../../lib/locking/mutex.js';
import { schedule_timeout } from '../../../../lib/sim/clock.js';
import { get_counter } from '../../../../lib/sim/trace.js';
import { get_page, put_page } from '../../../../mm/page_alloc.js';
import { notifierSubscriptionsOf } from '../../../../mm/mmu_notifier.js';
import { ib_reg_user_mr } from '../../../../drivers/infiniband/core/device.js';
import { mlx5_ib_mr_of_key } from '../../../../drivers/infiniband/hw/mlx5/mlx5_ib.js';
import { pagefault_mr } from '../../../../drivers/infiniband/hw/mlx5/odp.js';
import {
  ibv_reg_mr, ibv_dereg_mr, IBV_ACCESS_ON_DEMAND, IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_REMOTE_WRITE,
} from '../../../../tools/include/infiniband/verbs.js';
import { rig, RW, ANON } from '../rig.js';

const ODP = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_ON_DEMAND;

test.before.each(() => { resetScheduler(); });

test('what each design hangs on the mm: one whole-mm notifier per context (2014, v8) or one interval notifier per umem (mainline)', () => {
  for (const design of ['2014', 'hmm_v8', 'mainline'] as const) {
    const { b } = rig(design);
    const buf = b.p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
    const m1 = ibv_reg_mr(b.pd, buf, PAGE_SIZE, ODP)!, m2 = ibv_reg_mr(b.pd, buf + 2 * PAGE_SIZE, PAGE_SIZE, ODP)!;
    const subs = notifierSubscriptionsOf(b.p.mm)!;
    const uctx = b.ctx.uctx.odp;
    if (design === 'mainline') {
      assert.is(subs.itree.size, 2);
      assert.is(uctx.umem_tree.size, 0);
    } else {
      assert.is(subs.itree.size, 0, design);
      assert.is(uctx.umem_tree.size, 2, design);
      assert.ok(design === '2014' ? uctx.mn !== null : uctx.mirror !== null);
    }
    assert.is(ibv_dereg_mr(m1), 0);
    assert.is(ibv_dereg_mr(m2), 0);
    assert.is(design === 'mainline' ? subs.itree.size : uctx.umem_tree.size, 0, `${design}: all gone after dereg`);
    assert.ok(uctx.mn === null && uctx.mirror === null, `${design}: the last umem unregisters the context's listener`);
  }
});

test('2014: a umem created while an invalidation runs has no valid counters until it ends; its fault waits, then succeeds', () => {
  const { b } = rig('2014');
  const x = b.p.mmap(0, PAGE_SIZE, RW, ANON), y = b.p.mmap(0, PAGE_SIZE, RW, ANON);
  b.p.write32(x, 1);
  b.p.write32(y, 2);
  const u1 = mlx5_ib_mr_of_key(b.dev, ibv_reg_mr(b.pd, x, PAGE_SIZE, ODP)!.lkey)!;
  const retries = get_counter('ib_umem_odp_retry');
  const s = new Scheduler();
  let late_active_at_birth = true, in_list = false, ret = 0;
  s.spawn('holder', function* () {           /* keeps the invalidation of x stuck inside its start */
    yield* mutex_lock(u1.odp!.umem_mutex);
    yield* schedule_timeout(50_000);
    mutex_unlock(u1.odp!.umem_mutex);
  });
  s.spawn('madvise', function* () { yield* b.p.sys.madvise(x, PAGE_SIZE, MADV_DONTNEED); }, 'user', b.p.task);
  s.spawn('register', function* () {
    const mr = yield* ib_reg_user_mr(b.pd.pd, y, PAGE_SIZE, y, ODP);
    if (typeof mr === 'number') throw new Error(`reg ${mr}`);
    const m = mlx5_ib_mr_of_key(b.dev, mr.lkey)!;
    late_active_at_birth = m.odp!.mn_counters_active;
    in_list = b.ctx.uctx.odp.no_private_counters.includes(m.odp!);
    ret = yield* pagefault_mr(m, y, 8, 0);
  }, 'user', b.p.task);
  s.run();
  assert.is(late_active_at_birth, false);
  assert.is(in_list, true);
  assert.is(ret, 1);
  assert.ok(get_counter('ib_umem_odp_retry') > retries, 'the fault had to retry');
  assert.is(b.ctx.uctx.odp.no_private_counters.length, 0);
  assert.is(b.ctx.uctx.odp.notifier_count, 0);
});

for (const design of ['2014', 'hmm_v8', 'mainline'] as const) {
  test(`${design}: unmapping a page the NIC could write marks it dirty (set_page_dirty)`, () => {
    const { b } = rig(design);
    const buf = b.p.mmap(0, PAGE_SIZE, RW, ANON);
    b.p.write32(buf, 5);
    const mr = mlx5_ib_mr_of_key(b.dev, ibv_reg_mr(b.pd, buf, PAGE_SIZE, ODP)!.lkey)!;
    const s = new Scheduler();
    s.spawn('fault', function* () { return yield* pagefault_mr(mr, buf, 8, 0); });
    s.run();
    const p = mr.odp!.page_list[0]!;
    assert.ok(p !== null);
    p.flags &= ~(1 << 4);                      /* clean, as after writeback */
    assert.is(PageDirty(p), false);
    get_page(p);                               /* keep it from being freed (and its flags reset) by the zap */
    assert.is(b.p.madvise(buf, PAGE_SIZE, MADV_DONTNEED), 0);
    assert.is(PageDirty(p), true);
    put_page(p);
    assert.is(mr.odp!.npages, 0);
  });
}

test.run();
