/*
 * notifier_retry: the interval-notifier protocol actually retrying. A
 * device READ of 4 pages (dmirror_fault: mmu_interval_read_begin(),
 * hmm_range_fault(), then under the driver lock mmu_interval_read_retry())
 * runs on one simulated thread while another thread calls
 * madvise(MADV_DONTNEED) on page 2. The scenario explores the
 * interleavings (lib/sim/explore.ts) until it finds one where the
 * invalidation lands between hmm_range_fault() and the driver's check,
 * and replays that one traced: read_retry sees the sequence moved, the
 * driver drops what it collected and faults again, and the device ends
 * with the CPU's view (page 2 now reads zero).
 * Documentation/vm/hmm.txt: "Address space mirroring implementation and
 * API" (the mmu_interval_read_begin/retry loop).
 */
import { defineScenario } from '../api.js';
import { Scheduler } from '../../../lib/sim/sched.js';
import { explore } from '../../../lib/sim/explore.js';
import { get_counter, tracing_on } from '../../../lib/sim/trace.js';
import { HMM_DMIRROR_READ } from '../../../include/uapi/linux/test_hmm.js';
import { MADV_DONTNEED } from '../../../include/uapi/asm-generic/mman.js';
import type { Process } from '../../include/nolibc/nolibc.js';
import type { Dmirror } from '../../lib/dmirror.js';
import { anon, ret } from './util.js';

class Found extends Error {}

export default defineScenario({
  name: 'notifier_retry',
  description: 'a device READ races madvise(DONTNEED): mmu_interval_read_retry() sends the driver round again',
  boot: { ram: '16M' },
  run(sim) {
    const n = 4, len = n * sim.PAGE_SIZE;
    let p: Process, d: Dmirror, buf = 0, view = 0, rc = 1;
    const setup = (s: Scheduler) => {
      sim.reboot();
      p = sim.spawn('app');
      buf = anon(p, n);
      view = anon(p, n);
      p.fill32(buf, len, 0x100);
      d = sim.dmirror(p, 0);
      rc = 1;
      s.spawn('device', function* () { rc = yield* d.ioctl_sys(HMM_DMIRROR_READ, buf, n, view); }, 'user', p.task);
      s.spawn('madvise', function* () { yield* p.sys.madvise(buf + 2 * sim.PAGE_SIZE, sim.PAGE_SIZE, MADV_DONTNEED); }, 'user', p.task);
    };
    const res = explore(setup, { preemptionBound: 2, maxRuns: 500, check: () => { if (get_counter('dmirror_fault_retry') > 0) throw new Found(); } });
    if (res.failure === null || !(res.failure.error instanceof Found)) {
      sim.log(`no interleaving of ${res.runs} retried`);
      return;
    }
    sim.log(`explored ${res.runs} interleavings; interleaving ${res.runs} retries (schedule ${res.failure.choices.join(',')})`);
    const s = new Scheduler({ mode: 'enumerate', choices: res.failure.choices });
    setup(s);
    tracing_on();
    s.run();
    sim.log(`threads in the order they ran: ${s.formatSchedule()}`);
    sim.log(`READ ret=${ret(rc)} after ${get_counter('mmu_interval_read_retry')} retry; device faults ${d!.faults}`);
    const words = new DataView(p!.read(view, len).buffer);
    const page = (i: number) => words.getUint32(i * sim.PAGE_SIZE, true);
    sim.log(`the device's copy: page 0 word 0 = 0x${page(0).toString(16)}, page 2 word 0 = 0x${page(2).toString(16)} ` +
      `(zero: the page madvise dropped), page 3 = 0x${page(3).toString(16)}`);
    sim.log(`matches the CPU now: ${p!.check32(buf, 2 * sim.PAGE_SIZE, 0x100) === -1 && p!.read32(buf + 2 * sim.PAGE_SIZE) === page(2)}`);
  },
});
