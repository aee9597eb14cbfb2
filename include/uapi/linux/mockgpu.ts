/*
 * include/uapi/linux/mockgpu.ts - what user space sees of the mock GPU:
 * /dev/mockgpu0, its ioctls and their argument blocks.
 *
 * No Linux twin (NVIDIA's UVM ABI is uvm_ioctl.h: UVM_INITIALIZE,
 * UVM_REGISTER_GPU_VASPACE, ...; a launch goes through the proprietary
 * driver). The shape here is the minimum a CUDA-like runtime needs over
 * malloc'd memory: open the device (one address space per open file, bound
 * to the opener's mm, as UVM_INITIALIZE binds a va_space), create a context
 * (a channel), launch a kernel, wait for it, read the counters.
 *
 * Every block is little-endian u64 fields, read with copy_from_user and
 * written back with copy_to_user on success.
 */

const IOC_WRITE = 1, IOC_READ = 2;
function _IOWR(type: number, nr: number, size: number): number {
  return (((IOC_READ | IOC_WRITE) << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}
const MOCKGPU_IOC_MAGIC = 0x47;     /* 'G' */

/* ---- kernels: access pattern x operation ---- */

/** Element i at base + i * elem (i < count). */
export const MOCKGPU_PATTERN_SEQUENTIAL = 0;
/** Element i at base + (i * stride) mod size. */
export const MOCKGPU_PATTERN_STRIDED = 1;
/** Element i at a seeded uniform random element of [base, base + size). */
export const MOCKGPU_PATTERN_RANDOM = 2;
/** Element i at base + idx[i] * elem, idx[] a u32 array at aux (read by the GPU). */
export const MOCKGPU_PATTERN_GATHER = 3;
export const mockgpu_pattern_names = ['sequential', 'strided', 'random', 'gather'] as const;

/** Read the element; its u32 words are added into the context's checksum. */
export const MOCKGPU_OP_READ = 0;
/** Store value into every u32 word of the element. */
export const MOCKGPU_OP_WRITE = 1;
/** Read then write: every u32 word += 1 (a write fault). */
export const MOCKGPU_OP_INC = 2;
/** Atomic add of 1 to the element's first u32 word (an atomic fault). */
export const MOCKGPU_OP_ATOMIC_INC = 3;
/** Per element, a seeded choice: write (probability write_pct %) or read. */
export const MOCKGPU_OP_MIX = 4;
export const mockgpu_op_names = ['read', 'write', 'inc', 'atomic_inc', 'mix'] as const;

/* ---- ioctls ---- */

/** struct mockgpu_ctx_args: { ctx (out) }. */
export const MOCKGPU_CTX_ARGS_SIZE = 8;
/** struct mockgpu_launch: see mockgpu_launch below. */
export const MOCKGPU_LAUNCH_SIZE = 13 * 8;
/** struct mockgpu_wait: { ctx, status (out, 0 or -errno of the launch), checksum (out) }. */
export const MOCKGPU_WAIT_SIZE = 3 * 8;

export const MOCKGPU_IOCTL_CTX_CREATE = _IOWR(MOCKGPU_IOC_MAGIC, 0x00, MOCKGPU_CTX_ARGS_SIZE);
export const MOCKGPU_IOCTL_CTX_DESTROY = _IOWR(MOCKGPU_IOC_MAGIC, 0x01, MOCKGPU_CTX_ARGS_SIZE);
export const MOCKGPU_IOCTL_LAUNCH = _IOWR(MOCKGPU_IOC_MAGIC, 0x02, MOCKGPU_LAUNCH_SIZE);
export const MOCKGPU_IOCTL_WAIT = _IOWR(MOCKGPU_IOC_MAGIC, 0x03, MOCKGPU_WAIT_SIZE);
/** Copy the per-GPU counters (mockgpu_stat_names order, u64 each) to arg. */
export const MOCKGPU_IOCTL_STATS = _IOWR(MOCKGPU_IOC_MAGIC, 0x04, 0);

/* ---- memory advice and explicit migration ---- */

/*
 * One family modelled on CUDA's cudaMemAdvise()/cudaMemPrefetchAsync(),
 * UVM's UVM_SET_PREFERRED_LOCATION, UVM_SET_ACCESSED_BY,
 * UVM_ENABLE_READ_DUPLICATION and UVM_MIGRATE (uvm_ioctl.h), and KFD's
 * AMDKFD_IOC_SVM SET_ATTR/GET_ATTR (kfd_ioctl.h): attributes belong to
 * ranges of the address space; setting one on part of a range splits it.
 * Processors are numbered as UVM's processor ids: the CPU is 0
 * (cudaCpuDeviceId, UVM_ID_CPU), mockgpuN is 1 + N.
 */
export const MOCKGPU_PROCESSOR_CPU = 0;
export const MOCKGPU_PROCESSOR_GPU0 = 1;
export const MOCKGPU_PROCESSOR_GPU1 = 2;
export const MOCKGPU_MAX_PROCESSORS = 3;
/** No preferred location (UVM_UNSET_PREFERRED_LOCATION; KFD: location undefined). */
export const MOCKGPU_PROCESSOR_NONE = -1;
/** GET_ATTR: the ranges of [base, base + length) disagree. */
export const MOCKGPU_PROCESSOR_MIXED = -2;

/* advice values, numbered as enum cudaMemoryAdvise */
export const MOCKGPU_ADVISE_SET_READ_MOSTLY = 1;
export const MOCKGPU_ADVISE_UNSET_READ_MOSTLY = 2;
export const MOCKGPU_ADVISE_SET_PREFERRED_LOCATION = 3;
export const MOCKGPU_ADVISE_UNSET_PREFERRED_LOCATION = 4;
export const MOCKGPU_ADVISE_SET_ACCESSED_BY = 5;
export const MOCKGPU_ADVISE_UNSET_ACCESSED_BY = 6;

/** struct mockgpu_advise: { base, length, advice (MOCKGPU_ADVISE_*), processor }. */
export const MOCKGPU_ADVISE_SIZE = 4 * 8;
/** struct mockgpu_migrate: { base, length, processor (destination), pages (out: pages moved) }. */
export const MOCKGPU_MIGRATE_SIZE = 4 * 8;
/**
 * struct mockgpu_attr: { base, length, then out: preferred (a processor,
 * NONE or MIXED), accessed_by (bit per processor set on every range),
 * read_mostly (1 when set on every range), nr_ranges (attribute ranges
 * that intersect) }. As KFD's GET_ATTR: the intersection over the ranges.
 */
export const MOCKGPU_ATTR_SIZE = 6 * 8;

/** Set one advice on [base, base + length). */
export const MOCKGPU_IOCTL_ADVISE = _IOWR(MOCKGPU_IOC_MAGIC, 0x05, MOCKGPU_ADVISE_SIZE);
/** Migrate [base, base + length) to a processor now (cudaMemPrefetchAsync, UVM_MIGRATE). */
export const MOCKGPU_IOCTL_MIGRATE = _IOWR(MOCKGPU_IOC_MAGIC, 0x06, MOCKGPU_MIGRATE_SIZE);
/** Read the attributes of [base, base + length). */
export const MOCKGPU_IOCTL_GET_ATTR = _IOWR(MOCKGPU_IOC_MAGIC, 0x07, MOCKGPU_ATTR_SIZE);

/**
 * struct mockgpu_launch - one kernel.
 * @ctx: context from CTX_CREATE
 * @pattern, @op: MOCKGPU_PATTERN_*, MOCKGPU_OP_*
 * @base, @size: the buffer (user VA), size in bytes, both multiples of @elem
 * @elem: bytes per access, a power of two from 4 to 4096 (a warp's
 *        coalesced access is 128 B)
 * @stride: STRIDED only, bytes between consecutive elements
 * @count: accesses (0: size / elem)
 * @aux: GATHER only, user VA of count u32 indices
 * @seed: RANDOM and MIX
 * @write_pct: MIX only, 0..100
 * @value: WRITE only, the u32 stored
 * @fence (out): the launch's sequence number in its context
 */
export interface mockgpu_launch {
  ctx: number; pattern: number; op: number; base: number; size: number; elem: number; stride: number;
  count: number; aux: number; seed: number; write_pct: number; value: number; fence: number;
}
const LAUNCH_FIELDS = ['ctx', 'pattern', 'op', 'base', 'size', 'elem', 'stride', 'count', 'aux', 'seed',
  'write_pct', 'value', 'fence'] as const;

/** mockgpu_u64s_encode() - little-endian u64 words of @vals. */
export function mockgpu_u64s_encode(vals: readonly number[]): Uint8Array {
  const b = new Uint8Array(vals.length * 8);
  const v = new DataView(b.buffer);
  vals.forEach((x, i) => v.setBigInt64(i * 8, BigInt(Math.trunc(x)), true));
  return b;
}

/** mockgpu_u64s_decode() - @n words of @b (signed, so -errno survives). */
export function mockgpu_u64s_decode(b: Uint8Array, n: number): number[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Number(v.getBigInt64(i * 8, true)));
  return out;
}

export function mockgpu_launch_encode(l: mockgpu_launch): Uint8Array {
  return mockgpu_u64s_encode(LAUNCH_FIELDS.map((k) => l[k]));
}

export function mockgpu_launch_decode(b: Uint8Array): mockgpu_launch {
  const w = mockgpu_u64s_decode(b, LAUNCH_FIELDS.length);
  const l = {} as Record<string, number>;
  LAUNCH_FIELDS.forEach((k, i) => { l[k] = w[i]!; });
  return l as unknown as mockgpu_launch;
}

/*
 * The per-GPU counters, in the order MOCKGPU_IOCTL_STATS writes them (UVM
 * keeps the same figures in /proc/driver/nvidia-uvm/gpus/UVM-GPU-.../
 * fault_stats and in its tools events).
 */
export const mockgpu_stat_names = [
  'gpu_faults',            /* fault packets the GPU wrote (GpuFault) */
  'faults_serviced',       /* distinct pages serviced after coalescing */
  'faults_duplicate',      /* packets merged into another of the same page */
  'fault_batches',         /* batches fetched by the bottom half */
  'replays',               /* GpuFaultReplay */
  'buffer_overflows',      /* packets lost to a full buffer (FaultBufferOverflow) */
  'fatal_faults',          /* FatalFault: contexts cancelled */
  'migrated_to_vram',      /* pages (Migration, to VID) */
  'migrated_to_sysmem',    /* pages (Migration, to SYS) */
  'mapped_remote',         /* pages mapped from system memory (MapRemote) */
  'cpu_faults',            /* CPU faults on VRAM pages (CpuFault) */
  'tlb_hits',
  'tlb_misses',
  'tlb_invalidates',
  'pt_updates',            /* GPU PTE writes executed */
  'commands',              /* commands executed by the channels */
  'launches',
  'vram_pages_used',       /* gauge: 4 KiB pages allocated now */
  /* the memory policies (Documentation/vm/hmm.txt, "GPU memory policies") */
  'prefetched_pages',      /* pages migrated by the tree prefetcher beyond the faulted ones */
  'thrashing_detected',    /* ThrashingDetected: pages found thrashing */
  'throttles',             /* ThrottlingStart: faults held off a thrashing page for a nap */
  'pins',                  /* pages pinned at their residency (the other processor maps them remotely) */
  'read_duplicates',       /* ReadDuplicate: pages copied to VRAM with the system copy kept */
  'read_dup_invalidates',  /* ReadDuplicateInvalidate: duplicates dropped (a write, or a CPU-side change) */
  'access_counter_notifications', /* AccessCounter: regions that crossed the threshold */
  'access_counter_migrations',    /* pages migrated because of a notification */
  'evictions',             /* root chunks emptied for an allocation (Eviction) */
  'evicted_pages',         /* pages moved VRAM -> RAM by eviction (also in migrated_to_sysmem) */
  'evict_retries',         /* eviction passes repeated for pages someone else held */
  'evict_aborts',          /* root chunks given up on after UVM_EVICT_MAX_TRIES passes */
  'evict_fallbacks',       /* allocations no eviction could satisfy: mapped remotely instead */
] as const;
export type mockgpu_stat_name = typeof mockgpu_stat_names[number];
export const MOCKGPU_NR_STATS = mockgpu_stat_names.length;
export const MOCKGPU_STATS_SIZE = MOCKGPU_NR_STATS * 8;
