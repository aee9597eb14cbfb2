/*
 * include/uapi/asm-generic/signal.ts - the signals the simulator delivers.
 * Values as on x86-64 (include/uapi/asm-generic/signal.h).
 */
export const SIGHUP = 1;
export const SIGINT = 2;
export const SIGILL = 4;
export const SIGABRT = 6;
export const SIGBUS = 7;
export const SIGKILL = 9;
export const SIGSEGV = 11;
export const SIGTERM = 15;
export const SIGCHLD = 17;

/* si_code values for SIGSEGV and SIGBUS (include/uapi/asm-generic/siginfo.h) */
export const SEGV_MAPERR = 1;     /* address not mapped */
export const SEGV_ACCERR = 2;     /* invalid permissions */
export const BUS_ADRERR = 2;      /* non-existent physical address */
export const BUS_MCEERR_AR = 4;   /* hardware memory error consumed */

const names: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 4: 'SIGILL', 6: 'SIGABRT', 7: 'SIGBUS',
  9: 'SIGKILL', 11: 'SIGSEGV', 15: 'SIGTERM', 17: 'SIGCHLD' };
/** signal_name() - "SIGSEGV" for 11. */
export function signal_name(sig: number): string { return names[sig] ?? `signal ${sig}`; }
