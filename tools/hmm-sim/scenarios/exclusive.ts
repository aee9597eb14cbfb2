/*
 * exclusive: device-exclusive access (make_device_exclusive(),
 * HMM_DMIRROR_EXCLUSIVE): the device takes 4 pages for atomics, each CPU
 * PTE becomes a device-exclusive entry; a CPU write to one page faults
 * (do_swap_page -> remove_device_exclusive_entry, an MMU_NOTIFY_EXCLUSIVE
 * invalidation the device sees) and restores a present PTE; the other
 * pages stay exclusive until the CPU touches them.
 * Documentation/vm/hmm.txt: "Exclusive access memory".
 */
import { defineScenario } from '../api.js';
import { HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_CHECK_EXCLUSIVE } from '../../../include/uapi/linux/test_hmm.js';
import { get_counter } from '../../../lib/sim/trace.js';
import { anon, ret } from './util.js';

export default defineScenario({
  name: 'exclusive',
  description: 'device-exclusive access to 4 pages, then a CPU write revokes it for one page',
  boot: { ram: '32M' },
  run(sim) {
    const p = sim.spawn('app');
    const n = 4, len = n * sim.PAGE_SIZE;
    const buf = anon(p, n), view = anon(p, n);
    p.fill32(buf, len, 0x500);
    const d = sim.dmirror(p, 0);
    sim.log(`EXCLUSIVE ret=${d.ioctl(HMM_DMIRROR_EXCLUSIVE, buf, n, view)} cpages=${d.cpages}`);
    sim.log(`  device read the CPU's data: ${p.check32(view, len, 0x500) === -1}`);
    sim.log(`  CHECK_EXCLUSIVE: ${ret(d.ioctl(HMM_DMIRROR_CHECK_EXCLUSIVE, buf, n, view))} (the device still holds atomic entries)`);
    const before = get_counter('pgfault');
    p.write32(buf + sim.PAGE_SIZE, 0xc0ffee);          /* a CPU write: the exclusive entry is removed */
    sim.log(`CPU write to page 1: ${get_counter('pgfault') - before} fault, page 1 reads 0x${p.read32(buf + sim.PAGE_SIZE).toString(16)}`);
    sim.log(`  CHECK_EXCLUSIVE: ${ret(d.ioctl(HMM_DMIRROR_CHECK_EXCLUSIVE, buf, n, view))} (pages 0, 2, 3 are still exclusive)`);
    const intact = p.check32(buf, sim.PAGE_SIZE, 0x500) === -1 && p.check32(buf + 2 * sim.PAGE_SIZE, 2 * sim.PAGE_SIZE, 0x500 + 2048) === -1;
    sim.log(`CPU reads pages 0, 2, 3: data intact ${intact}`);
    sim.log(`  CHECK_EXCLUSIVE: ${ret(d.ioctl(HMM_DMIRROR_CHECK_EXCLUSIVE, buf, n, view))} (the CPU took every page back)`);
  },
});
