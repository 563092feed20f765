/**
 * Stopping a running guest: the vCPU kick. KVM_RUN is a synchronous FFI call, so while a guest
 * runs the thread's event loop is frozen; what stops the run must come from the kernel. No
 * Worker is involved (creating one costs ~20 ms, synchronously, in Deno).
 *
 * - Deadline (`timeoutMs`, a scenario deadline): a per-thread POSIX timer (timer_create,
 *   CLOCK_MONOTONIC, SIGEV_THREAD_ID to the vCPU thread) sends the kick signal (SIGUSR2) at the
 *   deadline and then every {@link TICK_MS} ms, so a signal that lands while the loop is outside
 *   KVM_RUN is followed by another. KVM_RUN returns EINTR; the loop sees the deadline has passed.
 *   The timer is deleted when the run ends. A run without a deadline has no timer.
 * - Ctrl-C: while an interruptible run is armed, SIGINT goes to a handler in machine code
 *   (kick_code.ts) that sets kvm_run.immediate_exit, records the stop and tgkill()s the vCPU
 *   thread — on whichever thread the kernel delivered the SIGINT to. Then it passes the signal to
 *   the handler it replaced: Deno's when the process has signal listeners (so a SIGINT listener,
 *   e.g. the scenario runner's, still sees the Ctrl-C; the kick then also keeps a do-nothing
 *   main-thread listener registered until Deno has dispatched that SIGINT, because Deno ends the
 *   process on a SIGINT nobody listens to), else nothing: the run's stop is the answer. The
 *   previous SIGINT disposition is restored when the run ends, so Ctrl-C outside a run does what
 *   it did before.
 * - The kick signal's handler (installed once, never removed) does nothing: the signal only
 *   interrupts, and a late kick is harmless.
 *
 * - A hold ({@link holdSigint}) keeps the SIGINT handler installed over a stretch of synchronous
 *   work (the shell holds it for a whole command): SIGINTs are counted, and kept.
 *
 * The SIGINT handler is process-wide: interruptible runs and holds are counted per isolate (the
 * first installs the handler, the last restores what it replaced), and one isolate at a time may
 * have it: an interruptible run (or a hold) in a second Worker while the first has it throws a
 * clear error (disarming out of order would restore one isolate's handler over the other's). Runs
 * with `interruptible: false` (deadline only) may run in any number of isolates at once.
 * @module
 */

import { CLOCK_MONOTONIC, errno, libc, MAP, PROT, SA, SIG, SIG_DFL, SIG_IGN, SIGEV_THREAD_ID } from "../ffi/libc.ts";
import { IOVEC, ITIMERSPEC, KVM_RUN_LAYOUT, SIGACTION, SIGEVENT } from "../ffi/structs.ts";
import { encode } from "../ffi/struct_codec.ts";
import { DATA_PLACEHOLDER, ENTRY, KICK_CODE } from "./kick_code.ts";
import { CELL, CELL_BYTES, KICK_SIGNO, STOP_CODE, STOP_NAMES, type StopCause } from "./kick_shared.ts";
import { KvmError } from "./errors.ts";
import { mmapRaw } from "./mapping.ts";
import { setSigintProbe } from "./sigint_count.ts";

export type { StopCause } from "./kick_shared.ts";

/** After the deadline the timer fires again every this many ms until the run has stopped. */
export const TICK_MS = 5;

/** What a run arms the kick with. */
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

/** An armed run: ask why it stopped, then disarm exactly once. */
export interface ArmedRun {
  /** Why the run must stop (Ctrl-C seen, or the deadline passed); undefined: it goes on. */
  stopped(): StopCause | undefined;
  /** Ends the run's watch (timer deleted, SIGINT disposition restored). */
  disarm(): void;
}

/** Counters of what the kick did in this isolate (tests, bench). */
export interface KickStats {
  /** Workers started for stopping guests: always 0 (kept so a test can prove it). */
  workerStarts: number;
  /** Runs armed. */
  runs: number;
  /** Deadline timers created (one per run with a deadline). */
  timers: number;
  /** Runs that had the SIGINT handler installed. */
  sigintRuns: number;
  /** Runs stopped from outside (timeout, deadline, Ctrl-C). */
  kicks: number;
  /** SIGINTs the handler saw (process-wide, since this isolate installed it). */
  sigints: number;
}

const now = () => performance.timeOrigin + performance.now();

class Kick {
  readonly cells: Int32Array;
  readonly #dv: DataView;
  readonly #sigint: bigint;
  readonly #act = new Uint8Array(SIGACTION.size);
  readonly #old = new Uint8Array(SIGACTION.size);
  readonly #sev = new Uint8Array(SIGEVENT.size);
  readonly #its = new Uint8Array(ITIMERSPEC.size);
  readonly #timerId = new Uint8Array(8);
  #gen = 0;
  /** A do-nothing main-thread SIGINT listener while Deno may still dispatch a SIGINT we passed on. */
  #denoListener = false;
  /** Interruptible runs and holds using the SIGINT handler now. */
  #sigintUsers = 0;
  /** The handler was installed by this isolate's first user (the last restores {@link #old}). */
  #sigintOwned = false;
  /** Holds in force, and the SIGINT count when the first began. */
  #holds = 0;
  #holdBase = 0;
  readonly stats: KickStats = { workerStarts: 0, runs: 0, timers: 0, sigintRuns: 0, kicks: 0, sigints: 0 };

  /**
   * @param denoHandlerFirst have Deno install its own SIGINT handler now ({@link #haveDenoInstallItsHandler});
   *   false only for a main-isolate kick made by a synchronous hold (the shell's commands).
   */
  constructor(denoHandlerFirst: boolean) {
    const page = 4096n;
    // Page 0: the data block (read/write). Page 1: the handlers (read/execute). Kept for the
    // isolate's life: a handler may still be running on another thread after any restore.
    const p = mmapRaw(2n * page, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS, -1, 0n);
    const base = Deno.UnsafePointer.value(p);
    const mem = Deno.UnsafePointerView.getArrayBuffer(p, Number(2n * page));
    this.cells = new Int32Array(mem, 0, CELL_BYTES.SIZE / 4);
    this.#dv = new DataView(mem, 0, CELL_BYTES.SIZE);
    const code = new Uint8Array(mem, Number(page), KICK_CODE.length);
    code.set(KICK_CODE);
    const cdv = new DataView(mem, Number(page));
    let patched = 0;
    for (let o = 0; o + 8 <= KICK_CODE.length; o++) {
      if (cdv.getBigUint64(o, true) === DATA_PLACEHOLDER) {
        cdv.setBigUint64(o, base, true);
        patched++;
      }
    }
    if (patched !== 1) throw new Error(`kick code: data placeholder found ${patched} times`);
    if (denoHandlerFirst) this.#haveDenoInstallItsHandler();
    const l = libc();
    const codePtr = Deno.UnsafePointer.create(base + page);
    if (l.mprotect(codePtr, page, PROT.READ | PROT.EXEC) !== 0) {
      throw new KvmError({ syscall: "mprotect", errno: errno(), args: { length: page, prot: "r-x" } });
    }
    const codeAddr = base + page;
    this.#sigint = codeAddr + BigInt(ENTRY.sigint);
    this.cells[CELL.PID] = Deno.pid;
    const cells = this.cells;
    setSigintProbe(() => Atomics.load(cells, CELL.SIGINTS));
    // The kick signal's handler: installed once, never removed.
    const usr2 = new Uint8Array(SIGACTION.size);
    const adv = new DataView(usr2.buffer);
    adv.setBigUint64(SIGACTION.fields.sa_handler.offset, codeAddr + BigInt(ENTRY.usr2), true);
    adv.setBigUint64(SIGACTION.fields.sa_flags.offset, BigInt(SA.RESTART | SA.ONSTACK), true);
    this.#sigaction(KICK_SIGNO, usr2, null);
    // The SIGINT action (the old one is read per run).
    const idv = new DataView(this.#act.buffer);
    idv.setBigUint64(SIGACTION.fields.sa_handler.offset, this.#sigint, true);
    idv.setBigUint64(SIGACTION.fields.sa_flags.offset, BigInt(SA.SIGINFO | SA.RESTART | SA.ONSTACK), true);
    const sdv = new DataView(this.#sev.buffer);
    sdv.setInt32(SIGEVENT.fields.sigev_signo.offset, KICK_SIGNO, true);
    sdv.setInt32(SIGEVENT.fields.sigev_notify.offset, SIGEV_THREAD_ID, true);
  }

  #sigaction(sig: number, act: Uint8Array<ArrayBuffer> | null, old: Uint8Array<ArrayBuffer> | null): void {
    if (libc().sigaction(sig, act, old) !== 0) {
      throw new KvmError({ syscall: "sigaction", errno: errno(), args: { signal: sig } });
    }
  }

  /**
   * A per-thread POSIX timer signalling `tid` at `deadline` (absolute ms), then every TICK_MS.
   * Throws with nothing left behind (a timer made before a failure is deleted).
   */
  #startTimer(tid: number, deadline: number): bigint {
    if (!Number.isFinite(deadline)) throw new RangeError(`deadline must be finite, got ${deadline}`);
    const l = libc();
    new DataView(this.#sev.buffer).setInt32(SIGEVENT.fields.sigev_notify_thread_id.offset, tid, true);
    if (l.timer_create(CLOCK_MONOTONIC, this.#sev, this.#timerId) !== 0) {
      throw new KvmError({ syscall: "timer_create", errno: errno(), args: { tid } });
    }
    const timer = new DataView(this.#timerId.buffer).getBigUint64(0, true);
    try {
      const wait = Math.max(deadline - now(), 0.001);
      const t = new DataView(this.#its.buffer);
      const F = ITIMERSPEC.fields;
      t.setBigInt64(F.value_sec.offset, BigInt(Math.floor(wait / 1000)), true);
      t.setBigInt64(F.value_nsec.offset, BigInt(Math.max(1, Math.round((wait % 1000) * 1e6))), true);
      t.setBigInt64(F.interval_sec.offset, 0n, true);
      t.setBigInt64(F.interval_nsec.offset, BigInt(TICK_MS * 1e6), true);
      if (l.timer_settime(timer, 0, this.#its, null) !== 0) {
        throw new KvmError({ syscall: "timer_settime", errno: errno(), args: { tid } });
      }
    } catch (e) {
      l.timer_delete(timer);
      throw e;
    }
    this.stats.timers++;
    return timer;
  }

  arm(o: ArmOptions): ArmedRun {
    const c = this.cells;
    const gen = this.#gen = (this.#gen % 0x7fffffff) + 1;
    this.stats.runs++;
    Atomics.store(c, CELL.STOP, 0);
    Atomics.store(c, CELL.TID, o.tid);
    this.#dv.setBigUint64(CELL_BYTES.RUN, o.runAddress + BigInt(KVM_RUN_LAYOUT.fields.immediate_exit.offset), true);
    Atomics.store(c, CELL.STATE, gen);
    const sigintsAtArm = Atomics.load(c, CELL.SIGINTS);
    let restoreSigint = false;
    if (o.interruptible) {
      try {
        this.#acquireSigint(true);
      } catch (e) {
        Atomics.store(c, CELL.STATE, 0);
        throw e;
      }
      restoreSigint = true;
      this.stats.sigintRuns++;
      if (this.#holds > 0 && Atomics.load(c, CELL.SIGINTS) !== this.#holdBase) {
        // A Ctrl-C under the hold before this run (while assembling, loading, an earlier run of
        // the same command): the run stops before the guest runs an instruction.
        Atomics.store(c, CELL.STOP, STOP_CODE.interrupt);
        const immediateExit = Deno.UnsafePointer.create(this.#dv.getBigUint64(CELL_BYTES.RUN, true))!;
        new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(immediateExit, 1))[0] = 1;
      }
    }

    let timer: bigint | undefined;
    const deadline = o.deadline;
    const kind = o.deadlineKind === "deadline" ? STOP_CODE.deadline : STOP_CODE.timeout;
    if (deadline > 0) {
      try {
        timer = this.#startTimer(o.tid, deadline);
      } catch (e) {
        // Whatever failed (timer_create, timer_settime, a bad deadline), nothing stays armed:
        // no slot pointing at this kvm_run, the old SIGINT action back.
        this.#disarm(gen, undefined, restoreSigint, sigintsAtArm);
        throw e;
      }
    }

    let done = false;
    return {
      stopped: () => {
        const s = Atomics.load(c, CELL.STOP);
        if (s) return STOP_NAMES[s];
        return deadline > 0 && now() >= deadline ? STOP_NAMES[kind] : undefined;
      },
      disarm: () => {
        if (done) return;
        done = true;
        if (Atomics.load(c, CELL.STOP) || (deadline > 0 && now() >= deadline)) this.stats.kicks++;
        this.#disarm(gen, timer, restoreSigint, sigintsAtArm);
      },
    };
  }

  #disarm(gen: number, timer: bigint | undefined, restoreSigint: boolean, sigintsAtArm: number): void {
    const c = this.cells;
    // Wait out a kick in progress on another thread (it writes into kvm_run, which must stay mapped).
    while (Atomics.compareExchange(c, CELL.STATE, gen, 0) !== gen) {
      if (Atomics.load(c, CELL.STATE) !== -1) break;
    }
    if (timer !== undefined) libc().timer_delete(timer);
    if (restoreSigint) this.#releaseSigint(sigintsAtArm);
    this.stats.sigints = Atomics.load(c, CELL.SIGINTS);
  }

  readonly #onDenoSigint = () => {
    // Deno dispatches SIGINTs that arrived while its event loop was busy as one call: this one
    // covers every SIGINT passed on so far.
    this.#passedOnPending = false;
    if (this.#sigintUsers === 0) this.#dropDenoListener();
  };
  /**
   * A run passed SIGINTs on to Deno that Deno has not dispatched yet. Deno decides on its own
   * thread, when that thread gets to the signal, whether a listener takes it or the process ends:
   * a SIGINT passed on during one run can still be on its way after the next run ends (seen on a
   * busy host: the process ended with 130 after its runs were done). SIGINTs under a hold are
   * not passed on (the hold counts them), so only a run without one sets this.
   */
  #passedOnPending = false;

  /**
   * One more user of the SIGINT handler (an interruptible run, a hold); the first installs it,
   * keeping the disposition it replaces. Refused while another isolate's kick has it: the handler
   * is process-wide, and disarming out of order would restore one over the other.
   */
  #acquireSigint(forRun: boolean): void {
    if (this.#sigintUsers > 0) {
      this.#sigintUsers++;
      return;
    }
    this.#sigaction(SIG.INT, null, this.#old);
    const old = new DataView(this.#old.buffer).getBigUint64(SIGACTION.fields.sa_handler.offset, true);
    if (old === this.#sigint) {
      // Ours already (left in place by someone): nothing to restore at the end.
      this.#sigintUsers = 1;
      this.#sigintOwned = false;
      return;
    }
    if (isKickHandler(old)) {
      throw new Error(
        "kick: another isolate (Worker) of this process has the Ctrl-C handler armed (an interruptible run or a " +
          "hold): one at a time per process. Run with interruptible: false, or wait for that run to end",
      );
    }
    this.#dv.setBigUint64(CELL_BYTES.OLD, old, true);
    if (forRun && old !== SIG_DFL && old !== SIG_IGN && !this.#denoListener) {
      // Deno's handler (or another's) gets the SIGINT after us: Deno ends the process on a
      // SIGINT no listener takes, so listen (and do nothing) until it has dispatched it.
      Deno.addSignalListener("SIGINT", this.#onDenoSigint);
      this.#denoListener = true;
    }
    this.#sigaction(SIG.INT, this.#act, null);
    this.#sigintUsers = 1;
    this.#sigintOwned = true;
  }

  /** One user fewer; the last restores the disposition the first replaced. */
  #releaseSigint(sigintsAtArm?: number): void {
    if (this.#sigintUsers === 0 || --this.#sigintUsers > 0) return;
    if (!this.#sigintOwned) return;
    this.#sigintOwned = false;
    this.#sigaction(SIG.INT, this.#old, null);
    if (!this.#denoListener) return;
    // A run (the last user, so under no hold) that saw SIGINTs passed them on to Deno.
    if (sigintsAtArm !== undefined && Atomics.load(this.cells, CELL.SIGINTS) !== sigintsAtArm) {
      this.#passedOnPending = true;
    }
    // Nothing left for Deno to dispatch: the listener goes. Else #onDenoSigint drops it.
    if (!this.#passedOnPending) this.#dropDenoListener();
  }

  /**
   * Deno installs its own SIGINT handler (signal-hook) once per process, over whatever is there:
   * ~0.5 s after start when the main isolate's event loop turns, or a few ms after any isolate
   * adds a signal listener (a Worker's: the scenario runner's Ctrl-C watch). Over the kick's
   * handler during a run or a hold, it would be undone when that ends (the kick restores what it
   * replaced), and Deno's listeners would never hear a SIGINT again. So the kick has Deno install
   * it first (~0.5 ms), and Deno's is below the kick's (the kick's `old`) from then on.
   */
  #haveDenoInstallItsHandler(): void {
    const noop = () => {};
    Deno.addSignalListener("SIGINT", noop);
    Deno.removeSignalListener("SIGINT", noop);
  }

  /** See {@link holdSigint}. */
  hold(): SigintHold {
    const c = this.cells;
    this.#acquireSigint(false);
    if (this.#holds++ === 0) this.#holdBase = Atomics.load(c, CELL.SIGINTS);
    Atomics.add(c, CELL.HOLD, 1);
    const base = Atomics.load(c, CELL.SIGINTS);
    let seen: number | undefined;
    return {
      count: () => (seen ?? Atomics.load(c, CELL.SIGINTS)) - base,
      release: () => {
        if (seen !== undefined) return;
        seen = Atomics.load(c, CELL.SIGINTS);
        Atomics.sub(c, CELL.HOLD, 1);
        this.#holds--;
        this.#releaseSigint();
        this.stats.sigints = Atomics.load(c, CELL.SIGINTS);
      },
    };
  }

  #dropDenoListener(): void {
    Deno.removeSignalListener("SIGINT", this.#onDenoSigint);
    this.#denoListener = false;
  }
}

/** True when the SIGINT handler at `addr` is a kick handler (another isolate's copy of KICK_CODE). */
function isKickHandler(addr: bigint): boolean {
  if (addr <= SIG_IGN) return false;
  // The code after the data address is the same in every copy; read it fault-safe.
  const from = ENTRY.sigint + 10;
  const want = KICK_CODE.subarray(from, from + 32);
  const got = new Uint8Array(want.length);
  const local = new Uint8Array(IOVEC.size), remote = new Uint8Array(IOVEC.size);
  encode(IOVEC, { iov_base: BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(got))), iov_len: got.length }, local);
  encode(IOVEC, { iov_base: addr + 10n, iov_len: got.length }, remote);
  const l = libc();
  const read = l.process_vm_readv(Deno.pid, Deno.UnsafePointer.of(local), 1n, Deno.UnsafePointer.of(remote), 1n, 0n);
  if (Number(read) !== got.length) return false;
  return got.every((b, i) => b === want[i]);
}

let kick: Kick | undefined;

/** Arms the kick for one run of the exit loop. */
export function armWatchdog(o: ArmOptions): ArmedRun {
  kick ??= new Kick(true);
  return kick.arm(o);
}

/** A hold on SIGINT: see {@link holdSigint}. */
export interface SigintHold {
  /** SIGINTs that arrived since the hold began (until released; then frozen). */
  count(): number;
  /** Ends the hold (once; later calls do nothing). The last hold restores the previous disposition. */
  release(): void;
}

/**
 * Holds SIGINT for a stretch of synchronous work (a REPL command: assembling with `as`, loading,
 * runs): until released, every SIGINT is counted, readable at once with `count()`, and goes no
 * further — the process does not die of it, and Deno's listeners do not hear it. An interruptible
 * run armed under a hold still stops at a Ctrl-C, and stops before it starts when a SIGINT arrived
 * under the hold already (so a Ctrl-C while loading stops the command, not just a later run).
 * Holds nest (counted). One isolate at a time per process may hold or arm the handler.
 *
 * `synchronous: true` (the shell's commands) promises that in this process nothing can make Deno
 * install its own SIGINT handler while the kick's is in place: every hold and run is released
 * before the event loop turns again, and no Worker adds signal listeners. The kick then skips
 * having Deno install it first (~0.5 ms of every process; see Kick). It counts only when it makes
 * this main isolate's kick (its first hold or run); a Worker's kick always has Deno install it.
 */
export function holdSigint(opts: { synchronous?: boolean } = {}): SigintHold {
  kick ??= new Kick(!(opts.synchronous && !inWorker()));
  return kick.hold();
}

/** True in a Worker (its global scope is a WorkerGlobalScope). */
function inWorker(): boolean {
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined";
}

/** Nothing to stop any more (no Worker); kept for callers of the old API. */
export function stopWatchdog(): void {}

/** Whether a watchdog Worker exists: never (stopping a guest needs none). */
export function watchdogRunning(): boolean {
  return false;
}

/** Runs stopped from outside (timeout, deadline, Ctrl-C) in this isolate. */
export function watchdogKicks(): number {
  return kick?.stats.kicks ?? 0;
}

/** What the kick did in this isolate (all zero before the first armed run). */
export function kickStats(): KickStats {
  if (kick) kick.stats.sigints = Atomics.load(kick.cells, CELL.SIGINTS);
  return { ...(kick?.stats ?? { workerStarts: 0, runs: 0, timers: 0, sigintRuns: 0, kicks: 0, sigints: 0 }) };
}
