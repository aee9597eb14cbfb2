/*
 * test/tools/bench/memory.test.ts - `npm run bench -- memory` run small
 * (MEMORY_BENCH_PAGES=16384, tools/bench/memory.ts): no figure below zero
 * (the frames the bench held are let go before the per-mapped-page
 * figure, which read -1.3 to -6.3 B when their array was collected in the
 * middle of it), the page tables cost at least one 8-byte entry per
 * mapped page and not much more, and the per-frame target is checked.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';

test('memory figures are not negative, and the page tables cost 8 B per mapped page and a little more', () => {
  const r = spawnSync(process.execPath, ['--expose-gc', 'dist/tools/bench/main.js', 'memory'],
    { encoding: 'utf8', env: { ...process.env, MEMORY_BENCH_PAGES: '16384' }, timeout: 300e3 });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /memory: 16384 frames against 1024; 4096 pages written by one process; after a forced GC/);
  const fig = (name: string) => {
    const m = r.stdout.match(new RegExp(`^  ${name} +(-?[\\d.]+) B`, 'm'));
    assert.ok(m !== null, `no "${name}" row in:\n${r.stdout}`);
    return Number(m![1]);
  };
  for (const name of ['metadata bytes per frame at boot', 'metadata bytes per frame in use', 'struct page arrays per frame in use',
    'metadata bytes per mapped page', 'page-table bytes per mapped page', 'host RSS per touched page']) {
    assert.ok(fig(name) >= 0, `${name}: ${fig(name)}`);
  }
  const pt = fig('page-table bytes per mapped page');
  assert.ok(pt >= 8 && pt <= 12, `page-table bytes per mapped page ${pt}`);
  assert.ok(fig('struct page arrays per frame in use') <= 64);
  assert.match(r.stdout, /metadata bytes per frame in use .*\(target ratio <= 1: (met|MISSED)\)/);
});

test.run();
