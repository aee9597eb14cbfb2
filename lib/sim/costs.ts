/*
 * lib/sim/costs.ts - the cost model: every simulated duration, in one file.
 *
 * No Linux twin. Each constant is in nanoseconds (or bytes per second) and
 * cites where it comes from: a published figure (see
 * shared/reference/peers.md, section 4 "Anchor numbers"), a local
 * measurement, or an ASSUMPTION when no citable figure was found; the
 * assumptions are the first numbers to revisit. Code charges these with
 * charge() (lib/sim/clock.ts); nothing is charged implicitly.
 *
 * The simulated CPU is taken to run at 3 GHz when a source gives cycles.
 *
 * The constants are `let` so that a tool can change one for a run
 * (`hmm-sim --set pcie_bw=32e9`, through cost_set()); code reads them as
 * live bindings and never assigns them itself.
 */

/** Assumed CPU clock, for converting cycle counts: 3 GHz. ASSUMPTION. */
export const CPU_HZ = 3_000_000_000;

/** cyclesToNs() - @cycles at CPU_HZ, in ns. */
export function cyclesToNs(cycles: number): number {
  return (cycles * 1e9) / CPU_HZ;
}

/* ---- CPU-side memory management ---- */

/**
 * Anonymous zero-fill minor fault, end to end (trap, handle_mm_fault, PTE,
 * return): p50 1.4 us. Local measurement, kernel 6.18, 2-vCPU Xeon VM, THP
 * not active (peers.md s.4; p99 3.3 us). An independent blog measurement
 * gives p50 1.0 us on an i7 with 6.6.
 */
export let MINOR_FAULT_NS = 1_400;

/**
 * One software walk of a 4-level x86-64 page table: "more than 1000 CPU
 * cycles" (M. Penttila, migrate-on-fault v5 cover letter, 2026; peers.md
 * s.4). Taken as 1000 cycles at CPU_HZ.
 */
export let PAGE_TABLE_WALK_NS = cyclesToNs(1000);

/**
 * Zeroing one 4 KiB page (clear_page): 4096 B at SYSTEM_MEMCPY_BW.
 * Derived from an ASSUMPTION (see SYSTEM_MEMCPY_BW); consistent with the
 * local bulk populate rate of ~2.4 GB/s including fault overhead.
 */
export let PAGE_ZERO_NS = 410;

/** Writing one PTE (set_pte_at + accounting): 10 ns. ASSUMPTION. */
export let PTE_UPDATE_NS = 10;

/** Local TLB flush of one page (invlpg): 100 ns. ASSUMPTION. */
export let TLB_FLUSH_PAGE_NS = 100;

/**
 * TLB shootdown to other CPUs (IPI, remote invlpg, ack): 2 us per
 * flush_tlb_range() that needs one. ASSUMPTION (order of magnitude of
 * published IPI round trips on x86 servers).
 */
export let TLB_SHOOTDOWN_NS = 2_000;

/** Uncontended lock acquire + release (atomic RMW pair): 20 ns. ASSUMPTION. */
export let LOCK_ACQUIRE_NS = 20;

/** Context switch between kernel threads: 2 us. ASSUMPTION. */
export let CONTEXT_SWITCH_NS = 2_000;

/** System call entry and exit, no work (with mitigations): 100 ns. ASSUMPTION. */
export let SYSCALL_NS = 100;

/**
 * Single-core memcpy bandwidth in system memory: 10 GB/s. ASSUMPTION
 * (typical of one core on a current x86 server; not from peers.md).
 */
export let SYSTEM_MEMCPY_BW = 10e9;

/* ---- device side ---- */

/**
 * GPU far-fault service time, fault raised to replay: 45 us (66,645 core
 * cycles at 1481 MHz). UVMSmart GTX1080Ti simulator configuration
 * (peers.md s.4), widely reused in academic GPU simulators.
 */
export let GPU_FAR_FAULT_NS = 45_000;

/**
 * Host <-> device migration bandwidth: 16 GB/s per direction (PCIe 3.0
 * x16). UVMSmart configuration (peers.md s.4).
 */
export let PCIE_BW = 16e9;

/** GPU kernel launch latency: 150 us. UVMSmart configuration (peers.md s.4). */
export let KERNEL_LAUNCH_NS = 150_000;

/**
 * GPU fault batch size: 256 entries per batch (NVIDIA driver default,
 * uvm_gpu_replayable_faults.c; peers.md s.4). A count, not a time.
 */
export let GPU_FAULT_BATCH = 256;

/* ---- timeouts ---- */

/**
 * Budget for hmm_range_fault() retries while notifiers run: 1000 ms.
 * HMM_RANGE_DEFAULT_TIMEOUT in include/linux/hmm.h; mlx5 ODP waits the
 * same 1000 ms for notifiers (peers.md s.4).
 */
export let HMM_RANGE_DEFAULT_TIMEOUT_NS = 1_000_000_000;

/**
 * copy_cost_ns() - time to copy @bytes at @bytes_per_second.
 * @bytes: size of the transfer.
 * @bytes_per_second: bandwidth, e.g. PCIE_BW or SYSTEM_MEMCPY_BW.
 *
 * Return: ns, rounded up to a whole ns (0 for 0 bytes).
 */
export function copy_cost_ns(bytes: number, bytes_per_second: number): number {
  if (bytes <= 0) return 0;
  return Math.ceil((bytes * 1e9) / bytes_per_second);
}

/* ---- the mock GPU (drivers/gpu/mockgpu/) ---- */

/**
 * GPU core clock for converting GPU cycle counts: 1481 MHz, the GTX 1080 Ti
 * clock of the UVMSmart configuration (peers.md s.4).
 */
export const GPU_HZ = 1_481_000_000;

/** gpuCyclesToNs() - @cycles at GPU_HZ, in ns. */
export function gpuCyclesToNs(cycles: number): number {
  return (cycles * 1e9) / GPU_HZ;
}

/**
 * One GPU page-table walk after a TLB miss: 100 GPU cycles (UVMSmart
 * GTX1080Ti configuration, "page-table walk 100 cycles"; peers.md s.1.2).
 */
export let GPU_PT_WALK_NS = gpuCyclesToNs(100);

/** A GPU TLB hit: 1 GPU cycle. ASSUMPTION (an L1 TLB lookup is pipelined). */
export let GPU_TLB_HIT_NS = gpuCyclesToNs(1);

/**
 * Device memory bandwidth: 484 GB/s, the GTX 1080 Ti's GDDR5X (NVIDIA
 * product specification; the card the UVMSmart configuration models).
 * Charged for accesses a kernel makes to VRAM and for VRAM-side copies.
 */
export let VRAM_BW = 484e9;

/**
 * Latency of one command through the GPU's command queue: the host writes
 * the push into the ring, rings the doorbell, the front end fetches and
 * executes it and releases the semaphore: 2 us. ASSUMPTION (order of
 * magnitude of an empty cudaStreamSynchronize round trip on PCIe GPUs).
 */
export let GPU_CMD_LATENCY_NS = 2_000;

/**
 * GPU TLB invalidate (by VA range, with the membar that makes it visible
 * to every uTLB): 1 us. ASSUMPTION; it is issued through the command queue
 * and pays GPU_CMD_LATENCY_NS as well.
 */
export let GPU_TLB_INVALIDATE_NS = 1_000;

/** Writing one GPU PTE from a push (an inline memory write method): 10 ns. ASSUMPTION. */
export let GPU_PTE_WRITE_NS = 10;

/**
 * Fault interrupt to the bottom half running: the GPU writes the fault
 * packet, raises the interrupt, the top half schedules the bottom half:
 * 5 us. ASSUMPTION, chosen so that one fault's fixed costs (interrupt,
 * fetch, service, replay through the command queue) plus one 4 KiB PCIe
 * copy come to about 10-20 us, below the 45 us far-fault calibration
 * GPU_FAR_FAULT_NS which includes the SM stall and the host's page work.
 */
export let GPU_FAULT_INTERRUPT_NS = 5_000;

/** Reading one fault-buffer entry from the HW ring (an uncached PCIe read): 100 ns. ASSUMPTION. */
export let GPU_FAULT_FETCH_NS = 100;

/**
 * One ATS Translation Request of an SVA-bound device (drivers/iommu): the
 * PCIe round trip to the IOMMU plus its walk of the CPU page table, which
 * the device pays on every ATC miss: 1 us. ASSUMPTION (order of magnitude:
 * a non-posted PCIe read round trip plus a 4-level walk that mostly hits
 * the IOMMU's walk caches). A PRI page request pays GPU_FAULT_INTERRUPT_NS
 * for its queue interrupt and the ATC invalidation GPU_TLB_INVALIDATE_NS.
 */
export const IOMMU_ATS_TRANSLATION_NS = 1_000;

/* ---- RDMA NIC and ODP (drivers/infiniband) ---- */

/**
 * One-way wire + NIC pipeline latency of a packet between two ports of
 * one switch: 1 us. ASSUMPTION (order of published InfiniBand EDR/HDR
 * small-message half round trips).
 */
export let RDMA_WIRE_NS = 1_000;

/** Link bandwidth: 12.5 GB/s (100 Gb/s EDR). ASSUMPTION. */
export let RDMA_LINK_BW = 12.5e9;

/**
 * Servicing one ODP page-fault EQE, not counting the page work: interrupt,
 * work-queue hand-off to the mlx5_ib_page_fault kworker, the
 * PAGE_FAULT_RESUME command round trip: 20 us. ASSUMPTION: no vendor
 * figure; NP-RDMA (arXiv 2310.11062, peers.md s.1.1) puts a software
 * minor fault at +3.5-5.7 us and ODP far above it.
 */
export let ODP_PF_SERVICE_NS = 20_000;

/** One UMR post updating or zapping up to 512 MTT entries: 2 us. ASSUMPTION. */
export let MLX5_UMR_NS = 2_000;

/**
 * Creating a memory key (the CREATE_MKEY firmware command behind every
 * ibv_reg_mr, pinned or ODP): 10 us. ASSUMPTION (firmware command round
 * trips are in the microseconds to tens of microseconds).
 */
export let MLX5_CREATE_MKEY_NS = 10_000;

/* The tunable constants by their --set name (lower case), with setters. */
const cost_setters: Record<string, (v: number) => void> = {
  minor_fault_ns: (v) => { MINOR_FAULT_NS = v; },
  page_table_walk_ns: (v) => { PAGE_TABLE_WALK_NS = v; },
  page_zero_ns: (v) => { PAGE_ZERO_NS = v; },
  pte_update_ns: (v) => { PTE_UPDATE_NS = v; },
  tlb_flush_page_ns: (v) => { TLB_FLUSH_PAGE_NS = v; },
  tlb_shootdown_ns: (v) => { TLB_SHOOTDOWN_NS = v; },
  lock_acquire_ns: (v) => { LOCK_ACQUIRE_NS = v; },
  context_switch_ns: (v) => { CONTEXT_SWITCH_NS = v; },
  syscall_ns: (v) => { SYSCALL_NS = v; },
  system_memcpy_bw: (v) => { SYSTEM_MEMCPY_BW = v; },
  gpu_far_fault_ns: (v) => { GPU_FAR_FAULT_NS = v; },
  pcie_bw: (v) => { PCIE_BW = v; },
  kernel_launch_ns: (v) => { KERNEL_LAUNCH_NS = v; },
  gpu_fault_batch: (v) => { GPU_FAULT_BATCH = v; },
  hmm_range_default_timeout_ns: (v) => { HMM_RANGE_DEFAULT_TIMEOUT_NS = v; },
  rdma_wire_ns: (v) => { RDMA_WIRE_NS = v; },
  rdma_link_bw: (v) => { RDMA_LINK_BW = v; },
  odp_pf_service_ns: (v) => { ODP_PF_SERVICE_NS = v; },
  mlx5_umr_ns: (v) => { MLX5_UMR_NS = v; },
  mlx5_create_mkey_ns: (v) => { MLX5_CREATE_MKEY_NS = v; },
  gpu_pt_walk_ns: (v) => { GPU_PT_WALK_NS = v; },
  gpu_tlb_hit_ns: (v) => { GPU_TLB_HIT_NS = v; },
  vram_bw: (v) => { VRAM_BW = v; },
  gpu_cmd_latency_ns: (v) => { GPU_CMD_LATENCY_NS = v; },
  gpu_tlb_invalidate_ns: (v) => { GPU_TLB_INVALIDATE_NS = v; },
  gpu_pte_write_ns: (v) => { GPU_PTE_WRITE_NS = v; },
  gpu_fault_interrupt_ns: (v) => { GPU_FAULT_INTERRUPT_NS = v; },
  gpu_fault_fetch_ns: (v) => { GPU_FAULT_FETCH_NS = v; },
};

/** cost_names() - the names cost_set() takes, lower case (e.g. "pcie_bw"). */
export function cost_names(): string[] {
  return Object.keys(cost_setters);
}

/** cost_get() - the current value of the constant @name (a cost_names() entry). */
export function cost_get(name: string): number {
  const values: Record<string, number> = {
    minor_fault_ns: MINOR_FAULT_NS, page_table_walk_ns: PAGE_TABLE_WALK_NS, page_zero_ns: PAGE_ZERO_NS,
    pte_update_ns: PTE_UPDATE_NS, tlb_flush_page_ns: TLB_FLUSH_PAGE_NS, tlb_shootdown_ns: TLB_SHOOTDOWN_NS,
    lock_acquire_ns: LOCK_ACQUIRE_NS, context_switch_ns: CONTEXT_SWITCH_NS, syscall_ns: SYSCALL_NS,
    system_memcpy_bw: SYSTEM_MEMCPY_BW, gpu_far_fault_ns: GPU_FAR_FAULT_NS, pcie_bw: PCIE_BW,
    kernel_launch_ns: KERNEL_LAUNCH_NS, gpu_fault_batch: GPU_FAULT_BATCH,
    hmm_range_default_timeout_ns: HMM_RANGE_DEFAULT_TIMEOUT_NS,
    rdma_wire_ns: RDMA_WIRE_NS, rdma_link_bw: RDMA_LINK_BW, odp_pf_service_ns: ODP_PF_SERVICE_NS, mlx5_umr_ns: MLX5_UMR_NS,
    mlx5_create_mkey_ns: MLX5_CREATE_MKEY_NS,
    gpu_pt_walk_ns: GPU_PT_WALK_NS, gpu_tlb_hit_ns: GPU_TLB_HIT_NS, vram_bw: VRAM_BW,
    gpu_cmd_latency_ns: GPU_CMD_LATENCY_NS, gpu_tlb_invalidate_ns: GPU_TLB_INVALIDATE_NS, gpu_pte_write_ns: GPU_PTE_WRITE_NS,
    gpu_fault_interrupt_ns: GPU_FAULT_INTERRUPT_NS, gpu_fault_fetch_ns: GPU_FAULT_FETCH_NS,
  };
  const v = values[name];
  if (v === undefined) throw new RangeError(`no cost constant '${name}'`);
  return v;
}

/**
 * cost_set() - set the constant @name to @value for the rest of the run.
 * @name: a cost_names() entry. @value: finite and > 0.
 * Return: 0, or -EINVAL (22) for an unknown name or a bad value.
 */
export function cost_set(name: string, value: number): number {
  const set = cost_setters[name];
  if (set === undefined || !Number.isFinite(value) || value <= 0) return -22;
  set(value);
  return 0;
}
