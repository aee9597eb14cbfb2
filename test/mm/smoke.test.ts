import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { start_kernel } from '../../mm/init.js';
import { Process } from '../../tools/include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';

test('a process maps, writes, forks and the child COWs', () => {
  start_kernel();
  const p = Process.spawn();
  const a = p.mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  assert.ok(a > 0);
  p.fill32(a, 1 << 20, 7);
  assert.is(p.check32(a, 1 << 20, 7), -1);
  const c = p.fork();
  c.fill32(a, 4096, 100);
  assert.is(c.check32(a, 4096, 100), -1);
  assert.is(p.check32(a, 1 << 20, 7), -1);
});
test.run();
