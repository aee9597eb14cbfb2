import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, recordNotifier, starts, pte_at } from '../helpers.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import {
  PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_POPULATE,
} from '../../include/uapi/asm-generic/mman.js';
import { EINVAL, ENOMEM, EEXIST, EBADF } from '../../include/uapi/asm-generic/errno.js';
import { MM_ANONPAGES } from '../../include/linux/mm_types.js';
import { get_mm_counter } from '../../include/linux/mm.js';
import { MMAP_BASE } from '../../mm/task.js';
import { nr_free_pages } from '../../mm/page_alloc.js';

const t = suite('mm/mmap');
let p: Process;
t.before.each(() => { p = boot(); });

const spans = (p: Process) => p.mm.mmap.map((v) => [v.vm_start, v.vm_end]);

t('mappings are placed top-down below mmap_base and adjacent ones merge', () => {
  const a = p.mmap(0, 8192, RW, ANON);
  assert.is(a, MMAP_BASE - 8192);
  const b = p.mmap(0, 4096, RW, ANON);
  assert.is(b, a - 4096);
  assert.equal(spans(p), [[b, MMAP_BASE]], 'same flags: one VMA');
  const c = p.mmap(0, 4096, PROT_READ, ANON);
  assert.is(p.mm.map_count, 2, 'different protection: no merge');
  assert.is(c, b - 4096);
});

t('mmap rejects what Linux rejects', () => {
  assert.is(p.mmap(0, 0, RW, ANON), -EINVAL, 'zero length');
  assert.is(p.mmap(0x10001, 4096, RW, ANON | MAP_FIXED), -EINVAL, 'unaligned MAP_FIXED');
  assert.is(p.mmap(0, 4096, RW, MAP_ANONYMOUS), -EINVAL, 'neither shared nor private');
  assert.is(p.mmap(0, 4096, RW, MAP_PRIVATE, 7), -EBADF, 'no such fd');
  assert.is(p.mmap(0, 4096, 0x10, ANON), -EINVAL, 'unknown prot bit');
  assert.is(p.mmap(0, 2 ** 48, RW, ANON), -ENOMEM, 'larger than the address space');
  assert.is(p.mm.map_count, 0);
});

t('MAP_FIXED replaces a mapping and MAP_FIXED_NOREPLACE refuses to', () => {
  const a = p.mmap(0, 4 * 4096, RW, ANON);
  p.fill32(a, 4 * 4096, 1);
  assert.is(p.mmap(a + 4096, 4096, RW, ANON | MAP_FIXED_NOREPLACE), -EEXIST);
  assert.is(p.check32(a, 4 * 4096, 1), -1, 'untouched after the refusal');
  assert.is(p.mmap(a + 4096, 4096, RW, ANON | MAP_FIXED), a + 4096);
  assert.is(p.read32(a + 4096), 0, 'the new mapping reads zeroes');
  assert.is(p.read32(a), 1, 'first word intact');
  assert.is(p.read32(a + 2 * 4096), 2048 + 1);
});

t('munmap of the middle splits the VMA, frees its pages and notifies UNMAP', () => {
  const a = p.mmap(0, 3 * 4096, RW, ANON);
  p.fill32(a, 3 * 4096, 5);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 3);
  const free = nr_free_pages();
  const seen = recordNotifier(p);
  assert.is(p.munmap(a + 4096, 4096), 0);
  assert.equal(spans(p), [[a, a + 4096], [a + 8192, a + 3 * 4096]]);
  assert.equal(starts(seen), [`UNMAP ${(a + 4096).toString(16)}-${(a + 8192).toString(16)}`]);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 2);
  assert.ok(nr_free_pages() >= free + 1);
  assert.is(pte_at(p.mm, a + 4096), 0, 'the PTE is gone');
  assert.is(p.read32(a), 5);
  assert.is(p.read32(a + 8192), 5 + 2048);
  assert.throws(() => p.read32(a + 4096), /SIGSEGV/);
});

t('munmap errors: unaligned start and zero length give EINVAL; a hole is fine', () => {
  const a = p.mmap(0, 4096, RW, ANON);
  assert.is(p.munmap(a + 1, 4096), -EINVAL);
  assert.is(p.munmap(a, 0), -EINVAL);
  assert.is(p.munmap(0x10000000, 4096), 0);
  assert.is(p.mm.map_count, 1);
});

t('MAP_POPULATE faults every page in at mmap time', () => {
  const a = p.mmap(0, 16 * 4096, RW, ANON | MAP_POPULATE);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 16);
  for (let i = 0; i < 16; i++) assert.ok(pte_at(p.mm, a + i * 4096) > 0);
});

t('a shared anonymous mapping is backed by one object: writes are seen across fork', () => {
  const a = p.mmap(0, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  p.write32(a, 11);
  const c = p.fork();
  c.write32(a + 4, 22);
  p.write32(a + 4096, 33);
  assert.is(p.read32(a + 4), 22);
  assert.is(c.read32(a), 11);
  assert.is(c.read32(a + 4096), 33);
});

t.run();
