/*
 * test/tree.test.ts - the layering rule of the tree, as the compiler
 * enforces it:
 *
 *   include <- lib <- mm <- drivers <- tools, test
 *
 * Each layer is a TypeScript project (its tsconfig.json) that references
 * only the layers below it; lib/test_hmm*.ts, the test driver Linux keeps
 * in lib/, is its own project above mm (lib/tsconfig.test_hmm.json). An
 * import of a file of a layer that is not referenced is a build error
 * (TS6307), type-only imports and re-exports included. The tests below
 * compile small files under a layer's rules and expect that error.
 * They read the sources and the compiler, so they need the checkout with
 * its node_modules, and the build (npm run build) done.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const tsc = join(root, 'node_modules', '.bin', 'tsc');

/* each layer's project and the rank of its layer */
const layers: { config: string; rank: number }[] = [
  { config: 'include/tsconfig.json', rank: 0 },
  { config: 'lib/tsconfig.json', rank: 1 },
  { config: 'mm/tsconfig.json', rank: 2 },
  { config: 'lib/tsconfig.test_hmm.json', rank: 3 },
  { config: 'drivers/tsconfig.json', rank: 3 },
  { config: 'tools/tsconfig.json', rank: 4 },
  { config: 'test/tsconfig.json', rank: 5 },
];

function readConfig(rel: string): { references?: { path: string }[] } {
  return JSON.parse(readFileSync(join(root, rel), 'utf8'));
}

/* the project file a reference names (a directory means its tsconfig.json) */
function referenced(from: string, path: string): string {
  const p = resolve(root, dirname(from), path);
  return (p.endsWith('.json') ? p : join(p, 'tsconfig.json')).slice(root.length + 1);
}

/*
 * compileUnder() - compile one file, @source, under the rules of the layer
 * project @config: its compiler options and references, in a scratch
 * project. Return: tsc's exit status and output.
 */
function compileUnder(config: string, source: string): { status: number; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hmm-sim-layer-'));
  try {
    writeFileSync(join(dir, 'probe.ts'), source);
    const refs = (readConfig(config).references ?? []).map((r) => ({ path: resolve(root, dirname(config), r.path) }));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      extends: join(root, config),
      compilerOptions: {
        rootDir: '/', outDir: join(dir, 'out'), tsBuildInfoFile: join(dir, 'out', 'info.json'),
        typeRoots: [join(root, 'node_modules', '@types')],
      },
      include: [], files: ['probe.ts'], exclude: [],
      references: refs,
    }));
    const r = spawnSync(tsc, ['-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
    return { status: r.status ?? -1, out: (r.stdout ?? '') + (r.stderr ?? '') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the tree has its layers, each a project that references only the layers below it', () => {
  for (const l of layers) assert.ok(existsSync(join(root, l.config)), `${l.config} exists`);
  assert.ok(existsSync(join(root, 'include', 'linux', 'mm.ts')), 'include/ is there');
  const rank = new Map(layers.map((l) => [l.config, l.rank]));
  for (const l of layers) {
    for (const r of readConfig(l.config).references ?? []) {
      const target = referenced(l.config, r.path);
      assert.ok(rank.has(target), `${l.config} references a layer: ${target}`);
      assert.ok(rank.get(target)! < l.rank || target === 'lib/tsconfig.json' && l.config === 'lib/tsconfig.test_hmm.json',
        `${l.config} references ${target}, which is not below it`);
    }
  }
  const all = readConfig('tsconfig.json').references!.map((r) => referenced('tsconfig.json', r.path)).sort();
  assert.equal(all, layers.map((l) => l.config).sort(), 'npm run build (tsc -b) builds every layer');
});

test('an upward import is a build error: include/ may not import lib/, mm/ may not import drivers/', () => {
  const inc = compileUnder('include/tsconfig.json', `import type { Thread } from '${root}/lib/sim/sched.js';\nexport type t = Thread;\n`);
  assert.is.not(inc.status, 0);
  assert.match(inc.out, /TS6307.*lib\/sim\/sched\.ts/);
  const mm = compileUnder('mm/tsconfig.json', `export { hmm_dummy_init } from '${root}/drivers/char/hmm_dummy.js';\n`);
  assert.is.not(mm.status, 0);
  assert.match(mm.out, /TS6307.*drivers\/char\/hmm_dummy\.ts/);
});

test('an import pointing down compiles (drivers/ may import mm/)', () => {
  const drv = compileUnder('drivers/tsconfig.json', `export { handle_mm_fault } from '${root}/mm/memory.js';\n`);
  assert.is(drv.status, 0, drv.out);
});

/* every source and document file of the fixed top level (no dist/, no node_modules/) */
function sourceFiles(): string[] {
  const out: string[] = [];
  const visit = (rel: string): void => {
    for (const d of readdirSync(join(root, rel), { withFileTypes: true })) {
      const r = join(rel, d.name);
      if (d.isDirectory()) visit(r);
      else if (/\.(ts|mjs|js|json|txt|md|c|sh)$|^run$/.test(d.name)) out.push(r);
    }
  };
  for (const top of ['mm', 'lib', 'drivers', 'include', 'Documentation', 'tools', 'test', '.ci']) {
    if (existsSync(join(root, top))) visit(top);
  }
  return out.concat(['README.md', 'package.json', 'tsconfig.json'].filter((f) => existsSync(join(root, f))));
}

test('no file carries a merge-conflict marker (a bad merge must not land in the docs either)', () => {
  const files = sourceFiles();
  assert.ok(files.length > 100, `found ${files.length} files`);
  assert.ok(files.includes(join('Documentation', 'vm', 'hmm.txt')), 'the design document is scanned');
  const marker = /^(<{7}|>{7}) |^={7}$/m;
  const bad = files.filter((f) => marker.test(readFileSync(join(root, f), 'utf8')));
  assert.equal(bad, []);
  assert.ok(marker.test('a\n' + '<'.repeat(7) + ' HEAD\nb'), 'the check sees a marker');
});

test.run();
