/*
 * tools/bench/memory.ts - `npm run bench -- memory`: host bytes of
 * simulator metadata per RAM frame and per mapped page, against what
 * Linux spends (a 64-byte struct page per frame, an 8-byte PTE per
 * mapped page on x86-64).
 *
 * Every figure follows a forced GC (the bench runner starts node with
 * --expose-gc). "Metadata" is JS heap plus typed arrays, minus the bytes
 * that hold page contents (ram_content_bytes() of mm/page_alloc.ts), so
 * it counts struct pages, free lists, page tables, rmap and LRU state.
 *  - per frame at boot: a machine of MEMORY_BENCH_PAGES frames booted,
 *    against a machine of 1024 frames (the difference over the difference
 *    in frames, so fixed boot state cancels out); typed arrays count with
 *    their full size even where the host has not touched them;
 *  - per frame in use: the same while every frame of the machine is
 *    allocated (alloc_page() of each frame, held: what a machine whose
 *    RAM is all in use carries; mm/sparse.ts creates the struct pages of
 *    a section on first use), and of that the struct page arrays alone
 *    (memmap_bytes()). The bench holds the frames by pfn in an Int32Array,
 *    and its 4 B per frame count as metadata too (stricter than session
 *    4's figure, which only looked each struct page up with pfn_to_page()
 *    and held nothing). Page handles are made on demand and kept by
 *    nothing in the kernel, and the buddy free lists run through the
 *    struct page arrays: neither has bytes of its own per frame;
 *  - per mapped page: a process writes MEMORY_BENCH_PAGES / 4 pages of
 *    that machine (anonymous faults). What a mapped page adds beyond its
 *    frame is page-table entries (rmap, LRU and memcg state live in the
 *    struct page arrays, counted per frame, and the anon_vma is per VMA),
 *    so the figure counts them: the page-table directories the faults
 *    added times the bytes a directory slot takes. It is not a heap
 *    difference: the page-table pool grows in steps and may have room
 *    already, and the heap moves by 100-250 KB between two forced GCs,
 *    so the difference read -6.3 to +1.1 B per page from run to run;
 *  - host RSS per touched page: resident set growth over the same pages
 *    (page contents included; 4096 is the floor).
 * Target (issue 17): metadata per frame in use at most 64 B (ratio <= 1.0).
 */
import { start_kernel } from '../../mm/init.js';
import { totalram_pages, ram_content_bytes, alloc_page, put_page, pfn_to_page, nr_free_pages } from '../../mm/page_alloc.js';
import { GFP_KERNEL } from '../../include/linux/gfp.js';
import { memmap_bytes } from '../../mm/sparse.js';
import { Process, runAs } from '../include/nolibc/nolibc.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_NOHUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { user_store } from '../../mm/fault.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import type { task_struct } from '../../include/linux/sched.js';
import { tracing_off } from '../../lib/sim/trace.js';
import { hostMemory, row } from './harness.js';

const PAGES = Number(process.env.MEMORY_BENCH_PAGES ?? 262144);

/* metadata bytes now: heap + typed arrays - page contents */
function metadata(): { bytes: number; rss: number; gc: boolean } {
  const m = hostMemory();
  return { bytes: m.heap + m.buffers - ram_content_bytes(), rss: m.rss, gc: m.gc };
}

function* touch(t: task_struct, a: number, n: number): Sleepable {
  for (let i = 0; i < n; i++) yield* user_store(t, a + i * PAGE_SIZE, 1, 1);
}

/** bench_memory() - run and print the memory benchmark. */
export async function bench_memory(): Promise<void> {
  start_kernel({ ram_bytes: 1024 * PAGE_SIZE });
  tracing_off();
  const small = metadata(), small_frames = totalram_pages();
  start_kernel({ ram_bytes: PAGES * PAGE_SIZE });
  tracing_off();
  const big = metadata(), frames = totalram_pages();
  let held: Int32Array | null = new Int32Array(nr_free_pages());
  for (let i = 0; i < held.length; i++) held[i] = alloc_page(GFP_KERNEL)!.pfn;
  if (nr_free_pages() !== 0) throw new Error('bench: frames left free');
  const all = metadata();
  const arrays = memmap_bytes() / frames;
  for (const pfn of held) put_page(pfn_to_page(pfn));
  held = null;   /* the 4 B per frame go before the RSS figure */
  const p = Process.spawn('bench');
  const n = PAGES >> 2;
  const a = p.mmap(0, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.madvise(a, n * PAGE_SIZE, MADV_NOHUGEPAGE);
  const before = hostMemory(), pt0 = p.mm.pgd.stats();
  runAs(p.task, touch(p.task, a, n));
  const after = hostMemory(), pt1 = p.mm.pgd.stats();
  /* the page-table directories the faults added, at the bytes a directory slot takes (entries and metadata) */
  const slot_bytes = (pt1.bytes_entries + pt1.bytes_meta) / pt1.capacity;
  if (p.read8(a + (n - 1) * PAGE_SIZE) !== 1) throw new Error('bench: data check failed');
  console.log(`memory: ${frames} frames against ${small_frames}; ${n} pages written by one process; ` +
    `${big.gc ? 'after a forced GC' : 'NO forced GC (run node with --expose-gc)'}`);
  row('metadata bytes per frame at boot', (big.bytes - small.bytes) / (frames - small_frames), 'B', 'Linux struct page', 64);
  row('metadata bytes per frame in use', (all.bytes - small.bytes) / (frames - small_frames), 'B', 'Linux struct page', 64, { ratio_max: 1.0 });
  row('struct page arrays per frame in use', arrays, 'B', 'Linux struct page', 64);
  row('metadata bytes per mapped page', (pt1.slots_used - pt0.slots_used) * slot_bytes / n, 'B', 'Linux PTE', 8);
  row('host RSS per touched page', (after.rss - before.rss) / n, 'B', 'page contents', PAGE_SIZE);
}
