/*
 * include/linux/device.ts - struct device, the type a struct field names.
 *
 * Linux declares it in include/linux/device.h. Here it is declared with its name
 * only, and its implementation (lib/dma/mapping.ts) completes it with its
 * members through a `declare module` augmentation beside the class: so
 * include/ can name the type in struct fields without importing lib/, and
 * code that uses the members imports the implementation, and with it the
 * full type.
 */

/** struct device - a device that maps memory for DMA (members: lib/dma/mapping.ts). */
export interface device { readonly name: string }
