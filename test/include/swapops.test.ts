import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  swp_entry, swp_type, swp_offset, swp_entry_to_pte, pte_to_swp_entry, is_swap_pte, non_swap_entry, MAX_SWAPFILES,
  SWP_HMM, SWP_HWPOISON, SWP_MIGRATION_READ, SWP_MIGRATION_WRITE, SWP_DEVICE_WRITE, SWP_DEVICE_READ,
  SWP_DEVICE_EXCLUSIVE, SWP_PTE_MARKER, make_writable_device_private_entry, is_device_private_entry,
  is_writable_device_private_entry, make_readable_migration_entry, is_migration_entry, make_hmm_entry_locked,
  is_hmm_entry, is_hmm_entry_locked, is_hmm_entry_poisonous, pte_kind, pte_swp_mkexclusive, pte_swp_exclusive,
} from '../../include/linux/swapops.js';
import { pte_none, pte_present, pfn_pte, pte_pfn, pte_mkwrite, pte_wrprotect, pte_write, pte_mkdirty, pte_dirty,
  pte_modify, _PAGE_PRESENT, _PAGE_USER, _PAGE_RW, _PAGE_PROTNONE, pte_protnone } from '../../include/linux/pgtable.js';

const t = suite('include/linux/swapops + pgtable');

t('the special swap types sit at the top of the 5-bit range, in Linux order', () => {
  assert.is(MAX_SWAPFILES, 23);
  assert.equal([SWP_HMM, SWP_HWPOISON, SWP_MIGRATION_READ, SWP_MIGRATION_WRITE, SWP_DEVICE_WRITE, SWP_DEVICE_READ,
    SWP_DEVICE_EXCLUSIVE, SWP_PTE_MARKER], [23, 24, 25, 27, 28, 29, 30, 31]);
});

t('swap entries survive the trip through a PTE, for every type and large offsets', () => {
  for (let type = 0; type < 32; type++) {
    for (const off of [0, 1, 0x12345, 2 ** 40 - 1]) {
      const pte = swp_entry_to_pte(swp_entry(type, off));
      assert.ok(is_swap_pte(pte), `type ${type}`);
      assert.not.ok(pte_none(pte));
      assert.not.ok(pte_present(pte));
      const e = pte_to_swp_entry(pte);
      assert.is(swp_type(e), type);
      assert.is(swp_offset(e), off);
      assert.is(non_swap_entry(e), type >= MAX_SWAPFILES);
    }
  }
});

t('swp_offset() (e - type * 2^41, no double modulo) equals e % 2^41 for every type up to 2^46', () => {
  const B = 2 ** 41;
  let x = 12345;
  for (let k = 0; k < 2000; k++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const type = k % 32, off = k < 64 ? [0, 1, B - 1, B - 2][k % 4] : (x * 1024 + (k & 1023)) % B;
    const e = swp_entry(type, off);
    assert.is(swp_offset(e), e % B);
    assert.is(swp_offset(e), off);
    assert.is(swp_type(e), type);
  }
});

t('constructors and predicates agree; the exclusive bit rides in the PTE', () => {
  const d = make_writable_device_private_entry(0x4242);
  assert.ok(is_device_private_entry(d) && is_writable_device_private_entry(d));
  assert.is(swp_offset(d), 0x4242);
  assert.ok(is_migration_entry(make_readable_migration_entry(7)));
  assert.ok(is_hmm_entry(make_hmm_entry_locked()) && is_hmm_entry_locked(make_hmm_entry_locked()));
  assert.not.ok(is_hmm_entry_poisonous(make_hmm_entry_locked()));
  const pte = pte_swp_mkexclusive(swp_entry_to_pte(d));
  assert.ok(pte_swp_exclusive(pte));
  assert.is(pte_to_swp_entry(pte), d);
  assert.is(pte_kind(pte).kind, 'device_private');
  assert.is(pte_kind(0).kind, 'none');
});

t('present PTE helpers keep the pfn when flags change, even above 32 bits', () => {
  const pfn = 2 ** 38 + 5;
  let pte = pfn_pte(pfn, _PAGE_PRESENT | _PAGE_USER);
  assert.is(pte_pfn(pte), pfn);
  pte = pte_mkdirty(pte_mkwrite(pte));
  assert.ok(pte_write(pte) && pte_dirty(pte));
  assert.is(pte_pfn(pte), pfn);
  pte = pte_wrprotect(pte);
  assert.not.ok(pte_write(pte));
  const none = pte_modify(pte, _PAGE_PROTNONE);
  assert.ok(pte_protnone(none) && pte_present(none) && pte_dirty(none));
  assert.is(pte_pfn(none), pfn);
  assert.is(pte_modify(none, _PAGE_PRESENT | _PAGE_USER | _PAGE_RW) % 4096 & _PAGE_RW, _PAGE_RW);
});

t.run();
