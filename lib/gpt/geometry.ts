/*
 * lib/gpt/geometry.ts - levels, shifts and index math of a gpt table.
 *
 * Models hmm_pt_init() of HMM v8 (patch 06/23): the last level covers
 * page_shift address bits per entry, each level above adds level_bits, and
 * the top level takes whatever is left of the address width (fewer than
 * level_bits when the width does not divide evenly). For 48 address bits,
 * 9 bits per level and 4 KiB pages: shifts 39/30/21/12, llevel = 3.
 *
 *   address (48 bits)
 *   47      39 38      30 29      21 20      12 11         0
 *  +----------+----------+----------+----------+------------+
 *  | level 0  | level 1  | level 2  | level 3  |  in page   |
 *  +----------+----------+----------+----------+------------+
 *
 * What differs: hmm_pt's top level is a kcalloc'ed array sized for the top
 * bits; here the root is an ordinary directory slot that uses only its first
 * 2^top_bits entries, so every pointer has the same slot * size + index form.
 * Addresses are JS numbers, so the address width is at most 53 bits; a
 * 5-level table therefore uses a narrower top level (53 bits with 9 bits
 * per level: 5 + 9 + 9 + 9 + 9 + 12) or fewer bits per level.
 *
 * Index math avoids 32-bit overflow: (addr / 2^shift) & mask is exact for
 * every integer address below 2^53, since ToInt32 keeps the low 32 bits of
 * the truncated quotient.
 */
import { GPT_MAX_LEVELS, type gpt_geometry } from '../../include/linux/gpt.js';

/**
 * struct gpt_layout - a geometry with everything derived from it.
 * @levels: number of levels; @llevel: levels - 1, the last (leaf) level
 * @shift: address shift of an entry at each level (shift[llevel] = page_shift)
 * @span: 2^shift[level], the bytes one entry covers at each level
 * @entries: entries per directory slot (2^level_bits)
 * @mask: entries - 1
 * @top_entries: entries of the root actually used (2^top_bits)
 * @limit: 2^address_bits, the first address past the table
 */
export interface gpt_layout {
  readonly levels: number;
  readonly llevel: number;
  readonly shift: readonly number[];
  readonly span: Float64Array;
  readonly entries: number;
  readonly mask: number;
  readonly top_entries: number;
  readonly limit: number;
}

/**
 * gpt_layout_init() - derive the levels and shifts of a geometry.
 * @g: the geometry; level_bits 1..16, page_shift 0..30, address_bits
 *     above page_shift and at most 53
 *
 * Context: pure.
 * Return: the layout. Throws on an impossible geometry (a simulator bug,
 * like a BUG_ON in hmm_pt_init).
 */
export function gpt_layout_init(g: gpt_geometry): gpt_layout {
  const { address_bits, level_bits, page_shift } = g;
  if (!Number.isInteger(level_bits) || level_bits < 1 || level_bits > 16)
    throw new Error(`gpt: level_bits ${level_bits} out of 1..16`);
  if (!Number.isInteger(page_shift) || page_shift < 0 || page_shift > 30)
    throw new Error(`gpt: page_shift ${page_shift} out of 0..30`);
  if (!Number.isInteger(address_bits) || address_bits <= page_shift || address_bits > 53)
    throw new Error(`gpt: address_bits ${address_bits} must be in ${page_shift + 1}..53`);
  const levels = Math.ceil((address_bits - page_shift) / level_bits);
  if (levels > GPT_MAX_LEVELS)
    throw new Error(`gpt: ${levels} levels exceed GPT_MAX_LEVELS (${GPT_MAX_LEVELS})`);
  const llevel = levels - 1;
  const shift: number[] = [];
  const span = new Float64Array(levels);
  for (let l = 0; l < levels; l++) {
    shift.push(page_shift + (llevel - l) * level_bits);
    span[l] = 2 ** shift[l];
  }
  const entries = 2 ** level_bits;
  return {
    levels, llevel, shift, span, entries, mask: entries - 1,
    top_entries: 2 ** (address_bits - shift[0]),
    limit: 2 ** address_bits,
  };
}

/**
 * gpt_index() - index of the entry covering @addr in its directory at @level.
 * @L: the layout; @addr: address below L.limit; @level: 0..L.llevel
 */
export function gpt_index(L: gpt_layout, addr: number, level: number): number {
  return (addr / L.span[level]) & L.mask;
}

/**
 * gpt_level_end() - first address after the entry at @level covering @addr
 * (hmm_pt_level_next without the clamp: the caller min()s with its end).
 */
export function gpt_level_end(L: gpt_layout, addr: number, level: number): number {
  const s = L.span[level];
  return (Math.floor(addr / s) + 1) * s;
}

/**
 * gpt_dir_span() - bytes of address space one directory at @level covers.
 */
export function gpt_dir_span(L: gpt_layout, level: number): number {
  return level === 0 ? L.limit : L.span[level] * L.entries;
}
