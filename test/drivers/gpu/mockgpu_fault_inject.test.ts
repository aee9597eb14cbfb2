/*
 * test/drivers/gpu/mockgpu_fault_inject.test.ts - the fault-injection
 * sweep (test/lib/fault-inject-sweep.ts) over the mock GPU on mainline
 * HMM: the sites fail_devmem_alloc (the PMM's chunk allocation,
 * drivers/gpu/mockgpu/uvm_pmm_gpu.ts), fail_dev_copy (copy-engine copies
 * pushed with uvm_push_copy(), drivers/gpu/mockgpu/uvm_channel.ts) and
 * fail_hmm_retry (mmu_interval_read_retry() in the fault servicing retry
 * loop) fail at their 1st hit, then on a fresh machine at the 2nd, ...
 * until a run completes without the injection firing.
 *
 * What each failure must give, as UVM and nouveau give it:
 *   devmem_alloc  the migration to VRAM skips the page (after trying to
 *                 evict); the GPU maps the system page remotely: the
 *                 kernel succeeds (status 0), the explicit MIGRATE moves
 *                 fewer pages
 *   dev_copy      into VRAM: the page stays in system memory (mapped
 *                 remotely); out of VRAM on a CPU fault: SIGBUS, the data
 *                 stays in VRAM and the next access retries; explicit
 *                 MIGRATE to the CPU: the page stays in VRAM
 *   hmm_retry     the fault service sees an invalidation, retries, and
 *                 the GPU access succeeds
 * In every run: no BUG, no WARN, every byte what the kernels and the CPU
 * wrote, no leak (machine_teardown()).
 *
 * The GPU is not a DMA-mapping device here (aperture SYS maps the pfn), so
 * fail_dma_map is swept by the ODP NIC
 * (test/drivers/infiniband/odp_fault_inject.test.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { start_kernel } from '../../../mm/init.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { MAP_FIXED } from '../../../include/uapi/asm-generic/mman.js';
import { MOCKGPU_OP_INC, MOCKGPU_PROCESSOR_CPU, MOCKGPU_PROCESSOR_GPU0 } from '../../../include/uapi/linux/mockgpu.js';
import { Process } from '../../../tools/include/nolibc/nolibc.js';
import { gpuOpen, gpuSession, type GpuHandle } from '../../../tools/include/mockgpu.js';
import { mockgpu_params, mockgpuParamsReset } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { get_counter } from '../../../lib/sim/trace.js';
import { fail_dev_copy, setup_fault_attr } from '../../../lib/fault-inject.js';
import { UserFault } from '../../../mm/fault.js';
import { SIGBUS } from '../../../include/uapi/asm-generic/signal.js';
import { mockgpu_get, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { RW, ANON } from '../../helpers.js';
import { sweep_run, sweep_site, user_pages, type sweep_ctx, type workload } from '../../lib/fault-inject-sweep.js';

test.before.each(() => mockgpuParamsReset());
test.after.each(() => mockgpuParamsReset());

const MiB = 1 << 20;
const BASE = 0x70000000;

/* every u32 word of @b plus one, as a MOCKGPU_OP_INC kernel leaves it */
function inc32(b: Uint8Array): Uint8Array {
  const out = b.slice();
  const v = new DataView(out.buffer);
  for (let i = 0; i < out.length; i += 4) v.setUint32(i, (v.getUint32(i, true) + 1) >>> 0, true);
  return out;
}

/* one INC kernel over the buffer; status 0 means every word was incremented once */
function* inc_kernel(c: sweep_ctx, g: GpuHandle, ctx: number, u: user_pages, what: string) {
  const seq = c.ret(`${what} launch`, yield* g.launch(ctx, { base: u.base, size: u.want.length * PAGE_SIZE, op: MOCKGPU_OP_INC, elem: 1024 }));
  if (seq < 0) return;
  if (c.ret(`${what} status`, (yield* g.wait(ctx)).status) === 0) u.want.forEach((b, i) => { u.want[i] = inc32(b); });
  else c.fail(`${what}: the kernel failed; this sweep expects every site to be survivable`);
}

/*
 * GPU faults migrating 16 pages to VRAM (INC), CPU faults bringing them
 * back one by one (migrate_to_ram), an explicit migration to the GPU, a
 * second INC on the VRAM copies, an explicit migration to the CPU.
 */
const gpu_workload: workload = {
  name: 'GPU faults, migration to VRAM and back by CPU faults and by MIGRATE',
  sites: ['devmem_alloc', 'dev_copy', 'hmm_retry'],
  boot() {
    mockgpu_params.vram_bytes = 4 * MiB;
    start_kernel({ ram_bytes: 32 * MiB });
    uvm_gpu_init();
  },
  setup() {
    const n = 16;
    const p = Process.spawn('sweep');
    if (p.mmap(BASE, n * PAGE_SIZE, RW, ANON | MAP_FIXED) !== BASE) throw new Error('setup: mmap');
    const u = new user_pages(p, BASE, n, 1);
    u.want.forEach((b, i) => p.write(u.addr(i), b));
    return {
      run(c) {
        gpuSession(p, function* () {
          const g = (yield* gpuOpen(p)) as GpuHandle;
          const ctx = c.ret('ctxCreate', yield* g.ctxCreate());
          yield* inc_kernel(c, g, ctx, u, 'INC 1 (GPU faults)');
          yield* g.close();
        });
        u.check(c, 'after INC 1 (CPU faults on VRAM pages)');
        gpuSession(p, function* () {
          const g = (yield* gpuOpen(p)) as GpuHandle;
          const ctx = c.ret('ctxCreate', yield* g.ctxCreate());
          c.ret('MIGRATE to GPU', yield* g.migrate(u.base, n * PAGE_SIZE, MOCKGPU_PROCESSOR_GPU0));
          yield* inc_kernel(c, g, ctx, u, 'INC 2');
          c.ret('MIGRATE to CPU', yield* g.migrate(u.base, n * PAGE_SIZE, MOCKGPU_PROCESSOR_CPU));
          yield* g.close();
        });
        u.check(c, 'final');
      },
    };
  },
};

for (const site of gpu_workload.sites) {
  test(`sweep: ${gpu_workload.name}, ${site} failing at every hit in turn: bytes intact, no WARN, no leak`, () => {
    const r = sweep_site(site, gpu_workload);
    assert.ok(r.fired >= 1, `${site} never fired (${r.hits} hits)`);
    assert.is(r.runs, r.fired + 1, 'the last run is the first without a failure');
    assert.is(r.hits, r.fired, 'the clean run has one hit fewer than its index');
  });
}

/*
 * Oversubscription: 600 pages through a 2 MiB VRAM (one root chunk of 512
 * pages), so the INC kernel's faults evict the root chunk (copies VRAM ->
 * RAM on the copy engine, remote mapping of the evicted pages). Every hit
 * would be over a thousand runs: the sweep samples SAMPLES hits spread
 * evenly over a clean run's, each on a fresh machine, with the same checks.
 */
const EVICT_PAGES = 600;
const SAMPLES = 8;

const evict_workload: workload = {
  name: 'GPU faults over 1.2x VRAM with eviction, then CPU loads',
  sites: ['devmem_alloc', 'dev_copy'],
  boot() {
    mockgpu_params.vram_bytes = 2 * MiB;
    start_kernel({ ram_bytes: 32 * MiB });
    uvm_gpu_init();
  },
  setup() {
    const p = Process.spawn('sweep');
    if (p.mmap(BASE, EVICT_PAGES * PAGE_SIZE, RW, ANON | MAP_FIXED) !== BASE) throw new Error('setup: mmap');
    const u = new user_pages(p, BASE, EVICT_PAGES, 1);
    u.want.forEach((b, i) => p.write(u.addr(i), b));
    return {
      run(c) {
        gpuSession(p, function* () {
          const g = (yield* gpuOpen(p)) as GpuHandle;
          const ctx = c.ret('ctxCreate', yield* g.ctxCreate());
          yield* inc_kernel(c, g, ctx, u, 'INC (evicting)');
          yield* g.close();
        });
        u.check(c, 'after INC');
      },
    };
  },
};

for (const site of evict_workload.sites) {
  test(`sampled sweep: ${evict_workload.name}, ${site} failing at ${SAMPLES} hits spread over the run: bytes intact, no WARN, no leak`, () => {
    const clean = sweep_run(site, evict_workload, Number.MAX_SAFE_INTEGER);
    assert.not.ok(clean.fired);
    assert.ok(clean.hits > EVICT_PAGES, `${site}: ${clean.hits} hits`);
    assert.ok(get_counter('mockgpu_evictions') >= 1, 'the workload evicts a root chunk');
    let fired = 0;
    for (let k = 0; k < SAMPLES; k++) {
      const n = 1 + Math.floor((k * (clean.hits - 1)) / (SAMPLES - 1));
      if (sweep_run(site, evict_workload, n).fired) fired++;
    }
    assert.is(fired, SAMPLES, 'every sampled hit fired');
  });
}

test('a failed copy out of VRAM is a SIGBUS on the CPU access; the data stays in VRAM and the retry reads it', () => {
  gpu_workload.boot!();
  const p = Process.spawn('sigbus');
  const n = 4;
  if (p.mmap(BASE, n * PAGE_SIZE, RW, ANON | MAP_FIXED) !== BASE) throw new Error('mmap');
  p.fill32(BASE, n * PAGE_SIZE, 41);
  const st = gpuSession(p, function* () {
    const g = (yield* gpuOpen(p)) as GpuHandle;
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: BASE, size: n * PAGE_SIZE, op: MOCKGPU_OP_INC, elem: 1024 });
    const w = yield* g.wait(ctx);
    yield* g.close();
    return w.status;
  });
  assert.is(st, 0);
  const pmm = mockgpu_get()!.pmm;
  assert.is(pmm.pages_used, n, 'the kernel moved every page to VRAM');
  setup_fault_attr(fail_dev_copy, '1,100,0,1');
  fail_dev_copy.verbose = 0;
  let sig = 0;
  try { p.read(BASE, 4); } catch (e) { if (e instanceof UserFault) sig = e.sig; else throw e; }
  assert.is(sig, SIGBUS, 'the copy engine failed the copy back: SIGBUS, as nouveau returns VM_FAULT_SIGBUS');
  assert.is(get_counter('mockgpu_copy_failed'), 1);
  assert.is(pmm.pages_used, n, 'the page is still in VRAM');
  assert.is(p.check32(BASE, n * PAGE_SIZE, 42), -1, 'the retried loads read what the GPU wrote');
  assert.is(pmm.pages_used, 0);
});

test.run();
