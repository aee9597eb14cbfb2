/*
 * test/mm/file.test.ts - the file layer of mm/file.ts: the delayed fput
 * list (fput_ref / flush_delayed_fput) and that nothing of it survives a
 * new boot.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot } from '../helpers.js';
import { start_kernel } from '../../mm/init.js';
import type { file, inode } from '../../include/linux/sched.js';
import { fput_ref, flush_delayed_fput } from '../../mm/file.js';
import { runSync } from '../../lib/sim/sched.js';

const t = suite('mm/file');
t.before.each(() => { boot(); });

/* a file with one reference whose ->release records that it ran */
function counted_file(log: string[], name: string): file {
  const ino = { i_ino: 1, i_mode: 'chr', i_rdev: 0, i_size: 0, i_mapping: null, i_private: null, i_nlink: 1 } as unknown as inode;
  const f_op = { *release() { log.push(`release ${name}`); return 0; } };
  const f = { f_inode: ino, f_op, f_flags: 0, f_pos: 0, f_count: 1, private_data: null, f_mapping: null, path: name };
  (ino as { i_fop: unknown }).i_fop = f_op;
  return f as unknown as file;
}

t('fput_ref defers the final release to flush_delayed_fput', () => {
  const log: string[] = [];
  const f = counted_file(log, 'a');
  f.f_count = 2;
  fput_ref(f);
  assert.is(f.f_count, 1, 'not the last reference: nothing deferred');
  fput_ref(f);
  assert.equal(log, [], 'the last one is deferred');
  runSync(flush_delayed_fput());
  assert.equal(log, ['release a']);
  runSync(flush_delayed_fput());
  assert.equal(log, ['release a'], 'once');
});

t('a new boot drops the old machine\'s delayed fput list: its releases never run on the new machine', () => {
  const log: string[] = [];
  fput_ref(counted_file(log, 'old'));
  start_kernel({});
  runSync(flush_delayed_fput());
  assert.equal(log, []);
});

t.run();
