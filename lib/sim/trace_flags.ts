/*
 * lib/sim/trace_flags.ts - flag fields of trace events, decoded to names
 * as ftrace's __print_flags() and __print_symbolic() print them:
 * flags=VM_READ|VM_WRITE|VM_MAYREAD|VM_MAYWRITE rather than flags=0x33.
 *
 * A decoder is chosen by "event.field" first, then by field name alone:
 *
 *   vm_flags, mmap_region.flags              VM_*
 *   fault_flags, handle_mm_fault.flags       FAULT_FLAG_*
 *   handle_mm_fault.ret and other fault rets VM_FAULT_* (0 prints 0)
 *   hmm_pfn, default_flags, pfn_flags_mask   HMM_PFN_* (an hmm_pfns element: pfn|flags)
 *   src, dst, mpfn                           MIGRATE_PFN_* (a migrate pfn: pfn|flags)
 *   migrate_vma_setup.flags                  MIGRATE_VMA_SELECT_*
 *   prot                                     PROT_*
 *
 * Bits without a name print as a trailing hex part. The tables are built
 * on first use: this file is imported by the tracer, which modules of
 * include/ may reach while they are still being evaluated.
 */
import * as mm from '../../include/linux/mm.js';
import * as hmm from '../../include/linux/hmm.js';
import * as migrate from '../../include/linux/migrate.js';
import * as mman from '../../include/uapi/asm-generic/mman.js';

type bits = [number, string][];
type decoder = (v: number) => string;

/* every export of @mod whose name starts with @prefix and is a single bit */
function bit_table(mod: Record<string, unknown>, prefix: string, exclude: RegExp | null = null, desc = false): bits {
  const out: bits = [];
  for (const [k, v] of Object.entries(mod)) {
    if (!k.startsWith(prefix) || typeof v !== 'number' || v <= 0 || (v & (v - 1)) !== 0) continue;
    if (exclude !== null && exclude.test(k)) continue;
    if (!out.some(([b]) => b === v)) out.push([v, k]);
  }
  return out.sort((a, b) => (desc ? b[0] - a[0] : a[0] - b[0]));
}

/** print_flags() - @v as "A|B|0x40" over @table; "0" for no bit set. */
export function print_flags(v: number, table: bits): string {
  if (v === 0) return '0';
  const parts: string[] = [];
  let rest = v;
  for (const [b, name] of table) {
    if ((rest & b) !== 0) { parts.push(name); rest &= ~b; }
  }
  if (rest !== 0) parts.push(`0x${(rest >>> 0).toString(16)}`);
  return parts.join('|');
}

let decoders: Map<string, decoder> | null = null;

function build(): Map<string, decoder> {
  const vm = bit_table(mm, 'VM_', /^VM_(FAULT_|NONE|ACCESS|SPECIAL)/);
  const fault = bit_table(mm, 'FAULT_FLAG_', /DEFAULT/);
  const vm_fault = bit_table(mm, 'VM_FAULT_', /ERROR|HWPOISON_LARGE_MASK/);
  const hmm_bits = bit_table(hmm, 'HMM_PFN_', /REQ_|INOUT|ORDER|SHIFT/, true);   /* VALID is the top bit */
  const mig_bits = bit_table(migrate, 'MIGRATE_PFN_', /SHIFT/);
  const select = bit_table(migrate, 'MIGRATE_VMA_SELECT_');
  const prot = bit_table(mman, 'PROT_');
  const flags_of = (t: bits): decoder => (v) => print_flags(v, t);
  const hmm_pfn: decoder = (v) => {
    const f = Math.floor(v / 2 ** hmm.HMM_PFN_FLAGS_SHIFT), pfn = v % 2 ** hmm.HMM_PFN_FLAGS_SHIFT;
    const order = (f & hmm.HMM_PFN_ORDER_MASK) >> hmm.HMM_PFN_ORDER_SHIFT;
    return `0x${pfn.toString(16)}|${print_flags(f & ~hmm.HMM_PFN_ORDER_MASK, hmm_bits)}${order ? `|order=${order}` : ''}`;
  };
  const hmm_req: decoder = (v) => print_flags(v >= 2 ** hmm.HMM_PFN_FLAGS_SHIFT ? Math.floor(v / 2 ** hmm.HMM_PFN_FLAGS_SHIFT) : v, hmm_bits);
  const mpfn: decoder = (v) => {
    const shift = 2 ** migrate.MIGRATE_PFN_SHIFT;
    return `0x${Math.floor(v / shift).toString(16)}|${print_flags(v % shift, mig_bits)}`;
  };
  const m = new Map<string, decoder>([
    ['vm_flags', flags_of(vm)], ['mmap_region.flags', flags_of(vm)],
    ['fault_flags', flags_of(fault)], ['handle_mm_fault.flags', flags_of(fault)],
    ['hmm_pfn', hmm_pfn], ['default_flags', hmm_req], ['pfn_flags_mask', hmm_req],
    ['src', mpfn], ['dst', mpfn], ['mpfn', mpfn],
    ['migrate_vma_setup.flags', flags_of(select)],
    ['prot', flags_of(prot)],
  ]);
  for (const ev of ['handle_mm_fault', 'do_swap_page_device_private', 'do_huge_pmd_device_private', 'dmirror_devmem_fault',
    'hugetlb_fault', 'do_anonymous_page', 'do_wp_page']) m.set(`${ev}.ret`, flags_of(vm_fault));
  return m;
}

/**
 * trace_decode_field() - the decoded text of field @field of event
 * @event with value @v, or null when the field is not a flags field
 * (or @v is negative, an errno).
 */
export function trace_decode_field(event: string, field: string, v: number | bigint): string | null {
  decoders ??= build();
  const d = decoders.get(`${event}.${field}`) ?? decoders.get(field);
  if (d === undefined) return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) return null;
  return d(n);
}
