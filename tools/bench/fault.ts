/*
 * tools/bench/fault.ts - `npm run bench -- fault`: what a simulated page
 * fault costs in host time, against the real kernel's minor fault on the
 * same machine.
 *
 * Simulated: a process maps 262,144 pages (1 GiB) and writes one byte per
 * page (first-touch anonymous faults through mmu_translate ->
 * do_user_addr_fault -> handle_mm_fault -> do_anonymous_page), then forks
 * and the child writes every page again (COW faults through do_wp_page).
 * Real: tools/bench/minflt.c does the same with the host kernel, compiled
 * with the machine's C compiler when there is one.
 * Printed: faults per second of host time for both, and the ratio
 * "host ns per simulated fault / ns per real fault" (target: <= 2).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start_kernel } from '../../mm/init.js';
import { Process, runAs } from '../include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { user_store } from '../../mm/fault.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import type { task_struct } from '../../include/linux/sched.js';
import { tracing_off } from '../../lib/sim/trace.js';
import { hostNs, row } from './harness.js';

function* touch_all(t: task_struct, base: number, pages: number, v: number): Sleepable {
  for (let i = 0; i < pages; i++) yield* user_store(t, base + i * PAGE_SIZE, 1, (i + v) & 0xff);
}

function simulated(pages: number): { anon: number; cow: number } {
  start_kernel({ ram_bytes: pages * PAGE_SIZE * 2 + (64 << 20) });
  tracing_off();
  const p = Process.spawn('bench');
  const a = p.mmap(0, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  let t0 = hostNs();
  runAs(p.task, touch_all(p.task, a, pages, 0));
  const anon = hostNs() - t0;
  const c = p.fork();
  t0 = hostNs();
  runAs(c.task, touch_all(c.task, a, pages, 1));
  const cow = hostNs() - t0;
  if (c.read8(a + 5 * PAGE_SIZE) !== 6 || p.read8(a + 5 * PAGE_SIZE) !== 5) throw new Error('bench: data check failed');
  return { anon, cow };
}

function real(pages: number): { anon: number; cow: number } | null {
  const src = join(process.cwd(), 'tools/bench/minflt.c');
  const dir = mkdtempSync(join(tmpdir(), 'minflt-'));
  const bin = join(dir, 'minflt');
  for (const cc of ['cc', 'gcc', 'clang']) {
    try { execFileSync(cc, ['-O2', '-o', bin, src], { stdio: 'ignore' }); break; } catch { /* next */ }
  }
  if (!existsSync(bin)) return null;
  const out = execFileSync(bin, [String(pages)], { encoding: 'utf8' });
  const get = (k: string) => Number(out.match(new RegExp(`${k} \\d+ (\\d+)`))![1]);
  return { anon: get('anon'), cow: get('cow') };
}

/** bench_fault() - run and print the fault benchmark. */
export async function bench_fault(pages = 262144): Promise<void> {
  console.log(`fault: ${pages} pages (${pages * PAGE_SIZE / 2 ** 20} MiB), first-touch anonymous and COW write faults`);
  const sim = simulated(pages);
  const r = real(pages);
  const rate = (ns: number) => pages / (ns / 1e9);
  if (r === null) {
    console.log('  no C compiler found: printing simulated rates only');
    row('simulated anon faults/s', rate(sim.anon), 'faults/s', 'real', NaN);
    row('simulated COW faults/s', rate(sim.cow), 'faults/s', 'real', NaN);
    return;
  }
  row('simulated anon faults/s', rate(sim.anon), 'faults/s', 'real', rate(r.anon));
  row('simulated COW faults/s', rate(sim.cow), 'faults/s', 'real', rate(r.cow));
  row('host ns per simulated anon fault', sim.anon / pages, 'ns', 'real ns', r.anon / pages, { ratio_max: 2 });
  row('host ns per simulated COW fault', sim.cow / pages, 'ns', 'real ns', r.cow / pages);
}
