/*
 * test/mm/kmemleak.test.ts - the teardown leak check (mm/kmemleak.ts,
 * test/helpers.ts machine_teardown): it passes a clean machine and names
 * every kind of leaked object.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, machine_teardown, pte_at } from '../helpers.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { pte_pfn } from '../../include/linux/pgtable.js';
import { pfn_to_page, get_page } from '../../mm/page_alloc.js';
import { swap_devices } from '../../mm/swapfile.js';
import { TinyDev } from './hmm_devmem.js';
import { kmemleak_exempt } from '../leakcheck/uvu.js';

const t = suite('mm/kmemleak');
let p: Process;
t.before.each(() => { p = boot({ swap_bytes: 1 << 20 }); });

t('a machine whose processes freed everything tears down clean, with children, device pages and swap in use', () => {
  const a = p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 8 * PAGE_SIZE, 1);
  const c = p.fork();
  c.write32(a, 2);
  new TinyDev('dev0').toDevice(p, a + 4 * PAGE_SIZE, a + 6 * PAGE_SIZE);
  assert.equal(machine_teardown(), []);
});

t('a RAM page with a reference nobody owns is reported', () => {
  kmemleak_exempt('leaks on purpose: it tests the report');
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 1);
  const pg = pfn_to_page(pte_pfn(pte_at(p.mm, a)));
  get_page(pg);                                          /* a reference that is never put */
  const report = machine_teardown();
  assert.is(report.length, 1);
  assert.match(report[0], new RegExp(`^1 RAM frames leaked: pfn ${pg.pfn} ref 1`));
});

t('a device page still referenced after every process exited is reported', () => {
  kmemleak_exempt('leaks on purpose: it tests the report');
  const dev = new TinyDev('dev0');
  const a = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(a, 1);
  dev.toDevice(p, a, a + PAGE_SIZE);
  const held = dev.alloc()!;                              /* allocated by the driver and never freed */
  const report = machine_teardown();
  assert.ok(report.some((l) => l.startsWith('1 device pages leaked') && l.includes(`pfn ${held.pfn}`)), report.join('\n'));
});

t('a swap slot with a count nobody holds is reported', () => {
  kmemleak_exempt('leaks on purpose: it tests the report');
  const si = swap_devices()[0];
  si.swap_map[5] = 1;                                     /* as if a swap entry were duplicated and lost */
  const report = machine_teardown();
  assert.equal(report, [`1 swap slots leaked: type ${si.type} offset 5 map 0x1`]);
});

t.run();
