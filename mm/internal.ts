/*
 * mm/internal.ts - state shared inside core mm only, after Linux's
 * mm/internal.h (which holds mm's private helpers; nothing outside mm/
 * and its tests may use what is here).
 *
 * struct_page_paths: the model split of session 8 (Documentation/vm/
 * hmm.txt Part 17.5). The hot paths of a migration and of compound pages
 * do their struct page steps straight on the section arrays
 * (collect_one() in mm/migrate_device_collect.ts, remove_migration_pte()
 * in mm/migrate.ts, the finalize batch in mm/migrate_device_finalize.ts,
 * free_zone_device_folio() and the device folio's tails in
 * mm/memremap.ts, prep_compound_page() in mm/page_alloc_compound.ts);
 * and, since session 9 (exit3, Part 17 "session 9, exit3"), the common
 * PTE of a zap (zap_present_ptes() in mm/zap.ts) and the release of the
 * gather (free_pages_and_swap_cache() in mm/swap_state.ts and
 * mm/swap_release.ts);
 * each keeps the same steps through the page accessors, which
 * struct_page_direct(false) selects, so that a test can run one workload
 * both ways and compare every struct page, page table and counter
 * (test/mm/migrate_device_collect.test.ts, test/mm/device_private_thp.test.ts,
 * test/mm/zap_release.test.ts).
 * One switch for all of them: a test compares the two ways whole.
 */

/** Which way the struct page steps go: true (the default) on the section arrays. */
export const struct_page_paths = { direct: true };

/**
 * struct_page_direct() - TEST ONLY: the struct page steps of the paths in
 * the file header on the section arrays (true, the default) or through
 * the page accessors (false).
 * Context: any. Return: the previous setting.
 */
export function struct_page_direct(on: boolean): boolean {
  const old = struct_page_paths.direct;
  struct_page_paths.direct = on;
  return old;
}
