/*
 * lib/gpt/epoch.ts - grace periods (an epoch RCU) and the faulter serials.
 *
 * Models two mechanisms of the 2014 gpt and of hmm_pt:
 *  - hmm_pt frees dead directories after synchronize_rcu(), because a
 *    reader may have read the parent entry and not yet tried its
 *    inc-not-zero. The 2014 gpt called synchronize_rcu() on the fault path,
 *    which Linus called "slow as hell". Here nothing waits: a dead slot is
 *    retired with a tag and recycled later, when no reader that could have
 *    seen it is still inside its read section (epoch-based reclamation).
 *  - the 2014 serial rule: faulters take increasing serials and stamp the
 *    directories they create; updater_serial is the oldest serial still in
 *    flight, and a reader that snapshots it skips directories stamped with
 *    a serial >= its snapshot ("readers ignore newly created directories").
 *
 * Epoch protocol (all words in the table header, all accesses Atomics):
 *
 *   reader enter:  r[me] = G            (G read first; G is never 0)
 *   reader exit:   r[me] = 0
 *   retire:        unlink; tag = G++    (atomic add returns the old G)
 *   recycle when:  for every reader: r == 0 or r > tag
 *
 * Why it is enough: a reader that could reach the slot loaded the parent
 * entry before it was cleared, hence loaded G before the retirer's add, so
 * r <= tag while it is inside. A reader whose r > tag loaded G after the
 * add and therefore loads the parent entry after the clear (Atomics are
 * totally ordered). A reader seen at 0 by the scan stores r after the scan,
 * so again after the clear. Comparisons are wrap-safe ((a - b) | 0).
 *
 * What differs: no callback list and no grace-period thread; recycling is
 * polled by the allocator and by prune(), and a reader that stays inside a
 * read section only delays recycling (the pool grows meanwhile).
 */
import { GPT_MAX_FAULTERS, GPT_MAX_READERS } from '../../include/linux/gpt.js';
import { gpt_spin_lock, gpt_spin_unlock } from './lock.js';
import {
  HDR_EPOCH, HDR_FAULT_LOCK, HDR_FAULTERS, HDR_FAULTER_SERIAL, HDR_READERS,
  HDR_READER_CLAIM, HDR_UPDATER_SERIAL,
} from './shm.js';

/**
 * gpt_reader_register() - claim a reader slot in the table header.
 * Return: the slot index, or -1 when GPT_MAX_READERS slots are taken.
 */
export function gpt_reader_register(hdr: Int32Array): number {
  for (let i = 0; i < GPT_MAX_READERS; i++)
    if (Atomics.compareExchange(hdr, HDR_READER_CLAIM + i, 0, 1) === 0) return i;
  return -1;
}

/** gpt_reader_unregister() - give a reader slot back. Context: outside any read section. */
export function gpt_reader_unregister(hdr: Int32Array, r: number): void {
  Atomics.store(hdr, HDR_READERS + r, 0);
  Atomics.store(hdr, HDR_READER_CLAIM + r, 0);
}

/**
 * gpt_epoch_enter() - start a read section for reader @r (rcu_read_lock).
 * Context: no nesting at this level; gpt.rcu_read_lock() counts nesting.
 */
export function gpt_epoch_enter(hdr: Int32Array, r: number): void {
  /* G is 0 only for an instant while wrapping; 1 then orders correctly */
  Atomics.store(hdr, HDR_READERS + r, Atomics.load(hdr, HDR_EPOCH) || 1);
}

/** gpt_epoch_exit() - end the read section of reader @r (rcu_read_unlock). */
export function gpt_epoch_exit(hdr: Int32Array, r: number): void {
  Atomics.store(hdr, HDR_READERS + r, 0);
}

/**
 * gpt_epoch_retire_tag() - tag for something just unlinked.
 * Context: call after the unlinking store. Return: the tag.
 */
export function gpt_epoch_retire_tag(hdr: Int32Array): number {
  let tag = Atomics.add(hdr, HDR_EPOCH, 1);
  if (tag + 1 === 0) Atomics.compareExchange(hdr, HDR_EPOCH, 0, 1);   /* keep G != 0 */
  if (tag === 0) tag = 1;
  return tag;
}

/**
 * gpt_epoch_safe() - has every reader that could see a @tag-retired object left?
 * Return: true if no reader is inside a section entered at or before @tag.
 */
export function gpt_epoch_safe(hdr: Int32Array, tag: number): boolean {
  for (let i = 0; i < GPT_MAX_READERS; i++) {
    const v = Atomics.load(hdr, HDR_READERS + i);
    if (v !== 0 && ((v - tag) | 0) <= 0) return false;
  }
  return true;
}

/**
 * gpt_serial_fault_begin() - join the in-flight faulters (gpt_lock_fault).
 * Return: the faulter's serial (never 0), or 0 if GPT_MAX_FAULTERS are in
 * flight (the caller retries or faults without a serial).
 * Context: takes and releases the fault lock.
 */
export function gpt_serial_fault_begin(hdr: Int32Array): number {
  gpt_spin_lock(hdr, HDR_FAULT_LOCK);
  let s = 0;
  for (let i = 0; i < GPT_MAX_FAULTERS; i++) {
    if (Atomics.load(hdr, HDR_FAULTERS + i) !== 0) continue;
    s = Atomics.load(hdr, HDR_FAULTER_SERIAL);
    let next = (s + 1) | 0;
    if (next === 0) next = 1;
    Atomics.store(hdr, HDR_FAULTER_SERIAL, next);
    Atomics.store(hdr, HDR_FAULTERS + i, s);
    break;
  }
  /* updater_serial stays: it was either an older in-flight serial or s itself */
  gpt_spin_unlock(hdr, HDR_FAULT_LOCK);
  return s;
}

/**
 * gpt_serial_fault_end() - leave the in-flight faulters (gpt_unlock_fault)
 * and move updater_serial to the oldest serial still in flight, or to the
 * next serial when none is. Context: takes and releases the fault lock.
 */
export function gpt_serial_fault_end(hdr: Int32Array, serial: number): void {
  gpt_spin_lock(hdr, HDR_FAULT_LOCK);
  const next = Atomics.load(hdr, HDR_FAULTER_SERIAL);
  let oldest = next;
  for (let i = 0; i < GPT_MAX_FAULTERS; i++) {
    const v = Atomics.load(hdr, HDR_FAULTERS + i);
    if (v === serial) { Atomics.store(hdr, HDR_FAULTERS + i, 0); continue; }
    if (v !== 0 && ((v - oldest) | 0) < 0) oldest = v;
  }
  Atomics.store(hdr, HDR_UPDATER_SERIAL, oldest);
  gpt_spin_unlock(hdr, HDR_FAULT_LOCK);
}

/** gpt_serial_snapshot() - the updater serial a reader compares against. */
export function gpt_serial_snapshot(hdr: Int32Array): number {
  return Atomics.load(hdr, HDR_UPDATER_SERIAL);
}

/**
 * gpt_serial_young() - must a reader with snapshot @snap ignore a directory
 * stamped @stamp? (gpt_pdp_before_serial() == false in the 2014 code.)
 */
export function gpt_serial_young(stamp: number, snap: number): boolean {
  return stamp !== 0 && ((stamp - snap) | 0) >= 0;
}
