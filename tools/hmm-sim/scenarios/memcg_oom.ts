/*
 * memcg_oom: a memory cgroup with memory.max of 16 pages and no swap. A
 * process in it writes 16 pages (charged, memory.current 16), then a
 * 17th: the charge fails, reclaim finds nothing to reclaim, the memcg is
 * OOM (memory.events oom, oom_kill) and the faulting task is killed with
 * SIGKILL. Documentation/vm/hmm.txt: "Memory cgroup (memcg) and rss
 * accounting".
 */
import { defineScenario } from '../api.js';
import { mem_cgroup_create, mem_cgroup_attach_task, memory_max_write } from '../../../mm/memcontrol.js';
import { MEMCG_MAX, MEMCG_OOM, MEMCG_OOM_KILL } from '../../../include/linux/memcontrol.js';
import { UserFault } from '../../../mm/fault.js';
import { anon } from './util.js';

export default defineScenario({
  name: 'memcg_oom',
  description: 'a memcg with memory.max = 16 pages: 16 pages are charged, the 17th is OOM and kills the task',
  boot: { ram: '16M' },
  run(sim) {
    const p = sim.spawn('hog');
    const M = mem_cgroup_create('hog.slice');
    memory_max_write(M, 16 * sim.PAGE_SIZE);
    mem_cgroup_attach_task(M, p.task);
    const a = anon(p, 32);
    p.fill32(a, 16 * sim.PAGE_SIZE, 1);
    sim.log(`16 pages written: memory.current ${M.memory.usage} pages, memory.max ${M.memory.max}`);
    let got = 'no fault';
    try { p.write32(a + 16 * sim.PAGE_SIZE, 2); } catch (e) {
      got = e instanceof UserFault ? `signal ${e.sig} (SIGKILL is 9)` : String(e);
    }
    sim.log(`the 17th page: ${got}`);
    sim.log(`memory.events: max ${M.events[MEMCG_MAX]} oom ${M.events[MEMCG_OOM]} oom_kill ${M.events[MEMCG_OOM_KILL]}`);
  },
});
