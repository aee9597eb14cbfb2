/*
 * test/drivers/gpu/uvm_gpu_replayable_faults.test.ts - the fault buffer and
 * its bottom half (drivers/gpu/mockgpu/uvm_gpu_replayable_faults.ts):
 * coalescing, sorting, each replay policy's order, overflow, cancel.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../../helpers.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import {
  MOCKGPU_OP_ATOMIC_INC, MOCKGPU_OP_INC, MOCKGPU_OP_READ, MOCKGPU_OP_MIX, MOCKGPU_PATTERN_STRIDED,
} from '../../../include/uapi/linux/mockgpu.js';
import {
  MOCKGPU_FAULT_ACCESS_ATOMIC, MOCKGPU_FAULT_ACCESS_READ, MOCKGPU_FAULT_ACCESS_WRITE, UVM_PERF_FAULT_REPLAY_POLICY_BATCH,
  UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH, UVM_PERF_FAULT_REPLAY_POLICY_BLOCK, UVM_PERF_FAULT_REPLAY_POLICY_ONCE,
} from '../../../include/linux/mockgpu.js';
import { tracing_on, trace_records } from '../../../lib/sim/trace.js';
import { gpuRunKernel } from '../../../tools/include/mockgpu.js';
import { mockgpu_get, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { gpu_context, mockgpu_params, mockgpuParamsReset, type uvm_va_space } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_perf_params, uvmPerfParamsReset } from '../../../drivers/gpu/mockgpu/uvm_perf_module.js';
import {
  fetch_fault_buffer_entries, preprocess_fault_batch, uvm_fault_buffer,
} from '../../../drivers/gpu/mockgpu/uvm_gpu_replayable_faults.js';

test.before.each(() => { mockgpuParamsReset(); uvmPerfParamsReset(); });

/* write packets straight into a GPU's buffer (the SM side) */
function packet(fb: uvm_fault_buffer, va: number, access: number, ctx: gpu_context): void {
  const i = fb.put % fb.capacity;
  fb.va[i] = va; fb.access[i] = access; fb.ctx[i] = ctx; fb.put++;
}

test('32 packets for one page coalesce into one fault keeping the most intrusive access (atomic > write > read)', () => {
  boot();
  uvm_gpu_init();
  const gpu = mockgpu_get()!;
  const vs = { id: 1 } as uvm_va_space;
  const ctx = new gpu_context(1, vs);
  const fb = gpu.fault_buffer;
  for (let i = 0; i < 30; i++) packet(fb, 0x10000, MOCKGPU_FAULT_ACCESS_READ, ctx);
  packet(fb, 0x10000, MOCKGPU_FAULT_ACCESS_ATOMIC, ctx);
  packet(fb, 0x10000, MOCKGPU_FAULT_ACCESS_WRITE, ctx);
  const { faults, fetched } = fetch_fault_buffer_entries(gpu, 256);
  assert.is(fetched, 32);
  assert.is(faults.length, 1);
  assert.is(faults[0]!.access, MOCKGPU_FAULT_ACCESS_ATOMIC);
  assert.is(gpu.stats[2], 31, 'faults_duplicate');
  assert.is(fb.get, fb.put, 'GET caught up with PUT');
});

test('a batch takes at most fault_batch_count packets; packets of a cancelled context are dropped; sorting is by (space, address)', () => {
  boot();
  uvm_gpu_init();
  const gpu = mockgpu_get()!;
  const a = new gpu_context(1, { id: 2 } as uvm_va_space), b = new gpu_context(2, { id: 1 } as uvm_va_space);
  const dead = new gpu_context(3, { id: 1 } as uvm_va_space);
  dead.cancelled = true;
  const fb = gpu.fault_buffer;
  packet(fb, 0x3000, MOCKGPU_FAULT_ACCESS_READ, a);
  packet(fb, 0x9000, MOCKGPU_FAULT_ACCESS_READ, b);
  packet(fb, 0x1000, MOCKGPU_FAULT_ACCESS_READ, a);
  packet(fb, 0x5000, MOCKGPU_FAULT_ACCESS_READ, dead);
  packet(fb, 0x2000, MOCKGPU_FAULT_ACCESS_READ, b);
  const first = fetch_fault_buffer_entries(gpu, 4);
  assert.is(first.fetched, 4);
  preprocess_fault_batch(first.faults);
  assert.equal(first.faults.map((f) => `${f.ctx.vs.id}:${f.va.toString(16)}`), ['1:9000', '2:1000', '2:3000']);
  assert.is(fetch_fault_buffer_entries(gpu, 4).fetched, 1);
});

test('a streaming kernel: 256 warps fault on 16 pages, one batch services 16, the duplicates are counted', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 16 * PAGE_SIZE, RW, ANON);
  const r = gpuRunKernel(p, { base: buf, size: 16 * PAGE_SIZE, op: MOCKGPU_OP_READ, elem: 256 });
  assert.is(r.status, 0);
  assert.is(r.stats.faults_serviced, 16);
  assert.is(r.stats.gpu_faults, 256);
  assert.is(r.stats.faults_duplicate, 240);
  assert.is(r.stats.fault_batches, 1);
  assert.is(r.stats.replays, 1);
});

/*
 * The bottom half's steps for a kernel whose 2 warps touch 2 pages in
 * different VA blocks, as segments that each start with a fetched batch.
 * Replays release warps whose page is not serviced yet: they fault again,
 * so the number of batches depends on the policy; the shape of each does not.
 */
function segments(policy: number, batch: number): string[] {
  mockgpu_params.replay_policy = policy;
  mockgpu_params.fault_batch_count = batch;
  mockgpu_params.nr_sms = 1;
  mockgpu_params.warps_per_sm = 2;
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 4 << 20, RW, ANON);
  const base = buf + ((2 << 20) - (buf % (2 << 20))) - PAGE_SIZE;   /* last page of one block, first of the next */
  p.fill32(base, 2 * PAGE_SIZE, 0);
  tracing_on();
  const r = gpuRunKernel(p, { base, size: 2 * PAGE_SIZE, op: MOCKGPU_OP_INC, elem: PAGE_SIZE });
  assert.is(r.status, 0);
  assert.is(p.check32(base, 2 * PAGE_SIZE, 1), -1);
  const steps = trace_records().filter((e) => ['uvm_service_block', 'uvm_replay_push', 'uvm_fault_buffer_flush', 'uvm_fault_batch'].includes(e.name))
    .map((e) => e.name === 'uvm_replay_push' ? `replay:${e.fields.why}` : e.name.replace('uvm_', ''));
  return steps.join(' ').split(/ ?(?=fault_batch)/).filter((x) => x !== '');
}

test('BLOCK replays after each VA block', () => {
  const seg = segments(UVM_PERF_FAULT_REPLAY_POLICY_BLOCK, 256);
  assert.is(seg[0], 'fault_batch service_block replay:block service_block replay:block');
  for (const s of seg) assert.match(s, /^fault_batch( service_block replay:block)+$/);
});

test('BATCH replays once after each batch, after all its blocks', () => {
  const seg = segments(UVM_PERF_FAULT_REPLAY_POLICY_BATCH, 256);
  assert.equal(seg, ['fault_batch service_block service_block replay:batch']);
});

test('BATCH_FLUSH (the default) flushes the buffer, then replays, after each batch', () => {
  assert.equal(mockgpu_params.replay_policy, UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH);
  const seg = segments(UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH, 1);
  assert.is(seg[0], 'fault_batch service_block fault_buffer_flush replay:batch_flush', 'the second packet is flushed');
  for (const s of seg) assert.match(s, /^fault_batch( service_block)+ fault_buffer_flush replay:batch_flush$/);
});

test('ONCE replays only when the buffer is empty: both batches are serviced before the one replay', () => {
  const seg = segments(UVM_PERF_FAULT_REPLAY_POLICY_ONCE, 1);
  assert.equal(seg, ['fault_batch service_block', 'fault_batch service_block replay:once']);
});

test('a full fault buffer drops packets (counted, traced) and the kernel still completes with every byte right', () => {
  mockgpu_params.fault_buffer_entries = 8;
  uvm_perf_params.uvm_perf_prefetch_enable = 0;     /* one demand fault per page */
  const p = boot();
  uvm_gpu_init();
  const n = 64;
  const buf = p.mmap(0, n * PAGE_SIZE, RW, ANON);
  p.fill32(buf, n * PAGE_SIZE, 5);
  tracing_on();
  const r = gpuRunKernel(p, { base: buf, size: n * PAGE_SIZE, op: MOCKGPU_OP_INC, pattern: MOCKGPU_PATTERN_STRIDED,
    stride: PAGE_SIZE, elem: 16, count: n });
  assert.is(r.status, 0);
  assert.ok(r.stats.buffer_overflows > 0);
  assert.ok(trace_records().some((e) => e.name === 'FaultBufferOverflow'));
  assert.is(r.stats.faults_serviced, n);
  const words = p.read(buf, n * PAGE_SIZE);
  const v = new DataView(words.buffer);
  for (let pg = 0; pg < n; pg++) {
    for (let w = 0; w < PAGE_SIZE / 4; w++) {
      const expect = pg * PAGE_SIZE / 4 + w + 5 + (w < 4 ? 1 : 0);
      if (v.getUint32(pg * PAGE_SIZE + w * 4, true) !== expect) assert.unreachable(`page ${pg} word ${w}`);
    }
  }
});

test('atomics fault as ATOMIC and each element is incremented exactly once', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(buf, 4 * PAGE_SIZE, 0);
  const r = gpuRunKernel(p, { base: buf, size: 4 * PAGE_SIZE, op: MOCKGPU_OP_ATOMIC_INC, elem: 64 });
  assert.is(r.status, 0);
  assert.is(p.read32(buf + 64), 16 + 1);
  assert.is(p.read32(buf + 68), 17, 'only the first word of an element');
});

test('a read/write mix is deterministic for a seed', () => {
  const run = () => {
    const p = boot();
    uvm_gpu_init();
    const buf = p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
    const r = gpuRunKernel(p, { base: buf, size: 8 * PAGE_SIZE, op: MOCKGPU_OP_MIX, write_pct: 30, value: 9, seed: 7, elem: 128 });
    return [r.status, r.checksum, [...p.read(buf, 8 * PAGE_SIZE)].filter((b) => b === 9).length];
  };
  const a = run();
  assert.equal(a, run());
  assert.ok((a[2] as number) > 0);
});

test.run();
