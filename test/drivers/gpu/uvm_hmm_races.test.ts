/*
 * test/drivers/gpu/uvm_hmm_races.test.ts - an invalidation racing a fault
 * batch, over every interleaving up to a bound (lib/sim/explore.ts).
 *
 * Invariant: after MADV_DONTNEED (invalidate_range_end) returns, the GPU
 * maps nothing the CPU no longer maps; at the end of every run, every GPU PTE maps the page
 * the CPU maps at that address (SYS: the same pfn in a present PTE; VID:
 * a device-private entry of that VRAM page). The TEST-ONLY
 * broken_skip_read_retry variant publishes without
 * mmu_interval_read_retry(), and the check must catch it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { start_kernel } from '../../../mm/init.js';
import { Process } from '../../../tools/include/nolibc/nolibc.js';
import { RW, ANON, pte_at } from '../../helpers.js';
import { MADV_DONTNEED } from '../../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { pte_present, pte_pfn } from '../../../include/linux/pgtable.js';
import { pte_to_swp_entry, is_device_private_entry, swp_offset_pfn } from '../../../include/linux/swapops.js';
import {
  MOCKGPU_FAULT_ACCESS_READ, MOCKGPU_FAULT_ACCESS_WRITE, UVM_APERTURE_SYS, mockgpu_pte_aperture, mockgpu_pte_pfn,
} from '../../../include/linux/mockgpu.js';
import { explore, type Scheduler } from '../../../lib/sim/sched.js';
import { mockgpu_get, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { gpu_context, mockgpu_params, mockgpuParamsReset, type uvm_va_space } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_gpu_service_replayable_faults } from '../../../drivers/gpu/mockgpu/uvm_gpu_replayable_faults.js';
import { uvm_pt_for_each_valid } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';

test.before.each(() => mockgpuParamsReset());
test.after.each(() => mockgpuParamsReset());

interface world { p: Process; vs: uvm_va_space; buf: number; }

/* every valid GPU PTE agrees with the CPU page table; throws otherwise */
function check_coherent(w: world): void {
  const gpu = mockgpu_get()!;
  uvm_pt_for_each_valid(w.vs.pt, 0, 2 ** 48, (va, pte) => {
    const cpu = pte_at(w.p.mm, va);
    if (mockgpu_pte_aperture(pte) === UVM_APERTURE_SYS) {
      if (cpu <= 0 || !pte_present(cpu) || pte_pfn(cpu) !== mockgpu_pte_pfn(pte))
        throw new Error(`GPU maps 0x${va.toString(16)} to system pfn ${mockgpu_pte_pfn(pte)}, the CPU does not (pte ${cpu})`);
      return;
    }
    const e = cpu > 0 && !pte_present(cpu) ? pte_to_swp_entry(cpu) : null;
    if (e === null || !is_device_private_entry(e) || swp_offset_pfn(e) !== gpu.pmm.pgmap.start_pfn! + mockgpu_pte_pfn(pte))
      throw new Error(`GPU maps 0x${va.toString(16)} to VRAM page ${mockgpu_pte_pfn(pte)}, the CPU does not`);
  });
}

/*
 * One run: a fault packet for each of 2 pages is in the buffer; a bottom
 * half services the batch while the process zaps the first page (MADV_DONTNEED:
 * mmap_lock for read, so it can run while the batch is serviced).
 */
function scenario(s: Scheduler, access: number, worlds: world[]): void {
  start_kernel({ ram_bytes: 8 << 20 });
  uvm_gpu_init();
  const p = Process.spawn('race');
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.fill32(buf, 2 * PAGE_SIZE, 0);
  assert.ok(p.open('/dev/mockgpu0', 2) >= 0);
  const gpu = mockgpu_get()!;
  const vs = [...gpu.va_spaces][0]!;
  const ctx = new gpu_context(1, vs);
  vs.contexts.set(1, ctx);
  const w: world = { p, vs, buf };
  worlds.push(w);
  const fb = gpu.fault_buffer;
  for (const va of [buf, buf + PAGE_SIZE]) {
    fb.va[fb.put] = va; fb.access[fb.put] = access; fb.ctx[fb.put] = ctx; fb.put++;
  }
  fb.bh_running = true;
  s.spawn('fault_bh', () => uvm_gpu_service_replayable_faults(gpu));
  s.spawn('zap', function* () {
    assert.is(yield* p.sys.madvise(buf, PAGE_SIZE, MADV_DONTNEED), 0);
    uvm_pt_for_each_valid(vs.pt, buf, buf + PAGE_SIZE, (va, pte) => {
      if (pte_at(p.mm, va) <= 0) throw new Error(`after MADV_DONTNEED returned the GPU still maps 0x${va.toString(16)}`);
    });
  }, 'user', p.task);
}

function run(access: number, migrate: boolean, bound: number) {
  const worlds: world[] = [];
  mockgpu_params.migrate_to_vram = migrate;
  return explore((s) => scenario(s, access, worlds), {
    preemptionBound: bound, maxRuns: 3000, check: () => check_coherent(worlds[worlds.length - 1]!),
  });
}

test('MADV_DONTNEED racing a batch mapped from system memory: coherent in every interleaving (2 preemptions)', () => {
  const r = run(MOCKGPU_FAULT_ACCESS_READ, false, 2);
  assert.is(r.failure, null, r.failure ? String(r.failure.error) + ' ' + r.failure.trace : '');
  assert.ok(r.complete, `explored ${r.runs} runs`);
  assert.ok(r.runs >= 3, `${r.runs} runs`);
});

test('MADV_DONTNEED racing a batch that migrates to VRAM: coherent in every interleaving (1 preemption)', () => {
  const r = run(MOCKGPU_FAULT_ACCESS_WRITE, true, 1);
  assert.is(r.failure, null, r.failure ? String(r.failure.error) + ' ' + r.failure.trace : '');
  assert.ok(r.complete, `explored ${r.runs} runs`);
});

test('the check catches a driver that publishes without mmu_interval_read_retry()', () => {
  mockgpu_params.broken_skip_read_retry = true;
  const r = run(MOCKGPU_FAULT_ACCESS_READ, false, 2);
  assert.ok(r.failure !== null, `no failure found in ${r.runs} runs`);
  assert.match(String(r.failure!.error), /GPU (still )?maps/);
});

test.run();
