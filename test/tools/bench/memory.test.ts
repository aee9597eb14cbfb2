/*
 * test/tools/bench/memory.test.ts - `npm run bench -- memory` run small
 * (MEMORY_BENCH_PAGES=65536, tools/bench/memory.ts): the figures that
 * count real structures are checked for their size (a mapped page costs
 * its page-table entry, 8 bytes, and a share of the directories above, the struct
 * page arrays stay under Linux's 64 B, every frame in use costs
 * something), the boot figure only for being near zero (sparse memmap:
 * no struct page exists before its section is used; at this size the
 * heap's noise, some 100-250 KB, moves it a few bytes either way:
 * -7.6 B once at 16,384 frames, -3.5 at 65,536), and the
 * per-frame target is checked.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';

test('the page tables cost 8 B per mapped page and a little more; struct pages exist for frames in use, not at boot', () => {
  const r = spawnSync(process.execPath, ['--expose-gc', 'dist/tools/bench/main.js', 'memory'],
    { encoding: 'utf8', env: { ...process.env, MEMORY_BENCH_PAGES: '65536' }, timeout: 300e3 });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /memory: 65536 frames against 1024; 16384 pages written by one process; after a forced GC/);
  const fig = (name: string) => {
    const m = r.stdout.match(new RegExp(`^  ${name} +(-?[\\d.]+) B`, 'm'));
    assert.ok(m !== null, `no "${name}" row in:\n${r.stdout}`);
    return Number(m![1]);
  };
  assert.ok(Math.abs(fig('metadata bytes per frame at boot')) < 16, 'no struct page per frame at boot');
  assert.ok(fig('metadata bytes per frame in use') > 8, 'a frame in use has a struct page');
  assert.ok(fig('struct page arrays per frame in use') > 8);
  const pt = fig('metadata bytes per mapped page');
  assert.ok(pt >= 8 && pt <= 12, `page-table bytes per mapped page ${pt}`);
  assert.ok(fig('struct page arrays per frame in use') <= 64);
  assert.match(r.stdout, /metadata bytes per frame in use .*\(target ratio <= 1: (met|MISSED)\)/);
});

test.run();
