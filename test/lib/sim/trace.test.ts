/*
 * test/lib/sim/trace.test.ts - the ftrace-like tracer and counters
 * (lib/sim/trace.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Scheduler, resetScheduler } from '../../../lib/sim/sched.js';
import { charge } from '../../../lib/sim/clock.js';
import { Rng } from '../../../lib/sim/rng.js';
import {
  trace_event, trace_dump, trace_records, trace_lost, tracing_on, tracing_off, tracing_is_on,
  trace_set_buffer_size, trace_clear, count_event, get_counter, reset_counters, trace_counters, resetTrace,
} from '../../../lib/sim/trace.js';

test.before.each(() => {
  resetScheduler();
  resetTrace();
});

test('tracing is off by default and records nothing', () => {
  assert.not.ok(tracing_is_on());
  trace_event('handle_mm_fault', { addr: 0x1000 });
  assert.is(trace_records().length, 0);
  assert.is(trace_dump(), '');
});

test('events carry the thread clock and name, and dump like ftrace with hex addresses', () => {
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
  const lines = trace_dump().split('\n');
  assert.is(lines[0], '    cpu-thread-3 [    12.345678] handle_mm_fault: addr=0x7f0000001000 flags=WRITE');
  assert.is(lines[1], '    cpu-thread-3 [    12.345678] migrate_vma_setup: start=0x1000 end=0x3000 npages=2 pfn=0xff dirty=true');
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
