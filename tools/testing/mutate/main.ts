/*
 * tools/testing/mutate/main.ts - `npm run mutate`: mutation testing of the
 * key HMM functions. No Linux twin.
 *
 *   npm run mutate -- [--only id,id] [--check] [--keep] [--timeout S] [--json FILE]
 *
 * For each mutation of mutations.ts, one at a time: apply its edits to a
 * scratch copy of the tree (a temporary detached git worktree of HEAD,
 * never a worktree someone works in, with node_modules linked), rebuild,
 * run the suites that should notice, and restore the files. A mutation
 * is KILLED when a suite fails (or times out), SURVIVED when every suite
 * passes, and an ERROR when an anchor is missing or ambiguous or the
 * mutant does not compile (the list must follow the code: see
 * mutations.ts; noUnusedLocals is off in the scratch tree, relaxUnused()).
 * First the unmutated tree is built and every suite used
 * is run once: a suite that fails without a mutation makes the run stop.
 *
 * --check only verifies that every anchor is found exactly once (in the
 * current tree, no build). The last line is the score: killed / (killed
 * + survived). Commit first: uncommitted changes are not in the copy.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tmpdir } from 'node:os';
import { MUTATIONS, type Mutation, type MutationEdit } from './mutations.js';

interface Args { only: string[] | null; check: boolean; keep: boolean; timeout: number; json: string | null }

function parse(argv: string[]): Args {
  const a: Args = { only: null, check: false, keep: false, timeout: 600, json: null };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--only': a.only = argv[++i].split(','); break;
      case '--check': a.check = true; break;
      case '--keep': a.keep = true; break;
      case '--timeout': a.timeout = Number(argv[++i]); break;
      case '--json': a.json = argv[++i]; break;
      default: throw new Error(`mutate: unknown argument ${argv[i]}`);
    }
  }
  return a;
}

/* every file of @root matching one of @globs ('*' matches within one path component) */
function filesOf(root: string, globs: string[]): string[] {
  const out = new Set<string>();
  for (const g of globs) {
    const dir = g.includes('/') ? g.slice(0, g.lastIndexOf('/')) : '.';
    const re = new RegExp(`^${g.slice(g.lastIndexOf('/') + 1).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
    const abs = join(root, dir);
    if (!existsSync(abs)) continue;
    for (const f of readdirSync(abs)) if (re.test(f) && statSync(join(abs, f)).isFile()) out.add(join(dir, f));
  }
  return [...out].sort();
}

/** locate() - the one file holding @e.anchor, or an error message. */
function locate(root: string, e: MutationEdit): { file: string } | { error: string } {
  const hits: string[] = [];
  for (const f of filesOf(root, e.files)) {
    const text = readFileSync(join(root, f), 'utf8');
    let at = text.indexOf(e.anchor), n = 0;
    while (at >= 0) { n++; at = text.indexOf(e.anchor, at + 1); }
    for (let i = 0; i < n; i++) hits.push(f);
  }
  if (hits.length === 1) return { file: hits[0] };
  const first = e.anchor.split('\n')[0].trim();
  return { error: hits.length === 0 ? `anchor not found in ${e.files.join(' ')}: "${first}"` : `anchor found ${hits.length} times (${hits.join(', ')}): "${first}"` };
}

function run(cmd: string, args: string[], cwd: string, timeoutS: number): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: timeoutS * 1000, maxBuffer: 64 << 20,
    env: { ...process.env, NODE_OPTIONS: '--max-old-space-size=4096' } });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return { ok: r.status === 0 && r.error === undefined, out: r.error ? `${out}\n${String(r.error)}` : out };
}

/* the compiled suites matching @pattern, in the order of its alternatives ('selftests': the ported self-test runner) */
function suitesOf(root: string, pattern: string): string[] {
  const all: string[] = [];
  const walk = (d: string): void => {
    for (const f of readdirSync(join(root, d))) {
      const p = join(d, f);
      if (statSync(join(root, p)).isDirectory()) walk(p);
      else if (p.endsWith('.test.js')) all.push(p);
    }
  };
  walk('dist/test');
  all.sort();
  const out: string[] = [];
  for (const alt of pattern.split('|')) {
    if (alt === 'selftests') { out.push('dist/tools/testing/selftests/main.js'); continue; }
    const re = new RegExp(alt);
    for (const p of all) if (re.test(p.replace(/^dist\//, '').replace(/\.js$/, '')) && !out.includes(p)) out.push(p);
  }
  return out;
}

interface Result { id: string; kind: string; what: string; status: 'killed' | 'survived' | 'error'; by: string }

/*
 * relaxUnused() - turn noUnusedLocals off in the scratch tree's shared
 * compiler options: a mutant that drops a step usually leaves the
 * step's helper or constant unread, and that lint must not turn it into
 * an ERROR instead of a mutant (the 2026-12 run had 16 such). The tree the
 * engineers build keeps the check.
 */
function relaxUnused(root: string): void {
  const f = join(root, 'tsconfig.base.json');
  const cfg = JSON.parse(readFileSync(f, 'utf8')) as { compilerOptions: Record<string, unknown> };
  cfg.compilerOptions.noUnusedLocals = false;
  cfg.compilerOptions.noUnusedParameters = false;
  writeFileSync(f, JSON.stringify(cfg, null, 2));
}

function build(root: string): { ok: boolean; out: string } {
  return run(process.execPath, ['node_modules/typescript/bin/tsc', '-b'], root, 900);   /* as npm run build */
}

function mutateOne(root: string, m: Mutation, timeoutS: number): Result {
  const base = { id: m.id, kind: m.kind, what: m.what };
  const saved = new Map<string, string>();
  try {
    for (const e of m.edits) {
      const loc = locate(root, e);
      if ('error' in loc) return { ...base, status: 'error', by: loc.error };
      const text = saved.get(loc.file) ?? readFileSync(join(root, loc.file), 'utf8');
      if (!saved.has(loc.file)) saved.set(loc.file, text);
      writeFileSync(join(root, loc.file), readFileSync(join(root, loc.file), 'utf8').replace(e.anchor, e.replace));
    }
    const b = build(root);
    if (!b.ok) return { ...base, status: 'error', by: `does not compile: ${b.out.split('\n')[0]}` };
    for (const s of suitesOf(root, m.suites)) {
      const r = run(process.execPath, ['--enable-source-maps', s], root, timeoutS);
      if (!r.ok) return { ...base, status: 'killed', by: relative('dist', s) };
    }
    return { ...base, status: 'survived', by: '' };
  } finally {
    for (const [f, text] of saved) writeFileSync(join(root, f), text);
  }
}

function main(): number {
  const a = parse(process.argv.slice(2));
  const list = MUTATIONS.filter((m) => a.only === null || a.only.includes(m.id));
  const here = process.cwd();
  if (a.check) {
    let bad = 0;
    for (const m of list) for (const e of m.edits) {
      const loc = locate(here, e);
      if ('error' in loc) { bad++; console.log(`${m.id}: ${loc.error}`); }
    }
    console.log(`mutate --check: ${list.length} mutations, ${bad} anchors missing or ambiguous`);
    return bad === 0 ? 0 : 1;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'hmm-mutate-'));
  rmSync(scratch, { recursive: true });
  const wt = run('git', ['worktree', 'add', '--detach', scratch, 'HEAD'], here, 120);
  if (!wt.ok) { console.error(`mutate: git worktree add failed:\n${wt.out}`); return 2; }
  console.log(`mutate: scratch worktree ${scratch} (HEAD of ${here})`);
  try {
    symlinkSync(join(here, 'node_modules'), join(scratch, 'node_modules'));
    relaxUnused(scratch);
    const b = build(scratch);
    if (!b.ok) { console.error(`mutate: the unmutated tree does not build:\n${b.out}`); return 2; }
    const used = new Set(list.flatMap((m) => suitesOf(scratch, m.suites)));
    for (const s of used) {
      const r = run(process.execPath, ['--enable-source-maps', s], scratch, a.timeout);
      if (!r.ok) { console.error(`mutate: ${s} fails without any mutation:\n${r.out.slice(-2000)}`); return 2; }
    }
    console.log(`mutate: baseline green (${used.size} suites)`);
    const results: Result[] = [];
    for (const m of list) {
      const t0 = Date.now();
      const r = mutateOne(scratch, m, a.timeout);
      results.push(r);
      console.log(`${r.status.toUpperCase().padEnd(8)} ${m.id.padEnd(32)} ${m.kind.padEnd(16)} ${r.by} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
    const killed = results.filter((r) => r.status === 'killed').length;
    const survived = results.filter((r) => r.status === 'survived');
    const errors = results.filter((r) => r.status === 'error').length;
    if (a.json !== null) writeFileSync(a.json, JSON.stringify(results, null, 2));
    for (const s of survived) console.log(`survived: ${s.id} - ${s.what}`);
    const score = killed / Math.max(1, killed + survived.length);
    console.log(`mutate: ${results.length} mutations, ${killed} killed, ${survived.length} survived, ${errors} errors; score ${(100 * score).toFixed(1)}%`);
    return errors === 0 && score >= 0.9 ? 0 : 1;
  } finally {
    if (!a.keep) run('git', ['worktree', 'remove', '--force', scratch], here, 120);
  }
}

process.exitCode = main();
