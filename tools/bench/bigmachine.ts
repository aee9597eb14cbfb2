/*
 * tools/bench/bigmachine.ts - `npm run bench -- bigmachine`: a server-sized
 * simulated machine on a small host (sparse RAM, mm/sparse.ts).
 *
 *  1. Boot: 256 GiB of RAM and a mock GPU with 80 GiB of VRAM
 *     (device-private memory: memremap_pages() of 20M frames), against
 *     booting the default 64 MiB machine with a 32 MiB GPU. CPU and wall
 *     ms, median of 3 after a warm-up; the host memory the boot added
 *     (after a forced GC). Target: the big boot under 1 s of CPU.
 *  2. Workload: one process maps 16 GiB and writes one byte to each of
 *     its 4,194,304 pages (anonymous faults), reads a sample back, then
 *     unmaps it. Printed: CPU ns per fault, host bytes per touched page
 *     (RSS growth; the page contents are the floor of 4096), page-content
 *     bytes allocated, and what is given back after the munmap. When the
 *     host has not enough free memory for 4M pages now, the row says so
 *     and the workload runs with the most pages that fit (a power of 2).
 * BIGMACHINE_PAGES overrides the page count.
 */
import { freemem } from 'node:os';
import { start_kernel } from '../../mm/init.js';
import { ram_content_bytes, sparse_stats } from '../../mm/sparse.js';
import { totalram_pages } from '../../mm/page_alloc.js';
import { Process, runAs } from '../include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_NOHUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { user_store } from '../../mm/fault.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import type { task_struct } from '../../include/linux/sched.js';
import { tracing_off } from '../../lib/sim/trace.js';
import { mockgpu_params, mockgpuParamsReset } from '../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_gpu_init } from '../../drivers/gpu/mockgpu/uvm.js';
import { check_target, cpuNs, hostMemory, hostNs, measure, row, skipped } from './harness.js';

const GiB = 2 ** 30;
const WANT = 4 << 20;

function bootMachine(ram: number, vram: number): void {
  mockgpuParamsReset();
  mockgpu_params.vram_bytes = vram;
  start_kernel({ ram_bytes: ram });
  tracing_off();
  uvm_gpu_init();
}

function* touch(t: task_struct, a: number, n: number): Sleepable {
  for (let i = 0; i < n; i++) yield* user_store(t, a + i * PAGE_SIZE, 1, (i * 7 + 1) & 0xff);
}

/** bench_bigmachine() - run and print the big-machine benchmark. */
export async function bench_bigmachine(): Promise<void> {
  console.log('bigmachine: 256 GiB RAM + 80 GiB GPU VRAM (sparse memory map); median of 3 boots after a warm-up');
  const small = measure(() => bootMachine(64 << 20, 32 << 20), { warmup: 1, reps: 3 });
  const m0 = hostMemory();
  const big = measure(() => bootMachine(256 * GiB, 80 * GiB), { warmup: 1, reps: 3 });
  const m1 = hostMemory();
  const ms = (s: typeof big.cpu) => ({ median: s.median / 1e6, min: s.min / 1e6, max: s.max / 1e6, n: s.n });
  row('boot 256 GiB + 80 GiB VRAM, CPU', ms(big.cpu), 'ms', 'boot 64 MiB', ms(small.cpu));
  row('boot 256 GiB + 80 GiB VRAM, wall', ms(big.wall), 'ms', 'boot 64 MiB', ms(small.wall));
  console.log(`  boot under 1 s of CPU: ${check_target('bigmachine boot < 1 s', big.cpu.median < 1e9, `${(big.cpu.median / 1e6).toFixed(0)} ms`)}; ` +
    `host RSS after the big boot: ${((m1.rss - m0.rss) / 2 ** 20).toFixed(1)} MiB more than after the small one ` +
    `(${totalram_pages()} frames; typed arrays reserved: ${((m1.buffers - m0.buffers) / 2 ** 20).toFixed(0)} MiB, touched only where used)`);

  const want = Number(process.env.BIGMACHINE_PAGES ?? WANT);
  const free = freemem();
  /* measured: 4,309-4,315 host bytes per touched page (2M and 4M pages); keep 10% of free memory spare */
  const PER_PAGE = PAGE_SIZE + 256;
  const fits = (n: number) => n * PER_PAGE < free * 0.9;
  let n = want;
  if (!fits(n)) {
    skipped(`workload of ${want} pages`, `needs ~${(want * PER_PAGE / GiB).toFixed(1)} GiB of host memory, ${(free / GiB).toFixed(1)} GiB free now`);
    while (n > 1024 && !fits(n)) n >>= 1;
  }
  const p = Process.spawn('big');
  const len = n * PAGE_SIZE;
  const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.madvise(a, len, MADV_NOHUGEPAGE);
  const before = hostMemory();
  const c0 = cpuNs(), w0 = hostNs();
  runAs(p.task, touch(p.task, a, n));
  const cpu = cpuNs() - c0, wall = hostNs() - w0;
  const after = hostMemory();
  for (let i = 0; i < n; i += 65537) {
    if (p.read8(a + i * PAGE_SIZE) !== ((i * 7 + 1) & 0xff)) throw new Error(`bench: page ${i} lost its byte`);
  }
  const content = ram_content_bytes();
  const st = sparse_stats();
  console.log(`bigmachine: one process wrote ${n} pages (${(len / GiB).toFixed(2)} GiB simulated) in ${(wall / 1e9).toFixed(1)} s wall; ` +
    `${(content / GiB).toFixed(2)} GiB of page contents in ${st.byte_sections} sections, struct pages in ${st.memmap_sections} sections`);
  row(`write fault on the big machine (${n >> 10}k pages)`, cpu / n, 'ns', 'wall ns', wall / n);
  row('host RSS per touched page', (after.rss - before.rss) / n, 'B', 'page contents', PAGE_SIZE);
  if (p.munmap(a, len) !== 0) throw new Error('bench: munmap failed');
  /* V8 frees ArrayBuffer backing stores on a background thread after the GC: give it a moment, collect twice */
  hostMemory();
  await new Promise((r) => setTimeout(r, 200));
  const gone = hostMemory();
  row('page-content bytes after munmap', ram_content_bytes(), 'B', 'before munmap', content);
  console.log(`  RSS: ${(before.rss / GiB).toFixed(2)} GiB before the workload, ${(after.rss / GiB).toFixed(2)} GiB after it, ` +
    `${(gone.rss / GiB).toFixed(2)} GiB after munmap and a forced GC`);
}
