import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import { runAs, type Process } from '../../tools/include/nolibc/nolibc.js';
import { PROT_READ } from '../../include/uapi/asm-generic/mman.js';
import { EFAULT } from '../../include/uapi/asm-generic/errno.js';
import { FOLL_WRITE, FOLL_FORCE, page_mapcount } from '../../include/linux/mm.js';
import {
  get_user_pages_unlocked, pin_user_pages_unlocked, unpin_user_pages, folio_maybe_dma_pinned, GUP_PIN_COUNTING_BIAS,
} from '../../mm/gup.js';
import { put_page, kmap_local_page } from '../../mm/page_alloc.js';
import type { page } from '../../include/linux/mm_types.js';
import { pte_pfn, pte_write } from '../../include/linux/pgtable.js';
import { copy_from_user, copy_to_user } from '../../mm/fault.js';

const t = suite('mm/gup');
let p: Process;
t.before.each(() => { p = boot(); });

t('get_user_pages faults pages in and holds a reference on each', () => {
  const a = p.mmap(0, 4 * 4096, RW, ANON);
  const pages: page[] = [];
  assert.is(runAs(p.task, get_user_pages_unlocked(p.mm, a, 4, FOLL_WRITE, pages)), 4);
  for (const [i, pg] of pages.entries()) {
    assert.is(pg._refcount, 2, 'mapping + GUP');
    assert.is(pte_pfn(pte_at(p.mm, a + i * 4096)), pg.pfn);
  }
  kmap_local_page(pages[2])[0] = 0x5a;
  assert.is(p.read8(a + 2 * 4096), 0x5a, 'the kernel and the user see the same page');
  for (const pg of pages) put_page(pg);
  assert.is(pages[0]._refcount, 1);
});

t('a read-only GUP of an untouched page returns the zero page; FOLL_WRITE on read-only VMA fails', () => {
  const a = p.mmap(0, 4096, PROT_READ, ANON);
  const pages: page[] = [];
  assert.is(runAs(p.task, get_user_pages_unlocked(p.mm, a, 1, 0, pages)), 1);
  assert.is(pages[0].pfn, 0);
  put_page(pages[0]);
  assert.is(runAs(p.task, get_user_pages_unlocked(p.mm, a, 1, FOLL_WRITE, [])), -EFAULT);
  const forced: page[] = [];
  assert.is(runAs(p.task, get_user_pages_unlocked(p.mm, a, 1, FOLL_WRITE | FOLL_FORCE, forced)), 1,
    'FOLL_FORCE may write a private read-only mapping (ptrace)');
  assert.ok(forced[0].pfn !== 0, 'through a COW copy');
  put_page(forced[0]);
  assert.is(runAs(p.task, get_user_pages_unlocked(p.mm, 0x1000, 1, 0, [])), -EFAULT, 'no VMA');
});

t('pins are counted with the bias; a pinned exclusive page is copied, not shared, at fork', () => {
  const a = p.mmap(0, 4096, RW, ANON);
  p.write32(a, 42);
  const pages: page[] = [];
  assert.is(runAs(p.task, pin_user_pages_unlocked(p.mm, a, 1, FOLL_WRITE, pages)), 1);
  const pg = pages[0];
  assert.is(pg._refcount, 1 + GUP_PIN_COUNTING_BIAS);
  assert.ok(folio_maybe_dma_pinned(pg));
  const c = p.fork();
  assert.ok(pte_pfn(pte_at(c.mm, a)) !== pg.pfn, 'the child got its own copy');
  assert.is(page_mapcount(pg), 1);
  assert.ok(pte_write(pte_at(p.mm, a)), 'the parent keeps writing to the pinned page');
  assert.is(c.read32(a), 42);
  unpin_user_pages(pages);
  assert.is(pg._refcount, 1);
  assert.not.ok(folio_maybe_dma_pinned(pg));
});

t('copy_from_user/copy_to_user fault like the kernel does and return -EFAULT on holes', () => {
  const a = p.mmap(0, 2 * 4096, RW, ANON);
  const src = new Uint8Array(6000).map((_, i) => i % 251);
  assert.is(runAs(p.task, copy_to_user(p.mm, a + 100, src)), 0);
  const back = new Uint8Array(6000);
  assert.is(runAs(p.task, copy_from_user(p.mm, back, a + 100)), 0);
  assert.equal(back, src);
  assert.is(runAs(p.task, copy_from_user(p.mm, back, a + 4096 * 2 - 10)), -EFAULT);
});

t.run();
