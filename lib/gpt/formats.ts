/*
 * lib/gpt/formats.ts - entry formats shipped with the engine.
 *
 * The 2014 gpt left the PTE format entirely to its user and asked only for
 * a pde_from_pdp() callback and a valid mask; this file is the same idea as
 * a small descriptor (include/linux/gpt.ts, struct gpt_format). It ships:
 *
 *  x86_64_pgtable_format  the CPU table of mm/: 4 levels for 48 bits,
 *                         64-bit entries (include/linux/pgtable_types.ts),
 *                         huge leaves at PUD and PMD (_PAGE_PSE)
 *  hmm_pt_format          the mirror table of HMM v8 (patch 06/23 + 17, 18):
 *                         64-bit entries, leaves only at the last level
 *  gpt_u32_format         a 32-bit format for tests: bit 0 valid, bit 1
 *                         huge, address from bit 12; leaves at any level
 *                         below the root
 *
 * Drivers define their own (the mock GPU's PTEs, the NIC's MTT) with
 * gpt_format_define() and gpt_format_register() so that worker threads can
 * find them by name.
 */
import type { gpt_format } from '../../include/linux/gpt.js';
import { HMM_PDE_VALID } from '../../include/linux/gpt.js';
import { EEXIST } from '../../include/uapi/asm-generic/errno.js';
import { _PAGE_PRESENT, _PAGE_PSE, _PAGE_TABLE } from '../../include/linux/pgtable_types.js';

/**
 * struct gpt_format_desc - a format described as data.
 * @pde_bits: low bits every directory entry carries (must satisfy pde_mask)
 * @last_level: if known, the format's last level (is_pde is false there)
 * Other fields as in struct gpt_format.
 */
export interface gpt_format_desc {
  name: string;
  entry_bits: 32 | 64;
  leaf_levels: readonly number[];
  pde_mask: number;
  pde_value: number;
  pde_shift: number;
  pde_bits: number;
  last_level?: number;
}

/**
 * gpt_format_define() - build a format whose functions follow its data.
 * @d: the description
 * Return: a frozen struct gpt_format.
 */
export function gpt_format_define(d: gpt_format_desc): gpt_format {
  if ((d.pde_bits & d.pde_mask) !== d.pde_value)
    throw new Error(`gpt: format ${d.name}: pde_bits do not satisfy pde_mask/pde_value`);
  if (d.pde_mask >= 2 ** d.pde_shift || d.pde_bits >= 2 ** d.pde_shift)
    throw new Error(`gpt: format ${d.name}: pde flag bits overlap the slot field`);
  const mul = 2 ** d.pde_shift;
  const { pde_mask, pde_value, pde_bits } = d;
  const last = d.last_level ?? Infinity;
  return Object.freeze({
    name: d.name,
    entry_bits: d.entry_bits,
    leaf_levels: Object.freeze([...d.leaf_levels]),
    pde_mask, pde_value, pde_shift: d.pde_shift,
    pde_make(child_slot: number, _level: number): number { return child_slot * mul + pde_bits; },
    pde_slot(e: number): number { return Math.floor(e / mul); },
    is_pde(e: number, level: number): boolean {
      return e !== 0 && level < last && (e & pde_mask) === pde_value;
    },
  });
}

/*
 * x86-64: a directory entry is present with _PAGE_PSE clear; a present entry
 * with _PAGE_PSE at PUD or PMD is a huge leaf; a non-present non-zero entry
 * is a swap (or migration) entry and never a directory link.
 */
export const x86_64_pgtable_format: gpt_format = gpt_format_define({
  name: 'x86_64',
  entry_bits: 64,
  leaf_levels: [1, 2, 3],
  pde_mask: _PAGE_PRESENT | _PAGE_PSE,
  pde_value: _PAGE_PRESENT,
  pde_shift: 12,
  pde_bits: _PAGE_TABLE,
  last_level: 3,
});

/* hmm_pt (v8): a directory entry is (slot << PAGE_SHIFT) | HMM_PDE_VALID. */
export const hmm_pt_format: gpt_format = gpt_format_define({
  name: 'hmm_pt',
  entry_bits: 64,
  leaf_levels: [],
  pde_mask: HMM_PDE_VALID,
  pde_value: HMM_PDE_VALID,
  pde_shift: 12,
  pde_bits: HMM_PDE_VALID,
});

/* 32-bit test format: bit 0 valid, bit 1 huge leaf, bits 2..11 flags. */
export const GPT_U32_VALID = 1;
export const GPT_U32_HUGE = 2;
export const gpt_u32_format: gpt_format = gpt_format_define({
  name: 'u32',
  entry_bits: 32,
  leaf_levels: [1, 2, 3, 4, 5],
  pde_mask: GPT_U32_VALID | GPT_U32_HUGE,
  pde_value: GPT_U32_VALID,
  pde_shift: 12,
  pde_bits: GPT_U32_VALID,
});

const registry = new Map<string, gpt_format>();

/**
 * gpt_format_register() - make a format findable by name (worker threads
 * attach by name: functions cannot cross threads).
 * Return: 0, or -EEXIST if another format already has that name.
 */
export function gpt_format_register(fmt: gpt_format): number {
  const cur = registry.get(fmt.name);
  if (cur !== undefined && cur !== fmt) return -EEXIST;
  registry.set(fmt.name, fmt);
  return 0;
}

/** gpt_format_find() - the registered format named @name, or null. */
export function gpt_format_find(name: string): gpt_format | null {
  return registry.get(name) ?? null;
}

/**
 * resetGptFormatRegistry() - forget every format but the shipped ones
 * (tests; drivers register theirs again when they load).
 */
export function resetGptFormatRegistry(): void {
  registry.clear();
  for (const f of [x86_64_pgtable_format, hmm_pt_format, gpt_u32_format]) registry.set(f.name, f);
}

resetGptFormatRegistry();
