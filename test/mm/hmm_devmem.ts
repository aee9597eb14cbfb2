/*
 * test/mm/hmm_devmem.ts - a tiny device driver for the mainline HMM unit
 * tests (hmm, memremap, migrate_device, device_exclusive): device memory
 * made with memremap_pages(), a free list, migrate_to_ram, migration to
 * and from the device, eviction, and an interval notifier that records
 * what it is told. lib/test_hmm.ts is the full driver; this one is just
 * enough to drive core mm from a test.
 */
import type { page, mm_struct, vm_fault } from '../../include/linux/mm_types.js';
import {
  PAGE_SIZE, PMD_SIZE, VM_FAULT_SIGBUS, VM_FAULT_OOM, TASK_SIZE, HPAGE_PMD_NR, HPAGE_PMD_ORDER,
} from '../../include/linux/mm.js';
import {
  MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT, type dev_pagemap,
} from '../../include/linux/memremap.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_PFN_COMPOUND, MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_COMPOUND, migrate_pfn, migrate_pfn_to_page, type migrate_vma,
} from '../../include/linux/migrate.js';
import {
  mmu_notifier_event_names, MMU_NOTIFY_MIGRATE, type mmu_interval_notifier, type mmu_notifier_range,
} from '../../include/linux/mmu_notifier.js';
import { GFP_HIGHUSER_MOVABLE, __GFP_COMP } from '../../include/linux/gfp.js';
import { runSync, type Sleepable } from '../../lib/sim/sched.js';
import { runAs } from '../../tools/include/nolibc/nolibc.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { memremap_pages, zone_device_page_init, zone_device_folio_init, pgmap_pages } from '../../mm/memremap.js';
import {
  migrate_vma_setup, migrate_vma_pages, migrate_vma_finalize, migrate_device_range, migrate_device_pages,
  migrate_device_finalize,
} from '../../mm/migrate_device.js';
import { alloc_page, folio_alloc, copy_highpage, clear_highpage, pfn_to_page } from '../../mm/page_alloc.js';
import { folio_trylock } from '../../mm/filemap.js';
import { vma_lookup } from '../../mm/vma.js';
import { mmap_read_lock, mmap_read_unlock } from '../../mm/mmap_lock.js';
import { mmu_interval_notifier_insert, mmu_interval_set_seq } from '../../mm/mmu_notifier.js';

/** One recorded invalidation: event name, range and owner. */
export interface seen_inv { event: string; start: number; end: number; owner: unknown }

/** A tiny device with its own memory (private or coherent). */
export class TinyDev {
  readonly pgmap: dev_pagemap;
  readonly free: page[] = [];
  /* heads of free PMD-sized folios (reserved at the start of the range) */
  readonly huge_free: page[] = [];
  folio_split_calls = 0;
  migrate_to_ram_calls = 0;
  freed = 0;
  /* make the next allocation fail (like dmirror's FAIL_ALLOC) */
  fail_alloc = false;
  /* a fault through a device-private PMD brings the whole THP back (as dmirror does); else one page */
  huge_fault = false;

  constructor(readonly name: string, coherent = false, nr_pages = 64, huge_folios = 0) {
    const dev = this;
    this.pgmap = {
      type: coherent ? MEMORY_DEVICE_COHERENT : MEMORY_DEVICE_PRIVATE,
      range: { start: 0, end: 0 }, nr_range: 0, owner: this, name,
      ops: Object.freeze({
        folio_free(f: page) { dev.freed += 1 << f.order; (f.order > 0 ? dev.huge_free : dev.free).push(f); },
        migrate_to_ram(vmf: vm_fault) { return dev.migrate_to_ram(vmf); },
        folio_split(_head: page, tail: page | null) { if (tail !== null) dev.folio_split_calls++; },
      }),
    };
    const ret = memremap_pages(this.pgmap, nr_pages);
    if (ret !== 0) throw new Error(`memremap_pages: ${ret}`);
    const pages = pgmap_pages(this.pgmap);
    for (let k = huge_folios - 1; k >= 0; k--) this.huge_free.push(pages[k * HPAGE_PMD_NR]);
    for (let i = pages.length - 1; i >= huge_folios * HPAGE_PMD_NR; i--) this.free.push(pages[i]);
  }

  /** A locked, referenced device page, or null. */
  alloc(): page | null {
    if (this.fail_alloc) { this.fail_alloc = false; return null; }
    const p = this.free.pop();
    if (p === undefined) return null;
    zone_device_page_init(p);
    return p;
  }

  /** A locked, referenced PMD-sized device folio, or null. */
  allocHuge(): page | null {
    if (this.fail_alloc) { this.fail_alloc = false; return null; }
    const h = this.huge_free.pop();
    if (h === undefined) return null;
    zone_device_folio_init(h, HPAGE_PMD_ORDER);
    return h;
  }

  /**
   * Copy each selected source to a new page from alloc() and record it in
   * dst; a compound source gets a folio from allocHuge when @huge gives
   * one, else 512 small pages (the core then splits the source).
   */
  fillDst(m: migrate_vma, alloc: () => page | null, huge: (() => page | null) | null = null): void {
    for (let i = 0; i < m.npages; i++) {
      if (!(m.src[i] & MIGRATE_PFN_MIGRATE)) continue;
      if ((m.src[i] & MIGRATE_PFN_COMPOUND) && huge !== null) {
        const h = huge();
        if (h !== null) {
          const s = migrate_pfn_to_page(m.src[i]);
          for (let j = 0; j < HPAGE_PMD_NR; j++) {
            const d = pfn_to_page(h.pfn + j);
            if (s !== null) copy_highpage(d, pfn_to_page(s.pfn + j)); else clear_highpage(d);
          }
          m.dst[i] = migrate_pfn(h.pfn) | MIGRATE_PFN_COMPOUND | (m.src[i] & MIGRATE_PFN_WRITE);
          i += HPAGE_PMD_NR - 1;
          continue;
        }
        this.fillSmall(m, i, alloc);
        i += HPAGE_PMD_NR - 1;
        continue;
      }
      const s = migrate_pfn_to_page(m.src[i]);
      const d = alloc();
      if (d === null) continue;
      if (s !== null) copy_highpage(d, s); else clear_highpage(d);
      m.dst[i] = migrate_pfn(d.pfn) | (m.src[i] & MIGRATE_PFN_WRITE);
    }
  }

  /* the fallback for a compound entry: 512 small destinations */
  private fillSmall(m: migrate_vma, i: number, alloc: () => page | null): void {
    const s = migrate_pfn_to_page(m.src[i]);
    for (let j = 0; j < HPAGE_PMD_NR && i + j < m.npages; j++) {
      const d = alloc();
      if (d === null) continue;
      if (s !== null) copy_highpage(d, pfn_to_page(s.pfn + j)); else clear_highpage(d);
      m.dst[i + j] = migrate_pfn(d.pfn) | (m.src[i] & MIGRATE_PFN_WRITE);
    }
  }

  /**
   * dev_pagemap_ops.migrate_to_ram: bring the faulting page back to RAM,
   * or with huge_fault, for a fault through a PMD (vmf.pte < 0), the
   * whole 2 MiB as one compound entry into a RAM THP.
   */
  *migrate_to_ram(vmf: vm_fault): Sleepable<number> {
    this.migrate_to_ram_calls++;
    const whole = this.huge_fault && vmf.pte < 0;
    const start = whole ? vmf.address - (vmf.address % PMD_SIZE) : vmf.address;
    const sel = (this.pgmap.type === MEMORY_DEVICE_COHERENT ? MIGRATE_VMA_SELECT_DEVICE_COHERENT
      : MIGRATE_VMA_SELECT_DEVICE_PRIVATE) | (whole ? MIGRATE_VMA_SELECT_COMPOUND : 0);
    const m = this.args(vmf.vma.vm_mm, start, start + (whole ? PMD_SIZE : PAGE_SIZE), sel);
    m.fault_page = vmf.page;
    if ((yield* migrate_vma_setup(m)) !== 0) return VM_FAULT_SIGBUS;
    let oom = false;
    const dev = this;
    this.fillDst(m, () => {
      const p = alloc_page(GFP_HIGHUSER_MOVABLE);
      if (p === null) { oom = true; return null; }
      folio_trylock(p);
      return p;
    }, whole ? () => {
      const f = dev.fail_alloc ? null : folio_alloc(GFP_HIGHUSER_MOVABLE | __GFP_COMP, HPAGE_PMD_ORDER);
      dev.fail_alloc = false;
      if (f !== null) folio_trylock(f);
      return f;
    } : null);
    yield* migrate_vma_pages(m);
    yield* migrate_vma_finalize(m);
    return oom ? VM_FAULT_OOM : 0;
  }

  /** A migrate_vma for [start, end) of the VMA at start. */
  args(mm: mm_struct, start: number, end: number, flags: number): migrate_vma {
    const n = (end - start) / PAGE_SIZE;
    return {
      vma: vma_lookup(mm, start)!, src: new Float64Array(n), dst: new Float64Array(n), cpages: 0, npages: 0,
      start, end, pgmap_owner: this, flags, fault_page: null,
    };
  }

  /**
   * Migrate [start, end) of p to this device (mmap_lock taken here).
   * @after_setup: runs between setup and pages (for races, pins...).
   * Return: the migrate_vma after finalize, with setup's return in ret.
   */
  toDevice(p: Process, start: number, end: number, flags = MIGRATE_VMA_SELECT_SYSTEM,
           after_setup?: (m: migrate_vma) => void): migrate_vma & { ret: number; setup_cpages: number } {
    const dev = this;
    return runAs(p.task, (function* () {
      yield* mmap_read_lock(p.mm);
      const m = dev.args(p.mm, start, end, flags) as migrate_vma & { ret: number; setup_cpages: number };
      m.ret = yield* migrate_vma_setup(m);
      m.setup_cpages = m.cpages;
      if (m.ret === 0) {
        after_setup?.(m);
        dev.fillDst(m, () => dev.alloc(), () => dev.allocHuge());
        yield* migrate_vma_pages(m);
        yield* migrate_vma_finalize(m);
      }
      mmap_read_unlock(p.mm);
      return m;
    })());
  }

  /** Migrate this device's pages in [start, end) of p back to RAM (MIGRATE_TO_SYS). */
  toSystem(p: Process, start: number, end: number, compound = 0): migrate_vma & { ret: number; setup_cpages: number } {
    const dev = this;
    return runAs(p.task, (function* () {
      yield* mmap_read_lock(p.mm);
      const sel = dev.pgmap.type === MEMORY_DEVICE_COHERENT ? MIGRATE_VMA_SELECT_DEVICE_COHERENT
        : MIGRATE_VMA_SELECT_DEVICE_PRIVATE;
      const m = dev.args(p.mm, start, end, sel | compound) as migrate_vma & { ret: number; setup_cpages: number };
      m.ret = yield* migrate_vma_setup(m);
      m.setup_cpages = m.cpages;
      if (m.ret === 0) {
        dev.fillDst(m, () => { const d = alloc_page(GFP_HIGHUSER_MOVABLE); if (d) folio_trylock(d); return d; },
          () => { const d = dev.fail_alloc ? null : folio_alloc(GFP_HIGHUSER_MOVABLE | __GFP_COMP, HPAGE_PMD_ORDER); dev.fail_alloc = false; if (d) folio_trylock(d); return d; });
        yield* migrate_vma_pages(m);
        yield* migrate_vma_finalize(m);
      }
      mmap_read_unlock(p.mm);
      return m;
    })());
  }

  /** Evict every page of the device back to RAM (migrate_device_range); returns pages moved. */
  evict(): number {
    const n = this.pgmap.nr_pages!;
    const src = new Float64Array(n), dst = new Float64Array(n);
    return runSync((function* (dev: TinyDev) {
      yield* migrate_device_range(src, dev.pgmap.start_pfn!, n);
      let moved = 0;
      for (let i = 0; i < n; i++) {
        const s = migrate_pfn_to_page(src[i]);
        if (s === null || !(src[i] & MIGRATE_PFN_MIGRATE)) continue;
        const order = (src[i] & MIGRATE_PFN_COMPOUND) ? s.order : 0;
        const d = (order ? folio_alloc(GFP_HIGHUSER_MOVABLE | __GFP_COMP, order) : alloc_page(GFP_HIGHUSER_MOVABLE))!;
        folio_trylock(d);
        for (let j = 0; j < 1 << order; j++) copy_highpage(pfn_to_page(d.pfn + j), pfn_to_page(s.pfn + j));
        dst[i] = migrate_pfn(d.pfn) | (order ? MIGRATE_PFN_COMPOUND : 0);
      }
      yield* migrate_device_pages(src, dst, n);
      for (let i = 0; i < n; i++) if (src[i] & MIGRATE_PFN_MIGRATE) moved++;
      yield* migrate_device_finalize(src, dst, n);
      return moved;
    })(this));
  }
}

/** An interval notifier over the whole address space that records what it sees. */
export function watch(p: Process, ignore_own: unknown = undefined): { sub: mmu_interval_notifier; seen: seen_inv[] } {
  const seen: seen_inv[] = [];
  const sub = { start: 0, last: 0, invalidate_seq: 0 } as unknown as mmu_interval_notifier;
  runAs(p.task, mmu_interval_notifier_insert(sub, p.mm, 0, TASK_SIZE, {
    *invalidate(s: mmu_interval_notifier, r: mmu_notifier_range, cur_seq: number): Sleepable<boolean> {
      seen.push({ event: mmu_notifier_event_names[r.event], start: r.start, end: r.end, owner: r.owner });
      if (r.event === MMU_NOTIFY_MIGRATE && ignore_own !== undefined && r.owner === ignore_own) return true;
      mmu_interval_set_seq(s, cur_seq);
      return true;
    },
  }));
  return { sub, seen };
}

/** Run a kernel generator as p with mmap_lock held for read. */
export function locked<T>(p: Process, body: () => Sleepable<T>): T {
  return runAs(p.task, (function* () {
    yield* mmap_read_lock(p.mm);
    try { return yield* body(); } finally { mmap_read_unlock(p.mm); }
  })());
}

export { MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_DEVICE_COHERENT };
