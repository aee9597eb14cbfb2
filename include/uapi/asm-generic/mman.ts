/*
 * include/uapi/asm-generic/mman.ts - mmap, mprotect, madvise and mremap
 * flags as user space passes them.
 *
 * Models include/uapi/asm-generic/mman-common.h, mman.h and
 * include/uapi/linux/mman.h (x86-64 values).
 */
export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
export const PROT_GROWSDOWN = 0x01000000;
export const PROT_GROWSUP = 0x02000000;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_SHARED_VALIDATE = 0x03;
export const MAP_TYPE = 0x0f;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_NONBLOCK = 0x10000;
export const MAP_HUGETLB = 0x40000;
export const MAP_FIXED_NOREPLACE = 0x100000;
export const MAP_PEER_SHARED = 0x8000000;   /* GMEM RFC (not merged): memory CPU and attached devices share */

/*
 * MAP_HUGETLB page size: log2 of the size in bits 26..31 of the flags
 * (include/uapi/asm-generic/hugetlb_encode.h); 0 means the default size.
 */
export const MAP_HUGE_SHIFT = 26;
export const MAP_HUGE_MASK = 0x3f;
export const MAP_HUGE_2MB = 21 << MAP_HUGE_SHIFT;
export const MAP_HUGE_1GB = 30 << MAP_HUGE_SHIFT;

export const MAP_FAILED = -1;

export const MADV_NORMAL = 0;
export const MADV_RANDOM = 1;
export const MADV_SEQUENTIAL = 2;
export const MADV_WILLNEED = 3;
export const MADV_DONTNEED = 4;
export const MADV_FREE = 8;
export const MADV_REMOVE = 9;
export const MADV_DONTFORK = 10;
export const MADV_DOFORK = 11;
export const MADV_HUGEPAGE = 14;
export const MADV_PREFETCH = 26;            /* GMEM RFC, for hmadvise() only */
export const MADV_NOHUGEPAGE = 15;
export const MADV_COLD = 20;
export const MADV_PAGEOUT = 21;
export const MADV_COLLAPSE = 25;

export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;
