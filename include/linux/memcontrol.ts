/*
 * include/linux/memcontrol.ts - memory cgroups: struct mem_cgroup and
 * struct page_counter.
 *
 * Models include/linux/memcontrol.h and include/linux/page_counter.h for
 * cgroup v2 (memory.max, memory.swap.max, memory.current,
 * memory.swap.current, memory.events). The behaviour is mm/memcontrol.ts.
 *
 * Charging rules, as Linux v2:
 *  - a folio is charged to one memcg (folio->memcg_data, here page.memcg)
 *    when it is allocated for a user mapping (mem_cgroup_charge) or read
 *    from swap (mem_cgroup_swapin_charge_folio), and uncharged when it is
 *    freed; the charge is counted in every ancestor's page_counter;
 *  - a swap slot is charged to memory.swap of the folio's memcg when the
 *    folio is given a slot (mem_cgroup_try_charge_swap) and uncharged when
 *    the slot is freed; the memcg id is kept per slot (swap_cgroup);
 *  - when a charge would pass memory.max, reclaim runs on that memcg's
 *    subtree first (try_to_free_mem_cgroup_pages); if it cannot make room,
 *    the memcg is out of memory: the charge fails and the faulting task
 *    gets VM_FAULT_OOM, which kills it (mm/fault.ts).
 *
 * The memcg tree:
 *
 *     root_mem_cgroup   (no limit; pages of tasks in no other memcg)
 *       +-- A           memory.max = 64 MiB
 *       |    +-- A/B    memory.max = 16 MiB: a charge to B counts in B, A and root
 *       +-- C
 */
import type { page } from './mm_types.js';
import { lruvec } from './mmzone.js';
import type { spinlock_t } from './spinlock_types.js';

/* no limit: "max" in the cgroup files */
export const PAGE_COUNTER_MAX = Number.MAX_SAFE_INTEGER;

/** struct page_counter - usage and limit in pages, with the parent's counter. */
export class page_counter {
  usage = 0;                  /* pages charged */
  max = PAGE_COUNTER_MAX;     /* limit in pages */
  watermark = 0;              /* highest usage seen (memory.peak) */
  failcnt = 0;                /* charges refused by this counter */
  constructor(readonly parent: page_counter | null) {}
}

/* enum memcg_memory_event: the memory.events and memory.swap.events counters */
export const MEMCG_LOW = 0;
export const MEMCG_HIGH = 1;
export const MEMCG_MAX = 2;
export const MEMCG_OOM = 3;
export const MEMCG_OOM_KILL = 4;
export const MEMCG_SWAP_MAX = 5;
export const MEMCG_SWAP_FAIL = 6;
export const MEMCG_NR_MEMORY_EVENTS = 7;
export const memcg_memory_event_names = ['low', 'high', 'max', 'oom', 'oom_kill', 'swap_max', 'swap_fail'] as const;

/**
 * struct mem_cgroup - a memory cgroup.
 * Fields change without a yield in between; Linux uses atomics and the
 * css refcount, which a cooperative single-CPU model does not need.
 */
export class mem_cgroup {
  /* memory.current / memory.max, counted up the hierarchy */
  readonly memory: page_counter;
  /* memory.swap.current / memory.swap.max */
  readonly swap: page_counter;
  /* the LRU lists of the pages charged here */
  readonly lruvec: lruvec;
  readonly children: mem_cgroup[] = [];
  /* memory.events (hierarchical, as the file shows) */
  readonly events = new Array<number>(MEMCG_NR_MEMORY_EVENTS).fill(0);
  /* memory.stat: the reclaim counters, in pages */
  readonly stat = { pgscan: 0, pgsteal: 0, pgactivate: 0, pgdeactivate: 0 };

  constructor(readonly id: number, readonly name: string, readonly parent: mem_cgroup | null, lru_lock: spinlock_t) {
    this.memory = new page_counter(parent === null ? null : parent.memory);
    this.swap = new page_counter(parent === null ? null : parent.swap);
    this.lruvec = new lruvec(this, lru_lock);
  }
}

/** folio_memcg() - the memcg a folio is charged to, or null. */
export function folio_memcg(f: page): mem_cgroup | null {
  return f.memcg as mem_cgroup | null;
}
