/*
 * test/tools/testing/mutate/main.test.ts - `npm run mutate -- --check`:
 * every step-order mutation of tools/testing/mutate/mutations.ts still
 * finds its anchor exactly once in the tree, so a rewrite of a function
 * cannot leave its mutation testing nothing (session 9 found nine anchors
 * lost to the session 7-8 rewrites of collect_one(), fork's
 * write-protect, the invalidate_range_end() path, the dmirror notifier
 * and migrate_vma_check_page()). Running the mutants themselves takes
 * many minutes (`npm run mutate`); this suite only keeps them aimed.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MUTATIONS } from '../../../../tools/testing/mutate/mutations.js';

const t = suite('tools/testing/mutate');
const MAIN = resolve('dist/tools/testing/mutate/main.js');

function check(cwd: string): { out: string; rc: number } {
  const r = spawnSync(process.execPath, [MAIN, '--check'], { cwd, encoding: 'utf8' });
  return { out: r.stdout + r.stderr, rc: r.status ?? -1 };
}

t('--check: every anchor of every mutation occurs exactly once in the tree', () => {
  const r = check(process.cwd());
  assert.is(r.rc, 0, r.out);
  assert.match(r.out, new RegExp(`mutate --check: ${MUTATIONS.length} mutations, 0 anchors missing or ambiguous`));
});

t('--check fails, naming each mutation, when the anchors are not there', () => {
  const empty = mkdtempSync(join(tmpdir(), 'mutate-check-'));
  try {
    const r = check(empty);
    assert.is(r.rc, 1);
    for (const m of MUTATIONS) assert.ok(r.out.includes(`${m.id}: anchor not found`), m.id);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

t('the list covers every kind, and each mutation names the suites that should kill it', () => {
  const kinds = new Set(MUTATIONS.map((m) => m.kind));
  for (const k of ['swap', 'drop-recheck', 'seq-outside-lock', 'skip-notifier', 'late-ref', 'weaken']) assert.ok(kinds.has(k as never), k);
  for (const m of MUTATIONS) {
    assert.ok(m.suites.length > 0 && m.edits.length > 0, m.id);
    assert.not.ok(m.edits.some((e) => e.anchor === e.replace), `${m.id}: an edit that changes nothing`);
  }
  assert.is(new Set(MUTATIONS.map((m) => m.id)).size, MUTATIONS.length, 'ids are unique');
});

t.run();
