/*
 * include/uapi/linux/hmm_dummy.ts - what user space sees of the 2015 HMM
 * dummy driver (drivers/char/hmm_dummy.ts): device nodes, ioctls, structs.
 *
 * Follows include/uapi/linux/hmm_dummy.h as Glisse's test suite carried it
 * (header v2, August 2015: device counters and MIGRATE_TO). Every struct is
 * 16 little-endian u64 = 128 bytes, passed by address and copied back whole
 * (also on failure, but not when copying in failed):
 *
 *   struct hmm_dummy_read / struct hmm_dummy_write
 *     off   0  address             in   virtual address in the mirrored mm
 *     off   8  size                in   bytes
 *     off  16  ptr                 in   user buffer: READ destination, WRITE source
 *     off  24  nsys_pages          out  copy steps that hit system memory
 *     off  32  nfaulted_sys_pages  out  entries the populate callback filled (refaults)
 *     off  40  ndev_pages          out  copy steps that hit device memory
 *     off  48  nfaulted_dev_pages  out  always 0 for READ/WRITE
 *     off  56  reserved[9]
 *
 *   struct hmm_dummy_migrate
 *     off   0  address             in   start (rounded down to a page)
 *     off   8  size                in   bytes (end rounded up)
 *     off  16  nfaulted_sys_pages  --   never written: comes back as it went in
 *     off  24  nfaulted_dev_pages  out  pages copied to device memory
 *     off  32  reserved[12]
 *
 * Ioctl numbers use the asm-generic encoding (include/uapi/linux/test_hmm.ts
 * draws it): type 'H', size 128 (0x80) for the three with a struct.
 *
 * Nodes: /dev/hmm_dummy_device<d><m>, d = device 0..1 (the 2014 load script
 * made nodes for two devices), m = minor 0..3; one minor is one mirror slot.
 */
import { _IOC, _IOC_NONE, _IOWR } from './test_hmm.js';

export const HMM_DUMMY_MAX_DEVICES = 4;
export const HMM_DUMMY_MAX_MIRRORS = 4;
/* fake device memory per device: 32 MiB = 8192 pages */
export const HMM_DUMMY_RMEM_SIZE = 32 << 20;

export const HMM_DUMMY_STRUCT_SIZE = 128;
export const HMM_DUMMY_EXPOSE_MM = _IOC(_IOC_NONE, 'H'.charCodeAt(0), 0x00, 0);           /* 0x00004800 */
export const HMM_DUMMY_READ = _IOWR('H', 0x01, HMM_DUMMY_STRUCT_SIZE);                      /* 0xC0804801 */
export const HMM_DUMMY_WRITE = _IOWR('H', 0x02, HMM_DUMMY_STRUCT_SIZE);                     /* 0xC0804802 */
export const HMM_DUMMY_MIGRATE_TO = _IOWR('H', 0x03, HMM_DUMMY_STRUCT_SIZE);                /* 0xC0804803 */

/** struct hmm_dummy_read / struct hmm_dummy_write (same layout). */
export interface hmm_dummy_rw {
  address: number;
  size: number;
  ptr: number;
  nsys_pages: number;
  nfaulted_sys_pages: number;
  ndev_pages: number;
  nfaulted_dev_pages: number;
}

/** struct hmm_dummy_migrate. */
export interface hmm_dummy_migrate {
  address: number;
  size: number;
  nfaulted_sys_pages: number;
  nfaulted_dev_pages: number;
}

const RW_FIELDS = ['address', 'size', 'ptr', 'nsys_pages', 'nfaulted_sys_pages', 'ndev_pages', 'nfaulted_dev_pages'] as const;
const MIG_FIELDS = ['address', 'size', 'nfaulted_sys_pages', 'nfaulted_dev_pages'] as const;

function get64(b: Uint8Array, i: number): number {
  return Number(new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(i * 8, true));
}
function put64(b: Uint8Array, i: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setBigUint64(i * 8, BigInt(v), true);
}

/** hmm_dummy_rw_decode() - the fields of a 128-byte READ/WRITE struct. */
export function hmm_dummy_rw_decode(b: Uint8Array): hmm_dummy_rw {
  const o = {} as Record<string, number>;
  RW_FIELDS.forEach((f, i) => { o[f] = get64(b, i); });
  return o as unknown as hmm_dummy_rw;
}

/** hmm_dummy_rw_encode() - write @s into the 128-byte @b (reserved words untouched). */
export function hmm_dummy_rw_encode(b: Uint8Array, s: hmm_dummy_rw): void {
  RW_FIELDS.forEach((f, i) => put64(b, i, s[f]));
}

export function hmm_dummy_migrate_decode(b: Uint8Array): hmm_dummy_migrate {
  const o = {} as Record<string, number>;
  MIG_FIELDS.forEach((f, i) => { o[f] = get64(b, i); });
  return o as unknown as hmm_dummy_migrate;
}

export function hmm_dummy_migrate_encode(b: Uint8Array, s: hmm_dummy_migrate): void {
  MIG_FIELDS.forEach((f, i) => put64(b, i, s[f]));
}

/** hmm_dummy_path() - the node of device @d, minor @m. */
export function hmm_dummy_path(d: number, m: number): string {
  return `/dev/hmm_dummy_device${d}${m}`;
}
