/*
 * thp_migrate: a THP migrates to the device as one device-private THP
 * (migrate_vma_collect_huge_pmd, a PMD-level device-private entry:
 * snapshot 0x26 = DEV_PRIVATE_LOCAL | WRITE | PMD); munmap of one page
 * of it splits the device folio and the PMD entry
 * (split_huge_swap_pmd, migrate_device_split_folio); a CPU read then
 * brings single pages back. Documentation/vm/hmm.txt: device-private THP.
 */
import { defineScenario } from '../api.js';
import { HMM_DMIRROR_MIGRATE_TO_DEV } from '../../../include/uapi/linux/test_hmm.js';
import { MADV_HUGEPAGE } from '../../../include/uapi/asm-generic/mman.js';
import { smaps_rollup } from '../../../mm/pagemap.js';
import { runAs } from '../../include/nolibc/nolibc.js';
import { RW, ANON, snapshot, events_since, trace_seq } from './util.js';

export default defineScenario({
  name: 'thp_migrate',
  description: 'a 2 MiB THP migrates to the device as one folio; a partial munmap splits it',
  boot: { ram: '64M', thp: 'madvise' },
  run(sim) {
    const p = sim.spawn('app');
    const n = sim.PMD_SIZE / sim.PAGE_SIZE;
    /* a PMD-aligned 2 MiB inside a 4 MiB mapping */
    const raw = p.mmap(0, 2 * sim.PMD_SIZE, RW, ANON);
    const buf = Math.ceil(raw / sim.PMD_SIZE) * sim.PMD_SIZE;
    const view = p.mmap(0, sim.PMD_SIZE, RW, ANON);
    p.madvise(buf, sim.PMD_SIZE, MADV_HUGEPAGE);
    p.fill32(buf, sim.PMD_SIZE, 0xa00);
    sim.log(`first touch: AnonHugePages ${runAs(p.task, smaps_rollup(p.mm)).anonymous_thp >> 10} kB`);
    const d = sim.dmirror(p, 0);
    sim.log(`MIGRATE_TO_DEV ret=${d.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, buf, n, view)} cpages=${d.cpages}`);
    const snap = snapshot(d, buf, n, view).split(' ');
    sim.log(`  snapshot: ${n} pages, all ${snap[0]}: ${snap.every((b) => b === snap[0])}  (0x26: device-private, writable, PMD)`);
    const seq = trace_seq();
    p.munmap(buf + 5 * sim.PAGE_SIZE, sim.PAGE_SIZE);
    const pmd_splits = events_since(seq, ['split_huge_swap_pmd']);
    const folio_splits = events_since(seq, ['split_folio', 'migrate_device_split_folio']);
    sim.log(`munmap of page 5: PMD entry split ${pmd_splits}, folio split ${folio_splits}; ` +
      `snapshot of the first 8 pages: ${snapshot(d, buf, 8, view)}`);
    const ok = p.check32(buf, 5 * sim.PAGE_SIZE, 0xa00) === -1;
    sim.log(`CPU reads pages 0-4 back: data ${ok}; snapshot ${snapshot(d, buf, 8, view)}`);
  },
});
