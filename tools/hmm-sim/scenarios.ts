/*
 * tools/hmm-sim/scenarios.ts - the scenarios `hmm-sim` can run.
 *
 * A scenario boots a fresh machine, drives processes (and, in later
 * scenarios, devices) through the user-space view, and returns a few
 * lines of outcome. The tool prints the kernel trace and a summary around
 * it. Each scenario is small enough to read next to its trace.
 */
import { start_kernel } from '../../mm/init.js';
import { Process } from '../include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { tracing_on } from '../../lib/sim/trace.js';

export interface Scenario {
  name: string;
  summary: string;
  run(): string[];
}

/*
 * cow: the default. A process maps 4 pages, writes them, forks; the child
 * writes one page (copy on write); the parent reads its data back; the
 * child exits and is reaped.
 */
const cow: Scenario = {
  name: 'cow',
  summary: 'map, write, fork, child writes (COW), parent checks its data, child exits',
  run() {
    start_kernel({ ram_bytes: 16 << 20 });
    tracing_on();
    const p = Process.spawn('parent');
    const len = 4 * PAGE_SIZE;
    const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.read32(a + 3 * PAGE_SIZE);            /* a read fault: the zero page */
    p.fill32(a, len, 0x1000);               /* write faults: fresh pages (and one zero-page COW) */
    const c = p.fork();
    c.write32(a, 0xdead);                   /* COW in the child */
    const parentOk = p.check32(a, len, 0x1000) === -1;
    const childSees = c.read32(a).toString(16);
    c.exit(0);
    const w = p.wait(c.pid);
    return [
      `parent mapped ${len / PAGE_SIZE} pages at 0x${a.toString(16)}`,
      `child ${c.pid} wrote 0x${childSees} to its copy; parent data intact: ${parentOk}`,
      `child exited with status ${w.status >> 8}`,
    ];
  },
};

export const scenarios: Record<string, Scenario> = { cow };
export const defaultScenario = 'cow';
