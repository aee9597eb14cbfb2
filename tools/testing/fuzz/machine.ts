/*
 * tools/testing/fuzz/machine.ts - runs fuzzer operations on a simulated
 * machine and on the shadow model (model.ts) side by side, and throws a
 * Divergence at the first difference: a byte a process or a device reads
 * that the model says is something else, an access that succeeds where it
 * must fail or fails where it must succeed, a wrong errno, or a kernel BUG.
 *
 * The machine: a small RAM (4 MiB by default) with swap, THP "always",
 * the four dmirror devices of lib/test_hmm (two device-private, two
 * device-coherent) and the hmm_dummy devices of drivers/char; up to four
 * processes in "slots", each with its own arena (model.ts) and a scratch
 * region for ioctl structs and bounce buffers.
 *
 * Errnos follow Linux's: mprotect and madvise over a hole -ENOMEM;
 * mremap from outside one VMA -EFAULT; dmirror READ/WRITE -EFAULT for a
 * hole or PROT_NONE, WRITE to a read-only page -EPERM (hmm_range_fault)
 * or -EFAULT when that page is on the device already;
 * MIGRATE_TO_DEV/SYS -EINVAL over a hole or a VMA without VM_READ
 * (lib/test_hmm.c checks vma_lookup() and VM_READ); hmm_dummy -EFAULT for
 * a hole or PROT_NONE and -EACCES for a write to a VMA without VM_WRITE
 * (PROT_NONE included: the v8 code tests VM_WRITE first).
 * Where an operation may stop part way (a device write failing at its
 * first bad page), the bytes it would write before that page are the
 * bytes already there, so a partial write is invisible and the model
 * stays exact.
 */
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import {
  MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED, PROT_READ, PROT_WRITE, MREMAP_MAYMOVE, MREMAP_FIXED,
  MADV_DONTNEED, MADV_DONTFORK, MADV_DOFORK, MADV_COLLAPSE,
} from '../../../include/uapi/asm-generic/mman.js';
import { EFAULT, EINVAL, ENOMEM, EPERM, EACCES, EBUSY, ENOENT } from '../../../include/uapi/asm-generic/errno.js';
import {
  HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_CHECK_EXCLUSIVE, HMM_DMIRROR_RELEASE, HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_READ_UNLOCKABLE, HMM_DMIRROR_FLAG_FAIL_ALLOC, HMM_DMIRROR_PROT_WRITE, hmm_dmirror_cmd_encode,
} from '../../../include/uapi/linux/test_hmm.js';
import {
  HMM_DUMMY_EXPOSE_MM, HMM_DUMMY_READ, HMM_DUMMY_WRITE, HMM_DUMMY_MIGRATE_TO, HMM_DUMMY_STRUCT_SIZE,
  hmm_dummy_rw_encode, hmm_dummy_migrate_encode, hmm_dummy_path,
} from '../../../include/uapi/linux/hmm_dummy.js';
import { Process, runAs } from '../../include/nolibc/nolibc.js';
import { UserFault } from '../../../mm/fault.js';
import { O_RDWR } from '../../../mm/file.js';
import { vma_lookup } from '../../../mm/vma.js';
import { pte_offset_map, ptep_get } from '../../../mm/pgtable.js';
import { pte_present } from '../../../include/linux/pgtable.js';
import { is_swap_pte, is_hmm_entry, is_hmm_entry_poisonous, pte_to_swp_entry } from '../../../include/linux/swapops.js';
import { shrink_all_memory } from '../../../mm/vmscan.js';
import { runSync } from '../../../lib/sim/sched.js';
import { get_signal } from '../../../mm/task.js';
import {
  ShadowProc, fillBytes, ARENA, ARENA_PAGES, SCRATCH, SCRATCH_PAGES, SCRATCH_CMD, SCRATCH_BOUNCE, SCRATCH_SNAP,
} from './model.js';
import { type Op, type GenView, MAX_SLOTS, fmtOp } from './ops.js';
import { cpuView } from './cpu_view.js';
import { v8MigratedBackWriteTolerated } from './v8_view.js';
import { injectWindow, firedSince, injectAccepts, injectSettle } from './inject.js';
import { releaseFits } from './invariants.js';

/** A difference between the machine and the model. */
export class Divergence extends Error {
  override name = 'Divergence';
  /* what the machine returned (an errno) or the signal it raised, for the --fail acceptance rule (inject.ts) */
  constructor(msg: string, readonly got?: number, readonly sig?: number) { super(msg); }
}

/** One process slot. */
export interface Slot {
  p: Process;
  model: ShadowProc;
  dm: { fd: number; dev: number } | null;
  du: { fd: number } | null;
  era: 'dm' | 'du' | null;          /* see ops.ts: one era per fork family (setEra) */
  fam: number;                      /* fork family: processes that may share anonymous pages */
}

const PG = PAGE_SIZE;
const vpnOf = (off: number) => ShadowProc.vpn(off);
const show = (v: unknown) => (typeof v === 'number' && v < 0 && v > -4096 ? `-${-v}` : String(v));

function expect(what: string, got: unknown, want: unknown): void {
  if (got !== want) throw new Divergence(`${what}: got ${show(got)}, model says ${show(want)}`, typeof got === 'number' ? got : undefined);
}
function expectIn(what: string, got: number, allowed: number[]): void {
  if (!allowed.includes(got)) throw new Divergence(`${what}: got ${show(got)}, model allows ${allowed.map(show).join(' or ')}`, got);
}
function sameBytes(what: string, got: Uint8Array, want: Uint8Array, base: number): void {
  for (let i = 0; i < want.length; i++)
    if (got[i] !== want[i])
      throw new Divergence(`${what}: byte at 0x${(base + i).toString(16)} is 0x${got[i].toString(16)}, model says 0x${want[i].toString(16)}`);
}

/** The machine under test plus its model, operation by operation. */
export class FuzzWorld implements GenView {
  readonly slots: (Slot | null)[] = new Array(MAX_SLOTS).fill(null);
  executed = 0;
  skipped = 0;
  releaseSkipped = 0;               /* dm_release skipped by the releaseFits() rule (invariants.ts) */
  oomKilled = 0;                    /* processes the OOM killer ended */
  injected = 0;                     /* operations whose injected failure was accepted (--fail) */
  v8LostPages = 0;
  private families = 0;                  /* pages the v8 design dropped from a device (see v8Lost) */

  alive(s: number): boolean { return this.slots[s] !== null; }
  hasDmirror(s: number): boolean { return this.slots[s]?.dm != null; }
  hasDummy(s: number): boolean { return this.slots[s]?.du != null; }
  era(s: number): 'dm' | 'du' | null { return this.slots[s]?.era ?? null; }

  /** attach() - give process @p slot @s with model @m and its scratch region. */
  private attach(s: number, p: Process, m: ShadowProc, mapScratch: boolean, era: Slot['era'] = null,
                 fam = ++this.families): void {
    if (mapScratch) {
      const r = p.mmap(SCRATCH, SCRATCH_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      expect('mmap(scratch)', r, SCRATCH);
    }
    this.slots[s] = { p, model: m, dm: null, du: null, era, fam };
  }

  /*
   * setEra() - the first device file a process opens fixes the era of its
   * whole fork family, ancestors and siblings included: they share COW
   * pages, and a mainline device-private entry must never meet v8 code (or
   * an SWP_HMM entry mainline code) - the two eras never ran in one kernel
   * (seed 7560: a dmirror migration in a child left device-private entries
   * in its parent, which then ran hmm_dummy MIGRATE_TO over them).
   */
  private setEra(sl: Slot, era: 'dm' | 'du'): void {
    for (const o of this.slots) if (o !== null && o.fam === sl.fam) o.era = era;
  }

  /** exec() - run one operation on both sides. Return: false if it was skipped. */
  exec(op: Op): boolean {
    const sl = this.slots[op.s];
    if (op.k === 'spawn') {
      if (sl !== null) return this.skip();
      this.attach(op.s, Process.spawn(`fuzz${op.s}`), new ShadowProc(), true);
      return this.done();
    }
    if (sl === null) return this.skip();
    const win = injectWindow();
    try {
      const ran = this.dispatch(sl, op);
      this.endOomVictims();
      return ran ? this.done() : this.skip();
    } catch (e) {
      if (e instanceof UserFault && sl.p.task.oom_mm !== null) {
        this.endOomVictims();          /* the process itself was chosen: its call never returned */
        return this.done();
      }
      if (e instanceof Divergence && this.injectAccepted(sl, op, e, win)) return this.done();
      if (e instanceof Divergence) throw new Divergence(`${fmtOp(op)}: ${e.message}`);
      /* FUZZ_STACK=1: the kernel's stack on stderr, to find where a BUG or a signal came from */
      if (process.env.FUZZ_STACK === '1' && e instanceof Error) console.error(e.stack);
      if (e instanceof UserFault) throw new Divergence(`${fmtOp(op)}: unexpected ${e.message}`);
      throw new Divergence(`${fmtOp(op)}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
  }

  private done(): boolean { this.executed++; return true; }

  /*
   * --fail: a result or signal only an injected failure explains is
   * accepted by inject.ts's rule (the bytes a failed write touched are
   * settled there); kept apart from the model proper.
   */
  private injectAccepted(sl: Slot, op: Op, e: Divergence, win: number[]): boolean {
    if (!injectAccepts(op, firedSince(win), e.got, e.sig)) return false;
    const bad = injectSettle(sl.p, sl.model, op);
    if (bad !== null) throw new Divergence(`${fmtOp(op)}: ${bad}`);
    this.injected++;
    this.endOomVictims();
    return true;
  }
  private skip(): boolean { this.skipped++; return false; }

  private dispatch(sl: Slot, op: Op): boolean {
    const [a, b, c, d] = op.a;
    switch (op.k) {
      case 'fork': return this.fork(sl, a);
      case 'exit': this.exit(op.s); return true;
      case 'mmap': {
        const r = sl.p.mmap(ARENA + a * PG, b * PG, c, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
        expect('mmap', r, ARENA + a * PG);
        sl.model.map(vpnOf(a), b, c);
        return true;
      }
      case 'munmap': expect('munmap', sl.p.munmap(ARENA + a * PG, b * PG), 0); sl.model.unmap(vpnOf(a), b); return true;
      case 'mprotect': {
        /* v8 turns mprotect without PROT_READ into HMM_MUNMAP for mirrors: device data is dropped (see hmmEntryIn) */
        if (sl.era === 'du' && !(c & PROT_READ) && this.hmmEntryIn(sl, a, b)) return false;
        const r = sl.p.mprotect(ARENA + a * PG, b * PG, c);
        expect('mprotect', r, sl.model.mprotect(vpnOf(a), b, c));
        return true;
      }
      case 'madvise': return this.madvise(sl, a, b, c);
      case 'mremap': return this.mremap(sl, a, b, c, d);
      case 'load': return this.access(sl, a, b, false, 0);
      case 'store': return this.access(sl, a, b, true, c);
      case 'atomic': return this.atomic(sl, a, b);
      case 'rbulk': return this.bulk(sl, a, b, false, c);
      case 'wbulk': return this.bulk(sl, a, b, true, c);
      case 'reclaim': runSync(shrink_all_memory(a)); return true;
      default: return op.k.startsWith('dm_') ? this.dmirror(sl, op) : this.dummy(sl, op);
    }
  }

  /* ---- processes ---- */

  private fork(sl: Slot, t: number): boolean {
    if (this.slots[t] !== null) return false;
    const pid = runAs(sl.p.task, sl.p.sys.fork());
    if (pid < 0) throw new Divergence(`fork: got ${show(pid)}, model says a child`, pid);
    this.attach(t, Process.of(pid), sl.model.clone(true), false, sl.era, sl.fam);
    return true;
  }

  /*
   * endOomVictims() - the OOM killer (mm/oom_kill.ts) may choose any process
   * when RAM runs out: Linux behaviour the model cannot predict, so a killed
   * process simply leaves the run (its pending SIGKILL is delivered, its
   * parent reaps it). The other processes' bytes must be unaffected.
   */
  private endOomVictims(): void {
    for (let s = 0; s < this.slots.length; s++) {
      const sl = this.slots[s];
      if (sl === null || sl.p.task.oom_mm === null) continue;
      const t = sl.p.task;
      if (t.exit_state === 0) runAs(t, get_signal(t));
      if (t.exit_state === 0) throw new Divergence(`slot ${s}: OOM victim pid ${t.pid} did not exit`);
      this.oomKilled++;
      this.slots[s] = null;
      for (const o of this.slots) if (o !== null && o.p.task === t.parent) o.p.wait(t.pid);
    }
  }

  /** exit() - the process of slot @s exits; its parent (if a live slot) reaps it. */
  exit(s: number): void {
    const sl = this.slots[s]!;
    const parent = sl.p.task.parent;
    sl.p.exit(0);
    this.slots[s] = null;
    for (const o of this.slots) if (o !== null && o.p.task === parent) o.p.wait(sl.p.pid);
  }

  /* ---- memory system calls ---- */

  private madvise(sl: Slot, off: number, n: number, adv: number): boolean {
    const r = sl.p.madvise(ARENA + off * PG, n * PG, adv);
    const hole = sl.model.holes(vpnOf(off), n);
    if (adv === MADV_COLLAPSE) {
      if (r !== 0 && r !== -EINVAL && r !== -ENOMEM && r !== -EBUSY && r !== -11) expect('madvise(COLLAPSE)', r, 0);
    } else {
      expect(`madvise(${adv})`, r, hole ? -ENOMEM : 0);
    }
    if (adv === MADV_DONTNEED) sl.model.dontneed(vpnOf(off), n);
    if (adv === MADV_DONTFORK || adv === MADV_DOFORK) sl.model.setDontfork(vpnOf(off), n, adv === MADV_DONTFORK);
    return true;
  }

  private mremap(sl: Slot, off: number, oldn: number, newn: number, noff: number): boolean {
    const overlap = off < noff + newn && noff < off + oldn;
    const m = sl.model;
    /* the target must be free in the model: Linux unmaps it before checking the source */
    for (let i = 0; i < newn; i++) if (m.pages.has(vpnOf(noff + i))) return false;
    const vma = vma_lookup(sl.p.mm, ARENA + off * PG);
    const oneVma = vma !== null && ARENA + (off + oldn) * PG <= vma.vm_end;
    if (!oneVma && oldn > newn) return false;
    if (sl.era === 'du' && this.hmmEntryIn(sl, off, Math.min(oldn, newn))) return false;
    const r = sl.p.mremap(ARENA + off * PG, oldn * PG, newn * PG, MREMAP_MAYMOVE | MREMAP_FIXED, ARENA + noff * PG);
    /* Linux up to 6.15 looks the source VMA up before the overlap check (mm/mremap.c, SYSCALL mremap) */
    if (vma === null) { expect('mremap(no source VMA)', r, -EFAULT); return true; }
    if (overlap) { expect('mremap(overlap)', r, -EINVAL); return true; }
    if (!oneVma) { expect('mremap(source not one VMA)', r, -EFAULT); return true; }
    expect('mremap', r, ARENA + noff * PG);
    m.mremap(vpnOf(off), oldn, newn, vpnOf(noff));
    return true;
  }

  /*
   * hmmEntryIn() - does a page of [off, off + n) sit on an hmm_dummy device
   * (a v8 SWP_HMM entry)? The 2015 design keeps no data in that entry and
   * finds the device copy by address: mremap moves the entry but not the
   * mirror's copy, so the data is lost (poisonous entry, SIGBUS); likewise
   * mprotect without PROT_READ is HMM_MUNMAP for the mirrors
   * (mmu_event_to_hmm_etype). v8 design gaps like closing the file (see
   * ops.ts), not kernel bugs to find here: such operations are skipped.
   */
  private hmmEntryIn(sl: Slot, off: number, n: number): boolean {
    for (let i = 0; i < n; i++) {
      const ptep = pte_offset_map(sl.p.mm, ARENA + (off + i) * PG);
      if (ptep < 0) continue;
      const pte = ptep_get(sl.p.mm, ptep);
      if (!pte_present(pte) && is_swap_pte(pte) && is_hmm_entry(pte_to_swp_entry(pte))) return true;
    }
    return false;
  }

  /* ---- CPU accesses ---- */

  private fault(what: string, addr: number, run: () => void, mustFail: boolean, sl: Slot | null = null,
                len = 1): boolean {
    try {
      run();
    } catch (e) {
      if (!(e instanceof UserFault)) throw e;
      /*
       * Also where the model expects SIGSEGV further on: a SIGBUS means the
       * faulting page's VMA allowed the access (access_error() comes first)
       * and its v8 entry was poisonous, so the access died there, before
       * the page the model denies (seed 99151: a bulk write).
       */
      if (sl !== null && this.v8Lost(sl, e, addr, len)) return false;
      if (!mustFail) throw new Divergence(`${what} at 0x${addr.toString(16)}: ${e.message}, model allows it`, undefined, e.sig);
      expect(`${what} signal`, e.sig, 11);
      return false;
    }
    if (mustFail) throw new Divergence(`${what} at 0x${addr.toString(16)} succeeded, model says SIGSEGV`);
    return true;
  }

  /*
   * v8Lost() - a SIGBUS on a poisonous v8 SWP_HMM entry: the device copy of
   * that page was dropped by the 2015 design itself (hmm_mirror_update_pte
   * masks VALID_DEV entries with the event's mask, so an HMM_MIGRATE over
   * the range - a THP split, a COW, reclaim of a neighbour - or an
   * HMM_MUNMAP loses device-resident data; SIGBUS is v8's answer). The
   * model cannot predict which invalidations cover the page, so the pages
   * the access touched are forgotten on both sides (unmapped) and counted.
   */
  private v8Lost(sl: Slot, e: UserFault, addr: number, len: number): boolean {
    if (e.sig !== 7 || !this.v8Poisoned(sl, e.addr, 1)) return false;
    this.v8Forget(sl, addr, len);
    return true;
  }

  /* does one of the @n pages from @addr hold a poisonous v8 SWP_HMM entry? */
  private v8Poisoned(sl: Slot, addr: number, n: number): boolean {
    if (sl.era !== 'du') return false;
    for (let i = 0, page = addr - (addr % PG); i < n; i++, page += PG) {
      const ptep = pte_offset_map(sl.p.mm, page);
      if (ptep < 0) continue;
      const pte = ptep_get(sl.p.mm, ptep);
      if (!pte_present(pte) && is_swap_pte(pte) && is_hmm_entry_poisonous(pte_to_swp_entry(pte))) return true;
    }
    return false;
  }

  /* forget the pages [addr, addr + len) touched on both sides (unmapped) and count them */
  private v8Forget(sl: Slot, addr: number, len: number): void {
    const first = Math.floor(addr / PG), n = Math.floor((addr + len - 1) / PG) - first + 1;
    expect('munmap(v8 lost page)', sl.p.munmap(first * PG, n * PG), 0);
    sl.model.unmap(first, n);
    this.v8LostPages += n;
  }

  private access(sl: Slot, off: number, size: number, write: boolean, v: number): boolean {
    const addr = ARENA + off, m = sl.model;
    const last = Math.floor((addr + size - 1) / PG), first = Math.floor(addr / PG);
    const bad = m.firstDenied(first, last - first + 1, write) >= 0;
    if (write) {
      const val = v % 2 ** (size * 8);
      if (this.fault('store', addr, () => runAs(sl.p.task, sl.p.sys.store(addr, size as 1 | 2 | 4, val)), bad, sl, size)) {
        const b = new Uint8Array(size);
        for (let i = 0, x = val; i < size; i++, x = Math.floor(x / 256)) b[i] = x % 256;
        m.store(addr, b);
      }
      return true;
    }
    let got = 0;
    if (this.fault('load', addr, () => { got = runAs(sl.p.task, sl.p.sys.load(addr, size as 1 | 2 | 4)); }, bad, sl, size)) {
      const b = m.bytes(addr, size);
      let want = 0;
      for (let i = size - 1; i >= 0; i--) want = want * 256 + b[i];
      expect(`load${size * 8} at 0x${addr.toString(16)}`, got, want);
    }
    return true;
  }

  private atomic(sl: Slot, off: number, v: number): boolean {
    const addr = ARENA + off, m = sl.model;
    const bad = m.denied(Math.floor(addr / PG), true) !== null;
    let old = 0;
    const inc = v % 65536;
    if (this.fault('atomic', addr, () => { old = sl.p.atomicAdd32(addr, inc); }, bad, sl, 4)) {
      const b = m.bytes(addr, 4);
      const want = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
      expect(`atomic at 0x${addr.toString(16)} old value`, old, want);
      const nv = (want + inc) >>> 0;
      m.store(addr, new Uint8Array([nv & 0xff, (nv >>> 8) & 0xff, (nv >>> 16) & 0xff, nv >>> 24]));
    }
    return true;
  }

  private bulk(sl: Slot, off: number, len: number, write: boolean, v: number): boolean {
    const addr = ARENA + off, m = sl.model;
    len = Math.min(len, ARENA + ARENA_PAGES * PG - addr);
    if (len <= 0) return false;
    const first = Math.floor(addr / PG), n = Math.floor((addr + len - 1) / PG) - first + 1;
    const bad = m.firstDenied(first, n, write);
    if (write) {
      /* a write that must fail writes the model's own bytes: the prefix it manages is invisible */
      const buf = bad >= 0 ? m.bytes(addr, len) : fillBytes(len, v);
      if (this.fault('write', addr, () => sl.p.write(addr, buf), bad >= 0, sl, buf.length)) m.store(addr, buf);
      return true;
    }
    let got: Uint8Array = new Uint8Array(0);
    if (this.fault('read', addr, () => { got = sl.p.read(addr, len); }, bad >= 0, sl, len)) sameBytes('read', got, m.bytes(addr, len), addr);
    return true;
  }

  /* ---- dmirror (lib/test_hmm) ---- */

  private dmCmd(sl: Slot, cmd: number, addr: number, npages: number | bigint, ptr: number): number {
    sl.p.write(SCRATCH_CMD, hmm_dmirror_cmd_encode({ addr: BigInt(addr), ptr: BigInt(ptr), npages: BigInt(npages), cpages: 0n, faults: 0n }));
    return sl.p.ioctl(sl.dm!.fd, cmd, SCRATCH_CMD);
  }

  private dmirror(sl: Slot, op: Op): boolean {
    const [off, n, v] = op.a;
    if (op.k === 'dm_open') {
      if (sl.dm !== null) return false;
      const fd = sl.p.open(`/dev/hmm_dmirror${off}`, O_RDWR);
      if (fd < 0) throw new Divergence(`open(/dev/hmm_dmirror${off}) = ${show(fd)}`);
      sl.dm = { fd, dev: off };
      this.setEra(sl, 'dm');
      return true;
    }
    if (sl.dm === null) return false;
    if (op.k === 'dm_close') { expect('close', sl.p.close(sl.dm.fd), 0); sl.dm = null; return true; }
    const m = sl.model, addr = ARENA + off * PG, vpn = vpnOf(off);
    const firstR = m.firstDenied(vpn, n, false), firstW = m.firstDenied(vpn, n, true);
    switch (op.k) {
      case 'dm_read_unlockable':
        /* defined in the uapi header, not handled by the driver (include/uapi/linux/test_hmm.ts) */
        expect('dmirror READ_UNLOCKABLE', this.dmCmd(sl, HMM_DMIRROR_READ_UNLOCKABLE, addr, n, SCRATCH_BOUNCE), -EINVAL);
        return true;
      case 'dm_read': {
        const r = this.dmCmd(sl, HMM_DMIRROR_READ, addr, n, SCRATCH_BOUNCE);
        expect('dmirror READ', r, firstR >= 0 ? -EFAULT : 0);
        if (r === 0) sameBytes('dmirror READ', sl.p.read(SCRATCH_BOUNCE, n * PG), m.bytes(addr, n * PG), addr);
        return true;
      }
      case 'dm_write': {
        /*
         * A page on this device's private memory that the CPU maps
         * read-only (COW-shared after fork) is reported, not faulted, by
         * hmm_range_fault (owner match): the write then fails -EFAULT in
         * dmirror_do_fault, as in Linux. Such a write may stop part way,
         * so it writes the model's own bytes.
         */
        const roDev = firstW < 0 && this.readOnlyOwnDevicePage(sl, vpn, n);
        const data = firstW >= 0 || roDev ? m.bytes(addr, n * PG) : fillBytes(n * PG, v);
        sl.p.write(SCRATCH_BOUNCE, data);
        const r = this.dmCmd(sl, HMM_DMIRROR_WRITE, addr, n, SCRATCH_BOUNCE);
        /*
         * A read-only page already on this device's private memory is
         * reported, not faulted, by hmm_range_fault (owner match): the
         * driver then sees a read-only entry for a write and answers
         * -EFAULT (dmirror_do_fault's WARN_ON), not -EPERM.
         */
        const want = firstW < 0 ? (roDev ? [0, -EFAULT] : [0]) : m.denied(firstW, false) !== null ? [-EFAULT] : [-EPERM, -EFAULT];
        expectIn('dmirror WRITE', r, want);
        if (r === 0) m.store(addr, data);
        return true;
      }
      case 'dm_to_dev': case 'dm_excl': {
        const cmd = op.k === 'dm_to_dev' ? HMM_DMIRROR_MIGRATE_TO_DEV : HMM_DMIRROR_EXCLUSIVE;
        const r = this.dmCmd(sl, cmd, addr, n, SCRATCH_BOUNCE);
        const bad = op.k === 'dm_to_dev' ? firstR : firstW;
        this.dmMigrateResult(sl, op.k === 'dm_to_dev' ? 'MIGRATE_TO_DEV' : 'EXCLUSIVE', r, bad >= 0);
        if (r === 0) sameBytes('read-back', sl.p.read(SCRATCH_BOUNCE, n * PG), m.bytes(addr, n * PG), addr);
        return true;
      }
      case 'dm_to_sys': {
        const r = this.dmCmd(sl, HMM_DMIRROR_MIGRATE_TO_SYS, addr, n, SCRATCH_BOUNCE);
        this.dmMigrateResult(sl, 'MIGRATE_TO_SYS', r, firstR >= 0);
        return true;
      }
      case 'dm_snapshot': {
        const r = this.dmCmd(sl, HMM_DMIRROR_SNAPSHOT, addr, n, SCRATCH_SNAP);
        if (r !== 0 && r !== -EFAULT) expect('dmirror SNAPSHOT', r, 0);
        if (r === 0) this.checkSnapshot(sl, vpn, sl.p.read(SCRATCH_SNAP, n));
        return true;
      }
      case 'dm_check_excl': expectIn('dmirror CHECK_EXCLUSIVE', this.dmCmd(sl, HMM_DMIRROR_CHECK_EXCLUSIVE, addr, n, 0), [0, -EPERM]); return true;
      case 'dm_release':
        /* only when reclaim can supply the eviction's RAM: otherwise Linux may livelock (releaseFits) */
        if (!releaseFits(this, sl.dm.dev)) { this.releaseSkipped++; return false; }
        expect('dmirror RELEASE', this.dmCmd(sl, HMM_DMIRROR_RELEASE, addr, n, 0), 0);
        return true;
      case 'dm_flags':
        /* whoever takes the flag may fail for it: inject.ts's "dmirror_fail_alloc" */
        expect('dmirror FLAGS', this.dmCmd(sl, HMM_DMIRROR_FLAGS, addr, HMM_DMIRROR_FLAG_FAIL_ALLOC, 0), 0);
        return true;
      default: throw new Error(`unknown op ${op.k}`);
    }
  }

  /* does [vpn, vpn + n) hold a read-only device-private entry of this slot's device? */
  private readOnlyOwnDevicePage(sl: Slot, vpn: number, n: number): boolean {
    for (let i = 0; i < n; i++) {
      const cpu = cpuView(sl.p.mm, (vpn + i) * PG);
      if (cpu.kind === 'device' && !cpu.writable) return true;
    }
    return false;
  }

  /*
   * A migration or EXCLUSIVE: the model knows only whether the range is
   * legal. A legal range may still leave pages behind (pinned, busy,
   * device memory exhausted): the driver's read-back then reports
   * -ENOENT or -EBUSY, and the bytes must be unchanged either way.
   */
  private dmMigrateResult(sl: Slot, what: string, r: number, bad: boolean): void {
    const allowed = bad ? [what === 'EXCLUSIVE' ? -EFAULT : -EINVAL] : [0, -ENOENT, -EBUSY];
    if (what === 'EXCLUSIVE' && bad) allowed.push(-EBUSY, -EPERM);
    expectIn(`dmirror ${what}`, r, allowed);
  }

  /* a snapshot must never show a page the process may not write as writable */
  private checkSnapshot(sl: Slot, vpn: number, snap: Uint8Array): void {
    for (let i = 0; i < snap.length; i++) {
      const pg = sl.model.pages.get(vpn + i);
      const writable = pg !== undefined && (pg.prot & PROT_WRITE) !== 0;
      if (!writable && (snap[i] & HMM_DMIRROR_PROT_WRITE) && snap[i] !== 0xff)
        throw new Divergence(`SNAPSHOT: page 0x${((vpn + i) * PG).toString(16)} is 0x${snap[i].toString(16)} (writable), model says not writable`);
    }
  }

  /* ---- hmm_dummy (drivers/char, HMM v8) ---- */

  private dummy(sl: Slot, op: Op): boolean {
    if (op.k === 'du_open') {
      if (sl.du !== null) return false;
      const fd = sl.p.open(hmm_dummy_path(op.a[0], op.s), O_RDWR);
      if (fd < 0) throw new Divergence(`open(${hmm_dummy_path(op.a[0], op.s)}) = ${show(fd)}`);
      const r = sl.p.ioctl(fd, HMM_DUMMY_EXPOSE_MM, 0);
      /* the slot's minor may still be bound to a process that inherited an old fd */
      if (r === -EBUSY) { expect('close', sl.p.close(fd), 0); return true; }
      expect('hmm_dummy EXPOSE_MM', r, 0);
      sl.du = { fd };
      this.setEra(sl, 'du');
      return true;
    }
    if (sl.du === null) return false;
    if (op.k === 'du_close') { expect('close', sl.p.close(sl.du.fd), 0); sl.du = null; return true; }
    const m = sl.model, raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
    if (op.k === 'du_migrate') {
      const [off, n] = op.a, vpn = vpnOf(off);
      hmm_dummy_migrate_encode(raw, { address: ARENA + off * PG, size: n * PG, nfaulted_sys_pages: 0, nfaulted_dev_pages: 0 });
      sl.p.write(SCRATCH_CMD, raw);
      const r = sl.p.ioctl(sl.du.fd, HMM_DUMMY_MIGRATE_TO, SCRATCH_CMD);
      const bad = m.firstDenied(vpn, n, false) >= 0;
      expectIn('hmm_dummy MIGRATE_TO', r, bad ? [-EFAULT, -ENOENT, 0] : [0, -ENOMEM]);
      return true;
    }
    const [aoff, len0, v] = op.a, addr = ARENA + aoff;
    const len = Math.min(len0, ARENA + ARENA_PAGES * PG - addr);
    if (len <= 0) return false;
    const write = op.k === 'du_write', first = Math.floor(addr / PG), n = Math.floor((addr + len - 1) / PG) - first + 1;
    const bad = m.firstDenied(first, n, write);
    const data = write ? (bad >= 0 ? m.bytes(addr, len) : fillBytes(len, v)) : null;
    if (data !== null) sl.p.write(SCRATCH_BOUNCE, data);
    hmm_dummy_rw_encode(raw, { address: addr, size: len, ptr: SCRATCH_BOUNCE, nsys_pages: 0, nfaulted_sys_pages: 0, ndev_pages: 0, nfaulted_dev_pages: 0 });
    sl.p.write(SCRATCH_CMD, raw);
    const r = sl.p.ioctl(sl.du.fd, write ? HMM_DUMMY_WRITE : HMM_DUMMY_READ, SCRATCH_CMD);
    /* hmm_mirror_handle_fault() tests VM_WRITE before VM_READ: a write to PROT_NONE is -EACCES too */
    const hole = bad >= 0 && !m.pages.has(bad);
    const want = bad < 0 ? 0 : hole || !write ? -EFAULT : -EACCES;
    /*
     * The device side of v8Lost(): a device fault on a page whose device
     * copy v8 dropped reaches hmm_handle_cpu_fault() through hmm_mm_fault(),
     * which poisons the entry and answers VM_FAULT_SIGBUS, so READ/WRITE
     * return -EFAULT. An invalidation the model cannot see causes it: e.g.
     * splitting a THP of a forked parent walks the shared anon_vma and
     * sends HMM_MIGRATE over the child's range too (try_to_migrate_one()
     * invalidates before it checks the mapping; seed 5551).
     */
    /* the device goes page by page: a lost page before the first denied one fails the operation first (seed 21268) */
    if (want !== -EFAULT && r === -EFAULT && this.v8Poisoned(sl, first * PG, bad < 0 ? n : bad - first)) {
      this.v8Forget(sl, first * PG, n * PG);
      return true;
    }
    /* a device write through patch 25's writable entries of pages migrated back (seeds 20251, 99579) */
    if (want === -EACCES && v8MigratedBackWriteTolerated(sl.p.mm, first, n, r, (vpn) => m.pages.has(vpn))) return true;
    expect(`hmm_dummy ${write ? 'WRITE' : 'READ'}`, r, want);
    if (r === 0 && data !== null) m.store(addr, data);
    if (r === 0 && data === null) sameBytes('hmm_dummy READ', sl.p.read(SCRATCH_BOUNCE, len), m.bytes(addr, len), addr);
    return true;
  }
}

export { SCRATCH };
