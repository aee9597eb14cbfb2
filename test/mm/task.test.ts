import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { ECHILD, ESRCH } from '../../include/uapi/asm-generic/errno.js';
import { SIGKILL } from '../../include/uapi/asm-generic/signal.js';
import { nr_free_pages, pfn_to_page, pageAllocStats } from '../../mm/page_alloc.js';
import { dmirror_open, dmirror_cmd } from '../helpers.js';
import { hmm_dmirror_init, dmirror_device_get } from '../../lib/test_hmm.js';
import { HMM_DMIRROR_MIGRATE_TO_DEV } from '../../include/uapi/linux/test_hmm.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { pte_pfn } from '../../include/linux/pgtable.js';
import { page_mapcount } from '../../include/linux/mm.js';
import { EXIT_ZOMBIE } from '../../include/linux/sched.js';
import { MADV_DONTFORK } from '../../include/uapi/asm-generic/mman.js';

const t = suite('mm/task (fork, exit, wait, kill)');
let p: Process;
t.before.each(() => { p = boot(); });

t('exit of a forked child drops its mappings; the parent keeps the data and its pages', () => {
  const a = p.mmap(0, 8 * 4096, RW, ANON);
  p.fill32(a, 8 * 4096, 3);
  const before = nr_free_pages();
  const c = p.fork();
  c.fill32(a, 4 * 4096, 9);          /* 4 COW copies in the child */
  assert.is(nr_free_pages(), before - 4 - (nr_free_pages() - (before - 4)), 'sanity');
  const pg = pfn_to_page(pte_pfn(pte_at(p.mm, a + 5 * 4096)));
  assert.is(page_mapcount(pg), 2);
  c.exit(3);
  assert.is(c.task.exit_state, EXIT_ZOMBIE);
  assert.is(page_mapcount(pg), 1);
  const w = p.wait();
  assert.equal(w, { pid: c.pid, status: 3 << 8 });
  assert.is(p.wait().pid, -ECHILD);
  assert.is(p.check32(a, 8 * 4096, 3), -1);
  assert.ok(nr_free_pages() >= before - 1, 'the child page tables and copies are freed');
});

t('exit frees every page a process owned', () => {
  const free0 = nr_free_pages();
  const q = p.fork();
  const a = q.mmap(0, 64 * 4096, RW, ANON);
  q.fill32(a, 64 * 4096, 1);
  assert.ok(nr_free_pages() <= free0 - 64);
  q.exit(0);
  p.wait(q.pid);
  assert.is(nr_free_pages(), free0);
});

t('kill with SIGKILL ends the process at once; a dead pid gives ESRCH', () => {
  const c = p.fork();
  assert.is(p.kill(c.pid, SIGKILL), 0);
  assert.equal(p.wait(c.pid), { pid: c.pid, status: SIGKILL });
  assert.is(p.kill(c.pid, SIGKILL), -ESRCH);
  assert.throws(() => c.read32(0x100000), /SIGKILL/);
});

t('fork leaves VM_DONTCOPY ranges out and copies the rest, three generations deep', () => {
  const a = p.mmap(0, 2 * 4096, RW, ANON);
  p.write32(a, 1);
  p.write32(a + 4096, 2);
  p.madvise(a + 4096, 4096, MADV_DONTFORK);
  const c = p.fork();
  const g = c.fork();
  assert.is(g.read32(a), 1);
  assert.throws(() => g.read32(a + 4096), /SIGSEGV/);
  g.write32(a, 3);
  assert.is(c.read32(a), 1);
  assert.is(p.read32(a), 1);
  const pg = pfn_to_page(pte_pfn(pte_at(p.mm, a)));
  assert.is(page_mapcount(pg), 2, 'parent and child share; the grandchild copied');
});

t('exit releases the mm before closing the files (exit_mm, then exit_files): a dmirror close finds no device page of the exiting task to evict', () => {
  hmm_dmirror_init();
  const r = dmirror_open(p, 0);
  const a = p.mmap(0, 16 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 16 * PAGE_SIZE, 0);
  assert.is(dmirror_cmd(r, HMM_DMIRROR_MIGRATE_TO_DEV, a, 16).ret, 0);
  const dev = dmirror_device_get(0)!;
  assert.is(dev.calloc - dev.cfree, 16, '16 device pages in use');
  const allocated = pageAllocStats().pgalloc;
  p.exit(0);
  assert.is(pageAllocStats().pgalloc, allocated, 'no RAM page allocated to evict pages that exit_mmap() frees anyway');
  assert.is(dev.calloc - dev.cfree, 0, 'every device page came back');
});

t.run();
