/*
 * longterm_pin: a long-term pin refuses migration. Two of four pages are
 * pinned with FOLL_PIN | FOLL_LONGTERM (as RDMA registration does);
 * HMM_DMIRROR_MIGRATE_TO_DEV then moves only the two unpinned pages
 * (migrate_vma_collect leaves a page with extra references: "pinned");
 * after unpin_user_pages() the same request moves the rest.
 * Documentation/vm/hmm.txt: "Migration to and from device memory".
 */
import { defineScenario } from '../api.js';
import { HMM_DMIRROR_MIGRATE_TO_DEV } from '../../../include/uapi/linux/test_hmm.js';
import { FOLL_WRITE, FOLL_LONGTERM } from '../../../include/linux/mm.js';
import type { page } from '../../../include/linux/mm_types.js';
import { pin_user_pages_unlocked, unpin_user_pages } from '../../../mm/gup.js';
import { get_counter } from '../../../lib/sim/trace.js';
import { runAs } from '../../include/nolibc/nolibc.js';
import { anon, snapshot, ret } from './util.js';

export default defineScenario({
  name: 'longterm_pin',
  description: 'two of four pages pinned long-term: migration to the device moves only the other two',
  boot: { ram: '32M' },
  run(sim) {
    const p = sim.spawn('rdma-app');
    const n = 4, len = n * sim.PAGE_SIZE;
    const buf = anon(p, n), view = anon(p, n);
    p.fill32(buf, len, 0x600);
    const pages: page[] = [];
    const pinned = runAs(p.task, pin_user_pages_unlocked(p.mm, buf + 2 * sim.PAGE_SIZE, 2, FOLL_WRITE | FOLL_LONGTERM, pages));
    sim.log(`pin_user_pages(FOLL_LONGTERM) of pages 2-3: ${pinned}`);
    const d = sim.dmirror(p, 0);
    sim.log(`MIGRATE_TO_DEV ret=${ret(d.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, buf, n, view))} ` +
      `(pinned pages skipped by migrate_vma_collect: ${get_counter('migrate_collect_pinned')}; ` +
      `the driver's read-back finds two pages not on the device)`);
    sim.log(`  snapshot: ${snapshot(d, buf, n, view)}  (0x22 on the device, 0x02 still in RAM)`);
    unpin_user_pages(pages);
    sim.log(`after unpin: MIGRATE_TO_DEV ret=${ret(d.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, buf, n, view))} cpages=${d.cpages}`);
    sim.log(`  snapshot: ${snapshot(d, buf, n, view)}`);
    sim.log(`  data intact: ${p.check32(buf, len, 0x600) === -1}`);
  },
});
