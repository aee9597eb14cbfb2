/*
 * coherent: device-coherent memory (MEMORY_DEVICE_COHERENT, dmirror units
 * 2 and 3): 8 pages migrate to device memory the CPU can address; the CPU
 * then reads and writes them in place (no fault, no migration back, the
 * snapshot still says DEV_COHERENT_LOCAL), and the device sees the CPU's
 * writes. Documentation/vm/hmm.txt: device-coherent memory
 * (MEMORY_DEVICE_COHERENT).
 */
import { defineScenario } from '../api.js';
import { HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_READ } from '../../../include/uapi/linux/test_hmm.js';
import { get_counter } from '../../../lib/sim/trace.js';
import { anon, snapshot } from './util.js';

export default defineScenario({
  name: 'coherent',
  description: 'migrate to device-coherent memory; the CPU reads and writes it in place',
  boot: { ram: '64M' },
  run(sim) {
    const p = sim.spawn('app');
    const n = 8, len = n * sim.PAGE_SIZE;
    const buf = anon(p, n), view = anon(p, n);
    p.fill32(buf, len, 0x900);
    const d = sim.dmirror(p, 2);
    sim.log(`MIGRATE_TO_DEV (coherent) ret=${d.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, buf, n, view)} cpages=${d.cpages}`);
    sim.log(`  snapshot: ${snapshot(d, buf, n, view)}  (0x42: writable device-coherent page of this device)`);
    const faults = get_counter('pgfault');
    const ok = p.check32(buf, len, 0x900) === -1;
    p.fill32(buf, sim.PAGE_SIZE, 0x7000);                /* a CPU store into device memory */
    sim.log(`CPU read all and rewrote page 0 in place: data ${ok}, faults ${get_counter('pgfault') - faults}`);
    sim.log(`  snapshot after the CPU access: ${snapshot(d, buf, n, view)}`);
    d.ioctl(HMM_DMIRROR_READ, buf, n, view);
    sim.log(`  device READ sees the CPU's store: ${p.check32(view, sim.PAGE_SIZE, 0x7000) === -1}`);
  },
});
