/*
 * include/uapi/linux/mockgpu_drm.ts - the ABI of /dev/mockgpu_drm0, the
 * mock GPU's buffer-object interface (drivers/gpu/mockgpu/mockgpu_bo.ts):
 * the way graphics drivers manage a GPU address space that does not
 * mirror the CPU's (DRM GEM objects and a GPU VM with bind/unbind, as
 * drm_gpuvm and amdgpu's VM ioctls do; shape ours, names DRM-like).
 *
 * Blocks are little-endian u64 fields (mockgpu_u64s_encode/decode).
 *   GEM_CREATE  { npages, handle (out) }            a BO with its own VRAM pages
 *   GEM_PWRITE  { handle, offset, size, user_ptr }  copy user bytes into the BO
 *   GEM_CLOSE   { handle }                          drop the handle (pages live while bound)
 *   VM_ALLOC    { size, va (out) }                  reserve a GPU VA range (no CPU mapping)
 *   VM_BIND     { va, handle, bo_page, npages, flags }  map BO pages at va, page by page
 *   VM_UNBIND   { va, npages }                      unmap
 * Errors: -EINVAL (unknown handle, a range outside a VM_ALLOC range, BO
 * pages out of range, unknown flags), -ENOMEM (VRAM or VA space full),
 * -EFAULT (copy).
 */
function _IOWR(type: number, nr: number, size: number): number {
  return ((3 << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}
const MOCKGPU_DRM_IOC_MAGIC = 0x64;     /* 'd', as DRM */

/* VM_BIND flags: permission and the device-only PTE attributes the CPU page table has no bits for */
export const MOCKGPU_BIND_WRITE = 1 << 0;
export const MOCKGPU_BIND_COMPRESSED = 1 << 1;    /* colour/depth compression (PTE kind) */
export const MOCKGPU_BIND_UNCACHED = 1 << 2;      /* bypass the GPU L2 */
export const MOCKGPU_BIND_FLAGS = MOCKGPU_BIND_WRITE | MOCKGPU_BIND_COMPRESSED | MOCKGPU_BIND_UNCACHED;

export const MOCKGPU_DRM_GEM_CREATE = _IOWR(MOCKGPU_DRM_IOC_MAGIC, 0x40, 2 * 8);
export const MOCKGPU_DRM_GEM_PWRITE = _IOWR(MOCKGPU_DRM_IOC_MAGIC, 0x41, 4 * 8);
export const MOCKGPU_DRM_GEM_CLOSE = _IOWR(MOCKGPU_DRM_IOC_MAGIC, 0x42, 1 * 8);
export const MOCKGPU_DRM_VM_ALLOC = _IOWR(MOCKGPU_DRM_IOC_MAGIC, 0x43, 2 * 8);
export const MOCKGPU_DRM_VM_BIND = _IOWR(MOCKGPU_DRM_IOC_MAGIC, 0x44, 5 * 8);
export const MOCKGPU_DRM_VM_UNBIND = _IOWR(MOCKGPU_DRM_IOC_MAGIC, 0x45, 2 * 8);

/** The u64 fields of each ioctl's block. */
export const mockgpu_drm_fields: Readonly<Record<number, number>> = Object.freeze({
  [MOCKGPU_DRM_GEM_CREATE]: 2, [MOCKGPU_DRM_GEM_PWRITE]: 4, [MOCKGPU_DRM_GEM_CLOSE]: 1,
  [MOCKGPU_DRM_VM_ALLOC]: 2, [MOCKGPU_DRM_VM_BIND]: 5, [MOCKGPU_DRM_VM_UNBIND]: 2,
});
