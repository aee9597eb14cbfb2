/*
 * lib/fault-inject.ts - should_fail(): Linux's fault-injection framework,
 * and the simulator's named failure sites.
 *
 * Follows lib/fault-inject.c (should_fail_ex, setup_fault_attr) and
 * mm/fail_page_alloc.c (Linux 6.x). The attribute and the order of its
 * tests are described in include/linux/fault-inject.ts; how to use the
 * sites from a test or `hmm-sim run --fail` is in Documentation/vm/hmm.txt
 * ("Fault injection").
 *
 * The sites (each attribute's name is its debugfs directory; the CLI and
 * fault_attr_lookup() also take the short name in brackets):
 *
 *   fail_page_alloc     [page_alloc]     alloc_pages() returns NULL
 *                       (mm/page_alloc.ts should_fail_alloc_page(); never
 *                       a __GFP_NOFAIL allocation, as in Linux)
 *   fail_devmem_alloc   [devmem_alloc]   a driver's device page allocation
 *                       fails (dmirror_devmem_alloc_page, mockgpu's PMM)
 *   fail_dma_map        [dma_map]        dma_map_page() returns
 *                       DMA_MAPPING_ERROR (lib/dma/mapping.ts)
 *   fail_dev_copy       [dev_copy]       a copy to or from device memory
 *                       fails (dmirror's migration copies, mockgpu's copy
 *                       engine), as a DMA engine error would
 *   fail_hmm_retry      [hmm_retry]      mmu_interval_read_retry() and
 *                       mmu_interval_check_retry() report an invalidation
 *                       that did not happen: an -EBUSY storm for
 *                       hmm_range_fault() and its callers' retry loops
 *   fail_folio_trylock  [folio_trylock]  folio_trylock() finds the folio
 *                       locked, as if another CPU held it
 *
 * Linux declares each attribute beside its site (failslab in mm/slub.c,
 * fail_page_alloc in mm/fail_page_alloc.c); here they live in one table
 * so that the command line can name them before the machine boots and mm,
 * lib and drivers can all reach them (include <- lib <- mm <- drivers).
 *
 * Randomness: a seeded generator (lib/sim/rng.ts) stands in for
 * get_random_u32_below(100); fault_inject_seed() picks the seed, and boot
 * restarts it, so a run with probability < 100 replays bit for bit.
 *
 * Boot: Linux reads `fail_page_alloc=<interval>,<probability>,<space>,<times>`
 * from the kernel command line (the knobs are debugfs files there; here
 * they are boot parameters too). fault_inject_boot_param() records such a
 * string; start_kernel() calls fault_inject_init(), which resets every
 * attribute (and its counters) and applies the recorded strings. A test
 * that configures a site after boot gets a clean slate in the next test.
 */
import {
  FAULT_ATTR_INITIALIZER, FAULT_NOWARN, type fault_attr, type fail_page_alloc_attr,
} from '../include/linux/fault-inject.js';
import { ENOENT, EINVAL } from '../include/uapi/asm-generic/errno.js';
import { Rng } from './sim/rng.js';
import { count_event, trace_event } from './sim/trace.js';

/* the sites; see the header. Reset by fault_inject_init(). */
export const fail_page_alloc: fail_page_alloc_attr = {
  attr: FAULT_ATTR_INITIALIZER('fail_page_alloc'), ignore_gfp_highmem: true, ignore_gfp_reclaim: true, min_order: 1,
};
export const fail_devmem_alloc = FAULT_ATTR_INITIALIZER('fail_devmem_alloc');
export const fail_dma_map = FAULT_ATTR_INITIALIZER('fail_dma_map');
export const fail_dev_copy = FAULT_ATTR_INITIALIZER('fail_dev_copy');
export const fail_hmm_retry = FAULT_ATTR_INITIALIZER('fail_hmm_retry');
export const fail_folio_trylock = FAULT_ATTR_INITIALIZER('fail_folio_trylock');

const sites: readonly fault_attr[] = [
  fail_page_alloc.attr, fail_devmem_alloc, fail_dma_map, fail_dev_copy, fail_hmm_retry, fail_folio_trylock,
];

/* get_random_u32_below(100) of this machine; restarted at boot */
let seed = 1;
let rng = new Rng(seed);
/* the verbose messages of this machine, oldest first */
const log: string[] = [];
/* boot parameters: site name -> "interval,probability,space,times" */
const boot_params = new Map<string, string>();

/** fault_attr_sites() - every site's attribute, in the header's order. */
export function fault_attr_sites(): readonly fault_attr[] { return sites; }

/**
 * fault_attr_lookup() - the attribute called @name ("fail_page_alloc" or
 * its short name "page_alloc"). Return: the attribute, or null.
 */
export function fault_attr_lookup(name: string): fault_attr | null {
  return sites.find((a) => a.name === name || a.name === `fail_${name}`) ?? null;
}

/* reset @a to FAULT_ATTR_INITIALIZER's values, counters included */
function fault_attr_reset(a: fault_attr): void {
  Object.assign(a, FAULT_ATTR_INITIALIZER(a.name));
}

/* fail_dump(): the verbose message, logged and traced */
function fail_dump(attr: fault_attr): void {
  if (attr.verbose > 0) log.push(`FAULT_INJECTION: forcing a failure. name ${attr.name}, hit ${attr.hits}`);
  trace_event('fault_inject', { name: attr.name, hit: attr.hits });
}

/**
 * should_fail_ex() - should this call of the site fail?
 * @attr: the site's attribute.
 * @size: what this call allocates or maps (bytes, or pages for
 *   fail_page_alloc), consumed from @attr.space before anything fails.
 * @flags: FAULT_NOWARN to fail without the verbose message.
 *
 * Applies the tests of include/linux/fault-inject.ts in Linux's order
 * and counts the call in @attr.hits (and @attr.failures when it fails).
 * Context: any; never sleeps. Return: true if the caller must fail.
 */
export function should_fail_ex(attr: fault_attr, size: number, flags: number): boolean {
  attr.hits++;
  if (attr.probability === 0) return false;
  if (attr.times === 0) return false;
  if (attr.space > size) {
    attr.space -= size;
    return false;
  }
  if (attr.interval > 1) {
    attr.count++;
    if (attr.count % attr.interval !== 0) return false;
  }
  if (attr.probability <= rng.int(100)) return false;
  if (!(flags & FAULT_NOWARN)) fail_dump(attr);
  if (attr.times !== -1) attr.times--;
  attr.failures++;
  count_event(attr.name);
  return true;
}

/** should_fail() - should_fail_ex() with the verbose message. */
export function should_fail(attr: fault_attr, size: number): boolean {
  return should_fail_ex(attr, size, 0);
}

/**
 * setup_fault_attr() - configure @attr from "interval,probability,space,times",
 * the form of Linux's boot parameters (fail_page_alloc=1,100,0,1).
 * @attr: the attribute to set; its counters are left alone.
 * @str: four integers; times may be -1 (no limit).
 *
 * Return: 1 when set; 0 when @str does not parse or probability is
 * above 100 (Linux warns and leaves the attribute unchanged).
 */
export function setup_fault_attr(attr: fault_attr, str: string): number {
  const m = /^\s*(\d+),(\d+),(\d+),(-?\d+)\s*$/.exec(str);
  if (m === null) return 0;
  const [interval, probability, space, times] = m.slice(1).map(Number);
  if (probability > 100 || times < -1) return 0;
  attr.probability = probability;
  attr.interval = Math.max(1, interval);
  attr.space = space;
  attr.times = times;
  return 1;
}

/* fail_page_alloc's debugfs knobs, as a boot parameter may name them (page_alloc.min-order=0) */
const PAGE_ALLOC_KNOBS: Record<string, (v: number) => void> = {
  'ignore-gfp-highmem': (v) => { fail_page_alloc.ignore_gfp_highmem = v !== 0; },
  'ignore-gfp-wait': (v) => { fail_page_alloc.ignore_gfp_reclaim = v !== 0; },
  'min-order': (v) => { fail_page_alloc.min_order = v; },
};

/* apply one boot parameter; false if it names nothing or does not parse */
function apply_boot_param(name: string, str: string, dry: boolean): boolean {
  const dot = name.indexOf('.');
  if (dot >= 0) {
    const knob = PAGE_ALLOC_KNOBS[name.slice(dot + 1)];
    if (fault_attr_lookup(name.slice(0, dot)) !== fail_page_alloc.attr || knob === undefined) return false;
    if (!/^\d+$/.test(str)) return false;
    if (!dry) knob(Number(str));
    return true;
  }
  const a = fault_attr_lookup(name);
  if (a === null) return false;
  return setup_fault_attr(dry ? FAULT_ATTR_INITIALIZER(a.name) : a, str) === 1;
}

/**
 * fault_inject_boot_param() - record "@name=@str" on the next boots'
 * command line; an empty @str removes it.
 * @name: a site ("fail_page_alloc" or "page_alloc"), or one of
 *   fail_page_alloc's knobs: "page_alloc.ignore-gfp-highmem",
 *   "page_alloc.ignore-gfp-wait", "page_alloc.min-order".
 * @str: "interval,probability,space,times" for a site, an integer for a knob.
 * Return: 0; -ENOENT for an unknown site or knob; -EINVAL when @str does
 * not parse.
 */
export function fault_inject_boot_param(name: string, str: string): number {
  const err = fault_inject_check_param(name, str === '' ? '0' : str);
  if (err === -ENOENT) return err;
  const dot = name.indexOf('.');
  const key = `${fault_attr_lookup(dot >= 0 ? name.slice(0, dot) : name)!.name}${dot >= 0 ? name.slice(dot) : ''}`;
  if (str === '') { boot_params.delete(key); return 0; }
  if (err !== 0) return err;
  boot_params.set(key, str);
  return 0;
}

/** fault_inject_boot_clear() - forget every recorded boot parameter. */
export function fault_inject_boot_clear(): void { boot_params.clear(); }

/**
 * fault_inject_check_param() - would fault_inject_boot_param(@name, @str)
 * be accepted? (For a command-line parser that must not change state.)
 * Return: 0, -ENOENT or -EINVAL as fault_inject_boot_param().
 */
export function fault_inject_check_param(name: string, str: string): number {
  const dot = name.indexOf('.');
  const site = fault_attr_lookup(dot >= 0 ? name.slice(0, dot) : name);
  if (site === null || (dot >= 0 && (site !== fail_page_alloc.attr || !(name.slice(dot + 1) in PAGE_ALLOC_KNOBS)))) return -ENOENT;
  return apply_boot_param(dot >= 0 ? `${site.name}${name.slice(dot)}` : site.name, str, true) ? 0 : -EINVAL;
}

/** fault_site_names() - the sites' short names, as the command line takes them. */
export function fault_site_names(): string[] {
  return sites.map((a) => a.name.replace(/^fail_/, ''));
}

/** fault_inject_seed() - seed get_random_u32_below() for this and the next boots. */
export function fault_inject_seed(s: number): void {
  seed = s;
  rng = new Rng(seed);
}

/**
 * fault_inject_init() - at boot: every site off, counters zero, the
 * generator restarted, then the recorded boot parameters applied.
 * Context: start_kernel().
 */
export function fault_inject_init(): void {
  for (const a of sites) fault_attr_reset(a);
  Object.assign(fail_page_alloc, { ignore_gfp_highmem: true, ignore_gfp_reclaim: true, min_order: 1 });
  rng = new Rng(seed);
  log.length = 0;
  for (const [name, str] of boot_params) apply_boot_param(name, str, false);
}

/** fault_inject_log() - this machine's "FAULT_INJECTION: forcing a failure." lines. */
export function fault_inject_log(): readonly string[] { return log; }

/** fault_inject_stats() - per site: hits and failures of this machine, and whether it may fail (armed). */
export function fault_inject_stats(): { name: string; hits: number; failures: number; armed: boolean }[] {
  return sites.map((a) => ({ name: a.name, hits: a.hits, failures: a.failures, armed: a.probability > 0 && a.times !== 0 }));
}
