/*
 * tools/testing/fuzz/invariants.ts - machine invariants the fuzzer checks
 * between operations and at the end of a sequence.
 *
 *  - device coherence: every entry of a dmirror's device page table names
 *    the page the CPU page table maps at that address (present PTE or PMD,
 *    device-private or device-exclusive entry); a WRITE entry needs a VMA
 *    with VM_WRITE and a page no other mapping shares (no page is both
 *    device-writable and reachable by another process's CPU);
 *  - device pages in use equal live device entries: for each dmirror
 *    device, pages handed out minus pages returned equals the distinct
 *    device pages the CPU page tables of live processes reference;
 *  - after every process exited: the RAM frames free at boot are free
 *    again, every swap slot is free, no dmirror device page and no
 *    hmm_dummy device page is in use.
 * A broken invariant throws a Divergence (machine.ts).
 */
import { PAGE_SIZE, VM_WRITE, page_mapcount } from '../../../include/linux/mm.js';
import { cpuView } from './cpu_view.js';
import { vma_lookup } from '../../../mm/vma.js';
import { nr_free_pages, pfn_to_page, pfn_valid, is_zero_pfn, wmark_pages } from '../../../mm/page_alloc.js';
import { mem_cgroup_subtree, root_mem_cgroup } from '../../../mm/memcontrol.js';
import { lruvec_lru_size } from '../../../mm/swap.js';
import {
  WMARK_MIN, LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE,
} from '../../../include/linux/mmzone.js';
import { MMF_HUGE_ZERO_FOLIO } from '../../../include/linux/mm_types.js';
import { HPAGE_PMD_NR } from '../../../include/linux/mm.js';
import { get_nr_swap_pages, total_swap_pages } from '../../../mm/swapfile.js';
import { dmirror_device_get, type dmirror } from '../../../lib/test_hmm.js';
import { DPT_XA_TAG_WRITE, dmirror_page_to_device, BACKING_PAGE } from '../../../lib/test_hmm_devmem.js';
import { hmmDummyDeviceOf } from '../../../drivers/char/hmm_dummy.js';
import { is_device_private_page, is_device_coherent_page } from '../../../include/linux/memremap.js';
import { huge_zero_folio_allocated } from '../../../mm/huge_memory.js';
import { Divergence, type FuzzWorld } from './machine.js';
import { ARENA, ARENA_PAGES } from './model.js';

/* the dmirror behind fd @fd of @w's slot @s */
function dmirrorOf(w: FuzzWorld, s: number): dmirror | null {
  const sl = w.slots[s];
  if (sl === null || sl.dm === null) return null;
  return (sl.p.task.files.get(sl.dm.fd)?.private_data ?? null) as dmirror | null;
}

function danglingPfn(addr: number, pfn: number): Divergence {
  return new Divergence(`page table: 0x${addr.toString(16)} references pfn ${pfn}, which is no memory (a removed device chunk)`);
}

/** checkCoherence() - every device page table entry names the CPU's page. */
export function checkCoherence(w: FuzzWorld): void {
  for (let s = 0; s < w.slots.length; s++) {
    const d = dmirrorOf(w, s), sl = w.slots[s];
    if (d === null || sl === null) continue;
    const mm = sl.p.mm;
    for (const [vpn, e] of d.pt) {
      const addr = vpn * PAGE_SIZE;
      const cpu = cpuView(mm, addr);
      if (cpu.pfn >= 0 && !pfn_valid(cpu.pfn)) throw danglingPfn(addr, cpu.pfn);
      /* a migrated page is recorded by the RAM page backing it (BACKING_PAGE), as in lib/test_hmm.c */
      const backing = cpu.kind === 'device' ? BACKING_PAGE(pfn_to_page(cpu.pfn))?.pfn : -1;
      if (cpu.pfn !== e.page.pfn && backing !== e.page.pfn)
        throw new Divergence(`coherence: dmirror${d.mdevice.minor} maps 0x${addr.toString(16)} to pfn ${e.page.pfn}, the CPU to ${cpu.kind} pfn ${cpu.pfn}`);
      if (e.tag !== DPT_XA_TAG_WRITE || is_zero_pfn(e.page.pfn)) continue;
      const vma = vma_lookup(mm, addr);
      if (vma === null || !(vma.vm_flags & VM_WRITE))
        throw new Divergence(`coherence: dmirror${d.mdevice.minor} may write 0x${addr.toString(16)}, whose VMA is not writable`);
      if (cpu.kind === 'present' && page_mapcount(pfn_to_page(cpu.pfn)) > 1)
        throw new Divergence(`coherence: dmirror${d.mdevice.minor} may write 0x${addr.toString(16)}, a page shared copy-on-write (mapcount ${page_mapcount(pfn_to_page(cpu.pfn))})`);
    }
  }
}

/** checkDevicePages() - pages in use of each dmirror device equal the pages live page tables reference. */
export function checkDevicePages(w: FuzzWorld): void {
  const seen = new Map<number, Set<number>>();
  for (const sl of w.slots) {
    if (sl === null) continue;
    for (let i = 0; i < ARENA_PAGES; i++) {
      const cpu = cpuView(sl.p.mm, ARENA + i * PAGE_SIZE);
      if (cpu.pfn < 0 || cpu.kind === 'other') continue;
      if (!pfn_valid(cpu.pfn)) throw danglingPfn(ARENA + i * PAGE_SIZE, cpu.pfn);
      const pg = pfn_to_page(cpu.pfn);
      if (!is_device_private_page(pg) && !is_device_coherent_page(pg)) continue;
      const dev = dmirror_page_to_device(pg);
      if (dev === null) continue;
      if (!seen.has(dev.minor)) seen.set(dev.minor, new Set());
      seen.get(dev.minor)!.add(cpu.pfn);
    }
  }
  for (let minor = 0; minor < 4; minor++) {
    const inUse = devicePagesInUse(minor), live = seen.get(minor)?.size ?? 0;
    if (inUse !== live) throw new Divergence(`device pages: dmirror${minor} has ${inUse} pages in use, live page tables reference ${live}`);
  }
}

/*
 * devicePagesInUse() - pages of dmirror device @minor's chunks with a
 * reference. Not calloc - cfree: a page freed while its chunk is being
 * removed (HMM_DMIRROR_RELEASE) is not counted back, as in lib/test_hmm.c.
 */
export function devicePagesInUse(minor: number): number {
  const dev = dmirror_device_get(minor);
  if (dev === null || dev.devmem_chunks === null) return 0;
  let n = 0;
  for (let c = 0; c < dev.devmem_count; c++) {
    const pm = dev.devmem_chunks[c].pagemap;
    for (let i = 0; i < (pm.nr_pages ?? 0); i++) {
      const pg = pfn_to_page(pm.start_pfn! + i);
      if (pg.compound_head._refcount > 0) n++;
    }
  }
  return n;
}

/*
 * releaseFits() - the fuzzer's rule for HMM_DMIRROR_RELEASE on dmirror
 * device @minor (machine.ts): issue it only when reclaim alone can supply
 * the RAM its eviction needs.
 *
 * dmirror_device_evict_chunk() (lib/test_hmm.c, lib/test_hmm_evict.ts)
 * allocates one RAM page per device page in use, with __GFP_NOFAIL,
 * before any device page (and its RAM backing page) is freed by
 * migrate_device_finalize(). Reclaim can give the free pages above the
 * min watermark, the LRU (anonymous pages only as far as swap has free
 * slots) and the huge zero folio when no mm holds it. When that is less,
 * the OOM killer runs; its first victim is often the caller itself (its
 * device pages count in its rss), and then Linux kills nobody else
 * (task_will_free_mem(current)) and retries the __GFP_NOFAIL allocation
 * forever: a livelock, which the model reports as a BUG (seeds 40827 and
 * 41049 of session 5). The fuzzer does not generate that configuration.
 * The rule is conservative: where the victim is another task, Linux may
 * still get there after some OOM kills, and those RELEASEs are skipped too.
 */
export function releaseFits(w: FuzzWorld, minor: number): boolean {
  let anon = 0, file = 0;
  for (const memcg of mem_cgroup_subtree(root_mem_cgroup())) {
    const lv = memcg.lruvec;
    anon += lruvec_lru_size(lv, LRU_INACTIVE_ANON) + lruvec_lru_size(lv, LRU_ACTIVE_ANON);
    file += lruvec_lru_size(lv, LRU_INACTIVE_FILE) + lruvec_lru_size(lv, LRU_ACTIVE_FILE);
  }
  const held = w.slots.some((sl) => sl !== null && sl.p.mm !== null && (sl.p.mm.flags & MMF_HUGE_ZERO_FOLIO) !== 0);
  const zero = huge_zero_folio_allocated() && !held ? HPAGE_PMD_NR : 0;
  const avail = nr_free_pages() - wmark_pages(WMARK_MIN) + Math.min(anon, get_nr_swap_pages()) + file + zero;
  return devicePagesInUse(minor) <= avail;
}

/** Machine counters at boot, for the leak check at the end. */
export interface Baseline { free: number }

export function baseline(): Baseline { return { free: nr_free_pages() }; }

/** checkTeardown() - after every process exited, everything came back. */
export function checkTeardown(b: Baseline): void {
  if (get_nr_swap_pages() !== total_swap_pages())
    throw new Divergence(`teardown: ${total_swap_pages() - get_nr_swap_pages()} swap slots still in use`);
  for (let minor = 0; minor < 4; minor++) {
    const n = devicePagesInUse(minor);
    if (n !== 0) throw new Divergence(`teardown: dmirror${minor} has ${n} device pages in use`);
  }
  for (let d = 0; d < 2; d++)
    if (hmmDummyDeviceOf(d).rmem_used !== 0)
      throw new Divergence(`teardown: hmm_dummy device ${d} has ${hmmDummyDeviceOf(d).rmem_used} device pages in use`);
  /* the huge zero page stays until reclaim's shrinker frees it (mm/huge_memory.ts), as in Linux */
  const kept = huge_zero_folio_allocated() ? 512 : 0;
  if (nr_free_pages() + kept !== b.free) throw new Divergence(`teardown: ${b.free - nr_free_pages() - kept} RAM frames not freed`);
}
