/**
 * What the exit loop (JS) and the kick's signal handlers (kick_code.ts) share: the data block's
 * layout, the stop codes and the kick signal.
 * @module
 */

import { SIG } from "../ffi/libc.ts";
import { SIGACTION } from "../ffi/structs.ts";

/** Int32 cells at the start of the kick's data block (index × 4 = byte offset). */
export const CELL = Object.freeze({
  /** 0 idle, n > 0 run n armed, -1 a signal handler is kicking it. */
  STATE: 0,
  /** Why the run was stopped from outside (STOP_CODE), 0 while not stopped. */
  STOP: 1,
  /** SIGINTs the handler saw (ever). */
  SIGINTS: 2,
  /** Kicks the SIGINT handler sent. */
  KICKS: 3,
  /** tgkill's tgid and tid: this process, the vCPU thread. */
  PID: 4,
  TID: 5,
  /**
   * Holds in force (kick.ts holdSigint): while > 0 the SIGINT handler keeps every SIGINT (counted
   * in SIGINTS, the holder reads the count) and passes none on.
   */
  HOLD: 6,
});

/** Byte offsets of the 64-bit fields after the cells. */
export const CELL_BYTES = Object.freeze({
  /** Address of the armed vCPU's kvm_run.immediate_exit. */
  RUN: 32,
  /** The SIGINT handler the kick's replaced (0 SIG_DFL, 1 SIG_IGN, else a function). */
  OLD: 40,
  /** A zeroed kernel `struct sigaction` (ffi/structs.ts SIGACTION: SIG_DFL) for rt_sigaction. */
  DFL_ACTION: 48,
  /** The block's size. */
  SIZE: 48 + SIGACTION.size,
});

/** Why a run was stopped from outside the guest. */
export const STOP_CODE = Object.freeze({ timeout: 1, deadline: 2, interrupt: 3 });

/** STOP_CODE number → name. */
export const STOP_NAMES: Readonly<Record<number, StopCause>> = Object.freeze(
  Object.fromEntries(Object.entries(STOP_CODE).map(([name, code]) => [code, name as StopCause])),
);

/** What stopped a run from outside the guest. */
export type StopCause = "timeout" | "deadline" | "interrupt";

/**
 * The signal that kicks a vCPU thread out of KVM_RUN (a do-nothing handler is kept installed so
 * it only interrupts). Not SIGUSR1, QEMU's choice: Deno, like Node, starts its V8 inspector on
 * 127.0.0.1:9229 when a process gets SIGUSR1, listener or not — an open debugger in a process
 * that holds /dev/kvm. SIGUSR2 does nothing of the kind (tests/kvm/vcpu_kick_signal_test.ts).
 */
export const KICK_SIGNAL: Deno.Signal = "SIGUSR2";
/** Its number on x86-64 Linux (what tgkill and the deadline timer send). */
export const KICK_SIGNO = SIG.USR2;
