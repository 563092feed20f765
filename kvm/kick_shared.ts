/**
 * The shared-memory protocol between the exit loop (main thread) and the watchdog Worker.
 * @module
 */

/** Int32 cells of the control block; a Float64 deadline follows the ints. */
export const CTL = Object.freeze({
  /** 1 once the worker listens. */
  READY: 0,
  /** Bumped (and notified) whenever STATE or the deadline changes. */
  DOORBELL: 1,
  /** 0 idle, n > 0 run n armed, -1 the worker is kicking. */
  STATE: 2,
  /** Why the worker stopped the run (STOP_CODE), 0 while not stopped. */
  STOP: 3,
  /** The vCPU thread's tid. */
  TID: 4,
  /** 1 when SIGINT (Ctrl-C) stops the run. */
  INTERRUPTIBLE: 5,
  /** kvm_run address, low and high 32 bits. */
  RUN_LO: 6,
  RUN_HI: 7,
  /** STOP_CODE to report when the deadline passes (timeout or deadline). */
  DEADLINE_KIND: 8,
  /** Kicks sent so far. */
  KICKS: 9,
  /** Number of Int32 cells (the Float64 deadline starts at INTS*4, 8-aligned). */
  INTS: 10,
});

/** Why the watchdog stopped a run. */
export const STOP_CODE = Object.freeze({ timeout: 1, deadline: 2, interrupt: 3 });

/** STOP_CODE number → name. */
export const STOP_NAMES: Readonly<Record<number, StopCause>> = Object.freeze({
  1: "timeout",
  2: "deadline",
  3: "interrupt",
});

/** What stopped a run from outside the guest. */
export type StopCause = "timeout" | "deadline" | "interrupt";

/**
 * The signal that kicks a vCPU thread out of KVM_RUN (a listener is kept installed so it only
 * interrupts). Not SIGUSR1, QEMU's choice: Deno, like Node, starts its V8 inspector on
 * 127.0.0.1:9229 when a process gets SIGUSR1, listener or not — an open debugger in a process
 * that holds /dev/kvm. SIGUSR2 does nothing of the kind (tests/kvm/vcpu_kick_signal_test.ts).
 */
export const KICK_SIGNAL: Deno.Signal = "SIGUSR2";
/** Its number on x86-64 Linux (what tgkill takes). */
export const KICK_SIGNO = 12;
