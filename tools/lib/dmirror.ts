/*
 * tools/lib/dmirror.ts - the user-space side of the dmirror test device,
 * for tools (scenarios, benchmarks): build a struct hmm_dmirror_cmd in the
 * process's memory and issue the ioctl, as hmm-tests.c's hmm_dmirror_cmd()
 * does.
 */
import type { Process } from '../include/nolibc/nolibc.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import {
  hmm_dmirror_cmd_encode, hmm_dmirror_cmd_decode, HMM_DMIRROR_CMD_SIZE,
} from '../../include/uapi/linux/test_hmm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';

/** A dmirror device opened by a process, with a command block in its memory. */
export class Dmirror {
  readonly fd: number;
  private readonly cmd: number;
  /** cpages and faults of the last command */
  cpages = 0;
  faults = 0;

  constructor(readonly p: Process, unit: number) {
    this.fd = p.open(`/dev/hmm_dmirror${unit}`, 2);
    if (this.fd < 0) throw new Error(`open /dev/hmm_dmirror${unit}: ${this.fd}`);
    this.cmd = p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  }

  /** ioctl() - run request over [addr, addr + npages pages) with mirror as the data buffer. Return: 0 or -errno. */
  ioctl(request: number, addr: number, npages: number, mirror = 0): number {
    this.p.write(this.cmd, hmm_dmirror_cmd_encode({ addr: BigInt(addr), ptr: BigInt(mirror), npages: BigInt(npages),
      cpages: 0n, faults: 0n }));
    const ret = this.p.ioctl(this.fd, request, this.cmd);
    if (ret < 0) return ret;
    const out = hmm_dmirror_cmd_decode(this.p.read(this.cmd, HMM_DMIRROR_CMD_SIZE));
    this.cpages = Number(out.cpages);
    this.faults = Number(out.faults);
    return 0;
  }

  /**
   * ioctl_sys() - ioctl() as a generator, for a simulated thread of the
   * process (Scheduler.spawn(..., p.task)): it can block and interleave
   * with other threads. Return: 0 or -errno; cpages and faults as ioctl().
   */
  *ioctl_sys(request: number, addr: number, npages: number, mirror = 0): Sleepable<number> {
    yield* this.p.sys.write(this.cmd, hmm_dmirror_cmd_encode({ addr: BigInt(addr), ptr: BigInt(mirror), npages: BigInt(npages),
      cpages: 0n, faults: 0n }));
    const ret = yield* this.p.sys.ioctl(this.fd, request, this.cmd);
    if (ret < 0) return ret;
    const raw = new Uint8Array(HMM_DMIRROR_CMD_SIZE);
    yield* this.p.sys.read(this.cmd, raw);
    const out = hmm_dmirror_cmd_decode(raw);
    this.cpages = Number(out.cpages);
    this.faults = Number(out.faults);
    return 0;
  }
}
