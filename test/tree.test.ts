/*
 * test/tree.test.ts - the layering rule of the tree:
 *
 *   include <- lib <- mm <- drivers <- tools, test
 *
 * A runtime import may only point left (lib/test_hmm.ts is a driver that
 * lives in lib/ as in Linux, so it counts as drivers). Type-only imports
 * (`import type`) may also name lib/ types from include/: they carry no
 * code. This test reads the sources, so it needs the repository checkout.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const rank: Record<string, number> = { include: 0, lib: 1, mm: 2, drivers: 3, tools: 4, test: 4 };

function layer(rel: string): number {
  if (rel.startsWith('lib/test_hmm')) return rank.drivers;
  return rank[rel.split('/')[0]] ?? 99;
}

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

test('runtime imports only point down the layers', () => {
  if (!existsSync(join(root, 'include'))) return;
  const bad: string[] = [];
  for (const top of ['include', 'lib', 'mm', 'drivers']) {
    if (!existsSync(join(root, top))) continue;
    for (const file of sources(join(root, top))) {
      const rel = relative(root, file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^import\s+(type\s+)?[^;]*?from\s+'([^']+)'/gms)) {
        if (m[1] || !m[2].startsWith('.')) continue;
        const target = relative(root, resolve(dirname(file), m[2]));
        if (layer(target) > layer(rel)) bad.push(`${rel} imports ${target}`);
      }
    }
  }
  assert.equal(bad, []);
});

test.run();
