/*
 * test/drivers/infiniband/hw/mlx5/mr.test.ts - memory keys: registration
 * errno and pins, the MTT entry format on lib/gpt, what a pinned MR's MTT
 * holds, deregistration.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PAGE_SIZE } from '../../../../../include/linux/mm.js';
import { PROT_READ } from '../../../../../include/uapi/asm-generic/mman.js';
import { EINVAL, EFAULT } from '../../../../../include/uapi/asm-generic/errno.js';
import {
  MLX5_IB_MTT_READ, MLX5_IB_MTT_WRITE, MLX5_MTT_PDE, mlx5_mtt_make, mlx5_mtt_dma, mlx5_mtt_perm,
} from '../../../../../include/linux/mlx5/odp.js';
import { page_maybe_dma_pinned } from '../../../../../mm/gup.js';
import { dma_to_pfn } from '../../../../../lib/dma/mapping.js';
import { gpt_format_find } from '../../../../../lib/gpt/formats.js';
import { mlx5_ib_mr_of_key } from '../../../../../drivers/infiniband/hw/mlx5/mlx5_ib.js';
import { mlx5_mtt_format, mlx5_mtt_alloc, mlx5_mr_mtt_entry } from '../../../../../drivers/infiniband/hw/mlx5/mr.js';
import {
  ibv_reg_mr, ibv_dereg_mr, ibv_errno, SIZE_MAX, IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_REMOTE_WRITE,
  IBV_ACCESS_REMOTE_READ, IBV_ACCESS_ON_DEMAND,
} from '../../../../../tools/include/infiniband/verbs.js';
import { rig, RW, ANON } from '../../rig.js';
import { pte_at } from '../../../../helpers.js';
import { pte_pfn } from '../../../../../include/linux/pgtable.js';

const W = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
const ODP = W | IBV_ACCESS_ON_DEMAND;

test('an MTT leaf is bus address | W | R; directories carry MLX5_MTT_PDE and never collide with R/W', () => {
  const e = mlx5_mtt_make(0x1_2345_6000, MLX5_IB_MTT_READ | MLX5_IB_MTT_WRITE);
  assert.is(e, 0x1_2345_6003);
  assert.is(mlx5_mtt_dma(e), 0x1_2345_6000);
  assert.is(mlx5_mtt_perm(e), 3);
  assert.is(gpt_format_find('mlx5_mtt'), mlx5_mtt_format);
  assert.is(mlx5_mtt_format.is_pde(mlx5_mtt_format.pde_make(5, 0), 0), true);
  assert.is(mlx5_mtt_format.is_pde(e, 0), false, 'a leaf value with R/W is not a link');
  assert.is(MLX5_MTT_PDE & (MLX5_IB_MTT_READ | MLX5_IB_MTT_WRITE), 0);
  const mtt = mlx5_mtt_alloc();
  const ptr = mtt.populate(0x7f0000001000);
  mtt.set(ptr, e);
  assert.is(mtt.load(mtt.lookup(0x7f0000001000)), e);
  assert.is(mtt.clear_range(0x7f0000000000, 0x7f0000002000), 1);
});

test('registration errno: bad flags and combinations EINVAL, unpinnable memory EFAULT, ODP accepts what is not mapped yet', () => {
  const { a } = rig('mainline');
  const buf = a.p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  const ro = a.p.mmap(0, PAGE_SIZE, PROT_READ, ANON);
  assert.is(ibv_reg_mr(a.pd, buf, PAGE_SIZE, IBV_ACCESS_REMOTE_WRITE), null);
  assert.is(ibv_errno(), EINVAL);
  assert.is(ibv_reg_mr(a.pd, buf, PAGE_SIZE, 1 << 30), null);
  assert.is(ibv_errno(), EINVAL);
  assert.is(ibv_reg_mr(a.pd, buf, 0, W), null);
  assert.is(ibv_errno(), EINVAL);
  assert.is(ibv_reg_mr(a.pd, ro, PAGE_SIZE, W), null, 'a pinned writable MR over read-only memory');
  assert.is(ibv_errno(), EFAULT);
  assert.is(ibv_reg_mr(a.pd, buf + 64 * PAGE_SIZE, PAGE_SIZE, W), null, 'nothing mapped there');
  assert.is(ibv_errno(), EFAULT);
  assert.is(ibv_reg_mr(a.pd, PAGE_SIZE, SIZE_MAX, ODP), null, 'an implicit MR must start at 0');
  assert.is(ibv_errno(), EINVAL);
  assert.ok(ibv_reg_mr(a.pd, buf + 64 * PAGE_SIZE, PAGE_SIZE, ODP) !== null, 'ODP pins nothing, so an unmapped range registers');
  assert.is(a.dev.dma.nr_mapped, 0, 'failed registrations left no DMA mapping');
});

test('a pinned MR pins every page (FOLL_LONGTERM), fills its whole MTT at once, and gives everything back at dereg', () => {
  const { a } = rig('mainline');
  const buf = a.p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  const ibmr = ibv_reg_mr(a.pd, buf, 4 * PAGE_SIZE, W)!;
  const mr = mlx5_ib_mr_of_key(a.dev, ibmr.lkey)!;
  assert.is(mr.umem!.pages.length, 4);
  assert.ok(mr.umem!.pages.every((p) => page_maybe_dma_pinned(p)), 'every page carries a FOLL_LONGTERM pin');
  for (let i = 0; i < 4; i++) {
    const e = mlx5_mr_mtt_entry(mr, buf + i * PAGE_SIZE);
    assert.is(mlx5_mtt_perm(e), MLX5_IB_MTT_READ | MLX5_IB_MTT_WRITE);
    assert.is(dma_to_pfn(a.dev.dma, mlx5_mtt_dma(e)), pte_pfn(pte_at(a.p.mm, buf + i * PAGE_SIZE)));
  }
  const pages = mr.umem!.pages.slice();
  assert.is(a.dev.dma.nr_mapped, 4);
  assert.is(ibv_dereg_mr(ibmr), 0);
  assert.ok(pages.every((p) => !page_maybe_dma_pinned(p)));
  assert.is(a.dev.dma.nr_mapped, 0);
  assert.is(ibv_dereg_mr(ibmr), EINVAL);
});

test.run();
