import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_SCENARIO, scenario_lookup, scenario_params, run_scenario } from '../../tools/hmm-sim/registry.js';
import type { scenario } from '../../tools/hmm-sim/api.js';
import { trace_records } from '../../lib/sim/trace.js';

const scenarios = new Proxy({} as Record<string, { run(): string[]; parts?: readonly string[] }>, {
  get: (_t, name: string) => {
    const s = scenario_lookup(name) as scenario;
    return { parts: s.parts, run: () => run_scenario(s, scenario_params(s, []) as Exclude<ReturnType<typeof scenario_params>, string>) };
  },
});
const defaultScenario = DEFAULT_SCENARIO;

test('the default tour runs every part, and each part reports success', () => {
  const tour = scenarios[defaultScenario];
  assert.ok(tour.parts !== undefined && tour.parts.length >= 2);
  for (const name of tour.parts!) {
    const out = scenarios[name].run().join('\n');
    assert.not.match(out, /false/, `${name}: ${out}`);
    assert.ok(trace_records().length > 10, `${name} leaves a trace`);
  }
});

test('the cow scenario shows the COW fault and the notifier events in its trace', () => {
  scenarios.cow.run();
  const names = new Set(trace_records().map((r) => r.name));
  for (const n of ['handle_mm_fault', 'wp_page_copy', 'mmu_notifier_invalidate_range_start', 'dup_mmap', 'exit']) {
    assert.ok(names.has(n), `trace has ${n}`);
  }
});

test('the mirror scenario migrates, faults back half and snapshots the mix', () => {
  const out = scenarios.mirror.run().join('\n');
  assert.match(out, /snapshot bytes: (02 ){8}(22 ){7}22/);
  const names = trace_records().map((r) => r.name);
  for (const n of ['mmu_interval_read_begin', 'hmm_range_fault', 'migrate_vma_setup', 'migrate_vma_pages',
    'migrate_vma_finalize', 'do_swap_page_device_private']) {
    assert.ok(names.includes(n), `trace has ${n}`);
  }
});

const run = (name: string) => scenarios[name].run().join('\n');

test('notifier_retry: the replayed interleaving really retries, and the device ends with the CPU view', () => {
  const out = run('notifier_retry');
  assert.match(out, /threads in the order they ran: device -> madvise -> device/);
  assert.match(out, /READ ret=0 after 1 retry; device faults 1/);
  assert.match(out, /page 2 word 0 = 0x0 /);
  assert.match(out, /matches the CPU now: true/);
  const names = trace_records().map((r) => r.name);
  const retry = names.indexOf('mmu_interval_read_retry');
  assert.ok(retry > 0 && names.indexOf('mmu_interval_set_seq') < retry, 'the invalidation came before the retry');
  assert.ok(names.slice(retry).includes('hmm_range_fault'), 'and hmm_range_fault ran again');
});

test('exclusive: a CPU write revokes one page, reads revoke the rest', () => {
  const out = run('exclusive');
  assert.match(out, /EXCLUSIVE ret=0 cpages=4/);
  assert.match(out, /CPU write to page 1: 1 fault, page 1 reads 0xc0ffee/);
  assert.match(out, /CHECK_EXCLUSIVE: -EPERM \(pages 0, 2, 3/);
  assert.match(out, /CHECK_EXCLUSIVE: 0 \(the CPU took every page back\)/);
});

test('coherent: the CPU uses device-coherent memory in place, without faults', () => {
  const out = run('coherent');
  assert.match(out, /snapshot: (42 ){7}42/);
  assert.match(out, /in place: data true, faults 0/);
  assert.match(out, /snapshot after the CPU access: (42 ){7}42/);
  assert.match(out, /device READ sees the CPU's store: true/);
});

test('fork_device: read-only device entries after fork, COW on the parent write, the child keeps its data', () => {
  const out = run('fork_device');
  assert.match(out, /before fork: 22 22 22 22/);
  assert.match(out, /after fork: {2}21 21 21 21/);
  assert.match(out, /parent true, child still sees the old data: true/);
  assert.match(out, /after the writes: 02 02 02 02/);
});

test('memcg_oom: 16 pages charged, the 17th is OOM and SIGKILL', () => {
  const out = run('memcg_oom');
  assert.match(out, /memory.current 16 pages, memory.max 16/);
  assert.match(out, /the 17th page: signal 9/);
  assert.match(out, /oom 1 oom_kill 1/);
});

test('longterm_pin: pinned pages stay in RAM, the rest migrate; after unpin all do', () => {
  const out = run('longterm_pin');
  assert.match(out, /pin_user_pages\(FOLL_LONGTERM\) of pages 2-3: 2/);
  assert.match(out, /MIGRATE_TO_DEV ret=-ENOENT \(pinned pages skipped by migrate_vma_collect: 2/);
  assert.match(out, /snapshot: 22 22 02 02/);
  assert.match(out, /after unpin: MIGRATE_TO_DEV ret=0 cpages=4\n {2}snapshot: 22 22 22 22/);
});

test('thp_migrate: one device THP (0x26), split by a partial munmap', () => {
  const out = run('thp_migrate');
  assert.match(out, /AnonHugePages 2048 kB/);
  assert.match(out, /cpages=512/);
  assert.match(out, /512 pages, all 26: true/);
  assert.match(out, /PMD entry split 1, .*: 22 22 22 22 22 ff 22 22/);
  assert.match(out, /CPU reads pages 0-4 back: data true; snapshot 02 02 02 02 02 ff 22 22/);
});

test('race scenarios: the explorer finds the broken driver\'s violation and replays it; the real driver holds', () => {
  const bad = run('race_broken_retry');
  assert.match(bad, /interleaving 2 breaks it/);
  assert.match(bad, /threads ran device -> munmap -> device/);
  assert.match(bad, /invariant broken: at the end of the run: dmirror0\.0 maps pfn \d+ \[WRITE\] at 0x[0-9a-f]+, a free page/);
  const good = run('race_munmap');
  assert.match(good, /the invariant held in every one/);
  assert.match(good, /invariant held$/);
});

test.run();
