/*
 * test/mm/zap.test.ts - tearing down page-table entries (mm/zap.ts): the
 * mmu_gather frees a large zap in batches, each after its TLB flush.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import { PAGE_SIZE, get_mm_counter } from '../../include/linux/mm.js';
import { MM_ANONPAGES } from '../../include/linux/mm_types.js';
import { MADV_NOHUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { nr_free_pages } from '../../mm/page_alloc.js';
import { get_counter } from '../../lib/sim/trace.js';
import { MMU_GATHER_MAX_PAGES } from '../../mm/zap.js';

const t = suite('mm/zap');

t('munmap of more pages than a gather holds flushes and frees them batch by batch, each range once', () => {
  const p = boot({ ram_bytes: 256 << 20 });
  const pages = 2 * MMU_GATHER_MAX_PAGES + 1000, len = pages * PAGE_SIZE;
  const a = p.mmap(0, len, RW, ANON);
  assert.is(p.madvise(a, len, MADV_NOHUGEPAGE), 0);
  const free = nr_free_pages();
  for (let i = 0; i < pages; i++) p.write8(a + i * PAGE_SIZE, i & 0xff);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), pages);
  const flushes = get_counter('tlb_flush'), flushed = get_counter('tlb_flush_pages');
  assert.is(p.munmap(a, len), 0);
  /* the gather is flushed when full at the end of a PTE page (512 entries), then once at the end */
  const batches = Math.ceil(pages / (Math.ceil(MMU_GATHER_MAX_PAGES / 512) * 512));
  assert.is(get_counter('tlb_flush') - flushes, batches);
  assert.is(get_counter('tlb_flush_pages') - flushed, pages, 'each batch flushes only its own range');
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 0);
  assert.ok(nr_free_pages() >= free - 8, 'every page came back (page tables aside)');
  assert.is(pte_at(p.mm, a), -1);
});

t.run();
