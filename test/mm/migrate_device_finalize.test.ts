/*
 * test/mm/migrate_device_finalize.test.ts - the finalize batch of
 * mm/migrate_device_finalize.ts (a model split of Linux's per-entry
 * __migrate_device_finalize loop): the same migrations run with batches
 * and with the per-entry path only must leave the same page tables,
 * struct pages, LRU lists, bytes, free memory and counters; entries that do not fit
 * a batch and a contended anon_vma rwsem take their fallbacks.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { PAGE_SIZE, PMD_SIZE, page_mapcount } from '../../include/linux/mm.js';
import type { anon_vma } from '../../include/linux/mm_types.js';
import { MAP_SHARED, MADV_HUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { pte_present, pte_pfn } from '../../include/linux/pgtable.js';
import { pte_to_swp_entry, swp_type, swp_offset_pfn } from '../../include/linux/swapops.js';
import { MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_COMPOUND } from '../../include/linux/migrate.js';
import { get_counter, trace_counters } from '../../lib/sim/trace.js';
import { pfn_to_page, nr_free_pages } from '../../mm/page_alloc.js';
import { finalize_batch_max, FINALIZE_BATCH } from '../../mm/migrate_device_finalize.js';
import { migrate_vma_setup, migrate_vma_pages, migrate_vma_finalize } from '../../mm/migrate_device.js';
import { down_write, up_write } from '../../lib/locking/rwsem.js';
import { Scheduler, sched_yield } from '../../lib/sim/sched.js';
import { mmap_read_lock, mmap_read_unlock } from '../../mm/mmap_lock.js';
import { TinyDev } from './hmm_devmem.js';
import { mem_cgroup_lruvec, root_mem_cgroup } from '../../mm/memcontrol.js';
import { NR_LRU_LISTS } from '../../include/linux/mmzone.js';

const t = suite('mm/migrate_device_finalize');
let limit = FINALIZE_BATCH;
t.before.each(() => { limit = finalize_batch_max(FINALIZE_BATCH); });
t.after.each(() => { finalize_batch_max(limit); });

/* the counters the batch adds about itself (not Linux's): everything else must match */
const OWN = new Set(['migrate_finalize_batch', 'migrate_finalize_batch_wait']);

/* page-table entry, struct page and first word of every page of [a, a + n pages) */
function pages_state(p: Process, a: number, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const addr = a + i * PAGE_SIZE, pte = pte_at(p.mm, addr);
    if (pte <= 0) { out.push(`${i}: none`); continue; }
    const pfn = pte_present(pte) ? pte_pfn(pte) : swp_offset_pfn(pte_to_swp_entry(pte));
    const pg = pfn_to_page(pfn);
    const kind = pte_present(pte) ? `present ${pte}` : `swap type ${swp_type(pte_to_swp_entry(pte))} ${pte}`;
    out.push(`${i}: ${kind} pfn ${pfn} ref ${pg._refcount} map ${page_mapcount(pg)} flags ${pg.flags} ` +
      `index ${pg.index} memcg ${pg.memcg !== null}`);
  }
  return out;
}

/* the LRU lists of the root memcg: pfns head to tail, and each list's size */
function lru_state(): string[] {
  const lv = mem_cgroup_lruvec(root_mem_cgroup()), out: string[] = [];
  for (let lru = 0; lru < NR_LRU_LISTS; lru++) {
    const pfns: number[] = [];
    for (let f = lv.lists[lru].head; f !== null; f = f.lru_next) pfns.push(f.pfn);
    out.push(`${lru}: ${pfns.join(' ')} (${lv.nr_pages[lru]})`);
  }
  return out;
}

function machine_state(procs: Process[], a: number, n: number): { pages: string[]; free: number; counters: string[]; lru: string[] } {
  const pages = procs.flatMap((p, k) => pages_state(p, a, n).map((s) => `p${k} ${s}`));
  const counters = [...trace_counters.entries()].filter(([k]) => !OWN.has(k)).map(([k, v]) => `${k}=${v}`).sort();
  return { pages, free: nr_free_pages(), counters, lru: lru_state() };
}

/*
 * A mixed round trip on a fresh machine: 24 pages with a hole, a zero
 * page, one failed destination allocation, a fork child sharing the
 * anon_vma (two VMAs for the rmap walk), to the device and back, then
 * CPU faults on what stayed there. Returns the state after each step.
 */
function mixed_round_trip(): { states: ReturnType<typeof machine_state>[]; data: number[]; batches: number } {
  const p = boot();
  const N = 24;
  const dev = new TinyDev('dev0', false, 64);
  const a = p.mmap(0, N * PAGE_SIZE, RW, ANON);
  p.fill32(a, N * PAGE_SIZE, 500);
  const child = p.fork();
  p.write32(a + 2 * PAGE_SIZE, 7);                      /* COW: parent's page 2 is its own again */
  const b = p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
  p.read32(b + PAGE_SIZE);                              /* zero page */
  p.write32(b + 2 * PAGE_SIZE, 9);                      /* b + 0, b + 3.. stay holes */
  const states = [];
  dev.toDevice(p, a, a + 10 * PAGE_SIZE, MIGRATE_VMA_SELECT_SYSTEM, () => { dev.fail_alloc = true; });
  states.push(machine_state([p, child], a, N));
  dev.toDevice(p, a + 10 * PAGE_SIZE, a + N * PAGE_SIZE);
  dev.toDevice(p, b, b + 8 * PAGE_SIZE);
  states.push(machine_state([p, child], a, N), machine_state([p], b, 8));
  dev.toSystem(p, a, a + 12 * PAGE_SIZE);
  states.push(machine_state([p, child], a, N));
  const data = [p.check32(a + 2 * PAGE_SIZE, PAGE_SIZE, 0) === -1 ? 0 : p.read32(a + 2 * PAGE_SIZE),
    p.check32(a + 3 * PAGE_SIZE, (N - 3) * PAGE_SIZE, 500 + 3 * 1024), child.check32(a, N * PAGE_SIZE, 500),
    p.read32(b + 2 * PAGE_SIZE), p.read32(b + PAGE_SIZE)];
  states.push(machine_state([p, child], a, N), machine_state([p], b, 8));
  return { states, data, batches: get_counter('migrate_finalize_batch') };
}

t('batched and per-entry finalize leave the same page tables, struct pages, LRU lists, bytes, free memory and counters', () => {
  finalize_batch_max(FINALIZE_BATCH);
  const batched = mixed_round_trip();
  finalize_batch_max(0);
  const per_entry = mixed_round_trip();
  assert.ok(batched.batches > 0, 'the batch was taken');
  assert.is(per_entry.batches, 0, 'limit 0: every entry through the per-entry loop body');
  assert.equal(batched.data, [7, -1, -1, 9, 0], 'the data made the round trip');
  assert.equal(per_entry.data, batched.data);
  assert.is(batched.states.length, per_entry.states.length);
  for (let k = 0; k < batched.states.length; k++) assert.equal(batched.states[k], per_entry.states[k], `state ${k}`);
  const mig = batched.states[1].pages.filter((s) => s.includes('swap type'));
  assert.ok(mig.length >= 20, 'pages of the parent are device entries after the second migration');
});

t('a batch ends where entries stop fitting: a PMD-mapped THP and shared (file) pages go through the per-entry path', () => {
  const run = () => {
    const p = boot();
    const dev = new TinyDev('dev0', false, 1536, 2);
    const raw = p.mmap(0, 3 * PMD_SIZE, RW, ANON);
    const a = Math.ceil(raw / PMD_SIZE) * PMD_SIZE;
    p.madvise(a, PMD_SIZE + 4 * PAGE_SIZE, MADV_HUGEPAGE);   /* one VMA: a THP, then 4 small pages */
    p.fill32(a, PMD_SIZE + 4 * PAGE_SIZE, 40);
    dev.toDevice(p, a, a + PMD_SIZE + 4 * PAGE_SIZE, MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND);
    const s = p.mmap(0, 4 * PAGE_SIZE, RW, MAP_SHARED | ANON);
    p.fill32(s, 4 * PAGE_SIZE, 80);
    dev.toDevice(p, s, s + 4 * PAGE_SIZE);               /* refused (file pages): restored one by one */
    const st = [machine_state([p], a, 512 + 4), machine_state([p], s, 4)];
    return {
      st, batches: get_counter('migrate_finalize_batch'), refused: get_counter('migrate_refuse_file'),
      ok: p.check32(a, PMD_SIZE + 4 * PAGE_SIZE, 40) === -1 && p.check32(s, 4 * PAGE_SIZE, 80) === -1,
    };
  };
  finalize_batch_max(FINALIZE_BATCH);
  const batched = run();
  finalize_batch_max(0);
  const per_entry = run();
  assert.is(batched.refused, 4, 'the shared pages stayed in RAM');
  assert.is(batched.batches, 1, 'one batch: the 4 small anonymous pages; the THP and the file pages went one by one');
  assert.equal(batched.st, per_entry.st);
  assert.ok(batched.ok && per_entry.ok, 'data intact both ways');
});

t('a write-held anon_vma rwsem: the batch sleeps in down_read and then maps the new pages as the uncontended run does', () => {
  const run = (contend: boolean) => {
    const p = boot();
    const dev = new TinyDev('dev0');
    const a = p.mmap(0, 6 * PAGE_SIZE, RW, ANON);
    p.fill32(a, 6 * PAGE_SIZE, 3);
    const sem = (pfn_to_page(pte_pfn(pte_at(p.mm, a))).mapping as anon_vma).rwsem!;
    const log: string[] = [];
    const s = new Scheduler();
    if (contend) {
      s.spawn('rmap writer', function* () {
        yield* down_write(sem);
        yield* sched_yield();
        log.push(`writer sees ${pages_state(p, a, 6).filter((x) => x.includes('swap type')).length} migration entries`);
        up_write(sem);
      }, 'kthread', p.task);
    }
    s.spawn('migrate', function* () {
      yield* mmap_read_lock(p.mm);
      const m = dev.args(p.mm, a, a + 6 * PAGE_SIZE, MIGRATE_VMA_SELECT_SYSTEM);
      assert.is(yield* migrate_vma_setup(m), 0);
      dev.fillDst(m, () => dev.alloc());
      yield* migrate_vma_pages(m);
      yield* migrate_vma_finalize(m);
      mmap_read_unlock(p.mm);
    }, 'kthread', p.task);
    s.run();
    return { log, st: machine_state([p], a, 6), waits: get_counter('migrate_finalize_batch_wait'),
      ok: p.check32(a, 6 * PAGE_SIZE, 3) === -1 };
  };
  const quiet = run(false), contended = run(true);
  assert.is(quiet.waits, 0);
  assert.is(contended.waits, 1, 'the trylock failed and the batch slept once');
  assert.equal(contended.log, ['writer sees 6 migration entries']);
  assert.equal(contended.st.pages, quiet.st.pages);
  assert.equal(contended.st.free, quiet.st.free);
  assert.ok(quiet.ok && contended.ok);
});

t.run();
