/**
 * Stopping a running guest: the vCPU kick. KVM_RUN is a synchronous FFI call, so while a guest
 * runs the main thread's event loop is frozen. A watchdog Worker (its own thread and event
 * loop) holds the deadline and, during interruptible runs, a SIGINT listener; to stop the run
 * it sets kvm_run.immediate_exit and tgkill()s the vCPU thread with KICK_SIGNAL, SIGUSR2 (a listener is
 * installed so the signal only interrupts). KVM_RUN then returns EINTR / KVM_EXIT_INTR.
 *
 * Ctrl-C reaches a vCPU blocked in FFI this way: the kernel delivers the process-directed
 * SIGINT to some thread, Deno's handler dispatches it to every isolate's listeners, and the
 * worker's listener (its loop is free) kicks the vCPU thread.
 *
 * The worker starts on the first armed run (~25 ms) and stops when the last vCPU that used it
 * closes, or after {@link IDLE_STOP_MS} idle (an unref'd timer), so it never keeps a script alive
 * for long.
 * @module
 */

import { CTL, KICK_SIGNAL, STOP_CODE, STOP_NAMES, type StopCause } from "./kick_shared.ts";

export type { StopCause } from "./kick_shared.ts";

/** The worker is stopped after this long without an armed run. */
export const IDLE_STOP_MS = 2000;

/** What a run arms the watchdog with. */
export interface ArmOptions {
  /** The vCPU thread (Vcpu.tid). */
  tid: number;
  /** kvm_run address (Vcpu.runAddress). */
  runAddress: bigint;
  /** Absolute deadline, `performance.timeOrigin + performance.now()` ms; 0 for none. */
  deadline: number;
  /** What to report when the deadline passes. */
  deadlineKind?: "timeout" | "deadline";
  /** Ctrl-C stops the run. */
  interruptible: boolean;
}

class Watchdog {
  readonly #sab = new SharedArrayBuffer(CTL.INTS * 4 + 8);
  readonly ctl = new Int32Array(this.#sab, 0, CTL.INTS);
  readonly #deadline = new Float64Array(this.#sab, CTL.INTS * 4, 1);
  readonly #worker: Worker;
  #gen = 0;
  #idle: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    this.#worker = new Worker(new URL("./kick_worker.ts", import.meta.url), { type: "module" });
    this.#worker.postMessage({ sab: this.#sab });
    // No waiting for READY: the worker boots (~20 ms) on its own thread while the run starts and
    // reads the armed state when it begins to listen, so start-up and short runs don't pay for it.
    // A deadline already past by then is acted on at once; a Ctrl-C before then has the default effect.
  }

  arm(o: ArmOptions): number {
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    this.#idle = undefined;
    const gen = ++this.#gen;
    const c = this.ctl;
    Atomics.store(c, CTL.STOP, 0);
    Atomics.store(c, CTL.TID, o.tid);
    Atomics.store(c, CTL.RUN_LO, Number(o.runAddress & 0xffffffffn) | 0);
    Atomics.store(c, CTL.RUN_HI, Number(o.runAddress >> 32n) | 0);
    Atomics.store(c, CTL.INTERRUPTIBLE, o.interruptible ? 1 : 0);
    Atomics.store(c, CTL.DEADLINE_KIND, o.deadlineKind === "deadline" ? STOP_CODE.deadline : STOP_CODE.timeout);
    this.#deadline[0] = o.deadline;
    Atomics.store(c, CTL.STATE, gen);
    Atomics.add(c, CTL.DOORBELL, 1);
    Atomics.notify(c, CTL.DOORBELL);
    return gen;
  }

  /** Why the armed run was stopped, if it was. */
  stopped(): StopCause | undefined {
    const s = Atomics.load(this.ctl, CTL.STOP);
    return s ? STOP_NAMES[s] : undefined;
  }

  disarm(gen: number): void {
    const c = this.ctl;
    // Wait out a kick in progress (it writes into kvm_run, which must stay mapped meanwhile).
    while (Atomics.compareExchange(c, CTL.STATE, gen, 0) !== gen) {
      if (Atomics.load(c, CTL.STATE) !== -1) break;
      Atomics.wait(c, CTL.STATE, -1, 1);
    }
    this.#deadline[0] = 0;
    Atomics.add(c, CTL.DOORBELL, 1);
    Atomics.notify(c, CTL.DOORBELL);
    const t = setTimeout(() => stopWatchdog(), IDLE_STOP_MS);
    Deno.unrefTimer(t);
    this.#idle = t;
  }

  terminate(): void {
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    this.#worker.terminate();
  }
}

let dog: Watchdog | undefined;
let kickListenerKept = false;

/** The watchdog, started on first use. */
function watchdog(): Watchdog {
  if (!kickListenerKept) {
    // The worker's kick-signal listener goes away with the worker (stopWatchdog when the last vCPU
    // closes). Deno hands a signal to listeners on its own thread, a little later: a kick that
    // lands just before the worker stops then finds no listener, and Deno re-raises it with the
    // default action, killing the process at exit. This listener outlives every worker (it does
    // not keep the process alive).
    Deno.addSignalListener(KICK_SIGNAL, () => {});
    kickListenerKept = true;
  }
  dog ??= new Watchdog();
  return dog;
}

/** An armed run: ask why it stopped, then disarm exactly once. */
export interface ArmedRun {
  /** Why the watchdog stopped the run (undefined: it did not). */
  stopped(): StopCause | undefined;
  /** Ends the run's watch. */
  disarm(): void;
}

/** Arms the watchdog for one run of the exit loop. */
export function armWatchdog(o: ArmOptions): ArmedRun {
  const d = watchdog();
  const gen = d.arm(o);
  let done = false;
  return {
    stopped: () => d.stopped(),
    disarm: () => {
      if (done) return;
      done = true;
      d.disarm(gen);
    },
  };
}

/** Stops the watchdog worker (it restarts on the next armed run). */
export function stopWatchdog(): void {
  dog?.terminate();
  dog = undefined;
}

/** True while the watchdog worker exists. */
export function watchdogRunning(): boolean {
  return dog !== undefined;
}

/** Kicks sent since the watchdog started. */
export function watchdogKicks(): number {
  return dog ? Atomics.load(dog.ctl, CTL.KICKS) : 0;
}
