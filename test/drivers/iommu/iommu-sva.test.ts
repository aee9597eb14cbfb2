/*
 * test/drivers/iommu/iommu-sva.test.ts - SVA binding, PASIDs, the ATS walk
 * of the CPU page table, the page-request handler (iommu_sva_handle_mm)
 * and the secondary-TLB hook of mm/mmu_notifier.ts, without a GPU.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../../helpers.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ } from '../../../include/uapi/asm-generic/mman.js';
import { ENODEV } from '../../../include/uapi/asm-generic/errno.js';
import { _PAGE_DIRTY } from '../../../include/linux/pgtable.js';
import {
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID, IOMMU_FAULT_PERM_READ, IOMMU_FAULT_PERM_WRITE, IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS, type iommu_page_response, type iommu_sva, type iommu_sva_device,
} from '../../../include/linux/iommu.js';
import { in_atomic, runSync } from '../../../lib/sim/sched.js';
import { runAs } from '../../../tools/include/nolibc/nolibc.js';
import {
  iommu_ats_translate, iommu_sva_bind_device, iommu_sva_get_pasid, iommuSvaReset, iommu_sva_unbind_device,
} from '../../../drivers/iommu/iommu-sva.js';
import { iommu_sva_handle_mm } from '../../../drivers/iommu/io-pgfault.js';

/* a bare endpoint that records the ATC invalidations it receives and whether it ran atomic */
function endpoint(max_pasids = 1 << 20) {
  const inv: { pasid: number; start: number; end: number; atomic: boolean }[] = [];
  const resp: iommu_page_response[] = [];
  const dev: iommu_sva_device = {
    name: 'ep0', max_pasids,
    sva_ops: {
      atc_invalidate(pasid, start, end) { inv.push({ pasid, start, end, atomic: in_atomic() }); },
      page_response(r) { resp.push(r); },
    },
  };
  return { dev, inv, resp };
}

test.before.each(() => iommuSvaReset());

test('bind gives the mm one PASID shared by its devices; binding the same pair again takes a reference', () => {
  const p = boot();
  const a = endpoint(), b = endpoint();
  const s1 = runAs(p.task, iommu_sva_bind_device(a.dev, p.mm)) as iommu_sva;
  const s2 = runAs(p.task, iommu_sva_bind_device(a.dev, p.mm)) as iommu_sva;
  const s3 = runAs(p.task, iommu_sva_bind_device(b.dev, p.mm)) as iommu_sva;
  assert.is(s1, s2);
  assert.is(s1.users, 2);
  assert.is(iommu_sva_get_pasid(s3), iommu_sva_get_pasid(s1), 'one PASID per mm');
  const q = p.fork();
  const s4 = runAs(q.task, iommu_sva_bind_device(a.dev, q.mm)) as iommu_sva;
  assert.is.not(s4.pasid, s1.pasid, 'another mm gets another PASID');
  assert.is(runAs(p.task, iommu_sva_bind_device(endpoint(1).dev, p.mm)), -ENODEV, 'a device without PASID support');
  runAs(p.task, iommu_sva_unbind_device(s1));
  assert.is(s1.users, 1);
});

test('the CPU TLB flush reaches the bound device as an ATC invalidation, in atomic context; after unbind it does not', () => {
  const p = boot();
  const ep = endpoint();
  const buf = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(buf, 4 * PAGE_SIZE, 0);
  const bond = runAs(p.task, iommu_sva_bind_device(ep.dev, p.mm)) as iommu_sva;
  assert.is(p.mprotect(buf, 4 * PAGE_SIZE, PROT_READ), 0);
  assert.equal(ep.inv.map((i) => [i.pasid, i.start, i.end, i.atomic]), [[bond.pasid, buf, buf + 4 * PAGE_SIZE, true]]);
  runAs(p.task, iommu_sva_unbind_device(bond));
  const n = ep.inv.length;
  assert.is(p.munmap(buf, 4 * PAGE_SIZE), 0);
  assert.is(ep.inv.length, n, 'no invalidation after unbind');
});

test('the ATS walk sets ACCESSED, sets DIRTY only for a write, and grants write to a read only on a dirty PTE', () => {
  const p = boot();
  const ep = endpoint();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.write32(buf, 1);                                   /* dirty */
  const bond = runAs(p.task, iommu_sva_bind_device(ep.dev, p.mm)) as iommu_sva;
  assert.equal(iommu_ats_translate(bond, buf + 8, false)!.write, true);
  assert.is(iommu_ats_translate(bond, buf + PAGE_SIZE, false), null, 'never touched: no PTE, a page request is needed');
  assert.is(bond.ats_misses, 1);
});

test('iommu_sva_handle_mm: a write request faults the page in writable and dirty; bad requests are INVALID', () => {
  const p = boot();
  const ep = endpoint();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  const ro = p.mmap(0, PAGE_SIZE, PROT_READ, ANON);
  const req = (addr: number, perm: number, flags = IOMMU_FAULT_PAGE_REQUEST_PASID_VALID) =>
    runSync(iommu_sva_handle_mm({ flags, pasid: 1, grpid: 1, perm, addr }, p.mm));
  assert.is(req(buf, IOMMU_FAULT_PERM_READ | IOMMU_FAULT_PERM_WRITE), IOMMU_PAGE_RESP_SUCCESS);
  assert.ok((pte_at(p.mm, buf) & _PAGE_DIRTY) !== 0);
  assert.is(req(ro, IOMMU_FAULT_PERM_READ), IOMMU_PAGE_RESP_SUCCESS);
  assert.is(req(ro, IOMMU_FAULT_PERM_READ | IOMMU_FAULT_PERM_WRITE), IOMMU_PAGE_RESP_INVALID, 'the VMA forbids writes');
  assert.is(req(buf + 16 * PAGE_SIZE, IOMMU_FAULT_PERM_READ), IOMMU_PAGE_RESP_INVALID, 'no VMA');
  assert.is(req(buf, IOMMU_FAULT_PERM_READ, 0), IOMMU_PAGE_RESP_INVALID, 'no PASID in the request');
  assert.is(ep.resp.length, 0);
});

test.run();
