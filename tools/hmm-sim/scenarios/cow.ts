/*
 * cow: map 4 pages, write them, fork; the child writes one page (copy on
 * write); the parent reads its data back; the child exits and is reaped.
 * Documentation/vm/hmm.txt: the memory manager HMM stands on (fork, COW).
 */
import { defineScenario } from '../api.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';

export default defineScenario({
  name: 'cow',
  description: 'map, write, fork, child writes (COW), parent checks its data, child exits',
  boot: { ram: '16M' },
  era: 'fork_device_memory',
  run(sim) {
    const p = sim.spawn('parent');
    const len = 4 * sim.PAGE_SIZE;
    const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.read32(a + 3 * sim.PAGE_SIZE);        /* a read fault: the zero page */
    p.fill32(a, len, 0x1000);               /* write faults: fresh pages (and one zero-page COW) */
    const c = p.fork();
    c.write32(a, 0xdead);                   /* COW in the child */
    const parentOk = p.check32(a, len, 0x1000) === -1;
    const childSees = c.read32(a).toString(16);
    c.exit(0);
    const w = p.wait(c.pid);
    return [
      `parent mapped ${len / sim.PAGE_SIZE} pages at 0x${a.toString(16)}`,
      `child ${c.pid} wrote 0x${childSees} to its copy; parent data intact: ${parentOk}`,
      `child exited with status ${w.status >> 8}`,
    ];
  },
});
