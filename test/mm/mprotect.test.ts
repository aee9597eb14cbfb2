import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, recordNotifier, starts, pte_at } from '../helpers.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, PROT_NONE, PROT_EXEC } from '../../include/uapi/asm-generic/mman.js';
import { EINVAL, ENOMEM } from '../../include/uapi/asm-generic/errno.js';
import { pte_present, pte_write, pte_protnone, pte_pfn } from '../../include/linux/pgtable.js';
import { VM_READ, VM_WRITE, PAGE_SIZE } from '../../include/linux/mm.js';
import { pte_to_swp_entry, swp_type, SWP_MIGRATION_READ_EXCLUSIVE, SWP_MIGRATION_WRITE } from '../../include/linux/swapops.js';
import { migrate_vma_setup, migrate_vma_finalize } from '../../mm/migrate_device.js';
import { TinyDev, locked, MIGRATE_VMA_SELECT_SYSTEM } from './hmm_devmem.js';

const t = suite('mm/mprotect');
let p: Process;
t.before.each(() => { p = boot(); });

t('mprotect of the middle page splits the VMA and notifies PROTECTION_VMA', () => {
  const a = p.mmap(0, 3 * 4096, RW, ANON);
  p.fill32(a, 3 * 4096, 0);
  const seen = recordNotifier(p);
  assert.is(p.mprotect(a + 4096, 4096, PROT_READ), 0);
  assert.is(p.mm.map_count, 3);
  assert.equal(starts(seen), [`PROTECTION_VMA ${(a + 4096).toString(16)}-${(a + 8192).toString(16)}`]);
  assert.not.ok(pte_write(pte_at(p.mm, a + 4096)));
  assert.ok(pte_write(pte_at(p.mm, a)));
  assert.throws(() => p.write32(a + 4096, 1), /SIGSEGV/);
  assert.is(p.read32(a + 4096), 1024);
});

t('PROT_NONE keeps the data in non-present entries; restoring makes exclusive dirty pages writable again', () => {
  const a = p.mmap(0, 2 * 4096, RW, ANON);
  p.fill32(a, 2 * 4096, 77);
  const pfn = pte_pfn(pte_at(p.mm, a));
  assert.is(p.mprotect(a, 2 * 4096, PROT_NONE), 0);
  const pte = pte_at(p.mm, a);
  assert.ok(pte_protnone(pte));
  assert.ok(pte_present(pte), 'present to the kernel');
  assert.is(pte_pfn(pte), pfn);
  assert.throws(() => p.read32(a), /SIGSEGV/);
  assert.is(p.mprotect(a, 2 * 4096, RW), 0);
  assert.is(p.mm.map_count, 1, 'merged back into one VMA');
  assert.ok(pte_write(pte_at(p.mm, a)), 'exclusive and dirty: writable without a fault');
  assert.is(p.check32(a, 2 * 4096, 77), -1);
});

t('a page shared with a fork child stays read-only after mprotect(RW)', () => {
  const a = p.mmap(0, 4096, RW, ANON);
  p.write32(a, 1);
  p.fork();
  assert.is(p.mprotect(a, 4096, PROT_READ), 0);
  assert.is(p.mprotect(a, 4096, RW), 0);
  assert.not.ok(pte_write(pte_at(p.mm, a)), 'shared page: COW must still happen');
});

t('errno: EINVAL for misalignment or bad bits, ENOMEM for holes, and partial application before a hole', () => {
  const a = p.mmap(0, 4 * 4096, RW, ANON);
  assert.is(p.mprotect(a + 1, 4096, PROT_READ), -EINVAL);
  assert.is(p.mprotect(a, 4096, 0x100), -EINVAL);
  assert.is(p.mprotect(0x20000000, 4096, PROT_READ), -ENOMEM);
  assert.is(p.munmap(a + 2 * 4096, 4096), 0);
  assert.is(p.mprotect(a, 4 * 4096, PROT_READ), -ENOMEM);
  assert.is(p.mm.mmap[0].vm_flags & (VM_READ | VM_WRITE), VM_READ, 'the part before the hole changed');
  assert.is(p.mprotect(a, 0, PROT_READ), 0, 'zero length is a no-op');
  assert.is(p.mprotect(a, 4096, PROT_READ | PROT_WRITE | PROT_EXEC), 0);
});

t('mprotect over a range whose first fixed-up VMA merges with its successor goes on from the merged VMA\'s end', () => {
  const a = p.mmap(0, 3 * PAGE_SIZE, PROT_NONE, ANON);
  assert.is(p.mprotect(a + PAGE_SIZE, PAGE_SIZE, RW), 0);
  assert.is(p.mm.map_count, 3);
  assert.is(p.mprotect(a, 3 * PAGE_SIZE, RW), 0, 'page 0 merges with page 1; page 2 is still changed');
  assert.is(p.mm.map_count, 1);
  p.write32(a + 2 * PAGE_SIZE, 0x77);
  assert.is(p.read32(a + 2 * PAGE_SIZE), 0x77);
  p.write32(a, 1);
  assert.is(p.read32(a), 1);
});

t('mprotect(PROT_READ) of an anonymous page under migration keeps its migration entry exclusive: no COW copy after', () => {
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 6);
  const pfn = pte_pfn(pte_at(p.mm, a));
  const m = locked(p, function* () {
    const args = new TinyDev('dev0').args(p.mm, a, a + PAGE_SIZE, MIGRATE_VMA_SELECT_SYSTEM);
    assert.is(yield* migrate_vma_setup(args), 0);
    return args;
  });
  assert.is(swp_type(pte_to_swp_entry(pte_at(p.mm, a))), SWP_MIGRATION_WRITE);
  assert.is(p.mprotect(a, PAGE_SIZE, PROT_READ), 0);
  assert.is(swp_type(pte_to_swp_entry(pte_at(p.mm, a))), SWP_MIGRATION_READ_EXCLUSIVE);
  locked(p, function* () { yield* migrate_vma_finalize(m); });
  assert.is(p.mprotect(a, PAGE_SIZE, RW), 0);
  p.write32(a, 7);
  assert.is(pte_pfn(pte_at(p.mm, a)), pfn, 'the page was still exclusive: written in place');
  assert.is(p.read32(a), 7);
});

t.run();
