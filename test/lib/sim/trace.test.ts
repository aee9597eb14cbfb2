/*
 * test/lib/sim/trace.test.ts - the ftrace-like tracer and counters
 * (lib/sim/trace.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Scheduler, resetScheduler, sched_yield, preempt_disable, preempt_enable } from '../../../lib/sim/sched.js';
import { VM_READ, VM_WRITE, VM_MAYREAD, FAULT_FLAG_WRITE, FAULT_FLAG_USER, VM_FAULT_OOM, VM_FAULT_RETRY } from '../../../include/linux/mm.js';
import { HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_REQ_FAULT, hmm_pfn_make } from '../../../include/linux/hmm.js';
import { MIGRATE_PFN_MIGRATE, MIGRATE_VMA_SELECT_SYSTEM, migrate_pfn } from '../../../include/linux/migrate.js';
import { charge } from '../../../lib/sim/clock.js';
import { Rng } from '../../../lib/sim/rng.js';
import {
  trace_event, ftrace_dump, trace_records, trace_lost, tracing_on, tracing_off, tracing_is_on,
  trace_set_buffer_size, trace_clear, count_event, get_counter, reset_counters, trace_counters, resetTrace,
  trace_event_begin, trace_add_listener, formatField,
} from '../../../lib/sim/trace.js';

test.before.each(() => {
  resetScheduler();
  resetTrace();
});

test('tracing is off by default and records nothing', () => {
  assert.not.ok(tracing_is_on());
  trace_event('handle_mm_fault', { addr: 0x1000 });
  assert.is(trace_records().length, 0);
  assert.is(ftrace_dump(), '');
});

test('events carry the thread clock, name and CPU, and dump in the ftrace format with hex addresses', () => {
  tracing_on();
  const s = new Scheduler();
  s.spawn('cpu-thread-3', function* () {
    charge(12_345_678_000);
    trace_event('handle_mm_fault', { addr: 0x7f0000001000, flags: 'WRITE' });
    trace_event('migrate_vma_setup', { start: 0x1000, end: 0x3000, npages: 2, pfn: 255n, dirty: true });
  });
  s.run();
  const r = trace_records();
  assert.is(r.length, 2);
  assert.is(r[0]!.ts, 12_345_678_000);
  assert.is(r[0]!.thread, 'cpu-thread-3');
  assert.equal([r[0]!.comm, r[0]!.pid], ['cpu-thread-3', 1]);     /* a kernel thread: its name and thread id */
  assert.is(r[0]!.cpu, 1);
  assert.is(r[1]!.seq, r[0]!.seq! + 1);
  const lines = ftrace_dump().split('\n');
  assert.is(lines[0], '  cpu-thread-3-1 [001] .....    12.345678: handle_mm_fault: addr=0x7f0000001000 flags=WRITE');
  assert.is(lines[1], '  cpu-thread-3-1 [001] .....    12.345678: migrate_vma_setup: start=0x1000 end=0x3000 npages=2 pfn=0xff dirty=true');
});

test('a function traced at entry and exit: NAME before the events it causes, NAME_ret after, paired per thread', () => {
  tracing_on();
  const s = new Scheduler();
  for (const n of ['a', 'b']) {
    s.spawn(n, function* () {
      trace_event_begin('handle_mm_fault', { addr: 0x1000, flags: FAULT_FLAG_WRITE | FAULT_FLAG_USER });
      yield* sched_yield();
      trace_event('wp_page_copy', { addr: 0x1000 });
      trace_event('handle_mm_fault', { addr: 0x1000, ret: VM_FAULT_OOM | VM_FAULT_RETRY });
    });
  }
  s.run();
  const r = trace_records();
  assert.equal(r.map((x) => `${x.comm}:${x.name}:${x.ph}`),
    ['a:handle_mm_fault:B', 'b:handle_mm_fault:B', 'a:wp_page_copy:i', 'a:handle_mm_fault:E', 'b:wp_page_copy:i', 'b:handle_mm_fault:E']);
  const lines = ftrace_dump().split('\n');
  assert.match(lines[0]!, / handle_mm_fault: addr=0x1000 flags=FAULT_FLAG_WRITE\|FAULT_FLAG_USER$/);
  assert.match(lines[3]!, / handle_mm_fault_ret: addr=0x1000 ret=VM_FAULT_OOM\|VM_FAULT_RETRY$/);
});

test('flag fields print decoded: VM_*, HMM_PFN_*, MIGRATE_PFN_*, unknown bits in hex', () => {
  assert.is(formatField('mmap_region', 'flags', VM_READ | VM_WRITE | VM_MAYREAD), 'flags=VM_READ|VM_WRITE|VM_MAYREAD');
  assert.is(formatField('x', 'vm_flags', VM_READ | 0x800000), 'vm_flags=VM_READ|0x800000');
  assert.is(formatField('x', 'hmm_pfn', hmm_pfn_make(0x42, HMM_PFN_VALID | HMM_PFN_WRITE)), 'hmm_pfn=0x42|HMM_PFN_VALID|HMM_PFN_WRITE');
  assert.is(formatField('hmm_range_fault', 'default_flags', HMM_PFN_REQ_FAULT), 'default_flags=HMM_PFN_VALID');
  assert.is(formatField('x', 'src', migrate_pfn(7) | MIGRATE_PFN_MIGRATE), 'src=0x7|MIGRATE_PFN_VALID|MIGRATE_PFN_MIGRATE');
  assert.is(formatField('migrate_vma_setup', 'flags', MIGRATE_VMA_SELECT_SYSTEM), 'flags=MIGRATE_VMA_SELECT_SYSTEM');
  assert.is(formatField('handle_mm_fault', 'ret', 0), 'ret=0');
  assert.is(formatField('x', 'ret', -14), 'ret=-14');
  assert.is(formatField('x', 'other_flags', 0x30), 'other_flags=0x30');
});

test('the flags column shows the preempt depth; listeners see each record once', () => {
  tracing_on();
  const seen: string[] = [];
  const off = trace_add_listener((r) => { seen.push(r.name); trace_event('nested', {}); });
  const s = new Scheduler();
  s.spawn('k', function* () {
    preempt_disable();
    trace_event('atomic', {});
    preempt_enable();
  });
  s.run();
  off();
  trace_event('after', {});
  assert.equal(seen, ['atomic']);
  assert.match(ftrace_dump().split('\n')[0]!, /\[001\] \.\.\.1\. .* atomic:$/);
});

test('the ring is bounded and keeps the newest events', () => {
  tracing_on();
  trace_set_buffer_size(3);
  for (let i = 0; i < 5; i++) trace_event('ev', { i });
  assert.equal(trace_records().map((r) => r.fields.i), [2, 3, 4]);
  assert.is(trace_lost(), 2);
  trace_clear();
  assert.is(trace_records().length, 0);
  tracing_off();
  trace_event('ev', { i: 9 });
  assert.is(trace_records().length, 0);
});

test('counters count by name and reset', () => {
  count_event('fault:anon');
  count_event('fault:anon');
  count_event('fault:device', 5);
  assert.is(get_counter('fault:anon'), 2);
  assert.is(get_counter('fault:device'), 5);
  assert.is(get_counter('fault:none'), 0);
  assert.equal([...trace_counters.keys()].sort(), ['fault:anon', 'fault:device']);
  reset_counters();
  assert.is(get_counter('fault:anon'), 0);
});

test('Rng: a seed gives a fixed sequence in range', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 100 }, () => a.int(10));
  assert.equal(Array.from({ length: 100 }, () => b.int(10)), xs);
  assert.ok(xs.every((x) => x >= 0 && x < 10));
  assert.is(new Set(xs).size, 10, 'all outcomes appear in 100 draws');
  const c = new Rng(43);
  assert.not.equal(Array.from({ length: 100 }, () => c.int(10)), xs);
  for (let i = 0; i < 1000; i++) { const f = a.next(); assert.ok(f >= 0 && f < 1); }
});

test.run();
