/*
 * test/mm/hmm_v8/tdev.ts - a minimal HMM v8 device for the core's unit
 * tests: its "MMU" is a Map from page address to a copy of the mirror
 * entry, its memory a Map of device pages. Every callback is recorded.
 */
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import {
  HMM_DEVICE_RFAULT, HMM_DEVICE_WFAULT, HMM_FORK, HMM_COPY_FROM_DEVICE, HMM_PTE_DIRTY, HMM_PTE_WRITE,
  hmm_etype_names, hmm_pte_valid, hmm_pte_test_select, hmm_pte_test_valid_dev, hmm_pte_test_valid_dma,
  hmm_pte_test_valid_pfn, hmm_pte_pfn, hmm_pte_dma_addr, hmm_pte_dev_addr, hmm_pte_from_dev_addr, hmm_pte_mask,
  type hmm_device, type hmm_device_ops, type hmm_event, type hmm_mirror,
} from '../../../include/linux/hmm_v8.js';
import type { mm_struct } from '../../../include/linux/mm_types.js';
import { device, dma_to_pfn } from '../../../lib/dma/mapping.js';
import { sched_yield, type Sleepable } from '../../../lib/sim/sched.js';
import { kmap_local_page, pfn_to_page } from '../../../mm/page_alloc.js';
import { hmm_device_new, hmm_mirror_register } from '../../../mm/hmm_v8/hmm.js';
import { hmm_pt_lookup, hmm_pt_load, hmm_pt_set_dirty, type hmm_pt } from '../../../mm/hmm_v8/hmm_pt.js';
import { hmm_mirror_fault } from '../../../mm/hmm_v8/fault.js';

export interface tdev_call { op: string; etype: string; start: number; end: number }

export class tdev {
  readonly calls: tdev_call[] = [];
  /* device MMU: page address -> entry (copied from the mirror table) */
  readonly pt = new Map<number, number>();
  /* device memory: device address -> bytes */
  readonly mem = new Map<number, Uint8Array>();
  next_dev = 0x10000000;
  /* pages the device "wrote": reported dirty at the next invalidation */
  readonly wrote = new Set<number>();
  /* the next device fault's update() yields this many times first */
  stall_fault = 0;
  /* the next copy_to_device() yields this many times first */
  stall_copy = 0;
  /* make update() fail with this errno once */
  fail_update = 0;
  /* copy_to_device refuses these addresses (partial failure) */
  readonly refuse = new Set<number>();
  /* copy_from_device fails these addresses */
  readonly lose = new Set<number>();
  readonly device: hmm_device;
  mirror!: hmm_mirror;

  constructor(name = 'tdev', dma = false) {
    const self = this;
    const ops: hmm_device_ops = Object.freeze({
      *release(_m: hmm_mirror): Sleepable { self.calls.push({ op: 'release', etype: '', start: 0, end: 0 }); },
      free(_m: hmm_mirror): void { self.calls.push({ op: 'free', etype: '', start: 0, end: 0 }); },
      *update(m: hmm_mirror, e: hmm_event): Sleepable<number> {
        if ((e.etype === HMM_DEVICE_RFAULT || e.etype === HMM_DEVICE_WFAULT) && self.stall_fault > 0) {
          const n = self.stall_fault;
          self.stall_fault = 0;
          for (let i = 0; i < n; i++) yield* sched_yield();
        }
        return self.update(m, e);
      },
      *copy_from_device(m: hmm_mirror, e: hmm_event, dst: Float64Array, s: number, end: number): Sleepable<number> {
        return self.copy_from(m, e, dst, s, end);
      },
      *copy_to_device(m: hmm_mirror, e: hmm_event, _v: unknown, dst: Float64Array, s: number, end: number): Sleepable<number> {
        const n = self.stall_copy;
        self.stall_copy = 0;
        for (let i = 0; i < n; i++) yield* sched_yield();
        return self.copy_to(m, e, dst, s, end);
      },
    });
    this.device = hmm_device_new(name, ops, dma ? new device(`${name}-dma`) : null);
  }

  *register(mm: mm_struct): Sleepable<number> {
    this.mirror = { device: this.device, hmm: null, kref: 0, pt: null, dead: false, driver_data: this };
    return yield* hmm_mirror_register(this.mirror, mm);
  }

  get mpt(): hmm_pt { return this.mirror.pt as hmm_pt; }

  /** the mirror table's entry for addr (0 when none). */
  mentry(addr: number): number {
    const p = hmm_pt_lookup(this.mpt, addr);
    return p < 0 ? 0 : hmm_pt_load(this.mpt, p);
  }

  update(m: hmm_mirror, e: hmm_event): number {
    this.calls.push({ op: 'update', etype: hmm_etype_names[e.etype], start: e.start, end: e.end });
    if (this.fail_update) { const r = this.fail_update; this.fail_update = 0; return -r; }
    const pt = m.pt as hmm_pt;
    if (e.etype === HMM_DEVICE_RFAULT || e.etype === HMM_DEVICE_WFAULT) {
      for (let a = e.start; a < e.end; a += PAGE_SIZE) {
        const p = hmm_pt_lookup(pt, a);
        const me = p < 0 ? 0 : hmm_pt_load(pt, p);
        if (hmm_pte_valid(me) && hmm_pte_test_select(me)) this.pt.set(a, me);
      }
      return 0;
    }
    for (const [a, cur] of [...this.pt.entries()]) {
      if (a < e.start || a >= e.end) continue;
      const p = hmm_pt_lookup(pt, a);
      if (this.wrote.has(a) && p >= 0) { hmm_pt_set_dirty(pt, p); this.wrote.delete(a); }
      if (hmm_pte_test_valid_dev(cur) && e.etype === HMM_FORK) { this.pt.set(a, hmm_pte_mask(cur, e.pte_mask)); continue; }
      const n = hmm_pte_mask(cur, e.pte_mask);
      if (n === 0) {
        if (hmm_pte_test_valid_dev(cur)) this.mem.delete(hmm_pte_dev_addr(cur));
        this.pt.delete(a);
      } else this.pt.set(a, n);
    }
    return 0;
  }

  /** bytes the device sees at addr through its MMU (null: no mapping). */
  bytes(addr: number): Uint8Array | null {
    const e = this.pt.get(addr - (addr % PAGE_SIZE));
    if (e === undefined) return null;
    if (hmm_pte_test_valid_dev(e)) return this.mem.get(hmm_pte_dev_addr(e))!;
    if (hmm_pte_test_valid_dma(e)) return kmap_local_page(pfn_to_page(dma_to_pfn(this.device.dev!, hmm_pte_dma_addr(e))));
    if (hmm_pte_test_valid_pfn(e)) return kmap_local_page(pfn_to_page(hmm_pte_pfn(e)));
    return null;
  }

  /** a device read of the u32 at addr, faulting through HMM like a driver. */
  *read32(addr: number): Sleepable<number> {
    for (let i = 0; i < 4; i++) {
      const b = this.bytes(addr);
      if (b !== null) return new DataView(b.buffer, b.byteOffset).getUint32(addr % PAGE_SIZE, true);
      const ev: hmm_event = { start: addr, end: addr + PAGE_SIZE, etype: HMM_DEVICE_RFAULT, pte_mask: 0, backoff: false };
      const r = yield* hmm_mirror_fault(this.mirror, ev);
      if (r) return r;
    }
    throw new Error('tdev: read fault loop');
  }

  /** a device write of the u32 at addr. */
  *write32(addr: number, v: number): Sleepable<number> {
    for (let i = 0; i < 4; i++) {
      const e = this.pt.get(addr - (addr % PAGE_SIZE));
      if (e !== undefined && (e & HMM_PTE_WRITE)) {
        const b = this.bytes(addr)!;
        new DataView(b.buffer, b.byteOffset).setUint32(addr % PAGE_SIZE, v, true);
        this.wrote.add(addr - (addr % PAGE_SIZE));
        return 0;
      }
      const ev: hmm_event = { start: addr, end: addr + PAGE_SIZE, etype: HMM_DEVICE_WFAULT, pte_mask: 0, backoff: false };
      const r = yield* hmm_mirror_fault(this.mirror, ev);
      if (r) return r;
    }
    throw new Error('tdev: write fault loop');
  }

  src_bytes(e: number): Uint8Array {
    if (hmm_pte_test_valid_dma(e)) return kmap_local_page(pfn_to_page(dma_to_pfn(this.device.dev!, hmm_pte_dma_addr(e))));
    return kmap_local_page(pfn_to_page(hmm_pte_pfn(e)));
  }

  copy_to(m: hmm_mirror, e: hmm_event, dst: Float64Array, start: number, end: number): number {
    this.calls.push({ op: 'copy_to_device', etype: hmm_etype_names[e.etype], start, end });
    const pt = m.pt as hmm_pt;
    for (let a = start, i = 0; a < end; a += PAGE_SIZE, i++) {
      const p = hmm_pt_lookup(pt, a);
      const me = p < 0 ? 0 : hmm_pt_load(pt, p);
      if (!hmm_pte_test_select(me) || hmm_pte_test_valid_dev(me) || this.refuse.has(a)) continue;
      const d = this.next_dev;
      this.next_dev += PAGE_SIZE;
      this.mem.set(d, this.src_bytes(me).slice());
      dst[i] = hmm_pte_from_dev_addr(d) + (me & HMM_PTE_WRITE);
      this.pt.set(a, dst[i]);
    }
    return 0;
  }

  copy_from(m: hmm_mirror, e: hmm_event, dst: Float64Array, start: number, end: number): number {
    this.calls.push({ op: 'copy_from_device', etype: hmm_etype_names[e.etype], start, end });
    const pt = m.pt as hmm_pt;
    for (let a = start, i = 0; a < end; a += PAGE_SIZE, i++) {
      if (!hmm_pte_test_select(dst[i])) continue;
      const me = hmm_pt_load(pt, hmm_pt_lookup(pt, a));
      const d = hmm_pte_dev_addr(me);
      if (this.lose.has(a)) { dst[i] = 0; continue; }
      this.src_bytes(dst[i]).set(this.mem.get(d)!);
      if (this.wrote.has(a)) { dst[i] += HMM_PTE_DIRTY; this.wrote.delete(a); }
      if (e.etype === HMM_COPY_FROM_DEVICE) { this.mem.delete(d); this.pt.set(a, dst[i]); }
    }
    return 0;
  }

  ops_of(etype: string): tdev_call[] { return this.calls.filter((c) => c.etype === etype); }
}
