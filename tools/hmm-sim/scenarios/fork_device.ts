/*
 * fork_device: fork of device-private memory. 4 pages migrate to the
 * device; fork() copies the device-private entries into the child
 * read-only in both (copy_nonpresent_pte); the parent writes: each write
 * faults the page back to RAM (migrate_to_ram) and breaks the COW; the
 * child still reads the old data. Documentation/vm/hmm.txt: "Migration
 * to and from device memory" (fork).
 */
import { defineScenario } from '../api.js';
import { HMM_DMIRROR_MIGRATE_TO_DEV } from '../../../include/uapi/linux/test_hmm.js';
import { anon, snapshot } from './util.js';

export default defineScenario({
  name: 'fork_device',
  description: 'fork with pages in device-private memory; the parent writes, the child keeps its view',
  boot: { ram: '32M' },
  run(sim) {
    const p = sim.spawn('parent');
    const n = 4, len = n * sim.PAGE_SIZE;
    const buf = anon(p, n), view = anon(p, n);
    p.fill32(buf, len, 0x300);
    const d = sim.dmirror(p, 0);
    sim.log(`MIGRATE_TO_DEV ret=${d.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, buf, n, view)} cpages=${d.cpages}`);
    sim.log(`  snapshot before fork: ${snapshot(d, buf, n, view)}`);
    const c = p.fork();
    sim.log(`  snapshot after fork:  ${snapshot(d, buf, n, view)}  (0x21: read-only device-private: COW pending)`);
    p.fill32(buf, len, 0x4000);
    const child_ok = c.check32(buf, len, 0x300) === -1;
    sim.log(`parent wrote its copy: parent ${p.check32(buf, len, 0x4000) === -1}, child still sees the old data: ${child_ok}`);
    sim.log(`  snapshot after the writes: ${snapshot(d, buf, n, view)}  (0x02: writable RAM)`);
    c.exit(0);
    sim.log(`child reaped: status ${p.wait(c.pid).status >> 8}`);
  },
});
