/*
 * include/linux/mockgpu.ts - the mock GPU's hardware formats: its page
 * table entry, its replayable fault packet, access types, replay policies,
 * tools events, and the driver's lock order.
 *
 * The driver is drivers/gpu/mockgpu/ (one file per NVIDIA UVM twin:
 * uvm_pmm_gpu, uvm_mmu, uvm_channel, uvm_gpu_replayable_faults, uvm_hmm,
 * uvm_tools); what user space sees is include/uapi/linux/mockgpu.ts; the
 * walk-through is Documentation/vm/hmm.txt, "The mock GPU".
 *
 * The device page table is a third entry format on lib/gpt, beside the
 * CPU's (x86_64) and HMM v8's hmm_pt: the engine walks all three, each
 * hardware keeps its own bits. A leaf (a 64-bit GPU PTE, kept below 2^53
 * as every gpt entry):
 *
 *   52                             12 11        5   4      3     2  1    0
 *  +---------------------------------+----------+------+-----+------+-----+
 *  |  physical frame number (PFN)    | reserved |ATOMIC|WRITE|APERT.|VALID|
 *  +---------------------------------+----------+------+-----+------+-----+
 *
 *   VALID    the entry translates (a read is always allowed)
 *   APERTURE 2 bits: 0 VRAM (PFN = VRAM offset >> 12), 1 SYS (PFN = the
 *            system page's bus address >> 12; no IOMMU: the CPU pfn),
 *            2 PEER (another GPU's VRAM; reserved for the next issue)
 *   WRITE    stores allowed
 *   ATOMIC   atomics allowed (UVM maps atomics separately: system-memory
 *            atomics over PCIe are not always coherent)
 * A directory entry is (child slot << 12) | VALID; leaves live only at the
 * last level (no 2 MiB or 64 KiB GPU pages yet: simplified).
 *
 * A replayable fault packet (uvm_fault_buffer_entry_t, reduced) is one slot
 * of the fault buffer's typed arrays:
 *   va        faulting address, page aligned
 *   access    MOCKGPU_FAULT_ACCESS_* (READ < WRITE < ATOMIC: intrusiveness)
 *   ctx       the context (UVM: instance pointer) that faulted
 *   sm, warp  the stalled unit (UVM: uTLB id, GPC/TPC client id)
 *   ts        simulated ns at which the GPU wrote it
 *
 * Lock order (outermost first):
 *   mmap_lock (read)  ->  uvm_va_space.mutex  ->  (nothing: channels and
 *   the fault buffer are lock-free in this model, single-CPU interleaving)
 * The interval-notifier callback takes uvm_va_space.mutex and may then
 * wait for a channel fence; nothing that holds uvm_va_space.mutex waits
 * for the notifier.
 */

/* ---- GPU PTE ---- */

export const MOCKGPU_PTE_VALID = 1 << 0;
export const MOCKGPU_PTE_APERTURE_SHIFT = 1;
export const MOCKGPU_PTE_APERTURE_MASK = 3 << MOCKGPU_PTE_APERTURE_SHIFT;
export const MOCKGPU_PTE_WRITE = 1 << 3;
export const MOCKGPU_PTE_ATOMIC = 1 << 4;
/* device-only attributes (buffer objects, mockgpu_bo.ts): the page walker carries them, the CPU PTE has no such bits */
export const MOCKGPU_PTE_KIND_COMPRESSED = 1 << 5;
export const MOCKGPU_PTE_UNCACHED = 1 << 6;
export const MOCKGPU_PTE_PFN_SHIFT = 12;
/** Directory entries carry VALID only (format descriptor in uvm_mmu.ts). */
export const MOCKGPU_PDE_VALID = MOCKGPU_PTE_VALID;

/* UVM_APERTURE_VID / UVM_APERTURE_SYS / UVM_APERTURE_PEER_* */
export const UVM_APERTURE_VID = 0;
export const UVM_APERTURE_SYS = 1;
export const UVM_APERTURE_PEER = 2;
export const uvm_aperture_names = ['VID', 'SYS', 'PEER'] as const;

const PFN_MUL = 2 ** MOCKGPU_PTE_PFN_SHIFT;

/**
 * mockgpu_pte_make() - a valid leaf.
 * @aperture: UVM_APERTURE_*; @pfn: frame number in that aperture;
 * @write, @atomic: permissions beyond read.
 */
export function mockgpu_pte_make(aperture: number, pfn: number, write: boolean, atomic: boolean): number {
  return pfn * PFN_MUL + MOCKGPU_PTE_VALID + (aperture << MOCKGPU_PTE_APERTURE_SHIFT)
    + (write ? MOCKGPU_PTE_WRITE : 0) + (atomic ? MOCKGPU_PTE_ATOMIC : 0);
}
export function mockgpu_pte_valid(e: number): boolean { return (e & MOCKGPU_PTE_VALID) !== 0; }
export function mockgpu_pte_write(e: number): boolean { return (e & MOCKGPU_PTE_WRITE) !== 0; }
export function mockgpu_pte_atomic(e: number): boolean { return (e & MOCKGPU_PTE_ATOMIC) !== 0; }
export function mockgpu_pte_aperture(e: number): number {
  return (e & MOCKGPU_PTE_APERTURE_MASK) >> MOCKGPU_PTE_APERTURE_SHIFT;
}
export function mockgpu_pte_pfn(e: number): number { return Math.floor(e / PFN_MUL); }

/** mockgpu_pte_decode() - "SYS pfn=0x12 RWA" for traces and tests. */
export function mockgpu_pte_decode(e: number): string {
  if (!mockgpu_pte_valid(e)) return 'invalid';
  return `${uvm_aperture_names[mockgpu_pte_aperture(e)] ?? '?'} pfn=0x${mockgpu_pte_pfn(e).toString(16)} `
    + `R${mockgpu_pte_write(e) ? 'W' : '-'}${mockgpu_pte_atomic(e) ? 'A' : '-'}`;
}

/* ---- fault packets ---- */

/* uvm_fault_access_type_t, ordered by intrusiveness (the coalescing rule keeps the maximum) */
export const MOCKGPU_FAULT_ACCESS_READ = 1;
export const MOCKGPU_FAULT_ACCESS_WRITE = 2;
export const MOCKGPU_FAULT_ACCESS_ATOMIC = 3;
export const mockgpu_fault_access_names = ['PREFETCH', 'READ', 'WRITE', 'ATOMIC'] as const;

/** mockgpu_pte_allows() - does leaf @e permit an access of type @access? */
export function mockgpu_pte_allows(e: number, access: number): boolean {
  if (!mockgpu_pte_valid(e)) return false;
  if (access === MOCKGPU_FAULT_ACCESS_ATOMIC) return mockgpu_pte_atomic(e);
  if (access === MOCKGPU_FAULT_ACCESS_WRITE) return mockgpu_pte_write(e);
  return true;
}

/* ---- replay policies (uvm_perf_fault_replay_policy_t) ---- */

/** Replay after each VA block is serviced. */
export const UVM_PERF_FAULT_REPLAY_POLICY_BLOCK = 0;
/** Replay after each batch. */
export const UVM_PERF_FAULT_REPLAY_POLICY_BATCH = 1;
/** Flush the buffer (drop entries already known), then replay, after each batch. The default. */
export const UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH = 2;
/** Replay once, after the whole buffer has been drained. */
export const UVM_PERF_FAULT_REPLAY_POLICY_ONCE = 3;
export const uvm_replay_policy_names = ['BLOCK', 'BATCH', 'BATCH_FLUSH', 'ONCE'] as const;

/* ---- addresses ---- */

/** UVM_VA_BLOCK_BITS: faults are serviced per 2 MiB VA block. */
export const UVM_VA_BLOCK_BITS = 21;
export const UVM_VA_BLOCK_SIZE = 2 ** UVM_VA_BLOCK_BITS;
/** UVM_CHUNK_SIZE_MAX: a PMM root chunk, 2 MiB. */
export const UVM_CHUNK_SIZE_2M = 2 * 1024 * 1024;
/** UVM_CHUNK_SIZE_64K: the big-page size root chunks split into first. */
export const UVM_CHUNK_SIZE_64K = 64 * 1024;
/** UVM_CHUNK_SIZE_4K: the smallest chunk, one device-private page. */
export const UVM_CHUNK_SIZE_4K = 4096;

/* ---- tools events (UvmEventType*, uvm_types.h), as trace event names ---- */

export const UvmEventTypeGpuFault = 'GpuFault';
export const UvmEventTypeGpuFaultReplay = 'GpuFaultReplay';
export const UvmEventTypeFaultBufferOverflow = 'FaultBufferOverflow';
export const UvmEventTypeFatalFault = 'FatalFault';
export const UvmEventTypeMigration = 'Migration';
export const UvmEventTypeMapRemote = 'MapRemote';
export const UvmEventTypeCpuFault = 'CpuFault';
/* the memory policies (drivers/gpu/mockgpu/uvm_perf_*.ts, uvm_va_policy.ts) */
export const UvmEventTypeReadDuplicate = 'ReadDuplicate';
export const UvmEventTypeReadDuplicateInvalidate = 'ReadDuplicateInvalidate';
export const UvmEventTypeThrashingDetected = 'ThrashingDetected';
export const UvmEventTypeThrottlingStart = 'ThrottlingStart';
export const UvmEventTypeThrottlingEnd = 'ThrottlingEnd';
export const UvmEventTypeAccessCounter = 'AccessCounter';
/* the "cause" field of a Migration event (UvmEventMigrationCause*) */
export const UvmEventMigrationCauseUser = 'user';
export const UvmEventMigrationCausePrefetch = 'prefetch';
export const UvmEventMigrationCauseAccessCounters = 'access_counters';
export const UvmEventTypeEviction = 'Eviction';
