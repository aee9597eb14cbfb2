/*
 * include/uapi/linux/test_hmm.ts - the user-space ABI of the dmirror test
 * driver (lib/test_hmm.ts).
 *
 * Follows lib/test_hmm_uapi.h of Linux (a private uapi header: Linux keeps
 * it next to the driver, not under include/uapi/; the self-tests include it
 * from there). What user space sees, with Linux's names and values:
 *
 *  struct hmm_dmirror_cmd: five __u64, 40 bytes, little-endian, passed by
 *  address to every ioctl (the driver copies it in with copy_from_user and,
 *  on success only, back out with copy_to_user):
 *
 *     offset  0   addr     in   page-aligned start of the range to mirror
 *     offset  8   ptr      in   user buffer: data in/out, or 1 byte/page (SNAPSHOT)
 *     offset 16   npages   in   pages in the range; the flag word for FLAGS
 *     offset 24   cpages   out  pages handled (meaning per command, see below)
 *     offset 32   faults   out  device fault rounds (READ and WRITE only)
 *
 *  Ioctl numbers are _IOWR('H', nr, struct hmm_dmirror_cmd), computed here
 *  with the asm-generic _IOC encoding (x86-64, arm64, riscv):
 *
 *     31 30 29            16 15         8 7          0
 *    +-----+----------------+------------+------------+
 *    | dir |      size      |    type    |     nr     |
 *    +-----+----------------+------------+------------+
 *     dir = 3 (read|write), size = 40 (0x28), type = 'H' (0x48)
 *     so HMM_DMIRROR_READ = 0xC0284800 and each command adds its nr.
 *
 *  Snapshot bytes (HMM_DMIRROR_PROT_*): high nibble = page kind, low nibble
 *  = access and mapping size; 0xFF (error) and 0x00 (nothing visible) are
 *  whole-byte values. See Documentation/vm/hmm.txt, Part 7.
 */

/* ---- asm-generic ioctl encoding (include/uapi/asm-generic/ioctl.h) ---- */

export const _IOC_NRBITS = 8;
export const _IOC_TYPEBITS = 8;
export const _IOC_SIZEBITS = 14;
export const _IOC_NRSHIFT = 0;
export const _IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS;
export const _IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS;
export const _IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS;
export const _IOC_NONE = 0;
export const _IOC_WRITE = 1;
export const _IOC_READ = 2;

/** _IOC() - encode an ioctl number; the result is an unsigned 32-bit value. */
export function _IOC(dir: number, type: number, nr: number, size: number): number {
  return ((dir << _IOC_DIRSHIFT) | (type << _IOC_TYPESHIFT) | (nr << _IOC_NRSHIFT) |
    (size << _IOC_SIZESHIFT)) >>> 0;
}

/** _IOWR() - an ioctl that copies @size bytes in and back out. @type is a character code. */
export function _IOWR(type: string, nr: number, size: number): number {
  return _IOC(_IOC_READ | _IOC_WRITE, type.charCodeAt(0), nr, size);
}

/** _IOC_NR() - the command number inside an encoded ioctl. */
export function _IOC_NR(cmd: number): number {
  return (cmd >>> _IOC_NRSHIFT) & ((1 << _IOC_NRBITS) - 1);
}

/* ---- struct hmm_dmirror_cmd ---- */

/**
 * struct hmm_dmirror_cmd - the command block, decoded. Fields are u64 in
 * memory; they are bigints here so that the driver's front-door overflow
 * check (addr + npages * PAGE_SIZE wraps) is computed on 64 bits exactly.
 */
export interface hmm_dmirror_cmd {
  addr: bigint;      /* in: start address of the range, page aligned */
  ptr: bigint;       /* in: user buffer the data is copied to or from */
  npages: bigint;    /* in: number of pages; FLAGS: the new flag word */
  cpages: bigint;    /* out: pages handled */
  faults: bigint;    /* out: device fault rounds */
}

export const HMM_DMIRROR_CMD_OFF_ADDR = 0;
export const HMM_DMIRROR_CMD_OFF_PTR = 8;
export const HMM_DMIRROR_CMD_OFF_NPAGES = 16;
export const HMM_DMIRROR_CMD_OFF_CPAGES = 24;
export const HMM_DMIRROR_CMD_OFF_FAULTS = 32;
/** sizeof(struct hmm_dmirror_cmd): 5 x __u64. */
export const HMM_DMIRROR_CMD_SIZE = 40;

/** hmm_dmirror_cmd_decode() - read a command block from its 40 bytes. */
export function hmm_dmirror_cmd_decode(b: Uint8Array): hmm_dmirror_cmd {
  const v = new DataView(b.buffer, b.byteOffset, HMM_DMIRROR_CMD_SIZE);
  return {
    addr: v.getBigUint64(HMM_DMIRROR_CMD_OFF_ADDR, true),
    ptr: v.getBigUint64(HMM_DMIRROR_CMD_OFF_PTR, true),
    npages: v.getBigUint64(HMM_DMIRROR_CMD_OFF_NPAGES, true),
    cpages: v.getBigUint64(HMM_DMIRROR_CMD_OFF_CPAGES, true),
    faults: v.getBigUint64(HMM_DMIRROR_CMD_OFF_FAULTS, true),
  };
}

/** hmm_dmirror_cmd_encode() - the 40 bytes of a command block (values taken modulo 2^64). */
export function hmm_dmirror_cmd_encode(cmd: hmm_dmirror_cmd): Uint8Array {
  const b = new Uint8Array(HMM_DMIRROR_CMD_SIZE);
  const v = new DataView(b.buffer);
  v.setBigUint64(HMM_DMIRROR_CMD_OFF_ADDR, BigInt.asUintN(64, cmd.addr), true);
  v.setBigUint64(HMM_DMIRROR_CMD_OFF_PTR, BigInt.asUintN(64, cmd.ptr), true);
  v.setBigUint64(HMM_DMIRROR_CMD_OFF_NPAGES, BigInt.asUintN(64, cmd.npages), true);
  v.setBigUint64(HMM_DMIRROR_CMD_OFF_CPAGES, BigInt.asUintN(64, cmd.cpages), true);
  v.setBigUint64(HMM_DMIRROR_CMD_OFF_FAULTS, BigInt.asUintN(64, cmd.faults), true);
  return b;
}

/* ---- the commands ---- */

/* Expose the address space of the calling process through the device file */
export const HMM_DMIRROR_READ = _IOWR('H', 0x00, HMM_DMIRROR_CMD_SIZE);              /* 0xC0284800 */
export const HMM_DMIRROR_WRITE = _IOWR('H', 0x01, HMM_DMIRROR_CMD_SIZE);             /* 0xC0284801 */
export const HMM_DMIRROR_MIGRATE_TO_DEV = _IOWR('H', 0x02, HMM_DMIRROR_CMD_SIZE);    /* 0xC0284802 */
export const HMM_DMIRROR_MIGRATE_TO_SYS = _IOWR('H', 0x03, HMM_DMIRROR_CMD_SIZE);    /* 0xC0284803 */
export const HMM_DMIRROR_SNAPSHOT = _IOWR('H', 0x04, HMM_DMIRROR_CMD_SIZE);          /* 0xC0284804 */
export const HMM_DMIRROR_EXCLUSIVE = _IOWR('H', 0x05, HMM_DMIRROR_CMD_SIZE);         /* 0xC0284805 */
export const HMM_DMIRROR_CHECK_EXCLUSIVE = _IOWR('H', 0x06, HMM_DMIRROR_CMD_SIZE);   /* 0xC0284806 */
export const HMM_DMIRROR_RELEASE = _IOWR('H', 0x07, HMM_DMIRROR_CMD_SIZE);           /* 0xC0284807 */
export const HMM_DMIRROR_FLAGS = _IOWR('H', 0x08, HMM_DMIRROR_CMD_SIZE);             /* 0xC0284808 */
/* under review upstream; defined in the header, not handled by the driver (-EINVAL) */
export const HMM_DMIRROR_READ_UNLOCKABLE = _IOWR('H', 0x09, HMM_DMIRROR_CMD_SIZE);   /* 0xC0284809 */

/** The one flag of HMM_DMIRROR_FLAGS: fail the next device or RAM allocation of a migration, once. */
export const HMM_DMIRROR_FLAG_FAIL_ALLOC = 1n << 0n;

/* ---- SNAPSHOT byte codes ---- */

export const HMM_DMIRROR_PROT_ERROR = 0xff;              /* no legal view: hole, PROT_NONE, VM_IO/VM_PFNMAP */
export const HMM_DMIRROR_PROT_NONE = 0x00;               /* nothing visible (empty, swapped, foreign device page) */
export const HMM_DMIRROR_PROT_READ = 0x01;               /* present, read-only */
export const HMM_DMIRROR_PROT_WRITE = 0x02;              /* present, writable */
export const HMM_DMIRROR_PROT_PMD = 0x04;                /* mapped by a PMD-sized entry */
export const HMM_DMIRROR_PROT_PUD = 0x08;                /* mapped by a PUD-sized entry */
export const HMM_DMIRROR_PROT_ZERO = 0x10;               /* the shared zero page */
export const HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20;  /* device-private page of this device */
export const HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30; /* device-private page of another device */
export const HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL = 0x40; /* device-coherent page of this device */
export const HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE = 0x50; /* device-coherent page of another device */

/* ---- device memory types (0 is reserved to catch uninitialised fields) ---- */

export const HMM_DMIRROR_MEMORY_DEVICE_PRIVATE = 1;
export const HMM_DMIRROR_MEMORY_DEVICE_COHERENT = 2;

/** hmm_dmirror_cmd_name() - the symbolic name of a command, for traces and test output. */
export function hmm_dmirror_cmd_name(cmd: number): string {
  const names: Record<number, string> = {
    [HMM_DMIRROR_READ]: 'READ', [HMM_DMIRROR_WRITE]: 'WRITE', [HMM_DMIRROR_MIGRATE_TO_DEV]: 'MIGRATE_TO_DEV',
    [HMM_DMIRROR_MIGRATE_TO_SYS]: 'MIGRATE_TO_SYS', [HMM_DMIRROR_SNAPSHOT]: 'SNAPSHOT',
    [HMM_DMIRROR_EXCLUSIVE]: 'EXCLUSIVE', [HMM_DMIRROR_CHECK_EXCLUSIVE]: 'CHECK_EXCLUSIVE',
    [HMM_DMIRROR_RELEASE]: 'RELEASE', [HMM_DMIRROR_FLAGS]: 'FLAGS',
    [HMM_DMIRROR_READ_UNLOCKABLE]: 'READ_UNLOCKABLE',
  };
  return names[cmd] ?? `0x${(cmd >>> 0).toString(16)}`;
}
