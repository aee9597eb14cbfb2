import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import type { Process } from '../../tools/include/nolibc/nolibc.js';
import { pte_offset_map, set_pte_at } from '../../mm/pgtable.js';
import {
  swp_entry_to_pte, make_hwpoison_entry, make_writable_migration_entry, make_hmm_entry, swp_entry,
} from '../../include/linux/swapops.js';
import { pte_pfn, pte_present } from '../../include/linux/pgtable.js';
import { UserFault } from '../../mm/fault.js';
import { SIGBUS, BUS_MCEERR_AR, BUS_ADRERR } from '../../include/uapi/asm-generic/signal.js';
import { Scheduler } from '../../lib/sim/sched.js';
import { pfn_to_page } from '../../mm/page_alloc.js';
import { folio_trylock, folio_unlock } from '../../mm/filemap.js';
import { get_counter } from '../../lib/sim/trace.js';
import { hmm_v8_hooks } from '../../mm/hmm_v8/hooks.js';
import { VM_FAULT_SIGBUS } from '../../include/linux/mm.js';
import { kmemleak_exempt } from '../leakcheck/uvu.js';

const t = suite('mm/memory: do_swap_page dispatch on special entries');
let p: Process;
t.before.each(() => { p = boot(); });

function sig(fn: () => void): UserFault | null { try { fn(); } catch (e) { return e as UserFault; } return null; }

t('a hwpoison entry gives SIGBUS with BUS_MCEERR_AR', () => {
  kmemleak_exempt('the test overwrites a mapped PTE with a hwpoison entry by hand: the page it pointed to is orphaned');
  const a = p.mmap(0, 4096, RW, ANON);
  p.write32(a, 1);
  set_pte_at(p.mm, a, pte_offset_map(p.mm, a), swp_entry_to_pte(make_hwpoison_entry(1234)));
  const e = sig(() => p.read32(a));
  assert.is(e?.sig, SIGBUS);
  assert.is(e?.code, BUS_MCEERR_AR);
});

t('a migration entry makes the fault wait for the folio lock, then retry', () => {
  const a = p.mmap(0, 4096, RW, ANON);
  p.write32(a, 77);
  const ptep = pte_offset_map(p.mm, a);
  const orig = pte_at(p.mm, a);
  const pg = pfn_to_page(pte_pfn(orig));
  assert.ok(folio_trylock(pg));
  set_pte_at(p.mm, a, ptep, swp_entry_to_pte(make_writable_migration_entry(pg.pfn)));
  const log: string[] = [];
  const s = new Scheduler();
  s.spawn('cpu', function* () { log.push(`read ${yield* p.sys.load(a, 4)}`); }, 'user', p.task);
  s.spawn('migrator', function* () {
    log.push('migration done');
    set_pte_at(p.mm, a, ptep, orig);       /* remove_migration_ptes, then unlock */
    folio_unlock(pg);
  }, 'kthread');
  s.run();
  assert.equal(log, ['migration done', 'read 77']);
  assert.is(get_counter('fault_migration_wait'), 1);
});

t('a SWP_HMM entry goes to the HMM v8 hook (SIGBUS while it is empty); a swap entry of no swap device is SIGBUS', () => {
  kmemleak_exempt('the test overwrites mapped PTEs with special entries by hand: the pages they pointed to are orphaned');
  const a = p.mmap(0, 2 * 4096, RW, ANON);
  p.write32(a, 1);
  p.write32(a + 4096, 1);
  set_pte_at(p.mm, a, pte_offset_map(p.mm, a), swp_entry_to_pte(make_hmm_entry()));
  set_pte_at(p.mm, a + 4096, pte_offset_map(p.mm, a + 4096), swp_entry_to_pte(swp_entry(0, 5)));
  const saved = hmm_v8_hooks.cpu_fault;
  hmm_v8_hooks.cpu_fault = null;
  try {
    assert.is(sig(() => p.read32(a))?.code, BUS_ADRERR);
    let called = '';
    hmm_v8_hooks.cpu_fault = function* (vmf, entry) { called = `hmm ${vmf.address.toString(16)} ${entry}`; return VM_FAULT_SIGBUS; };
    sig(() => p.read32(a));
    assert.is(called, `hmm ${a.toString(16)} ${make_hmm_entry()}`);
  } finally {
    hmm_v8_hooks.cpu_fault = saved;
  }
  assert.is(sig(() => p.read32(a + 4096))?.sig, SIGBUS, 'swap-in of a slot of no swap device');
  assert.not.ok(pte_present(pte_at(p.mm, a)));
});

t.run();
