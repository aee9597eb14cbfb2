/*
 * tools/hmm-sim/params.ts - the machine parameters a run can change:
 * `hmm-sim run --set key=value`, and a scenario's `boot` object.
 *
 * One table, printed by `hmm-sim run --help` and copied into the README:
 * boot parameters (the kernel command line and sysctls of mm/init.ts's
 * boot_params) and the cost constants of lib/sim/costs.ts. Sizes take a
 * K, M or G suffix (powers of 1024). A scenario's `boot` gives its own
 * defaults; --set overrides them.
 *
 * vram is not read by the dmirror test device (it grows by 16 MiB chunks
 * on demand, as lib/test_hmm.c's does); device drivers with a fixed
 * memory size read it from sim.params.vram.
 */
import type { boot_params } from '../../mm/init.js';
import type { thp_mode } from '../../include/linux/huge_mm.js';
import { cost_names, cost_get, cost_set } from '../../lib/sim/costs.js';

/** What a scenario's boot object and --set may name. */
export interface sim_params {
  ram: number;
  swap: number;
  thp: thp_mode;
  min_free_kbytes: number;
  hugepages_2m: number;
  hugepages_1g: number;
  movablecore: number;
  vram: number;
  /* cost constants, by their lower-case name (see cost_names()) */
  [cost: string]: number | string;
}

/** One row of the table: name, kind, default, what it sets. */
export interface param_row { key: string; kind: 'size' | 'count' | 'thp' | 'cost'; def: string; what: string }

export const param_table: readonly param_row[] = Object.freeze([
  { key: 'ram', kind: 'size', def: '64M', what: 'RAM size (mem=), rounded up to 4 MiB' },
  { key: 'swap', kind: 'size', def: '0', what: 'swap device size, swapped on at boot (0: no swap)' },
  { key: 'thp', kind: 'thp', def: 'madvise', what: 'transparent_hugepage=always|madvise|never' },
  { key: 'min_free_kbytes', kind: 'count', def: '0', what: 'vm.min_free_kbytes: the watermark reserve' },
  { key: 'hugepages_2m', kind: 'count', def: '0', what: 'hugepagesz=2M hugepages=N (hugetlb pool)' },
  { key: 'hugepages_1g', kind: 'count', def: '0', what: 'hugepagesz=1G hugepages=N (hugetlb pool)' },
  { key: 'movablecore', kind: 'size', def: '0', what: 'movablecore=: top of RAM given to ZONE_MOVABLE' },
  { key: 'vram', kind: 'size', def: '256M', what: 'device memory of drivers with a fixed size (sim.params.vram)' },
  ...cost_names().map((k): param_row => ({
    key: k, kind: 'cost', def: String(Math.round(cost_get(k) * 100) / 100),
    what: `lib/sim/costs.ts ${k.toUpperCase()}${k.endsWith('_ns') ? ' (ns)' : k.endsWith('_bw') ? ' (bytes/s)' : ''}`,
  })),
]);

/** parse_size() - "64M", "4096", "1G" -> bytes; NaN when malformed. */
export function parse_size(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(s.trim());
  if (m === null) return NaN;
  const mul = { '': 1, K: 1024, M: 1 << 20, G: 1 << 30 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Math.round(Number(m[1]) * mul);
}

/** default_params() - the table's defaults. */
export function default_params(): sim_params {
  const p: Record<string, number | string> = {};
  for (const r of param_table) p[r.key] = r.kind === 'thp' ? r.def : r.kind === 'size' ? parse_size(r.def) : Number(r.def);
  return p as sim_params;
}

/**
 * set_param() - parse @value for the table key @key into @p.
 * Return: null, or the error to print (unknown key, malformed value).
 */
export function set_param(p: sim_params, key: string, value: string): string | null {
  const row = param_table.find((r) => r.key === key);
  if (row === undefined) return `unknown parameter '${key}' (see the table in --help)`;
  if (row.kind === 'thp') {
    if (value !== 'always' && value !== 'madvise' && value !== 'never') return `thp takes always, madvise or never`;
    p.thp = value;
    return null;
  }
  const n = row.kind === 'size' ? parse_size(value) : Number(value);
  if (!Number.isFinite(n) || n < 0 || (row.kind === 'cost' && n <= 0)) return `bad value '${value}' for ${key}`;
  p[key] = n;
  return null;
}

/** boot_params_of() - the mm/init.ts boot_params for @p. */
export function boot_params_of(p: sim_params): boot_params {
  return {
    ram_bytes: p.ram, swap_bytes: p.swap, transparent_hugepage: p.thp, min_free_kbytes: p.min_free_kbytes,
    hugepages_2m: p.hugepages_2m, hugepages_1g: p.hugepages_1g, movablecore: p.movablecore,
  };
}

/**
 * apply_costs() - set every cost constant of @p (lib/sim/costs.ts); they
 * stay set for the rest of the process. Return: the names changed.
 */
export function apply_costs(p: sim_params): string[] {
  const changed: string[] = [];
  for (const k of cost_names()) {
    const v = p[k];
    if (typeof v === 'number' && v !== cost_get(k)) { cost_set(k, v); changed.push(k); }
  }
  return changed;
}

/** param_help() - the table as lines for --help. */
export function param_help(): string[] {
  return param_table.map((r) => `  ${r.key.padEnd(30)} ${r.def.padStart(12)}  ${r.what}`);
}
