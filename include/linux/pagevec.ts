/*
 * include/linux/pagevec.ts - struct folio_batch: a small array of folios
 * handled together (released, moved between LRU lists), so that a lock
 * or a counter is taken once per batch rather than once per folio.
 *
 * Models include/linux/pagevec.h: PAGEVEC_SIZE slots, folio_batch_add()
 * returns the slots left (0: the caller must process the batch now).
 */
import type { folio } from './mm_types.js';

/** PAGEVEC_SIZE - folios in one batch (31 in Linux: the struct fits in 256 bytes). */
export const PAGEVEC_SIZE = 31;

/** struct folio_batch - @nr folios in @folios[0 .. nr). */
export interface folio_batch {
  nr: number;
  folios: folio[];
}

/** folio_batch_init() - an empty batch. */
export function folio_batch_init(): folio_batch {
  return { nr: 0, folios: new Array<folio>(PAGEVEC_SIZE) };
}

/** folio_batch_reinit() - empty the batch for reuse. */
export function folio_batch_reinit(fb: folio_batch): void {
  fb.nr = 0;
}

/** folio_batch_count() - folios in the batch. */
export function folio_batch_count(fb: folio_batch): number {
  return fb.nr;
}

/** folio_batch_add() - append @f. Return: slots left; 0 means the batch is full. */
export function folio_batch_add(fb: folio_batch, f: folio): number {
  fb.folios[fb.nr++] = f;
  return PAGEVEC_SIZE - fb.nr;
}

/**
 * struct folio_pfn_batch - a folio_batch whose @nr folios are named by
 * their head pfns, @pfns[0 .. nr), with @refs[i] references to drop on
 * each (folios_put_refs()'s refs array). No Linux twin as a type: a
 * folio pointer and a pfn are one to one (page_to_pfn()), and the
 * section-array release path (mm/swap_release.ts) names folios by pfn so
 * that it makes no page handle per folio.
 */
export interface folio_pfn_batch {
  nr: number;
  pfns: Int32Array;
  refs: Int32Array;
}

/** folio_pfn_batch_init() - an empty batch of PAGEVEC_SIZE pfns. Context: any. Return: the batch. */
export function folio_pfn_batch_init(): folio_pfn_batch {
  return { nr: 0, pfns: new Int32Array(PAGEVEC_SIZE), refs: new Int32Array(PAGEVEC_SIZE) };
}
