import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, pte_at } from '../helpers.js';
import { runAs, type Process } from '../../tools/include/nolibc/nolibc.js';
import { misc_register, O_RDONLY, O_RDWR } from '../../mm/file.js';
import { vm_insert_page, vmf_insert_pfn } from '../../mm/memory.js';
import { alloc_page, kmap_local_page, put_page } from '../../mm/page_alloc.js';
import { get_user_pages_unlocked } from '../../mm/gup.js';
import { copy_to_user } from '../../mm/fault.js';
import { GFP_KERNEL, __GFP_ZERO } from '../../include/linux/gfp.js';
import { VM_PFNMAP, VM_MIXEDMAP, VM_DONTEXPAND, VM_FAULT_NOPAGE, VM_FAULT_SIGBUS, PAGE_SIZE } from '../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_SHARED, MAP_PRIVATE } from '../../include/uapi/asm-generic/mman.js';
import { EACCES, EFAULT, ENOENT, EBADF, ENOTTY } from '../../include/uapi/asm-generic/errno.js';
import { pte_special, pte_pfn } from '../../include/linux/pgtable.js';
import type { page, vm_area_struct } from '../../include/linux/mm_types.js';
import { kmemleak_exempt } from '../leakcheck/uvu.js';

const t = suite('mm/memory: driver mappings (vm_ops->fault, VM_PFNMAP, VM_MIXEDMAP)');
let p: Process;
let dev_pages: page[];
let closed = 0;

t.before.each(() => {
  p = boot();
  closed = 0;
  dev_pages = [0, 1].map((i) => { const pg = alloc_page(GFP_KERNEL | __GFP_ZERO)!; kmap_local_page(pg).fill(0x10 + i); return pg; });
  const mixed = {
    *fault(vmf: { vma: vm_area_struct; pgoff: number; address: number }) {
      if (vmf.pgoff >= dev_pages.length) return VM_FAULT_SIGBUS;
      return vm_insert_page(vmf.vma, vmf.address, dev_pages[vmf.pgoff]) === 0 ? VM_FAULT_NOPAGE : VM_FAULT_SIGBUS;
    },
    close() { closed++; },
  };
  const raw = { *fault(vmf: { vma: vm_area_struct; address: number }) { return vmf_insert_pfn(vmf.vma, vmf.address, 0x3000); } };
  misc_register('mixed', 1, { *mmap(_f, vma) { vma.vm_flags |= VM_MIXEDMAP | VM_DONTEXPAND; vma.vm_ops = mixed; return 0; } }, null);
  misc_register('raw', 2, { *mmap(_f, vma) { vma.vm_flags |= VM_PFNMAP; vma.vm_ops = raw; return 0; } }, null);
});

t('a VM_MIXEDMAP driver maps its own pages; they are shared, counted and released on munmap', () => {
  const fd = p.open('/dev/mixed', O_RDWR);
  assert.is(fd, 0);
  const a = p.mmap(0, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  assert.ok(a > 0);
  assert.is(p.read8(a), 0x10);
  assert.is(p.read8(a + PAGE_SIZE), 0x11);
  assert.is(dev_pages[0]._refcount, 2, 'driver + PTE');
  assert.is(pte_pfn(pte_at(p.mm, a)), dev_pages[0].pfn);
  p.write8(a + 1, 0x99);
  assert.is(kmap_local_page(dev_pages[0])[1], 0x99, 'the store reached the driver page');
  assert.throws(() => p.read8(a + 2 * PAGE_SIZE), /SIGBUS/);
  assert.is(p.munmap(a, 3 * PAGE_SIZE), 0);
  assert.is(dev_pages[0]._refcount, 1);
  assert.is(closed, 1);
  for (const pg of dev_pages) put_page(pg);
});

t('a VM_PFNMAP mapping holds special entries; GUP refuses it with EFAULT', () => {
  kmemleak_exempt('the test driver owns the pages it maps and is never unloaded');
  const fd = p.open('/dev/raw', O_RDWR);
  const a = p.mmap(0, PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
  p.read8(a);
  const pte = pte_at(p.mm, a);
  assert.ok(pte_special(pte));
  assert.is(pte_pfn(pte), 0x3000);
  assert.is(runAs(p.task, get_user_pages_unlocked(p.mm, a, 1, 0, [])), -EFAULT);
});

t('file permissions: a shared writable mapping of a read-only fd is EACCES, and so is mprotect to write', () => {
  kmemleak_exempt('the test driver owns the pages it maps and is never unloaded');
  const fd = p.open('/dev/mixed', O_RDONLY);
  assert.is(p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), -EACCES);
  const a = p.mmap(0, PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
  assert.ok(a > 0);
  assert.is(p.mprotect(a, PAGE_SIZE, PROT_READ | PROT_WRITE), -EACCES);
  const b = p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  assert.ok(b > 0, 'a private writable mapping of a read-only fd is allowed');
  assert.is(p.open('/dev/nothing'), -ENOENT);
  assert.is(p.close(42), -EBADF);
  assert.is(p.ioctl(fd, 1, 0), -ENOTTY);
});

t('a kernel copy (copy_to_user) faults again when a fault returned without mapping the page, as the copy instruction restarts', () => {
  kmemleak_exempt('the test driver owns the pages it maps and is never unloaded');
  let calls = 0;
  const lazy = {
    *fault(vmf: { vma: vm_area_struct; address: number }) {
      if (calls++ === 0) return VM_FAULT_NOPAGE;          /* nothing mapped yet: the access must retry */
      return vm_insert_page(vmf.vma, vmf.address, dev_pages[0]) === 0 ? VM_FAULT_NOPAGE : VM_FAULT_SIGBUS;
    },
  };
  misc_register('lazy', 3, { *mmap(_f, vma) { vma.vm_flags |= VM_MIXEDMAP | VM_DONTEXPAND; vma.vm_ops = lazy; return 0; } }, null);
  const fd = p.open('/dev/lazy', O_RDWR);
  const a = p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  assert.is(runAs(p.task, copy_to_user(p.mm, a + 8, new Uint8Array([1, 2, 3]))), 0, 'not -EFAULT');
  assert.is(calls, 2, 'faulted twice');
  assert.equal([...kmap_local_page(dev_pages[0]).subarray(8, 11)], [1, 2, 3]);
});

t.run();
