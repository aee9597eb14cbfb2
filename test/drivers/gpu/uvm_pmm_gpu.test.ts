/*
 * test/drivers/gpu/uvm_pmm_gpu.test.ts - VRAM as ZONE_DEVICE pages and its
 * chunk allocator (drivers/gpu/mockgpu/uvm_pmm_gpu.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot } from '../../helpers.js';
import { MEMORY_DEVICE_PRIVATE, is_device_private_page } from '../../../include/linux/memremap.js';
import { put_page } from '../../../mm/page_alloc.js';
import {
  uvm_pmm_gpu, uvm_pmm_gpu_alloc_page, uvm_pmm_gpu_free_page, uvm_pmm_gpu_page_alloc, uvm_pmm_gpu_page_to_vpfn,
} from '../../../drivers/gpu/mockgpu/uvm_pmm_gpu.js';
import { mockgpu_get, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpu_params, mockgpuParamsReset } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { folio_unlock } from '../../../mm/filemap.js';

test.before.each(() => mockgpuParamsReset());

test('VRAM defaults to half of RAM and is registered as MEMORY_DEVICE_PRIVATE pages owned by the GPU', () => {
  boot({ ram_bytes: 64 << 20 });
  uvm_gpu_init();
  const gpu = mockgpu_get()!;
  assert.is(gpu.pmm.nr_pages, (32 << 20) / 4096);
  assert.is(gpu.pmm.pgmap.type, MEMORY_DEVICE_PRIVATE);
  assert.is(gpu.pmm.pgmap.owner, gpu);
  assert.is(gpu.pmm.pgmap.nr_pages, gpu.pmm.nr_pages);
});

test('the VRAM size is a parameter', () => {
  mockgpu_params.vram_bytes = 8 << 20;
  boot({ ram_bytes: 64 << 20 });
  uvm_gpu_init();
  assert.is(mockgpu_get()!.pmm.nr_roots, 4);
});

test('the first 4 KiB allocation splits a 2 MiB root into 64 KiB chunks and one of those into 4 KiB chunks', () => {
  const pmm = new uvm_pmm_gpu(4 << 20);
  assert.is(pmm.free_root.size, 2);
  const p = uvm_pmm_gpu_alloc_page(pmm);
  assert.is(p, 0);
  assert.is(pmm.free_root.size, 1);
  assert.is(pmm.free_big.size, 31);
  assert.is(pmm.free_4k.size, 15);
  const more = [];
  for (let i = 0; i < 15; i++) more.push(uvm_pmm_gpu_alloc_page(pmm));
  assert.equal(more, Array.from({ length: 15 }, (_, i) => i + 1), 'consecutive chunks of the same 64 KiB chunk');
  assert.is(uvm_pmm_gpu_alloc_page(pmm), 16, 'the next 64 KiB chunk is split lazily');
  assert.is(pmm.pages_used, 17);
});

test('freeing merges eagerly: 16 free 4 KiB -> 64 KiB, 32 free 64 KiB -> the root', () => {
  const pmm = new uvm_pmm_gpu(2 << 20);
  const pages = [];
  for (let i = 0; i < 17; i++) pages.push(uvm_pmm_gpu_alloc_page(pmm));
  for (let i = 0; i < 16; i++) uvm_pmm_gpu_free_page(pmm, pages[i]!);
  assert.is(pmm.free_big.has(0), true, 'the first 64 KiB chunk merged');
  assert.is(pmm.free_root.size, 0, 'the root is still split');
  uvm_pmm_gpu_free_page(pmm, pages[16]!);
  assert.is(pmm.free_root.size, 1);
  assert.is(pmm.free_big.size + pmm.free_4k.size, 0);
  assert.is(pmm.pages_used, 0);
  assert.throws(() => uvm_pmm_gpu_free_page(pmm, 3), /not allocated/);
});

test('a full VRAM refuses with -1 and a freed page is reused', () => {
  const pmm = new uvm_pmm_gpu(2 << 20);
  for (let i = 0; i < 512; i++) assert.ok(uvm_pmm_gpu_alloc_page(pmm) >= 0);
  assert.is(uvm_pmm_gpu_alloc_page(pmm), -1);
  uvm_pmm_gpu_free_page(pmm, 77);
  assert.is(uvm_pmm_gpu_alloc_page(pmm), 77);
});

test('a device page handed out has refcount 1 and comes back to the PMM through folio_free on its last put', () => {
  boot();
  uvm_gpu_init();
  const gpu = mockgpu_get()!;
  const pg = uvm_pmm_gpu_page_alloc(gpu.pmm)!;
  assert.ok(is_device_private_page(pg));
  assert.is(pg._refcount, 1);
  assert.is(gpu.pmm.pages_used, 1);
  const vpfn = uvm_pmm_gpu_page_to_vpfn(gpu.pmm, pg);
  gpu.pmm.vram(vpfn)[5] = 0xab;
  assert.is(gpu.pmm.vram(vpfn)[5], 0xab, 'VRAM bytes are real');
  folio_unlock(pg);
  put_page(pg);
  assert.is(gpu.pmm.pages_used, 0);
});

test.run();
