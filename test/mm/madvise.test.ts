import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, recordNotifier, starts } from '../helpers.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { MADV_DONTNEED, MADV_DONTFORK, MADV_DOFORK, MADV_HUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { EINVAL, ENOMEM } from '../../include/uapi/asm-generic/errno.js';
import { MM_ANONPAGES } from '../../include/linux/mm_types.js';
import { get_mm_counter, VM_DONTCOPY, VM_HUGEPAGE } from '../../include/linux/mm.js';

const t = suite('mm/madvise');
let p: Process;
t.before.each(() => { p = boot(); });

t('MADV_DONTNEED drops anonymous pages with MMU_NOTIFY_CLEAR; they read back as zero', () => {
  const a = p.mmap(0, 4 * 4096, RW, ANON);
  p.fill32(a, 4 * 4096, 1);
  const seen = recordNotifier(p);
  assert.is(p.madvise(a + 4096, 2 * 4096, MADV_DONTNEED), 0);
  assert.equal(starts(seen), [`CLEAR ${(a + 4096).toString(16)}-${(a + 3 * 4096).toString(16)}`]);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 2);
  assert.is(p.read32(a + 4096), 0);
  assert.is(p.read32(a), 1);
  assert.is(p.read32(a + 3 * 4096), 1 + 3 * 1024);
});

t('errno: EINVAL for unknown advice or misalignment, ENOMEM over a hole (mapped parts still advised)', () => {
  const a = p.mmap(0, 3 * 4096, RW, ANON);
  p.fill32(a, 3 * 4096, 1);
  assert.is(p.madvise(a, 4096, 999), -EINVAL);
  assert.is(p.madvise(a + 2, 4096, MADV_DONTNEED), -EINVAL);
  p.munmap(a + 4096, 4096);
  assert.is(p.madvise(a, 3 * 4096, MADV_DONTNEED), -ENOMEM);
  assert.is(p.read32(a + 2 * 4096), 0, 'the mapped part after the hole was zapped');
});

t('MADV_DONTFORK keeps a range out of the child; MADV_DOFORK puts it back', () => {
  const a = p.mmap(0, 2 * 4096, RW, ANON);
  p.write32(a, 5);
  assert.is(p.madvise(a, 4096, MADV_DONTFORK), 0);
  assert.is(p.mm.map_count, 2);
  assert.ok(p.mm.mmap[0].vm_flags & VM_DONTCOPY);
  const c = p.fork();
  assert.throws(() => c.read32(a), /SIGSEGV/);
  assert.is(c.read32(a + 4096), 0);
  assert.is(p.madvise(a, 4096, MADV_DOFORK), 0);
  assert.is(p.mm.map_count, 1);
  assert.is(p.madvise(a, 4096, MADV_HUGEPAGE), 0);
  assert.ok(p.mm.mmap.some((v) => v.vm_flags & VM_HUGEPAGE));
});

t.run();
