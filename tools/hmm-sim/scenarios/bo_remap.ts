/*
 * tools/hmm-sim/scenarios/bo_remap.ts - `hmm-sim run bo-remap`: the
 * counter-example to a mirrored address space (Documentation/vm/hmm.txt,
 * "The design debate"). A game keeps its resources (textures, vertices)
 * in buffer objects and uses the GPU page table as a remapping table into
 * them: a large GPU VA range is reserved once, BO pages are bound into it
 * page by page with attributes only the GPU has (compression, uncached),
 * and the binding changes every frame.
 *
 * The same remap stream (seeded, identical) runs two ways on the same GPU:
 *   bo      /dev/mockgpu_drm0 (drivers/gpu/mockgpu/mockgpu_bo.ts): BOs with
 *           their own VRAM pages, VM_ALLOC, one VM_BIND ioctl per remap;
 *   mirror  the CPU address space as the GPU's (mainline HMM glue): the
 *           textures are pages of a tmpfs file, a remap is
 *           mmap(MAP_SHARED | MAP_FIXED) of one file page at the slot,
 *           and the GPU finds out through the notifier and a fault.
 * Each frame: 64 remaps into a 256-page tile window, then a READ kernel
 * over the window whose checksum is compared with the one the frame's
 * mapping must give (the bytes the GPU reads are checked every frame).
 *
 * Measured per way: remap calls and the simulated time they took, hence
 * remaps per simulated second; GPU faults and invalidations reaching the
 * driver during the frames; CPU VMAs the window needs; GPU PTEs carrying
 * device-only attributes; kernel time per frame.
 */
import { defineScenario } from '../api.js';
import { start_kernel } from '../../../mm/init.js';
import { Process } from '../../include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_SHARED, MAP_FIXED } from '../../../include/uapi/asm-generic/mman.js';
import { MOCKGPU_PTE_KIND_COMPRESSED, MOCKGPU_PTE_UNCACHED } from '../../../include/linux/mockgpu.js';
import { MOCKGPU_OP_READ } from '../../../include/uapi/linux/mockgpu.js';
import {
  MOCKGPU_DRM_GEM_CREATE, MOCKGPU_DRM_GEM_PWRITE, MOCKGPU_DRM_VM_ALLOC, MOCKGPU_DRM_VM_BIND,
  MOCKGPU_BIND_COMPRESSED, MOCKGPU_BIND_UNCACHED, mockgpu_drm_fields,
} from '../../../include/uapi/linux/mockgpu_drm.js';
import { mockgpu_u64s_decode, mockgpu_u64s_encode } from '../../../include/uapi/linux/mockgpu.js';
import { O_RDWR, O_CREAT } from '../../../mm/file.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { now } from '../../../lib/sim/clock.js';
import { tracing_on, trace_set_buffer_size, trace_add_listener } from '../../../lib/sim/trace.js';
import { gpuOpen, gpuSession } from '../../include/mockgpu.js';
import { mockgpu_get, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { mockgpu_drm_init } from '../../../drivers/gpu/mockgpu/mockgpu_bo.js';
import { uvm_pt_for_each_valid } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';

const NBO = 16, BO_PAGES = 16, SLOTS = 256, FRAMES = 20, REMAPS = 64;

/** What one way did. */
export interface bo_remap_result {
  way: 'bo' | 'mirror';
  remaps: number;
  remap_ns: number;             /* simulated time inside the remap calls */
  kernel_ns: number;            /* simulated time of the frames' kernels */
  gpu_faults: number;           /* fault packets during the frames */
  invalidations: number;        /* notifier invalidations reaching the driver during the frames */
  tlb_invalidates: number;
  vmas: number;                 /* CPU VMAs covering the window */
  device_attr_ptes: number;     /* GPU PTEs of the window with a device-only attribute */
  checksums_ok: boolean;
  frames: number;
}

/* the u32 word k of page j of BO b: distinct per page so a wrong binding changes the checksum */
function word(b: number, j: number, k: number): number { return (b * 1_000_003 + j * 7919 + k) >>> 0; }

function page_bytes(b: number, j: number): Uint8Array {
  const u = new Uint8Array(PAGE_SIZE), v = new DataView(u.buffer);
  for (let k = 0; k < PAGE_SIZE / 4; k++) v.setUint32(k * 4, word(b, j, k), true);
  return u;
}

function page_sum(b: number, j: number): number {
  let s = 0;
  for (let k = 0; k < PAGE_SIZE / 4; k++) s = (s + word(b, j, k)) % 2 ** 32;
  return s;
}

/* the remap stream: per frame REMAPS (slot, bo, page, flags), from a fixed seed */
function remap_stream(): [number, number, number, number][][] {
  let x = 12345;
  const rnd = (n: number) => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return (x >>> 8) % n; };
  const flags = (b: number) => (b % 2 === 0 ? MOCKGPU_BIND_COMPRESSED : 0) | (b % 5 === 0 ? MOCKGPU_BIND_UNCACHED : 0);
  const frames: [number, number, number, number][][] = [];
  for (let f = 0; f < FRAMES; f++) {
    const fr: [number, number, number, number][] = [];
    for (let r = 0; r < REMAPS; r++) { const b = rnd(NBO); fr.push([rnd(SLOTS), b, rnd(BO_PAGES), flags(b)]); }
    frames.push(fr);
  }
  return frames;
}

/**
 * bo_remap_run() - the stream one @way on a fresh machine.
 * Return: what was measured.
 */
export function bo_remap_run(way: 'bo' | 'mirror'): bo_remap_result {
  mockgpuParamsReset();
  start_kernel({ ram_bytes: 64 << 20 });
  uvm_gpu_init();
  mockgpu_drm_init(mockgpu_get()!);
  trace_set_buffer_size(1 << 12);
  tracing_on();
  let inval = 0, counting = false;
  const off = trace_add_listener((r) => { if (counting && r.name === 'uvm_hmm_invalidate') inval++; });
  const p = Process.spawn('game');
  const stream = remap_stream();
  const res: bo_remap_result = { way, remaps: 0, remap_ns: 0, kernel_ns: 0, gpu_faults: 0, invalidations: 0,
    tlb_invalidates: 0, vmas: 0, device_attr_ptes: 0, checksums_ok: true, frames: FRAMES };
  try {
    gpuSession(p, function* () {
      const g = yield* gpuOpen(p);
      if (typeof g === 'number') throw new Error(`open /dev/mockgpu0: ${g}`);
      const ctx = yield* g.ctxCreate();
      const scratch = yield* p.sys.mmap(0, BO_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      const slots: [number, number][] = Array.from({ length: SLOTS }, (_x, s) => [s % NBO, s % BO_PAGES]);
      let base: number, remap: (s: number, b: number, j: number, fl: number) => Sleepable<number>;
      if (way === 'bo') {
        const fd = yield* p.sys.open('/dev/mockgpu_drm0', O_RDWR);
        const call = function* (cmd: number, vals: number[]): Sleepable<number[]> {
          yield* p.sys.write(scratch, mockgpu_u64s_encode(vals));
          const rc = yield* p.sys.ioctl(fd, cmd, scratch);
          if (rc !== 0) throw new Error(`mockgpu_drm ioctl ${cmd.toString(16)}: ${rc}`);
          const back = new Uint8Array(vals.length * 8);
          yield* p.sys.read(scratch, back);
          return mockgpu_u64s_decode(back, mockgpu_drm_fields[cmd]!);
        };
        const handles: number[] = [];
        for (let b = 0; b < NBO; b++) {
          const h = (yield* call(MOCKGPU_DRM_GEM_CREATE, [BO_PAGES, 0]))[1]!;
          handles.push(h);
          const data = new Uint8Array(BO_PAGES * PAGE_SIZE);
          for (let j = 0; j < BO_PAGES; j++) data.set(page_bytes(b, j), j * PAGE_SIZE);
          const ubuf = yield* p.sys.mmap(0, data.length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
          yield* p.sys.write(ubuf, data);
          yield* call(MOCKGPU_DRM_GEM_PWRITE, [h, 0, data.length, ubuf]);
          yield* p.sys.munmap(ubuf, data.length);
        }
        base = (yield* call(MOCKGPU_DRM_VM_ALLOC, [64 << 20, 0]))[1]!;       /* a 64 MiB GPU range, bound sparsely */
        remap = function* (s, b, j, fl) { yield* call(MOCKGPU_DRM_VM_BIND, [base + s * PAGE_SIZE, handles[b]!, j, 1, fl]); return 0; };
      } else {
        const fd = yield* p.sys.open('/tmp/textures', O_RDWR | O_CREAT);
        yield* p.sys.ftruncate(fd, NBO * BO_PAGES * PAGE_SIZE);
        const ubuf = yield* p.sys.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        for (let b = 0; b < NBO; b++) for (let j = 0; j < BO_PAGES; j++) {
          yield* p.sys.write(ubuf, page_bytes(b, j));
          yield* p.sys.pwrite(fd, ubuf, PAGE_SIZE, (b * BO_PAGES + j) * PAGE_SIZE);
        }
        base = yield* p.sys.mmap(0, SLOTS * PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
        remap = function* (s, b, j) {
          return yield* p.sys.mmap(base + s * PAGE_SIZE, PAGE_SIZE, PROT_READ, MAP_SHARED | MAP_FIXED, fd, (b * BO_PAGES + j) * PAGE_SIZE);
        };
      }
      for (let s = 0; s < SLOTS; s++) yield* remap(s, slots[s]![0], slots[s]![1], 0);   /* the first frame's layout */
      let sum = 0;      /* the context's checksum accumulates over its READ kernels */
      const kernel = function* (): Sleepable<boolean> {
        for (const [b, j] of slots) sum = (sum + page_sum(b, j)) % 2 ** 32;
        const t0 = now();
        yield* g.launch(ctx, { base, size: SLOTS * PAGE_SIZE, op: MOCKGPU_OP_READ, elem: 256 });
        const w = yield* g.wait(ctx);
        res.kernel_ns += now() - t0;
        return w.status === 0 && w.checksum === sum;
      };
      if (!(yield* kernel())) res.checksums_ok = false;
      const s0 = yield* g.stats();
      counting = true;
      const tlb0 = mockgpu_get()!.channel.tlb_invalidates;
      for (const fr of stream) {
        for (const [s, b, j, fl] of fr) {
          const t0 = now();
          const rc = yield* remap(s, b, j, fl);
          res.remap_ns += now() - t0;
          if (rc < 0) throw new Error(`remap: ${rc}`);
          slots[s] = [b, j];
          res.remaps++;
        }
        if (!(yield* kernel())) res.checksums_ok = false;
      }
      counting = false;
      res.gpu_faults = (yield* g.stats()).gpu_faults - s0.gpu_faults;
      res.tlb_invalidates = mockgpu_get()!.channel.tlb_invalidates - tlb0;
      res.vmas = p.mm.mmap.filter((v) => v.vm_start < base + SLOTS * PAGE_SIZE && v.vm_end > base).length;
      const vs = [...mockgpu_get()!.va_spaces][0]!;
      uvm_pt_for_each_valid(vs.pt, base, base + SLOTS * PAGE_SIZE, (_va, pte) => {
        if (pte & (MOCKGPU_PTE_KIND_COMPRESSED | MOCKGPU_PTE_UNCACHED)) res.device_attr_ptes++;
      });
      yield* g.close();
    });
  } finally {
    off();
  }
  res.invalidations = inval;
  return res;
}

/** bo_remap_report() - both ways, as a table. */
export function bo_remap_report(): { lines: string[]; results: bo_remap_result[] } {
  const results = [bo_remap_run('bo'), bo_remap_run('mirror')];
  const lines = [
    `# bo-remap: ${NBO} BOs x ${BO_PAGES} pages, a ${SLOTS}-page tile window, ${FRAMES} frames x ${REMAPS} remaps, a READ kernel per frame`,
    `  ${''.padEnd(44)}${'BO + GPU VM'.padStart(16)}${'mirrored (HMM)'.padStart(18)}`,
  ];
  const row = (label: string, f: (r: bo_remap_result) => string) =>
    lines.push(`  ${label.padEnd(44)}${f(results[0]!).padStart(16)}${f(results[1]!).padStart(18)}`);
  row('remap calls (VM_BIND / mmap MAP_FIXED)', (r) => String(r.remaps));
  row('simulated time in remaps', (r) => `${(r.remap_ns / 1000).toFixed(1)} us`);
  row('remaps per simulated second', (r) => String(Math.round(r.remaps / (r.remap_ns / 1e9))));
  row('GPU fault packets during the frames', (r) => String(r.gpu_faults));
  row('notifier invalidations to the driver', (r) => String(r.invalidations));
  row('GPU TLB invalidates', (r) => String(r.tlb_invalidates));
  row('CPU VMAs covering the window', (r) => String(r.vmas));
  row('GPU PTEs with device-only attributes', (r) => String(r.device_attr_ptes));
  row('kernel time per frame', (r) => `${(r.kernel_ns / (r.frames + 1) / 1000).toFixed(1)} us`);
  row('frame time (remaps + kernel)', (r) => `${((r.remap_ns / r.frames + r.kernel_ns / (r.frames + 1)) / 1000).toFixed(1)} us`);
  row('every frame\'s checksum as expected', (r) => String(r.checksums_ok));
  return { lines, results };
}

export const bo_remap_scenario = defineScenario({
  name: 'bo-remap',
  description: 'König\'s counter-example: BOs bound page by page into a GPU VA range vs the same remaps through a mirrored address space',
  run() { return bo_remap_report().lines; },
});
