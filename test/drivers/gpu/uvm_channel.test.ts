/*
 * test/drivers/gpu/uvm_channel.test.ts - the command queue: pushes execute
 * in order after their latency, fences complete in order, waiters sleep
 * until their fence (drivers/gpu/mockgpu/uvm_channel.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Scheduler, resetScheduler, current } from '../../../lib/sim/sched.js';
import { resetTrace, tracing_on, trace_records } from '../../../lib/sim/trace.js';
import { GPU_CMD_LATENCY_NS, GPU_PTE_WRITE_NS, GPU_TLB_INVALIDATE_NS } from '../../../lib/sim/costs.js';
import { UVM_APERTURE_VID, mockgpu_pte_make } from '../../../include/linux/mockgpu.js';
import {
  uvm_channel, uvm_push_begin, uvm_push_end, uvm_channel_wait, uvm_channel_fence_done, uvm_channel_idle,
} from '../../../drivers/gpu/mockgpu/uvm_channel.js';
import { uvm_page_table_alloc, uvm_pte_read, uvm_tlb } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';

test.before.each(() => { resetScheduler(); resetTrace(); });

const VA = 0x40000000;

test('a PTE write pushed before an unmap of the same page is undone by it: commands execute in push order', () => {
  const ch = new uvm_channel('host');
  const pt = uvm_page_table_alloc();
  const s = new Scheduler();
  const fences: number[] = [];
  s.spawn('driver', function* () {
    const a = uvm_push_begin(ch, 'map');
    a.cmds.push({ kind: 'pte_write', pt, vs_id: 1, va: VA, pte: mockgpu_pte_make(UVM_APERTURE_VID, 5, true, true) });
    fences.push(yield* uvm_push_end(a));
    const b = uvm_push_begin(ch, 'unmap');
    b.cmds.push({ kind: 'pte_clear', pt, vs_id: 1, start: VA, end: VA + 4096 });
    fences.push(yield* uvm_push_end(b));
    assert.not.ok(uvm_channel_fence_done(ch, fences[0]!), 'nothing has executed yet: the engine has not run');
    assert.is(uvm_pte_read(pt, VA), 0);
    yield* uvm_channel_wait(ch, fences[1]!);
    assert.ok(uvm_channel_fence_done(ch, fences[0]!), 'an earlier fence is done when a later one is');
  });
  s.run();
  assert.equal(fences, [1, 2]);
  assert.is(uvm_pte_read(pt, VA), 0, 'the clear ran after the write');
  assert.is(ch.completed, 2);
  assert.ok(uvm_channel_idle(ch), 'the engine ends when the ring is empty');
});

test('a waiter resumes at the completion time: latency plus each method\'s cost', () => {
  const ch = new uvm_channel('host');
  const pt = uvm_page_table_alloc();
  const tlb = new uvm_tlb(8);
  const s = new Scheduler();
  let waited = 0;
  s.spawn('driver', function* () {
    const t0 = current().vtime;
    const p = uvm_push_begin(ch, 'unmap');
    p.cmds.push({ kind: 'pte_clear', pt, vs_id: 1, start: VA, end: VA + 4096 });
    p.cmds.push({ kind: 'tlb_invalidate', tlb, vs_id: 1, start: VA, end: VA + 4096 });
    yield* uvm_channel_wait(ch, yield* uvm_push_end(p));
    waited = current().vtime - t0;
  });
  s.run();
  assert.is(waited, GPU_CMD_LATENCY_NS + GPU_PTE_WRITE_NS + GPU_TLB_INVALIDATE_NS);
  assert.equal([ch.tlb_invalidates, ch.commands], [1, 2]);
});

test('the engine is a separate thread: its updates are stamped later than the push in the trace', () => {
  tracing_on();
  const ch = new uvm_channel('host');
  const pt = uvm_page_table_alloc();
  const s = new Scheduler();
  s.spawn('driver', function* () {
    const p = uvm_push_begin(ch, 'map');
    p.cmds.push({ kind: 'pte_write', pt, vs_id: 1, va: VA, pte: mockgpu_pte_make(UVM_APERTURE_VID, 1, false, false) });
    yield* uvm_push_end(p);
  });
  s.run();
  const w = trace_records().find((r) => r.name === 'uvm_pte_write')!;
  assert.is(w.thread, 'host');
  assert.is(w.ts, GPU_CMD_LATENCY_NS + GPU_PTE_WRITE_NS);
});

test('with no scheduler running, a push executes at once on the caller (polling mode)', () => {
  const ch = new uvm_channel('host');
  const pt = uvm_page_table_alloc();
  const p = uvm_push_begin(ch, 'map');
  p.cmds.push({ kind: 'pte_write', pt, vs_id: 1, va: VA, pte: mockgpu_pte_make(UVM_APERTURE_VID, 1, false, false) });
  const gen = uvm_push_end(p);
  const r = gen.next();
  assert.ok(r.done);
  assert.is(r.value, 1);
  assert.ok(uvm_channel_fence_done(ch, 1));
  assert.ok(uvm_pte_read(pt, VA) !== 0);
  assert.is(current().vtime >= GPU_CMD_LATENCY_NS, true);
});

test('copy commands move bytes; a null source zero-fills', () => {
  const ch = new uvm_channel('ce');
  const src = new Uint8Array(4096).fill(7), dst = new Uint8Array(4096), z = new Uint8Array(4096).fill(9);
  const s = new Scheduler();
  s.spawn('driver', function* () {
    const p = uvm_push_begin(ch, 'copy');
    p.cmds.push({ kind: 'copy', dst, src, bw: 16e9 });
    p.cmds.push({ kind: 'copy', dst: z, src: null, bw: 16e9 });
    yield* uvm_channel_wait(ch, yield* uvm_push_end(p));
  });
  s.run();
  assert.ok(dst.every((b) => b === 7));
  assert.ok(z.every((b) => b === 0));
});

test.run();
