import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, recordNotifier, starts, pte_at } from '../helpers.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { PROT_READ, PROT_NONE } from '../../include/uapi/asm-generic/mman.js';
import { MM_ANONPAGES } from '../../include/linux/mm_types.js';
import { get_mm_counter, page_mapcount } from '../../include/linux/mm.js';
import { pte_present, pte_write, pte_dirty, pte_special, pte_pfn, pte_young } from '../../include/linux/pgtable.js';
import { PageAnonExclusive } from '../../include/linux/page-flags.js';
import { pfn_to_page, nr_free_pages, wmark_pages } from '../../mm/page_alloc.js';
import { WMARK_LOW } from '../../include/linux/mmzone.js';
import { mem_cgroup_create, mem_cgroup_attach_task, memory_max_write } from '../../mm/memcontrol.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { get_counter } from '../../lib/sim/trace.js';
import { machineTime } from '../../lib/sim/clock.js';
import { UserFault } from '../../mm/fault.js';
import { explore, Scheduler, type Sleepable } from '../../lib/sim/sched.js';
import { MADV_HUGEPAGE } from '../../include/uapi/asm-generic/mman.js';
import { FAULT_FLAG_WRITE } from '../../include/linux/mm.js';
import { handle_mm_fault_nosleep, FAULT_WOULD_SLEEP, vm_normal_page } from '../../mm/memory.js';
import { vma_lookup } from '../../mm/vma.js';
import { mmap_read_trylock, mmap_read_unlock } from '../../mm/mmap_lock.js';
import { runAs } from '../../tools/include/nolibc/nolibc.js';
import { trace_counters } from '../../lib/sim/trace.js';
import { SIGSEGV, SEGV_ACCERR, SEGV_MAPERR } from '../../include/uapi/asm-generic/signal.js';

const t = suite('mm/memory');
let p: Process;
t.before.each(() => { p = boot(); });

t('a read fault maps the shared zero page read-only, special, without rss', () => {
  const a = p.mmap(0, 4096, RW, ANON);
  assert.is(p.read32(a + 100), 0);
  const pte = pte_at(p.mm, a);
  assert.ok(pte_present(pte));
  assert.is(pte_pfn(pte), 0);
  assert.ok(pte_special(pte));
  assert.not.ok(pte_write(pte));
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 0);
  assert.is(get_counter('fault_anon_zero'), 1);
});

t('a write fault allocates a zeroed private page, writable, dirty and exclusive', () => {
  const a = p.mmap(0, 4096, RW, ANON);
  const free = nr_free_pages();
  p.write8(a + 5, 0x7f);
  const pte = pte_at(p.mm, a);
  assert.ok(pte_write(pte) && pte_dirty(pte) && pte_young(pte));
  const pg = pfn_to_page(pte_pfn(pte));
  assert.is(pg._refcount, 1);
  assert.is(page_mapcount(pg), 1);
  assert.ok(PageAnonExclusive(pg));
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 1);
  assert.ok(nr_free_pages() <= free - 1);
  const bytes = p.read(a, 4096);
  assert.is(bytes[5], 0x7f);
  assert.is(bytes.reduce((s, b) => s + b, 0), 0x7f, 'all other bytes are zero');
  assert.ok(machineTime() >= 1400, 'a fault costs simulated time');
});

t('writing after a read replaces the zero page with a fresh copy and notifies CLEAR', () => {
  const a = p.mmap(0, 4096, RW, ANON);
  p.read32(a);
  const seen = recordNotifier(p);
  p.write32(a, 9);
  assert.is(get_counter('fault_cow_zero'), 1);
  assert.equal(starts(seen), [`CLEAR ${a.toString(16)}-${(a + 4096).toString(16)}`]);
  assert.ok(pte_pfn(pte_at(p.mm, a)) !== 0);
  assert.is(p.read32(a), 9);
});

t('after fork both sides share read-only pages; a write copies only in the writer', () => {
  const a = p.mmap(0, 2 * 4096, RW, ANON);
  p.fill32(a, 8192, 1000);
  const parent_pfn = pte_pfn(pte_at(p.mm, a));
  const c = p.fork();
  const pg = pfn_to_page(parent_pfn);
  assert.is(page_mapcount(pg), 2);
  assert.is(pg._refcount, 2);
  assert.not.ok(PageAnonExclusive(pg));
  assert.not.ok(pte_write(pte_at(p.mm, a)));
  assert.not.ok(pte_write(pte_at(c.mm, a)));

  c.write32(a, 1);
  assert.is(get_counter('fault_cow'), 1);
  const child_pfn = pte_pfn(pte_at(c.mm, a));
  assert.ok(child_pfn !== parent_pfn);
  assert.is(page_mapcount(pg), 1);
  assert.is(pg._refcount, 1);
  assert.is(c.read32(a), 1);
  assert.is(c.read32(a + 4), 1001, 'the copy carries the rest of the page');
  assert.is(p.check32(a, 8192, 1000), -1, 'the parent sees its own data');

  p.write32(a, 2);   /* the parent is now the only user: reuse, no copy */
  assert.is(get_counter('fault_cow'), 1);
  assert.is(get_counter('fault_wp_reuse'), 1);
  assert.is(pte_pfn(pte_at(p.mm, a)), parent_pfn);
});

t('bad accesses raise SIGSEGV with the Linux si_code', () => {
  const a = p.mmap(0, 4096, PROT_READ, ANON);
  const n = p.mmap(0, 4096, PROT_NONE, ANON);
  const err = (fn: () => void) => { try { fn(); } catch (e) { return e as UserFault; } return null; };
  const w = err(() => p.write32(a, 1));
  assert.ok(w instanceof UserFault);
  assert.is(w!.sig, SIGSEGV);
  assert.is(w!.code, SEGV_ACCERR);
  assert.is(err(() => p.read32(n))!.code, SEGV_ACCERR);
  const m = err(() => p.read32(0x1000));
  assert.is(m!.sig, SIGSEGV);
  assert.is(m!.code, SEGV_MAPERR);
  assert.is(p.task.last_fault_addr, 0x1000);
  assert.is(p.read32(a), 0, 'the read-only mapping still reads');
});

t('accesses that cross a page boundary fault both pages and keep byte order', () => {
  const a = p.mmap(0, 2 * 4096, RW, ANON);
  p.write64(a + 4092, 0x1122334455667);
  assert.is(p.read64(a + 4092), 0x1122334455667);
  assert.is(p.read8(a + 4092), 0x67);
  assert.is(get_mm_counter(p.mm, MM_ANONPAGES), 2);
});

t('an atomic add is a write access and returns the old value', () => {
  const a = p.mmap(0, 4096, RW, ANON);
  assert.is(p.atomicAdd32(a + 8, 5), 0);
  assert.is(p.atomicAdd32(a + 8, 5), 5);
  assert.is(p.read32(a + 8), 10);
  assert.throws(() => p.atomicAdd32(a + 6, 1), /SIGBUS/);
});

t('two threads faulting one page race safely under every interleaving', () => {
  let pages = -1, words: number[] = [];
  const res = explore((s) => {
    const q = boot();
    const a = q.mmap(0, 4096, RW, ANON);
    for (const [i, v] of [[0, 11], [4, 22]] as const) {
      s.spawn(`writer${i}`, function* () { yield* q.sys.store(a + i, 4, v); }, 'user', q.task);
    }
    s.run();
    pages = get_mm_counter(q.mm, MM_ANONPAGES);
    words = [q.read32(a), q.read32(a + 4)];
  }, { check: () => {
    if (pages !== 1) throw new Error(`expected one page, got ${pages}`);
    if (words[0] !== 11 || words[1] !== 22) throw new Error(`lost a write: ${words}`);
  } });
  assert.is(res.failure, null);
  assert.ok(res.complete);
  assert.ok(res.runs >= 2, `explored ${res.runs} interleavings`);
});

/*
 * The fault path runs as plain calls when no preemption point can switch
 * threads (handle_mm_fault_nosleep) and as generators otherwise: the same
 * script in both ways must leave the same machine.
 */
function faultScript(sleeping: boolean): string[] {
  const q = boot();
  const run = (task: Process['task'], body: () => Sleepable) => {
    if (!sleeping) { runAs(task, body()); return; }
    const s = new Scheduler({ mode: 'random', seed: 7 });
    s.spawn('script', body, 'user', task);
    s.run();
  };
  const a = q.mmap(0, 4 * 4096, RW, ANON);
  run(q.task, function* () {
    yield* q.sys.load(a, 4);              /* zero page */
    yield* q.sys.store(a, 4, 1);          /* COW of the zero page */
    yield* q.sys.store(a + 4096, 4, 2);   /* first touch */
    yield* q.sys.store(a + 4096, 4, 3);   /* no fault */
    yield* q.sys.store(a + 8192, 4, 4);
  });
  const c = q.fork();
  run(c.task, function* () {
    yield* c.sys.store(a + 4096, 4, 5);   /* COW of an anonymous page */
    yield* c.sys.load(a + 8192, 4);       /* present: no fault */
    yield* c.sys.store(a + 12288, 4, 6);
  });
  run(q.task, function* () { yield* q.sys.store(a + 8192, 4, 7); });   /* COW: the child still maps it */
  const out = [...trace_counters].filter(([k]) => /fault|mmu_notifier|tlb|zap/.test(k)).map(([k, v]) => `${k}=${v}`).sort();
  for (const m of [q, c]) {
    for (let i = 0; i < 4; i++) out.push(`${m === q ? 'p' : 'c'}${i} pte=${pte_at(m.mm, a + i * 4096).toString(16)} word=${m.read32(a + i * 4096)}`);
    out.push(`rss=${get_mm_counter(m.mm, MM_ANONPAGES)}`);
  }
  return out;
}

t('the plain-call fault path and the sleeping one leave the same PTEs, bytes and counters', () => {
  const plain = faultScript(false), sleeping = faultScript(true);
  assert.equal(plain, sleeping);
  assert.ok(plain.includes('fault_cow=2') && plain.includes('fault_cow_zero=1') && plain.includes('fault_anon=3'), plain.join(' '));
});

t('handle_mm_fault_nosleep leaves THP, MMU notifiers, preemptible threads and a low watermark to the sleeping path, changing nothing', () => {
  p = boot({ ram_bytes: 32 << 20, min_free_kbytes: 1024 });
  const snapshot = () => JSON.stringify([...trace_counters]);
  const nosleep = (addr: number) => {
    assert.ok(mmap_read_trylock(p.mm));
    try { return handle_mm_fault_nosleep(vma_lookup(p.mm, addr)!, addr, FAULT_FLAG_WRITE); } finally { mmap_read_unlock(p.mm); }
  };
  /* a THP-eligible range with an empty PMD: create_huge_pmd may sleep */
  const h = p.mmap(0, 2 << 20, RW, ANON);
  assert.is(p.madvise(h, 2 << 20, MADV_HUGEPAGE), 0);
  let before = snapshot();
  assert.is(nosleep(h), FAULT_WOULD_SLEEP);
  assert.is(snapshot(), before);
  assert.is(pte_at(p.mm, h), -1);
  /* a write to a read-only shared page of an mm with a subscriber: the COW calls it */
  const a = p.mmap(0, 4096, RW, ANON);
  p.write32(a, 1);
  const c = p.fork();
  recordNotifier(p);
  const pte = pte_at(p.mm, a);
  before = snapshot();
  assert.is(nosleep(a), FAULT_WOULD_SLEEP);
  assert.is(snapshot(), before);
  assert.is(pte_at(p.mm, a), pte);
  /* a thread under a preempting scheduler: cond_resched() may switch */
  const b = p.mmap(0, 4096, RW, ANON);
  let ret = 0;
  const s = new Scheduler({ mode: 'random', seed: 1 });
  s.spawn('t', function* () { ret = nosleep(b); }, 'user', p.task);
  s.run();
  assert.is(ret, FAULT_WOULD_SLEEP);
  assert.ok(pte_at(p.mm, b) <= 0, 'no PTE installed');
  /* below the low watermark the allocation may reclaim and sleep (alloc_pages_sleepable) */
  const low = wmark_pages(WMARK_LOW);
  const hog = p.mmap(0, 64 << 20, RW, ANON);
  let i = 0;
  while (nr_free_pages() > low) p.write8(hog + 4096 * i++, 1);
  before = snapshot();
  assert.is(nosleep(b), FAULT_WOULD_SLEEP);
  assert.is(snapshot(), before);
  p.munmap(hog, 64 << 20);
  /* a memcg at its limit: the charge would reclaim (blockable: mem_cgroup_charge_sleepable) */
  const cg = mem_cgroup_create('full');
  mem_cgroup_attach_task(cg, p.task);
  assert.is(memory_max_write(cg, cg.memory.usage * PAGE_SIZE), 0);
  before = snapshot();
  assert.is(nosleep(b), FAULT_WOULD_SLEEP);
  assert.is(snapshot(), before);
  assert.is(memory_max_write(cg, Infinity), 0);
  /* and the plain case is handled in place */
  assert.is(nosleep(b), 0);
  assert.ok(pte_write(pte_at(p.mm, b)));
  c.exit(0);
  p.wait(c.pid);
});

t('vm_normal_page() gives a handle of the PTE\'s frame past the handle cache: same struct page, the cached handle kept; none for the zero page', () => {
  const a = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.write8(a, 7);
  assert.is(p.read8(a + PAGE_SIZE), 0);                /* the second page maps the zero page */
  const vma = vma_lookup(p.mm, a)!;
  const pte = pte_at(p.mm, a), pfn = pte_pfn(pte);
  const cached = pfn_to_page(pfn);
  assert.is(pfn_to_page(pfn), cached, 'pfn_to_page() hands out the cached handle');
  const h = vm_normal_page(vma, a, pte)!;
  assert.is(h.pfn, pfn);
  assert.is(h.section, cached.section);
  assert.is(h._refcount, 1);
  assert.is(page_mapcount(h), 1);
  assert.ok(PageAnonExclusive(h));
  assert.is.not(h, cached, 'a new handle, not the cached one');
  assert.is(pfn_to_page(pfn), cached, 'the handle cache slot still holds the handle it had');
  assert.is(vm_normal_page(vma, a + PAGE_SIZE, pte_at(p.mm, a + PAGE_SIZE)), null, 'the zero page has no normal page');
});

t.run();
