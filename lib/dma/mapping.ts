/*
 * lib/dma/mapping.ts - a simulated DMA API with an IOMMU.
 *
 * Models the streaming half of include/linux/dma-mapping.h and
 * kernel/dma/mapping.c (dma_map_page, dma_unmap_page, dma_mapping_error)
 * over an IOMMU domain (drivers/iommu/dma-iommu.c in spirit): each device
 * has its own I/O virtual address space, and mapping a page hands out a
 * bus address that is NOT the page's physical address, so a driver that
 * mixes the two up reads the wrong memory and the simulator notices:
 *
 *   physical  pfn 0x1234  ->  bus 0x100000000 + (iova slot << PAGE_SHIFT)
 *
 *        device --DMA at bus address--> IOMMU (iova -> pfn) --> RAM
 *
 * A bus address is valid from dma_map_page() until dma_unmap_page();
 * dma_to_page() (what the IOMMU does on each device access) reports an
 * access to an unmapped bus address as an IOMMU fault (counted, and a
 * KernelBugError when the domain is strict), which is how a stale DMA
 * entry becomes visible.
 *
 * Fault injection: the fail_dma_map site (lib/fault-inject.ts) fails
 * mappings of every device; dma_fault_inject(dev, n) makes the n-th next
 * mapping of one device fail. Either returns DMA_MAPPING_ERROR, as an
 * exhausted IOVA space would.
 *
 * What is simplified: one page per mapping, no scatterlists, no bounce
 * buffers, no coherency (RAM is the simulator's typed array, always
 * coherent), no direction checks beyond recording them.
 */
import type { page } from '../../include/linux/mm_types.js';
import { KernelBugError } from '../sim/errors.js';
import { charge } from '../sim/clock.js';
import { count_event, trace_event } from '../sim/trace.js';
import { fail_dma_map, should_fail } from '../fault-inject.js';
import type {} from '../../include/linux/device.js';   /* the declaration completed below */

export const DMA_BIDIRECTIONAL = 0;
export const DMA_TO_DEVICE = 1;
export const DMA_FROM_DEVICE = 2;
export type dma_data_direction = number;

/* ~(dma_addr_t)0 in Linux; here the largest exact integer */
export const DMA_MAPPING_ERROR = Number.MAX_SAFE_INTEGER;

/* bus addresses start here, far above any simulated RAM */
export const IOVA_BASE = 2 ** 32;
const IOVA_PAGE = 4096;

/** IOMMU page-table update per mapping or unmapping: 150 ns. ASSUMPTION (IOTLB invalidation dominated). */
export const IOMMU_MAP_NS = 150;

/**
 * struct device - a DMA-capable device as the DMA API sees it.
 * @name: for traces
 * @strict: an access through an unmapped bus address is a BUG (else counted)
 * Mappings: iova slot -> pfn; slots are reused after unmap (LIFO free list).
 */
export class device {
  strict = true;
  /* iova slot -> pfn of the mapped page (-1: free) */
  readonly iova_pfn: number[] = [];
  /* free iova slots */
  readonly iova_free: number[] = [];
  /* mappings currently live */
  nr_mapped = 0;
  /* fault injection: fail the mapping when this reaches 1 (0: off) */
  fail_countdown = 0;
  /* statistics */
  maps = 0;
  unmaps = 0;
  map_errors = 0;
  iommu_faults = 0;

  constructor(readonly name: string) {}
}

/* struct device: include/ declares it with its name only; its members are this class's */
type device_class = device;
declare module '../../include/linux/device.js' {
  interface device extends device_class {}
}

/**
 * dma_fault_inject() - make the @nth next dma_map_page() of @dev fail
 * (1 = the next one); 0 turns injection off.
 */
export function dma_fault_inject(dev: device, nth: number): void {
  dev.fail_countdown = nth;
}

/**
 * dma_map_page() - map @size bytes of @p at @offset for the device.
 * @dir: DMA_TO_DEVICE, DMA_FROM_DEVICE or DMA_BIDIRECTIONAL
 * Context: any; does not sleep. Charges IOMMU_MAP_NS.
 * Return: the bus address, or DMA_MAPPING_ERROR (test with
 * dma_mapping_error()).
 */
export function dma_map_page(dev: device, p: page, offset: number, size: number, _dir: dma_data_direction): number {
  charge(IOMMU_MAP_NS);
  if ((dev.fail_countdown > 0 && --dev.fail_countdown === 0) || should_fail(fail_dma_map, size)) {
    dev.map_errors++;
    count_event('dma_map_error');
    trace_event('dma_map_error', { dev: dev.name, pfn: p.pfn });
    return DMA_MAPPING_ERROR;
  }
  if (offset + size > IOVA_PAGE) throw new KernelBugError(`dma_map_page: ${size} bytes at ${offset} cross a page`);
  const slot = dev.iova_free.length > 0 ? dev.iova_free.pop()! : dev.iova_pfn.length;
  dev.iova_pfn[slot] = p.pfn;
  dev.nr_mapped++;
  dev.maps++;
  count_event('dma_map_page');
  return IOVA_BASE + slot * IOVA_PAGE + offset;
}

/** dma_mapping_error() - did dma_map_page() fail? */
export function dma_mapping_error(_dev: device, addr: number): boolean {
  return addr === DMA_MAPPING_ERROR;
}

function iova_slot(addr: number): number {
  return Math.floor((addr - IOVA_BASE) / IOVA_PAGE);
}

/**
 * dma_unmap_page() - end the mapping that dma_map_page() returned @addr for.
 * Unmapping an address that is not mapped is a BUG (DMA API debug would
 * report it).
 * Context: any; does not sleep.
 */
export function dma_unmap_page(dev: device, addr: number, _size: number, _dir: dma_data_direction): void {
  const slot = iova_slot(addr);
  if (!(slot >= 0 && slot < dev.iova_pfn.length) || dev.iova_pfn[slot] < 0)
    throw new KernelBugError(`dma_unmap_page: ${dev.name}: bus address 0x${addr.toString(16)} is not mapped`);
  charge(IOMMU_MAP_NS);
  dev.iova_pfn[slot] = -1;
  dev.iova_free.push(slot);
  dev.nr_mapped--;
  dev.unmaps++;
  count_event('dma_unmap_page');
}

/**
 * dma_to_pfn() - what the IOMMU does on a device access: the pfn behind
 * bus address @addr, or -1 (an IOMMU fault) if it is not mapped.
 * Context: any.
 */
export function dma_to_pfn(dev: device, addr: number): number {
  const slot = iova_slot(addr);
  const pfn = slot >= 0 && slot < dev.iova_pfn.length ? dev.iova_pfn[slot] : -1;
  if (pfn >= 0) return pfn;
  dev.iommu_faults++;
  count_event('iommu_fault');
  trace_event('iommu_fault', { dev: dev.name, dma: addr });
  if (dev.strict) throw new KernelBugError(`IOMMU fault: ${dev.name} accessed unmapped bus address 0x${addr.toString(16)}`);
  return -1;
}
