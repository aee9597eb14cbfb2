/*
 * mm/gup_longterm.ts - FOLL_LONGTERM pins must not hold movable memory.
 *
 * Models the FOLL_LONGTERM part of mm/gup.c (Linux 6.x):
 * check_and_migrate_movable_pages() runs after __get_user_pages() has
 * pinned the pages. collect_longterm_unpinnable_folios() picks the folios
 * a long-term pin may not hold: pages of ZONE_MOVABLE (and CMA, which
 * this machine has none of), which memory hot-unplug or a contiguous
 * allocation must be able to move away at any time, and device-coherent
 * pages (mm/migrate_device.ts handles those, chained after this check).
 * migrate_longterm_unpinnable_folios() then releases every pin, migrates
 * each such folio to a page of ZONE_NORMAL (migrate_pages with reason
 * MR_LONGTERM_PIN, from mm/migrate.c) and returns -EAGAIN, and
 * pin_user_pages() pins again: the pages it finds now are pinnable. When
 * no normal page can be had, or a folio cannot be migrated, the pin fails
 * (-ENOMEM), with every pin released.
 *
 * The migration itself uses the steps of mm/migrate.ts: lock, replace
 * every mapping by a migration entry (try_to_migrate: MMU_NOTIFY_CLEAR
 * per mapping), check the references, move the page-cache slot, copy,
 * and remap to the copy (remove_migration_ptes).
 *
 * folio_maybe_dma_pinned() (mm/gup.ts) is what the rest of mm asks of a
 * pinned folio: fork copies a pinned anonymous page at once instead of
 * sharing it, a folio split and MADV_COLLAPSE refuse (-EAGAIN), migration
 * and reclaim leave it alone.
 *
 * Simplified: the buddy allocator has one free list for both zones, so
 * a target in ZONE_NORMAL is found by taking frames until one lies below
 * the zone boundary and giving the others back; a large folio is split
 * before migration (Linux migrates it whole when it can).
 */
import type { page, mm_struct } from '../include/linux/mm_types.js';
import { folio_is_zone_movable } from '../include/linux/mm.js';
import { is_device_coherent_page, is_zone_device_page } from '../include/linux/memremap.js';
import { GFP_USER, __GFP_NORETRY, __GFP_NOWARN } from '../include/linux/gfp.js';
import { EAGAIN, EBUSY, ENOMEM } from '../include/uapi/asm-generic/errno.js';
import { migrate_device_coherent_folio } from './migrate_device.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { alloc_page_sleepable, get_page, put_page, copy_highpage, is_zero_page } from './page_alloc.js';
import { unpin_user_page } from './gup.js';
import { folio_lock, folio_unlock, __folio_set_locked } from './filemap.js';
import {
  try_to_migrate, remove_migration_ptes, folio_migrate_mapping, folio_migrate_flags, folio_mapped, folio_mapping,
  MIGRATEPAGE_SUCCESS,
} from './migrate.js';
import { is_huge_zero_folio } from './huge_memory.js';
import { split_folio } from './huge_memory_split.js';

/**
 * folio_is_longterm_pinnable() - may a FOLL_LONGTERM pin hold this folio?
 * Not device-coherent memory, not ZONE_MOVABLE; the zero pages always.
 */
export function folio_is_longterm_pinnable(f: page): boolean {
  const h = f.compound_head;
  if (is_device_coherent_page(h)) return false;
  if (is_zero_page(h) || is_huge_zero_folio(h)) return true;
  if (is_zone_device_page(h)) return true;
  return !folio_is_zone_movable(h);
}

/*
 * alloc_migration_target() - a page of ZONE_NORMAL for the copy (the
 * MR_LONGTERM_PIN target has no __GFP_MOVABLE), or null.
 */
function* alloc_migration_target(): Sleepable<page | null> {
  const stash: page[] = [];
  let p: page | null;
  for (;;) {
    p = yield* alloc_page_sleepable(GFP_USER | __GFP_NORETRY | __GFP_NOWARN);   /* may sleep in direct reclaim */
    if (p === null || !folio_is_zone_movable(p)) break;
    stash.push(p);
  }
  for (const s of stash) put_page(s);
  return p;
}

/*
 * migrate_folio_longterm() - migrate_pages() of one small folio to a
 * ZONE_NORMAL page. The caller holds a reference (the isolation one),
 * which this drops. Return: 0, -ENOMEM (no target), -EAGAIN (busy).
 */
function* migrate_folio_longterm(f: page): Sleepable<number> {
  const dst = yield* alloc_migration_target();
  if (dst === null) { put_page(f); return -ENOMEM; }
  yield* folio_lock(f);
  __folio_set_locked(dst);
  yield* try_to_migrate(f);
  const mapping = folio_mapping(f);
  let rc = folio_mapped(f) ? -EAGAIN : folio_migrate_mapping(mapping, dst, f, 0);
  if (rc === MIGRATEPAGE_SUCCESS) {
    copy_highpage(dst, f);
    folio_migrate_flags(dst, f);
    yield* remove_migration_ptes(f, dst);
    count_event('pgmigrate_success');
  } else {
    yield* remove_migration_ptes(f, f);
    rc = -EAGAIN;
    count_event('pgmigrate_fail');
  }
  folio_unlock(dst);
  folio_unlock(f);
  put_page(dst);                 /* the allocation's reference: the mappings now hold theirs */
  put_page(f);                   /* the isolation reference: a migrated page is freed here */
  return rc;
}

/**
 * check_and_migrate_movable_pages() - the FOLL_LONGTERM check of
 * pin_user_pages(): pins on ZONE_MOVABLE folios are released (all pins
 * are, as Linux does), those folios migrated, and -EAGAIN asks
 * pin_user_pages() to pin again. With nothing to migrate there, pins on
 * device-coherent pages get the same treatment (unpinAndMigrateCoherent).
 * Context: mmap_lock held for read; may sleep.
 * Return: 0 (keep the pins), -EAGAIN, -ENOMEM or -EBUSY; on a non-zero
 * return no pin is held and @pages is empty.
 */
export function* check_and_migrate_movable_pages(mm: mm_struct, pages: page[], _flags: number): Sleepable<number> {
  const movable: page[] = [];
  for (const p of pages) {
    const f = p.compound_head;
    if (!is_device_coherent_page(f) && !folio_is_longterm_pinnable(f) && !movable.some((m) => m.pfn === f.pfn)) movable.push(f);
  }
  if (movable.length === 0) return yield* unpinAndMigrateCoherent(pages);
  for (const f of movable) get_page(f);          /* folio_isolate_lru()'s reference */
  for (const p of pages) unpin_user_page(p);
  pages.splice(0);
  let ret = -EAGAIN;
  for (const f of movable) {
    if (f.order > 0) {                           /* split, and migrate the small folios on the next round */
      yield* folio_lock(f);
      yield* split_folio(f);
      folio_unlock(f);
    }
    /* migrate_pages() failing for any folio fails the pin: retrying could go on forever */
    if ((yield* migrate_folio_longterm(f)) !== 0) ret = -ENOMEM;
  }
  trace_event('migrate_longterm_unpinnable_folios', { mm: mm.id, nr: movable.length, ret });
  return ret;
}

/*
 * unpinAndMigrateCoherent() - the device part of check_and_migrate_movable_pages():
 * a long-term pin must not hold device-coherent memory, so each such page
 * is turned from a pin into a reference, migrated to system memory
 * (migrate_device_coherent_folio), and GUP is asked to pin again (-EAGAIN,
 * with every pin released). Return: 0 when no page is device-coherent.
 */
function* unpinAndMigrateCoherent(pages: page[]): Sleepable<number> {
  const coherent = pages.filter((p) => is_device_coherent_page(p));
  if (coherent.length === 0) return 0;
  for (const p of pages) if (!is_device_coherent_page(p)) unpin_user_page(p);
  for (const p of coherent) { get_page(p); unpin_user_page(p); }
  pages.splice(0);
  let ret = -EAGAIN;
  for (const p of coherent) {
    /* consumes the reference taken above, whatever the outcome */
    if ((yield* migrate_device_coherent_folio(p.compound_head)) !== 0) ret = -EBUSY;
  }
  return ret;
}
