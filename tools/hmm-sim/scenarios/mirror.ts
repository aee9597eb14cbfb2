/*
 * mirror: mainline HMM end to end with the dmirror device. The device
 * mirrors a 16-page buffer (hmm_range_fault inside the interval-notifier
 * read section), migrates it to device-private memory (migrate_vma_setup,
 * _pages, _finalize under MMU_NOTIFY_MIGRATE), the CPU touches the first
 * half (do_swap_page -> migrate_to_ram), the device reads everything
 * again, and munmap tears the mirror down (MMU_NOTIFY_UNMAP, set_seq).
 */
import { defineScenario } from '../api.js';
import {
  PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_POPULATE,
} from '../../../include/uapi/asm-generic/mman.js';
import {
  HMM_DMIRROR_READ, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_SNAPSHOT,
} from '../../../include/uapi/linux/test_hmm.js';

export default defineScenario({
  name: 'mirror',
  description: 'a device mirrors a buffer, migrates it to device memory, the CPU faults half of it back',
  boot: { ram: '64M' },
  era: 'migrate_fault',
  run(sim) {
    const p = sim.spawn('app');
    const npages = 16, len = npages * sim.PAGE_SIZE;
    const buf = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const view = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE);
    p.fill32(buf, len, 0x100);
    const dev = sim.dmirror(p, 0);
    const out: string[] = [];
    const step = (what: string, ret: number) =>
      out.push(`${what.padEnd(44)} ret=${ret} cpages=${dev.cpages} faults=${dev.faults}`);
    step('device READ (hmm_range_fault, mirror)', dev.ioctl(HMM_DMIRROR_READ, buf, npages, view));
    out.push(`  device saw the CPU's data: ${p.check32(view, len, 0x100) === -1}`);
    step('MIGRATE_TO_DEV (migrate_vma_*)', dev.ioctl(HMM_DMIRROR_MIGRATE_TO_DEV, buf, npages, view));
    for (let i = 0; i < npages / 2; i++) p.read32(buf + i * sim.PAGE_SIZE);   /* CPU faults: migrate_to_ram */
    step('device READ after the CPU took half back', dev.ioctl(HMM_DMIRROR_READ, buf, npages, view));
    const viewOk = p.check32(view, len, 0x100) === -1;
    step('SNAPSHOT', dev.ioctl(HMM_DMIRROR_SNAPSHOT, buf, npages, view));
    const snap = p.read(view, npages);
    out.push(`  snapshot bytes: ${[...snap].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`);
    out.push('  (0x02: writable page in RAM; 0x22: writable device-private page of this device)');
    out.push(`  device data intact: ${viewOk}; CPU data intact: ${p.check32(buf, len, 0x100) === -1}`);
    p.munmap(buf, len);
    return out;
  },
});
